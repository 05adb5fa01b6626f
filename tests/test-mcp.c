/* test-mcp.c: /mcp end to end in one process (a real service on a temp
 * database, the real keyring, a real gateway on a free loopback port and a
 * libsoup client), plus the pure pieces: JSON-RPC parsing and redaction.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <string.h>

#include "fake-upstream.h"
#include "test-util.h"
#include "pooler-gateway.h"
#include "pooler-json.h"
#include "pooler-jsonrpc.h"
#include "pooler-keys.h"
#include "pooler-mcp.h"
#include "pooler-redact.h"
#include "pooler-service.h"

#define EMAIL        "jordan@example.com"
#define MASKED_EMAIL "jo***@example.com"

typedef struct
{
  PoolerService *service;
  PoolerGateway *gateway;
  SoupSession   *client;
  char          *base;
  char          *pool_key;
  char          *token;          /* an operator token */
  char          *token_prefix;
  char          *access_token;
  char          *refresh_token;
  char          *account_id;
} Fixture;

static char *
insert_token (PoolerService *service,
              char         **out_prefix)
{
  g_autoptr(PoolerMcpTokenRecord) record = pooler_mcp_token_record_new ();
  g_autoptr(GError) error = NULL;
  char *token = pooler_key_generate (POOLER_KEY_KIND_MCP, &record->prefix, &record->secret_sha256, &error);

  g_assert_no_error (error);
  record->name = g_strdup ("test");
  g_assert_true (pooler_store_insert_mcp_token (pooler_service_get_store (service), record, &error));
  g_assert_no_error (error);
  if (out_prefix != NULL)
    *out_prefix = g_strdup (record->prefix);

  return token;
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(PoolerPool) pool = NULL;
  g_autoptr(PoolerAccount) account = NULL;
  g_autofree char *auth_path = NULL;
  gint64 exp = g_get_real_time () / G_USEC_PER_SEC + 10 * 86400;

  f->service = pooler_service_new (NULL, &error);
  g_assert_no_error (error);
  /* Nothing here goes upstream; make sure nothing could. */
  pooler_service_set_upstream_url (f->service, "http://127.0.0.1:9/backend-api");

  pool = pooler_service_create_pool (f->service, "main", NULL, &error);
  g_assert_no_error (error);

  f->access_token = test_make_jwt ("acct_mcp_1", EMAIL, exp);
  f->refresh_token = g_strdup_printf ("rt_mcp_%08x", g_random_int ());
  auth_path = test_write_auth_json ("mcp", "acct_mcp_1", EMAIL, f->access_token, f->refresh_token, exp);
  account = pooler_service_import_account (f->service, auth_path, "main", NULL, NULL, &error);
  g_assert_no_error (error);
  f->account_id = g_strdup (pooler_account_get_id (account));

  f->pool_key = pooler_service_create_key (f->service, "main", "laptop", NULL, &error);
  g_assert_no_error (error);
  f->token = insert_token (f->service, &f->token_prefix);

  g_assert_true (pooler_service_start (f->service, &error));
  g_assert_no_error (error);

  f->gateway = pooler_gateway_new (f->service);
  g_assert_true (pooler_gateway_listen (f->gateway, NULL, 0, &error));
  g_assert_no_error (error);
  f->base = pooler_gateway_dup_base_url (f->gateway);
  f->client = soup_session_new ();
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
  g_free (f->base);
  g_free (f->pool_key);
  g_free (f->token);
  g_free (f->token_prefix);
  g_free (f->access_token);
  g_free (f->refresh_token);
  g_free (f->account_id);

  while (g_main_context_iteration (NULL, FALSE))
    ;
}

/* ---- HTTP helpers ---------------------------------------------------------- */

typedef struct
{
  guint     status;
  GBytes   *body;
  JsonNode *json;     /* NULL for an empty body */
  SoupMessageHeaders *headers;
} Answer;

