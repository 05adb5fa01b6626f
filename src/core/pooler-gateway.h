/* pooler-gateway.h: the loopback HTTP server that clients point at.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <libsoup/soup.h>

#include "pooler-service.h"

G_BEGIN_DECLS

#define POOLER_DEFAULT_PORT            4000
#define POOLER_MAX_REQUEST_BODY        (32 * 1024 * 1024)
#define POOLER_MAX_CONNECTIONS         1024
#define POOLER_MAX_REQUEST_HEADERS     100
/* A client that says nothing for this long is disconnected (idle
 * keep-alive, a stalled upload, a reader that stopped reading). */
#define POOLER_CLIENT_IDLE_SECONDS     30
/* A request's headers must be complete this long after it began
 * (slowloris). */
#define POOLER_HEADER_DEADLINE_SECONDS 15

#define POOLER_TYPE_GATEWAY (pooler_gateway_get_type ())

G_DECLARE_FINAL_TYPE (PoolerGateway, pooler_gateway, POOLER, GATEWAY, GObject)

PoolerGateway *pooler_gateway_new                (PoolerService  *service);
/* Binds @address (NULL: loopback, both 127.0.0.1 and ::1) on @port
 * (0: a free one) and starts accepting. */
gboolean       pooler_gateway_listen             (PoolerGateway  *self,
                                                  const char     *address,
                                                  guint           port,
                                                  GError        **error);
void           pooler_gateway_stop               (PoolerGateway  *self);
guint          pooler_gateway_get_port           (PoolerGateway  *self);
/* "http://127.0.0.1:PORT" */
char          *pooler_gateway_dup_base_url       (PoolerGateway  *self);
guint          pooler_gateway_get_connections    (PoolerGateway  *self);
/* Requests served by the hot path (pooler-http-conn) rather than libsoup. */
guint64        pooler_gateway_get_hot_requests   (PoolerGateway  *self);
/* pooler_proxy_get_deadline_arms() of the gateway's proxy (for tests). */
guint64        pooler_gateway_get_deadline_arms  (PoolerGateway  *self);
void           pooler_gateway_set_max_body_size  (PoolerGateway  *self,
                                                  gsize           max_body_size);
void           pooler_gateway_set_max_connections (PoolerGateway *self,
                                                   guint          max_connections);
void           pooler_gateway_set_timeouts       (PoolerGateway  *self,
                                                  guint           client_idle_seconds,
                                                  guint           header_deadline_seconds,
                                                  guint           upstream_answer_seconds);
/* Another name clients may use in Host (with our port), for a gateway
 * that listens beyond loopback. Call before pooler_gateway_listen(). */
void           pooler_gateway_add_allowed_host   (PoolerGateway  *self,
                                                  const char     *name);

G_END_DECLS
