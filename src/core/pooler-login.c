/* pooler-login.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-login"

#include "config.h"

#include <string.h>

#include "pooler-error.h"
#include "pooler-login.h"
#include "pooler-oauth.h"
#include "pooler-random.h"

/* What the Codex CLI asks for (its login server, 0.169). */
#define SCOPES      "openid profile email offline_access api.connectors.read api.connectors.invoke"
#define ORIGINATOR  "codex_cli_rs"

struct _PoolerLogin
{
  GObject         parent_instance;

  SoupSession    *session;
  char           *auth_url;
  guint           timeout_s;

  SoupServer     *server;
  guint           port;
  char           *verifier;        /* the PKCE secret: wiped when freed */
  char           *state;
  char           *redirect_uri;
  char           *authorize_url;

  GMainContext   *context;         /* the thread-default one at listen() */
  GTask          *task;            /* the wait, while it runs */
  GCancellable   *exchanging;      /* the code exchange, while it runs */
  GSource        *timeout;
  GSource        *cancelled;
  gboolean        settled;         /* a code is being exchanged, or it failed */
  gboolean        done;            /* the outcome is final */
  PoolerAuthFile *result;          /* the outcome, until the wait takes it */
  GError         *error;
};

G_DEFINE_FINAL_TYPE (PoolerLogin, pooler_login, G_TYPE_OBJECT)

static void
wipe_string (char **text)
{
  if (*text != NULL)
    pooler_wipe (*text, strlen (*text));
  g_clear_pointer (text, g_free);
}

static void
clear_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

/* ---- the outcome ------------------------------------------------------ */

static void
deliver (PoolerLogin *self)
{
  g_autoptr(GTask) task = g_steal_pointer (&self->task);

  if (task == NULL || !self->done)
    return;
  clear_source (&self->timeout);
  clear_source (&self->cancelled);
  if (self->error != NULL)
    g_task_return_error (task, g_steal_pointer (&self->error));
  else
    g_task_return_pointer (task, g_steal_pointer (&self->result),
                           (GDestroyNotify) pooler_auth_file_free);
}

/* The sign-in is over: @result or @error (taken) is the outcome. */
static void
finish (PoolerLogin    *self,
        PoolerAuthFile *result,
        GError         *error)
{
  if (self->done)
    {
      g_clear_pointer (&result, pooler_auth_file_free);
      g_clear_error (&error);
      return;
    }
  self->settled = TRUE;
  self->done = TRUE;
  self->result = result;
  self->error = error;
  deliver (self);
}

typedef struct
{
  PoolerLogin    *self;
  PoolerAuthFile *result;
  GError         *error;
} Pending;

static gboolean
finish_pending (gpointer user_data)
{
  Pending *pending = user_data;

  finish (pending->self, pending->result, pending->error);
  g_object_unref (pending->self);
  g_free (pending);
  return G_SOURCE_REMOVE;
}

/* From libsoup's own emission: the outcome goes out from the loop, where
 * the waiter may drop the last reference (and the server with it). */
static void
page_written (SoupServerMessage *msg,
              gpointer           user_data)
{
  Pending *pending = user_data;
  g_autoptr(GSource) idle = g_idle_source_new ();

  g_signal_handlers_disconnect_by_data (msg, pending);
  g_source_set_callback (idle, finish_pending, pending, NULL);
  g_source_attach (idle, pending->self->context);
}

/* Settles the outcome now, and makes it final once @msg's page has gone
 * out: a command that exits at the outcome must not cut the page. */
static void
finish_after_page (PoolerLogin       *self,
                   SoupServerMessage *msg,
                   PoolerAuthFile    *result,
                   GError            *error)
{
  Pending *pending = g_new0 (Pending, 1);

  self->settled = TRUE;
  pending->self = g_object_ref (self);
  pending->result = result;
  pending->error = error;
  g_signal_connect (msg, "finished", G_CALLBACK (page_written), pending);
}

/* ---- the browser's pages ---------------------------------------------- */

static void
set_page (SoupServerMessage *msg,
          guint              status,
          const char        *title,
          const char        *text)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  g_autofree char *title_html = g_markup_escape_text (title, -1);
  g_autofree char *text_html = g_markup_escape_text (text, -1);
  char *page;

  page = g_strdup_printf ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                          "<title>%s — Codex Pooler</title>"
                          "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36em;"
                          "margin:4em auto;padding:0 1em}</style></head>"
                          "<body><h1>%s</h1><p>%s</p></body></html>\n",
                          title_html, title_html, text_html);
  /* The address holds the code: nothing may keep it or pass it on. */
  soup_message_headers_replace (headers, "Cache-Control", "no-store");
  soup_message_headers_replace (headers, "Referrer-Policy", "no-referrer");
  soup_message_headers_replace (headers, "X-Content-Type-Options", "nosniff");
  soup_message_headers_replace (headers, "Content-Security-Policy",
                                "default-src 'none'; style-src 'unsafe-inline'");
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "text/html; charset=utf-8", SOUP_MEMORY_TAKE,
                                    page, strlen (page));
}

