/* pooler-sse.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-sse"

#include "config.h"

#include <string.h>

#include "pooler-json.h"
#include "pooler-json-scan.h"
#include "pooler-sse.h"

struct _PoolerSseParser
{
  PoolerSseEventFunc  func;
  gpointer            user_data;

  GString            *line;      /* a line split across chunks */
  GString            *data;      /* the current event's data lines */
  GString            *event;     /* the current event's "event" field (kept
                                  * from event to event: no allocation each) */
  gboolean            has_event;
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
  /* Sized for a usual event (a few hundred bytes of data), under the
   * 1 KB from which every malloc() folds glibc's fast bins together. */
  parser->line = g_string_sized_new (500);
  parser->data = g_string_sized_new (500);
  parser->event = g_string_sized_new (POOLER_JSON_KEY_SIZE);

  return parser;
}

void
pooler_sse_parser_free (PoolerSseParser *parser)
{
  if (parser == NULL)
    return;

  g_string_free (parser->line, TRUE);
  g_string_free (parser->data, TRUE);
  g_string_free (parser->event, TRUE);
  g_free (parser);
}

static void
reset_event (PoolerSseParser *parser)
{
  g_string_truncate (parser->data, 0);
  g_string_truncate (parser->event, 0);
  parser->has_event = FALSE;
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
        parser->func (parser->has_event ? parser->event->str : NULL,
                      parser->data->str, parser->data->len, parser->user_data);
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
      g_string_truncate (parser->event, 0);
      g_string_append_len (parser->event, value, value_length);
      parser->has_event = TRUE;
    }
  /* "id" and "retry" mean nothing to a pass-through observer. */
}

/* The first '\n' or '\r' in [@p, @end), or @end: memchr() for each
 * instead of a byte loop over every event's text. *@lf keeps the next LF
 * (or @end) across calls, so lines that end in CR alone do not search
 * the rest of the chunk each time. */
static inline const char *
line_end (const char  *p,
          const char  *end,
          const char **lf)
{
  const char *cr;

  if (*lf == NULL || *lf < p)
    {
      *lf = memchr (p, '\n', (gsize) (end - p));
      if (*lf == NULL)
        *lf = end;
    }
  cr = memchr (p, '\r', (gsize) (*lf - p));

  return cr != NULL ? cr : *lf;
}

