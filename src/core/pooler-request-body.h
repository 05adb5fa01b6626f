/* pooler-request-body.h: what routing needs from a request body, found by
 * scanning its top-level keys instead of building a JSON tree: the body
 * itself is forwarded byte for byte.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  char     *model;
  char     *prompt_cache_key;
  char     *previous_response_id;
  gboolean  has_stream;
  gboolean  stream;
  gboolean  has_input;
} PoolerRequestBody;

/* The longest model name accepted. A model is a short slug; a longer
 * value (a prompt pasted into the wrong member, say) would be written to
 * the request log, which keeps no client text. */
#define POOLER_MODEL_MAX_LENGTH 128

/* Whether @model may name a model: 1 to POOLER_MODEL_MAX_LENGTH bytes of
 * printable ASCII without spaces. */
gboolean           pooler_model_name_ok        (const char         *model);
#define POOLER_MODEL_NAME_PROBLEM \
  "Invalid value for 'model': a model name is 1 to 128 printable ASCII characters without spaces."

/* POOLER_ERROR_INVALID when the body is not a JSON object, nests deeper
 * than POOLER_JSON_MAX_DEPTH or is cut short; the message names why. */
PoolerRequestBody *pooler_request_body_scan    (const char         *data,
                                                gsize               length,
                                                GError            **error);
void               pooler_request_body_free    (PoolerRequestBody  *body);

/* Decodes a Content-Encoding (identity or zstd; zstd frames without a
 * content size are handled by streaming) up to @max_size bytes.
 * POOLER_ERROR_UNSUPPORTED for other encodings, INVALID for corrupt or
 * oversized data. */
GBytes            *pooler_request_body_decode  (const char         *content_encoding,
                                                GBytes             *body,
                                                gsize               max_size,
                                                GError            **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PoolerRequestBody, pooler_request_body_free)

G_END_DECLS
