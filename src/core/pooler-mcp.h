/* pooler-mcp.h: the operator MCP endpoint (/mcp, Streamable HTTP, JSON
 * responses): read-only, sanitized tools and resources about Pools,
 * accounts, keys, request logs, the audit log and routing decisions.
 * Authenticated by an operator token (mcp-cxp-...), never a Pool key.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <libsoup/soup.h>

#include "pooler-service.h"

G_BEGIN_DECLS

#define POOLER_TYPE_MCP (pooler_mcp_get_type ())

G_DECLARE_FINAL_TYPE (PoolerMcp, pooler_mcp, POOLER, MCP, GObject)

PoolerMcp *pooler_mcp_new    (PoolerService     *service);
/* Any request to /mcp (the gateway checked Host, Origin and body size). */
void       pooler_mcp_handle (PoolerMcp         *self,
                              SoupServerMessage *msg);

/* The largest request body /mcp takes. */
#define POOLER_MCP_MAX_BODY (1024 * 1024)

/* For the gateway's early look at a request, before its body is read:
 * whether it carries a valid operator token (@out_reason, static text,
 * says why not), and the 401 that answers one that does not. */
gboolean   pooler_mcp_authorize            (PoolerMcp          *self,
                                            SoupMessageHeaders *headers,
                                            const char        **out_reason);
void       pooler_mcp_respond_unauthorized (SoupServerMessage  *msg,
                                            const char         *reason);

G_END_DECLS
