/* test-v1.c: the /v1 surface. Translations of requests and answers over
 * fixture bodies, errors, validation; then the whole gateway in one
 * process with the fake upstream, reading what reached the upstream.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <string.h>

#include "fake-upstream.h"
#include "pooler-api-error.h"
#include "test-util.h"
#include "pooler-gateway.h"
#include "pooler-json.h"
#include "pooler-service.h"
#include "pooler-sse.h"
#include "pooler-v1-private.h"

/* ---- helpers ------------------------------------------------------------ */

static char *
load_fixture (const char *name,
              gsize      *length)
{
  g_autofree char *path = g_build_filename (g_getenv ("POOLER_FIXTURES_DIR"), name, NULL);
  g_autoptr(GError) error = NULL;
  char *data = NULL;

  g_file_get_contents (path, &data, length, &error);
  g_assert_no_error (error);

  return data;
}

static JsonObject *
parse_object (const char *data,
              gssize      length)
{
  g_autoptr(GError) error = NULL;
  JsonObject *object = pooler_json_parse_object (data, length < 0 ? strlen (data) : (gsize) length, &error);

  g_assert_no_error (error);
  g_assert_nonnull (object);

  return object;
}

static JsonObject *
parse_bytes (GBytes *bytes)
{
  gsize length;
  const char *data = g_bytes_get_data (bytes, &length);

  return parse_object (data, length);
}

static PoolerV1Request *
translate_ok (gboolean    chat,
              const char *json)
{
  g_autoptr(JsonObject) request = parse_object (json, -1);
  g_autoptr(PoolerV1Problem) problem = NULL;
  PoolerV1Request *result = chat ? pooler_v1_chat_translate_request (request, &problem)
                                 : pooler_v1_responses_translate_request (request, &problem);

  if (problem != NULL)
    g_error ("unexpected problem: %s (param %s)", problem->message, problem->param);
  g_assert_nonnull (result);

  return result;
}

static void
assert_problem (gboolean    chat,
                const char *json,
                guint       status,
                const char *code,
                const char *param)
{
  g_autoptr(JsonObject) request = parse_object (json, -1);
  g_autoptr(PoolerV1Problem) problem = NULL;
  g_autoptr(PoolerV1Request) result = chat ? pooler_v1_chat_translate_request (request, &problem)
                                           : pooler_v1_responses_translate_request (request, &problem);
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(JsonObject) error = NULL;

  g_test_message ("%s", json);
  g_assert_null (result);
  g_assert_nonnull (problem);
  g_assert_cmpuint (problem->status, ==, status);
  g_assert_cmpstr (problem->code, ==, code);
  g_assert_cmpstr (problem->param, ==, param);
  g_assert_cmpstr (problem->type, ==, "invalid_request_error");
  g_assert_nonnull (strstr (problem->message, param));

  bytes = pooler_v1_problem_to_bytes (problem);
  error = test_parse_error (bytes);
  g_assert_cmpstr (json_object_get_string_member (error, "param"), ==, param);
}

static JsonObject *
item_at (JsonObject *body,
         guint       index)
{
  return json_array_get_object_element (json_object_get_array_member (body, "input"), index);
}

typedef struct
{
  PoolerTranslator *translator;
  GByteArray       *out;
} Feed;

static void
feed_event (const char *event,
            const char *data,
            gsize       length,
            gpointer    user_data)
{
  Feed *feed = user_data;
  g_autofree char *type = pooler_sse_event_type (event, data, length);

  if (type != NULL)
    feed->translator->funcs->event (feed->translator->data, type, data, length, feed->out);
}

/* Runs @sse through @translator as the proxy would; returns its output. */
static GBytes *
run_translator (PoolerTranslator *translator,
                const char       *sse,
                gsize             length,
                gboolean          completed)
{
  Feed feed = { translator, g_byte_array_new () };
  g_autoptr(PoolerSseParser) parser = pooler_sse_parser_new (feed_event, &feed);

  pooler_sse_parser_feed (parser, sse, length);
  pooler_sse_parser_finish (parser);
  translator->funcs->finish (translator->data, completed, feed.out);

  return g_byte_array_free_to_bytes (feed.out);
}

/* The "data:" payloads of an SSE text, in order. */
static GPtrArray *
data_lines (GBytes *bytes)
{
  gsize length;
  const char *data = g_bytes_get_data (bytes, &length);
  g_autofree char *text = g_strndup (data, length);
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  GPtrArray *result = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], "data: "))
      g_ptr_array_add (result, g_strdup (lines[i] + 6));

  return result;
}

static const char *
delta_string (JsonObject *chunk,
              const char *name)
{
  JsonObject *choice = json_array_get_object_element (json_object_get_array_member (chunk, "choices"), 0);
  JsonObject *delta = json_object_get_object_member (choice, "delta");

  return json_object_get_string_member_with_default (delta, name, NULL);
}

/* ---- requests ----------------------------------------------------------- */

static void
test_unsupported_body (void)
{
  g_autoptr(GBytes) body = pooler_v1_unsupported_body ();
  static const char expected[] =
    "{\"error\":{\"message\":\"Unsupported OpenAI /v1 endpoint\",\"type\":\"invalid_request_error\","
    "\"code\":\"unsupported_endpoint\",\"param\":null}}";

  g_assert_cmpmem (g_bytes_get_data (body, NULL), g_bytes_get_size (body), expected, strlen (expected));
}

/* The SDK's own request (sdk-responses-nonstream.json): a string input. */
static void
test_responses_string_input (void)
{
  g_autoptr(PoolerV1Request) request = translate_ok (FALSE, "{\"model\":\"gpt-5\",\"input\":\"hi\"}");
  g_autoptr(JsonObject) body = parse_bytes (request->body);
  JsonObject *message = item_at (body, 0);
  JsonObject *part;
  JsonArray *include;

  g_assert_cmpstr (request->model, ==, "gpt-5");
  g_assert_false (request->stream);
  g_assert_null (request->prompt_cache_key);

  g_assert_cmpstr (json_object_get_string_member (body, "model"), ==, "gpt-5");
  g_assert_true (json_object_get_boolean_member (body, "stream"));
  g_assert_false (json_object_get_boolean_member (body, "store"));
  g_assert_cmpstr (json_object_get_string_member (body, "instructions"), ==, POOLER_V1_DEFAULT_INSTRUCTIONS);
  include = json_object_get_array_member (body, "include");
  g_assert_cmpuint (json_array_get_length (include), ==, 1);
  g_assert_cmpstr (json_array_get_string_element (include, 0), ==, "reasoning.encrypted_content");

  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (body, "input")), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (message, "type"), ==, "message");
  g_assert_cmpstr (json_object_get_string_member (message, "role"), ==, "user");
  part = json_array_get_object_element (json_object_get_array_member (message, "content"), 0);
  g_assert_cmpstr (json_object_get_string_member (part, "type"), ==, "input_text");
  g_assert_cmpstr (json_object_get_string_member (part, "text"), ==, "hi");
}

