/* test-quota.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <string.h>

#include "pooler-json.h"
#include "pooler-quota.h"

/* Before every reset_at in the fixtures (the earliest is 1795489647). */
#define NOW G_GINT64_CONSTANT (1795488000)

static char *
fixture_contents (const char *name,
                  gsize      *length)
{
  const char *dir = g_getenv ("POOLER_FIXTURES_DIR");
  g_autofree char *path = NULL;
  g_autoptr(GError) error = NULL;
  char *contents = NULL;

  g_assert_nonnull (dir);
  path = g_build_filename (dir, name, NULL);
  g_file_get_contents (path, &contents, length, &error);
  g_assert_no_error (error);

  return contents;
}

/* The [[name, value], ...] array of a captured answer, as soup headers. */
static SoupMessageHeaders *
headers_from_array (JsonArray *array)
{
  SoupMessageHeaders *headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);

  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonArray *pair = json_array_get_array_element (array, i);

      soup_message_headers_append (headers,
                                   json_array_get_string_element (pair, 0),
                                   json_array_get_string_element (pair, 1));
    }

  return headers;
}

static SoupMessageHeaders *
fixture_headers (void)
{
  g_autofree char *data = NULL;
  g_autoptr(JsonObject) root = NULL;
  g_autoptr(GError) error = NULL;
  gsize length;

  data = fixture_contents ("response-headers.json", &length);
  root = pooler_json_parse_object (data, length, &error);
  g_assert_no_error (error);

  return headers_from_array (json_object_get_array_member (root, "headers"));
}

/* Name/value pairs, NULL-terminated. */
static SoupMessageHeaders *
make_headers (const char *first_name,
              ...)
{
  SoupMessageHeaders *headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  const char *name = first_name;
  va_list args;

  va_start (args, first_name);
  while (name != NULL)
    {
      const char *value = va_arg (args, const char *);

      soup_message_headers_append (headers, name, value);
      name = va_arg (args, const char *);
    }
  va_end (args);

  return headers;
}

/* The window keyed (limit_id, minutes), which must exist. */
static const PoolerQuotaWindow *
find_window (GPtrArray  *windows,
             const char *limit_id,
             int         minutes)
{
  for (guint i = 0; i < windows->len; i++)
    {
      const PoolerQuotaWindow *window = g_ptr_array_index (windows, i);

      if (g_strcmp0 (window->limit_id, limit_id) == 0 && window->window_minutes == minutes)
        return window;
    }

  /* Fails the test; never returns NULL. */
  g_error ("No window %s/%d among %u", limit_id, minutes, windows->len);
}

static void
assert_window (GPtrArray         *windows,
               const char        *limit_id,
               int                minutes,
               double             used,
               gint64             reset_at,
               PoolerQuotaSource  source)
{
  const PoolerQuotaWindow *window = find_window (windows, limit_id, minutes);

  g_assert_cmpfloat_with_epsilon (window->used_percent, used, 1e-9);
  g_assert_cmpint (window->reset_at, ==, reset_at);
  g_assert_cmpint (window->source, ==, source);
}

/* wham-usage.json's windows read at NOW: each the later of its reset_at
 * and NOW + its reset_after_seconds. */
#define USAGE_PRIMARY_RESET   MAX (G_GINT64_CONSTANT (1795491357), NOW + 3600)
#define USAGE_SECONDARY_RESET MAX (G_GINT64_CONSTANT (1795574157), NOW + 86400)

static PoolerQuotaEvidence *
parse_fixture_error (const char *name,
                     guint       status,
                     gint64      now)
{
  g_autofree char *data = NULL;
  gsize length;

  data = fixture_contents (name, &length);
  return pooler_quota_parse_error_body (status, data, length, now);
}

static PoolerQuotaEvidence *
parse_event (const char *json,
             gint64      now)
{
  return pooler_quota_parse_event (json, strlen (json), now);
}

static PoolerQuotaEvidence *
parse_usage (const char *json,
             gint64      now)
{
  return pooler_quota_parse_usage (json, strlen (json), now);
}

/* A default-limit window as the headers would report it. */
static void
add_window (PoolerQuotaState  *state,
            const char        *limit_id,
            int                minutes,
            double             used,
            gint64             reset_at,
            gint64             observed_at,
            PoolerQuotaSource  source)
{
  PoolerQuotaWindow window = {
    (char *) limit_id, NULL, minutes, used, reset_at, observed_at, source,
  };

  pooler_quota_state_add_window (state, &window);
}

static void
test_window_kind (void)
{
  static const struct { int minutes; const char *kind; } cases[] = {
    { 300, "5h" }, { 10080, "weekly" }, { 1440, "1d" }, { 43200, "30d" },
    { 60, "1h" }, { 120, "2h" }, { 90, "90m" }, { 1, "1m" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *kind = pooler_quota_window_kind (cases[i].minutes);

      g_assert_cmpstr (kind, ==, cases[i].kind);
    }

  g_assert_cmpstr (pooler_quota_source_to_string (POOLER_QUOTA_SOURCE_HEADERS), ==, "headers");
  g_assert_cmpstr (pooler_quota_source_to_string (POOLER_QUOTA_SOURCE_EVENT), ==, "event");
  g_assert_cmpstr (pooler_quota_source_to_string (POOLER_QUOTA_SOURCE_ERROR), ==, "error");
  g_assert_cmpstr (pooler_quota_source_to_string (POOLER_QUOTA_SOURCE_USAGE_API), ==, "usage_api");
  g_assert_cmpstr (pooler_quota_source_to_string (POOLER_QUOTA_SOURCE_STORED), ==, "stored");
}

static void
test_headers_fixture (void)
{
  g_autoptr(SoupMessageHeaders) headers = fixture_headers ();
  g_autoptr(PoolerQuotaEvidence) evidence = pooler_quota_parse_headers (headers, NOW);

  g_assert_nonnull (evidence);
  g_assert_cmpint (evidence->observed_at, ==, NOW);
  g_assert_cmpuint (evidence->windows->len, ==, 2);
  /* reset-at is used as given, not now + reset-after-seconds. */
  assert_window (evidence->windows, "codex", 300, 12.5, 1795491436, POOLER_QUOTA_SOURCE_HEADERS);
  assert_window (evidence->windows, "codex", 10080, 3, 1795574236, POOLER_QUOTA_SOURCE_HEADERS);
  g_assert_cmpint (((PoolerQuotaWindow *) evidence->windows->pdata[0])->observed_at, ==, NOW);
  g_assert_null (((PoolerQuotaWindow *) evidence->windows->pdata[0])->limit_name);
  g_assert_false (evidence->credits_known);
  g_assert_null (evidence->plan_type);
  g_assert_null (evidence->limit_reached_type);
  g_assert_cmpint (evidence->blocked_until, ==, 0);
}

/* Every "served" header set of the Codex CLI captures (outside the repo,
 * so only when POOLER_CAPTURES_DIR points at them). */
static void
test_headers_captures (void)
{
  const char *dir_path = g_getenv ("POOLER_CAPTURES_DIR");
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GError) error = NULL;
  const char *name;
  guint n_parsed = 0;

  if (dir_path == NULL)
    {
      g_test_skip ("POOLER_CAPTURES_DIR is not set");
      return;
    }

  dir = g_dir_open (dir_path, 0, &error);
  g_assert_no_error (error);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir_path, name, NULL);
      g_autofree char *data = NULL;
      g_autoptr(JsonObject) root = NULL;
      JsonArray *requests;
      gsize length;

      if (!g_str_has_suffix (name, ".json"))
        continue;

      g_assert_true (g_file_get_contents (path, &data, &length, NULL));
      root = pooler_json_parse_object (data, length, &error);
      g_assert_no_error (error);
      if (!json_object_has_member (root, "requests"))
        continue;

      requests = json_object_get_array_member (root, "requests");
      for (guint i = 0; i < json_array_get_length (requests); i++)
        {
          JsonObject *request = json_array_get_object_element (requests, i);
          g_autoptr(SoupMessageHeaders) headers = NULL;
          g_autoptr(PoolerQuotaEvidence) evidence = NULL;
          JsonObject *served;

          if (!json_object_has_member (request, "served"))
            continue;
          served = json_object_get_object_member (request, "served");
          headers = headers_from_array (json_object_get_array_member (served, "headers"));
          evidence = pooler_quota_parse_headers (headers, NOW);

          if (soup_message_headers_get_one (headers, "x-codex-primary-used-percent") == NULL)
            {
              g_assert_null (evidence);
              continue;
            }

          g_assert_nonnull (evidence);
          g_assert_cmpuint (evidence->windows->len, ==, 2);
          g_assert_cmpfloat (find_window (evidence->windows, "codex", 300)->used_percent, ==, 12.5);
          g_assert_cmpint (find_window (evidence->windows, "codex", 300)->reset_at, ==,
                           g_ascii_strtoll (soup_message_headers_get_one (headers,
                                                                          "x-codex-primary-reset-at"),
                                            NULL, 10));
          g_assert_cmpfloat (find_window (evidence->windows, "codex", 10080)->used_percent, ==, 3);
          n_parsed++;
        }
    }

  g_assert_cmpuint (n_parsed, >, 0);
}