/* ---- the code exchange ------------------------------------------------ */

typedef struct
{
  PoolerLogin       *self;
  SoupServerMessage *msg;
} Exchange;

static void
exchanged_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  Exchange *exchange = user_data;
  PoolerLogin *self = exchange->self;
  g_autoptr(GError) error = NULL;
  PoolerTokens *tokens;
  PoolerAuthFile *auth = NULL;

  g_clear_object (&self->exchanging);
  tokens = pooler_oauth_exchange_code_finish (result, &error);
  if (tokens != NULL && tokens->refresh_token == NULL)
    {
      /* Without it the account would stop within days, unannounced. */
      g_clear_pointer (&tokens, pooler_tokens_free);
      g_set_error_literal (&error, POOLER_ERROR, POOLER_ERROR_FAILED,
                           "the sign-in server's answer has no refresh token");
    }
  if (tokens != NULL)
    auth = pooler_auth_file_new_from_tokens (tokens, NULL, "the sign-in server's answer", &error);

  if (self->done)
    {
      /* The wait was cancelled meanwhile: nothing is kept. */
      g_clear_pointer (&auth, pooler_auth_file_free);
      if (exchange->msg != NULL)
        set_page (exchange->msg, SOUP_STATUS_CONFLICT, "Sign-in stopped",
                  "Codex Pooler stopped waiting for this sign-in before it finished, and kept "
                  "nothing. Start the sign-in again.");
    }
  else if (auth == NULL)
    g_prefix_error (&error, "could not finish the sign-in: ");

  if (exchange->msg == NULL)
    {
      /* A pasted address: no page to write. */
      finish (self, auth, g_steal_pointer (&error));
    }
  else
    {
      if (!self->done && auth != NULL)
        {
          g_autofree char *text = g_strdup_printf ("Codex Pooler has the account of %s. "
                                                   "You can close this tab.",
                                                   auth->claims->email != NULL ? auth->claims->email
                                                                               : auth->account_id);

          set_page (exchange->msg, SOUP_STATUS_OK, "Signed in", text);
        }
      else if (!self->done)
        set_page (exchange->msg, SOUP_STATUS_BAD_GATEWAY, "Sign-in failed", error->message);
      finish_after_page (self, exchange->msg, auth, g_steal_pointer (&error));
      soup_server_message_unpause (exchange->msg);
      g_object_unref (exchange->msg);
    }

  g_object_unref (exchange->self);
  g_free (exchange);
}

/* ---- the callback server ---------------------------------------------- */

static gboolean
same_secret (const char *a,
             const char *b)
{
  gsize length;
  guint8 diff = 0;

  if (a == NULL || b == NULL || (length = strlen (a)) != strlen (b))
    return FALSE;
  for (gsize i = 0; i < length; i++)
    diff |= (guint8) (a[i] ^ b[i]);
  return diff == 0;
}

static char *
describe_refusal (const char *error,
                  const char *description)
{
  if (g_strcmp0 (description, "missing_codex_entitlement") == 0)
    return g_strdup ("the sign-in server refused: this workspace has no Codex access "
                     "(missing_codex_entitlement); sign in to another workspace, or ask its admin");
  return g_strdup_printf ("the sign-in server refused: %s%s%s", error,
                          description != NULL && *description != '\0' ? ": " : "",
                          description != NULL ? description : "");
}

/* The redirect's query, from the browser (@msg, which gets a page) or
 * pasted (@msg NULL). FALSE, with @error, when it is not taken: another
 * sign-in's state (a stale tab, another site's request), or this one is
 * over or finishing; the wait goes on. */
