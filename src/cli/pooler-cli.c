/* pooler-cli.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-cli"

#include "config.h"

#include <glib-unix.h>
#include <json-glib/json-glib.h>
#include <locale.h>
#include <stdio.h>
#include <sys/resource.h>
#include <string.h>

#include "pooler-cli.h"
#include "pooler-cli-login.h"
#include "pooler-cli-mcp.h"
#include "pooler-cli-util.h"
#include "pooler-error.h"
#include "pooler-gateway.h"
#include "pooler-notifier.h"
#include "pooler-service.h"

typedef struct
{
  const char *name;
  int       (*run) (int argc, char **argv);
  const char *summary;
} Command;

/* ---- serve ------------------------------------------------------------ */

static gboolean
quit_loop (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

static gboolean
is_loopback_address (const char *address)
{
  g_autoptr(GInetAddress) inet = g_inet_address_new_from_string (address);

  return inet != NULL && g_inet_address_get_is_loopback (inet);
}

static int
run_serve (int    argc,
           char **argv)
{
  g_autofree char *listen = NULL;
  int port = POOLER_DEFAULT_PORT;
  gboolean allow_remote = FALSE;
  g_auto(GStrv) allowed_hosts = NULL;
  GOptionEntry entries[] = {
    { "listen", 0, 0, G_OPTION_ARG_STRING, &listen, "Address to listen on (default: loopback)", "ADDR" },
    { "port", 'p', 0, G_OPTION_ARG_INT, &port, "Port (default 4000; 0 picks a free one)", "N" },
    { "allow-remote", 0, 0, G_OPTION_ARG_NONE, &allow_remote, "Permit a --listen address that is not loopback", NULL },
    { "allowed-host", 0, 0, G_OPTION_ARG_STRING_ARRAY, &allowed_hosts, "Another host name clients may use (repeatable; with --listen)", "NAME" },
    { NULL }
  };
  g_autoptr(PoolerService) service = NULL;
  g_autoptr(PoolerGateway) gateway = NULL;
  g_autoptr(PoolerNotifier) notifier = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *base = NULL;
  int exit_code = POOLER_EXIT_OK;

  if (!pooler_cli_parse_options (POOLER_CLI_HELP,
                                 "- run the gateway headless",
                                 NULL, entries, &argc, &argv, &exit_code))
    return exit_code;
  if (argc > 1)
    return pooler_cli_usage_error (POOLER_CLI_HELP, "serve takes no arguments");
  if (port < 0 || port > 65535)
    return pooler_cli_usage_error (POOLER_CLI_HELP, "--port must be between 0 and 65535");
  if (listen != NULL && !is_loopback_address (listen))
    {
      if (!allow_remote)
        return pooler_cli_usage_error (POOLER_CLI_HELP,
                                       "--listen %s is not a loopback address; add --allow-remote if you really mean it",
                                       listen);
      g_printerr ("codex-pooler: warning: listening on %s: anyone who can reach it and holds a Pool key can use your accounts\n",
                  listen);
    }

  /* Every stream is two descriptors: use what the system allows. */
  {
    struct rlimit limit;

    if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max)
      {
        limit.rlim_cur = limit.rlim_max;
        setrlimit (RLIMIT_NOFILE, &limit);
      }
  }

  service = pooler_cli_open_service (&exit_code);
  if (service == NULL)
    return exit_code;

  if (!pooler_service_start (service, &error))
    return pooler_cli_user_error (error);

  /* Quota spent, Pool exhausted, sign-in needed: told on the desktop. */
  notifier = pooler_notifier_new (service);

  gateway = pooler_gateway_new (service);
  if (listen != NULL && !is_loopback_address (listen))
    {
      /* Remote clients name us by host name or by the address they used. */
      pooler_gateway_add_allowed_host (gateway, g_get_host_name ());
      for (guint i = 0; allowed_hosts != NULL && allowed_hosts[i] != NULL; i++)
        pooler_gateway_add_allowed_host (gateway, allowed_hosts[i]);
    }
  if (!pooler_gateway_listen (gateway, listen, (guint) port, &error))
    {
      g_prefix_error (&error, "could not listen on port %d: ", port);
      pooler_service_stop (service);
      return pooler_cli_user_error (error);
    }

  if (listen != NULL && !is_loopback_address (listen))
    base = g_strdup_printf ("http://%s:%u", listen, pooler_gateway_get_port (gateway));
  else
    base = pooler_gateway_dup_base_url (gateway);

  g_print ("codex-pooler: gateway ready at %s\n", base);
  g_print ("  Codex CLI base_url:  %s/backend-api/codex\n", base);
  g_print ("  OpenAI SDK base URL: %s/v1\n", base);
  g_print ("  Health:              %s/healthz  %s/readyz\n", base, base);
  g_print ("  Upstream:            %s\n", pooler_service_get_upstream_url (service));
  fflush (stdout);

  loop = g_main_loop_new (NULL, FALSE);
  g_unix_signal_add (SIGINT, quit_loop, loop);
  g_unix_signal_add (SIGTERM, quit_loop, loop);
  g_main_loop_run (loop);

  g_print ("codex-pooler: stopping\n");
  pooler_gateway_stop (gateway);
  pooler_service_stop (service);

  return POOLER_EXIT_OK;
}

