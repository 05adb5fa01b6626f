/* fuzz-auth.c: the auth.json reader, JWT claims and token endpoint
 * answers: everything that handles credentials we did not write.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <stdint.h>

#include "pooler-auth-file.h"
#include "pooler-jwt.h"
#include "pooler-keys.h"
#include "pooler-oauth.h"

int LLVMFuzzerTestOneInput (const uint8_t *data,
                            size_t         size);

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  const char *text = (const char *) data;
  g_autofree char *copy = g_strndup (text, size);
  g_autoptr(PoolerAuthFile) auth = pooler_auth_file_parse (text, size, 1800000000, NULL);
  g_autoptr(PoolerJwtClaims) claims = pooler_jwt_claims_parse (copy, NULL);
  g_autoptr(PoolerTokens) tokens = pooler_oauth_parse_response (size > 0 && data[0] & 1 ? 200 : 400,
                                                                text, size, "rt_old", 1800000000, NULL);
  g_autofree char *prefix = NULL;
  g_autofree char *secret = NULL;

  if (pooler_key_split (POOLER_KEY_KIND_POOL, copy, &prefix, &secret))
    g_assert (prefix != NULL && secret != NULL);

  (void) auth;
  (void) claims;
  (void) tokens;
  return 0;
}
