/* pooler-notifier.h: desktop notifications (libnotify) for what an operator
 * must know: an account's quota is spent (and until when), a Pool has no
 * usable account left, an account needs to sign in again, capacity is back.
 *
 * It listens to PoolerService's signals (account-exhausted, pool-exhausted,
 * pool-restored, reauth-required) and sends one notification per event,
 * never one per request. A notification daemon that is missing or slow is
 * logged and never blocks the main loop.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib-object.h>

#include "pooler-service.h"

G_BEGIN_DECLS

#define POOLER_TYPE_NOTIFIER (pooler_notifier_get_type ())

G_DECLARE_FINAL_TYPE (PoolerNotifier, pooler_notifier, POOLER, NOTIFIER, GObject)

PoolerNotifier *pooler_notifier_new            (PoolerService  *service);
/* Notifications handed to the daemon so far (successfully shown). */
guint           pooler_notifier_get_sent       (PoolerNotifier *self);
/* Notifications that could not be shown (no daemon, error). */
guint           pooler_notifier_get_failed     (PoolerNotifier *self);
/* Blocks (iterating the thread-default main context) until every
 * notification queued so far was handed over or failed; for tests. */
void            pooler_notifier_flush          (PoolerNotifier *self);

G_END_DECLS
