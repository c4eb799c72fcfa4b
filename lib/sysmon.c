// SPDX-License-Identifier: MIT
/*
 * sysmon.c - the monitor thread and slot handoff (Go's sysmon + handoffp).
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
 * Handoff protocol (rt.h states the invariants):
 *   1. take a spare thread P (a polling one, an idle one, or start one
 *      within the budget of nslots + max_spares threads), or P is the
 *      polling spare that found the block (urt__monitor_poll);
 *   2. CAS slot->owner from T (not parked) to P: fails if T parked or the
 *      slot moved meanwhile -- then give P back;
 *   3. a full barrier on T's CPU (barrier_on: membarrier), so T either
 *      saw the new owner in slot_enter or published busy = 1 before
 *      reading it;
 *   4. wait until T->busy == 0: T is outside its owner-only section;
 *   5. give the slot to P (handed + futex wake), or P runs it (poller).
 * T keeps running its current task step (it is stuck in it); at its next
 * slot_enter it finds it lost the slot and becomes a spare itself. So a
 * slot never has two owners, no queued task moves or gets lost, and the
 * number of threads running tasks exceeds the slot count only while a
 * stuck thread finishes the step it was stuck in.
 *
 * A hog is demoted. A thread blocked in the kernel needs no CPU, but one
 * that spins through its step competes with the spare that took its slot:
 * on a machine with as many CPUs as slots the queued tasks would get a
 * fraction of a CPU. So a hog's thread is set to nice 19 right after its
 * slot moved (its step then runs on what the slots leave over, as a
 * multi-level feedback queue favours short jobs), and restores its own
 * nice value at its first scheduling point (slot_enter finding the slot
 * gone: urt__monitor_slot_lost). A thread that may not lower its nice
 * value again (no CAP_SYS_NICE, RLIMIT_NICE too small) retires instead of
 * becoming a spare; the next handoff starts a fresh one. Per worker, a
 * generation counter under prio[].lock makes the demotion and the restore
 * see each other: the monitor demotes only if T has not yet passed its
 * restore point since the handoff, so no spare ever runs demoted.
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

#include "monitor.h"
#include "rt.h"
#include "trace.h"

#define MAX_EVENTS	32

static void poll_recruit(struct urt_monitor *m, bool may_start, int avoid_cpu);

struct hog_sample {
	uint64_t steps;		/* slot->steps when first seen unchanged */
	uint64_t task;
	int64_t since;
	uintptr_t owner;	/* slot->owner then */
	bool not_started;	/* owner changed, no step since: cur_task is the old owner's */
	int64_t cpu_ns;		/* the owner thread's CPU time at cpu_at; -1: not read */
	int64_t cpu_at;
};

/* Per worker: the demotion of a hog's thread (see the top of this file). */
struct prio {
	urt_spin lock;
	uint32_t lost;		/* slot losses the thread has noticed */
	bool demoted;		/* set to nice 19 by the monitor */
	bool retire;		/* could not restore: exit instead of sparing */
	int nice;		/* its nice value before */
	pid_t tid;
	struct urt_task *task;	/* demoted: the hog task (a reference) */
};

#define HOG_NICE	19
#define TICK_MIN_NS	100000LL	/* the hog tick: >= 100 us */
#define TICK_MAX_NS	10000000LL	/* <= 10 ms, and when idle */
#define TICK_IDLE_PASSES 20		/* all parked this long: back off */
#define UNSTACK_COOLDOWN_NS 1000000LL	/* check_stacked(): one move per */
#define UNPIN_LATE_NS	1000000LL	/* unpin_late(): a pin older than this */
/* The poller: see urt__monitor_poll() */
#define POLL_IDLE_NS	20000000LL	/* all parked this long: doze */
#define POLL_YIELD_NS	10000LL		/* spin at most this long between yields */
#define POLL_PERIOD_NS	1000LL		/* a pass per */
#define POLL_GRACE_NS	20000LL		/* another CPU's block: its poller's first */
#define POLL_FRESH_NS	20000LL		/* a poller that made a pass this recently runs */
#define POLL_BACKSTOP_NS 1000000LL	/* the backend's notice: this much (or a
					 * threshold, if longer) later */

struct urt_monitor {
	struct urt_rt *rt;
	struct urt_mon *mon;		/* NULL: progress counters only */
	char why[256];
	pthread_t thread;
	atomic_bool stop;
	struct hog_sample *hog;		/* per slot */
	struct prio *prio;		/* per worker */
	struct procfd {			/* per worker: its thread's /proc files */
		urt_spin lock;
		pid_t tid;		/* the thread they are for; 0: none */
		int stat, sys;		/* task/TID/stat, task/TID/syscall */
	} *procfd;
	atomic_uint procfd_open;	/* files kept open, at most procfd_budget */
	unsigned int procfd_budget;
	uint32_t *pending;		/* per worker: seq of a block past threshold, 0 none */
	_Atomic int64_t *given;		/* per worker: when the monitor last gave it a slot */
	atomic_bool dozing;		/* every slot parked: the tick backed off */
	bool may_demote;		/* hogs' threads can get their priority back */
	bool mb_cpu;			/* membarrier to one CPU works (barrier_on) */
	atomic_uint ndemoted;
	/* mon and why change only in failover(), under reg_lock; workers
	 * (un)register under it. The monitor thread reads mon unlocked. */
	pthread_mutex_t reg_lock;
	atomic_bool inject_failure;
	_Atomic int64_t spare_started;	/* when a spare was last started */
	/* The pollers (cfg.monitor_poll): see urt__monitor_poll(). They
	 * read mon under poll_lock (shared); failover() changes it holding
	 * the lock exclusively. */
	unsigned int max_pollers;	/* 0: none (not asked for, or proc); <= 64 */
	atomic_uint npollers;		/* spares polling now (worker->polling) */
	atomic_ulong poll_seats;	/* bit j: a poller sits on seat j (poll_cpu) */
	pthread_rwlock_t poll_lock;
	atomic_bool poll_dozing;	/* all parked: none polls until one unparks */
	/* per seat, per worker: block seq that seat's poller is done with */
	uint32_t *polled;
	/* check_stacked(), per slot: steps at the last pass; ran none since */
	uint64_t *stack_steps;
	bool *stalled;
	int64_t unstack_after;
	struct poll_cand {		/* per seat, per worker: a poll pass's handoffs */
		unsigned int k;
		struct urt_mon_wstate st;
		struct urt_slot *s;
	} *cand;
};

