/* stream-client: opens N concurrent HTTP/1.1 streams (POST with a body) and
 * measures, per stream, the time to the first SSE event and, per event, the
 * delay the path added.
 *
 *   stream-client --url http://127.0.0.1:PORT/PATH --body FILE
 *                 [--header 'Name: value']... [--concurrency N] [--rounds R]
 *                 [--timeout S] [--label TEXT] [--expect-events N]
 *                 [--dump-events FILE] [--dump-streams FILE]
 *
 * Each of the N connections runs R streams one after the other (keep-alive;
 * a connection the server closed is opened again and counted in
 * "reconnects"). Raw sockets and one epoll
 * loop: the client adds as little as possible of its own.
 *
 * Measures (all on CLOCK_MONOTONIC):
 *   ttfe      from the first byte of the request written to the end of the
 *             first complete SSE event read;
 *   delay     for every event whose data carries "[ts=NS]" (the bench fake
 *             upstream's send time on the same clock): arrival - NS, i.e. what
 *             the whole path (upstream write, proxy, loopback, client read)
 *             took for that event;
 *   jitter    (arrival gap) - (send gap) between consecutive timestamped
 *             events of one stream.
 * --dump-events writes one line per timestamped event, "CONN EVENT SEND_NS
 * ARRIVAL_NS DELAY_MS" (CONN: the connection's number; EVENT: the event's
 * number within its stream, counting every event), for finding when a
 * tail happened: a stall hits every stream's event at one arrival time.
 * --dump-streams writes one line per completed stream, "CONN PORT START_NS
 * WRITTEN_NS FIRST_NS END_NS" (PORT: the connection's local port, which
 * the gateway's timing trace names; the times: stream begun, request
 * written, first event read, stream ended), to join with that trace.
 * Prints one JSON object with counts and p50/p90/p99/max in milliseconds,
 * and "run_delay_ms": how long the client itself waited on a run queue
 * for a CPU during the run (/proc/self/schedstat; -1 without the file, 0
 * on a kernel that keeps no such times), so a run can tell a slow path
 * from a busy machine.
 * Exit status 0 when every stream completed with 200 and its events.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct { double *v; size_t n, cap; } Vec;

static void
vec_push (Vec *a, double x)
{
  if (a->n == a->cap)
    {
      a->cap = a->cap ? a->cap * 2 : 1024;
      a->v = realloc (a->v, a->cap * sizeof (double));
      if (a->v == NULL)
        abort ();
    }
  a->v[a->n++] = x;
}

static int
cmp_d (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static double
pct (Vec *a, double p)
{
  if (a->n == 0)
    return -1;
  size_t i = (size_t) (p / 100.0 * (double) (a->n - 1) + 0.5);
  return a->v[i < a->n ? i : a->n - 1];
}

static int64_t
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Nanoseconds this process has waited on a run queue so far, or -1. */
static long long
run_delay_ns (void)
{
  long long on_cpu, waited = -1;
  FILE *f = fopen ("/proc/self/schedstat", "r");

  if (f == NULL)
    return -1;
  if (fscanf (f, "%lld %lld", &on_cpu, &waited) != 2)
    waited = -1;
  fclose (f);
  return waited;
}

enum { S_CONNECTING, S_WRITING, S_HEAD, S_BODY, S_DONE };
enum { B_LEN, B_CHUNK_SIZE, B_CHUNK_DATA, B_CHUNK_CRLF, B_TRAILER, B_CLOSE };

typedef struct {
  int index;                  /* the connection's number, for --dump-events */
  int fd;
  int state;
  int rounds_left;
  size_t wrote;
  int64_t t_start, t_written, t_first;
  unsigned port;              /* local, for --dump-streams */
  /* response */
  char *in; size_t in_len, in_cap;
  int status;
  int bmode;
  long long remaining;        /* content-length left, or chunk bytes left */
  int server_closes;
  /* SSE */
  char *ev; size_t ev_len, ev_cap;
  int events;
  int got_first;
  int64_t last_ts, last_arrival;
  int served;                 /* streams completed on this socket */
  int got_bytes;              /* any answer byte for this stream */
} Conn;

static struct sockaddr_in addr;
static char *request;           /* head + body */
static size_t request_len;
static int epfd;
static int expect_events = -1;
static FILE *dump, *dump_streams;

static Vec v_ttfe, v_delay, v_jitter, v_total;
static long n_ok, n_err, n_events, n_bad_status, n_short, n_io, n_reconnects;
/* io errors by kind: connect failed; reset/EOF before any answer byte on a
 * reused or on a fresh connection; reset/EOF in the middle of an answer. */
