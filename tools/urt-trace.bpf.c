// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * urt-trace.bpf.c - kernel blocks of the target's threads for urt-trace:
 * every block of at least min_ns goes to user space, which draws it as a
 * slice on the worker's track (the syscall is its name).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>


#include "urt_block.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u64 min_ns = 0;
const volatile __u64 max_ns = ~0ULL;
const volatile bool tasks_only = false;

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

SEC("tp_btf/sched_switch")
int BPF_PROG(urt_trace_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	return urt_handle_switch(ctx, preempt, next, prev_state);
}
