/* pooler-gateway.c
 *
 * Connections are accepted by our own PoolerAcceptor (libsoup's own
 * listener stops accepting for good after a single accept error, EMFILE
 * say, and GSocketService takes one connection per main-loop turn) and
 * start on the hot path, PoolerHttpConn: the Codex backend
 * routes, asked for plainly and with a good key, are served there. Any
 * other request moves its connection to libsoup (with the bytes read so
 * far) through soup_server_accept_iostream(). There, requests are judged
 * in an early handler from their headers alone (Host, Origin, size, key),
 * so a bad one is refused before its body is read.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-gateway"

#include "config.h"

#include <gio/gunixsocketaddress.h>
#include <sys/socket.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "pooler-acceptor.h"
#include "pooler-api-error.h"
#include "pooler-error.h"
#include "pooler-chunk-writer.h"
#include "pooler-gateway.h"
#include "pooler-handoff-stream.h"
#include "pooler-http-conn.h"
#include "pooler-mcp.h"
#include "pooler-proxy.h"
#include "pooler-request-body.h"
#include "pooler-soup-exchange.h"
#include "pooler-timing.h"
#include "pooler-v1.h"

#define KEY_DATA "pooler-key-record"

/* Ready client connections served per main-loop turn (see
 * pooler_gateway_listen()). */
#define CLIENT_EVENTS_PER_TURN 4

struct _PoolerGateway
{
  GObject           parent_instance;

  PoolerService    *service;
  PoolerProxy      *proxy;
  PoolerMcp        *mcp;
  SoupServer       *server;
  PoolerAcceptor   *listener;
  guint             port;
  GHashTable       *connections;      /* libsoup's: GSocketConnection set, weakly held */
  GHashTable       *native;           /* PoolerHttpConn set, owned */
  PoolerPoller     *poller;           /* their sockets' epoll set */
  guint64           hot_requests;
  gboolean          has_keepalive_listener;
  guint             sweep_source;
  gsize             max_body_size;
  guint             max_connections;
  guint             client_idle_seconds;
  guint             header_deadline_seconds;
  char            **allowed_hosts;    /* "127.0.0.1:4000", "localhost:4000", ... */
  GPtrArray        *extra_names;      /* more host names, for --listen */
  char            **allowed_origins;  /* "http://127.0.0.1:4000", ... */
};

G_DEFINE_FINAL_TYPE (PoolerGateway, pooler_gateway, G_TYPE_OBJECT)

static void
respond_json (SoupServerMessage *msg,
              guint              status,
              const char        *json)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY,
                                    json, strlen (json));
}

/* A refused request's connection is answered by hand and closed the way
 * careful servers do it ("lingering close"): stop writing, then read and
 * discard what the client is still sending, bounded in bytes and time, so
 * that it sees our answer instead of a connection reset. */
#define LINGER_MAX_BYTES   (64 * 1024 * 1024)
#define LINGER_MAX_SECONDS 5

typedef struct
{
  GIOStream    *stream;
  GBytes       *response;
  GCancellable *cancellable;
  guint         timeout_id;
  gsize         drained;
} Linger;

static void
linger_free (Linger *linger)
{
  g_clear_handle_id (&linger->timeout_id, g_source_remove);
  g_io_stream_close_async (linger->stream, G_PRIORITY_DEFAULT, NULL, NULL, NULL);
  g_clear_object (&linger->stream);
  g_clear_object (&linger->cancellable);
  g_clear_pointer (&linger->response, g_bytes_unref);
  g_free (linger);
}

static gboolean
linger_timeout (gpointer user_data)
{
  Linger *linger = user_data;

  linger->timeout_id = 0;
  g_cancellable_cancel (linger->cancellable);
  return G_SOURCE_REMOVE;
}

static void
linger_read_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  Linger *linger = user_data;
  g_autoptr(GBytes) bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (object), result, NULL);

  if (bytes == NULL || g_bytes_get_size (bytes) == 0 ||
      (linger->drained += g_bytes_get_size (bytes)) > LINGER_MAX_BYTES)
    {
      linger_free (linger);
      return;
    }

  g_input_stream_read_bytes_async (g_io_stream_get_input_stream (linger->stream), 65536,
                                   G_PRIORITY_LOW, linger->cancellable, linger_read_cb, linger);
}

/* libsoup hands back its own wrapper streams; the socket is underneath. */
static GSocketConnection *
find_socket_connection (GIOStream *stream)
{
  for (guint depth = 0; stream != NULL && depth < 4; depth++)
    {
      g_autoptr(GIOStream) base = NULL;

      if (G_IS_SOCKET_CONNECTION (stream))
        return G_SOCKET_CONNECTION (stream);
      if (g_object_class_find_property (G_OBJECT_GET_CLASS (stream), "base-iostream") == NULL)
        return NULL;

      g_object_get (stream, "base-iostream", &base, NULL);
      /* The wrapper holds its base for as long as we hold the wrapper. */
      stream = base;
    }

  return NULL;
}

static void
linger_wrote_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Linger *linger = user_data;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (object), result, NULL, NULL))
    {
      linger_free (linger);
      return;
    }

  {
    GSocketConnection *connection = find_socket_connection (linger->stream);

    if (connection != NULL)
      g_socket_shutdown (g_socket_connection_get_socket (connection), FALSE, TRUE, NULL);
  }

  linger->timeout_id = g_timeout_add_seconds (LINGER_MAX_SECONDS, linger_timeout, linger);
  g_input_stream_read_bytes_async (g_io_stream_get_input_stream (linger->stream), 65536,
                                   G_PRIORITY_LOW, linger->cancellable, linger_read_cb, linger);
}

