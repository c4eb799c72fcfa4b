// SPDX-License-Identifier: MIT
/*
 * task.c - task objects, their state machine, handles, wakers.
 *
 * Lifetime. A task object is referenced by: its handle (until joined or
 * detached), "alive" (until it completes), each waker, each armed timer.
 * When the count drops to zero the object goes back to a pool; objects
 * live in slabs that are freed only with the runtime. So a stale handle
 * still points at a task object: `handle` holds the task id while the
 * handle is live and 0 once consumed, and every handle operation checks it
 * -- a double join is -ESRCH, not a use-after-free.
 *
 * State transitions (see internal.h for the bits):
 *   spawn:      NOTIFIED, pushed to a queue
 *   run:        NOTIFIED -> RUNNING (by the worker that popped it)
 *   wake:       idle -> NOTIFIED + push; RUNNING -> RUNNING|NOTIFIED
 *   step ends:  RUNNING -> idle, or RUNNING|NOTIFIED -> NOTIFIED + push
 *   yield:      RUNNING kept ("held"), pushed to the back of the ring; the
 *               worker that pops it finds RUNNING set and runs it as is
 *               (fibers' urt_yield and poll tasks' urt_cx_yield)
 *   finish:     RUNNING -> COMPLETE (under t->lock, to meet a joiner)
 */
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "trace.h"

#define SLAB_TASKS		64
#define TASK_CACHE_WORKER	256
#define ID_BATCH		256	/* ids a worker takes at a time (no shared RMW per spawn) */

struct urt_cx {
	struct urt_task *task;
	struct urt_worker *w;
};

/* ------------------------------------------------------------ allocation */

static int slab_grow(struct urt_rt *rt)
{
	struct urt_task *slab;

	if (rt->nslabs == rt->cap_slabs) {
		size_t cap = rt->cap_slabs ? rt->cap_slabs * 2 : 64;
		void **n = realloc(rt->slabs, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		rt->slabs = n;
		rt->cap_slabs = cap;
	}
	slab = aligned_alloc(CACHELINE, SLAB_TASKS * sizeof(*slab));
	if (!slab)
		return -ENOMEM;
	memset(slab, 0, SLAB_TASKS * sizeof(*slab));
	rt->slabs[rt->nslabs++] = slab;
	for (int i = SLAB_TASKS - 1; i >= 0; i--) {
		slab[i].next = rt->task_free;
		rt->task_free = &slab[i];
	}
	return 0;
}

struct urt_task *urt__task_alloc(struct urt_rt *rt)
{
	struct urt_worker *w = urt__worker();
	struct urt_task *t;

	if (w && w->rt == rt && w->task_cache) {
		t = w->task_cache;
		w->task_cache = t->next;
		w->ntask_cache--;
		return t;
	}
	urt__spin_lock(&rt->slab_lock);
	if (!rt->task_free && slab_grow(rt)) {
		urt__spin_unlock(&rt->slab_lock);
		return NULL;
	}
	t = rt->task_free;
	rt->task_free = t->next;
	urt__spin_unlock(&rt->slab_lock);
	return t;
}

static void task_release(struct urt_task *t)
{
	struct urt_rt *rt = t->rt;
	struct urt_worker *w = urt__worker();

	if (t->stack || t->kind == TK_FIBER)
		urt__fiber_release(w && w->rt == rt ? w : NULL, t);
	if (t->cx_timer) {
		free(t->cx_timer);
		t->cx_timer = NULL;
	}
	atomic_store_explicit(&t->id, 0, memory_order_relaxed);
	if (w && w->rt == rt && w->ntask_cache < TASK_CACHE_WORKER) {
		t->next = w->task_cache;
		w->task_cache = t;
		w->ntask_cache++;
		return;
	}
	urt__spin_lock(&rt->slab_lock);
	t->next = rt->task_free;
	rt->task_free = t;
	urt__spin_unlock(&rt->slab_lock);
}

void urt__task_unref(struct urt_task *t)
{
	if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
		task_release(t);
}

/* A reference only if the object is still in use (refs > 0). */
bool urt__task_tryref(struct urt_task *t)
{
	unsigned int r = atomic_load_explicit(&t->refs, memory_order_relaxed);

	do {
		if (r == 0)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&t->refs, &r, r + 1,
			memory_order_acquire, memory_order_relaxed));
	return true;
}

