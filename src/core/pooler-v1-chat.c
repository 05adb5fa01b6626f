/* pooler-v1-chat.c: POST /v1/chat/completions, as a Codex Responses call.
 *
 * Messages become input items: system/developer text goes to
 * "instructions", user and assistant text to messages, an assistant's
 * tool_calls to function_call items and tool messages to
 * function_call_output items. Tools lose their "function" wrapper. The
 * answer comes back as chat.completion.chunk events (then "data: [DONE]")
 * or as one chat.completion. Parameters the backend cannot honour are
 * dropped when that changes nothing that matters (temperature, max_tokens)
 * and refused when it would (stop, logit_bias, n > 1).
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-v1"

#include "config.h"

#include <string.h>

#include "pooler-json.h"
#include "pooler-v1-private.h"

static const char * const translated_fields[] = {
  "model", "messages", "tools", "tool_choice", "parallel_tool_calls", "reasoning_effort",
  "response_format", "verbosity", "prompt_cache_key", "service_tier", "stream", "stream_options",
  NULL,
};
/* Accepted and dropped: the backend rejects them or has no use for them. */
static const char * const dropped_fields[] = {
  "max_tokens", "max_completion_tokens", "temperature", "top_p", "user", "metadata", "store",
  "safety_identifier", "prompt_cache_retention", "seed", NULL,
};

static PoolerV1Problem *
unsupported (const char *param)
{
  return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "unsupported_parameter", param,
                                "Unsupported parameter: '%s'.", param);
}

/* Parameters with a harmless default are accepted at that default only. */
static PoolerV1Problem *
check_fields (JsonObject *request)
{
  JsonObjectIter iter;
  const char *name;
  JsonNode *node;

  json_object_iter_init (&iter, request);
  while (json_object_iter_next (&iter, &name, &node))
    {
      if (g_strv_contains (translated_fields, name) || g_strv_contains (dropped_fields, name) ||
          JSON_NODE_HOLDS_NULL (node))
        continue;

      if (strcmp (name, "n") == 0)
        {
          if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64 ||
              json_node_get_int (node) != 1)
            return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "unsupported_parameter", "n",
                                          "Unsupported value for 'n': only 1 is supported.");
          continue;
        }
      if (strcmp (name, "frequency_penalty") == 0 || strcmp (name, "presence_penalty") == 0)
        {
          if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_double (node) != 0.0)
            return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "unsupported_parameter", name,
                                          "Unsupported value for '%s': only 0 is supported.", name);
          continue;
        }
      if (strcmp (name, "logprobs") == 0)
        {
          if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_BOOLEAN ||
              json_node_get_boolean (node))
            return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "unsupported_parameter", "logprobs",
                                          "Unsupported value for 'logprobs': only false is supported.");
          continue;
        }

      /* stop, logit_bias, audio, modalities, functions ... and unknowns */
      return unsupported (name);
    }

  return NULL;
}

static PoolerV1Problem *
check_types (JsonObject *request)
{
  static const PoolerV1TypeCheck checks[] = {
    { "stream", JSON_NODE_VALUE, G_TYPE_BOOLEAN, "a boolean" },
    { "stream_options", JSON_NODE_OBJECT, G_TYPE_INVALID, "an object" },
    { "tools", JSON_NODE_ARRAY, G_TYPE_INVALID, "an array" },
    { "parallel_tool_calls", JSON_NODE_VALUE, G_TYPE_BOOLEAN, "a boolean" },
    { "reasoning_effort", JSON_NODE_VALUE, G_TYPE_STRING, "a string" },
    { "response_format", JSON_NODE_OBJECT, G_TYPE_INVALID, "an object" },
    { "verbosity", JSON_NODE_VALUE, G_TYPE_STRING, "a string" },
    { "prompt_cache_key", JSON_NODE_VALUE, G_TYPE_STRING, "a string" },
    { "service_tier", JSON_NODE_VALUE, G_TYPE_STRING, "a string" },
    { "max_tokens", JSON_NODE_VALUE, G_TYPE_INT64, "an integer" },
    { "max_completion_tokens", JSON_NODE_VALUE, G_TYPE_INT64, "an integer" },
    { "temperature", JSON_NODE_VALUE, G_TYPE_DOUBLE, "a number" },
    { "top_p", JSON_NODE_VALUE, G_TYPE_DOUBLE, "a number" },
  };
  PoolerV1Problem *problem;
  JsonNode *node;

  if ((problem = pooler_v1_check_model (request)) != NULL)
    return problem;

  node = json_object_get_member (request, "messages");
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "missing_required_parameter", "messages",
                                  "Missing required parameter: 'messages'.");
  if (!JSON_NODE_HOLDS_ARRAY (node))
    return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_type", "messages",
                                  "Invalid type for 'messages': expected an array of messages.");
  if (json_array_get_length (json_node_get_array (node)) == 0)
    return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_value", "messages",
                                  "Invalid value for 'messages': at least one message is required.");

  if ((problem = pooler_v1_check_types (request, checks, G_N_ELEMENTS (checks))) != NULL)
    return problem;

  return pooler_v1_check_tool_choice (request);
}

