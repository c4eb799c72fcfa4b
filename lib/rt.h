/* SPDX-License-Identifier: MIT */
/*
 * rt.h - the scheduler's objects, shared by the core files
 * (sched.c, task.c, fiber.c, timer.c, runtime.c, blocking.c, and the
 * monitor: sysmon.c, handoff.c, hog.c, poller.c).
 *
 * The model is Go's: a *slot* (Go's P) is the right to run tasks; a
 * *worker* (an M) is an OS thread that owns at most one slot; *spares* are
 * workers without a slot, asleep until the monitor hands them one.
 *
 * Invariants (the monitor and the tests rely on them):
 *   - A slot has at most one owner (slot->owner). Only the owner touches
 *     the slot's LIFO slot, its ring's tail and its scheduling state, and
 *     only between slot_enter() and slot_exit(); any thread may steal from
 *     the ring's head.
 *   - Ownership moves only by handoff (handoff.c): the mover stores the
 *     new owner marked SLOT_MOVING, runs an asymmetric barrier
 *     (membarrier on the old owner's CPU), waits until the old owner is
 *     outside slot_enter/exit (its worker->busy), then clears the mark,
 *     and only then wakes the spare (or a polling spare runs the slot
 *     itself). While the mark is set nobody enters the slot and no other
 *     handoff starts from it: the new owner is never inside, so a second
 *     mover waiting for *its* busy would not wait for the old owner.
 *     The old owner notices at its next slot_enter and becomes a spare.
 *   - Every runnable task is in exactly one place: a LIFO slot, a ring, the
 *     injection queue, or held by exactly one thread: running, or a fiber
 *     that just switched directly to another one and whose step end
 *     (re-queue, completion) the new fiber runs first thing
 *     (worker->prev_step, task.c). Such a fiber is queued only after its
 *     context is saved, so no other thread can resume it too early.
 *   - A fiber's direct switch takes the next task from its own slot only
 *     (LIFO slot, then ring), inside slot_enter/exit, and ticks the same
 *     countdowns as the loop: the loop's periodic driver turn and
 *     injection-queue check still come every event_interval /
 *     global_queue_interval tasks.
 *   - A slot's owner parks only after announcing it (idle_to_parked) and,
 *     if it was the last searcher, re-checking every queue; every push of
 *     work is followed by urt__notify_parked(), so no task is left behind
 *     while all slots sleep.
 *   - If every slot is parked, one owner holds the driver (epoll + timers).
 */
#ifndef URT_RT_H
#define URT_RT_H

/* Low bits of slot->owner (a worker pointer: at least 8-byte aligned). */
#define SLOT_PARKED ((uintptr_t)1)	/* its owner sleeps: nothing queued */
#define SLOT_MOVING ((uintptr_t)2)	/* a handoff to it is under way */
#define SLOT_FLAGS (SLOT_PARKED | SLOT_MOVING)

#include <sys/types.h>

#include "internal.h"
#include "queue.h"

struct urt_stack {
	struct urt_stack *next;		/* pool link */
	char *lo;			/* lowest usable byte (guard page below) */
	size_t size;			/* usable bytes */
	size_t map_size;		/* whole mapping, guard included */
	bool pooled;			/* the runtime's size: goes back to a pool */
};

enum { PARK_EMPTY, PARK_FUTEX, PARK_DRIVER, PARK_NOTIFIED };

struct urt_worker;

struct urt_slot {
	struct urt_lqueue q;		/* stealable ring */
	_Alignas(CACHELINE) _Atomic(struct urt_task *) lifo; /* owner writes; monitor peeks */
	_Atomic(uintptr_t) owner;	/* worker pointer | SLOT_FLAGS */
	atomic_uint park_state;		/* PARK_*: futex word of the owner */
	int index;
	bool searching;
	uint32_t rng;
	unsigned int lifo_polls;	/* consecutive LIFO runs: starvation guard */
	unsigned int gq_countdown;	/* ticks until the injection queue goes first */
	unsigned int ev_countdown;	/* ticks until a non-blocking driver turn */

