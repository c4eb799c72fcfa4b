// SPDX-License-Identifier: MIT
/*
 * sched.c - the scheduler: worker loop, work stealing, parking, the driver.
 *
 * A worker thread that owns a slot loops:
 *
 *   next task:  the slot's LIFO slot (at most MAX_LIFO_POLLS in a row, so
 *               two tasks waking each other cannot starve the queue), the
 *               injection queue every global_queue_interval ticks
 *               (fairness), the local ring, the injection queue;
 *   steal:      become "searching" (at most half the slots search at once:
 *               no thundering herd), take half of another slot's ring,
 *               starting at a random slot;
 *   park:       announce idle, re-check (the last searcher), sleep.
 *
 * Parking (tokio's design, per slot). idle.state counts unparked and
 * searching slots. Whoever makes work available calls urt__notify_parked(),
 * which wakes one sleeping slot only if nobody searches already -- a
 * searcher will find the work, and a searcher that finds work and was the
 * last one wakes another. A slot owner about to sleep first tries to take
 * the driver: the holder waits in epoll (I/O, its eventfd, the next timer);
 * the others wait on their slot's futex word. Busy owners poll the driver
 * without blocking every event_interval ticks, so timers and I/O are
 * serviced even when nobody parks.
 *
 * Slot ownership and handoff (the invariants are in rt.h): every access to
 * a slot's owner-only state happens between slot_enter() and slot_exit().
 * slot_enter() publishes the thread's `busy` and then reads the owner; the
 * monitor (handoff.c) publishes a new owner, makes sure the old owner
 * passes a full barrier (membarrier on its CPU; none needed if the kernel
 * found it off its CPU) and then reads the old owner's `busy`. That makes
 * the pair a Dekker handshake without a fence on the owner's fast path:
 * either the old owner sees it lost the slot, or the monitor sees it
 * inside and waits for it to leave.
 */
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rt.h"
#include "trace.h"

#define MAX_LIFO_POLLS	3
#define DRIVER_EVENTS	64

static __thread struct urt_worker *tls_worker;
__thread struct urt_task *urt__tls_task;
static __thread struct urt_rt *tls_rt;

/* Noinline with a compiler barrier: see rt.h. */
__attribute__((noinline)) struct urt_worker *urt__worker(void)
{
	__asm__ volatile("" ::: "memory");
	return tls_worker;
}

__attribute__((noinline)) struct urt_task *urt__current_task(void)
{
	__asm__ volatile("" ::: "memory");
	return urt__tls_task;
}

__attribute__((noinline)) struct urt_rt *urt__current_rt(void)
{
	__asm__ volatile("" ::: "memory");
	return tls_rt;
}

void urt__set_worker(struct urt_worker *w) { tls_worker = w; }

void urt__set_current_rt(struct urt_rt *rt) { tls_rt = rt; }

/*
 * URT_HOG_SIGNAL, sent by the monitor to a hog's thread right after it
 * set it to nice 19 (hog.c, urt__demote): give up the CPU now. EEVDF then
 * moves the thread's deadline a whole slice on at its new weight, so the
 * spare sharing its CPU runs; without it the hog would still finish the
 * slice it began at nice 0 (up to a tick, 4 ms). Async-signal-safe.
 */
void urt__hog_yield(int sig)
{
	struct urt_worker *w = tls_worker;

	(void)sig;
	if (w)
		atomic_fetch_add_explicit(&w->hog_yields, 1, memory_order_relaxed);
	/* Never fails on Linux, so errno is left alone: no save and restore,
	 * whose TLS accesses TSan pins on whichever fiber the signal met. */
	sched_yield();
}

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
	struct urt_slot *s = w ? w->slot : NULL;

	return s ? s->index : -1;
}

struct urt_reactor *urt__rt_reactor(struct urt_rt *rt)
{
	return rt->reactor;
}

/* ------------------------------------------------------------ ownership */

