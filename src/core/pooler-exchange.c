/* pooler-exchange.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-exchange"

#include "config.h"

#include "pooler-api-error.h"
#include "pooler-exchange.h"

typedef struct
{
  const char         *method;            /* interned */
  char               *path;
  char               *query;
  SoupMessageHeaders *request_headers;
  GBytes             *request_body;
  SoupMessageHeaders *response_headers;
  guint               status;
  gboolean            streaming;
  gboolean            ended;
  gboolean            finished;
  gboolean            gone;
  gint64              marks[POOLER_EXCHANGE_N_MARKS];
  const PoolerExchangeOwner *owner;
  gpointer            owner_data;
} PoolerExchangePrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (PoolerExchange, pooler_exchange, G_TYPE_OBJECT)

static void
pooler_exchange_finalize (GObject *object)
{
  PoolerExchange *self = POOLER_EXCHANGE (object);
  PoolerExchangePrivate *priv = pooler_exchange_get_instance_private (self);

  g_clear_pointer (&priv->path, g_free);
  g_clear_pointer (&priv->query, g_free);
  g_clear_pointer (&priv->request_headers, soup_message_headers_unref);
  g_clear_pointer (&priv->request_body, g_bytes_unref);
  g_clear_pointer (&priv->response_headers, soup_message_headers_unref);

  G_OBJECT_CLASS (pooler_exchange_parent_class)->finalize (object);
}

static void
pooler_exchange_class_init (PoolerExchangeClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = pooler_exchange_finalize;
}

static void
pooler_exchange_init (PoolerExchange *self)
{
  PoolerExchangePrivate *priv = pooler_exchange_get_instance_private (self);

  priv->response_headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
}

void
pooler_exchange_set_request (PoolerExchange     *self,
                             const char         *method,
                             char               *path,
                             char               *query,
                             SoupMessageHeaders *headers,
                             GBytes             *body)
{
  PoolerExchangePrivate *priv = pooler_exchange_get_instance_private (self);

  g_return_if_fail (POOLER_IS_EXCHANGE (self));
  g_return_if_fail (method != NULL && path != NULL && headers != NULL);

  priv->method = g_intern_string (method);
  g_free (priv->path);
  priv->path = path;
  g_free (priv->query);
  priv->query = query;
  g_clear_pointer (&priv->request_headers, soup_message_headers_unref);
  priv->request_headers = headers;
  g_clear_pointer (&priv->request_body, g_bytes_unref);
  priv->request_body = body != NULL ? body : g_bytes_new (NULL, 0);
}

void
pooler_exchange_set_request_body (PoolerExchange *self,
                                  GBytes         *body)
{
  PoolerExchangePrivate *priv = pooler_exchange_get_instance_private (self);

  g_return_if_fail (POOLER_IS_EXCHANGE (self));
  g_return_if_fail (body != NULL);

  g_clear_pointer (&priv->request_body, g_bytes_unref);
  priv->request_body = body;
}

void
pooler_exchange_mark (PoolerExchange     *self,
                      PoolerExchangeMark  mark,
                      gint64              when)
{
  PoolerExchangePrivate *priv = pooler_exchange_get_instance_private (self);

  g_return_if_fail (POOLER_IS_EXCHANGE (self));
  g_return_if_fail (mark < POOLER_EXCHANGE_N_MARKS);

  priv->marks[mark] = when;
}

const gint64 *
pooler_exchange_get_marks (PoolerExchange *self)
{
  PoolerExchangePrivate *priv = pooler_exchange_get_instance_private (self);

  g_return_val_if_fail (POOLER_IS_EXCHANGE (self), NULL);

  return priv->marks;
}

const char *
pooler_exchange_get_method (PoolerExchange *self)
{
  PoolerExchangePrivate *priv = pooler_exchange_get_instance_private (self);

  g_return_val_if_fail (POOLER_IS_EXCHANGE (self), NULL);

  return priv->method;
}

