// SPDX-License-Identifier: MIT
/*
 * chan.c - channels (urt_chan_*) and urt_select.
 *
 * A channel is a ring buffer of fixed-size elements under one spinlock,
 * plus four wait queues:
 *
 *   recvq, sendq    struct urt_waiter of fibers, foreign threads and
 *                   select cases ("data waiters"): the other side hands
 *                   the element over directly (copies into / out of the
 *                   waiter's buffer) and then notifies it.
 *   precvq, psendq  poll-task registrations (struct pnode, one per task
 *                   and direction): wake-only, the task retries when polled.
 *                   A hash table keyed by (task, direction) finds a task's
 *                   registration in O(1) (tens of thousands of poll tasks
 *                   may wait on one channel).
 *
 * Invariants, under ch->lock:
 *   I1  recvq non-empty  =>  len == 0 and !closed
 *       A data receiver links itself only when the ring is empty, and a
 *       sender gives its element to a linked receiver before it would
 *       ever buffer it. So a direct hand-off never overtakes a buffered
 *       element: receives complete in send order (FIFO).
 *   I2  sendq non-empty  =>  len == cap (bounded) and !closed
 *       A data sender links itself only when the ring is full, and a
 *       receiver that frees a slot refills it from the first sender.
 *   I3  a poll registration exists only while its task last saw the
 *       operation fail; each element buffered (slot freed) wakes at most
 *       one live poll task of the other side ("a token"), and every
 *       success chains the wake-up on if more work remains (a sender
 *       that hands its element straight to a waiting receiver leaves
 *       the free slot it may have been woken for, so it passes the
 *       token to the next poll sender), so a token
 *       dropped by a task that never polls again stalls the other poll
 *       tasks only until the channel's next operation.
 *   I4  close wakes every waiter; nobody links after close.
 *
 * Select: one primary waiter (what the selecting fiber sleeps on) and one
 * list node per case, all on the selecting fiber's stack. A node links
 * into a channel like any data waiter; the notifier that pops it must
 * first win the select's claim word (CAS from SEL_WAITING to the case
 * index) before it performs the operation on the node, otherwise it
 * drops the node and serves the next waiter. The selecting fiber claims
 * the word itself to give up (timeout/cancel) or to perform a case it
 * found ready while registering. Exactly one claim succeeds, so exactly
 * one case is performed.
 *
 * Locking: one channel lock at a time, never held across a wait, an
 * allocation or a wake-up (notifications are collected and done after
 * the unlock).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define UNBOUNDED_MIN_SLOTS	8

/* A poll task's registration on one queue. Holds a task reference. */
struct pnode {
	struct pnode *next, *prev;
	struct pnode *hnext;	/* hash bucket chain (struct urt_chan.ptab) */
	struct urt_task *task;
	bool send;
};

struct plist {
	struct pnode *head, *tail;
};

struct urt_chan {
	urt_spin lock;
	bool closed;
	size_t esz;		/* element size */
	size_t cap;		/* 0: unbounded */
	size_t size;		/* slots in buf (== cap when bounded) */
	size_t head;		/* slot of the oldest element */
	size_t len;		/* elements in buf */
	char *buf;
	struct urt_wlist recvq, sendq;
	struct plist precvq, psendq;
	/* Every linked pnode of both queues, by (task, send); a power of two
	 * buckets, at least npreg of them (load factor <= 1), or none. */
	struct pnode **ptab;
	size_t ptab_size, npreg;
};

/* Select claim word values; >= 0 is the index of the winning case. */
enum { SEL_WAITING = -1, SEL_GAVE_UP = -2, SEL_CLOSED = -3 };

struct sel {
	atomic_int state;
	/* nodes linked on open channels, +1 while still registering */
	atomic_uint open;
	struct urt_waiter primary;
};

/* What to wake once the lock is dropped. */
struct wake {
	struct urt_waiter *w;	/* a data waiter that was served */
	struct pnode *p;	/* popped poll registrations (singly linked) */
};

