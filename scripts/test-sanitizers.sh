#!/usr/bin/env bash
# The unit and end-to-end tests again under a sanitizer, with the agent, the viewer, the tests and
# the test hosts all instrumented (hosts preload the sanitizer's runtime before the agent).
#
# Usage: scripts/test-sanitizers.sh [address|thread]      (default address)
#   address: AddressSanitizer + UndefinedBehaviorSanitizer, every test.
#   thread:  ThreadSanitizer for the agent's own threads (io thread, watchdog, sessions, HTTP)
#            against the host's. Tests whose assertions need stacks read from signal handlers
#            run too, but only their ThreadSanitizer reports count: TSan defers an asynchronous
#            signal until the thread next enters its runtime (a libc call, a lock), so a thread
#            spinning in plain code answers a capture or a sample late or never, and from where
#            TSan ran the handler rather than where the signal landed. Their assertions hold in
#            the normal and the ASan job. Any ThreadSanitizer report from any process fails the
#            job (tests/tsan.supp holds the suppressions, each with its reason).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-address}
case "$MODE" in
  address)
    BUILD_DIR=${BUILD_DIR:-build-asan}
    BUILD_DIR=$BUILD_DIR BUILD_TYPE=Debug bash scripts/build.sh -DPERISCOPE_SANITIZE=address \
      -DPERISCOPE_BUILD_BENCH=OFF
    # No leak checking: the agent leaks on purpose what must outlive exit and fork (registries,
    # request tables, a forked child's copy of the parent's agent).
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    # Hosts that fork while a thread of theirs (the agent's) may be inside the allocator: gcc 12's
    # libasan does not lock its allocator around fork (glibc's malloc does; LLVM 17's asan does),
    # so now and then the child inherits a held size-class lock and its first malloc waits
    # forever (seen: 2 in 100 forks of a master forking its worker at once; 0 in 300 without
    # ASan). These run up to three times; any sanitizer report in any attempt still fails.
    fork_tests='^(Lifecycle\.Fork|HostileHost\.(AWorkerForked|ForkAfterClose)|HttpFork\.)|/nginx'
    ctest --test-dir "$BUILD_DIR" -j2 --output-on-failure --timeout 300 -E "$fork_tests"
    reports=$(mktemp -d)
    trap 'rm -rf "$reports"' EXIT
    ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$reports/asan" UBSAN_OPTIONS="$UBSAN_OPTIONS:log_path=$reports/ubsan" \
      ctest --test-dir "$BUILD_DIR" -j2 --output-on-failure --timeout 300 -R "$fork_tests" --repeat until-pass:3
    if grep -l -E "AddressSanitizer|UndefinedBehaviorSanitizer|runtime error" "$reports"/* >/dev/null 2>&1; then
      echo "sanitizer reports from the fork tests:" >&2
      cat "$reports"/* >&2
      exit 1
    fi
    ;;
  thread)
    BUILD_DIR=${BUILD_DIR:-build-tsan}
    BUILD_DIR=$BUILD_DIR bash scripts/build.sh -DPERISCOPE_SANITIZE=thread -DPERISCOPE_BUILD_BENCH=OFF
    reports=$(mktemp -d)
    trap 'rm -rf "$reports"' EXIT
    # die_after_fork=0: the fork tests fork a multi-threaded host on purpose (the agent's thread
    # is there); the child only execs or exits.
    export TSAN_OPTIONS="log_path=$reports/tsan die_after_fork=0 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp"
    # Assertions on stacks from signals (see above); Cli.ExecThreads counts threads and TSan
    # adds one of its own.
    # RequestProfile: a deferred sample reads its thread's request label late, maybe under the next request.
    signal_tests='^(Stacks\.|Record\.|SlowRequests\.|RequestProfile\.)|Http\.StacksSlowAndInflightAsTextAndJson|Http\.GoToolPprof'
    signal_tests+='|Lifecycle\.ForkedChildGetsItsOwnAgent|Cli\.ExecThreadsShowsNamedThreadAndAgentThread'
    # Hostile hosts: a profile of a spinning thread, and fork children that start threads (TSan
    # does not support threads after a multi-threaded fork; die_after_fork=0 lets them run).
    signal_tests+='|HostileHost\.ThreadsThatBlock|HostileHost\.AWorkerForked|HostileHost\.ForkAfterClose|HttpFork\.'
    signal_tests+='|HostileHost\..*During(A|ATimer)Record'
    # The signal path's own unit tests: captures and samples of spinning threads.
    signal_tests+='|^Capture\.|^SamplerWeights\.|^WatchdogStates\.'
    ctest --test-dir "$BUILD_DIR" -j2 --output-on-failure --timeout 300 -E "$signal_tests"
    echo "Tests with stacks from signals, for their ThreadSanitizer reports only:"
    ctest --test-dir "$BUILD_DIR" -j2 --timeout 300 -R "$signal_tests" | tail -3 || true
    if grep -l "ThreadSanitizer" "$reports"/* >/dev/null 2>&1; then
      echo "ThreadSanitizer reports:" >&2
      cat "$reports"/* >&2
      exit 1
    fi
    echo "ThreadSanitizer: no reports"
    ;;
  *)
    echo "usage: scripts/test-sanitizers.sh [address|thread]" >&2
    exit 2
    ;;
esac