static void
reject_and_close (SoupServerMessage *msg,
                  guint              status,
                  const char        *type,
                  const char        *code,
                  const char        *message)
{
  GIOStream *stream = soup_server_message_steal_connection (msg);
  Linger *linger;
  gsize size;
  const guint8 *data;

  if (stream == NULL)
    return;

  linger = g_new0 (Linger, 1);
  linger->stream = stream;
  linger->cancellable = g_cancellable_new ();
  linger->response = pooler_api_error_raw_response (status, type, code, message);

  data = g_bytes_get_data (linger->response, &size);
  g_output_stream_write_all_async (g_io_stream_get_output_stream (stream), data, size,
                                   G_PRIORITY_DEFAULT, linger->cancellable, linger_wrote_cb, linger);
}

static gboolean
host_allowed (PoolerGateway *self,
              const char    *host)
{
  if (host == NULL)
    return FALSE;

  for (guint i = 0; self->allowed_hosts[i] != NULL; i++)
    if (g_ascii_strcasecmp (host, self->allowed_hosts[i]) == 0)
      return TRUE;

  return FALSE;
}

static gboolean
origin_allowed (PoolerGateway *self,
                const char    *origin)
{
  if (origin == NULL)
    return TRUE;

  for (guint i = 0; self->allowed_origins[i] != NULL; i++)
    if (g_ascii_strcasecmp (origin, self->allowed_origins[i]) == 0)
      return TRUE;

  return FALSE;
}

/* The single value of a header that must not repeat; NULL when absent,
 * and *repeated set when it came more than once. */
static const char *
single_header (SoupMessageHeaders *headers,
               const char         *name,
               gboolean           *repeated)
{
  const char *list = soup_message_headers_get_list (headers, name);
  const char *one = soup_message_headers_get_one (headers, name);

  /* get_list() joins repeats with ", "; a lone value is the same string. */
  *repeated = list != NULL && one != NULL && strcmp (list, one) != 0;

  return one;
}

static char *
bearer_token (SoupMessageHeaders *headers)
{
  const char *value = soup_message_headers_get_one (headers, "Authorization");

  if (value == NULL)
    return NULL;
  if (g_ascii_strncasecmp (value, "Bearer ", 7) != 0)
    return NULL;

  value += 7;
  while (*value == ' ')
    value++;

  return g_strstrip (g_strdup (value));
}

static gboolean
path_needs_key (const char *path)
{
  return g_str_has_prefix (path, "/backend-api/") || g_str_has_prefix (path, "/v1/") ||
         strcmp (path, "/v1") == 0;
}

/* A route's own body limit, below the gateway's (a gsize). */
#define BODY_LIMIT_DATA "pooler-body-limit"

static void
on_request_chunk (SoupServerMessage *msg,
                  GBytes            *chunk,
                  gpointer           user_data)
{
  PoolerGateway *self = user_data;
  gsize total = GPOINTER_TO_SIZE (g_object_get_data (G_OBJECT (msg), "pooler-body-size"));
  gsize limit = GPOINTER_TO_SIZE (g_object_get_data (G_OBJECT (msg), BODY_LIMIT_DATA));

  total += g_bytes_get_size (chunk);
  g_object_set_data (G_OBJECT (msg), "pooler-body-size", GSIZE_TO_POINTER (total));

  if (total > (limit != 0 ? limit : self->max_body_size))
    {
      g_signal_handlers_disconnect_by_func (msg, on_request_chunk, user_data);
      reject_and_close (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "invalid_request_error",
                        "request_too_large", "The request body is larger than the gateway accepts.");
    }
}

/* Answers from the early handler: the body that follows is read, so the
 * connection stays usable, but never kept. */
static void
refuse (SoupServerMessage *msg,
        guint              status,
        const char        *code,
        const char        *message)
{
  soup_message_body_set_accumulate (soup_server_message_get_request_body (msg), FALSE);
  pooler_api_error_respond (msg, status, "invalid_request_error", code, NULL, message);
  if (status == SOUP_STATUS_FORBIDDEN)
    soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Connection", "close");
}

#define DEADLINE_DATA "pooler-header-deadline"

static gboolean
header_deadline_passed (gpointer user_data)
{
  SoupServerMessage *msg = user_data;
  g_autoptr(GIOStream) stream = NULL;

  g_debug ("A client took too long to send its request headers; disconnecting it");
  /* Take the connection from libsoup (which then forgets the message)
   * and close it; the message keeps this source until it goes. */
  g_object_ref (msg);
  stream = soup_server_message_steal_connection (msg);
  if (stream != NULL)
    g_io_stream_close (stream, NULL, NULL);
  /* The reference the message held; the context keeps its own while this
   * dispatch runs. */
  {
    GSource *source = g_object_steal_data (G_OBJECT (msg), DEADLINE_DATA);

    if (source != NULL)
      g_source_unref (source);
  }
  g_object_unref (msg);

  return G_SOURCE_REMOVE;
}

static void
remove_source (gpointer data)
{
  g_source_destroy (data);
  g_source_unref (data);
}

/* Slowloris: every request must finish its headers in time, however
 * busily it trickles them in. */
