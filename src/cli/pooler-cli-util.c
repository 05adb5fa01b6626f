/* pooler-cli-util.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-cli"

#include "config.h"

#include "pooler-cli.h"
#include "pooler-cli-util.h"

int
pooler_cli_usage_error (const char *help_command,
                        const char *format,
                        ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  g_printerr ("codex-pooler: %s\n", message);
  g_printerr ("Try “%s --help”.\n", help_command);
  return POOLER_EXIT_USAGE;
}

int
pooler_cli_user_error (const GError *error)
{
  g_printerr ("codex-pooler: %s\n", error->message);
  return POOLER_EXIT_ERROR;
}

/* Parses options for one subcommand; leaves positional arguments in argv. */
gboolean
pooler_cli_parse_options (const char    *help_command,
                          const char    *parameter_string,
                          const char    *summary,
                          GOptionEntry  *entries,
                          int           *argc,
                          char        ***argv,
                          int           *exit_code)
{
  g_autoptr(GOptionContext) context = g_option_context_new (parameter_string);
  g_autoptr(GError) error = NULL;

  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_help_enabled (context, TRUE);
  if (summary != NULL)
    g_option_context_set_summary (context, summary);

  if (!g_option_context_parse (context, argc, argv, &error))
    {
      *exit_code = pooler_cli_usage_error (help_command, "%s", error->message);
      return FALSE;
    }

  return TRUE;
}

PoolerService *
pooler_cli_open_service (int *exit_code)
{
  g_autoptr(GError) error = NULL;
  PoolerService *service = pooler_service_new (NULL, &error);

  if (service == NULL)
    *exit_code = pooler_cli_user_error (error);

  return service;
}

/* Unix seconds as ISO 8601 UTC, or NULL for 0. */
char *
pooler_cli_format_time (gint64 unix_seconds)
{
  g_autoptr(GDateTime) time = NULL;

  if (unix_seconds <= 0)
    return NULL;

  time = g_date_time_new_from_unix_utc (unix_seconds);
  return time != NULL ? g_date_time_format_iso8601 (time) : NULL;
}

void
pooler_cli_print_json (JsonBuilder *builder)
{
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = json_builder_get_root (builder);
  g_autofree char *text = NULL;

  json_generator_set_root (generator, root);
  json_generator_set_pretty (generator, TRUE);
  text = json_generator_to_data (generator, NULL);
  g_print ("%s\n", text);
}

void
pooler_cli_add_string (JsonBuilder *builder,
                       const char  *name,
                       const char  *value)
{
  json_builder_set_member_name (builder, name);
  if (value != NULL)
    json_builder_add_string_value (builder, value);
  else
    json_builder_add_null_value (builder);
}

void
pooler_cli_add_int (JsonBuilder *builder,
                    const char  *name,
                    gint64       value)
{
  json_builder_set_member_name (builder, name);
  json_builder_add_int_value (builder, value);
}

void
pooler_cli_add_time (JsonBuilder *builder,
                     const char  *name,
                     gint64       unix_seconds)
{
  g_autofree char *text = pooler_cli_format_time (unix_seconds);

  pooler_cli_add_string (builder, name, text);
}

/* A list command's output: a JSON array with --json; otherwise @empty when
 * there are no rows, else a header line and a line a row. */
void
pooler_cli_print_rows (GPtrArray        *rows,
                       gboolean          json,
                       PoolerCliRowFunc  print_row,
                       gpointer          user_data,
                       const char       *empty,
                       const char       *header_format,
                       ...)
{
  g_autoptr(JsonBuilder) builder = NULL;

  if (json)
    {
      builder = json_builder_new ();
      json_builder_begin_array (builder);
    }
  else if (rows->len == 0)
    g_print ("%s\n", empty);
  else
    {
      g_autofree char *header = NULL;
      va_list args;

      va_start (args, header_format);
      header = g_strdup_vprintf (header_format, args);
      va_end (args);
      g_print ("%s", header);
    }

  for (guint i = 0; i < rows->len; i++)
    print_row (builder, g_ptr_array_index (rows, i), user_data);

  if (json)
    {
      json_builder_end_array (builder);
      pooler_cli_print_json (builder);
    }
}
