/* pooler-cli.h: the command-line front (ARCHITECTURE §3).
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Exit codes: 0 success, 1 user error (one line on stderr), 2 usage error. */
#define POOLER_EXIT_OK    0
#define POOLER_EXIT_ERROR 1
#define POOLER_EXIT_USAGE 2

int pooler_cli_run (int    argc,
                    char **argv);

G_END_DECLS
