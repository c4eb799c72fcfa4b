// SPDX-License-Identifier: GPL-2.0
/*
 * Unloading: rmmod is refused while anything still uses the module, and
 * succeeds right after the last user is gone, however it went (exit,
 * SIGKILL, fd closed with threads still registered). Reloads the module
 * from $URT_KO after each unload, so it must run as root in the test VM,
 * and it runs last.
 */
#include "urt_test.h"
#include "kselftest_harness.h"

static const char *ko_path(void)
{
	const char *p = getenv("URT_KO");

	return p ? p : "/urt.ko";
}

static int urt_rmmod(void)
{
	return syscall(SYS_delete_module, "urt", O_NONBLOCK) ? -errno : 0;
}

static int urt_insmod(void)
{
	int fd = open(ko_path(), O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, "", 0) ? -errno : 0;
	close(fd);
	return ret;
}

/*
 * rmmod until it works: the last group is freed from a workqueue just
 * after its last user went away, and holds the module until then.
 * Returns the number of EWOULDBLOCK/EBUSY answers before success.
 */
static int rmmod_retry(struct __test_metadata *_metadata)
{
	int i, ret;

	for (i = 0; i < 2000; i++) {
		ret = urt_rmmod();
		if (!ret)
			return i;
		if (ret != -EWOULDBLOCK && ret != -EBUSY)
			break;
		usleep(1000);
	}
	TH_LOG("rmmod urt: %s", strerror(-ret));
	return -1;
}

static void wait_dev(struct __test_metadata *_metadata)
{
	int i;

	for (i = 0; i < 2000 && access(URT_DEVICE_PATH, R_OK); i++)
		usleep(1000);
	ASSERT_EQ(0, access(URT_DEVICE_PATH, R_OK));
}

FIXTURE(mod) {
	int dummy;
};

FIXTURE_SETUP(mod)
{
	if (getuid() != 0)
		SKIP(return, "needs root");
	if (access(ko_path(), R_OK))
		SKIP(return, "%s: no module file (set URT_KO)", ko_path());
	if (access(URT_DEVICE_PATH, R_OK))
		SKIP(return, "urt.ko not loaded");
}

FIXTURE_TEARDOWN(mod)
{
	/* Leave the module loaded for whoever runs next. */
	if (access(URT_DEVICE_PATH, R_OK) && !access(ko_path(), R_OK)) {
		EXPECT_EQ(0, urt_insmod());
		wait_dev(_metadata);
	}
}

static void exit_now(int sig __attribute__((unused)))
{
	_exit(0);
}

/*
 * A child that uses everything, then waits: SIGUSR1 makes it exit
 * normally (exit_group with threads still registered), SIGKILL kills it.
 */
static void user_child(int how, int ready)
{
	struct worker w[4];
	struct urt_info info;
	int fd = urt_open(), i;

	if (fd < 0 || !urt_map(fd, &info) ||
	    urt_threshold(fd, 1000, URT_THR_NOTIFY_EVERY_BLOCK))
		_exit(10);
	for (i = 0; i < 4; i++)
		if (worker_start(&w[i], fd, i, -1))
			_exit(11);
	for (i = 0; i < 4; i++)
		worker_send(&w[i], 's', 1);
	if (how == 2)
		close(fd);	/* threads stay registered, fd gone */
	signal(SIGUSR1, exit_now);
	if (write(ready, "r", 1) != 1)
		_exit(12);
	for (;;)
		pause();
}

static void use_then_rmmod(struct __test_metadata *_metadata, int how)
{
	int p[2], status, tries;
	pid_t pid;
	char c;

	ASSERT_EQ(0, pipe(p));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		user_child(how, p[1]);
	close(p[1]);
	ASSERT_EQ(1, read(p[0], &c, 1));
	close(p[0]);
	/* In use: refused, and refused cleanly. */
	EXPECT_EQ(-EWOULDBLOCK, urt_rmmod());
	kill(pid, how == 1 ? SIGKILL : SIGUSR1);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	tries = rmmod_retry(_metadata);
	ASSERT_LE(0, tries);
	TH_LOG("rmmod succeeded after %d busy answers", tries);
	EXPECT_NE(0, access(URT_DEVICE_PATH, F_OK));
	ASSERT_EQ(0, urt_insmod());
	wait_dev(_metadata);
}

TEST_F(mod, rmmod_right_after_user_exits)
{
	use_then_rmmod(_metadata, 0);
}

TEST_F(mod, rmmod_right_after_user_is_killed)
{
	use_then_rmmod(_metadata, 1);
}

TEST_F(mod, rmmod_after_fd_closed_with_threads_registered)
{
	use_then_rmmod(_metadata, 2);
}

TEST_F(mod, rmmod_is_refused_while_a_group_is_open)
{
	int fd = urt_open();

	ASSERT_LE(0, fd);
	EXPECT_EQ(-EWOULDBLOCK, urt_rmmod());
	close(fd);
	ASSERT_LE(0, rmmod_retry(_metadata));
	ASSERT_EQ(0, urt_insmod());
	wait_dev(_metadata);
}

TEST_F(mod, rmmod_is_refused_while_a_thread_is_registered_after_close)
{
	int fd = urt_open();

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, urt_reg(fd, 0));
	close(fd);
	/* The registered thread keeps the group, the group the module. */
	EXPECT_EQ(-EWOULDBLOCK, urt_rmmod());
	/* This process (the test child) exits: then rmmod works. */
}

TEST_F(mod, rmmod_works_after_previous_test_exited)
{
	ASSERT_LE(0, rmmod_retry(_metadata));
	ASSERT_EQ(0, urt_insmod());
	wait_dev(_metadata);
}

TEST_HARNESS_MAIN
