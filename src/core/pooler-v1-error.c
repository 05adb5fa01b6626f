/* pooler-v1-error.c: errors for /v1 clients, in the shape the OpenAI SDKs
 * read: {"error":{"message","type","code","param"}}, with the HTTP status
 * they map to their error classes (429 -> RateLimitError ...).
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-v1"

#include "config.h"

#include <string.h>

#include "pooler-api-error.h"
#include "pooler-json.h"
#include "pooler-v1-private.h"

PoolerV1Problem *
pooler_v1_problem_new (guint       status,
                       const char *code,
                       const char *param,
                       const char *format,
                       ...)
{
  PoolerV1Problem *problem = g_new0 (PoolerV1Problem, 1);
  va_list args;

  problem->status = status;
  problem->type = g_strdup (status >= 500 ? "server_error" : "invalid_request_error");
  problem->code = g_strdup (code);
  problem->param = g_strdup (param);
  va_start (args, format);
  problem->message = g_strdup_vprintf (format, args);
  va_end (args);

  return problem;
}

void
pooler_v1_problem_free (PoolerV1Problem *problem)
{
  if (problem == NULL)
    return;

  g_free (problem->type);
  g_free (problem->code);
  g_free (problem->param);
  g_free (problem->message);
  g_free (problem);
}

GBytes *
pooler_v1_problem_to_bytes (const PoolerV1Problem *problem)
{
  return pooler_api_error_build (problem->type, problem->code, problem->param, problem->message);
}

void
pooler_v1_problem_respond (const PoolerV1Problem *problem,
                           SoupServerMessage     *msg)
{
  pooler_api_error_respond (msg, problem->status, problem->type, problem->code,
                            problem->param, problem->message);
}

GBytes *
pooler_v1_unsupported_body (void)
{
  return pooler_api_error_build ("invalid_request_error", "unsupported_endpoint", NULL,
                                 "Unsupported OpenAI /v1 endpoint");
}

static gint64
int_member (JsonObject *object,
            const char *name)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, name) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return 0;

  switch (json_node_get_value_type (node))
    {
    case G_TYPE_INT64:
      return json_node_get_int (node);
    case G_TYPE_DOUBLE:
      return (gint64) json_node_get_double (node);
    default:
      return 0;
    }
}

/* Codes of a failed stream that are the client's or the quota's doing,
 * not the gateway's: they get the status the API would have used. */
static guint
status_for_failure (const char *code,
                    guint       status)
{
  static const char * const quota[] = {
    "rate_limit_exceeded", "usage_limit_reached", "insufficient_quota", "slow_down", NULL,
  };
  static const char * const invalid[] = {
    "context_length_exceeded", "invalid_prompt", "invalid_image", "invalid_request_error",
    "usage_not_included", NULL,
  };

  if (code == NULL)
    return status;
  if (g_strv_contains (quota, code))
    return 429;
  if (g_strv_contains (invalid, code))
    return SOUP_STATUS_BAD_REQUEST;
  if (strcmp (code, "server_is_overloaded") == 0)
    return SOUP_STATUS_SERVICE_UNAVAILABLE;

  return status;
}

GBytes *
pooler_v1_error_translate (guint      *status,
                           GBytes     *body,
                           const char *failure_code,
                           const char *failure_message)
{
  g_autoptr(JsonObject) root = NULL;
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *message = NULL;
  JsonObject *error = NULL;
  const char *type = NULL;
  const char *code = NULL;
  const char *param = NULL;
  gint64 resets_at = 0;
  gsize length = 0;
  const char *data = body != NULL ? g_bytes_get_data (body, &length) : NULL;

  g_return_val_if_fail (status != NULL, NULL);

  if (data != NULL && length > 0)
    root = pooler_json_parse_object (data, length, NULL);
  if (root != NULL && json_object_has_member (root, "error") &&
      JSON_NODE_HOLDS_OBJECT (json_object_get_member (root, "error")))
    error = json_object_get_object_member (root, "error");

  if (error != NULL)
    {
      message = g_strdup (pooler_json_get_string (error, "message"));
      type = pooler_json_get_string (error, "type");
      code = pooler_json_get_string (error, "code");
      param = pooler_json_get_string (error, "param");
      resets_at = int_member (error, "resets_at");
      if (resets_at <= 0 && int_member (error, "resets_in_seconds") > 0)
        resets_at = g_get_real_time () / G_USEC_PER_SEC + int_member (error, "resets_in_seconds");
    }
  else if (root != NULL && pooler_json_get_string (root, "detail") != NULL)
    message = g_strdup (pooler_json_get_string (root, "detail"));

  /* The gateway's own 502 for a stream that failed says less than the
   * failed event did. */
  if (failure_code != NULL || failure_message != NULL)
    {
      g_free (message);
      message = g_strdup (failure_message != NULL ? failure_message
                                                  : "The upstream could not complete the response.");
      code = failure_code;
      type = NULL;
      param = NULL;
      *status = status_for_failure (failure_code, *status);
    }

  if (code == NULL && g_strcmp0 (type, "usage_limit_reached") == 0)
    code = "usage_limit_reached";
  if (type == NULL)
    type = *status >= 500 ? "server_error" : (*status == 429 ? "rate_limit_error" : "invalid_request_error");
  if (message == NULL || *message == '\0')
    {
      g_free (message);
      message = g_strdup_printf ("The upstream answered %u %s.", *status,
                                 soup_status_get_phrase (*status) != NULL
                                 ? soup_status_get_phrase (*status) : "");
    }

  /* Tools show the message; the reset time is what a person needs. */
  if (*status == 429 && resets_at > 0 && strstr (message, "try again at") == NULL &&
      strstr (message, "Try again at") == NULL)
    {
      g_autoptr(GDateTime) when = g_date_time_new_from_unix_utc (resets_at);
      g_autofree char *when_text = when != NULL ? g_date_time_format (when, "%Y-%m-%d %H:%M UTC") : NULL;

      if (when_text != NULL)
        {
          char *longer = g_strdup_printf ("%s%s Try again at %s.", message,
                                          g_str_has_suffix (message, ".") ? "" : ".", when_text);

          g_free (message);
          message = longer;
        }
    }

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "error");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "message");
  json_builder_add_string_value (builder, message);
  json_builder_set_member_name (builder, "type");
  json_builder_add_string_value (builder, type);
  json_builder_set_member_name (builder, "code");
  if (code != NULL)
    json_builder_add_string_value (builder, code);
  else
    json_builder_add_null_value (builder);
  json_builder_set_member_name (builder, "param");
  if (param != NULL)
    json_builder_add_string_value (builder, param);
  else
    json_builder_add_null_value (builder);
  if (resets_at > 0)
    {
      json_builder_set_member_name (builder, "resets_at");
      json_builder_add_int_value (builder, resets_at);
    }
  json_builder_end_object (builder);
  json_builder_end_object (builder);

  node = json_builder_get_root (builder);
  return pooler_v1_json_to_bytes (node);
}
