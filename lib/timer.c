// SPDX-License-Identifier: MIT
/*
 * timer.c - the runtime's timer wheel.
 *
 * A hierarchical timing wheel (the kernel's and tokio's design): 6 levels
 * of 64 slots; a level-0 slot spans one tick of 2^16 ns (65.5 us), a slot
 * of level L spans 64^L ticks, so the wheel covers 2^36 ticks (~52 days);
 * later deadlines wrap around the top level and are re-filed when reached.
 * Arm and cancel are O(1); finding the next expiry is one rotate and one
 * count-trailing-zeros per level thanks to a 64-bit occupancy mask.
 *
 * A timer is filed at the level of the highest 6-bit digit in which its
 * expiry tick differs from `elapsed`; when that slot's start is reached its
 * timers cascade to lower levels, and a level-0 slot fires them all. Ticks
 * round up, so a timer never fires before its deadline.
 *
 * One lock guards the wheel: timers are armed by any thread, fired by the
 * thread that holds the driver or by a busy worker between tasks. Tasks are
 * woken after the lock is dropped. An armed timer holds a reference on its
 * task, so firing can never touch a task object that was reused.
 */
#include <stdlib.h>
#include <string.h>

#include "rt.h"

#define LVL_BITS	6
#define LVL_SIZE	64
#define LEVELS		6
#define TICK_SHIFT	16
#define MAX_TICKS	(1ULL << (LVL_BITS * LEVELS))
#define FIRE_BATCH	64

struct urt_wheel {
	urt_spin lock;
	uint64_t elapsed;			/* ticks processed */
	uint64_t occupied[LEVELS];
	struct urt_timer *slots[LEVELS][LVL_SIZE];
	atomic_int_fast64_t next_ns;		/* next expiry, for lock-free checks */
};

static uint64_t to_tick(int64_t ns)
{
	return ((uint64_t)ns + (1ULL << TICK_SHIFT) - 1) >> TICK_SHIFT;
}

static unsigned int level_for(uint64_t elapsed, uint64_t when)
{
	uint64_t masked = (elapsed ^ when) | (LVL_SIZE - 1);

	if (masked >= MAX_TICKS)
		masked = MAX_TICKS - 1;
	return (63 - __builtin_clzll(masked)) / LVL_BITS;
}

static void slot_link(struct urt_wheel *wh, struct urt_timer *t, uint64_t when)
{
	unsigned int level = level_for(wh->elapsed, when);
	unsigned int slot = (when >> (level * LVL_BITS)) & (LVL_SIZE - 1);
	struct urt_timer **head = &wh->slots[level][slot];

	t->level = level;
	t->slot = slot;
	t->prev = NULL;
	t->next = *head;
	if (*head)
		(*head)->prev = t;
	*head = t;
	wh->occupied[level] |= 1ULL << slot;
}

static void slot_unlink(struct urt_wheel *wh, struct urt_timer *t)
{
	struct urt_timer **head = &wh->slots[t->level][t->slot];

	if (t->prev)
		t->prev->next = t->next;
	else
		*head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	if (!*head)
		wh->occupied[t->level] &= ~(1ULL << t->slot);
	t->next = t->prev = NULL;
}

/* The start tick of the next occupied slot, and where it is; false if none. */
static bool next_expiry(struct urt_wheel *wh, uint64_t *deadline, unsigned int *lvl,
			unsigned int *slt)
{
	for (unsigned int level = 0; level < LEVELS; level++) {
		uint64_t occ = wh->occupied[level];
		uint64_t slot_range = 1ULL << (level * LVL_BITS);
		uint64_t level_range = slot_range << LVL_BITS;
		unsigned int now_slot, slot;
		uint64_t d;

		if (!occ)
			continue;
		now_slot = (wh->elapsed >> (level * LVL_BITS)) & (LVL_SIZE - 1);
		occ = (occ >> now_slot) | (now_slot ? occ << (64 - now_slot) : 0);
		slot = (__builtin_ctzll(occ) + now_slot) & (LVL_SIZE - 1);
		d = (wh->elapsed & ~(level_range - 1)) + slot * slot_range;
		/* Only the top level wraps: a slot "behind" is one turn ahead. */
		if (d <= wh->elapsed)
			d += level_range;
		*deadline = d;
		*lvl = level;
		*slt = slot;
		return true;
	}
	return false;
}

static void update_next(struct urt_wheel *wh)
{
	uint64_t d;
	unsigned int l, s;
	int64_t ns = URT_FOREVER;

	if (next_expiry(wh, &d, &l, &s) && d < (uint64_t)URT_FOREVER >> TICK_SHIFT)
		ns = (int64_t)(d << TICK_SHIFT);
	atomic_store_explicit(&wh->next_ns, ns, memory_order_release);
}

int urt__wheel_create(struct urt_rt *rt)
{
	struct urt_wheel *wh = calloc(1, sizeof(*wh));

	if (!wh)
		return -ENOMEM;
	wh->elapsed = to_tick(urt_now());
	atomic_init(&wh->next_ns, URT_FOREVER);
	rt->wheel = wh;
	return 0;
}

