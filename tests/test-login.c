/* test-login.c: the browser sign-in against the fake sign-in server. A
 * SoupSession plays the browser: it opens the authorize URL and follows
 * the redirect to PoolerLogin's callback server, both real libsoup
 * servers on loopback ports.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <string.h>

#include "fake-upstream.h"
#include "pooler-error.h"
#include "pooler-login.h"
#include "pooler-oauth.h"
#include "test-util.h"

typedef struct
{
  FakeUpstream *fake;
  SoupSession  *session;    /* the login's, to the sign-in server */
  SoupSession  *browser;
  PoolerLogin  *login;
  char         *auth_url;
} Fixture;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->fake = fake_upstream_new (&error);
  g_assert_no_error (error);
  f->auth_url = fake_upstream_dup_auth_url (f->fake);
  f->session = soup_session_new ();
  f->browser = soup_session_new ();
  f->login = pooler_login_new (f->session, f->auth_url);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_object (&f->login);
  g_clear_object (&f->browser);
  g_clear_object (&f->session);
  g_clear_object (&f->fake);
  g_free (f->auth_url);
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

/* A loopback port nobody listens on now. */
static guint
free_port (void)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_bind (socket, any, TRUE, &error));
  bound = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

/* The login listens on ::1 too, where the port might be taken. */
static void
listen_on_free_port (Fixture *f)
{
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < 5 && !pooler_login_listen (f->login, free_port (), &error); i++)
    {
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE);
      g_clear_error (&error);
    }
  g_assert_no_error (error);
  g_assert_cmpuint (pooler_login_get_port (f->login), !=, 0);
}

typedef struct
{
  PoolerAuthFile *auth;
  GError         *error;
  gboolean        done;
} Waited;

static void
waited_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  Waited *waited = user_data;

  waited->auth = pooler_login_wait_finish (POOLER_LOGIN (object), result, &waited->error);
  waited->done = TRUE;
}

static void
spin_until (gboolean *done)
{
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  while (!*done)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      if (!g_main_context_iteration (NULL, FALSE))
        g_usleep (1000);
    }
}

/* The browser opens @url (following the sign-in server's redirect) and
 * reads the page it ends on. */
static GBytes *
browse (Fixture    *f,
        const char *url,
        guint      *out_status)
{
  g_autoptr(SoupMessage) msg = soup_message_new (SOUP_METHOD_GET, url);
  TestSent sent = { 0 };

  g_assert_nonnull (msg);
  test_send_and_read_start (f->browser, msg, &sent);
  spin_until (&sent.done);
  g_assert_no_error (sent.error);
  *out_status = soup_message_get_status (msg);
  return sent.body;
}

static char *
callback_url (Fixture    *f,
              const char *query)
{
  return g_strdup_printf ("http://127.0.0.1:%u%s?%s", pooler_login_get_port (f->login),
                          POOLER_LOGIN_CALLBACK_PATH, query);
}

