// SPDX-License-Identifier: MIT
/*
 * handoff.c - moving a stuck slot and its queue to a spare thread (Go's
 * handoffp), and the spare threads themselves.
 *
 * Handoff protocol (rt.h states the invariants):
 *   1. take a spare thread P (a polling one, an idle one, or start one
 *      within the budget of nslots + max_spares threads), or P is the
 *      polling spare that found the block (urt__monitor_poll);
 *   2. CAS slot->owner from T (not parked, not moving) to P | SLOT_MOVING:
 *      fails if T parked or the slot moved meanwhile -- then give P back;
 *   3. a full barrier on T's CPU (barrier_on: membarrier), so T either
 *      saw the new owner in slot_enter or published busy = 1 before
 *      reading it;
 *   4. wait until T->busy == 0: T is outside its owner-only section;
 *      then slot->owner = P (the mark off: the slot may move again);
 *   5. give the slot to P (handed + futex wake), or P runs it (poller).
 * T keeps running its current task step (it is stuck in it); at its next
 * slot_enter it finds it lost the slot and becomes a spare itself. So a
 * slot never has two owners, no queued task moves or gets lost, and the
 * number of threads running tasks exceeds the slot count only while a
 * stuck thread finishes the step it was stuck in.
 */
#include <fcntl.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sysmon.h"
#include "trace.h"

int urt__membarrier(int cmd)
{
	return (int)syscall(SYS_membarrier, cmd, 0, 0);
}

void urt__procfd_close(struct urt_monitor *m, struct procfd *pf)
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
	urt__procfd_close(m, pf);
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
		urt__procfd_close(m, pf);
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
int urt__thread_state(struct urt_monitor *m, struct urt_worker *t, pid_t tid, int *cpu)
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
	urt__membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
}

/*
 * Is there work a spare could run if it got s? s's own queue, the
 * injection queue, or another slot's ring holding more than the task its
 * owner runs next: the spare steals half of it (as Go hands off a P when
 * there is global work). Without the last, a slot stuck while its
 * neighbour took the whole injected batch would leave that batch to one
 * thread.
 */
bool urt__has_work(struct urt_rt *rt, struct urt_slot *s)
{
	if (atomic_load_explicit(&s->lifo, memory_order_relaxed) || urt__lq_len(&s->q) ||
	    !urt__inject_empty(&rt->inject))
		return true;
	for (unsigned int i = 0; i < rt->nslots; i++)
		if (&rt->slots[i] != s && urt__lq_len(&rt->slots[i].q) >= 2)
			return true;
	return false;
}

bool urt__spare_unlist(struct urt_rt *rt, int i)
{
	bool was;

	urt__spin_lock(&rt->spare_lock);
	was = urt__spare_unlist_locked(rt, i);
	urt__spin_unlock(&rt->spare_lock);
	return was;
}

void urt__spare_refile(struct urt_rt *rt, struct urt_worker *p)
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
void urt__pin_wake(struct urt_worker *p, int cpu)
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
 * it runs. A thread clears its pin before it exits
 * (urt__monitor_thread_fini), so the tid is its own.
 */
void urt__unpin_late(struct urt_monitor *m, int64_t now)
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
void urt__spare_poke(struct urt_worker *p)
{
	atomic_store_explicit(&p->spare_word, 1, memory_order_release);
	urt__futex_wake(&p->spare_word, 1);
}

static void spare_give(struct urt_worker *p, struct urt_slot *s)
{
	atomic_store_explicit(&p->handed, s, memory_order_release);
	urt__spare_poke(p);
}

/* What a slot is running: read before a handoff (the spare overwrites it). */
void urt__seen_task(struct urt_slot *s, struct urt_seen *out)
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
bool urt__spare_add(struct urt_rt *rt)
{
	struct urt_worker *p = urt__spare_reserve(rt);

	if (!p || urt__spare_spawn(p))
		return false;
	if (rt->monitor)
		rt->monitor->spare_started = urt_now();
	return true;
}