static void
test_headers_reset_after (void)
{
  g_autoptr(SoupMessageHeaders) only_after = NULL;
  g_autoptr(SoupMessageHeaders) both = NULL;
  g_autoptr(SoupMessageHeaders) iso = NULL;
  g_autoptr(PoolerQuotaEvidence) evidence = NULL;

  /* reset-at missing: now + reset-after-seconds. */
  only_after = make_headers ("x-codex-primary-used-percent", "40",
                             "x-codex-primary-window-minutes", "300",
                             "x-codex-primary-reset-after-seconds", "3600",
                             NULL);
  evidence = pooler_quota_parse_headers (only_after, NOW);
  g_assert_nonnull (evidence);
  assert_window (evidence->windows, "codex", 300, 40, NOW + 3600, POOLER_QUOTA_SOURCE_HEADERS);
  g_clear_pointer (&evidence, pooler_quota_evidence_free);

  /* Both: reset-at wins even when it disagrees. */
  both = make_headers ("x-codex-primary-used-percent", "40",
                       "x-codex-primary-window-minutes", "300",
                       "x-codex-primary-reset-after-seconds", "3600",
                       "x-codex-primary-reset-at", "1795499999",
                       NULL);
  evidence = pooler_quota_parse_headers (both, NOW);
  assert_window (evidence->windows, "codex", 300, 40, 1795499999, POOLER_QUOTA_SOURCE_HEADERS);
  g_clear_pointer (&evidence, pooler_quota_evidence_free);

  /* ISO-8601 reset-at; neither present gives 0. */
  iso = make_headers ("x-codex-primary-used-percent", "40",
                      "x-codex-primary-window-minutes", "300",
                      "x-codex-primary-reset-at", "2026-11-23T00:00:00Z",
                      "x-codex-secondary-used-percent", "5",
                      "x-codex-secondary-window-minutes", "10080",
                      NULL);
  evidence = pooler_quota_parse_headers (iso, NOW);
  assert_window (evidence->windows, "codex", 300, 40, 1795392000, POOLER_QUOTA_SOURCE_HEADERS);
  assert_window (evidence->windows, "codex", 10080, 5, 0, POOLER_QUOTA_SOURCE_HEADERS);
}

static void
test_headers_case (void)
{
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(PoolerQuotaEvidence) evidence = NULL;

  headers = make_headers ("X-Codex-Primary-Used-Percent", "12.5",
                          "X-CODEX-PRIMARY-WINDOW-MINUTES", "300",
                          "x-CoDeX-pRiMaRy-ReSeT-aT", "1795491436",
                          "X-Codex-Plan-Type", "pro",
                          "X-Codex-Credits-Has-Credits", "TRUE",
                          NULL);
  evidence = pooler_quota_parse_headers (headers, NOW);
  g_assert_nonnull (evidence);
  g_assert_cmpuint (evidence->windows->len, ==, 1);
  assert_window (evidence->windows, "codex", 300, 12.5, 1795491436, POOLER_QUOTA_SOURCE_HEADERS);
  g_assert_cmpstr (evidence->plan_type, ==, "pro");
  g_assert_true (evidence->credits_known);
  g_assert_true (evidence->has_credits);
}

static void
test_headers_extra_family (void)
{
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(PoolerQuotaEvidence) evidence = NULL;
  const PoolerQuotaWindow *window;

  headers = make_headers ("x-codex-primary-used-percent", "10",
                          "x-codex-primary-window-minutes", "300",
                          "x-codex-bengalfox-primary-used-percent", "80",
                          "x-codex-bengalfox-primary-window-minutes", "300",
                          "x-codex-bengalfox-primary-reset-at", "1795491000",
                          "x-codex-bengalfox-secondary-used-percent", "20",
                          "x-codex-bengalfox-secondary-window-minutes", "10080",
                          "X-Codex-Bengalfox-Limit-Name", "GPT-5.3-Codex-Spark",
                          "x-premium-secondary-used-percent", "7",
                          "x-premium-secondary-window-minutes", "1440",
                          NULL);
  evidence = pooler_quota_parse_headers (headers, NOW);
  g_assert_nonnull (evidence);
  g_assert_cmpuint (evidence->windows->len, ==, 4);

  assert_window (evidence->windows, "codex", 300, 10, 0, POOLER_QUOTA_SOURCE_HEADERS);
  g_assert_null (find_window (evidence->windows, "codex", 300)->limit_name);

  assert_window (evidence->windows, "codex_bengalfox", 300, 80, 1795491000, POOLER_QUOTA_SOURCE_HEADERS);
  window = find_window (evidence->windows, "codex_bengalfox", 10080);
  g_assert_cmpfloat (window->used_percent, ==, 20);
  g_assert_cmpstr (window->limit_name, ==, "GPT-5.3-Codex-Spark");
  g_assert_cmpstr (find_window (evidence->windows, "codex_bengalfox", 300)->limit_name, ==,
                   "GPT-5.3-Codex-Spark");

  /* A secondary-only family is found too. */
  assert_window (evidence->windows, "premium", 1440, 7, 0, POOLER_QUOTA_SOURCE_HEADERS);
}

/* Only "X-" headers are read (in any case); a family name too long for
 * any real header is passed over, and the others still count. */
static void
test_headers_only_x_names (void)
{
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(PoolerQuotaEvidence) evidence = NULL;
  g_autofree char *long_family = g_strnfill (300, 'f');
  g_autofree char *long_used = g_strdup_printf ("x-%s-primary-used-percent", long_family);
  g_autofree char *long_minutes = g_strdup_printf ("x-%s-primary-window-minutes", long_family);

  headers = make_headers ("codex-primary-used-percent", "50",
                          "codex-primary-window-minutes", "60",
                          "X-CODEX-PRIMARY-USED-PERCENT", "10",
                          "X-Codex-Primary-Window-Minutes", "300",
                          long_used, "90",
                          long_minutes, "300",
                          NULL);
  evidence = pooler_quota_parse_headers (headers, NOW);
  g_assert_nonnull (evidence);
  g_assert_cmpuint (evidence->windows->len, ==, 1);
  assert_window (evidence->windows, "codex", 300, 10, 0, POOLER_QUOTA_SOURCE_HEADERS);
}

/* A repeated header counts once, the first one in any case; names that
 * only share a prefix or a suffix with a quota header, or differ from one
 * in a separator, are not read as it;
 * a family of 200 bytes is read, one of 201 is passed over. */