static void
on_request_started (SoupServer        *server,
                    SoupServerMessage *msg,
                    gpointer           user_data)
{
  PoolerGateway *self = user_data;
  GSource *source = g_timeout_source_new_seconds (self->header_deadline_seconds);

  /* The message outlives the source: it owns it through its data. */
  g_source_set_callback (source, header_deadline_passed, msg, NULL);
  g_source_attach (source, g_main_context_get_thread_default ());
  g_object_set_data_full (G_OBJECT (msg), DEADLINE_DATA, source, remove_source);
}

static void
early_handler (SoupServer        *server,
               SoupServerMessage *msg,
               const char        *path,
               GHashTable        *query,
               gpointer           user_data)
{
  PoolerGateway *self = user_data;
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  g_autofree char *key = NULL;
  PoolerKeyRecord *record = NULL;
  PoolerKeyCheck check;
  const char *host;
  const char *origin;
  gboolean repeated;
  goffset length = 0;   /* 0 also when the body is chunked */
  guint n_headers = 0;
  SoupMessageHeadersIter iter;
  const char *name, *value;

  /* Headers are in: the slowloris deadline is met. */
  g_object_set_data (G_OBJECT (msg), DEADLINE_DATA, NULL);

  soup_message_headers_iter_init (&iter, headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    n_headers++;
  if (n_headers > POOLER_MAX_REQUEST_HEADERS)
    {
      refuse (msg, 431, "too_many_headers", "The request has too many headers.");
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Connection", "close");
      return;
    }

  /* Framing that two parsers could read two ways (the way requests are
   * smuggled past a proxy): libsoup takes the last of two lengths, and a
   * length beside a coding it does not know. Refused, and the connection
   * closed: where its next request starts is not known. */
  {
    const char *lengths = soup_message_headers_get_list (headers, "Content-Length");
    const char *coding = soup_message_headers_get_list (headers, "Transfer-Encoding");

    if ((lengths != NULL && strchr (lengths, ',') != NULL) || (lengths != NULL && coding != NULL) ||
        (coding != NULL && g_ascii_strcasecmp (coding, "chunked") != 0))
      {
        reject_and_close (msg, SOUP_STATUS_BAD_REQUEST, "invalid_request_error", "bad_framing",
                          "The request's length is given more than once, or with a transfer coding.");
        return;
      }
  }

  /* Size first: every refusal below reads the body (to keep the
   * connection usable) but none may keep more than the limit. */
  if (soup_message_headers_get_encoding (headers) == SOUP_ENCODING_CONTENT_LENGTH)
    {
      length = soup_message_headers_get_content_length (headers);
      if (length < 0 || (guint64) length > self->max_body_size)
        {
          reject_and_close (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "invalid_request_error",
                            "request_too_large", "The request body is larger than the gateway accepts.");
          return;
        }
    }
  else
    g_signal_connect (msg, "got-chunk", G_CALLBACK (on_request_chunk), self);

  /* DNS rebinding and cross-site requests: only our own names and origin. */
  host = single_header (headers, "Host", &repeated);
  if (repeated || !host_allowed (self, host))
    {
      refuse (msg, SOUP_STATUS_FORBIDDEN, "forbidden_host",
              "The Host header must name this gateway on the loopback interface.");
      return;
    }
  origin = single_header (headers, "Origin", &repeated);
  if (repeated || !origin_allowed (self, origin))
    {
      refuse (msg, SOUP_STATUS_FORBIDDEN, "forbidden_origin",
              "Requests from web pages are not accepted.");
      return;
    }

  /* /mcp's own limit and its operator token, before a body that an
   * unauthenticated client could make 32 MiB is kept. */
  if (strcmp (path, "/mcp") == 0 && strcmp (soup_server_message_get_method (msg), "POST") == 0)
    {
      const char *reason = NULL;

      if (length > POOLER_MCP_MAX_BODY)
        {
          reject_and_close (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "invalid_request_error",
                            "request_too_large", "The request body is larger than /mcp accepts (1 MiB).");
          return;
        }
      g_object_set_data (G_OBJECT (msg), BODY_LIMIT_DATA, GSIZE_TO_POINTER (POOLER_MCP_MAX_BODY));
      if (!pooler_mcp_authorize (self->mcp, headers, &reason))
        {
          soup_message_body_set_accumulate (soup_server_message_get_request_body (msg), FALSE);
          pooler_mcp_respond_unauthorized (msg, reason);
        }
      return;
    }

  if (!path_needs_key (path))
    return;

  key = bearer_token (headers);
  check = pooler_service_check_key (self->service, key, &record);
  if (check != POOLER_KEY_OK)
    {
      refuse (msg, SOUP_STATUS_UNAUTHORIZED, "invalid_api_key", pooler_key_check_to_message (check));
      return;
    }

  g_object_set_data_full (G_OBJECT (msg), KEY_DATA, record, (GDestroyNotify) pooler_key_record_free);
}

static PoolerRequestRecord *
new_record (const PoolerKeyRecord *key,
            const char            *path)
{
  PoolerRequestRecord *record = pooler_request_record_new ();

  record->pool_slug = g_strdup (key->pool_slug);
  record->key_prefix = g_strdup (key->prefix);
  record->endpoint = g_strdup (path);
  record->transport = g_strdup ("http");

  return record;
}

static void
handle_responses (PoolerGateway         *self,
                  PoolerExchange        *exchange,
                  const PoolerKeyRecord *key,
                  const char            *upstream_path)
{
  SoupMessageHeaders *headers = pooler_exchange_get_request_headers (exchange);
  GBytes *body = pooler_exchange_get_request_body (exchange);
  g_autoptr(GBytes) decoded = NULL;
  g_autoptr(PoolerRequestBody) scan = NULL;
  g_autoptr(GError) error = NULL;
  PoolerRequestRecord *record;

  decoded = pooler_request_body_decode (soup_message_headers_get_one (headers, "Content-Encoding"),
                                        body, self->max_body_size * 4, &error);
  if (decoded != NULL)
    scan = pooler_request_body_scan (g_bytes_get_data (decoded, NULL),
                                     g_bytes_get_size (decoded), &error);
  if (scan == NULL)
    {
      pooler_exchange_respond_error (exchange,
                                     g_error_matches (error, POOLER_ERROR, POOLER_ERROR_UNSUPPORTED)
                                     ? SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE : SOUP_STATUS_BAD_REQUEST,
                                     "invalid_request_error", "invalid_body", NULL, error->message);
      return;
    }

  /* Checked before anything is logged: no model is better than a prompt. */
  if (scan->model != NULL && !pooler_model_name_ok (scan->model))
    {
      pooler_exchange_respond_error (exchange, SOUP_STATUS_BAD_REQUEST, "invalid_request_error",
                                     "invalid_value", "model", POOLER_MODEL_NAME_PROBLEM);
      return;
    }

  record = new_record (key, pooler_exchange_get_path (exchange));
  record->model = g_strdup (scan->model);

  if (!pooler_key_record_allows_model (key, scan->model))
    {
      g_autofree char *message = g_strdup_printf ("This key may not use the model “%s”.",
                                                  scan->model != NULL ? scan->model : "");
      pooler_exchange_respond_error (exchange, SOUP_STATUS_FORBIDDEN, "invalid_request_error",
                                     "model_not_allowed", "model", message);
      record->status = SOUP_STATUS_FORBIDDEN;
      record->state = POOLER_REQUEST_COMPLETED;
      record->error_code = g_strdup ("model_not_allowed");
      pooler_service_record_request (self->service, record);
      pooler_request_record_free (record);
      return;
    }

  /* The original bytes go upstream unchanged (compressed or not). */
  pooler_proxy_forward (self->proxy, exchange, key, upstream_path, body, scan,
                        POOLER_FORWARD_STREAM, record);
}

/* /backend-api/..., for both servers: libsoup's and the hot path's. */
static void
handle_backend_api (PoolerGateway         *self,
                    PoolerExchange        *exchange,
                    const PoolerKeyRecord *key)
{
  const char *method = pooler_exchange_get_method (exchange);
  const char *path = pooler_exchange_get_path (exchange);
  const char *rest = path + strlen ("/backend-api");

  g_assert (key != NULL);
  g_assert (g_str_has_prefix (path, "/backend-api/"));

  if (strcmp (rest, "/codex/responses") == 0)
    {
      if (method == SOUP_METHOD_GET &&
          soup_message_headers_header_contains (pooler_exchange_get_request_headers (exchange),
                                                "Upgrade", "websocket"))
        {
          /* Codex falls back to HTTP at once on 426 (not on 404). */
          soup_message_headers_replace (pooler_exchange_get_response_headers (exchange),
                                        "Connection", "close");
          pooler_exchange_respond_error (exchange, 426, "invalid_request_error", "websocket_not_supported",
                                         NULL, "websocket not supported; use HTTP streaming");
          return;
        }
      if (method != SOUP_METHOD_POST)
        {
          pooler_exchange_respond_error (exchange, SOUP_STATUS_METHOD_NOT_ALLOWED, "invalid_request_error",
                                         "method_not_allowed", NULL, "Use POST for /responses.");
          return;
        }
      handle_responses (self, exchange, key, rest);
      return;
    }

  if (strcmp (rest, "/codex/responses/compact") == 0)
    {
      if (method != SOUP_METHOD_POST)
        {
          pooler_exchange_respond_error (exchange, SOUP_STATUS_METHOD_NOT_ALLOWED, "invalid_request_error",
                                         "method_not_allowed", NULL, "Use POST for /responses/compact.");
          return;
        }
      handle_responses (self, exchange, key, rest);
      return;
    }

  if (strcmp (rest, "/codex/models") == 0 || strcmp (rest, "/wham/usage") == 0)
    {
      if (method != SOUP_METHOD_GET)
        {
          pooler_exchange_respond_error (exchange, SOUP_STATUS_METHOD_NOT_ALLOWED, "invalid_request_error",
                                         "method_not_allowed", NULL, "Use GET here.");
          return;
        }
      pooler_proxy_forward (self->proxy, exchange, key, rest, NULL, NULL, POOLER_FORWARD_BUFFER,
                            new_record (key, path));
      return;
    }

  pooler_exchange_respond_error (exchange, SOUP_STATUS_NOT_FOUND, "invalid_request_error",
                                 "unknown_route", NULL, "This gateway does not serve that path.");
}

static void
server_handler (SoupServer        *server,
                SoupServerMessage *msg,
                const char        *path,
                GHashTable        *query,
                gpointer           user_data)
{
  PoolerGateway *self = user_data;
  const char *method = soup_server_message_get_method (msg);

  if (strcmp (path, "/healthz") == 0)
    {
      respond_json (msg, SOUP_STATUS_OK, "{\"status\":\"ok\"}");
      return;
    }

  if (strcmp (path, "/readyz") == 0)
    {
      g_autoptr(GError) error = NULL;

      /* Ready with the configuration as it is now: changes another
       * process made (the command line) apply before the answer, not
       * only at the next 2 s check. */
      pooler_service_reload (self->service);
      if (pooler_store_ping (pooler_service_get_store (self->service), &error))
        respond_json (msg, SOUP_STATUS_OK, "{\"status\":\"ready\"}");
      else
        pooler_api_error_respond (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "server_error",
                                  "database_unavailable", NULL, "The database does not answer.");
      return;
    }

  if (g_str_has_prefix (path, "/backend-api/"))
    {
      g_autoptr(PoolerExchange) exchange = pooler_soup_exchange_new (msg);

      handle_backend_api (self, exchange, g_object_get_data (G_OBJECT (msg), KEY_DATA));
      return;
    }

  if (g_str_has_prefix (path, "/v1/") || strcmp (path, "/v1") == 0)
    {
      pooler_v1_handle (self->proxy, self->service, msg, path,
                        g_object_get_data (G_OBJECT (msg), KEY_DATA));
      return;
    }

  if (strcmp (path, "/mcp") == 0)
    {
      pooler_mcp_handle (self->mcp, msg);
      return;
    }

  (void) method;
  pooler_api_error_respond (msg, SOUP_STATUS_NOT_FOUND, "invalid_request_error",
                            "unknown_route", NULL, "This gateway does not serve that path.");
}

/* The hot path: what it may serve, plainly asked for, with a good key.
 * Everything else (refusals included) is libsoup's. */
static gboolean
is_hot_route (PoolerExchange *exchange)
{
  const char *method = pooler_exchange_get_method (exchange);
  const char *path = pooler_exchange_get_path (exchange);

  if (method == SOUP_METHOD_POST)
    return strcmp (path, "/backend-api/codex/responses") == 0 ||
           strcmp (path, "/backend-api/codex/responses/compact") == 0;
  return strcmp (path, "/backend-api/codex/models") == 0 ||
         strcmp (path, "/backend-api/wham/usage") == 0;
}

static gboolean
native_accept (PoolerHttpConn *conn,
               PoolerExchange *exchange,
               guint64         content_length,
               gpointer        user_data)
{
  PoolerGateway *self = user_data;
  SoupMessageHeaders *headers = pooler_exchange_get_request_headers (exchange);
  g_autofree char *key = NULL;
  PoolerKeyRecord *record = NULL;
  const char *value;
  gboolean repeated;

  if (!is_hot_route (exchange) || content_length > self->max_body_size)
    return FALSE;

  value = single_header (headers, "Host", &repeated);
  if (repeated || !host_allowed (self, value))
    return FALSE;
  value = single_header (headers, "Origin", &repeated);
  if (repeated || !origin_allowed (self, value))
    return FALSE;

  key = bearer_token (headers);
  if (pooler_service_check_key (self->service, key, &record) != POOLER_KEY_OK)
    {
      g_clear_pointer (&record, pooler_key_record_free);
      return FALSE;
    }

  g_object_set_data_full (G_OBJECT (exchange), KEY_DATA, record, (GDestroyNotify) pooler_key_record_free);
  return TRUE;
}

static void
native_handle (PoolerHttpConn *conn,
               PoolerExchange *exchange,
               gpointer        user_data)
{
  PoolerGateway *self = user_data;

  self->hot_requests++;
  handle_backend_api (self, exchange, g_object_get_data (G_OBJECT (exchange), KEY_DATA));
}

static void hand_to_libsoup (PoolerGateway     *self,
                             GSocketConnection *connection,
                             GBytes            *already_read);

static void
native_handoff (PoolerHttpConn    *conn,
                GSocketConnection *connection,
                GBytes            *already_read,
                gpointer           user_data)
{
  PoolerGateway *self = user_data;
  g_autoptr(GSocketConnection) hold G_GNUC_UNUSED = g_object_ref (connection);

  g_hash_table_remove (self->native, conn);
  hand_to_libsoup (self, connection, already_read);
}

static void
native_closed (PoolerHttpConn *conn,
               gpointer        user_data)
{
  PoolerGateway *self = user_data;

  g_hash_table_remove (self->native, conn);
}

static const PoolerHttpConnFuncs native_funcs = {
  native_accept,
  native_handle,
  native_handoff,
  native_closed,
};

static void
connection_gone (gpointer  user_data,
                 GObject  *where_the_object_was)
{
  PoolerGateway *self = user_data;

  g_hash_table_remove (self->connections, where_the_object_was);
}

/* libsoup 3.2 does not always notice that a kept-alive client went away
 * (its connection stays in CLOSE-WAIT, counted against the cap, holding a
 * descriptor). Every few seconds, close the connections whose peer has
 * closed: a client that is gone can receive nothing anyway. */
#define SWEEP_INTERVAL_SECONDS 2

static gboolean
sweep_closed_connections (gpointer user_data)
{
  PoolerGateway *self = user_data;
  g_autoptr(GPtrArray) gone = g_ptr_array_new_with_free_func (g_object_unref);
  GHashTableIter iter;
  gpointer key;

  /* The hot path's connections time out here rather than by a timer each
   * (first: closing one runs the proxy, before the list below is made). */
  {
    g_autoptr(GPtrArray) native = g_ptr_array_new_with_free_func (g_object_unref);
    gint64 now = g_get_monotonic_time ();

    g_hash_table_iter_init (&iter, self->native);
    while (g_hash_table_iter_next (&iter, &key, NULL))
      g_ptr_array_add (native, g_object_ref (key));
    for (guint i = 0; i < native->len; i++)
      pooler_http_conn_check_timeouts (g_ptr_array_index (native, i), now,
                                       (gint64) self->client_idle_seconds * G_USEC_PER_SEC,
                                       (gint64) self->header_deadline_seconds * G_USEC_PER_SEC);
    /* Read blocks a burst left behind go back once unused for a while. */
    pooler_block_pool_trim (pooler_http_conn_get_blocks (), now);
    pooler_timing_flush ();
  }

  g_hash_table_iter_init (&iter, self->connections);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      GSocket *socket = g_socket_connection_get_socket (key);
      char byte;
      gssize n;

      if (g_socket_is_closed (socket))
        {
          g_ptr_array_add (gone, g_object_ref (key));
          continue;
        }
      n = recv (g_socket_get_fd (socket), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n == 0)
        g_ptr_array_add (gone, g_object_ref (key));
    }

  for (guint i = 0; i < gone->len; i++)
    {
      GSocketConnection *connection = g_ptr_array_index (gone, i);

      g_debug ("Closing a connection whose client went away");
      /* A request still waiting on the upstream ends with it. */
      pooler_soup_exchange_notice_gone (g_socket_connection_get_socket (connection));
      g_object_weak_unref (G_OBJECT (connection), connection_gone, self);
      g_hash_table_remove (self->connections, connection);
      g_socket_shutdown (g_socket_connection_get_socket (connection), TRUE, TRUE, NULL);
      g_socket_close (g_socket_connection_get_socket (connection), NULL);
    }

  return G_SOURCE_CONTINUE;
}

