/* fake-upstream.c: a fake ChatGPT backend and auth.openai.com for tests.
 *
 * It answers what the captures in tests/fixtures show the real upstream
 * answered (and Codex CLI 0.169 accepted), plus the faults the gateway must
 * survive. State lives behind one mutex; the server, its streams and timers
 * live in the server thread only.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "fake-upstream"

#include "config.h"

#include "fake-upstream.h"

#include <string.h>

#include <libsoup/soup.h>

#ifndef FIXTURES_DIR
#define FIXTURES_DIR "tests/fixtures"
#endif

#define DEFAULT_GAP_MS      2
#define DEFAULT_SLOW_GAP_MS 250
#define DEFAULT_RESETS_IN   1800
#define TOKEN_LIFETIME_S    (10 * 24 * 3600)
#define CODEX_CLIENT_ID     "app_EMoamEEZ73f0CkXaXp7hrann"

static const char * const response_modes[] = {
  "ok", "ok_full", "429", "429at", "429plain", "401", "500", "failed",
  "cut", "garbage", "hang", "hold", "slow", "long", "huge_headers", "empty", "codex_extras", "failed_request", "reasoning", NULL
};
static const char * const models_modes[] = { "empty", "catalog", "404", "500", NULL };
static const char * const oauth_modes[] = { "ok", "400", "500", "hold", NULL };
static const char * const sign_in_modes[] = { "ok", "deny", "norefresh", NULL };

static const char * const fixture_names[] = {
  "responses-minimal.sse", "responses-full.sse", "models-empty.json",
  "models-catalog.json", "wham-usage.json", "accounts-check.json",
  "error-401.json", "error-429-usage-limit.json",
  "error-429-usage-limit-resets-at.json", "error-429-rate-limit-exceeded.json",
  "error-500.json", "not-found-404.json", "ws-upgrade-426.json", NULL
};

typedef struct
{
  char  *mode;
  guint  remaining;  /* 0: until changed */
} Fault;

typedef struct
{
  char       *access_token;
  char       *refresh_token;
  GHashTable *used_refresh_tokens;  /* set of char * */
  JsonObject *claims;               /* payload template for new tokens */
  guint       refresh_count;
} Account;

typedef struct
{
  FakeUpstream      *self;          /* unowned; streams die before it */
  SoupServerMessage *msg;
  GPtrArray         *events;        /* GBytes, one HTTP chunk each */
  guint              next;          /* next event to append */
  guint              written;       /* chunks on the wire */
  guint              cut_after;     /* G_MAXUINT: never */
  guint              hold_after;    /* G_MAXUINT: never; 0: hang */
  guint              gap_ms;
  gboolean           held;
  gboolean           cut_pending;
  GSource           *timer;
  gulong             wrote_chunk_id;
  gulong             finished_id;
} Stream;

struct _FakeUpstream
{
  GObject       parent_instance;

  /* Set before the thread starts, read-only afterwards. */
  GHashTable   *fixtures;           /* name -> GBytes */
  GPtrArray    *minimal_events;     /* char * */
  GPtrArray    *full_events;        /* char * */
  guint         requested_port;

  GThread      *thread;
  GMainContext *context;
  GMainLoop    *loop;
  guint         port;

  /* Server thread only. */
  SoupServer   *server;
  GList        *streams;            /* Stream * */
  GList        *held_tokens;        /* SoupServerMessage *: /oauth/token, paused */

  GMutex        mutex;
  GCond         cond;
  gboolean      started;
  GError       *start_error;
  GHashTable   *accounts;           /* id -> Account */
  Fault        *global_fault;       /* NULL: ok */
  GHashTable   *account_faults;     /* id -> Fault */
  char         *models_mode;
  char         *oauth_mode;
  guint         token_requests;  /* every POST /oauth/token */
  guint         early_status;    /* answer .../responses before its body */
  guint         early_answers;
  char         *reply_text;         /* NULL: "hello" */
  guint         long_deltas;
  guint         long_delta_bytes;  /* 0: copies of the fixture's delta */
  guint         gap_ms;
  gboolean      gap_set;
  guint         resets_in;
  GPtrArray    *requests;           /* FakeUpstreamRequest */
  guint         held_count;
  guint64       token_serial;
  /* Browser sign-in: who signs in at /oauth/authorize, and the codes it
   * gave out (code -> Grant, each good once). */
  char         *sign_in_account;    /* NULL: the authorize page refuses */
  char         *sign_in_email;
  char         *sign_in_mode;       /* "ok" or "deny" */
  GHashTable   *grants;
  guint         sign_in_count;      /* codes exchanged */
};

typedef struct
{
  char *challenge;
  char *redirect_uri;
  char *account_id;
  char *email;
} Grant;

static void
grant_free (Grant *grant)
{
  g_free (grant->challenge);
  g_free (grant->redirect_uri);
  g_free (grant->account_id);
  g_free (grant->email);
  g_free (grant);
}

G_DEFINE_FINAL_TYPE (FakeUpstream, fake_upstream, G_TYPE_OBJECT)

static void stream_free (Stream *stream);

/* Recorded requests */

FakeUpstreamRequest *
fake_upstream_request_ref (FakeUpstreamRequest *request)
{
  g_return_val_if_fail (request != NULL, NULL);

  g_atomic_ref_count_inc (&request->ref_count);
  return request;
}

void
fake_upstream_request_unref (FakeUpstreamRequest *request)
{
  g_return_if_fail (request != NULL);

  if (!g_atomic_ref_count_dec (&request->ref_count))
    return;

  g_free (request->method);
  g_free (request->path);
  g_free (request->query);
  g_strfreev (request->header_names);
  g_strfreev (request->header_values);
  g_bytes_unref (request->body);
  g_free (request);
}

const char *
fake_upstream_request_get_header (const FakeUpstreamRequest *request,
                                  const char                *name)
{
  g_return_val_if_fail (request != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);

  for (guint i = 0; request->header_names[i] != NULL; i++)
    {
      if (g_ascii_strcasecmp (request->header_names[i], name) == 0)
        return request->header_values[i];
    }
  return NULL;
}

JsonNode *
fake_upstream_request_to_json (const FakeUpstreamRequest *request)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autofree char *sha = NULL;

  g_return_val_if_fail (request != NULL, NULL);

  sha = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, request->body);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "method");
  json_builder_add_string_value (builder, request->method);
  json_builder_set_member_name (builder, "path");
  json_builder_add_string_value (builder, request->path);
  json_builder_set_member_name (builder, "query");
  if (request->query != NULL)
    json_builder_add_string_value (builder, request->query);
  else
    json_builder_add_null_value (builder);
  json_builder_set_member_name (builder, "headers");
  json_builder_begin_array (builder);
  for (guint i = 0; request->header_names[i] != NULL; i++)
    {
      json_builder_begin_array (builder);
      json_builder_add_string_value (builder, request->header_names[i]);
      json_builder_add_string_value (builder, request->header_values[i]);
      json_builder_end_array (builder);
    }
  json_builder_end_array (builder);
  json_builder_set_member_name (builder, "body_length");
  json_builder_add_int_value (builder, (gint64) g_bytes_get_size (request->body));
  json_builder_set_member_name (builder, "body_sha256");
  json_builder_add_string_value (builder, sha);
  json_builder_end_object (builder);

  return json_builder_get_root (builder);
}

static FakeUpstreamRequest *
request_new_from_message (SoupServerMessage *msg)
{
  FakeUpstreamRequest *request = g_new0 (FakeUpstreamRequest, 1);
  GUri *uri = soup_server_message_get_uri (msg);
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  SoupMessageHeadersIter iter;
  const char *name;
  const char *value;
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  g_autoptr(GPtrArray) values = g_ptr_array_new ();

  g_atomic_ref_count_init (&request->ref_count);
  request->method = g_strdup (soup_server_message_get_method (msg));
  request->path = g_strdup (g_uri_get_path (uri));
  request->query = g_strdup (g_uri_get_query (uri));
  request->received_at_us = g_get_real_time ();

  soup_message_headers_iter_init (&iter, soup_server_message_get_request_headers (msg));
  while (soup_message_headers_iter_next (&iter, &name, &value))
    {
      g_ptr_array_add (names, g_strdup (name));
      g_ptr_array_add (values, g_strdup (value));
    }
  g_ptr_array_add (names, NULL);
  g_ptr_array_add (values, NULL);
  request->header_names = (char **) g_ptr_array_free (g_steal_pointer (&names), FALSE);
  request->header_values = (char **) g_ptr_array_free (g_steal_pointer (&values), FALSE);

  if (body != NULL && body->length > 0)
    request->body = soup_message_body_flatten (body);
  else
    request->body = g_bytes_new (NULL, 0);

  return request;
}

/* Small helpers */

/* g_set_str () is GLib 2.76. */
static void
set_str (char       **ptr,
         const char  *value)
{
  char *copy;

  if (*ptr == value)
    return;
  copy = g_strdup (value);
  g_free (*ptr);
  *ptr = copy;
}

static gboolean
mode_is_valid (const char * const *modes,
               const char         *mode)
{
  return mode != NULL && g_strv_contains (modes, mode);
}

static void
fault_free (Fault *fault)
{
  if (fault == NULL)
    return;
  g_free (fault->mode);
  g_free (fault);
}

static Fault *
fault_new (const char *mode,
           guint       times)
{
  Fault *fault = g_new0 (Fault, 1);

  fault->mode = g_strdup (mode);
  fault->remaining = times;
  return fault;
}

static void
account_free (Account *account)
{
  if (account == NULL)
    return;
  g_free (account->access_token);
  g_free (account->refresh_token);
  g_clear_pointer (&account->used_refresh_tokens, g_hash_table_unref);
  g_clear_pointer (&account->claims, json_object_unref);
  g_free (account);
}

static char *
json_quote (const char *text)
{
  g_autoptr(JsonNode) node = json_node_new (JSON_NODE_VALUE);

  json_node_set_string (node, text);
  return json_to_string (node, FALSE);
}

static char *
random_hex (guint n_bytes)
{
  GString *out = g_string_sized_new (n_bytes * 2);

  for (guint i = 0; i < n_bytes; i++)
    g_string_append_printf (out, "%02x", (guint) g_random_int_range (0, 256));
  return g_string_free (out, FALSE);
}

static char *
base64url_encode (const guchar *data,
                  gsize         len)
{
  char *out = g_base64_encode (data, len);
  char *w = out;

  for (const char *r = out; *r != '\0'; r++)
    {
      if (*r == '=')
        continue;
      *w++ = *r == '+' ? '-' : *r == '/' ? '_' : *r;
    }
  *w = '\0';
  return out;
}

