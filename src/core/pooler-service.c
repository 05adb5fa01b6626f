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
#include "pooler-service.h"
#include "pooler-store-writer.h"

/* How often a serving process looks for changes other processes made. */
#define RELOAD_INTERVAL_SECONDS 2

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
  gboolean           started;
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

  g_clear_object (&self->vault);
  g_clear_object (&self->router);
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

static void
pooler_service_init (PoolerService *self)
{
  self->router = pooler_router_new ();
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
               PoolerAccount *from)
{
  g_object_freeze_notify (G_OBJECT (into));
  pooler_account_set_label (into, pooler_account_get_label (from));
  pooler_account_set_email (into, pooler_account_get_email (from));
  pooler_account_set_chatgpt_account_id (into, pooler_account_get_chatgpt_account_id (from));
  pooler_account_set_chatgpt_user_id (into, pooler_account_get_chatgpt_user_id (from));
  pooler_account_set_plan (into, pooler_account_get_plan (from));
  pooler_account_set_status (into, pooler_account_get_status (from));
  pooler_account_set_priority (into, pooler_account_get_priority (from));
  pooler_account_set_token_expires_at (into, pooler_account_get_token_expires_at (from));
  pooler_account_set_created_at (into, pooler_account_get_created_at (from));
  pooler_account_set_last_error (into, pooler_account_get_last_error (from));
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
  if (tokens == NULL)
    g_warning ("Could not read the tokens of account %s from the keyring: %s",
               load->account_id, error->message);
  else if (g_hash_table_contains (load->self->accounts, load->account_id))
    g_hash_table_replace (load->self->tokens, g_strdup (load->account_id),
                          g_steal_pointer (&tokens));

  g_object_unref (load->self);
  g_free (load->account_id);
  g_free (load);
}

static gboolean
load_registry (PoolerService  *self,
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
            }
          else
            merge_account (account, fresh);

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

  /* Tokens: read each account's once, when it first appears. */
  g_hash_table_iter_init (&iter, self->accounts);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      if (g_hash_table_contains (self->tokens, key))
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
        {
          TokenLoad *load = g_new0 (TokenLoad, 1);

          load->self = g_object_ref (self);
          load->account_id = g_strdup (key);
          pooler_vault_lookup_async (pooler_service_get_vault (self), key, NULL,
                                     load_tokens_cb, load);
        }
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

  self->writer = pooler_store_writer_new (pooler_store_get_path (self->store), error);
  if (self->writer == NULL)
    return FALSE;

  self->reload_source = g_timeout_add_seconds (RELOAD_INTERVAL_SECONDS, reload_cb, self);
  self->started = TRUE;

  return TRUE;
}

void
pooler_service_stop (PoolerService *self)
{
  g_return_if_fail (POOLER_IS_SERVICE (self));

  g_clear_handle_id (&self->reload_source, g_source_remove);

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

  if (!pooler_store_add_audit_event (self->store, actor, action, target, detail, &error))
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

PoolerAccount *
pooler_service_import_account (PoolerService  *self,
                               const char     *auth_json_path,
                               const char     *pool_slug,
                               const char     *label,
                               gboolean       *out_created,
                               GError        **error)
{
  g_autoptr(PoolerAuthFile) auth = NULL;
  g_autoptr(PoolerPool) pool = NULL;
  g_autoptr(PoolerAccount) account = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autofree char *default_path = NULL;
  g_autofree char *id = NULL;
  PoolerVault *vault;
  gboolean created = FALSE;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  g_return_val_if_fail (POOLER_IS_SERVICE (self), NULL);
  g_return_val_if_fail (pool_slug != NULL, NULL);

  if (auth_json_path == NULL)
    auth_json_path = default_path = pooler_auth_file_default_path ();

  auth = pooler_auth_file_load (auth_json_path, now, error);
  if (auth == NULL)
    return NULL;

  pool = find_pool_for_user (self, pool_slug, error);
  if (pool == NULL)
    return NULL;

  vault = pooler_service_get_vault (self);
  if (!pooler_vault_check_available (vault, NULL, error))
    return NULL;

  account = pooler_store_find_account_by_identity (self->store, auth->account_id,
                                                   auth->claims->chatgpt_user_id, &local_error);
  if (account == NULL)
    {
      if (!g_error_matches (local_error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return NULL;
        }
      g_clear_error (&local_error);
      id = new_account_id ();
      account = pooler_account_new (id);
      created = TRUE;
    }

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

  /* Keyring first: a row without tokens would be an account that cannot
   * serve; tokens without a row are removed again below. */
  if (!pooler_vault_store_sync (vault, pooler_account_get_id (account),
                                pooler_account_get_label (account), auth->tokens, NULL, error))
    return NULL;

  if (!pooler_store_save_account (self->store, account, &local_error) ||
      !pooler_store_add_pool_account (self->store, pooler_pool_get_id (pool),
                                      pooler_account_get_id (account), &local_error))
    {
      if (created)
        pooler_vault_clear_sync (vault, pooler_account_get_id (account), NULL, NULL);
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }

  audit (self, created ? "account.import" : "account.update", pooler_account_get_id (account), pool_slug);

  if (self->started)
    g_hash_table_replace (self->tokens, g_strdup (pooler_account_get_id (account)),
                          pooler_tokens_copy (auth->tokens));
  pooler_service_reload (self);
  g_signal_emit (self, signals [ACCOUNT_CHANGED], 0, account);

  if (out_created != NULL)
    *out_created = created;

  return g_steal_pointer (&account);
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
pooler_service_remove_account (PoolerService  *self,
                               const char     *account_id,
                               GError        **error)
{
  g_autoptr(PoolerAccount) stored = NULL;
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (POOLER_IS_SERVICE (self), FALSE);

  stored = pooler_store_find_account (self->store, account_id, error);
  if (stored == NULL)
    return FALSE;

  if (!pooler_store_remove_account (self->store, account_id, error))
    return FALSE;

  /* The row is gone, so the tokens serve nothing: a keyring that is away
   * now leaves an orphan item, which is harmless and reported. */
  if (!pooler_vault_clear_sync (pooler_service_get_vault (self), account_id, NULL, &local_error) &&
      !g_error_matches (local_error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND))
    g_warning ("Removed account %s, but could not delete its keyring item: %s",
               account_id, local_error->message);

  audit (self, "account.remove", account_id, NULL);
  pooler_service_reload (self);
  g_signal_emit (self, signals [ACCOUNT_CHANGED], 0, stored);

  return TRUE;
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

void
pooler_service_flush (PoolerService *self)
{
  g_return_if_fail (POOLER_IS_SERVICE (self));

  if (self->writer != NULL)
    pooler_store_writer_flush (self->writer);
}
