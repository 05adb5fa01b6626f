/* fuzz-request-body.c: the top-level key scanner that routing runs on
 * every request body, the zstd decoder in front of it, and the skim that
 * skips nested values 64 bytes at a time (it must agree with the byte
 * loop alone).
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <stdint.h>

#include "pooler-json.h"
#include "pooler-json-scan.h"
#include "pooler-json-skim.h"
#include "pooler-request-body.h"

static void
skip (const uint8_t  *data,
      size_t          size,
      gboolean        skim,
      gboolean       *ok,
      const char    **at,
      char          **message)
{
  g_autoptr(GError) error = NULL;
  PoolerJsonScanner s = { (const char *) data, (const char *) data + size, "body", &error };

  pooler_json_skim_set_enabled (skim);
  *ok = pooler_json_scan_skip_value (&s, 0);
  pooler_json_skim_set_enabled (TRUE);
  *at = s.p;
  *message = error != NULL ? g_strdup (error->message) : NULL;
}

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
  g_autofree char *skim_message = NULL;
  g_autofree char *loop_message = NULL;
  const char *skim_at, *loop_at;
  gboolean skim_ok, loop_ok;

  skip (data, size, TRUE, &skim_ok, &skim_at, &skim_message);
  skip (data, size, FALSE, &loop_ok, &loop_at, &loop_message);
  g_assert (skim_ok == loop_ok && skim_at == loop_at && g_strcmp0 (skim_message, loop_message) == 0);

  /* The scanner and json-glib agree on what is an object. */
  if (body != NULL && node != NULL)
    g_assert (JSON_NODE_HOLDS_OBJECT (node));

  (void) decoded;
  return 0;
}
