// SPDX-License-Identifier: MIT
/*
 * Handoff: when every slot's worker is stuck (blocked in read(), in
 * nanosleep(), on a futex, or spinning), the monitor moves the slots to
 * spare threads and the tasks queued behind the stuck ones still run --
 * while the stuck ones are still stuck. Each case runs per backend (proc,
 * bpf, kmod) and with 1 and 2 slots. With the monitor off the same tests
 * would hang: they fail by their timeout, they cannot pass by accident.
 *
 * Built with -DURT_VM_KMOD_ONLY (make vm-tests: the static copy that
 * selftests/vm runs with urt.ko loaded), only the kmod variants are compiled
 * in, with the fixture's tests; a missing /dev/urt is then a failure, not a
 * skip: in the VM nothing may skip.
 */
#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "kselftest_harness.h"
#include "util.h"
#include "bpfprogs.h"
#include "rt.h"		/* urt__handoff, for the stale-owner case */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SLOW 4
#else
#define SLOW 1
#endif

enum stuck { IN_READ, IN_SLEEP, ON_MUTEX, SPINNING };

/* A backend with shared-memory states, for the poller's tests. */
#ifdef URT_VM_KMOD_ONLY
#define POLL_BACKEND "kmod"
#else
#define POLL_BACKEND "bpf"
#endif

/*
 * The VM suite runs under TCG as often as not: for the few bounds on how
 * soon something stops (not deadlines to wait for, which SLOW covers),
 * twice the host's. The pollers on demand were last seen 104 ms after
 * the last handoff there once (bound 100 ms; ~20 ms expected).
 */
#ifdef URT_VM_KMOD_ONLY
#define VM_SLOW 2
#else
#define VM_SLOW 1
#endif

struct shared {
	int pipe[2];
	pthread_mutex_t mu;
	atomic_int started;	/* blockers that began to block */
	atomic_int release;	/* tells spinners to stop */
	atomic_int stuck;	/* blockers still stuck */
	atomic_long shorts_done;
	enum stuck how;
	bool mu_locked;		/* by the test: teardown unlocks it */
};

static void *blocker(void *arg)
{
	struct shared *sh = arg;
	char c;

	atomic_fetch_add(&sh->started, 1);
	switch (sh->how) {
	case IN_READ:
		/* plain read(): code that knows nothing about urt */
		if (read(sh->pipe[0], &c, 1) != 1)
			return (void *)-1;
		break;
	case IN_SLEEP: {
		struct timespec ts = { 2 * SLOW, 0 };

		nanosleep(&ts, NULL);
		break;
	}
	case ON_MUTEX:
		pthread_mutex_lock(&sh->mu);
		pthread_mutex_unlock(&sh->mu);
		break;
	case SPINNING:
		while (!atomic_load(&sh->release))
			;
		break;
	}
	atomic_fetch_sub(&sh->stuck, 1);
	return NULL;
}

static void *short_task(void *arg)
{
	struct shared *sh = arg;
	int64_t until = urt_now() + 20000;	/* 20 us of work */

	while (urt_now() < until)
		;
	atomic_fetch_add(&sh->shorts_done, 1);
	return NULL;
}

static const char *monitor_skip(const char *which)
{
#ifndef URT_VM_KMOD_ONLY
	if (!strcmp(which, "kmod") && access("/dev/urt", F_OK))
		return "/dev/urt absent (urt.ko runs in the VM suite: make vm-check)";
#endif
	if (!strcmp(which, "bpf") && geteuid() != 0 && !getenv("CI"))
		return "BPF tracing needs root (CI runs it as root)";
	return NULL;
}

FIXTURE(handoff) {
	urt_rt *rt;
	struct shared sh;
};

FIXTURE_VARIANT(handoff) {
	const char *monitor;
	unsigned int slots;
	int poll;		/* cfg.monitor_poll: polling spares */
};

/*
 * No suffix: the default, pollers on demand (they start after the first
 * handoff of a block). _off: no pollers. _poll: pollers whenever tasks
 * run (one per slot; _poll1: one for two slots, which hands a second slot
 * to a sleeping spare itself). Everything must work the same (whether a
 * poller or the backend's notice made a handoff depends on who got a CPU
 * first: the_poller_hands_off_... checks that the poller does). proc has
 * no poller (proc then runs as without it).
 */
#ifndef URT_VM_KMOD_ONLY
FIXTURE_VARIANT_ADD(handoff, proc_1) { .monitor = "proc", .slots = 1 };
FIXTURE_VARIANT_ADD(handoff, proc_2) { .monitor = "proc", .slots = 2 };
FIXTURE_VARIANT_ADD(handoff, proc_1_poll) { .monitor = "proc", .slots = 1, .poll = 1 };
FIXTURE_VARIANT_ADD(handoff, bpf_1) { .monitor = "bpf", .slots = 1 };
FIXTURE_VARIANT_ADD(handoff, bpf_2) { .monitor = "bpf", .slots = 2 };
FIXTURE_VARIANT_ADD(handoff, bpf_1_poll) { .monitor = "bpf", .slots = 1, .poll = 1 };
FIXTURE_VARIANT_ADD(handoff, bpf_2_poll) { .monitor = "bpf", .slots = 2, .poll = 2 };
FIXTURE_VARIANT_ADD(handoff, bpf_2_poll1) { .monitor = "bpf", .slots = 2, .poll = 1 };
FIXTURE_VARIANT_ADD(handoff, bpf_2_off) { .monitor = "bpf", .slots = 2,
					  .poll = URT_MONITOR_POLL_OFF };
#endif
FIXTURE_VARIANT_ADD(handoff, kmod_1) { .monitor = "kmod", .slots = 1 };
FIXTURE_VARIANT_ADD(handoff, kmod_2) { .monitor = "kmod", .slots = 2 };
FIXTURE_VARIANT_ADD(handoff, kmod_1_poll) { .monitor = "kmod", .slots = 1, .poll = 1 };
FIXTURE_VARIANT_ADD(handoff, kmod_2_poll) { .monitor = "kmod", .slots = 2, .poll = 2 };
FIXTURE_VARIANT_ADD(handoff, kmod_2_off) { .monitor = "kmod", .slots = 2,
					   .poll = URT_MONITOR_POLL_OFF };

FIXTURE_SETUP(handoff)
{
	struct urt_config cfg;
	const char *skip = monitor_skip(variant->monitor);
	int err;

	self->rt = NULL;
	if (skip)
		SKIP(return, "%s", skip);
	urt_config_init(&cfg);
	cfg.workers = variant->slots;
	cfg.monitor = variant->monitor;
	cfg.monitor_poll = variant->poll;
	/* Far below the blocks under test (seconds), far above the runtime's
	 * own brief blocks (mmap_lock, page faults) on a loaded machine. */
	cfg.monitor_threshold_ns = 2000000;	/* 2 ms */
	/* Likewise for steps: a 20 us short task can take over 1 ms (the
	 * default) when its vCPU is descheduled (TCG, a loaded host), and
	 * its hog handoff would replace the record naming the stuck task. */
	cfg.hog_threshold_ns = 10000000;	/* 10 ms */
	err = urt_create(&self->rt, &cfg);
	ASSERT_EQ(0, err) TH_LOG("urt_create(monitor=%s): %s", variant->monitor, strerror(-err));
	ASSERT_STREQ(variant->monitor, urt_monitor_backend(self->rt, NULL, 0));
	memset(&self->sh, 0, sizeof(self->sh));
	ASSERT_EQ(0, pipe(self->sh.pipe));
	pthread_mutex_init(&self->sh.mu, NULL);
}

FIXTURE_TEARDOWN(handoff)
{
	if (!self->rt)
		return;
	/* A case that failed half-way left its blockers stuck: unstick
	 * them, or urt_destroy() waits for them until the timeout. */
	atomic_store(&self->sh.release, 1);
	if (self->sh.mu_locked)
		pthread_mutex_unlock(&self->sh.mu);
	if (write(self->sh.pipe[1], "xx", 2) != 2)
		TH_LOG("could not unstick the readers");
	/* EXPECT, not ASSERT: after a failed ASSERT in the body this
	 * harness's next ASSERT bails again -- into this teardown a second
	 * time, destroying the runtime twice. */
	EXPECT_EQ(0, urt_destroy(self->rt));
	self->rt = NULL;
	close(self->sh.pipe[0]);
	close(self->sh.pipe[1]);
}

/*
 * Occupies every slot with a stuck task, queues short tasks behind them
 * and waits for the short ones while the stuck ones stay stuck.
 */
