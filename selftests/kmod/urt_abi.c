// SPDX-License-Identifier: GPL-2.0
/*
 * urt.ko ABI: every ioctl, good and bad input, mmap rules, read/poll rules.
 */
#include "urt_test.h"
#include "kselftest_harness.h"

FIXTURE(group) {
	int fd;
	struct urt_info info;
	struct urt_worker_state *st;
};

FIXTURE_SETUP(group)
{
	self->fd = urt_open();
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", URT_DEVICE_PATH,
				      strerror(errno));
	self->st = urt_map(self->fd, &self->info);
	ASSERT_NE(NULL, self->st);
}

FIXTURE_TEARDOWN(group)
{
	if (self->st)
		munmap(self->st, self->info.map_size);
	close(self->fd);
}

TEST_F(group, get_version_returns_abi_version)
{
	EXPECT_EQ(URT_ABI_VERSION, ioctl(self->fd, URT_IOC_GET_VERSION));
}

TEST_F(group, get_info_describes_layout)
{
	long page = sysconf(_SC_PAGESIZE);

	EXPECT_EQ(URT_ABI_VERSION, self->info.abi_version);
	EXPECT_EQ(sizeof(struct urt_worker_state), self->info.state_size);
	EXPECT_EQ(sizeof(struct urt_event), self->info.event_size);
	EXPECT_LT(0, self->info.max_workers);
	EXPECT_EQ(0, self->info.map_size % page);
	EXPECT_LE((uint64_t)self->info.max_workers * self->info.state_size,
		  self->info.map_size);
	EXPECT_LT(0, self->info.threshold_min_ns);
	EXPECT_LT(self->info.threshold_min_ns, self->info.threshold_max_ns);
	EXPECT_LT(0, self->info.event_queue_len);
	EXPECT_EQ(0, self->info.reserved0);
	EXPECT_EQ(0, self->info.reserved[0]);
	EXPECT_EQ(0, self->info.reserved[1]);
	EXPECT_EQ(-EFAULT, ioctl(self->fd, URT_IOC_GET_INFO, 8) ? -errno : 0);
}

TEST_F(group, all_slots_start_unused)
{
	struct urt_worker_state s;
	unsigned int i;

	for (i = 0; i < self->info.max_workers; i++) {
		urt_snap(&self->st[i], &s);
		ASSERT_EQ(URT_STATE_UNUSED, s.state);
		ASSERT_EQ(i, s.slot);
		ASSERT_EQ(0, s.tid);
		ASSERT_EQ(-1, s.syscall_nr);
		ASSERT_EQ(0, s.seq & 1);
	}
}

TEST_F(group, unknown_ioctl_is_enotty)
{
	EXPECT_EQ(-1, ioctl(self->fd, _IO(URT_IOC_MAGIC, 0x7f)));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, _IO('x', 0x02)));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, TCGETS, NULL));
	EXPECT_EQ(ENOTTY, errno);
}

TEST_F(group, ioctl_with_wrong_size_is_enotty)
{
	uint64_t small[2] = { 0, 0 };
	char big[128] = { 0 };

	/* The size is part of the command: other sizes are other commands. */
	EXPECT_EQ(-1, ioctl(self->fd, _IOW(URT_IOC_MAGIC, 0x02, small), small));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, _IOW(URT_IOC_MAGIC, 0x04, big), big));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, _IOR(URT_IOC_MAGIC, 0x01, small), small));
	EXPECT_EQ(ENOTTY, errno);
	/* Direction bits too. */
	EXPECT_EQ(-1, ioctl(self->fd, _IOR(URT_IOC_MAGIC, 0x02,
					   struct urt_register), big));
	EXPECT_EQ(ENOTTY, errno);
}

TEST_F(group, register_rejects_nonzero_reserved_and_flags)
{
	struct urt_register r;
	int i;

	for (i = 0; i < 3; i++) {
		memset(&r, 0, sizeof(r));
		r.reserved[i] = 1;
		EXPECT_EQ(-1, ioctl(self->fd, URT_IOC_REGISTER, &r));
		EXPECT_EQ(EINVAL, errno);
	}
	memset(&r, 0, sizeof(r));
	r.flags = 1;
	EXPECT_EQ(-1, ioctl(self->fd, URT_IOC_REGISTER, &r));
	EXPECT_EQ(EINVAL, errno);
	r.flags = 0x80000000u;
	EXPECT_EQ(-1, ioctl(self->fd, URT_IOC_REGISTER, &r));
	EXPECT_EQ(EINVAL, errno);
	/* Nothing was registered by the failed calls. */
	EXPECT_EQ(-ENOENT, urt_unreg(self->fd));
}

