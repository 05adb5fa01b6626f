/* pooler-mcp.c
 *
 * The legacy-era Streamable HTTP transport, stateless: POST only, one
 * JSON-RPC object per body, a JSON answer per request, 202 for
 * notifications and client responses, 405 for GET and DELETE, and no
 * Mcp-Session-Id (every official client accepts that; nothing here needs
 * to push to the client).
 *
 * Operator tokens are checked here, not by the gateway: they are cached
 * in memory, re-read from the database on a miss (the CLI creates them in
 * another process) and dropped when the registry reloads (a revocation
 * bumps config_version). Their last use is written at most once a minute.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-mcp"

#include "config.h"

#include <string.h>

#include "pooler-api-error.h"
#include "pooler-error.h"
#include "pooler-json.h"
#include "pooler-jsonrpc.h"
#include "pooler-keys.h"
#include "pooler-mcp.h"
#include "pooler-mcp-tools.h"

/* Newest first: an initialize asking for something else gets the first. */
static const char * const negotiable_versions[] = { "2025-11-25", "2025-06-18" };
/* What a request's MCP-Protocol-Version header may say (the conformance
 * suite sends 2025-03-26 after negotiating a newer one). */
static const char * const accepted_versions[] = { "2025-11-25", "2025-06-18", "2025-03-26" };

#define TOUCH_INTERVAL_SECONDS 60

#define INSTRUCTIONS \
  "Read-only view of the local Codex Pooler: Pools, accounts (health, quota windows, " \
  "cooldowns), Pool keys by prefix, the request log with attempts, the audit log, and " \
  "explain_routing for why a request would go where it goes. Nothing here changes the " \
  "pooler. Secrets, prompts and bodies are never returned; e-mail addresses are masked."

typedef struct
{
  PoolerMcpTokenRecord *record;
  gint64                touched_at;   /* last write of last_used_at */
} CachedToken;

struct _PoolerMcp
{
  GObject        parent_instance;

  PoolerService *service;
  GHashTable    *tokens;     /* prefix -> CachedToken */
};

G_DEFINE_FINAL_TYPE (PoolerMcp, pooler_mcp, G_TYPE_OBJECT)

static void
cached_token_free (gpointer data)
{
  CachedToken *cached = data;

  pooler_mcp_token_record_free (cached->record);
  g_free (cached);
}

static void
on_registry_changed (PoolerService *service,
                     gpointer       user_data)
{
  PoolerMcp *self = user_data;

  g_hash_table_remove_all (self->tokens);
}

static void
pooler_mcp_dispose (GObject *object)
{
  PoolerMcp *self = (PoolerMcp *)object;

  g_clear_object (&self->service);

  G_OBJECT_CLASS (pooler_mcp_parent_class)->dispose (object);
}

static void
pooler_mcp_finalize (GObject *object)
{
  PoolerMcp *self = (PoolerMcp *)object;

  g_clear_pointer (&self->tokens, g_hash_table_unref);

  G_OBJECT_CLASS (pooler_mcp_parent_class)->finalize (object);
}

static void
pooler_mcp_class_init (PoolerMcpClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = pooler_mcp_dispose;
  object_class->finalize = pooler_mcp_finalize;
}

static void
pooler_mcp_init (PoolerMcp *self)
{
  self->tokens = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, cached_token_free);
}

PoolerMcp *
pooler_mcp_new (PoolerService *service)
{
  PoolerMcp *self;

  g_return_val_if_fail (POOLER_IS_SERVICE (service), NULL);

  self = g_object_new (POOLER_TYPE_MCP, NULL);
  self->service = g_object_ref (service);
  g_signal_connect_object (service, "registry-changed", G_CALLBACK (on_registry_changed),
                           self, G_CONNECT_DEFAULT);

  return self;
}

/* ---- answers -------------------------------------------------------------- */

static void
respond_bytes (SoupServerMessage *msg,
               guint              status,
               GBytes            *body)
{
  gsize size;
  const char *data = g_bytes_get_data (body, &size);

  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, data, size);
}

/* A transport-level refusal, shaped as the reference SDK does it: a
 * JSON-RPC error without an id. */
