// SPDX-License-Identifier: MIT
/*
 * mon_proc.c - the monitor without kernel help.
 *
 * wait() is the tick (mon.c: urt__mon_tick_scan): each pass reads
 * /proc/self/task/TID/stat of every registered worker (pread on an fd
 * opened at register time, ~2 us each). State 'R' is RUNNING; 'S' and 'D'
 * are BLOCKED, with the syscall taken from /proc/self/task/TID/syscall
 * when the block is first seen. What a sampler cannot know: blocks that
 * begin and end between two passes are not seen (fine: they are shorter
 * than the tick, hence rarely worth a handoff), since_ns is the pass that
 * first saw the block (so reports come up to one interval late), and the
 * counters count observed blocks only.
 *
 * The per-slot state is written by the waiting thread (the tick) and by
 * register/unregister, under `lock`; snapshot() reads it lock-free with a
 * seqcount over atomic fields (so TSan sees no race).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mon_impl.h"

struct proc_slot {
	atomic_uint seq;
	atomic_uint state;
	atomic_int tid;
	atomic_int syscall;
	atomic_llong since;
	atomic_ullong blocks, blocked_ns;
	int stat_fd, sys_fd;		/* under lock */
	const atomic_uint *wakes;	/* under lock: the runtime's counter, or NULL */
	unsigned int wakes_seen;	/* under lock: its value at the last pass */
};

struct mon_proc {
	pthread_mutex_t lock;		/* registration vs. the tick's reads */
	struct urt_mon_tick tick;
	struct proc_slot *slots;
};

#define RLX memory_order_relaxed
#define ACQ memory_order_acquire

static void slot_begin(struct proc_slot *s)
{
	/* acquire RMW: the stores that follow cannot move above it */
	atomic_fetch_add_explicit(&s->seq, 1, memory_order_acq_rel);
}

static void slot_end(struct proc_slot *s)
{
	atomic_store_explicit(&s->seq, atomic_load_explicit(&s->seq, RLX) + 1,
			      memory_order_release);
}

static void proc_close(struct urt_mon *m)
{
	struct mon_proc *p = m->priv;

	if (!p)
		return;
	for (unsigned int i = 0; i < m->max_workers; i++) {
		if (p->slots[i].stat_fd >= 0)
			close(p->slots[i].stat_fd);
		if (p->slots[i].sys_fd >= 0)
			close(p->slots[i].sys_fd);
	}
	pthread_mutex_destroy(&p->lock);
	urt__mon_tick_fini(&p->tick);
	free(p->slots);
	free(p);
	m->priv = NULL;
}

static int proc_open(struct urt_mon *m, const char *mode, char *why, size_t whylen)
{
	struct mon_proc *p = calloc(1, sizeof(*p));
	char path[64];
	int fd;

	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	m->priv = p;
	p->slots = calloc(m->max_workers, sizeof(*p->slots));
	if (!p->slots || urt__mon_tick_init(m, &p->tick)) {
		proc_close(m);
		return -ENOMEM;
	}
	p->tick.sampling = true;
	for (unsigned int i = 0; i < m->max_workers; i++)
		p->slots[i].stat_fd = p->slots[i].sys_fd = -1;
	snprintf(path, sizeof(path), "/proc/self/task/%ld/stat", (long)syscall(SYS_gettid));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, whylen, "%s: %s (is /proc mounted?)", path, strerror(errno));
		proc_close(m);
		return -ENOENT;
	}
	close(fd);
	return 0;
}

static int proc_reg(struct urt_mon *m, unsigned int slot, pid_t tid)
{
	struct mon_proc *p = m->priv;
	struct proc_slot *s = &p->slots[slot];
	char path[64];
	int err = 0;

	pthread_mutex_lock(&p->lock);
	if (s->stat_fd >= 0) {
		err = -EBUSY;
		goto out;
	}
	snprintf(path, sizeof(path), "/proc/self/task/%ld/stat", (long)tid);
	s->stat_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->stat_fd < 0) {
		err = -errno;
		goto out;
	}
	snprintf(path, sizeof(path), "/proc/self/task/%ld/syscall", (long)tid);
	s->sys_fd = open(path, O_RDONLY | O_CLOEXEC);	/* optional */
	slot_begin(s);
	atomic_store_explicit(&s->state, URT_MON_RUNNING, RLX);
	atomic_store_explicit(&s->tid, (int)tid, RLX);
	atomic_store_explicit(&s->syscall, -1, RLX);
	atomic_store_explicit(&s->since, urt_now(), RLX);
	atomic_store_explicit(&s->blocks, 0, RLX);
	atomic_store_explicit(&s->blocked_ns, 0, RLX);
	slot_end(s);
out:
	pthread_mutex_unlock(&p->lock);
	return err;
}

static int proc_unreg(struct urt_mon *m, unsigned int slot)
{
	struct mon_proc *p = m->priv;
	struct proc_slot *s = &p->slots[slot];
	int err = 0;

	pthread_mutex_lock(&p->lock);
	if (s->stat_fd < 0 || atomic_load_explicit(&s->tid, RLX) != (int)syscall(SYS_gettid)) {
		err = -ENOENT;
		goto out;
	}
	close(s->stat_fd);
	if (s->sys_fd >= 0)
		close(s->sys_fd);
	s->stat_fd = s->sys_fd = -1;
	s->wakes = NULL;
	slot_begin(s);
	atomic_store_explicit(&s->state, URT_MON_UNUSED, RLX);
	atomic_store_explicit(&s->tid, 0, RLX);
	atomic_store_explicit(&s->syscall, -1, RLX);
	atomic_store_explicit(&s->since, urt_now(), RLX);
	slot_end(s);
out:
	pthread_mutex_unlock(&p->lock);
	return err;
}