static JsonObject *
object_member (JsonObject *object,
               const char *name)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

/* Text-only content (a string or text parts) as one string; NULL with
 * *problem set when it is anything else. */
static char *
plain_text (JsonNode         *content,
            const char       *param,
            PoolerV1Problem **problem)
{
  g_autoptr(GString) text = g_string_new (NULL);
  JsonArray *parts;

  if (content == NULL || JSON_NODE_HOLDS_NULL (content))
    return g_strdup ("");
  if (JSON_NODE_HOLDS_VALUE (content) && json_node_get_value_type (content) == G_TYPE_STRING)
    return g_strdup (json_node_get_string (content));
  if (!JSON_NODE_HOLDS_ARRAY (content))
    {
      *problem = pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_type", param,
                                        "Invalid type for '%s': expected a string or an array of text parts.",
                                        param);
      return NULL;
    }

  parts = json_node_get_array (content);
  for (guint i = 0; i < json_array_get_length (parts); i++)
    {
      JsonNode *node = json_array_get_element (parts, i);
      JsonObject *part = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      const char *part_text = pooler_json_get_string (part, "text");

      if (part == NULL || g_strcmp0 (pooler_json_get_string (part, "type"), "text") != 0 || part_text == NULL)
        {
          *problem = pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_value", param,
                                            "Invalid value for '%s[%u]': only text parts are supported here.",
                                            param, i);
          return NULL;
        }
      if (i > 0)
        g_string_append_c (text, '\n');
      g_string_append (text, part_text);
    }

  return g_string_free (g_steal_pointer (&text), FALSE);
}

/* A user message's content parts in the Responses shape. */
static JsonArray *
user_content (JsonNode         *content,
              const char       *param,
              PoolerV1Problem **problem)
{
  g_autoptr(JsonArray) result = json_array_new ();
  JsonArray *parts;

  if (content != NULL && JSON_NODE_HOLDS_VALUE (content) && json_node_get_value_type (content) == G_TYPE_STRING)
    {
      json_array_add_object_element (result, pooler_v1_text_part ("input_text", json_node_get_string (content)));
      return g_steal_pointer (&result);
    }
  if (content == NULL || !JSON_NODE_HOLDS_ARRAY (content))
    {
      *problem = pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_type", param,
                                        "Invalid type for '%s': expected a string or an array of parts.", param);
      return NULL;
    }

  parts = json_node_get_array (content);
  for (guint i = 0; i < json_array_get_length (parts); i++)
    {
      JsonNode *node = json_array_get_element (parts, i);
      JsonObject *part = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      const char *type = pooler_json_get_string (part, "type");

      if (g_strcmp0 (type, "text") == 0 && pooler_json_get_string (part, "text") != NULL)
        json_array_add_object_element (result, pooler_v1_text_part ("input_text", pooler_json_get_string (part, "text")));
      else if (g_strcmp0 (type, "image_url") == 0 &&
               pooler_json_get_string (object_member (part, "image_url"), "url") != NULL)
        {
          JsonObject *image = object_member (part, "image_url");
          JsonObject *item = json_object_new ();

          json_object_set_string_member (item, "type", "input_image");
          json_object_set_string_member (item, "image_url", pooler_json_get_string (image, "url"));
          json_object_set_string_member (item, "detail",
                                         pooler_json_get_string (image, "detail") != NULL
                                         ? pooler_json_get_string (image, "detail") : "auto");
          json_array_add_object_element (result, item);
        }
      else
        {
          *problem = pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_value", param,
                                            "Invalid value for '%s[%u]': only text and image_url parts "
                                            "are supported.", param, i);
          return NULL;
        }
    }

  return g_steal_pointer (&result);
}

