// SPDX-License-Identifier: MIT
/*
 * The monitor's backends (lib/monitor.h) with real threads and the real
 * kernel side: proc (always), bpf with its bpf_timer and its tick (root;
 * under CI they must run, never skip) and kmod (skips only when /dev/urt is
 * absent: the VM suite runs it with the module loaded).
 *
 * Every test runs once per backend (FIXTURE_VARIANT). A worker thread
 * registers itself, then does what the test asks (block in read(), sleep,
 * wait on a mutex, spin); the test thread watches it through snapshots and
 * urt__mon_wait(). Timing is never asserted except as orders of magnitude
 * (a 50 ms block against a 5 ms threshold); detection latency is printed.
 *
 * Built with -DURT_VM_KMOD_ONLY (make vm-tests: the static copy that
 * selftests/vm runs with urt.ko loaded), only the kmod variant and the tests
 * that exercise it are compiled in, and a missing /dev/urt is a failure,
 * not a skip: in the VM nothing may skip.
 */
#include <bpf/bpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "kselftest_harness.h"
#include "util.h"
#include "monitor.h"
#include "bpfprogs.h"

#define THRESHOLD	MS(5)
/* A TAP diagnostic; flushed because each test is a child that _exit()s. */
#define DIAG(...)	do { ksft_print_msg(__VA_ARGS__); fflush(stdout); } while (0)
#define MAXLOG		256

/* ------------------------------------------------------------ helpers */

struct worker {
	pthread_t th;
	struct urt_mon *m;
	unsigned int slot;
	void (*fn)(struct worker *w);
	int pipe[2];			/* read() blocks on pipe[0] */
	pthread_mutex_t *mutex;
	atomic_int ready;		/* 1: registered, 2: fn done */
	atomic_bool stop;
	atomic_int tid;
	int reg_err, unreg_err;
	int nblocks;			/* fn parameters */
	int64_t block_ns, spin_ns;
	struct urt_mon_wstate end;	/* snapshot right after fn */
	atomic_uint wakes;		/* do_park_then_read: urt__mon_set_wakes */
};

static void spin_for(int64_t ns)
{
	int64_t end = urt_now() + ns;

	while (urt_now() < end)
		;	/* clock_gettime is a vDSO call: no syscall, no block */
}

static void sleep_ns(int64_t ns)
{
	struct timespec ts = { ns / 1000000000LL, ns % 1000000000LL };

	while (nanosleep(&ts, &ts))
		;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	atomic_store(&w->tid, (int)syscall(SYS_gettid));
	w->reg_err = urt__mon_register(w->m, w->slot);
	atomic_store(&w->ready, 1);
	if (!w->reg_err && w->fn)
		w->fn(w);
	if (!w->reg_err)
		urt__mon_snapshot(w->m, w->slot, &w->end);
	atomic_store(&w->ready, 2);
	while (!atomic_load(&w->stop))
		;	/* spin: a sleep here would be a block of its own */
	if (!w->reg_err)
		w->unreg_err = urt__mon_unregister(w->m, w->slot);
	return NULL;
}

static void worker_start(struct worker *w, struct urt_mon *m, unsigned int slot,
			 void (*fn)(struct worker *))
{
	w->m = m;
	w->slot = slot;
	w->fn = fn;
	if (pipe2(w->pipe, O_CLOEXEC))
		abort();
	if (pthread_create(&w->th, NULL, worker_main, w))
		abort();
	while (!atomic_load(&w->ready))
		sleep_ns(100000);
}

static void worker_stop(struct worker *w)
{
	char c = 1;

	atomic_store(&w->stop, true);
	if (write(w->pipe[1], &c, 1) != 1)
		abort();
	pthread_join(w->th, NULL);
	close(w->pipe[0]);
	close(w->pipe[1]);
}

static void do_read(struct worker *w)
{
	char c;

	if (read(w->pipe[0], &c, 1) != 1)
		abort();
}

static void do_sleep(struct worker *w)
{
	sleep_ns(MS(300));
}

static void do_lock(struct worker *w)
{
	pthread_mutex_lock(w->mutex);
	pthread_mutex_unlock(w->mutex);
}

static void do_spin(struct worker *w)
{
	while (!atomic_load(&w->stop))
		;
}

