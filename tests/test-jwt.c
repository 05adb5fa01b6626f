/* test-jwt.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <string.h>

#include "pooler-error.h"
#include "pooler-json.h"
#include "pooler-jwt.h"

#define FIXTURE_EXP 1796351245
#define FIXTURE_IAT 1795487245

/* tokens.@name from the fixture auth.json */
static char *
fixture_token (const char *name)
{
  const char *dir = g_getenv ("POOLER_FIXTURES_DIR");
  g_autofree char *path = NULL;
  g_autofree char *data = NULL;
  g_autoptr(JsonObject) root = NULL;
  g_autoptr(GError) error = NULL;
  gsize length = 0;

  g_assert_nonnull (dir);
  path = g_build_filename (dir, "auth.json", NULL);
  g_file_get_contents (path, &data, &length, &error);
  g_assert_no_error (error);

  root = pooler_json_parse_object (data, length, &error);
  g_assert_no_error (error);

  return g_strdup (json_object_get_string_member (json_object_get_object_member (root, "tokens"),
                                                  name));
}

/* An unsigned JWT with @payload as its claims. */
static char *
make_jwt (const char *payload)
{
  g_autofree char *encoded = g_base64_encode ((const guchar *) payload, strlen (payload));
  char *p;

  /* to base64url without padding */
  for (p = encoded; *p != '\0'; p++)
    {
      if (*p == '+')
        *p = '-';
      else if (*p == '/')
        *p = '_';
      else if (*p == '=')
        {
          *p = '\0';
          break;
        }
    }

  return g_strconcat ("eyJhbGciOiJub25lIn0.", encoded, ".c2ln", NULL);
}

static void
test_fixture_id_token (void)
{
  g_autofree char *id_token = fixture_token ("id_token");
  g_autoptr(PoolerJwtClaims) claims = NULL;
  g_autoptr(GError) error = NULL;

  claims = pooler_jwt_claims_parse (id_token, &error);
  g_assert_no_error (error);
  g_assert_nonnull (claims);
  g_assert_cmpstr (claims->email, ==, "user@example.com");
  g_assert_cmpstr (claims->chatgpt_account_id, ==, "acct_test_123");
  g_assert_cmpstr (claims->plan_type, ==, "plus");
  g_assert_cmpstr (claims->chatgpt_user_id, ==, "user-test123");
  g_assert_cmpint (claims->expires_at, ==, FIXTURE_EXP);
  g_assert_cmpint (claims->issued_at, ==, FIXTURE_IAT);
}

