/* test-http-head.c: the hot path's strict head parser, against libsoup's.
 *
 * Whatever the strict parser takes must come out as libsoup parses it;
 * what it declines goes to libsoup. Hand-made heads pin what is taken and
 * what is declined, and seeded random mutations of a real answer's head
 * compare the two parsers on heads nobody wrote down.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <string.h>

#include "pooler-http-fields.h"
#include "pooler-http-head.h"
#include "test-headers.h"

/* The head of an answer as the fixtures' upstream sends it. */
static const char plain_head[] =
  "HTTP/1.1 200 OK\r\n"
  "Date: Tue, 24 Nov 2026 10:00:00 GMT\r\n"
  "Content-Type: text/event-stream; charset=utf-8\r\n"
  "Transfer-Encoding: chunked\r\n"
  "Connection: keep-alive\r\n"
  "x-codex-primary-used-percent: 12.5\r\n"
  "x-codex-primary-window-minutes:300\r\n"
  "x-codex-primary-reset-at: 1795491436 \r\n"
  "X-Codex-Secondary-Used-Percent:\t3\t\r\n"
  "x-request-id: req_abc\r\n"
  "Set-Cookie: a=1\r\n"
  "Set-Cookie: b=2\r\n"
  "x-empty:\r\n"
  "cf-ray: 8f0c-AMS\r\n"
  "\r\n";

/* The strict parse of an answer's head (its status line, then
 * PoolerHttpFields): the fields as SoupMessageHeaders, NULL when it
 * declined. */
static SoupMessageHeaders *
parse_strict (const char *head,
              gsize       length,
              guint       max_fields,
              guint      *status)
{
  const char *lines = pooler_http_parse_status_line (head, length, status);
  g_autoptr(PoolerHttpFields) fields = NULL;

  if (lines == NULL)
    return NULL;
  fields = pooler_http_fields_parse (lines, head + length, max_fields, POOLER_HTTP_FIELDS_ASCII_ONLY);
  if (fields == NULL)
    return NULL;
  return pooler_http_fields_to_soup (fields, SOUP_MESSAGE_HEADERS_RESPONSE);
}

/* Parses @head both ways; returns whether the strict parser took it, and
 * checks that it then agrees with libsoup and that @head is unchanged. */
static gboolean
compare (const char *head,
         gsize       length)
{
  g_autofree char *copy = g_memdup2 (head, length);
  g_autoptr(SoupMessageHeaders) strict = NULL;
  g_autoptr(SoupMessageHeaders) soup = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  SoupHTTPVersion soup_version = 0;
  guint strict_status = 0, soup_status = 0;

  strict = parse_strict (copy, length, 100, &strict_status);
  g_assert_cmpmem (copy, length, head, length);
  if (strict == NULL)
    return FALSE;

  g_assert_true (soup_headers_parse_response (head, (int) length, soup, &soup_version, &soup_status, NULL));
  g_assert_cmpuint (strict_status, ==, soup_status);
  g_assert_cmpint (soup_version, ==, SOUP_HTTP_1_1);
  g_assert_true (test_headers_same (strict, soup));
  return TRUE;
}

static gboolean
compare_string (const char *head)
{
  return compare (head, strlen (head));
}

static void
test_plain_taken (void)
{
  g_autoptr(SoupMessageHeaders) headers = NULL;
  guint status = 0;

  g_assert_true (compare_string (plain_head));
  g_assert_true (compare_string ("HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n"));
  g_assert_true (compare_string ("HTTP/1.1 204\r\n\r\n"));
  g_assert_true (compare_string ("HTTP/1.1 100 Continue\r\n\r\n"));
  g_assert_true (compare_string ("HTTP/1.1 502 Bad \x80 Gateway\r\nA: b\r\n\r\n"));

  headers = parse_strict (plain_head, strlen (plain_head), 100, &status);
  g_assert_nonnull (headers);
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpstr (soup_message_headers_get_one (headers, "x-codex-primary-reset-at"), ==, "1795491436");
  g_assert_cmpstr (soup_message_headers_get_one (headers, "x-codex-secondary-used-percent"), ==, "3");
  g_assert_cmpstr (soup_message_headers_get_list (headers, "Set-Cookie"), ==, "a=1, b=2");
  g_assert_cmpint (soup_message_headers_get_encoding (headers), ==, SOUP_ENCODING_CHUNKED);
}