void urt__tasks_free(struct urt_rt *rt)
{
	for (size_t i = 0; i < rt->nslabs; i++)
		free(rt->slabs[i]);
	free(rt->slabs);
	rt->slabs = NULL;
	rt->nslabs = rt->cap_slabs = 0;
	rt->task_free = NULL;
	for (unsigned int i = 0; i < rt->nworkers; i++) {
		rt->workers[i].task_cache = NULL;
		rt->workers[i].ntask_cache = 0;
	}
}

/* ------------------------------------------------------------ waking */

static inline void task_wake(struct urt_task *t, bool lifo)
{
	unsigned int s = atomic_load_explicit(&t->state, memory_order_relaxed);

	do {
		if (s & (TS_COMPLETE | TS_NOTIFIED))
			return;
	} while (!atomic_compare_exchange_weak_explicit(&t->state, &s, s | TS_NOTIFIED,
			memory_order_acq_rel, memory_order_relaxed));
	URT_TRACE_WAKE(t);	/* before it can run: RUNNING ones too (yield) */
	if (s & TS_RUNNING)
		return;		/* its worker re-queues it when the step ends */
	if (t->kind == TK_BLOCKING)
		return;		/* blocking jobs are not scheduled by wakes */
	urt__schedule(t, !lifo);
}

void urt__task_wake(struct urt_task *t)
{
	task_wake(t, true);
}

void urt__task_wake_fifo(struct urt_task *t)
{
	task_wake(t, false);
}

void urt_wake(urt_waker *w)
{
	if (!w)
		return;
	urt__task_wake((struct urt_task *)w);
	urt__task_unref((struct urt_task *)w);
}

void urt_wake_by_ref(urt_waker *w)
{
	if (w)
		urt__task_wake((struct urt_task *)w);
}

urt_waker *urt_waker_clone(urt_waker *w)
{
	if (w)
		urt__task_ref((struct urt_task *)w);
	return w;
}

void urt_waker_drop(urt_waker *w)
{
	if (w)
		urt__task_unref((struct urt_task *)w);
}

/* ------------------------------------------------------------ spawning */

urt_task_t urt__spawn(struct urt_rt *rt, enum urt_task_kind kind, void *fn, void *arg,
		      const struct urt_spawn_opts *opts)
{
	struct urt_worker *w;
	struct urt_task *t;
	uint64_t id;
	bool detached = opts && opts->detached;

	if (!rt)
		rt = urt__current_rt();
	if (!rt) {
		errno = EPERM;
		return URT_TASK_NONE;
	}
	if (!fn) {
		errno = EINVAL;
		return URT_TASK_NONE;
	}
	if (atomic_load_explicit(&rt->shutdown, memory_order_acquire)) {
		errno = ESHUTDOWN;
		return URT_TASK_NONE;
	}
	t = urt__task_alloc(rt);
	if (!t) {
		errno = ENOMEM;
		return URT_TASK_NONE;
	}
	w = urt__worker();
	if (w && w->rt == rt) {
		/* Ids are unique, not ordered: a worker takes a batch at a time. */
		if (unlikely(w->id_next == w->id_end)) {
			w->id_next = atomic_fetch_add_explicit(&rt->next_id, ID_BATCH,
							       memory_order_relaxed);
			w->id_end = w->id_next + ID_BATCH;
		}
		id = w->id_next++;
		urt__count(&w->spawned, 1);
	} else {
		w = NULL;
		id = atomic_fetch_add_explicit(&rt->next_id, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&rt->foreign_spawned, 1, memory_order_relaxed);
	}
	t->rt = rt;
	t->kind = kind;
	t->started = t->done = t->yielded = false;
	t->detached = detached;
	t->fn = fn;
	t->arg = arg;
	t->result = NULL;
	t->err = 0;
	t->sp = NULL;
	t->stack = NULL;
	t->stack_size = opts ? opts->stack_size : 0;
	t->joiner = NULL;
	t->cleanup = opts ? opts->cleanup : NULL;
	t->cleanup_arg = opts ? opts->cleanup_arg : NULL;
	t->name[0] = 0;
	if (opts && opts->name) {
		strncpy(t->name, opts->name, sizeof(t->name) - 1);
		t->name[sizeof(t->name) - 1] = 0;
	}
	atomic_init(&t->lock.v, 0);
	atomic_store_explicit(&t->state, TS_NOTIFIED, memory_order_relaxed);
	atomic_store_explicit(&t->handle, detached ? 0 : id, memory_order_relaxed);
	atomic_store_explicit(&t->id, id, memory_order_relaxed);
	/* Last: task_tryref (urt_cancel, teardown) sees a fully set-up task. */
	atomic_store_explicit(&t->refs, detached ? 1 : 2, memory_order_release);

	URT_TRACE_SPAWN(rt, t);
	if (kind != TK_BLOCKING)
		urt__schedule(t, false);
	return (urt_task_t){ t, id };
}

