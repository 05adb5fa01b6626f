/* pooler-http-conn.h: a client connection served by the gateway's own
 * HTTP/1.1 code, for the hot routes.
 *
 * libsoup's server costs more per request than the whole rest of the
 * gateway (bench/RESULTS.md, "libsoup floor"). Every connection starts
 * here. A request head is parsed strictly; when it is plain HTTP/1.1 the
 * caller may take it (accept()): its body (Content-Length only) is read,
 * and the request is answered through a PoolerExchange (handle()), with
 * keep-alive and pipelining. Anything else (another route, a chunked or
 * Expect body, an upgrade, HTTP/1.0, an odd or oversized head) goes to
 * libsoup with the bytes read so far (handoff()), and libsoup serves the
 * connection from then on: every refusal and every rule stays libsoup's.
 *
 * One watch per connection (on the gateway's epoll set, pooler-poller)
 * follows it for its life: a client that goes away while its answer is
 * awaited is noticed at once.
 * Timeouts are checked by the caller's periodic sweep, not by a timer
 * per request.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "pooler-block-pool.h"
#include "pooler-exchange.h"
#include "pooler-poller.h"

G_BEGIN_DECLS

#define POOLER_TYPE_HTTP_CONN (pooler_http_conn_get_type ())

G_DECLARE_FINAL_TYPE (PoolerHttpConn, pooler_http_conn, POOLER, HTTP_CONN, GObject)

typedef struct
{
  /* A whole head is in: TRUE to serve the request here. */
  gboolean (*accept)  (PoolerHttpConn    *conn,
                       PoolerExchange    *exchange,
                       guint64            content_length,
                       gpointer           user_data);
  /* Its body is in too: answer @exchange (now or later). */
  void     (*handle)  (PoolerHttpConn    *conn,
                       PoolerExchange    *exchange,
                       gpointer           user_data);
  /* The connection goes to libsoup, with the bytes already read of it,
   * in a GSocketConnection made for it now (which owns the descriptor).
   * @conn is done; the caller drops it. */
  void     (*handoff) (PoolerHttpConn    *conn,
                       GSocketConnection *connection,
                       GBytes            *already_read,
                       gpointer           user_data);
  /* The connection is closed; the caller drops @conn. */
  void     (*closed)  (PoolerHttpConn    *conn,
                       gpointer           user_data);
} PoolerHttpConnFuncs;

/* Heads larger than this go to libsoup. */
#define POOLER_HTTP_CONN_MAX_HEAD (16 * 1024)

/* @fd: a connected, non-blocking socket, which the connection owns (it
 * closes it, or hands it off). @poller watches it; it must outlive the
 * connection's open life. */
PoolerHttpConn    *pooler_http_conn_new            (int                        fd,
                                                    PoolerPoller              *poller,
                                                    guint                      max_headers,
                                                    const PoolerHttpConnFuncs *funcs,
                                                    gpointer                   user_data);
/* Starts reading (in the thread-default main context). */
void               pooler_http_conn_start          (PoolerHttpConn            *self);
/* Closes the connection when it waited too long: for a request head
 * (@header_us since its first byte), or @idle_us for the next request, for
 * more of a body, or for the client to take what was written. An answer
 * still coming from the upstream is not the client's delay. */
void               pooler_http_conn_check_timeouts (PoolerHttpConn            *self,
                                                    gint64                     now,
                                                    gint64                     idle_us,
                                                    gint64                     header_us);
void               pooler_http_conn_close          (PoolerHttpConn            *self);

/* The process's pool of 64 KB read blocks, shared by every connection:
 * the owner trims it now and then (pooler_block_pool_trim()). */
PoolerBlockPool   *pooler_http_conn_get_blocks     (void);

G_END_DECLS
