/* pooler-router.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-router"

#include "config.h"

#include "pooler-router.h"

typedef struct
{
  guint  consecutive_failures;
  gint64 demoted_until;
  gint64 circuit_open_until;
} Health;

struct _PoolerRouter
{
  GObject                parent_instance;

  GHashTable            *cursors;   /* pool id -> its next round-robin offset (guint *) */
  GHashTable            *health;    /* account id -> Health */
  PoolerRouterQuotaFunc  quota_func;
  gpointer               quota_data;
};

G_DEFINE_FINAL_TYPE (PoolerRouter, pooler_router, G_TYPE_OBJECT)

static void
pooler_router_finalize (GObject *object)
{
  PoolerRouter *self = (PoolerRouter *)object;

  g_clear_pointer (&self->cursors, g_hash_table_unref);
  g_clear_pointer (&self->health, g_hash_table_unref);

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
  self->cursors = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free);
  self->health = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
}

PoolerRouter *
pooler_router_new (void)
{
  return g_object_new (POOLER_TYPE_ROUTER, NULL);
}

void
pooler_router_set_quota_func (PoolerRouter          *self,
                              PoolerRouterQuotaFunc  func,
                              gpointer               user_data)
{
  g_return_if_fail (POOLER_IS_ROUTER (self));

  self->quota_func = func;
  self->quota_data = user_data;
}

static PoolerQuotaState *
quota_of (PoolerRouter  *self,
          PoolerAccount *account)
{
  return self->quota_func != NULL ? self->quota_func (account, self->quota_data) : NULL;
}

static Health *
health_of (PoolerRouter  *self,
           PoolerAccount *account,
           gboolean       create)
{
  const char *id = pooler_account_get_id (account);
  Health *health = g_hash_table_lookup (self->health, id);

  if (health == NULL && create)
    {
      health = g_new0 (Health, 1);
      g_hash_table_insert (self->health, g_strdup (id), health);
    }

  return health;
}

static char *
format_utc (gint64 unix_seconds)
{
  g_autoptr(GDateTime) time = g_date_time_new_from_unix_utc (unix_seconds);

  return time != NULL ? g_date_time_format (time, "%Y-%m-%d %H:%M UTC") : g_strdup ("?");
}

/* Quota-spent, with when it comes back; covers both a 429 block recorded
 * as cooldown_until and a spent window in the evidence. */
static gboolean
is_spent (PoolerRouter  *self,
          PoolerAccount *account,
          gint64         now,
          gint64        *reset_at)
{
  PoolerQuotaState *quota = quota_of (self, account);

  return quota != NULL && pooler_quota_state_is_spent (quota, now, reset_at);
}

/* Why @account cannot serve now, as a code; 0 when it can. The same
 * order as the reasons of pooler_router_explain(). */
typedef enum
{
  USABLE,
  UNUSABLE_PAUSED,
  UNUSABLE_SIGN_IN,
  UNUSABLE_SPENT,
  UNUSABLE_COOLING,
  UNUSABLE_CIRCUIT,
} Unusable;

static Unusable
unusable (PoolerRouter  *self,
          PoolerAccount *account,
          gint64         now,
          gint64        *reset_at)
{
  Health *health;

  switch (pooler_account_get_status (account))
    {
    case POOLER_ACCOUNT_PAUSED:
      return UNUSABLE_PAUSED;
    case POOLER_ACCOUNT_REAUTH_REQUIRED:
      return UNUSABLE_SIGN_IN;
    case POOLER_ACCOUNT_ACTIVE:
    default:
      break;
    }

  if (is_spent (self, account, now, reset_at))
    return UNUSABLE_SPENT;
  if (pooler_account_get_cooldown_until (account) > now)
    return UNUSABLE_COOLING;
  health = health_of (self, account, FALSE);
  if (health != NULL && health->circuit_open_until > now)
    return UNUSABLE_CIRCUIT;
  return USABLE;
}

char *
pooler_router_explain (PoolerRouter  *self,
                       PoolerAccount *account,
                       const char    *model,
                       gint64         now)
{
  gint64 reset_at = 0;
  g_autofree char *when = NULL;

  g_return_val_if_fail (POOLER_IS_ROUTER (self), NULL);
  g_return_val_if_fail (POOLER_IS_ACCOUNT (account), NULL);

  switch (unusable (self, account, now, &reset_at))
    {
    case UNUSABLE_PAUSED:
      return g_strdup ("paused");
    case UNUSABLE_SIGN_IN:
      return g_strdup ("needs sign-in again");
    case UNUSABLE_SPENT:
      when = reset_at > 0 ? format_utc (reset_at) : NULL;
      return when != NULL ? g_strdup_printf ("quota spent until %s", when)
                          : g_strdup ("quota spent");
    case UNUSABLE_COOLING:
      when = format_utc (pooler_account_get_cooldown_until (account));
      return g_strdup_printf ("cooling down until %s", when);
    case UNUSABLE_CIRCUIT:
      return g_strdup_printf ("circuit open after %u failures in a row",
                              health_of (self, account, FALSE)->consecutive_failures);
    case USABLE:
    default:
      return NULL;
    }
}

