// SPDX-License-Identifier: MIT
/*
 * poller.c - spare threads that poll the worker states while tasks run
 * and take a stuck slot themselves.
 *
 * The poller (cfg.monitor_poll, kmod and bpf: their worker states are
 * shared memory). Waking a sleeping thread costs tens of microseconds on
 * a virtual machine (the idle vCPU halted; its wake-up is a VM entry;
 * even a futex wake onto a running CPU took ~15 us here), and a handoff
 * by the monitor thread has two on its path: the monitor's, woken by the
 * backend's notice, and the spare's. So up to max_pollers idle spares
 * (one per slot, each on its own CPU when there are several) poll
 * instead of sleeping: while some slot runs tasks they read the states
 * in a loop (a seqcount read each), and when an owner's block passes the
 * threshold with work behind it, one takes that slot itself. No wake-up
 * on the path: the thread that noticed the block runs the slot's next
 * task. The role is refilled by the stuck thread when it comes back as a
 * spare, and by the monitor's next pass (urt__poll_recruit): not by the new
 * owner, whose poke landed the woken spare on its own CPU, where the
 * spare preempted it for up to 500 us (2 slots, 4 spares: p99 550 us).
 *
 * A poller runs as SCHED_IDLE, so it only ever takes CPU time no worker wants,
 * and back at normal priority from a handoff on, whose spin locks a
 * preempted SCHED_IDLE holder would make others wait for. The monitor
 * thread's own handoffs (the backend's notice, hogs) go to it first
 * (spare_take): it sees the slot it is handed within a pass. All slots
 * parked for POLL_IDLE_NS: it goes back to sleeping as a spare, and the
 * first slot to unpark recruits a poller again (io_uring's SQPOLL thread
 * idles the same way).
 *
 * The cost: while tasks run, the CPU time the workers leave idle is
 * spent polling (power, and a hyperthread sibling's speed), and one more
 * idle spare thread is kept (urt__keep_warm) for the next poller. And the
 * kernel no longer sees those CPUs idle: woken threads are placed with
 * no idle scan (its running time is utilization), and a thread preempted
 * elsewhere waits for a tick's balancing instead of being pulled by an
 * idle CPU (Documentation/monitor.md, "What it cannot hide").
 *
 * It is an accelerator, not a second monitor: the backend still reports
 * blocks, a backstop later (notice_ns), for check_blocked() to hand off
 * if the poller got no CPU (whichever comes first moves the slot; the
 * other finds it moved: the CAS in urt__move_slot), and hogs stay the monitor
 * thread's (the poller gets no CPU exactly when a hog and the other slots
 * fill them all). The poll roles are seats (m->poll_seats, npollers): a
 * spare takes a free one in spare_wait; the monitor's tick recruits while
 * slots run and seats are free (a poke can also reach a spare that a
 * handoff took meanwhile).
 */
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "sysmon.h"

static bool set_policy(int policy)
{
	struct sched_param sp = { 0 };

	return pthread_setschedparam(pthread_self(), policy, &sp) == 0;
}

/* A candidate's handoff, by a poll pass. */
static bool poll_move(struct urt_monitor *m, struct poll_cand *c, struct urt_worker *to,
		      int64_t now, int cpu)
{
	struct urt_handoff_note note = {
		.hog = false,
		.polled = true,
		.syscall = c->st.syscall,
		.stuck_ns = now - c->st.since_ns,
		.cpu = cpu,
	};

	/* From the owner the pass saw stuck: the slot may have moved since
	 * (the monitor's backstop, another poller), and taking it from its
	 * new owner would be a handoff of a running thread. */
	urt__seen_task(c->s, &note.seen);
	if (!to)
		return urt__handoff(m->rt, c->s, &m->rt->workers[c->k], &note);
	return urt__move_slot(m->rt, c->s, (uintptr_t)&m->rt->workers[c->k], &note, to);
}

/*
 * One look at every worker's state, by the polling spare w: finds the
 * slots whose owner has been blocked past the threshold with work behind
 * it, and takes one itself (returned): the one whose owner last ran on
 * w's CPU if any (the barrier of the handoff, barrier_on, then
 * interrupts no other CPU). With other pollers about, they take the
 * others; a lone poller hands them to sleeping spares first, their
 * wake-ups under way while it moves its own. NULL: none taken, or w was
 * taken from the spare list meanwhile (a slot is being handed to it:
 * spare_wait finds it). Each seat has its own polled[] and cand[], so
 * pollers pass at the same time: a SCHED_IDLE poller is preempted by
 * anything, and one preempted in a pass under a shared lock kept the
 * others from passing (a kernel thread held a vCPU for 500 us). Two
 * pollers going for one slot: the CAS in urt__move_slot decides.
 */