/* ------------------------------------------------------------ helpers */

static inline void cp(const struct urt_chan *ch, void *dst, const void *src)
{
	if (ch->esz)
		memcpy(dst, src, ch->esz);
}

static inline char *slot_at(const struct urt_chan *ch, size_t i)
{
	return ch->buf + i * ch->esz;
}

static inline bool has_room(const struct urt_chan *ch)
{
	return ch->len < ch->size;
}

static void ring_push(struct urt_chan *ch, const void *e)
{
	size_t t = ch->head + ch->len;

	if (t >= ch->size)
		t -= ch->size;
	cp(ch, slot_at(ch, t), e);
	ch->len++;
}

static void ring_pop(struct urt_chan *ch, void *e)
{
	cp(ch, e, slot_at(ch, ch->head));
	if (++ch->head == ch->size)
		ch->head = 0;
	ch->len--;
}

/*
 * Doubles an unbounded channel's ring. Called and returns with ch->lock
 * held, but drops it around malloc/free: callers re-check everything.
 */
static int grow(struct urt_chan *ch)
{
	size_t old_size = ch->size, nsize = old_size * 2, first;
	char *nb, *old;

	if (nsize < old_size || (ch->esz && nsize > SIZE_MAX / ch->esz))
		return -ENOMEM;
	urt__spin_unlock(&ch->lock);
	nb = malloc(ch->esz ? nsize * ch->esz : 1);
	urt__spin_lock(&ch->lock);
	if (!nb)
		return -ENOMEM;
	if (ch->size != old_size || ch->len < ch->size) {
		/* someone else grew it, or it drained meanwhile */
		old = nb;
	} else {
		first = ch->size - ch->head;
		if (first > ch->len)
			first = ch->len;
		if (ch->esz) {
			memcpy(nb, slot_at(ch, ch->head), first * ch->esz);
			memcpy(nb + first * ch->esz, ch->buf, (ch->len - first) * ch->esz);
		}
		old = ch->buf;
		ch->buf = nb;
		ch->head = 0;
		ch->size = nsize;
	}
	urt__spin_unlock(&ch->lock);
	free(old);
	urt__spin_lock(&ch->lock);
	return 0;
}

/* -------------------------------------------------- poll registrations */

static void plist_push(struct plist *l, struct pnode *n)
{
	n->next = NULL;
	n->prev = l->tail;
	if (l->tail)
		l->tail->next = n;
	else
		l->head = n;
	l->tail = n;
}

static void plist_unlink(struct plist *l, struct pnode *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		l->head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		l->tail = n->prev;
	n->next = n->prev = NULL;
}

static inline size_t preg_hash(const struct urt_chan *ch, const struct urt_task *t, bool send)
{
	uint64_t k = ((uint64_t)(uintptr_t)t >> 4) ^ send;

	return (size_t)((k * 0x9e3779b97f4a7c15ull) >> 32) & (ch->ptab_size - 1);
}

static struct pnode *preg_find(const struct urt_chan *ch, const struct urt_task *t, bool send)
{
	struct pnode *n;

	if (!ch->npreg)
		return NULL;
	for (n = ch->ptab[preg_hash(ch, t, send)]; n; n = n->hnext)
		if (n->task == t && n->send == send)
			return n;
	return NULL;
}

/* Links n into its queue and the table, which has room (preg_room). */
static void preg_add(struct urt_chan *ch, struct pnode *n)
{
	struct pnode **b = &ch->ptab[preg_hash(ch, n->task, n->send)];

	plist_push(n->send ? &ch->psendq : &ch->precvq, n);
	n->hnext = *b;
	*b = n;
	ch->npreg++;
}

