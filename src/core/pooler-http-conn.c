/* pooler-http-conn.c
 *
 * A connection is in one of four states: waiting for or reading a request
 * head, reading an accepted request's body, answering, or done (closed or
 * handed to libsoup). Its answer is written with sendmsg() straight from
 * the caller's buffers; only what the socket does not take at once is
 * copied, and written when the socket is writable.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-http-conn"

#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "pooler-block-pool.h"
#include "pooler-http-conn.h"
#include "pooler-http-head.h"
#include "pooler-poller.h"
#include "pooler-timing.h"

/* A read takes up to this much: a head and a body of this size arrive in
 * one recv() (the Codex CLI's first request is about 38 KB). */
#define READ_BUFFER (64 * 1024)
/* Streamed bytes held back for one write, at most. */
#define HOLD_MAX (64 * 1024)
/* A body at least this large that fits in the read block after its head
 * is not copied: the block leaves with it. */
#define BODY_IN_BLOCK_MIN (4 * 1024)
/* Read blocks kept for reuse: at most (16 MiB), and at least once they
 * went unused for a trim period. */
#define SPARE_BLOCKS_CAP 256
#define SPARE_BLOCKS_FLOOR 8
#define SPARE_BLOCKS_TRIM_US (10 * G_USEC_PER_SEC)

typedef enum
{
  STATE_HEAD,   /* waiting for a request head, or reading one */
  STATE_BODY,   /* reading an accepted request's body */
  STATE_BUSY,   /* answering */
  STATE_DONE,   /* closed, or handed to libsoup */
} State;

/* The exchange of a request served here. */
#define POOLER_TYPE_HTTP_EXCHANGE (pooler_http_exchange_get_type ())
G_DECLARE_FINAL_TYPE (PoolerHttpExchange, pooler_http_exchange, POOLER, HTTP_EXCHANGE, PoolerExchange)

struct _PoolerHttpExchange
{
  PoolerExchange  parent_instance;

  PoolerHttpConn *conn;      /* a reference while answering */
};

G_DEFINE_FINAL_TYPE (PoolerHttpExchange, pooler_http_exchange, POOLER_TYPE_EXCHANGE)

struct _PoolerHttpConn
{
  GObject                    parent_instance;

  int                        fd;           /* ours until closed or handed off: then -1 */
  guint                      max_headers;
  const PoolerHttpConnFuncs *funcs;
  gpointer                   user_data;
  State                      state;

  guint8                    *buf;          /* a read block (READ_BUFFER); NULL while len is 0 */
  gsize                      len;
  guint8                    *body_block;   /* holds the accepted request's body: */
  gboolean                   body_in_block; /* a read block, or just the body */
  guint8                    *body;         /* where in body_block */
  gsize                      body_len;
  gsize                      body_size;
  PoolerHttpExchange        *reading;      /* a reference, until handled */
  PoolerHttpExchange        *answering;    /* not a reference: it holds us */

  PoolerPoller              *poller;       /* the gateway's */
  PoolerWatch               *watch;        /* for the connection's life */
  gboolean                   want_input;
  gboolean                   waiting_out;  /* the client lags: out waits */
  guint                      pipeline_id;
  GByteArray                *out;          /* not yet taken by the socket */
  gsize                      out_start;
  gboolean                   ending;       /* the answer is whole once out */
  gboolean                   first_write_marked;
  guint16                    trace_port;   /* the client's, once traced */
  gboolean                   close_after;  /* "Connection: close" */

  gint64                     last_activity;
  gint64                     head_started;
  gint64                     date_second;
  char                       date[48];
};

G_DEFINE_FINAL_TYPE (PoolerHttpConn, pooler_http_conn, G_TYPE_OBJECT)

static void conn_read (PoolerHttpConn *self);

/* ------------------------------------------------------------------ */
/* Read blocks: a large body leaves in the block it was read into (no
 * copy, no allocation of its size), and returns to the pool when its
 * exchange lets go of it; the connection takes a block again only when
 * it has something to read, so a keep-alive connection reuses the block
 * its last body went back in. Bodies may be let go of on any thread. */

PoolerBlockPool *
pooler_http_conn_get_blocks (void)
{
  static PoolerBlockPool *pool;
  static gsize initialized;

  if (g_once_init_enter (&initialized))
    {
      pool = pooler_block_pool_new (READ_BUFFER, SPARE_BLOCKS_FLOOR, SPARE_BLOCKS_CAP,
                                    SPARE_BLOCKS_TRIM_US);
      g_once_init_leave (&initialized, 1);
    }

  return pool;
}

static guint8 *
block_take (void)
{
  return pooler_block_pool_take (pooler_http_conn_get_blocks ());
}

static void
block_release (gpointer block)
{
  pooler_block_pool_release (pooler_http_conn_get_blocks (), block);
}

