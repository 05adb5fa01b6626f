/* pooler-store-writer.h: one thread that owns a second SQLite connection and
 * batches the per-request writes (request rows, attempts, key last-used,
 * account last-used) into transactions, so the main loop only queues.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>

#include "pooler-affinity.h"
#include "pooler-quota.h"
#include "pooler-request-record.h"

G_BEGIN_DECLS

#define POOLER_TYPE_STORE_WRITER (pooler_store_writer_get_type ())

G_DECLARE_FINAL_TYPE (PoolerStoreWriter, pooler_store_writer, POOLER, STORE_WRITER, GObject)

PoolerStoreWriter *pooler_store_writer_new            (const char          *path,
                                                       GError             **error);
/* Upsert by record->id: push once when a request starts (state in_flight)
 * and again when it ends. The writer copies @record. */
void               pooler_store_writer_push_request   (PoolerStoreWriter   *self,
                                                       const PoolerRequestRecord *record);
void               pooler_store_writer_touch_key      (PoolerStoreWriter   *self,
                                                       const char          *prefix,
                                                       gint64               unix_seconds);
void               pooler_store_writer_touch_account  (PoolerStoreWriter   *self,
                                                       const char          *account_id,
                                                       gint64               unix_seconds);
void               pooler_store_writer_touch_mcp_token (PoolerStoreWriter  *self,
                                                        const char         *prefix,
                                                        gint64              unix_seconds);
/* Account changes the serving main loop makes (each one column or two,
 * so a change another process made meanwhile stays): a cooldown (only
 * ever moved later), a refresh's new token expiry (and no last error),
 * and a refresh token refused for good (status reauth_required). */
void               pooler_store_writer_set_cooldown   (PoolerStoreWriter   *self,
                                                       const char          *account_id,
                                                       gint64               until);
void               pooler_store_writer_set_refreshed  (PoolerStoreWriter   *self,
                                                       const char          *account_id,
                                                       gint64               token_expires_at);
/* Returns a place in the queue at or after the op's, for
 * pooler_store_writer_has_processed(). */
guint64            pooler_store_writer_set_reauth_required (PoolerStoreWriter *self,
                                                            const char        *account_id);
/* Whether every op up to @seq has been written (or dropped): a read of
 * the database now sees what it wrote, or something later. */
gboolean           pooler_store_writer_has_processed (PoolerStoreWriter *self,
                                                      guint64            seq);
/* An audit event, stamped now (pooler_store_add_audit_event() without
 * waiting for the database). */
void               pooler_store_writer_add_audit_event (PoolerStoreWriter *self,
                                                        const char        *actor,
                                                        const char        *action,
                                                        const char        *target,
                                                        const char        *detail);
/* Upsert into quota_windows by (account, limit id, minutes). */
void               pooler_store_writer_put_quota_window (PoolerStoreWriter *self,
                                                         const char        *account_id,
                                                         const PoolerQuotaWindow *window);
/* Upsert into affinities by key; expired rows are swept now and then. */
void               pooler_store_writer_put_affinity (PoolerStoreWriter         *self,
                                                     const PoolerAffinityEntry *entry);
/* Blocks until everything queued before the call is committed. */
void               pooler_store_writer_flush          (PoolerStoreWriter   *self);
/* Flushes and stops the thread; later pushes are dropped with a warning. */
void               pooler_store_writer_close          (PoolerStoreWriter   *self);
guint64            pooler_store_writer_get_committed  (PoolerStoreWriter   *self);

G_END_DECLS