/* Ends the monitor thread's wait now. */
static void monitor_kick(struct urt_monitor *m)
{
	pthread_mutex_lock(&m->reg_lock);
	if (m->mon)
		urt__mon_kick(m->mon);
	pthread_mutex_unlock(&m->reg_lock);
}

static int membarrier(int cmd)
{
	return (int)syscall(SYS_membarrier, cmd, 0, 0);
}

static void procfd_close(struct urt_monitor *m, struct procfd *pf)
{
	if (!pf->tid)
		return;
	close(pf->stat);
	close(pf->sys);
	pf->tid = 0;
	atomic_fetch_sub(&m->procfd_open, 2);
}

/*
 * Under pf->lock: pf's files are thread tid's. They stay open between
 * uses (an open costs more than the reads: p50 7.5 vs ~1 us on the
 * handoff path here) while the runtime keeps fewer than procfd_budget
 * open, a sixteenth of RLIMIT_NOFILE: the process's fds are the
 * application's. A worker struct gets a new thread when a spare exits
 * and another starts; a file of a thread that exited reads ESRCH, never
 * another thread's. procfd_done() after the reads.
 */
static bool procfd_for(struct urt_monitor *m, struct procfd *pf, pid_t tid)
{
	char path[64];
	int st, sys;

	if (pf->tid == tid)
		return true;
	procfd_close(m, pf);
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	st = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	sys = open(path, O_RDONLY | O_CLOEXEC);
	if (st < 0 || sys < 0) {
		if (st >= 0)
			close(st);
		if (sys >= 0)
			close(sys);
		return false;
	}
	pf->stat = st;
	pf->sys = sys;
	pf->tid = tid;
	atomic_fetch_add(&m->procfd_open, 2);
	return true;
}

static void procfd_done(struct urt_monitor *m, struct procfd *pf)
{
	if (atomic_load(&m->procfd_open) > m->procfd_budget)
		procfd_close(m, pf);
}

/*
 * Was the thread off its CPU at some moment during this call? Its
 * /proc syscall file answers "running" unless the kernel found it
 * sleeping and not on a CPU (wait_task_inactive, under its run queue's
 * lock) both before and after reading its registers.
 */
static bool thread_was_off_cpu(int fd)
{
	char buf[16];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	return n > 0 && (buf[0] == '-' || (buf[0] >= '0' && buf[0] <= '9'));
}

/*
 * The state letter of worker t's thread (tid: its tid as the caller read
 * it) from its /proc stat and, if cpu, the CPU it last ran on; -1 if gone
 * or unreadable.
 */
static int thread_state(struct urt_monitor *m, struct urt_worker *t, pid_t tid, int *cpu)
{
	struct procfd *pf = &m->procfd[t->index];
	int c = -1;

	urt__spin_lock(&pf->lock);
	if (procfd_for(m, pf, tid))
		c = urt__proc_task_state(pf->stat, cpu);
	procfd_done(m, pf);
	urt__spin_unlock(&pf->lock);
	return c;
}

/*
 * Step 3 of the handoff protocol: a full barrier wherever T may be running
 * user code, after the CAS. The plain membarrier interrupts every CPU
 * that runs a thread of ours; on a VM each such IPI costs ~15 us (here,
 * when a poller or another slot's owner runs on the other CPU), on the
 * path of every handoff. So, read after the CAS from the kernel's own
 * records (never from the backend's state, which may have missed a
 * switch):
 *   - T was off its CPU at some moment (its /proc syscall file): then its
 *     next switch-in, a full barrier, comes after the CAS: nothing to do
 *     (a blocked T, the common case);
 *   - else T's CPU (task_cpu in its /proc stat), and the barrier to that
 *     CPU alone (the RSEQ membarrier takes a CPU, and its IPI is a full
 *     barrier too; the kernel skips it unless a thread of ours runs
 *     there). If T runs user code now, the kernel recorded that CPU before
 *     switching T in, and that switch-in's full barrier put the record in
 *     memory before any load of T's that could still miss the CAS: the
 *     read sees it. If T does not run now, its next switch-in is a full
 *     barrier after the CAS;
 *   - any failure: the barrier on every CPU.
 */
