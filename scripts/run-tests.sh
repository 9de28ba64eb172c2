#!/usr/bin/env bash
# run-tests.sh - run every unit test binary and the message corpus, then
# print one closing line "N passed, N failed".
#
# BUILD (default build/debug) holds tests/ and bin/.  A test binary that
# crashes or exits non-zero without reporting a failure counts as a failure.
set -u
BUILD=${BUILD:-build/debug}
export MSSP_SHARED=${MSSP_SHARED:-../shared}
export MSSP_BIN=$BUILD/bin
pass=0 fail=0 skip=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  CMOCKA_MESSAGE_OUTPUT=TAP "$t" >"$log" 2>&1
  rc=$?
  p=$(grep -c '^ok ' "$log")
  f=$(grep '^not ok ' "$log" | grep -vc '# SKIP')
  k=$(grep '^not ok ' "$log" | grep -c '# SKIP')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1   # crashed or sanitizer report: count it, show it
  fi
  if [ "$f" -gt 0 ]; then
    echo "FAIL $name ($f failed)"
    grep -v '^ok ' "$log" | head -40
  else
    echo "ok   $name ($p tests$( [ "$k" -gt 0 ] && echo ", $k skipped"))"
  fi
  pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + k))
done

# Integration tests: shell scripts that start real processes (msspd,
# mss-phone, mss-ap, curl, openssl) on loopback ports and print TAP.
# MSSP_INTEGRATION=0 skips them (quick unit-only runs).
if [ "${MSSP_INTEGRATION:-1}" != 0 ]; then
  for t in tests/integration/test_*.sh; do
    [ -f "$t" ] || continue
    name=$(basename "$t" .sh)
    BUILD=$BUILD bash "$t" >"$log" 2>&1
    rc=$?
    p=$(grep -c '^ok ' "$log")
    f=$(grep '^not ok ' "$log" | grep -vc '# SKIP')
    k=$(grep '^not ok ' "$log" | grep -c '# SKIP')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
      f=1
    fi
    if [ "$f" -gt 0 ]; then
      echo "FAIL $name ($f failed)"
      grep -v '^ok ' "$log" | tail -60
    else
      echo "ok   $name ($p tests$( [ "$k" -gt 0 ] && echo ", $k skipped"))"
    fi
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + k))
  done
fi

# Message corpus: tests/data/corpus/EXPECTED, via msspctl decode.
if [ -f tests/data/corpus/EXPECTED ]; then
  out=$(scripts/run-corpus.sh 2>&1)
  p=$(printf '%s\n' "$out" | grep -c '^ok ')
  f=$(printf '%s\n' "$out" | grep -c '^FAIL ')
  printf '%s\n' "$out" | grep '^FAIL ' | head -40
  echo "ok   corpus ($p cases)"
  pass=$((pass + p)); fail=$((fail + f))
fi

if [ "$skip" -gt 0 ]; then
  echo "$pass passed, $fail failed, $skip skipped"
else
  echo "$pass passed, $fail failed"
fi
[ "$fail" -eq 0 ]
