# lib.sh - shared helpers of the integration tests: TAP output, a private
# work directory, free loopback ports, and the real programs (msspd,
# mss-phone, mss-ap) started and stopped for real.
#
# Every test script sources this file, calls setup_platform (or parts of
# it), runs its checks with ok/nok/check, and ends with finish.
set -u
BUILD=${BUILD:-build/debug}
BIN=$(cd "$BUILD/bin" && pwd)
T=0
FAILED=0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mssp-it.XXXXXX")
PIDS=()

ok()  { T=$((T + 1)); echo "ok $T - $*"; }
nok() { T=$((T + 1)); FAILED=$((FAILED + 1)); echo "not ok $T - $*"; }
# check "description" command...: ok when the command succeeds
check() { local d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; fi; }
# quiet CMD...: run CMD with its output discarded (keeps TAP clean)
quiet() { "$@" >/dev/null 2>&1; }

cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  if [ "$FAILED" -gt 0 ] && [ -n "${KEEP_WORK:-}" ]; then
    echo "# work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

finish() {
  echo "1..$T"
  [ "$FAILED" -eq 0 ]
}

if command -v ss >/dev/null 2>&1; then
  port_free() { ! ss -Htuan "sport = :$1" | grep -q .; }
else
  port_free() { ! (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
fi

# A base port N with N..N+6 free (AE, ME, AFE, admin, push, pki, mesh).
pick_base_port() {
  local n i free
  for _ in $(seq 1 50); do
    # below the ephemeral range (32768-60999), so no client socket holds them
    n=$((10000 + (RANDOM % 2200) * 10))
    free=1
    for i in 0 1 2 3 4 5 6; do port_free $((n + i)) || free=0; done
    [ $free -eq 1 ] && { echo "$n"; return 0; }
  done
  return 1
}

# wait_for FILE PATTERN SECONDS [COUNT]: PATTERN appears COUNT times in FILE
wait_for() {
  local f=$1 pat=$2 secs=$3 want=${4:-1} i
  for i in $(seq 1 $((secs * 10))); do
    if [ -f "$f" ] && [ "$(grep -c -- "$pat" "$f" 2>/dev/null)" -ge "$want" ]; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

init_platform() {
  BASE=$(pick_base_port) || { echo "# no free ports"; exit 1; }
  DIR=$WORK/d
  AE_PORT=$BASE; ME_PORT=$((BASE + 1)); AFE_PORT=$((BASE + 2)); ADMIN_PORT=$((BASE + 3))
  PKI_PORT=$((BASE + 5)); MESH_PORT=$((BASE + 6))
  export PKI_PORT MESH_PORT
  "$BIN/msspd" init --data-dir "$DIR" --demo --base-port "$BASE" "$@" >"$WORK/init.log" 2>&1
}

start_msspd() {
  local log=$WORK/msspd.log
  "$BIN/msspd" --data-dir "$DIR" >>"$log" 2>&1 &
  MSSPD_PID=$!
  PIDS+=("$MSSPD_PID")
  local before=${1:-0}
  wait_for "$log" "msspd: ready" 30 $((before + 1))
}

start_phone() {
  "$BIN/mss-phone" --data-dir "$DIR" --demo --log "$WORK/phone.log" "$@" \
    >>"$WORK/phone.out" 2>&1 &
  PHONE_PID=$!
  PIDS+=("$PHONE_PID")
}

setup_platform() {
  init_platform "$@" || { echo "# msspd init failed"; cat "$WORK/init.log"; exit 1; }
  start_msspd || { echo "# msspd did not start"; cat "$WORK/msspd.log"; exit 1; }
  start_phone
  wait_for "$WORK/phone.log" "^READY " 30 8 || {
    echo "# phones did not connect"; tail -20 "$WORK/phone.log" "$WORK/phone.out" "$WORK/msspd.log"; exit 1; }
}

ap() { "$BIN/mss-ap" --config "$DIR/demo/mss-ap.conf" "$@"; }

# curl to the AE with the demo AP's certificate
ae_curl() {
  curl -sS --max-time 30 --cacert "$DIR/demo/tls-ca.crt" --cert "$DIR/demo/ap.crt" \
    --key "$DIR/demo/ap.key" "$@"
}

now_instant() { date -u +%Y-%m-%dT%H:%M:%S.000Z; }

# curl to the ME as account $1 (admin, admin2, ra, auditor: DIR/admin/$1.*)
me_curl() {
  local who=$1; shift
  curl -sS --max-time 30 --cacert "$DIR/tls/ca.crt" --cert "$DIR/admin/$who.crt" \
    --key "$DIR/admin/$who.key" "$@"
}

# me_api ACCOUNT METHOD PATH [JSON]: one ME API call with the account's CSRF
# token; prints the body, then a last line "HTTP <status>".
me_api() {
  local who=$1 method=$2 path=$3 body=${4:-} csrf
  csrf=$(me_curl "$who" "https://127.0.0.1:$ME_PORT/api/v1/session" |
    sed -n 's/.*"csrf": *"\([0-9a-f]*\)".*/\1/p')
  if [ -n "$body" ]; then
    me_curl "$who" -X "$method" -H 'Content-Type: application/json' -H "X-MSSP-CSRF: $csrf" \
      --data-binary "$body" -w '\nHTTP %{http_code}\n' "https://127.0.0.1:$ME_PORT/api/v1$path"
  else
    me_curl "$who" -X "$method" -H 'Content-Type: application/json' -H "X-MSSP-CSRF: $csrf" \
      -w '\nHTTP %{http_code}\n' "https://127.0.0.1:$ME_PORT/api/v1$path"
  fi
}
