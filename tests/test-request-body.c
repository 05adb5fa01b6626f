/* test-request-body.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <string.h>
#include <zstd.h>

#include "pooler-error.h"
#include "pooler-json-scan.h"
#include "pooler-json-skim.h"
#include "pooler-request-body.h"

static char *
load_fixture_body (gsize *length)
{
  g_autofree char *path = g_build_filename (g_getenv ("POOLER_FIXTURES_DIR"),
                                            "codex-request.json", NULL);
  g_autoptr(GError) error = NULL;
  char *contents = NULL;

  g_file_get_contents (path, &contents, length, &error);
  g_assert_no_error (error);

  return contents;
}

/* The real 38 KB body Codex CLI 0.169 sent. */
static void
test_scan_codex_body (void)
{
  gsize length;
  g_autofree char *data = load_fixture_body (&length);
  g_autoptr(GError) error = NULL;
  g_autoptr(PoolerRequestBody) body = pooler_request_body_scan (data, length, &error);

  g_assert_no_error (error);
  g_assert_nonnull (body);
  g_assert_cmpuint (length, >, 30000);
  g_assert_cmpstr (body->model, ==, "gpt-5.5");
  g_assert_true (body->has_stream);
  g_assert_true (body->stream);
  g_assert_true (body->has_input);
  g_assert_nonnull (body->prompt_cache_key);
  g_assert_cmpuint (strlen (body->prompt_cache_key), ==, 36);
  g_assert_null (body->previous_response_id);
}

static void
test_scan_escapes (void)
{
  const char *json = " {\"a\":{\"model\":\"inner\"},\"model\":\"gpt\\u002d5\\\"x\",\"k\":[1,{\"b\":\"}]\"}],"
                     "\"previous_response_id\":\"resp_\\ud83d\\ude00\",\"stream\":false,\"n\":null} ";
  g_autoptr(GError) error = NULL;
  g_autoptr(PoolerRequestBody) body = pooler_request_body_scan (json, strlen (json), &error);

  g_assert_no_error (error);
  /* Only top-level keys count: the nested "model" is not the model. */
  g_assert_cmpstr (body->model, ==, "gpt-5\"x");
  g_assert_cmpstr (body->previous_response_id, ==, "resp_\xf0\x9f\x98\x80");
  g_assert_true (body->has_stream);
  g_assert_false (body->stream);
  g_assert_false (body->has_input);
}

/* Every escape JSON has, in a value that is read (the model) and in a
 * nested string long enough for the block skim, at every offset of a
 * 64-byte block and with blocks between them that hold no backslash (so
 * an escape cut by a block's end must be carried to the next); and
 * escapes JSON does not have, in the same places. */
