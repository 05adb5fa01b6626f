/* pooler-request-record.h: metadata of one gateway request and its attempts.
 *
 * Metadata only, by design: no bodies, prompts, tokens or raw keys ever get
 * into one of these, so nothing secret can reach the request log.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib-object.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef enum
{
  POOLER_REQUEST_IN_FLIGHT,
  POOLER_REQUEST_COMPLETED,
  POOLER_REQUEST_INTERRUPTED,   /* the process died while it was in flight */
} PoolerRequestState;

typedef struct
{
  guint   attempt;          /* 1-based */
  char   *account_id;
  int     upstream_status;  /* 0 when no HTTP answer came */
  char   *error_code;       /* NULL on success */
  gint64  started_at_ms;    /* unix milliseconds */
  gint64  duration_ms;
} PoolerAttemptRecord;

typedef struct
{
  char               *id;               /* "req_" + 20 hex */
  PoolerRequestState  state;
  gint64              started_at_ms;    /* unix milliseconds */
  char               *pool_slug;
  char               *key_prefix;       /* "sk-cxp-<12 hex>", never the secret */
  char               *account_id;       /* the account that served it, NULL if none */
  char               *model;
  char               *endpoint;         /* route, e.g. "/backend-api/codex/responses" */
  char               *transport;        /* "sse" or "http" */
  int                 status;           /* what the client got */
  int                 upstream_status;  /* last upstream answer, 0 if none */
  gint64              latency_ms;       /* until the answer was finished */
  gint64              ttfb_ms;          /* until the first body byte went out, -1 if none */
  gint64              input_tokens;     /* -1: unknown */
  gint64              output_tokens;
  gint64              cached_tokens;
  gint64              reasoning_tokens;
  char               *error_code;
  GPtrArray          *attempts;         /* of PoolerAttemptRecord*, owned */
} PoolerRequestRecord;

/* How a record is written as JSON: the CLI's --json and the MCP tools each
 * keep the shape their consumers already rely on. */
typedef enum
{
  /* started_at_ms as unix milliseconds, -1 for unknown, text as stored */
  POOLER_REQUEST_JSON_CLI,
  /* started_at as ISO 8601, null for unknown, e-mails masked in text */
  POOLER_REQUEST_JSON_MCP,
} PoolerRequestJsonStyle;

#define POOLER_TYPE_REQUEST_RECORD (pooler_request_record_get_type ())

GType                pooler_request_record_get_type  (void) G_GNUC_CONST;
PoolerRequestRecord *pooler_request_record_new       (void);
PoolerRequestRecord *pooler_request_record_copy      (const PoolerRequestRecord *record);
void                 pooler_request_record_free      (PoolerRequestRecord       *record);
/* A copy in one block (the record, its attempts, every string), for the
 * log writer: a request is pushed twice, and copy() costs a dozen
 * allocations. Read-only; freed with snapshot_free() only. Every string
 * field is copied here and in copy(). */
PoolerRequestRecord *pooler_request_record_snapshot  (const PoolerRequestRecord *record);
void                 pooler_request_record_snapshot_free (PoolerRequestRecord   *snapshot);
PoolerAttemptRecord *pooler_request_record_add_attempt (PoolerRequestRecord     *record,
                                                        const char              *account_id);
void                 pooler_request_record_to_json   (const PoolerRequestRecord *record,
                                                      PoolerRequestJsonStyle     style,
                                                      JsonBuilder               *builder);
const char          *pooler_request_state_to_string  (PoolerRequestState        state);
gboolean             pooler_request_state_from_string (const char               *str,
                                                       PoolerRequestState       *state);

void                 pooler_attempt_record_free      (PoolerAttemptRecord       *attempt);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PoolerRequestRecord, pooler_request_record_free)

G_END_DECLS