/*
 * Steps 2-4 of the protocol (top of this file): moves s from its owner
 * ctl (read before p was chosen) to p, an idle spare out of the list or
 * the polling spare itself. False if the slot parked or moved meanwhile;
 * p is then the caller's to file again.
 */
bool urt__move_slot(struct urt_rt *rt, struct urt_slot *s, uintptr_t ctl,
		   const struct urt_handoff_note *note, struct urt_worker *p)
{
	struct urt_monitor *m = rt->monitor;
	struct urt_worker *old = (struct urt_worker *)ctl;
	struct urt_task *hog = NULL;
	uint32_t gen = 0;

	if (ctl & SLOT_FLAGS)
		return false;	/* parked, or another handoff under way */
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
	/* Marked until T is out: p is never inside, so a second mover that
	 * took the slot from p now would wait for p's busy, not T's (a
	 * poller saw a sleeping spare own a slot, "blocked" for long, and
	 * ran the slot while T was still in it). */
	if (!atomic_compare_exchange_strong(&s->owner, &ctl, (uintptr_t)p | SLOT_MOVING)) {
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
		if (m && !note->hog)
			urt__poll_arm(m, urt_now());
	}
	URT_TRACE_HANDOFF(rt, s, old, p, note && note->hog ? "hog" : "block");
	if (m)
		m->given[p->index] = urt_now();
	/* Release: p, and whoever sees p own s, sees all of the above. */
	atomic_store_explicit(&s->owner, (uintptr_t)p, memory_order_release);
	/* Demote first: the spare's wake-up then finds a lighter CPU, and
	 * may preempt the hog at once. */
	if (hog)
		urt__demote(m, old, gen, hog);
	return true;
}

/*
 * Keeps one spare idle besides the polling one, so that the next handoff
 * (or the next poller) needs no thread start.
 */
void urt__keep_warm(struct urt_rt *rt)
{
	int idle = 0;

	urt__spin_lock(&rt->spare_lock);
	for (int i = 0; i < rt->nspares; i++)
		idle += !atomic_load_explicit(&rt->workers[rt->spares[i]].polling,
					      memory_order_relaxed);
	urt__spin_unlock(&rt->spare_lock);
	if (!idle)
		urt__spare_add(rt);
}

bool urt__handoff(struct urt_rt *rt, struct urt_slot *s, struct urt_worker *from,
		  const struct urt_handoff_note *note)
{
	uintptr_t ctl = (uintptr_t)from;
	struct urt_monitor *m = rt->monitor;
	struct urt_worker *p;

	if (atomic_load_explicit(&s->owner, memory_order_acquire) != ctl)
		return false;	/* moved (or parked) since the caller looked */
	p = spare_take(rt);
	if (!p) {
		/* None idle: start one and wait for it to file itself. With
		 * the budget spent, a spare started a moment ago (the warm one
		 * after the last handoff, when several slots block at once) is
		 * still worth waiting for; else wait for a stuck thread to
		 * come back. */
		int64_t now = urt_now(), until = now + 100000000;

		if (!urt__spare_add(rt)) {
			if (!m || now - m->spare_started > 10000000)
				return false;
			until = m->spare_started + 10000000;
		}
		while (!(p = spare_take(rt)) && urt_now() < until)
			sched_yield();
		if (!p)
			return false;
	}
	if (!urt__move_slot(rt, s, ctl, note, p)) {
		urt__spare_refile(rt, p);	/* P stays an idle spare */
		return false;
	}
	if (note && note->cpu >= 0 && !atomic_load_explicit(&p->polling, memory_order_relaxed))
		urt__pin_wake(p, note->cpu);
	spare_give(p, s);
	urt__keep_warm(rt);
	return true;
}

/* Slot that worker k owns right now, if it is running (not parked). */
struct urt_slot *urt__running_slot(struct urt_rt *rt, unsigned int k)
{
	struct urt_worker *w = &rt->workers[k];

	for (unsigned int i = 0; i < rt->nslots; i++) {
		uintptr_t ctl = atomic_load_explicit(&rt->slots[i].owner, memory_order_acquire);

		if (ctl == (uintptr_t)w)
			return &rt->slots[i];
	}
	return NULL;
}
