#!/usr/bin/env bash
# e2e-cli.sh: the codex-pooler command line on its own, then `serve` probed
# with curl against the fake upstream. No Codex CLI needed. Prints TAP.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib-e2e.sh
source "${POOLER_TESTS_DIR:-$HERE}/lib-e2e.sh"

e2e_require_env POOLER_BIN FAKE_UPSTREAM_BIN
e2e_setup
e2e_start_fake

count_lines () {
  if [[ -z $1 ]]; then echo 0; else printf '%s\n' "$1" | wc -l; fi
}

# --- pools ------------------------------------------------------------------

e2e_pooler pool create main
e2e_is "$E2E_RC" 0 "pool create main exits 0"

e2e_pooler pool list
e2e_is "$E2E_RC" 0 "pool list exits 0"
e2e_contains "$E2E_OUT" main "pool list shows main"

e2e_pooler pool list --json
e2e_is "$E2E_RC" 0 "pool list --json exits 0"
if printf '%s' "$E2E_OUT" | e2e_py '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if any("main" in (p.get("slug"), p.get("name")) for p in d) else 1)'; then
  e2e_pass "pool list --json has main"
else
  e2e_fail "pool list --json has main" "$E2E_OUT"
fi

e2e_pooler pool create main
e2e_is "$E2E_RC" 1 "duplicate pool create exits 1"
e2e_is "$(count_lines "$E2E_ERR")" 1 "duplicate pool create prints one stderr line"

# --- usage errors -----------------------------------------------------------

e2e_pooler pool create
e2e_is "$E2E_RC" 2 "pool create without NAME is a usage error (2)"

e2e_pooler pool list --no-such-option
e2e_is "$E2E_RC" 2 "an unknown option is a usage error (2)"

# --- keys -------------------------------------------------------------------

key_re='^sk-cxp-[0-9a-f]{12}-[A-Za-z0-9_-]{43}$'

e2e_pooler key create --pool main --name good
e2e_is "$E2E_RC" 0 "key create exits 0"
GOOD_KEY=$E2E_OUT
if [[ $GOOD_KEY =~ $key_re ]]; then
  e2e_pass "key create prints only a well-formed key"
else
  e2e_fail "key create prints only a well-formed key" "stdout: $GOOD_KEY"
fi

e2e_pooler key create --pool main --name doomed
e2e_is "$E2E_RC" 0 "second key create exits 0"
DOOMED_KEY=$E2E_OUT
[[ $DOOMED_KEY =~ $key_re ]] || e2e_bail "no usable key: '$DOOMED_KEY'"
[[ $GOOD_KEY =~ $key_re ]] || e2e_bail "no usable key: '$GOOD_KEY'"

GOOD_ID=${GOOD_KEY:7:12}
GOOD_SECRET=${GOOD_KEY:20}
DOOMED_ID=${DOOMED_KEY:7:12}
DOOMED_SECRET=${DOOMED_KEY:20}

e2e_pooler key create --pool no-such-pool
e2e_is "$E2E_RC" 1 "key create for an unknown pool exits 1"

e2e_pooler key list --json
e2e_is "$E2E_RC" 0 "key list --json exits 0"
KEY_LIST=$E2E_OUT
e2e_contains "$KEY_LIST" "$GOOD_ID" "key list --json shows the key's prefix"
e2e_lacks "$KEY_LIST" "$GOOD_SECRET" "key list --json never shows the secret"
e2e_lacks "$KEY_LIST" "$DOOMED_SECRET" "key list --json never shows the other secret"

