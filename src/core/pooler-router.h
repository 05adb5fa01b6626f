/* pooler-router.h: which account of a Pool serves a request.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib-object.h>

#include "pooler-account.h"
#include "pooler-pool.h"

G_BEGIN_DECLS

#define POOLER_TYPE_ROUTER (pooler_router_get_type ())

G_DECLARE_FINAL_TYPE (PoolerRouter, pooler_router, POOLER, ROUTER, GObject)

PoolerRouter *pooler_router_new          (void);
/* The usable accounts of @accounts (PoolerAccount*), in the order the
 * Pool's strategy wants them tried. Advances the round-robin cursor. */
GPtrArray    *pooler_router_order        (PoolerRouter  *self,
                                          PoolerPool    *pool,
                                          GPtrArray     *accounts,
                                          const char    *model,
                                          gint64         now);
/* Why @account is not a candidate at @now, or NULL when it is one. */
const char   *pooler_router_explain      (PoolerRouter  *self,
                                          PoolerAccount *account,
                                          const char    *model,
                                          gint64         now);

G_END_DECLS
