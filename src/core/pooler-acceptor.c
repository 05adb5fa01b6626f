/* pooler-acceptor.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-acceptor"

#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pooler-acceptor.h"

typedef struct
{
  PoolerAcceptor *acceptor;   /* not a reference: it owns us */
  GSocket        *socket;
  PoolerWatch    *watch;
  guint           resume_id;
} Listener;

struct _PoolerAcceptor
{
  gatomicrefcount   ref_count;  /* the owner's, and one per running dispatch */
  PoolerPoller     *poller;
  guint             backlog;
  PoolerAcceptFunc  func;
  gpointer          user_data;
  GPtrArray        *listeners;
  gboolean          closed;
};

static void
acceptor_unref (PoolerAcceptor *self)
{
  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;

  g_ptr_array_unref (self->listeners);
  pooler_poller_unref (self->poller);
  g_free (self);
}

static void
listener_free (Listener *listener)
{
  g_clear_handle_id (&listener->resume_id, g_source_remove);
  g_clear_pointer (&listener->watch, pooler_watch_free);
  g_socket_close (listener->socket, NULL);
  g_object_unref (listener->socket);
  g_free (listener);
}

static gboolean
resume_cb (gpointer user_data)
{
  Listener *listener = user_data;

  listener->resume_id = 0;
  pooler_watch_set_events (listener->watch, G_IO_IN);

  return G_SOURCE_REMOVE;
}

/* Whether accept() failing with @errsv was about the one connection
 * (gone before it was taken; accept(2) says to retry on these), not about
 * this process or system: then the next one is taken at once. GIO maps
 * most of them to G_IO_ERROR_FAILED, like ENOBUFS, so errno it is. */
static gboolean
errno_is_the_connections (int errsv)
{
  switch (errsv)
    {
    case ECONNABORTED: case EPROTO: case ENETDOWN: case ENOPROTOOPT:
    case EHOSTDOWN: case ENONET: case EHOSTUNREACH: case EOPNOTSUPP:
    case ENETUNREACH:
      return TRUE;
    default:
      return FALSE;
    }
}

static void
on_ready (GIOCondition condition,
          gpointer     user_data)
{
  Listener *listener = user_data;
  PoolerAcceptor *self = listener->acceptor;

  g_atomic_ref_count_inc (&self->ref_count);

  for (guint i = 0; i < POOLER_ACCEPTOR_BATCH && !self->closed; i++)
    {
      int fd = accept4 (g_socket_get_fd (listener->socket), NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

      if (fd < 0)
        {
          int errsv = errno;

          if (errsv == EAGAIN || errsv == EWOULDBLOCK)
            break;
          if (errsv == EINTR || errno_is_the_connections (errsv))
            {
              g_debug ("A connection went away before it was accepted: %s", g_strerror (errsv));
              continue;
            }
          /* Out of descriptors (EMFILE), memory or the like: the waiting
           * connections stay queued; a level-triggered watch would report
           * them again at once, so rest a moment. */
          g_debug ("Could not accept a connection (trying again in %d ms): %s",
                   POOLER_ACCEPTOR_PAUSE_MS, g_strerror (errsv));
          pooler_watch_set_events (listener->watch, 0);
          if (listener->resume_id == 0)
            listener->resume_id = g_timeout_add (POOLER_ACCEPTOR_PAUSE_MS, resume_cb, listener);
          break;
        }

      self->func (fd, self->user_data);
    }

  acceptor_unref (self);
}

PoolerAcceptor *
pooler_acceptor_new (PoolerPoller     *poller,
                     guint             backlog,
                     PoolerAcceptFunc  func,
                     gpointer          user_data)
{
  PoolerAcceptor *self;

  g_return_val_if_fail (poller != NULL, NULL);
  g_return_val_if_fail (func != NULL, NULL);

  self = g_new0 (PoolerAcceptor, 1);
  g_atomic_ref_count_init (&self->ref_count);
  self->poller = pooler_poller_ref (poller);
  self->backlog = MAX (backlog, 1);
  self->func = func;
  self->user_data = user_data;
  self->listeners = g_ptr_array_new_with_free_func ((GDestroyNotify) listener_free);

  return self;
}

gboolean
pooler_acceptor_add_address (PoolerAcceptor   *self,
                             GSocketAddress   *address,
                             GSocketAddress  **effective,
                             GError          **error)
{
  g_autoptr(GSocket) socket = NULL;
  Listener *listener;

  g_return_val_if_fail (self != NULL && !self->closed, FALSE);
  g_return_val_if_fail (G_IS_SOCKET_ADDRESS (address), FALSE);

  socket = g_socket_new (g_socket_address_get_family (address), G_SOCKET_TYPE_STREAM,
                         G_SOCKET_PROTOCOL_TCP, error);
  if (socket == NULL)
    return FALSE;
  g_socket_set_listen_backlog (socket, (gint) self->backlog);
  /* Accepted connections inherit it (Linux): SSE events are small
   * writes, and Nagle must not hold one back for an ACK. */
  if (!g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, 1, error))
    return FALSE;
  if (!g_socket_bind (socket, address, TRUE, error) || !g_socket_listen (socket, error))
    return FALSE;
  if (effective != NULL && (*effective = g_socket_get_local_address (socket, error)) == NULL)
    return FALSE;

  listener = g_new0 (Listener, 1);
  listener->acceptor = self;
  listener->socket = g_steal_pointer (&socket);
  listener->watch = pooler_watch_new (self->poller, g_socket_get_fd (listener->socket), G_IO_IN,
                                      on_ready, listener);
  if (listener->watch == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "Could not watch a listening socket");
      if (effective != NULL)
        g_clear_object (effective);
      listener_free (listener);
      return FALSE;
    }
  g_ptr_array_add (self->listeners, listener);

  return TRUE;
}

void
pooler_acceptor_free (PoolerAcceptor *self)
{
  if (self == NULL)
    return;

  /* Closed now; its memory goes when a dispatch in progress ends. */
  self->closed = TRUE;
  g_ptr_array_set_size (self->listeners, 0);
  acceptor_unref (self);
}