urt_task_t urt_spawn(urt_rt *rt, urt_fiber_fn fn, void *arg)
{
	return urt__spawn(rt, TK_FIBER, (void *)fn, arg, NULL);
}

urt_task_t urt_spawn_opts(urt_rt *rt, urt_fiber_fn fn, void *arg,
			  const struct urt_spawn_opts *opts)
{
	if (opts && opts->stack_size && (opts->stack_size < 16384 || opts->stack_size > (1UL << 30))) {
		errno = EINVAL;
		return URT_TASK_NONE;
	}
	return urt__spawn(rt, TK_FIBER, (void *)fn, arg, opts);
}

urt_task_t urt_spawn_poll(urt_rt *rt, urt_poll_fn poll, void *state,
			  const struct urt_spawn_opts *opts)
{
	return urt__spawn(rt, TK_POLL, (void *)poll, state, opts);
}

/* ------------------------------------------------------------ running */

/* Marks t complete and meets its joiner; runs on the scheduler stack. */
void urt__task_complete(struct urt_task *t)
{
	struct urt_worker *w = urt__worker();
	struct urt_waiter *j;
	unsigned int s, done;

	if (t->kind == TK_FIBER)
		urt__fiber_release(w && w->rt == t->rt ? w : NULL, t);
	s = atomic_load_explicit(&t->state, memory_order_relaxed);
	if ((s & TS_CANCEL) && !t->err)
		t->err = -ECANCELED;

	/*
	 * One RMW sets COMPLETE and clears RUNNING if we hold it (the
	 * blocking pool also completes jobs that never ran): RUNNING changes
	 * only in its holder's hands, and COMPLETE only here.
	 */
	done = TS_COMPLETE | (s & TS_RUNNING);
	if (t->detached) {
		/* No handle ever existed: no joiner can come (join needs the handle). */
		atomic_fetch_xor_explicit(&t->state, done, memory_order_release);
		j = NULL;
	} else {
		urt__spin_lock(&t->lock);
		atomic_fetch_xor_explicit(&t->state, done, memory_order_release);
		j = t->joiner;
		t->joiner = NULL;
		urt__spin_unlock(&t->lock);
	}

	if (j) {
		if (j->user == (void *)&urt__task_complete) {
			/* a poll task's heap node (urt_join_poll): ours to free */
			struct urt_task *jt = j->task;

			free(j);
			urt__task_wake(jt);
			urt__task_unref(jt);
		} else {
			urt__waiter_notify(j);
		}
	}
	if (w && w->rt == t->rt)
		urt__count(&w->completed, 1);
	else
		atomic_fetch_add_explicit(&t->rt->foreign_completed, 1, memory_order_relaxed);
	urt__task_unref(t);	/* "alive" */
}

static void run_cleanup(struct urt_task *t)
{
	if (t->cleanup)
		t->cleanup(t->cleanup_arg);
}

/* A step of t begins on w: state, and what the monitor and the tools see. */
static inline __attribute__((always_inline)) unsigned int
step_begin(struct urt_worker *w, struct urt_slot *slot, struct urt_task *t)
{
	/*
	 * Queue invariant: NOTIFIED set and RUNNING clear (woken: flip both),
	 * or RUNNING set (a yielded task, held: popping it made it ours).
	 * Other threads only ever set NOTIFIED or CANCEL, never RUNNING, so
	 * the bit read here is stable; the queue's acquire orders the rest.
	 */
	unsigned int s = atomic_load_explicit(&t->state, memory_order_relaxed);

	if (!(s & TS_RUNNING))
		s = atomic_fetch_xor_explicit(&t->state, TS_NOTIFIED | TS_RUNNING,
					      memory_order_acquire);
	urt__tls_task = t;
	urt__count(&w->polls, 1);
	if (slot) {
		/* For the monitor's hog check (like Go's schedtick) and the tools. */
		atomic_store_explicit(&slot->cur_task, atomic_load_explicit(&t->id,
				      memory_order_relaxed), memory_order_relaxed);
		/* release: the monitor reads the task through it (sysmon.c) */
		atomic_store_explicit(&slot->cur, t, memory_order_release);
		urt__count(&slot->steps, 1);
	}
	URT_TRACE_RUN(w, t);
	return s;
}