static void
hand_to_libsoup (PoolerGateway     *self,
                 GSocketConnection *connection,
                 GBytes            *already_read)
{
  g_autoptr(GSocketAddress) local = NULL;
  g_autoptr(GSocketAddress) remote = NULL;
  g_autoptr(GIOStream) stream = NULL;
  g_autoptr(GError) error = NULL;

  /* Inactivity on any read or write wait ends the connection. */
  g_socket_set_timeout (g_socket_connection_get_socket (connection), self->client_idle_seconds);

  local = g_socket_connection_get_local_address (connection, NULL);
  remote = g_socket_connection_get_remote_address (connection, NULL);
  if (local == NULL || remote == NULL)
    {
      g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
      return;
    }
  /* libsoup 3.2 gives no GSocket for a stream handed to it; the proxy's
   * chunk writer finds it on the address libsoup keeps. A copy: the
   * socket caches its own address object, which must not hold it. */
  if (G_IS_INET_SOCKET_ADDRESS (remote))
    {
      GInetSocketAddress *inet = G_INET_SOCKET_ADDRESS (remote);
      GSocketAddress *copy = g_inet_socket_address_new (g_inet_socket_address_get_address (inet),
                                                        g_inet_socket_address_get_port (inet));

      g_object_set_data_full (G_OBJECT (copy), POOLER_CLIENT_SOCKET_DATA,
                              g_object_ref (g_socket_connection_get_socket (connection)),
                              g_object_unref);
      g_object_unref (remote);
      remote = copy;
    }

  if (already_read != NULL && g_bytes_get_size (already_read) > 0)
    stream = pooler_handoff_stream_new (G_IO_STREAM (connection), already_read);
  else
    stream = G_IO_STREAM (g_object_ref (connection));

  if (!soup_server_accept_iostream (self->server, stream, local, remote, &error))
    {
      g_debug ("Could not hand a connection to the server: %s", error->message);
      g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
      return;
    }

  /* libsoup drops its reference when the connection closes. */
  g_hash_table_add (self->connections, connection);
  g_object_weak_ref (G_OBJECT (connection), connection_gone, self);
}

