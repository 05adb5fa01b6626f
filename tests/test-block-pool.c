/* test-block-pool.c: blocks kept for reuse, and given back when they sat
 * unused for a whole trim period.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <string.h>

#include "pooler-block-pool.h"

#define PERIOD 100

/* A block that comes back is the next one out (its pages are the ones
 * most likely still in the cache), and only an empty pool allocates. */
static void
test_reuse (void)
{
  g_autoptr(PoolerBlockPool) pool = pooler_block_pool_new (4096, 0, 4, PERIOD);
  gpointer a, b;

  a = pooler_block_pool_take (pool);
  b = pooler_block_pool_take (pool);
  g_assert_nonnull (a);
  g_assert_true (a != b);
  g_assert_cmpuint (pooler_block_pool_get_fresh (pool), ==, 2);
  memset (a, 0xA5, 4096);    /* the whole size is ours (ASan checks) */

  pooler_block_pool_release (pool, a);
  pooler_block_pool_release (pool, b);
  pooler_block_pool_release (pool, NULL);
  g_assert_cmpuint (pooler_block_pool_get_spare (pool), ==, 2);
  g_assert_true (pooler_block_pool_take (pool) == b);
  g_assert_true (pooler_block_pool_take (pool) == a);
  g_assert_cmpuint (pooler_block_pool_get_fresh (pool), ==, 2);
  pooler_block_pool_release (pool, a);
  pooler_block_pool_release (pool, b);
}

/* Beyond the cap a block that comes back is freed (ASan/LSan see it). */
static void
test_cap (void)
{
  g_autoptr(PoolerBlockPool) pool = pooler_block_pool_new (64, 1, 3, PERIOD);
  gpointer blocks[5];

  for (guint i = 0; i < G_N_ELEMENTS (blocks); i++)
    blocks[i] = pooler_block_pool_take (pool);
  for (guint i = 0; i < G_N_ELEMENTS (blocks); i++)
    pooler_block_pool_release (pool, blocks[i]);
  g_assert_cmpuint (pooler_block_pool_get_spare (pool), ==, 3);
  g_assert_cmpuint (pooler_block_pool_get_fresh (pool), ==, 5);
}

static void
fill (PoolerBlockPool *pool,
      guint            n)
{
  g_autofree gpointer *blocks = g_new (gpointer, n);

  for (guint i = 0; i < n; i++)
    blocks[i] = pooler_block_pool_take (pool);
  for (guint i = 0; i < n; i++)
    pooler_block_pool_release (pool, blocks[i]);
}

/* A trim frees the spares no take needed during the whole period before
 * it, down to the floor, and never before a period has passed. */
static void
test_trim_low_water (void)
{
  g_autoptr(PoolerBlockPool) pool = pooler_block_pool_new (64, 2, 16, PERIOD);
  gpointer taken[3], again[3];

  fill (pool, 10);
  g_assert_cmpuint (pooler_block_pool_trim (pool, 1000), ==, 0);   /* starts the period */

  /* Three in use at the busiest moment: seven sat unused. */
  for (guint i = 0; i < 3; i++)
    taken[i] = pooler_block_pool_take (pool);
  for (guint i = 0; i < 3; i++)
    pooler_block_pool_release (pool, taken[i]);
  g_assert_cmpuint (pooler_block_pool_trim (pool, 1000 + PERIOD - 1), ==, 0);
  g_assert_cmpuint (pooler_block_pool_get_spare (pool), ==, 10);
  g_assert_cmpuint (pooler_block_pool_trim (pool, 1000 + PERIOD), ==, 5);
  g_assert_cmpuint (pooler_block_pool_get_spare (pool), ==, 5);

  /* The three most recently used stayed: they are the next ones out. */
  for (guint i = 0; i < 3; i++)
    {
      gpointer block = pooler_block_pool_take (pool);
      gboolean recent = block == taken[0] || block == taken[1] || block == taken[2];

      g_assert_true (recent);
      again[i] = block;
    }
  for (guint i = 0; i < 3; i++)
    pooler_block_pool_release (pool, again[i]);

  /* Those three were needed again in this period: the two below them
   * are the floor. Then a quiet period: down to the floor, no further. */
  g_assert_cmpuint (pooler_block_pool_trim (pool, 1000 + 2 * PERIOD), ==, 0);
  g_assert_cmpuint (pooler_block_pool_get_spare (pool), ==, 5);
  g_assert_cmpuint (pooler_block_pool_trim (pool, 1000 + 3 * PERIOD), ==, 3);
  g_assert_cmpuint (pooler_block_pool_get_spare (pool), ==, 2);
  g_assert_cmpuint (pooler_block_pool_trim (pool, 1000 + 4 * PERIOD), ==, 0);
  g_assert_cmpuint (pooler_block_pool_get_spare (pool), ==, 2);
}

/* A take from an empty pool in the period means every spare was needed:
 * nothing is freed. */
static void
test_trim_after_drain (void)
{
  g_autoptr(PoolerBlockPool) pool = pooler_block_pool_new (64, 0, 16, PERIOD);
  gpointer blocks[6];

  fill (pool, 4);
  pooler_block_pool_trim (pool, 1);
  for (guint i = 0; i < G_N_ELEMENTS (blocks); i++)
    blocks[i] = pooler_block_pool_take (pool);
  for (guint i = 0; i < G_N_ELEMENTS (blocks); i++)
    pooler_block_pool_release (pool, blocks[i]);
  g_assert_cmpuint (pooler_block_pool_get_spare (pool), ==, 6);
  g_assert_cmpuint (pooler_block_pool_trim (pool, 1 + PERIOD), ==, 0);
  g_assert_cmpuint (pooler_block_pool_get_spare (pool), ==, 6);
}

static gpointer
release_thread (gpointer data)
{
  gpointer *args = data;

  pooler_block_pool_release (args[0], args[1]);
  return NULL;
}

/* Bodies are let go of on any thread. */
static void
test_release_on_another_thread (void)
{
  g_autoptr(PoolerBlockPool) pool = pooler_block_pool_new (64, 0, 4, PERIOD);
  gpointer args[2] = { pool, pooler_block_pool_take (pool) };
  GThread *thread = g_thread_new ("release", release_thread, args);

  g_thread_join (thread);
  g_assert_cmpuint (pooler_block_pool_get_spare (pool), ==, 1);
  g_assert_true (pooler_block_pool_take (pool) == args[1]);
  pooler_block_pool_release (pool, args[1]);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/block-pool/reuse", test_reuse);
  g_test_add_func ("/block-pool/cap", test_cap);
  g_test_add_func ("/block-pool/trim-low-water", test_trim_low_water);
  g_test_add_func ("/block-pool/trim-after-drain", test_trim_after_drain);
  g_test_add_func ("/block-pool/release-on-another-thread", test_release_on_another_thread);

  return g_test_run ();
}
