#!/usr/bin/env bash
# lint.sh - mechanical checks: banned functions (style.md habit 14), then
# cppcheck when it is installed.
set -u
status=0
banned='\b(sprintf|vsprintf|strcpy|strcat|strncpy|strtok|atoi|atol|gets)[[:space:]]*\('
if grep -nE "$banned" src/*/*.c src/*/*.h; then
  echo "lint: banned function used (see docs/style.md habit 14)"; status=1
fi
if command -v cppcheck >/dev/null; then
  cppcheck -q --error-exitcode=1 --enable=warning,portability --inline-suppr \
    -Isrc --suppress=missingIncludeSystem src || status=1
fi
exit $status
