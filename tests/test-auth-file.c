/* test-auth-file.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <string.h>

#include "pooler-auth-file.h"
#include "pooler-error.h"

#define FIXTURE_EXP 1796351245
#define FIXTURE_IAT 1795487245

static char *
fixture_path (void)
{
  const char *dir = g_getenv ("POOLER_FIXTURES_DIR");

  g_assert_nonnull (dir);
  return g_build_filename (dir, "auth.json", NULL);
}

static char *
fixture_contents (gsize *length)
{
  g_autofree char *path = fixture_path ();
  g_autoptr(GError) error = NULL;
  char *data = NULL;

  g_file_get_contents (path, &data, length, &error);
  g_assert_no_error (error);
  return data;
}

/* The fixture with @from replaced by @to (once). */
static char *
fixture_with (const char *from,
              const char *to)
{
  g_autofree char *data = fixture_contents (NULL);
  char *at = strstr (data, from);
  GString *s;

  g_assert_nonnull (at);
  s = g_string_new_len (data, at - data);
  g_string_append (s, to);
  g_string_append (s, at + strlen (from));
  return g_string_free (s, FALSE);
}

static char *
write_temp (const char *name,
            const char *data,
            gssize      length)
{
  g_autofree char *path = g_build_filename (g_get_tmp_dir (), name, NULL);
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, data, length, &error);
  g_assert_no_error (error);
  return g_steal_pointer (&path);
}

static void
assert_fixture_parsed (PoolerAuthFile *auth)
{
  g_assert_nonnull (auth);
  g_assert_cmpstr (auth->account_id, ==, "acct_test_123");
  g_assert_cmpstr (auth->tokens->refresh_token, ==, "rt_test_refresh_123");
  g_assert_true (g_str_has_prefix (auth->tokens->access_token, "eyJ"));
  g_assert_true (g_str_has_prefix (auth->tokens->id_token, "eyJ"));
  g_assert_cmpstr (auth->tokens->access_token, !=, auth->tokens->id_token);
  g_assert_cmpint (auth->tokens->expires_at, ==, FIXTURE_EXP);
  g_assert_cmpstr (auth->claims->email, ==, "user@example.com");
  g_assert_cmpstr (auth->claims->chatgpt_account_id, ==, "acct_test_123");
  g_assert_cmpstr (auth->claims->plan_type, ==, "plus");
  g_assert_cmpstr (auth->claims->chatgpt_user_id, ==, "user-test123");
}

static void
test_fixture_parse (void)
{
  gsize length = 0;
  g_autofree char *data = fixture_contents (&length);
  g_autoptr(PoolerAuthFile) auth = NULL;
  g_autoptr(GError) error = NULL;

  auth = pooler_auth_file_parse (data, length, FIXTURE_IAT, &error);
  g_assert_no_error (error);
  assert_fixture_parsed (auth);
}

static void
test_fixture_load (void)
{
  g_autofree char *path = fixture_path ();
  g_autoptr(PoolerAuthFile) auth = NULL;
  g_autoptr(GError) error = NULL;

  auth = pooler_auth_file_load (path, FIXTURE_IAT, &error);
  g_assert_no_error (error);
  assert_fixture_parsed (auth);
}

static void
test_missing_file (void)
{
  g_autofree char *path = g_build_filename (g_get_tmp_dir (), "no-such-auth.json", NULL);
  g_autoptr(PoolerAuthFile) auth = NULL;
  g_autoptr(GError) error = NULL;

  auth = pooler_auth_file_load (path, FIXTURE_IAT, &error);
  g_assert_null (auth);
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
  g_assert_true (g_str_has_prefix (error->message, path));
}

static void
test_default_path (void)
{
  g_autofree char *codex_home = g_build_filename (g_get_tmp_dir (), "codex-home", NULL);
  g_autofree char *expected = g_build_filename (codex_home, "auth.json", NULL);
  g_autofree char *home_expected = NULL;
  g_autofree char *path = NULL;

  g_setenv ("CODEX_HOME", codex_home, TRUE);
  path = pooler_auth_file_default_path ();
  g_assert_cmpstr (path, ==, expected);
  g_clear_pointer (&path, g_free);

  /* G_TEST_OPTION_ISOLATE_DIRS gives g_get_home_dir() a temp dir of this
   * test; an empty CODEX_HOME counts as unset. */
  home_expected = g_build_filename (g_get_home_dir (), ".codex", "auth.json", NULL);
  g_assert_true (strstr (home_expected, "default-path") != NULL);

  g_setenv ("CODEX_HOME", "", TRUE);
  path = pooler_auth_file_default_path ();
  g_assert_cmpstr (path, ==, home_expected);
  g_clear_pointer (&path, g_free);

  g_unsetenv ("CODEX_HOME");
  path = pooler_auth_file_default_path ();
  g_assert_cmpstr (path, ==, home_expected);
}

