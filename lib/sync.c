// SPDX-License-Identifier: MIT
/*
 * sync.c - mutex, condition variable, semaphore, wait group, oneshot.
 *
 * All of them follow the waiter protocol of internal.h: a waiter lives on
 * the waiting fiber's (or foreign thread's) stack, is linked under the
 * object's spinlock, and is unlinked by whoever hands it what it waits
 * for (the mutex, a permit, a signal, a value) under that same lock. The
 * hand-off happens before the unlock; urt__waiter_notify() runs after it
 * and is the notifier's last touch of the waiter. A waiter that gives up
 * (timeout, cancel) and finds itself unlinked already owns what was
 * handed over, so it waits for the notify and reports success: nothing
 * handed over is ever lost.
 *
 * Hand-offs are direct and FIFO (a released mutex or permit goes to the
 * oldest waiter, newcomers cannot barge past waiters), which rules out
 * starvation at the price of a switch per contended hand-off.
 *
 * Waiting is allowed from fibers (suspends the fiber) and from threads
 * outside any runtime or in the blocking pool (blocks the thread); from a
 * poll task the waiting calls return -EPERM. Cancellation is observed
 * when a call would suspend: a call that can complete at once does.
 */
#include <limits.h>
#include <stdlib.h>

#include "internal.h"

/*
 * Who holds a mutex: the task id (unique across reuses of a task object)
 * for tasks, which may migrate between threads; for other threads the
 * address of a thread-local byte with the top bit set (task ids are
 * counters and never get there).
 */
static __thread char thread_mark;

static uint64_t self_id(void)
{
	struct urt_task *t = urt__current_task();

	if (t)
		return atomic_load_explicit(&t->id, memory_order_relaxed);
	return (uint64_t)(uintptr_t)&thread_mark | (1ull << 63);
}

/*
 * Gave up waiting on w with r != 0: unlink ourselves, or if a notifier
 * already did, wait for its notify and report success (0).
 */
static int give_up(urt_spin *lock, struct urt_wlist *l, struct urt_waiter *w, int r)
{
	urt__spin_lock(lock);
	if (urt__wlist_linked(l, w)) {
		urt__wlist_remove(l, w);
		urt__spin_unlock(lock);
		return r;
	}
	urt__spin_unlock(lock);
	urt__waiter_wait_notified(w);
	return 0;
}

/* Notifies every waiter of a chain built through ->user (after the unlock). */
static void notify_chain(struct urt_waiter *w)
{
	struct urt_waiter *next;

	for (; w; w = next) {
		next = w->user;
		urt__waiter_notify(w);
	}
}

/* Pops every waiter of l into a chain through ->user, handing each `value`. */
static struct urt_waiter *pop_all(struct urt_wlist *l, void *value)
{
	struct urt_waiter *w, *chain = NULL;

	while ((w = urt__wlist_pop(l))) {
		w->result = 0;
		w->value = value;
		w->user = chain;
		chain = w;
	}
	return chain;
}

/* ------------------------------------------------------------ mutex */

enum { M_FREE, M_LOCKED, M_CONTENDED };

/*
 * state moves FREE <-> LOCKED by CAS without the spinlock (the fast
 * paths); everything involving waiters happens under the spinlock, and
 * under it state == M_CONTENDED iff waiters is non-empty. So an owner
 * that sees CONTENDED takes the slow path and hands the mutex to the
 * first waiter: the mutex never goes FREE while someone waits.
 */
struct urt_mutex {
	atomic_uint state;
	atomic_uint_fast64_t owner;	/* self_id() of the holder; 0: none */
	urt_spin lock;
	struct urt_wlist waiters;
};

urt_mutex *urt_mutex_create(void)
{
	struct urt_mutex *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	atomic_init(&m->state, M_FREE);
	atomic_init(&m->owner, 0);
	m->lock = (urt_spin)URT_SPIN_INIT;
	return m;
}

int urt_mutex_destroy(urt_mutex *m)
{
	if (!m)
		return -EINVAL;
	if (atomic_load_explicit(&m->state, memory_order_acquire) != M_FREE)
		return -EBUSY;
	free(m);
	return 0;
}