static PoolerV1Problem *
translate_assistant (JsonObject *message,
                     const char *param,
                     JsonArray  *input)
{
  PoolerV1Problem *problem = NULL;
  JsonNode *content = json_object_get_member (message, "content");
  JsonNode *tool_calls = json_object_get_member (message, "tool_calls");
  g_autofree char *text = NULL;

  if (content != NULL && JSON_NODE_HOLDS_ARRAY (content))
    {
      /* Refusal parts carry no text the model should see again. */
      JsonArray *parts = json_node_get_array (content);
      g_autoptr(GString) joined = g_string_new (NULL);

      for (guint i = 0; i < json_array_get_length (parts); i++)
        {
          JsonNode *node = json_array_get_element (parts, i);
          JsonObject *part = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;

          if (g_strcmp0 (pooler_json_get_string (part, "type"), "refusal") == 0)
            continue;
          if (g_strcmp0 (pooler_json_get_string (part, "type"), "text") != 0 || pooler_json_get_string (part, "text") == NULL)
            return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_value", param,
                                          "Invalid value for '%s.content[%u]': only text parts are "
                                          "supported.", param, i);
          g_string_append (joined, pooler_json_get_string (part, "text"));
        }
      text = g_string_free (g_steal_pointer (&joined), FALSE);
    }
  else
    {
      g_autofree char *content_param = g_strdup_printf ("%s.content", param);

      if ((text = plain_text (content, content_param, &problem)) == NULL)
        return problem;
    }

  if (*text != '\0')
    {
      JsonArray *parts = json_array_new ();

      json_array_add_object_element (parts, pooler_v1_text_part ("output_text", text));
      json_array_add_object_element (input, pooler_v1_message_item ("assistant", parts));
    }

  if (tool_calls == NULL || JSON_NODE_HOLDS_NULL (tool_calls))
    return NULL;
  if (!JSON_NODE_HOLDS_ARRAY (tool_calls))
    return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_type", param,
                                  "Invalid type for '%s.tool_calls': expected an array.", param);

  for (guint i = 0; i < json_array_get_length (json_node_get_array (tool_calls)); i++)
    {
      JsonNode *node = json_array_get_element (json_node_get_array (tool_calls), i);
      JsonObject *call = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      JsonObject *function = object_member (call, "function");
      const char *arguments = pooler_json_get_string (function, "arguments");
      JsonObject *item;

      if (pooler_json_get_string (call, "id") == NULL || pooler_json_get_string (function, "name") == NULL ||
          (pooler_json_get_string (call, "type") != NULL && strcmp (pooler_json_get_string (call, "type"), "function") != 0))
        return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_value", param,
                                      "Invalid value for '%s.tool_calls[%u]': expected a function call "
                                      "with an id and a function name.", param, i);

      item = json_object_new ();
      json_object_set_string_member (item, "type", "function_call");
      json_object_set_string_member (item, "call_id", pooler_json_get_string (call, "id"));
      json_object_set_string_member (item, "name", pooler_json_get_string (function, "name"));
      json_object_set_string_member (item, "arguments", arguments != NULL ? arguments : "{}");
      json_array_add_object_element (input, item);
    }

  return NULL;
}

static PoolerV1Problem *
translate_message (JsonNode  *node,
                   guint      index,
                   JsonArray *input,
                   GString   *instructions)
{
  g_autofree char *param = g_strdup_printf ("messages[%u]", index);
  g_autofree char *content_param = g_strdup_printf ("messages[%u].content", index);
  PoolerV1Problem *problem = NULL;
  JsonObject *message;
  const char *role;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_type", param,
                                  "Invalid type for '%s': expected an object.", param);
  message = json_node_get_object (node);
  role = pooler_json_get_string (message, "role");
  if (role == NULL)
    return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "missing_required_parameter", param,
                                  "Missing required parameter: '%s.role'.", param);

  if (strcmp (role, "system") == 0 || strcmp (role, "developer") == 0)
    {
      g_autofree char *text = plain_text (json_object_get_member (message, "content"), content_param, &problem);

      if (text == NULL)
        return problem;
      pooler_v1_append_instructions (instructions, text);
      return NULL;
    }

  if (strcmp (role, "user") == 0)
    {
      JsonArray *content = user_content (json_object_get_member (message, "content"), content_param, &problem);

      if (content == NULL)
        return problem;
      json_array_add_object_element (input, pooler_v1_message_item ("user", content));
      return NULL;
    }

  if (strcmp (role, "assistant") == 0)
    return translate_assistant (message, param, input);

  if (strcmp (role, "tool") == 0)
    {
      const char *call_id = pooler_json_get_string (message, "tool_call_id");
      g_autofree char *output = NULL;
      JsonObject *item;

      if (call_id == NULL)
        return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "missing_required_parameter", param,
                                      "Missing required parameter: '%s.tool_call_id'.", param);
      if ((output = plain_text (json_object_get_member (message, "content"), content_param, &problem)) == NULL)
        return problem;

      item = json_object_new ();
      json_object_set_string_member (item, "type", "function_call_output");
      json_object_set_string_member (item, "call_id", call_id);
      json_object_set_string_member (item, "output", output);
      json_array_add_object_element (input, item);
      return NULL;
    }

  return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_value", param,
                                "Invalid value for '%s.role': '%s' is not one of system, developer, "
                                "user, assistant, tool.", param, role);
}

static PoolerV1Problem *
translate_tools (JsonArray *tools,
                 JsonArray *result)
{
  for (guint i = 0; i < json_array_get_length (tools); i++)
    {
      JsonNode *node = json_array_get_element (tools, i);
      JsonObject *tool = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      JsonObject *function = object_member (tool, "function");
      g_autofree char *param = g_strdup_printf ("tools[%u]", i);
      JsonNode *parameters;
      JsonObject *item;

      if (g_strcmp0 (pooler_json_get_string (tool, "type"), "function") != 0 || function == NULL)
        return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "unsupported_parameter", param,
                                      "Unsupported value for '%s': only function tools are supported.", param);
      if (pooler_json_get_string (function, "name") == NULL)
        return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "missing_required_parameter", param,
                                      "Missing required parameter: '%s.function.name'.", param);

      item = json_object_new ();
      json_object_set_string_member (item, "type", "function");
      json_object_set_string_member (item, "name", pooler_json_get_string (function, "name"));
      if (pooler_json_get_string (function, "description") != NULL)
        json_object_set_string_member (item, "description", pooler_json_get_string (function, "description"));
      parameters = json_object_get_member (function, "parameters");
      if (parameters != NULL && JSON_NODE_HOLDS_OBJECT (parameters))
        json_object_set_member (item, "parameters", json_node_copy (parameters));
      else
        {
          /* The Responses API wants a schema; no parameters is an empty one. */
          JsonObject *schema = json_object_new ();

          json_object_set_string_member (schema, "type", "object");
          json_object_set_object_member (schema, "properties", json_object_new ());
          json_object_set_object_member (item, "parameters", schema);
        }
      json_object_set_boolean_member (item, "strict",
                                      json_object_get_boolean_member_with_default (function, "strict", FALSE));
      json_array_add_object_element (result, item);
    }

  return NULL;
}

