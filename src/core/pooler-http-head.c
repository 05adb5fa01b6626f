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

/* The byte classes the field scanner asks about, a table built once from
 * the functions above (so they cannot disagree): a lookup a byte instead
 * of a switch and two compares. */
enum
{
  CLASS_TCHAR       = 1 << 0,
  CLASS_VALUE_ANY   = 1 << 1,   /* value_byte_ok (c, POOLER_HTTP_FIELDS_ANY_BYTES) */
  CLASS_VALUE_ASCII = 1 << 2,   /* value_byte_ok (c, POOLER_HTTP_FIELDS_ASCII_ONLY) */
};

static const guint8 *
byte_classes (void)
{
  static guint8 classes[256];
  static gsize built = 0;

  if (g_once_init_enter (&built))
    {
      for (guint c = 0; c < 256; c++)
        classes[c] = (pooler_http_is_tchar ((guchar) c) ? CLASS_TCHAR : 0) |
                     (value_byte_ok ((guchar) c, POOLER_HTTP_FIELDS_ANY_BYTES) ? CLASS_VALUE_ANY : 0) |
                     (value_byte_ok ((guchar) c, POOLER_HTTP_FIELDS_ASCII_ONLY) ? CLASS_VALUE_ASCII : 0);
      g_once_init_leave (&built, 1);
    }

  return classes;
}

PoolerHttpFieldStep
pooler_http_next_field (const char           **p,
                        const char            *end,
                        PoolerHttpFieldsFlags  flags,
                        PoolerHttpFieldSpan   *span)
{
  const guint8 *classes = byte_classes ();
  guint8 value_class = (flags & POOLER_HTTP_FIELDS_ASCII_ONLY) ? CLASS_VALUE_ASCII : CLASS_VALUE_ANY;
  const char *start = *p;
  const char *line_end = memchr (start, '\r', (gsize) (end - start));
  const char *name_end, *value, *value_end;

  if (line_end == NULL || line_end + 1 >= end || line_end[1] != '\n' ||
      memchr (start, '\n', (gsize) (line_end - start)) != NULL)
    return POOLER_HTTP_FIELD_BAD;
  *p = line_end + 2;
  if (line_end == start)
    return POOLER_HTTP_FIELD_END;

  name_end = start;
  while (name_end < line_end && (classes[(guchar) *name_end] & CLASS_TCHAR))
    name_end++;
  if (name_end == start || name_end == line_end || *name_end != ':')
    return POOLER_HTTP_FIELD_BAD;
  value = name_end + 1;
  while (value < line_end && (*value == ' ' || *value == '\t'))
    value++;
  value_end = line_end;
  while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t'))
    value_end--;
  for (const char *c = value; c < value_end; c++)
    if (!(classes[(guchar) *c] & value_class))
      return POOLER_HTTP_FIELD_BAD;

  span->name = start;
  span->name_length = (gsize) (name_end - start);
  span->value = value;
  span->value_length = (gsize) (value_end - value);
  return POOLER_HTTP_FIELD_LINE;
}

gboolean
pooler_http_parse_fields (char                  *p,
                          char                  *end,
                          guint                  max_fields,
                          PoolerHttpFieldsFlags  flags,
                          SoupMessageHeaders    *headers)
{
  const char *at = p;
  guint n_fields = 0;

  for (;;)
    {
      PoolerHttpFieldSpan span;
      char *name_end, *value_end;
      char saved_colon, saved_end;

      switch (pooler_http_next_field (&at, end, flags, &span))
        {
        case POOLER_HTTP_FIELD_BAD:
          return FALSE;
        case POOLER_HTTP_FIELD_END:
          return TRUE;
        case POOLER_HTTP_FIELD_LINE:
        default:
          break;
        }
      if (++n_fields > max_fields)
        return FALSE;

      /* Terminated in place for the copy, then put back: the bytes may
       * still go to libsoup. */
      name_end = (char *) span.name + span.name_length;
      value_end = (char *) span.value + span.value_length;
      saved_colon = *name_end;
      saved_end = *value_end;
      *name_end = '\0';
      *value_end = '\0';
      soup_message_headers_append (headers, span.name, span.value);
      *name_end = saved_colon;
      *value_end = saved_end;
    }
}

