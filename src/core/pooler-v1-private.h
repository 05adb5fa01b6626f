/* pooler-v1-private.h: the pieces of the /v1 surface, exposed for the
 * unit tests and shared between the pooler-v1-*.c files.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "pooler-key-record.h"
#include "pooler-proxy.h"

G_BEGIN_DECLS

#define POOLER_V1_DEFAULT_INSTRUCTIONS "You are a helpful assistant."
#define POOLER_V1_ENCRYPTED_REASONING  "reasoning.encrypted_content"

/* A request refused before it went anywhere: an OpenAI-shape error. */
typedef struct
{
  guint  status;
  char  *type;
  char  *code;
  char  *param;     /* NULL: the error names no parameter */
  char  *message;
} PoolerV1Problem;

PoolerV1Problem *pooler_v1_problem_new      (guint             status,
                                             const char       *code,
                                             const char       *param,
                                             const char       *format,
                                             ...) G_GNUC_PRINTF (4, 5);
void             pooler_v1_problem_free     (PoolerV1Problem  *problem);
GBytes          *pooler_v1_problem_to_bytes (const PoolerV1Problem *problem);
void             pooler_v1_problem_respond  (const PoolerV1Problem *problem,
                                             SoupServerMessage     *msg);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PoolerV1Problem, pooler_v1_problem_free)

/* The 404 every unsupported /v1 path answers, byte for byte. */
GBytes          *pooler_v1_unsupported_body (void);

/* A /v1 request translated for the Codex backend. */
typedef struct
{
  char     *model;
  char     *prompt_cache_key;   /* NULL when the client sent none */
  gboolean  stream;             /* the client wants a stream back */
  gboolean  include_usage;      /* chat: stream_options.include_usage */
  GBytes   *body;               /* the /codex/responses request */
  char     *state_item_id;      /* the last reasoning item sent back: its
                                 * encrypted content verifies only on the
                                 * account that made it */
} PoolerV1Request;

void             pooler_v1_request_free     (PoolerV1Request  *request);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PoolerV1Request, pooler_v1_request_free)

/* POST /v1/responses and POST /v1/chat/completions bodies (already parsed)
 * to Codex requests; NULL with *problem set when the body is refused. */
PoolerV1Request *pooler_v1_responses_translate_request (JsonObject       *request,
                                                        PoolerV1Problem **problem);
PoolerV1Request *pooler_v1_chat_translate_request      (JsonObject       *request,
                                                        PoolerV1Problem **problem);

/* Translators for pooler_proxy_forward_translated(). */
PoolerTranslator *pooler_v1_responses_translator_new   (gboolean          stream);
PoolerTranslator *pooler_v1_chat_translator_new        (gboolean          stream,
                                                        gboolean          include_usage,
                                                        const char       *model);

/* GET /v1/models for @key: a static list (see pooler-v1-models.c). */
GBytes          *pooler_v1_models_list_body (const PoolerKeyRecord *key);
/* The static list itself, NULL-terminated. */
const char * const *pooler_v1_models_known  (void);

/* An error on its way to a /v1 client, in the shape the OpenAI SDKs read.
 * @failure_code/@failure_message: what a response.failed event said, when
 * the error is the gateway's answer to one (or NULL). May change *status
 * (a failed event about quota becomes 429). */
GBytes          *pooler_v1_error_translate  (guint            *status,
                                             GBytes           *body,
                                             const char       *failure_code,
                                             const char       *failure_message);

/* ---- shared by the translators --------------------------------------- */

/* Collects the upstream events a final Response is assembled from. */
typedef struct _PoolerV1Collector PoolerV1Collector;

PoolerV1Collector *pooler_v1_collector_new      (void);
void               pooler_v1_collector_free     (PoolerV1Collector *collector);
/* Forgets everything (a failover starts the stream over). */
void               pooler_v1_collector_reset    (PoolerV1Collector *collector);
void               pooler_v1_collector_event    (PoolerV1Collector *collector,
                                                 const char        *type,
                                                 JsonObject        *event);
/* The terminal event's type ("response.completed", "response.incomplete",
 * "response.failed", "error") or NULL while there was none. */
