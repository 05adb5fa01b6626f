/* pooler-router.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-router"

#include "config.h"

#include "pooler-router.h"

struct _PoolerRouter
{
  GObject     parent_instance;

  /* pool id -> next round-robin offset */
  GHashTable *cursors;
};

G_DEFINE_FINAL_TYPE (PoolerRouter, pooler_router, G_TYPE_OBJECT)

static void
pooler_router_finalize (GObject *object)
{
  PoolerRouter *self = (PoolerRouter *)object;

  g_clear_pointer (&self->cursors, g_hash_table_unref);

  G_OBJECT_CLASS (pooler_router_parent_class)->finalize (object);
}

static void
pooler_router_class_init (PoolerRouterClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = pooler_router_finalize;
}

static void
pooler_router_init (PoolerRouter *self)
{
  self->cursors = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
}

PoolerRouter *
pooler_router_new (void)
{
  return g_object_new (POOLER_TYPE_ROUTER, NULL);
}

const char *
pooler_router_explain (PoolerRouter  *self,
                       PoolerAccount *account,
                       const char    *model,
                       gint64         now)
{
  g_return_val_if_fail (POOLER_IS_ROUTER (self), NULL);
  g_return_val_if_fail (POOLER_IS_ACCOUNT (account), NULL);

  switch (pooler_account_get_status (account))
    {
    case POOLER_ACCOUNT_PAUSED:
      return "paused";
    case POOLER_ACCOUNT_REAUTH_REQUIRED:
      return "needs sign-in again";
    case POOLER_ACCOUNT_ACTIVE:
    default:
      break;
    }

  if (pooler_account_get_cooldown_until (account) > now)
    return "cooling down";

  return NULL;
}

/* Stable orderings: ties fall back to creation order, then id. */
static int
compare_created (PoolerAccount *a,
                 PoolerAccount *b)
{
  gint64 ca = pooler_account_get_created_at (a);
  gint64 cb = pooler_account_get_created_at (b);

  if (ca != cb)
    return ca < cb ? -1 : 1;

  return g_strcmp0 (pooler_account_get_id (a), pooler_account_get_id (b));
}

static int
compare_priority (gconstpointer pa,
                  gconstpointer pb)
{
  PoolerAccount *a = *(PoolerAccount **) pa;
  PoolerAccount *b = *(PoolerAccount **) pb;
  int qa = pooler_account_get_priority (a);
  int qb = pooler_account_get_priority (b);

  if (qa != qb)
    return qa < qb ? -1 : 1;

  return compare_created (a, b);
}

static int
compare_least_recent (gconstpointer pa,
                      gconstpointer pb)
{
  PoolerAccount *a = *(PoolerAccount **) pa;
  PoolerAccount *b = *(PoolerAccount **) pb;
  gint64 la = pooler_account_get_last_used_at (a);
  gint64 lb = pooler_account_get_last_used_at (b);

  if (la != lb)
    return la < lb ? -1 : 1;

  return compare_created (a, b);
}

GPtrArray *
pooler_router_order (PoolerRouter *self,
                     PoolerPool   *pool,
                     GPtrArray    *accounts,
                     const char   *model,
                     gint64        now)
{
  g_autoptr(GPtrArray) usable = g_ptr_array_new_with_free_func (g_object_unref);
  const char *strategy;

  g_return_val_if_fail (POOLER_IS_ROUTER (self), NULL);
  g_return_val_if_fail (POOLER_IS_POOL (pool), NULL);
  g_return_val_if_fail (accounts != NULL, NULL);

  for (guint i = 0; i < accounts->len; i++)
    {
      PoolerAccount *account = g_ptr_array_index (accounts, i);

      if (pooler_router_explain (self, account, model, now) == NULL)
        g_ptr_array_add (usable, g_object_ref (account));
    }

  strategy = pooler_pool_get_strategy (pool);

  if (g_strcmp0 (strategy, POOLER_STRATEGY_FILL_FIRST) == 0)
    g_ptr_array_sort (usable, compare_priority);
  else if (g_strcmp0 (strategy, POOLER_STRATEGY_LEAST_RECENT) == 0)
    g_ptr_array_sort (usable, compare_least_recent);
  else
    {
      /* round-robin (and quota-first until quota evidence exists):
       * rotate a stable order by a per-Pool cursor. */
      gint64 pool_id = pooler_pool_get_id (pool);
      gpointer value = NULL;
      guint offset = 0;

      g_ptr_array_sort (usable, compare_priority);

      if (g_hash_table_lookup_extended (self->cursors, &pool_id, NULL, &value))
        offset = GPOINTER_TO_UINT (value);

      if (usable->len > 1)
        {
          g_autoptr(GPtrArray) rotated = g_ptr_array_new_full (usable->len, g_object_unref);

          for (guint i = 0; i < usable->len; i++)
            g_ptr_array_add (rotated, g_object_ref (g_ptr_array_index (usable, (offset + i) % usable->len)));
          g_clear_pointer (&usable, g_ptr_array_unref);
          usable = g_steal_pointer (&rotated);
        }

      g_hash_table_insert (self->cursors, g_memdup2 (&pool_id, sizeof pool_id),
                           GUINT_TO_POINTER (offset + 1));
    }

  return g_steal_pointer (&usable);
}