static void
body_clear (PoolerHttpConn *self)
{
  if (self->body_block != NULL)
    (self->body_in_block ? block_release : g_free) (self->body_block);
  self->body_block = NULL;
  self->body = NULL;
}

/* ------------------------------------------------------------------ */
/* Ending */

/* Closes the socket; an answer in progress ends with its client gone. */
static void
conn_close (PoolerHttpConn *self)
{
  g_autoptr(PoolerHttpConn) hold G_GNUC_UNUSED = g_object_ref (self);
  PoolerHttpExchange *answering;

  if (self->state == STATE_DONE)
    return;
  self->state = STATE_DONE;

  g_clear_pointer (&self->watch, pooler_watch_free);
  self->waiting_out = FALSE;
  g_clear_handle_id (&self->pipeline_id, g_source_remove);
  if (self->fd >= 0)
    close (self->fd);
  self->fd = -1;
  g_clear_object (&self->reading);
  body_clear (self);

  answering = g_steal_pointer (&self->answering);
  if (answering != NULL)
    {
      g_autoptr(PoolerHttpExchange) hold_exchange G_GNUC_UNUSED = g_object_ref (answering);

      g_clear_object (&answering->conn);
      pooler_exchange_emit_finished (POOLER_EXCHANGE (answering), TRUE);
    }

  self->funcs->closed (self, self->user_data);
}

static gboolean
pipeline_next (gpointer user_data)
{
  PoolerHttpConn *self = user_data;

  self->pipeline_id = 0;
  conn_read (self);
  return G_SOURCE_REMOVE;
}

static void on_ready (GIOCondition condition,
                      gpointer     user_data);

/* What the poller watches: input unless it is held back, output while
 * the client lags. */
static void
update_watch (PoolerHttpConn *self)
{
  GIOCondition events = (self->want_input ? G_IO_IN : 0) | (self->waiting_out ? G_IO_OUT : 0);

  if (self->state == STATE_DONE)
    return;
  if (self->watch == NULL)
    self->watch = pooler_watch_new (self->poller, self->fd, events, on_ready, self);
  else
    pooler_watch_set_events (self->watch, events);
}

static void
watch_input (PoolerHttpConn *self,
             gboolean        want)
{
  self->want_input = want;
  update_watch (self);
}

/* A line of the timing trace for @exchange, answered at @answered. The
 * client's port is asked once per connection. */
static void
trace_timing (PoolerHttpConn *self,
              PoolerExchange *exchange,
              gint64          answered)
{
  if (self->trace_port == 0)
    {
      struct sockaddr_storage peer;
      socklen_t length = sizeof peer;

      if (getpeername (self->fd, (struct sockaddr *) &peer, &length) == 0)
        {
          if (peer.ss_family == AF_INET)
            self->trace_port = ntohs (((struct sockaddr_in *) &peer)->sin_port);
          else if (peer.ss_family == AF_INET6)
            self->trace_port = ntohs (((struct sockaddr_in6 *) &peer)->sin6_port);
        }
    }
  pooler_timing_write (self->trace_port, pooler_exchange_get_marks (exchange), POOLER_EXCHANGE_N_MARKS,
                       answered);
}

/* The whole answer is out: the connection waits for the next request. */
static void
conn_answered (PoolerHttpConn *self)
{
  g_autoptr(PoolerHttpConn) hold G_GNUC_UNUSED = g_object_ref (self);
  PoolerHttpExchange *answering = g_steal_pointer (&self->answering);

  self->ending = FALSE;
  self->state = STATE_HEAD;
  self->last_activity = g_get_monotonic_time ();
  self->head_started = self->last_activity;

  if (answering != NULL)
    {
      g_autoptr(PoolerHttpExchange) hold_exchange G_GNUC_UNUSED = g_object_ref (answering);

      if (pooler_timing_active ())
        trace_timing (self, POOLER_EXCHANGE (answering), self->last_activity);
      g_clear_object (&answering->conn);
      pooler_exchange_emit_finished (POOLER_EXCHANGE (answering), FALSE);
    }

  if (self->state != STATE_HEAD)
    return;
  if (self->close_after)
    {
      conn_close (self);
      return;
    }
  watch_input (self, TRUE);
  /* A pipelined request, read while this one was answered. */
  if (self->len > 0 && self->pipeline_id == 0)
    self->pipeline_id = g_idle_add_full (G_PRIORITY_DEFAULT, pipeline_next, self, NULL);
}

/* ------------------------------------------------------------------ */
/* Writing */

/* Writes what is pending and then @extra. What the socket does not take
 * is kept for when it is writable. TRUE when all is out; FALSE when the
 * rest waits (or the connection failed and is closed). */
