/* test-gateway.c: the gateway end to end in one process: a real service
 * (SQLite file, real keyring), a real libsoup server on a free loopback
 * port, the fake upstream, and a libsoup client.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>

#include "fake-upstream.h"
#include "test-util.h"
#include "pooler-gateway.h"
#include "pooler-http-conn.h"
#include "pooler-service.h"
#include "pooler-store.h"
#include "pooler-timing.h"

typedef struct
{
  FakeUpstream  *fake;
  PoolerService *service;
  PoolerGateway *gateway;
  SoupSession   *client;
  char          *base;           /* http://127.0.0.1:PORT */
  char          *key;            /* the Pool key */
  char          *chatgpt_id;
  char          *access_token;
  char          *account_id;
  GBytes        *codex_body;     /* the real Codex CLI request body */
  GSocket       *dead_port;      /* holds the dead upstream's port */
} Fixture;

static void
fixture_setup_with_upstream (Fixture    *f,
                             const char *upstream_override)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(PoolerPool) pool = NULL;
  g_autoptr(PoolerAccount) account = NULL;
  g_autofree char *upstream = NULL;
  g_autofree char *auth_path = NULL;
  g_autofree char *refresh = NULL;
  gint64 exp = g_get_real_time () / G_USEC_PER_SEC + 10 * 86400;
  f->fake = fake_upstream_new (&error);
  g_assert_no_error (error);

  f->chatgpt_id = g_strdup_printf ("acct_gw_%08x", g_random_int ());
  f->access_token = test_make_jwt (f->chatgpt_id, "gw@example.com", exp);
  refresh = g_strdup_printf ("rt_gw_%08x", g_random_int ());
  fake_upstream_add_account (f->fake, f->chatgpt_id, f->access_token, refresh);

  upstream = upstream_override ? g_strdup (upstream_override) : fake_upstream_dup_base_url (f->fake);

  f->service = pooler_service_new (NULL, &error);
  g_assert_no_error (error);
  pooler_service_set_upstream_url (f->service, upstream);

  pool = pooler_service_create_pool (f->service, "main", NULL, &error);
  g_assert_no_error (error);

  auth_path = test_write_auth_json ("gw", f->chatgpt_id, "gw@example.com", f->access_token, refresh, exp);
  account = pooler_service_import_account (f->service, auth_path, "main", NULL, NULL, &error);
  g_assert_no_error (error);
  f->account_id = g_strdup (pooler_account_get_id (account));

  f->key = pooler_service_create_key (f->service, "main", "test", NULL, &error);
  g_assert_no_error (error);

  g_assert_true (pooler_service_start (f->service, &error));
  g_assert_no_error (error);

  f->gateway = pooler_gateway_new (f->service);
  g_assert_true (pooler_gateway_listen (f->gateway, NULL, 0, &error));
  g_assert_no_error (error);
  f->base = pooler_gateway_dup_base_url (f->gateway);

  f->client = soup_session_new ();

  f->codex_body = test_load_codex_body ();
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  fixture_setup_with_upstream (f, NULL);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_object (&f->client);
  g_clear_object (&f->gateway);
  if (f->service != NULL)
    pooler_service_stop (f->service);
  g_clear_object (&f->service);
  g_clear_object (&f->fake);
  g_clear_object (&f->dead_port);
  g_clear_pointer (&f->codex_body, g_bytes_unref);
  g_free (f->base);
  g_free (f->key);
  g_free (f->chatgpt_id);
  g_free (f->access_token);
  g_free (f->account_id);

  /* Let libsoup finish closing connections before the next test. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static SoupMessage *
new_message (Fixture    *f,
             const char *method,
             const char *path,
             const char *key)
{
  return test_new_message (f->base, method, path, key);
}

static GBytes *
send_and_read (Fixture     *f,
               SoupMessage *msg)
{
  return test_send_and_read (f->client, msg);
}

/* A request as Codex CLI sends it, not sent yet. */
static SoupMessage *
new_codex_message (Fixture    *f,
                   const char *key)
{
  SoupMessage *msg = new_message (f, "POST", "/backend-api/codex/responses", key);
  SoupMessageHeaders *headers = soup_message_get_request_headers (msg);

  /* The headers Codex CLI 0.169 sends (fixtures/codex-apikey-basic). */
  soup_message_headers_replace (headers, "session-id", "01a20b6a-26ce-7131-9a0a-c6c32363fd36");
  soup_message_headers_replace (headers, "thread-id", "01a20b6a-26ce-7131-9a0a-c6c32363fd36");
  soup_message_headers_replace (headers, "x-codex-window-id", "01a20b6a-26ce-7131-9a0a-c6c32363fd36:0");
  soup_message_headers_replace (headers, "originator", "codex_exec");
  soup_message_headers_replace (headers, "accept", "text/event-stream");
  soup_message_headers_replace (headers, "Cookie", "secret-cookie=1");
  soup_message_set_request_body_from_bytes (msg, "application/json", f->codex_body);

  return msg;
}

static SoupMessage *
post_codex (Fixture    *f,
            const char *key,
            GBytes    **out_body)
{
  SoupMessage *msg = new_codex_message (f, key);

  *out_body = send_and_read (f, msg);
  return msg;
}

/* ---- tests ---------------------------------------------------------- */

static void
test_stream_through_pool (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GPtrArray) seen = NULL;
  g_autoptr(PoolerRequestRecord) row = NULL;
  g_autofree char *secret = NULL;
  FakeUpstreamRequest *upstream;

  fake_upstream_set_reply_text (f->fake, "pooled-hello");
  msg = post_codex (f, f->key, &body);

  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  g_assert_cmpstr (soup_message_headers_get_content_type (soup_message_get_response_headers (msg), NULL),
                   ==, "text/event-stream");
  g_assert_true (test_bytes_contain (body, "pooled-hello"));
  g_assert_true (test_bytes_contain (body, "event: response.completed"));
  /* Quota headers come through for the client to read. */
  g_assert_nonnull (soup_message_headers_get_one (soup_message_get_response_headers (msg),
                                                  "x-codex-primary-used-percent"));

  seen = fake_upstream_dup_requests (f->fake);
  g_assert_cmpuint (seen->len, ==, 1);
  upstream = g_ptr_array_index (seen, 0);
  g_assert_cmpstr (upstream->path, ==, "/backend-api/codex/responses");
  {
    g_autofree char *bearer = g_strconcat ("Bearer ", f->access_token, NULL);
    g_assert_cmpstr (fake_upstream_request_get_header (upstream, "Authorization"), ==, bearer);
  }
  g_assert_cmpstr (fake_upstream_request_get_header (upstream, "chatgpt-account-id"), ==, f->chatgpt_id);
  g_assert_cmpstr (fake_upstream_request_get_header (upstream, "session-id"), ==,
                   "01a20b6a-26ce-7131-9a0a-c6c32363fd36");
  g_assert_cmpstr (fake_upstream_request_get_header (upstream, "originator"), ==, "codex_exec");
  g_assert_null (fake_upstream_request_get_header (upstream, "Cookie"));
  /* The body went through byte for byte. */
  g_assert_true (g_bytes_equal (upstream->body, f->codex_body));

  /* The Pool key (nor its secret part) never left the gateway. */
  secret = g_strdup (f->key + strlen ("sk-cxp-") + 12 + 1);
  for (guint i = 0; upstream->header_values[i] != NULL; i++)
    {
      g_assert_null (strstr (upstream->header_values[i], f->key));
      g_assert_null (strstr (upstream->header_values[i], secret));
    }

  row = test_last_request (f->service);
  g_assert_cmpint (row->status, ==, 200);
  g_assert_cmpint (row->upstream_status, ==, 200);
  g_assert_cmpstr (row->account_id, ==, f->account_id);
  /* libsoup's client, served by the gateway's own HTTP/1.1 code. */
  g_assert_cmpuint (pooler_gateway_get_hot_requests (f->gateway), ==, 1);
  g_assert_cmpstr (row->pool_slug, ==, "main");
  g_assert_cmpstr (row->model, ==, "gpt-5.5");
  g_assert_cmpstr (row->transport, ==, "sse");
  g_assert_cmpint (row->input_tokens, ==, 42);
  g_assert_cmpint (row->output_tokens, ==, 1);
  g_assert_cmpint (row->cached_tokens, ==, 0);
  g_assert_cmpint (row->reasoning_tokens, ==, 0);
  g_assert_cmpint (row->ttfb_ms, >=, 0);
  g_assert_cmpint (row->state, ==, POOLER_REQUEST_COMPLETED);
  g_assert_null (row->error_code);
  g_assert_cmpuint (row->attempts->len, ==, 1);
  g_assert_cmpstr (((PoolerAttemptRecord *) g_ptr_array_index (row->attempts, 0))->account_id, ==,
                   f->account_id);
  g_assert_true (g_str_has_prefix (f->key, row->key_prefix));
}

typedef struct
{
  GInputStream *stream;
  GString      *text;
  gboolean      eof;
  gboolean      pending;
} Reader;

