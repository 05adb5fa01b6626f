/* pooler-quota.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-quota"

#include "config.h"

#include <math.h>
#include <string.h>

#include "pooler-json.h"
#include "pooler-quota.h"

/* Beyond any real timestamp or delay; keeps now + value far from overflow. */
#define MAX_SECONDS       G_GINT64_CONSTANT (100000000000)
/* limit_window_seconds must still fit the upstream's 32-bit field. */
#define MAX_WINDOW_MINUTES (G_MAXINT32 / 60)

struct _PoolerQuotaState
{
  GPtrArray *windows;               /* PoolerQuotaWindow*, sorted */
  char      *plan_type;
  gint64     plan_observed_at;
  gboolean   credits_known;
  gboolean   has_credits;
  gboolean   credits_unlimited;
  double     credits_balance;
  gint64     credits_observed_at;
  char      *limit_reached_type;
  gint64     blocked_until;
  gint64     blocked_observed_at;
  /* A later serving answer ended the block; older block news is void. */
  gint64     block_cleared_at;
  gint64     last_observed;
  /* The quota fields of the answer merged last ("name\0value\0"...,
   * is_quota_field()) and the second they were read at; empty once
   * anything else is merged. */
  GByteArray *fields_seen;
  gint64      fields_seen_at;
};

/* Windows */

PoolerQuotaWindow *
pooler_quota_window_copy (const PoolerQuotaWindow *window)
{
  PoolerQuotaWindow *copy;

  g_return_val_if_fail (window != NULL, NULL);

  copy = g_new0 (PoolerQuotaWindow, 1);
  *copy = *window;
  copy->limit_id = g_strdup (window->limit_id);
  copy->limit_name = g_strdup (window->limit_name);

  return copy;
}

void
pooler_quota_window_free (PoolerQuotaWindow *window)
{
  if (window == NULL)
    return;

  g_free (window->limit_id);
  g_free (window->limit_name);
  g_free (window);
}

char *
pooler_quota_window_kind (int window_minutes)
{
  if (window_minutes == 300)
    return g_strdup ("5h");
  if (window_minutes == 7 * 24 * 60)
    return g_strdup ("weekly");
  if (window_minutes > 0 && window_minutes % (24 * 60) == 0)
    return g_strdup_printf ("%dd", window_minutes / (24 * 60));
  if (window_minutes > 0 && window_minutes % 60 == 0)
    return g_strdup_printf ("%dh", window_minutes / 60);

  return g_strdup_printf ("%dm", window_minutes);
}

const char *
pooler_quota_source_to_string (PoolerQuotaSource source)
{
  switch (source)
    {
    case POOLER_QUOTA_SOURCE_HEADERS:
      return "headers";
    case POOLER_QUOTA_SOURCE_EVENT:
      return "event";
    case POOLER_QUOTA_SOURCE_ERROR:
      return "error";
    case POOLER_QUOTA_SOURCE_USAGE_API:
      return "usage_api";
    case POOLER_QUOTA_SOURCE_STORED:
      return "stored";
    default:
      return "unknown";
    }
}

static gboolean
is_default_limit (const PoolerQuotaWindow *window)
{
  return g_strcmp0 (window->limit_id, POOLER_QUOTA_DEFAULT_LIMIT) == 0;
}

static gboolean
is_fresh (const PoolerQuotaWindow *window,
          gint64                   now)
{
  return now - window->observed_at <= POOLER_QUOTA_FRESH_SECONDS;
}

/* Lower case, anything but [a-z0-9] as '_': "codex-bengalfox" ->
 * "codex_bengalfox". NULL for an empty name. */
static char *
normalize_limit_id (const char *name)
{
  g_autofree char *id = NULL;

  if (name == NULL)
    return NULL;

  id = g_ascii_strdown (name, -1);
  g_strstrip (id);
  if (*id == '\0')
    return NULL;

  for (char *p = id; *p != '\0'; p++)
    {
      if (!g_ascii_isalnum (*p))
        *p = '_';
    }

  return g_steal_pointer (&id);
}

/* Scalar parsing shared by headers and JSON. */

static gboolean
parse_double (const char *text,
              double     *out)
{
  char *end = NULL;
  double value;

  if (text == NULL)
    return FALSE;

  /* Surrounding white space is allowed, as g_strstrip() would drop it;
   * no copy (a dozen of these per answer). */
  while (g_ascii_isspace (*text))
    text++;
  if (*text == '\0')
    return FALSE;

  value = g_ascii_strtod (text, &end);
  if (end == text)
    return FALSE;
  while (g_ascii_isspace (*end))
    end++;
  if (*end != '\0' || !isfinite (value))
    return FALSE;

  *out = value;
  return TRUE;
}

static gboolean
parse_bool (const char *text,
            gboolean   *out)
{
  g_autofree char *copy = NULL;

  if (text == NULL)
    return FALSE;

  copy = g_strstrip (g_strdup (text));
  if (g_ascii_strcasecmp (copy, "true") == 0 || g_strcmp0 (copy, "1") == 0)
    *out = TRUE;
  else if (g_ascii_strcasecmp (copy, "false") == 0 || g_strcmp0 (copy, "0") == 0)
    *out = FALSE;
  else
    return FALSE;

  return TRUE;
}

static gboolean
valid_minutes (double minutes,
               int   *out)
{
  if (minutes != floor (minutes) || minutes < 1 || minutes > MAX_WINDOW_MINUTES)
    return FALSE;

  *out = (int) minutes;
  return TRUE;
}

static gboolean
valid_seconds (double  seconds,
               gint64 *out)
{
  if (seconds < 0 || seconds > (double) MAX_SECONDS)
    return FALSE;

  *out = (gint64) seconds;
  return TRUE;
}

