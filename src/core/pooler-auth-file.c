/* pooler-auth-file.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-auth-file"

#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>

#include "pooler-auth-file.h"
#include "pooler-error.h"
#include "pooler-json.h"

/* A real auth.json is a few KiB; anything this large is not one. */
#define AUTH_FILE_MAX_SIZE (1024 * 1024)

char *
pooler_auth_file_default_path (void)
{
  const char *codex_home = g_getenv ("CODEX_HOME");

  if (codex_home != NULL && codex_home[0] != '\0')
    return g_build_filename (codex_home, "auth.json", NULL);

  return g_build_filename (g_get_home_dir (), ".codex", "auth.json", NULL);
}

/* NULL unless @name holds a non-empty string. */
static const char *
get_string (JsonObject *object,
            const char *name)
{
  JsonNode *node = json_object_get_member (object, name);
  const char *value;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;

  value = json_node_get_string (node);
  return value != NULL && value[0] != '\0' ? value : NULL;
}

static void
fill_gap (char       **field,
          const char  *value)
{
  if (*field == NULL && value != NULL)
    *field = g_strdup (value);
}

PoolerAuthFile *
pooler_auth_file_parse (const char  *data,
                        gsize        length,
                        gint64       now,
                        GError     **error)
{
  static const char * const required[] = { "id_token", "access_token", "refresh_token" };
  g_autoptr(JsonObject) root = NULL;
  g_autoptr(PoolerAuthFile) auth = NULL;
  g_autoptr(GError) local_error = NULL;
  JsonNode *tokens_node;
  JsonObject *tokens;
  guint i;

  g_return_val_if_fail (data != NULL || length == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  root = pooler_json_parse_object (data, length, &local_error);
  if (root == NULL)
    {
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                   "not a Codex auth.json: %s", local_error->message);
      return NULL;
    }

  tokens_node = json_object_get_member (root, "tokens");
  if (tokens_node == NULL || JSON_NODE_HOLDS_NULL (tokens_node))
    {
      if (get_string (root, "OPENAI_API_KEY") != NULL)
        g_set_error_literal (error, POOLER_ERROR, POOLER_ERROR_UNSUPPORTED,
                             "this auth.json holds an API key, not a ChatGPT sign-in; "
                             "run `codex login` and choose Sign in with ChatGPT");
      else
        g_set_error_literal (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                             "this auth.json has no ChatGPT tokens; run `codex login` first");
      return NULL;
    }

  if (!JSON_NODE_HOLDS_OBJECT (tokens_node))
    {
      g_set_error_literal (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                           "\"tokens\" in this auth.json is not an object");
      return NULL;
    }
  tokens = json_node_get_object (tokens_node);

  for (i = 0; i < G_N_ELEMENTS (required); i++)
    {
      if (get_string (tokens, required[i]) == NULL)
        {
          g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                       "this auth.json has no tokens.%s; run `codex login` again",
                       required[i]);
          return NULL;
        }
    }

  auth = pooler_auth_file_new_from_tokens (pooler_tokens_new (get_string (tokens, "access_token"),
                                                              get_string (tokens, "refresh_token"),
                                                              get_string (tokens, "id_token"), 0),
                                           get_string (tokens, "account_id"), "this auth.json", error);
  if (auth == NULL)
    return NULL;

  if (auth->tokens->expires_at != 0 && auth->tokens->expires_at <= now)
    {
      g_autoptr(GDateTime) when = g_date_time_new_from_unix_utc (auth->tokens->expires_at);
      g_autofree char *iso = when != NULL ? g_date_time_format_iso8601 (when) : NULL;

      g_set_error (error, POOLER_ERROR, POOLER_ERROR_EXPIRED,
                   "the access token in this auth.json expired at %s; run `codex login` "
                   "again (or start Codex once so it refreshes) and re-import",
                   iso != NULL ? iso : "an unreadable time");
      return NULL;
    }

  return g_steal_pointer (&auth);
}