static JsonObject *
jwt_payload_object (const char *token)
{
  g_auto(GStrv) parts = NULL;
  g_autoptr(GString) b64 = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree guchar *decoded = NULL;
  gsize len = 0;
  JsonNode *root;

  if (token == NULL)
    return NULL;
  parts = g_strsplit (token, ".", 4);
  if (g_strv_length (parts) != 3)
    return NULL;

  b64 = g_string_new (parts[1]);
  g_string_replace (b64, "-", "+", 0);
  g_string_replace (b64, "_", "/", 0);
  while (b64->len % 4 != 0)
    g_string_append_c (b64, '=');
  decoded = g_base64_decode (b64->str, &len);
  if (decoded == NULL || len == 0)
    return NULL;
  if (!json_parser_load_from_data (parser, (const char *) decoded, (gssize) len, NULL))
    return NULL;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return NULL;
  return json_object_ref (json_node_get_object (root));
}

static JsonObject *
default_claims (const char *account_id)
{
  JsonObject *claims = json_object_new ();
  JsonObject *profile = json_object_new ();
  JsonArray *aud = json_array_new ();
  g_autofree char *sub = g_strdup_printf ("user-%s", account_id);
  g_autofree char *email = g_strdup_printf ("%s@example.com", account_id);

  json_array_add_string_element (aud, "https://api.example.invalid/v1");
  json_object_set_string_member (claims, "iss", "https://auth.example.invalid");
  json_object_set_array_member (claims, "aud", aud);
  json_object_set_string_member (claims, "sub", sub);
  json_object_set_string_member (profile, "email", email);
  json_object_set_boolean_member (profile, "email_verified", TRUE);
  json_object_set_object_member (claims, "https://api.openai.com/profile", profile);
  return claims;
}

/* The claim carrying chatgpt_account_id, created when missing. */
static JsonObject *
claims_auth_object (JsonObject *claims,
                    const char *account_id)
{
  JsonObject *auth;
  const char *sub = json_object_get_string_member_with_default (claims, "sub", "user-fake");

  if (!json_object_has_member (claims, "https://api.openai.com/auth") ||
      !JSON_NODE_HOLDS_OBJECT (json_object_get_member (claims, "https://api.openai.com/auth")))
    json_object_set_object_member (claims, "https://api.openai.com/auth", json_object_new ());
  auth = json_object_get_object_member (claims, "https://api.openai.com/auth");
  json_object_set_string_member (auth, "chatgpt_account_id", account_id);
  if (!json_object_has_member (auth, "chatgpt_plan_type"))
    json_object_set_string_member (auth, "chatgpt_plan_type", "plus");
  if (!json_object_has_member (auth, "chatgpt_user_id"))
    json_object_set_string_member (auth, "chatgpt_user_id", sub);
  if (!json_object_has_member (auth, "user_id"))
    json_object_set_string_member (auth, "user_id", sub);
  return auth;
}

static char *
jwt_encode (JsonObject *payload)
{
  static const char header[] = "{\"alg\":\"none\",\"typ\":\"JWT\"}";
  g_autoptr(JsonNode) node = json_node_new (JSON_NODE_OBJECT);
  g_autofree char *payload_json = NULL;
  g_autofree char *h = NULL;
  g_autofree char *p = NULL;

  json_node_set_object (node, payload);
  payload_json = json_to_string (node, FALSE);
  h = base64url_encode ((const guchar *) header, strlen (header));
  p = base64url_encode ((const guchar *) payload_json, strlen (payload_json));
  /* Unsigned like the fixture's tokens: the signature is "sig". */
  return g_strdup_printf ("%s.%s.c2ln", h, p);
}

static char *
make_access_token (JsonObject *claims,
                   const char *account_id,
                   gint64      now)
{
  g_autofree char *jti = random_hex (8);

  claims_auth_object (claims, account_id);
  json_object_set_int_member (claims, "iat", now);
  json_object_set_int_member (claims, "exp", now + TOKEN_LIFETIME_S);
  json_object_set_string_member (claims, "jti", jti);
  return jwt_encode (claims);
}

static char *
make_id_token (JsonObject *claims,
               const char *account_id,
               gint64      now)
{
  g_autoptr(JsonObject) id = json_object_new ();
  JsonArray *aud = json_array_new ();
  JsonObject *auth = claims_auth_object (claims, account_id);
  const char *email = NULL;
  g_autofree char *fallback_email = g_strdup_printf ("%s@example.com", account_id);

  if (json_object_has_member (claims, "https://api.openai.com/profile"))
    {
      JsonObject *profile = json_object_get_object_member (claims, "https://api.openai.com/profile");

      if (profile != NULL)
        email = json_object_get_string_member_with_default (profile, "email", NULL);
    }
  if (email == NULL)
    email = json_object_get_string_member_with_default (claims, "email", fallback_email);

  json_array_add_string_element (aud, CODEX_CLIENT_ID);
  json_object_set_string_member (id, "iss",
                                 json_object_get_string_member_with_default (claims, "iss",
                                                                             "https://auth.example.invalid"));
  json_object_set_array_member (id, "aud", aud);
  json_object_set_string_member (id, "sub",
                                 json_object_get_string_member_with_default (claims, "sub", "user-fake"));
  json_object_set_string_member (id, "email", email);
  json_object_set_boolean_member (id, "email_verified", TRUE);
  json_object_set_int_member (id, "iat", now);
  json_object_set_int_member (id, "exp", now + TOKEN_LIFETIME_S);
  json_object_set_member (id, "https://api.openai.com/auth",
                          json_node_init_object (json_node_alloc (), auth));
  return jwt_encode (id);
}

/* Fixtures */

#define LONG_STREAM_DELTAS 40000

static GPtrArray *
split_events (GBytes *sse)
{
  GPtrArray *events = g_ptr_array_new_with_free_func (g_free);
  gsize len = 0;
  const char *data = g_bytes_get_data (sse, &len);
  g_autofree char *text = g_strndup (data, len);
  const char *p = text;

  while (*p != '\0')
    {
      const char *end = strstr (p, "\n\n");

      end = end != NULL ? end + 2 : p + strlen (p);
      /* Stray blank lines belong to the event before them. */
      while (*end == '\n')
        end++;
      g_ptr_array_add (events, g_strndup (p, end - p));
      p = end;
    }
  return events;
}

static gboolean
load_fixtures (FakeUpstream  *self,
               GError       **error)
{
  const char *dir = g_getenv ("POOLER_FIXTURES_DIR");

  if (dir == NULL || *dir == '\0')
    dir = FIXTURES_DIR;

  for (guint i = 0; fixture_names[i] != NULL; i++)
    {
      g_autofree char *path = g_build_filename (dir, fixture_names[i], NULL);
      char *contents = NULL;
      gsize len = 0;

      if (!g_file_get_contents (path, &contents, &len, error))
        return FALSE;
      g_hash_table_insert (self->fixtures, g_strdup (fixture_names[i]),
                           g_bytes_new_take (contents, len));
    }

  self->minimal_events = split_events (g_hash_table_lookup (self->fixtures, "responses-minimal.sse"));
  self->full_events = split_events (g_hash_table_lookup (self->fixtures, "responses-full.sse"));
  return TRUE;
}

static GBytes *
fixture (FakeUpstream *self,
         const char   *name)
{
  GBytes *bytes = g_hash_table_lookup (self->fixtures, name);

  g_assert (bytes != NULL);
  return bytes;
}

/* Answers */

static void
add_quota_headers (SoupMessageHeaders *headers)
{
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  g_autofree char *primary_reset = g_strdup_printf ("%" G_GINT64_FORMAT, now + 3600);
  g_autofree char *secondary_reset = g_strdup_printf ("%" G_GINT64_FORMAT, now + 86400);

  soup_message_headers_append (headers, "x-codex-primary-used-percent", "12.5");
  soup_message_headers_append (headers, "x-codex-primary-window-minutes", "300");
  soup_message_headers_append (headers, "x-codex-primary-reset-after-seconds", "3600");
  soup_message_headers_append (headers, "x-codex-primary-reset-at", primary_reset);
  soup_message_headers_append (headers, "x-codex-secondary-used-percent", "3");
  soup_message_headers_append (headers, "x-codex-secondary-window-minutes", "10080");
  soup_message_headers_append (headers, "x-codex-secondary-reset-after-seconds", "86400");
  soup_message_headers_append (headers, "x-codex-secondary-reset-at", secondary_reset);
}

static void
add_request_headers (SoupMessageHeaders *headers,
                     const char         *model)
{
  g_autofree char *hex = random_hex (8);
  g_autofree char *request_id = g_strdup_printf ("req_%s", hex);

  soup_message_headers_append (headers, "x-request-id", request_id);
  soup_message_headers_append (headers, "openai-model", model);
}

/* libsoup 3.2 has no phrase for these. */
static const char *
status_phrase (guint status)
{
  switch (status)
    {
    case 426:
      return "Upgrade Required";
    case 429:
      return "Too Many Requests";
    default:
      return NULL;
    }
}

static void
answer_bytes (SoupServerMessage *msg,
              guint              status,
              const char        *content_type,
              GBytes            *body)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  gsize len = 0;
  gconstpointer data = g_bytes_get_data (body, &len);

  soup_server_message_set_status (msg, status, status_phrase (status));
  soup_message_headers_set_content_type (headers, content_type, NULL);
  soup_message_body_append (soup_server_message_get_response_body (msg),
                            SOUP_MEMORY_COPY, data, len);
}

static void
answer_fixture (FakeUpstream      *self,
                SoupServerMessage *msg,
                guint              status,
                const char        *name)
{
  answer_bytes (msg, status, "application/json", fixture (self, name));
}

static void
answer_json_node (SoupServerMessage *msg,
                  guint              status,
                  JsonNode          *node)
{
  char *text = json_to_string (node, FALSE);
  g_autoptr(GBytes) body = g_bytes_new_take (text, strlen (text));

  answer_bytes (msg, status, "application/json", body);
}

static void
answer_json_text (SoupServerMessage *msg,
                  guint              status,
                  const char        *text)
{
  g_autoptr(GBytes) body = g_bytes_new (text, strlen (text));

  answer_bytes (msg, status, "application/json", body);
}

static void
answer_ok_true (SoupServerMessage *msg)
{
  answer_json_text (msg, SOUP_STATUS_OK, "{\"ok\":true}");
}