static inline bool mutex_fast(struct urt_mutex *m, uint64_t me)
{
	unsigned int exp = M_FREE;

	if (!atomic_compare_exchange_strong_explicit(&m->state, &exp, M_LOCKED,
						     memory_order_acquire,
						     memory_order_relaxed))
		return false;
	atomic_store_explicit(&m->owner, me, memory_order_relaxed);
	return true;
}

/*
 * Slow path. nocancel: wait until we own it, whatever happens (relocking
 * after a condition wait must not fail).
 */
static int mutex_lock_slow(struct urt_mutex *m, uint64_t me, int64_t timeout_ns,
			   bool nocancel)
{
	struct urt_waiter w;
	unsigned int s;
	int r;

	if (atomic_load_explicit(&m->owner, memory_order_relaxed) == me)
		return -EDEADLK;
	urt__spin_lock(&m->lock);
	for (;;) {
		s = atomic_load_explicit(&m->state, memory_order_relaxed);
		if (s == M_FREE) {
			if (mutex_fast(m, me)) {
				urt__spin_unlock(&m->lock);
				return 0;
			}
			continue;
		}
		if (timeout_ns <= 0 && !nocancel) {
			urt__spin_unlock(&m->lock);
			return -ETIMEDOUT;
		}
		if (s == M_CONTENDED ||
		    atomic_compare_exchange_weak_explicit(&m->state, &s, M_CONTENDED,
							  memory_order_relaxed,
							  memory_order_relaxed))
			break;
	}
	urt__waiter_init(&w);
	urt__wlist_push(&m->waiters, &w);
	urt__spin_unlock(&m->lock);

	if (nocancel) {
		urt__waiter_wait_notified(&w);
	} else {
		r = urt__waiter_wait(&w, urt__deadline(timeout_ns));
		if (r) {
			urt__spin_lock(&m->lock);
			if (urt__wlist_linked(&m->waiters, &w)) {
				urt__wlist_remove(&m->waiters, &w);
				/* still held (CONTENDED pins it): drop the flag if last */
				if (!m->waiters.head)
					atomic_store_explicit(&m->state, M_LOCKED,
							      memory_order_relaxed);
				urt__spin_unlock(&m->lock);
				return r;
			}
			urt__spin_unlock(&m->lock);
			urt__waiter_wait_notified(&w);
		}
	}
	/* The unlocker handed it over; the acquire is the notify's. */
	atomic_store_explicit(&m->owner, me, memory_order_relaxed);
	return 0;
}

static int mutex_lock(struct urt_mutex *m, int64_t timeout_ns)
{
	uint64_t me;
	int r;

	if (!m)
		return -EINVAL;
	if (timeout_ns > 0) {
		r = urt__may_wait();
		if (r)
			return r;
	}
	me = self_id();
	if (likely(mutex_fast(m, me)))
		return 0;
	return mutex_lock_slow(m, me, timeout_ns, false);
}

int urt_mutex_lock(urt_mutex *m)
{
	return mutex_lock(m, URT_FOREVER);
}

int urt_mutex_lock_timeout(urt_mutex *m, int64_t timeout_ns)
{
	return mutex_lock(m, timeout_ns);
}

int urt_mutex_trylock(urt_mutex *m)
{
	if (!m)
		return -EINVAL;
	return mutex_fast(m, self_id()) ? 0 : -EBUSY;
}

static int mutex_unlock(struct urt_mutex *m, uint64_t me)
{
	unsigned int exp = M_LOCKED;
	struct urt_waiter *w;

	if (atomic_load_explicit(&m->owner, memory_order_relaxed) != me)
		return -EPERM;
	atomic_store_explicit(&m->owner, 0, memory_order_relaxed);
	if (atomic_compare_exchange_strong_explicit(&m->state, &exp, M_FREE,
						    memory_order_release,
						    memory_order_relaxed))
		return 0;
	urt__spin_lock(&m->lock);
	w = urt__wlist_pop(&m->waiters);
	if (!m->waiters.head)
		atomic_store_explicit(&m->state, w ? M_LOCKED : M_FREE,
				      memory_order_release);
	urt__spin_unlock(&m->lock);
	if (w)
		urt__waiter_notify(w);	/* w owns the mutex now */
	return 0;
}

