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


#define URT_TASKS_ONLY false	/* every block of a worker */
#include "urt_block.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp_btf/sched_switch")
int BPF_PROG(urt_trace_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	return urt_handle_switch(ctx, preempt, next, prev_state);
}
