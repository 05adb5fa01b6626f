/* pooler-chunked-close.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-chunked-close"

#include "config.h"

#include <gio/gio.h>

#include "pooler-chunked-close.h"

/* libsoup's private class; looked up by name, never instantiated here. */
#define BODY_STREAM_TYPE_NAME "SoupBodyOutputStream"

typedef void (*CloseAsyncFunc) (GOutputStream       *stream,
                                int                  io_priority,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data);

typedef void (*FlushAsyncFunc) (GOutputStream       *stream,
                                int                  io_priority,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data);

static CloseAsyncFunc threaded_close_async;
static FlushAsyncFunc threaded_flush_async;
static gboolean installed;

/* Whether @stream's base can take a few bytes right now. */
static gboolean
base_is_writable (GOutputStream *stream)
{
  GOutputStream *base = G_IS_FILTER_OUTPUT_STREAM (stream)
                        ? g_filter_output_stream_get_base_stream (G_FILTER_OUTPUT_STREAM (stream))
                        : NULL;

  return base != NULL && G_IS_POLLABLE_OUTPUT_STREAM (base) &&
         g_pollable_output_stream_can_poll (G_POLLABLE_OUTPUT_STREAM (base)) &&
         g_pollable_output_stream_is_writable (G_POLLABLE_OUTPUT_STREAM (base));
}

/* GIO flushes before an overridden close_async, by default in a thread
 * too; the flush of a stream over a socket has nothing to wait for. */
static void
flush_now_or_in_thread (GOutputStream       *stream,
                        int                  io_priority,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  GOutputStreamClass *klass = G_OUTPUT_STREAM_GET_CLASS (stream);

  if (klass->flush == NULL || base_is_writable (stream))
    {
      g_autoptr(GTask) task = g_task_new (stream, cancellable, callback, user_data);
      GError *error = NULL;

      if (klass->flush == NULL || klass->flush (stream, cancellable, &error))
        g_task_return_boolean (task, TRUE);
      else
        g_task_return_error (task, error);
      return;
    }

  threaded_flush_async (stream, io_priority, cancellable, callback, user_data);
}

static void
close_now_or_in_thread (GOutputStream       *stream,
                        int                  io_priority,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  GOutputStreamClass *klass = G_OUTPUT_STREAM_GET_CLASS (stream);

  if (klass->close_fn != NULL && base_is_writable (stream))
    {
      g_autoptr(GTask) task = g_task_new (stream, cancellable, callback, user_data);
      GError *error = NULL;

      /* What the threaded close would run, here: a writable socket takes
       * the last chunk without blocking. */
      if (klass->close_fn (stream, cancellable, &error))
        g_task_return_boolean (task, TRUE);
      else
        g_task_return_error (task, error);
      return;
    }

  threaded_close_async (stream, io_priority, cancellable, callback, user_data);
}

gboolean
pooler_chunked_close_install (void)
{
  GType type;
  GOutputStreamClass *klass;
  GOutputStreamClass *base_class;

  if (G_LIKELY (installed))
    return TRUE;

  type = g_type_from_name (BODY_STREAM_TYPE_NAME);
  if (type == 0 || !g_type_is_a (type, G_TYPE_FILTER_OUTPUT_STREAM))
    return FALSE;

  /* Kept for the life of the process, like the type itself. */
  klass = g_type_class_ref (type);
  /* Only while the class has no close_async or flush_async of its own: a
   * libsoup that implements them does not need this. */
  base_class = G_OUTPUT_STREAM_CLASS (g_type_class_peek (G_TYPE_OUTPUT_STREAM));
  if (klass->close_async != base_class->close_async ||
      klass->flush_async != base_class->flush_async)
    {
      installed = TRUE;
      return TRUE;
    }
  threaded_close_async = klass->close_async;
  threaded_flush_async = klass->flush_async;
  klass->flush_async = flush_now_or_in_thread;
  klass->close_async = close_now_or_in_thread;
  installed = TRUE;
  g_debug ("Chunked answers end without a worker thread");

  return TRUE;
}
