#!/usr/bin/env bash
# e2e-secrets.sh: known marker strings pushed through every path (prompt
# text, cookies, keys right and wrong, account tokens old and rotated,
# errors, refreshes, MCP) must appear in no file and no output: the
# database, serve's logs with G_MESSAGES_DEBUG=all, the CLI's listings and
# the MCP tools. Prints TAP.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib-e2e.sh
source "${POOLER_TESTS_DIR:-$HERE}/lib-e2e.sh"

e2e_require_env POOLER_BIN FAKE_UPSTREAM_BIN

e2e_setup
e2e_start_fake

MARK=SECRETMARK$RANDOM$RANDOM
AUTH_JSON=$E2E_TMP/auth.json
e2e_make_auth_json "$AUTH_JSON" acct_secret secret@example.com
ACCESS=$(e2e_auth_token "$AUTH_JSON" access_token)
ID_TOKEN=$(e2e_auth_token "$AUTH_JSON" id_token)
# The refresh token is ours to choose: give it a marker.
REFRESH=rt_${MARK}_refresh
e2e_py '
import json, sys
d = json.load(open(sys.argv[1]))
d["tokens"]["refresh_token"] = sys.argv[2]
json.dump(d, open(sys.argv[1], "w"))
' "$AUTH_JSON" "$REFRESH"
e2e_fake_add_account acct_secret "$ACCESS" "$REFRESH"

export G_MESSAGES_DEBUG=all
e2e_pooler pool create main
e2e_pooler account import "$AUTH_JSON" --pool main
e2e_is "$E2E_RC" 0 "account imported"
e2e_pooler key create --pool main --name "key-$MARK"
KEY=$E2E_OUT
# "sk-cxp-" + 12 hex + "-": the secret (base64url, "-" included) follows.
KEY_SECRET=${KEY:20}

e2e_start_serve

PROMPT="prompt-$MARK-please-do-not-store"
BODY=$(e2e_responses_body | sed "s/say hello/$PROMPT/")
printf '%s' "$BODY" >"$E2E_TMP/body.json"

post () {
  curl -sS --max-time 30 -N -o "$E2E_TMP/post.out" -w '%{http_code}' -X POST \
       -H 'Content-Type: application/json' -H "Cookie: session=cookie-$MARK" \
       "$@" --data-binary "@$E2E_TMP/body.json" "$SERVE_URL/backend-api/codex/responses"
}

CODE=$(post -H "Authorization: Bearer $KEY")
e2e_is "$CODE" 200 "a normal request"
CODE=$(post -H "Authorization: Bearer sk-cxp-000000000000-${MARK}wrongkeywrongkeywrongkeywrongk")
e2e_is "$CODE" 401 "a wrong key"
CODE=$(post -H "Authorization: Bearer not-a-key-$MARK")
e2e_is "$CODE" 401 "a malformed key"
e2e_fake_ctl "mode=500&times=1"
CODE=$(post -H "Authorization: Bearer $KEY")
e2e_is "$CODE" 500 "an upstream error"
# A revoked access token: the gateway refreshes and rotates the pair.
e2e_fake_ctl "invalidate=acct_secret"
CODE=$(post -H "Authorization: Bearer $KEY")
e2e_is "$CODE" 200 "a request after a token refresh"
REFRESHES=$(e2e_fake_stats | e2e_json_get 'd["refreshes"].get("acct_secret", 0)')
e2e_is "$REFRESHES" 1 "the refresh happened"
CODE=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" "$SERVE_URL/backend-api/wham/usage")
e2e_is "$CODE" 200 "wham/usage"

