/* pooler-mcp-tools.c
 *
 * Schemas are written below as JSON with single quotes (no apostrophes in
 * the text) and turned into real JSON when loaded, which keeps them
 * readable. One small checker validates arguments against the input
 * schema before a tool runs, so tools read their arguments as given.
 *
 * Routing is explained without touching the router that serves: a fresh
 * PoolerRouter (same quota evidence, no round-robin cursor) orders the
 * Pool, and the serving router only answers questions that do not change
 * it (why an account is out, whether it is demoted).
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-mcp"

#include "config.h"

#include <string.h>

#include "pooler-error.h"
#include "pooler-json.h"
#include "pooler-jsonrpc.h"
#include "pooler-mcp-tools.h"
#include "pooler-redact.h"

#define DEFAULT_PAGE 25
#define MAX_PAGE     100
#define REQUEST_CURSOR_TAG "r1"
#define AUDIT_CURSOR_TAG   "a1"

/* ---- schemas -------------------------------------------------------------- */

#define NSTRING "{'type':['string','null']}"
#define NTIME   "{'type':['string','null'],'description':'ISO 8601, UTC; null when unknown or never'}"
#define NINT    "{'type':['integer','null']}"

/* A closed object: only the listed properties, @required among them. */
#define OBJECT(required, properties) \
  "{'type':'object','additionalProperties':false,'required':[" required "]," \
  "'properties':{" properties "}}"

#define WINDOW_SCHEMA \
  OBJECT ("'limit_id','limit_name','kind','window_minutes','used_percent','resets_at','observed_at','fresh'", \
          "'limit_id':{'type':'string'},'limit_name':" NSTRING "," \
          "'kind':{'type':'string','description':'5h, weekly, or the length'}," \
          "'window_minutes':{'type':'integer'},'used_percent':{'type':'number'}," \
          "'resets_at':" NTIME ",'observed_at':" NTIME ",'fresh':{'type':'boolean'}")

#define QUOTA_SCHEMA \
  OBJECT ("'plan_type','spent','spent_until','stale','remaining_percent','last_observed_at','windows'", \
          "'plan_type':" NSTRING ",'spent':{'type':'boolean'},'spent_until':" NTIME "," \
          "'stale':{'type':'boolean'},'remaining_percent':{'type':['number','null']}," \
          "'last_observed_at':" NTIME ",'windows':{'type':'array','items':" WINDOW_SCHEMA "}")

#define ACCOUNT_SCHEMA \
  OBJECT ("'id','label','email','plan','status','usable','reason','health','priority','pools'," \
          "'cooldown_until','token_expires_at','last_used_at','last_error','quota'", \
          "'id':{'type':'string'},'label':" NSTRING ",'email':" NSTRING "," \
          "'plan':" NSTRING ",'status':{'type':'string','enum':['active','paused','reauth_required']}," \
          "'usable':{'type':'boolean','description':'whether the router may pick it now'}," \
          "'reason':{'type':['string','null'],'description':'why it is not usable'}," \
          "'health':{'type':'string','enum':['ok','demoted','circuit_open']}," \
          "'priority':{'type':'integer'},'pools':{'type':'array','items':{'type':'string'}}," \
          "'cooldown_until':" NTIME ",'token_expires_at':" NTIME ",'last_used_at':" NTIME "," \
          "'last_error':" NSTRING ",'quota':" QUOTA_SCHEMA)

#define MEMBER_SCHEMA \
  OBJECT ("'id','label','email','status','usable','reason'", \
          "'id':{'type':'string'},'label':" NSTRING ",'email':" NSTRING "," \
          "'status':{'type':'string'},'usable':{'type':'boolean'},'reason':" NSTRING)

#define POOL_PROPERTIES \
  "'slug':{'type':'string'},'name':{'type':'string'},'strategy':{'type':'string'}," \
  "'created_at':" NTIME ",'account_count':{'type':'integer'}," \
  "'usable_accounts':{'type':'integer'},'active_keys':{'type':'integer'}"
#define POOL_REQUIRED \
  "'slug','name','strategy','created_at','account_count','usable_accounts','active_keys'"

#define POOL_SCHEMA OBJECT (POOL_REQUIRED, POOL_PROPERTIES)

#define POOL_DETAIL_SCHEMA \
  OBJECT (POOL_REQUIRED ",'accounts'", \
          POOL_PROPERTIES ",'accounts':{'type':'array','items':" MEMBER_SCHEMA "}")

#define KEY_SCHEMA \
  OBJECT ("'prefix','name','pool','status','created_at','expires_at','last_used_at','allowed_models'", \
          "'prefix':{'type':'string'},'name':" NSTRING ",'pool':" NSTRING "," \
          "'status':{'type':'string','enum':['active','revoked','expired']}," \
          "'created_at':" NTIME ",'expires_at':" NTIME ",'last_used_at':" NTIME "," \
          "'allowed_models':{'type':['array','null'],'items':{'type':'string'}}")

#define ATTEMPT_SCHEMA \
  OBJECT ("'attempt','account_id','upstream_status','error_code','started_at','duration_ms'", \
          "'attempt':{'type':'integer'},'account_id':" NSTRING "," \
          "'upstream_status':{'type':'integer'},'error_code':" NSTRING "," \
          "'started_at':" NTIME ",'duration_ms':{'type':'integer'}")

/* pooler_request_record_to_json() writes these (POOLER_REQUEST_JSON_MCP). */
#define REQUEST_SCHEMA \
  OBJECT ("'id','started_at','state','pool','key_prefix','account_id','model','endpoint'," \
          "'transport','status','upstream_status','latency_ms','ttfb_ms','input_tokens','output_tokens'," \
          "'cached_tokens','reasoning_tokens','error_code','attempts'", \
          "'id':{'type':'string'},'started_at':" NTIME "," \
          "'state':{'type':'string','enum':['in_flight','completed','interrupted']}," \
          "'pool':" NSTRING ",'key_prefix':" NSTRING ",'account_id':" NSTRING ",'model':" NSTRING "," \
          "'endpoint':" NSTRING ",'transport':" NSTRING ",'status':{'type':'integer'}," \
          "'upstream_status':{'type':'integer'},'latency_ms':{'type':'integer'},'ttfb_ms':" NINT "," \
          "'input_tokens':" NINT ",'output_tokens':" NINT ",'cached_tokens':" NINT "," \
          "'reasoning_tokens':" NINT ",'error_code':" NSTRING "," \
          "'attempts':{'type':'array','items':" ATTEMPT_SCHEMA "}")

#define AUDIT_SCHEMA \
  OBJECT ("'id','at','actor','action','target','detail'", \
          "'id':{'type':'integer'},'at':" NTIME ",'actor':{'type':'string'}," \
          "'action':{'type':'string'},'target':" NSTRING ",'detail':" NSTRING)

