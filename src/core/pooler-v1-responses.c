/* pooler-v1-responses.c: POST /v1/responses.
 *
 * The request becomes a Codex backend request: the fields the backend
 * takes are kept, the ones it rejects (max_output_tokens, temperature,
 * top_p ...) dropped, system/developer text lifted into "instructions", a
 * string input made a message list. Fields that would silently change the
 * meaning of the call (previous_response_id: nothing is stored upstream)
 * are refused with 400 instead.
 *
 * The answer is the upstream's own event stream, or (without "stream")
 * the final Response object assembled from it.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-v1"

#include "config.h"

#include <string.h>

#include "pooler-json.h"
#include "pooler-v1-private.h"

/* Kept and forwarded (after the checks below). */
static const char * const forwarded_fields[] = {
  "model", "input", "instructions", "include", "tools", "tool_choice", "parallel_tool_calls",
  "reasoning", "text", "prompt_cache_key", "service_tier", NULL,
};
/* Accepted and dropped: the backend rejects them or has no use for them. */
static const char * const dropped_fields[] = {
  "max_output_tokens", "temperature", "top_p", "top_logprobs", "truncation", "user", "metadata",
  "safety_identifier", "prompt_cache_retention", "prompt_cache_options", "stream_options",
  "client_metadata", "max_tool_calls", "store", "stream", "background", NULL,
};

static PoolerV1Problem *
check_fields (JsonObject *request)
{
  JsonObjectIter iter;
  const char *name;
  JsonNode *node;

  json_object_iter_init (&iter, request);
  while (json_object_iter_next (&iter, &name, &node))
    {
      if (g_strv_contains (forwarded_fields, name) || g_strv_contains (dropped_fields, name))
        continue;
      if (JSON_NODE_HOLDS_NULL (node))
        continue;
      if (strcmp (name, "previous_response_id") == 0 || strcmp (name, "conversation") == 0)
        return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "unsupported_parameter", name,
                                      "Unsupported parameter: '%s'. The Pool does not store "
                                      "responses; send the whole conversation as input.", name);
      return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "unsupported_parameter", name,
                                    "Unsupported parameter: '%s'.", name);
    }

  /* A background response would have to be stored and polled. */
  if (pooler_v1_member_present (request, "background"))
    {
      node = json_object_get_member (request, "background");
      if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
        return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_type", "background",
                                      "Invalid type for 'background': expected a boolean.");
      if (json_node_get_boolean (node))
        return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "unsupported_parameter", "background",
                                      "Unsupported parameter: 'background' must be false here.");
    }

  return NULL;
}

