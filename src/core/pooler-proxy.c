/* pooler-proxy.c
 *
 * The hot path. The service's PoolerUpstream keeps upstream connections
 * alive; an answer is read piece by piece as the socket delivers it and
 * each piece is appended to the client's response as soon as it arrives,
 * then handed to the SSE observer. Nothing waits on SQLite here: rows and
 * evidence go to the writer thread through the service.
 *
 * Until the first event of a stream has been seen, nothing has reached the
 * client, so a failure (429, 5xx, a refused connection, a stream whose
 * first event is response.failed) moves on to the next account of the
 * ring. From the first byte on, the answer is the client's and is never
 * replayed.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-proxy"

#include "config.h"

#include <string.h>

#include "pooler-api-error.h"
#include "pooler-http-head.h"
#include "pooler-json.h"
#include "pooler-oauth.h"
#include "pooler-proxy.h"
#include "pooler-sse.h"
#include "pooler-timing.h"

#define MAX_BUFFERED_BODY   (8 * 1024 * 1024)
#define MAX_ERROR_BODY      (256 * 1024)
/* Bytes of a stream held back while waiting for its first event. */
#define MAX_PEEK            (1024 * 1024)

struct _PoolerProxy
{
  GObject        parent_instance;

  PoolerService *service;
  guint          in_flight;
  guint          answer_timeout;

  /* Attempts awaiting their answer's head, by deadline (a reference
   * each), and one source that fires at the first deadline: a timeout
   * source per request cost its creation and removal, and the main loop
   * walks every source on every turn. */
  GQueue         awaiting;
  GSource       *deadline_source;
  guint64        deadline_arms;   /* changes of its ready time */

  /* Last good /codex/models answer, served when the upstream fails. */
  GBytes        *models_body;
  char          *models_content_type;
};

G_DEFINE_FINAL_TYPE (PoolerProxy, pooler_proxy, G_TYPE_OBJECT)

typedef struct
{
  GSource      source;
  PoolerProxy *proxy;   /* not a reference: the proxy destroys it */
} DeadlineSource;

typedef enum
{
  PHASE_CONNECTING,  /* waiting for the upstream's status and headers */
  PHASE_PEEKING,     /* 2xx stream: holding bytes until the first event */
  PHASE_STREAMING,   /* committed: bytes flow to the client */
  PHASE_BUFFERING,   /* reading a whole (bounded) answer */
  PHASE_COLLECTING,  /* translated, collected to answer once at the end */
} Phase;

typedef struct
{
  gatomicrefcount      ref_count;
  PoolerProxy         *proxy;
  PoolerService       *service;
  PoolerExchange      *exchange;
  PoolerUpstreamResponse *upstream;      /* the current attempt's answer */
  GCancellable        *attempt_cancellable;
  char                *key_prefix;       /* of the Pool key, for the usage counters */
  PoolerRequestRecord *record;
  PoolerAttemptRecord *attempt;
  PoolerPool          *pool;
  GPtrArray           *candidates;       /* PoolerAccount, in order */
  guint                next_candidate;
  PoolerAccount       *account;          /* the current attempt's */
  char                *upstream_path;
  char                *query;
  GBytes              *body;
  PoolerForwardMode    mode;
  Phase                phase;
  PoolerSseParser     *sse;
  GPtrArray           *peeked;           /* GBytes held while peeking */
  gsize                peeked_size;
  GByteArray          *buffer;
  char                *prompt_cache_hash; /* affinity keys, hashed once */
  char                *session_hash;
  char                *response_id;      /* from response.completed */
  GPtrArray           *state_items;      /* /v1: reasoning item ids from output_item.done */
  GBytes              *last_error_body;  /* the last failed attempt's, sanitized */
  PoolerTranslator    *translator;       /* NULL: pass the stream through */
  GByteArray          *translated;       /* the translator's output, pending */
  gsize                collected_bytes;  /* upstream bytes while collecting */
  guint                last_error_status;
  gint64               started_us;
  gint64               attempt_started_us;
  gint64               answer_due_us;    /* monotonic, while in proxy->awaiting */
  GList                awaiting_link;
  guint                first_event_seen : 1;
  guint                first_event_failed : 1;  /* response.failed or error */
  guint                first_event_retry : 1;   /* ... and not the request's fault */
  guint                waiting_write : 1;
  guint                completed : 1;     /* response.completed seen */
  guint                failed_event : 1;  /* response.failed seen */
  guint                retried_auth : 1;  /* this account's 401 was refreshed once */
  guint                client_gone : 1;
  guint                done : 1;
  guint                is_models : 1;
  guint                is_usage : 1;
  guint                is_compact : 1;        /* answers only when done */
  guint                awaiting : 1;          /* in proxy->awaiting */
  guint                answer_timed_out : 1;  /* the current attempt's */
  guint                any_timed_out : 1;     /* some attempt's */
} Forward;

static void forward_try_next (Forward *fw);
static void append_chunk (Forward *fw,
                          GBytes  *bytes);
static void client_complete (Forward *fw);
static void forward_send (Forward *fw);
static void forward_read_next (Forward *fw);

static Forward *
forward_ref (Forward *fw)
{
  g_atomic_ref_count_inc (&fw->ref_count);
  return fw;
}

static void
forward_unref (Forward *fw)
{
  if (!g_atomic_ref_count_dec (&fw->ref_count))
    return;

  g_assert (fw->done);
  g_assert (!fw->awaiting);

  g_clear_object (&fw->exchange);
  g_clear_object (&fw->upstream);
  g_clear_object (&fw->attempt_cancellable);
  g_clear_pointer (&fw->key_prefix, g_free);
  g_clear_pointer (&fw->record, pooler_request_record_free);
  g_clear_object (&fw->pool);
  g_clear_pointer (&fw->candidates, g_ptr_array_unref);
  g_clear_object (&fw->account);
  g_clear_pointer (&fw->upstream_path, g_free);
  g_clear_pointer (&fw->query, g_free);
  g_clear_pointer (&fw->body, g_bytes_unref);
  g_clear_pointer (&fw->sse, pooler_sse_parser_free);
  g_clear_pointer (&fw->peeked, g_ptr_array_unref);
  if (fw->buffer != NULL)
    g_byte_array_unref (fw->buffer);
  g_clear_pointer (&fw->prompt_cache_hash, g_free);
  g_clear_pointer (&fw->session_hash, g_free);
  g_clear_pointer (&fw->response_id, g_free);
  g_clear_pointer (&fw->state_items, g_ptr_array_unref);
  g_clear_pointer (&fw->last_error_body, g_bytes_unref);
  g_clear_pointer (&fw->translator, pooler_translator_free);
  if (fw->translated != NULL)
    g_byte_array_unref (fw->translated);
  g_clear_object (&fw->service);
  g_clear_object (&fw->proxy);
  g_free (fw);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Forward, forward_unref)

static gint64
elapsed_ms (gint64 since_us)
{
  return (g_get_monotonic_time () - since_us) / 1000;
}

static gint64
now_seconds (void)
{
  return g_get_real_time () / G_USEC_PER_SEC;
}

static void
finish_attempt (Forward    *fw,
                int         upstream_status,
                const char *error_code)
{
  if (fw->attempt == NULL)
    return;

  fw->attempt->upstream_status = upstream_status;
  g_free (fw->attempt->error_code);
  fw->attempt->error_code = g_strdup (error_code);
  fw->attempt->duration_ms = elapsed_ms (fw->attempt_started_us);
  fw->attempt = NULL;
}

static void answer_deadline_passed (Forward *fw);

/* Sets when the deadline source fires (-1: never). GLib wakes the main
 * loop on every change of a source's ready time (a write to its eventfd,
 * then a poll and a read), even from the loop's own thread, so the
 * source is only moved earlier, never disarmed: it fires early at most
 * once for a deadline that went away, finds nothing due and re-arms. */
static void
arm_deadlines (PoolerProxy *self,
               gint64       ready_time)
{
  if (g_source_get_ready_time (self->deadline_source) == ready_time)
    return;
  self->deadline_arms++;
  g_source_set_ready_time (self->deadline_source, ready_time);
}

/* Fires at the first deadline in proxy->awaiting: each passed one is
 * taken out and its attempt given up. */
static gboolean
deadlines_dispatch (GSource     *source,
                    GSourceFunc  callback,
                    gpointer     user_data)
{
  PoolerProxy *self = ((DeadlineSource *) source)->proxy;
  gint64 now = g_source_get_time (source);

  g_object_ref (self);
  while (self->awaiting.head != NULL)
    {
      Forward *fw = self->awaiting.head->data;

      if (fw->answer_due_us > now)
        break;
      g_queue_unlink (&self->awaiting, &fw->awaiting_link);
      fw->awaiting = FALSE;
      answer_deadline_passed (fw);
      forward_unref (fw);
    }
  arm_deadlines (self, self->awaiting.head != NULL ?
                      ((Forward *) self->awaiting.head->data)->answer_due_us : -1);
  g_object_unref (self);

  return G_SOURCE_CONTINUE;
}

