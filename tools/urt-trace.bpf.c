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
#define URT_KO_SOURCE 1	/* urt.ko's tracepoints, when it is loaded */
#include "urt_block.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
