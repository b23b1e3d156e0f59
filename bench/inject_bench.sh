#!/usr/bin/env bash
# How long `periscope inject` stops a process's threads, against gdb loading the same library
# into the same kind of process (gdb -p PID -batch -ex 'call (void*)dlopen(...)'), in one run.
# The host (bench/inject_heartbeat) has WORKERS busy threads that record the longest time they
# were kept from running, and a main thread waiting in read(2), the one inject picks.
# Prints medians over REPEATS fresh processes each: the chosen thread's stop (periscope reports
# it; for gdb every thread is stopped for the whole session), the workers' longest gap, and the
# command's wall time. Targets: chosen thread <= 20 ms, other threads 0 (scheduling noise).
# Usage: bench/inject_bench.sh BUILD_DIR [REPEATS] [WORKERS]
set -euo pipefail
BUILD=${1:?usage: inject_bench.sh BUILD_DIR [REPEATS] [WORKERS]}
REPEATS=${2:-7}
WORKERS=${3:-1}  # fewer busy threads than cores: a gap then means stopped, not descheduled
HOST=$BUILD/bench/inject_heartbeat
CLI=$BUILD/periscope
LIB=$(readlink -f "$BUILD/libperiscope.so")
command -v gdb >/dev/null || { echo "inject_bench: gdb is not installed (scripts/setup-deps.sh bench)" >&2; exit 2; }
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now_us() { date +%s%6N; }

# run_one TOOL: one fresh host; appends "chosen_us worker_gap_us wall_us" to $DIR/TOOL.
run_one() {
  local tool=$1
  coproc HB { exec "$HOST" "$WORKERS"; }
  local pid=$HB_PID line chosen gap start end
  read -r line <&"${HB[0]}"  # ready
  sleep 0.3                  # the workers are running
  echo reset >&"${HB[1]}"; read -r line <&"${HB[0]}"
  start=$(now_us)
  if [ "$tool" = none ]; then
    sleep 0.05  # the same kind of window with nobody touching the host: the scheduler's noise
    chosen=0
  elif [ "$tool" = periscope ]; then
    chosen=$("$CLI" inject --json "$pid" --socket-dir "$DIR/sockets" | sed 's/.*"stopped_us":\([0-9]*\).*/\1/')
  else
    gdb -nx -q -p "$pid" -batch -ex "call (void*)dlopen(\"$LIB\", 2)" >"$DIR/gdb.log" 2>&1
  fi
  end=$(now_us)
  sleep 0.1
  echo gaps >&"${HB[1]}"; read -r gap <&"${HB[0]}"
  [ "$tool" = gdb ] && chosen=$gap  # gdb stops every thread, the waiting one too
  echo "$chosen $gap $((end - start))" >>"$DIR/$tool"
  echo quit >&"${HB[1]}"
  wait "$pid" 2>/dev/null || true
}

for _ in $(seq "$REPEATS"); do
  run_one none
  run_one periscope
  run_one gdb
done

printf '%-10s %22s %26s %14s\n' tool "chosen thread stopped" "other threads' longest gap" "command wall"
for tool in none periscope gdb; do
  c=$(awk '{print $1}' "$DIR/$tool" | median)
  g=$(awk '{print $2}' "$DIR/$tool" | median)
  w=$(awk '{print $3}' "$DIR/$tool" | median)
  printf '%-10s %19.2f ms %23.2f ms %11.1f ms\n' "$tool" "$(echo "$c/1000" | bc -l)" "$(echo "$g/1000" | bc -l)" \
    "$(echo "$w/1000" | bc -l)"
done
echo "(medians of $REPEATS fresh processes with $WORKERS busy threads each; 'none' is a 50 ms window nobody"
echo " touched: the scheduler's own gaps; periscope also starts the agent, gdb only loads the library)"