static gboolean
conn_write (PoolerHttpConn     *self,
            const struct iovec *extra,
            guint               n_extra)
{
  struct iovec iov[8];
  struct msghdr msg = { 0 };
  guint n = 0;
  guint first = 0;
  gsize total = 0;

  g_assert (n_extra < G_N_ELEMENTS (iov));

  if (self->out_start < self->out->len)
    {
      iov[n].iov_base = self->out->data + self->out_start;
      iov[n].iov_len = self->out->len - self->out_start;
      total += iov[n++].iov_len;
    }
  for (guint i = 0; i < n_extra; i++)
    if (extra[i].iov_len > 0)
      {
        iov[n] = extra[i];
        total += iov[n++].iov_len;
      }

  /* While the socket is not writable, new bytes only queue. */
  while (total > 0 && !self->waiting_out)
    {
      gssize wrote;

      msg.msg_iov = iov + first;
      msg.msg_iovlen = n - first;
      wrote = sendmsg (self->fd, &msg, MSG_NOSIGNAL);
      if (wrote < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
          g_debug ("Writing to a client failed: %s", g_strerror (errno));
          conn_close (self);
          return FALSE;
        }

      self->last_activity = g_get_monotonic_time ();
      if (pooler_timing_active () && !self->first_write_marked && self->answering != NULL)
        {
          self->first_write_marked = TRUE;
          pooler_exchange_mark (POOLER_EXCHANGE (self->answering), POOLER_EXCHANGE_MARK_FIRST_WRITE,
                                self->last_activity);
        }
      total -= (gsize) wrote;
      while (wrote > 0)
        {
          gsize step = MIN ((gsize) wrote, iov[first].iov_len);

          iov[first].iov_base = (guint8 *) iov[first].iov_base + step;
          iov[first].iov_len -= step;
          wrote -= (gssize) step;
          if (iov[first].iov_len == 0)
            first++;
        }
    }

  /* Keep the rest: what was pending is still in out, behind the part
   * written; the new pieces are copied after it. */
  {
    gsize pending_before = self->out->len - self->out_start;
    gsize keep_from_out = 0;
    guint i = first;

    if (pending_before > 0)
      {
        if (first == 0)
          keep_from_out = iov[0].iov_len;
        i = MAX (first, 1);
      }
    self->out_start = self->out->len - keep_from_out;
    if (self->out_start == self->out->len)
      {
        g_byte_array_set_size (self->out, 0);
        self->out_start = 0;
      }
    for (; i < n; i++)
      if (iov[i].iov_len > 0)
        g_byte_array_append (self->out, iov[i].iov_base, (guint) iov[i].iov_len);
  }

  if (total == 0)
    return TRUE;

  if (!self->waiting_out)
    {
      self->last_activity = g_get_monotonic_time ();
      self->waiting_out = TRUE;
      update_watch (self);
    }
  return FALSE;
}

/* The lagging client takes more. */
static void
conn_writable (PoolerHttpConn *self)
{
  self->waiting_out = FALSE;
  update_watch (self);

  if (!conn_write (self, NULL, 0))
    return;

  if (self->ending)
    conn_answered (self);
  else if (self->answering != NULL)
    pooler_exchange_emit_drained (POOLER_EXCHANGE (self->answering));
}

static const char *
conn_date (PoolerHttpConn *self)
{
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  if (now != self->date_second)
    {
      g_autoptr(GDateTime) time = g_date_time_new_from_unix_utc (now);
      g_autofree char *text = soup_date_time_to_string (time, SOUP_DATE_HTTP);

      g_strlcpy (self->date, text != NULL ? text : "", sizeof self->date);
      self->date_second = now;
    }

  return self->date;
}

static void
out_append (PoolerHttpConn *self,
            const char     *text)
{
  g_byte_array_append (self->out, (const guint8 *) text, (guint) strlen (text));
}

/* What the writer frames itself: never copied from a caller's headers. */
static const char * const framing_headers[] = {
  "content-length", "connection", "transfer-encoding", "keep-alive", "date", NULL
};

/* One field line, unless the writer frames it itself, @keep refuses it,
 * the answer's Content-Type is @content_type, or the value could break
 * the head. */
static void
out_append_field (PoolerHttpConn     *self,
                  const char         *name,
                  const char         *value,
                  PoolerHeaderFilter  keep,
                  const char         *content_type)
{
  gsize name_length, value_length;
  guint at;
  char *p;

  if (pooler_http_name_in (name, framing_headers) || (keep != NULL && !keep (name)) ||
      (content_type != NULL && g_ascii_strcasecmp (name, "Content-Type") == 0))
    return;
  value_length = strlen (value);
  if (memchr (value, '\r', value_length) != NULL || memchr (value, '\n', value_length) != NULL)
    return;
  name_length = strlen (name);

  /* "name: value\r\n", grown and copied once. */
  at = self->out->len;
  g_byte_array_set_size (self->out, at + (guint) (name_length + value_length + 4));
  p = (char *) self->out->data + at;
  memcpy (p, name, name_length);
  p += name_length;
  *p++ = ':';
  *p++ = ' ';
  memcpy (p, value, value_length);
  p += value_length;
  *p++ = '\r';
  *p = '\n';
}

