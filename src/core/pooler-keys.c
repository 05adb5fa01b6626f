/* pooler-keys.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-keys"

#include "config.h"

#include <string.h>

#include "pooler-error.h"
#include "pooler-keys.h"
#include "pooler-random.h"

#define KEY_ID_BYTES      6
#define KEY_ID_CHARS      (KEY_ID_BYTES * 2)
#define KEY_SECRET_BYTES  32
#define KEY_SECRET_CHARS  43   /* ceil (32 * 4 / 3), no padding */

static gboolean
kind_is_known (const char *kind)
{
  return g_strcmp0 (kind, POOLER_KEY_KIND_POOL) == 0 ||
         g_strcmp0 (kind, POOLER_KEY_KIND_MCP) == 0;
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

  if (!pooler_random_fill (id_bytes, sizeof id_bytes, error) ||
      !pooler_random_fill (secret_bytes, sizeof secret_bytes, error))
    {
      pooler_wipe (secret_bytes, sizeof secret_bytes);
      return NULL;
    }

  id = g_malloc (KEY_ID_CHARS + 1);
  for (i = 0; i < KEY_ID_BYTES; i++)
    {
      id[i * 2] = "0123456789abcdef"[id_bytes[i] >> 4];
      id[i * 2 + 1] = "0123456789abcdef"[id_bytes[i] & 0xf];
    }
  id[KEY_ID_CHARS] = '\0';

  secret = pooler_base64url_encode (secret_bytes, sizeof secret_bytes);
  pooler_wipe (secret_bytes, sizeof secret_bytes);
  g_assert (strlen (secret) == KEY_SECRET_CHARS);

  key = g_strconcat (kind, id, "-", secret, NULL);

  if (out_prefix != NULL)
    *out_prefix = g_strconcat (kind, id, NULL);
  if (out_secret_sha256 != NULL)
    *out_secret_sha256 = pooler_key_hash_secret (secret);

  pooler_wipe (secret, KEY_SECRET_CHARS);
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