static void
test_scan_all_escapes (void)
{
  const char *escapes[] = { "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\u00e9" };
  const char *decoded = "\"\\/\b\f\n\r\t\xc3\xa9";
  const char *wrong[] = { "\\a", "\\x41", "\\'", "\\U0041", "\\u12\"", "\\0", "\\v", "\\e" };
  g_autoptr(GString) model = g_string_new (NULL);

  if (!pooler_json_skim_active ())
    g_test_message ("no AVX2 here: the byte loop reads every nested string");

  for (guint i = 0; i < G_N_ELEMENTS (escapes); i++)
    g_string_append (model, escapes[i]);

  for (guint pad = 0; pad < 70; pad++)
    {
      g_autoptr(GString) json = g_string_new (NULL);
      g_autoptr(GError) error = NULL;
      g_autoptr(PoolerRequestBody) body = NULL;

      g_string_printf (json, "{\"model\":\"%s\",\"input\":[{\"text\":\"%*s", model->str, (int) pad, "");
      for (guint i = 0; i < G_N_ELEMENTS (escapes); i++)
        g_string_append_printf (json, "%s%*s", escapes[i], 131, "");
      g_string_append (json, "\"}]}");
      body = pooler_request_body_scan (json->str, json->len, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (body->model, ==, decoded);
      g_assert_true (body->has_input);

      for (guint i = 0; i < G_N_ELEMENTS (wrong); i++)
        {
          /* Skimmed (nested), then read (the model). */
          for (guint k = 0; k < 2; k++)
            {
              g_autoptr(GString) bad = g_string_new (NULL);
              g_autoptr(GError) bad_error = NULL;
              g_autoptr(PoolerRequestBody) rejected = NULL;

              if (k == 0)
                g_string_printf (bad, "{\"input\":[\"%*s%s%*s\"]}", (int) pad, "", wrong[i], 140, "");
              else
                g_string_printf (bad, "{\"model\":\"%*s%s%*s\"}", (int) pad, "", wrong[i], 140, "");
              rejected = pooler_request_body_scan (bad->str, bad->len, &bad_error);
              if (rejected != NULL)
                g_error ("accepted the escape %s after %u bytes: %s", wrong[i], pad, bad->str);
              g_assert_error (bad_error, POOLER_ERROR, POOLER_ERROR_INVALID);
            }
        }
    }
}

static void
test_scan_rejects (void)
{
  const char *bad[] = {
    "", "[]", "\"x\"", "{", "{\"model\":\"x\"", "{\"model\" \"x\"}", "{\"a\":1 \"b\":2}",
    "{\"a\":\"unterminated}", "{\"a\":1}x", "{\"a\":]}", "{\"a\":\"\\q\"}", "{model:1}",
    "{\"a\":\"ctl\x01\"}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(PoolerRequestBody) body = pooler_request_body_scan (bad[i], strlen (bad[i]), &error);

      if (body != NULL)
        g_error ("accepted bad body %u: %s", i, bad[i]);
      g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
    }
}

static void
test_scan_depth (void)
{
  g_autoptr(GString) ok = g_string_new ("{\"a\":");
  g_autoptr(GString) deep = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(PoolerRequestBody) body = NULL;

  /* 63 levels inside the top-level object: 64 in all. */
  for (guint i = 0; i < 63; i++)
    g_string_append_c (ok, '[');
  for (guint i = 0; i < 63; i++)
    g_string_append_c (ok, ']');
  g_string_append_c (ok, '}');
  body = pooler_request_body_scan (ok->str, ok->len, &error);
  g_assert_no_error (error);
  g_clear_pointer (&body, pooler_request_body_free);

  deep = g_string_new ("{\"a\":");
  for (guint i = 0; i < 100000; i++)
    g_string_append_c (deep, '[');
  body = pooler_request_body_scan (deep->str, deep->len, &error);
  g_assert_null (body);
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "deeper"));
}

/* The string scanner skips 16 bytes a step (SSE2), then eight: a stop
 * byte (quote, backslash, control character) must be found at every
 * offset of either. Bytes above 0x7f are text; one taken for a stop
 * would only cost time (the byte loop reads it right), which no test
 * here can see. */
