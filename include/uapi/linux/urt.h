/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * urt.h - ABI of the urt kernel module (/dev/urt).
 *
 * The module tells a user-space task runtime, per registered worker thread,
 * whether that thread is RUNNING or BLOCKED in the kernel (since when, in
 * which syscall), and wakes the runtime's monitor when a worker has stayed
 * blocked longer than a threshold. Documentation/kmod.rst is the guide;
 * this file is the contract.
 *
 *   fd = open("/dev/urt", O_RDWR | O_CLOEXEC);   one group per open()
 *   ioctl(fd, URT_IOC_GET_VERSION)  -> URT_ABI_VERSION (as the return value)
 *   ioctl(fd, URT_IOC_GET_INFO, &info)
 *   st = mmap(NULL, info.map_size, PROT_READ, MAP_SHARED, fd, 0);
 *   ioctl(fd, URT_IOC_SET_THRESHOLD, &thr)
 *   in each worker thread: ioctl(fd, URT_IOC_REGISTER, &reg) ...
 *                          ioctl(fd, URT_IOC_UNREGISTER, 0)
 *   monitor: poll(fd, POLLIN) then read(fd, events, n * sizeof(struct urt_event))
 *
 * Rules that hold for every structure below:
 *  - sizes are fixed and explicit, every field is naturally aligned, there is
 *    no implicit padding (checked by static asserts in the module);
 *  - reserved fields and unknown flag bits must be zero on input, or the
 *    call fails with EINVAL, so they can be given a meaning later;
 *  - an ioctl number encodes its argument size: a caller built against a
 *    different structure size gets ENOTTY, never a misread argument.
 *
 * URT_ABI_VERSION changes only when an existing layout or meaning changes.
 * Adding an ioctl or giving meaning to a reserved field does not change it.
 */
#ifndef _UAPI_LINUX_URT_H
#define _UAPI_LINUX_URT_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define URT_ABI_VERSION		1
#define URT_DEVICE_PATH		"/dev/urt"

/* Values of urt_worker_state.state. */
#define URT_STATE_UNUSED	0	/* no thread registered in this slot */
#define URT_STATE_RUNNING	1	/* on a CPU or runnable (preempted, yielded) */
#define URT_STATE_BLOCKED	2	/* off the run queue: sleeping in the kernel */

/*
 * Per-worker state, one per slot, in an array the runtime maps read-only
 * with mmap(fd, offset 0). Slot i is at byte offset
 * i * sizeof(struct urt_worker_state). Only the module writes it; the
 * worker's own context switches are the only writer, so the fields of one
 * slot never change under two writers at once.
 *
 * Consistent snapshot (a seqcount):
 *	do {
 *		s1 = __atomic_load_n(&st->seq, __ATOMIC_ACQUIRE);
 *		copy = *st;
 *		__atomic_thread_fence(__ATOMIC_ACQUIRE);
 *		s2 = __atomic_load_n(&st->seq, __ATOMIC_RELAXED);
 *	} while ((s1 & 1) || s1 != s2);
 * seq is odd while an update is in progress and grows by 2 for every
 * update, so it also identifies one block: a urt_event whose seq equals the
 * slot's current seq describes a block that has not ended yet.
 */
struct urt_worker_state {
	__u32 seq;		/* odd: update in progress */
	__u32 state;		/* URT_STATE_* */
	__u32 slot;		/* index of this entry (constant) */
	__s32 tid;		/* registered thread, 0 when UNUSED */
	__s64 syscall_nr;	/* syscall the thread blocked in, -1: none */
	__u64 blocked_since_ns;	/* CLOCK_MONOTONIC start of the current block */
	__u64 blocks;		/* number of blocks since REGISTER */
	__u64 blocked_ns;	/* total time spent blocked, ended blocks only */
	__u64 reserved[2];	/* zero */
};				/* 64 bytes: one cache line */

/* URT_IOC_GET_INFO: limits and layout, constant for the life of the fd. */
struct urt_info {
	__u32 abi_version;	/* URT_ABI_VERSION */
	__u32 max_workers;	/* slots are 0 .. max_workers - 1 */
	__u32 state_size;	/* sizeof(struct urt_worker_state) */
	__u32 event_size;	/* sizeof(struct urt_event) */
	__u64 map_size;		/* bytes to mmap: max_workers states, page aligned */
	__u64 threshold_min_ns;	/* URT_IOC_SET_THRESHOLD bounds */
	__u64 threshold_max_ns;
	__u32 event_queue_len;	/* events held before new ones are dropped */
	__u32 reserved0;
	__u64 reserved[2];
};				/* 64 bytes */

/* URT_IOC_REGISTER: the calling thread becomes the worker of @slot. */
struct urt_register {
	__u32 slot;		/* < urt_info.max_workers, not in use */
	__u32 flags;		/* none defined yet: zero */
	__u64 reserved[3];	/* zero */
};				/* 32 bytes */

/* urt_threshold.flags */
#define URT_THR_NOTIFY_EVERY_BLOCK	(1U << 0)	/* URT_EV_BLOCK per block */
#define URT_THR_FLAGS_ALL		URT_THR_NOTIFY_EVERY_BLOCK

/*
 * URT_IOC_SET_THRESHOLD: when a registered worker stays blocked for
 * threshold_ns, one URT_EV_BLOCKED_LONG event is queued (timed in the
 * kernel, cancelled if the worker runs first). 0 disables it; otherwise
 * threshold_min_ns <= threshold_ns <= threshold_max_ns. Takes effect at the
 * next block of each worker. The default is 0 with no flags.
 */
struct urt_threshold {
	__u64 threshold_ns;
	__u32 flags;		/* URT_THR_* */
	__u32 reserved0;	/* zero */
	__u64 reserved[2];	/* zero */
};				/* 32 bytes */

/* urt_event.type */
#define URT_EV_BLOCKED_LONG	1	/* blocked for at least the threshold */
#define URT_EV_BLOCK		2	/* just blocked (URT_THR_NOTIFY_EVERY_BLOCK) */

/* urt_event.flags */
#define URT_EVF_LOST		(1U << 0)	/* events were dropped before this one */

/*
 * What read() returns: whole events only, as many as fit in the buffer
 * (a buffer smaller than one event gets EINVAL). read() blocks until at
 * least one event is queued unless the fd is O_NONBLOCK (EAGAIN); poll()
 * reports POLLIN while events are queued.
 */
struct urt_event {
	__u32 type;		/* URT_EV_* */
	__u32 flags;		/* URT_EVF_* */
	__u32 slot;
	__s32 tid;
	__s64 syscall_nr;	/* as in urt_worker_state */
	__u64 blocked_since_ns;	/* CLOCK_MONOTONIC */
	__u64 time_ns;		/* CLOCK_MONOTONIC when the event was queued */
	__u32 seq;		/* the slot's seq for this block */
	__u32 reserved0;
	__u64 reserved[2];
};				/* 64 bytes */

#define URT_IOC_MAGIC		0xB7

#define URT_IOC_GET_VERSION	_IO(URT_IOC_MAGIC, 0x00)
#define URT_IOC_GET_INFO	_IOR(URT_IOC_MAGIC, 0x01, struct urt_info)
#define URT_IOC_REGISTER	_IOW(URT_IOC_MAGIC, 0x02, struct urt_register)
#define URT_IOC_UNREGISTER	_IO(URT_IOC_MAGIC, 0x03)
#define URT_IOC_SET_THRESHOLD	_IOW(URT_IOC_MAGIC, 0x04, struct urt_threshold)

#endif /* _UAPI_LINUX_URT_H */
