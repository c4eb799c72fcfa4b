// SPDX-License-Identifier: MIT
/*
 * sysmon.c - the monitor thread (Go's sysmon).
 *
 * One thread per runtime watches the slots. It hands a slot and its queue
 * to a spare thread when the slot's owner
 *   - has stayed blocked in the kernel past monitor_threshold_ns (reported
 *     by the backend: kmod, bpf or proc, see monitor.h), or
 *   - has run the same task step past hog_threshold_ns on a CPU (the
 *     slot's step counter did not move and the thread's CPU clock did;
 *     a sleeping thread here is a block no backend reported),
 * and only if there is work for it: tasks in the slot's LIFO slot or ring,
 * in the injection queue, or two or more in another slot's ring (the
 * spare steals). A short block, or a block with nothing queued behind
 * it, costs nothing.
 *
 * How a slot moves is handoff.c; what is done to a hog, hog.c; spares
 * that poll the worker states instead of sleeping, poller.c. sysmon.h
 * holds what they share.
 *
 * The tick. Hogs are found by sampling the slots' step counters every
 * half hog threshold while some slot runs tasks. While every slot is
 * parked, nothing can hog: the tick doubles up to 10 ms (as Go's sysmon
 * backs off), and a worker that unparks kicks the monitor awake
 * (urt__monitor_unparked), so the first step after an idle spell is timed
 * from its start, not from the end of a long sleep.
 */
#include <fcntl.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <signal.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sysmon.h"
#include "trace.h"

#define MAX_EVENTS	32

/* Ends the monitor thread's wait now. */
void urt__monitor_kick(struct urt_monitor *m)
{
	pthread_mutex_lock(&m->reg_lock);
	if (m->mon)
		urt__mon_kick(m->mon);
	pthread_mutex_unlock(&m->reg_lock);
}

/* A slot unparked: if the monitor backed off its tick, wake it. */
void urt__monitor_unparked(struct urt_rt *rt)
{
	struct urt_monitor *m = rt->monitor;

	if (m && atomic_load_explicit(&m->poll_dozing, memory_order_seq_cst) &&
	    atomic_exchange(&m->poll_dozing, false))
		urt__poll_recruit(m, false, -1);
	if (!m || !atomic_load_explicit(&m->dozing, memory_order_seq_cst) ||
	    !atomic_exchange(&m->dozing, false))
		return;
	urt__monitor_kick(m);
}

static bool all_parked(struct urt_rt *rt)
{
	for (unsigned int i = 0; i < rt->nslots; i++)
		if (!(atomic_load_explicit(&rt->slots[i].owner, memory_order_seq_cst) &
		      SLOT_PARKED))
			return false;
	return true;
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
		s = urt__running_slot(rt, k);
		if (!s || st.since_ns < m->given[k]) {
			/* parked on purpose, or a spare; or a spare that was
			 * just given a slot and has not run yet: the block is
			 * its wait for one */
			m->pending[k] = 0;
			continue;
		}
		if (!urt__has_work(rt, s))
			continue;
		note.hog = false;
		note.polled = false;
		note.cpu = -1;
		note.syscall = st.syscall;
		note.stuck_ns = urt_now() - st.since_ns;
		urt__seen_task(s, &note.seen);
		if (urt__handoff(rt, s, &rt->workers[k], &note))
			m->pending[k] = 0;
	}
}

/*
 * Two slots' owners that share a CPU while another CPU of the runtime's
 * runs none: one of them waits for the other's time slice, which with
 * EEVDF and HZ=250 lasts until the next tick, 4 ms (seen in 2-slot
 * starve_* runs: each slot in turn stalled 4 ms on one 100 us task while
 * the other CPU ran only a demoted hog). The kernel's load balancer does
 * not fix it in that time: a CPU running a low-weight thread (a nice-19
 * hog, the SCHED_IDLE poller) is busy, so it balances at the busy
 * interval (tens of ms), and recently run threads are cache-hot, not
 * migrated. So the monitor does, each tick: a slot whose owner is
 * runnable but ran no step since the last pass, on a CPU where another
 * slot made progress, moves to a CPU of the runtime's mask where no slot
 * made progress (its affinity narrowed to that CPU and at once widened
 * back: the kernel migrates it, then lets it be). At most one move per
 * UNSTACK_COOLDOWN_NS; urt_stats.unstacks counts them.
 */
