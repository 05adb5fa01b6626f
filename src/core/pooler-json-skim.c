/* pooler-json-skim.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-json-skim"

#include "config.h"

#include "pooler-json.h"
#include "pooler-json-skim.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define SKIM_X86 1
#include <immintrin.h>
#endif

static gint skim_enabled = 1;

void
pooler_json_skim_set_enabled (gboolean enabled)
{
  g_atomic_int_set (&skim_enabled, enabled ? 1 : 0);
}

#ifdef SKIM_X86

#define SKIM_TARGET __attribute__ ((target ("avx2,pclmul,popcnt")))

static gboolean
cpu_can_skim (void)
{
  static gsize checked = 0;   /* 1 + whether it can */

  if (g_once_init_enter (&checked))
    {
      gboolean can;

      __builtin_cpu_init ();
      can = __builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("pclmul") &&
            __builtin_cpu_supports ("popcnt");
      g_once_init_leave (&checked, 1 + (gsize) can);
    }
  return checked == 2;
}

/* One bit per byte of a 64-byte block. */
typedef struct
{
  guint64 backslash;
  guint64 quote;
  guint64 control;   /* 0x00-0x1F */
  guint64 open;      /* '{' or '[' */
  guint64 close;     /* '}' or ']' */
} Block;

SKIM_TARGET static inline guint64
bits_of (__m256i lo,
         __m256i hi)
{
  return (guint64) (guint32) _mm256_movemask_epi8 (lo) |
         ((guint64) (guint32) _mm256_movemask_epi8 (hi) << 32);
}

SKIM_TARGET static inline void
classify (const char *p,
          Block      *b)
{
  const __m256i backslash = _mm256_set1_epi8 ('\\');
  const __m256i quote = _mm256_set1_epi8 ('"');
  const __m256i control = _mm256_set1_epi8 (0x1F);
  /* '[' and ']' are '{' and '}' less 0x20: set that bit and compare once. */
  const __m256i fold = _mm256_set1_epi8 (0x20);
  const __m256i open = _mm256_set1_epi8 ('{');
  const __m256i close = _mm256_set1_epi8 ('}');
  __m256i lo = _mm256_loadu_si256 ((const __m256i *) (const void *) p);
  __m256i hi = _mm256_loadu_si256 ((const __m256i *) (const void *) (p + 32));
  __m256i lo_folded = _mm256_or_si256 (lo, fold);
  __m256i hi_folded = _mm256_or_si256 (hi, fold);

  b->backslash = bits_of (_mm256_cmpeq_epi8 (lo, backslash), _mm256_cmpeq_epi8 (hi, backslash));
  b->quote = bits_of (_mm256_cmpeq_epi8 (lo, quote), _mm256_cmpeq_epi8 (hi, quote));
  /* min(x, 0x1F) == x: x is 0x00-0x1F, compared without sign. */
  b->control = bits_of (_mm256_cmpeq_epi8 (_mm256_min_epu8 (lo, control), lo),
                        _mm256_cmpeq_epi8 (_mm256_min_epu8 (hi, control), hi));
  b->open = bits_of (_mm256_cmpeq_epi8 (lo_folded, open), _mm256_cmpeq_epi8 (hi_folded, open));
  b->close = bits_of (_mm256_cmpeq_epi8 (lo_folded, close), _mm256_cmpeq_epi8 (hi_folded, close));
}

/* Whether the block holds no quote, backslash or control byte: inside a
 * string, nothing in it matters (about half the Codex body's blocks, in
 * its long prompt strings). */
SKIM_TARGET static inline gboolean
plain_text (const char *p)
{
  const __m256i backslash = _mm256_set1_epi8 ('\\');
  const __m256i quote = _mm256_set1_epi8 ('"');
  const __m256i control = _mm256_set1_epi8 (0x1F);
  __m256i lo = _mm256_loadu_si256 ((const __m256i *) (const void *) p);
  __m256i hi = _mm256_loadu_si256 ((const __m256i *) (const void *) (p + 32));
  __m256i special_lo = _mm256_or_si256 (_mm256_or_si256 (_mm256_cmpeq_epi8 (lo, quote),
                                                         _mm256_cmpeq_epi8 (lo, backslash)),
                                        _mm256_cmpeq_epi8 (_mm256_min_epu8 (lo, control), lo));
  __m256i special_hi = _mm256_or_si256 (_mm256_or_si256 (_mm256_cmpeq_epi8 (hi, quote),
                                                         _mm256_cmpeq_epi8 (hi, backslash)),
                                        _mm256_cmpeq_epi8 (_mm256_min_epu8 (hi, control), hi));
  __m256i special = _mm256_or_si256 (special_lo, special_hi);

  return _mm256_testz_si256 (special, special);
}

SKIM_TARGET static inline guint64
nul_bytes (const char *p)
{
  const __m256i zero = _mm256_setzero_si256 ();
  __m256i lo = _mm256_loadu_si256 ((const __m256i *) (const void *) p);
  __m256i hi = _mm256_loadu_si256 ((const __m256i *) (const void *) (p + 32));

  return bits_of (_mm256_cmpeq_epi8 (lo, zero), _mm256_cmpeq_epi8 (hi, zero));
}

/* Bit i of the result is the XOR of bits 0..i: a carry-less product with
 * all ones. Over quote bits, it is 1 from an opening quote up to the byte
 * before its closing one. */
SKIM_TARGET static inline guint64
prefix_xor (guint64 bits)
{
  __m128i product = _mm_clmulepi64_si128 (_mm_set_epi64x (0, (long long) bits),
                                          _mm_set1_epi8 ((char) 0xFF), 0);

  return (guint64) _mm_cvtsi128_si64 (product);
}

