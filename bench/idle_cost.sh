#!/usr/bin/env bash
# The agent's idle cost: threads and resident memory it adds to a host, and the CPU its thread
# uses while nobody talks to it. Two copies of the same unmodified host (tests/targets/host_target)
# run side by side, one with LD_PRELOAD=libperiscope.so; after SECONDS (default 10) of idling we
# compare them. CPU is read from /proc/<pid>/task/<tid>/schedstat (nanoseconds on CPU).
# Usage: bench/idle_cost.sh [BUILD_DIR] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
SECS=${2:-10}
TARGET="$BUILD_DIR/tests/host_target"
AGENT="$(pwd)/$BUILD_DIR/libperiscope.so"
[ -x "$TARGET" ] && [ -f "$AGENT" ] || { echo "idle_cost: build first (scripts/build.sh)" >&2; exit 2; }
dir=$(mktemp -d)
trap 'kill $plain $agent 2>/dev/null || true; rm -rf "$dir"' EXIT

# host_target idles until its stdin ends: a FIFO opened read-write never ends.
mkfifo "$dir/stdin"
"$TARGET" <>"$dir/stdin" >/dev/null 2>&1 &
plain=$!
PERISCOPE_SOCKET_DIR="$dir" LD_PRELOAD="$AGENT" "$TARGET" <>"$dir/stdin" >/dev/null 2>&1 &
agent=$!
for _ in $(seq 100); do [ -S "$dir/$agent.sock" ] && break; sleep 0.05; done

status() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status"; }
agent_tid() { for t in /proc/"$1"/task/*; do if [ "$(cat "$t/comm")" = periscope ]; then basename "$t"; fi; done; }
cpu_ns() { awk '{print $1}' "/proc/$1/task/$2/schedstat"; }

tid=""
for _ in $(seq 100); do tid=$(agent_tid "$agent"); [ -n "$tid" ] && break; sleep 0.02; done  # it names itself as it starts
[ -n "$tid" ] || { echo "idle_cost: no agent thread found" >&2; exit 1; }
before=$(cpu_ns "$agent" "$tid")
sleep "$SECS"
after=$(cpu_ns "$agent" "$tid")

t_plain=$(status "$plain" Threads); t_agent=$(status "$agent" Threads)
r_plain=$(status "$plain" VmRSS); r_agent=$(status "$agent" VmRSS)
printf '%-34s %12s %12s %12s\n' "idle host (host_target)" "without" "with agent" "added"
printf '%-34s %12s %12s %12s\n' "threads" "$t_plain" "$t_agent" "$((t_agent - t_plain))"
printf '%-34s %12s %12s %12s\n' "resident memory (KiB)" "$r_plain" "$r_agent" "$((r_agent - r_plain))"
awk -v ns="$((after - before))" -v s="$SECS" \
  'BEGIN { printf "%-34s %12s %12s %12.1f\n", "agent thread CPU over " s " s idle (us)", "-", "-", ns / 1000;
           printf "%-34s %12s %12s %11.5f%%\n", "agent thread CPU share of one core", "-", "-", ns / (s * 1e9) * 100 }'