static void
answer_clear (Answer *answer)
{
  g_clear_pointer (&answer->body, g_bytes_unref);
  g_clear_pointer (&answer->json, json_node_unref);
  g_clear_pointer (&answer->headers, soup_message_headers_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Answer, answer_clear)

static void
send_raw (Fixture    *f,
          const char *method,
          const char *token,
          const char *content_type,
          const char *body,
          const char *extra_header,
          const char *extra_value,
          Answer     *answer)
{
  g_autoptr(SoupMessage) msg = test_new_message (f->base, method, "/mcp", token);
  SoupMessageHeaders *headers = soup_message_get_request_headers (msg);
  gsize size = 0;

  soup_message_headers_replace (headers, "Accept", "application/json, text/event-stream");
  if (extra_header != NULL)
    soup_message_headers_replace (headers, extra_header, extra_value);
  if (body != NULL)
    {
      g_autoptr(GBytes) bytes = g_bytes_new (body, strlen (body));

      soup_message_set_request_body_from_bytes (msg, content_type, bytes);
    }

  answer->body = test_send_and_read (f->client, msg);
  answer->status = soup_message_get_status (msg);
  answer->headers = soup_message_headers_ref (soup_message_get_response_headers (msg));
  g_bytes_get_data (answer->body, &size);
  if (size > 0)
    {
      g_autoptr(GError) error = NULL;

      answer->json = pooler_json_parse (g_bytes_get_data (answer->body, NULL), size, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (soup_message_headers_get_content_type (answer->headers, NULL), ==, "application/json");
    }
}

static void
post (Fixture    *f,
      const char *body,
      Answer     *answer)
{
  send_raw (f, "POST", f->token, "application/json", body, NULL, NULL, answer);
}

static JsonObject *
answer_object (Answer *answer)
{
  g_assert_nonnull (answer->json);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (answer->json));
  return json_node_get_object (answer->json);
}

static gint64
error_code (Answer *answer)
{
  JsonObject *object = answer_object (answer);

  g_assert_true (json_object_has_member (object, "error"));
  g_assert_cmpstr (json_object_get_string_member (object, "jsonrpc"), ==, "2.0");
  return json_object_get_int_member (json_object_get_object_member (object, "error"), "code");
}

static const char *
error_message (Answer *answer)
{
  return json_object_get_string_member (json_object_get_object_member (answer_object (answer), "error"),
                                        "message");
}

static JsonObject *
result_of (Answer *answer)
{
  JsonObject *object = answer_object (answer);

  g_assert_cmpuint (answer->status, ==, 200);
  if (json_object_has_member (object, "error"))
    g_error ("unexpected error: %s", error_message (answer));
  return json_object_get_object_member (object, "result");
}

static char *
tool_call_body (const char *name,
                const char *arguments)
{
  return g_strdup_printf ("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\","
                          "\"params\":{\"name\":\"%s\",\"arguments\":%s}}",
                          name, arguments != NULL ? arguments : "{}");
}

/* ---- a tiny JSON Schema validator ------------------------------------------ */

static const char *
node_type (JsonNode *node)
{
  switch (JSON_NODE_TYPE (node))
    {
    case JSON_NODE_OBJECT:
      return "object";
    case JSON_NODE_ARRAY:
      return "array";
    case JSON_NODE_NULL:
      return "null";
    case JSON_NODE_VALUE:
    default:
      break;
    }

  switch (json_node_get_value_type (node))
    {
    case G_TYPE_STRING:
      return "string";
    case G_TYPE_BOOLEAN:
      return "boolean";
    case G_TYPE_INT64:
      return "integer";
    default:
      return "number";
    }
}

static gboolean
type_matches (const char *wanted,
              const char *got)
{
  return g_strcmp0 (wanted, got) == 0 ||
         (g_strcmp0 (wanted, "number") == 0 && g_strcmp0 (got, "integer") == 0);
}

/* type (a name or a list), properties, required, items, enum and
 * additionalProperties false: what our output schemas use. */
static gboolean
validate (JsonObject *schema,
          JsonNode   *value,
          const char *path,
          GString    *why)
{
  const char *type = node_type (value);

  if (json_object_has_member (schema, "type"))
    {
      JsonNode *wanted = json_object_get_member (schema, "type");
      gboolean ok = FALSE;

      if (JSON_NODE_HOLDS_ARRAY (wanted))
        {
          JsonArray *types = json_node_get_array (wanted);

          for (guint i = 0; i < json_array_get_length (types); i++)
            ok = ok || type_matches (json_array_get_string_element (types, i), type);
        }
      else
        ok = type_matches (json_node_get_string (wanted), type);

      if (!ok)
        {
          g_string_append_printf (why, "%s: a %s where the schema wants another type\n", path, type);
          return FALSE;
        }
    }

  if (json_object_has_member (schema, "enum") && strcmp (type, "string") == 0)
    {
      JsonArray *choices = json_object_get_array_member (schema, "enum");
      gboolean found = FALSE;

      for (guint i = 0; i < json_array_get_length (choices); i++)
        found = found || g_strcmp0 (json_array_get_string_element (choices, i), json_node_get_string (value)) == 0;
      if (!found)
        {
          g_string_append_printf (why, "%s: “%s” is not in the enum\n", path, json_node_get_string (value));
          return FALSE;
        }
    }

  if (strcmp (type, "object") == 0)
    {
      JsonObject *object = json_node_get_object (value);
      JsonObject *properties = json_object_has_member (schema, "properties")
                               ? json_object_get_object_member (schema, "properties") : NULL;
      gboolean closed = json_object_has_member (schema, "additionalProperties") &&
                        !json_object_get_boolean_member (schema, "additionalProperties");
      g_autoptr(GList) members = json_object_get_members (object);

      if (json_object_has_member (schema, "required"))
        {
          JsonArray *required = json_object_get_array_member (schema, "required");

          for (guint i = 0; i < json_array_get_length (required); i++)
            if (!json_object_has_member (object, json_array_get_string_element (required, i)))
              {
                g_string_append_printf (why, "%s: “%s” is missing\n", path,
                                        json_array_get_string_element (required, i));
                return FALSE;
              }
        }

      for (GList *l = members; l != NULL; l = l->next)
        {
          g_autofree char *child = g_strconcat (path, ".", l->data, NULL);

          if (properties != NULL && json_object_has_member (properties, l->data))
            {
              if (!validate (json_object_get_object_member (properties, l->data),
                             json_object_get_member (object, l->data), child, why))
                return FALSE;
            }
          else if (closed)
            {
              g_string_append_printf (why, "%s: not in the schema\n", child);
              return FALSE;
            }
        }
    }

  if (strcmp (type, "array") == 0 && json_object_has_member (schema, "items"))
    {
      JsonArray *array = json_node_get_array (value);

      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          g_autofree char *child = g_strdup_printf ("%s[%u]", path, i);

          if (!validate (json_object_get_object_member (schema, "items"),
                         json_array_get_element (array, i), child, why))
            return FALSE;
        }
    }

  return TRUE;
}

