/* pooler-poller.c
 *
 * The poller is a GSource with one descriptor, the epoll set. A dispatch
 * takes up to max_events (at most MAX_EVENTS) ready watches from
 * epoll_wait() (no waiting: the main loop's poll() already said the set
 * is ready) and calls them. Watches left ready are reported again on a
 * later turn, and the kernel hands out level-triggered ones round-robin,
 * so a small batch delays a watch by turns, never forever. A
 * watch freed meanwhile (by its own callback or another's) is only marked
 * and unregistered; its memory goes at the end of the dispatch, so an
 * event still in the batch never points at freed memory.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-poller"

#include "config.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "pooler-error.h"
#include "pooler-poller.h"

#define MAX_EVENTS 128

struct _PoolerWatch
{
  PoolerPoller    *poller;
  int              fd;
  GIOCondition     events;
  PoolerWatchFunc  func;
  gpointer         user_data;
  gboolean         freed;
};

typedef struct
{
  GSource       source;
  PoolerPoller *poller;
} PollerSource;

struct _PoolerPoller
{
  gatomicrefcount ref_count; /* the owner's, and one per watch */
  int         epfd;
  GSource    *source;
  guint       n_watches;
  guint       dispatching; /* depth: a callback may iterate the context */
  GPtrArray  *freed;       /* watches freed during a dispatch */
  int         max_events;  /* ready watches taken per dispatch */
};

static guint32
epoll_events (GIOCondition events)
{
  return (events & G_IO_IN ? EPOLLIN : 0) | (events & G_IO_OUT ? EPOLLOUT : 0);
}

static GIOCondition
io_condition (guint32 events)
{
  return (events & EPOLLIN ? G_IO_IN : 0) | (events & EPOLLOUT ? G_IO_OUT : 0) |
         (events & EPOLLHUP ? G_IO_HUP : 0) | (events & EPOLLERR ? G_IO_ERR : 0);
}

static gboolean
poller_source_dispatch (GSource     *source,
                        GSourceFunc  callback,
                        gpointer     user_data)
{
  PoolerPoller *self = ((PollerSource *) source)->poller;
  struct epoll_event events[MAX_EVENTS];
  int n;

  /* A callback may free the last watch after the owner let go. */
  pooler_poller_ref (self);

  do
    n = epoll_wait (self->epfd, events, self->max_events, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    {
      g_warning ("epoll_wait() failed: %s", g_strerror (errno));
      pooler_poller_unref (self);
      return G_SOURCE_CONTINUE;
    }

  self->dispatching++;
  for (int i = 0; i < n; i++)
    {
      PoolerWatch *watch = events[i].data.ptr;

      if (!watch->freed)
        watch->func (io_condition (events[i].events), watch->user_data);
    }
  if (--self->dispatching == 0)
    g_ptr_array_set_size (self->freed, 0);
  pooler_poller_unref (self);

  return G_SOURCE_CONTINUE;
}

static GSourceFuncs poller_source_funcs = {
  .dispatch = poller_source_dispatch,
};

PoolerPoller *
pooler_poller_new (GMainContext  *context,
                   GError       **error)
{
  PoolerPoller *self;
  int epfd = epoll_create1 (EPOLL_CLOEXEC);

  if (epfd < 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "Could not create an epoll set: %s", g_strerror (saved));
      return NULL;
    }

  self = g_new0 (PoolerPoller, 1);
  g_atomic_ref_count_init (&self->ref_count);
  self->epfd = epfd;
  self->freed = g_ptr_array_new_with_free_func (g_free);
  self->max_events = MAX_EVENTS;
  self->source = g_source_new (&poller_source_funcs, sizeof (PollerSource));
  ((PollerSource *) self->source)->poller = self;
  g_source_set_static_name (self->source, "PoolerPoller");
  g_source_add_unix_fd (self->source, epfd, G_IO_IN);
  /* Not blocked while it dispatches: in GLib 2.74 blocking takes the fd
   * out of the poll set and back, each time waking the context. */
  g_source_set_can_recurse (self->source, TRUE);
  g_source_attach (self->source, context != NULL ? context : g_main_context_get_thread_default ());

  return self;
}