static void
reader_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  Reader *reader = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (object), result, &error);

  g_assert_no_error (error);
  reader->pending = FALSE;
  if (g_bytes_get_size (bytes) == 0)
    reader->eof = TRUE;
  else
    g_string_append_len (reader->text, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
}

static void
reader_until (Reader     *reader,
              const char *needle)
{
  while (!reader->eof && (needle == NULL || strstr (reader->text->str, needle) == NULL))
    {
      if (!reader->pending)
        {
          reader->pending = TRUE;
          g_input_stream_read_bytes_async (reader->stream, 4096, G_PRIORITY_DEFAULT, NULL,
                                           reader_cb, reader);
        }
      g_main_context_iteration (NULL, TRUE);
    }
}

static void
send_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  Reader *reader = user_data;
  g_autoptr(GError) error = NULL;

  reader->stream = soup_session_send_finish (SOUP_SESSION (object), result, &error);
  g_assert_no_error (error);
}

/* The first event reaches the client while the upstream is still holding
 * the rest back: nothing is buffered. */
static void
test_first_event_before_upstream_finishes (Fixture       *f,
                                           gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = new_message (f, "POST", "/backend-api/codex/responses", f->key);
  Reader reader = { NULL, g_string_new (NULL), FALSE, FALSE };

  fake_upstream_set_mode (f->fake, NULL, "hold", 0);
  soup_message_set_request_body_from_bytes (msg, "application/json", f->codex_body);
  soup_session_send_async (f->client, msg, G_PRIORITY_DEFAULT, NULL, send_cb, &reader);
  while (reader.stream == NULL)
    g_main_context_iteration (NULL, TRUE);

  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  reader_until (&reader, "response.created");
  g_assert_nonnull (strstr (reader.text->str, "event: response.created"));
  g_assert_null (strstr (reader.text->str, "response.completed"));
  /* The upstream has not finished: it is still holding the rest. */
  g_assert_true (fake_upstream_wait_held (f->fake, 1, 10000));
  g_assert_null (strstr (reader.text->str, "response.completed"));

  fake_upstream_release (f->fake);
  reader_until (&reader, NULL);
  g_assert_nonnull (strstr (reader.text->str, "event: response.completed"));

  g_object_unref (reader.stream);
  g_string_free (reader.text, TRUE);
}

static void
assert_unauthorized (Fixture    *f,
                     const char *key)
{
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(JsonObject) error = NULL;

  msg = post_codex (f, key, &body);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 401);
  error = test_parse_error (body);
  g_assert_cmpstr (json_object_get_string_member (error, "type"), ==, "invalid_request_error");
  g_assert_cmpstr (json_object_get_string_member (error, "code"), ==, "invalid_api_key");
  g_assert_true (json_object_has_member (error, "param"));
  g_assert_true (json_object_has_member (error, "message"));
}

static void
test_keys_refused (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *prefix = NULL;
  g_autofree char *wrong = g_strdup (f->key);

  assert_unauthorized (f, NULL);
  assert_unauthorized (f, "sk-not-a-pool-key");
  /* Right prefix, wrong secret. */
  wrong[strlen (wrong) - 1] = wrong[strlen (wrong) - 1] == 'A' ? 'B' : 'A';
  assert_unauthorized (f, wrong);

  prefix = g_strndup (f->key, strlen ("sk-cxp-") + 12);
  g_assert_true (pooler_service_revoke_key (f->service, prefix, &error));
  g_assert_no_error (error);
  assert_unauthorized (f, f->key);

  g_assert_cmpuint (fake_upstream_get_request_count (f->fake), ==, 0);
  /* Refused by libsoup's early handler, after the hot path let go. */
  g_assert_cmpuint (pooler_gateway_get_hot_requests (f->gateway), ==, 0);
}

static void
test_websocket_upgrade_426 (Fixture       *f,
                            gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = new_message (f, "GET", "/backend-api/codex/responses", f->key);
  SoupMessageHeaders *headers = soup_message_get_request_headers (msg);
  g_autoptr(GBytes) body = NULL;

  soup_message_headers_replace (headers, "Connection", "Upgrade");
  soup_message_headers_replace (headers, "Upgrade", "websocket");
  soup_message_headers_replace (headers, "Sec-WebSocket-Version", "13");
  soup_message_headers_replace (headers, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
  body = send_and_read (f, msg);

  g_assert_cmpuint (soup_message_get_status (msg), ==, 426);
  g_assert_cmpuint (fake_upstream_get_request_count (f->fake), ==, 0);
}

static void
test_models_forwarded_and_cached (Fixture       *f,
                                  gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = new_message (f, "GET", "/backend-api/codex/models?client_version=0.169.0", f->key);
  g_autoptr(SoupMessage) again = NULL;
  g_autoptr(SoupMessage) failing = NULL;
  g_autoptr(GBytes) body = send_and_read (f, msg);
  g_autoptr(GBytes) cached = NULL;
  g_autoptr(GBytes) missing = NULL;
  g_autoptr(GPtrArray) seen = NULL;

  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  g_assert_true (test_bytes_contain (body, "\"models\""));
  seen = fake_upstream_dup_requests (f->fake);
  g_assert_cmpstr (((FakeUpstreamRequest *) g_ptr_array_index (seen, 0))->query, ==, "client_version=0.169.0");

  /* A failing upstream: the last good copy answers. */
  fake_upstream_set_models_mode (f->fake, "500");
  again = new_message (f, "GET", "/backend-api/codex/models?client_version=0.169.0", f->key);
  cached = send_and_read (f, again);
  g_assert_cmpuint (soup_message_get_status (again), ==, 200);
  g_assert_true (g_bytes_equal (cached, body));

  /* A 404 is the upstream's answer, passed on with its status. */
  fake_upstream_set_models_mode (f->fake, "404");
  failing = new_message (f, "GET", "/backend-api/codex/models", f->key);
  missing = send_and_read (f, failing);
  g_assert_cmpuint (soup_message_get_status (failing), ==, 404);
}

static void
test_upstream_errors_passed_on (Fixture       *f,
                                gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(JsonObject) error = NULL;
  g_autoptr(PoolerRequestRecord) row = NULL;

  fake_upstream_set_mode (f->fake, NULL, "429at", 1);
  msg = post_codex (f, f->key, &body);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 429);
  error = test_parse_error (body);
  g_assert_cmpstr (json_object_get_string_member (error, "type"), ==, "usage_limit_reached");
  g_assert_cmpint (json_object_get_int_member (error, "resets_at"), >, g_get_real_time () / G_USEC_PER_SEC);
  g_assert_cmpstr (json_object_get_string_member (error, "plan_type"), ==, "plus");

  /* Its only account is spent, so the Pool is: the answer is the Pool's. */
  row = test_last_request (f->service);
  g_assert_cmpint (row->status, ==, 429);
  g_assert_cmpint (row->upstream_status, ==, 429);
  g_assert_cmpstr (row->error_code, ==, "pool_exhausted");
  g_assert_cmpuint (row->attempts->len, ==, 1);
  g_assert_cmpstr (((PoolerAttemptRecord *) g_ptr_array_index (row->attempts, 0))->error_code, ==,
                   "upstream_429");
}

static void
test_bad_requests (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(SoupMessage) unknown = new_message (f, "GET", "/nope", NULL);
  g_autoptr(SoupMessage) unknown_backend = new_message (f, "GET", "/backend-api/nope", f->key);
  g_autoptr(SoupMessage) bad_json = new_message (f, "POST", "/backend-api/codex/responses", f->key);
  g_autoptr(SoupMessage) too_big = new_message (f, "POST", "/backend-api/codex/responses", f->key);
  g_autoptr(GBytes) b1 = NULL, b2 = NULL, b3 = NULL, b4 = NULL;
  g_autoptr(JsonObject) e1 = NULL, e3 = NULL;

  b1 = send_and_read (f, unknown);
  g_assert_cmpuint (soup_message_get_status (unknown), ==, 404);
  e1 = test_parse_error (b1);

  b2 = send_and_read (f, unknown_backend);
  g_assert_cmpuint (soup_message_get_status (unknown_backend), ==, 404);

  soup_message_set_request_body_from_bytes (bad_json, "application/json",
                                            g_bytes_new_static ("{\"model\":", 9));
  b3 = send_and_read (f, bad_json);
  g_assert_cmpuint (soup_message_get_status (bad_json), ==, 400);
  e3 = test_parse_error (b3);
  g_assert_cmpstr (json_object_get_string_member (e3, "type"), ==, "invalid_request_error");

  /* A "model" that is no model name (a prompt pasted into it, say) is
   * refused before anything is logged, and not quoted back. */
  {
    g_autoptr(SoupMessage) long_model = new_message (f, "POST", "/backend-api/codex/responses", f->key);
    g_autofree char *filler = g_strnfill (4096, 'x');
    g_autofree char *json = g_strdup_printf ("{\"model\":\"PROMPT %s\",\"stream\":true,\"input\":[]}", filler);
    g_autoptr(GBytes) answer = NULL;
    g_autoptr(JsonObject) error = NULL;

    soup_message_set_request_body_from_bytes (long_model, "application/json",
                                              g_bytes_new (json, strlen (json)));
    answer = send_and_read (f, long_model);
    g_assert_cmpuint (soup_message_get_status (long_model), ==, 400);
    error = test_parse_error (answer);
    g_assert_cmpstr (json_object_get_string_member (error, "code"), ==, "invalid_value");
    g_assert_cmpstr (json_object_get_string_member (error, "param"), ==, "model");
    g_assert_false (test_bytes_contain (answer, "PROMPT"));
  }

  /* Refused from Content-Length alone. */
  pooler_gateway_set_max_body_size (f->gateway, 1024);
  soup_message_set_request_body_from_bytes (too_big, "application/json", f->codex_body);
  b4 = send_and_read (f, too_big);
  g_assert_cmpuint (soup_message_get_status (too_big), ==, 413);

  g_assert_cmpuint (fake_upstream_get_request_count (f->fake), ==, 0);
}

