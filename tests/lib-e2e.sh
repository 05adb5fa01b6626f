# shellcheck shell=bash
# lib-e2e.sh: shared helpers for the end-to-end tests (sourced, not run).
#
# Environment (set by tests/meson.build):
#   POOLER_BIN, FAKE_UPSTREAM_BIN, POOLER_FIXTURES_DIR, POOLER_NPM_DIR,
#   POOLER_TESTS_DIR
# Set E2E_KEEP=1 to keep the temporary directory for a post-mortem.
#
# Output is TAP: "ok N - ..." / "not ok N - ...", the plan at the end.

# Globals such as E2E_OUT or HTTP_CODE are for the sourcing scripts.
# shellcheck disable=SC2034
E2E_PY=/usr/bin/python3
[[ -x $E2E_PY ]] || E2E_PY=$(command -v python3)

E2E_TMP=
E2E_PIDS=()
E2E_TESTS=0
E2E_FAILED=0

FAKE_PID=
FAKE_PORT=
FAKE_URL=
FAKE_BASE_URL=
FAKE_AUTH_URL=
SERVE_PID=
SERVE_URL=
SERVE_PORT=

# --- TAP --------------------------------------------------------------------

e2e_diag () {
  local line
  while IFS= read -r line; do
    printf '# %s\n' "$line"
  done <<<"$*"
}

e2e_pass () {
  E2E_TESTS=$((E2E_TESTS + 1))
  printf 'ok %d - %s\n' "$E2E_TESTS" "$1"
}

# e2e_fail DESC [DIAGNOSTIC...]
e2e_fail () {
  E2E_TESTS=$((E2E_TESTS + 1))
  E2E_FAILED=$((E2E_FAILED + 1))
  printf 'not ok %d - %s\n' "$E2E_TESTS" "$1"
  shift
  local line
  for line in "$@"; do
    e2e_diag "$line"
  done
}

# Stops the script: a failure later checks cannot survive.
e2e_bail () {
  printf 'Bail out! %s\n' "$*"
  exit 1
}

# e2e_check DESC COMMAND...: passes when COMMAND succeeds.
e2e_check () {
  local desc=$1
  shift
  if "$@"; then
    e2e_pass "$desc"
  else
    e2e_fail "$desc" "command failed: $*"
  fi
}

# e2e_is GOT EXPECTED DESC
e2e_is () {
  if [[ $1 == "$2" ]]; then
    e2e_pass "$3"
  else
    e2e_fail "$3" "got:      '$1'" "expected: '$2'"
  fi
}

# e2e_contains HAYSTACK NEEDLE DESC
e2e_contains () {
  if [[ $1 == *"$2"* ]]; then
    e2e_pass "$3"
  else
    e2e_fail "$3" "'$2' not found in:" "$1"
  fi
}

# e2e_lacks HAYSTACK NEEDLE DESC
e2e_lacks () {
  if [[ $1 != *"$2"* ]]; then
    e2e_pass "$3"
  else
    e2e_fail "$3" "unexpectedly found '$2'"
  fi
}

# Prints the plan and exits non-zero when anything failed.
e2e_finish () {
  printf '1..%d\n' "$E2E_TESTS"
  if ((E2E_FAILED > 0)); then
    printf '# %d of %d checks failed\n' "$E2E_FAILED" "$E2E_TESTS"
    exit 1
  fi
  exit 0
}

# --- set-up and clean-up ----------------------------------------------------

# e2e_require_env VAR...
e2e_require_env () {
  local var
  for var in "$@"; do
    if [[ -z ${!var:-} ]]; then
      e2e_bail "$var is not set (run the tests through meson test)"
    fi
  done
}

e2e_cleanup () {
  local pid i
  for pid in "${E2E_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${E2E_PIDS[@]}"; do
    for ((i = 0; i < 50; i++)); do
      e2e_is_running "$pid" || break
      sleep 0.1
    done
    if e2e_is_running "$pid"; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  E2E_PIDS=()
  if [[ -n $E2E_TMP && -d $E2E_TMP ]]; then
    if [[ -n ${E2E_KEEP:-} ]]; then
      printf '# kept %s\n' "$E2E_TMP"
    else
      rm -rf "$E2E_TMP"
    fi
  fi
}