static void
respond_transport_error (SoupServerMessage *msg,
                         guint              status,
                         int                code,
                         const char        *message)
{
  g_autoptr(GBytes) body = pooler_jsonrpc_build_error (NULL, code, message, NULL);

  respond_bytes (msg, status, body);
}

static void
respond_accepted (SoupServerMessage *msg)
{
  soup_server_message_set_status (msg, SOUP_STATUS_ACCEPTED, NULL);
  soup_server_message_set_response (msg, NULL, SOUP_MEMORY_STATIC, NULL, 0);
}

/* ---- checks --------------------------------------------------------------- */

static char *
bearer_token (SoupMessageHeaders *headers)
{
  const char *value = soup_message_headers_get_one (headers, "Authorization");

  if (value == NULL || g_ascii_strncasecmp (value, "Bearer ", 7) != 0)
    return NULL;

  return g_strstrip (g_strdup (value + 7));
}

static PoolerMcpTokenRecord *
lookup_token (PoolerMcp  *self,
              const char *prefix)
{
  CachedToken *cached = g_hash_table_lookup (self->tokens, prefix);
  g_autoptr(GError) error = NULL;
  PoolerMcpTokenRecord *record;

  if (cached != NULL)
    return cached->record;

  record = pooler_store_find_mcp_token (pooler_service_get_store (self->service), prefix, &error);
  if (record == NULL)
    {
      if (!g_error_matches (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND))
        g_warning ("Could not look up an operator token: %s", error->message);
      return NULL;
    }

  cached = g_new0 (CachedToken, 1);
  cached->record = record;
  cached->touched_at = record->last_used_at;
  g_hash_table_insert (self->tokens, g_strdup (prefix), cached);

  return record;
}

static void
touch_token (PoolerMcp  *self,
             const char *prefix)
{
  CachedToken *cached = g_hash_table_lookup (self->tokens, prefix);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  g_autoptr(GError) error = NULL;

  if (cached == NULL || now - cached->touched_at < TOUCH_INTERVAL_SECONDS)
    return;

  cached->touched_at = now;
  cached->record->last_used_at = now;
  /* Through the writer when serving: a write here could wait up to the
   * busy timeout for another process's transaction, with every
   * connection of the main loop waiting too. */
  if (!pooler_service_touch_mcp_token (self->service, prefix, now) &&
      !pooler_store_touch_mcp_token (pooler_service_get_store (self->service), prefix, now, &error))
    g_debug ("Could not record an operator token's use: %s", error->message);
}

void
pooler_mcp_respond_unauthorized (SoupServerMessage *msg,
                                 const char        *reason)
{
  pooler_api_error_respond (msg, SOUP_STATUS_UNAUTHORIZED, "invalid_request_error",
                            "invalid_operator_token", NULL, reason);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "WWW-Authenticate", "Bearer realm=\"codex-pooler\"");
}

/* TRUE when the request carries a valid, active operator token. */
static gboolean
check_token (PoolerMcp          *self,
             SoupMessageHeaders *headers,
             const char        **out_message)
{
  g_autofree char *token = bearer_token (headers);
  g_autofree char *prefix = NULL;
  g_autofree char *secret = NULL;
  g_autofree char *digest = NULL;
  PoolerMcpTokenRecord *record;

  if (token == NULL)
    {
      *out_message = "An operator token is required: Authorization: Bearer mcp-cxp-...";
      return FALSE;
    }
  if (!pooler_key_split (POOLER_KEY_KIND_MCP, token, &prefix, &secret))
    {
      *out_message = g_str_has_prefix (token, POOLER_KEY_KIND_POOL)
                     ? "Pool keys do not open /mcp; use an operator token (codex-pooler mcp-token create)."
                     : "That is not an operator token.";
      return FALSE;
    }

  record = lookup_token (self, prefix);
  digest = pooler_key_hash_secret (secret);
  /* Unknown prefix and wrong secret look the same from outside. */
  if (record == NULL || !pooler_key_digest_equal (digest, record->secret_sha256))
    {
      *out_message = "Unknown operator token.";
      return FALSE;
    }
  if (record->revoked)
    {
      *out_message = "This operator token was revoked.";
      return FALSE;
    }

  touch_token (self, prefix);
  return TRUE;
}