/* Not plain: declined (and then libsoup's, whatever it makes of it). */
static void
test_odd_declined (void)
{
  static const char * const odd[] = {
    "HTTP/1.1 200 OK\r\nA: folded\r\n  line\r\n\r\n",          /* obs-fold */
    "HTTP/1.1 200 OK\r\nA: caf\xc3\xa9\r\n\r\n",               /* non-ASCII value */
    "HTTP/1.1 200 OK\r\nA: bad\xff\r\n\r\n",
    "HTTP/1.1 200 OK\nA: b\n\n",                                /* bare LF */
    "HTTP/1.1 200 OK\r\nA: b\nC: d\r\n\r\n",
    "HTTP/1.1 200 OK\r\nA b\r\n\r\n",                          /* no colon */
    "HTTP/1.1 200 OK\r\n: b\r\n\r\n",                          /* no name */
    "HTTP/1.1 200 OK\r\nA : b\r\n\r\n",                        /* space before colon */
    "HTTP/1.1 200 OK\r\nA\x01: b\r\n\r\n",
    "HTTP/1.1 200 OK\r\nA: b\x01\r\n\r\n",
    "HTTP/1.1 200 OK\r\nA: b\x7f\r\n\r\n",
    "HTTP/1.1 200 OK\x01\r\n\r\n",                             /* control in the reason */
    /* HTTP/1.0: libsoup drops the fields Connection names (here the
     * length, so the body runs to the end of the connection). */
    "HTTP/1.0 200 OK\r\nConnection: keep-alive, Content-Length\r\nContent-Length: 5\r\n\r\n",
    "HTTP/1.0 200 OK\r\n\r\n",
    "HTTP/2 200 OK\r\n\r\n",
    "HTTP/1.2 200 OK\r\n\r\n",
    "http/1.1 200 OK\r\n\r\n",
    "HTTP/1.1 20 OK\r\n\r\n",
    "HTTP/1.1 2000 OK\r\n\r\n",
    "HTTP/1.1 099 OK\r\n\r\n",
    "HTTP/1.1  200 OK\r\n\r\n",
    "ICY 200 OK\r\n\r\n",
    "HTTP/1.1 200 OK\r\n",                                     /* no empty line */
    "HTTP/1.1 200 OK\r\nA: b\r\n",
  };

  for (guint i = 0; i < G_N_ELEMENTS (odd); i++)
    {
      g_test_message ("head %u", i);
      g_assert_false (compare_string (odd[i]));
    }
}

static void
test_field_limit (void)
{
  g_autoptr(GString) head = g_string_new ("HTTP/1.1 200 OK\r\n");
  g_autoptr(GString) many = g_string_new ("HTTP/1.1 200 OK\r\n");
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(SoupMessageHeaders) too_many = NULL;
  guint status;

  for (guint i = 0; i < 3; i++)
    g_string_append_printf (head, "X-%u: %u\r\n", i, i);
  g_string_append (head, "\r\n");

  g_assert_null (parse_strict (head->str, head->len, 2, &status));
  headers = parse_strict (head->str, head->len, 3, &status);
  g_assert_nonnull (headers);
  g_assert_cmpstr (soup_message_headers_get_one (headers, "X-2"), ==, "2");

  /* Past the parser's own bound, whatever the caller allows: libsoup's. */
  for (guint i = 0; i < 129; i++)
    g_string_append_printf (many, "X-%u: %u\r\n", i, i);
  g_string_append (many, "\r\n");
  too_many = parse_strict (many->str, many->len, 1000, &status);
  g_assert_null (too_many);
}

