#!/usr/bin/env bash
# bench.sh - performance figures, each beside a baseline measured in the same
# run (never a timed assertion).  BENCH_SECONDS per figure (default 2).
set -eu
BUILD=${BUILD:-build/release}
SECS=${BENCH_SECONDS:-2}
echo "== message layer (bench_codec)"
"$BUILD/bench/bench_codec" "$SECS"

# Signatures: our CMS and raw operations beside OpenSSL's primitives, as
# `openssl speed` measures them on this machine in this run.  The two
# summary lines look like
#   rsa 2048 bits 0.000577s 0.000017s   1733.0  59130.6
#    256 bits ecdsa (nistp256)   0.0000s   0.0001s  35261.7  11946.1
# (the last two fields are sign/s and verify/s).
echo "== signatures (bench_pki; baseline: openssl speed -seconds $SECS rsa2048 ecdsap256)"
speed=$(openssl speed -seconds "$SECS" rsa2048 ecdsap256 2>/dev/null || true)
rsa=$(printf '%s\n' "$speed" | awk '/^rsa 2048 bits/ { print $(NF-1), $NF; exit }')
ec=$(printf '%s\n' "$speed" | awk '/ecdsa \(nistp256\)/ { print $(NF-1), $NF; exit }')
if [ -n "$rsa" ] && [ -n "$ec" ]; then
  echo "openssl speed: rsa2048 sign/s verify/s = $rsa; ecdsap256 sign/s verify/s = $ec"
  # shellcheck disable=SC2086
  "$BUILD/bench/bench_pki" "$SECS" $rsa $ec
else
  echo "openssl speed: summary lines not found; figures without baseline"
  "$BUILD/bench/bench_pki" "$SECS"
fi

# ---------------------------------------------------------------------------
# The whole signature path: mss-ap bench (libcurl multi, keep-alive mutual
# TLS, C connections) -> msspd -> mss-phone --demo answering at once with
# ECDSA P-256 click-OK keys, every transaction stored durably and every
# signature verified by HomeMSSP.  Baseline in the same run: the same
# client GETting a static response from nginx over the same TLS (mutual,
# same certificates, keep-alive).  Then the memory of parked synchronous
# requests (phones stopped, so every request waits for its user).
BENCH_USERS=${BENCH_USERS:-200}
BENCH_CONNS=${BENCH_CONNS:-64}
BENCH_PARK=${BENCH_PARK:-10000}
BIN=$BUILD/bin
echo "== signature path (msspd + mss-phone --demo + mss-ap bench, $BENCH_CONNS connections; baseline: nginx, same client and TLS)"
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  scripts/deps.sh bench >/dev/null || { echo "nginx missing: signature-path figures skipped"; exit 0; }
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
users=$(( BENCH_PARK > BENCH_USERS ? BENCH_PARK : BENCH_USERS ))
# The data directory (users, keys, certificates) is made once and kept in
# build/ (never committed): creating 10,000 users takes a while.
DATA=$BUILD/bench-data-$users
# (made again when it predates the ME accounts the mesh figure needs)
if [ ! -f "$DATA/msspd.conf" ] || [ ! -f "$DATA/admin/admin.conf" ]; then
  rm -rf "$DATA"
  echo "creating $users bench users in $DATA (once)"
  "$BIN/msspd" init --data-dir "$DATA" --demo --base-port 17443 --bench-users "$users" >/dev/null || exit 1
  # a load generator is one address with many connections; no AP rate limit
  sed -i -e 's/^\[node\]$/[node]\nconns_per_ip = 20000/' -e 's/^rate = .*/rate = 0/' "$DATA/msspd.conf"
  cp "$DATA/mssp.db" "$DATA/mssp.db.pristine"
fi
# every run starts from the store as init left it: a previous run's parked
# transactions would still hold the users (406) until their TimeOut
if [ -f "$DATA/mssp.db.pristine" ]; then
  rm -f "$DATA/mssp.db" "$DATA/mssp.db-wal" "$DATA/mssp.db-shm"
  cp "$DATA/mssp.db.pristine" "$DATA/mssp.db"