	/* For the monitor and the tools: written by the owner (relaxed). */
	_Alignas(CACHELINE) atomic_uint_fast64_t steps;	/* task steps started */
	/* Id of the task running, 0 if none. Set at each step's start, set
	 * to 0 only inside slot_enter/exit (run_slot): a thread that lost the
	 * slot must not clear the new owner's step (the hog check skips a
	 * slot whose cur_task is 0). */
	atomic_uint_fast64_t cur_task;
	_Atomic(struct urt_task *) cur;	/* that task (checked with tryref before use) */
	/* Written by the monitor. */
	atomic_uint_fast64_t handoffs, blocks_seen, hogs;
	atomic_uint_fast64_t polled;	/* handoffs the poller made */
	atomic_int cpu;			/* owner's CPU at its last step (check_stacked) */
	atomic_uint_fast64_t unstacks;	/* its owner moved off a shared CPU */
	atomic_uint_fast64_t blocked_ns;	/* time stuck before handoffs (urt_slot_stats.stuck_ns) */
	urt_spin last_lock;		/* the last handoff, for urt_slot_stats */
	uint64_t last_task;
	char last_name[16];
	int last_syscall;
	int64_t last_stuck_ns;
};

struct urt_worker {
	struct urt_rt *rt;
	struct urt_slot *slot;		/* the slot this thread owns, or NULL */
	int index;			/* in rt->workers; monitor registration id */
	bool started;			/* has a thread */
	bool exited;			/* its thread ended (joined at destroy) */
	pthread_t thread;
	pid_t tid;
	atomic_uint spare_word;		/* futex a spare sleeps on */
	atomic_bool pinned;		/* woken pinned to one CPU: unpin */
	_Atomic int64_t pinned_at;	/* ... since (handoff.c: urt__unpin_late) */
	atomic_bool polling;		/* an idle spare that polls (poller.c) */
	_Atomic int64_t poll_at;	/* ... and when it last made a pass */
	atomic_uint_fast64_t hog_yields; /* the hog signal's handler ran here */
	_Atomic(struct urt_slot *) handed; /* slot given to this spare */
	atomic_uint wakes;		/* back from a park or a spare's wait (monitor.h) */
	void *sched_sp;			/* scheduler context while a fiber runs */
	/*
	 * A fiber that switched directly to another (task.c) leaves its step
	 * end here; the fiber switched to runs it first thing, once the old
	 * context is saved and may be resumed elsewhere.
	 */
	struct urt_task *prev_step;
	unsigned int slot_depth;	/* nesting of slot_enter (sched.c) */
	/*
	 * Inside slot_enter..slot_exit. Per thread, not per slot: a thread
	 * that lost its slot must never clear the flag of the slot's new owner.
	 */
	atomic_uint busy;
	struct urt_stack *stack_cache;	/* pooled fiber stacks */
	unsigned int nstack_cache;
	struct urt_task *task_cache;	/* pooled task objects */
	unsigned int ntask_cache;
	uint64_t id_next, id_end;	/* task ids taken from rt->next_id in batches */
	void *altstack;			/* SIGSEGV handler stack (guard-page hits) */
	/* counters, written by this thread only */
	atomic_uint_fast64_t spawned, completed, polls, steals, parks;
#ifdef URT_ASAN
	const void *asan_bottom;	/* the thread stack, for fiber switches */
	size_t asan_size;
#endif
#ifdef URT_TSAN
	void *tsan_fiber;		/* the thread's own TSan context */
#endif
	/*
	 * Workers are a calloc'd array and each thread writes its own
	 * (busy, counters, caches) many times per task: a line of padding
	 * keeps the next worker's fields off our last line, whatever the
	 * array's alignment (false sharing cost 2-worker runs up to 2x).
	 */
	char pad_[CACHELINE];
};
_Static_assert(_Alignof(struct urt_worker) > SLOT_FLAGS, "slot->owner's flag bits");

struct urt_idle {
	/* (searching << 16) | unparked slots: changed by atomics, under lock */
	atomic_uint state;
	urt_spin lock;
	int *sleepers;			/* stack of parked slot indices */
	int nsleepers;
};

struct urt_wheel;
struct urt_blocking_pool;
struct urt_monitor;

struct urt_rt {
	struct urt_config cfg;
	unsigned int nslots;
	unsigned int nworkers;		/* capacity: nslots + max_spares */
	cpu_set_t cpus;			/* the creator's affinity: workers' own */
	bool hog_signal;		/* workers take URT_HOG_SIGNAL (hog.c) */
	size_t stack_size;
	struct urt_worker *workers;
	struct urt_slot *slots;
	struct urt_inject inject;
	struct urt_idle idle;

