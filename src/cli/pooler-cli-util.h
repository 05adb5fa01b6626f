/* pooler-cli-util.h: what every codex-pooler subcommand shares: error
 * reporting, option parsing, opening the service and printing JSON.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <json-glib/json-glib.h>

#include "pooler-service.h"

G_BEGIN_DECLS

/* Where a usage error sends the reader: "Try “@help_command --help”". */
#define POOLER_CLI_HELP "codex-pooler"

int            pooler_cli_usage_error   (const char     *help_command,
                                         const char     *format,
                                         ...) G_GNUC_PRINTF (2, 3);
int            pooler_cli_user_error    (const GError   *error);
gboolean       pooler_cli_parse_options (const char     *help_command,
                                         const char     *parameter_string,
                                         const char     *summary,
                                         GOptionEntry   *entries,
                                         int            *argc,
                                         char         ***argv,
                                         int            *exit_code);
PoolerService *pooler_cli_open_service  (int            *exit_code);

char          *pooler_cli_format_time   (gint64          unix_seconds);
void           pooler_cli_print_json    (JsonBuilder    *builder);
void           pooler_cli_add_string    (JsonBuilder    *builder,
                                         const char     *name,
                                         const char     *value);
void           pooler_cli_add_int       (JsonBuilder    *builder,
                                         const char     *name,
                                         gint64          value);
void           pooler_cli_add_time      (JsonBuilder    *builder,
                                         const char     *name,
                                         gint64          unix_seconds);

/* Writes one row: into @builder as an object with --json, else (builder
 * NULL) as one line of text. */
typedef void (*PoolerCliRowFunc) (JsonBuilder *builder,
                                  gpointer     row,
                                  gpointer     user_data);

void           pooler_cli_print_rows    (GPtrArray        *rows,
                                         gboolean          json,
                                         PoolerCliRowFunc  print_row,
                                         gpointer          user_data,
                                         const char       *empty,
                                         const char       *header_format,
                                         ...) G_GNUC_PRINTF (6, 7);

G_END_DECLS