static void
test_host_and_origin (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(SoupMessage) evil_host = new_message (f, "GET", "/healthz", NULL);
  g_autoptr(SoupMessage) evil_origin = new_message (f, "GET", "/healthz", NULL);
  g_autoptr(SoupMessage) own_origin = new_message (f, "GET", "/healthz", NULL);
  g_autoptr(SoupMessage) localhost = new_message (f, "GET", "/healthz", NULL);
  g_autoptr(GBytes) b1 = NULL, b2 = NULL, b3 = NULL, b4 = NULL;
  g_autofree char *host = g_strdup_printf ("localhost:%u", pooler_gateway_get_port (f->gateway));

  soup_message_headers_replace (soup_message_get_request_headers (evil_host), "Host", "evil.example:80");
  b1 = send_and_read (f, evil_host);
  g_assert_cmpuint (soup_message_get_status (evil_host), ==, 403);

  soup_message_headers_replace (soup_message_get_request_headers (evil_origin), "Origin", "http://evil.example");
  b2 = send_and_read (f, evil_origin);
  g_assert_cmpuint (soup_message_get_status (evil_origin), ==, 403);

  soup_message_headers_replace (soup_message_get_request_headers (own_origin), "Origin", f->base);
  b3 = send_and_read (f, own_origin);
  g_assert_cmpuint (soup_message_get_status (own_origin), ==, 200);

  soup_message_headers_replace (soup_message_get_request_headers (localhost), "Host", host);
  b4 = send_and_read (f, localhost);
  g_assert_cmpuint (soup_message_get_status (localhost), ==, 200);
}

static void
test_health (Fixture       *f,
             gconstpointer  data)
{
  g_autoptr(SoupMessage) health = new_message (f, "GET", "/healthz", NULL);
  g_autoptr(SoupMessage) ready = new_message (f, "GET", "/readyz", NULL);
  g_autoptr(GBytes) b1 = send_and_read (f, health);
  g_autoptr(GBytes) b2 = send_and_read (f, ready);

  g_assert_cmpuint (soup_message_get_status (health), ==, 200);
  g_assert_true (test_bytes_contain (b1, "ok"));
  g_assert_cmpuint (soup_message_get_status (ready), ==, 200);
  g_assert_true (test_bytes_contain (b2, "ready"));
}

static void
test_no_usable_account_503 (Fixture       *f,
                            gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(JsonObject) json = NULL;

  g_assert_true (pooler_service_set_account_status (f->service, f->account_id, POOLER_ACCOUNT_PAUSED, &error));
  g_assert_no_error (error);

  msg = post_codex (f, f->key, &body);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 503);
  json = test_parse_error (body);
  g_assert_cmpstr (json_object_get_string_member (json, "code"), ==, "no_usable_account");
  g_assert_cmpuint (fake_upstream_get_request_count (f->fake), ==, 0);
}

static void
fixture_setup_dead_upstream (Fixture       *f,
                             gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any_port = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autofree char *dead = NULL;

  /* A port bound but not listening: connecting is refused, and no
   * socket bound after it (the fixture's fake upstream, the gateway
   * itself, another test's server) can take the port while the test
   * runs. A port merely closed again could be: once it was the
   * gateway's own, which answered its own request with a 401. */
  f->dead_port = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_bind (f->dead_port, any_port, FALSE, &error));
  g_assert_no_error (error);
  bound = g_socket_get_local_address (f->dead_port, &error);
  g_assert_no_error (error);
  dead = g_strdup_printf ("http://127.0.0.1:%u/backend-api",
                          g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  fixture_setup_with_upstream (f, dead);
}

/* An upstream URL that parses but is no http(s) one. */
static void
fixture_setup_bad_upstream_url (Fixture       *f,
                                gconstpointer  data)
{
  fixture_setup_with_upstream (f, "ftp://127.0.0.1/backend-api");
}

/* The timing trace's lines (CODEX_POOLER_TRACE_TIMES, set in main()) of
 * requests whose first bytes came at @since or later, as the numbers of
 * each: client port, the marks, the time the answer was out. */
static GPtrArray *
trace_lines_since (gint64 since)
{
  g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func ((GDestroyNotify) g_array_unref);
  g_autofree char *contents = NULL;
  g_auto(GStrv) lines = NULL;
  g_autoptr(GError) error = NULL;

  pooler_timing_flush ();
  g_assert_true (g_file_get_contents (g_getenv ("CODEX_POOLER_TRACE_TIMES"), &contents, NULL, &error));
  g_assert_no_error (error);
  lines = g_strsplit (contents, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto(GStrv) fields = g_strsplit (lines[i], " ", -1);
      GArray *numbers;

      if (*lines[i] == '\0')
        continue;
      g_assert_cmpuint (g_strv_length (fields), ==, 2 + POOLER_EXCHANGE_N_MARKS);
      numbers = g_array_new (FALSE, FALSE, sizeof (gint64));
      for (guint j = 0; fields[j] != NULL; j++)
        {
          char *end = NULL;
          gint64 value = g_ascii_strtoll (fields[j], &end, 10);

          /* Numbers only. */
          g_assert_true (end != fields[j] && *end == '\0');
          g_array_append_val (numbers, value);
        }
      if (g_array_index (numbers, gint64, 1 + POOLER_EXCHANGE_MARK_RECEIVED) >= since)
        g_ptr_array_add (found, numbers);
      else
        g_array_unref (numbers);
    }

  return g_steal_pointer (&found);
}

/* Number @field (0: the port; 1 + a mark) of line @i of trace_lines_since(). */
static gint64
trace_field (GPtrArray *lines,
             guint      i,
             guint      field)
{
  GArray *numbers = g_ptr_array_index (lines, i);

  return g_array_index (numbers, gint64, field);
}

static void
test_upstream_unreachable_502 (Fixture       *f,
                               gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(JsonObject) json = NULL;
  g_autoptr(PoolerRequestRecord) row = NULL;

  g_autoptr(GPtrArray) traced = NULL;
  gint64 started = g_get_monotonic_time ();

  msg = post_codex (f, f->key, &body);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 502);
  json = test_parse_error (body);
  g_assert_cmpstr (json_object_get_string_member (json, "code"), ==, "upstream_unreachable");

  row = test_last_request (f->service);
  g_assert_cmpint (row->status, ==, 502);
  g_assert_cmpstr (row->error_code, ==, "upstream_unreachable");
  g_assert_cmpuint (row->attempts->len, ==, 1);

  /* The timing trace: handed to the upstream, but no answer head came. */
  traced = trace_lines_since (started);
  g_assert_cmpuint (traced->len, ==, 1);
  g_assert_cmpint (trace_field (traced, 0, 1 + POOLER_EXCHANGE_MARK_FORWARDED), >, 0);
  g_assert_cmpint (trace_field (traced, 0, 1 + POOLER_EXCHANGE_MARK_UPSTREAM_HEAD), ==, 0);
  g_assert_cmpint (trace_field (traced, 0, 1 + POOLER_EXCHANGE_MARK_FIRST_WRITE), >, 0);
}

/* A configured upstream URL the client cannot use is the gateway's
 * error (500, named), not the upstream's, and sends nothing anywhere. */
static void
test_bad_upstream_url_500 (Fixture       *f,
                           gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(JsonObject) json = NULL;
  g_autoptr(PoolerRequestRecord) row = NULL;

  msg = post_codex (f, f->key, &body);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 500);
  json = test_parse_error (body);
  g_assert_cmpstr (json_object_get_string_member (json, "code"), ==, "bad_upstream_url");

  row = test_last_request (f->service);
  g_assert_cmpint (row->status, ==, 500);
  g_assert_cmpstr (row->error_code, ==, "bad_upstream_url");
  g_assert_cmpuint (pooler_upstream_get_n_opened (pooler_service_get_upstream (f->service)), ==, 0);
}

/* Nothing secret reaches the database file: not the account's tokens, not
 * the Pool key, not the prompt. */
