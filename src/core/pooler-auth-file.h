/* pooler-auth-file.h: the Codex CLI's auth.json (ChatGPT sign-in mode).
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "pooler-jwt.h"
#include "pooler-tokens.h"

G_BEGIN_DECLS

typedef struct
{
  PoolerTokens    *tokens;       /* expires_at from the access token's "exp" */
  PoolerJwtClaims *claims;       /* from the id token, with gaps filled from the access token */
  char            *account_id;   /* tokens.account_id, else the claim */
} PoolerAuthFile;

/* $CODEX_HOME/auth.json if CODEX_HOME is set, else ~/.codex/auth.json. */
char           *pooler_auth_file_default_path (void);
/* Errors (POOLER_ERROR): INVALID for malformed JSON or missing tokens,
 * UNSUPPORTED for an API-key-mode file, EXPIRED when the access token's
 * exp is at or before @now (unix seconds). Messages are one line and
 * say what to do. */
PoolerAuthFile *pooler_auth_file_parse        (const char      *data,
                                               gsize            length,
                                               gint64           now,
                                               GError         **error);
PoolerAuthFile *pooler_auth_file_load         (const char      *path,
                                               gint64           now,
                                               GError         **error);
/* The identity that a sign-in's @tokens (taken) carry: the id token's
 * claims, gaps filled from the access token's, whose "exp" (if any) sets
 * the tokens' expiry; the account is @account_id, else the claim. @source
 * names where the tokens came from in messages ("this auth.json"). */
PoolerAuthFile *pooler_auth_file_new_from_tokens (PoolerTokens *tokens,
                                                  const char   *account_id,
                                                  const char   *source,
                                                  GError      **error);
void            pooler_auth_file_free         (PoolerAuthFile  *auth);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PoolerAuthFile, pooler_auth_file_free)

G_END_DECLS
