/* pooler-json.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-json"

#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pooler-error.h"
#include "pooler-json.h"

typedef enum
{
  SHAPE_OK,
  SHAPE_TOO_DEEP,
  SHAPE_NOT_STRICT,
  SHAPE_NOT_FAITHFUL,
} Shape;

/* Numbers json-glib 1.6 would change: an integer outside 64 bits wraps
 * around, and a double at or above 1e17 (or an infinite one) comes out
 * of its generator as "1e+17.0", which is not JSON. Requests are passed
 * on re-generated, so such a number would reach the upstream changed. */
static gboolean
number_is_faithful (const char *start,
                    gsize       length)
{
  g_autofree char *text = g_strndup (start, length);
  gboolean integer = TRUE;
  char *end = NULL;
  double value;

  for (gsize i = 0; i < length; i++)
    if (text[i] == '.' || text[i] == 'e' || text[i] == 'E')
      integer = FALSE;

  if (integer)
    return g_ascii_string_to_signed (text, 10, G_MININT64, G_MAXINT64, NULL, NULL);

  /* Only what parses as a whole is judged; json-glib reports the rest. */
  value = g_ascii_strtod (text, &end);
  return end == text || *end != '\0' || (isfinite (value) && fabs (value) < 1e17);
}

/* Whether a byte may stand outside a string in strict JSON (RFC 8259):
 * structure, whitespace, and what numbers and true/false/null are made
 * of. Letters are let through for json-glib to judge as bare words. */
static inline gboolean
may_stand_outside_string (guchar c)
{
  switch (c)
    {
    case '{': case '}': case '[': case ']': case ',': case ':':
    case ' ': case '\t': case '\n': case '\r':
    case '-': case '+': case '.':
      return TRUE;
    default:
      return g_ascii_isalnum (c);
    }
}

/* json-glib 1.6 is laxer than JSON: it skips comments and reads
 * single-quoted strings, either of which can hide a '"' from a count
 * that only knows double quotes, and then brackets from the depth check
 * (a segfault in json-glib's recursion). So any byte that strict JSON
 * never has outside a string ends the check as SHAPE_NOT_STRICT, with its
 * offset in @at. */
static Shape
json_shape (const char *data,
            gsize       length,
            guint       max_depth,
            gboolean    faithful,
            gsize      *at)
{
  guint depth = 0;
  gboolean in_string = FALSE;
  gsize i = 0;

  /* A UTF-8 byte order mark, which json-glib skips (editors on Windows
   * write one into auth.json). */
  if (length >= 3 && memcmp (data, "\xEF\xBB\xBF", 3) == 0)
    i = 3;

  for (; i < length; i++)
    {
      guchar c = (guchar) data[i];

      if (in_string)
        {
          /* Skip the escaped character, whatever it is, so \" and \\
           * do not end or extend the string. json-glib ends a string at
           * \u0000, dropping the rest of it. */
          if (c == '\\')
            {
              if (faithful && i + 6 <= length && memcmp (data + i + 1, "u0000", 5) == 0)
                {
                  *at = i;
                  return SHAPE_NOT_FAITHFUL;
                }
              i++;
            }
          else if (c == '"')
            in_string = FALSE;
          continue;
        }

      /* A number: a digit, or a minus before one (json-glib judges the
       * rest of what is not). */
      if (faithful && (g_ascii_isdigit (c) || (c == '-' && i + 1 < length && g_ascii_isdigit (data[i + 1]))))
        {
          gsize end = i + 1;

          while (end < length && (g_ascii_isdigit (data[end]) || data[end] == '.' || data[end] == 'e' ||
                                  data[end] == 'E' || data[end] == '+' || data[end] == '-'))
            end++;
          /* json-glib also reads hexadecimal (0x...), which JSON has not,
           * and writes it back as decimal, wrapped beyond 64 bits. */
          if ((end < length && (data[end] == 'x' || data[end] == 'X')) ||
              !number_is_faithful (data + i, end - i))
            {
              *at = i;
              return SHAPE_NOT_FAITHFUL;
            }
          i = end - 1;
          continue;
        }

      switch (c)
        {
        case '"':
          in_string = TRUE;
          break;

        case '{':
        case '[':
          if (++depth > max_depth)
            return SHAPE_TOO_DEEP;
          break;

        case '}':
        case ']':
          /* Unbalanced closers are the parser's problem, not ours. */
          if (depth > 0)
            depth--;
          break;

        default:
          if (!may_stand_outside_string (c))
            {
              *at = i;
              return SHAPE_NOT_STRICT;
            }
          break;
        }
    }

  return SHAPE_OK;
}

gboolean
pooler_json_depth_ok (const char *data,
                      gsize       length,
                      guint       max_depth)
{
  gsize at = 0;

  g_return_val_if_fail (data != NULL || length == 0, FALSE);

  return json_shape (data, length, max_depth, TRUE, &at) == SHAPE_OK;
}

