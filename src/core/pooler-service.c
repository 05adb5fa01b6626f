/* pooler-service.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-service"

#include "config.h"

#include <string.h>
#include <unistd.h>

#include "pooler-auth-file.h"
#include "pooler-error.h"
#include "pooler-keys.h"
#include "pooler-oauth.h"
#include "pooler-random.h"
#include "pooler-service.h"
#include "pooler-store-writer.h"

/* How often a serving process looks for changes other processes made. */
#define RELOAD_INTERVAL_SECONDS 2
/* Cooldowns ending, proactive refreshes, exhausted Pools coming back. */
#define MAINTENANCE_INTERVAL_SECONDS 15
/* Refresh this long before the access token expires. */
#define REFRESH_AHEAD_SECONDS (5 * 60)
#define USAGE_POLL_MIN_INTERVAL 60
#define REFRESH_BACKOFF_MIN 30
#define REFRESH_BACKOFF_MAX (10 * 60)

typedef struct
{
  guint  failures;
  gint64 next_attempt;
} Backoff;

struct _PoolerService
{
  GObject            parent_instance;

  PoolerStore       *store;
  PoolerStoreWriter *writer;
  PoolerVault       *vault;
  PoolerRouter      *router;
  char              *upstream_url;
  char              *auth_url;

  /* The registry the hot path reads; reloaded when config_version moves. */
  GHashTable        *pools;          /* gint64* id -> PoolerPool */
  GHashTable        *accounts;       /* id -> PoolerAccount */
  GHashTable        *pool_accounts;  /* gint64* pool id -> GPtrArray<PoolerAccount> */
  GHashTable        *keys;           /* prefix -> PoolerKeyRecord */
  GHashTable        *tokens;         /* account id -> PoolerTokens */
  gint64             config_version;
  guint              reload_source;
  guint              maintenance_source;
  gboolean           started;

  SoupSession       *session;
  PoolerUpstream    *upstream;
  GHashTable        *quotas;          /* account id -> PoolerQuotaState */
  GHashTable        *spent;           /* account id -> reset (gint64*) */
  GHashTable        *usage_polls;     /* account id -> last poll (gint64*) */
  GHashTable        *refreshing;      /* account id -> GPtrArray<GTask> waiting */
  GHashTable        *reading;         /* account ids with a keyring read out */
  GHashTable        *unreadable;      /* account ids whose last read failed (warned once) */
  GHashTable        *reauth_pending;  /* account id -> guint64 writer seq: marked, row not yet written */
  GHashTable        *backoffs;        /* account id -> Backoff */
  GHashTable        *exhausted_pools; /* pool id -> earliest reset (gint64*) */
  PoolerAffinity    *affinity;
  guint              refresh_count;
};

G_DEFINE_FINAL_TYPE (PoolerService, pooler_service, G_TYPE_OBJECT)

enum {
  REQUEST_FINISHED,
  ACCOUNT_CHANGED,
  REGISTRY_CHANGED,
  ACCOUNT_EXHAUSTED,
  ACCOUNT_RESTORED,
  POOL_EXHAUSTED,
  POOL_RESTORED,
  REAUTH_REQUIRED,
  N_SIGNALS
};

static guint signals [N_SIGNALS];

static void
pooler_service_dispose (GObject *object)
{
  PoolerService *self = (PoolerService *)object;

  pooler_service_stop (self);

  if (self->session != NULL)
    soup_session_abort (self->session);
  g_clear_object (&self->session);
  g_clear_object (&self->upstream);
  g_clear_object (&self->vault);
  g_clear_object (&self->router);
  g_clear_object (&self->affinity);
  g_clear_object (&self->store);

  G_OBJECT_CLASS (pooler_service_parent_class)->dispose (object);
}

static void
pooler_service_finalize (GObject *object)
{
  PoolerService *self = (PoolerService *)object;

  g_clear_pointer (&self->pools, g_hash_table_unref);
  g_clear_pointer (&self->accounts, g_hash_table_unref);
  g_clear_pointer (&self->pool_accounts, g_hash_table_unref);
  g_clear_pointer (&self->keys, g_hash_table_unref);
  g_clear_pointer (&self->tokens, g_hash_table_unref);
  g_clear_pointer (&self->quotas, g_hash_table_unref);
  g_clear_pointer (&self->spent, g_hash_table_unref);
  g_clear_pointer (&self->usage_polls, g_hash_table_unref);
  g_clear_pointer (&self->refreshing, g_hash_table_unref);
  g_clear_pointer (&self->backoffs, g_hash_table_unref);
  g_clear_pointer (&self->reading, g_hash_table_unref);
  g_clear_pointer (&self->unreadable, g_hash_table_unref);
  g_clear_pointer (&self->reauth_pending, g_hash_table_unref);
  g_clear_pointer (&self->exhausted_pools, g_hash_table_unref);
  g_clear_pointer (&self->upstream_url, g_free);
  g_clear_pointer (&self->auth_url, g_free);

  G_OBJECT_CLASS (pooler_service_parent_class)->finalize (object);
}

static void
pooler_service_class_init (PoolerServiceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = pooler_service_dispose;
  object_class->finalize = pooler_service_finalize;

  /**
   * PoolerService::request-finished:
   * @record: (type PoolerRequestRecord): metadata of the finished request
   */
  signals [REQUEST_FINISHED] =
    g_signal_new ("request-finished",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1,
                  POOLER_TYPE_REQUEST_RECORD | G_SIGNAL_TYPE_STATIC_SCOPE);

  /**
   * PoolerService::account-changed:
   * @account: an account that was imported, changed state or was removed
   */
  signals [ACCOUNT_CHANGED] =
    g_signal_new ("account-changed",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, POOLER_TYPE_ACCOUNT);

  /**
   * PoolerService::registry-changed:
   *
   * Pools, accounts or keys changed (here or in another process).
   */
  signals [REGISTRY_CHANGED] =
    g_signal_new ("registry-changed",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 0);

  /**
   * PoolerService::account-exhausted:
   * @account: the account whose quota is now spent
   * @reset_at: unix seconds when it comes back, 0 if unknown
   *
   * Emitted once when an account goes from usable to spent.
   */
  signals [ACCOUNT_EXHAUSTED] =
    g_signal_new ("account-exhausted",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 2, POOLER_TYPE_ACCOUNT, G_TYPE_INT64);

  /**
   * PoolerService::account-restored:
   * @account: an account that was spent and has quota again
   */
  signals [ACCOUNT_RESTORED] =
    g_signal_new ("account-restored",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, POOLER_TYPE_ACCOUNT);

  /**
   * PoolerService::pool-exhausted:
   * @pool: a Pool that has no usable account left
   * @reset_at: the earliest time one comes back (unix seconds), 0 if unknown
   *
   * Emitted once per transition, not per refused request.
   */
  signals [POOL_EXHAUSTED] =
    g_signal_new ("pool-exhausted",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 2, POOLER_TYPE_POOL, G_TYPE_INT64);

  /**
   * PoolerService::pool-restored:
   * @pool: a Pool that was exhausted and can serve again
   */
  signals [POOL_RESTORED] =
    g_signal_new ("pool-restored",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, POOLER_TYPE_POOL);

  /**
   * PoolerService::reauth-required:
   * @account: an account whose refresh token was refused for good
   *
   * The account is kept (status reauth_required) until it is imported or
   * signed in again.
   */
  signals [REAUTH_REQUIRED] =
    g_signal_new ("reauth-required",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, POOLER_TYPE_ACCOUNT);
}

static char *
normalize_url (const char *url)
{
  char *copy = g_strdup (url);
  gsize len = strlen (copy);

  while (len > 0 && copy[len - 1] == '/')
    copy[--len] = '\0';

  return copy;
}

static char *
env_url (const char *name,
         const char *fallback)
{
  const char *value = g_getenv (name);

  return normalize_url (value != NULL && *value != '\0' ? value : fallback);
}

static PoolerQuotaState *
router_quota_lookup (PoolerAccount *account,
                     gpointer       user_data)
{
  PoolerService *self = user_data;

  return g_hash_table_lookup (self->quotas, pooler_account_get_id (account));
}

static void
pooler_service_init (PoolerService *self)
{
  self->router = pooler_router_new ();
  pooler_router_set_quota_func (self->router, router_quota_lookup, self);
  self->affinity = pooler_affinity_new ();
  /* No SoupLogger here: at header level it would print bearer tokens. */
  self->session = soup_session_new_with_options ("max-conns", 512,
                                                 "max-conns-per-host", 256,
                                                 "timeout", 300,
                                                 "idle-timeout", 60,
                                                 NULL);
  /* Bodies pass through as they come; the SSE observer reads identity. */
  soup_session_remove_feature_by_type (self->session, SOUP_TYPE_CONTENT_DECODER);
  soup_session_remove_feature_by_type (self->session, SOUP_TYPE_CONTENT_SNIFFER);
  self->upstream = pooler_upstream_new ();
  self->quotas = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify) pooler_quota_state_free);
  self->spent = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->usage_polls = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->refreshing = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                            (GDestroyNotify) g_ptr_array_unref);
  self->backoffs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->reading = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->unreadable = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->reauth_pending = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->exhausted_pools = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free);
  self->upstream_url = env_url ("CODEX_POOLER_UPSTREAM_URL", POOLER_DEFAULT_UPSTREAM_URL);
  self->auth_url = env_url ("CODEX_POOLER_AUTH_URL", POOLER_DEFAULT_AUTH_URL);
  self->pools = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_object_unref);
  self->accounts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  self->pool_accounts = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                               (GDestroyNotify) g_ptr_array_unref);
  self->keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                      (GDestroyNotify) pooler_key_record_free);
  self->tokens = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify) pooler_tokens_free);
  self->config_version = -1;
}

PoolerService *
pooler_service_new (const char  *db_path,
                    GError     **error)
{
  g_autoptr(PoolerService) self = g_object_new (POOLER_TYPE_SERVICE, NULL);
  g_autofree char *default_path = NULL;

  if (db_path == NULL)
    db_path = default_path = pooler_store_default_path ();

  self->store = pooler_store_open (db_path, error);
  if (self->store == NULL)
    return NULL;

  return g_steal_pointer (&self);
}

