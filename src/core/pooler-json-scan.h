/* pooler-json-scan.h: reading what is needed from a JSON document without
 * building a tree: a cursor that skips values, reads strings and numbers,
 * and walks an object's members. For the hot path, where the request body
 * (38 KB) is forwarded as it is and a streamed answer's last event only
 * gives its usage.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  const char  *p;
  const char  *end;
  const char  *what;     /* names the document in errors: "request body" */
  GError     **error;
} PoolerJsonScanner;

/* Whether @c, after a backslash in a string, makes a two-byte escape
 * (\uXXXX, the other kind, is not one of these). The fast paths ask it,
 * pooler_json_scan_skip_string() and the request body's block skim
 * (pooler-json-skim); whatever they do not pass goes to the decoder of
 * pooler_json_scan_string(), which has the last word and names the error.
 * The decoder's switch turns the same letters into bytes: a letter added
 * here must be decoded there too. */
extern const guint8 pooler_json_short_escape[256];
static inline gboolean
pooler_json_is_short_escape (char c)
{
  /* A table: the skim asks for every escape of a 38 KB body. */
  return pooler_json_short_escape[(guchar) c] != 0;
}

/* Sets POOLER_ERROR_INVALID "<what> <message>" (once); returns FALSE. */
gboolean pooler_json_scan_fail        (PoolerJsonScanner *s,
                                       const char        *message);
void     pooler_json_scan_skip_ws     (PoolerJsonScanner *s);
/* At an opening quote; appends the unescaped text to @out if not NULL. */
gboolean pooler_json_scan_string      (PoolerJsonScanner *s,
                                       GString           *out);
/* Skips the string at an opening quote: what pooler_json_scan_string()
 * does with no @out, faster (the same cursor and the same errors). */
gboolean pooler_json_scan_skip_string (PoolerJsonScanner *s);
/* Skips one value of any kind; @depth is the nesting it sits at. */
gboolean pooler_json_scan_skip_value  (PoolerJsonScanner *s,
                                       guint              depth);
/* Consumes @word when it is next. */
gboolean pooler_json_scan_literal     (PoolerJsonScanner *s,
                                       const char        *word);

/* Called for each member of an object with the cursor at its value:
 * return TRUE having consumed the value, or FALSE (without moving) to
 * have it skipped. *failed stops the walk. */
typedef gboolean (*PoolerJsonMemberFunc) (PoolerJsonScanner *s,
                                          const char        *key,
                                          guint              depth,
                                          gboolean          *failed,
                                          gpointer           user_data);

/* Walks the object at the cursor (at depth @depth). */
gboolean pooler_json_scan_object      (PoolerJsonScanner    *s,
                                       guint                 depth,
                                       PoolerJsonMemberFunc  func,
                                       gpointer              user_data);
/* An integer value (a JSON number with no fraction or exponent that fits
 * in 63 bits); otherwise the value is skipped and *out left alone.
 * FALSE only on malformed JSON. */
gboolean pooler_json_scan_int         (PoolerJsonScanner *s,
                                       guint              depth,
                                       gint64            *out);

G_END_DECLS