#define CANDIDATE_SCHEMA \
  OBJECT ("'position','account_id','label','email','tried','demoted','remaining_percent'", \
          "'position':{'type':'integer'},'account_id':{'type':'string'}," \
          "'label':" NSTRING ",'email':" NSTRING "," \
          "'tried':{'type':'boolean','description':'within the accounts one request tries'}," \
          "'demoted':{'type':'boolean','description':'failed in the last minute: tried last'}," \
          "'remaining_percent':{'type':['number','null']}")

#define EXCLUDED_SCHEMA \
  OBJECT ("'account_id','label','email','status','reason'", \
          "'account_id':{'type':'string'},'label':" NSTRING ",'email':" NSTRING "," \
          "'status':{'type':'string'},'reason':{'type':'string'}")

#define STATUS_SCHEMA \
  OBJECT ("'server','protocol_versions','serving','schema_version','pools','accounts','keys','requests_24h'", \
          "'server':" OBJECT ("'name','version'", "'name':{'type':'string'},'version':{'type':'string'}") "," \
          "'protocol_versions':{'type':'array','items':{'type':'string'}}," \
          "'serving':{'type':'boolean'},'schema_version':{'type':'integer'},'pools':{'type':'integer'}," \
          "'accounts':" OBJECT ("'total','active','paused','reauth_required','usable'", \
                                "'total':{'type':'integer'},'active':{'type':'integer'},'paused':{'type':'integer'}," \
                                "'reauth_required':{'type':'integer'},'usable':{'type':'integer'}") "," \
          "'keys':" OBJECT ("'total','active'", "'total':{'type':'integer'},'active':{'type':'integer'}") "," \
          "'requests_24h':" OBJECT ("'total','failed'", "'total':{'type':'integer'},'failed':{'type':'integer'}"))

/* Tool arguments: a closed object whose properties are all optional. */
#define ARGUMENTS(properties) \
  "{'type':'object','additionalProperties':false,'properties':{" properties "}}"

#define NO_ARGUMENTS ARGUMENTS ("")

#define POOL_ARGUMENT "'pool':{'type':'string','minLength':1,'maxLength':64,'description':'the Pool slug'}"
#define LIMIT_ARGUMENT \
  "'limit':{'type':'integer','minimum':1,'maximum':100,'description':'page size (default 25)'}"
#define CURSOR_ARGUMENT \
  "'cursor':{'type':'string','maxLength':256,'description':'next_cursor of the previous page'}"

typedef struct _ToolContext ToolContext;

typedef JsonNode *(*ToolFunc) (ToolContext  *ctx,
                               JsonObject   *args,
                               GError      **error);

typedef struct
{
  const char *name;
  const char *title;
  const char *description;
  const char *input_schema;
  const char *output_schema;
  ToolFunc    run;
} Tool;

struct _ToolContext
{
  PoolerService *service;
  PoolerStore   *store;
  PoolerRouter  *router;
  gint64         now;
};

/* Turns a single-quoted schema into JSON. */
static JsonNode *
load_schema (const char *text)
{
  g_autofree char *json = g_strdelimit (g_strdup (text), "'", '"');
  g_autoptr(GError) error = NULL;
  JsonNode *node = pooler_json_parse (json, strlen (json), &error);

  if (node == NULL)
    g_error ("A built-in MCP schema does not parse: %s", error->message);

  return node;
}

/* ---- output helpers ------------------------------------------------------- */

static void
add_string (JsonBuilder *builder,
            const char  *name,
            const char  *value)
{
  json_builder_set_member_name (builder, name);
  if (value != NULL)
    json_builder_add_string_value (builder, value);
  else
    json_builder_add_null_value (builder);
}

/* A free-text value with every e-mail address in it masked. */
static void
add_text (JsonBuilder *builder,
          const char  *name,
          const char  *value)
{
  g_autofree char *redacted = pooler_redact_text (value);

  add_string (builder, name, redacted);
}

static void
add_email (JsonBuilder *builder,
           const char  *name,
           const char  *value)
{
  g_autofree char *redacted = pooler_redact_email (value);

  add_string (builder, name, redacted);
}

static void
add_int (JsonBuilder *builder,
         const char  *name,
         gint64       value)
{
  json_builder_set_member_name (builder, name);
  json_builder_add_int_value (builder, value);
}

static void
add_bool (JsonBuilder *builder,
          const char  *name,
          gboolean     value)
{
  json_builder_set_member_name (builder, name);
  json_builder_add_boolean_value (builder, value);
}

/* Negative: null. */
static void
add_percent (JsonBuilder *builder,
             const char  *name,
             double       value)
{
  json_builder_set_member_name (builder, name);
  if (value >= 0)
    json_builder_add_double_value (builder, value);
  else
    json_builder_add_null_value (builder);
}

static void
add_time (JsonBuilder *builder,
          const char  *name,
          gint64       unix_seconds)
{
  g_autoptr(GDateTime) time = NULL;
  g_autofree char *text = NULL;

  if (unix_seconds > 0)
    time = g_date_time_new_from_unix_utc (unix_seconds);
  if (time != NULL)
    text = g_date_time_format (time, "%Y-%m-%dT%H:%M:%SZ");

  add_string (builder, name, text);
}

static void
add_strv (JsonBuilder        *builder,
          const char         *name,
          const char * const *values)
{
  json_builder_set_member_name (builder, name);
  if (values == NULL)
    {
      json_builder_add_null_value (builder);
      return;
    }

  json_builder_begin_array (builder);
  for (guint i = 0; values[i] != NULL; i++)
    json_builder_add_string_value (builder, values[i]);
  json_builder_end_array (builder);
}

static gboolean
internal_error (GError       **error,
                const GError  *cause)
{
  /* Database messages name tables, never values; still keep it short. */
  g_set_error (error, POOLER_JSONRPC_ERROR, POOLER_JSONRPC_INTERNAL_ERROR,
               "Internal error: %s", cause != NULL ? cause->message : "unknown");
  return FALSE;
}

static gboolean
invalid_argument (GError     **error,
                  const char  *argument,
                  const char  *what)
{
  g_set_error (error, POOLER_JSONRPC_ERROR, POOLER_JSONRPC_INVALID_PARAMS,
               "Invalid params: argument “%s” %s", argument, what);
  return FALSE;
}

/* A store lookup failed: NOT_FOUND means @argument names nothing (@what
 * says so); anything else is ours. */
static gboolean
lookup_error (GError       **error,
              const GError  *cause,
              const char    *argument,
              const char    *what)
{
  if (g_error_matches (cause, POOLER_ERROR, POOLER_ERROR_NOT_FOUND))
    return invalid_argument (error, argument, what);

  return internal_error (error, cause);
}

/* ---- argument checking ---------------------------------------------------- */

static gboolean
value_has_type (JsonNode   *value,
                const char *type)
{
  if (g_strcmp0 (type, "string") == 0)
    return JSON_NODE_HOLDS_VALUE (value) && json_node_get_value_type (value) == G_TYPE_STRING;
  if (g_strcmp0 (type, "integer") == 0)
    return JSON_NODE_HOLDS_VALUE (value) && json_node_get_value_type (value) == G_TYPE_INT64;
  if (g_strcmp0 (type, "boolean") == 0)
    return JSON_NODE_HOLDS_VALUE (value) && json_node_get_value_type (value) == G_TYPE_BOOLEAN;

  return FALSE;
}

