#!/usr/bin/env bash
# deps.sh - install the Debian packages of docs/stack.md that are missing.
#
#   scripts/deps.sh            build packages (what make run needs)
#   scripts/deps.sh test       also the browser test's Chromium and Node.js (make test)
#   scripts/deps.sh ci         build + test + fuzz (.ci/run)
#   scripts/deps.sh fuzz       also clang-14 and its runtime (make fuzz)
#   scripts/deps.sh bench      also nginx (the baseline of make bench)
#   scripts/deps.sh all        every package docs/stack.md lists
#   scripts/deps.sh --check    exit 1 if a build/test package is missing
#   scripts/deps.sh --list [fuzz|all]   print the package names (for CI)
set -euo pipefail

BUILD_PKGS="build-essential pkg-config libevent-dev libssl-dev libxml2-dev
  libxmlsec1-dev libjansson-dev libsqlite3-dev libpq-dev libcurl4-openssl-dev
  libwslay-dev libcmocka-dev openssl curl softhsm2 libengine-pkcs11-openssl
  sqlite3 iproute2 procps"
FUZZ_PKGS="clang-14 libclang-rt-14-dev"
# The web console's end-to-end test: Debian's Chromium driven by
# playwright-core (tests/web, from the npm registry).
# Node.js and npm: Debian's packages only when the commands are missing
# (a machine may carry another build of Node.js that already has npm, and
# Debian's npm package would conflict with it).
WEB_PKGS="chromium"
command -v node >/dev/null 2>&1 || WEB_PKGS="$WEB_PKGS nodejs"
command -v npm >/dev/null 2>&1 || WEB_PKGS="$WEB_PKGS npm"
BENCH_PKGS="nginx"
ALL_PKGS="$BUILD_PKGS $FUZZ_PKGS $BENCH_PKGS $WEB_PKGS postgresql-15 afl++ valgrind apache2-utils wrk
  haproxy xmlsec1 sqlite3 softhsm2 libengine-pkcs11-openssl gcovr bear cppcheck
  clang-tidy-14 clang-format-14"

missing() {
  local p out=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || out+=("$p")
  done
  echo "${out[@]:-}"
}

check=0 list=0 group=build
for a in "$@"; do
  case "$a" in
    --check) check=1 ;;
    --list) list=1 ;;
    fuzz) group=fuzz ;;
    test) group=test ;;
    ci) group=ci ;;
    bench) group=bench ;;
    all) group=all ;;
    *) echo "usage: $0 [--check|--list] [test|ci|fuzz|bench|all]" >&2; exit 2 ;;
  esac
done
case "$group" in
  build) want=$BUILD_PKGS ;;
  fuzz) want="$BUILD_PKGS $FUZZ_PKGS" ;;
  test) want="$BUILD_PKGS $WEB_PKGS" ;;
  ci) want="$BUILD_PKGS $WEB_PKGS $FUZZ_PKGS" ;;
  bench) want="$BUILD_PKGS $BENCH_PKGS" ;;
  all) want=$ALL_PKGS ;;
esac

if [ "$list" = 1 ]; then echo $want; exit 0; fi

# shellcheck disable=SC2086
need=$(missing $want)
if [ -z "$need" ]; then exit 0; fi
if [ "$check" = 1 ]; then echo "missing: $need"; exit 1; fi

echo "deps: installing $need"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $need
