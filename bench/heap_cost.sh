#!/usr/bin/env bash
# What heap profiling costs an allocation-heavy program (bench/alloc_workload.cpp: malloc/free and
# new[]/delete[] of 16 B..64 KiB, ~30 ns a pair), side by side in one run, alternating, median of
# REPEATS: without the agent; with it and heap profiling off; on at the default rate (512 KiB);
# heaptrack (records every allocation); gperftools' tcmalloc without and with its sampling
# (TCMALLOC_SAMPLE_PARAMETER=524288, what its heap profile reads); and the floor of any profiler
# that interposes malloc (bench/passthrough_allocator.cpp: every call passed on, nothing else).
# Ratios: ours to the run without the agent, tcmalloc's sampling to tcmalloc without it, heaptrack
# to the run without, and ours (on) to the floor: the profiler's own part. Each ratio is the median
# of the rounds' own ratios (both runs of a ratio come from the same round, seconds apart): this
# VM's speed drifts by 20% between rounds, which a ratio of medians would take for a cost.
# Every run is pinned to the last core (taskset), as the profiler benchmark's are.
# Usage: bench/heap_cost.sh BUILD_DIR [REPEATS] [OPS]
set -euo pipefail
BUILD=${1:?usage: heap_cost.sh BUILD_DIR [REPEATS] [OPS]}
REPEATS=${2:-7}
OPS=${3:-10000000}
BIN=$BUILD/bench/alloc_workload
PIN=(taskset -c "$(($(nproc) - 1))")
AGENT=$BUILD/libperiscope.so
FLOOR=$BUILD/bench/libpassthrough_allocator.so
TCMALLOC=$(ls /usr/lib/x86_64-linux-gnu/libtcmalloc.so.4 2>/dev/null || true)
HEAPTRACK=$(command -v heaptrack || true)
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
export PERISCOPE_SOCKET_DIR=$DIR/sockets

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# The median over rounds of (run a of the round) / (run b of the round).
ratio() { paste "$DIR/$1" "$DIR/$2" | awk '{print $1 / $2}' | median | awk '{printf "%.3f", $1}'; }

for name in none floor off on heaptrack tcmalloc tcmalloc_sampled; do : >"$DIR/$name"; done
for _ in $(seq "$REPEATS"); do
  "${PIN[@]}" "$BIN" "$OPS" >>"$DIR/none"
  LD_PRELOAD=$FLOOR "${PIN[@]}" "$BIN" "$OPS" >>"$DIR/floor"
  LD_PRELOAD=$AGENT "${PIN[@]}" "$BIN" "$OPS" >>"$DIR/off"
  PERISCOPE_HEAP=on LD_PRELOAD=$AGENT "${PIN[@]}" "$BIN" "$OPS" >>"$DIR/on"
  if [ -n "$HEAPTRACK" ]; then
    "${PIN[@]}" "$HEAPTRACK" -o "$DIR/ht" "$BIN" "$OPS" 2>/dev/null | grep -E '^[0-9.]+$' >>"$DIR/heaptrack" || true
    rm -f "$DIR"/ht*
  fi
  if [ -n "$TCMALLOC" ]; then
    TCMALLOC_SAMPLE_PARAMETER=0 LD_PRELOAD=$TCMALLOC "${PIN[@]}" "$BIN" "$OPS" >>"$DIR/tcmalloc"
    TCMALLOC_SAMPLE_PARAMETER=524288 LD_PRELOAD=$TCMALLOC "${PIN[@]}" "$BIN" "$OPS" >>"$DIR/tcmalloc_sampled"
  fi
done
none=$(median <"$DIR/none")
floor=$(median <"$DIR/floor")
off=$(median <"$DIR/off")
on=$(median <"$DIR/on")
printf 'ns per free+allocate, median of %s runs of %s:\n' "$REPEATS" "$OPS"
printf '  without the agent            %8.2f\n' "$none"
printf '  agent, heap profiling off    %8.2f  (%sx)\n' "$off" "$(ratio off none)"
printf '  agent, heap profiling on     %8.2f  (%sx)  [512 KiB]\n' "$on" "$(ratio on none)"
printf '  floor: malloc interposed     %8.2f  (%sx)  [passed on, nothing else]\n' "$floor" "$(ratio floor none)"
printf '  on over the floor                      (%sx)  [the profiler'"'"'s own part]\n' "$(ratio on floor)"
if [ -s "$DIR/heaptrack" ]; then
  ht=$(median <"$DIR/heaptrack")
  printf '  heaptrack                    %8.2f  (%sx)\n' "$ht" "$(ratio heaptrack none)"
else
  echo "  heaptrack                    (not installed: apt-get install heaptrack)"
fi
if [ -s "$DIR/tcmalloc" ]; then
  tc=$(median <"$DIR/tcmalloc")
  tcs=$(median <"$DIR/tcmalloc_sampled")
  printf '  tcmalloc                     %8.2f\n' "$tc"
  printf '  tcmalloc, sampling on        %8.2f  (%sx of tcmalloc)  [512 KiB]\n' "$tcs" "$(ratio tcmalloc_sampled tcmalloc)"
else
  echo "  tcmalloc                     (not installed: apt-get install libgoogle-perftools4)"
fi
