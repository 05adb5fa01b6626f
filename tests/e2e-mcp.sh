#!/usr/bin/env bash
# e2e-mcp.sh: the operator MCP endpoint of a real `codex-pooler serve`,
# driven by curl, the official TypeScript SDK client (tests/e2e-mcp.mjs),
# the official Inspector CLI and the official conformance suite (under the
# pinned Node 22, as the suite needs). Prints TAP.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TESTS_DIR=${POOLER_TESTS_DIR:-$HERE}
# shellcheck source=lib-e2e.sh
source "$TESTS_DIR/lib-e2e.sh"

e2e_require_env POOLER_BIN FAKE_UPSTREAM_BIN POOLER_NPM_DIR

NPM=$POOLER_NPM_DIR/node_modules
NODE22=$NPM/node/bin/node
INSPECTOR=$NPM/@modelcontextprotocol/inspector/clients/launcher/build/index.js
CONFORMANCE=$NPM/@modelcontextprotocol/conformance/dist/index.js
for need in "$NPM/@modelcontextprotocol/sdk/package.json" "$INSPECTOR" "$CONFORMANCE" "$NODE22"; do
  if [[ ! -e $need ]]; then
    e2e_bail "$need is missing: run build-aux/test, which installs the pinned npm clients" \
             "into $POOLER_NPM_DIR"
  fi
done

e2e_setup
e2e_start_fake

# --- a Pool with one account, a key, some traffic ---------------------------

EMAIL=jordan.e2e@example.com
e2e_pooler pool create main
e2e_is "$E2E_RC" 0 "pool create main"
AUTH_JSON=$E2E_TMP/auth.json
e2e_make_auth_json "$AUTH_JSON" acct_mcp_e2e "$EMAIL"
ACCESS_TOKEN=$(e2e_auth_token "$AUTH_JSON" access_token)
REFRESH_TOKEN=$(e2e_auth_token "$AUTH_JSON" refresh_token)
e2e_fake_add_account acct_mcp_e2e "$ACCESS_TOKEN" "$REFRESH_TOKEN"
e2e_pooler account import "$AUTH_JSON" --pool main
e2e_is "$E2E_RC" 0 "account import"
e2e_pooler key create --pool main --name e2e
POOL_KEY=$E2E_OUT
[[ $POOL_KEY == sk-cxp-* ]] || e2e_bail "no Pool key: '$POOL_KEY' ($E2E_ERR)"

# --- operator tokens on the command line ------------------------------------

token_re='^mcp-cxp-[0-9a-f]{12}-[A-Za-z0-9_-]{43}$'
e2e_pooler mcp-token create --name e2e
e2e_is "$E2E_RC" 0 "mcp-token create exits 0"
TOKEN=$E2E_OUT
if [[ $TOKEN =~ $token_re ]]; then
  e2e_pass "mcp-token create prints only a well-formed token"
else
  e2e_bail "mcp-token create prints only a well-formed token" "stdout: $TOKEN"
fi
# The secret (base64url) may itself contain "-": cut by length.
TOKEN_PREFIX=${TOKEN:0:20}
TOKEN_SECRET=${TOKEN:21}

e2e_pooler mcp-token create --name spare --json
e2e_is "$E2E_RC" 0 "mcp-token create --json exits 0"
SPARE=$(e2e_json_get 'd["token"]' <<<"$E2E_OUT")
SPARE_PREFIX=$(e2e_json_get 'd["prefix"]' <<<"$E2E_OUT")
[[ $SPARE == "$SPARE_PREFIX"-* ]] && e2e_pass "--json names token and prefix" ||
  e2e_fail "--json names token and prefix" "$E2E_OUT"

e2e_pooler mcp-token list --json
e2e_is "$E2E_RC" 0 "mcp-token list --json exits 0"
e2e_contains "$E2E_OUT" "$TOKEN_PREFIX" "mcp-token list shows the prefix"
e2e_lacks "$E2E_OUT" "$TOKEN_SECRET" "mcp-token list never shows the secret"
e2e_pooler mcp-token list
e2e_contains "$E2E_OUT" "never" "a new token was never used"

e2e_pooler mcp-token revoke mcp-cxp-000000000000
e2e_is "$E2E_RC" 1 "revoking an unknown prefix is a user error (1)"
e2e_pooler mcp-token revoke
e2e_is "$E2E_RC" 2 "revoke without PREFIX is a usage error (2)"
e2e_pooler mcp-token
e2e_is "$E2E_RC" 2 "mcp-token without a verb is a usage error (2)"

DB=$XDG_DATA_HOME/codex-pooler/pooler.db
e2e_is "$(e2e_count_in_file "$DB" "$TOKEN_SECRET")" 0 "the database does not hold the token's secret"