/* Checks @args against the subset of JSON Schema our input schemas use:
 * a strict object of string/integer/boolean properties with required,
 * enum, minLength/maxLength and minimum/maximum. */
static gboolean
check_arguments (JsonObject  *schema,
                 JsonObject  *args,
                 GError     **error)
{
  JsonObject *properties = json_object_get_object_member (schema, "properties");
  JsonArray *required = json_object_has_member (schema, "required")
                        ? json_object_get_array_member (schema, "required") : NULL;
  g_autoptr(GList) names = json_object_get_members (args);

  for (guint i = 0; required != NULL && i < json_array_get_length (required); i++)
    {
      const char *name = json_array_get_string_element (required, i);

      if (!json_object_has_member (args, name))
        return invalid_argument (error, name, "is required");
    }

  for (GList *l = names; l != NULL; l = l->next)
    {
      const char *name = l->data;
      JsonNode *value = json_object_get_member (args, name);
      JsonObject *property = properties != NULL && json_object_has_member (properties, name)
                             ? json_object_get_object_member (properties, name) : NULL;
      const char *type;

      if (property == NULL)
        {
          g_autofree char *excerpt = pooler_jsonrpc_excerpt (name);

          g_set_error (error, POOLER_JSONRPC_ERROR, POOLER_JSONRPC_INVALID_PARAMS,
                       "Invalid params: unknown argument “%s”", excerpt);
          return FALSE;
        }

      type = json_object_get_string_member (property, "type");
      if (!value_has_type (value, type))
        {
          g_autofree char *what = g_strdup_printf ("must be a%s %s",
                                                   g_strcmp0 (type, "integer") == 0 ? "n" : "",
                                                   type);
          return invalid_argument (error, name, what);
        }

      if (g_strcmp0 (type, "string") == 0)
        {
          const char *text = json_node_get_string (value);
          glong length = g_utf8_strlen (text, -1);

          if (json_object_has_member (property, "minLength") &&
              length < json_object_get_int_member (property, "minLength"))
            return invalid_argument (error, name, "is too short");
          if (json_object_has_member (property, "maxLength") &&
              length > json_object_get_int_member (property, "maxLength"))
            return invalid_argument (error, name, "is too long");
          if (json_object_has_member (property, "enum"))
            {
              JsonArray *choices = json_object_get_array_member (property, "enum");
              gboolean found = FALSE;

              for (guint i = 0; !found && i < json_array_get_length (choices); i++)
                found = g_strcmp0 (json_array_get_string_element (choices, i), text) == 0;
              if (!found)
                return invalid_argument (error, name, "is not one of the allowed values");
            }
        }
      else if (g_strcmp0 (type, "integer") == 0)
        {
          gint64 number = json_node_get_int (value);

          if (json_object_has_member (property, "minimum") &&
              number < json_object_get_int_member (property, "minimum"))
            return invalid_argument (error, name, "is too small");
          if (json_object_has_member (property, "maximum") &&
              number > json_object_get_int_member (property, "maximum"))
            return invalid_argument (error, name, "is too large");
        }
    }

  return TRUE;
}

static const char *
arg_string (JsonObject *args,
            const char *name)
{
  return pooler_json_get_string (args, name);
}

static gint64
arg_int (JsonObject *args,
         const char *name,
         gint64      fallback)
{
  return json_object_get_int_member_with_default (args, name, fallback);
}

/* ---- shared pieces -------------------------------------------------------- */

static PoolerQuotaState *
quota_lookup (PoolerAccount *account,
              gpointer       user_data)
{
  return pooler_service_get_quota (user_data, pooler_account_get_id (account));
}

static PoolerAccount *
find_account (ToolContext *ctx,
              const char  *id)
{
  g_autoptr(GPtrArray) accounts = pooler_service_list_accounts (ctx->service);

  for (guint i = 0; i < accounts->len; i++)
    {
      PoolerAccount *account = g_ptr_array_index (accounts, i);

      if (g_strcmp0 (pooler_account_get_id (account), id) == 0)
        return g_object_ref (account);
    }

  return NULL;
}

static int
compare_accounts (gconstpointer pa,
                  gconstpointer pb)
{
  PoolerAccount *a = *(PoolerAccount **) pa;
  PoolerAccount *b = *(PoolerAccount **) pb;

  return g_strcmp0 (pooler_account_get_id (a), pooler_account_get_id (b));
}

/* The Pool named @slug, live from the registry when it is there. */
static PoolerPool *
find_pool (ToolContext  *ctx,
           const char   *slug,
           GError      **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autoptr(PoolerPool) stored = pooler_store_find_pool (ctx->store, slug, &local_error);
  PoolerPool *live;

  if (stored == NULL)
    {
      lookup_error (error, local_error, "pool", "names no Pool");
      return NULL;
    }

  live = pooler_service_lookup_pool (ctx->service, pooler_pool_get_id (stored));
  return live != NULL ? g_object_ref (live) : g_steal_pointer (&stored);
}

static GPtrArray *
pool_members (ToolContext *ctx,
              PoolerPool  *pool)
{
  GPtrArray *members = pooler_service_get_pool_accounts (ctx->service, pooler_pool_get_id (pool));
  GPtrArray *copy = g_ptr_array_new_with_free_func (g_object_unref);

  for (guint i = 0; members != NULL && i < members->len; i++)
    g_ptr_array_add (copy, g_object_ref (g_ptr_array_index (members, i)));

  return copy;
}

