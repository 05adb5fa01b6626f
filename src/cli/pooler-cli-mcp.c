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

#include <string.h>
#include <unistd.h>

#include "pooler-cli.h"
#include "pooler-cli-mcp.h"
#include "pooler-cli-util.h"
#include "pooler-keys.h"
#include "pooler-service.h"

#define MCP_TOKEN_USAGE "create [--name N] [--json] | list [--json] | revoke PREFIX"
#define MCP_TOKEN_HELP  "codex-pooler mcp-token"

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
    return pooler_cli_user_error (error);

  record->name = g_strdup (name);
  record->created_at = g_get_real_time () / G_USEC_PER_SEC;
  if (!pooler_store_insert_mcp_token (store, record, &error))
    return pooler_cli_user_error (error);

  mcp_audit (store, "mcp-token.create", record->prefix, NULL);

  if (json)
    {
      g_autoptr(JsonBuilder) builder = json_builder_new ();

      json_builder_begin_object (builder);
      pooler_cli_add_string (builder, "token", token);
      pooler_cli_add_string (builder, "prefix", record->prefix);
      pooler_cli_add_string (builder, "name", record->name);
      json_builder_end_object (builder);
      pooler_cli_print_json (builder);
    }
  else
    {
      /* The token alone on stdout so scripts can capture it. */
      g_print ("%s\n", token);
      g_printerr ("This token is shown only once. Keep it somewhere safe.\n");
    }

  return POOLER_EXIT_OK;
}

static void
print_token_row (JsonBuilder *builder,
                 gpointer     row,
                 gpointer     user_data)
{
  const PoolerMcpTokenRecord *token = row;
  const char *status = token->revoked ? "revoked" : "active";
  g_autofree char *created = NULL;
  g_autofree char *last_used = NULL;

  if (builder != NULL)
    {
      json_builder_begin_object (builder);
      pooler_cli_add_string (builder, "prefix", token->prefix);
      pooler_cli_add_string (builder, "name", token->name);
      pooler_cli_add_string (builder, "status", status);
      pooler_cli_add_time (builder, "created_at", token->created_at);
      pooler_cli_add_time (builder, "last_used_at", token->last_used_at);
      json_builder_end_object (builder);
      return;
    }

  created = pooler_cli_format_time (token->created_at);
  last_used = pooler_cli_format_time (token->last_used_at);
  g_print ("%-21s %-16s %-8s %-21s %s\n", token->prefix, token->name ? token->name : "",
           status, created ? created : "", last_used ? last_used : "never");
}

static int
list_tokens (PoolerStore *store,
             gboolean     json)
{
  g_autoptr(GPtrArray) tokens = NULL;
  g_autoptr(GError) error = NULL;

  tokens = pooler_store_list_mcp_tokens (store, &error);
  if (tokens == NULL)
    return pooler_cli_user_error (error);

  pooler_cli_print_rows (tokens, json, print_token_row, NULL,
                         "No operator tokens yet. Create one with: codex-pooler mcp-token create",
                         "%-21s %-16s %-8s %-21s %s\n", "PREFIX", "NAME", "STATUS", "CREATED", "LAST USED");

  return POOLER_EXIT_OK;
}

static int
revoke_token (PoolerStore *store,
              const char  *prefix)
{
  g_autoptr(GError) error = NULL;

  if (!pooler_store_revoke_mcp_token (store, prefix, &error))
    return pooler_cli_user_error (error);

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
  g_autoptr(PoolerService) service = NULL;
  const char *verb;
  int exit_code = POOLER_EXIT_OK;

  if (!pooler_cli_parse_options (MCP_TOKEN_HELP, MCP_TOKEN_USAGE,
                                 "Operator tokens for the /mcp endpoint (mcp-cxp-...).",
                                 entries, &argc, &argv, &exit_code))
    return exit_code;
  if (argc < 2)
    return pooler_cli_usage_error (MCP_TOKEN_HELP, "mcp-token needs a verb: create, list or revoke");
  verb = argv[1];

  if (strcmp (verb, "create") == 0)
    {
      if (argc != 2)
        return pooler_cli_usage_error (MCP_TOKEN_HELP, "usage: codex-pooler mcp-token create [--name N] [--json]");
    }
  else if (strcmp (verb, "list") == 0)
    {
      if (argc != 2 || name != NULL)
        return pooler_cli_usage_error (MCP_TOKEN_HELP, "usage: codex-pooler mcp-token list [--json]");
    }
  else if (strcmp (verb, "revoke") == 0)
    {
      if (argc != 3 || name != NULL)
        return pooler_cli_usage_error (MCP_TOKEN_HELP, "usage: codex-pooler mcp-token revoke PREFIX");
    }
  else
    {
      return pooler_cli_usage_error (MCP_TOKEN_HELP, "unknown mcp-token verb “%s”", verb);
    }

  service = pooler_cli_open_service (&exit_code);
  if (service == NULL)
    return exit_code;

  if (strcmp (verb, "create") == 0)
    return create_token (pooler_service_get_store (service), name, json);
  if (strcmp (verb, "list") == 0)
    return list_tokens (pooler_service_get_store (service), json);

  return revoke_token (pooler_service_get_store (service), argv[2]);
}
