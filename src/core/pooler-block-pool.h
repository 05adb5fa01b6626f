/* pooler-block-pool.h
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _PoolerBlockPool PoolerBlockPool;

PoolerBlockPool *pooler_block_pool_new       (gsize            block_size,
                                              guint            floor,
                                              guint            cap,
                                              gint64           trim_period_us);
void             pooler_block_pool_free      (PoolerBlockPool *self);

gpointer         pooler_block_pool_take      (PoolerBlockPool *self);
void             pooler_block_pool_release   (PoolerBlockPool *self,
                                              gpointer         block);
guint            pooler_block_pool_trim      (PoolerBlockPool *self,
                                              gint64           now);

guint            pooler_block_pool_get_spare (PoolerBlockPool *self);
guint64          pooler_block_pool_get_fresh (PoolerBlockPool *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PoolerBlockPool, pooler_block_pool_free)

G_END_DECLS
