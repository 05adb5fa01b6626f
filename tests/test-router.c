/* test-router.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include "pooler-router.h"

#include <string.h>

#define NOW 1800000000

static GPtrArray *
make_accounts (guint n)
{
  GPtrArray *accounts = g_ptr_array_new_with_free_func (g_object_unref);

  for (guint i = 0; i < n; i++)
    {
      g_autofree char *id = g_strdup_printf ("acc_%u", i);
      PoolerAccount *account = pooler_account_new (id);

      pooler_account_set_created_at (account, 1000 + i);
      g_ptr_array_add (accounts, account);
    }

  return accounts;
}

static const char *
id_at (GPtrArray *order,
       guint      i)
{
  return pooler_account_get_id (g_ptr_array_index (order, i));
}

static void
test_router_single_account (void)
{
  g_autoptr(PoolerRouter) router = pooler_router_new ();
  g_autoptr(PoolerPool) pool = pooler_pool_new (1, "main");
  g_autoptr(GPtrArray) accounts = make_accounts (1);
  PoolerAccount *only = g_ptr_array_index (accounts, 0);

  for (guint round = 0; round < 3; round++)
    {
      g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, NULL, NOW, NULL, NULL);

      g_assert_cmpuint (order->len, ==, 1);
      g_assert_true (g_ptr_array_index (order, 0) == only);
    }

  /* Paused, cooling down, or waiting for sign-in: no candidate at all. */
  pooler_account_set_status (only, POOLER_ACCOUNT_PAUSED);
  {
    g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, NULL, NOW, NULL, NULL);
    g_autofree char *why = pooler_router_explain (router, only, NULL, NOW);

    g_assert_cmpuint (order->len, ==, 0);
    g_assert_cmpstr (why, ==, "paused");
  }
  pooler_account_set_status (only, POOLER_ACCOUNT_REAUTH_REQUIRED);
  {
    g_autofree char *why = pooler_router_explain (router, only, NULL, NOW);
    g_assert_cmpstr (why, ==, "needs sign-in again");
  }

  pooler_account_set_status (only, POOLER_ACCOUNT_ACTIVE);
  pooler_account_set_cooldown_until (only, NOW + 60);
  {
    g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, NULL, NOW, NULL, NULL);
    g_assert_cmpuint (order->len, ==, 0);
  }
  /* The cooldown ends by itself. */
  {
    g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, NULL, NOW + 61, NULL, NULL);
    g_autofree char *why = pooler_router_explain (router, only, NULL, NOW + 61);
    g_assert_cmpuint (order->len, ==, 1);
    g_assert_null (why);
  }
}

static void
test_router_round_robin (void)
{
  g_autoptr(PoolerRouter) router = pooler_router_new ();
  g_autoptr(PoolerPool) pool = pooler_pool_new (1, "main");
  g_autoptr(PoolerPool) other = pooler_pool_new (2, "other");
  g_autoptr(GPtrArray) accounts = make_accounts (3);
  const char *firsts[6];

  for (guint i = 0; i < 6; i++)
    {
      g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, NULL, NOW, NULL, NULL);

      g_assert_cmpuint (order->len, ==, 3);
      firsts[i] = id_at (order, 0);
      /* The rest follow in ring order, so failover walks every account. */
      g_assert_true (g_ptr_array_index (order, 1) != g_ptr_array_index (order, 0));
      g_assert_true (g_ptr_array_index (order, 2) != g_ptr_array_index (order, 1));
    }
  g_assert_cmpstr (firsts[0], ==, "acc_0");
  g_assert_cmpstr (firsts[1], ==, "acc_1");
  g_assert_cmpstr (firsts[2], ==, "acc_2");
  g_assert_cmpstr (firsts[3], ==, "acc_0");

  /* Each Pool has its own cursor. */
  {
    g_autoptr(GPtrArray) order = pooler_router_order (router, other, accounts, NULL, NOW, NULL, NULL);
    g_assert_cmpstr (id_at (order, 0), ==, "acc_0");
  }
}

