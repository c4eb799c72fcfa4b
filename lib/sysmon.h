/* SPDX-License-Identifier: MIT */
/*
 * sysmon.h - what the monitor's files share. Internal to liburt.
 *   sysmon.c   the monitor thread: start and stop, its tick, the blocks
 *              the backend reports, stacked workers, failover, stats
 *   handoff.c  moving a stuck slot to a spare thread (the barrier, the
 *              spare list, the threads' /proc files)
 *   hog.c      hogs: demoted to nice 19, told to yield
 *   poller.c   spares that poll the worker states (cfg.monitor_poll)
 * The monitor thread owns struct urt_monitor; the fields others touch say
 * how (atomics, locks).
 */
#ifndef URT_SYSMON_H
#define URT_SYSMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "monitor.h"
#include "rt.h"

struct hog_sample {
	uint64_t steps;		/* slot->steps when first seen unchanged */
	uint64_t task;
	int64_t since;
	uintptr_t owner;	/* slot->owner then */
	bool not_started;	/* owner changed, no step since: cur_task is the old owner's */
	int64_t cpu_ns;		/* the owner thread's CPU time at cpu_at; -1: not read */
	int64_t cpu_at;
};

/* Per worker: the demotion of a hog's thread (hog.c). */
struct prio {
	urt_spin lock;
	uint32_t lost;		/* slot losses the thread has noticed */
	bool demoted;		/* set to nice 19 by the monitor */
	bool retire;		/* could not restore: exit instead of sparing */
	int nice;		/* its nice value before */
	pid_t tid;
	struct urt_task *task;	/* demoted: the hog task (a reference) */
};

#define HOG_NICE	19
#define TICK_MIN_NS	100000LL	/* the hog tick: >= 100 us */
#define TICK_MAX_NS	10000000LL	/* <= 10 ms, and when idle */
#define TICK_IDLE_PASSES 20		/* all parked this long: back off */
#define UNSTACK_COOLDOWN_NS 1000000LL	/* check_stacked(): one move per */
#define UNPIN_LATE_NS	1000000LL	/* unpin_late(): a pin older than this */
/* The poller: see urt__monitor_poll() */
#define POLL_IDLE_NS	20000000LL	/* all parked this long: doze */
#define POLL_YIELD_NS	10000LL		/* spin at most this long between yields */
#define POLL_PERIOD_NS	1000LL		/* a pass per */
#define POLL_GRACE_NS	20000LL		/* another CPU's block: its poller's first */
#define POLL_FRESH_NS	20000LL		/* a poller that made a pass this recently runs */
#define POLL_BACKSTOP_NS 1000000LL	/* the backend's notice while pollers run:
					 * this much (or a threshold, if longer) later */
#define POLL_ARM_NS	10000000LL	/* auto: poll this long after a block's handoff */
#define POLL_AUTO_MAX	4		/* auto: at most this many pollers */

struct urt_monitor {
	struct urt_rt *rt;
	struct urt_mon *mon;		/* NULL: progress counters only */
	char why[256];
	pthread_t thread;
	atomic_bool stop;
	struct hog_sample *hog;		/* per slot */
	struct prio *prio;		/* per worker */
	struct procfd {			/* per worker: its thread's /proc files */
		urt_spin lock;
		pid_t tid;		/* the thread they are for; 0: none */
		int stat, sys;		/* task/TID/stat, task/TID/syscall */
	} *procfd;
	atomic_uint procfd_open;	/* files kept open, at most procfd_budget */
	unsigned int procfd_budget;
	uint32_t *pending;		/* per worker: seq of a block past threshold, 0 none */
	_Atomic int64_t *given;		/* per worker: when the monitor last gave it a slot */
	atomic_bool dozing;		/* every slot parked: the tick backed off */
	bool may_demote;		/* hogs' threads can get their priority back */
	bool mb_cpu;			/* membarrier to one CPU works (barrier_on) */
	atomic_uint ndemoted;
	/* mon and why change only in failover(), under reg_lock; workers
	 * (un)register under it. The monitor thread reads mon unlocked. */
	pthread_mutex_t reg_lock;
	atomic_bool inject_failure;
	_Atomic int64_t spare_started;	/* when a spare was last started */
	/* The pollers (cfg.monitor_poll): see urt__monitor_poll(). They
	 * read mon under poll_lock (shared); failover() changes it holding
	 * the lock exclusively. */
	unsigned int max_pollers;	/* 0: none (not asked for, or proc); <= 64 */
	bool poll_auto;			/* URT_MONITOR_POLL_AUTO: only while poll_until */
	_Atomic int64_t poll_until;	/* auto: a block's handoff + POLL_ARM_NS */
	/* The backend's notice (urt__poll_tune, monitor thread): late (the
	 * backstop) while pollers are asked for or, on demand, wanted and
	 * seen running; else the threshold, since notice_at. */
	atomic_bool notice_late;
	_Atomic int64_t notice_at;
	bool poll_seen;			/* auto: a poller ran since they were wanted */
	atomic_uint npollers;		/* spares polling now (worker->polling) */
	atomic_ulong poll_seats;	/* bit j: a poller sits on seat j (poll_cpu) */
	pthread_rwlock_t poll_lock;
	atomic_bool poll_dozing;	/* all parked: none polls until one unparks */
	/* per seat, per worker: block seq that seat's poller is done with */
	uint32_t *polled;
	/* check_stacked(), per slot: steps at the last pass; ran none since */
	uint64_t *stack_steps;
	bool *stalled;
	int64_t unstack_after;
	struct poll_cand {		/* per seat, per worker: a poll pass's handoffs */
		unsigned int k;
		struct urt_mon_wstate st;
		struct urt_slot *s;
	} *cand;
};