e2e_start_serve
e2e_pass "serve is ready at $SERVE_URL"
MCP_URL=$SERVE_URL/mcp

for i in 1 2 3 4 5; do
  e2e_http POST "$SERVE_URL/backend-api/codex/responses" -H "Authorization: Bearer $POOL_KEY" \
           -H 'Content-Type: application/json' --data-binary "$(e2e_responses_body)"
  e2e_is "$HTTP_CODE" 200 "gateway request $i answered"
done

# --- the transport, by hand ---------------------------------------------------

INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"0"}}}'
mcp_post () {
  e2e_http POST "$MCP_URL" -H 'Content-Type: application/json' \
           -H 'Accept: application/json, text/event-stream' "$@"
}

mcp_post -H "Authorization: Bearer $TOKEN" --data-binary "$INIT"
e2e_is "$HTTP_CODE" 200 "initialize: 200"
e2e_is "$(e2e_json_get 'd["result"]["protocolVersion"]' <<<"$HTTP_BODY")" 2025-06-18 \
       "initialize echoes 2025-06-18"
mcp_post -H "Authorization: Bearer $TOKEN" -H 'MCP-Protocol-Version: 2025-06-18' \
         --data-binary '{"jsonrpc":"2.0","method":"notifications/initialized"}'
e2e_is "$HTTP_CODE" 202 "notifications/initialized: 202"
e2e_is "$HTTP_BODY" "" "a notification gets no body"
mcp_post -H "Authorization: Bearer $TOKEN" --data-binary '[{"jsonrpc":"2.0","id":1,"method":"ping"}]'
e2e_is "$HTTP_CODE" 400 "a batch: 400"
e2e_is "$(e2e_json_get 'd["error"]["code"]' <<<"$HTTP_BODY")" -32600 "a batch: -32600"
mcp_post -H "Authorization: Bearer $TOKEN" -H 'MCP-Protocol-Version: 1999-01-01' \
         --data-binary '{"jsonrpc":"2.0","id":2,"method":"ping"}'
e2e_is "$HTTP_CODE" 400 "an unsupported MCP-Protocol-Version: 400"
e2e_http POST "$MCP_URL" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: text/plain' \
         --data-binary '{"jsonrpc":"2.0","id":3,"method":"ping"}'
e2e_is "$HTTP_CODE" 415 "Content-Type text/plain: 415"

e2e_http GET "$MCP_URL" -H "Authorization: Bearer $TOKEN" -D "$E2E_TMP/get.headers"
e2e_is "$HTTP_CODE" 405 "GET /mcp: 405"
e2e_contains "$(tr -d '\r' <"$E2E_TMP/get.headers")" "Allow: POST" "GET /mcp names Allow: POST"
e2e_http DELETE "$MCP_URL" -H "Authorization: Bearer $TOKEN"
e2e_is "$HTTP_CODE" 405 "DELETE /mcp: 405"

mcp_post --data-binary "$INIT" -D "$E2E_TMP/401.headers"
e2e_is "$HTTP_CODE" 401 "no token: 401"
e2e_contains "$(tr -d '\r' <"$E2E_TMP/401.headers")" "WWW-Authenticate: Bearer" "401 carries WWW-Authenticate"
e2e_body_is_error_json && e2e_pass "401 body is a JSON error" || e2e_fail "401 body is a JSON error" "$HTTP_BODY"
mcp_post -H "Authorization: Bearer $POOL_KEY" --data-binary "$INIT"
e2e_is "$HTTP_CODE" 401 "a Pool key: 401"
mcp_post -H "Authorization: Bearer $TOKEN" -H 'Origin: http://evil.example.com' --data-binary "$INIT"
e2e_is "$HTTP_CODE" 403 "a foreign Origin: 403"
mcp_post -H "Authorization: Bearer $TOKEN" -H "Origin: http://127.0.0.1:$SERVE_PORT" --data-binary "$INIT"
e2e_is "$HTTP_CODE" 200 "our own Origin: 200"
mcp_post -H "Authorization: Bearer $TOKEN" -H 'Host: evil.example.com' --data-binary "$INIT"
e2e_is "$HTTP_CODE" 403 "a foreign Host: 403"
e2e_http GET "$SERVE_URL/healthz" -H 'Origin: http://evil.example.com'
e2e_is "$HTTP_CODE" 403 "a foreign Origin on another route: 403"

# --- the official SDK client ------------------------------------------------

SDK_OUT=$E2E_TMP/sdk.out
SDK_RC=0
MCP_URL=$MCP_URL MCP_TOKEN=$TOKEN POOL_KEY=$POOL_KEY \
  SECRETS=$(printf '%s\n' "$ACCESS_TOKEN" "$REFRESH_TOKEN" "${POOL_KEY:20}" "$TOKEN_SECRET") \
  EMAILS=$EMAIL \
  timeout 120 node "$TESTS_DIR/e2e-mcp.mjs" >"$SDK_OUT" 2>&1 || SDK_RC=$?
