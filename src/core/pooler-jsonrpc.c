/* pooler-jsonrpc.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-jsonrpc"

#include "config.h"

#include <string.h>

#include "pooler-json.h"
#include "pooler-jsonrpc.h"

G_DEFINE_QUARK (pooler-jsonrpc-error-quark, pooler_jsonrpc_error)

static gboolean
id_is_valid (JsonNode *id)
{
  GType type;

  if (!JSON_NODE_HOLDS_VALUE (id))
    return FALSE;

  type = json_node_get_value_type (id);
  return type == G_TYPE_STRING || type == G_TYPE_INT64;
}

void
pooler_jsonrpc_message_free (PoolerJsonRpcMessage *message)
{
  if (message == NULL)
    return;

  g_clear_pointer (&message->root, json_node_unref);
  g_free (message->method);
  g_free (message);
}

PoolerJsonRpcMessage *
pooler_jsonrpc_parse (const char  *data,
                      gsize        length,
                      JsonNode   **out_id,
                      GError     **error)
{
  g_autoptr(PoolerJsonRpcMessage) message = NULL;
  g_autoptr(GError) parse_error = NULL;
  JsonObject *object;
  JsonNode *id;
  JsonNode *method;
  JsonNode *params;

  g_return_val_if_fail (data != NULL || length == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (out_id != NULL)
    *out_id = NULL;

  message = g_new0 (PoolerJsonRpcMessage, 1);
  /* Never echo the input: parse errors may quote it. */
  message->root = pooler_json_parse_client (data != NULL ? data : "", length, &parse_error);
  if (message->root == NULL)
    {
      g_set_error_literal (error, POOLER_JSONRPC_ERROR, POOLER_JSONRPC_PARSE_ERROR,
                           "Parse error: the body is not valid JSON");
      return NULL;
    }

  if (JSON_NODE_HOLDS_ARRAY (message->root))
    {
      g_set_error_literal (error, POOLER_JSONRPC_ERROR, POOLER_JSONRPC_INVALID_REQUEST,
                           "Invalid Request: batches (JSON arrays) are not supported");
      return NULL;
    }
  if (!JSON_NODE_HOLDS_OBJECT (message->root))
    {
      g_set_error_literal (error, POOLER_JSONRPC_ERROR, POOLER_JSONRPC_INVALID_REQUEST,
                           "Invalid Request: the body must be a JSON-RPC object");
      return NULL;
    }

  object = json_node_get_object (message->root);
  id = json_object_get_member (object, "id");
  if (id != NULL && id_is_valid (id) && out_id != NULL)
    *out_id = json_node_copy (id);

  if (g_strcmp0 (pooler_json_get_string (object, "jsonrpc"), "2.0") != 0)
    {
      g_set_error_literal (error, POOLER_JSONRPC_ERROR, POOLER_JSONRPC_INVALID_REQUEST,
                           "Invalid Request: \"jsonrpc\" must be \"2.0\"");
      return NULL;
    }

  if (id != NULL && !id_is_valid (id))
    {
      g_set_error_literal (error, POOLER_JSONRPC_ERROR, POOLER_JSONRPC_INVALID_REQUEST,
                           "Invalid Request: \"id\" must be a string or an integer");
      return NULL;
    }

  method = json_object_get_member (object, "method");
  if (method == NULL)
    {
      /* A response from the client (we never ask it anything, but it may
       * answer anyway): accepted and dropped. */
      if (id != NULL && (json_object_has_member (object, "result") ||
                         json_object_has_member (object, "error")))
        {
          message->kind = POOLER_JSONRPC_RESPONSE;
          return g_steal_pointer (&message);
        }
      g_set_error_literal (error, POOLER_JSONRPC_ERROR, POOLER_JSONRPC_INVALID_REQUEST,
                           "Invalid Request: \"method\" is missing");
      return NULL;
    }
  if (!JSON_NODE_HOLDS_VALUE (method) || json_node_get_value_type (method) != G_TYPE_STRING ||
      *json_node_get_string (method) == '\0')
    {
      g_set_error_literal (error, POOLER_JSONRPC_ERROR, POOLER_JSONRPC_INVALID_REQUEST,
                           "Invalid Request: \"method\" must be a non-empty string");
      return NULL;
    }
  message->method = g_strdup (json_node_get_string (method));

  params = json_object_get_member (object, "params");
  if (params != NULL && JSON_NODE_HOLDS_OBJECT (params))
    message->params = json_node_get_object (params);
  else if (params != NULL && JSON_NODE_HOLDS_ARRAY (params))
    {
      g_set_error_literal (error, POOLER_JSONRPC_ERROR, POOLER_JSONRPC_INVALID_PARAMS,
                           "Invalid params: \"params\" must be an object");
      return NULL;
    }
  else if (params != NULL && !JSON_NODE_HOLDS_NULL (params))
    {
      g_set_error_literal (error, POOLER_JSONRPC_ERROR, POOLER_JSONRPC_INVALID_REQUEST,
                           "Invalid Request: \"params\" must be an object");
      return NULL;
    }

  if (id != NULL)
    {
      message->kind = POOLER_JSONRPC_REQUEST;
      message->id = id;
    }
  else
    message->kind = POOLER_JSONRPC_NOTIFICATION;

  return g_steal_pointer (&message);
}

char *
pooler_jsonrpc_to_string (JsonNode *node,
                          gsize    *out_length)
{
  g_autoptr(JsonGenerator) generator = json_generator_new ();

  json_generator_set_root (generator, node);
  return json_generator_to_data (generator, out_length);
}

static GBytes *
envelope_to_bytes (JsonObject *envelope)
{
  g_autoptr(JsonNode) root = json_node_new (JSON_NODE_OBJECT);
  gsize length = 0;
  char *text;

  json_node_take_object (root, envelope);
  text = pooler_jsonrpc_to_string (root, &length);
  return g_bytes_new_take (text, length);
}

GBytes *
pooler_jsonrpc_build_result (JsonNode *id,
                             JsonNode *result)
{
  JsonObject *envelope = json_object_new ();

  g_return_val_if_fail (id != NULL, NULL);
  g_return_val_if_fail (result != NULL, NULL);

  json_object_set_string_member (envelope, "jsonrpc", "2.0");
  /* A copy keeps the type: an integer id stays an integer. */
  json_object_set_member (envelope, "id", json_node_copy (id));
  json_object_set_member (envelope, "result", result);

  return envelope_to_bytes (envelope);
}

GBytes *
pooler_jsonrpc_build_error (JsonNode   *id,
                            int         code,
                            const char *message,
                            JsonNode   *data)
{
  JsonObject *envelope = json_object_new ();
  JsonObject *error = json_object_new ();

  g_return_val_if_fail (message != NULL, NULL);

  json_object_set_int_member (error, "code", code);
  json_object_set_string_member (error, "message", message);
  if (data != NULL)
    json_object_set_member (error, "data", data);

  json_object_set_string_member (envelope, "jsonrpc", "2.0");
  if (id != NULL)
    json_object_set_member (envelope, "id", json_node_copy (id));
  else
    json_object_set_null_member (envelope, "id");
  json_object_set_object_member (envelope, "error", error);

  return envelope_to_bytes (envelope);
}

char *
pooler_jsonrpc_excerpt (const char *text)
{
  g_autofree char *valid = NULL;

  g_return_val_if_fail (text != NULL, NULL);

  valid = g_utf8_make_valid (text, -1);
  return g_utf8_substring (valid, 0, MIN (g_utf8_strlen (valid, -1), POOLER_JSONRPC_EXCERPT_CHARS));
}
