#!/usr/bin/env bash
# Fork cost with the agent against without, in one run, alternating so that both see the same
# machine: a fork-and-exit loop and a fork-per-connection server. Prints the median of each side
# and the ratio, the median of the repeats' own ratios (target: at most 1.25), and the page faults
# a round (parent and child) of each:
# most of what fork costs, and steady where the time varies by 20% from run to run on a VM.
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
  without=$(cut -d' ' -f1 "$DIR/without" | median)
  with=$(cut -d' ' -f1 "$DIR/with" | median)
  faults_without=$(cut -d' ' -f2 "$DIR/without" | median)
  faults_with=$(cut -d' ' -f2 "$DIR/with" | median)
  # The median of each repeat's own ratio (its two runs back to back): the VM drifts between repeats.
  ratio=$(paste -d' ' <(cut -d' ' -f1 "$DIR/with") <(cut -d' ' -f1 "$DIR/without") | awk '{print $1 / $2}' | median |
    awk '{printf "%.2f", $1}')
  printf 'fork %-6s without %8.1f us  with agent %8.1f us  ratio %s (target <= 1.25)  page faults a round %s -> %s\n' \
    "$mode" "$without" "$with" "$ratio" "$faults_without" "$faults_with"
done