/* A parked slot is still its owner's (the driver's turn in park wakes tasks
 * onto it); a moving one is nobody's until the mover clears the mark. */
static inline struct urt_worker *ctl_owner(uintptr_t ctl)
{
	return (struct urt_worker *)(ctl & ~SLOT_PARKED);
}

/*
 * Enters w's slot for owner-only work; NULL if w owns none (any more).
 * Re-entrant (a driver turn inside park wakes tasks onto the slot).
 */
static inline struct urt_slot *slot_enter(struct urt_worker *w)
{
	struct urt_slot *s = w->slot;

	if (!s)
		return NULL;
	if (w->slot_depth++)
		return s;
	atomic_store_explicit(&w->busy, 1, memory_order_relaxed);
	/* membarrier() on the monitor's side supplies the hardware fence. */
	atomic_signal_fence(memory_order_seq_cst);
	if (likely(ctl_owner(atomic_load_explicit(&s->owner, memory_order_relaxed)) == w))
		return s;
	atomic_store_explicit(&w->busy, 0, memory_order_release);
	w->slot_depth = 0;
	w->slot = NULL;	/* handed to a spare: this thread becomes one */
	urt__monitor_slot_lost(w);
	return NULL;
}

static inline void slot_exit(struct urt_worker *w, struct urt_slot *s)
{
	(void)s;
	if (--w->slot_depth == 0)
		atomic_store_explicit(&w->busy, 0, memory_order_release);
}

/* The LIFO slot: written by the owner only, read by the monitor. */
static inline struct urt_task *lifo_get(struct urt_slot *s)
{
	return atomic_load_explicit(&s->lifo, memory_order_relaxed);
}

static inline void lifo_set(struct urt_slot *s, struct urt_task *t)
{
	atomic_store_explicit(&s->lifo, t, memory_order_relaxed);
}

/* ------------------------------------------------------------ idle state */

#define IDLE_UNPARKED(s)	((s) & 0xffffu)
#define IDLE_SEARCHING(s)	((s) >> 16)
#define IDLE_ONE_SEARCHING	(1u << 16)

unsigned int urt__unparked(struct urt_rt *rt)
{
	return IDLE_UNPARKED(atomic_load_explicit(&rt->idle.state, memory_order_seq_cst));
}

static bool idle_to_searching(struct urt_rt *rt, struct urt_slot *s)
{
	unsigned int st;

	if (s->searching)
		return true;
	st = atomic_load_explicit(&rt->idle.state, memory_order_seq_cst);
	if (2 * IDLE_SEARCHING(st) >= rt->nslots)
		return false;
	atomic_fetch_add_explicit(&rt->idle.state, IDLE_ONE_SEARCHING, memory_order_seq_cst);
	s->searching = true;
	return true;
}

/* Found work while searching. If this was the last searcher, someone else
 * must look for the rest. */
static void idle_from_searching(struct urt_rt *rt, struct urt_slot *s)
{
	unsigned int prev;

	s->searching = false;
	prev = atomic_fetch_sub_explicit(&rt->idle.state, IDLE_ONE_SEARCHING,
					 memory_order_seq_cst);
	if (IDLE_SEARCHING(prev) == 1)
		urt__notify_parked(rt);
}

/* Returns true if this was the last searching slot. */
static bool idle_to_parked(struct urt_rt *rt, struct urt_slot *s)
{
	struct urt_idle *idle = &rt->idle;
	unsigned int dec = 1 + (s->searching ? IDLE_ONE_SEARCHING : 0);
	unsigned int prev;

	urt__spin_lock(&idle->lock);
	prev = atomic_fetch_sub_explicit(&idle->state, dec, memory_order_seq_cst);
	idle->sleepers[idle->nsleepers++] = s->index;
	urt__spin_unlock(&idle->lock);
	if (s->searching) {
		s->searching = false;
		return IDLE_SEARCHING(prev) == 1;
	}
	return false;
}

