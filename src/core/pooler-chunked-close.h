/* pooler-chunked-close.h: ends chunked answers without a thread hop.
 *
 * libsoup 3.2 ends a chunked response body with g_output_stream_close_async()
 * on its body stream, which has no asynchronous close of its own, so GIO
 * runs the close (writing the five-byte last chunk) in a worker thread and
 * reports back through the main loop. For every streamed answer that put
 * the last bytes the client waits for about 0.2 ms behind the rest, behind
 * a thread wake-up and an eventfd round trip.
 *
 * pooler_chunked_close_install() gives that stream class an asynchronous
 * flush and close (GIO flushes first, also in a thread, once close_async
 * is not its default) that run at once when the socket can take the last
 * chunk (it always can, short of a stalled client), and otherwise fall
 * back to GIO's threaded ones. It installs once the class exists (after the
 * first body stream), so callers call it before each streamed answer; it
 * costs one branch once installed.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* TRUE once installed. */
gboolean pooler_chunked_close_install (void);

G_END_DECLS
