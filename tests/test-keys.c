/* test-keys.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <string.h>

#include "pooler-keys.h"

static void
assert_key_shape (const char *kind,
                  const char *key,
                  const char *prefix,
                  const char *digest)
{
  gsize kind_len = strlen (kind);
  const char *secret;
  g_autofree char *expected_digest = NULL;
  gsize i;

  g_assert_cmpuint (strlen (key), ==, kind_len + 12 + 1 + 43);
  g_assert_true (g_str_has_prefix (key, kind));

  for (i = 0; i < 12; i++)
    g_assert_true (strchr ("0123456789abcdef", key[kind_len + i]) != NULL);
  g_assert_cmpint (key[kind_len + 12], ==, '-');

  secret = key + kind_len + 13;
  for (i = 0; i < 43; i++)
    g_assert_true (g_ascii_isalnum (secret[i]) || secret[i] == '-' || secret[i] == '_');

  g_assert_cmpuint (strlen (prefix), ==, kind_len + 12);
  g_assert_true (strncmp (key, prefix, strlen (prefix)) == 0);

  /* The stored digest is of the secret part only. */
  expected_digest = g_compute_checksum_for_string (G_CHECKSUM_SHA256, secret, -1);
  g_assert_cmpstr (digest, ==, expected_digest);
}

static void
test_generate_shape (void)
{
  const char *kinds[] = { POOLER_KEY_KIND_POOL, POOLER_KEY_KIND_MCP };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (kinds); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *prefix = NULL;
      g_autofree char *digest = NULL;
      g_autofree char *key = NULL;

      key = pooler_key_generate (kinds[i], &prefix, &digest, &error);
      g_assert_no_error (error);
      g_assert_nonnull (key);
      assert_key_shape (kinds[i], key, prefix, digest);
    }
}

static void
test_generate_distinct (void)
{
  g_autoptr(GHashTable) keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GHashTable) prefixes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  guint i;

  for (i = 0; i < 1000; i++)
    {
      g_autoptr(GError) error = NULL;
      char *prefix = NULL;
      char *key;

      key = pooler_key_generate (POOLER_KEY_KIND_POOL, &prefix, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (g_hash_table_add (keys, key));
      /* 48 random bits: a repeat among 1000 would mean broken randomness. */
      g_assert_true (g_hash_table_add (prefixes, prefix));
    }

  g_assert_cmpuint (g_hash_table_size (keys), ==, 1000);
}

static void
test_split_generated (void)
{
  const char *kinds[] = { POOLER_KEY_KIND_POOL, POOLER_KEY_KIND_MCP };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (kinds); i++)
    {
      g_autofree char *prefix = NULL;
      g_autofree char *digest = NULL;
      g_autofree char *key = NULL;
      g_autofree char *split_prefix = NULL;
      g_autofree char *split_secret = NULL;
      g_autofree char *split_digest = NULL;

      key = pooler_key_generate (kinds[i], &prefix, &digest, NULL);
      g_assert_true (pooler_key_split (kinds[i], key, &split_prefix, &split_secret));
      g_assert_cmpstr (split_prefix, ==, prefix);
      g_assert_cmpuint (strlen (split_secret), ==, 43);
      g_assert_true (g_str_has_suffix (key, split_secret));

      split_digest = pooler_key_hash_secret (split_secret);
      g_assert_cmpstr (split_digest, ==, digest);

      /* Each kind rejects the other's keys. */
      g_assert_false (pooler_key_split (kinds[1 - i], key, NULL, NULL));
    }
}

static void
test_split_rejects (void)
{
  const char *secret43 = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde";
  g_autofree char *good = g_strconcat ("sk-cxp-0123456789ab-", secret43, NULL);
  const char *bad[] = {
    "",
    "sk-cxp-",
    "sk-cxp-0123456789ab-",
    "sk-cxp-0123456789ab",
    "mcp-cxp-0123456789ab-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde",   /* wrong kind */
    "sk-cx-0123456789ab-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde",     /* wrong kind */
    "SK-CXP-0123456789ab-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde",    /* wrong kind */
    "sk-cxp-0123456789a-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde",     /* short id */
    "sk-cxp-0123456789abc-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde",   /* long id */
    "sk-cxp-0123456789AB-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde",    /* uppercase hex */
    "sk-cxp-0123456789ag-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde",    /* not hex */
    "sk-cxp-0123456789ab_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde",    /* wrong separator */
    "sk-cxp-0123456789ab-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+_abcde",    /* '+' in secret */
    "sk-cxp-0123456789ab-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789/_abcde",    /* '/' in secret */
    "sk-cxp-0123456789ab-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcd=",    /* padding */
    "sk-cxp-0123456789ab-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcd",     /* 42 chars */
    "sk-cxp-0123456789ab-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcdef",   /* 44 chars */
    "sk-cxp-0123456789ab-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde\n",  /* trailing newline */
    "sk-cxp-0123456789ab-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde ",   /* trailing space */
    " sk-cxp-0123456789ab-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde",   /* leading space */
    "sk-cxp-0123456789ab-AbCdEfGhIjKlMnOp QrStUvWxYz0123456789-_abcd",    /* inner space */
    "sk-cxp-0123456789ab-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcdé",    /* non-ASCII */
  };
  gsize i;

  /* The list is only meaningful if the base case passes. */
  g_assert_true (pooler_key_split (POOLER_KEY_KIND_POOL, good, NULL, NULL));

  for (i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      char *prefix = (char *) "untouched";
      char *secret = (char *) "untouched";

      if (pooler_key_split (POOLER_KEY_KIND_POOL, bad[i], &prefix, &secret))
        g_error ("accepted malformed key #%" G_GSIZE_FORMAT, i);
      /* Outputs are cleared on failure so callers never free garbage. */
      g_assert_null (prefix);
      g_assert_null (secret);
    }

  g_assert_false (pooler_key_split (POOLER_KEY_KIND_POOL, NULL, NULL, NULL));
}

static void
test_hash_known (void)
{
  g_autofree char *empty = pooler_key_hash_secret ("");
  g_autofree char *abc = pooler_key_hash_secret ("abc");

  /* FIPS 180-2 test vectors. */
  g_assert_cmpstr (empty, ==, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  g_assert_cmpstr (abc, ==, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void
test_digest_equal (void)
{
  const char *a = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  g_autofree char *a_copy = g_strdup (a);
  const char *first_differs = "ca7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  const char *last_differs = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ae";

  g_assert_true (pooler_key_digest_equal (a, a_copy));
  g_assert_false (pooler_key_digest_equal (a, first_differs));
  g_assert_false (pooler_key_digest_equal (a, last_differs));
  g_assert_false (pooler_key_digest_equal (a, "ba7816bf"));
  g_assert_false (pooler_key_digest_equal ("ba7816bf", a));
  g_assert_false (pooler_key_digest_equal (a, ""));
  g_assert_false (pooler_key_digest_equal (a, NULL));
  g_assert_false (pooler_key_digest_equal (NULL, a));
  g_assert_false (pooler_key_digest_equal (NULL, NULL));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/keys/generate/shape", test_generate_shape);
  g_test_add_func ("/keys/generate/distinct", test_generate_distinct);
  g_test_add_func ("/keys/split/generated", test_split_generated);
  g_test_add_func ("/keys/split/rejects", test_split_rejects);
  g_test_add_func ("/keys/hash/known", test_hash_known);
  g_test_add_func ("/keys/digest-equal", test_digest_equal);

  return g_test_run ();
}