/* nblocks sleeps of block_ns, each followed by spin_ns of running */
static void do_blocks(struct worker *w)
{
	for (int i = 0; i < w->nblocks; i++) {
		sleep_ns(w->block_ns);
		spin_for(w->spin_ns);
	}
}

/*
 * A "park" (a sleep the runtime chose), then at once a block in read():
 * what a worker does when it wakes for a task that blocks. The counter
 * moves in between, as the runtime's park does.
 */
static void do_park_then_read(struct worker *w)
{
	char c;

	if (urt__mon_set_wakes(w->m, w->slot, &w->wakes))
		abort();
	sleep_ns(MS(50));
	atomic_fetch_add(&w->wakes, 1);
	if (read(w->pipe[0], &c, 1) != 1)
		abort();
}

FIXTURE(mon) {
	struct urt_mon *m;
	struct urt_mon_event log[MAXLOG];
	int nlog;
	int64_t got[MAXLOG];		/* urt_now() when wait returned the event */
};

FIXTURE_VARIANT(mon) {
	const char *which;
	bool exact;			/* sees every block (kernel side) */
};

#ifndef URT_VM_KMOD_ONLY
FIXTURE_VARIANT_ADD(mon, proc) { .which = "proc", .exact = false };
FIXTURE_VARIANT_ADD(mon, bpf_timer) { .which = "bpf-timer", .exact = true };
FIXTURE_VARIANT_ADD(mon, bpf_tick) { .which = "bpf-tick", .exact = true };
FIXTURE_VARIANT_ADD(mon, bpf_raw_tp) { .which = "bpf-raw", .exact = true };
#endif
FIXTURE_VARIANT_ADD(mon, kmod) { .which = "kmod", .exact = true };

FIXTURE_SETUP(mon)
{
	char why[512];
	int err;

#ifndef URT_VM_KMOD_ONLY
	if (!strcmp(variant->which, "kmod") && access("/dev/urt", F_OK))
		SKIP(return, "/dev/urt absent (urt.ko runs in the VM suite: make vm-check)");
#endif
	if (!strncmp(variant->which, "bpf", 3) && geteuid() != 0 && !getenv("CI"))
		SKIP(return, "BPF tracing needs root (CI runs it as root)");
	err = urt__mon_open(&self->m, variant->which, 4, THRESHOLD, why, sizeof(why));
	TH_LOG("%s", why);
	ASSERT_EQ(0, err);
	ASSERT_EQ(!strcmp(variant->which, "proc") ? URT_MON_PROC :
		  !strcmp(variant->which, "kmod") ? URT_MON_KMOD : URT_MON_BPF,
		  urt__mon_kind(self->m));
}

FIXTURE_TEARDOWN(mon)
{
	urt__mon_close(self->m);
}

#define SKIPPED() do { if (!self->m) return; } while (0)

/* Runs the monitor for timeout_ns, logging every event. */
static int pump(FIXTURE_DATA(mon) *self, int64_t timeout_ns)
{
	struct urt_mon_event ev[8];
	int n = urt__mon_wait(self->m, timeout_ns, ev, 8);
	int64_t now = urt_now();

	for (int i = 0; i < n && self->nlog < MAXLOG; i++) {
		self->got[self->nlog] = now;
		self->log[self->nlog++] = ev[i];
	}
	return n;
}

/* Pumps until slot reads `state`; returns the snapshot (state UNUSED+9 on timeout). */
static struct urt_mon_wstate wait_state(FIXTURE_DATA(mon) *self, unsigned int slot,
					uint32_t state)
{
	struct urt_mon_wstate ws = { .state = 99 };
	int64_t end = urt_now() + MS(3000);

	while (urt_now() < end) {
		if (!urt__mon_snapshot(self->m, slot, &ws) && ws.state == state)
			return ws;
		pump(self, MS(1));
	}
	ws.state = 99;
	return ws;
}

static int events_for(FIXTURE_DATA(mon) *self, unsigned int slot)
{
	int n = 0;

	for (int i = 0; i < self->nlog; i++)
		n += self->log[i].slot == slot;
	return n;
}

/* ------------------------------------------------------------ states */

