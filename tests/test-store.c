/* test-store.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <sys/stat.h>

#include <glib/gstdio.h>

#include "pooler-error.h"
#include "pooler-store-private.h"
#include "test-util.h"
#include "pooler-store-writer.h"

static void
exec_ok (sqlite3    *db,
         const char *sql)
{
  char *message = NULL;
  int rc = sqlite3_exec (db, sql, NULL, NULL, &message);

  if (rc != SQLITE_OK)
    g_error ("%s: %s", sql, message);
}

static gint64
query_int (sqlite3    *db,
           const char *sql)
{
  sqlite3_stmt *stmt = NULL;
  gint64 value;

  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  value = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);

  return value;
}

/* NULL when the column is NULL or there is no row. */
static char *
query_text (sqlite3    *db,
            const char *sql)
{
  sqlite3_stmt *stmt = NULL;
  char *value = NULL;

  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  if (sqlite3_step (stmt) == SQLITE_ROW && sqlite3_column_type (stmt, 0) != SQLITE_NULL)
    value = g_strdup ((const char *) sqlite3_column_text (stmt, 0));
  sqlite3_finalize (stmt);

  return value;
}

static gboolean
column_exists (sqlite3    *db,
               const char *table,
               const char *column)
{
  g_autofree char *sql = g_strdup_printf ("SELECT COUNT (*) FROM pragma_table_info ('%s')"
                                          " WHERE name = '%s'", table, column);

  return query_int (db, sql) == 1;
}

static gboolean
table_exists (sqlite3    *db,
              const char *table)
{
  g_autofree char *sql = g_strdup_printf ("SELECT COUNT (*) FROM sqlite_schema"
                                          " WHERE type = 'table' AND name = '%s'", table);

  return query_int (db, sql) == 1;
}

static gint64
config_version (PoolerStore *store)
{
  g_autoptr(GError) error = NULL;
  gint64 version = pooler_store_get_config_version (store, &error);

  g_assert_no_error (error);
  g_assert_cmpint (version, >=, 0);
  return version;
}

static PoolerAccount *
make_account (const char *id,
              const char *chatgpt_account_id,
              const char *chatgpt_user_id)
{
  PoolerAccount *account = pooler_account_new (id);

  pooler_account_set_chatgpt_account_id (account, chatgpt_account_id);
  pooler_account_set_chatgpt_user_id (account, chatgpt_user_id);
  return account;
}

static void
save_account_ok (PoolerStore   *store,
                 PoolerAccount *account)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (pooler_store_save_account (store, account, &error));
  g_assert_no_error (error);
}

static PoolerPool *
create_pool_ok (PoolerStore *store,
                const char  *slug)
{
  g_autoptr(GError) error = NULL;
  PoolerPool *pool = pooler_store_create_pool (store, slug, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (pool);
  return pool;
}

static PoolerKeyRecord *
make_key (const char *prefix,
          gint64      pool_id,
          gint64      created_at)
{
  PoolerKeyRecord *key = pooler_key_record_new ();

  key->prefix = g_strdup (prefix);
  key->secret_sha256 = g_strnfill (64, 'a');
  key->pool_id = pool_id;
  key->created_at = created_at;
  return key;
}

static PoolerRequestRecord *
make_request (const char *id,
              gint64      started_at_ms,
              int         status)
{
  PoolerRequestRecord *record = pooler_request_record_new ();

  g_free (record->id);
  record->id = g_strdup (id);
  record->started_at_ms = started_at_ms;
  record->endpoint = g_strdup ("/backend-api/codex/responses");
  record->status = status;
  return record;
}

static PoolerStoreWriter *
open_writer (const char *path)
{
  g_autoptr(GError) error = NULL;
  PoolerStoreWriter *writer = pooler_store_writer_new (path, &error);

  g_assert_no_error (error);
  g_assert_nonnull (writer);
  return writer;
}

static void
test_default_path (void)
{
  g_autofree char *path = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *wal = NULL;
  g_autofree char *parent = NULL;
  g_autoptr(PoolerStore) store = NULL;
  g_autoptr(PoolerStore) by_default = NULL;
  GStatBuf st;

  /* A permissive umask, so modes come from the store, not the umask. */
  umask (022);

  path = pooler_store_default_path ();
  dir = g_build_filename (g_get_user_data_dir (), "codex-pooler", NULL);
  parent = g_path_get_dirname (path);
  /* ISOLATE_DIRS points the user dirs at a temporary tree. */
  g_assert_true (g_str_has_prefix (path, g_get_user_data_dir ()));
  g_assert_cmpstr (parent, ==, dir);
  g_assert_true (g_str_has_suffix (path, "/codex-pooler/pooler.db"));

  g_assert_no_errno (g_stat (dir, &st));
  g_assert_true (S_ISDIR (st.st_mode));
  g_assert_cmpint (st.st_mode & 0777, ==, 0700);

  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
  store = test_open_store (path);
  g_assert_cmpstr (pooler_store_get_path (store), ==, path);
  g_assert_no_errno (g_stat (path, &st));
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);

  /* SQLite gives the WAL the main file's mode; it holds the same data. */
  wal = g_strconcat (path, "-wal", NULL);
  g_assert_no_errno (g_stat (wal, &st));
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);

  /* NULL means the default path. */
  by_default = test_open_store (NULL);
  g_assert_cmpstr (pooler_store_get_path (by_default), ==, path);
}

