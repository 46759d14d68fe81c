#!/usr/bin/env bash
# The whole test suite: unit, golden, kernel (private network namespaces) and end-to-end.
# Run as root on Debian; kernel and end-to-end tests skip (and say so) when not root.
set -uo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh || exit 1
start=$(date +%s)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! swift build --build-tests >"$log" 2>&1; then
  cat "$log"; echo "build failed"; exit 1
fi
grep -E "warning:|error:" "$log" | sort -u || true
echo "build finished in $(( $(date +%s) - start ))s"
# A short smoke of the decoder fuzz target (tools/fuzz.sh; docs/fuzzing.md): no crash, hang or
# memory blow-up in 30 s from the seeds. Its verdict is one line here; the status counts below.
fuzz_status=0
if FUZZ_RUN=.build-fuzz/smoke tools/fuzz.sh 30 >"$log" 2>&1; then
  tail -1 "$log"
else
  cat "$log"; echo "fuzz smoke failed"; fuzz_status=1
fi
# All tests are XCTest; the Swift Testing runner would only report an empty run.
swift test --skip-build --disable-swift-testing 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
echo "test suite finished in $(( $(date +%s) - start ))s (build included)"
# XCTest's grand total, as one plain closing line.
total=$(grep -E "Executed [0-9]+ tests?, with" "$log" | tail -1)
executed=$(sed -E 's/.*Executed ([0-9]+) tests?.*/\1/' <<<"$total")
skipped=$(grep -oE "[0-9]+ tests? skipped" <<<"$total" | grep -oE "^[0-9]+" || echo 0)
failed=$(grep -cE "^Test Case '.*' failed" "$log")
if [ -n "$total" ]; then
  echo "tests: $(( executed - skipped - failed )) passed, $failed failed, $skipped skipped"
fi
[ "$status" -eq 0 ] && status=$fuzz_status
exit "$status"