static void
test_responses_normalized (void)
{
  g_autoptr(PoolerV1Request) request = translate_ok (FALSE,
    "{\"model\":\"gpt-5.5\",\"stream\":true,\"store\":true,\"instructions\":\"Be brief.\","
    "\"max_output_tokens\":100,\"temperature\":0.2,\"top_p\":1,\"metadata\":{\"a\":\"b\"},"
    "\"prompt_cache_key\":\"thread-1\",\"service_tier\":\"auto\",\"reasoning\":{\"effort\":\"low\"},"
    "\"include\":[\"reasoning.encrypted_content\",\"message.output_text.logprobs\",\"reasoning.encrypted_content\"],"
    "\"tools\":[{\"type\":\"function\",\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\"}}],"
    "\"tool_choice\":\"auto\",\"input\":["
    "{\"role\":\"system\",\"content\":\"You are terse.\"},"
    "{\"role\":\"developer\",\"content\":[{\"type\":\"input_text\",\"text\":\"No emoji.\"}]},"
    "{\"role\":\"user\",\"content\":\"weather?\"},"
    "{\"type\":\"function_call\",\"call_id\":\"call_1\",\"name\":\"get_weather\",\"arguments\":\"{}\"},"
    "{\"type\":\"function_call_output\",\"call_id\":\"call_1\",\"output\":\"sunny\"},"
    "{\"role\":\"assistant\",\"content\":\"It is sunny.\"}]}");
  g_autoptr(JsonObject) body = parse_bytes (request->body);
  JsonArray *input = json_object_get_array_member (body, "input");
  JsonArray *include = json_object_get_array_member (body, "include");
  JsonObject *assistant;

  g_assert_true (request->stream);
  g_assert_cmpstr (request->prompt_cache_key, ==, "thread-1");

  /* Rejected by the backend, or meaningless without storage. */
  for (guint i = 0; i < 5; i++)
    {
      const char *dropped[] = { "max_output_tokens", "temperature", "top_p", "metadata", "service_tier" };

      g_assert_false (json_object_has_member (body, dropped[i]));
    }
  g_assert_false (json_object_get_boolean_member (body, "store"));
  g_assert_true (json_object_get_boolean_member (body, "stream"));

  g_assert_cmpstr (json_object_get_string_member (body, "instructions"), ==,
                   "Be brief.\n\nYou are terse.\n\nNo emoji.");
  g_assert_cmpuint (json_array_get_length (include), ==, 2);
  g_assert_cmpstr (json_array_get_string_element (include, 0), ==, "reasoning.encrypted_content");
  g_assert_cmpstr (json_array_get_string_element (include, 1), ==, "message.output_text.logprobs");
  g_assert_cmpstr (json_object_get_string_member (body, "prompt_cache_key"), ==, "thread-1");
  g_assert_true (json_object_has_member (body, "reasoning"));
  g_assert_true (json_object_has_member (body, "tools"));
  g_assert_cmpstr (json_object_get_string_member (body, "tool_choice"), ==, "auto");

  /* No system item reaches the backend. */
  g_assert_cmpuint (json_array_get_length (input), ==, 4);
  g_assert_cmpstr (json_object_get_string_member (item_at (body, 0), "role"), ==, "user");
  g_assert_cmpstr (json_object_get_string_member (item_at (body, 1), "type"), ==, "function_call");
  g_assert_cmpstr (json_object_get_string_member (item_at (body, 2), "type"), ==, "function_call_output");
  g_assert_cmpstr (json_object_get_string_member (item_at (body, 2), "output"), ==, "sunny");
  assistant = item_at (body, 3);
  g_assert_cmpstr (json_object_get_string_member (assistant, "type"), ==, "message");
  g_assert_cmpstr (json_object_get_string_member (
                     json_array_get_object_element (json_object_get_array_member (assistant, "content"), 0),
                     "type"), ==, "output_text");
}

static void
test_responses_validation (void)
{
  assert_problem (FALSE, "{\"input\":\"hi\"}", 400, "missing_required_parameter", "model");
  assert_problem (FALSE, "{\"model\":5,\"input\":\"hi\"}", 400, "invalid_type", "model");
  assert_problem (FALSE, "{\"model\":\"\",\"input\":\"hi\"}", 400, "invalid_value", "model");
  assert_problem (FALSE, "{\"model\":\"tell me a story\",\"input\":\"hi\"}", 400, "invalid_value", "model");
  assert_problem (TRUE, "{\"model\":\"gpt-5\\n\",\"messages\":[]}", 400, "invalid_value", "model");
  assert_problem (FALSE, "{\"model\":\"gpt-5\"}", 400, "missing_required_parameter", "input");
  assert_problem (FALSE, "{\"model\":\"gpt-5\",\"input\":7}", 400, "invalid_type", "input");
  assert_problem (FALSE, "{\"model\":\"gpt-5\",\"input\":[\"hi\"]}", 400, "invalid_type", "input[0]");
  assert_problem (FALSE, "{\"model\":\"gpt-5\",\"input\":[{\"role\":\"robot\",\"content\":\"x\"}]}",
                  400, "invalid_value", "input[0]");
  assert_problem (FALSE, "{\"model\":\"gpt-5\",\"input\":\"hi\",\"stream\":\"yes\"}", 400, "invalid_type", "stream");
  assert_problem (FALSE, "{\"model\":\"gpt-5\",\"input\":\"hi\",\"tools\":{}}", 400, "invalid_type", "tools");
  assert_problem (FALSE, "{\"model\":\"gpt-5\",\"input\":\"hi\",\"instructions\":[]}", 400, "invalid_type",
                  "instructions");
  assert_problem (FALSE, "{\"model\":\"gpt-5\",\"input\":\"hi\",\"previous_response_id\":\"resp_1\"}", 400,
                  "unsupported_parameter", "previous_response_id");
  assert_problem (FALSE, "{\"model\":\"gpt-5\",\"input\":\"hi\",\"background\":true}", 400,
                  "unsupported_parameter", "background");
  assert_problem (FALSE, "{\"model\":\"gpt-5\",\"input\":\"hi\",\"frobnicate\":1}", 400,
                  "unsupported_parameter", "frobnicate");
}

