#!/usr/bin/env bash
# e2e-codex-pool.sh: the real Codex CLI (0.169.0) through a Pool of three
# accounts on the fake upstream: a spent account fails over, a resumed
# conversation stays on its account, a 401 is healed by one token refresh,
# and a spent Pool gives the CLI its usual usage-limit line. Prints TAP.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib-e2e.sh
source "${POOLER_TESTS_DIR:-$HERE}/lib-e2e.sh"

e2e_require_env POOLER_BIN FAKE_UPSTREAM_BIN POOLER_NPM_DIR

CODEX_BIN=$POOLER_NPM_DIR/node_modules/.bin/codex
if [[ ! -x $CODEX_BIN ]]; then
  e2e_bail "$CODEX_BIN is missing: run the test command from the README" \
           "(build-aux/test), which installs @openai/codex@0.169.0 into $POOLER_NPM_DIR"
fi

e2e_setup
e2e_start_fake

e2e_pooler pool create main --strategy fill-first
e2e_is "$E2E_RC" 0 "pool create main --strategy fill-first"

declare -A ID
PRIORITY=0
for NAME in a b c; do
  ACCOUNT=acct_pool_$NAME
  AUTH_JSON=$E2E_TMP/auth-$NAME.json
  e2e_make_auth_json "$AUTH_JSON" "$ACCOUNT" "$NAME@example.com"
  e2e_fake_add_account "$ACCOUNT" "$(e2e_auth_token "$AUTH_JSON" access_token)" \
                       "$(e2e_auth_token "$AUTH_JSON" refresh_token)"
  e2e_pooler account import "$AUTH_JSON" --pool main --label "$NAME" --json
  ((E2E_RC == 0)) || e2e_bail "cannot import account $NAME: $E2E_ERR"
  ID[$NAME]=$(e2e_json_get 'd["id"]' <<<"$E2E_OUT")
  e2e_pooler account set "${ID[$NAME]}" --priority $PRIORITY
  e2e_is "$E2E_RC" 0 "account set ${ID[$NAME]} --priority $PRIORITY"
  PRIORITY=$((PRIORITY + 1))
done

e2e_pooler key create --pool main --name codex
POOL_KEY=$E2E_OUT
[[ $POOL_KEY == sk-cxp-* ]] || e2e_bail "no Pool key: '$POOL_KEY' ($E2E_ERR)"

e2e_start_serve
e2e_pass "serve is ready at $SERVE_URL"

cat >"$CODEX_HOME/config.toml" <<EOF
model = "gpt-5.5"
model_provider = "pooler"
check_for_update_on_startup = false

[analytics]
enabled = false

[model_providers.pooler]
name = "Codex Pooler"
base_url = "$SERVE_URL/backend-api/codex"
wire_api = "responses"
env_key = "CODEX_POOLER_KEY"
supports_websockets = false
EOF

# Runs codex exec with the given arguments; sets CODEX_RC, CODEX_OUT, CODEX_ERR.
run_codex () {
  CODEX_RC=0
  (cd "$E2E_TMP/project" &&
     CODEX_POOLER_KEY=$POOL_KEY timeout 120 "$CODEX_BIN" exec --skip-git-repo-check "$@" \
       </dev/null >"$E2E_TMP/codex.out" 2>"$E2E_TMP/codex.err") || CODEX_RC=$?
  CODEX_OUT=$(cat "$E2E_TMP/codex.out")
  CODEX_ERR=$(cat "$E2E_TMP/codex.err")
}

# The newest request row, as "account attempts first-attempt-error".
last_row () {
  e2e_pooler logs --limit 1 --json
  e2e_py '
import json, sys
rows = json.loads(sys.argv[1])
r = rows[0]
first = r["attempts"][0]["error_code"] if r["attempts"] else None
print(r["account_id"], len(r["attempts"]), first, r["status"])
' "$E2E_OUT"
}

# --- A has spent its quota: the turn succeeds on B, A cools down ----------

e2e_fake_ctl "mode=429at&account=acct_pool_a"
e2e_fake_ctl "text=served-by-b"
run_codex "say hello"
e2e_is "$CODEX_RC" 0 "codex exec succeeds although account a answers 429 usage_limit_reached"
e2e_contains "$CODEX_OUT" "served-by-b" "the answer came from account b"
read -r ACCOUNT ATTEMPTS FIRST_ERROR STATUS <<<"$(last_row)"
e2e_is "$ACCOUNT" "${ID[b]}" "the request row names account b"
e2e_is "$ATTEMPTS $FIRST_ERROR" "2 upstream_429" "two attempts, the first a 429 on account a"

e2e_pooler account list --json
COOLDOWN_OK=$(e2e_py '
import json, sys, datetime
accounts = {a["id"]: a for a in json.loads(sys.argv[1])}
a = accounts[sys.argv[2]]
until = a["cooldown_until"]
if not until:
    print("no cooldown_until on account a")
else:
    t = datetime.datetime.fromisoformat(until.replace("Z", "+00:00")).timestamp()
    left = t - datetime.datetime.now(datetime.timezone.utc).timestamp()
    print("ok" if 1500 < left < 1900 else "cooldown ends in %d s" % left)
' "$E2E_OUT" "${ID[a]}")
e2e_is "$COOLDOWN_OK" ok "account a cools down until its reset (about 30 minutes)"

# --- the conversation stays on its account --------------------------------

# C becomes the first choice for new work; the resumed thread must not move.
e2e_pooler account set "${ID[c]}" --priority -1
# The running serve applies it at /readyz (otherwise within its 2 s check,
# which the resumed run below may outpace: then c was not yet first).
e2e_http GET "$SERVE_URL/readyz"
e2e_is "$HTTP_CODE" 200 "GET /readyz applies the new priority"
e2e_fake_ctl "text=resumed-on-b"
run_codex resume --last "say hello again"
e2e_is "$CODEX_RC" 0 "codex exec resume --last succeeds"
e2e_contains "$CODEX_OUT" "resumed-on-b" "the resumed turn got its answer"
read -r ACCOUNT ATTEMPTS FIRST_ERROR STATUS <<<"$(last_row)"
e2e_is "$ACCOUNT" "${ID[b]}" "the resumed conversation stays on account b (c is first for new work)"

# --- C answers 401: one refresh, then success -----------------------------

e2e_fake_ctl "invalidate=acct_pool_c"
e2e_fake_ctl "text=after-refresh"
run_codex "a new conversation"
e2e_is "$CODEX_RC" 0 "codex exec succeeds although account c's token was revoked"
e2e_contains "$CODEX_OUT" "after-refresh" "the answer came through"
read -r ACCOUNT ATTEMPTS FIRST_ERROR STATUS <<<"$(last_row)"
e2e_is "$ACCOUNT $ATTEMPTS $FIRST_ERROR" "${ID[c]} 2 upstream_401" \
       "served by account c after a 401 and one retry"
REFRESHES=$(e2e_fake_stats | e2e_json_get 'd["refreshes"].get("acct_pool_c", 0)')
e2e_is "$REFRESHES" 1 "exactly one token refresh for account c"

# --- every account spent: the CLI's own usage-limit line --------------------

e2e_fake_ctl "mode=429at"
run_codex "one more"
e2e_is "$CODEX_RC" 1 "codex exec fails when the whole Pool is spent"
e2e_contains "$CODEX_ERR" "usage limit" "codex prints its usage-limit message"
e2e_contains "$CODEX_ERR" "try again at" "with the time the Pool comes back"

e2e_stop_serve
e2e_finish
