#!/usr/bin/env bash
# The echo-server NodePort demo in a sandbox of network namespaces (Debian, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
swift build -c release --product nftproxy >/dev/null
swift build -c release --product nftproxy-echo >/dev/null
swift build -c release --product nftproxy-demo >/dev/null
exec "$(swift build -c release --show-bin-path)/nftproxy" demo "$@"