static GSourceFuncs deadline_source_funcs = {
  .dispatch = deadlines_dispatch,
};

/* The current attempt must have its answer's head within the proxy's
 * answer timeout. */
static void
start_answer_deadline (Forward *fw)
{
  PoolerProxy *self = fw->proxy;
  GList *after;
  gint64 armed;

  g_assert (!fw->awaiting);

  if (self->deadline_source == NULL)
    {
      /* On the context the proxy works in. */
      self->deadline_source = g_source_new (&deadline_source_funcs, sizeof (DeadlineSource));
      ((DeadlineSource *) self->deadline_source)->proxy = self;
      g_source_set_static_name (self->deadline_source, "PoolerProxy answer deadlines");
      g_source_attach (self->deadline_source, g_main_context_get_thread_default ());
    }

  /* A compaction answers when the model is done with it: minutes. */
  fw->answer_due_us = g_get_monotonic_time () +
                      (gint64) (fw->is_compact ? MAX (self->answer_timeout, POOLER_UPSTREAM_COMPACT_SECONDS)
                                               : self->answer_timeout) * G_USEC_PER_SEC;
  fw->awaiting_link.data = forward_ref (fw);
  fw->awaiting = TRUE;
  /* In deadline order: after the last one due no later (the tail, unless
   * the timeout was shortened meanwhile). */
  for (after = self->awaiting.tail;
       after != NULL && ((Forward *) after->data)->answer_due_us > fw->answer_due_us;
       after = after->prev)
    ;
  if (after != NULL)
    g_queue_insert_after_link (&self->awaiting, after, &fw->awaiting_link);
  else
    g_queue_push_head_link (&self->awaiting, &fw->awaiting_link);
  armed = g_source_get_ready_time (self->deadline_source);
  if (armed == -1 || fw->answer_due_us < armed)
    arm_deadlines (self, fw->answer_due_us);
}

/* The attempt has its answer, or is over: no deadline. The source stays
 * armed (see arm_deadlines()). */
static void
stop_answer_deadline (Forward *fw)
{
  PoolerProxy *self = fw->proxy;

  if (!fw->awaiting)
    return;

  g_queue_unlink (&self->awaiting, &fw->awaiting_link);
  fw->awaiting = FALSE;
  forward_unref (fw);
}

/* Drops the current attempt's upstream exchange (not the request). */
static void
abandon_attempt (Forward *fw)
{
  stop_answer_deadline (fw);
  fw->answer_timed_out = FALSE;
  if (fw->attempt_cancellable != NULL)
    g_cancellable_cancel (fw->attempt_cancellable);
  g_clear_object (&fw->attempt_cancellable);
  if (fw->upstream != NULL)
    pooler_upstream_response_abandon (fw->upstream);
  g_clear_object (&fw->upstream);
  g_clear_pointer (&fw->sse, pooler_sse_parser_free);
  g_clear_pointer (&fw->peeked, g_ptr_array_unref);
  fw->peeked_size = 0;
  if (fw->buffer != NULL)
    g_byte_array_unref (g_steal_pointer (&fw->buffer));
  if (fw->translated != NULL)
    g_byte_array_set_size (fw->translated, 0);
  if (fw->translator != NULL && fw->translator->funcs->reset != NULL)
    fw->translator->funcs->reset (fw->translator->data);
  /* Another account's items: they do not live where the next attempt goes. */
  g_clear_pointer (&fw->state_items, g_ptr_array_unref);
  fw->first_event_seen = FALSE;
  fw->first_event_failed = FALSE;
  fw->first_event_retry = FALSE;
  fw->completed = FALSE;
  fw->failed_event = FALSE;
  fw->phase = PHASE_CONNECTING;
}

/* Continuity: the conversation's keys stay with the account that served
 * it, unless a failover happened while the home account was only briefly
 * unusable (then the home stays home). */
static void
remember_continuity (Forward *fw)
{
  PoolerAffinity *affinity = pooler_service_get_affinity (fw->service);
  gint64 pool_id = pooler_pool_get_id (fw->pool);
  const char *served = pooler_account_get_id (fw->account);
  gint64 now = now_seconds ();
  const char *kinds[] = { POOLER_AFFINITY_PROMPT_CACHE, POOLER_AFFINITY_SESSION };
  const char *keys[] = { fw->prompt_cache_hash, fw->session_hash };

  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++)
    {
      const char *home;

      if (keys[i] == NULL)
        continue;

      home = pooler_affinity_lookup_key (affinity, keys[i], now);
      if (home != NULL && g_strcmp0 (home, served) != 0)
        {
          PoolerAccount *home_account = NULL;
          PoolerQuotaState *quota = pooler_service_get_quota (fw->service, home);
          GPtrArray *members = pooler_service_get_pool_accounts (fw->service, pool_id);
          gint64 reset_at;

          for (guint j = 0; members != NULL && j < members->len; j++)
            if (g_strcmp0 (pooler_account_get_id (g_ptr_array_index (members, j)), home) == 0)
              home_account = g_ptr_array_index (members, j);

          /* Still home unless it is gone, paused, signed out or spent. */
          if (home_account != NULL &&
              pooler_account_get_status (home_account) == POOLER_ACCOUNT_ACTIVE &&
              !(quota != NULL && pooler_quota_state_is_spent (quota, now, &reset_at)))
            continue;
        }

      pooler_service_remember_affinity (fw->service, keys[i], pool_id, kinds[i], served);
    }

  if (fw->response_id != NULL && *fw->response_id != '\0')
    {
      /* By the memo: the next request names it as its previous response. */
      g_autofree char *key = pooler_affinity_key (affinity, pool_id, POOLER_AFFINITY_RESPONSE,
                                                  fw->response_id);

      pooler_service_remember_affinity (fw->service, key, pool_id, POOLER_AFFINITY_RESPONSE,
                                        served);
    }

  for (guint i = 0; fw->state_items != NULL && i < fw->state_items->len; i++)
    {
      g_autofree char *key = pooler_affinity_key (affinity, pool_id, POOLER_AFFINITY_RESPONSE,
                                                  g_ptr_array_index (fw->state_items, i));

      pooler_service_remember_affinity (fw->service, key, pool_id, POOLER_AFFINITY_RESPONSE, served);
    }
}

/* Ends the request exactly once: the row, the counters, the signal. */
static void
forward_done (Forward    *fw,
              const char *error_code)
{
  if (fw->done)
    return;
  fw->done = TRUE;
  stop_answer_deadline (fw);

  if (error_code != NULL && fw->record->error_code == NULL)
    fw->record->error_code = g_strdup (error_code);

  finish_attempt (fw, fw->record->upstream_status, error_code);

  fw->record->state = POOLER_REQUEST_COMPLETED;
  fw->record->latency_ms = elapsed_ms (fw->started_us);
  if (fw->client_gone)
    fw->record->status = 499;
  else if (fw->record->status == 0)
    fw->record->status = pooler_exchange_get_status (fw->exchange);

  pooler_service_record_request (fw->service, fw->record);

  g_assert (fw->proxy->in_flight > 0);
  fw->proxy->in_flight--;
}

static void respond_bytes (Forward    *fw,
                           guint       status,
                           const char *content_type,
                           GBytes     *bytes);

static void
respond_error (Forward    *fw,
               guint       status,
               const char *type,
               const char *code,
               const char *message)
{
  g_autoptr(GBytes) body = pooler_api_error_build (type, code, NULL, message);

  respond_bytes (fw, status, "application/json", body);
  forward_done (fw, code);
}

static void
respond_bytes (Forward     *fw,
               guint        status,
               const char  *content_type,
               GBytes      *bytes)
{
  g_autoptr(GBytes) reshaped = NULL;

  /* Errors reach a translated client in its own shape. */
  if (fw->translator != NULL && !SOUP_STATUS_IS_SUCCESSFUL (status) &&
      fw->translator->funcs->error != NULL &&
      (reshaped = fw->translator->funcs->error (fw->translator->data, &status, bytes)) != NULL)
    bytes = reshaped;

  if (!fw->client_gone && pooler_exchange_get_status (fw->exchange) == 0)
    pooler_exchange_respond (fw->exchange, status, content_type, bytes);
  fw->record->status = status;
}

/* The whole Pool is spent: answer as the upstream would, so the Codex CLI
 * prints its usual "try again at" line. */