/* Unix seconds, or ISO-8601 (UTC unless it says otherwise). */
static gboolean
parse_timestamp (const char *text,
                 gint64     *out)
{
  g_autoptr(GDateTime) when = NULL;
  g_autoptr(GTimeZone) utc = NULL;
  g_autofree char *copy = NULL;
  double seconds;

  if (parse_double (text, &seconds))
    return valid_seconds (seconds, out);

  if (text == NULL)
    return FALSE;

  copy = g_strstrip (g_strdup (text));
  utc = g_time_zone_new_utc ();
  when = g_date_time_new_from_iso8601 (copy, utc);
  if (when == NULL)
    return FALSE;

  return valid_seconds ((double) g_date_time_to_unix (when), out);
}

static double
clamp_percent (double used)
{
  return CLAMP (used, 0.0, 100.0);
}

/* JSON accessors: tolerant of numbers written as strings, as upstreams do. */

static JsonNode *
json_value (JsonObject *object,
            const char *name)
{
  JsonNode *node;

  if (object == NULL || !json_object_has_member (object, name))
    return NULL;

  node = json_object_get_member (object, name);
  return JSON_NODE_HOLDS_VALUE (node) ? node : NULL;
}

static JsonObject *
json_child_object (JsonObject *object,
                   const char *name)
{
  JsonNode *node;

  if (object == NULL || !json_object_has_member (object, name))
    return NULL;

  node = json_object_get_member (object, name);
  return JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

static const char *
json_string (JsonObject *object,
             const char *name)
{
  JsonNode *node = json_value (object, name);
  const char *text;

  if (node == NULL || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;

  text = json_node_get_string (node);
  return text != NULL && *text != '\0' ? text : NULL;
}

static gboolean
json_number (JsonObject *object,
             const char *name,
             double     *out)
{
  JsonNode *node = json_value (object, name);
  GType type;
  double value;

  if (node == NULL)
    return FALSE;

  type = json_node_get_value_type (node);
  if (type == G_TYPE_INT64)
    value = (double) json_node_get_int (node);
  else if (type == G_TYPE_DOUBLE)
    value = json_node_get_double (node);
  else if (type == G_TYPE_STRING)
    return parse_double (json_node_get_string (node), out);
  else
    return FALSE;

  if (!isfinite (value))
    return FALSE;

  *out = value;
  return TRUE;
}

static gboolean
json_bool (JsonObject *object,
           const char *name,
           gboolean   *out)
{
  JsonNode *node = json_value (object, name);
  GType type;

  if (node == NULL)
    return FALSE;

  type = json_node_get_value_type (node);
  if (type == G_TYPE_BOOLEAN)
    {
      *out = json_node_get_boolean (node);
      return TRUE;
    }
  if (type == G_TYPE_INT64)
    {
      gint64 value = json_node_get_int (node);

      if (value != 0 && value != 1)
        return FALSE;
      *out = value == 1;
      return TRUE;
    }
  if (type == G_TYPE_STRING)
    return parse_bool (json_node_get_string (node), out);

  return FALSE;
}

static gboolean
json_timestamp (JsonObject *object,
                const char *name,
                gint64     *out)
{
  JsonNode *node = json_value (object, name);
  double seconds;

  if (node == NULL)
    return FALSE;

  if (json_node_get_value_type (node) == G_TYPE_STRING)
    return parse_timestamp (json_node_get_string (node), out);

  return json_number (object, name, &seconds) && valid_seconds (seconds, out);
}

static gboolean
json_delay (JsonObject *object,
            const char *name,
            gint64     *out)
{
  double seconds;

  return json_number (object, name, &seconds) && valid_seconds (seconds, out);
}

/* When a limit resets, from the first of @reset_names (a time) and the
 * first of @delay_names (seconds from @now) that the object has; with
 * both, the later. The time is in the upstream's clock, the delay in
 * ours: if they disagree, the account is not tried again before either
 * says it may be. A time of 0 is no time. 0 when there is neither. */
static gint64
later_reset (JsonObject         *object,
             const char * const *reset_names,
             gsize               n_reset_names,
             const char * const *delay_names,
             gsize               n_delay_names,
             gint64              now)
{
  gint64 at = 0;
  gint64 after = 0;
  gboolean has_delay = FALSE;

  for (gsize i = 0; i < n_reset_names && at <= 0; i++)
    if (!json_timestamp (object, reset_names[i], &at))
      at = 0;
  for (gsize i = 0; i < n_delay_names && !has_delay; i++)
    has_delay = json_delay (object, delay_names[i], &after);

  if (has_delay)
    return MAX (MAX (at, 0), now + after);
  return MAX (at, 0);
}

/* Evidence */

PoolerQuotaEvidence *
pooler_quota_evidence_new (gint64 observed_at)
{
  PoolerQuotaEvidence *evidence = g_new0 (PoolerQuotaEvidence, 1);

  evidence->windows = g_ptr_array_new_with_free_func ((GDestroyNotify) pooler_quota_window_free);
  evidence->observed_at = observed_at;

  return evidence;
}

void
pooler_quota_evidence_free (PoolerQuotaEvidence *evidence)
{
  if (evidence == NULL)
    return;

  g_clear_pointer (&evidence->windows, g_ptr_array_unref);
  g_free (evidence->plan_type);
  g_free (evidence->limit_reached_type);
  g_free (evidence);
}

static gboolean
evidence_is_empty (const PoolerQuotaEvidence *evidence)
{
  return evidence->windows->len == 0 &&
         evidence->plan_type == NULL &&
         !evidence->credits_known &&
         evidence->limit_reached_type == NULL &&
         evidence->blocked_until == 0;
}

/* Hands back @evidence, or frees it and returns NULL when it says nothing. */
static PoolerQuotaEvidence *
evidence_or_null (PoolerQuotaEvidence *evidence)
{
  if (evidence_is_empty (evidence))
    {
      pooler_quota_evidence_free (evidence);
      return NULL;
    }

  return evidence;
}

static void
evidence_add_window (PoolerQuotaEvidence *evidence,
                     const char          *limit_id,
                     const char          *limit_name,
                     int                  window_minutes,
                     double               used_percent,
                     gint64               reset_at,
                     PoolerQuotaSource    source)
{
  PoolerQuotaWindow *window = g_new0 (PoolerQuotaWindow, 1);

  window->limit_id = g_strdup (limit_id != NULL ? limit_id : POOLER_QUOTA_DEFAULT_LIMIT);
  window->limit_name = g_strdup (limit_name);
  window->window_minutes = window_minutes;
  window->used_percent = clamp_percent (used_percent);
  window->reset_at = reset_at;
  window->observed_at = evidence->observed_at;
  window->source = source;
  g_ptr_array_add (evidence->windows, window);
}

static void
evidence_set_plan (PoolerQuotaEvidence *evidence,
                   const char          *plan_type)
{
  if (plan_type == NULL || *plan_type == '\0')
    return;

  g_free (evidence->plan_type);
  evidence->plan_type = g_strdup (plan_type);
}

/* Response headers */

#define USED_PERCENT_SUFFIX "-used-percent"

/* No real header names a family this long; such a family is passed over. */
#define MAX_FAMILY_LENGTH 200

/* The "x-" headers of an answer, in their order, pointing into the
 * SoupMessageHeaders (valid while it is not changed). An answer carries a
 * dozen or two, so lookups walk the list instead of building a table. */
typedef struct
{
  const char *name;
  const char *value;
  gsize       length;   /* of the name */
} XHeader;

/* g_ascii_tolower(), inline: it runs for every byte of every x- field
 * name of every answer. */
static inline char
ascii_lower (char c)
{
  return c >= 'A' && c <= 'Z' ? (char) (c + ('a' - 'A')) : c;
}

/* Whether @name is an x- field name: the only ones quota evidence is read from. */
static inline gboolean
is_x_field (const char *name)
{
  return ascii_lower (name[0]) == 'x' && name[1] == '-';
}

static void
collect_header (const char *name,
                const char *value,
                gpointer    user_data)
{
  GArray *headers = user_data;
  XHeader header = { name, value, 0 };

  if (!is_x_field (name))
    return;

  header.length = strlen (name);
  g_array_append_val (headers, header);
}

/* Whether the @length bytes at @text are @lower (lower case) in any case;
 * the lengths are known to fit. */
static inline gboolean
piece_is (const char *text,
          const char *lower,
          gsize       length)
{
  for (gsize i = 0; i < length; i++)
    {
      if (ascii_lower (text[i]) != lower[i])
        return FALSE;
    }

  return TRUE;
}

/* The first header named "x-<family>-<slot>-<field>" (or
 * "x-<family>-<field>" when @slot is NULL), in any case, as a table would
 * keep it. Names of another length are passed over without a compare. */
static const char *
header_get (GArray     *headers,
            const char *family,
            const char *slot,
            const char *field)
{
  gsize family_length = strlen (family);
  gsize slot_length = slot != NULL ? strlen (slot) + 1 : 0;
  gsize field_length = strlen (field);
  gsize length = 2 + family_length + 1 + slot_length + field_length;

  for (guint i = 0; i < headers->len; i++)
    {
      const XHeader *header = &g_array_index (headers, XHeader, i);
      const char *p = header->name + 2;

      if (header->length != length ||
          !piece_is (p, family, family_length) || p[family_length] != '-')
        continue;
      p += family_length + 1;
      if (slot != NULL && (!piece_is (p, slot, slot_length - 1) || p[slot_length - 1] != '-'))
        continue;
      p += slot_length;
      if (piece_is (p, field, field_length))
        return header->value;
    }

  return NULL;
}

static void
headers_read_window (PoolerQuotaEvidence *evidence,
                     GArray              *headers,
                     const char          *family,
                     const char          *slot,
                     gint64               now)
{
  g_autofree char *limit_id = NULL;
  const char *limit_name;
  double used;
  double minutes_value;
  int minutes;
  gint64 reset_at = 0;
  gint64 after;

  if (!parse_double (header_get (headers, family, slot, "used-percent"), &used) ||
      !parse_double (header_get (headers, family, slot, "window-minutes"), &minutes_value) ||
      !valid_minutes (minutes_value, &minutes))
    return;

  /* reset-after-seconds is the fallback only: reset-at is the fact. */
  if (!parse_timestamp (header_get (headers, family, slot, "reset-at"), &reset_at))
    {
      double delay;

      reset_at = 0;
      if (parse_double (header_get (headers, family, slot, "reset-after-seconds"), &delay) &&
          valid_seconds (delay, &after))
        reset_at = now + after;
    }

  limit_id = g_strcmp0 (family, POOLER_QUOTA_DEFAULT_LIMIT) == 0
             ? g_strdup (POOLER_QUOTA_DEFAULT_LIMIT)
             : normalize_limit_id (family);
  limit_name = header_get (headers, family, NULL, "limit-name");

  evidence_add_window (evidence, limit_id, limit_name, minutes, used, reset_at,
                       POOLER_QUOTA_SOURCE_HEADERS);
}

/* "x-<family>-primary-used-percent" -> "<family>" in lower case, or NULL. */
static char *
header_family (const char *name,
               gsize       length)
{
  static const char * const suffixes[] = {
    "-primary" USED_PERCENT_SUFFIX,
    "-secondary" USED_PERCENT_SUFFIX,
  };

  for (guint i = 0; i < G_N_ELEMENTS (suffixes); i++)
    {
      gsize suffix_length = strlen (suffixes[i]);
      gsize family_length;

      if (length <= 2 + suffix_length ||
          g_ascii_strcasecmp (name + length - suffix_length, suffixes[i]) != 0)
        continue;

      family_length = length - 2 - suffix_length;
      if (family_length > MAX_FAMILY_LENGTH)
        return NULL;
      return g_ascii_strdown (name + 2, family_length);
    }

  return NULL;
}

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return g_strcmp0 (*(const char * const *) a, *(const char * const *) b);
}

/* Room for a dozen, under the 1 KB at which glibc's malloc folds its
 * fast bins together first (this runs for every answer). */
static GArray *
new_table (void)
{
  return g_array_sized_new (FALSE, FALSE, sizeof (XHeader), 12);
}

static PoolerQuotaEvidence *parse_table (GArray *table,
                                         gint64  now);

PoolerQuotaEvidence *
pooler_quota_parse_headers (SoupMessageHeaders *headers,
                            gint64              now)
{
  g_autoptr(GArray) table = NULL;

  g_return_val_if_fail (headers != NULL, NULL);

  table = new_table ();
  soup_message_headers_foreach (headers, collect_header, table);
  return parse_table (table, now);
}

PoolerQuotaEvidence *
pooler_quota_parse_fields (const PoolerHttpFields *fields,
                           gint64                  now)
{
  g_autoptr(GArray) table = NULL;

  g_return_val_if_fail (fields != NULL, NULL);

  table = new_table ();
  for (guint i = 0; i < pooler_http_fields_get_n (fields); i++)
    {
      const PoolerHttpField *field = pooler_http_fields_get (fields, i);

      collect_header (field->name, field->value, table);
    }
  return parse_table (table, now);
}

/* The evidence in the x- fields @table holds (collect_header()). */
static PoolerQuotaEvidence *
parse_table (GArray *table,
             gint64  now)
{
  g_autoptr(GPtrArray) family_list = NULL;
  PoolerQuotaEvidence *evidence;
  gboolean flag;
  double balance;
  const char *value;

  /* Both slots name the same family; list each once. */
  family_list = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < table->len; i++)
    {
      const XHeader *header = &g_array_index (table, XHeader, i);
      char *family = header_family (header->name, header->length);

      if (family == NULL ||
          g_ptr_array_find_with_equal_func (family_list, family, g_str_equal, NULL))
        {
          g_free (family);
          continue;
        }

      g_ptr_array_add (family_list, family);
    }

  evidence = pooler_quota_evidence_new (now);

  /* Sorted, so the window order does not depend on the header order. */
  g_ptr_array_sort (family_list, compare_strings);
  for (guint i = 0; i < family_list->len; i++)
    {
      const char *family = g_ptr_array_index (family_list, i);

      headers_read_window (evidence, table, family, "primary", now);
      headers_read_window (evidence, table, family, "secondary", now);
    }

  if (parse_bool (header_get (table, "codex", "credits", "has-credits"), &flag))
    {
      evidence->credits_known = TRUE;
      evidence->has_credits = flag;
    }
  if (parse_bool (header_get (table, "codex", "credits", "unlimited"), &flag))
    {
      evidence->credits_known = TRUE;
      evidence->credits_unlimited = flag;
    }
  if (evidence->credits_known &&
      parse_double (header_get (table, "codex", "credits", "balance"), &balance))
    evidence->credits_balance = balance;

  if ((value = header_get (table, "codex", NULL, "plan-type")) != NULL)
    {
      g_autofree char *plan = g_strstrip (g_strdup (value));

      evidence_set_plan (evidence, plan);
    }

  if ((value = header_get (table, "codex", "rate-limit", "reached-type")) != NULL)
    {
      g_autofree char *type = g_strstrip (g_strdup (value));

      if (*type != '\0')
        evidence->limit_reached_type = g_steal_pointer (&type);
    }

  return evidence_or_null (evidence);
}

