/* pooler-error.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include "pooler-error.h"

G_DEFINE_QUARK (pooler-error-quark, pooler_error)
