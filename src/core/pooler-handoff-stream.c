/* pooler-handoff-stream.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-handoff-stream"

#include "config.h"

#include <string.h>

#include "pooler-handoff-stream.h"

/* The input side: the bytes read already, then the base stream. */
#define POOLER_TYPE_PREFIX_INPUT_STREAM (pooler_prefix_input_stream_get_type ())
G_DECLARE_FINAL_TYPE (PoolerPrefixInputStream, pooler_prefix_input_stream, POOLER, PREFIX_INPUT_STREAM, GInputStream)

struct _PoolerPrefixInputStream
{
  GInputStream  parent_instance;

  GInputStream *base;      /* pollable */
  GBytes       *prefix;
  gsize         offset;
};

static void pooler_prefix_input_stream_pollable_init (GPollableInputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (PoolerPrefixInputStream, pooler_prefix_input_stream, G_TYPE_INPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_INPUT_STREAM,
                                                      pooler_prefix_input_stream_pollable_init))

/* Copies from the prefix; -1 when it is used up. */
static gssize
take_prefix (PoolerPrefixInputStream *self,
             void                    *buffer,
             gsize                    count)
{
  gsize size;
  const guint8 *data;

  if (self->prefix == NULL)
    return -1;

  data = g_bytes_get_data (self->prefix, &size);
  count = MIN (count, size - self->offset);
  memcpy (buffer, data + self->offset, count);
  self->offset += count;
  if (self->offset == size)
    g_clear_pointer (&self->prefix, g_bytes_unref);

  return (gssize) count;
}

static gssize
pooler_prefix_input_stream_read (GInputStream  *stream,
                                 void          *buffer,
                                 gsize          count,
                                 GCancellable  *cancellable,
                                 GError       **error)
{
  PoolerPrefixInputStream *self = POOLER_PREFIX_INPUT_STREAM (stream);
  gssize n = take_prefix (self, buffer, count);

  if (n >= 0)
    return n;
  return g_input_stream_read (self->base, buffer, count, cancellable, error);
}

static gboolean
pooler_prefix_input_stream_close (GInputStream  *stream,
                                  GCancellable  *cancellable,
                                  GError       **error)
{
  /* The base belongs to the connection, which the I/O stream closes. */
  return TRUE;
}

static gboolean
pooler_prefix_input_stream_can_poll (GPollableInputStream *stream)
{
  return TRUE;
}

static gboolean
pooler_prefix_input_stream_is_readable (GPollableInputStream *stream)
{
  PoolerPrefixInputStream *self = POOLER_PREFIX_INPUT_STREAM (stream);

  return self->prefix != NULL || g_pollable_input_stream_is_readable (G_POLLABLE_INPUT_STREAM (self->base));
}

static GSource *
pooler_prefix_input_stream_create_source (GPollableInputStream *stream,
                                          GCancellable         *cancellable)
{
  PoolerPrefixInputStream *self = POOLER_PREFIX_INPUT_STREAM (stream);
  g_autoptr(GSource) base_source = NULL;

  if (self->prefix != NULL)
    {
      /* Readable now: a source that dispatches in the next turn. */
      GSource *source = g_pollable_source_new_full (stream, NULL, cancellable);

      g_source_set_ready_time (source, 0);
      return source;
    }

  base_source = g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (self->base), NULL);
  return g_pollable_source_new_full (stream, base_source, cancellable);
}

static gssize
pooler_prefix_input_stream_read_nonblocking (GPollableInputStream  *stream,
                                             void                  *buffer,
                                             gsize                  count,
                                             GError               **error)
{
  PoolerPrefixInputStream *self = POOLER_PREFIX_INPUT_STREAM (stream);
  gssize n = take_prefix (self, buffer, count);

  if (n >= 0)
    return n;
  return g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (self->base),
                                                   buffer, count, NULL, error);
}

static void
pooler_prefix_input_stream_finalize (GObject *object)
{
  PoolerPrefixInputStream *self = POOLER_PREFIX_INPUT_STREAM (object);

  g_clear_object (&self->base);
  g_clear_pointer (&self->prefix, g_bytes_unref);

  G_OBJECT_CLASS (pooler_prefix_input_stream_parent_class)->finalize (object);
}

static void
pooler_prefix_input_stream_class_init (PoolerPrefixInputStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *input_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = pooler_prefix_input_stream_finalize;
  input_class->read_fn = pooler_prefix_input_stream_read;
  input_class->close_fn = pooler_prefix_input_stream_close;
}