static void
respond_pool_spent (Forward *fw,
                    gint64   resets_at)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autofree char *message = NULL;
  const char *plan_type = NULL;
  GPtrArray *members = pooler_service_get_pool_accounts (fw->service, pooler_pool_get_id (fw->pool));
  char *text;
  gsize length;

  for (guint i = 0; members != NULL && i < members->len && plan_type == NULL; i++)
    plan_type = pooler_account_get_plan (g_ptr_array_index (members, i));

  if (resets_at > 0)
    {
      g_autoptr(GDateTime) when = g_date_time_new_from_unix_utc (resets_at);
      g_autofree char *when_text = g_date_time_format (when, "%Y-%m-%d %H:%M UTC");

      message = g_strdup_printf ("Every account in Pool “%s” has reached its usage limit; "
                                 "try again at %s.", pooler_pool_get_slug (fw->pool), when_text);
    }
  else
    message = g_strdup_printf ("Every account in Pool “%s” has reached its usage limit.",
                               pooler_pool_get_slug (fw->pool));

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "error");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "type");
  json_builder_add_string_value (builder, "usage_limit_reached");
  json_builder_set_member_name (builder, "code");
  json_builder_add_string_value (builder, "usage_limit_reached");
  json_builder_set_member_name (builder, "message");
  json_builder_add_string_value (builder, message);
  json_builder_set_member_name (builder, "param");
  json_builder_add_null_value (builder);
  json_builder_set_member_name (builder, "plan_type");
  if (plan_type != NULL)
    json_builder_add_string_value (builder, plan_type);
  else
    json_builder_add_null_value (builder);
  if (resets_at > 0)
    {
      json_builder_set_member_name (builder, "resets_at");
      json_builder_add_int_value (builder, resets_at);
      json_builder_set_member_name (builder, "resets_in_seconds");
      json_builder_add_int_value (builder, MAX (0, resets_at - now_seconds ()));
    }
  json_builder_end_object (builder);
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  text = json_generator_to_data (generator, &length);
  body = g_bytes_new_take (text, length);

  pooler_service_note_pool_capacity (fw->service, fw->pool, FALSE, resets_at);
  respond_bytes (fw, 429 /* Too Many Requests; libsoup 3.2 has no name for it */, "application/json", body);
  forward_done (fw, "pool_exhausted");
}

/* Header name lists: lower case, NULL-terminated (pooler_http_name_in()). */
static const char * const hop_by_hop[] = {
  "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
  "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", NULL
};

/* Client headers that never go upstream: credentials (ours replace
 * them), browser context, and what libsoup sets itself. */
static const char * const request_dropped[] = {
  "host", "content-length", "authorization", "cookie", "chatgpt-account-id",
  "accept-encoding", "origin", "referer", "x-api-key", "openai-organization",
  "openai-project", "expect", NULL
};

static const char * const response_dropped[] = {
  "content-length", "set-cookie", "server", "date", NULL
};

static gboolean
is_request_header_dropped (const char *name)
{
  return pooler_http_name_in (name, hop_by_hop) || pooler_http_name_in (name, request_dropped) ||
         g_ascii_strncasecmp (name, "sec-", 4) == 0;
}

static gboolean
is_response_header_dropped (const char *name)
{
  return pooler_http_name_in (name, hop_by_hop) || pooler_http_name_in (name, response_dropped);
}

static gboolean
is_response_header_kept (const char *name)
{
  return !is_response_header_dropped (name);
}

static void
copy_response_header (const char *name,
                      const char *value,
                      gpointer    user_data)
{
  if (!is_response_header_dropped (name))
    soup_message_headers_append (user_data, name, value);
}

/* Codes of a failed response that say the request is at fault (its size,
 * its content, a parameter), not the account or the backend. */
static gboolean
failure_is_the_requests (const char *code)
{
  static const char * const codes[] = {
    "context_length_exceeded", "invalid_prompt", "invalid_request_error", "invalid_input",
    "invalid_image", "invalid_value", "unsupported_parameter", "string_above_max_length",
    "content_filter", "content_policy_violation", "cyber_policy",
  };

  for (guint i = 0; code != NULL && i < G_N_ELEMENTS (codes); i++)
    if (strcmp (code, codes[i]) == 0)
      return TRUE;
  return FALSE;
}

/* For a body we replaced (sanitized errors): the upstream's own body
 * headers no longer describe it. */
static void
copy_response_header_for_new_body (const char *name,
                                   const char *value,
                                   gpointer    user_data)
{
  if (g_ascii_strcasecmp (name, "content-encoding") != 0 &&
      g_ascii_strcasecmp (name, "content-type") != 0)
    copy_response_header (name, value, user_data);
}

static void
on_sse_event (const char *event,
              const char *data,
              gsize       data_length,
              gpointer    user_data)
{
  Forward *fw = user_data;
  g_autofree char *parsed = NULL;
  char buffer[128];
  const char *type;
  gsize length;

  /* Only the few events we account for are looked into. The type is
   * copied to the stack when it leads the event (no allocation per
   * event), and parsed otherwise. */
  type = pooler_sse_event_type_peek (event, data, data_length, &length);
  if (type != NULL && length < sizeof buffer)
    {
      memcpy (buffer, type, length);
      buffer[length] = '\0';
      type = buffer;
    }
  else
    type = parsed = pooler_sse_event_type (event, data, data_length);

  if (!fw->first_event_seen)
    {
      fw->first_event_seen = TRUE;
      if (type != NULL && (strcmp (type, "response.failed") == 0 || strcmp (type, "error") == 0))
        {
          g_autofree char *code = pooler_sse_parse_error_code (data, data_length);

          /* A failure the request itself causes would fail the same on
           * every account: it is passed on, and no account is at fault. */
          fw->first_event_failed = TRUE;
          fw->first_event_retry = !failure_is_the_requests (code);
        }
    }

  if (fw->translator != NULL && type != NULL)
    fw->translator->funcs->event (fw->translator->data, type, data, data_length, fw->translated);

  if (type == NULL)
    return;

  if (strcmp (type, "response.completed") == 0)
    {
      PoolerUsage usage;

      fw->completed = TRUE;
      g_clear_pointer (&fw->response_id, g_free);
      if (pooler_sse_parse_completed (data, data_length, &usage, &fw->response_id))
        {
          fw->record->input_tokens = usage.input_tokens;
          fw->record->output_tokens = usage.output_tokens;
          fw->record->cached_tokens = usage.cached_tokens;
          fw->record->reasoning_tokens = usage.reasoning_tokens;
        }
    }
  else if (strcmp (type, "response.failed") == 0 || strcmp (type, "error") == 0 ||
           strcmp (type, "response.incomplete") == 0)
    {
      g_autofree char *code = pooler_sse_parse_error_code (data, data_length);

      fw->failed_event = TRUE;
      if (fw->record->error_code == NULL)
        fw->record->error_code = g_strdup (code != NULL ? code : type);
    }
  else if (fw->translator != NULL && strcmp (type, "response.output_item.done") == 0)
    {
      /* /v1 clients send reasoning items back on their next turn (there
       * is no previous_response_id to send): each pins that turn to the
       * account that made it. Codex sends a prompt_cache_key instead. */
      g_autoptr(JsonObject) done = pooler_json_parse_object (data, data_length, NULL);
      JsonNode *item = done != NULL ? json_object_get_member (done, "item") : NULL;
      JsonObject *object = item != NULL && JSON_NODE_HOLDS_OBJECT (item) ? json_node_get_object (item) : NULL;
      const char *id = pooler_json_get_string (object, "id");

      if (id != NULL && g_strcmp0 (pooler_json_get_string (object, "type"), "reasoning") == 0)
        {
          if (fw->state_items == NULL)
            fw->state_items = g_ptr_array_new_with_free_func (g_free);
          g_ptr_array_add (fw->state_items, g_strdup (id));
        }
    }
  else if (strcmp (type, "codex.rate_limits") == 0)
    {
      g_autoptr(PoolerQuotaEvidence) evidence = pooler_quota_parse_event (data, data_length, now_seconds ());

      pooler_service_observe_quota (fw->service, fw->account, evidence);
    }
}

/* The stream broke after the client got a 200: end it with a terminal event
 * so the Codex CLI reports and retries instead of waiting. */
static void
append_failed_event (Forward    *fw,
                     const char *code,
                     const char *message)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *data = NULL;
  g_autoptr(GBytes) bytes = NULL;
  char *event;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "type");
  json_builder_add_string_value (builder, "response.failed");
  json_builder_set_member_name (builder, "response");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "status");
  json_builder_add_string_value (builder, "failed");
  json_builder_set_member_name (builder, "error");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "code");
  json_builder_add_string_value (builder, code);
  json_builder_set_member_name (builder, "message");
  json_builder_add_string_value (builder, message);
  json_builder_end_object (builder);
  json_builder_end_object (builder);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  data = json_generator_to_data (generator, NULL);

  /* The break may have come mid-event: the leading blank lines end that
   * fragment, so this event parses on its own. */
  event = g_strdup_printf ("\n\nevent: response.failed\ndata: %s\n\n", data);
  bytes = g_bytes_new_take (event, strlen (event));
  append_chunk (fw, bytes);
}