static bool idle_is_parked(struct urt_rt *rt, struct urt_slot *s)
{
	struct urt_idle *idle = &rt->idle;
	bool parked = false;

	urt__spin_lock(&idle->lock);
	for (int i = 0; i < idle->nsleepers; i++)
		if (idle->sleepers[i] == s->index)
			parked = true;
	urt__spin_unlock(&idle->lock);
	return parked;
}

/*
 * Woke up by itself (driver event, local work, stop): leave the sleepers.
 * If notify_parked() took us off the list meanwhile, it counted us as
 * unparked and searching: then we are a searcher now, or the count of
 * searchers would stay up forever and nobody would be woken again.
 */
static void idle_unpark_self(struct urt_rt *rt, struct urt_slot *s)
{
	struct urt_idle *idle = &rt->idle;
	bool found = false;

	urt__spin_lock(&idle->lock);
	for (int i = 0; i < idle->nsleepers; i++) {
		if (idle->sleepers[i] == s->index) {
			idle->sleepers[i] = idle->sleepers[--idle->nsleepers];
			atomic_fetch_add_explicit(&idle->state, 1, memory_order_seq_cst);
			found = true;
			break;
		}
	}
	urt__spin_unlock(&idle->lock);
	if (!found)
		s->searching = true;
}

static void unpark(struct urt_rt *rt, struct urt_slot *s)
{
	unsigned int prev = atomic_exchange_explicit(&s->park_state, PARK_NOTIFIED,
						     memory_order_seq_cst);

	if (prev == PARK_FUTEX)
		urt__futex_wake(&s->park_state, 1);
	else if (prev == PARK_DRIVER)
		urt__driver_kick(rt);
}

void urt__notify_parked(struct urt_rt *rt)
{
	struct urt_idle *idle = &rt->idle;
	unsigned int st = atomic_load_explicit(&idle->state, memory_order_seq_cst);
	int idx;

	if (IDLE_SEARCHING(st) || IDLE_UNPARKED(st) >= rt->nslots)
		return;
	urt__spin_lock(&idle->lock);
	st = atomic_load_explicit(&idle->state, memory_order_seq_cst);
	if (IDLE_SEARCHING(st) || IDLE_UNPARKED(st) >= rt->nslots || !idle->nsleepers) {
		urt__spin_unlock(&idle->lock);
		return;
	}
	/* The woken slot starts out unparked and searching. */
	atomic_fetch_add_explicit(&idle->state, 1 + IDLE_ONE_SEARCHING, memory_order_seq_cst);
	idx = idle->sleepers[--idle->nsleepers];
	urt__spin_unlock(&idle->lock);
	unpark(rt, &rt->slots[idx]);
}

/* ------------------------------------------------------------ queues */

void urt__schedule(struct urt_task *t, bool yield)
{
	struct urt_worker *w = urt__worker();
	struct urt_rt *rt = t->rt;
	struct urt_slot *s;

	if (w && w->rt == rt && (s = slot_enter(w))) {
		if (!yield) {
			/* Woken or spawned by a running task: run it next, where its
			 * data is still in cache. */
			struct urt_task *prev = lifo_get(s);

			lifo_set(s, t);
			if (!prev) {
				slot_exit(w, s);
				return;
			}
			t = prev;
		} else if (!urt__inject_empty(&rt->inject)) {
			/*
			 * A yield lets the others run, and tasks spawned from
			 * outside are others too: look at the injection queue
			 * next turn instead of up to global_queue_interval steps
			 * later (behind tasks that yield and block, that wait
			 * was ~100 us per remote spawn).
			 */
			s->gq_countdown = 1;
		}
		urt__lq_push(&s->q, t, &rt->inject);
		slot_exit(w, s);
	} else {
		urt__inject_push(&rt->inject, t);
	}
	urt__notify_parked(rt);
}

/* A task a fiber may switch to directly: a fiber with its stack, or one
 * about to start (a start that is cancelled runs only its cleanup: not here). */