static void check_stacked(struct urt_monitor *m, int64_t now)
{
	struct urt_rt *rt = m->rt;
	cpu_set_t busy, one;
	unsigned int moved = 0;

	if (rt->nslots < 2 || CPU_COUNT(&rt->cpus) < 2)
		return;
	CPU_ZERO(&busy);
	for (unsigned int i = 0; i < rt->nslots; i++) {
		struct urt_slot *s = &rt->slots[i];
		uint64_t steps = atomic_load_explicit(&s->steps, memory_order_relaxed);
		uintptr_t ctl = atomic_load_explicit(&s->owner, memory_order_acquire);
		int cpu = atomic_load_explicit(&s->cpu, memory_order_relaxed);

		m->stalled[i] = false;
		if (!(ctl & SLOT_PARKED)) {
			if (steps != m->stack_steps[i]) {
				if (cpu >= 0 && cpu < CPU_SETSIZE)
					CPU_SET(cpu, &busy);
				moved++;
			} else {
				m->stalled[i] = atomic_load_explicit(&s->cur_task,
								     memory_order_relaxed) != 0;
			}
		}
		m->stack_steps[i] = steps;
	}
	if (!moved || now < m->unstack_after)
		return;
	for (unsigned int i = 0; i < rt->nslots; i++) {
		uintptr_t ctl = atomic_load_explicit(&rt->slots[i].owner, memory_order_acquire);
		struct urt_worker *w = (struct urt_worker *)(ctl & ~SLOT_FLAGS);
		struct urt_mon_wstate st;
		pid_t tid;
		int cpu, to = -1;

		if (!m->stalled[i] || (ctl & SLOT_FLAGS))
			continue;
		/* Blocked in the kernel, as the backend knows without a /proc
		 * read (this runs at every pass while a slot is stuck) */
		if (m->mon && urt__mon_kind(m->mon) != URT_MON_PROC &&
		    urt__mon_snapshot(m->mon, (unsigned int)w->index, &st) == 0 &&
		    st.state == URT_MON_BLOCKED)
			continue;
		tid = __atomic_load_n(&w->tid, __ATOMIC_ACQUIRE);
		if (tid <= 0 || urt__thread_state(m, w, tid, &cpu) != 'R' || cpu < 0 ||
		    cpu >= CPU_SETSIZE)
			continue;
		if (!CPU_ISSET(cpu, &busy)) {
			/* No slot's CPU: the one waited for may be a hog */
			urt__yield_hogs_on(m, cpu);
			continue;
		}
		/* Runnable, on a CPU where another slot runs steps */
		for (int c = 0; c < CPU_SETSIZE && to < 0; c++)
			if (c != cpu && CPU_ISSET(c, &rt->cpus) && !CPU_ISSET(c, &busy))
				to = c;
		if (to < 0)
			return;		/* every CPU has a slot making progress */
		CPU_ZERO(&one);
		CPU_SET(to, &one);
		if (sched_setaffinity(tid, sizeof(one), &one) == 0) {
			sched_setaffinity(tid, sizeof(rt->cpus), &rt->cpus);
			urt__count(&rt->slots[i].unstacks, 1);
		}
		m->unstack_after = now + UNSTACK_COOLDOWN_NS;
		return;
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
	pthread_rwlock_wrlock(&m->poll_lock);
	urt__mon_close(m->mon);
	m->mon = NULL;
	pthread_rwlock_unlock(&m->poll_lock);
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
					ok = urt__mon_register_tid(mon, i, tid) == 0 &&
					     urt__mon_set_wakes(mon, i, &w->wakes) == 0;
			}
			if (ok)
				break;
			urt__mon_close(mon);
		}
		mon = NULL;
		next = next_of[strcmp(next, "bpf") ? URT_MON_PROC : URT_MON_BPF];
	}
	pthread_rwlock_wrlock(&m->poll_lock);
	m->mon = mon;
	urt__poll_notice_reset(m, urt_now());	/* opened with the threshold */
	if (m->polled)
		memset(m->polled, 0, (size_t)m->max_pollers * rt->nworkers * sizeof(*m->polled));
	pthread_rwlock_unlock(&m->poll_lock);
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
	urt__monitor_kick(m);
}

/*
 * The monitor wakes for a few microseconds at a time, often on a machine
 * whose CPUs its workers (or a hog) keep busy. EEVDF lets a woken thread
 * wait for the running one's slice (0.75 ms x (1 + log2 CPUs)) unless its
 * own requested slice is shorter (Linux >= 6.12: sched_attr.sched_runtime
 * of a SCHED_OTHER thread). Ask for the minimum, 100 us, so a handoff is
 * not late by a slice. Older kernels ignore the field: nothing changes.
 */
struct sched_attr_v1 {		/* <linux/sched/types.h> clashes with <sched.h> */
	uint32_t size, sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
};