static void
test_authorize_url (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(GUri) uri = NULL;
  g_autoptr(GHashTable) params = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *redirect = NULL;
  g_autofree char *prefix = g_strconcat (f->auth_url, "/oauth/authorize?", NULL);

  listen_on_free_port (f);
  g_assert_true (g_str_has_prefix (pooler_login_get_authorize_url (f->login), prefix));
  uri = g_uri_parse (pooler_login_get_authorize_url (f->login), G_URI_FLAGS_ENCODED_QUERY, &error);
  g_assert_no_error (error);
  params = soup_form_decode (g_uri_get_query (uri));

  redirect = g_strdup_printf ("http://localhost:%u/auth/callback", pooler_login_get_port (f->login));
  g_assert_cmpstr (g_hash_table_lookup (params, "response_type"), ==, "code");
  g_assert_cmpstr (g_hash_table_lookup (params, "client_id"), ==, POOLER_OAUTH_CLIENT_ID);
  g_assert_cmpstr (g_hash_table_lookup (params, "redirect_uri"), ==, redirect);
  g_assert_cmpstr (g_hash_table_lookup (params, "scope"), ==,
                   "openid profile email offline_access api.connectors.read api.connectors.invoke");
  g_assert_cmpstr (g_hash_table_lookup (params, "code_challenge_method"), ==, "S256");
  /* S256 of the verifier is 32 bytes: 43 base64url characters. */
  g_assert_cmpuint (strlen (g_hash_table_lookup (params, "code_challenge")), ==, 43);
  g_assert_cmpuint (strlen (g_hash_table_lookup (params, "state")), ==, 43);
  g_assert_cmpstr (g_hash_table_lookup (params, "id_token_add_organizations"), ==, "true");
  g_assert_cmpstr (g_hash_table_lookup (params, "codex_cli_simplified_flow"), ==, "true");
  g_assert_cmpstr (g_hash_table_lookup (params, "originator"), ==, "codex_cli_rs");

  /* Each sign-in has its own secrets. */
  {
    g_autoptr(PoolerLogin) other = pooler_login_new (f->session, f->auth_url);
    g_autoptr(GUri) other_uri = NULL;
    g_autoptr(GHashTable) other_params = NULL;

    g_assert_true (pooler_login_listen (other, free_port (), &error));
    other_uri = g_uri_parse (pooler_login_get_authorize_url (other), G_URI_FLAGS_ENCODED_QUERY, &error);
    g_assert_no_error (error);
    other_params = soup_form_decode (g_uri_get_query (other_uri));
    g_assert_cmpstr (g_hash_table_lookup (other_params, "state"), !=, g_hash_table_lookup (params, "state"));
    g_assert_cmpstr (g_hash_table_lookup (other_params, "code_challenge"), !=,
                     g_hash_table_lookup (params, "code_challenge"));
  }
}

static void
test_signs_in (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GBytes) page = NULL;
  g_autofree char *access = NULL;
  g_autofree char *refresh = NULL;
  Waited waited = { 0 };
  guint status = 0;

  fake_upstream_set_sign_in (f->fake, "acct_login_1", "login@example.com", "ok");
  listen_on_free_port (f);
  pooler_login_wait_async (f->login, NULL, waited_cb, &waited);

  page = browse (f, pooler_login_get_authorize_url (f->login), &status);
  g_assert_cmpuint (status, ==, SOUP_STATUS_OK);
  g_assert_true (test_bytes_contain (page, "Signed in"));
  g_assert_true (test_bytes_contain (page, "login@example.com"));
  g_assert_false (test_bytes_contain (page, "ac_fake_"));

  spin_until (&waited.done);
  g_assert_no_error (waited.error);
  g_assert_cmpstr (waited.auth->account_id, ==, "acct_login_1");
  g_assert_cmpstr (waited.auth->claims->email, ==, "login@example.com");

  /* The pair the sign-in server issued for that code (its verifier
   * checked), which the backend now accepts for the account. */
  access = fake_upstream_dup_access_token (f->fake, "acct_login_1");
  refresh = fake_upstream_dup_refresh_token (f->fake, "acct_login_1");
  g_assert_cmpstr (waited.auth->tokens->access_token, ==, access);
  g_assert_cmpstr (waited.auth->tokens->refresh_token, ==, refresh);
  g_assert_nonnull (waited.auth->tokens->id_token);
  g_assert_cmpint (waited.auth->tokens->expires_at, >, g_get_real_time () / G_USEC_PER_SEC);
  g_assert_cmpuint (fake_upstream_get_sign_in_count (f->fake), ==, 1);

  /* The callback is spent: a replay of it is turned away. */
  {
    g_autoptr(GBytes) again = NULL;
    g_autofree char *url = NULL;
    g_autoptr(GUri) uri = g_uri_parse (pooler_login_get_authorize_url (f->login),
                                       G_URI_FLAGS_ENCODED_QUERY, NULL);
    g_autoptr(GHashTable) params = soup_form_decode (g_uri_get_query (uri));
    g_autofree char *query = soup_form_encode ("code", "ac_fake_replayed",
                                               "state", g_hash_table_lookup (params, "state"), NULL);

    url = callback_url (f, query);
    again = browse (f, url, &status);
    g_assert_cmpuint (status, ==, SOUP_STATUS_CONFLICT);
    g_assert_cmpuint (fake_upstream_get_sign_in_count (f->fake), ==, 1);
  }

  pooler_auth_file_free (waited.auth);
}

