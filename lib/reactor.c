/* SPDX-License-Identifier: MIT */
/*
 * reactor.c - the I/O reactor: one edge-triggered epoll instance per runtime
 * and the readiness state of every fd the runtime's tasks wait on.
 * Documentation/io.md has the long version; the rules the code keeps:
 *
 * Objects
 *   reactor   an epoll fd plus a table of sources indexed by fd number. The
 *             table is two-level: chunk k holds 64 << k sources and covers
 *             fds [64 * (2^k - 1), 64 * (2^(k+1) - 1)). Chunks are allocated
 *             on first use with a CAS and never move or go away before
 *             urt__reactor_destroy(), so a source pointer stays valid for the
 *             life of the reactor: it is what epoll's data.ptr carries.
 *   source    the state of one fd number: registration state, two readiness
 *             sequence numbers (read side, write side), the fibers waiting on
 *             it and the poll tasks armed on it (cx nodes).
 *
 * Readiness sequence numbers (no lost edges)
 *   Each event bumps rseq and/or wseq under the source lock and wakes every
 *   waiter whose snapshot differs. An operation snapshots the sequence
 *   *before* its system call; on EAGAIN it links itself only if the
 *   sequence is still the snapshot, checked under the lock. Data that
 *   arrived after the system call raises an edge the driver reports after
 *   it, so either the check sees the bump or the waiter is linked when the
 *   bump comes. Sequences only grow (also across urt_close), so a stale
 *   event only costs a spurious wake-up, never a lost one.
 *
 * urt_close and fd reuse
 *   src->gen changes each time the fd number is forgotten (urt_close, or an
 *   fd returned by accept whose slot still held state). An operation
 *   samples gen when it starts; every system call it makes is bracketed by
 *   io_enter/io_exit, which count it in src->ops and re-check gen, and every
 *   wait re-checks gen under the lock. Forgetting sets SRC_CLOSING, waits
 *   for the in-flight system calls to drain, then bumps gen, wakes everyone
 *   with -EBADF and resets the slot. So an operation that started before
 *   urt_close never touches a reused fd number, and never sleeps on it.
 *
 * Locks: src->lock is a urt_spin taken for a few dozen instructions; never
 * held across a system call, malloc/free or a wake-up (wake-ups are
 * batched, then done after unlock). reactors_lock (a mutex) serializes
 * forgetting and reactor create/destroy.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "internal.h"
#include "reactor.h"


#define CHUNK0_SHIFT	6
#define NCHUNK		26	/* (INT_MAX >> 6) + 1 < 2^26: every int fd */
#define WAKE_BATCH	16
#define CX_CACHED_MAX	4	/* idle cx nodes kept per fd */
#define NOPOLL_RETRY_NS	1000000	/* EAGAIN on an fd epoll refuses: re-try after */

enum { SRC_FRESH, SRC_REG, SRC_NOPOLL };	/* src->state */
#define SRC_CLOSING	0x80000000u		/* in src->ops */

/*
 * A poll task's interest in one fd, from urt_cx_wake_on_fd(). While armed it
 * holds a reference on task; when it fires it stays in the list, idle, so
 * that the task's next arm can tell from rseen/wseen whether an edge came
 * since it was woken (no syscall needed to avoid a lost edge).
 */
struct cx_node {
	struct cx_node *next;
	struct urt_task *task;		/* armed: referenced; idle: NULL */
	uint64_t task_id;		/* identity: task objects are reused */
	unsigned int dir;		/* IO_R | IO_W while armed */
	unsigned int rseen, wseen;	/* sequences when last fired/created */
	bool armed;
};

struct io_src {
	urt_spin lock;
	atomic_uint state;		/* SRC_*; FRESH -> REG/NOPOLL -> FRESH */
	atomic_uint ops;		/* system calls in flight | SRC_CLOSING */
	atomic_uint gen;		/* changed (under lock) by forget */
	atomic_uint rseq, wseq;		/* changed only under lock */
	unsigned int ncx;		/* nodes in cx */
	struct urt_wlist waiters;	/* of struct io_wait */
	struct cx_node *cx;
};

/* A fiber waiting on a source; on its stack. */
struct io_wait {
	struct urt_waiter w;
	unsigned int dir;
	unsigned int rs, ws;		/* snapshots of rseq, wseq */
};

struct urt_reactor {
	int epfd;
	atomic_int max_fd;		/* highest fd with a slot in use */
	struct urt_reactor *next;	/* reactors list */
	_Atomic(struct io_src *) chunk[NCHUNK];
};