static void run_case(struct __test_metadata *_metadata, FIXTURE_DATA(handoff) *self,
		     const FIXTURE_VARIANT(handoff) *variant, enum stuck how)
{
	struct shared *sh = &self->sh;
	const int nshort = 200;
	unsigned int n = variant->slots;
	urt_task_t b[2], s[200];
	struct urt_stats st;
	int64_t t0, deadline;

	if (!self->rt)
		return;		/* skipped in setup */
	sh->how = how;
	atomic_store(&sh->stuck, n);
	if (how == ON_MUTEX) {
		pthread_mutex_lock(&sh->mu);
		sh->mu_locked = true;
	}
	for (unsigned int i = 0; i < n; i++) {
		b[i] = urt_spawn_opts(self->rt, blocker, sh,
				      &(struct urt_spawn_opts){ .name = "stuck" });
		ASSERT_NE(0, b[i].id);
	}
	/* Every blocker runs: each holds a slot's worker (or got it handed). */
	deadline = urt_now() + MS(5000) * SLOW;
	while (atomic_load(&sh->started) < (int)n && urt_now() < deadline)
		usleep(1000);
	ASSERT_EQ((int)n, atomic_load(&sh->started));

	t0 = urt_now();
	for (int i = 0; i < nshort; i++) {
		s[i] = urt_spawn(self->rt, short_task, sh);
		ASSERT_NE(0, s[i].id);
	}
	for (int i = 0; i < nshort; i++) {
		ASSERT_EQ(0, urt_join_timeout(s[i], NULL, MS(1500) * SLOW)) {
			TH_LOG("short task %d did not run: the stuck slot was not handed off", i);
		}
	}
	ASSERT_EQ(nshort, atomic_load(&sh->shorts_done));
	/* ... and the stuck tasks are stuck still. */
	ASSERT_EQ((int)n, atomic_load(&sh->stuck));
	ASSERT_EQ(0, urt_stats(self->rt, &st));
	ASSERT_GE(st.handoffs, 1) {
		TH_LOG("stuck %d, started %d, steps %llu, steals %llu", atomic_load(&sh->stuck),
		       atomic_load(&sh->started), (unsigned long long)st.polls,
		       (unsigned long long)st.steals);
	}
	/*
	 * A handoff says what was stuck. The record is the slot's last
	 * handoff: a spare can itself block past the threshold now and then
	 * (mmap_lock, a page fault), so at least one slot must name ours.
	 */
	int named = 0, hogged = 0;

	for (unsigned int i = 0; i < n; i++) {
		struct urt_slot_stats ss;

		ASSERT_EQ(0, urt_slot_stats(self->rt, i, &ss));
		TH_LOG("slot %u: %llu handoffs, last: task %llu '%s' syscall %d, %.2f ms", i,
		       (unsigned long long)ss.handoffs, (unsigned long long)ss.last_task,
		       ss.last_task_name, ss.last_syscall, ss.last_stuck_ns / 1e6);
		if (!ss.handoffs || strcmp(ss.last_task_name, "stuck"))
			continue;
		named++;
		ASSERT_GT(ss.last_stuck_ns, 0);
		if (how == SPINNING) {
			/*
			 * A hog: no syscall. Under emulation (the VM suite)
			 * the worker can also block past the threshold as the
			 * task starts (an mmap of its stack behind mmap_lock):
			 * a block the slot moved for before the spin began.
			 */
			if (ss.last_syscall == -1) {
				ASSERT_GE(ss.hogs, 1);
				hogged++;
			} else {
				ASSERT_GE(ss.blocks_seen, 1);
				TH_LOG("slot %u moved for a block before the spin", i);
			}
		} else {
			long want = how == IN_READ ? SYS_read :
				    how == IN_SLEEP ? SYS_clock_nanosleep : SYS_futex;

			/*
			 * The kernel backends see the block as it starts. proc
			 * samples /proc: a block that follows another one it did
			 * not see end keeps the first one's syscall.
			 * (nanosleep() may be its own syscall on some libcs.)
			 */
			if (strcmp(variant->monitor, "proc") &&
			    !(how == IN_SLEEP && ss.last_syscall == SYS_nanosleep))
				ASSERT_EQ(want, ss.last_syscall);
			/*
			 * proc may not have sampled the block yet when the 1 ms
			 * step check fires (a slow TSan run): then the slot moves
			 * as a hog, with no syscall. The kernel backends always
			 * see the block first.
			 */
			ASSERT_GE(ss.blocks_seen +
				  (strcmp(variant->monitor, "proc") ? 0 : ss.hogs), 1);
		}
	}
	ASSERT_GE(named, 1);
	if (how == SPINNING && !hogged)
		TH_LOG("no slot moved as a hog this time: each moved for a block first");
	if (variant->poll == URT_MONITOR_POLL_OFF || !strcmp(variant->monitor, "proc"))
		ASSERT_EQ(0, st.poll_handoffs);	/* no poller */
	TH_LOG("handoffs by the poller: %llu", (unsigned long long)st.poll_handoffs);
	ASSERT_EQ(-EINVAL, urt_slot_stats(self->rt, n, &(struct urt_slot_stats){ 0 }));
	TH_LOG("%s, %u slot(s): %d short tasks in %.1f ms behind stuck ones; "
		       "handoffs %llu, blocks seen %llu, hogs %llu", variant->monitor, n, nshort,
		       (urt_now() - t0) / 1e6, (unsigned long long)st.handoffs,
		       (unsigned long long)st.blocks_seen, (unsigned long long)st.hogs);

	/* Unstick them; they finish on whatever thread they were stuck on. */
	switch (how) {
	case IN_READ:
		ASSERT_EQ((ssize_t)n, write(sh->pipe[1], "xx", n));
		break;
	case ON_MUTEX:
		sh->mu_locked = false;
		pthread_mutex_unlock(&sh->mu);
		break;
	case SPINNING:
		atomic_store(&sh->release, 1);
		break;
	case IN_SLEEP:
		break;
	}
	for (unsigned int i = 0; i < n; i++)
		ASSERT_EQ(0, urt_join(b[i], NULL));
	ASSERT_EQ(0, atomic_load(&sh->stuck));
}

TEST_F_TIMEOUT(handoff, tasks_behind_a_read_run_while_it_blocks, 60)
{
	run_case(_metadata, self, variant, IN_READ);
}

TEST_F_TIMEOUT(handoff, tasks_behind_a_nanosleep_run_while_it_sleeps, 60)
{
	run_case(_metadata, self, variant, IN_SLEEP);
}

TEST_F_TIMEOUT(handoff, tasks_behind_a_futex_wait_run_while_it_waits, 60)
{
	run_case(_metadata, self, variant, ON_MUTEX);
}

TEST_F_TIMEOUT(handoff, tasks_behind_a_spinning_task_run_while_it_spins, 60)
{
	run_case(_metadata, self, variant, SPINNING);
}

#ifndef URT_VM_KMOD_ONLY
/* Blocks shorter than the threshold: no handoff at all. */
static void *brief_blocker(void *arg)
{
	for (int i = 0; i < 20; i++) {
		struct timespec ts = { 0, 200000 };	/* 0.2 ms */

		nanosleep(&ts, NULL);
		urt_yield();
	}
	return NULL;
}

TEST(blocks_shorter_than_the_threshold_cause_no_handoff)
{
	struct urt_config cfg;
	struct urt_stats st;
	urt_task_t t[8];
	urt_rt *rt;

	urt_config_init(&cfg);
	cfg.workers = 1;
	cfg.monitor = "proc";
	cfg.monitor_threshold_ns = MS(500) * SLOW;
	cfg.hog_threshold_ns = -1;
	ASSERT_EQ(0, urt_create(&rt, &cfg));
	for (int i = 0; i < 8; i++)
		t[i] = urt_spawn(rt, brief_blocker, NULL);
	for (int i = 0; i < 8; i++)
		ASSERT_EQ(0, urt_join(t[i], NULL));
	ASSERT_EQ(0, urt_stats(rt, &st));
	ASSERT_EQ(0, st.handoffs);
	ASSERT_EQ(0, urt_destroy(rt));
}

/*
 * A slot whose owner blocks with nothing queued on it, while the other
 * slot's ring is full, is handed off: the spare steals half of that ring.
 * (Before, the monitor looked only at the stuck slot's own queue and the
 * injection queue, and one thread ran everything.)
 */
struct neighbour {
	int pipe[2];
	atomic_int blocked;
	atomic_int tids[20];
	atomic_int done;
	urt_task_t shorts[20];
};

static void *nb_blocker(void *arg)
{
	struct neighbour *nb = arg;
	char c;

	atomic_store(&nb->blocked, 1);
	return read(nb->pipe[0], &c, 1) == 1 ? NULL : (void *)-1;
}

struct nb_ref {
	struct neighbour *nb;
	int i;
};

static void *nb_work(void *arg)
{
	struct nb_ref *r = arg;
	int64_t end = urt_now() + MS(1);

	atomic_store(&r->nb->tids[r->i], (int)syscall(SYS_gettid));
	while (urt_now() < end)
		;
	atomic_fetch_add(&r->nb->done, 1);
	return NULL;
}

static void *nb_spawner(void *arg)
{
	static struct nb_ref refs[20];
	struct neighbour *nb = arg;

	/* Spawned here, they go to this slot's own ring. */
	for (int i = 0; i < 20; i++) {
		refs[i] = (struct nb_ref){ nb, i };
		nb->shorts[i] = urt_spawn(NULL, nb_work, &refs[i]);
	}
	return NULL;
}

