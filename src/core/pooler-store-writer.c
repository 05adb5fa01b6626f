/* pooler-store-writer.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-store-writer"

#include "config.h"

#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pooler-error.h"
#include "pooler-store-private.h"
#include "pooler-store-writer.h"

/* Enough to make commits rare under load, few enough that one batch never
 * holds the write lock for long. */
#define MAX_BATCH_OPS    512
/* Under load, one commit per this much time at most: each commit costs
 * about twenty write and lock syscalls whatever its size, and with a
 * commit per request the writer took a third of a core at 2 000 req/s.
 * A flush waits for the current interval at most. */
#define COMMIT_INTERVAL_US (20 * 1000)
/* Work after a quiet spell (a request starting) is committed this much
 * later, not at once: see writer_thread(). */
#define QUIET_DELAY_US     (5 * 1000)
#define MAX_BUSY_RETRIES 6
#define FIRST_BACKOFF_US (20 * 1000)
/* The writer's own busy wait per attempt (the store's connection waits
 * 5 s): with its retries, a batch gives up in about 3 s, not 36, while
 * another process holds the database's write lock. */
#define WRITER_BUSY_TIMEOUT_MS 250
/* Ops queued at most: with the database locked for long, the rest are
 * dropped (and counted) instead of growing without bound. */
#define MAX_QUEUED_OPS 100000

typedef enum
{
  WRITER_OP_REQUEST,
  WRITER_OP_TOUCH_KEY,
  WRITER_OP_TOUCH_ACCOUNT,
  WRITER_OP_TOUCH_MCP_TOKEN,
  WRITER_OP_ACCOUNT_COOLDOWN,
  WRITER_OP_ACCOUNT_REFRESHED,
  WRITER_OP_ACCOUNT_REAUTH,
  WRITER_OP_AUDIT,
  WRITER_OP_QUOTA_WINDOW,
  WRITER_OP_AFFINITY,
  WRITER_OP_FLUSH,
  WRITER_OP_STOP,
} WriterOpKind;

/* Lives on the stack of the thread that waits in flush(). */
typedef struct
{
  GMutex   mutex;
  GCond    cond;
  gboolean done;
} FlushWaiter;

typedef struct
{
  WriterOpKind         kind;
  PoolerRequestRecord *record;   /* REQUEST: a snapshot */
  char                *target;   /* TOUCH_*: key or token prefix, or account id;
                                  * ACCOUNT_*, QUOTA_WINDOW: account id */
  PoolerQuotaWindow   *window;   /* QUOTA_WINDOW */
  PoolerAffinityEntry *affinity; /* AFFINITY */
  char                *actor;    /* AUDIT (with target, at) */
  char                *action;
  char                *detail;
  gint64               at;       /* TOUCH_*: unix seconds; ACCOUNT_COOLDOWN: until;
                                  * ACCOUNT_REFRESHED: the tokens' expiry */
  FlushWaiter         *waiter;   /* FLUSH */
  guint64              seq;      /* its place in the queue, from 1 */
} WriterOp;

struct _PoolerStoreWriter
{
  GObject       parent_instance;

  sqlite3      *db;
  GThread      *thread;

  /* Guards the queue, closed (so no push can land behind the stop op) and
   * committed. */
  GMutex        lock;
  GCond         queued;        /* the writer waits on it for kicked work */
  GQueue        ops;           /* of WriterOp */
  gboolean      kicked;        /* what is queued may be taken now */
  gboolean      closed;
  guint64       committed;
  guint64       dropped;       /* ops refused by a full queue */
  guint64       pushed;        /* the last op's seq */
  guint64       processed;     /* every op up to this seq was written or dropped */
  gboolean      overflowing;   /* dropping now (warned once per spell) */
  gboolean      giving_up;     /* closed, and the database refused: the rest is dropped */

  /* A push from the creator's thread does not wake the writer: waking a
   * thread costs a futex call and, on a small machine, a core the
   * request's own path needs (the upstream, the client), and the woken
   * writer took the queue's lock while the pusher still held it. That
   * sat between reading a request and sending it upstream: +0.4 ms to
   * the first event at c=1, and waking it at the end of the loop turn
   * instead still cost as much. The push sets kick_at, QUIET_DELAY_US
   * later, when the request's answer has begun, and this source wakes the
   * writer then, on the creator's main context (so a row is committed
   * about 10 ms after its push, not 5). Work queued on that thread is
   * taken then, or at a flush or close; the writer never wakes on a
   * timer of its own. */
  GSource      *kick;           /* NULL once closed */
  GThread      *owner;          /* the creator's thread */
  gint64        kick_at;        /* monotonic; 0: none. The owner's only. */

  /* Prepared on the caller's thread so a bad schema fails in new(); used
   * only by the writer thread afterwards. */
  sqlite3_stmt *upsert_request;
  sqlite3_stmt *delete_attempts;
  sqlite3_stmt *insert_attempt;
  sqlite3_stmt *touch_key;
  sqlite3_stmt *touch_account;
  sqlite3_stmt *touch_mcp_token;
  sqlite3_stmt *account_cooldown;
  sqlite3_stmt *account_refreshed;
  sqlite3_stmt *account_reauth;
  sqlite3_stmt *insert_audit;
  sqlite3_stmt *upsert_quota_window;
  sqlite3_stmt *upsert_affinity;
  sqlite3_stmt *sweep_affinities;
  sqlite3_stmt *begin;             /* BEGIN IMMEDIATE and COMMIT, parsed once */
  sqlite3_stmt *commit;
  guint         affinity_writes;
};

