/* test-json.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <string.h>

#include "pooler-error.h"
#include "pooler-json.h"

/* @depth arrays nested, with a value in the middle. */
static char *
nested (const char *open,
        const char *close,
        guint       depth)
{
  GString *s = g_string_new (NULL);
  guint i;

  for (i = 0; i < depth; i++)
    g_string_append (s, open);
  g_string_append (s, "1");
  for (i = 0; i < depth; i++)
    g_string_append (s, close);

  return g_string_free (s, FALSE);
}

static void
test_depth_limit (void)
{
  g_autofree char *ok = nested ("[", "]", POOLER_JSON_MAX_DEPTH);
  g_autofree char *too_deep = nested ("[", "]", POOLER_JSON_MAX_DEPTH + 1);
  g_autofree char *objects = nested ("{\"a\":", "}", POOLER_JSON_MAX_DEPTH + 1);
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (pooler_json_depth_ok (ok, strlen (ok), POOLER_JSON_MAX_DEPTH));
  g_assert_false (pooler_json_depth_ok (too_deep, strlen (too_deep), POOLER_JSON_MAX_DEPTH));
  g_assert_false (pooler_json_depth_ok (objects, strlen (objects), POOLER_JSON_MAX_DEPTH));

  node = pooler_json_parse (ok, strlen (ok), &error);
  g_assert_no_error (error);
  g_assert_nonnull (node);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (node));

  g_clear_pointer (&node, json_node_unref);
  node = pooler_json_parse (too_deep, strlen (too_deep), &error);
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
  g_assert_null (node);
  g_assert_nonnull (strstr (error->message, "deeper than 64"));

  /* Depth is the maximum reached, not the number of brackets. */
  g_assert_true (pooler_json_depth_ok ("[[1],[2],[[3]]]", 15, 3));
  g_assert_false (pooler_json_depth_ok ("[[1],[2],[[3]]]", 15, 2));
  g_assert_true (pooler_json_depth_ok ("", 0, 0));
  g_assert_false (pooler_json_depth_ok ("[", 1, 0));
}

/* json-glib reads comments and single-quoted strings; either could hide a
 * '"' from the depth count and let deep input reach json-glib's recursion
 * (a stack overflow). Such input is refused before json-glib sees it. */
static void
test_not_strict (void)
{
  g_autofree char *opens = g_strnfill (200000, '[');
  g_autofree char *closes = g_strnfill (200000, ']');
  g_autofree char *comment = g_strconcat ("/*\"*/", opens, closes, NULL);
  g_autofree char *quoted = g_strconcat ("['\"',", opens, closes, "]", NULL);
  const char *lenient[] = { "/*x*/ {\"a\":1}", "{'a':1}", "[1] // x", "[1, #2]", "[`x`]" };
  const char *strict[] = { "[-1.5e+3, true, false, null]", " {\"a\" : [ \"/*'#\" ]}\r\n",
                           "\xEF\xBB\xBF{\"bom\":1}" };

  for (guint i = 0; i < 2; i++)
    {
      const char *deep = i == 0 ? comment : quoted;
      g_autoptr(JsonNode) node = NULL;
      g_autoptr(GError) error = NULL;

      g_assert_false (pooler_json_depth_ok (deep, strlen (deep), POOLER_JSON_MAX_DEPTH));
      node = pooler_json_parse (deep, strlen (deep), &error);
      g_assert_null (node);
      g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
      g_assert_nonnull (strstr (error->message, "Invalid JSON at byte"));
    }

  for (guint i = 0; i < G_N_ELEMENTS (lenient); i++)
    {
      g_autoptr(JsonNode) node = NULL;
      g_autoptr(GError) error = NULL;

      node = pooler_json_parse (lenient[i], strlen (lenient[i]), &error);
      g_assert_null (node);
      g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
    }

  for (guint i = 0; i < G_N_ELEMENTS (strict); i++)
    {
      g_autoptr(JsonNode) node = NULL;
      g_autoptr(GError) error = NULL;

      node = pooler_json_parse (strict[i], strlen (strict[i]), &error);
      g_assert_no_error (error);
      g_assert_nonnull (node);
    }
}