static void
test_wrong_state_keeps_waiting (Fixture       *f,
                                gconstpointer  data)
{
  g_autoptr(GBytes) stray = NULL;
  g_autoptr(GBytes) bare = NULL;
  g_autoptr(GBytes) page = NULL;
  g_autofree char *stray_url = NULL;
  g_autofree char *bare_url = NULL;
  Waited waited = { 0 };
  guint status = 0;

  fake_upstream_set_sign_in (f->fake, "acct_login_2", "two@example.com", "ok");
  listen_on_free_port (f);
  pooler_login_wait_async (f->login, NULL, waited_cb, &waited);

  /* Another site's (or an old tab's) redirect: refused, nothing exchanged. */
  stray_url = callback_url (f, "code=ac_fake_forged&state=not-the-state");
  stray = browse (f, stray_url, &status);
  g_assert_cmpuint (status, ==, SOUP_STATUS_BAD_REQUEST);
  g_assert_true (test_bytes_contain (stray, "Not this sign-in"));
  bare_url = callback_url (f, "code=ac_fake_forged");
  bare = browse (f, bare_url, &status);
  g_assert_cmpuint (status, ==, SOUP_STATUS_BAD_REQUEST);

  for (guint i = 0; i < 20; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_false (waited.done);
  g_assert_cmpuint (fake_upstream_get_sign_in_count (f->fake), ==, 0);

  /* The real one still completes. */
  page = browse (f, pooler_login_get_authorize_url (f->login), &status);
  g_assert_cmpuint (status, ==, SOUP_STATUS_OK);
  spin_until (&waited.done);
  g_assert_no_error (waited.error);
  g_assert_cmpstr (waited.auth->account_id, ==, "acct_login_2");
  pooler_auth_file_free (waited.auth);
}

static void
test_refused (Fixture       *f,
              gconstpointer  data)
{
  g_autoptr(GBytes) page = NULL;
  Waited waited = { 0 };
  guint status = 0;

  fake_upstream_set_sign_in (f->fake, "acct_login_3", NULL, "deny");
  listen_on_free_port (f);
  pooler_login_wait_async (f->login, NULL, waited_cb, &waited);

  page = browse (f, pooler_login_get_authorize_url (f->login), &status);
  g_assert_cmpuint (status, ==, SOUP_STATUS_FORBIDDEN);
  g_assert_true (test_bytes_contain (page, "no Codex access"));

  spin_until (&waited.done);
  g_assert_error (waited.error, POOLER_ERROR, POOLER_ERROR_FAILED);
  g_assert_nonnull (strstr (waited.error->message, "missing_codex_entitlement"));
  g_assert_null (waited.auth);
  g_assert_cmpuint (fake_upstream_get_sign_in_count (f->fake), ==, 0);
  g_clear_error (&waited.error);
}

static void
test_exchange_refused (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr(GBytes) page = NULL;
  Waited waited = { 0 };
  guint status = 0;

  fake_upstream_set_sign_in (f->fake, "acct_login_4", NULL, "ok");
  fake_upstream_set_oauth_mode (f->fake, "400");
  listen_on_free_port (f);
  pooler_login_wait_async (f->login, NULL, waited_cb, &waited);

  page = browse (f, pooler_login_get_authorize_url (f->login), &status);
  g_assert_cmpuint (status, ==, SOUP_STATUS_BAD_GATEWAY);
  g_assert_true (test_bytes_contain (page, "Sign-in failed"));

  spin_until (&waited.done);
  g_assert_error (waited.error, POOLER_OAUTH_ERROR, POOLER_OAUTH_ERROR_REVOKED);
  g_assert_nonnull (strstr (waited.error->message, "could not finish the sign-in"));
  g_assert_nonnull (strstr (waited.error->message, "sign-in code"));
  g_clear_error (&waited.error);
}

/* An answer without a refresh token would give an account that stops
 * within days without warning: refused. */
static void
test_no_refresh_token (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr(GBytes) page = NULL;
  Waited waited = { 0 };
  guint status = 0;

  fake_upstream_set_sign_in (f->fake, "acct_login_9", NULL, "norefresh");
  listen_on_free_port (f);
  pooler_login_wait_async (f->login, NULL, waited_cb, &waited);

  page = browse (f, pooler_login_get_authorize_url (f->login), &status);
  g_assert_cmpuint (status, ==, SOUP_STATUS_BAD_GATEWAY);
  g_assert_true (test_bytes_contain (page, "no refresh token"));
  spin_until (&waited.done);
  g_assert_error (waited.error, POOLER_ERROR, POOLER_ERROR_FAILED);
  g_assert_nonnull (strstr (waited.error->message, "no refresh token"));
  g_assert_null (waited.auth);
  g_assert_cmpuint (fake_upstream_get_sign_in_count (f->fake), ==, 1);
  g_clear_error (&waited.error);
}

static void
test_cancelled (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GBytes) page = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(PoolerLogin) second = pooler_login_new (f->session, f->auth_url);
  g_autoptr(GError) error = NULL;
  g_autofree char *cancel_url = NULL;
  Waited waited = { 0 };
  Waited waited2 = { 0 };
  guint status = 0;

  /* A newer sign-in asks for the port with GET /cancel. */
  listen_on_free_port (f);
  pooler_login_wait_async (f->login, NULL, waited_cb, &waited);
  cancel_url = g_strdup_printf ("http://127.0.0.1:%u/cancel", pooler_login_get_port (f->login));
  page = browse (f, cancel_url, &status);
  g_assert_cmpuint (status, ==, SOUP_STATUS_OK);
  spin_until (&waited.done);
  g_assert_error (waited.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&waited.error);

  /* The caller's cancellable. */
  g_assert_true (pooler_login_listen (second, free_port (), &error));
  pooler_login_wait_async (second, cancellable, waited_cb, &waited2);
  g_cancellable_cancel (cancellable);
  spin_until (&waited2.done);
  g_assert_error (waited2.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&waited2.error);
}

