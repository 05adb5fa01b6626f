/* pooler-tokens.h: an account's OAuth tokens, held in memory only.
 *
 * Tokens never touch SQLite or a log; they live in the keyring (PoolerVault)
 * and, once read, in one of these.  Free with pooler_tokens_free(), which
 * wipes the strings first.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

typedef struct
{
  char   *access_token;
  char   *refresh_token;
  char   *id_token;
  gint64  expires_at;     /* unix seconds of the access token's "exp", 0 if unknown */
} PoolerTokens;

#define POOLER_TYPE_TOKENS (pooler_tokens_get_type ())

GType         pooler_tokens_get_type (void) G_GNUC_CONST;
PoolerTokens *pooler_tokens_new      (const char         *access_token,
                                      const char         *refresh_token,
                                      const char         *id_token,
                                      gint64              expires_at);
PoolerTokens *pooler_tokens_copy     (const PoolerTokens *tokens);
void          pooler_tokens_free     (PoolerTokens       *tokens);
gboolean      pooler_tokens_equal    (const PoolerTokens *a,
                                      const PoolerTokens *b);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PoolerTokens, pooler_tokens_free)

G_END_DECLS
