/* test-routing.c: routing across a Pool of three accounts, end to end in
 * one process: failover before the first byte, quota cooldowns, token
 * refresh (single flight, rotation, refusal), continuity, the exhausted
 * Pool's answer and wham/usage from evidence.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <string.h>

#include "fake-upstream.h"
#include "pooler-error.h"
#include "pooler-gateway.h"
#include "pooler-service.h"
#include "pooler-store.h"
#include "pooler-store-private.h"
#include "test-util.h"

#define N_ACCOUNTS 3

typedef struct
{
  char *chatgpt_id;
  char *id;            /* ours */
  char *access_token;
} Member;

typedef struct
{
  FakeUpstream  *fake;
  PoolerService *service;
  PoolerGateway *gateway;
  SoupSession   *client;
  char          *base;
  char          *key;
  GBytes        *codex_body;
  Member         members[N_ACCOUNTS];   /* A, B, C in fill-first order */
  guint          exhausted_signals;
  guint          pool_exhausted_signals;
  guint          reauth_signals;
  gint64         last_reset;
} Fixture;

typedef struct
{
  /* Account A's tokens: expiring within the minute, or a refresh token
   * the sign-in server does not know. */
  gboolean a_expiring;
  gboolean a_unknown_refresh;
  const char *strategy;
} Setup;

static const Setup plain = { FALSE, FALSE, POOLER_STRATEGY_FILL_FIRST };
static const Setup expiring = { TRUE, FALSE, POOLER_STRATEGY_FILL_FIRST };
static const Setup unknown_refresh = { FALSE, TRUE, POOLER_STRATEGY_FILL_FIRST };
static const Setup rotating = { FALSE, FALSE, POOLER_STRATEGY_ROUND_ROBIN };

static void
on_account_exhausted (PoolerService *service,
                      PoolerAccount *account,
                      gint64         reset_at,
                      Fixture       *f)
{
  f->exhausted_signals++;
  f->last_reset = reset_at;
}

static void
on_pool_exhausted (PoolerService *service,
                   PoolerPool    *pool,
                   gint64         reset_at,
                   Fixture       *f)
{
  f->pool_exhausted_signals++;
}

static void
on_reauth (PoolerService *service,
           PoolerAccount *account,
           Fixture       *f)
{
  f->reauth_signals++;
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  const Setup *setup = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(PoolerPool) pool = NULL;
  g_autofree char *upstream = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  f->fake = fake_upstream_new (&error);
  g_assert_no_error (error);
  upstream = fake_upstream_dup_base_url (f->fake);

  f->service = pooler_service_new (NULL, &error);
  g_assert_no_error (error);
  pooler_service_set_upstream_url (f->service, upstream);
  {
    g_autofree char *auth = fake_upstream_dup_auth_url (f->fake);
    pooler_service_set_auth_url (f->service, auth);
  }

  pool = pooler_service_create_pool (f->service, "main", setup->strategy, &error);
  g_assert_no_error (error);

  for (guint i = 0; i < N_ACCOUNTS; i++)
    {
      Member *m = &f->members[i];
      g_autofree char *name = g_strdup_printf ("%c", 'a' + i);
      g_autofree char *email = g_strdup_printf ("%s@example.com", name);
      g_autofree char *refresh = g_strdup_printf ("rt_%s_%08x", name, g_random_int ());
      g_autofree char *path = NULL;
      g_autoptr(PoolerAccount) account = NULL;
      g_autoptr(PoolerAccount) stored = NULL;
      gint64 exp = (i == 0 && setup->a_expiring) ? now + 30 : now + 10 * 86400;

      m->chatgpt_id = g_strdup_printf ("acct_%s_%08x", name, g_random_int ());
      m->access_token = test_make_jwt (m->chatgpt_id, email, exp);
      fake_upstream_add_account (f->fake, m->chatgpt_id, m->access_token, refresh);

      if (i == 0 && setup->a_unknown_refresh)
        {
          g_free (refresh);
          refresh = g_strdup ("rt_the_server_never_issued");
        }

      path = test_write_auth_json (name, m->chatgpt_id, email, m->access_token, refresh, exp);
      account = pooler_service_import_account (f->service, path, "main", name, NULL, &error);
      g_assert_no_error (error);
      m->id = g_strdup (pooler_account_get_id (account));

      /* A, B, C: the fill-first order. */
      stored = pooler_store_find_account (pooler_service_get_store (f->service), m->id, &error);
      g_assert_no_error (error);
      pooler_account_set_priority (stored, (int) i);
      g_assert_true (pooler_store_save_account (pooler_service_get_store (f->service), stored, &error));
    }

  f->key = pooler_service_create_key (f->service, "main", "routing", NULL, &error);
  g_assert_no_error (error);

  g_assert_true (pooler_service_start (f->service, &error));
  g_assert_no_error (error);

  g_signal_connect (f->service, "account-exhausted", G_CALLBACK (on_account_exhausted), f);
  g_signal_connect (f->service, "pool-exhausted", G_CALLBACK (on_pool_exhausted), f);
  g_signal_connect (f->service, "reauth-required", G_CALLBACK (on_reauth), f);

  f->gateway = pooler_gateway_new (f->service);
  g_assert_true (pooler_gateway_listen (f->gateway, NULL, 0, &error));
  g_assert_no_error (error);
  f->base = pooler_gateway_dup_base_url (f->gateway);
  f->client = soup_session_new_with_options ("max-conns-per-host", 64, NULL);
  f->codex_body = test_load_codex_body ();
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_object (&f->client);
  g_clear_object (&f->gateway);
  if (f->service != NULL)
    pooler_service_stop (f->service);
  g_clear_object (&f->service);
  g_clear_object (&f->fake);
  g_clear_pointer (&f->codex_body, g_bytes_unref);
  g_free (f->base);
  g_free (f->key);
  for (guint i = 0; i < N_ACCOUNTS; i++)
    {
      g_free (f->members[i].chatgpt_id);
      g_free (f->members[i].id);
      g_free (f->members[i].access_token);
    }

  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static SoupMessage *
post (Fixture  *f,
      GBytes   *body,
      GBytes  **out_answer)
{
  SoupMessage *msg = test_new_message (f->base, "POST", "/backend-api/codex/responses", f->key);

  soup_message_headers_replace (soup_message_get_request_headers (msg), "accept", "text/event-stream");
  soup_message_set_request_body_from_bytes (msg, "application/json", body != NULL ? body : f->codex_body);
  *out_answer = test_send_and_read (f->client, msg);

  return msg;
}

static PoolerAccount *
live_account (Fixture *f,
              guint    i)
{
  g_autoptr(GPtrArray) accounts = pooler_service_list_accounts (f->service);

  for (guint j = 0; j < accounts->len; j++)
    if (g_strcmp0 (pooler_account_get_id (g_ptr_array_index (accounts, j)), f->members[i].id) == 0)
      return g_ptr_array_index (accounts, j);

  g_assert_not_reached ();
}

static const char *
attempt_error (PoolerRequestRecord *row,
               guint                i)
{
  return ((PoolerAttemptRecord *) g_ptr_array_index (row->attempts, i))->error_code;
}

static const char *
attempt_account (PoolerRequestRecord *row,
                 guint                i)
{
  return ((PoolerAttemptRecord *) g_ptr_array_index (row->attempts, i))->account_id;
}

/* Spins the default context (the gateway's) until @ready says so, or
 * fails after 10 s. */
typedef gboolean (*Ready) (Fixture *f, gconstpointer data);

static void
spin_until (Fixture       *f,
            Ready          ready,
            gconstpointer  data)
{
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  while (!ready (f, data))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      if (!g_main_context_iteration (NULL, FALSE))
        g_usleep (1000);
    }
}