# A private HOME and XDG tree; everything the clients write stays in it.
e2e_setup () {
  E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/pooler-e2e.XXXXXX")
  trap e2e_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  export HOME=$E2E_TMP/home
  export XDG_DATA_HOME=$E2E_TMP/data
  export XDG_CONFIG_HOME=$E2E_TMP/config
  export XDG_CACHE_HOME=$E2E_TMP/cache
  export XDG_STATE_HOME=$E2E_TMP/state
  export CODEX_HOME=$E2E_TMP/codex
  mkdir -p "$HOME" "$XDG_DATA_HOME" "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" \
           "$XDG_STATE_HOME" "$CODEX_HOME" "$E2E_TMP/project"
  # Nothing from the caller's environment may reach a real upstream.
  unset OPENAI_API_KEY OPENAI_BASE_URL CODEX_API_KEY CODEX_POOLER_KEY \
        CODEX_REFRESH_TOKEN_URL_OVERRIDE CODEX_CA_CERTIFICATE || true
  export NO_COLOR=1
  # With HOME and XDG_* moved, GIO's GNOME proxy resolver finds no GSettings
  # schemas; the unit tests set the same two variables.
  export GIO_USE_PROXY_RESOLVER=dummy
  export GSETTINGS_BACKEND=memory
}

e2e_track () {
  E2E_PIDS+=("$1")
}

e2e_untrack () {
  local pid kept=()
  for pid in "${E2E_PIDS[@]}"; do
    [[ $pid == "$1" ]] || kept+=("$pid")
  done
  E2E_PIDS=("${kept[@]}")
}

# TRUE while PID exists and is not a zombie.
e2e_is_running () {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ -n $state && $state != Z* ]]
}

# e2e_wait_exit PID TIMEOUT_S: the exit status of PID, 124 on timeout.
e2e_wait_exit () {
  local pid=$1 deadline=$((SECONDS + $2)) rc=0
  while e2e_is_running "$pid"; do
    if ((SECONDS >= deadline)); then
      return 124
    fi
    sleep 0.1
  done
  wait "$pid" || rc=$?
  return "$rc"
}

# --- JSON -------------------------------------------------------------------

# e2e_py CODE [ARGS...]: python3 -c CODE ARGS... (stdin passed through).
e2e_py () {
  "$E2E_PY" -c "$@"
}

# e2e_json_get EXPR < JSON: prints eval(EXPR) with the document bound to d;
# strings raw, everything else as JSON. Exit 1 when EXPR fails.
e2e_json_get () {
  e2e_py '
import json, sys
d = json.load(sys.stdin)
try:
    v = eval(sys.argv[1])
except Exception as e:
    print("json_get: %r" % e, file=sys.stderr)
    sys.exit(1)
print(v if isinstance(v, str) else json.dumps(v))
' "$1"
}

# --- the fake upstream ------------------------------------------------------

e2e_start_fake () {
  local port_file=$E2E_TMP/fake.port i
  rm -f "$port_file"
  "$FAKE_UPSTREAM_BIN" --port-file "$port_file" >"$E2E_TMP/fake.log" 2>&1 &
  FAKE_PID=$!
  e2e_track "$FAKE_PID"
  for ((i = 0; i < 100; i++)); do
    [[ -s $port_file ]] && break
    e2e_is_running "$FAKE_PID" || break
    sleep 0.1
  done
  if [[ ! -s $port_file ]]; then
    e2e_diag "$(cat "$E2E_TMP/fake.log" 2>/dev/null)"
    e2e_bail "the fake upstream did not start"
  fi
  FAKE_PORT=$(tr -d '[:space:]' <"$port_file")
  FAKE_URL=http://127.0.0.1:$FAKE_PORT
  FAKE_BASE_URL=$FAKE_URL/backend-api
  FAKE_AUTH_URL=$FAKE_URL
}