static void
test_validator_itself (void)
{
  const char *schema_text = "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"a\"],"
                            "\"properties\":{\"a\":{\"type\":[\"integer\",\"null\"]},"
                            "\"b\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"enum\":[\"x\"]}}}}";
  g_autoptr(JsonNode) schema = pooler_json_parse (schema_text, strlen (schema_text), NULL);
  const char *good[] = { "{\"a\":1}", "{\"a\":null,\"b\":[\"x\"]}" };
  const char *bad[] = { "{}", "{\"a\":\"1\"}", "{\"a\":1,\"c\":2}", "{\"a\":1,\"b\":[\"y\"]}", "[]" };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr(JsonNode) value = pooler_json_parse (good[i], strlen (good[i]), NULL);
      g_autoptr(GString) why = g_string_new (NULL);

      g_assert_true (validate (json_node_get_object (schema), value, "$", why));
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(JsonNode) value = pooler_json_parse (bad[i], strlen (bad[i]), NULL);
      g_autoptr(GString) why = g_string_new (NULL);

      g_assert_false (validate (json_node_get_object (schema), value, "$", why));
    }
}

/* ---- pure pieces ----------------------------------------------------------- */

static void
test_redact (void)
{
  struct { const char *in; const char *out; } emails[] = {
    { "jordan@example.com", "jo***@example.com" },
    { "a@b.example", "a***@b.example" },
    { "no-at-sign", "***" },
    { "@example.com", "***" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (emails); i++)
    {
      g_autofree char *masked = pooler_redact_email (emails[i].in);

      g_assert_cmpstr (masked, ==, emails[i].out);
    }
  g_assert_null (pooler_redact_email (NULL));

  {
    g_autofree char *text = pooler_redact_text ("imported jordan@example.com, then kim.lee+x@corp.example.org.");
    g_autofree char *plain = pooler_redact_text ("no address @ all");

    g_assert_cmpstr (text, ==, "imported jo***@example.com, then ki***@corp.example.org.");
    g_assert_cmpstr (plain, ==, "no address @ all");
  }
}

static PoolerJsonRpcMessage *
parse_text (const char  *text,
            JsonNode   **out_id,
            GError     **error)
{
  return pooler_jsonrpc_parse (text, strlen (text), out_id, error);
}

static void
test_jsonrpc_parse (void)
{
  struct { const char *body; int code; } bad[] = {
    { "{", POOLER_JSONRPC_PARSE_ERROR },
    { "", POOLER_JSONRPC_PARSE_ERROR },
    { "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", POOLER_JSONRPC_INVALID_REQUEST },
    { "[]", POOLER_JSONRPC_INVALID_REQUEST },
    { "\"ping\"", POOLER_JSONRPC_INVALID_REQUEST },
    { "{\"id\":1,\"method\":\"ping\"}", POOLER_JSONRPC_INVALID_REQUEST },
    { "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}", POOLER_JSONRPC_INVALID_REQUEST },
    { "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", POOLER_JSONRPC_INVALID_REQUEST },
    { "{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}", POOLER_JSONRPC_INVALID_REQUEST },
    { "{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"ping\"}", POOLER_JSONRPC_INVALID_REQUEST },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}", POOLER_JSONRPC_INVALID_REQUEST },
    { "{\"jsonrpc\":\"2.0\",\"id\":1}", POOLER_JSONRPC_INVALID_REQUEST },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":\"x\"}", POOLER_JSONRPC_INVALID_REQUEST },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":[1]}", POOLER_JSONRPC_INVALID_PARAMS },
    /* Wrong types where a string belongs: an error, not a critical. */
    { "{\"jsonrpc\":{},\"id\":1,\"method\":\"ping\"}", POOLER_JSONRPC_INVALID_REQUEST },
    { "{\"jsonrpc\":[\"2.0\"],\"id\":1,\"method\":\"ping\"}", POOLER_JSONRPC_INVALID_REQUEST },
    /* An id json-glib would wrap around, and a comment json-glib allows. */
    { "{\"jsonrpc\":\"2.0\",\"id\":9223372036854775808,\"method\":\"ping\"}", POOLER_JSONRPC_PARSE_ERROR },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"} /* x */", POOLER_JSONRPC_PARSE_ERROR },
  };
  g_autoptr(GString) deep = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) id = NULL;
  g_autoptr(PoolerJsonRpcMessage) message = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) local_error = NULL;
      g_autoptr(JsonNode) bad_id = NULL;
      g_autoptr(PoolerJsonRpcMessage) parsed = pooler_jsonrpc_parse (bad[i].body, strlen (bad[i].body),
                                                                     &bad_id, &local_error);

      g_test_message ("%s", bad[i].body);
      g_assert_null (parsed);
      g_assert_error (local_error, POOLER_JSONRPC_ERROR, bad[i].code);
    }

  /* Deep nesting is refused before json-glib sees it. */
  for (guint i = 0; i < 100000; i++)
    g_string_append_c (deep, '[');
  message = pooler_jsonrpc_parse (deep->str, deep->len, NULL, &error);
  g_assert_null (message);
  g_assert_error (error, POOLER_JSONRPC_ERROR, POOLER_JSONRPC_PARSE_ERROR);
  g_clear_error (&error);

  /* Ids keep their type, big integers included. */
  message = parse_text ("{\"jsonrpc\":\"2.0\",\"id\":9007199254740993,\"method\":\"ping\"}", &id, &error);
  g_assert_no_error (error);
  g_assert_cmpint (message->kind, ==, POOLER_JSONRPC_REQUEST);
  g_assert_cmpint (json_node_get_int (message->id), ==, G_GINT64_CONSTANT (9007199254740993));
  {
    g_autoptr(JsonObject) empty = json_object_new ();
    g_autoptr(GBytes) answer = pooler_jsonrpc_build_result (message->id,
                                                            json_node_init_object (json_node_alloc (), empty));

    g_assert_nonnull (strstr (g_bytes_get_data (answer, NULL), "\"id\":9007199254740993"));
  }
  g_clear_pointer (&message, pooler_jsonrpc_message_free);

  message = parse_text ("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (message->kind, ==, POOLER_JSONRPC_NOTIFICATION);
  g_clear_pointer (&message, pooler_jsonrpc_message_free);

  message = parse_text ("{\"jsonrpc\":\"2.0\",\"id\":\"s\",\"result\":{}}", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (message->kind, ==, POOLER_JSONRPC_RESPONSE);
}

/* ---- the endpoint ---------------------------------------------------------- */

static void
test_errors (Fixture       *f,
             gconstpointer  data)
{
  struct { const char *body; guint status; int code; const char *names; } cases[] = {
    { "{\"jsonrpc\":\"2.0\",", 400, -32700, NULL },
    { "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", 400, -32600, "batch" },
    { "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", 400, -32600, NULL },
    { "{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"prompts/list\"}", 200, -32601, NULL },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{}}", 200, -32602, "name" },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"nope\"}}", 200, -32602, "nope" },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":\"pooler://nope\"}}", 200, -32002, NULL },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{}}", 200, -32602, "protocolVersion" },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":{}}}",
      200, -32602, "protocolVersion" },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":{}}}", 200, -32602, "name" },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":[1]}}", 200, -32602, "uri" },
  };

  /* Arguments a tool refuses (or a lookup it fails) come back as a tool
   * result with isError, which the model reads (SEP-1303). */
  struct { const char *name; const char *arguments; const char *names; } refused[] = {
    { "get_pool", "{}", "pool" },
    { "get_pool", "{\"pool\":\"zz\"}", "pool" },
    { "list_requests", "{\"limit\":0}", "limit" },
    { "list_requests", "{\"limit\":\"5\"}", "limit" },
    { "list_requests", "{\"since\":\"yesterday\"}", "since" },
    { "list_requests", "{\"cursor\":\"bm9wZQ\"}", "cursor" },
    { "list_pools", "{\"x\":1}", "x" },
    { "list_accounts", "{\"status\":\"gone\"}", "status" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_auto(Answer) answer = { 0 };
      g_autofree char *body = tool_call_body (refused[i].name, refused[i].arguments);
      JsonObject *result;
      const char *text;

      g_test_message ("%s", body);
      post (f, body, &answer);
      result = result_of (&answer);
      g_assert_true (json_object_get_boolean_member (result, "isError"));
      g_assert_false (json_object_has_member (result, "structuredContent"));
      text = json_object_get_string_member (json_array_get_object_element (
        json_object_get_array_member (result, "content"), 0), "text");
      g_assert_nonnull (strstr (text, refused[i].names));
      g_assert_false (g_str_has_prefix (text, "Invalid params"));
    }

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_auto(Answer) answer = { 0 };

      g_test_message ("%s", cases[i].body);
      post (f, cases[i].body, &answer);
      g_assert_cmpuint (answer.status, ==, cases[i].status);
      g_assert_cmpint (error_code (&answer), ==, cases[i].code);
      if (cases[i].names != NULL)
        g_assert_nonnull (strstr (error_message (&answer), cases[i].names));
      /* Never an echo of the body. */
      g_assert_null (strstr (error_message (&answer), "jsonrpc"));
    }

  {
    g_auto(Answer) answer = { 0 };

    post (f, "{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"nope\"}", &answer);
    g_assert_cmpstr (json_object_get_string_member (answer_object (&answer), "id"), ==, "abc");
  }

  /* A long name is cut between characters, never inside one. */
  {
    g_auto(Answer) answer = { 0 };
    g_autoptr(GString) body = g_string_new ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"");
    const char *message;

    for (guint i = 0; i < 100; i++)
      g_string_append (body, "\xe2\x82\xac");   /* the euro sign: 3 bytes */
    g_string_append (body, "\"}");
    post (f, body->str, &answer);
    message = error_message (&answer);
    g_assert_true (g_utf8_validate (message, -1, NULL));
    g_assert_cmpuint (g_utf8_strlen (strstr (message, "\xe2\x82\xac"), -1), ==, POOLER_JSONRPC_EXCERPT_CHARS);
  }
}