static void
test_fixture_access_token (void)
{
  g_autofree char *access_token = fixture_token ("access_token");
  g_autoptr(PoolerJwtClaims) claims = NULL;
  g_autoptr(JsonObject) payload = NULL;
  g_autoptr(GError) error = NULL;

  payload = pooler_jwt_decode_payload (access_token, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (json_object_get_string_member (payload, "iss"), ==,
                   "https://auth.example.invalid");

  /* The access token has no top-level email, only the profile claim. */
  g_assert_false (json_object_has_member (payload, "email"));
  claims = pooler_jwt_claims_parse (access_token, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (claims->email, ==, "user@example.com");
  g_assert_cmpstr (claims->chatgpt_account_id, ==, "acct_test_123");
  g_assert_cmpstr (claims->plan_type, ==, "plus");
  g_assert_cmpstr (claims->chatgpt_user_id, ==, "user-test123");
  g_assert_cmpint (claims->expires_at, ==, FIXTURE_EXP);
  g_assert_cmpint (claims->issued_at, ==, FIXTURE_IAT);
}

static void
test_fallbacks (void)
{
  struct {
    const char *payload;
    const char *email;
    const char *user_id;
    gint64      exp;
  } cases[] = {
    /* top-level email wins over the profile */
    { "{\"email\":\"top@x\",\"https://api.openai.com/profile\":{\"email\":\"p@x\"},"
      "\"https://api.openai.com/auth\":{\"chatgpt_user_id\":\"u1\",\"user_id\":\"u2\"},"
      "\"sub\":\"s\",\"exp\":10}",
      "top@x", "u1", 10 },
    /* user_id when chatgpt_user_id is absent; exp as a double */
    { "{\"https://api.openai.com/auth\":{\"user_id\":\"u2\"},\"sub\":\"s\",\"exp\":12.0}",
      NULL, "u2", 12 },
    /* sub when the auth claim is absent; no exp */
    { "{\"sub\":\"s\"}", NULL, "s", 0 },
    /* wrong types read as absent */
    { "{\"email\":5,\"sub\":[\"s\"],\"exp\":\"10\"}", NULL, NULL, 0 },
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *jwt = make_jwt (cases[i].payload);
      g_autoptr(PoolerJwtClaims) claims = NULL;
      g_autoptr(GError) error = NULL;

      claims = pooler_jwt_claims_parse (jwt, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (claims->email, ==, cases[i].email);
      g_assert_cmpstr (claims->chatgpt_user_id, ==, cases[i].user_id);
      g_assert_cmpint (claims->expires_at, ==, cases[i].exp);
      g_assert_null (claims->chatgpt_account_id);
      g_assert_null (claims->plan_type);
    }
}

static void
test_empty_signature (void)
{
  g_autofree char *jwt = make_jwt ("{\"sub\":\"s\"}");
  g_autofree char *unsigned_jwt = NULL;
  g_autoptr(PoolerJwtClaims) claims = NULL;
  g_autoptr(GError) error = NULL;

  /* "alg":"none" tokens end in a bare dot. */
  *strrchr (jwt, '.') = '\0';
  unsigned_jwt = g_strconcat (jwt, ".", NULL);
  claims = pooler_jwt_claims_parse (unsigned_jwt, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (claims->chatgpt_user_id, ==, "s");
}

static void
test_malformed (void)
{
  g_autofree char *not_json = make_jwt ("SECRETPAYLOAD is not json");
  g_autofree char *array = make_jwt ("[\"SECRETPAYLOAD\"]");
  g_autofree char *truncated = make_jwt ("{\"SECRETPAYLOAD\":");
  g_autofree char *deep = NULL;
  g_autofree char *deep_payload = g_strnfill (5000, '[');
  g_autofree char *two_parts = NULL;
  g_autofree char *four_parts = NULL;
  const char *fixed[] = {
    "",
    "SECRETHEADER",
    "SECRETHEADER.eyJzdWIiOiJzIn0",                       /* 2 parts */
    "SECRETHEADER..SECRETSIG",                            /* empty payload */
    "SECRETHEADER.eyJzdWIiOiJzIn0!.SECRETSIG",            /* '!' in base64 */
    "SECRETHEADER.eyJzdWIi OiJzIn0.SECRETSIG",            /* space in base64 */
    "SECRETHEADER.eyJzdWIiOiJzIn0=.SECRETSIG",            /* padding */
    "SECRETHEADER.eyJzdWIiOiJzIn0+.SECRETSIG",            /* standard alphabet */
    "SECRETHEADER.e.SECRETSIG",                           /* impossible length */
  };
  GPtrArray *tokens = g_ptr_array_new ();
  guint i;

  deep = make_jwt (deep_payload);
  two_parts = g_strdup (not_json);
  *strrchr (two_parts, '.') = '\0';
  four_parts = g_strconcat (not_json, ".more", NULL);

  for (i = 0; i < G_N_ELEMENTS (fixed); i++)
    g_ptr_array_add (tokens, (gpointer) fixed[i]);
  g_ptr_array_add (tokens, not_json);
  g_ptr_array_add (tokens, array);
  g_ptr_array_add (tokens, truncated);
  g_ptr_array_add (tokens, deep);
  g_ptr_array_add (tokens, two_parts);
  g_ptr_array_add (tokens, four_parts);

  for (i = 0; i < tokens->len; i++)
    {
      const char *token = g_ptr_array_index (tokens, i);
      g_autoptr(GError) error = NULL;
      g_autoptr(GError) claims_error = NULL;
      g_autoptr(JsonObject) payload = NULL;
      g_autoptr(PoolerJwtClaims) claims = NULL;

      payload = pooler_jwt_decode_payload (token, &error);
      g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
      g_assert_null (payload);

      claims = pooler_jwt_claims_parse (token, &claims_error);
      g_assert_error (claims_error, POOLER_ERROR, POOLER_ERROR_INVALID);
      g_assert_null (claims);

      /* Never echo any part of the token, decoded or not. */
      g_assert_null (strstr (error->message, "SECRET"));
      g_assert_null (strstr (error->message, "eyJ"));
      g_assert_null (strstr (error->message, "c2ln"));
      if (token[0] != '\0')
        g_assert_null (strstr (error->message, token));
      g_assert_cmpstr (claims_error->message, ==, error->message);
    }

  g_ptr_array_unref (tokens);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/jwt/fixture/id-token", test_fixture_id_token);
  g_test_add_func ("/jwt/fixture/access-token", test_fixture_access_token);
  g_test_add_func ("/jwt/claims/fallbacks", test_fallbacks);
  g_test_add_func ("/jwt/claims/empty-signature", test_empty_signature);
  g_test_add_func ("/jwt/malformed", test_malformed);

  return g_test_run ();
}