/* messages -> input, both ways of a tool call, the tool definitions. */
static void
test_chat_request (void)
{
  g_autoptr(PoolerV1Request) request = translate_ok (TRUE,
    "{\"model\":\"gpt-5\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
    "\"max_tokens\":50,\"max_completion_tokens\":50,\"temperature\":0.7,\"top_p\":0.9,\"n\":1,"
    "\"reasoning_effort\":\"low\",\"response_format\":{\"type\":\"json_object\"},"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}],"
    "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},"
    "\"messages\":["
    "{\"role\":\"system\",\"content\":\"You are terse.\"},"
    "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"Answer in JSON.\"}]},"
    "{\"role\":\"user\",\"content\":\"weather in Paris?\"},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_abc\",\"type\":\"function\","
    "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_abc\",\"content\":\"sunny, 21C\"},"
    "{\"role\":\"assistant\",\"content\":\"Sunny.\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"thanks\"},"
    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}}]}]}");
  g_autoptr(JsonObject) body = parse_bytes (request->body);
  JsonArray *input = json_object_get_array_member (body, "input");
  JsonObject *tool;
  JsonObject *call;
  JsonObject *output;
  JsonObject *choice;
  JsonArray *last_content;

  g_assert_true (request->stream);
  g_assert_true (request->include_usage);
  g_assert_false (json_object_has_member (body, "messages"));
  for (guint i = 0; i < 6; i++)
    {
      const char *dropped[] = { "max_tokens", "max_completion_tokens", "temperature", "top_p", "n",
                                "stream_options" };

      g_assert_false (json_object_has_member (body, dropped[i]));
    }
  g_assert_true (json_object_get_boolean_member (body, "stream"));
  g_assert_false (json_object_get_boolean_member (body, "store"));
  g_assert_cmpstr (json_object_get_string_member (body, "instructions"), ==, "You are terse.\n\nAnswer in JSON.");
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (body, "reasoning"), "effort"),
                   ==, "low");
  g_assert_cmpstr (json_object_get_string_member (
                     json_object_get_object_member (json_object_get_object_member (body, "text"), "format"),
                     "type"), ==, "json_object");

  tool = json_array_get_object_element (json_object_get_array_member (body, "tools"), 0);
  g_assert_cmpstr (json_object_get_string_member (tool, "type"), ==, "function");
  g_assert_cmpstr (json_object_get_string_member (tool, "name"), ==, "get_weather");
  g_assert_cmpstr (json_object_get_string_member (tool, "description"), ==, "Weather");
  g_assert_false (json_object_has_member (tool, "function"));
  g_assert_true (json_object_has_member (json_object_get_object_member (tool, "parameters"), "properties"));
  choice = json_object_get_object_member (body, "tool_choice");
  g_assert_cmpstr (json_object_get_string_member (choice, "type"), ==, "function");
  g_assert_cmpstr (json_object_get_string_member (choice, "name"), ==, "get_weather");

  g_assert_cmpuint (json_array_get_length (input), ==, 5);
  g_assert_cmpstr (json_object_get_string_member (item_at (body, 0), "role"), ==, "user");
  call = item_at (body, 1);
  g_assert_cmpstr (json_object_get_string_member (call, "type"), ==, "function_call");
  g_assert_cmpstr (json_object_get_string_member (call, "call_id"), ==, "call_abc");
  g_assert_cmpstr (json_object_get_string_member (call, "name"), ==, "get_weather");
  g_assert_cmpstr (json_object_get_string_member (call, "arguments"), ==, "{\"city\":\"Paris\"}");
  output = item_at (body, 2);
  g_assert_cmpstr (json_object_get_string_member (output, "type"), ==, "function_call_output");
  g_assert_cmpstr (json_object_get_string_member (output, "call_id"), ==, "call_abc");
  g_assert_cmpstr (json_object_get_string_member (output, "output"), ==, "sunny, 21C");
  g_assert_cmpstr (json_object_get_string_member (item_at (body, 3), "role"), ==, "assistant");
  last_content = json_object_get_array_member (item_at (body, 4), "content");
  g_assert_cmpuint (json_array_get_length (last_content), ==, 2);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (last_content, 1), "type"),
                   ==, "input_image");
}

/* The SDK's own chat request (sdk-chat-nonstream.json). */
static void
test_chat_request_sdk_capture (void)
{
  g_autoptr(PoolerV1Request) request = translate_ok (TRUE,
    "{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
  g_autoptr(JsonObject) body = parse_bytes (request->body);

  g_assert_false (request->stream);
  g_assert_false (request->include_usage);
  g_assert_cmpstr (json_object_get_string_member (body, "instructions"), ==, POOLER_V1_DEFAULT_INSTRUCTIONS);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (body, "include")), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (item_at (body, 0), "role"), ==, "user");
}

static void
test_chat_validation (void)
{
  assert_problem (TRUE, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 400,
                  "missing_required_parameter", "model");
  assert_problem (TRUE, "{\"model\":\"gpt-5\"}", 400, "missing_required_parameter", "messages");
  assert_problem (TRUE, "{\"model\":\"gpt-5\",\"messages\":\"hi\"}", 400, "invalid_type", "messages");
  assert_problem (TRUE, "{\"model\":\"gpt-5\",\"messages\":[]}", 400, "invalid_value", "messages");
  assert_problem (TRUE, "{\"model\":\"gpt-5\",\"messages\":[{\"content\":\"hi\"}]}", 400,
                  "missing_required_parameter", "messages[0]");
  assert_problem (TRUE, "{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
                  "{\"role\":\"tool\",\"content\":\"x\"}]}", 400, "missing_required_parameter", "messages[1]");
  assert_problem (TRUE, "{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"function\",\"content\":\"x\"}]}", 400,
                  "invalid_value", "messages[0]");
  assert_problem (TRUE, "{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                  "\"stream\":1}", 400, "invalid_type", "stream");
  assert_problem (TRUE, "{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                  "\"stop\":[\"x\"]}", 400, "unsupported_parameter", "stop");
  assert_problem (TRUE, "{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                  "\"n\":2}", 400, "unsupported_parameter", "n");
  assert_problem (TRUE, "{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                  "\"tools\":[{\"type\":\"custom\",\"custom\":{\"name\":\"x\"}}]}", 400,
                  "unsupported_parameter", "tools[0]");
}

/* ---- answers ------------------------------------------------------------ */

/* Streaming /v1/responses passes the events through in the form the SDK
 * accepted (responses-minimal.sdk.sse). */
static void
test_responses_stream_passthrough (void)
{
  gsize length;
  g_autofree char *sse = load_fixture ("responses-minimal.sdk.sse", &length);
  PoolerTranslator *translator = pooler_v1_responses_translator_new (TRUE);
  g_autoptr(GBytes) out = run_translator (translator, sse, length, TRUE);
  g_autofree char *expected = g_strstrip (g_strndup (sse, length));
  g_autofree char *got = g_strstrip (g_strndup (g_bytes_get_data (out, NULL), g_bytes_get_size (out)));

  g_assert_false (translator->collect);
  g_assert_cmpstr (translator->funcs->content_type (translator->data), ==, "text/event-stream");
  g_assert_cmpstr (got, ==, expected);
  pooler_translator_free (translator);
}

