/* pooler-router.h: which accounts of a Pool may serve a request, and in
 * which order they are tried (ARCHITECTURE §6).
 *
 * Candidates are active accounts that are not cooling down (a quota block
 * sets cooldown_until to the reset), whose quota evidence shows no spent
 * window, and whose circuit is closed. The Pool's strategy orders them;
 * accounts that failed in the last minute go to the back; a conversation's
 * home account comes first (soft continuity); a previous_response_id's
 * account is the only candidate (hard pin). The first ring_size are tried.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib-object.h>

#include "pooler-account.h"
#include "pooler-pool.h"
#include "pooler-quota.h"

G_BEGIN_DECLS

#define POOLER_ROUTER_DEFAULT_RING_SIZE   3
#define POOLER_ROUTER_DEMOTE_SECONDS      60
#define POOLER_ROUTER_CIRCUIT_FAILURES    3
#define POOLER_ROUTER_CIRCUIT_SECONDS     60

typedef enum
{
  POOLER_ROUTE_OK,
  POOLER_ROUTE_EMPTY,            /* nothing usable, not (only) for quota */
  POOLER_ROUTE_ALL_SPENT,        /* every active account's quota is spent */
  POOLER_ROUTE_PIN_UNAVAILABLE,  /* the hard-pinned account cannot serve */
} PoolerRouteOutcome;

typedef struct
{
  const char *model;
  const char *soft_account_id;   /* the conversation's home, may be NULL */
  const char *hard_account_id;   /* owner of previous_response_id, may be NULL */
  guint       ring_size;         /* 0: POOLER_ROUTER_DEFAULT_RING_SIZE */
} PoolerRouteQuery;

/* The evidence the router reads; NULL when there is none. */
typedef PoolerQuotaState *(*PoolerRouterQuotaFunc) (PoolerAccount *account,
                                                    gpointer       user_data);

#define POOLER_TYPE_ROUTER (pooler_router_get_type ())

G_DECLARE_FINAL_TYPE (PoolerRouter, pooler_router, POOLER, ROUTER, GObject)

PoolerRouter *pooler_router_new              (void);
void          pooler_router_set_quota_func   (PoolerRouter          *self,
                                              PoolerRouterQuotaFunc  func,
                                              gpointer               user_data);
/* The accounts to try, in order (PoolerAccount*, new references), at most
 * ring_size long. Advances the Pool's round-robin cursor. */
GPtrArray    *pooler_router_order            (PoolerRouter          *self,
                                              PoolerPool            *pool,
                                              GPtrArray             *accounts,
                                              const PoolerRouteQuery *query,
                                              gint64                 now,
                                              PoolerRouteOutcome    *out_outcome,
                                              gint64                *out_earliest_reset);
/* Why @account is not a candidate at @now, or NULL when it is one. The
 * string is for people ("quota spent until 14:05 UTC"). */
char         *pooler_router_explain          (PoolerRouter          *self,
                                              PoolerAccount         *account,
                                              const char            *model,
                                              gint64                 now);
/* Outcomes of attempts: a failure demotes the account for a minute, three
 * in a row open its circuit for a minute; a success resets both. */
void          pooler_router_report_success   (PoolerRouter          *self,
                                              PoolerAccount         *account);
void          pooler_router_report_failure   (PoolerRouter          *self,
                                              PoolerAccount         *account,
                                              gint64                 now);
gboolean      pooler_router_is_demoted       (PoolerRouter          *self,
                                              PoolerAccount         *account,
                                              gint64                 now);

G_END_DECLS
