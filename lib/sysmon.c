// SPDX-License-Identifier: MIT
/*
 * sysmon.c - the monitor thread and slot handoff (Go's sysmon + handoffp).
 *
 * One thread per runtime watches the slots. It hands a slot and its queue
 * to a spare thread when the slot's owner
 *   - has stayed blocked in the kernel past monitor_threshold_ns (reported
 *     by the backend: kmod, bpf or proc, see monitor.h), or
 *   - has run the same task step past hog_threshold_ns (the slot's step
 *     counter did not move; this also catches blocks no backend reported),
 * and only if there is work for it: tasks in the slot's LIFO slot or ring,
 * or in the injection queue. A short block, or a block with nothing
 * queued behind it, costs nothing.
 *
 * Handoff protocol (rt.h states the invariants):
 *   1. take a spare thread P (an idle one, or start one within the budget
 *      of nslots + max_spares threads);
 *   2. CAS slot->owner from T (not parked) to P: fails if T parked or the
 *      slot moved meanwhile -- then give P back;
 *   3. membarrier(PRIVATE_EXPEDITED): every thread of the process has
 *      passed a full barrier, so T either saw the new owner in slot_enter
 *      or published busy = 1 before reading it;
 *   4. wait until T->busy == 0: T is outside its owner-only section;
 *   5. give the slot to P (handed + futex wake).
 * T keeps running its current task step (it is stuck in it); at its next
 * slot_enter it finds it lost the slot and becomes a spare itself. So a
 * slot never has two owners, no queued task moves or gets lost, and the
 * number of threads running tasks exceeds the slot count only while a
 * stuck thread finishes the step it was stuck in.
 */
#include <linux/membarrier.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "monitor.h"
#include "rt.h"
#include "trace.h"

#define MAX_EVENTS	32

struct hog_sample {
	uint64_t steps;		/* slot->steps when first seen unchanged */
	uint64_t task;
	int64_t since;
};

struct urt_monitor {
	struct urt_rt *rt;
	struct urt_mon *mon;		/* NULL: progress counters only */
	char why[256];
	pthread_t thread;
	atomic_bool stop;
	struct hog_sample *hog;		/* per slot */
	uint32_t *pending;		/* per worker: seq of a block past threshold, 0 none */
	/* mon and why change only in failover(), under reg_lock; workers
	 * (un)register under it. The monitor thread reads mon unlocked. */
	pthread_mutex_t reg_lock;
	atomic_bool inject_failure;
};

static int membarrier(int cmd)
{
	return (int)syscall(SYS_membarrier, cmd, 0, 0);
}

static bool has_work(struct urt_rt *rt, struct urt_slot *s)
{
	return atomic_load_explicit(&s->lifo, memory_order_relaxed) ||
	       urt__lq_len(&s->q) || !urt__inject_empty(&rt->inject);
}

static struct urt_worker *spare_take(struct urt_rt *rt)
{
	struct urt_worker *p = NULL;

	urt__spin_lock(&rt->spare_lock);
	if (rt->nspares)
		p = &rt->workers[rt->spares[--rt->nspares]];
	urt__spin_unlock(&rt->spare_lock);
	return p;
}

static void spare_give(struct urt_worker *p, struct urt_slot *s)
{
	atomic_store_explicit(&p->handed, s, memory_order_release);
	atomic_store_explicit(&p->spare_word, 1, memory_order_release);
	urt__futex_wake(&p->spare_word, 1);
}

/* What a slot is running: read before a handoff (the spare overwrites it). */
static void seen_task(struct urt_slot *s, struct urt_seen *out)
{
	struct urt_task *t = atomic_load_explicit(&s->cur, memory_order_acquire);

	out->id = atomic_load_explicit(&s->cur_task, memory_order_relaxed);
	out->name[0] = 0;
	/* The task may finish any moment: read its name only under a
	 * reference, and only if it is still the task the slot reported. */
	if (t && out->id && urt__task_tryref(t)) {
		if (atomic_load_explicit(&t->id, memory_order_acquire) == out->id)
			memcpy(out->name, t->name, sizeof(out->name));
		urt__task_unref(t);
	}
	out->name[sizeof(out->name) - 1] = 0;
}

/* Remembers what the monitor saw when it moved s (urt_slot_stats). */
static void record_handoff(struct urt_slot *s, const struct urt_seen *seen, int syscall,
			   int64_t stuck_ns)
{
	urt__count(&s->blocked_ns, (uint64_t)(stuck_ns > 0 ? stuck_ns : 0));
	urt__spin_lock(&s->last_lock);
	s->last_task = seen->id;
	memcpy(s->last_name, seen->name, sizeof(s->last_name));
	s->last_syscall = syscall;
	s->last_stuck_ns = stuck_ns;
	urt__spin_unlock(&s->last_lock);
}