static void
test_api_key_file (void)
{
  const char *files[] = {
    "{\"auth_mode\":\"apikey\",\"OPENAI_API_KEY\":\"sk-proj-SECRETKEY\"}",
    "{\"OPENAI_API_KEY\":\"sk-proj-SECRETKEY\",\"tokens\":null}",
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autoptr(PoolerAuthFile) auth = NULL;
      g_autoptr(GError) error = NULL;

      auth = pooler_auth_file_parse (files[i], strlen (files[i]), FIXTURE_IAT, &error);
      g_assert_null (auth);
      g_assert_error (error, POOLER_ERROR, POOLER_ERROR_UNSUPPORTED);
      g_assert_nonnull (strstr (error->message, "codex login"));
      g_assert_null (strstr (error->message, "SECRETKEY"));
    }
}

static void
test_missing_fields (void)
{
  struct {
    const char *from;
    const char *to;
    const char *field;
  } cases[] = {
    { "\"refresh_token\": \"rt_test_refresh_123\"", "\"refresh_tokenx\": \"x\"", "refresh_token" },
    { "\"refresh_token\": \"rt_test_refresh_123\"", "\"refresh_token\": \"\"", "refresh_token" },
    { "\"refresh_token\": \"rt_test_refresh_123\"", "\"refresh_token\": 5", "refresh_token" },
    { "\"access_token\":", "\"access_tokenx\":", "access_token" },
    { "\"id_token\":", "\"id_tokenx\":", "id_token" },
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *data = fixture_with (cases[i].from, cases[i].to);
      g_autoptr(PoolerAuthFile) auth = NULL;
      g_autoptr(GError) error = NULL;

      auth = pooler_auth_file_parse (data, strlen (data), FIXTURE_IAT, &error);
      g_assert_null (auth);
      g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
      g_assert_nonnull (strstr (error->message, cases[i].field));
    }

  /* And through load(), with the path in front. */
  {
    g_autofree char *data = fixture_with ("\"refresh_token\": \"rt_test_refresh_123\"",
                                          "\"other\": 1");
    g_autofree char *path = write_temp ("no-refresh.json", data, -1);
    g_autoptr(PoolerAuthFile) auth = NULL;
    g_autoptr(GError) error = NULL;

    auth = pooler_auth_file_load (path, FIXTURE_IAT, &error);
    g_assert_null (auth);
    g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
    g_assert_true (g_str_has_prefix (error->message, path));
    g_assert_nonnull (strstr (error->message, "refresh_token"));
  }
}

static void
test_account_id_fallback (void)
{
  g_autofree char *data = fixture_with ("\"account_id\": \"acct_test_123\"",
                                        "\"account_idx\": \"acct_other\"");
  g_autoptr(PoolerAuthFile) auth = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *other = fixture_with ("\"account_id\": \"acct_test_123\"",
                                         "\"account_id\": \"acct_from_file\"");

  /* Without tokens.account_id, the claim names the account. */
  auth = pooler_auth_file_parse (data, strlen (data), FIXTURE_IAT, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (auth->account_id, ==, "acct_test_123");
  g_clear_pointer (&auth, pooler_auth_file_free);

  /* With it, the file wins. */
  auth = pooler_auth_file_parse (other, strlen (other), FIXTURE_IAT, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (auth->account_id, ==, "acct_from_file");
}

static void
test_opaque_access_token (void)
{
  const char *data =
    "{\"tokens\":{\"id_token\":\"eyJhbGciOiJub25lIn0.eyJzdWIiOiJzIiwiaHR0cHM6Ly9hcGkub3BlbmFpLmNvbS9hdXRoIjp7ImNoYXRncHRfYWNjb3VudF9pZCI6ImFjY3RfeCJ9fQ.\","
    "\"access_token\":\"opaque-token\",\"refresh_token\":\"rt\"}}";
  g_autoptr(PoolerAuthFile) auth = NULL;
  g_autoptr(GError) error = NULL;

  /* id_token payload: {"sub":"s","https://api.openai.com/auth":{"chatgpt_account_id":"acct_x"}} */
  auth = pooler_auth_file_parse (data, strlen (data), G_MAXINT64, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (auth->account_id, ==, "acct_x");
  /* Unknown expiry is not "expired", even far in the future. */
  g_assert_cmpint (auth->tokens->expires_at, ==, 0);
  g_assert_cmpstr (auth->tokens->access_token, ==, "opaque-token");
}

static void
test_no_account (void)
{
  const char *data =
    "{\"tokens\":{\"id_token\":\"eyJhbGciOiJub25lIn0.eyJzdWIiOiJzIn0.\","
    "\"access_token\":\"opaque-token\",\"refresh_token\":\"rt\"}}";
  const char *bad_id =
    "{\"tokens\":{\"id_token\":\"SECRET-not-a-jwt\","
    "\"access_token\":\"opaque-token\",\"refresh_token\":\"rt\",\"account_id\":\"a\"}}";
  g_autoptr(PoolerAuthFile) auth = NULL;
  g_autoptr(GError) error = NULL;

  auth = pooler_auth_file_parse (data, strlen (data), 0, &error);
  g_assert_null (auth);
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
  g_clear_error (&error);

  auth = pooler_auth_file_parse (bad_id, strlen (bad_id), 0, &error);
  g_assert_null (auth);
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "id_token"));
  g_assert_null (strstr (error->message, "SECRET"));
}

static void
test_garbage (void)
{
  g_autofree char *deep = g_strnfill (100000, '{');
  const char *bad[] = {
    "",
    "   \n",
    "not json at all",
    "[1,2,3]",
    "{\"tokens\": [1]}",
    "{\"tokens\": {}}",
    "{}",
    deep,
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *name = g_strdup_printf ("garbage-%" G_GSIZE_FORMAT ".json", i);
      g_autofree char *path = write_temp (name, bad[i], -1);
      g_autoptr(PoolerAuthFile) auth = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(GError) load_error = NULL;

      auth = pooler_auth_file_parse (bad[i], strlen (bad[i]), FIXTURE_IAT, &error);
      g_assert_null (auth);
      g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);

      auth = pooler_auth_file_load (path, FIXTURE_IAT, &load_error);
      g_assert_null (auth);
      g_assert_error (load_error, POOLER_ERROR, POOLER_ERROR_INVALID);
      g_assert_true (g_str_has_prefix (load_error->message, path));
      g_assert_null (strchr (load_error->message, '\n'));
    }
}

