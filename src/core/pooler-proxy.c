/* pooler-proxy.c
 *
 * The hot path. One shared SoupSession keeps upstream connections alive;
 * an answer is read with g_input_stream_read_bytes_async() and each chunk
 * is appended to the client's response as soon as it arrives, then handed
 * to the SSE observer. Nothing waits on SQLite here: the request row goes
 * to the writer thread through the service.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-proxy"

#include "config.h"

#include <string.h>

#include "pooler-api-error.h"
#include "pooler-proxy.h"
#include "pooler-sse.h"

#define READ_SIZE           16384
#define MAX_BUFFERED_BODY   (8 * 1024 * 1024)
#define MAX_ERROR_BODY      (256 * 1024)
/* Chunks handed to libsoup but not yet written to a slow client before
 * we stop reading from the upstream (backpressure). */
#define MAX_PENDING_CHUNKS  16
#define UPSTREAM_IO_TIMEOUT 300
#define UPSTREAM_IDLE_TIMEOUT 60

struct _PoolerProxy
{
  GObject        parent_instance;

  PoolerService *service;
  SoupSession   *session;
  guint          in_flight;

  /* Last good /codex/models answer, served when the upstream fails. */
  GBytes        *models_body;
  char          *models_content_type;
};

G_DEFINE_FINAL_TYPE (PoolerProxy, pooler_proxy, G_TYPE_OBJECT)

typedef struct
{
  gatomicrefcount      ref_count;
  PoolerProxy         *proxy;
  SoupServerMessage   *msg;
  SoupMessage         *upstream;
  GInputStream        *istream;
  GCancellable        *cancellable;
  PoolerKeyRecord     *key;
  PoolerRequestRecord *record;
  PoolerAttemptRecord *attempt;
  PoolerPool          *pool;
  GPtrArray           *candidates;   /* PoolerAccount, in order */
  guint                next_candidate;
  PoolerAccount       *account;      /* the current attempt's */
  char                *upstream_path;
  char                *query;
  GBytes              *body;
  PoolerForwardMode    mode;
  PoolerSseParser     *sse;
  GByteArray          *buffer;       /* POOLER_FORWARD_BUFFER and error bodies */
  gint64               started_us;
  gint64               attempt_started_us;
  guint                pending_chunks;
  gulong               finished_handler;
  gulong               wrote_chunk_handler;
  guint                streaming : 1;     /* headers sent, body flowing */
  guint                waiting_write : 1; /* a read waits for the client */
  guint                completed : 1;     /* response.completed seen */
  guint                failed_event : 1;  /* response.failed seen */
  guint                client_gone : 1;
  guint                done : 1;
  guint                is_models : 1;
} Forward;

static void forward_try_next (Forward *fw);
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

  g_clear_signal_handler (&fw->finished_handler, fw->msg);
  g_clear_signal_handler (&fw->wrote_chunk_handler, fw->msg);
  g_clear_object (&fw->msg);
  g_clear_object (&fw->upstream);
  g_clear_object (&fw->istream);
  g_clear_object (&fw->cancellable);
  g_clear_pointer (&fw->key, pooler_key_record_free);
  g_clear_pointer (&fw->record, pooler_request_record_free);
  g_clear_object (&fw->pool);
  g_clear_pointer (&fw->candidates, g_ptr_array_unref);
  g_clear_object (&fw->account);
  g_clear_pointer (&fw->upstream_path, g_free);
  g_clear_pointer (&fw->query, g_free);
  g_clear_pointer (&fw->body, g_bytes_unref);
  g_clear_pointer (&fw->sse, pooler_sse_parser_free);
  if (fw->buffer != NULL)
    g_byte_array_unref (fw->buffer);
  g_clear_object (&fw->proxy);
  g_free (fw);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Forward, forward_unref)

