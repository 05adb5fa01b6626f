/* pooler-random.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-random"

#include "config.h"

#include <errno.h>
#include <sys/random.h>

#include "pooler-error.h"
#include "pooler-random.h"

static const char base64url_alphabet[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void
pooler_wipe (void  *data,
             gsize  length)
{
  volatile guint8 *p = data;

  while (length-- > 0)
    *p++ = 0;
}

gboolean
pooler_random_fill (guint8   *buffer,
                    gsize     length,
                    GError  **error)
{
  gsize filled = 0;

  while (filled < length)
    {
      ssize_t n = getrandom (buffer + filled, length - filled, 0);

      if (n < 0)
        {
          int saved_errno = errno;

          if (saved_errno == EINTR)
            continue;

          g_set_error (error, POOLER_ERROR, POOLER_ERROR_FAILED,
                       "Could not read random bytes from the kernel: %s",
                       g_strerror (saved_errno));
          return FALSE;
        }

      filled += (gsize) n;
    }

  return TRUE;
}

/* Bit by bit rather than g_base64_encode(), which pads and uses "+/". */
char *
pooler_base64url_encode (const guint8 *data,
                         gsize         length)
{
  GString *out = g_string_sized_new ((length * 4 + 2) / 3 + 1);
  guint32 acc = 0;
  guint bits = 0;
  gsize i;

  for (i = 0; i < length; i++)
    {
      acc = (acc << 8) | data[i];
      bits += 8;
      while (bits >= 6)
        {
          bits -= 6;
          g_string_append_c (out, base64url_alphabet[(acc >> bits) & 0x3f]);
        }
    }
  if (bits > 0)
    g_string_append_c (out, base64url_alphabet[(acc << (6 - bits)) & 0x3f]);

  return g_string_free (out, FALSE);
}

char *
pooler_random_base64url (gsize    length,
                         GError **error)
{
  g_autofree guint8 *bytes = g_malloc (length);
  char *text = NULL;

  if (pooler_random_fill (bytes, length, error))
    text = pooler_base64url_encode (bytes, length);
  pooler_wipe (bytes, length);

  return text;
}