PoolerPoller *
pooler_poller_ref (PoolerPoller *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

void
pooler_poller_unref (PoolerPoller *self)
{
  if (self == NULL || !g_atomic_ref_count_dec (&self->ref_count))
    return;

  /* Every watch holds a reference, and a dispatch holds one. */
  g_assert (self->n_watches == 0 && self->dispatching == 0);

  g_source_destroy (self->source);
  g_source_unref (self->source);
  close (self->epfd);
  g_ptr_array_unref (self->freed);
  g_free (self);
}

guint
pooler_poller_get_n_watches (PoolerPoller *self)
{
  g_return_val_if_fail (self != NULL, 0);

  return self->n_watches;
}

PoolerWatch *
pooler_watch_new (PoolerPoller    *poller,
                  int              fd,
                  GIOCondition     events,
                  PoolerWatchFunc  func,
                  gpointer         user_data)
{
  PoolerWatch *watch;
  struct epoll_event event = { 0 };

  g_return_val_if_fail (poller != NULL, NULL);
  g_return_val_if_fail (fd >= 0, NULL);
  g_return_val_if_fail (func != NULL, NULL);

  watch = g_new0 (PoolerWatch, 1);
  watch->poller = poller;
  watch->fd = fd;
  watch->events = events;
  watch->func = func;
  watch->user_data = user_data;

  event.events = epoll_events (events);
  event.data.ptr = watch;
  if (epoll_ctl (poller->epfd, EPOLL_CTL_ADD, fd, &event) != 0)
    {
      /* A descriptor epoll refuses is a bug of ours (not a socket). */
      g_critical ("epoll_ctl(ADD, %d) failed: %s", fd, g_strerror (errno));
      g_free (watch);
      return NULL;
    }
  poller->n_watches++;
  pooler_poller_ref (poller);

  return watch;
}

void
pooler_watch_set_events (PoolerWatch  *watch,
                         GIOCondition  events)
{
  struct epoll_event event = { 0 };

  g_return_if_fail (watch != NULL && !watch->freed);

  if (watch->events == events)
    return;
  watch->events = events;
  event.events = epoll_events (events);
  event.data.ptr = watch;
  if (epoll_ctl (watch->poller->epfd, EPOLL_CTL_MOD, watch->fd, &event) != 0)
    g_critical ("epoll_ctl(MOD, %d) failed: %s", watch->fd, g_strerror (errno));
}

GIOCondition
pooler_watch_get_events (PoolerWatch *watch)
{
  g_return_val_if_fail (watch != NULL, 0);

  return watch->events;
}

void
pooler_watch_free (PoolerWatch *watch)
{
  PoolerPoller *poller;

  if (watch == NULL)
    return;

  g_return_if_fail (!watch->freed);

  poller = watch->poller;
  watch->freed = TRUE;
  /* Closed already would be a caller's bug; epoll then dropped it itself. */
  if (epoll_ctl (poller->epfd, EPOLL_CTL_DEL, watch->fd, NULL) != 0 && errno != EBADF)
    g_debug ("epoll_ctl(DEL, %d): %s", watch->fd, g_strerror (errno));
  poller->n_watches--;

  if (poller->dispatching > 0)
    g_ptr_array_add (poller->freed, watch);
  else
    g_free (watch);
  /* Not the last reference while dispatching: the dispatch holds one. */
  pooler_poller_unref (poller);
}

void
pooler_poller_set_max_events (PoolerPoller *self,
                              guint         n)
{
  g_return_if_fail (self != NULL);

  self->max_events = n == 0 ? MAX_EVENTS : (int) MIN (n, MAX_EVENTS);
}