static void barrier_on(struct urt_monitor *m, struct urt_worker *t)
{
	pid_t tid = __atomic_load_n(&t->tid, __ATOMIC_ACQUIRE);
	struct procfd *pf;
	bool off = false;
	int cpu = -1;

	/* The CAS before the reads (x86: the CAS is one already). TSan has
	 * no fences, and does not see the kernel's side anyway. */
#ifndef URT_TSAN
	atomic_thread_fence(memory_order_seq_cst);
#endif
	if (m && tid > 0) {
		pf = &m->procfd[t->index];
		urt__spin_lock(&pf->lock);
		if (procfd_for(m, pf, tid)) {
			off = thread_was_off_cpu(pf->sys);
			if (!off && m->mb_cpu && urt__proc_task_state(pf->stat, &cpu) < 0)
				cpu = -1;
		}
		procfd_done(m, pf);
		urt__spin_unlock(&pf->lock);
		if (off)
			return;
		if (cpu >= 0 && syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ,
					MEMBARRIER_CMD_FLAG_CPU, cpu) == 0)
			return;
	}
	membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
}

/*
 * Is there work a spare could run if it got s? s's own queue, the
 * injection queue, or another slot's ring holding more than the task its
 * owner runs next: the spare steals half of it (as Go hands off a P when
 * there is global work). Without the last, a slot stuck while its
 * neighbour took the whole injected batch would leave that batch to one
 * thread.
 */
static bool has_work(struct urt_rt *rt, struct urt_slot *s)
{
	if (atomic_load_explicit(&s->lifo, memory_order_relaxed) || urt__lq_len(&s->q) ||
	    !urt__inject_empty(&rt->inject))
		return true;
	for (unsigned int i = 0; i < rt->nslots; i++)
		if (&rt->slots[i] != s && urt__lq_len(&rt->slots[i].q) >= 2)
			return true;
	return false;
}

/*
 * CPU time of thread tid of this process in ns, exact to the call (the
 * kernel's per-thread CPU clock, the id pthread_getcpuclockid() builds:
 * CPUCLOCK_SCHED | CPUCLOCK_PERTHREAD), or -1 once the thread is gone.
 */
static int64_t thread_cpu_ns(pid_t tid)
{
	clockid_t id = (clockid_t)((~(unsigned int)tid << 3) | 6u);
	struct timespec ts;

	if (clock_gettime(id, &ts))
		return -1;
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}


static bool spare_unlist(struct urt_rt *rt, int i)
{
	bool was;

	urt__spin_lock(&rt->spare_lock);
	was = urt__spare_unlist_locked(rt, i);
	urt__spin_unlock(&rt->spare_lock);
	return was;
}

static void spare_refile(struct urt_rt *rt, struct urt_worker *p)
{
	urt__spin_lock(&rt->spare_lock);
	rt->spares[rt->nspares++] = p->index;
	urt__spin_unlock(&rt->spare_lock);
}

/*
 * An idle spare for a handoff, best first: a polling one that is running
 * (it sees the slot it is handed within a poll pass, no wake-up on the
 * way: a wake-up of a sleeping thread costs tens of microseconds on a
 * VM, see urt__monitor_poll); a sleeping one (it goes where the kernel
 * finds room); a polling one that made no pass lately: it has no CPU (a
 * hog, or a busy worker, runs where it sits), so it is set back to normal
 * priority and the whole mask here, or it would see the slot only when
 * that CPU frees up.
 */
static int spare_rank(const struct urt_worker *c, int64_t now)
{
	if (!atomic_load_explicit(&c->polling, memory_order_relaxed))
		return 1;
	return now - atomic_load_explicit(&c->poll_at, memory_order_relaxed) < POLL_FRESH_NS ?
	       0 : 2;
}

static struct urt_worker *spare_take(struct urt_rt *rt)
{
	struct urt_worker *p = NULL;
	int64_t now = urt_now();
	int best = -1, rank = 3;

	urt__spin_lock(&rt->spare_lock);
	for (int i = rt->nspares - 1; i >= 0 && rank; i--) {
		int r = spare_rank(&rt->workers[rt->spares[i]], now);

		if (r < rank) {
			rank = r;
			best = i;
		}
	}
	if (best >= 0) {
		p = &rt->workers[rt->spares[best]];
		rt->spares[best] = rt->spares[--rt->nspares];
	}
	urt__spin_unlock(&rt->spare_lock);
	if (rank == 2) {
		struct sched_param sp = { 0 };

		pthread_setschedparam(p->thread, SCHED_OTHER, &sp);
		sched_setaffinity(__atomic_load_n(&p->tid, __ATOMIC_ACQUIRE), sizeof(rt->cpus),
				  &rt->cpus);
	}
	return p;
}

/*
 * Sleeping thread p (a spare, or a stuck one whose slot moved) is to wake
 * on cpu: pinned there for the wake-up, it unpins itself first thing as a
 * spare (spare_wait).
 */
static void pin_wake(struct urt_worker *p, int cpu)
{
	cpu_set_t one;

	if (cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &p->rt->cpus))
		return;		/* no mask to go back to, or not ours */
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(__atomic_load_n(&p->tid, __ATOMIC_ACQUIRE), sizeof(one), &one) == 0) {
		atomic_store_explicit(&p->pinned_at, urt_now(), memory_order_relaxed);
		atomic_store_explicit(&p->pinned, true, memory_order_release);
	}
}

/*
 * A stuck thread pinned for its wake-up (poll_pass) may go on with a long
 * step once back from its block, on one CPU with the slot it lost while
 * another CPU may be free; it unpins itself only as a spare. The
 * monitor's pass unpins a thread pinned for longer than UNPIN_LATE_NS
 * (a_stuck_thread_pinned_for_its_wake_up_is_unpinned_in_a_long_step); a
 * spare woken meanwhile may lose a fresh pin to it, which only moves where
 * it runs. A thread clears its pin before it exits (thread_fini), so the
 * tid is its own.
 */