static void
test_responses_stream_broken (void)
{
  static const char sse[] =
    "event: response.created\n"
    "data: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_x\",\"status\":\"in_progress\"},"
    "\"sequence_number\":0}\n\n"
    "event: response.output_text.delta\n"
    "data: {\"type\":\"response.output_text.delta\",\"delta\":\"hel\",\"sequence_number\":1}\n\n";
  PoolerTranslator *translator = pooler_v1_responses_translator_new (TRUE);
  g_autoptr(GBytes) out = run_translator (translator, sse, strlen (sse), FALSE);
  g_autoptr(GPtrArray) lines = data_lines (out);
  g_autoptr(JsonObject) last = NULL;
  JsonObject *response;

  g_assert_cmpuint (lines->len, ==, 3);
  last = parse_object (g_ptr_array_index (lines, 2), -1);
  g_assert_cmpstr (json_object_get_string_member (last, "type"), ==, "response.failed");
  g_assert_cmpint (json_object_get_int_member (last, "sequence_number"), ==, 2);
  response = json_object_get_object_member (last, "response");
  g_assert_cmpstr (json_object_get_string_member (response, "id"), ==, "resp_x");
  g_assert_cmpstr (json_object_get_string_member (response, "status"), ==, "failed");
  g_assert_true (test_bytes_contain (out, "event: response.failed\n"));
  pooler_translator_free (translator);
}

/* Non-streaming /v1/responses: the Response object from response.completed
 * (responses-nonstream.json is what the SDK accepted). */
static void
test_responses_nonstream (void)
{
  gsize length;
  g_autofree char *sse = load_fixture ("responses-full.sse", &length);
  g_autofree char *reference_text = load_fixture ("responses-nonstream.json", NULL);
  g_autoptr(JsonObject) reference = parse_object (reference_text, -1);
  PoolerTranslator *translator = pooler_v1_responses_translator_new (FALSE);
  g_autoptr(GBytes) out = run_translator (translator, sse, length, TRUE);
  g_autoptr(JsonObject) response = parse_bytes (out);
  JsonObject *message;
  JsonObject *usage;
  GList *members;

  g_assert_true (translator->collect);
  g_assert_cmpstr (translator->funcs->content_type (translator->data), ==, "application/json");

  /* Every member the SDK read from the captured answer is here. */
  members = json_object_get_members (reference);
  for (GList *l = members; l != NULL; l = l->next)
    g_assert_true (json_object_has_member (response, l->data));
  g_list_free (members);

  g_assert_cmpstr (json_object_get_string_member (response, "object"), ==, "response");
  g_assert_cmpstr (json_object_get_string_member (response, "id"), ==, "resp_e60822dc0d964ac186c0c00e");
  g_assert_cmpstr (json_object_get_string_member (response, "status"), ==, "completed");
  message = json_array_get_object_element (json_object_get_array_member (response, "output"), 0);
  g_assert_cmpstr (json_object_get_string_member (
                     json_array_get_object_element (json_object_get_array_member (message, "content"), 0),
                     "text"), ==, "hello");
  usage = json_object_get_object_member (response, "usage");
  g_assert_cmpint (json_object_get_int_member (usage, "input_tokens"), ==, 42);
  g_assert_cmpint (json_object_get_int_member (usage, "total_tokens"), ==, 43);
  pooler_translator_free (translator);
}

/* With store:false the backend's response.completed may carry no output:
 * the output_item.done items fill it, in output_index order. */
static void
test_responses_nonstream_fills_output (void)
{
  static const char sse[] =
    "event: response.created\n"
    "data: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_y\",\"output\":[]}}\n\n"
    "event: response.output_item.done\n"
    "data: {\"type\":\"response.output_item.done\",\"output_index\":1,\"item\":{\"type\":\"message\","
    "\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"second\"}]}}\n\n"
    "event: response.output_item.done\n"
    "data: {\"type\":\"response.output_item.done\",\"output_index\":0,\"item\":{\"type\":\"reasoning\","
    "\"id\":\"rs_1\",\"encrypted_content\":\"abc\"}}\n\n"
    "event: response.completed\n"
    "data: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_y\",\"status\":\"completed\","
    "\"output\":[],\"usage\":{\"input_tokens\":3,\"output_tokens\":2,\"total_tokens\":5}}}\n\n";
  PoolerTranslator *translator = pooler_v1_responses_translator_new (FALSE);
  g_autoptr(GBytes) out = run_translator (translator, sse, strlen (sse), TRUE);
  g_autoptr(JsonObject) response = parse_bytes (out);
  JsonArray *output = json_object_get_array_member (response, "output");

  g_assert_cmpuint (json_array_get_length (output), ==, 2);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (output, 0), "type"), ==,
                   "reasoning");
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (output, 1), "type"), ==,
                   "message");
  g_assert_cmpstr (json_object_get_string_member (response, "object"), ==, "response");
  pooler_translator_free (translator);
}

