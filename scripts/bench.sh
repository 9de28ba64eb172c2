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