static gboolean
take_redirect (PoolerLogin        *self,
               GHashTable         *query,
               SoupServerMessage  *msg,
               GError            **error)
{
  const char *state = query != NULL ? g_hash_table_lookup (query, "state") : NULL;
  const char *refusal = query != NULL ? g_hash_table_lookup (query, "error") : NULL;
  const char *code = query != NULL ? g_hash_table_lookup (query, "code") : NULL;
  GError *outcome = NULL;
  Exchange *exchange;

  if (!same_secret (state, self->state))
    {
      if (msg != NULL)
        set_page (msg, SOUP_STATUS_BAD_REQUEST, "Not this sign-in",
                  "This link does not belong to the sign-in Codex Pooler is waiting for. "
                  "Start the sign-in again.");
      g_set_error_literal (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                           "this address belongs to another sign-in (its state differs)");
      return FALSE;
    }

  if (self->settled)
    {
      if (msg != NULL)
        set_page (msg, SOUP_STATUS_CONFLICT, "Already done",
                  "This sign-in has already been completed or has failed. Start a new one if needed.");
      g_set_error_literal (error, POOLER_ERROR, POOLER_ERROR_FAILED,
                           "this sign-in is already over or finishing");
      return FALSE;
    }

  if (refusal != NULL)
    {
      g_autofree char *why = describe_refusal (refusal, g_hash_table_lookup (query, "error_description"));

      outcome = g_error_new_literal (POOLER_ERROR, POOLER_ERROR_FAILED, why);
      if (msg != NULL)
        set_page (msg, SOUP_STATUS_FORBIDDEN, "Sign-in refused", why);
    }
  else if (code == NULL || *code == '\0')
    {
      static const char why[] = "the sign-in server sent the browser back without a code";

      outcome = g_error_new_literal (POOLER_ERROR, POOLER_ERROR_FAILED, why);
      if (msg != NULL)
        set_page (msg, SOUP_STATUS_BAD_REQUEST, "Sign-in failed", why);
    }
  if (outcome != NULL)
    {
      if (msg != NULL)
        finish_after_page (self, msg, NULL, outcome);
      else
        finish (self, NULL, outcome);
      return TRUE;
    }

  self->settled = TRUE;
  exchange = g_new0 (Exchange, 1);
  exchange->self = g_object_ref (self);
  exchange->msg = msg != NULL ? g_object_ref (msg) : NULL;
  self->exchanging = g_cancellable_new ();
  if (msg != NULL)
    soup_server_message_pause (msg);
  pooler_oauth_exchange_code_async (self->session, self->auth_url, code, self->redirect_uri,
                                    self->verifier, self->exchanging, exchanged_cb, exchange);
  return TRUE;
}

static void
handle_request (SoupServer        *server,
                SoupServerMessage *msg,
                const char        *path,
                GHashTable        *query,
                gpointer           user_data)
{
  PoolerLogin *self = user_data;
  const char *method = soup_server_message_get_method (msg);

  if (strcmp (method, SOUP_METHOD_GET) != 0)
    {
      set_page (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "Not here", "This page only answers GET.");
      return;
    }

  /* A newer sign-in (ours or `codex login`) takes the port over. */
  if (strcmp (path, "/cancel") == 0)
    {
      if (self->settled)
        {
          set_page (msg, SOUP_STATUS_CONFLICT, "Already finishing",
                    "This sign-in is already finishing; it ends in a moment.");
          return;
        }
      set_page (msg, SOUP_STATUS_OK, "Sign-in cancelled", "This sign-in was cancelled.");
      finish_after_page (self, msg, NULL,
                         g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                              "the sign-in was cancelled by a newer one"));
      return;
    }

  if (strcmp (path, POOLER_LOGIN_CALLBACK_PATH) != 0)
    {
      set_page (msg, SOUP_STATUS_NOT_FOUND, "Not here", "Codex Pooler's sign-in has no such page.");
      return;
    }

  take_redirect (self, query, msg, NULL);
}

/* ---- set-up ----------------------------------------------------------- */

static SoupServer *
listen_on (PoolerLogin  *self,
           guint         port,
           GError      **error)
{
  g_autoptr(SoupServer) server = soup_server_new ("server-header", "codex-pooler-login", NULL);

  if (!soup_server_listen_local (server, port, 0, error))
    return NULL;
  soup_server_add_handler (server, NULL, handle_request, self, NULL);

  return g_steal_pointer (&server);
}

static char *
challenge_of (const char *verifier)
{
  g_autoptr(GChecksum) sha = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 digest[32];
  gsize length = sizeof digest;

  g_checksum_update (sha, (const guchar *) verifier, (gssize) strlen (verifier));
  g_checksum_get_digest (sha, digest, &length);
  return pooler_base64url_encode (digest, length);
}