/* responses-full.sse as chat chunks: the shape of chat-completions-stream.sse. */
static void
test_chat_stream (void)
{
  gsize length;
  g_autofree char *sse = load_fixture ("responses-full.sse", &length);
  g_autofree char *reference_text = load_fixture ("chat-completions-stream.sse", NULL);
  g_autoptr(GBytes) reference_bytes = g_bytes_new (reference_text, strlen (reference_text));
  g_autoptr(GPtrArray) reference = data_lines (reference_bytes);
  PoolerTranslator *translator = pooler_v1_chat_translator_new (TRUE, TRUE, "gpt-5");
  g_autoptr(GBytes) out = run_translator (translator, sse, length, TRUE);
  g_autoptr(GPtrArray) lines = data_lines (out);
  g_autoptr(JsonObject) usage_chunk = NULL;
  JsonObject *usage;

  g_assert_cmpstr (translator->funcs->content_type (translator->data), ==, "text/event-stream");
  g_assert_cmpuint (lines->len, ==, reference->len);
  g_assert_cmpstr (g_ptr_array_index (lines, lines->len - 1), ==, "[DONE]");

  for (guint i = 0; i + 1 < lines->len; i++)
    {
      g_autoptr(JsonObject) got = parse_object (g_ptr_array_index (lines, i), -1);
      g_autoptr(JsonObject) expected = parse_object (g_ptr_array_index (reference, i), -1);
      JsonArray *got_choices = json_object_get_array_member (got, "choices");
      JsonArray *expected_choices = json_object_get_array_member (expected, "choices");

      g_assert_cmpstr (json_object_get_string_member (got, "object"), ==, "chat.completion.chunk");
      g_assert_true (g_str_has_prefix (json_object_get_string_member (got, "id"), "chatcmpl-"));
      g_assert_true (json_object_has_member (got, "created"));
      g_assert_true (json_object_has_member (got, "model"));
      g_assert_cmpuint (json_array_get_length (got_choices), ==, json_array_get_length (expected_choices));
      if (json_array_get_length (expected_choices) > 0)
        {
          JsonObject *g = json_array_get_object_element (got_choices, 0);
          JsonObject *e = json_array_get_object_element (expected_choices, 0);

          g_assert_cmpstr (json_object_get_string_member (g, "finish_reason"), ==,
                           json_object_get_string_member (e, "finish_reason"));
          g_assert_cmpstr (delta_string (got, "role"), ==, delta_string (expected, "role"));
          g_assert_cmpstr (delta_string (got, "content"), ==, delta_string (expected, "content"));
        }
    }

  usage_chunk = parse_object (g_ptr_array_index (lines, lines->len - 2), -1);
  usage = json_object_get_object_member (usage_chunk, "usage");
  g_assert_cmpint (json_object_get_int_member (usage, "prompt_tokens"), ==, 42);
  g_assert_cmpint (json_object_get_int_member (usage, "completion_tokens"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (usage, "total_tokens"), ==, 43);
  pooler_translator_free (translator);
}

/* Without include_usage there is no usage chunk. */
static void
test_chat_stream_no_usage (void)
{
  gsize length;
  g_autofree char *sse = load_fixture ("responses-minimal.sse", &length);
  PoolerTranslator *translator = pooler_v1_chat_translator_new (TRUE, FALSE, "gpt-5");
  g_autoptr(GBytes) out = run_translator (translator, sse, length, TRUE);
  g_autoptr(GPtrArray) lines = data_lines (out);

  g_assert_cmpuint (lines->len, ==, 4);
  g_assert_false (test_bytes_contain (out, "\"usage\""));
  g_assert_true (g_str_has_suffix (g_ptr_array_index (lines, 3), "[DONE]"));
  pooler_translator_free (translator);
}

static const char tool_call_sse[] =
  "event: response.created\n"
  "data: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_t\",\"created_at\":1795487941,"
  "\"model\":\"gpt-5.5\",\"output\":[]}}\n\n"
  "event: response.output_item.added\n"
  "data: {\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{\"id\":\"fc_1\","
  "\"type\":\"function_call\",\"call_id\":\"call_42\",\"name\":\"get_weather\",\"arguments\":\"\"}}\n\n"
  "event: response.function_call_arguments.delta\n"
  "data: {\"type\":\"response.function_call_arguments.delta\",\"item_id\":\"fc_1\",\"output_index\":0,"
  "\"delta\":\"{\\\"city\\\":\"}\n\n"
  "event: response.function_call_arguments.delta\n"
  "data: {\"type\":\"response.function_call_arguments.delta\",\"item_id\":\"fc_1\",\"output_index\":0,"
  "\"delta\":\"\\\"Paris\\\"}\"}\n\n"
  "event: response.output_item.done\n"
  "data: {\"type\":\"response.output_item.done\",\"output_index\":0,\"item\":{\"id\":\"fc_1\","
  "\"type\":\"function_call\",\"call_id\":\"call_42\",\"name\":\"get_weather\","
  "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}\n\n"
  "event: response.completed\n"
  "data: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_t\",\"created_at\":1795487941,"
  "\"model\":\"gpt-5.5\",\"status\":\"completed\",\"output\":[],"
  "\"usage\":{\"input_tokens\":10,\"output_tokens\":5,\"total_tokens\":15}}}\n\n";

static void
test_chat_stream_tool_call (void)
{
  PoolerTranslator *translator = pooler_v1_chat_translator_new (TRUE, FALSE, "gpt-5");
  g_autoptr(GBytes) out = run_translator (translator, tool_call_sse, strlen (tool_call_sse), TRUE);
  g_autoptr(GPtrArray) lines = data_lines (out);
  g_autoptr(GString) arguments = g_string_new (NULL);
  g_autofree char *name = NULL;
  g_autofree char *id = NULL;
  g_autofree char *finish = NULL;

  for (guint i = 0; i + 1 < lines->len; i++)
    {
      g_autoptr(JsonObject) chunk = parse_object (g_ptr_array_index (lines, i), -1);
      JsonObject *choice = json_array_get_object_element (json_object_get_array_member (chunk, "choices"), 0);
      JsonObject *delta = json_object_get_object_member (choice, "delta");

      g_assert_cmpstr (json_object_get_string_member (chunk, "id"), ==, "chatcmpl-t");
      g_assert_cmpstr (json_object_get_string_member (chunk, "model"), ==, "gpt-5.5");
      if (json_object_get_string_member_with_default (choice, "finish_reason", NULL) != NULL)
        finish = g_strdup (json_object_get_string_member (choice, "finish_reason"));
      if (json_object_has_member (delta, "tool_calls"))
        {
          JsonObject *call = json_array_get_object_element (json_object_get_array_member (delta, "tool_calls"), 0);
          JsonObject *function = json_object_get_object_member (call, "function");

          g_assert_cmpint (json_object_get_int_member (call, "index"), ==, 0);
          if (json_object_has_member (call, "id"))
            {
              g_assert_null (id);
              id = g_strdup (json_object_get_string_member (call, "id"));
              g_assert_cmpstr (json_object_get_string_member (call, "type"), ==, "function");
              name = g_strdup (json_object_get_string_member (function, "name"));
            }
          g_string_append (arguments, json_object_get_string_member (function, "arguments"));
        }
    }

  g_assert_cmpstr (id, ==, "call_42");
  g_assert_cmpstr (name, ==, "get_weather");
  g_assert_cmpstr (arguments->str, ==, "{\"city\":\"Paris\"}");
  g_assert_cmpstr (finish, ==, "tool_calls");
  g_assert_cmpstr (g_ptr_array_index (lines, lines->len - 1), ==, "[DONE]");
  pooler_translator_free (translator);
}

/* A stream that fails ends with an error chunk the SDKs raise. */
static void
test_chat_stream_failed (void)
{
  static const char sse[] =
    "event: response.created\n"
    "data: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_f\"}}\n\n"
    "event: response.failed\n"
    "data: {\"type\":\"response.failed\",\"response\":{\"id\":\"resp_f\",\"status\":\"failed\","
    "\"error\":{\"code\":\"server_error\",\"message\":\"boom\"}}}\n\n";
  PoolerTranslator *translator = pooler_v1_chat_translator_new (TRUE, TRUE, "gpt-5");
  g_autoptr(GBytes) out = run_translator (translator, sse, strlen (sse), FALSE);
  g_autoptr(GPtrArray) lines = data_lines (out);
  g_autoptr(JsonObject) last = parse_object (g_ptr_array_index (lines, lines->len - 1), -1);
  JsonObject *error = json_object_get_object_member (last, "error");

  g_assert_cmpstr (json_object_get_string_member (error, "message"), ==, "boom");
  g_assert_cmpstr (json_object_get_string_member (error, "code"), ==, "server_error");
  g_assert_false (test_bytes_contain (out, "[DONE]"));
  pooler_translator_free (translator);
}

/* Non-streaming chat: the chat-completion.json shape. */
static void
test_chat_nonstream (void)
{
  gsize length;
  g_autofree char *sse = load_fixture ("responses-full.sse", &length);
  g_autofree char *reference_text = load_fixture ("chat-completion.json", NULL);
  g_autoptr(JsonObject) reference = parse_object (reference_text, -1);
  PoolerTranslator *translator = pooler_v1_chat_translator_new (FALSE, FALSE, "gpt-5");
  g_autoptr(GBytes) out = run_translator (translator, sse, length, TRUE);
  g_autoptr(JsonObject) completion = parse_bytes (out);
  JsonObject *choice = json_array_get_object_element (json_object_get_array_member (completion, "choices"), 0);
  JsonObject *message = json_object_get_object_member (choice, "message");
  JsonObject *usage = json_object_get_object_member (completion, "usage");
  GList *members;

  g_assert_true (translator->collect);
  members = json_object_get_members (reference);
  for (GList *l = members; l != NULL; l = l->next)
    g_assert_true (json_object_has_member (completion, l->data));
  g_list_free (members);

  g_assert_cmpstr (json_object_get_string_member (completion, "object"), ==, "chat.completion");
  g_assert_cmpstr (json_object_get_string_member (message, "role"), ==, "assistant");
  g_assert_cmpstr (json_object_get_string_member (message, "content"), ==, "hello");
  g_assert_true (json_object_has_member (message, "refusal"));
  g_assert_cmpstr (json_object_get_string_member (choice, "finish_reason"), ==, "stop");
  g_assert_cmpint (json_object_get_int_member (usage, "prompt_tokens"), ==, 42);
  g_assert_cmpint (json_object_get_int_member (usage, "completion_tokens"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (usage, "total_tokens"), ==, 43);
  pooler_translator_free (translator);
}

static void
test_chat_nonstream_tool_call (void)
{
  PoolerTranslator *translator = pooler_v1_chat_translator_new (FALSE, FALSE, "gpt-5");
  g_autoptr(GBytes) out = run_translator (translator, tool_call_sse, strlen (tool_call_sse), TRUE);
  g_autoptr(JsonObject) completion = parse_bytes (out);
  JsonObject *choice = json_array_get_object_element (json_object_get_array_member (completion, "choices"), 0);
  JsonObject *message = json_object_get_object_member (choice, "message");
  JsonObject *call = json_array_get_object_element (json_object_get_array_member (message, "tool_calls"), 0);

  g_assert_true (json_node_is_null (json_object_get_member (message, "content")));
  g_assert_cmpstr (json_object_get_string_member (choice, "finish_reason"), ==, "tool_calls");
  g_assert_cmpstr (json_object_get_string_member (call, "id"), ==, "call_42");
  g_assert_cmpstr (json_object_get_string_member (call, "type"), ==, "function");
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (call, "function"), "arguments"),
                   ==, "{\"city\":\"Paris\"}");
  pooler_translator_free (translator);
}

