/* test-util.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <string.h>

#include "pooler-store-private.h"
#include "test-util.h"

static char *
b64url (const char *text)
{
  g_autofree char *b64 = g_base64_encode ((const guchar *) text, strlen (text));
  GString *s = g_string_new (NULL);

  for (const char *p = b64; *p != '\0' && *p != '='; p++)
    g_string_append_c (s, *p == '+' ? '-' : *p == '/' ? '_' : *p);

  return g_string_free (s, FALSE);
}

char *
test_make_jwt (const char *chatgpt_id,
               const char *email,
               gint64      exp)
{
  g_autofree char *header = b64url ("{\"alg\":\"none\",\"typ\":\"JWT\"}");
  g_autofree char *json = g_strdup_printf ("{\"email\":\"%s\",\"sub\":\"user-%s\",\"iat\":%" G_GINT64_FORMAT ","
                                           "\"exp\":%" G_GINT64_FORMAT ",\"jti\":\"%08x\","
                                           "\"https://api.openai.com/auth\":"
                                           "{\"chatgpt_account_id\":\"%s\",\"chatgpt_plan_type\":\"plus\","
                                           "\"chatgpt_user_id\":\"user-%s\"}}",
                                           email, chatgpt_id, exp - 864000, exp, g_random_int (),
                                           chatgpt_id, chatgpt_id);
  g_autofree char *payload = b64url (json);

  return g_strdup_printf ("%s.%s.c2ln", header, payload);
}

char *
test_write_auth_json (const char *name,
                      const char *chatgpt_id,
                      const char *email,
                      const char *access_token,
                      const char *refresh_token,
                      gint64      exp)
{
  g_autofree char *id_token = test_make_jwt (chatgpt_id, email, exp);
  g_autofree char *json = g_strdup_printf ("{\"OPENAI_API_KEY\":null,\"tokens\":{\"id_token\":\"%s\","
                                           "\"access_token\":\"%s\",\"refresh_token\":\"%s\","
                                           "\"account_id\":\"%s\"},\"last_refresh\":\"2026-11-24T00:00:00Z\"}",
                                           id_token, access_token, refresh_token, chatgpt_id);
  g_autofree char *file = g_strdup_printf ("%s.auth.json", name);
  char *path = g_build_filename (g_get_user_config_dir (), file, NULL);
  g_autoptr(GError) error = NULL;

  g_mkdir_with_parents (g_get_user_config_dir (), 0700);
  g_file_set_contents (path, json, -1, &error);
  g_assert_no_error (error);

  return path;
}

SoupMessage *
test_new_message (const char *base,
                  const char *method,
                  const char *path,
                  const char *key)
{
  g_autofree char *uri = g_strconcat (base, path, NULL);
  SoupMessage *msg = soup_message_new (method, uri);

  if (key != NULL)
    {
      g_autofree char *bearer = g_strconcat ("Bearer ", key, NULL);
      soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", bearer);
    }

  return msg;
}

static void
send_and_read_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  TestSent *sent = user_data;

  sent->body = soup_session_send_and_read_finish (SOUP_SESSION (object), result, &sent->error);
  sent->done = TRUE;
}

void
test_send_and_read_start (SoupSession *session,
                          SoupMessage *msg,
                          TestSent    *sent)
{
  soup_session_send_and_read_async (session, msg, G_PRIORITY_DEFAULT, NULL, send_and_read_cb, sent);
}

GBytes *
test_send_and_read (SoupSession *session,
                    SoupMessage *msg)
{
  TestSent sent = { 0 };

  test_send_and_read_start (session, msg, &sent);
  while (!sent.done)
    g_main_context_iteration (NULL, TRUE);
  g_assert_no_error (sent.error);

  return sent.body;
}

JsonObject *
test_parse_error (GBytes *body)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonObject *root;

  json_parser_load_from_data (parser, g_bytes_get_data (body, NULL), g_bytes_get_size (body), &error);
  g_assert_no_error (error);
  root = json_node_get_object (json_parser_get_root (parser));
  g_assert_true (json_object_has_member (root, "error"));

  return json_object_ref (json_object_get_object_member (root, "error"));
}

gboolean
test_bytes_contain (GBytes     *bytes,
                    const char *needle)
{
  gsize size;
  const char *data = g_bytes_get_data (bytes, &size);

  return data != NULL && g_strstr_len (data, size, needle) != NULL;
}

GBytes *
test_load_codex_body (void)
{
  g_autofree char *path = g_build_filename (g_getenv ("POOLER_FIXTURES_DIR"), "codex-request.json", NULL);
  g_autoptr(GError) error = NULL;
  char *contents = NULL;
  gsize length;

  g_file_get_contents (path, &contents, &length, &error);
  g_assert_no_error (error);

  return g_bytes_new_take (contents, length);
}

char *
test_db_path (const char *name)
{
  g_autofree char *dir = g_build_filename (g_get_user_cache_dir (), "db-tests", NULL);

  g_assert_no_errno (g_mkdir_with_parents (dir, 0700));
  return g_build_filename (dir, name, NULL);
}

PoolerStore *
test_open_store (const char *path)
{
  g_autoptr(GError) error = NULL;
  PoolerStore *store = pooler_store_open (path, &error);

  g_assert_no_error (error);
  g_assert_nonnull (store);
  return store;
}

sqlite3 *
test_open_raw (const char *path)
{
  g_autoptr(GError) error = NULL;
  sqlite3 *db = pooler_store_open_connection (path, &error);

  g_assert_no_error (error);
  g_assert_nonnull (db);
  return db;
}

PoolerRequestRecord *
test_last_request (PoolerService *service)
{
  g_autoptr(GPtrArray) rows = NULL;
  g_autoptr(GError) error = NULL;

  pooler_service_flush (service);
  rows = pooler_store_list_requests (pooler_service_get_store (service), 1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (rows->len, ==, 1);

  return pooler_request_record_copy (g_ptr_array_index (rows, 0));
}
