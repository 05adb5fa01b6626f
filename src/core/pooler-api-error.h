/* pooler-api-error.h: errors in the OpenAI shape,
 * {"error":{"message","type","code","param"}}, for every route.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

GBytes *pooler_api_error_build    (const char        *type,
                                   const char        *code,
                                   const char        *param,
                                   const char        *message);
/* Sets status, Content-Type and the JSON body on @msg. */
void    pooler_api_error_respond  (SoupServerMessage *msg,
                                   guint              status,
                                   const char        *type,
                                   const char        *code,
                                   const char        *param,
                                   const char        *message);
/* A whole HTTP/1.1 response with "Connection: close", for answering on a
 * connection taken away from libsoup before the request body was read. */
GBytes *pooler_api_error_raw_response (guint       status,
                                       const char *type,
                                       const char *code,
                                       const char *message);

G_END_DECLS

G_BEGIN_DECLS

/* An upstream error body made safe to pass on: JSON keeps only the known
 * error fields (message, type, code, param, plan_type, resets_at,
 * resets_in_seconds) or a "detail" string; anything else becomes an
 * OpenAI-shape error that names the status. */
GBytes *pooler_api_error_sanitize_upstream (guint       status,
                                            const char *data,
                                            gsize       length);

G_END_DECLS