static void
test_scan_word_boundaries (void)
{
  /* Up to 40 bytes: two 16-byte vector steps, an 8-byte word and the
   * byte loop each meet the special byte. */
  for (guint len = 0; len < 40; len++)
    {
      g_autoptr(GString) model = g_string_new (NULL);
      g_autoptr(GString) json = g_string_new ("{\"model\":\"");
      g_autoptr(GError) error = NULL;
      g_autoptr(PoolerRequestBody) body = NULL;

      for (guint i = 0; i < len; i++)
        g_string_append_c (model, i % 3 == 2 ? 'x' : "\xc3\xa9"[i % 3]);
      g_string_append_len (json, model->str, model->len);
      g_string_append (json, "\\\"q\",\"stream\":true}");
      body = pooler_request_body_scan (json->str, json->len, &error);
      g_assert_no_error (error);
      g_string_append (model, "\"q");
      g_assert_cmpstr (body->model, ==, model->str);
      g_assert_true (body->stream);

      for (guint at = 0; at <= len; at++)
        {
          g_autoptr(GString) bad = g_string_new ("{\"model\":\"");
          g_autoptr(GError) bad_error = NULL;
          g_autoptr(PoolerRequestBody) bad_body = NULL;

          for (guint i = 0; i < len; i++)
            g_string_append_c (bad, i == at ? '\x1f' : 'a');
          if (at == len)
            g_string_append_c (bad, '\n');
          g_string_append (bad, "\"}");
          bad_body = pooler_request_body_scan (bad->str, bad->len, &bad_error);
          g_assert_null (bad_body);
          g_assert_error (bad_error, POOLER_ERROR, POOLER_ERROR_INVALID);
        }
    }

  /* Escapes at every offset of a word, with '#' right after a quote and
   * ']' right after a backslash (bytes one above them, which the borrow
   * from the real match below flags too): the scan must land on the
   * first special byte, not on a flag after it. */
  for (guint at = 0; at < 40; at++)
    {
      g_autoptr(GString) json = g_string_new ("{\"model\":\"");
      g_autoptr(GString) want = g_string_new (NULL);
      g_autoptr(GError) error = NULL;
      g_autoptr(PoolerRequestBody) body = NULL;

      for (guint i = 0; i < at; i++)
        {
          g_string_append_c (json, "#]!"[i % 3]);
          g_string_append_c (want, "#]!"[i % 3]);
        }
      g_string_append (json, "\\\"#\\n\\\\]!\",\"stream\":true}");
      g_string_append (want, "\"#\n\\]!");
      body = pooler_request_body_scan (json->str, json->len, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (body->model, ==, want->str);
      g_assert_true (body->stream);
    }
}

/* Skipping a string must end where reading it ends, with the same error
 * when it is bad: seeded random strings from an alphabet of the bytes that
 * matter (quotes, backslashes, escape letters, hex digits, control bytes,
 * UTF-8), 1-80 bytes, so stops fall at every offset of a 16-byte step and
 * escapes straddle steps and the end. */
static void
test_skip_string_agrees (void)
{
  static const char alphabet[] = "\"\\\\\\unbrtf/0aF9x \x01\x1f\xc3\xa9";
  guint good = 0, bad = 0;

  for (guint round = 0; round < 50000; round++)
    {
      guint length = (guint) g_test_rand_int_range (1, 81);
      g_autoptr(GString) text = g_string_new ("\"");
      g_autoptr(GError) read_error = NULL;
      g_autoptr(GError) skip_error = NULL;
      PoolerJsonScanner reader = { 0 }, skipper = { 0 };
      gboolean read_ok, skip_ok;

      for (guint i = 0; i < length; i++)
        g_string_append_c (text, alphabet[g_test_rand_int_range (0, (gint32) sizeof alphabet - 1)]);

      reader.p = skipper.p = text->str;
      reader.end = skipper.end = text->str + text->len;
      reader.what = skipper.what = "body";
      reader.error = &read_error;
      skipper.error = &skip_error;

      read_ok = pooler_json_scan_string (&reader, NULL);
      skip_ok = pooler_json_scan_skip_string (&skipper);
      g_assert_cmpint (skip_ok, ==, read_ok);
      if (read_ok)
        {
          g_assert_true (skipper.p == reader.p);
          good++;
        }
      else
        {
          g_assert_cmpstr (skip_error->message, ==, read_error->message);
          bad++;
        }
    }

  g_test_message ("%u whole, %u bad", good, bad);
  g_assert_cmpuint (good, >, 5000);
  g_assert_cmpuint (bad, >, 5000);
}

/* Random JSON for the skim: nested objects and arrays (now and then
 * deeper than the limit), strings with backslash runs, escaped quotes,
 * \u escapes, brackets and long plain stretches, and whitespace, so that
 * block boundaries fall everywhere. */
static void gen_value (GString *out,
                       GRand   *r,
                       guint    depth);

/* Off: no \u escapes (which the skim leaves to the byte loop). */
static gboolean gen_unicode_escapes = TRUE;

static void
gen_ws (GString *out,
        GRand   *r)
{
  if (g_rand_int_range (r, 0, 4) == 0)
    g_string_append_len (out, " \n\t\r  ", g_rand_int_range (r, 1, 6));
}

static void
gen_string (GString *out,
            GRand   *r)
{
  guint n = (guint) g_rand_int_range (r, 0, g_rand_int_range (r, 0, 3) == 0 ? 200 : 12);

  g_string_append_c (out, '"');
  for (guint i = 0; i < n; i++)
    switch (g_rand_int_range (r, 0, 14))
      {
      case 0:
        for (gint k = g_rand_int_range (r, 1, 5); k > 0; k--)
          g_string_append (out, "\\\\");
        break;
      case 1:
        g_string_append (out, "\\\"");
        break;
      case 2:
        g_string_append_c (out, '\\');
        g_string_append_c (out, "\"\\/bfnrt"[g_rand_int_range (r, 0, 8)]);
        break;
      case 3:
        if (gen_unicode_escapes)
          g_string_append (out, g_rand_boolean (r) ? "\\u00e9" : "\\uD83D\\uDE00");
        break;
      case 4:
        g_string_append_c (out, "{}[],:"[g_rand_int_range (r, 0, 6)]);
        break;
      case 5:
        g_string_append (out, "\xc3\xa9");
        break;
      case 6:
        g_string_append (out, "plain text that runs on for a while, as prompts do. ");
        break;
      default:
        g_string_append_c (out, (char) g_rand_int_range (r, 0x23, 0x5B));
        break;
      }
  g_string_append_c (out, '"');
}

static void
gen_value (GString *out,
           GRand   *r,
           guint    depth)
{
  /* Containers while the document is small, then strings and atoms. */
  gboolean nest = depth < 8 && out->len < 2048;
  guint kind = (guint) g_rand_int_range (r, nest ? 0 : 6, 12);

  gen_ws (out, r);
  if (kind == 0 && g_rand_int_range (r, 0, 8) == 0)
    {
      /* A chain of arrays around the depth limit. */
      guint n = (guint) g_rand_int_range (r, 55, 70);

      for (guint i = 0; i < n; i++)
        g_string_append_c (out, '[');
      gen_string (out, r);
      for (guint i = 0; i < n; i++)
        g_string_append_c (out, ']');
    }
  else if (kind < 6)
    {
      gboolean object = kind < 3;
      guint n = (guint) g_rand_int_range (r, 0, 6);

      g_string_append_c (out, object ? '{' : '[');
      for (guint i = 0; i < n; i++)
        {
          if (i > 0)
            g_string_append_c (out, ',');
          if (object)
            {
              gen_ws (out, r);
              gen_string (out, r);
              gen_ws (out, r);
              g_string_append_c (out, ':');
            }
          gen_value (out, r, depth + 1);
        }
      gen_ws (out, r);
      g_string_append_c (out, object ? '}' : ']');
    }
  else if (kind < 10)
    gen_string (out, r);
  else
    {
      static const char * const atoms[] = { "0", "-12.5e3", "true", "false", "null", "123456789" };

      g_string_append (out, atoms[g_rand_int_range (r, 0, G_N_ELEMENTS (atoms))]);
    }
  gen_ws (out, r);
}

typedef struct
{
  gboolean  ok;
  gsize     at;
  char     *message;
} SkipResult;

static void
skip_with (const GString *doc,
           guint          depth,
           gboolean       skim,
           SkipResult    *result)
{
  g_autoptr(GError) error = NULL;
  PoolerJsonScanner s = { doc->str, doc->str + doc->len, "body", &error };

  pooler_json_skim_set_enabled (skim);
  result->ok = pooler_json_scan_skip_value (&s, depth);
  pooler_json_skim_set_enabled (TRUE);
  result->at = (gsize) (s.p - doc->str);
  result->message = error != NULL ? g_strdup (error->message) : NULL;
  g_assert_true (result->ok == (error == NULL));
}

/* Skipping a value with the skim must end where the byte loop alone
 * ends, or fail at the same byte with the same words: random documents
 * (see gen_value()), a third of them then broken at one to three bytes
 * with the bytes that matter. */
static void
test_skim_agrees (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (g_test_rand_int ());
  static const char breakers[] = "\"\\{}[]:,u\x01\x1f\n x0\0";
  guint good = 0, bad = 0;

  for (guint round = 0; round < 20000; round++)
    {
      g_autoptr(GString) doc = g_string_new (NULL);
      SkipResult with = { 0 }, without = { 0 };
      guint depth = (guint) g_rand_int_range (r, 0, 4);

      g_string_append_c (doc, g_rand_boolean (r) ? '[' : '{');
      if (doc->str[0] == '{')
        {
          gen_string (doc, r);
          g_string_append_c (doc, ':');
        }
      gen_value (doc, r, 1);
      while (doc->len < 64 * (guint) g_rand_int_range (r, 1, 12))
        {
          g_string_append_c (doc, ',');
          if (doc->str[0] == '{')
            {
              gen_string (doc, r);
              g_string_append_c (doc, ':');
            }
          gen_value (doc, r, 1);
        }
      g_string_append_c (doc, doc->str[0] == '{' ? '}' : ']');

      if (round % 3 == 0)
        for (gint k = g_rand_int_range (r, 1, 4); k > 0; k--)
          {
            gsize at = (gsize) g_rand_int_range (r, 0, (gint32) doc->len);
            char c = breakers[g_rand_int_range (r, 0, sizeof breakers - 1)];

            switch (g_rand_int_range (r, 0, 3))
              {
              case 0: doc->str[at] = c; break;
              case 1: g_string_insert_c (doc, (gssize) at, c); break;
              default: g_string_erase (doc, (gssize) at, 1); break;
              }
          }
      if (g_rand_int_range (r, 0, 10) == 0)
        g_string_truncate (doc, (gsize) g_rand_int_range (r, 1, (gint32) doc->len + 1));

      skip_with (doc, depth, TRUE, &with);
      skip_with (doc, depth, FALSE, &without);
      if (with.ok != without.ok || with.at != without.at ||
          g_strcmp0 (with.message, without.message) != 0)
        g_error ("skim and byte loop differ on %s: %s at %zu (%s) against %s at %zu (%s)", doc->str,
                 with.ok ? "whole" : "bad", with.at, with.message, without.ok ? "whole" : "bad",
                 without.at, without.message);
      if (with.ok)
        good++;
      else
        bad++;
      g_free (with.message);
      g_free (without.message);
    }

  g_test_message ("%u whole, %u bad", good, bad);
  g_assert_cmpuint (good, >, 5000);
  g_assert_cmpuint (bad, >, 3000);
}

/* Where the skim hands over, the byte loop can go on: outside strings
 * or at an opening quote, with the nesting that is left. Checked by
 * giving the loop alone that many brackets and the rest of the document:
 * it must end at the document's end. On the real Codex body the skim
 * passes over most of the input array. */
static void
test_skim_hands_over (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (g_test_rand_int ());
  gsize length;
  g_autofree char *data = load_fixture_body (&length);
  const char *input = strstr (data, "\"input\":[");
  PoolerJsonScanner s = { 0 };
  guint level = 1, valid = 0, moved = 0;

  if (!pooler_json_skim_active ())
    {
      g_test_skip ("this CPU has no AVX2, PCLMULQDQ or POPCNT: the byte loop does it all");
      return;
    }

  g_assert_nonnull (input);
  s.p = input + strlen ("\"input\":[");
  s.end = data + length;
  s.what = "body";
  pooler_json_skim (&s, &level, 1);
  g_assert_cmpuint (s.p - input, >, 20000);
  g_assert_cmpuint (level, >=, 1);

  gen_unicode_escapes = FALSE;
  for (guint round = 0; round < 5000; round++)
    {
      g_autoptr(GString) doc = g_string_new ("[");
      g_autoptr(GString) rest = NULL;
      g_autoptr(GError) error = NULL;
      PoolerJsonScanner t = { 0 };
      SkipResult whole = { 0 };

      while (doc->len < 64 * 6)
        {
          gen_value (doc, r, 1);
          g_string_append_c (doc, ',');
        }
      gen_value (doc, r, 1);
      g_string_append_c (doc, ']');
      skip_with (doc, 0, FALSE, &whole);
      g_free (whole.message);
      if (!whole.ok)
        continue;   /* nested too deep */
      valid++;

      s.p = doc->str + 1;
      s.end = doc->str + doc->len;
      level = 1;
      pooler_json_skim (&s, &level, 0);
      if (s.p == doc->str + 1)
        continue;
      moved++;

      rest = g_string_new (NULL);
      for (guint i = 0; i < level; i++)
        g_string_append_c (rest, '[');
      g_string_append_len (rest, s.p, s.end - s.p);
      t.p = rest->str;
      t.end = rest->str + rest->len;
      t.what = "rest";
      t.error = &error;
      pooler_json_skim_set_enabled (FALSE);
      if (!pooler_json_scan_skip_value (&t, 0) || t.p != t.end)
        g_error ("the skim stopped at %zu of %s with %u levels left: %s", (gsize) (s.p - doc->str),
                 doc->str, level, error != NULL ? error->message : "ends early");
      pooler_json_skim_set_enabled (TRUE);
    }
  gen_unicode_escapes = TRUE;
  g_test_message ("the skim moved in %u of %u documents", moved, valid);
  g_assert_cmpuint (valid, >, 2000);
  g_assert_cmpuint (moved, >, valid * 3 / 4);
}

static void
test_decode_zstd (void)
{
  gsize length;
  g_autofree char *data = load_fixture_body (&length);
  gsize bound = ZSTD_compressBound (length);
  g_autofree guint8 *compressed = g_malloc (bound);
  gsize csize;
  g_autoptr(GBytes) input = NULL;
  g_autoptr(GBytes) output = NULL;
  g_autoptr(GBytes) cut = NULL;
  g_autoptr(GBytes) plain = g_bytes_new_static ("{}", 2);
  g_autoptr(GBytes) same = NULL;
  g_autoptr(GError) error = NULL;
  ZSTD_CCtx *cctx = ZSTD_createCCtx ();

  /* Like Codex: a frame without content size or checksum. */
  ZSTD_CCtx_setParameter (cctx, ZSTD_c_contentSizeFlag, 0);
  ZSTD_CCtx_setParameter (cctx, ZSTD_c_checksumFlag, 0);
  csize = ZSTD_compress2 (cctx, compressed, bound, data, length);
  ZSTD_freeCCtx (cctx);
  g_assert_false (ZSTD_isError (csize));

  input = g_bytes_new (compressed, csize);
  output = pooler_request_body_decode ("zstd", input, 1024 * 1024, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (g_bytes_get_data (output, NULL), g_bytes_get_size (output), data, length);

  /* A limit below the decoded size is refused, not exceeded. */
  g_clear_pointer (&output, g_bytes_unref);
  output = pooler_request_body_decode ("zstd", input, 1000, &error);
  g_assert_null (output);
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
  g_clear_error (&error);

  cut = g_bytes_new (compressed, csize / 2);
  output = pooler_request_body_decode ("zstd", cut, 1024 * 1024, &error);
  g_assert_null (output);
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
  g_clear_error (&error);

  output = pooler_request_body_decode ("br", plain, 1024, &error);
  g_assert_null (output);
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_UNSUPPORTED);
  g_clear_error (&error);

  same = pooler_request_body_decode (NULL, plain, 1024, &error);
  g_assert_no_error (error);
  g_assert_true (same == plain);
}

static void
test_model_name (void)
{
  g_autofree char *longest = g_strnfill (POOLER_MODEL_MAX_LENGTH, 'm');
  g_autofree char *too_long = g_strnfill (POOLER_MODEL_MAX_LENGTH + 1, 'm');
  const char *good[] = { "gpt-5.1-codex-max", "pooler-test", "bench/gpt-5", "o4-mini:2025@x_y" };
  const char *bad[] = { "", "gpt 5", "gpt-5\n", "gpt-\x7f", "mod\xc3\xa8le", "\t" };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    g_assert_true (pooler_model_name_ok (good[i]));
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    g_assert_false (pooler_model_name_ok (bad[i]));
  g_assert_true (pooler_model_name_ok (longest));
  g_assert_false (pooler_model_name_ok (too_long));
  g_assert_false (pooler_model_name_ok (NULL));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/request-body/scan-codex-body", test_scan_codex_body);
  g_test_add_func ("/request-body/model-name", test_model_name);
  g_test_add_func ("/request-body/scan-escapes", test_scan_escapes);
  g_test_add_func ("/request-body/scan-all-escapes", test_scan_all_escapes);
  g_test_add_func ("/request-body/scan-rejects", test_scan_rejects);
  g_test_add_func ("/request-body/scan-depth", test_scan_depth);
  g_test_add_func ("/request-body/scan-word-boundaries", test_scan_word_boundaries);
  g_test_add_func ("/request-body/skip-string-agrees", test_skip_string_agrees);
  g_test_add_func ("/request-body/skim-agrees", test_skim_agrees);
  g_test_add_func ("/request-body/skim-hands-over", test_skim_hands_over);
  g_test_add_func ("/request-body/decode-zstd", test_decode_zstd);

  return g_test_run ();
}
