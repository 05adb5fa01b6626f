/* pooler-login.h: signing an account in through the browser, as the Codex
 * CLI does (OAuth 2 authorization code with PKCE, S256).
 *
 * A PoolerLogin listens on the loopback interface for the sign-in
 * server's redirect, gives the authorize URL for the user to open, and
 * exchanges the code that comes back for the account's tokens. The
 * sign-in server accepts this client's redirect only to
 * http://localhost:1455/auth/callback or port 1457, so
 * pooler_login_listen() takes 1455, else 1457 (a `codex login` may hold
 * the first). The redirect's page tells the user what happened; the
 * result is the tokens and the identity they carry, for
 * pooler_service_add_signed_in(). Nothing here writes a token anywhere.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <libsoup/soup.h>

#include "pooler-auth-file.h"

G_BEGIN_DECLS

#define POOLER_LOGIN_PORT           1455
#define POOLER_LOGIN_FALLBACK_PORT  1457
#define POOLER_LOGIN_CALLBACK_PATH  "/auth/callback"
/* How long a sign-in may take before the wait gives up. */
#define POOLER_LOGIN_TIMEOUT_S      (10 * 60)

#define POOLER_TYPE_LOGIN (pooler_login_get_type ())

G_DECLARE_FINAL_TYPE (PoolerLogin, pooler_login, POOLER, LOGIN, GObject)

/* @auth_url: the sign-in server's origin (https://auth.openai.com). */
PoolerLogin    *pooler_login_new               (SoupSession          *session,
                                                const char           *auth_url);
/* Makes the PKCE secret and state, and listens on 127.0.0.1 and ::1.
 * @port 0: 1455, else 1457 if that is taken; another number only for
 * tests (the real server refuses it). Call once. */
gboolean        pooler_login_listen            (PoolerLogin          *self,
                                                guint                 port,
                                                GError              **error);
guint           pooler_login_get_port          (PoolerLogin          *self);
/* The page to open in the browser (after pooler_login_listen()). */
const char     *pooler_login_get_authorize_url (PoolerLogin          *self);
/* For a browser on another machine, whose redirect to localhost did not
 * load there: the address it ended on, pasted by the user, is taken as
 * the redirect itself would be (no page). FALSE with POOLER_ERROR_INVALID
 * when it is not such an address or has another sign-in's state, and
 * POOLER_ERROR_FAILED when this sign-in is over or finishing; the wait
 * goes on either way. */
gboolean        pooler_login_take_address      (PoolerLogin          *self,
                                                const char           *address,
                                                GError              **error);
/* Seconds the wait allows (POOLER_LOGIN_TIMEOUT_S); set before waiting. */
void            pooler_login_set_timeout       (PoolerLogin          *self,
                                                guint                 seconds);

/* Completes when the sign-in is over: the code exchanged (and the
 * browser's page written), or it failed: the server refused it
 * (POOLER_ERROR_FAILED, with its reason), the code exchange failed
 * (POOLER_OAUTH_ERROR), the time ran out (POOLER_ERROR_EXPIRED), or it
 * was cancelled through @cancellable or by a GET /cancel, which a newer
 * sign-in on the same port sends (G_IO_ERROR_CANCELLED). A redirect with
 * the wrong state is answered 400 and the wait goes on. Call once. */
void            pooler_login_wait_async        (PoolerLogin          *self,
                                                GCancellable         *cancellable,
                                                GAsyncReadyCallback   callback,
                                                gpointer              user_data);
PoolerAuthFile *pooler_login_wait_finish       (PoolerLogin          *self,
                                                GAsyncResult         *result,
                                                GError              **error);

G_END_DECLS