static void
test_http (Fixture       *f,
           gconstpointer  data)
{
  g_auto(Answer) get = { 0 };
  g_auto(Answer) del = { 0 };
  g_auto(Answer) text = { 0 };
  g_auto(Answer) version = { 0 };
  g_auto(Answer) old_version = { 0 };
  g_auto(Answer) accept = { 0 };
  g_auto(Answer) notification = { 0 };
  g_auto(Answer) response = { 0 };
  g_auto(Answer) ping = { 0 };
  const char *ping_body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";

  send_raw (f, "GET", f->token, NULL, NULL, NULL, NULL, &get);
  g_assert_cmpuint (get.status, ==, 405);
  g_assert_cmpstr (soup_message_headers_get_one (get.headers, "Allow"), ==, "POST");
  g_assert_nonnull (get.json);

  send_raw (f, "DELETE", f->token, NULL, NULL, NULL, NULL, &del);
  g_assert_cmpuint (del.status, ==, 405);

  send_raw (f, "POST", f->token, "text/plain", ping_body, NULL, NULL, &text);
  g_assert_cmpuint (text.status, ==, 415);
  g_assert_nonnull (text.json);

  send_raw (f, "POST", f->token, "application/json", ping_body, "MCP-Protocol-Version", "1999-01-01", &version);
  g_assert_cmpuint (version.status, ==, 400);
  send_raw (f, "POST", f->token, "application/json", ping_body, "MCP-Protocol-Version", "2025-03-26", &old_version);
  g_assert_cmpuint (old_version.status, ==, 200);
  send_raw (f, "POST", f->token, "application/json", ping_body, "Accept", "text/html", &accept);
  g_assert_cmpuint (accept.status, ==, 406);

  send_raw (f, "POST", f->token, "application/json",
            "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}",
            "MCP-Protocol-Version", "2025-11-25", &notification);
  g_assert_cmpuint (notification.status, ==, 202);
  g_assert_null (notification.json);
  post (f, "{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{}}", &response);
  g_assert_cmpuint (response.status, ==, 202);
  g_assert_null (response.json);

  post (f, ping_body, &ping);
  g_assert_cmpuint (json_object_get_size (result_of (&ping)), ==, 0);
  g_assert_cmpint (json_object_get_int_member (answer_object (&ping), "id"), ==, 1);
}