static void
test_no_secrets_in_database (Fixture       *f,
                             gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) body = NULL;
  const char *suffixes[] = { "", "-wal", "-shm" };
  const char *db = pooler_store_get_path (pooler_service_get_store (f->service));

  msg = post_codex (f, f->key, &body);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  pooler_service_flush (f->service);

  for (guint i = 0; i < G_N_ELEMENTS (suffixes); i++)
    {
      g_autofree char *path = g_strconcat (db, suffixes[i], NULL);
      g_autofree char *contents = NULL;
      gsize length = 0;

      if (!g_file_get_contents (path, &contents, &length, NULL))
        continue;
      g_assert_null (g_strstr_len (contents, length, f->access_token));
      g_assert_null (g_strstr_len (contents, length, f->key + strlen ("sk-cxp-") + 12 + 1));
      g_assert_null (g_strstr_len (contents, length, "You are Codex, a coding agent"));
    }
}

/* A client that stops reading, so the gateway has to wait for it, and then
 * goes away: the request ends as client_closed and nothing breaks. */
/* A raw client with a 4 KiB receive window that has sent the Codex
 * request; non-blocking. */
static GSocket *
send_codex_with_small_window (Fixture *f)
{
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, pooler_gateway_get_port (f->gateway));
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) request = g_string_new (NULL);
  GSocket *socket;
  gsize sent = 0;

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_set_option (socket, SOL_SOCKET, SO_RCVBUF, 4096, NULL);
  g_assert_true (g_socket_connect (socket, address, NULL, &error));
  g_assert_no_error (error);

  g_string_append_printf (request, "POST /backend-api/codex/responses HTTP/1.1\r\n"
                                   "Host: 127.0.0.1:%u\r\nAuthorization: Bearer %s\r\n"
                                   "Content-Type: application/json\r\nContent-Length: %" G_GSIZE_FORMAT "\r\n\r\n",
                          pooler_gateway_get_port (f->gateway), f->key, g_bytes_get_size (f->codex_body));
  g_string_append_len (request, g_bytes_get_data (f->codex_body, NULL), g_bytes_get_size (f->codex_body));
  g_socket_set_blocking (socket, FALSE);
  while (sent < request->len)
    {
      gssize n = g_socket_send (socket, request->str + sent, request->len - sent, NULL, NULL);

      if (n > 0)
        sent += n;
      g_main_context_iteration (NULL, FALSE);
    }

  return socket;
}

/* Runs the main context for about @ms milliseconds. */
static void
settle (guint ms)
{
  gint64 until = g_get_monotonic_time () + (gint64) ms * 1000;

  while (g_get_monotonic_time () < until)
    {
      while (g_main_context_iteration (NULL, FALSE))
        ;
      g_usleep (1000);
    }
}

/* The single request's row once it is completed, within @seconds. */
static PoolerRequestRecord *
wait_for_completed_row (Fixture *f,
                        guint    seconds)
{
  gint64 deadline = g_get_monotonic_time () + seconds * G_USEC_PER_SEC;

  for (;;)
    {
      g_autoptr(GPtrArray) rows = NULL;

      g_main_context_iteration (NULL, FALSE);
      pooler_service_flush (f->service);
      rows = pooler_store_list_requests (pooler_service_get_store (f->service), 1, NULL);
      if (rows != NULL && rows->len == 1 &&
          ((PoolerRequestRecord *) g_ptr_array_index (rows, 0))->state == POOLER_REQUEST_COMPLETED)
        return pooler_request_record_copy (g_ptr_array_index (rows, 0));
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (10000);
    }
}

static void
test_slow_client_disconnects (Fixture       *f,
                              gconstpointer  data)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(PoolerRequestRecord) row = NULL;
  char head[256];
  gint64 deadline;

  fake_upstream_set_mode (f->fake, NULL, "long", 1);

  socket = send_codex_with_small_window (f);

  /* Read only the start of the answer, then let the gateway pile up. */
  deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (g_socket_receive (socket, head, sizeof head, NULL, NULL) <= 0 &&
         g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, FALSE);
  settle (1000);

  g_socket_close (socket, NULL);

  /* The row ends, marked as the client's doing. */
  row = wait_for_completed_row (f, 10);
  g_assert_cmpint (row->status, ==, 499);
  g_assert_cmpstr (row->error_code, ==, "client_closed");
}

/* Decodes a chunked body; FALSE when the framing is broken. */
static gboolean
dechunk (const char *data,
         gsize       length,
         GString    *out)
{
  const char *p = data;
  const char *end = data + length;

  for (;;)
    {
      char *after = NULL;
      guint64 size = g_ascii_strtoull (p, &after, 16);

      if (after == p || end - after < 2 || after[0] != '\r' || after[1] != '\n')
        return FALSE;
      p = after + 2;
      if (size == 0)
        return end - p == 2 && p[0] == '\r' && p[1] == '\n';
      if ((guint64) (end - p) < size + 2 || p[size] != '\r' || p[size + 1] != '\n')
        return FALSE;
      g_string_append_len (out, p, size);
      p += size + 2;
    }
}

#define SLOW_READER_DELTAS 512

/* A client that reads slowly still gets every byte of a long stream, in
 * well-formed chunks: the gateway waits for its socket, it does not drop
 * or reorder anything. */
static void
test_slow_reader_gets_everything (Fixture       *f,
                                  gconstpointer  data)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GString) answer = g_string_new (NULL);
  g_autoptr(GString) body = g_string_new (NULL);
  g_autoptr(PoolerRequestRecord) row = NULL;
  const char *blank;
  gint64 deadline;
  guint reads = 0;
  guint events = 0;

  /* Eight megabytes in few events: far more than a 4 KiB window and the
   * gateway's send buffer hold. */
  fake_upstream_set_long_deltas (f->fake, SLOW_READER_DELTAS, 16 * 1024);
  fake_upstream_set_mode (f->fake, NULL, "long", 1);

  socket = send_codex_with_small_window (f);

  /* Small reads with pauses, until the last chunk. */
  deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  while (!g_str_has_suffix (answer->str, "\r\n0\r\n\r\n"))
    {
      char buffer[16384];
      gssize n = g_socket_receive (socket, buffer, sizeof buffer, NULL, NULL);

      if (n == 0)
        break;
      if (n > 0)
        {
          g_string_append_len (answer, buffer, n);
          if (++reads % 8 == 0)
            g_usleep (2000);
        }
      g_main_context_iteration (NULL, FALSE);
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
    }

  g_assert_true (g_str_has_prefix (answer->str, "HTTP/1.1 200 OK\r\n"));
  blank = strstr (answer->str, "\r\n\r\n");
  g_assert_nonnull (blank);
  g_assert_true (dechunk (blank + 4, answer->len - (blank + 4 - answer->str), body));
  /* The fixture's events plus the copies of its first delta, in order,
   * the last one response.completed. */
  for (const char *p = body->str; (p = strstr (p, "event: ")) != NULL; p++)
    events++;
  g_assert_cmpuint (body->len, >, SLOW_READER_DELTAS * 16 * 1024);
  g_assert_cmpuint (events, >, SLOW_READER_DELTAS);
  g_assert_nonnull (g_strrstr (body->str, "event: response.completed"));
  g_assert_true (g_str_has_suffix (body->str, "\n\n"));

  row = test_last_request (f->service);
  g_assert_cmpint (row->status, ==, 200);
  g_assert_null (row->error_code);
}

/* A request sent the moment listen() returns is served, not reset. */
static void
test_request_right_after_listen (Fixture       *f,
                                 gconstpointer  data)
{
  g_autoptr(PoolerGateway) second = pooler_gateway_new (f->service);
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autofree char *base = NULL;

  g_assert_true (pooler_gateway_listen (second, NULL, 0, &error));
  g_assert_no_error (error);
  base = pooler_gateway_dup_base_url (second);
  msg = test_new_message (base, "GET", "/healthz", NULL);
  body = test_send_and_read (f->client, msg);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
}

/* ---- faulty upstreams --------------------------------------------------- */

static void
test_upstream_hang_gives_504 (Fixture       *f,
                              gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(JsonObject) error = NULL;
  g_autoptr(PoolerRequestRecord) row = NULL;

  pooler_gateway_set_timeouts (f->gateway, 30, 15, 1);
  fake_upstream_set_mode (f->fake, NULL, "hang", 0);
  msg = post_codex (f, f->key, &body);
  fake_upstream_release (f->fake);

  g_assert_cmpuint (soup_message_get_status (msg), ==, 504);
  error = test_parse_error (body);
  g_assert_cmpstr (json_object_get_string_member (error, "code"), ==, "upstream_timeout");
  row = test_last_request (f->service);
  g_assert_cmpstr (row->error_code, ==, "upstream_timeout");
}

/* Requests one after another leave the deadline timer where the first
 * put it: moving it wakes the main loop (an eventfd write, a poll and a
 * read), which was two wake-ups a request. */
