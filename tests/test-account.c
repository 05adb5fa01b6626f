/* test-account.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include "pooler-account.h"
#include "pooler-pool.h"
#include "pooler-tokens.h"

static void
count_notify (GObject    *object,
              GParamSpec *pspec,
              gpointer    user_data)
{
  (*(guint *) user_data)++;
}

static void
test_account_properties_notify_once (void)
{
  g_autoptr(PoolerAccount) account = pooler_account_new ("acc_1");
  guint notified = 0;
  g_autofree char *label = NULL;

  g_signal_connect (account, "notify", G_CALLBACK (count_notify), &notified);

  pooler_account_set_label (account, "Work");
  pooler_account_set_label (account, "Work");
  g_assert_cmpuint (notified, ==, 1);

  pooler_account_set_status (account, POOLER_ACCOUNT_PAUSED);
  pooler_account_set_status (account, POOLER_ACCOUNT_PAUSED);
  g_assert_cmpuint (notified, ==, 2);

  g_object_set (account, "cooldown-until", (gint64) 42, NULL);
  g_assert_cmpint (pooler_account_get_cooldown_until (account), ==, 42);
  g_assert_cmpuint (notified, ==, 3);

  g_object_get (account, "label", &label, NULL);
  g_assert_cmpstr (label, ==, "Work");
  g_assert_cmpstr (pooler_account_get_id (account), ==, "acc_1");
}

static void
test_account_usable (void)
{
  g_autoptr(PoolerAccount) account = pooler_account_new ("acc_1");

  g_assert_true (pooler_account_is_usable (account, 100));
  pooler_account_set_cooldown_until (account, 200);
  g_assert_false (pooler_account_is_usable (account, 100));
  g_assert_true (pooler_account_is_usable (account, 200));
  pooler_account_set_status (account, POOLER_ACCOUNT_REAUTH_REQUIRED);
  g_assert_false (pooler_account_is_usable (account, 300));
}

static void
test_account_status_strings (void)
{
  PoolerAccountStatus status;

  for (guint i = POOLER_ACCOUNT_ACTIVE; i <= POOLER_ACCOUNT_REAUTH_REQUIRED; i++)
    {
      g_assert_true (pooler_account_status_from_string (pooler_account_status_to_string (i), &status));
      g_assert_cmpint (status, ==, i);
    }
  g_assert_false (pooler_account_status_from_string ("bogus", &status));
}

static void
test_pool_slugs_and_strategies (void)
{
  const char *good[] = { "main", "a", "team-1", "x.y_z", "A1" };
  const char *bad[] = { "", "-x", "has space", "slash/", "ünï", NULL };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    g_assert_true (pooler_pool_slug_is_valid (good[i]));
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    g_assert_false (pooler_pool_slug_is_valid (bad[i]));
  g_assert_false (pooler_pool_slug_is_valid ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));

  g_assert_true (pooler_strategy_is_valid ("round-robin"));
  g_assert_true (pooler_strategy_is_valid ("fill-first"));
  g_assert_false (pooler_strategy_is_valid ("random"));
}

static void
test_tokens_copy_equal (void)
{
  g_autoptr(PoolerTokens) a = pooler_tokens_new ("at", "rt", "it", 5);
  g_autoptr(PoolerTokens) b = pooler_tokens_copy (a);

  g_assert_true (pooler_tokens_equal (a, b));
  b->expires_at = 6;
  g_assert_false (pooler_tokens_equal (a, b));
  g_assert_false (pooler_tokens_equal (a, NULL));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/account/properties-notify-once", test_account_properties_notify_once);
  g_test_add_func ("/account/usable", test_account_usable);
  g_test_add_func ("/account/status-strings", test_account_status_strings);
  g_test_add_func ("/pool/slugs-and-strategies", test_pool_slugs_and_strategies);
  g_test_add_func ("/tokens/copy-equal", test_tokens_copy_equal);

  return g_test_run ();
}
