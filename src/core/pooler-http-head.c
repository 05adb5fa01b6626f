/* pooler-http-head.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-http-head"

#include "config.h"

#include <string.h>

#include "pooler-http-head.h"

static inline gboolean
value_byte_ok (guchar                c,
               PoolerHttpFieldsFlags flags)
{
  if ((c < 0x20 && c != '\t') || c == 0x7f)
    return FALSE;
  return c < 0x80 || !(flags & POOLER_HTTP_FIELDS_ASCII_ONLY);
}

gboolean
pooler_http_parse_fields (char                  *p,
                          char                  *end,
                          guint                  max_fields,
                          PoolerHttpFieldsFlags  flags,
                          SoupMessageHeaders    *headers)
{
  guint n_fields = 0;

  for (;;)
    {
      char *line_end = memchr (p, '\r', (gsize) (end - p));
      char *name_end, *value, *value_end;
      char saved_colon, saved_end;

      if (line_end == NULL || line_end + 1 >= end || line_end[1] != '\n' ||
          memchr (p, '\n', (gsize) (line_end - p)) != NULL)
        return FALSE;
      if (line_end == p)
        return TRUE;
      if (++n_fields > max_fields)
        return FALSE;

      name_end = p;
      while (name_end < line_end && pooler_http_is_tchar ((guchar) *name_end))
        name_end++;
      if (name_end == p || name_end == line_end || *name_end != ':')
        return FALSE;
      value = name_end + 1;
      while (value < line_end && (*value == ' ' || *value == '\t'))
        value++;
      value_end = line_end;
      while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t'))
        value_end--;
      for (const char *c = value; c < value_end; c++)
        if (!value_byte_ok ((guchar) *c, flags))
          return FALSE;

      /* Terminated in place for the copy, then put back: the bytes may
       * still go to libsoup. */
      saved_colon = *name_end;
      saved_end = *value_end;
      *name_end = '\0';
      *value_end = '\0';
      soup_message_headers_append (headers, p, value);
      *name_end = saved_colon;
      *value_end = saved_end;

      p = line_end + 2;
    }
}

gboolean
pooler_http_parse_response_head (char                *head,
                                 gsize                length,
                                 guint                max_fields,
                                 SoupMessageHeaders **headers,
                                 SoupHTTPVersion     *version,
                                 guint               *status)
{
  g_autoptr(SoupMessageHeaders) fields = NULL;
  char *end = head + length;
  char *p = head;
  char *line_end;

  /* "HTTP/1.1 NNN" and a space or the end of the line. An HTTP/1.0
   * answer is libsoup's: it also drops the fields its Connection header
   * names, which changes how the body is framed. */
  if (length < 14 || memcmp (p, "HTTP/1.1", 8) != 0 ||
      p[8] != ' ' || !g_ascii_isdigit (p[9]) || !g_ascii_isdigit (p[10]) ||
      !g_ascii_isdigit (p[11]) || p[9] == '0' || (p[12] != ' ' && p[12] != '\r'))
    return FALSE;

  /* The reason phrase: anything on the line but control bytes. */
  line_end = memchr (p + 12, '\r', (gsize) (end - (p + 12)));
  if (line_end == NULL || line_end + 1 >= end || line_end[1] != '\n')
    return FALSE;
  for (const char *c = p + 12; c < line_end; c++)
    if (!value_byte_ok ((guchar) *c, POOLER_HTTP_FIELDS_ANY_BYTES))
      return FALSE;

  fields = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  if (!pooler_http_parse_fields (line_end + 2, end, max_fields, POOLER_HTTP_FIELDS_ASCII_ONLY, fields))
    return FALSE;

  *version = SOUP_HTTP_1_1;
  *status = (guint) ((p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0'));
  *headers = g_steal_pointer (&fields);
  return TRUE;
}

gboolean
pooler_http_name_in (const char         *name,
                     const char * const *names)
{
  char first = g_ascii_tolower (name[0]);

  for (guint i = 0; names[i] != NULL; i++)
    if (names[i][0] == first && g_ascii_strcasecmp (name, names[i]) == 0)
      return TRUE;

  return FALSE;
}

G_STATIC_ASSERT (sizeof (gsize) <= 8);
G_STATIC_ASSERT (POOLER_HTTP_CHUNK_LINE_SIZE >= 16 + 2);

gsize
pooler_http_format_chunk_line (char  line[POOLER_HTTP_CHUNK_LINE_SIZE],
                               gsize size)
{
  static const char digits[] = "0123456789abcdef";
  char reversed[16];   /* a 64-bit size's hex digits */
  gsize n = 0;
  gsize length = 0;

  do
    {
      reversed[n++] = digits[size & 0xf];
      size >>= 4;
    }
  while (size != 0);
  while (n > 0)
    line[length++] = reversed[--n];
  line[length++] = '\r';
  line[length++] = '\n';
  return length;
}
