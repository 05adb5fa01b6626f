#!/usr/bin/env bash
# e2e-crash.sh: kill -9 of `codex-pooler serve` while 100 streams are in
# flight leaves a valid database, every completed request's row, every
# account and its tokens; the next start marks the interrupted requests and
# serves again. Prints TAP.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib-e2e.sh
source "${POOLER_TESTS_DIR:-$HERE}/lib-e2e.sh"

e2e_require_env POOLER_BIN FAKE_UPSTREAM_BIN

e2e_setup
e2e_start_fake

AUTH_JSON=$E2E_TMP/auth.json
e2e_make_auth_json "$AUTH_JSON" acct_crash crash@example.com
e2e_fake_add_account acct_crash "$(e2e_auth_token "$AUTH_JSON" access_token)" \
                     "$(e2e_auth_token "$AUTH_JSON" refresh_token)"
e2e_pooler pool create main
e2e_pooler account import "$AUTH_JSON" --pool main
e2e_is "$E2E_RC" 0 "account imported"
e2e_pooler key create --pool main
KEY=$E2E_OUT
DB=$XDG_DATA_HOME/codex-pooler/pooler.db

e2e_start_serve
e2e_responses_body >"$E2E_TMP/body.json"

post () {
  curl -sS --max-time 60 -N -o "$1" -X POST -H "Authorization: Bearer $KEY" \
       -H 'Content-Type: application/json' --data-binary "@$E2E_TMP/body.json" \
       "$SERVE_URL/backend-api/codex/responses"
}

# Twenty requests that complete before the crash.
COMPLETED=0
for ((i = 0; i < 20; i++)); do
  post "$E2E_TMP/done.$i" && grep -q 'response.completed' "$E2E_TMP/done.$i" && COMPLETED=$((COMPLETED + 1))
done
e2e_is "$COMPLETED" 20 "20 requests completed before the crash"
sleep 1   # the writer thread commits in the background

# A hundred long streams in flight.
e2e_fake_ctl "mode=slow&gap_ms=400"
e2e_fake_ctl "reset=1" && e2e_fake_ctl "mode=slow&gap_ms=400"
CURLS=()
for ((i = 0; i < 100; i++)); do
  post "$E2E_TMP/flight.$i" 2>/dev/null &
  CURLS+=($!)
done
for ((i = 0; i < 100; i++)); do
  SEEN=$(e2e_fake_stats | e2e_json_get 'd["requests"]' || echo 0)
  ((SEEN >= 100)) && break
  sleep 0.1
done
e2e_is "$SEEN" 100 "100 streams reached the upstream"
sleep 0.3

kill -KILL "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null || true
e2e_untrack "$SERVE_PID"
SERVE_PID=
for pid in "${CURLS[@]}"; do wait "$pid" 2>/dev/null || true; done
e2e_pass "serve was killed with SIGKILL mid-stream"

# --- the database survived ---------------------------------------------------

INTEGRITY=$(sqlite3 "$DB" 'PRAGMA integrity_check;' 2>&1)
e2e_is "$INTEGRITY" ok "PRAGMA integrity_check is ok"
DONE_ROWS=$(sqlite3 "$DB" "SELECT count(*) FROM requests WHERE state = 'completed' AND status = 200;")
e2e_check "every completed request's row is there ($DONE_ROWS >= 20)" test "$DONE_ROWS" -ge 20
IN_FLIGHT=$(sqlite3 "$DB" "SELECT count(*) FROM requests WHERE state = 'in_flight';")
e2e_check "the requests in flight at the crash were recorded as such ($IN_FLIGHT)" test "$IN_FLIGHT" -ge 1

e2e_pooler account list --json
ACCOUNTS=$(e2e_json_get 'len(d)' <<<"$E2E_OUT")
e2e_is "$ACCOUNTS" 1 "the account is still there"

# --- the next start recovers -------------------------------------------------

e2e_fake_ctl "reset=1"
e2e_start_serve
e2e_contains "$(cat "$E2E_TMP/serve.err" "$E2E_TMP/serve.out")" "marked as interrupted" \
             "the next start reports the interrupted requests"
LEFT=$(sqlite3 "$DB" "SELECT count(*) FROM requests WHERE state = 'in_flight';")
MARKED=$(sqlite3 "$DB" "SELECT count(*) FROM requests WHERE state = 'interrupted' AND error_code = 'interrupted';")
e2e_is "$LEFT" 0 "no request is left in flight"
e2e_is "$MARKED" "$IN_FLIGHT" "all of them are marked interrupted"

post "$E2E_TMP/after"
e2e_contains "$(cat "$E2E_TMP/after")" "response.completed" \
             "the account's tokens are intact: a request succeeds after the restart"

e2e_stop_serve
e2e_finish