/* Requests keep any byte above 0x7f in a value (the hot path always took
 * them); answers leave those to libsoup. */
static void
test_request_fields_any_bytes (void)
{
  char fields[] = "Session-Id: caf\xc3\xa9\r\nX-A:  b \r\n\r\n";
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  g_autoptr(SoupMessageHeaders) ascii = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  char *end = fields + strlen (fields);

  g_assert_true (pooler_http_parse_fields (fields, end, 10, POOLER_HTTP_FIELDS_ANY_BYTES, headers));
  g_assert_cmpstr (soup_message_headers_get_one (headers, "session-id"), ==, "caf\xc3\xa9");
  g_assert_cmpstr (soup_message_headers_get_one (headers, "x-a"), ==, "b");
  g_assert_false (pooler_http_parse_fields (fields, end, 10, POOLER_HTTP_FIELDS_ASCII_ONLY, ascii));
  g_assert_cmpstr (fields, ==, "Session-Id: caf\xc3\xa9\r\nX-A:  b \r\n\r\n");
}

/* Seeded random edits of the plain head: one to three bytes replaced,
 * inserted or removed, from an alphabet rich in the bytes that matter. */
static void
test_mutations_agree (void)
{
  static const char alphabet[] = "\r\n :\t\x01\x7f\x80\xc3\xa9" "Aa0-_/.HTTP1";
  gsize plain_length = strlen (plain_head);
  guint taken = 0, declined = 0;

  for (guint round = 0; round < 20000; round++)
    {
      g_autoptr(GString) head = g_string_new_len (plain_head, (gssize) plain_length);
      guint edits = (guint) g_test_rand_int_range (1, 4);

      for (guint e = 0; e < edits && head->len > 0; e++)
        {
          gsize at = (gsize) g_test_rand_int_range (0, (gint32) head->len);
          char byte = alphabet[g_test_rand_int_range (0, (gint32) sizeof alphabet - 1)];

          switch (g_test_rand_int_range (0, 3))
            {
            case 0:
              head->str[at] = byte;
              break;
            case 1:
              g_string_insert_c (head, (gssize) at, byte);
              break;
            default:
              g_string_erase (head, (gssize) at, 1);
              break;
            }
        }

      /* The caller hands over what ends with the first empty line. */
      {
        const char *blank = g_strstr_len (head->str, (gssize) head->len, "\r\n\r\n");

        if (blank == NULL)
          continue;
        if (compare (head->str, (gsize) (blank + 4 - head->str)))
          taken++;
        else
          declined++;
      }
    }

  g_test_message ("%u taken, %u declined", taken, declined);
  /* Both kinds happen, or the comparison proves little. */
  g_assert_cmpuint (taken, >, 1000);
  g_assert_cmpuint (declined, >, 1000);
}

/* PoolerHttpFields: every field in order, duplicates kept, names as
 * spelled and found in any case; the media type read as libsoup reads
 * it for the one question the hot path asks; the same fields again from
 * SoupMessageHeaders. The head itself is left as it was. */
