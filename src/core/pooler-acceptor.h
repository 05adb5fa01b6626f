/* pooler-acceptor.h: listening sockets whose waiting connections are
 * taken all at once
 *
 * GSocketService accepts one connection per main-loop turn, and a turn
 * also serves everything else that is ready: when 256 clients connect
 * together, the last waits for 255 turns (2.9 s in the benchmark). The
 * acceptor watches its sockets on a PoolerPoller and, when one is ready,
 * accepts up to a batch of connections in one go. An accept that fails
 * for want of descriptors or memory pauses that socket for a moment (the
 * waiting connections stay queued in the kernel) instead of spinning or
 * giving up.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>

#include "pooler-poller.h"

G_BEGIN_DECLS

typedef struct _PoolerAcceptor PoolerAcceptor;

/* Called with each new connection's descriptor, which the callee owns
 * (and closes). It is non-blocking and close-on-exec, and has TCP_NODELAY
 * from its listening socket. No GSocket is made for it: GLib's makes six
 * system calls on a descriptor it is given, and a burst of new
 * connections would wait for them all. */
typedef void (*PoolerAcceptFunc) (int      fd,
                                  gpointer user_data);

/* Connections taken per readiness of a socket, at most. */
#define POOLER_ACCEPTOR_BATCH 64
/* How long a socket rests after an accept failed for want of resources. */
#define POOLER_ACCEPTOR_PAUSE_MS 100

/* @backlog: connections queued in the kernel per socket, at most. */
PoolerAcceptor *pooler_acceptor_new         (PoolerPoller     *poller,
                                             guint             backlog,
                                             PoolerAcceptFunc  func,
                                             gpointer          user_data);
/* Binds and listens on @address (port 0: any free one); the address bound
 * is returned in @effective. */
gboolean        pooler_acceptor_add_address (PoolerAcceptor   *self,
                                             GSocketAddress   *address,
                                             GSocketAddress  **effective,
                                             GError          **error);
/* Closes every socket; no callback runs after it. */
void            pooler_acceptor_free        (PoolerAcceptor   *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PoolerAcceptor, pooler_acceptor_free)

G_END_DECLS
