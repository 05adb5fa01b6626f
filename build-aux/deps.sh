# Sourced by build-aux/run and build-aux/test: makes sure the Debian
# packages the project needs are installed (installs them when run as root,
# otherwise prints the exact apt-get line and stops), and the pinned npm
# clients the end-to-end tests drive.
#
# SPDX-License-Identifier: GPL-3.0-or-later

POOLER_BUILD_PACKAGES="meson ninja-build pkg-config gcc libglib2.0-dev libsoup-3.0-dev
  libjson-glib-dev libsecret-1-dev libsqlite3-dev libzstd-dev libnotify-dev"
POOLER_RUNTIME_PACKAGES="dbus dbus-bin gnome-keyring"
POOLER_TEST_PACKAGES="curl python3 sqlite3 nodejs npm libsecret-tools python3-dbusmock
  clang libclang-rt-14-dev valgrind openssl"

# Pinned clients, installed with --no-save into the build dir (never a lock
# file in the repository).
POOLER_NPM_PACKAGES="@openai/codex@0.169.0 openai@6.49.0 @modelcontextprotocol/sdk@1.32.2
  @modelcontextprotocol/inspector@2.12.0 @modelcontextprotocol/conformance@0.1.16 node@22.23.3"

pooler_missing_packages () {
  local missing="" pkg
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      # A command that is already there (say, node from another source) will do.
      case "$pkg" in
        nodejs) command -v node >/dev/null 2>&1 && continue ;;
        npm) command -v npm >/dev/null 2>&1 && continue ;;
      esac
      missing="$missing $pkg"
    fi
  done
  echo "$missing"
}

pooler_ensure_packages () {
  local missing
  missing=$(pooler_missing_packages "$@")
  [ -z "$missing" ] && return 0

  if [ "$(id -u)" -eq 0 ]; then
    echo "Installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "codex-pooler: missing Debian packages. Install them with:" >&2
    echo "  sudo apt-get install -y$missing" >&2
    exit 1
  fi
}

pooler_ensure_npm_clients () {
  local dir="$1" want missing=""
  mkdir -p "$dir"
  for want in $POOLER_NPM_PACKAGES; do
    local name="${want%@*}" version="${want##*@}" have
    have=$(node -e "try{console.log(require('$dir/node_modules/$name/package.json').version)}catch(e){}" \
           2>/dev/null || true)
    [ "$have" = "$version" ] || missing="$missing $want"
  done
  [ -z "$missing" ] && return 0

  echo "Installing into $dir:$missing"
  # --no-save and no lock file: nothing in the repository records a registry.
  # The whole list every time: npm prunes what is not in the list it is
  # given, and --no-save packages are in no list but this one.
  # npm has been seen to stall for good on one manifest fetch: each attempt
  # is bounded (npm's own fetch timeout, then a hard limit on the whole
  # install) and a stalled or failed one is tried again.
  local attempt
  for attempt in 1 2 3; do
    # shellcheck disable=SC2086
    if timeout --kill-after=10 "${POOLER_NPM_TIMEOUT:-900}" \
         npm install --no-save --no-audit --no-fund --no-package-lock --loglevel=error \
           --fetch-timeout=60000 --fetch-retries=4 \
           --prefix "$dir" $POOLER_NPM_PACKAGES >/dev/null; then
      return 0
    fi
    echo "codex-pooler: npm install into $dir failed or stalled (attempt $attempt of 3)" >&2
    sleep $((attempt * 5))
  done
  echo "codex-pooler: could not install the test clients:$missing" >&2
  return 1
}

pooler_configure_build () {
  local builddir="$1"; shift
  if [ -f "$builddir/build.ninja" ]; then
    meson configure "$builddir" "$@" >/dev/null
  else
    meson setup "$builddir" "$@" >/dev/null
  fi
  meson compile -C "$builddir" >/dev/null || meson compile -C "$builddir"
}