static void
test_fields (void)
{
  const char *lines = NULL;
  g_autoptr(PoolerHttpFields) fields = NULL;
  g_autoptr(PoolerHttpFields) again = NULL;
  g_autoptr(SoupMessageHeaders) headers = NULL;
  gsize length = strlen (plain_head);
  g_autofree char *copy = g_memdup2 (plain_head, length);
  guint status = 0;
  static const struct { const char *value; gboolean is_sse; } types[] = {
    { "text/event-stream", TRUE },
    { "text/event-stream; charset=utf-8", TRUE },
    { "Text/Event-Stream;charset=utf-8", TRUE },
    { "text/event-stream \t; x=1", TRUE },
    { "text/event-streams", FALSE },
    { "text/event", FALSE },
    { "application/json", FALSE },
    { "", FALSE },
  };

  lines = pooler_http_parse_status_line (copy, length, &status);
  g_assert_nonnull (lines);
  fields = pooler_http_fields_parse (lines, copy + length, 100, POOLER_HTTP_FIELDS_ASCII_ONLY);
  g_assert_nonnull (fields);
  g_assert_cmpmem (copy, length, plain_head, length);

  g_assert_cmpuint (pooler_http_fields_get_n (fields), ==, 13);
  g_assert_cmpstr (pooler_http_fields_get (fields, 0)->name, ==, "Date");
  g_assert_cmpstr (pooler_http_fields_get (fields, 6)->value, ==, "1795491436");
  g_assert_cmpstr (pooler_http_fields_get (fields, 7)->name, ==, "X-Codex-Secondary-Used-Percent");
  g_assert_cmpstr (pooler_http_fields_get (fields, 7)->value, ==, "3");
  g_assert_cmpstr (pooler_http_fields_get (fields, 11)->value, ==, "");
  g_assert_cmpstr (pooler_http_fields_find (fields, "SET-COOKIE"), ==, "a=1");
  g_assert_cmpstr (pooler_http_fields_find (fields, "x-codex-secondary-used-percent"), ==, "3");
  g_assert_null (pooler_http_fields_find (fields, "x-codex"));
  g_assert_true (pooler_http_fields_media_type_is (fields, "text/event-stream"));
  g_assert_false (pooler_http_fields_media_type_is (fields, "text/event"));

  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    {
      g_autofree char *head = g_strdup_printf ("Content-Type: %s\r\n\r\n", types[i].value);
      g_autoptr(PoolerHttpFields) typed =
        pooler_http_fields_parse (head, head + strlen (head), 10, POOLER_HTTP_FIELDS_ASCII_ONLY);

      g_test_message ("Content-Type: %s", types[i].value);
      g_assert_nonnull (typed);
      g_assert_cmpint (pooler_http_fields_media_type_is (typed, "text/event-stream"), ==, types[i].is_sse);
    }

  headers = pooler_http_fields_to_soup (fields, SOUP_MESSAGE_HEADERS_RESPONSE);
  g_assert_cmpstr (soup_message_headers_get_list (headers, "Set-Cookie"), ==, "a=1, b=2");
  g_assert_cmpint (soup_message_headers_get_encoding (headers), ==, SOUP_ENCODING_CHUNKED);
  /* libsoup lists the fields it knows before the others: the same
   * fields, in its order. */
  again = pooler_http_fields_new_from_soup (headers);
  g_assert_cmpuint (pooler_http_fields_get_n (again), ==, pooler_http_fields_get_n (fields));
  {
    g_autoptr(SoupMessageHeaders) round_trip = pooler_http_fields_to_soup (again, SOUP_MESSAGE_HEADERS_RESPONSE);

    g_assert_true (test_headers_same (round_trip, headers));
  }
}

/* Names compare without case, whole, against a lower-case list. */
static void
test_name_in (void)
{
  static const char * const names[] = { "content-length", "connection", "date", NULL };
  static const char * const empty[] = { NULL };

  g_assert_true (pooler_http_name_in ("Content-Length", names));
  g_assert_true (pooler_http_name_in ("CONNECTION", names));
  g_assert_true (pooler_http_name_in ("date", names));
  g_assert_false (pooler_http_name_in ("Content-Type", names));
  g_assert_false (pooler_http_name_in ("Content-Length2", names));
  g_assert_false (pooler_http_name_in ("Dat", names));
  g_assert_false (pooler_http_name_in ("Content-Lengt", names));
  g_assert_false (pooler_http_name_in ("Content-Lengtj", names));
  g_assert_true (pooler_http_name_in ("cONTENT-lENGTH", names));
  g_assert_false (pooler_http_name_in ("\xc3\xa9", names));
  g_assert_false (pooler_http_name_in ("x-date", names));
  g_assert_false (pooler_http_name_in ("", names));
  g_assert_false (pooler_http_name_in ("date", empty));
}