static void unpin_late(struct urt_monitor *m, int64_t now)
{
	struct urt_rt *rt = m->rt;

	for (unsigned int k = 0; k < rt->nworkers; k++) {
		struct urt_worker *w = &rt->workers[k];

		if (atomic_load_explicit(&w->pinned, memory_order_acquire) &&
		    now - atomic_load_explicit(&w->pinned_at, memory_order_relaxed) >
		    UNPIN_LATE_NS && atomic_exchange(&w->pinned, false))
			sched_setaffinity(__atomic_load_n(&w->tid, __ATOMIC_ACQUIRE),
					  sizeof(rt->cpus), &rt->cpus);
	}
}

/* Wakes spare p to look at what changed (spare_wait). */
static void spare_poke(struct urt_worker *p)
{
	atomic_store_explicit(&p->spare_word, 1, memory_order_release);
	urt__futex_wake(&p->spare_word, 1);
}

static void spare_give(struct urt_worker *p, struct urt_slot *s)
{
	atomic_store_explicit(&p->handed, s, memory_order_release);
	spare_poke(p);
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

	if (!p || urt__spare_spawn(p))
		return false;
	if (rt->monitor)
		rt->monitor->spare_started = urt_now();
	return true;
}

/*
 * URT_HOG_SIGNAL (urt__hog_yield) is the process's: installed once, at the
 * first runtime that wants it, only if nobody handles the signal; never
 * taken back (its handler is harmless: one yield). The application may
 * install its own later: then the monitor sends nothing.
 */
static bool hog_signal_ours(void)
{
	struct sigaction sa;

	return sigaction(URT_HOG_SIGNAL, NULL, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) &&
	       sa.sa_handler == urt__hog_yield;
}

static bool hog_signal_install(void)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct sigaction sa, old;
	bool ok;

	pthread_mutex_lock(&lock);
	ok = hog_signal_ours();
	if (!ok && sigaction(URT_HOG_SIGNAL, NULL, &old) == 0 &&
	    !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = urt__hog_yield;
		/* SA_ONSTACK: a worker's alternate stack, not a fiber's */
		sa.sa_flags = SA_RESTART | SA_ONSTACK;
		sigemptyset(&sa.sa_mask);
		ok = sigaction(URT_HOG_SIGNAL, &sa, NULL) == 0;
	}
	pthread_mutex_unlock(&lock);
	return ok;
}

/*
 * The hog T lost its slot s: set its thread to nice HOG_NICE unless it
 * already noticed the loss (lost moved past gen): then it is on its way to
 * being a spare and must keep its priority. Holds a reference to the hog
 * task, whose step's end (RUNNING clear) the monitor watches: the thread
 * gets its priority back then, whether or not it reaches slot_enter soon
 * (a task that completes wakes its joiner first, and a demoted thread on
 * a busy machine would take long to get there).
 */
static void demote(struct urt_monitor *m, struct urt_worker *t, uint32_t gen,
		   struct urt_task *task)
{
	struct prio *pr = &m->prio[t->index];
	pid_t tid = __atomic_load_n(&t->tid, __ATOMIC_ACQUIRE);
	bool demoted = false;
	int nice;

	if (tid <= 0) {
		urt__task_unref(task);
		return;
	}
	urt__spin_lock(&pr->lock);
	if (pr->lost == gen && !pr->demoted) {
		errno = 0;
		nice = getpriority(PRIO_PROCESS, (id_t)tid);
		if (!errno && nice < HOG_NICE &&
		    setpriority(PRIO_PROCESS, (id_t)tid, HOG_NICE) == 0) {
			demoted = true;
			pr->nice = nice;
			pr->tid = tid;
			pr->demoted = true;
			pr->task = task;
			task = NULL;
			atomic_fetch_add(&m->ndemoted, 1);
		}
	}
	urt__spin_unlock(&pr->lock);
	/* Now, not under the lock the hog's thread takes at its next step */
	if (demoted && m->rt->hog_signal && hog_signal_ours())
		syscall(SYS_tgkill, getpid(), tid, URT_HOG_SIGNAL);
	if (task)
		urt__task_unref(task);
}

/* Under pr->lock: gives a demoted thread its nice value back (tid: that
 * thread, 0: the caller); returns the task reference to drop. */
static struct urt_task *undemote(struct urt_monitor *m, struct prio *pr, pid_t tid)
{
	struct urt_task *task = pr->task;

	if (setpriority(PRIO_PROCESS, (id_t)tid, pr->nice))
		pr->retire = true;	/* EPERM: privilege dropped since start */
	pr->demoted = false;
	pr->task = NULL;
	atomic_fetch_sub(&m->ndemoted, 1);
	return task;
}

/* Each pass: demoted threads whose hog step ended get their priority back. */
static void check_demoted(struct urt_monitor *m)
{
	struct urt_rt *rt = m->rt;

	if (!atomic_load_explicit(&m->ndemoted, memory_order_relaxed))
		return;
	for (unsigned int k = 0; k < rt->nworkers; k++) {
		struct prio *pr = &m->prio[k];
		struct urt_task *drop = NULL;

		urt__spin_lock(&pr->lock);
		if (pr->demoted &&
		    !(atomic_load_explicit(&pr->task->state, memory_order_acquire) & TS_RUNNING))
			drop = undemote(m, pr, pr->tid);
		urt__spin_unlock(&pr->lock);
		if (drop)
			urt__task_unref(drop);
	}
}

/*
 * Demote hogs only where their threads can be given their priority back:
 * lowering a nice value needs CAP_SYS_NICE or an RLIMIT_NICE of 20 - nice.
 * An unprivileged process does not demote (its hogs share the CPU fairly):
 * a thread stuck at nice 19 would crawl to its next scheduling point on a
 * busy machine, holding a place in the thread budget that the next
 * handoff needs.
 */