/* A new connection: a descriptor with TCP_NODELAY (the acceptor's). */
static void
on_incoming (int      fd,
             gpointer user_data)
{
  PoolerGateway *self = user_data;
  PoolerHttpConn *conn;

  if (pooler_gateway_get_connections (self) >= self->max_connections)
    {
      g_debug ("Connection limit (%u) reached; refusing a connection", self->max_connections);
      close (fd);
      return;
    }

  conn = pooler_http_conn_new (fd, self->poller, POOLER_MAX_REQUEST_HEADERS, &native_funcs, self);
  g_hash_table_add (self->native, conn);
  pooler_http_conn_start (conn);
}

static void
pooler_gateway_dispose (GObject *object)
{
  PoolerGateway *self = (PoolerGateway *)object;

  pooler_gateway_stop (self);
  pooler_timing_flush ();

  if (self->native != NULL)
    {
      g_autoptr(GPtrArray) native = g_ptr_array_new_with_free_func (g_object_unref);
      GHashTableIter iter;
      gpointer conn;

      g_hash_table_iter_init (&iter, self->native);
      while (g_hash_table_iter_next (&iter, &conn, NULL))
        g_ptr_array_add (native, g_object_ref (conn));
      for (guint i = 0; i < native->len; i++)
        pooler_http_conn_close (g_ptr_array_index (native, i));
    }

  if (self->connections != NULL)
    {
      GHashTableIter iter;
      gpointer connection;

      g_hash_table_iter_init (&iter, self->connections);
      while (g_hash_table_iter_next (&iter, &connection, NULL))
        g_object_weak_unref (connection, connection_gone, self);
      g_hash_table_remove_all (self->connections);
    }

  g_clear_object (&self->server);
  g_clear_object (&self->mcp);
  g_clear_object (&self->proxy);
  g_clear_object (&self->service);

  G_OBJECT_CLASS (pooler_gateway_parent_class)->dispose (object);
}