static void
test_headers_repeated (void)
{
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(SoupMessageHeaders) bounds = NULL;
  g_autoptr(PoolerQuotaEvidence) evidence = NULL;
  g_autofree char *family_200 = g_strnfill (200, 'a');
  g_autofree char *family_201 = g_strnfill (201, 'b');
  g_autofree char *used_200 = g_strdup_printf ("x-%s-primary-used-percent", family_200);
  g_autofree char *minutes_200 = g_strdup_printf ("x-%s-primary-window-minutes", family_200);
  g_autofree char *reset_200 = g_strdup_printf ("x-%s-primary-reset-after-seconds", family_200);
  g_autofree char *used_201 = g_strdup_printf ("x-%s-primary-used-percent", family_201);
  g_autofree char *minutes_201 = g_strdup_printf ("x-%s-primary-window-minutes", family_201);

  headers = make_headers ("x-codex_primary-window-minutes", "1",
                          "x-codex-primary_used-percent", "2",
                          "X-Codex-Primary-Used-Percent", "20",
                          "x-codex-primary-used-percent", "90",
                          "x-codex-primary-window-minutes", "300",
                          "x-codex-primary-window-minutes", "60",
                          "x-codex-primary-reset-at-x", "1795499999",
                          "x-codex-primary-reset-at", "1795491436",
                          "x-codex-plan-type-old", "free",
                          "X-Codex-Plan-Type", " plus ",
                          "x-codex-plan-type", "pro",
                          "x-codex-credits-has-credits", "true",
                          "x-codex-credits-has-credits", "false",
                          "xx-codex-secondary-used-percent", "5",
                          "x-codex-secondary-window-minutes", "10080",
                          NULL);
  evidence = pooler_quota_parse_headers (headers, NOW);
  g_assert_nonnull (evidence);
  g_assert_cmpuint (evidence->windows->len, ==, 1);
  assert_window (evidence->windows, "codex", 300, 20, 1795491436, POOLER_QUOTA_SOURCE_HEADERS);
  g_assert_cmpstr (evidence->plan_type, ==, "plus");
  g_assert_true (evidence->credits_known);
  g_assert_true (evidence->has_credits);
  g_clear_pointer (&evidence, pooler_quota_evidence_free);

  bounds = make_headers (used_201, "70",
                         minutes_201, "300",
                         used_200, "40",
                         minutes_200, "60",
                         reset_200, "30",
                         NULL);
  evidence = pooler_quota_parse_headers (bounds, NOW);
  g_assert_nonnull (evidence);
  g_assert_cmpuint (evidence->windows->len, ==, 1);
  assert_window (evidence->windows, family_200, 60, 40, NOW + 30, POOLER_QUOTA_SOURCE_HEADERS);
}

static void
test_headers_credits (void)
{
  g_autoptr(SoupMessageHeaders) upstream = NULL;
  g_autoptr(SoupMessageHeaders) other = NULL;
  g_autoptr(PoolerQuotaEvidence) evidence = NULL;

  /* The upstream's spelling, with no window at all. */
  upstream = make_headers ("x-codex-credits-has-credits", "True",
                           "x-codex-credits-unlimited", "False",
                           "x-codex-credits-balance", "9.99",
                           NULL);
  evidence = pooler_quota_parse_headers (upstream, NOW);
  g_assert_nonnull (evidence);
  g_assert_cmpuint (evidence->windows->len, ==, 0);
  g_assert_true (evidence->credits_known);
  g_assert_true (evidence->has_credits);
  g_assert_false (evidence->credits_unlimited);
  g_assert_cmpfloat_with_epsilon (evidence->credits_balance, 9.99, 1e-9);
  g_clear_pointer (&evidence, pooler_quota_evidence_free);

  other = make_headers ("x-codex-credits-has-credits", "0",
                        "x-codex-credits-unlimited", "true",
                        NULL);
  evidence = pooler_quota_parse_headers (other, NOW);
  g_assert_true (evidence->credits_known);
  g_assert_false (evidence->has_credits);
  g_assert_true (evidence->credits_unlimited);
}

/* Free plan: the weekly window arrives in the primary slot and the
 * secondary one has length 0. Keyed by length, it is the same window the
 * Plus headers send as secondary. */
static void
test_headers_weekly_in_primary (void)
{
  g_autoptr(SoupMessageHeaders) plus = fixture_headers ();
  g_autoptr(SoupMessageHeaders) free_plan = NULL;
  g_autoptr(PoolerQuotaEvidence) first = NULL;
  g_autoptr(PoolerQuotaEvidence) second = NULL;
  g_autoptr(PoolerQuotaState) state = pooler_quota_state_new ();
  GPtrArray *windows;

  free_plan = make_headers ("x-codex-primary-used-percent", "55",
                            "x-codex-primary-window-minutes", "10080",
                            "x-codex-primary-reset-at", "1795574236",
                            "x-codex-secondary-used-percent", "0",
                            "x-codex-secondary-window-minutes", "0",
                            NULL);
  second = pooler_quota_parse_headers (free_plan, NOW + 60);
  g_assert_nonnull (second);
  g_assert_cmpuint (second->windows->len, ==, 1);
  assert_window (second->windows, "codex", 10080, 55, 1795574236, POOLER_QUOTA_SOURCE_HEADERS);

  first = pooler_quota_parse_headers (plus, NOW);
  pooler_quota_state_merge (state, first);
  pooler_quota_state_merge (state, second);

  windows = pooler_quota_state_get_windows (state);
  g_assert_cmpuint (windows->len, ==, 2);
  assert_window (windows, "codex", 300, 12.5, 1795491436, POOLER_QUOTA_SOURCE_HEADERS);
  assert_window (windows, "codex", 10080, 55, 1795574236, POOLER_QUOTA_SOURCE_HEADERS);
}

static void
test_headers_invalid (void)
{
  g_autoptr(SoupMessageHeaders) bad = NULL;
  g_autoptr(SoupMessageHeaders) clamped = NULL;
  g_autoptr(SoupMessageHeaders) unrelated = NULL;
  g_autoptr(PoolerQuotaEvidence) evidence = NULL;

  /* Not a number, length 0, negative, fractional, missing: nothing. */
  bad = make_headers ("x-codex-primary-used-percent", "lots",
                      "x-codex-primary-window-minutes", "300",
                      "x-codex-secondary-used-percent", "10",
                      "x-codex-secondary-window-minutes", "0",
                      "x-other-primary-used-percent", "10",
                      "x-other-primary-window-minutes", "-300",
                      "x-other-secondary-used-percent", "10",
                      "x-other-secondary-window-minutes", "30.5",
                      "x-third-primary-used-percent", "10",
                      "x-primary-used-percent", "10",
                      "x--primary-used-percent", "10",
                      NULL);
  g_assert_null (pooler_quota_parse_headers (bad, NOW));

  clamped = make_headers ("x-codex-primary-used-percent", "150",
                          "x-codex-primary-window-minutes", "300",
                          "x-codex-secondary-used-percent", "-3",
                          "x-codex-secondary-window-minutes", "10080",
                          "x-codex-secondary-reset-at", "yesterday",
                          NULL);
  evidence = pooler_quota_parse_headers (clamped, NOW);
  assert_window (evidence->windows, "codex", 300, 100, 0, POOLER_QUOTA_SOURCE_HEADERS);
  assert_window (evidence->windows, "codex", 10080, 0, 0, POOLER_QUOTA_SOURCE_HEADERS);

  unrelated = make_headers ("Content-Type", "text/event-stream",
                            "x-request-id", "req_1",
                            NULL);
  g_assert_null (pooler_quota_parse_headers (unrelated, NOW));

  /* White space around a number is allowed; anything else after it, or
   * white space alone, is not. */
  {
    g_autoptr(SoupMessageHeaders) padded = make_headers ("x-codex-primary-used-percent", " 40\t",
                                                         "x-codex-primary-window-minutes", "300 ",
                                                         "x-codex-secondary-used-percent", "10abc",
                                                         "x-codex-secondary-window-minutes", "10080",
                                                         "x-other-primary-used-percent", " ",
                                                         "x-other-primary-window-minutes", "60",
                                                         NULL);
    g_autoptr(PoolerQuotaEvidence) parsed = pooler_quota_parse_headers (padded, NOW);

    g_assert_nonnull (parsed);
    g_assert_cmpuint (parsed->windows->len, ==, 1);
    assert_window (parsed->windows, "codex", 300, 40, 0, POOLER_QUOTA_SOURCE_HEADERS);
  }
}

static void
test_error_usage_limit (void)
{
  g_autoptr(PoolerQuotaEvidence) evidence = NULL;

  evidence = parse_fixture_error ("error-429-usage-limit.json", 429, NOW);
  g_assert_nonnull (evidence);
  g_assert_cmpint (evidence->blocked_until, ==, NOW + 1800);
  g_assert_cmpstr (evidence->limit_reached_type, ==, "usage_limit_reached");
  g_assert_cmpstr (evidence->plan_type, ==, "plus");
  g_assert_cmpuint (evidence->windows->len, ==, 0);
  g_assert_cmpint (evidence->observed_at, ==, NOW);
}

