/* pooler-upstream.c
 *
 * A connection is a GIOStream (a TCP or TLS GSocketConnection) with a
 * read buffer. It is either busy (owned by one send, then by the answer
 * it produced) or idle in its origin's queue. All I/O is non-blocking on
 * the pollable streams; waiting means a pollable GSource on the caller's
 * main context, so everything runs on the gateway's main loop.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-upstream"

#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include "pooler-http-fields.h"
#include "pooler-http-head.h"
#include "pooler-poller.h"
#include "pooler-upstream.h"

/* A status line and headers must fit the read buffer. */
#define READ_BUFFER      (32 * 1024)
/* A chunk-size line or a trailer line, and all trailers together. */
#define MAX_CHUNK_LINE   1024
#define MAX_TRAILERS     (16 * 1024)
/* Fields the plain head parser takes; an answer with more goes to libsoup. */
#define MAX_ANSWER_FIELDS 100
/* At most this much decoded body per read. */
#define MAX_READ         (64 * 1024)
/* Idle connections older than this are closed rather than reused: the
 * upstream's own idle timeout is about a minute. */
#define IDLE_MAX_US      (50 * G_USEC_PER_SEC)
/* Idle for less than this, a connection is reused without a liveness poll. */
#define FRESH_IDLE_US    (G_USEC_PER_SEC)
#define MAX_IDLE_PER_ORIGIN 256
/* Open and opening connections at most; further sends wait for a slot
 * (as SoupSession's max-conns did). Bounds descriptors under a burst. */
#define MAX_CONNECTIONS  512
#define SWEEP_SECONDS    15
#define CONNECT_TIMEOUT  30
#define IO_TIMEOUT       300

/* A step of an operation: runs again when its stream is ready. The
 * operation is a GObject: a GTask (sending), or the response it reads. */
typedef void (*Step) (gpointer op);

/* A step to run later, and the operation it runs on (a reference). */
typedef struct
{
  GObject *op;
  Step     step;
} Resume;

static Resume *
resume_new (GObject *op,
            Step     step)
{
  Resume *resume = g_new (Resume, 1);

  resume->op = op;
  resume->step = step;
  return resume;
}

static void
resume_free (gpointer data)
{
  Resume *resume = data;

  g_object_unref (resume->op);
  g_free (resume);
}

typedef struct
{
  PoolerUpstream *owner;          /* not a reference: a busy connection's send
                                   * task or response holds one */
  char           *origin;         /* "https://host:port" */
  GIOStream      *stream;
  GSocket        *socket;
  int             fd;             /* the socket's */
  gboolean        tls;            /* TLS under it: wait on the stream */
  gboolean        direct;         /* a bare socket connection: recv() on @fd */
  GInputStream   *in;             /* pollable */
  GOutputStream  *out;            /* pollable */
  guint8         *buf;
  gsize           start;          /* unread bytes are buf[start, end) */
  gsize           end;
  gint64          idle_since;
  gint64          last_io;        /* monotonic, of the last byte either way */
  guint           uses;
  gboolean        in_pool;
  gboolean        timed_out;      /* shut by the sweep after IO_TIMEOUT */
  gboolean        writing;        /* a send waits for the socket to take more */
  gboolean        drained;        /* a plain socket's last read was short: wait
                                   * for input before reading again */
  /* One source polls the connection for as long as it is read: creating
   * and destroying one per wait (and re-arming a socket timeout on every
   * dispatch) each wrote the main context's eventfd. */
  GSource        *watch;          /* TLS, or without a poller */
  PoolerWatch    *pwatch;         /* a plain socket, on the upstream's epoll set */
  GObject        *waiter;         /* the operation waiting for input, if any */
  Step            waiter_step;
  /* The waiters' cancellable as a source (no fd). It stays from one wait
   * to the next while they share the cancellable (the reads of one
   * answer), and goes when the connection is released or closed: making
   * one per wait (an SSE event each) cost a source, a signal handler and
   * a closure each time. It dispatches once when the cancellable is
   * cancelled, and again for each later wait (wait_readable()). */
  GSource        *waiter_cancel;
  GCancellable   *waiter_cancellable; /* what waiter_cancel watches; not a reference */
} Conn;

struct _PoolerUpstream
{
  GObject         parent_instance;

  GSocketClient  *plain;
  GSocketClient  *tls;
  GHashTable     *idle;           /* origin -> GQueue of Conn */
  GQueue          waiting;        /* send GTasks waiting for a slot (a reference each) */
  GHashTable     *conns;          /* every Conn, busy or idle (for the sweep) */
  guint           n_connections;  /* open, and being opened */
  guint           max_connections;
  guint           io_timeout;     /* seconds of silence a busy connection may keep */
  guint           n_idle;
  guint64         n_opened;
  guint           sweep_id;
  PoolerPoller   *poller;         /* NULL: sockets use GSources */
  struct _Target *last_target;    /* the last send's, kept for the next */
  GTlsDatabase   *tls_database;   /* NULL: the system's */
  /* Request heads' buffers, given back when their send is over: a head
   * with an account's token is 1.5-2.5 KB, and every malloc() of 1 KB or
   * more first folds glibc's fast bins together. */
  GMutex          spare_lock;
  GPtrArray      *spare_heads;    /* GString */
};

G_DEFINE_FINAL_TYPE (PoolerUpstream, pooler_upstream, G_TYPE_OBJECT)

typedef enum
{
  BODY_NONE,
  BODY_LENGTH,
  BODY_CHUNKED,
  BODY_EOF,
} BodyFraming;

typedef enum
{
  CHUNK_SIZE,
  CHUNK_DATA,
  CHUNK_DATA_END,
  CHUNK_TRAILER,
} ChunkState;

struct _PoolerUpstreamResponse
{
  GObject             parent_instance;

  PoolerUpstream     *upstream;
  Conn               *conn;       /* until the body's end or abandon */
  guint               status;
  PoolerHttpFields   *fields;          /* the answer's, as they came */
  SoupMessageHeaders *headers;         /* made from them when asked for */
  BodyFraming         framing;
  ChunkState          chunk_state;
  guint64             remaining;  /* BODY_LENGTH, CHUNK_DATA */
  gsize               trailer_bytes;
  gboolean            keep_alive;
  gboolean            finished;   /* the whole body was read */
  gboolean            reading;
  /* The read in progress: a callback, not a GTask, since it runs once
   * per streamed event (a task and its data cost ~3 000 instructions and
   * a dozen allocations each time). */
  GMainContext           *context;      /* the send's: where reads complete */
  PoolerUpstreamReadFunc  read_func;
  gpointer                read_data;
  GCancellable           *read_cancellable;
  GByteArray             *read_out;
  gboolean                read_starting; /* inside pooler_upstream_response_read() */
  /* A read that completed at once, handed over from an idle. */
  GSource                *read_idle;
  GBytes                 *read_bytes;
  GError                 *read_error;
};

G_DEFINE_FINAL_TYPE (PoolerUpstreamResponse, pooler_upstream_response, G_TYPE_OBJECT)

/* ------------------------------------------------------------------ */
/* Connections */

/* GSocketClient hands a TLS connection over wrapped in a
 * GTcpWrapperConnection (a GSocketConnection), never as itself. */
static gboolean
connection_is_tls (GSocketConnection *connection)
{
  GIOStream *stream = G_IO_STREAM (connection);

  if (G_IS_TCP_WRAPPER_CONNECTION (connection))
    stream = g_tcp_wrapper_connection_get_base_io_stream (G_TCP_WRAPPER_CONNECTION (connection));
  return G_IS_TLS_CONNECTION (stream);
}

