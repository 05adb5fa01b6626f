/* pooler-vault.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-vault"

#include "config.h"

#include <string.h>

#include <libsecret/secret.h>

#include "pooler-error.h"
#include "pooler-json.h"
#include "pooler-vault.h"

#define CHECK_TIMEOUT_SECONDS 5
/* After the timeout cancels the probe, how long to wait for libsecret to
 * report back before giving up on it. */
#define CHECK_GRACE_MS 500

#define NO_VAULT_MESSAGE \
  "No Secret Service answered on the session bus (is gnome-keyring-daemon running " \
  "and unlocked? In a headless session: `dbus-run-session -- sh -c 'echo -n pw | " \
  "gnome-keyring-daemon --unlock --components=secrets; codex-pooler serve'`)"

/* An account id nobody uses: the availability probe searches for it. */
#define PROBE_ACCOUNT_ID "codex-pooler-availability-probe"

struct _PoolerVault
{
  GObject parent_instance;
};

G_DEFINE_FINAL_TYPE (PoolerVault, pooler_vault, G_TYPE_OBJECT)

static const SecretSchema *
pooler_vault_get_schema (void)
{
  static const SecretSchema schema = {
    .name = "io.github.codexpooler.CodexPooler.Account",
    .flags = SECRET_SCHEMA_NONE,
    .attributes = {
      { "account-id", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { NULL, 0 },
    },
  };

  return &schema;
}

static void
pooler_vault_class_init (PoolerVaultClass *klass)
{
}

static void
pooler_vault_init (PoolerVault *self)
{
}

PoolerVault *
pooler_vault_new (void)
{
  return g_object_new (POOLER_TYPE_VAULT, NULL);
}

static void
wipe_string (char *s)
{
  if (s != NULL)
    {
      /* volatile so the stores survive the free() that follows */
      volatile char *p = s;

      while (*p != '\0')
        *p++ = '\0';
    }
  g_free (s);
}

/* TRUE when @error means nobody provides the Secret Service (or there is
 * no session bus at all), as opposed to the service refusing. */
static gboolean
error_is_no_service (const GError *error)
{
  if (error->domain == G_DBUS_ERROR)
    {
      switch (error->code)
        {
        case G_DBUS_ERROR_SERVICE_UNKNOWN:
        case G_DBUS_ERROR_NAME_HAS_NO_OWNER:
        case G_DBUS_ERROR_NO_SERVER:
        case G_DBUS_ERROR_NO_REPLY:
        case G_DBUS_ERROR_TIMEOUT:
        case G_DBUS_ERROR_TIMED_OUT:
        case G_DBUS_ERROR_DISCONNECTED:
        case G_DBUS_ERROR_SPAWN_EXEC_FAILED:
        case G_DBUS_ERROR_SPAWN_FORK_FAILED:
        case G_DBUS_ERROR_SPAWN_CHILD_EXITED:
        case G_DBUS_ERROR_SPAWN_CHILD_SIGNALED:
        case G_DBUS_ERROR_SPAWN_FAILED:
        case G_DBUS_ERROR_SPAWN_SERVICE_NOT_FOUND:
        case G_DBUS_ERROR_SPAWN_SERVICE_INVALID:
        case G_DBUS_ERROR_SPAWN_FILE_INVALID:
          return TRUE;
        default:
          return FALSE;
        }
    }

  /* What g_bus_get() reports when the session bus itself is missing. */
  return g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) ||
         g_error_matches (error, G_IO_ERROR, G_IO_ERROR_FAILED) ||
         g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED) ||
         g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CLOSED) ||
         g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
}

static gboolean
error_is_no_collection (const GError *error)
{
  return g_error_matches (error, SECRET_ERROR, SECRET_ERROR_IS_LOCKED) ||
         g_error_matches (error, SECRET_ERROR, SECRET_ERROR_NO_SUCH_OBJECT) ||
         g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD) ||
         g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT);
}

