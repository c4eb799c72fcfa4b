// SPDX-License-Identifier: MIT
/*
 * sched.c - the scheduler: worker loop, work stealing, parking, the driver.
 *
 * Each worker thread owns one slot and loops:
 *
 *   next task:  the slot's LIFO slot (at most MAX_LIFO_POLLS in a row, so
 *               two tasks waking each other cannot starve the queue), the
 *               injection queue every global_queue_interval ticks
 *               (fairness), the local ring, the injection queue;
 *   steal:      become "searching" (at most half the workers search at
 *               once: no thundering herd), take half of another slot's
 *               ring, starting at a random slot;
 *   park:       announce idle, re-check (the last searcher), sleep.
 *
 * Parking (tokio's design). idle.state counts unparked and searching
 * workers. Whoever makes work available calls urt__notify_parked(), which
 * wakes one sleeper only if nobody is searching already -- a searcher will
 * find the work, and when a searcher finds work and it was the last one, it
 * wakes another. A worker about to sleep first tries to take the driver:
 * the holder waits in epoll (I/O readiness, its eventfd, the next timer
 * deadline); the others wait on their futex. Busy workers poll the driver
 * without blocking every event_interval ticks, so timers and I/O are
 * serviced even when nobody parks.
 */
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rt.h"

#define MAX_LIFO_POLLS	3
#define DRIVER_EVENTS	64

static __thread struct urt_worker *tls_worker;
static __thread struct urt_task *tls_task;
static __thread struct urt_rt *tls_rt;

/* Noinline with a compiler barrier: see sched.h. */
__attribute__((noinline)) struct urt_worker *urt__worker(void)
{
	__asm__ volatile("" ::: "memory");
	return tls_worker;
}

__attribute__((noinline)) struct urt_task *urt__current_task(void)
{
	__asm__ volatile("" ::: "memory");
	return tls_task;
}

__attribute__((noinline)) struct urt_rt *urt__current_rt(void)
{
	__asm__ volatile("" ::: "memory");
	return tls_rt;
}

void urt__set_worker(struct urt_worker *w) { tls_worker = w; }
void urt__set_current_task(struct urt_task *t) { tls_task = t; }
void urt__set_current_rt(struct urt_rt *rt) { tls_rt = rt; }

bool urt__in_fiber(void)
{
	struct urt_task *t = urt__current_task();

	return t && t->kind == TK_FIBER;
}

urt_rt *urt_current(void)
{
	return urt__current_rt();
}

int urt_self_slot(void)
{
	struct urt_worker *w = urt__worker();

	return w && w->slot ? w->slot->index : -1;
}

struct urt_reactor *urt__rt_reactor(struct urt_rt *rt)
{
	return rt->reactor;
}

/* ------------------------------------------------------------ idle state */

#define IDLE_UNPARKED(s)	((s) & 0xffffu)
#define IDLE_SEARCHING(s)	((s) >> 16)
#define IDLE_ONE_SEARCHING	(1u << 16)

static bool idle_to_searching(struct urt_worker *w)
{
	struct urt_rt *rt = w->rt;
	unsigned int s;

	if (w->searching)
		return true;
	s = atomic_load_explicit(&rt->idle.state, memory_order_seq_cst);
	if (2 * IDLE_SEARCHING(s) >= rt->nworkers)
		return false;
	atomic_fetch_add_explicit(&rt->idle.state, IDLE_ONE_SEARCHING, memory_order_seq_cst);
	w->searching = true;
	return true;
}

/* Found work while searching. If we were the last searcher, someone else
 * must look for the rest. */
static void idle_from_searching(struct urt_worker *w)
{
	unsigned int prev;

	w->searching = false;
	prev = atomic_fetch_sub_explicit(&w->rt->idle.state, IDLE_ONE_SEARCHING,
					 memory_order_seq_cst);
	if (IDLE_SEARCHING(prev) == 1)
		urt__notify_parked(w->rt);
}

/* Returns true if this was the last searching worker. */
static bool idle_to_parked(struct urt_worker *w)
{
	struct urt_idle *idle = &w->rt->idle;
	unsigned int dec = 1 + (w->searching ? IDLE_ONE_SEARCHING : 0);
	unsigned int prev;

	urt__spin_lock(&idle->lock);
	prev = atomic_fetch_sub_explicit(&idle->state, dec, memory_order_seq_cst);
	idle->sleepers[idle->nsleepers++] = w->index;
	urt__spin_unlock(&idle->lock);
	if (w->searching) {
		w->searching = false;
		return IDLE_SEARCHING(prev) == 1;
	}
	return false;
}

