/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * urt_mon.h - what bpf/urt_mon.bpf.c and lib/mon_bpf.c share.
 *
 * struct urt_mon_state has the layout of struct urt_worker_state in
 * include/uapi/linux/urt.h (the kernel module's per-worker state), so the
 * runtime reads both with the same seqcount code; lib/mon_bpf.c checks the
 * layouts with static asserts. Types come from vmlinux.h on the BPF side
 * and from <linux/types.h> on the user side.
 */
#ifndef URT_MON_BPF_H
#define URT_MON_BPF_H

#define URT_MON_S_UNUSED	0
#define URT_MON_S_RUNNING	1
#define URT_MON_S_BLOCKED	2

/* One per slot, in the BPF_F_MMAPABLE array "states". */
struct urt_mon_state {
	__u32 seq;		/* odd: update in progress; +2 per update */
	__u32 state;		/* URT_MON_S_* */
	__u32 slot;
	__s32 tid;
	__s64 syscall_nr;	/* -1: not in a syscall (page fault, ...) */
	__u64 blocked_since_ns;	/* bpf_ktime_get_ns() == CLOCK_MONOTONIC */
	__u64 blocks;
	__u64 blocked_ns;	/* ended blocks only */
	__u64 reserved[2];
};

/* Ringbuf record: the block @seq of @slot has lasted threshold_ns. */
struct urt_mon_note {
	__u32 slot;
	__u32 seq;
	__s32 tid;
	__s32 pad;
	__s64 syscall_nr;
	__u64 blocked_since_ns;
	__u64 time_ns;		/* when the timer fired */
};

#endif /* URT_MON_BPF_H */