static PoolerV1Problem *
check_types (JsonObject *request)
{
  static const PoolerV1TypeCheck checks[] = {
    { "stream", JSON_NODE_VALUE, G_TYPE_BOOLEAN, "a boolean" },
    { "store", JSON_NODE_VALUE, G_TYPE_BOOLEAN, "a boolean" },
    { "instructions", JSON_NODE_VALUE, G_TYPE_STRING, "a string" },
    { "include", JSON_NODE_ARRAY, G_TYPE_INVALID, "an array of strings" },
    { "tools", JSON_NODE_ARRAY, G_TYPE_INVALID, "an array" },
    { "parallel_tool_calls", JSON_NODE_VALUE, G_TYPE_BOOLEAN, "a boolean" },
    { "reasoning", JSON_NODE_OBJECT, G_TYPE_INVALID, "an object" },
    { "text", JSON_NODE_OBJECT, G_TYPE_INVALID, "an object" },
    { "prompt_cache_key", JSON_NODE_VALUE, G_TYPE_STRING, "a string" },
    { "service_tier", JSON_NODE_VALUE, G_TYPE_STRING, "a string" },
    { "max_output_tokens", JSON_NODE_VALUE, G_TYPE_INT64, "an integer" },
    { "temperature", JSON_NODE_VALUE, G_TYPE_DOUBLE, "a number" },
    { "top_p", JSON_NODE_VALUE, G_TYPE_DOUBLE, "a number" },
  };
  PoolerV1Problem *problem;
  JsonNode *node;

  if ((problem = pooler_v1_check_model (request)) != NULL)
    return problem;

  node = json_object_get_member (request, "input");
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "missing_required_parameter", "input",
                                  "Missing required parameter: 'input'.");
  if (!JSON_NODE_HOLDS_ARRAY (node) &&
      !(JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING))
    return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_type", "input",
                                  "Invalid type for 'input': expected a string or an array of items.");

  if ((problem = pooler_v1_check_types (request, checks, G_N_ELEMENTS (checks))) != NULL)
    return problem;

  if (pooler_v1_member_present (request, "include"))
    {
      JsonArray *include = json_object_get_array_member (request, "include");

      for (guint i = 0; i < json_array_get_length (include); i++)
        {
          JsonNode *element = json_array_get_element (include, i);

          if (!JSON_NODE_HOLDS_VALUE (element) || json_node_get_value_type (element) != G_TYPE_STRING)
            return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_type", "include",
                                          "Invalid type for 'include[%u]': expected a string.", i);
        }
    }

  if (pooler_v1_member_present (request, "tools"))
    {
      JsonArray *tools = json_object_get_array_member (request, "tools");

      for (guint i = 0; i < json_array_get_length (tools); i++)
        {
          JsonNode *element = json_array_get_element (tools, i);

          if (!JSON_NODE_HOLDS_OBJECT (element) ||
              json_object_get_string_member_with_default (json_node_get_object (element), "type", NULL) == NULL)
            return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_type", "tools",
                                          "Invalid type for 'tools[%u]': expected an object with a \"type\".", i);
        }
    }

  return pooler_v1_check_tool_choice (request);
}

/* Plain text of a content list, when every part is text. */
static gboolean
content_text (JsonArray *content,
              GString   *text)
{
  for (guint i = 0; i < json_array_get_length (content); i++)
    {
      JsonNode *part = json_array_get_element (content, i);
      const char *type;
      const char *part_text;

      if (!JSON_NODE_HOLDS_OBJECT (part))
        return FALSE;
      type = json_object_get_string_member_with_default (json_node_get_object (part), "type", "");
      part_text = json_object_get_string_member_with_default (json_node_get_object (part), "text", NULL);
      if ((strcmp (type, "input_text") != 0 && strcmp (type, "text") != 0) || part_text == NULL)
        return FALSE;
      if (text->len > 0 && i > 0)
        g_string_append_c (text, '\n');
      g_string_append (text, part_text);
    }

  return TRUE;
}

static JsonArray *
text_content (const char *part_type,
              const char *text)
{
  JsonArray *content = json_array_new ();

  json_array_add_object_element (content, pooler_v1_text_part (part_type, text));

  return content;
}

/* One input item to the list the backend takes; system and developer text
 * goes to @instructions instead. */