static void short_slice(void)
{
	struct sched_attr_v1 attr = {
		.size = sizeof(attr),
		.sched_policy = SCHED_OTHER,
		.sched_runtime = 100000,
	};

	errno = 0;
	attr.sched_nice = getpriority(PRIO_PROCESS, 0);
	if (!errno)
		syscall(SYS_sched_setattr, 0, &attr, 0);
}

static void *monitor_main(void *arg)
{
	struct urt_monitor *m = arg;
	struct urt_rt *rt = m->rt;
	struct urt_mon_event ev[MAX_EVENTS];
	int64_t base = rt->cfg.hog_threshold_ns > 0 ? rt->cfg.hog_threshold_ns / 2 : TICK_MAX_NS;
	int64_t tick;
	unsigned int idle_passes = 0;
	char name[16];

	snprintf(name, sizeof(name), "%.10s-mon", rt->cfg.name);
	pthread_setname_np(pthread_self(), name);
	/* Its sleeps are deadlines (the tick backends, the hog tick): no
	 * 50 us default slack on top. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	short_slice();
	urt__spare_add(rt);		/* one warm spare from the start */
	if (base < TICK_MIN_NS)
		base = TICK_MIN_NS;
	if (base > TICK_MAX_NS)
		base = TICK_MAX_NS;
	tick = base;
	while (!atomic_load_explicit(&m->stop, memory_order_acquire)) {
		bool pending = false;
		int n;

		for (unsigned int k = 0; k < rt->nworkers; k++)
			pending |= m->pending[k] != 0;
		/* Back off while every slot is parked; a worker that unparks
		 * kicks us (urt__monitor_unparked) once dozing is set. */
		if (!m->mon || !all_parked(rt) || atomic_load(&m->ndemoted)) {
			idle_passes = 0;
			tick = base;
		} else if (++idle_passes >= TICK_IDLE_PASSES) {
			atomic_store_explicit(&m->dozing, true, memory_order_seq_cst);
			if (all_parked(rt)) {
				tick = tick * 2 > TICK_MAX_NS ? TICK_MAX_NS : tick * 2;
			} else {
				atomic_store(&m->dozing, false);
				idle_passes = 0;
				tick = base;
			}
		}
		if (m->mon) {
			/* While a reported block waits for work, look again soon. */
			n = urt__mon_wait(m->mon, pending && tick > 200000 ? 200000 : tick, ev,
					  MAX_EVENTS);
			atomic_store_explicit(&m->dozing, false, memory_order_relaxed);
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
		urt__check_hogs(m, urt_now());
		check_stacked(m, urt_now());
		urt__check_demoted(m);
		urt__unpin_late(m, urt_now());
		if (m->max_pollers)
			urt__poll_tune(m, urt_now());
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
	m->may_demote = urt__can_restore_nice();
	/* Before the workers start: they unblock the signal if set. */
	rt->hog_signal = m->may_demote && rt->cfg.hog_signal == 0 && urt__hog_signal_install();
	pthread_mutex_init(&m->reg_lock, NULL);
	{
		/* Pollers read-lock it in a loop: a waiting failover() must
		 * make their tryrdlock fail, or it could wait for ever. */
		pthread_rwlockattr_t ra;

		pthread_rwlockattr_init(&ra);
		pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&m->poll_lock, &ra);
		pthread_rwlockattr_destroy(&ra);
	}
	m->hog = calloc(rt->nslots, sizeof(*m->hog));
	m->stack_steps = calloc(rt->nslots, sizeof(*m->stack_steps));
	m->stalled = calloc(rt->nslots, sizeof(*m->stalled));
	m->pending = calloc(rt->nworkers, sizeof(*m->pending));
	m->prio = calloc(rt->nworkers, sizeof(*m->prio));
	m->given = calloc(rt->nworkers, sizeof(*m->given));
	m->procfd = calloc(rt->nworkers, sizeof(*m->procfd));
	{
		struct rlimit nofile;

		m->procfd_budget = getrlimit(RLIMIT_NOFILE, &nofile) == 0 &&
				   nofile.rlim_cur != RLIM_INFINITY ?
				   (unsigned int)(nofile.rlim_cur / 16) : 64;
	}
	if (!m->procfd || !m->hog || !m->pending || !m->prio || !m->given ||
	    !m->stack_steps || !m->stalled) {
		err = -ENOMEM;
		goto fail;
	}
	/* Handoff needs the asymmetric barrier; without it there is no monitor. */
	if (urt__membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED)) {
		err = -errno;
		fprintf(stderr, "urt: monitor: membarrier unavailable (%s): handoff is off\n",
			strerror(errno));
		goto fail;
	}
	/* Linux >= 5.10 with CONFIG_RSEQ; else barrier_on() uses every CPU. */
	m->mb_cpu = urt__membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ) == 0;
	/* At the threshold; urt__poll_tune() moves the notice later while
	 * pollers run. */
	err = urt__mon_open(&m->mon, rt->cfg.monitor, rt->nworkers,
			    rt->cfg.monitor_threshold_ns, m->why, sizeof(m->why));
	if (err) {
		fprintf(stderr, "urt: %s\n", m->why);
		goto fail;
	}
	/* Pollers only where the states are shared memory. */
	if (urt__mon_kind(m->mon) != URT_MON_PROC)
		m->max_pollers = urt__poll_count(rt);
	m->poll_auto = rt->cfg.monitor_poll == URT_MONITOR_POLL_AUTO;
	if (m->max_pollers && !m->may_demote) {
		/* SCHED_IDLE -> SCHED_OTHER needs what a nice 19 -> 0 does
		 * (CAP_SYS_NICE or RLIMIT_NICE): a poller that took a slot
		 * would run it at idle priority. */
		m->max_pollers = 0;
		snprintf(m->why + strlen(m->why), sizeof(m->why) - strlen(m->why),
			 "; no pollers: a thread may not leave SCHED_IDLE here "
			 "(CAP_SYS_NICE or RLIMIT_NICE)");
	}
	if (m->max_pollers) {
		m->polled = calloc((size_t)m->max_pollers * rt->nworkers, sizeof(*m->polled));
		m->cand = calloc((size_t)m->max_pollers * rt->nworkers, sizeof(*m->cand));
		if (!m->polled || !m->cand) {
			urt__mon_close(m->mon);
			err = -ENOMEM;
			goto fail;
		}
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
	free(m->stack_steps);
	free(m->stalled);
	free(m->cand);
	free(m->polled);
	free(m->hog);
	free(m->pending);
	free(m->prio);
	free(m->given);
	free(m->procfd);
	free(m);
	return err;
}

