/* pooler-keys.h: API key material (Pool keys "sk-cxp-", operator tokens
 * "mcp-cxp-"): generation, parsing, hashing, constant-time comparison.
 *
 * A key is KIND + 12 lowercase hex (its public id) + "-" + 43 base64url
 * characters (32 random bytes, the secret). Only the SHA-256 of the secret
 * part is ever stored.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define POOLER_KEY_KIND_POOL "sk-cxp-"
#define POOLER_KEY_KIND_MCP  "mcp-cxp-"

/* Returns the whole key (shown once). @out_prefix gets KIND+12hex and
 * @out_secret_sha256 the hex digest to store. Uses the OS CSPRNG. */
char     *pooler_key_generate      (const char  *kind,
                                    char       **out_prefix,
                                    char       **out_secret_sha256,
                                    GError     **error);
/* Splits and validates the shape; FALSE for anything else. */
gboolean  pooler_key_split         (const char  *kind,
                                    const char  *key,
                                    char       **out_prefix,
                                    char       **out_secret);
char     *pooler_key_hash_secret   (const char  *secret);
/* Compares two hex digests in time that does not depend on where they differ. */
gboolean  pooler_key_digest_equal  (const char  *a,
                                    const char  *b);

G_END_DECLS
