/* fuzz-http-head.c: the hot path's strict head parsers against libsoup's.
 *
 * The input up to its first empty line is an answer's head. Whatever the
 * strict parser (status line, then PoolerHttpFields) takes must come out
 * of soup_headers_parse_response() with the same status, HTTP/1.1, the
 * same fields and the same body framing. The field lines are also parsed
 * the request side's way (pooler_http_parse_fields() into
 * SoupMessageHeaders, any byte in values): it must take exactly what
 * PoolerHttpFields takes with the same flags, the same fields, and leave
 * the bytes as they were.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "pooler-http-fields.h"
#include "pooler-http-head.h"
#include "../test-headers.h"

int LLVMFuzzerTestOneInput (const uint8_t *data,
                            size_t         size);

/* The answer side: strict parse, then libsoup's on the same bytes. */
static void
check_answer (const char *head,
              gsize       length)
{
  g_autoptr(PoolerHttpFields) fields = NULL;
  g_autoptr(SoupMessageHeaders) strict = NULL;
  g_autoptr(SoupMessageHeaders) soup = NULL;
  SoupHTTPVersion version;
  guint status = 0, soup_status = 0;
  const char *lines = pooler_http_parse_status_line (head, length, &status);

  if (lines == NULL)
    return;
  fields = pooler_http_fields_parse (lines, head + length, 100, POOLER_HTTP_FIELDS_ASCII_ONLY);
  if (fields == NULL)
    return;

  strict = pooler_http_fields_to_soup (fields, SOUP_MESSAGE_HEADERS_RESPONSE);
  soup = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_assert_true (soup_headers_parse_response (head, (int) length, soup, &version, &soup_status, NULL));
  g_assert_true (status == soup_status);
  g_assert_true (version == SOUP_HTTP_1_1);
  g_assert_true (test_headers_same (strict, soup));
  g_assert_true (soup_message_headers_get_encoding (strict) == soup_message_headers_get_encoding (soup));
  if (soup_message_headers_get_encoding (soup) == SOUP_ENCODING_CONTENT_LENGTH)
    g_assert_true (soup_message_headers_get_content_length (strict) ==
                   soup_message_headers_get_content_length (soup));
  (void) pooler_http_fields_media_type_is (fields, "text/event-stream");
  (void) pooler_http_fields_find (fields, "x-codex-primary-used-percent");
}

/* The request side's parser and PoolerHttpFields on the field lines. */
static void
check_fields (char  *lines,
              gsize  length)
{
  g_autofree char *before = NULL;
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(PoolerHttpFields) fields = NULL;
  gboolean taken;

  if (length == 0)
    return;
  before = g_memdup2 (lines, length);
  headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  fields = pooler_http_fields_parse (lines, lines + length, 100, POOLER_HTTP_FIELDS_ANY_BYTES);
  taken = pooler_http_parse_fields (lines, lines + length, 100, POOLER_HTTP_FIELDS_ANY_BYTES, headers);

  g_assert_true (memcmp (before, lines, length) == 0);
  g_assert_true (taken == (fields != NULL));
  if (taken)
    {
      g_autoptr(SoupMessageHeaders) from_fields = pooler_http_fields_to_soup (fields, SOUP_MESSAGE_HEADERS_REQUEST);

      g_assert_true (test_headers_same (from_fields, headers));
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autofree char *copy = NULL;
  const char *blank;
  gsize length;
  const char *first_line_end;

  if (size == 0)
    return 0;
  copy = g_memdup2 (data, size);
  blank = memmem (copy, size, "\r\n\r\n", 4);
  length = blank != NULL ? (gsize) (blank + 4 - copy) : size;
  first_line_end = memchr (copy, '\n', length);

  check_answer (copy, length);
  g_assert_true (memcmp (copy, data, size) == 0);
  if (first_line_end != NULL)
    check_fields ((char *) first_line_end + 1, length - (gsize) (first_line_end + 1 - copy));

  return 0;
}