/* Every live reactor, so urt_close() from any thread can forget an fd. */
static pthread_mutex_t reactors_lock = PTHREAD_MUTEX_INITIALIZER;
static struct urt_reactor *reactors;

/* ------------------------------------------------------------ the table */

static inline unsigned int chunk_of(unsigned int fd, unsigned int *off)
{
	unsigned int i = (fd >> CHUNK0_SHIFT) + 1;
	unsigned int k = 31 - (unsigned int)__builtin_clz(i);

	*off = fd - (((1u << k) - 1) << CHUNK0_SHIFT);
	return k;
}

/* The source of fd; with alloc, allocates its chunk. NULL: none / ENOMEM. */
static struct io_src *src_slot(struct urt_reactor *r, int fd, bool alloc)
{
	unsigned int off, k = chunk_of((unsigned int)fd, &off);
	struct io_src *c = atomic_load_explicit(&r->chunk[k], memory_order_acquire);
	int m;

	if (unlikely(!c)) {
		struct io_src *want = NULL;

		if (!alloc)
			return NULL;
		/* All-zero is a valid source: unlocked, FRESH, no waiters. */
		c = calloc((size_t)1 << (k + CHUNK0_SHIFT), sizeof(*c));
		if (!c)
			return NULL;
		if (!atomic_compare_exchange_strong_explicit(&r->chunk[k], &want, c,
							     memory_order_acq_rel,
							     memory_order_acquire)) {
			free(c);
			c = want;
		}
	}
	if (alloc) {
		m = atomic_load_explicit(&r->max_fd, memory_order_relaxed);
		while (unlikely(fd > m) &&
		       !atomic_compare_exchange_weak_explicit(&r->max_fd, &m, fd,
							      memory_order_relaxed,
							      memory_order_relaxed))
			;
	}
	return &c[off];
}

/* ------------------------------------------------------------ waking */

static inline bool moved(unsigned int dir, unsigned int rs, unsigned int ws,
			 unsigned int rseq, unsigned int wseq)
{
	return ((dir & IO_R) && rs != rseq) || ((dir & IO_W) && ws != wseq);
}

/*
 * Called with s->lock held; returns with it released. Unlinks the waiters
 * and fires the armed cx nodes whose sequences moved (all of them with
 * all), then wakes them outside the lock, WAKE_BATCH at a time.
 */
static void src_wake_unlock(struct io_src *s, bool all, int result)
{
	struct urt_waiter *ws[WAKE_BATCH];
	struct urt_task *ts[WAKE_BATCH];
	unsigned int nw, nt, i;
	bool more;

	for (;;) {
		unsigned int rseq = atomic_load_explicit(&s->rseq, memory_order_relaxed);
		unsigned int wseq = atomic_load_explicit(&s->wseq, memory_order_relaxed);
		struct urt_waiter *w, *next;
		struct cx_node *n;

		nw = nt = 0;
		more = false;
		for (w = s->waiters.head; w; w = next) {
			struct io_wait *iw = container_of(w, struct io_wait, w);

			next = w->next;
			if (!all && !moved(iw->dir, iw->rs, iw->ws, rseq, wseq))
				continue;
			if (nw == WAKE_BATCH) {
				more = true;
				break;
			}
			urt__wlist_remove(&s->waiters, w);
			w->result = result;
			ws[nw++] = w;
		}
		for (n = s->cx; n; n = n->next) {
			if (!n->armed)
				continue;
			if (!all && !moved(n->dir, n->rseen, n->wseen, rseq, wseq))
				continue;
			if (nt == WAKE_BATCH) {
				more = true;
				break;
			}
			n->armed = false;
			n->rseen = rseq;
			n->wseen = wseq;
			ts[nt++] = n->task;	/* its reference passes to us */
			n->task = NULL;
		}
		urt__spin_unlock(&s->lock);

		for (i = 0; i < nw; i++)
			urt__waiter_notify(ws[i]);	/* last touch of *ws[i] */
		for (i = 0; i < nt; i++) {
			urt__task_wake(ts[i]);
			urt__task_unref(ts[i]);
		}
		if (!more)
			return;
		urt__spin_lock(&s->lock);
	}
}