	/* spares: workers without a slot */
	urt_spin spare_lock;
	int *spares;			/* stack of idle spare worker indices */
	int nspares;

	/* driver: epoll (reactor) + timers; held by one thread at a time */
	struct urt_reactor *reactor;
	atomic_uint driver_lock;
	int event_fd;			/* interrupts a driver waiting in epoll */
	atomic_uint driver_kicked;	/* an eventfd write is pending */
	atomic_int_fast64_t driver_until; /* deadline the driver sleeps until */
	struct urt_wheel *wheel;

	struct urt_blocking_pool *blocking;
	struct urt_monitor *monitor;
	void *trace;			/* trace.c: shared memory for the tools */

	/* task objects: slabs freed at destroy; a shared free list */
	urt_spin slab_lock;
	void **slabs;
	size_t nslabs, cap_slabs;
	struct urt_task *task_free;	/* under slab_lock */
	struct urt_stack *stack_free;	/* under slab_lock */
	unsigned int nstack_free;
	unsigned int nstack_low;	/* lowest nstack_free since the last trim */
	int64_t stack_trim_at;		/* next trim of the pool (fiber.c) */

	atomic_uint_fast64_t next_id;
	atomic_uint_fast64_t foreign_spawned;	/* spawns from outside workers */
	atomic_uint_fast64_t foreign_completed;	/* blocking pool, foreign */
	atomic_bool shutdown;		/* no new spawns */
	atomic_bool stop;		/* workers exit their loop */
};

/* Thread-local accessors. Noinline: a fiber may resume on another thread,
 * and a compiler may cache a TLS address across the switch call. */
struct urt_worker *urt__worker(void) URT_HIDDEN;
void urt__set_worker(struct urt_worker *w) URT_HIDDEN;
/* The task running on this thread. Scheduler code (never on a fiber
 * stack) may use it directly; fiber code must call urt__current_task(). */
extern __thread struct urt_task *urt__tls_task URT_HIDDEN;
void urt__set_current_rt(struct urt_rt *rt) URT_HIDDEN;

/* sched.c */
void urt__schedule(struct urt_task *t, bool yield) URT_HIDDEN;
/* The next local task a suspending fiber may switch to directly, or NULL. */
struct urt_task *urt__next_direct(struct urt_worker *w, bool yielding) URT_HIDDEN;
void urt__notify_parked(struct urt_rt *rt) URT_HIDDEN;
void urt__driver_kick(struct urt_rt *rt) URT_HIDDEN;
int urt__workers_start(struct urt_rt *rt) URT_HIDDEN;
void urt__workers_stop(struct urt_rt *rt) URT_HIDDEN;
/* urt__handoff (below): why a slot moves, and what it was running. */
struct urt_seen {		/* the task a slot was running */
	uint64_t id;
	char name[16];
};
struct urt_handoff_note {	/* why the monitor moves a slot */
	bool hog;		/* a long step, not a reported block */
	int syscall;		/* the block's syscall, -1 if none/unknown */
	int64_t stuck_ns;	/* how long it had been stuck */
	bool polled;		/* the poller saw it (urt_stats.poll_handoffs) */
	int cpu;		/* >= 0: wake a sleeping spare on this CPU */
	struct urt_seen seen;
};
/* Slots not parked now (idle.state), for the poller (sched.c). */
unsigned int urt__unparked(struct urt_rt *rt) URT_HIDDEN;
/* The handler of URT_HOG_SIGNAL on worker threads (sched.c). */
#define URT_HOG_SIGNAL SIGURG
void urt__hog_yield(int sig) URT_HIDDEN;
/*
 * handoff.c: gives slot s to a spare if its owner is still from, the
 * thread the caller saw stuck (a slot that moved meanwhile is not taken
 * from its new owner); false if it moved, parked, or no spare came.
 */
bool urt__handoff(struct urt_rt *rt, struct urt_slot *s, struct urt_worker *from,
		  const struct urt_handoff_note *note) URT_HIDDEN;
struct urt_worker *urt__spare_reserve(struct urt_rt *rt) URT_HIDDEN;
bool urt__spare_unlist_locked(struct urt_rt *rt, int i) URT_HIDDEN;
int urt__spare_spawn(struct urt_worker *w) URT_HIDDEN;