static void
test_answer_deadlines_stay_armed (Fixture       *f,
                                  gconstpointer  data)
{
  guint64 arms = 0;

  for (guint i = 0; i < 20; i++)
    {
      g_autoptr(GBytes) body = NULL;
      g_autoptr(SoupMessage) msg = post_codex (f, f->key, &body);

      g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
      g_assert_true (test_bytes_contain (body, "response.completed"));
      if (i == 0)
        arms = pooler_gateway_get_deadline_arms (f->gateway);
    }
  g_assert_cmpuint (pooler_gateway_get_hot_requests (f->gateway), ==, 20);
  /* Set once by the first request; none due since. */
  g_assert_cmpuint (arms, ==, 1);
  g_assert_cmpuint (pooler_gateway_get_deadline_arms (f->gateway), ==, 1);

  /* A shorter timeout brings it forward (2), that deadline ends the
   * attempt, and with none left the timer is disarmed (3). Left at the
   * first request's 60 s, the 504 would come from the old deadline, with
   * one move fewer. */
  pooler_gateway_set_timeouts (f->gateway, 60, 15, 1);
  fake_upstream_set_mode (f->fake, NULL, "hang", 0);
  {
    g_autoptr(GBytes) body = NULL;
    g_autoptr(SoupMessage) msg = post_codex (f, f->key, &body);

    g_assert_cmpuint (soup_message_get_status (msg), ==, 504);
  }
  fake_upstream_release (f->fake);
  g_assert_cmpuint (pooler_gateway_get_deadline_arms (f->gateway), ==, 3);
}

/* Each attempt keeps the answer timeout it began with: one that begins
 * after the timeout was shortened gives up first, though an older attempt
 * still waits for its later deadline. */
static void
test_answer_deadlines_in_order (Fixture       *f,
                                gconstpointer  data)
{
  g_autoptr(SoupMessage) first = new_codex_message (f, f->key);
  g_autoptr(SoupMessage) second = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(JsonObject) error = NULL;
  TestSent pending = { 0 };

  pooler_gateway_set_timeouts (f->gateway, 60, 15, 30);
  fake_upstream_set_mode (f->fake, NULL, "hang", 0);
  test_send_and_read_start (f->client, first, &pending);
  while (fake_upstream_get_request_count (f->fake) < 1)
    {
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }

  pooler_gateway_set_timeouts (f->gateway, 60, 15, 1);
  second = post_codex (f, f->key, &body);
  g_assert_cmpuint (soup_message_get_status (second), ==, 504);
  error = test_parse_error (body);
  g_assert_cmpstr (json_object_get_string_member (error, "code"), ==, "upstream_timeout");
  /* The first is still within its 30 s. */
  g_assert_false (pending.done);

  fake_upstream_release (f->fake);
  while (!pending.done)
    g_main_context_iteration (NULL, TRUE);
  g_assert_no_error (pending.error);
  g_assert_cmpuint (soup_message_get_status (first), ==, 200);
  g_assert_true (test_bytes_contain (pending.body, "response.completed"));
  g_bytes_unref (pending.body);
}

/* A stream that breaks, or that is not SSE at all, still ends with a
 * terminal event the Codex CLI understands (and retries on). */
static void
assert_terminal_failed (Fixture    *f,
                        const char *mode,
                        const char *code)
{
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(PoolerRequestRecord) row = NULL;
  gsize size;
  const char *text;
  const char *last_event;

  fake_upstream_set_mode (f->fake, NULL, mode, 1);
  msg = post_codex (f, f->key, &body);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);

  text = g_bytes_get_data (body, &size);
  last_event = g_strrstr_len (text, size, "event: ");
  g_assert_nonnull (last_event);
  g_assert_true (g_str_has_prefix (last_event, "event: response.failed\ndata: {"));
  if (strstr (last_event, code) == NULL)
    g_test_message ("last event: %s", last_event);
  g_assert_nonnull (strstr (last_event, code));
  g_assert_true (g_str_has_suffix (text, "\n\n"));

  row = test_last_request (f->service);
  g_assert_cmpstr (row->error_code, ==, code);
}

static void
test_upstream_cut_and_garbage (Fixture       *f,
                               gconstpointer  data)
{
  assert_terminal_failed (f, "cut", "stream_incomplete");
  assert_terminal_failed (f, "garbage", "stream_incomplete");
}

/* A 200 whose first event is response.failed, with no account left to
 * try: passed on as the upstream said it, and logged with its code. */
static void
test_upstream_failed_event (Fixture       *f,
                            gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(PoolerRequestRecord) row = NULL;

  fake_upstream_set_mode (f->fake, NULL, "failed", 1);
  msg = post_codex (f, f->key, &body);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  g_assert_true (test_bytes_contain (body, "event: response.failed"));
  row = test_last_request (f->service);
  g_assert_cmpstr (row->error_code, ==, "server_error");
}

static void
test_upstream_huge_headers (Fixture       *f,
                            gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(JsonObject) error = NULL;

  fake_upstream_set_mode (f->fake, NULL, "huge_headers", 1);
  msg = post_codex (f, f->key, &body);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 502);
  error = test_parse_error (body);
  g_assert_cmpstr (json_object_get_string_member (error, "code"), ==, "upstream_unreachable");
}

/* ---- abusive clients ------------------------------------------------------ */

static GSocket *
raw_connect (Fixture *f)
{
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, pooler_gateway_get_port (f->gateway));
  g_autoptr(GError) error = NULL;
  GSocket *socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);

  g_assert_no_error (error);
  g_assert_true (g_socket_connect (socket, address, NULL, &error));
  g_assert_no_error (error);
  g_socket_set_blocking (socket, FALSE);

  return socket;
}

/* TRUE when the gateway closed @socket within @seconds (reading whatever
 * it said first into @said, if given). */
static gboolean
closed_within (GSocket *socket,
               guint    seconds,
               GString *said)
{
  gint64 deadline = g_get_monotonic_time () + seconds * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < deadline)
    {
      char buffer[4096];
      g_autoptr(GError) error = NULL;
      gssize n = g_socket_receive (socket, buffer, sizeof buffer, NULL, &error);

      if (n == 0 || (n < 0 && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)))
        return TRUE;
      if (n > 0 && said != NULL)
        g_string_append_len (said, buffer, n);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (2000);
    }

  return FALSE;
}

static void
test_slow_headers_disconnected (Fixture       *f,
                                gconstpointer  data)
{
  g_autoptr(GSocket) slow = NULL;
  g_autoptr(SoupMessage) probe = NULL;
  g_autoptr(GBytes) body = NULL;
  const char *partial = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n";

  pooler_gateway_set_timeouts (f->gateway, 30, 1, 60);
  slow = raw_connect (f);
  g_assert_cmpint (g_socket_send (slow, partial, strlen (partial), NULL, NULL), ==, (gssize) strlen (partial));

  /* Trickling is not enough: the headers are late, the door closes. */
  g_assert_true (closed_within (slow, 5, NULL));

  probe = test_new_message (f->base, "GET", "/healthz", NULL);
  body = send_and_read (f, probe);
  g_assert_cmpuint (soup_message_get_status (probe), ==, 200);
}

static void
test_idle_connection_closed (Fixture       *f,
                             gconstpointer  data)
{
  g_autoptr(GSocket) idle = NULL;

  pooler_gateway_set_timeouts (f->gateway, 1, 15, 60);
  g_socket_close (raw_connect (f), NULL);
  idle = raw_connect (f);
  g_assert_true (closed_within (idle, 5, NULL));
}

static void
test_too_many_headers (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = test_new_message (f->base, "GET", "/healthz", NULL);
  g_autoptr(GBytes) body = NULL;
  g_autoptr(JsonObject) error = NULL;

  for (guint i = 0; i < POOLER_MAX_REQUEST_HEADERS + 5; i++)
    {
      g_autofree char *name = g_strdup_printf ("X-Filler-%u", i);
      soup_message_headers_append (soup_message_get_request_headers (msg), name, "1");
    }
  body = send_and_read (f, msg);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 431);
  error = test_parse_error (body);
  g_assert_cmpstr (json_object_get_string_member (error, "code"), ==, "too_many_headers");
}

/* Past the cap, new connections are turned away; once the crowd leaves,
 * the gateway serves again (its accept loop never gives up). */
static void
test_connection_cap_and_recovery (Fixture       *f,
                                  gconstpointer  data)
{
  g_autoptr(GPtrArray) crowd = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GSocket) refused = NULL;
  g_autoptr(SoupMessage) probe = NULL;
  g_autoptr(GBytes) body = NULL;

  /* The fixture's client may hold a connection already; start clean. */
  g_clear_object (&f->client);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  pooler_gateway_set_max_connections (f->gateway, 3);
  for (guint i = 0; i < 3; i++)
    {
      g_ptr_array_add (crowd, raw_connect (f));
      for (guint j = 0; j < 10; j++)
        g_main_context_iteration (NULL, FALSE);
    }
  while (pooler_gateway_get_connections (f->gateway) < 3)
    g_main_context_iteration (NULL, TRUE);

  refused = raw_connect (f);
  g_assert_true (closed_within (refused, 5, NULL));
  g_assert_cmpuint (pooler_gateway_get_connections (f->gateway), ==, 3);

  g_ptr_array_set_size (crowd, 0);
  while (pooler_gateway_get_connections (f->gateway) > 0)
    g_main_context_iteration (NULL, TRUE);

  f->client = soup_session_new ();
  probe = test_new_message (f->base, "GET", "/healthz", NULL);
  body = send_and_read (f, probe);
  g_assert_cmpuint (soup_message_get_status (probe), ==, 200);
}