const char *
pooler_http_parse_status_line (const char *head,
                               gsize       length,
                               guint      *status)
{
  const char *end = head + length;
  const char *p = head;
  const char *line_end;

  /* "HTTP/1.1 NNN" and a space or the end of the line. An HTTP/1.0
   * answer is libsoup's: it also drops the fields its Connection header
   * names, which changes how the body is framed. */
  if (length < 14 || memcmp (p, "HTTP/1.1", 8) != 0 ||
      p[8] != ' ' || !g_ascii_isdigit (p[9]) || !g_ascii_isdigit (p[10]) ||
      !g_ascii_isdigit (p[11]) || p[9] == '0' || (p[12] != ' ' && p[12] != '\r'))
    return NULL;

  /* The reason phrase: anything on the line but control bytes. */
  line_end = memchr (p + 12, '\r', (gsize) (end - (p + 12)));
  if (line_end == NULL || line_end + 1 >= end || line_end[1] != '\n')
    return NULL;
  for (const char *c = p + 12; c < line_end; c++)
    if (!value_byte_ok ((guchar) *c, POOLER_HTTP_FIELDS_ANY_BYTES))
      return NULL;

  *status = (guint) ((p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0'));
  return line_end + 2;
}

gboolean
pooler_http_name_in (const char         *name,
                     const char * const *names)
{
  char first = g_ascii_tolower (name[0]);

  /* Compared inline, a byte at a time until the first difference:
   * g_ascii_strcasecmp() calls a function for every byte of both, and
   * every field of every message passes several of these lists. */
  for (guint i = 0; names[i] != NULL; i++)
    {
      const char *a = name;
      const char *b = names[i];

      if (*b != first)
        continue;
      while (*b != '\0' && (*a >= 'A' && *a <= 'Z' ? *a + ('a' - 'A') : *a) == *b)
        a++, b++;
      if (*a == '\0' && *b == '\0')
        return TRUE;
    }

  return FALSE;
}

G_STATIC_ASSERT (sizeof (gsize) <= 8);
G_STATIC_ASSERT (POOLER_HTTP_CHUNK_LINE_SIZE >= 16 + 2);
G_STATIC_ASSERT (POOLER_HTTP_CHUNK_LINE_SIZE >= POOLER_HTTP_DECIMAL_SIZE);

/* @value's digits in @base (10 or 16, lower case) into @text; returns
 * how many. printf costs about a thousand instructions a call, and every
 * head and streamed chunk has numbers. */
static gsize
format_digits (char    text[POOLER_HTTP_DECIMAL_SIZE],
               guint64 value,
               guint   base)
{
  static const char digits[] = "0123456789abcdef";
  char reversed[POOLER_HTTP_DECIMAL_SIZE];   /* G_MAXUINT64 has 20 decimal digits */
  gsize n = 0;
  gsize length = 0;

  do
    {
      reversed[n++] = digits[value % base];
      value /= base;
    }
  while (value != 0);
  while (n > 0)
    text[length++] = reversed[--n];
  return length;
}

gsize
pooler_http_format_chunk_line (char  line[POOLER_HTTP_CHUNK_LINE_SIZE],
                               gsize size)
{
  gsize length = format_digits (line, size, 16);

  line[length++] = '\r';
  line[length++] = '\n';
  return length;
}

const guint8 *
pooler_http_find_blank_line (const guint8 *data,
                             gsize         length)
{
  const guint8 *p = data;
  const guint8 *end;

  if (length < 4)
    return NULL;
  end = data + length;
  while (end - p >= 4)
    {
      p = memchr (p, '\r', (gsize) (end - p) - 3);
      if (p == NULL)
        return NULL;
      if (p[1] == '\n' && p[2] == '\r' && p[3] == '\n')
        return p;
      p++;
    }

  return NULL;
}

gsize
pooler_http_format_decimal (char    text[POOLER_HTTP_DECIMAL_SIZE],
                            guint64 value)
{
  return format_digits (text, value, 10);
}
