/* pooler-redact.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-redact"

#include "config.h"

#include <string.h>

#include "pooler-redact.h"

/* Characters of an address's local part and domain, roughly RFC 5322's
 * atext: generous, so that nothing address-like slips through. */
static gboolean
is_address_char (char c)
{
  /* strchr() finds the terminator too: NUL is never part of an address. */
  return c != '\0' && (g_ascii_isalnum (c) || strchr ("!#$%&'*+/=?^_`{|}~.-", c) != NULL);
}

static void
append_masked (GString    *out,
               const char *local,
               gsize       local_length,
               const char *domain,
               gsize       domain_length)
{
  g_string_append_len (out, local, MIN (local_length, 2));
  g_string_append (out, "***@");
  g_string_append_len (out, domain, domain_length);
}

char *
pooler_redact_email (const char *email)
{
  const char *at;
  GString *out;

  if (email == NULL)
    return NULL;

  at = strrchr (email, '@');
  if (at == NULL || at == email || at[1] == '\0')
    return g_strdup ("***");

  out = g_string_new (NULL);
  append_masked (out, email, at - email, at + 1, strlen (at + 1));
  return g_string_free (out, FALSE);
}

char *
pooler_redact_text (const char *text)
{
  GString *out;
  const char *p;

  if (text == NULL)
    return NULL;
  if (strchr (text, '@') == NULL)
    return g_strdup (text);

  out = g_string_new (NULL);
  p = text;
  while (*p != '\0')
    {
      const char *at = strchr (p, '@');
      const char *start;
      const char *end;

      if (at == NULL)
        {
          g_string_append (out, p);
          break;
        }

      start = at;
      while (start > p && is_address_char (start[-1]))
        start--;
      end = at + 1;
      while (is_address_char (*end))
        end++;

      g_string_append_len (out, p, start - p);
      if (start < at && end > at + 1)
        append_masked (out, start, at - start, at + 1, end - (at + 1));
      else
        g_string_append_len (out, at, end - at);
      p = end;
    }

  return g_string_free (out, FALSE);
}
