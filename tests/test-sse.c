/* test-sse.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <string.h>

#include "pooler-sse.h"

typedef struct
{
  GPtrArray *types;
  GPtrArray *datas;
} Seen;

static void
collect (const char *event,
         const char *data,
         gsize       length,
         gpointer    user_data)
{
  Seen *seen = user_data;

  g_assert_cmpuint (strlen (data), ==, length);
  g_ptr_array_add (seen->types, pooler_sse_event_type (event, data, length));
  g_ptr_array_add (seen->datas, g_strndup (data, length));
}

static void
seen_init (Seen *seen)
{
  seen->types = g_ptr_array_new_with_free_func (g_free);
  seen->datas = g_ptr_array_new_with_free_func (g_free);
}

static void
seen_clear (Seen *seen)
{
  g_ptr_array_unref (seen->types);
  g_ptr_array_unref (seen->datas);
}

static char *
load_fixture (const char *name,
              gsize      *length)
{
  g_autofree char *path = g_build_filename (g_getenv ("POOLER_FIXTURES_DIR"), name, NULL);
  g_autoptr(GError) error = NULL;
  char *contents = NULL;

  g_file_get_contents (path, &contents, length, &error);
  g_assert_no_error (error);

  return contents;
}

static const char * const minimal_types[] = {
  "response.created", "response.output_item.added", "response.output_text.delta",
  "response.output_item.done", "response.completed",
};

/* The fixture stream, cut into every possible pair of chunks, always yields
 * the same five events: chunk boundaries must not matter. */
static void
test_sse_fixture_any_split (void)
{
  gsize length;
  g_autofree char *stream = load_fixture ("responses-minimal.sse", &length);

  for (gsize cut = 0; cut <= length; cut += 7)
    {
      g_autoptr(PoolerSseParser) parser = NULL;
      Seen seen;

      seen_init (&seen);
      parser = pooler_sse_parser_new (collect, &seen);
      pooler_sse_parser_feed (parser, stream, cut);
      pooler_sse_parser_feed (parser, stream + cut, length - cut);
      pooler_sse_parser_finish (parser);

      g_assert_cmpuint (seen.types->len, ==, G_N_ELEMENTS (minimal_types));
      for (guint i = 0; i < G_N_ELEMENTS (minimal_types); i++)
        g_assert_cmpstr (g_ptr_array_index (seen.types, i), ==, minimal_types[i]);
      seen_clear (&seen);
    }
}

/* Feeds @stream to a new parser in pieces of @piece bytes (0: whole) and
 * checks the events: @expected is type, data, type, data, ..., NULL (a
 * NULL data is not checked). */
static void
assert_events (const char         *stream,
               gsize               piece,
               const char * const *expected)
{
  g_autoptr(PoolerSseParser) parser = NULL;
  gsize length = strlen (stream);
  guint n = 0;
  Seen seen;

  seen_init (&seen);
  parser = pooler_sse_parser_new (collect, &seen);
  for (gsize at = 0; at < length; at += piece > 0 ? piece : length)
    pooler_sse_parser_feed (parser, stream + at, MIN (piece > 0 ? piece : length, length - at));
  pooler_sse_parser_finish (parser);

  for (; expected[2 * n] != NULL; n++)
    {
      g_assert_cmpuint (seen.types->len, >, n);
      g_assert_cmpstr (g_ptr_array_index (seen.types, n), ==, expected[2 * n]);
      if (expected[2 * n + 1] != NULL)
        g_assert_cmpstr (g_ptr_array_index (seen.datas, n), ==, expected[2 * n + 1]);
    }
  g_assert_cmpuint (seen.types->len, ==, n);
  seen_clear (&seen);
}

static void
test_sse_byte_by_byte_crlf (void)
{
  /* The last event has no event field: the type comes from the JSON, as
   * in SDK streams. */
  static const char * const crlf_events[] = { "a", "one\ntwo", "b", NULL, NULL };
  static const char * const mixed_events[] = { "c", "1", "d", "2", "e", "3", NULL };
  const char *crlf = ": comment\r\nevent: a\r\ndata: one\r\ndata: two\r\n\r\n"
                     "data: {\"type\":\"b\"}\r\r";

  assert_events (crlf, 1, crlf_events);
  /* In one piece, lines end at the first CR or LF of the chunk. */
  assert_events (crlf, 0, crlf_events);
  /* CR-only lines, then LF ones, then CRLF. */
  assert_events ("event: c\rdata: 1\r\revent: d\ndata: 2\n\nevent: e\r\ndata: 3\r\n\r\n", 0,
                 mixed_events);
}