static PoolerV1Problem *
translate_tool_choice (JsonNode   *choice,
                       JsonObject *body)
{
  JsonObject *object;
  JsonObject *named;
  const char *name;

  if (JSON_NODE_HOLDS_VALUE (choice))
    {
      const char *value = json_node_get_string (choice);

      if (strcmp (value, "none") != 0 && strcmp (value, "auto") != 0 && strcmp (value, "required") != 0)
        return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_value", "tool_choice",
                                      "Invalid value for 'tool_choice': '%s' is not one of none, auto, "
                                      "required.", value);
      json_object_set_string_member (body, "tool_choice", value);
      return NULL;
    }

  object = json_node_get_object (choice);
  name = pooler_json_get_string (object_member (object, "function"), "name");
  if (g_strcmp0 (pooler_json_get_string (object, "type"), "function") != 0 || name == NULL)
    return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_value", "tool_choice",
                                  "Invalid value for 'tool_choice': expected {\"type\":\"function\","
                                  "\"function\":{\"name\":...}}.");

  named = json_object_new ();
  json_object_set_string_member (named, "type", "function");
  json_object_set_string_member (named, "name", name);
  json_object_set_object_member (body, "tool_choice", named);

  return NULL;
}

static PoolerV1Problem *
translate_response_format (JsonObject *format,
                           JsonObject *text)
{
  const char *type = pooler_json_get_string (format, "type");
  JsonObject *result;

  if (g_strcmp0 (type, "text") == 0)
    return NULL;

  result = json_object_new ();
  if (g_strcmp0 (type, "json_object") == 0)
    json_object_set_string_member (result, "type", "json_object");
  else if (g_strcmp0 (type, "json_schema") == 0 && object_member (format, "json_schema") != NULL &&
           pooler_json_get_string (object_member (format, "json_schema"), "name") != NULL)
    {
      JsonObject *schema = object_member (format, "json_schema");
      JsonObjectIter iter;
      const char *name;
      JsonNode *member;

      /* Chat nests the schema; Responses flattens it into the format. */
      json_object_set_string_member (result, "type", "json_schema");
      json_object_iter_init (&iter, schema);
      while (json_object_iter_next (&iter, &name, &member))
        json_object_set_member (result, name, json_node_copy (member));
    }
  else
    {
      json_object_unref (result);
      return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_value", "response_format",
                                    "Invalid value for 'response_format': expected type text, "
                                    "json_object or json_schema (with a name).");
    }

  json_object_set_object_member (text, "format", result);
  return NULL;
}

PoolerV1Request *
pooler_v1_chat_translate_request (JsonObject       *request,
                                  PoolerV1Problem **problem)
{
  g_autoptr(JsonObject) body = NULL;
  g_autoptr(JsonObject) text = json_object_new ();
  PoolerV1Request *result;
  g_autoptr(GString) instructions = g_string_new (NULL);
  JsonArray *messages;
  JsonArray *input;

  g_return_val_if_fail (request != NULL, NULL);
  g_return_val_if_fail (problem != NULL && *problem == NULL, NULL);

  if ((*problem = check_fields (request)) != NULL || (*problem = check_types (request)) != NULL)
    return NULL;

  body = json_object_new ();
  json_object_set_string_member (body, "model", json_object_get_string_member (request, "model"));

  input = json_array_new ();
  json_object_set_array_member (body, "input", input);
  messages = json_object_get_array_member (request, "messages");
  for (guint i = 0; i < json_array_get_length (messages); i++)
    if ((*problem = translate_message (json_array_get_element (messages, i), i, input, instructions)) != NULL)
      return NULL;

  if (pooler_v1_member_present (request, "tools"))
    {
      JsonArray *tools = json_array_new ();

      json_object_set_array_member (body, "tools", tools);
      if ((*problem = translate_tools (json_object_get_array_member (request, "tools"), tools)) != NULL)
        return NULL;
    }
  if (pooler_v1_member_present (request, "tool_choice") &&
      (*problem = translate_tool_choice (json_object_get_member (request, "tool_choice"), body)) != NULL)
    return NULL;
  if (pooler_v1_member_present (request, "parallel_tool_calls"))
    json_object_set_boolean_member (body, "parallel_tool_calls",
                                    json_object_get_boolean_member (request, "parallel_tool_calls"));
  if (pooler_v1_member_present (request, "reasoning_effort"))
    {
      JsonObject *reasoning = json_object_new ();

      json_object_set_string_member (reasoning, "effort",
                                     json_object_get_string_member (request, "reasoning_effort"));
      json_object_set_object_member (body, "reasoning", reasoning);
    }
  if (pooler_v1_member_present (request, "response_format") &&
      (*problem = translate_response_format (json_object_get_object_member (request, "response_format"),
                                             text)) != NULL)
    return NULL;
  if (pooler_v1_member_present (request, "verbosity"))
    json_object_set_string_member (text, "verbosity", json_object_get_string_member (request, "verbosity"));
  if (json_object_get_size (text) > 0)
    json_object_set_object_member (body, "text", json_object_ref (text));
  if (pooler_v1_member_present (request, "prompt_cache_key"))
    json_object_set_string_member (body, "prompt_cache_key",
                                   json_object_get_string_member (request, "prompt_cache_key"));
  pooler_v1_copy_service_tier (request, body);

  result = pooler_v1_request_new (request, body, instructions->str, NULL);
  if (pooler_v1_member_present (request, "stream_options"))
    result->include_usage = json_object_get_boolean_member_with_default (
      json_object_get_object_member (request, "stream_options"), "include_usage", FALSE);

  return result;
}