G_DEFINE_FINAL_TYPE (PoolerStoreWriter, pooler_store_writer, G_TYPE_OBJECT)

static void
writer_op_free (gpointer data)
{
  WriterOp *op = data;

  g_clear_pointer (&op->record, pooler_request_record_snapshot_free);
  g_clear_pointer (&op->window, pooler_quota_window_free);
  g_clear_pointer (&op->affinity, pooler_affinity_entry_free);
  g_free (op->target);
  g_free (op->actor);
  g_free (op->action);
  g_free (op->detail);
  g_free (op);
}

static void
bind_text (sqlite3_stmt *stmt,
           int           index,
           const char   *text)
{
  /* SQLITE_STATIC: no copy. Every caller steps and resets (clearing the
   * bindings) while the text it bound is still alive. */
  if (text != NULL)
    sqlite3_bind_text (stmt, index, text, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null (stmt, index);
}

/* Steps a write statement and leaves it ready for the next use. */
static int
step_and_reset (sqlite3_stmt *stmt)
{
  int rc = sqlite3_step (stmt);

  sqlite3_reset (stmt);
  sqlite3_clear_bindings (stmt);

  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int
write_request (PoolerStoreWriter         *self,
               const PoolerRequestRecord *record)
{
  sqlite3_stmt *stmt = self->upsert_request;
  int rc;

  bind_text (stmt, 1, record->id);
  sqlite3_bind_int64 (stmt, 2, record->started_at_ms);
  bind_text (stmt, 3, record->pool_slug);
  bind_text (stmt, 4, record->key_prefix);
  bind_text (stmt, 5, record->account_id);
  bind_text (stmt, 6, record->model);
  bind_text (stmt, 7, record->endpoint);
  bind_text (stmt, 8, record->transport);
  sqlite3_bind_int (stmt, 9, record->status);
  sqlite3_bind_int (stmt, 10, record->upstream_status);
  sqlite3_bind_int64 (stmt, 11, record->latency_ms);
  sqlite3_bind_int64 (stmt, 12, record->ttfb_ms);
  sqlite3_bind_int64 (stmt, 13, record->input_tokens);
  sqlite3_bind_int64 (stmt, 14, record->output_tokens);
  sqlite3_bind_int64 (stmt, 15, record->cached_tokens);
  sqlite3_bind_int64 (stmt, 16, record->reasoning_tokens);
  bind_text (stmt, 17, record->error_code);
  bind_text (stmt, 18, pooler_request_state_to_string (record->state));
  if ((rc = step_and_reset (stmt)) != SQLITE_OK)
    return rc;

  /* The later push carries the whole attempt list; replace, not merge. */
  bind_text (self->delete_attempts, 1, record->id);
  if ((rc = step_and_reset (self->delete_attempts)) != SQLITE_OK)
    return rc;

  for (guint i = 0; record->attempts != NULL && i < record->attempts->len; i++)
    {
      const PoolerAttemptRecord *attempt = g_ptr_array_index (record->attempts, i);

      stmt = self->insert_attempt;
      bind_text (stmt, 1, record->id);
      sqlite3_bind_int (stmt, 2, (int) attempt->attempt);
      bind_text (stmt, 3, attempt->account_id);
      sqlite3_bind_int (stmt, 4, attempt->upstream_status);
      bind_text (stmt, 5, attempt->error_code);
      sqlite3_bind_int64 (stmt, 6, attempt->started_at_ms);
      sqlite3_bind_int64 (stmt, 7, attempt->duration_ms);
      if ((rc = step_and_reset (stmt)) != SQLITE_OK)
        return rc;
    }

  return SQLITE_OK;
}

static int
write_quota_window (PoolerStoreWriter       *self,
                    const char              *account_id,
                    const PoolerQuotaWindow *window)
{
  sqlite3_stmt *stmt = self->upsert_quota_window;
  g_autofree char *kind = pooler_quota_window_kind (window->window_minutes);

  bind_text (stmt, 1, account_id);
  bind_text (stmt, 2, window->limit_id);
  bind_text (stmt, 3, kind);
  sqlite3_bind_int (stmt, 4, window->window_minutes);
  sqlite3_bind_double (stmt, 5, window->used_percent);
  sqlite3_bind_int64 (stmt, 6, window->reset_at);
  bind_text (stmt, 7, pooler_quota_source_to_string (window->source));
  sqlite3_bind_int64 (stmt, 8, window->observed_at);

  return step_and_reset (stmt);
}

static int
write_affinity (PoolerStoreWriter         *self,
                const PoolerAffinityEntry *entry)
{
  sqlite3_stmt *stmt = self->upsert_affinity;
  int rc;

  bind_text (stmt, 1, entry->key_sha256);
  bind_text (stmt, 2, entry->kind);
  bind_text (stmt, 3, entry->account_id);
  sqlite3_bind_int64 (stmt, 4, entry->pool_id);
  sqlite3_bind_int64 (stmt, 5, entry->expires_at);
  if ((rc = step_and_reset (stmt)) != SQLITE_OK)
    return rc;

  /* Expired continuity is worth nothing: sweep it now and then. */
  if (++self->affinity_writes % 1000 == 0)
    {
      sqlite3_bind_int64 (self->sweep_affinities, 1, g_get_real_time () / G_USEC_PER_SEC);
      rc = step_and_reset (self->sweep_affinities);
    }

  return rc;
}

static int
write_touches (sqlite3_stmt *stmt,
               GHashTable   *latest)
{
  GHashTableIter iter;
  gpointer value;
  int rc;

  g_hash_table_iter_init (&iter, latest);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      const WriterOp *op = value;

      bind_text (stmt, 1, op->target);
      sqlite3_bind_int64 (stmt, 2, op->at);
      if ((rc = step_and_reset (stmt)) != SQLITE_OK)
        return rc;
    }

  return SQLITE_OK;
}

/* Keeps, per target, only the op with the latest time: a busy key touched
 * 300 times in one batch costs one UPDATE. */
static void
coalesce_touch (GHashTable *latest,
                WriterOp   *op)
{
  WriterOp *seen = g_hash_table_lookup (latest, op->target);

  if (seen == NULL || seen->at < op->at)
    g_hash_table_insert (latest, op->target, op);
}

/* One transaction for the whole batch; returns an SQLite result code. */
/* One of the account changes the main thread must not wait on SQLite
 * for (a cooldown, a refresh's expiry, a refused refresh token). */
static int
write_account_change (PoolerStoreWriter *self,
                      const WriterOp    *op)
{
  sqlite3_stmt *stmt;

  switch (op->kind)
    {
    case WRITER_OP_ACCOUNT_COOLDOWN:
      stmt = self->account_cooldown;
      sqlite3_bind_int64 (stmt, 2, op->at);
      break;
    case WRITER_OP_ACCOUNT_REFRESHED:
      stmt = self->account_refreshed;
      sqlite3_bind_int64 (stmt, 2, op->at);
      break;
    case WRITER_OP_ACCOUNT_REAUTH:
      stmt = self->account_reauth;
      break;
    default:
      g_assert_not_reached ();
    }
  bind_text (stmt, 1, op->target);
  return step_and_reset (stmt);
}

static int
write_batch (PoolerStoreWriter *self,
             GPtrArray         *batch,
             GHashTable        *requests,
             GHashTable        *keys,
             GHashTable        *accounts,
             GHashTable        *mcp_tokens)
{
  int rc;

  if ((rc = step_and_reset (self->begin)) != SQLITE_OK)
    return rc;

  for (guint i = 0; i < batch->len; i++)
    {
      const WriterOp *op = g_ptr_array_index (batch, i);

      /* A request pushed twice in one batch (started, then done) is
       * written once, as its last push has it. */
      if (op->kind == WRITER_OP_REQUEST &&
          g_hash_table_lookup (requests, op->record->id) == op &&
          (rc = write_request (self, op->record)) != SQLITE_OK)
        return rc;
      /* In queue order; the statement's guard keeps the newest anyway. */
      if (op->kind == WRITER_OP_QUOTA_WINDOW &&
          (rc = write_quota_window (self, op->target, op->window)) != SQLITE_OK)
        return rc;
      if (op->kind == WRITER_OP_AFFINITY &&
          (rc = write_affinity (self, op->affinity)) != SQLITE_OK)
        return rc;
      if ((op->kind == WRITER_OP_ACCOUNT_COOLDOWN || op->kind == WRITER_OP_ACCOUNT_REFRESHED ||
           op->kind == WRITER_OP_ACCOUNT_REAUTH) &&
          (rc = write_account_change (self, op)) != SQLITE_OK)
        return rc;
      if (op->kind == WRITER_OP_AUDIT)
        {
          sqlite3_bind_int64 (self->insert_audit, 1, op->at);
          bind_text (self->insert_audit, 2, op->actor);
          bind_text (self->insert_audit, 3, op->action);
          bind_text (self->insert_audit, 4, op->target);
          bind_text (self->insert_audit, 5, op->detail);
          if ((rc = step_and_reset (self->insert_audit)) != SQLITE_OK)
            return rc;
        }
    }

  if ((rc = write_touches (self->touch_key, keys)) != SQLITE_OK ||
      (rc = write_touches (self->touch_account, accounts)) != SQLITE_OK ||
      (rc = write_touches (self->touch_mcp_token, mcp_tokens)) != SQLITE_OK)
    return rc;

  return step_and_reset (self->commit);
}

static gboolean
is_busy (int rc)
{
  rc &= 0xff;
  return rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
}

static gboolean
writer_is_closed (PoolerStoreWriter *self)
{
  gboolean closed;

  g_mutex_lock (&self->lock);
  closed = self->closed;
  g_mutex_unlock (&self->lock);
  return closed;
}

static void
run_batch (PoolerStoreWriter *self,
           GPtrArray         *batch)
{
  g_autoptr(GHashTable) requests = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) keys = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) accounts = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) mcp_tokens = g_hash_table_new (g_str_hash, g_str_equal);
  gulong backoff = FIRST_BACKOFF_US;
  guint n_requests = 0;
  guint n_writes = 0;

  for (guint i = 0; i < batch->len; i++)
    {
      WriterOp *op = g_ptr_array_index (batch, i);

      switch (op->kind)
        {
        case WRITER_OP_REQUEST:
          g_hash_table_insert (requests, op->record->id, op);
          n_requests++;
          n_writes++;
          break;
        case WRITER_OP_TOUCH_KEY:
          coalesce_touch (keys, op);
          n_writes++;
          break;
        case WRITER_OP_TOUCH_ACCOUNT:
          coalesce_touch (accounts, op);
          n_writes++;
          break;
        case WRITER_OP_TOUCH_MCP_TOKEN:
          coalesce_touch (mcp_tokens, op);
          n_writes++;
          break;
        case WRITER_OP_QUOTA_WINDOW:
        case WRITER_OP_AFFINITY:
        case WRITER_OP_ACCOUNT_COOLDOWN:
        case WRITER_OP_ACCOUNT_REFRESHED:
        case WRITER_OP_ACCOUNT_REAUTH:
        case WRITER_OP_AUDIT:
          n_writes++;
          break;
        case WRITER_OP_FLUSH:
        case WRITER_OP_STOP:
        default:
          break;
        }
    }

  if (n_writes == 0)
    return;

  g_mutex_lock (&self->lock);
  if (self->giving_up)
    {
      g_mutex_unlock (&self->lock);
      g_warning ("Dropped a batch of %u writes: the database stayed locked while closing", n_writes);
      return;
    }
  g_mutex_unlock (&self->lock);

  for (guint retry = 0; ; retry++)
    {
      g_autofree char *message = NULL;
      int rc = write_batch (self, batch, requests, keys, accounts, mcp_tokens);

      if (rc == SQLITE_OK)
        {
          g_mutex_lock (&self->lock);
          self->committed += n_requests;
          g_mutex_unlock (&self->lock);
          return;
        }

      /* Capture before ROLLBACK resets it. The message names tables and
       * constraints, never values, so it is safe to log. */
      message = g_strdup (sqlite3_errmsg (self->db));
      if (!sqlite3_get_autocommit (self->db))
        sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);

      if (is_busy (rc) && retry < MAX_BUSY_RETRIES && !writer_is_closed (self))
        {
          g_debug ("Database busy; retrying a batch of %u writes", n_writes);
          g_usleep (backoff);
          backoff *= 2;
          continue;
        }

      /* Losing some log rows beats spinning on a database that refuses;
       * and closing (the process is stopping) does not wait for it batch
       * after batch. */
      g_warning ("Dropped a batch of %u writes: %s", n_writes, message);
      if (is_busy (rc) && writer_is_closed (self))
        {
          g_mutex_lock (&self->lock);
          self->giving_up = TRUE;
          g_mutex_unlock (&self->lock);
        }
      return;
    }
}

