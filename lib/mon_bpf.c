// SPDX-License-Identifier: MIT
/*
 * mon_bpf.c - the monitor on a sched_switch BPF program (bpf/urt_mon.bpf.c,
 * embedded as a libbpf skeleton generated at build time).
 *
 * Maps (sized to max_workers before load):
 *   tid_slot  hash tid -> slot: the runtime inserts a worker at register
 *             (on the worker thread, so gettid() is the key) and deletes
 *             it at unregister. The program also filters on tgid (rodata),
 *             so other processes' switches cost a compare.
 *   states    BPF_F_MMAPABLE array of struct urt_mon_state (same layout as
 *             the kmod's struct urt_worker_state), mapped here by hand,
 *             page-rounded (skeletons only map .data/.bss).
 *   timers    one bpf_timer per slot (a timer cannot live in an mmapable
 *             map), armed at block time; tp_btf only.
 *   notes     ringbuf: one record per block that passed the threshold.
 *
 * Modes: "timer" (tp_btf/sched_switch + bpf_timer: wait() sleeps in poll()
 * on the ringbuf, the kernel wakes it only when a threshold passes) or
 * "tick" (raw_tp/sched_switch fallback, or "bpf-tick": wait() scans the
 * mapped array with the sleep policy of urt__mon_tick_scan). "bpf" tries
 * timer, then tick on raw_tp; "bpf-raw" goes straight to the fallback
 * (so the selftests cover it).
 *
 * Who writes states[slot]: the program, at the slot thread's own context
 * switches, while the thread is in tid_slot; this file, at register
 * (before the insert) and unregister (after the delete), on that thread
 * while it runs, so never at the same time as the program.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mon_impl.h"
#include "../bpf/urt_mon.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include "urt_mon.skel.h"
#pragma GCC diagnostic pop

_Static_assert(sizeof(struct urt_mon_state) == 64, "layout of urt_worker_state");
_Static_assert(offsetof(struct urt_mon_state, blocked_since_ns) == 24, "layout");
_Static_assert(URT_MON_S_BLOCKED == URT_MON_BLOCKED && URT_MON_S_RUNNING == URT_MON_RUNNING,
	       "state values");

struct mon_bpf {
	struct urt_mon_bpf *skel;
	struct urt_mon_state *states;	/* mmapped "states" */
	size_t map_len;
	struct ring_buffer *rb;		/* timer mode */
	bool timer;
	const char *attach;		/* "tp_btf" / "raw_tp" */
	struct urt_mon_tick tick;	/* tick mode */
	char desc[96];
};

/* ------------------------------------------------ libbpf's messages */

/* libbpf reports load failures through its print callback: keep the first
 * warning for why[] instead of spraying the application's stderr. */
static char *bpf_msg;
static size_t bpf_msglen;

static int bpf_capture(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	size_t n;

	if (level == LIBBPF_DEBUG || !bpf_msg || bpf_msg[0])
		return 0;
	vsnprintf(bpf_msg, bpf_msglen, fmt, ap);
	n = strlen(bpf_msg);
	while (n && (bpf_msg[n - 1] == '\n' || bpf_msg[n - 1] == ' '))
		bpf_msg[--n] = 0;
	return 0;
}

/* ------------------------------------------------ open/close */

static void bpf_teardown(struct mon_bpf *b)
{
	if (b->rb)
		ring_buffer__free(b->rb);
	if (b->states)
		munmap(b->states, b->map_len);
	urt_mon_bpf__destroy(b->skel);	/* detaches, closes progs and maps */
	b->rb = NULL;
	b->states = NULL;
	b->skel = NULL;
}

