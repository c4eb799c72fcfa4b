// SPDX-License-Identifier: MIT
/*
 * mon.c - the monitor: backend selection, dispatch, and what the backends
 * share (the pending-event table, the kick eventfd, the tick).
 *
 * Design (see monitor.h for the contract, Documentation/monitor.md for the
 * numbers):
 *   - The backends only say "slot S has been blocked in block seq Q for
 *     the threshold". Policy (is there work queued behind S? did the
 *     worker park on purpose?) is the runtime's.
 *   - No per-block cost in user space: kmod and bpf-timer time the
 *     threshold in the kernel and wake the monitor only when it passes;
 *     the tick backends (proc, bpf-tick) sleep until the earliest moment a
 *     block they know of can pass the threshold.
 *   - Events are coalesced per slot in `pending` (a slot's newer block
 *     makes its older one moot), so the queue is bounded by max_workers and
 *     a caller with a small buffer loses nothing.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "mon_impl.h"

static void mon_why(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#include <stdarg.h>
static void mon_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (!why || !whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

const char *urt__mon_kind_name(enum urt_mon_kind k)
{
	switch (k) {
	case URT_MON_OFF:	return "off";
	case URT_MON_PROC:	return "proc";
	case URT_MON_BPF:	return "bpf";
	case URT_MON_KMOD:	return "kmod";
	}
	return "?";
}

/* ---------------------------------------------------------- OFF backend */

static int off_open(struct urt_mon *m, const char *mode, char *why, size_t whylen)
{
	return 0;
}
static int off_reg(struct urt_mon *m, unsigned int slot, pid_t tid)
{
	return 0;
}

static int off_unreg(struct urt_mon *m, unsigned int slot)
{
	return 0;
}
static int off_snapshot(struct urt_mon *m, unsigned int slot, struct urt_mon_wstate *out)
{
	return -EOPNOTSUPP;
}
static int off_wait(struct urt_mon *m, int64_t deadline)
{
	urt__mon_sleep(m, deadline, -1);
	return 0;
}
static void off_close(struct urt_mon *m)
{
}
static const char *off_describe(struct urt_mon *m)
{
	return "nothing watched";
}
static const struct urt_mon_ops mon_off_ops = {
	.name = "off", .open = off_open, .reg = off_reg, .unreg = off_unreg,
	.snapshot = off_snapshot, .wait = off_wait, .close = off_close,
	.describe = off_describe,
};

/* ---------------------------------------------------------- open/close */

static struct urt_mon *mon_alloc(unsigned int max_workers, int64_t threshold_ns)
{
	struct urt_mon *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->max_workers = max_workers;
	m->threshold_ns = threshold_ns;
	m->pending = calloc(max_workers, sizeof(*m->pending));
	m->has_pending = calloc(max_workers, sizeof(*m->has_pending));
	m->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!m->pending || !m->has_pending || m->kick_fd < 0) {
		if (m->kick_fd >= 0)
			close(m->kick_fd);
		free(m->pending);
		free(m->has_pending);
		free(m);
		return NULL;
	}
	return m;
}

static void mon_free(struct urt_mon *m)
{
	close(m->kick_fd);
	free(m->pending);
	free(m->has_pending);
	free(m);
}

/* Tries one backend; on failure appends "name: reason; " to notes. */
static int mon_try(struct urt_mon *m, enum urt_mon_kind kind, const struct urt_mon_ops *ops,
		   const char *mode, char *notes, size_t nlen)
{
	char reason[400] = "";
	size_t used = strlen(notes);
	int err;

	m->kind = kind;
	m->ops = ops;
	m->priv = NULL;
	err = ops->open(m, mode, reason, sizeof(reason));
	if (err && used < nlen)
		snprintf(notes + used, nlen - used, "%s%s: %s", used ? "; " : "",
			 ops->name, reason[0] ? reason : strerror(-err));
	return err;
}

