/* fuzz-request-body.c: the top-level key scanner that routing runs on
 * every request body, and the zstd decoder in front of it.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <stdint.h>

#include "pooler-json.h"
#include "pooler-request-body.h"

int LLVMFuzzerTestOneInput (const uint8_t *data,
                            size_t         size);

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(PoolerRequestBody) body = pooler_request_body_scan ((const char *) data, size, NULL);
  g_autoptr(GBytes) bytes = g_bytes_new (data, size);
  g_autoptr(GBytes) decoded = pooler_request_body_decode ("zstd", bytes, 1 << 20, NULL);
  g_autoptr(JsonNode) node = pooler_json_parse ((const char *) data, size, NULL);

  /* The scanner and json-glib agree on what is an object. */
  if (body != NULL && node != NULL)
    g_assert (JSON_NODE_HOLDS_OBJECT (node));

  (void) decoded;
  return 0;
}
