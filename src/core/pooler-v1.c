/* pooler-v1.c: the /v1 routes, and what their translations share.
 *
 * The gateway's early handler has already checked the Pool key, Host,
 * Origin and body size. Here a body is parsed once (depth-checked),
 * validated, translated into a Codex backend request and handed to the
 * proxy with a translator for the answer, so routing, failover, quota and
 * the request log work exactly as for native traffic.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-v1"

#include "config.h"

#include <string.h>

#include "pooler-api-error.h"
#include "pooler-error.h"
#include "pooler-json.h"
#include "pooler-request-body.h"
#include "pooler-v1-private.h"
#include "pooler-soup-exchange.h"
#include "pooler-v1.h"

/* The gateway takes 32 MiB on the wire; a compressed body may grow. */
#define MAX_DECODED_BODY (128 * 1024 * 1024)

void
pooler_v1_request_free (PoolerV1Request *request)
{
  if (request == NULL)
    return;

  g_free (request->model);
  g_free (request->prompt_cache_key);
  g_free (request->state_item_id);
  g_clear_pointer (&request->body, g_bytes_unref);
  g_free (request);
}

/* ---- JSON and SSE helpers ---------------------------------------------- */

GBytes *
pooler_v1_json_to_bytes (JsonNode *node)
{
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  gsize length;
  char *text;

  json_generator_set_root (generator, node);
  text = json_generator_to_data (generator, &length);

  return g_bytes_new_take (text, length);
}

GBytes *
pooler_v1_object_to_bytes (JsonObject *object)
{
  g_autoptr(JsonNode) node = json_node_init_object (json_node_alloc (), object);

  return pooler_v1_json_to_bytes (node);
}

void
pooler_v1_sse_append (GByteArray *out,
                      const char *type,
                      const char *data,
                      gsize       length)
{
  const char *line = data;
  const char *end = data + length;

  if (type != NULL)
    {
      g_byte_array_append (out, (const guint8 *) "event: ", 7);
      g_byte_array_append (out, (const guint8 *) type, strlen (type));
      g_byte_array_append (out, (const guint8 *) "\n", 1);
    }

  /* One "data:" line per line: a newline inside would end the field. */
  do
    {
      const char *newline = memchr (line, '\n', end - line);
      const char *stop = newline != NULL ? newline : end;

      g_byte_array_append (out, (const guint8 *) "data: ", 6);
      g_byte_array_append (out, (const guint8 *) line, stop - line);
      g_byte_array_append (out, (const guint8 *) "\n", 1);
      line = newline != NULL ? newline + 1 : end;
    }
  while (line < end);

  g_byte_array_append (out, (const guint8 *) "\n", 1);
}

void
pooler_v1_sse_append_object (GByteArray *out,
                             const char *type,
                             JsonObject *object)
{
  g_autoptr(GBytes) bytes = pooler_v1_object_to_bytes (object);
  gsize length;
  const char *data = g_bytes_get_data (bytes, &length);

  pooler_v1_sse_append (out, type, data, length);
}

JsonArray *
pooler_v1_merge_include (JsonArray *client_include)
{
  JsonArray *include = json_array_new ();
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint i = 0; client_include != NULL && i < json_array_get_length (client_include); i++)
    {
      JsonNode *element = json_array_get_element (client_include, i);
      const char *value;

      if (!JSON_NODE_HOLDS_VALUE (element) || json_node_get_value_type (element) != G_TYPE_STRING)
        continue;
      value = json_node_get_string (element);
      if (g_hash_table_contains (seen, value))
        continue;
      g_hash_table_add (seen, (gpointer) value);
      json_array_add_string_element (include, value);
    }

  if (!g_hash_table_contains (seen, POOLER_V1_ENCRYPTED_REASONING))
    json_array_add_string_element (include, POOLER_V1_ENCRYPTED_REASONING);

  return include;
}