/* Starts a spare thread; it files itself as idle in spare_wait(). */
static bool spare_add(struct urt_rt *rt)
{
	struct urt_worker *p = urt__spare_reserve(rt);

	return p && urt__spare_spawn(p) == 0;
}

bool urt__handoff(struct urt_rt *rt, struct urt_slot *s, const struct urt_handoff_note *note)
{
	uintptr_t ctl = atomic_load_explicit(&s->owner, memory_order_acquire);
	struct urt_worker *p, *old;
	bool warm;

	if (ctl & SLOT_PARKED)
		return false;
	p = spare_take(rt);
	if (!p) {
		/* None idle: start one and wait for it to file itself. */
		int64_t until = urt_now() + 100000000;

		if (!spare_add(rt))
			return false;	/* budget spent: wait for a stuck thread to return */
		while (!(p = spare_take(rt)) && urt_now() < until)
			sched_yield();
		if (!p)
			return false;
	}
	if (!atomic_compare_exchange_strong(&s->owner, &ctl, (uintptr_t)p)) {
		/* parked or moved meanwhile: P stays an idle spare */
		urt__spin_lock(&rt->spare_lock);
		rt->spares[rt->nspares++] = p->index;
		urt__spin_unlock(&rt->spare_lock);
		return false;
	}
	membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
	old = (struct urt_worker *)ctl;
	while (atomic_load_explicit(&old->busy, memory_order_acquire))
		sched_yield();
	/* Account before the spare runs: whoever sees its work sees these. */
	urt__count(&s->handoffs, 1);
	if (note) {
		urt__count(note->hog ? &s->hogs : &s->blocks_seen, 1);
		record_handoff(s, &note->seen, note->syscall, note->stuck_ns);
	}
	URT_TRACE_HANDOFF(rt, s, old, p, note && note->hog ? "hog" : "block");
	spare_give(p, s);
	/* Keep one spare warm, so the next handoff needs no thread start. */
	urt__spin_lock(&rt->spare_lock);
	warm = rt->nspares != 0;
	urt__spin_unlock(&rt->spare_lock);
	if (!warm)
		spare_add(rt);
	return true;
}

/* Slot that worker k owns right now, if it is running (not parked). */
static struct urt_slot *running_slot(struct urt_rt *rt, unsigned int k)
{
	struct urt_worker *w = &rt->workers[k];

	for (unsigned int i = 0; i < rt->nslots; i++) {
		uintptr_t ctl = atomic_load_explicit(&rt->slots[i].owner, memory_order_acquire);

		if (ctl == (uintptr_t)w)
			return &rt->slots[i];
	}
	return NULL;
}

/* Blocks past the threshold that the backend reported: hand off while the
 * same block lasts and there is work behind it. */
static void check_blocked(struct urt_monitor *m)
{
	struct urt_rt *rt = m->rt;

	for (unsigned int k = 0; k < rt->nworkers; k++) {
		struct urt_handoff_note note;
		struct urt_mon_wstate st;
		struct urt_slot *s;

		if (!m->pending[k])
			continue;
		if (urt__mon_snapshot(m->mon, k, &st) || st.state != URT_MON_BLOCKED ||
		    st.seq != m->pending[k]) {
			m->pending[k] = 0;	/* that block ended */
			continue;
		}
		s = running_slot(rt, k);
		if (!s) {
			m->pending[k] = 0;	/* parked on purpose, or a spare */
			continue;
		}
		if (!has_work(rt, s))
			continue;
		note.hog = false;
		note.syscall = st.syscall;
		note.stuck_ns = urt_now() - st.since_ns;
		seen_task(s, &note.seen);
		if (urt__handoff(rt, s, &note))
			m->pending[k] = 0;
	}
}

/* A step that runs too long (spinning, or blocked unseen): hand off. */
static void check_hogs(struct urt_monitor *m, int64_t now)
{
	struct urt_rt *rt = m->rt;

	if (rt->cfg.hog_threshold_ns < 0)
		return;
	for (unsigned int i = 0; i < rt->nslots; i++) {
		struct urt_slot *s = &rt->slots[i];
		struct hog_sample *h = &m->hog[i];
		struct urt_handoff_note note;
		uint64_t steps = atomic_load_explicit(&s->steps, memory_order_relaxed);
		uint64_t task = atomic_load_explicit(&s->cur_task, memory_order_relaxed);

		if (!task || steps != h->steps || task != h->task) {
			h->steps = steps;
			h->task = task;
			h->since = now;
			continue;
		}
		if (now - h->since < rt->cfg.hog_threshold_ns || !has_work(rt, s))
			continue;
		note.hog = true;
		note.syscall = -1;
		note.stuck_ns = now - h->since;
		seen_task(s, &note.seen);
		if (urt__handoff(rt, s, &note))
			h->since = now;	/* the new owner gets a full threshold too */
	}
}

