/* pooler-chunk-writer.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-chunk-writer"

#include "config.h"

#include "pooler-chunk-writer.h"
#include "pooler-http-head.h"

struct _PoolerChunkWriter
{
  SoupServerMessage    *msg;
  GSocket              *socket;
  PoolerChunkWriterFunc drained;
  PoolerChunkWriterFunc failed;
  gpointer              user_data;
  gulong                wrote_headers_id;
  GByteArray           *pending;       /* framed bytes not yet written */
  gsize                 pending_start;
  GSource              *writable;
  gboolean              headers_out;
  gboolean              has_failed;
};

static void
fail (PoolerChunkWriter *self,
      GError            *error)
{
  g_debug ("Writing to the client failed: %s", error->message);
  g_byte_array_set_size (self->pending, 0);
  self->pending_start = 0;
  /* A chunk may be half out: libsoup's last chunk must not follow it on a
   * socket that still takes writes, or the answer would look complete. */
  g_socket_shutdown (self->socket, FALSE, TRUE, NULL);
  if (self->has_failed)
    return;
  self->has_failed = TRUE;
  self->failed (self->user_data);
}

static gboolean flush (PoolerChunkWriter *self);

static gboolean
socket_writable (GSocket      *socket,
                 GIOCondition  condition,
                 gpointer      user_data)
{
  PoolerChunkWriter *self = user_data;

  g_clear_pointer (&self->writable, g_source_unref);
  if (flush (self) && !self->has_failed)
    self->drained (self->user_data);
  return G_SOURCE_REMOVE;
}

/* Writes what the socket takes now. TRUE when all is out; otherwise waits
 * for the socket (or has failed). */
static gboolean
flush (PoolerChunkWriter *self)
{
  while (self->pending_start < self->pending->len)
    {
      GOutputVector vector = {
        self->pending->data + self->pending_start,
        self->pending->len - self->pending_start
      };
      g_autoptr(GError) error = NULL;
      gsize wrote = 0;
      GPollableReturn ret;

      ret = g_socket_send_message_with_timeout (self->socket, NULL, &vector, 1, NULL, 0,
                                                G_SOCKET_MSG_NONE, 0, &wrote, NULL, &error);
      /* TIMED_OUT: the socket's own timeout (the gateway's client idle
       * timeout) ran out while we waited: a failure, as in libsoup. */
      if (ret == G_POLLABLE_RETURN_WOULD_BLOCK)
        {
          if (self->writable == NULL)
            {
              /* The socket's own timeout (the gateway's client idle
               * timeout) bounds the wait: the source then fires and the
               * write fails. */
              self->writable = g_socket_create_source (self->socket, G_IO_OUT, NULL);
              g_source_set_callback (self->writable, (GSourceFunc) (void (*) (void)) socket_writable,
                                     self, NULL);
              g_source_attach (self->writable, g_main_context_get_thread_default ());
            }
          return FALSE;
        }
      if (ret == G_POLLABLE_RETURN_FAILED)
        {
          fail (self, error);
          return FALSE;
        }
      self->pending_start += wrote;
    }

  g_byte_array_set_size (self->pending, 0);
  self->pending_start = 0;
  return TRUE;
}

static void
wrote_headers (SoupServerMessage *msg,
               gpointer           user_data)
{
  PoolerChunkWriter *self = user_data;

  g_clear_signal_handler (&self->wrote_headers_id, self->msg);
  self->headers_out = TRUE;
  /* Told even with nothing pending: the caller may wait for the headers. */
  if (flush (self) && !self->has_failed)
    self->drained (self->user_data);
}

GSocket *
pooler_client_socket (SoupServerMessage *msg)
{
  GSocket *socket;
  GSocketAddress *remote;

  g_return_val_if_fail (SOUP_IS_SERVER_MESSAGE (msg), NULL);

  socket = soup_server_message_get_socket (msg);
  if (socket != NULL)
    return socket;
  remote = soup_server_message_get_remote_address (msg);
  return remote != NULL ? g_object_get_data (G_OBJECT (remote), POOLER_CLIENT_SOCKET_DATA) : NULL;
}

PoolerChunkWriter *
pooler_chunk_writer_new (SoupServerMessage     *msg,
                         PoolerChunkWriterFunc  drained,
                         PoolerChunkWriterFunc  failed,
                         gpointer               user_data)
{
  PoolerChunkWriter *self;
  GSocket *socket;

  g_return_val_if_fail (SOUP_IS_SERVER_MESSAGE (msg), NULL);

  socket = pooler_client_socket (msg);
  /* No body at all for HEAD, 204 and 304: libsoup ends those itself. */
  if (socket == NULL || soup_server_message_get_http_version (msg) != SOUP_HTTP_1_1 ||
      soup_server_message_get_method (msg) == SOUP_METHOD_HEAD ||
      soup_server_message_get_status (msg) == SOUP_STATUS_NO_CONTENT ||
      soup_server_message_get_status (msg) == SOUP_STATUS_NOT_MODIFIED)
    return NULL;

  self = g_new0 (PoolerChunkWriter, 1);
  self->msg = g_object_ref (msg);
  self->socket = g_object_ref (socket);
  self->drained = drained;
  self->failed = failed;
  self->user_data = user_data;
  self->pending = g_byte_array_new ();
  self->wrote_headers_id = g_signal_connect (msg, "wrote-headers", G_CALLBACK (wrote_headers), self);

  return self;
}

void
pooler_chunk_writer_free (PoolerChunkWriter *self)
{
  if (self == NULL)
    return;

  g_clear_signal_handler (&self->wrote_headers_id, self->msg);
  if (self->writable != NULL)
    {
      g_source_destroy (self->writable);
      g_source_unref (self->writable);
    }
  g_byte_array_unref (self->pending);
  g_object_unref (self->socket);
  g_object_unref (self->msg);
  g_free (self);
}

void
pooler_chunk_writer_write (PoolerChunkWriter *self,
                           const void        *data,
                           gsize              length)
{
  char size_line[POOLER_HTTP_CHUNK_LINE_SIZE];
  gsize n;

  g_return_if_fail (self != NULL);
  g_return_if_fail (length > 0);

  if (self->has_failed)
    return;

  /* Exactly libsoup's framing: hex size, CRLF, data, CRLF. */
  n = pooler_http_format_chunk_line (size_line, length);
  g_byte_array_append (self->pending, (const guint8 *) size_line, (guint) n);
  g_byte_array_append (self->pending, data, (guint) length);
  g_byte_array_append (self->pending, (const guint8 *) "\r\n", 2);

  if (self->headers_out && self->writable == NULL)
    flush (self);
}

gboolean
pooler_chunk_writer_is_drained (PoolerChunkWriter *self)
{
  g_return_val_if_fail (self != NULL, TRUE);

  return self->headers_out && self->pending->len == 0;
}

gboolean
pooler_chunk_writer_has_failed (PoolerChunkWriter *self)
{
  g_return_val_if_fail (self != NULL, FALSE);

  return self->has_failed;
}