static void
test_initialize (Fixture       *f,
                 gconstpointer  data)
{
  struct { const char *asked; const char *answered; } cases[] = {
    { "2025-06-18", "2025-06-18" },
    { "2025-11-25", "2025-11-25" },
    { "2025-03-26", "2025-11-25" },
    { "2099-01-01", "2025-11-25" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_auto(Answer) answer = { 0 };
      g_autofree char *body = g_strdup_printf ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\","
                                               "\"params\":{\"protocolVersion\":\"%s\",\"capabilities\":{},"
                                               "\"clientInfo\":{\"name\":\"t\",\"version\":\"0\"}}}",
                                               cases[i].asked);
      JsonObject *result;

      post (f, body, &answer);
      result = result_of (&answer);
      g_assert_cmpstr (json_object_get_string_member (result, "protocolVersion"), ==, cases[i].answered);
      g_assert_true (json_object_has_member (json_object_get_object_member (result, "capabilities"), "tools"));
      g_assert_true (json_object_has_member (json_object_get_object_member (result, "capabilities"), "resources"));
      g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (result, "serverInfo"), "name"),
                       ==, "codex-pooler");
      /* Stateless. */
      g_assert_null (soup_message_headers_get_one (answer.headers, "Mcp-Session-Id"));
    }
}

static void
test_auth (Fixture       *f,
           gconstpointer  data)
{
  const char *ping_body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";
  g_autofree char *wrong_secret = g_strdup (f->token);
  g_autofree char *late = NULL;
  g_autofree char *late_prefix = NULL;
  g_autoptr(GError) error = NULL;
  const char *refused[4];

  /* Same prefix, another secret. */
  wrong_secret[strlen (wrong_secret) - 1] = wrong_secret[strlen (wrong_secret) - 1] == 'A' ? 'B' : 'A';
  refused[0] = NULL;
  refused[1] = f->pool_key;
  refused[2] = "mcp-cxp-garbage";
  refused[3] = wrong_secret;

  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_auto(Answer) answer = { 0 };
      JsonObject *object;

      send_raw (f, "POST", refused[i], "application/json", ping_body, NULL, NULL, &answer);
      g_assert_cmpuint (answer.status, ==, 401);
      g_assert_true (g_str_has_prefix (soup_message_headers_get_one (answer.headers, "WWW-Authenticate"), "Bearer"));
      /* An OpenAI-shape error, not JSON-RPC. */
      object = answer_object (&answer);
      g_assert_false (json_object_has_member (object, "jsonrpc"));
      g_assert_true (json_object_has_member (object, "error"));
    }

  {
    g_auto(Answer) good = { 0 };

    post (f, ping_body, &good);
    g_assert_cmpuint (good.status, ==, 200);
  }

  /* A token created while serving (by the CLI, say) works at once. */
  late = insert_token (f->service, &late_prefix);
  {
    g_auto(Answer) answer = { 0 };

    send_raw (f, "POST", late, "application/json", ping_body, NULL, NULL, &answer);
    g_assert_cmpuint (answer.status, ==, 200);
  }

  /* Revoked: refused once the registry notices (it polls every 2 s). */
  g_assert_true (pooler_store_revoke_mcp_token (pooler_service_get_store (f->service), late_prefix, &error));
  g_assert_no_error (error);
  pooler_service_reload (f->service);
  {
    g_auto(Answer) answer = { 0 };

    send_raw (f, "POST", late, "application/json", ping_body, NULL, NULL, &answer);
    g_assert_cmpuint (answer.status, ==, 401);
    g_assert_nonnull (strstr (json_object_get_string_member (json_object_get_object_member (answer_object (&answer),
                                                                                           "error"), "message"),
                              "revoked"));
  }

  /* Refused before the body is read and kept: over /mcp's own limit
   * (1 MiB, not the gateway's 32) from Content-Length alone, and without
   * a token whatever the size. */
  {
    g_autofree char *big = g_strnfill (POOLER_MCP_MAX_BODY + 1, ' ');
    g_autofree char *half = g_strnfill (POOLER_MCP_MAX_BODY / 2, ' ');
    g_auto(Answer) anonymous_big = { 0 };
    g_auto(Answer) anonymous = { 0 };
    g_auto(Answer) signed_big = { 0 };

    send_raw (f, "POST", NULL, "application/json", big, NULL, NULL, &anonymous_big);
    g_assert_cmpuint (anonymous_big.status, ==, 413);
    send_raw (f, "POST", f->token, "application/json", big, NULL, NULL, &signed_big);
    g_assert_cmpuint (signed_big.status, ==, 413);
    send_raw (f, "POST", "mcp-cxp-garbage", "application/json", half, NULL, NULL, &anonymous);
    g_assert_cmpuint (anonymous.status, ==, 401);
    g_assert_true (g_str_has_prefix (soup_message_headers_get_one (anonymous.headers, "WWW-Authenticate"), "Bearer"));
  }

  /* A foreign Origin never reaches the token check. */
  {
    g_auto(Answer) answer = { 0 };

    send_raw (f, "POST", f->token, "application/json", ping_body, "Origin", "http://evil.example.com", &answer);
    g_assert_cmpuint (answer.status, ==, 403);
  }

  /* The use was recorded (through the writer). */
  pooler_service_flush (f->service);
  {
    g_autoptr(PoolerMcpTokenRecord) record = pooler_store_find_mcp_token (pooler_service_get_store (f->service),
                                                                          f->token_prefix, &error);

    g_assert_no_error (error);
    g_assert_cmpint (record->last_used_at, >, 0);
  }
}