TEST_F(mon, a_thread_blocked_in_read_is_seen_blocked_in_read)
{
	struct worker w = {};
	struct urt_mon_wstate ws;

	SKIPPED();
	worker_start(&w, self->m, 1, do_read);
	ASSERT_EQ(0, w.reg_err);
	ws = wait_state(self, 1, URT_MON_BLOCKED);
	ASSERT_EQ(URT_MON_BLOCKED, ws.state);
	EXPECT_EQ(__NR_read, ws.syscall);
	EXPECT_EQ(atomic_load(&w.tid), ws.tid);
	EXPECT_LE(ws.since_ns, urt_now());
	EXPECT_EQ(0, ws.seq & 1);
	worker_stop(&w);
	ASSERT_EQ(0, w.unreg_err);
	ASSERT_EQ(0, urt__mon_snapshot(self->m, 1, &ws));
	EXPECT_EQ(URT_MON_UNUSED, ws.state);
}

TEST_F(mon, a_sleeping_thread_is_seen_blocked_in_nanosleep)
{
	struct worker w = {};
	struct urt_mon_wstate ws;

	SKIPPED();
	worker_start(&w, self->m, 0, do_sleep);
	ws = wait_state(self, 0, URT_MON_BLOCKED);
	ASSERT_EQ(URT_MON_BLOCKED, ws.state);
	EXPECT_TRUE(ws.syscall == __NR_clock_nanosleep || ws.syscall == __NR_nanosleep)
		TH_LOG("syscall %d", ws.syscall);
	worker_stop(&w);
}

TEST_F(mon, a_thread_waiting_for_a_held_mutex_is_seen_blocked_in_futex)
{
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	struct worker w = { .mutex = &mu };
	struct urt_mon_wstate ws;

	SKIPPED();
	pthread_mutex_lock(&mu);
	worker_start(&w, self->m, 2, do_lock);
	ws = wait_state(self, 2, URT_MON_BLOCKED);
	pthread_mutex_unlock(&mu);
	ASSERT_EQ(URT_MON_BLOCKED, ws.state);
	EXPECT_EQ(__NR_futex, ws.syscall);
	worker_stop(&w);
}

TEST_F(mon, a_spinning_thread_stays_running)
{
	struct worker w = {};
	struct urt_mon_wstate ws, first;
	int samples = 0;

	SKIPPED();
	worker_start(&w, self->m, 3, do_spin);
	ASSERT_EQ(0, urt__mon_snapshot(self->m, 3, &first));
	for (int64_t end = urt_now() + MS(200); urt_now() < end; samples++) {
		pump(self, MS(2));
		ASSERT_EQ(0, urt__mon_snapshot(self->m, 3, &ws));
		ASSERT_EQ(URT_MON_RUNNING, ws.state);
	}
	EXPECT_EQ(first.blocks, ws.blocks);
	EXPECT_EQ(0, events_for(self, 3));
	worker_stop(&w);
	DIAG("%s: %d samples, all RUNNING\n", variant->which, samples);
}

/* ------------------------------------------------------------ notifications */

static void *pump_until_ready(FIXTURE_DATA(mon) *self, struct worker *w, int64_t extra)
{
	while (atomic_load(&w->ready) != 2)
		pump(self, MS(1));
	for (int64_t end = urt_now() + extra; urt_now() < end;)
		pump(self, MS(1));
	return NULL;
}

TEST_F(mon, blocks_shorter_than_the_threshold_are_not_reported)
{
	/* 1 ms blocks (threshold 50 ms) with running time between them; a
	 * sampler (proc) needs longer gaps to tell the blocks apart */
	struct worker w = { .nblocks = 20, .block_ns = MS(1),
			    .spin_ns = variant->exact ? MS(2) : MS(10) };
	struct urt_mon_wstate ws;

	SKIPPED();
	/*
	 * A block lasts until the thread runs again, run-queue wait
	 * included: on a loaded 2-CPU machine a 1 ms sleep can last 5 ms.
	 * So this test uses a threshold far above the blocks.
	 */
	urt__mon_close(self->m);
	ASSERT_EQ(0, urt__mon_open(&self->m, variant->which, 4, MS(50), NULL, 0));
	worker_start(&w, self->m, 0, do_blocks);
	pump_until_ready(self, &w, MS(20));
	ASSERT_EQ(0, urt__mon_snapshot(self->m, 0, &ws));
	for (int i = 0; i < self->nlog; i++)
		TH_LOG("event: syscall %d, blocked %.3f ms when noticed",
		       self->log[i].syscall,
		       (self->log[i].time_ns - self->log[i].since_ns) / 1e6);
	EXPECT_EQ(0, events_for(self, 0));
	if (variant->exact)
		EXPECT_GE(ws.blocks, 20);
	worker_stop(&w);
}