static void
test_times_out (Fixture       *f,
                gconstpointer  data)
{
  Waited waited = { 0 };

  listen_on_free_port (f);
  pooler_login_set_timeout (f->login, 1);
  pooler_login_wait_async (f->login, NULL, waited_cb, &waited);
  spin_until (&waited.done);
  g_assert_error (waited.error, POOLER_ERROR, POOLER_ERROR_EXPIRED);
  g_clear_error (&waited.error);
}

/* Held tokens at the sign-in server: the main loop runs meanwhile. */
static void
spin_until_held (Fixture *f,
                 guint    count)
{
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  while (fake_upstream_get_held_count (f->fake) < count)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      if (!g_main_context_iteration (NULL, FALSE))
        g_usleep (1000);
    }
}

/* The waiter may keep no reference of its own: the task keeps the login
 * until its callback, and the page still goes out whole. */
static void
test_caller_drops_its_reference (Fixture       *f,
                                 gconstpointer  data)
{
  g_autoptr(GBytes) page = NULL;
  g_autofree char *url = NULL;
  Waited waited = { 0 };
  guint status = 0;

  fake_upstream_set_sign_in (f->fake, "acct_login_5", NULL, "ok");
  listen_on_free_port (f);
  url = g_strdup (pooler_login_get_authorize_url (f->login));
  pooler_login_wait_async (f->login, NULL, waited_cb, &waited);
  g_clear_object (&f->login);

  page = browse (f, url, &status);
  g_assert_cmpuint (status, ==, SOUP_STATUS_OK);
  g_assert_true (test_bytes_contain (page, "</html>"));
  spin_until (&waited.done);
  g_assert_no_error (waited.error);
  g_assert_cmpstr (waited.auth->account_id, ==, "acct_login_5");
  pooler_auth_file_free (waited.auth);
}