static void
build_quota (ToolContext   *ctx,
             JsonBuilder   *builder,
             PoolerAccount *account)
{
  PoolerQuotaState *state = pooler_service_get_quota (ctx->service, pooler_account_get_id (account));
  gint64 spent_until = 0;
  gboolean spent = state != NULL && pooler_quota_state_is_spent (state, ctx->now, &spent_until);
  GPtrArray *windows = state != NULL ? pooler_quota_state_get_windows (state) : NULL;

  json_builder_set_member_name (builder, "quota");
  json_builder_begin_object (builder);
  add_string (builder, "plan_type", state != NULL ? pooler_quota_state_get_plan_type (state) : NULL);
  add_bool (builder, "spent", spent);
  add_time (builder, "spent_until", spent ? spent_until : 0);
  add_bool (builder, "stale", state == NULL || pooler_quota_state_is_stale (state, ctx->now));
  add_percent (builder, "remaining_percent",
               state != NULL ? pooler_quota_state_remaining (state, ctx->now) : -1);
  add_time (builder, "last_observed_at", state != NULL ? pooler_quota_state_last_observed (state) : 0);

  json_builder_set_member_name (builder, "windows");
  json_builder_begin_array (builder);
  for (guint i = 0; windows != NULL && i < windows->len; i++)
    {
      PoolerQuotaWindow *window = g_ptr_array_index (windows, i);
      g_autofree char *kind = pooler_quota_window_kind (window->window_minutes);

      json_builder_begin_object (builder);
      add_string (builder, "limit_id", window->limit_id != NULL ? window->limit_id : POOLER_QUOTA_DEFAULT_LIMIT);
      add_text (builder, "limit_name", window->limit_name);
      add_string (builder, "kind", kind);
      add_int (builder, "window_minutes", window->window_minutes);
      json_builder_set_member_name (builder, "used_percent");
      json_builder_add_double_value (builder, window->used_percent);
      add_time (builder, "resets_at", window->reset_at);
      add_time (builder, "observed_at", window->observed_at);
      add_bool (builder, "fresh", ctx->now - window->observed_at <= POOLER_QUOTA_FRESH_SECONDS);
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  json_builder_end_object (builder);
}

/* An account's id (as @id_member), label and masked e-mail. */
static void
add_account_names (JsonBuilder   *builder,
                   const char    *id_member,
                   PoolerAccount *account)
{
  add_string (builder, id_member, pooler_account_get_id (account));
  add_text (builder, "label", pooler_account_get_label (account));
  add_email (builder, "email", pooler_account_get_email (account));
}

static const char *
account_health (ToolContext   *ctx,
                PoolerAccount *account,
                const char    *reason)
{
  if (reason != NULL && g_str_has_prefix (reason, "circuit open"))
    return "circuit_open";
  if (pooler_router_is_demoted (ctx->router, account, ctx->now))
    return "demoted";

  return "ok";
}

static gboolean
build_account (ToolContext    *ctx,
               JsonBuilder    *builder,
               PoolerAccount  *account,
               GError        **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autofree char *reason = pooler_router_explain (ctx->router, account, NULL, ctx->now);
  g_auto(GStrv) pools = pooler_store_list_account_pools (ctx->store, pooler_account_get_id (account),
                                                         &local_error);

  if (pools == NULL && !g_error_matches (local_error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND))
    return internal_error (error, local_error);

  json_builder_begin_object (builder);
  add_account_names (builder, "id", account);
  add_string (builder, "plan", pooler_account_get_plan (account));
  add_string (builder, "status", pooler_account_status_to_string (pooler_account_get_status (account)));
  add_bool (builder, "usable", reason == NULL);
  add_string (builder, "reason", reason);
  add_string (builder, "health", account_health (ctx, account, reason));
  add_int (builder, "priority", pooler_account_get_priority (account));
  if (pools != NULL)
    add_strv (builder, "pools", (const char * const *) pools);
  else
    {
      json_builder_set_member_name (builder, "pools");
      json_builder_begin_array (builder);
      json_builder_end_array (builder);
    }
  add_time (builder, "cooldown_until", pooler_account_get_cooldown_until (account));
  add_time (builder, "token_expires_at", pooler_account_get_token_expires_at (account));
  add_time (builder, "last_used_at", pooler_account_get_last_used_at (account));
  add_text (builder, "last_error", pooler_account_get_last_error (account));
  build_quota (ctx, builder, account);
  json_builder_end_object (builder);

  return TRUE;
}

static const char *
key_status (ToolContext           *ctx,
            const PoolerKeyRecord *key)
{
  if (key->revoked)
    return "revoked";
  if (key->expires_at > 0 && key->expires_at <= ctx->now)
    return "expired";

  return "active";
}

static gboolean
count_active_keys (ToolContext  *ctx,
                   const char   *slug,
                   gint64       *out_count,
                   GError      **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GPtrArray) keys = pooler_store_list_keys (ctx->store, slug, &local_error);

  *out_count = 0;
  if (keys == NULL)
    return internal_error (error, local_error);

  for (guint i = 0; i < keys->len; i++)
    if (g_strcmp0 (key_status (ctx, g_ptr_array_index (keys, i)), "active") == 0)
      (*out_count)++;

  return TRUE;
}

static gboolean
build_pool_summary (ToolContext  *ctx,
                    JsonBuilder  *builder,
                    PoolerPool   *pool,
                    GPtrArray    *members,
                    GError      **error)
{
  gint64 usable = 0;
  gint64 keys = 0;

  if (!count_active_keys (ctx, pooler_pool_get_slug (pool), &keys, error))
    return FALSE;

  for (guint i = 0; i < members->len; i++)
    {
      g_autofree char *reason = pooler_router_explain (ctx->router, g_ptr_array_index (members, i),
                                                       NULL, ctx->now);
      if (reason == NULL)
        usable++;
    }

  add_string (builder, "slug", pooler_pool_get_slug (pool));
  add_text (builder, "name", pooler_pool_get_name (pool) != NULL ? pooler_pool_get_name (pool)
                                                                  : pooler_pool_get_slug (pool));
  add_string (builder, "strategy", pooler_pool_get_strategy (pool));
  add_time (builder, "created_at", pooler_pool_get_created_at (pool));
  add_int (builder, "account_count", members->len);
  add_int (builder, "usable_accounts", usable);
  add_int (builder, "active_keys", keys);

  return TRUE;
}

static JsonNode *
finish (JsonBuilder *builder)
{
  return json_builder_get_root (builder);
}

/* ---- tools ---------------------------------------------------------------- */

static JsonNode *
tool_get_status (ToolContext  *ctx,
                 JsonObject   *args,
                 GError      **error)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GPtrArray) pools = NULL;
  g_autoptr(GPtrArray) keys = NULL;
  g_autoptr(GPtrArray) accounts = pooler_service_list_accounts (ctx->service);
  gint64 counts[3] = { 0, 0, 0 };
  gint64 usable = 0, active_keys = 0, total = 0, failed = 0;

  if (!(pools = pooler_store_list_pools (ctx->store, &local_error)) ||
      !(keys = pooler_store_list_keys (ctx->store, NULL, &local_error)) ||
      !pooler_store_count_requests (ctx->store, (ctx->now - 86400) * 1000, &total, &failed, &local_error))
    {
      internal_error (error, local_error);
      return NULL;
    }

  for (guint i = 0; i < accounts->len; i++)
    {
      PoolerAccount *account = g_ptr_array_index (accounts, i);
      g_autofree char *reason = pooler_router_explain (ctx->router, account, NULL, ctx->now);
      PoolerAccountStatus status = pooler_account_get_status (account);

      if ((guint) status < G_N_ELEMENTS (counts))
        counts[status]++;
      if (reason == NULL)
        usable++;
    }
  for (guint i = 0; i < keys->len; i++)
    if (g_strcmp0 (key_status (ctx, g_ptr_array_index (keys, i)), "active") == 0)
      active_keys++;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "server");
  json_builder_begin_object (builder);
  add_string (builder, "name", POOLER_MCP_SERVER_NAME);
  add_string (builder, "version", PACKAGE_VERSION);
  json_builder_end_object (builder);
  json_builder_set_member_name (builder, "protocol_versions");
  json_builder_begin_array (builder);
  json_builder_add_string_value (builder, "2025-11-25");
  json_builder_add_string_value (builder, "2025-06-18");
  json_builder_end_array (builder);
  add_bool (builder, "serving", pooler_service_is_started (ctx->service));
  add_int (builder, "schema_version", pooler_store_get_schema_version (ctx->store));
  add_int (builder, "pools", pools->len);

  json_builder_set_member_name (builder, "accounts");
  json_builder_begin_object (builder);
  add_int (builder, "total", accounts->len);
  add_int (builder, "active", counts[POOLER_ACCOUNT_ACTIVE]);
  add_int (builder, "paused", counts[POOLER_ACCOUNT_PAUSED]);
  add_int (builder, "reauth_required", counts[POOLER_ACCOUNT_REAUTH_REQUIRED]);
  add_int (builder, "usable", usable);
  json_builder_end_object (builder);

  json_builder_set_member_name (builder, "keys");
  json_builder_begin_object (builder);
  add_int (builder, "total", keys->len);
  add_int (builder, "active", active_keys);
  json_builder_end_object (builder);

  json_builder_set_member_name (builder, "requests_24h");
  json_builder_begin_object (builder);
  add_int (builder, "total", total);
  add_int (builder, "failed", failed);
  json_builder_end_object (builder);
  json_builder_end_object (builder);

  return finish (builder);
}