static void
stream_finish (Forward    *fw,
               const char *error_code,
               const char *message)
{
  if (error_code == NULL && fw->sse != NULL)
    {
      pooler_sse_parser_finish (fw->sse);
      if (!fw->completed && !fw->failed_event)
        {
          error_code = "stream_incomplete";
          message = "The upstream closed the stream before the response was complete.";
        }
    }

  if (fw->translator != NULL && fw->phase == PHASE_COLLECTING)
    {
      /* Nothing went out yet: a failure can still be a proper error. */
      if (error_code != NULL || fw->failed_event)
        {
          respond_error (fw, SOUP_STATUS_BAD_GATEWAY, "server_error",
                         error_code != NULL ? error_code : (fw->record->error_code != NULL
                                                            ? fw->record->error_code : "upstream_failed"),
                         message != NULL ? message : "The upstream could not complete the response.");
          return;
        }
      fw->translator->funcs->finish (fw->translator->data, fw->completed, fw->translated);
      {
        g_autoptr(GBytes) answer = g_byte_array_free_to_bytes (g_steal_pointer (&fw->translated));

        respond_bytes (fw, SOUP_STATUS_OK, fw->translator->funcs->content_type (fw->translator->data),
                       answer);
      }
      pooler_router_report_success (pooler_service_get_router (fw->service), fw->account);
      remember_continuity (fw);
      pooler_service_note_pool_capacity (fw->service, fw->pool, TRUE, 0);
      forward_done (fw, NULL);
      return;
    }

  if (fw->translator != NULL && !fw->client_gone)
    {
      fw->translator->funcs->finish (fw->translator->data, fw->completed && error_code == NULL,
                                     fw->translated);
      if (fw->translated->len > 0)
        {
          g_autoptr(GBytes) tail = g_byte_array_free_to_bytes (g_steal_pointer (&fw->translated));

          fw->translated = g_byte_array_new ();
          append_chunk (fw, tail);
        }
    }

  if (!fw->client_gone)
    {
      if (error_code != NULL && fw->sse != NULL && !fw->completed && !fw->failed_event &&
          fw->translator == NULL)
        append_failed_event (fw, error_code, message);
      client_complete (fw);
    }

  /* Ended meanwhile by a write that found the client gone (which ran
   * this function for a completed answer). */
  if (fw->done)
    return;

  if (error_code == NULL && !fw->failed_event)
    {
      pooler_router_report_success (pooler_service_get_router (fw->service), fw->account);
      remember_continuity (fw);
      pooler_service_note_pool_capacity (fw->service, fw->pool, TRUE, 0);
    }

  forward_done (fw, error_code);
}

/* The client is gone: stop the upstream side. Waiting for the client to
 * take more is the one state with nothing of ours pending that would
 * notice: finish there. */
static void
client_went_away (Forward *fw)
{
  if (fw->done)
    return;

  fw->client_gone = TRUE;
  if (fw->attempt_cancellable != NULL)
    g_cancellable_cancel (fw->attempt_cancellable);
  if (fw->waiting_write)
    {
      fw->waiting_write = FALSE;
      forward_done (fw, "client_closed");
    }
}

/* The body is complete: the exchange writes the last chunk once all
 * before it is out, and then finishes. */
static void
client_complete (Forward *fw)
{
  pooler_exchange_stream_end (fw->exchange);
}

/* All written so far is out: read on. */
static void
on_exchange_drained (PoolerExchange *exchange,
                     gpointer        user_data)
{
  Forward *fw = user_data;

  if (fw->waiting_write && !fw->done)
    {
      fw->waiting_write = FALSE;
      forward_read_next (fw);
    }
}

static void
append_chunk (Forward *fw,
              GBytes  *bytes)
{
  if (fw->record->ttfb_ms < 0)
    fw->record->ttfb_ms = elapsed_ms (fw->started_us);

  pooler_exchange_stream_write (fw->exchange, bytes);
}

/* Sends status and headers, and from here on the answer is the client's. */
static void
commit_stream (Forward *fw)
{
  SoupMessageHeaders *headers = pooler_exchange_get_response_headers (fw->exchange);
  guint status = pooler_upstream_response_get_status (fw->upstream);

  fw->phase = PHASE_STREAMING;
  fw->record->status = status;

  if (fw->translator != NULL)
    {
      soup_message_headers_foreach (pooler_upstream_response_get_headers (fw->upstream),
                                    copy_response_header_for_new_body, headers);
      soup_message_headers_replace (headers, "Content-Type",
                                    fw->translator->funcs->content_type (fw->translator->data));
      pooler_exchange_stream_begin (fw->exchange, status);
    }
  else
    {
      /* The upstream's headers go out as they are written, not copied. */
      pooler_exchange_stream_begin_with (fw->exchange, status,
                                         pooler_upstream_response_get_fields (fw->upstream),
                                         is_response_header_kept);
    }

  for (guint i = 0; fw->peeked != NULL && i < fw->peeked->len; i++)
    append_chunk (fw, g_ptr_array_index (fw->peeked, i));
  g_clear_pointer (&fw->peeked, g_ptr_array_unref);
}

static gboolean
has_more_candidates (Forward *fw)
{
  return fw->next_candidate < fw->candidates->len;
}

/* A failed attempt before anything reached the client: note it, and try
 * the next account or give the client the last failure. */
static void
attempt_failed (Forward    *fw,
                int         upstream_status,
                const char *error_code,
                gboolean    counts_against_health)
{
  finish_attempt (fw, upstream_status, error_code);
  if (counts_against_health)
    pooler_router_report_failure (pooler_service_get_router (fw->service), fw->account, now_seconds ());
  abandon_attempt (fw);
  forward_try_next (fw);
}

/* A chunk of a 2xx stream (or NULL and @error). */
static void
stream_got (Forward *fw,
            GBytes  *bytes,
            GError  *error)
{
  g_autoptr(GBytes) translated = NULL;
  gsize size;

  if (bytes == NULL)
    {
      if (fw->client_gone)
        forward_done (fw, "client_closed");
      else if (fw->phase == PHASE_PEEKING && has_more_candidates (fw))
        attempt_failed (fw, fw->record->upstream_status, "upstream_stream_error", TRUE);
      else
        {
          if (fw->phase == PHASE_PEEKING && fw->translator != NULL && fw->translator->collect)
            fw->phase = PHASE_COLLECTING;
          else if (fw->phase == PHASE_PEEKING)
            commit_stream (fw);
          g_debug ("Upstream stream of %s broke: %s", fw->record->id, error->message);
          stream_finish (fw, "upstream_stream_error",
                         "The upstream stream broke off before the response was complete.");
        }
      return;
    }

  if (fw->client_gone)
    {
      forward_done (fw, "client_closed");
      return;
    }

  size = g_bytes_get_size (bytes);
  if (size == 0)
    {
      if (fw->phase == PHASE_PEEKING)
        {
          /* Ended without a single event: nothing useful was said. */
          if (!fw->first_event_seen && has_more_candidates (fw))
            {
              attempt_failed (fw, fw->record->upstream_status, "upstream_empty_stream", TRUE);
              return;
            }
          if (fw->translator != NULL && fw->translator->collect)
            fw->phase = PHASE_COLLECTING;
          else
            commit_stream (fw);
        }
      stream_finish (fw, NULL, NULL);
      return;
    }

  if (fw->sse != NULL)
    pooler_sse_parser_feed (fw->sse, g_bytes_get_data (bytes, NULL), size);

  if (fw->translator != NULL)
    {
      /* The client sees the translator's output, not the upstream's bytes. */
      bytes = NULL;
      if (fw->phase == PHASE_COLLECTING)
        {
          /* What a translator keeps grows with the upstream's bytes. */
          fw->collected_bytes += size;
          if (fw->collected_bytes > MAX_BUFFERED_BODY)
            {
              respond_error (fw, SOUP_STATUS_BAD_GATEWAY, "server_error", "upstream_too_large",
                             "The upstream answer was larger than the gateway accepts.");
              return;
            }
          forward_read_next (fw);
          return;
        }
      if (fw->translated->len > 0)
        {
          translated = g_byte_array_free_to_bytes (g_steal_pointer (&fw->translated));
          fw->translated = g_byte_array_new ();
          bytes = translated;
        }
    }

  if (fw->phase == PHASE_PEEKING)
    {
      if (bytes != NULL)
        g_ptr_array_add (fw->peeked, g_bytes_ref (bytes));
      fw->peeked_size += size;

      if (fw->first_event_seen && fw->first_event_retry && has_more_candidates (fw))
        {
          attempt_failed (fw, fw->record->upstream_status, "upstream_response_failed", TRUE);
          return;
        }
      /* Failed, and on no other account (the last, or the request's
       * fault), and nothing went out: a translated (/v1) client gets it as
       * the API answers, an HTTP error with the failure's status (the SDKs
       * retry by status), not a 200 stream. */
      if (fw->first_event_seen && fw->first_event_failed && fw->translator != NULL)
        {
          fw->phase = PHASE_COLLECTING;
          forward_read_next (fw);
          return;
        }
      if (!fw->first_event_seen && fw->peeked_size < MAX_PEEK)
        {
          forward_read_next (fw);
          return;
        }
      if (fw->translator != NULL && fw->translator->collect)
        {
          fw->phase = PHASE_COLLECTING;
          forward_read_next (fw);
          return;
        }
      commit_stream (fw);
    }
  else if (bytes != NULL)
    append_chunk (fw, bytes);

  /* A write that found the client gone ends the exchange at once, and
   * may have ended the request with it (pooler_exchange's "finished"). */
  if (fw->done)
    return;
  if (!pooler_exchange_is_drained (fw->exchange))
    fw->waiting_write = TRUE;
  else
    forward_read_next (fw);
}