GBytes *
pooler_v1_finish_body (JsonObject *body,
                       const char *instructions,
                       JsonArray  *client_include)
{
  json_object_set_string_member (body, "instructions",
                                 instructions != NULL && *instructions != '\0'
                                 ? instructions : POOLER_V1_DEFAULT_INSTRUCTIONS);
  json_object_set_boolean_member (body, "store", FALSE);
  json_object_set_boolean_member (body, "stream", TRUE);
  json_object_set_array_member (body, "include", pooler_v1_merge_include (client_include));

  return pooler_v1_object_to_bytes (body);
}

gboolean
pooler_v1_member_present (JsonObject *object,
                          const char *name)
{
  JsonNode *node = json_object_get_member (object, name);

  return node != NULL && !JSON_NODE_HOLDS_NULL (node);
}

PoolerV1Problem *
pooler_v1_check_type (JsonObject   *object,
                      const char   *name,
                      const char   *param,
                      JsonNodeType  node_type,
                      GType         value_type,
                      const char   *expected)
{
  JsonNode *node = json_object_get_member (object, name);
  gboolean ok;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return NULL;

  ok = JSON_NODE_TYPE (node) == node_type;
  if (ok && node_type == JSON_NODE_VALUE && value_type != G_TYPE_INVALID)
    {
      GType type = json_node_get_value_type (node);

      /* Any number will do where a double is asked for. */
      ok = type == value_type || (value_type == G_TYPE_DOUBLE && type == G_TYPE_INT64);
    }

  if (ok)
    return NULL;

  return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_type", param,
                                "Invalid type for '%s': expected %s.", param, expected);
}

PoolerV1Problem *
pooler_v1_check_model (JsonObject *request)
{
  JsonNode *node = json_object_get_member (request, "model");
  PoolerV1Problem *problem;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "missing_required_parameter", "model",
                                  "Missing required parameter: 'model'.");
  if ((problem = pooler_v1_check_type (request, "model", "model", JSON_NODE_VALUE, G_TYPE_STRING,
                                       "a string")) != NULL)
    return problem;
  if (*json_node_get_string (node) == '\0')
    return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_value", "model",
                                  "Invalid value for 'model': it must not be empty.");
  if (!pooler_model_name_ok (json_node_get_string (node)))
    return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_value", "model",
                                  POOLER_MODEL_NAME_PROBLEM);

  return NULL;
}

PoolerV1Problem *
pooler_v1_check_types (JsonObject              *request,
                       const PoolerV1TypeCheck *checks,
                       gsize                    n_checks)
{
  PoolerV1Problem *problem;

  for (gsize i = 0; i < n_checks; i++)
    if ((problem = pooler_v1_check_type (request, checks[i].name, checks[i].name, checks[i].node_type,
                                         checks[i].value_type, checks[i].expected)) != NULL)
      return problem;

  return NULL;
}

PoolerV1Problem *
pooler_v1_check_tool_choice (JsonObject *request)
{
  JsonNode *node = json_object_get_member (request, "tool_choice");

  if (node != NULL && !JSON_NODE_HOLDS_NULL (node) && !JSON_NODE_HOLDS_OBJECT (node) &&
      !(JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING))
    return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_type", "tool_choice",
                                  "Invalid type for 'tool_choice': expected a string or an object.");

  return NULL;
}

void
pooler_v1_append_instructions (GString    *instructions,
                               const char *text)
{
  if (text == NULL || *text == '\0')
    return;
  if (instructions->len > 0)
    g_string_append (instructions, "\n\n");
  g_string_append (instructions, text);
}

JsonObject *
pooler_v1_text_part (const char *type,
                     const char *text)
{
  JsonObject *part = json_object_new ();

  json_object_set_string_member (part, "type", type);
  json_object_set_string_member (part, "text", text);

  return part;
}

JsonObject *
pooler_v1_message_item (const char *role,
                        JsonArray  *content)
{
  JsonObject *item = json_object_new ();

  json_object_set_string_member (item, "type", "message");
  json_object_set_string_member (item, "role", role);
  json_object_set_array_member (item, "content", content);

  return item;
}

