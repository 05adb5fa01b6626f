/* pooler-sse.h: an incremental Server-Sent Events parser that watches a
 * stream as it passes through. It never holds the stream back: the proxy
 * forwards each chunk first and then feeds the same bytes here.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Events larger than this are skipped (and counted), not buffered. */
#define POOLER_SSE_MAX_EVENT_SIZE (4 * 1024 * 1024)

typedef struct _PoolerSseParser PoolerSseParser;

/* @event is the "event:" field or NULL; @data the joined "data:" lines.
 * Both are the parser's own, valid only during the call. */
typedef void (*PoolerSseEventFunc) (const char *event,
                                    const char *data,
                                    gsize       data_length,
                                    gpointer    user_data);

typedef struct
{
  gint64 input_tokens;
  gint64 output_tokens;
  gint64 cached_tokens;
  gint64 reasoning_tokens;
} PoolerUsage;

PoolerSseParser *pooler_sse_parser_new          (PoolerSseEventFunc  func,
                                                 gpointer            user_data);
void             pooler_sse_parser_free         (PoolerSseParser    *parser);
void             pooler_sse_parser_feed         (PoolerSseParser    *parser,
                                                 const char         *data,
                                                 gsize               length);
/* Dispatches a last event that was not followed by a blank line. */
void             pooler_sse_parser_finish       (PoolerSseParser    *parser);
guint            pooler_sse_parser_get_events   (PoolerSseParser    *parser);
guint            pooler_sse_parser_get_skipped  (PoolerSseParser    *parser);

/* The "type" of an event: the event field, or the JSON "type" member of
 * its data when there is no event field (the SDK-style stream). Returns a
 * newly allocated string or NULL. */
char            *pooler_sse_event_type          (const char         *event,
                                                 const char         *data,
                                                 gsize               data_length);
/* Without allocating: the type as @length bytes of @event or @data
 * (the event field, or a "type" that leads the data unescaped), or NULL
 * when only pooler_sse_event_type()'s parse can tell. Not terminated
 * when it points into @data. */
const char      *pooler_sse_event_type_peek     (const char         *event,
                                                 const char         *data,
                                                 gsize               data_length,
                                                 gsize              *length);
/* Reads response.usage from a response.completed event's data. */
gboolean         pooler_sse_parse_usage         (const char         *data,
                                                 gsize               data_length,
                                                 PoolerUsage        *usage);
/* Reads response.usage and response.id of a response.completed event in
 * one parse; *response_id may be NULL. */
gboolean         pooler_sse_parse_completed     (const char         *data,
                                                 gsize               data_length,
                                                 PoolerUsage        *usage,
                                                 char              **response_id);
/* Reads response.error.code (or error.code) from a failed/error event. */
char            *pooler_sse_parse_error_code    (const char         *data,
                                                 gsize               data_length);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PoolerSseParser, pooler_sse_parser_free)

G_END_DECLS
