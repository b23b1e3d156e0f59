#!/usr/bin/env bash
# The test command: installs what the build needs, builds, runs every test (unit and end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh "$@"
BUILD_DIR=${BUILD_DIR:-build}
ctest --test-dir "$BUILD_DIR" -j2 --output-on-failure --timeout 300
# The package as others use it: installed, then found by a project outside the tree.
BUILD_DIR=$BUILD_DIR bash scripts/test-install.sh
# The README's other command: the demo must run to its end (a hang here once went unnoticed) and
# show periscope at work, including go tool pprof reading a profile over HTTP.
demo_log=$(mktemp)
if ! timeout 600 bash scripts/demo.sh >"$demo_log" 2>&1; then
  cat "$demo_log"; echo "scripts/demo.sh failed or hung (exit code above)" >&2; exit 1
fi
for expected in "Showing nodes accounting for" "periscope> bye" "Try it yourself"; do
  grep -q "$expected" "$demo_log" || { cat "$demo_log"; echo "scripts/demo.sh: no '$expected' in its output" >&2; exit 1; }
done
rm -f "$demo_log"
echo "scripts/demo.sh: ran to its end"