static void
test_corrupt_hides_tokens (void)
{
  /* A lost comma right after a token: json-glib would quote the token. */
  g_autofree char *data = fixture_with ("\"rt_test_refresh_123\",", "\"rt_test_refresh_123\"");
  g_autoptr(PoolerAuthFile) auth = NULL;
  g_autoptr(GError) error = NULL;

  auth = pooler_auth_file_parse (data, strlen (data), FIXTURE_IAT, &error);
  g_assert_null (auth);
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
  g_assert_null (strstr (error->message, "rt_test"));
  g_assert_null (strstr (error->message, "eyJ"));
}

static void
test_too_large (void)
{
  gsize length = 0;
  g_autofree char *fixture = fixture_contents (&length);
  gsize size = 1024 * 1024 + 1;
  g_autofree char *data = g_malloc (size);
  g_autofree char *path = NULL;
  g_autoptr(PoolerAuthFile) auth = NULL;
  g_autoptr(GError) error = NULL;

  /* A valid auth.json padded with whitespace past 1 MiB: only the size
   * can be the reason it is refused. */
  memcpy (data, fixture, length);
  memset (data + length, ' ', size - length);
  path = write_temp ("large.json", data, size);

  auth = pooler_auth_file_load (path, FIXTURE_IAT, &error);
  g_assert_null (auth);
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "1 MiB"));
  g_clear_error (&error);

  /* Exactly 1 MiB is still fine. */
  g_clear_pointer (&path, g_free);
  path = write_temp ("exactly-1mib.json", data, size - 1);
  auth = pooler_auth_file_load (path, FIXTURE_IAT, &error);
  g_assert_no_error (error);
  assert_fixture_parsed (auth);
}

static void
test_expired (void)
{
  gsize length = 0;
  g_autofree char *data = fixture_contents (&length);
  g_autoptr(PoolerAuthFile) auth = NULL;
  g_autoptr(GError) error = NULL;

  /* At exp itself the token is already unusable. */
  auth = pooler_auth_file_parse (data, length, FIXTURE_EXP, &error);
  g_assert_null (auth);
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_EXPIRED);
  g_assert_nonnull (strstr (error->message, "2026-12-04T02:27:25Z"));
  g_assert_nonnull (strstr (error->message, "codex login"));
  g_clear_error (&error);

  auth = pooler_auth_file_parse (data, length, FIXTURE_EXP + 3600, &error);
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_EXPIRED);
  g_clear_error (&error);

  auth = pooler_auth_file_parse (data, length, FIXTURE_EXP - 1, &error);
  g_assert_no_error (error);
  g_assert_nonnull (auth);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/auth-file/fixture/parse", test_fixture_parse);
  g_test_add_func ("/auth-file/fixture/load", test_fixture_load);
  g_test_add_func ("/auth-file/missing-file", test_missing_file);
  g_test_add_func ("/auth-file/default-path", test_default_path);
  g_test_add_func ("/auth-file/api-key", test_api_key_file);
  g_test_add_func ("/auth-file/missing-fields", test_missing_fields);
  g_test_add_func ("/auth-file/account-id", test_account_id_fallback);
  g_test_add_func ("/auth-file/opaque-access-token", test_opaque_access_token);
  g_test_add_func ("/auth-file/no-account", test_no_account);
  g_test_add_func ("/auth-file/garbage", test_garbage);
  g_test_add_func ("/auth-file/corrupt-hides-tokens", test_corrupt_hides_tokens);
  g_test_add_func ("/auth-file/too-large", test_too_large);
  g_test_add_func ("/auth-file/expired", test_expired);

  return g_test_run ();
}