void urt__reactor_event(struct urt_reactor *r, struct epoll_event *ev)
{
	struct io_src *s = ev->data.ptr;
	uint32_t e = ev->events;
	unsigned int dir = 0;

	(void)r;
	/* Errors and hang-ups end waits on both sides: the call will report them. */
	if (e & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		dir |= IO_R;
	if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		dir |= IO_W;
	if (!dir)
		return;

	urt__spin_lock(&s->lock);
	if (dir & IO_R)
		atomic_fetch_add_explicit(&s->rseq, 1, memory_order_release);
	if (dir & IO_W)
		atomic_fetch_add_explicit(&s->wseq, 1, memory_order_release);
	if (!s->waiters.head && !s->cx) {
		urt__spin_unlock(&s->lock);
		return;
	}
	src_wake_unlock(s, false, 0);
}

/* ------------------------------------------------------------ operations */

/*
 * Counts a system call on s in flight; fails once the fd number was
 * forgotten (or is being forgotten) since the operation sampled gen.
 * *snap gets rseq << 32 | wseq, sampled before the system call.
 */
int urt__io_enter(struct io_src *s, unsigned int gen, uint64_t *snap)
{
	unsigned int v = atomic_fetch_add_explicit(&s->ops, 1, memory_order_acquire);

	if (unlikely((v & SRC_CLOSING) ||
		     atomic_load_explicit(&s->gen, memory_order_acquire) != gen)) {
		atomic_fetch_sub_explicit(&s->ops, 1, memory_order_release);
		return -EBADF;
	}
	if (snap)
		*snap = (uint64_t)atomic_load_explicit(&s->rseq, memory_order_acquire) << 32 |
			atomic_load_explicit(&s->wseq, memory_order_acquire);
	return 0;
}

void urt__io_exit(struct io_src *s)
{
	atomic_fetch_sub_explicit(&s->ops, 1, memory_order_release);
}

bool urt__io_pollable(struct io_src *s)
{
	return atomic_load_explicit(&s->state, memory_order_relaxed) == SRC_REG;
}

/*
 * Adds fd to epoll (once per fd number until forgotten) and makes it
 * non-blocking. epoll refuses regular files and directories with EPERM:
 * those are always "ready", and stay blocking (SRC_NOPOLL).
 */
static int src_register(struct urt_reactor *r, struct io_src *s, int fd,
			unsigned int gen)
{
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET,
		.data.ptr = s,
	};
	int fl, err;

	err = urt__io_enter(s, gen, NULL);
	if (err)
		return err;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0) {
		err = -errno;
		goto out;
	}
	/* Two fibers may race here: the loser sees EEXIST, same outcome. */
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) && errno != EEXIST) {
		err = -errno;
		if (err == -EPERM) {
			atomic_store_explicit(&s->state, SRC_NOPOLL, memory_order_release);
			err = 0;
		}
		goto out;
	}
	if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		err = -errno;
		goto out;	/* stays FRESH (and in epoll): the next call retries */
	}
	atomic_store_explicit(&s->state, SRC_REG, memory_order_release);
out:
	urt__io_exit(s);
	return err;
}

int urt__io_get(struct urt_reactor *r, int fd, struct io_src **out,
		unsigned int *gen)
{
	struct io_src *s = src_slot(r, fd, true);
	int err;

	if (unlikely(!s))
		return -ENOMEM;
	*gen = atomic_load_explicit(&s->gen, memory_order_acquire);
	*out = s;
	if (likely(atomic_load_explicit(&s->state, memory_order_acquire) != SRC_FRESH))
		return 0;
	err = src_register(r, s, fd, *gen);
	return err;
}

/* An fd epoll cannot watch said EAGAIN: retry now and then. */
static int nopoll_wait(int64_t deadline)
{
	int64_t now = urt_now(), d = now + NOPOLL_RETRY_NS;
	int err;

	if (deadline != URT_FOREVER && now >= deadline)
		return -ETIMEDOUT;
	if (d > deadline)
		d = deadline;
	err = urt__park(d);
	if (err == -ECANCELED)
		return err;
	if (deadline != URT_FOREVER && urt_now() >= deadline)
		return -ETIMEDOUT;
	return 0;
}

/*
 * Waits until the sequence of a direction in dir moves past snap (taken
 * by urt__io_enter before the system call that said EAGAIN). Returns 0
 * (retry the call; may be spurious), -EBADF (forgotten), -ETIMEDOUT or
 * -ECANCELED.
 */