/* Unlinks n from its queue and the table. */
static void preg_del(struct urt_chan *ch, struct pnode *n)
{
	struct pnode **b = &ch->ptab[preg_hash(ch, n->task, n->send)];

	while (*b != n)
		b = &(*b)->hnext;
	*b = n->hnext;
	plist_unlink(n->send ? &ch->psendq : &ch->precvq, n);
	ch->npreg--;
}

/* Table size needed for one more registration; 0 if the table has room. */
static size_t preg_room(const struct urt_chan *ch)
{
	if (ch->npreg < ch->ptab_size)
		return 0;
	return ch->ptab_size ? ch->ptab_size * 2 : 16;
}

/* Moves every registration into tab (size buckets, zeroed); returns the old table. */
static struct pnode **preg_rehash(struct urt_chan *ch, struct pnode **tab, size_t size)
{
	struct pnode **old = ch->ptab, *n, *next;
	size_t old_size = ch->ptab_size;

	ch->ptab = tab;
	ch->ptab_size = size;
	for (size_t i = 0; i < old_size; i++) {
		for (n = old[i]; n; n = next) {
			size_t h = preg_hash(ch, n->task, n->send);

			next = n->hnext;
			n->hnext = tab[h];
			tab[h] = n;
		}
	}
	return old;
}

/*
 * Hands one wake-up token to the first poll task of l that can still use
 * it; registrations of tasks that already completed are dropped on the way.
 */
static void ppop_one(struct urt_chan *ch, struct plist *l, struct wake *wk)
{
	struct pnode *n;

	while ((n = l->head)) {
		preg_del(ch, n);
		n->next = wk->p;
		wk->p = n;
		if (!(atomic_load_explicit(&n->task->state, memory_order_acquire) &
		      TS_COMPLETE))
			return;
	}
}

static void ppop_all(struct urt_chan *ch, struct plist *l, struct wake *wk)
{
	struct pnode *n;

	while ((n = l->head)) {
		preg_del(ch, n);
		n->next = wk->p;
		wk->p = n;
	}
}

static void pnode_free(struct pnode *n)
{
	urt__task_unref(n->task);
	free(n);
}

/* Runs after the unlock: the served waiter's notify is our last touch of it. */
static void flush(struct wake *wk)
{
	struct pnode *n;

	if (wk->w) {
		urt__waiter_notify(wk->w);
		wk->w = NULL;
	}
	while ((n = wk->p)) {
		wk->p = n->next;
		urt__task_wake(n->task);	/* ignored if it completed */
		pnode_free(n);
	}
}

/* ------------------------------------------------------------ select */

/*
 * Returns the waiter to notify for a data waiter popped from a queue: w
 * itself, or for a select node its primary once the select is won for
 * this case; NULL if the select was already decided (drop the node).
 */
static struct urt_waiter *claim(struct urt_waiter *w)
{
	struct sel *s = w->user;
	int exp = SEL_WAITING;

	if (!s)
		return w;
	if (!atomic_compare_exchange_strong_explicit(&s->state, &exp, w->result,
						     memory_order_acq_rel,
						     memory_order_acquire))
		return NULL;
	return &s->primary;
}

/* ------------------------------------------------- core operations */

/*
 * Sends e without waiting. ch->lock is held (and may be dropped and
 * retaken to grow an unbounded ring). Returns 0, -EPIPE (closed),
 * -EAGAIN (full) or -ENOMEM.
 */
static int send_locked(struct urt_chan *ch, const void *e, struct wake *wk)
{
	struct urt_waiter *w, *t;
	int r;

again:
	if (ch->closed)
		return -EPIPE;
	while ((w = urt__wlist_pop(&ch->recvq))) {
		t = claim(w);
		if (!t)
			continue;
		/* I1: the ring is empty, so handing e over keeps FIFO order */
		cp(ch, w->value, e);
		t->result = 0;
		wk->w = t;
		/*
		 * The ring's free slot is still free: if a poll sender woke us
		 * for it (I3), its token is unused; pass it on, or the poll
		 * senders left would wait for a slot that never frees again.
		 */
		if (ch->psendq.head)
			ppop_one(ch, &ch->psendq, wk);
		return 0;
	}
	if (!has_room(ch)) {
		if (ch->cap)
			return -EAGAIN;
		r = grow(ch);
		if (r)
			return r;
		goto again;
	}
	ring_push(ch, e);
	ppop_one(ch, &ch->precvq, wk);
	if (has_room(ch) && ch->psendq.head)
		ppop_one(ch, &ch->psendq, wk);	/* pass an unused token on */
	return 0;
}

