/* pooler-store.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-store"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "pooler-error.h"
#include "pooler-store-private.h"

struct _PoolerStore
{
  GObject     parent_instance;

  char       *path;
  sqlite3    *db;
  /* SQL text (always a string literal) -> prepared sqlite3_stmt */
  GHashTable *statements;
  int         schema_version;
};

G_DEFINE_FINAL_TYPE (PoolerStore, pooler_store, G_TYPE_OBJECT)

/* A cached statement borrowed for one call: g_autoptr resets it on the way
 * out, so no statement keeps a read snapshot open between calls (that would
 * pin the WAL and hide the writer's commits from us). */
typedef sqlite3_stmt StoreStatement;

static void
store_statement_release (StoreStatement *stmt)
{
  sqlite3_reset (stmt);
  sqlite3_clear_bindings (stmt);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (StoreStatement, store_statement_release)

#define BUMP_CONFIG_VERSION \
  " BEGIN UPDATE meta SET value = value + 1 WHERE key = 'config_version'; END;"

/* Each entry moves the schema from version i to i + 1. Never edit a shipped
 * step: databases in the field are already past it. Append a new one. */
static const char * const migrations[] = {
  /* 1: configuration and the request log */
  "CREATE TABLE pools ("
  "  id INTEGER PRIMARY KEY,"
  "  slug TEXT UNIQUE NOT NULL,"
  "  name TEXT NOT NULL,"
  "  strategy TEXT NOT NULL DEFAULT 'round-robin',"
  "  flags INTEGER NOT NULL DEFAULT 0,"
  "  ring_size INTEGER NOT NULL DEFAULT 3,"
  "  created_at INTEGER NOT NULL"
  ");"
  "CREATE TABLE accounts ("
  "  id TEXT PRIMARY KEY,"
  "  label TEXT,"
  "  email TEXT,"
  "  chatgpt_account_id TEXT NOT NULL,"
  "  chatgpt_user_id TEXT,"
  "  plan TEXT,"
  "  status TEXT NOT NULL DEFAULT 'active',"
  "  health TEXT NOT NULL DEFAULT 'ok',"
  "  priority INTEGER NOT NULL DEFAULT 0,"
  "  cooldown_until INTEGER NOT NULL DEFAULT 0,"
  "  token_expires_at INTEGER NOT NULL DEFAULT 0,"
  "  last_used_at INTEGER NOT NULL DEFAULT 0,"
  "  last_error TEXT,"
  "  created_at INTEGER NOT NULL,"
  "  updated_at INTEGER NOT NULL,"
  "  UNIQUE (chatgpt_account_id, chatgpt_user_id)"
  ");"
  "CREATE TABLE pool_accounts ("
  "  pool_id INTEGER REFERENCES pools (id) ON DELETE CASCADE,"
  "  account_id TEXT REFERENCES accounts (id) ON DELETE CASCADE,"
  "  PRIMARY KEY (pool_id, account_id)"
  ");"
  /* Foreign keys are checked from the child side on every parent delete. */
  "CREATE INDEX pool_accounts_by_account ON pool_accounts (account_id);"
  "CREATE TABLE api_keys ("
  "  prefix TEXT PRIMARY KEY,"
  "  secret_sha256 TEXT NOT NULL,"
  "  pool_id INTEGER NOT NULL REFERENCES pools (id) ON DELETE CASCADE,"
  "  name TEXT,"
  "  status TEXT NOT NULL DEFAULT 'active',"
  "  created_at INTEGER NOT NULL,"
  "  expires_at INTEGER NOT NULL DEFAULT 0,"
  "  last_used_at INTEGER NOT NULL DEFAULT 0,"
  "  allowed_models TEXT"
  ");"
  "CREATE INDEX api_keys_by_pool ON api_keys (pool_id);"
  "CREATE TABLE requests ("
  "  id TEXT PRIMARY KEY,"
  "  started_at_ms INTEGER NOT NULL,"
  "  pool_slug TEXT,"
  "  key_prefix TEXT,"
  "  account_id TEXT,"
  "  model TEXT,"
  "  endpoint TEXT NOT NULL,"
  "  transport TEXT,"
  "  status INTEGER NOT NULL DEFAULT 0,"
  "  upstream_status INTEGER NOT NULL DEFAULT 0,"
  "  latency_ms INTEGER NOT NULL DEFAULT 0,"
  "  ttfb_ms INTEGER NOT NULL DEFAULT -1,"
  "  input_tokens INTEGER NOT NULL DEFAULT -1,"
  "  output_tokens INTEGER NOT NULL DEFAULT -1,"
  "  cached_tokens INTEGER NOT NULL DEFAULT -1,"
  "  reasoning_tokens INTEGER NOT NULL DEFAULT -1,"
  "  error_code TEXT"
  ");"
  "CREATE INDEX requests_by_started_at ON requests (started_at_ms);",

  /* 2: attempts, quota evidence, affinities, audit, config_version */
  "ALTER TABLE requests ADD COLUMN state TEXT NOT NULL DEFAULT 'completed';"
  /* Only start-up looks for in-flight rows; keep the index tiny. */
  "CREATE INDEX requests_in_flight ON requests (state) WHERE state = 'in_flight';"
  "CREATE TABLE request_attempts ("
  "  request_id TEXT NOT NULL REFERENCES requests (id) ON DELETE CASCADE,"
  "  attempt INTEGER NOT NULL,"
  "  account_id TEXT,"
  "  upstream_status INTEGER NOT NULL DEFAULT 0,"
  "  error_code TEXT,"
  "  started_at_ms INTEGER NOT NULL,"
  "  duration_ms INTEGER NOT NULL DEFAULT 0,"
  "  PRIMARY KEY (request_id, attempt)"
  ");"
  "CREATE TABLE quota_windows ("
  "  account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,"
  "  limit_id TEXT NOT NULL DEFAULT 'codex',"
  "  window_kind TEXT NOT NULL,"
  "  window_minutes INTEGER NOT NULL,"
  "  used_percent REAL NOT NULL,"
  "  reset_at INTEGER NOT NULL DEFAULT 0,"
  "  source TEXT NOT NULL,"
  "  observed_at INTEGER NOT NULL,"
  "  PRIMARY KEY (account_id, limit_id, window_minutes)"
  ");"
  "CREATE TABLE affinities ("
  "  key_sha256 TEXT PRIMARY KEY,"
  "  kind TEXT NOT NULL,"
  "  account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,"
  "  pool_id INTEGER,"
  "  expires_at INTEGER NOT NULL"
  ");"
  "CREATE INDEX affinities_by_account ON affinities (account_id);"
  "CREATE TABLE audit_events ("
  "  id INTEGER PRIMARY KEY,"
  "  at INTEGER NOT NULL,"
  "  actor TEXT NOT NULL,"
  "  action TEXT NOT NULL,"
  "  target TEXT,"
  "  detail TEXT"
  ");"
  "CREATE TABLE meta ("
  "  key TEXT PRIMARY KEY,"
  "  value INTEGER NOT NULL"
  ");"
  "INSERT INTO meta (key, value) VALUES ('config_version', 0);"
  /* Triggers rather than code, so a CLI in another process bumps it too. */
  "CREATE TRIGGER pools_insert_bump AFTER INSERT ON pools" BUMP_CONFIG_VERSION
  "CREATE TRIGGER pools_delete_bump AFTER DELETE ON pools" BUMP_CONFIG_VERSION
  "CREATE TRIGGER pools_update_bump AFTER UPDATE ON pools" BUMP_CONFIG_VERSION
  "CREATE TRIGGER accounts_insert_bump AFTER INSERT ON accounts" BUMP_CONFIG_VERSION
  "CREATE TRIGGER accounts_delete_bump AFTER DELETE ON accounts" BUMP_CONFIG_VERSION
  /* Not last_used_at/updated_at: the writer touches those per request. */
  "CREATE TRIGGER accounts_update_bump AFTER UPDATE OF label, email, plan,"
  "  status, health, priority, cooldown_until, token_expires_at,"
  "  chatgpt_account_id, chatgpt_user_id ON accounts" BUMP_CONFIG_VERSION
  "CREATE TRIGGER pool_accounts_insert_bump AFTER INSERT ON pool_accounts" BUMP_CONFIG_VERSION
  "CREATE TRIGGER pool_accounts_delete_bump AFTER DELETE ON pool_accounts" BUMP_CONFIG_VERSION
  "CREATE TRIGGER pool_accounts_update_bump AFTER UPDATE ON pool_accounts" BUMP_CONFIG_VERSION
  "CREATE TRIGGER api_keys_insert_bump AFTER INSERT ON api_keys" BUMP_CONFIG_VERSION
  "CREATE TRIGGER api_keys_delete_bump AFTER DELETE ON api_keys" BUMP_CONFIG_VERSION
  "CREATE TRIGGER api_keys_update_bump AFTER UPDATE OF status, expires_at,"
  "  allowed_models, pool_id ON api_keys" BUMP_CONFIG_VERSION,

  /* 3: operator tokens for /mcp */
  "CREATE TABLE mcp_tokens ("
  "  prefix TEXT PRIMARY KEY,"
  "  secret_sha256 TEXT NOT NULL,"
  "  name TEXT,"
  "  status TEXT NOT NULL DEFAULT 'active',"
  "  created_at INTEGER NOT NULL,"
  "  last_used_at INTEGER NOT NULL DEFAULT 0"
  ");"
  "CREATE TRIGGER mcp_tokens_insert_bump AFTER INSERT ON mcp_tokens" BUMP_CONFIG_VERSION
  "CREATE TRIGGER mcp_tokens_delete_bump AFTER DELETE ON mcp_tokens" BUMP_CONFIG_VERSION
  /* Not last_used_at: the gateway touches it while serving. */
  "CREATE TRIGGER mcp_tokens_update_bump AFTER UPDATE OF status, secret_sha256"
  "  ON mcp_tokens" BUMP_CONFIG_VERSION,
};

#define ACCOUNT_COLUMNS \
  "a.id, a.label, a.email, a.chatgpt_account_id, a.chatgpt_user_id, a.plan," \
  " a.status, a.priority, a.cooldown_until, a.token_expires_at," \
  " a.last_used_at, a.last_error, a.created_at"

#define POOL_COLUMNS "p.id, p.slug, p.name, p.strategy, p.created_at, p.ring_size"

#define KEY_SELECT \
  "SELECT k.prefix, k.secret_sha256, k.pool_id, p.slug, k.name, k.status," \
  " k.created_at, k.expires_at, k.last_used_at, k.allowed_models" \
  " FROM api_keys k LEFT JOIN pools p ON p.id = k.pool_id"

static gint64
now_seconds (void)
{
  return g_get_real_time () / G_USEC_PER_SEC;
}

static gboolean
set_database_error (GError     **error,
                    sqlite3     *db,
                    const char  *what)
{
  g_set_error (error, POOLER_ERROR, POOLER_ERROR_DATABASE,
               "%s: %s", what, sqlite3_errmsg (db));
  return FALSE;
}

static gboolean
exec_sql (sqlite3     *db,
          const char  *sql,
          const char  *what,
          GError     **error)
{
  if (sqlite3_exec (db, sql, NULL, NULL, NULL) != SQLITE_OK)
    return set_database_error (error, db, what);

  return TRUE;
}

static void
rollback_quietly (sqlite3 *db)
{
  /* Fails harmlessly when SQLite already rolled back on its own. */
  if (!sqlite3_get_autocommit (db))
    sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
}

static char *
column_dup (sqlite3_stmt *stmt,
            int           column)
{
  const unsigned char *text = sqlite3_column_text (stmt, column);

  return text != NULL ? g_strdup ((const char *) text) : NULL;
}

static void
bind_text (sqlite3_stmt *stmt,
           int           index,
           const char   *text)
{
  if (text != NULL)
    sqlite3_bind_text (stmt, index, text, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null (stmt, index);
}

static gboolean
read_user_version (sqlite3  *db,
                   int      *version,
                   GError  **error)
{
  sqlite3_stmt *stmt = NULL;
  int rc;

  if (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &stmt, NULL) != SQLITE_OK)
    return set_database_error (error, db, "Could not read the schema version");

  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    *version = sqlite3_column_int (stmt, 0);
  else
    set_database_error (error, db, "Could not read the schema version");
  sqlite3_finalize (stmt);

  return rc == SQLITE_ROW;
}

static gboolean
check_not_newer (int       version,
                 GError  **error)
{
  if (version > pooler_store_schema_version_latest ())
    {
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_DATABASE,
                   "The database was written by a newer Codex Pooler "
                   "(schema %d; this build knows up to %d)",
                   version, pooler_store_schema_version_latest ());
      return FALSE;
    }

  return TRUE;
}

