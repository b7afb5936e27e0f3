#!/usr/bin/env bash
# Installs the system parts that the integration tests, the benchmarks and the demo use:
#   - Debian packages: slapd + ldap-utils (OpenLDAP, run as a private instance by
#     devcluster/services/ldap.py; the system daemon is neither configured nor started),
#     chromium (headless browser for the Playwright tests), fonts-dejavu-core
#     (readable screenshots), postgresql (the server the hub and the accounting
#     database run on in the tests: devcluster/services/postgres.py runs a private
#     instance per test run; the package's own cluster is not started),
#     openssh-client (ssh and sftp: the SSH service's tests log in with them), and
#     nodejs/npm only when `node`/`npm` are missing;
#   - configurable-http-proxy (npm, pinned) into the repo-local directory .cache/node;
#   - as root: search permission for group and others (go+x) on the directories above
#     the Python interpreter, so devcluster's pods that run as a pod's non-root user
#     (runAsUser) can execute the venv's Python.
#
# Idempotent and non-interactive; a fast no-op when everything is present.
# Run as root, or as a user with sudo (the apt steps use sudo then).
set -euo pipefail

CHP_VERSION="5.3.0"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_PREFIX="$REPO_ROOT/.cache/node"
POLICY_RC=/usr/sbin/policy-rc.d

say() { echo "setup-system: $*"; }
die() { echo "setup-system: ERROR: $*" >&2; exit 1; }
trap 'rc=$?; echo "setup-system: ERROR: command failed (exit $rc) at line $LINENO: $BASH_COMMAND" >&2' ERR

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  die "run this script as root, or install sudo"
fi

is_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null; }

# ---------------------------------------------------------------- Debian packages
wanted=(slapd ldap-utils postgresql chromium fonts-dejavu-core openssh-client)
command -v node >/dev/null 2>&1 || wanted+=(nodejs)
command -v npm >/dev/null 2>&1 || wanted+=(npm)

missing=()
for pkg in "${wanted[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

restore_policy() { :; }
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script supports Debian/Ubuntu only"

  # slapd: install the binaries only; devcluster runs its own instance.
  echo "slapd slapd/no_configuration boolean true" | "${SUDO[@]}" debconf-set-selections

  # Keep invoke-rc.d from starting system daemons (slapd, postgresql) during the
  # install. An existing policy-rc.d that already denies starting slapd (exit 101)
  # is left alone;
  # otherwise ours is put in place and the previous state is restored afterwards.
  if [ -x "$POLICY_RC" ] && { "$POLICY_RC" slapd start >/dev/null 2>&1; [ $? -eq 101 ]; }; then
    say "existing $POLICY_RC already denies service starts; leaving it"
  else
    backup=""
    if [ -e "$POLICY_RC" ]; then
      backup="$(mktemp /tmp/policy-rc.d.XXXXXX)"
      "${SUDO[@]}" cp -p "$POLICY_RC" "$backup"
    fi
    restore_policy() {
      if [ -n "$backup" ]; then
        "${SUDO[@]}" cp -p "$backup" "$POLICY_RC" && "${SUDO[@]}" rm -f "$backup"
        say "restored the previous $POLICY_RC"
      else
        "${SUDO[@]}" rm -f "$POLICY_RC"
        say "removed the temporary $POLICY_RC"
      fi
    }
    trap 'restore_policy' EXIT
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY_RC" >/dev/null
    "${SUDO[@]}" chmod 0755 "$POLICY_RC"
    say "installed a temporary $POLICY_RC (exit 101) so no daemon starts"
  fi

  say "apt-get update"
  apt_log="$(mktemp /tmp/setup-system-apt.XXXXXX)"
  apt_failed() {
    tail -n 40 "$apt_log" >&2
    die "$1 failed (full output: $apt_log)"
  }
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$apt_log" 2>&1 \
    || apt_failed "apt-get update"
  say "apt-get install --no-install-recommends ${missing[*]}"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "${missing[@]}" >>"$apt_log" 2>&1 \
    || apt_failed "apt-get install ${missing[*]}"
  say "apt set up $(grep -c '^Setting up' "$apt_log" || true) packages (with dependencies)"
  grep -E "^(invoke-rc.d|  Omitting)" "$apt_log" | sed 's/^/  /' || true
  rm -f "$apt_log"
  restore_policy
  restore_policy() { :; }
  trap - EXIT
  for pkg in "${missing[@]}"; do
    is_installed "$pkg" || die "package $pkg is still not installed"
    say "installed $pkg $(pkg_version "$pkg")"
  done