/* ---- pool ------------------------------------------------------------- */

static void
build_pool (JsonBuilder *builder,
            PoolerPool  *pool,
            guint        n_accounts,
            guint        n_keys)
{
  json_builder_begin_object (builder);
  pooler_cli_add_string (builder, "slug", pooler_pool_get_slug (pool));
  pooler_cli_add_string (builder, "name", pooler_pool_get_name (pool));
  pooler_cli_add_string (builder, "strategy", pooler_pool_get_strategy (pool));
  pooler_cli_add_int (builder, "ring_size", pooler_pool_get_ring_size (pool));
  pooler_cli_add_int (builder, "accounts", n_accounts);
  pooler_cli_add_int (builder, "keys", n_keys);
  pooler_cli_add_time (builder, "created_at", pooler_pool_get_created_at (pool));
  json_builder_end_object (builder);
}

static void
print_pool_row (JsonBuilder *builder,
                gpointer     row,
                gpointer     user_data)
{
  PoolerPool *pool = row;
  PoolerStore *store = user_data;
  g_autoptr(GPtrArray) accounts = pooler_store_list_accounts (store, pooler_pool_get_slug (pool), NULL);
  g_autoptr(GPtrArray) keys = pooler_store_list_keys (store, pooler_pool_get_slug (pool), NULL);
  guint n_accounts = accounts != NULL ? accounts->len : 0;
  guint n_keys = keys != NULL ? keys->len : 0;

  if (builder != NULL)
    build_pool (builder, pool, n_accounts, n_keys);
  else
    g_print ("%-24s %-14s %8u %5u\n", pooler_pool_get_slug (pool),
             pooler_pool_get_strategy (pool), n_accounts, n_keys);
}

