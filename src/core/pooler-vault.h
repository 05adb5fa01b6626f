/* pooler-vault.h: account tokens in the OS keyring (libsecret).
 *
 * One item per account under the schema "io.github.codexpooler.CodexPooler.Account"
 * with the attribute "account-id"; the secret is a small JSON object with
 * access_token, refresh_token, id_token and expires_at. Callers read an
 * account's tokens once and keep them in memory; never per request.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>

#include "pooler-tokens.h"

G_BEGIN_DECLS

#define POOLER_TYPE_VAULT (pooler_vault_get_type ())

G_DECLARE_FINAL_TYPE (PoolerVault, pooler_vault, POOLER, VAULT, GObject)

PoolerVault  *pooler_vault_new              (void);

/* Fails with POOLER_ERROR_NO_VAULT and a message that says how to start a
 * Secret Service when none answers within a few seconds. */
gboolean      pooler_vault_check_available  (PoolerVault         *self,
                                             GCancellable        *cancellable,
                                             GError             **error);
gboolean      pooler_vault_store_sync       (PoolerVault         *self,
                                             const char          *account_id,
                                             const char          *label,
                                             const PoolerTokens  *tokens,
                                             GCancellable        *cancellable,
                                             GError             **error);
/* NULL with POOLER_ERROR_NOT_FOUND when there is no item. */
PoolerTokens *pooler_vault_lookup_sync      (PoolerVault         *self,
                                             const char          *account_id,
                                             GCancellable        *cancellable,
                                             GError             **error);
gboolean      pooler_vault_clear_sync       (PoolerVault         *self,
                                             const char          *account_id,
                                             GCancellable        *cancellable,
                                             GError             **error);

void          pooler_vault_store_async      (PoolerVault         *self,
                                             const char          *account_id,
                                             const char          *label,
                                             const PoolerTokens  *tokens,
                                             GCancellable        *cancellable,
                                             GAsyncReadyCallback  callback,
                                             gpointer             user_data);
gboolean      pooler_vault_store_finish     (PoolerVault         *self,
                                             GAsyncResult        *result,
                                             GError             **error);
void          pooler_vault_lookup_async     (PoolerVault         *self,
                                             const char          *account_id,
                                             GCancellable        *cancellable,
                                             GAsyncReadyCallback  callback,
                                             gpointer             user_data);
PoolerTokens *pooler_vault_lookup_finish    (PoolerVault         *self,
                                             GAsyncResult        *result,
                                             GError             **error);
/* Succeeds when there was no item to remove. */
void          pooler_vault_clear_async      (PoolerVault         *self,
                                             const char          *account_id,
                                             GCancellable        *cancellable,
                                             GAsyncReadyCallback  callback,
                                             gpointer             user_data);
gboolean      pooler_vault_clear_finish     (PoolerVault         *self,
                                             GAsyncResult        *result,
                                             GError             **error);

G_END_DECLS
