/* pooler-key-record.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include "pooler-key-record.h"

G_DEFINE_BOXED_TYPE (PoolerKeyRecord, pooler_key_record,
                     pooler_key_record_copy, pooler_key_record_free)

PoolerKeyRecord *
pooler_key_record_new (void)
{
  return g_new0 (PoolerKeyRecord, 1);
}

PoolerKeyRecord *
pooler_key_record_copy (const PoolerKeyRecord *record)
{
  PoolerKeyRecord *copy;

  g_return_val_if_fail (record != NULL, NULL);

  copy = g_memdup2 (record, sizeof *record);
  copy->prefix = g_strdup (record->prefix);
  copy->secret_sha256 = g_strdup (record->secret_sha256);
  copy->pool_slug = g_strdup (record->pool_slug);
  copy->name = g_strdup (record->name);
  copy->allowed_models = g_strdupv (record->allowed_models);

  return copy;
}

void
pooler_key_record_free (PoolerKeyRecord *record)
{
  if (record == NULL)
    return;

  g_free (record->prefix);
  g_free (record->secret_sha256);
  g_free (record->pool_slug);
  g_free (record->name);
  g_strfreev (record->allowed_models);
  g_free (record);
}

gboolean
pooler_key_record_allows_model (const PoolerKeyRecord *record,
                                const char            *model)
{
  g_return_val_if_fail (record != NULL, FALSE);

  if (record->allowed_models == NULL || record->allowed_models[0] == NULL)
    return TRUE;
  if (model == NULL)
    return FALSE;

  return g_strv_contains ((const char * const *) record->allowed_models, model);
}