const char        *pooler_v1_collector_get_terminal (PoolerV1Collector *collector);
/* TRUE for response.completed and response.incomplete. */
gboolean           pooler_v1_collector_succeeded (PoolerV1Collector *collector);
/* From response.failed / error, or NULL. */
const char        *pooler_v1_collector_get_failure_code    (PoolerV1Collector *collector);
const char        *pooler_v1_collector_get_failure_message (PoolerV1Collector *collector);
/* The final Response object: the terminal event's "response" with
 * "object":"response", its empty output filled from the output_item.done
 * items (or the text deltas). NULL without a successful terminal. */
JsonObject        *pooler_v1_collector_build_response (PoolerV1Collector *collector);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PoolerV1Collector, pooler_v1_collector_free)

/* JSON helpers. */
GBytes          *pooler_v1_json_to_bytes    (JsonNode         *node);
GBytes          *pooler_v1_object_to_bytes  (JsonObject       *object);
/* Appends "data: <json>\n\n" (and "event: <type>\n" first when @type). */
void             pooler_v1_sse_append       (GByteArray       *out,
                                             const char       *type,
                                             const char       *data,
                                             gsize             length);
void             pooler_v1_sse_append_object (GByteArray      *out,
                                              const char      *type,
                                              JsonObject      *object);
/* Adds "reasoning.encrypted_content" to the client's include list (an
 * array of strings or NULL) once, dropping duplicates. */
JsonArray       *pooler_v1_merge_include    (JsonArray        *client_include);
/* Sets what every Codex request carries: instructions (@instructions, or
 * the default when empty), store:false, stream:true and the include list;
 * then serializes @body. */
GBytes          *pooler_v1_finish_body      (JsonObject       *body,
                                             const char       *instructions,
                                             JsonArray        *client_include);

/* Validation helpers: NULL, or the problem naming @param. A JSON null
 * counts as absent. */
gboolean         pooler_v1_member_present   (JsonObject       *object,
                                             const char       *name);
PoolerV1Problem *pooler_v1_check_type       (JsonObject       *object,
                                             const char       *name,
                                             const char       *param,
                                             JsonNodeType      node_type,
                                             GType             value_type,
                                             const char       *expected);

/* One row of a translator's type table for pooler_v1_check_types(). */
typedef struct
{
  const char   *name;
  JsonNodeType  node_type;
  GType         value_type;   /* G_TYPE_INVALID: any value of node_type */
  const char   *expected;     /* "a string", "an object" ... */
} PoolerV1TypeCheck;

/* "model" must be a non-empty string. */
PoolerV1Problem *pooler_v1_check_model      (JsonObject       *request);
/* The first of @checks that @request breaks, or NULL. */
PoolerV1Problem *pooler_v1_check_types      (JsonObject              *request,
                                             const PoolerV1TypeCheck *checks,
                                             gsize                    n_checks);
/* "tool_choice", when present, must be a string or an object. */
PoolerV1Problem *pooler_v1_check_tool_choice (JsonObject      *request);

/* Request-building helpers shared by the translators. */
/* Appends @text (if any) to @instructions, a blank line between pieces. */
void             pooler_v1_append_instructions (GString       *instructions,
                                                const char    *text);
/* {"type": @type, "text": @text} */
JsonObject      *pooler_v1_text_part        (const char       *type,
                                             const char       *text);
/* {"type": "message", "role": @role, "content": @content}, taking @content. */
JsonObject      *pooler_v1_message_item     (const char       *role,
                                             JsonArray        *content);
/* Sets "service_tier" on @body from @request's: "auto" and "default" are
 * the backend's default and left out; "fast" is Codex's name for
 * "priority". */
void             pooler_v1_copy_service_tier (JsonObject      *request,
                                              JsonObject      *body);
/* The translated request: model, prompt_cache_key and stream read from
 * @request (already checked); @body finished as pooler_v1_finish_body()
 * does. */
PoolerV1Request *pooler_v1_request_new      (JsonObject       *request,
                                             JsonObject       *body,
                                             const char       *instructions,
                                             JsonArray        *client_include);

G_END_DECLS