static void
answer_not_found (FakeUpstream      *self,
                  SoupServerMessage *msg)
{
  answer_fixture (self, msg, SOUP_STATUS_NOT_FOUND, "not-found-404.json");
}

/* A fixture object with some integer members replaced. */
static JsonNode *
fixture_json (FakeUpstream *self,
              const char   *name)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  GBytes *bytes = fixture (self, name);
  gsize len = 0;
  const char *data = g_bytes_get_data (bytes, &len);

  if (!json_parser_load_from_data (parser, data, (gssize) len, NULL))
    g_error ("fixture %s is not JSON", name);
  return json_node_copy (json_parser_get_root (parser));
}

static void
answer_wham_usage (FakeUpstream      *self,
                   SoupServerMessage *msg)
{
  g_autoptr(JsonNode) root = fixture_json (self, "wham-usage.json");
  JsonObject *obj = json_node_get_object (root);
  JsonObject *rate_limit = json_object_get_object_member (obj, "rate_limit");
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  /* The capture's reset_at values are long gone; keep them in the future. */
  if (rate_limit != NULL)
    {
      JsonObject *primary = json_object_get_object_member (rate_limit, "primary_window");
      JsonObject *secondary = json_object_get_object_member (rate_limit, "secondary_window");

      if (primary != NULL)
        json_object_set_int_member (primary, "reset_at", now + 3600);
      if (secondary != NULL)
        json_object_set_int_member (secondary, "reset_at", now + 86400);
    }
  answer_json_node (msg, SOUP_STATUS_OK, root);
}

/* Streams */

static void
stream_schedule (Stream *stream,
                 guint   delay_ms);

static void
stream_set_held (Stream   *stream,
                 gboolean  held)
{
  FakeUpstream *self = stream->self;

  if (stream->held == held)
    return;
  stream->held = held;
  g_mutex_lock (&self->mutex);
  if (held)
    self->held_count++;
  else
    self->held_count--;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->mutex);
}

static void
stream_cut (Stream *stream)
{
  g_autoptr(GIOStream) iostream = NULL;

  /* Stealing ends soup's handling of the message without a last chunk;
   * closing the stream then leaves the client with a truncated body. */
  GSocket *sock = soup_server_message_get_socket (stream->msg);

  /* Shut the socket first: dropping soup's chunked body stream would
   * otherwise still write the terminating chunk. Stealing asks for the
   * addresses, which a shut socket no longer has (a g_warning), so let
   * soup cache them now. */
  soup_server_message_get_local_address (stream->msg);
  soup_server_message_get_remote_address (stream->msg);
  if (sock != NULL)
    g_socket_shutdown (sock, TRUE, TRUE, NULL);
  g_clear_signal_handler (&stream->finished_id, stream->msg);
  g_clear_signal_handler (&stream->wrote_chunk_id, stream->msg);
  iostream = soup_server_message_steal_connection (stream->msg);
  if (iostream != NULL)
    g_io_stream_close (iostream, NULL, NULL);
  stream_free (stream);
}

static gboolean
stream_step_cb (gpointer user_data)
{
  Stream *stream = user_data;
  SoupMessageBody *body = soup_server_message_get_response_body (stream->msg);

  g_clear_pointer (&stream->timer, g_source_unref);

  if (stream->cut_pending)
    {
      stream_cut (stream);
      return G_SOURCE_REMOVE;
    }

  if (stream->next < stream->events->len)
    soup_message_body_append_bytes (body, g_ptr_array_index (stream->events, stream->next++));
  else
    soup_message_body_complete (body);
  soup_server_message_unpause (stream->msg);

  return G_SOURCE_REMOVE;
}

static void
stream_schedule (Stream *stream,
                 guint   delay_ms)
{
  if (stream->timer != NULL)
    return;
  stream->timer = g_timeout_source_new (delay_ms);
  g_source_set_callback (stream->timer, stream_step_cb, stream, NULL);
  g_source_attach (stream->timer, stream->self->context);
}

static void
stream_wrote_chunk_cb (SoupServerMessage *msg,
                       Stream            *stream)
{
  stream->written++;

  if (stream->written == stream->cut_after)
    {
      stream->cut_pending = TRUE;
      stream_schedule (stream, 0);
    }
  else if (stream->written == stream->hold_after)
    stream_set_held (stream, TRUE);
  else
    stream_schedule (stream, stream->next < stream->events->len ? stream->gap_ms : 0);
}

static void
stream_finished_cb (SoupServerMessage *msg,
                    Stream            *stream)
{
  stream_free (stream);
}

static void
stream_free (Stream *stream)
{
  FakeUpstream *self = stream->self;

  self->streams = g_list_remove (self->streams, stream);
  stream_set_held (stream, FALSE);
  if (stream->timer != NULL)
    {
      g_source_destroy (stream->timer);
      g_clear_pointer (&stream->timer, g_source_unref);
    }
  g_clear_signal_handler (&stream->finished_id, stream->msg);
  g_clear_signal_handler (&stream->wrote_chunk_id, stream->msg);
  g_clear_object (&stream->msg);
  g_clear_pointer (&stream->events, g_ptr_array_unref);
  g_free (stream);
}

static void
stream_release (Stream *stream)
{
  if (!stream->held)
    return;
  stream_set_held (stream, FALSE);
  stream->hold_after = G_MAXUINT;
  stream_schedule (stream, 0);
}

/* Takes @events. The first event goes out at once unless the stream hangs. */
static void
stream_start (FakeUpstream      *self,
              SoupServerMessage *msg,
              const char        *model,
              GPtrArray         *events,
              guint              gap_ms,
              guint              cut_after,
              guint              hold_after)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  SoupMessageBody *body = soup_server_message_get_response_body (msg);
  Stream *stream = g_new0 (Stream, 1);

  stream->self = self;
  stream->msg = g_object_ref (msg);
  stream->events = events;
  stream->gap_ms = gap_ms;
  stream->cut_after = cut_after;
  stream->hold_after = hold_after;
  self->streams = g_list_prepend (self->streams, stream);

  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_message_headers_set_content_type (headers, "text/event-stream", NULL);
  soup_message_headers_replace (headers, "Cache-Control", "no-cache");
  add_quota_headers (headers);
  add_request_headers (headers, model);
  soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
  soup_message_body_set_accumulate (body, FALSE);

  stream->wrote_chunk_id = g_signal_connect (msg, "wrote-chunk",
                                             G_CALLBACK (stream_wrote_chunk_cb), stream);
  stream->finished_id = g_signal_connect (msg, "finished",
                                          G_CALLBACK (stream_finished_cb), stream);

  if (hold_after == 0)
    {
      soup_server_message_pause (msg);
      stream_set_held (stream, TRUE);
    }
  else if (events->len > 0)
    soup_message_body_append_bytes (body, g_ptr_array_index (events, stream->next++));
  else
    soup_message_body_complete (body);
}

static GPtrArray *
build_events (FakeUpstream *self,
              GPtrArray    *templates)
{
  GPtrArray *events = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_autofree char *quoted = NULL;

  g_mutex_lock (&self->mutex);
  if (self->reply_text != NULL)
    quoted = json_quote (self->reply_text);
  g_mutex_unlock (&self->mutex);

  for (guint i = 0; i < templates->len; i++)
    {
      GString *event = g_string_new (g_ptr_array_index (templates, i));
      gsize len;

      if (quoted != NULL)
        g_string_replace (event, "\"hello\"", quoted, 0);
      len = event->len;
      g_ptr_array_add (events, g_bytes_new_take (g_string_free (event, FALSE), len));
    }
  return events;
}

/* The response object of the last event (response.completed), for the
 * rare client that asks for "stream": false. */
static void
answer_nonstream (FakeUpstream      *self,
                  SoupServerMessage *msg,
                  const char        *model,
                  GPtrArray         *events)
{
  GBytes *last = g_ptr_array_index (events, events->len - 1);
  gsize len = 0;
  const char *data = g_bytes_get_data (last, &len);
  g_autofree char *text = g_strndup (data, len);
  const char *json = strstr (text, "data: ");
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *event;

  g_assert (json != NULL);
  json += strlen ("data: ");
  if (!json_parser_load_from_data (parser, json, -1, NULL))
    g_error ("fixture event is not JSON");
  event = json_node_get_object (json_parser_get_root (parser));
  answer_json_node (msg, SOUP_STATUS_OK, json_object_get_member (event, "response"));
  add_quota_headers (soup_server_message_get_response_headers (msg));
  add_request_headers (soup_server_message_get_response_headers (msg), model);
}

/* What an auth layer or a rate limiter in front of the backend does: it
 * answers from the request head alone and closes the connection without
 * reading the body (the kernel then resets it if the body keeps coming). */
static void
early_answer_got_headers (SoupServerMessage *msg,
                          FakeUpstream      *self)
{
  g_autoptr(GIOStream) iostream = NULL;
  g_autofree char *answer = NULL;
  const char *body = "{\"error\":{\"message\":\"Request entity too large\","
                     "\"type\":\"invalid_request_error\",\"code\":\"payload_too_large\"}}";
  guint status;

  g_mutex_lock (&self->mutex);
  status = self->early_status;
  if (status != 0 && g_str_has_suffix (g_uri_get_path (soup_server_message_get_uri (msg)), "/codex/responses"))
    self->early_answers++;
  else
    status = 0;
  g_mutex_unlock (&self->mutex);
  if (status == 0)
    return;

  answer = g_strdup_printf ("HTTP/1.1 %u %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                            "Connection: close\r\n\r\n%s",
                            status, soup_status_get_phrase (status), strlen (body), body);
  /* Stealing asks for the addresses: cached while the socket has them. */
  soup_server_message_get_local_address (msg);
  soup_server_message_get_remote_address (msg);
  iostream = soup_server_message_steal_connection (msg);
  if (iostream == NULL)
    return;
  g_output_stream_write_all (g_io_stream_get_output_stream (iostream), answer, strlen (answer), NULL, NULL, NULL);
  g_io_stream_close (iostream, NULL, NULL);
}

static void
on_request_started (SoupServer        *server,
                    SoupServerMessage *msg,
                    FakeUpstream      *self)
{
  g_signal_connect (msg, "got-headers", G_CALLBACK (early_answer_got_headers), self);
}