PoolerStore *
pooler_service_get_store (PoolerService *self)
{
  g_return_val_if_fail (POOLER_IS_SERVICE (self), NULL);

  return self->store;
}

PoolerVault *
pooler_service_get_vault (PoolerService *self)
{
  g_return_val_if_fail (POOLER_IS_SERVICE (self), NULL);

  if (self->vault == NULL)
    self->vault = pooler_vault_new ();

  return self->vault;
}

PoolerRouter *
pooler_service_get_router (PoolerService *self)
{
  g_return_val_if_fail (POOLER_IS_SERVICE (self), NULL);

  return self->router;
}

const char *
pooler_service_get_upstream_url (PoolerService *self)
{
  g_return_val_if_fail (POOLER_IS_SERVICE (self), NULL);

  return self->upstream_url;
}

const char *
pooler_service_get_auth_url (PoolerService *self)
{
  g_return_val_if_fail (POOLER_IS_SERVICE (self), NULL);

  return self->auth_url;
}

void
pooler_service_set_upstream_url (PoolerService *self,
                                 const char    *url)
{
  g_return_if_fail (POOLER_IS_SERVICE (self));
  g_return_if_fail (url != NULL);

  g_free (self->upstream_url);
  self->upstream_url = normalize_url (url);
}

void
pooler_service_set_auth_url (PoolerService *self,
                             const char    *url)
{
  g_return_if_fail (POOLER_IS_SERVICE (self));
  g_return_if_fail (url != NULL);

  g_free (self->auth_url);
  self->auth_url = normalize_url (url);
}

static void
merge_account (PoolerAccount *into,
               PoolerAccount *from,
               gboolean       keep_reauth)
{
  g_object_freeze_notify (G_OBJECT (into));
  pooler_account_set_label (into, pooler_account_get_label (from));
  pooler_account_set_email (into, pooler_account_get_email (from));
  pooler_account_set_chatgpt_account_id (into, pooler_account_get_chatgpt_account_id (from));
  pooler_account_set_chatgpt_user_id (into, pooler_account_get_chatgpt_user_id (from));
  pooler_account_set_plan (into, pooler_account_get_plan (from));
  /* "Needs a sign-in" set a moment ago, its row not yet written by the
   * writer: a row that still says active is behind, not news. */
  if (!(keep_reauth && pooler_account_get_status (into) == POOLER_ACCOUNT_REAUTH_REQUIRED &&
        pooler_account_get_status (from) == POOLER_ACCOUNT_ACTIVE))
    {
      pooler_account_set_status (into, pooler_account_get_status (from));
      pooler_account_set_last_error (into, pooler_account_get_last_error (from));
    }
  pooler_account_set_priority (into, pooler_account_get_priority (from));
  /* Ours moves forward when we refresh, before the writer has the row;
   * another process's sign-in brings a later one. */
  pooler_account_set_token_expires_at (into, MAX (pooler_account_get_token_expires_at (into),
                                                  pooler_account_get_token_expires_at (from)));
  pooler_account_set_created_at (into, pooler_account_get_created_at (from));
  /* Runtime state moves forward only: a stale row must not end a cooldown. */
  pooler_account_set_cooldown_until (into, MAX (pooler_account_get_cooldown_until (into),
                                                pooler_account_get_cooldown_until (from)));
  pooler_account_set_last_used_at (into, MAX (pooler_account_get_last_used_at (into),
                                              pooler_account_get_last_used_at (from)));
  g_object_thaw_notify (G_OBJECT (into));
}

typedef struct
{
  PoolerService *self;
  char          *account_id;
} TokenLoad;

static void
load_tokens_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  TokenLoad *load = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(PoolerTokens) tokens = NULL;

  tokens = pooler_vault_lookup_finish (POOLER_VAULT (object), result, &error);
  if (load->self->reading != NULL)
    g_hash_table_remove (load->self->reading, load->account_id);
  /* Maintenance asks again every 15 s: said once, until it works. */
  if (tokens == NULL && load->self->unreadable != NULL &&
      g_hash_table_add (load->self->unreadable, g_strdup (load->account_id)))
    g_warning ("Could not read the tokens of account %s from the keyring (asked again every %d s): %s",
               load->account_id, MAINTENANCE_INTERVAL_SECONDS, error->message);
  else if (tokens == NULL)
    g_debug ("Still no tokens for account %s in the keyring: %s", load->account_id, error->message);
  else
    {
      PoolerAccount *account = g_hash_table_lookup (load->self->accounts, load->account_id);

      if (load->self->unreadable != NULL)
        g_hash_table_remove (load->self->unreadable, load->account_id);
      /* A pair read for a change is kept only if it is still the row's:
       * a refresh of ours that ended meanwhile holds the newer one. Not
       * for an account whose refresh token was refused meanwhile. */
      if (account != NULL && pooler_account_get_status (account) != POOLER_ACCOUNT_REAUTH_REQUIRED &&
          (!g_hash_table_contains (load->self->tokens, load->account_id) ||
           tokens->expires_at == pooler_account_get_token_expires_at (account)))
        g_hash_table_replace (load->self->tokens, g_strdup (load->account_id),
                              g_steal_pointer (&tokens));
    }

  g_object_unref (load->self);
  g_free (load->account_id);
  g_free (load);
}

/* Reads the account's pair from the keyring into memory, in the background. */
static void
read_tokens_async (PoolerService *self,
                   const char    *account_id)
{
  TokenLoad *load = g_new0 (TokenLoad, 1);

  load->self = g_object_ref (self);
  load->account_id = g_strdup (account_id);
  g_hash_table_add (self->reading, g_strdup (account_id));
  pooler_vault_lookup_async (pooler_service_get_vault (self), account_id, NULL,
                             load_tokens_cb, load);
}

static gboolean quota_is_spent (PoolerService *self,
                                PoolerAccount *account,
                                gint64         now,
                                gint64        *reset_at);

/* Evidence kept from earlier runs; a quota block survives as the
 * account's cooldown_until. */
static void
load_quota (PoolerService *self,
            PoolerAccount *account)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) windows = NULL;
  PoolerQuotaState *state = pooler_quota_state_new ();
  const char *id = pooler_account_get_id (account);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  gint64 reset_at = 0;

  windows = pooler_store_list_quota_windows (self->store, id, &error);
  if (windows == NULL)
    g_warning ("Could not read the quota evidence of account %s: %s", id, error->message);
  for (guint i = 0; windows != NULL && i < windows->len; i++)
    pooler_quota_state_add_window (state, g_ptr_array_index (windows, i));

  if (pooler_account_get_cooldown_until (account) > now)
    {
      g_autoptr(PoolerQuotaEvidence) block = pooler_quota_evidence_new (now);

      block->limit_reached_type = g_strdup ("usage_limit_reached");
      block->blocked_until = pooler_account_get_cooldown_until (account);
      pooler_quota_state_merge (state, block);
    }

  g_hash_table_replace (self->quotas, g_strdup (id), state);

  if (quota_is_spent (self, account, now, &reset_at))
    g_hash_table_replace (self->spent, g_strdup (id), g_memdup2 (&reset_at, sizeof reset_at));
}

static gboolean load_registry_read (PoolerService  *self,
                                    gboolean        sync_tokens,
                                    GError        **error);

/* The Pools, keys and accounts as one snapshot: read apart, a key could
 * arrive without the Pool another process created just before it. */
static gboolean
load_registry (PoolerService  *self,
               gboolean        sync_tokens,
               GError        **error)
{
  gboolean ok;

  if (!pooler_store_read_begin (self->store, error))
    return FALSE;
  ok = load_registry_read (self, sync_tokens, error);
  pooler_store_read_end (self->store);
  return ok;
}