/* JSON sources */

static void
json_read_credits (PoolerQuotaEvidence *evidence,
                   JsonObject          *credits)
{
  gboolean flag;
  double balance;

  if (credits == NULL)
    return;

  if (json_bool (credits, "has_credits", &flag))
    {
      evidence->credits_known = TRUE;
      evidence->has_credits = flag;
    }
  if (json_bool (credits, "unlimited", &flag))
    {
      evidence->credits_known = TRUE;
      evidence->credits_unlimited = flag;
    }
  if (evidence->credits_known && json_number (credits, "balance", &balance))
    evidence->credits_balance = balance;
}

/* One window object of an event, error body or usage answer. Length from
 * window_minutes / limit_window_minutes, else limit_window_seconds; reset
 * from reset_at / resets_at, else now + the first delay given. */
static void
json_read_window (PoolerQuotaEvidence *evidence,
                  JsonObject          *object,
                  const char          *limit_id,
                  const char          *limit_name,
                  PoolerQuotaSource    source,
                  gint64               now)
{
  static const char * const reset_names[] = { "reset_at", "resets_at" };
  static const char * const delay_names[] = {
    "reset_after_seconds", "resets_after_seconds", "resets_in_seconds",
  };
  double used;
  double length;
  int minutes = 0;
  gint64 reset_at = 0;

  if (object == NULL)
    return;

  if (!json_number (object, "used_percent", &used) &&
      !json_number (object, "usage_percent", &used))
    return;

  if (json_number (object, "window_minutes", &length) ||
      json_number (object, "limit_window_minutes", &length))
    {
      if (!valid_minutes (length, &minutes))
        return;
    }
  else if (json_number (object, "limit_window_seconds", &length) ||
           json_number (object, "window_seconds", &length))
    {
      if (length != floor (length) || !valid_minutes (floor (length / 60), &minutes))
        return;
    }
  else
    return;

  reset_at = later_reset (object, reset_names, G_N_ELEMENTS (reset_names),
                          delay_names, G_N_ELEMENTS (delay_names), now);

  evidence_add_window (evidence, limit_id, limit_name, minutes, used, reset_at, source);
}

