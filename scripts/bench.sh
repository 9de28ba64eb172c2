#!/usr/bin/env bash
# bench.sh - performance figures, each beside a baseline measured in the same
# run (never a timed assertion).  BENCH_SECONDS per figure (default 2).
set -eu
BUILD=${BUILD:-build/release}
echo "== message layer (bench_codec)"
"$BUILD/bench/bench_codec" "${BENCH_SECONDS:-2}"
