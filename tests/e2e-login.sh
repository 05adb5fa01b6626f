#!/usr/bin/env bash
# e2e-login.sh: `codex-pooler account login`, the browser sign-in, with curl
# as the browser and the fake upstream as auth.openai.com: the page to open,
# the redirect back to the command's loopback server, the code exchanged
# with PKCE, the account stored and served by the gateway. Prints TAP.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib-e2e.sh
source "${POOLER_TESTS_DIR:-$HERE}/lib-e2e.sh"

e2e_require_env POOLER_BIN FAKE_UPSTREAM_BIN
e2e_setup
e2e_start_fake

export CODEX_POOLER_AUTH_URL=$FAKE_AUTH_URL CODEX_POOLER_UPSTREAM_URL=$FAKE_BASE_URL

count_lines () { if [[ -s $1 ]]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }
# free_port: a port free on 127.0.0.1 and on ::1 (the login listens on both;
# a machine without IPv6 only needs the first).
free_port () {
  e2e_py '
import errno, socket
for _ in range(50):
    v4 = socket.socket(); v4.bind(("127.0.0.1", 0)); port = v4.getsockname()[1]
    try:
        v6 = socket.socket(socket.AF_INET6); v6.bind(("::1", port)); v6.close()
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            v4.close(); continue
    v4.close(); print(port); break
else:
    raise SystemExit("no port free on both 127.0.0.1 and ::1")
'
}

# start_login ARGS...: `account login --pool main ARGS` in the background
# on a free callback port; waits for the page's address (LOGIN_URL).
# LOGIN_STDIN (default /dev/null) is its standard input.
start_login () {
  local i
  LOGIN_PORT=$(free_port)
  : >"$E2E_TMP/login.out"
  : >"$E2E_TMP/login.err"
  CODEX_POOLER_LOGIN_PORT=$LOGIN_PORT timeout 120 "$POOLER_BIN" account login --pool main --no-browser "$@" \
    >"$E2E_TMP/login.out" 2>"$E2E_TMP/login.err" <"${LOGIN_STDIN:-/dev/null}" &
  LOGIN_PID=$!
  e2e_track "$LOGIN_PID"
  LOGIN_URL=
  for ((i = 0; i < 200; i++)); do
    LOGIN_URL=$(grep -h -m1 -o "$FAKE_AUTH_URL/oauth/authorize?[^[:space:]]*" \
                  "$E2E_TMP/login.out" "$E2E_TMP/login.err" || true)
    [[ -n $LOGIN_URL ]] && break
    e2e_is_running "$LOGIN_PID" || break
    sleep 0.1
  done
  [[ -n $LOGIN_URL ]] || e2e_bail "account login printed no sign-in address: $(cat "$E2E_TMP/login.err")"
}
# finish_login: LOGIN_RC once the command exits (124 if it does not in 30 s).
finish_login () {
  LOGIN_RC=0
  e2e_wait_exit "$LOGIN_PID" 30 || LOGIN_RC=$?
  e2e_untrack "$LOGIN_PID"
}
# browse URL: the page curl ends on (following redirects) in PAGE, its status in PAGE_CODE.
browse () {
  PAGE_CODE=$(curl -sS -L --max-time 30 -o "$E2E_TMP/page.html" -w '%{http_code}' "$1" || true)
  PAGE=$(cat "$E2E_TMP/page.html" 2>/dev/null || true)
}

e2e_pooler pool create main
e2e_pooler key create --pool main --name login
KEY=$(grep -o 'sk-cxp-[A-Za-z0-9_-]*' <<<"$E2E_OUT" | head -1)

# --- refusals before any sign-in --------------------------------------------

e2e_pooler account login
e2e_is "$E2E_RC" 2 "account login without --pool is a usage error"
e2e_pooler account login --pool nope --no-browser
e2e_is "$E2E_RC" 1 "account login to a Pool that does not exist exits 1"
e2e_contains "$E2E_ERR" "no Pool named" "... saying so"
e2e_lacks "$E2E_OUT$E2E_ERR" "oauth/authorize" "... before showing a sign-in page"

# --- a sign-in, while the gateway runs ---------------------------------------

e2e_fake_ctl 'sign_in=acct_login_e2e&sign_in_email=login-e2e@example.com'
e2e_start_serve

start_login --json
e2e_pass "account login printed the page to open"
e2e_contains "$LOGIN_URL" "redirect_uri=http%3A%2F%2Flocalhost%3A$LOGIN_PORT%2Fauth%2Fcallback" \
             "... which sends the browser back to the command's port"
e2e_contains "$LOGIN_URL" "code_challenge_method=S256" "... with a PKCE challenge"
e2e_is "$(count_lines "$E2E_TMP/login.out")" 0 "with --json, the instructions go to stderr"

browse "$LOGIN_URL"
e2e_is "$PAGE_CODE" 200 "the browser ends on the command's page"
e2e_contains "$PAGE" "Signed in" "... which says it is signed in"
e2e_contains "$PAGE" "login-e2e@example.com" "... as whom"

finish_login
e2e_is "$LOGIN_RC" 0 "account login exits 0 once signed in"
LOGIN_JSON=$(cat "$E2E_TMP/login.out")
e2e_is "$(e2e_json_get 'd["chatgpt_account_id"]' <<<"$LOGIN_JSON" 2>/dev/null || true)" acct_login_e2e \
       "... and prints the account as JSON"