cat "$SDK_OUT" | grep '^#' || true
e2e_is "$SDK_RC" 0 "the MCP SDK client: connect, every tool, pages, resources, refusals"

# --- the official Inspector CLI ---------------------------------------------

inspector () {
  PATH=$(dirname "$NODE22"):$PATH timeout 120 "$NODE22" "$INSPECTOR" --cli "$MCP_URL" \
    --transport http --header "Authorization: Bearer $TOKEN" "$@"
}

INSPECTOR_RC=0
inspector --method tools/list >"$E2E_TMP/inspector.out" 2>"$E2E_TMP/inspector.err" || INSPECTOR_RC=$?
e2e_is "$INSPECTOR_RC" 0 "inspector --cli tools/list exits 0"
if e2e_py '
import json, sys
d = json.load(open(sys.argv[1]))
names = {t["name"] for t in d["tools"]}
sys.exit(0 if {"get_status", "list_requests", "explain_routing"} <= names else 1)' "$E2E_TMP/inspector.out"; then
  e2e_pass "inspector lists the tools"
else
  e2e_fail "inspector lists the tools" "$(head -c 2000 "$E2E_TMP/inspector.out")" \
           "$(head -c 2000 "$E2E_TMP/inspector.err")"
fi

INSPECTOR_RC=0
inspector --method tools/call --tool-name explain_routing --tool-args-json '{"pool":"main"}' \
  >"$E2E_TMP/inspector.out" 2>"$E2E_TMP/inspector.err" || INSPECTOR_RC=$?
e2e_is "$INSPECTOR_RC" 0 "inspector --cli tools/call explain_routing exits 0"
e2e_contains "$(cat "$E2E_TMP/inspector.out")" '"candidates"' "inspector shows the routing explanation"
e2e_lacks "$(cat "$E2E_TMP/inspector.out")" "$EMAIL" "inspector output has no unmasked e-mail"

INSPECTOR_RC=0
inspector --method resources/read --uri pooler://status \
  >"$E2E_TMP/inspector.out" 2>"$E2E_TMP/inspector.err" || INSPECTOR_RC=$?
e2e_is "$INSPECTOR_RC" 0 "inspector --cli resources/read pooler://status exits 0"

# --- the official conformance suite (Node 22) -------------------------------

CONFORMANCE_RC=0
PATH=$(dirname "$NODE22"):$PATH MCP_URL=$MCP_URL MCP_TOKEN=$TOKEN \
  timeout 240 "$NODE22" --import "$TESTS_DIR/mcp-conformance-auth.mjs" "$CONFORMANCE" server \
  --url "$MCP_URL" --expected-failures "$TESTS_DIR/mcp-conformance-baseline.yml" \
  >"$E2E_TMP/conformance.out" 2>&1 || CONFORMANCE_RC=$?
grep -E 'Passed|Failed|passed|failed|Total|expected' "$E2E_TMP/conformance.out" | head -20 | sed 's/^/# /' || true
if ((CONFORMANCE_RC == 0)); then
  e2e_pass "conformance suite: only the baseline's scenarios fail"
else
  e2e_fail "conformance suite: only the baseline's scenarios fail" "$(tail -c 4000 "$E2E_TMP/conformance.out")"
fi

# --- tokens: last use recorded, revocation takes effect ----------------------

e2e_pooler mcp-token list --json
LAST_USED=$(e2e_json_get "[t for t in d if t['prefix'] == '$TOKEN_PREFIX'][0]['last_used_at']" <<<"$E2E_OUT")
[[ $LAST_USED != None && $LAST_USED != null && -n $LAST_USED ]] &&
  e2e_pass "the token's last use is recorded ($LAST_USED)" ||
  e2e_fail "the token's last use is recorded" "$E2E_OUT"

mcp_post -H "Authorization: Bearer $SPARE" --data-binary "$INIT"
e2e_is "$HTTP_CODE" 200 "the spare token works"
e2e_pooler mcp-token revoke "$SPARE_PREFIX"
e2e_is "$E2E_RC" 0 "mcp-token revoke exits 0"
for ((i = 0; i < 50; i++)); do
  mcp_post -H "Authorization: Bearer $SPARE" --data-binary "$INIT"
  [[ $HTTP_CODE == 401 ]] && break
  sleep 0.2
done
e2e_is "$HTTP_CODE" 401 "a revoked token is refused by the running server"

e2e_stop_serve
e2e_is "$SERVE_RC" 0 "serve exits 0 on SIGTERM"
e2e_lacks "$(cat "$E2E_TMP/serve.out" "$E2E_TMP/serve.err")" "$TOKEN_SECRET" "serve output never shows the token"

e2e_finish