static void
add_requests (Fixture *f,
              guint    count)
{
  gint64 base = g_get_real_time () / 1000 - 60000;

  for (guint i = 0; i < count; i++)
    {
      g_autoptr(PoolerRequestRecord) record = pooler_request_record_new ();
      PoolerAttemptRecord *attempt;

      /* Pairs share a start time, so the cursor's tie-break matters. */
      record->started_at_ms = base + (i / 2) * 1000;
      record->state = POOLER_REQUEST_COMPLETED;
      record->pool_slug = g_strdup ("main");
      record->key_prefix = g_strndup (f->pool_key, 19);
      record->account_id = g_strdup (f->account_id);
      record->model = g_strdup ("gpt-5.5");
      record->endpoint = g_strdup ("/backend-api/codex/responses");
      record->transport = g_strdup ("sse");
      record->status = i % 3 == 0 ? 429 : 200;
      record->input_tokens = 10;
      attempt = pooler_request_record_add_attempt (record, f->account_id);
      attempt->upstream_status = record->status;
      attempt->started_at_ms = record->started_at_ms;
      pooler_service_record_request (f->service, record);
    }

  pooler_service_flush (f->service);
}

static JsonObject *
call_tool (Fixture    *f,
           const char *name,
           const char *arguments,
           Answer     *answer)
{
  g_autofree char *body = tool_call_body (name, arguments);
  JsonObject *result;
  JsonArray *content;

  post (f, body, answer);
  result = result_of (answer);
  g_assert_false (json_object_get_boolean_member (result, "isError"));
  content = json_object_get_array_member (result, "content");
  g_assert_cmpuint (json_array_get_length (content), ==, 1);
  {
    JsonObject *item = json_array_get_object_element (content, 0);
    const char *text = json_object_get_string_member (item, "text");
    g_autoptr(JsonNode) reparsed = pooler_json_parse (text, strlen (text), NULL);
    g_autofree char *a = pooler_jsonrpc_to_string (reparsed, NULL);
    g_autofree char *b = pooler_jsonrpc_to_string (json_object_get_member (result, "structuredContent"), NULL);

    g_assert_cmpstr (json_object_get_string_member (item, "type"), ==, "text");
    g_assert_cmpstr (a, ==, b);
  }

  return json_object_get_object_member (result, "structuredContent");
}