static struct urt_slot *poll_pass(struct urt_monitor *m, struct urt_worker *w,
				  unsigned int seat)
{
	struct urt_rt *rt = m->rt;
	uint32_t *polled = m->polled + (size_t)seat * rt->nworkers;
	struct poll_cand *cand = m->cand + (size_t)seat * rt->nworkers;
	int64_t now = urt_now();
	unsigned int n = 0, mine = 0;
	bool alone = atomic_load(&m->npollers) == 1;
	int cpu = sched_getcpu();
	struct poll_cand c;

	if (pthread_rwlock_tryrdlock(&m->poll_lock))
		return NULL;	/* failover() under way */
	/* proc's states are /proc reads, not shared memory */
	for (unsigned int k = 0; m->mon && urt__mon_kind(m->mon) != URT_MON_PROC &&
				 k < rt->nworkers; k++) {
		struct urt_mon_wstate st;
		struct urt_slot *s;

		if (urt__mon_snapshot(m->mon, k, &st) || st.state != URT_MON_BLOCKED ||
		    st.seq == polled[k] || now - st.since_ns < rt->cfg.monitor_threshold_ns)
			continue;
		s = urt__running_slot(rt, k);
		if (!s || st.since_ns < m->given[k]) {
			polled[k] = st.seq;	/* parked, a spare: as check_blocked() */
			continue;
		}
		if (!urt__has_work(rt, s))
			continue;
		/* Another CPU's block is its poller's for POLL_GRACE_NS:
		 * taking it from here costs an IPI (barrier_on). */
		if (!alone && atomic_load_explicit(&s->cpu, memory_order_relaxed) != cpu &&
		    now - st.since_ns < rt->cfg.monitor_threshold_ns + POLL_GRACE_NS)
			continue;
		cand[n].k = k;
		cand[n].st = st;
		cand[n++].s = s;
	}
	if (!n) {
		pthread_rwlock_unlock(&m->poll_lock);
		return NULL;
	}
	/* Out of the list first, so no handoff (ours or the monitor's)
	 * picks w for another slot now. Never a slot at SCHED_IDLE (the
	 * monitor starts pollers only where a thread may leave it). */
	if (!set_policy(SCHED_OTHER) || !urt__spare_unlist(rt, w->index)) {
		pthread_rwlock_unlock(&m->poll_lock);
		set_policy(SCHED_IDLE);
		return NULL;
	}
	for (unsigned int i = 0; i < n; i++)
		if (atomic_load_explicit(&cand[i].s->cpu, memory_order_relaxed) == cpu)
			mine = i;
	c = cand[mine];
	polled[c.k] = c.st.seq;	/* ours, moved or not */
	if (alone) {
		/* Their spares are woken where their stuck owners left a CPU
		 * (not here: a spare woken on this CPU, which it takes for an
		 * idle one while w polls, held w off it for ~500 us). */
		for (unsigned int i = 0; i < n; i++) {
			int at = atomic_load_explicit(&cand[i].s->cpu, memory_order_relaxed);

			if (i != mine && poll_move(m, &cand[i], NULL, now, at != cpu ? at : -1))
				polled[cand[i].k] = cand[i].st.seq;
		}
	}
	pthread_rwlock_unlock(&m->poll_lock);
	if (poll_move(m, &c, w, now, -1)) {
		/* The stuck thread is to wake here, next to its old slot, and
		 * not on a CPU where only a poller runs: the kernel takes that
		 * CPU for idle, and the thread, back from its block, preempted
		 * the poller while a second block neared the threshold there
		 * (2 slots, read: p99 95-125 us, 79-93 us pinned). It unpins
		 * itself as a spare (spare_wait). */
		if (cpu >= 0)
			urt__pin_wake(&rt->workers[c.k], cpu);
		return c.s;
	}
	urt__spare_refile(rt, w);
	set_policy(SCHED_IDLE);
	return NULL;
}