static void
out_append_headers (PoolerHttpConn     *self,
                    SoupMessageHeaders *headers,
                    const char         *content_type)
{
  SoupMessageHeadersIter iter;
  const char *name, *value;

  soup_message_headers_iter_init (&iter, headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    out_append_field (self, name, value, NULL, content_type);
}

/* Queues the status line and headers: @headers, then those of @extra
 * (if any) that @keep accepts. @content_length < 0: chunked. */
static void
conn_queue_head (PoolerHttpConn         *self,
                 guint                   status,
                 SoupMessageHeaders     *headers,
                 const PoolerHttpFields *extra,
                 PoolerHeaderFilter      keep,
                 const char             *content_type,
                 gint64                  content_length,
                 gboolean                no_body)
{
  char digits[POOLER_HTTP_DECIMAL_SIZE];
  const char *phrase = soup_status_get_phrase (status);

  if (soup_message_headers_header_contains (headers, "Connection", "close"))
    self->close_after = TRUE;

  out_append (self, "HTTP/1.1 ");
  g_byte_array_append (self->out, (const guint8 *) digits, (guint) pooler_http_format_decimal (digits, status));
  out_append (self, " ");
  out_append (self, phrase != NULL ? phrase : "");
  out_append (self, "\r\nDate: ");
  out_append (self, conn_date (self));
  out_append (self, "\r\n");

  out_append_headers (self, headers, content_type);
  for (guint i = 0; extra != NULL && i < pooler_http_fields_get_n (extra); i++)
    {
      const PoolerHttpField *field = pooler_http_fields_get (extra, i);

      out_append_field (self, field->name, field->value, keep, content_type);
    }
  if (content_type != NULL)
    {
      out_append (self, "Content-Type: ");
      out_append (self, content_type);
      out_append (self, "\r\n");
    }
  if (content_length >= 0)
    {
      out_append (self, "Content-Length: ");
      g_byte_array_append (self->out, (const guint8 *) digits,
                           (guint) pooler_http_format_decimal (digits, (guint64) content_length));
      out_append (self, "\r\n");
    }
  else if (!no_body)
    out_append (self, "Transfer-Encoding: chunked\r\n");
  if (self->close_after)
    out_append (self, "Connection: close\r\n");
  out_append (self, "\r\n");
}

/* ------------------------------------------------------------------ */
/* Reading */

/* An origin-form target (RFC 9112 3.2.1) of plain URI characters, its
 * percent escapes whole; no fragment, no raw byte above 0x7e. Anything
 * else is libsoup's to refuse. */
static gboolean
target_is_plain (const char *target,
                 const char *end)
{
  for (const char *p = target; p < end; p++)
    {
      guchar c = (guchar) *p;

      if (c == '%')
        {
          if (end - p < 3 || !g_ascii_isxdigit (p[1]) || !g_ascii_isxdigit (p[2]))
            return FALSE;
          p += 2;
          continue;
        }
      if (g_ascii_isalnum (c) || strchr ("-._~!$&'()*+,;=:@/?", c) != NULL)
        continue;
      return FALSE;
    }

  return TRUE;
}

/* Parses the head in buf[0, head_len) into a new exchange. NULL when the
 * request is not for here (libsoup judges it). */
static PoolerHttpExchange *
parse_head (PoolerHttpConn *self,
            gsize           head_len,
            guint64        *content_length)
{
  char *p = (char *) self->buf;
  char *end = p + head_len;
  const char *method;
  char *target, *target_end, *query;
  g_autoptr(SoupMessageHeaders) headers = NULL;
  const char *length;
  PoolerHttpExchange *exchange;

  if (memcmp (p, "POST ", 5) == 0)
    method = SOUP_METHOD_POST, p += 5;
  else if (memcmp (p, "GET ", 4) == 0)
    method = SOUP_METHOD_GET, p += 4;
  else
    return NULL;

  target = p;
  while (p < end && *p != ' ')
    {
      if ((guchar) *p <= 0x20 || *p == 0x7f)
        return NULL;
      p++;
    }
  if (p == target || *target != '/' || end - p < 11 || memcmp (p, " HTTP/1.1\r\n", 11) != 0 ||
      !target_is_plain (target, p))
    return NULL;
  target_end = p;
  p += 11;

  headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  if (!pooler_http_parse_fields (p, end, self->max_headers, POOLER_HTTP_FIELDS_ANY_BYTES, headers))
    return NULL;

  /* Bodies framed other than by a length, and protocol changes, are
   * libsoup's to handle. */
  if (soup_message_headers_get_one (headers, "Transfer-Encoding") != NULL ||
      soup_message_headers_get_one (headers, "Expect") != NULL ||
      soup_message_headers_get_one (headers, "Upgrade") != NULL)
    return NULL;

  *content_length = 0;
  length = soup_message_headers_get_list (headers, "Content-Length");
  if (length != NULL)
    {
      gsize digits = strspn (length, "0123456789");

      if (digits == 0 || digits > 15 || length[digits] != '\0')
        return NULL;
      *content_length = g_ascii_strtoull (length, NULL, 10);
    }
  if (method == SOUP_METHOD_GET && *content_length > 0)
    return NULL;

  self->close_after = soup_message_headers_header_contains (headers, "Connection", "close");

  query = memchr (target, '?', (gsize) (target_end - target));
  exchange = g_object_new (POOLER_TYPE_HTTP_EXCHANGE, NULL);
  pooler_exchange_set_request (POOLER_EXCHANGE (exchange), method,
                               g_strndup (target, (gsize) ((query != NULL ? query : target_end) - target)),
                               query != NULL ? g_strndup (query + 1, (gsize) (target_end - query - 1)) : NULL,
                               g_steal_pointer (&headers), NULL);

  return exchange;
}

/* The connection goes to libsoup with everything read of it, in the
 * GSocketConnection made for it only now. */
static void
conn_handoff (PoolerHttpConn *self)
{
  g_autoptr(PoolerHttpConn) hold G_GNUC_UNUSED = g_object_ref (self);
  g_autoptr(GBytes) already_read = g_bytes_new (self->buf, self->len);
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GError) error = NULL;
  int fd = self->fd;

  g_clear_pointer (&self->watch, pooler_watch_free);
  g_clear_handle_id (&self->pipeline_id, g_source_remove);
  /* The descriptor is the socket's now, even when it fails: GLib 2.74
   * closes it then (the failed GSocket's finalizer does). */
  self->fd = -1;
  socket = g_socket_new_from_fd (fd, &error);
  if (socket == NULL)
    {
      g_debug ("Could not hand a connection over: %s", error->message);
      conn_close (self);
      return;
    }
  self->state = STATE_DONE;
  connection = g_socket_connection_factory_create_connection (socket);
  self->funcs->handoff (self, connection, already_read, self->user_data);
}