/* Takes @error. libsecret's messages never contain the secret, but they
 * are kept out of the NO_VAULT case so that message stays one fixed line. */
static void
propagate_secret_error (GError     **dest,
                        GError      *error,
                        const char  *doing)
{
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_propagate_error (dest, error);
      return;
    }

  if (error_is_no_service (error))
    {
      g_debug ("Secret Service unavailable while %s: %s", doing, error->message);
      g_set_error_literal (dest, POOLER_ERROR, POOLER_ERROR_NO_VAULT, NO_VAULT_MESSAGE);
    }
  else if (error_is_no_collection (error))
    {
      /* What a freshly activated gnome-keyring without a login keyring (and
       * no prompter to create one) answers: common on headless hosts. */
      g_set_error (dest, POOLER_ERROR, POOLER_ERROR_FAILED,
                   "The keyring has no unlocked default collection (%s); unlock it, "
                   "or start gnome-keyring-daemon with --unlock", error->message);
    }
  else
    {
      g_set_error (dest, POOLER_ERROR, POOLER_ERROR_FAILED,
                   "The keyring failed while %s: %s", doing, error->message);
    }

  g_error_free (error);
}

static char *
make_item_label (const char *account_id,
                 const char *label)
{
  return g_strdup_printf ("Codex Pooler account %s",
                          label != NULL && label[0] != '\0' ? label : account_id);
}

static void
builder_add_nullable_string (JsonBuilder *builder,
                             const char  *name,
                             const char  *value)
{
  json_builder_set_member_name (builder, name);
  if (value != NULL)
    json_builder_add_string_value (builder, value);
  else
    json_builder_add_null_value (builder);
}

/* The secret as stored; free with wipe_string(). */
static char *
tokens_to_secret (const PoolerTokens *tokens)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  builder_add_nullable_string (builder, "access_token", tokens->access_token);
  builder_add_nullable_string (builder, "refresh_token", tokens->refresh_token);
  builder_add_nullable_string (builder, "id_token", tokens->id_token);
  json_builder_set_member_name (builder, "expires_at");
  json_builder_add_int_value (builder, tokens->expires_at);
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);

  return json_generator_to_data (generator, NULL);
}

/* Wrong types and absent members read as NULL. */
static PoolerTokens *
tokens_from_secret (const char  *secret,
                    GError     **error)
{
  g_autoptr(JsonObject) object = NULL;
  const char *access_token;
  const char *refresh_token;
  JsonNode *expires_node;
  gint64 expires_at = 0;

  /* json-glib's message could quote the secret, so it is dropped. */
  object = pooler_json_parse_object (secret, strlen (secret), NULL);
  if (object == NULL)
    {
      g_set_error_literal (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                           "The keyring item for this account is not readable; "
                           "sign the account in again (codex-pooler account login) or import it again");
      return NULL;
    }

  access_token = pooler_json_get_string (object, "access_token");
  refresh_token = pooler_json_get_string (object, "refresh_token");
  if (access_token == NULL || refresh_token == NULL)
    {
      g_set_error_literal (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                           "The keyring item for this account has no access or refresh token; "
                           "sign the account in again (codex-pooler account login) or import it again");
      return NULL;
    }

  expires_node = json_object_get_member (object, "expires_at");
  if (expires_node != NULL && JSON_NODE_HOLDS_VALUE (expires_node) &&
      json_node_get_value_type (expires_node) == G_TYPE_INT64)
    expires_at = json_node_get_int (expires_node);

  return pooler_tokens_new (access_token, refresh_token,
                            pooler_json_get_string (object, "id_token"),
                            expires_at);
}

