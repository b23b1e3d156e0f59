#!/usr/bin/env bash
# The package as others use it: `cmake --install` into a fresh prefix, then a project outside the
# tree (examples/installed) that finds it with find_package(periscope), and the C host of the
# tests built with pkg-config as a plain C99 program. Both run and answer the installed CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
work=$(mktemp -d)
host_pid=""
cleanup() { [ -n "$host_pid" ] && kill "$host_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "test-install: $*" >&2; exit 1; }

prefix=$work/prefix
cmake --install "$BUILD_DIR" --prefix "$prefix" >/dev/null
cli=$prefix/bin/periscope
pc_dir=$(dirname "$(find "$prefix" -name periscope.pc)")
libdir=$(dirname "$(find "$prefix" -name 'libperiscope.so' )")
[ -x "$cli" ] || fail "no $cli after install"
[ -f "$prefix/include/periscope/periscope_c.h" ] || fail "no periscope_c.h after install"

cmake -S examples/installed -B "$work/app" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/app" >/dev/null
cc -std=c99 -Wall -Wextra -Wpedantic -Werror -D_POSIX_C_SOURCE=200809L tests/targets/c_host.c \
  $(PKG_CONFIG_PATH=$pc_dir pkg-config --cflags --libs periscope) -Wl,-rpath,"$libdir" -o "$work/c_host"

export PERISCOPE_SOCKET_DIR=$work/sockets
# Starts HOST with its stdin on a pipe we hold (fd 3), waits for its "socket" line.
start_host() {
  mkfifo "$work/in"
  "$@" <"$work/in" >"$work/out" 2>"$work/err" &
  host_pid=$!
  exec 3>"$work/in"
  for _ in $(seq 100); do grep -q '^socket ' "$work/out" && return 0; sleep 0.1; done
  cat "$work/err" >&2; fail "$1 did not start"
}
stop_host() {
  exec 3>&-
  wait "$host_pid" || fail "$1 exited with $?"
  host_pid=""
  rm -f "$work/in"
}
expect() {  # expect WANT ARGS...: the installed CLI prints WANT
  local want=$1; shift
  local got; got=$("$cli" "$@") || fail "periscope $* failed"
  [ "$got" = "$want" ] || fail "periscope $*: got '$got', want '$want'"
}

start_host "$work/app/inventory"
expect 42 exec "$host_pid" count
"$cli" exec "$host_pid" set items 7 >/dev/null
expect 7 exec "$host_pid" get items
"$cli" ps | grep -q "inventory" || fail "periscope ps does not list the inventory"
stop_host inventory

start_host "$work/c_host"
expect "hello from C installed" exec "$host_pid" greet installed
stop_host c_host
echo "test-install: the installed package builds a CMake project and a pkg-config C program; both answer"