/* Connections stay open between requests (libsoup closes them unless the
 * server has a listener of its own; see add_unreachable_listener()). */
static void
test_keep_alive (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(GSocket) socket = raw_connect (f);
  g_autofree char *request = g_strdup_printf ("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n",
                                              pooler_gateway_get_port (f->gateway));

  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(GString) said = g_string_new (NULL);
      gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

      g_assert_cmpint (g_socket_send (socket, request, strlen (request), NULL, NULL), ==, (gssize) strlen (request));
      while (strstr (said->str, "{\"status\":\"ok\"}") == NULL)
        {
          char buffer[1024];
          gssize n = g_socket_receive (socket, buffer, sizeof buffer, NULL, NULL);

          g_assert_cmpint (n, !=, 0);   /* closed by the gateway */
          if (n > 0)
            g_string_append_len (said, buffer, n);
          g_main_context_iteration (NULL, FALSE);
          g_assert_cmpint (g_get_monotonic_time (), <, deadline);
        }
      g_assert_true (g_str_has_prefix (said->str, "HTTP/1.1 200"));
    }
}


/* ---- the hot path ---------------------------------------------------------- */

static guint
count_occurrences (const char *haystack,
                   const char *needle)
{
  guint count = 0;

  for (const char *p = haystack; (p = strstr (p, needle)) != NULL; p += strlen (needle))
    count++;
  return count;
}

/* Reads from @socket into @said until @needle was seen @count times. */
static void
read_until (GSocket    *socket,
            GString    *said,
            const char *needle,
            guint       count)
{
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  while (count_occurrences (said->str, needle) < count)
    {
      char buffer[16384];
      gssize n = g_socket_receive (socket, buffer, sizeof buffer, NULL, NULL);

      g_assert_cmpint (n, !=, 0);   /* closed by the gateway */
      if (n > 0)
        g_string_append_len (said, buffer, n);
      else
        g_usleep (1000);
      g_main_context_iteration (NULL, FALSE);
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
    }
}

static char *
codex_request_head (Fixture *f)
{
  return g_strdup_printf ("POST /backend-api/codex/responses HTTP/1.1\r\n"
                          "Host: 127.0.0.1:%u\r\n"
                          "Authorization: Bearer %s\r\n"
                          "Content-Type: application/json\r\n"
                          "session-id: 01a20b6a-26ce-7131-9a0a-c6c32363fd36\r\n"
                          "Content-Length: %" G_GSIZE_FORMAT "\r\n\r\n",
                          pooler_gateway_get_port (f->gateway), f->key, g_bytes_get_size (f->codex_body));
}

static void
send_all (GSocket    *socket,
          const char *data,
          gsize       length)
{
  gsize sent = 0;
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  while (sent < length)
    {
      gssize n = g_socket_send (socket, data + sent, length - sent, NULL, NULL);

      if (n > 0)
        sent += n;
      g_main_context_iteration (NULL, FALSE);
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
    }
}

/* Two streamed requests and a health check in one write: the hot path
 * answers both in order on the kept-alive connection, then hands the
 * connection to libsoup with the third request, which libsoup answers. */
static void
test_hot_path_pipelined_then_handoff (Fixture       *f,
                                      gconstpointer  data)
{
  g_autoptr(GSocket) socket = raw_connect (f);
  g_autoptr(GString) request = g_string_new (NULL);
  g_autoptr(GString) said = g_string_new (NULL);
  g_autofree char *head = codex_request_head (f);
  g_autoptr(GPtrArray) seen = NULL;
  const char *first, *second, *health;

  fake_upstream_set_reply_text (f->fake, "piped");
  for (guint i = 0; i < 2; i++)
    {
      g_string_append (request, head);
      g_string_append_len (request, g_bytes_get_data (f->codex_body, NULL), g_bytes_get_size (f->codex_body));
    }
  g_string_append_printf (request, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n",
                          pooler_gateway_get_port (f->gateway));
  send_all (socket, request->str, request->len);

  read_until (socket, said, "{\"status\":\"ok\"}", 1);

  g_assert_cmpuint (count_occurrences (said->str, "HTTP/1.1 200 OK\r\n"), ==, 3);
  g_assert_cmpuint (count_occurrences (said->str, "event: response.completed"), ==, 2);
  first = strstr (said->str, "HTTP/1.1 200");
  second = strstr (first + 1, "HTTP/1.1 200");
  health = strstr (second + 1, "HTTP/1.1 200");
  g_assert_nonnull (health);
  /* Each answer is whole before the next begins. */
  g_assert_nonnull (g_strstr_len (first, second - first, "\r\n0\r\n\r\n"));
  g_assert_nonnull (g_strstr_len (second, health - second, "\r\n0\r\n\r\n"));
  g_assert_true (g_str_has_suffix (said->str, "{\"status\":\"ok\"}"));
  g_assert_cmpuint (pooler_gateway_get_hot_requests (f->gateway), ==, 2);
  g_assert_cmpuint (fake_upstream_get_request_count (f->fake), ==, 2);

  /* The first body left in its read block, with the start of the second
   * request moved on; the second was read on in a block of its own. */
  seen = fake_upstream_dup_requests (f->fake);
  for (guint i = 0; i < seen->len; i++)
    g_assert_true (g_bytes_equal (((FakeUpstreamRequest *) g_ptr_array_index (seen, i))->body, f->codex_body));
}

static void
string_free (gpointer text)
{
  g_string_free (text, TRUE);
}

/* Keep-alive connections that send their next requests take no new read
 * blocks: a connection holds a block only while it reads, and gives it
 * back when its body left in it (to the pool, when the exchange is done)
 * or was copied out (a small body), for the next request to reuse (a
 * fresh block costs a page fault per page on its first read). Idle
 * connections hold none. */
#define REUSE_CONNECTIONS 16

static void
test_hot_path_reuses_read_blocks (Fixture       *f,
                                  gconstpointer  data)
{
  static const char small_body[] = "{\"model\":\"gpt-5.5\",\"stream\":true,\"input\":[]}";
  PoolerBlockPool *blocks = pooler_http_conn_get_blocks ();
  g_autofree char *head = codex_request_head (f);
  g_autoptr(GString) large = g_string_new (head);
  g_autoptr(GString) small = NULL;
  gpointer held[REUSE_CONNECTIONS];
  GSocket *sockets[REUSE_CONNECTIONS];
  guint64 fresh;
  guint spare;

  g_string_append_len (large, g_bytes_get_data (f->codex_body, NULL), g_bytes_get_size (f->codex_body));
  small = g_string_new (NULL);
  g_string_append_printf (small, "POST /backend-api/codex/responses HTTP/1.1\r\n"
                                 "Host: 127.0.0.1:%u\r\n"
                                 "Authorization: Bearer %s\r\n"
                                 "Content-Type: application/json\r\n"
                                 "Content-Length: %" G_GSIZE_FORMAT "\r\n\r\n%s",
                          pooler_gateway_get_port (f->gateway), f->key, strlen (small_body), small_body);

  /* As many spares as the connections can need at once (however many of
   * their requests the gateway reads in one turn): from here on, none may
   * be allocated. */
  settle (20);
  for (guint i = 0; i < REUSE_CONNECTIONS; i++)
    held[i] = pooler_block_pool_take (blocks);
  for (guint i = 0; i < REUSE_CONNECTIONS; i++)
    pooler_block_pool_release (blocks, held[i]);
  spare = pooler_block_pool_get_spare (blocks);
  fresh = pooler_block_pool_get_fresh (blocks);
  g_assert_cmpuint (spare, >=, REUSE_CONNECTIONS);

  for (guint i = 0; i < REUSE_CONNECTIONS; i++)
    sockets[i] = raw_connect (f);
  settle (50);
  g_assert_cmpuint (pooler_gateway_get_connections (f->gateway), ==, REUSE_CONNECTIONS);
  g_assert_cmpuint (pooler_block_pool_get_spare (blocks), ==, spare);

  for (guint round = 0; round < 4; round++)
    {
      GString *request = round % 2 == 0 ? large : small;
      g_autoptr(GPtrArray) said = g_ptr_array_new_with_free_func (string_free);

      /* All requests first, then the answers: the bodies are in flight
       * together, as when many streams start at once. */
      for (guint i = 0; i < REUSE_CONNECTIONS; i++)
        {
          send_all (sockets[i], request->str, request->len);
          g_ptr_array_add (said, g_string_new (NULL));
        }
      for (guint i = 0; i < REUSE_CONNECTIONS; i++)
        {
          GString *text = g_ptr_array_index (said, i);

          read_until (sockets[i], text, "\r\n0\r\n\r\n", 1);
          g_assert_true (g_str_has_prefix (text->str, "HTTP/1.1 200 OK\r\n"));
          g_assert_nonnull (strstr (text->str, "event: response.completed"));
        }

      /* Every block back, none new. */
      settle (50);
      g_assert_cmpuint (pooler_block_pool_get_spare (blocks), ==, spare);
      g_assert_cmpuint (pooler_block_pool_get_fresh (blocks), ==, fresh);
    }

  g_assert_cmpuint (fake_upstream_get_request_count (f->fake), ==, 4 * REUSE_CONNECTIONS);
  for (guint i = 0; i < REUSE_CONNECTIONS; i++)
    g_object_unref (sockets[i]);
}

