#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""trace2svg.py - draws a urt-trace JSON file as an SVG timeline.

  tools/trace2svg.py TRACE.json OUT.svg [--around-handoff N] [--window-ms MS]

One lane per thread (the tracks Perfetto shows): task steps as coloured
bars labelled with the task name, kernel blocks as red bars under them
(labelled with the syscall), idle time grey, handoffs as arrows from the
stuck thread to the thread that took the slot. --around-handoff N centres
the picture on the N-th handoff (default 1, 0: whole trace).
Only the standard library; the same JSON Perfetto opens.
"""
import argparse
import json
import sys
from html import escape

PALETTE = ["#4e79a7", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948",
           "#ff9da7", "#9c755f"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("trace")
    ap.add_argument("out")
    ap.add_argument("--around-handoff", type=int, default=1)
    ap.add_argument("--window-ms", type=float, default=120.0)
    ap.add_argument("--width", type=int, default=1100)
    a = ap.parse_args()

    with open(a.trace) as f:
        doc = json.load(f)
    evs = doc["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in evs
             if e["ph"] == "M" and e["name"] == "thread_name"}
    order = {e["tid"]: e["args"]["sort_index"] for e in evs
             if e["ph"] == "M" and e["name"] == "thread_sort_index"}
    xs = [e for e in evs if e["ph"] == "X"]
    flows = {}
    for e in evs:
        if e["ph"] in ("s", "f"):
            flows.setdefault(e["id"], {})[e["ph"]] = e
    handoffs = sorted((v for v in flows.values() if "s" in v and "f" in v),
                      key=lambda v: v["s"]["ts"])
    if not xs:
        sys.exit("trace2svg: no slices in %s" % a.trace)

    if a.around_handoff and handoffs:
        h = handoffs[min(a.around_handoff, len(handoffs)) - 1]["s"]["ts"]
        t0, t1 = h - a.window_ms * 1000 * 0.45, h + a.window_ms * 1000 * 0.55
    else:
        t0 = min(e["ts"] for e in xs)
        t1 = max(e["ts"] + e["dur"] for e in xs)

    # lanes: worker threads that have something in the window
    def visible(e):
        return e["ts"] < t1 and e["ts"] + e["dur"] > t0
    tids = sorted({e["tid"] for e in xs if visible(e) and e.get("cat") in ("task", "kernel", "handoff")},
                  key=lambda t: (order.get(t, 1000), t))
    tids = [t for t in tids if "worker" in names.get(t, "")] or tids
    left, top, lane_h, gap = 190, 60, 46, 18
    W = a.width
    H = top + len(tids) * (lane_h + gap) + 70
    span = max(t1 - t0, 1.0)

    def X(ts):
        return left + (min(max(ts, t0), t1) - t0) / span * (W - left - 20)

    lane = {t: top + i * (lane_h + gap) for i, t in enumerate(tids)}
    colours = {}

    def colour(name):
        if name not in colours:
            colours[name] = PALETTE[len(colours) % len(PALETTE)]
        return colours[name]

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">' % (W, H),
           '<defs><marker id="arrow" markerWidth="10" markerHeight="8" refX="9" refY="4" '
           'orient="auto"><path d="M0,0 L10,4 L0,8 z" fill="#d62728"/></marker></defs>',
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>' % (
               left, escape("urt-trace: %s, %.0f ms around a handoff" % (
                   doc.get("otherData", {}).get("comm", ""), span / 1000)))]
    # time axis
    step = 10 ** len(str(int(span / 1000 / 5))) / 10 * 1000 if span > 5000 else 1000
    t = (int(t0 / step) + 1) * step
    while t < t1:
        x = X(t)
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>' % (x, top - 8, x, H - 60))
        out.append('<text x="%.1f" y="%d" fill="#888" text-anchor="middle">%.0f ms</text>' % (
            x, H - 45, (t - t0) / 1000))
        t += step
    for tid in tids:
        y = lane[tid]
        out.append('<text x="10" y="%d" font-weight="bold">%s</text>' % (y + 18, escape(names.get(tid, str(tid)))[:26]))
        out.append('<text x="10" y="%d" fill="#666">tid %d</text>' % (y + 34, tid))
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ccc"/>' % (left, y + lane_h, W - 20, y + lane_h))
    for e in xs:
        if e["tid"] not in lane or not visible(e):
            continue
        y, cat = lane[e["tid"]], e.get("cat")
        x0, x1 = X(e["ts"]), X(e["ts"] + e["dur"])
        w = max(x1 - x0, 0.8)
        if cat == "task":
            out.append('<rect x="%.1f" y="%d" width="%.1f" height="24" fill="%s"><title>%s %.1f us</title></rect>'
                       % (x0, y, w, colour(e["name"]), escape(e["name"]), e["dur"]))
            if w > 40:
                out.append('<text x="%.1f" y="%d" fill="white">%s</text>' % (x0 + 3, y + 16, escape(e["name"])))
        elif cat == "kernel":
            idle = "no_task" in e.get("args", {})	# a parked worker waiting: not a task's block
            out.append('<rect x="%.1f" y="%d" width="%.1f" height="14" fill="%s" opacity="0.85">'
                       '<title>%s in %s %.1f us</title></rect>' % (
                           x0, y + 27, w, "#c8c8c8" if idle else "#d62728",
                           "waiting" if idle else "blocked", escape(e["name"]), e["dur"]))
            if w > 70 and not idle:
                out.append('<text x="%.1f" y="%d" fill="white" font-size="10">blocked in %s</text>'
                           % (x0 + 3, y + 38, escape(e["name"])))
        elif cat == "idle":
            out.append('<rect x="%.1f" y="%d" width="%.1f" height="24" fill="#e8e8e8"/>' % (x0, y, w))
            if w > 40:
                out.append('<text x="%.1f" y="%d" fill="#999">idle</text>' % (x0 + 3, y + 16))
        elif cat == "handoff":
            out.append('<rect x="%.1f" y="%d" width="%.1f" height="24" fill="#ffd8d8" stroke="#d62728"/>'
                       % (x0, y, max(w, 3)))
    for v in handoffs:
        s, f = v["s"], v["f"]
        if s["tid"] not in lane or f["tid"] not in lane or not (t0 <= s["ts"] <= t1):
            continue
        xs0, ys0 = X(s["ts"]), lane[s["tid"]] + 12
        xf, yf = X(f["ts"]), lane[f["tid"]] + (2 if lane[f["tid"]] > lane[s["tid"]] else 22)
        out.append('<path d="M%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f" stroke="#d62728" stroke-width="2" '
                   'fill="none" marker-end="url(#arrow)"/>' % (xs0, ys0, xs0 + 30, ys0, xf - 30, yf, xf, yf))
        out.append('<text x="%.1f" y="%.1f" fill="#d62728" font-weight="bold">handoff</text>'
                   % (xs0 + 6, (ys0 + yf) / 2))
    # legend
    ly = H - 22
    lx = left
    for name, c in list(colours.items())[:6]:
        out.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>'
                   % (lx, ly - 10, c, lx + 16, ly, escape(name)))
        lx += 30 + 8 * len(name)
    out.append('<rect x="%d" y="%d" width="12" height="12" fill="#d62728"/><text x="%d" y="%d">kernel block</text>'
               % (lx, ly - 10, lx + 16, ly))
    lx += 200
    out.append('<path d="M%d,%d l26,0" stroke="#d62728" stroke-width="2" marker-end="url(#arrow)"/>'
               '<text x="%d" y="%d">slot handed to a spare thread</text>' % (lx, ly - 4, lx + 34, ly))
    out.append("</svg>")
    with open(a.out, "w") as f:
        f.write("\n".join(out) + "\n")
    print("trace2svg: wrote %s (%d lanes, %d handoffs in view)" % (a.out, len(tids), sum(
        1 for v in handoffs if t0 <= v["s"]["ts"] <= t1)))


if __name__ == "__main__":
    main()