/*
 * Receives into e without waiting; ch->lock is held. Returns 0, -EPIPE
 * (closed and drained) or -EAGAIN (empty).
 */
static int recv_locked(struct urt_chan *ch, void *e, struct wake *wk)
{
	struct urt_waiter *w, *t;

	if (!ch->len)
		return ch->closed ? -EPIPE : -EAGAIN;
	ring_pop(ch, e);
	while ((w = urt__wlist_pop(&ch->sendq))) {
		t = claim(w);
		if (!t)
			continue;
		/* I2: the ring was full; the first sender takes the freed slot */
		ring_push(ch, w->value);
		t->result = 0;
		wk->w = t;
		break;
	}
	if (!wk->w && ch->psendq.head)
		ppop_one(ch, &ch->psendq, wk);
	if (ch->len && ch->precvq.head)
		ppop_one(ch, &ch->precvq, wk);	/* pass an unused token on */
	return 0;
}

/*
 * After a wait on w in queue q gave up (r != 0): either we unlink
 * ourselves and report r, or a notifier already took us off the queue and
 * has handed us a result, which wins (nothing is lost or duplicated).
 */
static int wait_data(struct urt_chan *ch, struct urt_wlist *q,
		     struct urt_waiter *w, int64_t deadline)
{
	int r = urt__waiter_wait(w, deadline);

	if (r) {
		urt__spin_lock(&ch->lock);
		if (urt__wlist_linked(q, w)) {
			urt__wlist_remove(q, w);
			urt__spin_unlock(&ch->lock);
			return r;
		}
		urt__spin_unlock(&ch->lock);
		urt__waiter_wait_notified(w);
	}
	return w->result;
}

static inline bool bad_elem(const struct urt_chan *ch, const void *e)
{
	return !e && ch->esz;
}

static int chan_send(urt_chan *ch, const void *e, int64_t timeout_ns)
{
	struct wake wk = { 0 };
	struct urt_waiter w;
	int r;

	if (!ch || bad_elem(ch, e))
		return -EINVAL;
	if (timeout_ns > 0) {
		r = urt__may_wait();
		if (r)
			return r;
	}
	urt__spin_lock(&ch->lock);
	r = send_locked(ch, e, &wk);
	if (likely(r != -EAGAIN) || timeout_ns <= 0) {
		urt__spin_unlock(&ch->lock);
		flush(&wk);
		return r == -EAGAIN ? -ETIMEDOUT : r;
	}
	urt__waiter_init(&w);
	w.user = NULL;
	w.value = (void *)e;
	w.result = -EIO;
	urt__wlist_push(&ch->sendq, &w);
	urt__spin_unlock(&ch->lock);
	flush(&wk);
	return wait_data(ch, &ch->sendq, &w, urt__deadline(timeout_ns));
}

static int chan_recv(urt_chan *ch, void *e, int64_t timeout_ns)
{
	struct wake wk = { 0 };
	struct urt_waiter w;
	int r;

	if (!ch || bad_elem(ch, e))
		return -EINVAL;
	if (timeout_ns > 0) {
		r = urt__may_wait();
		if (r)
			return r;
	}
	urt__spin_lock(&ch->lock);
	r = recv_locked(ch, e, &wk);
	if (likely(r != -EAGAIN) || timeout_ns <= 0) {
		urt__spin_unlock(&ch->lock);
		flush(&wk);
		return r == -EAGAIN ? -ETIMEDOUT : r;
	}
	urt__waiter_init(&w);
	w.user = NULL;
	w.value = e;
	w.result = -EIO;
	urt__wlist_push(&ch->recvq, &w);
	urt__spin_unlock(&ch->lock);
	return wait_data(ch, &ch->recvq, &w, urt__deadline(timeout_ns));
}

