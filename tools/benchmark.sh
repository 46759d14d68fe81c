#!/usr/bin/env bash
# Scale benchmark of nftproxy (docs/benchmarks.md), rules only, no traffic.
#
# For N = 1,000 / 10,000 / 30,000 services x 10 endpoints (BENCH_SERVICES overrides N),
# the endpoints spread over BENCH_NODES nodes (1,000) of which the benchmark's node is one:
#   - `nftproxy-bench run`: nftproxy's own path, in-process, in a private namespace it
#     creates and deletes itself (compile, full sync, unchanged sync, single-endpoint
#     changes, restart, peak memory); one process per N;
#   - the baselines, each in a fresh namespace created here: `nft -f` of (a) our own
#     dump and (b) the same services in kube-proxy's nftables layout, timed by
#     `nftproxy-bench load` (CLOCK_MONOTONIC around `ip netns exec NS nft -f FILE`)
#     with a timeout of BENCH_TIMEOUT seconds (300), reported as "> 300 s";
#   - kube-proxy's layout with a chain per endpoint, at the smallest N only;
#   - the worst case for nftproxy at the middle N (10,000): endpoints without node names,
#     so that every endpoint may be local and lands in hairpin-endpoints (run and (a)).
#   - the end-to-end rows (`nftproxy-bench e2e`): whole `nftproxy dump -f` and `apply -f`
#     processes on realistic `kubectl get -o json|yaml` files of BENCH_E2E_SERVICES services
#     (1,000 / 10,000 / 50,000; YAML up to BENCH_E2E_YAML_MAX = 10,000), BENCH_E2E_REPEATS (3)
#     runs each, every process killed after BENCH_E2E_TIMEOUT seconds (300) or above
#     BENCH_E2E_MEMORY MiB (8192), with python's json.load of each JSON file as a reference.
#     BENCH_E2E=0 leaves them out; BENCH_E2E_ONLY=1 runs only them.
# Then prints the markdown tables and writes them into docs/benchmarks.md between the
# BEGIN/END RESULTS markers (engine rows) and BEGIN/END E2E RESULTS markers (end-to-end rows).
#
# Run as root. All kernel work happens in network namespaces created for it (named
# nftp-bench-*), never in the machine's own; they are removed on exit, also on failure
# or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

services=(${BENCH_SERVICES:-1000 10000 30000})
endpoints=10
nodes=${BENCH_NODES:-1000}
timeout=${BENCH_TIMEOUT:-300}
changes=${BENCH_CHANGES:-20}
scratch=${BENCH_SCRATCH:-.build-bench}
doc=docs/benchmarks.md
e2e=${BENCH_E2E:-1}
e2e_only=${BENCH_E2E_ONLY:-0}
e2e_services=${BENCH_E2E_SERVICES:-1000 10000 50000}
e2e_repeats=${BENCH_E2E_REPEATS:-3}
e2e_formats=${BENCH_E2E_FORMATS:-json,yaml}
e2e_timeout=${BENCH_E2E_TIMEOUT:-300}
e2e_memory=${BENCH_E2E_MEMORY:-8192}
e2e_yaml_max=${BENCH_E2E_YAML_MAX:-10000}
bench="$scratch/release/nftproxy-bench"

if [[ $(id -u) != 0 ]]; then
  echo "tools/benchmark.sh: run as root (it creates network namespaces)" >&2
  exit 1
fi

results=$(mktemp -d /tmp/nftproxy-bench.XXXXXX)
namespaces=()   # created here for the baselines
children=()     # pids of the nftproxy-bench processes started here

