// SPDX-License-Identifier: MIT
/* Run queues: the per-slot stealable ring and the injection queue. See queue.h. */
#include "queue.h"

#define PACK(steal, real)	(((uint64_t)(uint32_t)(steal) << 32) | (uint32_t)(real))
#define STEAL(h)		((uint32_t)((h) >> 32))
#define REAL(h)			((uint32_t)(h))

void urt__lq_init(struct urt_lqueue *q)
{
	atomic_init(&q->head, 0);
	atomic_init(&q->tail, 0);
	for (unsigned int i = 0; i < URT_LQ_SIZE; i++)
		atomic_init(&q->buf[i], NULL);
}

uint32_t urt__lq_len(struct urt_lqueue *q)
{
	uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
	uint32_t t = atomic_load_explicit(&q->tail, memory_order_acquire);

	return t - STEAL(h);
}

/* Moves half of a full ring plus t to the injection queue, in order. */
static bool push_overflow(struct urt_lqueue *q, struct urt_task *t, uint32_t head,
			  uint32_t tail, struct urt_inject *inj)
{
	const uint32_t n = URT_LQ_SIZE / 2;
	uint64_t prev = PACK(head, head);
	struct urt_task *first, *last;

	(void)tail;
	/* Claim the oldest half; a concurrent stealer makes this fail. */
	if (!atomic_compare_exchange_strong_explicit(&q->head, &prev,
			PACK(head + n, head + n), memory_order_release, memory_order_relaxed))
		return false;
	first = last = atomic_load_explicit(&q->buf[head & URT_LQ_MASK], memory_order_relaxed);
	for (uint32_t i = 1; i < n; i++) {
		struct urt_task *x = atomic_load_explicit(&q->buf[(head + i) & URT_LQ_MASK],
							  memory_order_relaxed);
		last->next = x;
		last = x;
	}
	last->next = t;
	urt__inject_push_batch(inj, first, t, n + 1);
	return true;
}

void urt__lq_push(struct urt_lqueue *q, struct urt_task *t, struct urt_inject *inj)
{
	for (;;) {
		uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
		uint32_t steal = STEAL(h), real = REAL(h);
		uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);

		if (tail - steal < URT_LQ_SIZE) {
			atomic_store_explicit(&q->buf[tail & URT_LQ_MASK], t, memory_order_relaxed);
			atomic_store_explicit(&q->tail, tail + 1, memory_order_release);
			return;
		}
		if (steal != real) {
			/* A stealer is emptying the ring: it will have room soon,
			 * but the task must not wait for it. */
			urt__inject_push(inj, t);
			return;
		}
		if (push_overflow(q, t, real, tail, inj))
			return;
		/* lost a race with a stealer: the ring has room now */
	}
}

struct urt_task *urt__lq_pop(struct urt_lqueue *q)
{
	uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);

	for (;;) {
		uint32_t steal = STEAL(h), real = REAL(h);
		uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
		uint64_t next;

		if (real == tail)
			return NULL;
		next = steal == real ? PACK(real + 1, real + 1) : PACK(steal, real + 1);
		if (atomic_compare_exchange_weak_explicit(&q->head, &h, next,
				memory_order_acq_rel, memory_order_acquire))
			return atomic_load_explicit(&q->buf[real & URT_LQ_MASK], memory_order_relaxed);
	}
}

/* Claims and copies half of src into dst starting at dst_tail; returns the count. */
static uint32_t steal_into(struct urt_lqueue *src, struct urt_lqueue *dst, uint32_t dst_tail)
{
	uint64_t prev = atomic_load_explicit(&src->head, memory_order_acquire);
	uint64_t next;
	uint32_t n, first;

	for (;;) {
		uint32_t steal = STEAL(prev), real = REAL(prev);
		uint32_t src_tail = atomic_load_explicit(&src->tail, memory_order_acquire);

		if (steal != real)
			return 0;	/* another stealer is at work */
		n = src_tail - real;
		n -= n / 2;
		if (n == 0)
			return 0;
		next = PACK(steal, real + n);
		if (atomic_compare_exchange_weak_explicit(&src->head, &prev, next,
				memory_order_acq_rel, memory_order_acquire))
			break;
	}
	first = STEAL(next);
	for (uint32_t i = 0; i < n; i++) {
		struct urt_task *t = atomic_load_explicit(&src->buf[(first + i) & URT_LQ_MASK],
							  memory_order_relaxed);
		atomic_store_explicit(&dst->buf[(dst_tail + i) & URT_LQ_MASK], t,
				      memory_order_relaxed);
	}
	/* Release the claimed range: steal catches up with real. */
	prev = next;
	for (;;) {
		uint32_t real = REAL(prev);

		if (atomic_compare_exchange_weak_explicit(&src->head, &prev, PACK(real, real),
				memory_order_acq_rel, memory_order_acquire))
			return n;
	}
}

struct urt_task *urt__lq_steal(struct urt_lqueue *src, struct urt_lqueue *dst)
{
	uint32_t dst_tail = atomic_load_explicit(&dst->tail, memory_order_relaxed);
	uint64_t dh = atomic_load_explicit(&dst->head, memory_order_acquire);
	struct urt_task *ret;
	uint32_t n;

	/* Only steal into a queue with room for half of a full one. */
	if (dst_tail - STEAL(dh) > URT_LQ_SIZE / 2)
		return NULL;
	n = steal_into(src, dst, dst_tail);
	if (n == 0)
		return NULL;
	n--;
	ret = atomic_load_explicit(&dst->buf[(dst_tail + n) & URT_LQ_MASK], memory_order_relaxed);
	if (n)
		atomic_store_explicit(&dst->tail, dst_tail + n, memory_order_release);
	return ret;
}

void urt__inject_push_batch(struct urt_inject *inj, struct urt_task *first,
			    struct urt_task *last, size_t n)
{
	last->next = NULL;
	urt__spin_lock(&inj->lock);
	if (inj->tail)
		inj->tail->next = first;
	else
		inj->head = first;
	inj->tail = last;
	atomic_fetch_add_explicit(&inj->len, n, memory_order_release);
	urt__spin_unlock(&inj->lock);
}

void urt__inject_push(struct urt_inject *inj, struct urt_task *t)
{
	urt__inject_push_batch(inj, t, t, 1);
}

struct urt_task *urt__inject_pop_batch(struct urt_inject *inj, struct urt_lqueue *q,
				       unsigned int max)
{
	struct urt_task *first, *t;
	unsigned int n = 0;

	if (urt__inject_empty(inj))
		return NULL;
	urt__spin_lock(&inj->lock);
	first = inj->head;
	for (t = first; t && n < max; t = t->next)
		n++;
	if (first) {
		inj->head = t;
		if (!t)
			inj->tail = NULL;
		atomic_fetch_sub_explicit(&inj->len, n, memory_order_relaxed);
	}
	urt__spin_unlock(&inj->lock);
	if (!first)
		return NULL;
	/* The caller checked the ring has room for max - 1: no overflow. */
	for (t = first->next; --n; ) {
		struct urt_task *next = t->next;

		urt__lq_push(q, t, inj);
		t = next;
	}
	return first;
}

struct urt_task *urt__inject_pop(struct urt_inject *inj)
{
	struct urt_task *t;

	if (urt__inject_empty(inj))
		return NULL;
	urt__spin_lock(&inj->lock);
	t = inj->head;
	if (t) {
		inj->head = t->next;
		if (!inj->head)
			inj->tail = NULL;
		atomic_fetch_sub_explicit(&inj->len, 1, memory_order_relaxed);
	}
	urt__spin_unlock(&inj->lock);
	return t;
}