/* Whether the gateway holds @data as A's access token. */
static gboolean
holds_access_token (Fixture       *f,
                    gconstpointer  data)
{
  const PoolerTokens *tokens = pooler_service_peek_tokens (f->service, f->members[0].id);

  return tokens != NULL && g_strcmp0 (tokens->access_token, data) == 0;
}

static gboolean
token_request_held (Fixture       *f,
                    gconstpointer  data)
{
  return fake_upstream_get_held_count (f->fake) >= 1;
}

static gboolean
answer_read (Fixture       *f,
             gconstpointer  data)
{
  return ((const TestSent *) data)->done;
}

static gboolean
a_needs_sign_in (Fixture       *f,
                 gconstpointer  data)
{
  return pooler_account_get_status (live_account (f, 0)) == POOLER_ACCOUNT_REAUTH_REQUIRED;
}

/* A refused refresh has been judged: A holds the pair @data, or is marked. */
static gboolean
refusal_decided (Fixture       *f,
                 gconstpointer  data)
{
  return holds_access_token (f, data) || a_needs_sign_in (f, NULL);
}

static void
test_429_fails_over_and_cools_down (Fixture       *f,
                                    gconstpointer  data)
{
  g_autoptr(SoupMessage) first = NULL;
  g_autoptr(SoupMessage) second = NULL;
  g_autoptr(GBytes) a1 = NULL, a2 = NULL;
  g_autoptr(PoolerRequestRecord) row = NULL;
  g_autoptr(PoolerRequestRecord) row2 = NULL;
  g_autofree char *why = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  fake_upstream_set_mode (f->fake, f->members[0].chatgpt_id, "429at", 0);
  fake_upstream_set_reply_text (f->fake, "served-by-b");

  first = post (f, NULL, &a1);
  g_assert_cmpuint (soup_message_get_status (first), ==, 200);
  g_assert_true (test_bytes_contain (a1, "served-by-b"));

  row = test_last_request (f->service);
  g_assert_cmpstr (row->account_id, ==, f->members[1].id);
  g_assert_cmpuint (row->attempts->len, ==, 2);
  g_assert_cmpstr (attempt_account (row, 0), ==, f->members[0].id);
  g_assert_cmpstr (attempt_error (row, 0), ==, "upstream_429");
  g_assert_cmpstr (attempt_account (row, 1), ==, f->members[1].id);
  g_assert_null (attempt_error (row, 1));

  /* A cools down until its reset (about half an hour away). */
  g_assert_cmpuint (f->exhausted_signals, ==, 1);
  g_assert_cmpint (f->last_reset, >=, now + 1700);
  g_assert_cmpint (pooler_account_get_cooldown_until (live_account (f, 0)), >=, now + 1700);
  why = pooler_router_explain (pooler_service_get_router (f->service), live_account (f, 0), NULL, now);
  g_assert_nonnull (strstr (why, "quota spent until"));

  /* The next request does not try A at all. */
  second = post (f, NULL, &a2);
  g_assert_cmpuint (soup_message_get_status (second), ==, 200);
  row2 = test_last_request (f->service);
  g_assert_cmpuint (row2->attempts->len, ==, 1);
  g_assert_cmpstr (row2->account_id, ==, f->members[1].id);
  g_assert_cmpuint (f->exhausted_signals, ==, 1);
}

static void
test_5xx_and_failed_first_event_fail_over (Fixture       *f,
                                           gconstpointer  data)
{
  g_autoptr(SoupMessage) m1 = NULL, m2 = NULL, m3 = NULL;
  g_autoptr(GBytes) a1 = NULL, a2 = NULL, a3 = NULL;
  g_autoptr(PoolerRequestRecord) r1 = NULL, r2 = NULL, r3 = NULL;

  fake_upstream_set_mode (f->fake, f->members[0].chatgpt_id, "500", 1);
  m1 = post (f, NULL, &a1);
  g_assert_cmpuint (soup_message_get_status (m1), ==, 200);
  r1 = test_last_request (f->service);
  g_assert_cmpstr (r1->account_id, ==, f->members[1].id);
  g_assert_cmpstr (attempt_error (r1, 0), ==, "upstream_500");

  /* A failed a moment ago: it is tried last for a minute. */
  m2 = post (f, NULL, &a2);
  r2 = test_last_request (f->service);
  g_assert_cmpuint (r2->attempts->len, ==, 1);
  g_assert_cmpstr (r2->account_id, ==, f->members[1].id);

  /* A 200 whose first event is response.failed: nothing reached the
   * client yet, so the next account answers. */
  fake_upstream_set_mode (f->fake, f->members[1].chatgpt_id, "failed", 1);
  m3 = post (f, NULL, &a3);
  g_assert_cmpuint (soup_message_get_status (m3), ==, 200);
  g_assert_false (test_bytes_contain (a3, "response.failed"));
  g_assert_true (test_bytes_contain (a3, "response.completed"));
  r3 = test_last_request (f->service);
  g_assert_cmpuint (r3->attempts->len, ==, 2);
  g_assert_cmpstr (attempt_error (r3, 0), ==, "upstream_response_failed");
  g_assert_cmpstr (r3->account_id, !=, f->members[1].id);
}

static void
test_401_refreshes_once_and_retries (Fixture       *f,
                                     gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) answer = NULL;
  g_autoptr(PoolerRequestRecord) row = NULL;
  g_autoptr(PoolerTokens) stored = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *rotated = NULL;

  fake_upstream_invalidate_access_token (f->fake, f->members[0].chatgpt_id);

  msg = post (f, NULL, &answer);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);

  row = test_last_request (f->service);
  g_assert_cmpstr (row->account_id, ==, f->members[0].id);
  g_assert_cmpuint (row->attempts->len, ==, 2);
  g_assert_cmpstr (attempt_error (row, 0), ==, "upstream_401");
  g_assert_cmpstr (attempt_account (row, 1), ==, f->members[0].id);
  g_assert_cmpuint (fake_upstream_get_refresh_count (f->fake, f->members[0].chatgpt_id), ==, 1);

  /* The rotated pair is in the keyring: the old refresh token is spent. */
  rotated = fake_upstream_dup_refresh_token (f->fake, f->members[0].chatgpt_id);
  stored = pooler_vault_lookup_sync (pooler_service_get_vault (f->service), f->members[0].id, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (stored->refresh_token, ==, rotated);
  g_assert_cmpint (pooler_account_get_status (live_account (f, 0)), ==, POOLER_ACCOUNT_ACTIVE);
}

static void
test_refused_refresh_marks_reauth (Fixture       *f,
                                   gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) answer = NULL;
  g_autoptr(PoolerRequestRecord) row = NULL;
  g_autoptr(PoolerAccount) stored = NULL;
  g_autoptr(GError) error = NULL;

  fake_upstream_invalidate_access_token (f->fake, f->members[0].chatgpt_id);

  msg = post (f, NULL, &answer);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  row = test_last_request (f->service);
  g_assert_cmpstr (row->account_id, ==, f->members[1].id);

  /* Kept, not deleted; told once (after the keyring is seen to hold no
   * newer pair). */
  spin_until (f, a_needs_sign_in, NULL);
  stored = pooler_store_find_account (pooler_service_get_store (f->service), f->members[0].id, &error);
  g_assert_no_error (error);
  g_assert_cmpint (pooler_account_get_status (stored), ==, POOLER_ACCOUNT_REAUTH_REQUIRED);
  g_assert_cmpuint (f->reauth_signals, ==, 1);
  g_assert_cmpuint (fake_upstream_get_refresh_count (f->fake, f->members[0].chatgpt_id), ==, 0);
}

