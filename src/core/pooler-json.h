/* pooler-json.h: bounded JSON parsing.
 *
 * Debian's json-glib recurses without limit and crashes on deeply nested
 * input, so every untrusted document is checked for depth first.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define POOLER_JSON_MAX_DEPTH 64
/* What the scanners reserve for an object key or a short string value
 * (longer ones grow). */
#define POOLER_JSON_KEY_SIZE 63

/* TRUE when no array/object nests deeper than @max_depth (strings, and
 * the brackets inside them, are skipped correctly), nothing outside a
 * string is a byte that strict JSON never has there (json-glib reads
 * comments and single-quoted strings, which could hide brackets from this
 * count), and json-glib would carry every number and string unchanged
 * (no integer beyond 64 bits, no other number at or above 1e17, no
 * \u0000). Does not otherwise validate JSON. */
gboolean  pooler_json_depth_ok   (const char  *data,
                                  gsize        length,
                                  guint        max_depth);
/* The depth and strictness checks of pooler_json_depth_ok(), then
 * json-glib. POOLER_ERROR_INVALID on failure, with a message that says
 * where but quotes nothing. For what the upstream sends (read, never
 * re-generated). */
JsonNode *pooler_json_parse      (const char  *data,
                                  gsize        length,
                                  GError     **error);
/* The same, and also what json-glib would not carry unchanged (integers
 * beyond 64 bits, other numbers from 1e17, \u0000): for what a client
 * sends and the gateway re-generates (/v1 requests, JSON-RPC). */
JsonNode *pooler_json_parse_client (const char  *data,
                                    gsize        length,
                                    GError     **error);
/* Convenience: the root must be an object. */
JsonObject *pooler_json_parse_object (const char  *data,
                                      gsize        length,
                                      GError     **error);
JsonObject *pooler_json_parse_client_object (const char  *data,
                                             gsize        length,
                                             GError     **error);

/* @object's @member when it is a string, else NULL (missing, null, another
 * type: never a json-glib critical). @object may be NULL. */
const char *pooler_json_get_string   (JsonObject  *object,
                                      const char  *member);

G_END_DECLS
