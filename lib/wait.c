// SPDX-License-Identifier: MIT
/*
 * wait.c - waiters: how fibers and foreign threads wait on primitives.
 *
 * The protocol is in internal.h. The key property: the notifier publishes
 * `notified` and then wakes, holding a reference on the waiting task so the
 * task object cannot be reused in between; after the store it never touches
 * the waiter again, because the waiter's frame may already be gone.
 */
#include "rt.h"

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
			int r;

			if (atomic_load_explicit(&w->notified, memory_order_acquire))
				return 0;
			r = urt__park(deadline);
			if (atomic_load_explicit(&w->notified, memory_order_acquire))
				return 0;
			if (r)
				return r;
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
}

void urt__waiter_notify(struct urt_waiter *w)
{
	struct urt_task *t = w->task;

	if (t) {
		urt__task_ref(t);
		atomic_store_explicit(&w->notified, 1, memory_order_release);
		urt__task_wake(t);
		urt__task_unref(t);
	} else {
		atomic_store_explicit(&w->notified, 1, memory_order_release);
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