static gint64
elapsed_ms (gint64 since_us)
{
  return (g_get_monotonic_time () - since_us) / 1000;
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

/* Ends the request exactly once: the row, the counters, the signal. */
static void
forward_done (Forward    *fw,
              const char *error_code)
{
  if (fw->done)
    return;
  fw->done = TRUE;

  if (error_code != NULL && fw->record->error_code == NULL)
    fw->record->error_code = g_strdup (error_code);

  finish_attempt (fw, fw->record->upstream_status, error_code);

  fw->record->state = POOLER_REQUEST_COMPLETED;
  fw->record->latency_ms = elapsed_ms (fw->started_us);
  if (fw->client_gone)
    fw->record->status = 499;
  else if (fw->record->status == 0)
    fw->record->status = soup_server_message_get_status (fw->msg);

  pooler_service_record_request (fw->proxy->service, fw->record);

  g_assert (fw->proxy->in_flight > 0);
  fw->proxy->in_flight--;
}

static void
respond_error (Forward    *fw,
               guint       status,
               const char *type,
               const char *code,
               const char *message)
{
  if (!fw->client_gone)
    {
      pooler_api_error_respond (fw->msg, status, type, code, NULL, message);
      soup_server_message_unpause (fw->msg);
    }
  fw->record->status = status;
  forward_done (fw, code);
}

static void
respond_bytes (Forward     *fw,
               guint        status,
               const char  *content_type,
               GBytes      *bytes)
{
  if (!fw->client_gone)
    {
      SoupMessageHeaders *headers = soup_server_message_get_response_headers (fw->msg);

      soup_message_headers_set_encoding (headers, SOUP_ENCODING_CONTENT_LENGTH);
      soup_server_message_set_status (fw->msg, status, NULL);
      soup_server_message_set_response (fw->msg, content_type, SOUP_MEMORY_COPY,
                                        g_bytes_get_data (bytes, NULL),
                                        g_bytes_get_size (bytes));
      soup_server_message_unpause (fw->msg);
    }
  fw->record->status = status;
}

static gboolean
is_hop_by_hop (const char *name)
{
  static const char * const names[] = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
  };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    if (g_ascii_strcasecmp (name, names[i]) == 0)
      return TRUE;

  return FALSE;
}

/* Client headers that never go upstream: credentials (ours replace
 * them), browser context, and what libsoup sets itself. */
static gboolean
is_request_header_dropped (const char *name)
{
  static const char * const names[] = {
    "host", "content-length", "authorization", "cookie", "chatgpt-account-id",
    "accept-encoding", "origin", "referer", "x-api-key", "openai-organization",
    "openai-project", "expect",
  };

  if (is_hop_by_hop (name) || g_ascii_strncasecmp (name, "sec-", 4) == 0)
    return TRUE;

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    if (g_ascii_strcasecmp (name, names[i]) == 0)
      return TRUE;

  return FALSE;
}

static gboolean
is_response_header_dropped (const char *name)
{
  static const char * const names[] = {
    "content-length", "set-cookie", "server", "date",
  };

  if (is_hop_by_hop (name))
    return TRUE;

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    if (g_ascii_strcasecmp (name, names[i]) == 0)
      return TRUE;

  return FALSE;
}

static void
copy_request_header (const char *name,
                     const char *value,
                     gpointer    user_data)
{
  if (!is_request_header_dropped (name))
    soup_message_headers_append (user_data, name, value);
}

static void
copy_response_header (const char *name,
                      const char *value,
                      gpointer    user_data)
{
  if (!is_response_header_dropped (name))
    soup_message_headers_append (user_data, name, value);
}

