/* pooler-oauth.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-oauth"

#include "config.h"

#include <string.h>

#include "pooler-json.h"
#include "pooler-jwt.h"
#include "pooler-oauth.h"
#include "pooler-random.h"

#define MAX_ANSWER (256 * 1024)

G_DEFINE_QUARK (pooler-oauth-error-quark, pooler_oauth_error)

/* The answers that mean "this refresh token will never work again". */
static gboolean
is_permanent (const char *code)
{
  static const char * const codes[] = {
    "invalid_grant", "refresh_token_reused", "refresh_token_expired",
    "refresh_token_invalidated", "refresh_token_invalid", "unauthorized_client",
    "invalid_client", "token_revoked",
  };

  for (guint i = 0; code != NULL && i < G_N_ELEMENTS (codes); i++)
    if (g_ascii_strcasecmp (code, codes[i]) == 0)
      return TRUE;

  return FALSE;
}

/* @grant names what was refused in the error: "refresh token", "code". */
static PoolerTokens *
parse_answer (guint        status,
              const char  *data,
              gsize        length,
              const char  *old_refresh_token,
              gint64       now,
              const char  *grant,
              GError     **error)
{
  g_autoptr(JsonObject) root = NULL;
  g_autoptr(PoolerJwtClaims) claims = NULL;
  const char *access;
  const char *refresh;
  const char *id_token;
  gint64 expires_at = 0;

  if (data != NULL && length > 0 && length <= MAX_ANSWER)
    root = pooler_json_parse_object (data, length, NULL);

  if (!SOUP_STATUS_IS_SUCCESSFUL (status))
    {
      const char *code = pooler_json_get_string (root, "error");
      const char *description = pooler_json_get_string (root, "error_description");
      JsonNode *error_node = root != NULL ? json_object_get_member (root, "error") : NULL;

      /* Some answers nest it: {"error":{"code":"refresh_token_expired",...}} */
      if (code == NULL && error_node != NULL && JSON_NODE_HOLDS_OBJECT (error_node))
        code = pooler_json_get_string (json_node_get_object (error_node), "code");

      /* Final only when the server says so: a code that means it, or, as
       * Codex takes it, a 401 from the sign-in server itself (a JSON
       * answer). A 400 or 403 without such a code, or a page that is not
       * JSON (a proxy's, a challenge), may pass: the account must not be
       * given up for it. */
      if ((status == 400 || status == 401 || status == 403) &&
          (is_permanent (code) || is_permanent (description) || (status == 401 && root != NULL)))
        g_set_error (error, POOLER_OAUTH_ERROR, POOLER_OAUTH_ERROR_REVOKED,
                     "the sign-in server refused the %s (%u %s%s%s)",
                     grant, status, code != NULL ? code : "no error code",
                     is_permanent (description) ? ", " : "",
                     is_permanent (description) ? description : "");
      else
        g_set_error (error, POOLER_OAUTH_ERROR, POOLER_OAUTH_ERROR_TRANSIENT,
                     "the sign-in server answered %u %s", status,
                     code != NULL ? code : soup_status_get_phrase (status));
      return NULL;
    }

  access = pooler_json_get_string (root, "access_token");
  if (access == NULL || *access == '\0')
    {
      g_set_error_literal (error, POOLER_OAUTH_ERROR, POOLER_OAUTH_ERROR_TRANSIENT,
                           "the sign-in server's answer has no access token");
      return NULL;
    }

  refresh = pooler_json_get_string (root, "refresh_token");
  if (refresh == NULL || *refresh == '\0')
    refresh = old_refresh_token;
  id_token = pooler_json_get_string (root, "id_token");

  claims = pooler_jwt_claims_parse (access, NULL);
  if (claims != NULL && claims->expires_at > 0)
    expires_at = claims->expires_at;
  else if (root != NULL)
    {
      /* Seconds, a whole JSON number of at most ten years; anything else
       * leaves the expiry unknown (0), as if it were not there. */
      JsonNode *node = json_object_get_member (root, "expires_in");

      if (node != NULL && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_INT64)
        {
          gint64 seconds = json_node_get_int (node);

          if (seconds > 0 && seconds <= 10 * 365 * 86400)
            expires_at = now + seconds;
        }
    }

  return pooler_tokens_new (access, refresh, id_token, expires_at);
}

PoolerTokens *
pooler_oauth_parse_response (guint        status,
                             const char  *data,
                             gsize        length,
                             const char  *old_refresh_token,
                             gint64       now,
                             GError     **error)
{
  return parse_answer (status, data, length, old_refresh_token, now, "refresh token", error);
}

typedef struct
{
  SoupMessage *msg;
  char        *old_refresh_token;
  const char  *grant;
} TokenRequest;

/* A form body holds the code and verifier: wiped before it is freed. */
static void
wipe_and_free (char *text)
{
  pooler_wipe (text, strlen (text));
  g_free (text);
}