static void
pooler_gateway_finalize (GObject *object)
{
  PoolerGateway *self = (PoolerGateway *)object;

  g_clear_pointer (&self->connections, g_hash_table_unref);
  g_clear_pointer (&self->native, g_hash_table_unref);
  g_clear_pointer (&self->poller, pooler_poller_unref);
  g_clear_pointer (&self->extra_names, g_ptr_array_unref);
  g_clear_pointer (&self->allowed_hosts, g_strfreev);
  g_clear_pointer (&self->allowed_origins, g_strfreev);

  G_OBJECT_CLASS (pooler_gateway_parent_class)->finalize (object);
}

static void
pooler_gateway_class_init (PoolerGatewayClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = pooler_gateway_dispose;
  object_class->finalize = pooler_gateway_finalize;
}

static void
pooler_gateway_init (PoolerGateway *self)
{
  self->max_body_size = POOLER_MAX_REQUEST_BODY;
  self->max_connections = POOLER_MAX_CONNECTIONS;
  self->client_idle_seconds = POOLER_CLIENT_IDLE_SECONDS;
  self->header_deadline_seconds = POOLER_HEADER_DEADLINE_SECONDS;
  self->connections = g_hash_table_new (NULL, NULL);
  self->native = g_hash_table_new_full (NULL, NULL, g_object_unref, NULL);
  self->extra_names = g_ptr_array_new_with_free_func (g_free);
  self->server = soup_server_new (NULL, NULL);
  self->allowed_hosts = g_new0 (char *, 1);
  self->allowed_origins = g_new0 (char *, 1);
}

