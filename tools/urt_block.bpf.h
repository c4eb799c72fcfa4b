/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * urt_block.bpf.h - what the tools' BPF programs share: which threads of
 * the target are off the CPU and since when, from sched_switch (tp_btf:
 * no tracefs needed), with the syscall each blocked in; and the program
 * the tools attach to liburt's never-executed probe urt:enable, whose
 * semaphore turns liburt's trace hooks on while the tool runs.
 *
 * A block: prev leaves the CPU with prev_state != 0 and !preempt (the
 * tracepoint argument, not prev->__state, which races with wake-ups). It
 * ends when the thread runs again. The syscall number is pt_regs->orig_ax
 * while ax still holds -ENOSYS (in a syscall), else -1.
 *
 * Include after vmlinux.h and the libbpf headers. The includer either
 * defines URT_TASKS_ONLY (blocks go to the `events` ring, see below) or
 * defines on_block_end(ctx, tid, start) itself; it may define
 * URT_BLOCK_STACKS.
 */
#ifndef URT_BLOCK_BPF_H
#define URT_BLOCK_BPF_H

#include "urt_tools.h"

#define URT_ENOSYS	38

const volatile __u32 target_tgid = 0;
const volatile __u64 shm_addr = 0;		/* target's address of its urt shm */
const volatile __u64 shm_worker_off = 0;
const volatile __u64 shm_worker_stride = 0;
const volatile __u64 shm_gen_off = 0;		/* offsetof(struct urt_shm_hdr, cur_gen) */

/* tid -> worker index in the shm (user space fills it) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} tid_worker SEC(".maps");

/* tid -> block in progress */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct urt_blk_start);
} blocked SEC(".maps");

/* The shm's current-task record (layout of struct urt_shm_worker). */
struct urt_shm_cur {
	__u32 seq;
	__s32 tid;
	__s32 slot;
	__u32 gen;
	__u64 task;
	__u64 since_ns;
	char name[16];
};

/* target_tgid 0: the threads in tid_worker (urt-top watching every process) */
static __always_inline bool is_target(__u32 tgid, __u32 tid)
{
	if (target_tgid)
		return tgid == target_tgid;
	return bpf_map_lookup_elem(&tid_worker, &tid) != NULL;
}

static __always_inline long urt_current_syscall(void)
{
	struct task_struct *cur = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(cur);

	if (!regs || regs->ax != (unsigned long)-URT_ENOSYS)
		return -1;
	return regs->orig_ax;
}

static __always_inline void urt_block_begin(void *ctx, __u32 tid, __u64 now)
{
	struct urt_blk_start b = {};
	__u32 *wk;

	b.start_ns = now;
	b.syscall_nr = urt_current_syscall();
	b.stack_id = -1;
#ifdef URT_BLOCK_STACKS
	b.stack_id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
#endif
	wk = bpf_map_lookup_elem(&tid_worker, &tid);
	if (wk && shm_addr) {
		struct urt_shm_cur cur;
		__u64 a = shm_addr + shm_worker_off + (__u64)*wk * shm_worker_stride;
		__u32 gen = 0;

		/* prev is current: its memory is the target's */
		if (!bpf_probe_read_user(&cur, sizeof(cur), (void *)a) && !(cur.seq & 1) &&
		    cur.tid == (__s32)tid &&
		    !bpf_probe_read_user(&gen, sizeof(gen), (void *)(shm_addr + shm_gen_off)) &&
		    gen == cur.gen) {
			b.task = cur.task;
			__builtin_memcpy(b.name, cur.name, sizeof(b.name));
		}
	}
	bpf_map_update_elem(&blocked, &tid, &b, BPF_ANY);
}

#ifdef URT_TASKS_ONLY
/*
 * The includer sends each block to user space (urt-blocked, urt-trace):
 * filters set before load, the ring the blocks go to. URT_TASKS_ONLY is the
 * default of tasks_only: report only blocks while a task was running.
 */
const volatile __u64 min_ns = 0;
const volatile __u64 max_ns = ~0ULL;
const volatile bool tasks_only = URT_TASKS_ONLY;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

__u64 nr_lost = 0;

static __always_inline int on_block_end(void *ctx, __u32 tid, struct urt_blk_start *b, __u64 now)
{
	struct urt_blk_event *e;
	__u64 d = now - b->start_ns;

	if (d < min_ns || d > max_ns || (tasks_only && !b->task))
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&nr_lost, 1);
		return 0;
	}
	e->start_ns = b->start_ns;
	e->end_ns = now;
	e->syscall_nr = b->syscall_nr;
	e->tid = tid;
	e->stack_id = b->stack_id;
	e->task = b->task;
	__builtin_memcpy(e->name, b->name, sizeof(e->name));
	bpf_ringbuf_submit(e, 0);
	return 0;
}
#else
/* The includer defines what happens when a block ends (urt-top). */
static __always_inline int on_block_end(void *ctx, __u32 tid, struct urt_blk_start *b, __u64 now);
#endif


static __always_inline int urt_handle_switch(void *ctx, bool preempt, struct task_struct *next,
					     unsigned int prev_state)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 now = 0;

	__u32 prev_tid = (__u32)pid_tgid, next_tid = next->pid;

	if (prev_state != 0 && !preempt && is_target((__u32)(pid_tgid >> 32), prev_tid)) {
		now = bpf_ktime_get_ns();
		urt_block_begin(ctx, prev_tid, now);
	}
	if (is_target(next->tgid, next_tid)) {
		__u32 tid = next_tid;
		struct urt_blk_start *b = bpf_map_lookup_elem(&blocked, &tid);

		if (b) {
			on_block_end(ctx, tid, b, now ? now : bpf_ktime_get_ns());
			bpf_map_delete_elem(&blocked, &tid);
		}
	}
	return 0;
}

SEC("usdt")
int BPF_USDT(urt_enable)
{
	return 0;	/* never runs: attaching it is what turns the hooks on */
}

#endif
