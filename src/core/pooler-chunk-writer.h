/* pooler-chunk-writer.h: a streamed answer's chunks written straight to
 * the client's socket, one writev each.
 *
 * libsoup's server writes every chunk of a chunked body in three send()s
 * (size line, data, CRLF) and several main-loop turns (an unpause idle, the
 * I/O run, wrote-chunk signals). While an answer streams, libsoup has
 * nothing of its own to write: it has sent the status and headers and
 * waits, paused, for body data. The writer puts each chunk on the socket
 * itself in that window, framed exactly as libsoup would (hex size, CRLF,
 * data, CRLF), and hands the message back to libsoup for the last chunk
 * (soup_message_body_complete()), which libsoup writes as always.
 *
 * Only for HTTP/1.1 messages on a socket; the first chunks wait for
 * libsoup's "wrote-headers". What the socket does not take at once is kept
 * and written when it is writable; the caller stops reading its upstream
 * until @drained says all is out (backpressure), and learns of a client
 * that went away through @failed.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

/* Object data on the remote GSocketAddress handed to
 * soup_server_accept_iostream(): the connection's GSocket (libsoup 3.2
 * has none to give for such a stream). */
#define POOLER_CLIENT_SOCKET_DATA "pooler-client-socket"

/* The client's socket under @msg: libsoup's, or the one kept on its
 * remote address. NULL when there is neither. */
GSocket *pooler_client_socket (SoupServerMessage *msg);

typedef struct _PoolerChunkWriter PoolerChunkWriter;

typedef void (*PoolerChunkWriterFunc) (gpointer user_data);

/* NULL when @msg cannot take chunks this way (not HTTP/1.1, no socket,
 * no body: HEAD, 204, 304): then append to its body as usual. Call after
 * setting the status, before the headers are written. */
PoolerChunkWriter *pooler_chunk_writer_new        (SoupServerMessage     *msg,
                                                   PoolerChunkWriterFunc  drained,
                                                   PoolerChunkWriterFunc  failed,
                                                   gpointer               user_data);
void               pooler_chunk_writer_free       (PoolerChunkWriter     *self);

/* Queues one chunk (@length > 0) and writes what the socket takes now. */
void               pooler_chunk_writer_write      (PoolerChunkWriter     *self,
                                                   const void            *data,
                                                   gsize                  length);
/* Nothing is waiting to be written (and the headers are out). */
gboolean           pooler_chunk_writer_is_drained (PoolerChunkWriter     *self);
gboolean           pooler_chunk_writer_has_failed (PoolerChunkWriter     *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PoolerChunkWriter, pooler_chunk_writer_free)

G_END_DECLS