static void
test_pragmas (void)
{
  g_autofree char *path = test_db_path ("pragmas.db");
  g_autoptr(PoolerStore) store = test_open_store (path);
  g_autofree char *mode = NULL;
  sqlite3 *plain = NULL;
  sqlite3 *db;

  g_assert_true (pooler_store_ping (store, NULL));
  g_assert_cmpint (pooler_store_get_schema_version (store), ==,
                   pooler_store_schema_version_latest ());

  /* journal_mode is a property of the file: a plain connection sees it. */
  g_assert_cmpint (sqlite3_open_v2 (path, &plain, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  mode = query_text (plain, "PRAGMA journal_mode");
  g_assert_cmpstr (mode, ==, "wal");
  g_assert_cmpint (query_int (plain, "PRAGMA busy_timeout"), ==, 0);
  sqlite3_close_v2 (plain);

  /* The rest are per connection. */
  db = test_open_raw (path);
  g_assert_cmpint (query_int (db, "PRAGMA busy_timeout"), ==, 5000);
  g_assert_cmpint (query_int (db, "PRAGMA foreign_keys"), ==, 1);
  g_assert_cmpint (query_int (db, "PRAGMA synchronous"), ==, 1 /* NORMAL */);
  sqlite3_close_v2 (db);
}

/* Rows that are valid at schema @version, written with that version's
 * columns only. */
static void
seed_version (sqlite3 *db,
              int      version)
{
  if (version >= 1)
    {
      exec_ok (db,
               "INSERT INTO pools (id, slug, name, strategy, created_at)"
               " VALUES (7, 'legacy', 'Legacy', 'fill-first', 1000);"
               "INSERT INTO accounts (id, label, chatgpt_account_id, chatgpt_user_id,"
               " plan, priority, created_at, updated_at)"
               " VALUES ('acct-legacy', 'Old', 'cga-1', 'user-1', 'pro', 2, 1000, 1000);"
               "INSERT INTO pool_accounts (pool_id, account_id) VALUES (7, 'acct-legacy');"
               "INSERT INTO api_keys (prefix, secret_sha256, pool_id, name, created_at,"
               " allowed_models)"
               " VALUES ('sk-cxp-0123456789ab', 'ff', 7, 'ci', 1000, '[\"gpt-5\"]');"
               "INSERT INTO requests (id, started_at_ms, pool_slug, account_id, model,"
               " endpoint, status, latency_ms)"
               " VALUES ('req_legacy', 5000, 'legacy', 'acct-legacy', 'gpt-5',"
               " '/backend-api/codex/responses', 502, 42);");
    }

  if (version >= 2)
    {
      exec_ok (db,
               "UPDATE requests SET state = 'in_flight' WHERE id = 'req_legacy';"
               "INSERT INTO request_attempts (request_id, attempt, account_id,"
               " upstream_status, started_at_ms)"
               " VALUES ('req_legacy', 1, 'acct-legacy', 502, 5000);"
               "INSERT INTO audit_events (at, actor, action) VALUES (1, 'cli', 'seed');");
    }
}

static void
check_seeded (PoolerStore *store,
              sqlite3     *db,
              int          version)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(PoolerPool) pool = NULL;
  g_autoptr(PoolerAccount) account = NULL;
  g_autoptr(PoolerKeyRecord) key = NULL;
  g_autoptr(GPtrArray) members = NULL;
  g_autoptr(GPtrArray) requests = NULL;
  PoolerRequestRecord *request;

  if (version < 1)
    {
      g_autoptr(GPtrArray) pools = pooler_store_list_pools (store, &error);

      g_assert_no_error (error);
      g_assert_cmpuint (pools->len, ==, 0);
      return;
    }

  pool = pooler_store_find_pool (store, "legacy", &error);
  g_assert_no_error (error);
  g_assert_cmpint (pooler_pool_get_id (pool), ==, 7);
  g_assert_cmpstr (pooler_pool_get_name (pool), ==, "Legacy");
  g_assert_cmpstr (pooler_pool_get_strategy (pool), ==, POOLER_STRATEGY_FILL_FIRST);

  account = pooler_store_find_account (store, "acct-legacy", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (pooler_account_get_label (account), ==, "Old");
  g_assert_cmpstr (pooler_account_get_plan (account), ==, "pro");
  g_assert_cmpint (pooler_account_get_priority (account), ==, 2);
  g_assert_cmpint (pooler_account_get_created_at (account), ==, 1000);

  members = pooler_store_list_accounts (store, "legacy", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (members->len, ==, 1);

  key = pooler_store_find_key (store, "sk-cxp-0123456789ab", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (key->pool_slug, ==, "legacy");
  g_assert_nonnull (key->allowed_models);
  g_assert_cmpstr (key->allowed_models[0], ==, "gpt-5");
  g_assert_null (key->allowed_models[1]);

  requests = pooler_store_list_requests (store, 10, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (requests->len, ==, 1);
  request = g_ptr_array_index (requests, 0);
  g_assert_cmpstr (request->id, ==, "req_legacy");
  g_assert_cmpstr (request->model, ==, "gpt-5");
  g_assert_cmpint (request->status, ==, 502);
  g_assert_cmpint (request->latency_ms, ==, 42);
  g_assert_cmpint (request->ttfb_ms, ==, -1);

  if (version < 2)
    {
      /* Rows from before the state column count as finished. */
      g_assert_cmpint (request->state, ==, POOLER_REQUEST_COMPLETED);
      g_assert_cmpuint (request->attempts->len, ==, 0);
      g_assert_cmpint (query_int (db, "SELECT COUNT (*) FROM audit_events"), ==, 0);
    }
  else
    {
      g_assert_cmpint (request->state, ==, POOLER_REQUEST_IN_FLIGHT);
      g_assert_cmpuint (request->attempts->len, ==, 1);
      g_assert_cmpint (query_int (db, "SELECT COUNT (*) FROM audit_events"), ==, 1);
    }
}

static void
test_migrate_from (gconstpointer data)
{
  int from = GPOINTER_TO_INT (data);
  int latest = pooler_store_schema_version_latest ();
  g_autofree char *name = g_strdup_printf ("from-%d.db", from);
  g_autofree char *path = test_db_path (name);
  g_autoptr(PoolerStore) store = NULL;
  g_autoptr(PoolerStoreWriter) writer = NULL;
  g_autoptr(PoolerPool) fresh = NULL;
  g_autoptr(PoolerRequestRecord) record = NULL;
  g_autoptr(GPtrArray) requests = NULL;
  g_autoptr(GError) error = NULL;
  gint64 total = -1, failed = -1;
  gint64 version;
  sqlite3 *db;

  db = test_open_raw (path);
  g_assert_true (pooler_store_migrate_to (db, from, &error));
  g_assert_no_error (error);
  g_assert_cmpint (query_int (db, "PRAGMA user_version"), ==, from);
  seed_version (db, from);
  sqlite3_close_v2 (db);

  store = test_open_store (path);
  g_assert_cmpint (pooler_store_get_schema_version (store), ==, latest);

  db = test_open_raw (path);
  g_assert_cmpint (query_int (db, "PRAGMA user_version"), ==, latest);
  check_seeded (store, db, from);

  /* What the newer migrations brought works on the migrated file. */
  g_assert_true (column_exists (db, "requests", "state"));
  for (guint i = 0; i < 5; i++)
    {
      const char *tables[] = { "request_attempts", "quota_windows", "affinities",
                               "audit_events", "meta" };
      g_assert_true (table_exists (db, tables[i]));
    }

  version = config_version (store);
  fresh = create_pool_ok (store, "fresh");
  g_assert_cmpint (config_version (store), ==, version + 1);

  /* Version 3: operator tokens, which bump config_version like keys. */
  g_assert_true (table_exists (db, "mcp_tokens"));
  {
    g_autoptr(PoolerMcpTokenRecord) token = pooler_mcp_token_record_new ();
    g_autoptr(PoolerMcpTokenRecord) found = NULL;

    token->prefix = g_strdup ("mcp-cxp-0123456789ab");
    token->secret_sha256 = g_strdup ("00");
    g_assert_true (pooler_store_insert_mcp_token (store, token, &error));
    g_assert_no_error (error);
    g_assert_cmpint (config_version (store), ==, version + 2);
    found = pooler_store_find_mcp_token (store, token->prefix, &error);
    g_assert_no_error (error);
    g_assert_false (found->revoked);
    /* The audit log and the filtered request log read the old rows. */
    {
      g_autoptr(GPtrArray) events = pooler_store_list_audit_events (store, 0, 0, &error);
      PoolerRequestQuery query = { .pool_slug = "legacy" };
      g_autoptr(GPtrArray) legacy = pooler_store_query_requests (store, &query, &error);

      g_assert_no_error (error);
      g_assert_cmpuint (events->len, ==, from >= 2 ? 1 : 0);
      g_assert_cmpuint (legacy->len, ==, from >= 1 ? 1 : 0);
    }
  }

  g_assert_true (pooler_store_add_audit_event (store, "test", "migrated", NULL, NULL, &error));
  g_assert_no_error (error);

  if (from >= 1)
    {
      exec_ok (db,
               "INSERT INTO quota_windows (account_id, window_kind, window_minutes,"
               " used_percent, source, observed_at)"
               " VALUES ('acct-legacy', 'primary', 300, 12.5, 'headers', 1);"
               "INSERT INTO affinities (key_sha256, kind, account_id, expires_at)"
               " VALUES ('ab', 'conversation', 'acct-legacy', 9);");
      /* And they cascade from the accounts made before them. */
      g_assert_true (pooler_store_remove_account (store, "acct-legacy", &error));
      g_assert_no_error (error);
      g_assert_cmpint (query_int (db, "SELECT COUNT (*) FROM quota_windows"), ==, 0);
      g_assert_cmpint (query_int (db, "SELECT COUNT (*) FROM affinities"), ==, 0);
    }

  sqlite3_close_v2 (db);

  writer = open_writer (path);
  record = make_request ("req_new", 9000, 200);
  pooler_request_record_add_attempt (record, "acct-x");
  pooler_store_writer_push_request (writer, record);
  pooler_store_writer_flush (writer);

  requests = pooler_store_list_requests (store, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (requests->len, ==, from >= 1 ? 2 : 1);
  g_assert_cmpstr (((PoolerRequestRecord *) requests->pdata[0])->id, ==, "req_new");
  g_assert_cmpuint (((PoolerRequestRecord *) requests->pdata[0])->attempts->len, ==, 1);

  g_assert_true (pooler_store_count_requests (store, 0, &total, &failed, &error));
  g_assert_no_error (error);
  g_assert_cmpint (total, ==, from >= 1 ? 2 : 1);
  g_assert_cmpint (failed, ==, from >= 1 ? 1 : 0);
}

static void
test_migrate_step_by_step (void)
{
  g_autofree char *path = test_db_path ("steps.db");
  g_autoptr(GError) error = NULL;
  int latest = pooler_store_schema_version_latest ();
  sqlite3 *db = test_open_raw (path);

  g_assert_cmpint (latest, >=, 2);

  g_assert_true (pooler_store_migrate_to (db, 1, &error));
  g_assert_no_error (error);
  g_assert_cmpint (query_int (db, "PRAGMA user_version"), ==, 1);
  g_assert_true (table_exists (db, "requests"));
  g_assert_false (column_exists (db, "requests", "state"));
  g_assert_false (table_exists (db, "meta"));

  /* Asking for an older version than the file has is a no-op. */
  g_assert_true (pooler_store_migrate_to (db, 0, &error));
  g_assert_no_error (error);
  g_assert_cmpint (query_int (db, "PRAGMA user_version"), ==, 1);

  g_assert_true (pooler_store_migrate_to (db, latest, &error));
  g_assert_no_error (error);
  g_assert_cmpint (query_int (db, "PRAGMA user_version"), ==, latest);
  g_assert_true (column_exists (db, "requests", "state"));
  g_assert_cmpint (query_int (db, "SELECT value FROM meta WHERE key = 'config_version'"), ==, 0);

  /* Running it again changes nothing and does not fail. */
  g_assert_true (pooler_store_migrate_to (db, latest, &error));
  g_assert_no_error (error);

  g_assert_false (pooler_store_migrate_to (db, latest + 1, &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);

  sqlite3_close_v2 (db);
}

/* A migration that fails leaves the file at the previous version, whole:
 * each step is one transaction. */
static void
test_migrate_atomic (void)
{
  g_autofree char *path = test_db_path ("atomic.db");
  g_autoptr(GError) error = NULL;
  PoolerStore *store;
  sqlite3 *db = test_open_raw (path);

  g_assert_true (pooler_store_migrate_to (db, 1, &error));
  g_assert_no_error (error);
  seed_version (db, 1);
  /* Migration 2 creates this table; make it collide half-way through. */
  exec_ok (db, "CREATE TABLE audit_events (x INTEGER)");
  sqlite3_close_v2 (db);

  store = pooler_store_open (path, &error);
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_DATABASE);
  g_assert_null (store);
  g_assert_nonnull (strstr (error->message, "audit_events"));

  db = test_open_raw (path);
  g_assert_cmpint (query_int (db, "PRAGMA user_version"), ==, 1);
  /* The ALTER and the tables that came before the collision rolled back. */
  g_assert_false (column_exists (db, "requests", "state"));
  g_assert_false (table_exists (db, "request_attempts"));
  g_assert_false (table_exists (db, "meta"));
  g_assert_cmpint (query_int (db, "SELECT COUNT (*) FROM requests"), ==, 1);
  sqlite3_close_v2 (db);
}

static GBytes *
read_file_bytes (const char *path)
{
  g_autoptr(GError) error = NULL;
  char *contents = NULL;
  gsize length = 0;

  g_file_get_contents (path, &contents, &length, &error);
  g_assert_no_error (error);
  return g_bytes_new_take (contents, length);
}

static void
test_newer_refused (void)
{
  g_autofree char *path = test_db_path ("newer.db");
  g_autofree char *set_version = NULL;
  g_autoptr(GError) error = NULL;
  PoolerStore *store;
  PoolerStoreWriter *writer;
  int newer = pooler_store_schema_version_latest () + 1;
  sqlite3 *db;

  /* A file a newer build migrated, WAL and all. */
  db = test_open_raw (path);
  g_assert_true (pooler_store_migrate_to (db, pooler_store_schema_version_latest (), &error));
  g_assert_no_error (error);
  set_version = g_strdup_printf ("PRAGMA user_version = %d", newer);
  exec_ok (db, set_version);
  exec_ok (db, "CREATE TABLE future (x INTEGER)");
  sqlite3_close_v2 (db);

  store = pooler_store_open (path, &error);
  g_assert_null (store);
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_DATABASE);
  g_assert_nonnull (strstr (error->message, "newer Codex Pooler"));
  g_clear_error (&error);

  writer = pooler_store_writer_new (path, &error);
  g_assert_null (writer);
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_DATABASE);
  g_clear_error (&error);

  db = test_open_raw (path);
  g_assert_false (pooler_store_migrate_to (db, 1, &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_DATABASE);
  g_assert_cmpint (query_int (db, "PRAGMA user_version"), ==, newer);
  g_assert_true (table_exists (db, "future"));
  sqlite3_close_v2 (db);
}

/* The store alone must not change a single byte of a newer file. */
static void
test_newer_untouched (void)
{
  g_autofree char *path = test_db_path ("newer-bytes.db");
  g_autofree char *set_version = NULL;
  g_autofree char *mode = NULL;
  g_autoptr(GBytes) before = NULL;
  g_autoptr(GBytes) after = NULL;
  g_autoptr(GError) error = NULL;
  PoolerStore *store;
  sqlite3 *db = NULL;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                   ==, SQLITE_OK);
  set_version = g_strdup_printf ("PRAGMA user_version = %d",
                                 pooler_store_schema_version_latest () + 1);
  exec_ok (db, "CREATE TABLE future (x INTEGER); INSERT INTO future VALUES (1);");
  exec_ok (db, set_version);
  sqlite3_close_v2 (db);
  before = read_file_bytes (path);

  store = pooler_store_open (path, &error);
  g_assert_null (store);
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_DATABASE);

  after = read_file_bytes (path);
  g_assert_true (g_bytes_equal (before, after));

  db = NULL;
  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  mode = query_text (db, "PRAGMA journal_mode");
  g_assert_cmpstr (mode, ==, "delete");
  sqlite3_close_v2 (db);
}

static void
test_pools (void)
{
  g_autofree char *path = test_db_path ("pools.db");
  g_autoptr(PoolerStore) store = test_open_store (path);
  g_autoptr(PoolerPool) beta = NULL;
  g_autoptr(PoolerPool) alpha = NULL;
  g_autoptr(PoolerPool) found = NULL;
  g_autoptr(PoolerPool) again = NULL;
  g_autoptr(PoolerPool) ghost = NULL;
  g_autoptr(GPtrArray) pools = NULL;
  g_autoptr(GError) error = NULL;
  gint64 before = g_get_real_time () / G_USEC_PER_SEC;

  beta = create_pool_ok (store, "beta");
  g_assert_cmpint (pooler_pool_get_id (beta), >, 0);
  g_assert_cmpstr (pooler_pool_get_strategy (beta), ==, POOLER_STRATEGY_DEFAULT);
  g_assert_cmpint (pooler_pool_get_created_at (beta), >=, before);

  alpha = pooler_store_create_pool (store, "alpha", POOLER_STRATEGY_QUOTA_FIRST, &error);
  g_assert_no_error (error);
  g_assert_cmpint (pooler_pool_get_id (alpha), !=, pooler_pool_get_id (beta));

  found = pooler_store_find_pool (store, "alpha", &error);
  g_assert_no_error (error);
  g_assert_cmpint (pooler_pool_get_id (found), ==, pooler_pool_get_id (alpha));
  g_assert_cmpstr (pooler_pool_get_slug (found), ==, "alpha");
  g_assert_cmpstr (pooler_pool_get_name (found), ==, "alpha");
  g_assert_cmpstr (pooler_pool_get_strategy (found), ==, POOLER_STRATEGY_QUOTA_FIRST);
  g_assert_cmpint (pooler_pool_get_created_at (found), ==, pooler_pool_get_created_at (alpha));
  g_clear_object (&found);

  pools = pooler_store_list_pools (store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (pools->len, ==, 2);
  g_assert_cmpstr (pooler_pool_get_slug (pools->pdata[0]), ==, "alpha");
  g_assert_cmpstr (pooler_pool_get_slug (pools->pdata[1]), ==, "beta");

  again = pooler_store_create_pool (store, "beta", NULL, &error);
  g_assert_null (again);
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_EXISTS);
  g_clear_error (&error);

  g_assert_null (pooler_store_create_pool (store, "no spaces", NULL, &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
  g_clear_error (&error);

  g_assert_null (pooler_store_create_pool (store, "gamma", "random", &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
  g_clear_error (&error);

  g_assert_null (pooler_store_find_pool (store, "gamma", &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
  g_clear_error (&error);

  pooler_pool_set_strategy (beta, POOLER_STRATEGY_LEAST_RECENT);
  pooler_pool_set_name (beta, "Beta team");
  g_assert_true (pooler_store_save_pool (store, beta, &error));
  g_assert_no_error (error);
  found = pooler_store_find_pool (store, "beta", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (pooler_pool_get_strategy (found), ==, POOLER_STRATEGY_LEAST_RECENT);
  g_assert_cmpstr (pooler_pool_get_name (found), ==, "Beta team");

  ghost = pooler_pool_new (9999, "ghost");
  g_assert_false (pooler_store_save_pool (store, ghost, &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
}

static void
test_accounts (void)
{
  g_autofree char *path = test_db_path ("accounts.db");
  g_autoptr(PoolerStore) store = test_open_store (path);
  g_autoptr(PoolerPool) pool_a = NULL;
  g_autoptr(PoolerPool) pool_b = NULL;
  g_autoptr(PoolerAccount) one = NULL;
  g_autoptr(PoolerAccount) one_again = NULL;
  g_autoptr(PoolerAccount) two = NULL;
  g_autoptr(PoolerAccount) clash = NULL;
  g_autoptr(PoolerAccount) nameless = NULL;
  g_autoptr(PoolerAccount) found = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_auto(GStrv) pools = NULL;
  g_autoptr(GError) error = NULL;
  gint64 before = g_get_real_time () / G_USEC_PER_SEC;
  gint64 created_at;
  sqlite3 *db;

  pool_a = create_pool_ok (store, "a");
  pool_b = create_pool_ok (store, "b");

  one = make_account ("acct-1", "cga-1", "user-1");
  pooler_account_set_label (one, "First");
  pooler_account_set_email (one, "one@example.com");
  pooler_account_set_plan (one, "plus");
  pooler_account_set_priority (one, 5);
  pooler_account_set_token_expires_at (one, 1234);
  pooler_account_set_last_used_at (one, 500);
  g_assert_cmpint (pooler_account_get_created_at (one), ==, 0);
  save_account_ok (store, one);
  created_at = pooler_account_get_created_at (one);
  g_assert_cmpint (created_at, >=, before);

  found = pooler_store_find_account (store, "acct-1", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (pooler_account_get_label (found), ==, "First");
  g_assert_cmpstr (pooler_account_get_email (found), ==, "one@example.com");
  g_assert_cmpstr (pooler_account_get_chatgpt_account_id (found), ==, "cga-1");
  g_assert_cmpstr (pooler_account_get_chatgpt_user_id (found), ==, "user-1");
  g_assert_cmpstr (pooler_account_get_plan (found), ==, "plus");
  g_assert_cmpint (pooler_account_get_status (found), ==, POOLER_ACCOUNT_ACTIVE);
  g_assert_cmpint (pooler_account_get_priority (found), ==, 5);
  g_assert_cmpint (pooler_account_get_token_expires_at (found), ==, 1234);
  g_assert_cmpint (pooler_account_get_last_used_at (found), ==, 500);
  g_assert_cmpint (pooler_account_get_created_at (found), ==, created_at);
  g_clear_object (&found);

  /* A second object with the same id updates the row in place; its own
   * created_at does not win, and last_used_at never goes backwards. */
  one_again = make_account ("acct-1", "cga-1", "user-1");
  pooler_account_set_label (one_again, "Renamed");
  pooler_account_set_plan (one_again, "pro");
  pooler_account_set_status (one_again, POOLER_ACCOUNT_REAUTH_REQUIRED);
  pooler_account_set_cooldown_until (one_again, 777);
  pooler_account_set_last_error (one_again, "refresh_failed");
  pooler_account_set_created_at (one_again, 42);
  pooler_account_set_last_used_at (one_again, 100);
  save_account_ok (store, one_again);
  g_assert_cmpint (pooler_account_get_created_at (one_again), ==, created_at);

  found = pooler_store_find_account (store, "acct-1", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (pooler_account_get_label (found), ==, "Renamed");
  g_assert_null (pooler_account_get_email (found));
  g_assert_cmpstr (pooler_account_get_plan (found), ==, "pro");
  g_assert_cmpint (pooler_account_get_status (found), ==, POOLER_ACCOUNT_REAUTH_REQUIRED);
  g_assert_cmpint (pooler_account_get_cooldown_until (found), ==, 777);
  g_assert_cmpstr (pooler_account_get_last_error (found), ==, "refresh_failed");
  g_assert_cmpint (pooler_account_get_created_at (found), ==, created_at);
  g_assert_cmpint (pooler_account_get_last_used_at (found), ==, 500);
  g_clear_object (&found);

  list = pooler_store_list_accounts (store, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, 1);
  g_clear_pointer (&list, g_ptr_array_unref);

  /* No user id: matched with IS, not =. */
  two = make_account ("acct-2", "cga-2", NULL);
  pooler_account_set_priority (two, -1);
  save_account_ok (store, two);

  found = pooler_store_find_account_by_identity (store, "cga-2", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (pooler_account_get_id (found), ==, "acct-2");
  g_clear_object (&found);

  found = pooler_store_find_account_by_identity (store, "cga-1", "user-1", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (pooler_account_get_id (found), ==, "acct-1");
  g_clear_object (&found);

  g_assert_null (pooler_store_find_account_by_identity (store, "cga-1", NULL, &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_null (pooler_store_find_account_by_identity (store, "cga-2", "user-9", &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
  g_clear_error (&error);

  clash = make_account ("acct-3", "cga-1", "user-1");
  g_assert_false (pooler_store_save_account (store, clash, &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_EXISTS);
  g_clear_error (&error);

  nameless = pooler_account_new ("acct-4");
  g_assert_false (pooler_store_save_account (store, nameless, &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
  g_clear_error (&error);

  /* Membership */
  g_assert_true (pooler_store_add_pool_account (store, pooler_pool_get_id (pool_a), "acct-1", &error));
  g_assert_no_error (error);
  g_assert_true (pooler_store_add_pool_account (store, pooler_pool_get_id (pool_b), "acct-1", &error));
  g_assert_no_error (error);
  g_assert_true (pooler_store_add_pool_account (store, pooler_pool_get_id (pool_b), "acct-2", &error));
  g_assert_no_error (error);
  /* Twice is fine. */
  g_assert_true (pooler_store_add_pool_account (store, pooler_pool_get_id (pool_b), "acct-2", &error));
  g_assert_no_error (error);

  g_assert_false (pooler_store_add_pool_account (store, 9999, "acct-1", &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_false (pooler_store_add_pool_account (store, pooler_pool_get_id (pool_a), "nobody", &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
  g_clear_error (&error);

  list = pooler_store_list_accounts (store, "a", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, 1);
  g_assert_cmpstr (pooler_account_get_id (list->pdata[0]), ==, "acct-1");
  g_clear_pointer (&list, g_ptr_array_unref);

  /* Ordered by priority first. */
  list = pooler_store_list_accounts (store, "b", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, 2);
  g_assert_cmpstr (pooler_account_get_id (list->pdata[0]), ==, "acct-2");
  g_assert_cmpstr (pooler_account_get_id (list->pdata[1]), ==, "acct-1");
  g_clear_pointer (&list, g_ptr_array_unref);

  g_assert_null (pooler_store_list_accounts (store, "nope", &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
  g_clear_error (&error);

  pools = pooler_store_list_account_pools (store, "acct-1", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (pools), ==, 2);
  g_assert_cmpstr (pools[0], ==, "a");
  g_assert_cmpstr (pools[1], ==, "b");
  g_clear_pointer (&pools, g_strfreev);

  g_assert_null (pooler_store_list_account_pools (store, "nobody", &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* Removing cascades to membership. */
  g_assert_true (pooler_store_remove_account (store, "acct-1", &error));
  g_assert_no_error (error);
  g_assert_false (pooler_store_remove_account (store, "acct-1", &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_null (pooler_store_find_account (store, "acct-1", &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
  g_clear_error (&error);

  list = pooler_store_list_accounts (store, "a", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, 0);
  g_clear_pointer (&list, g_ptr_array_unref);

  db = test_open_raw (path);
  g_assert_cmpint (query_int (db, "SELECT COUNT (*) FROM pool_accounts WHERE account_id = 'acct-1'"), ==, 0);
  g_assert_cmpint (query_int (db, "SELECT COUNT (*) FROM pool_accounts"), ==, 1);
  sqlite3_close_v2 (db);
}

static void
test_keys (void)
{
  g_autofree char *path = test_db_path ("keys.db");
  g_autoptr(PoolerStore) store = test_open_store (path);
  g_autoptr(PoolerPool) main_pool = NULL;
  g_autoptr(PoolerPool) other = NULL;
  g_autoptr(PoolerKeyRecord) first = NULL;
  g_autoptr(PoolerKeyRecord) second = NULL;
  g_autoptr(PoolerKeyRecord) empty = NULL;
  g_autoptr(PoolerKeyRecord) orphan = NULL;
  g_autoptr(PoolerKeyRecord) found = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *json = NULL;
  g_autofree char *null_json = NULL;
  const char *models[] = { "gpt-5", "gpt-5-codex", NULL };
  sqlite3 *db;

  main_pool = create_pool_ok (store, "main");
  other = create_pool_ok (store, "other");

  first = make_key ("sk-cxp-000000000002", pooler_pool_get_id (main_pool), 2000);
  first->name = g_strdup ("laptop");
  first->expires_at = 99999;
  first->allowed_models = g_strdupv ((char **) models);
  g_assert_true (pooler_store_insert_key (store, first, &error));
  g_assert_no_error (error);

  /* Inserted second but created first: lists go by created_at. */
  second = make_key ("sk-cxp-000000000001", pooler_pool_get_id (other), 1000);
  g_assert_true (pooler_store_insert_key (store, second, &error));
  g_assert_no_error (error);

  empty = make_key ("sk-cxp-000000000003", pooler_pool_get_id (other), 3000);
  empty->allowed_models = g_new0 (char *, 1);
  g_assert_true (pooler_store_insert_key (store, empty, &error));
  g_assert_no_error (error);

  found = pooler_store_find_key (store, "sk-cxp-000000000002", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (found->prefix, ==, first->prefix);
  g_assert_cmpstr (found->secret_sha256, ==, first->secret_sha256);
  g_assert_cmpint (found->pool_id, ==, pooler_pool_get_id (main_pool));
  g_assert_cmpstr (found->pool_slug, ==, "main");
  g_assert_cmpstr (found->name, ==, "laptop");
  g_assert_false (found->revoked);
  g_assert_cmpint (found->created_at, ==, 2000);
  g_assert_cmpint (found->expires_at, ==, 99999);
  g_assert_cmpint (found->last_used_at, ==, 0);
  g_assert_nonnull (found->allowed_models);
  g_assert_cmpstrv (found->allowed_models, models);
  g_assert_true (pooler_key_record_allows_model (found, "gpt-5-codex"));
  g_assert_false (pooler_key_record_allows_model (found, "o3"));
  g_clear_pointer (&found, pooler_key_record_free);

  found = pooler_store_find_key (store, "sk-cxp-000000000001", &error);
  g_assert_no_error (error);
  g_assert_null (found->allowed_models);
  g_assert_cmpstr (found->pool_slug, ==, "other");
  g_clear_pointer (&found, pooler_key_record_free);

  found = pooler_store_find_key (store, "sk-cxp-000000000003", &error);
  g_assert_no_error (error);
  g_assert_nonnull (found->allowed_models);
  g_assert_null (found->allowed_models[0]);
  g_clear_pointer (&found, pooler_key_record_free);

  /* Stored as a JSON array, or NULL. */
  db = test_open_raw (path);
  json = query_text (db, "SELECT allowed_models FROM api_keys WHERE prefix = 'sk-cxp-000000000002'");
  g_assert_cmpstr (json, ==, "[\"gpt-5\",\"gpt-5-codex\"]");
  null_json = query_text (db, "SELECT allowed_models FROM api_keys WHERE prefix = 'sk-cxp-000000000001'");
  g_assert_null (null_json);

  list = pooler_store_list_keys (store, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, 3);
  g_assert_cmpstr (((PoolerKeyRecord *) list->pdata[0])->prefix, ==, "sk-cxp-000000000001");
  g_assert_cmpstr (((PoolerKeyRecord *) list->pdata[1])->prefix, ==, "sk-cxp-000000000002");
  g_assert_cmpstr (((PoolerKeyRecord *) list->pdata[2])->prefix, ==, "sk-cxp-000000000003");
  g_assert_cmpstr (((PoolerKeyRecord *) list->pdata[1])->pool_slug, ==, "main");
  g_clear_pointer (&list, g_ptr_array_unref);

  list = pooler_store_list_keys (store, "other", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, 2);
  g_assert_cmpstr (((PoolerKeyRecord *) list->pdata[0])->prefix, ==, "sk-cxp-000000000001");
  g_assert_cmpstr (((PoolerKeyRecord *) list->pdata[0])->pool_slug, ==, "other");
  g_clear_pointer (&list, g_ptr_array_unref);

  g_assert_null (pooler_store_list_keys (store, "nope", &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
  g_clear_error (&error);

  g_assert_true (pooler_store_revoke_key (store, "sk-cxp-000000000002", &error));
  g_assert_no_error (error);
  found = pooler_store_find_key (store, "sk-cxp-000000000002", &error);
  g_assert_no_error (error);
  g_assert_true (found->revoked);
  g_clear_pointer (&found, pooler_key_record_free);
  g_assert_cmpint (query_int (db, "SELECT status = 'revoked' FROM api_keys"
                                  " WHERE prefix = 'sk-cxp-000000000002'"), ==, 1);

  g_assert_false (pooler_store_revoke_key (store, "sk-cxp-ffffffffffff", &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
  g_clear_error (&error);

  g_assert_null (pooler_store_find_key (store, "sk-cxp-ffffffffffff", &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
  g_clear_error (&error);

  g_assert_false (pooler_store_insert_key (store, first, &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_EXISTS);
  g_clear_error (&error);

  orphan = make_key ("sk-cxp-000000000009", 9999, 0);
  g_assert_false (pooler_store_insert_key (store, orphan, &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* A mangled list refuses the key instead of allowing every model. */
  exec_ok (db, "UPDATE api_keys SET allowed_models = '{\"x\":1}' WHERE prefix = 'sk-cxp-000000000001'");
  g_assert_null (pooler_store_find_key (store, "sk-cxp-000000000001", &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_DATABASE);
  g_clear_error (&error);

  sqlite3_close_v2 (db);
}

static void
test_config_version (void)
{
  g_autofree char *path = test_db_path ("config.db");
  g_autoptr(PoolerStore) store = test_open_store (path);
  g_autoptr(PoolerStoreWriter) writer = NULL;
  g_autoptr(PoolerPool) pool = NULL;
  g_autoptr(PoolerAccount) account = NULL;
  g_autoptr(PoolerKeyRecord) key = NULL;
  g_autoptr(PoolerRequestRecord) record = NULL;
  g_autoptr(GError) error = NULL;
  gint64 version;
  sqlite3 *db;

  version = config_version (store);
  g_assert_cmpint (version, ==, 0);

  pool = create_pool_ok (store, "p");
  g_assert_cmpint (config_version (store), >, version);
  version = config_version (store);

  pooler_pool_set_strategy (pool, POOLER_STRATEGY_FILL_FIRST);
  g_assert_true (pooler_store_save_pool (store, pool, NULL));
  g_assert_cmpint (config_version (store), >, version);
  version = config_version (store);

  account = make_account ("acct", "cga", "user");
  save_account_ok (store, account);
  g_assert_cmpint (config_version (store), >, version);
  version = config_version (store);

  pooler_account_set_status (account, POOLER_ACCOUNT_PAUSED);
  save_account_ok (store, account);
  g_assert_cmpint (config_version (store), >, version);
  version = config_version (store);

  g_assert_true (pooler_store_add_pool_account (store, pooler_pool_get_id (pool), "acct", NULL));
  g_assert_cmpint (config_version (store), >, version);
  version = config_version (store);

  key = make_key ("sk-cxp-0000000000aa", pooler_pool_get_id (pool), 0);
  g_assert_true (pooler_store_insert_key (store, key, NULL));
  g_assert_cmpint (config_version (store), >, version);
  version = config_version (store);

  /* Per-request writes are not configuration changes. */
  writer = open_writer (path);
  record = make_request ("req_cv", 1, 200);
  pooler_store_writer_push_request (writer, record);
  pooler_store_writer_touch_key (writer, "sk-cxp-0000000000aa", 12345);
  pooler_store_writer_touch_account (writer, "acct", 12345);
  pooler_store_writer_flush (writer);
  g_assert_cmpint (config_version (store), ==, version);
  g_clear_pointer (&key, pooler_key_record_free);
  key = pooler_store_find_key (store, "sk-cxp-0000000000aa", &error);
  g_assert_no_error (error);
  g_assert_cmpint (key->last_used_at, ==, 12345);

  g_assert_true (pooler_store_add_audit_event (store, "cli", "noop", NULL, NULL, NULL));
  g_assert_cmpint (config_version (store), ==, version);

  g_assert_true (pooler_store_revoke_key (store, "sk-cxp-0000000000aa", NULL));
  g_assert_cmpint (config_version (store), >, version);
  version = config_version (store);

  /* Changes from another process count too: the triggers live in the file. */
  db = test_open_raw (path);
  exec_ok (db, "UPDATE pools SET name = 'renamed'");
  sqlite3_close_v2 (db);
  g_assert_cmpint (config_version (store), >, version);
  version = config_version (store);

  g_assert_true (pooler_store_remove_account (store, "acct", NULL));
  g_assert_cmpint (config_version (store), >, version);
}

static void
test_audit (void)
{
  g_autofree char *path = test_db_path ("audit.db");
  g_autoptr(PoolerStore) store = test_open_store (path);
  g_autoptr(GError) error = NULL;
  g_autofree char *actor = NULL;
  g_autofree char *action = NULL;
  g_autofree char *target = NULL;
  g_autofree char *detail = NULL;
  gint64 before = g_get_real_time () / G_USEC_PER_SEC;
  gint64 after;
  gint64 at;
  sqlite3 *db;

  g_assert_true (pooler_store_add_audit_event (store, "cli", "key.create", "sk-cxp-0123456789ab",
                                               "pool=main", &error));
  g_assert_no_error (error);
  g_assert_true (pooler_store_add_audit_event (store, "gui", "pool.delete", NULL, NULL, &error));
  g_assert_no_error (error);
  after = g_get_real_time () / G_USEC_PER_SEC;

  db = test_open_raw (path);
  g_assert_cmpint (query_int (db, "SELECT COUNT (*) FROM audit_events"), ==, 2);
  actor = query_text (db, "SELECT actor FROM audit_events ORDER BY id LIMIT 1");
  action = query_text (db, "SELECT action FROM audit_events ORDER BY id LIMIT 1");
  target = query_text (db, "SELECT target FROM audit_events ORDER BY id LIMIT 1");
  detail = query_text (db, "SELECT detail FROM audit_events ORDER BY id LIMIT 1");
  at = query_int (db, "SELECT at FROM audit_events ORDER BY id LIMIT 1");
  g_assert_cmpstr (actor, ==, "cli");
  g_assert_cmpstr (action, ==, "key.create");
  g_assert_cmpstr (target, ==, "sk-cxp-0123456789ab");
  g_assert_cmpstr (detail, ==, "pool=main");
  g_assert_cmpint (at, >=, before);
  g_assert_cmpint (at, <=, after);
  g_assert_cmpint (query_int (db, "SELECT target IS NULL AND detail IS NULL FROM audit_events"
                                  " ORDER BY id DESC LIMIT 1"), ==, 1);
  sqlite3_close_v2 (db);
}

static void
test_mark_interrupted (void)
{
  g_autofree char *path = test_db_path ("interrupted.db");
  g_autoptr(PoolerStore) store = test_open_store (path);
  g_autoptr(PoolerStoreWriter) writer = open_writer (path);
  g_autoptr(GPtrArray) requests = NULL;
  g_autoptr(GError) error = NULL;
  gint64 total = -1, failed = -1;

  {
    g_autoptr(PoolerRequestRecord) a = make_request ("req_a", 1000, 0);
    g_autoptr(PoolerRequestRecord) b = make_request ("req_b", 2000, 0);
    g_autoptr(PoolerRequestRecord) c = make_request ("req_c", 3000, 200);

    b->error_code = g_strdup ("upstream_timeout");
    c->state = POOLER_REQUEST_COMPLETED;
    pooler_store_writer_push_request (writer, a);
    pooler_store_writer_push_request (writer, b);
    pooler_store_writer_push_request (writer, c);
    pooler_store_writer_flush (writer);
  }

  g_assert_true (pooler_store_count_requests (store, 0, &total, &failed, &error));
  g_assert_no_error (error);
  g_assert_cmpint (total, ==, 3);
  g_assert_cmpint (failed, ==, 0);

  g_assert_cmpint (pooler_store_mark_interrupted (store, &error), ==, 2);
  g_assert_no_error (error);
  g_assert_cmpint (pooler_store_mark_interrupted (store, &error), ==, 0);
  g_assert_no_error (error);

  requests = pooler_store_list_requests (store, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (requests->len, ==, 3);
  /* Newest first. */
  g_assert_cmpstr (((PoolerRequestRecord *) requests->pdata[0])->id, ==, "req_c");
  g_assert_cmpint (((PoolerRequestRecord *) requests->pdata[0])->state, ==, POOLER_REQUEST_COMPLETED);
  g_assert_null (((PoolerRequestRecord *) requests->pdata[0])->error_code);
  g_assert_cmpstr (((PoolerRequestRecord *) requests->pdata[1])->id, ==, "req_b");
  g_assert_cmpint (((PoolerRequestRecord *) requests->pdata[1])->state, ==, POOLER_REQUEST_INTERRUPTED);
  g_assert_cmpstr (((PoolerRequestRecord *) requests->pdata[1])->error_code, ==, "upstream_timeout");
  g_assert_cmpstr (((PoolerRequestRecord *) requests->pdata[2])->id, ==, "req_a");
  g_assert_cmpint (((PoolerRequestRecord *) requests->pdata[2])->state, ==, POOLER_REQUEST_INTERRUPTED);
  g_assert_cmpstr (((PoolerRequestRecord *) requests->pdata[2])->error_code, ==, "interrupted");

  /* Interrupted rows count as failed. */
  g_assert_true (pooler_store_count_requests (store, 0, &total, &failed, &error));
  g_assert_no_error (error);
  g_assert_cmpint (total, ==, 3);
  g_assert_cmpint (failed, ==, 2);
}

static void
test_count_requests (void)
{
  g_autofree char *path = test_db_path ("count.db");
  g_autoptr(PoolerStore) store = test_open_store (path);
  g_autoptr(PoolerStoreWriter) writer = open_writer (path);
  g_autoptr(GPtrArray) requests = NULL;
  g_autoptr(GError) error = NULL;
  const int statuses[] = { 200, 401, 429, 200, 502, 399, 400, 200 };
  gint64 total = -1, failed = -1;

  for (guint i = 0; i < G_N_ELEMENTS (statuses); i++)
    {
      g_autofree char *id = g_strdup_printf ("req_%02u", i);
      g_autoptr(PoolerRequestRecord) record = make_request (id, 1000 * (i + 1), statuses[i]);

      record->state = POOLER_REQUEST_COMPLETED;
      pooler_store_writer_push_request (writer, record);
    }
  pooler_store_writer_flush (writer);

  g_assert_true (pooler_store_count_requests (store, 0, &total, &failed, &error));
  g_assert_no_error (error);
  g_assert_cmpint (total, ==, 8);
  g_assert_cmpint (failed, ==, 4);

  /* since_ms is inclusive: rows 4..7 (started 5000..8000). */
  g_assert_true (pooler_store_count_requests (store, 5000, &total, &failed, &error));
  g_assert_no_error (error);
  g_assert_cmpint (total, ==, 4);
  g_assert_cmpint (failed, ==, 2);

  g_assert_true (pooler_store_count_requests (store, 9000, &total, &failed, &error));
  g_assert_no_error (error);
  g_assert_cmpint (total, ==, 0);
  g_assert_cmpint (failed, ==, 0);

  requests = pooler_store_list_requests (store, 3, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (requests->len, ==, 3);
  g_assert_cmpstr (((PoolerRequestRecord *) requests->pdata[0])->id, ==, "req_07");
  g_assert_cmpstr (((PoolerRequestRecord *) requests->pdata[2])->id, ==, "req_05");
}

static void
test_quota_windows (void)
{
  g_autofree char *path = test_db_path ("quota.db");
  g_autoptr(PoolerStore) store = test_open_store (path);
  g_autoptr(PoolerAccount) account = make_account ("acct-q", "cga-q", "user-q");
  g_autoptr(PoolerAccount) other = make_account ("acct-o", "cga-o", "user-o");
  g_autoptr(GPtrArray) windows = NULL;
  g_autoptr(GError) error = NULL;
  sqlite3 *db;
  const PoolerQuotaWindow *window;

  save_account_ok (store, account);
  save_account_ok (store, other);

  /* Nothing yet: an empty list, not an error. */
  windows = pooler_store_list_quota_windows (store, "acct-q", &error);
  g_assert_no_error (error);
  g_assert_nonnull (windows);
  g_assert_cmpuint (windows->len, ==, 0);
  g_clear_pointer (&windows, g_ptr_array_unref);

  /* Inserted out of order, with another account's row in between. */
  db = test_open_raw (path);
  exec_ok (db,
           "INSERT INTO quota_windows (account_id, limit_id, window_kind, window_minutes,"
           " used_percent, reset_at, source, observed_at) VALUES"
           " ('acct-q', 'codex_bengalfox', '5h', 300, 80, 1795491000, 'headers', 1795488100),"
           " ('acct-q', 'codex', 'weekly', 10080, 3, 1795574236, 'usage_api', 1795488000),"
           " ('acct-o', 'codex', '5h', 300, 99, 0, 'headers', 1795488000),"
           " ('acct-q', 'codex', '5h', 300, 12.5, 1795491436, 'headers', 1795488050)");
  sqlite3_close_v2 (db);

  windows = pooler_store_list_quota_windows (store, "acct-q", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (windows->len, ==, 3);

  window = g_ptr_array_index (windows, 0);
  g_assert_cmpstr (window->limit_id, ==, "codex");
  g_assert_cmpint (window->window_minutes, ==, 300);
  g_assert_cmpfloat (window->used_percent, ==, 12.5);
  g_assert_cmpint (window->reset_at, ==, 1795491436);
  g_assert_cmpint (window->observed_at, ==, 1795488050);
  g_assert_cmpint (window->source, ==, POOLER_QUOTA_SOURCE_STORED);
  g_assert_null (window->limit_name);

  window = g_ptr_array_index (windows, 1);
  g_assert_cmpstr (window->limit_id, ==, "codex");
  g_assert_cmpint (window->window_minutes, ==, 10080);
  g_assert_cmpfloat (window->used_percent, ==, 3);
  g_assert_cmpint (window->source, ==, POOLER_QUOTA_SOURCE_STORED);

  window = g_ptr_array_index (windows, 2);
  g_assert_cmpstr (window->limit_id, ==, "codex_bengalfox");
  g_assert_cmpint (window->window_minutes, ==, 300);
  g_assert_cmpfloat (window->used_percent, ==, 80);
  g_assert_cmpint (window->observed_at, ==, 1795488100);
  g_clear_pointer (&windows, g_ptr_array_unref);

  windows = pooler_store_list_quota_windows (store, "acct-o", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (windows->len, ==, 1);
  g_clear_pointer (&windows, g_ptr_array_unref);

  /* Removing the account takes its evidence along. */
  g_assert_true (pooler_store_remove_account (store, "acct-q", &error));
  g_assert_no_error (error);
  windows = pooler_store_list_quota_windows (store, "acct-q", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (windows->len, ==, 0);
}

static void
test_mcp_tokens (void)
{
  g_autofree char *path = test_db_path ("mcp-tokens.db");
  g_autoptr(PoolerStore) store = test_open_store (path);
  g_autoptr(PoolerMcpTokenRecord) token = pooler_mcp_token_record_new ();
  g_autoptr(PoolerMcpTokenRecord) found = NULL;
  g_autoptr(GPtrArray) tokens = NULL;
  g_autoptr(GError) error = NULL;
  gint64 version;

  token->prefix = g_strdup ("mcp-cxp-aaaaaaaaaaaa");
  token->secret_sha256 = g_strdup ("abcd");
  token->name = g_strdup ("ops");
  g_assert_true (pooler_store_insert_mcp_token (store, token, &error));
  g_assert_no_error (error);
  g_assert_false (pooler_store_insert_mcp_token (store, token, &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_EXISTS);
  g_clear_error (&error);

  /* Touching is not a configuration change; revoking is. */
  version = config_version (store);
  g_assert_true (pooler_store_touch_mcp_token (store, token->prefix, 1234, &error));
  g_assert_no_error (error);
  g_assert_cmpint (config_version (store), ==, version);
  g_assert_true (pooler_store_revoke_mcp_token (store, token->prefix, &error));
  g_assert_no_error (error);
  g_assert_cmpint (config_version (store), ==, version + 1);
  g_assert_false (pooler_store_revoke_mcp_token (store, "mcp-cxp-bbbbbbbbbbbb", &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
  g_clear_error (&error);

  found = pooler_store_find_mcp_token (store, token->prefix, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (found->name, ==, "ops");
  g_assert_cmpstr (found->secret_sha256, ==, "abcd");
  g_assert_true (found->revoked);
  g_assert_cmpint (found->last_used_at, ==, 1234);
  g_assert_cmpint (found->created_at, >, 0);
  g_assert_null (pooler_store_find_mcp_token (store, "mcp-cxp-bbbbbbbbbbbb", &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
  g_clear_error (&error);

  tokens = pooler_store_list_mcp_tokens (store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (tokens->len, ==, 1);
}

static void
test_query_requests (void)
{
  g_autofree char *path = test_db_path ("query-requests.db");
  g_autoptr(PoolerStore) store = test_open_store (path);
  g_autoptr(PoolerStoreWriter) writer = open_writer (path);
  g_autoptr(GPtrArray) all = NULL;
  g_autoptr(GError) error = NULL;
  PoolerRequestQuery query = { 0 };
  PoolerRequestRecord *last;

  for (guint i = 0; i < 6; i++)
    {
      g_autofree char *id = g_strdup_printf ("req_%u", i);
      g_autoptr(PoolerRequestRecord) record = make_request (id, 1000 + (i / 2) * 10, i == 4 ? 502 : 200);

      record->pool_slug = g_strdup (i % 2 ? "a" : "b");
      pooler_request_record_add_attempt (record, i == 1 ? "acct-tried" : "acct-x");
      pooler_store_writer_push_request (writer, record);
    }
  pooler_store_writer_flush (writer);

  all = pooler_store_query_requests (store, &query, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (all->len, ==, 6);
  g_assert_cmpstr (((PoolerRequestRecord *) all->pdata[0])->id, ==, "req_5");
  g_assert_cmpstr (((PoolerRequestRecord *) all->pdata[1])->id, ==, "req_4");

  /* Pages of two, by (started_at_ms, id), ties included. */
  query.limit = 2;
  for (guint page = 0; page < 3; page++)
    {
      g_autoptr(GPtrArray) rows = pooler_store_query_requests (store, &query, &error);

      g_assert_no_error (error);
      g_assert_cmpuint (rows->len, ==, 2);
      for (guint i = 0; i < 2; i++)
        g_assert_cmpstr (((PoolerRequestRecord *) rows->pdata[i])->id, ==,
                         ((PoolerRequestRecord *) all->pdata[page * 2 + i])->id);
      last = g_ptr_array_index (all, page * 2 + 1);
      query.before_id = last->id;
      query.before_started_at_ms = last->started_at_ms;
    }

  /* Filters. */
  {
    PoolerRequestQuery by_pool = { .pool_slug = "a" };
    PoolerRequestQuery by_status = { .status = 502 };
    PoolerRequestQuery by_account = { .account_id = "acct-tried" };
    PoolerRequestQuery by_time = { .since_ms = 1020 };
    g_autoptr(GPtrArray) a = pooler_store_query_requests (store, &by_pool, &error);
    g_autoptr(GPtrArray) failed = pooler_store_query_requests (store, &by_status, &error);
    g_autoptr(GPtrArray) tried = pooler_store_query_requests (store, &by_account, &error);
    g_autoptr(GPtrArray) late = pooler_store_query_requests (store, &by_time, &error);
    g_autoptr(PoolerRequestRecord) one = pooler_store_find_request (store, "req_3", &error);

    g_assert_no_error (error);
    g_assert_cmpuint (a->len, ==, 3);
    g_assert_cmpuint (failed->len, ==, 1);
    g_assert_cmpuint (tried->len, ==, 1);
    g_assert_cmpstr (((PoolerRequestRecord *) tried->pdata[0])->id, ==, "req_1");
    g_assert_cmpuint (late->len, ==, 2);
    g_assert_cmpuint (one->attempts->len, ==, 1);
  }
  g_assert_null (pooler_store_find_request (store, "req_nope", &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
}

static void
test_list_audit_events (void)
{
  g_autofree char *path = test_db_path ("audit-list.db");
  g_autoptr(PoolerStore) store = test_open_store (path);
  g_autoptr(GPtrArray) first = NULL;
  g_autoptr(GPtrArray) second = NULL;
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *action = g_strdup_printf ("action.%u", i);

      g_assert_true (pooler_store_add_audit_event (store, "me", action, "t", NULL, &error));
      g_assert_no_error (error);
    }

  first = pooler_store_list_audit_events (store, 0, 2, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (first->len, ==, 2);
  g_assert_cmpstr (((PoolerAuditEvent *) first->pdata[0])->action, ==, "action.2");
  second = pooler_store_list_audit_events (store, ((PoolerAuditEvent *) first->pdata[1])->id, 2, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (second->len, ==, 1);
  g_assert_cmpstr (((PoolerAuditEvent *) second->pdata[0])->action, ==, "action.0");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/store/default-path", test_default_path);
  g_test_add_func ("/store/pragmas", test_pragmas);
  for (int v = 0; v < pooler_store_schema_version_latest (); v++)
    {
      g_autofree char *name = g_strdup_printf ("/store/migrations/from-%d", v);

      g_test_add_data_func (name, GINT_TO_POINTER (v), test_migrate_from);
    }
  g_test_add_func ("/store/migrations/step-by-step", test_migrate_step_by_step);
  g_test_add_func ("/store/migrations/atomic", test_migrate_atomic);
  g_test_add_func ("/store/migrations/newer-refused", test_newer_refused);
  g_test_add_func ("/store/migrations/newer-untouched", test_newer_untouched);
  g_test_add_func ("/store/pools", test_pools);
  g_test_add_func ("/store/accounts", test_accounts);
  g_test_add_func ("/store/keys", test_keys);
  g_test_add_func ("/store/config-version", test_config_version);
  g_test_add_func ("/store/audit", test_audit);
  g_test_add_func ("/store/requests/mark-interrupted", test_mark_interrupted);
  g_test_add_func ("/store/requests/count", test_count_requests);
  g_test_add_func ("/store/quota-windows", test_quota_windows);
  g_test_add_func ("/store/mcp-tokens", test_mcp_tokens);
  g_test_add_func ("/store/requests/query", test_query_requests);
  g_test_add_func ("/store/audit/list", test_list_audit_events);

  return g_test_run ();
}