void urt__monitor_stop(struct urt_rt *rt)
{
	struct urt_monitor *m = rt->monitor;

	if (!m)
		return;
	atomic_store_explicit(&m->stop, true, memory_order_release);
	urt__monitor_kick(m);
	pthread_join(m->thread, NULL);
	/* Nobody watches the demoted hogs any more: give them their
	 * priority back now, and the task references. */
	for (unsigned int k = 0; k < rt->nworkers; k++) {
		struct prio *pr = &m->prio[k];
		struct urt_task *drop = NULL;

		urt__spin_lock(&pr->lock);
		if (pr->demoted)
			drop = urt__undemote(m, pr, pr->tid);
		urt__spin_unlock(&pr->lock);
		if (drop)
			urt__task_unref(drop);
	}
}

/* After the workers are gone (they unregistered), so close can detach. */
void urt__monitor_free(struct urt_rt *rt)
{
	struct urt_monitor *m = rt->monitor;

	if (!m)
		return;
	urt__mon_close(m->mon);
	for (unsigned int k = 0; k < rt->nworkers; k++)
		urt__procfd_close(m, &m->procfd[k]);
	pthread_mutex_destroy(&m->reg_lock);
	pthread_rwlock_destroy(&m->poll_lock);
	free(m->stack_steps);
	free(m->stalled);
	free(m->cand);
	free(m->polled);
	free(m->hog);
	free(m->pending);
	free(m->prio);
	free(m->given);
	free(m->procfd);
	free(m);
	rt->monitor = NULL;
}

void urt__monitor_thread_init(struct urt_worker *w)
{
	struct urt_monitor *m = w->rt->monitor;

	if (!m)
		return;
	/* A new thread in this worker struct: nothing demoted, no retire. */
	urt__spin_lock(&m->prio[w->index].lock);
	m->prio[w->index].demoted = false;
	m->prio[w->index].retire = false;
	urt__spin_unlock(&m->prio[w->index].lock);
	pthread_mutex_lock(&m->reg_lock);
	if (m->mon && urt__mon_register(m->mon, (unsigned int)w->index) == 0)
		urt__mon_set_wakes(m->mon, (unsigned int)w->index, &w->wakes);
	pthread_mutex_unlock(&m->reg_lock);
}

void urt__monitor_thread_fini(struct urt_worker *w)
{
	struct urt_monitor *m = w->rt->monitor;

	if (!m)
		return;
	atomic_store(&w->pinned, false);	/* urt__unpin_late: no stale tid */
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
	out->owner_tid = __atomic_load_n(&((struct urt_worker *)(ctl & ~SLOT_FLAGS))->tid,
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
