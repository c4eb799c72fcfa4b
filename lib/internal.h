/* SPDX-License-Identifier: MIT */
/*
 * internal.h - what liburt's files share. Not installed.
 *
 * Objects (see Documentation/design.md):
 *   urt_rt      the runtime: slots, workers, the injection queue, the
 *               driver (epoll + timers), the blocking pool.
 *   slot        a unit of parallelism: a local run queue (ring + LIFO
 *               slot) and counters. Owned by at most one worker thread.
 *   worker      an OS thread running the scheduler loop for its slot.
 *   urt_task    a fiber or a poll task (or a blocking-pool job, which
 *               only borrows the handle/join machinery).
 *
 * Task state (task->state), a word changed only by CAS:
 *   RUNNING   a worker is polling/running it right now
 *   NOTIFIED  a wake-up arrived; it is (or will be, once RUNNING clears)
 *             in exactly one run queue
 *   COMPLETE  it finished; never scheduled again
 *   CANCEL    cancellation was requested
 * Invariants: a task is in at most one run queue, and only when it was
 * pushed either with NOTIFIED set and RUNNING clear (woken), or with
 * RUNNING still set by its own yield (urt_yield, urt_cx_yield: the task
 * stays "held" from one step to the next, so a yield costs no state RMW). Only
 * the thread that holds RUNNING -- the one that set it, or the one that
 * popped a held task -- may clear it or run the task. A wake that finds
 * RUNNING set only sets NOTIFIED; the holder re-queues the task when a
 * step ends in a wait. So no wake-up is lost and no task runs on two
 * threads.
 */
#ifndef URT_INTERNAL_H
#define URT_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "urt.h"

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)
#define URT_HIDDEN	__attribute__((visibility("hidden")))
#define CACHELINE	64
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

#if defined(__SANITIZE_ADDRESS__)
#define URT_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define URT_TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define URT_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define URT_TSAN 1
#endif
#endif

/* ------------------------------------------------------------ tiny lock */

/*
 * A test-and-test-and-set spinlock for critical sections of a few dozen
 * instructions (queue links, waiter lists). Never held across a switch,
 * a system call or a wake of another thread's futex.
 */
typedef struct { atomic_uint v; } urt_spin;
#define URT_SPIN_INIT { 0 }
void urt__spin_lock_slow(urt_spin *l) URT_HIDDEN;
static inline void urt__spin_lock(urt_spin *l)
{
	if (likely(!atomic_exchange_explicit(&l->v, 1, memory_order_acquire)))
		return;
	urt__spin_lock_slow(l);
}
static inline bool urt__spin_trylock(urt_spin *l)
{
	return !atomic_load_explicit(&l->v, memory_order_relaxed) &&
	       !atomic_exchange_explicit(&l->v, 1, memory_order_acquire);
}
static inline void urt__spin_unlock(urt_spin *l)
{
	atomic_store_explicit(&l->v, 0, memory_order_release);
}

/* futex on a 32-bit word, private to the process */
int urt__futex_wait(atomic_uint *addr, unsigned int val, int64_t deadline_ns) URT_HIDDEN;
void urt__futex_wake(atomic_uint *addr, int n) URT_HIDDEN;

/* ------------------------------------------------------------ tasks */

enum {
	TS_RUNNING	= 1u << 0,
	TS_NOTIFIED	= 1u << 1,
	TS_COMPLETE	= 1u << 2,
	TS_CANCEL	= 1u << 3,
};

enum urt_task_kind { TK_FIBER, TK_POLL, TK_BLOCKING };

struct urt_stack;
struct urt_waiter;

struct urt_task {
	atomic_uint state;		/* TS_* */
	atomic_uint refs;		/* handle + "alive" + wakers */
	struct urt_task *next;		/* run-queue / free-list link */
	struct urt_rt *rt;
	atomic_uint_fast64_t id;	/* changes each time the object is reused */
	atomic_uint_fast64_t handle;	/* == id while the handle is live, else 0 */
	uint8_t kind;
	bool started;
	bool done;			/* fiber: its function returned */
	bool yielded;			/* this step ends in a yield (urt_yield, urt_cx_yield) */
	bool detached;			/* spawned without a handle: never joined */

