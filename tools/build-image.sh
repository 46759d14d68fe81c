#!/usr/bin/env bash
# Builds the nftproxy container image (deploy/Containerfile) with podman from a built
# binary: the binary, the shared libraries ldd says it loads, and the dynamic loader,
# each at its own path, and nothing else.
#
#   tools/build-image.sh                         # release build, tag localhost/nftproxy:latest
#   tools/build-image.sh --binary PATH --tag T   # an existing binary (tests use the debug one)
set -euo pipefail
cd "$(dirname "$0")/.."
binary="" tag="localhost/nftproxy:latest"
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    *) echo "usage: $0 [--binary PATH] [--tag NAME]" >&2; exit 2 ;;
  esac
done
command -v podman >/dev/null || { echo "podman is missing (apt-get install podman)" >&2; exit 1; }
if [ -z "$binary" ]; then
  swift build -c release --product nftproxy >/dev/null
  binary="$(swift build -c release --show-bin-path)/nftproxy"
fi
[ -x "$binary" ] || { echo "not an executable: $binary" >&2; exit 1; }

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
rootfs="$context/rootfs"
install -D -m 0755 "$binary" "$rootfs/usr/local/bin/nftproxy"
# Every library the binary loads (resolved paths), and the loader ldd names.
ldd "$binary" | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(0x/ { print $1 }' | sort -u | while read -r library; do
  real=$(readlink -f "$library")
  install -D -m 0755 "$real" "$rootfs$library"
  [ "$real" = "$library" ] || install -D -m 0755 "$real" "$rootfs$real"
done
mkdir -p "$rootfs/tmp" "$rootfs/etc" "$rootfs/proc" "$rootfs/sys"
echo "root:x:0:0:root:/:/usr/local/bin/nftproxy" > "$rootfs/etc/passwd"
cp deploy/Containerfile "$context/Containerfile"
podman build --quiet -t "$tag" -f "$context/Containerfile" "$context"
echo "built $tag from $binary ($(du -sh "$rootfs" | cut -f1) unpacked)"