static JsonObject *
json_first_object (JsonObject *object,
                   const char *first,
                   const char *second)
{
  JsonObject *found = json_child_object (object, first);

  return found != NULL ? found : json_child_object (object, second);
}

/* The first of @names present as a non-empty string. */
static const char *
json_first_string (JsonObject         *object,
                   const char * const *names,
                   guint               n_names)
{
  for (guint i = 0; i < n_names; i++)
    {
      const char *text = json_string (object, names[i]);

      if (text != NULL)
        return text;
    }

  return NULL;
}

static JsonObject *
parse_object (const char *data,
              gsize       length)
{
  g_autoptr(GError) error = NULL;
  JsonObject *object;

  if (data == NULL || length == 0)
    return NULL;

  object = pooler_json_parse_object (data, length, &error);
  if (object == NULL)
    g_debug ("Ignoring a quota document that does not parse: %s", error->message);

  return object;
}

PoolerQuotaEvidence *
pooler_quota_parse_event (const char *data,
                          gsize       length,
                          gint64      now)
{
  static const char * const id_names[] = { "metered_limit_name", "limit_name", "limit_id" };
  g_autoptr(JsonObject) root = NULL;
  g_autofree char *limit_id = NULL;
  PoolerQuotaEvidence *evidence;
  JsonObject *rate_limits;
  const char *name;

  root = parse_object (data, length);
  if (root == NULL || g_strcmp0 (json_string (root, "type"), "codex.rate_limits") != 0)
    return NULL;

  name = json_first_string (root, id_names, G_N_ELEMENTS (id_names));
  limit_id = normalize_limit_id (name);
  if (limit_id == NULL)
    {
      limit_id = g_strdup (POOLER_QUOTA_DEFAULT_LIMIT);
      name = NULL;
    }

  evidence = pooler_quota_evidence_new (now);
  rate_limits = json_child_object (root, "rate_limits");
  json_read_window (evidence, json_child_object (rate_limits, "primary"),
                    limit_id, name, POOLER_QUOTA_SOURCE_EVENT, now);
  json_read_window (evidence, json_child_object (rate_limits, "secondary"),
                    limit_id, name, POOLER_QUOTA_SOURCE_EVENT, now);
  json_read_credits (evidence, json_child_object (root, "credits"));
  evidence_set_plan (evidence, json_string (root, "plan_type"));

  return evidence_or_null (evidence);
}