void
pooler_v1_copy_service_tier (JsonObject *request,
                             JsonObject *body)
{
  const char *tier;

  if (!pooler_v1_member_present (request, "service_tier"))
    return;

  tier = json_object_get_string_member (request, "service_tier");
  if (strcmp (tier, "fast") == 0)
    json_object_set_string_member (body, "service_tier", "priority");
  else if (strcmp (tier, "auto") != 0 && strcmp (tier, "default") != 0)
    json_object_set_string_member (body, "service_tier", tier);
}

PoolerV1Request *
pooler_v1_request_new (JsonObject *request,
                       JsonObject *body,
                       const char *instructions,
                       JsonArray  *client_include)
{
  PoolerV1Request *result = g_new0 (PoolerV1Request, 1);

  result->model = g_strdup (json_object_get_string_member (request, "model"));
  if (pooler_v1_member_present (request, "prompt_cache_key"))
    result->prompt_cache_key = g_strdup (json_object_get_string_member (request, "prompt_cache_key"));
  result->stream = pooler_v1_member_present (request, "stream") &&
                   json_object_get_boolean_member (request, "stream");
  result->body = pooler_v1_finish_body (body, instructions, client_include);

  return result;
}

/* ---- the routes --------------------------------------------------------- */

static void
respond_unsupported (SoupServerMessage *msg)
{
  g_autoptr(GBytes) body = pooler_v1_unsupported_body ();

  soup_message_headers_set_encoding (soup_server_message_get_response_headers (msg),
                                     SOUP_ENCODING_CONTENT_LENGTH);
  soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY,
                                    g_bytes_get_data (body, NULL), g_bytes_get_size (body));
}

static void
respond_method_not_allowed (SoupServerMessage *msg,
                            const char        *allowed)
{
  g_autofree char *message = g_strdup_printf ("Use %s for this endpoint.", allowed);

  pooler_api_error_respond (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "invalid_request_error",
                            "method_not_allowed", NULL, message);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow", allowed);
}

static void
handle_models (SoupServerMessage     *msg,
               const PoolerKeyRecord *key)
{
  g_autoptr(GBytes) body = pooler_v1_models_list_body (key);

  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY,
                                    g_bytes_get_data (body, NULL), g_bytes_get_size (body));
}

/* The request body as an object, or a 400 (415 for an encoding we do not
 * decode) already answered. */
static JsonObject *
parse_body (SoupServerMessage *msg)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  g_autoptr(GBytes) body = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  g_autoptr(GBytes) decoded = NULL;
  g_autoptr(GError) error = NULL;
  JsonObject *object = NULL;

  decoded = pooler_request_body_decode (soup_message_headers_get_one (headers, "Content-Encoding"),
                                        body, MAX_DECODED_BODY, &error);
  if (decoded == NULL)
    {
      pooler_api_error_respond (msg,
                                g_error_matches (error, POOLER_ERROR, POOLER_ERROR_UNSUPPORTED)
                                ? SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE : SOUP_STATUS_BAD_REQUEST,
                                "invalid_request_error", "invalid_body", NULL, error->message);
      return NULL;
    }

  object = pooler_json_parse_client_object (g_bytes_get_data (decoded, NULL), g_bytes_get_size (decoded), &error);
  if (object == NULL)
    {
      g_autofree char *message = g_strdup_printf ("The request body is not a valid JSON object: %s",
                                                  error->message);

      pooler_api_error_respond (msg, SOUP_STATUS_BAD_REQUEST, "invalid_request_error",
                                "invalid_json", NULL, message);
      return NULL;
    }

  return object;
}

typedef enum
{
  V1_RESPONSES,
  V1_CHAT,
} V1Endpoint;