TEST_F(mon, each_block_longer_than_the_threshold_is_reported_once)
{
	struct worker w = { .nblocks = 3, .block_ns = MS(50), .spin_ns = MS(30) };
	int n;

	SKIPPED();
	worker_start(&w, self->m, 1, do_blocks);
	pump_until_ready(self, &w, MS(30));
	n = events_for(self, 1);
	EXPECT_EQ(3, n);
	for (int i = 0; i < self->nlog; i++) {
		struct urt_mon_event *e = &self->log[i];

		EXPECT_EQ(1, e->slot);
		EXPECT_EQ(atomic_load(&w.tid), e->tid);
		EXPECT_TRUE(e->syscall == __NR_clock_nanosleep || e->syscall == __NR_nanosleep);
		EXPECT_GE(e->time_ns - e->since_ns, THRESHOLD - MS(1));
		for (int j = 0; j < i; j++)
			EXPECT_NE(self->log[j].seq, e->seq);	/* one per block */
	}
	worker_stop(&w);
}

/*
 * The runtime moves the notice later while its pollers run, and back to
 * the threshold when they stop (lib/poller.c): a block follows the
 * notice set before it started.
 */
TEST_F(mon, the_notice_can_move_while_the_monitor_runs)
{
	struct worker late = { .nblocks = 3, .block_ns = MS(30), .spin_ns = MS(20) };
	struct worker back = { .nblocks = 3, .block_ns = MS(30), .spin_ns = MS(20) };

	SKIPPED();
	ASSERT_EQ(-EINVAL, urt__mon_set_notice(self->m, 0));
	ASSERT_EQ(0, urt__mon_set_notice(self->m, MS(80)));
	worker_start(&late, self->m, 0, do_blocks);
	pump_until_ready(self, &late, MS(30));
	worker_stop(&late);
	EXPECT_EQ(0, events_for(self, 0));	/* 30 ms blocks, an 80 ms notice */

	ASSERT_EQ(0, urt__mon_set_notice(self->m, THRESHOLD));
	worker_start(&back, self->m, 1, do_blocks);
	pump_until_ready(self, &back, MS(30));
	worker_stop(&back);
	EXPECT_EQ(3, events_for(self, 1));
	for (int i = 0; i < self->nlog; i++)
		EXPECT_GE(self->log[i].time_ns - self->log[i].since_ns, THRESHOLD - MS(1));
}

/*
 * proc samples: it cannot see the few microseconds of running between the
 * park and the read, and used to report them as one block (ignored by the
 * runtime as a park), so the read was found only by the step check. The
 * wake counter makes the read a block of its own.
 */
TEST_F(mon, a_block_right_after_a_park_is_a_block_of_its_own)
{
	struct worker w = { 0 };
	int64_t end;
	int i = 0;

	SKIPPED();
	worker_start(&w, self->m, 1, do_park_then_read);
	end = urt_now() + MS(3000);
	while (urt_now() < end) {
		pump(self, MS(5));
		for (i = 0; i < self->nlog; i++)
			if (self->log[i].slot == 1 && self->log[i].syscall == __NR_read)
				break;
		if (i < self->nlog)
			break;
	}
	ASSERT_LT(i, self->nlog) {
		TH_LOG("no event for the read(): %d events", self->nlog);
	}
	for (int j = 0; j < i; j++)
		EXPECT_NE(self->log[j].seq, self->log[i].seq);
	worker_stop(&w);
}