/* ---- the answer ------------------------------------------------------- */

typedef struct
{
  guint    index;
  gboolean arguments_sent;
} ToolCall;

typedef struct
{
  gboolean           stream;
  gboolean           include_usage;
  char              *request_model;
  char              *model;
  char              *id;
  gint64             created;
  gboolean           role_sent;
  gboolean           ended;
  guint              tool_calls;
  GHashTable        *tools;          /* item id -> ToolCall */
  PoolerV1Collector *collector;
} ChatTranslator;

static void
chat_translator_free (gpointer data)
{
  ChatTranslator *self = data;

  g_free (self->request_model);
  g_free (self->model);
  g_free (self->id);
  g_hash_table_unref (self->tools);
  pooler_v1_collector_free (self->collector);
  g_free (self);
}

static const char *
chat_content_type (gpointer data)
{
  ChatTranslator *self = data;

  return self->stream ? "text/event-stream" : "application/json";
}

static void
chat_start (ChatTranslator *self,
            JsonObject     *response)
{
  const char *id = pooler_json_get_string (response, "id");
  const char *model = pooler_json_get_string (response, "model");

  g_free (self->id);
  g_free (self->model);
  if (id != NULL && g_str_has_prefix (id, "resp_"))
    id += strlen ("resp_");
  self->id = id != NULL ? g_strconcat ("chatcmpl-", id, NULL) : NULL;
  self->model = g_strdup (model);
  if (response != NULL && json_object_has_member (response, "created_at"))
    self->created = json_object_get_int_member (response, "created_at");
}

static void
chat_ensure_identity (ChatTranslator *self)
{
  if (self->id == NULL)
    {
      g_autofree char *uuid = g_uuid_string_random ();
      g_auto(GStrv) parts = g_strsplit (uuid, "-", -1);
      g_autofree char *hex = g_strjoinv ("", parts);

      self->id = g_strconcat ("chatcmpl-", hex, NULL);
    }
  if (self->created == 0)
    self->created = g_get_real_time () / G_USEC_PER_SEC;
}

static JsonObject *
chunk_new (ChatTranslator *self)
{
  JsonObject *chunk = json_object_new ();

  chat_ensure_identity (self);
  json_object_set_string_member (chunk, "id", self->id);
  json_object_set_string_member (chunk, "object", "chat.completion.chunk");
  json_object_set_int_member (chunk, "created", self->created);
  json_object_set_string_member (chunk, "model", self->model != NULL ? self->model : self->request_model);

  return chunk;
}

/* Takes @delta. */
static void
append_delta (ChatTranslator *self,
              GByteArray     *out,
              JsonObject     *delta,
              const char     *finish_reason)
{
  g_autoptr(JsonObject) chunk = chunk_new (self);
  JsonArray *choices = json_array_new ();
  JsonObject *choice = json_object_new ();

  json_object_set_int_member (choice, "index", 0);
  json_object_set_object_member (choice, "delta", delta);
  if (finish_reason != NULL)
    json_object_set_string_member (choice, "finish_reason", finish_reason);
  else
    json_object_set_null_member (choice, "finish_reason");
  json_array_add_object_element (choices, choice);
  json_object_set_array_member (chunk, "choices", choices);

  pooler_v1_sse_append_object (out, NULL, chunk);
}

static void
ensure_role (ChatTranslator *self,
             GByteArray     *out)
{
  JsonObject *delta;

  if (self->role_sent)
    return;

  delta = json_object_new ();
  json_object_set_string_member (delta, "role", "assistant");
  json_object_set_string_member (delta, "content", "");
  append_delta (self, out, delta, NULL);
  self->role_sent = TRUE;
}