	union {
		urt_fiber_fn fn;
		urt_poll_fn poll;
	};
	void *arg;
	void *result;
	int err;			/* 0 or -ECANCELED, set at completion */

	/* fiber */
	void *sp;			/* saved stack pointer while switched out */
	struct urt_stack *stack;
	size_t stack_size;		/* requested; 0: runtime default */
#ifdef URT_TSAN
	void *tsan_fiber;
#endif
#ifdef URT_ASAN
	void *asan_fake;		/* ASan fake stack while switched out */
#endif

	urt_spin lock;			/* guards joiner and the completion hand-off */
	struct urt_waiter *joiner;
	void (*cleanup)(void *);
	void *cleanup_arg;
	struct urt_timer *cx_timer;	/* poll tasks: urt_cx_wake_at */
	char name[16];
};

/* References: each holder of a urt_task pointer outside a queue. */
static inline void urt__task_ref(struct urt_task *t)
{
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}
void urt__task_unref(struct urt_task *t) URT_HIDDEN;

/*
 * Makes t runnable. Safe from any thread, any context, any number of
 * times; wakes after COMPLETE are ignored. Does not consume a reference.
 */
void urt__task_wake(struct urt_task *t) URT_HIDDEN;
/* The same, but never into the LIFO slot: for wakes in a batch that must
 * run in the order given (timers firing together, in deadline order). */
void urt__task_wake_fifo(struct urt_task *t) URT_HIDDEN;

/* The task running on this thread (fiber or poll task), or NULL. */
struct urt_task *urt__current_task(void) URT_HIDDEN;
/* The calling thread's runtime (worker, blocking-pool thread), or NULL. */
struct urt_rt *urt__current_rt(void) URT_HIDDEN;
/* True when the caller runs on a fiber stack and may suspend. */
bool urt__in_fiber(void) URT_HIDDEN;

/*
 * Suspends the calling fiber until urt__task_wake(), the deadline
 * (URT_FOREVER: none) or a cancel request. May return spuriously: callers
 * re-check their condition in a loop. Returns 0, -ETIMEDOUT once the
 * deadline has passed, or -ECANCELED once cancellation was requested.
 * Must be called from a fiber (callers check urt__in_fiber first).
 */
int urt__park(int64_t deadline_ns) URT_HIDDEN;
/* Like urt__park(URT_FOREVER) but blind to cancellation: for short waits
 * that must finish (a notifier that already committed to waking us). */
void urt__park_nocancel(void) URT_HIDDEN;

/* Deadline from a relative timeout, saturating; URT_FOREVER stays. */
int64_t urt__deadline(int64_t timeout_ns) URT_HIDDEN;

/* ------------------------------------------------------------ waiters */

/*
 * A waiter is how a fiber (or a foreign thread) waits on a primitive.
 * It lives on the waiter's stack. The primitive links it into its own
 * list under its own lock; the notifier unlinks it under that lock and
 * then calls urt__waiter_notify(), which is the last touch of *w.
 *
 *   lock(obj); if (ready) {...} else { urt__waiter_init(&w); link(&w); }
 *   unlock(obj);
 *   r = urt__waiter_wait(&w, deadline);
 *   if (r) { lock(obj); if (w linked) unlink(&w); else r = 0 ...; unlock(obj);
 *            if (r == 0) urt__waiter_wait_notified(&w); }
 *
 * A waiter that gives up (timeout, cancel) and finds itself already
 * unlinked has been notified, or is being notified: it must call
 * urt__waiter_wait_notified() before its frame goes away, and take or pass
 * on what the notifier handed it (w->value).
 *
 * The notifier holds no reference on w->task: a fiber's wait returns only
 * once the notifier's wake of the task is over (wait.c: `notified` goes
 * NOTIFYING, then DONE after the wake), so the task cannot complete, and
 * its object be reused, under the wake.
 */