static void
test_tools (Fixture       *f,
            gconstpointer  data)
{
  g_auto(Answer) list = { 0 };
  g_auto(Answer) resources = { 0 };
  g_autoptr(GString) everything = g_string_new (NULL);
  g_autoptr(GRegex) name_re = g_regex_new ("^[A-Za-z0-9_.-]{1,64}$", 0, 0, NULL);
  JsonArray *tools;
  g_autofree char *first_request = NULL;

  add_requests (f, 4);

  post (f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}", &list);
  tools = json_object_get_array_member (result_of (&list), "tools");
  g_assert_cmpuint (json_array_get_length (tools), ==, 10);

  {
    g_auto(Answer) requests = { 0 };
    JsonObject *content = call_tool (f, "list_requests", "{\"limit\":1}", &requests);

    first_request = g_strdup (json_object_get_string_member (
      json_array_get_object_element (json_object_get_array_member (content, "requests"), 0), "id"));
  }

  for (guint i = 0; i < json_array_get_length (tools); i++)
    {
      JsonObject *tool = json_array_get_object_element (tools, i);
      const char *name = json_object_get_string_member (tool, "name");
      JsonObject *input = json_object_get_object_member (tool, "inputSchema");
      JsonObject *output = json_object_get_object_member (tool, "outputSchema");
      JsonObject *annotations = json_object_get_object_member (tool, "annotations");
      g_auto(Answer) answer = { 0 };
      g_autoptr(GString) why = g_string_new (NULL);
      g_autofree char *arguments = NULL;
      JsonObject *content;

      g_test_message ("tool %s", name);
      g_assert_true (g_regex_match (name_re, name, 0, NULL));
      g_assert_nonnull (json_object_get_string_member (tool, "title"));
      g_assert_nonnull (json_object_get_string_member (tool, "description"));
      g_assert_cmpstr (json_object_get_string_member (input, "type"), ==, "object");
      g_assert_false (json_object_get_boolean_member (input, "additionalProperties"));
      g_assert_cmpstr (json_object_get_string_member (output, "type"), ==, "object");
      g_assert_true (json_object_get_boolean_member (annotations, "readOnlyHint"));
      g_assert_true (json_object_get_boolean_member (annotations, "idempotentHint"));
      g_assert_false (json_object_get_boolean_member (annotations, "openWorldHint"));

      if (g_str_equal (name, "get_pool") || g_str_equal (name, "explain_routing"))
        arguments = g_strdup ("{\"pool\":\"main\"}");
      else if (g_str_equal (name, "get_account"))
        arguments = g_strdup_printf ("{\"account\":\"%s\"}", f->account_id);
      else if (g_str_equal (name, "get_request"))
        arguments = g_strdup_printf ("{\"id\":\"%s\"}", first_request);
      else if (g_str_equal (name, "list_requests"))
        arguments = g_strdup_printf ("{\"pool\":\"main\",\"account\":\"%s\",\"since\":\"2020-01-01T00:00:00Z\"}",
                                     f->account_id);

      content = call_tool (f, name, arguments, &answer);
      {
        g_autoptr(JsonNode) node = json_node_new (JSON_NODE_OBJECT);

        json_node_set_object (node, content);
        if (!validate (output, node, name, why))
          g_error ("%s does not match its outputSchema: %s", name, why->str);
      }
      g_string_append_len (everything, g_bytes_get_data (answer.body, NULL), g_bytes_get_size (answer.body));
    }

  post (f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/list\"}", &resources);
  {
    JsonArray *list_of = json_object_get_array_member (result_of (&resources), "resources");

    g_assert_cmpuint (json_array_get_length (list_of), >=, 2);
    for (guint i = 0; i < json_array_get_length (list_of); i++)
      {
        JsonObject *resource = json_array_get_object_element (list_of, i);
        g_autofree char *body = g_strdup_printf ("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"resources/read\","
                                                 "\"params\":{\"uri\":\"%s\"}}",
                                                 json_object_get_string_member (resource, "uri"));
        g_auto(Answer) read = { 0 };
        JsonObject *contents;

        g_assert_cmpstr (json_object_get_string_member (resource, "mimeType"), ==, "application/json");
        post (f, body, &read);
        contents = json_array_get_object_element (json_object_get_array_member (result_of (&read), "contents"), 0);
        g_assert_cmpstr (json_object_get_string_member (contents, "uri"), ==,
                         json_object_get_string_member (resource, "uri"));
        g_assert_nonnull (json_object_get_string_member (contents, "text"));
        g_string_append_len (everything, g_bytes_get_data (read.body, NULL), g_bytes_get_size (read.body));
      }
  }

  /* Redaction: nothing secret anywhere, addresses masked. */
  g_assert_null (strstr (everything->str, f->access_token));
  g_assert_null (strstr (everything->str, f->refresh_token));
  g_assert_null (strstr (everything->str, f->pool_key + 20));
  g_assert_null (strstr (everything->str, f->token + 21));
  g_assert_null (strstr (everything->str, f->token_prefix));
  g_assert_null (strstr (everything->str, EMAIL));
  g_assert_nonnull (strstr (everything->str, MASKED_EMAIL));
}

static void
test_pagination (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GHashTable) unique = g_hash_table_new (g_str_hash, g_str_equal);
  g_autofree char *cursor = NULL;
  guint pages = 0;
  gint64 previous_start = G_MAXINT64;

  add_requests (f, 7);

  do
    {
      g_auto(Answer) answer = { 0 };
      g_autofree char *arguments = cursor != NULL
                                   ? g_strdup_printf ("{\"limit\":3,\"cursor\":\"%s\"}", cursor)
                                   : g_strdup ("{\"limit\":3}");
      JsonObject *content = call_tool (f, "list_requests", arguments, &answer);
      JsonArray *requests = json_object_get_array_member (content, "requests");

      g_assert_cmpuint (json_array_get_length (requests), <=, 3);
      for (guint i = 0; i < json_array_get_length (requests); i++)
        {
          JsonObject *request = json_array_get_object_element (requests, i);
          g_autoptr(GDateTime) started = g_date_time_new_from_iso8601 (json_object_get_string_member (request, "started_at"),
                                                                       NULL);
          gint64 start = g_date_time_to_unix (started);

          /* Newest first. */
          g_assert_cmpint (start, <=, previous_start);
          previous_start = start;
          g_assert_cmpuint (json_array_get_length (json_object_get_array_member (request, "attempts")), ==, 1);
          g_ptr_array_add (seen, g_strdup (json_object_get_string_member (request, "id")));
        }

      g_clear_pointer (&cursor, g_free);
      if (!JSON_NODE_HOLDS_NULL (json_object_get_member (content, "next_cursor")))
        cursor = g_strdup (json_object_get_string_member (content, "next_cursor"));
      pages++;
    }
  while (cursor != NULL && pages < 10);

  g_assert_cmpuint (pages, ==, 3);
  g_assert_cmpuint (seen->len, ==, 7);
  for (guint i = 0; i < seen->len; i++)
    g_assert_true (g_hash_table_add (unique, g_ptr_array_index (seen, i)));

  /* Filters. */
  {
    g_auto(Answer) answer = { 0 };
    JsonObject *content = call_tool (f, "list_requests", "{\"status\":429,\"limit\":100}", &answer);
    JsonArray *requests = json_object_get_array_member (content, "requests");

    g_assert_cmpuint (json_array_get_length (requests), ==, 3);
    g_assert_true (JSON_NODE_HOLDS_NULL (json_object_get_member (content, "next_cursor")));
  }
  {
    g_auto(Answer) answer = { 0 };
    JsonObject *content = call_tool (f, "list_requests", "{\"pool\":\"other\",\"key_prefix\":\"sk-cxp-000000000000\"}",
                                     &answer);

    g_assert_cmpuint (json_array_get_length (json_object_get_array_member (content, "requests")), ==, 0);
  }
  {
    g_auto(Answer) answer = { 0 };
    JsonObject *content = call_tool (f, "list_requests", "{\"since\":\"2999-01-01T00:00:00Z\"}", &answer);

    g_assert_cmpuint (json_array_get_length (json_object_get_array_member (content, "requests")), ==, 0);
  }

  /* The audit log pages the same way. */
  {
    g_auto(Answer) first = { 0 };
    g_auto(Answer) second = { 0 };
    JsonObject *content = call_tool (f, "list_audit_events", "{\"limit\":1}", &first);
    g_autofree char *arguments = g_strdup_printf ("{\"limit\":1,\"cursor\":\"%s\"}",
                                                  json_object_get_string_member (content, "next_cursor"));
    gint64 first_id = json_object_get_int_member (json_array_get_object_element (
      json_object_get_array_member (content, "events"), 0), "id");
    JsonObject *next = call_tool (f, "list_audit_events", arguments, &second);

    g_assert_cmpint (json_object_get_int_member (json_array_get_object_element (
      json_object_get_array_member (next, "events"), 0), "id"), <, first_id);
  }
}