TEST_F(group, register_rejects_slot_out_of_range)
{
	EXPECT_EQ(-EINVAL, urt_reg(self->fd, self->info.max_workers));
	EXPECT_EQ(-EINVAL, urt_reg(self->fd, 0xffffffffu));
	EXPECT_EQ(-ENOENT, urt_unreg(self->fd));
}

TEST_F(group, register_with_bad_pointer_is_efault)
{
	EXPECT_EQ(-1, ioctl(self->fd, URT_IOC_REGISTER, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, URT_IOC_REGISTER, (void *)8));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, URT_IOC_SET_THRESHOLD, NULL));
	EXPECT_EQ(EFAULT, errno);
}

TEST_F(group, register_publishes_running_with_tid)
{
	unsigned int slot = self->info.max_workers - 1;
	struct urt_worker_state s, before;

	urt_snap(&self->st[slot], &before);
	ASSERT_EQ(0, urt_reg(self->fd, slot));
	urt_snap(&self->st[slot], &s);
	EXPECT_EQ(URT_STATE_RUNNING, s.state);
	EXPECT_EQ(urt_gettid(), s.tid);
	EXPECT_EQ(slot, s.slot);
	EXPECT_EQ(-1, s.syscall_nr);
	EXPECT_EQ(0, s.blocks);
	EXPECT_EQ(0, s.blocked_ns);
	EXPECT_LT(before.seq, s.seq);

	ASSERT_EQ(0, urt_unreg(self->fd));
	urt_snap(&self->st[slot], &s);
	EXPECT_EQ(URT_STATE_UNUSED, s.state);
	EXPECT_EQ(0, s.tid);
	/* And the slot can be taken again. */
	ASSERT_EQ(0, urt_reg(self->fd, slot));
	ASSERT_EQ(0, urt_unreg(self->fd));
}

TEST_F(group, double_register_is_ebusy)
{
	int fd2 = urt_open();

	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, urt_reg(self->fd, 0));
	EXPECT_EQ(-EBUSY, urt_reg(self->fd, 0));
	EXPECT_EQ(-EBUSY, urt_reg(self->fd, 1));
	/* A thread is in at most one group. */
	EXPECT_EQ(-EBUSY, urt_reg(fd2, 0));
	/* ... and cannot leave a group it is not in. */
	EXPECT_EQ(-ENOENT, urt_unreg(fd2));
	EXPECT_EQ(0, urt_unreg(self->fd));
	EXPECT_EQ(-ENOENT, urt_unreg(self->fd));
	EXPECT_EQ(0, urt_reg(fd2, 0));
	EXPECT_EQ(0, urt_unreg(fd2));
	close(fd2);
}

TEST_F(group, slot_of_another_thread_is_ebusy)
{
	struct worker w;

	ASSERT_EQ(0, worker_start(&w, self->fd, 3, -1));
	EXPECT_EQ(-EBUSY, urt_reg(self->fd, 3));
	EXPECT_EQ(0, urt_reg(self->fd, 4));
	EXPECT_EQ(0, urt_unreg(self->fd));
	w.unregister_at_exit = 1;
	worker_stop(&w);
	EXPECT_EQ(0, urt_reg(self->fd, 3));
	EXPECT_EQ(0, urt_unreg(self->fd));
}

