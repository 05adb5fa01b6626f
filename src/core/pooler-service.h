/* pooler-service.h: the core's public face. It owns the store, the writer,
 * the vault and the in-memory registry of Pools, accounts and keys that the
 * gateway reads on every request, and announces what happens through
 * signals that the window, the tray and the notifier listen to.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>

#include <libsoup/soup.h>

#include "pooler-account.h"
#include "pooler-affinity.h"
#include "pooler-auth-file.h"
#include "pooler-key-record.h"
#include "pooler-pool.h"
#include "pooler-quota.h"
#include "pooler-request-record.h"
#include "pooler-router.h"
#include "pooler-store.h"
#include "pooler-tokens.h"
#include "pooler-upstream.h"
#include "pooler-vault.h"

G_BEGIN_DECLS

#define POOLER_DEFAULT_UPSTREAM_URL "https://chatgpt.com/backend-api"
#define POOLER_DEFAULT_AUTH_URL     "https://auth.openai.com"

#define POOLER_TYPE_SERVICE (pooler_service_get_type ())

G_DECLARE_FINAL_TYPE (PoolerService, pooler_service, POOLER, SERVICE, GObject)

typedef enum
{
  POOLER_KEY_OK,
  POOLER_KEY_MISSING,
  POOLER_KEY_MALFORMED,
  POOLER_KEY_UNKNOWN,
  POOLER_KEY_REVOKED,
  POOLER_KEY_EXPIRED,
} PoolerKeyCheck;

/* @db_path NULL: pooler_store_default_path(). Opens and migrates the
 * database; touches neither the keyring nor the network. */
PoolerService   *pooler_service_new                (const char       *db_path,
                                                    GError          **error);
PoolerStore     *pooler_service_get_store          (PoolerService    *self);
/* Created on first use. */
PoolerVault     *pooler_service_get_vault          (PoolerService    *self);
PoolerRouter    *pooler_service_get_router         (PoolerService    *self);
const char      *pooler_service_get_upstream_url   (PoolerService    *self);
const char      *pooler_service_get_auth_url       (PoolerService    *self);
/* Defaults come from CODEX_POOLER_UPSTREAM_URL / CODEX_POOLER_AUTH_URL. */
void             pooler_service_set_upstream_url   (PoolerService    *self,
                                                    const char       *url);
void             pooler_service_set_auth_url       (PoolerService    *self,
                                                    const char       *url);

/* For serving: checks the keyring, marks requests a dead process left in
 * flight as interrupted, loads the registry and every account's tokens,
 * starts the writer thread and watches the database for changes made by
 * other processes (the CLI, the window). */
gboolean         pooler_service_start              (PoolerService    *self,
                                                    GError          **error);
/* Flushes queued writes and stops the writer. */
void             pooler_service_stop               (PoolerService    *self);
gboolean         pooler_service_is_started         (PoolerService    *self);
/* Reloads the registry now if the database changed. */
void             pooler_service_reload             (PoolerService    *self);

/* Pools */
PoolerPool      *pooler_service_create_pool        (PoolerService    *self,
                                                    const char       *slug,
                                                    const char       *strategy,
                                                    GError          **error);
gboolean         pooler_service_set_pool_ring_size (PoolerService    *self,
                                                    const char       *slug,
                                                    guint             ring_size,
                                                    GError          **error);
gboolean         pooler_service_set_pool_strategy  (PoolerService    *self,
                                                    const char       *slug,
                                                    const char       *strategy,
                                                    GError          **error);

/* Accounts */
PoolerAccount   *pooler_service_import_account     (PoolerService    *self,
                                                    const char       *auth_json_path,
                                                    const char       *pool_slug,
                                                    const char       *label,
                                                    gboolean         *out_created,
                                                    GError          **error);
/* Whether an account could be added to @pool_slug now: the Pool exists
 * and the keyring answers (asked before a sign-in, not after it). */
gboolean         pooler_service_can_add_to_pool    (PoolerService    *self,
                                                    const char       *pool_slug,
                                                    GError          **error);