e2e_is "$(e2e_json_get 'd["email"]' <<<"$LOGIN_JSON" 2>/dev/null || true)" login-e2e@example.com "... with its email"
e2e_is "$(e2e_json_get 'd["pools"]' <<<"$LOGIN_JSON" 2>/dev/null || true)" '["main"]' "... in Pool main"
ACCOUNT_ID=$(e2e_json_get 'd["id"]' <<<"$LOGIN_JSON" 2>/dev/null || true)

ACCESS=$(curl -fsS --max-time 10 "$FAKE_URL/__tokens?account=acct_login_e2e" | e2e_json_get 'd["access_token"]')
REFRESH=$(curl -fsS --max-time 10 "$FAKE_URL/__tokens?account=acct_login_e2e" | e2e_json_get 'd["refresh_token"]')
e2e_lacks "$(cat "$E2E_TMP/login.out" "$E2E_TMP/login.err")" "$ACCESS" "the command never prints the access token"
e2e_lacks "$(cat "$E2E_TMP/login.out" "$E2E_TMP/login.err")" "$REFRESH" "... or the refresh token"
e2e_lacks "$(sqlite3 "$XDG_DATA_HOME/codex-pooler/pooler.db" .dump)" "$REFRESH" \
          "the database does not hold the refresh token"
e2e_stop_serve
e2e_is "$SERVE_RC" 0 "the gateway ran through the sign-in and stops cleanly"

# The tokens are in the keyring: a gateway serves the account with them.
e2e_start_serve
e2e_responses_body >"$E2E_TMP/req.json"
e2e_http POST "$SERVE_URL/backend-api/codex/responses" -H 'Content-Type: application/json' \
  -H "Authorization: Bearer $KEY" --data-binary "@$E2E_TMP/req.json"
e2e_is "$HTTP_CODE" 200 "the signed-in account serves a request through the gateway"
e2e_contains "$(e2e_fake_requests)" "acct_login_e2e" "... as itself upstream"
e2e_stop_serve

# --- signing in again updates the account in place ----------------------------

start_login
browse "$LOGIN_URL"
e2e_is "$PAGE_CODE" 200 "a second sign-in of the same account completes"
finish_login
e2e_is "$LOGIN_RC" 0 "... and exits 0"
e2e_contains "$(cat "$E2E_TMP/login.out")" "Updated account $ACCOUNT_ID" "... updating the same account"
e2e_pooler account list --json
e2e_is "$(e2e_json_get 'len(d if isinstance(d, list) else d["accounts"])' <<<"$E2E_OUT" 2>/dev/null || true)" 1 "... so the Pool still has one account"

# --- a browser on another machine: the address it ended on, pasted ---------------

mkfifo "$E2E_TMP/paste"
exec 7<>"$E2E_TMP/paste"        # held open: the command sees no end of input
LOGIN_STDIN=$E2E_TMP/paste start_login
# That browser does not follow the redirect to this machine's localhost.
REDIRECT=$(curl -sS --max-time 30 -o /dev/null -w '%{redirect_url}' "$LOGIN_URL" || true)
e2e_contains "$REDIRECT" "http://localhost:$LOGIN_PORT/auth/callback?code=" \
             "the sign-in page sends a far browser to this machine's callback"
printf 'not an address\n' >&7
for ((i = 0; i < 100; i++)); do
  grep -q 'not the address' "$E2E_TMP/login.err" && break
  sleep 0.1
done
e2e_contains "$(cat "$E2E_TMP/login.err")" "not the address the sign-in ends on" \
             "a pasted line that is not the address is refused"
e2e_check "... and the command keeps waiting" e2e_is_running "$LOGIN_PID"
printf '%s\n' "$REDIRECT" >&7
finish_login
exec 7>&-
e2e_is "$LOGIN_RC" 0 "pasting the address it ended on completes the sign-in"
e2e_contains "$(cat "$E2E_TMP/login.out")" "Updated account $ACCOUNT_ID" "... of the same account"

# --- a refused sign-in ----------------------------------------------------------

e2e_fake_ctl 'sign_in_mode=deny'
start_login
browse "$LOGIN_URL"
e2e_is "$PAGE_CODE" 403 "a refused sign-in ends on a page that says so"
finish_login
e2e_is "$LOGIN_RC" 1 "account login exits 1 when the sign-in is refused"
e2e_is "$(count_lines "$E2E_TMP/login.err")" 1 "... with one line on stderr"
e2e_contains "$(cat "$E2E_TMP/login.err")" "no Codex access" "... that says why"
e2e_fake_ctl 'sign_in_mode=ok'

# --- a stray redirect, then Ctrl+C ------------------------------------------------

start_login
browse "http://127.0.0.1:$LOGIN_PORT/auth/callback?code=ac_forged&state=forged"
e2e_is "$PAGE_CODE" 400 "a redirect with another state is refused"
if e2e_is_running "$LOGIN_PID"; then
  e2e_pass "... and the command keeps waiting"
else
  e2e_fail "... and the command keeps waiting" "$(cat "$E2E_TMP/login.err")"
fi
kill -INT "$LOGIN_PID"
finish_login
e2e_is "$LOGIN_RC" 1 "Ctrl+C stops account login with exit 1"
e2e_contains "$(tail -n 1 "$E2E_TMP/login.err")" "cancelled" "... saying the sign-in was cancelled"
if curl -sS --max-time 5 "http://127.0.0.1:$LOGIN_PORT/" >/dev/null 2>&1; then
  e2e_fail "... and nothing listens on its port any more"
else
  e2e_pass "... and nothing listens on its port any more"
fi

e2e_finish