static gboolean
load_registry_read (PoolerService  *self,
                    gboolean        sync_tokens,
                    GError        **error)
{
  g_autoptr(GPtrArray) pools = NULL;
  g_autoptr(GPtrArray) keys = NULL;
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) new_pools = NULL;
  g_autoptr(GHashTable) new_pool_accounts = NULL;
  GHashTableIter iter;
  gpointer key, value;
  gint64 version;

  version = pooler_store_get_config_version (self->store, error);
  if (version < 0)
    return FALSE;

  pools = pooler_store_list_pools (self->store, error);
  if (pools == NULL)
    return FALSE;
  keys = pooler_store_list_keys (self->store, NULL, error);
  if (keys == NULL)
    return FALSE;

  new_pools = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_object_unref);
  new_pool_accounts = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                             (GDestroyNotify) g_ptr_array_unref);

  for (guint i = 0; i < pools->len; i++)
    {
      PoolerPool *pool = g_ptr_array_index (pools, i);
      gint64 id = pooler_pool_get_id (pool);
      g_autoptr(GPtrArray) members = NULL;
      GPtrArray *live = g_ptr_array_new_with_free_func (g_object_unref);

      members = pooler_store_list_accounts (self->store, pooler_pool_get_slug (pool), error);
      if (members == NULL)
        {
          g_ptr_array_unref (live);
          return FALSE;
        }

      for (guint j = 0; j < members->len; j++)
        {
          PoolerAccount *fresh = g_ptr_array_index (members, j);
          const char *account_id = pooler_account_get_id (fresh);
          PoolerAccount *account = g_hash_table_lookup (self->accounts, account_id);

          if (account == NULL)
            {
              account = fresh;
              g_hash_table_insert (self->accounts, g_strdup (account_id), g_object_ref (fresh));
              load_quota (self, account);
            }
          else
            {
              guint64 *queued = g_hash_table_lookup (self->reauth_pending, account_id);
              gboolean keep_reauth = FALSE;

              /* Once the writer has the row, the row is the truth (a sign-in
               * since may have made it active again). */
              if (queued != NULL && (self->writer == NULL ||
                                     pooler_store_writer_has_processed (self->writer, *queued)))
                g_hash_table_remove (self->reauth_pending, account_id);
              else if (queued != NULL)
                keep_reauth = TRUE;
              merge_account (account, fresh, keep_reauth);
            }

          g_hash_table_add (seen, (gpointer) pooler_account_get_id (account));
          g_ptr_array_add (live, g_object_ref (account));
        }

      g_hash_table_insert (new_pools, g_memdup2 (&id, sizeof id), g_object_ref (pool));
      g_hash_table_insert (new_pool_accounts, g_memdup2 (&id, sizeof id), live);
    }

  /* Accounts that belong to no Pool any more leave the registry. */
  g_hash_table_iter_init (&iter, self->accounts);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      if (!g_hash_table_contains (seen, key))
        {
          g_hash_table_remove (self->tokens, key);
          g_hash_table_iter_remove (&iter);
        }
    }

  g_clear_pointer (&self->pools, g_hash_table_unref);
  self->pools = g_steal_pointer (&new_pools);
  g_clear_pointer (&self->pool_accounts, g_hash_table_unref);
  self->pool_accounts = g_steal_pointer (&new_pool_accounts);

  g_hash_table_remove_all (self->keys);
  for (guint i = 0; i < keys->len; i++)
    {
      PoolerKeyRecord *record = g_ptr_array_index (keys, i);
      g_hash_table_insert (self->keys, g_strdup (record->prefix), pooler_key_record_copy (record));
    }

  /* Tokens: read each account's when it first appears, and again when
   * another process (an import, a sign-in) stored a new pair: the row's
   * expiry then differs from the held pair's. Our own refreshes update
   * both. */
  g_hash_table_iter_init (&iter, self->accounts);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      const PoolerTokens *held = g_hash_table_lookup (self->tokens, key);

      /* The held pair serves until the new one is read: if it is dead
       * meanwhile, the refusal of its refresh finds the new pair. An
       * account that needs a sign-in has only a refused pair to read (a
       * new sign-in makes its row active again), nor one whose refusal is
       * being checked. */
      if (held != NULL &&
          (held->expires_at == pooler_account_get_token_expires_at (value) ||
           g_hash_table_contains (self->refreshing, key)))
        continue;
      if (held == NULL &&
          (pooler_account_get_status (value) == POOLER_ACCOUNT_REAUTH_REQUIRED ||
           g_hash_table_contains (self->reading, key)))
        continue;

      if (sync_tokens)
        {
          g_autoptr(GError) local_error = NULL;
          PoolerTokens *tokens;

          tokens = pooler_vault_lookup_sync (pooler_service_get_vault (self), key, NULL, &local_error);
          if (tokens != NULL)
            g_hash_table_insert (self->tokens, g_strdup (key), tokens);
          else if (g_error_matches (local_error, POOLER_ERROR, POOLER_ERROR_NO_VAULT))
            {
              g_propagate_error (error, g_steal_pointer (&local_error));
              return FALSE;
            }
          else
            g_warning ("Account %s has no usable tokens in the keyring: %s",
                       (const char *) key, local_error->message);
        }
      else
        read_tokens_async (self, key);
    }

  self->config_version = version;
  return TRUE;
}

void
pooler_service_reload (PoolerService *self)
{
  g_autoptr(GError) error = NULL;
  gint64 version;

  g_return_if_fail (POOLER_IS_SERVICE (self));

  if (!self->started)
    return;

  version = pooler_store_get_config_version (self->store, &error);
  if (version < 0)
    {
      g_warning ("Could not read the configuration version: %s", error->message);
      return;
    }
  if (version == self->config_version)
    return;

  g_debug ("Configuration changed (version %" G_GINT64_FORMAT "), reloading", version);
  if (!load_registry (self, FALSE, &error))
    {
      g_warning ("Could not reload the configuration: %s", error->message);
      return;
    }

  g_signal_emit (self, signals [REGISTRY_CHANGED], 0);
}

static gboolean
reload_cb (gpointer user_data)
{
  pooler_service_reload (POOLER_SERVICE (user_data));
  return G_SOURCE_CONTINUE;
}

static gboolean
maintenance_cb (gpointer user_data)
{
  pooler_service_run_maintenance (POOLER_SERVICE (user_data));
  return G_SOURCE_CONTINUE;
}

gboolean
pooler_service_start (PoolerService  *self,
                      GError        **error)
{
  g_autoptr(GError) local_error = NULL;
  gint64 interrupted;

  g_return_val_if_fail (POOLER_IS_SERVICE (self), FALSE);

  if (self->started)
    return TRUE;

  if (!pooler_vault_check_available (pooler_service_get_vault (self), NULL, error))
    return FALSE;

  interrupted = pooler_store_mark_interrupted (self->store, &local_error);
  if (interrupted < 0)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  if (interrupted > 0)
    g_message ("%" G_GINT64_FORMAT " request(s) were in flight when the gateway last stopped; marked as interrupted",
               interrupted);

  if (!load_registry (self, TRUE, error))
    return FALSE;

  /* Conversations stay where they were before a restart. */
  {
    g_autoptr(GPtrArray) entries = pooler_store_list_affinities (self->store,
                                                                 g_get_real_time () / G_USEC_PER_SEC,
                                                                 error);
    if (entries == NULL)
      return FALSE;
    for (guint i = 0; i < entries->len; i++)
      pooler_affinity_load (self->affinity, g_ptr_array_index (entries, i));
  }

  self->writer = pooler_store_writer_new (pooler_store_get_path (self->store), error);
  if (self->writer == NULL)
    return FALSE;

  self->reload_source = g_timeout_add_seconds (RELOAD_INTERVAL_SECONDS, reload_cb, self);
  self->maintenance_source = g_timeout_add_seconds (MAINTENANCE_INTERVAL_SECONDS, maintenance_cb, self);
  self->started = TRUE;

  return TRUE;
}

void
pooler_service_stop (PoolerService *self)
{
  g_return_if_fail (POOLER_IS_SERVICE (self));

  g_clear_handle_id (&self->reload_source, g_source_remove);
  g_clear_handle_id (&self->maintenance_source, g_source_remove);

  if (self->writer != NULL)
    {
      pooler_store_writer_close (self->writer);
      g_clear_object (&self->writer);
    }

  self->started = FALSE;
}

gboolean
pooler_service_is_started (PoolerService *self)
{
  g_return_val_if_fail (POOLER_IS_SERVICE (self), FALSE);

  return self->started;
}

static void
audit (PoolerService *self,
       const char    *action,
       const char    *target,
       const char    *detail)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *actor = g_strdup_printf ("%s (pid %d)", g_get_user_name (), (int) getpid ());

  /* Serving, the main loop does not wait on SQLite (a refused refresh
   * writes one while streams flow). */
  if (self->writer != NULL)
    pooler_store_writer_add_audit_event (self->writer, actor, action, target, detail);
  else if (!pooler_store_add_audit_event (self->store, actor, action, target, detail, &error))
    g_warning ("Could not write the audit event %s: %s", action, error->message);
}

PoolerPool *
pooler_service_create_pool (PoolerService  *self,
                            const char     *slug,
                            const char     *strategy,
                            GError        **error)
{
  PoolerPool *pool;

  g_return_val_if_fail (POOLER_IS_SERVICE (self), NULL);

  if (!pooler_pool_slug_is_valid (slug))
    {
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                   "“%s” is not a valid Pool name: use 1–64 letters, digits, '-', '_' or '.', starting with a letter or digit",
                   slug != NULL ? slug : "");
      return NULL;
    }
  if (strategy != NULL && !pooler_strategy_is_valid (strategy))
    {
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                   "unknown strategy “%s”: use round-robin, quota-first, least-recent or fill-first",
                   strategy);
      return NULL;
    }

  pool = pooler_store_create_pool (self->store, slug, strategy, error);
  if (pool != NULL)
    {
      audit (self, "pool.create", slug, pooler_pool_get_strategy (pool));
      pooler_service_reload (self);
    }

  return pool;
}

static PoolerPool *find_pool_for_user (PoolerService  *self,
                                       const char     *slug,
                                       GError        **error);

gboolean
pooler_service_set_pool_ring_size (PoolerService  *self,
                                   const char     *slug,
                                   guint           ring_size,
                                   GError        **error)
{
  g_autoptr(PoolerPool) pool = NULL;
  g_autofree char *detail = NULL;

  g_return_val_if_fail (POOLER_IS_SERVICE (self), FALSE);

  if (ring_size < 1 || ring_size > POOLER_POOL_RING_SIZE_MAX)
    {
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                   "the ring size must be between 1 and %d", POOLER_POOL_RING_SIZE_MAX);
      return FALSE;
    }

  pool = find_pool_for_user (self, slug, error);
  if (pool == NULL)
    return FALSE;

  pooler_pool_set_ring_size (pool, ring_size);
  if (!pooler_store_save_pool (self->store, pool, error))
    return FALSE;

  detail = g_strdup_printf ("ring size %u", ring_size);
  audit (self, "pool.set-ring-size", slug, detail);
  pooler_service_reload (self);
  return TRUE;
}

gboolean
pooler_service_set_pool_strategy (PoolerService  *self,
                                  const char     *slug,
                                  const char     *strategy,
                                  GError        **error)
{
  g_autoptr(PoolerPool) pool = NULL;

  g_return_val_if_fail (POOLER_IS_SERVICE (self), FALSE);

  if (!pooler_strategy_is_valid (strategy))
    {
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                   "unknown strategy “%s”: use round-robin, quota-first, least-recent or fill-first",
                   strategy != NULL ? strategy : "");
      return FALSE;
    }

  pool = pooler_store_find_pool (self->store, slug, error);
  if (pool == NULL)
    return FALSE;

  pooler_pool_set_strategy (pool, strategy);
  if (!pooler_store_save_pool (self->store, pool, error))
    return FALSE;

  audit (self, "pool.set-strategy", slug, strategy);
  pooler_service_reload (self);
  return TRUE;
}

static char *
new_account_id (void)
{
  g_autofree char *uuid = g_uuid_string_random ();

  /* "acc_" and the first 12 hex digits of a random UUID: short to type,
   * and a collision is caught by the primary key. */
  return g_strdup_printf ("acc_%.8s%.4s", uuid, uuid + 9);
}