/* The user signs A in again, in another process (as `account login` or
 * `account import` would); returns the new access token. */
static char *sign_a_in_elsewhere_until (Fixture *f,
                                        gint64   exp);

static char *
sign_a_in_elsewhere (Fixture *f)
{
  return sign_a_in_elsewhere_until (f, g_get_real_time () / G_USEC_PER_SEC + 20 * 86400);
}

/* The same, with tokens whose access token expires at @exp. */
static char *
sign_a_in_elsewhere_until (Fixture *f,
                           gint64   exp)
{
  Member *a = &f->members[0];
  g_autoptr(PoolerService) other = NULL;
  g_autoptr(PoolerAccount) imported = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *refresh = g_strdup_printf ("rt_a_new_%08x", g_random_int ());
  g_autofree char *path = NULL;
  char *access = test_make_jwt (a->chatgpt_id, "a@example.com", exp);

  fake_upstream_add_account (f->fake, a->chatgpt_id, access, refresh);
  path = test_write_auth_json ("a-again", a->chatgpt_id, "a@example.com", access, refresh, exp);
  other = pooler_service_new (NULL, &error);
  g_assert_no_error (error);
  imported = pooler_service_import_account (other, path, "main", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (pooler_account_get_id (imported), ==, a->id);

  return access;
}

/* With B and C paused (A, which just failed, is tried last for a while),
 * A serves at the first try. */
static void
assert_a_serves (Fixture *f)
{
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) answer = NULL;
  g_autoptr(PoolerRequestRecord) row = NULL;
  g_autoptr(GError) error = NULL;

  for (guint i = 1; i < N_ACCOUNTS; i++)
    {
      g_assert_true (pooler_service_set_account_status (f->service, f->members[i].id,
                                                        POOLER_ACCOUNT_PAUSED, &error));
      g_assert_no_error (error);
    }
  msg = post (f, NULL, &answer);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  row = test_last_request (f->service);
  g_assert_cmpstr (row->account_id, ==, f->members[0].id);
  g_assert_cmpuint (row->attempts->len, ==, 1);
}

/* A sign-in stored by another process (the command line's import or
 * login) reaches the running gateway: its held pair is read again, so the
 * account serves with the new tokens instead of failing on the old ones. */
static void
test_sign_in_elsewhere_picked_up (Fixture       *f,
                                  gconstpointer  data)
{
  Member *a = &f->members[0];
  g_autoptr(SoupMessage) first = NULL;
  g_autoptr(GBytes) answer = NULL;
  g_autofree char *access = NULL;

  /* A's refresh token is refused: A needs a new sign-in. */
  fake_upstream_invalidate_access_token (f->fake, a->chatgpt_id);
  first = post (f, NULL, &answer);
  g_assert_cmpuint (soup_message_get_status (first), ==, 200);
  spin_until (f, a_needs_sign_in, NULL);

  access = sign_a_in_elsewhere (f);

  /* The gateway's periodic check (here, at once) takes the new pair. */
  pooler_service_reload (f->service);
  g_assert_cmpint (pooler_account_get_status (live_account (f, 0)), ==, POOLER_ACCOUNT_ACTIVE);
  spin_until (f, holds_access_token, access);

  assert_a_serves (f);
  g_assert_cmpuint (fake_upstream_get_refresh_count (f->fake, a->chatgpt_id), ==, 0);
  g_assert_cmpuint (f->reauth_signals, ==, 1);
}

/* A refresh of the old pair that is still running when the account is
 * signed in again elsewhere, and then refused (the old family is gone):
 * the account is not marked as needing a sign-in; its new pair serves. */
/* A's access token is refused: a request (read into @sent in the
 * background) makes the gateway refresh A, and the sign-in server holds
 * that refresh until fake_upstream_release(). */
static SoupMessage *
hold_a_refresh (Fixture  *f,
                TestSent *sent)
{
  SoupMessage *msg;

  fake_upstream_invalidate_access_token (f->fake, f->members[0].chatgpt_id);
  fake_upstream_set_oauth_mode (f->fake, "hold");
  msg = test_new_message (f->base, "POST", "/backend-api/codex/responses", f->key);
  soup_message_set_request_body_from_bytes (msg, "application/json", f->codex_body);
  test_send_and_read_start (f->client, msg, sent);
  spin_until (f, token_request_held, NULL);
  return msg;
}

static void
test_sign_in_during_refresh (Fixture       *f,
                             gconstpointer  data)
{
  Member *a = &f->members[0];
  g_autoptr(SoupMessage) first = NULL;
  g_autoptr(PoolerAccount) stored = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *access = NULL;
  TestSent sent = { 0 };

  first = hold_a_refresh (f, &sent);

  /* Meanwhile A is signed in again (before the gateway's periodic check
   * has read the new pair). */
  access = sign_a_in_elsewhere (f);

  /* The old refresh token is now unknown to the server: refused. Then
   * the keyring is asked, and A either takes the new pair or (wrongly)
   * is marked. */
  fake_upstream_set_oauth_mode (f->fake, "ok");
  fake_upstream_release (f->fake);
  spin_until (f, answer_read, &sent);
  g_assert_no_error (sent.error);
  g_clear_pointer (&sent.body, g_bytes_unref);
  spin_until (f, refusal_decided, access);

  g_assert_true (holds_access_token (f, access));
  g_assert_cmpuint (f->reauth_signals, ==, 0);
  g_assert_cmpint (pooler_account_get_status (live_account (f, 0)), ==, POOLER_ACCOUNT_ACTIVE);
  stored = pooler_store_find_account (pooler_service_get_store (f->service), a->id, &error);
  g_assert_no_error (error);
  g_assert_cmpint (pooler_account_get_status (stored), ==, POOLER_ACCOUNT_ACTIVE);

  assert_a_serves (f);
}

static gboolean
a_refreshed (Fixture       *f,
             gconstpointer  data)
{
  return fake_upstream_get_refresh_count (f->fake, f->members[0].chatgpt_id) >= 1 &&
         pooler_service_get_refresh_count (f->service) >= 1;
}

static gboolean
keyring_lacks_a (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(PoolerTokens) tokens = NULL;
  g_autoptr(GError) error = NULL;

  tokens = pooler_vault_lookup_sync (pooler_service_get_vault (f->service), f->members[0].id, NULL, &error);
  return g_error_matches (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
}

/* A is removed (by the CLI: another service on the same database) while
 * its refresh is out. When the refresh comes back, its rotated pair is
 * not left in the keyring of an account that is gone. */
static void
test_remove_during_refresh (Fixture       *f,
                            gconstpointer  data)
{
  Member *a = &f->members[0];
  g_autoptr(PoolerService) other = NULL;
  g_autoptr(SoupMessage) first = NULL;
  g_autoptr(GError) error = NULL;
  TestSent sent = { 0 };

  first = hold_a_refresh (f, &sent);

  other = pooler_service_new (NULL, &error);
  g_assert_no_error (error);
  g_assert_true (pooler_service_remove_account (other, a->id, &error));
  g_assert_no_error (error);
  g_assert_true (keyring_lacks_a (f, NULL));

  fake_upstream_set_oauth_mode (f->fake, "ok");
  fake_upstream_release (f->fake);
  spin_until (f, answer_read, &sent);
  spin_until (f, a_refreshed, NULL);
  spin_until (f, keyring_lacks_a, NULL);
  g_clear_pointer (&sent.body, g_bytes_unref);
  g_clear_error (&sent.error);

  /* And it stays gone (no later write brings it back). */
  for (guint i = 0; i < 20; i++)
    {
      g_main_context_iteration (NULL, FALSE);
      g_usleep (10 * 1000);
    }
  g_assert_true (keyring_lacks_a (f, NULL));
}

typedef struct
{
  guint done;
  guint ok;
} Burst;

static void
burst_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  Burst *burst = user_data;
  g_autoptr(GError) error = NULL;
  SoupMessage *msg = soup_session_get_async_result_message (SOUP_SESSION (object), result);
  g_autoptr(GBytes) body = soup_session_send_and_read_finish (SOUP_SESSION (object), result, &error);

  burst->done++;
  if (body != NULL && soup_message_get_status (msg) == 200 &&
      test_bytes_contain (body, "response.completed"))
    burst->ok++;
}

