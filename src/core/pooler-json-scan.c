/* pooler-json-scan.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-json-scan"

#include "config.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "pooler-error.h"
#include "pooler-json.h"
#include "pooler-json-scan.h"
#include "pooler-json-skim.h"

gboolean
pooler_json_scan_fail (PoolerJsonScanner *s,
                       const char        *message)
{
  if (s->error != NULL && *s->error == NULL)
    g_set_error (s->error, POOLER_ERROR, POOLER_ERROR_INVALID, "%s %s", s->what, message);
  return FALSE;
}

void
pooler_json_scan_skip_ws (PoolerJsonScanner *s)
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

/* The high bit of each byte of @x that is a quote, a backslash or a
 * control character (below 0x20): the bytes that end a run of plain
 * string text. A borrow can flag bytes above a real one too, but the
 * lowest flag is always exact. */
static inline guint64
swar_special_mask (guint64 x)
{
  guint64 quote = x ^ (SWAR_ONES * '"');
  guint64 backslash = x ^ (SWAR_ONES * '\\');
  guint64 zero_q = (quote - SWAR_ONES) & ~quote;
  guint64 zero_b = (backslash - SWAR_ONES) & ~backslash;
  guint64 below = (x - SWAR_ONES * 0x20) & ~x;

  return (zero_q | zero_b | below) & SWAR_HIGHS;
}

/* Past the plain string text at @p, which is nearly all of a 38 KB
 * request: at the first quote, backslash or control character, or close
 * enough to @end (or, on a big-endian machine, to the special byte) that
 * the caller's byte loop finds it. SSE2 (every x86-64) takes 16 bytes a
 * step; elsewhere eight at a time in a 64-bit word. */
static inline const char *
skip_plain (const char *p,
            const char *end)
{
#ifdef __SSE2__
  const __m128i quote = _mm_set1_epi8 ('"');
  const __m128i backslash = _mm_set1_epi8 ('\\');
  const __m128i control = _mm_set1_epi8 (0x1F);

  while (end - p >= 16)
    {
      __m128i x = _mm_loadu_si128 ((const __m128i *) (const void *) p);
      /* min(x, 0x1F) == x: x is 0x00-0x1F, compared without sign. */
      __m128i special = _mm_or_si128 (_mm_or_si128 (_mm_cmpeq_epi8 (x, quote),
                                                    _mm_cmpeq_epi8 (x, backslash)),
                                      _mm_cmpeq_epi8 (_mm_min_epu8 (x, control), x));
      int mask = _mm_movemask_epi8 (special);

      if (mask != 0)
        return p + __builtin_ctz ((unsigned) mask);
      p += 16;
    }
#endif
  while (end - p >= 8)
    {
      guint64 x, mask;

      memcpy (&x, p, sizeof x);
      mask = swar_special_mask (x);
      if (mask != 0)
        {
#if G_BYTE_ORDER == G_LITTLE_ENDIAN
          p += __builtin_ctzll (mask) / 8;
#endif
          break;
        }
      p += 8;
    }
  return p;
}

/* The rest of a string, from s->p just inside it. When @out is not NULL
 * the unescaped text is appended to it. */
static gboolean
string_rest (PoolerJsonScanner *s,
             GString           *out)
{
  while (s->p < s->end)
    {
      const char *run = s->p;

      s->p = skip_plain (s->p, s->end);
      while (s->p < s->end && *s->p != '"' && *s->p != '\\')
        {
          if ((guchar) *s->p < 0x20)
            return pooler_json_scan_fail (s, "has a control character inside a string");
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
              return pooler_json_scan_fail (s, "has a bad \\u escape");
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
          return pooler_json_scan_fail (s, "has a bad escape in a string");
        }
    }

  return pooler_json_scan_fail (s, "ends inside a string");
}

/* Reads a string at s->p (which is at the opening quote). When @out is not
 * NULL the unescaped text is appended to it. */
