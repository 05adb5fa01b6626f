/* pooler-v1-collector.c: the final Response assembled from the upstream's
 * event stream, for /v1 callers that did not ask for a stream.
 *
 * With store:false the backend may leave response.completed's "output"
 * empty and send the items only as response.output_item.done events, so
 * those are kept (in output_index order) to fill it.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-v1"

#include "config.h"

#include "pooler-json.h"

#include <string.h>

#include "pooler-v1-private.h"

typedef struct
{
  gint64    index;
  JsonNode *item;
} DoneItem;

struct _PoolerV1Collector
{
  GArray     *items;         /* DoneItem */
  GString    *text;          /* output_text deltas, for a last resort */
  JsonObject *response;      /* the terminal event's "response" */
  char       *terminal;
  char       *failure_code;
  char       *failure_message;
};

static void
done_item_clear (gpointer data)
{
  DoneItem *item = data;

  g_clear_pointer (&item->item, json_node_unref);
}

PoolerV1Collector *
pooler_v1_collector_new (void)
{
  PoolerV1Collector *collector = g_new0 (PoolerV1Collector, 1);

  collector->items = g_array_new (FALSE, TRUE, sizeof (DoneItem));
  g_array_set_clear_func (collector->items, done_item_clear);
  collector->text = g_string_new (NULL);

  return collector;
}

void
pooler_v1_collector_reset (PoolerV1Collector *collector)
{
  g_array_set_size (collector->items, 0);
  g_string_truncate (collector->text, 0);
  g_clear_pointer (&collector->response, json_object_unref);
  g_clear_pointer (&collector->terminal, g_free);
  g_clear_pointer (&collector->failure_code, g_free);
  g_clear_pointer (&collector->failure_message, g_free);
}

void
pooler_v1_collector_free (PoolerV1Collector *collector)
{
  if (collector == NULL)
    return;

  pooler_v1_collector_reset (collector);
  g_array_unref (collector->items);
  g_string_free (collector->text, TRUE);
  g_free (collector);
}

static JsonObject *
object_member (JsonObject *object,
               const char *name)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

static void
note_failure (PoolerV1Collector *collector,
              JsonObject        *error)
{
  g_free (collector->failure_code);
  g_free (collector->failure_message);
  collector->failure_code = g_strdup (pooler_json_get_string (error, "code"));
  collector->failure_message = g_strdup (pooler_json_get_string (error, "message"));
}

void
pooler_v1_collector_event (PoolerV1Collector *collector,
                           const char        *type,
                           JsonObject        *event)
{
  g_return_if_fail (collector != NULL);

  if (type == NULL || event == NULL)
    return;

  if (strcmp (type, "response.output_item.done") == 0)
    {
      JsonNode *item = json_object_get_member (event, "item");
      DoneItem done;

      if (item == NULL || !JSON_NODE_HOLDS_OBJECT (item))
        return;
      done.index = json_object_has_member (event, "output_index")
                   ? json_object_get_int_member (event, "output_index")
                   : (gint64) collector->items->len;
      done.item = json_node_copy (item);
      g_array_append_val (collector->items, done);
    }
  else if (strcmp (type, "response.output_text.delta") == 0)
    {
      const char *delta = pooler_json_get_string (event, "delta");

      if (delta != NULL)
        g_string_append (collector->text, delta);
    }
  else if (strcmp (type, "response.completed") == 0 || strcmp (type, "response.done") == 0 ||
           strcmp (type, "response.incomplete") == 0 || strcmp (type, "response.failed") == 0)
    {
      JsonObject *response = object_member (event, "response");

      g_free (collector->terminal);
      /* response.done is the websocket spelling of response.completed. */
      collector->terminal = g_strdup (strcmp (type, "response.done") == 0 ? "response.completed" : type);
      g_clear_pointer (&collector->response, json_object_unref);
      if (response != NULL)
        collector->response = json_object_ref (response);
      if (strcmp (type, "response.failed") == 0)
        note_failure (collector, object_member (response, "error"));
    }
  else if (strcmp (type, "error") == 0)
    {
      g_free (collector->terminal);
      collector->terminal = g_strdup (type);
      /* {"type":"error","code","message"} or {"type":"error","error":{...}} */
      note_failure (collector, object_member (event, "error") != NULL ? object_member (event, "error") : event);
    }
}

const char *
pooler_v1_collector_get_terminal (PoolerV1Collector *collector)
{
  return collector->terminal;
}

gboolean
pooler_v1_collector_succeeded (PoolerV1Collector *collector)
{
  return g_strcmp0 (collector->terminal, "response.completed") == 0 ||
         g_strcmp0 (collector->terminal, "response.incomplete") == 0;
}

const char *
pooler_v1_collector_get_failure_code (PoolerV1Collector *collector)
{
  return collector->failure_code;
}

const char *
pooler_v1_collector_get_failure_message (PoolerV1Collector *collector)
{
  return collector->failure_message;
}

static gint
compare_done_items (gconstpointer a,
                    gconstpointer b)
{
  const DoneItem *x = a;
  const DoneItem *y = b;

  return x->index < y->index ? -1 : (x->index > y->index ? 1 : 0);
}

/* The last resort: the deltas as one assistant message. */
static JsonNode *
message_from_text (const char *text)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "type");
  json_builder_add_string_value (builder, "message");
  json_builder_set_member_name (builder, "role");
  json_builder_add_string_value (builder, "assistant");
  json_builder_set_member_name (builder, "status");
  json_builder_add_string_value (builder, "completed");
  json_builder_set_member_name (builder, "content");
  json_builder_begin_array (builder);
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "type");
  json_builder_add_string_value (builder, "output_text");
  json_builder_set_member_name (builder, "text");
  json_builder_add_string_value (builder, text);
  json_builder_set_member_name (builder, "annotations");
  json_builder_begin_array (builder);
  json_builder_end_array (builder);
  json_builder_end_object (builder);
  json_builder_end_array (builder);
  json_builder_end_object (builder);

  return json_builder_get_root (builder);
}

JsonObject *
pooler_v1_collector_build_response (PoolerV1Collector *collector)
{
  JsonObject *response;
  JsonObjectIter iter;
  const char *name;
  JsonNode *member;
  JsonNode *output;

  g_return_val_if_fail (collector != NULL, NULL);

  if (!pooler_v1_collector_succeeded (collector) || collector->response == NULL)
    return NULL;

  /* json_node_copy() shares nested objects: copy the top level, which is
   * all that changes here. */
  response = json_object_new ();
  json_object_iter_init (&iter, collector->response);
  while (json_object_iter_next (&iter, &name, &member))
    json_object_set_member (response, name, json_node_copy (member));

  json_object_set_string_member (response, "object", "response");

  output = json_object_get_member (response, "output");
  if (output == NULL || !JSON_NODE_HOLDS_ARRAY (output) ||
      json_array_get_length (json_node_get_array (output)) == 0)
    {
      JsonArray *items = json_array_new ();

      g_array_sort (collector->items, compare_done_items);
      for (guint i = 0; i < collector->items->len; i++)
        json_array_add_element (items, json_node_copy (g_array_index (collector->items, DoneItem, i).item));
      if (json_array_get_length (items) == 0 && collector->text->len > 0)
        json_array_add_element (items, message_from_text (collector->text->str));
      json_object_set_array_member (response, "output", items);
    }

  return response;
}