/* The accepted request is whole: answer it. */
static void
conn_dispatch (PoolerHttpConn *self)
{
  g_autoptr(PoolerHttpConn) hold G_GNUC_UNUSED = g_object_ref (self);
  g_autoptr(PoolerHttpExchange) exchange = g_steal_pointer (&self->reading);

  pooler_exchange_set_request_body (POOLER_EXCHANGE (exchange),
                                    g_bytes_new_with_free_func (self->body, self->body_size,
                                                                self->body_in_block ? block_release : g_free,
                                                                self->body_block));
  self->body_block = NULL;
  self->body = NULL;
  self->state = STATE_BUSY;
  self->answering = exchange;
  exchange->conn = g_object_ref (self);
  self->first_write_marked = FALSE;
  if (pooler_timing_active ())
    pooler_exchange_mark (POOLER_EXCHANGE (exchange), POOLER_EXCHANGE_MARK_HANDLED, g_get_monotonic_time ());
  self->funcs->handle (self, POOLER_EXCHANGE (exchange), self->user_data);
}

typedef enum
{
  INPUT_MORE,     /* bytes came */
  INPUT_WAIT,     /* none now */
  INPUT_CLOSED,   /* the client closed, or the connection broke: closed */
} Input;

/* One recv() of up to @size bytes at @dest. */
static Input
conn_recv (PoolerHttpConn *self,
           guint8         *dest,
           gsize           size,
           gsize          *got)
{
  for (;;)
    {
      gssize n = recv (self->fd, dest, size, MSG_DONTWAIT);

      if (n > 0)
        {
          *got = (gsize) n;
          self->last_activity = g_get_monotonic_time ();
          return INPUT_MORE;
        }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return INPUT_WAIT;
      conn_close (self);
      return INPUT_CLOSED;
    }
}

/* Appends what the socket has to buf: a head, or a pipelined request. */
static Input
conn_recv_buffered (PoolerHttpConn *self)
{
  gsize got = 0;
  Input input;

  if (self->buf == NULL)
    self->buf = block_take ();
  input = conn_recv (self, self->buf + self->len, READ_BUFFER - self->len, &got);
  if (input == INPUT_MORE)
    {
      if (self->len == 0)
        self->head_started = self->last_activity;
      self->len += got;
    }
  else if (self->len == 0)
    g_clear_pointer (&self->buf, block_release);
  return input;
}

/* Reads the body straight into its own buffer. */
static void
read_body (PoolerHttpConn *self)
{
  while (self->body_len < self->body_size)
    {
      gsize got = 0;

      if (conn_recv (self, self->body + self->body_len, self->body_size - self->body_len, &got) != INPUT_MORE)
        return;
      self->body_len += got;
    }

  conn_dispatch (self);
}

