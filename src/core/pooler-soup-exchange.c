/* pooler-soup-exchange.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-soup-exchange"

#include "config.h"

#include "pooler-chunk-writer.h"
#include "pooler-chunked-close.h"
#include "pooler-soup-exchange.h"

/* Chunks handed to libsoup's body and not yet written, at most. */
#define MAX_PENDING_CHUNKS 16

struct _PoolerSoupExchange
{
  PoolerExchange     parent_instance;

  SoupServerMessage *msg;
  PoolerChunkWriter *chunks;          /* NULL: chunks go through libsoup */
  guint              pending_chunks;  /* through libsoup, not yet written */
  gboolean           body_complete;   /* libsoup writes the end */
  gboolean           end_when_drained;
  gboolean           write_failed;
};

G_DEFINE_FINAL_TYPE (PoolerSoupExchange, pooler_soup_exchange, POOLER_TYPE_EXCHANGE)

static void
copy_header (const char *name,
             const char *value,
             gpointer    user_data)
{
  soup_message_headers_append (user_data, name, value);
}

static void
copy_response_headers (PoolerSoupExchange *self)
{
  soup_message_headers_foreach (pooler_exchange_get_response_headers (POOLER_EXCHANGE (self)),
                                copy_header,
                                soup_server_message_get_response_headers (self->msg));
}

/* The exchange on a client's socket, for the gateway's sweep: libsoup
 * does not read the socket of a paused message, so a client that leaves
 * while the upstream thinks goes unnoticed until the answer is written. */
#define SOCKET_EXCHANGE_DATA "pooler-soup-exchange"

static void
forget_socket (PoolerSoupExchange *self)
{
  GSocket *socket = self->msg != NULL ? pooler_client_socket (self->msg) : NULL;

  if (socket != NULL && g_object_get_data (G_OBJECT (socket), SOCKET_EXCHANGE_DATA) == self)
    g_object_set_data (G_OBJECT (socket), SOCKET_EXCHANGE_DATA, NULL);
}

/* libsoup's "finished" (or, when the server itself goes away, only
 * "disconnected"): whichever comes first ends the exchange. */
static void
on_message_finished (SoupServerMessage *msg,
                     gpointer           user_data)
{
  PoolerSoupExchange *self = user_data;

  forget_socket (self);
  pooler_exchange_emit_finished (POOLER_EXCHANGE (self), !self->body_complete || self->write_failed);
}

static void
complete_body (PoolerSoupExchange *self)
{
  if (self->body_complete)
    return;
  self->body_complete = TRUE;
  soup_message_body_complete (soup_server_message_get_response_body (self->msg));
  soup_server_message_unpause (self->msg);
}

static void
on_chunks_drained (gpointer user_data)
{
  PoolerSoupExchange *self = user_data;

  if (self->end_when_drained)
    {
      self->end_when_drained = FALSE;
      complete_body (self);
      return;
    }
  pooler_exchange_emit_drained (POOLER_EXCHANGE (self));
}

/* Writing to the client failed: it is gone. libsoup, which did not see
 * it, ends the message on its own write of the last chunk. */
static void
on_chunks_failed (gpointer user_data)
{
  PoolerSoupExchange *self = user_data;
  g_autoptr(PoolerSoupExchange) hold G_GNUC_UNUSED = g_object_ref (self);

  self->write_failed = TRUE;
  self->end_when_drained = FALSE;
  complete_body (self);
  pooler_exchange_emit_finished (POOLER_EXCHANGE (self), TRUE);
}

static void
on_wrote_chunk (SoupServerMessage *msg,
                gpointer           user_data)
{
  PoolerSoupExchange *self = user_data;

  if (self->pending_chunks > 0)
    self->pending_chunks--;
  if (self->pending_chunks < MAX_PENDING_CHUNKS / 2)
    pooler_exchange_emit_drained (POOLER_EXCHANGE (self));
}

static void
pooler_soup_exchange_respond (PoolerExchange *exchange,
                              guint           status,
                              const char     *content_type,
                              GBytes         *body)
{
  PoolerSoupExchange *self = POOLER_SOUP_EXCHANGE (exchange);

  copy_response_headers (self);
  soup_message_headers_set_encoding (soup_server_message_get_response_headers (self->msg),
                                     SOUP_ENCODING_CONTENT_LENGTH);
  soup_server_message_set_status (self->msg, status, NULL);
  soup_server_message_set_response (self->msg, content_type, SOUP_MEMORY_COPY,
                                    g_bytes_get_data (body, NULL), g_bytes_get_size (body));
  self->body_complete = TRUE;
  soup_server_message_unpause (self->msg);
}

static void
pooler_soup_exchange_stream_begin (PoolerExchange *exchange,
                                   guint           status)
{
  PoolerSoupExchange *self = POOLER_SOUP_EXCHANGE (exchange);

  copy_response_headers (self);
  /* HTTP/1.0 has no chunks: the body ends when the connection does. */
  soup_message_headers_set_encoding (soup_server_message_get_response_headers (self->msg),
                                     soup_server_message_get_http_version (self->msg) == SOUP_HTTP_1_0
                                     ? SOUP_ENCODING_EOF : SOUP_ENCODING_CHUNKED);
  pooler_chunked_close_install ();
  /* A long stream must not pile up in memory once written. */
  soup_message_body_set_accumulate (soup_server_message_get_response_body (self->msg), FALSE);
  soup_server_message_set_status (self->msg, status, NULL);

  /* Chunks go straight to the socket once libsoup has sent the headers;
   * through libsoup's body when the message cannot take that. */
  self->chunks = pooler_chunk_writer_new (self->msg, on_chunks_drained, on_chunks_failed, self);
  if (self->chunks == NULL)
    g_signal_connect_object (self->msg, "wrote-chunk", G_CALLBACK (on_wrote_chunk), self, 0);

  soup_server_message_unpause (self->msg);
}

