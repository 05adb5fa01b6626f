/* test-store-writer.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <stdio.h>

#include <glib/gstdio.h>

#include "pooler-error.h"
#include "pooler-store-private.h"
#include "test-util.h"
#include "pooler-store-writer.h"

#define N_THREADS          4
#define RECORDS_PER_THREAD 250

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
exec_ok (sqlite3    *db,
         const char *sql)
{
  char *message = NULL;

  if (sqlite3_exec (db, sql, NULL, NULL, &message) != SQLITE_OK)
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
  record->transport = g_strdup ("sse");
  record->status = status;
  return record;
}

static gint64
count_requests (PoolerStore *store)
{
  g_autoptr(GError) error = NULL;
  gint64 total = -1;

  g_assert_true (pooler_store_count_requests (store, 0, &total, NULL, &error));
  g_assert_no_error (error);
  return total;
}

typedef struct
{
  PoolerStoreWriter *writer;
  const char        *path;
  guint              thread_index;
} PushData;

/* Record i of thread t: (i % 3) + 1 attempts; every fifth one failed. */
static gpointer
push_thread (gpointer user_data)
{
  PushData *data = user_data;
  g_autofree char *like = NULL;
  sqlite3 *db;

  for (guint i = 0; i < RECORDS_PER_THREAD; i++)
    {
      g_autofree char *id = g_strdup_printf ("req_t%u_%04u", data->thread_index, i);
      g_autoptr(PoolerRequestRecord) record = NULL;

      record = make_request (id, 1000 + data->thread_index * RECORDS_PER_THREAD + i,
                             i % 5 == 0 ? 502 : 200);
      record->state = POOLER_REQUEST_COMPLETED;
      record->model = g_strdup_printf ("attempts=%u", i % 3 + 1);
      for (guint a = 0; a < i % 3 + 1; a++)
        {
          PoolerAttemptRecord *attempt = pooler_request_record_add_attempt (record, "acct");

          attempt->upstream_status = a == i % 3 ? record->status : 429;
          attempt->duration_ms = a;
        }
      pooler_store_writer_push_request (data->writer, record);
    }

  /* Each thread's own flush covers its own pushes, whatever the others do. */
  pooler_store_writer_flush (data->writer);

  db = test_open_raw (data->path);
  like = g_strdup_printf ("SELECT COUNT (*) FROM requests WHERE id LIKE 'req_t%u_%%'",
                          data->thread_index);
  g_assert_cmpint (query_int (db, like), ==, RECORDS_PER_THREAD);
  sqlite3_close_v2 (db);

  return NULL;
}

