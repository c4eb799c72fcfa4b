// SPDX-License-Identifier: MIT
/*
 * wait.c - waiters: how fibers and foreign threads wait on primitives.
 *
 * The protocol is in internal.h. The key property: after its last store to
 * `notified` the notifier never touches the waiter (or, for a fiber, its
 * task) again, because the waiter's frame may already be gone and its task
 * may have completed and been reused.
 *
 * `notified` goes 0 -> W_NOTIFYING -> W_DONE for a fiber, 0 -> W_DONE for
 * a foreign thread. A fiber's notifier stores W_NOTIFYING (release: hands
 * over result/value), wakes the task, then stores W_DONE (release: its wake
 * is over). The waiter leaves only on W_DONE, so the task cannot complete
 * (and its object be reused) while the wake still uses it: no reference
 * is taken around the wake (that was two locked RMWs per notify). A waiter
 * that sees W_NOTIFYING must not park -- the wake may already have been
 * consumed by the step it is in, and no other wake comes -- so it spins and
 * yields (held, urt_yield-style) for the few instructions left to the
 * notifier.
 */
#include <sched.h>

#include "rt.h"

enum { W_WAITING, W_NOTIFYING, W_DONE };

/*
 * A fiber saw W_NOTIFYING: its notifier is between its two stores (a wake,
 * no waiting in it). Spin a little, then yield (the task stays held and
 * goes to the back of the ring) so this worker's other tasks run; past
 * that, the notifier's thread was preempted: give it the CPU as well.
 */
static void wait_notify_done(struct urt_waiter *w)
{
	for (unsigned int i = 0;
	     atomic_load_explicit(&w->notified, memory_order_acquire) != W_DONE; i++) {
		if (i < 64) {
			__builtin_ia32_pause();
			continue;
		}
		if (i >= 1024)
			sched_yield();
		w->task->yielded = true;
		urt__fiber_suspend(w->task);
	}
}

int urt__may_wait(void)
{
	struct urt_task *t;

	if (likely(urt__in_fiber()))
		return 0;
	t = urt__current_task();
	return t && t->kind == TK_POLL ? -EPERM : 0;
}

void urt__waiter_init(struct urt_waiter *w)
{
	struct urt_task *t = urt__current_task();

	w->next = w->prev = NULL;
	/* A poll task cannot wait on its worker's stack; callers reject it first. */
	w->task = (t && urt__in_fiber()) ? t : NULL;
	atomic_init(&w->notified, 0);
	w->result = 0;
	w->value = NULL;
	w->user = NULL;
}

int urt__waiter_wait(struct urt_waiter *w, int64_t deadline)
{
	if (w->task) {
		for (;;) {
			unsigned int n;
			int r;

			n = atomic_load_explicit(&w->notified, memory_order_acquire);
			if (n)
				goto notified;
			r = urt__park(deadline);
			n = atomic_load_explicit(&w->notified, memory_order_acquire);
			if (n)
				goto notified;
			if (r)
				return r;
			continue;
notified:
			if (unlikely(n != W_DONE))
				wait_notify_done(w);
			return 0;
		}
	}
	while (!atomic_load_explicit(&w->notified, memory_order_acquire)) {
		if (urt__futex_wait(&w->notified, 0, deadline) == -ETIMEDOUT &&
		    !atomic_load_explicit(&w->notified, memory_order_acquire))
			return -ETIMEDOUT;
	}
	return 0;
}

void urt__waiter_wait_notified(struct urt_waiter *w)
{
	while (!atomic_load_explicit(&w->notified, memory_order_acquire)) {
		if (w->task)
			urt__park_nocancel();
		else
			urt__futex_wait(&w->notified, 0, URT_FOREVER);
	}
	if (w->task)
		wait_notify_done(w);
}

void urt__waiter_notify(struct urt_waiter *w)
{
	struct urt_task *t = w->task;

	if (t) {
		/* t cannot complete before W_DONE: no reference needed (above). */
		atomic_store_explicit(&w->notified, W_NOTIFYING, memory_order_release);
		urt__task_wake(t);
		atomic_store_explicit(&w->notified, W_DONE, memory_order_release);
	} else {
		atomic_store_explicit(&w->notified, W_DONE, memory_order_release);
		/* The frame may be gone: a stray wake of a reused address is harmless. */
		urt__futex_wake(&w->notified, 1);
	}
}

void urt__wlist_push(struct urt_wlist *l, struct urt_waiter *w)
{
	w->next = NULL;
	w->prev = l->tail;
	if (l->tail)
		l->tail->next = w;
	else
		l->head = w;
	l->tail = w;
}

void urt__wlist_remove(struct urt_wlist *l, struct urt_waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		l->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		l->tail = w->prev;
	w->next = w->prev = NULL;
}

struct urt_waiter *urt__wlist_pop(struct urt_wlist *l)
{
	struct urt_waiter *w = l->head;

	if (w)
		urt__wlist_remove(l, w);
	return w;
}

bool urt__wlist_linked(const struct urt_wlist *l, const struct urt_waiter *w)
{
	return w->prev || w->next || l->head == w;
}
