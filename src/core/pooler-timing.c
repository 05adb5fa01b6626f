/* pooler-timing.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-timing"

#include "config.h"

#include <errno.h>
#include <stdio.h>

#include "pooler-timing.h"

/* Written on the main thread only. */
static FILE *trace;

gboolean pooler_timing_on;

gboolean
pooler_timing_enabled (void)
{
  static gsize once = 0;

  if (g_once_init_enter (&once))
    {
      const char *path = g_getenv ("CODEX_POOLER_TRACE_TIMES");

      if (path != NULL && *path != '\0')
        {
          trace = fopen (path, "ae");
          if (trace == NULL)
            g_warning ("Cannot write the timing trace to %s: %s", path, g_strerror (errno));
          else
            setvbuf (trace, NULL, _IOFBF, 256 * 1024);
          pooler_timing_on = trace != NULL;
        }
      g_once_init_leave (&once, 1);
    }

  return trace != NULL;
}

void
pooler_timing_write (guint16       client_port,
                     const gint64 *marks,
                     guint         n_marks,
                     gint64        answered)
{
  if (!pooler_timing_active ())
    return;

  fprintf (trace, "%u", client_port);
  for (guint i = 0; i < n_marks; i++)
    fprintf (trace, " %" G_GINT64_FORMAT, marks[i]);
  fprintf (trace, " %" G_GINT64_FORMAT "\n", answered);
}

void
pooler_timing_flush (void)
{
  if (trace != NULL)
    fflush (trace);
}
