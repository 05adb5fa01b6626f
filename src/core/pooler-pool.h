/* pooler-pool.h: a Pool — the accounts one set of keys may use, and how.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* The strategies a Pool may order its candidates by (ARCHITECTURE §6.3). */
#define POOLER_STRATEGY_ROUND_ROBIN  "round-robin"
#define POOLER_STRATEGY_QUOTA_FIRST  "quota-first"
#define POOLER_STRATEGY_LEAST_RECENT "least-recent"
#define POOLER_STRATEGY_FILL_FIRST   "fill-first"
#define POOLER_STRATEGY_DEFAULT      POOLER_STRATEGY_ROUND_ROBIN

#define POOLER_POOL_RING_SIZE_DEFAULT 3
#define POOLER_POOL_RING_SIZE_MAX     10

#define POOLER_TYPE_POOL (pooler_pool_get_type ())

G_DECLARE_FINAL_TYPE (PoolerPool, pooler_pool, POOLER, POOL, GObject)

PoolerPool *pooler_pool_new               (gint64      id,
                                           const char *slug);
gint64      pooler_pool_get_id            (PoolerPool *self);
const char *pooler_pool_get_slug          (PoolerPool *self);
const char *pooler_pool_get_name          (PoolerPool *self);
void        pooler_pool_set_name          (PoolerPool *self,
                                           const char *name);
const char *pooler_pool_get_strategy      (PoolerPool *self);
void        pooler_pool_set_strategy      (PoolerPool *self,
                                           const char *strategy);
/* How many accounts one request may try (failover), 1..10; default 3. */
guint       pooler_pool_get_ring_size     (PoolerPool *self);
void        pooler_pool_set_ring_size     (PoolerPool *self,
                                           guint       ring_size);
gint64      pooler_pool_get_created_at    (PoolerPool *self);
void        pooler_pool_set_created_at    (PoolerPool *self,
                                           gint64      unix_seconds);

gboolean    pooler_strategy_is_valid      (const char *strategy);
gboolean    pooler_pool_slug_is_valid     (const char *slug);

G_END_DECLS