static void buffer_got (Forward *fw,
                        GBytes  *bytes,
                        GError  *error);
static void forward_got (Forward *fw,
                         GBytes  *bytes,
                         GError  *error);

static void
read_cb (PoolerUpstreamResponse *response,
         GBytes                 *bytes,
         GError                 *error,
         gpointer                user_data)
{
  g_autoptr(Forward) fw = user_data;

  /* Done, or an abandoned attempt's answer: nothing to do. */
  if (fw->done || response != fw->upstream)
    return;

  forward_got (fw, bytes, error);
}

/* A piece of the upstream answer (empty at its end), or NULL and @error. */
static void
forward_got (Forward *fw,
             GBytes  *bytes,
             GError  *error)
{
  if (fw->phase == PHASE_BUFFERING)
    buffer_got (fw, bytes, error);
  else if (bytes == NULL && fw->sse != NULL &&
           g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED))
    {
      /* A stream the upstream closed mid-body ends like one it closed at
       * an event boundary: whether it completed is told by its events. */
      g_autoptr(GBytes) end = g_bytes_new (NULL, 0);

      g_debug ("Upstream closed the stream of %s mid-body", fw->record->id);
      stream_got (fw, end, NULL);
    }
  else
    stream_got (fw, bytes, error);
}

static void
forward_read_next (Forward *fw)
{
  g_autoptr(GBytes) bytes = pooler_upstream_response_read_buffered (fw->upstream);

  /* Already here (small answers come whole with their head): handled in
   * this turn. The nesting is bounded by what one socket read holds. */
  if (bytes != NULL)
    {
      g_autoptr(Forward) hold = forward_ref (fw);

      forward_got (hold, bytes, NULL);
      return;
    }

  /* Nothing more in this turn: what was written goes out before we wait,
   * and when the client did not take it all, the upstream waits too. */
  pooler_exchange_flush (fw->exchange);
  if (fw->done)
    return;
  if (!pooler_exchange_is_drained (fw->exchange))
    {
      fw->waiting_write = TRUE;
      return;
    }
  pooler_upstream_response_read (fw->upstream, fw->attempt_cancellable, read_cb, forward_ref (fw));
}

/* A whole non-streamed answer has arrived. */
static void
buffer_complete (Forward *fw)
{
  guint status = pooler_upstream_response_get_status (fw->upstream);
  SoupMessageHeaders *upstream_headers = pooler_upstream_response_get_headers (fw->upstream);
  g_autoptr(GBytes) bytes = g_byte_array_free_to_bytes (g_steal_pointer (&fw->buffer));
  gint64 now = now_seconds ();

  if (SOUP_STATUS_IS_SUCCESSFUL (status))
    {
      const char *content_type = soup_message_headers_get_content_type (upstream_headers, NULL);

      if (fw->is_models)
        {
          g_clear_pointer (&fw->proxy->models_body, g_bytes_unref);
          g_free (fw->proxy->models_content_type);
          fw->proxy->models_body = g_bytes_ref (bytes);
          fw->proxy->models_content_type = g_strdup (content_type != NULL ? content_type : "application/json");
        }
      if (fw->is_usage)
        {
          g_autoptr(PoolerQuotaEvidence) evidence =
            pooler_quota_parse_usage (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), now);

          pooler_service_observe_quota (fw->service, fw->account, evidence);
        }

      pooler_router_report_success (pooler_service_get_router (fw->service), fw->account);
      if (!fw->client_gone)
        soup_message_headers_foreach (upstream_headers, copy_response_header,
                                      pooler_exchange_get_response_headers (fw->exchange));
      respond_bytes (fw, status, content_type != NULL ? content_type : "application/json", bytes);
      forward_done (fw, NULL);
      return;
    }

  /* An error answer: it may carry quota evidence, and 429/5xx move on. */
  {
    g_autoptr(PoolerQuotaEvidence) evidence = NULL;
    g_autofree char *code = g_strdup_printf ("upstream_%u", status);
    gboolean quota_block;

    evidence = pooler_quota_parse_error_body (status, g_bytes_get_data (bytes, NULL),
                                              g_bytes_get_size (bytes), now);
    quota_block = evidence != NULL && evidence->blocked_until > now;
    pooler_service_observe_quota (fw->service, fw->account, evidence);

    g_clear_pointer (&fw->last_error_body, g_bytes_unref);
    fw->last_error_body = pooler_api_error_sanitize_upstream (status, g_bytes_get_data (bytes, NULL),
                                                              g_bytes_get_size (bytes));
    fw->last_error_status = status;

    if ((status == 429 /* Too Many Requests; libsoup 3.2 has no name for it */ || status >= 500) && !fw->is_models)
      {
        /* A spent quota is the account's state, not a fault of its own. */
        attempt_failed (fw, status, code, !quota_block);
        return;
      }

    if (!fw->client_gone)
      soup_message_headers_foreach (upstream_headers, copy_response_header_for_new_body,
                                    pooler_exchange_get_response_headers (fw->exchange));
    respond_bytes (fw, status, "application/json", fw->last_error_body);
    forward_done (fw, code);
  }
}