/* The bytes that backslashes escape. In a run of backslashes they escape
 * each other in pairs, so a run escapes the byte after it when its length
 * is odd. Adding a run's first bit to the run carries to the byte after
 * it; a run from an even byte has odd length when that byte is odd, and
 * the other way round. *carry: in, whether byte 0 is escaped from the
 * block before (then it starts no run); out, whether the next block's
 * byte 0 is (a run from an odd byte that reaches the end). */
static inline guint64
escaped_bytes (guint64  backslash,
               guint64 *carry)
{
  const guint64 even = G_GUINT64_CONSTANT (0x5555555555555555);
  guint64 first = *carry;
  guint64 runs = backslash & ~first;
  guint64 starts = runs & ~(runs << 1);
  unsigned long long after_even, after_odd;

  (void) __builtin_uaddll_overflow (runs, starts & even, &after_even);
  *carry = (guint64) __builtin_uaddll_overflow (runs, starts & ~even, &after_odd);

  return first | (after_even & ~runs & ~even) | (after_odd & ~runs & even);
}

/* Whether every escaped byte of the block ends a two-byte escape (a block
 * with \uXXXX goes to the byte loop, which checks the four hex digits). */
static inline gboolean
plain_escapes (const char *p,
               guint64     escaped)
{
  for (; escaped != 0; escaped &= escaped - 1)
    if (!pooler_json_is_short_escape (p[__builtin_ctzll (escaped)]))
      return FALSE;
  return TRUE;
}

/* Whether the brackets, taken in order from nesting @level, keep it
 * at 1 or more and within the limit (few blocks need this walk: the
 * Codex body has a bracket every ~200 bytes). */
static inline gboolean
nesting_stays_inside (guint64 opens,
                      guint64 closes,
                      guint   level,
                      guint   depth)
{
  for (guint64 all = opens | closes; all != 0; all &= all - 1)
    {
      if ((opens & all & -all) != 0)
        {
          if (depth + ++level > POOLER_JSON_MAX_DEPTH)
            return FALSE;
        }
      else if (--level == 0)
        return FALSE;
    }
  return TRUE;
}

SKIM_TARGET static void
skim_blocks (PoolerJsonScanner *s,
             guint             *level_inout,
             guint              depth)
{
  const char *p = s->p;
  guint level = *level_inout;
  guint64 escape_carry = 0;
  guint64 in_string = 0;           /* all ones while a string runs past a block */
  const char *open_quote = NULL;   /* that string's opening quote */

  while (s->end - p >= 64)
    {
      Block b;
      guint64 carry = escape_carry;
      guint64 escaped, quotes, inside, opens, closes;
      guint n_open, n_close;

      /* Within a string (and not right after a backslash): plain text
       * passes at once. */
      if (in_string != 0 && escape_carry == 0 && plain_text (p))
        {
          p += 64;
          continue;
        }

      classify (p, &b);
      escaped = (b.backslash | escape_carry) != 0 ? escaped_bytes (b.backslash, &carry) : 0;
      quotes = b.quote & ~escaped;
      inside = prefix_xor (quotes) ^ in_string;

      /* What the byte loop must see: a backslash outside a string (the
       * first one's bit is exact; the rest of the block is read wrongly
       * after it), a control byte in one, an escape that is not plain, a
       * NUL outside one (the loop takes other control bytes there, as
       * whitespace or in a bare word). */
      if ((b.backslash & ~inside) != 0 || (b.control & inside) != 0 ||
          (escaped != 0 && !plain_escapes (p, escaped)) ||
          ((b.control & ~inside) != 0 && (nul_bytes (p) & ~inside) != 0))
        break;

      opens = b.open & ~inside;
      closes = b.close & ~inside;
      n_open = (guint) __builtin_popcountll (opens);
      n_close = (guint) __builtin_popcountll (closes);
      /* The value could end in this block, or nest too deep: the loop
       * finds where, or says so. */
      if ((n_close >= level || depth + level + n_open > POOLER_JSON_MAX_DEPTH) &&
          !nesting_stays_inside (opens, closes, level, depth))
        break;

      if ((inside >> 63) != 0)
        {
          /* A string runs past the block. If it began here, its opening
           * quote is the last real one (no bracket outside a string
           * follows it, so the nesting there is the block's end's). */
          guint64 opening = quotes & inside;

          if (opening != 0)
            open_quote = p + 63 - __builtin_clzll (opening);
          in_string = ~G_GUINT64_CONSTANT (0);
        }
      else
        in_string = 0;

      level = level + n_open - n_close;
      escape_carry = carry;
      p += 64;
    }

  /* Hand over where the loop can go on: the start of the block it must
   * read, or the opening quote of the string that runs into it. */
  s->p = in_string != 0 ? open_quote : p;
  *level_inout = level;
}

gboolean
pooler_json_skim_active (void)
{
  return g_atomic_int_get (&skim_enabled) && cpu_can_skim ();
}

void
pooler_json_skim (PoolerJsonScanner *s,
                  guint             *level,
                  guint              depth)
{
  g_assert (*level >= 1);

  if (s->end - s->p >= 64 && pooler_json_skim_active ())
    skim_blocks (s, level, depth);
}

#else /* !SKIM_X86 */

gboolean
pooler_json_skim_active (void)
{
  return FALSE;
}

void
pooler_json_skim (PoolerJsonScanner *s,
                  guint             *level,
                  guint              depth)
{
  (void) s;
  (void) level;
  (void) depth;
}

#endif
