// SPDX-License-Identifier: GPL-2.0
/*
 * Lifetimes: threads that exit without unregistering, processes killed
 * with SIGKILL mid-use, the fd closed by another thread while workers are
 * registered and blocked, a mapping that outlives its fd. Each test checks
 * that the module's own counters (debugfs) come back to where they were:
 * nothing leaked. slub_debug=FZPU in the second VM run catches what was
 * freed too early.
 */
#include "urt_test.h"
#include "kselftest_harness.h"

/* Counters before the test; frees are deferred, so wait for them. */
FIXTURE(life) {
	long long groups, workers;
};

FIXTURE_SETUP(life)
{
	self->groups = urt_stat("groups");
	self->workers = urt_stat("workers");
	if (self->groups < 0)
		TH_LOG("%s not readable: leak checks off", URT_STATS);
}

FIXTURE_TEARDOWN(life)
{
	if (self->groups < 0)
		return;
	EXPECT_EQ(self->workers, urt_stat_wait("workers", self->workers, 2000));
	EXPECT_EQ(self->groups, urt_stat_wait("groups", self->groups, 2000));
}

TEST_F(life, thread_exit_without_unregister_frees_its_slot)
{
	struct urt_worker_state *st, s;
	struct urt_info info;
	struct worker w;
	int fd = urt_open();

	ASSERT_LE(0, fd);
	st = urt_map(fd, &info);
	ASSERT_NE(NULL, st);
	ASSERT_EQ(0, worker_start(&w, fd, 7, -1));
	ASSERT_EQ(0, urt_threshold(fd, 1000, URT_THR_NOTIFY_EVERY_BLOCK));
	worker_do(&w, 's', 5);
	worker_stop(&w);	/* exits without UNREGISTER */
	/* The slot is freed by the exit itself, maybe after pthread_join. */
	ASSERT_EQ(0, urt_wait(&st[7], URT_STATE_UNUSED, 0, 2000, &s));
	EXPECT_EQ(0, s.tid);
	EXPECT_EQ(0, urt_reg(fd, 7));
	EXPECT_EQ(0, urt_unreg(fd));
	munmap(st, info.map_size);
	close(fd);
}

TEST_F(life, many_threads_exit_without_unregister)
{
	enum { N = 32 };
	struct worker w[N];
	struct urt_info info;
	struct urt_worker_state *st;
	int fd = urt_open(), i;

	ASSERT_LE(0, fd);
	st = urt_map(fd, &info);
	ASSERT_NE(NULL, st);
	ASSERT_EQ(0, urt_threshold(fd, 1000, 0));
	for (i = 0; i < N; i++)
		ASSERT_EQ(0, worker_start(&w[i], fd, info.max_workers - 1 - i,
					  -1));
	for (i = 0; i < N; i++)
		worker_send(&w[i], 's', 1);
	for (i = 0; i < N; i++)
		worker_stop(&w[i]);
	for (i = 0; i < N; i++)
		EXPECT_EQ(0, urt_wait(&st[info.max_workers - 1 - i],
				      URT_STATE_UNUSED, 0, 2000, NULL));
	munmap(st, info.map_size);
	close(fd);
}

/* Child: a group with @n workers blocked in read(), threshold armed. */
static void busy_child(int ready_fd, int n, int exit_how)
{
	struct worker *w = calloc(n, sizeof(*w));
	int fd = urt_open(), i;

	if (fd < 0 || !w)
		_exit(10);
	if (urt_threshold(fd, 1000, URT_THR_NOTIFY_EVERY_BLOCK))
		_exit(11);
	for (i = 0; i < n; i++)
		if (worker_start(&w[i], fd, i, -1))
			_exit(12);
	for (i = 0; i < n; i++)
		worker_send(&w[i], 's', 1);
	if (write(ready_fd, "r", 1) != 1)
		_exit(13);
	if (exit_how == 0)
		_exit(0);	/* exit_group with everything registered */
	for (;;)
		pause();	/* wait for SIGKILL */
}

static void run_child(struct __test_metadata *_metadata, int how)
{
	int p[2], status;
	pid_t pid;
	char c;

	ASSERT_EQ(0, pipe(p));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(p[0]);
		busy_child(p[1], 8, how);
	}
	close(p[1]);
	ASSERT_EQ(1, read(p[0], &c, 1));
	close(p[0]);
	if (how)
		kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	if (how) {
		EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	} else {
		EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
}

TEST_F(life, process_exit_with_registered_threads_is_clean)
{
	run_child(_metadata, 0);
}

TEST_F(life, sigkill_mid_use_is_clean)
{
	int i;

	for (i = 0; i < 3; i++)
		run_child(_metadata, 1);
}

