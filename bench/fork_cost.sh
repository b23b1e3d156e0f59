#!/usr/bin/env bash
# Fork cost with the agent against without, in one run, alternating so that all see the same
# machine: a fork-and-exit loop and a fork-per-connection server. Prints the median of each side
# and the ratio, the median of the repeats' own ratios (target: at most 1.25), and the page faults
# a round (parent and child) of each: most of what fork costs, and steady where the time varies by
# 20% from run to run on a VM.
# A second line per mode splits the ratio, each part against the same runs without the agent:
#   library   the agent's library loaded and its agent not started (PERISCOPE_DISABLE=1): the
#             mappings of the library and of what it links (libunwind, liblzma, prometheus-cpp),
#             which every fork copies and every exit unmaps
#   thread    no periscope at all: each child starts one thread as the agent's fork handler does
#             (FORK_COST_CHILD_THREAD=1): the floor of any agent that gives a fork child a thread
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
# The median of each repeat's own ratio (its runs back to back): the VM drifts between repeats.
ratio() { paste -d' ' <(cut -d' ' -f1 "$DIR/$1") <(cut -d' ' -f1 "$DIR/without") | awk '{print $1 / $2}' | median |
  awk '{printf "%.2f", $1}'; }

for mode in exit serve; do
  for side in without with library thread; do : >"$DIR/$side"; done
  for _ in $(seq "$REPEATS"); do
    "$BIN" "$mode" "$ROUNDS" >>"$DIR/without"
    PERISCOPE_SOCKET_DIR=$DIR/sockets LD_PRELOAD=$AGENT "$BIN" "$mode" "$ROUNDS" >>"$DIR/with"
    PERISCOPE_DISABLE=1 LD_PRELOAD=$AGENT "$BIN" "$mode" "$ROUNDS" >>"$DIR/library"
    FORK_COST_CHILD_THREAD=1 "$BIN" "$mode" "$ROUNDS" >>"$DIR/thread"
  done
  without=$(cut -d' ' -f1 "$DIR/without" | median)
  with=$(cut -d' ' -f1 "$DIR/with" | median)
  faults_without=$(cut -d' ' -f2 "$DIR/without" | median)
  faults_with=$(cut -d' ' -f2 "$DIR/with" | median)
  printf 'fork %-6s without %8.1f us  with agent %8.1f us  ratio %s (target <= 1.25)  page faults a round %s -> %s\n' \
    "$mode" "$without" "$with" "$(ratio with)" "$faults_without" "$faults_with"
  printf '  parts of %s: library loaded, agent off %sx (%s faults)  a thread started in each child, no periscope %sx (%s faults)\n' \
    "$mode" "$(ratio library)" "$(cut -d' ' -f2 "$DIR/library" | median)" "$(ratio thread)" "$(cut -d' ' -f2 "$DIR/thread" | median)"
done