/* Takes @function. */
static void
append_tool_delta (ChatTranslator *self,
                   GByteArray     *out,
                   guint           index,
                   const char     *call_id,
                   JsonObject     *function)
{
  JsonObject *delta = json_object_new ();
  JsonArray *calls = json_array_new ();
  JsonObject *call = json_object_new ();

  json_object_set_int_member (call, "index", index);
  if (call_id != NULL)
    {
      json_object_set_string_member (call, "id", call_id);
      json_object_set_string_member (call, "type", "function");
    }
  json_object_set_object_member (call, "function", function);
  json_array_add_object_element (calls, call);
  json_object_set_array_member (delta, "tool_calls", calls);
  append_delta (self, out, delta, NULL);
}

static char *
tool_key (JsonObject *event,
          JsonObject *item)
{
  const char *id = item != NULL ? pooler_json_get_string (item, "id") : pooler_json_get_string (event, "item_id");

  if (id != NULL)
    return g_strdup (id);

  return g_strdup_printf ("#%" G_GINT64_FORMAT,
                          json_object_get_int_member_with_default (event, "output_index", -1));
}

static ToolCall *
tool_call_new (ChatTranslator *self,
               char           *key)
{
  ToolCall *call = g_new0 (ToolCall, 1);

  call->index = self->tool_calls++;
  g_hash_table_insert (self->tools, key, call);

  return call;
}

static void
chat_stream_event (ChatTranslator *self,
                   const char     *type,
                   JsonObject     *event,
                   GByteArray     *out)
{
  JsonObject *item = object_member (event, "item");

  if (strcmp (type, "response.output_text.delta") == 0)
    {
      const char *text = pooler_json_get_string (event, "delta");
      JsonObject *delta;

      if (text == NULL || *text == '\0')
        return;
      ensure_role (self, out);
      delta = json_object_new ();
      json_object_set_string_member (delta, "content", text);
      append_delta (self, out, delta, NULL);
    }
  else if (strcmp (type, "response.output_item.added") == 0 &&
           g_strcmp0 (pooler_json_get_string (item, "type"), "function_call") == 0)
    {
      ToolCall *call = tool_call_new (self, tool_key (event, item));
      JsonObject *function = json_object_new ();
      const char *arguments = pooler_json_get_string (item, "arguments");

      ensure_role (self, out);
      json_object_set_string_member (function, "name", pooler_json_get_string (item, "name") != NULL
                                                       ? pooler_json_get_string (item, "name") : "");
      json_object_set_string_member (function, "arguments", arguments != NULL ? arguments : "");
      call->arguments_sent = arguments != NULL && *arguments != '\0';
      append_tool_delta (self, out, call->index, pooler_json_get_string (item, "call_id"), function);
    }
  else if (strcmp (type, "response.function_call_arguments.delta") == 0)
    {
      g_autofree char *key = tool_key (event, NULL);
      ToolCall *call = g_hash_table_lookup (self->tools, key);
      const char *text = pooler_json_get_string (event, "delta");
      JsonObject *function;

      if (call == NULL || text == NULL)
        return;
      call->arguments_sent = TRUE;
      function = json_object_new ();
      json_object_set_string_member (function, "arguments", text);
      append_tool_delta (self, out, call->index, NULL, function);
    }
  else if (strcmp (type, "response.output_item.done") == 0 &&
           g_strcmp0 (pooler_json_get_string (item, "type"), "function_call") == 0)
    {
      g_autofree char *key = tool_key (event, item);
      ToolCall *call = g_hash_table_lookup (self->tools, key);
      const char *arguments = pooler_json_get_string (item, "arguments");
      JsonObject *function;

      /* The call came whole, or its arguments did not stream. */
      if (call == NULL)
        {
          ensure_role (self, out);
          call = tool_call_new (self, g_steal_pointer (&key));
          function = json_object_new ();
          json_object_set_string_member (function, "name", pooler_json_get_string (item, "name") != NULL
                                                           ? pooler_json_get_string (item, "name") : "");
          json_object_set_string_member (function, "arguments", arguments != NULL ? arguments : "");
          append_tool_delta (self, out, call->index, pooler_json_get_string (item, "call_id"), function);
          call->arguments_sent = TRUE;
        }
      else if (!call->arguments_sent && arguments != NULL && *arguments != '\0')
        {
          function = json_object_new ();
          json_object_set_string_member (function, "arguments", arguments);
          append_tool_delta (self, out, call->index, NULL, function);
          call->arguments_sent = TRUE;
        }
    }
}

/* A new stream (a failover's): nothing of the last one counts. */
static void
chat_reset (gpointer data)
{
  ChatTranslator *self = data;

  pooler_v1_collector_reset (self->collector);
  g_hash_table_remove_all (self->tools);
  self->tool_calls = 0;
  self->role_sent = FALSE;
  self->ended = FALSE;
}

static void
chat_event (gpointer    data,
            const char *type,
            const char *json,
            gsize       length,
            GByteArray *out)
{
  ChatTranslator *self = data;
  g_autoptr(JsonObject) event = pooler_json_parse_object (json, length, NULL);

  if (event == NULL)
    return;

  if (strcmp (type, "response.created") == 0)
    {
      chat_reset (self);
      chat_start (self, object_member (event, "response"));
    }

  pooler_v1_collector_event (self->collector, type, event);

  if (!self->stream || self->ended)
    return;

  if (strcmp (type, "response.created") == 0)
    ensure_role (self, out);
  else
    chat_stream_event (self, type, event, out);
}

