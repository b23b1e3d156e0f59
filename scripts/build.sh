#!/usr/bin/env bash
# Installs the build's Debian packages (if missing), configures and builds periscope.
# BUILD_DIR (default: build) and BUILD_TYPE (default: RelWithDebInfo) may be set; extra
# arguments go to cmake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
cmake --build "$BUILD_DIR" -j2
