/* pooler-store-private.h: for the writer thread and the tests.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <sqlite3.h>

#include "pooler-store.h"

G_BEGIN_DECLS

/* The newest schema this build knows. */
int      pooler_store_schema_version_latest (void);

/* Opens @path with our pragmas (WAL, busy timeout, foreign keys) but
 * without migrating. */
sqlite3 *pooler_store_open_connection       (const char  *path,
                                             GError     **error);
/* Applies migrations 1..@target in order, each in its own transaction. */
gboolean pooler_store_migrate_to            (sqlite3     *db,
                                             int          target,
                                             GError     **error);

G_END_DECLS
