/* pooler-key-record.h: the stored side of a Pool API key (never the secret).
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

typedef struct
{
  char    *prefix;          /* "sk-cxp-<12 hex>": public, shown in lists and logs */
  char    *secret_sha256;   /* lowercase hex SHA-256 of the secret part */
  gint64   pool_id;
  char    *pool_slug;       /* filled in by the store on reads */
  char    *name;
  gboolean revoked;
  gint64   created_at;      /* unix seconds */
  gint64   expires_at;      /* unix seconds, 0 = never */
  gint64   last_used_at;    /* unix seconds, 0 = never */
  char   **allowed_models;  /* NULL = every model */
} PoolerKeyRecord;

#define POOLER_TYPE_KEY_RECORD (pooler_key_record_get_type ())

GType            pooler_key_record_get_type (void) G_GNUC_CONST;
PoolerKeyRecord *pooler_key_record_new      (void);
PoolerKeyRecord *pooler_key_record_copy     (const PoolerKeyRecord *record);
void             pooler_key_record_free     (PoolerKeyRecord       *record);
gboolean         pooler_key_record_allows_model (const PoolerKeyRecord *record,
                                                 const char            *model);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PoolerKeyRecord, pooler_key_record_free)

G_END_DECLS