static Conn *
conn_new (PoolerUpstream    *self,
          const char        *origin,
          GSocketConnection *connection)
{
  Conn *conn = g_new0 (Conn, 1);

  conn->owner = self;
  conn->origin = g_strdup (origin);
  conn->stream = G_IO_STREAM (connection);
  conn->socket = g_object_ref (g_socket_connection_get_socket (connection));
  conn->fd = g_socket_get_fd (conn->socket);
  conn->tls = connection_is_tls (connection);
  /* A wrapper (TLS, or a proxy's own stream) is read through its stream. */
  conn->direct = !G_IS_TCP_WRAPPER_CONNECTION (connection);
  conn->in = g_io_stream_get_input_stream (conn->stream);
  conn->out = g_io_stream_get_output_stream (conn->stream);
  conn->buf = g_malloc (READ_BUFFER);
  /* Counted in n_connections since its connect began. */
  /* Small writes (a chunk of a request) must not wait for an ACK. */
  g_socket_set_option (conn->socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
  /* Connecting is bounded by CONNECT_TIMEOUT. After that a stream may be
   * quiet for long while the model thinks, up to the Codex CLI's own idle
   * timeout, IO_TIMEOUT: the sweep enforces it (a GSocket timeout would
   * re-arm, and wake the main loop, on every dispatch). */
  g_socket_set_timeout (conn->socket, 0);
  conn->last_io = g_get_monotonic_time ();
  g_hash_table_add (self->conns, conn);
  self->n_opened++;

  return conn;
}

static void pooler_upstream_start_waiting (PoolerUpstream *self);
static void conn_close (Conn *conn);
static void pool_remove (PoolerUpstream *self,
                         Conn           *conn);

/* Runs the step waiting on @conn, if any (it may close @conn). */
static void
conn_wake (Conn *conn)
{
  GObject *op = g_steal_pointer (&conn->waiter);
  Step step = conn->waiter_step;

  if (op == NULL)
    return;
  step (op);
  g_object_unref (op);
}

/* The waiter's step sees the cancellation (its read fails with
 * G_IO_ERROR_CANCELLED). Nobody waiting: a later wait_readable() fires the
 * source again. */
static gboolean
read_cancelled (GCancellable *cancellable,
                gpointer      user_data)
{
  conn_wake (user_data);
  return G_SOURCE_CONTINUE;
}

/* Detaches and drops *@source, if any. */
static void
source_clear (GSource **source)
{
  if (*source == NULL)
    return;
  g_source_destroy (*source);
  g_clear_pointer (source, g_source_unref);
}

static void
conn_forget_cancellable (Conn *conn)
{
  source_clear (&conn->waiter_cancel);
  conn->waiter_cancellable = NULL;
}

static gboolean
resume_idle (gpointer user_data)
{
  Resume *resume = user_data;

  resume->step (resume->op);
  return G_SOURCE_REMOVE;
}

/* Stops polling @conn for input. */
static void
conn_stop_watch (Conn *conn)
{
  source_clear (&conn->watch);
  g_clear_pointer (&conn->pwatch, pooler_watch_free);
}

/* Stops watching @conn. A step still waiting runs in a later turn and
 * finds its connection gone. */
static void
conn_unwatch (Conn *conn)
{
  conn_stop_watch (conn);
  conn_forget_cancellable (conn);
  if (conn->waiter != NULL)
    {
      g_idle_add_full (G_PRIORITY_DEFAULT, resume_idle,
                       resume_new (g_steal_pointer (&conn->waiter), conn->waiter_step), resume_free);
    }
}

static gboolean
conn_readable (GObject  *pollable,
               gpointer  user_data)
{
  Conn *conn = user_data;

  if (conn->waiter != NULL)
    {
      /* @conn may be gone after this. */
      conn_wake (conn);
      return G_SOURCE_CONTINUE;
    }
  if (conn->in_pool)
    {
      /* An idle connection the upstream closed (or wrote to). */
      pool_remove (conn->owner, conn);
      conn_close (conn);
      return G_SOURCE_REMOVE;
    }
  /* Busy, but nobody reads now (the caller holds back): stop polling
   * until it reads again. */
  conn_stop_watch (conn);
  return G_SOURCE_REMOVE;
}

static gboolean
conn_socket_readable (GSocket      *socket,
                      GIOCondition  condition,
                      gpointer      user_data)
{
  return conn_readable (NULL, user_data);
}

static void
conn_poll_ready (GIOCondition  condition,
                 gpointer      user_data)
{
  conn_readable (NULL, user_data);
}

static void
conn_watch (Conn *conn)
{
  if (conn->watch != NULL || conn->pwatch != NULL)
    return;
  /* On the epoll set when there is one: GLib's own poll() takes every
   * descriptor of every source on every turn. */
  if (conn->owner != NULL && conn->owner->poller != NULL && !conn->tls)
    {
      conn->pwatch = pooler_watch_new (conn->owner->poller, conn->fd, G_IO_IN,
                                       conn_poll_ready, conn);
      if (conn->pwatch != NULL)
        return;
    }
  /* A plain connection is watched on its socket: a pollable stream's
   * source dispatches through a child source, and GLib 2.74 blocks a
   * dispatching source (its fd leaves the poll set and returns, each
   * time waking the context) unless it may recurse, which a child's
   * setting cannot be made. TLS needs the stream's own readiness: its
   * layer may hold what the socket no longer shows. */
  if (conn->tls)
    {
      conn->watch = g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (conn->in), NULL);
      g_source_set_callback (conn->watch, (GSourceFunc) (void (*) (void)) conn_readable, conn, NULL);
    }
  else
    {
      conn->watch = g_socket_create_source (conn->socket, G_IO_IN, NULL);
      g_source_set_callback (conn->watch, (GSourceFunc) (void (*) (void)) conn_socket_readable, conn, NULL);
    }
  g_source_set_can_recurse (conn->watch, TRUE);
  g_source_attach (conn->watch, g_main_context_get_thread_default ());
}

/* Closes and frees @conn; its slot goes to a waiting send. */
static void
conn_close (Conn *conn)
{
  PoolerUpstream *owner;

  if (conn == NULL)
    return;

  owner = conn->owner;
  if (owner != NULL)
    {
      owner->n_connections--;
      if (owner->conns != NULL)
        g_hash_table_remove (owner->conns, conn);
    }
  conn_unwatch (conn);
  /* The socket first: closing a TLS stream would otherwise try to send a
   * close_notify on a connection we are giving up on. */
  g_socket_close (conn->socket, NULL);
  g_object_unref (conn->socket);
  g_io_stream_close (conn->stream, NULL, NULL);
  g_object_unref (conn->stream);
  g_free (conn->origin);
  g_free (conn->buf);
  g_free (conn);

  if (owner != NULL)
    pooler_upstream_start_waiting (owner);
}

/* An idle connection the peer has closed (or written to, which a server
 * may not do between answers) is unusable. */
static gboolean
conn_is_stale (Conn  *conn,
               gint64 now)
{
  if (now - conn->idle_since > IDLE_MAX_US)
    return TRUE;
  /* Under load a connection is idle for microseconds: skip the poll()
   * (a reused connection that turns out closed is replaced anyway). */
  if (now - conn->idle_since < FRESH_IDLE_US)
    return FALSE;
  return g_socket_condition_check (conn->socket, G_IO_IN | G_IO_HUP | G_IO_ERR) != 0;
}

static void
conn_release (Conn *conn)
{
  PoolerUpstream *self = conn->owner;
  GQueue *queue;

  if (self == NULL || self->idle == NULL || conn->start != conn->end || conn->timed_out)
    {
      conn_close (conn);
      return;
    }

  queue = g_hash_table_lookup (self->idle, conn->origin);
  if (queue == NULL)
    {
      queue = g_queue_new ();
      g_hash_table_insert (self->idle, g_strdup (conn->origin), queue);
    }
  if (queue->length >= MAX_IDLE_PER_ORIGIN)
    {
      conn_close (conn);
      return;
    }

  conn->start = conn->end = 0;
  conn->idle_since = g_get_monotonic_time ();
  conn->in_pool = TRUE;
  /* The last answer's cancellable is not the next one's. */
  conn_forget_cancellable (conn);
  /* Most recently used first: the warmest connection is reused. The
   * watch (again, if a pause of the caller's removed it) sees the
   * upstream close it. */
  conn_watch (conn);
  g_queue_push_head (queue, conn);
  self->n_idle++;
  /* A send waiting for a slot may take it. */
  pooler_upstream_start_waiting (self);
}

static Conn *
conn_take_idle (PoolerUpstream *self,
                const char     *origin)
{
  GQueue *queue = g_hash_table_lookup (self->idle, origin);
  gint64 now = g_get_monotonic_time ();
  Conn *conn;

  while (queue != NULL && (conn = g_queue_pop_head (queue)) != NULL)
    {
      self->n_idle--;
      conn->in_pool = FALSE;
      if (!conn_is_stale (conn, now))
        {
          conn->last_io = now;
          return conn;
        }
      conn_close (conn);
    }

  return NULL;
}

static void
pool_remove (PoolerUpstream *self,
             Conn           *conn)
{
  GQueue *queue = g_hash_table_lookup (self->idle, conn->origin);

  if (queue != NULL && g_queue_remove (queue, conn))
    self->n_idle--;
  conn->in_pool = FALSE;
}

