/* pooler-timing.h
 *
 * A developer's timing trace of the hot path, for bench/count: with
 * CODEX_POOLER_TRACE_TIMES=FILE in the environment, every request the
 * gateway's own HTTP code answers appends one line to FILE:
 *
 *   CLIENT_PORT RECEIVED HANDLED FORWARDED UPSTREAM_HEAD FIRST_WRITE ANSWERED
 *
 * (microseconds of g_get_monotonic_time(), that is CLOCK_MONOTONIC; 0
 * for a step the request did not reach). No path, header, body or key:
 * only times and the client's port, to join with the client's own log.
 * Lines are buffered and written by pooler_timing_flush() (the gateway's
 * sweep, its shutdown, and a full buffer): tracing adds one system call
 * per connection (getpeername()), none per request. The file is opened
 * when the gateway starts listening.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Whether CODEX_POOLER_TRACE_TIMES named a file that could be opened (read
 * once, at the first call: the gateway makes it when it starts listening). */
gboolean pooler_timing_enabled (void);

/* Set by pooler_timing_enabled(); read it with pooler_timing_active(). */
extern gboolean pooler_timing_on;

/* What the hot path asks before it takes a time for the trace: a load
 * and a branch, so without a trace no clock is read and no mark set. */
static inline gboolean
pooler_timing_active (void)
{
  return G_UNLIKELY (pooler_timing_on);
}
/* Appends a line; @marks are the exchange's POOLER_EXCHANGE_N_MARKS marks. */
void     pooler_timing_write   (guint16       client_port,
                                const gint64 *marks,
                                guint         n_marks,
                                gint64        answered);
void     pooler_timing_flush   (void);

G_END_DECLS