static void
test_explain_routing (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  {
    g_auto(Answer) answer = { 0 };
    JsonObject *content = call_tool (f, "explain_routing", "{\"pool\":\"main\",\"model\":\"gpt-5.5\"}", &answer);
    JsonArray *candidates = json_object_get_array_member (content, "candidates");

    g_assert_cmpstr (json_object_get_string_member (content, "outcome"), ==, "ok");
    g_assert_cmpuint (json_array_get_length (candidates), ==, 1);
    g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (candidates, 0), "account_id"),
                     ==, f->account_id);
    g_assert_true (json_object_get_boolean_member (json_array_get_object_element (candidates, 0), "tried"));
    g_assert_cmpint (json_object_get_int_member (content, "ring_size"), ==, POOLER_ROUTER_DEFAULT_RING_SIZE);
  }

  /* The Pool's own ring size, not the default. */
  g_assert_true (pooler_service_set_pool_ring_size (f->service, "main", 5, &error));
  g_assert_no_error (error);
  {
    g_auto(Answer) answer = { 0 };
    JsonObject *content = call_tool (f, "explain_routing", "{\"pool\":\"main\"}", &answer);

    g_assert_cmpint (json_object_get_int_member (content, "ring_size"), ==, 5);
  }

  g_assert_true (pooler_service_set_account_status (f->service, f->account_id, POOLER_ACCOUNT_PAUSED, &error));
  g_assert_no_error (error);
  {
    g_auto(Answer) answer = { 0 };
    JsonObject *content = call_tool (f, "explain_routing", "{\"pool\":\"main\"}", &answer);
    JsonArray *excluded = json_object_get_array_member (content, "excluded");

    g_assert_cmpstr (json_object_get_string_member (content, "outcome"), ==, "empty");
    g_assert_cmpuint (json_array_get_length (json_object_get_array_member (content, "candidates")), ==, 0);
    g_assert_cmpuint (json_array_get_length (excluded), ==, 1);
    g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (excluded, 0), "reason"),
                     ==, "paused");
  }
}

static void
test_get_account_args (Fixture       *f,
                       gconstpointer  data)
{
  g_auto(Answer) answer = { 0 };
  g_autofree char *body = tool_call_body ("get_account", "{\"account\":\"acc_nope\"}");

  post (f, body, &answer);
  g_assert_true (json_object_get_boolean_member (result_of (&answer), "isError"));
  g_assert_nonnull (strstr (json_object_get_string_member (json_array_get_object_element (
    json_object_get_array_member (result_of (&answer), "content"), 0), "text"), "account"));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/mcp/validator", test_validator_itself);
  g_test_add_func ("/mcp/redact", test_redact);
  g_test_add_func ("/mcp/jsonrpc/parse", test_jsonrpc_parse);
  g_test_add ("/mcp/errors", Fixture, NULL, fixture_setup, test_errors, fixture_teardown);
  g_test_add ("/mcp/http", Fixture, NULL, fixture_setup, test_http, fixture_teardown);
  g_test_add ("/mcp/initialize", Fixture, NULL, fixture_setup, test_initialize, fixture_teardown);
  g_test_add ("/mcp/auth", Fixture, NULL, fixture_setup, test_auth, fixture_teardown);
  g_test_add ("/mcp/tools", Fixture, NULL, fixture_setup, test_tools, fixture_teardown);
  g_test_add ("/mcp/pagination", Fixture, NULL, fixture_setup, test_pagination, fixture_teardown);
  g_test_add ("/mcp/explain-routing", Fixture, NULL, fixture_setup, test_explain_routing, fixture_teardown);
  g_test_add ("/mcp/unknown-account", Fixture, NULL, fixture_setup, test_get_account_args, fixture_teardown);

  return g_test_run ();
}