/* A request that arrives a few bytes at a time is still whole when the
 * hot path answers it. */
static void
test_hot_path_trickled_request (Fixture       *f,
                                gconstpointer  data)
{
  g_autoptr(GSocket) socket = raw_connect (f);
  g_autoptr(GString) said = g_string_new (NULL);
  g_autofree char *head = codex_request_head (f);
  g_autoptr(GPtrArray) seen = NULL;
  gsize size;
  const char *body = g_bytes_get_data (f->codex_body, &size);

  for (const char *p = head; *p != '\0'; p += 3)
    {
      send_all (socket, p, MIN (3, strlen (p)));
      for (guint i = 0; i < 3; i++)
        g_main_context_iteration (NULL, FALSE);
    }
  for (gsize sent = 0; sent < size; sent += 1000)
    {
      send_all (socket, body + sent, MIN (1000, size - sent));
      for (guint i = 0; i < 3; i++)
        g_main_context_iteration (NULL, FALSE);
    }

  read_until (socket, said, "\r\n0\r\n\r\n", 1);
  g_assert_true (g_str_has_prefix (said->str, "HTTP/1.1 200 OK\r\n"));
  g_assert_nonnull (strstr (said->str, "event: response.completed"));
  g_assert_cmpuint (pooler_gateway_get_hot_requests (f->gateway), ==, 1);

  seen = fake_upstream_dup_requests (f->fake);
  g_assert_cmpuint (seen->len, ==, 1);
  g_assert_true (g_bytes_equal (((FakeUpstreamRequest *) g_ptr_array_index (seen, 0))->body, f->codex_body));
}

/* A client that leaves while the upstream thinks is noticed at once: the
 * row ends as the client's doing, long before any timeout. */
static void
test_hot_path_client_leaves_while_waiting (Fixture       *f,
                                           gconstpointer  data)
{
  g_autoptr(GSocket) socket = raw_connect (f);
  g_autofree char *head = codex_request_head (f);
  g_autoptr(PoolerRequestRecord) row = NULL;

  fake_upstream_set_mode (f->fake, NULL, "hang", 0);
  send_all (socket, head, strlen (head));
  send_all (socket, g_bytes_get_data (f->codex_body, NULL), g_bytes_get_size (f->codex_body));
  while (fake_upstream_get_request_count (f->fake) < 1)
    g_main_context_iteration (NULL, TRUE);
  g_socket_close (socket, NULL);

  row = wait_for_completed_row (f, 3);
  fake_upstream_release (f->fake);
  g_assert_cmpint (row->status, ==, 499);
}

/* The same on libsoup's path (/v1 is libsoup's): libsoup does not read
 * the socket of a message waiting for its answer, so the gateway's sweep
 * notices the client is gone; the upstream request ends with it and the
 * row says 499, not the 200 of an answer nobody got. */
static void
test_libsoup_client_leaves_while_waiting (Fixture       *f,
                                          gconstpointer  data)
{
  g_autoptr(GSocket) socket = raw_connect (f);
  const char *body = "{\"model\":\"gpt-5.5\",\"input\":\"hi\",\"stream\":false}";
  g_autofree char *request = g_strdup_printf ("POST /v1/responses HTTP/1.1\r\n"
                                              "Host: 127.0.0.1:%u\r\n"
                                              "Authorization: Bearer %s\r\n"
                                              "Content-Type: application/json\r\n"
                                              "Content-Length: %" G_GSIZE_FORMAT "\r\n\r\n%s",
                                              pooler_gateway_get_port (f->gateway), f->key,
                                              strlen (body), body);
  g_autoptr(PoolerRequestRecord) row = NULL;

  fake_upstream_set_mode (f->fake, NULL, "hold", 0);
  send_all (socket, request, strlen (request));
  while (fake_upstream_get_held_count (f->fake) < 1)
    g_main_context_iteration (NULL, TRUE);
  g_socket_close (socket, NULL);

  row = wait_for_completed_row (f, 10);
  g_assert_cmpint (row->status, ==, 499);
  fake_upstream_release (f->fake);
}

/* Requests the hot path does not take (a chunked body, HTTP/1.0) are
 * libsoup's, and answered as before. */
static void
test_hot_path_hands_off_the_rest (Fixture       *f,
                                  gconstpointer  data)
{
  g_autoptr(GSocket) chunked = raw_connect (f);
  g_autoptr(GSocket) old = raw_connect (f);
  g_autoptr(GString) request = g_string_new (NULL);
  g_autoptr(GString) said = g_string_new (NULL);
  g_autoptr(GString) said_old = g_string_new (NULL);
  gsize size;
  const char *body = g_bytes_get_data (f->codex_body, &size);

  g_string_append_printf (request,
                          "POST /backend-api/codex/responses HTTP/1.1\r\n"
                          "Host: 127.0.0.1:%u\r\n"
                          "Authorization: Bearer %s\r\n"
                          "Content-Type: application/json\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n"
                          "%" G_GSIZE_MODIFIER "x\r\n",
                          pooler_gateway_get_port (f->gateway), f->key, size);
  g_string_append_len (request, body, size);
  g_string_append (request, "\r\n0\r\n\r\n");
  send_all (chunked, request->str, request->len);
  read_until (chunked, said, "\r\n0\r\n\r\n", 1);
  g_assert_true (g_str_has_prefix (said->str, "HTTP/1.1 200 OK\r\n"));
  g_assert_nonnull (strstr (said->str, "event: response.completed"));
  /* libsoup's exchange takes the upstream's headers by copy, filtered
   * the same way. */
  g_assert_nonnull (strstr (said->str, "\r\nx-request-id: req_"));
  g_assert_null (strstr (said->str, "fake-upstream"));

  g_string_printf (request, "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1:%u\r\n\r\n",
                   pooler_gateway_get_port (f->gateway));
  send_all (old, request->str, request->len);
  g_assert_true (closed_within (old, 5, said_old));
  g_assert_true (g_str_has_prefix (said_old->str, "HTTP/1.0 200"));

  /* A stream to an HTTP/1.0 client: no chunk framing (1.0 has none), the
   * body ends with the connection. */
  {
    g_autoptr(GSocket) old_stream = raw_connect (f);
    g_autoptr(GString) said_stream = g_string_new (NULL);

    g_string_printf (request, "POST /backend-api/codex/responses HTTP/1.0\r\nHost: 127.0.0.1:%u\r\n"
                     "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %" G_GSIZE_FORMAT "\r\n\r\n",
                     pooler_gateway_get_port (f->gateway), f->key, size);
    g_string_append_len (request, body, size);
    send_all (old_stream, request->str, request->len);
    g_assert_true (closed_within (old_stream, 10, said_stream));
    g_assert_true (g_str_has_prefix (said_stream->str, "HTTP/1.0 200"));
    g_assert_null (strstr (said_stream->str, "Transfer-Encoding"));
    g_assert_nonnull (strstr (said_stream->str, "\r\n\r\nevent: response.created\n"));
    g_assert_true (g_str_has_suffix (said_stream->str, "\n\n"));
  }

  /* Framing two parsers could read two ways: refused, connection closed. */
  {
    const char *framings[] = {
      "Content-Length: 2\r\nContent-Length: 3\r\n",
      "Transfer-Encoding: xchunked\r\nContent-Length: 2\r\n",
      "Transfer-Encoding: chunked\r\nContent-Length: 2\r\n",
      "Transfer-Encoding: gzip, chunked\r\n",       /* libsoup's own 501 */
    };
    const char *answers[] = { "HTTP/1.1 400", "HTTP/1.1 400", "HTTP/1.1 400", "HTTP/1.1 501" };

    for (guint i = 0; i < G_N_ELEMENTS (framings); i++)
      {
        g_autoptr(GSocket) smuggler = raw_connect (f);
        g_autoptr(GString) said_framing = g_string_new (NULL);

        g_string_printf (request, "POST /backend-api/codex/responses HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
                         "Authorization: Bearer %s\r\n%s\r\n{}",
                         pooler_gateway_get_port (f->gateway), f->key, framings[i]);
        send_all (smuggler, request->str, request->len);
        g_assert_true (closed_within (smuggler, 5, said_framing));
        g_assert_true (g_str_has_prefix (said_framing->str, answers[i]));
      }
  }

  /* Lines ended by a bare LF: libsoup's at once, not at the deadline. */
  {
    g_autoptr(GSocket) lf = raw_connect (f);
    g_autoptr(GString) said_lf = g_string_new (NULL);

    g_string_printf (request, "GET /healthz HTTP/1.1\nHost: 127.0.0.1:%u\n\n",
                     pooler_gateway_get_port (f->gateway));
    send_all (lf, request->str, request->len);
    read_until (lf, said_lf, "{\"status\":\"ok\"}", 1);
  }

  /* A target with a broken escape is not passed upstream by the hot path. */
  {
    g_autoptr(GSocket) odd = raw_connect (f);
    g_autoptr(GString) said_odd = g_string_new (NULL);

    g_string_printf (request, "GET /backend-api/codex/models?a=%%zz HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
                     "Authorization: Bearer %s\r\n\r\n",
                     pooler_gateway_get_port (f->gateway), f->key);
    send_all (odd, request->str, request->len);
    read_until (odd, said_odd, "HTTP/1.1 ", 1);
  }

  g_assert_cmpuint (pooler_gateway_get_hot_requests (f->gateway), ==, 0);
}