/* A whole head is at the start of buf: take it here or hand it off. */
static void
take_head (PoolerHttpConn *self,
           gsize           head_len)
{
  guint64 content_length = 0;
  g_autoptr(PoolerHttpExchange) exchange = parse_head (self, head_len, &content_length);
  gsize from_buffer;

  if (exchange == NULL ||
      !self->funcs->accept (self, POOLER_EXCHANGE (exchange), content_length, self->user_data))
    {
      conn_handoff (self);
      return;
    }

  if (pooler_timing_active ())
    pooler_exchange_mark (POOLER_EXCHANGE (exchange), POOLER_EXCHANGE_MARK_RECEIVED, self->head_started);
  self->reading = g_steal_pointer (&exchange);
  self->body_size = (gsize) content_length;
  from_buffer = MIN (self->len - head_len, self->body_size);
  self->body_len = from_buffer;
  if (self->body_size >= BODY_IN_BLOCK_MIN && head_len + self->body_size <= READ_BUFFER)
    {
      /* The body stays in this block, right after its head, and the rest
       * of it is read there too; what came after it (a pipelined
       * request) moves to the connection's next block. */
      self->body_block = self->buf;
      self->body_in_block = TRUE;
      self->body = self->body_block + head_len;
      self->buf = NULL;
      self->len -= head_len + from_buffer;
      if (self->len > 0)
        {
          self->buf = block_take ();
          memcpy (self->buf, self->body + from_buffer, self->len);
        }
    }
  else
    {
      self->body_block = g_malloc (MAX (self->body_size, 1));
      self->body_in_block = FALSE;
      self->body = self->body_block;
      memcpy (self->body, self->buf + head_len, from_buffer);
      self->len -= head_len + from_buffer;
      memmove (self->buf, self->buf + head_len + from_buffer, self->len);
      if (self->len == 0)
        g_clear_pointer (&self->buf, block_release);
    }
  self->state = STATE_BODY;

  read_body (self);
}

/* The end of the head in buf, or 0. */
static gsize
find_head_end (PoolerHttpConn *self)
{
  const guint8 *found = pooler_http_find_blank_line (self->buf, self->len);

  return found != NULL ? (gsize) (found - self->buf) + 4 : 0;
}

/* Whether the bytes so far can still become a head of ours: "GET " or
 * "POST ", lines ended by CRLF. A bare LF (which libsoup accepts), TLS or
 * any other protocol goes to libsoup now, not at the header deadline. */
static gboolean
head_may_be_ours (PoolerHttpConn *self)
{
  gsize n = MIN (self->len, 5);
  const guint8 *lf;

  if (memcmp (self->buf, "POST ", n) != 0 && memcmp (self->buf, "GET ", MIN (n, 4)) != 0)
    return FALSE;
  for (const guint8 *p = self->buf; (lf = memchr (p, '\n', self->len - (gsize) (p - self->buf))) != NULL; p = lf + 1)
    if (lf == self->buf || lf[-1] != '\r')
      return FALSE;

  return TRUE;
}

static void
read_head (PoolerHttpConn *self)
{
  for (;;)
    {
      gsize head_len = self->len > 0 ? find_head_end (self) : 0;

      if (head_len > POOLER_HTTP_CONN_MAX_HEAD ||
          (head_len == 0 && (self->len >= POOLER_HTTP_CONN_MAX_HEAD ||
                             (self->len > 0 && !head_may_be_ours (self)))))
        {
          conn_handoff (self);
          return;
        }
      if (head_len > 0)
        {
          take_head (self, head_len);
          return;
        }

      /* Waiting, or the client closed between requests. */
      if (conn_recv_buffered (self) != INPUT_MORE)
        return;
    }
}

/* Input while answering: a pipelined request (kept for later) or the
 * client going away. */
static void
read_while_busy (PoolerHttpConn *self)
{
  if (self->len == READ_BUFFER)
    {
      /* Full: stop watching until the answer is out. */
      watch_input (self, FALSE);
      return;
    }

  if (conn_recv_buffered (self) == INPUT_CLOSED)
    g_debug ("A client went away before its answer was complete");
}

static void
conn_read (PoolerHttpConn *self)
{
  g_autoptr(PoolerHttpConn) hold G_GNUC_UNUSED = g_object_ref (self);

  switch (self->state)
    {
    case STATE_HEAD:
      read_head (self);
      break;
    case STATE_BODY:
      read_body (self);
      break;
    case STATE_BUSY:
      read_while_busy (self);
      break;
    case STATE_DONE:
    default:
      break;
    }
}