static void
test_many_threads (void)
{
  g_autofree char *path = test_db_path ("threads.db");
  g_autoptr(PoolerStore) store = test_open_store (path);
  g_autoptr(PoolerStoreWriter) writer = open_writer (path);
  g_autoptr(GPtrArray) requests = NULL;
  g_autoptr(GError) error = NULL;
  PushData data[N_THREADS];
  GThread *threads[N_THREADS];
  gint64 total = -1, failed = -1;
  guint n_attempts = 0;

  for (guint t = 0; t < N_THREADS; t++)
    {
      data[t].writer = writer;
      data[t].path = path;
      data[t].thread_index = t;
      threads[t] = g_thread_new ("pusher", push_thread, &data[t]);
    }
  for (guint t = 0; t < N_THREADS; t++)
    g_thread_join (threads[t]);

  pooler_store_writer_flush (writer);
  g_assert_cmpuint (pooler_store_writer_get_committed (writer), ==, N_THREADS * RECORDS_PER_THREAD);

  g_assert_true (pooler_store_count_requests (store, 0, &total, &failed, &error));
  g_assert_no_error (error);
  g_assert_cmpint (total, ==, N_THREADS * RECORDS_PER_THREAD);
  g_assert_cmpint (failed, ==, N_THREADS * RECORDS_PER_THREAD / 5);

  requests = pooler_store_list_requests (store, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (requests->len, ==, N_THREADS * RECORDS_PER_THREAD);

  for (guint i = 0; i < requests->len; i++)
    {
      PoolerRequestRecord *record = g_ptr_array_index (requests, i);
      guint expected = 0;

      /* Newest first. */
      if (i > 0)
        g_assert_cmpint (record->started_at_ms, <,
                         ((PoolerRequestRecord *) requests->pdata[i - 1])->started_at_ms);

      g_assert_cmpint (sscanf (record->model, "attempts=%u", &expected), ==, 1);
      g_assert_cmpuint (record->attempts->len, ==, expected);
      for (guint a = 0; a < record->attempts->len; a++)
        {
          PoolerAttemptRecord *attempt = g_ptr_array_index (record->attempts, a);

          g_assert_cmpuint (attempt->attempt, ==, a + 1);
          g_assert_cmpstr (attempt->account_id, ==, "acct");
          g_assert_cmpint (attempt->duration_ms, ==, a);
          g_assert_cmpint (attempt->upstream_status, ==,
                           a + 1 == expected ? record->status : 429);
        }
      g_assert_cmpstr (record->transport, ==, "sse");
      g_assert_cmpint (record->state, ==, POOLER_REQUEST_COMPLETED);
      n_attempts += record->attempts->len;
    }
  g_assert_cmpuint (n_attempts, >, requests->len);
}

static void
test_upsert (void)
{
  g_autofree char *path = test_db_path ("upsert.db");
  g_autoptr(PoolerStore) store = test_open_store (path);
  g_autoptr(PoolerStoreWriter) writer = open_writer (path);
  g_autoptr(PoolerRequestRecord) record = NULL;
  g_autoptr(GPtrArray) requests = NULL;
  g_autoptr(GError) error = NULL;
  PoolerRequestRecord *row;
  PoolerAttemptRecord *attempt;

  record = make_request ("req_upsert", 123456, 0);
  record->pool_slug = g_strdup ("main");
  record->key_prefix = g_strdup ("sk-cxp-0123456789ab");
  record->model = g_strdup ("gpt-5-codex");
  attempt = pooler_request_record_add_attempt (record, "acct-1");
  pooler_store_writer_push_request (writer, record);

  /* Before the finish is queued, the in-flight row is what is on disk. */
  pooler_store_writer_flush (writer);
  requests = pooler_store_list_requests (store, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (requests->len, ==, 1);
  g_assert_cmpint (((PoolerRequestRecord *) requests->pdata[0])->state, ==, POOLER_REQUEST_IN_FLIGHT);
  g_assert_cmpint (((PoolerRequestRecord *) requests->pdata[0])->status, ==, 0);
  g_clear_pointer (&requests, g_ptr_array_unref);

  /* The request retried on another account and finished. */
  attempt->upstream_status = 429;
  attempt->error_code = g_strdup ("rate_limited");
  attempt->duration_ms = 30;
  attempt = pooler_request_record_add_attempt (record, "acct-2");
  attempt->upstream_status = 200;
  attempt->duration_ms = 900;
  record->state = POOLER_REQUEST_COMPLETED;
  record->account_id = g_strdup ("acct-2");
  record->status = 200;
  record->upstream_status = 200;
  record->latency_ms = 950;
  record->ttfb_ms = 120;
  record->input_tokens = 1000;
  record->output_tokens = 200;
  record->cached_tokens = 800;
  record->reasoning_tokens = 64;
  pooler_store_writer_push_request (writer, record);

  /* And both pushes inside one batch behave the same. */
  {
    g_autoptr(PoolerRequestRecord) other = make_request ("req_quick", 123457, 0);

    pooler_store_writer_push_request (writer, other);
    other->state = POOLER_REQUEST_COMPLETED;
    other->status = 401;
    other->error_code = g_strdup ("invalid_key");
    pooler_store_writer_push_request (writer, other);
  }
  pooler_store_writer_flush (writer);
  g_assert_cmpuint (pooler_store_writer_get_committed (writer), ==, 4);

  requests = pooler_store_list_requests (store, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (requests->len, ==, 2);

  row = requests->pdata[0];
  g_assert_cmpstr (row->id, ==, "req_quick");
  g_assert_cmpint (row->state, ==, POOLER_REQUEST_COMPLETED);
  g_assert_cmpint (row->status, ==, 401);
  g_assert_cmpstr (row->error_code, ==, "invalid_key");

  row = requests->pdata[1];
  g_assert_cmpstr (row->id, ==, "req_upsert");
  g_assert_cmpint (row->state, ==, POOLER_REQUEST_COMPLETED);
  g_assert_cmpint (row->started_at_ms, ==, 123456);
  g_assert_cmpstr (row->pool_slug, ==, "main");
  g_assert_cmpstr (row->key_prefix, ==, "sk-cxp-0123456789ab");
  g_assert_cmpstr (row->account_id, ==, "acct-2");
  g_assert_cmpstr (row->model, ==, "gpt-5-codex");
  g_assert_cmpstr (row->endpoint, ==, "/backend-api/codex/responses");
  g_assert_cmpstr (row->transport, ==, "sse");
  g_assert_cmpint (row->status, ==, 200);
  g_assert_cmpint (row->upstream_status, ==, 200);
  g_assert_cmpint (row->latency_ms, ==, 950);
  g_assert_cmpint (row->ttfb_ms, ==, 120);
  g_assert_cmpint (row->input_tokens, ==, 1000);
  g_assert_cmpint (row->output_tokens, ==, 200);
  g_assert_cmpint (row->cached_tokens, ==, 800);
  g_assert_cmpint (row->reasoning_tokens, ==, 64);
  g_assert_null (row->error_code);

  g_assert_cmpuint (row->attempts->len, ==, 2);
  attempt = row->attempts->pdata[0];
  g_assert_cmpuint (attempt->attempt, ==, 1);
  g_assert_cmpstr (attempt->account_id, ==, "acct-1");
  g_assert_cmpint (attempt->upstream_status, ==, 429);
  g_assert_cmpstr (attempt->error_code, ==, "rate_limited");
  g_assert_cmpint (attempt->duration_ms, ==, 30);
  attempt = row->attempts->pdata[1];
  g_assert_cmpuint (attempt->attempt, ==, 2);
  g_assert_cmpstr (attempt->account_id, ==, "acct-2");
  g_assert_null (attempt->error_code);
  g_clear_pointer (&requests, g_ptr_array_unref);

  /* The last push's attempt list replaces the stored one, even a shorter
   * one: no stale attempt survives. */
  g_ptr_array_set_size (record->attempts, 1);
  pooler_store_writer_push_request (writer, record);
  pooler_store_writer_flush (writer);
  requests = pooler_store_list_requests (store, 0, &error);
  g_assert_no_error (error);
  row = requests->pdata[1];
  g_assert_cmpstr (row->id, ==, "req_upsert");
  g_assert_cmpuint (row->attempts->len, ==, 1);
  g_assert_cmpstr (((PoolerAttemptRecord *) row->attempts->pdata[0])->account_id, ==, "acct-1");
}

static void
test_touch (void)
{
  g_autofree char *path = test_db_path ("touch.db");
  g_autoptr(PoolerStore) store = test_open_store (path);
  g_autoptr(PoolerStoreWriter) writer = open_writer (path);
  g_autoptr(PoolerPool) pool = NULL;
  g_autoptr(PoolerKeyRecord) key = pooler_key_record_new ();
  g_autoptr(PoolerKeyRecord) found = NULL;
  g_autoptr(PoolerAccount) account = pooler_account_new ("acct");
  g_autoptr(PoolerAccount) found_account = NULL;
  g_autoptr(GError) error = NULL;

  pool = pooler_store_create_pool (store, "p", NULL, &error);
  g_assert_no_error (error);
  key->prefix = g_strdup ("sk-cxp-0123456789ab");
  key->secret_sha256 = g_strnfill (64, '0');
  key->pool_id = pooler_pool_get_id (pool);
  g_assert_true (pooler_store_insert_key (store, key, &error));
  g_assert_no_error (error);
  pooler_account_set_chatgpt_account_id (account, "cga");
  g_assert_true (pooler_store_save_account (store, account, &error));
  g_assert_no_error (error);

  /* Several touches in one batch: the latest time wins, not the last. */
  pooler_store_writer_touch_key (writer, "sk-cxp-0123456789ab", 100);
  pooler_store_writer_touch_key (writer, "sk-cxp-0123456789ab", 300);
  pooler_store_writer_touch_key (writer, "sk-cxp-0123456789ab", 200);
  pooler_store_writer_touch_account (writer, "acct", 50);
  pooler_store_writer_touch_account (writer, "acct", 70);
  pooler_store_writer_touch_account (writer, "acct", 60);
  /* Unknown targets are not an error (the key may have just been removed). */
  pooler_store_writer_touch_key (writer, "sk-cxp-ffffffffffff", 100);
  pooler_store_writer_touch_account (writer, "gone", 100);
  pooler_store_writer_flush (writer);

  found = pooler_store_find_key (store, "sk-cxp-0123456789ab", &error);
  g_assert_no_error (error);
  g_assert_cmpint (found->last_used_at, ==, 300);
  g_clear_pointer (&found, pooler_key_record_free);

  found_account = pooler_store_find_account (store, "acct", &error);
  g_assert_no_error (error);
  g_assert_cmpint (pooler_account_get_last_used_at (found_account), ==, 70);
  g_clear_object (&found_account);

  /* An older touch in a later batch does not move it back. */
  pooler_store_writer_touch_key (writer, "sk-cxp-0123456789ab", 10);
  pooler_store_writer_touch_account (writer, "acct", 10);
  pooler_store_writer_flush (writer);

  found = pooler_store_find_key (store, "sk-cxp-0123456789ab", &error);
  g_assert_no_error (error);
  g_assert_cmpint (found->last_used_at, ==, 300);

  found_account = pooler_store_find_account (store, "acct", &error);
  g_assert_no_error (error);
  g_assert_cmpint (pooler_account_get_last_used_at (found_account), ==, 70);

  /* Touches are not request upserts. */
  g_assert_cmpuint (pooler_store_writer_get_committed (writer), ==, 0);
}

/* In WAL mode a reader holding a snapshot does not block the writer's
 * commits. With a rollback journal this batch would wait out the busy
 * timeout, fail, and warn (fatal in tests). */
static void
test_read_while_writing (void)
{
  g_autofree char *path = test_db_path ("wal.db");
  g_autoptr(PoolerStore) store = test_open_store (path);
  g_autoptr(PoolerStoreWriter) writer = open_writer (path);
  g_autoptr(GError) error = NULL;
  gint64 last = 0;
  sqlite3 *reader = test_open_raw (path);

  exec_ok (reader, "BEGIN");
  g_assert_cmpint (query_int (reader, "SELECT COUNT (*) FROM requests"), ==, 0);

  for (guint i = 0; i < 50; i++)
    {
      g_autofree char *id = g_strdup_printf ("req_%03u", i);
      g_autoptr(PoolerRequestRecord) record = make_request (id, i, 200);

      pooler_store_writer_push_request (writer, record);
    }
  pooler_store_writer_flush (writer);

  /* The open snapshot still sees the old state; the store sees the new. */
  g_assert_cmpint (query_int (reader, "SELECT COUNT (*) FROM requests"), ==, 0);
  g_assert_cmpint (count_requests (store), ==, 50);
  exec_ok (reader, "COMMIT");
  g_assert_cmpint (query_int (reader, "SELECT COUNT (*) FROM requests"), ==, 50);
  sqlite3_close_v2 (reader);

  /* The main thread keeps reading while the writer works. */
  for (guint i = 50; i < 2050; i++)
    {
      g_autofree char *id = g_strdup_printf ("req_%04u", i);
      g_autoptr(PoolerRequestRecord) record = make_request (id, i, 200);

      pooler_store_writer_push_request (writer, record);
      if (i % 100 == 0)
        {
          g_autoptr(GPtrArray) recent = pooler_store_list_requests (store, 10, &error);
          gint64 now = count_requests (store);

          g_assert_no_error (error);
          g_assert_cmpuint (recent->len, <=, 10);
          g_assert_cmpint (now, >=, last);
          last = now;
        }
    }
  pooler_store_writer_flush (writer);
  g_assert_cmpint (count_requests (store), ==, 2050);
}

static void
test_close (void)
{
  g_autofree char *path = test_db_path ("close.db");
  g_autoptr(PoolerStore) store = test_open_store (path);
  g_autoptr(PoolerStoreWriter) writer = open_writer (path);
  g_autoptr(PoolerRequestRecord) before = make_request ("req_before", 1, 200);
  g_autoptr(PoolerRequestRecord) after = make_request ("req_after", 2, 200);

  /* close() commits what was queued without an explicit flush. */
  pooler_store_writer_push_request (writer, before);
  pooler_store_writer_touch_account (writer, "nobody", 5);
  pooler_store_writer_close (writer);
  g_assert_cmpuint (pooler_store_writer_get_committed (writer), ==, 1);
  g_assert_cmpint (count_requests (store), ==, 1);

  g_test_expect_message ("pooler-store-writer", G_LOG_LEVEL_WARNING, "*closed*dropped*");
  pooler_store_writer_push_request (writer, after);
  g_test_assert_expected_messages ();

  g_test_expect_message ("pooler-store-writer", G_LOG_LEVEL_WARNING, "*closed*dropped*");
  pooler_store_writer_touch_key (writer, "sk-cxp-0123456789ab", 5);
  g_test_assert_expected_messages ();

  /* Both are harmless after close. */
  pooler_store_writer_flush (writer);
  pooler_store_writer_close (writer);

  g_assert_cmpint (count_requests (store), ==, 1);
  g_assert_cmpuint (pooler_store_writer_get_committed (writer), ==, 1);
}

/* Closing while another process holds the write lock: the writer gives
 * the first batch one try and drops the rest, instead of retrying batch
 * after batch (36 s each) and holding up the process's exit. */
static void
test_close_while_locked (void)
{
  g_autofree char *path = test_db_path ("close-locked.db");
  g_autoptr(PoolerStore) store = test_open_store (path);
  g_autoptr(PoolerStoreWriter) writer = open_writer (path);
  g_autoptr(GError) error = NULL;
  sqlite3 *other;

  /* Queued from this (the owner's) thread: nothing runs them before the
   * close. Three batches. */
  for (guint i = 0; i < 1200; i++)
    {
      g_autofree char *id = g_strdup_printf ("req_locked_%u", i);
      g_autoptr(PoolerRequestRecord) record = make_request (id, i, 200);

      pooler_store_writer_push_request (writer, record);
    }

  other = pooler_store_open_connection (path, &error);
  g_assert_no_error (error);
  exec_ok (other, "BEGIN IMMEDIATE");

  g_test_expect_message ("pooler-store-writer", G_LOG_LEVEL_WARNING, "*Dropped a batch of 512 writes*locked*");
  g_test_expect_message ("pooler-store-writer", G_LOG_LEVEL_WARNING, "*512 writes*stayed locked while closing*");
  g_test_expect_message ("pooler-store-writer", G_LOG_LEVEL_WARNING, "*176 writes*stayed locked while closing*");
  pooler_store_writer_close (writer);
  g_test_assert_expected_messages ();
  g_assert_cmpuint (pooler_store_writer_get_committed (writer), ==, 0);

  exec_ok (other, "ROLLBACK");
  sqlite3_close (other);
  g_assert_cmpint (count_requests (store), ==, 0);
}

/* Waits (bounded) until @writer has committed @n requests. */
static gboolean
wait_committed (PoolerStoreWriter *writer,
                guint64            n)
{
  for (guint i = 0; i < 500 && pooler_store_writer_get_committed (writer) < n; i++)
    g_usleep (10 * 1000);
  return pooler_store_writer_get_committed (writer) >= n;
}

/* Pushes @id from the creating thread: it is not committed until the
 * main context turns past the kick time, then it is. Woken at once, the
 * writer would commit 5 ms (QUIET_DELAY_US) after the push; a slow
 * machine only makes the first check hold more surely. */
static void
assert_push_waits_for_kick (PoolerStoreWriter *writer,
                            const char        *id)
{
  g_autoptr(PoolerRequestRecord) record = make_request (id, 1, 200);
  guint64 before = pooler_store_writer_get_committed (writer);

  pooler_store_writer_push_request (writer, record);
  g_usleep (25 * 1000);
  g_assert_cmpuint (pooler_store_writer_get_committed (writer), ==, before);

  g_main_context_iteration (NULL, FALSE);
  g_assert_true (wait_committed (writer, before + 1));
}

/* A push from the creating thread does not wake the writer: its main
 * context does, QUIET_DELAY_US (5 ms) later. No wake-up sits between
 * reading a request and sending it on. */
static void
test_kick_at_turn_end (void)
{
  g_autofree char *path = test_db_path ("kick.db");
  g_autoptr(PoolerStore) store = test_open_store (path);
  g_autoptr(PoolerStoreWriter) writer = open_writer (path);

  assert_push_waits_for_kick (writer, "req_kick");
  g_assert_cmpint (count_requests (store), ==, 1);
}

static gboolean
set_flag (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* A loop with nothing else to do wakes up for the kick by itself. */
static void
test_kick_wakes_idle_loop (void)
{
  g_autofree char *path = test_db_path ("kick-idle.db");
  g_autoptr(PoolerStore) store = test_open_store (path);
  g_autoptr(PoolerStoreWriter) writer = open_writer (path);
  g_autoptr(PoolerRequestRecord) record = make_request ("req_idle", 1, 200);
  gboolean expired = FALSE;
  guint guard = g_timeout_add_seconds (5, set_flag, &expired);

  pooler_store_writer_push_request (writer, record);
  /* Blocks in poll(): only the kick source's timeout ends it in time. */
  g_main_context_iteration (NULL, TRUE);
  g_assert_false (expired);
  g_assert_true (wait_committed (writer, 1));
  g_assert_cmpint (count_requests (store), ==, 1);
  g_source_remove (guard);
}

static gpointer
push_one (gpointer data)
{
  g_autoptr(PoolerRequestRecord) record = make_request ("req_other", 1, 200);

  pooler_store_writer_push_request (data, record);
  return NULL;
}

/* Work from another thread than the creator's is taken at once: no loop
 * turn of the creator's is waited for. */
static void
test_other_thread_wakes (void)
{
  g_autofree char *path = test_db_path ("other-thread.db");
  g_autoptr(PoolerStore) store = test_open_store (path);
  g_autoptr(PoolerStoreWriter) writer = open_writer (path);

  g_thread_join (g_thread_new ("pusher", push_one, writer));
  g_assert_true (wait_committed (writer, 1));
  g_assert_cmpint (count_requests (store), ==, 1);

  /* And after that, the creator's own work still waits for its turn. */
  assert_push_waits_for_kick (writer, "req_own");
}

/* Dropping the last reference closes too, committing what was queued. */
static void
test_unref_commits (void)
{
  g_autofree char *path = test_db_path ("unref.db");
  g_autoptr(PoolerStore) store = test_open_store (path);
  PoolerStoreWriter *writer = open_writer (path);

  for (guint i = 0; i < 20; i++)
    {
      g_autofree char *id = g_strdup_printf ("req_%02u", i);
      g_autoptr(PoolerRequestRecord) record = make_request (id, i, 200);

      pooler_store_writer_push_request (writer, record);
    }
  g_object_unref (writer);

  g_assert_cmpint (count_requests (store), ==, 20);
}

typedef struct
{
  PoolerStoreWriter *writer;
  gint               done;
} UnrefData;

static gpointer
unref_later (gpointer data)
{
  UnrefData *unref = data;

  /* Either side of the kick time (QUIET_DELAY_US, 5 ms after the push),
   * so some rounds close while the owner's prepare kicks the writer. */
  g_usleep (g_random_int_range (0, 8000));
  /* The last reference: close() and finalize run on this thread. */
  g_object_unref (unref->writer);
  g_atomic_int_set (&unref->done, 1);
  return NULL;
}

/* The last reference may go on another thread while the creator's
 * context keeps turning, preparing the kick source with a kick pending:
 * close() there waits for a prepare in progress and takes the writer out
 * of the source before the writer is freed. Everything queued is
 * committed each time, and nothing deadlocks. (A prepare preempted for
 * milliseconds across the free, the case the source's lock is for, is
 * too rare to meet here; ASan would name it.) */
static void
test_unref_on_other_thread (void)
{
  g_autofree char *path = test_db_path ("unref-thread.db");
  g_autoptr(PoolerStore) store = test_open_store (path);

  for (guint round = 0; round < 40; round++)
    {
      g_autofree char *id = g_strdup_printf ("req_round_%02u", round);
      g_autoptr(PoolerRequestRecord) record = make_request (id, round, 200);
      UnrefData unref = { open_writer (path), 0 };
      GThread *thread;

      pooler_store_writer_push_request (unref.writer, record);
      thread = g_thread_new ("unref", unref_later, &unref);
      while (!g_atomic_int_get (&unref.done))
        g_main_context_iteration (NULL, FALSE);
      g_thread_join (thread);
      /* The source is gone from the context: a turn touches nothing. */
      g_main_context_iteration (NULL, FALSE);
    }

  g_assert_cmpint (count_requests (store), ==, 40);
}

static void
test_refuses_unmigrated (void)
{
  g_autofree char *path = test_db_path ("empty.db");
  g_autoptr(GError) error = NULL;
  PoolerStoreWriter *writer;

  writer = pooler_store_writer_new (path, &error);
  g_assert_null (writer);
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_DATABASE);
}

static char *
query_text (sqlite3    *db,
            const char *sql)
{
  sqlite3_stmt *stmt = NULL;
  char *value;

  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  value = g_strdup ((const char *) sqlite3_column_text (stmt, 0));
  sqlite3_finalize (stmt);

  return value;
}

static void
put_window (PoolerStoreWriter *writer,
            const char        *account_id,
            const char        *limit_id,
            int                minutes,
            double             used,
            gint64             observed_at,
            PoolerQuotaSource  source)
{
  PoolerQuotaWindow window = {
    (char *) limit_id, NULL, minutes, used, observed_at + 3600, observed_at, source,
  };

  pooler_store_writer_put_quota_window (writer, account_id, &window);
}

static const PoolerQuotaWindow *
listed_window (GPtrArray  *windows,
               const char *limit_id,
               int         minutes)
{
  for (guint i = 0; i < windows->len; i++)
    {
      const PoolerQuotaWindow *window = g_ptr_array_index (windows, i);

      if (g_strcmp0 (window->limit_id, limit_id) == 0 && window->window_minutes == minutes)
        return window;
    }

  g_error ("No stored window %s/%d", limit_id, minutes);
}

static GPtrArray *
list_windows (PoolerStore *store,
              const char  *account_id)
{
  g_autoptr(GError) error = NULL;
  GPtrArray *windows = pooler_store_list_quota_windows (store, account_id, &error);

  g_assert_no_error (error);
  g_assert_nonnull (windows);
  return windows;
}

static void
test_quota_windows (void)
{
  g_autofree char *path = test_db_path ("quota.db");
  g_autoptr(PoolerStore) store = test_open_store (path);
  g_autoptr(PoolerStoreWriter) writer = open_writer (path);
  g_autoptr(PoolerAccount) account = pooler_account_new ("acct");
  g_autoptr(PoolerRequestRecord) record = make_request ("req_q", 1000, 200);
  g_autoptr(GPtrArray) windows = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *kind = NULL;
  g_autofree char *source = NULL;
  const PoolerQuotaWindow *window;
  sqlite3 *db;
  const gint64 t = 1795488000;

  pooler_account_set_chatgpt_account_id (account, "cga");
  g_assert_true (pooler_store_save_account (store, account, &error));
  g_assert_no_error (error);

  put_window (writer, "acct", "codex", 300, 12.5, t, POOLER_QUOTA_SOURCE_HEADERS);
  put_window (writer, "acct", "codex", 10080, 3, t, POOLER_QUOTA_SOURCE_USAGE_API);
  put_window (writer, "acct", "codex_bengalfox", 90, 40, t, POOLER_QUOTA_SOURCE_EVENT);
  pooler_store_writer_flush (writer);

  windows = list_windows (store, "acct");
  g_assert_cmpuint (windows->len, ==, 3);
  window = listed_window (windows, "codex", 300);
  g_assert_cmpfloat (window->used_percent, ==, 12.5);
  g_assert_cmpint (window->reset_at, ==, t + 3600);
  g_assert_cmpint (window->observed_at, ==, t);
  g_assert_cmpint (window->source, ==, POOLER_QUOTA_SOURCE_STORED);
  g_assert_cmpfloat (listed_window (windows, "codex", 10080)->used_percent, ==, 3);
  g_assert_cmpfloat (listed_window (windows, "codex_bengalfox", 90)->used_percent, ==, 40);
  g_clear_pointer (&windows, g_ptr_array_unref);

  /* The kind and the original source are written as text. */
  db = test_open_raw (path);
  kind = query_text (db, "SELECT window_kind FROM quota_windows"
                         " WHERE limit_id = 'codex' AND window_minutes = 10080");
  source = query_text (db, "SELECT source FROM quota_windows"
                           " WHERE limit_id = 'codex' AND window_minutes = 10080");
  g_assert_cmpstr (kind, ==, "weekly");
  g_assert_cmpstr (source, ==, "usage_api");
  g_assert_cmpint (query_int (db, "SELECT COUNT (*) FROM quota_windows"
                                  " WHERE window_kind = '90m' AND source = 'event'"), ==, 1);

  /* An older observation in a later batch changes nothing. */
  put_window (writer, "acct", "codex", 300, 90, t - 10, POOLER_QUOTA_SOURCE_HEADERS);
  pooler_store_writer_flush (writer);
  windows = list_windows (store, "acct");
  g_assert_cmpfloat (listed_window (windows, "codex", 300)->used_percent, ==, 12.5);
  g_assert_cmpint (listed_window (windows, "codex", 300)->observed_at, ==, t);
  g_clear_pointer (&windows, g_ptr_array_unref);

  /* Within one batch: the newer one stays whatever the queue order. */
  put_window (writer, "acct", "codex", 300, 50, t + 20, POOLER_QUOTA_SOURCE_HEADERS);
  put_window (writer, "acct", "codex", 300, 30, t + 10, POOLER_QUOTA_SOURCE_ERROR);
  /* Same time replaces. */
  put_window (writer, "acct", "codex", 10080, 4, t, POOLER_QUOTA_SOURCE_HEADERS);
  /* A window of an account that is gone is skipped, not the batch. */
  put_window (writer, "gone", "codex", 300, 1, t, POOLER_QUOTA_SOURCE_HEADERS);
  pooler_store_writer_push_request (writer, record);
  pooler_store_writer_flush (writer);

  windows = list_windows (store, "acct");
  g_assert_cmpuint (windows->len, ==, 3);
  g_assert_cmpfloat (listed_window (windows, "codex", 300)->used_percent, ==, 50);
  g_assert_cmpint (listed_window (windows, "codex", 300)->observed_at, ==, t + 20);
  g_assert_cmpfloat (listed_window (windows, "codex", 10080)->used_percent, ==, 4);
  g_clear_pointer (&windows, g_ptr_array_unref);
  g_assert_cmpint (query_int (db, "SELECT source = 'headers' FROM quota_windows"
                                  " WHERE limit_id = 'codex' AND window_minutes = 300"), ==, 1);
  g_assert_cmpint (query_int (db, "SELECT COUNT (*) FROM quota_windows"
                                  " WHERE account_id = 'gone'"), ==, 0);
  g_assert_cmpint (count_requests (store), ==, 1);
  g_assert_cmpuint (pooler_store_writer_get_committed (writer), ==, 1);

  sqlite3_close_v2 (db);
}

/* Request ids sort in time order (they append to the key index) and
 * keep their shape: "req_" and 20 hex digits. */
static void
test_ids_in_time_order (void)
{
  g_autoptr(PoolerRequestRecord) first = pooler_request_record_new ();
  g_autoptr(PoolerRequestRecord) second = NULL;
  g_autoptr(PoolerRequestRecord) same_ms = pooler_request_record_new ();

  g_usleep (2000);
  second = pooler_request_record_new ();

  for (guint i = 0; i < 3; i++)
    {
      const char *id = (i == 0 ? first : i == 1 ? second : same_ms)->id;

      g_assert_cmpuint (strlen (id), ==, 24);
      g_assert_true (g_str_has_prefix (id, "req_"));
      for (const char *p = id + 4; *p != '\0'; p++)
        g_assert_true (g_ascii_isxdigit (*p) && !g_ascii_isupper (*p));
    }
  g_assert_cmpint (strcmp (first->id, second->id), <, 0);
  /* Unique even within one millisecond. */
  g_assert_cmpstr (first->id, !=, same_ms->id);

  /* The time, then the counter, each in its digits. */
  {
    guint64 before = (guint64) (g_get_real_time () / 1000);
    g_autoptr(PoolerRequestRecord) a = pooler_request_record_new ();
    g_autoptr(PoolerRequestRecord) b = pooler_request_record_new ();
    guint64 after = (guint64) (g_get_real_time () / 1000);
    g_autofree char *ms = g_strndup (a->id + 4, 12);
    guint64 a_count = g_ascii_strtoull (a->id + 16, NULL, 16);
    guint64 b_count = g_ascii_strtoull (b->id + 16, NULL, 16);

    g_assert_cmpuint (g_ascii_strtoull (ms, NULL, 16), >=, before & G_GUINT64_CONSTANT (0xffffffffffff));
    g_assert_cmpuint (g_ascii_strtoull (ms, NULL, 16), <=, after & G_GUINT64_CONSTANT (0xffffffffffff));
    g_assert_cmpuint ((b_count - a_count) & 0xffffffff, ==, 1);
  }
}

/* The account changes the serving loop hands over: each its own columns,
 * so what another process changed in the row meanwhile stays. */
static void
test_account_changes (void)
{
  g_autofree char *path = test_db_path ("account-changes.db");
  g_autoptr(PoolerStore) store = test_open_store (path);
  g_autoptr(PoolerStoreWriter) writer = open_writer (path);
  g_autoptr(PoolerAccount) account = pooler_account_new ("acct");
  g_autoptr(PoolerAccount) found = NULL;
  g_autoptr(GError) error = NULL;

  pooler_account_set_chatgpt_account_id (account, "cga");
  pooler_account_set_label (account, "before");
  pooler_account_set_last_error (account, "upstream_500");
  g_assert_true (pooler_store_save_account (store, account, &error));
  g_assert_no_error (error);

  /* Renamed by another process after the writer's ops were queued. */
  pooler_store_writer_set_cooldown (writer, "acct", 5000);
  pooler_store_writer_set_cooldown (writer, "acct", 4000);   /* never moved earlier */
  pooler_store_writer_set_refreshed (writer, "acct", 9000);
  pooler_account_set_label (account, "renamed");
  g_assert_true (pooler_store_save_account (store, account, &error));
  g_assert_no_error (error);
  pooler_store_writer_flush (writer);

  found = pooler_store_find_account (store, "acct", &error);
  g_assert_no_error (error);
  g_assert_cmpint (pooler_account_get_cooldown_until (found), ==, 5000);
  g_assert_cmpint (pooler_account_get_token_expires_at (found), ==, 9000);
  g_assert_null (pooler_account_get_last_error (found));
  g_assert_cmpstr (pooler_account_get_label (found), ==, "renamed");
  g_assert_cmpint (pooler_account_get_status (found), ==, POOLER_ACCOUNT_ACTIVE);
  g_clear_object (&found);

  pooler_store_writer_set_reauth_required (writer, "acct");
  pooler_store_writer_set_cooldown (writer, "gone", 100);   /* removed meanwhile: no error */
  pooler_store_writer_flush (writer);
  found = pooler_store_find_account (store, "acct", &error);
  g_assert_no_error (error);
  g_assert_cmpint (pooler_account_get_status (found), ==, POOLER_ACCOUNT_REAUTH_REQUIRED);
  g_assert_cmpstr (pooler_account_get_last_error (found), ==, "refresh_token_refused");
  g_assert_cmpint (pooler_account_get_cooldown_until (found), ==, 5000);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/store-writer/many-threads", test_many_threads);
  g_test_add_func ("/store-writer/upsert", test_upsert);
  g_test_add_func ("/store-writer/ids-in-time-order", test_ids_in_time_order);
  g_test_add_func ("/store-writer/touch", test_touch);
  g_test_add_func ("/store-writer/account-changes", test_account_changes);
  g_test_add_func ("/store-writer/read-while-writing", test_read_while_writing);
  g_test_add_func ("/store-writer/close", test_close);
  g_test_add_func ("/store-writer/close-while-locked", test_close_while_locked);
  g_test_add_func ("/store-writer/unref-commits", test_unref_commits);
  g_test_add_func ("/store-writer/unref-on-other-thread", test_unref_on_other_thread);
  g_test_add_func ("/store-writer/kick-at-turn-end", test_kick_at_turn_end);
  g_test_add_func ("/store-writer/other-thread-wakes", test_other_thread_wakes);
  g_test_add_func ("/store-writer/kick-wakes-idle-loop", test_kick_wakes_idle_loop);
  g_test_add_func ("/store-writer/refuses-unmigrated", test_refuses_unmigrated);
  g_test_add_func ("/store-writer/quota-windows", test_quota_windows);

  return g_test_run ();
}