const char *
pooler_exchange_get_path (PoolerExchange *self)
{
  PoolerExchangePrivate *priv = pooler_exchange_get_instance_private (self);

  g_return_val_if_fail (POOLER_IS_EXCHANGE (self), NULL);

  return priv->path;
}

const char *
pooler_exchange_get_query (PoolerExchange *self)
{
  PoolerExchangePrivate *priv = pooler_exchange_get_instance_private (self);

  g_return_val_if_fail (POOLER_IS_EXCHANGE (self), NULL);

  return priv->query;
}

SoupMessageHeaders *
pooler_exchange_get_request_headers (PoolerExchange *self)
{
  PoolerExchangePrivate *priv = pooler_exchange_get_instance_private (self);

  g_return_val_if_fail (POOLER_IS_EXCHANGE (self), NULL);

  return priv->request_headers;
}

GBytes *
pooler_exchange_get_request_body (PoolerExchange *self)
{
  PoolerExchangePrivate *priv = pooler_exchange_get_instance_private (self);

  g_return_val_if_fail (POOLER_IS_EXCHANGE (self), NULL);

  return priv->request_body;
}

SoupMessageHeaders *
pooler_exchange_get_response_headers (PoolerExchange *self)
{
  PoolerExchangePrivate *priv = pooler_exchange_get_instance_private (self);

  g_return_val_if_fail (POOLER_IS_EXCHANGE (self), NULL);

  return priv->response_headers;
}

guint
pooler_exchange_get_status (PoolerExchange *self)
{
  PoolerExchangePrivate *priv = pooler_exchange_get_instance_private (self);

  g_return_val_if_fail (POOLER_IS_EXCHANGE (self), 0);

  return priv->status;
}

gboolean
pooler_exchange_is_finished (PoolerExchange *self)
{
  PoolerExchangePrivate *priv = pooler_exchange_get_instance_private (self);

  g_return_val_if_fail (POOLER_IS_EXCHANGE (self), TRUE);

  return priv->finished;
}

gboolean
pooler_exchange_is_gone (PoolerExchange *self)
{
  PoolerExchangePrivate *priv = pooler_exchange_get_instance_private (self);

  g_return_val_if_fail (POOLER_IS_EXCHANGE (self), TRUE);

  return priv->gone;
}

void
pooler_exchange_respond (PoolerExchange *self,
                         guint           status,
                         const char     *content_type,
                         GBytes         *body)
{
  PoolerExchangePrivate *priv = pooler_exchange_get_instance_private (self);

  g_return_if_fail (POOLER_IS_EXCHANGE (self));
  g_return_if_fail (priv->status == 0);
  g_return_if_fail (body != NULL);

  priv->status = status;
  if (priv->finished)
    return;
  POOLER_EXCHANGE_GET_CLASS (self)->respond (self, status, content_type, body);
}

void
pooler_exchange_respond_error (PoolerExchange *self,
                               guint           status,
                               const char     *type,
                               const char     *code,
                               const char     *param,
                               const char     *message)
{
  g_autoptr(GBytes) body = pooler_api_error_build (type, code, param, message);

  pooler_exchange_respond (self, status, "application/json", body);
}

void
pooler_exchange_stream_begin (PoolerExchange *self,
                              guint           status)
{
  pooler_exchange_stream_begin_with (self, status, NULL, NULL);
}

void
pooler_exchange_stream_begin_with (PoolerExchange         *self,
                                   guint                   status,
                                   const PoolerHttpFields *extra,
                                   PoolerHeaderFilter      keep)
{
  PoolerExchangePrivate *priv = pooler_exchange_get_instance_private (self);
  PoolerExchangeClass *klass;

  g_return_if_fail (POOLER_IS_EXCHANGE (self));
  g_return_if_fail (extra == NULL || keep != NULL);
  g_return_if_fail (priv->status == 0);

  priv->status = status;
  priv->streaming = TRUE;
  if (priv->finished)
    return;
  klass = POOLER_EXCHANGE_GET_CLASS (self);
  if (extra != NULL && klass->stream_begin_with != NULL)
    {
      klass->stream_begin_with (self, status, extra, keep);
      return;
    }
  for (guint i = 0; extra != NULL && i < pooler_http_fields_get_n (extra); i++)
    {
      const PoolerHttpField *field = pooler_http_fields_get (extra, i);

      if (keep (field->name))
        soup_message_headers_append (priv->response_headers, field->name, field->value);
    }
  klass->stream_begin (self, status);
}