static void
release_waiters (GPtrArray *batch)
{
  for (guint i = 0; i < batch->len; i++)
    {
      WriterOp *op = g_ptr_array_index (batch, i);

      if (op->kind != WRITER_OP_FLUSH)
        continue;

      /* The waiter's stack frame may vanish right after the unlock. */
      g_mutex_lock (&op->waiter->mutex);
      op->waiter->done = TRUE;
      g_cond_signal (&op->waiter->cond);
      g_mutex_unlock (&op->waiter->mutex);
    }
}

#define WRITER_NICE 10

/* Under self->lock. */
static WriterOp *
take_head (PoolerStoreWriter *self)
{
  WriterOp *op = g_queue_pop_head (&self->ops);

  if (g_queue_is_empty (&self->ops))
    self->kicked = FALSE;
  return op;
}

/* Waits for kicked work. */
static WriterOp *
writer_pop (PoolerStoreWriter *self)
{
  WriterOp *op;

  g_mutex_lock (&self->lock);
  while (!self->kicked || g_queue_is_empty (&self->ops))
    g_cond_wait (&self->queued, &self->lock);
  op = take_head (self);
  g_mutex_unlock (&self->lock);

  return op;
}

static WriterOp *
writer_try_pop (PoolerStoreWriter *self)
{
  WriterOp *op;

  g_mutex_lock (&self->lock);
  op = take_head (self);
  g_mutex_unlock (&self->lock);

  return op;
}