static void
idle_queue_free (gpointer data)
{
  GQueue *queue = data;
  Conn *conn;

  while ((conn = g_queue_pop_head (queue)) != NULL)
    conn_close (conn);
  g_queue_free (queue);
}

/* Takes the idle connections @all says (or the stale ones) out of the
 * pool, then closes them: closing hands slots to waiting sends, which
 * must find the pool consistent. */
static void
close_idle_where (PoolerUpstream *self,
                  gboolean        all)
{
  g_autoptr(GPtrArray) gone = g_ptr_array_new ();
  gint64 now = g_get_monotonic_time ();
  GHashTableIter iter;
  GQueue *queue;

  g_hash_table_iter_init (&iter, self->idle);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &queue))
    {
      for (GList *l = queue->head; l != NULL;)
        {
          GList *next = l->next;
          Conn *conn = l->data;

          if (all || conn_is_stale (conn, now))
            {
              g_queue_delete_link (queue, l);
              self->n_idle--;
              g_ptr_array_add (gone, conn);
            }
          l = next;
        }
    }

  for (guint i = 0; i < gone->len; i++)
    conn_close (g_ptr_array_index (gone, i));
}

/* Busy connections silent for IO_TIMEOUT: shut, which wakes their
 * reader with a timeout error. */
static void
shut_silent (PoolerUpstream *self)
{
  gint64 now = g_get_monotonic_time ();
  GHashTableIter iter;
  Conn *conn;

  g_hash_table_iter_init (&iter, self->conns);
  while (g_hash_table_iter_next (&iter, (gpointer *) &conn, NULL))
    {
      /* Only while waiting on the upstream: a connection the caller does
       * not read from (its own client is slow) is not silent. */
      if (conn->in_pool || conn->timed_out || (conn->waiter == NULL && !conn->writing) ||
          now - conn->last_io < (gint64) self->io_timeout * G_USEC_PER_SEC)
        continue;
      g_debug ("Upstream connection to %s silent for %u s; shutting it", conn->origin, self->io_timeout);
      conn->timed_out = TRUE;
      g_socket_shutdown (conn->socket, TRUE, TRUE, NULL);
    }
}

static gboolean
sweep_idle (gpointer user_data)
{
  pooler_upstream_sweep (user_data);
  return G_SOURCE_CONTINUE;
}

void
pooler_upstream_sweep (PoolerUpstream *self)
{
  g_return_if_fail (POOLER_IS_UPSTREAM (self));

  close_idle_where (self, FALSE);
  shut_silent (self);
}

void
pooler_upstream_set_io_timeout (PoolerUpstream *self,
                                guint           seconds)
{
  g_return_if_fail (POOLER_IS_UPSTREAM (self));
  g_return_if_fail (seconds > 0);

  self->io_timeout = seconds;
}

/* Makes room at the end of the read buffer (moving unread bytes down). */
static void
conn_make_room (Conn *conn)
{
  if (conn->start == conn->end)
    conn->start = conn->end = 0;
  else if (conn->end == READ_BUFFER && conn->start > 0)
    {
      memmove (conn->buf, conn->buf + conn->start, conn->end - conn->start);
      conn->end -= conn->start;
      conn->start = 0;
    }
}

/* One non-blocking read into the buffer: > 0 bytes read, 0 at EOF, -1 with
 * G_IO_ERROR_WOULD_BLOCK or another error. */
static gssize
conn_fill (Conn          *conn,
           GCancellable  *cancellable,
           GError       **error)
{
  gssize n;

  conn_make_room (conn);
  if (conn->end == READ_BUFFER)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
                           "The upstream's answer head or chunk line is too long");
      return -1;
    }

  if (!conn->direct)
    n = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (conn->in),
                                                  conn->buf + conn->end, READ_BUFFER - conn->end,
                                                  cancellable, error);
  else if (g_cancellable_set_error_if_cancelled (cancellable, error))
    n = -1;
  else
    {
      /* The socket itself: GIO's stream layers cost more than the
       * recv() (several type checks and calls per SSE event). */
      do
        n = recv (conn->fd, conn->buf + conn->end, READ_BUFFER - conn->end, 0);
      while (n < 0 && errno == EINTR);
      if (n < 0)
        {
          int saved = errno;

          /* The common case, asked for often: no message to format. */
          if (saved == EAGAIN || saved == EWOULDBLOCK)
            g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                                 "Nothing to receive yet");
          else
            g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                         "Error receiving data: %s", g_strerror (saved));
        }
    }
  if (n > 0)
    {
      /* Short: the socket is most likely empty now. (Not for TLS, whose
       * stream may hold more records than one read returns.) */
      conn->drained = (gsize) n < READ_BUFFER - conn->end && !conn->tls;
      conn->end += n;
      conn->last_io = g_get_monotonic_time ();
    }
  else if (conn->timed_out)
    {
      /* The sweep shut it: not a close of the upstream's, not retried. */
      g_clear_error (error);
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                           "The upstream sent nothing for too long");
      return -1;
    }
  return n;
}

static gboolean
resume_task (GObject  *pollable,
             gpointer  user_data)
{
  Resume *resume = user_data;

  resume->step (resume->op);
  return G_SOURCE_REMOVE;
}

/* Runs @step on @task once the pollable @source fires (or its
 * cancellable is cancelled); takes @source. */
static void
resume_when_ready (GSource *source,
                   GTask   *task,
                   Step     step)
{
  Resume *resume = resume_new (g_object_ref (G_OBJECT (task)), step);

  g_source_set_callback (source, (GSourceFunc) (void (*) (void)) resume_task, resume, resume_free);
  g_source_attach (source, g_task_get_context (task));
  g_source_unref (source);
}

/* Runs @step on @op when @conn has input (or @cancellable fires), on
 * @context. */
static void
wait_readable (Conn         *conn,
               GCancellable *cancellable,
               GMainContext *context,
               gpointer      op,
               Step          step)
{
  g_assert (conn->waiter == NULL);

  /* Silence counts from here: a pause of the caller's is not the
   * upstream's. */
  conn->last_io = g_get_monotonic_time ();
  conn->waiter = g_object_ref (op);
  conn->waiter_step = step;
  conn_watch (conn);
  if (cancellable != conn->waiter_cancellable ||
      (conn->waiter_cancel != NULL && g_source_get_context (conn->waiter_cancel) != context))
    {
      conn_forget_cancellable (conn);
      if (cancellable != NULL)
        {
          conn->waiter_cancellable = cancellable;
          conn->waiter_cancel = g_cancellable_source_new (cancellable);
          g_source_set_callback (conn->waiter_cancel, (GSourceFunc) (void (*) (void)) read_cancelled,
                                 conn, NULL);
          g_source_attach (conn->waiter_cancel, context);
        }
    }
  else if (cancellable != NULL && g_cancellable_is_cancelled (cancellable))
    {
      /* It fired already, while nobody waited. */
      g_source_set_ready_time (conn->waiter_cancel, 0);
    }
}

/* ------------------------------------------------------------------ */
/* Sending */

/* Where a request goes, parsed once per distinct URI (the proxy sends
 * to the same few all day): shared by the sends to it. */
typedef struct _Target Target;
struct _Target
{
  gatomicrefcount ref_count;
  char    *uri;
  char    *origin;        /* scheme://host:port: the idle pool's key */
  char    *request_line_target; /* path?query */
  char    *host_header;   /* host, [v6] and :port unless the default */
  int      port;
  gboolean tls;
};

static Target *
target_ref (Target *target)
{
  g_atomic_ref_count_inc (&target->ref_count);
  return target;
}

static void
target_unref (Target *target)
{
  if (target == NULL || !g_atomic_ref_count_dec (&target->ref_count))
    return;
  g_free (target->uri);
  g_free (target->origin);
  g_free (target->request_line_target);
  g_free (target->host_header);
  g_free (target);
}

