#!/usr/bin/env bash
# Installs the system packages nftproxy builds against and its tests use (Debian, as root).
# libnftnl/libmnl and libyaml (YAML input) are linked; nftables, iproute2 and conntrack are
# for tests and dumps only; openssl makes the stand-in API server's test certificates,
# python3-kubernetes (the official Python client) checks the stand-in's wire protocol,
# podman builds the container image (deploy/), systemd's analyzer checks the unit, curl
# asks health-check node ports as a load balancer would.
# kubectl comes with the machine image.
set -euo pipefail
packages=(libnftnl-dev libmnl-dev libyaml-dev nftables iproute2 conntrack pkg-config openssl python3-kubernetes podman systemd curl)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "swift is not on PATH (expected the Swift 6 toolchain, e.g. /opt/swift/usr/bin)"; exit 1; }
