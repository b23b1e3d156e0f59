#!/usr/bin/env bash
# Fork cost with the agent against without, in one run, alternating so that both see the same
# machine: a fork-and-exit loop and a fork-per-connection server. Prints the median of each side
# and the ratio (target: at most 1.25).
# Usage: bench/fork_cost.sh BUILD_DIR [REPEATS] [ROUNDS]
set -euo pipefail
BUILD=${1:?usage: fork_cost.sh BUILD_DIR [REPEATS] [ROUNDS]}
REPEATS=${2:-5}
ROUNDS=${3:-2000}
BIN=$BUILD/bench/fork_cost
AGENT=$BUILD/libperiscope.so
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for mode in exit serve; do
  : >"$DIR/without" ; : >"$DIR/with"
  for _ in $(seq "$REPEATS"); do
    "$BIN" "$mode" "$ROUNDS" >>"$DIR/without"
    PERISCOPE_SOCKET_DIR=$DIR/sockets LD_PRELOAD=$AGENT "$BIN" "$mode" "$ROUNDS" >>"$DIR/with"
  done
  without=$(median <"$DIR/without")
  with=$(median <"$DIR/with")
  ratio=$(awk -v a="$with" -v b="$without" 'BEGIN {printf "%.2f", a / b}')
  printf 'fork %-6s without %8.1f us  with agent %8.1f us  ratio %s (target <= 1.25)\n' \
    "$mode" "$without" "$with" "$ratio"
done
