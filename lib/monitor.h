/* SPDX-License-Identifier: MIT */
/*
 * monitor.h - how the runtime learns that a worker thread is stuck in the
 * kernel. Internal to liburt, not installed. Documentation/monitor.md is
 * the guide (backends, costs, how "auto" chooses).
 *
 * Model
 *   A monitor watches up to max_workers slots. A worker thread registers
 *   itself for one slot; from then on the backend keeps, per slot, a state
 *   RUNNING (on a CPU or runnable) or BLOCKED (off the run queue: sleeping
 *   in a syscall, a futex, a page fault) with the time the state began,
 *   the syscall number and counters. urt__mon_snapshot() reads that state
 *   without a system call (kmod, bpf) or from the last sample (proc).
 *   urt__mon_wait() returns when a registered worker has stayed BLOCKED
 *   for threshold_ns: one event per such block, never one for a shorter
 *   block. The runtime decides what to do (hand the slot to a spare thread
 *   if the slot has work queued); the monitor only reports.
 *
 * Backends (enum urt_mon_kind)
 *   KMOD  /dev/urt (include/uapi/linux/urt.h): preempt notifiers and an
 *         hrtimer per worker in the kernel; the monitor sleeps in poll().
 *   BPF   a sched_switch program (bpf/urt_mon.bpf.c) keeps the states in
 *         an mmapped BPF array. With tp_btf, a bpf_timer armed at block
 *         time posts one ringbuf record per block that passes the
 *         threshold; with the raw_tp fallback, wait() scans the array
 *         (a tick, as proc does).
 *   PROC  no kernel help: wait() samples /proc/self/task/TID/stat of each
 *         worker on a tick that starts at 20 us and doubles to 10 ms while
 *         nothing is blocked, as Go's sysmon does. Unprivileged. Blocks
 *         shorter than the tick are not seen at all; since_ns is when the
 *         tick first saw the block, the counters count what it saw.
 *   OFF   nothing is watched; wait() only sleeps.
 *
 * Blocks and seq
 *   Every state change of a slot bumps its seq by 2 (odd while the kernel
 *   side writes). So (slot, seq) names one block: an event whose seq still
 *   equals the slot's snapshot seq describes a block that has not ended.
 *   A parked worker (futex wait) is BLOCKED like any other; the runtime
 *   knows which of its workers parked on purpose and ignores those.
 *
 * Threads
 *   - open and close: one thread, with no other call on the monitor in
 *     progress or to come (close after every wait/kick/snapshot returned).
 *   - register / unregister: on the worker thread itself (the kernel keys
 *     on the calling thread). Different slots may (un)register at once.
 *     A thread holds at most one slot of a monitor at a time.
 *   - snapshot, kick, kind: any thread, any time; lock-free, no syscall
 *     (proc: reads the tick's last sample).
 *   - wait: one thread at a time (the runtime's monitor thread).
 *   All functions return 0 or a negative errno, except where noted.
 */
#ifndef URT_MONITOR_H
#define URT_MONITOR_H

#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include "internal.h"

enum urt_mon_kind {
	URT_MON_OFF,
	URT_MON_PROC,
	URT_MON_BPF,
	URT_MON_KMOD,
};

/* urt_mon_wstate.state: the values of include/uapi/linux/urt.h */
enum {
	URT_MON_UNUSED	= 0,	/* no thread registered for the slot */
	URT_MON_RUNNING	= 1,	/* on a CPU or runnable (preempted, yielding) */
	URT_MON_BLOCKED	= 2,	/* off the run queue, sleeping in the kernel */
};

/* One slot's state, a consistent snapshot. */
struct urt_mon_wstate {
	uint32_t seq;		/* even; changes (+2) at every state change */
	uint32_t state;		/* URT_MON_UNUSED / RUNNING / BLOCKED */
	int32_t tid;		/* registered thread, 0 when UNUSED */
	int32_t syscall;	/* BLOCKED: syscall nr it blocked in; -1 none/unknown */
	int64_t since_ns;	/* urt_now() (CLOCK_MONOTONIC) when the state began */
	uint64_t blocks;	/* blocks since register */
	uint64_t blocked_ns;	/* time blocked, blocks that ended */
};

/* A worker stayed blocked for the threshold. */
struct urt_mon_event {
	uint32_t slot;
	uint32_t seq;		/* the block; compare with urt_mon_wstate.seq */
	int32_t tid;
	int32_t syscall;	/* as in urt_mon_wstate */
	int64_t since_ns;	/* the block began */
	int64_t time_ns;	/* the backend noticed (for latency statistics) */
};

struct urt_mon;