/* ------------------------------------------------------------ public */

urt_chan *urt_chan_create(size_t elem_size, size_t capacity)
{
	size_t slots = capacity ? capacity : UNBOUNDED_MIN_SLOTS;
	struct urt_chan *ch;

	if (elem_size && slots > SIZE_MAX / elem_size) {
		errno = EINVAL;
		return NULL;
	}
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return NULL;
	ch->buf = malloc(elem_size ? slots * elem_size : 1);
	if (!ch->buf) {
		free(ch);
		errno = ENOMEM;
		return NULL;
	}
	ch->lock = (urt_spin)URT_SPIN_INIT;
	ch->esz = elem_size;
	ch->cap = capacity;
	ch->size = slots;
	return ch;
}

int urt_chan_close(urt_chan *ch)
{
	struct urt_waiter *w, *t, *todo = NULL;
	struct wake wk = { 0 };
	struct urt_wlist *qs[2];
	struct sel *s;
	int exp, i;

	if (!ch)
		return -EINVAL;
	urt__spin_lock(&ch->lock);
	if (ch->closed) {
		urt__spin_unlock(&ch->lock);
		return -EALREADY;
	}
	ch->closed = true;
	qs[0] = &ch->recvq;
	qs[1] = &ch->sendq;
	for (i = 0; i < 2; i++) {
		while ((w = urt__wlist_pop(qs[i]))) {
			s = w->user;
			if (s) {
				/* A select gives up only once all its channels closed. */
				if (atomic_fetch_sub_explicit(&s->open, 1,
							      memory_order_acq_rel) != 1)
					continue;
				exp = SEL_WAITING;
				if (!atomic_compare_exchange_strong_explicit(
					    &s->state, &exp, SEL_CLOSED,
					    memory_order_acq_rel, memory_order_acquire))
					continue;
				t = &s->primary;
			} else {
				t = w;
			}
			t->result = -EPIPE;
			/* ->value is free now (nothing to copy): chain through it,
			 * never through next/prev, which say "linked" */
			t->value = todo;
			todo = t;
		}
	}
	ppop_all(ch, &ch->precvq, &wk);
	ppop_all(ch, &ch->psendq, &wk);
	urt__spin_unlock(&ch->lock);
	while ((w = todo)) {
		todo = w->value;
		urt__waiter_notify(w);
	}
	flush(&wk);
	return 0;
}

int urt_chan_destroy(urt_chan *ch)
{
	struct plist *ls[2];
	struct pnode *n, *next;
	int i;

	if (!ch)
		return -EINVAL;
	urt__spin_lock(&ch->lock);
	if (ch->recvq.head || ch->sendq.head)
		goto busy;
	/* Registrations of finished poll tasks are stale; live ones still wait. */
	ls[0] = &ch->precvq;
	ls[1] = &ch->psendq;
	for (i = 0; i < 2; i++)
		for (n = ls[i]->head; n; n = n->next)
			if (!(atomic_load_explicit(&n->task->state, memory_order_acquire) &
			      TS_COMPLETE))
				goto busy;
	urt__spin_unlock(&ch->lock);
	for (i = 0; i < 2; i++) {
		for (n = ls[i]->head; n; n = next) {
			next = n->next;
			pnode_free(n);
		}
	}
	free(ch->ptab);
	free(ch->buf);
	free(ch);
	return 0;
busy:
	urt__spin_unlock(&ch->lock);
	return -EBUSY;
}

int urt_chan_send(urt_chan *ch, const void *elem)
{
	return chan_send(ch, elem, URT_FOREVER);
}