/* json-glib's messages quote the offending token ("unexpected string
 * constant \"...\""), which may be a secret from an auth.json or a
 * request, so only its position and the kind of error are kept. */
static char *
describe_parse_error (const GError *error)
{
  const char *what = "syntax error";
  const char *position;
  guint line = 0;
  guint column = 0;

  if (error->domain == JSON_PARSER_ERROR)
    {
      switch (error->code)
        {
        case JSON_PARSER_ERROR_TRAILING_COMMA:
          what = "trailing comma";
          break;
        case JSON_PARSER_ERROR_MISSING_COMMA:
          what = "missing comma";
          break;
        case JSON_PARSER_ERROR_MISSING_COLON:
          what = "missing colon";
          break;
        case JSON_PARSER_ERROR_INVALID_BAREWORD:
          what = "invalid bare word";
          break;
        case JSON_PARSER_ERROR_EMPTY_MEMBER_NAME:
          what = "empty member name";
          break;
        case JSON_PARSER_ERROR_INVALID_DATA:
          what = "invalid data (not UTF-8?)";
          break;
        default:
          break;
        }
    }

  /* The message starts "<data>:LINE:COLUMN: " when json-glib knows where. */
  position = g_str_has_prefix (error->message, "<data>:") ? error->message + 7 : NULL;
  if (position != NULL && sscanf (position, "%u:%u:", &line, &column) == 2)
    return g_strdup_printf ("Invalid JSON at line %u, column %u: %s", line, column, what);

  return g_strdup_printf ("Invalid JSON: %s", what);
}

static JsonNode *
parse (const char  *data,
       gsize        length,
       gboolean     faithful,
       GError     **error)
{
  g_autoptr(JsonParser) parser = NULL;
  g_autoptr(GError) local_error = NULL;
  gsize at = 0;

  g_return_val_if_fail (data != NULL || length == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (length == 0)
    {
      g_set_error_literal (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                           "The JSON document is empty");
      return NULL;
    }

  if (length > G_MAXSSIZE)
    {
      g_set_error_literal (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                           "The JSON document is too large");
      return NULL;
    }

  /* json-glib recurses once per level and overflows the stack on deep
   * input, so this check must come before it ever sees the data. */
  switch (json_shape (data, length, POOLER_JSON_MAX_DEPTH, faithful, &at))
    {
    case SHAPE_TOO_DEEP:
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                   "JSON nests deeper than %d levels", POOLER_JSON_MAX_DEPTH);
      return NULL;
    case SHAPE_NOT_STRICT:
      /* No quote of the byte: it may be the start of a secret. */
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                   "Invalid JSON at byte %" G_GSIZE_FORMAT ": a character that JSON does not "
                   "allow outside a string (comments and single quotes are not JSON)", at);
      return NULL;
    case SHAPE_NOT_FAITHFUL:
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                   "Unsupported JSON at byte %" G_GSIZE_FORMAT ": integers must fit in 64 bits, other "
                   "numbers must be below 1e17, and strings may not contain \\u0000", at);
      return NULL;
    case SHAPE_OK:
    default:
      break;
    }

  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, data, (gssize) length, &local_error))
    {
      g_autofree char *message = describe_parse_error (local_error);

      g_set_error_literal (error, POOLER_ERROR, POOLER_ERROR_INVALID, message);
      return NULL;
    }

  /* Whitespace only: json-glib accepts it and has no root. */
  if (json_parser_get_root (parser) == NULL)
    {
      g_set_error_literal (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                           "The JSON document is empty");
      return NULL;
    }

  return json_parser_steal_root (parser);
}

JsonNode *
pooler_json_parse (const char  *data,
                   gsize        length,
                   GError     **error)
{
  return parse (data, length, FALSE, error);
}

JsonNode *
pooler_json_parse_client (const char  *data,
                          gsize        length,
                          GError     **error)
{
  return parse (data, length, TRUE, error);
}

static JsonObject *
root_object (JsonNode  *root,
             GError   **error)
{
  if (root == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error_literal (error, POOLER_ERROR, POOLER_ERROR_INVALID, "Expected a JSON object");
      return NULL;
    }
  return json_object_ref (json_node_get_object (root));
}

JsonObject *
pooler_json_parse_client_object (const char  *data,
                                 gsize        length,
                                 GError     **error)
{
  g_autoptr(JsonNode) root = NULL;

  g_return_val_if_fail (data != NULL || length == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  root = parse (data, length, TRUE, error);
  return root_object (root, error);
}

JsonObject *
pooler_json_parse_object (const char  *data,
                          gsize        length,
                          GError     **error)
{
  g_autoptr(JsonNode) root = NULL;

  g_return_val_if_fail (data != NULL || length == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  root = pooler_json_parse (data, length, error);
  return root_object (root, error);
}

const char *
pooler_json_get_string (JsonObject *object,
                        const char *member)
{
  JsonNode *node;

  g_return_val_if_fail (member != NULL, NULL);

  node = object != NULL ? json_object_get_member (object, member) : NULL;
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;

  return json_node_get_string (node);
}