TEST(a_block_with_work_queued_on_the_other_slot_is_handed_off)
{
	struct neighbour nb = { 0 };
	struct urt_config cfg;
	struct urt_stats st;
	urt_task_t b, sp;
	int64_t deadline;
	int threads = 0;
	urt_rt *rt;

	ASSERT_EQ(0, pipe(nb.pipe));
	urt_config_init(&cfg);
	cfg.workers = 2;
	cfg.monitor = "proc";
	/* proc may merge the worker's park and its block into one event that
	 * the runtime ignores (a park); the step check then sees the thread
	 * asleep. The 1 ms tasks stay under the hog threshold. */
	cfg.hog_threshold_ns = MS(2);
	ASSERT_EQ(0, urt_create(&rt, &cfg));
	b = urt_spawn(rt, nb_blocker, &nb);
	deadline = urt_now() + MS(5000) * SLOW;
	while (!atomic_load(&nb.blocked) && urt_now() < deadline)
		usleep(1000);
	ASSERT_EQ(1, atomic_load(&nb.blocked));
	sp = urt_spawn(rt, nb_spawner, &nb);
	ASSERT_EQ(0, urt_join(sp, NULL));
	for (int i = 0; i < 20; i++)
		ASSERT_EQ(0, urt_join_timeout(nb.shorts[i], NULL, MS(5000) * SLOW));
	ASSERT_EQ(20, atomic_load(&nb.done));
	for (int i = 0; i < 20; i++) {
		int j;

		for (j = 0; j < i && nb.tids[j] != nb.tids[i]; j++)
			;
		threads += j == i;
	}
	ASSERT_EQ(0, urt_stats(rt, &st));
	EXPECT_GE(st.handoffs, 1);
	EXPECT_GE(threads, 2);
	ASSERT_EQ(1, write(nb.pipe[1], "x", 1));
	ASSERT_EQ(0, urt_join(b, NULL));
	ASSERT_EQ(0, urt_destroy(rt));
	close(nb.pipe[0]);
	close(nb.pipe[1]);
}
#endif /* !URT_VM_KMOD_ONLY */

/*
 * A polling spare hands off blocks itself, at the threshold, before the
 * backend's own notice (threshold + max(1 ms, threshold) with pollers):
 * it takes the slot and runs the task queued behind the block. Blocks
 * one at a time, each with a task queued behind it, on one slot with one
 * spare: after each handoff the stuck thread comes back as the spare and
 * must take the poll role up again; halfway, every slot stays parked past
 * the pollers' idle time (20 ms), so they go back to sleeping, and the
 * next unpark must bring one back. A poller may lose the race now and then
 * on a loaded or emulated machine, not in every block of a half. Without
 * the poller (or with it not looking at the states) poll_handoffs stays 0.
 */
static void *poll_probe(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
	return NULL;
}

static void *poll_blocker(void *arg)
{
	struct shared *sh = arg;
	char c;

	/* Queued behind this block, in the LIFO slot: only a new owner of
	 * this slot can run it. */
	if (!urt_spawn_opts(NULL, poll_probe, &sh->started,
			    &(struct urt_spawn_opts){ .detached = true }).id)
		return (void *)-1;
	if (read(sh->pipe[0], &c, 1) != 1)
		return (void *)-1;
	return NULL;
}

/* Open file descriptors of this process (the monitor keeps /proc files
 * of its workers open while it runs: none may outlive the runtime). */
static int open_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 4096; fd++)
		n += fcntl(fd, F_GETFD) != -1;
	return n;
}

/* CPU time of this process's threads other than the caller. */
static int64_t others_cpu_ns(void)
{
	struct timespec all, me;

	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &all) ||
	    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &me))
		return -1;
	return (int64_t)(all.tv_sec - me.tv_sec) * 1000000000LL + (all.tv_nsec - me.tv_nsec);
}

/* Block i of a poll test: poll_blocker blocks with a probe queued behind
 * it; the probe must run (the slot handed off) before the block ends. */
static void block_handed_off(struct __test_metadata *_metadata, urt_rt *rt,
			     struct shared *sh, int i)
{
	int64_t deadline = urt_now() + MS(5000) * SLOW;
	urt_task_t b = urt_spawn(rt, poll_blocker, sh);

	ASSERT_NE(0, b.id);
	while (atomic_load(&sh->started) <= i && urt_now() < deadline)
		usleep(200);
	ASSERT_EQ(i + 1, atomic_load(&sh->started)) TH_LOG("block %d not handed off", i);
	ASSERT_EQ(1, write(sh->pipe[1], "x", 1));
	ASSERT_EQ(0, urt_join(b, NULL));
}

TEST(the_poller_hands_off_blocks_before_the_backend_does)
{
	const char *which = POLL_BACKEND;
	const char *skip = monitor_skip(which);
	struct shared sh = { 0 };
	struct urt_config cfg;
	struct urt_stats st;
	uint64_t polled[2] = { 0, 0 };
	int64_t cpu0, cpu;
	int fds0;
	urt_rt *rt;

	if (skip)
		SKIP(return, "%s", skip);
	fds0 = open_fds();
	urt_config_init(&cfg);
	cfg.workers = 1;
	cfg.max_spares = 1;
	cfg.monitor = which;
	cfg.monitor_poll = 1;
	cfg.monitor_threshold_ns = MS(1);
	cfg.hog_threshold_ns = -1;
	ASSERT_EQ(0, urt_create(&rt, &cfg));
	ASSERT_STREQ(which, urt_monitor_backend(rt, NULL, 0));
	cpu0 = others_cpu_ns();
	ASSERT_EQ(0, pipe(sh.pipe));
	for (int i = 0; i < 20; i++) {
		if (i == 10)
			usleep(60000);	/* all parked: the pollers doze */
		block_handed_off(_metadata, rt, &sh, i);
		if (!_metadata->passed)
			return;
		ASSERT_EQ(0, urt_stats(rt, &st));
		polled[i / 10] = st.poll_handoffs - (i >= 10 ? polled[0] : 0);
	}
	cpu = others_cpu_ns() - cpu0;
	TH_LOG("%llu handoffs; by a poller: %llu before the doze, %llu after (threads "
	       "other than this one had %.1f ms of CPU)", (unsigned long long)st.handoffs,
	       (unsigned long long)polled[0], (unsigned long long)polled[1], cpu / 1e6);
	ASSERT_EQ(0, urt_destroy(rt));
	close(sh.pipe[0]);
	close(sh.pipe[1]);
	ASSERT_EQ(fds0, open_fds());
	/* It runs on CPU time nothing else wants: on a machine with none
	 * (other busy processes) nothing is learned here. */
	if ((!polled[0] || !polled[1]) && cpu < MS(2))
		SKIP(return, "the pollers got %.2f ms of CPU: no idle CPU here", cpu / 1e6);
	ASSERT_GE(polled[0], 2);	/* the role came back after a handoff */
	ASSERT_GE(polled[1], 1);	/* and after a doze */
}

/*
 * Pollers on demand (URT_MONITOR_POLL_AUTO): none while tasks run and
 * nothing blocks; after a block's handoff they poll and take the
 * next blocks themselves; some 10 ms after the last such handoff they stop,
 * though tasks still run. A poller names its thread "<name>-poll".
 */
static int poll_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char path[300], comm[32] = "";
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;	/* the thread exited */
		if (fgets(comm, sizeof(comm), f) && strstr(comm, "-poll"))
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

static void *yielder(void *arg)
{
	while (!atomic_load((atomic_int *)arg))
		urt_yield();
	return NULL;
}

/* Most pollers seen running within ms while a task keeps the slot busy. */
static int pollers_while_busy(urt_rt *rt, int64_t ms, int64_t *last_seen)
{
	atomic_int stop = 0;
	int64_t until = urt_now() + MS(ms);
	urt_task_t y = urt_spawn(rt, yielder, &stop);
	int most = 0;

	if (!y.id)
		return -1;
	*last_seen = 0;
	while (urt_now() < until) {
		int n = poll_threads();

		if (n > 0)
			*last_seen = urt_now();
		most = n > most ? n : most;
		usleep(500);
	}
	atomic_store(&stop, 1);
	return urt_join(y, NULL) ? -1 : most;
}

TEST(pollers_run_on_demand_while_blocks_keep_coming)
{
	const char *which = POLL_BACKEND;
	const char *skip = monitor_skip(which);
	struct shared sh = { 0 };
	struct urt_config cfg;
	struct urt_stats st, st2;
	int64_t seen, t_end, cpu0, cpu;
	int most;
	urt_rt *rt;

	if (skip)
		SKIP(return, "%s", skip);
	urt_config_init(&cfg);
	cfg.workers = 1;
	cfg.monitor = which;
	cfg.monitor_poll = URT_MONITOR_POLL_AUTO;
	cfg.monitor_threshold_ns = MS(1);
	cfg.hog_threshold_ns = -1;
	ASSERT_EQ(0, urt_create(&rt, &cfg));
	ASSERT_EQ(0, pipe(sh.pipe));

	/* Tasks run, none blocks: nobody polls. */
	ASSERT_EQ(0, pollers_while_busy(rt, 50, &seen));

	/* Blocks with work behind them: the first goes the sleeping way,
	 * the ones after it find pollers. */
	cpu0 = others_cpu_ns();
	for (int i = 0; i < 10; i++) {
		block_handed_off(_metadata, rt, &sh, i);
		if (!_metadata->passed)
			return;
	}
	cpu = others_cpu_ns() - cpu0;
	ASSERT_EQ(0, urt_stats(rt, &st));
	t_end = urt_now();

	/* No more blocks: the pollers stop though tasks run on (10 ms after
	 * the last handoff, then one backstop, 1 ms, then the monitor's
	 * pass and the poller's next look). */
	most = pollers_while_busy(rt, 200 * SLOW * VM_SLOW, &seen);
	ASSERT_GE(most, 0);
	ASSERT_EQ(0, urt_stats(rt, &st2));
	TH_LOG("handoffs %llu, by a poller %llu; after the last: pollers %s %.1f ms later "
	       "(handoffs meanwhile: %llu)",
	       (unsigned long long)st.handoffs, (unsigned long long)st.poll_handoffs,
	       seen ? "last seen" : "gone", seen ? (seen - t_end) / 1e6 : 0.0,
	       (unsigned long long)(st2.handoffs - st.handoffs));
	ASSERT_LT(seen, t_end + MS(100) * SLOW * VM_SLOW);
	ASSERT_EQ(0, urt_destroy(rt));
	close(sh.pipe[0]);
	close(sh.pipe[1]);
	if (!st.poll_handoffs && cpu < MS(2))
		SKIP(return, "the pollers got %.2f ms of CPU: no idle CPU here", cpu / 1e6);
	ASSERT_GE(st.poll_handoffs, 1);
	ASSERT_GE(st.handoffs, 10);
}