int urt__mon_open(struct urt_mon **out, const char *which, unsigned int max_workers,
		  int64_t threshold_ns, char *why, size_t whylen)
{
	char notes[512] = "";
	const char *mode = NULL;
	struct urt_mon *m;
	int err;

	*out = NULL;
	if (!which)
		which = "auto";
	if (max_workers == 0 || max_workers > 4096 || threshold_ns <= 0) {
		mon_why(why, whylen, "monitor: bad arguments (workers %u, threshold %lld ns)",
			max_workers, (long long)threshold_ns);
		return -EINVAL;
	}
	if (strcmp(which, "auto") && strcmp(which, "kmod") && strcmp(which, "bpf") &&
	    strcmp(which, "bpf-timer") && strcmp(which, "bpf-tick") && strcmp(which, "bpf-raw") &&
	    strcmp(which, "proc") && strcmp(which, "off")) {
		mon_why(why, whylen, "monitor: unknown backend '%s' (auto|kmod|bpf|proc|off)",
			which);
		return -EINVAL;
	}
	m = mon_alloc(max_workers, threshold_ns);
	if (!m) {
		mon_why(why, whylen, "monitor: out of memory");
		return -ENOMEM;
	}

	if (!strcmp(which, "auto")) {
		if (access(URT_MON_KMOD_PATH, F_OK) ||
		    mon_try(m, URT_MON_KMOD, &urt__mon_kmod_ops, NULL, notes, sizeof(notes))) {
			if (!notes[0])
				snprintf(notes, sizeof(notes), "kmod: %s absent", URT_MON_KMOD_PATH);
			if (mon_try(m, URT_MON_BPF, &urt__mon_bpf_ops, "bpf", notes, sizeof(notes)))
				err = mon_try(m, URT_MON_PROC, &urt__mon_proc_ops, NULL, notes,
					      sizeof(notes));
			else
				err = 0;
		} else {
			err = 0;
		}
	} else if (!strcmp(which, "kmod")) {
		err = mon_try(m, URT_MON_KMOD, &urt__mon_kmod_ops, NULL, notes, sizeof(notes));
	} else if (!strncmp(which, "bpf", 3)) {
		mode = which;
		err = mon_try(m, URT_MON_BPF, &urt__mon_bpf_ops, mode, notes, sizeof(notes));
	} else if (!strcmp(which, "proc")) {
		err = mon_try(m, URT_MON_PROC, &urt__mon_proc_ops, NULL, notes, sizeof(notes));
	} else {
		err = mon_try(m, URT_MON_OFF, &mon_off_ops, NULL, notes, sizeof(notes));
	}
	if (err) {
		mon_why(why, whylen, "monitor: %s failed: %s", which, notes);
		mon_free(m);
		return err;
	}
	mon_why(why, whylen, "monitor: %s (%s)%s%s", m->ops->name, m->ops->describe(m),
		notes[0] ? "; not " : "", notes);
	*out = m;
	return 0;
}

void urt__mon_close(struct urt_mon *m)
{
	if (!m)
		return;
	m->ops->close(m);
	mon_free(m);
}

enum urt_mon_kind urt__mon_kind(struct urt_mon *m)
{
	return m->kind;
}

/* ---------------------------------------------------------- dispatch */

int urt__mon_register(struct urt_mon *m, unsigned int slot)
{
	if (slot >= m->max_workers)
		return -EINVAL;
	return m->ops->reg(m, slot, (pid_t)syscall(SYS_gettid));
}

int urt__mon_register_tid(struct urt_mon *m, unsigned int slot, pid_t tid)
{
	if (slot >= m->max_workers || tid <= 0)
		return -EINVAL;
	return m->ops->reg(m, slot, tid);
}

int urt__mon_set_wakes(struct urt_mon *m, unsigned int slot, const atomic_uint *wakes)
{
	if (slot >= m->max_workers)
		return -EINVAL;
	return m->ops->set_wakes ? m->ops->set_wakes(m, slot, wakes) : 0;
}

int urt__mon_unregister(struct urt_mon *m, unsigned int slot)
{
	if (slot >= m->max_workers)
		return -EINVAL;
	return m->ops->unreg(m, slot);
}

int urt__mon_snapshot(struct urt_mon *m, unsigned int slot, struct urt_mon_wstate *out)
{
	if (slot >= m->max_workers)
		return -EINVAL;
	return m->ops->snapshot(m, slot, out);
}