/* Error types that speak of quota; anything else (server_error, ...) only
 * counts as a limit when the status is 429. */
static gboolean
is_limit_type (const char *type)
{
  static const char * const types[] = {
    "usage_limit_reached",
    "usage_limit_exceeded",
    "usage_not_included",
    "rate_limit_exceeded",
    "rate_limit_reached",
    "workspace_owner_credits_depleted",
    "workspace_member_credits_depleted",
    "workspace_owner_usage_limit_reached",
    "workspace_member_usage_limit_reached",
  };

  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    {
      if (g_strcmp0 (type, types[i]) == 0)
        return TRUE;
    }

  return FALSE;
}

PoolerQuotaEvidence *
pooler_quota_parse_error_body (guint       status,
                               const char *data,
                               gsize       length,
                               gint64      now)
{
  static const char * const id_names[] = { "limit_id", "metered_feature", "limit_name" };
  static const char * const reset_names[] = { "resets_at", "reset_at" };
  static const char * const delay_names[] = { "resets_in_seconds", "reset_after_seconds" };
  g_autoptr(JsonObject) root = NULL;
  g_autofree char *limit_id = NULL;
  PoolerQuotaEvidence *evidence;
  JsonObject *error;
  const char *type;
  const char *plan;

  root = parse_object (data, length);
  if (root == NULL)
    return NULL;

  evidence = pooler_quota_evidence_new (now);

  /* The type only counts inside "error"; other fields may sit at the top. */
  error = json_child_object (root, "error");
  type = json_string (error, "type");
  if (type == NULL || (!is_limit_type (type) && is_limit_type (json_string (error, "code"))))
    type = json_string (error, "code");
  if (error == NULL)
    error = root;

  /* libsoup has no name for 429 Too Many Requests. */
  if (type != NULL && (status == 429 || is_limit_type (type)))
    {
      evidence->limit_reached_type = g_strdup (type);

      evidence->blocked_until = later_reset (error, reset_names, G_N_ELEMENTS (reset_names),
                                             delay_names, G_N_ELEMENTS (delay_names), now);
    }

  plan = json_string (error, "plan_type");
  evidence_set_plan (evidence, plan != NULL ? plan : json_string (root, "plan_type"));

  limit_id = normalize_limit_id (json_first_string (error, id_names, G_N_ELEMENTS (id_names)));
  json_read_window (evidence, error, limit_id,
                    json_string (error, "limit_name"), POOLER_QUOTA_SOURCE_ERROR, now);

  return evidence_or_null (evidence);
}

/* A wham/usage "rate_limit" object: both windows of one limit. */
static void
usage_read_rate_limit (PoolerQuotaEvidence *evidence,
                       JsonObject          *rate_limit,
                       const char          *limit_id,
                       const char          *limit_name,
                       gint64               now)
{
  json_read_window (evidence, json_first_object (rate_limit, "primary_window", "primary"),
                    limit_id, limit_name, POOLER_QUOTA_SOURCE_USAGE_API, now);
  json_read_window (evidence, json_first_object (rate_limit, "secondary_window", "secondary"),
                    limit_id, limit_name, POOLER_QUOTA_SOURCE_USAGE_API, now);
}

