/* pooler-jwt.h: reading the claims of the ChatGPT id and access tokens.
 *
 * We never verify signatures: the tokens come from the user's own auth.json
 * or from auth.openai.com over TLS, and only the upstream checks them. We
 * read claims to label accounts and schedule refreshes.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef struct
{
  char   *email;
  char   *chatgpt_account_id;   /* "https://api.openai.com/auth".chatgpt_account_id */
  char   *chatgpt_user_id;      /* ... .chatgpt_user_id, else .user_id, else "sub" */
  char   *plan_type;            /* ... .chatgpt_plan_type */
  gint64  expires_at;           /* "exp", 0 if absent */
  gint64  issued_at;            /* "iat", 0 if absent */
} PoolerJwtClaims;

/* The payload of a JWT (the middle part, base64url) as a JSON object. */
JsonObject      *pooler_jwt_decode_payload (const char       *jwt,
                                            GError          **error);
PoolerJwtClaims *pooler_jwt_claims_parse   (const char       *jwt,
                                            GError          **error);
void             pooler_jwt_claims_free    (PoolerJwtClaims  *claims);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PoolerJwtClaims, pooler_jwt_claims_free)

G_END_DECLS