static Target *
target_new (const char  *uri,
            GError     **error)
{
  g_autoptr(GUri) parsed = g_uri_parse (uri, SOUP_HTTP_URI_FLAGS, NULL);
  const char *scheme = parsed != NULL ? g_uri_get_scheme (parsed) : NULL;
  const char *host = parsed != NULL ? g_uri_get_host (parsed) : NULL;
  const char *path;
  const char *query;
  Target *target;
  gboolean literal_v6;

  if (parsed == NULL || host == NULL || *host == '\0' ||
      (g_strcmp0 (scheme, "http") != 0 && g_strcmp0 (scheme, "https") != 0))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "Not an http(s) URL: %s", uri);
      return NULL;
    }

  target = g_new0 (Target, 1);
  g_atomic_ref_count_init (&target->ref_count);
  target->uri = g_strdup (uri);
  target->tls = strcmp (scheme, "https") == 0;
  target->port = g_uri_get_port (parsed);
  if (target->port == -1)
    target->port = target->tls ? 443 : 80;
  target->origin = g_strdup_printf ("%s://%s:%d", scheme, host, target->port);
  path = g_uri_get_path (parsed);
  query = g_uri_get_query (parsed);
  target->request_line_target = g_strconcat (*path != '\0' ? path : "/", query != NULL ? "?" : NULL,
                                             query, NULL);
  literal_v6 = strchr (host, ':') != NULL;
  if (target->port == (target->tls ? 443 : 80))
    target->host_header = g_strconcat (literal_v6 ? "[" : "", host, literal_v6 ? "]" : "", NULL);
  else
    target->host_header = g_strdup_printf ("%s%s%s:%d", literal_v6 ? "[" : "", host,
                                           literal_v6 ? "]" : "", target->port);
  return target;
}

/* The last target, kept: most sends go where the last one went. */
static Target *
upstream_target (PoolerUpstream  *self,
                 const char      *uri,
                 GError         **error)
{
  Target *target;

  if (self->last_target != NULL && strcmp (self->last_target->uri, uri) == 0)
    return target_ref (self->last_target);

  target = target_new (uri, error);
  if (target == NULL)
    return NULL;
  g_clear_pointer (&self->last_target, target_unref);
  self->last_target = target_ref (target);
  return target;
}

struct _PoolerUpstreamRequest
{
  PoolerUpstream *upstream;
  Target         *target;
  GString        *head;
  gboolean        head_method;
  gboolean        body_method;  /* a bodyless one still says Content-Length: 0 */
};

typedef struct
{
  Target  *target;
  GString *head;             /* given back to the upstream when the send is over */
  GBytes *body;
  gsize   written;            /* of head + body */
  Conn   *conn;
  gboolean reused;
  gboolean retried;
  gboolean head_method;
  gulong   wait_cancel_id;    /* while waiting for a slot */
  GError  *write_error;       /* the upstream stopped taking the request:
                               * its answer, if it sent one, is read first */
  PoolerUpstream *upstream;   /* a reference: GTask drops its source
                               * object before its data, and closing
                               * @conn still counts it there */
} SendOp;

static void
free_head (gpointer head)
{
  g_string_free (head, TRUE);
}

#define MAX_SPARE_HEADS 64
#define HEAD_SIZE       2040   /* GString rounds it to 2 KB */
#define MAX_HEAD_KEPT   (16 * 1024)

static GString *
take_head (PoolerUpstream *self)
{
  GString *head = NULL;

  g_mutex_lock (&self->spare_lock);
  if (self->spare_heads->len > 0)
    head = g_ptr_array_steal_index_fast (self->spare_heads, self->spare_heads->len - 1);
  g_mutex_unlock (&self->spare_lock);

  return head != NULL ? head : g_string_sized_new (HEAD_SIZE);
}

static void
give_head (PoolerUpstream *self,
           GString        *head)
{
  if (head->allocated_len <= MAX_HEAD_KEPT)
    {
      g_string_truncate (head, 0);
      g_mutex_lock (&self->spare_lock);
      if (self->spare_heads->len < MAX_SPARE_HEADS)
        {
          g_ptr_array_add (self->spare_heads, head);
          head = NULL;
        }
      g_mutex_unlock (&self->spare_lock);
    }
  if (head != NULL)
    g_string_free (head, TRUE);
}

static void
send_op_free (gpointer data)
{
  SendOp *op = data;

  conn_close (op->conn);
  give_head (op->upstream, op->head);
  g_clear_object (&op->upstream);
  g_clear_pointer (&op->target, target_unref);
  g_clear_pointer (&op->body, g_bytes_unref);
  g_clear_error (&op->write_error);
  g_free (op);
}

static void send_start (GTask *task);
static void send_write (gpointer op_task);
static void send_read_head (gpointer op_task);

/* The names the upstream client writes itself, never a caller. */
static const char * const own_headers[] = {
  "host", "content-length", "connection", "transfer-encoding", "accept-encoding", NULL
};

PoolerUpstreamRequest *
pooler_upstream_request_new (PoolerUpstream  *self,
                             const char      *method,
                             const char      *uri,
                             GError         **error)
{
  PoolerUpstreamRequest *request;
  Target *target;

  g_return_val_if_fail (POOLER_IS_UPSTREAM (self), NULL);
  g_return_val_if_fail (method != NULL && uri != NULL, NULL);

  target = upstream_target (self, uri, error);
  if (target == NULL)
    return NULL;

  request = g_new0 (PoolerUpstreamRequest, 1);
  request->upstream = g_object_ref (self);
  request->target = target;
  request->head_method = strcmp (method, "HEAD") == 0;
  request->body_method = strcmp (method, "POST") == 0 || strcmp (method, "PUT") == 0 ||
                         strcmp (method, "PATCH") == 0;
  /* Plain appends, not printf: this runs for every request. With an
   * account's token a head is 1.5-2.5 KB: a buffer of that size, reused
   * (take_head()), not the growths to it. */
  request->head = take_head (self);
  g_string_append (request->head, method);
  g_string_append_c (request->head, ' ');
  g_string_append (request->head, target->request_line_target);
  g_string_append (request->head, " HTTP/1.1\r\nHost: ");
  g_string_append (request->head, target->host_header);
  g_string_append (request->head, "\r\n");

  return request;
}

void
pooler_upstream_request_add_header (PoolerUpstreamRequest *request,
                                    const char            *name,
                                    const char            *value)
{
  g_return_if_fail (request != NULL && name != NULL && value != NULL);

  if (*name == '\0' || pooler_http_name_in (name, own_headers) || strpbrk (value, "\r\n") != NULL)
    return;
  /* A token (RFC 9110 5.1): "Transfer-Encoding :" or a space inside a
   * name would read differently to a lenient server. */
  for (const char *p = name; *p != '\0'; p++)
    if (!pooler_http_is_tchar ((guchar) *p))
      return;
  g_string_append (request->head, name);
  g_string_append_len (request->head, ": ", 2);
  g_string_append (request->head, value);
  g_string_append_len (request->head, "\r\n", 2);
}

void
pooler_upstream_request_add_bearer (PoolerUpstreamRequest *request,
                                    const char            *token)
{
  g_return_if_fail (request != NULL && token != NULL);

  if (strpbrk (token, "\r\n") != NULL)
    return;
  g_string_append (request->head, "Authorization: Bearer ");
  g_string_append (request->head, token);
  g_string_append_len (request->head, "\r\n", 2);
}

void
pooler_upstream_request_free (PoolerUpstreamRequest *request)
{
  if (request == NULL)
    return;
  if (request->head != NULL)
    give_head (request->upstream, request->head);
  g_clear_object (&request->upstream);
  g_clear_pointer (&request->target, target_unref);
  g_free (request);
}

static void
connected_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  SendOp *op = g_task_get_task_data (task);
  PoolerUpstream *self = g_task_get_source_object (task);
  g_autoptr(GError) error = NULL;
  GSocketConnection *connection;

  connection = g_socket_client_connect_to_uri_finish (G_SOCKET_CLIENT (object), result, &error);
  if (connection == NULL)
    {
      self->n_connections--;
      g_task_return_error (task, g_steal_pointer (&error));
      pooler_upstream_start_waiting (self);
      return;
    }

  op->conn = conn_new (self, op->target->origin, connection);
  op->reused = FALSE;
  send_write (task);
}

static gboolean
drop_cancelled_waiter (gpointer user_data)
{
  GTask *task = user_data;
  PoolerUpstream *self = g_task_get_source_object (task);
  SendOp *op = g_task_get_task_data (task);

  if (g_queue_remove (&self->waiting, task))
    {
      g_cancellable_disconnect (g_task_get_cancellable (task), op->wait_cancel_id);
      op->wait_cancel_id = 0;
      g_task_return_error_if_cancelled (task);
      g_object_unref (task);   /* the queue's */
    }
  return G_SOURCE_REMOVE;
}

/* In the cancelling call: only schedule (a GCancellable handler must not
 * disconnect itself). */