/* Takes @secret (from libsecret, may be NULL) and wipes it. */
static PoolerTokens *
tokens_from_lookup (char          *secret,
                    GError        *lookup_error,
                    GError       **error)
{
  PoolerTokens *tokens;

  if (lookup_error != NULL)
    {
      secret_password_free (secret);
      propagate_secret_error (error, lookup_error, "reading an account's tokens");
      return NULL;
    }

  if (secret == NULL)
    {
      g_set_error_literal (error, POOLER_ERROR, POOLER_ERROR_NOT_FOUND,
                           "The keyring holds no tokens for this account");
      return NULL;
    }

  tokens = tokens_from_secret (secret, error);
  secret_password_free (secret);

  return tokens;
}

/* Availability check ----------------------------------------------------- */

typedef struct
{
  GCancellable  *cancellable;
  SecretService *service;
  GError        *error;
  gboolean       done;
} CheckState;

static void
check_state_clear (CheckState *state)
{
  g_clear_object (&state->cancellable);
  g_clear_object (&state->service);
  g_clear_error (&state->error);
}

static CheckState *
check_state_ref (CheckState *state)
{
  return g_atomic_rc_box_acquire (state);
}

static void
check_state_unref (CheckState *state)
{
  g_atomic_rc_box_release_full (state, (GDestroyNotify) check_state_clear);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CheckState, check_state_unref)

static void
check_search_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(CheckState) state = user_data;
  GList *items;

  items = secret_service_search_finish (SECRET_SERVICE (object), result, &state->error);
  g_list_free_full (items, g_object_unref);
  /* Dropped here, while its context still runs, so the proxy's signal
   * subscriptions are torn down where their cleanup is dispatched. */
  g_clear_object (&state->service);
  state->done = TRUE;
}

static void
check_open_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(CheckState) state = user_data;
  g_autoptr(GHashTable) attributes = NULL;

  state->service = secret_service_open_finish (result, &state->error);
  if (state->service == NULL)
    {
      state->done = TRUE;
      return;
    }

  /* OpenSession alone could be answered by a half-started daemon; a search
   * is the smallest call that proves the item API works. */
  attributes = secret_attributes_build (pooler_vault_get_schema (),
                                        "account-id", PROBE_ACCOUNT_ID,
                                        NULL);
  secret_service_search (state->service, pooler_vault_get_schema (), attributes,
                         SECRET_SEARCH_NONE, state->cancellable,
                         check_search_cb, check_state_ref (state));
}

static gboolean
check_timeout_cb (gpointer user_data)
{
  CheckState *state = user_data;

  g_cancellable_cancel (state->cancellable);
  return G_SOURCE_REMOVE;
}

static void
check_user_cancelled_cb (GCancellable *user_cancellable,
                         gpointer      user_data)
{
  g_cancellable_cancel (G_CANCELLABLE (user_data));
}

static gboolean
check_grace_cb (gpointer user_data)
{
  gboolean *expired = user_data;

  *expired = TRUE;
  return G_SOURCE_REMOVE;
}