static void
on_ready (GIOCondition condition,
          gpointer     user_data)
{
  PoolerHttpConn *self = user_data;
  g_autoptr(PoolerHttpConn) hold G_GNUC_UNUSED = g_object_ref (self);
  gboolean failed = (condition & (G_IO_HUP | G_IO_ERR)) != 0;

  if (self->waiting_out && (condition & G_IO_OUT || failed))
    conn_writable (self);
  if (self->state != STATE_DONE && self->want_input && (condition & G_IO_IN || failed))
    conn_read (self);
  /* A hang-up or error nobody reads (epoll reports them always, and
   * again on every turn): the client is gone. */
  if (self->state != STATE_DONE && failed && !self->want_input && !self->waiting_out)
    conn_close (self);
}

/* ------------------------------------------------------------------ */
/* The exchange */

/* For the class's own vfuncs, whose instance is known to be one: no
 * type check, which costs more than the rest of a small SSE event's
 * stream_write(), flush() or is_drained(). */
static inline PoolerHttpExchange *
http_exchange (PoolerExchange *exchange)
{
  return (PoolerHttpExchange *) exchange;
}

/* RFC 9110 6.4.1: these answers never have content. */
static gboolean
status_has_no_body (guint status)
{
  return status < 200 || status == SOUP_STATUS_NO_CONTENT || status == SOUP_STATUS_NOT_MODIFIED;
}

static void
pooler_http_exchange_respond (PoolerExchange *exchange,
                              guint           status,
                              const char     *content_type,
                              GBytes         *body)
{
  PoolerHttpConn *conn = http_exchange (exchange)->conn;
  struct iovec iov;
  gsize size;

  if (conn == NULL)
    return;

  iov.iov_base = (void *) g_bytes_get_data (body, &size);
  iov.iov_len = size;
  if (status_has_no_body (status))
    {
      /* Whatever the caller gave, these answers end with their head (a
       * body would be read as the next answer's start). A 304 keeps its
       * metadata, without a length. */
      iov.iov_len = 0;
      conn_queue_head (conn, status, pooler_exchange_get_response_headers (exchange), NULL, NULL,
                       status == SOUP_STATUS_NOT_MODIFIED ? content_type : NULL, -1, TRUE);
    }
  else
    conn_queue_head (conn, status, pooler_exchange_get_response_headers (exchange), NULL, NULL,
                     content_type, (gint64) size, FALSE);
  conn->ending = TRUE;
  if (conn_write (conn, &iov, 1))
    conn_answered (conn);
}

static void
pooler_http_exchange_stream_begin (PoolerExchange *exchange,
                                   guint           status)
{
  PoolerHttpExchange *self = http_exchange (exchange);

  if (self->conn == NULL)
    return;

  /* Queued only: it goes out with the first chunk, in one write. */
  conn_queue_head (self->conn, status, pooler_exchange_get_response_headers (exchange), NULL, NULL,
                   NULL, -1, status_has_no_body (status));
}

static void
pooler_http_exchange_stream_begin_with (PoolerExchange         *exchange,
                                        guint                   status,
                                        const PoolerHttpFields *extra,
                                        PoolerHeaderFilter      keep)
{
  PoolerHttpExchange *self = http_exchange (exchange);

  if (self->conn == NULL)
    return;

  conn_queue_head (self->conn, status, pooler_exchange_get_response_headers (exchange), extra, keep,
                   NULL, -1, status_has_no_body (status));
}

static void
pooler_http_exchange_stream_write (PoolerExchange *exchange,
                                   GBytes         *bytes)
{
  PoolerHttpExchange *self = http_exchange (exchange);
  struct iovec iov[3];
  char size_line[POOLER_HTTP_CHUNK_LINE_SIZE];
  gsize size;

  if (self->conn == NULL || status_has_no_body (pooler_exchange_get_status (exchange)))
    return;

  iov[1].iov_base = (void *) g_bytes_get_data (bytes, &size);
  iov[1].iov_len = size;
  iov[0].iov_base = size_line;
  iov[0].iov_len = pooler_http_format_chunk_line (size_line, size);
  iov[2].iov_base = (void *) "\r\n";
  iov[2].iov_len = 2;

  /* Held back until the writer waits (flush()) or ends, so that what one
   * upstream read brings (the head, events, the end) leaves in one write;
   * unless it grows large, or the client lags (then it queues anyway). */
  if (self->conn->waiting_out || self->conn->out->len - self->conn->out_start + size > HOLD_MAX)
    {
      conn_write (self->conn, iov, 3);
      return;
    }
  for (guint i = 0; i < 3; i++)
    g_byte_array_append (self->conn->out, iov[i].iov_base, (guint) iov[i].iov_len);
}

static void
pooler_http_exchange_flush (PoolerExchange *exchange)
{
  PoolerHttpConn *conn = http_exchange (exchange)->conn;

  if (conn != NULL && !conn->waiting_out && conn->out_start < conn->out->len)
    conn_write (conn, NULL, 0);
}

static gboolean
pooler_http_exchange_is_drained (PoolerExchange *exchange)
{
  PoolerHttpConn *conn = http_exchange (exchange)->conn;

  return conn == NULL || !conn->waiting_out;
}