void
pooler_sse_parser_feed (PoolerSseParser *parser,
                        const char      *data,
                        gsize            length)
{
  const char *p = data;
  const char *end = data + length;
  const char *lf = NULL;

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
      const char *nl = line_end (p, end, &lf);

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

const char *
pooler_sse_event_type_peek (const char *event,
                            const char *data,
                            gsize       data_length,
                            gsize      *length)
{
  static const char needle[] = "{\"type\":\"";

  if (event != NULL && *event != '\0')
    {
      *length = strlen (event);
      return event;
    }

  /* The Responses API puts "type" first; anything else is parsed. */
  if (data != NULL && data_length > sizeof needle && memcmp (data, needle, sizeof needle - 1) == 0)
    {
      const char *start = data + sizeof needle - 1;
      const char *quote = memchr (start, '"', data_length - (sizeof needle - 1));

      if (quote != NULL && memchr (start, '\\', quote - start) == NULL)
        {
          *length = quote - start;
          return start;
        }
    }

  return NULL;
}

char *
pooler_sse_event_type (const char *event,
                       const char *data,
                       gsize       data_length)
{
  g_autoptr(JsonObject) object = NULL;
  const char *type;
  gsize length;

  if ((type = pooler_sse_event_type_peek (event, data, data_length, &length)) != NULL)
    return g_strndup (type, length);

  if (data == NULL)
    return NULL;

  object = pooler_json_parse_object (data, data_length, NULL);
  if (object == NULL || !json_object_has_member (object, "type"))
    return NULL;

  return g_strdup (json_object_get_string_member_with_default (object, "type", NULL));
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

/* Reads response.usage and response.id of a response.completed event
 * without building a tree: the event repeats the whole answer. */
typedef struct
{
  PoolerUsage  *usage;
  char        **response_id;
  gboolean      has_usage;
} Completed;

typedef struct
{
  const char *name;
  gint64     *out;
} Detail;

static gboolean
scan_token_details (PoolerJsonScanner *s,
                    const char        *key,
                    guint              depth,
                    gboolean          *failed,
                    gpointer           user_data)
{
  const Detail *detail = user_data;

  if (strcmp (key, detail->name) != 0)
    return FALSE;
  *failed = !pooler_json_scan_int (s, depth, detail->out);
  return TRUE;
}

static gboolean
scan_usage (PoolerJsonScanner *s,
            const char        *key,
            guint              depth,
            gboolean          *failed,
            gpointer           user_data)
{
  PoolerUsage *usage = user_data;
  gint64 *target = NULL;
  Detail detail;

  if (strcmp (key, "input_tokens") == 0)
    target = &usage->input_tokens;
  else if (strcmp (key, "output_tokens") == 0)
    target = &usage->output_tokens;
  if (target != NULL)
    {
      *failed = !pooler_json_scan_int (s, depth, target);
      return TRUE;
    }

  if (strcmp (key, "input_tokens_details") == 0)
    detail = (Detail) { "cached_tokens", &usage->cached_tokens };
  else if (strcmp (key, "output_tokens_details") == 0)
    detail = (Detail) { "reasoning_tokens", &usage->reasoning_tokens };
  else
    return FALSE;

  pooler_json_scan_skip_ws (s);
  if (s->p >= s->end || *s->p != '{')
    return FALSE;
  *failed = !pooler_json_scan_object (s, depth, scan_token_details, &detail);
  return TRUE;
}

static gboolean
scan_response (PoolerJsonScanner *s,
               const char        *key,
               guint              depth,
               gboolean          *failed,
               gpointer           user_data)
{
  Completed *completed = user_data;

  pooler_json_scan_skip_ws (s);
  if (strcmp (key, "id") == 0 && completed->response_id != NULL && s->p < s->end && *s->p == '"')
    {
      g_autoptr(GString) id = g_string_sized_new (POOLER_JSON_KEY_SIZE);

      *failed = !pooler_json_scan_string (s, id);
      g_free (*completed->response_id);
      *completed->response_id = g_string_free (g_steal_pointer (&id), FALSE);
      return TRUE;
    }
  if (strcmp (key, "usage") == 0 && s->p < s->end && *s->p == '{')
    {
      completed->has_usage = TRUE;
      *failed = !pooler_json_scan_object (s, depth, scan_usage, completed->usage);
      return TRUE;
    }
  return FALSE;
}

static gboolean
scan_completed (PoolerJsonScanner *s,
                const char        *key,
                guint              depth,
                gboolean          *failed,
                gpointer           user_data)
{
  pooler_json_scan_skip_ws (s);
  if (strcmp (key, "response") != 0 || s->p >= s->end || *s->p != '{')
    return FALSE;
  *failed = !pooler_json_scan_object (s, depth, scan_response, user_data);
  return TRUE;
}

gboolean
pooler_sse_parse_completed (const char   *data,
                            gsize         data_length,
                            PoolerUsage  *usage,
                            char        **response_id)
{
  PoolerJsonScanner s = { data, data + data_length, "event", NULL };
  Completed completed = { usage, response_id, FALSE };
  PoolerUsage found = { -1, -1, -1, -1 };

  g_return_val_if_fail (usage != NULL, FALSE);
  g_return_val_if_fail (data != NULL || data_length == 0, FALSE);

  *usage = found;
  if (response_id != NULL)
    *response_id = NULL;

  completed.usage = &found;
  if (!pooler_json_scan_object (&s, 0, scan_completed, &completed))
    {
      /* Not JSON after all: nothing from it counts. */
      if (response_id != NULL)
        g_clear_pointer (response_id, g_free);
      return FALSE;
    }
  pooler_json_scan_skip_ws (&s);
  if (s.p != s.end)
    {
      if (response_id != NULL)
        g_clear_pointer (response_id, g_free);
      return FALSE;
    }

  if (!completed.has_usage)
    return FALSE;
  *usage = found;
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
  /* The Responses API's own error event is flat: {"type":"error","code":...}. */
  if (error == NULL && g_strcmp0 (pooler_json_get_string (root, "type"), "error") == 0)
    error = root;
  if (error == NULL)
    return NULL;

  code = pooler_json_get_string (error, "code");
  if (code == NULL && error != root)
    code = pooler_json_get_string (error, "type");

  return g_strdup (code);
}