int urt__io_wait(struct io_src *s, unsigned int gen, unsigned int dir,
		 uint64_t snap, int64_t deadline)
{
	struct io_wait iw;
	int err;

	if (unlikely(atomic_load_explicit(&s->state, memory_order_relaxed) == SRC_NOPOLL))
		return nopoll_wait(deadline);
	if (deadline != URT_FOREVER && urt_now() >= deadline)
		return -ETIMEDOUT;
	iw.dir = dir;
	iw.rs = (unsigned int)(snap >> 32);
	iw.ws = (unsigned int)snap;
	urt__waiter_init(&iw.w);

	urt__spin_lock(&s->lock);
	if (atomic_load_explicit(&s->gen, memory_order_relaxed) != gen) {
		urt__spin_unlock(&s->lock);
		return -EBADF;
	}
	if (moved(dir, iw.rs, iw.ws,
		  atomic_load_explicit(&s->rseq, memory_order_relaxed),
		  atomic_load_explicit(&s->wseq, memory_order_relaxed))) {
		urt__spin_unlock(&s->lock);
		return 0;
	}
	urt__wlist_push(&s->waiters, &iw.w);
	urt__spin_unlock(&s->lock);

	err = urt__waiter_wait(&iw.w, deadline);
	if (err) {
		urt__spin_lock(&s->lock);
		if (urt__wlist_linked(&s->waiters, &iw.w))
			urt__wlist_remove(&s->waiters, &iw.w);
		else
			err = 0;	/* notified meanwhile: take that */
		urt__spin_unlock(&s->lock);
		if (!err)
			urt__waiter_wait_notified(&iw.w);
	}
	return err ? err : iw.w.result;
}

/* ------------------------------------------------------------ forgetting */

/*
 * Forgets the fd number of s: waits for system calls in flight, removes it
 * from epoll (del), wakes waiters with -EBADF, fires armed cx nodes, frees
 * the nodes and resets the slot. Called with reactors_lock held.
 */
static void src_forget(struct urt_reactor *r, struct io_src *s, int fd, bool del)
{
	struct cx_node *n, *next;

	atomic_fetch_or_explicit(&s->ops, SRC_CLOSING, memory_order_acq_rel);
	/* In flight: non-blocking system calls (or a regular file's I/O). */
	while (atomic_load_explicit(&s->ops, memory_order_acquire) & ~SRC_CLOSING)
		sched_yield();
	if (del && atomic_load_explicit(&s->state, memory_order_relaxed) == SRC_REG)
		epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL);	/* ENOENT/EBADF: fine */

	urt__spin_lock(&s->lock);
	atomic_store_explicit(&s->state, SRC_FRESH, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->gen, 1, memory_order_release);
	src_wake_unlock(s, true, -EBADF);

	/* gen moved: nobody links or arms any more. */
	urt__spin_lock(&s->lock);
	n = s->cx;
	s->cx = NULL;
	s->ncx = 0;
	urt__spin_unlock(&s->lock);
	for (; n; n = next) {
		next = n->next;
		free(n);	/* all idle: src_wake_unlock fired the armed ones */
	}
	atomic_fetch_and_explicit(&s->ops, ~SRC_CLOSING, memory_order_release);
}

void urt__io_forget(int fd)
{
	struct urt_reactor *r;
	struct io_src *s;

	pthread_mutex_lock(&reactors_lock);
	for (r = reactors; r; r = r->next) {
		s = src_slot(r, fd, false);
		if (s)
			src_forget(r, s, fd, true);
	}
	pthread_mutex_unlock(&reactors_lock);
}

/*
 * fd was just returned by accept: it names a new file, so any state in its
 * slot belongs to an fd closed without urt_close(); drop it, then register
 * the new one (it is non-blocking already: accept4(SOCK_NONBLOCK)).
 */
void urt__io_adopt(struct urt_reactor *r, int fd)
{
	struct io_src *s = src_slot(r, fd, true);
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET,
	};
	unsigned int gen;

	if (!s)
		return;		/* the first operation retries */
	if (unlikely(atomic_load_explicit(&s->state, memory_order_acquire) != SRC_FRESH)) {
		pthread_mutex_lock(&reactors_lock);
		src_forget(r, s, fd, false);	/* the old file is not ours to DEL */
		pthread_mutex_unlock(&reactors_lock);
	}
	gen = atomic_load_explicit(&s->gen, memory_order_acquire);
	if (urt__io_enter(s, gen, NULL))
		return;
	ev.data.ptr = s;
	if (!epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) || errno == EEXIST)
		atomic_store_explicit(&s->state, SRC_REG, memory_order_release);
	urt__io_exit(s);
}

/* ------------------------------------------------------------ poll tasks */

/*
 * One-shot wake-up of poll task t when fd becomes ready for events. The
 * task keeps at most one node per fd: re-arming an armed node widens it;
 * re-arming an idle one compares the sequences with those when it last
 * fired, and wakes the task at once if an edge came since (the task's
 * EAGAIN may predate it). A task's first arm on an fd cannot know that,
 * so it wakes the task once at once; the next arm has a baseline.
 */