/* 50 requests at once on an account whose token is about to expire: one
 * refresh, and all 50 served. */
static void
test_single_flight_refresh (Fixture       *f,
                            gconstpointer  data)
{
  g_autoptr(GPtrArray) messages = g_ptr_array_new_with_free_func (g_object_unref);
  Burst burst = { 0, 0 };

  for (guint i = 0; i < 50; i++)
    {
      SoupMessage *msg = test_new_message (f->base, "POST", "/backend-api/codex/responses", f->key);

      soup_message_set_request_body_from_bytes (msg, "application/json", f->codex_body);
      soup_session_send_and_read_async (f->client, msg, G_PRIORITY_DEFAULT, NULL, burst_cb, &burst);
      g_ptr_array_add (messages, msg);
    }
  while (burst.done < 50)
    g_main_context_iteration (NULL, TRUE);

  g_assert_cmpuint (burst.ok, ==, 50);
  g_assert_cmpuint (fake_upstream_get_refresh_count (f->fake, f->members[0].chatgpt_id), ==, 1);
  g_assert_cmpuint (pooler_service_get_refresh_count (f->service), ==, 1);
}

/* A's token expires in 30 s and the sign-in server fails: the first
 * request's refresh fails and backs off; A's pair still serves until it
 * expires, and the requests after it do not ask the server again. */
static void
test_refresh_backs_off (Fixture       *f,
                        gconstpointer  data)
{
  fake_upstream_set_oauth_mode (f->fake, "500");

  for (guint i = 0; i < 5; i++)
    {
      g_autoptr(GBytes) answer = NULL;
      g_autoptr(SoupMessage) msg = post (f, f->codex_body, &answer);
      g_autoptr(PoolerRequestRecord) row = test_last_request (f->service);

      g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
      g_assert_cmpstr (row->account_id, ==, f->members[0].id);
    }
  g_assert_cmpuint (fake_upstream_get_token_request_count (f->fake), ==, 1);
  g_assert_cmpuint (pooler_service_get_refresh_count (f->service), ==, 0);
}

/* The upstream took the request and says nothing: after the answer
 * timeout the client gets 504, and no other account is sent the same
 * request (the first may still be at work on it, and bill it). */
static void
test_timeout_not_resent (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(GBytes) answer = NULL;
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(PoolerRequestRecord) row = NULL;

  pooler_gateway_set_timeouts (f->gateway, 30, 15, 1);
  fake_upstream_set_mode (f->fake, NULL, "hang", 0);
  msg = post (f, f->codex_body, &answer);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 504);
  g_assert_cmpuint (fake_upstream_get_request_count (f->fake), ==, 1);
  fake_upstream_release (f->fake);

  row = test_last_request (f->service);
  g_assert_cmpstr (row->error_code, ==, "upstream_timeout");
  g_assert_cmpuint (row->attempts->len, ==, 1);
}

static GBytes *body_with (const char *json);

static gboolean
a_serves_again (Fixture       *f,
                gconstpointer  data)
{
  return pooler_account_get_status (live_account (f, 0)) == POOLER_ACCOUNT_ACTIVE &&
         holds_access_token (f, data);
}

/* A marked as needing a sign-in, then signed in again elsewhere with
 * tokens whose access token expires before the refused pair's would have
 * (an older auth.json imported): it serves again, without a restart. */
static void
test_reauth_ended_by_older_import (Fixture       *f,
                                   gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) answer = NULL;
  g_autofree char *access = NULL;

  fake_upstream_invalidate_access_token (f->fake, f->members[0].chatgpt_id);
  msg = post (f, NULL, &answer);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  spin_until (f, a_needs_sign_in, NULL);

  access = sign_a_in_elsewhere_until (f, g_get_real_time () / G_USEC_PER_SEC + 5 * 86400);
  spin_until (f, a_serves_again, access);
}

/* A reload that runs before the writer has stored "needs a sign-in" (here
 * from inside the reauth-required signal: another process changed the
 * configuration) reads A's row as it was. It must not make A active again
 * and put the refused pair back into rotation. */