static void
waiter_cancelled (GCancellable *cancellable,
                  gpointer      user_data)
{
  g_idle_add_full (G_PRIORITY_DEFAULT, drop_cancelled_waiter,
                   g_object_ref (user_data), g_object_unref);
}

static void
send_wait_for_slot (GTask *task)
{
  PoolerUpstream *self = g_task_get_source_object (task);
  SendOp *op = g_task_get_task_data (task);
  GCancellable *cancellable = g_task_get_cancellable (task);

  g_debug ("%u upstream connections open; a request waits for one", self->n_connections);
  g_queue_push_tail (&self->waiting, g_object_ref (task));
  if (cancellable != NULL)
    op->wait_cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (waiter_cancelled), task, NULL);
}

/* Hands free slots (or idle connections) to waiting sends, oldest first. */
static void
pooler_upstream_start_waiting (PoolerUpstream *self)
{
  while (self->waiting.length > 0 &&
         (self->n_connections < self->max_connections || self->n_idle > 0))
    {
      GTask *task = g_queue_pop_head (&self->waiting);
      SendOp *op = g_task_get_task_data (task);
      guint before = self->waiting.length;

      if (op->wait_cancel_id != 0)
        g_cancellable_disconnect (g_task_get_cancellable (task), op->wait_cancel_id);
      op->wait_cancel_id = 0;
      if (!g_task_return_error_if_cancelled (task))
        send_start (task);
      g_object_unref (task);
      /* Only idle connections of other origins: they are not ours. */
      if (self->n_connections >= self->max_connections && self->waiting.length > before)
        break;
    }
}

static void
send_start (GTask *task)
{
  PoolerUpstream *self = g_task_get_source_object (task);
  SendOp *op = g_task_get_task_data (task);

  op->written = 0;
  /* A retry goes out on a new connection: the upstream may have closed
   * every idle one at once. */
  op->conn = op->retried ? NULL : conn_take_idle (self, op->target->origin);
  if (op->conn != NULL)
    {
      op->reused = TRUE;
      op->conn->uses++;
      send_write (task);
      return;
    }

  /* By URI, so that a proxy configured for http(s) applies. */
  if (self->n_connections >= self->max_connections)
    {
      send_wait_for_slot (task);
      return;
    }

  self->n_connections++;
  g_socket_client_connect_to_uri_async (op->target->tls ? self->tls : self->plain, op->target->uri,
                                        op->target->port,
                                        g_task_get_cancellable (task), connected_cb,
                                        g_object_ref (task));
}

/* A reused connection that failed before any answer byte: the upstream
 * closed it while it sat idle. One fresh connection, then the error. */
static gboolean
retry_on_fresh_connection (GTask  *task,
                           GError *error)
{
  SendOp *op = g_task_get_task_data (task);

  /* Only a connection the upstream closed (EOF, reset, broken pipe; over
   * TLS also a close without the close notice, which servers that just
   * shut an idle socket send) before any answer byte: a timeout or another
   * error may mean the upstream has the request, and a POST is never sent
   * twice. */
  if (!op->reused || op->retried || op->conn->end > 0 || op->conn->timed_out ||
      !(g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED) ||
        g_error_matches (error, G_TLS_ERROR, G_TLS_ERROR_EOF)))
    return FALSE;

  g_debug ("Reused upstream connection to %s failed (%s); opening a new one",
           op->target->origin, error->message);
  op->retried = TRUE;
  g_clear_pointer (&op->conn, conn_close);
  send_start (task);
  return TRUE;
}

static void
send_fail (GTask  *task,
           GError *error)
{
  SendOp *op = g_task_get_task_data (task);

  if (op->conn != NULL && op->conn->timed_out &&
      !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    {
      g_error_free (error);
      error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                   "The upstream took nothing for too long");
    }
  if (retry_on_fresh_connection (task, error))
    {
      g_error_free (error);
      return;
    }
  g_task_return_error (task, error);
}

static void
send_write (gpointer op_task)
{
  GTask *task = op_task;
  SendOp *op = g_task_get_task_data (task);
  gsize head_size = op->head->len;
  gsize body_size = op->body != NULL ? g_bytes_get_size (op->body) : 0;

  op->conn->writing = FALSE;
  while (op->written < head_size + body_size)
    {
      GOutputVector vectors[2];
      guint n = 0;
      gsize wrote = 0;
      GError *error = NULL;
      GPollableReturn ret;

      if (op->written < head_size)
        {
          vectors[n].buffer = (const guint8 *) op->head->str + op->written;
          vectors[n++].size = head_size - op->written;
        }
      if (body_size > 0)
        {
          gsize body_done = op->written > head_size ? op->written - head_size : 0;

          vectors[n].buffer = (const guint8 *) g_bytes_get_data (op->body, NULL) + body_done;
          vectors[n++].size = body_size - body_done;
        }

      ret = g_pollable_output_stream_writev_nonblocking (G_POLLABLE_OUTPUT_STREAM (op->conn->out),
                                                         vectors, n, &wrote,
                                                         g_task_get_cancellable (task), &error);
      if (ret == G_POLLABLE_RETURN_WOULD_BLOCK)
        {
          op->conn->writing = TRUE;
          resume_when_ready (g_pollable_output_stream_create_source (G_POLLABLE_OUTPUT_STREAM (op->conn->out),
                                                                     g_task_get_cancellable (task)),
                             task, send_write);
          return;
        }
      if (ret == G_POLLABLE_RETURN_FAILED)
        {
          /* Closed or reset while the request was going out: an auth
           * layer or a limiter may have answered from the head alone (a
           * 401, 413 or 429) and closed without reading the rest. That
           * answer is the upstream's word; only without one is this a
           * failed send. */
          if (op->written > 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED))
            {
              op->write_error = error;
              send_read_head (task);
              return;
            }
          send_fail (task, error);
          return;
        }
      op->written += wrote;
      op->conn->last_io = g_get_monotonic_time ();
    }

  /* A plain socket with nothing buffered (every plain one: a connection
   * is released only when drained): the answer is next to never there
   * yet (the upstream has hardly been woken to read the request), so wait
   * on the epoll set for it rather than spend a recv() on EAGAIN per
   * request; a perf trace of 16 streams showed one such recv() after
   * every upstream write. TLS may hold a record already. */
  if (op->conn->direct && op->conn->start == op->conn->end)
    {
      wait_readable (op->conn, g_task_get_cancellable (task), g_task_get_context (task), task, send_read_head);
      return;
    }
  send_read_head (task);
}

/* Whether the connection can carry another request after this answer. */
static gboolean
answer_keeps_alive (SoupHTTPVersion     version,
                    SoupMessageHeaders *headers,
                    BodyFraming         framing)
{
  if (framing == BODY_EOF)
    return FALSE;
  if (soup_message_headers_header_contains (headers, "Connection", "close"))
    return FALSE;
  if (version == SOUP_HTTP_1_0)
    return soup_message_headers_header_contains (headers, "Connection", "keep-alive");
  return TRUE;
}

/* The fields that frame the body and say whether the connection stays,
 * as SoupMessageHeaders: libsoup's own rules then read them, exactly as
 * when it had all the fields, for the price of these few. */
static SoupMessageHeaders *
framing_headers_of (const PoolerHttpFields *fields)
{
  static const char * const framing[] = { "transfer-encoding", "content-length", "connection", NULL };
  SoupMessageHeaders *headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  guint n = pooler_http_fields_get_n (fields);

  for (guint i = 0; i < n; i++)
    {
      const PoolerHttpField *field = pooler_http_fields_get (fields, i);

      if (pooler_http_name_in (field->name, framing))
        soup_message_headers_append (headers, field->name, field->value);
    }

  return headers;
}

/* Parses the head at the start of the buffer (@length bytes, with its
 * blank line). Returns FALSE and @error when it is not an HTTP answer. */