/* The last event (response.completed) of @events with "output":[]. */
static void
empty_completed_output (GPtrArray *events)
{
  GBytes *last = g_ptr_array_index (events, events->len - 1);
  g_autoptr(GString) completed = g_string_new_len (g_bytes_get_data (last, NULL), g_bytes_get_size (last));
  const char *start = strstr (completed->str, "\"output\":[{");
  const char *end = start != NULL ? strstr (start, "}],\"usage\"") : NULL;
  gsize len;

  g_assert (start != NULL && end != NULL);
  g_string_erase (completed, start - completed->str + strlen ("\"output\":["),
                  end + 1 - (start + strlen ("\"output\":[")));
  len = completed->len;
  g_ptr_array_remove_index (events, events->len - 1);
  g_ptr_array_add (events, g_bytes_new_take (g_string_free (g_steal_pointer (&completed), FALSE), len));
}

static char *
take_mode (FakeUpstream *self,
           const char   *account_id)
{
  Fault *fault = NULL;
  gboolean per_account = FALSE;
  char *mode;

  g_mutex_lock (&self->mutex);
  if (account_id != NULL)
    fault = g_hash_table_lookup (self->account_faults, account_id);
  if (fault != NULL)
    per_account = TRUE;
  else
    fault = self->global_fault;

  if (fault == NULL)
    {
      g_mutex_unlock (&self->mutex);
      return g_strdup ("ok");
    }

  mode = g_strdup (fault->mode);
  if (fault->remaining > 0 && --fault->remaining == 0)
    {
      if (per_account)
        g_hash_table_remove (self->account_faults, account_id);
      else
        g_clear_pointer (&self->global_fault, fault_free);
    }
  g_mutex_unlock (&self->mutex);
  return mode;
}

static void
handle_responses (FakeUpstream      *self,
                  SoupServerMessage *msg,
                  const char        *account_id)
{
  SoupMessageHeaders *req_headers = soup_server_message_get_request_headers (msg);
  SoupMessageBody *req_body = soup_server_message_get_request_body (msg);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *model = g_strdup ("unknown");
  g_autofree char *mode = NULL;
  gboolean streaming = TRUE;
  const char *encoding = soup_message_headers_get_one (req_headers, "Content-Encoding");
  guint long_delta_bytes;
  guint long_deltas;
  guint gap_ms;
  gboolean gap_set;
  guint resets_in;

  /* zstd bodies (built-in provider) are recorded but not decoded. */
  if (encoding == NULL && req_body->length > 0)
    {
      g_autoptr(GBytes) flat = soup_message_body_flatten (req_body);
      gsize len = 0;
      const char *data = g_bytes_get_data (flat, &len);

      if (json_parser_load_from_data (parser, data, (gssize) len, NULL) &&
          JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
        {
          JsonObject *obj = json_node_get_object (json_parser_get_root (parser));
          const char *m = json_object_get_string_member_with_default (obj, "model", NULL);

          if (m != NULL)
            set_str (&model, m);
          streaming = json_object_get_boolean_member_with_default (obj, "stream", TRUE);
        }
    }

  mode = take_mode (self, account_id);

  g_mutex_lock (&self->mutex);
  gap_ms = self->gap_ms;
  long_deltas = self->long_deltas;
  long_delta_bytes = self->long_delta_bytes;
  gap_set = self->gap_set;
  resets_in = self->resets_in;
  g_mutex_unlock (&self->mutex);

  if (g_str_equal (mode, "429"))
    {
      answer_fixture (self, msg, 429, "error-429-usage-limit.json");
      add_quota_headers (soup_server_message_get_response_headers (msg));
    }
  else if (g_str_equal (mode, "429at"))
    {
      g_autoptr(JsonNode) root = fixture_json (self, "error-429-usage-limit-resets-at.json");
      JsonObject *error = json_object_get_object_member (json_node_get_object (root), "error");
      gint64 now = g_get_real_time () / G_USEC_PER_SEC;

      json_object_set_int_member (error, "resets_in_seconds", resets_in);
      json_object_set_int_member (error, "resets_at", now + resets_in);
      answer_json_node (msg, 429, root);
      add_quota_headers (soup_server_message_get_response_headers (msg));
    }
  else if (g_str_equal (mode, "429plain"))
    answer_fixture (self, msg, 429, "error-429-rate-limit-exceeded.json");
  else if (g_str_equal (mode, "401"))
    answer_fixture (self, msg, SOUP_STATUS_UNAUTHORIZED, "error-401.json");
  else if (g_str_equal (mode, "500"))
    answer_fixture (self, msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "error-500.json");
  else if (g_str_equal (mode, "failed") || g_str_equal (mode, "failed_request"))
    {
      gboolean request = g_str_equal (mode, "failed_request");
      GPtrArray *events = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
      g_autofree char *quoted_model = json_quote (model);
      g_autofree char *hex = random_hex (12);
      char *event = g_strdup_printf ("event: response.failed\n"
                                     "data: {\"type\":\"response.failed\",\"response\":{"
                                     "\"id\":\"resp_%s\",\"object\":\"response\","
                                     "\"created_at\":%" G_GINT64_FORMAT ",\"status\":\"failed\","
                                     "\"model\":%s,\"output\":[],\"error\":{\"code\":\"%s\","
                                     "\"message\":\"%s\"}},"
                                     "\"sequence_number\":0}\n\n",
                                     hex, g_get_real_time () / G_USEC_PER_SEC, quoted_model,
                                     request ? "context_length_exceeded" : "server_error",
                                     request ? "Your input exceeds the context window of this model."
                                             : "The server had an error while processing your request.");

      g_ptr_array_add (events, g_bytes_new_take (event, strlen (event)));
      stream_start (self, msg, model, events, gap_ms, G_MAXUINT, G_MAXUINT);
    }
  else if (g_str_equal (mode, "codex_extras"))
    {
      /* What the backend adds to a stream that the Responses API has not:
       * a codex.rate_limits event, and (store is false) a
       * response.completed whose output is empty. */
      GPtrArray *events = build_events (self, self->full_events);
      static const char limits[] =
        "event: codex.rate_limits\n"
        "data: {\"type\":\"codex.rate_limits\",\"plan_type\":\"plus\",\"rate_limits\":{\"primary\":"
        "{\"used_percent\":12.0,\"window_minutes\":300,\"reset_at\":1795491357}}}\n\n";

      empty_completed_output (events);
      g_ptr_array_insert (events, 1, g_bytes_new_static (limits, sizeof limits - 1));
      stream_start (self, msg, model, events, gap_ms, G_MAXUINT, G_MAXUINT);
    }
  else if (g_str_equal (mode, "reasoning"))
    {
      /* As ok, with a reasoning item (its id new each time) done first. */
      GPtrArray *events = build_events (self, self->minimal_events);
      g_autofree char *hex = random_hex (12);
      char *item = g_strdup_printf ("event: response.output_item.done\n"
                                    "data: {\"type\":\"response.output_item.done\",\"output_index\":0,"
                                    "\"item\":{\"id\":\"rs_%s\",\"type\":\"reasoning\",\"summary\":[],"
                                    "\"encrypted_content\":\"gAAAAA-fake-%s\"},\"sequence_number\":1}\n\n",
                                    hex, hex);

      /* The backend's store:false habit: the items came as output_item.done. */
      empty_completed_output (events);
      g_ptr_array_insert (events, 1, g_bytes_new_take (item, strlen (item)));
      stream_start (self, msg, model, events, gap_ms, G_MAXUINT, G_MAXUINT);
    }
  else if (g_str_equal (mode, "empty"))
    {
      /* 200 and an event stream that ends at once, with no event. */
      GPtrArray *events = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);

      stream_start (self, msg, model, events, gap_ms, G_MAXUINT, G_MAXUINT);
    }
  else if (g_str_equal (mode, "huge_headers"))
    {
      /* More header bytes than any sane client accepts (libsoup: 100 KiB). */
      g_autofree char *big = g_malloc (256 * 1024 + 1);

      memset (big, 'x', 256 * 1024);
      big[256 * 1024] = '\0';
      soup_message_headers_append (soup_server_message_get_response_headers (msg), "x-huge", big);
      answer_fixture (self, msg, SOUP_STATUS_OK, "models-empty.json");
    }
  else if (g_str_equal (mode, "garbage"))
    {
      static const char garbage[] =
        "<html><head><title>502 Bad Gateway</title></head>"
        "<body>this is not an event stream</body></html>\r\n"
        "\x01\x02\x7f garbage {\"type\": \n\n";
      GPtrArray *events = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);

      g_ptr_array_add (events, g_bytes_new_static (garbage, sizeof garbage - 1));
      stream_start (self, msg, model, events, gap_ms, G_MAXUINT, G_MAXUINT);
    }
  else
    {
      gboolean full = g_str_equal (mode, "ok_full");
      GPtrArray *events = build_events (self, full ? self->full_events : self->minimal_events);
      guint cut_after = G_MAXUINT;
      guint hold_after = G_MAXUINT;

      if (g_str_equal (mode, "slow"))
        gap_ms = gap_set ? gap_ms : DEFAULT_SLOW_GAP_MS;
      else if (g_str_equal (mode, "long") && events->len > 2)
        {
          /* Megabytes of deltas: more than socket buffers hold, so a
           * client that stops reading makes the gateway wait on it. */
          g_autoptr(GBytes) delta = g_bytes_ref (g_ptr_array_index (events, 2));

          if (long_delta_bytes > 0)
            {
              /* Fewer, bigger deltas: the same megabytes in fewer events. */
              g_autofree char *text = g_strnfill (long_delta_bytes, 'x');

              char *event = g_strdup_printf ("event: response.output_text.delta\n"
                                             "data: {\"type\":\"response.output_text.delta\","
                                             "\"item_id\":\"msg_long\",\"output_index\":0,"
                                             "\"content_index\":0,\"delta\":\"%s\"}\n\n", text);

              g_bytes_unref (delta);
              delta = g_bytes_new_take (event, strlen (event));
            }
          for (guint i = 0; i < long_deltas; i++)
            g_ptr_array_insert (events, 2, g_bytes_ref (delta));
          gap_ms = 0;
        }
      else if (g_str_equal (mode, "cut"))
        cut_after = 2;
      else if (g_str_equal (mode, "hold"))
        hold_after = 1;
      else if (g_str_equal (mode, "hang"))
        hold_after = 0;

      if (!streaming && cut_after == G_MAXUINT && hold_after == G_MAXUINT)
        {
          answer_nonstream (self, msg, model, events);
          g_ptr_array_unref (events);
        }
      else
        stream_start (self, msg, model, events, gap_ms, cut_after, hold_after);
    }
}