/* Lets the writer take what is queued. */
static void
writer_kick (PoolerStoreWriter *self)
{
  g_mutex_lock (&self->lock);
  /* Never with nothing queued: a push seeing kicked set signals nobody. */
  self->kicked = !g_queue_is_empty (&self->ops);
  g_mutex_unlock (&self->lock);
  /* Signalled unlocked: the woken writer does not block on the lock. */
  g_cond_signal (&self->queued);
}

typedef struct
{
  GSource            source;
  /* Guards writer: close() may run on another thread (the last unref of
   * the writer, say) while the owner's context prepares this source, and
   * the writer may be freed right after it. */
  GMutex             lock;
  PoolerStoreWriter *writer;   /* not a reference: close() clears it */
} KickSource;

/* Wakes the writer when kick_at has come; never dispatches. */
static gboolean
kick_when_due (GSource *source,
               gint    *timeout)
{
  KickSource *kick = (KickSource *) source;
  PoolerStoreWriter *self;

  *timeout = -1;
  g_mutex_lock (&kick->lock);
  self = kick->writer;
  if (self != NULL && self->kick_at != 0)
    {
      gint64 now = g_source_get_time (source);

      if (now >= self->kick_at)
        {
          self->kick_at = 0;
          writer_kick (self);
        }
      else
        *timeout = (gint) ((self->kick_at - now + 999) / 1000);
    }
  g_mutex_unlock (&kick->lock);
  return FALSE;
}

static gboolean
kick_check (GSource *source)
{
  gint timeout;

  return kick_when_due (source, &timeout);
}

static gboolean
kick_dispatch (GSource     *source,
               GSourceFunc  callback,
               gpointer     user_data)
{
  return G_SOURCE_CONTINUE;
}

static void
kick_finalize (GSource *source)
{
  g_mutex_clear (&((KickSource *) source)->lock);
}

static GSourceFuncs kick_funcs = {
  .prepare = kick_when_due,
  .check = kick_check,
  .dispatch = kick_dispatch,
  .finalize = kick_finalize,
};