static void
test_error_resets_at (void)
{
  g_autoptr(PoolerQuotaEvidence) evidence = NULL;

  /* The body has resets_in_seconds 1800 too: the later of the two wins,
   * here the delay (NOW + 1800 is after the captured resets_at). */
  evidence = parse_fixture_error ("error-429-usage-limit-resets-at.json", 429, NOW);
  g_assert_nonnull (evidence);
  g_assert_cmpint (evidence->blocked_until, ==, MAX (1795489647, NOW + 1800));
  g_assert_cmpstr (evidence->limit_reached_type, ==, "usage_limit_reached");
  g_assert_cmpstr (evidence->plan_type, ==, "plus");
  g_clear_pointer (&evidence, pooler_quota_evidence_free);

  /* Our clock 300 s ahead of the upstream's: its resets_at is already
   * past here, but the delay still blocks. */
  {
    g_autofree char *ahead = g_strdup_printf ("{\"error\":{\"type\":\"usage_limit_reached\",\"resets_at\":%"
                                              G_GINT64_FORMAT ",\"resets_in_seconds\":60}}", NOW - 300 + 60);

    evidence = pooler_quota_parse_error_body (429, ahead, strlen (ahead), NOW);
    g_assert_cmpint (evidence->blocked_until, ==, NOW + 60);
    g_clear_pointer (&evidence, pooler_quota_evidence_free);
  }
  /* Behind: the upstream's time is later, and wins. */
  {
    g_autofree char *behind = g_strdup_printf ("{\"error\":{\"type\":\"usage_limit_reached\",\"resets_at\":%"
                                               G_GINT64_FORMAT ",\"resets_in_seconds\":60}}", NOW + 300 + 60);

    evidence = pooler_quota_parse_error_body (429, behind, strlen (behind), NOW);
    g_assert_cmpint (evidence->blocked_until, ==, NOW + 360);
    g_clear_pointer (&evidence, pooler_quota_evidence_free);
  }
  /* A time of 0 is no time. */
  {
    const char *zero = "{\"error\":{\"type\":\"usage_limit_reached\",\"resets_at\":0,\"resets_in_seconds\":600}}";

    evidence = pooler_quota_parse_error_body (429, zero, strlen (zero), NOW);
    g_assert_cmpint (evidence->blocked_until, ==, NOW + 600);
  }
}

static void
test_error_rate_limit_exceeded (void)
{
  g_autoptr(PoolerQuotaEvidence) evidence = NULL;
  const char *windowed =
    "{\"error\":{\"type\":\"usage_limit_reached\",\"limit_window_minutes\":300,"
    "\"used_percent\":100,\"resets_in_seconds\":600}}";
  const char *server_error = "{\"error\":{\"type\":\"server_error\",\"message\":\"internal error\"}}";
  const char *coded = "{\"error\":{\"message\":\"slow down\",\"code\":\"rate_limit_exceeded\"}}";

  evidence = parse_fixture_error ("error-429-rate-limit-exceeded.json", 429, NOW);
  g_assert_nonnull (evidence);
  g_assert_cmpint (evidence->blocked_until, ==, 0);
  g_assert_cmpstr (evidence->limit_reached_type, ==, "rate_limit_exceeded");
  g_assert_null (evidence->plan_type);
  g_assert_cmpuint (evidence->windows->len, ==, 0);
  g_clear_pointer (&evidence, pooler_quota_evidence_free);

  /* error.code when there is no type. */
  evidence = pooler_quota_parse_error_body (429, coded, strlen (coded), NOW);
  g_assert_cmpstr (evidence->limit_reached_type, ==, "rate_limit_exceeded");
  g_clear_pointer (&evidence, pooler_quota_evidence_free);

  /* Windows in the body are recorded. */
  evidence = pooler_quota_parse_error_body (429, windowed, strlen (windowed), NOW);
  g_assert_cmpint (evidence->blocked_until, ==, NOW + 600);
  g_assert_cmpuint (evidence->windows->len, ==, 1);
  assert_window (evidence->windows, "codex", 300, 100, NOW + 600, POOLER_QUOTA_SOURCE_ERROR);
  g_clear_pointer (&evidence, pooler_quota_evidence_free);

  /* A 500 says nothing about quota. */
  g_assert_null (pooler_quota_parse_error_body (500, server_error, strlen (server_error), NOW));
}

static void
test_usage_fixture (void)
{
  g_autofree char *data = NULL;
  g_autoptr(PoolerQuotaEvidence) evidence = NULL;
  gsize length;

  data = fixture_contents ("wham-usage.json", &length);
  evidence = pooler_quota_parse_usage (data, length, NOW);
  g_assert_nonnull (evidence);
  g_assert_cmpuint (evidence->windows->len, ==, 2);
  /* Each window has reset_at and reset_after_seconds: the later wins. */
  assert_window (evidence->windows, "codex", 300, 12, USAGE_PRIMARY_RESET, POOLER_QUOTA_SOURCE_USAGE_API);
  assert_window (evidence->windows, "codex", 10080, 3, USAGE_SECONDARY_RESET, POOLER_QUOTA_SOURCE_USAGE_API);
  g_assert_cmpstr (evidence->plan_type, ==, "plus");
  g_assert_false (evidence->credits_known);
  g_assert_null (evidence->limit_reached_type);
  g_assert_cmpint (evidence->blocked_until, ==, 0);
}

static void
test_usage_variants (void)
{
  g_autoptr(PoolerQuotaEvidence) evidence = NULL;
  const char *variant =
    "{\"plan_type\":\"pro\","
    " \"rate_limit\":{\"allowed\":true,\"limit_reached\":false,"
    "  \"primary\":{\"used_percent\":100,\"limit_window_seconds\":604800,\"reset_after_seconds\":120},"
    "  \"secondary\":null},"
    " \"credits\":{\"has_credits\":true,\"unlimited\":false,\"balance\":\"12.50\"},"
    " \"additional_rate_limits\":[{\"limit_name\":\"GPT-5.3-Codex-Spark\","
    "   \"metered_feature\":\"codex_bengalfox\","
    "   \"rate_limit\":{\"primary_window\":{\"used_percent\":40.5,\"limit_window_seconds\":18000,"
    "    \"reset_at\":1795490000}}}, 7, {\"rate_limit\":{}}]}";
  const char *reached =
    "{\"plan_type\":\"plus\",\"rate_limit\":{\"allowed\":false,\"limit_reached\":true},"
    " \"credits\":null}";

  evidence = parse_usage (variant, NOW);
  g_assert_nonnull (evidence);
  g_assert_cmpuint (evidence->windows->len, ==, 2);
  /* 604800 s in the primary slot is the weekly window. */
  assert_window (evidence->windows, "codex", 10080, 100, NOW + 120, POOLER_QUOTA_SOURCE_USAGE_API);
  assert_window (evidence->windows, "codex_bengalfox", 300, 40.5, 1795490000,
                 POOLER_QUOTA_SOURCE_USAGE_API);
  g_assert_cmpstr (find_window (evidence->windows, "codex_bengalfox", 300)->limit_name, ==,
                   "GPT-5.3-Codex-Spark");
  g_assert_true (evidence->credits_known);
  g_assert_true (evidence->has_credits);
  g_assert_cmpfloat_with_epsilon (evidence->credits_balance, 12.5, 1e-9);
  g_assert_null (evidence->limit_reached_type);
  g_clear_pointer (&evidence, pooler_quota_evidence_free);

  /* limit_reached without windows: a type, not a block. */
  evidence = parse_usage (reached, NOW);
  g_assert_nonnull (evidence);
  g_assert_cmpuint (evidence->windows->len, ==, 0);
  g_assert_cmpstr (evidence->limit_reached_type, ==, "rate_limit_reached");
  g_assert_cmpint (evidence->blocked_until, ==, 0);
  g_assert_false (evidence->credits_known);
}

