#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs urt's benchmark suite side by side with tokio and Go.

Every workload runs in every runtime, interleaved: each round runs each
(workload, workers) cell once per runtime, in an order that rotates from
round to round, so that a noisy neighbour hurts all runtimes alike. Each
run prints one RESULT line per sample (README.md); the table gives, per
cell, the median over all samples of all rounds and the spread (half the
interquartile range, in % of the median), and the ratios urt/tokio and
urt/Go. Then: idle memory per task, the monitor's cost, callgrind
instruction counts for the one-worker microbenchmarks, and the targets of
issue 6 with where we stand.

  run.py --bin DIR [--doc FILE] [--rounds N] [--samples N] [--only SUBSTR]
         [--no-callgrind] [--smoke] [--rev TEXT] [--no-vm | --vm-only]

--doc writes the report (markdown) to FILE; --smoke runs each benchmark
once with tiny sizes and fails if any of them fails. The monitor workloads
also run inside the vm-check VM with urt.ko loaded (the only place the kmod
backend can run here; selftests/vm/vm-bench.sh): --no-vm skips that,
--vm-only runs only that.
"""
import argparse
import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
NCPU = len(os.sched_getaffinity(0))
WORKERS = sorted({1, NCPU})
MONITOR_BACKENDS = ["proc", "bpf", "kmod"]
# Columns beyond the backends, for bpf: no polling spares
# (URT_MONITOR_POLL=off; the default polls on demand), and polling spares
# whenever tasks run, one per slot (URT_MONITOR_POLL is capped at the slot
# count; Documentation/monitor.md, "The poller").
POLL_SUFFIX = "+poll"
OFF_SUFFIX = "+off"


def mon_env(b):
    """The environment that runs urt with monitor column b."""
    if b.endswith(POLL_SUFFIX):
        return {"URT_MONITOR": b[:-len(POLL_SUFFIX)], "URT_MONITOR_POLL": str(NCPU)}
    if b.endswith(OFF_SUFFIX):
        return {"URT_MONITOR": b[:-len(OFF_SUFFIX)], "URT_MONITOR_POLL": "off"}
    return {"URT_MONITOR": b}


class W:
    """A workload: its row name and, per runtime column, the program's
    workload name (None: that runtime has no such workload)."""

    def __init__(self, name, urt, tokio, go, scale=1.0, note="", kind="micro",
                 target=None):
        self.name, self.scale, self.note, self.kind = name, scale, note, kind
        self.progs = {"urt": urt, "tokio": tokio, "go": go}
        self.target = target    # urt/tokio ratio to beat, if any


WORKLOADS = [
    W("spawn_many_local", "spawn_many_local", "spawn_many_local", "spawn_many_local",
      target=0.5, note="a task spawns 10,000 tasks; the last to finish signals"),
    W("spawn_many_local (urt poll tasks)", "spawn_many_local_poll",
      "spawn_many_local", "spawn_many_local", target=0.5,
      note="the same, urt with poll tasks"),
    W("spawn_many_remote_idle", "spawn_many_remote_idle", "spawn_many_remote_idle",
      "spawn_many_remote_idle", target=0.5,
      note="a thread outside the runtime spawns 10,000 tasks, then awaits them "
           "(Go: from main, as Go has no outside)"),
    W("spawn_many_remote_busy", "spawn_many_remote_busy", "spawn_many_remote_busy",
      "spawn_many_remote_busy", scale=0.01, target=0.5,
      note="the same with 2 tasks per worker that yield and block 10 us in a loop; "
           "100 spawns, not 10,000, so the run stays short (each 10 us block is "
           "a real block of the worker: with a monitor on, urt hands slots off)"),
    W("yield_many", "yield_many", "yield_many", "yield_many", target=0.5,
      note="200 tasks yield 1000 times each"),
    W("yield_many (urt poll tasks)", "yield_many_poll", "yield_many", "yield_many",
      target=0.5, note="the same, urt with poll tasks"),
    W("ping_pong", "ping_pong", "ping_pong", "ping_pong", target=0.5,
      note="1000 times: spawn a task that spawns a partner; one message each way "
           "through two oneshots"),
    W("chained_spawn", "chained_spawn", "chained_spawn", "chained_spawn", target=0.5,
      note="each task spawns the next, 1000 deep"),
    W("chan_pingpong", "chan_pingpong", "chan_pingpong", "chan_pingpong",
      note="two tasks bounce a value through two channels of capacity 1 (round trip)"),
    W("chan_mpmc", "chan_mpmc", "chan_mpmc", "chan_mpmc",
      note="4 producers, 4 consumers, capacity 256, 100,000 values "
           "(tokio: consumers share an mpsc receiver behind a Mutex)"),
    W("timers", "timers", "timers", "timers",
      note="10,000 tasks sleep 5 times each, 0-1 ms (ns per sleep)"),
    W("timers (urt poll tasks)", "timers_poll", "timers", "timers",
      note="the same, urt with poll tasks (urt_cx_wake_at): timers without fiber stacks"),
    W("tcp_echo", "tcp_echo", "tcp_echo", "tcp_echo",
      note="100 connections on 127.0.0.1, 50 round trips of 64 bytes each "
           "(ns per round trip)"),
    W("starvation: none", "starve_none", "starve_none", "starve_none", kind="starve",
      note="100 tasks of 100 us CPU, spawned from outside (ms until all done): the ideal"),
    W("starvation: sleep", "starve_sleep", "starve_sleep", "starve_sleep", kind="starve",
      note="the same while one task blocks its thread in nanosleep(100 ms)"),
    W("starvation: blocking read", "starve_read", "starve_read", "starve_read",
      kind="starve", note="... in a read(2) of a pipe written 100 ms later"),
    W("starvation: spin", "starve_spin", "starve_spin", "starve_spin", kind="starve",
      note="... spinning on the CPU for 100 ms"),
    W("detection: blocking read", "detect_read", None, None, kind="detect",
      note="urt only: each slot's task spawns a probe task (into the slot's LIFO "
           "slot, which nobody steals from) and blocks in read(2) of a pipe the probe "
           "writes; latency = the probe's start - the block's start (the backend's "
           "detection, the monitor's wake-up, the handoff, the spare's wake-up); 200 "
           "blocks per slot per sample, all slots blocking at once"),
    W("detection: sleep", "detect_sleep", None, None, kind="detect",
      note="... in nanosleep(3 ms) (a probe that runs only after the sleep counts "
           "as missed)"),
    W("detection: spin", "detect_spin", None, None, kind="detect",
      note="... spinning until the probe ran: the hog path (step counters, "
           "hog threshold), not the backend"),
]

MEMORY = [
    ("urt fiber", "urt", "idle_mem_fiber"),
    ("urt poll task", "urt", "idle_mem_poll"),
    ("tokio task", "tokio", "idle_mem"),
    ("goroutine", "go", "idle_mem"),
]
MEMORY_TARGETS = {"urt fiber": 8192, "urt poll task": 256}

CALLGRIND = ["spawn_many_local", "spawn_many_local_poll", "yield_many", "yield_many_poll",
             "ping_pong", "chained_spawn", "chan_pingpong"]

# Under valgrind the monitor stays off (valgrind does not know bpf(2)): the
# counts are the scheduler's own.
CALLGRIND_ENV = {}

RESULT_RE = re.compile(r"^RESULT (.*)$")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def parse(out):
    res = []
    for line in out.splitlines():
        m = RESULT_RE.match(line)
        if m:
            res.append(dict(kv.split("=", 1) for kv in m.group(1).split()))
    return res


class Runner:
    def __init__(self, bindir, timeout):
        self.bindir, self.timeout = bindir, timeout
        self.failures = []
        self.nruns = 0
        self.slow = []      # runs that took far longer than they should
        self.raw = []

    def prog(self, runtime):
        return os.path.join(self.bindir, runtime + "-bench")

    def run(self, runtime, workload, workers, scale, samples, env=None, prefix=()):
        cmd = list(prefix) + [self.prog(runtime), workload, str(workers), repr(scale),
                              str(samples)]
        e = dict(os.environ)
        e.update(env or {})
        t0 = time.time()
        self.nruns += 1
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout,
                               env=e)
            if time.time() - t0 > 15 and not prefix:
                self.slow.append("%s: %.0f s" % (" ".join(cmd), time.time() - t0))
        except subprocess.TimeoutExpired:
            self.failures.append("%s: timed out after %d s" % (" ".join(cmd), self.timeout))
            return None, ""
        res = parse(p.stdout)
        if p.returncode != 0 or not res:
            self.failures.append("%s: exit %d: %s" % (" ".join(cmd), p.returncode,
                                                      p.stderr.strip()[-300:]))
            return None, p.stderr
        self.raw.extend(p.stdout.splitlines())
        return res, p.stderr


def monitor_probe(runner):
    """Which monitor backends this liburt and this machine have.

    Returns (has_monitor, default backend, {backend: None if it starts, else
    why not}). A liburt from before the monitor ignores URT_MONITOR: a bogus
    value is not refused."""
    def probe(value):
        env = {} if value is None else {"URT_MONITOR": value}
        p = subprocess.run([runner.prog("urt"), "chained_spawn", "1", "0.001", "1"],
                           capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, **env))
        res = parse(p.stdout)
        return p.returncode, (res[0].get("monitor", "off") if res else None), \
            p.stderr.strip().splitlines()
    rc, _, _ = probe("no-such-backend")
    if rc == 0:
        return False, "off", {}
    _, default, _ = probe(None)
    avail = {}
    for b in MONITOR_BACKENDS:
        rc, _, err = probe(b)
        avail[b] = None if rc == 0 else (err[0] if err else "exit %d" % rc)
    return True, default or "?", avail


def summarize(values):
    values = sorted(values)
    med = statistics.median(values)
    if len(values) >= 4:
        q = statistics.quantiles(values, n=4)
        spread = (q[2] - q[0]) / 2
    else:
        spread = (values[-1] - values[0]) / 2
    return med, (100.0 * spread / med if med else 0.0)


def fmt_val(v, unit):
    if v is None:
        return "-"
    med, spread = v
    if unit == "ms":
        s = "%.1f ms" % med
    elif med >= 10000:
        s = "%.1f us" % (med / 1000)
    else:
        s = "%.0f ns" % med
    return "%s ±%.0f%%" % (s, spread)


def fmt_us(v):
    if v >= 10000:
        return "%.1f ms" % (v / 1000)
    return "%.0f us" % v


def ratio(a, b):
    if a is None or b is None or not b[0]:
        return "-"
    return "%.2f" % (a[0] / b[0])


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except Exception:
        return ""


def machine(rev):
    cpu = sh("sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1")
    mem = sh("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    tokio = sh("sed -n '/^name = \"tokio\"$/{n;s/^version = \"\\(.*\\)\"/\\1/p}' "
               + os.path.join(HERE, "peers/tokio/Cargo.lock"))
    if rev is None:
        commit = sh("cd %s && git rev-parse --short HEAD" % TOP)
        dirty = sh("cd %s && git status --porcelain -- lib include | head -1" % TOP)
        rev = "%s%s" % (commit, " (lib/ or include/ modified)" if dirty else "")
    return [
        ("date", datetime.datetime.now().strftime("%Y-%m-%d %H:%M %Z").strip()),
        ("urt", rev),
        ("CPU", "%s, %d CPUs in the affinity mask" % (cpu, NCPU)),
        ("memory", mem),
        ("kernel", "%s %s" % (platform.system(), platform.release())),
        ("load average at start", sh("cut -d' ' -f1-3 /proc/loadavg")),
        ("compiler", sh("${CC:-gcc} --version | head -1") + ", -O2"),
        ("tokio", "%s (Debian librust-tokio-dev), %s, cargo --release" %
         (tokio or "?", sh("/usr/bin/rustc --version"))),
        ("Go", sh("/usr/bin/go version")),
        ("valgrind", sh("valgrind --version")),
    ]


def callgrind_ir(runner, runtime, workload, scale):
    """Instructions (callgrind Ir) of a 1-worker run: warm-up + 1 sample."""
    res, err = runner.run(runtime, workload, 1, scale, 1, env=CALLGRIND_ENV,
                          prefix=("valgrind", "--tool=callgrind",
                                  "--callgrind-out-file=/dev/null"))
    m = re.search(r"Collected : (\d+)", err or "")
    if not res or not m:
        return None
    return int(m.group(1)), int(res[-1]["ops"]) * 2


def callgrind(runner, workload):
    """Instructions per operation: the difference of two sizes cancels the
    runtime's start-up and teardown."""
    out = {}
    for runtime in ("urt", "tokio"):
        name = workload
        if runtime == "tokio":
            name = workload.replace("_poll", "")
        a = callgrind_ir(runner, runtime, name, 0.05)
        b = callgrind_ir(runner, runtime, name, 0.15)
        if a and b and b[1] > a[1]:
            out[runtime] = (b[0] - a[0]) / (b[1] - a[1])
    return out


