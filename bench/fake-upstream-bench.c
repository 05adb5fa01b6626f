/* fake-upstream-bench: a small, fast stand-in for the ChatGPT backend, for
 * benchmarks only (the tests use tests/fake-upstream.c, which is far richer
 * and far slower).
 *
 *   fake-upstream-bench [--port N] [--port-file FILE] [--fixture SSE_FILE]
 *                       [--events N] [--gap-ms MS]
 *
 * One thread, one epoll loop, raw HTTP/1.1 with keep-alive, listening on
 * 127.0.0.1 only. Every chunk of a streamed answer is ONE write (chunk size,
 * data and CRLF together), so the baseline costs as little as it can. Any
 * bearer token is accepted (several accounts' alike); the body is read, not
 * checked.
 *
 *   POST .../responses            200 text/event-stream with the x-codex-*
 *                                 quota headers of the real backend:
 *                                 events == 0: the fixture (responses-full.sse),
 *                                   in one chunk (split=1: a chunk per event);
 *                                 events  > 0: response.created at once, then
 *                                   EVENTS response.output_text.delta events
 *                                   GAP_MS apart, then response.completed.
 *                                   Every delta's text carries "[ts=NS]", its
 *                                   send time on CLOCK_MONOTONIC, so a client
 *                                   on the same machine computes the delay
 *                                   each path added to each event exactly.
 *   POST .../responses/compact,   200 application/json (a non-streaming answer)
 *   POST /v1/responses without "stream":true
 *   POST .../chat/completions     OpenAI chat: SSE on the same schedule (chat
 *                                 chunks, "data: [DONE]") with "stream":true,
 *                                 else one JSON completion
 *   GET  .../models               a small model list (OpenAI and Codex shapes)
 *   GET  /__ctl?events=N&gap_ms=G&split=0|1   changes the schedule
 *   GET  /__stats                 {"requests":N,"streams":N,"active":N}
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
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_FD 65536

static unsigned cfg_events = 0, cfg_gap_ms = 10, cfg_split = 0;
static char *fixture;
static size_t fixture_len;
static unsigned long long n_requests, n_streams, n_active;

static int64_t
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* --- growable buffers ---------------------------------------------------- */

typedef struct { char *p; size_t len, cap; } Buf;

static void
buf_reserve (Buf *b, size_t more)
{
  if (b->len + more <= b->cap)
    return;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + more)
    cap *= 2;
  b->p = realloc (b->p, cap);
  if (b->p == NULL)
    abort ();
  b->cap = cap;
}

static void
buf_add (Buf *b, const void *d, size_t n)
{
  buf_reserve (b, n);
  memcpy (b->p + b->len, d, n);
  b->len += n;
}

static void
buf_printf (Buf *b, const char *fmt, ...)
{
  va_list ap;
  for (;;)
    {
      buf_reserve (b, 256);
      va_start (ap, fmt);
      int n = vsnprintf (b->p + b->len, b->cap - b->len, fmt, ap);
      va_end (ap);
      if ((size_t) n < b->cap - b->len)
        {
          b->len += (size_t) n;
          return;
        }
      buf_reserve (b, (size_t) n + 1);
    }
}

static void
buf_chunk (Buf *b, const char *d, size_t n)
{
  buf_printf (b, "%zx\r\n", n);
  buf_add (b, d, n);
  buf_add (b, "\r\n", 2);
}

/* --- connections --------------------------------------------------------- */

typedef struct {
  int fd;
  unsigned gen;
  Buf in, out;
  int close_after;     /* Connection: close, or the peer half-closed */
  int busy;            /* a response (a stream) is under way */
  /* the stream */
  int chat;
  unsigned next, events, gap_ms;
} Conn;

static Conn *conns[MAX_FD];
static int epfd, tfd;

/* Timer heap of (due, fd, gen). */
typedef struct { int64_t due; int fd; unsigned gen; } Tick;
static Tick *heap;
static size_t heap_n, heap_cap;

static void
heap_push (Tick t)
{
  if (heap_n == heap_cap)
    {
      heap_cap = heap_cap ? heap_cap * 2 : 1024;
      heap = realloc (heap, heap_cap * sizeof (Tick));
      if (heap == NULL)
        abort ();
    }
  size_t i = heap_n++;
  while (i > 0 && heap[(i - 1) / 2].due > t.due)
    {
      heap[i] = heap[(i - 1) / 2];
      i = (i - 1) / 2;
    }
  heap[i] = t;
}