static void
pooler_soup_exchange_stream_write (PoolerExchange *exchange,
                                   GBytes         *bytes)
{
  PoolerSoupExchange *self = POOLER_SOUP_EXCHANGE (exchange);

  if (self->chunks != NULL)
    {
      gsize size;
      gconstpointer data = g_bytes_get_data (bytes, &size);

      pooler_chunk_writer_write (self->chunks, data, size);
      return;
    }

  soup_message_body_append_bytes (soup_server_message_get_response_body (self->msg), bytes);
  self->pending_chunks++;
  soup_server_message_unpause (self->msg);
}

static gboolean
pooler_soup_exchange_is_drained (PoolerExchange *exchange)
{
  PoolerSoupExchange *self = POOLER_SOUP_EXCHANGE (exchange);

  if (self->chunks != NULL)
    return pooler_chunk_writer_is_drained (self->chunks);
  return self->pending_chunks < MAX_PENDING_CHUNKS;
}

static void
pooler_soup_exchange_stream_end (PoolerExchange *exchange)
{
  PoolerSoupExchange *self = POOLER_SOUP_EXCHANGE (exchange);

  /* The last chunk is libsoup's, after all of ours are out. */
  if (self->chunks != NULL && !pooler_chunk_writer_is_drained (self->chunks))
    self->end_when_drained = TRUE;
  else
    complete_body (self);
}

static void
pooler_soup_exchange_dispose (GObject *object)
{
  PoolerSoupExchange *self = POOLER_SOUP_EXCHANGE (object);

  /* Never leave libsoup waiting on a message nobody will answer. */
  if (self->msg != NULL && !pooler_exchange_is_finished (POOLER_EXCHANGE (self)))
    {
      if (pooler_exchange_get_status (POOLER_EXCHANGE (self)) == 0)
        {
          soup_server_message_set_status (self->msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, NULL);
          soup_server_message_unpause (self->msg);
        }
      else
        complete_body (self);
    }
  g_clear_pointer (&self->chunks, pooler_chunk_writer_free);
  forget_socket (self);
  if (self->msg != NULL)
    g_signal_handlers_disconnect_by_data (self->msg, self);
  g_clear_object (&self->msg);

  G_OBJECT_CLASS (pooler_soup_exchange_parent_class)->dispose (object);
}

static void
pooler_soup_exchange_class_init (PoolerSoupExchangeClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  PoolerExchangeClass *exchange_class = POOLER_EXCHANGE_CLASS (klass);

  object_class->dispose = pooler_soup_exchange_dispose;
  exchange_class->respond = pooler_soup_exchange_respond;
  exchange_class->stream_begin = pooler_soup_exchange_stream_begin;
  exchange_class->stream_write = pooler_soup_exchange_stream_write;
  exchange_class->is_drained = pooler_soup_exchange_is_drained;
  exchange_class->stream_end = pooler_soup_exchange_stream_end;
}

static void
pooler_soup_exchange_init (PoolerSoupExchange *self)
{
}

PoolerExchange *
pooler_soup_exchange_new (SoupServerMessage *msg)
{
  PoolerSoupExchange *self;
  GUri *uri;
  const char *query;

  g_return_val_if_fail (SOUP_IS_SERVER_MESSAGE (msg), NULL);

  self = g_object_new (POOLER_TYPE_SOUP_EXCHANGE, NULL);
  self->msg = g_object_ref (msg);
  uri = soup_server_message_get_uri (msg);
  query = g_uri_get_query (uri);
  pooler_exchange_set_request (POOLER_EXCHANGE (self),
                               soup_server_message_get_method (msg),
                               g_strdup (g_uri_get_path (uri)),
                               query != NULL ? g_strdup (query) : NULL,
                               soup_message_headers_ref (soup_server_message_get_request_headers (msg)),
                               soup_message_body_flatten (soup_server_message_get_request_body (msg)));

  g_signal_connect_object (msg, "finished", G_CALLBACK (on_message_finished), self, 0);
  g_signal_connect_object (msg, "disconnected", G_CALLBACK (on_message_finished), self, 0);
  soup_server_message_pause (msg);
  if (pooler_client_socket (msg) != NULL)
    g_object_set_data (G_OBJECT (pooler_client_socket (msg)), SOCKET_EXCHANGE_DATA, self);

  return POOLER_EXCHANGE (self);
}

void
pooler_soup_exchange_notice_gone (GSocket *socket)
{
  PoolerSoupExchange *self;
  g_autoptr(PoolerSoupExchange) hold = NULL;

  g_return_if_fail (G_IS_SOCKET (socket));

  self = g_object_get_data (G_OBJECT (socket), SOCKET_EXCHANGE_DATA);
  if (self == NULL)
    return;
  hold = g_object_ref (self);
  forget_socket (self);

  self->write_failed = TRUE;
  pooler_exchange_emit_finished (POOLER_EXCHANGE (self), TRUE);

  /* libsoup ends the message when it next tries to write it. */
  if (pooler_exchange_get_status (POOLER_EXCHANGE (self)) == 0)
    {
      soup_server_message_set_status (self->msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, NULL);
      soup_server_message_unpause (self->msg);
    }
  else
    complete_body (self);
}

SoupServerMessage *
pooler_soup_exchange_get_message (PoolerSoupExchange *self)
{
  g_return_val_if_fail (POOLER_IS_SOUP_EXCHANGE (self), NULL);

  return self->msg;
}