gboolean
pooler_login_listen (PoolerLogin  *self,
                     guint         port,
                     GError      **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autofree char *challenge = NULL;
  g_autofree char *query = NULL;

  g_return_val_if_fail (POOLER_IS_LOGIN (self), FALSE);
  g_return_val_if_fail (self->server == NULL, FALSE);
  g_return_val_if_fail (port <= G_MAXUINT16, FALSE);

  /* 64 random bytes (86 characters, within RFC 7636's 43-128), as Codex. */
  wipe_string (&self->verifier);
  wipe_string (&self->state);
  self->verifier = pooler_random_base64url (64, error);
  if (self->verifier == NULL)
    return FALSE;
  self->state = pooler_random_base64url (32, error);
  if (self->state == NULL)
    return FALSE;

  if (port != 0)
    self->server = listen_on (self, port, error);
  else
    {
      port = POOLER_LOGIN_PORT;
      self->server = listen_on (self, port, &local_error);
      if (self->server == NULL && g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE))
        {
          g_clear_error (&local_error);
          port = POOLER_LOGIN_FALLBACK_PORT;
          self->server = listen_on (self, port, &local_error);
          if (self->server == NULL && g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE))
            {
              g_set_error (error, POOLER_ERROR, POOLER_ERROR_FAILED,
                           "ports %u and %u, the only ones the sign-in server sends the browser back to, "
                           "are both in use (is a `codex login` running?)",
                           POOLER_LOGIN_PORT, POOLER_LOGIN_FALLBACK_PORT);
              return FALSE;
            }
        }
      if (self->server == NULL)
        {
          g_propagate_prefixed_error (error, g_steal_pointer (&local_error),
                                      "cannot listen for the sign-in on port %u: ", port);
          return FALSE;
        }
    }
  if (self->server == NULL)
    return FALSE;

  self->port = port;
  self->context = g_main_context_ref_thread_default ();
  self->redirect_uri = g_strdup_printf ("http://localhost:%u%s", port, POOLER_LOGIN_CALLBACK_PATH);
  challenge = challenge_of (self->verifier);
  query = soup_form_encode ("response_type", "code",
                            "client_id", POOLER_OAUTH_CLIENT_ID,
                            "redirect_uri", self->redirect_uri,
                            "scope", SCOPES,
                            "code_challenge", challenge,
                            "code_challenge_method", "S256",
                            "id_token_add_organizations", "true",
                            "codex_cli_simplified_flow", "true",
                            "state", self->state,
                            "originator", ORIGINATOR,
                            NULL);
  self->authorize_url = g_strconcat (self->auth_url, "/oauth/authorize?", query, NULL);

  return TRUE;
}

guint
pooler_login_get_port (PoolerLogin *self)
{
  g_return_val_if_fail (POOLER_IS_LOGIN (self), 0);

  return self->port;
}

const char *
pooler_login_get_authorize_url (PoolerLogin *self)
{
  g_return_val_if_fail (POOLER_IS_LOGIN (self), NULL);

  return self->authorize_url;
}

void
pooler_login_set_timeout (PoolerLogin *self,
                          guint        seconds)
{
  g_return_if_fail (POOLER_IS_LOGIN (self));
  g_return_if_fail (seconds > 0 && seconds <= 24 * 3600);

  self->timeout_s = seconds;
}

gboolean
pooler_login_take_address (PoolerLogin  *self,
                           const char   *address,
                           GError      **error)
{
  g_autofree char *trimmed = NULL;
  g_autoptr(GUri) uri = NULL;
  g_autoptr(GHashTable) query = NULL;

  g_return_val_if_fail (POOLER_IS_LOGIN (self), FALSE);
  g_return_val_if_fail (address != NULL, FALSE);
  g_return_val_if_fail (self->server != NULL, FALSE);

  trimmed = g_strstrip (g_strdup (address));
  /* Some address bars hide the scheme, and a copy can leave it behind. */
  if (strstr (trimmed, "://") == NULL)
    {
      char *with_scheme = g_strconcat ("http://", trimmed, NULL);

      g_free (trimmed);
      trimmed = with_scheme;
    }
  uri = g_uri_parse (trimmed, G_URI_FLAGS_ENCODED_QUERY, NULL);
  if (uri == NULL || g_strcmp0 (g_uri_get_path (uri), POOLER_LOGIN_CALLBACK_PATH) != 0 ||
      g_uri_get_query (uri) == NULL)
    {
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                   "that is not the address the sign-in ends on (it starts with %s?)",
                   self->redirect_uri);
      return FALSE;
    }

  query = soup_form_decode (g_uri_get_query (uri));
  return take_redirect (self, query, NULL, error);
}

/* ---- the wait --------------------------------------------------------- */