int urt__mon_set_notice(struct urt_mon *m, int64_t notice_ns)
{
	int err;

	if (notice_ns <= 0)
		return -EINVAL;
	err = m->ops->set_notice ? m->ops->set_notice(m, notice_ns) : 0;
	if (!err)
		m->threshold_ns = notice_ns;
	return err;
}

void urt__mon_kick(struct urt_mon *m)
{
	uint64_t one = 1;
	ssize_t r = write(m->kick_fd, &one, sizeof(one));

	(void)r;	/* EAGAIN: the counter is already non-zero */
}

void urt__mon_post(struct urt_mon *m, const struct urt_mon_event *ev)
{
	if (ev->slot >= m->max_workers)
		return;
	if (!m->has_pending[ev->slot]) {
		m->has_pending[ev->slot] = true;
		m->npending++;
	}
	m->pending[ev->slot] = *ev;
}

static unsigned int mon_drain(struct urt_mon *m, struct urt_mon_event *evs, unsigned int max)
{
	unsigned int n = 0, i;

	/* Round robin from cursor, so a small buffer does not starve slots. */
	for (i = 0; i < m->max_workers && n < max && m->npending; i++) {
		unsigned int s = (m->cursor + i) % m->max_workers;

		if (!m->has_pending[s])
			continue;
		evs[n++] = m->pending[s];
		m->has_pending[s] = false;
		m->npending--;
	}
	m->cursor = (m->cursor + i) % m->max_workers;
	return n;
}

int urt__mon_wait(struct urt_mon *m, int64_t timeout_ns, struct urt_mon_event *evs,
		  unsigned int max)
{
	int64_t deadline = urt__deadline(timeout_ns);
	unsigned int n;
	int err;

	if (!max)
		return -EINVAL;
	for (;;) {
		n = mon_drain(m, evs, max);
		if (n)
			return n;
		m->kicked = false;
		err = m->ops->wait(m, deadline);
		if (err)
			return err;
		if (m->npending)
			continue;
		if (m->kicked || urt_now() >= deadline)
			return 0;
	}
}

/* ---------------------------------------------------------- helpers */

int urt__mon_sleep(struct urt_mon *m, int64_t deadline, int poll_fd)
{
	struct pollfd pfd[2] = {
		{ .fd = m->kick_fd, .events = POLLIN },
		{ .fd = poll_fd, .events = POLLIN },
	};
	struct timespec ts, *tsp = NULL;
	int64_t now = urt_now();
	uint64_t v;
	int r;

	if (deadline != URT_FOREVER) {
		int64_t d = deadline > now ? deadline - now : 0;

		ts.tv_sec = d / 1000000000LL;
		ts.tv_nsec = d % 1000000000LL;
		tsp = &ts;
	}
	r = ppoll(pfd, poll_fd >= 0 ? 2 : 1, tsp, NULL);
	if (r <= 0)
		return 0;		/* timeout, EINTR: the caller loops */
	if (pfd[0].revents & POLLIN) {
		if (read(m->kick_fd, &v, sizeof(v)) == sizeof(v))
			m->kicked = true;
	}
	return poll_fd >= 0 && (pfd[1].revents & (POLLIN | POLLERR | POLLHUP)) ? 1 : 0;
}

/* Layout of struct urt_worker_state (include/uapi/linux/urt.h). */
struct mon_kstate {
	uint32_t seq, state, slot;
	int32_t tid;
	int64_t syscall_nr;
	uint64_t since, blocks, blocked_ns, reserved[2];
};
_Static_assert(sizeof(struct mon_kstate) == 64, "urt_worker_state layout");

/*
 * No fences (TSan does not model them): the field loads are acquire, so
 * the second load of seq cannot move above them. On x86 all of these are
 * plain moves.
 */
#define LD(p)	__atomic_load_n(&(p), __ATOMIC_ACQUIRE)

