/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * urt_block.bpf.h - what the tools' BPF programs share: which threads of
 * the target are off the CPU and since when, with the syscall each blocked
 * in and the urt task it was running; and the program the tools attach to
 * liburt's never-executed probe urt:enable, whose semaphore turns liburt's
 * trace hooks on while the tool runs.
 *
 * Two sources of blocks; user space attaches one of them:
 *  - sched_switch (tp_btf: no tracefs needed), any kernel with BTF: a
 *    block is prev leaving the CPU with prev_state != 0 and !preempt (the
 *    tracepoint argument, not prev->__state, which races with wake-ups),
 *    until the thread runs again. The syscall number is pt_regs->orig_ax
 *    while ax still holds -ENOSYS (in a syscall), else -1.
 *  - urt.ko's tracepoints urt_block / urt_unblock (raw_tp: the module has
 *    no BTF of its own, see Documentation/tools.md), when the module is
 *    loaded and the target's workers are registered with it (its monitor
 *    backend is kmod): the blocks the module itself sees and acts on, with
 *    the module's syscall number. Only with URT_KO_SOURCE defined.
 * Both fire while the blocking thread is current, so the task can be read
 * from the target's shared memory at the moment the block begins.
 *
 * Include after vmlinux.h and the libbpf headers. The includer either
 * defines URT_TASKS_ONLY (blocks go to the `events` ring, see below) or
 * defines on_block_end(ctx, tid, start) itself; it may define
 * URT_BLOCK_STACKS and URT_KO_SOURCE.
 */
#ifndef URT_BLOCK_BPF_H
#define URT_BLOCK_BPF_H

#include "urt_tools.h"

#define URT_ENOSYS	38

const volatile __u32 target_tgid = 0;

/* tid -> its worker's record in its runtime's shm (user space fills it,
 * for every runtime of the target, also ones created while tracing) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct urt_tid_info);
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

/* The block of tid (current) begins now, in syscall nr. */
static __always_inline void urt_block_begin(void *ctx, __u32 tid, __u64 now, long nr)
{
	struct urt_blk_start b = {};
	struct urt_tid_info *wk;

	b.start_ns = now;
	b.syscall_nr = nr;
	b.stack_id = -1;
#ifdef URT_BLOCK_STACKS
	b.stack_id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
#endif
	wk = bpf_map_lookup_elem(&tid_worker, &tid);
	if (wk) {
		struct urt_shm_cur cur;
		__u32 gen = 0;

		/* the blocking thread is current: its memory is the target's */
		if (!bpf_probe_read_user(&cur, sizeof(cur), (void *)wk->cur_addr) &&
		    !(cur.seq & 1) && cur.tid == (__s32)tid &&
		    !bpf_probe_read_user(&gen, sizeof(gen), (void *)wk->gen_addr) &&
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
		urt_block_begin(ctx, prev_tid, now, urt_current_syscall());
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

SEC("tp_btf/sched_switch")
int BPF_PROG(urt_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	return urt_handle_switch(ctx, preempt, next, prev_state);
}

#ifdef URT_KO_SOURCE
/*
 * urt.ko: urt_block(pid_t tid, u32 slot, long syscall_nr) in the module's
 * sched_out notifier, urt_unblock(pid_t tid, u32 slot, u64 blocked_ns) in
 * its sched_in; both on the worker itself (current), for registered
 * workers only. User space attaches one source.
 */
SEC("raw_tp/urt_block")
int urt_ko_block(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;

	if ((__u32)ctx->args[0] != tid || !is_target((__u32)(pid_tgid >> 32), tid))
		return 0;
	urt_block_begin(ctx, tid, bpf_ktime_get_ns(), (long)ctx->args[2]);
	return 0;
}

SEC("raw_tp/urt_unblock")
int urt_ko_unblock(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 tid = (__u32)ctx->args[0];
	struct urt_blk_start *b = bpf_map_lookup_elem(&blocked, &tid);

	if (b) {
		on_block_end(ctx, tid, b, bpf_ktime_get_ns());
		bpf_map_delete_elem(&blocked, &tid);
	}
	return 0;
}
#endif

SEC("usdt")
int BPF_USDT(urt_enable)
{
	return 0;	/* never runs: attaching it is what turns the hooks on */
}

#endif
