/* pooler-request-body.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-request-body"

#include "config.h"

#include <string.h>
#include <zstd.h>

#include "pooler-error.h"
#include "pooler-json.h"
#include "pooler-request-body.h"

typedef struct
{
  const char *p;
  const char *end;
  GError    **error;
} Scanner;

static gboolean
fail (Scanner    *s,
      const char *message)
{
  if (s->error != NULL && *s->error == NULL)
    g_set_error_literal (s->error, POOLER_ERROR, POOLER_ERROR_INVALID, message);
  return FALSE;
}

static void
skip_ws (Scanner *s)
{
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
    s->p++;
}

static int
hex_value (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static gboolean
read_hex4 (const char *p,
           gunichar   *out)
{
  gunichar v = 0;

  for (guint i = 0; i < 4; i++)
    {
      int h = hex_value (p[i]);
      if (h < 0)
        return FALSE;
      v = (v << 4) | (gunichar) h;
    }

  *out = v;
  return TRUE;
}

#define SWAR_ONES  G_GUINT64_CONSTANT (0x0101010101010101)
#define SWAR_HIGHS G_GUINT64_CONSTANT (0x8080808080808080)

/* Whether any byte of @x is a quote, a backslash or a control character
 * (below 0x20): the bytes that end a run of plain string text. */
static inline gboolean
swar_has_special (guint64 x)
{
  guint64 quote = x ^ (SWAR_ONES * '"');
  guint64 backslash = x ^ (SWAR_ONES * '\\');
  guint64 zero_q = (quote - SWAR_ONES) & ~quote;
  guint64 zero_b = (backslash - SWAR_ONES) & ~backslash;
  guint64 below = (x - SWAR_ONES * 0x20) & ~x;

  return ((zero_q | zero_b | below) & SWAR_HIGHS) != 0;
}

/* Reads a string at s->p (which is at the opening quote). When @out is not
 * NULL the unescaped text is appended to it. */
static gboolean
read_string (Scanner *s,
             GString *out)
{
  g_assert (s->p < s->end && *s->p == '"');
  s->p++;

  while (s->p < s->end)
    {
      const char *run = s->p;

      /* Eight bytes at a time past the plain text, which is nearly all of
       * a 38 KB request; the byte loop below finds the exact stop. */
      while (s->end - s->p >= 8)
        {
          guint64 x;

          memcpy (&x, s->p, sizeof x);
          if (swar_has_special (x))
            break;
          s->p += 8;
        }

      while (s->p < s->end && *s->p != '"' && *s->p != '\\')
        {
          if ((guchar) *s->p < 0x20)
            return fail (s, "request body has a control character inside a string");
          s->p++;
        }
      if (out != NULL)
        g_string_append_len (out, run, s->p - run);

      if (s->p >= s->end)
        break;

      if (*s->p == '"')
        {
          s->p++;
          return TRUE;
        }

      /* a backslash escape */
      if (s->p + 1 >= s->end)
        break;
      s->p++;
      switch (*s->p)
        {
        case '"': case '\\': case '/':
          if (out != NULL)
            g_string_append_c (out, *s->p);
          s->p++;
          break;
        case 'b': if (out) g_string_append_c (out, '\b'); s->p++; break;
        case 'f': if (out) g_string_append_c (out, '\f'); s->p++; break;
        case 'n': if (out) g_string_append_c (out, '\n'); s->p++; break;
        case 'r': if (out) g_string_append_c (out, '\r'); s->p++; break;
        case 't': if (out) g_string_append_c (out, '\t'); s->p++; break;
        case 'u':
          {
            gunichar c;

            if (s->end - s->p < 5 || !read_hex4 (s->p + 1, &c))
              return fail (s, "request body has a bad \\u escape");
            s->p += 5;
            if (c >= 0xD800 && c <= 0xDBFF)
              {
                gunichar low;

                if (s->end - s->p >= 6 && s->p[0] == '\\' && s->p[1] == 'u' &&
                    read_hex4 (s->p + 2, &low) && low >= 0xDC00 && low <= 0xDFFF)
                  {
                    c = 0x10000 + ((c - 0xD800) << 10) + (low - 0xDC00);
                    s->p += 6;
                  }
                else
                  c = 0xFFFD;
              }
            else if (c >= 0xDC00 && c <= 0xDFFF)
              c = 0xFFFD;
            if (out != NULL)
              g_string_append_unichar (out, c);
          }
          break;
        default:
          return fail (s, "request body has a bad escape in a string");
        }
    }

  return fail (s, "request body ends inside a string");
}

