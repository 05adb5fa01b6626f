/* test-oauth.c: what the sign-in server's answers to a refresh mean. A
 * refusal for good marks the account as needing a sign-in, so only an
 * answer that says so may count as one.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <string.h>

#include "pooler-oauth.h"
#include "pooler-tokens.h"

#define NOW G_GINT64_CONSTANT (1800000000)

static GError *
refusal_of (guint       status,
            const char *body)
{
  g_autoptr(PoolerTokens) tokens = NULL;
  GError *error = NULL;

  tokens = pooler_oauth_parse_response (status, body, strlen (body), "rt-old", NOW, &error);
  g_assert_null (tokens);
  g_assert_nonnull (error);
  return error;
}

static void
test_final_refusals (void)
{
  const struct { guint status; const char *body; } cases[] = {
    { 400, "{\"error\":\"invalid_grant\",\"error_description\":\"capture server does not refresh\"}" },
    { 401, "{\"error\":{\"code\":\"refresh_token_expired\",\"message\":\"expired\"}}" },
    { 400, "{\"error\":{\"code\":\"refresh_token_reused\"}}" },
    { 403, "{\"error\":\"x\",\"error_description\":\"refresh_token_invalidated\"}" },
    /* Codex takes any 401 from the sign-in server as final. */
    { 401, "{\"error\":{\"message\":\"Unauthorized\"}}" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = refusal_of (cases[i].status, cases[i].body);

      g_assert_error (error, POOLER_OAUTH_ERROR, POOLER_OAUTH_ERROR_REVOKED);
    }
}

/* What a proxy, a challenge page or an unknown complaint looks like:
 * never final. */
static void
test_passing_failures (void)
{
  const struct { guint status; const char *body; } cases[] = {
    { 403, "<!DOCTYPE html><html><title>Just a moment...</title></html>" },
    { 403, "" },
    { 400, "" },
    { 401, "<html>401 Authorization Required</html>" },
    { 400, "{\"error\":{\"message\":\"Could not parse your request body\",\"type\":\"invalid_request_error\"}}" },
    { 429, "{\"error\":\"invalid_grant\"}" },
    { 500, "{\"error\":\"server_error\"}" },
    { 502, "Bad Gateway" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = refusal_of (cases[i].status, cases[i].body);

      g_assert_error (error, POOLER_OAUTH_ERROR, POOLER_OAUTH_ERROR_TRANSIENT);
    }
}

/* An opaque access token: the expiry comes from expires_in, when it is a
 * sane number of seconds, and is otherwise unknown (0), never "now". */
static void
test_expires_in (void)
{
  const struct { const char *value; gint64 expires_at; } cases[] = {
    { "3600", NOW + 3600 },
    { "\"3600\"", 0 },
    { "null", 0 },
    { "-5", 0 },
    { "0", 0 },
    { "1.5", 0 },
    { "9223372036854775807", 0 },
    { "{}", 0 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *body = g_strdup_printf ("{\"access_token\":\"opaque-at\",\"refresh_token\":\"rt-new\","
                                               "\"expires_in\":%s}", cases[i].value);
      g_autoptr(PoolerTokens) tokens = NULL;
      g_autoptr(GError) error = NULL;

      tokens = pooler_oauth_parse_response (200, body, strlen (body), "rt-old", NOW, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (tokens->refresh_token, ==, "rt-new");
      g_assert_cmpint (tokens->expires_at, ==, cases[i].expires_at);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/oauth/refusal/final", test_final_refusals);
  g_test_add_func ("/oauth/refusal/passing", test_passing_failures);
  g_test_add_func ("/oauth/expires-in", test_expires_in);

  return g_test_run ();
}