else
  say "Debian packages already present: ${wanted[*]}"
fi

[ -x /usr/sbin/slapd ] || die "/usr/sbin/slapd is missing although slapd is installed"
command -v ldapadd >/dev/null 2>&1 || die "ldapadd is missing although ldap-utils is installed"
command -v chromium >/dev/null 2>&1 || die "chromium is missing although the package is installed"
# initdb and postgres live in /usr/lib/postgresql/<major>/bin, off PATH; the
# newest major installed is the one devcluster/services/postgres.py runs.
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
[ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ] && [ -x "$pg_bin/postgres" ] \
  || die "initdb/postgres are missing under /usr/lib/postgresql/*/bin although postgresql is installed"
# PostgreSQL refuses to run as root: run as root, the tests start it as the
# package's own system user.
getent passwd postgres >/dev/null || die "the user postgres (made by the postgresql package) is missing"
command -v node >/dev/null 2>&1 || die "node is missing"
command -v npm >/dev/null 2>&1 || die "npm is missing"
# packages/wb-lab-notices' JupyterLab half builds with rspack, which needs 20.19+.
node -e 'const [a, b] = process.versions.node.split(".").map(Number);
  process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' \
  || die "node $(node --version) is too old: building the JupyterLab extension needs Node.js 20.19 or newer"

# ---------------------------------------------------------------- configurable-http-proxy
chp_pkg="$NODE_PREFIX/node_modules/configurable-http-proxy/package.json"
chp_bin="$NODE_PREFIX/node_modules/.bin/configurable-http-proxy"
installed_chp=""
if [ -f "$chp_pkg" ]; then
  installed_chp="$(node -p 'require(process.argv[1]).version' "$chp_pkg" 2>/dev/null || true)"
fi

if [ "$installed_chp" = "$CHP_VERSION" ] && [ -x "$chp_bin" ]; then
  say "configurable-http-proxy $CHP_VERSION already in ${NODE_PREFIX#"$REPO_ROOT"/}"
else
  say "installing configurable-http-proxy@$CHP_VERSION into ${NODE_PREFIX#"$REPO_ROOT"/}"
  # The files belong to whoever owns the checkout, not to root (sudo make test).
  owner="$(stat -c %U "$REPO_ROOT")"
  as_owner=()
  if [ "$(id -u)" -eq 0 ] && [ "$owner" != "root" ] && [ "$owner" != "UNKNOWN" ]; then
    as_owner=(runuser -u "$owner" -- env HOME="$(getent passwd "$owner" | cut -d: -f6)")
  fi
  "${as_owner[@]}" mkdir -p "$NODE_PREFIX"
  "${as_owner[@]}" npm install --prefix "$NODE_PREFIX" --no-audit --no-fund \
    --loglevel=error "configurable-http-proxy@$CHP_VERSION" \
    || die "npm install configurable-http-proxy@$CHP_VERSION failed"
  [ -x "$chp_bin" ] || die "npm finished but $chp_bin is missing"
  say "installed configurable-http-proxy $("$chp_bin" --version)"
fi

# ---------------------------------------------------------------- Python for pod users
# Run as root, devcluster starts a pod's processes as the pod's runAsUser, and they
# execute the venv's Python and the interpreter it links to. A directory on that path
# which other users cannot search (pyenv under a 0700 /root) stops them with
# "permission denied"; such directories get go+x (search only: no listing, no
# reading; group too, because a pod user without runAsGroup is in group 0).
if [ "$(id -u)" -eq 0 ]; then
  for candidate in "${PYTHON:-python3}" "$REPO_ROOT/.venv/bin/python"; do
    py="$(command -v "$candidate" 2>/dev/null || true)"
    [ -n "$py" ] || continue
    dir="$(dirname "$(readlink -f "$py")")"
    while [ "$dir" != "/" ]; do
      if [ $(( 8#$(stat -c %a "$dir") & 8#11 )) -ne $(( 8#11 )) ]; then
        chmod go+x "$dir"
        say "made $dir searchable (go+x) for pods that run as non-root users"
      fi
      dir="$(dirname "$dir")"
    done
  done
fi

say "ready: slapd $(pkg_version slapd), ldap-utils $(pkg_version ldap-utils)," \
  "postgresql $("$pg_bin/postgres" --version | awk '{print $3}')," \
  "chromium $(pkg_version chromium), node $(node --version), npm $(npm --version)," \
  "configurable-http-proxy $CHP_VERSION"
