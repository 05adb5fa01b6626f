/* pooler-keys.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-keys"

#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "pooler-error.h"
#include "pooler-keys.h"

#define KEY_ID_BYTES      6
#define KEY_ID_CHARS      (KEY_ID_BYTES * 2)
#define KEY_SECRET_BYTES  32
#define KEY_SECRET_CHARS  43   /* ceil (32 * 4 / 3), no padding */

static const char base64url_alphabet[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static gboolean
kind_is_known (const char *kind)
{
  return g_strcmp0 (kind, POOLER_KEY_KIND_POOL) == 0 ||
         g_strcmp0 (kind, POOLER_KEY_KIND_MCP) == 0;
}

static void
wipe (void  *data,
      gsize  length)
{
  volatile guint8 *p = data;

  while (length-- > 0)
    *p++ = 0;
}

static gboolean
fill_random (guint8   *buffer,
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
static char *
base64url_encode (const guint8 *data,
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

static gboolean
is_lower_hex (char c)
{
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static gboolean
is_base64url (char c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_';
}

char *
pooler_key_generate (const char  *kind,
                     char       **out_prefix,
                     char       **out_secret_sha256,
                     GError     **error)
{
  guint8 id_bytes[KEY_ID_BYTES];
  guint8 secret_bytes[KEY_SECRET_BYTES];
  g_autofree char *id = NULL;
  char *secret;
  char *key;
  gsize i;

  g_return_val_if_fail (kind_is_known (kind), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!fill_random (id_bytes, sizeof id_bytes, error) ||
      !fill_random (secret_bytes, sizeof secret_bytes, error))
    {
      wipe (secret_bytes, sizeof secret_bytes);
      return NULL;
    }

  id = g_malloc (KEY_ID_CHARS + 1);
  for (i = 0; i < KEY_ID_BYTES; i++)
    {
      id[i * 2] = "0123456789abcdef"[id_bytes[i] >> 4];
      id[i * 2 + 1] = "0123456789abcdef"[id_bytes[i] & 0xf];
    }
  id[KEY_ID_CHARS] = '\0';

  secret = base64url_encode (secret_bytes, sizeof secret_bytes);
  wipe (secret_bytes, sizeof secret_bytes);
  g_assert (strlen (secret) == KEY_SECRET_CHARS);

  key = g_strconcat (kind, id, "-", secret, NULL);

  if (out_prefix != NULL)
    *out_prefix = g_strconcat (kind, id, NULL);
  if (out_secret_sha256 != NULL)
    *out_secret_sha256 = pooler_key_hash_secret (secret);

  wipe (secret, KEY_SECRET_CHARS);
  g_free (secret);

  return key;
}

gboolean
pooler_key_split (const char  *kind,
                  const char  *key,
                  char       **out_prefix,
                  char       **out_secret)
{
  gsize kind_len;
  const char *id;
  const char *secret;
  gsize i;

  g_return_val_if_fail (kind_is_known (kind), FALSE);

  if (out_prefix != NULL)
    *out_prefix = NULL;
  if (out_secret != NULL)
    *out_secret = NULL;

  if (key == NULL)
    return FALSE;

  kind_len = strlen (kind);
  if (strncmp (key, kind, kind_len) != 0)
    return FALSE;

  /* Each check stops at the first bad byte, so the NUL terminator
   * also ends a too-short key safely. */
  id = key + kind_len;
  for (i = 0; i < KEY_ID_CHARS; i++)
    if (!is_lower_hex (id[i]))
      return FALSE;

  if (id[KEY_ID_CHARS] != '-')
    return FALSE;

  secret = id + KEY_ID_CHARS + 1;
  for (i = 0; i < KEY_SECRET_CHARS; i++)
    if (!is_base64url (secret[i]))
      return FALSE;

  if (secret[KEY_SECRET_CHARS] != '\0')
    return FALSE;

  if (out_prefix != NULL)
    *out_prefix = g_strndup (key, kind_len + KEY_ID_CHARS);
  if (out_secret != NULL)
    *out_secret = g_strdup (secret);

  return TRUE;
}

char *
pooler_key_hash_secret (const char *secret)
{
  g_return_val_if_fail (secret != NULL, NULL);

  return g_compute_checksum_for_string (G_CHECKSUM_SHA256, secret, -1);
}

gboolean
pooler_key_digest_equal (const char *a,
                         const char *b)
{
  gsize len_a;
  gsize len_b;
  guint8 diff = 0;
  gsize i;

  if (a == NULL || b == NULL)
    return FALSE;

  /* The lengths of hex digests are public (always 64), so returning
   * early on a mismatch leaks nothing. */
  len_a = strlen (a);
  len_b = strlen (b);
  if (len_a != len_b)
    return FALSE;

  for (i = 0; i < len_a; i++)
    diff |= (guint8) (a[i] ^ b[i]);

  return diff == 0;
}