/* Opens without changing anything in the file, so a database from a newer
 * build can be inspected and refused untouched. */
static sqlite3 *
open_raw (const char  *path,
          GError     **error)
{
  sqlite3 *db = NULL;
  int rc;

  /* Create a missing file 0600 ourselves: SQLite would use the umask, and
   * its -wal and -shm files copy the main file's mode. */
  if (g_strcmp0 (path, ":memory:") != 0 && !g_file_test (path, G_FILE_TEST_EXISTS))
    {
      int fd = g_open (path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

      if (fd >= 0)
        {
          /* Some filesystems ignore the creation mode; insist. */
          if (fchmod (fd, 0600) != 0)
            g_debug ("Could not chmod %s: %s", path, g_strerror (errno));
          close (fd);
        }
      else if (errno != EEXIST)
        {
          int saved_errno = errno;

          g_set_error (error, POOLER_ERROR, POOLER_ERROR_DATABASE,
                       "Could not create %s: %s", path, g_strerror (saved_errno));
          return NULL;
        }
    }

  rc = sqlite3_open_v2 (path, &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL);
  if (rc != SQLITE_OK)
    {
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_DATABASE,
                   "Could not open %s: %s", path,
                   db != NULL ? sqlite3_errmsg (db) : sqlite3_errstr (rc));
      sqlite3_close_v2 (db);
      return NULL;
    }

  sqlite3_extended_result_codes (db, 1);

  /* Before anything that may need a lock. */
  if (!exec_sql (db, "PRAGMA busy_timeout = 5000", "Could not configure the database", error))
    {
      sqlite3_close_v2 (db);
      return NULL;
    }

  return db;
}

static gboolean
configure_connection (sqlite3  *db,
                      GError  **error)
{
  return exec_sql (db,
                   "PRAGMA journal_mode = WAL;"
                   "PRAGMA synchronous = NORMAL;"
                   "PRAGMA foreign_keys = ON;",
                   "Could not configure the database", error);
}

int
pooler_store_schema_version_latest (void)
{
  return (int) G_N_ELEMENTS (migrations);
}

sqlite3 *
pooler_store_open_connection (const char  *path,
                              GError     **error)
{
  sqlite3 *db;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  db = open_raw (path, error);
  if (db == NULL)
    return NULL;

  if (!configure_connection (db, error))
    {
      sqlite3_close_v2 (db);
      return NULL;
    }

  return db;
}

gboolean
pooler_store_migrate_to (sqlite3  *db,
                         int       target,
                         GError  **error)
{
  int current;

  g_return_val_if_fail (db != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (target < 0 || target > pooler_store_schema_version_latest ())
    {
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                   "No schema version %d (this build knows 0 to %d)",
                   target, pooler_store_schema_version_latest ());
      return FALSE;
    }

  if (!read_user_version (db, &current, error) || !check_not_newer (current, error))
    return FALSE;

  for (int version = current + 1; version <= target; version++)
    {
      g_autofree char *set_version = NULL;
      int found;

      if (!exec_sql (db, "BEGIN IMMEDIATE", "Could not start a migration", error))
        return FALSE;

      /* Another process may have migrated while we waited for the lock. */
      if (!read_user_version (db, &found, error))
        goto failed;
      if (found >= version)
        {
          if (!check_not_newer (found, error))
            goto failed;
          if (!exec_sql (db, "COMMIT", "Could not finish a migration", error))
            goto failed;
          continue;
        }

      if (sqlite3_exec (db, migrations[version - 1], NULL, NULL, NULL) != SQLITE_OK)
        {
          g_set_error (error, POOLER_ERROR, POOLER_ERROR_DATABASE,
                       "Migration to schema %d failed: %s",
                       version, sqlite3_errmsg (db));
          goto failed;
        }

      set_version = g_strdup_printf ("PRAGMA user_version = %d", version);
      if (!exec_sql (db, set_version, "Could not record the schema version", error) ||
          !exec_sql (db, "COMMIT", "Could not finish a migration", error))
        goto failed;

      g_debug ("Migrated the database to schema %d", version);
    }

  return TRUE;

failed:
  rollback_quietly (db);
  return FALSE;
}

static void
statement_finalize (gpointer data)
{
  sqlite3_finalize (data);
}

static void
pooler_store_finalize (GObject *object)
{
  PoolerStore *self = (PoolerStore *)object;

  /* Statements first: sqlite3_close_v2 would otherwise keep the handle as
   * a zombie until they are gone. */
  g_clear_pointer (&self->statements, g_hash_table_unref);
  g_clear_pointer (&self->db, sqlite3_close_v2);
  g_clear_pointer (&self->path, g_free);

  G_OBJECT_CLASS (pooler_store_parent_class)->finalize (object);
}