static JsonNode *
tool_list_pools (ToolContext  *ctx,
                 JsonObject   *args,
                 GError      **error)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GPtrArray) pools = pooler_store_list_pools (ctx->store, &local_error);

  if (pools == NULL)
    {
      internal_error (error, local_error);
      return NULL;
    }

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "pools");
  json_builder_begin_array (builder);
  for (guint i = 0; i < pools->len; i++)
    {
      PoolerPool *stored = g_ptr_array_index (pools, i);
      PoolerPool *live = pooler_service_lookup_pool (ctx->service, pooler_pool_get_id (stored));
      PoolerPool *pool = live != NULL ? live : stored;
      g_autoptr(GPtrArray) members = pool_members (ctx, pool);

      json_builder_begin_object (builder);
      if (!build_pool_summary (ctx, builder, pool, members, error))
        return NULL;
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  json_builder_end_object (builder);

  return finish (builder);
}

static JsonNode *
tool_get_pool (ToolContext  *ctx,
               JsonObject   *args,
               GError      **error)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(PoolerPool) pool = find_pool (ctx, arg_string (args, "pool"), error);
  g_autoptr(GPtrArray) members = NULL;

  if (pool == NULL)
    return NULL;

  members = pool_members (ctx, pool);
  g_ptr_array_sort (members, compare_accounts);

  json_builder_begin_object (builder);
  if (!build_pool_summary (ctx, builder, pool, members, error))
    return NULL;
  json_builder_set_member_name (builder, "accounts");
  json_builder_begin_array (builder);
  for (guint i = 0; i < members->len; i++)
    {
      PoolerAccount *account = g_ptr_array_index (members, i);
      g_autofree char *reason = pooler_router_explain (ctx->router, account, NULL, ctx->now);

      json_builder_begin_object (builder);
      add_account_names (builder, "id", account);
      add_string (builder, "status", pooler_account_status_to_string (pooler_account_get_status (account)));
      add_bool (builder, "usable", reason == NULL);
      add_string (builder, "reason", reason);
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  json_builder_end_object (builder);

  return finish (builder);
}

static JsonNode *
tool_list_accounts (ToolContext  *ctx,
                    JsonObject   *args,
                    GError      **error)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(GPtrArray) accounts = NULL;
  const char *status = arg_string (args, "status");

  if (arg_string (args, "pool") != NULL)
    {
      g_autoptr(PoolerPool) pool = find_pool (ctx, arg_string (args, "pool"), error);

      if (pool == NULL)
        return NULL;
      accounts = pool_members (ctx, pool);
    }
  else
    accounts = pooler_service_list_accounts (ctx->service);
  g_ptr_array_sort (accounts, compare_accounts);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "accounts");
  json_builder_begin_array (builder);
  for (guint i = 0; i < accounts->len; i++)
    {
      PoolerAccount *account = g_ptr_array_index (accounts, i);

      if (status != NULL &&
          g_strcmp0 (status, pooler_account_status_to_string (pooler_account_get_status (account))) != 0)
        continue;
      if (!build_account (ctx, builder, account, error))
        return NULL;
    }
  json_builder_end_array (builder);
  json_builder_end_object (builder);

  return finish (builder);
}

static JsonNode *
tool_get_account (ToolContext  *ctx,
                  JsonObject   *args,
                  GError      **error)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(PoolerAccount) account = find_account (ctx, arg_string (args, "account"));

  if (account == NULL)
    {
      invalid_argument (error, "account", "names no account");
      return NULL;
    }

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "account");
  if (!build_account (ctx, builder, account, error))
    return NULL;
  json_builder_end_object (builder);

  return finish (builder);
}

static JsonNode *
tool_list_keys (ToolContext  *ctx,
                JsonObject   *args,
                GError      **error)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GPtrArray) keys = NULL;
  const char *pool = arg_string (args, "pool");
  const char *status = arg_string (args, "status");

  keys = pooler_store_list_keys (ctx->store, pool, &local_error);
  if (keys == NULL)
    {
      lookup_error (error, local_error, "pool", "names no Pool");
      return NULL;
    }

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "keys");
  json_builder_begin_array (builder);
  for (guint i = 0; i < keys->len; i++)
    {
      PoolerKeyRecord *key = g_ptr_array_index (keys, i);

      if (status != NULL && g_strcmp0 (status, key_status (ctx, key)) != 0)
        continue;

      /* The prefix is the key's public id; the secret hash stays home. */
      json_builder_begin_object (builder);
      add_string (builder, "prefix", key->prefix);
      add_text (builder, "name", key->name);
      add_string (builder, "pool", key->pool_slug);
      add_string (builder, "status", key_status (ctx, key));
      add_time (builder, "created_at", key->created_at);
      add_time (builder, "expires_at", key->expires_at);
      add_time (builder, "last_used_at", key->last_used_at);
      add_strv (builder, "allowed_models", (const char * const *) key->allowed_models);
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  json_builder_end_object (builder);

  return finish (builder);
}

/* Cursors are opaque to clients: base64url of "TAG:fields". */
static char *
encode_cursor (const char *plain)
{
  char *encoded = g_base64_encode ((const guchar *) plain, strlen (plain));

  g_strdelimit (encoded, "+", '-');
  g_strdelimit (encoded, "/", '_');
  return encoded;
}