int urt_mutex_unlock(urt_mutex *m)
{
	if (!m)
		return -EINVAL;
	return mutex_unlock(m, self_id());
}

/* ------------------------------------------------------------ cond */

struct urt_cond {
	urt_spin lock;
	struct urt_wlist waiters;
};

urt_cond *urt_cond_create(void)
{
	struct urt_cond *c = calloc(1, sizeof(*c));

	if (c)
		c->lock = (urt_spin)URT_SPIN_INIT;
	return c;
}

int urt_cond_destroy(urt_cond *c)
{
	bool busy;

	if (!c)
		return -EINVAL;
	urt__spin_lock(&c->lock);
	busy = c->waiters.head != NULL;
	urt__spin_unlock(&c->lock);
	if (busy)
		return -EBUSY;
	free(c);
	return 0;
}

/*
 * The waiter is linked before the mutex is released, so a signal sent by
 * anyone who takes the mutex after us finds it: no lost signal. The mutex
 * is always reacquired, even on timeout or cancel.
 */
static int cond_wait(struct urt_cond *c, struct urt_mutex *m, int64_t timeout_ns)
{
	struct urt_waiter w;
	uint64_t me;
	int r;

	if (!c || !m)
		return -EINVAL;
	r = urt__may_wait();
	if (r)
		return r;
	me = self_id();
	if (atomic_load_explicit(&m->owner, memory_order_relaxed) != me)
		return -EPERM;
	urt__waiter_init(&w);
	urt__spin_lock(&c->lock);
	urt__wlist_push(&c->waiters, &w);
	urt__spin_unlock(&c->lock);
	mutex_unlock(m, me);

	r = urt__waiter_wait(&w, urt__deadline(timeout_ns));
	if (r)
		r = give_up(&c->lock, &c->waiters, &w, r);

	if (!mutex_fast(m, me))
		mutex_lock_slow(m, me, URT_FOREVER, true);
	return r;
}

int urt_cond_wait(urt_cond *c, urt_mutex *m)
{
	return cond_wait(c, m, URT_FOREVER);
}

int urt_cond_wait_timeout(urt_cond *c, urt_mutex *m, int64_t timeout_ns)
{
	return cond_wait(c, m, timeout_ns);
}

int urt_cond_signal(urt_cond *c)
{
	struct urt_waiter *w;

	if (!c)
		return -EINVAL;
	urt__spin_lock(&c->lock);
	w = urt__wlist_pop(&c->waiters);
	urt__spin_unlock(&c->lock);
	if (w)
		urt__waiter_notify(w);
	return 0;
}

int urt_cond_broadcast(urt_cond *c)
{
	struct urt_waiter *chain;

	if (!c)
		return -EINVAL;
	urt__spin_lock(&c->lock);
	chain = pop_all(&c->waiters, NULL);
	urt__spin_unlock(&c->lock);
	notify_chain(chain);
	return 0;
}

/* ------------------------------------------------------------ semaphore */

/* Invariant (under lock): waiters non-empty => count == 0. */
struct urt_sem {
	urt_spin lock;
	unsigned int count;
	struct urt_wlist waiters;
};

urt_sem *urt_sem_create(unsigned int value)
{
	struct urt_sem *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->lock = (urt_spin)URT_SPIN_INIT;
	s->count = value;
	return s;
}

int urt_sem_destroy(urt_sem *s)
{
	bool busy;

	if (!s)
		return -EINVAL;
	urt__spin_lock(&s->lock);
	busy = s->waiters.head != NULL;
	urt__spin_unlock(&s->lock);
	if (busy)
		return -EBUSY;
	free(s);
	return 0;
}

