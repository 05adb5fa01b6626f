/* pooler-store.h: the SQLite database (pools, accounts, keys, request log).
 *
 * One PoolerStore is one connection, used from the thread that made it (the
 * main thread). Writes that happen per request go through
 * PoolerStoreWriter instead, so the main loop never waits on SQLite while
 * streams flow. Tokens are never stored here; see PoolerVault.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>

#include "pooler-account.h"
#include "pooler-affinity.h"
#include "pooler-key-record.h"
#include "pooler-mcp-token.h"
#include "pooler-pool.h"
#include "pooler-quota.h"
#include "pooler-request-record.h"

G_BEGIN_DECLS

#define POOLER_TYPE_STORE (pooler_store_get_type ())

G_DECLARE_FINAL_TYPE (PoolerStore, pooler_store, POOLER, STORE, GObject)

/* $XDG_DATA_HOME/codex-pooler/pooler.db; the directory is created 0700. */
char            *pooler_store_default_path        (void);

PoolerStore     *pooler_store_open                (const char      *path,
                                                   GError         **error);
const char      *pooler_store_get_path            (PoolerStore     *self);
int              pooler_store_get_schema_version  (PoolerStore     *self);
/* A cheap query that proves the database answers (for /readyz). */
gboolean         pooler_store_ping                (PoolerStore     *self,
                                                   GError         **error);
/* Bumped by triggers whenever pools, accounts, pool membership or keys
 * change, from any process; a running gateway polls it to reload. */
gint64           pooler_store_get_config_version  (PoolerStore     *self,
                                                   GError         **error);

/* Pools */
PoolerPool      *pooler_store_create_pool         (PoolerStore     *self,
                                                   const char      *slug,
                                                   const char      *strategy,
                                                   GError         **error);
PoolerPool      *pooler_store_find_pool           (PoolerStore     *self,
                                                   const char      *slug,
                                                   GError         **error);
GPtrArray       *pooler_store_list_pools          (PoolerStore     *self,
                                                   GError         **error);
gboolean         pooler_store_save_pool           (PoolerStore     *self,
                                                   PoolerPool      *pool,
                                                   GError         **error);

/* Accounts */
gboolean         pooler_store_save_account        (PoolerStore     *self,
                                                   PoolerAccount   *account,
                                                   GError         **error);
PoolerAccount   *pooler_store_find_account        (PoolerStore     *self,
                                                   const char      *id,
                                                   GError         **error);
PoolerAccount   *pooler_store_find_account_by_identity (PoolerStore *self,
                                                   const char      *chatgpt_account_id,
                                                   const char      *chatgpt_user_id,
                                                   GError         **error);
GPtrArray       *pooler_store_list_accounts       (PoolerStore     *self,
                                                   const char      *pool_slug,
                                                   GError         **error);
gboolean         pooler_store_remove_account      (PoolerStore     *self,
                                                   const char      *id,
                                                   GError         **error);
gboolean         pooler_store_add_pool_account    (PoolerStore     *self,
                                                   gint64           pool_id,
                                                   const char      *account_id,
                                                   GError         **error);
/* Both of the above in one transaction: a row is never left without
 * its Pool. */
gboolean         pooler_store_save_account_in_pool (PoolerStore    *self,
                                                    PoolerAccount  *account,
                                                    gint64          pool_id,
                                                    GError        **error);
GStrv            pooler_store_list_account_pools  (PoolerStore     *self,
                                                   const char      *account_id,
                                                   GError         **error);

/* Keys */
gboolean         pooler_store_insert_key          (PoolerStore     *self,
                                                   const PoolerKeyRecord *key,
                                                   GError         **error);
PoolerKeyRecord *pooler_store_find_key            (PoolerStore     *self,
                                                   const char      *prefix,
                                                   GError         **error);
GPtrArray       *pooler_store_list_keys           (PoolerStore     *self,
                                                   const char      *pool_slug,
                                                   GError         **error);
gboolean         pooler_store_revoke_key          (PoolerStore     *self,
                                                   const char      *prefix,
                                                   GError         **error);

/* Request log (reads; writes go through PoolerStoreWriter) */
GPtrArray       *pooler_store_list_requests       (PoolerStore     *self,
                                                   guint            limit,
                                                   GError         **error);