static gboolean
media_type_is (const char *value,
               const char *type)
{
  gsize length = strlen (type);

  if (value == NULL)
    return FALSE;
  while (*value == ' ')
    value++;

  return g_ascii_strncasecmp (value, type, length) == 0 &&
         (value[length] == '\0' || value[length] == ';' || value[length] == ' ');
}

/* Lenient: a missing Accept, * / *, application/ * or application/json. */
static gboolean
accept_allows_json (SoupMessageHeaders *headers)
{
  const char *accept = soup_message_headers_get_list (headers, "Accept");
  g_auto(GStrv) types = NULL;

  if (accept == NULL)
    return TRUE;

  types = g_strsplit (accept, ",", -1);
  for (guint i = 0; types[i] != NULL; i++)
    if (media_type_is (types[i], "application/json") || media_type_is (types[i], "*/*") ||
        media_type_is (types[i], "application/*"))
      return TRUE;

  return FALSE;
}

static gboolean
version_in (const char         *version,
            const char * const *versions,
            guint               count)
{
  for (guint i = 0; i < count; i++)
    if (g_strcmp0 (version, versions[i]) == 0)
      return TRUE;

  return FALSE;
}

/* ---- methods -------------------------------------------------------------- */

static JsonNode *
object_node (JsonObject *object)
{
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  json_node_take_object (node, object);
  return node;
}

static JsonNode *
handle_initialize (JsonObject  *params,
                   GError     **error)
{
  const char *requested = params != NULL
                          ? pooler_json_get_string (params, "protocolVersion")
                          : NULL;
  JsonObject *result = json_object_new ();
  JsonObject *capabilities = json_object_new ();
  JsonObject *tools = json_object_new ();
  JsonObject *resources = json_object_new ();
  JsonObject *server = json_object_new ();

  if (params == NULL || requested == NULL)
    {
      json_object_unref (result);
      json_object_unref (capabilities);
      json_object_unref (tools);
      json_object_unref (resources);
      json_object_unref (server);
      g_set_error_literal (error, POOLER_JSONRPC_ERROR, POOLER_JSONRPC_INVALID_PARAMS,
                           "Invalid params: “protocolVersion” is required and must be a string");
      return NULL;
    }

  json_object_set_string_member (result, "protocolVersion",
                                 version_in (requested, negotiable_versions,
                                             G_N_ELEMENTS (negotiable_versions))
                                 ? requested : negotiable_versions[0]);

  json_object_set_boolean_member (tools, "listChanged", FALSE);
  json_object_set_object_member (capabilities, "tools", tools);
  json_object_set_boolean_member (resources, "listChanged", FALSE);
  json_object_set_boolean_member (resources, "subscribe", FALSE);
  json_object_set_object_member (capabilities, "resources", resources);
  json_object_set_object_member (result, "capabilities", capabilities);

  json_object_set_string_member (server, "name", POOLER_MCP_SERVER_NAME);
  json_object_set_string_member (server, "title", "Codex Pooler");
  json_object_set_string_member (server, "version", PACKAGE_VERSION);
  json_object_set_object_member (result, "serverInfo", server);
  json_object_set_string_member (result, "instructions", INSTRUCTIONS);

  return object_node (result);
}