static JsonObject *
chat_usage (JsonObject *response)
{
  JsonObject *usage = object_member (response, "usage");
  JsonObject *result;
  gint64 prompt;
  gint64 completion;

  if (usage == NULL)
    return NULL;

  prompt = json_object_get_int_member_with_default (usage, "input_tokens", 0);
  completion = json_object_get_int_member_with_default (usage, "output_tokens", 0);

  result = json_object_new ();
  json_object_set_int_member (result, "prompt_tokens", prompt);
  json_object_set_int_member (result, "completion_tokens", completion);
  json_object_set_int_member (result, "total_tokens",
                              json_object_get_int_member_with_default (usage, "total_tokens", prompt + completion));
  if (object_member (usage, "input_tokens_details") != NULL)
    {
      JsonObject *details = json_object_new ();

      json_object_set_int_member (details, "cached_tokens",
                                  json_object_get_int_member_with_default (
                                    object_member (usage, "input_tokens_details"), "cached_tokens", 0));
      json_object_set_object_member (result, "prompt_tokens_details", details);
    }
  if (object_member (usage, "output_tokens_details") != NULL)
    {
      JsonObject *details = json_object_new ();

      json_object_set_int_member (details, "reasoning_tokens",
                                  json_object_get_int_member_with_default (
                                    object_member (usage, "output_tokens_details"), "reasoning_tokens", 0));
      json_object_set_object_member (result, "completion_tokens_details", details);
    }

  return result;
}

static const char *
finish_reason (JsonObject *response,
               gboolean    tool_calls)
{
  const char *reason;

  if (tool_calls)
    return "tool_calls";
  if (g_strcmp0 (pooler_json_get_string (response, "status"), "incomplete") != 0)
    return "stop";

  reason = pooler_json_get_string (object_member (response, "incomplete_details"), "reason");
  return g_strcmp0 (reason, "content_filter") == 0 ? "content_filter" : "length";
}

/* The chat.completion for an assembled Response. */
static JsonObject *
chat_completion (ChatTranslator *self,
                 JsonObject     *response)
{
  g_autoptr(GString) text = g_string_new (NULL);
  g_autoptr(GString) refusal = g_string_new (NULL);
  JsonArray *output = json_object_get_array_member (response, "output");
  JsonArray *tool_calls = json_array_new ();
  JsonObject *completion = json_object_new ();
  JsonObject *message = json_object_new ();
  JsonObject *choice = json_object_new ();
  JsonArray *choices = json_array_new ();
  JsonObject *usage;

  for (guint i = 0; output != NULL && i < json_array_get_length (output); i++)
    {
      JsonNode *node = json_array_get_element (output, i);
      JsonObject *item = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      const char *type = pooler_json_get_string (item, "type");

      if (g_strcmp0 (type, "message") == 0 && json_object_has_member (item, "content") &&
          JSON_NODE_HOLDS_ARRAY (json_object_get_member (item, "content")))
        {
          JsonArray *content = json_object_get_array_member (item, "content");

          for (guint j = 0; j < json_array_get_length (content); j++)
            {
              JsonNode *part_node = json_array_get_element (content, j);
              JsonObject *part = JSON_NODE_HOLDS_OBJECT (part_node) ? json_node_get_object (part_node) : NULL;

              if (g_strcmp0 (pooler_json_get_string (part, "type"), "output_text") == 0 && pooler_json_get_string (part, "text"))
                g_string_append (text, pooler_json_get_string (part, "text"));
              else if (g_strcmp0 (pooler_json_get_string (part, "type"), "refusal") == 0 && pooler_json_get_string (part, "refusal"))
                g_string_append (refusal, pooler_json_get_string (part, "refusal"));
            }
        }
      else if (g_strcmp0 (type, "function_call") == 0)
        {
          JsonObject *call = json_object_new ();
          JsonObject *function = json_object_new ();
          const char *arguments = pooler_json_get_string (item, "arguments");

          json_object_set_string_member (call, "id", pooler_json_get_string (item, "call_id") != NULL
                                                     ? pooler_json_get_string (item, "call_id") : "");
          json_object_set_string_member (call, "type", "function");
          json_object_set_string_member (function, "name", pooler_json_get_string (item, "name") != NULL
                                                           ? pooler_json_get_string (item, "name") : "");
          json_object_set_string_member (function, "arguments", arguments != NULL ? arguments : "");
          json_object_set_object_member (call, "function", function);
          json_array_add_object_element (tool_calls, call);
        }
    }

  chat_ensure_identity (self);
  json_object_set_string_member (completion, "id", self->id);
  json_object_set_string_member (completion, "object", "chat.completion");
  json_object_set_int_member (completion, "created", self->created);
  json_object_set_string_member (completion, "model", self->model != NULL ? self->model : self->request_model);

  json_object_set_string_member (message, "role", "assistant");
  if (text->len > 0 || json_array_get_length (tool_calls) == 0)
    json_object_set_string_member (message, "content", text->str);
  else
    json_object_set_null_member (message, "content");
  if (refusal->len > 0)
    json_object_set_string_member (message, "refusal", refusal->str);
  else
    json_object_set_null_member (message, "refusal");

  json_object_set_int_member (choice, "index", 0);
  json_object_set_string_member (choice, "finish_reason",
                                 finish_reason (response, json_array_get_length (tool_calls) > 0));
  if (json_array_get_length (tool_calls) > 0)
    json_object_set_array_member (message, "tool_calls", tool_calls);
  else
    json_array_unref (tool_calls);
  json_object_set_object_member (choice, "message", message);
  json_object_set_null_member (choice, "logprobs");
  json_array_add_object_element (choices, choice);
  json_object_set_array_member (completion, "choices", choices);

  if ((usage = chat_usage (response)) != NULL)
    json_object_set_object_member (completion, "usage", usage);

  return completion;
}

