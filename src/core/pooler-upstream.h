/* pooler-upstream.h: the hot path's HTTP/1.1 client to the upstream.
 *
 * One request per connection at a time, connections kept alive and reused
 * per scheme, host and port; TLS and proxies come from GSocketClient. It
 * writes the request head and body in one vectored write and hands the
 * answer's body back decoded (Content-Length, chunked or until close) in
 * whatever pieces the socket delivers, so a streamed answer is never
 * held back. SoupSession stays for the rare calls (token refresh, usage
 * polls); on the per-request path it cost more than the rest of the
 * gateway together (see docs/architecture.md).
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

#include "pooler-http-fields.h"

G_BEGIN_DECLS

#define POOLER_TYPE_UPSTREAM (pooler_upstream_get_type ())
G_DECLARE_FINAL_TYPE (PoolerUpstream, pooler_upstream, POOLER, UPSTREAM, GObject)

#define POOLER_TYPE_UPSTREAM_RESPONSE (pooler_upstream_response_get_type ())
G_DECLARE_FINAL_TYPE (PoolerUpstreamResponse, pooler_upstream_response, POOLER, UPSTREAM_RESPONSE, GObject)

/* The end of pooler_upstream_response_read(): @bytes, or NULL and @error. */
typedef void (*PoolerUpstreamReadFunc) (PoolerUpstreamResponse *response,
                                        GBytes                 *bytes,
                                        GError                 *error,
                                        gpointer                user_data);

PoolerUpstream         *pooler_upstream_new                   (void);

/* A request built in place, for the hot path: its head is written into
 * one buffer as the headers are added (no SoupMessageHeaders, no copy).
 * NULL and G_IO_ERROR_INVALID_ARGUMENT when @uri is not an http(s) URL
 * with a host; the last URI's parse is kept for the next request. */
typedef struct _PoolerUpstreamRequest PoolerUpstreamRequest;

PoolerUpstreamRequest  *pooler_upstream_request_new           (PoolerUpstream        *self,
                                                               const char            *method,
                                                               const char            *uri,
                                                               GError               **error);
/* Skips Host, Content-Length, Transfer-Encoding, Connection and
 * Accept-Encoding (the client's own), a name that is not an HTTP token
 * and a value with CR or LF. */
void                    pooler_upstream_request_add_header    (PoolerUpstreamRequest *request,
                                                               const char            *name,
                                                               const char            *value);
/* "Authorization: Bearer @token", unless @token has CR or LF (no copy of
 * the 1-2 KB token joined to its scheme). */
void                    pooler_upstream_request_add_bearer    (PoolerUpstreamRequest *request,
                                                               const char            *token);
void                    pooler_upstream_request_free          (PoolerUpstreamRequest *request);
/* Takes @request (transfer full); otherwise as
 * pooler_upstream_send_async(), whose pooler_upstream_send_finish() it
 * shares. */
void                    pooler_upstream_request_send_async    (PoolerUpstreamRequest *request,
                                                               GBytes                *body,
                                                               GCancellable          *cancellable,
                                                               GAsyncReadyCallback    callback,
                                                               gpointer               user_data);

/* Sends @method @uri with @headers (no Host, Content-Length or
 * Accept-Encoding: those are the client's own) and @body, and completes
 * once the answer's status and headers have arrived. A reused connection
 * that turns out to be closed is replaced once, transparently; nothing
 * else is retried. Cancelling @cancellable drops the connection. */
void                    pooler_upstream_send_async            (PoolerUpstream        *self,
                                                               const char            *method,
                                                               const char            *uri,
                                                               SoupMessageHeaders    *headers,
                                                               GBytes                *body,
                                                               GCancellable          *cancellable,
                                                               GAsyncReadyCallback    callback,
                                                               gpointer               user_data);
PoolerUpstreamResponse *pooler_upstream_send_finish           (PoolerUpstream        *self,
                                                               GAsyncResult          *result,
                                                               GError               **error);

/* The certificate authorities that https upstreams are checked against
 * (NULL: the system's, the default); for tests and private upstreams. */
void                    pooler_upstream_set_tls_database      (PoolerUpstream        *self,
                                                               GTlsDatabase          *database);

/* Connections open (busy and idle) and idle, for tests and diagnostics. */
guint                   pooler_upstream_get_n_connections     (PoolerUpstream        *self);
guint                   pooler_upstream_get_n_idle            (PoolerUpstream        *self);
/* Connections opened since creation. */
guint64                 pooler_upstream_get_n_opened          (PoolerUpstream        *self);
/* At most this many connections open or opening (512); further sends
 * wait for one to close or go idle. Sends waiting now: */
void                    pooler_upstream_set_max_connections   (PoolerUpstream        *self,
                                                               guint                  max_connections);
guint                   pooler_upstream_get_n_waiting         (PoolerUpstream        *self);
/* A busy connection silent this long (300 s) is shut by the sweep (every
 * 15 s), and its reader fails with G_IO_ERROR_TIMED_OUT. */
void                    pooler_upstream_set_io_timeout        (PoolerUpstream        *self,
                                                               guint                  seconds);
/* The periodic sweep, now: stale idle connections closed, silent busy
 * ones shut. */
void                    pooler_upstream_sweep                 (PoolerUpstream        *self);
/* Closes every idle connection. */
void                    pooler_upstream_close_idle            (PoolerUpstream        *self);

guint                   pooler_upstream_response_get_status   (PoolerUpstreamResponse *self);
/* The answer's fields as SoupMessageHeaders, made on the first call: the
 * hot path reads pooler_upstream_response_get_fields() instead. */
SoupMessageHeaders     *pooler_upstream_response_get_headers  (PoolerUpstreamResponse *self);
/* The answer's fields, in order, as they came. */
const PoolerHttpFields *pooler_upstream_response_get_fields   (PoolerUpstreamResponse *self);

/* Reads the next piece of the decoded body: an empty GBytes at its end
 * (the connection then goes back to the pool), NULL and @error when the
 * upstream broke off or @cancellable was cancelled. One read at a time.
 * @func runs once, never from within this call, straight from the
 * source that completed the read (the connection's watch, the
 * cancellable's source, or an idle): all of them on the one context the
 * upstream and its callers run on. (A GTask moved the callback to the
 * read's context; workers with their own contexts would have to attach
 * those sources there.) @bytes and @error are borrowed. A plain
 * callback, not a GTask: this runs once per streamed event. */
void                    pooler_upstream_response_read         (PoolerUpstreamResponse *self,
                                                               GCancellable          *cancellable,
                                                               PoolerUpstreamReadFunc func,
                                                               gpointer               user_data);

/* Without waiting or any I/O: the next piece when the connection's
 * buffer already holds it (an empty GBytes at the body's end), else NULL
 * (then read asynchronously). Saves a main-loop turn per piece when the
 * answer came in with its head, as small answers do. */
GBytes                 *pooler_upstream_response_read_buffered (PoolerUpstreamResponse *self);

/* Gives the answer up before its end: its connection is closed, since
 * the rest of the body would still arrive on it. */
void                    pooler_upstream_response_abandon      (PoolerUpstreamResponse *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PoolerUpstreamRequest, pooler_upstream_request_free)

G_END_DECLS