static void
on_sse_event (const char *event,
              const char *data,
              gsize       data_length,
              gpointer    user_data)
{
  Forward *fw = user_data;
  g_autofree char *type = NULL;

  /* Only the few events we account for are looked into. */
  type = pooler_sse_event_type (event, data, data_length);
  if (type == NULL)
    return;

  if (strcmp (type, "response.completed") == 0)
    {
      PoolerUsage usage;

      fw->completed = TRUE;
      if (pooler_sse_parse_usage (data, data_length, &usage))
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
}

/* The stream broke after the client got a 200: end it with a terminal event
 * so the Codex CLI reports and retries instead of waiting. */
static void
append_failed_event (Forward    *fw,
                     const char *code,
                     const char *message)
{
  g_autofree char *event = NULL;
  g_autofree char *escaped = g_strescape (message, NULL);

  event = g_strdup_printf ("event: response.failed\n"
                           "data: {\"type\":\"response.failed\",\"response\":{\"status\":\"failed\","
                           "\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}}\n\n",
                           code, escaped);
  soup_message_body_append (soup_server_message_get_response_body (fw->msg),
                            SOUP_MEMORY_TAKE, g_steal_pointer (&event), strlen (event));
}

static void
stream_finish (Forward    *fw,
               const char *error_code,
               const char *message)
{
  if (!fw->client_gone)
    {
      if (error_code != NULL && fw->sse != NULL && !fw->completed && !fw->failed_event)
        append_failed_event (fw, error_code, message);
      soup_message_body_complete (soup_server_message_get_response_body (fw->msg));
      soup_server_message_unpause (fw->msg);
    }

  if (error_code == NULL && fw->sse != NULL)
    {
      pooler_sse_parser_finish (fw->sse);
      if (!fw->completed && !fw->failed_event)
        error_code = "stream_incomplete";
    }

  forward_done (fw, error_code);
}

static void
on_wrote_chunk (SoupServerMessage *msg,
                gpointer           user_data)
{
  Forward *fw = user_data;

  if (fw->pending_chunks > 0)
    fw->pending_chunks--;

  if (fw->waiting_write && fw->pending_chunks < MAX_PENDING_CHUNKS / 2 && !fw->done)
    {
      fw->waiting_write = FALSE;
      forward_read_next (fw);
    }
}

static void
stream_read_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(Forward) fw = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = NULL;
  gsize size;

  bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (object), result, &error);

  if (fw->done)
    return;

  if (bytes == NULL)
    {
      if (fw->client_gone)
        forward_done (fw, "client_closed");
      else
        {
          g_debug ("Upstream stream of %s broke: %s", fw->record->id, error->message);
          stream_finish (fw, "upstream_stream_error", "The upstream stream broke off before the response was complete.");
        }
      return;
    }

  size = g_bytes_get_size (bytes);
  if (size == 0)
    {
      stream_finish (fw, NULL, NULL);
      return;
    }

  if (fw->record->ttfb_ms < 0)
    fw->record->ttfb_ms = elapsed_ms (fw->started_us);

  /* Forward first, observe second: the client never waits on parsing. */
  soup_message_body_append_bytes (soup_server_message_get_response_body (fw->msg), bytes);
  fw->pending_chunks++;
  soup_server_message_unpause (fw->msg);

  if (fw->sse != NULL)
    pooler_sse_parser_feed (fw->sse, g_bytes_get_data (bytes, NULL), size);

  if (fw->pending_chunks >= MAX_PENDING_CHUNKS)
    fw->waiting_write = TRUE;
  else
    forward_read_next (fw);
}

static void
buffer_read_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data);

static void
forward_read_next (Forward *fw)
{
  g_input_stream_read_bytes_async (fw->istream, READ_SIZE, G_PRIORITY_DEFAULT,
                                   fw->cancellable,
                                   fw->streaming ? stream_read_cb : buffer_read_cb,
                                   forward_ref (fw));
}

