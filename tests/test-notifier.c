/* test-notifier.c: PoolerNotifier against a real notification daemon
 * (python3-dbusmock's notification_daemon template) on the session bus.
 *
 * Run under: dbus-run-session -- build-aux/with-keyring test-notifier
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <string.h>

#include <gio/gio.h>

#include "pooler-account.h"
#include "pooler-notifier.h"
#include "pooler-pool.h"
#include "pooler-service.h"

#define PYTHON "/usr/bin/python3"
#define NOTIFY_NAME "org.freedesktop.Notifications"
#define NOTIFY_PATH "/org/freedesktop/Notifications"
#define MOCK_IFACE "org.freedesktop.DBus.Mock"
#define NOTIFY_SIGNATURE "susssasa{sv}i"

static GDBusConnection *bus;
static GSubprocess *mock;
static const char *skip_reason;

/* One Notify call as the daemon received it. */
typedef struct
{
  char    *app_name;
  guint32  replaces_id;
  char    *summary;
  char    *body;
  int      urgency;   /* -1 without the hint */
  char    *category;
  char    *desktop_entry;
} NotifyCall;

static void
notify_call_free (gpointer data)
{
  NotifyCall *call = data;

  g_free (call->app_name);
  g_free (call->summary);
  g_free (call->body);
  g_free (call->category);
  g_free (call->desktop_entry);
  g_free (call);
}

static gboolean
name_has_owner (const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  gboolean owned = FALSE;

  reply = g_dbus_connection_call_sync (bus, "org.freedesktop.DBus",
                                       "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "NameHasOwner",
                                       g_variant_new ("(s)", name),
                                       G_VARIANT_TYPE ("(b)"),
                                       G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(b)", &owned);
  return owned;
}

static gboolean
name_is_activatable (const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree const char **names = NULL;

  reply = g_dbus_connection_call_sync (bus, "org.freedesktop.DBus",
                                       "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "ListActivatableNames",
                                       NULL, G_VARIANT_TYPE ("(as)"),
                                       G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(^a&s)", &names);
  return g_strv_contains (names, name);
}

static void
wait_for_owner (gboolean owned)
{
  gint64 deadline = g_get_monotonic_time () + 10 * G_TIME_SPAN_SECOND;

  while (name_has_owner (NOTIFY_NAME) != owned)
    {
      if (g_get_monotonic_time () > deadline)
        g_error ("%s %s within 10 s", NOTIFY_NAME,
                 owned ? "got no owner" : "kept its owner");
      g_usleep (20 * G_TIME_SPAN_MILLISECOND);
    }
}

static void
start_mock (void)
{
  g_autoptr(GError) error = NULL;

  if (mock != NULL)
    return;

  mock = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE, &error,
                           PYTHON, "-m", "dbusmock",
                           "--template", "notification_daemon", NULL);
  g_assert_no_error (error);
  wait_for_owner (TRUE);
}

static void
stop_mock (void)
{
  g_autoptr(GError) error = NULL;

  if (mock == NULL)
    return;

  g_subprocess_force_exit (mock);
  g_subprocess_wait (mock, NULL, &error);
  g_assert_no_error (error);
  g_clear_object (&mock);
  wait_for_owner (FALSE);
}

static GVariant *
call_daemon (const char         *interface,
             const char         *method,
             GVariant           *parameters,
             const GVariantType *reply_type)
{
  g_autoptr(GError) error = NULL;
  GVariant *reply;

  reply = g_dbus_connection_call_sync (bus, NOTIFY_NAME, NOTIFY_PATH,
                                       interface, method, parameters, reply_type,
                                       G_DBUS_CALL_FLAGS_NO_AUTO_START, 10000,
                                       NULL, &error);
  g_assert_no_error (error);
  return reply;
}

/* Shows a notification of our own and returns the id the daemon gave it:
 * the mock counts ids up from there. */
static guint32
probe_next_id (void)
{
  g_autoptr(GVariant) reply = NULL;
  guint32 id = 0;

  reply = call_daemon (NOTIFY_NAME, "Notify",
                       g_variant_new ("(susssasa{sv}i)", "probe", 0, "", "probe", "",
                                      NULL, NULL, -1),
                       G_VARIANT_TYPE ("(u)"));
  g_variant_get (reply, "(u)", &id);
  g_variant_unref (call_daemon (MOCK_IFACE, "ClearCalls", NULL, NULL));
  return id + 1;
}

static GPtrArray *
get_notify_calls (void)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariantIter) iter = NULL;
  GPtrArray *calls = g_ptr_array_new_with_free_func (notify_call_free);
  GVariant *args;
  guint64 timestamp;

  reply = call_daemon (MOCK_IFACE, "GetMethodCalls", g_variant_new ("(s)", "Notify"),
                       G_VARIANT_TYPE ("(a(tav))"));
  g_variant_get (reply, "(a(tav))", &iter);

  while (g_variant_iter_next (iter, "(t@av)", &timestamp, &args))
    {
      NotifyCall *call = g_new0 (NotifyCall, 1);
      g_autoptr(GVariant) hints = NULL;
      g_autoptr(GVariant) urgency = NULL;
      guint i;

      g_assert_cmpuint (g_variant_n_children (args), ==, 8);

      /* dbusmock hands the arguments back as variants of its own choosing:
       * check each type before reading it. */
      for (i = 0; i < 8; i++)
        {
          g_autoptr(GVariant) boxed = g_variant_get_child_value (args, i);
          g_autoptr(GVariant) value = g_variant_get_variant (boxed);

          switch (i)
            {
            case 0:
              call->app_name = g_variant_dup_string (value, NULL);
              break;
            case 1:
              g_assert_true (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32));
              call->replaces_id = g_variant_get_uint32 (value);
              break;
            case 3:
              call->summary = g_variant_dup_string (value, NULL);
              break;
            case 4:
              call->body = g_variant_dup_string (value, NULL);
              break;
            case 6:
              g_assert_true (g_variant_is_of_type (value, G_VARIANT_TYPE_VARDICT));
              hints = g_variant_ref (value);
              break;
            default:
              break;
            }
        }

      urgency = g_variant_lookup_value (hints, "urgency", NULL);
      if (urgency == NULL)
        call->urgency = -1;
      else if (g_variant_is_of_type (urgency, G_VARIANT_TYPE_BYTE))
        call->urgency = g_variant_get_byte (urgency);
      else
        g_error ("urgency hint of type %s, not a byte", g_variant_get_type_string (urgency));

      g_variant_lookup (hints, "category", "s", &call->category);
      g_variant_lookup (hints, "desktop-entry", "s", &call->desktop_entry);

      g_ptr_array_add (calls, call);
      g_variant_unref (args);
    }

  return calls;
}