static int
run_pool (int    argc,
          char **argv)
{
  g_autofree char *strategy = NULL;
  int ring_size = -1;   /* not given */
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "strategy", 's', 0, G_OPTION_ARG_STRING, &strategy, "round-robin, quota-first, least-recent or fill-first", "S" },
    { "ring-size", 0, 0, G_OPTION_ARG_INT, &ring_size, "How many accounts one request may try (1-10, default 3)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { NULL }
  };
  g_autoptr(PoolerService) service = NULL;
  g_autoptr(GError) error = NULL;
  const char *verb;
  int exit_code = POOLER_EXIT_OK;

  if (!pooler_cli_parse_options (POOLER_CLI_HELP,
                                 "create NAME | list | set NAME [--strategy S] [--ring-size N]",
                                 NULL, entries, &argc, &argv, &exit_code))
    return exit_code;
  if (argc < 2)
    return pooler_cli_usage_error (POOLER_CLI_HELP, "pool needs a verb: create, list or set");
  verb = argv[1];

  if (strcmp (verb, "create") == 0)
    {
      g_autoptr(PoolerPool) pool = NULL;

      if (argc != 3)
        return pooler_cli_usage_error (POOLER_CLI_HELP,
                                       "usage: codex-pooler pool create NAME [--strategy S]");
      if (!(service = pooler_cli_open_service (&exit_code)))
        return exit_code;
      pool = pooler_service_create_pool (service, argv[2], strategy, &error);
      if (pool == NULL)
        return pooler_cli_user_error (error);
      if (ring_size != -1)
        {
          if (!pooler_service_set_pool_ring_size (service, argv[2], (guint) MAX (ring_size, 0), &error))
            return pooler_cli_user_error (error);
          pooler_pool_set_ring_size (pool, (guint) ring_size);
        }
      if (json)
        {
          g_autoptr(JsonBuilder) builder = json_builder_new ();
          build_pool (builder, pool, 0, 0);
          pooler_cli_print_json (builder);
        }
      else
        g_print ("Created Pool “%s” (%s)\n", pooler_pool_get_slug (pool), pooler_pool_get_strategy (pool));
      return POOLER_EXIT_OK;
    }

  if (strcmp (verb, "set") == 0)
    {
      if (argc != 3 || (strategy == NULL && ring_size == -1))
        return pooler_cli_usage_error (POOLER_CLI_HELP,
                                       "usage: codex-pooler pool set NAME [--strategy S] [--ring-size N]");
      if (!(service = pooler_cli_open_service (&exit_code)))
        return exit_code;
      if (strategy != NULL && !pooler_service_set_pool_strategy (service, argv[2], strategy, &error))
        return pooler_cli_user_error (error);
      if (ring_size != -1 &&
          !pooler_service_set_pool_ring_size (service, argv[2], (guint) MAX (ring_size, 0), &error))
        return pooler_cli_user_error (error);
      if (strategy != NULL)
        g_print ("Pool “%s” now uses %s\n", argv[2], strategy);
      if (ring_size != -1)
        g_print ("Pool “%s” now tries up to %d accounts per request\n", argv[2], ring_size);
      return POOLER_EXIT_OK;
    }

  if (strcmp (verb, "list") == 0)
    {
      g_autoptr(GPtrArray) pools = NULL;

      if (argc != 2)
        return pooler_cli_usage_error (POOLER_CLI_HELP, "usage: codex-pooler pool list [--json]");
      if (!(service = pooler_cli_open_service (&exit_code)))
        return exit_code;
      if (!(pools = pooler_store_list_pools (pooler_service_get_store (service), &error)))
        return pooler_cli_user_error (error);

      pooler_cli_print_rows (pools, json, print_pool_row, pooler_service_get_store (service),
                             "No Pools yet. Create one with: codex-pooler pool create NAME",
                             "%-24s %-14s %8s %5s\n", "POOL", "STRATEGY", "ACCOUNTS", "KEYS");
      return POOLER_EXIT_OK;
    }

  return pooler_cli_usage_error (POOLER_CLI_HELP, "unknown pool verb “%s”", verb);
}

/* ---- account ---------------------------------------------------------- */

static void
build_account (JsonBuilder   *builder,
               PoolerAccount *account,
               GStrv          pools)
{
  json_builder_begin_object (builder);
  pooler_cli_add_string (builder, "id", pooler_account_get_id (account));
  pooler_cli_add_string (builder, "label", pooler_account_get_label (account));
  pooler_cli_add_string (builder, "email", pooler_account_get_email (account));
  pooler_cli_add_string (builder, "chatgpt_account_id", pooler_account_get_chatgpt_account_id (account));
  pooler_cli_add_string (builder, "plan", pooler_account_get_plan (account));
  pooler_cli_add_int (builder, "priority", pooler_account_get_priority (account));
  pooler_cli_add_string (builder, "status", pooler_account_status_to_string (pooler_account_get_status (account)));
  pooler_cli_add_time (builder, "cooldown_until", pooler_account_get_cooldown_until (account));
  pooler_cli_add_time (builder, "token_expires_at", pooler_account_get_token_expires_at (account));
  pooler_cli_add_time (builder, "last_used_at", pooler_account_get_last_used_at (account));
  pooler_cli_add_string (builder, "last_error", pooler_account_get_last_error (account));
  json_builder_set_member_name (builder, "pools");
  json_builder_begin_array (builder);
  for (guint i = 0; pools != NULL && pools[i] != NULL; i++)
    json_builder_add_string_value (builder, pools[i]);
  json_builder_end_array (builder);
  json_builder_end_object (builder);
}