gboolean
pooler_router_is_demoted (PoolerRouter  *self,
                          PoolerAccount *account,
                          gint64         now)
{
  Health *health = health_of (self, account, FALSE);

  return health != NULL && health->demoted_until > now;
}

void
pooler_router_report_success (PoolerRouter  *self,
                              PoolerAccount *account)
{
  g_return_if_fail (POOLER_IS_ROUTER (self));
  g_return_if_fail (POOLER_IS_ACCOUNT (account));

  g_hash_table_remove (self->health, pooler_account_get_id (account));
}

void
pooler_router_report_failure (PoolerRouter  *self,
                              PoolerAccount *account,
                              gint64         now)
{
  Health *health;

  g_return_if_fail (POOLER_IS_ROUTER (self));
  g_return_if_fail (POOLER_IS_ACCOUNT (account));

  health = health_of (self, account, TRUE);
  health->consecutive_failures++;
  health->demoted_until = now + POOLER_ROUTER_DEMOTE_SECONDS;
  if (health->consecutive_failures >= POOLER_ROUTER_CIRCUIT_FAILURES)
    health->circuit_open_until = now + POOLER_ROUTER_CIRCUIT_SECONDS;
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

typedef struct
{
  PoolerAccount *account;
  double         remaining;
} Scored;

static int
compare_remaining (gconstpointer pa,
                   gconstpointer pb)
{
  const Scored *a = pa;
  const Scored *b = pb;

  if (a->remaining != b->remaining)
    return a->remaining > b->remaining ? -1 : 1;

  return compare_created (a->account, b->account);
}

static void
sort_quota_first (PoolerRouter *self,
                  GPtrArray    *usable,
                  gint64        now)
{
  g_autoptr(GArray) scored = g_array_sized_new (FALSE, FALSE, sizeof (Scored), usable->len);

  for (guint i = 0; i < usable->len; i++)
    {
      Scored s = { g_ptr_array_index (usable, i), 50.0 };
      PoolerQuotaState *quota = quota_of (self, s.account);
      double remaining = quota != NULL ? pooler_quota_state_remaining (quota, now) : -1;

      /* No fresh evidence: between a half-used and a fuller account. */
      if (remaining >= 0)
        s.remaining = remaining;
      g_array_append_val (scored, s);
    }

  g_array_sort (scored, compare_remaining);
  for (guint i = 0; i < scored->len; i++)
    usable->pdata[i] = g_array_index (scored, Scored, i).account;
}

static void
reverse_pointers (gpointer *from,
                  gpointer *to)   /* exclusive */
{
  for (; from + 1 < to; from++, to--)
    {
      gpointer swap = *from;

      *from = to[-1];
      to[-1] = swap;
    }
}

static void
rotate_round_robin (PoolerRouter *self,
                    PoolerPool   *pool,
                    GPtrArray    *usable)
{
  gint64 pool_id = pooler_pool_get_id (pool);
  guint *cursor = g_hash_table_lookup (self->cursors, &pool_id);
  guint offset;

  g_ptr_array_sort (usable, compare_priority);

  if (cursor == NULL)
    {
      cursor = g_new0 (guint, 1);
      g_hash_table_insert (self->cursors, g_memdup2 (&pool_id, sizeof pool_id), cursor);
    }
  offset = (*cursor)++;

  if (usable->len < 2)
    return;

  /* Starts at @offset, in place: three reversals turn AB into BA. */
  offset %= usable->len;
  reverse_pointers (usable->pdata, usable->pdata + offset);
  reverse_pointers (usable->pdata + offset, usable->pdata + usable->len);
  reverse_pointers (usable->pdata, usable->pdata + usable->len);
}

/* Moves the demoted accounts to the back, keeping the order of both
 * parts. */
static void
demote (PoolerRouter *self,
        GPtrArray    *usable,
        gint64        now)
{
  g_autofree gpointer *back = NULL;
  guint n_front = 0, n_back = 0;

  for (guint i = 0; i < usable->len; i++)
    {
      PoolerAccount *account = g_ptr_array_index (usable, i);

      if (!pooler_router_is_demoted (self, account, now))
        usable->pdata[n_front++] = account;
      else
        {
          /* Usually none is: no copy then. */
          if (back == NULL)
            back = g_new (gpointer, usable->len - i);
          back[n_back++] = account;
        }
    }

  for (guint i = 0; i < n_back; i++)
    usable->pdata[n_front + i] = back[i];
}

static gint
find_account (GPtrArray  *accounts,
              const char *id)
{
  for (guint i = 0; id != NULL && i < accounts->len; i++)
    if (g_strcmp0 (pooler_account_get_id (g_ptr_array_index (accounts, i)), id) == 0)
      return (gint) i;

  return -1;
}

GPtrArray *
pooler_router_order (PoolerRouter           *self,
                     PoolerPool             *pool,
                     GPtrArray              *accounts,
                     const PoolerRouteQuery *query,
                     gint64                  now,
                     PoolerRouteOutcome     *out_outcome,
                     gint64                 *out_earliest_reset)
{
  g_autoptr(GPtrArray) usable = NULL;
  PoolerRouteQuery defaults = { 0 };
  const char *strategy;
  PoolerRouteOutcome outcome = POOLER_ROUTE_OK;
  gint64 earliest = 0;
  guint active = 0, spent = 0;
  guint ring;
  gint home;

  g_return_val_if_fail (POOLER_IS_ROUTER (self), NULL);
  g_return_val_if_fail (POOLER_IS_POOL (pool), NULL);
  g_return_val_if_fail (accounts != NULL, NULL);

  if (query == NULL)
    query = &defaults;

  usable = g_ptr_array_sized_new (accounts->len);
  for (guint i = 0; i < accounts->len; i++)
    {
      PoolerAccount *account = g_ptr_array_index (accounts, i);
      gint64 reset_at = 0;
      /* A code, not pooler_router_explain()'s text: this runs for every
       * account of every request. */
      Unusable why = unusable (self, account, now, &reset_at);

      if (pooler_account_get_status (account) == POOLER_ACCOUNT_ACTIVE)
        {
          active++;
          if (why == UNUSABLE_SPENT)
            {
              spent++;
              if (reset_at > 0 && (earliest == 0 || reset_at < earliest))
                earliest = reset_at;
            }
        }

      if (why == USABLE)
        g_ptr_array_add (usable, account);
    }

  strategy = pooler_pool_get_strategy (pool);
  if (g_strcmp0 (strategy, POOLER_STRATEGY_FILL_FIRST) == 0)
    g_ptr_array_sort (usable, compare_priority);
  else if (g_strcmp0 (strategy, POOLER_STRATEGY_LEAST_RECENT) == 0)
    g_ptr_array_sort (usable, compare_least_recent);
  else if (g_strcmp0 (strategy, POOLER_STRATEGY_QUOTA_FIRST) == 0)
    sort_quota_first (self, usable, now);
  else
    rotate_round_robin (self, pool, usable);

  demote (self, usable, now);

  if (query->hard_account_id != NULL)
    {
      gint pinned = find_account (usable, query->hard_account_id);

      if (pinned >= 0)
        {
          PoolerAccount *account = g_ptr_array_index (usable, pinned);

          g_ptr_array_set_size (usable, 0);
          g_ptr_array_add (usable, account);
        }
      else
        {
          g_ptr_array_set_size (usable, 0);
          outcome = POOLER_ROUTE_PIN_UNAVAILABLE;
        }
    }
  else if ((home = find_account (usable, query->soft_account_id)) > 0)
    {
      PoolerAccount *account = g_ptr_array_steal_index (usable, home);

      g_ptr_array_insert (usable, 0, account);
    }

  ring = query->ring_size > 0 ? query->ring_size : POOLER_ROUTER_DEFAULT_RING_SIZE;
  if (usable->len > ring)
    g_ptr_array_set_size (usable, ring);

  if (usable->len == 0 && outcome == POOLER_ROUTE_OK)
    outcome = (active > 0 && spent == active) ? POOLER_ROUTE_ALL_SPENT : POOLER_ROUTE_EMPTY;

  if (out_outcome != NULL)
    *out_outcome = outcome;
  if (out_earliest_reset != NULL)
    *out_earliest_reset = earliest;

  /* The caller's: each account with a reference. */
  for (guint i = 0; i < usable->len; i++)
    g_object_ref (g_ptr_array_index (usable, i));
  g_ptr_array_set_free_func (usable, g_object_unref);

  return g_steal_pointer (&usable);
}