static Tick
heap_pop (void)
{
  Tick top = heap[0], last = heap[--heap_n];
  size_t i = 0;
  for (;;)
    {
      size_t c = 2 * i + 1;
      if (c >= heap_n)
        break;
      if (c + 1 < heap_n && heap[c + 1].due < heap[c].due)
        c++;
      if (heap[c].due >= last.due)
        break;
      heap[i] = heap[c];
      i = c;
    }
  if (heap_n > 0)
    heap[i] = last;
  return top;
}

static void
arm_timer (void)
{
  struct itimerspec its = { 0 };
  if (heap_n > 0)
    {
      int64_t due = heap[0].due;
      if (due <= 0)
        due = 1;
      its.it_value.tv_sec = due / 1000000000;
      its.it_value.tv_nsec = due % 1000000000;
    }
  timerfd_settime (tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void
conn_close (Conn *c)
{
  if (c->busy && c->events > 0)
    n_active--;
  epoll_ctl (epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close (c->fd);
  conns[c->fd] = NULL;
  free (c->in.p);
  free (c->out.p);
  free (c);
}

static void conn_process (Conn *c);

/* Writes what it can of c->out; returns -1 when the connection died. */
static int
conn_flush (Conn *c)
{
  size_t off = 0;
  while (off < c->out.len)
    {
      ssize_t w = send (c->fd, c->out.p + off, c->out.len - off, MSG_NOSIGNAL);
      if (w < 0)
        {
          if (errno == EAGAIN)
            break;
          return -1;
        }
      off += (size_t) w;
    }
  memmove (c->out.p, c->out.p + off, c->out.len - off);
  c->out.len -= off;
  struct epoll_event ee = { .events = EPOLLIN | (c->out.len ? EPOLLOUT : 0), .data.fd = c->fd };
  epoll_ctl (epfd, EPOLL_CTL_MOD, c->fd, &ee);
  return 0;
}

/* As the real upstream: the quota fields, and a request id of its own
 * for every answer (so that a proxy cannot take two answers' fields for
 * the same as a whole). */
static void
quota_headers (Buf *b)
{
  static unsigned long long answers;
  long long now = (long long) time (NULL);
  buf_printf (b,
              "x-codex-primary-used-percent: 12.5\r\n"
              "x-codex-primary-window-minutes: 300\r\n"
              "x-codex-primary-reset-after-seconds: 3600\r\n"
              "x-codex-primary-reset-at: %lld\r\n"
              "x-codex-secondary-used-percent: 3\r\n"
              "x-codex-secondary-window-minutes: 10080\r\n"
              "x-codex-secondary-reset-after-seconds: 86400\r\n"
              "x-codex-secondary-reset-at: %lld\r\n"
              "x-request-id: req_%016llx\r\n"
              "openai-model: gpt-5.5\r\n", now + 3600, now + 86400, ++answers);
}

static void
reply (Conn *c, int status, const char *ctype, const char *body, size_t len)
{
  const char *reason = status == 200 ? "OK" : status == 404 ? "Not Found" : "Bad Request";
  buf_printf (&c->out, "HTTP/1.1 %d %s\r\nServer: fake-upstream-bench\r\nContent-Type: %s\r\n"
              "Content-Length: %zu\r\n%s\r\n", status, reason, ctype, len,
              c->close_after ? "Connection: close\r\n" : "");
  buf_add (&c->out, body, len);
}

static const char RESP_JSON[] =
  "{\"id\":\"resp_bench0000000000000000\",\"object\":\"response\",\"created_at\":1795487941,"
  "\"status\":\"completed\",\"model\":\"gpt-5.5\",\"output\":[{\"id\":\"msg_bench0000000000000000\","
  "\"type\":\"message\",\"status\":\"completed\",\"role\":\"assistant\",\"content\":[{\"type\":"
  "\"output_text\",\"text\":\"hello\",\"annotations\":[]}]}],\"usage\":{\"input_tokens\":42,"
  "\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":1,\"output_tokens_details\":"
  "{\"reasoning_tokens\":0},\"total_tokens\":43}}";

static const char CHAT_JSON[] =
  "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":1795487941,"
  "\"model\":\"gpt-5.5\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
  "\"content\":\"hello\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":42,"
  "\"completion_tokens\":1,\"total_tokens\":43}}";

static const char MODELS_JSON[] =
  "{\"object\":\"list\",\"data\":[{\"id\":\"gpt-5.5\",\"object\":\"model\",\"created\":0,"
  "\"owned_by\":\"bench\"}],\"models\":[{\"slug\":\"gpt-5.5\",\"display_name\":\"gpt-5.5\"}]}";

static const char NOT_FOUND[] =
  "{\"error\":{\"message\":\"not found\",\"type\":\"invalid_request_error\",\"code\":null,\"param\":null}}";

/* Event I of the stream into c->out as one chunk. */
static void
stream_event (Conn *c, unsigned i)
{
  char ev[1024];
  int n;

  if (!c->chat)
    {
      if (i == 0)
        n = snprintf (ev, sizeof ev,
          "event: response.created\n"
          "data: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_bench0000000000000000\","
          "\"object\":\"response\",\"created_at\":1795487841,\"status\":\"in_progress\","
          "\"model\":\"gpt-5.5\",\"output\":[]},\"sequence_number\":0}\n\n");
      else if (i <= c->events)
        n = snprintf (ev, sizeof ev,
          "event: response.output_text.delta\n"
          "data: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_bench0000000000000000\","
          "\"output_index\":0,\"content_index\":0,\"delta\":\"[ts=%lld] \",\"sequence_number\":%u}\n\n",
          (long long) now_ns (), i);
      else
        n = snprintf (ev, sizeof ev,
          "event: response.completed\n"
          "data: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_bench0000000000000000\","
          "\"object\":\"response\",\"created_at\":1795487841,\"status\":\"completed\",\"model\":\"gpt-5.5\","
          "\"output\":[],\"usage\":{\"input_tokens\":42,\"input_tokens_details\":{\"cached_tokens\":0},"
          "\"output_tokens\":%u,\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":%u}},"
          "\"sequence_number\":%u}\n\n", c->events, 42 + c->events, c->events + 1);
    }
  else if (i == 0)
    n = snprintf (ev, sizeof ev,
      "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1795487941,"
      "\"model\":\"gpt-5.5\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
      "\"finish_reason\":null}]}\n\n");
  else if (i <= c->events)
    n = snprintf (ev, sizeof ev,
      "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1795487941,"
      "\"model\":\"gpt-5.5\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"[ts=%lld] \"},"
      "\"finish_reason\":null}]}\n\n", (long long) now_ns ());
  else
    n = snprintf (ev, sizeof ev,
      "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1795487941,"
      "\"model\":\"gpt-5.5\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
      "\"usage\":{\"prompt_tokens\":42,\"completion_tokens\":%u,\"total_tokens\":%u}}\n\n"
      "data: [DONE]\n\n", c->events, 42 + c->events);
  buf_chunk (&c->out, ev, (size_t) n);
}

static void
sse_head (Conn *c, int quota)
{
  buf_printf (&c->out, "HTTP/1.1 200 OK\r\nServer: fake-upstream-bench\r\n"
              "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n");
  if (quota)
    quota_headers (&c->out);
  buf_printf (&c->out, "%sTransfer-Encoding: chunked\r\n\r\n",
              c->close_after ? "Connection: close\r\n" : "");
}

static void
start_stream (Conn *c, int chat)
{
  n_streams++;
  sse_head (c, !chat);
  if (cfg_events == 0 && !chat)
    {
      if (cfg_split)
        {
          const char *p = fixture, *end = fixture + fixture_len;
          while (p < end)
            {
              const char *q = memmem (p, (size_t) (end - p), "\n\n", 2);
              const char *stop = q ? q + 2 : end;
              buf_chunk (&c->out, p, (size_t) (stop - p));
              p = stop;
            }
        }
      else
        buf_chunk (&c->out, fixture, fixture_len);
      buf_add (&c->out, "0\r\n\r\n", 5);
      return;
    }
  c->chat = chat;
  c->events = cfg_events > 0 ? cfg_events : 1;
  c->gap_ms = cfg_events > 0 ? cfg_gap_ms : 0;
  c->next = 0;
  c->busy = 1;
  n_active++;
  stream_event (c, 0);
  heap_push ((Tick) { now_ns () + (int64_t) c->gap_ms * 1000000, c->fd, c->gen });
  arm_timer ();
}

/* The stream's next event is due. */
static void
stream_tick (Conn *c)
{
  c->next++;
  stream_event (c, c->next);
  if (c->next > c->events)
    {
      buf_add (&c->out, "0\r\n\r\n", 5);
      c->busy = 0;
      n_active--;
    }
  else
    heap_push ((Tick) { now_ns () + (int64_t) c->gap_ms * 1000000, c->fd, c->gen });
  if (conn_flush (c) < 0)
    {
      conn_close (c);
      return;
    }
  if (!c->busy)
    conn_process (c);
}

static unsigned
query_uint (const char *q, const char *name, unsigned dflt)
{
  size_t n = strlen (name);
  for (const char *p = q; p && *p; p = strchr (p, '&') ? strchr (p, '&') + 1 : NULL)
    if (strncmp (p, name, n) == 0 && p[n] == '=')
      return (unsigned) strtoul (p + n + 1, NULL, 10);
  return dflt;
}

static int
says_stream (const char *body, size_t len)
{
  const char *p = memmem (body, len < 8192 ? len : 8192, "\"stream\"", 8);
  if (p == NULL)
    return 0;
  p += 8;
  while (p < body + len && (*p == ' ' || *p == ':'))
    p++;
  return (size_t) (body + len - p) >= 4 && strncmp (p, "true", 4) == 0;
}

static int
ends_with (const char *s, size_t n, const char *suffix)
{
  size_t m = strlen (suffix);
  return n >= m && memcmp (s + n - m, suffix, m) == 0;
}

/* Answers every complete request in c->in, until a stream is under way. */
static void
conn_process (Conn *c)
{
  while (!c->busy && c->in.len > 0)
    {
      char *he = memmem (c->in.p, c->in.len, "\r\n\r\n", 4);
      if (he == NULL)
        break;
      size_t hlen = (size_t) (he - c->in.p) + 4;
      long long clen = 0;
      int chunked = 0;
      c->close_after = 0;
      for (char *l = memchr (c->in.p, '\n', hlen) + 1; l < c->in.p + hlen - 2;)
        {
          char *nl = memchr (l, '\n', (size_t) (c->in.p + hlen - l));
          if (strncasecmp (l, "content-length:", 15) == 0)
            clen = strtoll (l + 15, NULL, 10);
          else if (strncasecmp (l, "transfer-encoding:", 18) == 0 &&
                   memmem (l, (size_t) (nl - l), "chunked", 7))
            chunked = 1;
          else if (strncasecmp (l, "connection:", 11) == 0 &&
                   memmem (l, (size_t) (nl - l), "close", 5))
            c->close_after = 1;
          l = nl + 1;
        }
      size_t total;
      if (chunked)
        {
          /* Good enough for a fake: a JSON body never holds a bare CRLF. */
          char *end = memmem (c->in.p + hlen, c->in.len - hlen, "\r\n0\r\n\r\n", 7);
          if (end == NULL)
            {
              if (c->in.len - hlen >= 5 && memcmp (c->in.p + hlen, "0\r\n\r\n", 5) == 0)
                end = c->in.p + hlen - 2;
              else
                break;
            }
          total = (size_t) (end - c->in.p) + 7;
        }
      else
        {
          total = hlen + (size_t) clen;
          if (c->in.len < total)
            break;
        }

      n_requests++;
      char *body = c->in.p + hlen;
      size_t blen = total - hlen;
      char *sp1 = memchr (c->in.p, ' ', hlen);
      char *sp2 = sp1 ? memchr (sp1 + 1, ' ', hlen - (size_t) (sp1 + 1 - c->in.p)) : NULL;
      if (sp1 == NULL || sp2 == NULL)
        {
          c->close_after = 1;
          reply (c, 400, "application/json", NOT_FOUND, sizeof NOT_FOUND - 1);
        }
      else
        {
          int post = strncmp (c->in.p, "POST ", 5) == 0;
          char path[2048];
          size_t plen = (size_t) (sp2 - sp1 - 1);
          if (plen >= sizeof path)
            plen = sizeof path - 1;
          memcpy (path, sp1 + 1, plen);
          path[plen] = 0;
          char *query = strchr (path, '?');
          if (query)
            *query++ = 0;
          plen = strlen (path);

          if (strcmp (path, "/__ctl") == 0)
            {
              if (query)
                {
                  cfg_events = query_uint (query, "events", cfg_events);
                  cfg_gap_ms = query_uint (query, "gap_ms", cfg_gap_ms);
                  cfg_split = query_uint (query, "split", cfg_split);
                }
              char j[128];
              int n = snprintf (j, sizeof j, "{\"events\":%u,\"gap_ms\":%u,\"split\":%s}",
                                cfg_events, cfg_gap_ms, cfg_split ? "true" : "false");
              reply (c, 200, "application/json", j, (size_t) n);
            }
          else if (strcmp (path, "/__stats") == 0)
            {
              char j[160];
              int n = snprintf (j, sizeof j, "{\"requests\":%llu,\"streams\":%llu,\"active\":%llu}",
                                n_requests, n_streams, n_active);
              reply (c, 200, "application/json", j, (size_t) n);
            }
          else if (post && ends_with (path, plen, "/responses/compact"))
            reply (c, 200, "application/json", RESP_JSON, sizeof RESP_JSON - 1);
          else if (post && ends_with (path, plen, "/chat/completions"))
            {
              if (says_stream (body, blen))
                start_stream (c, 1);
              else
                reply (c, 200, "application/json", CHAT_JSON, sizeof CHAT_JSON - 1);
            }
          else if (post && ends_with (path, plen, "/responses"))
            {
              if (strncmp (path, "/v1/", 4) == 0 && !says_stream (body, blen))
                reply (c, 200, "application/json", RESP_JSON, sizeof RESP_JSON - 1);
              else
                start_stream (c, 0);
            }
          else if (ends_with (path, plen, "/models"))
            reply (c, 200, "application/json", MODELS_JSON, sizeof MODELS_JSON - 1);
          else
            reply (c, 404, "application/json", NOT_FOUND, sizeof NOT_FOUND - 1);
        }
      memmove (c->in.p, c->in.p + total, c->in.len - total);
      c->in.len -= total;
      if (c->close_after && !c->busy)
        break;
    }
  int fd = c->fd;
  if (conn_flush (c) < 0 || (c->close_after && !c->busy && c->out.len == 0))
    {
      if (conns[fd] == c)
        conn_close (c);
    }
}

static void
on_readable (Conn *c)
{
  for (;;)
    {
      buf_reserve (&c->in, 65536);
      ssize_t r = recv (c->fd, c->in.p + c->in.len, c->in.cap - c->in.len, 0);
      if (r < 0)
        {
          if (errno == EAGAIN)
            break;
          conn_close (c);
          return;
        }
      if (r == 0)
        {
          conn_close (c);
          return;
        }
      c->in.len += (size_t) r;
      if ((size_t) r < c->in.cap - c->in.len + (size_t) r)
        break;   /* short read: drained */
    }
  conn_process (c);
}

static void
load_fixture (const char *file)
{
  FILE *f = file ? fopen (file, "rb") : NULL;
  if (f != NULL)
    {
      struct stat st;
      fstat (fileno (f), &st);
      fixture_len = (size_t) st.st_size;
      fixture = malloc (fixture_len + 1);
      if (fread (fixture, 1, fixture_len, f) != fixture_len)
        fixture_len = 0;
      fclose (f);
    }
  if (fixture_len == 0)
    {
      if (file != NULL)
        fprintf (stderr, "fake-upstream-bench: cannot read %s; using a one-event stream\n", file);
      fixture = strdup ("event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":"
                        "{\"id\":\"resp_x\",\"status\":\"completed\",\"output\":[]},\"sequence_number\":0}\n\n");
      fixture_len = strlen (fixture);
    }
}

int
main (int argc, char **argv)
{
  int port = 0;
  const char *port_file = NULL, *fixture_file = NULL;

  for (int i = 1; i < argc; i++)
    {
      const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
      if (v == NULL)
        {
          fprintf (stderr, "usage: fake-upstream-bench [--port N] [--port-file F] [--fixture SSE] "
                   "[--events N] [--gap-ms MS]\n");
          return 2;
        }
      if (!strcmp (a, "--port")) port = atoi (v);
      else if (!strcmp (a, "--port-file")) port_file = v;
      else if (!strcmp (a, "--fixture")) fixture_file = v;
      else if (!strcmp (a, "--events")) cfg_events = (unsigned) atoi (v);
      else if (!strcmp (a, "--gap-ms")) cfg_gap_ms = (unsigned) atoi (v);
      else
        {
          fprintf (stderr, "fake-upstream-bench: unknown option %s\n", a);
          return 2;
        }
      i++;
    }
  load_fixture (fixture_file);
  signal (SIGPIPE, SIG_IGN);

  int lfd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt (lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
  sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  if (bind (lfd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen (lfd, 4096) < 0)
    {
      perror ("fake-upstream-bench: bind/listen");
      return 1;
    }
  socklen_t sl = sizeof sa;
  getsockname (lfd, (struct sockaddr *) &sa, &sl);
  int bound = ntohs (sa.sin_port);
  if (port_file != NULL)
    {
      char tmp[4096];
      snprintf (tmp, sizeof tmp, "%s.tmp", port_file);
      FILE *f = fopen (tmp, "w");
      if (f == NULL || fprintf (f, "%d\n", bound) < 0 || fclose (f) != 0 || rename (tmp, port_file) != 0)
        {
          fprintf (stderr, "fake-upstream-bench: cannot write %s\n", port_file);
          return 1;
        }
    }
  printf ("fake-upstream-bench: listening on http://127.0.0.1:%d\n", bound);
  fflush (stdout);

  epfd = epoll_create1 (EPOLL_CLOEXEC);
  tfd = timerfd_create (CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  struct epoll_event ee = { .events = EPOLLIN, .data.fd = lfd };
  epoll_ctl (epfd, EPOLL_CTL_ADD, lfd, &ee);
  ee.data.fd = tfd;
  epoll_ctl (epfd, EPOLL_CTL_ADD, tfd, &ee);

  struct epoll_event evs[256];
  for (;;)
    {
      int k = epoll_wait (epfd, evs, 256, -1);
      if (k < 0)
        {
          if (errno == EINTR)
            continue;
          perror ("epoll_wait");
          return 1;
        }
      for (int i = 0; i < k; i++)
        {
          int fd = evs[i].data.fd;
          if (fd == lfd)
            {
              for (;;)
                {
                  int cfd = accept4 (lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                  if (cfd < 0)
                    break;
                  if (cfd >= MAX_FD)
                    {
                      close (cfd);
                      continue;
                    }
                  setsockopt (cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                  static unsigned gen;
                  Conn *c = calloc (1, sizeof (Conn));
                  c->fd = cfd;
                  c->gen = ++gen;
                  conns[cfd] = c;
                  struct epoll_event ce = { .events = EPOLLIN, .data.fd = cfd };
                  epoll_ctl (epfd, EPOLL_CTL_ADD, cfd, &ce);
                }
            }
          else if (fd == tfd)
            {
              uint64_t x;
              while (read (tfd, &x, sizeof x) > 0)
                ;
              int64_t now = now_ns ();
              while (heap_n > 0 && heap[0].due <= now)
                {
                  Tick t = heap_pop ();
                  Conn *c = conns[t.fd];
                  if (c != NULL && c->gen == t.gen && c->busy)
                    stream_tick (c);
                }
              arm_timer ();
            }
          else
            {
              Conn *c = conns[fd];
              if (c == NULL)
                continue;
              if (evs[i].events & (EPOLLERR))
                {
                  conn_close (c);
                  continue;
                }
              if (evs[i].events & EPOLLOUT)
                {
                  if (conn_flush (c) < 0)
                    {
                      conn_close (c);
                      continue;
                    }
                  if (!c->busy && c->out.len == 0)
                    {
                      if (c->close_after)
                        {
                          conn_close (c);
                          continue;
                        }
                    }
                }
              if (evs[i].events & (EPOLLIN | EPOLLHUP))
                on_readable (c);
            }
        }
    }
}
