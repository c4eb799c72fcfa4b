// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * urt-blocked.bpf.c - offcputime for urt tasks: every block of a worker
 * thread of the target between min_ns and max_ns goes to user space with
 * the task that was running (from liburt's shared memory), the syscall and
 * the user stack.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#define URT_BLOCK_STACKS 1
#define PERF_MAX_STACK_DEPTH	127

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, PERF_MAX_STACK_DEPTH * sizeof(__u64));
	__uint(max_entries, 4096);
} stacks SEC(".maps");

#include "urt_block.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u64 min_ns = 0;
const volatile __u64 max_ns = ~0ULL;
const volatile bool tasks_only = true;

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
int BPF_PROG(urt_blocked_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	return urt_handle_switch(ctx, preempt, next, prev_state);
}
