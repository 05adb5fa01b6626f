#!/usr/bin/env bash
# e2e-sdk.sh: the real openai npm SDK (6.49.0) against codex-pooler's /v1
# surface, through a Pool of one account on the fake upstream. The checks
# themselves are in e2e-sdk.mjs; this script sets up and prints TAP.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib-e2e.sh
source "${POOLER_TESTS_DIR:-$HERE}/lib-e2e.sh"

e2e_require_env POOLER_BIN FAKE_UPSTREAM_BIN POOLER_NPM_DIR

if [[ ! -f $POOLER_NPM_DIR/node_modules/openai/index.mjs ]]; then
  e2e_bail "$POOLER_NPM_DIR/node_modules/openai is missing: run the test command from the README" \
           "(build-aux/test), which installs openai@6.49.0 into $POOLER_NPM_DIR"
fi
# The pinned Node 22 (build-aux/test installs it) rather than whatever the
# system has: Debian 12's own nodejs is 18.
NODE_BIN=$POOLER_NPM_DIR/node_modules/node/bin/node
[[ -x $NODE_BIN ]] || NODE_BIN=$(command -v node) || e2e_bail "node is not installed"

e2e_setup
e2e_start_fake

ACCOUNT=acct_e2e_sdk
AUTH_JSON=$E2E_TMP/auth-$ACCOUNT.json
e2e_make_auth_json "$AUTH_JSON" "$ACCOUNT" sdk@example.com
e2e_fake_add_account "$ACCOUNT" "$(e2e_auth_token "$AUTH_JSON" access_token)" \
                     "$(e2e_auth_token "$AUTH_JSON" refresh_token)"

e2e_pooler pool create main
e2e_is "$E2E_RC" 0 "pool create main"
e2e_pooler account import "$AUTH_JSON" --pool main --json
e2e_is "$E2E_RC" 0 "account import $ACCOUNT"
((E2E_RC == 0)) || e2e_bail "cannot go on without the account: $E2E_ERR"
e2e_pooler key create --pool main --name sdk
POOL_KEY=$E2E_OUT
[[ $POOL_KEY == sk-cxp-* ]] || e2e_bail "no Pool key: '$POOL_KEY' ($E2E_ERR)"

e2e_start_serve
e2e_pass "serve is ready at $SERVE_URL"

MARKER="sdk-hello-$RANDOM$RANDOM$RANDOM"
NODE_RC=0
POOLER_NPM_DIR=$POOLER_NPM_DIR SERVE_URL=$SERVE_URL FAKE_URL=$FAKE_URL POOL_KEY=$POOL_KEY MARKER=$MARKER \
  timeout 120 "$NODE_BIN" "${POOLER_TESTS_DIR:-$HERE}/e2e-sdk.mjs" \
  >"$E2E_TMP/sdk.out" 2>"$E2E_TMP/sdk.err" </dev/null || NODE_RC=$?

PASSES=0
while IFS= read -r line; do
  case $line in
    PASS\ *) e2e_pass "${line#PASS }"; PASSES=$((PASSES + 1)) ;;
    FAIL\ *)
      desc=${line#FAIL }
      e2e_fail "${desc%% :: *}" "${desc#* :: }"
      ;;
  esac
done <"$E2E_TMP/sdk.out"

if ((NODE_RC == 0)); then
  e2e_pass "the SDK script ran to its end"
else
  e2e_fail "the SDK script ran to its end" "exit status $NODE_RC" "$(tail -n 20 "$E2E_TMP/sdk.err")"
fi
# A script that stopped early must not pass by saying little.
((PASSES >= 20)) || e2e_fail "the SDK script made all its checks" "only $PASSES passed"

# --- what the upstream saw --------------------------------------------------

e2e_fake_requests >"$E2E_TMP/requests.json"
LEAKS=$(e2e_py '
import json, sys
reqs = json.load(open(sys.argv[1]))
key = sys.argv[2]
bad = [r["path"] for r in reqs if not r["path"].startswith("/backend-api/codex/responses")]
bad += ["%s carries the Pool key" % r["path"] for r in reqs for n, v in r["headers"] if key in v]
print("\n".join(bad))
' "$E2E_TMP/requests.json" "$POOL_KEY")
if [[ -z $LEAKS ]]; then
  e2e_pass "the upstream saw only /codex/responses requests, none with the Pool key"
else
  e2e_fail "the upstream saw only /codex/responses requests, none with the Pool key" "$LEAKS"
fi

e2e_stop_serve
e2e_is "$SERVE_RC" 0 "serve exits 0 on SIGTERM"

e2e_finish
