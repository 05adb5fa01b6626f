/* pooler-http-head.h: the strict HTTP/1.1 head parsing the hot path's two
 * sides share (PoolerHttpConn for requests, PoolerUpstream for answers).
 *
 * Strict means plain: CRLF lines, token names, no folded lines, no
 * control bytes. What it declines is not necessarily wrong; the caller
 * hands it to libsoup, which judges it as it always did. What it takes,
 * it parses as libsoup would (tests/test-http-head.c compares the two).
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef enum
{
  POOLER_HTTP_FIELDS_ANY_BYTES  = 0,
  /* Values of printable ASCII only (libsoup replaces bad UTF-8 in an
   * answer's values; such values are left to it). */
  POOLER_HTTP_FIELDS_ASCII_ONLY = 1 << 0,
} PoolerHttpFieldsFlags;

/* RFC 9110 token characters. */
static inline gboolean
pooler_http_is_tchar (guchar c)
{
  if (g_ascii_isalnum (c))
    return TRUE;
  switch (c)
    {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*':
    case '+': case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return TRUE;
    default:
      return FALSE;
    }
}

/* One field line: its name and its value (without the spaces around it). */
typedef struct
{
  const char *name;
  gsize       name_length;
  const char *value;
  gsize       value_length;
} PoolerHttpFieldSpan;

typedef enum
{
  POOLER_HTTP_FIELD_BAD = -1,   /* not plain (or not there in full) */
  POOLER_HTTP_FIELD_END = 0,    /* the empty line */
  POOLER_HTTP_FIELD_LINE = 1,   /* a field line, in @span */
} PoolerHttpFieldStep;

/* Reads the line at *@p (in a head ending at @end) and moves *@p past it.
 * The one scanner of field lines: pooler_http_parse_fields() and
 * pooler_http_fields_parse() both take what it takes. */
PoolerHttpFieldStep pooler_http_next_field (const char           **p,
                                            const char            *end,
                                            PoolerHttpFieldsFlags  flags,
                                            PoolerHttpFieldSpan   *span);

/* Appends the field lines at @p (after the start line) to @headers, up to
 * the empty line; @end is the end of the head, its empty line included.
 * The bytes are terminated in place for each append and put back, so on
 * FALSE they are as they were (and @headers may hold some fields). FALSE
 * when a line is not plain or there are more than @max_fields. */
gboolean pooler_http_parse_fields         (char                  *p,
                                           char                  *end,
                                           guint                  max_fields,
                                           PoolerHttpFieldsFlags  flags,
                                           SoupMessageHeaders    *headers);

/* Whether the header name @name is one of @names (lower case,
 * NULL-terminated), without case. The first letter is compared inline:
 * every header of every message passes such lists, and most differ
 * there. */
gboolean pooler_http_name_in              (const char            *name,
                                           const char * const    *names);

/* The size line of a chunk ("<hex>\r\n", as libsoup writes it) into
 * @line; returns its length. Every streamed piece has one: printf cost
 * ~700 instructions a line. */
#define POOLER_HTTP_CHUNK_LINE_SIZE 20
gsize    pooler_http_format_chunk_line    (char                   line[POOLER_HTTP_CHUNK_LINE_SIZE],
                                           gsize                  size);

/* The first "\r\n\r\n" in the @length bytes at @data, or NULL: where a
 * head ends. A line at a time (memchr), cheaper than memmem()'s general
 * search for the few hundred bytes of a head. */
const guint8 *pooler_http_find_blank_line (const guint8           *data,
                                           gsize                   length);

/* @value in decimal into @text (no NUL); returns the number of digits.
 * For the numbers of every head (status, Content-Length): printf costs
 * about a thousand instructions a call. */
#define POOLER_HTTP_DECIMAL_SIZE 20
gsize    pooler_http_format_decimal       (char                   text[POOLER_HTTP_DECIMAL_SIZE],
                                           guint64                value);

/* An answer's start line at @head (a head of @length bytes): "HTTP/1.1",
 * a three-digit status, a reason phrase. Returns where the field lines
 * begin, or NULL when it is anything else: hand the head to
 * soup_headers_parse_response(). pooler_http_fields_parse() takes the
 * fields from there. */
const char *pooler_http_parse_status_line (const char            *head,
                                           gsize                  length,
                                           guint                 *status);

G_END_DECLS
