#!/usr/bin/env bash
# The unit and end-to-end tests again, with the agent, the viewer and the tests built under
# AddressSanitizer + UndefinedBehaviorSanitizer (hosts preload the ASan runtime before the agent).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-asan} BUILD_TYPE=Debug bash scripts/build.sh -DPERISCOPE_SANITIZE=address \
  -DPERISCOPE_BUILD_BENCH=OFF
# No leak checking: the agent leaks on purpose what must outlive exit and fork (registries, request
# tables, a forked child's copy of the parent's agent).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir "${BUILD_DIR:-build-asan}" -j2 --output-on-failure --timeout 300