/* An incomplete response is an answer (200), not a gateway error. */
static void
test_incomplete_is_an_answer (void)
{
  static const char sse[] =
    "event: response.created\n"
    "data: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_i\"}}\n\n"
    "event: response.output_text.delta\n"
    "data: {\"type\":\"response.output_text.delta\",\"delta\":\"cut\"}\n\n"
    "event: response.incomplete\n"
    "data: {\"type\":\"response.incomplete\",\"response\":{\"id\":\"resp_i\",\"status\":\"incomplete\","
    "\"incomplete_details\":{\"reason\":\"max_output_tokens\"},\"output\":[]}}\n\n";
  PoolerTranslator *chat = pooler_v1_chat_translator_new (FALSE, FALSE, "gpt-5");
  PoolerTranslator *responses = pooler_v1_responses_translator_new (FALSE);
  g_autoptr(GBytes) chat_out = run_translator (chat, sse, strlen (sse), FALSE);
  g_autoptr(GBytes) responses_out = run_translator (responses, sse, strlen (sse), FALSE);
  g_autoptr(GBytes) gateway_error = pooler_api_error_build ("server_error", "max_output_tokens", NULL, "x");
  g_autoptr(GBytes) chat_body = NULL;
  g_autoptr(GBytes) responses_body = NULL;
  g_autoptr(JsonObject) completion = NULL;
  g_autoptr(JsonObject) response = NULL;
  guint status = SOUP_STATUS_BAD_GATEWAY;

  /* The streams were fed (their outputs are not what this test is about). */
  g_assert_nonnull (chat_out);
  g_assert_nonnull (responses_out);

  chat_body = chat->funcs->error (chat->data, &status, gateway_error);
  g_assert_cmpuint (status, ==, 200);
  completion = parse_bytes (chat_body);
  g_assert_cmpstr (json_object_get_string_member (
                     json_array_get_object_element (json_object_get_array_member (completion, "choices"), 0),
                     "finish_reason"), ==, "length");

  status = SOUP_STATUS_BAD_GATEWAY;
  responses_body = responses->funcs->error (responses->data, &status, gateway_error);
  g_assert_cmpuint (status, ==, 200);
  response = parse_bytes (responses_body);
  g_assert_cmpstr (json_object_get_string_member (response, "status"), ==, "incomplete");
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (response, "output")), ==, 1);

  pooler_translator_free (chat);
  pooler_translator_free (responses);
}

/* ---- errors and models --------------------------------------------------- */

static JsonObject *
translate_error (guint      *status,
                 const char *body,
                 const char *failure_code,
                 const char *failure_message)
{
  g_autoptr(GBytes) in = g_bytes_new (body, strlen (body));
  g_autoptr(GBytes) out = pooler_v1_error_translate (status, in, failure_code, failure_message);

  return test_parse_error (out);
}

static void
test_errors (void)
{
  g_autofree char *usage_limit = load_fixture ("error-429-usage-limit-resets-at.json", NULL);
  g_autofree char *server = load_fixture ("error-500.json", NULL);
  g_autoptr(JsonObject) error = NULL;
  guint status;

  /* The upstream's 429 names no time: the message gets it. */
  status = 429;
  error = translate_error (&status, usage_limit, NULL, NULL);
  g_assert_cmpuint (status, ==, 429);
  g_assert_cmpstr (json_object_get_string_member (error, "code"), ==, "usage_limit_reached");
  g_assert_cmpstr (json_object_get_string_member (error, "message"), ==,
                   "The usage limit has been reached. Try again at 2026-11-24 03:07 UTC.");
  g_assert_cmpint (json_object_get_int_member (error, "resets_at"), ==, 1795489647);
  g_assert_true (json_object_has_member (error, "param"));
  g_clear_pointer (&error, json_object_unref);

  /* The gateway's own pool-spent 429 already does. */
  status = 429;
  error = translate_error (&status,
                           "{\"error\":{\"type\":\"usage_limit_reached\",\"code\":\"usage_limit_reached\","
                           "\"message\":\"Every account in Pool “main” has reached its usage limit; try again "
                           "at 2026-11-18 23:07 UTC.\",\"param\":null,\"plan_type\":\"plus\","
                           "\"resets_at\":1795489647}}", NULL, NULL);
  g_assert_cmpstr (json_object_get_string_member (error, "message"), ==,
                   "Every account in Pool “main” has reached its usage limit; try again at 2026-11-18 23:07 UTC.");
  g_clear_pointer (&error, json_object_unref);

  status = 500;
  error = translate_error (&status, server, NULL, NULL);
  g_assert_cmpuint (status, ==, 500);
  g_assert_cmpstr (json_object_get_string_member (error, "type"), ==, "server_error");
  g_assert_cmpstr (json_object_get_string_member (error, "message"), ==, "internal error");
  g_clear_pointer (&error, json_object_unref);

  status = 400;
  error = translate_error (&status, "{\"detail\":\"Instructions are required\"}", NULL, NULL);
  g_assert_cmpstr (json_object_get_string_member (error, "message"), ==, "Instructions are required");
  g_assert_cmpstr (json_object_get_string_member (error, "type"), ==, "invalid_request_error");
  g_clear_pointer (&error, json_object_unref);

  /* A failed stream about quota is a rate limit to the client. */
  status = 502;
  error = translate_error (&status, "{\"error\":{\"message\":\"x\",\"type\":\"server_error\"}}",
                           "rate_limit_exceeded", "Rate limit reached; try again in 20s.");
  g_assert_cmpuint (status, ==, 429);
  g_assert_cmpstr (json_object_get_string_member (error, "code"), ==, "rate_limit_exceeded");
  g_assert_cmpstr (json_object_get_string_member (error, "message"), ==, "Rate limit reached; try again in 20s.");
}