static void
pooler_store_class_init (PoolerStoreClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = pooler_store_finalize;
}

static void
pooler_store_init (PoolerStore *self)
{
  self->statements = g_hash_table_new_full (g_str_hash, g_str_equal,
                                            NULL, statement_finalize);
}

/* @sql must be a string literal: it becomes the cache key. */
static StoreStatement *
store_prepare (PoolerStore  *self,
               const char   *sql,
               GError      **error)
{
  sqlite3_stmt *stmt = g_hash_table_lookup (self->statements, sql);

  if (stmt != NULL)
    return stmt;

  if (sqlite3_prepare_v3 (self->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) != SQLITE_OK)
    {
      set_database_error (error, self->db, "Could not prepare a query");
      return NULL;
    }

  g_hash_table_insert (self->statements, (gpointer) sql, stmt);
  return stmt;
}

/* Runs a statement that returns no rows. */
static gboolean
store_step_done (PoolerStore   *self,
                 sqlite3_stmt  *stmt,
                 const char    *what,
                 GError       **error)
{
  if (sqlite3_step (stmt) != SQLITE_DONE)
    return set_database_error (error, self->db, what);

  return TRUE;
}

/* Steps a query expected to return at most one row: TRUE with *found. */
static gboolean
store_step_row (PoolerStore   *self,
                sqlite3_stmt  *stmt,
                gboolean      *found,
                GError       **error)
{
  int rc = sqlite3_step (stmt);

  if (rc == SQLITE_ROW || rc == SQLITE_DONE)
    {
      *found = rc == SQLITE_ROW;
      return TRUE;
    }

  return set_database_error (error, self->db, "Query failed");
}

/* Steps a query for exactly one row: FALSE with NOT_FOUND, worded by
 * @format, when there is none. */
G_GNUC_PRINTF (4, 5)
static gboolean
store_step_found (PoolerStore   *self,
                  sqlite3_stmt  *stmt,
                  GError       **error,
                  const char    *format,
                  ...)
{
  gboolean found;
  va_list args;

  if (!store_step_row (self, stmt, &found, error))
    return FALSE;

  if (!found)
    {
      va_start (args, format);
      g_propagate_error (error, g_error_new_valist (POOLER_ERROR, POOLER_ERROR_NOT_FOUND,
                                                    format, args));
      va_end (args);
      return FALSE;
    }

  return TRUE;
}

/* Runs an UPDATE or DELETE of one row: FALSE with NOT_FOUND, worded by
 * @format, when it changed nothing. */
G_GNUC_PRINTF (5, 6)
static gboolean
store_step_changed (PoolerStore   *self,
                    sqlite3_stmt  *stmt,
                    const char    *what,
                    GError       **error,
                    const char    *format,
                    ...)
{
  va_list args;

  if (!store_step_done (self, stmt, what, error))
    return FALSE;

  if (sqlite3_changes (self->db) == 0)
    {
      va_start (args, format);
      g_propagate_error (error, g_error_new_valist (POOLER_ERROR, POOLER_ERROR_NOT_FOUND,
                                                    format, args));
      va_end (args);
      return FALSE;
    }

  return TRUE;
}

/* Reads one row into a new object or record; NULL with @error set when the
 * row cannot be read. */
typedef gpointer (*StoreRowReader) (sqlite3_stmt  *stmt,
                                    GError       **error);

/* Reads every row of @stmt (already bound) through @read_row. */
static GPtrArray *
store_collect_rows (PoolerStore     *self,
                    sqlite3_stmt    *stmt,
                    StoreRowReader   read_row,
                    GDestroyNotify   free_row,
                    const char      *what,
                    GError         **error)
{
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func (free_row);
  int rc;

  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      gpointer row = read_row (stmt, error);

      if (row == NULL)
        return NULL;
      g_ptr_array_add (rows, row);
    }

  if (rc != SQLITE_DONE)
    {
      set_database_error (error, self->db, what);
      return NULL;
    }

  return g_steal_pointer (&rows);
}

char *
pooler_store_default_path (void)
{
  g_autofree char *dir = g_build_filename (g_get_user_data_dir (), "codex-pooler", NULL);

  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      int saved_errno = errno;

      /* Opening the path will fail with a clearer error; just say why. */
      g_warning ("Could not create %s: %s", dir, g_strerror (saved_errno));
    }

  return g_build_filename (dir, "pooler.db", NULL);
}

PoolerStore *
pooler_store_open (const char  *path,
                   GError     **error)
{
  g_autoptr(PoolerStore) self = NULL;
  g_autofree char *default_path = NULL;
  int version = 0;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (path == NULL)
    path = default_path = pooler_store_default_path ();

  self = g_object_new (POOLER_TYPE_STORE, NULL);
  self->path = g_strdup (path);

  self->db = open_raw (path, error);
  if (self->db == NULL)
    return NULL;

  /* Refuse before touching anything, journal mode included. */
  if (!read_user_version (self->db, &version, error) ||
      !check_not_newer (version, error))
    return NULL;

  if (!configure_connection (self->db, error) ||
      !pooler_store_migrate_to (self->db, pooler_store_schema_version_latest (), error) ||
      !read_user_version (self->db, &self->schema_version, error))
    return NULL;

  return g_steal_pointer (&self);
}

const char *
pooler_store_get_path (PoolerStore *self)
{
  g_return_val_if_fail (POOLER_IS_STORE (self), NULL);

  return self->path;
}

int
pooler_store_get_schema_version (PoolerStore *self)
{
  g_return_val_if_fail (POOLER_IS_STORE (self), 0);

  return self->schema_version;
}

gboolean
pooler_store_ping (PoolerStore  *self,
                   GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;
  gboolean found;

  g_return_val_if_fail (POOLER_IS_STORE (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* Reads a real page, so a broken file or a lost mount shows. */
  stmt = store_prepare (self, "SELECT 1 FROM meta LIMIT 1", error);
  if (stmt == NULL)
    return FALSE;

  return store_step_row (self, stmt, &found, error);
}

gint64
pooler_store_get_config_version (PoolerStore  *self,
                                 GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;
  gboolean found;

  g_return_val_if_fail (POOLER_IS_STORE (self), -1);
  g_return_val_if_fail (error == NULL || *error == NULL, -1);

  stmt = store_prepare (self, "SELECT value FROM meta WHERE key = 'config_version'", error);
  if (stmt == NULL || !store_step_row (self, stmt, &found, error))
    return -1;

  if (!found)
    {
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_DATABASE,
                   "The database has no config_version");
      return -1;
    }

  return sqlite3_column_int64 (stmt, 0);
}

/* Pools */

static PoolerPool *
pool_from_row (sqlite3_stmt  *stmt,
               GError       **error)
{
  PoolerPool *pool;
  const char *strategy;

  pool = pooler_pool_new (sqlite3_column_int64 (stmt, 0),
                          (const char *) sqlite3_column_text (stmt, 1));
  pooler_pool_set_name (pool, (const char *) sqlite3_column_text (stmt, 2));

  /* Another tool may have written a strategy we do not know. */
  strategy = (const char *) sqlite3_column_text (stmt, 3);
  if (pooler_strategy_is_valid (strategy))
    pooler_pool_set_strategy (pool, strategy);
  else
    g_debug ("Pool %s has unknown strategy %s; using the default",
             pooler_pool_get_slug (pool), strategy);

  pooler_pool_set_created_at (pool, sqlite3_column_int64 (stmt, 4));
  pooler_pool_set_ring_size (pool, CLAMP (sqlite3_column_int (stmt, 5), 1, POOLER_POOL_RING_SIZE_MAX));

  return pool;
}

PoolerPool *
pooler_store_create_pool (PoolerStore  *self,
                          const char   *slug,
                          const char   *strategy,
                          GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;
  PoolerPool *pool;
  gint64 now = now_seconds ();

  g_return_val_if_fail (POOLER_IS_STORE (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!pooler_pool_slug_is_valid (slug))
    {
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                   "“%s” is not a valid pool name", slug ? slug : "");
      return NULL;
    }

  if (strategy == NULL)
    strategy = POOLER_STRATEGY_DEFAULT;
  if (!pooler_strategy_is_valid (strategy))
    {
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                   "Unknown strategy “%s”", strategy);
      return NULL;
    }

  stmt = store_prepare (self,
                        "INSERT INTO pools (slug, name, strategy, created_at)"
                        " VALUES (?1, ?1, ?2, ?3)",
                        error);
  if (stmt == NULL)
    return NULL;

  bind_text (stmt, 1, slug);
  bind_text (stmt, 2, strategy);
  sqlite3_bind_int64 (stmt, 3, now);

  if (sqlite3_step (stmt) != SQLITE_DONE)
    {
      if (sqlite3_extended_errcode (self->db) == SQLITE_CONSTRAINT_UNIQUE)
        g_set_error (error, POOLER_ERROR, POOLER_ERROR_EXISTS,
                     "A pool named “%s” already exists", slug);
      else
        set_database_error (error, self->db, "Could not create the pool");
      return NULL;
    }

  pool = pooler_pool_new (sqlite3_last_insert_rowid (self->db), slug);
  pooler_pool_set_strategy (pool, strategy);
  pooler_pool_set_created_at (pool, now);

  return pool;
}