TEST_F(mon, the_counters_count_blocks_and_blocked_time)
{
	struct worker w = { .nblocks = 5, .block_ns = MS(30), .spin_ns = MS(30) };
	struct urt_mon_wstate before, after;

	SKIPPED();
	worker_start(&w, self->m, 2, NULL);
	ASSERT_EQ(0, urt__mon_snapshot(self->m, 2, &before));
	worker_stop(&w);

	memset(&w, 0, sizeof(w));
	w.nblocks = 5, w.block_ns = MS(30), w.spin_ns = MS(30);
	worker_start(&w, self->m, 2, do_blocks);
	pump_until_ready(self, &w, 0);
	after = w.end;
	EXPECT_GE(after.blocks, 5);
	EXPECT_LE(after.blocks, 5 + 3);	/* a stray page fault or two */
	EXPECT_GE(after.blocked_ns, (uint64_t)(5 * MS(30) * (variant->exact ? 8 : 5) / 10));
	EXPECT_LE(after.blocked_ns, (uint64_t)MS(1000));
	EXPECT_EQ(URT_MON_RUNNING, after.state);
	EXPECT_GT(after.seq, before.seq);
	worker_stop(&w);
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

TEST_F(mon, detection_latency_is_printed)
{
	struct worker w = { .nblocks = 20, .block_ns = MS(15), .spin_ns = MS(12) };
	int64_t k[MAXLOG], u[MAXLOG];
	int n = 0;

	SKIPPED();
	worker_start(&w, self->m, 3, do_blocks);
	pump_until_ready(self, &w, MS(20));
	for (int i = 0; i < self->nlog; i++) {
		int64_t due = self->log[i].since_ns + THRESHOLD;

		k[n] = self->log[i].time_ns - due;	/* backend noticed */
		u[n++] = self->got[i] - due;		/* urt__mon_wait returned */
	}
	ASSERT_GT(n, 0);
	qsort(k, n, sizeof(k[0]), cmp64);
	qsort(u, n, sizeof(u[0]), cmp64);
	DIAG("%s: %d blocks of 15 ms, threshold 5 ms: lateness past threshold "
		       "noticed p50 %.1f us max %.1f us; wait() returned p50 %.1f us max %.1f us\n",
		       variant->which, n, k[n / 2] / 1e3, k[n - 1] / 1e3,
		       u[n / 2] / 1e3, u[n - 1] / 1e3);
	worker_stop(&w);
}

static void *kick_later(void *m)
{
	sleep_ns(MS(50));
	urt__mon_kick(m);
	return NULL;
}

TEST_F(mon, kick_ends_a_wait_without_events)
{
	struct urt_mon_event ev[4];
	int64_t t0 = urt_now();
	pthread_t th;

	SKIPPED();
	ASSERT_EQ(0, pthread_create(&th, NULL, kick_later, self->m));
	ASSERT_EQ(0, urt__mon_wait(self->m, URT_FOREVER, ev, 4));
	pthread_join(th, NULL);
	EXPECT_GE(urt_now() - t0, MS(40));
	EXPECT_LT(urt_now() - t0, MS(2000));
}

TEST_F(mon, registration_rules)
{
	struct worker w = {}, w2 = {};
	struct urt_mon_wstate ws;

	SKIPPED();
	EXPECT_EQ(-EINVAL, urt__mon_register(self->m, 4));
	EXPECT_EQ(-EINVAL, urt__mon_snapshot(self->m, 4, &ws));
	worker_start(&w, self->m, 0, NULL);
	ASSERT_EQ(0, w.reg_err);
	worker_start(&w2, self->m, 0, NULL);
	EXPECT_EQ(-EBUSY, w2.reg_err);
	worker_stop(&w2);
	ASSERT_EQ(0, urt__mon_snapshot(self->m, 0, &ws));
	EXPECT_EQ(URT_MON_RUNNING, ws.state);
	EXPECT_EQ(atomic_load(&w.tid), ws.tid);
	worker_stop(&w);
	ASSERT_EQ(0, urt__mon_snapshot(self->m, 0, &ws));
	EXPECT_EQ(URT_MON_UNUSED, ws.state);
}

/* ------------------------------------------------------------ BPF lifetime */

TEST_F(mon, close_leaves_no_bpf_program)
{
	struct worker w = {};
	uint32_t ids[16];
	int n;

	SKIPPED();
	worker_start(&w, self->m, 0, do_read);
	wait_state(self, 0, URT_MON_BLOCKED);
	pump(self, THRESHOLD * 2);	/* the bpf_timer fired at least once */
	n = held_prog_ids(ids, 16);
	ASSERT_GE(n, 0);
	if (urt__mon_kind(self->m) == URT_MON_BPF)
		ASSERT_GE(n, 1);
	worker_stop(&w);
	urt__mon_close(self->m);
	self->m = NULL;
	EXPECT_EQ(0, held_prog_ids(ids + n, 16 - n));
	EXPECT_TRUE(progs_gone(ids, n));
	DIAG("%s: %d program(s) before close, none after\n", variant->which, n);
}

TEST_F(mon, a_killed_process_leaves_no_bpf_program)
{
	int p[2], n = 0;
	uint32_t ids[16];
	pid_t pid;

	SKIPPED();
	urt__mon_close(self->m);	/* the child opens its own */
	self->m = NULL;
	ASSERT_EQ(0, pipe(p));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct urt_mon *m;
		struct worker w = {};
		struct urt_mon_event ev[4];
		int k;

		if (urt__mon_open(&m, variant->which, 4, THRESHOLD, NULL, 0))
			_exit(1);
		worker_start(&w, m, 0, do_read);
		urt__mon_wait(m, MS(50), ev, 4);	/* blocked past it: timer armed */
		k = held_prog_ids(ids, 16);
		if (write(p[1], ids, k > 0 ? k * sizeof(ids[0]) : 0) < 0)
			_exit(2);
		close(p[1]);
		for (;;)
			pause();
	}
	close(p[1]);
	for (;;) {
		ssize_t r = read(p[0], (char *)ids + n * sizeof(ids[0]),
				 sizeof(ids) - n * sizeof(ids[0]));

		if (r <= 0)
			break;
		n += r / sizeof(ids[0]);
	}
	close(p[0]);
	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, NULL, 0));
	if (!strncmp(variant->which, "bpf", 3))
		ASSERT_GE(n, 1);
	EXPECT_TRUE(progs_gone(ids, n));
	DIAG("%s: child held %d program(s), none left after SIGKILL\n",
		       variant->which, n);
}