int urt_chan_recv(urt_chan *ch, void *elem)
{
	return chan_recv(ch, elem, URT_FOREVER);
}

int urt_chan_send_timeout(urt_chan *ch, const void *elem, int64_t timeout_ns)
{
	return chan_send(ch, elem, timeout_ns);
}

int urt_chan_recv_timeout(urt_chan *ch, void *elem, int64_t timeout_ns)
{
	return chan_recv(ch, elem, timeout_ns);
}

int urt_chan_try_send(urt_chan *ch, const void *elem)
{
	struct wake wk = { 0 };
	int r;

	if (!ch || bad_elem(ch, elem))
		return -EINVAL;
	urt__spin_lock(&ch->lock);
	r = send_locked(ch, elem, &wk);
	urt__spin_unlock(&ch->lock);
	flush(&wk);
	return r;
}

int urt_chan_try_recv(urt_chan *ch, void *elem)
{
	struct wake wk = { 0 };
	int r;

	if (!ch || bad_elem(ch, elem))
		return -EINVAL;
	urt__spin_lock(&ch->lock);
	r = recv_locked(ch, elem, &wk);
	urt__spin_unlock(&ch->lock);
	flush(&wk);
	return r;
}

/*
 * Poll-task forms: try; on -EAGAIN make sure this task has exactly one
 * registration on the queue (allocated outside the lock, then retry), and
 * return URT_PENDING. A success or a final error removes a leftover
 * registration, so a task polled repeatedly never piles up nodes.
 */
static enum urt_poll chan_poll(urt_chan *ch, urt_cx *cx, void *elem,
			       int *err, bool send)
{
	struct pnode *fresh = NULL, *n, **tab = NULL;
	size_t tab_size = 0, want;
	struct wake wk = { 0 };
	struct urt_task *t;
	int r;

	if (!ch || !cx || bad_elem(ch, elem)) {
		if (err)
			*err = -EINVAL;
		return URT_READY;
	}
	t = urt__cx_task(cx);
	urt__spin_lock(&ch->lock);
again:
	r = send ? send_locked(ch, elem, &wk) : recv_locked(ch, elem, &wk);
	if (r == -EAGAIN && urt_cx_cancelled(cx))
		r = -ECANCELED;
	if (r != -EAGAIN) {
		n = preg_find(ch, t, send);
		if (n)
			preg_del(ch, n);
		urt__spin_unlock(&ch->lock);
		flush(&wk);
		if (n)
			pnode_free(n);
		goto out;
	}
	if (!preg_find(ch, t, send)) {
		want = preg_room(ch);
		if (!fresh || want > tab_size) {
			/* Allocate outside the lock, then look again. */
			urt__spin_unlock(&ch->lock);
			flush(&wk);
			if (!fresh) {
				fresh = malloc(sizeof(*fresh));
				if (!fresh) {
					r = -ENOMEM;
					goto out;
				}
				urt__task_ref(t);
				fresh->task = t;
				fresh->send = send;
			}
			if (want > tab_size) {
				free(tab);
				tab = calloc(want, sizeof(*tab));
				tab_size = want;
				if (!tab) {
					r = -ENOMEM;
					goto out;
				}
			}
			urt__spin_lock(&ch->lock);
			goto again;
		}
		if (want) {
			/* ours is big enough: swap it in, free the old one below */
			tab = preg_rehash(ch, tab, tab_size);
			tab_size = 0;
		}
		preg_add(ch, fresh);
		fresh = NULL;
	}
	urt__spin_unlock(&ch->lock);
	flush(&wk);
	free(tab);
	if (fresh)
		pnode_free(fresh);
	return URT_PENDING;
out:
	free(tab);
	if (fresh)
		pnode_free(fresh);
	if (err)
		*err = r;
	return URT_READY;
}

