/* pooler-proxy.h: forwarding a client request to the upstream on behalf of
 * one of the Pool's accounts, and streaming the answer back as it comes.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <libsoup/soup.h>

#include "pooler-exchange.h"
#include "pooler-key-record.h"
#include "pooler-request-body.h"
#include "pooler-request-record.h"
#include "pooler-service.h"

G_BEGIN_DECLS

typedef enum
{
  /* Pass the body through chunk by chunk, watching SSE events for usage. */
  POOLER_FORWARD_STREAM,
  /* Read the whole (bounded) answer, then respond; for small JSON calls. */
  POOLER_FORWARD_BUFFER,
} PoolerForwardMode;

/* How a translated surface (/v1) reshapes the upstream's SSE stream for
 * its client. The proxy still routes, fails over, observes quota and logs;
 * the translator only writes what the client sees. */
typedef struct
{
  /* Content-Type of a successful answer ("text/event-stream",
   * "application/json"). */
  const char *(*content_type) (gpointer data);
  /* One upstream SSE event (@type is its type, @json its data); append
   * what the client should see to @out, or nothing. */
  void        (*event)        (gpointer     data,
                               const char  *type,
                               const char  *json,
                               gsize        length,
                               GByteArray  *out);
  /* The upstream stream ended; @completed when response.completed came.
   * Append the tail ("data: [DONE]", the assembled JSON ...). */
  void        (*finish)       (gpointer     data,
                               gboolean     completed,
                               GByteArray  *out);
  /* An error answer (the upstream's, sanitized, or the gateway's own) is
   * about to reach the client: return the body in the client's shape, and
   * change *status if it must. NULL keeps @body. */
  GBytes     *(*error)        (gpointer     data,
                               guint       *status,
                               GBytes      *body);
  /* An attempt was given up before anything reached the client (a
   * failover): forget what its events said. */
  void        (*reset)        (gpointer     data);
} PoolerTranslatorFuncs;

typedef struct
{
  const PoolerTranslatorFuncs *funcs;
  gpointer                     data;
  GDestroyNotify               destroy;
  /* TRUE: collect the whole answer and send it once, with a status that
   * can still be an error (non-streaming calls). */
  gboolean                     collect;
} PoolerTranslator;

void         pooler_translator_free      (PoolerTranslator    *translator);

#define POOLER_TYPE_PROXY (pooler_proxy_get_type ())

G_DECLARE_FINAL_TYPE (PoolerProxy, pooler_proxy, POOLER, PROXY, GObject)

PoolerProxy *pooler_proxy_new            (PoolerService       *service);
SoupSession *pooler_proxy_get_session    (PoolerProxy         *self);
guint        pooler_proxy_get_in_flight  (PoolerProxy         *self);
/* How often the timer of the answer deadlines was set or moved: each time
 * wakes the main loop once (for tests). */
guint64      pooler_proxy_get_deadline_arms (PoolerProxy      *self);
/* How long an upstream may take to answer (status and headers) before
 * the client gets 504 (a GET fails over first; a request with a body may
 * be at work upstream and is never sent twice). A compaction answers only
 * when it is done, so it has at least POOLER_UPSTREAM_COMPACT_SECONDS. */
#define POOLER_UPSTREAM_ANSWER_SECONDS 60
#define POOLER_UPSTREAM_COMPACT_SECONDS 300
void         pooler_proxy_set_answer_timeout (PoolerProxy     *self,
                                              guint            seconds);

/* Answers @exchange when the upstream has.
 * @upstream_path is relative to the upstream base URL, e.g.
 * "/codex/responses"; @body may be NULL for GET. @record is the request's
 * log row, already filled with what the gateway knows. */
void         pooler_proxy_forward        (PoolerProxy         *self,
                                          PoolerExchange      *exchange,
                                          const PoolerKeyRecord *key,
                                          const char          *upstream_path,
                                          GBytes              *body,
                                          const PoolerRequestBody *scan,
                                          PoolerForwardMode    mode,
                                          PoolerRequestRecord *record);

/* As pooler_proxy_forward() in POOLER_FORWARD_STREAM mode, with the answer
 * reshaped by @translator (taken over). */
void         pooler_proxy_forward_translated (PoolerProxy             *self,
                                              PoolerExchange          *exchange,
                                              const PoolerKeyRecord   *key,
                                              const char              *upstream_path,
                                              GBytes                  *body,
                                              const PoolerRequestBody *scan,
                                              PoolerTranslator        *translator,
                                              PoolerRequestRecord     *record);

G_END_DECLS
