#!/usr/bin/env bash
# The test command: installs what the build needs, builds, runs every test (unit and end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh "$@"
BUILD_DIR=${BUILD_DIR:-build}
ctest --test-dir "$BUILD_DIR" -j2 --output-on-failure --timeout 300