/* Skips one value of any kind, nested ones included, checking depth. */
static gboolean
skip_value (Scanner *s,
            guint    depth)
{
  guint level = 0;

  skip_ws (s);
  if (s->p >= s->end)
    return fail (s, "request body is cut short");

  do
    {
      skip_ws (s);
      if (s->p >= s->end)
        return fail (s, "request body is cut short");

      switch (*s->p)
        {
        case '"':
          if (!read_string (s, NULL))
            return FALSE;
          break;
        case '{': case '[':
          if (depth + level + 1 > POOLER_JSON_MAX_DEPTH)
            return fail (s, "request body nests deeper than 64 levels");
          level++;
          s->p++;
          break;
        case '}': case ']':
          if (level == 0)
            return fail (s, "request body has an unexpected closing bracket");
          level--;
          s->p++;
          break;
        case ',': case ':':
          if (level == 0)
            return fail (s, "request body has a misplaced separator");
          s->p++;
          break;
        default:
          {
            const char *start = s->p;

            while (s->p < s->end && strchr (",:{}[]\" \t\r\n", *s->p) == NULL)
              s->p++;
            if (s->p == start)
              return fail (s, "request body has an unexpected character");
          }
          break;
        }
    }
  while (level > 0);

  return TRUE;
}

static gboolean
read_literal (Scanner    *s,
              const char *word)
{
  gsize n = strlen (word);

  if ((gsize) (s->end - s->p) >= n && memcmp (s->p, word, n) == 0)
    {
      s->p += n;
      return TRUE;
    }

  return FALSE;
}

static gboolean
read_string_member (Scanner  *s,
                    char    **out)
{
  g_autoptr(GString) value = NULL;

  skip_ws (s);
  if (s->p < s->end && *s->p == '"')
    {
      value = g_string_new (NULL);
      if (!read_string (s, value))
        return FALSE;
      g_free (*out);
      *out = g_string_free (g_steal_pointer (&value), FALSE);
      return TRUE;
    }

  /* null or another type: not a usable string, but still a valid body */
  return skip_value (s, 1);
}