# e2e_fake_ctl QUERY, e.g. e2e_fake_ctl 'mode=429&times=1'
e2e_fake_ctl () {
  curl -fsS --max-time 10 "$FAKE_URL/__ctl?$1" >/dev/null
}

# e2e_fake_add_account CHATGPT_ACCOUNT_ID ACCESS_TOKEN REFRESH_TOKEN
e2e_fake_add_account () {
  local body
  body=$(e2e_py 'import json, sys; print(json.dumps({"chatgpt_account_id": sys.argv[1], "access_token": sys.argv[2], "refresh_token": sys.argv[3]}))' "$1" "$2" "$3")
  curl -fsS --max-time 10 -X POST -H 'Content-Type: application/json' \
       --data-binary "$body" "$FAKE_URL/__accounts" >/dev/null
}

e2e_fake_requests () {
  curl -fsS --max-time 10 "$FAKE_URL/__requests"
}

e2e_fake_stats () {
  curl -fsS --max-time 10 "$FAKE_URL/__stats"
}

# --- codex-pooler -----------------------------------------------------------

# e2e_pooler ARGS...: runs the CLI; stdout in $E2E_OUT, stderr in $E2E_ERR,
# the exit status in $E2E_RC. Never fails by itself.
E2E_OUT=
E2E_ERR=
E2E_RC=0
e2e_pooler () {
  E2E_RC=0
  timeout 60 "$POOLER_BIN" "$@" >"$E2E_TMP/cli.out" 2>"$E2E_TMP/cli.err" </dev/null || E2E_RC=$?
  E2E_OUT=$(cat "$E2E_TMP/cli.out")
  E2E_ERR=$(cat "$E2E_TMP/cli.err")
}