static void
print_account_row (JsonBuilder *builder,
                   gpointer     row,
                   gpointer     user_data)
{
  PoolerAccount *account = row;
  g_auto(GStrv) pools = pooler_store_list_account_pools (user_data, pooler_account_get_id (account), NULL);
  g_autofree char *joined = NULL;

  if (builder != NULL)
    {
      build_account (builder, account, pools);
      return;
    }

  joined = pools != NULL ? g_strjoinv (",", pools) : g_strdup ("");
  g_print ("%-18s %-28s %-8s %-16s %s\n", pooler_account_get_id (account),
           pooler_account_get_label (account) ? pooler_account_get_label (account) : "",
           pooler_account_get_plan (account) ? pooler_account_get_plan (account) : "",
           pooler_account_status_to_string (pooler_account_get_status (account)), joined);
}

static int
run_account (int    argc,
             char **argv)
{
  g_autofree char *pool = NULL;
  g_autofree char *label = NULL;
  g_autofree char *priority = NULL;
  gboolean json = FALSE;
  gboolean no_browser = FALSE;
  GOptionEntry entries[] = {
    { "pool", 0, 0, G_OPTION_ARG_STRING, &pool, "Pool to add the account to (import, login) or to list", "NAME" },
    { "label", 0, 0, G_OPTION_ARG_STRING, &label, "A name for the account", "L" },
    { "priority", 0, 0, G_OPTION_ARG_STRING, &priority, "Order under fill-first (lower first; set)", "N" },
    { "no-browser", 0, 0, G_OPTION_ARG_NONE, &no_browser,
      "Print the sign-in page's address without opening a browser (login)", NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { NULL }
  };
  g_autoptr(PoolerService) service = NULL;
  g_autoptr(GError) error = NULL;
  const char *verb;
  int exit_code = POOLER_EXIT_OK;

  if (!pooler_cli_parse_options (POOLER_CLI_HELP,
                                 "import [FILE] --pool NAME | login --pool NAME | list | set ID [--priority N] [--label L] | pause ID | resume ID | remove ID",
                                 NULL, entries, &argc, &argv, &exit_code))
    return exit_code;
  if (argc < 2)
    return pooler_cli_usage_error (POOLER_CLI_HELP,
                                   "account needs a verb: import, login, list, set, pause, resume or remove");
  verb = argv[1];

  if (strcmp (verb, "import") == 0 || strcmp (verb, "login") == 0)
    {
      g_autoptr(PoolerAccount) account = NULL;
      g_auto(GStrv) pools = NULL;
      gboolean importing = strcmp (verb, "import") == 0;
      gboolean created = FALSE;

      if (importing && (argc > 3 || pool == NULL))
        return pooler_cli_usage_error (POOLER_CLI_HELP,
                                       "usage: codex-pooler account import [FILE] --pool NAME [--label L]");
      if (!importing && (argc != 2 || pool == NULL))
        return pooler_cli_usage_error (POOLER_CLI_HELP,
                                       "usage: codex-pooler account login --pool NAME [--label L] [--no-browser]");
      if (!(service = pooler_cli_open_service (&exit_code)))
        return exit_code;
      if (importing)
        account = pooler_service_import_account (service, argc == 3 ? argv[2] : NULL, pool, label,
                                                 &created, &error);
      else
        account = pooler_cli_sign_in (service, pool, label, json, no_browser, &created, &error);
      if (account == NULL)
        return pooler_cli_user_error (error);
      if (json)
        {
          g_autoptr(JsonBuilder) builder = json_builder_new ();

          pools = pooler_store_list_account_pools (pooler_service_get_store (service),
                                                   pooler_account_get_id (account), NULL);
          build_account (builder, account, pools);
          pooler_cli_print_json (builder);
        }
      else
        g_print ("%s account %s (%s) in Pool “%s”\n",
                 !created ? "Updated" : importing ? "Imported" : "Signed in",
                 pooler_account_get_id (account), pooler_account_get_label (account), pool);
      return POOLER_EXIT_OK;
    }

  if (strcmp (verb, "list") == 0)
    {
      g_autoptr(GPtrArray) accounts = NULL;

      if (argc != 2)
        return pooler_cli_usage_error (POOLER_CLI_HELP,
                                       "usage: codex-pooler account list [--pool NAME] [--json]");
      if (!(service = pooler_cli_open_service (&exit_code)))
        return exit_code;
      if (!(accounts = pooler_store_list_accounts (pooler_service_get_store (service), pool, &error)))
        return pooler_cli_user_error (error);

      pooler_cli_print_rows (accounts, json, print_account_row, pooler_service_get_store (service),
                             "No accounts yet. Import one with: codex-pooler account import --pool NAME",
                             "%-18s %-28s %-8s %-16s %s\n", "ID", "LABEL", "PLAN", "STATUS", "POOLS");
      return POOLER_EXIT_OK;
    }

  if (strcmp (verb, "set") == 0)
    {
      gint64 value = G_MININT;

      if (argc != 3 || (priority == NULL && label == NULL))
        return pooler_cli_usage_error (POOLER_CLI_HELP,
                                       "usage: codex-pooler account set ID [--priority N] [--label L]");
      if (priority != NULL &&
          (!g_ascii_string_to_signed (priority, 10, -1000000, 1000000, &value, NULL)))
        return pooler_cli_usage_error (POOLER_CLI_HELP, "--priority takes a whole number");
      if (!(service = pooler_cli_open_service (&exit_code)))
        return exit_code;
      if (!pooler_service_update_account (service, argv[2], label, (int) value, &error))
        return pooler_cli_user_error (error);
      g_print ("Account %s updated\n", argv[2]);
      return POOLER_EXIT_OK;
    }

  if (strcmp (verb, "pause") == 0 || strcmp (verb, "resume") == 0 || strcmp (verb, "remove") == 0)
    {
      gboolean ok;

      if (argc != 3)
        return pooler_cli_usage_error (POOLER_CLI_HELP, "usage: codex-pooler account %s ID", verb);
      if (!(service = pooler_cli_open_service (&exit_code)))
        return exit_code;

      if (strcmp (verb, "remove") == 0)
        ok = pooler_service_remove_account (service, argv[2], &error);
      else
        ok = pooler_service_set_account_status (service, argv[2],
                                                strcmp (verb, "pause") == 0 ? POOLER_ACCOUNT_PAUSED
                                                                            : POOLER_ACCOUNT_ACTIVE,
                                                &error);
      if (!ok)
        return pooler_cli_user_error (error);
      g_print ("Account %s %s\n", argv[2],
               strcmp (verb, "pause") == 0 ? "paused" : strcmp (verb, "resume") == 0 ? "resumed" : "removed");
      return POOLER_EXIT_OK;
    }

  return pooler_cli_usage_error (POOLER_CLI_HELP, "unknown account verb “%s”", verb);
}

/* ---- key -------------------------------------------------------------- */

static void
build_key (JsonBuilder           *builder,
           const PoolerKeyRecord *key)
{
  json_builder_begin_object (builder);
  pooler_cli_add_string (builder, "prefix", key->prefix);
  pooler_cli_add_string (builder, "name", key->name);
  pooler_cli_add_string (builder, "pool", key->pool_slug);
  pooler_cli_add_string (builder, "status", key->revoked ? "revoked" : "active");
  pooler_cli_add_time (builder, "created_at", key->created_at);
  pooler_cli_add_time (builder, "expires_at", key->expires_at);
  pooler_cli_add_time (builder, "last_used_at", key->last_used_at);
  json_builder_end_object (builder);
}

static void
print_key_row (JsonBuilder *builder,
               gpointer     row,
               gpointer     user_data)
{
  const PoolerKeyRecord *key = row;
  g_autofree char *last_used = NULL;

  if (builder != NULL)
    {
      build_key (builder, key);
      return;
    }

  last_used = pooler_cli_format_time (key->last_used_at);
  g_print ("%-20s %-16s %-16s %-8s %s\n", key->prefix, key->name ? key->name : "",
           key->pool_slug ? key->pool_slug : "", key->revoked ? "revoked" : "active",
           last_used ? last_used : "never");
}

static int
run_key (int    argc,
         char **argv)
{
  g_autofree char *pool = NULL;
  g_autofree char *name = NULL;
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "pool", 0, 0, G_OPTION_ARG_STRING, &pool, "The key's Pool", "NAME" },
    { "name", 0, 0, G_OPTION_ARG_STRING, &name, "A name for the key", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { NULL }
  };
  g_autoptr(PoolerService) service = NULL;
  g_autoptr(GError) error = NULL;
  const char *verb;
  int exit_code = POOLER_EXIT_OK;

  if (!pooler_cli_parse_options (POOLER_CLI_HELP,
                                 "create --pool NAME [--name N] | list | revoke PREFIX",
                                 NULL, entries, &argc, &argv, &exit_code))
    return exit_code;
  if (argc < 2)
    return pooler_cli_usage_error (POOLER_CLI_HELP, "key needs a verb: create, list or revoke");
  verb = argv[1];

  if (strcmp (verb, "create") == 0)
    {
      g_autoptr(PoolerKeyRecord) record = NULL;
      g_autofree char *key = NULL;

      if (argc != 2 || pool == NULL)
        return pooler_cli_usage_error (POOLER_CLI_HELP,
                                       "usage: codex-pooler key create --pool NAME [--name N]");
      if (!(service = pooler_cli_open_service (&exit_code)))
        return exit_code;
      key = pooler_service_create_key (service, pool, name, &record, &error);
      if (key == NULL)
        return pooler_cli_user_error (error);

      if (json)
        {
          g_autoptr(JsonBuilder) builder = json_builder_new ();

          json_builder_begin_object (builder);
          pooler_cli_add_string (builder, "key", key);
          pooler_cli_add_string (builder, "prefix", record->prefix);
          pooler_cli_add_string (builder, "pool", record->pool_slug);
          pooler_cli_add_string (builder, "name", record->name);
          json_builder_end_object (builder);
          pooler_cli_print_json (builder);
        }
      else
        {
          /* The key alone on stdout so scripts can capture it. */
          g_print ("%s\n", key);
          g_printerr ("This key is shown only once. Keep it somewhere safe.\n");
        }
      return POOLER_EXIT_OK;
    }

  if (strcmp (verb, "list") == 0)
    {
      g_autoptr(GPtrArray) keys = NULL;

      if (argc != 2)
        return pooler_cli_usage_error (POOLER_CLI_HELP,
                                       "usage: codex-pooler key list [--pool NAME] [--json]");
      if (!(service = pooler_cli_open_service (&exit_code)))
        return exit_code;
      if (!(keys = pooler_store_list_keys (pooler_service_get_store (service), pool, &error)))
        return pooler_cli_user_error (error);

      pooler_cli_print_rows (keys, json, print_key_row, NULL,
                             "No keys yet. Create one with: codex-pooler key create --pool NAME",
                             "%-20s %-16s %-16s %-8s %s\n", "PREFIX", "NAME", "POOL", "STATUS", "LAST USED");
      return POOLER_EXIT_OK;
    }

  if (strcmp (verb, "revoke") == 0)
    {
      if (argc != 3)
        return pooler_cli_usage_error (POOLER_CLI_HELP, "usage: codex-pooler key revoke PREFIX");
      if (!(service = pooler_cli_open_service (&exit_code)))
        return exit_code;
      if (!pooler_service_revoke_key (service, argv[2], &error))
        return pooler_cli_user_error (error);
      g_print ("Revoked %s\n", argv[2]);
      return POOLER_EXIT_OK;
    }

  return pooler_cli_usage_error (POOLER_CLI_HELP, "unknown key verb “%s”", verb);
}

