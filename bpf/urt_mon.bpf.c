// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * urt_mon.bpf.c - the kernel half of urt's BPF monitor backend.
 *
 * One program on sched_switch sees every context switch of the machine.
 * It does work only for threads of one process (target_tgid, rodata) that
 * the runtime registered in tid_slot (tid -> slot):
 *
 *   prev leaves the CPU with prev_state != 0 and !preempt   a block:
 *        states[slot] = BLOCKED since now, syscall nr, blocks++
 *        (tp_btf only) arm the slot's bpf_timer for notice_ns
 *   next enters the CPU while its slot says BLOCKED          the block ends:
 *        states[slot] = RUNNING, blocked_ns += now - since
 *
 * The timer callback posts one 40-byte ringbuf record per block that
 * passed the threshold, none per ordinary block. It is armed lazily (see
 * struct slot_timer) and never cancelled from the switch (hrtimer_cancel
 * may wait for a running callback, not with the rq lock held).
 *
 * raw_tp/sched_switch is the fallback where tp_btf does not load. Tracing
 * programs of that type cannot use bpf_timer, so user space then detects
 * the threshold by scanning the mmapped states array (a tick).
 *
 * states[] follows a seqcount: seq odd while the fields change. Its only
 * writer for a slot is the context switch of that slot's thread (switch-out
 * on the old CPU finishes before the thread can be switched in elsewhere),
 * or the runtime itself while the thread is running and not in tid_slot.
 * Stores are volatile so the compiler keeps their order; x86 (TSO) keeps
 * it in hardware.
 *
 * Facts this relies on (measured, see /work/shared/design/brief.md):
 * prev_state is the tracepoint argument, not prev->__state (which races
 * with a concurrent wakeup); the syscall number is pt_regs->orig_ax of the
 * task, valid while ax still holds the -ENOSYS that syscall entry stores.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "urt_mon.h"

#define CLOCK_MONOTONIC	1
#define ENOSYS		38
#define MAX_SLOTS	64	/* default; user space resizes the maps */

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 target_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SLOTS);
	__type(key, __u32);	/* tid */
	__type(value, __u32);	/* slot */
} tid_slot SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct urt_mon_state);
} states SEC(".maps");

/*
 * A bpf_timer cannot live in an mmapable map: one per slot here.
 *
 * Arming an hrtimer at every block costs ~2 us per block on this VM (the
 * LAPIC reprogram is a VM exit), so the timer is armed lazily: a block
 * arms it only if it is not armed (`armed` 0 -> 1, cmpxchg). When it
 * fires, the callback clears `armed`, then looks at the slot: blocked for
 * the threshold -> one record; blocked for less -> re-arm for the rest;
 * running -> stay disarmed until the next block. A block that starts
 * while the callback runs either sees armed == 0 and arms, or is seen by
 * the callback's look after it cleared armed (both sides use full-barrier
 * atomics). So at most one timer expiry per threshold per slot, and none
 * while a slot does not block; every block past the threshold is still
 * reported within threshold + timer latency.
 */
struct slot_timer {
	struct bpf_timer timer;
	__u32 armed;		/* 1 while the timer is pending */
	__u32 inited;
	__u32 reported;		/* seq + 1 of the block last reported */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct slot_timer);
} timers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024);
} notes SEC(".maps");

/* Rare-path counters, read by user space through the skeleton's .bss. */
__u64 nr_notes = 0;		/* records posted */
__u64 nr_stale = 0;		/* timer fired after its block had ended */
__u64 nr_lost = 0;		/* ringbuf full */

#define WR(x, v)	(*(volatile typeof(x) *)&(x) = (v))
#define RD(x)		(*(volatile typeof(x) *)&(x))

/*
 * How long a block lasts before it is posted; 0: no timers (the tick).
 * In .bss, not rodata: user space changes it while the program runs (the
 * backstop while pollers run, lib/poller.c), through the skeleton's
 * mapping. A block reads it once, when it starts; a timer that fires
 * before the current value passed re-arms for the rest.
 */
__u64 notice_ns = 0;