static void
token_request_free (TokenRequest *request)
{
  g_clear_object (&request->msg);
  if (request->old_refresh_token != NULL)
    {
      pooler_wipe (request->old_refresh_token, strlen (request->old_refresh_token));
      g_free (request->old_refresh_token);
    }
  g_free (request);
}

static void
token_request_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  TokenRequest *request = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = NULL;
  PoolerTokens *tokens;

  body = soup_session_send_and_read_finish (SOUP_SESSION (object), result, &error);
  if (body == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_task_return_error (task, g_steal_pointer (&error));
      else
        g_task_return_new_error (task, POOLER_OAUTH_ERROR, POOLER_OAUTH_ERROR_TRANSIENT,
                                 "could not reach the sign-in server: %s", error->message);
      return;
    }

  tokens = parse_answer (soup_message_get_status (request->msg),
                         g_bytes_get_data (body, NULL), g_bytes_get_size (body),
                         request->old_refresh_token, g_get_real_time () / G_USEC_PER_SEC,
                         request->grant, &error);
  if (tokens == NULL)
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_pointer (task, tokens, (GDestroyNotify) pooler_tokens_free);
}

/* POSTs @body to @auth_url/oauth/token and returns the parsed pair on @task. */
static void
send_token_request (GTask        *task,
                    SoupSession  *session,
                    const char   *auth_url,
                    const char   *content_type,
                    GBytes       *body,
                    const char   *old_refresh_token,
                    const char   *grant)
{
  g_autofree char *uri = g_strconcat (auth_url, "/oauth/token", NULL);
  TokenRequest *request = g_new0 (TokenRequest, 1);

  request->msg = soup_message_new (SOUP_METHOD_POST, uri);
  request->old_refresh_token = g_strdup (old_refresh_token);
  request->grant = grant;
  g_task_set_task_data (task, request, (GDestroyNotify) token_request_free);

  if (request->msg == NULL)
    {
      g_task_return_new_error (task, POOLER_OAUTH_ERROR, POOLER_OAUTH_ERROR_TRANSIENT,
                               "the sign-in server URL is not valid");
      g_object_unref (task);
      return;
    }

  soup_message_set_flags (request->msg, SOUP_MESSAGE_NO_REDIRECT);
  soup_message_set_request_body_from_bytes (request->msg, content_type, body);
  soup_session_send_and_read_async (session, request->msg, G_PRIORITY_DEFAULT,
                                    g_task_get_cancellable (task), token_request_cb, task);
}

void
pooler_oauth_refresh_async (SoupSession         *session,
                            const char          *auth_url,
                            const char          *refresh_token,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GBytes) body = NULL;
  char *text;
  gsize length;

  g_return_if_fail (SOUP_IS_SESSION (session));
  g_return_if_fail (auth_url != NULL);

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, pooler_oauth_refresh_async);

  if (refresh_token == NULL || *refresh_token == '\0')
    {
      g_task_return_new_error (task, POOLER_OAUTH_ERROR, POOLER_OAUTH_ERROR_REVOKED,
                               "the account has no refresh token");
      return;
    }

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "client_id");
  json_builder_add_string_value (builder, POOLER_OAUTH_CLIENT_ID);
  json_builder_set_member_name (builder, "grant_type");
  json_builder_add_string_value (builder, "refresh_token");
  json_builder_set_member_name (builder, "refresh_token");
  json_builder_add_string_value (builder, refresh_token);
  json_builder_set_member_name (builder, "scope");
  json_builder_add_string_value (builder, "openid profile email");
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  text = json_generator_to_data (generator, &length);
  body = g_bytes_new_take (text, length);

  send_token_request (g_steal_pointer (&task), session, auth_url, "application/json", body,
                      refresh_token, "refresh token");
}

void
pooler_oauth_exchange_code_async (SoupSession         *session,
                                  const char          *auth_url,
                                  const char          *code,
                                  const char          *redirect_uri,
                                  const char          *code_verifier,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GBytes) body = NULL;
  char *form;

  g_return_if_fail (SOUP_IS_SESSION (session));
  g_return_if_fail (auth_url != NULL);
  g_return_if_fail (code != NULL && redirect_uri != NULL && code_verifier != NULL);

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, pooler_oauth_exchange_code_async);

  form = soup_form_encode ("grant_type", "authorization_code",
                           "code", code,
                           "redirect_uri", redirect_uri,
                           "client_id", POOLER_OAUTH_CLIENT_ID,
                           "code_verifier", code_verifier,
                           NULL);
  body = g_bytes_new_with_free_func (form, strlen (form), (GDestroyNotify) wipe_and_free, form);

  send_token_request (g_steal_pointer (&task), session, auth_url, "application/x-www-form-urlencoded",
                      body, NULL, "sign-in code");
}

PoolerTokens *
pooler_oauth_exchange_code_finish (GAsyncResult  *result,
                                   GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

PoolerTokens *
pooler_oauth_refresh_finish (GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