/*
 * A handoff moves a slot only from the owner its caller saw stuck. A
 * poller's pass, the monitor's backstop and its hog check each look, then
 * move; meanwhile another of them may have moved the slot already, and
 * taking it then from its new owner would hand off a running thread (and,
 * for a hog, demote it): seen once in the VM suite, a slot "moved" from
 * the spare running short tasks, its record naming one of them. Called
 * here with the wrong owner, then the right one.
 */
static void *owner_spinner(void *arg)
{
	atomic_int *st = arg;

	atomic_store(&st[0], 1);
	while (!atomic_load(&st[1]))
		;
	return NULL;
}

TEST(a_handoff_takes_a_slot_only_from_the_owner_seen_stuck)
{
	struct urt_handoff_note note = { .syscall = -1, .cpu = -1 };
	struct urt_config cfg;
	struct urt_stats st;
	struct urt_worker *owner, *other;
	atomic_int sync[2] = { 0, 0 };
	int64_t deadline;
	urt_task_t t;
	urt_rt *rt;

	urt_config_init(&cfg);
	cfg.workers = 1;
	cfg.monitor = "proc";
	cfg.monitor_threshold_ns = MS(10000);	/* the monitor moves nothing itself */
	cfg.hog_threshold_ns = -1;
	ASSERT_EQ(0, urt_create(&rt, &cfg));
	t = urt_spawn(rt, owner_spinner, sync);
	ASSERT_NE(0, t.id);
	while (!atomic_load(&sync[0]))
		usleep(100);
	owner = (struct urt_worker *)atomic_load(&rt->slots[0].owner);
	ASSERT_EQ(0, (uintptr_t)owner & SLOT_PARKED);
	other = &rt->workers[owner == &rt->workers[0] ? 1 : 0];
	ASSERT_FALSE(urt__handoff(rt, &rt->slots[0], other, &note));
	ASSERT_EQ((uintptr_t)owner, atomic_load(&rt->slots[0].owner));
	ASSERT_EQ(0, urt_stats(rt, &st));
	ASSERT_EQ(0, st.handoffs);
	/* false also means no spare came in time (one still starting, in
	 * the emulated VM): the owner did not change, try again */
	deadline = urt_now() + MS(5000) * SLOW;
	while (!urt__handoff(rt, &rt->slots[0], owner, &note) && urt_now() < deadline) {
		ASSERT_EQ((uintptr_t)owner, atomic_load(&rt->slots[0].owner));
		usleep(1000);
	}
	ASSERT_NE((uintptr_t)owner, atomic_load(&rt->slots[0].owner) & ~SLOT_PARKED);
	ASSERT_EQ(0, urt_stats(rt, &st));
	ASSERT_EQ(1, st.handoffs);
	atomic_store(&sync[1], 1);
	ASSERT_EQ(0, urt_join(t, NULL));
	ASSERT_EQ(0, urt_destroy(rt));
}

/*
 * A poller that takes a slot pins the stuck thread to its own CPU for its
 * wake-up (so it does not land on, and preempt, another CPU's poller);
 * back from its block, a thread that goes on with a long step must not
 * stay pinned there next to the slot it lost: the monitor unpins it
 * (urt__unpin_late) within a pass or two. The blocker spins after its read
 * and watches its own affinity mask.
 */
struct pin_watch {
	int pipe[2];
	atomic_int probed;	/* the probe ran: the slot moved */
	int cpus_after_read;	/* CPUs in the mask right after the read */
	int64_t unpinned_ns;	/* then until the mask was whole; -1: never */
	int all;		/* CPUs in the runtime's mask (the test's) */
};

static int mask_cpus(void)
{
	cpu_set_t set;

	return sched_getaffinity(0, sizeof(set), &set) ? -1 : CPU_COUNT(&set);
}

static void *pin_probe(void *arg)
{
	atomic_store((atomic_int *)arg, 1);
	return NULL;
}

static void *pin_blocker(void *arg)
{
	struct pin_watch *pw = arg;
	int64_t t0, until;
	char c;

	if (!urt_spawn_opts(NULL, pin_probe, &pw->probed,
			    &(struct urt_spawn_opts){ .detached = true }).id)
		return (void *)-1;
	pw->cpus_after_read = -1;
	if (read(pw->pipe[0], &c, 1) != 1)
		return (void *)-1;
	pw->cpus_after_read = mask_cpus();
	t0 = urt_now();
	until = t0 + MS(200) * SLOW;
	pw->unpinned_ns = -1;
	while (urt_now() < until) {
		/* The runtime's whole mask, not the thread's at the task's
		 * start: a worker may begin a task still pinned. */
		if (mask_cpus() == pw->all) {
			pw->unpinned_ns = urt_now() - t0;
			break;
		}
	}
	return NULL;
}

TEST(a_stuck_thread_pinned_for_its_wake_up_is_unpinned_in_a_long_step)
{
	const char *which = POLL_BACKEND;
	const char *skip = monitor_skip(which);
	struct urt_config cfg;
	struct pin_watch pw;
	struct urt_stats st;
	bool seen = false;
	urt_rt *rt;

	if (skip)
		SKIP(return, "%s", skip);
	if (mask_cpus() < 2)
		SKIP(return, "one CPU: nothing to pin to");
	urt_config_init(&cfg);
	cfg.workers = 1;
	cfg.monitor = which;
	cfg.monitor_poll = 1;
	cfg.monitor_threshold_ns = MS(1);
	cfg.hog_threshold_ns = -1;	/* the spin after the read is no hog here */
	ASSERT_EQ(0, urt_create(&rt, &cfg));
	/* The poller may lose a race to the backend's notice (no pin then):
	 * a few tries. */
	for (int i = 0; i < 5 && !seen; i++) {
		int64_t deadline = urt_now() + MS(5000) * SLOW;
		uint64_t polled;
		urt_task_t b;

		memset(&pw, 0, sizeof(pw));
		pw.all = mask_cpus();
		ASSERT_EQ(0, pipe(pw.pipe));
		ASSERT_EQ(0, urt_stats(rt, &st));
		polled = st.poll_handoffs;
		b = urt_spawn(rt, pin_blocker, &pw);
		ASSERT_NE(0, b.id);
		while (!atomic_load(&pw.probed) && urt_now() < deadline)
			;
		ASSERT_EQ(1, atomic_load(&pw.probed)) TH_LOG("the block was not handed off");
		ASSERT_EQ(1, write(pw.pipe[1], "x", 1));
		ASSERT_EQ(0, urt_join(b, NULL));
		close(pw.pipe[0]);
		close(pw.pipe[1]);
		ASSERT_EQ(0, urt_stats(rt, &st));
		TH_LOG("try %d: by a poller %d, CPUs after the read %d, unpinned after %.2f ms",
		       i, st.poll_handoffs > polled, pw.cpus_after_read, pw.unpinned_ns / 1e6);
		seen = st.poll_handoffs > polled && pw.cpus_after_read == 1;
	}
	ASSERT_EQ(0, urt_destroy(rt));
	if (!seen)
		SKIP(return, "no try had its slot taken by the poller before it woke");
	/* UNPIN_LATE_NS (1 ms) after the pin, at the monitor's next pass
	 * (every 10 ms at most with hogs off) */
	ASSERT_GE(pw.unpinned_ns, 0);
	ASSERT_LT(pw.unpinned_ns, MS(50) * SLOW);
}

#ifndef URT_VM_KMOD_ONLY
/*
 * Two slots' workers stacked on one CPU while another CPU runs none of
 * them: the monitor moves one (check_stacked). The test stacks them by
 * hand (both pinned to one CPU, then their affinity widened again) while
 * a nice-19 spinner keeps the other CPU busy, so the kernel's own load
 * balancer -- which balances a busy CPU only every tens of ms -- is not
 * the one that spreads them. A try in which they were spread before the
 * monitor looked is repeated.
 */
struct stack_load {
	atomic_int stop;
	atomic_int spinner_up;
	int cpu;
};

static void *stack_short(void *arg)
{
	struct stack_load *l = arg;
	int64_t until = urt_now() + 100000;	/* 100 us of CPU */

	while (urt_now() < until && !atomic_load(&l->stop))
		;
	return NULL;
}

static void *stack_feeder(void *arg)
{
	struct stack_load *l = arg;

	/* Keeps both slots busy with short steps until told to stop. */
	while (!atomic_load(&l->stop)) {
		urt_task_t t[8];

		for (int i = 0; i < 8; i++)
			t[i] = urt_spawn(NULL, stack_short, l);
		for (int i = 0; i < 8; i++)
			if (t[i].id)
				urt_join(t[i], NULL);
	}
	return NULL;
}