gboolean
pooler_json_scan_string (PoolerJsonScanner *s,
                         GString           *out)
{
  g_assert (s->p < s->end && *s->p == '"');
  s->p++;

  return string_rest (s, out);
}

/* pooler_json_is_short_escape()'s letters. */
const guint8 pooler_json_short_escape[256] = {
  ['"'] = 1, ['\\'] = 1, ['/'] = 1, ['b'] = 1, ['f'] = 1, ['n'] = 1, ['r'] = 1, ['t'] = 1,
};

/* The length of the plain escape at @q (a backslash, with at least two
 * bytes from it to the end): 2, 6 for \uXXXX, or 0 when it is anything
 * else (then string_rest() says what is wrong). */
static inline gsize
escape_length (const char *q,
               const char *end)
{
  gunichar c;

  if (pooler_json_is_short_escape (q[1]))
    return 2;
  if (q[1] == 'u')
    return end - q >= 6 && read_hex4 (q + 2, &c) ? 6 : 0;
  return 0;
}

gboolean
pooler_json_scan_skip_string (PoolerJsonScanner *s)
{
  const char *p;

  g_assert (s->p < s->end && *s->p == '"');
  p = s->p + 1;

#ifdef __SSE2__
  {
    const __m128i quote = _mm_set1_epi8 ('"');
    const __m128i backslash = _mm_set1_epi8 ('\\');
    const __m128i control = _mm_set1_epi8 (0x1F);

    /* 16 bytes a step, and every stop in a step taken from its mask:
     * the Codex body has a quote or a backslash every ~30 bytes, and
     * going back to a loop head for each cost more than the bytes. */
    while (s->end - p >= 16)
      {
        __m128i x = _mm_loadu_si128 ((const __m128i *) (const void *) p);
        __m128i special = _mm_or_si128 (_mm_or_si128 (_mm_cmpeq_epi8 (x, quote),
                                                      _mm_cmpeq_epi8 (x, backslash)),
                                        _mm_cmpeq_epi8 (_mm_min_epu8 (x, control), x));
        unsigned mask = (unsigned) _mm_movemask_epi8 (special);
        const char *next = p + 16;

        while (mask != 0)
          {
            const char *q = p + __builtin_ctz (mask);
            gsize length;

            if (*q == '"')
              {
                s->p = q + 1;
                return TRUE;
              }
            /* A control byte, a bad escape or one cut short: the slow
             * path from here says which. */
            if (*q != '\\' || s->end - q < 2 || (length = escape_length (q, s->end)) == 0)
              {
                s->p = q;
                return string_rest (s, NULL);
              }
            if (q + length >= p + 16)
              {
                next = q + length;
                break;
              }
            mask &= ~0u << (q + length - p);
          }
        p = next;
      }
  }
#endif

  s->p = p;
  return string_rest (s, NULL);
}

/* Skips one value of any kind, nested ones included, checking depth. */
gboolean
pooler_json_scan_skip_value (PoolerJsonScanner *s,
                             guint              depth)
{
  guint level = 0;

  pooler_json_scan_skip_ws (s);
  if (s->p >= s->end)
    return pooler_json_scan_fail (s, "is cut short");

  do
    {
      pooler_json_scan_skip_ws (s);
      if (s->p >= s->end)
        return pooler_json_scan_fail (s, "is cut short");

      switch (*s->p)
        {
        case '"':
          if (!pooler_json_scan_skip_string (s))
            return FALSE;
          break;
        case '{': case '[':
          if (depth + level + 1 > POOLER_JSON_MAX_DEPTH)
            return pooler_json_scan_fail (s, "nests deeper than 64 levels");
          level++;
          s->p++;
          pooler_json_skim (s, &level, depth);
          break;
        case '}': case ']':
          if (level == 0)
            return pooler_json_scan_fail (s, "has an unexpected closing bracket");
          level--;
          s->p++;
          break;
        case ',': case ':':
          if (level == 0)
            return pooler_json_scan_fail (s, "has a misplaced separator");
          s->p++;
          break;
        default:
          {
            const char *start = s->p;

            while (s->p < s->end && strchr (",:{}[]\" \t\r\n", *s->p) == NULL)
              s->p++;
            if (s->p == start)
              return pooler_json_scan_fail (s, "has an unexpected character");
          }
          break;
        }
    }
  while (level > 0);

  return TRUE;
}

