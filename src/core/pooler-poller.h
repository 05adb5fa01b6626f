/* pooler-poller.h: many sockets watched through one epoll descriptor.
 *
 * GLib 2.74's main loop gives every descriptor of every source to poll()
 * on each turn and walks every source twice around it; with a few hundred
 * connections that is most of what a turn costs, even when one socket is
 * ready. The hot path's sockets (client connections, plain upstream
 * connections) are watched here instead: the main context sees one
 * descriptor, and a turn costs what is ready. Level-triggered, like
 * poll(): a socket left unread is reported again.
 *
 * One poller per main context, on the thread that runs it (the context
 * is fixed when it is made). A watch may be changed or freed anywhere, its
 * own callback included, and keeps its poller alive: a connection may
 * outlive the poller's owner.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _PoolerPoller PoolerPoller;
typedef struct _PoolerWatch  PoolerWatch;

/* @condition has G_IO_IN, G_IO_OUT, G_IO_HUP or G_IO_ERR. */
typedef void (*PoolerWatchFunc) (GIOCondition condition,
                                 gpointer     user_data);

/* Attached to @context (NULL: the thread-default one); NULL and @error
 * when the system has no epoll for us. */
PoolerPoller *pooler_poller_new        (GMainContext    *context,
                                        GError         **error);
PoolerPoller *pooler_poller_ref        (PoolerPoller    *self);
void          pooler_poller_unref      (PoolerPoller    *self);
guint         pooler_poller_get_n_watches (PoolerPoller *self);
/* At most @n ready watches are called per turn of the main context (0:
 * the default, 128); the rest wait for the next turn, after the other
 * sources that are ready. */
void          pooler_poller_set_max_events (PoolerPoller *self,
                                            guint         n);

/* @events: G_IO_IN and/or G_IO_OUT (0: none for now; errors and hang-ups
 * are always reported). */
PoolerWatch  *pooler_watch_new         (PoolerPoller    *poller,
                                        int              fd,
                                        GIOCondition     events,
                                        PoolerWatchFunc  func,
                                        gpointer         user_data);
void          pooler_watch_set_events  (PoolerWatch     *watch,
                                        GIOCondition     events);
GIOCondition  pooler_watch_get_events  (PoolerWatch     *watch);
/* Stops watching (before the descriptor is closed). */
void          pooler_watch_free        (PoolerWatch     *watch);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PoolerPoller, pooler_poller_unref)

G_END_DECLS