static void
handle_models (FakeUpstream      *self,
               SoupServerMessage *msg)
{
  g_autofree char *mode = NULL;

  g_mutex_lock (&self->mutex);
  mode = g_strdup (self->models_mode);
  g_mutex_unlock (&self->mutex);

  if (g_str_equal (mode, "catalog"))
    answer_fixture (self, msg, SOUP_STATUS_OK, "models-catalog.json");
  else if (g_str_equal (mode, "404"))
    answer_not_found (self, msg);
  else if (g_str_equal (mode, "500"))
    answer_fixture (self, msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "error-500.json");
  else
    answer_fixture (self, msg, SOUP_STATUS_OK, "models-empty.json");
}

static void
answer_oauth_error (SoupServerMessage *msg,
                    guint              status,
                    const char        *error,
                    const char        *description)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "error");
  json_builder_add_string_value (builder, error);
  json_builder_set_member_name (builder, "error_description");
  json_builder_add_string_value (builder, description);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  answer_json_node (msg, status, root);
}

static void
answer_tokens (SoupServerMessage *msg,
               const char        *id_token,
               const char        *access,
               const char        *refresh)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "id_token");
  json_builder_add_string_value (builder, id_token);
  json_builder_set_member_name (builder, "access_token");
  json_builder_add_string_value (builder, access);
  if (refresh != NULL)
    {
      json_builder_set_member_name (builder, "refresh_token");
      json_builder_add_string_value (builder, refresh);
    }
  json_builder_set_member_name (builder, "token_type");
  json_builder_add_string_value (builder, "Bearer");
  json_builder_set_member_name (builder, "expires_in");
  json_builder_add_int_value (builder, TOKEN_LIFETIME_S);
  json_builder_set_member_name (builder, "scope");
  json_builder_add_string_value (builder, "openid profile email offline_access");
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  answer_json_node (msg, SOUP_STATUS_OK, root);
}

/* The authorization_code grant of a browser sign-in: the code is good
 * once, for the redirect URI it went to, and only with the verifier
 * whose S256 the authorize request carried. The account that signed in
 * gets a new pair (and is known to the backend from now on). */
static void
exchange_code (FakeUpstream      *self,
               SoupServerMessage *msg,
               GHashTable        *form)
{
  const char *code = g_hash_table_lookup (form, "code");
  const char *redirect_uri = g_hash_table_lookup (form, "redirect_uri");
  const char *verifier = g_hash_table_lookup (form, "code_verifier");
  g_autoptr(GChecksum) sha = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 digest[32];
  gsize digest_len = sizeof digest;
  g_autofree char *challenge = NULL;
  g_autofree char *hex = random_hex (16);
  g_autofree char *access = NULL, *id_token = NULL, *refresh = NULL;
  Grant *grant = NULL;
  Account *account;
  gboolean without_refresh;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  g_mutex_lock (&self->mutex);
  if (code != NULL)
    {
      gpointer stolen_code = NULL;

      g_hash_table_steal_extended (self->grants, code, &stolen_code, (gpointer *) &grant);
      g_free (stolen_code);
    }
  g_mutex_unlock (&self->mutex);
  if (grant == NULL)
    {
      answer_oauth_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid_grant",
                          "the authorization code is unknown or used");
      return;
    }

  if (verifier != NULL)
    {
      g_checksum_update (sha, (const guchar *) verifier, (gssize) strlen (verifier));
      g_checksum_get_digest (sha, digest, &digest_len);
      challenge = base64url_encode (digest, digest_len);
    }
  if (g_strcmp0 (g_hash_table_lookup (form, "client_id"), CODEX_CLIENT_ID) != 0 ||
      g_strcmp0 (redirect_uri, grant->redirect_uri) != 0 ||
      g_strcmp0 (challenge, grant->challenge) != 0)
    {
      answer_oauth_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid_grant",
                          "client_id, redirect_uri or code_verifier does not match the code");
      grant_free (grant);
      return;
    }

  account = g_new0 (Account, 1);
  account->claims = default_claims (grant->account_id);
  if (grant->email != NULL)
    json_object_set_string_member (json_object_get_object_member (account->claims,
                                                                  "https://api.openai.com/profile"),
                                   "email", grant->email);
  access = make_access_token (account->claims, grant->account_id, now);
  id_token = make_id_token (account->claims, grant->account_id, now);
  account->access_token = g_strdup (access);
  account->used_refresh_tokens = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  g_mutex_lock (&self->mutex);
  refresh = g_strdup_printf ("rt_fake_login_%" G_GUINT64_FORMAT "_%s", ++self->token_serial, hex);
  account->refresh_token = g_strdup (refresh);
  g_hash_table_replace (self->accounts, g_strdup (grant->account_id), account);
  self->sign_in_count++;
  without_refresh = g_str_equal (self->sign_in_mode, "norefresh");
  g_mutex_unlock (&self->mutex);

  grant_free (grant);
  answer_tokens (msg, id_token, access, without_refresh ? NULL : refresh);
}

/* The sign-in page of auth.openai.com, as the browser meets it: it checks
 * the Codex client's parameters, then sends the browser back to the
 * redirect URI with a code, or with the error a refused sign-in gives. */
static void
handle_oauth_authorize (FakeUpstream      *self,
                        SoupServerMessage *msg,
                        GHashTable        *query)
{
  const char *redirect_uri = query != NULL ? g_hash_table_lookup (query, "redirect_uri") : NULL;
  const char *state = query != NULL ? g_hash_table_lookup (query, "state") : NULL;
  const char *challenge = query != NULL ? g_hash_table_lookup (query, "code_challenge") : NULL;
  const char *scope = query != NULL ? g_hash_table_lookup (query, "scope") : NULL;
  g_autofree char *account_id = NULL, *email = NULL, *mode = NULL, *params = NULL, *location = NULL;

  if (query == NULL ||
      g_strcmp0 (g_hash_table_lookup (query, "response_type"), "code") != 0 ||
      g_strcmp0 (g_hash_table_lookup (query, "client_id"), CODEX_CLIENT_ID) != 0 ||
      g_strcmp0 (g_hash_table_lookup (query, "code_challenge_method"), "S256") != 0 ||
      challenge == NULL || strlen (challenge) != 43 ||
      state == NULL || *state == '\0' ||
      scope == NULL || strstr (scope, "offline_access") == NULL ||
      redirect_uri == NULL || !g_str_has_prefix (redirect_uri, "http://localhost:") ||
      !g_str_has_suffix (redirect_uri, "/auth/callback"))
    {
      soup_server_message_set_status (msg, SOUP_STATUS_BAD_REQUEST, NULL);
      soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC,
                                        "invalid authorize request\n", 26);
      return;
    }

  g_mutex_lock (&self->mutex);
  account_id = g_strdup (self->sign_in_account);
  email = g_strdup (self->sign_in_email);
  mode = g_strdup (self->sign_in_mode);
  g_mutex_unlock (&self->mutex);

  if (account_id == NULL || g_str_equal (mode, "deny"))
    params = soup_form_encode ("error", "access_denied",
                               "error_description", "missing_codex_entitlement",
                               "state", state, NULL);
  else
    {
      Grant *grant = g_new0 (Grant, 1);
      g_autofree char *hex = random_hex (16);
      char *code = g_strconcat ("ac_fake_", hex, NULL);

      grant->challenge = g_strdup (challenge);
      grant->redirect_uri = g_strdup (redirect_uri);
      grant->account_id = g_steal_pointer (&account_id);
      grant->email = g_steal_pointer (&email);
      params = soup_form_encode ("code", code, "scope", scope, "state", state, NULL);
      g_mutex_lock (&self->mutex);
      g_hash_table_replace (self->grants, code, grant);
      g_mutex_unlock (&self->mutex);
    }

  location = g_strconcat (redirect_uri, "?", params, NULL);
  soup_server_message_set_redirect (msg, SOUP_STATUS_FOUND, location);
}

static void
handle_oauth_token (FakeUpstream      *self,
                    SoupServerMessage *msg)
{
  SoupMessageHeaders *req_headers = soup_server_message_get_request_headers (msg);
  g_autoptr(GBytes) flat = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  const char *content_type = soup_message_headers_get_content_type (req_headers, NULL);
  g_autoptr(GHashTable) form = NULL;
  g_autofree char *grant_type = NULL;
  g_autofree char *refresh_token = NULL;
  g_autofree char *oauth_mode = NULL;
  g_autofree char *access = NULL;
  g_autofree char *id_token = NULL;
  g_autofree char *new_refresh = NULL;
  gsize len = 0;
  const char *data = g_bytes_get_data (flat, &len);
  GHashTableIter iter;
  const char *account_id = NULL;
  Account *account = NULL;
  gboolean reused = FALSE;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  if (content_type != NULL && g_str_equal (content_type, "application/x-www-form-urlencoded"))
    {
      g_autofree char *text = g_strndup (data, len);

      form = soup_form_decode (text);
      grant_type = g_strdup (g_hash_table_lookup (form, "grant_type"));
      refresh_token = g_strdup (g_hash_table_lookup (form, "refresh_token"));
    }
  else
    {
      g_autoptr(JsonParser) parser = json_parser_new ();

      if (len > 0 &&
          json_parser_load_from_data (parser, data, (gssize) len, NULL) &&
          JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
        {
          JsonObject *obj = json_node_get_object (json_parser_get_root (parser));

          grant_type = g_strdup (json_object_get_string_member_with_default (obj, "grant_type", NULL));
          refresh_token = g_strdup (json_object_get_string_member_with_default (obj, "refresh_token", NULL));
        }
    }

  g_mutex_lock (&self->mutex);
  oauth_mode = g_strdup (self->oauth_mode);
  self->token_requests++;
  g_mutex_unlock (&self->mutex);

  if (g_str_equal (oauth_mode, "500"))
    {
      answer_fixture (self, msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "error-500.json");
      return;
    }
  if (g_strcmp0 (grant_type, "authorization_code") == 0 && form != NULL)
    {
      if (g_str_equal (oauth_mode, "400"))
        answer_oauth_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid_grant", "code_invalid");
      else
        exchange_code (self, msg, form);
      return;
    }
  if (g_strcmp0 (grant_type, "refresh_token") != 0)
    {
      answer_oauth_error (msg, SOUP_STATUS_BAD_REQUEST, "unsupported_grant_type",
                          "only refresh_token and authorization_code are supported");
      return;
    }
  if (g_str_equal (oauth_mode, "400") || refresh_token == NULL)
    {
      answer_oauth_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid_grant", "refresh_token_invalid");
      return;
    }

  g_mutex_lock (&self->mutex);
  g_hash_table_iter_init (&iter, self->accounts);
  while (g_hash_table_iter_next (&iter, (gpointer *) &account_id, (gpointer *) &account))
    {
      if (g_strcmp0 (account->refresh_token, refresh_token) == 0)
        break;
      if (g_hash_table_contains (account->used_refresh_tokens, refresh_token))
        {
          reused = TRUE;
          break;
        }
      account = NULL;
    }

  if (account != NULL && !reused)
    {
      g_autofree char *hex = random_hex (16);

      access = make_access_token (account->claims, account_id, now);
      id_token = make_id_token (account->claims, account_id, now);
      new_refresh = g_strdup_printf ("rt_fake_%" G_GUINT64_FORMAT "_%s", ++self->token_serial, hex);
      g_hash_table_add (account->used_refresh_tokens, g_steal_pointer (&account->refresh_token));
      account->refresh_token = g_strdup (new_refresh);
      set_str (&account->access_token, access);
      account->refresh_count++;
    }
  g_mutex_unlock (&self->mutex);

  if (reused)
    {
      answer_oauth_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid_grant", "refresh_token_reused");
      return;
    }
  if (account == NULL)
    {
      answer_oauth_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid_grant", "refresh_token_invalid");
      return;
    }

  answer_tokens (msg, id_token, access, new_refresh);
}

/* TRUE when the request may go on; otherwise the 401 is answered. */
static gboolean
check_backend_auth (FakeUpstream      *self,
                    SoupServerMessage *msg,
                    const char        *account_id)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *authorization = soup_message_headers_get_one (headers, "Authorization");
  gboolean ok;

  g_mutex_lock (&self->mutex);
  if (g_hash_table_size (self->accounts) == 0)
    ok = TRUE;
  else
    {
      Account *account = account_id != NULL ? g_hash_table_lookup (self->accounts, account_id) : NULL;

      ok = account != NULL &&
           authorization != NULL &&
           g_str_has_prefix (authorization, "Bearer ") &&
           g_str_equal (authorization + strlen ("Bearer "), account->access_token);
    }
  g_mutex_unlock (&self->mutex);

  if (!ok)
    answer_fixture (self, msg, SOUP_STATUS_UNAUTHORIZED, "error-401.json");
  return ok;
}

