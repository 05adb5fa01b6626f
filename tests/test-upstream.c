/* test-upstream.c: the hot path's HTTP/1.1 client against a scripted raw
 * server on a loopback port (a thread per connection, blocking sockets):
 * framing, keep-alive reuse, a stale idle connection, truncation, limits
 * and cancellation.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "pooler-upstream.h"

/* What the server does for each request on a connection, in order; after
 * the last one it closes the connection. An answer of NULL: close without
 * answering. Pieces of an answer separated by "|" are written one by one
 * with a short pause, so the client sees them in separate reads; "^"
 * separates writes without a pause. */
typedef struct
{
  gatomicrefcount         ref_count;  /* the test's, and each running handler's */
  GThreadedSocketService *service;
  guint16                 port;
  const char * const     *script;
  guint                   n_script;
  gboolean                keep_open;   /* after the script: wait for the client to close */
  GMutex                  lock;
  guint                   connections;
  guint                   requests;
  GString                *last_request;
  GTlsCertificate        *tls;         /* serve https with it */
} Server;

static gboolean
read_request (GInputStream *in,
              GString      *request)
{
  char buffer[4096];
  gssize n;
  const char *blank;
  gsize length = 0;

  g_string_truncate (request, 0);
  for (;;)
    {
      blank = strstr (request->str, "\r\n\r\n");
      if (blank != NULL)
        {
          const char *cl = strstr (request->str, "Content-Length: ");

          if (cl != NULL && cl < blank)
            length = g_ascii_strtoull (cl + 16, NULL, 10);
          if (request->len >= (gsize) (blank + 4 - request->str) + length)
            return TRUE;
        }
      n = g_input_stream_read (in, buffer, sizeof buffer, NULL, NULL);
      if (n <= 0)
        return FALSE;
      g_string_append_len (request, buffer, n);
    }
}

static void
server_unref (Server *server)
{
  if (!g_atomic_ref_count_dec (&server->ref_count))
    return;
  g_string_free (server->last_request, TRUE);
  g_clear_object (&server->tls);
  g_mutex_clear (&server->lock);
  g_free (server);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Server, server_unref)

static gboolean
run_cb (GThreadedSocketService *service,
        GSocketConnection      *connection,
        GObject                *source,
        gpointer                user_data)
{
  /* A handler may outlive the test's server_free(): it holds a reference. */
  g_autoptr(Server) server = user_data;
  GSocket *socket = g_socket_connection_get_socket (connection);
  g_autoptr(GString) request = g_string_new (NULL);
  g_autoptr(GIOStream) io = G_IO_STREAM (g_object_ref (connection));
  GInputStream *in;
  GOutputStream *out;

  g_atomic_ref_count_inc (&server->ref_count);
  if (server->tls != NULL)
    {
      g_autoptr(GIOStream) tls = g_tls_server_connection_new (io, server->tls, NULL);

      if (tls == NULL || !g_tls_connection_handshake (G_TLS_CONNECTION (tls), NULL, NULL))
        {
          g_socket_shutdown (socket, TRUE, TRUE, NULL);
          return TRUE;
        }
      g_set_object (&io, tls);
    }
  in = g_io_stream_get_input_stream (io);
  out = g_io_stream_get_output_stream (io);

  g_mutex_lock (&server->lock);
  server->connections++;
  g_mutex_unlock (&server->lock);

  for (guint i = 0; i < server->n_script; i++)
    {
      g_auto(GStrv) pieces = NULL;

      if (!read_request (in, request))
        return TRUE;
      g_mutex_lock (&server->lock);
      server->requests++;
      g_string_assign (server->last_request, request->str);
      g_mutex_unlock (&server->lock);

      if (server->script[i] == NULL)
        break;
      pieces = g_strsplit (server->script[i], "|", -1);
      for (guint p = 0; pieces[p] != NULL; p++)
        {
          g_auto(GStrv) writes = g_strsplit (pieces[p], "^", -1);

          if (p > 0)
            g_usleep (20 * 1000);
          /* "^" splits a piece into writes without a pause (over TLS,
           * records that arrive together). */
          for (guint w = 0; writes[w] != NULL; w++)
            g_output_stream_write_all (out, writes[w], strlen (writes[w]), NULL, NULL, NULL);
        }
    }

  if (server->keep_open)
    {
      char c;

      while (g_input_stream_read (in, &c, 1, NULL, NULL) > 0)
        ;
    }
  g_socket_shutdown (socket, TRUE, TRUE, NULL);
  return TRUE;
}