static int bpf_try(struct urt_mon *m, struct mon_bpf *b, bool raw, bool timer,
		   char *why, size_t whylen)
{
	struct bpf_program *prog, *other;
	struct bpf_link *link;
	long page = sysconf(_SC_PAGESIZE);
	const char *step;
	void *p;
	int err;

	b->skel = urt_mon_bpf__open();
	if (!b->skel) {
		err = -errno;
		step = "open";
		goto fail;
	}
	prog = raw ? b->skel->progs.urt_switch_raw : b->skel->progs.urt_switch;
	other = raw ? b->skel->progs.urt_switch : b->skel->progs.urt_switch_raw;
	bpf_program__set_autoload(other, false);
	b->skel->rodata->target_tgid = (uint32_t)getpid();
	b->skel->bss->notice_ns = timer ? (uint64_t)m->threshold_ns : 0;
	bpf_map__set_max_entries(b->skel->maps.tid_slot, m->max_workers);
	bpf_map__set_max_entries(b->skel->maps.states, m->max_workers);
	bpf_map__set_max_entries(b->skel->maps.timers, timer ? m->max_workers : 1);
	err = urt_mon_bpf__load(b->skel);
	if (err) {
		step = "load";
		goto fail;
	}
	link = bpf_program__attach(prog);
	if (!link) {
		err = -errno;
		step = "attach";
		goto fail;
	}
	if (raw)
		b->skel->links.urt_switch_raw = link;
	else
		b->skel->links.urt_switch = link;
	b->map_len = ((size_t)m->max_workers * sizeof(struct urt_mon_state) + page - 1) &
		     ~((size_t)page - 1);
	p = mmap(NULL, b->map_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		 bpf_map__fd(b->skel->maps.states), 0);
	if (p == MAP_FAILED) {
		err = -errno;
		step = "mmap states";
		goto fail;
	}
	b->states = p;
	if (timer) {
		b->rb = ring_buffer__new(bpf_map__fd(b->skel->maps.notes), NULL, NULL, NULL);
		if (!b->rb) {
			err = -errno;
			step = "ring_buffer__new";
			goto fail;
		}
	}
	b->timer = timer;
	b->attach = raw ? "raw_tp" : "tp_btf";
	return 0;
fail:
	if (why && whylen) {
		char msg[100];

		snprintf(msg, sizeof(msg), "%s", bpf_msg && bpf_msg[0] ? bpf_msg : "");
		snprintf(why, whylen, "%s %s: %s%s%s", raw ? "raw_tp" : "tp_btf", step,
			 strerror(-err), msg[0] ? " (" : "", msg);
		if (msg[0] && strlen(why) + 1 < whylen)
			strcat(why, ")");
	}
	bpf_teardown(b);
	return err ? err : -EINVAL;
}

static int bpf_rb_note(void *ctx, void *data, size_t len);

static void bpf_close(struct urt_mon *m)
{
	struct mon_bpf *b = m->priv;

	if (!b)
		return;
	bpf_teardown(b);
	urt__mon_tick_fini(&b->tick);
	free(b);
	m->priv = NULL;
}

static int bpf_open(struct urt_mon *m, const char *mode, char *why, size_t whylen)
{
	libbpf_print_fn_t old;
	struct mon_bpf *b;
	char msg[100] = "", why1[200] = "";
	bool want_timer = strcmp(mode, "bpf-tick") && strcmp(mode, "bpf-raw");
	bool allow_tick = strcmp(mode, "bpf-timer") != 0;
	int err;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	m->priv = b;
	if (urt__mon_tick_init(m, &b->tick)) {
		bpf_close(m);
		return -ENOMEM;
	}
	if (geteuid() != 0 && access("/sys/kernel/btf/vmlinux", R_OK) == 0) {
		/* Unprivileged BPF tracing does not exist: say so plainly. */
	}
	bpf_msg = msg;
	bpf_msglen = sizeof(msg);
	old = libbpf_set_print(bpf_capture);
	/* tp_btf (with the threshold timer unless a tick was asked for) */
	if (!strcmp(mode, "bpf-raw")) {
		snprintf(why1, sizeof(why1), "tp_btf not tried (bpf-raw)");
		err = -ENOENT;
	} else {
		err = bpf_try(m, b, false, want_timer, why1, sizeof(why1));
	}
	if (err && allow_tick) {
		char why2[200] = "";

		msg[0] = 0;
		err = bpf_try(m, b, true, false, why2, sizeof(why2));
		if (err)
			snprintf(why, whylen, "%.180s, %.180s", why1, why2);
	} else if (err) {
		snprintf(why, whylen, "%s", why1);
	}
	libbpf_set_print(old);
	bpf_msg = NULL;
	if (err) {
		bpf_close(m);
		return err;
	}
	if (b->rb) {
		/* The callback needs m: add the ring again with a context. */
		ring_buffer__free(b->rb);
		b->rb = ring_buffer__new(bpf_map__fd(b->skel->maps.notes), bpf_rb_note, m, NULL);
		if (!b->rb) {
			err = -errno;
			snprintf(why, whylen, "ring_buffer__new: %s", strerror(-err));
			bpf_close(m);
			return err;
		}
	}
	snprintf(b->desc, sizeof(b->desc), "%s/sched_switch, %s", b->attach,
		 b->timer ? "bpf_timer threshold" : "tick over the mmapped states");
	return 0;
}

/* ------------------------------------------------ per worker */