/* Control endpoints */

/* Held token requests are answered as in "ok" mode. */
static void
release_tokens (FakeUpstream *self,
                gboolean      answer)
{
  GList *held = g_steal_pointer (&self->held_tokens);

  for (GList *l = held; l != NULL; l = l->next)
    {
      SoupServerMessage *msg = l->data;

      g_mutex_lock (&self->mutex);
      self->held_count--;
      g_cond_broadcast (&self->cond);
      g_mutex_unlock (&self->mutex);
      if (answer)
        {
          handle_oauth_token (self, msg);
          soup_server_message_unpause (msg);
        }
    }
  g_list_free_full (held, g_object_unref);
}

static void
release_all (FakeUpstream *self)
{
  GList *streams = g_list_copy (self->streams);

  for (GList *l = streams; l != NULL; l = l->next)
    stream_release (l->data);
  g_list_free (streams);
  release_tokens (self, TRUE);
}

static gboolean
parse_uint (const char *text,
            guint      *out)
{
  guint64 value = 0;

  if (text == NULL || !g_ascii_string_to_unsigned (text, 10, 0, G_MAXUINT, &value, NULL))
    return FALSE;
  *out = (guint) value;
  return TRUE;
}

static void
answer_ctl_error (SoupServerMessage *msg,
                  const char        *message)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "ok");
  json_builder_add_boolean_value (builder, FALSE);
  json_builder_set_member_name (builder, "error");
  json_builder_add_string_value (builder, message);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  answer_json_node (msg, SOUP_STATUS_BAD_REQUEST, root);
}

static void
handle_ctl (FakeUpstream      *self,
            SoupServerMessage *msg,
            GHashTable        *query)
{
  const char *value;
  guint times = 0;
  guint number = 0;

  if (query == NULL)
    {
      answer_ok_true (msg);
      return;
    }

  /* Validate everything first so a bad request changes nothing. */
  value = g_hash_table_lookup (query, "mode");
  if (value != NULL && !mode_is_valid (response_modes, value))
    {
      answer_ctl_error (msg, "unknown mode");
      return;
    }
  value = g_hash_table_lookup (query, "models");
  if (value != NULL && !mode_is_valid (models_modes, value))
    {
      answer_ctl_error (msg, "unknown models mode");
      return;
    }
  value = g_hash_table_lookup (query, "oauth");
  if (value != NULL && !mode_is_valid (oauth_modes, value))
    {
      answer_ctl_error (msg, "unknown oauth mode");
      return;
    }
  value = g_hash_table_lookup (query, "sign_in_mode");
  if (value != NULL && !mode_is_valid (sign_in_modes, value))
    {
      answer_ctl_error (msg, "unknown sign_in_mode");
      return;
    }
  value = g_hash_table_lookup (query, "times");
  if (value != NULL && !parse_uint (value, &times))
    {
      answer_ctl_error (msg, "times must be a number");
      return;
    }
  value = g_hash_table_lookup (query, "gap_ms");
  if (value != NULL && !parse_uint (value, &number))
    {
      answer_ctl_error (msg, "gap_ms must be a number");
      return;
    }
  value = g_hash_table_lookup (query, "resets_in");
  if (value != NULL && !parse_uint (value, &number))
    {
      answer_ctl_error (msg, "resets_in must be a number");
      return;
    }

  if (g_hash_table_contains (query, "reset"))
    fake_upstream_reset (self);
  if ((value = g_hash_table_lookup (query, "mode")) != NULL)
    fake_upstream_set_mode (self, g_hash_table_lookup (query, "account"), value, times);
  if ((value = g_hash_table_lookup (query, "models")) != NULL)
    fake_upstream_set_models_mode (self, value);
  if ((value = g_hash_table_lookup (query, "oauth")) != NULL)
    fake_upstream_set_oauth_mode (self, value);
  if ((value = g_hash_table_lookup (query, "sign_in")) != NULL)
    fake_upstream_set_sign_in (self, value, g_hash_table_lookup (query, "sign_in_email"),
                               g_hash_table_lookup (query, "sign_in_mode"));
  else if ((value = g_hash_table_lookup (query, "sign_in_mode")) != NULL)
    {
      g_mutex_lock (&self->mutex);
      set_str (&self->sign_in_mode, value);
      g_mutex_unlock (&self->mutex);
    }
  if ((value = g_hash_table_lookup (query, "text")) != NULL)
    fake_upstream_set_reply_text (self, value);
  if (parse_uint (g_hash_table_lookup (query, "gap_ms"), &number))
    fake_upstream_set_gap_ms (self, number);
  if (parse_uint (g_hash_table_lookup (query, "resets_in"), &number))
    fake_upstream_set_resets_in (self, number);
  if ((value = g_hash_table_lookup (query, "invalidate")) != NULL)
    fake_upstream_invalidate_access_token (self, value);
  if (g_hash_table_contains (query, "release"))
    release_all (self);

  answer_ok_true (msg);
}

static void
handle_ctl_accounts (FakeUpstream      *self,
                     SoupServerMessage *msg)
{
  g_autoptr(GBytes) flat = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  g_autoptr(JsonParser) parser = json_parser_new ();
  gsize len = 0;
  const char *data = g_bytes_get_data (flat, &len);
  JsonObject *obj;
  const char *id;
  const char *access;
  const char *refresh;

  if (len == 0 ||
      !json_parser_load_from_data (parser, data, (gssize) len, NULL) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      answer_ctl_error (msg, "body must be a JSON object");
      return;
    }

  obj = json_node_get_object (json_parser_get_root (parser));
  id = json_object_get_string_member_with_default (obj, "chatgpt_account_id", NULL);
  access = json_object_get_string_member_with_default (obj, "access_token", NULL);
  refresh = json_object_get_string_member_with_default (obj, "refresh_token", NULL);
  if (id == NULL || access == NULL || refresh == NULL)
    {
      answer_ctl_error (msg, "chatgpt_account_id, access_token and refresh_token are required");
      return;
    }

  fake_upstream_add_account (self, id, access, refresh);
  answer_ok_true (msg);
}

static void
handle_ctl_stats (FakeUpstream      *self,
                  SoupServerMessage *msg)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  GHashTableIter iter;
  const char *id;
  Account *account;

  g_mutex_lock (&self->mutex);
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "requests");
  json_builder_add_int_value (builder, self->requests->len);
  json_builder_set_member_name (builder, "held");
  json_builder_add_int_value (builder, self->held_count);
  json_builder_set_member_name (builder, "refreshes");
  json_builder_begin_object (builder);
  g_hash_table_iter_init (&iter, self->accounts);
  while (g_hash_table_iter_next (&iter, (gpointer *) &id, (gpointer *) &account))
    {
      json_builder_set_member_name (builder, id);
      json_builder_add_int_value (builder, account->refresh_count);
    }
  json_builder_end_object (builder);
  json_builder_end_object (builder);
  g_mutex_unlock (&self->mutex);

  root = json_builder_get_root (builder);
  answer_json_node (msg, SOUP_STATUS_OK, root);
}