/* What json-glib would change on the way through (a wrapped integer,
 * "1e+17.0", a string cut at \u0000) is refused; its neighbours pass. */
static void
test_not_faithful (void)
{
  const char *refused[] = {
    "{\"maximum\":18446744073709551615}", "[9223372036854775808]", "[-9223372036854775809]",
    "[1e17]", "[-2.5e20]", "[1E400]", "[\"a\\u0000b\"]", "{\"a\":0xFFFFFFFFFFFFFFFFFF}", "[0x10]",
  };
  const char *carried[] = {
    "[9223372036854775807, -9223372036854775808, 0, -0]", "[99999999999999990.0]",
    "[1.5e-300, 0.1, 1e16, 123.456e2]", "[\"\\\\u0000 is text here\"]", "[\"\\u0001\"]",
    "[1E5, -0.0, 1e-400, 1e+5, 4.9e-324]",
    /* Long, but carried as they are. */
    "[0.1000000000000000055511151231257827021181583404541015625000000000]",
    "[1000000000000000000000000000000000000000000000000000000000000000000e-60]",
  };

  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autoptr(JsonNode) node = NULL;
      g_autoptr(GError) error = NULL;

      node = pooler_json_parse_client (refused[i], strlen (refused[i]), &error);
      g_assert_null (node);
      g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
      g_assert_nonnull (strstr (error->message, "Unsupported JSON at byte"));
      g_clear_error (&error);

      /* What the upstream sends is only read: json-glib's reading will do. */
      node = pooler_json_parse (refused[i], strlen (refused[i]), &error);
      g_assert_no_error (error);
      g_assert_nonnull (node);
    }
  for (guint i = 0; i < G_N_ELEMENTS (carried); i++)
    {
      g_autoptr(JsonNode) node = NULL;
      g_autoptr(GError) error = NULL;

      node = pooler_json_parse_client (carried[i], strlen (carried[i]), &error);
      g_assert_no_error (error);
      g_assert_nonnull (node);
    }
}

static void
test_depth_strings (void)
{
  /* 100 brackets inside a string do not nest. */
  g_autofree char *brackets = g_strnfill (100, '[');
  g_autofree char *in_string = g_strdup_printf ("{\"s\":\"%s]]}}\"}", brackets);
  const char *escaped_quote = "[\"\\\"[[[[\",\"\\\\\",[1]]";
  const char *escaped_quote_then_open = "[\"\\\"\",[[1]]]";
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (pooler_json_depth_ok (in_string, strlen (in_string), 1));
  node = pooler_json_parse (in_string, strlen (in_string), &error);
  g_assert_no_error (error);
  g_assert_nonnull (node);

  /* "\"[[[[" is a string; "\\" is a string ending in an escaped
   * backslash, so the [1] after it is real and counts. */
  g_assert_true (pooler_json_depth_ok (escaped_quote, strlen (escaped_quote), 2));
  g_assert_false (pooler_json_depth_ok (escaped_quote, strlen (escaped_quote), 1));

  /* An escaped quote does not end the string early. */
  g_assert_true (pooler_json_depth_ok (escaped_quote_then_open,
                                       strlen (escaped_quote_then_open), 3));
  g_assert_false (pooler_json_depth_ok (escaped_quote_then_open,
                                        strlen (escaped_quote_then_open), 2));
}

static void
test_very_deep (void)
{
  /* Debian's json-glib overflows the stack on this; we must refuse it
   * before it gets there. */
  gsize depth = 100000;
  g_autofree char *open = g_strnfill (depth, '[');
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(JsonObject) object = NULL;
  g_autoptr(GError) error = NULL;

  node = pooler_json_parse (open, depth, &error);
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
  g_assert_null (node);
  g_clear_error (&error);

  object = pooler_json_parse_object (open, depth, &error);
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
  g_assert_null (object);
}

