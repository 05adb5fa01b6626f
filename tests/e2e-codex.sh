#!/usr/bin/env bash
# e2e-codex.sh: the real Codex CLI (0.169.0) through a Pool of one account,
# against the fake upstream. Prints TAP.
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

ACCOUNT=acct_e2e_1
AUTH_JSON=$E2E_TMP/auth-$ACCOUNT.json
e2e_make_auth_json "$AUTH_JSON" "$ACCOUNT" e2e1@example.com
ACCESS_TOKEN=$(e2e_auth_token "$AUTH_JSON" access_token)
REFRESH_TOKEN=$(e2e_auth_token "$AUTH_JSON" refresh_token)
ID_TOKEN=$(e2e_auth_token "$AUTH_JSON" id_token)
e2e_fake_add_account "$ACCOUNT" "$ACCESS_TOKEN" "$REFRESH_TOKEN"

e2e_pooler pool create main
e2e_is "$E2E_RC" 0 "pool create main"
e2e_pooler account import "$AUTH_JSON" --pool main --json
e2e_is "$E2E_RC" 0 "account import $ACCOUNT"
((E2E_RC == 0)) || e2e_bail "cannot go on without the account: $E2E_ERR"
e2e_pooler key create --pool main --name codex
e2e_is "$E2E_RC" 0 "key create"
POOL_KEY=$E2E_OUT
[[ $POOL_KEY == sk-cxp-* ]] || e2e_bail "no Pool key: '$POOL_KEY' ($E2E_ERR)"
POOL_SECRET=${POOL_KEY:20}
[[ -n $POOL_SECRET ]] || POOL_SECRET=$POOL_KEY

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

MARKER="pooled-hello-$RANDOM$RANDOM$RANDOM"
e2e_fake_ctl "text=$MARKER"

# --- one turn ---------------------------------------------------------------

CODEX_RC=0
(cd "$E2E_TMP/project" &&
   CODEX_POOLER_KEY=$POOL_KEY timeout 120 "$CODEX_BIN" exec --skip-git-repo-check "say hello" \
     </dev/null >"$E2E_TMP/codex.out" 2>"$E2E_TMP/codex.err") || CODEX_RC=$?
CODEX_OUT=$(cat "$E2E_TMP/codex.out")
if ((CODEX_RC == 0)); then
  e2e_pass "codex exec exits 0"
else
  e2e_fail "codex exec exits 0" "exit status $CODEX_RC" "stdout: $CODEX_OUT" \
           "stderr: $(tail -n 20 "$E2E_TMP/codex.err")"
fi
e2e_contains "$CODEX_OUT" "$MARKER" "codex prints the answer that came through the Pool"

# --- what the upstream saw --------------------------------------------------

e2e_fake_requests >"$E2E_TMP/requests.json"
UPSTREAM_CHECK=$(e2e_py '
import json, sys
reqs = json.load(open(sys.argv[1]))
access, account = sys.argv[2], sys.argv[3]
posts = [r for r in reqs
         if r["method"] == "POST" and r["path"] == "/backend-api/codex/responses"]
if not posts:
    print("no POST /backend-api/codex/responses upstream; saw: %s"
          % [(r["method"], r["path"]) for r in reqs])
    sys.exit(0)
for r in posts:
    h = {n.lower(): v for n, v in r["headers"]}
    if h.get("authorization") == "Bearer " + access and h.get("chatgpt-account-id") == account:
        print("ok")
        break
else:
    h = {n.lower(): v for n, v in posts[-1]["headers"]}
    print("last POST had authorization %r..., chatgpt-account-id %r"
          % (h.get("authorization", "")[:16], h.get("chatgpt-account-id")))
' "$E2E_TMP/requests.json" "$ACCESS_TOKEN" "$ACCOUNT")
if [[ $UPSTREAM_CHECK == ok ]]; then
  e2e_pass "upstream got the account's bearer token and chatgpt-account-id $ACCOUNT"
else
  e2e_fail "upstream got the account's bearer token and chatgpt-account-id $ACCOUNT" "$UPSTREAM_CHECK"
fi

LEAKS=$(e2e_py '
import json, sys
reqs = json.load(open(sys.argv[1]))
needles = sys.argv[2:]
for r in reqs:
    for n, v in r["headers"]:
        if any(x in v for x in needles):
            print("%s %s: header %s" % (r["method"], r["path"], n))
' "$E2E_TMP/requests.json" "$POOL_KEY" "$POOL_SECRET")
if [[ -z $LEAKS ]]; then
  e2e_pass "no upstream header carries the Pool key"
else
  e2e_fail "no upstream header carries the Pool key" "$LEAKS"
fi

# --- the request log --------------------------------------------------------

log_row_ok () {
  e2e_pooler logs --limit 20 --json
  ((E2E_RC == 0)) || return 1
  printf '%s' "$E2E_OUT" | e2e_py '
import json, sys
rows = json.load(sys.stdin)
sys.exit(0 if any(r.get("status") == 200 and r.get("account_id") not in (None, "")
                  and r.get("input_tokens") == 42 and r.get("output_tokens") == 1
                  for r in rows) else 1)' 2>/dev/null
}

# Rows go through a writer thread: give it a moment.
LOG_OK=0
for ((i = 0; i < 50; i++)); do
  if log_row_ok; then LOG_OK=1; break; fi
  sleep 0.2
done

e2e_stop_serve
e2e_is "$SERVE_RC" 0 "serve exits 0 on SIGTERM"

if ((LOG_OK == 0)) && log_row_ok; then
  LOG_OK=1
fi
if ((LOG_OK == 1)); then
  e2e_pass "logs --json has the request: status 200, account set, 42 in / 1 out tokens"
else
  e2e_fail "logs --json has the request: status 200, account set, 42 in / 1 out tokens" \
           "logs rc=$E2E_RC: $E2E_OUT" "$E2E_ERR"
fi

# --- no secret at rest ------------------------------------------------------

DB_DIR=$XDG_DATA_HOME/codex-pooler
if [[ -f $DB_DIR/pooler.db ]]; then
  e2e_pass "the database is at \$XDG_DATA_HOME/codex-pooler/pooler.db"
else
  e2e_fail "the database is at \$XDG_DATA_HOME/codex-pooler/pooler.db" "$(ls -la "$DB_DIR" 2>&1)"
fi
for name in access_token refresh_token id_token pool_key pool_secret; do
  case $name in
    access_token) needle=$ACCESS_TOKEN ;;
    refresh_token) needle=$REFRESH_TOKEN ;;
    id_token) needle=$ID_TOKEN ;;
    pool_key) needle=$POOL_KEY ;;
    pool_secret) needle=$POOL_SECRET ;;
  esac
  found=
  for file in "$DB_DIR/pooler.db" "$DB_DIR/pooler.db-wal" "$DB_DIR/pooler.db-shm"; do
    n=$(e2e_count_in_file "$file" "$needle")
    if [[ $n != 0 ]]; then
      found+="${file##*/}: $n "
    fi
  done
  if [[ -z $found ]]; then
    e2e_pass "the $name is nowhere in pooler.db, -wal or -shm"
  else
    e2e_fail "the $name is nowhere in pooler.db, -wal or -shm" "$found"
  fi
done

e2e_finish