static bool can_restore_nice(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	struct rlimit rl;
	int nice;

	if (syscall(SYS_capget, &hdr, data) == 0 &&
	    (data[CAP_TO_INDEX(CAP_SYS_NICE)].effective & CAP_TO_MASK(CAP_SYS_NICE)))
		return true;
	errno = 0;
	nice = getpriority(PRIO_PROCESS, 0);
	return !errno && getrlimit(RLIMIT_NICE, &rl) == 0 &&
	       (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= (rlim_t)(20 - nice));
}

/*
 * Steps 2-4 of the protocol (top of this file): moves s from its owner
 * ctl (read before p was chosen) to p, an idle spare out of the list or
 * the polling spare itself. False if the slot parked or moved meanwhile;
 * p is then the caller's to file again.
 */
static bool move_slot(struct urt_rt *rt, struct urt_slot *s, uintptr_t ctl,
		      const struct urt_handoff_note *note, struct urt_worker *p)
{
	struct urt_monitor *m = rt->monitor;
	struct urt_worker *old = (struct urt_worker *)ctl;
	struct urt_task *hog = NULL;
	uint32_t gen = 0;

	if (ctl & SLOT_PARKED)
		return false;
	if (m && m->may_demote && note && note->hog && note->seen.id) {
		/* Before the CAS: T notices a loss only after it; and the
		 * spare overwrites s->cur as soon as it runs. */
		hog = atomic_load_explicit(&s->cur, memory_order_acquire);
		if (hog && !urt__task_tryref(hog))
			hog = NULL;
		if (hog && atomic_load_explicit(&hog->id, memory_order_acquire) != note->seen.id) {
			urt__task_unref(hog);	/* its step ended meanwhile */
			hog = NULL;
		}
		urt__spin_lock(&m->prio[old->index].lock);
		gen = m->prio[old->index].lost;
		urt__spin_unlock(&m->prio[old->index].lock);
	}
	if (!atomic_compare_exchange_strong(&s->owner, &ctl, (uintptr_t)p)) {
		if (hog)
			urt__task_unref(hog);
		return false;
	}
	barrier_on(m, old);
	while (atomic_load_explicit(&old->busy, memory_order_acquire))
		sched_yield();
	/* Account before the spare runs: whoever sees its work sees these. */
	urt__count(&s->handoffs, 1);
	if (note) {
		urt__count(note->hog ? &s->hogs : &s->blocks_seen, 1);
		if (note->polled)
			urt__count(&s->polled, 1);
		record_handoff(s, &note->seen, note->syscall, note->stuck_ns);
	}
	URT_TRACE_HANDOFF(rt, s, old, p, note && note->hog ? "hog" : "block");
	if (m)
		m->given[p->index] = urt_now();
	/* Demote first: the spare's wake-up then finds a lighter CPU, and
	 * may preempt the hog at once. */
	if (hog)
		demote(m, old, gen, hog);
	return true;
}

/*
 * Keeps one spare idle besides the polling one, so that the next handoff
 * (or the next poller) needs no thread start.
 */
static void keep_warm(struct urt_rt *rt)
{
	int idle = 0;

	urt__spin_lock(&rt->spare_lock);
	for (int i = 0; i < rt->nspares; i++)
		idle += !atomic_load_explicit(&rt->workers[rt->spares[i]].polling,
					      memory_order_relaxed);
	urt__spin_unlock(&rt->spare_lock);
	if (!idle)
		spare_add(rt);
}

bool urt__handoff(struct urt_rt *rt, struct urt_slot *s, const struct urt_handoff_note *note)
{
	uintptr_t ctl = atomic_load_explicit(&s->owner, memory_order_acquire);
	struct urt_monitor *m = rt->monitor;
	struct urt_worker *p;

	if (ctl & SLOT_PARKED)
		return false;
	p = spare_take(rt);
	if (!p) {
		/* None idle: start one and wait for it to file itself. With
		 * the budget spent, a spare started a moment ago (the warm one
		 * after the last handoff, when several slots block at once) is
		 * still worth waiting for; else wait for a stuck thread to
		 * come back. */
		int64_t now = urt_now(), until = now + 100000000;

		if (!spare_add(rt)) {
			if (!m || now - m->spare_started > 10000000)
				return false;
			until = m->spare_started + 10000000;
		}
		while (!(p = spare_take(rt)) && urt_now() < until)
			sched_yield();
		if (!p)
			return false;
	}
	if (!move_slot(rt, s, ctl, note, p)) {
		spare_refile(rt, p);	/* P stays an idle spare */
		return false;
	}
	if (note && note->cpu >= 0 && !atomic_load_explicit(&p->polling, memory_order_relaxed))
		pin_wake(p, note->cpu);
	spare_give(p, s);
	keep_warm(rt);
	return true;
}

/*
 * Worker w's slot_enter found its slot gone (the monitor moved it): if it
 * was demoted as a hog, restore its nice value now, or mark it to retire.
 */
void urt__monitor_slot_lost(struct urt_worker *w)
{
	struct urt_monitor *m = w->rt->monitor;
	struct urt_task *drop = NULL;
	struct prio *pr;

	if (!m)
		return;
	pr = &m->prio[w->index];
	urt__spin_lock(&pr->lock);
	pr->lost++;
	if (pr->demoted)
		drop = undemote(m, pr, 0);
	urt__spin_unlock(&pr->lock);
	if (drop)
		urt__task_unref(drop);
}

/* Before w becomes a spare: false if it must exit instead (it could not
 * restore its priority after a demotion). */