static PoolerPool *
find_pool_for_user (PoolerService  *self,
                    const char     *slug,
                    GError        **error)
{
  g_autoptr(GError) local_error = NULL;
  PoolerPool *pool;

  pool = pooler_store_find_pool (self->store, slug, &local_error);
  if (pool == NULL)
    {
      if (g_error_matches (local_error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND))
        g_set_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND,
                     "there is no Pool named “%s” (create it with: codex-pooler pool create %s)",
                     slug, slug);
      else
        g_propagate_error (error, g_steal_pointer (&local_error));
    }

  return pool;
}

gboolean
pooler_service_can_add_to_pool (PoolerService  *self,
                                const char     *pool_slug,
                                GError        **error)
{
  g_autoptr(PoolerPool) pool = NULL;

  g_return_val_if_fail (POOLER_IS_SERVICE (self), FALSE);
  g_return_val_if_fail (pool_slug != NULL, FALSE);

  pool = find_pool_for_user (self, pool_slug, error);
  return pool != NULL && pooler_vault_check_available (pooler_service_get_vault (self), NULL, error);
}

/* A sign-in on its way in (import, browser sign-in): the Pool, the
 * account row as it will be saved and the tokens for the keyring. */
typedef struct
{
  PoolerPool    *pool;
  PoolerAccount *account;
  PoolerTokens  *tokens;
  char          *pool_slug;
  const char    *audit_created;  /* static */
  gboolean       created;
  GError        *error;          /* the failure, while a new account's tokens go */
} SignIn;

static void
sign_in_free (SignIn *sign_in)
{
  g_clear_object (&sign_in->pool);
  g_clear_object (&sign_in->account);
  g_clear_pointer (&sign_in->tokens, pooler_tokens_free);
  g_clear_error (&sign_in->error);
  g_free (sign_in->pool_slug);
  g_free (sign_in);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SignIn, sign_in_free)

/* The account @auth names, found by its ChatGPT identity or new, with
 * what @auth says of it; nothing is written yet. @audit_created is the
 * audit action of a new account. */
static SignIn *
sign_in_prepare (PoolerService         *self,
                 const PoolerAuthFile  *auth,
                 const char            *pool_slug,
                 const char            *label,
                 const char            *audit_created,
                 GError               **error)
{
  g_autoptr(SignIn) sign_in = g_new0 (SignIn, 1);
  g_autoptr(GError) local_error = NULL;
  g_autofree char *new_id = NULL;
  PoolerAccount *account;

  sign_in->pool = find_pool_for_user (self, pool_slug, error);
  if (sign_in->pool == NULL)
    return NULL;
  sign_in->pool_slug = g_strdup (pool_slug);
  sign_in->audit_created = audit_created;
  sign_in->tokens = pooler_tokens_copy (auth->tokens);

  sign_in->account = pooler_store_find_account_by_identity (self->store, auth->account_id,
                                                            auth->claims->chatgpt_user_id, &local_error);
  if (sign_in->account == NULL)
    {
      if (!g_error_matches (local_error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return NULL;
        }
      new_id = new_account_id ();
      sign_in->account = pooler_account_new (new_id);
      sign_in->created = TRUE;
    }
  account = sign_in->account;

  pooler_account_set_chatgpt_account_id (account, auth->account_id);
  pooler_account_set_chatgpt_user_id (account, auth->claims->chatgpt_user_id);
  pooler_account_set_email (account, auth->claims->email);
  pooler_account_set_plan (account, auth->claims->plan_type);
  pooler_account_set_token_expires_at (account, auth->tokens->expires_at);
  if (label != NULL)
    pooler_account_set_label (account, label);
  else if (pooler_account_get_label (account) == NULL)
    pooler_account_set_label (account, auth->claims->email != NULL ? auth->claims->email
                                                                  : auth->account_id);
  /* A fresh sign-in answers for a past refresh failure. */
  if (pooler_account_get_status (account) == POOLER_ACCOUNT_REAUTH_REQUIRED)
    pooler_account_set_status (account, POOLER_ACCOUNT_ACTIVE);

  return g_steal_pointer (&sign_in);
}

/* After the tokens are in the keyring: the row, the Pool link, the
 * audit event, the running gateway's copy of the tokens. */
static PoolerAccount *
sign_in_commit (PoolerService  *self,
                SignIn         *sign_in,
                GError        **error)
{
  PoolerAccount *account = sign_in->account;
  const char *id = pooler_account_get_id (account);

  /* On failure the caller takes a new account's tokens back: without a
   * row they serve nothing. */
  if (!pooler_store_save_account_in_pool (self->store, account, pooler_pool_get_id (sign_in->pool), error))
    return NULL;

  audit (self, sign_in->created ? sign_in->audit_created : "account.update", id, sign_in->pool_slug);

  if (self->started)
    g_hash_table_replace (self->tokens, g_strdup (id), pooler_tokens_copy (sign_in->tokens));
  pooler_service_reload (self);
  g_signal_emit (self, signals [ACCOUNT_CHANGED], 0, account);

  return g_object_ref (account);
}

/* Adds the account @auth names to the Pool, or updates it: tokens to the
 * keyring first (a row without tokens would be an account that cannot
 * serve), then the row. */
static PoolerAccount *
add_signed_in (PoolerService         *self,
               const PoolerAuthFile  *auth,
               const char            *pool_slug,
               const char            *label,
               const char            *audit_created,
               gboolean              *out_created,
               GError               **error)
{
  g_autoptr(SignIn) sign_in = NULL;
  PoolerVault *vault = pooler_service_get_vault (self);
  PoolerAccount *account;

  sign_in = sign_in_prepare (self, auth, pool_slug, label, audit_created, error);
  if (sign_in == NULL || !pooler_vault_check_available (vault, NULL, error))
    return NULL;

  if (!pooler_vault_store_sync (vault, pooler_account_get_id (sign_in->account),
                                pooler_account_get_label (sign_in->account), sign_in->tokens, NULL, error))
    return NULL;

  account = sign_in_commit (self, sign_in, error);
  if (account == NULL && sign_in->created)
    pooler_vault_clear_sync (vault, pooler_account_get_id (sign_in->account), NULL, NULL);
  if (account != NULL && out_created != NULL)
    *out_created = sign_in->created;

  return account;
}

PoolerAccount *
pooler_service_import_account (PoolerService  *self,
                               const char     *auth_json_path,
                               const char     *pool_slug,
                               const char     *label,
                               gboolean       *out_created,
                               GError        **error)
{
  g_autoptr(PoolerAuthFile) auth = NULL;
  g_autofree char *default_path = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  g_return_val_if_fail (POOLER_IS_SERVICE (self), NULL);
  g_return_val_if_fail (pool_slug != NULL, NULL);

  if (auth_json_path == NULL)
    auth_json_path = default_path = pooler_auth_file_default_path ();

  auth = pooler_auth_file_load (auth_json_path, now, error);
  if (auth == NULL)
    return NULL;

  return add_signed_in (self, auth, pool_slug, label, "account.import", out_created, error);
}

PoolerAccount *
pooler_service_add_signed_in (PoolerService         *self,
                              const PoolerAuthFile  *auth,
                              const char            *pool_slug,
                              const char            *label,
                              gboolean              *out_created,
                              GError               **error)
{
  g_return_val_if_fail (POOLER_IS_SERVICE (self), NULL);
  g_return_val_if_fail (auth != NULL, NULL);
  g_return_val_if_fail (pool_slug != NULL, NULL);

  return add_signed_in (self, auth, pool_slug, label, "account.login", out_created, error);
}

static void
sign_in_taken_back_cb (GObject      *source,
                       GAsyncResult *result,
                       gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  SignIn *sign_in = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;

  if (!pooler_vault_clear_finish (POOLER_VAULT (source), result, &error))
    g_warning ("Could not delete the keyring item of an account that was not added: %s", error->message);
  g_task_return_error (task, g_steal_pointer (&sign_in->error));
}

static void
sign_in_stored_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  PoolerService *self = g_task_get_source_object (task);
  SignIn *sign_in = g_task_get_task_data (task);
  PoolerAccount *account;
  GError *error = NULL;

  if (pooler_vault_store_finish (POOLER_VAULT (source), result, &error))
    account = sign_in_commit (self, sign_in, &error);
  else
    account = NULL;

  if (account == NULL)
    {
      /* A new account's tokens go again: without a row they serve
       * nothing (and a cancelled store may still have kept them). The
       * call ends once they are gone, so a caller that exits then (the
       * command line) leaves nothing behind. An update's replaced the
       * old pair, which still names this account. */
      if (sign_in->created)
        {
          sign_in->error = error;
          pooler_vault_clear_async (POOLER_VAULT (source), pooler_account_get_id (sign_in->account),
                                    NULL, sign_in_taken_back_cb, g_steal_pointer (&task));
          return;
        }
      g_task_return_error (task, error);
      return;
    }

  g_task_return_pointer (task, account, g_object_unref);
}

static void
add_signed_in_async (PoolerService         *self,
                     const PoolerAuthFile  *auth,
                     const char            *pool_slug,
                     const char            *label,
                     const char            *audit_created,
                     GCancellable          *cancellable,
                     GAsyncReadyCallback    callback,
                     gpointer               user_data,
                     gpointer               source_tag)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  GError *error = NULL;
  SignIn *sign_in;

  g_task_set_source_tag (task, source_tag);
  /* Once the keyring has the tokens the account is added; a late
   * cancellation must not report otherwise. */
  g_task_set_check_cancellable (task, FALSE);

  sign_in = sign_in_prepare (self, auth, pool_slug, label, audit_created, &error);
  if (sign_in == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  g_task_set_task_data (task, sign_in, (GDestroyNotify) sign_in_free);

  pooler_vault_store_async (pooler_service_get_vault (self), pooler_account_get_id (sign_in->account),
                            pooler_account_get_label (sign_in->account), sign_in->tokens,
                            cancellable, sign_in_stored_cb, g_steal_pointer (&task));
}