/* A chunk of an answer read whole (or NULL and @error). */
static void
buffer_got (Forward *fw,
            GBytes  *bytes,
            GError  *error)
{
  gsize limit;

  if (bytes == NULL)
    {
      if (fw->client_gone)
        forward_done (fw, "client_closed");
      else
        attempt_failed (fw, pooler_upstream_response_get_status (fw->upstream), "upstream_read_error", TRUE);
      return;
    }

  if (g_bytes_get_size (bytes) == 0)
    {
      buffer_complete (fw);
      return;
    }

  limit = SOUP_STATUS_IS_SUCCESSFUL (pooler_upstream_response_get_status (fw->upstream))
          ? MAX_BUFFERED_BODY : MAX_ERROR_BODY;
  if (fw->buffer->len + g_bytes_get_size (bytes) > limit)
    {
      respond_error (fw, SOUP_STATUS_BAD_GATEWAY, "server_error", "upstream_too_large",
                     "The upstream answer was larger than the gateway accepts.");
      return;
    }

  g_byte_array_append (fw->buffer, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  forward_read_next (fw);
}

static void
refreshed_after_401_cb (GObject      *object,
                        GAsyncResult *result,
                        gpointer      user_data)
{
  g_autoptr(Forward) fw = user_data;
  g_autoptr(GError) error = NULL;
  gboolean refreshed;

  refreshed = pooler_service_refresh_tokens_finish (POOLER_SERVICE (object), result, &error);

  if (fw->done)
    return;
  if (fw->client_gone)
    {
      forward_done (fw, "client_closed");
      return;
    }

  if (refreshed)
    {
      /* One retry on the same account with the new token. */
      forward_send (fw);
      return;
    }

  g_debug ("Refreshing account %s after a 401 failed: %s",
           pooler_account_get_id (fw->account), error->message);
  if (!g_error_matches (error, POOLER_OAUTH_ERROR, POOLER_OAUTH_ERROR_REVOKED))
    pooler_router_report_failure (pooler_service_get_router (fw->service), fw->account, now_seconds ());
  if (fw->client_gone)
    {
      forward_done (fw, "client_closed");
      return;
    }
  forward_try_next (fw);
}

static void
send_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(Forward) fw = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(PoolerUpstreamResponse) response = NULL;
  guint status;

  response = pooler_upstream_send_finish (POOLER_UPSTREAM (object), result, &error);

  /* Done, or an abandoned attempt's answer (its cancellable was replaced). */
  if (fw->done || g_task_get_cancellable (G_TASK (result)) != fw->attempt_cancellable ||
      fw->upstream != NULL)
    {
      if (response != NULL)
        pooler_upstream_response_abandon (response);
      return;
    }
  fw->upstream = g_steal_pointer (&response);
  stop_answer_deadline (fw);

  /* The answer came in the very turn the deadline fired: it is in time,
   * but the attempt's cancellable is spent; reading needs a fresh one. */
  if (fw->upstream != NULL && fw->answer_timed_out)
    {
      fw->answer_timed_out = FALSE;
      g_clear_object (&fw->attempt_cancellable);
      fw->attempt_cancellable = g_cancellable_new ();
    }

  if (fw->client_gone)
    {
      forward_done (fw, "client_closed");
      return;
    }

  if (fw->upstream == NULL && fw->answer_timed_out)
    {
      g_debug ("Upstream request %s on account %s got no answer in time", fw->record->id,
               pooler_account_get_id (fw->account));
      /* A request with a body may be at work upstream (and billed): it
       * is never sent to another account; the client may try again. */
      if (fw->body != NULL)
        {
          finish_attempt (fw, 0, "upstream_timeout");
          pooler_router_report_failure (pooler_service_get_router (fw->service), fw->account, now_seconds ());
          abandon_attempt (fw);
          respond_error (fw, SOUP_STATUS_GATEWAY_TIMEOUT, "server_error", "upstream_timeout",
                         "The upstream did not answer in time. Try again shortly.");
          return;
        }
      attempt_failed (fw, 0, "upstream_timeout", TRUE);
      return;
    }

  if (fw->upstream == NULL)
    {
      if (fw->client_gone)
        {
          forward_done (fw, "client_closed");
          return;
        }

      g_debug ("Upstream request %s on account %s failed: %s", fw->record->id,
               pooler_account_get_id (fw->account), error->message);

      if (fw->is_models && fw->proxy->models_body != NULL)
        {
          finish_attempt (fw, 0, "upstream_unreachable");
          respond_bytes (fw, SOUP_STATUS_OK, fw->proxy->models_content_type, fw->proxy->models_body);
          forward_done (fw, "served_from_cache");
          return;
        }

      attempt_failed (fw, 0, "upstream_unreachable", TRUE);
      return;
    }

  if (pooler_timing_active ())
    pooler_exchange_mark (fw->exchange, POOLER_EXCHANGE_MARK_UPSTREAM_HEAD, g_get_monotonic_time ());
  status = pooler_upstream_response_get_status (fw->upstream);
  fw->record->upstream_status = status;

  g_free (fw->record->account_id);
  fw->record->account_id = g_strdup (pooler_account_get_id (fw->account));
  pooler_service_note_account_used (fw->service, fw->account, fw->key_prefix);

  /* Every answer carries quota evidence in its headers. */
  pooler_service_observe_quota_fields (fw->service, fw->account, pooler_upstream_response_get_fields (fw->upstream));

  if (status == SOUP_STATUS_UNAUTHORIZED && !fw->retried_auth)
    {
      fw->retried_auth = TRUE;
      finish_attempt (fw, status, "upstream_401");
      abandon_attempt (fw);
      pooler_service_refresh_tokens_async (fw->service, fw->account, NULL,
                                           refreshed_after_401_cb, forward_ref (fw));
      return;
    }
  if (status == SOUP_STATUS_UNAUTHORIZED && has_more_candidates (fw))
    {
      attempt_failed (fw, status, "upstream_401", TRUE);
      return;
    }

  if (fw->is_models && status >= 500 && fw->proxy->models_body != NULL)
    {
      finish_attempt (fw, status, "upstream_error");
      respond_bytes (fw, SOUP_STATUS_OK, fw->proxy->models_content_type, fw->proxy->models_body);
      forward_done (fw, "served_from_cache");
      return;
    }

  if (SOUP_STATUS_IS_SUCCESSFUL (status) && fw->mode == POOLER_FORWARD_STREAM)
    {
      if (pooler_http_fields_media_type_is (pooler_upstream_response_get_fields (fw->upstream),
                                            "text/event-stream"))
        {
          fw->sse = pooler_sse_parser_new (on_sse_event, fw);
          g_free (fw->record->transport);
          fw->record->transport = g_strdup ("sse");
          fw->peeked = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
          fw->phase = PHASE_PEEKING;
        }
      else
        commit_stream (fw);
      forward_read_next (fw);
    }
  else
    {
      fw->buffer = g_byte_array_new ();
      fw->phase = PHASE_BUFFERING;
      forward_read_next (fw);
    }
}

/* The upstream accepted the request but does not answer: give up on this
 * attempt (the cancelled send then fails over, or answers 504). */
static void
answer_deadline_passed (Forward *fw)
{
  fw->answer_timed_out = TRUE;
  fw->any_timed_out = TRUE;
  if (fw->attempt_cancellable != NULL)
    g_cancellable_cancel (fw->attempt_cancellable);
}

static void
forward_send (Forward *fw)
{
  g_autofree char *uri = NULL;
  const PoolerTokens *tokens;
  g_autoptr(PoolerUpstreamRequest) request = NULL;
  SoupMessageHeaders *client_headers;
  SoupMessageHeadersIter iter;
  const char *name;
  const char *value;
  gboolean typed;

  tokens = pooler_service_peek_tokens (fw->service, pooler_account_get_id (fw->account));
  if (tokens == NULL || tokens->access_token == NULL)
    {
      forward_try_next (fw);
      return;
    }

  abandon_attempt (fw);
  fw->attempt_cancellable = g_cancellable_new ();
  fw->attempt = pooler_request_record_add_attempt (fw->record, pooler_account_get_id (fw->account));
  fw->attempt_started_us = g_get_monotonic_time ();

  uri = g_strconcat (pooler_service_get_upstream_url (fw->service), fw->upstream_path,
                     fw->query != NULL ? "?" : NULL, fw->query, NULL);
  request = pooler_upstream_request_new (pooler_service_get_upstream (fw->service),
                                         pooler_exchange_get_method (fw->exchange), uri, NULL);
  if (request == NULL)
    {
      respond_error (fw, SOUP_STATUS_INTERNAL_SERVER_ERROR, "server_error", "bad_upstream_url",
                     "The configured upstream URL is not valid.");
      return;
    }

  /* The client's headers, less the dropped ones, written straight into
   * the upstream request's head; then our credentials. A Content-Type
   * that does not parse is replaced, as a missing one is added. */
  client_headers = pooler_exchange_get_request_headers (fw->exchange);
  typed = fw->body == NULL || soup_message_headers_get_content_type (client_headers, NULL) != NULL;
  soup_message_headers_iter_init (&iter, client_headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    if (!is_request_header_dropped (name) && (typed || g_ascii_strcasecmp (name, "Content-Type") != 0))
      pooler_upstream_request_add_header (request, name, value);
  pooler_upstream_request_add_bearer (request, tokens->access_token);
  if (pooler_account_get_chatgpt_account_id (fw->account) != NULL)
    pooler_upstream_request_add_header (request, "chatgpt-account-id",
                                        pooler_account_get_chatgpt_account_id (fw->account));
  if (!typed)
    pooler_upstream_request_add_header (request, "Content-Type", "application/json");

  start_answer_deadline (fw);
  /* Redirects are never followed; a reused connection the upstream had
   * closed is replaced once (what failover would do anyway). */
  pooler_upstream_request_send_async (g_steal_pointer (&request), fw->body, fw->attempt_cancellable,
                                      send_cb, forward_ref (fw));
  if (pooler_timing_active ())
    pooler_exchange_mark (fw->exchange, POOLER_EXCHANGE_MARK_FORWARDED, g_get_monotonic_time ());
}

static void
refreshed_before_send_cb (GObject      *object,
                          GAsyncResult *result,
                          gpointer      user_data)
{
  g_autoptr(Forward) fw = user_data;
  g_autoptr(GError) error = NULL;

  if (fw->done)
    return;
  if (fw->client_gone)
    {
      forward_done (fw, "client_closed");
      return;
    }

  if (!pooler_service_refresh_tokens_finish (POOLER_SERVICE (object), result, &error))
    {
      const PoolerTokens *tokens = pooler_service_peek_tokens (fw->service, pooler_account_get_id (fw->account));
      PoolerAttemptRecord *attempt;

      /* The refresh was early (within a minute of expiry): a pair that
       * has not expired still serves while the sign-in server is away. */
      if (!g_error_matches (error, POOLER_OAUTH_ERROR, POOLER_OAUTH_ERROR_REVOKED) &&
          tokens != NULL && tokens->expires_at > g_get_real_time () / G_USEC_PER_SEC + 5)
        {
          forward_send (fw);
          return;
        }

      attempt = pooler_request_record_add_attempt (fw->record, pooler_account_get_id (fw->account));
      attempt->error_code = g_strdup (g_error_matches (error, POOLER_OAUTH_ERROR, POOLER_OAUTH_ERROR_REVOKED)
                                      ? "reauth_required" : "token_refresh_failed");
      forward_try_next (fw);
      return;
    }

  forward_send (fw);
}

/* Sends the whole answer from the last failure, or the Pool-exhausted one. */
static void
respond_after_failures (Forward *fw)
{
  PoolerRouteOutcome outcome;
  gint64 earliest = 0;
  GPtrArray *members = pooler_service_get_pool_accounts (fw->service, pooler_pool_get_id (fw->pool));
  g_autoptr(GPtrArray) again = NULL;

  if (members != NULL)
    again = pooler_router_order (pooler_service_get_router (fw->service), fw->pool, members,
                                 NULL, now_seconds (), &outcome, &earliest);

  if (again != NULL && outcome == POOLER_ROUTE_ALL_SPENT && !fw->is_models)
    {
      respond_pool_spent (fw, earliest);
      return;
    }

  if (fw->last_error_body != NULL)
    {
      g_autofree char *code = g_strdup_printf ("upstream_%u", fw->last_error_status);

      respond_bytes (fw, fw->last_error_status, "application/json", fw->last_error_body);
      forward_done (fw, code);
      return;
    }

  if (fw->record->attempts->len > 0 && fw->any_timed_out)
    respond_error (fw, SOUP_STATUS_GATEWAY_TIMEOUT, "server_error", "upstream_timeout",
                   "The upstream did not answer in time. Try again shortly.");
  else if (fw->record->attempts->len > 0)
    respond_error (fw, SOUP_STATUS_BAD_GATEWAY, "server_error", "upstream_unreachable",
                   "The upstream could not be reached. Try again shortly.");
  else
    {
      g_autofree char *message = g_strdup_printf ("Pool “%s” has no usable account right now.",
                                                  pooler_pool_get_slug (fw->pool));

      pooler_service_note_pool_capacity (fw->service, fw->pool, FALSE, 0);
      respond_error (fw, SOUP_STATUS_SERVICE_UNAVAILABLE, "server_error", "no_usable_account", message);
    }
}

static void
forward_try_next (Forward *fw)
{
  gint64 now = now_seconds ();

  g_clear_object (&fw->account);
  fw->retried_auth = FALSE;

  if (fw->client_gone)
    {
      forward_done (fw, "client_closed");
      return;
    }

  while (fw->next_candidate < fw->candidates->len)
    {
      PoolerAccount *candidate = g_ptr_array_index (fw->candidates, fw->next_candidate++);
      const PoolerTokens *tokens = pooler_service_peek_tokens (fw->service,
                                                               pooler_account_get_id (candidate));

      /* Quota evidence from an earlier attempt may have ruled it out. */
      if (pooler_account_get_status (candidate) != POOLER_ACCOUNT_ACTIVE)
        continue;
      if (tokens == NULL || tokens->access_token == NULL)
        {
          g_debug ("Account %s has no tokens loaded; skipping it", pooler_account_get_id (candidate));
          continue;
        }

      fw->account = g_object_ref (candidate);
      break;
    }

  if (fw->account == NULL)
    {
      respond_after_failures (fw);
      return;
    }

  if (pooler_service_tokens_expiring (fw->service, fw->account, now))
    {
      pooler_service_refresh_tokens_async (fw->service, fw->account, NULL,
                                           refreshed_before_send_cb, forward_ref (fw));
      return;
    }

  forward_send (fw);
}

/* The exchange is over, the answer out or the client gone. It drops the
 * exchange's reference. */
static void
on_client_finished (PoolerExchange *exchange,
                    gpointer        user_data)
{
  Forward *fw = user_data;

  if (pooler_exchange_is_gone (exchange))
    {
      if (fw->completed && fw->phase == PHASE_STREAMING && !fw->done)
        {
          /* It left after response.completed, before the upstream's end
           * of body: it had the whole answer. (The Codex CLI does this.) */
          g_autoptr(Forward) hold G_GNUC_UNUSED = forward_ref (fw);

          if (fw->attempt_cancellable != NULL)
            g_cancellable_cancel (fw->attempt_cancellable);
          stream_finish (fw, NULL, NULL);
        }
      else
        client_went_away (fw);
    }
  forward_unref (fw);
}

/* The Forward answers its exchange; finished() drops the reference
 * the exchange held. */
static const PoolerExchangeOwner forward_exchange_owner = {
  .drained = on_exchange_drained,
  .finished = on_client_finished,
};

/* The conversation's keys: the prompt cache key (the thread id for the
 * Codex CLI) and the session header, in the order the CLI's versions use. */
static char *
session_key_of (PoolerExchange *exchange)
{
  static const char * const names[] = {
    "session-id", "session_id", "thread-id", "x-codex-window-id",
  };
  SoupMessageHeaders *headers = pooler_exchange_get_request_headers (exchange);

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      const char *value = soup_message_headers_get_one (headers, names[i]);

      if (value != NULL && *value != '\0' && strlen (value) <= 256)
        return g_strdup (value);
    }

  return NULL;
}