/*
 * On demand (URT_MONITOR_POLL_AUTO). Pollers spend CPU time,
 * and they pay off only in a program whose tasks block past the threshold
 * with work queued behind them; one that never does would poll for
 * nothing while its tasks run. So auto polls for POLL_ARM_NS after each
 * handoff of a block (not a hog's: the monitor thread takes those, not
 * the pollers): a program that keeps blocking (100 times a second or
 * more) keeps them; the first block after a quiet spell goes the
 * sleeping way (the backend's notice, the monitor, a spare: ~60 us more
 * here at p50, over 100 us at p99). Go's scheduler spins threads looking
 * for work on the same bet: only while there is some about.
 */
static bool poll_wanted(struct urt_monitor *m, int64_t now)
{
	return !m->poll_auto || now < atomic_load_explicit(&m->poll_until, memory_order_relaxed);
}

void urt__poll_arm(struct urt_monitor *m, int64_t now)
{
	if (m->poll_auto && m->max_pollers)
		atomic_store_explicit(&m->poll_until, now + POLL_ARM_NS, memory_order_relaxed);
}

/* The backend's notice while pollers run: a backstop for when they get
 * no CPU (urt__poll_tune). */
static int64_t late_notice(const struct urt_rt *rt)
{
	int64_t t = rt->cfg.monitor_threshold_ns;

	return t + (t > POLL_BACKSTOP_NS ? t : POLL_BACKSTOP_NS);
}

/*
 * Pollers: cfg.monitor_poll of them, or on demand up to one per slot and
 * CPU (POLL_AUTO_MAX: a big machine does not poll on dozens of CPUs at
 * once; blocks on CPUs without one cost its poller an IPI, barrier_on);
 * more than one per slot would never find a block to take; <= 64
 * (poll_seats' bits).
 */
unsigned int urt__poll_count(const struct urt_rt *rt)
{
	unsigned int cpus = (unsigned int)CPU_COUNT(&rt->cpus);
	unsigned int n = (unsigned int)rt->cfg.monitor_poll;

	if (rt->cfg.monitor_poll == URT_MONITOR_POLL_OFF)
		return 0;
	if (rt->cfg.monitor_poll == URT_MONITOR_POLL_AUTO)
		n = cpus < POLL_AUTO_MAX ? (cpus ? cpus : 1) : POLL_AUTO_MAX;
	if (n > rt->nslots)
		n = rt->nslots;
	return n < 64 ? n : 64;
}

void urt__poll_notice_reset(struct urt_monitor *m, int64_t now)
{
	atomic_store(&m->notice_late, false);
	atomic_store(&m->notice_at, now);
}

/*
 * The monitor thread's pass: the backend's notice, and the seats.
 *
 * While pollers run, the backend's notice is a backstop for when they get
 * no CPU (late_notice): they hand off at the threshold, and a kernel timer
 * firing then stops the poller on that CPU for a timer interrupt (~30 us
 * on this VM) just when it is needed; with the notice at the threshold,
 * detect_read on 2 slots had p99 ~200 us instead of ~90. Pollers asked
 * for (cfg.monitor_poll N) keep it there. On demand it is there from the
 * first pass that finds a poller running after they are wanted, until
 * they are no longer wanted: not before (a block would wait for the
 * backstop while the first poller starts), and not only while one runs
 * (with 2 slots both pollers take the two slots at once and the seats
 * stay empty until the stuck threads come back; the notice back at the
 * threshold then made detect_sleep 2 p99 107 us vs 92 us for pollers
 * asked for). Back at the threshold, pollers go on for one late notice
 * (poll_done): blocks begun before have the late one.
 *
 * Seats free while slots run and pollers are wanted (a poller took a
 * slot, a poke went to a spare that a handoff took, or none was idle):
 * fill them, and keep one idle spare besides.
 */
void urt__poll_tune(struct urt_monitor *m, int64_t now)
{
	struct urt_rt *rt = m->rt;
	bool want = poll_wanted(m, now), ran = atomic_load(&m->npollers) > 0;
	bool late;
	int64_t t = rt->cfg.monitor_threshold_ns;

	m->poll_seen = want && (m->poll_seen || ran);
	late = (!m->poll_auto || m->poll_seen) && m->mon && urt__mon_kind(m->mon) != URT_MON_PROC;
	if (m->mon && late != atomic_load(&m->notice_late) &&
	    urt__mon_set_notice(m->mon, late ? late_notice(rt) : t) == 0) {
		if (late)
			atomic_store(&m->notice_late, true);
		else
			urt__poll_notice_reset(m, now);
	}
	if (want && urt__unparked(rt)) {
		if (atomic_load(&m->poll_dozing))
			atomic_store(&m->poll_dozing, false);
		urt__poll_recruit(m, true, -1);
		urt__keep_warm(rt);
	}
}