static JsonNode *
handle_tools_call (PoolerMcp   *self,
                   JsonObject  *params,
                   GError     **error)
{
  const char *name = params != NULL
                     ? pooler_json_get_string (params, "name") : NULL;
  JsonNode *arguments = params != NULL ? json_object_get_member (params, "arguments") : NULL;
  g_autoptr(JsonNode) structured = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autofree char *text = NULL;
  JsonObject *result;
  JsonArray *content;
  JsonObject *item;

  if (name == NULL)
    {
      g_set_error_literal (error, POOLER_JSONRPC_ERROR, POOLER_JSONRPC_INVALID_PARAMS,
                           "Invalid params: “name” must be a tool name");
      return NULL;
    }
  if (arguments != NULL && !JSON_NODE_HOLDS_OBJECT (arguments) && !JSON_NODE_HOLDS_NULL (arguments))
    {
      g_set_error_literal (error, POOLER_JSONRPC_ERROR, POOLER_JSONRPC_INVALID_PARAMS,
                           "Invalid params: “arguments” must be an object");
      return NULL;
    }

  structured = pooler_mcp_tools_call (self->service, name,
                                      arguments != NULL && JSON_NODE_HOLDS_OBJECT (arguments)
                                      ? json_node_get_object (arguments) : NULL,
                                      &local_error);
  if (structured == NULL && local_error->domain == POOLER_MCP_TOOL_ERROR)
    {
      /* The tool refused or failed: a result the model reads (SEP-1303). */
      item = json_object_new ();
      json_object_set_string_member (item, "type", "text");
      json_object_set_string_member (item, "text", local_error->message);
      content = json_array_new ();
      json_array_add_object_element (content, item);
      result = json_object_new ();
      json_object_set_array_member (result, "content", content);
      json_object_set_boolean_member (result, "isError", TRUE);
      return object_node (result);
    }
  if (structured == NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }

  /* The same JSON as text, for clients that ignore structuredContent. */
  text = pooler_jsonrpc_to_string (structured, NULL);
  item = json_object_new ();
  json_object_set_string_member (item, "type", "text");
  json_object_set_string_member (item, "text", text);
  content = json_array_new ();
  json_array_add_object_element (content, item);

  result = json_object_new ();
  json_object_set_array_member (result, "content", content);
  json_object_set_member (result, "structuredContent", g_steal_pointer (&structured));
  json_object_set_boolean_member (result, "isError", FALSE);

  return object_node (result);
}

static JsonNode *
handle_resources_read (PoolerMcp   *self,
                       JsonObject  *params,
                       GError     **error)
{
  const char *uri = params != NULL
                    ? pooler_json_get_string (params, "uri") : NULL;
  g_autoptr(JsonNode) document = NULL;
  g_autofree char *text = NULL;
  JsonObject *result;
  JsonObject *item;
  JsonArray *contents;

  if (uri == NULL)
    {
      g_set_error_literal (error, POOLER_JSONRPC_ERROR, POOLER_JSONRPC_INVALID_PARAMS,
                           "Invalid params: “uri” is required");
      return NULL;
    }

  document = pooler_mcp_resources_read (self->service, uri, error);
  if (document == NULL)
    return NULL;

  text = pooler_jsonrpc_to_string (document, NULL);
  item = json_object_new ();
  json_object_set_string_member (item, "uri", uri);
  json_object_set_string_member (item, "mimeType", "application/json");
  json_object_set_string_member (item, "text", text);
  contents = json_array_new ();
  json_array_add_object_element (contents, item);

  result = json_object_new ();
  json_object_set_array_member (result, "contents", contents);

  return object_node (result);
}

static JsonNode *
list_result (const char *member,
             JsonArray  *items)
{
  JsonObject *result = json_object_new ();

  json_object_set_array_member (result, member, items);
  return object_node (result);
}

static JsonNode *
dispatch (PoolerMcp             *self,
          PoolerJsonRpcMessage  *message,
          GError               **error)
{
  const char *method = message->method;
  g_autofree char *excerpt = NULL;

  if (strcmp (method, "initialize") == 0)
    return handle_initialize (message->params, error);
  if (strcmp (method, "ping") == 0)
    return object_node (json_object_new ());
  if (strcmp (method, "tools/list") == 0)
    return list_result ("tools", pooler_mcp_tools_list ());
  if (strcmp (method, "tools/call") == 0)
    return handle_tools_call (self, message->params, error);
  if (strcmp (method, "resources/list") == 0)
    return list_result ("resources", pooler_mcp_resources_list ());
  if (strcmp (method, "resources/templates/list") == 0)
    return list_result ("resourceTemplates", json_array_new ());
  if (strcmp (method, "resources/read") == 0)
    return handle_resources_read (self, message->params, error);

  excerpt = pooler_jsonrpc_excerpt (method);
  g_set_error (error, POOLER_JSONRPC_ERROR, POOLER_JSONRPC_METHOD_NOT_FOUND,
               "Method not found: %s", excerpt);
  return NULL;
}