static PoolerAccount *
add_signed_in_finish (PoolerService  *self,
                      GAsyncResult   *result,
                      gpointer        source_tag,
                      gboolean       *out_created,
                      GError        **error)
{
  PoolerAccount *account;

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == source_tag, NULL);

  account = g_task_propagate_pointer (G_TASK (result), error);
  if (account != NULL && out_created != NULL)
    *out_created = ((SignIn *) g_task_get_task_data (G_TASK (result)))->created;

  return account;
}

void
pooler_service_add_signed_in_async (PoolerService         *self,
                                    const PoolerAuthFile  *auth,
                                    const char            *pool_slug,
                                    const char            *label,
                                    GCancellable          *cancellable,
                                    GAsyncReadyCallback    callback,
                                    gpointer               user_data)
{
  g_return_if_fail (POOLER_IS_SERVICE (self));
  g_return_if_fail (auth != NULL);
  g_return_if_fail (pool_slug != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  add_signed_in_async (self, auth, pool_slug, label, "account.login", cancellable, callback, user_data,
                       pooler_service_add_signed_in_async);
}

PoolerAccount *
pooler_service_add_signed_in_finish (PoolerService  *self,
                                     GAsyncResult   *result,
                                     gboolean       *out_created,
                                     GError        **error)
{
  g_return_val_if_fail (POOLER_IS_SERVICE (self), NULL);

  return add_signed_in_finish (self, result, pooler_service_add_signed_in_async, out_created, error);
}

void
pooler_service_import_account_async (PoolerService        *self,
                                     const char           *auth_json_path,
                                     const char           *pool_slug,
                                     const char           *label,
                                     GCancellable         *cancellable,
                                     GAsyncReadyCallback   callback,
                                     gpointer              user_data)
{
  g_autoptr(PoolerAuthFile) auth = NULL;
  g_autofree char *default_path = NULL;
  GError *error = NULL;

  g_return_if_fail (POOLER_IS_SERVICE (self));
  g_return_if_fail (pool_slug != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  if (auth_json_path == NULL)
    auth_json_path = default_path = pooler_auth_file_default_path ();

  /* A small local file: read here, the keyring is what may take long. */
  auth = pooler_auth_file_load (auth_json_path, g_get_real_time () / G_USEC_PER_SEC, &error);
  if (auth == NULL)
    {
      g_task_report_error (self, callback, user_data, pooler_service_import_account_async, error);
      return;
    }

  add_signed_in_async (self, auth, pool_slug, label, "account.import", cancellable, callback, user_data,
                       pooler_service_import_account_async);
}

PoolerAccount *
pooler_service_import_account_finish (PoolerService  *self,
                                      GAsyncResult   *result,
                                      gboolean       *out_created,
                                      GError        **error)
{
  g_return_val_if_fail (POOLER_IS_SERVICE (self), NULL);

  return add_signed_in_finish (self, result, pooler_service_import_account_async, out_created, error);
}

gboolean
pooler_service_set_account_status (PoolerService        *self,
                                   const char           *account_id,
                                   PoolerAccountStatus   status,
                                   GError              **error)
{
  g_autoptr(PoolerAccount) stored = NULL;
  PoolerAccount *live;

  g_return_val_if_fail (POOLER_IS_SERVICE (self), FALSE);

  stored = pooler_store_find_account (self->store, account_id, error);
  if (stored == NULL)
    return FALSE;

  /* Its refresh token is dead: only a new sign-in brings it back. */
  if (status == POOLER_ACCOUNT_ACTIVE && pooler_account_get_status (stored) == POOLER_ACCOUNT_REAUTH_REQUIRED)
    {
      g_auto(GStrv) pools = pooler_store_list_account_pools (self->store, account_id, NULL);

      g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                   "Account %s needs to sign in again: codex-pooler account login --pool %s",
                   account_id, pools != NULL && pools[0] != NULL ? pools[0] : "POOL");
      return FALSE;
    }

  pooler_account_set_status (stored, status);
  if (!pooler_store_save_account (self->store, stored, error))
    return FALSE;

  audit (self, "account.set-status", account_id, pooler_account_status_to_string (status));

  live = g_hash_table_lookup (self->accounts, account_id);
  if (live != NULL)
    pooler_account_set_status (live, status);
  g_signal_emit (self, signals [ACCOUNT_CHANGED], 0, live != NULL ? live : stored);

  return TRUE;
}

gboolean
pooler_service_update_account (PoolerService  *self,
                               const char     *account_id,
                               const char     *label,
                               int             priority,
                               GError        **error)
{
  g_autoptr(PoolerAccount) stored = NULL;
  g_autofree char *detail = NULL;

  g_return_val_if_fail (POOLER_IS_SERVICE (self), FALSE);

  stored = pooler_store_find_account (self->store, account_id, error);
  if (stored == NULL)
    return FALSE;

  if (label != NULL)
    pooler_account_set_label (stored, label);
  if (priority != G_MININT)
    pooler_account_set_priority (stored, priority);
  if (!pooler_store_save_account (self->store, stored, error))
    return FALSE;

  detail = g_strdup_printf ("priority %d", pooler_account_get_priority (stored));
  audit (self, "account.update", account_id, detail);
  pooler_service_reload (self);
  g_signal_emit (self, signals [ACCOUNT_CHANGED], 0, stored);

  return TRUE;
}

/* The row goes first: from then on the tokens serve nothing, so a
 * keyring that is away leaves an orphan item, harmless and reported
 * (warn_orphan()). */
static gboolean
remove_account_row (PoolerService  *self,
                    const char     *account_id,
                    GError        **error)
{
  g_autoptr(PoolerAccount) stored = NULL;

  stored = pooler_store_find_account (self->store, account_id, error);
  if (stored == NULL || !pooler_store_remove_account (self->store, account_id, error))
    return FALSE;

  audit (self, "account.remove", account_id, NULL);
  pooler_service_reload (self);
  g_signal_emit (self, signals [ACCOUNT_CHANGED], 0, stored);

  return TRUE;
}

static void
warn_orphan (const char   *account_id,
             const GError *error)
{
  if (!g_error_matches (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND))
    g_warning ("Removed account %s, but could not delete its keyring item: %s",
               account_id, error->message);
}

gboolean
pooler_service_remove_account (PoolerService  *self,
                               const char     *account_id,
                               GError        **error)
{
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (POOLER_IS_SERVICE (self), FALSE);
  g_return_val_if_fail (account_id != NULL, FALSE);

  if (!remove_account_row (self, account_id, error))
    return FALSE;

  if (!pooler_vault_clear_sync (pooler_service_get_vault (self), account_id, NULL, &local_error))
    warn_orphan (account_id, local_error);

  return TRUE;
}

static void
removed_cleared_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;

  if (!pooler_vault_clear_finish (POOLER_VAULT (source), result, &error))
    warn_orphan (g_task_get_task_data (task), error);

  g_task_return_boolean (task, TRUE);
}

void
pooler_service_remove_account_async (PoolerService        *self,
                                     const char           *account_id,
                                     GCancellable         *cancellable,
                                     GAsyncReadyCallback   callback,
                                     gpointer              user_data)
{
  g_autoptr(GTask) task = NULL;
  GError *error = NULL;

  g_return_if_fail (POOLER_IS_SERVICE (self));
  g_return_if_fail (account_id != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, pooler_service_remove_account_async);
  /* The account is gone once its row is. */
  g_task_set_check_cancellable (task, FALSE);

  if (!remove_account_row (self, account_id, &error))
    {
      g_task_return_error (task, error);
      return;
    }

  g_task_set_task_data (task, g_strdup (account_id), g_free);
  pooler_vault_clear_async (pooler_service_get_vault (self), account_id, cancellable,
                            removed_cleared_cb, g_steal_pointer (&task));
}