/* The hot path's headers both ways: the upstream gets the client's
 * Content-Type, or application/json when there is none or it does not
 * parse; the client gets the upstream's headers less the dropped ones,
 * with the gateway's own framing once. */
static void
test_forwarded_headers (Fixture       *f,
                        gconstpointer  data)
{
  static const struct
  {
    const char *line;       /* the client's Content-Type line */
    const char *forwarded;  /* what the upstream gets */
  } cases[] = {
    { "", "application/json" },
    { "Content-Type: ;;=\r\n", "application/json" },
    { "Content-Type: text/plain; charset=utf-8\r\n", "text/plain; charset=utf-8" },
  };
  gsize size;
  const char *body = g_bytes_get_data (f->codex_body, &size);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GSocket) socket = raw_connect (f);
      g_autoptr(GString) request = g_string_new (NULL);
      g_autoptr(GString) said = g_string_new (NULL);
      g_autoptr(GPtrArray) seen = NULL;
      g_autofree char *head = NULL;
      FakeUpstreamRequest *upstream;

      g_string_printf (request,
                       "POST /backend-api/codex/responses HTTP/1.1\r\n"
                       "Host: 127.0.0.1:%u\r\n"
                       "Authorization: Bearer %s\r\n"
                       "%s"
                       "Content-Length: %" G_GSIZE_FORMAT "\r\n\r\n",
                       pooler_gateway_get_port (f->gateway), f->key, cases[i].line, size);
      g_string_append_len (request, body, size);
      send_all (socket, request->str, request->len);
      read_until (socket, said, "\r\n0\r\n\r\n", 1);

      seen = fake_upstream_dup_requests (f->fake);
      upstream = g_ptr_array_index (seen, seen->len - 1);
      g_assert_cmpstr (fake_upstream_request_get_header (upstream, "Content-Type"), ==, cases[i].forwarded);

      head = g_strndup (said->str, strstr (said->str, "\r\n\r\n") + 2 - said->str);
      g_assert_true (g_str_has_prefix (head, "HTTP/1.1 200 OK\r\n"));
      g_assert_nonnull (strstr (head, "\r\nx-request-id: req_"));
      g_assert_nonnull (strstr (head, "\r\nx-codex-primary-used-percent: "));
      g_assert_nonnull (strstr (head, "\r\nContent-Type: text/event-stream"));
      /* Dropped: the upstream's Server; framing and Date are ours, once. */
      g_assert_null (strstr (head, "fake-upstream"));
      g_assert_cmpuint (count_occurrences (head, "\r\nDate: "), ==, 1);
      g_assert_cmpuint (count_occurrences (head, "\r\nTransfer-Encoding: chunked\r\n"), ==, 1);
      g_assert_null (strstr (head, "Content-Length"));
    }
  g_assert_cmpuint (pooler_gateway_get_hot_requests (f->gateway), ==, G_N_ELEMENTS (cases));
}

/* The timing trace (CODEX_POOLER_TRACE_TIMES, set in main()): a request
 * answered on the hot path leaves one line, keyed by the client's port,
 * with every step's time in order and nothing but numbers. */
static void
test_timing_trace (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GSocketAddress) local = NULL;
  g_autoptr(GString) answer = g_string_new (NULL);
  g_autoptr(GPtrArray) traced = NULL;
  g_autoptr(GError) error = NULL;
  char buffer[4096];
  GArray *line = NULL;
  guint16 port;
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  gint64 started;

  g_assert_true (pooler_timing_enabled ());
  started = g_get_monotonic_time ();
  socket = send_codex_with_small_window (f);
  local = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local));

  /* The whole answer: its last chunk. */
  while (!g_str_has_suffix (answer->str, "0\r\n\r\n"))
    {
      gssize n = g_socket_receive (socket, buffer, sizeof buffer, NULL, NULL);

      if (n > 0)
        g_string_append_len (answer, buffer, n);
      g_main_context_iteration (NULL, FALSE);
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
    }
  g_assert_true (g_str_has_prefix (answer->str, "HTTP/1.1 200"));
  settle (50);

  /* One request, one line, found by its port. */
  traced = trace_lines_since (started);
  for (guint i = 0; i < traced->len; i++)
    if (trace_field (traced, i, 0) == port)
      {
        g_assert_null (line);
        line = g_ptr_array_index (traced, i);
      }
  g_assert_nonnull (line);

  /* Every step reached, in order, up to the answer's end. */
  for (guint i = 1; i < line->len; i++)
    {
      g_assert_cmpint (g_array_index (line, gint64, i), >, 0);
      if (i > 1)
        g_assert_cmpint (g_array_index (line, gint64, i), >=, g_array_index (line, gint64, i - 1));
    }
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *trace_dir = NULL;
  g_autofree char *trace_path = NULL;
  int status;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  /* Read once per process, at the first answered request. */
  trace_dir = g_dir_make_tmp ("pooler-trace-XXXXXX", NULL);
  g_assert_nonnull (trace_dir);
  trace_path = g_build_filename (trace_dir, "times", NULL);
  g_setenv ("CODEX_POOLER_TRACE_TIMES", trace_path, TRUE);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/gateway/stream-through-pool", test_stream_through_pool);
  ADD ("/gateway/first-event-before-upstream-finishes", test_first_event_before_upstream_finishes);
  ADD ("/gateway/keys-refused", test_keys_refused);
  ADD ("/gateway/websocket-upgrade-426", test_websocket_upgrade_426);
  ADD ("/gateway/models-forwarded-and-cached", test_models_forwarded_and_cached);
  ADD ("/gateway/upstream-errors-passed-on", test_upstream_errors_passed_on);
  ADD ("/gateway/bad-requests", test_bad_requests);
  ADD ("/gateway/host-and-origin", test_host_and_origin);
  ADD ("/gateway/health", test_health);
  ADD ("/gateway/no-usable-account-503", test_no_usable_account_503);
  ADD ("/gateway/no-secrets-in-database", test_no_secrets_in_database);
  ADD ("/gateway/slow-client-disconnects", test_slow_client_disconnects);
  ADD ("/gateway/slow-reader-gets-everything", test_slow_reader_gets_everything);
  ADD ("/gateway/request-right-after-listen", test_request_right_after_listen);
  ADD ("/gateway/upstream-hang-gives-504", test_upstream_hang_gives_504);
  ADD ("/gateway/answer-deadlines-in-order", test_answer_deadlines_in_order);
  ADD ("/gateway/answer-deadlines-stay-armed", test_answer_deadlines_stay_armed);
  ADD ("/gateway/upstream-cut-and-garbage", test_upstream_cut_and_garbage);
  ADD ("/gateway/upstream-failed-event", test_upstream_failed_event);
  ADD ("/gateway/upstream-huge-headers", test_upstream_huge_headers);
  ADD ("/gateway/slow-headers-disconnected", test_slow_headers_disconnected);
  ADD ("/gateway/idle-connection-closed", test_idle_connection_closed);
  ADD ("/gateway/too-many-headers", test_too_many_headers);
  ADD ("/gateway/connection-cap-and-recovery", test_connection_cap_and_recovery);
  ADD ("/gateway/keep-alive", test_keep_alive);
  ADD ("/gateway/hot-path-pipelined-then-handoff", test_hot_path_pipelined_then_handoff);
  ADD ("/gateway/hot-path-trickled-request", test_hot_path_trickled_request);
  ADD ("/gateway/hot-path-reuses-read-blocks", test_hot_path_reuses_read_blocks);
  ADD ("/gateway/hot-path-client-leaves-while-waiting", test_hot_path_client_leaves_while_waiting);
  ADD ("/gateway/hot-path-hands-off-the-rest", test_hot_path_hands_off_the_rest);
  ADD ("/gateway/libsoup-client-leaves-while-waiting", test_libsoup_client_leaves_while_waiting);
  ADD ("/gateway/forwarded-headers", test_forwarded_headers);
  ADD ("/gateway/timing-trace", test_timing_trace);
#undef ADD
  g_test_add ("/gateway/bad-upstream-url-500", Fixture, NULL, fixture_setup_bad_upstream_url,
              test_bad_upstream_url_500, fixture_teardown);
  g_test_add ("/gateway/upstream-unreachable-502", Fixture, NULL, fixture_setup_dead_upstream,
              test_upstream_unreachable_502, fixture_teardown);

  status = g_test_run ();
  g_unlink (trace_path);
  g_rmdir (trace_dir);
  return status;
}