bool urt__monitor_may_spare(struct urt_worker *w)
{
	struct urt_monitor *m = w->rt->monitor;
	bool retire;

	if (!m)
		return true;
	urt__spin_lock(&m->prio[w->index].lock);
	retire = m->prio[w->index].retire;
	urt__spin_unlock(&m->prio[w->index].lock);
	return !retire;
}

/* A slot unparked: if the monitor backed off its tick, wake it. */
void urt__monitor_unparked(struct urt_rt *rt)
{
	struct urt_monitor *m = rt->monitor;

	if (m && atomic_load_explicit(&m->poll_dozing, memory_order_seq_cst) &&
	    atomic_exchange(&m->poll_dozing, false))
		poll_recruit(m, false, -1);
	if (!m || !atomic_load_explicit(&m->dozing, memory_order_seq_cst) ||
	    !atomic_exchange(&m->dozing, false))
		return;
	monitor_kick(m);
}

static bool all_parked(struct urt_rt *rt)
{
	for (unsigned int i = 0; i < rt->nslots; i++)
		if (!(atomic_load_explicit(&rt->slots[i].owner, memory_order_seq_cst) &
		      SLOT_PARKED))
			return false;
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
		if (!s || st.since_ns < m->given[k]) {
			/* parked on purpose, or a spare; or a spare that was
			 * just given a slot and has not run yet: the block is
			 * its wait for one */
			m->pending[k] = 0;
			continue;
		}
		if (!has_work(rt, s))
			continue;
		note.hog = false;
		note.polled = false;
		note.cpu = -1;
		note.syscall = st.syscall;
		note.stuck_ns = urt_now() - st.since_ns;
		seen_task(s, &note.seen);
		if (urt__handoff(rt, s, &note))
			m->pending[k] = 0;
	}
}

/*
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
 * spare, and by the monitor's next pass (poll_recruit): not by the new
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
 * idle spare thread is kept (keep_warm) for the next poller. And the
 * kernel no longer sees those CPUs idle: woken threads are placed with
 * no idle scan (its running time is utilization), and a thread preempted
 * elsewhere waits for a tick's balancing instead of being pulled by an
 * idle CPU (Documentation/monitor.md, "What it cannot hide").
 *
 * It is an accelerator, not a second monitor: the backend still reports
 * blocks, a backstop later (notice_ns), for check_blocked() to hand off
 * if the poller got no CPU (whichever comes first moves the slot; the
 * other finds it moved: the CAS in move_slot), and hogs stay the monitor
 * thread's (the poller gets no CPU exactly when a hog and the other slots
 * fill them all). The poll roles are seats (m->poll_seats, npollers): a
 * spare takes a free one in spare_wait; the monitor's tick recruits while
 * slots run and seats are free (a poke can also reach a spare that a
 * handoff took meanwhile).
 */

/*
 * When the backend should tell the monitor of a block (kind: the backend
 * asked for; NULL or "auto": any). With the poller, the backend's notice
 * is a backstop for when the poller gets no CPU: the poller hands off at
 * the threshold, and a kernel timer firing then would stop it for the
 * length of a timer interrupt on a VM (~30 us here) just when it is
 * needed. proc has no poller.
 */
static int64_t notice_ns(const struct urt_rt *rt, const char *kind)
{
	int64_t t = rt->cfg.monitor_threshold_ns;

	if (!rt->cfg.monitor_poll || (kind && !strcmp(kind, "proc")))
		return t;
	return t + (t > POLL_BACKSTOP_NS ? t : POLL_BACKSTOP_NS);
}

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

	seen_task(c->s, &note.seen);
	if (!to)
		return urt__handoff(m->rt, c->s, &note);
	return move_slot(m->rt, c->s, atomic_load_explicit(&c->s->owner, memory_order_acquire),
			 &note, to);
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
 * pollers going for one slot: the CAS in move_slot decides.
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
		s = running_slot(rt, k);
		if (!s || st.since_ns < m->given[k]) {
			polled[k] = st.seq;	/* parked, a spare: as check_blocked() */
			continue;
		}
		if (!has_work(rt, s))
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
	if (!set_policy(SCHED_OTHER) || !spare_unlist(rt, w->index)) {
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
			pin_wake(&rt->workers[c.k], cpu);
		return c.s;
	}
	spare_refile(rt, w);
	set_policy(SCHED_IDLE);
	return NULL;
}

/* Why the poll loop ended. */
enum poll_end { POLL_TOOK, POLL_HANDED, POLL_DOZE, POLL_STOP };

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
static void poll_recruit(struct urt_monitor *m, bool may_start, int avoid_cpu)
{
	struct urt_rt *rt = m->rt;
	bool room = false;
	int pick = -1;

	if (atomic_load_explicit(&m->npollers, memory_order_acquire) >= m->max_pollers ||
	    atomic_load_explicit(&m->stop, memory_order_acquire))
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
				pin_wake(&rt->workers[pick], c);
				break;
			}
		}
	}
	if (pick >= 0)
		spare_poke(&rt->workers[pick]);
	else if (may_start)
		spare_add(rt);
	else if (room)
		monitor_kick(m);	/* a thread to start, and none at hand */
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
	    atomic_load_explicit(&m->poll_dozing, memory_order_acquire))
		return NULL;
	seat = poll_role_take(m, w);
	if (seat < 0)
		return NULL;
	poll_recruit(m, false, -1);		/* the next one, up to max_pollers */
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
		poll_recruit(m, false, sched_getcpu());
	} else if (end == POLL_DOZE) {
		/* Role given up, then say so, then look once more: a slot
		 * that unparks after this look sees poll_dozing and
		 * recruits (urt__monitor_unparked); one that unparked
		 * before it is seen here. */
		atomic_store(&m->poll_dozing, true);
		if (urt__unparked(w->rt) && atomic_exchange(&m->poll_dozing, false))
			poll_recruit(m, false, -1);
	}
	return took;
}