/*
 * A step of t ended and its context is saved (we run on the scheduler's
 * stack, or on the next fiber's after a direct switch): complete it, or
 * put it back to the queue if it yielded or was woken meanwhile.
 */
static void step_end(struct urt_task *t, bool finished)
{
	unsigned int s;

	if (finished) {
		urt__task_complete(t);
		return;
	}
	if (t->yielded) {
		/* Held across the yield: RUNNING stays set (see internal.h). */
		t->yielded = false;
		urt__schedule(t, true);
		return;
	}
	/* Go idle, or back to the queue if woken meanwhile. */
	s = atomic_fetch_and_explicit(&t->state, ~(unsigned int)TS_RUNNING, memory_order_acq_rel);
	if (s & TS_NOTIFIED)
		urt__schedule(t, true);
}

/*
 * Fiber `from` (running on w) is about to suspend or finish: the next
 * local fiber to switch to directly, its step begun, with from's step end
 * left in w->prev_step; or NULL: switch back to the scheduler.
 */
struct urt_task *urt__step_next(struct urt_worker *w, struct urt_task *from)
{
	struct urt_task *t = urt__next_direct(w, from->yielded);

	if (!t)
		return NULL;
	if (unlikely(!t->started)) {
		if (urt__fiber_prepare(w, t)) {
			/* No stack now: still NOTIFIED, the loop starts it and reports. */
			urt__schedule(t, false);
			return NULL;
		}
		t->started = true;
	}
	URT_TRACE_STOP(w, from, from->done);
	step_begin(w, w->slot, t);
	w->prev_step = from;
	return t;
}

void urt__step_after_switch(struct urt_worker *w)
{
	struct urt_task *prev = w->prev_step;

	w->prev_step = NULL;
	step_end(prev, prev->done);
}

void urt__run_task(struct urt_worker *w, struct urt_task *t)
{
	struct urt_slot *slot = w->slot;
	bool finished = false;
	unsigned int s;

	s = step_begin(w, slot, t);
	if (unlikely(!t->started && (s & TS_CANCEL))) {
		/* Cancelled before its first step: only the cleanup runs. */
		run_cleanup(t);
		finished = true;
	} else if (t->kind == TK_FIBER) {
		if (unlikely(!t->started)) {
			t->started = true;
			t->err = urt__fiber_prepare(w, t);
			if (t->err) {
				run_cleanup(t);
				finished = true;
			}
		}
		if (likely(!finished)) {
			/* It may have switched on to other fibers: t is the last. */
			t = urt__fiber_resume(w, t);
			finished = t->done;
		}
	} else {
		struct urt_cx cx = { t, w };
		void *result = NULL;

		t->started = true;
		if (t->poll(t->arg, &cx, &result) == URT_READY) {
			t->result = result;
			run_cleanup(t);
			finished = true;
		}
	}
	urt__tls_task = NULL;
	URT_TRACE_STOP(w, t, finished);
	/* No slot->cur_task = 0 here: the slot may have moved on to a spare
	 * that began its own step; the loop clears it as the owner (sched.c). */
	step_end(t, finished);
}

/* ------------------------------------------------------------ awaiting */

int urt__park(int64_t deadline)
{
	struct urt_task *t = urt__current_task();
	struct urt_timer tm;
	bool armed = false;

	if (atomic_load_explicit(&t->state, memory_order_acquire) & TS_CANCEL)
		return -ECANCELED;
	if (deadline != URT_FOREVER) {
		if (urt_now() >= deadline)
			return -ETIMEDOUT;
		urt__timer_arm(t->rt, &tm, t, deadline);
		armed = true;
	}
	urt__fiber_suspend(t);
	if (armed)
		urt__timer_cancel(t->rt, &tm);
	if (atomic_load_explicit(&t->state, memory_order_acquire) & TS_CANCEL)
		return -ECANCELED;
	if (deadline != URT_FOREVER && urt_now() >= deadline)
		return -ETIMEDOUT;
	return 0;
}