PoolerPool *
pooler_store_find_pool (PoolerStore  *self,
                        const char   *slug,
                        GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;

  g_return_val_if_fail (POOLER_IS_STORE (self), NULL);
  g_return_val_if_fail (slug != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  stmt = store_prepare (self, "SELECT " POOL_COLUMNS " FROM pools p WHERE p.slug = ?1", error);
  if (stmt == NULL)
    return NULL;

  bind_text (stmt, 1, slug);
  if (!store_step_found (self, stmt, error, "No pool named “%s”", slug))
    return NULL;

  return pool_from_row (stmt, error);
}

GPtrArray *
pooler_store_list_pools (PoolerStore  *self,
                         GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;

  g_return_val_if_fail (POOLER_IS_STORE (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  stmt = store_prepare (self, "SELECT " POOL_COLUMNS " FROM pools p ORDER BY p.slug", error);
  if (stmt == NULL)
    return NULL;

  return store_collect_rows (self, stmt, (StoreRowReader) pool_from_row,
                             g_object_unref, "Could not list pools", error);
}

gboolean
pooler_store_save_pool (PoolerStore  *self,
                        PoolerPool   *pool,
                        GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;

  g_return_val_if_fail (POOLER_IS_STORE (self), FALSE);
  g_return_val_if_fail (POOLER_IS_POOL (pool), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  stmt = store_prepare (self,
                        "UPDATE pools SET name = ?2, strategy = ?3, ring_size = ?4 WHERE id = ?1",
                        error);
  if (stmt == NULL)
    return FALSE;

  sqlite3_bind_int64 (stmt, 1, pooler_pool_get_id (pool));
  /* name is NOT NULL; a pool without one is called by its slug. */
  bind_text (stmt, 2, pooler_pool_get_name (pool) ? pooler_pool_get_name (pool)
                                                  : pooler_pool_get_slug (pool));
  bind_text (stmt, 3, pooler_pool_get_strategy (pool));
  sqlite3_bind_int (stmt, 4, (int) pooler_pool_get_ring_size (pool));

  return store_step_changed (self, stmt, "Could not save the pool", error,
                             "No pool named “%s”", pooler_pool_get_slug (pool));
}

/* Looks up a pool id; NOT_FOUND when there is no such pool. */
static gboolean
store_pool_id (PoolerStore  *self,
               const char   *slug,
               gint64       *pool_id,
               GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;

  stmt = store_prepare (self, "SELECT id FROM pools WHERE slug = ?1", error);
  if (stmt == NULL)
    return FALSE;

  bind_text (stmt, 1, slug);
  if (!store_step_found (self, stmt, error, "No pool named “%s”", slug))
    return FALSE;

  *pool_id = sqlite3_column_int64 (stmt, 0);
  return TRUE;
}

/* Accounts */

static PoolerAccount *
account_from_row (sqlite3_stmt  *stmt,
                  GError       **error)
{
  PoolerAccount *account;
  PoolerAccountStatus status;
  const char *status_str;

  account = pooler_account_new ((const char *) sqlite3_column_text (stmt, 0));
  pooler_account_set_label (account, (const char *) sqlite3_column_text (stmt, 1));
  pooler_account_set_email (account, (const char *) sqlite3_column_text (stmt, 2));
  pooler_account_set_chatgpt_account_id (account, (const char *) sqlite3_column_text (stmt, 3));
  pooler_account_set_chatgpt_user_id (account, (const char *) sqlite3_column_text (stmt, 4));
  pooler_account_set_plan (account, (const char *) sqlite3_column_text (stmt, 5));

  /* An unknown status keeps the account out of rotation rather than in. */
  status_str = (const char *) sqlite3_column_text (stmt, 6);
  if (!pooler_account_status_from_string (status_str, &status))
    {
      g_debug ("Account %s has unknown status %s; treating it as paused",
               pooler_account_get_id (account), status_str);
      status = POOLER_ACCOUNT_PAUSED;
    }
  pooler_account_set_status (account, status);

  pooler_account_set_priority (account, sqlite3_column_int (stmt, 7));
  pooler_account_set_cooldown_until (account, sqlite3_column_int64 (stmt, 8));
  pooler_account_set_token_expires_at (account, sqlite3_column_int64 (stmt, 9));
  pooler_account_set_last_used_at (account, sqlite3_column_int64 (stmt, 10));
  pooler_account_set_last_error (account, (const char *) sqlite3_column_text (stmt, 11));
  pooler_account_set_created_at (account, sqlite3_column_int64 (stmt, 12));

  return account;
}

static GPtrArray *
collect_accounts (PoolerStore   *self,
                  sqlite3_stmt  *stmt,
                  GError       **error)
{
  return store_collect_rows (self, stmt, (StoreRowReader) account_from_row,
                             g_object_unref, "Could not list accounts", error);
}

gboolean
pooler_store_save_account (PoolerStore    *self,
                           PoolerAccount  *account,
                           GError        **error)
{
  g_autoptr(StoreStatement) stmt = NULL;
  gint64 now = now_seconds ();
  gint64 created_at;
  gboolean found;

  g_return_val_if_fail (POOLER_IS_STORE (self), FALSE);
  g_return_val_if_fail (POOLER_IS_ACCOUNT (account), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (pooler_account_get_id (account) == NULL ||
      pooler_account_get_chatgpt_account_id (account) == NULL)
    {
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                   "An account needs an id and a ChatGPT account id");
      return FALSE;
    }

  created_at = pooler_account_get_created_at (account);
  if (created_at == 0)
    created_at = now;

  /* last_used_at only moves forward: the writer may have touched the row
   * since this object was read. created_at stays what the first insert
   * wrote; RETURNING hands it back to the object. */
  stmt = store_prepare (self,
                        "INSERT INTO accounts (id, label, email, chatgpt_account_id,"
                        " chatgpt_user_id, plan, status, priority, cooldown_until,"
                        " token_expires_at, last_used_at, last_error, created_at, updated_at)"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
                        " ON CONFLICT (id) DO UPDATE SET"
                        "  label = excluded.label,"
                        "  email = excluded.email,"
                        "  chatgpt_account_id = excluded.chatgpt_account_id,"
                        "  chatgpt_user_id = excluded.chatgpt_user_id,"
                        "  plan = excluded.plan,"
                        "  status = excluded.status,"
                        "  priority = excluded.priority,"
                        "  cooldown_until = excluded.cooldown_until,"
                        "  token_expires_at = excluded.token_expires_at,"
                        "  last_used_at = MAX (accounts.last_used_at, excluded.last_used_at),"
                        "  last_error = excluded.last_error,"
                        "  updated_at = excluded.updated_at"
                        " RETURNING created_at",
                        error);
  if (stmt == NULL)
    return FALSE;

  bind_text (stmt, 1, pooler_account_get_id (account));
  bind_text (stmt, 2, pooler_account_get_label (account));
  bind_text (stmt, 3, pooler_account_get_email (account));
  bind_text (stmt, 4, pooler_account_get_chatgpt_account_id (account));
  bind_text (stmt, 5, pooler_account_get_chatgpt_user_id (account));
  bind_text (stmt, 6, pooler_account_get_plan (account));
  bind_text (stmt, 7, pooler_account_status_to_string (pooler_account_get_status (account)));
  sqlite3_bind_int (stmt, 8, pooler_account_get_priority (account));
  sqlite3_bind_int64 (stmt, 9, pooler_account_get_cooldown_until (account));
  sqlite3_bind_int64 (stmt, 10, pooler_account_get_token_expires_at (account));
  sqlite3_bind_int64 (stmt, 11, pooler_account_get_last_used_at (account));
  bind_text (stmt, 12, pooler_account_get_last_error (account));
  sqlite3_bind_int64 (stmt, 13, created_at);
  sqlite3_bind_int64 (stmt, 14, now);

  if (sqlite3_step (stmt) != SQLITE_ROW)
    {
      int code = sqlite3_extended_errcode (self->db);

      if (code == SQLITE_CONSTRAINT_UNIQUE)
        g_set_error (error, POOLER_ERROR, POOLER_ERROR_EXISTS,
                     "Another account already has this ChatGPT identity");
      else
        set_database_error (error, self->db, "Could not save the account");
      return FALSE;
    }

  created_at = sqlite3_column_int64 (stmt, 0);

  /* RETURNING rows are produced before the change is final; finish it. */
  if (!store_step_row (self, stmt, &found, error))
    return FALSE;

  pooler_account_set_created_at (account, created_at);

  return TRUE;
}

PoolerAccount *
pooler_store_find_account (PoolerStore  *self,
                           const char   *id,
                           GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;

  g_return_val_if_fail (POOLER_IS_STORE (self), NULL);
  g_return_val_if_fail (id != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  stmt = store_prepare (self,
                        "SELECT " ACCOUNT_COLUMNS " FROM accounts a WHERE a.id = ?1",
                        error);
  if (stmt == NULL)
    return NULL;

  bind_text (stmt, 1, id);
  if (!store_step_found (self, stmt, error, "No account with id “%s”", id))
    return NULL;

  return account_from_row (stmt, error);
}

PoolerAccount *
pooler_store_find_account_by_identity (PoolerStore  *self,
                                       const char   *chatgpt_account_id,
                                       const char   *chatgpt_user_id,
                                       GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;

  g_return_val_if_fail (POOLER_IS_STORE (self), NULL);
  g_return_val_if_fail (chatgpt_account_id != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* IS, not =, so a NULL user id matches a NULL column. */
  stmt = store_prepare (self,
                        "SELECT " ACCOUNT_COLUMNS " FROM accounts a"
                        " WHERE a.chatgpt_account_id = ?1 AND a.chatgpt_user_id IS ?2"
                        " ORDER BY a.created_at, a.id LIMIT 1",
                        error);
  if (stmt == NULL)
    return NULL;

  bind_text (stmt, 1, chatgpt_account_id);
  bind_text (stmt, 2, chatgpt_user_id);
  if (!store_step_found (self, stmt, error, "No account for this ChatGPT identity"))
    return NULL;

  return account_from_row (stmt, error);
}

GPtrArray *
pooler_store_list_accounts (PoolerStore  *self,
                            const char   *pool_slug,
                            GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;
  gint64 pool_id;

  g_return_val_if_fail (POOLER_IS_STORE (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (pool_slug == NULL)
    {
      stmt = store_prepare (self,
                            "SELECT " ACCOUNT_COLUMNS " FROM accounts a"
                            " ORDER BY a.priority, a.created_at, a.id",
                            error);
      if (stmt == NULL)
        return NULL;

      return collect_accounts (self, stmt, error);
    }

  /* An empty list must mean an empty pool, not a typo in its name. */
  if (!store_pool_id (self, pool_slug, &pool_id, error))
    return NULL;

  stmt = store_prepare (self,
                        "SELECT " ACCOUNT_COLUMNS " FROM accounts a"
                        " JOIN pool_accounts pa ON pa.account_id = a.id"
                        " WHERE pa.pool_id = ?1"
                        " ORDER BY a.priority, a.created_at, a.id",
                        error);
  if (stmt == NULL)
    return NULL;

  sqlite3_bind_int64 (stmt, 1, pool_id);
  return collect_accounts (self, stmt, error);
}

gboolean
pooler_store_remove_account (PoolerStore  *self,
                             const char   *id,
                             GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;

  g_return_val_if_fail (POOLER_IS_STORE (self), FALSE);
  g_return_val_if_fail (id != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  stmt = store_prepare (self, "DELETE FROM accounts WHERE id = ?1", error);
  if (stmt == NULL)
    return FALSE;

  bind_text (stmt, 1, id);
  return store_step_changed (self, stmt, "Could not remove the account", error,
                             "No account with id “%s”", id);
}

static gboolean
store_account_exists (PoolerStore  *self,
                      const char   *account_id,
                      GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;

  stmt = store_prepare (self, "SELECT 1 FROM accounts WHERE id = ?1", error);
  if (stmt == NULL)
    return FALSE;

  bind_text (stmt, 1, account_id);
  return store_step_found (self, stmt, error, "No account with id “%s”", account_id);
}

gboolean
pooler_store_add_pool_account (PoolerStore  *self,
                               gint64        pool_id,
                               const char   *account_id,
                               GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;

  g_return_val_if_fail (POOLER_IS_STORE (self), FALSE);
  g_return_val_if_fail (account_id != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* Adding a member twice is not an error; a missing side is. The foreign
   * key would refuse too, but without saying which side is missing. */
  if (!store_account_exists (self, account_id, error))
    return FALSE;

  stmt = store_prepare (self,
                        "INSERT INTO pool_accounts (pool_id, account_id) VALUES (?1, ?2)"
                        " ON CONFLICT DO NOTHING",
                        error);
  if (stmt == NULL)
    return FALSE;

  sqlite3_bind_int64 (stmt, 1, pool_id);
  bind_text (stmt, 2, account_id);

  if (sqlite3_step (stmt) != SQLITE_DONE)
    {
      if (sqlite3_extended_errcode (self->db) == SQLITE_CONSTRAINT_FOREIGNKEY)
        g_set_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND,
                     "No pool with id %" G_GINT64_FORMAT, pool_id);
      else
        set_database_error (error, self->db, "Could not add the account to the pool");
      return FALSE;
    }

  return TRUE;
}

gboolean
pooler_store_save_account_in_pool (PoolerStore    *self,
                                   PoolerAccount  *account,
                                   gint64          pool_id,
                                   GError        **error)
{
  g_return_val_if_fail (POOLER_IS_STORE (self), FALSE);
  g_return_val_if_fail (POOLER_IS_ACCOUNT (account), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!exec_sql (self->db, "BEGIN IMMEDIATE", "Could not save the account", error))
    return FALSE;

  if (!pooler_store_save_account (self, account, error) ||
      !pooler_store_add_pool_account (self, pool_id, pooler_account_get_id (account), error) ||
      !exec_sql (self->db, "COMMIT", "Could not save the account", error))
    {
      rollback_quietly (self->db);
      return FALSE;
    }

  return TRUE;
}

GStrv
pooler_store_list_account_pools (PoolerStore  *self,
                                 const char   *account_id,
                                 GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;
  g_autoptr(GStrvBuilder) builder = NULL;
  int rc;

  g_return_val_if_fail (POOLER_IS_STORE (self), NULL);
  g_return_val_if_fail (account_id != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!store_account_exists (self, account_id, error))
    return NULL;

  stmt = store_prepare (self,
                        "SELECT p.slug FROM pools p"
                        " JOIN pool_accounts pa ON pa.pool_id = p.id"
                        " WHERE pa.account_id = ?1 ORDER BY p.slug",
                        error);
  if (stmt == NULL)
    return NULL;

  bind_text (stmt, 1, account_id);

  builder = g_strv_builder_new ();
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_strv_builder_add (builder, (const char *) sqlite3_column_text (stmt, 0));

  if (rc != SQLITE_DONE)
    {
      set_database_error (error, self->db, "Could not list the account's pools");
      return NULL;
    }

  return g_strv_builder_end (builder);
}

/* Keys and operator tokens: both are rows named by a public prefix. */

/* @sql must be a string literal with the prefix as ?1; @noun names the row
 * in the NOT_FOUND message. */
static gpointer
store_find_by_prefix (PoolerStore     *self,
                      const char      *sql,
                      StoreRowReader   read_row,
                      const char      *noun,
                      const char      *prefix,
                      GError         **error)
{
  g_autoptr(StoreStatement) stmt = NULL;

  stmt = store_prepare (self, sql, error);
  if (stmt == NULL)
    return NULL;

  bind_text (stmt, 1, prefix);
  if (!store_step_found (self, stmt, error, "No %s with prefix %s", noun, prefix))
    return NULL;

  return read_row (stmt, error);
}

static gboolean
store_revoke_by_prefix (PoolerStore  *self,
                        const char   *sql,
                        const char   *what,
                        const char   *noun,
                        const char   *prefix,
                        GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;

  stmt = store_prepare (self, sql, error);
  if (stmt == NULL)
    return FALSE;

  bind_text (stmt, 1, prefix);
  return store_step_changed (self, stmt, what, error, "No %s with prefix %s", noun, prefix);
}

/* Keys */

static char *
models_to_json (char **models)
{
  g_autoptr(JsonBuilder) builder = NULL;
  g_autoptr(JsonGenerator) generator = NULL;
  g_autoptr(JsonNode) root = NULL;

  if (models == NULL)
    return NULL;

  builder = json_builder_new ();
  json_builder_begin_array (builder);
  for (guint i = 0; models[i] != NULL; i++)
    json_builder_add_string_value (builder, models[i]);
  json_builder_end_array (builder);

  root = json_builder_get_root (builder);
  generator = json_generator_new ();
  json_generator_set_root (generator, root);

  return json_generator_to_data (generator, NULL);
}

static gboolean
models_from_json (const char   *json,
                  char       ***models,
                  GError      **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GStrvBuilder) builder = NULL;
  JsonArray *array;
  JsonNode *root;

  *models = NULL;
  if (json == NULL)
    return TRUE;

  if (!json_parser_load_from_data (parser, json, -1, NULL) ||
      (root = json_parser_get_root (parser)) == NULL ||
      !JSON_NODE_HOLDS_ARRAY (root))
    goto malformed;

  array = json_node_get_array (root);
  builder = g_strv_builder_new ();
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *element = json_array_get_element (array, i);

      if (!JSON_NODE_HOLDS_VALUE (element) ||
          json_node_get_value_type (element) != G_TYPE_STRING)
        goto malformed;
      g_strv_builder_add (builder, json_node_get_string (element));
    }

  *models = g_strv_builder_end (builder);
  return TRUE;

malformed:
  /* Refuse the key rather than read "no list" as "every model". */
  g_set_error (error, POOLER_ERROR, POOLER_ERROR_DATABASE,
               "A key's allowed models are not a JSON array of strings");
  return FALSE;
}

static PoolerKeyRecord *
key_from_row (sqlite3_stmt  *stmt,
              GError       **error)
{
  g_autoptr(PoolerKeyRecord) key = pooler_key_record_new ();

  key->prefix = column_dup (stmt, 0);
  key->secret_sha256 = column_dup (stmt, 1);
  key->pool_id = sqlite3_column_int64 (stmt, 2);
  key->pool_slug = column_dup (stmt, 3);
  key->name = column_dup (stmt, 4);
  /* Anything but 'active' counts as revoked: fail closed. */
  key->revoked = g_strcmp0 ((const char *) sqlite3_column_text (stmt, 5), "active") != 0;
  key->created_at = sqlite3_column_int64 (stmt, 6);
  key->expires_at = sqlite3_column_int64 (stmt, 7);
  key->last_used_at = sqlite3_column_int64 (stmt, 8);

  if (!models_from_json ((const char *) sqlite3_column_text (stmt, 9),
                         &key->allowed_models, error))
    return NULL;

  return g_steal_pointer (&key);
}

gboolean
pooler_store_insert_key (PoolerStore            *self,
                         const PoolerKeyRecord  *key,
                         GError                **error)
{
  g_autoptr(StoreStatement) stmt = NULL;
  g_autofree char *models = NULL;
  int code;

  g_return_val_if_fail (POOLER_IS_STORE (self), FALSE);
  g_return_val_if_fail (key != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (key->prefix == NULL || key->secret_sha256 == NULL)
    {
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                   "A key needs a prefix and a secret hash");
      return FALSE;
    }

  stmt = store_prepare (self,
                        "INSERT INTO api_keys (prefix, secret_sha256, pool_id, name, status,"
                        " created_at, expires_at, last_used_at, allowed_models)"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        error);
  if (stmt == NULL)
    return FALSE;

  models = models_to_json (key->allowed_models);

  bind_text (stmt, 1, key->prefix);
  bind_text (stmt, 2, key->secret_sha256);
  sqlite3_bind_int64 (stmt, 3, key->pool_id);
  bind_text (stmt, 4, key->name);
  bind_text (stmt, 5, key->revoked ? "revoked" : "active");
  sqlite3_bind_int64 (stmt, 6, key->created_at != 0 ? key->created_at : now_seconds ());
  sqlite3_bind_int64 (stmt, 7, key->expires_at);
  sqlite3_bind_int64 (stmt, 8, key->last_used_at);
  bind_text (stmt, 9, models);

  if (sqlite3_step (stmt) == SQLITE_DONE)
    return TRUE;

  code = sqlite3_extended_errcode (self->db);
  if (code == SQLITE_CONSTRAINT_PRIMARYKEY)
    g_set_error (error, POOLER_ERROR, POOLER_ERROR_EXISTS,
                 "A key with prefix %s already exists", key->prefix);
  else if (code == SQLITE_CONSTRAINT_FOREIGNKEY)
    g_set_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND,
                 "No pool with id %" G_GINT64_FORMAT, key->pool_id);
  else
    set_database_error (error, self->db, "Could not store the key");

  return FALSE;
}

PoolerKeyRecord *
pooler_store_find_key (PoolerStore  *self,
                       const char   *prefix,
                       GError      **error)
{
  g_return_val_if_fail (POOLER_IS_STORE (self), NULL);
  g_return_val_if_fail (prefix != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return store_find_by_prefix (self, KEY_SELECT " WHERE k.prefix = ?1",
                               (StoreRowReader) key_from_row, "key", prefix, error);
}

GPtrArray *
pooler_store_list_keys (PoolerStore  *self,
                        const char   *pool_slug,
                        GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;
  gint64 pool_id = 0;

  g_return_val_if_fail (POOLER_IS_STORE (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (pool_slug == NULL)
    {
      stmt = store_prepare (self, KEY_SELECT " ORDER BY k.created_at, k.prefix", error);
    }
  else
    {
      if (!store_pool_id (self, pool_slug, &pool_id, error))
        return NULL;
      stmt = store_prepare (self,
                            KEY_SELECT " WHERE k.pool_id = ?1 ORDER BY k.created_at, k.prefix",
                            error);
      if (stmt != NULL)
        sqlite3_bind_int64 (stmt, 1, pool_id);
    }
  if (stmt == NULL)
    return NULL;

  return store_collect_rows (self, stmt, (StoreRowReader) key_from_row,
                             (GDestroyNotify) pooler_key_record_free,
                             "Could not list keys", error);
}

gboolean
pooler_store_revoke_key (PoolerStore  *self,
                         const char   *prefix,
                         GError      **error)
{
  g_return_val_if_fail (POOLER_IS_STORE (self), FALSE);
  g_return_val_if_fail (prefix != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return store_revoke_by_prefix (self, "UPDATE api_keys SET status = 'revoked' WHERE prefix = ?1",
                                 "Could not revoke the key", "key", prefix, error);
}

/* Request log */

#define REQUEST_COLUMNS \
  "id, started_at_ms, pool_slug, key_prefix, account_id," \
  " model, endpoint, transport, status, upstream_status," \
  " latency_ms, ttfb_ms, input_tokens, output_tokens," \
  " cached_tokens, reasoning_tokens, error_code, state"

static PoolerRequestRecord *
request_from_row (sqlite3_stmt  *stmt,
                  GError       **error)
{
  PoolerRequestRecord *record = pooler_request_record_new ();
  PoolerRequestState state;

  g_free (record->id);
  record->id = column_dup (stmt, 0);
  record->started_at_ms = sqlite3_column_int64 (stmt, 1);
  record->pool_slug = column_dup (stmt, 2);
  record->key_prefix = column_dup (stmt, 3);
  record->account_id = column_dup (stmt, 4);
  record->model = column_dup (stmt, 5);
  record->endpoint = column_dup (stmt, 6);
  record->transport = column_dup (stmt, 7);
  record->status = sqlite3_column_int (stmt, 8);
  record->upstream_status = sqlite3_column_int (stmt, 9);
  record->latency_ms = sqlite3_column_int64 (stmt, 10);
  record->ttfb_ms = sqlite3_column_int64 (stmt, 11);
  record->input_tokens = sqlite3_column_int64 (stmt, 12);
  record->output_tokens = sqlite3_column_int64 (stmt, 13);
  record->cached_tokens = sqlite3_column_int64 (stmt, 14);
  record->reasoning_tokens = sqlite3_column_int64 (stmt, 15);
  record->error_code = column_dup (stmt, 16);

  if (!pooler_request_state_from_string ((const char *) sqlite3_column_text (stmt, 17), &state))
    state = POOLER_REQUEST_COMPLETED;
  record->state = state;

  return record;
}

static gboolean
store_fill_attempts (PoolerStore          *self,
                     PoolerRequestRecord  *record,
                     GError              **error)
{
  g_autoptr(StoreStatement) stmt = NULL;
  int rc;

  stmt = store_prepare (self,
                        "SELECT attempt, account_id, upstream_status, error_code,"
                        " started_at_ms, duration_ms FROM request_attempts"
                        " WHERE request_id = ?1 ORDER BY attempt",
                        error);
  if (stmt == NULL)
    return FALSE;

  bind_text (stmt, 1, record->id);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      PoolerAttemptRecord *attempt = g_new0 (PoolerAttemptRecord, 1);

      attempt->attempt = (guint) sqlite3_column_int (stmt, 0);
      attempt->account_id = column_dup (stmt, 1);
      attempt->upstream_status = sqlite3_column_int (stmt, 2);
      attempt->error_code = column_dup (stmt, 3);
      attempt->started_at_ms = sqlite3_column_int64 (stmt, 4);
      attempt->duration_ms = sqlite3_column_int64 (stmt, 5);
      g_ptr_array_add (record->attempts, attempt);
    }

  if (rc != SQLITE_DONE)
    return set_database_error (error, self->db, "Could not read request attempts");

  return TRUE;
}

gboolean
pooler_store_read_begin (PoolerStore  *self,
                         GError      **error)
{
  g_return_val_if_fail (POOLER_IS_STORE (self), FALSE);

  return exec_sql (self->db, "BEGIN", "Could not read the database", error);
}

void
pooler_store_read_end (PoolerStore *self)
{
  g_return_if_fail (POOLER_IS_STORE (self));

  /* A read transaction has nothing to lose: end it whatever happened. */
  if (!sqlite3_get_autocommit (self->db))
    sqlite3_exec (self->db, "COMMIT", NULL, NULL, NULL);
}

/* Runs @stmt (already bound) and fills each row's attempts. */
static GPtrArray *
store_collect_requests (PoolerStore   *self,
                        sqlite3_stmt  *stmt,
                        GError       **error)
{
  g_autoptr(GPtrArray) records = NULL;

  records = store_collect_rows (self, stmt, (StoreRowReader) request_from_row,
                                (GDestroyNotify) pooler_request_record_free,
                                "Could not list requests", error);
  if (records == NULL)
    return NULL;

  /* Attempts after the rows: the cached attempt statement is separate. */
  sqlite3_reset (stmt);
  for (guint i = 0; i < records->len; i++)
    if (!store_fill_attempts (self, g_ptr_array_index (records, i), error))
      return NULL;

  return g_steal_pointer (&records);
}

/* One read transaction, so rows and their attempts come from the same
 * snapshot while the writer commits. */
static GPtrArray *
store_in_read_transaction (PoolerStore   *self,
                           sqlite3_stmt  *stmt,
                           GError       **error)
{
  GPtrArray *records;

  if (!exec_sql (self->db, "BEGIN", "Could not read requests", error))
    return NULL;

  records = store_collect_requests (self, stmt, error);

  if (records == NULL)
    rollback_quietly (self->db);
  else if (!exec_sql (self->db, "COMMIT", "Could not read requests", error))
    {
      rollback_quietly (self->db);
      g_clear_pointer (&records, g_ptr_array_unref);
    }

  return records;
}

GPtrArray *
pooler_store_list_requests (PoolerStore  *self,
                            guint         limit,
                            GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;

  g_return_val_if_fail (POOLER_IS_STORE (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  stmt = store_prepare (self,
                        "SELECT " REQUEST_COLUMNS " FROM requests"
                        " ORDER BY started_at_ms DESC, id DESC LIMIT ?1",
                        error);
  if (stmt == NULL)
    return NULL;

  /* 0 means no limit; SQLite reads a negative LIMIT the same way. */
  sqlite3_bind_int64 (stmt, 1, limit > 0 ? (sqlite3_int64) limit : -1);

  return store_in_read_transaction (self, stmt, error);
}

gboolean
pooler_store_count_requests (PoolerStore  *self,
                             gint64        since_ms,
                             gint64       *total,
                             gint64       *failed,
                             GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;
  gboolean found;

  g_return_val_if_fail (POOLER_IS_STORE (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  stmt = store_prepare (self,
                        "SELECT COUNT (*),"
                        " COALESCE (SUM (status >= 400 OR state = 'interrupted'), 0)"
                        " FROM requests WHERE started_at_ms >= ?1",
                        error);
  if (stmt == NULL)
    return FALSE;

  sqlite3_bind_int64 (stmt, 1, since_ms);
  if (!store_step_row (self, stmt, &found, error))
    return FALSE;

  g_assert (found);
  if (total != NULL)
    *total = sqlite3_column_int64 (stmt, 0);
  if (failed != NULL)
    *failed = sqlite3_column_int64 (stmt, 1);

  return TRUE;
}

gint64
pooler_store_mark_interrupted (PoolerStore  *self,
                               GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;

  g_return_val_if_fail (POOLER_IS_STORE (self), -1);
  g_return_val_if_fail (error == NULL || *error == NULL, -1);

  stmt = store_prepare (self,
                        "UPDATE requests SET state = 'interrupted',"
                        " error_code = COALESCE (error_code, 'interrupted')"
                        " WHERE state = 'in_flight'",
                        error);
  if (stmt == NULL ||
      !store_step_done (self, stmt, "Could not mark interrupted requests", error))
    return -1;

  return sqlite3_changes (self->db);
}

/* Quota evidence */

static PoolerQuotaWindow *
quota_window_from_row (sqlite3_stmt  *stmt,
                       GError       **error)
{
  PoolerQuotaWindow *window = g_new0 (PoolerQuotaWindow, 1);

  window->limit_id = column_dup (stmt, 0);
  window->window_minutes = sqlite3_column_int (stmt, 1);
  window->used_percent = sqlite3_column_double (stmt, 2);
  window->reset_at = sqlite3_column_int64 (stmt, 3);
  window->observed_at = sqlite3_column_int64 (stmt, 4);
  window->source = POOLER_QUOTA_SOURCE_STORED;

  return window;
}

GPtrArray *
pooler_store_list_quota_windows (PoolerStore  *self,
                                 const char   *account_id,
                                 GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;

  g_return_val_if_fail (POOLER_IS_STORE (self), NULL);
  g_return_val_if_fail (account_id != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  stmt = store_prepare (self,
                        "SELECT limit_id, window_minutes, used_percent, reset_at,"
                        " observed_at FROM quota_windows WHERE account_id = ?1"
                        " ORDER BY limit_id, window_minutes",
                        error);
  if (stmt == NULL)
    return NULL;

  bind_text (stmt, 1, account_id);
  return store_collect_rows (self, stmt, (StoreRowReader) quota_window_from_row,
                             (GDestroyNotify) pooler_quota_window_free,
                             "Could not read quota windows", error);
}

static PoolerAffinityEntry *
affinity_from_row (sqlite3_stmt  *stmt,
                   GError       **error)
{
  PoolerAffinityEntry *entry = g_new0 (PoolerAffinityEntry, 1);

  entry->key_sha256 = column_dup (stmt, 0);
  entry->kind = column_dup (stmt, 1);
  entry->account_id = column_dup (stmt, 2);
  entry->pool_id = sqlite3_column_int64 (stmt, 3);
  entry->expires_at = sqlite3_column_int64 (stmt, 4);

  return entry;
}

GPtrArray *
pooler_store_list_affinities (PoolerStore  *self,
                              gint64        now,
                              GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;

  g_return_val_if_fail (POOLER_IS_STORE (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  stmt = store_prepare (self,
                        "SELECT key_sha256, kind, account_id, pool_id, expires_at"
                        " FROM affinities WHERE expires_at > ?1",
                        error);
  if (stmt == NULL)
    return NULL;

  sqlite3_bind_int64 (stmt, 1, now);
  return store_collect_rows (self, stmt, (StoreRowReader) affinity_from_row,
                             (GDestroyNotify) pooler_affinity_entry_free,
                             "Could not read affinities", error);
}

gboolean
pooler_store_add_audit_event (PoolerStore  *self,
                              const char   *actor,
                              const char   *action,
                              const char   *target,
                              const char   *detail,
                              GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;

  g_return_val_if_fail (POOLER_IS_STORE (self), FALSE);
  g_return_val_if_fail (actor != NULL, FALSE);
  g_return_val_if_fail (action != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  stmt = store_prepare (self,
                        "INSERT INTO audit_events (at, actor, action, target, detail)"
                        " VALUES (?1, ?2, ?3, ?4, ?5)",
                        error);
  if (stmt == NULL)
    return FALSE;

  sqlite3_bind_int64 (stmt, 1, now_seconds ());
  bind_text (stmt, 2, actor);
  bind_text (stmt, 3, action);
  bind_text (stmt, 4, target);
  bind_text (stmt, 5, detail);

  return store_step_done (self, stmt, "Could not record the audit event", error);
}

/* Operator tokens */

#define MCP_TOKEN_SELECT \
  "SELECT prefix, secret_sha256, name, status, created_at, last_used_at FROM mcp_tokens"

static PoolerMcpTokenRecord *
mcp_token_from_row (sqlite3_stmt  *stmt,
                    GError       **error)
{
  PoolerMcpTokenRecord *token = pooler_mcp_token_record_new ();

  token->prefix = column_dup (stmt, 0);
  token->secret_sha256 = column_dup (stmt, 1);
  token->name = column_dup (stmt, 2);
  /* Anything but 'active' counts as revoked: fail closed. */
  token->revoked = g_strcmp0 ((const char *) sqlite3_column_text (stmt, 3), "active") != 0;
  token->created_at = sqlite3_column_int64 (stmt, 4);
  token->last_used_at = sqlite3_column_int64 (stmt, 5);

  return token;
}

gboolean
pooler_store_insert_mcp_token (PoolerStore                 *self,
                               const PoolerMcpTokenRecord  *token,
                               GError                     **error)
{
  g_autoptr(StoreStatement) stmt = NULL;

  g_return_val_if_fail (POOLER_IS_STORE (self), FALSE);
  g_return_val_if_fail (token != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (token->prefix == NULL || token->secret_sha256 == NULL)
    {
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                   "A token needs a prefix and a secret hash");
      return FALSE;
    }

  stmt = store_prepare (self,
                        "INSERT INTO mcp_tokens (prefix, secret_sha256, name, status,"
                        " created_at, last_used_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        error);
  if (stmt == NULL)
    return FALSE;

  bind_text (stmt, 1, token->prefix);
  bind_text (stmt, 2, token->secret_sha256);
  bind_text (stmt, 3, token->name);
  bind_text (stmt, 4, token->revoked ? "revoked" : "active");
  sqlite3_bind_int64 (stmt, 5, token->created_at != 0 ? token->created_at : now_seconds ());
  sqlite3_bind_int64 (stmt, 6, token->last_used_at);

  if (sqlite3_step (stmt) == SQLITE_DONE)
    return TRUE;

  if (sqlite3_extended_errcode (self->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
    g_set_error (error, POOLER_ERROR, POOLER_ERROR_EXISTS,
                 "A token with prefix %s already exists", token->prefix);
  else
    set_database_error (error, self->db, "Could not store the token");

  return FALSE;
}

PoolerMcpTokenRecord *
pooler_store_find_mcp_token (PoolerStore  *self,
                             const char   *prefix,
                             GError      **error)
{
  g_return_val_if_fail (POOLER_IS_STORE (self), NULL);
  g_return_val_if_fail (prefix != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return store_find_by_prefix (self, MCP_TOKEN_SELECT " WHERE prefix = ?1",
                               (StoreRowReader) mcp_token_from_row, "token", prefix, error);
}

GPtrArray *
pooler_store_list_mcp_tokens (PoolerStore  *self,
                              GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;

  g_return_val_if_fail (POOLER_IS_STORE (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  stmt = store_prepare (self, MCP_TOKEN_SELECT " ORDER BY created_at, prefix", error);
  if (stmt == NULL)
    return NULL;

  return store_collect_rows (self, stmt, (StoreRowReader) mcp_token_from_row,
                             (GDestroyNotify) pooler_mcp_token_record_free,
                             "Could not list tokens", error);
}

gboolean
pooler_store_revoke_mcp_token (PoolerStore  *self,
                               const char   *prefix,
                               GError      **error)
{
  g_return_val_if_fail (POOLER_IS_STORE (self), FALSE);
  g_return_val_if_fail (prefix != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return store_revoke_by_prefix (self, "UPDATE mcp_tokens SET status = 'revoked' WHERE prefix = ?1",
                                 "Could not revoke the token", "token", prefix, error);
}

gboolean
pooler_store_touch_mcp_token (PoolerStore  *self,
                              const char   *prefix,
                              gint64        last_used_at,
                              GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;

  g_return_val_if_fail (POOLER_IS_STORE (self), FALSE);
  g_return_val_if_fail (prefix != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  stmt = store_prepare (self, "UPDATE mcp_tokens SET last_used_at = ?2 WHERE prefix = ?1", error);
  if (stmt == NULL)
    return FALSE;

  bind_text (stmt, 1, prefix);
  sqlite3_bind_int64 (stmt, 2, last_used_at);

  return store_step_done (self, stmt, "Could not record the token's use", error);
}

/* Filtered request log */

GPtrArray *
pooler_store_query_requests (PoolerStore               *self,
                             const PoolerRequestQuery  *query,
                             GError                   **error)
{
  g_autoptr(StoreStatement) stmt = NULL;

  g_return_val_if_fail (POOLER_IS_STORE (self), NULL);
  g_return_val_if_fail (query != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* One statement for every combination of filters: a NULL parameter
   * switches its condition off. */
  stmt = store_prepare (self,
                        "SELECT " REQUEST_COLUMNS " FROM requests"
                        " WHERE (?1 IS NULL OR pool_slug = ?1)"
                        " AND (?2 IS NULL OR key_prefix = ?2)"
                        " AND (?3 IS NULL OR account_id = ?3 OR EXISTS (SELECT 1"
                        "  FROM request_attempts a WHERE a.request_id = requests.id"
                        "  AND a.account_id = ?3))"
                        " AND (?4 = 0 OR status = ?4)"
                        " AND (?5 IS NULL OR state = ?5)"
                        " AND started_at_ms >= ?6"
                        " AND (?7 IS NULL OR started_at_ms < ?8"
                        "  OR (started_at_ms = ?8 AND id < ?7))"
                        " ORDER BY started_at_ms DESC, id DESC LIMIT ?9",
                        error);
  if (stmt == NULL)
    return NULL;

  bind_text (stmt, 1, query->pool_slug);
  bind_text (stmt, 2, query->key_prefix);
  bind_text (stmt, 3, query->account_id);
  sqlite3_bind_int (stmt, 4, query->status);
  bind_text (stmt, 5, query->state);
  sqlite3_bind_int64 (stmt, 6, query->since_ms);
  bind_text (stmt, 7, query->before_id);
  sqlite3_bind_int64 (stmt, 8, query->before_started_at_ms);
  sqlite3_bind_int64 (stmt, 9, query->limit > 0 ? (sqlite3_int64) query->limit : -1);

  return store_in_read_transaction (self, stmt, error);
}

PoolerRequestRecord *
pooler_store_find_request (PoolerStore  *self,
                           const char   *id,
                           GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;
  g_autoptr(GPtrArray) records = NULL;

  g_return_val_if_fail (POOLER_IS_STORE (self), NULL);
  g_return_val_if_fail (id != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  stmt = store_prepare (self, "SELECT " REQUEST_COLUMNS " FROM requests WHERE id = ?1", error);
  if (stmt == NULL)
    return NULL;

  bind_text (stmt, 1, id);
  records = store_in_read_transaction (self, stmt, error);
  if (records == NULL)
    return NULL;

  if (records->len == 0)
    {
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND, "No request with id %s", id);
      return NULL;
    }

  return g_ptr_array_steal_index (records, 0);
}

/* Audit log */

void
pooler_audit_event_free (PoolerAuditEvent *event)
{
  if (event == NULL)
    return;

  g_free (event->actor);
  g_free (event->action);
  g_free (event->target);
  g_free (event->detail);
  g_free (event);
}

static PoolerAuditEvent *
audit_event_from_row (sqlite3_stmt  *stmt,
                      GError       **error)
{
  PoolerAuditEvent *event = g_new0 (PoolerAuditEvent, 1);

  event->id = sqlite3_column_int64 (stmt, 0);
  event->at = sqlite3_column_int64 (stmt, 1);
  event->actor = column_dup (stmt, 2);
  event->action = column_dup (stmt, 3);
  event->target = column_dup (stmt, 4);
  event->detail = column_dup (stmt, 5);

  return event;
}

GPtrArray *
pooler_store_list_audit_events (PoolerStore  *self,
                                gint64        before_id,
                                guint         limit,
                                GError      **error)
{
  g_autoptr(StoreStatement) stmt = NULL;

  g_return_val_if_fail (POOLER_IS_STORE (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  stmt = store_prepare (self,
                        "SELECT id, at, actor, action, target, detail FROM audit_events"
                        " WHERE (?1 <= 0 OR id < ?1) ORDER BY id DESC LIMIT ?2",
                        error);
  if (stmt == NULL)
    return NULL;

  sqlite3_bind_int64 (stmt, 1, before_id);
  sqlite3_bind_int64 (stmt, 2, limit > 0 ? (sqlite3_int64) limit : -1);

  return store_collect_rows (self, stmt, (StoreRowReader) audit_event_from_row,
                             (GDestroyNotify) pooler_audit_event_free,
                             "Could not read the audit log", error);
}