static void
usage_poll_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(PoolerAccount) account = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = soup_session_send_and_read_finish (SOUP_SESSION (object), result, &error);
  SoupMessage *msg = soup_session_get_async_result_message (SOUP_SESSION (object), result);
  PoolerService *service = g_object_get_data (G_OBJECT (msg), "pooler-service");

  if (body == NULL || !SOUP_STATUS_IS_SUCCESSFUL (soup_message_get_status (msg)))
    {
      g_debug ("Usage poll of account %s failed", pooler_account_get_id (account));
      return;
    }

  if (service != NULL)
    {
      g_autoptr(PoolerQuotaEvidence) evidence =
        pooler_quota_parse_usage (g_bytes_get_data (body, NULL), g_bytes_get_size (body), now_seconds ());

      pooler_service_observe_quota (service, account, evidence);
    }
}

/* Evidence comes free with every answer, so a poll is only worth it where
 * the order depends on evidence we lack (quota-first with stale or no
 * evidence): ask the upstream in the background, at most once a minute
 * per account. */
static void
maybe_poll_usage (PoolerProxy   *self,
                  PoolerAccount *account)
{
  g_autoptr(SoupMessage) msg = NULL;
  g_autofree char *uri = NULL;
  g_autofree char *bearer = NULL;
  const PoolerTokens *tokens = pooler_service_peek_tokens (self->service, pooler_account_get_id (account));
  SoupMessageHeaders *headers;

  if (tokens == NULL || !pooler_service_claim_usage_poll (self->service, account, now_seconds ()))
    return;

  uri = g_strconcat (pooler_service_get_upstream_url (self->service), "/wham/usage", NULL);
  msg = soup_message_new (SOUP_METHOD_GET, uri);
  if (msg == NULL)
    return;

  headers = soup_message_get_request_headers (msg);
  bearer = g_strconcat ("Bearer ", tokens->access_token, NULL);
  soup_message_headers_replace (headers, "Authorization", bearer);
  soup_message_headers_replace (headers, "chatgpt-account-id", pooler_account_get_chatgpt_account_id (account));
  g_object_set_data_full (G_OBJECT (msg), "pooler-service", g_object_ref (self->service), g_object_unref);

  soup_session_send_and_read_async (pooler_service_get_session (self->service), msg, G_PRIORITY_LOW, NULL,
                                    usage_poll_cb, g_object_ref (account));
}

/* GET /backend-api/wham/usage: the Pool's capacity as the account with the
 * most left sees it, from evidence; asks the upstream only when there is
 * no fresh evidence. Returns FALSE when it must be forwarded instead. */
static gboolean
answer_usage_from_evidence (Forward *fw)
{
  GPtrArray *members = pooler_service_get_pool_accounts (fw->service, pooler_pool_get_id (fw->pool));
  PoolerQuotaState *best = NULL;
  double best_remaining = -1;
  gint64 now = now_seconds ();
  g_autoptr(JsonGenerator) generator = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GBytes) body = NULL;
  char *text;
  gsize length;

  for (guint i = 0; members != NULL && i < members->len; i++)
    {
      PoolerAccount *account = g_ptr_array_index (members, i);
      PoolerQuotaState *quota = pooler_service_get_quota (fw->service, pooler_account_get_id (account));
      double remaining;
      gint64 reset_at;

      if (quota == NULL || pooler_account_get_status (account) != POOLER_ACCOUNT_ACTIVE ||
          pooler_quota_state_is_stale (quota, now))
        continue;

      remaining = pooler_quota_state_is_spent (quota, now, &reset_at) ? 0 : pooler_quota_state_remaining (quota, now);
      if (best == NULL || remaining > best_remaining)
        {
          best = quota;
          best_remaining = remaining;
        }
    }

  if (best == NULL)
    return FALSE;

  node = pooler_quota_state_to_usage_json (best, now);
  generator = json_generator_new ();
  json_generator_set_root (generator, node);
  text = json_generator_to_data (generator, &length);
  body = g_bytes_new_take (text, length);

  respond_bytes (fw, SOUP_STATUS_OK, "application/json", body);
  forward_done (fw, NULL);
  return TRUE;
}

void
pooler_translator_free (PoolerTranslator *translator)
{
  if (translator == NULL)
    return;

  if (translator->destroy != NULL)
    translator->destroy (translator->data);
  g_free (translator);
}

static void forward_start (PoolerProxy             *self,
                           PoolerExchange          *exchange,
                           const PoolerKeyRecord   *key,
                           const char              *upstream_path,
                           GBytes                  *body,
                           const PoolerRequestBody *scan,
                           PoolerForwardMode        mode,
                           PoolerTranslator        *translator,
                           PoolerRequestRecord     *record);

