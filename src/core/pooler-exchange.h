/* pooler-exchange.h: one client request and its answer, whoever serves
 * the connection: libsoup's server (PoolerSoupExchange) or the gateway's
 * own HTTP/1.1 hot path (PoolerHttpConn).
 *
 * The request is read whole (method, path, query, headers, body) before
 * an exchange reaches its handler. The answer is either whole
 * (pooler_exchange_respond()) or streamed (stream_begin, write, end) with
 * backpressure: a writer that finds the exchange not drained waits for
 * its owner's drained() before it writes more.
 *
 * An exchange has one owner, the handler answering it (the proxy's
 * Forward), told by plain calls rather than signals: two signal
 * connections a request cost the hot path more than the rest of its
 * bookkeeping. finished() comes exactly once: when the whole answer is
 * out, or when the client went away first (is_gone() then says so).
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <libsoup/soup.h>

#include "pooler-http-fields.h"

G_BEGIN_DECLS

#define POOLER_TYPE_EXCHANGE (pooler_exchange_get_type ())

G_DECLARE_DERIVABLE_TYPE (PoolerExchange, pooler_exchange, POOLER, EXCHANGE, GObject)

/* Whether a header named @name of another message goes into an answer. */
typedef gboolean (*PoolerHeaderFilter) (const char *name);

struct _PoolerExchangeClass
{
  GObjectClass parent_class;

  /* The response headers are pooler_exchange_get_response_headers(). */
  void     (*respond)      (PoolerExchange *self,
                            guint           status,
                            const char     *content_type,
                            GBytes         *body);
  void     (*stream_begin) (PoolerExchange *self,
                            guint           status);
  void     (*stream_write) (PoolerExchange *self,
                            GBytes         *bytes);
  gboolean (*is_drained)   (PoolerExchange *self);
  void     (*stream_end)   (PoolerExchange *self);
  /* Optional: writes what stream_write() held back. */
  void     (*flush)        (PoolerExchange *self);
  /* Optional: stream_begin() with @extra's fields that @keep accepts
   * after the response headers, without copying them there. */
  void     (*stream_begin_with) (PoolerExchange         *self,
                                 guint                   status,
                                 const PoolerHttpFields *extra,
                                 PoolerHeaderFilter      keep);

  gpointer padding[6];
};

/* What an exchange tells its owner. Either may be NULL. */
typedef struct
{
  /* Everything written so far is out: a writer that waited may go on. */
  void (*drained)  (PoolerExchange *exchange,
                    gpointer        data);
  /* The exchange is over: the whole answer is out, or the client is gone
   * (pooler_exchange_is_gone()). Comes once; the exchange forgets its
   * owner just before the call. */
  void (*finished) (PoolerExchange *exchange,
                    gpointer        data);
} PoolerExchangeOwner;

/* When an exchange passed the steps of the hot path (g_get_monotonic_time(),
 * 0 until then), for the timing trace (pooler-timing.h). */
typedef enum
{
  POOLER_EXCHANGE_MARK_RECEIVED,       /* the request's first bytes came (pipelined:
                                        * when the answer before it ended) */
  POOLER_EXCHANGE_MARK_HANDLED,        /* the whole request went to its handler */
  POOLER_EXCHANGE_MARK_FORWARDED,      /* handed to the upstream connection */
  POOLER_EXCHANGE_MARK_UPSTREAM_HEAD,  /* the upstream's answer head came */
  POOLER_EXCHANGE_MARK_FIRST_WRITE,    /* the answer's first bytes went out */
  POOLER_EXCHANGE_N_MARKS
} PoolerExchangeMark;

const char         *pooler_exchange_get_method           (PoolerExchange *self);
const char         *pooler_exchange_get_path             (PoolerExchange *self);
/* The raw query string, without '?'; NULL when there is none. */
const char         *pooler_exchange_get_query            (PoolerExchange *self);
SoupMessageHeaders *pooler_exchange_get_request_headers  (PoolerExchange *self);
/* Never NULL (empty when the request had none). */
GBytes             *pooler_exchange_get_request_body     (PoolerExchange *self);
/* Filled by the handler before it answers. */
SoupMessageHeaders *pooler_exchange_get_response_headers (PoolerExchange *self);
/* The answer's status once given, 0 before. */
guint               pooler_exchange_get_status           (PoolerExchange *self);
gboolean            pooler_exchange_is_finished          (PoolerExchange *self);
/* Sets the owner (@owner must outlive the exchange; NULL: none). An
 * exchange already finished takes none. */
void                pooler_exchange_set_owner            (PoolerExchange            *self,
                                                          const PoolerExchangeOwner *owner,
                                                          gpointer                   data);
/* The client went away before the whole answer was out. */
gboolean            pooler_exchange_is_gone              (PoolerExchange *self);

/* A whole answer, with Content-Length. */
void                pooler_exchange_respond              (PoolerExchange *self,
                                                          guint           status,
                                                          const char     *content_type,
                                                          GBytes         *body);
/* An error in the OpenAI shape. */
void                pooler_exchange_respond_error        (PoolerExchange *self,
                                                          guint           status,
                                                          const char     *type,
                                                          const char     *code,
                                                          const char     *param,
                                                          const char     *message);
/* A chunked answer: the status and response headers go out with the
 * first piece; the last chunk after stream_end(). */
void                pooler_exchange_stream_begin         (PoolerExchange *self,
                                                          guint           status);
/* The same, the answer's headers being the response headers and then
 * those of @extra (if not NULL) that @keep accepts (the upstream's, on
 * the hot path). They are not necessarily copied into
 * pooler_exchange_get_response_headers(). */
void                pooler_exchange_stream_begin_with    (PoolerExchange         *self,
                                                          guint                   status,
                                                          const PoolerHttpFields *extra,
                                                          PoolerHeaderFilter      keep);
void                pooler_exchange_stream_write         (PoolerExchange *self,
                                                          GBytes         *bytes);
/* A writer may hold pieces back to send them together: flush() before
 * waiting for anything, so that all written so far goes out. */
void                pooler_exchange_flush                (PoolerExchange *self);
/* Nothing written is still waiting for the client to take it (bytes held
 * back for flush() do not count: flush() before any wait). */
gboolean            pooler_exchange_is_drained           (PoolerExchange *self);
void                pooler_exchange_stream_end           (PoolerExchange *self);

/* For implementations. The request parts are taken over. */
void                pooler_exchange_set_request          (PoolerExchange     *self,
                                                          const char         *method,
                                                          char               *path,
                                                          char               *query,
                                                          SoupMessageHeaders *headers,
                                                          GBytes             *body);
void                pooler_exchange_set_request_body     (PoolerExchange     *self,
                                                          GBytes             *body);
/* Sets @mark to @when (the last call wins: a retried attempt's times). */
void                pooler_exchange_mark                 (PoolerExchange     *self,
                                                          PoolerExchangeMark  mark,
                                                          gint64              when);
const gint64       *pooler_exchange_get_marks            (PoolerExchange     *self);

/* Tell the owner; finished() only once. */
void                pooler_exchange_emit_drained         (PoolerExchange *self);
void                pooler_exchange_emit_finished        (PoolerExchange *self,
                                                          gboolean        gone);

G_END_DECLS