# Ends what is still running (our children, then whatever runs inside our namespaces,
# all by pid), and removes our namespaces: those created here and those of
# `nftproxy-bench run` (nftp-bench-<its pid>-*) that a killed run could not remove.
cleanup() {
  local status=$?
  trap - EXIT INT TERM HUP
  local leftovers=("${namespaces[@]}") pid name
  for pid in "${children[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${children[@]}"; do
    wait "$pid" 2>/dev/null || true
    while read -r name _; do
      [[ $name == "nftp-bench-$pid-"* ]] && leftovers+=("$name")
    done < <(ip netns list 2>/dev/null)
  done
  for name in "${leftovers[@]}"; do
    [[ -e /run/netns/$name ]] || continue
    for pid in $(ip netns pids "$name" 2>/dev/null); do
      kill -TERM "$pid" 2>/dev/null || true
    done
    for _ in $(seq 50); do
      [[ -z $(ip netns pids "$name" 2>/dev/null) ]] && break
      sleep 0.2
    done
    for pid in $(ip netns pids "$name" 2>/dev/null); do
      kill -KILL "$pid" 2>/dev/null || true
    done
    ip netns exec "$name" nft flush ruleset 2>/dev/null || true
    ip netns delete "$name" 2>/dev/null || true
  done
  rm -f "$results"/*.nft
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Runs nftproxy-bench in the background and waits for it, so that a signal reaches
# the trap at once and the cleanup knows the pid.
nftproxy_bench() {
  "$bench" "$@" &
  children+=($!)
  wait "$!"
}

# nftproxy's own path for N services; it creates and deletes its own namespace.
# run_nftproxy N [NODES]
run_nftproxy() {
  local n=$1 k=${2:-$nodes}
  nftproxy_bench run --services "$n" --endpoints "$endpoints" --nodes "$k" --changes "$changes" >"$results/run-$n-$k.json"
}

# `nft -f` of a generated script in a fresh namespace: load_baseline LABEL FORMAT N [NODES].
load_baseline() {
  local label=$1 format=$2 n=$3 k=${4:-$nodes}
  local file="$results/$label-$n-$k.nft" ns="nftp-bench-sh-$$-$label-$n-$k"
  nftproxy_bench generate --services "$n" --endpoints "$endpoints" --nodes "$k" --format "$format" >"$file"
  namespaces+=("$ns")
  ip netns add "$ns"
  nftproxy_bench load --netns "$ns" --file "$file" --label "$label" --services "$n" --endpoints "$endpoints" \
    --nodes "$k" --timeout "$timeout" >"$results/load-$label-$n-$k.json" || true
  ip netns delete "$ns"
  rm -f "$file"
}

start=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -z $(git status --porcelain -- Sources Package.swift 2>/dev/null) ]] || revision+=" (with uncommitted library changes)"
echo "== building (release)"
for product in nftproxy-bench nftproxy; do
  if ! swift build -c release --scratch-path "$scratch" --product "$product" >>"$results/build.log" 2>&1; then
    cat "$results/build.log" >&2
    echo "tools/benchmark.sh: build failed" >&2
    exit 1
  fi
done

# Replaces what lies between <!-- BEGIN $1 --> and <!-- END $1 --> in $doc by the file $2.
write_section() {
  local marker=$1 section=$2
  awk -v section="$section" -v begin="<!-- BEGIN $marker -->" -v end="<!-- END $marker -->" '
    $0 == begin { print; while ((getline line < section) > 0) print line; skipping = 1; next }
    $0 == end { skipping = 0 }
    !skipping { print }
  ' "$doc" >"$results/benchmarks.md"
  if grep -qx "<!-- END $marker -->" "$results/benchmarks.md"; then
    cp "$results/benchmarks.md" "$doc"
  else
    echo "tools/benchmark.sh: no BEGIN/END $marker markers in $doc; not updated" >&2
  fi
}

machine() {
  echo "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), \
$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, kernel $(uname -r), $(nft --version), \
$(swift --version 2>/dev/null | head -1 | sed 's/ (.*//'), release build of commit $revision"
}

if [[ $e2e != 0 ]]; then
  echo "== end-to-end: nftproxy dump -f / apply -f of realistic kubectl output"
  e2e_start=$(date +%s)
  e2e_load=$(cut -d' ' -f1-3 /proc/loadavg)
  e2e_nodes=$nodes
  [[ $e2e_nodes == 0 ]] && e2e_nodes=1000   # endpoints of real pods name their node
  nftproxy_bench e2e --services "$(echo $e2e_services | tr ' ' ',')" --endpoints "$endpoints" --nodes "$e2e_nodes" \
    --formats "$e2e_formats" --repeats "$e2e_repeats" --timeout "$e2e_timeout" --memory-limit "$e2e_memory" \
    --yaml-max-services "$e2e_yaml_max" --output "$results/e2e.json" >/dev/null \
    || echo "tools/benchmark.sh: the end-to-end run ended early; reporting the rows it finished" >&2
  {
    echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC') on this machine: $(machine). Load average before / after: $e2e_load / \
$(cut -d' ' -f1-3 /proc/loadavg). Runs per cell: $e2e_repeats; timeout $e2e_timeout s, memory limit $e2e_memory MiB per process. \
The end-to-end run took $(( $(date +%s) - e2e_start )) s."
    echo
    nftproxy_bench e2e-report --file "$results/e2e.json"
  } >"$results/e2e-section.md"
  write_section "E2E RESULTS" "$results/e2e-section.md"
  echo
  cat "$results/e2e-section.md"
  if [[ $e2e_only != 0 ]]; then
    echo
    echo "JSON results: $results"
    exit 0
  fi
  # The engine rows' own clock and load.
  start=$(date +%s)
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
fi

for n in "${services[@]}"; do
  echo "== $n services x $endpoints endpoints"
  run_nftproxy "$n"
  load_baseline a nftproxy "$n"
  load_baseline b kube-proxy "$n"
done
load_baseline "kube-proxy-endpoint-chains" kube-proxy-endpoint-chains "${services[0]}"
if [[ " ${services[*]} " == *" 10000 "* && $nodes != 0 ]]; then
  echo "== 10000 services x $endpoints endpoints, no node names (worst case for hairpin-endpoints)"
  run_nftproxy 10000 0
  load_baseline a nftproxy 10000 0
fi

nftproxy_bench report --results "$results" >"$results/tables.md"
elapsed=$(( $(date +%s) - start ))

{
  echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC') on this machine: $(machine). Load average before / after: $load_before / \
$(cut -d' ' -f1-3 /proc/loadavg). The whole run took $elapsed s."
  echo
  cat "$results/tables.md"
} >"$results/section.md"
write_section "RESULTS" "$results/section.md"

echo
cat "$results/section.md"
echo
echo "JSON results: $results"