static void
test_sse_usage (void)
{
  gsize length;
  g_autofree char *stream = load_fixture ("responses-full.sse", &length);
  const char *completed = strstr (stream, "data: {\"type\":\"response.completed\"");
  const char *end;
  PoolerUsage usage;

  g_assert_nonnull (completed);
  completed += strlen ("data: ");
  end = strchr (completed, '\n');
  g_assert_true (pooler_sse_parse_usage (completed, end - completed, &usage));
  g_assert_cmpint (usage.input_tokens, ==, 42);
  g_assert_cmpint (usage.output_tokens, >=, 1);
  g_assert_cmpint (usage.cached_tokens, ==, 0);
  g_assert_cmpint (usage.reasoning_tokens, ==, 0);

  g_assert_false (pooler_sse_parse_usage ("{\"type\":\"response.completed\"}", 29, &usage));
  g_assert_cmpint (usage.input_tokens, ==, -1);
  g_assert_false (pooler_sse_parse_usage ("not json", 8, &usage));
}

/* The last event is read without a tree: only response.id and
 * response.usage count, wherever else such names appear. */
static void
test_sse_completed_scan (void)
{
  const char *event =
    "{\"type\":\"response.completed\",\"usage\":{\"input_tokens\":1},"
    "\"response\":{\"output\":[{\"usage\":{\"input_tokens\":2},\"text\":\"\\\"usage\\\":{\"}],"
    "\"id\":\"resp_\\u0041b\",\"usage\":{\"input_tokens\":7,\"output_tokens\":3,"
    "\"input_tokens_details\":{\"cached_tokens\":5},"
    "\"output_tokens_details\":{\"reasoning_tokens\":2,\"cached_tokens\":9},\"total\":1.5e3}}}";
  g_autofree char *id = NULL;
  PoolerUsage usage;

  g_assert_true (pooler_sse_parse_completed (event, strlen (event), &usage, &id));
  g_assert_cmpstr (id, ==, "resp_Ab");
  g_assert_cmpint (usage.input_tokens, ==, 7);
  g_assert_cmpint (usage.output_tokens, ==, 3);
  g_assert_cmpint (usage.cached_tokens, ==, 5);
  g_assert_cmpint (usage.reasoning_tokens, ==, 2);
  g_clear_pointer (&id, g_free);

  /* Not integers: unknown, not garbage. */
  event = "{\"response\":{\"usage\":{\"input_tokens\":\"7\",\"output_tokens\":2.5}}}";
  g_assert_true (pooler_sse_parse_completed (event, strlen (event), &usage, &id));
  g_assert_null (id);
  g_assert_cmpint (usage.input_tokens, ==, -1);
  g_assert_cmpint (usage.output_tokens, ==, -1);

  /* Broken JSON counts for nothing, even what was read before the break. */
  event = "{\"response\":{\"id\":\"resp_1\",\"usage\":{\"input_tokens\":7}";
  g_assert_false (pooler_sse_parse_completed (event, strlen (event), &usage, &id));
  g_assert_null (id);
  g_assert_cmpint (usage.input_tokens, ==, -1);
  event = "{\"response\":{\"usage\":{\"input_tokens\":7}}} trailing";
  g_assert_false (pooler_sse_parse_completed (event, strlen (event), &usage, NULL));
}

static void
test_sse_error_code (void)
{
  const char *failed = "{\"type\":\"response.failed\",\"response\":{\"error\":{\"code\":\"server_error\",\"message\":\"x\"}}}";
  const char *error = "{\"type\":\"error\",\"error\":{\"type\":\"usage_limit_reached\"}}";
  g_autofree char *a = pooler_sse_parse_error_code (failed, strlen (failed));
  g_autofree char *b = pooler_sse_parse_error_code (error, strlen (error));

  /* The Responses API's own error event: flat. */
  const char *flat = "{\"type\":\"error\",\"code\":\"context_length_exceeded\",\"message\":\"x\"}";
  const char *odd = "{\"type\":\"error\",\"code\":{\"not\":\"a string\"}}";
  g_autofree char *c = pooler_sse_parse_error_code (flat, strlen (flat));
  g_autofree char *d = pooler_sse_parse_error_code (odd, strlen (odd));

  g_assert_cmpstr (a, ==, "server_error");
  g_assert_cmpstr (b, ==, "usage_limit_reached");
  g_assert_cmpstr (c, ==, "context_length_exceeded");
  g_assert_null (d);
}

/* An event bigger than the limit is skipped, not buffered, and the stream
 * goes on parsing after it. */
static void
test_sse_oversized_event (void)
{
  g_autoptr(PoolerSseParser) parser = NULL;
  g_autofree char *big = g_malloc (64 * 1024);
  Seen seen;

  memset (big, 'x', 64 * 1024);
  seen_init (&seen);
  parser = pooler_sse_parser_new (collect, &seen);
  pooler_sse_parser_feed (parser, "data: ", 6);
  for (guint i = 0; i < (POOLER_SSE_MAX_EVENT_SIZE / (64 * 1024)) + 2; i++)
    pooler_sse_parser_feed (parser, big, 64 * 1024);
  pooler_sse_parser_feed (parser, "\n\ndata: {\"type\":\"after\"}\n\n", 27);
  pooler_sse_parser_finish (parser);

  g_assert_cmpuint (pooler_sse_parser_get_skipped (parser), ==, 1);
  g_assert_cmpuint (seen.types->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (seen.types, 0), ==, "after");
  seen_clear (&seen);
}