/* ---- logs and status ---------------------------------------------------- */

static void
print_request_row (JsonBuilder *builder,
                   gpointer     row,
                   gpointer     user_data)
{
  const PoolerRequestRecord *record = row;
  g_autoptr(GDateTime) time = NULL;
  g_autofree char *when = NULL;
  gint64 tokens;

  if (builder != NULL)
    {
      pooler_request_record_to_json (record, POOLER_REQUEST_JSON_CLI, builder);
      return;
    }

  time = g_date_time_new_from_unix_utc (record->started_at_ms / 1000);
  when = time ? g_date_time_format (time, "%F %T") : g_strdup ("?");
  tokens = record->input_tokens >= 0 ? record->input_tokens + MAX (record->output_tokens, 0) : -1;
  g_print ("%-24s %-14s %-16s %-10s %6d %8" G_GINT64_FORMAT " %8" G_GINT64_FORMAT " %s\n",
           when, record->pool_slug ? record->pool_slug : "-",
           record->account_id ? record->account_id : "-",
           record->model ? record->model : "-", record->status, record->latency_ms, tokens,
           record->error_code ? record->error_code : "");
}

static int
run_logs (int    argc,
          char **argv)
{
  int limit = 50;
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "limit", 'n', 0, G_OPTION_ARG_INT, &limit, "How many rows (newest first, default 50)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { NULL }
  };
  g_autoptr(PoolerService) service = NULL;
  g_autoptr(GPtrArray) requests = NULL;
  g_autoptr(GError) error = NULL;
  int exit_code = POOLER_EXIT_OK;

  if (!pooler_cli_parse_options (POOLER_CLI_HELP,
                                 "- the request log (metadata only)",
                                 NULL, entries, &argc, &argv, &exit_code))
    return exit_code;
  if (argc != 1)
    return pooler_cli_usage_error (POOLER_CLI_HELP, "usage: codex-pooler logs [--limit N] [--json]");
  if (limit <= 0 || limit > 100000)
    return pooler_cli_usage_error (POOLER_CLI_HELP, "--limit must be between 1 and 100000");
  if (!(service = pooler_cli_open_service (&exit_code)))
    return exit_code;
  if (!(requests = pooler_store_list_requests (pooler_service_get_store (service), (guint) limit, &error)))
    return pooler_cli_user_error (error);

  pooler_cli_print_rows (requests, json, print_request_row, NULL, "No requests yet.",
                         "%-24s %-14s %-16s %-10s %6s %8s %8s %s\n", "TIME (UTC)", "POOL", "ACCOUNT",
                         "MODEL", "STATUS", "MS", "TOKENS", "ERROR");

  return POOLER_EXIT_OK;
}