gboolean         pooler_store_count_requests      (PoolerStore     *self,
                                                   gint64           since_ms,
                                                   gint64          *total,
                                                   gint64          *failed,
                                                   GError         **error);
/* Called at start-up: rows left in_flight by a process that died. */
gint64           pooler_store_mark_interrupted    (PoolerStore     *self,
                                                   GError         **error);

/* Quota evidence of one account (PoolerQuotaWindow*, source STORED);
 * writes go through PoolerStoreWriter. */
GPtrArray       *pooler_store_list_quota_windows  (PoolerStore     *self,
                                                   const char      *account_id,
                                                   GError         **error);

/* Continuity entries (PoolerAffinityEntry*) that expire after @now;
 * writes go through PoolerStoreWriter. */
GPtrArray       *pooler_store_list_affinities     (PoolerStore     *self,
                                                   gint64           now,
                                                   GError         **error);

/* Audit log: who did what, sanitized (no secrets in @detail). */
gboolean         pooler_store_add_audit_event     (PoolerStore     *self,
                                                   const char      *actor,
                                                   const char      *action,
                                                   const char      *target,
                                                   const char      *detail,
                                                   GError         **error);

/* Operator tokens for /mcp (never the secret). Inserting, revoking and
 * removing bump config_version; touching last_used_at does not. */
gboolean         pooler_store_insert_mcp_token    (PoolerStore     *self,
                                                   const PoolerMcpTokenRecord *token,
                                                   GError         **error);
PoolerMcpTokenRecord *pooler_store_find_mcp_token (PoolerStore     *self,
                                                   const char      *prefix,
                                                   GError         **error);
/* PoolerMcpTokenRecord*, oldest first. */
GPtrArray       *pooler_store_list_mcp_tokens     (PoolerStore     *self,
                                                   GError         **error);
gboolean         pooler_store_revoke_mcp_token    (PoolerStore     *self,
                                                   const char      *prefix,
                                                   GError         **error);
gboolean         pooler_store_touch_mcp_token     (PoolerStore     *self,
                                                   const char      *prefix,
                                                   gint64           last_used_at,
                                                   GError         **error);

/* A filtered, paged read of the request log, newest first. NULL / 0
 * members do not filter. The cursor is the last row of the previous page:
 * only rows strictly older than (before_started_at_ms, before_id) come. */
typedef struct
{
  const char *pool_slug;
  const char *key_prefix;
  const char *account_id;          /* served it, or was attempted */
  int         status;              /* the client's HTTP status; 0: any */
  const char *state;               /* "in_flight", "completed", "interrupted" */
  gint64      since_ms;            /* started at or after; 0: any */
  const char *before_id;           /* NULL: from the newest row */
  gint64      before_started_at_ms;
  guint       limit;               /* 0: no limit */
} PoolerRequestQuery;

GPtrArray       *pooler_store_query_requests      (PoolerStore     *self,
                                                   const PoolerRequestQuery *query,
                                                   GError         **error);
/* One request with its attempts; POOLER_ERROR_NOT_FOUND when unknown. */
PoolerRequestRecord *pooler_store_find_request    (PoolerStore     *self,
                                                   const char      *id,
                                                   GError         **error);

/* One row of the audit log. */
typedef struct
{
  gint64  id;
  gint64  at;       /* unix seconds */
  char   *actor;
  char   *action;
  char   *target;   /* may be NULL */
  char   *detail;   /* may be NULL */
} PoolerAuditEvent;

void             pooler_audit_event_free          (PoolerAuditEvent *event);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PoolerAuditEvent, pooler_audit_event_free)

/* PoolerAuditEvent*, newest first; @before_id 0 starts at the newest,
 * otherwise only events with a smaller id come. @limit 0: no limit. */
GPtrArray       *pooler_store_list_audit_events   (PoolerStore     *self,
                                                   gint64           before_id,
                                                   guint            limit,
                                                   GError         **error);

/* A read transaction around several reads, so that they see one state
 * of the database (another process may commit between them). Nothing may
 * be written in between. */
gboolean         pooler_store_read_begin          (PoolerStore     *self,
                                                   GError         **error);
void             pooler_store_read_end            (PoolerStore     *self);

G_END_DECLS
