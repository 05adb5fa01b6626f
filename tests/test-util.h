/* test-util.h: helpers shared by the gateway-level tests.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <sqlite3.h>

#include "pooler-service.h"
#include "pooler-store.h"

G_BEGIN_DECLS

/* An unsigned JWT shaped like the ChatGPT tokens in the fixtures. */
char        *test_make_jwt         (const char  *chatgpt_id,
                                    const char  *email,
                                    gint64       exp);
/* Writes a Codex auth.json (ChatGPT mode) under the user config dir and
 * returns its path; @name keeps several apart. */
char        *test_write_auth_json  (const char  *name,
                                    const char  *chatgpt_id,
                                    const char  *email,
                                    const char  *access_token,
                                    const char  *refresh_token,
                                    gint64       exp);
/* A request to @base + @path, with "Authorization: Bearer @key" if set. */
SoupMessage *test_new_message      (const char  *base,
                                    const char  *method,
                                    const char  *path,
                                    const char  *key);
/* Sends and reads the whole answer, spinning the default main context
 * (which the gateway under test runs on). */
GBytes      *test_send_and_read    (SoupSession *session,
                                    SoupMessage *msg);

/* An answer being read in the background: done once it is (body or
 * error set), while the caller spins the default main context. */
typedef struct
{
  GBytes  *body;
  GError  *error;
  gboolean done;
} TestSent;

void         test_send_and_read_start (SoupSession *session,
                                       SoupMessage *msg,
                                       TestSent    *sent);
/* The "error" object of an OpenAI-shape error body (asserts it is one). */
JsonObject  *test_parse_error      (GBytes      *body);
gboolean     test_bytes_contain    (GBytes      *bytes,
                                    const char  *needle);
/* The real Codex CLI request body from the fixtures. */
GBytes      *test_load_codex_body  (void);

/* The newest request row, after the writer has committed everything. */
PoolerRequestRecord *test_last_request (PoolerService *service);

/* A database path in the test's own (isolated) cache dir. */
char        *test_db_path          (const char  *name);
/* A migrated database and a store on it / a plain connection to it. */
PoolerStore *test_open_store       (const char  *path);
sqlite3     *test_open_raw         (const char  *path);

G_END_DECLS