static long n_io_connect, n_io_reused_early, n_io_fresh_early, n_io_mid;
static int active;

static void die (const char *m) { perror (m); exit (2); }

/* (Re)opens *@file for writing at @path, or dies. */
static void
open_dump (FILE **file, const char *path)
{
  if (*file != NULL)
    fclose (*file);
  *file = fopen (path, "w");
  if (*file == NULL)
    die (path);
}

static void
conn_open (Conn *c)
{
  c->fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0)
    die ("socket");
  int one = 1;
  setsockopt (c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->state = S_CONNECTING;
  c->served = 0;
  int r = connect (c->fd, (struct sockaddr *) &addr, sizeof addr);
  if (r < 0 && errno != EINPROGRESS)
    die ("connect");
  struct sockaddr_in local;
  socklen_t local_len = sizeof local;
  c->port = getsockname (c->fd, (struct sockaddr *) &local, &local_len) == 0 ? ntohs (local.sin_port) : 0;
  struct epoll_event ee = { .events = EPOLLOUT | EPOLLIN, .data.ptr = c };
  if (epoll_ctl (epfd, EPOLL_CTL_ADD, c->fd, &ee) < 0)
    die ("epoll_ctl");
}

static void
conn_close (Conn *c)
{
  if (c->fd >= 0)
    {
      epoll_ctl (epfd, EPOLL_CTL_DEL, c->fd, NULL);
      close (c->fd);
      c->fd = -1;
    }
}

static void
stream_begin (Conn *c)
{
  c->wrote = 0;
  c->in_len = 0;
  c->ev_len = 0;
  c->status = 0;
  c->events = 0;
  c->got_first = 0;
  c->last_ts = 0;
  c->server_closes = 0;
  c->got_bytes = 0;
  c->state = S_WRITING;
  c->t_written = c->t_first = 0;
  c->t_start = now_ns ();
}