struct urt_waiter {
	struct urt_waiter *next, *prev;	/* primitive's list */
	struct urt_task *task;		/* NULL: a thread outside the runtime */
	atomic_uint notified;		/* wait.c W_*; futex word for foreign threads */
	int result;			/* for the notifier to hand over */
	void *value;
	void *user;			/* primitive-private */
};

/*
 * 0 if the caller may wait: a fiber (suspends) or a thread outside the
 * runtime (blocks). -EPERM from a poll task: it runs on a worker's stack,
 * and waiting there would block the worker.
 */
int urt__may_wait(void) URT_HIDDEN;
void urt__waiter_init(struct urt_waiter *w) URT_HIDDEN;
/* 0 when notified, else -ETIMEDOUT / -ECANCELED (foreign threads: never cancelled). */
int urt__waiter_wait(struct urt_waiter *w, int64_t deadline_ns) URT_HIDDEN;
void urt__waiter_wait_notified(struct urt_waiter *w) URT_HIDDEN;
void urt__waiter_notify(struct urt_waiter *w) URT_HIDDEN;

/* Doubly linked waiter list with a head sentinel-free representation. */
struct urt_wlist {
	struct urt_waiter *head, *tail;
};
void urt__wlist_push(struct urt_wlist *l, struct urt_waiter *w) URT_HIDDEN;
void urt__wlist_remove(struct urt_wlist *l, struct urt_waiter *w) URT_HIDDEN;
struct urt_waiter *urt__wlist_pop(struct urt_wlist *l) URT_HIDDEN;
/* True if w is linked in some list (w->prev/next or it is the head). */
bool urt__wlist_linked(const struct urt_wlist *l, const struct urt_waiter *w) URT_HIDDEN;

/* Wakers for poll tasks are tasks with a reference: no allocation. */
static inline urt_waker *urt__waker_of(struct urt_task *t)
{
	urt__task_ref(t);
	return (urt_waker *)t;
}

/* ------------------------------------------------------------ timers */

struct urt_timer {
	struct urt_timer *next, *prev;	/* wheel slot list */
	int64_t deadline;		/* ns, CLOCK_MONOTONIC */
	uint8_t level, slot;
	bool armed;
	struct urt_task *task;		/* woken when it fires (holds a ref) */
};

/* Arms t to wake the task at deadline; returns -EINVAL for a past-due bad value. */
void urt__timer_arm(struct urt_rt *rt, struct urt_timer *t,
		    struct urt_task *task, int64_t deadline) URT_HIDDEN;
/* Disarms; returns true if it had not fired yet. Safe after it fired. */
bool urt__timer_cancel(struct urt_rt *rt, struct urt_timer *t) URT_HIDDEN;

/* ------------------------------------------------------------ reactor */

/*
 * The reactor (reactor.c, io.c) owns an epoll fd, edge-triggered, and the
 * per-fd readiness state. The core's driver (one parked worker at a time,
 * or a busy worker every event_interval ticks) calls epoll_wait on it and
 * hands each event with a non-NULL data.ptr to urt__reactor_event(); the
 * core's own eventfd (to interrupt the driver) is registered with
 * data.ptr == NULL.
 */
struct urt_reactor;
struct epoll_event;
struct urt_reactor *urt__reactor_create(void) URT_HIDDEN;	/* NULL + errno */
void urt__reactor_destroy(struct urt_reactor *r) URT_HIDDEN;
int urt__reactor_epfd(struct urt_reactor *r) URT_HIDDEN;
void urt__reactor_event(struct urt_reactor *r, struct epoll_event *ev) URT_HIDDEN;
/* The reactor of a runtime (core). */
struct urt_reactor *urt__rt_reactor(struct urt_rt *rt) URT_HIDDEN;
/* The task a poll context polls (core). */
struct urt_task *urt__cx_task(urt_cx *cx) URT_HIDDEN;

/* ------------------------------------------------------------ misc */

void urt__die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2))) URT_HIDDEN;

#endif /* URT_INTERNAL_H */