/* Cancelled while the code is being exchanged: the wait ends at once,
 * the page says nothing was kept, and the answer is dropped. */
static void
test_cancelled_during_exchange (Fixture       *f,
                                gconstpointer  data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(SoupMessage) msg = NULL;
  TestSent sent = { 0 };
  Waited waited = { 0 };

  fake_upstream_set_sign_in (f->fake, "acct_login_6", NULL, "ok");
  fake_upstream_set_oauth_mode (f->fake, "hold");
  listen_on_free_port (f);
  pooler_login_wait_async (f->login, cancellable, waited_cb, &waited);

  msg = soup_message_new (SOUP_METHOD_GET, pooler_login_get_authorize_url (f->login));
  test_send_and_read_start (f->browser, msg, &sent);
  spin_until_held (f, 1);
  g_cancellable_cancel (cancellable);
  spin_until (&waited.done);
  g_assert_error (waited.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_null (waited.auth);
  g_clear_error (&waited.error);

  fake_upstream_release (f->fake);
  spin_until (&sent.done);
  g_assert_no_error (sent.error);
  g_assert_cmpuint (soup_message_get_status (msg), ==, SOUP_STATUS_CONFLICT);
  g_assert_true (test_bytes_contain (sent.body, "Sign-in stopped"));
  g_bytes_unref (sent.body);
}

/* Neither the time limit nor a newer sign-in's /cancel cuts a code
 * exchange that is under way: it finishes, and the account is kept. */
static void
test_exchange_outlives_the_limit (Fixture       *f,
                                  gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) refused = NULL;
  g_autofree char *cancel_url = NULL;
  TestSent sent = { 0 };
  Waited waited = { 0 };
  gint64 past_limit;
  guint status = 0;

  fake_upstream_set_sign_in (f->fake, "acct_login_7", NULL, "ok");
  fake_upstream_set_oauth_mode (f->fake, "hold");
  listen_on_free_port (f);
  pooler_login_set_timeout (f->login, 1);
  past_limit = g_get_monotonic_time () + 2 * G_USEC_PER_SEC;   /* a second past it */
  pooler_login_wait_async (f->login, NULL, waited_cb, &waited);

  msg = soup_message_new (SOUP_METHOD_GET, pooler_login_get_authorize_url (f->login));
  test_send_and_read_start (f->browser, msg, &sent);
  spin_until_held (f, 1);

  cancel_url = g_strdup_printf ("http://127.0.0.1:%u/cancel", pooler_login_get_port (f->login));
  refused = browse (f, cancel_url, &status);
  g_assert_cmpuint (status, ==, SOUP_STATUS_CONFLICT);

  while (g_get_monotonic_time () < past_limit)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
  g_assert_false (waited.done);

  fake_upstream_release (f->fake);
  spin_until (&waited.done);
  g_assert_no_error (waited.error);
  g_assert_cmpstr (waited.auth->account_id, ==, "acct_login_7");
  spin_until (&sent.done);
  g_assert_cmpuint (soup_message_get_status (msg), ==, SOUP_STATUS_OK);
  g_bytes_unref (sent.body);
  pooler_auth_file_free (waited.auth);
}

/* A browser on another machine: the redirect to localhost goes nowhere
 * there, so the user pastes the address it ended on. */
