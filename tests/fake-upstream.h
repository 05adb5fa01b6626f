/* fake-upstream.h: a fake ChatGPT backend and auth.openai.com for tests.
 *
 * The server runs in its own thread with its own GMainContext, so a test
 * may block its thread (or run the gateway's loop) while the fake answers.
 * Every function here is thread-safe.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib-object.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define FAKE_TYPE_UPSTREAM (fake_upstream_get_type ())
G_DECLARE_FINAL_TYPE (FakeUpstream, fake_upstream, FAKE, UPSTREAM, GObject)

/* Modes of POST /backend-api/codex/responses:
 *   ok         responses-minimal.sse, one event per HTTP chunk
 *   ok_full    responses-full.sse
 *   429        error-429-usage-limit.json (with quota headers)
 *   429at      error-429-usage-limit-resets-at.json, resets_at = now + N
 *              (N: fake_upstream_set_resets_in (), default 1800)
 *   429plain   error-429-rate-limit-exceeded.json
 *   401        error-401.json
 *   500        error-500.json
 *   failed     200 whose first (and only) event is response.failed
 *              (error.code "server_error")
 *   failed_request  the same with "context_length_exceeded" (the
 *              request's fault, not the account's)
 *   cut        first two events, then the connection is closed
 *   garbage    200 text/event-stream whose body is not SSE
 *   hang       no answer at all until released (then as ok) or stopped
 *   hold       first event, then nothing until released, then the rest
 *   slow       as ok with gap_ms between events (250 ms unless
 *              fake_upstream_set_gap_ms () was called)
 *   long       as ok with 40000 more delta events (megabytes), no gap
 *              (another count, or bigger deltas of their own:
 *              fake_upstream_set_long_deltas ())
 *   huge_headers  200 with a 256 KiB response header
 *   empty      200 text/event-stream that ends with no event
 *   reasoning  as ok, with a reasoning item (id rs_ and 24 new hex digits,
 *              encrypted_content) done before the message
 *   codex_extras  as ok_full, with a codex.rate_limits event after the first
 *              and an empty output in response.completed (the backend's
 *              own additions)
 */

/* One recorded request. Immutable once recorded; reference counted. */
typedef struct
{
  /*< private >*/
  gatomicrefcount ref_count;
  /*< public >*/
  char    *method;
  char    *path;
  char    *query;          /* raw query string, NULL when absent */
  char   **header_names;   /* libsoup's order; NULL-terminated */
  char   **header_values;  /* same length as header_names */
  GBytes  *body;           /* never NULL; may be empty */
  gint64   received_at_us; /* g_get_real_time () */
} FakeUpstreamRequest;

FakeUpstreamRequest *fake_upstream_request_ref        (FakeUpstreamRequest       *request);
void                 fake_upstream_request_unref      (FakeUpstreamRequest       *request);
/* First value of @name (case-insensitive), or NULL. */
const char          *fake_upstream_request_get_header (const FakeUpstreamRequest *request,
                                                       const char                *name);
/* {"method","path","query","headers":[[n,v]...],"body_length","body_sha256"} */
JsonNode            *fake_upstream_request_to_json    (const FakeUpstreamRequest *request);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FakeUpstreamRequest, fake_upstream_request_unref)

/* Listens on 127.0.0.1, on a free port. */
FakeUpstream *fake_upstream_new              (GError       **error);
/* @port 0 picks a free port. */
FakeUpstream *fake_upstream_new_on_port      (guint          port,
                                              GError       **error);

guint         fake_upstream_get_port         (FakeUpstream  *self);
/* "http://127.0.0.1:PORT/backend-api" (CODEX_POOLER_UPSTREAM_URL) */
char         *fake_upstream_dup_base_url     (FakeUpstream  *self);
/* "http://127.0.0.1:PORT" (CODEX_POOLER_AUTH_URL) */
char         *fake_upstream_dup_auth_url     (FakeUpstream  *self);

/* Registers (or replaces) an account. Once any account is registered,
 * every /backend-api/ route wants "Authorization: Bearer <current access
 * token>" and the matching chatgpt-account-id, else 401 error-401.json. */
void          fake_upstream_add_account      (FakeUpstream  *self,
                                              const char    *chatgpt_account_id,
                                              const char    *access_token,
                                              const char    *refresh_token);
/* The current tokens of an account (they change when it refreshes). */
char         *fake_upstream_dup_access_token (FakeUpstream  *self,
                                              const char    *chatgpt_account_id);
char         *fake_upstream_dup_refresh_token (FakeUpstream *self,
                                               const char   *chatgpt_account_id);
