#!/usr/bin/env bash
# Runs every benchmark in bench/ and prints one table: each figure, its target, and the peer it
# is measured against in the same run (gperftools, eu-stack, gdb, prometheus-cpp's Exposer), as
# a ratio. The README's performance section quotes this table; each benchmark's own output is
# kept in bench-results/<time>/ beside the table (table.md).
#
# Usage: scripts/bench.sh [--quick]    --quick: fewer repetitions (a smoke run, not for quoting)
#        scripts/bench.sh --table DIR    print the table of an earlier run again
# Takes ~9 minutes (quick: ~3). Run it on an otherwise idle machine: the figures are timings.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=0
TABLE_ONLY=""
case "${1:-}" in
  --quick) QUICK=1 ;;
  --table) TABLE_ONLY=${2:?--table needs the directory of an earlier run} ;;
  "") ;;
  *) echo "usage: scripts/bench.sh [--quick | --table DIR]" >&2; exit 2 ;;
esac
BUILD_DIR=${BUILD_DIR:-build}
B=$BUILD_DIR/bench

reps() { if [ $QUICK = 1 ]; then echo "$1"; else echo "$2"; fi; }
log() { printf '  %-28s' "$1" >&2; }
done_in() { printf 'done (%ds)\n' "$(( $(date +%s) - $1 ))" >&2; }

# Runs one benchmark into $OUT/NAME.txt; fails the whole report if it fails.
bench() {
  local name=$1; shift
  local start; start=$(date +%s)
  log "$name"
  if ! "$@" >"$OUT/$name.txt" 2>"$OUT/$name.err"; then
    echo "FAILED: $* (see $OUT/$name.err)" >&2
    cat "$OUT/$name.err" >&2
    exit 1
  fi
  done_in "$start"
}

if [ -n "$TABLE_ONLY" ]; then
  OUT=$TABLE_ONLY
  [ -f "$OUT/metrics_scrape.txt" ] || { echo "scripts/bench.sh: $OUT holds no complete run" >&2; exit 2; }
else
  bash scripts/setup-deps.sh bench
  bash scripts/build.sh -DPERISCOPE_BUILD_BENCH=ON
  OUT=bench-results/$(date +%Y%m%d-%H%M%S)
  mkdir -p "$OUT"
  [ $QUICK = 1 ] && touch "$OUT/QUICK"
  echo "scripts/bench.sh: writing to $OUT" >&2
  GB="--benchmark_repetitions=$(reps 3 10) --benchmark_report_aggregates_only=true"
  bench idle_cost bash bench/idle_cost.sh "$BUILD_DIR" "$(reps 3 10)"
  bench manhole_roundtrip "$B/manhole_roundtrip" $GB
  bench request_scope "$B/request_scope" $GB
  bench watchdog_scan_cost "$B/watchdog_scan_cost" 10000 "$(reps 3 10)"
  bench stacks_1000_threads bash bench/stacks_1000_threads.sh "$BUILD_DIR" 1000 "$(reps 3 5)"
  bench profiler env WORK_S="$(reps 2 5)" bash bench/profiler_bench.sh "$BUILD_DIR" "$(reps 1 5)"
  bench metrics_scrape "$B/metrics_scrape" "$(reps 50 300)"
  bench fork_cost bash bench/fork_cost.sh "$BUILD_DIR" "$(reps 3 7)" "$(reps 500 2000)"
  bench pg_connections bash bench/pg_connections.sh "$BUILD_DIR" "$(reps 2 7)" 4
  bench heap_cost bash bench/heap_cost.sh "$BUILD_DIR" "$(reps 3 11)" "$(reps 1000000 5000000)"
  bench stacks_rss bash bench/stacks_rss.sh "$BUILD_DIR"
fi
[ -f "$OUT/QUICK" ] && QUICK=1

# ---- the table
f() { cat "$OUT/$1.txt"; }
# Google Benchmark: the median real time of NAME, in the unit it printed (ns or us).
gb_median() { f "$1" | awk -v n="$2_median" '$1 == n {print $2, $3}'; }
ns() { awk -v v="$1" -v u="$2" 'BEGIN { m = (u == "us") ? 1000 : (u == "ms") ? 1e6 : 1; printf "%.1f", v * m }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2fx", a / b }'; }

