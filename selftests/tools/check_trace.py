#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""check_trace.py TRACE.json [--hog] [--wake] [--kblock TASK:SYSCALL]... [TASK...]
- checks a urt-trace file.

A Chrome trace event file that Perfetto can open: the JSON parses; every
event has ph, pid, tid, ts; one thread_name per track, at least one of them
a worker; a task slice ("X", cat "task") for each TASK named; a kernel
block slice; slices on one thread nest (never overlap partly); every flow
start "s" has a finish "f" with the same id on another thread.
--hog: a handoff instant with why "hog" whose flow (args.why "hog") ends
on another thread. --wake: wake instants (ph "i", cat "wake", args task
and waker_task) on named tracks: one from a task to another task on a
worker track, one from a thread outside the runtime (a non-worker track).
--kblock TASK:SYSCALL: a kernel block slice named SYSCALL while task
TASK ran (args.task_name), lasting 10 to 200 ms.
Prints what it found; exits 1 with the reason otherwise.
"""
import json
import sys
from collections import defaultdict


def fail(msg):
    print("check_trace: " + msg)
    sys.exit(1)


def main():
    args = sys.argv[1:]
    want_hog = "--hog" in args
    want_wake = "--wake" in args
    kblocks = []
    while "--kblock" in args:
        i = args.index("--kblock")
        kblocks.append(tuple(args[i + 1].split(":", 1)))
        del args[i:i + 2]
    args = [a for a in args if a not in ("--hog", "--wake")]
    path, tasks = args[0], args[1:]
    with open(path) as f:
        doc = json.load(f)
    evs = doc.get("traceEvents")
    if not isinstance(evs, list) or not evs:
        fail("no traceEvents")
    names = {}
    slices = defaultdict(list)
    flows_s, flows_f = {}, {}
    kernel = 0
    kb_seen = defaultdict(list)
    task_names = set()
    hog_instants, hog_flows = 0, set()
    wakes = []
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
            # Idle slices come from park/unpark events, kernel blocks from
            # sched_switch: a parked thread's last epoll can end a few ms
            # after its unpark event on a loaded host, so idle slices are
            # not part of the nesting check (task and kernel slices are).
            if e.get("cat") != "idle":
                slices[e["tid"]].append((e["ts"], e["ts"] + e["dur"], e["name"]))
            if e.get("cat") == "task":
                task_names.add(e["name"])
            if e.get("cat") == "kernel":
                kernel += 1
                tn = e.get("args", {}).get("task_name")
                if tn:
                    kb_seen[(tn, e["name"])].append(e["dur"] / 1000.0)
        elif ph == "s":
            flows_s[e["id"]] = e["tid"]
            if e.get("args", {}).get("why") == "hog":
                hog_flows.add(e["id"])
        elif ph == "i":
            a = e.get("args", {})
            if e.get("cat") == "handoff" and a.get("why") == "hog":
                hog_instants += 1
            if e.get("cat") == "wake":
                if "task" not in a or "waker_task" not in a:
                    fail("wake instant without task/waker_task: %r" % e)
                wakes.append(e)
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
    for task, sc in kblocks:
        ms = kb_seen.get((task, sc), [])
        if not [d for d in ms if 10 <= d <= 200]:
            fail("no kernel block %s of task %s lasting 10-200 ms (%r; have %r)" %
                 (sc, task, ms[:5], sorted(kb_seen)[:12]))
        print("task %s blocked in %s: %d blocks, max %.1f ms" % (task, sc, len(ms), max(ms)))
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
    if tasks and not pairs and "blocker" in tasks:
        fail("no handoff flow (s/f pair across threads)")
    hog_pairs = [i for i in pairs if i in hog_flows]
    if want_hog and not (hog_instants and hog_pairs):
        fail("no hog handoff with a flow (%d hog handoff instants, %d hog flows)"
             % (hog_instants, len(hog_pairs)))
    if want_wake:
        for e in wakes:
            if e["tid"] not in names:
                fail("wake on tid %d without a thread_name" % e["tid"])
        cross = [e for e in wakes if "worker" in names[e["tid"]] and
                 e["args"]["waker_task"] not in (0, e["args"]["task"])]
        outside = [e for e in wakes if "worker" not in names[e["tid"]]]
        if not cross:
            fail("no wake of a task by another task on a worker track (%d wakes)" % len(wakes))
        if not outside:
            fail("no wake from a thread outside the runtime (%d wakes)" % len(wakes))
    print("%d events, %d tracks (%d workers), tasks %s, %d kernel blocks, %d handoff flows"
          " (%d hog), %d wakes"
          % (len(evs), len(names), len(workers), ",".join(sorted(task_names)[:6]), kernel,
             len(pairs), len(hog_pairs), len(wakes)))


if __name__ == "__main__":
    main()
