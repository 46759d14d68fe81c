#!/usr/bin/env bash
# Coverage-guided fuzzing of the input decoder (KubeObjectDecoder.add) with libFuzzer.
#
#   tools/fuzz.sh SECONDS [extra libFuzzer flags]
#
# Builds tools/fuzz with -sanitize=fuzzer, seeds a corpus from examples/, tools/fuzz/seeds and
# the YAML/JSON literals of the tests, and runs for SECONDS with a memory limit and a per-input
# timeout. The corpus grows in $FUZZ_RUN/corpus (default .build-fuzz/run, kept between runs);
# a crash, hang or memory blow-up leaves its input in $FUZZ_RUN/findings and fails the script.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:?usage: tools/fuzz.sh SECONDS [libFuzzer flags]}
shift
work=${FUZZ_RUN:-.build-fuzz/run}
scratch=$PWD/.build-fuzz/build
mkdir -p "$work/corpus" "$work/seeds" "$work/findings"

if ! (cd tools/fuzz && swift build -c release -Xswiftc -sanitize=fuzzer --scratch-path "$scratch") \
    >"$work/build.log" 2>&1; then
  cat "$work/build.log"; echo "fuzz: build failed"; exit 1
fi
binary=$(cd tools/fuzz && swift build -c release -Xswiftc -sanitize=fuzzer --scratch-path "$scratch" --show-bin-path)/nftproxy-fuzz

# Seeds: whole example files, and each multi-line string literal of the tests that holds a
# Kubernetes object (interpolations stay as written; they are seeds, not valid inputs).
cp examples/*.yaml tools/fuzz/seeds/* "$work/seeds/"
awk -v dir="$work/seeds" '
  /"""/ {
    if (inside) {
      match($0, /^ */); indent = RLENGTH
      if (text ~ /kind|apiVersion|addressType|clusterIP/) {
        n++; f = dir "/test-" n ".yaml"
        for (i = 1; i <= count; i++) print substr(lines[i], indent + 1) > f
        close(f)
      }
      inside = 0; text = ""; count = 0
    } else if ($0 ~ /"""$/) { inside = 1 }
    next
  }
  inside { lines[++count] = $0; text = text $0 "\n" }
' Tests/*/*.swift

"$binary" "$work/corpus" "$work/seeds" \
  -dict=tools/fuzz/kube.dict -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=16384 \
  -artifact_prefix="$work/findings/" -print_final_stats=1 "$@" 2>"$work/fuzz.log"
status=$?
grep -E "^#[0-9]+.*(DONE|pulse)|stat::|SUMMARY|ERROR" "$work/fuzz.log" | tail -12
if [ "$status" -ne 0 ]; then
  echo "fuzz: finding (exit $status); input in $work/findings, log in $work/fuzz.log"
  exit 1
fi
echo "fuzz: no crash, hang or memory blow-up in ${seconds}s"
