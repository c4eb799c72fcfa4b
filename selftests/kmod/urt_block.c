// SPDX-License-Identifier: GPL-2.0
/*
 * Block detection: a worker blocked in a syscall is seen BLOCKED with that
 * syscall's number and a timestamp; preemption and sched_yield() are not
 * blocks; counters and tracepoints follow.
 */
#include "urt_test.h"
#include "kselftest_harness.h"

FIXTURE(blk) {
	int fd;
	struct urt_info info;
	struct urt_worker_state *st;
	struct worker w;
};

FIXTURE_SETUP(blk)
{
	self->fd = urt_open();
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", URT_DEVICE_PATH,
				      strerror(errno));
	self->st = urt_map(self->fd, &self->info);
	ASSERT_NE(NULL, self->st);
	ASSERT_EQ(0, worker_start(&self->w, self->fd, 5, -1));
}

FIXTURE_TEARDOWN(blk)
{
	self->w.unregister_at_exit = 1;
	worker_stop(&self->w);
	munmap(self->st, self->info.map_size);
	close(self->fd);
}

TEST_F(blk, worker_blocked_in_read_is_blocked_with_syscall_nr)
{
	struct urt_worker_state *st = &self->st[5], s, r;
	uint64_t t0 = now_ns();

	/* Between commands the worker sits in read() on its pipe. */
	ASSERT_EQ(0, urt_wait(st, URT_STATE_BLOCKED, 0, 5000, &s));
	EXPECT_EQ(__NR_read, s.syscall_nr);
	EXPECT_EQ(self->w.tid, s.tid);
	EXPECT_EQ(5, s.slot);
	EXPECT_LE(1, s.blocks);
	EXPECT_NE(0, s.blocked_since_ns);
	EXPECT_GE(now_ns(), s.blocked_since_ns);

	/* Let it run: RUNNING, and the block is accounted. */
	sleep_ms(20);
	worker_send(&self->w, 'p', 100);
	ASSERT_EQ(0, urt_wait(st, URT_STATE_RUNNING, s.seq, 5000, &r));
	EXPECT_EQ(s.blocks, r.blocks);
	EXPECT_LE(s.blocked_ns + 20000000ull, r.blocked_ns);
	EXPECT_LE(t0, s.blocked_since_ns + 5000000000ull);
	/* And back in read() after the command. */
	ASSERT_EQ(0, urt_wait(st, URT_STATE_BLOCKED, r.seq, 5000, &s));
	EXPECT_EQ(__NR_read, s.syscall_nr);
	EXPECT_LT(r.blocks, s.blocks);
}

TEST_F(blk, sleeping_worker_reports_clock_nanosleep)
{
	struct urt_worker_state *st = &self->st[5], s;

	ASSERT_EQ(0, urt_wait(st, URT_STATE_BLOCKED, 0, 5000, &s));
	worker_send(&self->w, 's', 300);
	/* The next block with another syscall than read() is the sleep. */
	for (;;) {
		ASSERT_EQ(0, urt_wait(st, URT_STATE_BLOCKED, s.seq, 5000, &s));
		if (s.syscall_nr != __NR_read)
			break;
	}
	/* glibc's nanosleep() is clock_nanosleep(). */
	EXPECT_TRUE(s.syscall_nr == __NR_clock_nanosleep ||
		    s.syscall_nr == __NR_nanosleep)
		TH_LOG("syscall_nr %lld", (long long)s.syscall_nr);
}

TEST_F(blk, sched_yield_is_not_a_block)
{
	struct urt_worker_state *st = &self->st[5], a, b;
	struct worker spinner;
	int fd2 = urt_open();

	/* Pin both to CPU 0 so that each yield really switches. */
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, worker_start(&spinner, fd2, 0, 0));
	self->w.unregister_at_exit = 1;
	worker_stop(&self->w);
	ASSERT_EQ(0, worker_start(&self->w, self->fd, 5, 0));
	ASSERT_EQ(0, urt_wait(st, URT_STATE_BLOCKED, 0, 5000, &a));

	worker_send(&spinner, 'p', 600);
	sleep_ms(10);
	worker_do(&self->w, 'y', 300);
	/* One block: back into read() after the command. None in between. */
	ASSERT_EQ(0, urt_wait(st, URT_STATE_BLOCKED, a.seq, 5000, &b));
	EXPECT_EQ(a.blocks + 1, b.blocks);
	/* The yields did switch to the spinner (each such switch is counted
	 * as involuntary), and none of them counted as a block.
	 */
	EXPECT_LT(0, self->w.nivcsw) TH_LOG("yields that switched: %ld",
					    self->w.nivcsw);
	worker_stop(&spinner);
	close(fd2);
}