# ---- Inside the VM: urt.ko next to bpf and off --------------------------
# This host cannot load urt.ko, so selftests/vm/vm-bench.sh boots the
# vm-check VM (Debian's kernel under qemu) with it loaded and runs a static
# urt-bench there with URT_MONITOR=off, bpf and kmod; its RESULT lines carry
# asked=<URT_MONITOR> as well as monitor=<what ran>.

VM_BENCH = os.path.join(TOP, "selftests", "vm", "vm-bench.sh")
VM_MONITORS = ["off", "bpf", "kmod"]
VM_STARVE = [("none", "starve_none"), ("sleep", "starve_sleep"),
             ("blocking read", "starve_read"), ("spin", "starve_spin")]


def vm_run(rounds, samples, only):
    """Runs vm-bench.sh. Returns a dict: ok, why (when nothing came back),
    cells {(workload, workers, asked, stat): [values]}, ran {asked: {monitor}},
    notes (its comment lines), summary (its last line), seconds."""
    cmd = [VM_BENCH, "--rounds", str(rounds), "--samples", str(samples)]
    if only:
        cmd += ["--only", only]
    vm = {"ok": False, "why": None, "cells": {}, "ran": {}, "notes": [],
          "summary": "", "seconds": 0.0, "thr": {}}
    t0 = time.time()
    log("inside the VM: %s" % " ".join(cmd))
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=420,
                           env=dict(os.environ, URT_VM_TIMEOUT="360"))
    except (OSError, subprocess.TimeoutExpired) as e:
        vm["why"] = str(e)
        return vm
    vm["seconds"] = time.time() - t0
    for line in p.stdout.splitlines():
        m = RESULT_RE.match(line)
        if m:
            r = dict(kv.split("=", 1) for kv in m.group(1).split())
            key = (r["workload"], int(r["workers"]), r.get("asked", "?"), r.get("stat"))
            vm["cells"].setdefault(key, []).append(float(r["value"]))
            vm["ran"].setdefault(r.get("asked", "?"), set()).add(r.get("monitor", "?"))
            if "threshold_us" in r:
                vm["thr"][r["workload"]] = r["threshold_us"]
        elif line.startswith("vm-bench:"):
            vm["summary"] = line
        elif line.startswith("# vm-bench:"):
            vm["notes"].append(line[2:])
    vm["ok"] = bool(vm["cells"])
    if p.returncode != 0:
        err = [ln for ln in p.stderr.splitlines() if "error" in ln] or \
            p.stderr.strip().splitlines()[-1:]
        vm["why"] = "vm-bench.sh exit %d%s" % (p.returncode,
                                               ": " + err[-1] if err else "")
    return vm