static gpointer
writer_thread (gpointer data)
{
  PoolerStoreWriter *self = data;
  g_autoptr(GPtrArray) batch = g_ptr_array_new_with_free_func (writer_op_free);
  gboolean stop = FALSE;

  gint64 last_commit = 0;
  gboolean last_was_full = FALSE;

#ifdef SYS_gettid
  /* Logging is background work: on a busy machine the thread that moves
   * the requests' bytes must not wait for a core behind it. (Linux: a
   * thread's own nice value, relative to the process's.) */
  {
    id_t tid = (id_t) syscall (SYS_gettid);
    int nice;

    errno = 0;
    nice = getpriority (PRIO_PROCESS, tid);
    if (errno == 0 && setpriority (PRIO_PROCESS, tid, MIN (nice + WRITER_NICE, 19)) != 0)
      g_debug ("Could not lower the writer thread's priority");
  }
#endif

  while (!stop)
    {
      WriterOp *op = writer_pop (self);
      gint64 wait = MAX (last_commit + COMMIT_INTERVAL_US - g_get_monotonic_time (), QUIET_DELAY_US);

      /* Work that arrives within COMMIT_INTERVAL_US of the last commit
       * waits for the rest of that interval and shares one transaction; a
       * flush or stop is served at once. The writer sleeps rather than
       * waits on the queue, so pushes meanwhile wake nobody. Work after a
       * quiet spell still waits QUIET_DELAY_US: it is a request starting,
       * and the commit must not take a core while its answer begins. */
      /* After a full batch there is more already: no sleep. */
      if (wait > 0 && !last_was_full && op->kind != WRITER_OP_FLUSH && op->kind != WRITER_OP_STOP)
        g_usleep ((gulong) wait);

      /* Take all that piled up meanwhile. */
      do
        {
          g_ptr_array_add (batch, op);
          if (op->kind == WRITER_OP_STOP)
            stop = TRUE;
        }
      while (batch->len < MAX_BATCH_OPS &&
             (op = writer_try_pop (self)) != NULL);

      last_was_full = batch->len >= MAX_BATCH_OPS;
      run_batch (self, batch);
      {
        guint64 last = 0;

        for (guint i = 0; i < batch->len; i++)
          last = MAX (last, ((WriterOp *) g_ptr_array_index (batch, i))->seq);
        g_mutex_lock (&self->lock);
        self->processed = MAX (self->processed, last);
        g_mutex_unlock (&self->lock);
      }
      last_commit = g_get_monotonic_time ();
      release_waiters (batch);
      g_ptr_array_set_size (batch, 0);
    }

  return NULL;
}

/* Under self->lock. A flush or stop (@urgent) and work from another
 * thread wake the writer at once; other work is kicked QUIET_DELAY_US
 * later from the creator's main context. Returns whether the caller must
 * signal self->queued (after unlocking). */
static gboolean
queue_op (PoolerStoreWriter *self,
          WriterOp          *op,
          gboolean           urgent)
{
  g_queue_push_tail (&self->ops, op);
  if (self->kicked)
    return FALSE;
  if (urgent || g_thread_self () != self->owner)
    {
      self->kicked = TRUE;
      return TRUE;
    }
  if (self->kick_at == 0)
    self->kick_at = g_get_monotonic_time () + QUIET_DELAY_US;
  return FALSE;
}

/* Queues @op unless the writer is closed; takes ownership. */
static void
writer_push (PoolerStoreWriter *self,
             WriterOp          *op)
{
  g_mutex_lock (&self->lock);
  if (!self->closed && self->ops.length >= MAX_QUEUED_OPS)
    {
      gboolean first = !self->overflowing;

      self->overflowing = TRUE;
      self->dropped++;
      g_mutex_unlock (&self->lock);
      if (first)
        g_warning ("The store writer's queue is full (the database has been locked for long); "
                   "writes are dropped until it drains");
      writer_op_free (op);
      return;
    }
  if (!self->closed)
    {
      gboolean wake;

      op->seq = ++self->pushed;
      /* A new spell is told only once the queue has drained well below
       * the bound (a dropped batch frees room, the lock may persist). */
      if (self->ops.length < MAX_QUEUED_OPS / 2)
        self->overflowing = FALSE;
      wake = queue_op (self, op, FALSE);
      g_mutex_unlock (&self->lock);
      if (wake)
        g_cond_signal (&self->queued);
      return;
    }
  g_mutex_unlock (&self->lock);

  g_warning ("The store writer is closed; a write was dropped");
  writer_op_free (op);
}

static void
pooler_store_writer_finalize (GObject *object)
{
  PoolerStoreWriter *self = (PoolerStoreWriter *)object;

  pooler_store_writer_close (self);

  g_queue_clear_full (&self->ops, writer_op_free);
  g_cond_clear (&self->queued);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (pooler_store_writer_parent_class)->finalize (object);
}

static void
pooler_store_writer_class_init (PoolerStoreWriterClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = pooler_store_writer_finalize;
}

static void
pooler_store_writer_init (PoolerStoreWriter *self)
{
  g_mutex_init (&self->lock);
  g_cond_init (&self->queued);
  g_queue_init (&self->ops);
}

static gboolean
prepare (PoolerStoreWriter  *self,
         const char         *sql,
         sqlite3_stmt      **stmt,
         GError            **error)
{
  if (sqlite3_prepare_v3 (self->db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, NULL) != SQLITE_OK)
    {
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_DATABASE,
                   "Could not prepare the request log: %s", sqlite3_errmsg (self->db));
      return FALSE;
    }

  return TRUE;
}