/* The calling thread: on CPU cpu only, at nice value nice. */
static bool pin_self(int cpu, int nice)
{
	cpu_set_t one;

	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	return sched_setaffinity(0, sizeof(one), &one) == 0 &&
	       setpriority(PRIO_PROCESS, 0, nice) == 0;
}

static void *nice_spinner(void *arg)
{
	struct stack_load *l = arg;

	if (!pin_self(l->cpu, 19))
		return (void *)-1;
	atomic_store(&l->spinner_up, 1);
	while (!atomic_load(&l->stop))
		;
	return NULL;
}

/* Sets the affinity of both slots' owner threads; -errno on failure. */
static int set_owners_affinity(urt_rt *rt, const cpu_set_t *set)
{
	for (unsigned int i = 0; i < 2; i++) {
		struct urt_slot_stats ss;
		int err = urt_slot_stats(rt, i, &ss);

		if (err)
			return err;
		if (ss.owner_tid > 0)
			sched_setaffinity(ss.owner_tid, sizeof(*set), set);
	}
	return 0;
}

TEST(workers_stacked_on_one_cpu_are_spread_by_the_monitor)
{
	struct stack_load l = { 0 };
	struct urt_config cfg;
	struct urt_stats st;
	cpu_set_t all, one;
	urt_task_t feed[2];
	int cpus[2], n = 0;
	pthread_t spinner;
	urt_rt *rt;

	ASSERT_EQ(0, sched_getaffinity(0, sizeof(all), &all));
	for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
		if (CPU_ISSET(c, &all))
			cpus[n++] = c;
	if (n < 2)
		SKIP(return, "needs two CPUs");
	urt_config_init(&cfg);
	cfg.workers = 2;
	cfg.monitor = "proc";	/* any backend: the check is the monitor's own */
	ASSERT_EQ(0, urt_create(&rt, &cfg));
	l.cpu = cpus[1];
	ASSERT_EQ(0, pthread_create(&spinner, NULL, nice_spinner, &l));
	while (!atomic_load(&l.spinner_up))
		usleep(1000);
	for (int i = 0; i < 2; i++)
		feed[i] = urt_spawn(rt, stack_feeder, &l);
	for (int tries = 0; tries < 10; tries++) {
		int64_t deadline;

		usleep(20000);
		/* Both workers onto the first CPU, then free to go again. */
		CPU_ZERO(&one);
		CPU_SET(cpus[0], &one);
		ASSERT_EQ(0, set_owners_affinity(rt, &one));
		usleep(2000);
		ASSERT_EQ(0, set_owners_affinity(rt, &all));
		deadline = urt_now() + MS(100) * SLOW;
		do {
			usleep(1000);
			ASSERT_EQ(0, urt_stats(rt, &st));
		} while (!st.unstacks && urt_now() < deadline);
		if (st.unstacks)
			break;
		TH_LOG("try %d: not stacked long enough to be seen; again", tries);
	}
	atomic_store(&l.stop, 1);
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(0, urt_join(feed[i], NULL));
	ASSERT_EQ(0, pthread_join(spinner, NULL));
	ASSERT_EQ(0, urt_stats(rt, &st));
	TH_LOG("%llu move(s)", (unsigned long long)st.unstacks);
	ASSERT_GE(st.unstacks, 1);
	ASSERT_EQ(0, urt_destroy(rt));
}
#endif /* !URT_VM_KMOD_ONLY */

/* A storm of blocking and unblocking under load loses no task. */
struct storm {
	urt_chan *ch;
	atomic_long sum;
};

static void *storm_task(void *arg)
{
	struct storm *s = arg;
	long v;

	for (int i = 0; i < 20; i++) {
		struct timespec ts = { 0, (i % 4) * 150000 };	/* 0 .. 0.45 ms */

		if (i % 3 == 0)
			nanosleep(&ts, NULL);	/* blocks the worker */
		else if (i % 3 == 1)
			urt_yield();
		else if (urt_chan_try_recv(s->ch, &v) == 0)
			atomic_fetch_add(&s->sum, v);
	}
	return NULL;
}

TEST_F_TIMEOUT(handoff, a_storm_of_blocks_under_load_loses_no_task, 120)
{
	struct storm s = { NULL, 0 };
	const int n = 400;
	urt_task_t *t;
	long expect = 0, v;

	if (!self->rt)
		return;		/* skipped in setup */
	s.ch = urt_chan_create(sizeof(long), 0);
	t = calloc(n, sizeof(*t));
	for (long i = 0; i < 1000; i++) {
		ASSERT_EQ(0, urt_chan_try_send(s.ch, &i));
		expect += i;
	}
	for (int i = 0; i < n; i++) {
		t[i] = urt_spawn(self->rt, storm_task, &s);
		ASSERT_NE(0, t[i].id);
	}
	for (int i = 0; i < n; i++)
		ASSERT_EQ(0, urt_join(t[i], NULL));
	while (urt_chan_try_recv(s.ch, &v) == 0)
		atomic_fetch_add(&s.sum, v);
	ASSERT_EQ(expect, atomic_load(&s.sum));
	urt_chan_destroy(s.ch);
	free(t);
}

/* Teardown waits for workers blocked in the kernel, then is clean. */
static void *late_writer(void *arg)
{
	int fd = *(int *)arg;

	usleep(200000);
	if (write(fd, "xx", 2) != 2)
		abort();
	return NULL;
}

TEST_F_TIMEOUT(handoff, teardown_while_workers_are_blocked_is_clean, 60)
{
	struct shared *sh = &self->sh;
	unsigned int n = variant->slots;
	pthread_t th;

	if (!self->rt)
		return;		/* skipped in setup */
	sh->how = IN_READ;
	for (unsigned int i = 0; i < n; i++)
		ASSERT_NE(0, urt_spawn_opts(self->rt, blocker, sh,
					    &(struct urt_spawn_opts){ .detached = true }).id);
	while (atomic_load(&sh->started) < (int)n)
		usleep(1000);
	ASSERT_EQ(0, pthread_create(&th, NULL, late_writer, &sh->pipe[1]));
	ASSERT_EQ(0, urt_destroy(self->rt));	/* returns once read() does */
	self->rt = NULL;
	pthread_join(th, NULL);
	close(sh->pipe[0]);
	close(sh->pipe[1]);
}

#ifndef URT_VM_KMOD_ONLY
/*
 * A hog's thread is demoted to nice 19 once its slot moved, so the spare
 * that took the slot gets the CPU; at its next scheduling point it takes
 * its nice value back (privileged), or retires instead of becoming a spare
 * (unprivileged: it may not lower its nice value again).
 */
struct hog {
	atomic_int tid;			/* the hog's thread */
	atomic_int release;
	atomic_int nice_seen;		/* its nice value seen from the task, after */
	atomic_int stepped;		/* the step after the yield ran */
	atomic_long shorts_done;
};

static void *hog_task(void *arg)
{
	struct hog *h = arg;

	atomic_store(&h->tid, (int)syscall(SYS_gettid));
	while (!atomic_load(&h->release))
		;
	urt_yield();		/* a scheduling point: the old thread notices */
	atomic_store(&h->stepped, 1);
	return NULL;
}

static void *hog_short(void *arg)
{
	struct hog *h = arg;

	atomic_fetch_add(&h->shorts_done, 1);
	return NULL;
}

static int nice_of(int tid)
{
	errno = 0;
	int v = getpriority(PRIO_PROCESS, tid);

	return errno ? -100 : v;
}

static bool thread_alive(int tid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/task/%d", tid);
	return access(path, F_OK) == 0;
}

/* Gives up CAP_SYS_NICE and RLIMIT_NICE headroom (root: becomes nobody). */
static bool drop_nice_privilege(void)
{
	struct rlimit rl = { 0, 0 };

	if (setrlimit(RLIMIT_NICE, &rl))
		return false;
	return geteuid() != 0 || (setgid(65534) == 0 && setuid(65534) == 0);
}

/*
 * Runs a hog on a 1-slot runtime until its slot moved; returns its tid.
 * drop: give up the privilege to lower a nice value once the runtime runs.
 */
static int hog_handed_off(struct __test_metadata *_metadata, urt_rt **rtp, struct hog *h,
			  urt_task_t *ht, bool drop, int want_nice)
{
	struct urt_config cfg;
	urt_task_t s[20];
	int64_t deadline;
	int tid;

	urt_config_init(&cfg);
	cfg.workers = 1;
	cfg.monitor = "proc";		/* hogs are found by the step counters */
	cfg.hog_threshold_ns = MS(2);
	EXPECT_EQ(0, urt_create(rtp, &cfg));
	if (drop)
		EXPECT_TRUE(drop_nice_privilege());
	*ht = urt_spawn(*rtp, hog_task, h);
	EXPECT_NE(0, ht->id);
	deadline = urt_now() + MS(5000) * SLOW;
	while (!atomic_load(&h->tid) && urt_now() < deadline)
		usleep(1000);
	tid = atomic_load(&h->tid);
	EXPECT_NE(0, tid);
	EXPECT_EQ(0, nice_of(tid));
	for (int i = 0; i < 20; i++)
		s[i] = urt_spawn(*rtp, hog_short, h);
	for (int i = 0; i < 20; i++)
		EXPECT_EQ(0, urt_join_timeout(s[i], NULL, MS(3000) * SLOW));
	EXPECT_EQ(20, atomic_load(&h->shorts_done));
	/* Demoted right after the handoff (or not at all); the spare is not. */
	deadline = urt_now() + MS(want_nice ? 2000 : 200) * SLOW;
	while (nice_of(tid) != 19 && urt_now() < deadline)
		usleep(1000);
	EXPECT_EQ(want_nice, nice_of(tid));
	return tid;
}