static void
handle_request (SoupServer        *server,
                SoupServerMessage *msg,
                const char        *path,
                GHashTable        *query,
                gpointer           user_data)
{
  FakeUpstream *self = user_data;
  const char *method = soup_server_message_get_method (msg);
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *account_id = soup_message_headers_get_one (headers, "chatgpt-account-id");
  gboolean is_get = g_str_equal (method, "GET");
  gboolean is_post = g_str_equal (method, "POST");

  if (g_str_has_prefix (path, "/__"))
    {
      if (is_get && g_str_equal (path, "/__ctl"))
        handle_ctl (self, msg, query);
      else if (is_get && g_str_equal (path, "/__requests"))
        {
          g_autoptr(JsonNode) root = fake_upstream_dup_requests_json (self);

          answer_json_node (msg, SOUP_STATUS_OK, root);
        }
      else if (is_get && g_str_equal (path, "/__stats"))
        handle_ctl_stats (self, msg);
      else if (is_get && g_str_equal (path, "/__tokens") && query != NULL &&
               g_hash_table_lookup (query, "account") != NULL)
        {
          /* Test-only: the account's current pair, so a test can look for
           * rotated tokens where they must not be. */
          const char *account = g_hash_table_lookup (query, "account");
          g_autofree char *access = fake_upstream_dup_access_token (self, account);
          g_autofree char *refresh = fake_upstream_dup_refresh_token (self, account);
          g_autoptr(JsonBuilder) builder = json_builder_new ();
          g_autoptr(JsonNode) root = NULL;

          json_builder_begin_object (builder);
          json_builder_set_member_name (builder, "access_token");
          json_builder_add_string_value (builder, access != NULL ? access : "");
          json_builder_set_member_name (builder, "refresh_token");
          json_builder_add_string_value (builder, refresh != NULL ? refresh : "");
          json_builder_end_object (builder);
          root = json_builder_get_root (builder);
          answer_json_node (msg, SOUP_STATUS_OK, root);
        }
      else if (is_post && g_str_equal (path, "/__accounts"))
        handle_ctl_accounts (self, msg);
      else
        answer_not_found (self, msg);
      return;
    }

  g_mutex_lock (&self->mutex);
  g_ptr_array_add (self->requests, request_new_from_message (msg));
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->mutex);

  if (is_post && g_str_equal (path, "/oauth/token"))
    {
      gboolean hold;

      g_mutex_lock (&self->mutex);
      hold = g_str_equal (self->oauth_mode, "hold");
      if (hold)
        self->held_count++;
      g_cond_broadcast (&self->cond);
      g_mutex_unlock (&self->mutex);
      if (hold)
        {
          soup_server_message_pause (msg);
          self->held_tokens = g_list_append (self->held_tokens, g_object_ref (msg));
        }
      else
        handle_oauth_token (self, msg);
      return;
    }
  if (is_get && g_str_equal (path, "/oauth/authorize"))
    {
      handle_oauth_authorize (self, msg, query);
      return;
    }

  if (!g_str_has_prefix (path, "/backend-api/"))
    {
      answer_not_found (self, msg);
      return;
    }

  if (!check_backend_auth (self, msg, account_id))
    return;

  if (g_str_equal (path, "/backend-api/codex/responses"))
    {
      const char *upgrade = soup_message_headers_get_one (headers, "Upgrade");

      if (is_get && upgrade != NULL && g_ascii_strcasecmp (upgrade, "websocket") == 0)
        {
          answer_fixture (self, msg, 426, "ws-upgrade-426.json");
          soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                        "Connection", "close");
        }
      else if (is_post)
        handle_responses (self, msg, account_id);
      else
        answer_not_found (self, msg);
    }
  else if (is_get && g_str_equal (path, "/backend-api/codex/models"))
    handle_models (self, msg);
  else if (is_get && g_str_equal (path, "/backend-api/wham/usage"))
    answer_wham_usage (self, msg);
  else if (is_get && g_str_equal (path, "/backend-api/wham/accounts/check"))
    answer_fixture (self, msg, SOUP_STATUS_OK, "accounts-check.json");
  else
    answer_not_found (self, msg);
}

/* The server thread */

static gpointer
server_thread (gpointer data)
{
  FakeUpstream *self = data;
  g_autoptr(GError) error = NULL;
  GSList *uris;

  g_main_context_push_thread_default (self->context);

  self->server = soup_server_new ("server-header", "fake-upstream ", NULL);
  soup_server_add_handler (self->server, NULL, handle_request, self, NULL);
  g_signal_connect (self->server, "request-started", G_CALLBACK (on_request_started), self);

  if (soup_server_listen_local (self->server, self->requested_port,
                                SOUP_SERVER_LISTEN_IPV4_ONLY, &error))
    {
      uris = soup_server_get_uris (self->server);
      g_assert (uris != NULL);
      self->port = (guint) g_uri_get_port (uris->data);
      g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
    }

  g_mutex_lock (&self->mutex);
  self->start_error = g_steal_pointer (&error);
  self->started = TRUE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->mutex);

  if (self->port != 0)
    g_main_loop_run (self->loop);

  while (self->streams != NULL)
    stream_free (self->streams->data);
  release_tokens (self, FALSE);
  soup_server_disconnect (self->server);
  g_clear_object (&self->server);
  while (g_main_context_iteration (self->context, FALSE))
    ;

  g_main_context_pop_thread_default (self->context);
  return NULL;
}

static gboolean
quit_loop_cb (gpointer data)
{
  FakeUpstream *self = data;

  g_main_loop_quit (self->loop);
  return G_SOURCE_REMOVE;
}

static gboolean
release_cb (gpointer data)
{
  release_all (data);
  return G_SOURCE_REMOVE;
}

/* GObject */

static void
fake_upstream_dispose (GObject *object)
{
  FakeUpstream *self = FAKE_UPSTREAM (object);

  if (self->thread != NULL)
    {
      g_main_context_invoke (self->context, quit_loop_cb, self);
      g_thread_join (g_steal_pointer (&self->thread));
    }

  G_OBJECT_CLASS (fake_upstream_parent_class)->dispose (object);
}

static void
fake_upstream_finalize (GObject *object)
{
  FakeUpstream *self = FAKE_UPSTREAM (object);

  g_clear_pointer (&self->fixtures, g_hash_table_unref);
  g_clear_pointer (&self->minimal_events, g_ptr_array_unref);
  g_clear_pointer (&self->full_events, g_ptr_array_unref);
  g_clear_pointer (&self->loop, g_main_loop_unref);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_error (&self->start_error);
  g_clear_pointer (&self->accounts, g_hash_table_unref);
  g_clear_pointer (&self->global_fault, fault_free);
  g_clear_pointer (&self->account_faults, g_hash_table_unref);
  g_clear_pointer (&self->models_mode, g_free);
  g_clear_pointer (&self->oauth_mode, g_free);
  g_clear_pointer (&self->reply_text, g_free);
  g_clear_pointer (&self->requests, g_ptr_array_unref);
  g_clear_pointer (&self->sign_in_account, g_free);
  g_clear_pointer (&self->sign_in_email, g_free);
  g_clear_pointer (&self->sign_in_mode, g_free);
  g_clear_pointer (&self->grants, g_hash_table_unref);
  g_mutex_clear (&self->mutex);
  g_cond_clear (&self->cond);

  G_OBJECT_CLASS (fake_upstream_parent_class)->finalize (object);
}

static void
fake_upstream_class_init (FakeUpstreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = fake_upstream_dispose;
  object_class->finalize = fake_upstream_finalize;
}

static void
fake_upstream_init (FakeUpstream *self)
{
  g_mutex_init (&self->mutex);
  g_cond_init (&self->cond);
  self->fixtures = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                          (GDestroyNotify) g_bytes_unref);
  self->accounts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                          (GDestroyNotify) account_free);
  self->account_faults = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                (GDestroyNotify) fault_free);
  self->requests = g_ptr_array_new_with_free_func ((GDestroyNotify) fake_upstream_request_unref);
  self->models_mode = g_strdup ("empty");
  self->oauth_mode = g_strdup ("ok");
  self->sign_in_mode = g_strdup ("ok");
  self->grants = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) grant_free);
  self->gap_ms = DEFAULT_GAP_MS;
  self->long_deltas = LONG_STREAM_DELTAS;
  self->long_delta_bytes = 0;
  self->resets_in = DEFAULT_RESETS_IN;
}

/* Public API */

FakeUpstream *
fake_upstream_new_on_port (guint    port,
                           GError **error)
{
  g_autoptr(FakeUpstream) self = g_object_new (FAKE_TYPE_UPSTREAM, NULL);

  g_return_val_if_fail (port <= G_MAXUINT16, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!load_fixtures (self, error))
    return NULL;

  self->requested_port = port;
  self->context = g_main_context_new ();
  self->loop = g_main_loop_new (self->context, FALSE);
  self->thread = g_thread_new ("fake-upstream", server_thread, self);

  g_mutex_lock (&self->mutex);
  while (!self->started)
    g_cond_wait (&self->cond, &self->mutex);
  g_mutex_unlock (&self->mutex);

  if (self->start_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&self->start_error));
      return NULL;
    }

  return g_steal_pointer (&self);
}

FakeUpstream *
fake_upstream_new (GError **error)
{
  return fake_upstream_new_on_port (0, error);
}

guint
fake_upstream_get_port (FakeUpstream *self)
{
  g_return_val_if_fail (FAKE_IS_UPSTREAM (self), 0);

  return self->port;
}

char *
fake_upstream_dup_base_url (FakeUpstream *self)
{
  g_return_val_if_fail (FAKE_IS_UPSTREAM (self), NULL);

  return g_strdup_printf ("http://127.0.0.1:%u/backend-api", self->port);
}

char *
fake_upstream_dup_auth_url (FakeUpstream *self)
{
  g_return_val_if_fail (FAKE_IS_UPSTREAM (self), NULL);

  return g_strdup_printf ("http://127.0.0.1:%u", self->port);
}

void
fake_upstream_add_account (FakeUpstream *self,
                           const char   *chatgpt_account_id,
                           const char   *access_token,
                           const char   *refresh_token)
{
  Account *account;

  g_return_if_fail (FAKE_IS_UPSTREAM (self));
  g_return_if_fail (chatgpt_account_id != NULL);
  g_return_if_fail (access_token != NULL);
  g_return_if_fail (refresh_token != NULL);

  account = g_new0 (Account, 1);
  account->access_token = g_strdup (access_token);
  account->refresh_token = g_strdup (refresh_token);
  account->used_refresh_tokens = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  /* New tokens keep the claims (email, plan) of the one registered. */
  account->claims = jwt_payload_object (access_token);
  if (account->claims == NULL)
    account->claims = default_claims (chatgpt_account_id);

  g_mutex_lock (&self->mutex);
  g_hash_table_replace (self->accounts, g_strdup (chatgpt_account_id), account);
  g_mutex_unlock (&self->mutex);
}

char *
fake_upstream_dup_access_token (FakeUpstream *self,
                                const char   *chatgpt_account_id)
{
  Account *account;
  char *ret = NULL;

  g_return_val_if_fail (FAKE_IS_UPSTREAM (self), NULL);
  g_return_val_if_fail (chatgpt_account_id != NULL, NULL);

  g_mutex_lock (&self->mutex);
  account = g_hash_table_lookup (self->accounts, chatgpt_account_id);
  if (account != NULL)
    ret = g_strdup (account->access_token);
  g_mutex_unlock (&self->mutex);
  return ret;
}