/* The cursor's fields after @tag, or NULL when it is not one of ours. */
static GStrv
decode_cursor (const char *cursor,
               const char *tag,
               guint       fields)
{
  g_autofree char *copy = g_strdup (cursor);
  g_autofree guchar *plain = NULL;
  g_autofree char *text = NULL;
  g_auto(GStrv) parts = NULL;
  gsize length = 0;

  g_strdelimit (copy, "-", '+');
  g_strdelimit (copy, "_", '/');
  plain = g_base64_decode (copy, &length);
  if (plain == NULL || length == 0 || memchr (plain, '\0', length) != NULL)
    return NULL;

  text = g_strndup ((const char *) plain, length);
  if (!g_utf8_validate (text, -1, NULL))
    return NULL;
  parts = g_strsplit (text, ":", (int) fields + 1);
  if (g_strv_length (parts) != fields + 1 || g_strcmp0 (parts[0], tag) != 0)
    return NULL;

  return g_steal_pointer (&parts);
}

static gboolean
parse_since (const char  *text,
             gint64      *out_ms,
             GError     **error)
{
  g_autoptr(GTimeZone) utc = g_time_zone_new_utc ();
  g_autoptr(GDateTime) time = g_date_time_new_from_iso8601 (text, utc);

  if (time == NULL)
    return invalid_argument (error, "since", "must be an ISO 8601 date and time");

  *out_ms = g_date_time_to_unix (time) * 1000 + g_date_time_get_microsecond (time) / 1000;
  return TRUE;
}

static JsonNode *
tool_list_requests (ToolContext  *ctx,
                    JsonObject   *args,
                    GError      **error)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GPtrArray) records = NULL;
  g_auto(GStrv) cursor = NULL;
  PoolerRequestQuery query = { 0 };
  guint limit = (guint) arg_int (args, "limit", DEFAULT_PAGE);
  g_autofree char *next = NULL;

  query.pool_slug = arg_string (args, "pool");
  query.key_prefix = arg_string (args, "key_prefix");
  query.account_id = arg_string (args, "account");
  query.status = (int) arg_int (args, "status", 0);
  query.state = arg_string (args, "state");
  if (arg_string (args, "since") != NULL && !parse_since (arg_string (args, "since"), &query.since_ms, error))
    return NULL;

  if (arg_string (args, "cursor") != NULL)
    {
      char *end = NULL;

      cursor = decode_cursor (arg_string (args, "cursor"), REQUEST_CURSOR_TAG, 2);
      if (cursor != NULL)
        query.before_started_at_ms = g_ascii_strtoll (cursor[1], &end, 10);
      if (cursor == NULL || end == NULL || *end != '\0' || *cursor[2] == '\0')
        {
          invalid_argument (error, "cursor", "is not a cursor this server issued");
          return NULL;
        }
      query.before_id = cursor[2];
    }

  /* One more than the page, to know whether another page follows. */
  query.limit = limit + 1;
  records = pooler_store_query_requests (ctx->store, &query, &local_error);
  if (records == NULL)
    {
      internal_error (error, local_error);
      return NULL;
    }

  if (records->len > limit)
    {
      PoolerRequestRecord *last = g_ptr_array_index (records, limit - 1);
      g_autofree char *plain = g_strdup_printf (REQUEST_CURSOR_TAG ":%" G_GINT64_FORMAT ":%s",
                                                last->started_at_ms, last->id);

      next = encode_cursor (plain);
      g_ptr_array_set_size (records, limit);
    }

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "requests");
  json_builder_begin_array (builder);
  for (guint i = 0; i < records->len; i++)
    pooler_request_record_to_json (g_ptr_array_index (records, i), POOLER_REQUEST_JSON_MCP, builder);
  json_builder_end_array (builder);
  add_string (builder, "next_cursor", next);
  json_builder_end_object (builder);

  return finish (builder);
}

static JsonNode *
tool_get_request (ToolContext  *ctx,
                  JsonObject   *args,
                  GError      **error)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(GError) local_error = NULL;
  g_autoptr(PoolerRequestRecord) record = pooler_store_find_request (ctx->store, arg_string (args, "id"),
                                                                     &local_error);

  if (record == NULL)
    {
      lookup_error (error, local_error, "id", "names no request");
      return NULL;
    }

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "request");
  pooler_request_record_to_json (record, POOLER_REQUEST_JSON_MCP, builder);
  json_builder_end_object (builder);

  return finish (builder);
}

static JsonNode *
tool_list_audit_events (ToolContext  *ctx,
                        JsonObject   *args,
                        GError      **error)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GPtrArray) events = NULL;
  guint limit = (guint) arg_int (args, "limit", DEFAULT_PAGE);
  g_autofree char *next = NULL;
  gint64 before = 0;

  if (arg_string (args, "cursor") != NULL)
    {
      g_auto(GStrv) cursor = decode_cursor (arg_string (args, "cursor"), AUDIT_CURSOR_TAG, 1);
      char *end = NULL;

      if (cursor != NULL)
        before = g_ascii_strtoll (cursor[1], &end, 10);
      if (cursor == NULL || end == NULL || *end != '\0' || before <= 0)
        {
          invalid_argument (error, "cursor", "is not a cursor this server issued");
          return NULL;
        }
    }

  events = pooler_store_list_audit_events (ctx->store, before, limit + 1, &local_error);
  if (events == NULL)
    {
      internal_error (error, local_error);
      return NULL;
    }

  if (events->len > limit)
    {
      PoolerAuditEvent *last = g_ptr_array_index (events, limit - 1);
      g_autofree char *plain = g_strdup_printf (AUDIT_CURSOR_TAG ":%" G_GINT64_FORMAT, last->id);

      next = encode_cursor (plain);
      g_ptr_array_set_size (events, limit);
    }

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "events");
  json_builder_begin_array (builder);
  for (guint i = 0; i < events->len; i++)
    {
      PoolerAuditEvent *event = g_ptr_array_index (events, i);

      json_builder_begin_object (builder);
      add_int (builder, "id", event->id);
      add_time (builder, "at", event->at);
      add_text (builder, "actor", event->actor != NULL ? event->actor : "");
      add_string (builder, "action", event->action != NULL ? event->action : "");
      add_text (builder, "target", event->target);
      add_text (builder, "detail", event->detail);
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  add_string (builder, "next_cursor", next);
  json_builder_end_object (builder);

  return finish (builder);
}

static const char *
outcome_to_string (PoolerRouteOutcome outcome)
{
  switch (outcome)
    {
    case POOLER_ROUTE_OK:
      return "ok";
    case POOLER_ROUTE_ALL_SPENT:
      return "all_spent";
    case POOLER_ROUTE_EMPTY:
    case POOLER_ROUTE_PIN_UNAVAILABLE:
    default:
      return "empty";
    }
}

