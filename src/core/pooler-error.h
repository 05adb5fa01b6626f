/* pooler-error.h: the core's GError domain.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define POOLER_ERROR (pooler_error_quark ())

typedef enum
{
  POOLER_ERROR_FAILED,
  POOLER_ERROR_NOT_FOUND,     /* a pool, account or key that does not exist */
  POOLER_ERROR_EXISTS,        /* creating something whose name is taken */
  POOLER_ERROR_INVALID,       /* malformed input: a file, a name, an argument */
  POOLER_ERROR_UNSUPPORTED,   /* well-formed but not something we handle */
  POOLER_ERROR_EXPIRED,       /* tokens or keys past their expiry */
  POOLER_ERROR_NO_VAULT,      /* no Secret Service answered */
  POOLER_ERROR_DATABASE,      /* SQLite refused */
} PoolerError;

GQuark pooler_error_quark (void);

G_END_DECLS