/* Auto, none wanted: stop once every block under way has the threshold's
 * notice (urt__poll_tune). */
static bool poll_done(struct urt_monitor *m, int64_t now)
{
	return !poll_wanted(m, now) && !atomic_load(&m->notice_late) &&
	       now - atomic_load(&m->notice_at) > late_notice(m->rt);
}

/* Why the poll loop ended. */
enum poll_end { POLL_TOOK, POLL_HANDED, POLL_DOZE, POLL_DONE, POLL_STOP };

static enum poll_end poll_loop(struct urt_monitor *m, struct urt_worker *w,
			       unsigned int seat, struct urt_slot **took)
{
	struct urt_rt *rt = m->rt;
	int64_t idle_since = 0, yielded = urt_now();

	for (;;) {
		int64_t now = urt_now();

		/* EEVDF gives even a SCHED_IDLE thread a whole slice once it
		 * is picked, ended only by a tick (4 ms at HZ=250): hand the
		 * CPU back to whoever else wants it every POLL_YIELD_NS. */
		if (now - yielded > POLL_YIELD_NS) {
			sched_yield();
			yielded = now = urt_now();
		}
		atomic_store_explicit(&w->poll_at, now, memory_order_relaxed);
		if (atomic_load_explicit(&w->handed, memory_order_acquire))
			return POLL_HANDED;
		if (atomic_load_explicit(&m->stop, memory_order_acquire) ||
		    atomic_load_explicit(&rt->stop, memory_order_acquire))
			return POLL_STOP;
		/* Not all_parked(): the slots' owner words share a cache line
		 * with what their owners write at every step; reading them
		 * in a loop made chan_pingpong 3x slower. idle.state changes
		 * only when a slot parks or unparks. */
		if (urt__unparked(rt))
			idle_since = 0;
		else if (!idle_since)
			idle_since = now;
		else if (now - idle_since > POLL_IDLE_NS)
			return POLL_DOZE;
		if (poll_done(m, now))
			return POLL_DONE;
		*took = poll_pass(m, w, seat);
		if (*took)
			return POLL_TOOK;
		/* A pass per POLL_PERIOD_NS is plenty against a 50 us
		 * threshold, and each pass pulls the states' cache lines
		 * away from the kernel that writes them at every switch. */
		while (urt_now() - now < POLL_PERIOD_NS)
			__builtin_ia32_pause();
	}
}

static void poll_name(struct urt_worker *w, bool polling)
{
	char name[16];

	if (polling)
		snprintf(name, sizeof(name), "%.10s-poll", w->rt->cfg.name);
	else
		snprintf(name, sizeof(name), "%.10s-w%d", w->rt->cfg.name, w->index);
	pthread_setname_np(pthread_self(), name);
}

/*
 * Gets a spare to take a free poll role: pokes an idle one (spare_wait
 * tries the role at every wake-up), woken on a CPU other than avoid_cpu
 * if >= 0, or starts one if may_start (the monitor thread); else kicks
 * the monitor to start one (a thread start costs a worker more than the
 * kick).
 */
void urt__poll_recruit(struct urt_monitor *m, bool may_start, int avoid_cpu)
{
	struct urt_rt *rt = m->rt;
	bool room = false;
	int pick = -1;

	if (atomic_load_explicit(&m->npollers, memory_order_acquire) >= m->max_pollers ||
	    atomic_load_explicit(&m->stop, memory_order_acquire) || !poll_wanted(m, urt_now()))
		return;
	urt__spin_lock(&rt->spare_lock);
	for (int i = rt->nspares - 1; i >= 0 && pick < 0; i--)
		if (!atomic_load_explicit(&rt->workers[rt->spares[i]].polling,
					  memory_order_relaxed))
			pick = rt->spares[i];
	for (unsigned int i = rt->nslots; i < rt->nworkers && pick < 0 && !room; i++)
		room = !rt->workers[i].started || rt->workers[i].exited;
	urt__spin_unlock(&rt->spare_lock);
	if (pick >= 0 && avoid_cpu >= 0) {
		for (int c = 0; c < CPU_SETSIZE; c++) {
			if (c != avoid_cpu && CPU_ISSET(c, &rt->cpus)) {
				urt__pin_wake(&rt->workers[pick], c);
				break;
			}
		}
	}
	if (pick >= 0)
		urt__spare_poke(&rt->workers[pick]);
	else if (may_start)
		urt__spare_add(rt);
	else if (room)
		urt__monitor_kick(m);	/* a thread to start, and none at hand */
}

