#!/usr/bin/env bash
# The main job, on a fresh machine: build, start the demo server with the agent, and show
# periscope finding it and looking inside. DEMO_KEEP=1 leaves the server running afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
PERISCOPE="$BUILD_DIR/periscope"
AGENT="$(pwd)/$BUILD_DIR/libperiscope.so"

pids=()
cleanup() { [ "${DEMO_KEEP:-0}" = 1 ] || kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

out=$(mktemp)
PERISCOPE_SLOW_MS=500 PERISCOPE_HTTP=127.0.0.1:0 "$BUILD_DIR/examples/demo/demo_server" --port 0 >"$out" 2>&1 &
pids+=($!)
DEMO=$!
# An unmodified binary with the agent preloaded.
LD_PRELOAD="$AGENT" sleep 600 &
pids+=($!)
SLEEPER=$!

for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.05; done
cat "$out"
port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$out")
admin=$(sed -n 's/.*metrics on http:\/\/\(127.0.0.1:[0-9]*\)\/metrics.*/\1/p' "$out")

# HTTP without curl: GET ADDRESS PATH prints the body.
http_get() {
  exec 3<>"/dev/tcp/${1%:*}/${1##*:}"
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$2" "$1" >&3
  sed '1,/^\r$/d' <&3
  exec 3>&-
}
# Some traffic, so the threads have something to show.
request() { http_get "127.0.0.1:$port" "$1" >/dev/null; }
(request "/cpu?ms=1500" &) ; (request "/sleep?ms=1500" &) ; request /fast
sleep 0.3

step "$PERISCOPE" ps
step "$PERISCOPE" exec "$DEMO" info
step "$PERISCOPE" exec "$DEMO" threads
step "$PERISCOPE" inflight "$DEMO"
step "$PERISCOPE" stacks "$DEMO"
sleep 1.5   # let /cpu (1.5 s) cross PERISCOPE_SLOW_MS=500 and finish
step "$PERISCOPE" slow "$DEMO"
step "$PERISCOPE" exec "$DEMO" vars
step "$PERISCOPE" exec "$DEMO" set log_level debug
step "$PERISCOPE" exec "$DEMO" help
step "$PERISCOPE" metrics "$DEMO" request
step "$PERISCOPE" heap "$DEMO" --start --rate 65536   # heap profiling from now on
printf '\n\033[1m$ curl -s http://%s/metrics | grep demo_responses\033[0m\n' "$admin"
http_get "$admin" /metrics | grep demo_responses
(for _ in 1 2 3 4 5 6; do request "/cpu?ms=300"; done) &
traffic=$!
printf '\n\033[1m$ go tool pprof -top http://%s/debug/pprof/profile?seconds=2\033[0m\n' "$admin"
HOME=$(mktemp -d) go tool pprof -top "http://$admin/debug/pprof/profile?seconds=2" 2>&1 | head -12 || true
wait "$traffic"  # not a bare 'wait': that would wait for the demo server too
step "$PERISCOPE" heap "$DEMO" -n 8   # what the traffic since --start allocated and still holds
step "$PERISCOPE" exec --json "$SLEEPER" info
kill "$SLEEPER"; wait "$SLEEPER" 2>/dev/null || true
sleep 600 &   # no agent this time: stacks by ptrace
pids+=($!)
step "$PERISCOPE" stacks $!
printf '\n$ printf "threads\\nquit\\n" | socat - UNIX-CONNECT:<socket>   # the same REPL, by hand\n'
printf 'threads\nquit\n' | socat - "UNIX-CONNECT:$("$PERISCOPE" ps --json | sed -n "s/.*\"socket\": \"\(.*\/$DEMO.sock\)\".*/\1/p")"

echo
if [ "${DEMO_KEEP:-0}" = 1 ]; then
  echo "demo_server (pid $DEMO) keeps running on port $port, metrics on http://$admin/metrics:"
  echo "try '$PERISCOPE attach $DEMO'"
else
  echo "Try it yourself: DEMO_KEEP=1 scripts/demo.sh, then '$PERISCOPE attach <pid>'."
fi
