/* pooler-quota.h: quota evidence — what the upstream tells us, with every
 * answer, about how much of an account's usage windows is spent.
 *
 * Sources: the x-codex-* response headers (and extra limit families
 * x-<limit>-primary-* with x-<limit>-limit-name), x-codex-credits-*,
 * "codex.rate_limits" stream events, 429 bodies (usage_limit_reached with
 * resets_at / resets_in_seconds and plan_type) and the wham/usage answer.
 * Windows are keyed by (limit id, length in minutes), whatever slot
 * (primary/secondary) they arrived in: 300 min is the 5-hour window,
 * 10080 min the weekly one. Evidence older than POOLER_QUOTA_FRESH_SECONDS
 * is stale.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "pooler-http-fields.h"

G_BEGIN_DECLS

#define POOLER_QUOTA_FRESH_SECONDS (15 * 60)
#define POOLER_QUOTA_DEFAULT_LIMIT "codex"

typedef enum
{
  POOLER_QUOTA_SOURCE_HEADERS,
  POOLER_QUOTA_SOURCE_EVENT,
  POOLER_QUOTA_SOURCE_ERROR,
  POOLER_QUOTA_SOURCE_USAGE_API,
  POOLER_QUOTA_SOURCE_STORED,
} PoolerQuotaSource;

typedef struct
{
  char              *limit_id;        /* "codex", or e.g. "codex_bengalfox" */
  char              *limit_name;      /* display name from -limit-name, may be NULL */
  int                window_minutes;  /* > 0 */
  double             used_percent;    /* 0..100 (clamped) */
  gint64             reset_at;        /* unix seconds, 0 when unknown */
  gint64             observed_at;     /* unix seconds */
  PoolerQuotaSource  source;
} PoolerQuotaWindow;

typedef struct
{
  GPtrArray *windows;            /* PoolerQuotaWindow*, owned */
  char      *plan_type;          /* may be NULL */
  gboolean   credits_known;
  gboolean   has_credits;
  gboolean   credits_unlimited;
  double     credits_balance;
  /* A 429 (or limit_reached flag) that says the account is spent now. */
  char      *limit_reached_type; /* "usage_limit_reached", "rate_limit_exceeded" ... or NULL */
  gint64     blocked_until;      /* unix seconds from resets_at/resets_in_seconds, 0 if none */
  gint64     observed_at;
} PoolerQuotaEvidence;

PoolerQuotaWindow   *pooler_quota_window_copy      (const PoolerQuotaWindow *window);
void                 pooler_quota_window_free      (PoolerQuotaWindow       *window);
/* "5h", "weekly", or "<n>m" / "<n>d" for other lengths. */
char                *pooler_quota_window_kind      (int                      window_minutes);
const char          *pooler_quota_source_to_string (PoolerQuotaSource        source);

PoolerQuotaEvidence *pooler_quota_evidence_new     (gint64                   observed_at);
void                 pooler_quota_evidence_free    (PoolerQuotaEvidence     *evidence);
/* The parsers return NULL when the input carries no evidence at all. */
PoolerQuotaEvidence *pooler_quota_parse_headers    (SoupMessageHeaders      *headers,
                                                    gint64                   now);
/* The same from an answer's fields (the hot path's). */
PoolerQuotaEvidence *pooler_quota_parse_fields     (const PoolerHttpFields  *fields,
                                                    gint64                   now);
PoolerQuotaEvidence *pooler_quota_parse_event      (const char              *data,
                                                    gsize                    length,
                                                    gint64                   now);
PoolerQuotaEvidence *pooler_quota_parse_error_body (guint                    status,
                                                    const char              *data,
                                                    gsize                    length,
                                                    gint64                   now);
PoolerQuotaEvidence *pooler_quota_parse_usage      (const char              *data,
                                                    gsize                    length,
                                                    gint64                   now);

/* What we know of one account, accumulated. Not thread-safe: main loop. */
typedef struct _PoolerQuotaState PoolerQuotaState;

PoolerQuotaState    *pooler_quota_state_new        (void);
void                 pooler_quota_state_free       (PoolerQuotaState        *state);
/* Newer observations of the same (limit, minutes) window replace older
 * ones; blocked_until only moves forward until it has passed. */
void                 pooler_quota_state_merge      (PoolerQuotaState        *state,
                                                    const PoolerQuotaEvidence *evidence);
void                 pooler_quota_state_add_window (PoolerQuotaState        *state,
                                                    const PoolerQuotaWindow *window);
/* Every answer repeats its quota fields, and parsing them costs more than
 * the rest of an answer's bookkeeping. After the evidence of an answer's
 * @fields (read at @now) has been merged, mark_fields() remembers the
 * x- fields the parse may read (by their names' endings: -used-percent,
 * -window-minutes, -reset-at, -plan-type ...; not x-request-id);
 * repeats_fields() then says whether other @fields, read in the same
 * second, have the very same such fields (names, values, order) and
 * nothing else was merged or added since: merging their evidence again
 * would change nothing. */
gboolean             pooler_quota_state_repeats_fields (PoolerQuotaState       *state,
                                                        const PoolerHttpFields *fields,
                                                        gint64                  now);
void                 pooler_quota_state_mark_fields    (PoolerQuotaState       *state,
                                                        const PoolerHttpFields *fields,
                                                        gint64                  now);
/* Spent: a 429 block still running, or a fresh default-limit window at
 * >= 100 % whose reset is in the future. *out_reset_at gets when it
 * comes back (the latest reset of the spent windows / block). */
gboolean             pooler_quota_state_is_spent   (PoolerQuotaState        *state,
                                                    gint64                   now,
                                                    gint64                  *out_reset_at);
/* No fresh default-limit window. */
gboolean             pooler_quota_state_is_stale   (PoolerQuotaState        *state,
                                                    gint64                   now);
/* Remaining percent of the tightest fresh default-limit window (the
 * minimum of 100 - used), or -1 with no fresh evidence. */
double               pooler_quota_state_remaining  (PoolerQuotaState        *state,
                                                    gint64                   now);
gint64               pooler_quota_state_last_observed (PoolerQuotaState     *state);
const char          *pooler_quota_state_get_plan_type (PoolerQuotaState     *state);
/* PoolerQuotaWindow* borrowed, sorted by limit id then minutes. */
GPtrArray           *pooler_quota_state_get_windows (PoolerQuotaState       *state);
/* The upstream's wham/usage shape ({"plan_type","rate_limit":{"allowed",
 * "limit_reached","primary_window","secondary_window"},"credits"}), with
 * primary = the shortest default-limit window and secondary = the weekly
 * one; reset_after_seconds computed against @now. */
JsonNode            *pooler_quota_state_to_usage_json (PoolerQuotaState     *state,
                                                       gint64                now);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PoolerQuotaEvidence, pooler_quota_evidence_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PoolerQuotaState, pooler_quota_state_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PoolerQuotaWindow, pooler_quota_window_free)

G_END_DECLS