static int
run_status (int    argc,
            char **argv)
{
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { NULL }
  };
  g_autoptr(PoolerService) service = NULL;
  g_autoptr(GPtrArray) pools = NULL;
  g_autoptr(GPtrArray) accounts = NULL;
  g_autoptr(GPtrArray) keys = NULL;
  g_autoptr(GError) error = NULL;
  gint64 total = 0, failed = 0, total_hour = 0, failed_hour = 0;
  guint active = 0, active_keys = 0;
  gint64 hour_ago_ms = g_get_real_time () / 1000 - 3600 * 1000;
  PoolerStore *store;
  int exit_code = POOLER_EXIT_OK;

  if (!pooler_cli_parse_options (POOLER_CLI_HELP,
                                 "- a summary of Pools, accounts, keys and traffic",
                                 NULL, entries, &argc, &argv, &exit_code))
    return exit_code;
  if (argc != 1)
    return pooler_cli_usage_error (POOLER_CLI_HELP, "usage: codex-pooler status [--json]");
  if (!(service = pooler_cli_open_service (&exit_code)))
    return exit_code;
  store = pooler_service_get_store (service);

  if (!(pools = pooler_store_list_pools (store, &error)) ||
      !(accounts = pooler_store_list_accounts (store, NULL, &error)) ||
      !(keys = pooler_store_list_keys (store, NULL, &error)) ||
      !pooler_store_count_requests (store, 0, &total, &failed, &error) ||
      !pooler_store_count_requests (store, hour_ago_ms, &total_hour, &failed_hour, &error))
    return pooler_cli_user_error (error);

  for (guint i = 0; i < accounts->len; i++)
    if (pooler_account_get_status (g_ptr_array_index (accounts, i)) == POOLER_ACCOUNT_ACTIVE)
      active++;
  for (guint i = 0; i < keys->len; i++)
    if (!((PoolerKeyRecord *) g_ptr_array_index (keys, i))->revoked)
      active_keys++;

  if (json)
    {
      g_autoptr(JsonBuilder) builder = json_builder_new ();

      json_builder_begin_object (builder);
      pooler_cli_add_string (builder, "version", PACKAGE_VERSION);
      pooler_cli_add_string (builder, "database", pooler_store_get_path (store));
      pooler_cli_add_int (builder, "schema_version", pooler_store_get_schema_version (store));
      pooler_cli_add_int (builder, "pools", pools->len);
      pooler_cli_add_int (builder, "accounts", accounts->len);
      pooler_cli_add_int (builder, "accounts_active", active);
      pooler_cli_add_int (builder, "keys", keys->len);
      pooler_cli_add_int (builder, "keys_active", active_keys);
      json_builder_set_member_name (builder, "requests");
      json_builder_begin_object (builder);
      pooler_cli_add_int (builder, "total", total);
      pooler_cli_add_int (builder, "failed", failed);
      pooler_cli_add_int (builder, "last_hour", total_hour);
      pooler_cli_add_int (builder, "failed_last_hour", failed_hour);
      json_builder_end_object (builder);
      json_builder_end_object (builder);
      pooler_cli_print_json (builder);
    }
  else
    {
      g_print ("Codex Pooler %s\n", PACKAGE_VERSION);
      g_print ("Database:  %s (schema %d)\n", pooler_store_get_path (store),
               pooler_store_get_schema_version (store));
      g_print ("Pools:     %u\n", pools->len);
      g_print ("Accounts:  %u (%u active)\n", accounts->len, active);
      g_print ("Keys:      %u (%u active)\n", keys->len, active_keys);
      g_print ("Requests:  %" G_GINT64_FORMAT " (%" G_GINT64_FORMAT " failed); last hour %"
               G_GINT64_FORMAT " (%" G_GINT64_FORMAT " failed)\n", total, failed, total_hour, failed_hour);
    }

  return POOLER_EXIT_OK;
}