static PoolerV1Problem *
translate_item (JsonNode   *node,
                guint       index,
                JsonArray  *input,
                GString    *instructions)
{
  JsonObject *item;
  JsonObject *message;
  JsonNode *content;
  const char *type;
  const char *role;
  g_autofree char *param = g_strdup_printf ("input[%u]", index);

  if (!JSON_NODE_HOLDS_OBJECT (node))
    return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_type", param,
                                  "Invalid type for '%s': expected an object.", param);

  item = json_node_get_object (node);
  type = pooler_json_get_string (item, "type");
  if (!json_object_has_member (item, "role") || (type != NULL && strcmp (type, "message") != 0))
    {
      if (type == NULL)
        return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "missing_required_parameter", param,
                                      "Missing required parameter: '%s.type'.", param);
      /* function_call, function_call_output, reasoning ...: as they are. */
      json_array_add_element (input, json_node_copy (node));
      return NULL;
    }

  role = pooler_json_get_string (item, "role");
  content = json_object_get_member (item, "content");
  if (role == NULL)
    return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_type", param,
                                  "Invalid type for '%s.role': expected a string.", param);
  if (content == NULL || (!JSON_NODE_HOLDS_ARRAY (content) &&
                          !(JSON_NODE_HOLDS_VALUE (content) &&
                            json_node_get_value_type (content) == G_TYPE_STRING)))
    return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_type", param,
                                  "Invalid type for '%s.content': expected a string or an array.", param);

  if (strcmp (role, "system") == 0 || strcmp (role, "developer") == 0)
    {
      g_autoptr(GString) text = g_string_new (NULL);

      if (JSON_NODE_HOLDS_VALUE (content))
        {
          pooler_v1_append_instructions (instructions, json_node_get_string (content));
          return NULL;
        }
      if (content_text (json_node_get_array (content), text))
        {
          pooler_v1_append_instructions (instructions, text->str);
          return NULL;
        }
      /* Images and files cannot be instructions; the backend takes no
       * system items, so they stay as a developer message. */
      json_array_add_object_element (input, pooler_v1_message_item ("developer",
                                                                    json_array_ref (json_node_get_array (content))));
      return NULL;
    }

  if (strcmp (role, "user") != 0 && strcmp (role, "assistant") != 0)
    return pooler_v1_problem_new (SOUP_STATUS_BAD_REQUEST, "invalid_value", param,
                                  "Invalid value for '%s.role': '%s' is not one of user, assistant, "
                                  "system, developer.", param, role);

  message = pooler_v1_message_item (role, JSON_NODE_HOLDS_VALUE (content)
                                          ? text_content (strcmp (role, "assistant") == 0 ? "output_text"
                                                                                          : "input_text",
                                                          json_node_get_string (content))
                                          : json_array_ref (json_node_get_array (content)));
  if (json_object_has_member (item, "id"))
    json_object_set_member (message, "id", json_node_copy (json_object_get_member (item, "id")));
  if (json_object_has_member (item, "status"))
    json_object_set_member (message, "status", json_node_copy (json_object_get_member (item, "status")));
  json_array_add_object_element (input, message);

  return NULL;
}

PoolerV1Request *
pooler_v1_responses_translate_request (JsonObject       *request,
                                       PoolerV1Problem **problem)
{
  g_autoptr(JsonObject) body = NULL;
  g_autoptr(JsonArray) input = NULL;
  g_autoptr(GString) instructions = g_string_new (NULL);
  PoolerV1Request *result;
  static const char * const passed_on[] = {
    "tools", "tool_choice", "parallel_tool_calls", "reasoning", "text", "prompt_cache_key",
  };
  JsonNode *node;

  g_return_val_if_fail (request != NULL, NULL);
  g_return_val_if_fail (problem != NULL && *problem == NULL, NULL);

  if ((*problem = check_fields (request)) != NULL || (*problem = check_types (request)) != NULL)
    return NULL;

  if (pooler_v1_member_present (request, "instructions"))
    pooler_v1_append_instructions (instructions, json_object_get_string_member (request, "instructions"));

  input = json_array_new ();
  node = json_object_get_member (request, "input");
  if (JSON_NODE_HOLDS_VALUE (node))
    json_array_add_object_element (input, pooler_v1_message_item ("user",
                                                                  text_content ("input_text",
                                                                                json_node_get_string (node))));
  else
    {
      JsonArray *items = json_node_get_array (node);

      for (guint i = 0; i < json_array_get_length (items); i++)
        if ((*problem = translate_item (json_array_get_element (items, i), i, input, instructions)) != NULL)
          return NULL;
    }

  body = json_object_new ();
  json_object_set_string_member (body, "model", json_object_get_string_member (request, "model"));
  json_object_set_array_member (body, "input", json_array_ref (input));
  for (guint i = 0; i < G_N_ELEMENTS (passed_on); i++)
    if (pooler_v1_member_present (request, passed_on[i]))
      json_object_set_member (body, passed_on[i], json_node_copy (json_object_get_member (request, passed_on[i])));

  pooler_v1_copy_service_tier (request, body);

  result = pooler_v1_request_new (request, body, instructions->str,
                                  pooler_v1_member_present (request, "include")
                                  ? json_object_get_array_member (request, "include") : NULL);
  /* The last one: the newest turn's, whose pin has not aged out (an
   * entry lives a day from the answer that made it). */
  for (guint i = json_array_get_length (input); i > 0 && result->state_item_id == NULL; i--)
    {
      JsonNode *item = json_array_get_element (input, i - 1);
      JsonObject *object = JSON_NODE_HOLDS_OBJECT (item) ? json_node_get_object (item) : NULL;

      if (g_strcmp0 (pooler_json_get_string (object, "type"), "reasoning") == 0 &&
          pooler_json_get_string (object, "id") != NULL)
        result->state_item_id = g_strdup (pooler_json_get_string (object, "id"));
    }

  return result;
}