static void
append_error_chunk (GByteArray *out,
                    const char *code,
                    const char *message)
{
  g_autoptr(GBytes) body = NULL;
  guint status = SOUP_STATUS_BAD_GATEWAY;

  body = pooler_v1_error_translate (&status, NULL, code != NULL ? code : "upstream_failed",
                                    message != NULL ? message
                                                    : "The upstream could not complete the response.");
  pooler_v1_sse_append (out, NULL, g_bytes_get_data (body, NULL), g_bytes_get_size (body));
}

static void
chat_finish (gpointer    data,
             gboolean    completed,
             GByteArray *out)
{
  ChatTranslator *self = data;
  g_autoptr(JsonObject) response = pooler_v1_collector_build_response (self->collector);

  if (!self->stream)
    {
      if (response != NULL)
        {
          g_autoptr(JsonObject) completion = chat_completion (self, response);
          g_autoptr(GBytes) bytes = pooler_v1_object_to_bytes (completion);

          g_byte_array_append (out, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
        }
      return;
    }

  if (self->ended)
    return;
  self->ended = TRUE;

  if (response == NULL)
    {
      /* The SDKs raise an APIError for a chunk with an "error" member. */
      if (pooler_v1_collector_get_terminal (self->collector) != NULL)
        append_error_chunk (out, pooler_v1_collector_get_failure_code (self->collector),
                            pooler_v1_collector_get_failure_message (self->collector));
      else
        append_error_chunk (out, "stream_incomplete",
                            "The upstream stream broke off before the response was complete.");
      return;
    }

  ensure_role (self, out);
  append_delta (self, out, json_object_new (), finish_reason (response, self->tool_calls > 0));

  if (self->include_usage)
    {
      g_autoptr(JsonObject) chunk = chunk_new (self);
      JsonObject *usage = chat_usage (response);

      json_object_set_array_member (chunk, "choices", json_array_new ());
      if (usage != NULL)
        json_object_set_object_member (chunk, "usage", usage);
      else
        json_object_set_null_member (chunk, "usage");
      pooler_v1_sse_append_object (out, NULL, chunk);
    }

  g_byte_array_append (out, (const guint8 *) "data: [DONE]\n\n", strlen ("data: [DONE]\n\n"));
}

static GBytes *
chat_error (gpointer  data,
            guint    *status,
            GBytes   *body)
{
  ChatTranslator *self = data;

  if (*status == SOUP_STATUS_BAD_GATEWAY)
    {
      if (!self->stream &&
          g_strcmp0 (pooler_v1_collector_get_terminal (self->collector), "response.incomplete") == 0)
        {
          g_autoptr(JsonObject) response = pooler_v1_collector_build_response (self->collector);

          if (response != NULL)
            {
              g_autoptr(JsonObject) completion = chat_completion (self, response);

              *status = SOUP_STATUS_OK;
              return pooler_v1_object_to_bytes (completion);
            }
        }
      if (pooler_v1_collector_get_failure_code (self->collector) != NULL ||
          pooler_v1_collector_get_failure_message (self->collector) != NULL)
        return pooler_v1_error_translate (status, body,
                                          pooler_v1_collector_get_failure_code (self->collector),
                                          pooler_v1_collector_get_failure_message (self->collector));
    }

  return pooler_v1_error_translate (status, body, NULL, NULL);
}

static const PoolerTranslatorFuncs chat_funcs = {
  .content_type = chat_content_type,
  .event = chat_event,
  .finish = chat_finish,
  .error = chat_error,
  .reset = chat_reset,
};

PoolerTranslator *
pooler_v1_chat_translator_new (gboolean    stream,
                               gboolean    include_usage,
                               const char *model)
{
  PoolerTranslator *translator = g_new0 (PoolerTranslator, 1);
  ChatTranslator *self = g_new0 (ChatTranslator, 1);

  self->stream = stream;
  self->include_usage = include_usage;
  self->request_model = g_strdup (model);
  self->tools = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->collector = pooler_v1_collector_new ();

  translator->funcs = &chat_funcs;
  translator->data = self;
  translator->destroy = chat_translator_free;
  translator->collect = !stream;

  return translator;
}