static void
test_parse_errors (void)
{
  const char *bad[] = {
    "{",
    "{\"a\":}",
    "[1,]",
    "nope",
    "{\"a\":1}}",
    "   ",
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonNode) node = pooler_json_parse (bad[i], strlen (bad[i]), &error);

      g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
      g_assert_null (node);
    }

  /* Empty: both a zero length and a NULL pointer with it. */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) node = pooler_json_parse ("", 0, &error);

    g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
    g_assert_null (node);
  }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) node = pooler_json_parse (NULL, 0, &error);

    g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
    g_assert_null (node);
  }
}

static void
test_parse_error_hides_input (void)
{
  /* json-glib quotes the token it trips over; that token could be a
   * secret, so our message must not carry it. */
  const char *bad[] = {
    "{\"access_token\": \"SECRET-1\" \"refresh_token\": 1}",
    "{\"access_token\": SECRET-2}",
    "{\"a\": tSECRET}",
    "[\"SECRET\",]",
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonNode) node = pooler_json_parse (bad[i], strlen (bad[i]), &error);

      g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
      g_assert_null (node);
      g_assert_null (strstr (error->message, "SECRET"));
      g_assert_true (g_str_has_prefix (error->message, "Invalid JSON"));
    }

  /* The position survives, so the message is still useful. */
  {
    g_autoptr(GError) error = NULL;
    const char *two_lines = "{\n\"a\": x}";
    g_autoptr(JsonNode) node = pooler_json_parse (two_lines, strlen (two_lines), &error);

    g_assert_null (node);
    g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
    g_assert_nonnull (strstr (error->message, "line 2"));
  }
}

static void
test_length_respected (void)
{
  /* Only the first @length bytes are the document. */
  const char *data = "{\"a\":1}garbage";
  g_autoptr(JsonObject) object = NULL;
  g_autoptr(GError) error = NULL;

  object = pooler_json_parse_object (data, 7, &error);
  g_assert_no_error (error);
  g_assert_cmpint (json_object_get_int_member (object, "a"), ==, 1);
}

static void
test_parse_object (void)
{
  const char *good = "{\"a\":{\"b\":[1,2]}}";
  const char *not_objects[] = { "[1,2]", "1", "\"s\"", "null", "true" };
  g_autoptr(JsonObject) object = NULL;
  g_autoptr(GError) error = NULL;
  gsize i;

  object = pooler_json_parse_object (good, strlen (good), &error);
  g_assert_no_error (error);
  g_assert_nonnull (object);
  g_assert_true (json_object_has_member (object, "a"));
  g_assert_cmpint (json_array_get_length (json_object_get_array_member (
                     json_object_get_object_member (object, "a"), "b")), ==, 2);

  for (i = 0; i < G_N_ELEMENTS (not_objects); i++)
    {
      g_autoptr(GError) local_error = NULL;
      g_autoptr(JsonObject) other = NULL;

      other = pooler_json_parse_object (not_objects[i], strlen (not_objects[i]), &local_error);
      g_assert_error (local_error, POOLER_ERROR, POOLER_ERROR_INVALID);
      g_assert_null (other);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/json/depth/limit", test_depth_limit);
  g_test_add_func ("/json/depth/strings", test_depth_strings);
  g_test_add_func ("/json/depth/very-deep", test_very_deep);
  g_test_add_func ("/json/depth/not-strict", test_not_strict);
  g_test_add_func ("/json/not-faithful", test_not_faithful);
  g_test_add_func ("/json/parse/errors", test_parse_errors);
  g_test_add_func ("/json/parse/error-hides-input", test_parse_error_hides_input);
  g_test_add_func ("/json/parse/length", test_length_respected);
  g_test_add_func ("/json/parse/object", test_parse_object);

  return g_test_run ();
}
