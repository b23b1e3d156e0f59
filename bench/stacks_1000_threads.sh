#!/usr/bin/env bash
# Time to capture and symbolize every stack of a process with THREADS idle threads (default
# 1000), side by side in one run: periscope through the agent (first call, cold symbol cache, and
# the median of later calls), periscope by ptrace, eu-stack -p, and gdb "thread apply all bt".
# Prints each median and its ratio to the agent's warm median.
# Usage: bench/stacks_1000_threads.sh [BUILD_DIR] [THREADS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
THREADS=${2:-1000}
RUNS=${3:-5}
PERISCOPE="$BUILD_DIR/periscope"
TARGET="$BUILD_DIR/tests/many_threads"
AGENT="$(pwd)/$BUILD_DIR/libperiscope.so"
for tool in eu-stack gdb; do
  command -v "$tool" >/dev/null || { echo "stacks bench: $tool is missing (apt-get install elfutils gdb)" >&2; exit 2; }
done
dir=$(mktemp -d)
mkfifo "$dir/stdin"
PERISCOPE_SOCKET_DIR="$dir" LD_PRELOAD="$AGENT" "$TARGET" "$THREADS" <>"$dir/stdin" >"$dir/out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do grep -q ready "$dir/out" 2>/dev/null && [ -S "$dir/$pid.sock" ] && break; sleep 0.05; done

# Runs "$@" once; prints wall milliseconds; checks every thread came back.
time_ms() {
  local start end out
  start=$(date +%s%N)
  out=$("$@" 2>&1)
  end=$(date +%s%N)
  local seen
  seen=$(grep -c "park_a" <<<"$out" || true)
  if [ "$seen" -lt "$THREADS" ]; then echo "stacks bench: '$*' showed $seen of $THREADS threads" >&2; exit 1; fi
  echo $(( (end - start) / 1000000 ))
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() { local n=$1; shift; for _ in $(seq "$n"); do time_ms "$@"; done | median; }

cold=$(time_ms "$PERISCOPE" stacks "$pid")
warm=$(measure "$RUNS" "$PERISCOPE" stacks "$pid")
ptrace=$(measure "$RUNS" "$PERISCOPE" stacks --ptrace "$pid")
eustack=$(measure "$RUNS" eu-stack -p "$pid")
gdb_ms=$(measure 1 gdb -q -nx -batch -ex "thread apply all bt" -p "$pid")

printf '%d threads, median of %d runs (gdb: 1 run)\n' "$THREADS" "$RUNS"
printf '%-44s %10s %10s\n' "method" "ms" "vs agent"
row() { awk -v n="$1" -v ms="$2" -v base="$warm" 'BEGIN { printf "%-44s %10d %9.1fx\n", n, ms, ms / (base > 0 ? base : 1) }'; }
row "periscope stacks (agent, warm)" "$warm"
row "periscope stacks (agent, first call)" "$cold"
row "periscope stacks --ptrace" "$ptrace"
row "eu-stack -p" "$eustack"
row "gdb -batch thread apply all bt" "$gdb_ms"