int urt__io_arm(struct urt_reactor *r, struct urt_task *t, int fd, uint32_t events)
{
	struct cx_node *n, *spare = NULL, *idle;
	unsigned int dir = 0, gen, rseq, wseq;
	uint64_t id = atomic_load_explicit(&t->id, memory_order_relaxed);
	struct io_src *s;
	bool wake = false, unref = false;
	int err;

	if (events & (EPOLLIN | EPOLLPRI | EPOLLRDHUP))
		dir |= IO_R;
	if (events & EPOLLOUT)
		dir |= IO_W;
	if (!dir)
		return -EINVAL;
	err = urt__io_get(r, fd, &s, &gen);
	if (err)
		return err;
	if (atomic_load_explicit(&s->state, memory_order_relaxed) == SRC_NOPOLL) {
		urt__task_wake(t);	/* a regular file is always ready */
		return 0;
	}
again:
	urt__spin_lock(&s->lock);
	if (atomic_load_explicit(&s->gen, memory_order_relaxed) != gen) {
		urt__spin_unlock(&s->lock);
		free(spare);
		return -EBADF;
	}
	rseq = atomic_load_explicit(&s->rseq, memory_order_relaxed);
	wseq = atomic_load_explicit(&s->wseq, memory_order_relaxed);
	idle = NULL;
	for (n = s->cx; n; n = n->next) {
		if (n->task_id == id)
			break;
		if (!n->armed)
			idle = n;
	}
	if (n && n->armed) {
		n->dir |= dir;
		if (moved(n->dir, n->rseen, n->wseen, rseq, wseq)) {
			/* the new direction already had an edge: fire now */
			n->armed = false;
			n->rseen = rseq;
			n->wseen = wseq;
			n->task = NULL;
			wake = unref = true;
		}
	} else if (n && moved(dir, n->rseen, n->wseen, rseq, wseq)) {
		n->rseen = rseq;
		n->wseen = wseq;
		wake = true;
	} else if (n) {
		urt__task_ref(t);
		n->task = t;
		n->dir = dir;
		n->armed = true;
	} else {
		/* First arm by this task: make an idle node as the baseline. */
		if (idle && s->ncx >= CX_CACHED_MAX) {
			n = idle;	/* recycle some other task's idle node */
		} else if (spare) {
			n = spare;
			spare = NULL;
			n->next = s->cx;
			s->cx = n;
			s->ncx++;
		} else {
			urt__spin_unlock(&s->lock);
			spare = malloc(sizeof(*spare));
			if (!spare)
				return -ENOMEM;
			goto again;
		}
		n->task = NULL;
		n->task_id = id;
		n->armed = false;
		n->dir = 0;
		n->rseen = rseq;
		n->wseen = wseq;
		wake = true;
	}
	urt__spin_unlock(&s->lock);
	free(spare);
	if (wake)
		urt__task_wake(t);
	if (unref)
		urt__task_unref(t);	/* the fired node's reference */
	return 0;
}

/* ------------------------------------------------------------ lifetime */

struct urt_reactor *urt__reactor_create(void)
{
	struct urt_reactor *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0) {
		int e = errno;

		free(r);
		errno = e;
		return NULL;
	}
	atomic_init(&r->max_fd, -1);
	pthread_mutex_lock(&reactors_lock);
	r->next = reactors;
	reactors = r;
	pthread_mutex_unlock(&reactors_lock);
	return r;
}

/*
 * Called after the runtime freed its tasks' memory (urt_destroy): nobody
 * waits any more, and armed nodes' task pointers must not be touched (their
 * references died with the task slabs). Only our own memory is freed.
 */
void urt__reactor_destroy(struct urt_reactor *r)
{
	struct urt_reactor **p;
	int fd, max;
	unsigned int k;

	if (!r)
		return;
	pthread_mutex_lock(&reactors_lock);
	for (p = &reactors; *p; p = &(*p)->next) {
		if (*p == r) {
			*p = r->next;
			break;
		}
	}
	pthread_mutex_unlock(&reactors_lock);

	max = atomic_load_explicit(&r->max_fd, memory_order_acquire);
	for (fd = 0; fd <= max; fd++) {
		struct io_src *s = src_slot(r, fd, false);
		struct cx_node *n, *next;

		if (!s)
			continue;
		for (n = s->cx; n; n = next) {
			next = n->next;
			free(n);
		}
	}
	for (k = 0; k < NCHUNK; k++)
		free(atomic_load_explicit(&r->chunk[k], memory_order_relaxed));
	close(r->epfd);
	free(r);
}

int urt__reactor_epfd(struct urt_reactor *r)
{
	return r->epfd;
}