static void
handle_translated (PoolerProxy           *proxy,
                   PoolerService         *service,
                   SoupServerMessage     *msg,
                   const char            *path,
                   const PoolerKeyRecord *key,
                   V1Endpoint             endpoint)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  g_autoptr(JsonObject) object = NULL;
  g_autoptr(PoolerV1Problem) problem = NULL;
  g_autoptr(PoolerV1Request) request = NULL;
  g_autoptr(PoolerRequestBody) scan = NULL;
  PoolerRequestRecord *record;
  PoolerTranslator *translator;

  if ((object = parse_body (msg)) == NULL)
    return;

  request = endpoint == V1_CHAT ? pooler_v1_chat_translate_request (object, &problem)
                                : pooler_v1_responses_translate_request (object, &problem);
  if (request == NULL)
    {
      pooler_v1_problem_respond (problem, msg);
      return;
    }

  record = pooler_request_record_new ();
  record->pool_slug = g_strdup (key->pool_slug);
  record->key_prefix = g_strdup (key->prefix);
  record->endpoint = g_strdup (path);
  record->transport = g_strdup ("http");
  record->model = g_strdup (request->model);

  if (!pooler_key_record_allows_model (key, request->model))
    {
      g_autofree char *message = g_strdup_printf ("This key may not use the model “%s”.", request->model);

      pooler_api_error_respond (msg, SOUP_STATUS_FORBIDDEN, "invalid_request_error",
                                "model_not_allowed", "model", message);
      record->status = SOUP_STATUS_FORBIDDEN;
      record->state = POOLER_REQUEST_COMPLETED;
      record->error_code = g_strdup ("model_not_allowed");
      pooler_service_record_request (service, record);
      pooler_request_record_free (record);
      return;
    }

  /* The proxy passes the client's headers on: they must describe the body
   * we send, not the one we got. */
  soup_message_headers_remove (headers, "Content-Encoding");
  soup_message_headers_replace (headers, "Content-Type", "application/json");
  soup_message_headers_replace (headers, "Accept", "text/event-stream");

  scan = g_new0 (PoolerRequestBody, 1);
  scan->model = g_strdup (request->model);
  scan->prompt_cache_key = g_strdup (request->prompt_cache_key);
  /* A reasoning item sent back pins the request to the account that made
   * it, as a previous response does (the proxy remembers both). */
  scan->previous_response_id = g_strdup (request->state_item_id);
  scan->has_stream = TRUE;
  scan->stream = TRUE;
  scan->has_input = TRUE;

  translator = endpoint == V1_CHAT
               ? pooler_v1_chat_translator_new (request->stream, request->include_usage, request->model)
               : pooler_v1_responses_translator_new (request->stream);

  {
    g_autoptr(PoolerExchange) exchange = pooler_soup_exchange_new (msg);

    pooler_proxy_forward_translated (proxy, exchange, key, "/codex/responses", request->body, scan,
                                     translator, record);
  }
}

void
pooler_v1_handle (PoolerProxy           *proxy,
                  PoolerService         *service,
                  SoupServerMessage     *msg,
                  const char            *path,
                  const PoolerKeyRecord *key)
{
  const char *method;

  g_return_if_fail (POOLER_IS_PROXY (proxy));
  g_return_if_fail (SOUP_IS_SERVER_MESSAGE (msg));
  g_return_if_fail (path != NULL);
  g_return_if_fail (key != NULL);

  method = soup_server_message_get_method (msg);

  if (strcmp (path, "/v1/models") == 0)
    {
      if (method != SOUP_METHOD_GET)
        respond_method_not_allowed (msg, "GET");
      else
        handle_models (msg, key);
      return;
    }

  if (strcmp (path, "/v1/responses") == 0 || strcmp (path, "/v1/chat/completions") == 0)
    {
      if (method != SOUP_METHOD_POST)
        respond_method_not_allowed (msg, "POST");
      else
        handle_translated (proxy, service, msg, path, key,
                           strcmp (path, "/v1/chat/completions") == 0 ? V1_CHAT : V1_RESPONSES);
      return;
    }

  respond_unsupported (msg);
}
