#!/usr/bin/env bash
# The whole test suite: unit, golden, kernel (private network namespaces) and end-to-end.
# Run as root on Debian; kernel and end-to-end tests skip (and say so) when not root.
set -uo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh || exit 1
start=$(date +%s)
log=$(mktemp)
if ! swift build --build-tests >"$log" 2>&1; then
  cat "$log"; rm -f "$log"; echo "build failed"; exit 1
fi
grep -E "warning:|error:" "$log" | sort -u || true
rm -f "$log"
echo "build finished in $(( $(date +%s) - start ))s"
swift test --skip-build
status=$?
echo "test suite finished in $(( $(date +%s) - start ))s (build included)"
exit "$status"