def render_vm(vm):
    L = ["\n## Inside the VM (qemu TCG, Debian kernel 6.1): urt with kmod vs bpf vs off\n"]
    if not vm["ok"]:
        L.append("Not measured: %s. Run `make vm-bench` to see why (it needs what "
                 "`make vm-check` needs)." % (vm["why"] or "no results"))
        return "\n".join(L) + "\n"
    L.append("**Emulated.** This host cannot load urt.ko, so these rows come from the "
             "vm-check VM: Debian's own kernel under qemu **TCG** (every guest "
             "instruction emulated, 2 vCPUs on a shared 2-core host), urt.ko "
             "loaded, a static urt-bench (selftests/vm/vm-bench.sh, %.0f s). "
             "Absolute times mean little: CPU work runs 10-50x slower than on "
             "the host, and the guest's clock follows the host's. Compare the "
             "columns within a row, and each cell with the VM's own no-blocking "
             "run (in brackets: the ratio to starvation none with the same "
             "monitor, the ideal inside the VM). These are the kmod rows that the "
             "host's tables above cannot have." % vm["seconds"])
    c = vm["cells"]
    workers = sorted({k[1] for k in c})
    mons = [m for m in VM_MONITORS if any(k[2] == m for k in c)]
    ran = ["URT_MONITOR=%s ran %s" % (m, "/".join(sorted(vm["ran"][m])))
           for m in mons if vm["ran"].get(m) != {m}]
    if ran:
        L.append("\nNot every backend asked for ran: " + "; ".join(ran) + ".")

    def cell(wl, n, m, stat=None):
        v = c.get((wl, n, m, stat))
        return summarize(v) if v else None

    starve = [(label, wl) for label, wl in VM_STARVE if any(k[0] == wl for k in c)]
    if starve:
        L.append("\n### Starvation (ms until 100 short tasks are done)\n")
        L.append("| blocker | workers | " + " | ".join("monitor %s" % m for m in mons) +
                 " |")
        L.append("|---|---:|" + "---:|" * len(mons))
    for label, wl in starve:
        for n in workers:
            cells = []
            for m in mons:
                v, i = cell(wl, n, m), cell("starve_none", n, m)
                cells.append(fmt_val(v, "ms") + (" (%sx)" % ratio(v, i) if v and i and
                                                   wl != "starve_none" else ""))
            if any(x != "-" for x in cells):
                L.append("| %s | %d | %s |" % (label, n, " | ".join(cells)))

    if any(k[0] == "chan_pingpong" for k in c):
        L.append("\n### Monitor cost (chan_pingpong at 1/4 size, ns per round trip)\n")
        L.append("| workers | " + " | ".join("monitor %s" % m for m in mons) +
                 " | vs off |")
        L.append("|---:|" + "---:|" * (len(mons) + 1))
        for n in workers:
            vals = [cell("chan_pingpong", n, m) for m in mons]
            off = vals[mons.index("off")] if "off" in mons else None
            over = ["%s %+.1f%%" % (m, 100 * (v[0] / off[0] - 1))
                    for m, v in zip(mons, vals) if m != "off" and v and off]
            L.append("| %d | %s | %s |" % (n, " | ".join(fmt_val(v, "ns") for v in vals),
                                            ", ".join(over) or "-"))

    detect = sorted({k[0] for k in c if k[0].startswith("detect_")})
    if detect:
        dmons = [m for m in mons if any(k[0] in detect and k[2] == m for k in c)]
        L.append("\n### Detection latency (us from the block to the spare running "
                 "the slot; median over samples of each sample's p50 / p99)\n")
        L.append("| workload | threshold | workers | " +
                 " | ".join("monitor %s" % m for m in dmons) + " |")
        L.append("|---|---:|---:|" + "---:|" * len(dmons))
        for wl in detect:
            for n in workers:
                cells = []
                for m in dmons:
                    p50, p99 = cell(wl, n, m, "p50"), cell(wl, n, m, "p99")
                    cells.append("%.0f / %.0f" % (p50[0], p99[0]) if p50 and p99 else "-")
                if any(x != "-" for x in cells):
                    L.append("| %s | %s us | %d | %s |" % (wl, vm["thr"].get(wl, "?"), n,
                                                        " | ".join(cells)))
    tgt = []
    for label, wl in VM_STARVE[1:]:
        for n in workers:
            for m in ("kmod", "bpf"):
                v, i = cell(wl, n, m), cell("starve_none", n, m)
                if v and i:
                    r = round(v[0] / i[0], 2)
                    tgt.append("- starvation: %s, %d worker%s, monitor %s: %.2f x the VM's "
                               "ideal (target <= 1.10): %s" % (
                                   label, n, "s" if n > 1 else "", m, r,
                                   "met" if r <= 1.10 else "not met"))
    if tgt:
        L.append("\n### Targets inside the VM (issue 6; emulated, so indicative only)\n")
        L.extend(tgt)
    for note in vm["notes"]:
        L.append("\n- %s" % note)
    if vm["why"]:
        L.append("\n- incomplete: %s" % vm["why"])
    L.append("\nReproduce: `make vm-bench` (this section only) or `make bench`; "
             "`make bench RUN_FLAGS=--no-vm` skips it. %s" % vm["summary"])
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True, help="directory of urt-, tokio-, go-bench")
    ap.add_argument("--doc", help="write the markdown report here")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--samples", type=int, default=3, help="timed samples per run")
    ap.add_argument("--only", help="only workloads whose name contains this")
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--rev", help="what urt is (default: git rev-parse in this tree)")
    ap.add_argument("--no-vm", action="store_true",
                    help="skip the monitor benchmarks inside the VM (urt.ko)")
    ap.add_argument("--vm-only", action="store_true",
                    help="only the monitor benchmarks inside the VM; print, write nothing")
    ap.add_argument("--vm-rounds", type=int, default=3)
    a = ap.parse_args()
    if a.vm_only:
        print(render_vm(vm_run(a.vm_rounds, a.samples, a.only)))
        return 0

    t_start = time.time()
    # The longest run here takes ~10 s (a million goroutines); a hung run
    # must not eat the 10 minutes `make bench` may take.
    runner = Runner(a.bin, timeout=40)
    runner.rev = a.rev
    scale_mul, rounds, samples = 1.0, a.rounds, a.samples
    if a.smoke:
        scale_mul, rounds, samples = 0.01, 1, 1
    has_monitor, default_mon, avail = monitor_probe(runner)
    backends = ["off"] + [b for b in MONITOR_BACKENDS if avail.get(b, "") is None]
    if "bpf" in backends:
        backends.insert(backends.index("bpf") + 1, "bpf" + POLL_SUFFIX)
        backends.insert(backends.index("bpf") + 1, "bpf" + OFF_SUFFIX)
    if has_monitor:
        CALLGRIND_ENV["URT_MONITOR"] = "off"
    workloads = [w for w in WORKLOADS if not a.only or a.only in w.name]

    # urt columns: one per monitor backend for the starvation rows (the
    # rows the monitor is for), "off" everywhere else.
    cells = {}      # (workload name, workers, column) -> [values]
    threshold = {}  # detect cells: (workload name, workers, column) -> threshold (us)
    jobs = []       # one round: (w, workers, column, runtime, prog name, env)
    for w in workloads:
        for n in WORKERS:
            cols = [("urt", "urt", {})]
            if w.kind == "starve":
                cols = [("urt[%s]" % b, "urt", mon_env(b)) for b in backends]
            elif w.kind == "detect":
                # Off is meaningless here: nothing would move the slot.
                cols = [("urt[%s]" % b, "urt", mon_env(b))
                        for b in backends if b != "off"]
            cols += [("tokio", "tokio", {}), ("go", "go", {})]
            group = []
            for col, runtime, env in cols:
                if w.progs[runtime]:
                    group.append((w, n, col, runtime, w.progs[runtime], env))
            jobs.append(group)
    # The monitor's cost: the switch-heavy chan_pingpong per backend.
    mon_jobs = []
    if not a.only or a.only in "monitor":
        for n in WORKERS:
            mon_jobs.append([(None, n, "mon[%s]" % b, "urt", "chan_pingpong",
                              mon_env(b)) for b in backends])

    for r in range(rounds):
        log("round %d/%d (%.0f s)" % (r + 1, rounds, time.time() - t_start))
        for group in jobs + mon_jobs:
            k = r % len(group)
            for (w, n, col, runtime, prog, env) in group[k:] + group[:k]:
                scale = (w.scale if w else 1.0) * scale_mul
                # A detect sample is already 200 blocks: one per run.
                res, _ = runner.run(runtime, prog, n, scale,
                                    1 if w and w.kind == "detect" else samples,
                                    env=env if has_monitor else {})
                key = (w.name if w else "monitor", n, col)
                cells.setdefault(key, [])
                if res and w and w.kind == "detect":
                    for x in res:
                        k = key + (x.get("stat", "?"),)
                        cells.setdefault(k, []).append(float(x["value"]))
                        if x.get("stat") == "p50":
                            cells.setdefault(key + ("missed",), []).append(
                                float(x.get("missed", 0)))
                            cells.setdefault(key + ("ops",), []).append(float(x["ops"]))
                            threshold[key] = x.get("threshold_us", "?")
                elif res:
                    cells[key].extend(float(x["value"]) for x in res)

    mem = []
    if not a.only or a.only in "idle_mem":
        for label, runtime, prog in MEMORY:
            vals, ops = [], None
            for r in range(1 if a.smoke else 2):
                res, _ = runner.run(runtime, prog, 1, 0.001 if a.smoke else 1.0, 1)
                if res:
                    vals.append(float(res[0]["value"]))
                    ops = int(res[0]["ops"])
            mem.append((label, ops, min(vals) if vals else None))

    cg = {}
    if not a.no_callgrind and not a.smoke and shutil.which("valgrind"):
        for wl in CALLGRIND:
            if a.only and a.only not in wl:
                continue
            log("callgrind %s" % wl)
            cg[wl] = callgrind(runner, wl)

    vm = None
    if not a.no_vm and not a.smoke and not a.only:
        vm = vm_run(a.vm_rounds, a.samples, None)

    elapsed = time.time() - t_start
    summary = {k: summarize(v) for k, v in cells.items() if v and len(k) == 3
               or v and len(k) == 4 and k[3] in ("p50", "p99")}
    for k, v in cells.items():
        if v and len(k) == 4 and k[3] in ("p99", "max"):
            summary[k[:3] + (k[3] + "-worst",)] = max(v)
    mon = (has_monitor, default_mon, avail, backends)
    summary["detect-sums"] = {k: sum(v) for k, v in cells.items()
                              if len(k) == 4 and k[3] in ("missed", "ops")}
    summary["detect-threshold"] = threshold
    report = render(workloads, summary, mem, cg, mon, runner, rounds, samples, elapsed,
                    a.smoke)
    if vm:
        report += render_vm(vm)
    if a.smoke:
        print("bench smoke: %d runs, %d failed (%.0f s)" % (
            runner.nruns, len(runner.failures), elapsed))
    else:
        print(report)
    if a.doc and not a.smoke:
        with open(a.doc, "w") as f:
            f.write(report)
        raw = os.path.join(a.bin, "results.txt")
        with open(raw, "w") as f:
            f.write("\n".join(runner.raw) + "\n")
        log("wrote %s (raw samples: %s)" % (a.doc, raw))
    if runner.failures:
        log("%d run(s) failed:" % len(runner.failures))
        for f in runner.failures:
            log("  " + f)
        return 1
    return 0


