/* SPDX-License-Identifier: MIT */
/*
 * mon_impl.h - what the monitor's backends (mon_*.c) share with mon.c.
 * Not for the rest of liburt: use monitor.h.
 */
#ifndef URT_MON_IMPL_H
#define URT_MON_IMPL_H

#include "monitor.h"

#define URT_MON_KMOD_PATH	"/dev/urt"	/* URT_DEVICE_PATH */

struct urt_mon;

struct urt_mon_ops {
	const char *name;
	/* Starts the backend; fills m->priv. why: one reason on failure. */
	int (*open)(struct urt_mon *m, const char *mode, char *why, size_t whylen);
	/* tid: the thread to watch; the kernel module takes only the caller. */
	int (*reg)(struct urt_mon *m, unsigned int slot, pid_t tid);
	int (*unreg)(struct urt_mon *m, unsigned int slot);
	int (*snapshot)(struct urt_mon *m, unsigned int slot, struct urt_mon_wstate *out);
	/*
	 * Blocks until deadline (urt_now() ns, URT_FOREVER) or a kick, or
	 * until it queued events with urt__mon_post(). Returns 0 when it
	 * posted, timed out or was kicked (m->kicked tells), else -errno.
	 */
	int (*wait)(struct urt_mon *m, int64_t deadline);
	void (*close)(struct urt_mon *m);
	/* Optional (NULL: the backend sees every switch): see monitor.h. */
	int (*set_wakes)(struct urt_mon *m, unsigned int slot, const atomic_uint *wakes);
	/* Optional (NULL: its wait() reads threshold_ns): urt__mon_set_notice. */
	int (*set_notice)(struct urt_mon *m, int64_t notice_ns);
	/* One line for urt__mon_open's why: what the backend runs on. */
	const char *(*describe)(struct urt_mon *m);
};

struct urt_mon {
	enum urt_mon_kind kind;
	const struct urt_mon_ops *ops;
	unsigned int max_workers;
	int64_t threshold_ns;		/* the notice: urt__mon_set_notice */
	int kick_fd;			/* eventfd: urt__mon_kick */
	bool kicked;			/* wait(): the kick fd fired */
	/* pending events, one per slot; the waiting thread only */
	struct urt_mon_event *pending;
	bool *has_pending;
	unsigned int npending, cursor;
	void *priv;
};

extern const struct urt_mon_ops urt__mon_kmod_ops URT_HIDDEN;
extern const struct urt_mon_ops urt__mon_bpf_ops URT_HIDDEN;
extern const struct urt_mon_ops urt__mon_proc_ops URT_HIDDEN;

/* Queues ev (replacing an older event of the same slot). Waiter only. */
void urt__mon_post(struct urt_mon *m, const struct urt_mon_event *ev) URT_HIDDEN;

/*
 * Sleeps until deadline or a kick (sets m->kicked). Tick backends use it.
 * poll_fd >= 0 is watched too; returns 1 if it became readable, else 0.
 */
int urt__mon_sleep(struct urt_mon *m, int64_t deadline, int poll_fd) URT_HIDDEN;

/*
 * Seqcount read of a state laid out as struct urt_worker_state (kmod's
 * mmapped page, the BPF array). Kernel-written memory: plain atomics.
 */
void urt__mon_read_state(const void *st, struct urt_mon_wstate *out) URT_HIDDEN;

/*
 * The tick used where nothing wakes the monitor (proc, bpf without
 * bpf_timer): scans states with a read function and posts blocks that
 * passed the threshold, once per (slot, seq).
 */
struct urt_mon_tick {
	int64_t interval;		/* current sleep between scans */
	uint32_t *reported;		/* per slot: seq already reported + 1 */
	uint32_t *last_seq;		/* per slot: seq seen by the last pass */
	unsigned int idle_passes;	/* passes since a slot last changed */
	bool sampling;			/* states are samples (proc), not exact */
};
#define URT_MON_TICK_MIN_NS	20000LL		/* 20 us */
#define URT_MON_TICK_MAX_NS	10000000LL	/* 10 ms */
#define URT_MON_TICK_IDLE_PASSES 50		/* then back off, as sysmon */
int urt__mon_tick_init(struct urt_mon *m, struct urt_mon_tick *t) URT_HIDDEN;
void urt__mon_tick_fini(struct urt_mon_tick *t) URT_HIDDEN;
/*
 * One pass over the slots: scan(m, slot, &ws) returns 0 and a state, or
 * < 0 to skip the slot. Posts what passed the threshold and returns the
 * time of the next pass.
 */
int64_t urt__mon_tick_scan(struct urt_mon *m, struct urt_mon_tick *t, int64_t now,
			   int (*scan)(struct urt_mon *m, unsigned int slot,
				       struct urt_mon_wstate *ws, int64_t now)) URT_HIDDEN;

#endif /* URT_MON_IMPL_H */