static void
stream_end (Conn *c, int ok)
{
  if (ok && expect_events >= 0 && c->events < expect_events)
    {
      ok = 0;
      n_short++;
    }
  if (ok)
    {
      c->served++;
      n_ok++;
      int64_t t_end = now_ns ();
      vec_push (&v_total, (double) (t_end - c->t_start) / 1e6);
      if (dump_streams != NULL)
        fprintf (dump_streams, "%d %u %lld %lld %lld %lld\n", c->index, c->port, (long long) c->t_start,
                 (long long) c->t_written, (long long) c->t_first, (long long) t_end);
    }
  else
    n_err++;
  c->rounds_left--;
  if (!ok || c->server_closes)
    conn_close (c);
  else
    {
      /* Like a pooling HTTP client (hyper, undici): a connection the server
       * has already closed (FIN without "Connection: close") is not reused;
       * a new one is opened and counted. */
      char b;
      ssize_t r = recv (c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
      if (r == 0 || (r < 0 && errno != EAGAIN))
        {
          n_reconnects++;
          conn_close (c);
        }
    }
  if (c->rounds_left <= 0)
    {
      conn_close (c);
      c->state = S_DONE;
      active--;
      return;
    }
  if (c->fd < 0)
    {
      conn_open (c);            /* the stream begins once connected */
      return;
    }
  struct epoll_event ee = { .events = EPOLLOUT | EPOLLIN, .data.ptr = c };
  epoll_ctl (epfd, EPOLL_CTL_MOD, c->fd, &ee);
  stream_begin (c);
}

static void
on_event (Conn *c, const char *ev, size_t len, int64_t t)
{
  if (len == 0)
    return;
  c->events++;
  n_events++;
  if (!c->got_first)
    {
      c->got_first = 1;
      c->t_first = t;
      vec_push (&v_ttfe, (double) (t - c->t_start) / 1e6);
    }
  const char *p = memmem (ev, len, "[ts=", 4);
  if (p != NULL)
    {
      int64_t ts = strtoll (p + 4, NULL, 10);
      vec_push (&v_delay, (double) (t - ts) / 1e6);
      if (dump != NULL)
        fprintf (dump, "%d %d %lld %lld %.4f\n", c->index, c->events, (long long) ts,
                 (long long) t, (double) (t - ts) / 1e6);
      if (c->last_ts != 0)
        vec_push (&v_jitter, (double) ((t - c->last_arrival) - (ts - c->last_ts)) / 1e6);
      c->last_ts = ts;
      c->last_arrival = t;
    }
}

/* Body bytes (de-chunked) into the SSE splitter. */
static void
sse_feed (Conn *c, const char *data, size_t len, int64_t t)
{
  if (c->ev_len + len > c->ev_cap)
    {
      c->ev_cap = (c->ev_len + len) * 2;
      c->ev = realloc (c->ev, c->ev_cap);
      if (c->ev == NULL)
        abort ();
    }
  memcpy (c->ev + c->ev_len, data, len);
  c->ev_len += len;
  size_t start = 0;
  for (;;)
    {
      char *q = memmem (c->ev + start, c->ev_len - start, "\n\n", 2);
      if (q == NULL)
        break;
      size_t end = (size_t) (q - c->ev);
      on_event (c, c->ev + start, end - start, t);
      start = end + 2;
      while (start < c->ev_len && c->ev[start] == '\n')
        start++;
    }
  if (start > 0)
    {
      memmove (c->ev, c->ev + start, c->ev_len - start);
      c->ev_len -= start;
    }
}

/* Consumes c->in; returns 1 when the response is complete, -1 on error. */
static int
parse (Conn *c, int64_t t)
{
  size_t pos = 0;
  int done = 0;

  if (c->state == S_HEAD)
    {
      char *e = memmem (c->in, c->in_len, "\r\n\r\n", 4);
      if (e == NULL)
        return c->in_len > 65536 ? -1 : 0;
      size_t hlen = (size_t) (e - c->in) + 4;
      if (c->in_len < 12 || strncmp (c->in, "HTTP/1.", 7) != 0)
        return -1;
      c->status = atoi (c->in + 9);
      c->bmode = B_CLOSE;
      c->remaining = -1;
      /* headers, case-insensitively */
      char *line = memchr (c->in, '\n', hlen) + 1;
      while (line < c->in + hlen - 2)
        {
          char *nl = memchr (line, '\n', (size_t) (c->in + hlen - line));
          if (strncasecmp (line, "content-length:", 15) == 0)
            {
              c->remaining = strtoll (line + 15, NULL, 10);
              if (c->bmode != B_CHUNK_SIZE)
                c->bmode = B_LEN;
            }
          else if (strncasecmp (line, "transfer-encoding:", 18) == 0 &&
                   memmem (line, (size_t) (nl - line), "chunked", 7) != NULL)
            c->bmode = B_CHUNK_SIZE;
          else if (strncasecmp (line, "connection:", 11) == 0 &&
                   memmem (line, (size_t) (nl - line), "close", 5) != NULL)
            c->server_closes = 1;
          line = nl + 1;
        }
      if (c->in[5] == '1' && c->in[7] == '0')
        c->server_closes = 1;
      pos = hlen;
      c->state = S_BODY;
      if (c->bmode == B_LEN && c->remaining == 0)
        done = 1;
    }

  while (!done && pos < c->in_len)
    {
      size_t avail = c->in_len - pos;
      switch (c->bmode)
        {
        case B_LEN:
          {
            size_t take = avail < (size_t) c->remaining ? avail : (size_t) c->remaining;
            sse_feed (c, c->in + pos, take, t);
            pos += take;
            c->remaining -= (long long) take;
            if (c->remaining == 0)
              done = 1;
            break;
          }
        case B_CLOSE:
          sse_feed (c, c->in + pos, avail, t);
          pos += avail;
          break;
        case B_CHUNK_SIZE:
          {
            char *nl = memmem (c->in + pos, avail, "\r\n", 2);
            if (nl == NULL)
              goto out;
            c->remaining = strtoll (c->in + pos, NULL, 16);
            pos = (size_t) (nl - c->in) + 2;
            c->bmode = c->remaining == 0 ? B_TRAILER : B_CHUNK_DATA;
            break;
          }
        case B_CHUNK_DATA:
          {
            size_t take = avail < (size_t) c->remaining ? avail : (size_t) c->remaining;
            sse_feed (c, c->in + pos, take, t);
            pos += take;
            c->remaining -= (long long) take;
            if (c->remaining == 0)
              c->bmode = B_CHUNK_CRLF;
            break;
          }
        case B_CHUNK_CRLF:
          if (avail < 2)
            goto out;
          pos += 2;
          c->bmode = B_CHUNK_SIZE;
          break;
        case B_TRAILER:
          {
            char *nl = memmem (c->in + pos, avail, "\r\n", 2);
            if (nl == NULL)
              goto out;
            size_t l = (size_t) (nl - (c->in + pos));
            pos += l + 2;
            if (l == 0)
              done = 1;
            break;
          }
        }
    }
out:
  memmove (c->in, c->in + pos, c->in_len - pos);
  c->in_len -= pos;
  return done;
}

static void
io_error (Conn *c)
{
  n_io++;
  if (c->state == S_CONNECTING)
    n_io_connect++;
  else if (!c->got_bytes)
    {
      if (c->served > 0)
        n_io_reused_early++;
      else
        n_io_fresh_early++;
    }
  else
    n_io_mid++;
}

static void
on_ready (Conn *c, uint32_t evs)
{
  if (c->state == S_CONNECTING)
    {
      if (evs & (EPOLLERR | EPOLLHUP))
        {
          io_error (c);
          conn_close (c);
          stream_end (c, 0);
          return;
        }
      stream_begin (c);
    }
  if (c->state == S_WRITING && (evs & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
    {
      while (c->wrote < request_len)
        {
          ssize_t w = send (c->fd, request + c->wrote, request_len - c->wrote, MSG_NOSIGNAL);
          if (w < 0)
            {
              if (errno == EAGAIN)
                return;
              io_error (c);
              stream_end (c, 0);
              return;
            }
          c->wrote += (size_t) w;
        }
      c->t_written = now_ns ();
      c->state = S_HEAD;
      struct epoll_event ee = { .events = EPOLLIN, .data.ptr = c };
      epoll_ctl (epfd, EPOLL_CTL_MOD, c->fd, &ee);
      return;
    }
  if ((c->state == S_HEAD || c->state == S_BODY) && (evs & (EPOLLIN | EPOLLERR | EPOLLHUP)))
    {
      for (;;)
        {
          if (c->in_cap - c->in_len < 16384)
            {
              c->in_cap = c->in_cap ? c->in_cap * 2 : 65536;
              c->in = realloc (c->in, c->in_cap);
              if (c->in == NULL)
                abort ();
            }
          ssize_t r = recv (c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
          if (r < 0)
            {
              if (errno == EAGAIN)
                return;
              io_error (c);
              stream_end (c, 0);
              return;
            }
          int64_t t = now_ns ();
          if (r == 0)
            {
              int ok = c->state == S_BODY && c->bmode == B_CLOSE && c->status == 200;
              if (!ok)
                io_error (c);
              c->server_closes = 1;
              stream_end (c, ok);
              return;
            }
          c->in_len += (size_t) r;
          c->got_bytes = 1;
          int d = parse (c, t);
          if (d < 0)
            {
              io_error (c);
              stream_end (c, 0);
              return;
            }
          if (d == 1)
            {
              if (c->status != 200)
                n_bad_status++;
              stream_end (c, c->status == 200);
              return;
            }
        }
    }
}

static void
print_stats (const char *name, Vec *a)
{
  qsort (a->v, a->n, sizeof (double), cmp_d);
  printf ("\"%s\":{\"n\":%zu,\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,\"max\":%.4f}",
          name, a->n, pct (a, 50), pct (a, 90), pct (a, 99), a->n ? a->v[a->n - 1] : -1.0);
}

int
main (int argc, char **argv)
{
  const char *url = NULL, *body_file = NULL, *label = "";
  char *headers = calloc (1, 1);
  int conc = 1, rounds = 1, timeout_s = 60;

  for (int i = 1; i < argc; i++)
    {
      const char *a = argv[i];
      const char *v = i + 1 < argc ? argv[i + 1] : NULL;
      if (v == NULL)
        {
          fprintf (stderr, "stream-client: %s needs a value\n", a);
          return 2;
        }
      if (!strcmp (a, "--url")) url = v;
      else if (!strcmp (a, "--body")) body_file = v;
      else if (!strcmp (a, "--label")) label = v;
      else if (!strcmp (a, "--concurrency")) conc = atoi (v);
      else if (!strcmp (a, "--rounds")) rounds = atoi (v);
      else if (!strcmp (a, "--timeout")) timeout_s = atoi (v);
      else if (!strcmp (a, "--expect-events")) expect_events = atoi (v);
      else if (!strcmp (a, "--dump-events"))
        open_dump (&dump, v);
      else if (!strcmp (a, "--dump-streams"))
        open_dump (&dump_streams, v);
      else if (!strcmp (a, "--header"))
        {
          size_t l = strlen (headers);
          headers = realloc (headers, l + strlen (v) + 3);
          sprintf (headers + l, "%s\r\n", v);
        }
      else
        {
          fprintf (stderr, "stream-client: unknown option %s\n", a);
          return 2;
        }
      i++;
    }
  if (url == NULL || conc < 1 || rounds < 1)
    {
      fprintf (stderr, "usage: stream-client --url http://127.0.0.1:PORT/PATH [--body FILE] "
               "[--header 'N: v']... [--concurrency N] [--rounds R] [--timeout S]\n"
               "       [--label TEXT] [--expect-events N] [--dump-events FILE] [--dump-streams FILE]\n");
      return 2;
    }

  /* http://HOST:PORT/PATH, numeric IPv4 only */
  char host[64];
  int port = 80;
  const char *p = url;
  if (strncmp (p, "http://", 7) != 0)
    {
      fprintf (stderr, "stream-client: only http:// URLs\n");
      return 2;
    }
  p += 7;
  const char *slash = strchr (p, '/');
  const char *path = slash ? slash : "/";
  size_t hl = (size_t) ((slash ? slash : p + strlen (p)) - p);
  if (hl >= sizeof host)
    return 2;
  memcpy (host, p, hl);
  host[hl] = 0;
  char hostname[64];
  strcpy (hostname, host);
  char *colon = strchr (hostname, ':');
  if (colon)
    {
      port = atoi (colon + 1);
      *colon = 0;
    }
  memset (&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons ((uint16_t) port);
  if (inet_pton (AF_INET, strcmp (hostname, "localhost") ? hostname : "127.0.0.1", &addr.sin_addr) != 1)
    {
      fprintf (stderr, "stream-client: numeric IPv4 host only\n");
      return 2;
    }

  char *body = NULL;
  size_t body_len = 0;
  if (body_file)
    {
      FILE *f = fopen (body_file, "rb");
      if (!f)
        die (body_file);
      struct stat st;
      fstat (fileno (f), &st);
      body_len = (size_t) st.st_size;
      body = malloc (body_len + 1);
      if (fread (body, 1, body_len, f) != body_len)
        die ("read body");
      fclose (f);
    }
  size_t cap = strlen (path) + strlen (host) + strlen (headers) + 256 + body_len;
  request = malloc (cap);
  int n = snprintf (request, cap,
                    "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                    "Accept: text/event-stream\r\n%sContent-Length: %zu\r\n\r\n",
                    path, host, headers, body_len);
  memcpy (request + n, body, body_len);
  request_len = (size_t) n + body_len;

  epfd = epoll_create1 (EPOLL_CLOEXEC);
  Conn *conns = calloc ((size_t) conc, sizeof (Conn));
  long long waited0 = run_delay_ns ();
  int64_t t0 = now_ns ();
  for (int i = 0; i < conc; i++)
    {
      conns[i].index = i;
      conns[i].fd = -1;
      conns[i].rounds_left = rounds;
      conn_open (&conns[i]);
    }
  active = conc;
  int64_t deadline = t0 + (int64_t) timeout_s * 1000000000;
  struct epoll_event evs[512];
  while (active > 0)
    {
      int64_t left = (deadline - now_ns ()) / 1000000;
      if (left <= 0)
        break;
      int k = epoll_wait (epfd, evs, 512, left > 1000 ? 1000 : (int) left);
      if (k < 0 && errno != EINTR)
        die ("epoll_wait");
      for (int i = 0; i < k; i++)
        on_ready (evs[i].data.ptr, evs[i].events);
    }
  double wall = (double) (now_ns () - t0) / 1e9;
  long long waited1 = run_delay_ns ();
  double waited_ms = waited0 >= 0 && waited1 >= waited0 ? (double) (waited1 - waited0) / 1e6 : -1;
  long timed_out = 0;
  for (int i = 0; i < conc; i++)
    if (conns[i].state != S_DONE)
      timed_out += conns[i].rounds_left;

  printf ("{\"label\":\"%s\",\"concurrency\":%d,\"rounds\":%d,\"streams_ok\":%ld,\"errors\":%ld,"
          "\"bad_status\":%ld,\"short\":%ld,\"io_errors\":%ld,\"timed_out\":%ld,\"reconnects\":%ld,"
          "\"io_kinds\":{\"connect\":%ld,\"reused_before_answer\":%ld,\"fresh_before_answer\":%ld,"
          "\"mid_answer\":%ld},\"events\":%ld,\"wall_s\":%.3f,\"run_delay_ms\":%.3f,",
          label, conc, rounds, n_ok, n_err + timed_out, n_bad_status, n_short, n_io, timed_out, n_reconnects,
          n_io_connect, n_io_reused_early, n_io_fresh_early, n_io_mid, n_events, wall, waited_ms);
  print_stats ("ttfe_ms", &v_ttfe);
  printf (",");
  print_stats ("event_delay_ms", &v_delay);
  printf (",");
  print_stats ("gap_jitter_ms", &v_jitter);
  printf (",");
  print_stats ("stream_ms", &v_total);
  printf ("}\n");
  if (dump != NULL && fclose (dump) != 0)
    die ("--dump-events");
  if (dump_streams != NULL && fclose (dump_streams) != 0)
    die ("--dump-streams");
  return (n_err + timed_out) == 0 ? 0 : 1;
}