/* The chunk size line is what printf's "%zx\r\n" makes. */
static void
test_chunk_line (void)
{
  static const gsize sizes[] = {
    0, 1, 9, 10, 15, 16, 17, 255, 256, 4095, 4096, 65535, 65536, 1048576, G_MAXUINT32,
    (gsize) G_MAXUINT32 + 1, G_MAXSIZE,
  };

  for (guint i = 0; i < G_N_ELEMENTS (sizes) + 2000; i++)
    {
      gsize size = i < G_N_ELEMENTS (sizes) ? sizes[i] : (gsize) g_random_int_range (0, G_MAXINT32);
      char line[POOLER_HTTP_CHUNK_LINE_SIZE];
      g_autofree char *expected = g_strdup_printf ("%" G_GSIZE_MODIFIER "x\r\n", size);
      gsize length = pooler_http_format_chunk_line (line, size);

      g_assert_cmpmem (line, length, expected, strlen (expected));
    }
}

/* Against memmem(), on strings of CR, LF and a letter, of every length
 * up to 40: where a blank line begins, or none. */
static void
test_blank_line (void)
{
  static const char alphabet[] = "\r\na";

  for (guint i = 0; i < 20000; i++)
    {
      gsize length = i < 8 ? i : (gsize) g_random_int_range (0, 41);
      g_autofree guint8 *data = g_malloc (length + 1);
      const guint8 *expected;

      for (gsize j = 0; j < length; j++)
        data[j] = (guint8) alphabet[g_random_int_range (0, 3)];
      /* Often a blank line somewhere. */
      if (length >= 4 && g_random_boolean ())
        memcpy (data + g_random_int_range (0, (gint32) length - 3), "\r\n\r\n", 4);
      expected = memmem (data, length, "\r\n\r\n", 4);
      g_assert_true (pooler_http_find_blank_line (data, length) == expected);
    }
  g_assert_null (pooler_http_find_blank_line ((const guint8 *) "\r\n\r", 3));
  g_assert_null (pooler_http_find_blank_line (NULL, 0));
}

static void
test_decimal (void)
{
  static const guint64 values[] = {
    0, 1, 9, 10, 99, 100, 200, 404, 599, 38912, G_MAXUINT32, (guint64) G_MAXUINT32 + 1,
    G_GUINT64_CONSTANT (10000000000000000000), G_MAXUINT64,
  };

  for (guint i = 0; i < G_N_ELEMENTS (values) + 2000; i++)
    {
      guint64 value = i < G_N_ELEMENTS (values) ? values[i] : g_random_int () * (guint64) g_random_int ();
      char text[POOLER_HTTP_DECIMAL_SIZE];
      g_autofree char *expected = g_strdup_printf ("%" G_GUINT64_FORMAT, value);
      gsize length = pooler_http_format_decimal (text, value);

      g_assert_cmpmem (text, length, expected, strlen (expected));
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/http-head/plain-taken", test_plain_taken);
  g_test_add_func ("/http-head/odd-declined", test_odd_declined);
  g_test_add_func ("/http-head/field-limit", test_field_limit);
  g_test_add_func ("/http-head/request-fields-any-bytes", test_request_fields_any_bytes);
  g_test_add_func ("/http-head/mutations-agree", test_mutations_agree);
  g_test_add_func ("/http-head/chunk-line", test_chunk_line);
  g_test_add_func ("/http-head/decimal", test_decimal);
  g_test_add_func ("/http-head/blank-line", test_blank_line);
  g_test_add_func ("/http-head/name-in", test_name_in);
  g_test_add_func ("/http-head/fields", test_fields);

  return g_test_run ();
}
