/* pooler-cli-mcp.c: operator tokens for /mcp.
 *
 * A token is shown once, on stdout alone, so scripts can capture it; the
 * database keeps only its prefix and the SHA-256 of its secret.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-cli"

#include "config.h"

#include <json-glib/json-glib.h>
#include <string.h>
#include <unistd.h>

#include "pooler-cli.h"
#include "pooler-cli-mcp.h"
#include "pooler-keys.h"
#include "pooler-service.h"

#define MCP_TOKEN_USAGE "create [--name N] [--json] | list [--json] | revoke PREFIX"

static int
mcp_usage_error (const char *message)
{
  g_printerr ("codex-pooler: %s\n", message);
  g_printerr ("Try “codex-pooler mcp-token --help”.\n");
  return POOLER_EXIT_USAGE;
}

static int
mcp_user_error (const GError *error)
{
  g_printerr ("codex-pooler: %s\n", error->message);
  return POOLER_EXIT_ERROR;
}

static char *
mcp_format_time (gint64 unix_seconds)
{
  g_autoptr(GDateTime) time = NULL;

  if (unix_seconds <= 0)
    return NULL;

  time = g_date_time_new_from_unix_utc (unix_seconds);
  return time != NULL ? g_date_time_format_iso8601 (time) : NULL;
}

static void
mcp_add_string (JsonBuilder *builder,
                const char  *name,
                const char  *value)
{
  json_builder_set_member_name (builder, name);
  if (value != NULL)
    json_builder_add_string_value (builder, value);
  else
    json_builder_add_null_value (builder);
}

static void
mcp_add_time (JsonBuilder *builder,
              const char  *name,
              gint64       unix_seconds)
{
  g_autofree char *text = mcp_format_time (unix_seconds);

  mcp_add_string (builder, name, text);
}

static void
mcp_print_json (JsonBuilder *builder)
{
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = json_builder_get_root (builder);
  g_autofree char *text = NULL;

  json_generator_set_root (generator, root);
  json_generator_set_pretty (generator, TRUE);
  text = json_generator_to_data (generator, NULL);
  g_print ("%s\n", text);
}

static void
mcp_audit (PoolerStore *store,
           const char  *action,
           const char  *prefix,
           const char  *detail)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *actor = g_strdup_printf ("%s (pid %d)", g_get_user_name (), (int) getpid ());

  if (!pooler_store_add_audit_event (store, actor, action, prefix, detail, &error))
    g_warning ("Could not write the audit event %s: %s", action, error->message);
}

static int
create_token (PoolerStore *store,
              const char  *name,
              gboolean     json)
{
  g_autoptr(PoolerMcpTokenRecord) record = pooler_mcp_token_record_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *token = NULL;

  token = pooler_key_generate (POOLER_KEY_KIND_MCP, &record->prefix, &record->secret_sha256, &error);
  if (token == NULL)
    return mcp_user_error (error);

  record->name = g_strdup (name);
  record->created_at = g_get_real_time () / G_USEC_PER_SEC;
  if (!pooler_store_insert_mcp_token (store, record, &error))
    return mcp_user_error (error);

  mcp_audit (store, "mcp-token.create", record->prefix, NULL);

  if (json)
    {
      g_autoptr(JsonBuilder) builder = json_builder_new ();

      json_builder_begin_object (builder);
      mcp_add_string (builder, "token", token);
      mcp_add_string (builder, "prefix", record->prefix);
      mcp_add_string (builder, "name", record->name);
      json_builder_end_object (builder);
      mcp_print_json (builder);
    }
  else
    {
      /* The token alone on stdout so scripts can capture it. */
      g_print ("%s\n", token);
      g_printerr ("This token is shown only once. Keep it somewhere safe.\n");
    }

  return POOLER_EXIT_OK;
}

static int
list_tokens (PoolerStore *store,
             gboolean     json)
{
  g_autoptr(GPtrArray) tokens = NULL;
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(GError) error = NULL;

  tokens = pooler_store_list_mcp_tokens (store, &error);
  if (tokens == NULL)
    return mcp_user_error (error);

  if (!json && tokens->len == 0)
    g_print ("No operator tokens yet. Create one with: codex-pooler mcp-token create\n");
  else if (!json)
    g_print ("%-21s %-16s %-8s %-21s %s\n", "PREFIX", "NAME", "STATUS", "CREATED", "LAST USED");

  json_builder_begin_array (builder);
  for (guint i = 0; i < tokens->len; i++)
    {
      PoolerMcpTokenRecord *token = g_ptr_array_index (tokens, i);
      const char *status = token->revoked ? "revoked" : "active";

      if (json)
        {
          json_builder_begin_object (builder);
          mcp_add_string (builder, "prefix", token->prefix);
          mcp_add_string (builder, "name", token->name);
          mcp_add_string (builder, "status", status);
          mcp_add_time (builder, "created_at", token->created_at);
          mcp_add_time (builder, "last_used_at", token->last_used_at);
          json_builder_end_object (builder);
        }
      else
        {
          g_autofree char *created = mcp_format_time (token->created_at);
          g_autofree char *last_used = mcp_format_time (token->last_used_at);

          g_print ("%-21s %-16s %-8s %-21s %s\n", token->prefix, token->name ? token->name : "",
                   status, created ? created : "", last_used ? last_used : "never");
        }
    }
  json_builder_end_array (builder);

  if (json)
    mcp_print_json (builder);

  return POOLER_EXIT_OK;
}

static int
revoke_token (PoolerStore *store,
              const char  *prefix)
{
  g_autoptr(GError) error = NULL;

  if (!pooler_store_revoke_mcp_token (store, prefix, &error))
    return mcp_user_error (error);

  mcp_audit (store, "mcp-token.revoke", prefix, NULL);
  g_print ("Revoked %s\n", prefix);
  return POOLER_EXIT_OK;
}

int
pooler_cli_run_mcp_token (int    argc,
                          char **argv)
{
  g_autofree char *name = NULL;
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "name", 0, 0, G_OPTION_ARG_STRING, &name, "A name for the token (create)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new (MCP_TOKEN_USAGE);
  g_autoptr(PoolerService) service = NULL;
  g_autoptr(GError) error = NULL;
  const char *verb;

  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_summary (context, "Operator tokens for the /mcp endpoint (mcp-cxp-...).");
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return mcp_usage_error (error->message);
  if (argc < 2)
    return mcp_usage_error ("mcp-token needs a verb: create, list or revoke");
  verb = argv[1];

  if (strcmp (verb, "create") == 0)
    {
      if (argc != 2)
        return mcp_usage_error ("usage: codex-pooler mcp-token create [--name N] [--json]");
    }
  else if (strcmp (verb, "list") == 0)
    {
      if (argc != 2 || name != NULL)
        return mcp_usage_error ("usage: codex-pooler mcp-token list [--json]");
    }
  else if (strcmp (verb, "revoke") == 0)
    {
      if (argc != 3 || name != NULL)
        return mcp_usage_error ("usage: codex-pooler mcp-token revoke PREFIX");
    }
  else
    {
      g_autofree char *message = g_strdup_printf ("unknown mcp-token verb “%s”", verb);

      return mcp_usage_error (message);
    }

  service = pooler_service_new (NULL, &error);
  if (service == NULL)
    return mcp_user_error (error);

  if (strcmp (verb, "create") == 0)
    return create_token (pooler_service_get_store (service), name, json);
  if (strcmp (verb, "list") == 0)
    return list_tokens (pooler_service_get_store (service), json);

  return revoke_token (pooler_service_get_store (service), argv[2]);
}