char *
fake_upstream_dup_refresh_token (FakeUpstream *self,
                                 const char   *chatgpt_account_id)
{
  Account *account;
  char *ret = NULL;

  g_return_val_if_fail (FAKE_IS_UPSTREAM (self), NULL);
  g_return_val_if_fail (chatgpt_account_id != NULL, NULL);

  g_mutex_lock (&self->mutex);
  account = g_hash_table_lookup (self->accounts, chatgpt_account_id);
  if (account != NULL)
    ret = g_strdup (account->refresh_token);
  g_mutex_unlock (&self->mutex);
  return ret;
}

void
fake_upstream_invalidate_access_token (FakeUpstream *self,
                                       const char   *chatgpt_account_id)
{
  Account *account;

  g_return_if_fail (FAKE_IS_UPSTREAM (self));
  g_return_if_fail (chatgpt_account_id != NULL);

  g_mutex_lock (&self->mutex);
  account = g_hash_table_lookup (self->accounts, chatgpt_account_id);
  if (account != NULL)
    {
      g_autofree char *hex = random_hex (16);

      g_free (account->access_token);
      account->access_token = g_strdup_printf ("revoked-%s", hex);
    }
  g_mutex_unlock (&self->mutex);
}

guint
fake_upstream_get_refresh_count (FakeUpstream *self,
                                 const char   *chatgpt_account_id)
{
  Account *account;
  guint ret = 0;

  g_return_val_if_fail (FAKE_IS_UPSTREAM (self), 0);
  g_return_val_if_fail (chatgpt_account_id != NULL, 0);

  g_mutex_lock (&self->mutex);
  account = g_hash_table_lookup (self->accounts, chatgpt_account_id);
  if (account != NULL)
    ret = account->refresh_count;
  g_mutex_unlock (&self->mutex);
  return ret;
}

gboolean
fake_upstream_set_mode (FakeUpstream *self,
                        const char   *account,
                        const char   *mode,
                        guint         times)
{
  g_return_val_if_fail (FAKE_IS_UPSTREAM (self), FALSE);

  if (mode == NULL)
    mode = "ok";
  if (!mode_is_valid (response_modes, mode))
    return FALSE;

  g_mutex_lock (&self->mutex);
  if (account != NULL)
    {
      if (g_str_equal (mode, "ok") && times == 0)
        g_hash_table_remove (self->account_faults, account);
      else
        g_hash_table_replace (self->account_faults, g_strdup (account), fault_new (mode, times));
    }
  else
    {
      g_clear_pointer (&self->global_fault, fault_free);
      if (!g_str_equal (mode, "ok") || times != 0)
        self->global_fault = fault_new (mode, times);
    }
  g_mutex_unlock (&self->mutex);
  return TRUE;
}

gboolean
fake_upstream_set_models_mode (FakeUpstream *self,
                               const char   *mode)
{
  g_return_val_if_fail (FAKE_IS_UPSTREAM (self), FALSE);

  if (mode == NULL)
    mode = "empty";
  if (!mode_is_valid (models_modes, mode))
    return FALSE;

  g_mutex_lock (&self->mutex);
  set_str (&self->models_mode, mode);
  g_mutex_unlock (&self->mutex);
  return TRUE;
}

void
fake_upstream_set_reply_text (FakeUpstream *self,
                              const char   *text)
{
  g_return_if_fail (FAKE_IS_UPSTREAM (self));

  g_mutex_lock (&self->mutex);
  set_str (&self->reply_text, text);
  g_mutex_unlock (&self->mutex);
}

void
fake_upstream_set_gap_ms (FakeUpstream *self,
                          guint         gap_ms)
{
  g_return_if_fail (FAKE_IS_UPSTREAM (self));

  g_mutex_lock (&self->mutex);
  self->gap_ms = gap_ms;
  self->gap_set = TRUE;
  g_mutex_unlock (&self->mutex);
}

void
fake_upstream_set_long_deltas (FakeUpstream *self,
                               guint         deltas,
                               guint         delta_bytes)
{
  g_return_if_fail (FAKE_IS_UPSTREAM (self));

  g_mutex_lock (&self->mutex);
  self->long_deltas = deltas;
  self->long_delta_bytes = delta_bytes;
  g_mutex_unlock (&self->mutex);
}

void
fake_upstream_set_resets_in (FakeUpstream *self,
                             guint         seconds)
{
  g_return_if_fail (FAKE_IS_UPSTREAM (self));

  g_mutex_lock (&self->mutex);
  self->resets_in = seconds;
  g_mutex_unlock (&self->mutex);
}

void
fake_upstream_release (FakeUpstream *self)
{
  g_return_if_fail (FAKE_IS_UPSTREAM (self));

  /* Streams belong to the server thread; the thread outlives this call
   * because dispose joins it after running every pending source. */
  g_main_context_invoke (self->context, release_cb, self);
}

guint
fake_upstream_get_held_count (FakeUpstream *self)
{
  guint ret;

  g_return_val_if_fail (FAKE_IS_UPSTREAM (self), 0);

  g_mutex_lock (&self->mutex);
  ret = self->held_count;
  g_mutex_unlock (&self->mutex);
  return ret;
}

static gboolean
wait_until (FakeUpstream *self,
            guint        *counter,
            gboolean      is_request_count,
            guint         count,
            guint         timeout_ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  gboolean ret = TRUE;

  g_mutex_lock (&self->mutex);
  while ((is_request_count ? self->requests->len : *counter) < count)
    {
      if (!g_cond_wait_until (&self->cond, &self->mutex, end))
        {
          ret = (is_request_count ? self->requests->len : *counter) >= count;
          break;
        }
    }
  g_mutex_unlock (&self->mutex);
  return ret;
}

gboolean
fake_upstream_wait_held (FakeUpstream *self,
                         guint         count,
                         guint         timeout_ms)
{
  g_return_val_if_fail (FAKE_IS_UPSTREAM (self), FALSE);

  return wait_until (self, &self->held_count, FALSE, count, timeout_ms);
}

guint
fake_upstream_get_request_count (FakeUpstream *self)
{
  guint ret;

  g_return_val_if_fail (FAKE_IS_UPSTREAM (self), 0);

  g_mutex_lock (&self->mutex);
  ret = self->requests->len;
  g_mutex_unlock (&self->mutex);
  return ret;
}

gboolean
fake_upstream_wait_requests (FakeUpstream *self,
                             guint         count,
                             guint         timeout_ms)
{
  g_return_val_if_fail (FAKE_IS_UPSTREAM (self), FALSE);

  return wait_until (self, NULL, TRUE, count, timeout_ms);
}

GPtrArray *
fake_upstream_dup_requests (FakeUpstream *self)
{
  GPtrArray *ret;

  g_return_val_if_fail (FAKE_IS_UPSTREAM (self), NULL);

  g_mutex_lock (&self->mutex);
  ret = g_ptr_array_new_full (self->requests->len, (GDestroyNotify) fake_upstream_request_unref);
  for (guint i = 0; i < self->requests->len; i++)
    g_ptr_array_add (ret, fake_upstream_request_ref (g_ptr_array_index (self->requests, i)));
  g_mutex_unlock (&self->mutex);
  return ret;
}

JsonNode *
fake_upstream_dup_requests_json (FakeUpstream *self)
{
  g_autoptr(GPtrArray) requests = NULL;
  JsonArray *array;
  JsonNode *root;

  g_return_val_if_fail (FAKE_IS_UPSTREAM (self), NULL);

  requests = fake_upstream_dup_requests (self);
  array = json_array_sized_new (requests->len);
  for (guint i = 0; i < requests->len; i++)
    json_array_add_element (array, fake_upstream_request_to_json (g_ptr_array_index (requests, i)));
  root = json_node_new (JSON_NODE_ARRAY);
  json_node_take_array (root, array);
  return root;
}

void
fake_upstream_reset (FakeUpstream *self)
{
  GHashTableIter iter;
  Account *account;

  g_return_if_fail (FAKE_IS_UPSTREAM (self));

  g_mutex_lock (&self->mutex);
  g_clear_pointer (&self->global_fault, fault_free);
  g_hash_table_remove_all (self->account_faults);
  set_str (&self->models_mode, "empty");
  set_str (&self->oauth_mode, "ok");
  g_clear_pointer (&self->reply_text, g_free);
  self->gap_ms = DEFAULT_GAP_MS;
  self->long_deltas = LONG_STREAM_DELTAS;
  self->long_delta_bytes = 0;
  self->gap_set = FALSE;
  self->resets_in = DEFAULT_RESETS_IN;
  g_ptr_array_set_size (self->requests, 0);
  g_hash_table_iter_init (&iter, self->accounts);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &account))
    account->refresh_count = 0;
  g_mutex_unlock (&self->mutex);
}

void
fake_upstream_set_sign_in (FakeUpstream *self,
                           const char   *chatgpt_account_id,
                           const char   *email,
                           const char   *mode)
{
  g_return_if_fail (FAKE_IS_UPSTREAM (self));
  g_return_if_fail (mode == NULL || mode_is_valid (sign_in_modes, mode));

  g_mutex_lock (&self->mutex);
  set_str (&self->sign_in_account, chatgpt_account_id);
  set_str (&self->sign_in_email, email);
  set_str (&self->sign_in_mode, mode != NULL ? mode : "ok");
  g_mutex_unlock (&self->mutex);
}

guint
fake_upstream_get_sign_in_count (FakeUpstream *self)
{
  guint count;

  g_return_val_if_fail (FAKE_IS_UPSTREAM (self), 0);

  g_mutex_lock (&self->mutex);
  count = self->sign_in_count;
  g_mutex_unlock (&self->mutex);
  return count;
}

void
fake_upstream_set_oauth_mode (FakeUpstream *self,
                              const char   *mode)
{
  g_return_if_fail (FAKE_IS_UPSTREAM (self));
  g_return_if_fail (mode_is_valid (oauth_modes, mode));

  g_mutex_lock (&self->mutex);
  set_str (&self->oauth_mode, mode);
  g_mutex_unlock (&self->mutex);
}

guint
fake_upstream_get_token_request_count (FakeUpstream *self)
{
  guint count;

  g_mutex_lock (&self->mutex);
  count = self->token_requests;
  g_mutex_unlock (&self->mutex);
  return count;
}

void
fake_upstream_set_early_answer (FakeUpstream *self,
                                guint         status)
{
  g_mutex_lock (&self->mutex);
  self->early_status = status;
  g_mutex_unlock (&self->mutex);
}

guint
fake_upstream_get_early_answer_count (FakeUpstream *self)
{
  guint count;

  g_mutex_lock (&self->mutex);
  count = self->early_answers;
  g_mutex_unlock (&self->mutex);
  return count;
}
