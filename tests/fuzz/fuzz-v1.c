/* fuzz-v1.c: the /v1 translators: request bodies in, Codex requests out;
 * upstream SSE in, SDK-shaped streams and answers out; error bodies.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <stdint.h>

#include "pooler-json.h"
#include "pooler-sse.h"
#include "pooler-v1-private.h"

int LLVMFuzzerTestOneInput (const uint8_t *data,
                            size_t         size);

typedef struct
{
  PoolerTranslator *translators[3];
  GByteArray       *out;
} Feed;

static void
on_event (const char *event,
          const char *json,
          gsize       length,
          gpointer    user_data)
{
  Feed *feed = user_data;
  g_autofree char *type = pooler_sse_event_type (event, json, length);

  if (type == NULL)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (feed->translators); i++)
    feed->translators[i]->funcs->event (feed->translators[i]->data, type, json, length, feed->out);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  const char *text = (const char *) data;
  g_autoptr(JsonObject) object = pooler_json_parse_object (text, size, NULL);
  g_autoptr(GBytes) body = g_bytes_new (data, size);
  g_autoptr(PoolerSseParser) parser = NULL;
  g_autoptr(GBytes) mapped = NULL;
  Feed feed;
  guint status = 429;

  if (object != NULL)
    {
      PoolerV1Problem *problem = NULL;
      g_autoptr(PoolerV1Request) responses = pooler_v1_responses_translate_request (object, &problem);

      g_clear_pointer (&problem, pooler_v1_problem_free);
      {
        g_autoptr(PoolerV1Request) chat = pooler_v1_chat_translate_request (object, &problem);

        g_clear_pointer (&problem, pooler_v1_problem_free);
        (void) chat;
      }
      (void) responses;
    }

  /* The same bytes as an upstream stream, through every translator. */
  feed.translators[0] = pooler_v1_responses_translator_new (size > 0 && (data[0] & 1));
  feed.translators[1] = pooler_v1_chat_translator_new (TRUE, TRUE, "gpt-5.5");
  feed.translators[2] = pooler_v1_chat_translator_new (FALSE, FALSE, "gpt-5.5");
  feed.out = g_byte_array_new ();
  parser = pooler_sse_parser_new (on_event, &feed);
  pooler_sse_parser_feed (parser, text, size);
  pooler_sse_parser_finish (parser);
  for (guint i = 0; i < G_N_ELEMENTS (feed.translators); i++)
    {
      g_autoptr(GBytes) reshaped = NULL;
      guint error_status = 502;

      feed.translators[i]->funcs->finish (feed.translators[i]->data, size > 1 && (data[1] & 1), feed.out);
      reshaped = feed.translators[i]->funcs->error (feed.translators[i]->data, &error_status, body);
      pooler_translator_free (feed.translators[i]);
    }
  g_byte_array_unref (feed.out);

  mapped = pooler_v1_error_translate (&status, body, NULL, NULL);
  (void) mapped;

  return 0;
}
