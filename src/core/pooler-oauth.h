/* pooler-oauth.h: the token endpoint of auth.openai.com: refreshing an
 * account's tokens, and exchanging a browser sign-in's code for them.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <libsoup/soup.h>

#include "pooler-tokens.h"

G_BEGIN_DECLS

/* The Codex CLI's public OAuth client; refresh tokens are bound to it. */
#define POOLER_OAUTH_CLIENT_ID "app_EMoamEEZ73f0CkXaXp7hrann"

#define POOLER_OAUTH_ERROR (pooler_oauth_error_quark ())

typedef enum
{
  /* The refresh token was refused for good (invalid_grant, reused,
   * expired, revoked): the account needs a new sign-in. */
  POOLER_OAUTH_ERROR_REVOKED,
  /* Network trouble, 5xx, 429, an unreadable answer: try again later. */
  POOLER_OAUTH_ERROR_TRANSIENT,
} PoolerOAuthError;

GQuark        pooler_oauth_error_quark     (void);

/* POST @auth_url/oauth/token with the refresh grant. The result's
 * refresh_token is the rotated one (or the old one when the server sent
 * none); expires_at comes from the new access token's "exp", else from
 * "expires_in". Errors never contain a token. */
void          pooler_oauth_refresh_async   (SoupSession          *session,
                                            const char           *auth_url,
                                            const char           *refresh_token,
                                            GCancellable         *cancellable,
                                            GAsyncReadyCallback   callback,
                                            gpointer              user_data);
PoolerTokens *pooler_oauth_refresh_finish  (GAsyncResult         *result,
                                            GError              **error);
/* POST @auth_url/oauth/token, form-encoded, with the authorization_code
 * grant (PKCE: @code_verifier is the secret whose S256 went out in the
 * authorize URL). A refusal is POOLER_OAUTH_ERROR_REVOKED: the code is
 * spent, wrong or expired, and only a new sign-in helps. */
void          pooler_oauth_exchange_code_async  (SoupSession          *session,
                                                 const char           *auth_url,
                                                 const char           *code,
                                                 const char           *redirect_uri,
                                                 const char           *code_verifier,
                                                 GCancellable         *cancellable,
                                                 GAsyncReadyCallback   callback,
                                                 gpointer              user_data);
PoolerTokens *pooler_oauth_exchange_code_finish (GAsyncResult         *result,
                                                 GError              **error);
/* Parses a token endpoint answer (exposed for tests and fuzzing). */
PoolerTokens *pooler_oauth_parse_response  (guint                 status,
                                            const char           *data,
                                            gsize                 length,
                                            const char           *old_refresh_token,
                                            gint64                now,
                                            GError              **error);

G_END_DECLS