PoolerGateway *
pooler_gateway_new (PoolerService *service)
{
  PoolerGateway *self;

  g_return_val_if_fail (POOLER_IS_SERVICE (service), NULL);

  self = g_object_new (POOLER_TYPE_GATEWAY, NULL);
  self->service = g_object_ref (service);
  self->proxy = pooler_proxy_new (service);
  self->mcp = pooler_mcp_new (service);

  soup_server_add_early_handler (self->server, NULL, early_handler, self, NULL);
  g_signal_connect (self->server, "request-started", G_CALLBACK (on_request_started), self);
  soup_server_add_handler (self->server, NULL, server_handler, self, NULL);

  return self;
}

static void
set_allowed_names (PoolerGateway *self,
                   const char    *address)
{
  g_autoptr(GStrvBuilder) hosts = g_strv_builder_new ();
  g_autoptr(GStrvBuilder) origins = g_strv_builder_new ();
  g_autoptr(GPtrArray) names = g_ptr_array_new ();

  g_ptr_array_add (names, (gpointer) "127.0.0.1");
  g_ptr_array_add (names, (gpointer) "localhost");
  g_ptr_array_add (names, (gpointer) "[::1]");
  if (address != NULL)
    g_ptr_array_add (names, (gpointer) address);
  for (guint i = 0; i < self->extra_names->len; i++)
    g_ptr_array_add (names, g_ptr_array_index (self->extra_names, i));

  for (guint i = 0; i < names->len; i++)
    {
      const char *name = g_ptr_array_index (names, i);
      g_autofree char *host = NULL;
      g_autofree char *origin = NULL;

      if (strchr (name, ':') != NULL && name[0] != '[')
        host = g_strdup_printf ("[%s]:%u", name, self->port);
      else
        host = g_strdup_printf ("%s:%u", name, self->port);
      origin = g_strconcat ("http://", host, NULL);

      g_strv_builder_add (hosts, host);
      g_strv_builder_add (origins, origin);
    }

  g_strfreev (self->allowed_hosts);
  self->allowed_hosts = g_strv_builder_end (hosts);
  g_strfreev (self->allowed_origins);
  self->allowed_origins = g_strv_builder_end (origins);
}

/* libsoup keeps a connection alive after a response only when the server
 * has a listener of its own (soup-server.c, request_finished()). Ours
 * accepts through a PoolerAcceptor, so give libsoup a listener nobody can
 * reach: a UNIX socket whose path is removed as soon as it listens. */
static gboolean
add_unreachable_listener (PoolerGateway  *self,
                          GError        **error)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *path = NULL;
  gboolean ok;

  dir = g_dir_make_tmp ("codex-pooler-XXXXXX", error);
  if (dir == NULL)
    return FALSE;
  path = g_build_filename (dir, "keepalive", NULL);

  socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, error);
  address = g_unix_socket_address_new (path);
  ok = socket != NULL &&
       g_socket_bind (socket, address, FALSE, error) &&
       g_socket_listen (socket, error) &&
       soup_server_listen_socket (self->server, socket, 0, error);

  g_unlink (path);
  g_rmdir (dir);

  return ok;
}