static void
buffer_complete (Forward *fw)
{
  guint status = soup_message_get_status (fw->upstream);
  SoupMessageHeaders *upstream_headers = soup_message_get_response_headers (fw->upstream);
  g_autoptr(GBytes) bytes = g_byte_array_free_to_bytes (g_steal_pointer (&fw->buffer));

  if (SOUP_STATUS_IS_SUCCESSFUL (status))
    {
      const char *content_type = soup_message_headers_get_content_type (upstream_headers, NULL);

      if (fw->is_models)
        {
          g_clear_pointer (&fw->proxy->models_body, g_bytes_unref);
          g_free (fw->proxy->models_content_type);
          fw->proxy->models_body = g_bytes_ref (bytes);
          fw->proxy->models_content_type = g_strdup (content_type);
        }

      if (!fw->client_gone)
        soup_message_headers_foreach (upstream_headers, copy_response_header,
                                      soup_server_message_get_response_headers (fw->msg));
      respond_bytes (fw, status, content_type != NULL ? content_type : "application/json", bytes);
      forward_done (fw, NULL);
    }
  else
    {
      g_autoptr(GBytes) clean = NULL;
      g_autofree char *code = NULL;

      clean = pooler_api_error_sanitize_upstream (status, g_bytes_get_data (bytes, NULL),
                                                  g_bytes_get_size (bytes));
      code = g_strdup_printf ("upstream_%u", status);
      if (!fw->client_gone)
        soup_message_headers_foreach (upstream_headers, copy_response_header,
                                      soup_server_message_get_response_headers (fw->msg));
      respond_bytes (fw, status, "application/json", clean);
      forward_done (fw, code);
    }
}

static void
buffer_read_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(Forward) fw = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = NULL;
  gsize limit;

  bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (object), result, &error);

  if (fw->done)
    return;

  if (bytes == NULL)
    {
      if (fw->client_gone)
        forward_done (fw, "client_closed");
      else
        respond_error (fw, SOUP_STATUS_BAD_GATEWAY, "server_error", "upstream_read_error",
                       "The upstream connection broke while its answer was being read.");
      return;
    }

  if (g_bytes_get_size (bytes) == 0)
    {
      buffer_complete (fw);
      return;
    }

  limit = SOUP_STATUS_IS_SUCCESSFUL (soup_message_get_status (fw->upstream))
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
start_streaming (Forward *fw)
{
  SoupMessageHeaders *upstream_headers = soup_message_get_response_headers (fw->upstream);
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (fw->msg);
  const char *content_type = soup_message_headers_get_content_type (upstream_headers, NULL);

  fw->streaming = TRUE;

  soup_message_headers_foreach (upstream_headers, copy_response_header, headers);
  soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
  /* A long stream must not pile up in memory once written. */
  soup_message_body_set_accumulate (soup_server_message_get_response_body (fw->msg), FALSE);
  soup_server_message_set_status (fw->msg, soup_message_get_status (fw->upstream), NULL);
  fw->record->status = soup_message_get_status (fw->upstream);

  if (g_strcmp0 (content_type, "text/event-stream") == 0)
    {
      fw->sse = pooler_sse_parser_new (on_sse_event, fw);
      g_free (fw->record->transport);
      fw->record->transport = g_strdup ("sse");
    }

  fw->wrote_chunk_handler = g_signal_connect (fw->msg, "wrote-chunk", G_CALLBACK (on_wrote_chunk), fw);

  soup_server_message_unpause (fw->msg);
  forward_read_next (fw);
}

static void
send_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(Forward) fw = user_data;
  g_autoptr(GError) error = NULL;
  guint status;

  fw->istream = soup_session_send_finish (SOUP_SESSION (object), result, &error);

  if (fw->done)
    return;

  if (fw->istream == NULL)
    {
      if (fw->client_gone)
        {
          forward_done (fw, "client_closed");
          return;
        }

      g_debug ("Upstream request %s on account %s failed: %s", fw->record->id,
               pooler_account_get_id (fw->account), error->message);
      finish_attempt (fw, 0, "upstream_unreachable");

      if (fw->is_models && fw->proxy->models_body != NULL)
        {
          respond_bytes (fw, SOUP_STATUS_OK, fw->proxy->models_content_type, fw->proxy->models_body);
          forward_done (fw, "served_from_cache");
          return;
        }

      forward_try_next (fw);
      return;
    }

  status = soup_message_get_status (fw->upstream);
  fw->record->upstream_status = status;
  finish_attempt (fw, status, SOUP_STATUS_IS_SUCCESSFUL (status) ? NULL : "upstream_error");

  g_free (fw->record->account_id);
  fw->record->account_id = g_strdup (pooler_account_get_id (fw->account));
  pooler_service_note_account_used (fw->proxy->service, fw->account, fw->key->prefix);

  if (fw->is_models && !SOUP_STATUS_IS_SUCCESSFUL (status) && status >= 500 &&
      fw->proxy->models_body != NULL)
    {
      respond_bytes (fw, SOUP_STATUS_OK, fw->proxy->models_content_type, fw->proxy->models_body);
      forward_done (fw, "served_from_cache");
      return;
    }

  if (SOUP_STATUS_IS_SUCCESSFUL (status) && fw->mode == POOLER_FORWARD_STREAM)
    start_streaming (fw);
  else
    {
      fw->buffer = g_byte_array_new ();
      forward_read_next (fw);
    }
}

