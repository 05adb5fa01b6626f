/* pooler-mcp-tools.h: the read-only tools and resources /mcp offers.
 *
 * Every tool has an input schema (a strict object), an output schema and
 * returns structured content that matches it. Nothing secret is ever in
 * an answer: no tokens, key secrets, prompts or bodies; keys appear by
 * prefix only and e-mail addresses masked (pooler-redact.h).
 *
 * Errors are POOLER_JSONRPC_ERROR (INVALID_PARAMS for an unknown tool,
 * RESOURCE_NOT_FOUND for an unknown resource, INTERNAL_ERROR when the
 * database fails), except that a tool that was found and refused its
 * arguments or failed reports POOLER_MCP_TOOL_ERROR: the MCP answer is
 * then a tool result with isError (SEP-1303, spec 2025-11-25), which the
 * model sees and can correct itself from.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <json-glib/json-glib.h>

#include "pooler-service.h"

G_BEGIN_DECLS

#define POOLER_MCP_SERVER_NAME "codex-pooler"

#define POOLER_MCP_TOOL_ERROR (pooler_mcp_tool_error_quark ())
GQuark     pooler_mcp_tool_error_quark (void);

/* Descriptors for tools/list: name, title, description, inputSchema,
 * outputSchema, annotations. */
JsonArray *pooler_mcp_tools_list       (void);
/* The structured content of a tools/call (a JSON object). */
JsonNode  *pooler_mcp_tools_call       (PoolerService  *service,
                                        const char     *name,
                                        JsonObject     *arguments,
                                        GError        **error);
/* Descriptors for resources/list. */
JsonArray *pooler_mcp_resources_list   (void);
/* The JSON document behind @uri. */
JsonNode  *pooler_mcp_resources_read   (PoolerService  *service,
                                        const char     *uri,
                                        GError        **error);

G_END_DECLS