PoolerQuotaEvidence *
pooler_quota_parse_usage (const char *data,
                          gsize       length,
                          gint64      now)
{
  static const char * const id_names[] = { "limit_id", "metered_feature", "limit_name" };
  g_autoptr(JsonObject) root = NULL;
  PoolerQuotaEvidence *evidence;
  JsonObject *rate_limit;
  JsonNode *extra;
  gboolean reached = FALSE;
  gboolean allowed = TRUE;

  root = parse_object (data, length);
  if (root == NULL)
    return NULL;

  evidence = pooler_quota_evidence_new (now);
  evidence_set_plan (evidence, json_string (root, "plan_type"));
  json_read_credits (evidence, json_child_object (root, "credits"));

  rate_limit = json_child_object (root, "rate_limit");
  usage_read_rate_limit (evidence, rate_limit, POOLER_QUOTA_DEFAULT_LIMIT, NULL, now);

  /* No block: the usage answer says when windows reset, not the account. */
  if ((json_bool (rate_limit, "limit_reached", &reached) && reached) ||
      (json_bool (rate_limit, "allowed", &allowed) && !allowed))
    {
      const char *type = json_string (json_child_object (root, "rate_limit_reached_type"), "type");

      evidence->limit_reached_type = g_strdup (type != NULL ? type : "rate_limit_reached");
    }

  extra = json_object_get_member (root, "additional_rate_limits");
  if (extra != NULL && JSON_NODE_HOLDS_ARRAY (extra))
    {
      JsonArray *array = json_node_get_array (extra);

      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          JsonNode *node = json_array_get_element (array, i);
          g_autofree char *limit_id = NULL;
          JsonObject *entry;

          if (!JSON_NODE_HOLDS_OBJECT (node))
            continue;

          entry = json_node_get_object (node);
          limit_id = normalize_limit_id (json_first_string (entry, id_names,
                                                            G_N_ELEMENTS (id_names)));
          if (limit_id == NULL)
            continue;

          usage_read_rate_limit (evidence, json_child_object (entry, "rate_limit"),
                                 limit_id, json_string (entry, "limit_name"), now);
        }
    }

  return evidence_or_null (evidence);
}

/* State */

PoolerQuotaState *
pooler_quota_state_new (void)
{
  PoolerQuotaState *state = g_new0 (PoolerQuotaState, 1);

  state->windows = g_ptr_array_new_with_free_func ((GDestroyNotify) pooler_quota_window_free);

  return state;
}

void
pooler_quota_state_free (PoolerQuotaState *state)
{
  if (state == NULL)
    return;

  g_clear_pointer (&state->windows, g_ptr_array_unref);
  g_clear_pointer (&state->fields_seen, g_byte_array_unref);
  g_free (state->plan_type);
  g_free (state->limit_reached_type);
  g_free (state);
}

static int
compare_windows (gconstpointer a,
                 gconstpointer b)
{
  const PoolerQuotaWindow *left = *(PoolerQuotaWindow * const *) a;
  const PoolerQuotaWindow *right = *(PoolerQuotaWindow * const *) b;
  int by_id = g_strcmp0 (left->limit_id, right->limit_id);

  if (by_id != 0)
    return by_id;

  return (left->window_minutes > right->window_minutes) -
         (left->window_minutes < right->window_minutes);
}

static void
state_forget_fields (PoolerQuotaState *state)
{
  if (state->fields_seen != NULL)
    g_byte_array_set_size (state->fields_seen, 0);
}

static void
state_observed (PoolerQuotaState *state,
                gint64            observed_at)
{
  state->last_observed = MAX (state->last_observed, observed_at);
}

/* The account served after the block was recorded: a 429 block is over. */
static void
state_maybe_clear_block (PoolerQuotaState        *state,
                         const PoolerQuotaWindow *window)
{
  if (state->blocked_until == 0 ||
      !is_default_limit (window) ||
      (window->source != POOLER_QUOTA_SOURCE_HEADERS &&
       window->source != POOLER_QUOTA_SOURCE_EVENT) ||
      window->used_percent >= 100 ||
      window->observed_at <= state->blocked_observed_at)
    return;

  state->blocked_until = 0;
  state->block_cleared_at = window->observed_at;
  g_clear_pointer (&state->limit_reached_type, g_free);
}

static void
state_take_window (PoolerQuotaState        *state,
                   const PoolerQuotaWindow *window)
{
  state_observed (state, window->observed_at);

  for (guint i = 0; i < state->windows->len; i++)
    {
      PoolerQuotaWindow *old = g_ptr_array_index (state->windows, i);
      PoolerQuotaWindow *copy;

      if (old->window_minutes != window->window_minutes ||
          g_strcmp0 (old->limit_id, window->limit_id) != 0)
        continue;

      /* An older observation never overwrites a newer one. */
      if (window->observed_at < old->observed_at)
        return;

      copy = pooler_quota_window_copy (window);
      /* Stored rows carry no display name; keep the one we had. */
      if (copy->limit_name == NULL)
        copy->limit_name = g_strdup (old->limit_name);
      g_ptr_array_index (state->windows, i) = copy;
      pooler_quota_window_free (old);
      state_maybe_clear_block (state, copy);
      return;
    }

  g_ptr_array_add (state->windows, pooler_quota_window_copy (window));
  g_ptr_array_sort (state->windows, compare_windows);
  state_maybe_clear_block (state, window);
}

void
pooler_quota_state_add_window (PoolerQuotaState        *state,
                               const PoolerQuotaWindow *window)
{
  g_return_if_fail (state != NULL);
  g_return_if_fail (window != NULL);
  g_return_if_fail (window->limit_id != NULL);
  g_return_if_fail (window->window_minutes > 0);

  state_forget_fields (state);
  state_take_window (state, window);
}