static void
pooler_http_exchange_stream_end (PoolerExchange *exchange)
{
  PoolerHttpExchange *self = http_exchange (exchange);
  PoolerHttpConn *conn = self->conn;
  struct iovec iov = { (void *) "0\r\n\r\n",
                       status_has_no_body (pooler_exchange_get_status (exchange)) ? 0 : 5 };

  if (conn == NULL)
    return;

  conn->ending = TRUE;
  if (conn_write (conn, &iov, 1))
    conn_answered (conn);
}

static void
pooler_http_exchange_dispose (GObject *object)
{
  PoolerHttpExchange *self = POOLER_HTTP_EXCHANGE (object);

  /* Dropped unanswered (or half answered): the client cannot be told
   * anything coherent any more. */
  if (self->conn != NULL)
    {
      PoolerHttpConn *conn = g_steal_pointer (&self->conn);

      g_warning ("A request was dropped without a complete answer");
      if (conn->answering == self)
        conn->answering = NULL;
      conn_close (conn);
      g_object_unref (conn);
    }

  G_OBJECT_CLASS (pooler_http_exchange_parent_class)->dispose (object);
}

static void
pooler_http_exchange_class_init (PoolerHttpExchangeClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  PoolerExchangeClass *exchange_class = POOLER_EXCHANGE_CLASS (klass);

  object_class->dispose = pooler_http_exchange_dispose;
  exchange_class->respond = pooler_http_exchange_respond;
  exchange_class->stream_begin = pooler_http_exchange_stream_begin;
  exchange_class->stream_begin_with = pooler_http_exchange_stream_begin_with;
  exchange_class->stream_write = pooler_http_exchange_stream_write;
  exchange_class->is_drained = pooler_http_exchange_is_drained;
  exchange_class->stream_end = pooler_http_exchange_stream_end;
  exchange_class->flush = pooler_http_exchange_flush;
}

static void
pooler_http_exchange_init (PoolerHttpExchange *self)
{
}

/* ------------------------------------------------------------------ */
/* The connection */

static void
pooler_http_conn_finalize (GObject *object)
{
  PoolerHttpConn *self = POOLER_HTTP_CONN (object);

  g_assert (self->watch == NULL && self->pipeline_id == 0);

  g_clear_object (&self->reading);
  body_clear (self);
  g_clear_pointer (&self->buf, block_release);
  g_clear_pointer (&self->out, g_byte_array_unref);
  if (self->fd >= 0)
    close (self->fd);

  G_OBJECT_CLASS (pooler_http_conn_parent_class)->finalize (object);
}

static void
pooler_http_conn_class_init (PoolerHttpConnClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = pooler_http_conn_finalize;
}

static void
pooler_http_conn_init (PoolerHttpConn *self)
{
}

PoolerHttpConn *
pooler_http_conn_new (int                        fd,
                      PoolerPoller              *poller,
                      guint                      max_headers,
                      const PoolerHttpConnFuncs *funcs,
                      gpointer                   user_data)
{
  PoolerHttpConn *self;

  g_return_val_if_fail (fd >= 0, NULL);
  g_return_val_if_fail (funcs != NULL, NULL);

  self = g_object_new (POOLER_TYPE_HTTP_CONN, NULL);
  self->fd = fd;
  self->poller = poller;
  self->max_headers = max_headers;
  self->funcs = funcs;
  self->user_data = user_data;
  self->out = g_byte_array_new ();
  self->last_activity = g_get_monotonic_time ();
  self->head_started = self->last_activity;

  return self;
}

void
pooler_http_conn_start (PoolerHttpConn *self)
{
  g_return_if_fail (POOLER_IS_HTTP_CONN (self));

  if (self->state == STATE_HEAD)
    watch_input (self, TRUE);
  /* epoll refused it (out of watches): a connection we cannot read. */
  if (self->watch == NULL)
    conn_close (self);
}

void
pooler_http_conn_check_timeouts (PoolerHttpConn *self,
                                 gint64          now,
                                 gint64          idle_us,
                                 gint64          header_us)
{
  gboolean late = FALSE;

  g_return_if_fail (POOLER_IS_HTTP_CONN (self));

  switch (self->state)
    {
    case STATE_HEAD:
      late = self->len == 0 ? now - self->last_activity > idle_us
                            : now - self->head_started > header_us;
      break;
    case STATE_BODY:
      late = now - self->last_activity > idle_us;
      break;
    case STATE_BUSY:
      late = self->waiting_out && now - self->last_activity > idle_us;
      break;
    case STATE_DONE:
    default:
      break;
    }

  if (late)
    {
      g_debug ("Closing a client connection that waited too long");
      conn_close (self);
    }
}

void
pooler_http_conn_close (PoolerHttpConn *self)
{
  g_return_if_fail (POOLER_IS_HTTP_CONN (self));

  conn_close (self);
}
