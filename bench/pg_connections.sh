#!/usr/bin/env bash
# What the agent costs PostgreSQL, a fork-per-connection server, as its users see it: connections
# a second under `pgbench -C -S` (a new connection, hence a new backend process, per one-row
# select), without the agent, with the agent preloaded into the postmaster (every backend is a
# fork child with an agent of its own), and with the library loaded but no agent started
# (PERISCOPE_DISABLE=1). The three alternate, each on a fresh start of the same data directory;
# each ratio is the median of the rounds' own ratios (pgbench -C varies by 15% from round to
# round on a 2-core VM). Runs as root (postgres runs as user postgres, as an operator would).
# Usage: bench/pg_connections.sh BUILD_DIR [ROUNDS] [SECONDS]
set -euo pipefail
BUILD=${1:?usage: pg_connections.sh BUILD_DIR [ROUNDS] [SECONDS]}
ROUNDS=${2:-5}
SECONDS_EACH=${3:-4}
AGENT=$(realpath "$BUILD/libperiscope.so")
PG=$( (ls -d /usr/lib/postgresql/*/bin 2>/dev/null || true) | sort -V | tail -1)
[ -x "$PG/postgres" ] || { echo "pg_connections.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "pg_connections.sh: run as root (PostgreSQL runs as user postgres)" >&2; exit 2; }
DIR=$(mktemp -d)
trap 'stop; rm -rf "$DIR"' EXIT
chown postgres "$DIR"
chmod 700 "$DIR"
PORT=$((20000 + RANDOM % 20000))
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
stop() {  # a fast shutdown; after 10 s an immediate one, after 20 s SIGKILL
  [ -f "$DIR/pid" ] || return 0
  local pid tries=0
  pid=$(cat "$DIR/pid")
  kill -INT "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    tries=$((tries + 1))
    [ $tries = 100 ] && kill -QUIT "$pid" 2>/dev/null
    [ $tries = 200 ] && kill -KILL "$pid" 2>/dev/null
    sleep 0.1
  done
  rm -f "$DIR/pid"
}
start() {  # start ENV...: the postmaster with these variables, once it answers
  # setpriv itself in the background (not a function): $! is then the postmaster's pid
  setpriv --reuid=postgres --regid=postgres --init-groups -- env "$@" "$PG/postgres" -D "$DIR/data" -p "$PORT" -k "$DIR" -c listen_addresses=127.0.0.1 \
    -c fsync=off >>"$DIR/log" 2>&1 &
  echo $! >"$DIR/pid"
  for _ in $(seq 200); do "$PG/pg_isready" -q -h 127.0.0.1 -p "$PORT" && return 0; sleep 0.05; done
  echo "pg_connections.sh: postgres did not start; its log ends:" >&2; tail -5 "$DIR/log" >&2; exit 1
}
connections_per_second() {  # prints 0 if pgbench failed (the summary below then says so)
  local out
  out=$(as_postgres "$PG/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres -C -S -T "$SECONDS_EACH" postgres 2>&1) || true
  awk '/^tps/ {print $3; found = 1; exit} END {if (!found) print 0}' <<<"$out"
}

as_postgres "$PG/initdb" -D "$DIR/data" -A trust -U postgres >/dev/null
start X=1
as_postgres "$PG/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres -i -q postgres >/dev/null 2>&1
stop
# The agent makes its socket directory itself (0700, owned by postgres, as it requires).
agent_running() { [ -S "$DIR/sockets/$(cat "$DIR/pid").sock" ]; }
for _ in $(seq "$ROUNDS"); do
  start X=1; without=$(connections_per_second); stop
  start PERISCOPE_SOCKET_DIR="$DIR/sockets" LD_PRELOAD="$AGENT"
  for _ in $(seq 100); do agent_running && break; sleep 0.05; done
  agent_running || { echo "pg_connections.sh: no agent in the postmaster; its log ends:" >&2; tail -5 "$DIR/log" >&2; exit 1; }
  with=$(connections_per_second); stop
  start PERISCOPE_DISABLE=1 LD_PRELOAD="$AGENT"; library=$(connections_per_second); stop
  echo "$without $with $library"
done >"$DIR/rounds"
python3 - "$DIR/rounds" <<'PY'
import statistics as st, sys
rows = [list(map(float, line.split())) for line in open(sys.argv[1]) if line.strip()]
if not rows or any(len(r) != 3 or r[0] <= 0 for r in rows):
    sys.exit("pg_connections.sh: pgbench gave no rate in some round (its rounds: %s)" % rows)
m = lambda i: st.median(r[i] for r in rows)
ratio = lambda i: st.median(r[i] / r[0] for r in rows)
spread = lambda i: "%.2f-%.2f" % (min(r[i] / r[0] for r in rows), max(r[i] / r[0] for r in rows))
print("postgres connections/s (pgbench -C -S): without %.1f  with agent %.1f  ratio %.3f (rounds %s)  "
      "library loaded, agent off %.1f  ratio %.3f (rounds %s)  %d rounds"
      % (m(0), m(1), ratio(1), spread(1), m(2), ratio(2), spread(2), len(rows)))
PY
