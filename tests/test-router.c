/* test-router.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include "pooler-router.h"

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
      g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, "gpt-5.5", NOW);

      g_assert_cmpuint (order->len, ==, 1);
      g_assert_true (g_ptr_array_index (order, 0) == only);
    }

  /* Paused, cooling down, or waiting for sign-in: no candidate at all. */
  pooler_account_set_status (only, POOLER_ACCOUNT_PAUSED);
  {
    g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, NULL, NOW);
    g_assert_cmpuint (order->len, ==, 0);
    g_assert_cmpstr (pooler_router_explain (router, only, NULL, NOW), ==, "paused");
  }
  pooler_account_set_status (only, POOLER_ACCOUNT_REAUTH_REQUIRED);
  g_assert_cmpstr (pooler_router_explain (router, only, NULL, NOW), ==, "needs sign-in again");

  pooler_account_set_status (only, POOLER_ACCOUNT_ACTIVE);
  pooler_account_set_cooldown_until (only, NOW + 60);
  {
    g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, NULL, NOW);
    g_assert_cmpuint (order->len, ==, 0);
  }
  /* The cooldown ends by itself. */
  {
    g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, NULL, NOW + 61);
    g_assert_cmpuint (order->len, ==, 1);
    g_assert_null (pooler_router_explain (router, only, NULL, NOW + 61));
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
      g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, NULL, NOW);

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
    g_autoptr(GPtrArray) order = pooler_router_order (router, other, accounts, NULL, NOW);
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
      g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, NULL, NOW);

      g_assert_cmpstr (id_at (order, 0), ==, "acc_1");
      g_assert_cmpstr (id_at (order, 1), ==, "acc_2");
      g_assert_cmpstr (id_at (order, 2), ==, "acc_0");
    }

  pooler_pool_set_strategy (pool, POOLER_STRATEGY_LEAST_RECENT);
  pooler_account_set_last_used_at (g_ptr_array_index (accounts, 0), NOW - 10);
  pooler_account_set_last_used_at (g_ptr_array_index (accounts, 1), NOW - 5);
  pooler_account_set_last_used_at (g_ptr_array_index (accounts, 2), NOW - 50);
  {
    g_autoptr(GPtrArray) order = pooler_router_order (router, pool, accounts, NULL, NOW);

    g_assert_cmpstr (id_at (order, 0), ==, "acc_2");
    g_assert_cmpstr (id_at (order, 1), ==, "acc_0");
    g_assert_cmpstr (id_at (order, 2), ==, "acc_1");
  }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/router/single-account", test_router_single_account);
  g_test_add_func ("/router/round-robin", test_router_round_robin);
  g_test_add_func ("/router/fill-first-and-least-recent", test_router_fill_first_and_least_recent);

  return g_test_run ();
}