fi
MESH_A=$BUILD/bench-mesh-a
if [ ! -f "$MESH_A/msspd.conf" ]; then
  rm -rf "$MESH_A"
  "$BIN/msspd" init --data-dir "$MESH_A" --demo --base-port 17543 --mssp-id http://bench-a.test/ >/dev/null || exit 1
  sed -i -e 's/^\[node\]$/[node]\nconns_per_ip = 20000/' -e 's/^rate = .*/rate = 0/' "$MESH_A/msspd.conf"
fi
# both mesh listeners trust both nodes' CAs (a bundle in each tls/)
for d in "$DATA" "$MESH_A"; do
  cat "$DATA/tls/ca.crt" "$MESH_A/tls/ca.crt" >"$d/tls/mesh-ca.pem"
  # a data directory made before the mesh existed has no [mesh] section
  grep -q '^\[mesh\]' "$d/msspd.conf" || printf '\n[mesh]\nclient_ca = tls/ca.crt\n' >>"$d/msspd.conf"
  sed -i "/^\[mesh\]/,/^\[/ s|^client_ca = .*|client_ca = tls/mesh-ca.pem|" "$d/msspd.conf"
done
W=$(mktemp -d)
pids=()
bench_cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5
                  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap bench_cleanup EXIT
"$BIN/msspd" --data-dir "$DATA" >"$W/msspd.log" 2>&1 &
MSSPD=$!; pids+=("$MSSPD")
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:17446/healthz >/dev/null 2>&1 && break; sleep 0.1; done
only=$(for i in $(seq 0 $((BENCH_USERS - 1))); do printf '+%d,' $((35849000000 + i)); done)
"$BIN/mss-phone" --data-dir "$DATA" --demo --only "${only%,}" --log "$W/phone.log" >/dev/null 2>&1 &
PHONE=$!; pids+=("$PHONE")
for _ in $(seq 1 300); do
  n=$(grep -c '^READY' "$W/phone.log" 2>/dev/null || true)
  [ "${n:-0}" -ge "$BENCH_USERS" ] && break; sleep 0.1
done
AP=("$BIN/mss-ap" --config "$DATA/demo/mss-ap.conf")
"${AP[@]}" bench --users-from +35849000000 --users "$BENCH_USERS" --connections "$BENCH_CONNS" \
  --duration 2 --profile mss:demo:authn:loa2:app >/dev/null 2>&1   # warm-up
echo "-- msspd: complete synchronous signatures (ECDSA P-256, verified)"
"${AP[@]}" bench --users-from +35849000000 --users "$BENCH_USERS" --connections "$BENCH_CONNS" \
  --duration "$SECS" --profile mss:demo:authn:loa2:app
echo "-- msspd: MSS_StatusReq"
"${AP[@]}" bench --op status --users-from +35849000000 --users "$BENCH_USERS" \
  --connections "$BENCH_CONNS" --duration "$SECS" --profile mss:demo:authn:loa2:app

# Roaming (TS 102 207): the same signatures asked of a second MSSP, A,
# whose routing table sends +35849 to this one (B) over the mesh: A keeps
# its own transaction and forwards; B prompts.  Baseline: the direct
# figure above.  A is made once (build/bench-mesh-a); B's peer record for
# A is written into B's store each run (it starts from the pristine copy).
mesh_peer() { # DIR PEER_DIR PEER_ID PEER_PORT ROUTE
  local out ap
  out=$("$BIN/msspctl" --data-dir "$1" --account admin peer put "$3" --url "https://127.0.0.1:$4" \
        --cert "$2/tls/server.crt" --ca-file "$PWD/$2/tls/ca.crt" 2>&1)
  ap=$(sed -n 's/.*approval approve \(A[0-9a-f]*\).*/\1/p' <<<"$out")
  [ -n "$ap" ] && "$BIN/msspctl" --data-dir "$1" --account admin2 approval approve "$ap" >/dev/null
  [ -z "$5" ] && return 0
  out=$("$BIN/msspctl" --data-dir "$1" --account admin route put "$5" --peer "$3" 2>&1)
  ap=$(sed -n 's/.*approval approve \(A[0-9a-f]*\).*/\1/p' <<<"$out")
  [ -n "$ap" ] && "$BIN/msspctl" --data-dir "$1" --account admin2 approval approve "$ap" >/dev/null
}
"$BIN/msspd" --data-dir "$MESH_A" >"$W/msspd-a.log" 2>&1 &
MSSPD_A=$!; pids+=("$MSSPD_A")
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:17546/healthz >/dev/null 2>&1 && break; sleep 0.1; done
B_ID=$(awk -F' *= *' '/^mssp_id/ { print $2 }' "$DATA/msspd.conf")
mesh_peer "$MESH_A" "$DATA" "${B_ID:-http://openmssp.local/}" 17449 +35849 >/dev/null 2>&1 || true
mesh_peer "$DATA" "$MESH_A" http://bench-a.test/ 17549 "" >/dev/null 2>&1 || true
sleep 2   # both tables reload within a second
AP_A=("$BIN/mss-ap" --config "$MESH_A/demo/mss-ap.conf")
echo "-- roamed through a second MSSP (A -> mesh -> this one; baseline: the direct figure above)"
"${AP_A[@]}" bench --users-from +35849000000 --users "$BENCH_USERS" --connections "$BENCH_CONNS" \
  --duration "$SECS" --profile mss:demo:authn:loa2:app || echo "roamed figure not measured (see $W/msspd-a.log)"