def render(workloads, s, mem, cg, mon, runner, rounds, samples, elapsed, smoke):
    has_monitor, default_mon, avail, backends = mon
    L = []
    L.append("# Benchmarks: urt, tokio and Go, side by side\n")
    L.append("Generated by `make bench` (tools/bench/run.py); do not edit by hand. "
             "The workloads are specified in tools/bench/README.md and written "
             "once per runtime: tools/bench/urt/bench.c, "
             "tools/bench/peers/tokio/src/main.rs, tools/bench/peers/go/main.go.\n")
    L.append("## Machine\n")
    for k, v in machine(runner.rev):
        L.append("- %s: %s" % (k, v))
    L.append("- run: %d rounds x %d samples per cell (+1 warm-up per run), runtimes "
             "interleaved, %.0f s in all%s" % (rounds, samples, elapsed,
                                               " (SMOKE: tiny sizes)" if smoke else ""))
    L.append("\nMedian ± spread (half the interquartile range, % of the median) over "
             "all samples. Lower is better everywhere; a ratio below 1 means urt "
             "is faster. This machine is shared and noisy: read differences under "
             "~20% as noise, and prefer the instruction counts further down.\n")
    if has_monitor:
        mon_note = ("one urt column per monitor backend that starts here, with "
                    "liburt's default, pollers on demand; bpf%s: no pollers; "
                    "bpf%s: pollers whenever tasks run" % (OFF_SUFFIX, POLL_SUFFIX))
        unavailable = ["%s (%s)" % (b, why) for b, why in avail.items() if why]
    else:
        mon_note = "monitor: not yet (liburt has no URT_MONITOR yet; urt runs with " \
                   "the monitor off)"
        unavailable = []
    L.append("## Throughput and latency (ns per operation)\n")
    L.append("urt runs with its defaults%s.\n" % (
        " (URT_MONITOR unset: auto, which chose **%s** here; its cost is measured "
        "below)" % default_mon if has_monitor else " (no monitor yet)"))
    L.append("| workload | workers | urt | tokio | Go | urt/tokio | urt/Go |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    for w in workloads:
        if w.kind != "micro":
            continue
        for n in WORKERS:
            u, t, g = (s.get((w.name, n, c)) for c in ("urt", "tokio", "go"))
            L.append("| %s | %d | %s | %s | %s | %s | %s |" % (
                w.name, n, fmt_val(u, "ns"), fmt_val(t, "ns"), fmt_val(g, "ns"),
                ratio(u, t), ratio(u, g)))
    L.append("\n## Starvation (ms until 100 short tasks are done; %s)\n" % mon_note)
    cols = ["urt[%s]" % b for b in backends] + ["tokio", "go"]
    L.append("Each cell: median ± spread, and in brackets the ratio to the same "
             "runtime's (and backend's) no-blocking run, the ideal.\n")
    L.append("| blocker | workers | " + " | ".join(
        "urt, monitor %s" % b for b in backends) + " | tokio | Go |")
    L.append("|---|---:|" + "---:|" * len(cols))
    for w in workloads:
        if w.kind != "starve":
            continue
        for n in WORKERS:
            cells = []
            for c in cols:
                v, i = s.get((w.name, n, c)), s.get(("starvation: none", n, c))
                cells.append(fmt_val(v, "ms") + (" (%sx)" % ratio(v, i) if v and i and
                                                   w.name != "starvation: none" else ""))
            L.append("| %s | %d | %s |" % (w.name.split(": ", 1)[1], n, " | ".join(cells)))
    if unavailable:
        L.append("\nNot measured, the backend does not start on this machine: " +
                 "; ".join(unavailable) + ".")
    dbackends = [b for b in backends if b != "off"]
    if any(w.kind == "detect" for w in workloads) and dbackends:
        L.append("\n## Detection latency (block -> spare running the slot), p50/p99 "
                 "per backend\n")
        L.append("urt only (the peers have no such measurement). Per cell: the median "
                 "over runs of each run's p50 / p99 (%s blocks per slot per run, one run per round), "
                 "and the worst p99 and max seen. \"past\" is the p50 / p99 minus the "
                 "threshold: what the monitor adds to it.\n" % "200")
        L.append("| block | workers | backend | threshold | p50 | p99 | past threshold "
                 "p50 / p99 | worst p99 / max | missed |")
        L.append("|---|---:|---|---:|---:|---:|---:|---:|---:|")
        sums, thr = s.get("detect-sums", {}), s.get("detect-threshold", {})
        for w in workloads:
            if w.kind != "detect":
                continue
            for n in WORKERS:
                for b in dbackends:
                    key = (w.name, n, "urt[%s]" % b)
                    p50, p99 = s.get(key + ("p50",)), s.get(key + ("p99",))
                    worst = s.get(key + ("p99-worst",))
                    mx = s.get(key + ("max-worst",))
                    t = thr.get(key)
                    if not p50 or not p99:
                        L.append("| %s | %d | %s | - | FAILED | | | | |" % (
                            w.name.split(": ", 1)[1], n, b))
                        continue
                    tus = float(t) if t not in (None, "?") else 0.0
                    L.append("| %s | %d | %s | %s | %s | %s | %s / %s | %s / %s | %d of %d |" % (
                        w.name.split(": ", 1)[1], n, b, fmt_us(tus),
                        fmt_us(p50[0]), fmt_us(p99[0]),
                        fmt_us(p50[0] - tus), fmt_us(p99[0] - tus),
                        fmt_us(worst) if worst else "-", fmt_us(mx) if mx else "-",
                        sums.get(key + ("missed",), 0), sums.get(key + ("ops",), 0)))
    if not has_monitor:
        L.append("\nurt (monitor proc/bpf/kmod): not yet. The harness runs every "
                 "backend as soon as liburt accepts URT_MONITOR "
                 "(`URT_MONITOR=off|proc|bpf|kmod`), with no change here.")

    L.append("\n## Idle memory (resident bytes per task, tasks waiting on a channel)\n")
    L.append("| task | tasks | bytes per task | target |")
    L.append("|---|---:|---:|---|")
    for label, ops, v in mem:
        tgt = MEMORY_TARGETS.get(label)
        verdict = "-"
        if tgt:
            verdict = "<= %d: %s" % (tgt, "met" if v is not None and v <= tgt else "NOT met")
        L.append("| %s | %s | %s | %s |" % (label, "{:,}".format(ops) if ops else "-",
                                             "%.0f" % v if v is not None else "FAILED",
                                             verdict))
    L.append("\n1,000,000 tasks, one channel per 1000 of them. urt fibers: as many as "
             "fit in vm.max_map_count (each stack is 2 mappings: guard page + stack).")

    L.append("\n## Monitor cost (chan_pingpong, ns per round trip)\n")
    L.append("| workers | " + " | ".join("monitor %s" % b for b in backends) +
             " | overhead vs off |")
    L.append("|---:|" + "---:|" * (len(backends) + 1))
    for n in WORKERS:
        vals = [s.get(("monitor", n, "mon[%s]" % b)) for b in backends]
        over = []
        for b, v in zip(backends[1:], vals[1:]):
            if v and vals[0]:
                over.append("%s %+.1f%%" % (b, 100 * (v[0] / vals[0][0] - 1)))
        L.append("| %d | %s | %s |" % (n, " | ".join(fmt_val(v, "ns") for v in vals),
                                        ", ".join(over) if over else
                                        ("-" if has_monitor else "monitor: not yet")))

    if cg:
        L.append("\n## Instructions per operation (callgrind, 1 worker)\n")
        L.append("Repeatable where wall time is not: the difference between a run "
                 "at 5% and one at 15% of the sizes, divided by the difference in "
                 "operations. Go does not run under valgrind; urt runs with the monitor "
                 "off here.\n")
        L.append("| workload | urt | tokio | urt/tokio |")
        L.append("|---|---:|---:|---:|")
        for wl, d in cg.items():
            u, t = d.get("urt"), d.get("tokio")
            L.append("| %s%s | %s | %s | %s |" % (
                wl.replace("_poll", ""), " (urt poll tasks)" if "_poll" in wl else "",
                "%.0f" % u if u else "-", "%.0f" % t if t else "-",
                "%.2f" % (u / t) if u and t else "-"))

    L.append("\n## Targets (issue 6)\n")
    for w in workloads:
        if w.target is None:
            continue
        for n in WORKERS:
            u, t = s.get((w.name, n, "urt")), s.get((w.name, n, "tokio"))
            if u and t:
                r = u[0] / t[0]
                L.append("- %s, %d worker%s: urt/tokio %.2f (target <= %.1f): %s" % (
                    w.name, n, "s" if n > 1 else "", r, w.target,
                    "met" if r <= w.target else "not met"))
    if not has_monitor:
        L.append("- starvation within 10% of the no-blocking ideal with kmod or bpf: "
                 "not measurable yet (no monitor)")
        L.append("- monitor overhead under 3%: not measurable yet (no monitor)")
    for b in ("kmod", "bpf", "bpf" + OFF_SUFFIX, "bpf" + POLL_SUFFIX):
        if not has_monitor:
            break
        if b not in backends:
            L.append("- starvation with %s within 10%% of the ideal: not measured (%s)" %
                     (b, avail.get(b)))
            continue
        for w in workloads:
            if w.kind != "starve" or w.name == "starvation: none":
                continue
            for n in WORKERS:
                v = s.get((w.name, n, "urt[%s]" % b))
                i = s.get(("starvation: none", n, "urt[%s]" % b))
                if v and i:
                    r = v[0] / i[0]
                    L.append("- %s, %d worker%s, monitor %s: %.2f x the ideal "
                             "(target <= 1.10): %s" % (w.name, n, "s" if n > 1 else "", b,
                                                       r, "met" if r <= 1.10 else "not met"))
    for b in ("bpf", "bpf" + OFF_SUFFIX, "bpf" + POLL_SUFFIX):
        if b not in backends:
            continue
        for w in workloads:
            if w.kind != "detect" or w.name == "detection: spin":
                continue
            for n in WORKERS:
                key = (w.name, n, "urt[%s]" % b)
                p99 = s.get(key + ("p99",))
                if p99:
                    thr = s.get("detect-threshold", {}).get(key, "?")
                    L.append("- %s p99 detection under 100 us, %s, %d worker%s: %.0f us "
                             "(block -> spare running the slot, threshold %s us): %s" % (
                                 b, w.name.split(": ", 1)[1], n, "s" if n > 1 else "",
                                 p99[0], thr, "met" if p99[0] < 100 else "not met"))
    for b in backends[1:]:
        for n in WORKERS:
            v, o = s.get(("monitor", n, "mon[%s]" % b)), s.get(("monitor", n, "mon[off]"))
            if v and o:
                d = 100 * (v[0] / o[0] - 1)
                L.append("- monitor %s overhead, %d worker%s: %+.1f%% (target < 3%%): %s" % (
                    b, n, "s" if n > 1 else "", d, "met" if d < 3 else "not met"))
    for label, ops, v in mem:
        tgt = MEMORY_TARGETS.get(label)
        if tgt:
            L.append("- idle %s <= %d bytes: %s" % (
                label, tgt, ("%.0f: met" % v if v <= tgt else "%.0f: not met" % v)
                if v is not None else "failed to measure"))

    L.append("\n## Workloads\n")
    for w in workloads:
        L.append("- **%s**: %s" % (w.name, w.note))
    L.append("- **monitor cost**: chan_pingpong with URT_MONITOR=off and each backend")
    L.append("\nReproduce: `make bench` (about %d minutes here). Raw samples: "
             "build/bench/results.txt." % max(1, round(elapsed / 60 + 1)))
    if runner.slow:
        L.append("\n## Slow runs (over 15 s; a hang that recovered?)\n")
        for f in runner.slow:
            L.append("- `%s`" % f)
    if runner.failures:
        L.append("\n## Failed runs\n")
        for f in runner.failures:
            L.append("- `%s`" % f.replace("`", "'"))
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    sys.exit(main())