/*
 * Where the spare that takes a hog's slot should wake: on the hog's CPU
 * if every other CPU of the runtime has a slot's owner on it (at its last
 * step), else anywhere (-1: the kernel finds the free one). The hog is
 * demoted to nice 19 right after the handoff, so a spare on its CPU gets
 * nearly all of it; woken next to another owner instead, the two shared a
 * CPU at equal weight while the hog kept its own, until the balancer or
 * check_stacked moved one. 2-slot starve_spin, 31 samples per run,
 * medians (q3) of 6 runs: 5.59-5.89 (5.82-6.17) ms pinned, of 3 runs
 * 6.09-6.15 (7.27-7.60) ms not; ideal 5.34. 1 slot unchanged (pinning
 * there too, next to an idle CPU, made it 0.5 ms worse).
 */
static int hog_spare_cpu(struct urt_rt *rt, struct urt_slot *hs)
{
	int hog = atomic_load_explicit(&hs->cpu, memory_order_relaxed);

	if (hog < 0 || hog >= CPU_SETSIZE || !CPU_ISSET(hog, &rt->cpus))
		return -1;
	for (int c = 0; c < CPU_SETSIZE; c++) {
		bool owned = false;

		if (c == hog || !CPU_ISSET(c, &rt->cpus))
			continue;
		for (unsigned int i = 0; i < rt->nslots && !owned; i++) {
			struct urt_slot *s = &rt->slots[i];

			owned = s != hs && !(atomic_load_explicit(&s->owner, memory_order_relaxed) &
					     SLOT_PARKED) &&
				atomic_load_explicit(&s->cpu, memory_order_relaxed) == c;
		}
		if (!owned)
			return -1;
	}
	return hog;
}

/*
 * A step that runs too long: hand off. If the backend says the thread is
 * blocked in the kernel, it is a block, not a hog: handed off (not
 * demoted) once it lasted the block threshold; this also catches blocks
 * whose event was spent (proc merging a park and the block after it into
 * one). Otherwise the thread is running: a hog.
 */
static void check_hogs(struct urt_monitor *m, int64_t now)
{
	struct urt_rt *rt = m->rt;

	if (rt->cfg.hog_threshold_ns < 0)
		return;
	for (unsigned int i = 0; i < rt->nslots; i++) {
		struct urt_slot *s = &rt->slots[i];
		struct hog_sample *h = &m->hog[i];
		struct urt_handoff_note note;
		struct urt_mon_wstate st;
		struct urt_worker *owner;
		int64_t cpu;
		pid_t tid;
		uint64_t steps = atomic_load_explicit(&s->steps, memory_order_relaxed);
		uint64_t task = atomic_load_explicit(&s->cur_task, memory_order_relaxed);
		uintptr_t ctl = atomic_load_explicit(&s->owner, memory_order_acquire);

		bool moved = ctl != h->owner;

		if (moved || steps != h->steps || task != h->task) {
			/* Handed off with no step since: cur_task is the stuck
			 * step of the old owner; the new one has not begun. */
			h->not_started = moved && steps == h->steps;
			h->owner = ctl;
			h->steps = steps;
			h->task = task;
			h->since = now;
			h->cpu_ns = -1;
			continue;
		}
		if (!task || h->not_started || (ctl & SLOT_PARKED))
			continue;
		owner = (struct urt_worker *)ctl;
		tid = __atomic_load_n(&owner->tid, __ATOMIC_ACQUIRE);
		if (h->cpu_ns < 0) {
			/* The step outlived a tick (rare: most steps are far
			 * shorter): its CPU time from here on tells a hog from
			 * a thread waiting for a CPU (below). One syscall per
			 * long step, not one per step. */
			h->cpu_ns = tid > 0 ? thread_cpu_ns(tid) : -1;
			h->cpu_at = now;
		}
		if (now - h->since < rt->cfg.hog_threshold_ns || !has_work(rt, s))
			continue;
		note.hog = true;
		note.polled = false;
		note.cpu = -1;
		note.syscall = -1;
		note.stuck_ns = now - h->since;
		if (m->mon && urt__mon_snapshot(m->mon, (unsigned int)owner->index, &st) == 0 &&
		    st.state == URT_MON_BLOCKED) {
			if (now - st.since_ns < rt->cfg.monitor_threshold_ns)
				continue;	/* a block the block threshold has not passed */
			note.hog = false;
			note.syscall = st.syscall;
			note.stuck_ns = now - st.since_ns;
		} else if (h->cpu_ns >= 0 && now - h->cpu_at < rt->cfg.hog_threshold_ns / 2) {
			continue;	/* a late tick: too short a window to judge */
		} else if (h->cpu_ns >= 0 && (cpu = thread_cpu_ns(tid)) >= 0 &&
			   (cpu - h->cpu_ns) * 4 < now - h->cpu_at) {
			/*
			 * The step used under a quarter of a CPU over the
			 * window (at least half the threshold: a starved
			 * thread gets its CPU in bursts of up to a scheduler
			 * tick): no hog. (A quarter, not a half: a vCPU that
			 * shares its host CPU -- steal, emulation -- runs a
			 * real hog at half speed or less.)
			 * Runnable -> a thread the machine has no CPU for: a
			 * spare would wait just as long, and demoting it would
			 * punish a short task. Asleep -> a block the backend
			 * did not report (or no backend): hand off, without
			 * demoting.
			 */
			if (thread_state(m, owner, tid, NULL) == 'R')
				continue;
			note.hog = false;
		}
		if (note.hog)
			note.cpu = hog_spare_cpu(rt, s);
		seen_task(s, &note.seen);
		urt__handoff(rt, s, &note);	/* the new owner: a fresh sample */
	}
}