/*
 * The backend failed mid-run: move every worker to the next one that can
 * watch threads other than the caller (kmod -> bpf -> proc), or fall back
 * to the step counters alone. Workers (un)register under reg_lock, so
 * none is missed or registered with the closed backend.
 */
static void failover(struct urt_monitor *m, int err)
{
	static const char *const next_of[] = {
		[URT_MON_KMOD] = "bpf", [URT_MON_BPF] = "proc",
		[URT_MON_PROC] = NULL, [URT_MON_OFF] = NULL,
	};
	struct urt_rt *rt = m->rt;
	enum urt_mon_kind kind;
	const char *old, *next;
	struct urt_mon *mon = NULL;

	pthread_mutex_lock(&m->reg_lock);
	kind = urt__mon_kind(m->mon);
	old = urt__mon_kind_name(kind);
	next = next_of[kind];
	urt__mon_close(m->mon);
	m->mon = NULL;
	while (next) {
		char why[160];
		bool ok = true;

		if (urt__mon_open(&mon, next, rt->nworkers, rt->cfg.monitor_threshold_ns,
				  why, sizeof(why)) == 0) {
			for (unsigned int i = 0; i < rt->nworkers && ok; i++) {
				struct urt_worker *w = &rt->workers[i];

				pid_t tid = __atomic_load_n(&w->tid, __ATOMIC_ACQUIRE);
				bool gone;

				urt__spin_lock(&rt->spare_lock);
				gone = w->exited;
				urt__spin_unlock(&rt->spare_lock);
				if (tid > 0 && !gone)
					ok = urt__mon_register_tid(mon, i, tid) == 0;
			}
			if (ok)
				break;
			urt__mon_close(mon);
		}
		mon = NULL;
		next = next_of[strcmp(next, "bpf") ? URT_MON_PROC : URT_MON_BPF];
	}
	m->mon = mon;
	memset(m->pending, 0, rt->nworkers * sizeof(*m->pending));
	snprintf(m->why, sizeof(m->why), "%s backend failed (%s): %s", old, strerror(-err),
		 mon ? urt__mon_kind_name(urt__mon_kind(mon)) : "progress counters only");
	pthread_mutex_unlock(&m->reg_lock);
	fprintf(stderr, "urt: monitor: %s\n", m->why);
}

/* Makes the next wait report a failure (tests of failover). */
void urt__monitor_inject_failure(struct urt_rt *rt)
{
	struct urt_monitor *m = rt->monitor;

	if (!m)
		return;
	atomic_store(&m->inject_failure, true);
	pthread_mutex_lock(&m->reg_lock);
	if (m->mon)
		urt__mon_kick(m->mon);
	pthread_mutex_unlock(&m->reg_lock);
}

static void *monitor_main(void *arg)
{
	struct urt_monitor *m = arg;
	struct urt_rt *rt = m->rt;
	struct urt_mon_event ev[MAX_EVENTS];
	int64_t tick = rt->cfg.hog_threshold_ns > 0 ? rt->cfg.hog_threshold_ns / 2 : 10000000;
	char name[16];

	snprintf(name, sizeof(name), "%.10s-mon", rt->cfg.name);
	pthread_setname_np(pthread_self(), name);
	spare_add(rt);		/* one warm spare from the start */
	if (tick > 10000000)
		tick = 10000000;
	while (!atomic_load_explicit(&m->stop, memory_order_acquire)) {
		bool pending = false;
		int n;

		for (unsigned int k = 0; k < rt->nworkers; k++)
			pending |= m->pending[k] != 0;
		if (m->mon) {
			/* While a reported block waits for work, look again soon. */
			n = urt__mon_wait(m->mon, pending ? 200000 : tick, ev, MAX_EVENTS);
			if (!n && atomic_exchange(&m->inject_failure, false))
				n = -EIO;	/* urt__monitor_inject_failure(): tests */
			if (n < 0) {
				failover(m, n);
				continue;
			}
			for (int i = 0; i < n; i++) {
				URT_TRACE_BLOCK(rt, &ev[i]);
				if (ev[i].slot < rt->nworkers)
					m->pending[ev[i].slot] = ev[i].seq;
			}
			check_blocked(m);
		} else {
			struct timespec ts = { 0, tick };

			nanosleep(&ts, NULL);
		}
		check_hogs(m, urt_now());
	}
	return NULL;
}