TEST_F(blk, preemption_is_not_a_block)
{
	struct urt_worker_state *st = &self->st[5], a, b;
	struct worker spinner;
	int fd2 = urt_open();

	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, worker_start(&spinner, fd2, 0, 0));
	self->w.unregister_at_exit = 1;
	worker_stop(&self->w);
	ASSERT_EQ(0, worker_start(&self->w, self->fd, 5, 0));
	ASSERT_EQ(0, urt_wait(st, URT_STATE_BLOCKED, 0, 5000, &a));

	/* Two CPU hogs on one CPU: the scheduler preempts them in turn. */
	worker_send(&spinner, 'p', 600);
	sleep_ms(10);
	worker_do(&self->w, 'p', 400);
	ASSERT_EQ(0, urt_wait(st, URT_STATE_BLOCKED, a.seq, 5000, &b));
	EXPECT_EQ(a.blocks + 1, b.blocks);
	EXPECT_LT(0, self->w.nivcsw) TH_LOG("preemptions: %ld",
					    self->w.nivcsw);
	worker_stop(&spinner);
	close(fd2);
}

TEST_F(blk, blocked_time_accumulates)
{
	struct urt_worker_state *st = &self->st[5], a, b;

	ASSERT_EQ(0, urt_wait(st, URT_STATE_BLOCKED, 0, 5000, &a));
	worker_do(&self->w, 's', 50);
	worker_do(&self->w, 's', 50);
	urt_snap(st, &b);
	EXPECT_LE(a.blocked_ns + 100000000ull, b.blocked_ns);
	EXPECT_LE(a.blocks + 2, b.blocks);
	EXPECT_EQ(0, b.seq & 1);
}

TEST_F(blk, stats_count_blocks)
{
	long long before = urt_stat("blocks");
	struct urt_worker_state s;

	if (before < 0)
		SKIP(return, "%s not readable", URT_STATS);

	worker_do(&self->w, 's', 10);
	/* The sleep, and the read() it returns to. */
	ASSERT_EQ(0, worker_idle(&self->st[5], &s));
	EXPECT_LE(before + 2, urt_stat("blocks"));
	EXPECT_LE(1, urt_stat("workers"));
	EXPECT_LE(1, urt_stat("groups"));
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_TRUNC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -EIO;
}

TEST_F(blk, tracepoints_report_block_and_unblock)
{
	const char *t = "/sys/kernel/tracing";
	char path[256], buf[65536], want[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/events/urt/urt_notify/format", t);
	if (access(path, R_OK))
		SKIP(return, "tracefs not mounted at %s", t);
	snprintf(path, sizeof(path), "%s/trace", t);
	ASSERT_EQ(0, write_file(path, ""));
	snprintf(path, sizeof(path), "%s/events/urt/enable", t);
	ASSERT_EQ(0, write_file(path, "1"));
	worker_do(&self->w, 's', 10);
	ASSERT_EQ(0, write_file(path, "0"));

	snprintf(path, sizeof(path), "%s/trace", t);
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ASSERT_LT(0, n);
	buf[n] = 0;
	snprintf(want, sizeof(want), "urt_block: tid=%d slot=5", self->w.tid);
	EXPECT_NE(NULL, strstr(buf, want)) TH_LOG("trace:\n%.2000s", buf);
	snprintf(want, sizeof(want), "urt_unblock: tid=%d slot=5",
		 self->w.tid);
	EXPECT_NE(NULL, strstr(buf, want));
}

TEST_F(blk, snapshots_stay_consistent_while_the_worker_churns)
{
	struct urt_worker_state *st = &self->st[5], prev, s;
	uint64_t n = 0, changes = 0;

	urt_snap(st, &prev);
	worker_send(&self->w, 'n', 1000);	/* 1000 short sleeps */
	do {
		urt_snap(st, &s);
		n++;
		ASSERT_EQ(0, s.seq & 1);
		ASSERT_EQ(5, s.slot);
		ASSERT_EQ(self->w.tid, s.tid);
		ASSERT_LE(prev.seq, s.seq);
		ASSERT_LE(prev.blocks, s.blocks);
		ASSERT_LE(prev.blocked_ns, s.blocked_ns);
		if (s.state == URT_STATE_BLOCKED) {
			ASSERT_LE(prev.blocked_since_ns, s.blocked_since_ns);
		} else {
			ASSERT_EQ(URT_STATE_RUNNING, s.state);
		}
		changes += s.seq != prev.seq;
		prev = s;
	} while (__atomic_load_n(&self->w.done, __ATOMIC_ACQUIRE) == 0);
	TH_LOG("%llu snapshots, %llu changes seen",
	       (unsigned long long)n, (unsigned long long)changes);
	EXPECT_LT(10, changes);
}

TEST_HARNESS_MAIN
