/* test-service.c: the service's account changes that wait on the keyring
 * without blocking (what the window calls from the main loop the gateway
 * serves on): import and sign-in, update in place, removal, and that a
 * failed or cancelled one leaves neither a row nor tokens behind. Needs a
 * Secret Service (build-aux/with-keyring).
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <string.h>

#include <libsecret/secret.h>

#include "pooler-error.h"
#include "pooler-service.h"
#include "pooler-store-private.h"
#include "pooler-vault.h"
#include "test-util.h"

typedef struct
{
  PoolerService *service;
  guint          account_changed;
  char          *chatgpt_id;   /* unique per test: tests share the keyring */
} Fixture;

static void
on_account_changed (PoolerService *service,
                    PoolerAccount *account,
                    Fixture       *f)
{
  f->account_changed++;
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(PoolerPool) pool = NULL;

  f->service = pooler_service_new (NULL, &error);
  g_assert_no_error (error);
  pool = pooler_service_create_pool (f->service, "main", NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (f->service, "account-changed", G_CALLBACK (on_account_changed), f);
  f->chatgpt_id = g_strdup_printf ("acct-svc-%08x%08x", g_random_int (), g_random_int ());
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_object (&f->service);
  g_free (f->chatgpt_id);
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

/* An async call's result, spun for on the default main context. */
typedef struct
{
  GAsyncResult *result;
} Ready;

static void
ready_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  Ready *ready = user_data;

  ready->result = g_object_ref (result);
}

static GAsyncResult *
wait_ready (Ready *ready)
{
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  /* GIO's rule: never before the call that started it returns. */
  g_assert_null (ready->result);
  while (ready->result == NULL && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_nonnull (ready->result);
  return g_steal_pointer (&ready->result);
}

static PoolerAuthFile *
make_auth (Fixture    *f,
           const char *access_token,
           const char *refresh_token)
{
  gint64 exp = g_get_real_time () / G_USEC_PER_SEC + 86400;
  g_autofree char *id_token = test_make_jwt (f->chatgpt_id, "svc@example.com", exp);
  g_autoptr(GError) error = NULL;
  PoolerAuthFile *auth;

  auth = pooler_auth_file_new_from_tokens (pooler_tokens_new (access_token, refresh_token, id_token, exp),
                                           NULL, "the test", &error);
  g_assert_no_error (error);
  return auth;
}

static void
assert_keyring_holds (Fixture    *f,
                      const char *account_id,
                      const char *refresh_token)
{
  g_autoptr(PoolerTokens) tokens = NULL;
  g_autoptr(GError) error = NULL;

  tokens = pooler_vault_lookup_sync (pooler_service_get_vault (f->service), account_id, NULL, &error);
  if (refresh_token == NULL)
    {
      g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
      return;
    }
  g_assert_no_error (error);
  g_assert_cmpstr (tokens->refresh_token, ==, refresh_token);
}

static const char *
newest_audit_action (Fixture *f)
{
  static char action[64];
  g_autoptr(GPtrArray) events = NULL;
  g_autoptr(GError) error = NULL;

  events = pooler_store_list_audit_events (pooler_service_get_store (f->service), 0, 1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (events->len, ==, 1);
  g_strlcpy (action, ((PoolerAuditEvent *) events->pdata[0])->action, sizeof action);
  return action;
}

static const SecretSchema account_schema = {
  .name = "io.github.codexpooler.CodexPooler.Account",
  .flags = SECRET_SCHEMA_NONE,
  .attributes = {
    { "account-id", SECRET_SCHEMA_ATTRIBUTE_STRING },
    { NULL, 0 },
  },
};

/* Every keyring item of ours whose label holds @text. */
static guint
count_items_labelled (const char *text)
{
  g_autoptr(GError) error = NULL;
  GList *items, *l;
  guint n = 0;

  items = secret_password_search_sync (&account_schema, SECRET_SEARCH_ALL, NULL, &error, NULL);
  g_assert_no_error (error);
  for (l = items; l != NULL; l = l->next)
    {
      g_autofree char *label = secret_retrievable_get_label (l->data);

      if (label != NULL && strstr (label, text) != NULL)
        n++;
    }
  g_list_free_full (items, g_object_unref);
  return n;
}

static void
test_sign_in_async (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(PoolerAuthFile) first = make_auth (f, "at-one", "rt-one");
  g_autoptr(PoolerAuthFile) second = make_auth (f, "at-two", "rt-two");
  g_autoptr(PoolerAccount) added = NULL;
  g_autoptr(PoolerAccount) updated = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GPtrArray) members = NULL;
  g_autoptr(GError) error = NULL;
  Ready ready = { NULL };
  gboolean created = FALSE;

  pooler_service_add_signed_in_async (f->service, first, "main", "Work", NULL, ready_cb, &ready);
  result = wait_ready (&ready);
  added = pooler_service_add_signed_in_finish (f->service, result, &created, &error);
  g_assert_no_error (error);
  g_assert_true (created);
  g_assert_cmpstr (pooler_account_get_label (added), ==, "Work");
  g_assert_cmpstr (pooler_account_get_chatgpt_account_id (added), ==, f->chatgpt_id);
  g_assert_cmpstr (newest_audit_action (f), ==, "account.login");
  g_assert_cmpuint (f->account_changed, ==, 1);
  assert_keyring_holds (f, pooler_account_get_id (added), "rt-one");

  members = pooler_store_list_accounts (pooler_service_get_store (f->service), "main", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (members->len, ==, 1);
  g_clear_object (&result);

  /* The same identity again: the account is updated in place. */
  pooler_service_add_signed_in_async (f->service, second, "main", NULL, NULL, ready_cb, &ready);
  result = wait_ready (&ready);
  updated = pooler_service_add_signed_in_finish (f->service, result, &created, &error);
  g_assert_no_error (error);
  g_assert_false (created);
  g_assert_cmpstr (pooler_account_get_id (updated), ==, pooler_account_get_id (added));
  g_assert_cmpstr (pooler_account_get_label (updated), ==, "Work");
  g_assert_cmpstr (newest_audit_action (f), ==, "account.update");
  assert_keyring_holds (f, pooler_account_get_id (added), "rt-two");

  g_assert_true (pooler_service_remove_account (f->service, pooler_account_get_id (added), &error));
  g_assert_no_error (error);
  assert_keyring_holds (f, pooler_account_get_id (added), NULL);
}

static void
test_import_and_remove_async (Fixture       *f,
                              gconstpointer  data)
{
  gint64 exp = g_get_real_time () / G_USEC_PER_SEC + 86400;
  g_autofree char *path = test_write_auth_json ("svc", f->chatgpt_id, "svc@example.com",
                                                "at-file", "rt-file", exp);
  g_autofree char *missing = g_build_filename (g_get_user_config_dir (), "none.json", NULL);
  g_autoptr(PoolerAccount) account = NULL;
  g_autoptr(PoolerAccount) gone = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  Ready ready = { NULL };
  gboolean created = FALSE;
  guint changed;

  pooler_service_import_account_async (f->service, path, "main", NULL, NULL, ready_cb, &ready);
  result = wait_ready (&ready);
  account = pooler_service_import_account_finish (f->service, result, &created, &error);
  g_assert_no_error (error);
  g_assert_true (created);
  g_assert_cmpstr (pooler_account_get_label (account), ==, "svc@example.com");
  g_assert_cmpstr (newest_audit_action (f), ==, "account.import");
  assert_keyring_holds (f, pooler_account_get_id (account), "rt-file");
  g_clear_object (&result);

  /* A file that is not there: the error comes through the callback. */
  pooler_service_import_account_async (f->service, missing, "main", NULL, NULL, ready_cb, &ready);
  result = wait_ready (&ready);
  g_assert_null (pooler_service_import_account_finish (f->service, result, &created, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_clear_object (&result);

  /* Removed: the row at once, the keyring item by the time it finishes. */
  changed = f->account_changed;
  pooler_service_remove_account_async (f->service, pooler_account_get_id (account), NULL, ready_cb, &ready);
  gone = pooler_store_find_account (pooler_service_get_store (f->service), pooler_account_get_id (account), &error);
  g_assert_null (gone);
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_cmpuint (f->account_changed, ==, changed + 1);
  result = wait_ready (&ready);
  g_assert_true (pooler_service_remove_account_finish (f->service, result, &error));
  g_assert_no_error (error);
  assert_keyring_holds (f, pooler_account_get_id (account), NULL);
  g_clear_object (&result);

  /* Again: there is nothing to remove. */
  pooler_service_remove_account_async (f->service, pooler_account_get_id (account), NULL, ready_cb, &ready);
  result = wait_ready (&ready);
  g_assert_false (pooler_service_remove_account_finish (f->service, result, &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
}

static void
test_no_pool (Fixture       *f,
              gconstpointer  data)
{
  g_autoptr(PoolerAuthFile) auth = make_auth (f, "at-x", "rt-x");
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  Ready ready = { NULL };

  pooler_service_add_signed_in_async (f->service, auth, "nowhere", NULL, NULL, ready_cb, &ready);
  result = wait_ready (&ready);
  g_assert_null (pooler_service_add_signed_in_finish (f->service, result, NULL, &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "pool create nowhere"));
  g_assert_cmpuint (f->account_changed, ==, 0);
}

/* The tokens are stored, then the row cannot be: the Pool went away in
 * between (another process removed it). Nothing may stay: no row, no
 * member, no keyring item. */
static void
test_failed_save_leaves_nothing (Fixture       *f,
                                 gconstpointer  data)
{
  g_autoptr(PoolerAuthFile) auth = make_auth (f, "at-late", "rt-late");
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GPtrArray) accounts = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *label = g_strdup_printf ("late-%s", f->chatgpt_id);
  const char *db_path = pooler_store_get_path (pooler_service_get_store (f->service));
  sqlite3 *other;
  Ready ready = { NULL };

  pooler_service_add_signed_in_async (f->service, auth, "main", label, NULL, ready_cb, &ready);

  other = pooler_store_open_connection (db_path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (sqlite3_exec (other, "DELETE FROM pools WHERE slug = 'main'", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (other);

  result = wait_ready (&ready);
  g_assert_null (pooler_service_add_signed_in_finish (f->service, result, NULL, &error));
  g_assert_error (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND);
  g_clear_error (&error);

  accounts = pooler_store_list_accounts (pooler_service_get_store (f->service), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (accounts->len, ==, 0);

  /* The tokens were stored, and taken back before the answer came (a
   * command line that exits then leaves nothing behind). */
  g_assert_cmpuint (count_items_labelled (label), ==, 0);
  g_assert_cmpuint (f->account_changed, ==, 0);
}

/* Cancelled while the keyring is asked: the caller hears "cancelled",
 * and no account appears. */
static void
test_cancelled (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(PoolerAuthFile) auth = make_auth (f, "at-c", "rt-c");
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GPtrArray) accounts = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *label = g_strdup_printf ("cancelled-%s", f->chatgpt_id);
  Ready ready = { NULL };

  pooler_service_add_signed_in_async (f->service, auth, "main", label, cancellable, ready_cb, &ready);
  g_cancellable_cancel (cancellable);
  result = wait_ready (&ready);
  g_assert_null (pooler_service_add_signed_in_finish (f->service, result, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  accounts = pooler_store_list_accounts (pooler_service_get_store (f->service), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (accounts->len, ==, 0);

  g_assert_cmpuint (count_items_labelled (label), ==, 0);
}

static void
count_signal (gpointer service,
              gpointer pool,
              guint   *counter)
{
  (*counter)++;
}

static void
count_exhausted (gpointer service,
                 gpointer pool,
                 gint64   reset_at,
                 guint   *counter)
{
  (*counter)++;
}

/* The keyring could not give an account's tokens when the gateway started
 * (locked, say). Maintenance asks again, and the Pool is not called
 * restored while its only account has no tokens in memory (it flapped
 * between exhausted and restored, a notification each time). */
static void
test_tokens_read_again (Fixture       *f,
                        gconstpointer  data)
{
  gint64 exp = g_get_real_time () / G_USEC_PER_SEC + 86400;
  g_autofree char *path = test_write_auth_json ("again", f->chatgpt_id, "again@example.com",
                                                "at-again", "rt-again", exp);
  g_autoptr(PoolerAccount) account = NULL;
  g_autoptr(PoolerService) serving = NULL;
  g_autoptr(PoolerTokens) tokens = NULL;
  g_autoptr(GPtrArray) pools = NULL;
  g_autoptr(GError) error = NULL;
  PoolerVault *vault = pooler_service_get_vault (f->service);
  PoolerPool *pool;
  guint exhausted = 0, restored = 0;
  gint64 deadline;
  const char *id;

  account = pooler_service_import_account (f->service, path, "main", NULL, NULL, &error);
  g_assert_no_error (error);
  id = pooler_account_get_id (account);
  tokens = pooler_vault_lookup_sync (vault, id, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (pooler_vault_clear_sync (vault, id, NULL, &error));

  serving = pooler_service_new (NULL, &error);
  g_assert_no_error (error);
  g_test_expect_message ("pooler-service", G_LOG_LEVEL_WARNING, "*has no usable tokens in the keyring*");
  g_assert_true (pooler_service_start (serving, &error));
  g_assert_no_error (error);
  g_test_assert_expected_messages ();
  g_signal_connect (serving, "pool-exhausted", G_CALLBACK (count_exhausted), &exhausted);
  g_signal_connect (serving, "pool-restored", G_CALLBACK (count_signal), &restored);
  g_assert_null (pooler_service_peek_tokens (serving, id));

  pools = pooler_store_list_pools (pooler_service_get_store (serving), &error);
  g_assert_no_error (error);
  pool = pooler_service_lookup_pool (serving, pooler_pool_get_id (g_ptr_array_index (pools, 0)));
  pooler_service_note_pool_capacity (serving, pool, FALSE, 0);
  g_assert_cmpuint (exhausted, ==, 1);

  /* Still away: asked again, and no "restored". */
  g_test_expect_message ("pooler-service", G_LOG_LEVEL_WARNING, "*Could not read the tokens of account*");
  pooler_service_run_maintenance (serving);
  /* The keyring answers within milliseconds; a second is plenty. */
  for (guint i = 0; i < 500; i++)
    {
      g_main_context_iteration (NULL, FALSE);
      g_usleep (2000);
    }
  g_test_assert_expected_messages ();
  g_assert_cmpuint (restored, ==, 0);

  /* Back (unlocked): the next maintenance reads the pair, then the Pool
   * is restored. */
  g_assert_true (pooler_vault_store_sync (vault, id, "again", tokens, NULL, &error));
  g_assert_no_error (error);
  deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (pooler_service_peek_tokens (serving, id) == NULL)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      pooler_service_run_maintenance (serving);
      for (guint i = 0; i < 20; i++)
        {
          g_main_context_iteration (NULL, FALSE);
          g_usleep (2000);
        }
    }
  g_assert_cmpstr (pooler_service_peek_tokens (serving, id)->refresh_token, ==, "rt-again");
  pooler_service_run_maintenance (serving);
  g_assert_cmpuint (restored, ==, 1);
  g_assert_cmpuint (exhausted, ==, 1);

  pooler_service_stop (serving);
  pooler_vault_clear_sync (vault, id, NULL, NULL);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/service/sign-in-async", test_sign_in_async);
  ADD ("/service/import-and-remove-async", test_import_and_remove_async);
  ADD ("/service/no-pool", test_no_pool);
  ADD ("/service/failed-save-leaves-nothing", test_failed_save_leaves_nothing);
  ADD ("/service/cancelled", test_cancelled);
  ADD ("/service/tokens-read-again", test_tokens_read_again);
#undef ADD

  return g_test_run ();
}