TEST(a_hog_runs_at_nice_19_after_its_slot_moved_and_gets_its_priority_back)
{
	struct hog h = { 0 };
	struct urt_stats st;
	urt_task_t ht;
	int64_t deadline;
	urt_rt *rt;
	int tid;

	if (geteuid() != 0)
		SKIP(return, "restoring a nice value needs CAP_SYS_NICE (root)");
	tid = hog_handed_off(_metadata, &rt, &h, &ht, false, 19);
	atomic_store(&h.release, 1);
	ASSERT_EQ(0, urt_join(ht, NULL));
	ASSERT_EQ(1, atomic_load(&h.stepped));
	/* The hog's step ended: priority restored, and the thread is a
	 * spare (alive), not retired. */
	deadline = urt_now() + MS(2000) * SLOW;
	while (nice_of(tid) != 0 && urt_now() < deadline)
		usleep(1000);
	ASSERT_EQ(0, nice_of(tid));
	ASSERT_TRUE(thread_alive(tid));
	ASSERT_EQ(0, urt_stats(rt, &st));
	ASSERT_GE(st.hogs, 1);
	ASSERT_EQ(0, urt_destroy(rt));
}

/* Runs body in a child (it drops privileges); its exit code is the step that failed. */
#define IN_CHILD(...) do {						\
	int status_ = 0;						\
	pid_t pid_ = fork();						\
	ASSERT_GE(pid_, 0);						\
	if (pid_ == 0) {						\
		__VA_ARGS__;						\
		_exit(0);						\
	}								\
	ASSERT_EQ(pid_, waitpid(pid_, &status_, 0));			\
	ASSERT_TRUE(WIFEXITED(status_));				\
	ASSERT_EQ(0, WEXITSTATUS(status_)) {				\
		TH_LOG("child step %d failed", WEXITSTATUS(status_));	\
	}								\
} while (0)

/*
 * Right after the demotion the hog's thread gets SIGURG, whose handler
 * (liburt's) yields the CPU once: the spare sharing the CPU need not wait
 * out the slice the hog began at nice 0. In a child: the handler is the
 * process's, installed at the first runtime, only if SIGURG is unhandled.
 */
TEST(a_demoted_hog_is_told_to_yield)
{
	if (geteuid() != 0)
		SKIP(return, "demotion needs CAP_SYS_NICE (root)");
	IN_CHILD({
		struct hog h = { 0 };
		struct urt_stats st = { 0 };
		int64_t deadline;
		urt_task_t ht;
		urt_rt *rt;

		hog_handed_off(_metadata, &rt, &h, &ht, false, 19);
		if (!_metadata->passed)
			_exit(10);
		deadline = urt_now() + MS(2000) * SLOW;
		while (!st.hog_yields && urt_now() < deadline) {
			if (urt_stats(rt, &st))
				_exit(11);
			usleep(1000);
		}
		if (st.hog_yields < 1)
			_exit(12);
		atomic_store(&h.release, 1);
		if (urt_join(ht, NULL) || urt_destroy(rt))
			_exit(13);
	});
}

static atomic_int app_sigurg;

static void app_sigurg_handler(int sig)
{
	(void)sig;
	atomic_fetch_add(&app_sigurg, 1);
}

/* An application that handles SIGURG itself keeps it: no signal is sent,
 * the hog is demoted all the same. */
TEST(an_application_sigurg_handler_is_left_alone)
{
	if (geteuid() != 0)
		SKIP(return, "demotion needs CAP_SYS_NICE (root)");
	IN_CHILD({
		struct sigaction sa = { .sa_handler = app_sigurg_handler };
		struct hog h = { 0 };
		struct urt_stats st;
		urt_task_t ht;
		urt_rt *rt;

		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGURG, &sa, NULL))
			_exit(10);
		hog_handed_off(_metadata, &rt, &h, &ht, false, 19);
		if (!_metadata->passed)
			_exit(11);
		usleep(50000);
		if (urt_stats(rt, &st) || st.hog_yields != 0 || atomic_load(&app_sigurg) != 0)
			_exit(12);
		if (sigaction(SIGURG, NULL, &sa) || sa.sa_handler != app_sigurg_handler)
			_exit(13);
		atomic_store(&h.release, 1);
		if (urt_join(ht, NULL) || urt_destroy(rt))
			_exit(14);
	});
}

TEST(a_runtime_that_could_not_restore_a_priority_does_not_demote_its_hogs)
{
	IN_CHILD({
		struct hog h = { 0 };
		urt_task_t ht;
		urt_rt *rt;

		if (!drop_nice_privilege())
			_exit(10);
		hog_handed_off(_metadata, &rt, &h, &ht, false, 0);
		if (!_metadata->passed)
			_exit(11);
		atomic_store(&h.release, 1);
		if (urt_join(ht, NULL) || urt_destroy(rt))
			_exit(12);
	});
}

/*
 * A thread at SCHED_IDLE may go back to SCHED_OTHER only with what it
 * takes to lower a nice value (CAP_SYS_NICE, or RLIMIT_NICE): without
 * it a poller that took a slot would run the slot at idle priority. So
 * such a runtime has no pollers, says so, and still hands blocks off (the
 * backend's notice). Root here keeps its BPF capabilities and loses only
 * CAP_SYS_NICE.
 */
static bool drop_cap_sys_nice(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	struct rlimit rl = { 0, 0 };

	if (setrlimit(RLIMIT_NICE, &rl) || syscall(SYS_capget, &hdr, data))
		return false;
	data[CAP_TO_INDEX(CAP_SYS_NICE)].effective &= ~CAP_TO_MASK(CAP_SYS_NICE);
	return syscall(SYS_capset, &hdr, data) == 0;
}

TEST(no_pollers_where_a_thread_may_not_leave_sched_idle)
{
	const char *skip = monitor_skip("bpf");

	if (skip)
		SKIP(return, "%s", skip);
	if (geteuid() != 0)
		SKIP(return, "needs root to keep BPF while dropping CAP_SYS_NICE");
	IN_CHILD({
		struct shared sh = { 0 };
		struct urt_config cfg;
		struct urt_stats st;
		int64_t deadline;
		char why[256];
		urt_task_t b;
		urt_rt *rt;

		if (!drop_cap_sys_nice())
			_exit(10);
		urt_config_init(&cfg);
		cfg.workers = 1;
		cfg.monitor = "bpf";
		cfg.monitor_poll = 1;
		cfg.monitor_threshold_ns = MS(1);
		cfg.hog_threshold_ns = -1;
		if (urt_create(&rt, &cfg) || pipe(sh.pipe))
			_exit(11);
		if (strcmp(urt_monitor_backend(rt, why, sizeof(why)), "bpf") ||
		    !strstr(why, "no pollers"))
			_exit(12);
		b = urt_spawn(rt, poll_blocker, &sh);
		deadline = urt_now() + MS(5000) * SLOW;
		while (!atomic_load(&sh.started) && urt_now() < deadline)
			usleep(200);
		if (!b.id || atomic_load(&sh.started) != 1)
			_exit(13);	/* not handed off */
		if (write(sh.pipe[1], "x", 1) != 1 || urt_join(b, NULL) ||
		    urt_stats(rt, &st) || st.poll_handoffs || !st.handoffs)
			_exit(14);
		if (urt_destroy(rt))
			_exit(15);
	});
}

TEST(a_demoted_hog_that_cannot_restore_its_priority_retires)
{
	if (geteuid() != 0)
		SKIP(return, "needs root to demote, then drops it");
	IN_CHILD({
		struct hog h = { 0 };
		urt_task_t ht, more;
		int64_t deadline;
		urt_rt *rt;
		int tid;

		/* Privileged at start (demotes), unprivileged when the hog
		 * comes back: it cannot lower its nice value again. */
		tid = hog_handed_off(_metadata, &rt, &h, &ht, true, 19);
		if (!_metadata->passed)
			_exit(11);
		atomic_store(&h.release, 1);
		if (urt_join(ht, NULL) || !atomic_load(&h.stepped))
			_exit(12);
		/* The old thread exited instead of becoming a spare. */
		deadline = urt_now() + MS(3000) * SLOW;
		while (thread_alive(tid) && urt_now() < deadline)
			usleep(1000);
		if (thread_alive(tid))
			_exit(13);
		/* The runtime goes on with a fresh spare. */
		more = urt_spawn(rt, hog_short, &h);
		if (!more.id || urt_join(more, NULL))
			_exit(14);
		if (urt_destroy(rt))
			_exit(15);
	});
}

/*
 * A step that runs long only because its thread waits for a CPU is not a
 * hog: on a machine whose every CPU is taken (here by a nice -20 spinner
 * per CPU), a spare would wait just as long, and demoting the thread would
 * punish a short task. Before the monitor looked at the thread's CPU time,
 * this step was handed off and its thread set to nice 19.
 */
struct starved {
	atomic_int tid;
	atomic_int competitors_up;
	atomic_int competitors_stop;
	atomic_llong cpu_ns;		/* the step's CPU time while they ran */
};