static void
test_event (void)
{
  g_autoptr(PoolerQuotaEvidence) evidence = NULL;
  const char *event =
    "{\"type\":\"codex.rate_limits\",\"plan_type\":\"plus\","
    " \"rate_limits\":{\"primary\":{\"used_percent\":12.5,\"window_minutes\":300,\"reset_at\":1795491436},"
    "  \"secondary\":{\"used_percent\":3,\"window_minutes\":10080,\"resets_at\":1795574236}},"
    " \"credits\":{\"has_credits\":false,\"unlimited\":false,\"balance\":0}}";
  const char *relative =
    "{\"type\":\"codex.rate_limits\","
    " \"rate_limits\":{\"primary\":{\"used_percent\":99.5,\"window_minutes\":300,"
    "  \"reset_after_seconds\":60}}, \"limit_name\":\"GPT-5.3 Codex-Spark\"}";
  const char *other_type =
    "{\"type\":\"response.completed\",\"rate_limits\":{\"primary\":"
    " {\"used_percent\":1,\"window_minutes\":300}}}";

  evidence = parse_event (event, NOW);
  g_assert_nonnull (evidence);
  g_assert_cmpuint (evidence->windows->len, ==, 2);
  assert_window (evidence->windows, "codex", 300, 12.5, 1795491436, POOLER_QUOTA_SOURCE_EVENT);
  assert_window (evidence->windows, "codex", 10080, 3, 1795574236, POOLER_QUOTA_SOURCE_EVENT);
  g_assert_cmpstr (evidence->plan_type, ==, "plus");
  g_assert_true (evidence->credits_known);
  g_assert_false (evidence->has_credits);
  g_clear_pointer (&evidence, pooler_quota_evidence_free);

  /* A named limit, lower-cased with '_' for the rest. */
  evidence = parse_event (relative, NOW);
  g_assert_nonnull (evidence);
  g_assert_cmpuint (evidence->windows->len, ==, 1);
  assert_window (evidence->windows, "gpt_5_3_codex_spark", 300, 99.5, NOW + 60,
                 POOLER_QUOTA_SOURCE_EVENT);
  g_assert_cmpstr (((PoolerQuotaWindow *) evidence->windows->pdata[0])->limit_name, ==,
                   "GPT-5.3 Codex-Spark");
  g_assert_false (evidence->credits_known);

  g_assert_null (parse_event (other_type, NOW));
}

static void
test_garbage (void)
{
  g_autoptr(GString) deep = g_string_new ("{\"type\":\"codex.rate_limits\",\"rate_limits\":");
  const char * const bodies[] = {
    "",
    "not json",
    "{\"error\":",
    "[1, 2, 3]",
    "\"usage_limit_reached\"",
    "{}",
    "{\"error\":null,\"rate_limit\":[],\"credits\":7,\"plan_type\":12}",
    ("{\"type\":\"codex.rate_limits\",\"rate_limits\":{\"primary\":"
     " {\"used_percent\":\"x\",\"window_minutes\":300}}}"),
  };

  for (guint i = 0; i < 100000; i++)
    g_string_append_c (deep, '[');

  for (guint i = 0; i < G_N_ELEMENTS (bodies); i++)
    {
      gsize length = strlen (bodies[i]);

      g_assert_null (pooler_quota_parse_event (bodies[i], length, NOW));
      g_assert_null (pooler_quota_parse_usage (bodies[i], length, NOW));
      g_assert_null (pooler_quota_parse_error_body (429, bodies[i], length, NOW));
    }

  g_assert_null (pooler_quota_parse_event (deep->str, deep->len, NOW));
  g_assert_null (pooler_quota_parse_usage (deep->str, deep->len, NOW));
  g_assert_null (pooler_quota_parse_error_body (429, deep->str, deep->len, NOW));
  g_assert_null (pooler_quota_parse_event (NULL, 0, NOW));
  g_assert_null (pooler_quota_parse_usage (NULL, 0, NOW));
  g_assert_null (pooler_quota_parse_error_body (429, NULL, 0, NOW));
}

static void
test_merge_order (void)
{
  g_autoptr(SoupMessageHeaders) newer_headers = NULL;
  g_autoptr(SoupMessageHeaders) older_headers = NULL;
  g_autoptr(PoolerQuotaEvidence) newer = NULL;
  g_autoptr(PoolerQuotaEvidence) older = NULL;
  g_autoptr(PoolerQuotaState) state = pooler_quota_state_new ();
  GPtrArray *windows;

  newer_headers = make_headers ("x-codex-primary-used-percent", "60",
                                "x-codex-primary-window-minutes", "300",
                                "x-codex-plan-type", "pro",
                                NULL);
  older_headers = make_headers ("x-codex-primary-used-percent", "20",
                                "x-codex-primary-window-minutes", "300",
                                "x-codex-secondary-used-percent", "5",
                                "x-codex-secondary-window-minutes", "10080",
                                "x-codex-plan-type", "plus",
                                NULL);
  newer = pooler_quota_parse_headers (newer_headers, NOW + 100);
  older = pooler_quota_parse_headers (older_headers, NOW);

  pooler_quota_state_merge (state, newer);
  pooler_quota_state_merge (state, older);

  /* The late, older answer fills the gap but overwrites nothing. */
  windows = pooler_quota_state_get_windows (state);
  g_assert_cmpuint (windows->len, ==, 2);
  assert_window (windows, "codex", 300, 60, 0, POOLER_QUOTA_SOURCE_HEADERS);
  g_assert_cmpint (find_window (windows, "codex", 300)->observed_at, ==, NOW + 100);
  assert_window (windows, "codex", 10080, 5, 0, POOLER_QUOTA_SOURCE_HEADERS);
  g_assert_cmpstr (pooler_quota_state_get_plan_type (state), ==, "pro");
  g_assert_cmpint (pooler_quota_state_last_observed (state), ==, NOW + 100);

  /* Same time replaces; sorted by limit id, then minutes. */
  add_window (state, "codex", 300, 70, 0, NOW + 100, POOLER_QUOTA_SOURCE_EVENT);
  add_window (state, "codex_bengalfox", 60, 1, 0, NOW + 50, POOLER_QUOTA_SOURCE_HEADERS);
  add_window (state, "codex", 1440, 1, 0, NOW + 50, POOLER_QUOTA_SOURCE_HEADERS);
  add_window (state, "codex", 300, 10, 0, NOW + 99, POOLER_QUOTA_SOURCE_USAGE_API);
  assert_window (windows, "codex", 300, 70, 0, POOLER_QUOTA_SOURCE_EVENT);
  g_assert_cmpuint (windows->len, ==, 4);
  g_assert_cmpint (((PoolerQuotaWindow *) windows->pdata[0])->window_minutes, ==, 300);
  g_assert_cmpint (((PoolerQuotaWindow *) windows->pdata[1])->window_minutes, ==, 1440);
  g_assert_cmpint (((PoolerQuotaWindow *) windows->pdata[2])->window_minutes, ==, 10080);
  g_assert_cmpstr (((PoolerQuotaWindow *) windows->pdata[3])->limit_id, ==, "codex_bengalfox");
}

static void
test_spent_window (void)
{
  g_autoptr(PoolerQuotaState) state = pooler_quota_state_new ();
  g_autoptr(PoolerQuotaState) stale = pooler_quota_state_new ();
  g_autoptr(PoolerQuotaState) rolled = pooler_quota_state_new ();
  g_autoptr(PoolerQuotaState) other = pooler_quota_state_new ();
  gint64 reset_at = -1;

  g_assert_false (pooler_quota_state_is_spent (state, NOW, &reset_at));
  g_assert_cmpint (reset_at, ==, 0);

  /* Fresh and full: spent until the latest reset of the full windows. */
  add_window (state, "codex", 300, 100, NOW + 600, NOW, POOLER_QUOTA_SOURCE_HEADERS);
  add_window (state, "codex", 10080, 40, NOW + 9000, NOW, POOLER_QUOTA_SOURCE_HEADERS);
  g_assert_true (pooler_quota_state_is_spent (state, NOW + 10, &reset_at));
  g_assert_cmpint (reset_at, ==, NOW + 600);
  add_window (state, "codex", 10080, 100, NOW + 9000, NOW + 20, POOLER_QUOTA_SOURCE_HEADERS);
  g_assert_true (pooler_quota_state_is_spent (state, NOW + 30, &reset_at));
  g_assert_cmpint (reset_at, ==, NOW + 9000);
  g_assert_true (pooler_quota_state_is_spent (state, NOW + 30, NULL));

  /* The same window, observed longer ago than the freshness limit. */
  add_window (stale, "codex", 300, 100, NOW + 3600, NOW - POOLER_QUOTA_FRESH_SECONDS - 1,
              POOLER_QUOTA_SOURCE_HEADERS);
  g_assert_false (pooler_quota_state_is_spent (stale, NOW, &reset_at));
  g_assert_cmpint (reset_at, ==, 0);

  /* Reset already passed: the window rolled over. */
  add_window (rolled, "codex", 300, 100, NOW - 1, NOW - 60, POOLER_QUOTA_SOURCE_HEADERS);
  g_assert_false (pooler_quota_state_is_spent (rolled, NOW, &reset_at));

  /* Full with no reset known: spent while the evidence is fresh. */
  g_clear_pointer (&rolled, pooler_quota_state_free);
  rolled = pooler_quota_state_new ();
  add_window (rolled, "codex", 300, 100, 0, NOW, POOLER_QUOTA_SOURCE_HEADERS);
  g_assert_true (pooler_quota_state_is_spent (rolled, NOW + 1, &reset_at));
  g_assert_cmpint (reset_at, ==, NOW + POOLER_QUOTA_FRESH_SECONDS);
  g_assert_false (pooler_quota_state_is_spent (rolled, NOW + POOLER_QUOTA_FRESH_SECONDS + 1, NULL));

  /* Another family at 100 % is model-specific, not the account. */
  add_window (other, "codex_bengalfox", 300, 100, NOW + 600, NOW, POOLER_QUOTA_SOURCE_HEADERS);
  add_window (other, "codex", 300, 10, NOW + 600, NOW, POOLER_QUOTA_SOURCE_HEADERS);
  g_assert_false (pooler_quota_state_is_spent (other, NOW, &reset_at));
}

