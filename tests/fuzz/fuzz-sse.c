/* fuzz-sse.c: the SSE parser and the event readers, fed in odd chunks.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <stdint.h>

#include "pooler-quota.h"
#include "pooler-sse.h"

int LLVMFuzzerTestOneInput (const uint8_t *data,
                            size_t         size);

static void
on_event (const char *event,
          const char *data,
          gsize       length,
          gpointer    user_data)
{
  g_autofree char *type = pooler_sse_event_type (event, data, length);
  g_autofree char *code = pooler_sse_parse_error_code (data, length);
  g_autofree char *id = NULL;
  g_autoptr(PoolerQuotaEvidence) evidence = pooler_quota_parse_event (data, length, 1800000000);
  PoolerUsage usage;

  pooler_sse_parse_completed (data, length, &usage, &id);
  (void) type;
  (void) code;
  (void) evidence;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(PoolerSseParser) parser = pooler_sse_parser_new (on_event, NULL);
  size_t step = size > 0 ? (data[0] % 13) + 1 : 1;

  /* The same bytes, split at a data-dependent stride. */
  for (size_t offset = 0; offset < size; offset += step)
    pooler_sse_parser_feed (parser, (const char *) data + offset, MIN (step, size - offset));
  pooler_sse_parser_finish (parser);

  return 0;
}