gboolean
pooler_vault_check_available (PoolerVault   *self,
                              GCancellable  *cancellable,
                              GError       **error)
{
  g_autoptr(GMainContext) context = NULL;
  g_autoptr(GSource) timeout = NULL;
  g_autoptr(GSource) grace = NULL;
  g_autoptr(CheckState) state = NULL;
  gulong cancelled_id = 0;
  gboolean grace_expired = FALSE;

  g_return_val_if_fail (POOLER_IS_VAULT (self), FALSE);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  state = g_atomic_rc_box_new0 (CheckState);
  state->cancellable = g_cancellable_new ();

  /* A private context so the wait neither runs the caller's sources nor
   * depends on the caller's loop running. */
  context = g_main_context_new ();
  g_main_context_push_thread_default (context);

  timeout = g_timeout_source_new_seconds (CHECK_TIMEOUT_SECONDS);
  g_source_set_callback (timeout, check_timeout_cb, state, NULL);
  g_source_attach (timeout, context);

  if (cancellable != NULL)
    cancelled_id = g_cancellable_connect (cancellable, G_CALLBACK (check_user_cancelled_cb),
                                          g_object_ref (state->cancellable),
                                          g_object_unref);

  secret_service_open (SECRET_TYPE_SERVICE, NULL, SECRET_SERVICE_OPEN_SESSION,
                       state->cancellable, check_open_cb, check_state_ref (state));

  while (!state->done && !g_cancellable_is_cancelled (state->cancellable))
    g_main_context_iteration (context, TRUE);

  /* Cancelled: give libsecret a moment to finish so nothing is left
   * behind, but never wait on a call that ignores cancellation. */
  if (!state->done)
    {
      grace = g_timeout_source_new (CHECK_GRACE_MS);
      g_source_set_callback (grace, check_grace_cb, &grace_expired, NULL);
      g_source_attach (grace, context);

      while (!state->done && !grace_expired)
        g_main_context_iteration (context, TRUE);

      g_source_destroy (grace);
    }

  g_source_destroy (timeout);
  g_cancellable_disconnect (cancellable, cancelled_id);

  /* GDBus frees signal-subscription data from idles on the context the
   * proxy was made in; run them now or they leak with the context. */
  if (state->done)
    {
      guint i;

      for (i = 0; i < 100 && g_main_context_iteration (context, FALSE); i++)
        ;
    }

  g_main_context_pop_thread_default (context);

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;

  if (!state->done || state->error != NULL)
    {
      if (state->error != NULL)
        g_debug ("Secret Service probe failed: %s", state->error->message);
      else
        g_debug ("Secret Service probe timed out");

      g_set_error_literal (error, POOLER_ERROR, POOLER_ERROR_NO_VAULT, NO_VAULT_MESSAGE);
      return FALSE;
    }

  return TRUE;
}

/* Synchronous API -------------------------------------------------------- */

gboolean
pooler_vault_store_sync (PoolerVault         *self,
                         const char          *account_id,
                         const char          *label,
                         const PoolerTokens  *tokens,
                         GCancellable        *cancellable,
                         GError             **error)
{
  g_autofree char *item_label = NULL;
  GError *local_error = NULL;
  char *secret;
  gboolean ok;

  g_return_val_if_fail (POOLER_IS_VAULT (self), FALSE);
  g_return_val_if_fail (account_id != NULL && account_id[0] != '\0', FALSE);
  g_return_val_if_fail (tokens != NULL, FALSE);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  item_label = make_item_label (account_id, label);
  secret = tokens_to_secret (tokens);

  /* Storing under the same attributes replaces the item, so an update
   * never leaves a second copy of the old tokens behind. */
  ok = secret_password_store_sync (pooler_vault_get_schema (), SECRET_COLLECTION_DEFAULT,
                                   item_label, secret, cancellable, &local_error,
                                   "account-id", account_id,
                                   NULL);
  wipe_string (secret);

  if (!ok)
    {
      propagate_secret_error (error, local_error, "storing an account's tokens");
      return FALSE;
    }

  return TRUE;
}

PoolerTokens *
pooler_vault_lookup_sync (PoolerVault   *self,
                          const char    *account_id,
                          GCancellable  *cancellable,
                          GError       **error)
{
  GError *local_error = NULL;
  char *secret;

  g_return_val_if_fail (POOLER_IS_VAULT (self), NULL);
  g_return_val_if_fail (account_id != NULL && account_id[0] != '\0', NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  secret = secret_password_lookup_sync (pooler_vault_get_schema (), cancellable, &local_error,
                                        "account-id", account_id,
                                        NULL);

  return tokens_from_lookup (secret, local_error, error);
}

gboolean
pooler_vault_clear_sync (PoolerVault   *self,
                         const char    *account_id,
                         GCancellable  *cancellable,
                         GError       **error)
{
  GError *local_error = NULL;

  g_return_val_if_fail (POOLER_IS_VAULT (self), FALSE);
  g_return_val_if_fail (account_id != NULL && account_id[0] != '\0', FALSE);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* FALSE without an error only means there was nothing to remove, which
   * is what the caller wanted. */
  if (!secret_password_clear_sync (pooler_vault_get_schema (), cancellable, &local_error,
                                   "account-id", account_id,
                                   NULL) &&
      local_error != NULL)
    {
      propagate_secret_error (error, local_error, "removing an account's tokens");
      return FALSE;
    }

  return TRUE;
}

/* Asynchronous API ------------------------------------------------------- */

static void
store_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *local_error = NULL;

  if (!secret_password_store_finish (result, &local_error))
    {
      GError *error = NULL;

      propagate_secret_error (&error, local_error, "storing an account's tokens");
      g_task_return_error (task, error);
      return;
    }

  g_task_return_boolean (task, TRUE);
}