static inline bool direct_ok(struct urt_task *t)
{
	if (t->kind != TK_FIBER)
		return false;
	if (t->started)
		return t->stack != NULL;
	return !(atomic_load_explicit(&t->state, memory_order_relaxed) & TS_CANCEL);
}

/*
 * For a fiber about to suspend or finish (task.c): takes the task the loop
 * would run next from this slot's LIFO slot or ring, if the fiber can
 * switch to it directly, so the switch skips the scheduler's stack. NULL
 * leaves the choice to the loop: nothing local, a poll task next, the
 * slot lost, or a periodic turn (driver, injection queue) due -- those
 * countdowns tick here as in the loop, so direct switches never starve
 * I/O, timers or the injection queue.
 */
struct urt_task *urt__next_direct(struct urt_worker *w, bool yielding)
{
	struct urt_slot *s = slot_enter(w);
	struct urt_task *t;

	if (!s)
		return NULL;
	if (s->ev_countdown <= 1 || s->gq_countdown <= 1)
		goto none;
	/* A yield with injected tasks waiting: the loop takes them (urt__schedule). */
	if (yielding && !urt__inject_empty(&w->rt->inject))
		goto none;
	t = lifo_get(s);
	if (t) {
		if (s->lifo_polls >= MAX_LIFO_POLLS || !direct_ok(t))
			goto none;
		lifo_set(s, NULL);
		s->lifo_polls++;
	} else {
		t = urt__lq_pop(&s->q);
		if (!t)
			goto none;
		if (!direct_ok(t)) {
			/* Popped, ours: the loop runs it next (the LIFO slot was empty). */
			lifo_set(s, t);
			goto none;
		}
		s->lifo_polls = 0;
	}
	s->ev_countdown--;
	s->gq_countdown--;
	slot_exit(w, s);
	return t;
none:
	slot_exit(w, s);
	return NULL;
}

static bool work_anywhere(struct urt_rt *rt)
{
	if (!urt__inject_empty(&rt->inject))
		return true;
	for (unsigned int i = 0; i < rt->nslots; i++)
		if (urt__lq_len(&rt->slots[i].q))
			return true;
	return false;
}

/*
 * Takes work from the injection queue: one task to run and, into our ring,
 * a fair share of the rest (as tokio does), so a burst of spawns from
 * outside is not served one task per fairness interval.
 */
static struct urt_task *inject_take(struct urt_rt *rt, struct urt_slot *s)
{
	size_t len = atomic_load_explicit(&rt->inject.len, memory_order_relaxed);
	unsigned int room = URT_LQ_SIZE / 2 - urt__lq_len(&s->q);
	unsigned int n;

	if (len == 0)
		return NULL;
	n = (unsigned int)(len / rt->nslots) + 1;
	if (room > URT_LQ_SIZE / 2)	/* the ring is over half full */
		room = 0;
	if (n > room + 1)
		n = room + 1;
	if (n > 64)
		n = 64;
	return urt__inject_pop_batch(&rt->inject, &s->q, n);
}

static struct urt_task *next_task(struct urt_rt *rt, struct urt_slot *s)
{
	struct urt_task *t;

	t = lifo_get(s);
	if (t) {
		lifo_set(s, NULL);
		if (s->lifo_polls < MAX_LIFO_POLLS) {
			s->lifo_polls++;
			return t;
		}
		/* Starvation guard: the LIFO task waits its turn like the rest. */
		urt__lq_push(&s->q, t, &rt->inject);
	}
	s->lifo_polls = 0;
	if (--s->gq_countdown == 0) {
		s->gq_countdown = rt->cfg.global_queue_interval;
		t = inject_take(rt, s);
		if (t)
			return t;
	}
	t = urt__lq_pop(&s->q);
	if (t)
		return t;
	return inject_take(rt, s);
}

static struct urt_task *steal_work(struct urt_worker *w, struct urt_slot *s)
{
	struct urt_rt *rt = w->rt;
	unsigned int n = rt->nslots, start;
	struct urt_task *t;