/* ------------------------------------------------------------ open */

TEST(auto_picks_a_backend_and_says_why)
{
	struct urt_mon *m;
	char why[512];

	ASSERT_EQ(0, urt__mon_open(&m, "auto", 2, MS(1), why, sizeof(why)));
	DIAG("%s\n", why);
	EXPECT_NE(NULL, strstr(why, urt__mon_kind_name(urt__mon_kind(m))));
	if (access("/dev/urt", F_OK)) {
		EXPECT_NE(NULL, strstr(why, "/dev/urt absent"));
	} else {
		EXPECT_EQ(URT_MON_KMOD, urt__mon_kind(m));	/* kmod comes first */
	}
	if (geteuid() == 0)
		EXPECT_NE(URT_MON_PROC, urt__mon_kind(m));
	urt__mon_close(m);
}

#ifndef URT_VM_KMOD_ONLY
TEST(bad_arguments_are_an_error_with_a_reason)
{
	struct urt_mon *m = (void *)1;
	char why[256];

	EXPECT_EQ(-EINVAL, urt__mon_open(&m, "bfp", 2, MS(1), why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "bfp"));
	EXPECT_EQ(NULL, m);
	EXPECT_EQ(-EINVAL, urt__mon_open(&m, "proc", 2, 0, why, sizeof(why)));
	EXPECT_EQ(-EINVAL, urt__mon_open(&m, "proc", 0, MS(1), why, sizeof(why)));
	if (access("/dev/urt", F_OK)) {
		EXPECT_EQ(-ENOENT, urt__mon_open(&m, "kmod", 2, MS(1), why, sizeof(why)));
		EXPECT_NE(NULL, strstr(why, "/dev/urt"));
	}
}

TEST(off_watches_nothing_and_waits)
{
	struct urt_mon *m;
	struct urt_mon_wstate ws;
	struct urt_mon_event ev;

	ASSERT_EQ(0, urt__mon_open(&m, "off", 2, MS(1), NULL, 0));
	EXPECT_EQ(URT_MON_OFF, urt__mon_kind(m));
	EXPECT_EQ(0, urt__mon_register(m, 0));
	EXPECT_EQ(-EOPNOTSUPP, urt__mon_snapshot(m, 0, &ws));
	EXPECT_EQ(0, urt__mon_wait(m, MS(5), &ev, 1));
	EXPECT_EQ(0, urt__mon_unregister(m, 0));
	urt__mon_close(m);
}
#endif /* !URT_VM_KMOD_ONLY */

TEST_HARNESS_MAIN
