#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""check_trace.py TRACE.json [TASK...] - checks a urt-trace file.

A Chrome trace event file that Perfetto can open: the JSON parses; every
event has ph, pid, tid, ts; one thread_name per track, at least one of them
a worker; a task slice ("X", cat "task") for each TASK named; a kernel
block slice; slices on one thread nest (never overlap partly); every flow
start "s" has a finish "f" with the same id on another thread. Prints what
it found; exits 1 with the reason otherwise.
"""
import json
import sys
from collections import defaultdict


def fail(msg):
    print("check_trace: " + msg)
    sys.exit(1)


def main():
    path, tasks = sys.argv[1], sys.argv[2:]
    with open(path) as f:
        doc = json.load(f)
    evs = doc.get("traceEvents")
    if not isinstance(evs, list) or not evs:
        fail("no traceEvents")
    names = {}
    slices = defaultdict(list)
    flows_s, flows_f = {}, {}
    kernel = 0
    task_names = set()
    for e in evs:
        for k in ("ph", "pid", "tid"):
            if k not in e:
                fail("event without %s: %r" % (k, e))
        ph = e["ph"]
        if ph == "M":
            if e["name"] == "thread_name":
                names[e["tid"]] = e["args"]["name"]
            continue
        if "ts" not in e:
            fail("event without ts: %r" % e)
        if ph == "X":
            if e["dur"] < 0:
                fail("negative duration: %r" % e)
            slices[e["tid"]].append((e["ts"], e["ts"] + e["dur"], e["name"]))
            if e.get("cat") == "task":
                task_names.add(e["name"])
            if e.get("cat") == "kernel":
                kernel += 1
        elif ph == "s":
            flows_s[e["id"]] = e["tid"]
        elif ph == "f":
            flows_f[e["id"]] = e["tid"]
    workers = [n for n in names.values() if "worker" in n]
    if not workers:
        fail("no worker track among %r" % list(names.values()))
    for t in tasks:
        if t not in task_names:
            fail("no slice for task %r (have %r)" % (t, sorted(task_names)[:10]))
    if not kernel:
        fail("no kernel block slice")
    for tid, sl in slices.items():
        if tid not in names:
            fail("slices on tid %d without a thread_name" % tid)
        sl.sort(key=lambda s: (s[0], -s[1]))
        stack = []
        for b, end, name in sl:
            while stack and stack[-1][1] <= b + 0.0005:
                stack.pop()
            if stack and end > stack[-1][1] + 0.002:
                fail("tid %d: %r [%.3f, %.3f] overlaps %r [%.3f, %.3f]" %
                     (tid, name, b, end, stack[-1][2], stack[-1][0], stack[-1][1]))
            stack.append((b, end, name))
    pairs = [i for i in flows_s if i in flows_f and flows_s[i] != flows_f[i]]
    if len(sys.argv) > 2 and not pairs and "blocker" in tasks:
        fail("no handoff flow (s/f pair across threads)")
    print("%d events, %d tracks (%d workers), tasks %s, %d kernel blocks, %d handoff flows"
          % (len(evs), len(names), len(workers), ",".join(sorted(task_names)[:6]), kernel,
             len(pairs)))


if __name__ == "__main__":
    main()
