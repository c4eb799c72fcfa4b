/* SPDX-License-Identifier: MIT */
/*
 * rt.h - the scheduler's objects, shared by the core files
 * (sched.c, task.c, fiber.c, timer.c, runtime.c, blocking.c).
 *
 * Ownership, written as invariants (the monitor relies on them):
 *   - A slot is owned by at most one worker thread at a time
 *     (slot->owner). Only the owner pushes to or pops from the slot's
 *     local queue tail/LIFO slot; any worker may steal from its head.
 *   - Every runnable task is in exactly one place: a slot's LIFO slot, a
 *     slot's local queue, the injection queue, or running on one thread.
 *   - A worker parks only after re-checking every queue once after it
 *     announced itself idle (idle_park), and every push of work to a queue
 *     is followed by notify_parked(), so no runnable task is left while
 *     all workers sleep.
 *   - If every worker is parked, one of them holds the driver (epoll +
 *     timers); the others sleep on their futex.
 */
#ifndef URT_RT_H
#define URT_RT_H

#include "internal.h"
#include "queue.h"

struct urt_stack {
	struct urt_stack *next;		/* pool link */
	char *lo;			/* lowest usable byte (guard page below) */
	size_t size;			/* usable bytes */
	size_t map_size;		/* whole mapping, guard included */
};

struct urt_slot {
	struct urt_lqueue q;		/* stealable ring */
	struct urt_task *lifo;		/* owner only */
	struct urt_worker *owner;
	int index;
	unsigned int lifo_polls;	/* consecutive LIFO runs: starvation guard */
	/* counters, written by the owner, read by anyone (relaxed) */
	atomic_uint_fast64_t polls, steals, spawned, completed, parks;
};

enum { PARK_EMPTY, PARK_FUTEX, PARK_DRIVER, PARK_NOTIFIED };

struct urt_worker {
	struct urt_rt *rt;
	struct urt_slot *slot;		/* NULL for a blocking-pool thread */
	int index;
	pthread_t thread;
	atomic_uint park_state;		/* PARK_*: futex word */
	bool searching;
	uint32_t tick;
	uint32_t rng;
	void *sched_sp;			/* scheduler context while a fiber runs */
	struct urt_stack *stack_cache;	/* pooled fiber stacks */
	unsigned int nstack_cache;
	struct urt_task *task_cache;	/* pooled task objects */
	unsigned int ntask_cache;
	void *altstack;			/* SIGSEGV handler stack (guard-page hits) */
#ifdef URT_ASAN
	const void *asan_bottom;	/* the thread stack, for fiber switches */
	size_t asan_size;
#endif
#ifdef URT_TSAN
	void *tsan_fiber;		/* the thread's own TSan context */
#endif
};

struct urt_idle {
	/* (searching << 16) | unparked: changed by CAS or under lock */
	atomic_uint state;
	urt_spin lock;
	int *sleepers;			/* stack of parked worker indices */
	int nsleepers;
};

struct urt_wheel;
struct urt_blocking_pool;

struct urt_rt {
	struct urt_config cfg;
	unsigned int nworkers;
	unsigned int nworkers_started;
	size_t stack_size;
	struct urt_worker *workers;
	struct urt_slot *slots;
	struct urt_inject inject;
	struct urt_idle idle;

	/* driver: epoll (reactor) + timers; held by one thread at a time */
	struct urt_reactor *reactor;
	atomic_uint driver_lock;
	int event_fd;			/* interrupts a driver waiting in epoll */
	atomic_uint driver_kicked;	/* an eventfd write is pending */
	atomic_int_fast64_t driver_until; /* deadline the driver sleeps until */
	struct urt_wheel *wheel;

	struct urt_blocking_pool *blocking;

	/* task objects: slabs freed at destroy; a shared free list */
	urt_spin slab_lock;
	void **slabs;
	size_t nslabs, cap_slabs;
	struct urt_task *task_free;	/* under slab_lock */
	struct urt_stack *stack_free;	/* under slab_lock */
	unsigned int nstack_free;

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
void urt__set_current_task(struct urt_task *t) URT_HIDDEN;
void urt__set_current_rt(struct urt_rt *rt) URT_HIDDEN;

/* sched.c */
void urt__schedule(struct urt_task *t, bool yield) URT_HIDDEN;
void urt__notify_parked(struct urt_rt *rt) URT_HIDDEN;
void urt__driver_kick(struct urt_rt *rt) URT_HIDDEN;
int urt__workers_start(struct urt_rt *rt) URT_HIDDEN;
void urt__workers_stop(struct urt_rt *rt) URT_HIDDEN;

/* task.c */
struct urt_task *urt__task_alloc(struct urt_rt *rt) URT_HIDDEN;
void urt__task_complete(struct urt_task *t) URT_HIDDEN;
void urt__run_task(struct urt_worker *w, struct urt_task *t) URT_HIDDEN;
uint64_t urt__live_tasks(struct urt_rt *rt) URT_HIDDEN;
void urt__cancel_all(struct urt_rt *rt) URT_HIDDEN;
void urt__tasks_free(struct urt_rt *rt) URT_HIDDEN;
urt_task_t urt__spawn(struct urt_rt *rt, enum urt_task_kind kind, void *fn,
		      void *arg, const struct urt_spawn_opts *opts) URT_HIDDEN;

/* fiber.c */
enum fiber_exit { FIBER_SUSPENDED, FIBER_DONE };
int urt__fiber_prepare(struct urt_worker *w, struct urt_task *t) URT_HIDDEN;
enum fiber_exit urt__fiber_resume(struct urt_worker *w, struct urt_task *t) URT_HIDDEN;
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

/* blocking.c */
int urt__config_resolve(struct urt_config *cfg) URT_HIDDEN;

int urt__blocking_create(struct urt_rt *rt) URT_HIDDEN;
void urt__blocking_destroy(struct urt_rt *rt) URT_HIDDEN;
uint64_t urt__blocking_threads(struct urt_rt *rt) URT_HIDDEN;

/* relaxed counter bump by the single writer */
static inline void urt__count(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

#endif /* URT_RT_H */