void
pooler_proxy_forward (PoolerProxy             *self,
                      PoolerExchange          *exchange,
                      const PoolerKeyRecord   *key,
                      const char              *upstream_path,
                      GBytes                  *body,
                      const PoolerRequestBody *scan,
                      PoolerForwardMode        mode,
                      PoolerRequestRecord     *record)
{
  forward_start (self, exchange, key, upstream_path, body, scan, mode, NULL, record);
}

void
pooler_proxy_forward_translated (PoolerProxy             *self,
                                 PoolerExchange          *exchange,
                                 const PoolerKeyRecord   *key,
                                 const char              *upstream_path,
                                 GBytes                  *body,
                                 const PoolerRequestBody *scan,
                                 PoolerTranslator        *translator,
                                 PoolerRequestRecord     *record)
{
  g_return_if_fail (translator != NULL && translator->funcs != NULL);

  forward_start (self, exchange, key, upstream_path, body, scan, POOLER_FORWARD_STREAM, translator, record);
}

static void
forward_start (PoolerProxy             *self,
               PoolerExchange          *exchange,
               const PoolerKeyRecord   *key,
               const char              *upstream_path,
               GBytes                  *body,
               const PoolerRequestBody *scan,
               PoolerForwardMode        mode,
               PoolerTranslator        *translator,
               PoolerRequestRecord     *record)
{
  Forward *fw;
  PoolerPool *pool;
  GPtrArray *accounts;
  g_autoptr(GPtrArray) empty = NULL;
  PoolerRouteQuery query = { 0 };
  PoolerRouteOutcome outcome;
  gint64 earliest = 0;
  gint64 now = now_seconds ();
  PoolerAffinity *affinity;
  g_autofree char *session_key = NULL;

  g_return_if_fail (POOLER_IS_PROXY (self));
  g_return_if_fail (POOLER_IS_EXCHANGE (exchange));
  g_return_if_fail (key != NULL);
  g_return_if_fail (record != NULL);

  fw = g_new0 (Forward, 1);
  g_atomic_ref_count_init (&fw->ref_count);
  fw->proxy = g_object_ref (self);
  fw->service = g_object_ref (self->service);
  fw->exchange = g_object_ref (exchange);
  fw->key_prefix = g_strdup (key->prefix);
  fw->record = record;
  fw->upstream_path = g_strdup (upstream_path);
  fw->body = body != NULL ? g_bytes_ref (body) : NULL;
  fw->mode = mode;
  fw->started_us = g_get_monotonic_time ();
  fw->is_models = g_str_has_prefix (upstream_path, "/codex/models");
  fw->is_usage = g_str_equal (upstream_path, "/wham/usage");
  fw->is_compact = g_str_has_suffix (upstream_path, "/responses/compact");
  fw->translator = translator;
  if (translator != NULL)
    fw->translated = g_byte_array_new ();

  fw->query = g_strdup (pooler_exchange_get_query (exchange));

  self->in_flight++;

  /* The exchange keeps one reference until it is finished. */
  pooler_exchange_set_owner (exchange, &forward_exchange_owner, forward_ref (fw));

  pool = pooler_service_lookup_pool (self->service, key->pool_id);
  if (pool == NULL)
    {
      respond_error (fw, SOUP_STATUS_SERVICE_UNAVAILABLE, "server_error", "pool_missing",
                     "The Pool of this key no longer exists.");
      forward_unref (fw);
      return;
    }
  fw->pool = g_object_ref (pool);

  pooler_service_record_request (self->service, record);

  if (fw->is_usage && answer_usage_from_evidence (fw))
    {
      forward_unref (fw);
      return;
    }

  accounts = pooler_service_get_pool_accounts (self->service, key->pool_id);
  if (accounts == NULL)
    accounts = empty = g_ptr_array_new ();

  /* Continuity: the conversation's home (soft), a response's owner (hard). */
  affinity = pooler_service_get_affinity (self->service);
  session_key = session_key_of (exchange);
  if (session_key != NULL)
    fw->session_hash = pooler_affinity_key (affinity, pooler_pool_get_id (pool), POOLER_AFFINITY_SESSION,
                                            session_key);
  if (scan != NULL)
    {
      if (scan->prompt_cache_key != NULL && *scan->prompt_cache_key != '\0')
        fw->prompt_cache_hash = pooler_affinity_key (affinity, pooler_pool_get_id (pool),
                                                     POOLER_AFFINITY_PROMPT_CACHE,
                                                     scan->prompt_cache_key);
      query.model = scan->model;
      if (scan->previous_response_id != NULL)
        query.hard_account_id = pooler_affinity_lookup (affinity, pooler_pool_get_id (pool),
                                                        POOLER_AFFINITY_RESPONSE,
                                                        scan->previous_response_id, now);
    }
  query.ring_size = pooler_pool_get_ring_size (pool);
  query.soft_account_id = pooler_affinity_lookup_key (affinity, fw->prompt_cache_hash, now);
  if (query.soft_account_id == NULL)
    query.soft_account_id = pooler_affinity_lookup_key (affinity, fw->session_hash, now);

  fw->candidates = pooler_router_order (pooler_service_get_router (self->service), pool, accounts,
                                        &query, now, &outcome, &earliest);

  switch (outcome)
    {
    case POOLER_ROUTE_ALL_SPENT:
      if (!fw->is_models && !fw->is_usage)
        {
          respond_pool_spent (fw, earliest);
          forward_unref (fw);
          return;
        }
      break;
    case POOLER_ROUTE_PIN_UNAVAILABLE:
      if (fw->translator != NULL)
        pooler_exchange_respond_error (exchange, SOUP_STATUS_CONFLICT, "invalid_request_error",
                                       "previous_response_account_unavailable", "input",
                                       "The account that made the reasoning items in input cannot serve right now, "
                                       "and their encrypted content only verifies there. Retry later or send the "
                                       "conversation without its reasoning items.");
      else
        pooler_exchange_respond_error (exchange, SOUP_STATUS_CONFLICT, "invalid_request_error",
                                       "previous_response_account_unavailable", "previous_response_id",
                                       "The account that created previous_response_id cannot serve right now, "
                                       "and its encrypted state only verifies there. Retry later or start a new "
                                       "conversation without previous_response_id.");
      fw->record->status = SOUP_STATUS_CONFLICT;
      forward_done (fw, "previous_response_account_unavailable");
      forward_unref (fw);
      return;
    case POOLER_ROUTE_OK:
    case POOLER_ROUTE_EMPTY:
    default:
      break;
    }

  if (!fw->is_usage && g_strcmp0 (pooler_pool_get_strategy (pool), POOLER_STRATEGY_QUOTA_FIRST) == 0)
    for (guint i = 0; i < fw->candidates->len; i++)
      maybe_poll_usage (self, g_ptr_array_index (fw->candidates, i));

  forward_try_next (fw);
  forward_unref (fw);
}

static void
pooler_proxy_dispose (GObject *object)
{
  PoolerProxy *self = (PoolerProxy *)object;

  /* Each waiting attempt holds the proxy: none is left. */
  g_warn_if_fail (self->awaiting.length == 0);
  if (self->deadline_source != NULL)
    {
      g_source_destroy (self->deadline_source);
      g_clear_pointer (&self->deadline_source, g_source_unref);
    }
  g_clear_pointer (&self->models_body, g_bytes_unref);
  g_clear_pointer (&self->models_content_type, g_free);
  g_clear_object (&self->service);

  G_OBJECT_CLASS (pooler_proxy_parent_class)->dispose (object);
}

static void
pooler_proxy_class_init (PoolerProxyClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = pooler_proxy_dispose;
}

static void
pooler_proxy_init (PoolerProxy *self)
{
  self->answer_timeout = POOLER_UPSTREAM_ANSWER_SECONDS;
}

void
pooler_proxy_set_answer_timeout (PoolerProxy *self,
                                 guint        seconds)
{
  g_return_if_fail (POOLER_IS_PROXY (self));
  g_return_if_fail (seconds > 0);

  self->answer_timeout = seconds;
}

PoolerProxy *
pooler_proxy_new (PoolerService *service)
{
  PoolerProxy *self;

  g_return_val_if_fail (POOLER_IS_SERVICE (service), NULL);

  self = g_object_new (POOLER_TYPE_PROXY, NULL);
  self->service = g_object_ref (service);

  return self;
}

SoupSession *
pooler_proxy_get_session (PoolerProxy *self)
{
  g_return_val_if_fail (POOLER_IS_PROXY (self), NULL);

  return pooler_service_get_session (self->service);
}

guint
pooler_proxy_get_in_flight (PoolerProxy *self)
{
  g_return_val_if_fail (POOLER_IS_PROXY (self), 0);

  return self->in_flight;
}

guint64
pooler_proxy_get_deadline_arms (PoolerProxy *self)
{
  g_return_val_if_fail (POOLER_IS_PROXY (self), 0);

  return self->deadline_arms;
}