static int proc_snapshot(struct urt_mon *m, unsigned int slot, struct urt_mon_wstate *out)
{
	struct mon_proc *p = m->priv;
	struct proc_slot *s = &p->slots[slot];
	unsigned int s1;

	do {
		s1 = atomic_load_explicit(&s->seq, memory_order_acquire);
		out->seq = s1 & ~1u;
		/* acquire loads: the re-read of seq stays after them */
		out->state = atomic_load_explicit(&s->state, ACQ);
		out->tid = atomic_load_explicit(&s->tid, ACQ);
		out->syscall = atomic_load_explicit(&s->syscall, ACQ);
		out->since_ns = atomic_load_explicit(&s->since, ACQ);
		out->blocks = atomic_load_explicit(&s->blocks, ACQ);
		out->blocked_ns = atomic_load_explicit(&s->blocked_ns, ACQ);
	} while ((s1 & 1) || s1 != atomic_load_explicit(&s->seq, RLX));
	return 0;
}

/* The state letter of /proc/.../stat: after the last ')' of comm; and
 * if cpu, field 39 ("processor"), the 37th after it (-1 if missing). */
int urt__proc_task_state(int fd, int *cpu)
{
	char buf[1024];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	char *p;

	if (n <= 0)
		return -1;
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -1;
	if (cpu) {
		char *f = p + 2;

		*cpu = -1;
		for (int i = 1; i < 37 && f; i++) {
			f = strchr(f, ' ');
			if (f)
				f++;
		}
		if (f && *f >= '0' && *f <= '9')
			*cpu = (int)strtol(f, NULL, 10);
	}
	return (unsigned char)p[2];
}

static int read_syscall(int fd)
{
	char buf[32];
	ssize_t n;
	char *end;
	long nr;

	if (fd < 0)
		return -1;
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	nr = strtol(buf, &end, 10);	/* "running" or "-1 ..." parse as -1/none */
	return end == buf ? -1 : (int)nr;
}

static int proc_set_wakes(struct urt_mon *m, unsigned int slot, const atomic_uint *wakes)
{
	struct mon_proc *p = m->priv;
	struct proc_slot *s = &p->slots[slot];

	pthread_mutex_lock(&p->lock);
	s->wakes = wakes;
	s->wakes_seen = wakes ? atomic_load_explicit(wakes, ACQ) : 0;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

/* The tick's sampler: called with p->lock held. */
static int proc_scan(struct urt_mon *m, unsigned int slot, struct urt_mon_wstate *ws,
		     int64_t now)
{
	struct mon_proc *p = m->priv;
	struct proc_slot *s = &p->slots[slot];
	unsigned int st, old, wakes = 0;
	bool woke;
	int c;

	if (s->stat_fd < 0)
		return -1;
	/* The counter before the state: a wake that lands between the two
	 * is seen at the next pass, never taken for the end of this block. */
	if (s->wakes)
		wakes = atomic_load_explicit(s->wakes, ACQ);
	c = urt__proc_task_state(s->stat_fd, NULL);
	if (c < 0)
		return -1;
	woke = s->wakes && wakes != s->wakes_seen;
	s->wakes_seen = wakes;
	st = (c == 'S' || c == 'D') ? URT_MON_BLOCKED : URT_MON_RUNNING;
	old = atomic_load_explicit(&s->state, RLX);
	if (st != old || (woke && st == URT_MON_BLOCKED)) {
		int nr = st == URT_MON_BLOCKED ? read_syscall(s->sys_fd) : -1;

		/* woke: the thread ran since the last pass (it came back from
		 * a wait of the runtime's), so this BLOCKED is a new block */
		slot_begin(s);
		if (old == URT_MON_BLOCKED)
			atomic_store_explicit(&s->blocked_ns,
				atomic_load_explicit(&s->blocked_ns, RLX) +
				(uint64_t)(now - atomic_load_explicit(&s->since, RLX)), RLX);
		if (st == URT_MON_BLOCKED)
			atomic_store_explicit(&s->blocks,
				atomic_load_explicit(&s->blocks, RLX) + 1, RLX);
		atomic_store_explicit(&s->state, st, RLX);
		atomic_store_explicit(&s->syscall, nr, RLX);
		atomic_store_explicit(&s->since, now, RLX);
		slot_end(s);
	}
	return proc_snapshot(m, slot, ws);
}

static int proc_wait(struct urt_mon *m, int64_t deadline)
{
	struct mon_proc *p = m->priv;
	int64_t next;

	for (;;) {
		pthread_mutex_lock(&p->lock);
		next = urt__mon_tick_scan(m, &p->tick, urt_now(), proc_scan);
		pthread_mutex_unlock(&p->lock);
		if (m->npending)
			return 0;
		if (next > deadline)
			next = deadline;
		urt__mon_sleep(m, next, -1);
		if (m->kicked || urt_now() >= deadline)
			return 0;
	}
}

static const char *proc_describe(struct urt_mon *m)
{
	return "/proc/self/task sampling, 20 us..10 ms tick";
}

const struct urt_mon_ops urt__mon_proc_ops = {
	.name = "proc", .open = proc_open, .reg = proc_reg, .unreg = proc_unreg,
	.snapshot = proc_snapshot, .wait = proc_wait, .close = proc_close,
	.describe = proc_describe, .set_wakes = proc_set_wakes,
};