static bool idle_is_parked(struct urt_worker *w)
{
	struct urt_idle *idle = &w->rt->idle;
	bool parked = false;

	urt__spin_lock(&idle->lock);
	for (int i = 0; i < idle->nsleepers; i++)
		if (idle->sleepers[i] == w->index)
			parked = true;
	urt__spin_unlock(&idle->lock);
	return parked;
}

/* Woke up by itself (driver event, local work): leave the sleepers. */
static void idle_unpark_self(struct urt_worker *w)
{
	struct urt_idle *idle = &w->rt->idle;

	urt__spin_lock(&idle->lock);
	for (int i = 0; i < idle->nsleepers; i++) {
		if (idle->sleepers[i] == w->index) {
			idle->sleepers[i] = idle->sleepers[--idle->nsleepers];
			atomic_fetch_add_explicit(&idle->state, 1, memory_order_seq_cst);
			break;
		}
	}
	urt__spin_unlock(&idle->lock);
}

static void unpark(struct urt_worker *w)
{
	unsigned int prev = atomic_exchange_explicit(&w->park_state, PARK_NOTIFIED,
						     memory_order_seq_cst);

	if (prev == PARK_FUTEX)
		urt__futex_wake(&w->park_state, 1);
	else if (prev == PARK_DRIVER)
		urt__driver_kick(w->rt);
}

void urt__notify_parked(struct urt_rt *rt)
{
	struct urt_idle *idle = &rt->idle;
	unsigned int s = atomic_load_explicit(&idle->state, memory_order_seq_cst);
	int idx;

	if (IDLE_SEARCHING(s) || IDLE_UNPARKED(s) >= rt->nworkers)
		return;
	urt__spin_lock(&idle->lock);
	s = atomic_load_explicit(&idle->state, memory_order_seq_cst);
	if (IDLE_SEARCHING(s) || IDLE_UNPARKED(s) >= rt->nworkers || !idle->nsleepers) {
		urt__spin_unlock(&idle->lock);
		return;
	}
	/* The woken worker starts out unparked and searching. */
	atomic_fetch_add_explicit(&idle->state, 1 + IDLE_ONE_SEARCHING, memory_order_seq_cst);
	idx = idle->sleepers[--idle->nsleepers];
	urt__spin_unlock(&idle->lock);
	unpark(&rt->workers[idx]);
}

/* ------------------------------------------------------------ queues */

void urt__schedule(struct urt_task *t, bool yield)
{
	struct urt_worker *w = urt__worker();
	struct urt_rt *rt = t->rt;

	if (w && w->rt == rt && w->slot) {
		struct urt_slot *s = w->slot;

		if (!yield) {
			/* Woken or spawned by a running task: run it next, where its
			 * data is still in cache. */
			struct urt_task *prev = s->lifo;

			s->lifo = t;
			if (!prev)
				return;
			t = prev;
		}
		urt__lq_push(&s->q, t, &rt->inject);
	} else {
		urt__inject_push(&rt->inject, t);
	}
	urt__notify_parked(rt);
}

static bool work_anywhere(struct urt_rt *rt)
{
	if (!urt__inject_empty(&rt->inject))
		return true;
	for (unsigned int i = 0; i < rt->nworkers; i++)
		if (urt__lq_len(&rt->slots[i].q))
			return true;
	return false;
}

static struct urt_task *next_task(struct urt_worker *w)
{
	struct urt_slot *s = w->slot;
	struct urt_rt *rt = w->rt;
	struct urt_task *t;

	if (s->lifo) {
		t = s->lifo;
		s->lifo = NULL;
		if (s->lifo_polls < MAX_LIFO_POLLS) {
			s->lifo_polls++;
			return t;
		}
		/* Starvation guard: the LIFO task waits its turn like the rest. */
		urt__lq_push(&s->q, t, &rt->inject);
	}
	s->lifo_polls = 0;
	if (w->tick % rt->cfg.global_queue_interval == 0) {
		t = urt__inject_pop(&rt->inject);
		if (t)
			return t;
	}
	t = urt__lq_pop(&s->q);
	if (t)
		return t;
	return urt__inject_pop(&rt->inject);
}