int urt__monitor_start(struct urt_rt *rt)
{
	struct urt_monitor *m;
	int err;

	if (strcmp(rt->cfg.monitor, "off") == 0)
		return 0;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->rt = rt;
	pthread_mutex_init(&m->reg_lock, NULL);
	m->hog = calloc(rt->nslots, sizeof(*m->hog));
	m->pending = calloc(rt->nworkers, sizeof(*m->pending));
	if (!m->hog || !m->pending) {
		err = -ENOMEM;
		goto fail;
	}
	/* Handoff needs the asymmetric barrier; without it there is no monitor. */
	if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED)) {
		err = -errno;
		fprintf(stderr, "urt: monitor: membarrier unavailable (%s): handoff is off\n",
			strerror(errno));
		goto fail;
	}
	err = urt__mon_open(&m->mon, rt->cfg.monitor, rt->nworkers,
			    rt->cfg.monitor_threshold_ns, m->why, sizeof(m->why));
	if (err) {
		fprintf(stderr, "urt: %s\n", m->why);
		goto fail;
	}
	rt->monitor = m;
	err = -pthread_create(&m->thread, NULL, monitor_main, m);
	if (err) {
		urt__mon_close(m->mon);
		rt->monitor = NULL;
		goto fail;
	}
	return 0;
fail:
	free(m->hog);
	free(m->pending);
	free(m);
	return err;
}

void urt__monitor_stop(struct urt_rt *rt)
{
	struct urt_monitor *m = rt->monitor;

	if (!m)
		return;
	atomic_store_explicit(&m->stop, true, memory_order_release);
	pthread_mutex_lock(&m->reg_lock);
	if (m->mon)
		urt__mon_kick(m->mon);
	pthread_mutex_unlock(&m->reg_lock);
	pthread_join(m->thread, NULL);
}

/* After the workers are gone (they unregistered), so close can detach. */
void urt__monitor_free(struct urt_rt *rt)
{
	struct urt_monitor *m = rt->monitor;

	if (!m)
		return;
	urt__mon_close(m->mon);
	pthread_mutex_destroy(&m->reg_lock);
	free(m->hog);
	free(m->pending);
	free(m);
	rt->monitor = NULL;
}

void urt__monitor_thread_init(struct urt_worker *w)
{
	struct urt_monitor *m = w->rt->monitor;

	if (!m)
		return;
	pthread_mutex_lock(&m->reg_lock);
	if (m->mon)
		urt__mon_register(m->mon, (unsigned int)w->index);
	pthread_mutex_unlock(&m->reg_lock);
}

void urt__monitor_thread_fini(struct urt_worker *w)
{
	struct urt_monitor *m = w->rt->monitor;

	if (!m)
		return;
	pthread_mutex_lock(&m->reg_lock);
	if (m->mon)
		urt__mon_unregister(m->mon, (unsigned int)w->index);
	pthread_mutex_unlock(&m->reg_lock);
}

int urt_slot_stats(urt_rt *rt, unsigned int slot, struct urt_slot_stats *out)
{
	struct urt_slot *s;
	uintptr_t ctl;

	if (!rt || !out || slot >= rt->nslots)
		return -EINVAL;
	s = &rt->slots[slot];
	memset(out, 0, sizeof(*out));
	ctl = atomic_load_explicit(&s->owner, memory_order_acquire);
	out->slot = slot;
	out->owner_tid = __atomic_load_n(&((struct urt_worker *)(ctl & ~SLOT_PARKED))->tid,
					 __ATOMIC_RELAXED);
	out->idle = ctl & SLOT_PARKED;
	out->cur_task = atomic_load_explicit(&s->cur_task, memory_order_relaxed);
	out->steps = atomic_load_explicit(&s->steps, memory_order_relaxed);
	out->queued = urt__lq_len(&s->q) + (atomic_load_explicit(&s->lifo, memory_order_relaxed) != NULL);
	out->handoffs = atomic_load_explicit(&s->handoffs, memory_order_relaxed);
	out->blocks_seen = atomic_load_explicit(&s->blocks_seen, memory_order_relaxed);
	out->hogs = atomic_load_explicit(&s->hogs, memory_order_relaxed);
	out->stuck_ns = (int64_t)atomic_load_explicit(&s->blocked_ns, memory_order_relaxed);
	urt__spin_lock(&s->last_lock);
	out->last_task = s->last_task;
	memcpy(out->last_task_name, s->last_name, sizeof(out->last_task_name));
	out->last_syscall = out->last_task ? s->last_syscall : -1;
	out->last_stuck_ns = s->last_stuck_ns;
	urt__spin_unlock(&s->last_lock);
	return 0;
}

const char *urt_monitor_backend(urt_rt *rt, char *why, size_t whylen)
{
	struct urt_monitor *m = rt ? rt->monitor : NULL;
	const char *name = "off";

	if (m)
		pthread_mutex_lock(&m->reg_lock);
	if (m && m->mon)
		name = urt__mon_kind_name(urt__mon_kind(m->mon));
	else if (m)
		name = "counters";
	if (why && whylen)
		snprintf(why, whylen, "%s", m ? m->why : "monitor disabled (URT_MONITOR=off)");
	if (m)
		pthread_mutex_unlock(&m->reg_lock);
	return name;
}