static void
test_pasted_address (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *location = NULL;
  g_autofree char *forged = NULL;
  g_autofree char *pasted = NULL;
  TestSent sent = { 0 };
  Waited waited = { 0 };
  const char *state_at;

  fake_upstream_set_sign_in (f->fake, "acct_login_8", "far@example.com", "ok");
  listen_on_free_port (f);
  pooler_login_wait_async (f->login, NULL, waited_cb, &waited);

  /* The sign-in page's redirect, not followed. */
  msg = soup_message_new (SOUP_METHOD_GET, pooler_login_get_authorize_url (f->login));
  soup_message_add_flags (msg, SOUP_MESSAGE_NO_REDIRECT);
  test_send_and_read_start (f->browser, msg, &sent);
  spin_until (&sent.done);
  g_assert_no_error (sent.error);
  g_bytes_unref (sent.body);
  g_assert_cmpuint (soup_message_get_status (msg), ==, SOUP_STATUS_FOUND);
  location = g_strdup (soup_message_headers_get_one (soup_message_get_response_headers (msg), "Location"));
  g_assert_nonnull (location);

  /* Not an address of this sign-in: told so, and the wait goes on. */
  g_assert_false (pooler_login_take_address (f->login, "hello", &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
  g_clear_error (&error);
  state_at = strstr (location, "state=");
  g_assert_nonnull (state_at);
  forged = g_strdup_printf ("%.*sstate=forged", (int) (state_at - location), location);
  g_assert_false (pooler_login_take_address (f->login, forged, &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
  g_clear_error (&error);
  for (guint i = 0; i < 20; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_false (waited.done);
  g_assert_cmpuint (fake_upstream_get_sign_in_count (f->fake), ==, 0);

  /* As pasted into a terminal, with spaces and without the scheme. */
  g_assert_true (g_str_has_prefix (location, "http://"));
  pasted = g_strdup_printf ("  %s\n", location + strlen ("http://"));
  g_assert_true (pooler_login_take_address (f->login, pasted, &error));
  g_assert_no_error (error);
  spin_until (&waited.done);
  g_assert_no_error (waited.error);
  g_assert_cmpstr (waited.auth->account_id, ==, "acct_login_8");
  g_assert_cmpstr (waited.auth->claims->email, ==, "far@example.com");

  /* Once only. */
  g_assert_false (pooler_login_take_address (f->login, location, &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_FAILED);
  g_assert_cmpuint (fake_upstream_get_sign_in_count (f->fake), ==, 1);
  pooler_auth_file_free (waited.auth);
}

/* Only 1455 and 1457 are accepted as redirects: with 1455 taken, 1457. */
static void
test_fallback_port (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(SoupServer) squatter = soup_server_new (NULL, NULL);
  g_autoptr(GError) error = NULL;

  if (!soup_server_listen_local (squatter, POOLER_LOGIN_PORT, SOUP_SERVER_LISTEN_IPV4_ONLY, &error))
    {
      g_test_skip ("port 1455 is in use on this machine");
      return;
    }
  if (!pooler_login_listen (f->login, 0, &error))
    {
      g_assert_error (error, POOLER_ERROR, POOLER_ERROR_FAILED);
      g_assert_nonnull (strstr (error->message, "both in use"));
      g_test_skip ("port 1457 is in use on this machine");
      return;
    }
  g_assert_cmpuint (pooler_login_get_port (f->login), ==, POOLER_LOGIN_FALLBACK_PORT);
  g_assert_nonnull (strstr (pooler_login_get_authorize_url (f->login),
                            "redirect_uri=http%3A%2F%2Flocalhost%3A1457%2Fauth%2Fcallback"));
  soup_server_disconnect (squatter);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/login/authorize-url", test_authorize_url);
  ADD ("/login/signs-in", test_signs_in);
  ADD ("/login/wrong-state-keeps-waiting", test_wrong_state_keeps_waiting);
  ADD ("/login/refused", test_refused);
  ADD ("/login/exchange-refused", test_exchange_refused);
  ADD ("/login/no-refresh-token", test_no_refresh_token);
  ADD ("/login/cancelled", test_cancelled);
  ADD ("/login/times-out", test_times_out);
  ADD ("/login/caller-drops-its-reference", test_caller_drops_its_reference);
  ADD ("/login/cancelled-during-exchange", test_cancelled_during_exchange);
  ADD ("/login/exchange-outlives-the-limit", test_exchange_outlives_the_limit);
  ADD ("/login/pasted-address", test_pasted_address);
  ADD ("/login/fallback-port", test_fallback_port);
#undef ADD

  return g_test_run ();
}
