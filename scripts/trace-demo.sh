#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Records a handoff with urt-trace, draws it and says what it shows.
#   $BUILD/urt-demo-trace.json  open in https://ui.perfetto.dev
#   $SVG (default $BUILD/urt-demo-handoff.svg; `make trace-demo` redraws
#   Documentation/images/handoff.svg, the picture in Documentation/tools.md)
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
svg=${SVG:-$B/urt-demo-handoff.svg}
mkdir -p "$(dirname "$svg")"
python3 tools/trace2svg.py "$out" "$svg" --around-handoff 2 --window-ms 110
# What the trace shows, in a few lines.
python3 - "$out" <<'PY'
import json, sys
ev = json.load(open(sys.argv[1]))["traceEvents"]
blocks = [e for e in ev if e.get("cat") == "kernel" and e.get("dur", 0) > 20000]
hand = [e for e in ev if e.get("cat") == "handoff" and e.get("ph") == "i"]
tasks = {}
for e in ev:
    if e.get("cat") == "task":
        tasks[e["tid"], int(e["ts"])] = e["name"]
print("trace-demo: %d handoffs recorded; the first ones:" % len(hand))
for h in hand[:3]:
    a = h["args"]
    print("  slot %d moved from thread %d to spare %d (%s) at %.1f ms"
          % (a["slot"], a["from_tid"], a["to_tid"], a["why"], h["ts"] / 1000))
for b in blocks[:3]:
    print("  thread %d blocked in %s for %.1f ms" % (b["tid"], b["name"], b["dur"] / 1000))
PY
echo "trace-demo: $out: open https://ui.perfetto.dev and drop the file on it (or chrome://tracing)"
echo "trace-demo: $svg: the handoff drawn from the same file"