static JsonNode *
tool_explain_routing (ToolContext  *ctx,
                      JsonObject   *args,
                      GError      **error)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(PoolerPool) pool = find_pool (ctx, arg_string (args, "pool"), error);
  g_autoptr(GPtrArray) members = NULL;
  g_autoptr(PoolerRouter) fresh = NULL;
  g_autoptr(GPtrArray) order = NULL;
  g_autoptr(GPtrArray) front = g_ptr_array_new ();
  g_autoptr(GPtrArray) back = g_ptr_array_new ();
  const char *model = arg_string (args, "model");
  PoolerRouteQuery query = { 0 };
  PoolerRouteOutcome outcome = POOLER_ROUTE_OK;
  gint64 earliest = 0;
  guint position = 0;

  if (pool == NULL)
    return NULL;

  members = pool_members (ctx, pool);
  g_ptr_array_sort (members, compare_accounts);

  /* A fresh router orders everything (no ring cut) without moving the
   * serving router's round-robin cursor; the serving router then adds
   * what only it knows: open circuits (out) and demotions (to the back). */
  fresh = pooler_router_new ();
  pooler_router_set_quota_func (fresh, quota_lookup, ctx->service);
  query.model = model;
  query.ring_size = MAX (members->len, 1);
  order = pooler_router_order (fresh, pool, members, &query, ctx->now, &outcome, &earliest);

  for (guint i = 0; i < order->len; i++)
    {
      PoolerAccount *account = g_ptr_array_index (order, i);
      g_autofree char *reason = pooler_router_explain (ctx->router, account, model, ctx->now);

      if (reason != NULL)
        continue;
      g_ptr_array_add (pooler_router_is_demoted (ctx->router, account, ctx->now) ? back : front, account);
    }
  if (front->len + back->len == 0 && outcome == POOLER_ROUTE_OK)
    outcome = POOLER_ROUTE_EMPTY;

  json_builder_begin_object (builder);
  add_string (builder, "pool", pooler_pool_get_slug (pool));
  add_string (builder, "strategy", pooler_pool_get_strategy (pool));
  add_text (builder, "model", model);
  add_string (builder, "outcome", outcome_to_string (outcome));
  add_time (builder, "earliest_reset", outcome == POOLER_ROUTE_ALL_SPENT ? earliest : 0);
  add_int (builder, "ring_size", pooler_pool_get_ring_size (pool));

  json_builder_set_member_name (builder, "candidates");
  json_builder_begin_array (builder);
  for (guint pass = 0; pass < 2; pass++)
    {
      GPtrArray *list = pass == 0 ? front : back;

      for (guint i = 0; i < list->len; i++, position++)
        {
          PoolerAccount *account = g_ptr_array_index (list, i);
          PoolerQuotaState *state = pooler_service_get_quota (ctx->service, pooler_account_get_id (account));

          json_builder_begin_object (builder);
          add_int (builder, "position", position + 1);
          add_account_names (builder, "account_id", account);
          add_bool (builder, "tried", position < pooler_pool_get_ring_size (pool));
          add_bool (builder, "demoted", pass == 1);
          add_percent (builder, "remaining_percent",
                       state != NULL ? pooler_quota_state_remaining (state, ctx->now) : -1);
          json_builder_end_object (builder);
        }
    }
  json_builder_end_array (builder);

  json_builder_set_member_name (builder, "excluded");
  json_builder_begin_array (builder);
  for (guint i = 0; i < members->len; i++)
    {
      PoolerAccount *account = g_ptr_array_index (members, i);
      g_autofree char *reason = pooler_router_explain (ctx->router, account, model, ctx->now);

      if (reason == NULL)
        continue;

      json_builder_begin_object (builder);
      add_account_names (builder, "account_id", account);
      add_string (builder, "status", pooler_account_status_to_string (pooler_account_get_status (account)));
      add_string (builder, "reason", reason);
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);

  add_string (builder, "note",
              g_strcmp0 (pooler_pool_get_strategy (pool), POOLER_STRATEGY_ROUND_ROBIN) == 0
              ? "round-robin: each request starts one account further along this order; "
                "a conversation's home account goes first; the first ring_size candidates are tried"
              : "a conversation's home account goes first; the first ring_size candidates are tried");
  json_builder_end_object (builder);

  return finish (builder);
}

#define EXPLAIN_SCHEMA \
  OBJECT ("'pool','strategy','model','outcome','earliest_reset','ring_size','candidates','excluded','note'", \
          "'pool':{'type':'string'},'strategy':{'type':'string'},'model':" NSTRING "," \
          "'outcome':{'type':'string','enum':['ok','empty','all_spent']}," \
          "'earliest_reset':" NTIME ",'ring_size':{'type':'integer'}," \
          "'candidates':{'type':'array','items':" CANDIDATE_SCHEMA "}," \
          "'excluded':{'type':'array','items':" EXCLUDED_SCHEMA "},'note':{'type':'string'}")

#define LIST_OF(member, item) \
  OBJECT ("'" member "'", "'" member "':{'type':'array','items':" item "}")

#define PAGE_OF(member, item) \
  OBJECT ("'" member "','next_cursor'", \
          "'" member "':{'type':'array','items':" item "}," \
          "'next_cursor':{'type':['string','null'],'description':'pass as cursor for the next page'}")

#define ONE(member, item) \
  OBJECT ("'" member "'", "'" member "':" item)

static const Tool tools[] = {
  { "get_status", "Service status",
    "Summary of the running pooler: version, Pools, accounts (usable or not), keys and the last 24 hours of requests.",
    NO_ARGUMENTS, STATUS_SCHEMA, tool_get_status },
  { "list_pools", "List Pools",
    "Every Pool with its strategy, how many accounts it has, how many can serve now, and its active keys.",
    NO_ARGUMENTS, LIST_OF ("pools", POOL_SCHEMA), tool_list_pools },
  { "get_pool", "Get a Pool",
    "One Pool by slug, with each member account and whether it can serve now.",
    OBJECT ("'pool'", POOL_ARGUMENT),
    POOL_DETAIL_SCHEMA, tool_get_pool },
  { "list_accounts", "List accounts",
    "Accounts with status, health, plan, quota windows (used percent, reset time), cooldowns and the last error code. E-mail addresses are masked.",
    ARGUMENTS (POOL_ARGUMENT ",'status':{'type':'string','enum':['active','paused','reauth_required']}"),
    LIST_OF ("accounts", ACCOUNT_SCHEMA), tool_list_accounts },
  { "get_account", "Get an account",
    "One account by id (acc_...), as list_accounts shows it.",
    OBJECT ("'account'", "'account':{'type':'string','minLength':1,'maxLength':64,'description':'the account id'}"),
    ONE ("account", ACCOUNT_SCHEMA), tool_get_account },
  { "list_keys", "List Pool keys",
    "Pool API keys by prefix (never the secret): name, Pool, status, created, expiry and last use.",
    ARGUMENTS (POOL_ARGUMENT ",'status':{'type':'string','enum':['active','revoked','expired']}"),
    LIST_OF ("keys", KEY_SCHEMA), tool_list_keys },
  { "list_requests", "List request logs",
    "The request log, newest first, with each request's attempts (which accounts were tried and how they answered). Metadata only: no prompts or bodies. Filter by Pool, key prefix, account, HTTP status, state and time; page with cursor.",
    ARGUMENTS (POOL_ARGUMENT ","
               "'key_prefix':{'type':'string','maxLength':64,'description':'sk-cxp-<12 hex>'},"
               "'account':{'type':'string','maxLength':64,'description':'served by or attempted on this account id'},"
               "'status':{'type':'integer','minimum':100,'maximum':599,'description':'the HTTP status the client got'},"
               "'state':{'type':'string','enum':['in_flight','completed','interrupted']},"
               "'since':{'type':'string','maxLength':64,'description':'ISO 8601; only requests started at or after it'},"
               LIMIT_ARGUMENT "," CURSOR_ARGUMENT),
    PAGE_OF ("requests", REQUEST_SCHEMA), tool_list_requests },
  { "get_request", "Get a request log entry",
    "One request by id (req_...) with its attempts.",
    OBJECT ("'id'", "'id':{'type':'string','minLength':1,'maxLength':64}"),
    ONE ("request", REQUEST_SCHEMA), tool_get_request },
  { "list_audit_events", "List audit events",
    "Who changed what (Pools, accounts, keys), newest first; page with cursor.",
    ARGUMENTS (LIMIT_ARGUMENT "," CURSOR_ARGUMENT),
    PAGE_OF ("events", AUDIT_SCHEMA), tool_list_audit_events },
  { "explain_routing", "Explain routing",
    "For a Pool (and optionally a model): the order in which the next request would try its accounts, and why each account that is out is out (paused, needs sign-in, quota spent, cooling down, circuit open). Does not change routing.",
    OBJECT ("'pool'", POOL_ARGUMENT ",'model':{'type':'string','maxLength':128}"),
    EXPLAIN_SCHEMA, tool_explain_routing },
};

