/* pooler-cli-mcp.h: `codex-pooler mcp-token create|list|revoke`.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

G_BEGIN_DECLS

/* argv[0] is "codex-pooler mcp-token"; returns an exit code (0, 1, 2). */
int pooler_cli_run_mcp_token (int    argc,
                              char **argv);

G_END_DECLS
