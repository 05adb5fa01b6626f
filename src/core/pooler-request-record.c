/* pooler-request-record.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include "pooler-request-record.h"

G_DEFINE_BOXED_TYPE (PoolerRequestRecord, pooler_request_record,
                     pooler_request_record_copy, pooler_request_record_free)

static char *
new_request_id (void)
{
  guint8 bytes[10];
  GString *id = g_string_new ("req_");

  for (guint i = 0; i < G_N_ELEMENTS (bytes); i++)
    bytes[i] = (guint8) g_random_int_range (0, 256);
  for (guint i = 0; i < G_N_ELEMENTS (bytes); i++)
    g_string_append_printf (id, "%02x", bytes[i]);

  return g_string_free (id, FALSE);
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