gboolean
pooler_gateway_listen (PoolerGateway  *self,
                       const char     *address,
                       guint           port,
                       GError        **error)
{
  g_autoptr(PoolerAcceptor) listener = NULL;
  g_autoptr(GInetAddress) inet = NULL;
  g_autoptr(GSocketAddress) socket_address = NULL;
  g_autoptr(GSocketAddress) effective = NULL;
  g_autoptr(GError) ipv6_error = NULL;

  g_return_val_if_fail (POOLER_IS_GATEWAY (self), FALSE);
  g_return_val_if_fail (self->listener == NULL, FALSE);

  /* Opens the developer's timing trace now, if one is asked for, rather
   * than in the first request. */
  (void) pooler_timing_enabled ();

  /* Client connections and the upstream's share a priority (answers in
   * flight first starved new requests), but clients are taken a few per
   * turn: when many requests land at once, the first ones' answers get
   * through between them instead of after all of them, so the median
   * first event waits for half the burst, not all of it, and events of
   * running streams do not wait behind a whole burst. wrk throughput
   * measured the same (docs/architecture.md, "Decisions (performance)"). */
  if (self->poller == NULL)
    {
      if ((self->poller = pooler_poller_new (NULL, error)) == NULL)
        return FALSE;
      pooler_poller_set_max_events (self->poller, CLIENT_EVENTS_PER_TURN);
    }

  /* A backlog as long as the connection cap: a burst of new connections
   * beyond a short one (GLib's default is 10) would be dropped before we
   * ever see them. */
  listener = pooler_acceptor_new (self->poller, POOLER_MAX_CONNECTIONS, on_incoming, self);

  if (address != NULL)
    {
      inet = g_inet_address_new_from_string (address);
      if (inet == NULL)
        {
          g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                       "“%s” is not an IP address", address);
          return FALSE;
        }
    }
  else
    inet = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);

  socket_address = g_inet_socket_address_new (inet, port);
  if (!pooler_acceptor_add_address (listener, socket_address, &effective, error))
    return FALSE;

  self->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective));

  /* "localhost" may resolve to ::1 first; listen there too when we can. */
  if (address == NULL)
    {
      g_autoptr(GInetAddress) inet6 = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV6);
      g_autoptr(GSocketAddress) address6 = g_inet_socket_address_new (inet6, self->port);

      if (!pooler_acceptor_add_address (listener, address6, NULL, &ipv6_error))
        g_debug ("Not listening on [::1]:%u: %s", self->port, ipv6_error->message);
    }

  set_allowed_names (self, address);

  if (!self->has_keepalive_listener)
    {
      if (!add_unreachable_listener (self, error))
        {
          g_prefix_error (error, "could not set up connection reuse: ");
          return FALSE;
        }
      self->has_keepalive_listener = TRUE;
    }

  self->sweep_source = g_timeout_add_seconds (SWEEP_INTERVAL_SECONDS, sweep_closed_connections, self);
  self->listener = g_steal_pointer (&listener);

  return TRUE;
}

void
pooler_gateway_stop (PoolerGateway *self)
{
  g_return_if_fail (POOLER_IS_GATEWAY (self));

  g_clear_handle_id (&self->sweep_source, g_source_remove);

  g_clear_pointer (&self->listener, pooler_acceptor_free);
}

guint
pooler_gateway_get_port (PoolerGateway *self)
{
  g_return_val_if_fail (POOLER_IS_GATEWAY (self), 0);

  return self->port;
}

char *
pooler_gateway_dup_base_url (PoolerGateway *self)
{
  g_return_val_if_fail (POOLER_IS_GATEWAY (self), NULL);

  return g_strdup_printf ("http://127.0.0.1:%u", self->port);
}

guint
pooler_gateway_get_connections (PoolerGateway *self)
{
  g_return_val_if_fail (POOLER_IS_GATEWAY (self), 0);

  return g_hash_table_size (self->connections) + g_hash_table_size (self->native);
}

guint64
pooler_gateway_get_hot_requests (PoolerGateway *self)
{
  g_return_val_if_fail (POOLER_IS_GATEWAY (self), 0);

  return self->hot_requests;
}

guint64
pooler_gateway_get_deadline_arms (PoolerGateway *self)
{
  g_return_val_if_fail (POOLER_IS_GATEWAY (self), 0);

  return pooler_proxy_get_deadline_arms (self->proxy);
}

void
pooler_gateway_set_max_body_size (PoolerGateway *self,
                                  gsize          max_body_size)
{
  g_return_if_fail (POOLER_IS_GATEWAY (self));

  self->max_body_size = max_body_size;
}

void
pooler_gateway_add_allowed_host (PoolerGateway *self,
                                 const char    *name)
{
  g_return_if_fail (POOLER_IS_GATEWAY (self));
  g_return_if_fail (name != NULL && *name != '\0');
  g_return_if_fail (self->listener == NULL);

  g_ptr_array_add (self->extra_names, g_strdup (name));
}

void
pooler_gateway_set_max_connections (PoolerGateway *self,
                                    guint          max_connections)
{
  g_return_if_fail (POOLER_IS_GATEWAY (self));
  g_return_if_fail (max_connections > 0);

  self->max_connections = max_connections;
}

void
pooler_gateway_set_timeouts (PoolerGateway *self,
                             guint          client_idle_seconds,
                             guint          header_deadline_seconds,
                             guint          upstream_answer_seconds)
{
  g_return_if_fail (POOLER_IS_GATEWAY (self));
  g_return_if_fail (client_idle_seconds > 0 && header_deadline_seconds > 0 && upstream_answer_seconds > 0);

  self->client_idle_seconds = client_idle_seconds;
  self->header_deadline_seconds = header_deadline_seconds;
  pooler_proxy_set_answer_timeout (self->proxy, upstream_answer_seconds);
}
