#!/usr/bin/env bash
# fuzz.sh - build every tests/fuzz/fuzz_*.c with clang + libFuzzer + ASan +
# UBSan and run each for FUZZ_SECONDS (default 20) on a copy of its corpus
# (tests/fuzz/corpus/<name>/, plus the shared ETSI samples and the message
# corpus for the codecs).  Exits non-zero if any target finds a crash; the
# reproducer is left in build/fuzz/artifacts/.
#   scripts/fuzz.sh [TARGET...]     e.g. scripts/fuzz.sh soap json
set -euo pipefail
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
SHARED=${MSSP_SHARED:-../shared}
CLANG=${CLANG:-clang-14}
command -v "$CLANG" >/dev/null || scripts/deps.sh fuzz
OUT=build/fuzz
mkdir -p "$OUT/artifacts"
# The same libraries as the Makefile's PKGS (every target links all of src/).
PKGS="$(sed -n 's/^PKGS *:= *//p' Makefile)"
# shellcheck disable=SC2086
CFLAGS="-std=c17 -D_GNU_SOURCE -Isrc -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined $(pkg-config --cflags $PKGS)"
# shellcheck disable=SC2086
LIBS="$(pkg-config --libs $PKGS) -lwslay -lpthread"
LIB_SRC=$(ls src/util/*.c src/net/*.c src/mss/*.c src/pki/*.c src/store/*.c src/roles/*.c 2>/dev/null || true)

# The library is compiled once (objects reused while their source is
# unchanged) and each target links against it.
mkdir -p "$OUT/obj"
objs=()
for src in $LIB_SRC; do
  obj="$OUT/obj/$(echo "$src" | tr / _).o"
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ src/util/limits.h -nt "$obj" ]; then
    # shellcheck disable=SC2086
    "$CLANG" $CFLAGS -c "$src" -o "$obj"
  fi
  objs+=("$obj")
done
rm -f "$OUT/libfuzz.a"
ar rcs "$OUT/libfuzz.a" "${objs[@]}"

# Optional arguments: target names (soap, json, http, profile, ...).
want=" $* "
status=0
for h in tests/fuzz/fuzz_*.c; do
  name=$(basename "$h" .c); target=${name#fuzz_}
  if [ $# -gt 0 ] && [[ "$want" != *" $target "* ]]; then continue; fi
  echo "== $name: build"
  # shellcheck disable=SC2086
  "$CLANG" $CFLAGS "$h" "$OUT/libfuzz.a" $LIBS -o "$OUT/$name"
  work=$(mktemp -d)
  [ -d "tests/fuzz/corpus/$target" ] && cp -r "tests/fuzz/corpus/$target/." "$work/"
  seeds=()
  case "$target" in
    soap) seeds+=("$SHARED/etsi/samples/soap"); [ -d tests/data/corpus ] && seeds+=(tests/data/corpus) ;;
    json) seeds+=("$SHARED/etsi/samples/rest" "$SHARED/etsi/samples/rest-gen-material"); [ -d tests/data/corpus ] && seeds+=(tests/data/corpus) ;;
  esac
  existing=()
  for s in "${seeds[@]}"; do [ -d "$s" ] && existing+=("$s"); done
  echo "== $name: run ${FUZZ_SECONDS}s"
  if ! "$OUT/$name" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
      -max_len=70000 -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$name-" \
      "$work" "${existing[@]}" >"$OUT/$name.log" 2>&1; then
    echo "!! $name found a problem:"; tail -40 "$OUT/$name.log"; status=1
  fi
  grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$OUT/$name.log" | sed "s/^/   $name /" || true
  rm -rf "$work"
done
exit $status
