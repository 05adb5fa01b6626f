/* fuzz-jsonrpc.c: the JSON-RPC layer of /mcp: parsing and validation of
 * any request body, and the answers built for it.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <stdint.h>

#include "pooler-jsonrpc.h"

int LLVMFuzzerTestOneInput (const uint8_t *data,
                            size_t         size);

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(GError) error = NULL;
  JsonNode *id = NULL;
  g_autoptr(PoolerJsonRpcMessage) message = pooler_jsonrpc_parse ((const char *) data, size, &id, &error);
  g_autoptr(GBytes) answer = NULL;

  /* Exactly one of a message or an error; an error always gets an answer,
   * a request (not a notification) too. */
  g_assert ((message == NULL) != (error == NULL));
  if (message == NULL)
    {
      answer = pooler_jsonrpc_build_error (id, error->code, error->message, NULL);
      g_assert (answer != NULL);
    }
  else if (id != NULL)
    {
      answer = pooler_jsonrpc_build_result (id, json_node_new (JSON_NODE_NULL));
      g_assert (answer != NULL);
    }

  g_clear_pointer (&id, json_node_unref);
  return 0;
}