# The prefix as key list names it (field "prefix"), else sk-cxp-<id>.
DOOMED_PREFIX=$(printf '%s' "$KEY_LIST" | e2e_py '
import json, sys
ident = sys.argv[1]
for k in json.load(sys.stdin):
    if ident in json.dumps(k):
        print(k.get("prefix") or "sk-cxp-" + ident)
        break
else:
    print("sk-cxp-" + ident)' "$DOOMED_ID" 2>/dev/null || echo "sk-cxp-$DOOMED_ID")

e2e_pooler key revoke "$DOOMED_PREFIX"
e2e_is "$E2E_RC" 0 "key revoke $DOOMED_PREFIX exits 0"

# --- accounts ---------------------------------------------------------------

e2e_make_auth_json "$E2E_TMP/acct1.json" acct_cli_1 cli1@example.com
e2e_pooler account import "$E2E_TMP/acct1.json" --pool main --label first --json
e2e_is "$E2E_RC" 0 "account import exits 0"
IMPORT1=$E2E_OUT
e2e_is "$(printf '%s' "$IMPORT1" | e2e_json_get 'd["chatgpt_account_id"]' 2>/dev/null || true)" \
       acct_cli_1 "account import --json names the chatgpt account"
e2e_is "$(printf '%s' "$IMPORT1" | e2e_json_get 'd["email"]' 2>/dev/null || true)" \
       cli1@example.com "account import --json names the email"
ACCOUNT_ID=$(printf '%s' "$IMPORT1" | e2e_json_get 'd["id"]' 2>/dev/null || true)
if [[ -n $ACCOUNT_ID && $ACCOUNT_ID != null ]]; then
  e2e_pass "account import --json gives an id"
else
  e2e_fail "account import --json gives an id" "$IMPORT1"
fi

# The same account again, with fresh tokens (as after a Codex re-login).
e2e_make_auth_json "$E2E_TMP/acct1b.json" acct_cli_1 cli1@example.com
e2e_pooler account import "$E2E_TMP/acct1b.json" --pool main --json
e2e_is "$E2E_RC" 0 "importing the same account again exits 0"
e2e_is "$(printf '%s' "$E2E_OUT" | e2e_json_get 'd["id"]' 2>/dev/null || true)" \
       "$ACCOUNT_ID" "re-import updates the account in place (same id)"

e2e_pooler account list --json
e2e_is "$E2E_RC" 0 "account list --json exits 0"
e2e_is "$(printf '%s' "$E2E_OUT" | e2e_json_get 'len(d if isinstance(d, list) else d["accounts"])' 2>/dev/null || true)" \
       1 "account list --json shows one account"

e2e_make_apikey_auth_json "$E2E_TMP/apikey.json"
e2e_pooler account import "$E2E_TMP/apikey.json" --pool main
e2e_is "$E2E_RC" 1 "importing an API-key auth.json exits 1"
e2e_is "$(count_lines "$E2E_ERR")" 1 "... with one line on stderr"
e2e_lacks "$E2E_ERR" "sk-test-e2e-apikey" "... that does not echo the API key"

e2e_make_auth_json "$E2E_TMP/expired.json" acct_cli_old old@example.com -3600
e2e_pooler account import "$E2E_TMP/expired.json" --pool main
e2e_is "$E2E_RC" 1 "importing an expired auth.json exits 1"
e2e_is "$(count_lines "$E2E_ERR")" 1 "... with one line on stderr"

# --- the gateway ------------------------------------------------------------

# The fake knows the account's current tokens (the re-imported ones).
e2e_fake_add_account acct_cli_1 \
  "$(e2e_auth_token "$E2E_TMP/acct1b.json" access_token)" \
  "$(e2e_auth_token "$E2E_TMP/acct1b.json" refresh_token)"
MARKER="cli-marker-$RANDOM$RANDOM"
e2e_fake_ctl "text=$MARKER"

e2e_start_serve
e2e_pass "serve printed its ready line ($SERVE_URL)"

e2e_http GET "$SERVE_URL/healthz"
e2e_is "$HTTP_CODE" 200 "GET /healthz is 200"
e2e_http GET "$SERVE_URL/readyz"
e2e_is "$HTTP_CODE" 200 "GET /readyz is 200"

e2e_responses_body >"$E2E_TMP/req.json"
RESPONSES=$SERVE_URL/backend-api/codex/responses

e2e_http POST "$RESPONSES" -H 'Content-Type: application/json' --data-binary "@$E2E_TMP/req.json"
e2e_is "$HTTP_CODE" 401 "POST responses without a key is 401"
e2e_check "... with a JSON error object" e2e_body_is_error_json

e2e_http POST "$RESPONSES" -H 'Content-Type: application/json' \
  -H "Authorization: Bearer $DOOMED_KEY" --data-binary "@$E2E_TMP/req.json"
e2e_is "$HTTP_CODE" 401 "POST responses with the revoked key is 401"
e2e_check "... with a JSON error object" e2e_body_is_error_json

e2e_http POST "$RESPONSES" -H 'Content-Type: application/json' \
  -H "Authorization: Bearer $GOOD_KEY" --data-binary "@$E2E_TMP/req.json"
e2e_is "$HTTP_CODE" 200 "POST responses with a good key is 200"
e2e_contains "$HTTP_CTYPE" text/event-stream "... as text/event-stream"
e2e_contains "$HTTP_BODY" "event: response.completed" "... ending in response.completed"
e2e_contains "$HTTP_BODY" "$MARKER" "... carrying the upstream's text"

e2e_http GET "$RESPONSES" -H "Authorization: Bearer $GOOD_KEY" \
  -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
  -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='
e2e_is "$HTTP_CODE" 426 "a websocket upgrade on responses is 426"

e2e_http GET "$SERVE_URL/no/such/route" -H "Authorization: Bearer $GOOD_KEY"
e2e_is "$HTTP_CODE" 404 "an unknown route is 404"
e2e_check "... with a JSON error object" e2e_body_is_error_json

# The Pool key never went upstream.
REQUESTS=$(e2e_fake_requests)
e2e_lacks "$REQUESTS" "$GOOD_SECRET" "the fake upstream never saw the Pool key"

e2e_stop_serve
e2e_is "$SERVE_RC" 0 "serve exits 0 within 5 s of SIGTERM"

# --- pool settings ---------------------------------------------------------------

e2e_pooler pool set main --ring-size 2
e2e_is "$E2E_RC" 0 "pool set main --ring-size 2"
e2e_pooler pool list --json
e2e_is "$(e2e_json_get '[p["ring_size"] for p in d if p["slug"] == "main"][0]' <<<"$E2E_OUT")" 2 \
       "pool list --json shows the ring size"
e2e_pooler pool set main --ring-size 11
e2e_is "$E2E_RC" 1 "a ring size over 10 is refused"
e2e_pooler pool set main
e2e_is "$E2E_RC" 2 "pool set with nothing to set is a usage error"

# --- no Secret Service: one clear line, nothing half-written ----------------

e2e_make_auth_json "$E2E_TMP/novault.json" acct_cli_novault novault@example.com
ACCOUNTS_BEFORE=$(sqlite3 "$XDG_DATA_HOME/codex-pooler/pooler.db" 'SELECT count(*) FROM accounts;')

# No session bus at all.
E2E_RC=0
DBUS_SESSION_BUS_ADDRESS=unix:path=$E2E_TMP/no-such-bus timeout 30 "$POOLER_BIN" serve --port 0 \
  >"$E2E_TMP/nv.out" 2>"$E2E_TMP/nv.err" </dev/null || E2E_RC=$?
e2e_is "$E2E_RC" 1 "serve without a session bus exits 1"
e2e_is "$(wc -l <"$E2E_TMP/nv.err" | tr -d ' ')" 1 "with one line on stderr"
e2e_contains "$(cat "$E2E_TMP/nv.err")" "gnome-keyring-daemon" "that says how to start a Secret Service"

E2E_RC=0
DBUS_SESSION_BUS_ADDRESS=unix:path=$E2E_TMP/no-such-bus timeout 30 "$POOLER_BIN" account import \
  "$E2E_TMP/novault.json" --pool main >"$E2E_TMP/nv.out" 2>"$E2E_TMP/nv.err" </dev/null || E2E_RC=$?
e2e_is "$E2E_RC" 1 "account import without a session bus exits 1"
e2e_is "$(wc -l <"$E2E_TMP/nv.err" | tr -d ' ')" 1 "with one line on stderr"

# A session bus on which no Secret Service answers.
cat >"$E2E_TMP/bus.conf" <<'CONF'
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
</busconfig>
CONF
BUS_ADDRESS=$(dbus-daemon --config-file="$E2E_TMP/bus.conf" --print-address --fork --print-pid=3 3>"$E2E_TMP/bus.pid")
e2e_track "$(cat "$E2E_TMP/bus.pid")"
E2E_RC=0
DBUS_SESSION_BUS_ADDRESS=$BUS_ADDRESS timeout 60 "$POOLER_BIN" account import \
  "$E2E_TMP/novault.json" --pool main >"$E2E_TMP/nv.out" 2>"$E2E_TMP/nv.err" </dev/null || E2E_RC=$?
e2e_is "$E2E_RC" 1 "account import with no Secret Service on the bus exits 1"
e2e_contains "$(cat "$E2E_TMP/nv.err")" "Secret Service" "and names what is missing"
kill "$(cat "$E2E_TMP/bus.pid")" 2>/dev/null || true

ACCOUNTS_AFTER=$(sqlite3 "$XDG_DATA_HOME/codex-pooler/pooler.db" 'SELECT count(*) FROM accounts;')
e2e_is "$ACCOUNTS_AFTER" "$ACCOUNTS_BEFORE" "no account row was written"

e2e_finish
