#!/usr/bin/env bash
# What a stack dump costs the host's memory: the demo server with the agent, its RSS and open
# descriptors before and after three `periscope stacks` (the viewer symbolizes), then after three
# `periscope exec PID stacks` (after a recording; the agent symbolizes itself, as HTTP and socat users get it) and
# again once the agent has released its idle symbolizer. Install libc6-dbg first for a host with
# full debug information. Target: three `stacks` add at most 8 MiB and no descriptors.
# Usage: bench/stacks_rss.sh BUILD_DIR
set -euo pipefail
BUILD=${1:?usage: stacks_rss.sh BUILD_DIR}
DIR=$(mktemp -d)
PERISCOPE_SOCKET_DIR=$DIR LD_PRELOAD=$BUILD/libperiscope.so "$BUILD/examples/demo/demo_server" --port 0 \
  >"$DIR/demo.out" 2>"$DIR/demo.err" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do [ -S "$DIR/$PID.sock" ] && break; sleep 0.1; done
[ -S "$DIR/$PID.sock" ] || { echo "the demo server did not start: $(cat "$DIR/demo.err")" >&2; exit 1; }

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$PID/status"; }
fds() { ls "/proc/$PID/fd" | wc -l; }
report() { printf '%-46s RSS %6.1f MiB, added %+6.1f MiB; fds %3d, added %+d\n' "$1" \
  "$(echo "$(rss_kib) / 1024" | bc -l)" "$(echo "($(rss_kib) - $RSS0) / 1024" | bc -l)" "$(fds)" "$(( $(fds) - FDS0 ))"; }

RSS0=$(rss_kib); FDS0=$(fds)
report "before"
for _ in 1 2 3; do "$BUILD/periscope" stacks "$PID" >/dev/null; done
report "after 3x periscope stacks (viewer symbolizes)"
"$BUILD/periscope" record "$PID" -d 1 --wall -o "$DIR/wall.folded" 2>/dev/null
report "after record -d 1 --wall (viewer symbolizes)"
for _ in 1 2 3; do "$BUILD/periscope" exec "$PID" stacks >/dev/null; done
report "after 3x exec stacks (agent symbolizes)"
sleep 12  # the agent releases a symbolizer unused for 10 s
report "12 s later (idle symbolizer released)"