/*
 * With more than one poller, poller j runs on the j-th CPU of the
 * runtime's mask (mod its size), so they spread: the kernel balances
 * SCHED_IDLE threads little, and two on one CPU leave a second slot's
 * block to a wake-up while the other CPU idles. A lone poller goes
 * wherever there is idle time. -1: no pinning.
 */
static int poll_cpu(const struct urt_monitor *m, unsigned int j)
{
	int n = CPU_COUNT(&m->rt->cpus);

	if (m->max_pollers < 2 || !n)
		return -1;
	j %= (unsigned int)n;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &m->rt->cpus) && !j--)
			return c;
	return -1;
}

/*
 * Takes a poll role and its seat if fewer than max_pollers spares hold
 * one: -1 if not. The thread moves to the seat's CPU.
 */
static int poll_role_take(struct urt_monitor *m, struct urt_worker *w)
{
	unsigned long seats = atomic_load_explicit(&m->poll_seats, memory_order_acquire);
	unsigned int j;
	cpu_set_t one;
	int cpu;

	do {
		for (j = 0; j < m->max_pollers && (seats & (1UL << j)); j++)
			;
		if (j == m->max_pollers)
			return -1;
	} while (!atomic_compare_exchange_weak(&m->poll_seats, &seats, seats | (1UL << j)));
	atomic_fetch_add(&m->npollers, 1);
	atomic_store_explicit(&w->polling, true, memory_order_relaxed);
	cpu = poll_cpu(m, j);
	if (cpu >= 0) {
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		sched_setaffinity(0, sizeof(one), &one);
	}
	return (int)j;
}

static void poll_role_drop(struct urt_monitor *m, struct urt_worker *w, int j)
{
	if (poll_cpu(m, (unsigned int)j) >= 0)
		sched_setaffinity(0, sizeof(m->rt->cpus), &m->rt->cpus);
	atomic_store_explicit(&w->polling, false, memory_order_relaxed);
	atomic_fetch_sub(&m->npollers, 1);
	atomic_fetch_and(&m->poll_seats, ~(1UL << j));
}

struct urt_slot *urt__monitor_poll(struct urt_worker *w)
{
	struct urt_monitor *m = w->rt->monitor;
	struct urt_slot *took = NULL;
	enum poll_end end;
	int seat;

	if (!m || !m->max_pollers || atomic_load_explicit(&m->stop, memory_order_acquire) ||
	    atomic_load_explicit(&m->poll_dozing, memory_order_acquire) ||
	    !poll_wanted(m, urt_now()))
		return NULL;
	seat = poll_role_take(m, w);
	if (seat < 0)
		return NULL;
	urt__poll_recruit(m, false, -1);		/* the next one, up to max_pollers */
	poll_name(w, true);
	set_policy(SCHED_IDLE);
	end = poll_loop(m, w, (unsigned int)seat, &took);
	if (end != POLL_TOOK)
		set_policy(SCHED_OTHER);	/* else poll_pass did */
	poll_name(w, false);
	poll_role_drop(m, w, seat);
	if (end == POLL_TOOK && m->max_pollers == 1) {
		/* The lone poller took a slot: poke a spare to poll now (the
		 * monitor's next pass is up to a tick away), woken on another
		 * CPU: on this one, which it takes for idle, it held the new
		 * owner off for ~500 us (2 slots: p99 590 us). With more
		 * pollers, the others cover until the seat is refilled: a
		 * spare woken then landed on a CPU where a new owner ran just
		 * as well (2 slots, 4 spares: p99 550 us). */
		urt__poll_recruit(m, false, sched_getcpu());
	} else if (end == POLL_DOZE) {
		/* Role given up, then say so, then look once more: a slot
		 * that unparks after this look sees poll_dozing and
		 * recruits (urt__monitor_unparked); one that unparked
		 * before it is seen here. */
		atomic_store(&m->poll_dozing, true);
		if (urt__unparked(w->rt) && atomic_exchange(&m->poll_dozing, false))
			urt__poll_recruit(m, false, -1);
	}
	return took;
}
