/* pooler-jwt.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-jwt"

#include "config.h"

#include <math.h>
#include <string.h>

#include "pooler-error.h"
#include "pooler-json.h"
#include "pooler-jwt.h"

#define CLAIM_AUTH    "https://api.openai.com/auth"
#define CLAIM_PROFILE "https://api.openai.com/profile"

static gboolean
is_base64url (char c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* g_base64_decode() silently skips characters outside its alphabet, so
 * the input is checked here and then translated to the standard one. */
static guint8 *
base64url_decode (const char *data,
                  gsize       length,
                  gsize      *out_length)
{
  g_autofree char *standard = NULL;
  gsize i;

  if (length == 0 || length % 4 == 1)
    return NULL;

  standard = g_malloc (length + 3);
  for (i = 0; i < length; i++)
    {
      char c = data[i];

      if (!is_base64url (c))
        return NULL;
      standard[i] = c == '-' ? '+' : c == '_' ? '/' : c;
    }
  while (i % 4 != 0)
    standard[i++] = '=';
  standard[i] = '\0';

  return g_base64_decode (standard, out_length);
}

JsonObject *
pooler_jwt_decode_payload (const char  *jwt,
                           GError     **error)
{
  const char *first_dot;
  const char *second_dot;
  g_autofree guint8 *payload = NULL;
  gsize payload_len = 0;
  JsonObject *object;

  g_return_val_if_fail (jwt != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  first_dot = strchr (jwt, '.');
  second_dot = first_dot != NULL ? strchr (first_dot + 1, '.') : NULL;
  if (second_dot == NULL || strchr (second_dot + 1, '.') != NULL)
    {
      g_set_error_literal (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                           "The token is not a JWT (expected three dot-separated parts)");
      return NULL;
    }

  payload = base64url_decode (first_dot + 1, second_dot - first_dot - 1, &payload_len);
  if (payload == NULL)
    {
      g_set_error_literal (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                           "The token's payload is not valid base64url");
      return NULL;
    }

  /* json-glib's message may quote the payload, so it is not passed on. */
  object = pooler_json_parse_object ((const char *) payload, payload_len, NULL);
  memset (payload, 0, payload_len);
  if (object == NULL)
    {
      g_set_error_literal (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                           "The token's payload is not a JSON object");
      return NULL;
    }

  return object;
}

/* NULL unless @name holds a non-empty string. */
static const char *
get_string (JsonObject *object,
            const char *name)
{
  JsonNode *node;
  const char *value;

  if (object == NULL)
    return NULL;

  node = json_object_get_member (object, name);
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;

  value = json_node_get_string (node);
  return value != NULL && value[0] != '\0' ? value : NULL;
}

static JsonObject *
get_object (JsonObject *object,
            const char *name)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return NULL;

  return json_node_get_object (node);
}

/* Whole seconds; some issuers write them as doubles. 0 when absent or
 * out of range. */
static gint64
get_seconds (JsonObject *object,
             const char *name)
{
  JsonNode *node = json_object_get_member (object, name);
  GType type;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return 0;

  type = json_node_get_value_type (node);
  if (type == G_TYPE_INT64)
    return json_node_get_int (node);

  if (type == G_TYPE_DOUBLE)
    {
      double value = json_node_get_double (node);

      if (isfinite (value) && value >= (double) G_MININT64 && value < (double) G_MAXINT64)
        return (gint64) value;
    }

  return 0;
}

PoolerJwtClaims *
pooler_jwt_claims_parse (const char  *jwt,
                         GError     **error)
{
  g_autoptr(JsonObject) payload = NULL;
  g_autoptr(PoolerJwtClaims) claims = NULL;
  JsonObject *auth;
  JsonObject *profile;
  const char *user_id;

  g_return_val_if_fail (jwt != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  payload = pooler_jwt_decode_payload (jwt, error);
  if (payload == NULL)
    return NULL;

  auth = get_object (payload, CLAIM_AUTH);
  profile = get_object (payload, CLAIM_PROFILE);

  claims = g_new0 (PoolerJwtClaims, 1);

  claims->email = g_strdup (get_string (payload, "email"));
  if (claims->email == NULL)
    claims->email = g_strdup (get_string (profile, "email"));

  claims->chatgpt_account_id = g_strdup (get_string (auth, "chatgpt_account_id"));
  claims->plan_type = g_strdup (get_string (auth, "chatgpt_plan_type"));

  user_id = get_string (auth, "chatgpt_user_id");
  if (user_id == NULL)
    user_id = get_string (auth, "user_id");
  if (user_id == NULL)
    user_id = get_string (payload, "sub");
  claims->chatgpt_user_id = g_strdup (user_id);

  claims->expires_at = get_seconds (payload, "exp");
  claims->issued_at = get_seconds (payload, "iat");

  return g_steal_pointer (&claims);
}

void
pooler_jwt_claims_free (PoolerJwtClaims *claims)
{
  if (claims == NULL)
    return;

  g_free (claims->email);
  g_free (claims->chatgpt_account_id);
  g_free (claims->chatgpt_user_id);
  g_free (claims->plan_type);
  g_free (claims);
}
