/* pooler-mcp-token.h: the stored side of an operator token for /mcp
 * ("mcp-cxp-..."): never the secret, only its SHA-256.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

typedef struct
{
  char    *prefix;          /* "mcp-cxp-<12 hex>": public */
  char    *secret_sha256;   /* lowercase hex SHA-256 of the secret part */
  char    *name;            /* may be NULL */
  gboolean revoked;
  gint64   created_at;      /* unix seconds */
  gint64   last_used_at;    /* unix seconds, 0 = never */
} PoolerMcpTokenRecord;

#define POOLER_TYPE_MCP_TOKEN_RECORD (pooler_mcp_token_record_get_type ())

GType                 pooler_mcp_token_record_get_type (void) G_GNUC_CONST;
PoolerMcpTokenRecord *pooler_mcp_token_record_new      (void);
PoolerMcpTokenRecord *pooler_mcp_token_record_copy     (const PoolerMcpTokenRecord *record);
void                  pooler_mcp_token_record_free     (PoolerMcpTokenRecord       *record);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PoolerMcpTokenRecord, pooler_mcp_token_record_free)

G_END_DECLS