static void
test_router_fill_first_and_least_recent (void)
{
  g_autoptr(PoolerRouter) router = pooler_router_new ();
  g_autoptr(PoolerPool) pool = pooler_pool_new (1, "main");
  g_autoptr(GPtrArray) accounts = make_accounts (3);

  pooler_pool_set_strategy (pool, POOLER_STRATEGY_FILL_FIRST);
  pooler_account_set_priority (g_ptr_array_index (accounts, 0), 5);
  pooler_account_set_priority (g_ptr_array_index (accounts, 1), 1);
  pooler_account_set_priority (g_ptr_array_index (accounts, 2), 3);
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, NULL, NOW, NULL, NULL);

      g_assert_cmpstr (id_at (order, 0), ==, "acc_1");
      g_assert_cmpstr (id_at (order, 1), ==, "acc_2");
      g_assert_cmpstr (id_at (order, 2), ==, "acc_0");
    }

  pooler_pool_set_strategy (pool, POOLER_STRATEGY_LEAST_RECENT);
  pooler_account_set_last_used_at (g_ptr_array_index (accounts, 0), NOW - 10);
  pooler_account_set_last_used_at (g_ptr_array_index (accounts, 1), NOW - 5);
  pooler_account_set_last_used_at (g_ptr_array_index (accounts, 2), NOW - 50);
  {
    g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, NULL, NOW, NULL, NULL);

    g_assert_cmpstr (id_at (order, 0), ==, "acc_2");
    g_assert_cmpstr (id_at (order, 1), ==, "acc_0");
    g_assert_cmpstr (id_at (order, 2), ==, "acc_1");
  }
}

/* Quota evidence per account, looked up by the router. */
static GHashTable *quotas;

static PoolerQuotaState *
lookup_quota (PoolerAccount *account,
              gpointer       user_data)
{
  return g_hash_table_lookup (quotas, pooler_account_get_id (account));
}

static void
set_used (PoolerAccount *account,
          double         used,
          gint64         reset_at)
{
  PoolerQuotaWindow window = { (char *) "codex", NULL, 300, used, reset_at, NOW, POOLER_QUOTA_SOURCE_HEADERS };
  PoolerQuotaState *state = g_hash_table_lookup (quotas, pooler_account_get_id (account));

  if (state == NULL)
    {
      state = pooler_quota_state_new ();
      g_hash_table_insert (quotas, g_strdup (pooler_account_get_id (account)), state);
    }
  pooler_quota_state_add_window (state, &window);
}

static PoolerRouter *
new_router_with_quota (void)
{
  PoolerRouter *router = pooler_router_new ();

  g_clear_pointer (&quotas, g_hash_table_unref);
  quotas = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                  (GDestroyNotify) pooler_quota_state_free);
  pooler_router_set_quota_func (router, lookup_quota, NULL);

  return router;
}