static struct urt_task *steal_work(struct urt_worker *w)
{
	struct urt_rt *rt = w->rt;
	unsigned int n = rt->nworkers, start;
	struct urt_task *t;

	if (n > 1 && idle_to_searching(w)) {
		w->rng ^= w->rng << 13;
		w->rng ^= w->rng >> 17;
		w->rng ^= w->rng << 5;
		start = w->rng % n;
		for (unsigned int i = 0; i < n; i++) {
			unsigned int idx = (start + i) % n;

			if (idx == (unsigned int)w->slot->index)
				continue;
			t = urt__lq_steal(&rt->slots[idx].q, &w->slot->q);
			if (t) {
				urt__count(&w->slot->steals, 1);
				return t;
			}
		}
	}
	return urt__inject_pop(&rt->inject);
}

/* ------------------------------------------------------------ the driver */

void urt__driver_kick(struct urt_rt *rt)
{
	uint64_t one = 1;

	if (atomic_exchange_explicit(&rt->driver_kicked, 1, memory_order_seq_cst))
		return;	/* a kick is already on its way */
	if (write(rt->event_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is full, the driver will wake anyway */
	}
}

static int epoll_wait_ns(int epfd, struct epoll_event *ev, int n, int64_t timeout_ns)
{
	static atomic_bool no_pwait2;
	struct timespec ts;
	int r;

	if (timeout_ns < 0)
		return epoll_wait(epfd, ev, n, -1);
	if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
		ts.tv_sec = timeout_ns / 1000000000LL;
		ts.tv_nsec = timeout_ns % 1000000000LL;
		r = (int)syscall(SYS_epoll_pwait2, epfd, ev, n, &ts, NULL, 0);
		if (r >= 0 || errno != ENOSYS)
			return r;
		atomic_store(&no_pwait2, true);
	}
	/* Older kernels: millisecond timeouts, rounded up so timers never fire early. */
	return epoll_wait(epfd, ev, n, (int)((timeout_ns + 999999) / 1000000));
}

/* Runs the driver once: wait up to timeout_ns (-1: until the next timer or
 * an event; 0: just poll). Caller holds rt->driver_lock. */
static void driver_turn(struct urt_rt *rt, bool block)
{
	struct epoll_event ev[DRIVER_EVENTS];
	int64_t timeout = 0;
	int n;

	if (block) {
		int64_t next = urt__timers_next(rt);

		atomic_store_explicit(&rt->driver_until, next, memory_order_seq_cst);
		/* A timer armed before the store is visible now; one armed
		 * after it sees driver_until and kicks us (timer.c). */
		next = urt__timers_next(rt);
		if (next == URT_FOREVER) {
			timeout = -1;
		} else {
			timeout = next - urt_now();
			if (timeout < 0)
				timeout = 0;
		}
	}
	n = epoll_wait_ns(urt__reactor_epfd(rt->reactor), ev, DRIVER_EVENTS, timeout);
	if (block)
		atomic_store_explicit(&rt->driver_until, URT_FOREVER, memory_order_seq_cst);
	for (int i = 0; i < n; i++) {
		if (ev[i].data.ptr == NULL) {
			uint64_t v;

			atomic_store_explicit(&rt->driver_kicked, 0, memory_order_seq_cst);
			if (read(rt->event_fd, &v, sizeof(v)) < 0) {
				/* EAGAIN: drained by an earlier turn */
			}
		} else {
			urt__reactor_event(rt->reactor, &ev[i]);
		}
	}
	urt__timers_run(rt, urt_now());
}

static bool driver_trylock(struct urt_rt *rt)
{
	unsigned int z = 0;

	return atomic_compare_exchange_strong_explicit(&rt->driver_lock, &z, 1,
			memory_order_acquire, memory_order_relaxed);
}

static void driver_unlock(struct urt_rt *rt)
{
	atomic_store_explicit(&rt->driver_lock, 0, memory_order_release);
}

/* Between tasks: service I/O and timers without blocking. */
static void maintenance(struct urt_worker *w)
{
	struct urt_rt *rt = w->rt;

	if (driver_trylock(rt)) {
		driver_turn(rt, false);
		driver_unlock(rt);
	} else {
		urt__timers_run(rt, urt_now());
	}
}