PoolerRequestBody *
pooler_request_body_scan (const char  *data,
                          gsize        length,
                          GError     **error)
{
  g_autoptr(PoolerRequestBody) body = g_new0 (PoolerRequestBody, 1);
  g_autoptr(GString) key = g_string_new (NULL);
  Scanner s = { data, data + length, error };

  g_return_val_if_fail (data != NULL || length == 0, NULL);

  skip_ws (&s);
  if (s.p >= s.end || *s.p != '{')
    {
      fail (&s, "request body must be a JSON object");
      return NULL;
    }
  s.p++;
  skip_ws (&s);

  if (s.p < s.end && *s.p == '}')
    s.p++;
  else
    {
      for (;;)
        {
          skip_ws (&s);
          if (s.p >= s.end || *s.p != '"')
            {
              fail (&s, "request body has a malformed object key");
              return NULL;
            }
          g_string_truncate (key, 0);
          if (!read_string (&s, key))
            return NULL;
          skip_ws (&s);
          if (s.p >= s.end || *s.p != ':')
            {
              fail (&s, "request body is missing a ':' after a key");
              return NULL;
            }
          s.p++;
          skip_ws (&s);

          if (strcmp (key->str, "model") == 0)
            {
              if (!read_string_member (&s, &body->model))
                return NULL;
            }
          else if (strcmp (key->str, "prompt_cache_key") == 0)
            {
              if (!read_string_member (&s, &body->prompt_cache_key))
                return NULL;
            }
          else if (strcmp (key->str, "previous_response_id") == 0)
            {
              if (!read_string_member (&s, &body->previous_response_id))
                return NULL;
            }
          else if (strcmp (key->str, "stream") == 0 && read_literal (&s, "true"))
            body->has_stream = body->stream = TRUE;
          else if (strcmp (key->str, "stream") == 0 && read_literal (&s, "false"))
            {
              body->has_stream = TRUE;
              body->stream = FALSE;
            }
          else
            {
              if (strcmp (key->str, "input") == 0)
                body->has_input = TRUE;
              if (!skip_value (&s, 1))
                return NULL;
            }

          skip_ws (&s);
          if (s.p < s.end && *s.p == ',')
            {
              s.p++;
              continue;
            }
          if (s.p < s.end && *s.p == '}')
            {
              s.p++;
              break;
            }
          fail (&s, s.p >= s.end ? "request body is cut short"
                                 : "request body is missing a ',' between members");
          return NULL;
        }
    }

  skip_ws (&s);
  if (s.p != s.end)
    {
      fail (&s, "request body has data after the JSON object");
      return NULL;
    }

  return g_steal_pointer (&body);
}

void
pooler_request_body_free (PoolerRequestBody *body)
{
  if (body == NULL)
    return;

  g_free (body->model);
  g_free (body->prompt_cache_key);
  g_free (body->previous_response_id);
  g_free (body);
}

static GBytes *
decode_zstd (GBytes  *body,
             gsize    max_size,
             GError **error)
{
  ZSTD_DStream *stream = ZSTD_createDStream ();
  g_autoptr(GByteArray) out = g_byte_array_new ();
  ZSTD_inBuffer in = { g_bytes_get_data (body, NULL), g_bytes_get_size (body), 0 };
  gsize last = 1;

  ZSTD_initDStream (stream);

  while (in.pos < in.size || last != 0)
    {
      guint8 buffer[16384];
      ZSTD_outBuffer o = { buffer, sizeof buffer, 0 };
      gsize progress_in = in.pos;

      last = ZSTD_decompressStream (stream, &o, &in);
      if (ZSTD_isError (last))
        {
          g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                       "request body is not valid zstd: %s", ZSTD_getErrorName (last));
          ZSTD_freeDStream (stream);
          return NULL;
        }
      if (out->len + o.pos > max_size)
        {
          g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                       "request body is larger than %" G_GSIZE_FORMAT " bytes once decompressed",
                       max_size);
          ZSTD_freeDStream (stream);
          return NULL;
        }
      g_byte_array_append (out, buffer, o.pos);

      /* Input used up and no output produced: the frame is cut short. */
      if (in.pos == in.size && o.pos == 0 && progress_in == in.pos && last != 0)
        {
          g_set_error_literal (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                               "request body's zstd frame is cut short");
          ZSTD_freeDStream (stream);
          return NULL;
        }
    }

  ZSTD_freeDStream (stream);
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

GBytes *
pooler_request_body_decode (const char  *content_encoding,
                            GBytes      *body,
                            gsize        max_size,
                            GError     **error)
{
  g_return_val_if_fail (body != NULL, NULL);

  if (content_encoding == NULL || *content_encoding == '\0' ||
      g_ascii_strcasecmp (content_encoding, "identity") == 0)
    return g_bytes_ref (body);

  if (g_ascii_strcasecmp (content_encoding, "zstd") == 0)
    return decode_zstd (body, max_size, error);

  g_set_error (error, POOLER_ERROR, POOLER_ERROR_UNSUPPORTED,
               "unsupported Content-Encoding \"%s\"", content_encoding);
  return NULL;
}