/* Makes the current access token stale (as if revoked upstream), so the
 * next request with it gets 401 and the client has to refresh. */
void          fake_upstream_invalidate_access_token (FakeUpstream *self,
                                                     const char   *chatgpt_account_id);
/* Successful refreshes of the account so far. */
guint         fake_upstream_get_refresh_count (FakeUpstream *self,
                                               const char   *chatgpt_account_id);

/* @account NULL sets the global mode; an account's own mode wins over it.
 * @mode NULL means "ok" (for an account: drop its override). @times 0 means
 * until changed, N > 0 the next N responses requests only. Returns FALSE for
 * an unknown mode. */
gboolean      fake_upstream_set_mode         (FakeUpstream  *self,
                                              const char    *account,
                                              const char    *mode,
                                              guint          times);
/* GET /backend-api/codex/models: "empty" (default), "catalog", "404", "500". */
gboolean      fake_upstream_set_models_mode  (FakeUpstream  *self,
                                              const char    *mode);
/* Replaces the text "hello" of the served streams; NULL restores it. */
void          fake_upstream_set_reply_text   (FakeUpstream  *self,
                                              const char    *text);
/* Pause between SSE events (default 2 ms; also the gap of mode "slow"). */
void          fake_upstream_set_gap_ms       (FakeUpstream  *self,
                                              guint          gap_ms);
/* resets_at = now + @seconds in mode 429at (default 1800). */
void          fake_upstream_set_long_deltas  (FakeUpstream  *self,
                                              guint          deltas,
                                              guint          delta_bytes);
void          fake_upstream_set_resets_in    (FakeUpstream  *self,
                                              guint          seconds);
/* Lets every request held by "hold" or "hang" go on. Requests that arrive
 * later are not affected. */
void          fake_upstream_release          (FakeUpstream  *self);
/* Requests currently held by "hold"/"hang". */
guint         fake_upstream_get_held_count   (FakeUpstream  *self);
/* Blocks until at least @count requests are held; FALSE on timeout. */
gboolean      fake_upstream_wait_held        (FakeUpstream  *self,
                                              guint          count,
                                              guint          timeout_ms);

/* Recorded requests (not the control endpoints). */
guint         fake_upstream_get_request_count (FakeUpstream *self);
/* Blocks until at least @count requests were recorded; FALSE on timeout. */
gboolean      fake_upstream_wait_requests    (FakeUpstream  *self,
                                              guint          count,
                                              guint          timeout_ms);
/* Element type FakeUpstreamRequest, in arrival order. */
GPtrArray    *fake_upstream_dup_requests     (FakeUpstream  *self);
/* The array GET /__requests answers. */
JsonNode     *fake_upstream_dup_requests_json (FakeUpstream *self);

/* Back to defaults: modes, reply text, gap, resets_in; forgets recorded
 * requests and counters. Registered accounts and their tokens stay. */
void          fake_upstream_reset            (FakeUpstream  *self);
/* Who signs in at GET /oauth/authorize (NULL: nobody, the page refuses
 * like a denied sign-in), and how: "ok" (a code for the redirect URI,
 * exchanged once with the PKCE verifier at /oauth/token), "norefresh"
 * (the same, but the exchange's answer has no refresh token) or "deny"
 * (error=access_denied, missing_codex_entitlement). The control URL's
 * sign_in, sign_in_email and sign_in_mode set the same (sign_in_mode
 * alone changes only the mode). */
void          fake_upstream_set_sign_in      (FakeUpstream  *self,
                                              const char    *chatgpt_account_id,
                                              const char    *email,
                                              const char    *mode);
/* The token endpoint: "ok", "400" (every grant refused, invalid_grant),
 * "500", or "hold" (each request waits, counted in the held count, until
 * fake_upstream_release(), then is answered as in "ok"); the control
 * URL's oauth sets the same. */
void          fake_upstream_set_oauth_mode   (FakeUpstream  *self,
                                              const char    *mode);
/* @status (0: off): every POST .../codex/responses is answered with it
 * from its head alone, and the connection closed unread, as an auth layer
 * or a rate limiter in front of the backend does. */
void          fake_upstream_set_early_answer (FakeUpstream  *self,
                                              guint          status);
guint         fake_upstream_get_early_answer_count (FakeUpstream *self);
/* Requests to the token endpoint so far, answered or refused. */
guint         fake_upstream_get_token_request_count (FakeUpstream *self);
/* Codes exchanged for tokens so far. */
guint         fake_upstream_get_sign_in_count (FakeUpstream *self);

G_END_DECLS
