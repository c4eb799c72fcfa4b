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

#define URT_TASKS_ONLY true	/* blocks while a task ran */
#define URT_KO_SOURCE 1	/* urt.ko's tracepoints, when it is loaded */
#include "urt_block.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