static PoolerQuotaEvidence *
fixture_headers_evidence (gint64 now)
{
  g_autoptr(SoupMessageHeaders) headers = fixture_headers ();

  return pooler_quota_parse_headers (headers, now);
}

static void
test_spent_block (void)
{
  g_autoptr(PoolerQuotaState) state = pooler_quota_state_new ();
  g_autoptr(PoolerQuotaEvidence) block = NULL;
  g_autoptr(PoolerQuotaEvidence) same_answer = NULL;
  g_autoptr(PoolerQuotaEvidence) shorter = NULL;
  g_autoptr(PoolerQuotaEvidence) later = NULL;
  g_autoptr(PoolerQuotaEvidence) late_block = NULL;
  gint64 reset_at = -1;

  /* A 429 whose headers still say 12.5 %: the body's block rules. */
  same_answer = fixture_headers_evidence (NOW);
  block = parse_fixture_error ("error-429-usage-limit.json", 429, NOW);
  pooler_quota_state_merge (state, block);
  pooler_quota_state_merge (state, same_answer);

  g_assert_true (pooler_quota_state_is_spent (state, NOW + 1, &reset_at));
  g_assert_cmpint (reset_at, ==, NOW + 1800);
  g_assert_true (pooler_quota_state_is_spent (state, NOW + 1799, &reset_at));
  g_assert_false (pooler_quota_state_is_spent (state, NOW + 1800, &reset_at));
  g_assert_cmpint (reset_at, ==, 0);

  /* A shorter block while one runs does not shorten it. */
  shorter = parse_fixture_error ("error-429-usage-limit.json", 429, NOW + 5);
  shorter->blocked_until = NOW + 100;
  pooler_quota_state_merge (state, shorter);
  g_assert_true (pooler_quota_state_is_spent (state, NOW + 200, &reset_at));
  g_assert_cmpint (reset_at, ==, NOW + 1800);

  /* Windows from an error body or the usage poll do not lift it... */
  add_window (state, "codex", 300, 12.5, 1795491436, NOW + 10, POOLER_QUOTA_SOURCE_USAGE_API);
  add_window (state, "codex", 300, 12.5, 1795491436, NOW + 10, POOLER_QUOTA_SOURCE_ERROR);
  g_assert_true (pooler_quota_state_is_spent (state, NOW + 11, NULL));

  /* ...a later answer that served with headers below 100 % does. */
  later = fixture_headers_evidence (NOW + 20);
  pooler_quota_state_merge (state, later);
  g_assert_false (pooler_quota_state_is_spent (state, NOW + 21, &reset_at));
  g_assert_cmpint (reset_at, ==, 0);

  /* News of the old block arriving late does not bring it back. */
  late_block = parse_fixture_error ("error-429-usage-limit.json", 429, NOW + 5);
  pooler_quota_state_merge (state, late_block);
  g_assert_false (pooler_quota_state_is_spent (state, NOW + 21, NULL));
}

static void
test_remaining (void)
{
  g_autoptr(PoolerQuotaState) state = pooler_quota_state_new ();

  g_assert_cmpfloat (pooler_quota_state_remaining (state, NOW), ==, -1);
  g_assert_true (pooler_quota_state_is_stale (state, NOW));

  add_window (state, "codex", 300, 30, NOW + 600, NOW, POOLER_QUOTA_SOURCE_HEADERS);
  add_window (state, "codex", 10080, 72.5, NOW + 90000, NOW, POOLER_QUOTA_SOURCE_HEADERS);
  /* Other families do not count, even when tighter. */
  add_window (state, "codex_bengalfox", 300, 99, NOW + 600, NOW, POOLER_QUOTA_SOURCE_HEADERS);

  g_assert_false (pooler_quota_state_is_stale (state, NOW + POOLER_QUOTA_FRESH_SECONDS));
  g_assert_cmpfloat_with_epsilon (pooler_quota_state_remaining (state, NOW + 1), 27.5, 1e-9);

  /* The 5-hour window rolled over: 100 left there, the weekly one rules. */
  add_window (state, "codex", 10080, 20, NOW + 90000, NOW + 1, POOLER_QUOTA_SOURCE_HEADERS);
  g_assert_cmpfloat_with_epsilon (pooler_quota_state_remaining (state, NOW + 2), 70, 1e-9);
  g_assert_cmpfloat_with_epsilon (pooler_quota_state_remaining (state, NOW + 700), 80, 1e-9);

  /* Stale: no answer. */
  g_assert_cmpfloat (pooler_quota_state_remaining (state, NOW + 2 + POOLER_QUOTA_FRESH_SECONDS), ==, -1);
  g_assert_true (pooler_quota_state_is_stale (state, NOW + 2 + POOLER_QUOTA_FRESH_SECONDS));
}