void urt__mon_read_state(const void *p, struct urt_mon_wstate *out)
{
	const struct mon_kstate *st = p;
	uint32_t s1, s2;

	for (;;) {
		s1 = __atomic_load_n(&st->seq, __ATOMIC_ACQUIRE);
		if (s1 & 1) {
			__builtin_ia32_pause();
			continue;
		}
		out->seq = s1;
		out->state = LD(st->state);
		out->tid = LD(st->tid);
		out->syscall = (int32_t)LD(st->syscall_nr);
		out->since_ns = (int64_t)LD(st->since);
		out->blocks = LD(st->blocks);
		out->blocked_ns = LD(st->blocked_ns);
		s2 = __atomic_load_n(&st->seq, __ATOMIC_RELAXED);
		if (s1 == s2)
			return;
	}
}

int urt__mon_tick_init(struct urt_mon *m, struct urt_mon_tick *t)
{
	t->interval = URT_MON_TICK_MIN_NS;
	t->reported = calloc(m->max_workers, sizeof(*t->reported));
	t->last_seq = calloc(m->max_workers, sizeof(*t->last_seq));
	return t->reported && t->last_seq ? 0 : -ENOMEM;
}

void urt__mon_tick_fini(struct urt_mon_tick *t)
{
	free(t->reported);
	free(t->last_seq);
	t->reported = t->last_seq = NULL;
}

/*
 * Sleep policy. A block that starts after this pass passes the threshold
 * no sooner than now + threshold, so sleeping min(threshold, interval)
 * loses nothing; while a known block is pending, sleep exactly until it
 * is due. While slots change state (blocks come and go) look every
 * max(threshold, 20 us); once nothing changed for 50 passes (all
 * running, or all parked) the interval doubles up to 10 ms (or the
 * threshold if larger), as Go's sysmon backs off when idle.
 */
int64_t urt__mon_tick_scan(struct urt_mon *m, struct urt_mon_tick *t, int64_t now,
			   int (*scan)(struct urt_mon *m, unsigned int slot,
				       struct urt_mon_wstate *ws, int64_t now))
{
	int64_t due, next = URT_FOREVER, base, cap;
	struct urt_mon_wstate ws;
	struct urt_mon_event ev;
	bool waiting = false, active = false;

	for (unsigned int s = 0; s < m->max_workers; s++) {
		if (scan(m, s, &ws, now) < 0)
			continue;
		if (t->last_seq[s] != ws.seq) {
			t->last_seq[s] = ws.seq;
			active = true;
		}
		if (ws.state != URT_MON_BLOCKED)
			continue;
		if (t->reported[s] == ws.seq + 1)
			continue;
		due = ws.since_ns + m->threshold_ns;
		if (now >= due) {
			ev = (struct urt_mon_event){
				.slot = s, .seq = ws.seq, .tid = ws.tid,
				.syscall = ws.syscall, .since_ns = ws.since_ns,
				.time_ns = now,
			};
			urt__mon_post(m, &ev);
			t->reported[s] = ws.seq + 1;
		} else {
			waiting = true;
			if (due < next)
				next = due;
		}
	}
	base = m->threshold_ns < URT_MON_TICK_MIN_NS ? URT_MON_TICK_MIN_NS : m->threshold_ns;
	if (base > URT_MON_TICK_MAX_NS)
		base = URT_MON_TICK_MAX_NS;
	cap = m->threshold_ns > URT_MON_TICK_MAX_NS ? m->threshold_ns : URT_MON_TICK_MAX_NS;
	if (waiting) {
		t->idle_passes = 0;
		/* Samplers (proc) must see the gaps between short blocks, or
		 * they would merge them into one long block: look again at
		 * threshold / 8 (>= 20 us) until the block is due. */
		int64_t look = m->threshold_ns / 8;

		if (look < URT_MON_TICK_MIN_NS)
			look = URT_MON_TICK_MIN_NS;
		if (t->sampling && now + look < next)
			next = now + look;
		t->interval = base;
	} else if (active || ++t->idle_passes < URT_MON_TICK_IDLE_PASSES) {
		/* slots are blocking and waking: keep looking at the base rate */
		if (active)
			t->idle_passes = 0;
		t->interval = base;
		next = now + base;
	} else {
		if (t->interval < base)
			t->interval = base;
		next = now + t->interval;
		t->interval = t->interval * 2 > cap ? cap : t->interval * 2;
	}
	return next;
}
