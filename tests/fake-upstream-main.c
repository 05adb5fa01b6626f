/* fake-upstream-main.c: the fake upstream as a program, for shell tests.
 *
 *   fake-upstream [--port N] [--port-file PATH]
 *
 * Prints "fake-upstream listening on http://127.0.0.1:PORT" once ready,
 * writes PORT to --port-file (atomically) and runs until SIGTERM/SIGINT.
 * Tests steer it through GET /__ctl (see fake-upstream.c).
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "fake-upstream"

#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <glib-unix.h>

#include "fake-upstream.h"

static gboolean
quit_cb (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_CONTINUE;
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(FakeUpstream) upstream = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_autofree char *port_file = NULL;
  g_autofree char *port_text = NULL;
  gint port = 0;
  guint sigterm_id;
  guint sigint_id;
  GOptionEntry entries[] = {
    { "port", 0, 0, G_OPTION_ARG_INT, &port, "Port to listen on (0: a free one)", "N" },
    { "port-file", 0, 0, G_OPTION_ARG_FILENAME, &port_file, "Write the port to PATH", "PATH" },
    { NULL }
  };

  context = g_option_context_new ("- fake ChatGPT backend for tests");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("fake-upstream: %s\n", error->message);
      return 2;
    }
  if (port < 0 || port > 65535)
    {
      g_printerr ("fake-upstream: --port must be 0..65535\n");
      return 2;
    }

  /* Writing to a client that went away must not kill us. */
  signal (SIGPIPE, SIG_IGN);

  upstream = fake_upstream_new_on_port ((guint) port, &error);
  if (upstream == NULL)
    {
      g_printerr ("fake-upstream: %s\n", error->message);
      return 1;
    }

  port_text = g_strdup_printf ("%u\n", fake_upstream_get_port (upstream));
  /* g_file_set_contents writes a temporary file and renames it. */
  if (port_file != NULL && !g_file_set_contents (port_file, port_text, -1, &error))
    {
      g_printerr ("fake-upstream: %s\n", error->message);
      return 1;
    }

  loop = g_main_loop_new (NULL, FALSE);
  sigterm_id = g_unix_signal_add (SIGTERM, quit_cb, loop);
  sigint_id = g_unix_signal_add (SIGINT, quit_cb, loop);

  printf ("fake-upstream listening on http://127.0.0.1:%u\n", fake_upstream_get_port (upstream));
  fflush (stdout);

  g_main_loop_run (loop);

  g_source_remove (sigterm_id);
  g_source_remove (sigint_id);
  return EXIT_SUCCESS;
}
