/* pooler-redact.h: making metadata safe to show to agents (the /mcp tools).
 *
 * E-mail addresses keep the first two characters of their local part
 * ("jo***@example.com"); free text has every address in it masked so.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* NULL for NULL; "***" for something that is not an address. */
char *pooler_redact_email (const char *email);
/* @text with every e-mail address in it masked; NULL for NULL. */
char *pooler_redact_text  (const char *text);

G_END_DECLS