static Server *
server_new_full (const char * const *script,
                 guint               n_script,
                 gboolean            keep_open)
{
  Server *server = g_new0 (Server, 1);
  g_autoptr(GError) error = NULL;

  g_atomic_ref_count_init (&server->ref_count);
  server->script = script;
  server->n_script = n_script;
  server->keep_open = keep_open;
  server->last_request = g_string_new (NULL);
  g_mutex_init (&server->lock);
  server->service = G_THREADED_SOCKET_SERVICE (g_threaded_socket_service_new (4));
  server->port = g_socket_listener_add_any_inet_port (G_SOCKET_LISTENER (server->service), NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (server->service, "run", G_CALLBACK (run_cb), server);
  g_socket_service_start (G_SOCKET_SERVICE (server->service));

  return server;
}

static void
server_free (Server *server)
{
  g_socket_service_stop (G_SOCKET_SERVICE (server->service));
  g_socket_listener_close (G_SOCKET_LISTENER (server->service));
  g_clear_object (&server->service);
  server_unref (server);
}

/* A NULL-terminated script. */
static Server *
server_new (const char * const *script,
            gboolean            keep_open)
{
  return server_new_full (script, g_strv_length ((GStrv) script), keep_open);
}

/* A script of @n entries, which may hold NULL (close without answering). */
static Server *
server_new_n (const char * const *script,
              guint               n)
{
  return server_new_full (script, n, FALSE);
}

static char *
server_url (Server *server)
{
  return g_strdup_printf ("http://127.0.0.1:%u/backend-api/codex/responses?x=1", server->port);
}

typedef struct
{
  GAsyncResult *result;
} Wait;

static void
store_result (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  Wait *wait = user_data;

  wait->result = g_object_ref (result);
}

static GAsyncResult *
wait_result (Wait *wait)
{
  while (wait->result == NULL)
    g_main_context_iteration (NULL, TRUE);
  return wait->result;
}

static PoolerUpstreamResponse *
send_request (PoolerUpstream *upstream,
              const char     *url,
              const char     *body,
              GCancellable   *cancellable,
              GError        **error)
{
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  g_autoptr(GBytes) bytes = body != NULL ? g_bytes_new_static (body, strlen (body)) : NULL;
  Wait wait = { 0 };
  PoolerUpstreamResponse *response;

  soup_message_headers_append (headers, "Content-Type", "application/json");
  soup_message_headers_append (headers, "Accept-Encoding", "gzip");     /* replaced */
  pooler_upstream_send_async (upstream, body != NULL ? "POST" : "GET", url, headers, bytes,
                              cancellable, store_result, &wait);
  response = pooler_upstream_send_finish (upstream, wait_result (&wait), error);
  g_object_unref (wait.result);
  return response;
}

typedef struct
{
  gboolean  done;
  GBytes   *bytes;
  GError   *error;
  guint     calls;
} Piece;

static void
store_piece (PoolerUpstreamResponse *response,
             GBytes                 *bytes,
             GError                 *error,
             gpointer                user_data)
{
  Piece *piece = user_data;

  g_assert_true (POOLER_IS_UPSTREAM_RESPONSE (response));
  g_assert_true ((bytes == NULL) != (error == NULL));
  piece->calls++;
  piece->done = TRUE;
  piece->bytes = bytes != NULL ? g_bytes_ref (bytes) : NULL;
  piece->error = error != NULL ? g_error_copy (error) : NULL;
}

/* Reads one piece of @response with @cancellable; NULL and @error when
 * it failed. Fails the test if no result comes within 5 s, if the
 * callback ran from within the read call, or ran twice. */
static GBytes *
read_piece (PoolerUpstreamResponse *response,
            GCancellable           *cancellable,
            GError                **error)
{
  Piece piece = { 0 };
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  pooler_upstream_response_read (response, cancellable, store_piece, &piece);
  g_assert_false (piece.done);
  while (!piece.done && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, FALSE);
  g_assert_true (piece.done);
  /* Nothing runs it again. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (piece.calls, ==, 1);
  if (piece.error != NULL)
    g_propagate_error (error, piece.error);
  return piece.bytes;
}

/* Reads the next piece of @response with @cancellable and expects it to
 * be @expected ("" for the end of the body). */
static void
assert_piece (PoolerUpstreamResponse *response,
              GCancellable           *cancellable,
              const char             *expected)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = read_piece (response, cancellable, &error);

  g_assert_no_error (error);
  g_assert_cmpmem (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), expected, strlen (expected));
}

