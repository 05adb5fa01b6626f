/* pooler-random.h: secrets from the kernel's random source, and their
 * unpadded base64url form (RFC 4648 §5), as keys and PKCE use them.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Fills @buffer from getrandom(2); POOLER_ERROR_FAILED if it cannot. */
gboolean  pooler_random_fill       (guint8        *buffer,
                                    gsize          length,
                                    GError       **error);
/* @length random bytes as base64url without padding (ceil (4 n / 3)
 * characters); the bytes are wiped. */
char     *pooler_random_base64url  (gsize          length,
                                    GError       **error);
/* Unpadded base64url of @data. */
char     *pooler_base64url_encode  (const guint8  *data,
                                    gsize          length);
/* Zeroes @length bytes at @data in a way the compiler keeps. */
void      pooler_wipe              (void          *data,
                                    gsize          length);

G_END_DECLS
