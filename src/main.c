/* main.c: picks the face (desktop app or command line) before any GTK call.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <locale.h>

#include "pooler-cli.h"

int
main (int    argc,
      char **argv)
{
  setlocale (LC_ALL, "");

  /* The desktop window is a later issue; until it lands, no command means
   * "serve" so that running the app gives a working gateway. */
  if (argc < 2)
    {
      char *serve_argv[] = { argv[0], (char *) "serve", NULL };

      return pooler_cli_run (2, serve_argv);
    }

  return pooler_cli_run (argc, argv);
}