/* sysmon.c: the monitor thread */
void urt__monitor_kick(struct urt_monitor *m) URT_HIDDEN;

/* handoff.c: moving a slot; the spares; a thread's /proc files */
int urt__membarrier(int cmd) URT_HIDDEN;
void urt__procfd_close(struct urt_monitor *m, struct procfd *pf) URT_HIDDEN;
int urt__thread_state(struct urt_monitor *m, struct urt_worker *t, pid_t tid, int *cpu) URT_HIDDEN;
bool urt__has_work(struct urt_rt *rt, struct urt_slot *s) URT_HIDDEN;
bool urt__spare_unlist(struct urt_rt *rt, int i) URT_HIDDEN;
void urt__spare_refile(struct urt_rt *rt, struct urt_worker *p) URT_HIDDEN;
void urt__pin_wake(struct urt_worker *p, int cpu) URT_HIDDEN;
void urt__unpin_late(struct urt_monitor *m, int64_t now) URT_HIDDEN;
void urt__spare_poke(struct urt_worker *p) URT_HIDDEN;
void urt__seen_task(struct urt_slot *s, struct urt_seen *out) URT_HIDDEN;
bool urt__spare_add(struct urt_rt *rt) URT_HIDDEN;
bool urt__move_slot(struct urt_rt *rt, struct urt_slot *s, uintptr_t ctl,
		   const struct urt_handoff_note *note, struct urt_worker *p) URT_HIDDEN;
void urt__keep_warm(struct urt_rt *rt) URT_HIDDEN;
struct urt_slot *urt__running_slot(struct urt_rt *rt, unsigned int k) URT_HIDDEN;

/* hog.c: hogs */
bool urt__hog_signal_install(void) URT_HIDDEN;
void urt__demote(struct urt_monitor *m, struct urt_worker *t, uint32_t gen,
		 struct urt_task *task) URT_HIDDEN;
struct urt_task *urt__undemote(struct urt_monitor *m, struct prio *pr, pid_t tid) URT_HIDDEN;
void urt__check_demoted(struct urt_monitor *m) URT_HIDDEN;
bool urt__can_restore_nice(void) URT_HIDDEN;
void urt__check_hogs(struct urt_monitor *m, int64_t now) URT_HIDDEN;
void urt__yield_hogs_on(struct urt_monitor *m, int cpu) URT_HIDDEN;

/* poller.c: polling spares */
unsigned int urt__poll_count(const struct urt_rt *rt) URT_HIDDEN;
void urt__poll_recruit(struct urt_monitor *m, bool may_start, int avoid_cpu) URT_HIDDEN;
void urt__poll_arm(struct urt_monitor *m, int64_t now) URT_HIDDEN;
void urt__poll_tune(struct urt_monitor *m, int64_t now) URT_HIDDEN;
void urt__poll_notice_reset(struct urt_monitor *m, int64_t now) URT_HIDDEN;

#endif /* URT_SYSMON_H */
