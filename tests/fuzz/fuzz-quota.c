/* fuzz-quota.c: quota evidence from 429 bodies and wham/usage answers,
 * and from headers built out of the input.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "pooler-http-head.h"
#include "pooler-quota.h"

int LLVMFuzzerTestOneInput (const uint8_t *data,
                            size_t         size);

static gboolean
name_is_token (const char *name)
{
  if (*name == '\0')
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    if (!pooler_http_is_tchar ((guchar) *p))
      return FALSE;
  return TRUE;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  const char *text = (const char *) data;
  g_autoptr(PoolerQuotaEvidence) from_error = pooler_quota_parse_error_body (429, text, size, 1800000000);
  g_autoptr(PoolerQuotaEvidence) from_usage = pooler_quota_parse_usage (text, size, 1800000000);
  g_autoptr(PoolerQuotaState) state = pooler_quota_state_new ();
  SoupMessageHeaders *headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(PoolerQuotaEvidence) from_headers = NULL;
  g_autofree char *copy = g_strndup (text, size);
  g_auto(GStrv) lines = g_strsplit (copy, "\n", 64);
  g_autoptr(JsonNode) usage = NULL;
  gint64 reset_at;

  /* "name: value" lines become response headers. */
  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *colon = strchr (lines[i], ':');

      if (colon == NULL || colon == lines[i])
        continue;
      *colon = '\0';
      /* Names libsoup takes (a token), values without line breaks. */
      g_strstrip (lines[i]);
      if (!name_is_token (lines[i]) || strpbrk (colon + 1, "\r\n") != NULL)
        continue;
      if (g_utf8_validate (colon + 1, -1, NULL))
        soup_message_headers_append (headers, lines[i], g_strstrip (colon + 1));
    }
  from_headers = pooler_quota_parse_headers (headers, 1800000000);
  soup_message_headers_unref (headers);

  if (from_error != NULL)
    pooler_quota_state_merge (state, from_error);
  if (from_usage != NULL)
    pooler_quota_state_merge (state, from_usage);
  if (from_headers != NULL)
    pooler_quota_state_merge (state, from_headers);
  pooler_quota_state_is_spent (state, 1800000000, &reset_at);
  pooler_quota_state_remaining (state, 1800000000);
  usage = pooler_quota_state_to_usage_json (state, 1800000000);
  (void) usage;

  return 0;
}