static gboolean
parse_answer (GTask  *task,
              gsize   length,
              GError **error)
{
  SendOp *op = g_task_get_task_data (task);
  Conn *conn = op->conn;
  const char *head = (const char *) conn->buf + conn->start;
  const char *field_lines;
  g_autoptr(PoolerHttpFields) fields = NULL;
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(SoupMessageHeaders) framing = NULL;
  g_autoptr(PoolerUpstreamResponse) response = NULL;
  SoupHTTPVersion version = SOUP_HTTP_1_1;
  guint status = 0;
  SoupEncoding encoding;

  /* The plain case into PoolerHttpFields, without libsoup's copies;
   * anything else as libsoup makes of it. */
  field_lines = pooler_http_parse_status_line (head, length, &status);
  if (field_lines != NULL)
    fields = pooler_http_fields_parse (field_lines, head + length, MAX_ANSWER_FIELDS,
                                       POOLER_HTTP_FIELDS_ASCII_ONLY);
  if (fields == NULL)
    {
      headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
      if (!soup_headers_parse_response (head, (int) length, headers, &version, &status, NULL))
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                               "The upstream's answer is not HTTP");
          return FALSE;
        }
      fields = pooler_http_fields_new_from_soup (headers);
      framing = soup_message_headers_ref (headers);
    }
  else
    framing = framing_headers_of (fields);
  conn->start += length;

  /* 1xx: an interim answer; the real one follows. */
  if (status >= 100 && status < 200)
    return TRUE;

  response = g_object_new (POOLER_TYPE_UPSTREAM_RESPONSE, NULL);
  response->upstream = g_object_ref (g_task_get_source_object (task));
  response->context = g_main_context_ref (g_task_get_context (task));
  response->status = status;
  response->fields = g_steal_pointer (&fields);
  response->headers = g_steal_pointer (&headers);

  encoding = soup_message_headers_get_encoding (framing);
  if (op->head_method || status == 204 || status == 304)
    response->framing = BODY_NONE;
  else if (encoding == SOUP_ENCODING_CHUNKED)
    response->framing = BODY_CHUNKED;
  else if (encoding == SOUP_ENCODING_CONTENT_LENGTH)
    {
      response->framing = BODY_LENGTH;
      response->remaining = soup_message_headers_get_content_length (framing);
    }
  else if (encoding == SOUP_ENCODING_EOF)
    response->framing = BODY_EOF;
  else if (encoding == SOUP_ENCODING_NONE)
    response->framing = BODY_NONE;
  else
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "The upstream's answer has an unknown Transfer-Encoding");
      return FALSE;
    }
  if (response->framing == BODY_LENGTH && response->remaining == 0)
    response->framing = BODY_NONE;
  /* Not after the request was cut short: the connection is broken. */
  response->keep_alive = answer_keeps_alive (version, framing, response->framing) && op->write_error == NULL;
  response->conn = g_steal_pointer (&op->conn);

  g_task_return_pointer (task, g_steal_pointer (&response), g_object_unref);
  return TRUE;
}

static void
send_read_head (gpointer op_task)
{
  GTask *task = op_task;
  SendOp *op = g_task_get_task_data (task);

  while (op->conn != NULL)
    {
      Conn *conn = op->conn;
      const guint8 *data = conn->buf + conn->start;
      gsize avail = conn->end - conn->start;
      const guint8 *blank = pooler_http_find_blank_line (data, avail);
      GError *error = NULL;
      gssize n;

      if (blank != NULL)
        {
          if (!parse_answer (task, blank + 4 - data, &error))
            {
              g_task_return_error (task, error);
              return;
            }
          continue;   /* after a 1xx; otherwise op->conn is now NULL */
        }
      /* A head larger than the buffer fails in conn_fill(). */
      n = conn_fill (conn, g_task_get_cancellable (task), &error);
      if (n > 0)
        continue;
      if (n == 0)
        error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                     "The upstream closed the connection without answering");
      else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          g_error_free (error);
          wait_readable (conn, g_task_get_cancellable (task), g_task_get_context (task), task, send_read_head);
          return;
        }
      /* No answer after a failed write: the write's error says what
       * happened. */
      if (op->write_error != NULL)
        {
          g_error_free (error);
          error = g_steal_pointer (&op->write_error);
        }
      send_fail (task, error);
      return;
    }
}

void
pooler_upstream_request_send_async (PoolerUpstreamRequest *request,
                                    GBytes                *body,
                                    GCancellable          *cancellable,
                                    GAsyncReadyCallback    callback,
                                    gpointer               user_data)
{
  g_autoptr(GTask) task = NULL;
  PoolerUpstream *self;
  SendOp *op;
  char digits[POOLER_HTTP_DECIMAL_SIZE];

  g_return_if_fail (request != NULL);

  self = request->upstream;
  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, pooler_upstream_send_async);
  /* An answer that arrived in the very turn its cancellable was cancelled
   * is still handed over (the caller decides whether it came in time). */
  g_task_set_check_cancellable (task, FALSE);
  /* An answer (or a failure) that comes within the turn that sent the
   * request is handed over from an idle of this priority: ahead of the
   * next turn's new requests and events, not behind all of them. On a
   * plain socket the answer is always read in a later turn (send_write()
   * waits for it), which GTask hands over at once; TLS and proxied
   * connections, and errors, may still finish in the sending turn. Once
   * per request; reads keep the default priority, as a fast answer's
   * reads could otherwise chain such idles and starve everything else. */
  g_task_set_priority (task, G_PRIORITY_HIGH);

  /* Bodies are read as they are (the SSE observer needs plain text). */
  g_string_append (request->head, "Accept-Encoding: identity\r\n");
  if (body != NULL)
    {
      g_string_append (request->head, "Content-Length: ");
      g_string_append_len (request->head, digits, (gssize) pooler_http_format_decimal (digits, g_bytes_get_size (body)));
      g_string_append_len (request->head, "\r\n", 2);
    }
  else if (request->body_method)
    g_string_append (request->head, "Content-Length: 0\r\n");
  g_string_append_len (request->head, "\r\n", 2);

  op = g_new0 (SendOp, 1);
  op->target = g_steal_pointer (&request->target);
  op->head_method = request->head_method;
  op->head = g_steal_pointer (&request->head);
  op->body = body != NULL && g_bytes_get_size (body) > 0 ? g_bytes_ref (body) : NULL;
  op->upstream = g_object_ref (self);
  g_task_set_task_data (task, op, send_op_free);
  pooler_upstream_request_free (request);

  send_start (task);
}

void
pooler_upstream_send_async (PoolerUpstream      *self,
                            const char          *method,
                            const char          *uri,
                            SoupMessageHeaders  *headers,
                            GBytes              *body,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  PoolerUpstreamRequest *request;
  g_autoptr(GError) error = NULL;
  SoupMessageHeadersIter iter;
  const char *name;
  const char *value;

  g_return_if_fail (POOLER_IS_UPSTREAM (self));
  g_return_if_fail (method != NULL && uri != NULL);

  request = pooler_upstream_request_new (self, method, uri, &error);
  if (request == NULL)
    {
      g_task_report_error (self, callback, user_data, pooler_upstream_send_async,
                           g_steal_pointer (&error));
      return;
    }
  if (headers != NULL)
    {
      soup_message_headers_iter_init (&iter, headers);
      while (soup_message_headers_iter_next (&iter, &name, &value))
        pooler_upstream_request_add_header (request, name, value);
    }
  pooler_upstream_request_send_async (request, body, cancellable, callback, user_data);
}