static void
pooler_prefix_input_stream_pollable_init (GPollableInputStreamInterface *iface)
{
  iface->can_poll = pooler_prefix_input_stream_can_poll;
  iface->is_readable = pooler_prefix_input_stream_is_readable;
  iface->create_source = pooler_prefix_input_stream_create_source;
  iface->read_nonblocking = pooler_prefix_input_stream_read_nonblocking;
}

static void
pooler_prefix_input_stream_init (PoolerPrefixInputStream *self)
{
}

/* The I/O stream. */

struct _PoolerHandoffStream
{
  GIOStream     parent_instance;

  GIOStream    *base;
  GInputStream *input;
};

G_DEFINE_FINAL_TYPE (PoolerHandoffStream, pooler_handoff_stream, G_TYPE_IO_STREAM)

enum
{
  PROP_0,
  PROP_BASE_IOSTREAM,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static GInputStream *
pooler_handoff_stream_get_input_stream (GIOStream *stream)
{
  return POOLER_HANDOFF_STREAM (stream)->input;
}

static GOutputStream *
pooler_handoff_stream_get_output_stream (GIOStream *stream)
{
  return g_io_stream_get_output_stream (POOLER_HANDOFF_STREAM (stream)->base);
}

static gboolean
pooler_handoff_stream_close (GIOStream     *stream,
                             GCancellable  *cancellable,
                             GError       **error)
{
  return g_io_stream_close (POOLER_HANDOFF_STREAM (stream)->base, cancellable, error);
}

/* Closing a socket does not block: no thread for it (GIOStream's default). */
static void
pooler_handoff_stream_close_async (GIOStream           *stream,
                                   int                  io_priority,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (stream, cancellable, callback, user_data);
  GError *error = NULL;

  g_task_set_source_tag (task, pooler_handoff_stream_close_async);
  if (pooler_handoff_stream_close (stream, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static gboolean
pooler_handoff_stream_close_finish (GIOStream     *stream,
                                    GAsyncResult  *result,
                                    GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
pooler_handoff_stream_get_property (GObject    *object,
                                    guint       prop_id,
                                    GValue     *value,
                                    GParamSpec *pspec)
{
  PoolerHandoffStream *self = POOLER_HANDOFF_STREAM (object);

  switch (prop_id)
    {
    case PROP_BASE_IOSTREAM:
      g_value_set_object (value, self->base);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
pooler_handoff_stream_finalize (GObject *object)
{
  PoolerHandoffStream *self = POOLER_HANDOFF_STREAM (object);

  g_clear_object (&self->input);
  g_clear_object (&self->base);

  G_OBJECT_CLASS (pooler_handoff_stream_parent_class)->finalize (object);
}

static void
pooler_handoff_stream_class_init (PoolerHandoffStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GIOStreamClass *stream_class = G_IO_STREAM_CLASS (klass);

  object_class->get_property = pooler_handoff_stream_get_property;
  object_class->finalize = pooler_handoff_stream_finalize;
  stream_class->get_input_stream = pooler_handoff_stream_get_input_stream;
  stream_class->get_output_stream = pooler_handoff_stream_get_output_stream;
  stream_class->close_fn = pooler_handoff_stream_close;
  stream_class->close_async = pooler_handoff_stream_close_async;
  stream_class->close_finish = pooler_handoff_stream_close_finish;

  properties[PROP_BASE_IOSTREAM] =
    g_param_spec_object ("base-iostream", NULL, NULL, G_TYPE_IO_STREAM,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
pooler_handoff_stream_init (PoolerHandoffStream *self)
{
}

GIOStream *
pooler_handoff_stream_new (GIOStream *base,
                           GBytes    *already_read)
{
  PoolerHandoffStream *self;
  PoolerPrefixInputStream *input;
  GInputStream *base_input;

  g_return_val_if_fail (G_IS_IO_STREAM (base), NULL);
  g_return_val_if_fail (already_read != NULL, NULL);

  base_input = g_io_stream_get_input_stream (base);
  g_return_val_if_fail (G_IS_POLLABLE_INPUT_STREAM (base_input), NULL);

  input = g_object_new (POOLER_TYPE_PREFIX_INPUT_STREAM, NULL);
  input->base = g_object_ref (base_input);
  if (g_bytes_get_size (already_read) > 0)
    input->prefix = g_bytes_ref (already_read);

  self = g_object_new (POOLER_TYPE_HANDOFF_STREAM, NULL);
  self->base = g_object_ref (base);
  self->input = G_INPUT_STREAM (input);

  return G_IO_STREAM (self);
}