void urt__park_nocancel(void)
{
	urt__fiber_suspend(urt__current_task());
}

int urt_yield(void)
{
	struct urt_task *t = urt__current_task();

	if (!t || t->kind != TK_FIBER)
		return -EPERM;
	/*
	 * No self-wake: the step ends with RUNNING kept and the worker puts
	 * the task at the back of the ring (urt__run_task). A wake that
	 * arrives meanwhile sets NOTIFIED, acted on when a later step ends.
	 */
	URT_TRACE_WAKE(t);
	t->yielded = true;
	urt__fiber_suspend(t);
	if (atomic_load_explicit(&t->state, memory_order_acquire) & TS_CANCEL)
		return -ECANCELED;
	return 0;
}

int urt_sleep_until(int64_t deadline)
{
	if (!urt__in_fiber())
		return -EPERM;
	for (;;) {
		int r = urt__park(deadline);

		if (r == -ETIMEDOUT)
			return 0;
		if (r)
			return r;
	}
}

int urt_sleep(int64_t ns)
{
	if (ns < 0)
		return -EINVAL;
	return urt_sleep_until(urt__deadline(ns));
}

/* ------------------------------------------------------------ handles */

static struct urt_task *handle_task(urt_task_t h)
{
	struct urt_task *t = h.p;

	if (!t || !h.id)
		return NULL;
	return t;
}

static int join_finish(struct urt_task *t, void **result)
{
	int err;

	if (result)
		*result = t->result;
	err = t->err;
	urt__task_unref(t);	/* the handle's reference */
	return err;
}

int urt_join_timeout(urt_task_t h, void **result, int64_t timeout_ns)
{
	struct urt_task *t = handle_task(h), *cur = urt__current_task();
	int64_t deadline = urt__deadline(timeout_ns);
	struct urt_waiter w;
	uint64_t id = h.id;
	int r;

	if (!t)
		return -EINVAL;
	if (cur && !urt__in_fiber())
		return -EPERM;
	if (cur == t)
		return -EDEADLK;
	if (!atomic_compare_exchange_strong(&t->handle, &id, 0))
		return -ESRCH;

	urt__spin_lock(&t->lock);
	if (atomic_load_explicit(&t->state, memory_order_acquire) & TS_COMPLETE) {
		urt__spin_unlock(&t->lock);
		return join_finish(t, result);
	}
	if (t->joiner) {
		urt__spin_unlock(&t->lock);
		atomic_store(&t->handle, h.id);
		return -EBUSY;
	}
	urt__waiter_init(&w);
	t->joiner = &w;
	urt__spin_unlock(&t->lock);

	r = urt__waiter_wait(&w, deadline);
	if (r) {
		urt__spin_lock(&t->lock);
		if (t->joiner == &w) {
			t->joiner = NULL;
			urt__spin_unlock(&t->lock);
			atomic_store(&t->handle, h.id);	/* not consumed: join again later */
			return r;
		}
		urt__spin_unlock(&t->lock);
		urt__waiter_wait_notified(&w);
	}
	return join_finish(t, result);
}

int urt_join(urt_task_t h, void **result)
{
	return urt_join_timeout(h, result, URT_FOREVER);
}

enum urt_poll urt_join_poll(urt_task_t h, urt_cx *cx, void **result, int *err)
{
	struct urt_task *t = handle_task(h);
	struct urt_waiter *node;
	int e = 0;

	if (!t || !cx) {
		e = -EINVAL;
		goto ready;
	}
	if (atomic_load(&t->handle) != h.id) {
		e = -ESRCH;
		goto ready;
	}
	urt__spin_lock(&t->lock);
	if (atomic_load_explicit(&t->state, memory_order_acquire) & TS_COMPLETE) {
		uint64_t id = h.id;

		urt__spin_unlock(&t->lock);
		if (!atomic_compare_exchange_strong(&t->handle, &id, 0)) {
			e = -ESRCH;
			goto ready;
		}
		e = join_finish(t, result);
		goto ready;
	}
	if (t->joiner) {
		bool ours = t->joiner->task == cx->task &&
			    t->joiner->user == (void *)&urt__task_complete;

		urt__spin_unlock(&t->lock);
		if (ours)
			return URT_PENDING;
		e = -EBUSY;
		goto ready;
	}
	node = calloc(1, sizeof(*node));
	if (!node) {
		urt__spin_unlock(&t->lock);
		e = -ENOMEM;
		goto ready;
	}
	urt__task_ref(cx->task);
	node->task = cx->task;
	node->user = (void *)&urt__task_complete;	/* marks a heap node */
	t->joiner = node;
	urt__spin_unlock(&t->lock);
	return URT_PENDING;
ready:
	if (err)
		*err = e;
	return URT_READY;
}

