/* pooler-request-record.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <string.h>

#include "pooler-redact.h"
#include "pooler-request-record.h"

G_DEFINE_BOXED_TYPE (PoolerRequestRecord, pooler_request_record,
                     pooler_request_record_copy, pooler_request_record_free)

/* "req_", @ms in 12 hex digits, @count in 8 (printf costs ten times as
 * much, and every request has one). */
static char *
format_request_id (guint64 ms,
                   guint32 count)
{
  static const char digits[] = "0123456789abcdef";
  char *id = g_malloc (4 + 12 + 8 + 1);

  memcpy (id, "req_", 4);
  for (int i = 0; i < 12; i++)
    id[4 + i] = digits[(ms >> (4 * (11 - i))) & 0xf];
  for (int i = 0; i < 8; i++)
    id[16 + i] = digits[(count >> (4 * (7 - i))) & 0xf];
  id[24] = '\0';
  return id;
}

/* "req_" and 20 hex digits: the time in milliseconds (48 bits), then a
 * counter (32 bits) that starts at a random value per process. Ids in
 * time order append to the requests table's key index instead of landing
 * all over it: the writer dirties a page or two per batch, not one per
 * row. The counter, not chance, keeps ids of one millisecond apart. */
static char *
new_request_id (void)
{
  static gsize base_ready = 0;
  static guint32 base;
  static gint counter;
  guint64 ms = (guint64) (g_get_real_time () / 1000) & G_GUINT64_CONSTANT (0xffffffffffff);

  if (g_once_init_enter (&base_ready))
    {
      base = g_random_int ();
      g_once_init_leave (&base_ready, 1);
    }

  return format_request_id (ms, base + (guint32) g_atomic_int_add (&counter, 1));
}

PoolerRequestRecord *
pooler_request_record_new (void)
{
  PoolerRequestRecord *record = g_new0 (PoolerRequestRecord, 1);

  record->id = new_request_id ();
  record->state = POOLER_REQUEST_IN_FLIGHT;
  record->started_at_ms = g_get_real_time () / 1000;
  record->ttfb_ms = -1;
  record->input_tokens = -1;
  record->output_tokens = -1;
  record->cached_tokens = -1;
  record->reasoning_tokens = -1;
  record->attempts = g_ptr_array_new_with_free_func ((GDestroyNotify) pooler_attempt_record_free);

  return record;
}

void
pooler_attempt_record_free (PoolerAttemptRecord *attempt)
{
  if (attempt == NULL)
    return;

  g_free (attempt->account_id);
  g_free (attempt->error_code);
  g_free (attempt);
}

static PoolerAttemptRecord *
attempt_copy (const PoolerAttemptRecord *attempt,
              gpointer                   user_data)
{
  PoolerAttemptRecord *copy = g_memdup2 (attempt, sizeof *attempt);

  copy->account_id = g_strdup (attempt->account_id);
  copy->error_code = g_strdup (attempt->error_code);

  return copy;
}

PoolerRequestRecord *
pooler_request_record_copy (const PoolerRequestRecord *record)
{
  PoolerRequestRecord *copy;

  g_return_val_if_fail (record != NULL, NULL);

  copy = g_memdup2 (record, sizeof *record);
  copy->id = g_strdup (record->id);
  copy->pool_slug = g_strdup (record->pool_slug);
  copy->key_prefix = g_strdup (record->key_prefix);
  copy->account_id = g_strdup (record->account_id);
  copy->model = g_strdup (record->model);
  copy->endpoint = g_strdup (record->endpoint);
  copy->transport = g_strdup (record->transport);
  copy->error_code = g_strdup (record->error_code);
  copy->attempts = g_ptr_array_copy (record->attempts, (GCopyFunc) attempt_copy, NULL);
  g_ptr_array_set_free_func (copy->attempts, (GDestroyNotify) pooler_attempt_record_free);

  return copy;
}

void
pooler_request_record_free (PoolerRequestRecord *record)
{
  if (record == NULL)
    return;

  g_free (record->id);
  g_free (record->pool_slug);
  g_free (record->key_prefix);
  g_free (record->account_id);
  g_free (record->model);
  g_free (record->endpoint);
  g_free (record->transport);
  g_free (record->error_code);
  g_clear_pointer (&record->attempts, g_ptr_array_unref);
  g_free (record);
}

/* Room for @text and its NUL, or nothing for NULL. */
static gsize
text_size (const char *text)
{
  return text != NULL ? strlen (text) + 1 : 0;
}