static void
test_router_quota_first_and_spent (void)
{
  g_autoptr(PoolerRouter) router = new_router_with_quota ();
  g_autoptr(PoolerPool) pool = pooler_pool_new (1, "main");
  g_autoptr(GPtrArray) accounts = make_accounts (3);
  PoolerRouteOutcome outcome;
  gint64 earliest;

  pooler_pool_set_strategy (pool, POOLER_STRATEGY_QUOTA_FIRST);
  set_used (g_ptr_array_index (accounts, 0), 80, NOW + 600);
  set_used (g_ptr_array_index (accounts, 1), 10, NOW + 600);
  set_used (g_ptr_array_index (accounts, 2), 100, NOW + 900);
  {
    g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, NULL, NOW, &outcome, &earliest);
    g_autofree char *why = pooler_router_explain (router, g_ptr_array_index (accounts, 2), NULL, NOW);

    /* Most remaining first; the spent one is no candidate at all. */
    g_assert_cmpint (outcome, ==, POOLER_ROUTE_OK);
    g_assert_cmpuint (order->len, ==, 2);
    g_assert_cmpstr (id_at (order, 0), ==, "acc_1");
    g_assert_cmpstr (id_at (order, 1), ==, "acc_0");
    g_assert_nonnull (strstr (why, "quota spent until"));
  }

  set_used (g_ptr_array_index (accounts, 0), 100, NOW + 700);
  set_used (g_ptr_array_index (accounts, 1), 100, NOW + 800);
  {
    g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, NULL, NOW, &outcome, &earliest);

    g_assert_cmpuint (order->len, ==, 0);
    g_assert_cmpint (outcome, ==, POOLER_ROUTE_ALL_SPENT);
    g_assert_cmpint (earliest, ==, NOW + 700);
  }

  /* A paused account is not "spent": the Pool is merely empty. */
  pooler_account_set_status (g_ptr_array_index (accounts, 0), POOLER_ACCOUNT_PAUSED);
  set_used (g_ptr_array_index (accounts, 1), 20, NOW + 800);
  pooler_account_set_status (g_ptr_array_index (accounts, 1), POOLER_ACCOUNT_REAUTH_REQUIRED);
  pooler_account_set_status (g_ptr_array_index (accounts, 2), POOLER_ACCOUNT_PAUSED);
  {
    g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, NULL, NOW, &outcome, &earliest);

    g_assert_cmpuint (order->len, ==, 0);
    g_assert_cmpint (outcome, ==, POOLER_ROUTE_EMPTY);
  }
}

static void
test_router_demotion_and_circuit (void)
{
  g_autoptr(PoolerRouter) router = new_router_with_quota ();
  g_autoptr(PoolerPool) pool = pooler_pool_new (1, "main");
  g_autoptr(GPtrArray) accounts = make_accounts (2);
  PoolerAccount *a = g_ptr_array_index (accounts, 0);

  pooler_pool_set_strategy (pool, POOLER_STRATEGY_FILL_FIRST);

  /* One failure: still a candidate, but tried last for a minute. */
  pooler_router_report_failure (router, a, NOW);
  {
    g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, NULL, NOW, NULL, NULL);
    g_assert_cmpuint (order->len, ==, 2);
    g_assert_cmpstr (id_at (order, 0), ==, "acc_1");
    g_assert_cmpstr (id_at (order, 1), ==, "acc_0");
  }
  {
    g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, NULL, NOW + 61, NULL, NULL);
    g_assert_cmpstr (id_at (order, 0), ==, "acc_0");
  }

  /* Three in a row: the circuit opens for a minute. */
  pooler_router_report_failure (router, a, NOW);
  pooler_router_report_failure (router, a, NOW);
  {
    g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, NULL, NOW + 1, NULL, NULL);
    g_autofree char *why = pooler_router_explain (router, a, NULL, NOW + 1);

    g_assert_cmpuint (order->len, ==, 1);
    g_assert_cmpstr (id_at (order, 0), ==, "acc_1");
    g_assert_nonnull (strstr (why, "circuit open"));
  }
  {
    g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, NULL, NOW + 61, NULL, NULL);
    g_assert_cmpuint (order->len, ==, 2);
  }

  /* A success closes it and forgets the failures. */
  pooler_router_report_failure (router, a, NOW);
  pooler_router_report_success (router, a);
  {
    g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, NULL, NOW + 1, NULL, NULL);
    g_assert_cmpstr (id_at (order, 0), ==, "acc_0");
  }
}

/* Demoted accounts go to the back; both parts keep their order. */
static void
test_router_demotion_keeps_order (void)
{
  g_autoptr(PoolerRouter) router = new_router_with_quota ();
  g_autoptr(PoolerPool) pool = pooler_pool_new (1, "main");
  g_autoptr(GPtrArray) accounts = make_accounts (5);
  const char *expected[] = { "acc_0", "acc_2", "acc_4", "acc_1", "acc_3" };
  PoolerRouteQuery all = { .ring_size = 5 };

  pooler_pool_set_strategy (pool, POOLER_STRATEGY_FILL_FIRST);
  pooler_router_report_failure (router, g_ptr_array_index (accounts, 3), NOW);
  pooler_router_report_failure (router, g_ptr_array_index (accounts, 1), NOW);
  {
    g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, &all, NOW, NULL, NULL);

    g_assert_cmpuint (order->len, ==, G_N_ELEMENTS (expected));
    for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
      g_assert_cmpstr (id_at (order, i), ==, expected[i]);
  }
}

