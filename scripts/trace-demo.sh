#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make trace-demo`: records a handoff with urt-trace and draws it.
#   $BUILD/urt-demo-trace.json      open in https://ui.perfetto.dev
#   Documentation/images/handoff.svg  the picture in Documentation/tools.md
# The program: selftests/tools/victim on one slot, a task blocked in
# read() for ~50 ms with short tasks queued behind it (so the monitor hands
# the slot to a spare thread). Needs root (BPF).
set -eu
cd "$(dirname "$0")/.."
B=${BUILD:-build}
out=$B/urt-demo-trace.json
"$B/selftests/tools/victim" -s 2 block short > /dev/null &
pid=$!
sleep 0.3
"$B/tools/urt-trace" -p "$pid" -o "$out" 1
wait "$pid" || true
mkdir -p Documentation/images
python3 tools/trace2svg.py "$out" Documentation/images/handoff.svg --around-handoff 2 --window-ms 110
echo "trace-demo: $out: open https://ui.perfetto.dev and drop the file on it (or chrome://tracing)"
echo "trace-demo: Documentation/images/handoff.svg: the handoff drawn from the same file"