void
pooler_vault_store_async (PoolerVault         *self,
                          const char          *account_id,
                          const char          *label,
                          const PoolerTokens  *tokens,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autofree char *item_label = NULL;
  char *secret;

  g_return_if_fail (POOLER_IS_VAULT (self));
  g_return_if_fail (account_id != NULL && account_id[0] != '\0');
  g_return_if_fail (tokens != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, pooler_vault_store_async);

  item_label = make_item_label (account_id, label);
  secret = tokens_to_secret (tokens);

  /* libsecret copies the password into its own (wiped) memory before
   * returning, so ours can go at once. */
  secret_password_store (pooler_vault_get_schema (), SECRET_COLLECTION_DEFAULT,
                         item_label, secret, cancellable,
                         store_cb, g_steal_pointer (&task),
                         "account-id", account_id,
                         NULL);
  wipe_string (secret);
}

gboolean
pooler_vault_store_finish (PoolerVault   *self,
                           GAsyncResult  *result,
                           GError       **error)
{
  g_return_val_if_fail (POOLER_IS_VAULT (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == pooler_vault_store_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
lookup_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *lookup_error = NULL;
  GError *error = NULL;
  PoolerTokens *tokens;
  char *secret;

  secret = secret_password_lookup_finish (result, &lookup_error);
  tokens = tokens_from_lookup (secret, lookup_error, &error);

  if (tokens == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, tokens, (GDestroyNotify) pooler_tokens_free);
}

void
pooler_vault_lookup_async (PoolerVault         *self,
                           const char          *account_id,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (POOLER_IS_VAULT (self));
  g_return_if_fail (account_id != NULL && account_id[0] != '\0');
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, pooler_vault_lookup_async);

  secret_password_lookup (pooler_vault_get_schema (), cancellable,
                          lookup_cb, g_steal_pointer (&task),
                          "account-id", account_id,
                          NULL);
}

PoolerTokens *
pooler_vault_lookup_finish (PoolerVault   *self,
                            GAsyncResult  *result,
                            GError       **error)
{
  g_return_val_if_fail (POOLER_IS_VAULT (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == pooler_vault_lookup_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
clear_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *local_error = NULL;

  /* FALSE without an error only means there was nothing to remove. */
  if (!secret_password_clear_finish (result, &local_error) && local_error != NULL)
    {
      GError *error = NULL;

      propagate_secret_error (&error, local_error, "removing an account's tokens");
      g_task_return_error (task, error);
      return;
    }

  g_task_return_boolean (task, TRUE);
}

void
pooler_vault_clear_async (PoolerVault         *self,
                          const char          *account_id,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (POOLER_IS_VAULT (self));
  g_return_if_fail (account_id != NULL && account_id[0] != '\0');
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, pooler_vault_clear_async);

  secret_password_clear (pooler_vault_get_schema (), cancellable,
                         clear_cb, g_steal_pointer (&task),
                         "account-id", account_id,
                         NULL);
}

gboolean
pooler_vault_clear_finish (PoolerVault   *self,
                           GAsyncResult  *result,
                           GError       **error)
{
  g_return_val_if_fail (POOLER_IS_VAULT (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == pooler_vault_clear_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