/* ---- dispatch ----------------------------------------------------------- */

static const Command commands[] = {
  { "serve",   run_serve,   "Run the gateway headless until SIGINT/SIGTERM" },
  { "pool",    run_pool,    "Create, list and configure Pools" },
  { "account", run_account, "Import, list, pause, resume and remove accounts" },
  { "key",     run_key,     "Create, list and revoke Pool API keys" },
  { "logs",    run_logs,    "Show the request log (metadata only)" },
  { "status",  run_status,  "Summarize Pools, accounts, keys and traffic" },
  { "mcp-token", pooler_cli_run_mcp_token, "Create, list and revoke operator tokens for /mcp" },
};

static void
print_help (void)
{
  g_print ("Usage: codex-pooler [COMMAND] [OPTIONS]\n\n"
           "A local gateway that serves the Codex CLI and OpenAI SDKs from a Pool of accounts.\n"
           "Without a command it runs the gateway (the desktop window is not built yet).\n\n"
           "Commands:\n");
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    g_print ("  %-10s %s\n", commands[i].name, commands[i].summary);
  g_print ("\nRun “codex-pooler COMMAND --help” for a command's options.\n");
}

int
pooler_cli_run (int    argc,
                char **argv)
{
  g_autofree char *prgname = NULL;

  if (argc < 2)
    return pooler_cli_usage_error (POOLER_CLI_HELP, "missing command");

  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0 || strcmp (argv[1], "help") == 0)
    {
      print_help ();
      return POOLER_EXIT_OK;
    }
  if (strcmp (argv[1], "--version") == 0)
    {
      g_print ("codex-pooler %s\n", PACKAGE_VERSION);
      return POOLER_EXIT_OK;
    }

  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      if (strcmp (argv[1], commands[i].name) == 0)
        {
          /* Shift so the subcommand sees itself as argv[0]. */
          prgname = g_strdup_printf ("codex-pooler %s", commands[i].name);
          g_set_prgname (prgname);
          argv[1] = prgname;
          return commands[i].run (argc - 1, argv + 1);
        }
    }

  return pooler_cli_usage_error (POOLER_CLI_HELP, "unknown command “%s”", argv[1]);
}