# The operator MCP endpoint, when it is built: call every tool.
MCP_OUT=
e2e_pooler mcp-token create --name "mcp-$MARK"
if ((E2E_RC == 0)) && [[ $E2E_OUT == mcp-cxp-* ]]; then
  MCP_TOKEN=$E2E_OUT
  mcp () {
    curl -sS --max-time 10 -X POST -H "Authorization: Bearer $MCP_TOKEN" \
         -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
         -H 'MCP-Protocol-Version: 2025-11-25' --data-binary "$1" "$SERVE_URL/mcp"
  }
  mcp '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"e2e","version":"0"}}}' >/dev/null
  TOOLS=$(mcp '{"jsonrpc":"2.0","id":2,"method":"tools/list"}' |
          e2e_json_get '" ".join(t["name"] for t in d["result"]["tools"])')
  for TOOL in $TOOLS; do
    ARGS='{}'
    case $TOOL in
      get_pool|explain_routing) ARGS='{"pool":"main"}' ;;
      get_account) ARGS="{\"id\":\"$(e2e_pooler account list --json; e2e_json_get 'd[0]["id"]' <<<"$E2E_OUT")\"}" ;;
      get_request) ARGS="{\"id\":\"$(sqlite3 "$XDG_DATA_HOME/codex-pooler/pooler.db" 'SELECT id FROM requests LIMIT 1;')\"}" ;;
    esac
    MCP_OUT+=$(mcp "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"$TOOL\",\"arguments\":$ARGS}}")
  done
  e2e_pass "called every MCP tool ($(wc -w <<<"$TOOLS") tools)"
else
  e2e_pass "# SKIP no mcp-token command yet"
fi

e2e_stop_serve

# The rotated pair, as the fake issued it: it must not leak either.
ROTATED=$(curl -fsS --max-time 10 "$FAKE_URL/__tokens?account=acct_secret")
ROTATED_ACCESS=$(e2e_json_get 'd["access_token"]' <<<"$ROTATED")
ROTATED_REFRESH=$(e2e_json_get 'd["refresh_token"]' <<<"$ROTATED")
e2e_check "the fake rotated the pair" test "$ROTATED_REFRESH" != "$REFRESH"

# --- look everywhere -------------------------------------------------------------

e2e_pooler logs --json
LOGS=$E2E_OUT
e2e_pooler status --json
STATUS=$E2E_OUT
e2e_pooler key list --json
KEYS=$E2E_OUT
e2e_pooler account list --json
ACCOUNTS=$E2E_OUT

cat "$E2E_TMP/serve.out" "$E2E_TMP/serve.err" >"$E2E_TMP/all-logs"
printf '%s\n%s\n%s\n%s\n%s\n' "$LOGS" "$STATUS" "$KEYS" "$ACCOUNTS" "$MCP_OUT" >"$E2E_TMP/all-outputs"

check_absent () {
  local what=$1 needle=$2 found=""
  for f in "$XDG_DATA_HOME"/codex-pooler/pooler.db* "$E2E_TMP/all-logs" "$E2E_TMP/all-outputs"; do
    [[ -e $f ]] || continue
    if grep -a -q -F -- "$needle" "$f"; then
      found="$found ${f##*/}"
    fi
  done
  if [[ -z $found ]]; then
    e2e_pass "the $what appears nowhere"
  else
    e2e_fail "the $what appears nowhere" "found in:$found"
  fi
}

check_absent "access token" "$ACCESS"
check_absent "id token" "$ID_TOKEN"
check_absent "refresh token" "$REFRESH"
check_absent "Pool key" "$KEY"
check_absent "Pool key's secret part" "$KEY_SECRET"
check_absent "prompt" "$PROMPT"
check_absent "cookie" "cookie-$MARK"
check_absent "wrong key" "${MARK}wrongkey"
check_absent "malformed key" "not-a-key-$MARK"
check_absent "rotated access token" "$ROTATED_ACCESS"
check_absent "rotated refresh token" "$ROTATED_REFRESH"

# The debug log was really on, so the check above meant something.
e2e_check "serve logged at debug level" grep -q -- '-DEBUG' "$E2E_TMP/all-logs"

e2e_finish