/*
 * Opens a monitor for slots 0 .. max_workers - 1 with a threshold of
 * threshold_ns (> 0). which: "auto" tries kmod if /dev/urt exists, then
 * bpf, then proc; "kmod", "bpf", "proc", "off" ask for one backend and fail
 * if it cannot start; "bpf-timer" / "bpf-tick" / "bpf-raw" force one BPF
 * mode (tp_btf + bpf_timer, tp_btf + tick, raw_tp + tick: for tests and
 * measurements). why (may be NULL) gets one line saying which backend runs
 * and why the ones before it did not, or why the open failed.
 * Returns 0, -EINVAL (bad which/threshold/max_workers), or the error of the
 * backend asked for (-ENOENT: no /dev/urt, -EPERM: no BPF privilege, ...).
 */
int urt__mon_open(struct urt_mon **out, const char *which, unsigned int max_workers,
		  int64_t threshold_ns, char *why, size_t whylen) URT_HIDDEN;

/*
 * Changes when the backend reports a block: after notice_ns (> 0) instead
 * of the threshold given to urt__mon_open. A block already under way keeps
 * the notice it started with, or a later one (kmod: the one it started
 * with; bpf: the current one if it is later). The monitor thread only, as
 * urt__mon_wait(). -EINVAL for notice_ns <= 0; else 0 or the backend's
 * error (the old notice stays).
 */
int urt__mon_set_notice(struct urt_mon *m, int64_t notice_ns) URT_HIDDEN;

/* The calling thread becomes the worker watched in slot. -EBUSY if the
 * slot is taken, -EINVAL if slot >= max_workers. OFF: does nothing. */
int urt__mon_register(struct urt_mon *m, unsigned int slot) URT_HIDDEN;

/* Registers thread tid of this process for slot, from any thread: bpf and
 * proc only (the kmod takes only the caller: -EOPNOTSUPP). Used to move
 * running workers to another backend. */
int urt__mon_register_tid(struct urt_mon *m, unsigned int slot, pid_t tid) URT_HIDDEN;

/*
 * wakes: a counter that slot's worker bumps each time it comes back from a
 * wait of the runtime's own (a park, a spare's wait), before it can block
 * again; NULL: none. A sampling backend (proc) cannot see the moment of
 * running between such a wait and a block right after it, and would take
 * both for one block (which the runtime ignores: it parked on purpose); a
 * counter that moved tells it a BLOCKED sample is a new block. Backends
 * that see every context switch ignore it. Call after register, on any
 * thread; unregister forgets it.
 */
int urt__mon_set_wakes(struct urt_mon *m, unsigned int slot, const atomic_uint *wakes) URT_HIDDEN;
/* The calling thread, registered for slot, stops being watched. The slot
 * reads UNUSED afterwards; an event for it may still be delivered once. */
int urt__mon_unregister(struct urt_mon *m, unsigned int slot) URT_HIDDEN;

/* Copies slot's state. -EINVAL for a bad slot, -EOPNOTSUPP for OFF. */
int urt__mon_snapshot(struct urt_mon *m, unsigned int slot,
		      struct urt_mon_wstate *out) URT_HIDDEN;

/*
 * Waits until at least one worker has stayed blocked for the threshold,
 * for timeout_ns at most (URT_FOREVER: no limit; 0: just look), or until
 * urt__mon_kick(). Returns the number of events stored in evs (<= max; the
 * others stay queued for the next call, at most one per slot: a newer
 * block of a slot replaces an older one), 0 on timeout or kick, or a
 * negative errno. Events are not filtered: the block may have ended by
 * the time the caller looks (compare seq with a snapshot).
 */
int urt__mon_wait(struct urt_mon *m, int64_t timeout_ns,
		  struct urt_mon_event *evs, unsigned int max) URT_HIDDEN;

/* Makes a wait() in progress (or the next one) return 0 now.
 * Async-signal-safe. */
void urt__mon_kick(struct urt_mon *m) URT_HIDDEN;

/* The state letter ('R', 'S', 'D', ...) in an open /proc/.../task/TID/stat
 * (read at offset 0), or -1. The proc backend's sampler; also sysmon.c. */
int urt__proc_task_state(int fd, int *cpu) URT_HIDDEN;
enum urt_mon_kind urt__mon_kind(struct urt_mon *m) URT_HIDDEN;
/* "off", "proc", "bpf", "kmod" */
const char *urt__mon_kind_name(enum urt_mon_kind k) URT_HIDDEN;

/* Detaches everything and frees m: when it returns no BPF program of m
 * runs any more (the kernel frees them after an RCU grace period) and the
 * kmod group is closed. Workers still registered are dropped. NULL is fine. */
void urt__mon_close(struct urt_mon *m) URT_HIDDEN;

#endif /* URT_MONITOR_H */