/* A browser sign-in's result (pooler_login_wait_finish()): adds the
 * account to the Pool, or updates it in place when its ChatGPT identity
 * is known (a new sign-in also ends "needs sign-in"). */
PoolerAccount   *pooler_service_add_signed_in      (PoolerService    *self,
                                                    const PoolerAuthFile *auth,
                                                    const char       *pool_slug,
                                                    const char       *label,
                                                    gboolean         *out_created,
                                                    GError          **error);
/* The same two without blocking on the keyring (for a main loop that
 * also serves: the window's). The tokens are stored asynchronously;
 * @cancellable stops the wait for the keyring (an unlock prompt, say),
 * and a new account whose store was cancelled or failed leaves nothing
 * behind. The auth file of an import is read before the call returns. */
void             pooler_service_import_account_async  (PoolerService        *self,
                                                       const char           *auth_json_path,
                                                       const char           *pool_slug,
                                                       const char           *label,
                                                       GCancellable         *cancellable,
                                                       GAsyncReadyCallback   callback,
                                                       gpointer              user_data);
PoolerAccount   *pooler_service_import_account_finish (PoolerService        *self,
                                                       GAsyncResult         *result,
                                                       gboolean             *out_created,
                                                       GError              **error);
void             pooler_service_add_signed_in_async   (PoolerService        *self,
                                                       const PoolerAuthFile *auth,
                                                       const char           *pool_slug,
                                                       const char           *label,
                                                       GCancellable         *cancellable,
                                                       GAsyncReadyCallback   callback,
                                                       gpointer              user_data);
PoolerAccount   *pooler_service_add_signed_in_finish  (PoolerService        *self,
                                                       GAsyncResult         *result,
                                                       gboolean             *out_created,
                                                       GError              **error);
gboolean         pooler_service_set_account_status (PoolerService    *self,
                                                    const char       *account_id,
                                                    PoolerAccountStatus status,
                                                    GError          **error);
/* @label NULL leaves it; @priority G_MININT leaves it. Lower priorities
 * are tried first under the fill-first strategy. */
gboolean         pooler_service_update_account     (PoolerService    *self,
                                                    const char       *account_id,
                                                    const char       *label,
                                                    int               priority,
                                                    GError          **error);
gboolean         pooler_service_remove_account     (PoolerService    *self,
                                                    const char       *account_id,
                                                    GError          **error);
/* The row goes at once (the account stops serving); the keyring item
 * after it, without blocking. A keyring that fails then leaves an orphan
 * item, which is logged, not an error. */
void             pooler_service_remove_account_async  (PoolerService        *self,
                                                       const char           *account_id,
                                                       GCancellable         *cancellable,
                                                       GAsyncReadyCallback   callback,
                                                       gpointer              user_data);
gboolean         pooler_service_remove_account_finish (PoolerService        *self,
                                                       GAsyncResult         *result,
                                                       GError              **error);

/* Keys: returns the whole key, which is never stored and cannot be shown
 * again. */
char            *pooler_service_create_key         (PoolerService    *self,
                                                    const char       *pool_slug,
                                                    const char       *name,
                                                    PoolerKeyRecord **out_record,
                                                    GError          **error);
gboolean         pooler_service_revoke_key         (PoolerService    *self,
                                                    const char       *prefix,
                                                    GError          **error);

/* The hot path (after pooler_service_start()) */
PoolerKeyCheck   pooler_service_check_key          (PoolerService    *self,
                                                    const char       *key,
                                                    PoolerKeyRecord **out_record);
PoolerPool      *pooler_service_lookup_pool        (PoolerService    *self,
                                                    gint64            pool_id);
/* The Pool's accounts (PoolerAccount*), owned by the service. */
GPtrArray       *pooler_service_get_pool_accounts  (PoolerService    *self,
                                                    gint64            pool_id);
