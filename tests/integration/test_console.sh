#!/usr/bin/env bash
# The ME's web console (web/) end to end in headless Chromium: msspd from
# `msspd init --demo` on free ports, then tests/web/console.mjs
# (playwright-core driving Debian's /usr/bin/chromium) signs in with the
# account certificates under DIR/admin/ and walks the console as admin,
# second admin and auditor (docs/internals/me.md).  Its TAP lines are
# renumbered into this script's.
#
# Needs node and chromium (CHROMIUM=path overrides /usr/bin/chromium);
# without them the test is skipped.  tests/web/node_modules is installed
# with `npm ci` (package-lock.json) when missing.  CONSOLE_OUT=DIR keeps
# the screenshots (dashboard, users, user-detail, aps, audit .png).
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
export CHROMIUM

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "not ok 1 - web console in Chromium # SKIP node/npm not installed (apt-get install nodejs npm)"
  echo "1..1"
  exit 0
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "not ok 1 - web console in Chromium # SKIP $CHROMIUM not installed (apt-get install chromium)"
  echo "1..1"
  exit 0
fi

if [ ! -f tests/web/node_modules/playwright-core/package.json ]; then
  if npm ci --prefix tests/web --no-audit --no-fund >"$WORK/npm.log" 2>&1; then
    ok "npm ci --prefix tests/web installs playwright-core"
  else
    nok "npm ci --prefix tests/web installs playwright-core"
    sed 's/^/# /' "$WORK/npm.log" | tail -20
    finish; exit 1
  fi
fi

init_platform || { nok "msspd init --demo"; sed 's/^/# /' "$WORK/init.log"; finish; exit 1; }
check "msspd init wrote the admin and auditor account certificates" \
  test -f "$DIR/admin/admin.crt" -a -f "$DIR/admin/admin.key" -a -f "$DIR/admin/auditor.crt"
start_msspd || { nok "msspd starts"; tail -20 "$WORK/msspd.log" | sed 's/^/# /'; finish; exit 1; }
ok "msspd started (ME on 127.0.0.1:$ME_PORT)"

OUT=${CONSOLE_OUT:-$WORK/shots}
node tests/web/console.mjs --url "https://127.0.0.1:$ME_PORT" --data-dir "$DIR" --out "$OUT" \
  >"$WORK/console.tap" 2>"$WORK/console.err"
rc=$?

# Renumber the browser test's TAP after ours; its plan line is dropped
# (finish prints the total), anything else becomes a comment.
while IFS= read -r line; do
  case "$line" in
    "ok "*)
      desc=${line#ok }; desc=${desc#* - }
      ok "$desc" ;;
    "not ok "*)
      desc=${line#not ok }; desc=${desc#* - }
      case "$desc" in
        *"# SKIP"*) T=$((T + 1)); echo "not ok $T - $desc" ;;
        *) nok "$desc" ;;
      esac ;;
    1..*) ;;
    "#"*) echo "$line" ;;
    *) echo "# $line" ;;
  esac
done <"$WORK/console.tap"
sed 's/^/# stderr: /' "$WORK/console.err" | head -20

if [ "$rc" -ne 0 ] && [ "$FAILED" -eq 0 ]; then
  nok "console.mjs exited with status $rc"
fi
if [ "$FAILED" -gt 0 ]; then
  echo "# msspd log (tail):"
  tail -15 "$WORK/msspd.log" | sed 's/^/#   /'
fi
finish
