#!/usr/bin/env bash
# run-corpus.sh - decode every file of tests/data/corpus with msspctl and
# compare with the expected outcome in tests/data/corpus/EXPECTED
# (format: path<TAB>expected<TAB>reason; expected is ok, _NNN,
# VersionMismatch, MustUnderstand or 413).  One line per case: "ok ..." or
# "FAIL ...".
set -u
BIN=${MSSP_BIN:-build/debug/bin}
dir=tests/data/corpus
status=0
while IFS=$'\t' read -r path want why; do
  case "$path" in ''|'#'*) continue ;; esac
  if [ ! -f "$dir/$path" ]; then
    echo "FAIL $path: file missing"; status=1; continue
  fi
  out=$("$BIN/msspctl" decode "$dir/$path" 2>&1)
  rc=$?
  if [ $rc -eq 0 ]; then
    got=ok
  elif [ $rc -eq 1 ]; then
    got=$(printf '%s' "$out" | sed -n 's/^{"Fault":{"Code":"\([^"]*\)".*/\1/p')
    [ -n "$got" ] || got="unparsable:$out"
  else
    got="exit$rc"
  fi
  if [ "$got" = "$want" ]; then
    echo "ok $path ($want)"
  else
    echo "FAIL $path: expected $want, got $got ($why)"; status=1
  fi
done < "$dir/EXPECTED"
# Every corpus file must have an expectation.
for f in $(cd "$dir" && find . -type f ! -name EXPECTED ! -name README.md | sed 's|^\./||' | sort); do
  grep -q "^$f	" "$dir/EXPECTED" || { echo "FAIL $f: no line in EXPECTED"; status=1; }
done
exit $status