GPtrArray       *pooler_service_list_accounts      (PoolerService    *self);
const PoolerTokens *pooler_service_peek_tokens     (PoolerService    *self,
                                                    const char       *account_id);
/* Queues the row; emits ::request-finished when its state is not in flight. */
void             pooler_service_record_request     (PoolerService    *self,
                                                    const PoolerRequestRecord *record);
void             pooler_service_note_account_used  (PoolerService    *self,
                                                    PoolerAccount    *account,
                                                    const char       *key_prefix);
/* Queues an operator token's last use when serving (FALSE when not: the
 * caller writes it itself). */
gboolean         pooler_service_touch_mcp_token    (PoolerService    *self,
                                                    const char       *prefix,
                                                    gint64            unix_seconds);
/* Waits for queued writes (tests, shutdown, /readyz). */
void             pooler_service_flush              (PoolerService    *self);

const char      *pooler_key_check_to_message       (PoolerKeyCheck    check);

/* The upstream session for the rare calls: token refreshes and usage
 * polls. */
SoupSession     *pooler_service_get_session        (PoolerService    *self);
/* The hot path's client: every proxied request (keep-alive pool). */
PoolerUpstream  *pooler_service_get_upstream       (PoolerService    *self);

/* Quota evidence: merged into the account's state, persisted through the
 * writer, and turned into account-exhausted / account-restored on
 * transitions. A 429 block also becomes the account's cooldown_until. */
PoolerQuotaState *pooler_service_get_quota         (PoolerService    *self,
                                                    const char       *account_id);
void             pooler_service_observe_quota      (PoolerService    *self,
                                                    PoolerAccount    *account,
                                                    const PoolerQuotaEvidence *evidence);
/* The quota evidence in an answer's @fields: parsed and observed, unless
 * the account's last evidence came from the very same x- fields this
 * second (pooler_quota_state_repeats_fields()). */
void             pooler_service_observe_quota_fields (PoolerService          *self,
                                                      PoolerAccount          *account,
                                                      const PoolerHttpFields *fields);
/* Whether a wham/usage poll of @account is allowed now (stale or missing
 * evidence, and at most one poll a minute); marks it polled when TRUE. */
gboolean         pooler_service_claim_usage_poll   (PoolerService    *self,
                                                    PoolerAccount    *account,
                                                    gint64            now);

/* Continuity */
PoolerAffinity  *pooler_service_get_affinity       (PoolerService    *self);
/* @key from pooler_affinity_hash() of (@pool_id, @kind, the value). */
void             pooler_service_remember_affinity  (PoolerService    *self,
                                                    const char       *key,
                                                    gint64            pool_id,
                                                    const char       *kind,
                                                    const char       *account_id);

/* Tokens: one refresh in flight per account; the rotated pair is written
 * to the keyring before the old one is dropped. A refused refresh token
 * marks the account reauth_required (kept) and emits ::reauth-required;
 * a transient failure backs off. */
gboolean         pooler_service_tokens_expiring    (PoolerService    *self,
                                                    PoolerAccount    *account,
                                                    gint64            now);
void             pooler_service_refresh_tokens_async  (PoolerService       *self,
                                                       PoolerAccount       *account,
                                                       GCancellable        *cancellable,
                                                       GAsyncReadyCallback  callback,
                                                       gpointer             user_data);
gboolean         pooler_service_refresh_tokens_finish (PoolerService       *self,
                                                       GAsyncResult        *result,
                                                       GError             **error);
guint            pooler_service_get_refresh_count  (PoolerService    *self);

/* The gateway reports whether a Pool could serve; emits ::pool-exhausted
 * and ::pool-restored on transitions. */
void             pooler_service_note_pool_capacity (PoolerService    *self,
                                                    PoolerPool       *pool,
                                                    gboolean          can_serve,
                                                    gint64            earliest_reset);
/* Re-checks cooldowns that ran out, proactive refreshes and exhausted
 * Pools now (also runs on a timer). */
void             pooler_service_run_maintenance    (PoolerService    *self);

G_END_DECLS