static void state_write(struct urt_mon_state *st, uint32_t state, int32_t tid, uint32_t slot)
{
	uint32_t seq = __atomic_load_n(&st->seq, __ATOMIC_RELAXED) & ~1u;

	/* An acquire RMW: the field stores below cannot move above it. */
	__atomic_exchange_n(&st->seq, seq + 1, __ATOMIC_ACQ_REL);
	__atomic_store_n(&st->state, state, __ATOMIC_RELAXED);
	__atomic_store_n(&st->slot, slot, __ATOMIC_RELAXED);
	__atomic_store_n(&st->tid, tid, __ATOMIC_RELAXED);
	__atomic_store_n(&st->syscall_nr, -1, __ATOMIC_RELAXED);
	__atomic_store_n(&st->blocked_since_ns, (uint64_t)urt_now(), __ATOMIC_RELAXED);
	if (state == URT_MON_RUNNING) {
		__atomic_store_n(&st->blocks, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&st->blocked_ns, 0, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&st->seq, seq + 2, __ATOMIC_RELEASE);
}

static int bpf_reg(struct urt_mon *m, unsigned int slot, pid_t tid)
{
	struct mon_bpf *b = m->priv;
	struct urt_mon_state *st = &b->states[slot];
	uint32_t key = (uint32_t)tid, val = slot;

	if (__atomic_load_n(&st->state, __ATOMIC_ACQUIRE) != URT_MON_UNUSED)
		return -EBUSY;
	state_write(st, URT_MON_RUNNING, tid, slot);
	if (bpf_map_update_elem(bpf_map__fd(b->skel->maps.tid_slot), &key, &val,
				BPF_NOEXIST)) {
		int err = errno == EEXIST ? -EBUSY : -errno;

		state_write(st, URT_MON_UNUSED, 0, slot);
		return err;
	}
	return 0;
}

static int bpf_unreg(struct urt_mon *m, unsigned int slot)
{
	struct mon_bpf *b = m->priv;
	struct urt_mon_state *st = &b->states[slot];
	int32_t tid = (int32_t)syscall(SYS_gettid);
	uint32_t key = (uint32_t)tid;

	if (__atomic_load_n(&st->tid, __ATOMIC_RELAXED) != tid)
		return -ENOENT;
	if (bpf_map_delete_elem(bpf_map__fd(b->skel->maps.tid_slot), &key))
		return -errno;
	state_write(st, URT_MON_UNUSED, 0, slot);
	return 0;
}

static int bpf_snapshot(struct urt_mon *m, unsigned int slot, struct urt_mon_wstate *out)
{
	struct mon_bpf *b = m->priv;

	urt__mon_read_state(&b->states[slot], out);
	return 0;
}

/* ------------------------------------------------ wait */

static int bpf_rb_note(void *ctx, void *data, size_t len)
{
	struct urt_mon *m = ctx;
	const struct urt_mon_note *n = data;
	struct urt_mon_event ev;

	if (len < sizeof(*n))
		return 0;
	ev = (struct urt_mon_event){
		.slot = n->slot, .seq = n->seq, .tid = n->tid, .syscall = (int32_t)n->syscall_nr,
		.since_ns = (int64_t)n->blocked_since_ns, .time_ns = (int64_t)n->time_ns,
	};
	urt__mon_post(m, &ev);
	return 0;
}

static int bpf_scan(struct urt_mon *m, unsigned int slot, struct urt_mon_wstate *ws, int64_t now)
{
	struct mon_bpf *b = m->priv;

	urt__mon_read_state(&b->states[slot], ws);
	return 0;
}

static int bpf_wait(struct urt_mon *m, int64_t deadline)
{
	struct mon_bpf *b = m->priv;
	int64_t next;
	int err;

	if (b->timer) {
		err = ring_buffer__consume(b->rb);
		if (err < 0)
			return err;
		if (m->npending)
			return 0;
		urt__mon_sleep(m, deadline, ring_buffer__epoll_fd(b->rb));
		err = ring_buffer__consume(b->rb);
		return err < 0 ? err : 0;
	}
	for (;;) {
		next = urt__mon_tick_scan(m, &b->tick, urt_now(), bpf_scan);
		if (m->npending)
			return 0;
		if (next > deadline)
			next = deadline;
		urt__mon_sleep(m, next, -1);
		if (m->kicked || urt_now() >= deadline)
			return 0;
	}
}

/* Timer mode: the program reads notice_ns from its mapped .bss at each
 * block; tick mode: bpf_wait's scan reads m->threshold_ns. */
static int bpf_set_notice(struct urt_mon *m, int64_t notice_ns)
{
	struct mon_bpf *b = m->priv;

	if (b->timer)
		__atomic_store_n(&b->skel->bss->notice_ns, (uint64_t)notice_ns, __ATOMIC_RELAXED);
	return 0;
}

static const char *bpf_describe(struct urt_mon *m)
{
	return ((struct mon_bpf *)m->priv)->desc;
}

const struct urt_mon_ops urt__mon_bpf_ops = {
	.name = "bpf", .open = bpf_open, .reg = bpf_reg, .unreg = bpf_unreg,
	.snapshot = bpf_snapshot, .wait = bpf_wait, .close = bpf_close,
	.set_notice = bpf_set_notice, .describe = bpf_describe,
};