static gboolean
timed_out (gpointer user_data)
{
  PoolerLogin *self = user_data;

  g_clear_pointer (&self->timeout, g_source_unref);
  /* A code being exchanged, or a page being written, ends on its own
   * (the session's own timeout bounds the exchange). */
  if (self->settled)
    return G_SOURCE_REMOVE;
  finish (self, NULL, g_error_new (POOLER_ERROR, POOLER_ERROR_EXPIRED,
                                   "the sign-in was not completed within %u minutes; start it again",
                                   (self->timeout_s + 59) / 60));
  return G_SOURCE_REMOVE;
}

static gboolean
wait_cancelled (GCancellable *cancellable,
                gpointer      user_data)
{
  PoolerLogin *self = g_object_ref (user_data);   /* the waiter may drop it */

  g_clear_pointer (&self->cancelled, g_source_unref);
  /* Over first, so an exchange that ends inside the cancellation finds
   * the sign-in over and keeps nothing. */
  finish (self, NULL, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "the sign-in was cancelled"));
  if (self->exchanging != NULL)
    g_cancellable_cancel (self->exchanging);
  g_object_unref (self);
  return G_SOURCE_REMOVE;
}

void
pooler_login_wait_async (PoolerLogin         *self,
                         GCancellable        *cancellable,
                         GAsyncReadyCallback  callback,
                         gpointer             user_data)
{
  g_return_if_fail (POOLER_IS_LOGIN (self));
  g_return_if_fail (self->server != NULL);
  g_return_if_fail (self->task == NULL);

  self->task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (self->task, pooler_login_wait_async);

  if (self->done)
    {
      /* Over before the wait began: answer from the loop, as always. */
      g_autoptr(GTask) task = g_steal_pointer (&self->task);

      if (self->error != NULL)
        g_task_return_error (task, g_steal_pointer (&self->error));
      else
        g_task_return_pointer (task, g_steal_pointer (&self->result), (GDestroyNotify) pooler_auth_file_free);
      return;
    }

  self->timeout = g_timeout_source_new (self->timeout_s * 1000);
  g_source_set_callback (self->timeout, timed_out, self, NULL);
  g_source_attach (self->timeout, g_task_get_context (self->task));
  if (cancellable != NULL)
    {
      self->cancelled = g_cancellable_source_new (cancellable);
      g_source_set_callback (self->cancelled, G_SOURCE_FUNC (wait_cancelled), self, NULL);
      g_source_attach (self->cancelled, g_task_get_context (self->task));
    }
}

PoolerAuthFile *
pooler_login_wait_finish (PoolerLogin   *self,
                          GAsyncResult  *result,
                          GError       **error)
{
  g_return_val_if_fail (POOLER_IS_LOGIN (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- object ----------------------------------------------------------- */

PoolerLogin *
pooler_login_new (SoupSession *session,
                  const char  *auth_url)
{
  PoolerLogin *self;

  g_return_val_if_fail (SOUP_IS_SESSION (session), NULL);
  g_return_val_if_fail (auth_url != NULL, NULL);

  self = g_object_new (POOLER_TYPE_LOGIN, NULL);
  self->session = g_object_ref (session);
  self->auth_url = g_strdup (auth_url);
  /* A trailing slash would make "//oauth/authorize". */
  while (g_str_has_suffix (self->auth_url, "/"))
    self->auth_url[strlen (self->auth_url) - 1] = '\0';

  return self;
}

static void
pooler_login_dispose (GObject *object)
{
  PoolerLogin *self = POOLER_LOGIN (object);

  clear_source (&self->timeout);
  clear_source (&self->cancelled);
  if (self->exchanging != NULL)
    g_cancellable_cancel (self->exchanging);
  g_clear_object (&self->exchanging);
  if (self->server != NULL)
    soup_server_disconnect (self->server);
  g_clear_object (&self->server);
  g_clear_object (&self->session);
  g_clear_pointer (&self->context, g_main_context_unref);

  G_OBJECT_CLASS (pooler_login_parent_class)->dispose (object);
}

static void
pooler_login_finalize (GObject *object)
{
  PoolerLogin *self = POOLER_LOGIN (object);

  wipe_string (&self->verifier);
  wipe_string (&self->state);
  g_free (self->auth_url);
  g_free (self->redirect_uri);
  g_free (self->authorize_url);
  g_clear_pointer (&self->result, pooler_auth_file_free);
  g_clear_error (&self->error);

  G_OBJECT_CLASS (pooler_login_parent_class)->finalize (object);
}

static void
pooler_login_class_init (PoolerLoginClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = pooler_login_dispose;
  object_class->finalize = pooler_login_finalize;
}

static void
pooler_login_init (PoolerLogin *self)
{
  self->timeout_s = POOLER_LOGIN_TIMEOUT_S;
}
