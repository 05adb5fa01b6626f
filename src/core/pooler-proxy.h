/* pooler-proxy.h: forwarding a client request to the upstream on behalf of
 * one of the Pool's accounts, and streaming the answer back as it comes.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <libsoup/soup.h>

#include "pooler-key-record.h"
#include "pooler-request-body.h"
#include "pooler-request-record.h"
#include "pooler-service.h"

G_BEGIN_DECLS

typedef enum
{
  /* Pass the body through chunk by chunk, watching SSE events for usage. */
  POOLER_FORWARD_STREAM,
  /* Read the whole (bounded) answer, then respond; for small JSON calls. */
  POOLER_FORWARD_BUFFER,
} PoolerForwardMode;

#define POOLER_TYPE_PROXY (pooler_proxy_get_type ())

G_DECLARE_FINAL_TYPE (PoolerProxy, pooler_proxy, POOLER, PROXY, GObject)

PoolerProxy *pooler_proxy_new            (PoolerService       *service);
SoupSession *pooler_proxy_get_session    (PoolerProxy         *self);
guint        pooler_proxy_get_in_flight  (PoolerProxy         *self);

/* Takes over @msg (pausing it) and answers it when the upstream has.
 * @upstream_path is relative to the upstream base URL, e.g.
 * "/codex/responses"; @body may be NULL for GET. @record is the request's
 * log row, already filled with what the gateway knows. */
void         pooler_proxy_forward        (PoolerProxy         *self,
                                          SoupServerMessage   *msg,
                                          const PoolerKeyRecord *key,
                                          const char          *upstream_path,
                                          GBytes              *body,
                                          const PoolerRequestBody *scan,
                                          PoolerForwardMode    mode,
                                          PoolerRequestRecord *record);

G_END_DECLS
