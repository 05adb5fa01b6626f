/* pooler-acceptor.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-acceptor"

#include "config.h"

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

/* Whether @error is about the one connection (already gone), not about
 * this process or system: then the next one is taken at once. */
static gboolean
error_is_the_connections (const GError *error)
{
  return g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED) ||
         g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE) ||
         g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
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
      g_autoptr(GError) error = NULL;
      g_autoptr(GSocket) socket = g_socket_accept (listener->socket, NULL, &error);
      g_autoptr(GSocketConnection) connection = NULL;

      if (socket == NULL)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            break;
          if (error_is_the_connections (error))
            {
              g_debug ("A connection went away before it was accepted: %s", error->message);
              continue;
            }
          /* Out of descriptors (EMFILE), memory or the like: the waiting
           * connections stay queued; a level-triggered watch would report
           * them again at once, so rest a moment. */
          g_debug ("Could not accept a connection (trying again in %d ms): %s",
                   POOLER_ACCEPTOR_PAUSE_MS, error->message);
          pooler_watch_set_events (listener->watch, 0);
          if (listener->resume_id == 0)
            listener->resume_id = g_timeout_add (POOLER_ACCEPTOR_PAUSE_MS, resume_cb, listener);
          break;
        }

      connection = g_socket_connection_factory_create_connection (socket);
      self->func (connection, self->user_data);
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
  /* Accepts report an empty queue instead of waiting for one. */
  g_socket_set_blocking (socket, FALSE);
  g_socket_set_listen_backlog (socket, (gint) self->backlog);
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