static int64_t thread_cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *starved_task(void *arg)
{
	struct starved *st = arg;
	int64_t cpu0 = thread_cpu_now();

	atomic_store(&st->tid, (int)syscall(SYS_gettid));
	while (!atomic_load(&st->competitors_stop))
		;
	atomic_store(&st->cpu_ns, thread_cpu_now() - cpu0);
	return NULL;
}

struct competitor {
	struct starved *st;
	int cpu;
};

static void *competitor_main(void *arg)
{
	struct competitor *c = arg;

	if (!pin_self(c->cpu, -20))
		return (void *)-1;
	atomic_fetch_add(&c->st->competitors_up, 1);
	while (!atomic_load(&c->st->competitors_stop))
		;
	return NULL;
}

/* One try; false if the step got more CPU than a starved thread should
 * (the machine did not starve it: nothing learned). */
static bool starve_once(struct __test_metadata *_metadata)
{
	struct competitor comp[64];
	pthread_t th[64];
	struct starved st = { 0 };
	struct hog shorts = { 0 };
	struct urt_slot_stats ss;
	struct urt_config cfg;
	urt_task_t t, s[5];
	int64_t deadline, wall;
	cpu_set_t set;
	int n = 0, tid;
	urt_rt *rt;

	EXPECT_EQ(0, sched_getaffinity(0, sizeof(set), &set));
	urt_config_init(&cfg);
	cfg.workers = 1;
	cfg.monitor = "proc";
	/* A starved thread gets its CPU in bursts of up to a scheduler tick
	 * (4 ms at HZ 250); the monitor judges a step over at least half
	 * the threshold, here 20 ms, where one burst is under the quarter
	 * of a CPU that makes a hog. (At 20 ms, one burst in a 10 ms
	 * window failed this test about once in 4 runs.) */
	cfg.hog_threshold_ns = MS(40);
	EXPECT_EQ(0, urt_create(&rt, &cfg));
	/* Take every CPU, then start the step: it lasts 7 hog thresholds,
	 * and its thread never has a CPU to itself. */
	for (int cpu = 0; cpu < CPU_SETSIZE && n < 64; cpu++) {
		if (!CPU_ISSET(cpu, &set))
			continue;
		comp[n] = (struct competitor){ &st, cpu };
		EXPECT_EQ(0, pthread_create(&th[n], NULL, competitor_main, &comp[n]));
		n++;
	}
	deadline = urt_now() + MS(5000) * SLOW;
	while (atomic_load(&st.competitors_up) < n && urt_now() < deadline)
		usleep(1000);
	EXPECT_EQ(n, atomic_load(&st.competitors_up));
	wall = urt_now();
	t = urt_spawn(rt, starved_task, &st);
	EXPECT_NE(0, t.id);
	for (int i = 0; i < 5; i++)
		s[i] = urt_spawn(rt, hog_short, &shorts);
	usleep(300000);
	tid = atomic_load(&st.tid);
	EXPECT_NE(0, tid);	/* the step began, slowly */
	EXPECT_EQ(0, urt_slot_stats(rt, 0, &ss));
	atomic_store(&st.competitors_stop, 1);
	wall = urt_now() - wall;
	for (int i = 0; i < n; i++) {
		void *ret;

		EXPECT_EQ(0, pthread_join(th[i], &ret));
		EXPECT_EQ(NULL, ret);
	}
	EXPECT_EQ(0, urt_join(t, NULL));
	for (int i = 0; i < 5; i++)
		EXPECT_EQ(0, urt_join(s[i], NULL));
	if (atomic_load(&st.cpu_ns) * 10 > wall) {
		TH_LOG("the step got %.1f ms of CPU in %.1f ms: not starved, again",
		       atomic_load(&st.cpu_ns) / 1e6, wall / 1e6);
		EXPECT_EQ(0, urt_destroy(rt));
		return false;
	}
	EXPECT_EQ(0, nice_of(tid));
	EXPECT_EQ(0, ss.hogs);
	EXPECT_EQ(0, ss.handoffs);
	EXPECT_EQ(0, urt_destroy(rt));
	return true;
}

TEST(a_step_waiting_for_a_cpu_is_not_a_hog)
{
	int tries = 0;

	if (geteuid() != 0)
		SKIP(return, "nice -20 competitors need CAP_SYS_NICE (root)");
	while (!starve_once(_metadata) && _metadata->passed && ++tries < 3)
		;
	ASSERT_LT(tries, 3);
}
#endif /* !URT_VM_KMOD_ONLY */

#ifndef URT_VM_KMOD_ONLY
/*
 * Two hogs back to back on one slot. The first spins until the slot
 * moved to a spare, which starts the second hog; the first hog's step
 * ends only after that, on the thread that lost the slot. The end of that
 * step must not make the slot look idle to the monitor (it once cleared
 * the slot's cur_task, which the new owner had just set: the hog check
 * then skipped the slot for good, and the task queued behind the second
 * hog waited until the hog ended by itself: detect_spin's 200 ms stall).
 */
struct hogs2 {
	urt_rt *rt;
	atomic_int release_first;	/* the second hog began: first, stop */
	atomic_int first_done;		/* main joined the first hog */
	atomic_int third_ran;
	atomic_int second_gave_up;	/* nothing moved the slot in time */
	atomic_llong t_queued, t_ran;	/* third: queued, ran */
	urt_task_t second;
};

static void *hogs2_third(void *arg)
{
	struct hogs2 *h = arg;

	atomic_store(&h->t_ran, urt_now());
	atomic_store(&h->third_ran, 1);
	return NULL;
}

static void *hogs2_second(void *arg)
{
	struct hogs2 *h = arg;
	int64_t until = urt_now() + MS(5000) * SLOW;

	/* The first hog's step ends now, on the thread that lost the slot;
	 * wait until it is over (main joined it), then queue a task behind
	 * this hog, in the LIFO slot: only the slot's owner can run it. */
	atomic_store(&h->release_first, 1);
	while (!atomic_load(&h->first_done) && urt_now() < until)
		;
	atomic_store(&h->t_queued, urt_now());
	if (!urt_spawn_opts(NULL, hogs2_third, h, &(struct urt_spawn_opts){ .detached = true }).id)
		return (void *)-1;
	while (!atomic_load(&h->third_ran) && urt_now() < until)
		;
	if (!atomic_load(&h->third_ran))
		atomic_store(&h->second_gave_up, 1);
	return NULL;
}

static void *hogs2_first(void *arg)
{
	struct hogs2 *h = arg;
	int64_t until = urt_now() + MS(5000) * SLOW;

	/* Queued in the LIFO slot behind this hog: the monitor moves the
	 * slot to a spare, which runs it while we still spin. */
	h->second = urt_spawn(NULL, hogs2_second, h);
	if (!h->second.id)
		return (void *)-1;
	while (!atomic_load(&h->release_first) && urt_now() < until)
		;
	return NULL;
}

TEST(the_old_owner_ending_its_step_does_not_hide_the_new_owners_hog)
{
	struct urt_config cfg;
	struct hogs2 h;
	urt_task_t first;
	int64_t deadline;
	void *res = NULL;

	memset(&h, 0, sizeof(h));
	urt_config_init(&cfg);
	cfg.workers = 1;
	cfg.monitor = "proc";		/* hogs are found by the step counters */
	cfg.hog_threshold_ns = MS(2);
	ASSERT_EQ(0, urt_create(&h.rt, &cfg));
	first = urt_spawn(h.rt, hogs2_first, &h);
	ASSERT_NE(0, first.id);
	ASSERT_EQ(0, urt_join_timeout(first, &res, MS(10000) * SLOW));
	ASSERT_EQ(NULL, res);
	ASSERT_EQ(1, atomic_load(&h.release_first)) TH_LOG("the first hog's slot never moved");
	atomic_store(&h.first_done, 1);
	deadline = urt_now() + MS(10000) * SLOW;
	while (!atomic_load(&h.third_ran) && urt_now() < deadline)
		usleep(1000);
	ASSERT_EQ(0, urt_join_timeout(h.second, &res, MS(10000) * SLOW));
	ASSERT_EQ(NULL, res);
	ASSERT_EQ(1, atomic_load(&h.third_ran));
	/* Normally a few ms (the hog threshold, a tick, a wake-up); the
	 * second hog gives up after 5 s: a slot the monitor no longer sees
	 * as running a step. */
	ASSERT_EQ(0, atomic_load(&h.second_gave_up)) {
		TH_LOG("the task behind the second hog waited %.1f ms: the slot was not handed off",
		       (double)(atomic_load(&h.t_ran) - atomic_load(&h.t_queued)) / 1e6);
	}
	TH_LOG("queued behind the second hog: ran after %.2f ms",
	       (double)(atomic_load(&h.t_ran) - atomic_load(&h.t_queued)) / 1e6);
	ASSERT_EQ(0, urt_destroy(h.rt));
}
#endif /* !URT_VM_KMOD_ONLY */