static void
forward_try_next (Forward *fw)
{
  g_autofree char *uri = NULL;
  const PoolerTokens *tokens = NULL;
  SoupMessageHeaders *headers;

  g_clear_object (&fw->account);
  g_clear_object (&fw->upstream);

  while (fw->next_candidate < fw->candidates->len)
    {
      PoolerAccount *candidate = g_ptr_array_index (fw->candidates, fw->next_candidate++);

      tokens = pooler_service_peek_tokens (fw->proxy->service, pooler_account_get_id (candidate));
      if (tokens != NULL && tokens->access_token != NULL)
        {
          fw->account = g_object_ref (candidate);
          break;
        }

      g_debug ("Account %s has no tokens loaded; skipping it", pooler_account_get_id (candidate));
    }

  if (fw->account == NULL)
    {
      if (fw->record->attempts->len > 0)
        respond_error (fw, SOUP_STATUS_BAD_GATEWAY, "server_error", "upstream_unreachable",
                       "The upstream could not be reached. Try again shortly.");
      else
        {
          g_autofree char *message = g_strdup_printf ("Pool “%s” has no usable account right now.",
                                                      pooler_pool_get_slug (fw->pool));
          respond_error (fw, SOUP_STATUS_SERVICE_UNAVAILABLE, "server_error",
                         "no_usable_account", message);
        }
      return;
    }

  fw->attempt = pooler_request_record_add_attempt (fw->record, pooler_account_get_id (fw->account));
  fw->attempt_started_us = g_get_monotonic_time ();

  uri = g_strconcat (pooler_service_get_upstream_url (fw->proxy->service), fw->upstream_path,
                     fw->query != NULL ? "?" : NULL, fw->query, NULL);
  fw->upstream = soup_message_new (soup_server_message_get_method (fw->msg), uri);
  if (fw->upstream == NULL)
    {
      respond_error (fw, SOUP_STATUS_INTERNAL_SERVER_ERROR, "server_error", "bad_upstream_url",
                     "The configured upstream URL is not valid.");
      return;
    }
  soup_message_set_flags (fw->upstream, SOUP_MESSAGE_NO_REDIRECT);

  headers = soup_message_get_request_headers (fw->upstream);
  soup_message_headers_foreach (soup_server_message_get_request_headers (fw->msg),
                                copy_request_header, headers);
  {
    g_autofree char *bearer = g_strconcat ("Bearer ", tokens->access_token, NULL);

    soup_message_headers_replace (headers, "Authorization", bearer);
    soup_message_headers_replace (headers, "chatgpt-account-id",
                                  pooler_account_get_chatgpt_account_id (fw->account));
  }

  if (fw->body != NULL)
    {
      const char *content_type =
        soup_message_headers_get_content_type (soup_server_message_get_request_headers (fw->msg), NULL);

      soup_message_set_request_body_from_bytes (fw->upstream,
                                                content_type != NULL ? content_type : "application/json",
                                                fw->body);
    }

  soup_session_send_async (fw->proxy->session, fw->upstream, G_PRIORITY_DEFAULT,
                           fw->cancellable, send_cb, forward_ref (fw));
}