/* @text copied to *@at (which moves past it), or NULL. */
static char *
take_text (char       **at,
           const char  *text)
{
  char *copy;
  gsize size;

  if (text == NULL)
    return NULL;
  size = strlen (text) + 1;
  copy = memcpy (*at, text, size);
  *at += size;
  return copy;
}

PoolerRequestRecord *
pooler_request_record_snapshot (const PoolerRequestRecord *record)
{
  guint n;
  gsize size;
  PoolerRequestRecord *copy;
  PoolerAttemptRecord *attempts;
  char *at;

  G_STATIC_ASSERT (sizeof (PoolerRequestRecord) % G_ALIGNOF (PoolerAttemptRecord) == 0);

  g_return_val_if_fail (record != NULL && record->attempts != NULL, NULL);

  n = record->attempts->len;
  size = sizeof (PoolerRequestRecord) + n * sizeof (PoolerAttemptRecord);

  size += text_size (record->id) + text_size (record->pool_slug) + text_size (record->key_prefix) +
          text_size (record->account_id) + text_size (record->model) + text_size (record->endpoint) +
          text_size (record->transport) + text_size (record->error_code);
  for (guint i = 0; i < n; i++)
    {
      const PoolerAttemptRecord *attempt = g_ptr_array_index (record->attempts, i);

      size += text_size (attempt->account_id) + text_size (attempt->error_code);
    }

  copy = g_malloc (size);
  *copy = *record;
  attempts = (PoolerAttemptRecord *) (copy + 1);
  at = (char *) (attempts + n);
  copy->id = take_text (&at, record->id);
  copy->pool_slug = take_text (&at, record->pool_slug);
  copy->key_prefix = take_text (&at, record->key_prefix);
  copy->account_id = take_text (&at, record->account_id);
  copy->model = take_text (&at, record->model);
  copy->endpoint = take_text (&at, record->endpoint);
  copy->transport = take_text (&at, record->transport);
  copy->error_code = take_text (&at, record->error_code);
  copy->attempts = g_ptr_array_sized_new (n);
  for (guint i = 0; i < n; i++)
    {
      const PoolerAttemptRecord *attempt = g_ptr_array_index (record->attempts, i);

      attempts[i] = *attempt;
      attempts[i].account_id = take_text (&at, attempt->account_id);
      attempts[i].error_code = take_text (&at, attempt->error_code);
      g_ptr_array_add (copy->attempts, &attempts[i]);
    }
  g_assert (at == (char *) copy + size);

  return copy;
}

void
pooler_request_record_snapshot_free (PoolerRequestRecord *snapshot)
{
  if (snapshot == NULL)
    return;

  g_ptr_array_unref (snapshot->attempts);
  g_free (snapshot);
}

PoolerAttemptRecord *
pooler_request_record_add_attempt (PoolerRequestRecord *record,
                                   const char          *account_id)
{
  PoolerAttemptRecord *attempt;

  g_return_val_if_fail (record != NULL, NULL);

  attempt = g_new0 (PoolerAttemptRecord, 1);
  attempt->attempt = record->attempts->len + 1;
  attempt->account_id = g_strdup (account_id);
  attempt->started_at_ms = g_get_real_time () / 1000;
  g_ptr_array_add (record->attempts, attempt);

  return attempt;
}

static const char * const state_names[] = {
  [POOLER_REQUEST_IN_FLIGHT] = "in_flight",
  [POOLER_REQUEST_COMPLETED] = "completed",
  [POOLER_REQUEST_INTERRUPTED] = "interrupted",
};

const char *
pooler_request_state_to_string (PoolerRequestState state)
{
  g_return_val_if_fail ((guint) state < G_N_ELEMENTS (state_names), "unknown");

  return state_names[state];
}

gboolean
pooler_request_state_from_string (const char         *str,
                                  PoolerRequestState *state)
{
  for (guint i = 0; i < G_N_ELEMENTS (state_names); i++)
    {
      if (g_strcmp0 (str, state_names[i]) == 0)
        {
          *state = (PoolerRequestState) i;
          return TRUE;
        }
    }

  return FALSE;
}

/* NULL becomes null; @redact masks any e-mail address in the text. */
static void
add_text (JsonBuilder *builder,
          const char  *name,
          const char  *value,
          gboolean     redact)
{
  g_autofree char *redacted = NULL;

  if (redact)
    value = redacted = pooler_redact_text (value);

  json_builder_set_member_name (builder, name);
  if (value != NULL)
    json_builder_add_string_value (builder, value);
  else
    json_builder_add_null_value (builder);
}