static int sem_acquire(struct urt_sem *s, int64_t timeout_ns)
{
	struct urt_waiter w;
	int r;

	if (!s)
		return -EINVAL;
	if (timeout_ns > 0) {
		r = urt__may_wait();
		if (r)
			return r;
	}
	urt__spin_lock(&s->lock);
	if (s->count) {
		s->count--;
		urt__spin_unlock(&s->lock);
		return 0;
	}
	if (timeout_ns <= 0) {
		urt__spin_unlock(&s->lock);
		return -ETIMEDOUT;
	}
	urt__waiter_init(&w);
	urt__wlist_push(&s->waiters, &w);
	urt__spin_unlock(&s->lock);
	r = urt__waiter_wait(&w, urt__deadline(timeout_ns));
	if (r)
		r = give_up(&s->lock, &s->waiters, &w, r);
	return r;
}

int urt_sem_acquire(urt_sem *s)
{
	return sem_acquire(s, URT_FOREVER);
}

int urt_sem_acquire_timeout(urt_sem *s, int64_t timeout_ns)
{
	return sem_acquire(s, timeout_ns);
}

int urt_sem_try_acquire(urt_sem *s)
{
	int r = -EAGAIN;

	if (!s)
		return -EINVAL;
	urt__spin_lock(&s->lock);
	if (s->count) {
		s->count--;
		r = 0;
	}
	urt__spin_unlock(&s->lock);
	return r;
}

int urt_sem_release(urt_sem *s)
{
	struct urt_waiter *w;

	if (!s)
		return -EINVAL;
	urt__spin_lock(&s->lock);
	w = urt__wlist_pop(&s->waiters);
	if (!w) {
		if (s->count == UINT_MAX) {
			urt__spin_unlock(&s->lock);
			return -EOVERFLOW;
		}
		s->count++;
	}
	urt__spin_unlock(&s->lock);
	if (w)
		urt__waiter_notify(w);	/* the permit goes straight to w */
	return 0;
}

/* ------------------------------------------------------------ wait group */

struct urt_wg {
	urt_spin lock;
	long long count;
	struct urt_wlist waiters;	/* non-empty only while count > 0 */
};

urt_wg *urt_wg_create(void)
{
	struct urt_wg *wg = calloc(1, sizeof(*wg));

	if (wg)
		wg->lock = (urt_spin)URT_SPIN_INIT;
	return wg;
}

int urt_wg_destroy(urt_wg *wg)
{
	bool busy;

	if (!wg)
		return -EINVAL;
	urt__spin_lock(&wg->lock);
	busy = wg->waiters.head != NULL;
	urt__spin_unlock(&wg->lock);
	if (busy)
		return -EBUSY;
	free(wg);
	return 0;
}

int urt_wg_add(urt_wg *wg, int delta)
{
	struct urt_waiter *chain = NULL;
	long long n;

	if (!wg)
		return -EINVAL;
	urt__spin_lock(&wg->lock);
	n = wg->count + delta;
	if (n < 0 || n > INT_MAX) {
		urt__spin_unlock(&wg->lock);
		return n < 0 ? -EINVAL : -EOVERFLOW;
	}
	wg->count = n;
	if (!n)
		chain = pop_all(&wg->waiters, NULL);
	urt__spin_unlock(&wg->lock);
	notify_chain(chain);
	return 0;
}

int urt_wg_done(urt_wg *wg)
{
	return urt_wg_add(wg, -1);
}

static int wg_wait(struct urt_wg *wg, int64_t timeout_ns)
{
	struct urt_waiter w;
	int r;

	if (!wg)
		return -EINVAL;
	if (timeout_ns > 0) {
		r = urt__may_wait();
		if (r)
			return r;
	}
	urt__spin_lock(&wg->lock);
	if (!wg->count) {
		urt__spin_unlock(&wg->lock);
		return 0;
	}
	if (timeout_ns <= 0) {
		urt__spin_unlock(&wg->lock);
		return -ETIMEDOUT;
	}
	urt__waiter_init(&w);
	urt__wlist_push(&wg->waiters, &w);
	urt__spin_unlock(&wg->lock);
	r = urt__waiter_wait(&w, urt__deadline(timeout_ns));
	if (r)
		r = give_up(&wg->lock, &wg->waiters, &w, r);
	return r;
}

int urt_wg_wait(urt_wg *wg)
{
	return wg_wait(wg, URT_FOREVER);
}

int urt_wg_wait_timeout(urt_wg *wg, int64_t timeout_ns)
{
	return wg_wait(wg, timeout_ns);
}

