// SPDX-License-Identifier: MIT
/*
 * hog.c - a task step that runs on a CPU past hog_threshold_ns (found
 * by the monitor's tick: the slot's step counter did not move, the
 * thread's CPU clock did).
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
 */
#include <errno.h>
#include <signal.h>
#include <sched.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "sysmon.h"

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

bool urt__hog_signal_install(void)
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
void urt__demote(struct urt_monitor *m, struct urt_worker *t, uint32_t gen,
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
struct urt_task *urt__undemote(struct urt_monitor *m, struct prio *pr, pid_t tid)
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
void urt__check_demoted(struct urt_monitor *m)
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
			drop = urt__undemote(m, pr, pr->tid);
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
bool urt__can_restore_nice(void)
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
		drop = urt__undemote(m, pr, 0);
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
void urt__check_hogs(struct urt_monitor *m, int64_t now)
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
		if (!task || h->not_started || (ctl & SLOT_FLAGS))
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
		if (now - h->since < rt->cfg.hog_threshold_ns || !urt__has_work(rt, s))
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
			if (urt__thread_state(m, owner, tid, NULL) == 'R')
				continue;
			note.hog = false;
		}
		if (note.hog)
			note.cpu = hog_spare_cpu(rt, s);
		urt__seen_task(s, &note.seen);
		urt__handoff(rt, s, owner, &note);	/* the new owner: a fresh sample */
	}
}

/*
 * A slot's owner waits for a CPU on which a demoted hog runs: EEVDF lets
 * the hog finish a slice once picked, until the next tick (it picked the
 * hog because its lag said so, or the owner was just moved here by
 * check_stacked). Tell the hog to yield again (see urt__demote()).
 */
void urt__yield_hogs_on(struct urt_monitor *m, int cpu)
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
		if (tid > 0 && urt__thread_state(m, &rt->workers[k], tid, &c) == 'R' && c == cpu)
			syscall(SYS_tgkill, getpid(), tid, URT_HOG_SIGNAL);
	}
}