	/*
	 * Search even with one slot: parking as a searcher is what makes the
	 * last one re-check the queues (park), so a push that raced with our
	 * last look is not left behind.
	 */
	if (idle_to_searching(rt, s) && n > 1) {
		s->rng ^= s->rng << 13;
		s->rng ^= s->rng >> 17;
		s->rng ^= s->rng << 5;
		start = s->rng % n;
		for (unsigned int i = 0; i < n; i++) {
			unsigned int idx = (start + i) % n;

			if (idx == (unsigned int)s->index)
				continue;
			t = urt__lq_steal(&rt->slots[idx].q, &s->q);
			if (t) {
				urt__count(&w->steals, 1);
				URT_TRACE_STEAL(w, s, &rt->slots[idx]);
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

/* One turn of the driver: wait for I/O or the next timer (block) or just
 * poll; then dispatch. Caller holds rt->driver_lock. */
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

			/*
			 * Drain, then re-arm kicks. The other order loses kicks
			 * for good: a kick between clear and read would be read
			 * away with `driver_kicked` left set. In this order a kick
			 * that finds the flag still set is skipped, but we are
			 * awake and look at its reason (park state, timers) before
			 * sleeping again.
			 */
			if (read(rt->event_fd, &v, sizeof(v)) < 0) {
				/* EAGAIN: drained by an earlier turn */
			}
			atomic_store_explicit(&rt->driver_kicked, 0, memory_order_seq_cst);
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
static void maintenance(struct urt_rt *rt)
{
	if (driver_trylock(rt)) {
		driver_turn(rt, false);
		driver_unlock(rt);
	} else {
		urt__timers_run(rt, urt_now());
	}
}

/* Sleeps until unparked; the driver holder also wakes on I/O and timers. */
static void park_timeout(struct urt_rt *rt, struct urt_slot *s)
{
	unsigned int expect = PARK_EMPTY;

	if (driver_trylock(rt)) {
		if (atomic_compare_exchange_strong(&s->park_state, &expect, PARK_DRIVER))
			driver_turn(rt, true);
		atomic_exchange(&s->park_state, PARK_EMPTY);
		driver_unlock(rt);
		return;
	}
	if (atomic_compare_exchange_strong(&s->park_state, &expect, PARK_FUTEX)) {
		while (atomic_load(&s->park_state) == PARK_FUTEX)
			urt__futex_wait(&s->park_state, PARK_FUTEX, URT_FOREVER);
	}
	atomic_exchange(&s->park_state, PARK_EMPTY);
}

/*
 * Called inside slot_enter with nothing to run; returns outside it. Marks
 * the slot parked (a parked slot is never handed off: it has nothing
 * queued) and sleeps outside the busy section.
 */
static void park(struct urt_worker *w, struct urt_slot *s)
{
	struct urt_rt *rt = w->rt;
	uintptr_t me = (uintptr_t)w;

	urt__count(&w->parks, 1);
	if (!atomic_compare_exchange_strong(&s->owner, &me, me | SLOT_PARKED)) {
		slot_exit(w, s);	/* the monitor took the slot: slot_enter will tell */
		return;
	}
	if (idle_to_parked(rt, s) && work_anywhere(rt))
		urt__notify_parked(rt);
	URT_TRACE_PARK(w, s);
	slot_exit(w, s);
	while (!atomic_load_explicit(&rt->stop, memory_order_acquire)) {
		park_timeout(rt, s);
		if (lifo_get(s) || urt__lq_len(&s->q)) {
			/* The driver woke tasks onto our own slot. */
			idle_unpark_self(rt, s);
			if (urt__lq_len(&s->q))
				urt__notify_parked(rt);
			break;
		}
		if (!idle_is_parked(rt, s)) {
			s->searching = true;	/* notify_parked counted us searching */
			break;
		}
	}
	if (atomic_load_explicit(&rt->stop, memory_order_acquire))
		idle_unpark_self(rt, s);
	URT_TRACE_UNPARK(w, s);
	atomic_store_explicit(&s->owner, me, memory_order_release);
	atomic_fetch_add_explicit(&w->wakes, 1, memory_order_release);
	urt__monitor_unparked(rt);
}

/* ------------------------------------------------------------ workers */

/* Runs the scheduler loop for w's slot until the slot is lost or we stop. */
static void run_slot(struct urt_worker *w)
{
	struct urt_rt *rt = w->rt;

	while (!atomic_load_explicit(&rt->stop, memory_order_acquire)) {
		struct urt_slot *s = slot_enter(w);
		struct urt_task *t;

		if (!s)
			return;		/* handed off while we were stuck */
		/*
		 * No step runs: say so, as the owner. Never at the step's end
		 * (task.c): a thread whose slot moved meanwhile would write 0
		 * over the step the spare began, and the hog check skips a
		 * slot with no step running -- the task queued behind a
		 * second hog would wait until that hog ended by itself.
		 */
		atomic_store_explicit(&s->cur_task, 0, memory_order_relaxed);
		if (--s->ev_countdown == 0) {
			s->ev_countdown = rt->cfg.event_interval;
			maintenance(rt);
		}
		t = next_task(rt, s);
		if (!t)
			t = steal_work(w, s);
		if (t) {
			atomic_store_explicit(&s->cpu, sched_getcpu(), memory_order_relaxed);
			if (s->searching)
				idle_from_searching(rt, s);
			slot_exit(w, s);
			urt__run_task(w, t);
			continue;
		}
		park(w, s);
	}
}

/* Under spare_lock: takes worker index i out of the idle list, if there. */
bool urt__spare_unlist_locked(struct urt_rt *rt, int i)
{
	for (int j = 0; j < rt->nspares; j++) {
		if (rt->spares[j] == i) {
			rt->spares[j] = rt->spares[--rt->nspares];
			return true;
		}
	}
	return false;
}

/*
 * A spare waits to be handed a slot; false if it should exit instead. Up
 * to cfg.monitor_poll spares poll the workers' states instead of sleeping
 * (urt__monitor_poll) and may take a slot themselves. A poke (spare_word
 * = 1 + futex wake) is a handed slot, a poll seat to take, or the end;
 * each is re-checked after consuming the poke.
 */
static bool spare_wait(struct urt_worker *w)
{
	struct urt_rt *rt = w->rt;
	int64_t idle_until = urt_now() + 1000000000LL;	/* shrink after 1 s idle */
	struct urt_slot *s;

	urt__spin_lock(&rt->spare_lock);
	if ((unsigned int)rt->nspares >= rt->cfg.max_spares) {
		urt__spin_unlock(&rt->spare_lock);
		return false;
	}
	rt->spares[rt->nspares++] = w->index;
	urt__spin_unlock(&rt->spare_lock);

	for (;;) {
		/* acquire: a poke's release makes `handed` visible */
		atomic_exchange_explicit(&w->spare_word, 0, memory_order_acquire);
		if (atomic_exchange(&w->pinned, false))	/* woken where it was told */
			sched_setaffinity(0, sizeof(rt->cpus), &rt->cpus);
		s = atomic_exchange_explicit(&w->handed, NULL, memory_order_acquire);
		if (s || atomic_load_explicit(&rt->stop, memory_order_acquire))
			break;
		s = urt__monitor_poll(w);	/* out of the list if it took one */
		if (s)
			break;
		if (atomic_load_explicit(&w->handed, memory_order_relaxed))
			continue;
		if (urt__futex_wait(&w->spare_word, 0, idle_until) == -ETIMEDOUT) {
			bool gone = false;

			/* Leave the list unless the monitor just picked us
			 * (or it is the last spare). */
			urt__spin_lock(&rt->spare_lock);
			gone = rt->nspares > 1 && urt__spare_unlist_locked(rt, w->index);
			urt__spin_unlock(&rt->spare_lock);
			if (gone)
				return false;
			idle_until = urt_now() + 1000000000LL;
		}
	}
	atomic_fetch_add_explicit(&w->wakes, 1, memory_order_release);
	if (!s) {
		/* stopping: leave the list */
		urt__spin_lock(&rt->spare_lock);
		urt__spare_unlist_locked(rt, w->index);
		urt__spin_unlock(&rt->spare_lock);
		return false;
	}
	w->slot = s;
	return true;
}

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
	if (rt->hog_signal)
		sigaddset(&sync_sigs, URT_HOG_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &sync_sigs, NULL);
	__atomic_store_n(&w->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	urt__set_worker(w);
	urt__set_current_rt(rt);
	snprintf(name, sizeof(name), "%.10s-w%d", rt->cfg.name, w->index);
	pthread_setname_np(pthread_self(), name);
	urt__thread_fiber_init(w);
	urt__monitor_thread_init(w);

	for (;;) {
		if (w->slot)
			run_slot(w);
		if (atomic_load_explicit(&rt->stop, memory_order_acquire))
			break;
		if (!urt__monitor_may_spare(w) || !spare_wait(w))
			break;
	}
	urt__monitor_thread_fini(w);
	urt__thread_fiber_fini(w);
	urt__set_worker(NULL);
	urt__set_current_rt(NULL);
	urt__spin_lock(&rt->spare_lock);
	w->exited = true;
	urt__spin_unlock(&rt->spare_lock);
	return NULL;
}

static int worker_spawn(struct urt_worker *w)
{
	sigset_t all, old;
	int err;

	/* Workers must not take the process's signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = -pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}

/*
 * Reserves the worker struct of a new spare thread, within the budget of
 * nslots + max_spares threads; NULL if spent. The caller may set its
 * `handed` slot, then must call urt__spare_spawn().
 */
struct urt_worker *urt__spare_reserve(struct urt_rt *rt)
{
	struct urt_worker *w = NULL;

	urt__spin_lock(&rt->spare_lock);
	for (unsigned int i = rt->nslots; i < rt->nworkers; i++) {
		struct urt_worker *c = &rt->workers[i];

		if (!c->started || c->exited) {
			w = c;
			break;
		}
	}
	if (w) {
		if (w->exited)
			pthread_join(w->thread, NULL);	/* a spare that shrank away */
		w->exited = false;
		w->started = true;			/* reserved */
	}
	urt__spin_unlock(&rt->spare_lock);
	if (w)
		w->slot = NULL;
	return w;
}

int urt__spare_spawn(struct urt_worker *w)
{
	int err = worker_spawn(w);

	if (err) {
		/* started is the reservation: under the lock, as the monitor
		 * and the poller both reserve spares */
		urt__spin_lock(&w->rt->spare_lock);
		w->started = false;
		urt__spin_unlock(&w->rt->spare_lock);
		atomic_store(&w->handed, NULL);
	}
	return err;
}

int urt__workers_start(struct urt_rt *rt)
{
	int err = 0;

	atomic_init(&rt->idle.state, rt->nslots);
	for (unsigned int i = 0; i < rt->nslots; i++) {
		err = worker_spawn(&rt->workers[i]);
		if (err)
			break;
		rt->workers[i].started = true;
	}
	if (err)
		urt__workers_stop(rt);
	return err;
}

void urt__workers_stop(struct urt_rt *rt)
{
	atomic_store_explicit(&rt->stop, true, memory_order_release);
	for (unsigned int i = 0; i < rt->nslots; i++)
		unpark(rt, &rt->slots[i]);
	for (unsigned int i = 0; i < rt->nworkers; i++) {
		atomic_store(&rt->workers[i].spare_word, 1);
		urt__futex_wake(&rt->workers[i].spare_word, 1);
	}
	urt__driver_kick(rt);
	for (unsigned int i = 0; i < rt->nworkers; i++) {
		struct urt_worker *w = &rt->workers[i];

		if (w->started)
			pthread_join(w->thread, NULL);
		w->started = false;
	}
}
