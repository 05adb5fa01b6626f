/* pooler-cli-login.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-cli"

#include "config.h"

#include <gio/gunixinputstream.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "pooler-cli-login.h"
#include "pooler-error.h"
#include "pooler-login.h"

typedef struct
{
  GMainLoop      *loop;
  PoolerAuthFile *auth;
  PoolerAccount  *account;
  gboolean        created;
  GError         *error;
} Wait;

static void
waited_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  Wait *wait = user_data;

  wait->auth = pooler_login_wait_finish (POOLER_LOGIN (object), result, &wait->error);
  g_main_loop_quit (wait->loop);
}

static void
added_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  Wait *wait = user_data;

  wait->account = pooler_service_add_signed_in_finish (POOLER_SERVICE (object), result,
                                                       &wait->created, &wait->error);
  g_main_loop_quit (wait->loop);
}

/* Lines on standard input: the address a browser on another machine
 * ended on, pasted. */
typedef struct
{
  PoolerLogin      *login;
  GDataInputStream *input;
  GCancellable     *cancellable;
  gboolean          reading;
} Paste;

static void read_pasted (Paste *paste);

static void
pasted_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  Paste *paste = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;

  paste->reading = FALSE;
  line = g_data_input_stream_read_line_finish (paste->input, result, NULL, &error);
  if (line == NULL)
    return;   /* the end of input, a read error, or the sign-in is over */

  g_strstrip (line);
  if (!g_utf8_validate (line, -1, NULL))
    g_printerr ("codex-pooler: that line is not text; paste the address the browser ended on\n");
  else if (*line != '\0')
    {
      g_autoptr(GError) take_error = NULL;

      if (pooler_login_take_address (paste->login, line, &take_error))
        return;
      g_printerr ("codex-pooler: %s\n", take_error->message);
    }
  read_pasted (paste);
}

static void
read_pasted (Paste *paste)
{
  paste->reading = TRUE;
  g_data_input_stream_read_line_async (paste->input, G_PRIORITY_DEFAULT, paste->cancellable,
                                       pasted_cb, paste);
}

static gboolean
interrupted (gpointer user_data)
{
  g_cancellable_cancel (user_data);
  return G_SOURCE_CONTINUE;
}

/* CODEX_POOLER_LOGIN_PORT, for tests; 0 (1455, else 1457) otherwise. */
static gboolean
callback_port (guint   *port,
               GError **error)
{
  const char *value = g_getenv ("CODEX_POOLER_LOGIN_PORT");
  guint64 number = 0;

  *port = 0;
  if (value == NULL || *value == '\0')
    return TRUE;
  if (!g_ascii_string_to_unsigned (value, 10, 1, G_MAXUINT16, &number, NULL))
    {
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                   "CODEX_POOLER_LOGIN_PORT must be a port number, not “%s”", value);
      return FALSE;
    }
  *port = (guint) number;
  return TRUE;
}

PoolerAccount *
pooler_cli_sign_in (PoolerService  *service,
                    const char     *pool_slug,
                    const char     *label,
                    gboolean        json,
                    gboolean        no_browser,
                    gboolean       *out_created,
                    GError        **error)
{
  g_autoptr(PoolerLogin) login = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(PoolerAuthFile) auth = NULL;
  g_autoptr(GInputStream) stdin_stream = NULL;
  g_autoptr(GCancellable) stop_reading = g_cancellable_new ();
  FILE *out = json ? stderr : stdout;
  Wait wait = { loop, NULL, NULL, FALSE, NULL };
  Paste paste = { NULL, NULL, NULL, FALSE };
  guint port;
  guint sigint, sigterm;
  gboolean read_stdin;

  /* Before the user signs in: the Pool and the keyring must be there. */
  if (!pooler_service_can_add_to_pool (service, pool_slug, error) || !callback_port (&port, error))
    return NULL;

  login = pooler_login_new (pooler_service_get_session (service), pooler_service_get_auth_url (service));
  if (!pooler_login_listen (login, port, error))
    return NULL;

  fprintf (out, "Sign in to the account to add to Pool “%s” on this page:\n\n  %s\n\n",
           pool_slug, pooler_login_get_authorize_url (login));
  if (!no_browser)
    {
      g_autoptr(GError) browser_error = NULL;

      if (!g_app_info_launch_default_for_uri (pooler_login_get_authorize_url (login), NULL, &browser_error))
        fprintf (out, "(No browser could be opened: %s. Open the page yourself.)\n", browser_error->message);
    }
  /* Not from a terminal this process does not own (started with "&"):
   * a read there would stop it (SIGTTIN). */
  read_stdin = !isatty (STDIN_FILENO) || tcgetpgrp (STDIN_FILENO) == getpgrp ();
  if (read_stdin)
    fprintf (out, "If the browser is on another machine, the page it ends on does not load: paste its "
                  "address here and press Enter.\n");
  fprintf (out, "Waiting for the sign-in to finish (Ctrl+C stops)…\n");
  fflush (out);

  if (read_stdin)
    {
      stdin_stream = g_unix_input_stream_new (STDIN_FILENO, FALSE);
      paste.login = login;
      paste.input = g_data_input_stream_new (stdin_stream);
      paste.cancellable = stop_reading;
      read_pasted (&paste);
    }

  sigint = g_unix_signal_add (SIGINT, interrupted, cancellable);
  sigterm = g_unix_signal_add (SIGTERM, interrupted, cancellable);
  pooler_login_wait_async (login, cancellable, waited_cb, &wait);
  g_main_loop_run (loop);

  /* The read under way ends before its stream and data do. */
  g_cancellable_cancel (stop_reading);
  while (paste.reading)
    g_main_context_iteration (NULL, TRUE);
  g_clear_object (&paste.input);

  auth = wait.auth;
  if (auth != NULL)
    {
      /* A keyring that asks to be unlocked can take a while; Ctrl+C
       * still stops it, and leaves no new account behind. */
      pooler_service_add_signed_in_async (service, auth, pool_slug, label, cancellable, added_cb, &wait);
      g_main_loop_run (loop);
    }
  g_source_remove (sigint);
  g_source_remove (sigterm);

  if (wait.account == NULL)
    {
      g_propagate_error (error, wait.error);
      return NULL;
    }
  if (out_created != NULL)
    *out_created = wait.created;

  return wait.account;
}
