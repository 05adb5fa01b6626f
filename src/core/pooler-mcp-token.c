/* pooler-mcp-token.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-mcp"

#include "config.h"

#include "pooler-mcp-token.h"

G_DEFINE_BOXED_TYPE (PoolerMcpTokenRecord, pooler_mcp_token_record,
                     pooler_mcp_token_record_copy, pooler_mcp_token_record_free)

PoolerMcpTokenRecord *
pooler_mcp_token_record_new (void)
{
  return g_new0 (PoolerMcpTokenRecord, 1);
}

PoolerMcpTokenRecord *
pooler_mcp_token_record_copy (const PoolerMcpTokenRecord *record)
{
  PoolerMcpTokenRecord *copy;

  g_return_val_if_fail (record != NULL, NULL);

  copy = g_memdup2 (record, sizeof *record);
  copy->prefix = g_strdup (record->prefix);
  copy->secret_sha256 = g_strdup (record->secret_sha256);
  copy->name = g_strdup (record->name);

  return copy;
}

void
pooler_mcp_token_record_free (PoolerMcpTokenRecord *record)
{
  if (record == NULL)
    return;

  g_free (record->prefix);
  g_free (record->secret_sha256);
  g_free (record->name);
  g_free (record);
}
