/* pooler-sse.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-sse"

#include "config.h"

#include <string.h>

#include "pooler-json.h"
#include "pooler-sse.h"

struct _PoolerSseParser
{
  PoolerSseEventFunc  func;
  gpointer            user_data;

  GString            *line;      /* a line split across chunks */
  GString            *data;      /* the current event's data lines */
  char               *event;     /* the current event's "event" field */
  gboolean            has_data;
  gboolean            skipping;  /* the current event grew too large */
  gboolean            after_cr;  /* last chunk ended in '\r': a '\n' may follow */
  guint               n_events;
  guint               n_skipped;
};

PoolerSseParser *
pooler_sse_parser_new (PoolerSseEventFunc func,
                       gpointer           user_data)
{
  PoolerSseParser *parser = g_new0 (PoolerSseParser, 1);

  parser->func = func;
  parser->user_data = user_data;
  parser->line = g_string_new (NULL);
  parser->data = g_string_new (NULL);

  return parser;
}

void
pooler_sse_parser_free (PoolerSseParser *parser)
{
  if (parser == NULL)
    return;

  g_string_free (parser->line, TRUE);
  g_string_free (parser->data, TRUE);
  g_free (parser->event);
  g_free (parser);
}

static void
reset_event (PoolerSseParser *parser)
{
  g_string_truncate (parser->data, 0);
  g_clear_pointer (&parser->event, g_free);
  parser->has_data = FALSE;
  parser->skipping = FALSE;
}

static void
dispatch (PoolerSseParser *parser)
{
  if (parser->skipping)
    parser->n_skipped++;
  else if (parser->has_data)
    {
      parser->n_events++;
      if (parser->func != NULL)
        parser->func (parser->event, parser->data->str, parser->data->len, parser->user_data);
    }

  reset_event (parser);
}

static void
process_line (PoolerSseParser *parser,
              const char      *line,
              gsize            length)
{
  const char *colon;
  const char *value;
  gsize name_length;
  gsize value_length;

  if (length == 0)
    {
      dispatch (parser);
      return;
    }

  if (line[0] == ':' || parser->skipping)
    return;

  colon = memchr (line, ':', length);
  if (colon != NULL)
    {
      name_length = colon - line;
      value = colon + 1;
      value_length = length - name_length - 1;
      if (value_length > 0 && value[0] == ' ')
        {
          value++;
          value_length--;
        }
    }
  else
    {
      name_length = length;
      value = "";
      value_length = 0;
    }

  if (name_length == 4 && memcmp (line, "data", 4) == 0)
    {
      if (parser->data->len + value_length + 1 > POOLER_SSE_MAX_EVENT_SIZE)
        {
          parser->skipping = TRUE;
          g_string_truncate (parser->data, 0);
          return;
        }
      if (parser->has_data)
        g_string_append_c (parser->data, '\n');
      g_string_append_len (parser->data, value, value_length);
      parser->has_data = TRUE;
    }
  else if (name_length == 5 && memcmp (line, "event", 5) == 0)
    {
      g_free (parser->event);
      parser->event = g_strndup (value, value_length);
    }
  /* "id" and "retry" mean nothing to a pass-through observer. */
}

void
pooler_sse_parser_feed (PoolerSseParser *parser,
                        const char      *data,
                        gsize            length)
{
  const char *p = data;
  const char *end = data + length;

  g_return_if_fail (parser != NULL);

  if (length == 0)
    return;

  if (parser->after_cr)
    {
      parser->after_cr = FALSE;
      if (*p == '\n')
        p++;
    }

  while (p < end)
    {
      const char *nl = p;

      while (nl < end && *nl != '\n' && *nl != '\r')
        nl++;

      if (nl == end)
        {
          /* Keep at most one event's worth of a partial line. */
          if (parser->line->len + (end - p) <= POOLER_SSE_MAX_EVENT_SIZE)
            g_string_append_len (parser->line, p, end - p);
          else
            {
              parser->skipping = TRUE;
              g_string_truncate (parser->line, 0);
            }
          break;
        }

      if (parser->line->len > 0)
        {
          g_string_append_len (parser->line, p, nl - p);
          process_line (parser, parser->line->str, parser->line->len);
          g_string_truncate (parser->line, 0);
        }
      else
        process_line (parser, p, nl - p);

      if (*nl == '\r')
        {
          if (nl + 1 == end)
            parser->after_cr = TRUE;
          else if (nl[1] == '\n')
            nl++;
        }

      p = nl + 1;
    }
}