TEST_F(group, unregister_checks_arg_and_membership)
{
	EXPECT_EQ(-ENOENT, urt_unreg(self->fd));
	ASSERT_EQ(0, urt_reg(self->fd, 0));
	EXPECT_EQ(-1, ioctl(self->fd, URT_IOC_UNREGISTER, 1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, urt_unreg(self->fd));
}

TEST_F(group, register_from_another_process_is_eperm)
{
	pid_t pid;
	int status;

	/* The child inherits the fd but is not the process that opened it. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (urt_reg(self->fd, 0) != -EPERM)
			_exit(1);
		if (urt_unreg(self->fd) != -ENOENT)
			_exit(2);
		/* Reading the state and the ABI version is fine. */
		if (ioctl(self->fd, URT_IOC_GET_VERSION) != URT_ABI_VERSION)
			_exit(3);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST_F(group, registration_is_not_inherited_by_fork)
{
	pid_t pid;
	int status;

	ASSERT_EQ(0, urt_reg(self->fd, 0));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(urt_unreg(self->fd) == -ENOENT ? 0 : 1);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(URT_STATE_RUNNING, self->st[0].state);
	EXPECT_EQ(0, urt_unreg(self->fd));
}

TEST_F(group, set_threshold_validates_input)
{
	struct urt_threshold t;

	EXPECT_EQ(0, urt_threshold(self->fd, 0, 0));
	EXPECT_EQ(0, urt_threshold(self->fd, self->info.threshold_min_ns, 0));
	EXPECT_EQ(0, urt_threshold(self->fd, self->info.threshold_max_ns,
				   URT_THR_NOTIFY_EVERY_BLOCK));
	EXPECT_EQ(0, urt_threshold(self->fd, 0, URT_THR_NOTIFY_EVERY_BLOCK));
	EXPECT_EQ(-EINVAL, urt_threshold(self->fd,
					 self->info.threshold_min_ns - 1, 0));
	EXPECT_EQ(-EINVAL, urt_threshold(self->fd,
					 self->info.threshold_max_ns + 1, 0));
	EXPECT_EQ(-EINVAL, urt_threshold(self->fd, ~0ull, 0));
	EXPECT_EQ(-EINVAL, urt_threshold(self->fd, 1000000, 1u << 1));
	EXPECT_EQ(-EINVAL, urt_threshold(self->fd, 1000000, 1u << 31));

	memset(&t, 0, sizeof(t));
	t.threshold_ns = 1000000;
	t.reserved0 = 1;
	EXPECT_EQ(-1, ioctl(self->fd, URT_IOC_SET_THRESHOLD, &t));
	EXPECT_EQ(EINVAL, errno);
	t.reserved0 = 0;
	t.reserved[1] = 1;
	EXPECT_EQ(-1, ioctl(self->fd, URT_IOC_SET_THRESHOLD, &t));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(group, writable_mapping_is_refused)
{
	void *p;

	p = mmap(NULL, self->info.map_size, PROT_READ | PROT_WRITE,
		 MAP_SHARED, self->fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EPERM, errno);
	p = mmap(NULL, self->info.map_size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE, self->fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EPERM, errno);
	/* A read-only mapping cannot be made writable later. */
	EXPECT_EQ(-1, mprotect(self->st, self->info.map_size,
			       PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
}

TEST_F(group, mapping_beyond_the_state_is_refused)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p;

	p = mmap(NULL, self->info.map_size + page, PROT_READ, MAP_SHARED,
		 self->fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, page, PROT_READ, MAP_SHARED, self->fd, page);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	/* A prefix is fine. */
	p = mmap(NULL, page, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	munmap(p, page);
}

TEST_F(group, read_needs_room_for_one_event)
{
	struct urt_event ev[2];
	struct pollfd pfd = { .fd = self->fd, .events = POLLIN };
	int fl;

	EXPECT_EQ(-1, read(self->fd, ev, sizeof(ev[0]) - 1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, read(self->fd, ev, 0));
	EXPECT_EQ(EINVAL, errno);
	fl = fcntl(self->fd, F_GETFL);
	ASSERT_EQ(0, fcntl(self->fd, F_SETFL, fl | O_NONBLOCK));
	EXPECT_EQ(-1, read(self->fd, ev, sizeof(ev)));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	EXPECT_EQ(-1, lseek(self->fd, 0, SEEK_SET));
	EXPECT_EQ(ESPIPE, errno);
}

TEST(groups_per_user_are_limited)
{
	char old[32] = "", path[] = URT_PARAM "max_groups_per_user";
	int fds[8], i, n = 0, f;
	ssize_t len;

	f = open(path, O_RDWR);
	if (f < 0)
		SKIP(return, "%s: %s (needs root)", path, strerror(errno));
	len = read(f, old, sizeof(old) - 1);
	ASSERT_LT(0, len);
	ASSERT_EQ(2, pwrite(f, "3\n", 2, 0));
	for (i = 0; i < 8; i++) {
		fds[i] = urt_open();
		if (fds[i] < 0)
			break;
		n++;
	}
	EXPECT_EQ(3, n);
	EXPECT_EQ(EMFILE, errno);
	/* Closing one makes room for one. */
	close(fds[0]);
	fds[0] = urt_open();
	EXPECT_LE(0, fds[0]);
	EXPECT_GT(0, urt_open());
	for (i = 0; i < n; i++)
		close(fds[i]);
	ASSERT_EQ(len, pwrite(f, old, len, 0));
	close(f);
}

TEST_HARNESS_MAIN
