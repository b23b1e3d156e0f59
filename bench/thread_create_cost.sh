#!/usr/bin/env bash
# What the agent adds to creating a thread (its pthread_create interposer: an alternate signal
# stack for the crash report from a pool, and self-arming while a CPU profile runs), in one run,
# alternating: without the agent, with it and PERISCOPE_CRASH=off, with it (defaults). Prints the
# median of each and the ratios to the run without.
# Usage: bench/thread_create_cost.sh BUILD_DIR [REPEATS] [THREADS]
set -euo pipefail
BUILD=${1:?usage: thread_create_cost.sh BUILD_DIR [REPEATS] [THREADS]}
REPEATS=${2:-7}
THREADS=${3:-20000}
BIN=$BUILD/bench/thread_create
AGENT=$BUILD/libperiscope.so
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

: >"$DIR/none"; : >"$DIR/crash_off"; : >"$DIR/agent"
for _ in $(seq "$REPEATS"); do
  "$BIN" "$THREADS" >>"$DIR/none"
  PERISCOPE_SOCKET_DIR=$DIR/sockets PERISCOPE_CRASH=off LD_PRELOAD=$AGENT "$BIN" "$THREADS" >>"$DIR/crash_off"
  PERISCOPE_SOCKET_DIR=$DIR/sockets LD_PRELOAD=$AGENT "$BIN" "$THREADS" >>"$DIR/agent"
done
none=$(median <"$DIR/none")
off=$(median <"$DIR/crash_off")
on=$(median <"$DIR/agent")
printf 'create+join: without %.2f us  agent, crash off %.2f us (%.2fx)  agent %.2f us (%.2fx)\n' \
  "$none" "$off" "$(awk -v a="$off" -v b="$none" 'BEGIN {print a / b}')" \
  "$on" "$(awk -v a="$on" -v b="$none" 'BEGIN {print a / b}')"