static void
test_usage_json (void)
{
  g_autoptr(PoolerQuotaState) state = pooler_quota_state_new ();
  g_autoptr(PoolerQuotaState) copy = pooler_quota_state_new ();
  g_autoptr(PoolerQuotaEvidence) usage = NULL;
  g_autoptr(PoolerQuotaEvidence) round = NULL;
  g_autoptr(PoolerQuotaEvidence) credits = NULL;
  g_autoptr(SoupMessageHeaders) credit_headers = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *text = NULL;
  g_autofree char *data = NULL;
  JsonObject *root;
  JsonObject *rate_limit;
  JsonObject *primary;
  JsonObject *secondary;
  gsize length;

  data = fixture_contents ("wham-usage.json", &length);
  usage = pooler_quota_parse_usage (data, length, NOW);
  pooler_quota_state_merge (state, usage);
  add_window (state, "codex_bengalfox", 300, 50, NOW + 100, NOW, POOLER_QUOTA_SOURCE_HEADERS);

  node = pooler_quota_state_to_usage_json (state, NOW + 57);
  root = json_node_get_object (node);
  g_assert_cmpstr (json_object_get_string_member (root, "plan_type"), ==, "plus");
  g_assert_true (json_node_is_null (json_object_get_member (root, "credits")));
  rate_limit = json_object_get_object_member (root, "rate_limit");
  g_assert_true (json_object_get_boolean_member (rate_limit, "allowed"));
  g_assert_false (json_object_get_boolean_member (rate_limit, "limit_reached"));
  primary = json_object_get_object_member (rate_limit, "primary_window");
  secondary = json_object_get_object_member (rate_limit, "secondary_window");
  g_assert_cmpint (json_node_get_value_type (json_object_get_member (primary, "used_percent")),
                   ==, G_TYPE_INT64);
  g_assert_cmpint (json_object_get_int_member (primary, "used_percent"), ==, 12);
  g_assert_cmpint (json_object_get_int_member (primary, "limit_window_seconds"), ==, 18000);
  g_assert_cmpint (json_object_get_int_member (primary, "reset_after_seconds"), ==, USAGE_PRIMARY_RESET - NOW - 57);
  g_assert_cmpint (json_object_get_int_member (primary, "reset_at"), ==, USAGE_PRIMARY_RESET);
  g_assert_cmpint (json_object_get_int_member (secondary, "limit_window_seconds"), ==, 604800);
  g_assert_cmpint (json_object_get_int_member (secondary, "used_percent"), ==, 3);

  /* Through text and back: the same default windows. */
  text = json_to_string (node, FALSE);
  round = pooler_quota_parse_usage (text, strlen (text), NOW + 57);
  g_assert_nonnull (round);
  g_assert_cmpuint (round->windows->len, ==, 2);
  assert_window (round->windows, "codex", 300, 12, USAGE_PRIMARY_RESET, POOLER_QUOTA_SOURCE_USAGE_API);
  assert_window (round->windows, "codex", 10080, 3, USAGE_SECONDARY_RESET, POOLER_QUOTA_SOURCE_USAGE_API);
  g_assert_cmpstr (round->plan_type, ==, "plus");
  g_clear_pointer (&node, json_node_unref);
  g_clear_pointer (&text, g_free);

  /* Fractions stay fractions; spent shows; credits are an object. */
  add_window (copy, "codex", 300, 100, NOW + 500, NOW, POOLER_QUOTA_SOURCE_HEADERS);
  add_window (copy, "codex", 10080, 33.25, NOW - 5, NOW, POOLER_QUOTA_SOURCE_HEADERS);
  credit_headers = make_headers ("x-codex-credits-has-credits", "True",
                                 "x-codex-credits-unlimited", "False",
                                 "x-codex-credits-balance", "9.99",
                                 NULL);
  credits = pooler_quota_parse_headers (credit_headers, NOW);
  pooler_quota_state_merge (copy, credits);

  node = pooler_quota_state_to_usage_json (copy, NOW);
  root = json_node_get_object (node);
  g_assert_true (json_node_is_null (json_object_get_member (root, "plan_type")));
  rate_limit = json_object_get_object_member (root, "rate_limit");
  g_assert_false (json_object_get_boolean_member (rate_limit, "allowed"));
  g_assert_true (json_object_get_boolean_member (rate_limit, "limit_reached"));
  secondary = json_object_get_object_member (rate_limit, "secondary_window");
  g_assert_cmpint (json_node_get_value_type (json_object_get_member (secondary, "used_percent")),
                   ==, G_TYPE_DOUBLE);
  g_assert_cmpfloat (json_object_get_double_member (secondary, "used_percent"), ==, 33.25);
  g_assert_cmpint (json_object_get_int_member (secondary, "reset_after_seconds"), ==, 0);
  root = json_object_get_object_member (root, "credits");
  g_assert_true (json_object_get_boolean_member (root, "has_credits"));
  g_assert_false (json_object_get_boolean_member (root, "unlimited"));
  g_assert_cmpstr (json_object_get_string_member (root, "balance"), ==, "9.99");

  /* With other windows on both sides, the weekly one is still the secondary. */
  g_clear_pointer (&node, json_node_unref);
  add_window (state, "codex", 1440, 1, NOW + 500, NOW, POOLER_QUOTA_SOURCE_HEADERS);
  add_window (state, "codex", 43200, 1, NOW + 500, NOW, POOLER_QUOTA_SOURCE_HEADERS);
  node = pooler_quota_state_to_usage_json (state, NOW);
  rate_limit = json_object_get_object_member (json_node_get_object (node), "rate_limit");
  primary = json_object_get_object_member (rate_limit, "primary_window");
  secondary = json_object_get_object_member (rate_limit, "secondary_window");
  g_assert_cmpint (json_object_get_int_member (primary, "limit_window_seconds"), ==, 18000);
  g_assert_cmpint (json_object_get_int_member (secondary, "limit_window_seconds"), ==, 604800);

  /* A lone weekly window is the primary one. */
  g_clear_pointer (&node, json_node_unref);
  g_clear_pointer (&copy, pooler_quota_state_free);
  copy = pooler_quota_state_new ();
  add_window (copy, "codex", 10080, 5, NOW + 500, NOW, POOLER_QUOTA_SOURCE_HEADERS);
  node = pooler_quota_state_to_usage_json (copy, NOW);
  rate_limit = json_object_get_object_member (json_node_get_object (node), "rate_limit");
  primary = json_object_get_object_member (rate_limit, "primary_window");
  g_assert_cmpint (json_object_get_int_member (primary, "limit_window_seconds"), ==, 604800);
  g_assert_true (json_node_is_null (json_object_get_member (rate_limit, "secondary_window")));
}

/* Fields made from (name, value) pairs, NULL-terminated. */
static PoolerHttpFields *
make_fields (const char *first_name,
             ...)
{
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  const char *name = first_name;
  va_list args;

  va_start (args, first_name);
  while (name != NULL)
    {
      soup_message_headers_append (headers, name, va_arg (args, const char *));
      name = va_arg (args, const char *);
    }
  va_end (args);

  return pooler_http_fields_new_from_soup (headers);
}

static PoolerHttpFields *
answer_fields (void)
{
  return make_fields ("x-codex-primary-used-percent", "60",
                      "x-codex-primary-window-minutes", "300",
                      "Content-Type", "text/event-stream",
                      "x-request-id", "req_7da798d6954d412d",
                      "x-codex-plan-type", "pro",
                      NULL);
}

/* An answer whose x- fields repeat those merged last, in the same second,
 * is recognised; any other difference, or anything merged in between,
 * makes it news again. */
static void
test_repeated_fields (void)
{
  g_autoptr(PoolerQuotaState) state = pooler_quota_state_new ();
  g_autoptr(PoolerHttpFields) first = NULL, same = NULL, with_other = NULL, changed = NULL;
  g_autoptr(PoolerHttpFields) shorter_value = NULL, extra = NULL, fewer = NULL, reordered = NULL;
  g_autoptr(PoolerHttpFields) other_case = NULL, none = NULL;
  g_autoptr(PoolerQuotaEvidence) evidence = NULL;

  /* Two answers alike, field for field. */
  first = answer_fields ();
  same = answer_fields ();
  /* What else an answer carries: another request id, other fields. */
  with_other = make_fields ("Date", "Tue, 24 Nov 2026 10:00:00 GMT",
                            "x-codex-primary-used-percent", "60",
                            "x-request-id", "req_0000000000000001",
                            "x-codex-primary-window-minutes", "300",
                            "x-envoy-upstream-service-time", "12",
                            "x-codex-plan-type", "pro",
                            "Cache-Control", "no-store",
                            NULL);
  changed = make_fields ("x-codex-primary-used-percent", "61",
                         "x-codex-primary-window-minutes", "300",
                         "x-codex-plan-type", "pro",
                         NULL);
  shorter_value = make_fields ("x-codex-primary-used-percent", "6",
                               "x-codex-primary-window-minutes", "300",
                               "x-codex-plan-type", "pro",
                               NULL);
  extra = make_fields ("x-codex-primary-used-percent", "60",
                       "x-codex-primary-window-minutes", "300",
                       "x-codex-plan-type", "pro",
                       "x-codex-secondary-used-percent", "5",
                       NULL);
  fewer = make_fields ("x-codex-primary-used-percent", "60",
                       "x-codex-primary-window-minutes", "300",
                       NULL);
  reordered = make_fields ("x-codex-primary-window-minutes", "300",
                           "x-codex-primary-used-percent", "60",
                           "x-codex-plan-type", "pro",
                           NULL);
  other_case = make_fields ("X-Codex-Primary-Used-Percent", "60",
                            "x-codex-primary-window-minutes", "300",
                            "x-codex-plan-type", "pro",
                            NULL);
  none = make_fields ("Content-Type", "text/event-stream", NULL);

  /* Nothing marked yet. */
  g_assert_false (pooler_quota_state_repeats_fields (state, first, NOW));

  evidence = pooler_quota_parse_fields (first, NOW);
  pooler_quota_state_merge (state, evidence);
  g_assert_false (pooler_quota_state_repeats_fields (state, first, NOW));
  pooler_quota_state_mark_fields (state, first, NOW);

  g_assert_true (pooler_quota_state_repeats_fields (state, first, NOW));
  g_assert_true (pooler_quota_state_repeats_fields (state, same, NOW));
  g_assert_true (pooler_quota_state_repeats_fields (state, with_other, NOW));
  /* Another second: a reset-after field may mean another reset time. */
  g_assert_false (pooler_quota_state_repeats_fields (state, same, NOW + 1));
  g_assert_false (pooler_quota_state_repeats_fields (state, same, NOW - 1));
  g_assert_false (pooler_quota_state_repeats_fields (state, changed, NOW));
  g_assert_false (pooler_quota_state_repeats_fields (state, shorter_value, NOW));
  g_assert_false (pooler_quota_state_repeats_fields (state, extra, NOW));
  g_assert_false (pooler_quota_state_repeats_fields (state, fewer, NOW));
  g_assert_false (pooler_quota_state_repeats_fields (state, reordered, NOW));
  g_assert_false (pooler_quota_state_repeats_fields (state, other_case, NOW));
  g_assert_false (pooler_quota_state_repeats_fields (state, none, NOW));

  /* A window added from elsewhere (an event, a usage poll) voids the
   * mark: the same fields must be merged again to count as the last word. */
  add_window (state, "codex", 300, 90, 0, NOW, POOLER_QUOTA_SOURCE_EVENT);
  g_assert_false (pooler_quota_state_repeats_fields (state, same, NOW));

  pooler_quota_state_merge (state, evidence);
  assert_window (pooler_quota_state_get_windows (state), "codex", 300, 60, 0, POOLER_QUOTA_SOURCE_HEADERS);
  pooler_quota_state_mark_fields (state, same, NOW);
  g_assert_true (pooler_quota_state_repeats_fields (state, first, NOW));

  /* So does any merge, even of evidence with no windows. */
  g_clear_pointer (&evidence, pooler_quota_evidence_free);
  evidence = pooler_quota_evidence_new (NOW);
  pooler_quota_state_merge (state, evidence);
  g_assert_false (pooler_quota_state_repeats_fields (state, first, NOW));

  /* Fields without any x- field mark nothing to repeat. */
  pooler_quota_state_mark_fields (state, none, NOW);
  g_assert_false (pooler_quota_state_repeats_fields (state, none, NOW));
  g_assert_false (pooler_quota_state_repeats_fields (state, first, NOW));
}