void
pooler_exchange_stream_write (PoolerExchange *self,
                              GBytes         *bytes)
{
  PoolerExchangePrivate *priv = pooler_exchange_get_instance_private (self);

  g_return_if_fail (POOLER_IS_EXCHANGE (self));
  g_return_if_fail (priv->streaming && !priv->ended);

  if (priv->finished || g_bytes_get_size (bytes) == 0)
    return;
  POOLER_EXCHANGE_GET_CLASS (self)->stream_write (self, bytes);
}

void
pooler_exchange_flush (PoolerExchange *self)
{
  PoolerExchangePrivate *priv = pooler_exchange_get_instance_private (self);

  g_return_if_fail (POOLER_IS_EXCHANGE (self));

  if (priv->finished || !priv->streaming || priv->ended ||
      POOLER_EXCHANGE_GET_CLASS (self)->flush == NULL)
    return;
  POOLER_EXCHANGE_GET_CLASS (self)->flush (self);
}

gboolean
pooler_exchange_is_drained (PoolerExchange *self)
{
  PoolerExchangePrivate *priv = pooler_exchange_get_instance_private (self);

  g_return_val_if_fail (POOLER_IS_EXCHANGE (self), TRUE);

  if (priv->finished || !priv->streaming)
    return TRUE;
  return POOLER_EXCHANGE_GET_CLASS (self)->is_drained (self);
}

void
pooler_exchange_stream_end (PoolerExchange *self)
{
  PoolerExchangePrivate *priv = pooler_exchange_get_instance_private (self);

  g_return_if_fail (POOLER_IS_EXCHANGE (self));
  g_return_if_fail (priv->streaming);

  if (priv->ended)
    return;
  priv->ended = TRUE;
  if (priv->finished)
    return;
  POOLER_EXCHANGE_GET_CLASS (self)->stream_end (self);
}

void
pooler_exchange_emit_drained (PoolerExchange *self)
{
  PoolerExchangePrivate *priv = pooler_exchange_get_instance_private (self);

  g_return_if_fail (POOLER_IS_EXCHANGE (self));

  if (!priv->finished && priv->owner != NULL && priv->owner->drained != NULL)
    priv->owner->drained (self, priv->owner_data);
}

void
pooler_exchange_emit_finished (PoolerExchange *self,
                               gboolean        gone)
{
  PoolerExchangePrivate *priv = pooler_exchange_get_instance_private (self);
  g_autoptr(PoolerExchange) hold G_GNUC_UNUSED = NULL;
  const PoolerExchangeOwner *owner;
  gpointer data;

  g_return_if_fail (POOLER_IS_EXCHANGE (self));

  if (priv->finished)
    return;
  priv->finished = TRUE;
  priv->gone = gone;
  owner = g_steal_pointer (&priv->owner);
  data = g_steal_pointer (&priv->owner_data);
  if (owner != NULL && owner->finished != NULL)
    {
      hold = g_object_ref (self);
      owner->finished (self, data);
    }
}

void
pooler_exchange_set_owner (PoolerExchange            *self,
                           const PoolerExchangeOwner *owner,
                           gpointer                   data)
{
  PoolerExchangePrivate *priv = pooler_exchange_get_instance_private (self);

  g_return_if_fail (POOLER_IS_EXCHANGE (self));
  g_return_if_fail (owner == NULL || !priv->finished);

  priv->owner = owner;
  priv->owner_data = owner != NULL ? data : NULL;
}