/* The type without an allocation where it leads the event, and the
 * parse where it does not; the two agree. */
static void
test_sse_event_type_peek (void)
{
  static const struct
  {
    const char *event;
    const char *data;
    const char *peeked;   /* NULL: the peek cannot tell */
    const char *type;     /* what the parse finds */
  } cases[] = {
    { "response.created", "{\"type\":\"ignored\"}", "response.created", "response.created" },
    { NULL, "{\"type\":\"response.output_text.delta\",\"delta\":\"x\"}",
      "response.output_text.delta", "response.output_text.delta" },
    { "", "{\"type\":\"error\"}", "error", "error" },
    { NULL, "{\"type\":\"a\\\"b\"}", NULL, "a\"b" },
    { NULL, "{\"id\":1,\"type\":\"late\"}", NULL, "late" },
    { NULL, "{ \"type\": \"spaced\" }", NULL, "spaced" },
    { NULL, "{\"type\":\"unterminated", NULL, NULL },
    { NULL, "not json", NULL, NULL },
    { NULL, NULL, NULL, NULL },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      gsize data_length = cases[i].data != NULL ? strlen (cases[i].data) : 0;
      gsize length = 0;
      const char *peeked = pooler_sse_event_type_peek (cases[i].event, cases[i].data, data_length, &length);
      g_autofree char *type = pooler_sse_event_type (cases[i].event, cases[i].data, data_length);

      if (cases[i].peeked == NULL)
        g_assert_null (peeked);
      else
        {
          g_assert_nonnull (peeked);
          g_assert_cmpmem (peeked, length, cases[i].peeked, strlen (cases[i].peeked));
          /* It points into what it was given. */
          g_assert_true (peeked == cases[i].event ||
                         (peeked > cases[i].data && peeked < cases[i].data + data_length));
        }
      g_assert_cmpstr (type, ==, cases[i].type);
    }
}

typedef struct
{
  GPtrArray *events;
} Fields;

static void
record_event_field (const char *event,
                    const char *data,
                    gsize       length,
                    gpointer    user_data)
{
  Fields *fields = user_data;

  g_ptr_array_add (fields->events, g_strdup (event != NULL ? event : "(none)"));
}

/* An event's "event" field lasts for that event only; an empty one is
 * still given (as ""), an absent one as NULL. */
static void
test_sse_event_field (void)
{
  static const char stream[] =
    "event: first\ndata: 1\n\n"
    "data: 2\n\n"
    "event:\ndata: 3\n\n"
    "event: a\nevent: last wins\ndata: 4\n\n";
  Fields fields = { g_ptr_array_new_with_free_func (g_free) };
  PoolerSseParser *parser = pooler_sse_parser_new (record_event_field, &fields);

  g_autofree char *big = g_strnfill (POOLER_SSE_MAX_EVENT_SIZE, 'x');

  pooler_sse_parser_feed (parser, stream, strlen (stream));
  /* A skipped (too large) event's field does not reach the next event,
   * nor does the field of an event cut off by the end of the stream. */
  pooler_sse_parser_feed (parser, "event: big\ndata: ", strlen ("event: big\ndata: "));
  pooler_sse_parser_feed (parser, big, strlen (big));
  pooler_sse_parser_feed (parser, "\n\ndata: 5\n\nevent: cut\n", strlen ("\n\ndata: 5\n\nevent: cut\n"));
  pooler_sse_parser_finish (parser);
  pooler_sse_parser_feed (parser, "data: 6\n\n", strlen ("data: 6\n\n"));
  g_assert_cmpuint (pooler_sse_parser_get_skipped (parser), ==, 1);
  pooler_sse_parser_free (parser);
  g_assert_cmpuint (fields.events->len, ==, 6);
  g_assert_cmpstr (g_ptr_array_index (fields.events, 0), ==, "first");
  g_assert_cmpstr (g_ptr_array_index (fields.events, 1), ==, "(none)");
  g_assert_cmpstr (g_ptr_array_index (fields.events, 2), ==, "");
  g_assert_cmpstr (g_ptr_array_index (fields.events, 3), ==, "last wins");
  g_assert_cmpstr (g_ptr_array_index (fields.events, 4), ==, "(none)");
  g_assert_cmpstr (g_ptr_array_index (fields.events, 5), ==, "(none)");
  g_ptr_array_unref (fields.events);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/sse/fixture-any-split", test_sse_fixture_any_split);
  g_test_add_func ("/sse/byte-by-byte-crlf", test_sse_byte_by_byte_crlf);
  g_test_add_func ("/sse/usage", test_sse_usage);
  g_test_add_func ("/sse/completed-scan", test_sse_completed_scan);
  g_test_add_func ("/sse/error-code", test_sse_error_code);
  g_test_add_func ("/sse/oversized-event", test_sse_oversized_event);
  g_test_add_func ("/sse/event-type-peek", test_sse_event_type_peek);
  g_test_add_func ("/sse/event-field", test_sse_event_field);

  return g_test_run ();
}