void
pooler_quota_state_merge (PoolerQuotaState          *state,
                          const PoolerQuotaEvidence *evidence)
{
  gint64 at;

  g_return_if_fail (state != NULL);
  g_return_if_fail (evidence != NULL);

  at = evidence->observed_at;
  state_forget_fields (state);
  state_observed (state, at);

  /* Windows before the block: a block in the same evidence is not undone
   * by windows observed at the same moment. */
  for (guint i = 0; i < evidence->windows->len; i++)
    {
      const PoolerQuotaWindow *window = g_ptr_array_index (evidence->windows, i);

      if (window->limit_id != NULL && window->window_minutes > 0)
        state_take_window (state, window);
    }

  if (evidence->plan_type != NULL && at >= state->plan_observed_at)
    {
      g_free (state->plan_type);
      state->plan_type = g_strdup (evidence->plan_type);
      state->plan_observed_at = at;
    }

  if (evidence->credits_known && at >= state->credits_observed_at)
    {
      state->credits_known = TRUE;
      state->has_credits = evidence->has_credits;
      state->credits_unlimited = evidence->credits_unlimited;
      state->credits_balance = evidence->credits_balance;
      state->credits_observed_at = at;
    }

  if (at < state->block_cleared_at)
    return;

  if (evidence->limit_reached_type != NULL)
    {
      g_free (state->limit_reached_type);
      state->limit_reached_type = g_strdup (evidence->limit_reached_type);
    }

  if (evidence->blocked_until > 0)
    {
      /* A block still running only grows; one that has passed is replaced. */
      if (state->blocked_until > at)
        state->blocked_until = MAX (state->blocked_until, evidence->blocked_until);
      else
        state->blocked_until = evidence->blocked_until;
      state->blocked_observed_at = MAX (state->blocked_observed_at, at);
    }
}

/* Whether @name is one the header parse may read: an x- field named
 * after one of the pieces it looks for (parse_table(), headers_read_window()).
 * The others (x-request-id, which differs on every answer) cannot change
 * the evidence, so they do not make an answer's quota fields new. */
static gboolean
is_quota_field (const char *name)
{
#define ENDING(text) { text, sizeof text - 1 }
  static const struct
  {
    const char *text;
    gsize       length;
  } endings[] = {
    ENDING (USED_PERCENT_SUFFIX), ENDING ("-window-minutes"), ENDING ("-reset-at"),
    ENDING ("-reset-after-seconds"), ENDING ("-limit-name"), ENDING ("-has-credits"),
    ENDING ("-unlimited"), ENDING ("-balance"), ENDING ("-plan-type"), ENDING ("-reached-type"),
  };
#undef ENDING
  gsize length;
  char last;

  if (!is_x_field (name))
    return FALSE;
  length = strlen (name);
  last = ascii_lower (name[length - 1]);
  /* Every answer has a dozen x- fields: the last letter first. */
  for (guint i = 0; i < G_N_ELEMENTS (endings); i++)
    if (endings[i].text[endings[i].length - 1] == last && length > 2 + endings[i].length &&
        piece_is (name + length - endings[i].length, endings[i].text, endings[i].length))
      return TRUE;

  return FALSE;
}

gboolean
pooler_quota_state_repeats_fields (PoolerQuotaState       *state,
                                   const PoolerHttpFields *fields,
                                   gint64                  now)
{
  const guint8 *seen, *end;

  g_return_val_if_fail (state != NULL, FALSE);
  g_return_val_if_fail (fields != NULL, FALSE);

  if (state->fields_seen == NULL || state->fields_seen->len == 0 || state->fields_seen_at != now)
    return FALSE;

  seen = state->fields_seen->data;
  end = seen + state->fields_seen->len;
  for (guint i = 0; i < pooler_http_fields_get_n (fields); i++)
    {
      const PoolerHttpField *field = pooler_http_fields_get (fields, i);
      gsize name_size, value_size;

      if (!is_quota_field (field->name))
        continue;
      /* Each string with its NUL: the NUL ends a compare that would
       * otherwise run on into the next field. */
      name_size = strlen (field->name) + 1;
      value_size = strlen (field->value) + 1;
      if ((gsize) (end - seen) < name_size + value_size ||
          memcmp (seen, field->name, name_size) != 0 ||
          memcmp (seen + name_size, field->value, value_size) != 0)
        return FALSE;
      seen += name_size + value_size;
    }

  return seen == end;
}

void
pooler_quota_state_mark_fields (PoolerQuotaState       *state,
                                const PoolerHttpFields *fields,
                                gint64                  now)
{
  g_return_if_fail (state != NULL);
  g_return_if_fail (fields != NULL);

  if (state->fields_seen == NULL)
    state->fields_seen = g_byte_array_new ();
  g_byte_array_set_size (state->fields_seen, 0);
  for (guint i = 0; i < pooler_http_fields_get_n (fields); i++)
    {
      const PoolerHttpField *field = pooler_http_fields_get (fields, i);

      if (!is_quota_field (field->name))
        continue;
      g_byte_array_append (state->fields_seen, (const guint8 *) field->name, (guint) strlen (field->name) + 1);
      g_byte_array_append (state->fields_seen, (const guint8 *) field->value, (guint) strlen (field->value) + 1);
    }
  /* An answer without quota fields marks nothing: its (empty) evidence
   * is merged each time, at no cost worth saving. */
  state->fields_seen_at = now;
}