static void
reload_during_reauth (PoolerService *service,
                      PoolerAccount *account,
                      Fixture       *f)
{
  g_autoptr(GError) error = NULL;
  sqlite3 *other = pooler_store_open_connection (pooler_store_get_path (pooler_service_get_store (service)),
                                                 &error);

  g_assert_no_error (error);
  g_assert_cmpint (sqlite3_exec (other, "UPDATE pools SET name = name || 'x'", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (other);
  pooler_service_reload (service);
  g_assert_cmpint (pooler_account_get_status (live_account (f, 0)), ==, POOLER_ACCOUNT_REAUTH_REQUIRED);
}

static void
test_reauth_survives_early_reload (Fixture       *f,
                                   gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) answer = NULL;
  g_autoptr(PoolerAccount) row = NULL;
  g_autoptr(GError) error = NULL;

  g_signal_connect (f->service, "reauth-required", G_CALLBACK (reload_during_reauth), f);
  fake_upstream_invalidate_access_token (f->fake, f->members[0].chatgpt_id);
  msg = post (f, NULL, &answer);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  spin_until (f, a_needs_sign_in, NULL);
  g_assert_cmpuint (f->reauth_signals, ==, 1);

  /* Maintenance does not read the refused pair back for an account that
   * needs a sign-in, and the row ends as the memory says. */
  pooler_service_run_maintenance (f->service);
  for (guint i = 0; i < 50; i++)
    {
      g_main_context_iteration (NULL, FALSE);
      g_usleep (2000);
    }
  g_assert_null (pooler_service_peek_tokens (f->service, f->members[0].id));
  g_assert_cmpint (pooler_account_get_status (live_account (f, 0)), ==, POOLER_ACCOUNT_REAUTH_REQUIRED);
  pooler_service_flush (f->service);
  row = pooler_store_find_account (pooler_service_get_store (f->service), f->members[0].id, &error);
  g_assert_no_error (error);
  g_assert_cmpint (pooler_account_get_status (row), ==, POOLER_ACCOUNT_REAUTH_REQUIRED);

  /* And a resume without a sign-in is refused, pointing at the command. */
  g_assert_false (pooler_service_set_account_status (f->service, f->members[0].id, POOLER_ACCOUNT_ACTIVE, &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "account login --pool main"));
}

/* Another process holds the database's write lock while A's refresh
 * token is refused: the request is answered (by B) without the main loop
 * waiting on SQLite for the status or the audit event. */
static void
test_reauth_written_without_waiting (Fixture       *f,
                                     gconstpointer  data)
{
  const char *db_path = pooler_store_get_path (pooler_service_get_store (f->service));
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) answer = NULL;
  g_autoptr(PoolerAccount) row = NULL;
  g_autoptr(GPtrArray) events = NULL;
  g_autoptr(GError) error = NULL;
  sqlite3 *other;

  pooler_service_flush (f->service);
  other = pooler_store_open_connection (db_path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (sqlite3_exec (other, "BEGIN IMMEDIATE", NULL, NULL, NULL), ==, SQLITE_OK);

  fake_upstream_invalidate_access_token (f->fake, f->members[0].chatgpt_id);
  msg = post (f, NULL, &answer);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  spin_until (f, a_needs_sign_in, NULL);

  g_assert_cmpint (sqlite3_exec (other, "ROLLBACK", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (other);
  pooler_service_flush (f->service);
  row = pooler_store_find_account (pooler_service_get_store (f->service), f->members[0].id, &error);
  g_assert_no_error (error);
  g_assert_cmpint (pooler_account_get_status (row), ==, POOLER_ACCOUNT_REAUTH_REQUIRED);
  events = pooler_store_list_audit_events (pooler_service_get_store (f->service), 0, 1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (((PoolerAuditEvent *) events->pdata[0])->action, ==, "account.reauth-required");
}

/* A first event that fails for the request's own sake (too long for the
 * context) would fail on every account: it is passed on from the first,
 * which is not held at fault. */
static void
test_request_failure_passed_on (Fixture       *f,
                                gconstpointer  data)
{
  g_autoptr(GBytes) answer = NULL;
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(PoolerRequestRecord) row = NULL;

  for (guint i = 0; i < 4; i++)
    {
      g_clear_pointer (&answer, g_bytes_unref);
      g_clear_object (&msg);
      g_clear_pointer (&row, pooler_request_record_free);
      fake_upstream_set_mode (f->fake, NULL, "failed_request", 1);
      msg = post (f, NULL, &answer);
      g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
      g_assert_true (test_bytes_contain (answer, "context_length_exceeded"));
      row = test_last_request (f->service);
      g_assert_cmpuint (row->attempts->len, ==, 1);
      g_assert_cmpstr (row->account_id, ==, f->members[0].id);
    }
  g_assert_false (pooler_router_is_demoted (pooler_service_get_router (f->service), live_account (f, 0),
                                            g_get_real_time () / G_USEC_PER_SEC));
}

/* Another process holds the database's write lock (a CLI command, a
 * window) while a 429 cools A down: the request is answered without the
 * main loop waiting on SQLite (it waited the 5 s busy timeout, then
 * failed to save, a warning), and the cooldown is in the row once the
 * lock is gone. */
static void
test_cooldown_written_without_waiting (Fixture       *f,
                                       gconstpointer  data)
{
  const char *db_path = pooler_store_get_path (pooler_service_get_store (f->service));
  g_autoptr(GBytes) answer = NULL;
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(PoolerAccount) stored = NULL;
  g_autoptr(GError) error = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  sqlite3 *other;

  pooler_service_flush (f->service);
  other = pooler_store_open_connection (db_path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (sqlite3_exec (other, "BEGIN IMMEDIATE", NULL, NULL, NULL), ==, SQLITE_OK);

  fake_upstream_set_mode (f->fake, f->members[0].chatgpt_id, "429at", 1);
  msg = post (f, NULL, &answer);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  g_assert_cmpint (pooler_account_get_cooldown_until (live_account (f, 0)), >=, now + 1700);

  g_assert_cmpint (sqlite3_exec (other, "ROLLBACK", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (other);
  pooler_service_flush (f->service);
  stored = pooler_store_find_account (pooler_service_get_store (f->service), f->members[0].id, &error);
  g_assert_no_error (error);
  g_assert_cmpint (pooler_account_get_cooldown_until (stored), >=, now + 1700);
}

/* /v1/responses, streamed: A's first event is response.failed, so the
 * request fails over to B, whose stream ends without any event. The
 * client still gets a terminal event: what A's stream said must not make
 * the gateway think one was sent. */
static void
test_v1_failover_forgets_first_attempt (Fixture       *f,
                                        gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = test_new_message (f->base, "POST", "/v1/responses", f->key);
  g_autoptr(GBytes) body = body_with ("{\"model\":\"gpt-5.5\",\"input\":\"hi\",\"stream\":true}");
  g_autoptr(GBytes) answer = NULL;
  g_autoptr(PoolerRequestRecord) row = NULL;

  g_autoptr(GError) error = NULL;

  /* Two accounts: B is the last one to try. */
  g_assert_true (pooler_service_set_account_status (f->service, f->members[2].id, POOLER_ACCOUNT_PAUSED, &error));
  g_assert_no_error (error);
  fake_upstream_set_mode (f->fake, f->members[0].chatgpt_id, "failed", 1);
  fake_upstream_set_mode (f->fake, f->members[1].chatgpt_id, "empty", 1);
  soup_message_set_request_body_from_bytes (msg, "application/json", body);
  answer = test_send_and_read (f->client, msg);

  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  g_assert_true (test_bytes_contain (answer, "event: response.failed"));
  row = test_last_request (f->service);
  g_assert_cmpuint (row->attempts->len, ==, 2);
}

/* The upstream answers 413 from the head of an 8 MiB request and
 * closes without reading the body: the client gets that 413, from the
 * one account asked, and no account is held at fault. */
static void
test_early_answer_passed_on (Fixture       *f,
                             gconstpointer  data)
{
  g_autofree char *filler = g_strnfill (8 * 1024 * 1024, 'x');
  g_autofree char *json = g_strdup_printf ("{\"model\":\"gpt-5.5\",\"stream\":true,\"input\":[],"
                                           "\"instructions\":\"%s\"}", filler);
  g_autoptr(GBytes) big = g_bytes_new (json, strlen (json));
  g_autoptr(GBytes) small = body_with ("{\"model\":\"gpt-5.5\",\"stream\":true,\"input\":[]}");

  fake_upstream_set_early_answer (f->fake, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE);
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(GBytes) answer = NULL;
      g_autoptr(SoupMessage) msg = post (f, big, &answer);
      g_autoptr(PoolerRequestRecord) row = test_last_request (f->service);

      g_assert_cmpuint (soup_message_get_status (msg), ==, 413);
      g_assert_true (test_bytes_contain (answer, "payload_too_large"));
      g_assert_cmpuint (row->attempts->len, ==, 1);
    }
  g_assert_cmpuint (fake_upstream_get_early_answer_count (f->fake), ==, 3);

  /* Every account still serves. */
  fake_upstream_set_early_answer (f->fake, 0);
  {
    g_autoptr(GBytes) answer = NULL;
    g_autoptr(SoupMessage) msg = post (f, small, &answer);

    g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  }
}

static GBytes *
body_with (const char *json)
{
  return g_bytes_new (json, strlen (json));
}

static void
test_soft_continuity (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(GBytes) conversation = body_with ("{\"model\":\"gpt-5.5\",\"stream\":true,\"input\":[],"
                                              "\"prompt_cache_key\":\"thread-one\"}");
  g_autoptr(GBytes) other = body_with ("{\"model\":\"gpt-5.5\",\"stream\":true,\"input\":[],"
                                       "\"prompt_cache_key\":\"thread-two\"}");
  g_autofree char *home = NULL;
  PoolerAffinity *affinity = pooler_service_get_affinity (f->service);
  gint64 now;
  guint home_index = 0;

  /* Round robin would move on; the conversation stays. */
  for (guint i = 0; i < 4; i++)
    {
      g_autoptr(GBytes) answer = NULL;
      g_autoptr(GBytes) unrelated = NULL;
      g_autoptr(SoupMessage) msg = post (f, conversation, &answer);
      g_autoptr(SoupMessage) msg2 = NULL;
      g_autoptr(PoolerRequestRecord) row = test_last_request (f->service);

      g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
      if (home == NULL)
        home = g_strdup (row->account_id);
      g_assert_cmpstr (row->account_id, ==, home);

      msg2 = post (f, other, &unrelated);
      g_assert_cmpuint (soup_message_get_status (msg2), ==, 200);
    }

  for (guint i = 0; i < N_ACCOUNTS; i++)
    if (g_strcmp0 (f->members[i].id, home) == 0)
      home_index = i;

  /* A passing 5xx on the home account: another serves this turn, but the
   * conversation's home does not move. */
  fake_upstream_set_mode (f->fake, f->members[home_index].chatgpt_id, "500", 1);
  {
    g_autoptr(GBytes) answer = NULL;
    g_autoptr(SoupMessage) msg = post (f, conversation, &answer);
    g_autoptr(PoolerRequestRecord) row = test_last_request (f->service);

    g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
    g_assert_cmpstr (row->account_id, !=, home);
  }
  now = g_get_real_time () / G_USEC_PER_SEC;
  g_assert_cmpstr (pooler_affinity_lookup (affinity, 1, POOLER_AFFINITY_PROMPT_CACHE, "thread-one", now),
                   ==, home);
  {
    g_autoptr(GBytes) answer = NULL;
    g_autoptr(SoupMessage) msg = post (f, conversation, &answer);
    g_autoptr(PoolerRequestRecord) row = test_last_request (f->service);

    g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
    g_assert_cmpstr (row->account_id, ==, home);
  }

  /* The home account's quota is spent: the conversation moves for good. */
  fake_upstream_set_mode (f->fake, f->members[home_index].chatgpt_id, "429at", 0);
  {
    g_autoptr(GBytes) answer = NULL;
    g_autoptr(SoupMessage) msg = post (f, conversation, &answer);
    g_autoptr(PoolerRequestRecord) row = test_last_request (f->service);

    g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
    g_assert_cmpstr (row->account_id, !=, home);
    g_assert_cmpstr (pooler_affinity_lookup (affinity, 1, POOLER_AFFINITY_PROMPT_CACHE, "thread-one", now),
                     ==, row->account_id);
  }
}

/* Continuity outlives the process: a new service on the same database
 * knows where the conversation lives. */
static void
test_continuity_survives_restart (Fixture       *f,
                                  gconstpointer  data)
{
  g_autoptr(GBytes) conversation = body_with ("{\"model\":\"gpt-5.5\",\"stream\":true,\"input\":[],"
                                              "\"prompt_cache_key\":\"thread-restart\"}");
  g_autoptr(GBytes) answer = NULL;
  g_autoptr(SoupMessage) msg = post (f, conversation, &answer);
  g_autoptr(PoolerRequestRecord) row = test_last_request (f->service);
  g_autoptr(PoolerService) again = NULL;
  g_autoptr(GError) error = NULL;
  const char *path = pooler_store_get_path (pooler_service_get_store (f->service));

  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  pooler_service_flush (f->service);

  again = pooler_service_new (path, &error);
  g_assert_no_error (error);
  g_assert_true (pooler_service_start (again, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (pooler_affinity_lookup (pooler_service_get_affinity (again), 1,
                                           POOLER_AFFINITY_PROMPT_CACHE, "thread-restart",
                                           g_get_real_time () / G_USEC_PER_SEC), ==, row->account_id);
  pooler_service_stop (again);
}

/* A ring of one: no failover, the account's own answer comes back. */
static void
test_ring_size (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) answer = NULL;
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(PoolerRequestRecord) row = NULL;

  g_assert_true (pooler_service_set_pool_ring_size (f->service, "main", 1, &error));
  g_assert_no_error (error);
  g_assert_false (pooler_service_set_pool_ring_size (f->service, "main", 11, &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);

  fake_upstream_set_mode (f->fake, f->members[0].chatgpt_id, "500", 1);
  msg = post (f, NULL, &answer);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 500);
  row = test_last_request (f->service);
  g_assert_cmpuint (row->attempts->len, ==, 1);
}

static void
test_hard_pin (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GBytes) followup = body_with ("{\"model\":\"gpt-5.5\",\"stream\":true,\"input\":[],"
                                          "\"previous_response_id\":\"resp_11181368e417442380d2eb4f\"}");
  g_autoptr(GBytes) a1 = NULL, a2 = NULL, a3 = NULL;
  g_autoptr(SoupMessage) m1 = NULL, m2 = NULL, m3 = NULL;
  g_autoptr(PoolerRequestRecord) r1 = NULL, r2 = NULL;
  g_autoptr(JsonObject) error_object = NULL;
  g_autoptr(GError) error = NULL;

  /* The fixture stream's response.completed carries that id. */
  m1 = post (f, NULL, &a1);
  r1 = test_last_request (f->service);
  g_assert_cmpstr (r1->account_id, ==, f->members[0].id);

  /* Even when A is demoted, the follow-up goes nowhere else. */
  pooler_router_report_failure (pooler_service_get_router (f->service), live_account (f, 0),
                                g_get_real_time () / G_USEC_PER_SEC);
  m2 = post (f, followup, &a2);
  g_assert_cmpuint (soup_message_get_status (m2), ==, 200);
  r2 = test_last_request (f->service);
  g_assert_cmpstr (r2->account_id, ==, f->members[0].id);

  g_assert_true (pooler_service_set_account_status (f->service, f->members[0].id,
                                                    POOLER_ACCOUNT_PAUSED, &error));
  g_assert_no_error (error);
  m3 = post (f, followup, &a3);
  g_assert_cmpuint (soup_message_get_status (m3), ==, 409);
  error_object = test_parse_error (a3);
  g_assert_cmpstr (json_object_get_string_member (error_object, "code"), ==,
                   "previous_response_account_unavailable");
  g_assert_cmpstr (json_object_get_string_member (error_object, "param"), ==, "previous_response_id");
}

static SoupMessage *
post_v1 (Fixture    *f,
         const char *json,
         GBytes    **answer)
{
  SoupMessage *msg = test_new_message (f->base, "POST", "/v1/responses", f->key);
  g_autoptr(GBytes) body = body_with (json);

  soup_message_set_request_body_from_bytes (msg, "application/json", body);
  *answer = test_send_and_read (f->client, msg);
  return msg;
}

/* /v1 has no previous_response_id: a client sends the reasoning items of
 * its last turn back (encrypted content, which verifies only on the
 * account that made it). They keep the conversation on that account, even
 * under round robin, and a turn whose account cannot serve is a 409 that
 * names input. */
static void
test_v1_reasoning_items_pin (Fixture       *f,
                             gconstpointer  data)
{
  g_autoptr(SoupMessage) first = NULL;
  g_autoptr(GBytes) answer = NULL;
  g_autoptr(PoolerRequestRecord) row = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *home = NULL;
  g_autofree char *followup = NULL;
  const char *reasoning_id;
  JsonObject *reasoning = NULL;
  JsonArray *output;

  fake_upstream_set_mode (f->fake, NULL, "reasoning", 0);
  first = post_v1 (f, "{\"model\":\"gpt-5.5\",\"input\":\"think\"}", &answer);
  g_assert_cmpuint (soup_message_get_status (first), ==, 200);
  root = json_from_string (g_bytes_get_data (answer, NULL), &error);
  g_assert_no_error (error);
  output = json_object_get_array_member (json_node_get_object (root), "output");
  for (guint i = 0; i < json_array_get_length (output); i++)
    if (g_strcmp0 (json_object_get_string_member (json_array_get_object_element (output, i), "type"),
                   "reasoning") == 0)
      reasoning = json_array_get_object_element (output, i);
  g_assert_nonnull (reasoning);
  reasoning_id = json_object_get_string_member (reasoning, "id");
  row = test_last_request (f->service);
  home = g_strdup (row->account_id);
  /* An older turn's item first, whose pin aged out (unknown here): the
   * newest item decides. */
  followup = g_strdup_printf ("{\"model\":\"gpt-5.5\",\"input\":[{\"type\":\"reasoning\",\"id\":"
                              "\"rs_from_yesterday\",\"summary\":[],\"encrypted_content\":\"gAAAA-old\"},"
                              "{\"role\":\"user\",\"content\":\"think\"},"
                              "{\"type\":\"reasoning\",\"id\":\"%s\","
                              "\"summary\":[],\"encrypted_content\":\"%s\"},"
                              "{\"role\":\"user\",\"content\":\"and then?\"}]}",
                              reasoning_id, json_object_get_string_member (reasoning, "encrypted_content"));

  for (guint i = 0; i < 4; i++)
    {
      g_autoptr(SoupMessage) msg = NULL;
      g_autoptr(GBytes) again = NULL;
      g_autoptr(PoolerRequestRecord) turn = NULL;

      msg = post_v1 (f, followup, &again);
      g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
      turn = test_last_request (f->service);
      g_assert_cmpstr (turn->account_id, ==, home);
    }

  for (guint i = 0; i < N_ACCOUNTS; i++)
    if (g_strcmp0 (f->members[i].id, home) == 0)
      g_assert_true (pooler_service_set_account_status (f->service, home, POOLER_ACCOUNT_PAUSED, &error));
  g_assert_no_error (error);
  {
    g_autoptr(SoupMessage) msg = NULL;
    g_autoptr(GBytes) refused = NULL;
    g_autoptr(JsonObject) error_object = NULL;

    msg = post_v1 (f, followup, &refused);
    g_assert_cmpuint (soup_message_get_status (msg), ==, 409);
    error_object = test_parse_error (refused);
    g_assert_cmpstr (json_object_get_string_member (error_object, "param"), ==, "input");
  }
}

static void
test_pool_spent (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(GBytes) a1 = NULL, a2 = NULL;
  g_autoptr(SoupMessage) m1 = NULL, m2 = NULL;
  g_autoptr(JsonObject) e1 = NULL, e2 = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  guint upstream_requests;

  fake_upstream_set_mode (f->fake, NULL, "429at", 0);
  m1 = post (f, NULL, &a1);
  g_assert_cmpuint (soup_message_get_status (m1), ==, 429);
  e1 = test_parse_error (a1);
  g_assert_cmpstr (json_object_get_string_member (e1, "type"), ==, "usage_limit_reached");
  g_assert_cmpint (json_object_get_int_member (e1, "resets_at"), >, now);
  g_assert_cmpint (json_object_get_int_member (e1, "resets_at"), <=, now + 1800 + 5);
  g_assert_cmpuint (f->pool_exhausted_signals, ==, 1);
  upstream_requests = fake_upstream_get_request_count (f->fake);
  g_assert_cmpuint (upstream_requests, ==, N_ACCOUNTS);

  /* Answered from what we know, without asking the upstream again; one
   * notification per event, not per request. */
  m2 = post (f, NULL, &a2);
  g_assert_cmpuint (soup_message_get_status (m2), ==, 429);
  e2 = test_parse_error (a2);
  g_assert_cmpint (json_object_get_int_member (e2, "resets_at"), ==,
                   json_object_get_int_member (e1, "resets_at"));
  g_assert_cmpuint (fake_upstream_get_request_count (f->fake), ==, upstream_requests);
  g_assert_cmpuint (f->pool_exhausted_signals, ==, 1);
}

static void
test_usage_from_evidence (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(GBytes) a1 = NULL, usage = NULL;
  g_autoptr(SoupMessage) m1 = NULL, m2 = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonObject *rate_limit;
  guint upstream_requests;

  m1 = post (f, NULL, &a1);
  g_assert_cmpuint (soup_message_get_status (m1), ==, 200);
  upstream_requests = fake_upstream_get_request_count (f->fake);

  m2 = test_new_message (f->base, "GET", "/backend-api/wham/usage", f->key);
  usage = test_send_and_read (f->client, m2);
  g_assert_cmpuint (soup_message_get_status (m2), ==, 200);
  g_assert_cmpuint (fake_upstream_get_request_count (f->fake), ==, upstream_requests);

  json_parser_load_from_data (parser, g_bytes_get_data (usage, NULL), g_bytes_get_size (usage), &error);
  g_assert_no_error (error);
  rate_limit = json_object_get_object_member (json_node_get_object (json_parser_get_root (parser)), "rate_limit");
  g_assert_true (json_object_get_boolean_member (rate_limit, "allowed"));
  g_assert_cmpfloat (json_object_get_double_member (json_object_get_object_member (rate_limit, "primary_window"),
                                                    "used_percent"), ==, 12.5);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (rate_limit, "secondary_window"),
                                               "limit_window_seconds"), ==, 604800);
}

/* An answer's quota fields, with the primary window @used_percent spent. */
static PoolerHttpFields *
quota_fields (const char *used_percent)
{
  static guint answers;
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autofree char *request_id = g_strdup_printf ("req_%08x", ++answers);

  soup_message_headers_append (headers, "Content-Type", "text/event-stream");
  /* Its own on every answer, as upstream's. */
  soup_message_headers_append (headers, "x-request-id", request_id);
  soup_message_headers_append (headers, "x-codex-primary-used-percent", used_percent);
  soup_message_headers_append (headers, "x-codex-primary-window-minutes", "300");
  soup_message_headers_append (headers, "x-codex-primary-reset-after-seconds", "3600");
  return pooler_http_fields_new_from_soup (headers);
}

static double
primary_used (Fixture       *f,
              PoolerAccount *account)
{
  PoolerQuotaState *state = pooler_service_get_quota (f->service, pooler_account_get_id (account));
  GPtrArray *windows;

  g_assert_nonnull (state);
  windows = pooler_quota_state_get_windows (state);
  for (guint i = 0; i < windows->len; i++)
    {
      const PoolerQuotaWindow *window = g_ptr_array_index (windows, i);

      if (g_strcmp0 (window->limit_id, "codex") == 0 && window->window_minutes == 300)
        return window->used_percent;
    }
  g_assert_not_reached ();
}

/* Answers that repeat their quota fields are not parsed again, but what
 * other evidence said in between never outlives the next answer's. */
/* An answer of @account's with its primary window @used_percent spent. */
static void
observe_answer (Fixture       *f,
                PoolerAccount *account,
                const char    *used_percent)
{
  g_autoptr(PoolerHttpFields) fields = quota_fields (used_percent);

  pooler_service_observe_quota_fields (f->service, account, fields);
}

static void
test_quota_fields_repeat (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(GPtrArray) accounts = pooler_service_list_accounts (f->service);
  g_autoptr(PoolerQuotaEvidence) event = pooler_quota_evidence_new (g_get_real_time () / G_USEC_PER_SEC);
  PoolerQuotaWindow *window = g_new0 (PoolerQuotaWindow, 1);
  PoolerAccount *account;

  g_assert_cmpuint (accounts->len, >, 0);
  account = g_ptr_array_index (accounts, 0);

  observe_answer (f, account, "10");
  g_assert_cmpfloat (primary_used (f, account), ==, 10);
  observe_answer (f, account, "10");
  g_assert_cmpfloat (primary_used (f, account), ==, 10);

  /* An event in between says 50 %; the next answer says 10 % again. */
  window->limit_id = g_strdup ("codex");
  window->window_minutes = 300;
  window->used_percent = 50;
  window->observed_at = event->observed_at;
  window->source = POOLER_QUOTA_SOURCE_EVENT;
  g_ptr_array_add (event->windows, window);
  pooler_service_observe_quota (f->service, account, event);
  g_assert_cmpfloat (primary_used (f, account), ==, 50);
  observe_answer (f, account, "10");
  g_assert_cmpfloat (primary_used (f, account), ==, 10);

  /* Spent, once; repeated, no second signal; back, restored. */
  g_assert_cmpuint (f->exhausted_signals, ==, 0);
  observe_answer (f, account, "100");
  observe_answer (f, account, "100");
  g_assert_cmpfloat (primary_used (f, account), ==, 100);
  g_assert_cmpuint (f->exhausted_signals, ==, 1);
  g_assert_cmpint (f->last_reset, >, g_get_real_time () / G_USEC_PER_SEC);
  observe_answer (f, account, "10");
  g_assert_cmpfloat (primary_used (f, account), ==, 10);
  g_assert_cmpuint (f->exhausted_signals, ==, 1);
}

/* Affinity keys are persisted, so their form is fixed: the hex SHA-256 of
 * "<pool>:<kind>:<value>". Looking up and remembering by a key is the same
 * as by the value it was made from. */
static void
test_affinity_key_form (void)
{
  g_autoptr(PoolerAffinity) affinity = pooler_affinity_new ();
  g_autofree char *key = pooler_affinity_hash (-7, POOLER_AFFINITY_SESSION, "th\xc3\xa9read:1");
  g_autofree char *expected = g_compute_checksum_for_string (G_CHECKSUM_SHA256,
                                                             "-7:session:th\xc3\xa9read:1", -1);
  const PoolerAffinityEntry *entry;

  g_assert_cmpstr (key, ==, expected);

  entry = pooler_affinity_remember_key (affinity, key, -7, POOLER_AFFINITY_SESSION, "acct-a", 1000);
  g_assert_nonnull (entry);
  g_assert_cmpstr (entry->key_sha256, ==, expected);
  g_assert_cmpstr (pooler_affinity_lookup (affinity, -7, POOLER_AFFINITY_SESSION, "th\xc3\xa9read:1", 1001),
                   ==, "acct-a");
  g_assert_null (pooler_affinity_lookup (affinity, 7, POOLER_AFFINITY_SESSION, "th\xc3\xa9read:1", 1001));
  g_assert_null (pooler_affinity_lookup_key (affinity, NULL, 1001));
  /* Remembered again within the hour: nothing new to persist. */
  g_assert_null (pooler_affinity_remember (affinity, -7, POOLER_AFFINITY_SESSION, "th\xc3\xa9read:1",
                                           "acct-a", 1002));
  g_assert_cmpstr (pooler_affinity_lookup_key (affinity, key, 1002), ==, "acct-a");
}

/* The memo of keys gives what pooler_affinity_hash() gives, whatever was
 * asked in between: same values, values that share a slot, other pools
 * and kinds, values too long to keep. */
static void
test_affinity_key_memo (void)
{
  g_autoptr(PoolerAffinity) affinity = pooler_affinity_new ();
  g_autofree char *long_value = g_strnfill (4000, 'v');
  const char *kinds[] = { POOLER_AFFINITY_SESSION, POOLER_AFFINITY_PROMPT_CACHE, POOLER_AFFINITY_RESPONSE };

  for (guint round = 0; round < 3; round++)
    for (guint i = 0; i < 300; i++)
      {
        g_autofree char *value = g_strdup_printf ("conversation-%u", i % 150);
        gint64 pool_id = 1 + i % 3;
        const char *kind = kinds[(i / 3) % G_N_ELEMENTS (kinds)];
        g_autofree char *key = pooler_affinity_key (affinity, pool_id, kind, value);
        g_autofree char *expected = pooler_affinity_hash (pool_id, kind, value);

        g_assert_cmpstr (key, ==, expected);
      }

  /* Pools 64 apart share a slot. */
  for (guint i = 0; i < 6; i++)
    {
      gint64 pool_id = 1 + 64 * (i % 3);
      g_autofree char *key = pooler_affinity_key (affinity, pool_id, POOLER_AFFINITY_SESSION, "same");
      g_autofree char *expected = pooler_affinity_hash (pool_id, POOLER_AFFINITY_SESSION, "same");

      g_assert_cmpstr (key, ==, expected);
    }

  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *key = pooler_affinity_key (affinity, 5, POOLER_AFFINITY_SESSION, long_value);
      g_autofree char *expected = pooler_affinity_hash (5, POOLER_AFFINITY_SESSION, long_value);
      g_autofree char *shorter = pooler_affinity_key (affinity, 5, POOLER_AFFINITY_SESSION, long_value + 1);

      g_assert_cmpstr (key, ==, expected);
      g_assert_cmpstr (shorter, !=, expected);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#define ADD(path, setup, func) g_test_add (path, Fixture, &setup, fixture_setup, func, fixture_teardown)
  ADD ("/routing/429-fails-over-and-cools-down", plain, test_429_fails_over_and_cools_down);
  ADD ("/routing/cooldown-written-without-waiting", plain, test_cooldown_written_without_waiting);
  ADD ("/routing/5xx-and-failed-first-event-fail-over", plain, test_5xx_and_failed_first_event_fail_over);
  ADD ("/routing/request-failure-passed-on", plain, test_request_failure_passed_on);
  ADD ("/routing/401-refreshes-once-and-retries", plain, test_401_refreshes_once_and_retries);
  ADD ("/routing/refused-refresh-marks-reauth", unknown_refresh, test_refused_refresh_marks_reauth);
  ADD ("/routing/reauth-survives-early-reload", unknown_refresh, test_reauth_survives_early_reload);
  ADD ("/routing/reauth-ended-by-older-import", unknown_refresh, test_reauth_ended_by_older_import);
  ADD ("/routing/reauth-written-without-waiting", unknown_refresh, test_reauth_written_without_waiting);
  ADD ("/routing/sign-in-elsewhere-picked-up", unknown_refresh, test_sign_in_elsewhere_picked_up);
  ADD ("/routing/sign-in-during-refresh", plain, test_sign_in_during_refresh);
  ADD ("/routing/single-flight-refresh", expiring, test_single_flight_refresh);
  ADD ("/routing/remove-during-refresh", plain, test_remove_during_refresh);
  ADD ("/routing/refresh-backs-off", expiring, test_refresh_backs_off);
  ADD ("/routing/timeout-not-resent", plain, test_timeout_not_resent);
  ADD ("/routing/early-answer-passed-on", plain, test_early_answer_passed_on);
  ADD ("/routing/v1-failover-forgets-first-attempt", plain, test_v1_failover_forgets_first_attempt);
  ADD ("/routing/soft-continuity", rotating, test_soft_continuity);
  ADD ("/routing/continuity-survives-restart", rotating, test_continuity_survives_restart);
  ADD ("/routing/hard-pin", plain, test_hard_pin);
  ADD ("/routing/v1-reasoning-items-pin", rotating, test_v1_reasoning_items_pin);
  ADD ("/routing/ring-size", plain, test_ring_size);
  ADD ("/routing/pool-spent", plain, test_pool_spent);
  ADD ("/routing/usage-from-evidence", plain, test_usage_from_evidence);
  ADD ("/routing/quota-fields-repeat", plain, test_quota_fields_repeat);
#undef ADD
  g_test_add_func ("/routing/affinity-key-form", test_affinity_key_form);
  g_test_add_func ("/routing/affinity-key-memo", test_affinity_key_memo);

  return g_test_run ();
}