/* task.c */
struct urt_task *urt__task_alloc(struct urt_rt *rt) URT_HIDDEN;
bool urt__task_tryref(struct urt_task *t) URT_HIDDEN;	/* false if already freed */
void urt__task_complete(struct urt_task *t) URT_HIDDEN;
void urt__run_task(struct urt_worker *w, struct urt_task *t) URT_HIDDEN;
uint64_t urt__live_tasks(struct urt_rt *rt) URT_HIDDEN;
void urt__cancel_all(struct urt_rt *rt) URT_HIDDEN;
void urt__tasks_free(struct urt_rt *rt) URT_HIDDEN;
urt_task_t urt__spawn(struct urt_rt *rt, enum urt_task_kind kind, void *fn,
		      void *arg, const struct urt_spawn_opts *opts) URT_HIDDEN;

/* task.c: direct fiber-to-fiber switches (fiber.c calls these) */
struct urt_task *urt__step_next(struct urt_worker *w, struct urt_task *from) URT_HIDDEN;
void urt__step_after_switch(struct urt_worker *w) URT_HIDDEN;

/* fiber.c */
int urt__fiber_prepare(struct urt_worker *w, struct urt_task *t) URT_HIDDEN;
/* Runs fiber t until a fiber switches back to the scheduler; returns that
 * fiber (t, or another one t switched to directly). */
struct urt_task *urt__fiber_resume(struct urt_worker *w, struct urt_task *t) URT_HIDDEN;
void urt__fiber_suspend(struct urt_task *t) URT_HIDDEN;
void urt__fiber_release(struct urt_worker *w, struct urt_task *t) URT_HIDDEN;
void urt__stacks_free(struct urt_rt *rt) URT_HIDDEN;
int urt__thread_fiber_init(struct urt_worker *w) URT_HIDDEN;
void urt__thread_fiber_fini(struct urt_worker *w) URT_HIDDEN;

/* timer.c */
int urt__wheel_create(struct urt_rt *rt) URT_HIDDEN;
void urt__wheel_destroy(struct urt_rt *rt) URT_HIDDEN;
/* Fires due timers; returns the next deadline (URT_FOREVER if none). */
int64_t urt__timers_run(struct urt_rt *rt, int64_t now) URT_HIDDEN;
int64_t urt__timers_next(struct urt_rt *rt) URT_HIDDEN;

/* config.c */
int urt__config_resolve(struct urt_config *cfg) URT_HIDDEN;

/* blocking.c */
int urt__blocking_create(struct urt_rt *rt) URT_HIDDEN;
void urt__blocking_destroy(struct urt_rt *rt) URT_HIDDEN;
uint64_t urt__blocking_threads(struct urt_rt *rt) URT_HIDDEN;

/* the monitor: sysmon.c (hog.c: slot_lost, may_spare; poller.c: poll) */
int urt__monitor_start(struct urt_rt *rt) URT_HIDDEN;
void urt__monitor_stop(struct urt_rt *rt) URT_HIDDEN;	/* the thread */
void urt__monitor_free(struct urt_rt *rt) URT_HIDDEN;	/* the backend */
/* Tests: the backend's next wait reports a failure (failover). */
void urt__monitor_inject_failure(struct urt_rt *rt) URT_HIDDEN;
/* Each worker thread registers itself with the backend (kmod: must be itself). */
void urt__monitor_thread_init(struct urt_worker *w) URT_HIDDEN;
void urt__monitor_thread_fini(struct urt_worker *w) URT_HIDDEN;
/* sched.c calls these: slot_enter found the slot gone (restores a demoted
 * hog's priority); may the thread become a spare (false: it exits); a
 * parked slot runs again (wakes a monitor that backed off its tick); a
 * spare polls the states while it waits, if it may (the slot it took,
 * out of the spare list; NULL: not, or no longer, polling). */
void urt__monitor_slot_lost(struct urt_worker *w) URT_HIDDEN;
bool urt__monitor_may_spare(struct urt_worker *w) URT_HIDDEN;
void urt__monitor_unparked(struct urt_rt *rt) URT_HIDDEN;
struct urt_slot *urt__monitor_poll(struct urt_worker *w) URT_HIDDEN;

/* relaxed counter bump by the single writer */
static inline void urt__count(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

#endif /* URT_RT_H */