/* Reads the whole body; NULL and @error when it broke off. Counts reads. */
static char *
read_body (PoolerUpstreamResponse *response,
           guint                  *n_reads,
           GError                **error)
{
  g_autoptr(GString) body = g_string_new (NULL);

  for (guint reads = 1;; reads++)
    {
      g_autoptr(GBytes) bytes = read_piece (response, NULL, error);

      if (bytes == NULL)
        return NULL;
      if (g_bytes_get_size (bytes) == 0)
        {
          if (n_reads != NULL)
            *n_reads = reads;
          return g_string_free (g_steal_pointer (&body), FALSE);
        }
      g_string_append_len (body, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
    }
}

/* Sends @request_body (NULL: a GET) and expects @expected as the whole
 * answer body. */
static void
assert_answer (PoolerUpstream *upstream,
               const char     *url,
               const char     *request_body,
               const char     *expected)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(PoolerUpstreamResponse) response = send_request (upstream, url, request_body, NULL, &error);
  g_autofree char *body = NULL;

  g_assert_no_error (error);
  body = read_body (response, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (body, ==, expected);
}

/* Sends @request with @body and returns the head the server read. */
static char *
send_built (Server                *server,
            PoolerUpstream        *upstream,
            PoolerUpstreamRequest *request,
            const char            *body)
{
  g_autoptr(GBytes) bytes = body != NULL ? g_bytes_new_static (body, strlen (body)) : NULL;
  g_autoptr(PoolerUpstreamResponse) response = NULL;
  g_autoptr(GError) error = NULL;
  Wait wait = { 0 };
  const char *blank;
  char *head;

  pooler_upstream_request_send_async (request, bytes, NULL, store_result, &wait);
  response = pooler_upstream_send_finish (upstream, wait_result (&wait), &error);
  g_object_unref (wait.result);
  g_assert_no_error (error);
  g_assert_cmpuint (pooler_upstream_response_get_status (response), ==, 200);
  g_free (read_body (response, NULL, &error));
  g_assert_no_error (error);

  g_mutex_lock (&server->lock);
  blank = strstr (server->last_request->str, "\r\n\r\n");
  g_assert_nonnull (blank);
  head = g_strndup (server->last_request->str, blank + 4 - server->last_request->str);
  g_mutex_unlock (&server->lock);
  return head;
}

/* A request built in place: the request line and Host from the URI, the
 * caller's headers in order less those the client writes itself and any
 * that would break the head, then Accept-Encoding and the length. */
static void
test_request_head (void)
{
  static const char * const script[] = {
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    NULL
  };
  static const char * const bad_urls[] = {
    "ftp://127.0.0.1/x", "not a url", "http:///no-host", "http://127.0.0.1:99999/x",
  };
  Server *server = server_new (script, TRUE);
  g_autoptr(PoolerUpstream) upstream = pooler_upstream_new ();
  g_autofree char *url = server_url (server);
  g_autofree char *other = g_strdup_printf ("http://127.0.0.1:%u/", server->port);
  g_autofree char *expected = NULL;
  g_autofree char *head = NULL;
  PoolerUpstreamRequest *request;

  for (guint i = 0; i < G_N_ELEMENTS (bad_urls); i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_null (pooler_upstream_request_new (upstream, "GET", bad_urls[i], &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    }

  /* Twice to the same URI (the kept parse), then another. */
  for (guint i = 0; i < 2; i++)
    {
      request = pooler_upstream_request_new (upstream, "POST", url, NULL);
      g_assert_nonnull (request);
      pooler_upstream_request_add_header (request, "X-One", "1");
      pooler_upstream_request_add_header (request, "host", "evil.example");
      pooler_upstream_request_add_header (request, "Content-Length", "1");
      pooler_upstream_request_add_header (request, "connection", "close");
      pooler_upstream_request_add_header (request, "Transfer-Encoding", "chunked");
      pooler_upstream_request_add_header (request, "Accept-Encoding", "br");
      pooler_upstream_request_add_header (request, "X-Split", "a\r\nInjected: 1");
      pooler_upstream_request_add_header (request, "X-Line", "a\nb");
      pooler_upstream_request_add_header (request, "X:Colon", "1");
      pooler_upstream_request_add_header (request, "", "1");
      pooler_upstream_request_add_header (request, "Transfer-Encoding ", "chunked");
      pooler_upstream_request_add_header (request, "X Space", "1");
      pooler_upstream_request_add_header (request, "X\tTab", "1");
      pooler_upstream_request_add_header (request, "Content-Type", "application/json");
      pooler_upstream_request_add_bearer (request, "eyJ.token");
      pooler_upstream_request_add_bearer (request, "eyJ.split\r\nInjected: 1");
      head = send_built (server, upstream, request, "{\"a\":1}");
      g_free (expected);
      expected = g_strdup_printf ("POST /backend-api/codex/responses?x=1 HTTP/1.1\r\n"
                                  "Host: 127.0.0.1:%u\r\n"
                                  "X-One: 1\r\n"
                                  "Content-Type: application/json\r\n"
                                  "Authorization: Bearer eyJ.token\r\n"
                                  "Accept-Encoding: identity\r\n"
                                  "Content-Length: 7\r\n\r\n", server->port);
      g_assert_cmpstr (head, ==, expected);
      g_clear_pointer (&head, g_free);
    }

  /* Without a body: a GET says nothing of one, a POST says 0. */
  for (guint i = 0; i < 2; i++)
    {
      const char *method = i == 0 ? "GET" : "POST";

      request = pooler_upstream_request_new (upstream, method, other, NULL);
      head = send_built (server, upstream, request, NULL);
      g_free (expected);
      expected = g_strdup_printf ("%s / HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
                                  "Accept-Encoding: identity\r\n%s\r\n", method, server->port,
                                  i == 0 ? "" : "Content-Length: 0\r\n");
      g_assert_cmpstr (head, ==, expected);
      g_clear_pointer (&head, g_free);
    }

  /* Built and never sent: freed whole. */
  request = pooler_upstream_request_new (upstream, "POST", url, NULL);
  pooler_upstream_request_add_header (request, "X-One", "1");
  pooler_upstream_request_free (request);

  g_assert_cmpuint (pooler_upstream_get_n_opened (upstream), ==, 1);
  server_free (server);
}

static void
test_content_length_keep_alive (void)
{
  static const char * const script[] = {
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\nx-codex-primary-used-percent: 12\r\n\r\nhello",
    "HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nbye",
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    NULL
  };
  Server *server = server_new (script, TRUE);
  g_autoptr(PoolerUpstream) upstream = pooler_upstream_new ();
  g_autofree char *url = server_url (server);
  g_autofree char *host = NULL;
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(PoolerUpstreamResponse) response = send_request (upstream, url, "{\"a\":1}", NULL, &error);
      g_autofree char *body = NULL;

      g_assert_no_error (error);
      g_assert_cmpuint (pooler_upstream_response_get_status (response), ==, i == 0 ? 200 : 201);
      if (i == 0)
        g_assert_cmpstr (soup_message_headers_get_one (pooler_upstream_response_get_headers (response),
                                                       "x-codex-primary-used-percent"), ==, "12");
      body = read_body (response, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (body, ==, i == 0 ? "hello" : "bye");
      /* At the end of the body, the connection is idle again. */
      g_assert_cmpuint (pooler_upstream_get_n_idle (upstream), ==, 1);
    }

  /* Without waiting: what the buffer holds, then the end (again). */
  {
    g_autoptr(PoolerUpstreamResponse) response = send_request (upstream, url, "{\"a\":1}", NULL, &error);
    g_autoptr(GString) body = g_string_new (NULL);

    g_assert_no_error (error);
    g_assert_cmpuint (pooler_upstream_response_get_status (response), ==, 200);
    for (;;)
      {
        g_autoptr(GBytes) bytes = pooler_upstream_response_read_buffered (response);

        if (bytes == NULL)
          {
            bytes = read_piece (response, NULL, &error);
            g_assert_no_error (error);
          }
        if (g_bytes_get_size (bytes) == 0)
          break;
        g_string_append_len (body, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
      }
    g_assert_cmpstr (body->str, ==, "hello");
    {
      g_autoptr(GBytes) end = pooler_upstream_response_read_buffered (response);

      g_assert_nonnull (end);
      g_assert_cmpuint (g_bytes_get_size (end), ==, 0);
    }
  }

  /* One connection carried all three, and the request head is ours. */
  g_assert_cmpuint (pooler_upstream_get_n_opened (upstream), ==, 1);
  g_assert_cmpuint (server->connections, ==, 1);
  g_assert_true (g_str_has_prefix (server->last_request->str,
                                   "POST /backend-api/codex/responses?x=1 HTTP/1.1\r\n"));
  host = g_strdup_printf ("\r\nHost: 127.0.0.1:%u\r\n", server->port);
  g_assert_nonnull (strstr (server->last_request->str, host));
  g_assert_nonnull (strstr (server->last_request->str, "\r\nAccept-Encoding: identity\r\n"));
  g_assert_null (strstr (server->last_request->str, "gzip"));
  g_assert_true (g_str_has_suffix (server->last_request->str, "Content-Length: 7\r\n\r\n{\"a\":1}"));

  pooler_upstream_close_idle (upstream);
  g_assert_cmpuint (pooler_upstream_get_n_connections (upstream), ==, 0);
  server_free (server);
}

static void
test_chunked (void)
{
  /* Chunk lines, data and trailers split across reads, an extension, a
   * bare-LF line end and a trailer. */
  static const char * const script[] = {
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    "a\r\nevent:|"
    " a\n\n\r\na|"
    ";ext=1\ndata: {}\n\n\n0\r\nX-Trailer: t\r|"
    "\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    NULL
  };
  Server *server = server_new (script, TRUE);
  g_autoptr(PoolerUpstream) upstream = pooler_upstream_new ();
  g_autofree char *url = server_url (server);
  g_autoptr(GError) error = NULL;
  g_autoptr(PoolerUpstreamResponse) first = send_request (upstream, url, "{}", NULL, &error);
  g_autoptr(PoolerUpstreamResponse) second = NULL;
  g_autofree char *body = NULL;
  g_autofree char *body2 = NULL;
  guint reads = 0;

  g_assert_no_error (error);
  body = read_body (first, &reads, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (body, ==, "event: a\n\ndata: {}\n\n");
  /* Each piece the server wrote came out as soon as it arrived. */
  g_assert_cmpuint (reads, >=, 3);

  second = send_request (upstream, url, "{}", NULL, &error);
  g_assert_no_error (error);
  body2 = read_body (second, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (body2, ==, "abc");
  g_assert_cmpuint (pooler_upstream_get_n_opened (upstream), ==, 1);

  server_free (server);
}

/* A certificate for 127.0.0.1 with its key, made by openssl in a new
 * directory @dir, and a database that trusts only it (it reads its file
 * when it is used: tls_teardown() removes them at the end). */
static GTlsCertificate *
tls_setup (char         **out_dir,
           GTlsDatabase **database)
{
  g_autoptr(GError) error = NULL;
  char *dir = g_dir_make_tmp ("test-upstream-tls-XXXXXX", &error);
  g_autofree char *cert = NULL;
  g_autofree char *key = NULL;
  g_autofree char *both = NULL;
  g_autofree char *cert_text = NULL;
  g_autofree char *key_text = NULL;
  g_autofree char *text = NULL;
  g_autofree char *openssl = g_find_program_in_path ("openssl");
  GTlsCertificate *certificate;
  int status;

  g_assert_no_error (error);
  if (openssl == NULL)
    g_error ("the TLS tests need the openssl program (the README's test command installs it)");
  if (!g_tls_backend_supports_tls (g_tls_backend_get_default ()))
    g_error ("the TLS tests need GIO's TLS backend (glib-networking)");

  cert = g_build_filename (dir, "cert.pem", NULL);
  key = g_build_filename (dir, "key.pem", NULL);
  both = g_build_filename (dir, "both.pem", NULL);
  {
    const char *argv[] = {
      openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
      "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
      "-keyout", key, "-out", cert, NULL
    };

    g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                  NULL, NULL, NULL, NULL, &status, &error);
  }
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_file_get_contents (cert, &cert_text, NULL, &error);
  g_assert_no_error (error);
  g_file_get_contents (key, &key_text, NULL, &error);
  g_assert_no_error (error);
  text = g_strconcat (cert_text, key_text, NULL);
  g_file_set_contents (both, text, -1, &error);
  g_assert_no_error (error);

  certificate = g_tls_certificate_new_from_file (both, &error);
  g_assert_no_error (error);
  *database = g_tls_file_database_new (cert, &error);
  g_assert_no_error (error);

  *out_dir = dir;
  return certificate;
}

static void
tls_teardown (char *dir)
{
  static const char * const names[] = { "both.pem", "cert.pem", "key.pem" };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *path = g_build_filename (dir, names[i], NULL);

      g_unlink (path);
    }
  g_rmdir (dir);
  g_free (dir);
}

/* An https upstream: the pieces of a streamed answer come out as they
 * arrive, records that arrive together included, and the connection is
 * kept; without the right certificate authority nothing is sent. */
static void
test_tls (void)
{
  static const char * const script[] = {
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    "a\r\nevent: a\n\n\r\n|"
    "a\r\nevent: b\n\n\r\n^a\r\nevent: c\n\n\r\n|"
    "a\r\nevent: d\n\n\r\n^0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n^hello",
    NULL
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(GTlsDatabase) database = NULL;
  char *dir = NULL;
  g_autoptr(GTlsCertificate) certificate = tls_setup (&dir, &database);
  g_autoptr(PoolerUpstream) upstream = pooler_upstream_new ();
  g_autoptr(PoolerUpstream) untrusting = pooler_upstream_new ();
  g_autofree char *url = NULL;
  Server *server;

  server = server_new_full (script, G_N_ELEMENTS (script) - 1, TRUE);
  server->tls = g_object_ref (certificate);
  url = g_strdup_printf ("https://127.0.0.1:%u/backend-api/codex/responses", server->port);
  pooler_upstream_set_tls_database (upstream, database);

  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(PoolerUpstreamResponse) response = send_request (upstream, url, "{}", NULL, &error);
      g_autofree char *body = NULL;
      guint reads = 0;

      g_assert_no_error (error);
      g_assert_cmpuint (pooler_upstream_response_get_status (response), ==, 200);
      body = read_body (response, &reads, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (body, ==, i == 0 ? "event: a\n\nevent: b\n\nevent: c\n\nevent: d\n\n" : "hello");
      if (i == 0)
        g_assert_cmpuint (reads, >=, 3);
    }
  g_assert_cmpuint (pooler_upstream_get_n_opened (upstream), ==, 1);

  /* The system's authorities do not know this certificate. */
  {
    g_autoptr(PoolerUpstreamResponse) response = send_request (untrusting, url, "{}", NULL, &error);

    g_assert_null (response);
    g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  }

  server_free (server);
  tls_teardown (dir);
}

/* An https upstream that closes a kept connection when the next request
 * comes, without TLS's close notice (as a server that just shuts its
 * socket does): the request goes out again on a fresh connection, as
 * over plain HTTP, and the caller never sees the failure. */
static void
test_tls_stale_connection_replaced (void)
{
  static const char * const script[] = {
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    NULL,
  };
  g_autoptr(GTlsDatabase) database = NULL;
  char *dir = NULL;
  g_autoptr(GTlsCertificate) certificate = tls_setup (&dir, &database);
  g_autoptr(PoolerUpstream) upstream = pooler_upstream_new ();
  Server *server = server_new_n (script, 2);
  g_autofree char *url = NULL;

  server->tls = g_object_ref (certificate);
  url = g_strdup_printf ("https://127.0.0.1:%u/backend-api/codex/responses", server->port);
  pooler_upstream_set_tls_database (upstream, database);
  for (guint i = 0; i < 3; i++)
    assert_answer (upstream, url, "{}", "ok");
  /* Each request after the first went out twice: on the kept
   * connection, then on a new one. */
  g_assert_cmpuint (pooler_upstream_get_n_opened (upstream), ==, 3);
  g_assert_cmpuint (server->requests, ==, 5);
  server_free (server);
  tls_teardown (dir);
}

/* An https answer framed by the connection's end (no Content-Length, not
 * chunked), from a server that shuts its socket without TLS's close
 * notice: the body is whole, as it would be over plain HTTP. Cut short
 * where the framing says how long it is, the same close is an error. */
static void
test_tls_close_framed (void)
{
  static const char * const script[] = {
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n^hello, ^world",
    NULL
  };
  static const char * const short_script[] = {
    "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n^hello",
    NULL
  };
  g_autoptr(GTlsDatabase) database = NULL;
  char *dir = NULL;
  g_autoptr(GTlsCertificate) certificate = tls_setup (&dir, &database);

  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(PoolerUpstream) upstream = pooler_upstream_new ();
      g_autoptr(PoolerUpstreamResponse) response = NULL;
      g_autoptr(GError) error = NULL;
      g_autofree char *url = NULL;
      g_autofree char *body = NULL;
      Server *server = server_new (i == 0 ? script : short_script, FALSE);

      server->tls = g_object_ref (certificate);
      url = g_strdup_printf ("https://127.0.0.1:%u/backend-api/codex/responses", server->port);
      pooler_upstream_set_tls_database (upstream, database);
      response = send_request (upstream, url, "{}", NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (pooler_upstream_response_get_status (response), ==, 200);
      body = read_body (response, NULL, &error);
      if (i == 0)
        {
          g_assert_no_error (error);
          g_assert_cmpstr (body, ==, "hello, world");
        }
      else
        {
          g_assert_nonnull (error);
          g_assert_null (body);
        }
      server_free (server);
    }
  tls_teardown (dir);
}

/* An answer's fields, from the hot path's own parser (a plain head) and
 * from libsoup's (an HTTP/1.0 one): in the order they came, duplicates
 * kept, and the same again as SoupMessageHeaders. */
static void
test_answer_fields (void)
{
  static const char * const plain[] = {
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Codex-Primary-Used-Percent: 7\r\n"
    "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nok",
    NULL
  };
  static const char * const old[] = {
    "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nX-Codex-Primary-Used-Percent: 7\r\n"
    "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nok",
    NULL
  };

  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(PoolerUpstream) upstream = pooler_upstream_new ();
      g_autoptr(PoolerUpstreamResponse) response = NULL;
      g_autoptr(GError) error = NULL;
      g_autofree char *url = NULL;
      g_autofree char *body = NULL;
      const PoolerHttpFields *fields;
      Server *server = server_new (i == 0 ? plain : old, FALSE);

      url = server_url (server);
      response = send_request (upstream, url, "{}", NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (pooler_upstream_response_get_status (response), ==, 200);
      fields = pooler_upstream_response_get_fields (response);
      g_assert_nonnull (fields);
      g_assert_cmpuint (pooler_http_fields_get_n (fields), ==, 4);
      g_assert_cmpstr (pooler_http_fields_find (fields, "x-codex-primary-used-percent"), ==, "7");
      g_assert_cmpstr (pooler_http_fields_find (fields, "set-cookie"), ==, "a=1");
      g_assert_cmpstr (soup_message_headers_get_list (pooler_upstream_response_get_headers (response),
                                                      "Set-Cookie"), ==, "a=1, b=2");
      g_assert_cmpstr (soup_message_headers_get_one (pooler_upstream_response_get_headers (response),
                                                     "X-Codex-Primary-Used-Percent"), ==, "7");
      body = read_body (response, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (body, ==, "ok");
      server_free (server);
    }
}

/* The upstream closed an idle connection: the next request goes out on a
 * fresh one, and the caller never sees the failure. */
static void
test_stale_connection_replaced (void)
{
  static const char * const script[] = {
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
  };
  Server *server = server_new_n (script, 1);
  g_autoptr(PoolerUpstream) upstream = pooler_upstream_new ();
  g_autofree char *url = server_url (server);

  for (guint i = 0; i < 3; i++)
    {
      assert_answer (upstream, url, "{}", "ok");
      /* Let the server's close reach us before the next request, or not:
       * either way the request must succeed. */
      if (i == 1)
        g_usleep (50 * 1000);
    }
  g_assert_cmpuint (pooler_upstream_get_n_opened (upstream), ==, 3);
  server_free (server);
}

/* The upstream closed every idle connection at once: the retry opens a
 * new one rather than taking the next dead one from the pool. */
static void
test_retry_opens_new_connection (void)
{
  static const char * const script[] = {
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
  };
  Server *server = server_new_n (script, 1);
  g_autoptr(PoolerUpstream) upstream = pooler_upstream_new ();
  g_autofree char *url = server_url (server);
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  Wait first = { 0 };
  Wait second = { 0 };
  PoolerUpstreamResponse *responses[2];

  /* Two connections at once, both idle afterwards, both then closed. */
  pooler_upstream_send_async (upstream, "GET", url, headers, NULL, NULL, store_result, &first);
  pooler_upstream_send_async (upstream, "GET", url, headers, NULL, NULL, store_result, &second);
  responses[0] = pooler_upstream_send_finish (upstream, wait_result (&first), &error);
  g_assert_no_error (error);
  responses[1] = pooler_upstream_send_finish (upstream, wait_result (&second), &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *body = read_body (responses[i], NULL, &error);

      g_assert_no_error (error);
      g_assert_cmpstr (body, ==, "ok");
      g_object_unref (responses[i]);
    }
  g_object_unref (first.result);
  g_object_unref (second.result);
  /* Usually both are still in the pool: the closes arrive while we sleep
   * here, outside the main loop, so the pool's watch has not seen them. */
  g_assert_cmpuint (pooler_upstream_get_n_idle (upstream), <=, 2);
  g_usleep (100 * 1000);

  assert_answer (upstream, url, NULL, "ok");
  g_assert_cmpuint (pooler_upstream_get_n_opened (upstream), ==, 3);
  server_free (server);
}

/* At the connection limit a send waits for a connection to go idle (and
 * reuses it); a waiting send can be cancelled. */
static void
test_connection_limit (void)
{
  static const char * const script[] = {
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n|0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo",
    NULL
  };
  Server *server = server_new (script, TRUE);
  g_autoptr(PoolerUpstream) upstream = pooler_upstream_new ();
  g_autofree char *url = server_url (server);
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  g_autoptr(PoolerUpstreamResponse) one = NULL;
  g_autoptr(PoolerUpstreamResponse) two = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autofree char *body_one = NULL;
  g_autofree char *body_two = NULL;
  Wait wait_two = { 0 };
  Wait wait_three = { 0 };

  pooler_upstream_set_max_connections (upstream, 1);
  one = send_request (upstream, url, "{}", NULL, &error);
  g_assert_no_error (error);

  /* The one connection is busy: these two wait. */
  pooler_upstream_send_async (upstream, "GET", url, headers, NULL, NULL, store_result, &wait_two);
  pooler_upstream_send_async (upstream, "GET", url, headers, NULL, cancellable, store_result, &wait_three);
  g_assert_cmpuint (pooler_upstream_get_n_waiting (upstream), ==, 2);
  g_cancellable_cancel (cancellable);
  g_assert_null (pooler_upstream_send_finish (upstream, wait_result (&wait_three), &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_object_unref (wait_three.result);
  g_assert_cmpuint (pooler_upstream_get_n_waiting (upstream), ==, 1);
  g_assert_null (wait_two.result);

  /* The first answer's end frees the connection for the waiting send. */
  body_one = read_body (one, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (body_one, ==, "one");
  two = pooler_upstream_send_finish (upstream, wait_result (&wait_two), &error);
  g_assert_no_error (error);
  g_object_unref (wait_two.result);
  body_two = read_body (two, NULL, &error);
  g_assert_cmpstr (body_two, ==, "two");
  g_assert_cmpuint (pooler_upstream_get_n_opened (upstream), ==, 1);
  g_assert_cmpuint (server->requests, ==, 2);
  server_free (server);
}

/* An idle connection the upstream closes leaves the pool at once (the
 * pool watches it); a busy one that stays silent past the I/O timeout is
 * shut by the sweep, and its request fails as timed out, not resent. */
static void
test_idle_close_and_silence (void)
{
  static const char * const once[] = {
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
  };
  static const char * const silent[] = { "" };
  g_autoptr(PoolerUpstream) upstream = pooler_upstream_new ();
  g_autoptr(GError) error = NULL;

  {
    Server *server = server_new_n (once, 1);
    g_autofree char *url = server_url (server);
    gint64 deadline;

    assert_answer (upstream, url, NULL, "ok");
    deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
    while (pooler_upstream_get_n_connections (upstream) > 0 && g_get_monotonic_time () < deadline)
      g_main_context_iteration (NULL, TRUE);
    g_assert_cmpuint (pooler_upstream_get_n_connections (upstream), ==, 0);
    g_assert_cmpuint (pooler_upstream_get_n_idle (upstream), ==, 0);
    server_free (server);
  }
  {
    Server *server = server_new (silent, TRUE);
    g_autofree char *url = server_url (server);
    g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
    g_autoptr(PoolerUpstreamResponse) response = NULL;
    Wait wait = { 0 };
    gint64 until = g_get_monotonic_time () + 1200 * 1000;

    pooler_upstream_set_io_timeout (upstream, 1);
    pooler_upstream_send_async (upstream, "POST", url, headers, NULL, NULL, store_result, &wait);
    while (g_get_monotonic_time () < until)
      g_main_context_iteration (NULL, FALSE);
    g_assert_null (wait.result);
    pooler_upstream_sweep (upstream);
    response = pooler_upstream_send_finish (upstream, wait_result (&wait), &error);
    g_object_unref (wait.result);
    g_assert_null (response);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
    g_assert_cmpuint (server->requests, ==, 1);
    server_free (server);
  }
}

static void
test_connection_close_not_reused (void)
{
  static const char * const script[] = {
    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
    NULL
  };
  Server *server = server_new (script, TRUE);
  g_autoptr(PoolerUpstream) upstream = pooler_upstream_new ();
  g_autofree char *url = server_url (server);

  assert_answer (upstream, url, NULL, "ok");
  g_assert_cmpuint (pooler_upstream_get_n_idle (upstream), ==, 0);
  g_assert_cmpuint (pooler_upstream_get_n_connections (upstream), ==, 0);
  g_assert_true (g_str_has_prefix (server->last_request->str, "GET /backend-api/codex/responses?x=1 HTTP/1.1\r\n"));
  g_assert_null (strstr (server->last_request->str, "Content-Length"));
  server_free (server);
}

/* A body without framing runs to the close; a truncated chunked or sized
 * body is an error, and its connection is never reused. */
static void
test_eof_and_truncation (void)
{
  static const char * const eof_script[] = { "HTTP/1.1 200 OK\r\n\r\nuntil|close" };
  static const char * const cut_chunked[] = {
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nab"
  };
  static const char * const cut_sized[] = { "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc" };
  const char * const *truncated[] = { cut_chunked, cut_sized };
  g_autoptr(PoolerUpstream) upstream = pooler_upstream_new ();
  g_autoptr(GError) error = NULL;

  {
    Server *server = server_new_n (eof_script, 1);
    g_autofree char *url = server_url (server);

    assert_answer (upstream, url, "{}", "untilclose");
    g_assert_cmpuint (pooler_upstream_get_n_connections (upstream), ==, 0);
    server_free (server);
  }

  for (guint i = 0; i < G_N_ELEMENTS (truncated); i++)
    {
      Server *server = server_new_n (truncated[i], 1);
      g_autofree char *url = server_url (server);
      g_autoptr(PoolerUpstreamResponse) response = send_request (upstream, url, "{}", NULL, &error);
      g_autofree char *body = NULL;

      g_assert_no_error (error);
      body = read_body (response, NULL, &error);
      g_assert_null (body);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
      g_clear_error (&error);
      g_assert_cmpuint (pooler_upstream_get_n_connections (upstream), ==, 0);
      server_free (server);
    }
}

static void
test_bad_answers (void)
{
  g_autofree char *huge = NULL;
  g_autoptr(GString) big = g_string_new ("HTTP/1.1 200 OK\r\n");
  const char *bad_chunk[] = { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n" };
  const char *not_http[] = { "SSH-2.0-OpenSSH\r\n\r\n" };
  const char *closed[] = { NULL };
  g_autoptr(PoolerUpstream) upstream = pooler_upstream_new ();
  g_autoptr(GError) error = NULL;

  while (big->len < 70 * 1024)
    g_string_append (big, "X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
  g_string_append (big, "\r\n");
  huge = g_string_free (g_steal_pointer (&big), FALSE);

  {
    const char *script[] = { huge };
    Server *server = server_new_n (script, 1);
    g_autofree char *url = server_url (server);
    g_autoptr(PoolerUpstreamResponse) response = send_request (upstream, url, "{}", NULL, &error);

    g_assert_null (response);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE);
    g_clear_error (&error);
    server_free (server);
  }
  {
    Server *server = server_new_n (not_http, 1);
    g_autofree char *url = server_url (server);
    g_autoptr(PoolerUpstreamResponse) response = send_request (upstream, url, "{}", NULL, &error);

    g_assert_null (response);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
    g_clear_error (&error);
    server_free (server);
  }
  {
    Server *server = server_new_n (bad_chunk, 1);
    g_autofree char *url = server_url (server);
    g_autoptr(PoolerUpstreamResponse) response = send_request (upstream, url, "{}", NULL, &error);
    g_autofree char *body = NULL;

    g_assert_no_error (error);
    body = read_body (response, NULL, &error);
    g_assert_null (body);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
    g_clear_error (&error);
    server_free (server);
  }
  {
    /* Closed without a word on a fresh connection: no retry, an error. */
    Server *server = server_new_n (closed, 1);
    g_autofree char *url = server_url (server);
    g_autoptr(PoolerUpstreamResponse) response = send_request (upstream, url, "{}", NULL, &error);

    g_assert_null (response);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
    g_clear_error (&error);
    g_assert_cmpuint (server->requests, ==, 1);
    server_free (server);
  }
  {
    g_autoptr(PoolerUpstreamResponse) response =
      send_request (upstream, "ftp://127.0.0.1/x", "{}", NULL, &error);

    g_assert_null (response);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_clear_error (&error);
  }
  g_assert_cmpuint (pooler_upstream_get_n_connections (upstream), ==, 0);
}

static gboolean
cancel_soon (gpointer user_data)
{
  g_cancellable_cancel (user_data);
  return G_SOURCE_REMOVE;
}

/* An upstream that never answers: cancelling gives up and drops the
 * connection; abandoning an answer mid-body does too. */
static void
test_cancel_and_abandon (void)
{
  static const char * const silent[] = { "" };
  static const char * const partial[] = {
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
  };
  g_autoptr(PoolerUpstream) upstream = pooler_upstream_new ();
  g_autoptr(GError) error = NULL;

  {
    Server *server = server_new (silent, TRUE);
    g_autofree char *url = server_url (server);
    g_autoptr(GCancellable) cancellable = g_cancellable_new ();
    g_autoptr(PoolerUpstreamResponse) response = NULL;

    g_timeout_add (100, cancel_soon, cancellable);
    response = send_request (upstream, url, "{}", cancellable, &error);
    g_assert_null (response);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error (&error);
    g_assert_cmpuint (pooler_upstream_get_n_connections (upstream), ==, 0);
    server_free (server);
  }
  {
    Server *server = server_new (partial, TRUE);
    g_autofree char *url = server_url (server);
    g_autoptr(PoolerUpstreamResponse) response = send_request (upstream, url, "{}", NULL, &error);

    g_assert_no_error (error);
    assert_piece (response, NULL, "hello");
    g_assert_cmpuint (pooler_upstream_get_n_connections (upstream), ==, 1);
    pooler_upstream_response_abandon (response);
    g_assert_cmpuint (pooler_upstream_get_n_connections (upstream), ==, 0);
    g_assert_cmpuint (pooler_upstream_get_n_idle (upstream), ==, 0);
    server_free (server);
  }
}

/* The reads of one answer share a cancellable, watched across their
 * waits: cancelled while nobody reads, the next read still fails at once
 * (the upstream here says nothing more). A later answer on the same
 * connection reads with its own cancellable after the first one's was
 * cancelled. */
static void
test_cancel_between_reads (void)
{
  static const char * const script[] = {
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n|5\r\nhello\r\n|5\r\nworld\r\n|0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n|5\r\nagain\r\n",
  };
  Server *server = server_new_full (script, G_N_ELEMENTS (script), TRUE);
  g_autoptr(PoolerUpstream) upstream = pooler_upstream_new ();
  g_autofree char *url = server_url (server);
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) first = g_cancellable_new ();
  g_autoptr(GCancellable) second = g_cancellable_new ();

  {
    g_autoptr(PoolerUpstreamResponse) response = send_request (upstream, url, "{}", first, &error);

    g_assert_no_error (error);
    /* Each piece comes 20 ms after the last: every read waits. */
    assert_piece (response, first, "hello");
    assert_piece (response, first, "world");
    assert_piece (response, first, "");
  }
  /* The connection is idle again; the first answer's cancellable goes
   * with it. */
  g_assert_cmpuint (pooler_upstream_get_n_idle (upstream), ==, 1);
  g_cancellable_cancel (first);
  {
    g_autoptr(PoolerUpstreamResponse) response = send_request (upstream, url, "{}", second, &error);
    g_autoptr(GBytes) none = NULL;

    g_assert_no_error (error);
    assert_piece (response, second, "again");

    /* Cancelled while nobody reads; the source fires with no waiter. */
    g_cancellable_cancel (second);
    for (guint i = 0; i < 10; i++)
      g_main_context_iteration (NULL, FALSE);
    none = read_piece (response, second, &error);
    g_assert_null (none);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  }
  g_assert_cmpuint (pooler_upstream_get_n_connections (upstream), ==, 0);
  server_free (server);
}

/* A read that waits is ended by its cancellable; a read whose bytes are
 * already buffered still reports the cancellation. Either way the
 * callback runs once, later than the call, and the connection goes (the
 * rest of the answer would still arrive on it). */
static void
test_read_cancelled (void)
{
  static const char * const partial[] = {
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n|5\r\nworld\r\n"
  };
  g_autoptr(PoolerUpstream) upstream = pooler_upstream_new ();

  for (guint when = 0; when < 3; when++)
    {
      Server *server = server_new (partial, TRUE);
      g_autofree char *url = server_url (server);
      g_autoptr(GCancellable) cancellable = g_cancellable_new ();
      g_autoptr(GError) error = NULL;
      g_autoptr(PoolerUpstreamResponse) response = send_request (upstream, url, "{}", cancellable, &error);
      g_autoptr(GBytes) none = NULL;

      g_assert_no_error (error);
      switch (when)
        {
        case 0:
          /* "hello" is written with the head in one write(), so the read
           * that took the head took it too: it is buffered, and still not
           * given (without the check, this read returns it). */
          g_cancellable_cancel (cancellable);
          break;
        case 1:
          /* The second piece comes 20 ms later: cancelled before it. */
          assert_piece (response, cancellable, "hello");
          g_cancellable_cancel (cancellable);
          break;
        default:
          /* Nothing more comes: the read waits until the cancellation. */
          assert_piece (response, cancellable, "hello");
          assert_piece (response, cancellable, "world");
          g_timeout_add (50, cancel_soon, cancellable);
          break;
        }
      none = read_piece (response, cancellable, &error);
      g_assert_null (none);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_assert_cmpuint (pooler_upstream_get_n_connections (upstream), ==, 0);
      server_free (server);
    }
}

int
main (int   argc,
      char *argv[])
{
  int status;

  g_test_init (&argc, &argv, NULL);
  /* A pool thread with nothing left to do ends at once (see below). */
  g_thread_pool_set_max_unused_threads (0);
  g_test_add_func ("/upstream/content-length-keep-alive", test_content_length_keep_alive);
  g_test_add_func ("/upstream/chunked", test_chunked);
  g_test_add_func ("/upstream/request-head", test_request_head);
  g_test_add_func ("/upstream/tls", test_tls);
  g_test_add_func ("/upstream/tls-stale-connection-replaced", test_tls_stale_connection_replaced);
  g_test_add_func ("/upstream/tls-close-framed", test_tls_close_framed);
  g_test_add_func ("/upstream/answer-fields", test_answer_fields);
  g_test_add_func ("/upstream/stale-connection-replaced", test_stale_connection_replaced);
  g_test_add_func ("/upstream/retry-opens-new-connection", test_retry_opens_new_connection);
  g_test_add_func ("/upstream/connection-limit", test_connection_limit);
  g_test_add_func ("/upstream/idle-close-and-silence", test_idle_close_and_silence);
  g_test_add_func ("/upstream/connection-close-not-reused", test_connection_close_not_reused);
  g_test_add_func ("/upstream/eof-and-truncation", test_eof_and_truncation);
  g_test_add_func ("/upstream/bad-answers", test_bad_answers);
  g_test_add_func ("/upstream/cancel-and-abandon", test_cancel_and_abandon);
  g_test_add_func ("/upstream/cancel-between-reads", test_cancel_between_reads);
  g_test_add_func ("/upstream/read-cancelled", test_read_cancelled);

  status = g_test_run ();
  /* TLS handshakes ran in GLib's pool threads and left GnuTLS's
   * thread-local state (a module loaded at run time) there. LeakSanitizer
   * (glibc 2.36) can crash reading such a thread's dynamic TLS at exit
   * ("Tracer caught signal 11", or "LeakSanitizer has encountered a fatal
   * error"): let those threads go first. A thread of a shared pool waits
   * half a second for more work before it leaves the pool; with no unused
   * threads allowed, it then ends. Stopping the unused ones alone (as
   * before) missed threads still inside their pool's wait. */
  g_usleep (700 * 1000);
  g_thread_pool_stop_unused_threads ();
  g_usleep (100 * 1000);
  return status;
}