static const Tool *
find_tool (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (tools); i++)
    if (g_strcmp0 (tools[i].name, name) == 0)
      return &tools[i];

  return NULL;
}

JsonArray *
pooler_mcp_tools_list (void)
{
  JsonArray *array = json_array_new ();

  for (guint i = 0; i < G_N_ELEMENTS (tools); i++)
    {
      JsonObject *tool = json_object_new ();
      JsonObject *annotations = json_object_new ();

      json_object_set_string_member (tool, "name", tools[i].name);
      json_object_set_string_member (tool, "title", tools[i].title);
      json_object_set_string_member (tool, "description", tools[i].description);
      json_object_set_member (tool, "inputSchema", load_schema (tools[i].input_schema));
      json_object_set_member (tool, "outputSchema", load_schema (tools[i].output_schema));

      json_object_set_string_member (annotations, "title", tools[i].title);
      json_object_set_boolean_member (annotations, "readOnlyHint", TRUE);
      json_object_set_boolean_member (annotations, "destructiveHint", FALSE);
      json_object_set_boolean_member (annotations, "idempotentHint", TRUE);
      json_object_set_boolean_member (annotations, "openWorldHint", FALSE);
      json_object_set_object_member (tool, "annotations", annotations);

      json_array_add_object_element (array, tool);
    }

  return array;
}

static void
context_init (ToolContext   *ctx,
              PoolerService *service)
{
  ctx->service = service;
  ctx->store = pooler_service_get_store (service);
  ctx->router = pooler_service_get_router (service);
  ctx->now = g_get_real_time () / G_USEC_PER_SEC;
}

G_DEFINE_QUARK (pooler-mcp-tool-error-quark, pooler_mcp_tool_error)

JsonNode *
pooler_mcp_tools_call (PoolerService  *service,
                       const char     *name,
                       JsonObject     *arguments,
                       GError        **error)
{
  const Tool *tool;
  g_autoptr(JsonNode) schema = NULL;
  g_autoptr(JsonObject) empty = NULL;
  g_autoptr(GError) local_error = NULL;
  JsonNode *result;
  ToolContext ctx;

  g_return_val_if_fail (POOLER_IS_SERVICE (service), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  tool = find_tool (name);
  if (tool == NULL)
    {
      g_autofree char *excerpt = pooler_jsonrpc_excerpt (name != NULL ? name : "");

      g_set_error (error, POOLER_JSONRPC_ERROR, POOLER_JSONRPC_INVALID_PARAMS,
                   "Invalid params: unknown tool “%s”", excerpt);
      return NULL;
    }

  if (arguments == NULL)
    arguments = empty = json_object_new ();

  schema = load_schema (tool->input_schema);
  context_init (&ctx, service);
  if (!check_arguments (json_node_get_object (schema), arguments, &local_error) ||
      (result = tool->run (&ctx, arguments, &local_error)) == NULL)
    {
      const char *message = local_error->message;

      if (g_str_has_prefix (message, "Invalid params: "))
        message += strlen ("Invalid params: ");
      g_set_error_literal (error, POOLER_MCP_TOOL_ERROR, local_error->code, message);
      return NULL;
    }

  return result;
}

/* ---- resources ------------------------------------------------------------ */

typedef struct
{
  const char *uri;
  const char *name;
  const char *title;
  const char *description;
  const char *tool;
} Resource;

static const Resource resources[] = {
  { "pooler://status", "status", "Service status",
    "The get_status tool's answer: version, Pools, accounts, keys, traffic.", "get_status" },
  { "pooler://pools", "pools", "Pools",
    "The list_pools tool's answer: every Pool and how many accounts can serve.", "list_pools" },
};

JsonArray *
pooler_mcp_resources_list (void)
{
  JsonArray *array = json_array_new ();

  for (guint i = 0; i < G_N_ELEMENTS (resources); i++)
    {
      JsonObject *resource = json_object_new ();

      json_object_set_string_member (resource, "uri", resources[i].uri);
      json_object_set_string_member (resource, "name", resources[i].name);
      json_object_set_string_member (resource, "title", resources[i].title);
      json_object_set_string_member (resource, "description", resources[i].description);
      json_object_set_string_member (resource, "mimeType", "application/json");
      json_array_add_object_element (array, resource);
    }

  return array;
}

JsonNode *
pooler_mcp_resources_read (PoolerService  *service,
                           const char     *uri,
                           GError        **error)
{
  g_return_val_if_fail (POOLER_IS_SERVICE (service), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  for (guint i = 0; i < G_N_ELEMENTS (resources); i++)
    if (g_strcmp0 (resources[i].uri, uri) == 0)
      {
        g_autoptr(GError) local_error = NULL;
        JsonNode *document = pooler_mcp_tools_call (service, resources[i].tool, NULL, &local_error);

        /* A resource takes no arguments: only the database can fail it. */
        if (document == NULL)
          g_set_error (error, POOLER_JSONRPC_ERROR, POOLER_JSONRPC_INTERNAL_ERROR,
                       "Internal error: %s", local_error->message);
        return document;
      }

  g_set_error (error, POOLER_JSONRPC_ERROR, POOLER_JSONRPC_RESOURCE_NOT_FOUND,
               "Resource not found");
  return NULL;
}