#ifndef URT_VM_KMOD_ONLY
/* The runtime's BPF programs go away with it, even when it is SIGKILLed. */
TEST(bpf_programs_are_gone_after_the_runtime_ends_even_after_sigkill)
{
	const char *skip = monitor_skip("bpf");
	struct urt_config cfg;
	uint32_t ids[16];
	int p[2], n;
	urt_rt *rt;
	pid_t pid;

	if (skip)
		SKIP(return, "%s", skip);
	ASSERT_EQ(0, pipe(p));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		urt_config_init(&cfg);
		cfg.monitor = "bpf";
		if (urt_create(&rt, &cfg))
			_exit(1);
		n = held_prog_ids(ids, 16);
		if (write(p[1], &n, sizeof(n)) != sizeof(n) ||
		    write(p[1], ids, n * sizeof(ids[0])) != (ssize_t)(n * sizeof(ids[0])))
			_exit(1);
		pause();
		_exit(0);
	}
	close(p[1]);
	ASSERT_EQ(sizeof(n), read(p[0], &n, sizeof(n)));
	ASSERT_GE(n, 1);
	ASSERT_EQ(n * sizeof(ids[0]), read(p[0], ids, n * sizeof(ids[0])));
	close(p[0]);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	ASSERT_TRUE(progs_gone(ids, n));

	/* And after a clean urt_destroy in this process. */
	urt_config_init(&cfg);
	cfg.monitor = "bpf";
	ASSERT_EQ(0, urt_create(&rt, &cfg));
	n = held_prog_ids(ids, 16);
	ASSERT_GE(n, 1);
	ASSERT_EQ(0, urt_destroy(rt));
	ASSERT_EQ(0, held_prog_ids(ids + n, 16 - n));
	ASSERT_TRUE(progs_gone(ids, n));
}

/* Internal (liburt.a): makes the backend's next wait fail. */
void urt__monitor_inject_failure(urt_rt *rt);

/* A backend failing mid-run hands its workers to the next one. */
static void failover_case(struct __test_metadata *_metadata, int poll)
{
	const char *skip = monitor_skip("bpf");
	struct urt_config cfg;
	struct shared sh = { 0 };
	struct urt_stats st;
	char why[256];
	urt_task_t b, s[50];
	int64_t deadline;
	urt_rt *rt;

	if (skip)
		SKIP(return, "%s", skip);
	urt_config_init(&cfg);
	cfg.workers = 1;
	cfg.monitor = "bpf";
	cfg.monitor_threshold_ns = MS(2);
	cfg.hog_threshold_ns = -1;	/* only the backend can see the block */
	cfg.monitor_poll = poll;
	ASSERT_EQ(0, urt_create(&rt, &cfg));
	ASSERT_STREQ("bpf", urt_monitor_backend(rt, why, sizeof(why)));
	urt__monitor_inject_failure(rt);
	deadline = urt_now() + MS(5000);
	while (strcmp(urt_monitor_backend(rt, why, sizeof(why)), "proc") && urt_now() < deadline)
		usleep(1000);
	ASSERT_STREQ("proc", urt_monitor_backend(rt, why, sizeof(why)));
	ASSERT_NE(NULL, strstr(why, "bpf backend failed")) TH_LOG("why: %s", why);

	/* The workers moved with it: a block is still seen and handed off. */
	ASSERT_EQ(0, pipe(sh.pipe));
	sh.how = IN_READ;
	atomic_store(&sh.stuck, 1);
	b = urt_spawn(rt, blocker, &sh);
	while (atomic_load(&sh.started) < 1)
		usleep(1000);
	for (int i = 0; i < 50; i++)
		s[i] = urt_spawn(rt, short_task, &sh);
	for (int i = 0; i < 50; i++)
		ASSERT_EQ(0, urt_join_timeout(s[i], NULL, MS(3000) * SLOW));
	ASSERT_EQ(1, atomic_load(&sh.stuck));
	ASSERT_EQ(0, urt_stats(rt, &st));
	ASSERT_GE(st.blocks_seen, 1);
	ASSERT_EQ(0, st.poll_handoffs);	/* proc's: the poller stopped looking */
	ASSERT_EQ(1, write(sh.pipe[1], "x", 1));
	ASSERT_EQ(0, urt_join(b, NULL));
	ASSERT_EQ(0, urt_destroy(rt));
	close(sh.pipe[0]);
	close(sh.pipe[1]);
}

TEST(a_backend_that_fails_mid_run_degrades_to_the_next_one)
{
	failover_case(_metadata, URT_MONITOR_POLL_OFF);
}

/* The same with the poller running: it must let go of the old backend's
 * memory (ASan) and leave proc to its tick. */
TEST(a_backend_that_fails_under_the_poller_degrades_to_the_next_one)
{
	failover_case(_metadata, 1);
}

TEST(the_monitor_says_which_backend_runs_and_why)
{
	struct urt_config cfg;
	char why[256];
	urt_rt *rt;

	urt_config_init(&cfg);
	cfg.monitor = "proc";
	ASSERT_EQ(0, urt_create(&rt, &cfg));
	ASSERT_STREQ("proc", urt_monitor_backend(rt, why, sizeof(why)));
	ASSERT_NE(0, strlen(why));
	ASSERT_EQ(0, urt_destroy(rt));

	cfg.monitor = "off";
	ASSERT_EQ(0, urt_create(&rt, &cfg));
	ASSERT_STREQ("off", urt_monitor_backend(rt, why, sizeof(why)));
	ASSERT_EQ(0, urt_destroy(rt));

	cfg.monitor = "no-such-backend";
	ASSERT_EQ(-EINVAL, urt_create(&rt, &cfg));
}

TEST(bad_monitor_environment_values_are_errors)
{
	struct urt_config cfg;
	char err[160];

	urt_config_init(&cfg);
	setenv("URT_MONITOR", "bfp", 1);
	ASSERT_EQ(-EINVAL, urt_config_from_env(&cfg, err, sizeof(err)));
	ASSERT_NE(NULL, strstr(err, "URT_MONITOR"));
	setenv("URT_MONITOR", "proc", 1);
	setenv("URT_MONITOR_THRESHOLD_US", "12x", 1);
	ASSERT_EQ(-EINVAL, urt_config_from_env(&cfg, err, sizeof(err)));
	ASSERT_NE(NULL, strstr(err, "URT_MONITOR_THRESHOLD_US"));
	setenv("URT_MONITOR_THRESHOLD_US", "20", 1);
	ASSERT_EQ(0, urt_config_from_env(&cfg, err, sizeof(err)));
	ASSERT_STREQ("proc", cfg.monitor);
	ASSERT_EQ(20000, cfg.monitor_threshold_ns);
	setenv("URT_MONITOR_POLL", "1025", 1);
	ASSERT_EQ(-EINVAL, urt_config_from_env(&cfg, err, sizeof(err)));
	ASSERT_NE(NULL, strstr(err, "URT_MONITOR_POLL")) TH_LOG("err: %s", err);
	setenv("URT_MONITOR_POLL", "on", 1);
	ASSERT_EQ(-EINVAL, urt_config_from_env(&cfg, err, sizeof(err)));
	setenv("URT_MONITOR_POLL", "2", 1);
	ASSERT_EQ(0, urt_config_from_env(&cfg, err, sizeof(err)));
	ASSERT_EQ(2, cfg.monitor_poll);
	setenv("URT_MONITOR_POLL", "auto", 1);
	ASSERT_EQ(0, urt_config_from_env(&cfg, err, sizeof(err)));
	ASSERT_EQ(URT_MONITOR_POLL_AUTO, cfg.monitor_poll);
	setenv("URT_MONITOR_POLL", "off", 1);
	ASSERT_EQ(0, urt_config_from_env(&cfg, err, sizeof(err)));
	ASSERT_EQ(URT_MONITOR_POLL_OFF, cfg.monitor_poll);
	setenv("URT_MONITOR_POLL", "0", 1);
	ASSERT_EQ(0, urt_config_from_env(&cfg, err, sizeof(err)));
	ASSERT_EQ(URT_MONITOR_POLL_OFF, cfg.monitor_poll);
	setenv("URT_MONITOR_POLL", "autox", 1);
	ASSERT_EQ(-EINVAL, urt_config_from_env(&cfg, err, sizeof(err)));
	setenv("URT_MONITOR_POLL", "2", 1);
	setenv("URT_HOG_SIGNAL", "yes", 1);
	ASSERT_EQ(-EINVAL, urt_config_from_env(&cfg, err, sizeof(err)));
	ASSERT_NE(NULL, strstr(err, "URT_HOG_SIGNAL")) TH_LOG("err: %s", err);
	setenv("URT_HOG_SIGNAL", "0", 1);
	ASSERT_EQ(0, urt_config_from_env(&cfg, err, sizeof(err)));
	ASSERT_EQ(-1, cfg.hog_signal);
	unsetenv("URT_HOG_SIGNAL");
	unsetenv("URT_MONITOR");
	unsetenv("URT_MONITOR_THRESHOLD_US");
	unsetenv("URT_MONITOR_POLL");
}

TEST(bad_monitor_poll_and_hog_signal_values_are_errors)
{
	struct urt_config cfg;
	urt_rt *rt;

	urt_config_init(&cfg);
	cfg.monitor_poll = 1025;
	ASSERT_EQ(-EINVAL, urt_create(&rt, &cfg));
	cfg.monitor_poll = -3;
	ASSERT_EQ(-EINVAL, urt_create(&rt, &cfg));
	cfg.monitor_poll = 0;
	cfg.hog_signal = 1;
	ASSERT_EQ(-EINVAL, urt_create(&rt, &cfg));
}
#endif /* !URT_VM_KMOD_ONLY */

TEST_HARNESS_MAIN