rows=()
row() { rows+=("$1|$2|$3|$4|$5"); }  # figure | measured | target | peer (same run) | ratio

t_added=$(f idle_cost | awk '$1 == "threads" {print $NF}')
rss_added=$(f idle_cost | awk '/^resident memory/ {print $NF}')
idle_share=$(f idle_cost | awk '/CPU share of one core/ {print $NF}')
row "idle agent: threads added" "$t_added" "1" "-" "-"
row "idle agent: resident memory added" "$rss_added KiB" "<= 2048 KiB" "-" "-"
row "idle agent: CPU of its thread" "$idle_share" "0%" "-" "-"

read -r v u < <(gb_median manhole_roundtrip BM_HelpRoundTripText/real_time)
row "manhole: help round trip (text)" "$(ns "$v" "$u" | awk '{printf "%.0f us", $1/1000}')" "<= 200 us" "-" "-"
read -r v u < <(gb_median manhole_roundtrip BM_ConnectAndHelp/real_time)
row "manhole: connect + banner + help" "$(ns "$v" "$u" | awk '{printf "%.0f us", $1/1000}')" "<= 1 ms" "-" "-"

read -r v u < <(gb_median request_scope BM_RequestScope); req=$(ns "$v" "$u")
read -r v u < <(gb_median request_scope BM_RequestScope_AgentOff); off=$(ns "$v" "$u")
row "periscope::Request begin+end" "$req ns" "<= 40 ns" "agent off: $off ns" "-"

scan=$(f watchdog_scan_cost | awk '/added by the scans/ {for (i = 1; i <= NF; ++i) if ($i ~ /^-?[0-9.]+%$/) {print $i; exit}}')
row "watchdog: 10,000 requests in flight" "$scan of a core" "<= 1%" "-" "-"

warm=$(f stacks_1000_threads | awk '/agent, warm/ {print $(NF-1)}')
eu=$(f stacks_1000_threads | awk '/^eu-stack/ {print $(NF-1)}')
gdb=$(f stacks_1000_threads | awk '/^gdb/ {print $(NF-1)}')
ptr=$(f stacks_1000_threads | awk '/--ptrace/ {print $(NF-1)}')
row "stacks of 1000 threads (agent)" "$warm ms" "faster than eu-stack" "eu-stack -p: $eu ms" "$(ratio "$eu" "$warm") faster"
row "stacks of 1000 threads (agent)" "$warm ms" "faster than gdb" "gdb: $gdb ms" "$(ratio "$gdb" "$warm") faster"
row "stacks of 1000 threads (--ptrace)" "$ptr ms" "faster than eu-stack" "eu-stack -p: $eu ms" "$(ratio "$eu" "$ptr") faster"

prof() { f profiler | awk -v n="$1 at $2 Hz" 'index($0, n) == 1 {print $(NF-3), $(NF-2)}'; }  # overhead%, us/sample
read -r o99 s99 < <(prof periscope 99); read -r g99 gs99 < <(prof gperf 99)
read -r o999 s999 < <(prof periscope 999); read -r g999 gs999 < <(prof gperf 999)
row "profiler overhead, 99 Hz" "$o99" "<= 1%" "gperftools: $g99" "-"
row "profiler overhead, 999 Hz" "$o999" "<= 5%" "gperftools: $g999" "-"
row "profiler cost per sample, 999 Hz" "$s999 us" "-" "gperftools: $gs999 us" "$(ratio "$s999" "$gs999")"
own=$(f profiler | awk '/^periscope own part/ {print $9 " us, x" substr($19, 2)}')
row "profiler own part of a sample (less the floor)" "${own% us,*} us" "<= 3 us" "floor: perf event, empty handler" "x${own##*x}"
above=$(f profiler | awk '/^restart floor/ {for (i = 1; i < NF; ++i) if ($i == "it" && $(i+1) == "(unwinding,") print $(i+3) " us, x" substr($NF, 2)}')
row "profiler part above a random-period floor" "${above% us,*} us" "-" "floor: empty handler, new period, restart" "x${above##*x}"
rate=$(f profiler | awk '$1 == "999" && $2 == "Hz" {print $NF}')
row "profiler achieved rate at 999 Hz" "$rate" ">= 95%" "-" "-"
acc=$(f profiler | awk -F: '/^60\/30\/10 workload/ {sub(/^ +/, "", $2); sub(/ +\(.*/, "", $2); print $2}')
row "profiler accuracy (60/30/10 work)" "$acc" "within 2 points" "-" "-"