static void
on_client_finished (SoupServerMessage *msg,
                    gpointer           user_data)
{
  Forward *fw = user_data;

  /* "finished" before we are done means the client went away. */
  if (!fw->done)
    {
      fw->client_gone = TRUE;
      g_cancellable_cancel (fw->cancellable);
    }

  g_clear_signal_handler (&fw->finished_handler, fw->msg);
  g_clear_signal_handler (&fw->wrote_chunk_handler, fw->msg);
  forward_unref (fw);
}

void
pooler_proxy_forward (PoolerProxy             *self,
                      SoupServerMessage       *msg,
                      const PoolerKeyRecord   *key,
                      const char              *upstream_path,
                      GBytes                  *body,
                      const PoolerRequestBody *scan,
                      PoolerForwardMode        mode,
                      PoolerRequestRecord     *record)
{
  Forward *fw;
  PoolerPool *pool;
  GPtrArray *accounts;
  g_autoptr(GPtrArray) empty = NULL;
  GUri *uri;

  g_return_if_fail (POOLER_IS_PROXY (self));
  g_return_if_fail (SOUP_IS_SERVER_MESSAGE (msg));
  g_return_if_fail (key != NULL);
  g_return_if_fail (record != NULL);

  fw = g_new0 (Forward, 1);
  g_atomic_ref_count_init (&fw->ref_count);
  fw->proxy = g_object_ref (self);
  fw->msg = g_object_ref (msg);
  fw->key = pooler_key_record_copy (key);
  fw->record = record;
  fw->upstream_path = g_strdup (upstream_path);
  fw->body = body != NULL ? g_bytes_ref (body) : NULL;
  fw->mode = mode;
  fw->cancellable = g_cancellable_new ();
  fw->started_us = g_get_monotonic_time ();
  fw->is_models = g_str_has_prefix (upstream_path, "/codex/models");

  uri = soup_server_message_get_uri (msg);
  if (g_uri_get_query (uri) != NULL)
    fw->query = g_strdup (g_uri_get_query (uri));

  self->in_flight++;

  /* The message keeps one reference until libsoup is done with it. */
  fw->finished_handler = g_signal_connect (msg, "finished", G_CALLBACK (on_client_finished),
                                           forward_ref (fw));
  soup_server_message_pause (msg);

  pool = pooler_service_lookup_pool (self->service, key->pool_id);
  if (pool == NULL)
    {
      respond_error (fw, SOUP_STATUS_SERVICE_UNAVAILABLE, "server_error", "pool_missing",
                     "The Pool of this key no longer exists.");
      forward_unref (fw);
      return;
    }
  fw->pool = g_object_ref (pool);

  accounts = pooler_service_get_pool_accounts (self->service, key->pool_id);
  if (accounts == NULL)
    accounts = empty = g_ptr_array_new ();

  fw->candidates = pooler_router_order (pooler_service_get_router (self->service), pool, accounts,
                                        scan != NULL ? scan->model : NULL,
                                        g_get_real_time () / G_USEC_PER_SEC);

  pooler_service_record_request (self->service, record);
  forward_try_next (fw);
  forward_unref (fw);
}

static void
pooler_proxy_dispose (GObject *object)
{
  PoolerProxy *self = (PoolerProxy *)object;

  if (self->session != NULL)
    soup_session_abort (self->session);
  g_clear_object (&self->session);
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
  /* No SoupLogger here: at header level it would print bearer tokens. */
  self->session = soup_session_new_with_options ("max-conns", 512,
                                                 "max-conns-per-host", 256,
                                                 "timeout", UPSTREAM_IO_TIMEOUT,
                                                 "idle-timeout", UPSTREAM_IDLE_TIMEOUT,
                                                 NULL);
  /* Compressed answers would have to be decoded before the SSE observer
   * could read them; ask for identity and forward what comes. */
  soup_session_remove_feature_by_type (self->session, SOUP_TYPE_CONTENT_DECODER);
  soup_session_remove_feature_by_type (self->session, SOUP_TYPE_CONTENT_SNIFFER);
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

  return self->session;
}

guint
pooler_proxy_get_in_flight (PoolerProxy *self)
{
  g_return_val_if_fail (POOLER_IS_PROXY (self), 0);

  return self->in_flight;
}