int urt_cancel(urt_task_t h)
{
	struct urt_task *t = handle_task(h);

	if (!t)
		return -EINVAL;
	if (!urt__task_tryref(t))
		return -ESRCH;
	if (atomic_load(&t->handle) != h.id) {
		urt__task_unref(t);
		return -ESRCH;
	}
	atomic_fetch_or_explicit(&t->state, TS_CANCEL, memory_order_acq_rel);
	urt__task_wake(t);
	urt__task_unref(t);
	return 0;
}

int urt_detach(urt_task_t h)
{
	struct urt_task *t = handle_task(h);
	uint64_t id = h.id;

	if (!t)
		return -EINVAL;
	if (!atomic_compare_exchange_strong(&t->handle, &id, 0))
		return -ESRCH;
	urt__task_unref(t);
	return 0;
}

uint64_t urt_task_id(urt_task_t h)
{
	return h.id;
}

/* Cancels every task still alive; used by urt_destroy. */
void urt__cancel_all(struct urt_rt *rt)
{
	size_t nslabs;

	urt__spin_lock(&rt->slab_lock);
	nslabs = rt->nslabs;
	urt__spin_unlock(&rt->slab_lock);
	for (size_t i = 0; i < nslabs; i++) {
		struct urt_task *slab;

		urt__spin_lock(&rt->slab_lock);
		slab = rt->slabs[i];
		urt__spin_unlock(&rt->slab_lock);
		for (int k = 0; k < SLAB_TASKS; k++) {
			struct urt_task *t = &slab[k];

			if (!urt__task_tryref(t))
				continue;
			if (!(atomic_load(&t->state) & TS_COMPLETE)) {
				atomic_fetch_or_explicit(&t->state, TS_CANCEL, memory_order_acq_rel);
				urt__task_wake(t);
			}
			urt__task_unref(t);
		}
	}
}

uint64_t urt__live_tasks(struct urt_rt *rt)
{
	uint64_t spawned = atomic_load(&rt->foreign_spawned);
	uint64_t completed = atomic_load(&rt->foreign_completed);

	for (unsigned int i = 0; i < rt->nworkers; i++) {
		spawned += atomic_load_explicit(&rt->workers[i].spawned, memory_order_relaxed);
		completed += atomic_load_explicit(&rt->workers[i].completed, memory_order_relaxed);
	}
	return spawned - completed;
}

/* ------------------------------------------------------------ poll context */

urt_waker *urt_cx_waker(urt_cx *cx)
{
	return urt__waker_of(cx->task);
}

bool urt_cx_cancelled(urt_cx *cx)
{
	return atomic_load_explicit(&cx->task->state, memory_order_acquire) & TS_CANCEL;
}

void urt_cx_yield(urt_cx *cx)
{
	/* Like urt_yield: the step ends with the task held, at the back of the ring. */
	URT_TRACE_WAKE(cx->task);
	cx->task->yielded = true;
}

int urt_cx_wake_at(urt_cx *cx, int64_t deadline)
{
	struct urt_task *t;

	if (!cx)
		return -EINVAL;
	t = cx->task;
	if (!t->cx_timer) {
		t->cx_timer = calloc(1, sizeof(*t->cx_timer));
		if (!t->cx_timer)
			return -ENOMEM;
	}
	urt__timer_cancel(t->rt, t->cx_timer);
	urt__timer_arm(t->rt, t->cx_timer, t, deadline);
	return 0;
}

struct urt_task *urt__cx_task(urt_cx *cx)
{
	return cx->task;
}

/* ------------------------------------------------------------ self */

uint64_t urt_self_id(void)
{
	struct urt_task *t = urt__current_task();

	return t ? atomic_load_explicit(&t->id, memory_order_relaxed) : 0;
}

const char *urt_self_name(void)
{
	struct urt_task *t = urt__current_task();

	return t ? t->name : NULL;
}

bool urt_cancelled(void)
{
	struct urt_task *t = urt__current_task();

	return t && (atomic_load_explicit(&t->state, memory_order_acquire) & TS_CANCEL);
}
