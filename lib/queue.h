/* SPDX-License-Identifier: MIT */
/*
 * queue.h - run queues.
 *
 * urt_lqueue: a slot's local queue, a fixed ring of URT_LQ_SIZE task
 * pointers (the design of tokio's multi-threaded scheduler). The owner
 * pushes at the tail and pops at the head; stealers take half from the
 * head. head packs two 32-bit indices: "real" (next task to pop) and
 * "steal" (start of a steal in progress; == real when none). A stealer
 * first moves real forward (claiming the range), copies the tasks, then
 * sets steal = real. While steal != real the owner must not reuse the
 * claimed entries, so a full ring with a steal in flight sends new tasks
 * to the injection queue instead.
 *
 * urt_inject: the runtime-wide injection queue, a linked list under a
 * spinlock, for spawns from outside workers, ring overflow and tasks whose
 * slot went away. Its length is read without the lock to skip it cheaply.
 */
#ifndef URT_QUEUE_H
#define URT_QUEUE_H

#include "internal.h"

#define URT_LQ_SIZE 256u
#define URT_LQ_MASK (URT_LQ_SIZE - 1)

struct urt_lqueue {
	_Alignas(CACHELINE) atomic_uint_fast64_t head;	/* steal << 32 | real */
	_Alignas(CACHELINE) atomic_uint tail;
	_Atomic(struct urt_task *) buf[URT_LQ_SIZE];
};

struct urt_inject {
	urt_spin lock;
	struct urt_task *head, *tail;
	atomic_size_t len;
};

void urt__lq_init(struct urt_lqueue *q) URT_HIDDEN;
/* Owner: push at the tail; on overflow moves half the ring and t to inj. */
void urt__lq_push(struct urt_lqueue *q, struct urt_task *t, struct urt_inject *inj) URT_HIDDEN;
/* Owner: pop from the head. */
struct urt_task *urt__lq_pop(struct urt_lqueue *q) URT_HIDDEN;
/* Any thread: steal half of src into dst (owned by the caller); returns one to run. */
struct urt_task *urt__lq_steal(struct urt_lqueue *src, struct urt_lqueue *dst) URT_HIDDEN;
uint32_t urt__lq_len(struct urt_lqueue *q) URT_HIDDEN;

void urt__inject_push(struct urt_inject *inj, struct urt_task *t) URT_HIDDEN;
/* Pushes a linked list first..last of n tasks. */
void urt__inject_push_batch(struct urt_inject *inj, struct urt_task *first,
			    struct urt_task *last, size_t n) URT_HIDDEN;
struct urt_task *urt__inject_pop(struct urt_inject *inj) URT_HIDDEN;
/* Owner of q: pops up to max tasks, returns the first and moves the rest
 * to the tail of q (which must have room for max - 1). */
struct urt_task *urt__inject_pop_batch(struct urt_inject *inj, struct urt_lqueue *q,
				       unsigned int max) URT_HIDDEN;
static inline bool urt__inject_empty(struct urt_inject *inj)
{
	return atomic_load_explicit(&inj->len, memory_order_acquire) == 0;
}

#endif