static void
handle_post (PoolerMcp         *self,
             SoupServerMessage *msg)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *version = soup_message_headers_get_one (headers, "MCP-Protocol-Version");
  const char *encoding = soup_message_headers_get_one (headers, "Content-Encoding");
  const char *reason = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(PoolerJsonRpcMessage) message = NULL;
  g_autoptr(JsonNode) id = NULL;
  g_autoptr(JsonNode) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) answer = NULL;
  gsize size;
  const char *data;

  if (!check_token (self, headers, &reason))
    {
      pooler_mcp_respond_unauthorized (msg, reason);
      return;
    }

  if (!media_type_is (soup_message_headers_get_one (headers, "Content-Type"), "application/json") ||
      (encoding != NULL && g_ascii_strcasecmp (encoding, "identity") != 0))
    {
      respond_transport_error (msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE, POOLER_JSONRPC_SERVER_ERROR,
                               "Unsupported Media Type: the body must be uncompressed application/json");
      return;
    }
  if (!accept_allows_json (headers))
    {
      respond_transport_error (msg, SOUP_STATUS_NOT_ACCEPTABLE, POOLER_JSONRPC_SERVER_ERROR,
                               "Not Acceptable: the client must accept application/json");
      return;
    }
  if (version != NULL && !version_in (version, accepted_versions, G_N_ELEMENTS (accepted_versions)))
    {
      respond_transport_error (msg, SOUP_STATUS_BAD_REQUEST, POOLER_JSONRPC_SERVER_ERROR,
                               "Bad Request: unsupported MCP-Protocol-Version");
      return;
    }

  body = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  data = g_bytes_get_data (body, &size);
  if (size > POOLER_MCP_MAX_BODY)
    {
      respond_transport_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, POOLER_JSONRPC_SERVER_ERROR,
                               "Payload Too Large: /mcp accepts up to 1 MiB");
      return;
    }

  message = pooler_jsonrpc_parse (data, size, &id, &error);
  if (message == NULL)
    {
      answer = pooler_jsonrpc_build_error (id, error->code, error->message, NULL);
      respond_bytes (msg, SOUP_STATUS_BAD_REQUEST, answer);
      return;
    }

  if (message->kind != POOLER_JSONRPC_REQUEST)
    {
      respond_accepted (msg);
      return;
    }

  g_debug ("MCP %s", message->method);
  result = dispatch (self, message, &error);
  if (result != NULL)
    answer = pooler_jsonrpc_build_result (message->id, g_steal_pointer (&result));
  else
    answer = pooler_jsonrpc_build_error (message->id,
                                         error->domain == POOLER_JSONRPC_ERROR
                                         ? error->code : POOLER_JSONRPC_INTERNAL_ERROR,
                                         error->message, NULL);

  /* Method-level errors still travel in a 200, as JSON-RPC over HTTP does. */
  respond_bytes (msg, SOUP_STATUS_OK, answer);
}

void
pooler_mcp_handle (PoolerMcp         *self,
                   SoupServerMessage *msg)
{
  g_return_if_fail (POOLER_IS_MCP (self));
  g_return_if_fail (SOUP_IS_SERVER_MESSAGE (msg));

  if (soup_server_message_get_method (msg) != SOUP_METHOD_POST)
    {
      respond_transport_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, POOLER_JSONRPC_SERVER_ERROR,
                               "Method Not Allowed: /mcp takes POST only (no SSE stream, no sessions)");
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow", "POST");
      return;
    }

  handle_post (self, msg);
}

gboolean
pooler_mcp_authorize (PoolerMcp          *self,
                      SoupMessageHeaders *headers,
                      const char        **out_reason)
{
  const char *reason = NULL;
  gboolean ok;

  g_return_val_if_fail (POOLER_IS_MCP (self), FALSE);

  ok = check_token (self, headers, &reason);
  if (out_reason != NULL)
    *out_reason = reason;
  return ok;
}