kill "$MSSPD_A" 2>/dev/null || true

# baseline: nginx, 2 workers (as msspd), the same certificates, mutual TLS
mkdir -p "$W/ng"
cat >"$W/ng/nginx.conf" <<NG
worker_processes 2;
pid $W/ng/nginx.pid;
error_log $W/ng/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $W/ng; proxy_temp_path $W/ng; fastcgi_temp_path $W/ng;
  uwsgi_temp_path $W/ng; scgi_temp_path $W/ng;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:17450 ssl;
    ssl_certificate $PWD/$DATA/tls/server.crt;
    ssl_certificate_key $PWD/$DATA/tls/server.key;
    ssl_client_certificate $PWD/$DATA/tls/ca.crt;
    ssl_verify_client on;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { default_type text/plain; return 200 "ok\n"; }
  }
}
NG
"$NGINX" -c "$W/ng/nginx.conf" -p "$W/ng" -g 'daemon off;' 2>"$W/ng/stderr" &
pids+=($!)
sleep 1
echo "-- baseline: nginx static GET over the same mutual TLS, same client"
"${AP[@]}" bench --op get --get-url https://localhost:17450/ --connections "$BENCH_CONNS" --duration "$SECS"

# memory per parked synchronous request: the phones are stopped, so each
# request waits (a prompt queued for an offline device) until TimeOut.
# Parked in batches of 500 (one mss-ap each, so handshakes do not pile up
# past the server's handshake deadline); the figure is the MARGINAL cost
# between half and all of them, so that one-time growth (thread arenas,
# caches, the handshake peak) is not spread over the requests.
kill "$PHONE" 2>/dev/null || true; wait "$PHONE" 2>/dev/null || true
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
parked_now() { curl -s http://127.0.0.1:17446/metrics | awk '$1 == "mssp_parked_requests" { print $2 }'; }
batch=500
nb=$(( BENCH_PARK / batch )); [ "$nb" -ge 2 ] || nb=2
half_rss=0 half_parked=0
for i in $(seq 0 $((nb - 1))); do
  "${AP[@]}" bench --op park --count "$batch" --msisdn-from "+$((35849000000 + i * batch))" \
    --timeout 300 --duration 900 --profile mss:demo:authn:loa2:app >"$W/park.$i" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 600); do grep -q '^parked=' "$W/park.$i" && break; sleep 0.1; done
  if [ "$i" -eq $(( nb / 2 - 1 )) ]; then
    sleep 2; half_rss=$(rss "$MSSPD"); half_parked=$(parked_now)
  fi
done
sleep 2
all_rss=$(rss "$MSSPD"); all_parked=$(parked_now)
d=$(( all_parked - half_parked ))
echo "-- msspd: $all_parked requests parked (RSS $all_rss KiB; $half_parked parked at $half_rss KiB):" \
     "$(( d > 0 ? (all_rss - half_rss) * 1024 / d : 0 )) bytes per additional parked request (its mutual TLS connection included)"
exit 0
