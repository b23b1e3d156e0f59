#!/usr/bin/env bash
# libFuzzer targets for every parser of outside input (tests/fuzz, docs/fuzzing.md): builds them
# with clang into build-fuzz/ and runs each for SECONDS (default 10) on a scratch copy of its seed
# corpus. Prints one line per target; exits non-zero on any crash, with the reproducer's path.
#
#   scripts/fuzz.sh            # CI: 10 s per target
#   scripts/fuzz.sh 300        # the longer run
#
# Installs what it needs first (scripts/setup-deps.sh fuzz: clang-14, libclang-rt-14-dev).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-deps.sh fuzz
SECONDS_PER_TARGET=${1:-10}
BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
WORK_DIR=${FUZZ_WORK_DIR:-$BUILD_DIR/runs}
TARGETS=(fuzz_manhole_line fuzz_manhole_framed fuzz_profile_readers fuzz_http_request)

CC_BIN=$(command -v clang-14 || command -v clang || true)
CXX_BIN=$(command -v clang++-14 || command -v clang++ || true)
if [[ -z "$CC_BIN" || -z "$CXX_BIN" ]]; then
  echo "fuzz.sh: clang not found; install clang-14 and libclang-rt-14-dev (bash scripts/setup-deps.sh fuzz)" >&2
  exit 2
fi
if ! echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' |
    "$CXX_BIN" -x c++ -fsanitize=fuzzer - -o /dev/null 2>/dev/null; then
  echo "fuzz.sh: $CXX_BIN cannot link -fsanitize=fuzzer; install libclang-rt-14-dev (bash scripts/setup-deps.sh fuzz)" >&2
  exit 2
fi

LAUNCHER=()
if command -v ccache >/dev/null; then LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
GENERATOR=()
if command -v ninja >/dev/null; then GENERATOR=(-G Ninja); fi
mkdir -p "$BUILD_DIR"
if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  if ! CC="$CC_BIN" CXX="$CXX_BIN" cmake -S tests/fuzz -B "$BUILD_DIR" "${GENERATOR[@]}" "${LAUNCHER[@]}" \
      >"$BUILD_DIR/configure.log" 2>&1; then
    cat "$BUILD_DIR/configure.log" >&2
    exit 2
  fi
fi
if ! nice -n 10 cmake --build "$BUILD_DIR" -j"${FUZZ_JOBS:-2}" >"$BUILD_DIR/build.log" 2>&1; then
  cat "$BUILD_DIR/build.log" >&2
  echo "fuzz.sh: building the fuzz targets failed" >&2
  exit 2
fi

dict_for() {
  case "$1" in
    fuzz_manhole_*) echo tests/fuzz/manhole.dict ;;
    fuzz_profile_readers) echo tests/fuzz/profile_readers.dict ;;
    fuzz_http_request) echo tests/fuzz/http.dict ;;
  esac
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0
printf '%-22s %12s %10s  %s\n' target executions exec/s result
for target in "${TARGETS[@]}"; do
  run="$WORK_DIR/$target"
  rm -rf "$run"
  mkdir -p "$run/corpus" "$run/artifacts"
  cp tests/fuzz/corpus/"$target"/* "$run/corpus/"  # a scratch copy: the committed corpus stays small
  rc=0
  nice -n 10 "$BUILD_DIR/$target" -dict="$(dict_for "$target")" -max_total_time="$SECONDS_PER_TARGET" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$run/artifacts/" "$run/corpus" \
    >"$run/log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$run/log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$run/log" | tail -1)
  artifacts=$(find "$run/artifacts" -type f | sort)
  if [[ $rc -ne 0 || -n "$artifacts" ]]; then
    failed=1
    printf '%-22s %12s %10s  %s\n' "$target" "${execs:-?}" "${speed:-?}" "CRASH (exit $rc), log: $run/log"
    grep -E 'ERROR: |runtime error|invariant failed|re-reading' "$run/log" | head -5 | sed 's/^/    /' || true
    for a in $artifacts; do
      echo "    reproducer: $a   (run: $BUILD_DIR/$target $a)"
    done
  else
    printf '%-22s %12s %10s  %s\n' "$target" "${execs:-?}" "${speed:-?}" ok
  fi
done
exit $failed