gboolean
pooler_quota_state_is_spent (PoolerQuotaState *state,
                             gint64            now,
                             gint64           *out_reset_at)
{
  gboolean spent = FALSE;
  gint64 reset_at = 0;

  g_return_val_if_fail (state != NULL, FALSE);

  if (state->blocked_until > now)
    {
      spent = TRUE;
      reset_at = state->blocked_until;
    }

  for (guint i = 0; i < state->windows->len; i++)
    {
      const PoolerQuotaWindow *window = g_ptr_array_index (state->windows, i);
      gint64 back_at;

      if (!is_default_limit (window) || !is_fresh (window, now) ||
          window->used_percent < 100)
        continue;

      if (window->reset_at > now)
        back_at = window->reset_at;
      else if (window->reset_at == 0)
        /* Reset unknown: spent for as long as the evidence is fresh. */
        back_at = window->observed_at + POOLER_QUOTA_FRESH_SECONDS;
      else
        continue;

      spent = TRUE;
      reset_at = MAX (reset_at, back_at);
    }

  if (out_reset_at != NULL)
    *out_reset_at = spent ? reset_at : 0;

  return spent;
}

gboolean
pooler_quota_state_is_stale (PoolerQuotaState *state,
                             gint64            now)
{
  g_return_val_if_fail (state != NULL, TRUE);

  for (guint i = 0; i < state->windows->len; i++)
    {
      const PoolerQuotaWindow *window = g_ptr_array_index (state->windows, i);

      if (is_default_limit (window) && is_fresh (window, now))
        return FALSE;
    }

  return TRUE;
}

double
pooler_quota_state_remaining (PoolerQuotaState *state,
                              gint64            now)
{
  double remaining = -1;

  g_return_val_if_fail (state != NULL, -1);

  for (guint i = 0; i < state->windows->len; i++)
    {
      const PoolerQuotaWindow *window = g_ptr_array_index (state->windows, i);
      double left;

      if (!is_default_limit (window) || !is_fresh (window, now))
        continue;

      /* A window whose reset has passed has rolled over. */
      if (window->reset_at != 0 && window->reset_at <= now)
        left = 100;
      else
        left = 100 - window->used_percent;

      remaining = remaining < 0 ? left : MIN (remaining, left);
    }

  return remaining;
}

gint64
pooler_quota_state_last_observed (PoolerQuotaState *state)
{
  g_return_val_if_fail (state != NULL, 0);

  return state->last_observed;
}

const char *
pooler_quota_state_get_plan_type (PoolerQuotaState *state)
{
  g_return_val_if_fail (state != NULL, NULL);

  return state->plan_type;
}

GPtrArray *
pooler_quota_state_get_windows (PoolerQuotaState *state)
{
  g_return_val_if_fail (state != NULL, NULL);

  return state->windows;
}

static void
add_window_json (JsonBuilder             *builder,
                 const char              *member,
                 const PoolerQuotaWindow *window,
                 gint64                   now)
{
  json_builder_set_member_name (builder, member);
  if (window == NULL)
    {
      json_builder_add_null_value (builder);
      return;
    }

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "used_percent");
  if (window->used_percent == floor (window->used_percent))
    json_builder_add_int_value (builder, (gint64) window->used_percent);
  else
    json_builder_add_double_value (builder, window->used_percent);
  json_builder_set_member_name (builder, "limit_window_seconds");
  json_builder_add_int_value (builder, (gint64) window->window_minutes * 60);
  json_builder_set_member_name (builder, "reset_after_seconds");
  json_builder_add_int_value (builder, window->reset_at > now ? window->reset_at - now : 0);
  json_builder_set_member_name (builder, "reset_at");
  json_builder_add_int_value (builder, window->reset_at);
  json_builder_end_object (builder);
}

JsonNode *
pooler_quota_state_to_usage_json (PoolerQuotaState *state,
                                  gint64            now)
{
  g_autoptr(JsonBuilder) builder = NULL;
  const PoolerQuotaWindow *primary = NULL;
  const PoolerQuotaWindow *secondary = NULL;
  gboolean spent;

  g_return_val_if_fail (state != NULL, NULL);

  /* Sorted by minutes within a limit: the first default window is the
   * shortest; the weekly one, else the longest other, is the secondary. */
  for (guint i = 0; i < state->windows->len; i++)
    {
      const PoolerQuotaWindow *window = g_ptr_array_index (state->windows, i);

      if (!is_default_limit (window))
        continue;

      if (primary == NULL)
        primary = window;
      else if (secondary == NULL || secondary->window_minutes != 7 * 24 * 60)
        secondary = window;
    }

  spent = pooler_quota_state_is_spent (state, now, NULL);

  builder = json_builder_new ();
  json_builder_begin_object (builder);

  json_builder_set_member_name (builder, "plan_type");
  if (state->plan_type != NULL)
    json_builder_add_string_value (builder, state->plan_type);
  else
    json_builder_add_null_value (builder);

  json_builder_set_member_name (builder, "rate_limit");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "allowed");
  json_builder_add_boolean_value (builder, !spent);
  json_builder_set_member_name (builder, "limit_reached");
  json_builder_add_boolean_value (builder, spent);
  add_window_json (builder, "primary_window", primary, now);
  add_window_json (builder, "secondary_window", secondary, now);
  json_builder_end_object (builder);

  json_builder_set_member_name (builder, "credits");
  if (!state->credits_known)
    json_builder_add_null_value (builder);
  else
    {
      char balance[G_ASCII_DTOSTR_BUF_SIZE];

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "has_credits");
      json_builder_add_boolean_value (builder, state->has_credits);
      json_builder_set_member_name (builder, "unlimited");
      json_builder_add_boolean_value (builder, state->credits_unlimited);
      /* The upstream writes the balance as a decimal string ("9.99");
       * 15 digits drop the binary noise of 9.99 as a double. */
      json_builder_set_member_name (builder, "balance");
      json_builder_add_string_value (builder,
                                     g_ascii_formatd (balance, sizeof balance, "%.15g",
                                                      state->credits_balance));
      json_builder_end_object (builder);
    }

  json_builder_end_object (builder);

  return json_builder_get_root (builder);
}