gboolean
pooler_json_scan_literal (PoolerJsonScanner *s,
                          const char        *word)
{
  gsize n = strlen (word);

  if ((gsize) (s->end - s->p) >= n && memcmp (s->p, word, n) == 0)
    {
      s->p += n;
      return TRUE;
    }

  return FALSE;
}

gboolean
pooler_json_scan_object (PoolerJsonScanner    *s,
                         guint                 depth,
                         PoolerJsonMemberFunc  func,
                         gpointer              user_data)
{
  /* Room for any usual key: growing from nothing cost a realloc or two
   * per object. */
  g_autoptr(GString) key = g_string_sized_new (POOLER_JSON_KEY_SIZE);

  pooler_json_scan_skip_ws (s);
  if (s->p >= s->end || *s->p != '{')
    return pooler_json_scan_fail (s, "has a value that should be an object");
  if (depth + 1 > POOLER_JSON_MAX_DEPTH)
    return pooler_json_scan_fail (s, "nests deeper than 64 levels");
  s->p++;
  pooler_json_scan_skip_ws (s);
  if (s->p < s->end && *s->p == '}')
    {
      s->p++;
      return TRUE;
    }

  for (;;)
    {
      gboolean failed = FALSE;

      pooler_json_scan_skip_ws (s);
      if (s->p >= s->end || *s->p != '"')
        return pooler_json_scan_fail (s, "has a malformed object key");
      g_string_truncate (key, 0);
      if (!pooler_json_scan_string (s, key))
        return FALSE;
      pooler_json_scan_skip_ws (s);
      if (s->p >= s->end || *s->p != ':')
        return pooler_json_scan_fail (s, "is missing a ':' after a key");
      s->p++;
      pooler_json_scan_skip_ws (s);

      if (!func (s, key->str, depth + 1, &failed, user_data))
        {
          if (failed || !pooler_json_scan_skip_value (s, depth + 1))
            return FALSE;
        }
      else if (failed)
        return FALSE;

      pooler_json_scan_skip_ws (s);
      if (s->p < s->end && *s->p == ',')
        {
          s->p++;
          continue;
        }
      if (s->p < s->end && *s->p == '}')
        {
          s->p++;
          return TRUE;
        }
      return pooler_json_scan_fail (s, s->p >= s->end ? "is cut short"
                                                      : "is missing a ',' between members");
    }
}

gboolean
pooler_json_scan_int (PoolerJsonScanner *s,
                      guint              depth,
                      gint64            *out)
{
  const char *start;
  gboolean negative = FALSE;
  guint64 value = 0;

  pooler_json_scan_skip_ws (s);
  start = s->p;
  if (s->p < s->end && *s->p == '-')
    {
      negative = TRUE;
      s->p++;
    }
  while (s->p < s->end && g_ascii_isdigit (*s->p) && value <= G_MAXINT64 / 10)
    value = value * 10 + (guint64) (*s->p++ - '0');

  /* Not a plain integer (a fraction, an exponent, another type, too
   * long): skipped whole. */
  if (s->p == start + negative || value > G_MAXINT64 ||
      (s->p < s->end && strchr (".eE0123456789", *s->p) != NULL && *s->p != '\0'))
    {
      s->p = start;
      return pooler_json_scan_skip_value (s, depth);
    }

  *out = negative ? -(gint64) value : (gint64) value;
  return TRUE;
}