static void
test_router_continuity (void)
{
  g_autoptr(PoolerRouter) router = new_router_with_quota ();
  g_autoptr(PoolerPool) pool = pooler_pool_new (1, "main");
  g_autoptr(GPtrArray) accounts = make_accounts (4);
  PoolerRouteQuery soft = { NULL, "acc_2", NULL, 0 };
  PoolerRouteQuery hard = { NULL, "acc_0", "acc_3", 0 };
  PoolerRouteOutcome outcome;

  /* Soft: the home account first, whatever the rotation says. */
  for (guint i = 0; i < 4; i++)
    {
      g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, &soft, NOW, &outcome, NULL);

      g_assert_cmpint (outcome, ==, POOLER_ROUTE_OK);
      g_assert_cmpuint (order->len, ==, 3);
      g_assert_cmpstr (id_at (order, 0), ==, "acc_2");
    }

  /* Soft home unusable: the others serve. */
  set_used (g_ptr_array_index (accounts, 2), 100, NOW + 60);
  {
    g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, &soft, NOW, &outcome, NULL);
    g_assert_cmpint (outcome, ==, POOLER_ROUTE_OK);
    g_assert_cmpuint (order->len, ==, 3);
    for (guint i = 0; i < order->len; i++)
      g_assert_cmpstr (id_at (order, i), !=, "acc_2");
  }

  /* Hard: only the pinned account, never another. */
  {
    g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, &hard, NOW, &outcome, NULL);
    g_assert_cmpint (outcome, ==, POOLER_ROUTE_OK);
    g_assert_cmpuint (order->len, ==, 1);
    g_assert_cmpstr (id_at (order, 0), ==, "acc_3");
  }
  pooler_account_set_status (g_ptr_array_index (accounts, 3), POOLER_ACCOUNT_PAUSED);
  {
    g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, &hard, NOW, &outcome, NULL);
    g_assert_cmpint (outcome, ==, POOLER_ROUTE_PIN_UNAVAILABLE);
    g_assert_cmpuint (order->len, ==, 0);
  }
}

static void
test_router_ring_size (void)
{
  g_autoptr(PoolerRouter) router = pooler_router_new ();
  g_autoptr(PoolerPool) pool = pooler_pool_new (1, "main");
  g_autoptr(GPtrArray) accounts = make_accounts (6);
  PoolerRouteQuery five = { NULL, NULL, NULL, 5 };
  g_autoptr(GPtrArray) by_default = pooler_router_order (router, pool, accounts, NULL, NOW, NULL, NULL);
  g_autoptr(GPtrArray) wider = pooler_router_order (router, pool, accounts, &five, NOW, NULL, NULL);

  g_assert_cmpuint (by_default->len, ==, POOLER_ROUTER_DEFAULT_RING_SIZE);
  g_assert_cmpuint (wider->len, ==, 5);
}

int
main (int   argc,
      char *argv[])
{
  int ret;

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/router/single-account", test_router_single_account);
  g_test_add_func ("/router/round-robin", test_router_round_robin);
  g_test_add_func ("/router/fill-first-and-least-recent", test_router_fill_first_and_least_recent);
  g_test_add_func ("/router/quota-first-and-spent", test_router_quota_first_and_spent);
  g_test_add_func ("/router/demotion-and-circuit", test_router_demotion_and_circuit);
  g_test_add_func ("/router/demotion-keeps-order", test_router_demotion_keeps_order);
  g_test_add_func ("/router/continuity", test_router_continuity);
  g_test_add_func ("/router/ring-size", test_router_ring_size);

  ret = g_test_run ();
  g_clear_pointer (&quotas, g_hash_table_unref);
  return ret;
}
