/* test-vault.c: needs a Secret Service; run it as
 *   dbus-run-session -- build-aux/with-keyring tests/test-vault --tap
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include <libsecret/secret.h>

#include "pooler-error.h"
#include "pooler-vault.h"

/* Written out again on purpose: the schema is a contract with items
 * already in users' keyrings, so a change in the code must fail here. */
static const SecretSchema test_schema = {
  .name = "io.github.codexpooler.CodexPooler.Account",
  .flags = SECRET_SCHEMA_NONE,
  .attributes = {
    { "account-id", SECRET_SCHEMA_ATTRIBUTE_STRING },
    { NULL, 0 },
  },
};

static char *run_prefix;

typedef struct
{
  PoolerVault *vault;
  char        *account_id;
  char        *other_account_id;
} Fixture;

static void
fixture_set_up (Fixture       *fixture,
                gconstpointer  user_data)
{
  static guint counter;
  g_autoptr(GError) error = NULL;

  fixture->vault = pooler_vault_new ();
  fixture->account_id = g_strdup_printf ("%s-%u-a", run_prefix, ++counter);
  fixture->other_account_id = g_strdup_printf ("%s-%u-b", run_prefix, counter);

  if (!pooler_vault_check_available (fixture->vault, NULL, &error))
    g_error ("no Secret Service; run under `dbus-run-session -- build-aux/with-keyring`: %s",
             error->message);
}

static void
fixture_tear_down (Fixture       *fixture,
                   gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;

  pooler_vault_clear_sync (fixture->vault, fixture->account_id, NULL, &error);
  g_assert_no_error (error);
  pooler_vault_clear_sync (fixture->vault, fixture->other_account_id, NULL, &error);
  g_assert_no_error (error);

  g_clear_object (&fixture->vault);
  g_clear_pointer (&fixture->account_id, g_free);
  g_clear_pointer (&fixture->other_account_id, g_free);
}

static void
search_ready_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

/* How many items the keyring holds for @account_id, as libsecret sees
 * them; @out_label gets the first one's label. */
static guint
count_items (const char  *account_id,
             char       **out_label)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  GList *items;
  guint count;

  /* Async on the default context rather than secret_password_search_sync():
   * the sync wrapper drops its private context with the item proxies'
   * GDBus cleanup still queued on it, which sanitizers report as leaks. */
  secret_password_search (&test_schema, SECRET_SEARCH_ALL, NULL, search_ready_cb, &result,
                          "account-id", account_id,
                          NULL);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);

  items = secret_password_search_finish (result, &error);
  g_assert_no_error (error);

  count = g_list_length (items);
  if (out_label != NULL)
    *out_label = items != NULL ? secret_retrievable_get_label (items->data) : NULL;
  g_list_free_full (items, g_object_unref);
  g_clear_object (&result);

  while (g_main_context_iteration (NULL, FALSE))
    ;

  return count;
}

static void
test_check_available (Fixture       *fixture,
                      gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (pooler_vault_check_available (fixture->vault, NULL, &error));
  g_assert_no_error (error);
}

