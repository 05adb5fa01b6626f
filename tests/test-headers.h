/* test-headers.h: whether two SoupMessageHeaders hold the same fields,
 * for the tests and fuzz targets that hold the strict head parsers to
 * libsoup's (a header of static inlines: the fuzz targets link only the
 * core).
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <string.h>

#include <libsoup/soup.h>

/* The same fields in the same (libsoup's) order: names without case,
 * values exactly. */
static inline gboolean
test_headers_same (SoupMessageHeaders *a,
                   SoupMessageHeaders *b)
{
  SoupMessageHeadersIter ia, ib;
  const char *na, *va, *nb, *vb;

  soup_message_headers_iter_init (&ia, a);
  soup_message_headers_iter_init (&ib, b);
  for (;;)
    {
      gboolean more_a = soup_message_headers_iter_next (&ia, &na, &va);
      gboolean more_b = soup_message_headers_iter_next (&ib, &nb, &vb);

      if (more_a != more_b)
        return FALSE;
      if (!more_a)
        return TRUE;
      if (g_ascii_strcasecmp (na, nb) != 0 || strcmp (va, vb) != 0)
        return FALSE;
    }
}