enum urt_poll urt_chan_poll_send(urt_chan *ch, urt_cx *cx, const void *elem, int *err)
{
	return chan_poll(ch, cx, (void *)elem, err, true);
}

enum urt_poll urt_chan_poll_recv(urt_chan *ch, urt_cx *cx, void *elem, int *err)
{
	return chan_poll(ch, cx, elem, err, false);
}

size_t urt_chan_len(const urt_chan *ch)
{
	struct urt_chan *c = (struct urt_chan *)ch;	/* the lock is not data */
	size_t n;

	if (!ch)
		return 0;
	urt__spin_lock(&c->lock);
	n = c->len;
	urt__spin_unlock(&c->lock);
	return n;
}

/* ------------------------------------------------------------ select */

static __thread uint32_t sel_rng;

static uint32_t sel_random(void)
{
	uint32_t x = sel_rng;

	if (!x)
		x = (uint32_t)(uintptr_t)&x ^ (uint32_t)urt_now() ^ 0x9e3779b9u;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	sel_rng = x ? x : 1;
	return x;
}

#define SEL_STACK_CASES 8

/*
 * Claims our own select with `why` (SEL_GAVE_UP, SEL_CLOSED). If a
 * notifier won first, waits for its notify (it may still be copying) and
 * returns the winning case index instead.
 */
static int sel_settle(struct sel *s, int why)
{
	int exp = SEL_WAITING;

	if (atomic_compare_exchange_strong_explicit(&s->state, &exp, why,
						    memory_order_acq_rel,
						    memory_order_acquire))
		return why;
	urt__waiter_wait_notified(&s->primary);
	return atomic_load_explicit(&s->state, memory_order_acquire);
}

/*
 * Registers case i of the select, or performs it if it is ready and we
 * win our own claim word. Returns 1 if performed, 0 if linked (or skipped:
 * channel closed), -1 if the select was already won by a notifier.
 * *err gets a hard error (-ENOMEM).
 */
static int sel_register(struct sel *s, struct urt_select_case *c, int i,
			struct urt_waiter *node, int *err)
{
	struct urt_chan *ch = c->ch;
	struct wake wk = { 0 };
	int exp = SEL_WAITING, r;

	urt__spin_lock(&ch->lock);
again:
	if (c->op == URT_SELECT_RECV) {
		if (ch->len)
			goto ready;
		if (ch->closed)
			goto skip;
	} else {
		if (ch->closed)
			goto skip;
		if (has_room(ch))
			goto ready;	/* (I1: waiting receivers imply room) */
		if (!ch->cap) {
			r = grow(ch);
			if (r) {
				*err = r;
				goto skip;
			}
			goto again;
		}
	}
	urt__waiter_init(node);
	node->user = s;
	node->result = i;
	node->value = c->elem;
	atomic_fetch_add_explicit(&s->open, 1, memory_order_relaxed);
	urt__wlist_push(c->op == URT_SELECT_RECV ? &ch->recvq : &ch->sendq, node);
	urt__spin_unlock(&ch->lock);
	return 0;
skip:
	urt__spin_unlock(&ch->lock);
	return 0;
ready:
	if (!atomic_compare_exchange_strong_explicit(&s->state, &exp, i,
						     memory_order_acq_rel,
						     memory_order_acquire)) {
		urt__spin_unlock(&ch->lock);
		return -1;
	}
	/* Under the same lock hold the op cannot fail now. */
	r = c->op == URT_SELECT_RECV ? recv_locked(ch, c->elem, &wk)
				     : send_locked(ch, c->elem, &wk);
	urt__spin_unlock(&ch->lock);
	flush(&wk);
	if (r)
		urt__die("select: ready case %d failed (%d)", i, r);
	return 1;
}