static char *
local_hhmm (gint64 unix_time)
{
  g_autoptr(GDateTime) at = g_date_time_new_from_unix_local (unix_time);

  return g_date_time_format (at, "%H:%M");
}

typedef struct
{
  PoolerService  *service;
  PoolerNotifier *notifier;
  PoolerAccount  *account;
  PoolerPool     *pool;
  guint32         first_id;  /* the id the daemon gives the next notification */
} Fixture;

static void
fixture_set_up_common (Fixture *fixture)
{
  g_autoptr(GError) error = NULL;

  fixture->service = pooler_service_new (NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (fixture->service);

  fixture->notifier = pooler_notifier_new (fixture->service);

  fixture->account = pooler_account_new ("acc_0123456789ab");
  pooler_account_set_email (fixture->account, "ops@example.com");
  pooler_account_set_label (fixture->account, "ops@example.com");

  fixture->pool = pooler_pool_new (7, "team");
}

static void
fixture_set_up (Fixture       *fixture,
                gconstpointer  user_data)
{
  if (skip_reason != NULL)
    return;

  start_mock ();
  fixture->first_id = probe_next_id ();
  fixture_set_up_common (fixture);
}

static void
fixture_set_up_no_daemon (Fixture       *fixture,
                          gconstpointer  user_data)
{
  if (skip_reason != NULL)
    return;

  stop_mock ();
  fixture_set_up_common (fixture);
}

static void
fixture_tear_down (Fixture       *fixture,
                   gconstpointer  user_data)
{
  g_clear_object (&fixture->notifier);
  g_clear_object (&fixture->account);
  g_clear_object (&fixture->pool);
  g_clear_object (&fixture->service);

  /* Results of shows still in flight when a notifier went away. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

#define SKIP_IF_NEEDED()              \
  G_STMT_START {                      \
    if (skip_reason != NULL)          \
      {                               \
        g_test_skip (skip_reason);    \
        return;                       \
      }                               \
  } G_STMT_END

static void
emit_account_exhausted (Fixture *fixture,
                        gint64   reset_at)
{
  g_signal_emit_by_name (fixture->service, "account-exhausted", fixture->account, reset_at);
}

static void
emit_pool_exhausted (Fixture *fixture,
                     gint64   reset_at)
{
  g_signal_emit_by_name (fixture->service, "pool-exhausted", fixture->pool, reset_at);
}

static void
test_account_exhausted (Fixture       *fixture,
                        gconstpointer  user_data)
{
  g_autoptr(GPtrArray) calls = NULL;
  g_autofree char *hhmm = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  NotifyCall *call;

  SKIP_IF_NEEDED ();

  emit_account_exhausted (fixture, now + 60);
  pooler_notifier_flush (fixture->notifier);
  g_assert_cmpuint (pooler_notifier_get_sent (fixture->notifier), ==, 1);
  g_assert_cmpuint (pooler_notifier_get_failed (fixture->notifier), ==, 0);

  calls = get_notify_calls ();
  g_assert_cmpuint (calls->len, ==, 1);
  call = calls->pdata[0];
  g_assert_cmpstr (call->app_name, ==, "Codex Pooler");
  g_assert_cmpuint (call->replaces_id, ==, 0);
  g_assert_cmpstr (call->summary, ==, "Quota spent: ops@example.com");
  /* Near midnight the time is on another day and gets a date. */
  hhmm = local_hhmm (now + 60);
  g_assert_true (g_str_has_prefix (call->body, "Back at "));
  g_assert_true (g_str_has_suffix (call->body, " (local time)"));
  g_assert_nonnull (strstr (call->body, hhmm));
  g_assert_cmpint (call->urgency, ==, 1);
  g_assert_cmpstr (call->category, ==, "network");
  g_assert_cmpstr (call->desktop_entry, ==, APPLICATION_ID);

  /* A newer event for the same account replaces it on screen. */
  emit_account_exhausted (fixture, 0);
  pooler_notifier_flush (fixture->notifier);
  g_assert_cmpuint (pooler_notifier_get_sent (fixture->notifier), ==, 2);

  g_clear_pointer (&calls, g_ptr_array_unref);
  calls = get_notify_calls ();
  g_assert_cmpuint (calls->len, ==, 2);
  call = calls->pdata[1];
  g_assert_cmpuint (call->replaces_id, ==, fixture->first_id);
  g_assert_cmpstr (call->summary, ==, "Quota spent: ops@example.com");
  g_assert_cmpstr (call->body, ==, "Unusable until its usage window resets");
  g_assert_cmpint (call->urgency, ==, 1);

  /* Another account is another notification. */
  {
    g_autoptr(PoolerAccount) other = pooler_account_new ("acc_ba9876543210");

    pooler_account_set_label (other, "Night shift");
    g_signal_emit_by_name (fixture->service, "account-exhausted", other, now + 60);
    pooler_notifier_flush (fixture->notifier);
  }

  g_clear_pointer (&calls, g_ptr_array_unref);
  calls = get_notify_calls ();
  g_assert_cmpuint (calls->len, ==, 3);
  call = calls->pdata[2];
  g_assert_cmpuint (call->replaces_id, ==, 0);
  g_assert_cmpstr (call->summary, ==, "Quota spent: Night shift");
  g_assert_true (g_str_has_prefix (call->body, "Back at "));
}

static void
test_dedupe (Fixture       *fixture,
             gconstpointer  user_data)
{
  g_autoptr(GPtrArray) calls = NULL;
  gint64 reset_at = g_get_real_time () / G_USEC_PER_SEC + 3600;

  SKIP_IF_NEEDED ();

  emit_account_exhausted (fixture, reset_at);
  emit_account_exhausted (fixture, reset_at);
  emit_pool_exhausted (fixture, reset_at);
  emit_pool_exhausted (fixture, reset_at);
  g_signal_emit_by_name (fixture->service, "reauth-required", fixture->account);
  g_signal_emit_by_name (fixture->service, "reauth-required", fixture->account);
  pooler_notifier_flush (fixture->notifier);

  g_assert_cmpuint (pooler_notifier_get_sent (fixture->notifier), ==, 3);
  calls = get_notify_calls ();
  g_assert_cmpuint (calls->len, ==, 3);

  /* The same again once more: still nothing new. */
  emit_account_exhausted (fixture, reset_at);
  pooler_notifier_flush (fixture->notifier);
  g_clear_pointer (&calls, g_ptr_array_unref);
  calls = get_notify_calls ();
  g_assert_cmpuint (calls->len, ==, 3);

  /* A different reset time is news, and replaces the first. */
  emit_account_exhausted (fixture, reset_at + 600);
  pooler_notifier_flush (fixture->notifier);
  g_clear_pointer (&calls, g_ptr_array_unref);
  calls = get_notify_calls ();
  g_assert_cmpuint (calls->len, ==, 4);
  g_assert_cmpuint (((NotifyCall *)calls->pdata[3])->replaces_id, ==, fixture->first_id);
  g_assert_cmpuint (pooler_notifier_get_sent (fixture->notifier), ==, 4);
  g_assert_cmpuint (pooler_notifier_get_failed (fixture->notifier), ==, 0);
}

static void
test_pool (Fixture       *fixture,
           gconstpointer  user_data)
{
  g_autoptr(GPtrArray) calls = NULL;
  g_autofree char *hhmm = NULL;
  gint64 reset_at = g_get_real_time () / G_USEC_PER_SEC + 120;
  NotifyCall *call;

  SKIP_IF_NEEDED ();

  emit_pool_exhausted (fixture, reset_at);
  pooler_notifier_flush (fixture->notifier);

  calls = get_notify_calls ();
  g_assert_cmpuint (calls->len, ==, 1);
  call = calls->pdata[0];
  g_assert_cmpuint (call->replaces_id, ==, 0);
  g_assert_cmpstr (call->summary, ==, "Pool “team” has no usable account");
  hhmm = local_hhmm (reset_at);
  g_assert_true (g_str_has_prefix (call->body, "Requests get a usage-limit error until "));
  g_assert_true (g_str_has_suffix (call->body, hhmm));
  g_assert_cmpint (call->urgency, ==, 2);
  g_assert_cmpstr (call->category, ==, "network");

  /* Restored replaces the critical notification rather than leaving it. */
  g_signal_emit_by_name (fixture->service, "pool-restored", fixture->pool);
  pooler_notifier_flush (fixture->notifier);

  g_clear_pointer (&calls, g_ptr_array_unref);
  calls = get_notify_calls ();
  g_assert_cmpuint (calls->len, ==, 2);
  call = calls->pdata[1];
  g_assert_cmpuint (call->replaces_id, ==, fixture->first_id);
  g_assert_cmpstr (call->summary, ==, "Pool “team” can serve again");
  g_assert_cmpstr (call->body, ==, "");
  g_assert_cmpint (call->urgency, ==, 1);

  /* Exhausted again after a restore is news even with the same reset. */
  emit_pool_exhausted (fixture, reset_at);
  emit_pool_exhausted (fixture, 0);
  pooler_notifier_flush (fixture->notifier);

  g_clear_pointer (&calls, g_ptr_array_unref);
  calls = get_notify_calls ();
  g_assert_cmpuint (calls->len, ==, 4);
  call = calls->pdata[3];
  g_assert_cmpuint (call->replaces_id, ==, fixture->first_id);
  g_assert_cmpstr (call->body, ==,
                   "Requests get a usage-limit error until an account’s usage window resets");
  g_assert_cmpint (call->urgency, ==, 2);
  g_assert_cmpuint (pooler_notifier_get_sent (fixture->notifier), ==, 4);
}

static void
test_reauth (Fixture       *fixture,
             gconstpointer  user_data)
{
  g_autoptr(GPtrArray) calls = NULL;
  NotifyCall *call;

  SKIP_IF_NEEDED ();

  g_signal_emit_by_name (fixture->service, "reauth-required", fixture->account);
  /* Too chatty to show: nothing for the operator to do. */
  g_signal_emit_by_name (fixture->service, "account-restored", fixture->account);
  pooler_notifier_flush (fixture->notifier);

  calls = get_notify_calls ();
  g_assert_cmpuint (calls->len, ==, 1);
  call = calls->pdata[0];
  g_assert_cmpstr (call->summary, ==, "ops@example.com needs to sign in again");
  g_assert_cmpstr (call->body, ==, "Run “codex-pooler account login --pool POOL” and sign in to this account");
  g_assert_cmpint (call->urgency, ==, 2);
  g_assert_cmpuint (pooler_notifier_get_sent (fixture->notifier), ==, 1);

  /* Quota and sign-in are separate notifications for one account. */
  emit_account_exhausted (fixture, 0);
  pooler_notifier_flush (fixture->notifier);
  g_clear_pointer (&calls, g_ptr_array_unref);
  calls = get_notify_calls ();
  g_assert_cmpuint (calls->len, ==, 2);
  g_assert_cmpuint (((NotifyCall *)calls->pdata[1])->replaces_id, ==, 0);

  /* An account in a Pool is told the command for that Pool. */
  {
    PoolerStore *store = pooler_service_get_store (fixture->service);
    g_autoptr(PoolerAccount) member = pooler_account_new ("acc_00000000cafe");
    g_autoptr(PoolerPool) team = NULL;
    g_autoptr(GError) error = NULL;

    pooler_account_set_email (member, "dev@example.com");
    pooler_account_set_chatgpt_account_id (member, "acct_dev");
    team = pooler_store_create_pool (store, "team", NULL, &error);
    g_assert_no_error (error);
    pooler_store_save_account (store, member, &error);
    g_assert_no_error (error);
    g_assert_true (pooler_store_add_pool_account (store, pooler_pool_get_id (team), "acc_00000000cafe", &error));
    g_signal_emit_by_name (fixture->service, "reauth-required", member);
    pooler_notifier_flush (fixture->notifier);
    g_clear_pointer (&calls, g_ptr_array_unref);
    calls = get_notify_calls ();
    g_assert_cmpuint (calls->len, ==, 3);
    g_assert_cmpstr (((NotifyCall *) calls->pdata[2])->body, ==,
                     "Run “codex-pooler account login --pool team” and sign in to this account");
  }
}

/* Makes the mock's Notify take @seconds; the mock is restarted by the
 * next test's set-up. */
static void
make_daemon_slow (guint seconds)
{
  g_autofree char *code = g_strdup_printf ("import time\n"
                                           "time.sleep(%u)\n"
                                           "ret = args[1] if args[1] else 4242\n",
                                           seconds);

  g_variant_unref (call_daemon (MOCK_IFACE, "AddMethod",
                                g_variant_new ("(sssss)", NOTIFY_NAME, "Notify",
                                               NOTIFY_SIGNATURE, "u", code),
                                NULL));
}

static void
test_slow_daemon (Fixture       *fixture,
                  gconstpointer  user_data)
{
  gint64 start, emitted, flushed;

  SKIP_IF_NEEDED ();

  make_daemon_slow (2);

  start = g_get_monotonic_time ();
  emit_pool_exhausted (fixture, 0);
  emitted = g_get_monotonic_time ();
  /* The main loop is free while the daemon thinks. */
  g_assert_cmpint (emitted - start, <, G_TIME_SPAN_SECOND);
  g_assert_cmpuint (pooler_notifier_get_sent (fixture->notifier), ==, 0);

  pooler_notifier_flush (fixture->notifier);
  flushed = g_get_monotonic_time ();
  g_assert_cmpint (flushed - start, >=, G_TIME_SPAN_SECOND);
  g_assert_cmpuint (pooler_notifier_get_sent (fixture->notifier), ==, 1);
  g_assert_cmpuint (pooler_notifier_get_failed (fixture->notifier), ==, 0);

  stop_mock ();
}

static void
test_dispose_while_queued (Fixture       *fixture,
                           gconstpointer  user_data)
{
  g_autoptr(GPtrArray) calls = NULL;
  gint64 start;

  SKIP_IF_NEEDED ();

  make_daemon_slow (1);

  start = g_get_monotonic_time ();
  emit_account_exhausted (fixture, 0);
  emit_pool_exhausted (fixture, 0);
  g_signal_emit_by_name (fixture->service, "reauth-required", fixture->account);
  g_signal_emit_by_name (fixture->service, "pool-restored", fixture->pool);
  g_assert_cmpint (g_get_monotonic_time () - start, <, G_TIME_SPAN_SECOND);

  /* Waits for the show in flight at most, skips the rest. */
  g_clear_object (&fixture->notifier);
  while (g_main_context_iteration (NULL, FALSE))
    ;

  /* The service outlives the notifier: its signals reach nobody. */
  emit_account_exhausted (fixture, 1);

  calls = get_notify_calls ();
  g_assert_cmpuint (calls->len, <=, 1);

  stop_mock ();
}

static void
test_no_daemon (Fixture       *fixture,
                gconstpointer  user_data)
{
  gint64 start, elapsed;

  SKIP_IF_NEEDED ();

  if (name_is_activatable (NOTIFY_NAME))
    {
      g_test_skip ("a notification daemon is activatable on this bus");
      return;
    }
  g_assert_false (name_has_owner (NOTIFY_NAME));

  /* Logged once for a run of failures, at a level that is not fatal. */
  g_test_expect_message ("pooler-notifier", G_LOG_LEVEL_MESSAGE,
                         "Could not show a notification: *");

  start = g_get_monotonic_time ();
  emit_account_exhausted (fixture, 0);
  emit_pool_exhausted (fixture, 0);
  g_signal_emit_by_name (fixture->service, "reauth-required", fixture->account);
  elapsed = g_get_monotonic_time () - start;
  g_assert_cmpint (elapsed, <, G_TIME_SPAN_SECOND);

  pooler_notifier_flush (fixture->notifier);
  g_test_assert_expected_messages ();

  g_assert_cmpuint (pooler_notifier_get_sent (fixture->notifier), ==, 0);
  g_assert_cmpuint (pooler_notifier_get_failed (fixture->notifier), ==, 3);

  /* The daemon comes back: shows work again. */
  start_mock ();
  g_signal_emit_by_name (fixture->service, "pool-restored", fixture->pool);
  pooler_notifier_flush (fixture->notifier);
  g_assert_cmpuint (pooler_notifier_get_sent (fixture->notifier), ==, 1);
  g_assert_cmpuint (pooler_notifier_get_failed (fixture->notifier), ==, 3);
}

static gboolean
python_has_dbusmock (void)
{
  const char *argv[] = { PYTHON, "-c", "import dbusmock", NULL };
  int status = -1;

  if (!g_spawn_sync (NULL, (char **) argv, NULL,
                     G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                     NULL, NULL, NULL, NULL, &status, NULL))
    return FALSE;

  return g_spawn_check_wait_status (status, NULL);
}

int
main (int   argc,
      char *argv[])
{
  int ret;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  if (g_getenv ("DBUS_SESSION_BUS_ADDRESS") == NULL)
    skip_reason = "no session bus; run under dbus-run-session -- build-aux/with-keyring";
  else if (!python_has_dbusmock ())
    skip_reason = "python3-dbusmock is not installed for " PYTHON;

  if (skip_reason == NULL)
    {
      g_autoptr(GError) error = NULL;

      bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);
      g_assert_no_error (error);

      if (name_has_owner (NOTIFY_NAME))
        skip_reason = NOTIFY_NAME " is already owned on this bus; use a fresh dbus-run-session";
    }

#define ADD(path, func, setup) \
  g_test_add (path, Fixture, NULL, setup, func, fixture_tear_down)

  ADD ("/notifier/account-exhausted", test_account_exhausted, fixture_set_up);
  ADD ("/notifier/dedupe", test_dedupe, fixture_set_up);
  ADD ("/notifier/pool", test_pool, fixture_set_up);
  ADD ("/notifier/reauth", test_reauth, fixture_set_up);
  ADD ("/notifier/slow-daemon", test_slow_daemon, fixture_set_up);
  ADD ("/notifier/dispose-while-queued", test_dispose_while_queued, fixture_set_up);
  ADD ("/notifier/no-daemon", test_no_daemon, fixture_set_up_no_daemon);

#undef ADD

  ret = g_test_run ();

  stop_mock ();
  g_clear_object (&bus);

  return ret;
}