PoolerUpstreamResponse *
pooler_upstream_send_finish (PoolerUpstream  *self,
                             GAsyncResult    *result,
                             GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ------------------------------------------------------------------ */
/* Reading the body */

/* Ends the body: the connection goes back to the pool when it can. */
static void
response_finish (PoolerUpstreamResponse *self)
{
  Conn *conn = g_steal_pointer (&self->conn);

  self->finished = TRUE;
  if (conn == NULL)
    return;
  if (self->keep_alive)
    conn_release (conn);
  else
    conn_close (conn);
}

/* Index of the first "\n" in @data[0, @length), or -1. */
static gssize
find_line_end (const guint8 *data,
               gsize         length)
{
  const guint8 *nl = memchr (data, '\n', length);

  return nl != NULL ? nl - data : -1;
}

/* Moves up to the remaining bytes of a sized body or chunk from @data
 * (@avail bytes at the buffer's start) to @out; TRUE once none remain. */
static gboolean
take_counted (PoolerUpstreamResponse *self,
              GByteArray             *out,
              const guint8           *data,
              gsize                   avail)
{
  gsize take = MIN (MIN (avail, MAX_READ - out->len), self->remaining);

  g_byte_array_append (out, data, take);
  self->conn->start += take;
  self->remaining -= take;
  return self->remaining == 0;
}

/* Moves decoded body bytes from the connection's buffer into @out.
 * Returns FALSE and @error on a malformed chunked body. */
static gboolean
decode (PoolerUpstreamResponse  *self,
        GByteArray              *out,
        GError                 **error)
{
  Conn *conn = self->conn;

  while (!self->finished && conn->start < conn->end && out->len < MAX_READ)
    {
      const guint8 *data = conn->buf + conn->start;
      gsize avail = conn->end - conn->start;
      gsize take;
      gssize line;

      switch (self->framing)
        {
        case BODY_NONE:
          response_finish (self);
          return TRUE;

        case BODY_EOF:
          take = MIN (avail, MAX_READ - out->len);
          g_byte_array_append (out, data, take);
          conn->start += take;
          break;

        case BODY_LENGTH:
          if (take_counted (self, out, data, avail))
            response_finish (self);
          break;

        case BODY_CHUNKED:
          switch (self->chunk_state)
            {
            case CHUNK_SIZE:
              {
                guint64 size = 0;
                guint digits = 0;

                line = find_line_end (data, MIN (avail, MAX_CHUNK_LINE));
                if (line < 0)
                  {
                    if (avail >= MAX_CHUNK_LINE)
                      goto bad_chunk;
                    return TRUE;   /* need more */
                  }
                for (gssize i = 0; i < line && g_ascii_isxdigit (data[i]); i++, digits++)
                  {
                    if (size >> 60)
                      goto bad_chunk;
                    size = (size << 4) | (guint64) g_ascii_xdigit_value (data[i]);
                  }
                if (digits == 0)
                  goto bad_chunk;
                conn->start += line + 1;
                if (size == 0)
                  self->chunk_state = CHUNK_TRAILER;
                else
                  {
                    self->chunk_state = CHUNK_DATA;
                    self->remaining = size;
                  }
              }
              break;

            case CHUNK_DATA:
              if (take_counted (self, out, data, avail))
                self->chunk_state = CHUNK_DATA_END;
              break;

            case CHUNK_DATA_END:
              if (data[0] == '\n')
                conn->start += 1;
              else if (avail < 2)
                return TRUE;
              else if (data[0] == '\r' && data[1] == '\n')
                conn->start += 2;
              else
                goto bad_chunk;
              self->chunk_state = CHUNK_SIZE;
              break;

            case CHUNK_TRAILER:
              line = find_line_end (data, avail);
              if (line < 0)
                {
                  if (self->trailer_bytes + avail > MAX_TRAILERS)
                    goto bad_chunk;
                  return TRUE;
                }
              conn->start += line + 1;
              self->trailer_bytes += line + 1;
              if (self->trailer_bytes > MAX_TRAILERS)
                goto bad_chunk;
              if (line == 0 || (line == 1 && data[0] == '\r'))
                response_finish (self);
              break;

            default:
              g_assert_not_reached ();
            }
          break;

        default:
          g_assert_not_reached ();
        }
    }

  if (!self->finished && self->framing == BODY_NONE)
    response_finish (self);
  return TRUE;

bad_chunk:
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       "The upstream's chunked answer is malformed");
  return FALSE;
}

static gboolean
response_read_idle (gpointer user_data)
{
  PoolerUpstreamResponse *self = user_data;
  PoolerUpstreamReadFunc func = g_steal_pointer (&self->read_func);
  gpointer data = g_steal_pointer (&self->read_data);
  g_autoptr(GBytes) bytes = g_steal_pointer (&self->read_bytes);
  g_autoptr(GError) error = g_steal_pointer (&self->read_error);

  g_clear_pointer (&self->read_idle, g_source_unref);
  self->reading = FALSE;
  func (self, bytes, error, data);
  return G_SOURCE_REMOVE;
}

/* Ends the read in progress with @bytes or @error (both taken). */
static void
response_read_return (PoolerUpstreamResponse *self,
                      GBytes                 *bytes,
                      GError                 *error)
{
  g_autoptr(GCancellable) cancellable = g_steal_pointer (&self->read_cancellable);
  g_autoptr(PoolerUpstreamResponse) hold G_GNUC_UNUSED = g_object_ref (self);
  PoolerUpstreamReadFunc func;
  gpointer data;

  /* As a GTask would: a read whose cancellable was cancelled reports
   * that, whatever it read meanwhile. */
  if (error == NULL && g_cancellable_is_cancelled (cancellable))
    {
      g_clear_pointer (&bytes, g_bytes_unref);
      error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "Operation was cancelled");
    }
  /* The rest of this answer will never be read: the connection goes. */
  if (error != NULL)
    g_clear_pointer (&self->conn, conn_close);

  if (self->read_starting)
    {
      /* Never from within pooler_upstream_response_read(): the caller
       * is not ready for its callback yet. */
      self->read_bytes = bytes;
      self->read_error = error;
      self->read_idle = g_idle_source_new ();
      g_source_set_priority (self->read_idle, G_PRIORITY_DEFAULT);
      g_source_set_callback (self->read_idle, response_read_idle, g_object_ref (self), g_object_unref);
      g_source_attach (self->read_idle, self->context);
      return;
    }

  func = g_steal_pointer (&self->read_func);
  data = g_steal_pointer (&self->read_data);
  self->reading = FALSE;
  func (self, bytes, error, data);
  g_clear_pointer (&bytes, g_bytes_unref);
  g_clear_error (&error);
}

static void
response_read_step (gpointer data)
{
  PoolerUpstreamResponse *self = data;
  GByteArray *out;

  if (self->read_out == NULL)
    self->read_out = g_byte_array_new ();
  out = self->read_out;

  for (;;)
    {
      GError *error = NULL;
      gssize n;

      if (self->conn == NULL && !self->finished)
        {
          g_clear_pointer (&self->read_out, g_byte_array_unref);
          response_read_return (self, NULL,
                                g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CLOSED,
                                                     "The upstream answer was abandoned"));
          return;
        }
      /* Room for what is buffered (grown again if a later fill brings
       * more before anything is decoded): an SSE event is a few hundred
       * bytes, and a 4 KB block each time cost more than the copy. */
      if (!self->finished && out->len == 0 && self->conn->end > self->conn->start)
        {
          g_byte_array_set_size (out, MIN (self->conn->end - self->conn->start, MAX_READ));
          g_byte_array_set_size (out, 0);
        }
      if (!self->finished && !decode (self, out, &error))
        {
          g_clear_pointer (&self->read_out, g_byte_array_unref);
          response_read_return (self, NULL, error);
          return;
        }
      if (out->len > 0 || self->finished)
        {
          self->read_out = NULL;
          response_read_return (self, g_byte_array_free_to_bytes (out), NULL);
          return;
        }

      /* A read now would only say EAGAIN: wait (level-triggered, so input
       * that came meanwhile wakes it at once). One syscall less per SSE
       * event. */
      if (self->conn->drained)
        {
          self->conn->drained = FALSE;
          wait_readable (self->conn, self->read_cancellable, self->context, self, response_read_step);
          return;
        }

      n = conn_fill (self->conn, self->read_cancellable, &error);
      if (n > 0)
        continue;
      if (n == 0)
        {
          if (self->framing == BODY_EOF)
            {
              response_finish (self);
              continue;
            }
          g_clear_pointer (&self->read_out, g_byte_array_unref);
          response_read_return (self, NULL,
                                g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                                     "The upstream closed the connection mid-answer"));
          return;
        }
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          g_error_free (error);
          wait_readable (self->conn, self->read_cancellable, self->context, self, response_read_step);
          return;
        }
      /* A body framed by the connection's end, over TLS, from a server
       * that shut its socket without the close notice: as whole as it
       * would be over plain HTTP (and as browsers and libsoup take it).
       * Where the framing gives the length, that close stays an error. */
      if (self->framing == BODY_EOF && g_error_matches (error, G_TLS_ERROR, G_TLS_ERROR_EOF))
        {
          g_clear_error (&error);
          response_finish (self);
          continue;
        }
      g_clear_pointer (&self->read_out, g_byte_array_unref);
      response_read_return (self, NULL, error);
      return;
    }
}

void
pooler_upstream_response_read (PoolerUpstreamResponse *self,
                               GCancellable           *cancellable,
                               PoolerUpstreamReadFunc  func,
                               gpointer                user_data)
{
  g_return_if_fail (POOLER_IS_UPSTREAM_RESPONSE (self));
  g_return_if_fail (func != NULL);
  g_return_if_fail (!self->reading);

  self->reading = TRUE;
  self->read_func = func;
  self->read_data = user_data;
  g_set_object (&self->read_cancellable, cancellable);
  self->read_starting = TRUE;
  response_read_step (self);
  self->read_starting = FALSE;
}