/* ------------------------------------------------------------ oneshot */

/*
 * Once sent, the value stays: every receive (also a second one, or several
 * concurrent receivers) gets it.
 *
 * `sent` goes false -> true once, under the lock, with a release store
 * after `value` is written; `value` never changes after that. So a
 * receive that finds `sent` set (acquire) reads `value` without the lock:
 * the common "sent before received" case costs no RMW.
 */
struct urt_oneshot {
	urt_spin lock;
	atomic_bool sent;
	void *value;
	struct urt_wlist waiters;
};

urt_oneshot *urt_oneshot_create(void)
{
	/*
	 * malloc, not calloc: glibc's calloc skips the thread cache, and with
	 * free() filling that cache a create/destroy cycle paid a trip through
	 * the bins each time (~150 instructions more per object).
	 */
	struct urt_oneshot *o = malloc(sizeof(*o));

	if (o) {
		o->lock = (urt_spin)URT_SPIN_INIT;
		atomic_init(&o->sent, false);
		o->value = NULL;
		o->waiters.head = o->waiters.tail = NULL;
	}
	return o;
}

/*
 * Destroy may not race with other calls on o (one that lost the race
 * would use freed memory, lock or no lock); -EBUSY reports receivers still
 * waiting. So no lock is taken: the acquire load of the lock word reads
 * the release of the last unlock and orders every earlier locked access
 * to o before the free (lock-free receives only read, and the caller
 * ordered them before this call). A lock word still held means a call is
 * in progress -- e.g. a sender between publishing `sent` and its unlock:
 * take the lock, as before, and report what it left.
 */
int urt_oneshot_destroy(urt_oneshot *o)
{
	bool busy;

	if (!o)
		return -EINVAL;
	if (likely(!atomic_load_explicit(&o->lock.v, memory_order_acquire))) {
		busy = o->waiters.head != NULL;
	} else {
		urt__spin_lock(&o->lock);
		busy = o->waiters.head != NULL;
		urt__spin_unlock(&o->lock);
	}
	if (busy)
		return -EBUSY;
	free(o);
	return 0;
}

int urt_oneshot_send(urt_oneshot *o, void *value)
{
	struct urt_waiter *chain;

	if (!o)
		return -EINVAL;
	urt__spin_lock(&o->lock);
	if (atomic_load_explicit(&o->sent, memory_order_relaxed)) {
		urt__spin_unlock(&o->lock);
		return -EALREADY;
	}
	o->value = value;
	atomic_store_explicit(&o->sent, true, memory_order_release);
	chain = pop_all(&o->waiters, value);
	urt__spin_unlock(&o->lock);
	notify_chain(chain);
	return 0;
}

static int oneshot_recv(struct urt_oneshot *o, void **value, int64_t timeout_ns)
{
	struct urt_waiter w;
	int r;

	if (!o)
		return -EINVAL;
	if (timeout_ns > 0) {
		r = urt__may_wait();
		if (r)
			return r;
	}
	if (atomic_load_explicit(&o->sent, memory_order_acquire)) {
		if (value)
			*value = o->value;
		return 0;
	}
	urt__spin_lock(&o->lock);
	if (atomic_load_explicit(&o->sent, memory_order_relaxed)) {
		if (value)
			*value = o->value;
		urt__spin_unlock(&o->lock);
		return 0;
	}
	if (timeout_ns <= 0) {
		urt__spin_unlock(&o->lock);
		return -ETIMEDOUT;
	}
	urt__waiter_init(&w);
	urt__wlist_push(&o->waiters, &w);
	urt__spin_unlock(&o->lock);
	r = urt__waiter_wait(&w, urt__deadline(timeout_ns));
	if (r)
		r = give_up(&o->lock, &o->waiters, &w, r);
	if (!r && value)
		*value = w.value;
	return r;
}

int urt_oneshot_recv(urt_oneshot *o, void **value)
{
	return oneshot_recv(o, value, URT_FOREVER);
}

int urt_oneshot_recv_timeout(urt_oneshot *o, void **value, int64_t timeout_ns)
{
	return oneshot_recv(o, value, timeout_ns);
}