int urt_select(struct urt_select_case *cases, size_t n, int64_t timeout_ns)
{
	struct urt_waiter stack_nodes[SEL_STACK_CASES], *nodes;
	size_t k, i, start, nclosed = 0;
	struct wake wk = { 0 };
	int r, res, err = 0;
	struct sel s;

	if (!cases || !n || n > INT_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (!cases[i].ch || bad_elem(cases[i].ch, cases[i].elem) ||
		    (cases[i].op != URT_SELECT_RECV && cases[i].op != URT_SELECT_SEND))
			return -EINVAL;
	}
	if (timeout_ns > 0) {
		r = urt__may_wait();
		if (r)
			return r;
	}

	/* Pass 1: try each case once, from a random start (fairness). */
	start = n > 1 ? sel_random() % n : 0;
	for (k = 0; k < n; k++) {
		struct urt_select_case *c;

		i = start + k < n ? start + k : start + k - n;
		c = &cases[i];
		urt__spin_lock(&c->ch->lock);
		r = c->op == URT_SELECT_RECV ? recv_locked(c->ch, c->elem, &wk)
					     : send_locked(c->ch, c->elem, &wk);
		urt__spin_unlock(&c->ch->lock);
		flush(&wk);
		if (!r)
			return (int)i;
		if (r == -EPIPE)
			nclosed++;
		else if (r != -EAGAIN)
			return r;
	}
	if (nclosed == n)
		return -EPIPE;
	if (timeout_ns <= 0)
		return -ETIMEDOUT;

	/* Pass 2: link a node per case, unless one became ready meanwhile. */
	nodes = stack_nodes;
	if (n > SEL_STACK_CASES) {
		nodes = malloc(n * sizeof(*nodes));
		if (!nodes)
			return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		nodes[i].user = NULL;	/* "not linked by us" */
	atomic_init(&s.state, SEL_WAITING);
	atomic_init(&s.open, 1);
	urt__waiter_init(&s.primary);
	s.primary.user = NULL;
	s.primary.value = NULL;
	res = SEL_WAITING;
	for (k = 0; k < n; k++) {
		i = start + k < n ? start + k : start + k - n;
		r = sel_register(&s, &cases[i], (int)i, &nodes[i], &err);
		if (r > 0) {
			res = (int)i;		/* we performed it ourselves */
			break;
		}
		if (r < 0 || err)
			break;
	}
	if (res != SEL_WAITING) {
		/* done */
	} else if (r < 0) {
		/* A notifier won during registration; it notifies the primary. */
		urt__waiter_wait_notified(&s.primary);
		res = atomic_load_explicit(&s.state, memory_order_acquire);
	} else if (err) {
		res = sel_settle(&s, SEL_GAVE_UP);
		if (res == SEL_GAVE_UP)
			res = err;
	} else if (atomic_fetch_sub_explicit(&s.open, 1, memory_order_acq_rel) == 1) {
		/* Registration bias dropped and nothing left: all closed. */
		res = sel_settle(&s, SEL_CLOSED);
	} else {
		r = urt__waiter_wait(&s.primary, urt__deadline(timeout_ns));
		if (!r) {
			res = atomic_load_explicit(&s.state, memory_order_acquire);
		} else {
			res = sel_settle(&s, SEL_GAVE_UP);
			if (res == SEL_GAVE_UP)
				res = r;
		}
	}
	if (res == SEL_CLOSED)
		res = -EPIPE;
	/* Unlink what is still linked; a notifier that popped a node and lost
	 * the claim touched it only under that channel's lock. */
	for (i = 0; i < n; i++) {
		struct urt_chan *ch = cases[i].ch;
		struct urt_wlist *q;

		if (!nodes[i].user)
			continue;
		q = cases[i].op == URT_SELECT_RECV ? &ch->recvq : &ch->sendq;
		urt__spin_lock(&ch->lock);
		if (urt__wlist_linked(q, &nodes[i]))
			urt__wlist_remove(q, &nodes[i]);
		urt__spin_unlock(&ch->lock);
	}
	if (nodes != stack_nodes)
		free(nodes);
	return res;
}