static void
test_models (void)
{
  g_autoptr(PoolerKeyRecord) key = pooler_key_record_new ();
  g_autoptr(GBytes) all = pooler_v1_models_list_body (key);
  g_autoptr(GBytes) some = NULL;
  g_autoptr(JsonObject) list = parse_bytes (all);
  g_autoptr(JsonObject) narrowed = NULL;
  JsonArray *data = json_object_get_array_member (list, "data");
  const char * const *known = pooler_v1_models_known ();
  JsonObject *model;

  g_assert_cmpstr (json_object_get_string_member (list, "object"), ==, "list");
  g_assert_cmpuint (json_array_get_length (data), ==, g_strv_length ((char **) known));
  model = json_array_get_object_element (data, 0);
  g_assert_cmpstr (json_object_get_string_member (model, "id"), ==, "gpt-5.5");
  g_assert_cmpstr (json_object_get_string_member (model, "object"), ==, "model");
  g_assert_true (json_object_has_member (model, "created"));
  g_assert_cmpstr (json_object_get_string_member (model, "owned_by"), ==, "codex-pooler");

  key->allowed_models = g_strdupv ((char *[]) { "gpt-5.5", "my-model", NULL });
  some = pooler_v1_models_list_body (key);
  narrowed = parse_bytes (some);
  data = json_object_get_array_member (narrowed, "data");
  g_assert_cmpuint (json_array_get_length (data), ==, 2);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (data, 0), "id"), ==, "gpt-5.5");
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (data, 1), "id"), ==, "my-model");
}

/* ---- through the gateway ------------------------------------------------- */

typedef struct
{
  FakeUpstream  *fake;
  PoolerService *service;
  PoolerGateway *gateway;
  SoupSession   *client;
  char          *base;
  char          *key;
} Fixture;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(PoolerPool) pool = NULL;
  g_autoptr(PoolerAccount) account = NULL;
  g_autofree char *upstream = NULL;
  g_autofree char *auth_path = NULL;
  g_autofree char *chatgpt_id = g_strdup_printf ("acct_v1_%08x", g_random_int ());
  g_autofree char *refresh = g_strdup_printf ("rt_v1_%08x", g_random_int ());
  g_autofree char *access = NULL;
  gint64 exp = g_get_real_time () / G_USEC_PER_SEC + 10 * 86400;

  f->fake = fake_upstream_new (&error);
  g_assert_no_error (error);
  access = test_make_jwt (chatgpt_id, "v1@example.com", exp);
  fake_upstream_add_account (f->fake, chatgpt_id, access, refresh);
  upstream = fake_upstream_dup_base_url (f->fake);

  f->service = pooler_service_new (NULL, &error);
  g_assert_no_error (error);
  pooler_service_set_upstream_url (f->service, upstream);
  pool = pooler_service_create_pool (f->service, "main", NULL, &error);
  g_assert_no_error (error);
  auth_path = test_write_auth_json ("v1", chatgpt_id, "v1@example.com", access, refresh, exp);
  account = pooler_service_import_account (f->service, auth_path, "main", NULL, NULL, &error);
  g_assert_no_error (error);
  f->key = pooler_service_create_key (f->service, "main", "v1", NULL, &error);
  g_assert_no_error (error);
  g_assert_true (pooler_service_start (f->service, &error));

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
  g_clear_object (&f->fake);
  g_free (f->base);
  g_free (f->key);

  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static GBytes *
send_json (Fixture     *f,
           const char  *method,
           const char  *path,
           const char  *json,
           guint       *status)
{
  g_autoptr(SoupMessage) msg = test_new_message (f->base, method, path, f->key);
  GBytes *body;

  if (json != NULL)
    {
      g_autoptr(GBytes) bytes = g_bytes_new (json, strlen (json));

      soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
    }
  body = test_send_and_read (f->client, msg);
  *status = soup_message_get_status (msg);

  return body;
}

/* The body the upstream got for the last /codex/responses request. */
static JsonObject *
last_upstream_body (Fixture *f)
{
  g_autoptr(GPtrArray) requests = fake_upstream_dup_requests (f->fake);
  FakeUpstreamRequest *request;

  g_assert_cmpuint (requests->len, >, 0);
  request = g_ptr_array_index (requests, requests->len - 1);
  g_assert_cmpstr (request->path, ==, "/backend-api/codex/responses");
  g_assert_cmpstr (fake_upstream_request_get_header (request, "Content-Encoding"), ==, NULL);
  g_assert_cmpstr (fake_upstream_request_get_header (request, "Accept"), ==, "text/event-stream");

  return parse_bytes (request->body);
}

/* A tool result round trip reaches the upstream as Responses items. */
static void
test_gateway_chat_tool_round_trip (Fixture       *f,
                                   gconstpointer  data)
{
  guint status;
  g_autoptr(GBytes) answer = send_json (f, "POST", "/v1/chat/completions",
    "{\"model\":\"gpt-5.5\",\"max_tokens\":20,"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\"}}}],"
    "\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
    "{\"role\":\"user\",\"content\":\"weather?\"},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_9\",\"type\":\"function\","
    "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_9\",\"content\":\"sunny\"}]}", &status);
  g_autoptr(JsonObject) completion = parse_bytes (answer);
  g_autoptr(JsonObject) upstream = last_upstream_body (f);
  JsonArray *input = json_object_get_array_member (upstream, "input");
  JsonObject *call = json_array_get_object_element (input, 1);
  JsonObject *output = json_array_get_object_element (input, 2);
  JsonObject *choice = json_array_get_object_element (json_object_get_array_member (completion, "choices"), 0);

  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpstr (json_object_get_string_member (completion, "object"), ==, "chat.completion");
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (choice, "message"), "content"),
                   ==, "hello");

  g_assert_true (json_object_get_boolean_member (upstream, "stream"));
  g_assert_false (json_object_get_boolean_member (upstream, "store"));
  g_assert_false (json_object_has_member (upstream, "messages"));
  g_assert_false (json_object_has_member (upstream, "max_tokens"));
  g_assert_cmpstr (json_object_get_string_member (upstream, "instructions"), ==, "Be brief.");
  g_assert_cmpuint (json_array_get_length (input), ==, 3);
  g_assert_cmpstr (json_object_get_string_member (call, "type"), ==, "function_call");
  g_assert_cmpstr (json_object_get_string_member (call, "call_id"), ==, "call_9");
  g_assert_cmpstr (json_object_get_string_member (output, "type"), ==, "function_call_output");
  g_assert_cmpstr (json_object_get_string_member (output, "call_id"), ==, "call_9");
  g_assert_cmpstr (json_object_get_string_member (output, "output"), ==, "sunny");
  g_assert_cmpstr (json_object_get_string_member (
                     json_array_get_object_element (json_object_get_array_member (upstream, "tools"), 0), "name"),
                   ==, "get_weather");
}

