/* pooler-jsonrpc.h: JSON-RPC 2.0 messages as MCP uses them: one object per
 * HTTP body (no batches), ids that are strings or integers, never null.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* The GError codes of this domain are the JSON-RPC error codes. */
#define POOLER_JSONRPC_ERROR (pooler_jsonrpc_error_quark ())

#define POOLER_JSONRPC_PARSE_ERROR        (-32700)
#define POOLER_JSONRPC_INVALID_REQUEST    (-32600)
#define POOLER_JSONRPC_METHOD_NOT_FOUND   (-32601)
#define POOLER_JSONRPC_INVALID_PARAMS     (-32602)
#define POOLER_JSONRPC_INTERNAL_ERROR     (-32603)
/* Implementation-defined: transport-level refusals (the reference SDK's). */
#define POOLER_JSONRPC_SERVER_ERROR       (-32000)
/* MCP: resources/read of a URI we do not have. */
#define POOLER_JSONRPC_RESOURCE_NOT_FOUND (-32002)

typedef enum
{
  POOLER_JSONRPC_REQUEST,       /* has an id: answer it */
  POOLER_JSONRPC_NOTIFICATION,  /* no id: never answered */
  POOLER_JSONRPC_RESPONSE,      /* the client answering us (result/error) */
} PoolerJsonRpcKind;

typedef struct
{
  PoolerJsonRpcKind  kind;
  JsonNode          *id;        /* requests only: a string or integer */
  char              *method;    /* requests and notifications */
  JsonObject        *params;    /* NULL when absent */
  JsonNode          *root;
} PoolerJsonRpcMessage;

GQuark                pooler_jsonrpc_error_quark   (void);

/* Depth-checked parse and validation. On failure the GError's code is
 * the JSON-RPC code to answer with, and *out_id (if given) the request's
 * id when it could be read, else NULL (answer with "id": null). */
PoolerJsonRpcMessage *pooler_jsonrpc_parse         (const char            *data,
                                                    gsize                  length,
                                                    JsonNode             **out_id,
                                                    GError               **error);
void                  pooler_jsonrpc_message_free  (PoolerJsonRpcMessage  *message);

/* {"jsonrpc":"2.0","id":ID,"result":RESULT}; @result is consumed. */
GBytes               *pooler_jsonrpc_build_result  (JsonNode              *id,
                                                    JsonNode              *result);
/* {"jsonrpc":"2.0","id":ID|null,"error":{"code","message"[,"data"]}};
 * @data (may be NULL) is consumed. */
GBytes               *pooler_jsonrpc_build_error   (JsonNode              *id,
                                                    int                    code,
                                                    const char            *message,
                                                    JsonNode              *data);
/* Compact JSON text of @node. */
char                 *pooler_jsonrpc_to_string     (JsonNode              *node,
                                                    gsize                 *out_length);

/* At most POOLER_JSONRPC_EXCERPT_CHARS characters of @text, cut between
 * characters, for an error message that names what it refused. */
#define POOLER_JSONRPC_EXCERPT_CHARS 64
char                 *pooler_jsonrpc_excerpt       (const char            *text);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PoolerJsonRpcMessage, pooler_jsonrpc_message_free)

G_END_DECLS
