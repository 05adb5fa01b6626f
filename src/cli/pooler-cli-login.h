/* pooler-cli-login.h: the browser sign-in of `codex-pooler account login`.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "pooler-service.h"

G_BEGIN_DECLS

/* Signs an account in through the browser and adds it to @pool_slug (or
 * updates it there): prints the address to open (on stdout, or on stderr
 * when @json keeps stdout for the result), opens it unless @no_browser,
 * and waits until the sign-in ends, fails, times out or is interrupted
 * (SIGINT, SIGTERM). CODEX_POOLER_LOGIN_PORT overrides the callback port
 * for tests. */
PoolerAccount *pooler_cli_sign_in (PoolerService  *service,
                                   const char     *pool_slug,
                                   const char     *label,
                                   gboolean        json,
                                   gboolean        no_browser,
                                   gboolean       *out_created,
                                   GError        **error);

G_END_DECLS