static int on_threshold(void *map, __u32 *key, struct slot_timer *t)
{
	struct urt_mon_state *st;
	struct urt_mon_note n;
	__u32 slot = *key, seq;
	__u64 now, since, notice;

	__sync_lock_test_and_set(&t->armed, 0);	/* xchg: a full barrier */
	st = bpf_map_lookup_elem(&states, &slot);
	if (!st)
		return 0;
	seq = RD(st->seq);
	if ((seq & 1) || RD(st->state) != URT_MON_S_BLOCKED || RD(t->reported) == seq + 1) {
		__sync_fetch_and_add(&nr_stale, 1);
		return 0;
	}
	since = RD(st->blocked_since_ns);
	n.tid = RD(st->tid);
	n.syscall_nr = RD(st->syscall_nr);
	now = bpf_ktime_get_ns();
	if (RD(st->seq) != seq)		/* it ended while we looked */
		return 0;
	notice = RD(notice_ns);
	if (now - since < notice) {
		/* blocked, not for long enough yet: look again when due */
		if (__sync_val_compare_and_swap(&t->armed, 0, 1) == 0)
			bpf_timer_start(&t->timer, since + notice - now, 0);
		return 0;
	}
	WR(t->reported, seq + 1);
	n.slot = slot;
	n.seq = seq;
	n.pad = 0;
	n.blocked_since_ns = since;
	n.time_ns = now;
	if (bpf_ringbuf_output(&notes, &n, sizeof(n), 0))
		__sync_fetch_and_add(&nr_lost, 1);
	else
		__sync_fetch_and_add(&nr_notes, 1);
	return 0;
}

/* The syscall the current task is in, or -1 (fault, interrupt). */
static __always_inline long current_syscall(void)
{
	struct task_struct *cur = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(cur);

	if (!regs || regs->ax != (unsigned long)-ENOSYS)
		return -1;
	return regs->orig_ax;
}

static __always_inline void on_block(__u32 slot, __u64 now, bool use_timer)
{
	struct urt_mon_state *st = bpf_map_lookup_elem(&states, &slot);
	struct slot_timer *t;
	__u64 notice;
	__u32 seq;

	if (!st)
		return;
	seq = RD(st->seq);
	WR(st->seq, seq + 1);
	WR(st->state, URT_MON_S_BLOCKED);
	WR(st->syscall_nr, current_syscall());
	WR(st->blocked_since_ns, now);
	WR(st->blocks, st->blocks + 1);
	WR(st->seq, seq + 2);

	notice = RD(notice_ns);
	if (!use_timer || !notice)
		return;
	t = bpf_map_lookup_elem(&timers, &slot);
	if (!t)
		return;
	if (!t->inited) {
		bpf_timer_init(&t->timer, &timers, CLOCK_MONOTONIC);
		bpf_timer_set_callback(&t->timer, on_threshold);
		t->inited = 1;
	}
	/* state written above, then armed read: pairs with the callback */
	if (__sync_val_compare_and_swap(&t->armed, 0, 1) == 0)
		bpf_timer_start(&t->timer, notice, 0);
}

static __always_inline void on_wake(__u32 slot, __u64 now)
{
	struct urt_mon_state *st = bpf_map_lookup_elem(&states, &slot);
	__u32 seq;

	if (!st || RD(st->state) != URT_MON_S_BLOCKED)
		return;
	seq = RD(st->seq);
	WR(st->seq, seq + 1);
	WR(st->state, URT_MON_S_RUNNING);
	WR(st->blocked_ns, st->blocked_ns + (now - st->blocked_since_ns));
	WR(st->seq, seq + 2);
}

/*
 * prev is current here. next's ids are read directly (tp_btf) or with
 * bpf_probe_read_kernel (raw_tp), chosen at compile time by use_timer.
 */
static __always_inline int handle_switch(bool preempt, struct task_struct *next,
					 unsigned int prev_state, bool btf)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = target_tgid, tid, *slot;
	__u64 now = 0;

	if ((__u32)(pid_tgid >> 32) == tgid && prev_state != 0 && !preempt) {
		tid = (__u32)pid_tgid;
		slot = bpf_map_lookup_elem(&tid_slot, &tid);
		if (slot) {
			now = bpf_ktime_get_ns();
			on_block(*slot, now, btf);
		}
	}
	if ((btf ? next->tgid : BPF_CORE_READ(next, tgid)) == (int)tgid) {
		tid = btf ? next->pid : BPF_CORE_READ(next, pid);
		slot = bpf_map_lookup_elem(&tid_slot, &tid);
		if (slot)
			on_wake(*slot, now ? now : bpf_ktime_get_ns());
	}
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(urt_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	return handle_switch(preempt, next, prev_state, true);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(urt_switch_raw, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	return handle_switch(preempt, next, prev_state, false);
}