gboolean
pooler_service_remove_account_finish (PoolerService  *self,
                                      GAsyncResult   *result,
                                      GError        **error)
{
  g_return_val_if_fail (POOLER_IS_SERVICE (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == pooler_service_remove_account_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

char *
pooler_service_create_key (PoolerService    *self,
                           const char       *pool_slug,
                           const char       *name,
                           PoolerKeyRecord **out_record,
                           GError          **error)
{
  g_autoptr(PoolerPool) pool = NULL;
  g_autoptr(PoolerKeyRecord) record = NULL;
  g_autofree char *key = NULL;

  g_return_val_if_fail (POOLER_IS_SERVICE (self), NULL);

  pool = find_pool_for_user (self, pool_slug, error);
  if (pool == NULL)
    return NULL;

  record = pooler_key_record_new ();
  key = pooler_key_generate (POOLER_KEY_KIND_POOL, &record->prefix, &record->secret_sha256, error);
  if (key == NULL)
    return NULL;

  record->pool_id = pooler_pool_get_id (pool);
  record->pool_slug = g_strdup (pooler_pool_get_slug (pool));
  record->name = g_strdup (name);
  record->created_at = g_get_real_time () / G_USEC_PER_SEC;

  if (!pooler_store_insert_key (self->store, record, error))
    return NULL;

  audit (self, "key.create", record->prefix, pool_slug);
  pooler_service_reload (self);

  if (out_record != NULL)
    *out_record = g_steal_pointer (&record);

  return g_steal_pointer (&key);
}

gboolean
pooler_service_revoke_key (PoolerService  *self,
                           const char     *prefix,
                           GError        **error)
{
  g_return_val_if_fail (POOLER_IS_SERVICE (self), FALSE);

  if (!pooler_store_revoke_key (self->store, prefix, error))
    return FALSE;

  audit (self, "key.revoke", prefix, NULL);
  pooler_service_reload (self);
  return TRUE;
}

PoolerKeyCheck
pooler_service_check_key (PoolerService    *self,
                          const char       *key,
                          PoolerKeyRecord **out_record)
{
  g_autofree char *prefix = NULL;
  g_autofree char *secret = NULL;
  g_autofree char *digest = NULL;
  PoolerKeyRecord *record;

  g_return_val_if_fail (POOLER_IS_SERVICE (self), POOLER_KEY_UNKNOWN);

  if (key == NULL || *key == '\0')
    return POOLER_KEY_MISSING;

  if (!pooler_key_split (POOLER_KEY_KIND_POOL, key, &prefix, &secret))
    return POOLER_KEY_MALFORMED;

  record = g_hash_table_lookup (self->keys, prefix);
  if (record == NULL)
    {
      /* Maybe created a moment ago by another process. */
      pooler_service_reload (self);
      record = g_hash_table_lookup (self->keys, prefix);
    }

  digest = pooler_key_hash_secret (secret);
  if (record == NULL || !pooler_key_digest_equal (digest, record->secret_sha256))
    return POOLER_KEY_UNKNOWN;
  if (record->revoked)
    return POOLER_KEY_REVOKED;
  if (record->expires_at != 0 && record->expires_at <= g_get_real_time () / G_USEC_PER_SEC)
    return POOLER_KEY_EXPIRED;

  if (out_record != NULL)
    *out_record = pooler_key_record_copy (record);

  return POOLER_KEY_OK;
}

const char *
pooler_key_check_to_message (PoolerKeyCheck check)
{
  switch (check)
    {
    case POOLER_KEY_OK:
      return "ok";
    case POOLER_KEY_MISSING:
      return "Missing API key: send a Pool key as \"Authorization: Bearer sk-cxp-...\".";
    case POOLER_KEY_MALFORMED:
      return "Malformed API key: Pool keys look like sk-cxp-<12 hex>-<43 characters>.";
    case POOLER_KEY_REVOKED:
      return "This Pool key has been revoked.";
    case POOLER_KEY_EXPIRED:
      return "This Pool key has expired.";
    case POOLER_KEY_UNKNOWN:
    default:
      return "Incorrect API key provided.";
    }
}

PoolerPool *
pooler_service_lookup_pool (PoolerService *self,
                            gint64         pool_id)
{
  g_return_val_if_fail (POOLER_IS_SERVICE (self), NULL);

  return g_hash_table_lookup (self->pools, &pool_id);
}

GPtrArray *
pooler_service_get_pool_accounts (PoolerService *self,
                                  gint64         pool_id)
{
  g_return_val_if_fail (POOLER_IS_SERVICE (self), NULL);

  return g_hash_table_lookup (self->pool_accounts, &pool_id);
}

GPtrArray *
pooler_service_list_accounts (PoolerService *self)
{
  GPtrArray *accounts = g_ptr_array_new_with_free_func (g_object_unref);
  GHashTableIter iter;
  gpointer value;

  g_return_val_if_fail (POOLER_IS_SERVICE (self), NULL);

  g_hash_table_iter_init (&iter, self->accounts);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (accounts, g_object_ref (value));

  return accounts;
}

const PoolerTokens *
pooler_service_peek_tokens (PoolerService *self,
                            const char    *account_id)
{
  g_return_val_if_fail (POOLER_IS_SERVICE (self), NULL);

  return g_hash_table_lookup (self->tokens, account_id);
}

void
pooler_service_record_request (PoolerService             *self,
                               const PoolerRequestRecord *record)
{
  g_return_if_fail (POOLER_IS_SERVICE (self));
  g_return_if_fail (record != NULL);

  if (self->writer != NULL)
    pooler_store_writer_push_request (self->writer, record);

  if (record->state != POOLER_REQUEST_IN_FLIGHT)
    g_signal_emit (self, signals [REQUEST_FINISHED], 0, record);
}

void
pooler_service_note_account_used (PoolerService *self,
                                  PoolerAccount *account,
                                  const char    *key_prefix)
{
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  g_return_if_fail (POOLER_IS_SERVICE (self));
  g_return_if_fail (POOLER_IS_ACCOUNT (account));

  pooler_account_set_last_used_at (account, now);

  if (self->writer != NULL)
    {
      pooler_store_writer_touch_account (self->writer, pooler_account_get_id (account), now);
      if (key_prefix != NULL)
        pooler_store_writer_touch_key (self->writer, key_prefix, now);
    }
}

gboolean
pooler_service_touch_mcp_token (PoolerService *self,
                                const char    *prefix,
                                gint64         unix_seconds)
{
  g_return_val_if_fail (POOLER_IS_SERVICE (self), FALSE);
  g_return_val_if_fail (prefix != NULL, FALSE);

  if (self->writer == NULL)
    return FALSE;
  pooler_store_writer_touch_mcp_token (self->writer, prefix, unix_seconds);
  return TRUE;
}

void
pooler_service_flush (PoolerService *self)
{
  g_return_if_fail (POOLER_IS_SERVICE (self));

  if (self->writer != NULL)
    pooler_store_writer_flush (self->writer);
}

SoupSession *
pooler_service_get_session (PoolerService *self)
{
  g_return_val_if_fail (POOLER_IS_SERVICE (self), NULL);

  return self->session;
}

PoolerUpstream *
pooler_service_get_upstream (PoolerService *self)
{
  g_return_val_if_fail (POOLER_IS_SERVICE (self), NULL);

  return self->upstream;
}

/* ---- quota ------------------------------------------------------------ */

PoolerQuotaState *
pooler_service_get_quota (PoolerService *self,
                          const char    *account_id)
{
  g_return_val_if_fail (POOLER_IS_SERVICE (self), NULL);

  return g_hash_table_lookup (self->quotas, account_id);
}

static gboolean
quota_is_spent (PoolerService *self,
                PoolerAccount *account,
                gint64         now,
                gint64        *reset_at)
{
  PoolerQuotaState *state = g_hash_table_lookup (self->quotas, pooler_account_get_id (account));

  *reset_at = 0;
  return state != NULL && pooler_quota_state_is_spent (state, now, reset_at);
}

/* Emits account-exhausted / account-restored when the spent state moved. */
static void
update_spent (PoolerService *self,
              PoolerAccount *account,
              gint64         now)
{
  const char *id = pooler_account_get_id (account);
  gboolean was_spent = g_hash_table_contains (self->spent, id);
  gint64 reset_at = 0;
  gboolean spent = quota_is_spent (self, account, now, &reset_at);

  if (spent && !was_spent)
    {
      g_hash_table_replace (self->spent, g_strdup (id), g_memdup2 (&reset_at, sizeof reset_at));
      g_message ("Account %s has spent its quota%s", id, reset_at > 0 ? " until its reset" : "");
      g_signal_emit (self, signals [ACCOUNT_EXHAUSTED], 0, account, reset_at);
    }
  else if (!spent && was_spent)
    {
      g_hash_table_remove (self->spent, id);
      g_message ("Account %s has quota again", id);
      g_signal_emit (self, signals [ACCOUNT_RESTORED], 0, account);
    }
}

static gboolean
quota_window_changed (PoolerQuotaState        *state,
                      const PoolerQuotaWindow *window)
{
  GPtrArray *known = pooler_quota_state_get_windows (state);

  for (guint i = 0; known != NULL && i < known->len; i++)
    {
      const PoolerQuotaWindow *old = g_ptr_array_index (known, i);

      if (old->window_minutes != window->window_minutes ||
          g_strcmp0 (old->limit_id, window->limit_id) != 0)
        continue;

      return old->used_percent != window->used_percent || old->reset_at != window->reset_at;
    }

  return TRUE;
}

void
pooler_service_observe_quota (PoolerService             *self,
                              PoolerAccount             *account,
                              const PoolerQuotaEvidence *evidence)
{
  const char *id;
  PoolerQuotaState *state;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  g_return_if_fail (POOLER_IS_SERVICE (self));
  g_return_if_fail (POOLER_IS_ACCOUNT (account));

  if (evidence == NULL)
    return;

  id = pooler_account_get_id (account);
  state = g_hash_table_lookup (self->quotas, id);
  if (state == NULL)
    {
      state = pooler_quota_state_new ();
      g_hash_table_replace (self->quotas, g_strdup (id), state);
    }
  /* Every answer repeats the evidence: write a window down only when it
   * is new or its numbers moved (so the stored observed_at is the last
   * change; a restart treats older evidence as stale and refreshes it). */
  if (self->writer != NULL)
    for (guint i = 0; evidence->windows != NULL && i < evidence->windows->len; i++)
      {
        const PoolerQuotaWindow *window = g_ptr_array_index (evidence->windows, i);

        if (quota_window_changed (state, window))
          pooler_store_writer_put_quota_window (self->writer, id, window);
      }

  pooler_quota_state_merge (state, evidence);

  /* A block outlives a restart as the account's cooldown (a rare write,
   * through the writer: this runs while the answer is on its way). */
  if (evidence->blocked_until > now &&
      evidence->blocked_until > pooler_account_get_cooldown_until (account))
    {
      pooler_account_set_cooldown_until (account, evidence->blocked_until);
      if (self->writer != NULL)
        pooler_store_writer_set_cooldown (self->writer, id, evidence->blocked_until);
      else
        {
          g_autoptr(GError) error = NULL;
          g_autoptr(PoolerAccount) stored = pooler_store_find_account (self->store, id, NULL);

          if (stored != NULL)
            {
              pooler_account_set_cooldown_until (stored, evidence->blocked_until);
              if (!pooler_store_save_account (self->store, stored, &error))
                g_warning ("Could not save the cooldown of account %s: %s", id, error->message);
            }
        }
    }

  update_spent (self, account, now);
}

void
pooler_service_observe_quota_fields (PoolerService          *self,
                                     PoolerAccount          *account,
                                     const PoolerHttpFields *fields)
{
  g_autoptr(PoolerQuotaEvidence) evidence = NULL;
  PoolerQuotaState *state;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  g_return_if_fail (POOLER_IS_SERVICE (self));
  g_return_if_fail (POOLER_IS_ACCOUNT (account));
  g_return_if_fail (fields != NULL);

  state = g_hash_table_lookup (self->quotas, pooler_account_get_id (account));
  if (state != NULL && pooler_quota_state_repeats_fields (state, fields, now))
    return;

  evidence = pooler_quota_parse_fields (fields, now);
  pooler_service_observe_quota (self, account, evidence);
  /* observe_quota() made the state if there was none. */
  state = g_hash_table_lookup (self->quotas, pooler_account_get_id (account));
  if (state != NULL)
    pooler_quota_state_mark_fields (state, fields, now);
}

gboolean
pooler_service_claim_usage_poll (PoolerService *self,
                                 PoolerAccount *account,
                                 gint64         now)
{
  const char *id;
  PoolerQuotaState *state;
  gint64 *last;

  g_return_val_if_fail (POOLER_IS_SERVICE (self), FALSE);

  id = pooler_account_get_id (account);
  state = g_hash_table_lookup (self->quotas, id);
  if (state != NULL && !pooler_quota_state_is_stale (state, now))
    return FALSE;

  last = g_hash_table_lookup (self->usage_polls, id);
  if (last != NULL && now - *last < USAGE_POLL_MIN_INTERVAL)
    return FALSE;

  g_hash_table_replace (self->usage_polls, g_strdup (id), g_memdup2 (&now, sizeof now));
  return TRUE;
}

/* ---- continuity ------------------------------------------------------- */

PoolerAffinity *
pooler_service_get_affinity (PoolerService *self)
{
  g_return_val_if_fail (POOLER_IS_SERVICE (self), NULL);

  return self->affinity;
}

void
pooler_service_remember_affinity (PoolerService *self,
                                  const char    *key,
                                  gint64         pool_id,
                                  const char    *kind,
                                  const char    *account_id)
{
  const PoolerAffinityEntry *changed;

  g_return_if_fail (POOLER_IS_SERVICE (self));

  changed = pooler_affinity_remember_key (self->affinity, key, pool_id, kind, account_id,
                                          g_get_real_time () / G_USEC_PER_SEC);
  if (changed != NULL && self->writer != NULL)
    pooler_store_writer_put_affinity (self->writer, changed);
}

/* ---- tokens ----------------------------------------------------------- */

gboolean
pooler_service_tokens_expiring (PoolerService *self,
                                PoolerAccount *account,
                                gint64         now)
{
  const PoolerTokens *tokens;

  g_return_val_if_fail (POOLER_IS_SERVICE (self), FALSE);

  tokens = g_hash_table_lookup (self->tokens, pooler_account_get_id (account));

  /* Within a minute of expiry a request would race the clock. */
  return tokens != NULL && tokens->expires_at > 0 && tokens->expires_at - 60 <= now;
}

guint
pooler_service_get_refresh_count (PoolerService *self)
{
  g_return_val_if_fail (POOLER_IS_SERVICE (self), 0);

  return self->refresh_count;
}

/* How long the rotated pair may take to reach the keyring before it
 * serves anyway (a locked or wedged keyring must not strand requests). */
#define KEYRING_WRITE_SECONDS 10

static gboolean
cancel_now (gpointer cancellable)
{
  g_cancellable_cancel (cancellable);
  return G_SOURCE_REMOVE;
}

/* Cancels @cancellable after KEYRING_WRITE_SECONDS unless the source is
 * destroyed first (clear_deadline()). */
static GSource *
keyring_deadline (GCancellable *cancellable)
{
  GSource *source = g_timeout_source_new_seconds (KEYRING_WRITE_SECONDS);

  g_source_set_callback (source, cancel_now, g_object_ref (cancellable), g_object_unref);
  g_source_attach (source, g_main_context_get_thread_default ());
  return source;
}

static void
clear_deadline (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

typedef struct
{
  PoolerService *self;
  PoolerAccount *account;
  PoolerTokens  *tokens;   /* the new pair, until it is in memory */
  GCancellable  *cancellable;
  GSource       *deadline;       /* of the keyring write */
  char          *used_refresh;   /* the refresh token sent (wiped when freed) */
} RefreshFlight;

static void
refresh_flight_free (RefreshFlight *flight)
{
  clear_deadline (&flight->deadline);
  g_clear_object (&flight->cancellable);
  g_clear_object (&flight->self);
  g_clear_object (&flight->account);
  g_clear_pointer (&flight->tokens, pooler_tokens_free);
  if (flight->used_refresh != NULL)
    pooler_wipe (flight->used_refresh, strlen (flight->used_refresh));
  g_free (flight->used_refresh);
  g_free (flight);
}

/* Completes every request waiting on the account's refresh. */
static void
refresh_complete (RefreshFlight *flight,
                  const GError  *error)
{
  g_autoptr(GPtrArray) waiters = NULL;
  const char *id = pooler_account_get_id (flight->account);

  {
    gpointer stolen_key = NULL;

    g_hash_table_steal_extended (flight->self->refreshing, id, &stolen_key, (gpointer *) &waiters);
    g_free (stolen_key);
  }

  for (guint i = 0; waiters != NULL && i < waiters->len; i++)
    {
      GTask *task = g_ptr_array_index (waiters, i);

      if (error != NULL)
        g_task_return_error (task, g_error_copy (error));
      else
        g_task_return_boolean (task, TRUE);
    }

  refresh_flight_free (flight);
}

static void
refresh_stored_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  RefreshFlight *flight = user_data;
  PoolerService *self = flight->self;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) find_error = NULL;
  g_autoptr(PoolerAccount) stored = NULL;
  const char *id = pooler_account_get_id (flight->account);

  clear_deadline (&flight->deadline);

  /* The upstream has rotated the pair already: the new one must serve
   * even if the keyring refused it (it is retried at the next refresh). */
  if (!pooler_vault_store_finish (POOLER_VAULT (object), result, &error))
    g_warning ("Could not write the refreshed tokens of account %s to the keyring: %s",
               id, error->message);

  pooler_account_set_token_expires_at (flight->account, flight->tokens->expires_at);
  if (self->tokens != NULL)
    g_hash_table_replace (self->tokens, g_strdup (id), g_steal_pointer (&flight->tokens));
  g_hash_table_remove (self->backoffs, id);

  /* A read (WAL: never waits on a writer); the write goes through the
   * writer when serving. */
  stored = pooler_store_find_account (self->store, id, &find_error);
  if (stored != NULL && self->writer != NULL)
    pooler_store_writer_set_refreshed (self->writer, id, pooler_account_get_token_expires_at (flight->account));
  else if (stored != NULL)
    {
      g_autoptr(GError) save_error = NULL;

      pooler_account_set_token_expires_at (stored, pooler_account_get_token_expires_at (flight->account));
      pooler_account_set_last_error (stored, NULL);
      if (!pooler_store_save_account (self->store, stored, &save_error))
        g_warning ("Could not save account %s after its refresh: %s", id, save_error->message);
    }
  else if (g_error_matches (find_error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND))
    {
      /* Removed (by another process) while the refresh was out: the pair
       * just written would stay in the keyring, a live refresh token of
       * an account that is gone. */
      g_message ("Account %s was removed during its refresh; its new tokens are deleted", id);
      if (self->tokens != NULL)
        g_hash_table_remove (self->tokens, id);
      pooler_vault_clear_async (pooler_service_get_vault (self), id, NULL, NULL, NULL);
    }

  g_debug ("Refreshed the tokens of account %s", id);
  refresh_complete (flight, NULL);
}

/* The account's refresh token was refused for good: it needs a new
 * sign-in (kept, not deleted; told once). */
static void
mark_reauth_required (PoolerService *self,
                      PoolerAccount *account,
                      const char    *why)
{
  const char *id = pooler_account_get_id (account);
  g_autoptr(PoolerAccount) stored = NULL;

  g_message ("Account %s needs to sign in again: %s", id, why);
  pooler_account_set_status (account, POOLER_ACCOUNT_REAUTH_REQUIRED);
  pooler_account_set_last_error (account, "refresh_token_refused");
  if (self->writer != NULL)
    {
      guint64 *queued = g_new (guint64, 1);

      *queued = pooler_store_writer_set_reauth_required (self->writer, id);
      g_hash_table_replace (self->reauth_pending, g_strdup (id), queued);
    }
  else if ((stored = pooler_store_find_account (self->store, id, NULL)) != NULL)
    {
      g_autoptr(GError) save_error = NULL;

      pooler_account_set_status (stored, POOLER_ACCOUNT_REAUTH_REQUIRED);
      pooler_account_set_last_error (stored, "refresh_token_refused");
      if (!pooler_store_save_account (self->store, stored, &save_error))
        g_warning ("Could not save account %s: %s", id, save_error->message);
    }
  audit (self, "account.reauth-required", id, "refresh token refused");
  g_signal_emit (self, signals [REAUTH_REQUIRED], 0, account);
  g_signal_emit (self, signals [ACCOUNT_CHANGED], 0, account);
}

typedef struct
{
  PoolerService *self;
  char          *account_id;
  char          *refused;   /* the refresh token refused (wiped when freed) */
  char          *why;
  GCancellable  *cancellable;
  GSource       *deadline;
} RefusalCheck;

static void
refusal_check_free (RefusalCheck *check)
{
  if (check->self->reading != NULL)
    g_hash_table_remove (check->self->reading, check->account_id);
  clear_deadline (&check->deadline);
  g_clear_object (&check->cancellable);
  g_clear_object (&check->self);
  g_free (check->account_id);
  pooler_wipe (check->refused, strlen (check->refused));
  g_free (check->refused);
  g_free (check->why);
  g_free (check);
}

/* The keyring's answer for a refused refresh: another refresh token there
 * is a sign-in stored by another process (during the refresh, or before
 * the reload read it), and serves; the refused one still there, nothing
 * there, or no answer (an error, a locked keyring after
 * KEYRING_WRITE_SECONDS) means the account needs a sign-in. */
static void
refusal_checked_cb (GObject      *object,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  RefusalCheck *check = user_data;
  PoolerService *self = check->self;
  const char *id = check->account_id;
  g_autoptr(PoolerTokens) stored = NULL;
  g_autoptr(GError) error = NULL;
  PoolerAccount *account;
  const PoolerTokens *held;

  stored = pooler_vault_lookup_finish (POOLER_VAULT (object), result, &error);
  account = self->started && self->tokens != NULL ? g_hash_table_lookup (self->accounts, id) : NULL;
  held = account != NULL ? g_hash_table_lookup (self->tokens, id) : NULL;

  if (account == NULL || (held != NULL && g_strcmp0 (held->refresh_token, check->refused) != 0))
    ;   /* stopped, the account gone, or a newer pair arrived meanwhile */
  else if (stored != NULL && stored->refresh_token != NULL &&
           g_strcmp0 (stored->refresh_token, check->refused) != 0)
    {
      g_message ("Account %s has a new sign-in in the keyring; using it", id);
      g_hash_table_replace (self->tokens, g_strdup (id), g_steal_pointer (&stored));
    }
  else if (pooler_account_get_status (account) != POOLER_ACCOUNT_REAUTH_REQUIRED)
    {
      if (error != NULL)
        g_message ("Could not look account %s up in the keyring: %s", id, error->message);
      mark_reauth_required (self, account, check->why);
    }

  refusal_check_free (check);
}

static void
refresh_failed (RefreshFlight *flight,
                const GError  *error)
{
  PoolerService *self = flight->self;
  const char *id = pooler_account_get_id (flight->account);

  if (g_error_matches (error, POOLER_OAUTH_ERROR, POOLER_OAUTH_ERROR_REVOKED))
    {
      RefusalCheck *check = g_new0 (RefusalCheck, 1);

      /* Out of rotation at once (requests, maintenance and refreshes skip
       * an account without tokens); then marked, unless the keyring holds
       * another pair. */
      if (self->tokens != NULL)
        g_hash_table_remove (self->tokens, id);
      check->self = g_object_ref (self);
      check->account_id = g_strdup (id);
      g_hash_table_add (self->reading, g_strdup (id));
      check->refused = g_strdup (flight->used_refresh != NULL ? flight->used_refresh : "");
      check->why = g_strdup (error->message);
      check->cancellable = g_cancellable_new ();
      check->deadline = keyring_deadline (check->cancellable);
      pooler_vault_lookup_async (pooler_service_get_vault (self), id, check->cancellable,
                                 refusal_checked_cb, check);
    }
  else
    {
      Backoff *backoff = g_hash_table_lookup (self->backoffs, id);
      gint64 now = g_get_real_time () / G_USEC_PER_SEC;
      gint64 delay;

      if (backoff == NULL)
        {
          backoff = g_new0 (Backoff, 1);
          g_hash_table_replace (self->backoffs, g_strdup (id), backoff);
        }
      delay = MIN ((gint64) REFRESH_BACKOFF_MIN << MIN (backoff->failures, 10), REFRESH_BACKOFF_MAX);
      backoff->failures++;
      backoff->next_attempt = now + delay;
      g_message ("Could not refresh account %s (%s); trying again in %" G_GINT64_FORMAT " s",
                 id, error->message, delay);
    }

  refresh_complete (flight, error);
}

static void
refresh_answered_cb (GObject      *object,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  RefreshFlight *flight = user_data;
  g_autoptr(GError) error = NULL;

  flight->tokens = pooler_oauth_refresh_finish (result, &error);
  if (flight->tokens == NULL)
    {
      refresh_failed (flight, error);
      return;
    }

  flight->self->refresh_count++;
  flight->cancellable = g_cancellable_new ();
  flight->deadline = keyring_deadline (flight->cancellable);
  pooler_vault_store_async (pooler_service_get_vault (flight->self),
                            pooler_account_get_id (flight->account),
                            pooler_account_get_label (flight->account),
                            flight->tokens, flight->cancellable, refresh_stored_cb, flight);
}

void
pooler_service_refresh_tokens_async (PoolerService       *self,
                                     PoolerAccount       *account,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  const PoolerTokens *tokens;
  const char *id;
  GPtrArray *waiters;
  RefreshFlight *flight;
  Backoff *backoff;

  g_return_if_fail (POOLER_IS_SERVICE (self));
  g_return_if_fail (POOLER_IS_ACCOUNT (account));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, pooler_service_refresh_tokens_async);
  id = pooler_account_get_id (account);

  /* Already refreshing: wait for that one (single flight). */
  waiters = g_hash_table_lookup (self->refreshing, id);
  if (waiters != NULL)
    {
      g_ptr_array_add (waiters, g_steal_pointer (&task));
      return;
    }

  tokens = g_hash_table_lookup (self->tokens, id);
  if (tokens == NULL || tokens->refresh_token == NULL)
    {
      g_task_return_new_error (task, POOLER_OAUTH_ERROR, POOLER_OAUTH_ERROR_REVOKED,
                               "account %s has no refresh token", id);
      return;
    }

  /* A refresh that failed a moment ago is not tried again before its
   * back-off ends, by requests either: each would wait for it and send
   * the sign-in server another one. */
  backoff = g_hash_table_lookup (self->backoffs, id);
  if (backoff != NULL && backoff->next_attempt > g_get_real_time () / G_USEC_PER_SEC)
    {
      g_task_return_new_error (task, POOLER_OAUTH_ERROR, POOLER_OAUTH_ERROR_TRANSIENT,
                               "account %s: the last refresh failed; the next is not due yet", id);
      return;
    }

  waiters = g_ptr_array_new_with_free_func (g_object_unref);
  g_ptr_array_add (waiters, g_steal_pointer (&task));
  g_hash_table_insert (self->refreshing, g_strdup (id), waiters);

  flight = g_new0 (RefreshFlight, 1);
  flight->self = g_object_ref (self);
  flight->account = g_object_ref (account);
  flight->used_refresh = g_strdup (tokens->refresh_token);
  /* No deadline of our own: a refresh given up after it was sent may
   * still rotate the token, and the next one would then be refused for
   * good (refresh_token_reused). The session's timeout ends a dead one;
   * the back-off keeps requests from each waiting for another. */
  pooler_oauth_refresh_async (self->session, self->auth_url, tokens->refresh_token, NULL,
                              refresh_answered_cb, flight);
}

gboolean
pooler_service_refresh_tokens_finish (PoolerService  *self,
                                      GAsyncResult   *result,
                                      GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- capacity and maintenance ------------------------------------------ */

void
pooler_service_note_pool_capacity (PoolerService *self,
                                   PoolerPool    *pool,
                                   gboolean       can_serve,
                                   gint64         earliest_reset)
{
  gint64 id;
  gboolean was_exhausted;

  g_return_if_fail (POOLER_IS_SERVICE (self));
  g_return_if_fail (POOLER_IS_POOL (pool));

  id = pooler_pool_get_id (pool);
  was_exhausted = g_hash_table_contains (self->exhausted_pools, &id);

  if (!can_serve && !was_exhausted)
    {
      g_hash_table_insert (self->exhausted_pools, g_memdup2 (&id, sizeof id),
                           g_memdup2 (&earliest_reset, sizeof earliest_reset));
      g_message ("Pool %s has no usable account left", pooler_pool_get_slug (pool));
      g_signal_emit (self, signals [POOL_EXHAUSTED], 0, pool, earliest_reset);
    }
  else if (can_serve && was_exhausted)
    {
      g_hash_table_remove (self->exhausted_pools, &id);
      g_message ("Pool %s can serve again", pooler_pool_get_slug (pool));
      g_signal_emit (self, signals [POOL_RESTORED], 0, pool);
    }
}

static void
maintenance_refresh_cb (GObject      *object,
                        GAsyncResult *result,
                        gpointer      user_data)
{
  /* Outcomes are logged and acted on inside the flight. */
  pooler_service_refresh_tokens_finish (POOLER_SERVICE (object), result, NULL);
}

void
pooler_service_run_maintenance (PoolerService *self)
{
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  GHashTableIter iter;
  gpointer key, value;
  g_autoptr(GPtrArray) accounts = NULL;
  g_autoptr(GArray) pool_ids = NULL;

  g_return_if_fail (POOLER_IS_SERVICE (self));

  accounts = pooler_service_list_accounts (self);
  for (guint i = 0; i < accounts->len; i++)
    {
      PoolerAccount *account = g_ptr_array_index (accounts, i);
      const PoolerTokens *tokens = g_hash_table_lookup (self->tokens, pooler_account_get_id (account));
      Backoff *backoff = g_hash_table_lookup (self->backoffs, pooler_account_get_id (account));

      update_spent (self, account, now);

      if (pooler_account_get_status (account) != POOLER_ACCOUNT_ACTIVE)
        continue;
      /* No pair in memory (the keyring was locked or away when it was
       * read): ask again, unless a read or a refusal check is out. */
      if (tokens == NULL)
        {
          if (self->started && !g_hash_table_contains (self->reading, pooler_account_get_id (account)) &&
              !g_hash_table_contains (self->refreshing, pooler_account_get_id (account)))
            read_tokens_async (self, pooler_account_get_id (account));
          continue;
        }
      if (backoff != NULL && backoff->next_attempt > now)
        continue;
      if (tokens->expires_at > 0 && tokens->expires_at - REFRESH_AHEAD_SECONDS <= now)
        pooler_service_refresh_tokens_async (self, account, NULL, maintenance_refresh_cb, NULL);
    }

  /* Exhausted Pools whose accounts came back. */
  pool_ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_hash_table_iter_init (&iter, self->exhausted_pools);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_array_append_val (pool_ids, *(gint64 *) key);

  for (guint i = 0; i < pool_ids->len; i++)
    {
      gint64 pool_id = g_array_index (pool_ids, gint64, i);
      PoolerPool *pool = g_hash_table_lookup (self->pools, &pool_id);
      GPtrArray *members = g_hash_table_lookup (self->pool_accounts, &pool_id);
      g_autoptr(GPtrArray) order = NULL;

      if (pool == NULL || members == NULL)
        {
          g_hash_table_remove (self->exhausted_pools, &pool_id);
          continue;
        }

      /* Back only with an account that can serve now: one the router
       * would pick but whose tokens are not in memory cannot, and would
       * make the Pool flap between exhausted and restored. */
      order = pooler_router_order (self->router, pool, members, NULL, now, NULL, NULL);
      for (guint j = 0; j < order->len; j++)
        if (g_hash_table_contains (self->tokens, pooler_account_get_id (g_ptr_array_index (order, j))))
          {
            pooler_service_note_pool_capacity (self, pool, TRUE, 0);
            break;
          }
    }
}
