/* pooler-api-error.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-api-error"

#include "config.h"

#include <json-glib/json-glib.h>

#include "pooler-api-error.h"
#include "pooler-json.h"

GBytes *
pooler_api_error_build (const char *type,
                        const char *code,
                        const char *param,
                        const char *message)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  char *text;
  gsize length;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "error");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "message");
  json_builder_add_string_value (builder, message != NULL ? message : "");
  json_builder_set_member_name (builder, "type");
  json_builder_add_string_value (builder, type != NULL ? type : "server_error");
  json_builder_set_member_name (builder, "code");
  if (code != NULL)
    json_builder_add_string_value (builder, code);
  else
    json_builder_add_null_value (builder);
  json_builder_set_member_name (builder, "param");
  if (param != NULL)
    json_builder_add_string_value (builder, param);
  else
    json_builder_add_null_value (builder);
  json_builder_end_object (builder);
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  text = json_generator_to_data (generator, &length);

  return g_bytes_new_take (text, length);
}

void
pooler_api_error_respond (SoupServerMessage *msg,
                          guint              status,
                          const char        *type,
                          const char        *code,
                          const char        *param,
                          const char        *message)
{
  g_autoptr(GBytes) body = pooler_api_error_build (type, code, param, message);
  SoupMessageHeaders *headers;

  g_return_if_fail (SOUP_IS_SERVER_MESSAGE (msg));

  headers = soup_server_message_get_response_headers (msg);
  soup_message_headers_set_encoding (headers, SOUP_ENCODING_CONTENT_LENGTH);
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY,
                                    g_bytes_get_data (body, NULL),
                                    g_bytes_get_size (body));
}

GBytes *
pooler_api_error_raw_response (guint       status,
                               const char *type,
                               const char *code,
                               const char *message)
{
  g_autoptr(GBytes) body = pooler_api_error_build (type, code, NULL, message);
  GString *raw = g_string_new (NULL);
  gsize size = g_bytes_get_size (body);

  g_string_append_printf (raw,
                          "HTTP/1.1 %u %s\r\n"
                          "Content-Type: application/json\r\n"
                          "Content-Length: %" G_GSIZE_FORMAT "\r\n"
                          "Connection: close\r\n"
                          "\r\n",
                          status, soup_status_get_phrase (status), size);
  g_string_append_len (raw, g_bytes_get_data (body, NULL), size);

  return g_string_free_to_bytes (raw);
}

static void
copy_member (JsonBuilder *builder,
             JsonObject  *from,
             const char  *name)
{
  JsonNode *node = json_object_get_member (from, name);

  if (node == NULL)
    return;
  if (!JSON_NODE_HOLDS_VALUE (node) && !JSON_NODE_HOLDS_NULL (node))
    return;

  json_builder_set_member_name (builder, name);
  json_builder_add_value (builder, json_node_copy (node));
}

GBytes *
pooler_api_error_sanitize_upstream (guint       status,
                                    const char *data,
                                    gsize       length)
{
  static const char * const error_fields[] = {
    "message", "type", "code", "param", "plan_type", "resets_at", "resets_in_seconds",
  };
  g_autoptr(JsonObject) root = NULL;
  g_autoptr(JsonBuilder) builder = NULL;
  g_autoptr(JsonGenerator) generator = NULL;
  g_autoptr(JsonNode) out = NULL;
  g_autofree char *message = NULL;
  JsonNode *error_node;
  JsonNode *detail;
  char *text;
  gsize text_length;

  if (data != NULL && length > 0 && length <= 256 * 1024)
    root = pooler_json_parse_object (data, length, NULL);

  if (root == NULL)
    {
      message = g_strdup_printf ("The upstream answered %u %s.", status, soup_status_get_phrase (status));
      return pooler_api_error_build (status >= 500 ? "server_error" : "upstream_error",
                                     NULL, NULL, message);
    }

  builder = json_builder_new ();
  json_builder_begin_object (builder);

  error_node = json_object_get_member (root, "error");
  detail = json_object_get_member (root, "detail");

  if (error_node != NULL && JSON_NODE_HOLDS_OBJECT (error_node))
    {
      JsonObject *error = json_node_get_object (error_node);

      json_builder_set_member_name (builder, "error");
      json_builder_begin_object (builder);
      for (guint i = 0; i < G_N_ELEMENTS (error_fields); i++)
        copy_member (builder, error, error_fields[i]);
      json_builder_end_object (builder);
    }
  else if (detail != NULL && JSON_NODE_HOLDS_VALUE (detail) &&
           json_node_get_value_type (detail) == G_TYPE_STRING)
    copy_member (builder, root, "detail");
  else if (error_node != NULL && JSON_NODE_HOLDS_VALUE (error_node) &&
           json_node_get_value_type (error_node) == G_TYPE_STRING)
    {
      /* OAuth style: {"error":"invalid_grant","error_description":...} */
      json_builder_set_member_name (builder, "error");
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "message");
      json_builder_add_string_value (builder, json_node_get_string (error_node));
      json_builder_set_member_name (builder, "type");
      json_builder_add_string_value (builder, "upstream_error");
      json_builder_end_object (builder);
    }
  else
    {
      message = g_strdup_printf ("The upstream answered %u %s.", status, soup_status_get_phrase (status));
      return pooler_api_error_build (status >= 500 ? "server_error" : "upstream_error",
                                     NULL, NULL, message);
    }

  json_builder_end_object (builder);
  out = json_builder_get_root (builder);
  generator = json_generator_new ();
  json_generator_set_root (generator, out);
  text = json_generator_to_data (generator, &text_length);

  return g_bytes_new_take (text, text_length);
}