ours=$(f metrics_scrape | awk '/periscope \/metrics/ {print $4}')
theirs=$(f metrics_scrape | awk '/^ *prometheus-cpp Exposer/ {print $4}')
row "/metrics scrape, 10,000 series" "$ours us" "<= Exposer" "prometheus-cpp Exposer: $theirs us" "$(ratio "$ours" "$theirs")"

fork_row() { f fork_cost | awk -v m="$1" '$2 == m {print $4, $8, $11}'; }  # without, with, ratio
read -r fw fa fr < <(fork_row exit)
row "fork + exit + wait" "$fa us" "<= 1.25x without" "without the agent: $fw us" "${fr}x"
read -r fw fa fr < <(fork_row serve)
row "fork-per-connection server" "$fa us/conn" "<= 1.25x without" "without the agent: $fw us" "${fr}x"
faults=$(f fork_cost | awk '$2 == "exit" {print $(NF-2), $(NF-1), $NF}')
row "page faults a fork+exit round" "${faults##*-> }" "-" "without the agent: ${faults%% ->*}" "-"
# The parts: the library loaded with no agent, and a thread started in each child with no periscope.
fork_part() { f fork_cost | awk -v m="$1:" -v w="$2" '$1 == "parts" && $3 == m {print $w}'; }
row "fork per connection: library loaded, agent off" "-" "-" "without the agent" "$(fork_part serve 8)"
row "fork per connection: a thread in each child, no periscope" "-" "-" "without the agent" "$(fork_part serve 19)"
pg() { (f pg_connections 2>/dev/null || true) | awk -v k="$1" '{for (i = 1; i < NF; ++i) if ($i == k) {print $(i+1); exit}}'; }
row "PostgreSQL connections/s, pgbench -C -S" "$(pg agent)" "-" "without the agent: $(pg without)" "$(pg ratio)x"

heap() { f heap_cost | awk -v n="$1" 'index($0, n) {for (i = 1; i < NF; ++i) if ($(i+1) ~ /^\(/) {v = $i; r = $(i+1); gsub(/[()x]/, "", r); print v, r; exit}}'; }
hn=$(f heap_cost | awk '/without the agent/ {print $4}')
read -r hoff hoffr < <(heap "heap profiling off")
read -r hon honr < <(heap "heap profiling on")
read -r hfl hflr < <(heap "floor: malloc interposed")
read -r _ tcr < <(heap "tcmalloc, sampling on")
row "heap profiling off (allocation loop)" "$hoff ns" "<= 1.02x without" "without the agent: $hn ns" "${hoffr}x"
row "heap profiling on, 512 KiB" "$hon ns" "<= 1.05x without" "tcmalloc's sampling: ${tcr:--}x of tcmalloc" "${honr}x"
row "heap: malloc interposed, nothing else" "$hfl ns" "-" "(the floor of an interposer)" "${hflr}x"

added=$(f stacks_rss | awk '/after 3x periscope stacks/ {for (i = 1; i < NF; ++i) if ($i == "added") {print $(i+1); exit}}')
fds=$(f stacks_rss | awk '/after 3x periscope stacks/ {print $NF}')
row "RSS added by 3 stacks (libc6-dbg)" "$added MiB, $fds fds" "<= 8 MiB, 0 fds" "-" "-"

{
  echo "| Figure | Measured | Target | Peer, same run | Ratio |"
  echo "|---|---|---|---|---|"
  for r in "${rows[@]}"; do echo "| ${r//|/ | } |"; done
} >"$OUT/table.md"
echo
echo "periscope benchmarks, $(basename "$OUT"), $(nproc) cores$( [ $QUICK = 1 ] && echo ', QUICK run (not for quoting)')"
printf '%-38s %-18s %-22s %-34s %s\n' "FIGURE" "MEASURED" "TARGET" "PEER (SAME RUN)" "RATIO"
for r in "${rows[@]}"; do
  IFS='|' read -r a b c d e <<<"$r"
  printf '%-38s %-18s %-22s %-34s %s\n' "$a" "$b" "$c" "$d" "$e"
done
echo
echo "Raw outputs and table.md: $OUT"