static void
test_gateway_responses (Fixture       *f,
                        gconstpointer  data)
{
  guint status;
  g_autoptr(GBytes) plain = send_json (f, "POST", "/v1/responses", "{\"model\":\"gpt-5.5\",\"input\":\"hi\"}",
                                       &status);
  g_autoptr(JsonObject) response = parse_bytes (plain);
  g_autoptr(JsonObject) upstream = last_upstream_body (f);
  g_autoptr(GBytes) streamed = NULL;

  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpstr (json_object_get_string_member (response, "object"), ==, "response");
  g_assert_cmpstr (json_object_get_string_member (response, "status"), ==, "completed");
  g_assert_true (JSON_NODE_HOLDS_ARRAY (json_object_get_member (upstream, "input")));

  streamed = send_json (f, "POST", "/v1/responses",
                        "{\"model\":\"gpt-5.5\",\"input\":\"hi\",\"stream\":true}", &status);
  g_assert_cmpuint (status, ==, 200);
  g_assert_true (test_bytes_contain (streamed, "event: response.created\n"));
  g_assert_true (test_bytes_contain (streamed, "event: response.completed\n"));
}

static void
test_gateway_refusals (Fixture       *f,
                       gconstpointer  data)
{
  guint status;
  g_autoptr(GBytes) unsupported = send_json (f, "POST", "/v1/embeddings", "{\"model\":\"x\",\"input\":\"y\"}",
                                             &status);
  g_autoptr(GBytes) expected = pooler_v1_unsupported_body ();
  g_autoptr(GBytes) wrong_method = NULL;
  g_autoptr(GBytes) bad_json = NULL;
  g_autoptr(GBytes) missing = NULL;
  g_autoptr(GBytes) models = NULL;
  g_autoptr(JsonObject) error = NULL;

  g_assert_cmpuint (status, ==, 404);
  g_assert_true (g_bytes_equal (unsupported, expected));

  wrong_method = send_json (f, "GET", "/v1/chat/completions", NULL, &status);
  g_assert_cmpuint (status, ==, 405);
  error = test_parse_error (wrong_method);
  g_assert_cmpstr (json_object_get_string_member (error, "code"), ==, "method_not_allowed");
  g_clear_pointer (&error, json_object_unref);

  bad_json = send_json (f, "POST", "/v1/responses", "{\"model\":", &status);
  g_assert_cmpuint (status, ==, 400);
  error = test_parse_error (bad_json);
  g_assert_cmpstr (json_object_get_string_member (error, "code"), ==, "invalid_json");
  g_clear_pointer (&error, json_object_unref);

  missing = send_json (f, "POST", "/v1/responses", "{\"model\":\"gpt-5.5\"}", &status);
  g_assert_cmpuint (status, ==, 400);
  error = test_parse_error (missing);
  g_assert_cmpstr (json_object_get_string_member (error, "param"), ==, "input");

  models = send_json (f, "GET", "/v1/models", NULL, &status);
  g_assert_cmpuint (status, ==, 200);
  g_assert_true (test_bytes_contain (models, "\"object\":\"list\""));

  /* None of these reached the upstream. */
  g_assert_cmpuint (fake_upstream_get_request_count (f->fake), ==, 0);
}

static void
test_gateway_rate_limited (Fixture       *f,
                           gconstpointer  data)
{
  guint status;
  g_autoptr(GBytes) first = NULL;
  g_autoptr(GBytes) second = NULL;
  g_autoptr(JsonObject) error = NULL;

  fake_upstream_set_mode (f->fake, NULL, "429at", 0);

  /* The upstream's own 429, then the gateway's (the Pool is spent). */
  first = send_json (f, "POST", "/v1/chat/completions",
                     "{\"model\":\"gpt-5.5\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &status);
  g_assert_cmpuint (status, ==, 429);
  error = test_parse_error (first);
  g_assert_cmpstr (json_object_get_string_member (error, "code"), ==, "usage_limit_reached");
  g_assert_nonnull (strstr (json_object_get_string_member (error, "message"), " UTC"));
  g_clear_pointer (&error, json_object_unref);

  second = send_json (f, "POST", "/v1/responses", "{\"model\":\"gpt-5.5\",\"input\":\"hi\",\"stream\":true}",
                      &status);
  g_assert_cmpuint (status, ==, 429);
  error = test_parse_error (second);
  g_assert_nonnull (strstr (json_object_get_string_member (error, "message"), "try again at"));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/v1/unsupported-body", test_unsupported_body);
  g_test_add_func ("/v1/responses/string-input", test_responses_string_input);
  g_test_add_func ("/v1/responses/normalized", test_responses_normalized);
  g_test_add_func ("/v1/responses/validation", test_responses_validation);
  g_test_add_func ("/v1/responses/stream-passthrough", test_responses_stream_passthrough);
  g_test_add_func ("/v1/responses/stream-broken", test_responses_stream_broken);
  g_test_add_func ("/v1/responses/nonstream", test_responses_nonstream);
  g_test_add_func ("/v1/responses/nonstream-fills-output", test_responses_nonstream_fills_output);
  g_test_add_func ("/v1/chat/request", test_chat_request);
  g_test_add_func ("/v1/chat/request-sdk-capture", test_chat_request_sdk_capture);
  g_test_add_func ("/v1/chat/validation", test_chat_validation);
  g_test_add_func ("/v1/chat/stream", test_chat_stream);
  g_test_add_func ("/v1/chat/stream-no-usage", test_chat_stream_no_usage);
  g_test_add_func ("/v1/chat/stream-tool-call", test_chat_stream_tool_call);
  g_test_add_func ("/v1/chat/stream-failed", test_chat_stream_failed);
  g_test_add_func ("/v1/chat/nonstream", test_chat_nonstream);
  g_test_add_func ("/v1/chat/nonstream-tool-call", test_chat_nonstream_tool_call);
  g_test_add_func ("/v1/incomplete-is-an-answer", test_incomplete_is_an_answer);
  g_test_add_func ("/v1/errors", test_errors);
  g_test_add_func ("/v1/models", test_models);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/v1/gateway/chat-tool-round-trip", test_gateway_chat_tool_round_trip);
  ADD ("/v1/gateway/responses", test_gateway_responses);
  ADD ("/v1/gateway/refusals", test_gateway_refusals);
  ADD ("/v1/gateway/rate-limited", test_gateway_rate_limited);
#undef ADD

  return g_test_run ();
}
