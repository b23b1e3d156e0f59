#!/usr/bin/env bash
# Installs the Debian 12 packages periscope needs to build, test and demo.
# Idempotent: packages already installed are skipped; nothing else is downloaded.
# Usage: setup-deps.sh [bench|fuzz]: also what scripts/bench.sh's peers (gperftools, gdb) or the
# fuzzers (clang's libFuzzer) need.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libboost-dev libboost-system-dev
  libunwind-dev libdw-dev libelf-dev
  prometheus-cpp-dev zlib1g-dev
  libcli11-dev libedit-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  socat procps util-linux bsdutils elfutils curl
  golang-go chromium prometheus
  redis-server nginx-light postgresql memcached libc6-dbg linux-perf
)

case "${1:-}" in
  bench) PACKAGES+=(libgoogle-perftools-dev gdb heaptrack) ;;
  fuzz) PACKAGES+=(clang-14 libclang-rt-14-dev) ;;
  "") ;;
  *) echo "setup-deps: unknown set '$1' (bench or fuzz)" >&2; exit 2 ;;
esac

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

echo "setup-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