# Starts `codex-pooler serve --port 0` against the fake and waits for
#   codex-pooler: gateway ready at http://127.0.0.1:PORT
e2e_start_serve () {
  local out=$E2E_TMP/serve.out err=$E2E_TMP/serve.err i line=
  : >"$out"
  CODEX_POOLER_UPSTREAM_URL=$FAKE_BASE_URL CODEX_POOLER_AUTH_URL=$FAKE_AUTH_URL \
    "$POOLER_BIN" serve --port 0 >"$out" 2>"$err" </dev/null &
  SERVE_PID=$!
  e2e_track "$SERVE_PID"
  for ((i = 0; i < 300; i++)); do
    line=$(grep -m1 -o 'codex-pooler: gateway ready at http://127\.0\.0\.1:[0-9]*' "$out" || true)
    [[ -n $line ]] && break
    e2e_is_running "$SERVE_PID" || break
    sleep 0.1
  done
  if [[ -z $line ]]; then
    e2e_diag "serve stdout: $(cat "$out")"
    e2e_diag "serve stderr: $(cat "$err")"
    e2e_bail "codex-pooler serve did not print its ready line"
  fi
  SERVE_URL=${line#codex-pooler: gateway ready at }
  SERVE_PORT=${SERVE_URL##*:}
}

# Sends SIGTERM and waits up to 5 s; sets SERVE_RC (124: still running).
SERVE_RC=
e2e_stop_serve () {
  SERVE_RC=0
  [[ -n $SERVE_PID ]] || return 0
  kill -TERM "$SERVE_PID" 2>/dev/null || true
  e2e_wait_exit "$SERVE_PID" 5 || SERVE_RC=$?
  if ((SERVE_RC == 124)); then
    kill -KILL "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
  fi
  e2e_untrack "$SERVE_PID"
  SERVE_PID=
}

# --- credentials ------------------------------------------------------------

# e2e_make_auth_json FILE CHATGPT_ACCOUNT_ID [EMAIL] [EXP_OFFSET_S]
# Writes a Codex auth.json in ChatGPT mode with unsigned JWTs (like
# tests/fixtures/auth.json) that expire EXP_OFFSET_S from now (default
# 10 days; negative: already expired). Tokens are fresh random values.
e2e_make_auth_json () {
  e2e_py '
import base64, json, secrets, sys, time, datetime

path, account = sys.argv[1], sys.argv[2]
email = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else account + "@example.com"
offset = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4] else 10 * 86400
now = int(time.time())
iat = now if offset > 0 else now + offset - 86400
sub = "user-" + account

def b64(obj):
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

def jwt(payload):
    return b64({"alg": "none", "typ": "JWT"}) + "." + b64(payload) + ".c2ln"

auth = {"chatgpt_account_id": account, "chatgpt_plan_type": "plus",
        "chatgpt_user_id": sub, "user_id": sub}
id_token = jwt({"iss": "https://auth.example.invalid", "aud": ["app_test"], "sub": sub,
                "email": email, "email_verified": True, "iat": iat, "exp": now + offset,
                "https://api.openai.com/auth": auth, "jti": secrets.token_hex(8)})
access_token = jwt({"iss": "https://auth.example.invalid",
                    "aud": ["https://api.example.invalid/v1"], "sub": sub,
                    "iat": iat, "exp": now + offset,
                    "https://api.openai.com/auth": auth,
                    "https://api.openai.com/profile": {"email": email, "email_verified": True},
                    "jti": secrets.token_hex(8)})
last = datetime.datetime.fromtimestamp(iat, datetime.timezone.utc)
doc = {"OPENAI_API_KEY": None,
       "tokens": {"id_token": id_token, "access_token": access_token,
                  "refresh_token": "rt_e2e_" + secrets.token_hex(16),
                  "account_id": account},
       "last_refresh": last.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
with open(path, "w") as f:
    json.dump(doc, f, indent=2)
' "$@"
}

# e2e_make_apikey_auth_json FILE: an auth.json in API-key mode.
e2e_make_apikey_auth_json () {
  printf '{\n  "OPENAI_API_KEY": "sk-test-e2e-apikey-0123456789",\n  "tokens": null,\n  "last_refresh": null\n}\n' >"$1"
}

# e2e_auth_token FILE NAME: prints tokens.NAME of an auth.json.
e2e_auth_token () {
  e2e_json_get "d['tokens']['$2']" <"$1"
}

# e2e_count_in_file FILE NEEDLE: how often NEEDLE occurs in FILE's bytes
# (0 when the file does not exist).
e2e_count_in_file () {
  [[ -e $1 ]] || { echo 0; return 0; }
  grep -a -F -c -- "$2" "$1" || true
}

# --- HTTP -------------------------------------------------------------------

# e2e_http METHOD URL [CURL_ARGS...]: sets HTTP_CODE, HTTP_CTYPE, HTTP_BODY
# (HTTP_CODE 000 when the connection failed).
HTTP_CODE=
HTTP_CTYPE=
HTTP_BODY=
e2e_http () {
  local method=$1 url=$2 meta
  shift 2
  meta=$(curl -sS --max-time 30 -X "$method" -o "$E2E_TMP/http.body" \
              -w '%{http_code} %{content_type}' "$@" "$url" 2>"$E2E_TMP/http.err") || true
  HTTP_CODE=${meta%% *}
  HTTP_CTYPE=${meta#* }
  [[ -n $HTTP_CODE ]] || HTTP_CODE=000
  HTTP_BODY=$(cat "$E2E_TMP/http.body" 2>/dev/null || true)
}

# TRUE when $HTTP_BODY is {"error":{"message":...}} (the gateway's errors).
e2e_body_is_error_json () {
  printf '%s' "$HTTP_BODY" | e2e_py '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if isinstance(d.get("error"), dict) and isinstance(d["error"].get("message"), str) else 1)
' 2>/dev/null
}

# A small Responses request like the one Codex sends (stream: true).
e2e_responses_body () {
  cat <<'JSON'
{"model":"gpt-5.5","instructions":"You are a test.","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"say hello"}]}],"tools":[],"tool_choice":"auto","parallel_tool_calls":false,"reasoning":{"effort":"medium","summary":"auto"},"store":false,"stream":true,"include":["reasoning.encrypted_content"],"prompt_cache_key":"e2e-cli-0001"}
JSON
}