void urt__wheel_destroy(struct urt_rt *rt)
{
	free(rt->wheel);
	rt->wheel = NULL;
}

void urt__timer_arm(struct urt_rt *rt, struct urt_timer *t, struct urt_task *task,
		    int64_t deadline)
{
	struct urt_wheel *wh = rt->wheel;
	uint64_t when = to_tick(deadline);
	bool due, earlier;

	urt__task_ref(task);
	t->task = task;
	t->deadline = deadline;
	urt__spin_lock(&wh->lock);
	due = when <= wh->elapsed;
	if (!due) {
		slot_link(wh, t, when);
		t->armed = true;
	} else {
		t->armed = false;
	}
	earlier = !due && deadline < atomic_load_explicit(&wh->next_ns, memory_order_relaxed);
	if (earlier)
		update_next(wh);
	urt__spin_unlock(&wh->lock);

	if (due) {
		urt__task_wake(task);
		urt__task_unref(task);
		return;
	}
	/* The driver may be asleep until a later deadline: make it look again. */
	if (earlier && deadline < atomic_load_explicit(&rt->driver_until, memory_order_seq_cst))
		urt__driver_kick(rt);
}

bool urt__timer_cancel(struct urt_rt *rt, struct urt_timer *t)
{
	struct urt_wheel *wh = rt->wheel;
	bool was_armed;

	urt__spin_lock(&wh->lock);
	was_armed = t->armed;
	if (was_armed) {
		slot_unlink(wh, t);
		t->armed = false;
	}
	urt__spin_unlock(&wh->lock);
	if (was_armed)
		urt__task_unref(t->task);
	return was_armed;
}

int64_t urt__timers_next(struct urt_rt *rt)
{
	return atomic_load_explicit(&rt->wheel->next_ns, memory_order_acquire);
}

/* Appends to the fired list, growing it past the on-stack batch if a slot
 * holds more due timers than that (rare: then one allocation). */
static bool fired_push(struct urt_task ***fired, unsigned int *n, unsigned int *cap,
		       struct urt_task **local, struct urt_task *t)
{
	if (*n == *cap) {
		unsigned int ncap = *cap * 4;
		struct urt_task **m = malloc(ncap * sizeof(*m));

		if (!m)
			return false;
		memcpy(m, *fired, *n * sizeof(*m));
		if (*fired != local)
			free(*fired);
		*fired = m;
		*cap = ncap;
	}
	(*fired)[(*n)++] = t;
	return true;
}

int64_t urt__timers_run(struct urt_rt *rt, int64_t now)
{
	struct urt_wheel *wh = rt->wheel;
	uint64_t now_tick = (uint64_t)now >> TICK_SHIFT;
	struct urt_task *local[FIRE_BATCH], **fired = local;
	unsigned int nfired, cap = FIRE_BATCH;
	bool more, first = true;
	int64_t next;

	if (now < atomic_load_explicit(&wh->next_ns, memory_order_acquire))
		return atomic_load_explicit(&wh->next_ns, memory_order_relaxed);
	do {
		nfired = 0;
		more = false;
		urt__spin_lock(&wh->lock);
		for (;;) {
			uint64_t d;
			unsigned int level, slot;
			struct urt_timer *list;

			if (!next_expiry(wh, &d, &level, &slot) || d > now_tick)
				break;
			if (nfired >= FIRE_BATCH) {
				more = true;	/* wake these first, then come back */
				break;
			}
			/*
			 * A slot is always emptied whole: due timers fire, later
			 * ones cascade to a lower level. (A half-emptied current
			 * slot would look one full turn away to next_expiry.)
			 */
			list = wh->slots[level][slot];
			wh->slots[level][slot] = NULL;
			wh->occupied[level] &= ~(1ULL << slot);
			wh->elapsed = d;
			while (list) {
				struct urt_timer *t = list;
				uint64_t when = to_tick(t->deadline);

				list = t->next;
				t->next = t->prev = NULL;
				if (when <= wh->elapsed &&
				    fired_push(&fired, &nfired, &cap, local, t->task)) {
					t->armed = false; /* last touch of t: its owner may free it now */
				} else {
					/* later, or no memory to fire it now: next tick */
					slot_link(wh, t, when > wh->elapsed ? when : wh->elapsed + 1);
				}
			}
		}
		if (!more && now_tick > wh->elapsed)
			wh->elapsed = now_tick;
		update_next(wh);
		next = atomic_load_explicit(&wh->next_ns, memory_order_relaxed);
		urt__spin_unlock(&wh->lock);

		/*
		 * In deadline order: the first one goes to the LIFO slot and runs
		 * next, like any wake from a worker; the rest queue behind in
		 * order (through the LIFO slot, the last would run first).
		 */
		for (unsigned int i = 0; i < nfired; i++) {
			if (first) {
				urt__task_wake(fired[i]);
				first = false;
			} else {
				urt__task_wake_fifo(fired[i]);
			}
			urt__task_unref(fired[i]);
		}
	} while (more);
	if (fired != local)
		free(fired);
	return next;
}
