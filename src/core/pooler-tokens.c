/* pooler-tokens.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <string.h>

#include "pooler-tokens.h"

G_DEFINE_BOXED_TYPE (PoolerTokens, pooler_tokens, pooler_tokens_copy, pooler_tokens_free)

PoolerTokens *
pooler_tokens_new (const char *access_token,
                   const char *refresh_token,
                   const char *id_token,
                   gint64      expires_at)
{
  PoolerTokens *tokens = g_new0 (PoolerTokens, 1);

  tokens->access_token = g_strdup (access_token);
  tokens->refresh_token = g_strdup (refresh_token);
  tokens->id_token = g_strdup (id_token);
  tokens->expires_at = expires_at;

  return tokens;
}

PoolerTokens *
pooler_tokens_copy (const PoolerTokens *tokens)
{
  g_return_val_if_fail (tokens != NULL, NULL);

  return pooler_tokens_new (tokens->access_token, tokens->refresh_token,
                            tokens->id_token, tokens->expires_at);
}

static void
wipe_string (char *s)
{
  if (s != NULL)
    {
      /* volatile so the compiler keeps the stores before free() */
      volatile char *p = s;
      while (*p != '\0')
        *p++ = '\0';
    }
  g_free (s);
}

void
pooler_tokens_free (PoolerTokens *tokens)
{
  if (tokens == NULL)
    return;

  wipe_string (tokens->access_token);
  wipe_string (tokens->refresh_token);
  wipe_string (tokens->id_token);
  g_free (tokens);
}

gboolean
pooler_tokens_equal (const PoolerTokens *a,
                     const PoolerTokens *b)
{
  if (a == b)
    return TRUE;
  if (a == NULL || b == NULL)
    return FALSE;

  return g_strcmp0 (a->access_token, b->access_token) == 0 &&
         g_strcmp0 (a->refresh_token, b->refresh_token) == 0 &&
         g_strcmp0 (a->id_token, b->id_token) == 0 &&
         a->expires_at == b->expires_at;
}