GBytes *
pooler_upstream_response_read_buffered (PoolerUpstreamResponse *self)
{
  g_autoptr(GByteArray) out = NULL;
  g_autoptr(GError) error = NULL;

  g_return_val_if_fail (POOLER_IS_UPSTREAM_RESPONSE (self), NULL);

  if (self->reading || (self->conn == NULL && !self->finished))
    return NULL;
  if (self->finished)
    return g_bytes_new (NULL, 0);
  /* Nothing read and not decoded yet: nothing to decode (asked once per
   * streamed event, so no allocation for it). */
  if (self->conn->start == self->conn->end)
    return NULL;

  /* Decoded, the body is no longer than what was read: one allocation,
   * not a growth through the powers of two to it. */
  out = g_byte_array_sized_new ((guint) MIN (self->conn->end - self->conn->start, MAX_READ));
  /* A malformed body stops decode() where it is; the asynchronous read
   * meets it again and reports it. What came before it is returned. */
  decode (self, out, &error);
  if (out->len > 0)
    return g_byte_array_free_to_bytes (g_steal_pointer (&out));
  if (self->finished)
    return g_bytes_new (NULL, 0);
  return NULL;
}

void
pooler_upstream_response_abandon (PoolerUpstreamResponse *self)
{
  g_return_if_fail (POOLER_IS_UPSTREAM_RESPONSE (self));

  if (self->finished)
    return;
  g_clear_pointer (&self->conn, conn_close);
}

guint
pooler_upstream_response_get_status (PoolerUpstreamResponse *self)
{
  g_return_val_if_fail (POOLER_IS_UPSTREAM_RESPONSE (self), 0);

  return self->status;
}

SoupMessageHeaders *
pooler_upstream_response_get_headers (PoolerUpstreamResponse *self)
{
  g_return_val_if_fail (POOLER_IS_UPSTREAM_RESPONSE (self), NULL);

  if (self->headers == NULL)
    self->headers = pooler_http_fields_to_soup (self->fields, SOUP_MESSAGE_HEADERS_RESPONSE);
  return self->headers;
}

const PoolerHttpFields *
pooler_upstream_response_get_fields (PoolerUpstreamResponse *self)
{
  g_return_val_if_fail (POOLER_IS_UPSTREAM_RESPONSE (self), NULL);

  return self->fields;
}

static void
pooler_upstream_response_dispose (GObject *object)
{
  PoolerUpstreamResponse *self = POOLER_UPSTREAM_RESPONSE (object);

  /* Unread body bytes would still arrive on the connection. */
  g_clear_pointer (&self->conn, conn_close);
  g_clear_object (&self->upstream);

  G_OBJECT_CLASS (pooler_upstream_response_parent_class)->dispose (object);
}

static void
pooler_upstream_response_finalize (GObject *object)
{
  PoolerUpstreamResponse *self = POOLER_UPSTREAM_RESPONSE (object);

  /* A read in progress holds a reference: none is left here. */
  g_assert (self->read_idle == NULL);
  g_clear_object (&self->read_cancellable);
  g_clear_pointer (&self->read_out, g_byte_array_unref);
  g_clear_pointer (&self->headers, soup_message_headers_unref);
  g_clear_pointer (&self->fields, pooler_http_fields_free);
  g_clear_pointer (&self->context, g_main_context_unref);

  G_OBJECT_CLASS (pooler_upstream_response_parent_class)->finalize (object);
}

static void
pooler_upstream_response_class_init (PoolerUpstreamResponseClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = pooler_upstream_response_dispose;
  object_class->finalize = pooler_upstream_response_finalize;
}

static void
pooler_upstream_response_init (PoolerUpstreamResponse *self)
{
}

/* ------------------------------------------------------------------ */
/* The pool */

guint
pooler_upstream_get_n_connections (PoolerUpstream *self)
{
  g_return_val_if_fail (POOLER_IS_UPSTREAM (self), 0);

  return self->n_connections;
}

guint
pooler_upstream_get_n_idle (PoolerUpstream *self)
{
  g_return_val_if_fail (POOLER_IS_UPSTREAM (self), 0);

  return self->n_idle;
}

guint64
pooler_upstream_get_n_opened (PoolerUpstream *self)
{
  g_return_val_if_fail (POOLER_IS_UPSTREAM (self), 0);

  return self->n_opened;
}

static void
tls_client_event (GSocketClient      *client,
                  GSocketClientEvent  event,
                  GSocketConnectable *connectable,
                  GIOStream          *connection,
                  gpointer            user_data)
{
  PoolerUpstream *self = user_data;

  if (event == G_SOCKET_CLIENT_TLS_HANDSHAKING && self->tls_database != NULL &&
      G_IS_TLS_CONNECTION (connection))
    g_tls_connection_set_database (G_TLS_CONNECTION (connection), self->tls_database);
}

void
pooler_upstream_set_tls_database (PoolerUpstream *self,
                                  GTlsDatabase   *database)
{
  g_return_if_fail (POOLER_IS_UPSTREAM (self));
  g_return_if_fail (database == NULL || G_IS_TLS_DATABASE (database));

  g_set_object (&self->tls_database, database);
}

void
pooler_upstream_set_max_connections (PoolerUpstream *self,
                                     guint           max_connections)
{
  g_return_if_fail (POOLER_IS_UPSTREAM (self));
  g_return_if_fail (max_connections > 0);

  self->max_connections = max_connections;
  pooler_upstream_start_waiting (self);
}

guint
pooler_upstream_get_n_waiting (PoolerUpstream *self)
{
  g_return_val_if_fail (POOLER_IS_UPSTREAM (self), 0);

  return self->waiting.length;
}

void
pooler_upstream_close_idle (PoolerUpstream *self)
{
  g_return_if_fail (POOLER_IS_UPSTREAM (self));

  close_idle_where (self, TRUE);
}

PoolerUpstream *
pooler_upstream_new (void)
{
  return g_object_new (POOLER_TYPE_UPSTREAM, NULL);
}

static void
pooler_upstream_dispose (GObject *object)
{
  PoolerUpstream *self = POOLER_UPSTREAM (object);

  g_clear_handle_id (&self->sweep_id, g_source_remove);
  /* Waiting sends hold a reference: there are none left here. */
  g_warn_if_fail (self->waiting.length == 0);
  if (self->idle != NULL)
    pooler_upstream_close_idle (self);
  g_clear_pointer (&self->idle, g_hash_table_unref);
  g_clear_pointer (&self->conns, g_hash_table_unref);
  g_clear_object (&self->plain);
  g_clear_object (&self->tls);
  g_clear_object (&self->tls_database);

  G_OBJECT_CLASS (pooler_upstream_parent_class)->dispose (object);
}

static void
pooler_upstream_finalize (GObject *object)
{
  PoolerUpstream *self = POOLER_UPSTREAM (object);

  g_clear_pointer (&self->poller, pooler_poller_unref);
  g_clear_pointer (&self->last_target, target_unref);
  g_clear_pointer (&self->spare_heads, g_ptr_array_unref);
  g_mutex_clear (&self->spare_lock);

  G_OBJECT_CLASS (pooler_upstream_parent_class)->finalize (object);
}

static void
pooler_upstream_class_init (PoolerUpstreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = pooler_upstream_dispose;
  object_class->finalize = pooler_upstream_finalize;
}

static void
pooler_upstream_init (PoolerUpstream *self)
{
  self->idle = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, idle_queue_free);
  self->conns = g_hash_table_new (NULL, NULL);
  self->max_connections = MAX_CONNECTIONS;
  self->io_timeout = IO_TIMEOUT;
  g_mutex_init (&self->spare_lock);
  self->spare_heads = g_ptr_array_new_with_free_func (free_head);
  self->plain = g_socket_client_new ();
  g_socket_client_set_timeout (self->plain, CONNECT_TIMEOUT);
  self->tls = g_socket_client_new ();
  g_socket_client_set_timeout (self->tls, CONNECT_TIMEOUT);
  g_socket_client_set_tls (self->tls, TRUE);
  g_signal_connect_object (self->tls, "event", G_CALLBACK (tls_client_event), self, 0);
  self->sweep_id = g_timeout_add_seconds (SWEEP_SECONDS, sweep_idle, self);
  {
    g_autoptr(GError) error = NULL;

    self->poller = pooler_poller_new (NULL, &error);
    if (self->poller == NULL)
      g_debug ("Upstream connections use one GSource each: %s", error->message);
  }
}