TEST_F(life, close_from_another_thread_while_workers_blocked)
{
	struct urt_worker_state *st, s;
	struct urt_info info;
	struct worker w[2];
	int fd = urt_open();

	ASSERT_LE(0, fd);
	st = urt_map(fd, &info);
	ASSERT_NE(NULL, st);
	ASSERT_EQ(0, urt_threshold(fd, 1000000, URT_THR_NOTIFY_EVERY_BLOCK));
	ASSERT_EQ(0, worker_start(&w[0], fd, 0, -1));
	ASSERT_EQ(0, worker_start(&w[1], fd, 1, -1));
	ASSERT_EQ(0, urt_wait(&st[0], URT_STATE_BLOCKED, 0, 5000, NULL));
	ASSERT_EQ(0, urt_wait(&st[1], URT_STATE_BLOCKED, 0, 5000, NULL));

	/* This thread closes the fd the blocked workers registered with. */
	ASSERT_EQ(0, close(fd));
	/* The group lives on for them: the mapping still follows them. */
	urt_snap(&st[0], &s);
	worker_do(&w[0], 's', 20);
	ASSERT_EQ(0, urt_wait(&st[0], URT_STATE_BLOCKED, s.seq, 5000, NULL));
	/* They cannot unregister any more (EBADF); they just exit. */
	w[0].unregister_at_exit = 1;
	worker_stop(&w[0]);
	worker_stop(&w[1]);
	munmap(st, info.map_size);
}

TEST_F(life, mapping_outlives_the_fd)
{
	struct urt_worker_state *st, s;
	struct urt_info info;
	int fd = urt_open();

	ASSERT_LE(0, fd);
	st = urt_map(fd, &info);
	ASSERT_NE(NULL, st);
	ASSERT_EQ(0, urt_reg(fd, 9));
	ASSERT_EQ(0, close(fd));
	sleep_ms(5);
	urt_snap(&st[9], &s);
	EXPECT_EQ(URT_STATE_RUNNING, s.state);
	EXPECT_LE(1, s.blocks);
	EXPECT_EQ(urt_gettid(), s.tid);
	munmap(st, info.map_size);
	/*
	 * This thread stays registered in a group nobody can reach; it is
	 * detached when the test process exits. The teardown's leak check
	 * runs in this same process, so it would see this worker: skip it.
	 */
	self->groups = -1;
}

static void *monitor_main(void *arg)
{
	struct urt_event ev[16];
	int fd = *(int *)arg;

	while (read(fd, ev, sizeof(ev)) > 0 || errno == EINTR)
		;
	return NULL;
}

/*
 * Child: 8 workers blocking every 50 us with a 1 us threshold and an event
 * per block, a monitor thread reading, until it is killed. Timers fire
 * while their workers wake, on both CPUs: the races sched_in and the
 * hrtimer callback are written to survive.
 */
static void storm_child(int ready_fd)
{
	enum { N = 8 };
	struct worker w[N];
	pthread_t mon;
	int fd = urt_open(), i;

	if (fd < 0 || urt_threshold(fd, 1000, URT_THR_NOTIFY_EVERY_BLOCK))
		_exit(10);
	if (pthread_create(&mon, NULL, monitor_main, &fd))
		_exit(11);
	for (i = 0; i < N; i++)
		if (worker_start(&w[i], fd, i, i % 2))
			_exit(12);
	for (i = 0; i < N; i++)
		worker_send(&w[i], 'n', 1000000);
	if (write(ready_fd, "r", 1) != 1)
		_exit(13);
	for (;;)
		pause();
}

TEST_F(life, sigkill_during_block_storm_is_clean)
{
	long long blocks = urt_stat("blocks"), events = urt_stat("events");
	int p[2], status, round;
	pid_t pid;
	char c;

	for (round = 0; round < 3; round++) {
		ASSERT_EQ(0, pipe(p));
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			close(p[0]);
			storm_child(p[1]);
		}
		close(p[1]);
		ASSERT_EQ(1, read(p[0], &c, 1));
		close(p[0]);
		sleep_ms(300);
		kill(pid, SIGKILL);
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		EXPECT_TRUE(WIFSIGNALED(status));
	}
	if (blocks >= 0)
		TH_LOG("storm: %lld blocks, %lld events", urt_stat("blocks") -
		       blocks, urt_stat("events") - events);
}

/* A registered non-leader thread execs: it becomes the leader, then exits. */
static void *exec_main(void *arg)
{
	int fd = *(int *)arg;
	char *argv[] = { "true", NULL };

	if (urt_reg(fd, 1))
		_exit(20);
	execv("/bin/true", argv);
	_exit(21);
}

TEST_F(life, exec_from_a_registered_thread_is_clean)
{
	int status, fd;
	pid_t pid;

	if (access("/bin/true", X_OK))
		SKIP(return, "no /bin/true");
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		pthread_t t;

		/* Without O_CLOEXEC the group fd survives into the new image. */
		fd = open(URT_DEVICE_PATH, O_RDWR);
		if (fd < 0 || urt_reg(fd, 0))
			_exit(10);
		if (pthread_create(&t, NULL, exec_main, &fd))
			_exit(11);
		for (;;)
			pause();
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST_HARNESS_MAIN