static void
assert_same_evidence (const PoolerQuotaEvidence *a,
                      const PoolerQuotaEvidence *b)
{
  /* No evidence at all: NULL. */
  g_assert_true ((a == NULL) == (b == NULL));
  if (a == NULL)
    return;
  g_assert_cmpuint (a->windows->len, ==, b->windows->len);
  for (guint i = 0; i < a->windows->len; i++)
    {
      const PoolerQuotaWindow *x = g_ptr_array_index (a->windows, i);
      const PoolerQuotaWindow *y = g_ptr_array_index (b->windows, i);

      g_assert_cmpstr (x->limit_id, ==, y->limit_id);
      g_assert_cmpstr (x->limit_name, ==, y->limit_name);
      g_assert_cmpint (x->window_minutes, ==, y->window_minutes);
      g_assert_cmpfloat (x->used_percent, ==, y->used_percent);
      g_assert_cmpint (x->reset_at, ==, y->reset_at);
    }
  g_assert_cmpstr (a->plan_type, ==, b->plan_type);
  g_assert_cmpint (a->credits_known, ==, b->credits_known);
  g_assert_cmpint (a->has_credits, ==, b->has_credits);
  g_assert_cmpint (a->credits_unlimited, ==, b->credits_unlimited);
  g_assert_cmpfloat (a->credits_balance, ==, b->credits_balance);
  g_assert_cmpstr (a->limit_reached_type, ==, b->limit_reached_type);
  g_assert_cmpint (a->blocked_until, ==, b->blocked_until);
}

/* Random answers' fields, drawn from names the parse reads and names it
 * does not: whenever the second is taken for a repeat of the first,
 * their evidence is the same. */
static void
test_repeated_fields_same_evidence (void)
{
  static const char * const names[] = {
    "x-codex-primary-used-percent", "X-Codex-Primary-Used-Percent", "x-codex-primary-window-minutes",
    "x-codex-primary-reset-at", "x-codex-primary-reset-after-seconds", "x-codex-secondary-used-percent",
    "x-codex-secondary-window-minutes", "x-codex-secondary-reset-at", "x-codex_bengalfox-primary-used-percent",
    "x-codex_bengalfox-primary-window-minutes", "x-codex_bengalfox-limit-name", "x-codex-credits-has-credits",
    "x-codex-credits-unlimited", "x-codex-credits-balance", "x-codex-plan-type",
    "x-codex-rate-limit-reached-type", "x-request-id", "x-codex-other", "x-envoy-upstream-service-time",
    "Content-Type",
  };
  static const char * const values[] = { "0", "1", "12.5", "100", "300", "10080", "1795491436", "true", "pro", "x" };
  guint repeats = 0;

  for (guint round = 0; round < 4000; round++)
    {
      g_autoptr(PoolerQuotaState) state = pooler_quota_state_new ();
      g_autoptr(SoupMessageHeaders) a = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
      g_autoptr(SoupMessageHeaders) b = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
      g_autoptr(PoolerHttpFields) fa = NULL, fb = NULL;
      g_autoptr(PoolerQuotaEvidence) ea = NULL, eb = NULL;
      guint n = g_random_int_range (0, 8);

      for (guint i = 0; i < n; i++)
        {
          const char *name = names[g_random_int_range (0, G_N_ELEMENTS (names))];
          const char *value = values[g_random_int_range (0, G_N_ELEMENTS (values))];

          soup_message_headers_append (a, name, value);
          /* b: mostly the same field, sometimes another name or value,
           * sometimes one more or one less. */
          switch (g_random_int_range (0, 8))
            {
            case 0:
              soup_message_headers_append (b, names[g_random_int_range (0, G_N_ELEMENTS (names))], value);
              break;
            case 1:
              soup_message_headers_append (b, name, values[g_random_int_range (0, G_N_ELEMENTS (values))]);
              break;
            case 2:
              break;
            case 3:
              soup_message_headers_append (b, name, value);
              soup_message_headers_append (b, names[g_random_int_range (0, G_N_ELEMENTS (names))],
                                           values[g_random_int_range (0, G_N_ELEMENTS (values))]);
              break;
            default:
              soup_message_headers_append (b, name, value);
            }
        }
      fa = pooler_http_fields_new_from_soup (a);
      fb = pooler_http_fields_new_from_soup (b);
      ea = pooler_quota_parse_fields (fa, NOW);
      if (ea != NULL)
        pooler_quota_state_merge (state, ea);
      pooler_quota_state_mark_fields (state, fa, NOW);
      if (!pooler_quota_state_repeats_fields (state, fb, NOW))
        continue;
      repeats++;
      eb = pooler_quota_parse_fields (fb, NOW);
      assert_same_evidence (ea, eb);
    }
  /* The draw makes repeats (and differences) common. */
  g_assert_cmpuint (repeats, >, 400);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/quota/window-kind", test_window_kind);
  g_test_add_func ("/quota/headers/fixture", test_headers_fixture);
  g_test_add_func ("/quota/headers/captures", test_headers_captures);
  g_test_add_func ("/quota/headers/reset-after", test_headers_reset_after);
  g_test_add_func ("/quota/headers/case", test_headers_case);
  g_test_add_func ("/quota/headers/extra-family", test_headers_extra_family);
  g_test_add_func ("/quota/headers/only-x-names", test_headers_only_x_names);
  g_test_add_func ("/quota/headers/repeated", test_headers_repeated);
  g_test_add_func ("/quota/headers/credits", test_headers_credits);
  g_test_add_func ("/quota/headers/weekly-in-primary", test_headers_weekly_in_primary);
  g_test_add_func ("/quota/headers/invalid", test_headers_invalid);
  g_test_add_func ("/quota/error/usage-limit", test_error_usage_limit);
  g_test_add_func ("/quota/error/resets-at", test_error_resets_at);
  g_test_add_func ("/quota/error/rate-limit-exceeded", test_error_rate_limit_exceeded);
  g_test_add_func ("/quota/usage/fixture", test_usage_fixture);
  g_test_add_func ("/quota/usage/variants", test_usage_variants);
  g_test_add_func ("/quota/event", test_event);
  g_test_add_func ("/quota/garbage", test_garbage);
  g_test_add_func ("/quota/state/merge-order", test_merge_order);
  g_test_add_func ("/quota/state/spent-window", test_spent_window);
  g_test_add_func ("/quota/state/spent-block", test_spent_block);
  g_test_add_func ("/quota/state/remaining", test_remaining);
  g_test_add_func ("/quota/state/usage-json", test_usage_json);
  g_test_add_func ("/quota/state/repeated-fields", test_repeated_fields);
  g_test_add_func ("/quota/state/repeated-fields-same-evidence", test_repeated_fields_same_evidence);

  return g_test_run ();
}