static void
test_round_trip (Fixture       *fixture,
                 gconstpointer  user_data)
{
  g_autoptr(PoolerTokens) tokens = pooler_tokens_new ("at-1 \"quoted\" \\ ü", "rt-1", "id-1",
                                                      1796351245);
  g_autoptr(PoolerTokens) found = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *label = NULL;

  g_assert_true (pooler_vault_store_sync (fixture->vault, fixture->account_id, "Work",
                                          tokens, NULL, &error));
  g_assert_no_error (error);

  found = pooler_vault_lookup_sync (fixture->vault, fixture->account_id, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (pooler_tokens_equal (found, tokens));

  /* Under our schema, in one item, with the label users see in Seahorse. */
  g_assert_cmpuint (count_items (fixture->account_id, &label), ==, 1);
  g_assert_cmpstr (label, ==, "Codex Pooler account Work");
}

static void
test_label_defaults_to_id (Fixture       *fixture,
                           gconstpointer  user_data)
{
  g_autoptr(PoolerTokens) tokens = pooler_tokens_new ("at", "rt", NULL, 0);
  g_autoptr(PoolerTokens) found = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *expected = g_strconcat ("Codex Pooler account ", fixture->account_id, NULL);
  g_autofree char *label = NULL;

  /* No id token and no expiry survive the trip as NULL and 0. */
  g_assert_true (pooler_vault_store_sync (fixture->vault, fixture->account_id, NULL,
                                          tokens, NULL, &error));
  g_assert_no_error (error);
  found = pooler_vault_lookup_sync (fixture->vault, fixture->account_id, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (pooler_tokens_equal (found, tokens));
  g_assert_null (found->id_token);

  g_assert_cmpuint (count_items (fixture->account_id, &label), ==, 1);
  g_assert_cmpstr (label, ==, expected);
}

static void
test_update_in_place (Fixture       *fixture,
                      gconstpointer  user_data)
{
  g_autoptr(PoolerTokens) first = pooler_tokens_new ("at-1", "rt-1", "id-1", 100);
  g_autoptr(PoolerTokens) second = pooler_tokens_new ("at-2", "rt-2", "id-2", 200);
  g_autoptr(PoolerTokens) found = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (pooler_vault_store_sync (fixture->vault, fixture->account_id, "x",
                                          first, NULL, &error));
  g_assert_true (pooler_vault_store_sync (fixture->vault, fixture->account_id, "x",
                                          second, NULL, &error));
  g_assert_no_error (error);

  found = pooler_vault_lookup_sync (fixture->vault, fixture->account_id, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (pooler_tokens_equal (found, second));

  /* A rotated refresh token must not leave the old one behind. */
  g_assert_cmpuint (count_items (fixture->account_id, NULL), ==, 1);
}

static void
test_clear (Fixture       *fixture,
            gconstpointer  user_data)
{
  g_autoptr(PoolerTokens) tokens = pooler_tokens_new ("at", "rt", "id", 1);
  g_autoptr(PoolerTokens) found = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (pooler_vault_store_sync (fixture->vault, fixture->account_id, NULL,
                                          tokens, NULL, &error));
  g_assert_true (pooler_vault_clear_sync (fixture->vault, fixture->account_id, NULL, &error));
  g_assert_no_error (error);

  found = pooler_vault_lookup_sync (fixture->vault, fixture->account_id, NULL, &error);
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
  g_assert_null (found);
  g_clear_error (&error);

  g_assert_cmpuint (count_items (fixture->account_id, NULL), ==, 0);

  /* Clearing what is not there is not an error. */
  g_assert_true (pooler_vault_clear_sync (fixture->vault, fixture->account_id, NULL, &error));
  g_assert_no_error (error);
}

static void
test_two_accounts (Fixture       *fixture,
                   gconstpointer  user_data)
{
  g_autoptr(PoolerTokens) a = pooler_tokens_new ("at-a", "rt-a", "id-a", 1);
  g_autoptr(PoolerTokens) b = pooler_tokens_new ("at-b", "rt-b", "id-b", 2);
  g_autoptr(PoolerTokens) found_a = NULL;
  g_autoptr(PoolerTokens) found_b = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (pooler_vault_store_sync (fixture->vault, fixture->account_id, "same label",
                                          a, NULL, &error));
  g_assert_true (pooler_vault_store_sync (fixture->vault, fixture->other_account_id, "same label",
                                          b, NULL, &error));
  g_assert_no_error (error);

  found_a = pooler_vault_lookup_sync (fixture->vault, fixture->account_id, NULL, &error);
  g_assert_no_error (error);
  found_b = pooler_vault_lookup_sync (fixture->vault, fixture->other_account_id, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (pooler_tokens_equal (found_a, a));
  g_assert_true (pooler_tokens_equal (found_b, b));

  /* Removing one leaves the other. */
  g_assert_true (pooler_vault_clear_sync (fixture->vault, fixture->account_id, NULL, &error));
  g_clear_pointer (&found_b, pooler_tokens_free);
  found_b = pooler_vault_lookup_sync (fixture->vault, fixture->other_account_id, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (pooler_tokens_equal (found_b, b));
}

static void
test_broken_item (Fixture       *fixture,
                  gconstpointer  user_data)
{
  g_autoptr(PoolerTokens) found = NULL;
  g_autoptr(GError) error = NULL;
  const char *broken[] = {
    "SECRET-not-json",
    "[\"SECRET\"]",
    "{\"access_token\":\"SECRET\"}",
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (broken); i++)
    {
      secret_password_store_sync (&test_schema, SECRET_COLLECTION_DEFAULT, "broken",
                                  broken[i], NULL, &error,
                                  "account-id", fixture->account_id,
                                  NULL);
      g_assert_no_error (error);

      found = pooler_vault_lookup_sync (fixture->vault, fixture->account_id, NULL, &error);
      g_assert_error (error, POOLER_ERROR, POOLER_ERROR_INVALID);
      g_assert_null (found);
      g_assert_null (strstr (error->message, "SECRET"));
      g_clear_error (&error);
    }
}

typedef struct
{
  GAsyncResult *result;
} AsyncData;

static void
async_ready_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  AsyncData *data = user_data;

  data->result = g_object_ref (result);
}

static GAsyncResult *
wait_for_result (AsyncData *data)
{
  while (data->result == NULL)
    g_main_context_iteration (NULL, TRUE);

  return g_steal_pointer (&data->result);
}

static void
test_async (Fixture       *fixture,
            gconstpointer  user_data)
{
  g_autoptr(PoolerTokens) tokens = pooler_tokens_new ("at-async", "rt-async", "id-async", 42);
  g_autoptr(PoolerTokens) found = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  AsyncData data = { NULL };

  pooler_vault_store_async (fixture->vault, fixture->account_id, "async", tokens,
                            NULL, async_ready_cb, &data);
  result = wait_for_result (&data);
  g_assert_true (pooler_vault_store_finish (fixture->vault, result, &error));
  g_assert_no_error (error);
  g_clear_object (&result);

  pooler_vault_lookup_async (fixture->vault, fixture->account_id, NULL,
                             async_ready_cb, &data);
  result = wait_for_result (&data);
  found = pooler_vault_lookup_finish (fixture->vault, result, &error);
  g_assert_no_error (error);
  g_assert_true (pooler_tokens_equal (found, tokens));
  g_clear_object (&result);

  /* And a miss, asynchronously. */
  pooler_vault_lookup_async (fixture->vault, fixture->other_account_id, NULL,
                             async_ready_cb, &data);
  result = wait_for_result (&data);
  g_assert_null (pooler_vault_lookup_finish (fixture->vault, result, &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_clear_object (&result);

  /* Cleared: the item is gone, and clearing again still succeeds. */
  for (guint i = 0; i < 2; i++)
    {
      pooler_vault_clear_async (fixture->vault, fixture->account_id, NULL, async_ready_cb, &data);
      result = wait_for_result (&data);
      g_assert_true (pooler_vault_clear_finish (fixture->vault, result, &error));
      g_assert_no_error (error);
      g_clear_object (&result);
      g_assert_null (pooler_vault_lookup_sync (fixture->vault, fixture->account_id, NULL, &error));
      g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
      g_clear_error (&error);
    }
}

static void
test_check_cancelled (Fixture       *fixture,
                      gconstpointer  user_data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;

  /* The caller's cancellation is reported as such, not as a missing vault. */
  g_cancellable_cancel (cancellable);
  g_assert_false (pooler_vault_check_available (fixture->vault, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

/* No Secret Service ----------------------------------------------------- */

/* In the child: every entry point fails fast with NO_VAULT. */
static void
assert_no_vault (gint64 max_usec)
{
  g_autoptr(PoolerVault) vault = pooler_vault_new ();
  g_autoptr(PoolerTokens) tokens = pooler_tokens_new ("at-SECRET", "rt-SECRET", NULL, 0);
  g_autoptr(PoolerTokens) found = NULL;
  g_autoptr(GError) error = NULL;
  gint64 start = g_get_monotonic_time ();

  g_assert_false (pooler_vault_check_available (vault, NULL, &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NO_VAULT);
  g_assert_cmpint (g_get_monotonic_time () - start, <, max_usec);
  g_assert_nonnull (strstr (error->message, "gnome-keyring-daemon"));
  g_assert_null (strchr (error->message, '\n'));
  g_clear_error (&error);

  g_assert_false (pooler_vault_store_sync (vault, "acct", NULL, tokens, NULL, &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NO_VAULT);
  g_assert_null (strstr (error->message, "SECRET"));
  g_clear_error (&error);

  found = pooler_vault_lookup_sync (vault, "acct", NULL, &error);
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NO_VAULT);
  g_assert_null (found);
}

static void
test_no_bus (void)
{
  if (g_test_subprocess ())
    {
      g_setenv ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus", TRUE);
      assert_no_vault (3 * G_USEC_PER_SEC);
      return;
    }

  g_test_trap_subprocess (NULL, 20 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
}

/* A bus of our own with no service files, so nothing can be activated. */
static GSubprocess *
start_empty_bus (char **out_address)
{
  g_autofree char *config_path = g_build_filename (g_get_tmp_dir (), "empty-bus.conf", NULL);
  g_autofree char *config = NULL;
  g_autoptr(GSubprocess) daemon = NULL;
  g_autoptr(GDataInputStream) out = NULL;
  g_autoptr(GError) error = NULL;
  char *address;

  config = g_strdup_printf ("<!DOCTYPE busconfig PUBLIC "
                            "\"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\" "
                            "\"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                            "<busconfig>\n"
                            "  <type>session</type>\n"
                            "  <listen>unix:tmpdir=%s</listen>\n"
                            "  <auth>EXTERNAL</auth>\n"
                            "  <policy context=\"default\">\n"
                            "    <allow send_destination=\"*\"/>\n"
                            "    <allow eavesdrop=\"true\"/>\n"
                            "    <allow own=\"*\"/>\n"
                            "  </policy>\n"
                            "</busconfig>\n", g_get_tmp_dir ());
  g_file_set_contents (config_path, config, -1, &error);
  g_assert_no_error (error);

  daemon = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error,
                             "dbus-daemon", "--nofork", "--print-address",
                             "--config-file", config_path, NULL);
  if (daemon == NULL)
    return NULL;

  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (daemon));
  address = g_data_input_stream_read_line_utf8 (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (address);

  *out_address = address;
  return g_steal_pointer (&daemon);
}

static void
stop_empty_bus (GSubprocess *daemon)
{
  g_subprocess_force_exit (daemon);
  g_subprocess_wait (daemon, NULL, NULL);
}

static void
test_empty_bus (void)
{
  g_autoptr(GSubprocess) daemon = NULL;
  g_autofree char *address = NULL;

  if (g_test_subprocess ())
    {
      g_setenv ("DBUS_SESSION_BUS_ADDRESS", g_getenv ("POOLER_TEST_EMPTY_BUS"), TRUE);
      assert_no_vault (3 * G_USEC_PER_SEC);
      return;
    }

  daemon = start_empty_bus (&address);
  if (daemon == NULL)
    {
      g_test_skip ("dbus-daemon is not available");
      return;
    }

  g_setenv ("POOLER_TEST_EMPTY_BUS", address, TRUE);
  g_test_trap_subprocess (NULL, 20 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
  stop_empty_bus (daemon);
  g_unsetenv ("POOLER_TEST_EMPTY_BUS");
  g_test_trap_assert_passed ();
}

/* Swallows method calls so the name's owner never answers. */
static GDBusMessage *
drop_method_calls (GDBusConnection *connection,
                   GDBusMessage    *message,
                   gboolean         incoming,
                   gpointer         user_data)
{
  if (incoming && g_dbus_message_get_message_type (message) == G_DBUS_MESSAGE_TYPE_METHOD_CALL)
    {
      g_object_unref (message);
      return NULL;
    }

  return message;
}

static void
test_silent_service (void)
{
  g_autoptr(GSubprocess) daemon = NULL;
  g_autofree char *address = NULL;

  if (g_test_subprocess ())
    {
      g_autoptr(PoolerVault) vault = pooler_vault_new ();
      g_autoptr(GDBusConnection) owner = NULL;
      g_autoptr(GVariant) reply = NULL;
      g_autoptr(GError) error = NULL;
      const char *bus = g_getenv ("POOLER_TEST_EMPTY_BUS");
      guint32 request_result = 0;
      gint64 start;
      gint64 elapsed;

      /* A Secret Service that owns its name but hangs: the check must
       * give up on its own instead of waiting for D-Bus's 25 s timeout. */
      owner = g_dbus_connection_new_for_address_sync (bus,
                                                      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                      G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                      NULL, NULL, &error);
      g_assert_no_error (error);
      reply = g_dbus_connection_call_sync (owner, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                           "org.freedesktop.DBus", "RequestName",
                                           g_variant_new ("(su)", "org.freedesktop.secrets", 4),
                                           G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE,
                                           -1, NULL, &error);
      g_assert_no_error (error);
      g_variant_get (reply, "(u)", &request_result);
      g_assert_cmpuint (request_result, ==, 1);   /* primary owner */
      g_dbus_connection_add_filter (owner, drop_method_calls, NULL, NULL);

      g_setenv ("DBUS_SESSION_BUS_ADDRESS", bus, TRUE);
      start = g_get_monotonic_time ();
      g_assert_false (pooler_vault_check_available (vault, NULL, &error));
      elapsed = g_get_monotonic_time () - start;
      g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NO_VAULT);
      g_assert_nonnull (strstr (error->message, "gnome-keyring-daemon"));
      g_assert_cmpint (elapsed, >=, 4 * G_USEC_PER_SEC);
      g_assert_cmpint (elapsed, <, 10 * G_USEC_PER_SEC);
      return;
    }

  daemon = start_empty_bus (&address);
  if (daemon == NULL)
    {
      g_test_skip ("dbus-daemon is not available");
      return;
    }

  g_setenv ("POOLER_TEST_EMPTY_BUS", address, TRUE);
  g_test_trap_subprocess (NULL, 30 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
  stop_empty_bus (daemon);
  g_unsetenv ("POOLER_TEST_EMPTY_BUS");
  g_test_trap_assert_passed ();
}

static void
skip_keyring_tests (void)
{
  g_test_skip ("no session bus; run under "
               "`dbus-run-session -- build-aux/with-keyring tests/test-vault`");
}

int
main (int   argc,
      char *argv[])
{
  int ret;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  run_prefix = g_strdup_printf ("test-vault-%d-%" G_GINT64_FORMAT,
                                (int) getpid (), g_get_monotonic_time ());

  /* Without a session bus there is no keyring to test against; the
   * no-service tests below still run. */
  if (g_getenv ("DBUS_SESSION_BUS_ADDRESS") == NULL)
    g_test_add_func ("/vault/keyring", skip_keyring_tests);
  else
    {
#define ADD(path, func) \
      g_test_add ("/vault/" path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)

      ADD ("check-available", test_check_available);
      ADD ("check-cancelled", test_check_cancelled);
      ADD ("round-trip", test_round_trip);
      ADD ("label-defaults-to-id", test_label_defaults_to_id);
      ADD ("update-in-place", test_update_in_place);
      ADD ("clear", test_clear);
      ADD ("two-accounts", test_two_accounts);
      ADD ("broken-item", test_broken_item);
      ADD ("async", test_async);
#undef ADD
    }

  g_test_add_func ("/vault/no-service/no-bus", test_no_bus);
  g_test_add_func ("/vault/no-service/empty-bus", test_empty_bus);
  g_test_add_func ("/vault/no-service/silent-service", test_silent_service);

  ret = g_test_run ();
  g_free (run_prefix);

  return ret;
}