static void
add_int (JsonBuilder *builder,
         const char  *name,
         gint64       value)
{
  json_builder_set_member_name (builder, name);
  json_builder_add_int_value (builder, value);
}

/* A count that is -1 when unknown: null on the MCP surface. */
static void
add_count (JsonBuilder            *builder,
           PoolerRequestJsonStyle  style,
           const char             *name,
           gint64                  value)
{
  json_builder_set_member_name (builder, name);
  if (value >= 0 || style == POOLER_REQUEST_JSON_CLI)
    json_builder_add_int_value (builder, value);
  else
    json_builder_add_null_value (builder);
}

/* Unix milliseconds: "started_at_ms" as a number for the CLI; "started_at"
 * as ISO 8601 UTC with milliseconds (null for <= 0) for MCP. */
static void
add_started_at (JsonBuilder            *builder,
                PoolerRequestJsonStyle  style,
                gint64                  unix_ms)
{
  g_autoptr(GDateTime) time = NULL;
  g_autofree char *text = NULL;

  if (style == POOLER_REQUEST_JSON_CLI)
    {
      add_int (builder, "started_at_ms", unix_ms);
      return;
    }

  if (unix_ms > 0)
    time = g_date_time_new_from_unix_utc (unix_ms / 1000);
  if (time != NULL)
    {
      g_autofree char *seconds = g_date_time_format (time, "%Y-%m-%dT%H:%M:%S");

      text = g_strdup_printf ("%s.%03dZ", seconds, (int) (unix_ms % 1000));
    }

  json_builder_set_member_name (builder, "started_at");
  if (text != NULL)
    json_builder_add_string_value (builder, text);
  else
    json_builder_add_null_value (builder);
}

/**
 * pooler_request_record_to_json:
 * @record: a request and its attempts
 * @style: which surface's field names and values
 * @builder: where to add one object
 *
 * Adds @record as one JSON object, attempts included.
 */
void
pooler_request_record_to_json (const PoolerRequestRecord *record,
                               PoolerRequestJsonStyle     style,
                               JsonBuilder               *builder)
{
  /* Free text (a model name, an error code) could carry an e-mail address;
   * ids, slugs, prefixes and routes are ours. */
  gboolean redact = style == POOLER_REQUEST_JSON_MCP;

  g_return_if_fail (record != NULL);
  g_return_if_fail (JSON_IS_BUILDER (builder));

  json_builder_begin_object (builder);
  add_text (builder, "id", record->id, FALSE);
  add_started_at (builder, style, record->started_at_ms);
  add_text (builder, "state", pooler_request_state_to_string (record->state), FALSE);
  add_text (builder, "pool", record->pool_slug, FALSE);
  add_text (builder, "key_prefix", record->key_prefix, FALSE);
  add_text (builder, "account_id", record->account_id, FALSE);
  add_text (builder, "model", record->model, redact);
  add_text (builder, "endpoint", record->endpoint, FALSE);
  add_text (builder, "transport", record->transport, FALSE);
  add_int (builder, "status", record->status);
  add_int (builder, "upstream_status", record->upstream_status);
  add_int (builder, "latency_ms", record->latency_ms);
  add_count (builder, style, "ttfb_ms", record->ttfb_ms);
  add_count (builder, style, "input_tokens", record->input_tokens);
  add_count (builder, style, "output_tokens", record->output_tokens);
  add_count (builder, style, "cached_tokens", record->cached_tokens);
  add_count (builder, style, "reasoning_tokens", record->reasoning_tokens);
  add_text (builder, "error_code", record->error_code, redact);

  json_builder_set_member_name (builder, "attempts");
  json_builder_begin_array (builder);
  for (guint i = 0; record->attempts != NULL && i < record->attempts->len; i++)
    {
      const PoolerAttemptRecord *attempt = g_ptr_array_index (record->attempts, i);

      json_builder_begin_object (builder);
      add_int (builder, "attempt", attempt->attempt);
      add_text (builder, "account_id", attempt->account_id, FALSE);
      add_int (builder, "upstream_status", attempt->upstream_status);
      add_text (builder, "error_code", attempt->error_code, redact);
      add_started_at (builder, style, attempt->started_at_ms);
      add_int (builder, "duration_ms", attempt->duration_ms);
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  json_builder_end_object (builder);
}