/*
 * A slot's owner waits for a CPU on which a demoted hog runs: EEVDF lets
 * the hog finish a slice once picked, until the next tick (it picked the
 * hog because its lag said so, or the owner was just moved here by
 * check_stacked). Tell the hog to yield again (see demote()).
 */
static void yield_hogs_on(struct urt_monitor *m, int cpu)
{
	struct urt_rt *rt = m->rt;

	if (!rt->hog_signal || !atomic_load(&m->ndemoted) || !hog_signal_ours())
		return;
	for (unsigned int k = 0; k < rt->nworkers; k++) {
		struct prio *pr = &m->prio[k];
		pid_t tid;
		int c;

		urt__spin_lock(&pr->lock);
		tid = pr->demoted ? pr->tid : 0;
		urt__spin_unlock(&pr->lock);
		if (tid > 0 && thread_state(m, &rt->workers[k], tid, &c) == 'R' && c == cpu)
			syscall(SYS_tgkill, getpid(), tid, URT_HOG_SIGNAL);
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
		struct urt_worker *w = (struct urt_worker *)(ctl & ~SLOT_PARKED);
		struct urt_mon_wstate st;
		pid_t tid;
		int cpu, to = -1;

		if (!m->stalled[i] || (ctl & SLOT_PARKED))
			continue;
		/* Blocked in the kernel, as the backend knows without a /proc
		 * read (this runs at every pass while a slot is stuck) */
		if (m->mon && urt__mon_kind(m->mon) != URT_MON_PROC &&
		    urt__mon_snapshot(m->mon, (unsigned int)w->index, &st) == 0 &&
		    st.state == URT_MON_BLOCKED)
			continue;
		tid = __atomic_load_n(&w->tid, __ATOMIC_ACQUIRE);
		if (tid <= 0 || thread_state(m, w, tid, &cpu) != 'R' || cpu < 0 ||
		    cpu >= CPU_SETSIZE)
			continue;
		if (!CPU_ISSET(cpu, &busy)) {
			/* No slot's CPU: the one waited for may be a hog */
			yield_hogs_on(m, cpu);
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

		if (urt__mon_open(&mon, next, rt->nworkers, notice_ns(rt, next),
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
	monitor_kick(m);
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
	spare_add(rt);		/* one warm spare from the start */
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
		check_hogs(m, urt_now());
		check_stacked(m, urt_now());
		check_demoted(m);
		unpin_late(m, urt_now());
		/* Seats free while slots run (a poller took a slot, a poke
		 * went to a spare that a handoff took, or none was idle):
		 * fill them, and keep one idle spare besides. */
		if (m->max_pollers && urt__unparked(rt)) {
			if (atomic_load(&m->poll_dozing))
				atomic_store(&m->poll_dozing, false);
			poll_recruit(m, true, -1);
			keep_warm(rt);
		}
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
	m->may_demote = can_restore_nice();
	/* Before the workers start: they unblock the signal if set. */
	rt->hog_signal = m->may_demote && rt->cfg.hog_signal == 0 && hog_signal_install();
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
	if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED)) {
		err = -errno;
		fprintf(stderr, "urt: monitor: membarrier unavailable (%s): handoff is off\n",
			strerror(errno));
		goto fail;
	}
	/* Linux >= 5.10 with CONFIG_RSEQ; else barrier_on() uses every CPU. */
	m->mb_cpu = membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ) == 0;
	err = urt__mon_open(&m->mon, rt->cfg.monitor, rt->nworkers,
			    notice_ns(rt, rt->cfg.monitor), m->why, sizeof(m->why));
	if (err) {
		fprintf(stderr, "urt: %s\n", m->why);
		goto fail;
	}
	if (rt->cfg.monitor_poll && urt__mon_kind(m->mon) == URT_MON_PROC) {
		/* "auto" came down to proc, which has no poller: it needs the
		 * threshold itself. (Keeps the first open's why.) */
		urt__mon_close(m->mon);
		err = urt__mon_open(&m->mon, "proc", rt->nworkers, notice_ns(rt, "proc"), NULL, 0);
		if (err)
			goto fail;
	}
	/* Pollers only where the states are shared memory; more than one
	 * per slot would never find a block to take. */
	if (urt__mon_kind(m->mon) != URT_MON_PROC)
		m->max_pollers = (unsigned int)rt->cfg.monitor_poll < rt->nslots ?
				 (unsigned int)rt->cfg.monitor_poll : rt->nslots;
	if (m->max_pollers > 64)
		m->max_pollers = 64;	/* poll_seats' bits */
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
	monitor_kick(m);
	pthread_join(m->thread, NULL);
	/* Nobody watches the demoted hogs any more: give them their
	 * priority back now, and the task references. */
	for (unsigned int k = 0; k < rt->nworkers; k++) {
		struct prio *pr = &m->prio[k];
		struct urt_task *drop = NULL;

		urt__spin_lock(&pr->lock);
		if (pr->demoted)
			drop = undemote(m, pr, pr->tid);
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
		procfd_close(m, &m->procfd[k]);
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
	atomic_store(&w->pinned, false);	/* unpin_late: no stale tid */
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