/* Sleeps until unparked; the driver holder also wakes on I/O and timers. */
static void park_timeout(struct urt_worker *w)
{
	struct urt_rt *rt = w->rt;
	unsigned int expect = PARK_EMPTY;

	if (driver_trylock(rt)) {
		if (atomic_compare_exchange_strong(&w->park_state, &expect, PARK_DRIVER)) {
			driver_turn(rt, true);
		}
		atomic_exchange(&w->park_state, PARK_EMPTY);
		driver_unlock(rt);
		return;
	}
	if (atomic_compare_exchange_strong(&w->park_state, &expect, PARK_FUTEX)) {
		while (atomic_load(&w->park_state) == PARK_FUTEX)
			urt__futex_wait(&w->park_state, PARK_FUTEX, URT_FOREVER);
	}
	atomic_exchange(&w->park_state, PARK_EMPTY);
}

static void park(struct urt_worker *w)
{
	struct urt_rt *rt = w->rt;
	struct urt_slot *s = w->slot;

	urt__count(&s->parks, 1);
	if (idle_to_parked(w) && work_anywhere(rt))
		urt__notify_parked(rt);
	while (!atomic_load_explicit(&rt->stop, memory_order_acquire)) {
		park_timeout(w);
		if (s->lifo || urt__lq_len(&s->q)) {
			/* The driver woke tasks onto our own slot. */
			idle_unpark_self(w);
			if (urt__lq_len(&s->q))
				urt__notify_parked(rt);
			return;
		}
		if (!idle_is_parked(w)) {
			w->searching = true;	/* notify_parked counted us searching */
			return;
		}
	}
	idle_unpark_self(w);
}

/* ------------------------------------------------------------ workers */

static void *worker_main(void *arg)
{
	struct urt_worker *w = arg;
	struct urt_rt *rt = w->rt;
	sigset_t sync_sigs;
	char name[16];


	/* Faults are delivered to the faulting thread: keep them deliverable
	 * (a blocked SIGSEGV kills the process without a word). */
	sigemptyset(&sync_sigs);
	sigaddset(&sync_sigs, SIGSEGV);
	sigaddset(&sync_sigs, SIGBUS);
	sigaddset(&sync_sigs, SIGFPE);
	sigaddset(&sync_sigs, SIGILL);
	sigaddset(&sync_sigs, SIGABRT);
	pthread_sigmask(SIG_UNBLOCK, &sync_sigs, NULL);
	urt__set_worker(w);
	urt__set_current_rt(rt);
	snprintf(name, sizeof(name), "%.10s-w%d", rt->cfg.name, w->index);
	pthread_setname_np(pthread_self(), name);
	urt__thread_fiber_init(w);

	while (!atomic_load_explicit(&rt->stop, memory_order_acquire)) {
		struct urt_task *t;

		w->tick++;
		if (w->tick % rt->cfg.event_interval == 0)
			maintenance(w);
		t = next_task(w);
		if (!t)
			t = steal_work(w);
		if (t) {
			if (w->searching)
				idle_from_searching(w);
			urt__run_task(w, t);
			continue;
		}
		park(w);
	}
	urt__thread_fiber_fini(w);
	urt__set_worker(NULL);
	urt__set_current_rt(NULL);
	return NULL;
}

int urt__workers_start(struct urt_rt *rt)
{
	sigset_t all, old;
	int err = 0;
	unsigned int i;

	atomic_init(&rt->idle.state, rt->nworkers);
	/* Workers must not take the process's signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < rt->nworkers; i++) {
		struct urt_worker *w = &rt->workers[i];

		w->rng = 0x9e3779b9u * (i + 1);
		err = -pthread_create(&w->thread, NULL, worker_main, w);
		if (err)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		rt->nworkers_started = i;
		urt__workers_stop(rt);
		return err;
	}
	rt->nworkers_started = i;
	return 0;
}

void urt__workers_stop(struct urt_rt *rt)
{
	atomic_store_explicit(&rt->stop, true, memory_order_release);
	for (unsigned int i = 0; i < rt->nworkers_started; i++)
		unpark(&rt->workers[i]);
	urt__driver_kick(rt);
	for (unsigned int i = 0; i < rt->nworkers_started; i++)
		pthread_join(rt->workers[i].thread, NULL);
	rt->nworkers_started = 0;
}