/* ---- the answer ------------------------------------------------------- */

typedef struct
{
  gboolean           stream;
  gboolean           terminal_sent;    /* a terminal event went to the client */
  char              *response_id;
  gint64             sequence;         /* the last sequence_number seen */
  PoolerV1Collector *collector;        /* collect mode only */
} ResponsesTranslator;

static void
responses_translator_free (gpointer data)
{
  ResponsesTranslator *self = data;

  g_free (self->response_id);
  g_clear_pointer (&self->collector, pooler_v1_collector_free);
  g_free (self);
}

static const char *
responses_content_type (gpointer data)
{
  ResponsesTranslator *self = data;

  return self->stream ? "text/event-stream" : "application/json";
}

static gboolean
is_terminal (const char *type)
{
  return strcmp (type, "response.completed") == 0 || strcmp (type, "response.failed") == 0 ||
         strcmp (type, "response.incomplete") == 0 || strcmp (type, "error") == 0 ||
         strcmp (type, "response.done") == 0;
}

static JsonObject *
object_member (JsonObject *object,
               const char *name)
{
  JsonNode *node = json_object_get_member (object, name);

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

static gboolean
output_is_empty (JsonObject *response)
{
  JsonNode *output = json_object_get_member (response, "output");

  return output == NULL || !JSON_NODE_HOLDS_ARRAY (output) ||
         json_array_get_length (json_node_get_array (output)) == 0;
}

/* A new stream (a failover's): nothing of the last one counts. */
static void
responses_reset (gpointer data)
{
  ResponsesTranslator *self = data;

  self->terminal_sent = FALSE;
  self->sequence = -1;
  g_clear_pointer (&self->response_id, g_free);
  pooler_v1_collector_reset (self->collector);
}

static void
responses_event (gpointer    data,
                 const char *type,
                 const char *json,
                 gsize       length,
                 GByteArray *out)
{
  ResponsesTranslator *self = data;

  if (!self->stream)
    {
      g_autoptr(JsonObject) event = pooler_json_parse_object (json, length, NULL);

      if (strcmp (type, "response.created") == 0)
        pooler_v1_collector_reset (self->collector);
      pooler_v1_collector_event (self->collector, type, event);
      return;
    }

  {
    g_autoptr(JsonObject) event = pooler_json_parse_object (json, length, NULL);
    JsonObject *response = event != NULL ? object_member (event, "response") : NULL;

    /* Only what the Responses API streams: the SDK's stream helper throws
     * on an event type it does not know (the backend's codex.rate_limits,
     * which would also show the account's plan and usage). */
    if (!g_str_has_prefix (type, "response.") && strcmp (type, "error") != 0)
      return;

    if (strcmp (type, "response.created") == 0)
      {
        pooler_v1_collector_reset (self->collector);
        self->terminal_sent = FALSE;
        g_clear_pointer (&self->response_id, g_free);
        if (response != NULL)
          self->response_id = g_strdup (pooler_json_get_string (response, "id"));
      }
    pooler_v1_collector_event (self->collector, type, event);
    if (is_terminal (type))
      self->terminal_sent = TRUE;
    if (event != NULL && json_object_has_member (event, "sequence_number"))
      self->sequence = json_object_get_int_member_with_default (event, "sequence_number", self->sequence);

    /* With store false the backend may leave response.completed's output
     * empty (the items came as output_item.done); the SDK takes the
     * response from this event, so it gets them back. */
    if ((strcmp (type, "response.completed") == 0 || strcmp (type, "response.incomplete") == 0) &&
        response != NULL && output_is_empty (response))
      {
        g_autoptr(JsonObject) filled = pooler_v1_collector_build_response (self->collector);

        if (filled != NULL)
          {
            json_object_set_object_member (event, "response", g_steal_pointer (&filled));
            pooler_v1_sse_append_object (out, type, event);
            return;
          }
      }
  }

  pooler_v1_sse_append (out, type, json, length);
}

static void
responses_finish (gpointer    data,
                  gboolean    completed,
                  GByteArray *out)
{
  ResponsesTranslator *self = data;

  if (!self->stream)
    {
      g_autoptr(JsonObject) response = pooler_v1_collector_build_response (self->collector);

      if (response != NULL)
        {
          g_autoptr(GBytes) bytes = pooler_v1_object_to_bytes (response);

          g_byte_array_append (out, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
        }
      return;
    }

  /* The stream broke: end it the way the API ends a failed response, so
   * the client does not wait for a terminal event that never comes. */
  if (!self->terminal_sent)
    {
      g_autoptr(JsonObject) event = json_object_new ();
      JsonObject *response = json_object_new ();
      JsonObject *error = json_object_new ();

      json_object_set_string_member (error, "code", "stream_incomplete");
      json_object_set_string_member (error, "message",
                                     "The upstream stream broke off before the response was complete.");
      if (self->response_id != NULL)
        json_object_set_string_member (response, "id", self->response_id);
      json_object_set_string_member (response, "object", "response");
      json_object_set_string_member (response, "status", "failed");
      json_object_set_object_member (response, "error", error);
      json_object_set_array_member (response, "output", json_array_new ());
      json_object_set_string_member (event, "type", "response.failed");
      json_object_set_object_member (event, "response", response);
      json_object_set_int_member (event, "sequence_number", self->sequence + 1);
      pooler_v1_sse_append_object (out, "response.failed", event);
      self->terminal_sent = TRUE;
    }
}

static GBytes *
responses_error (gpointer  data,
                 guint    *status,
                 GBytes   *body)
{
  ResponsesTranslator *self = data;

  /* The gateway answers a collected stream that ended badly with 502
   * (a streamed one only when its first event failed: nothing went out);
   * what the stream said is better. */
  if (*status == SOUP_STATUS_BAD_GATEWAY)
    {
      /* An incomplete response (max tokens, content filter) is an answer,
       * as the API gives it: 200 with status "incomplete". */
      if (!self->stream &&
          g_strcmp0 (pooler_v1_collector_get_terminal (self->collector), "response.incomplete") == 0)
        {
          g_autoptr(JsonObject) response = pooler_v1_collector_build_response (self->collector);

          if (response != NULL)
            {
              *status = SOUP_STATUS_OK;
              return pooler_v1_object_to_bytes (response);
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

static const PoolerTranslatorFuncs responses_funcs = {
  .content_type = responses_content_type,
  .event = responses_event,
  .finish = responses_finish,
  .error = responses_error,
  .reset = responses_reset,
};

PoolerTranslator *
pooler_v1_responses_translator_new (gboolean stream)
{
  PoolerTranslator *translator = g_new0 (PoolerTranslator, 1);
  ResponsesTranslator *self = g_new0 (ResponsesTranslator, 1);

  self->stream = stream;
  self->sequence = -1;
  /* Streams too: their response.completed may come with an empty output
   * (store is false), filled in from the items seen. */
  self->collector = pooler_v1_collector_new ();

  translator->funcs = &responses_funcs;
  translator->data = self;
  translator->destroy = responses_translator_free;
  translator->collect = !stream;

  return translator;
}