void
pooler_sse_parser_finish (PoolerSseParser *parser)
{
  g_return_if_fail (parser != NULL);

  if (parser->line->len > 0)
    {
      process_line (parser, parser->line->str, parser->line->len);
      g_string_truncate (parser->line, 0);
    }
  dispatch (parser);
}

guint
pooler_sse_parser_get_events (PoolerSseParser *parser)
{
  return parser->n_events;
}

guint
pooler_sse_parser_get_skipped (PoolerSseParser *parser)
{
  return parser->n_skipped;
}

/* Cheap extraction of a top-level "type":"..." without a JSON tree: the
 * Responses API puts it first, and anything odd falls back to parsing. */
char *
pooler_sse_event_type (const char *event,
                       const char *data,
                       gsize       data_length)
{
  static const char needle[] = "{\"type\":\"";
  g_autoptr(JsonObject) object = NULL;

  if (event != NULL && *event != '\0')
    return g_strdup (event);

  if (data == NULL)
    return NULL;

  if (data_length > sizeof needle && memcmp (data, needle, sizeof needle - 1) == 0)
    {
      const char *start = data + sizeof needle - 1;
      const char *quote = memchr (start, '"', data_length - (sizeof needle - 1));

      if (quote != NULL && memchr (start, '\\', quote - start) == NULL)
        return g_strndup (start, quote - start);
    }

  object = pooler_json_parse_object (data, data_length, NULL);
  if (object == NULL || !json_object_has_member (object, "type"))
    return NULL;

  return g_strdup (json_object_get_string_member_with_default (object, "type", NULL));
}

static gint64
int_member (JsonObject *object,
            const char *name)
{
  JsonNode *node;

  if (object == NULL)
    return -1;

  node = json_object_get_member (object, name);
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return -1;

  return json_node_get_int (node);
}

static JsonObject *
object_member (JsonObject *object,
               const char *name)
{
  JsonNode *node;

  if (object == NULL)
    return NULL;

  node = json_object_get_member (object, name);
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return NULL;

  return json_node_get_object (node);
}

gboolean
pooler_sse_parse_usage (const char  *data,
                        gsize        data_length,
                        PoolerUsage *usage)
{
  return pooler_sse_parse_completed (data, data_length, usage, NULL);
}

gboolean
pooler_sse_parse_completed (const char   *data,
                            gsize         data_length,
                            PoolerUsage  *usage,
                            char        **response_id)
{
  g_autoptr(JsonObject) root = NULL;
  JsonObject *response;
  JsonObject *u;

  g_return_val_if_fail (usage != NULL, FALSE);

  usage->input_tokens = -1;
  usage->output_tokens = -1;
  usage->cached_tokens = -1;
  usage->reasoning_tokens = -1;
  if (response_id != NULL)
    *response_id = NULL;

  root = pooler_json_parse_object (data, data_length, NULL);
  response = object_member (root, "response");
  if (response_id != NULL && response != NULL)
    *response_id = g_strdup (json_object_get_string_member_with_default (response, "id", NULL));

  u = object_member (response, "usage");
  if (u == NULL)
    return FALSE;

  usage->input_tokens = int_member (u, "input_tokens");
  usage->output_tokens = int_member (u, "output_tokens");
  usage->cached_tokens = int_member (object_member (u, "input_tokens_details"), "cached_tokens");
  usage->reasoning_tokens = int_member (object_member (u, "output_tokens_details"), "reasoning_tokens");

  return TRUE;
}

char *
pooler_sse_parse_error_code (const char *data,
                             gsize       data_length)
{
  g_autoptr(JsonObject) root = NULL;
  JsonObject *error;
  const char *code;

  root = pooler_json_parse_object (data, data_length, NULL);
  if (root == NULL)
    return NULL;

  error = object_member (object_member (root, "response"), "error");
  if (error == NULL)
    error = object_member (root, "error");
  if (error == NULL)
    return NULL;

  code = json_object_get_string_member_with_default (error, "code", NULL);
  if (code == NULL)
    code = json_object_get_string_member_with_default (error, "type", NULL);

  return g_strdup (code);
}
