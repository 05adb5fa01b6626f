/* pooler-json-skim.h: skipping through the inside of a nested JSON value
 * 64 bytes at a time, for pooler_json_scan_skip_value(). Each block is
 * classified at once (quotes, backslashes, control bytes, brackets) with
 * AVX2, carry-less multiplication and POPCNT where the CPU has them
 * (picked at run time; elsewhere the skim does nothing): which bytes are
 * escaped, which are inside strings, how the nesting changes. A block is
 * passed over only when nothing in it needs the byte loop: no control byte
 * or backslash out of place, only plain escapes (\uXXXX is left to the
 * loop), no nesting past the limit and no way for the value to end inside
 * it. Otherwise the skim stops where the loop can take over, so the loop
 * still says what is wrong, in the same words.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

#include "pooler-json-scan.h"

G_BEGIN_DECLS

/* From s->p, outside any string at a token boundary, *level brackets deep
 * into a value that sits at nesting @depth (*level >= 1): moves s->p over
 * whole blocks and updates *level. It stops outside strings, or on the
 * opening quote of a string that a block boundary cuts. */
void     pooler_json_skim              (PoolerJsonScanner *s,
                                        guint             *level,
                                        guint              depth);

/* Whether this CPU runs the skim (and it is not turned off). */
gboolean pooler_json_skim_active       (void);

/* Tests: turn the skim off to compare with the byte loop alone. */
void     pooler_json_skim_set_enabled  (gboolean           enabled);

G_END_DECLS
