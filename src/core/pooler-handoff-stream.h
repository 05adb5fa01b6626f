/* pooler-handoff-stream.h: a client connection handed to libsoup after
 * the hot path has read the start of it.
 *
 * Reads return the bytes already read first, then the socket's; writes
 * and close go to the connection. The connection stays reachable as the
 * "base-iostream" property (as on libsoup's own wrapper streams), and the
 * input is pollable, as libsoup's server requires.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define POOLER_TYPE_HANDOFF_STREAM (pooler_handoff_stream_get_type ())

G_DECLARE_FINAL_TYPE (PoolerHandoffStream, pooler_handoff_stream, POOLER, HANDOFF_STREAM, GIOStream)

GIOStream *pooler_handoff_stream_new (GIOStream *base,
                                      GBytes    *already_read);

G_END_DECLS
