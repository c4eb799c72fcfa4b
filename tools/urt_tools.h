/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * urt_tools.h - the records the tools' BPF programs and their user halves
 * share (types from vmlinux.h on the BPF side, <linux/types.h> here).
 */
#ifndef URT_TOOLS_BPF_H
#define URT_TOOLS_BPF_H

/*
 * Where a worker thread's "current task" record is (map tid_worker, filled
 * by user space for every runtime of the target): addresses in the
 * target, read by the BPF program while the worker is current.
 */
struct urt_tid_info {
	__u64 cur_addr;		/* its struct urt_shm_worker */
	__u64 gen_addr;		/* its runtime's urt_shm_hdr.cur_gen */
};

/* A thread of the target that is off the CPU right now (map "blocked"). */
struct urt_blk_start {
	__u64 start_ns;
	__s64 syscall_nr;	/* -1: not in a syscall */
	__s32 stack_id;		/* user stack, -1 if none (urt-blocked only) */
	__u32 pad;
	__u64 task;		/* urt task running at block time, 0: none */
	char name[16];
};

/* One ended block (ringbuf "events"). */
struct urt_blk_event {
	__u64 start_ns, end_ns;
	__s64 syscall_nr;
	__s32 tid;
	__s32 stack_id;
	__u64 task;
	char name[16];
};

#endif