PoolerStoreWriter *
pooler_store_writer_new (const char  *path,
                         GError     **error)
{
  g_autoptr(PoolerStoreWriter) self = NULL;
  g_autofree char *default_path = NULL;
  sqlite3_stmt *stmt = NULL;
  int version = -1;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (path == NULL)
    path = default_path = pooler_store_default_path ();

  self = g_object_new (POOLER_TYPE_STORE_WRITER, NULL);

  self->db = pooler_store_open_connection (path, error);
  if (self->db == NULL)
    return NULL;
  sqlite3_busy_timeout (self->db, WRITER_BUSY_TIMEOUT_MS);

  /* Migrating is PoolerStore's job; writing into another schema is not ours. */
  if (sqlite3_prepare_v2 (self->db, "PRAGMA user_version", -1, &stmt, NULL) == SQLITE_OK &&
      sqlite3_step (stmt) == SQLITE_ROW)
    version = sqlite3_column_int (stmt, 0);
  sqlite3_finalize (stmt);

  if (version != pooler_store_schema_version_latest ())
    {
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_DATABASE,
                   "The database has schema %d, not %d; open it with the store first",
                   version, pooler_store_schema_version_latest ());
      return NULL;
    }

  if (!prepare (self,
                "INSERT INTO requests (id, started_at_ms, pool_slug, key_prefix,"
                " account_id, model, endpoint, transport, status, upstream_status,"
                " latency_ms, ttfb_ms, input_tokens, output_tokens, cached_tokens,"
                " reasoning_tokens, error_code, state)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
                " ?14, ?15, ?16, ?17, ?18)"
                " ON CONFLICT (id) DO UPDATE SET"
                "  started_at_ms = excluded.started_at_ms,"
                "  pool_slug = excluded.pool_slug,"
                "  key_prefix = excluded.key_prefix,"
                "  account_id = excluded.account_id,"
                "  model = excluded.model,"
                "  endpoint = excluded.endpoint,"
                "  transport = excluded.transport,"
                "  status = excluded.status,"
                "  upstream_status = excluded.upstream_status,"
                "  latency_ms = excluded.latency_ms,"
                "  ttfb_ms = excluded.ttfb_ms,"
                "  input_tokens = excluded.input_tokens,"
                "  output_tokens = excluded.output_tokens,"
                "  cached_tokens = excluded.cached_tokens,"
                "  reasoning_tokens = excluded.reasoning_tokens,"
                "  error_code = excluded.error_code,"
                "  state = excluded.state",
                &self->upsert_request, error) ||
      !prepare (self,
                "DELETE FROM request_attempts WHERE request_id = ?1",
                &self->delete_attempts, error) ||
      !prepare (self,
                "INSERT OR REPLACE INTO request_attempts (request_id, attempt,"
                " account_id, upstream_status, error_code, started_at_ms, duration_ms)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                &self->insert_attempt, error) ||
      /* The guard skips the write (and the WAL page) when nothing moves. */
      !prepare (self,
                "UPDATE api_keys SET last_used_at = ?2"
                " WHERE prefix = ?1 AND last_used_at < ?2",
                &self->touch_key, error) ||
      !prepare (self,
                "UPDATE accounts SET last_used_at = ?2"
                " WHERE id = ?1 AND last_used_at < ?2",
                &self->touch_account, error) ||
      !prepare (self,
                "UPDATE mcp_tokens SET last_used_at = ?2"
                " WHERE prefix = ?1 AND last_used_at < ?2",
                &self->touch_mcp_token, error) ||
      /* Targeted: a whole-row save could undo another process's change
       * made since the row was read. A cooldown only grows. */
      !prepare (self,
                "UPDATE accounts SET cooldown_until = ?2, updated_at = CAST (strftime ('%s', 'now') AS INTEGER)"
                " WHERE id = ?1 AND cooldown_until < ?2",
                &self->account_cooldown, error) ||
      !prepare (self,
                "UPDATE accounts SET token_expires_at = ?2, last_error = NULL,"
                " updated_at = CAST (strftime ('%s', 'now') AS INTEGER) WHERE id = ?1",
                &self->account_refreshed, error) ||
      !prepare (self,
                "UPDATE accounts SET status = 'reauth_required', last_error = 'refresh_token_refused',"
                " updated_at = CAST (strftime ('%s', 'now') AS INTEGER) WHERE id = ?1",
                &self->account_reauth, error) ||
      !prepare (self,
                "INSERT INTO audit_events (at, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                &self->insert_audit, error) ||
      /* SELECT ... WHERE EXISTS: a window for an account removed meanwhile
       * is skipped instead of failing the foreign key and the whole batch.
       * The DO UPDATE guard keeps a newer stored observation. */
      !prepare (self,
                "INSERT INTO quota_windows (account_id, limit_id, window_kind,"
                " window_minutes, used_percent, reset_at, source, observed_at)"
                " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8"
                " WHERE EXISTS (SELECT 1 FROM accounts WHERE id = ?1)"
                " ON CONFLICT (account_id, limit_id, window_minutes) DO UPDATE SET"
                "  window_kind = excluded.window_kind,"
                "  used_percent = excluded.used_percent,"
                "  reset_at = excluded.reset_at,"
                "  source = excluded.source,"
                "  observed_at = excluded.observed_at"
                " WHERE excluded.observed_at >= quota_windows.observed_at",
                &self->upsert_quota_window, error) ||
      /* Same guard as above for an account removed meanwhile. */
      !prepare (self,
                "INSERT INTO affinities (key_sha256, kind, account_id, pool_id, expires_at)"
                " SELECT ?1, ?2, ?3, ?4, ?5"
                " WHERE EXISTS (SELECT 1 FROM accounts WHERE id = ?3)"
                " ON CONFLICT (key_sha256) DO UPDATE SET"
                "  kind = excluded.kind, account_id = excluded.account_id,"
                "  pool_id = excluded.pool_id, expires_at = excluded.expires_at",
                &self->upsert_affinity, error) ||
      !prepare (self,
                "DELETE FROM affinities WHERE expires_at <= ?1",
                &self->sweep_affinities, error) ||
      !prepare (self, "BEGIN IMMEDIATE", &self->begin, error) ||
      !prepare (self, "COMMIT", &self->commit, error))
    return NULL;

  /* Before the thread starts. */
  self->owner = g_thread_self ();
  self->kick = g_source_new (&kick_funcs, sizeof (KickSource));
  g_mutex_init (&((KickSource *) self->kick)->lock);
  ((KickSource *) self->kick)->writer = self;
  /* Prepared and checked on every turn whatever else is ready. */
  g_source_set_priority (self->kick, G_PRIORITY_HIGH);
  g_source_set_static_name (self->kick, "pooler-store-writer kick");
  g_source_attach (self->kick, g_main_context_get_thread_default ());

  self->thread = g_thread_try_new ("pooler-store-writer", writer_thread, self, error);
  if (self->thread == NULL)
    return NULL;

  return g_steal_pointer (&self);
}

void
pooler_store_writer_push_request (PoolerStoreWriter         *self,
                                  const PoolerRequestRecord *record)
{
  WriterOp *op;

  g_return_if_fail (POOLER_IS_STORE_WRITER (self));
  g_return_if_fail (record != NULL);
  g_return_if_fail (record->id != NULL);
  g_return_if_fail (record->endpoint != NULL);
  g_return_if_fail (record->attempts != NULL);

  op = g_new0 (WriterOp, 1);
  op->kind = WRITER_OP_REQUEST;
  op->record = pooler_request_record_snapshot (record);
  writer_push (self, op);
}

static void
push_touch (PoolerStoreWriter *self,
            WriterOpKind       kind,
            const char        *target,
            gint64             unix_seconds)
{
  WriterOp *op = g_new0 (WriterOp, 1);

  op->kind = kind;
  op->target = g_strdup (target);
  op->at = unix_seconds;
  writer_push (self, op);
}

void
pooler_store_writer_touch_key (PoolerStoreWriter *self,
                               const char        *prefix,
                               gint64             unix_seconds)
{
  g_return_if_fail (POOLER_IS_STORE_WRITER (self));
  g_return_if_fail (prefix != NULL);

  push_touch (self, WRITER_OP_TOUCH_KEY, prefix, unix_seconds);
}

void
pooler_store_writer_touch_account (PoolerStoreWriter *self,
                                   const char        *account_id,
                                   gint64             unix_seconds)
{
  g_return_if_fail (POOLER_IS_STORE_WRITER (self));
  g_return_if_fail (account_id != NULL);

  push_touch (self, WRITER_OP_TOUCH_ACCOUNT, account_id, unix_seconds);
}

void
pooler_store_writer_touch_mcp_token (PoolerStoreWriter *self,
                                     const char        *prefix,
                                     gint64             unix_seconds)
{
  g_return_if_fail (POOLER_IS_STORE_WRITER (self));
  g_return_if_fail (prefix != NULL);

  push_touch (self, WRITER_OP_TOUCH_MCP_TOKEN, prefix, unix_seconds);
}

void
pooler_store_writer_set_cooldown (PoolerStoreWriter *self,
                                  const char        *account_id,
                                  gint64             until)
{
  g_return_if_fail (POOLER_IS_STORE_WRITER (self));
  g_return_if_fail (account_id != NULL);

  push_touch (self, WRITER_OP_ACCOUNT_COOLDOWN, account_id, until);
}

void
pooler_store_writer_set_refreshed (PoolerStoreWriter *self,
                                   const char        *account_id,
                                   gint64             token_expires_at)
{
  g_return_if_fail (POOLER_IS_STORE_WRITER (self));
  g_return_if_fail (account_id != NULL);

  push_touch (self, WRITER_OP_ACCOUNT_REFRESHED, account_id, token_expires_at);
}

guint64
pooler_store_writer_set_reauth_required (PoolerStoreWriter *self,
                                         const char        *account_id)
{
  guint64 seq;

  g_return_val_if_fail (POOLER_IS_STORE_WRITER (self), 0);
  g_return_val_if_fail (account_id != NULL, 0);

  push_touch (self, WRITER_OP_ACCOUNT_REAUTH, account_id, 0);
  g_mutex_lock (&self->lock);
  seq = self->pushed;
  g_mutex_unlock (&self->lock);
  return seq;
}

gboolean
pooler_store_writer_has_processed (PoolerStoreWriter *self,
                                   guint64            seq)
{
  gboolean processed;

  g_return_val_if_fail (POOLER_IS_STORE_WRITER (self), TRUE);

  g_mutex_lock (&self->lock);
  processed = self->processed >= seq;
  g_mutex_unlock (&self->lock);
  return processed;
}

void
pooler_store_writer_add_audit_event (PoolerStoreWriter *self,
                                     const char        *actor,
                                     const char        *action,
                                     const char        *target,
                                     const char        *detail)
{
  WriterOp *op;

  g_return_if_fail (POOLER_IS_STORE_WRITER (self));
  g_return_if_fail (actor != NULL && action != NULL);

  op = g_new0 (WriterOp, 1);
  op->kind = WRITER_OP_AUDIT;
  op->at = g_get_real_time () / G_USEC_PER_SEC;
  op->actor = g_strdup (actor);
  op->action = g_strdup (action);
  op->target = g_strdup (target);
  op->detail = g_strdup (detail);
  writer_push (self, op);
}

void
pooler_store_writer_put_quota_window (PoolerStoreWriter       *self,
                                      const char              *account_id,
                                      const PoolerQuotaWindow *window)
{
  WriterOp *op;

  g_return_if_fail (POOLER_IS_STORE_WRITER (self));
  g_return_if_fail (account_id != NULL);
  g_return_if_fail (window != NULL);
  g_return_if_fail (window->limit_id != NULL);
  g_return_if_fail (window->window_minutes > 0);

  op = g_new0 (WriterOp, 1);
  op->kind = WRITER_OP_QUOTA_WINDOW;
  op->target = g_strdup (account_id);
  op->window = pooler_quota_window_copy (window);
  writer_push (self, op);
}

void
pooler_store_writer_put_affinity (PoolerStoreWriter         *self,
                                  const PoolerAffinityEntry *entry)
{
  WriterOp *op;

  g_return_if_fail (POOLER_IS_STORE_WRITER (self));
  g_return_if_fail (entry != NULL && entry->key_sha256 != NULL && entry->account_id != NULL);

  op = g_new0 (WriterOp, 1);
  op->kind = WRITER_OP_AFFINITY;
  op->affinity = pooler_affinity_entry_copy (entry);
  writer_push (self, op);
}

void
pooler_store_writer_flush (PoolerStoreWriter *self)
{
  FlushWaiter waiter = { 0 };
  WriterOp *op;
  gboolean wake;

  g_return_if_fail (POOLER_IS_STORE_WRITER (self));
  g_return_if_fail (g_thread_self () != self->thread);

  g_mutex_lock (&self->lock);
  if (self->closed)
    {
      /* close() already drained the queue; nothing can be pending. */
      g_mutex_unlock (&self->lock);
      return;
    }

  g_mutex_init (&waiter.mutex);
  g_cond_init (&waiter.cond);

  op = g_new0 (WriterOp, 1);
  op->kind = WRITER_OP_FLUSH;
  op->waiter = &waiter;
  wake = queue_op (self, op, TRUE);
  g_mutex_unlock (&self->lock);
  if (wake)
    g_cond_signal (&self->queued);

  g_mutex_lock (&waiter.mutex);
  while (!waiter.done)
    g_cond_wait (&waiter.cond, &waiter.mutex);
  g_mutex_unlock (&waiter.mutex);

  g_mutex_clear (&waiter.mutex);
  g_cond_clear (&waiter.cond);
}

void
pooler_store_writer_close (PoolerStoreWriter *self)
{
  WriterOp *op;
  gboolean wake = FALSE;

  g_return_if_fail (POOLER_IS_STORE_WRITER (self));

  g_mutex_lock (&self->lock);
  if (self->closed)
    {
      g_mutex_unlock (&self->lock);
      return;
    }
  self->closed = TRUE;

  /* Queued last, so the thread commits everything before it and exits. */
  if (self->thread != NULL)
    {
      op = g_new0 (WriterOp, 1);
      op->kind = WRITER_OP_STOP;
      wake = queue_op (self, op, TRUE);
    }
  g_mutex_unlock (&self->lock);
  if (wake)
    g_cond_signal (&self->queued);

  if (self->kick != NULL)
    {
      KickSource *kick = (KickSource *) self->kick;

      /* Waits for a prepare or check running on the owner's thread. */
      g_mutex_lock (&kick->lock);
      kick->writer = NULL;
      g_mutex_unlock (&kick->lock);
      g_source_destroy (self->kick);
      g_clear_pointer (&self->kick, g_source_unref);
    }

  g_clear_pointer (&self->thread, g_thread_join);

  g_clear_pointer (&self->upsert_request, sqlite3_finalize);
  g_clear_pointer (&self->delete_attempts, sqlite3_finalize);
  g_clear_pointer (&self->insert_attempt, sqlite3_finalize);
  g_clear_pointer (&self->touch_key, sqlite3_finalize);
  g_clear_pointer (&self->touch_account, sqlite3_finalize);
  g_clear_pointer (&self->touch_mcp_token, sqlite3_finalize);
  g_clear_pointer (&self->account_cooldown, sqlite3_finalize);
  g_clear_pointer (&self->account_refreshed, sqlite3_finalize);
  g_clear_pointer (&self->account_reauth, sqlite3_finalize);
  g_clear_pointer (&self->insert_audit, sqlite3_finalize);
  g_clear_pointer (&self->upsert_quota_window, sqlite3_finalize);
  g_clear_pointer (&self->upsert_affinity, sqlite3_finalize);
  g_clear_pointer (&self->sweep_affinities, sqlite3_finalize);
  g_clear_pointer (&self->begin, sqlite3_finalize);
  g_clear_pointer (&self->commit, sqlite3_finalize);
  g_clear_pointer (&self->db, sqlite3_close_v2);
}

guint64
pooler_store_writer_get_committed (PoolerStoreWriter *self)
{
  guint64 committed;

  g_return_val_if_fail (POOLER_IS_STORE_WRITER (self), 0);

  g_mutex_lock (&self->lock);
  committed = self->committed;
  g_mutex_unlock (&self->lock);

  return committed;
}