PoolerAuthFile *
pooler_auth_file_new_from_tokens (PoolerTokens  *tokens,
                                  const char    *account_id,
                                  const char    *source,
                                  GError       **error)
{
  g_autoptr(PoolerTokens) owned = tokens;
  g_autoptr(PoolerJwtClaims) claims = NULL;
  g_autoptr(PoolerJwtClaims) access_claims = NULL;
  g_autoptr(GError) local_error = NULL;
  PoolerAuthFile *auth;

  g_return_val_if_fail (tokens != NULL && source != NULL, NULL);

  if (tokens->id_token == NULL)
    {
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID, "%s has no id_token", source);
      return NULL;
    }
  claims = pooler_jwt_claims_parse (tokens->id_token, &local_error);
  if (claims == NULL)
    {
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                   "the id_token in %s cannot be read: %s", source, local_error->message);
      return NULL;
    }

  /* The access token is usually a JWT too, but nothing promises it; when
   * it is not, the expiry is unknown rather than an error. */
  access_claims = pooler_jwt_claims_parse (tokens->access_token, NULL);
  if (access_claims != NULL)
    {
      fill_gap (&claims->email, access_claims->email);
      fill_gap (&claims->chatgpt_account_id, access_claims->chatgpt_account_id);
      fill_gap (&claims->plan_type, access_claims->plan_type);
      fill_gap (&claims->chatgpt_user_id, access_claims->chatgpt_user_id);
      if (access_claims->expires_at > 0)
        tokens->expires_at = access_claims->expires_at;
    }

  if (account_id == NULL)
    account_id = claims->chatgpt_account_id;
  if (account_id == NULL)
    {
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                   "%s names no ChatGPT account (no account id and no chatgpt_account_id claim)",
                   source);
      return NULL;
    }

  auth = g_new0 (PoolerAuthFile, 1);
  auth->account_id = g_strdup (account_id);
  auth->tokens = g_steal_pointer (&owned);
  auth->claims = g_steal_pointer (&claims);

  return auth;
}

static void
wipe_and_free (char  *data,
               gsize  length)
{
  if (data != NULL)
    {
      /* volatile so the stores survive the free() that follows */
      volatile char *p = data;

      while (length-- > 0)
        *p++ = '\0';
    }
  g_free (data);
}

PoolerAuthFile *
pooler_auth_file_load (const char  *path,
                       gint64       now,
                       GError     **error)
{
  g_autoptr(GError) local_error = NULL;
  PoolerAuthFile *auth;
  GStatBuf st;
  char *contents = NULL;
  gsize length = 0;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (g_stat (path, &st) != 0)
    {
      int saved_errno = errno;

      g_set_error (error, POOLER_ERROR,
                   saved_errno == ENOENT ? POOLER_ERROR_NOT_FOUND : POOLER_ERROR_FAILED,
                   "%s: %s", path, g_strerror (saved_errno));
      return NULL;
    }

  /* Check before reading so a huge file is never pulled into memory;
   * pipes (e.g. `<(...)`) have no size and are checked after. */
  if (S_ISDIR (st.st_mode))
    {
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                   "%s: is a directory, not an auth.json", path);
      return NULL;
    }
  if (S_ISREG (st.st_mode) && st.st_size > AUTH_FILE_MAX_SIZE)
    {
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                   "%s: larger than 1 MiB, not a Codex auth.json", path);
      return NULL;
    }

  if (!g_file_get_contents (path, &contents, &length, &local_error))
    {
      g_set_error (error, POOLER_ERROR,
                   g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT)
                     ? POOLER_ERROR_NOT_FOUND : POOLER_ERROR_FAILED,
                   "%s: %s", path, local_error->message);
      return NULL;
    }

  if (length > AUTH_FILE_MAX_SIZE)
    {
      wipe_and_free (contents, length);
      g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                   "%s: larger than 1 MiB, not a Codex auth.json", path);
      return NULL;
    }

  auth = pooler_auth_file_parse (contents, length, now, &local_error);
  wipe_and_free (contents, length);

  if (auth == NULL)
    {
      g_set_error (error, POOLER_ERROR, local_error->code,
                   "%s: %s", path, local_error->message);
      return NULL;
    }

  return auth;
}

void
pooler_auth_file_free (PoolerAuthFile *auth)
{
  if (auth == NULL)
    return;

  pooler_tokens_free (auth->tokens);
  pooler_jwt_claims_free (auth->claims);
  g_free (auth->account_id);
  g_free (auth);
}
