#!/usr/bin/env bash
# Soak test (minutes; not part of the default CI run). bench/soak/soak_host runs with the agent
# preloaded: many threads allocate and free, threads come and go, a library is dlopened and
# dlclosed, exceptions fly through deep stacks, children are forked (some exec `true`), and
# periscope::Request scopes go slow so the watchdog fires. Meanwhile the real CLI records it at
# 999 Hz, CPU and wall mode alternating, while other clients dump every stack: `periscope stacks`
# in a loop (100 ms between calls) and one `periscope attach` session fed `stacks` every 100 ms.
# Heap profiling is on from the start (every 64 KiB; not in ASan or TSan builds: their malloc is theirs),
# and `periscope heap` reads it every 2 s.
# It passes when:
#   - the host exits 0 and reports no corrupted block and no failed child;
#   - nothing crashed: no sanitizer report, no fatal signal, no agent error line on stderr;
#   - nothing hung: every client and the host finish within their bounds (else: HANG, their
#     stacks are dumped with eu-stack and gdb into the work directory, and they are killed);
#   - no descriptor or thread leaked: the host's own snapshots (taken between rounds, with all of
#     its threads joined and no child alive, and no client connected) match before and after;
#   - the host's results (a checksum per round and every counter) equal those of a reference
#     run with PERISCOPE_DISABLE=1 over the same rounds and seed;
#   - the watchdog reported slow requests, the recordings have samples, every stack dump worked.
# Usage: bench/soak/soak.sh [SECONDS]        (default 300)
#   BUILD_DIR=build-asan bench/soak/soak.sh 60   the agent and CLI of a sanitizer build (the
#        host comes from HOST_BUILD_DIR, default BUILD_DIR if it has one, else build)
#   SEED=N, WORKERS=N, KEEP=1 (keep the work directory), RECORD_CHUNK=seconds per recording
#   SELF_TEST=1: the host loses a descriptor and a thread every round; the run must FAIL on both
set -uo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-300}
BUILD_DIR=${BUILD_DIR:-build}
SEED=${SEED:-1}
WORKERS=${WORKERS:-8}
CHUNK=${RECORD_CHUNK:-$((SECS / 6 < 1 ? 1 : SECS / 6 > 10 ? 10 : SECS / 6))}  # both modes even in short runs
SLOW_MS=20
if [ -z "${HOST_BUILD_DIR:-}" ]; then
  HOST_BUILD_DIR=$BUILD_DIR
  [ -x "$BUILD_DIR/bench/soak/soak_host" ] || HOST_BUILD_DIR=build
fi
HOST="$HOST_BUILD_DIR/bench/soak/soak_host"
PLUGIN="$(pwd)/$HOST_BUILD_DIR/bench/soak/soak_plugin.so"
CLI="$BUILD_DIR/periscope"
AGENT="$(pwd)/$BUILD_DIR/libperiscope.so"
for f in "$HOST" "$PLUGIN" "$CLI" "$AGENT"; do
  [ -e "$f" ] || { echo "soak: $f is missing: cmake --build $BUILD_DIR --target soak_host soak_plugin periscope_cli" >&2; exit 2; }
done
PRELOAD=$AGENT
HEAP=on
grep -Eq '^PERISCOPE_SANITIZE:STRING=(address|thread)' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null && HEAP=off
if grep -q '^PERISCOPE_SANITIZE:STRING=address' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null; then
  cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:FILEPATH=//p' "$BUILD_DIR/CMakeCache.txt")
  PRELOAD="$("${cxx:-c++}" -print-file-name=libasan.so):$AGENT"  # the sanitizer's runtime must come first
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi

dir=$(mktemp -d /tmp/periscope-soak.XXXXXX)
export PERISCOPE_SOCKET_DIR="$dir/sockets"
unset DEBUGINFOD_URLS
host_pid=""
cleanup() {
  [ -n "$host_pid" ] && kill -9 "$host_pid" 2>/dev/null
  jobs -p | xargs -r kill 2>/dev/null
  if [ "${KEEP:-0}" = 1 ] || [ "${failed:-0}" = 1 ]; then echo "work directory kept: $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT
failed=0
fail() { echo "FAIL: $*" | tee -a "$dir/failures"; failed=1; }
now() { date +%s; }

# Stacks of a process that did not finish in time, then kill it.
dump_and_kill() {  # NAME PID
  local name=$1 pid=$2
  echo "HANG: $name (pid $pid)" >>"$dir/hangs"
  timeout 60 eu-stack -p "$pid" >"$dir/hang-$name.eu-stack" 2>&1
  timeout 120 gdb -batch -p "$pid" -ex "thread apply all bt" >"$dir/hang-$name.gdb" 2>&1
  kill -9 "$pid" 2>/dev/null
}

# Runs a command with a bound of LIMIT seconds: the watchdog below dumps and kills it on overrun
# (and dumps the host's stacks too), and its status is then 124.
bounded() {  # LIMIT NAME COMMAND...
  local limit=$1 name=$2
  shift 2
  "$@" &
  local pid=$! rc
  echo "$(($(now) + limit)) $name" >"$dir/watch/$pid"
  wait "$pid"
  rc=$?
  rm -f "$dir/watch/$pid"
  if [ -e "$dir/watch/killed.$pid" ]; then return 124; fi
  return "$rc"
}
watchdog() {
  while sleep 1; do
    for f in "$dir"/watch/[0-9]*; do
      [ -e "$f" ] || continue
      read -r deadline name <"$f" || continue
      pid=${f##*/}
      if [ "$(now)" -gt "$deadline" ] && kill -0 "$pid" 2>/dev/null; then
        touch "$dir/watch/killed.$pid"
        [ -n "$host_pid" ] && [ "$pid" != "$host_pid" ] && timeout 60 eu-stack -p "$host_pid" >"$dir/hang-$name.host.eu-stack" 2>&1
        dump_and_kill "$name" "$pid"
        rm -f "$f"
      fi
    done
  done
}

count_lines() { grep -c "$1" "$2" 2>/dev/null || true; }
wait_for_lines() {  # PATTERN COUNT FILE SECONDS: until FILE has COUNT lines matching PATTERN
  local i
  for ((i = 0; i < $4 * 10; ++i)); do
    [ "$(count_lines "$1" "$3")" -ge "$2" ] && return 0
    kill -0 "$host_pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
folded_samples() { awk '{s += $NF} END {print s + 0}' "$@" 2>/dev/null; }

# ---- the host, with the agent ----
mkdir "$dir/watch"
mkfifo "$dir/control"
LD_PRELOAD="$PRELOAD" PERISCOPE_SLOW_MS=$SLOW_MS PERISCOPE_SLOW_INTERVAL_MS=50 PERISCOPE_SLOW_LOG="$dir/slow.jsonl" \
  PERISCOPE_HEAP=$HEAP PERISCOPE_HEAP_RATE=65536 "$HOST" soak "$PLUGIN" --seed "$SEED" --workers "$WORKERS" --slow-ms "$SLOW_MS" --leak "${SELF_TEST:-0}" \
  <>"$dir/control" >"$dir/host.out" 2>"$dir/host.err" &
host_pid=$!
echo "$(($(date +%s) + SECS * 2 + 300)) host" >"$dir/watch/$host_pid"  # under fire, then the quiet end
watchdog &
watchdog_pid=$!
wait_for_lines '^ready' 1 "$dir/host.out" 30 || { fail "the host did not start"; cat "$dir/host.err"; exit 1; }
for _ in $(seq 100); do [ -S "$dir/sockets/$host_pid.sock" ] && break; sleep 0.1; done
[ -S "$dir/sockets/$host_pid.sock" ] || { fail "no agent socket"; cat "$dir/host.err"; exit 1; }
echo "soak: host pid $host_pid, $SECS s, seed $SEED, $WORKERS workers, agent $AGENT, work directory $dir"

# Warm-up: every lazy part of the agent (symbolizer, sampler, watchdog) exists before snapshot 1.
bounded 60 warm-stacks "$CLI" stacks "$host_pid" >/dev/null 2>>"$dir/clients.err" || fail "warm-up stacks failed"
bounded 60 warm-cpu "$CLI" record "$host_pid" --rate 999 -d 1 -o "$dir/warm-cpu.folded" >/dev/null 2>>"$dir/clients.err" ||
  fail "warm-up CPU recording failed"
bounded 60 warm-wall "$CLI" record "$host_pid" --rate 999 --wall -d 1 -o "$dir/warm-wall.folded" >/dev/null 2>>"$dir/clients.err" ||
  fail "warm-up wall recording failed"
echo snapshot >"$dir/control"
wait_for_lines '^snapshot-end' 1 "$dir/host.out" 60 || { dump_and_kill host "$host_pid"; fail "no first snapshot"; }

# ---- under fire for SECS seconds ----
started=$(now)
deadline=$((started + SECS))
(
  n=0
  while [ "$(now)" -lt "$deadline" ]; do
    n=$((n + 1))
    left=$((deadline - $(now)))
    d=$((left < CHUNK ? left : CHUNK))
    [ "$d" -ge 1 ] || break
    mode=cpu wall=()
    if ((n % 2 == 0)); then mode=wall wall=(--wall); fi
    bounded $((d + 60)) "record-$n" "$CLI" record "$host_pid" --rate 999 "${wall[@]}" -d "$d" -o "$dir/rec-$n-$mode.folded" \
      >/dev/null 2>>"$dir/clients.err"
    echo "$n $mode $d $?" >>"$dir/records"
  done
) &
recorder=$!
(
  n=0
  while [ "$(now)" -lt "$deadline" ]; do
    n=$((n + 1))
    bounded 60 "stacks-$n" "$CLI" stacks "$host_pid" >"$dir/stacks-last.txt" 2>>"$dir/clients.err"
    rc=$?
    echo "$n $rc" >>"$dir/stacks"
    if [ "$rc" = 5 ] && [ ! -e "$dir/agent-silent.eu-stack" ]; then  # the agent did not answer: where is it?
      timeout 60 eu-stack -p "$host_pid" >"$dir/agent-silent.eu-stack" 2>&1
      echo "HANG: the agent did not answer 'stacks' $n (host stacks in $dir/agent-silent.eu-stack)" >>"$dir/hangs"
    fi
    sleep 0.1
  done
) &
stacker=$!
# The heap profile, every 2 s.
if [ "$HEAP" = on ]; then
  (
    n=0
    while [ "$(now)" -lt "$deadline" ]; do
      n=$((n + 1))
      bounded 60 "heap-$n" "$CLI" heap "$host_pid" -n 5 >"$dir/heap-last.txt" 2>>"$dir/clients.err"
      echo "$n $?" >>"$dir/heaps"
      sleep 2
    done
  ) &
  heaper=$!
fi
# And one long session fed `stacks` every 100 ms (no process start or connect per dump).
(
  while [ "$(now)" -lt "$deadline" ]; do
    echo stacks
    sleep 0.1
  done
  echo quit
) | bounded $((SECS + 120)) attach-stacks "$CLI" attach "$host_pid" 2>>"$dir/clients.err" |
  grep -c "^Thread $host_pid " >"$dir/attach-dumps" &
attacher=$!
# The process as others see it, every 5 s: descriptors and threads (the agent's, the host's workers').
while [ "$(now)" -lt "$deadline" ] && kill -0 "$host_pid" 2>/dev/null; do
  echo "$(($(now) - started)) $(ls "/proc/$host_pid/fd" 2>/dev/null | wc -l) $(ls "/proc/$host_pid/task" 2>/dev/null | wc -l)" >>"$dir/proc"
  sleep 5
done
for who in recorder stacker attacher heaper; do
  [ -n "${!who:-}" ] || continue
  pid=${!who}
  for ((i = 0; i < (CHUNK + 120) * 10; ++i)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then fail "the $who loop did not end"; pkill -P "$pid"; kill "$pid"; fi
done
kill -0 "$host_pid" 2>/dev/null || fail "the host died under fire"

# ---- quiet again: second snapshot, then the end ----
echo snapshot >"$dir/control"
wait_for_lines '^snapshot-end' 2 "$dir/host.out" 120 || { dump_and_kill host "$host_pid"; fail "no second snapshot (host hung?)"; }
slow_reports=$(bounded 60 slow "$CLI" exec "$host_pid" slow 2>/dev/null | grep -c 'soak/' || true)
heap_status=$(bounded 60 heap-status "$CLI" exec "$host_pid" heap status 2>/dev/null || true)
echo quit >"$dir/control"
for ((i = 0; i < 1200; ++i)); do kill -0 "$host_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$host_pid" 2>/dev/null && dump_and_kill host "$host_pid"
wait "$host_pid"
host_rc=$?
rm -f "$dir/watch/$host_pid"
host_pid_done=$host_pid
host_pid=""
elapsed=$(($(now) - started))

# ---- checks ----
[ "$host_rc" = 0 ] || fail "host exit status $host_rc"
grep -q '^result PASS' "$dir/host.out" || fail "host reports: $(grep '^result' "$dir/host.out")"
[ -s "$dir/hangs" ] && fail "hangs: $(tr '\n' ' ' <"$dir/hangs") (stacks in $dir/hang-*)"
if grep -Eq 'Sanitizer|runtime error|terminate called|Segmentation|Aborted|core dumped|periscope\[' "$dir/host.err" "$dir/clients.err"; then
  fail "error lines on stderr:"
  grep -Eh 'Sanitizer|runtime error|terminate called|Segmentation|Aborted|core dumped|periscope\[' "$dir/host.err" "$dir/clients.err" | sort | uniq -c | head -20
fi
ls "$dir"/core* >/dev/null 2>&1 && fail "core files in $dir"
stack_ok=$(awk '$2 == 0' "$dir/stacks" 2>/dev/null | wc -l)
stack_bad=$(awk '$2 != 0' "$dir/stacks" 2>/dev/null | wc -l)
record_ok=$(awk '$4 == 0' "$dir/records" 2>/dev/null | wc -l)
record_bad=$(awk '$4 != 0' "$dir/records" 2>/dev/null | wc -l)
[ "$stack_bad" = 0 ] || fail "$stack_bad stack dumps failed (exit codes: $(awk '$2 != 0 {print $2}' "$dir/stacks" | sort | uniq -c | tr '\n' ' '))"
[ "$record_bad" = 0 ] || fail "$record_bad recordings failed"
[ "$(cat "$dir/attach-dumps" 2>/dev/null || echo 0)" -gt 0 ] || fail "the attach session dumped no stacks"
cpu_samples=$(folded_samples "$dir"/rec-*-cpu.folded)
wall_samples=$(folded_samples "$dir"/rec-*-wall.folded)
[ "${cpu_samples:-0}" -gt 0 ] && [ "${wall_samples:-0}" -gt 0 ] || fail "recordings without samples"
slow_events=$(count_lines '"event":"slow"' "$dir/slow.jsonl")
heap_ok=$(awk '$2 == 0' "$dir/heaps" 2>/dev/null | wc -l)
heap_bad=$(awk '$2 != 0' "$dir/heaps" 2>/dev/null | wc -l)
if [ "$HEAP" = on ]; then
  [ "$heap_bad" = 0 ] || fail "$heap_bad heap profile reads failed"
  [ "$heap_ok" -gt 0 ] || fail "no heap profile was read"
  grep -q 'allocations sampled' <<<"$heap_status" || fail "heap status: $heap_status"
fi
[ "$slow_events" -gt 0 ] || fail "the watchdog reported no slow request"

# Snapshots: descriptors by what they point at (numbers may be reused), threads by name.
snap() {  # N KIND
  awk -v n="$1" -v k="snapshot-$2" '/^snapshot after_round/ {i++} i == n && $1 == k {print}' "$dir/host.out"
}
snap 1 fd | awk '{print $3}' | sed 's/\[[0-9]*\]//' | sort >"$dir/fds.1"
snap 2 fd | awk '{print $3}' | sed 's/\[[0-9]*\]//' | sort >"$dir/fds.2"
snap 1 task | awk '{print $3}' | sort >"$dir/tasks.1"
snap 2 task | awk '{print $3}' | sort >"$dir/tasks.2"
read -r _ _ round1 _ fds1 _ tasks1 < <(grep '^snapshot after_round' "$dir/host.out" | sed -n 1p)
read -r _ _ round2 _ fds2 _ tasks2 < <(grep '^snapshot after_round' "$dir/host.out" | sed -n 2p)
# The symbolizer keeps the ELF and debug files of loaded modules open, as a cache that follows the
# modules (a dlclosed library's file may go): those may differ, but none may be open twice. Every
# other descriptor (sockets, pipes, epoll, eventfd, timerfd, perf events, logs) must be the same.
module_file='(\.so(\.[0-9.]+)?|\.debug|/soak_host)$'
if ! diff -q <(grep -Ev "$module_file" "$dir/fds.1") <(grep -Ev "$module_file" "$dir/fds.2") >/dev/null; then
  fail "descriptors changed: ${fds1:-?} after round ${round1:-?}, ${fds2:-?} after round ${round2:-?}"
  diff <(grep -Ev "$module_file" "$dir/fds.1") <(grep -Ev "$module_file" "$dir/fds.2") | head -20
fi
dupes=$(grep -E "$module_file" "$dir/fds.2" | uniq -d)
[ -z "$dupes" ] || fail "module files open more than once: $dupes"
cache_change=$(diff <(grep -E "$module_file" "$dir/fds.1") <(grep -E "$module_file" "$dir/fds.2") | grep "^[<>]" | tr "\n" " ")
if ! diff -q "$dir/tasks.1" "$dir/tasks.2" >/dev/null || [ "${tasks1:-x}" != "${tasks2:-y}" ]; then
  fail "threads changed: ${tasks1:-?} -> ${tasks2:-?}"
  diff "$dir/tasks.1" "$dir/tasks.2" | head -20
fi
stale=$(find "$dir/sockets" -name '*.sock' 2>/dev/null | wc -l)

# The reference: the same rounds and seed with the agent off.
rounds=$(awk '$1 == "total" && $2 == "rounds" {print $3}' "$dir/host.out")
if [ -n "$rounds" ] && [ "$rounds" -gt 0 ]; then
  PERISCOPE_DISABLE=1 LD_PRELOAD="$PRELOAD" bounded $((SECS * 3 + 120)) reference \
    "$HOST" soak "$PLUGIN" --seed "$SEED" --workers "$WORKERS" --slow-ms "$SLOW_MS" --rounds "$rounds" \
    >"$dir/reference.out" 2>"$dir/reference.err" || fail "reference run failed"
  results() { grep -E '^(round |total |result )' "$1" | grep -v '^total rounds'; }
  if results "$dir/host.out" | diff -q - <(results "$dir/reference.out") >/dev/null; then
    same="identical ($rounds rounds, every counter)"
  else
    same="DIFFERENT"
    fail "results differ from the reference run without the agent:"
    results "$dir/host.out" | diff - <(results "$dir/reference.out") | head -20
  fi
else
  same="no rounds"
  fail "the host completed no round"
fi

total() { awk -v k="$1" '$1 == "total" { for (i = 2; i < NF; ++i) if ($i == k) print $(i + 1) }' "$dir/host.out"; }
echo
echo "soak summary ($(date -u +%F\ %H:%M) UTC, agent $AGENT)"
printf '  %-34s %s\n' \
  "under fire" "${elapsed} s (asked ${SECS} s), $rounds rounds of $WORKERS workers" \
  "profile samples recorded" "$cpu_samples CPU + $wall_samples wall at 999 Hz in $record_ok recordings ($record_bad failed)" \
  "stack dumps" "$stack_ok by 'periscope stacks' ($stack_bad failed), $(cat "$dir/attach-dumps" 2>/dev/null) in one 'attach' session" \
  "slow-request events" "$slow_events caught by the watchdog ($slow_reports reports kept by 'slow')" \
  "heap profiling ($HEAP)" "$heap_ok reads by 'periscope heap' ($heap_bad failed); ${heap_status:-}" \
  "host threads created" "$(total threads)" \
  "allocations" "$(total allocations) ($(($(total bytes) / 1048576)) MiB), $(total handed_off) freed by another thread, $(total corrupt) corrupt" \
  "forks" "$(total forks) ($(total execs) exec'd true), $(total child_failures) failed" \
  "dlopen + dlclose" "$(total dlopens) ($(total plugin_throws) exceptions from the plugin)" \
  "exceptions through deep stacks" "$(total exceptions)" \
  "fds / threads when quiet" "${fds1:-?}/${tasks1:-?} after round ${round1:-?}, ${fds2:-?}/${tasks2:-?} after round ${round2:-?}" \
  "fds / threads under fire (max)" "$(sort -k2 -n "$dir/proc" | tail -1 | awk '{print $2}') / $(sort -k3 -n "$dir/proc" | tail -1 | awk '{print $3}')" \
  "symbolizer's open files changed" "${cache_change:-no}" \
  "stale sockets of exited children" "$stale" \
  "results vs PERISCOPE_DISABLE=1" "$same" \
  "host exit status" "$host_rc (pid $host_pid_done)"
if [ "$failed" = 0 ]; then echo "soak: PASS"; else echo "soak: FAIL"; cat "$dir/failures"; fi
exit "$failed"
