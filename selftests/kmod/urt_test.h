/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the urt.ko selftests: open a group, map its state,
 * take consistent snapshots, and run worker threads that register
 * themselves and then obey one-byte commands sent through a pipe. Between
 * commands a worker is blocked in read() on that pipe, which is exactly the
 * "worker blocked in a syscall" case the module exists to see.
 */
#ifndef URT_TEST_H
#define URT_TEST_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/urt.h>

#define URT_STATS "/sys/kernel/debug/urt/stats"
#define URT_PARAM "/sys/module/urt/parameters/"

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static inline void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static inline pid_t urt_gettid(void)
{
	return syscall(SYS_gettid);
}

static inline int urt_open(void)
{
	return open(URT_DEVICE_PATH, O_RDWR | O_CLOEXEC);
}

/* The ioctl wrappers return 0 or -errno, so ASSERT_EQ(-EINVAL, ...) reads well. */
static inline int urt_reg(int fd, unsigned int slot)
{
	struct urt_register r = { .slot = slot };

	return ioctl(fd, URT_IOC_REGISTER, &r) ? -errno : 0;
}

static inline int urt_unreg(int fd)
{
	return ioctl(fd, URT_IOC_UNREGISTER, 0) ? -errno : 0;
}

static inline int urt_threshold(int fd, uint64_t ns, uint32_t flags)
{
	struct urt_threshold t = { .threshold_ns = ns, .flags = flags };

	return ioctl(fd, URT_IOC_SET_THRESHOLD, &t) ? -errno : 0;
}

static inline int urt_info(int fd, struct urt_info *info)
{
	return ioctl(fd, URT_IOC_GET_INFO, info) ? -errno : 0;
}

static inline struct urt_worker_state *urt_map(int fd, struct urt_info *info)
{
	void *p;

	if (urt_info(fd, info))
		return NULL;
	p = mmap(NULL, info->map_size, PROT_READ, MAP_SHARED, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* The reader side of the seqcount described in urt.h. */
static inline void urt_snap(const struct urt_worker_state *st,
			    struct urt_worker_state *out)
{
	uint32_t s1, s2;

	for (;;) {
		s1 = __atomic_load_n(&st->seq, __ATOMIC_ACQUIRE);
		memcpy(out, (const void *)st, sizeof(*out));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s2 = __atomic_load_n(&st->seq, __ATOMIC_RELAXED);
		if (!(s1 & 1) && s1 == s2)
			return;
	}
}

/* Wait until the slot is in @state with seq > @after_seq. 0 or -1. */
static inline int urt_wait(const struct urt_worker_state *st, uint32_t state,
			   uint32_t after_seq, int timeout_ms,
			   struct urt_worker_state *out)
{
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000;
	struct urt_worker_state tmp;

	if (!out)
		out = &tmp;
	do {
		urt_snap(st, out);
		if (out->state == state && (int32_t)(out->seq - after_seq) > 0)
			return 0;
		usleep(200);
	} while (now_ns() < end);
	return -1;
}

/* Wait until the worker is back, idle, in read() on its command pipe. */
static inline int urt_wait_idle(const struct urt_worker_state *st,
				uint32_t after_seq, struct urt_worker_state *out)
{
	struct urt_worker_state tmp;

	if (!out)
		out = &tmp;
	do {
		if (urt_wait(st, URT_STATE_BLOCKED, after_seq, 5000, out))
			return -1;
		after_seq = out->seq;
	} while (out->syscall_nr != __NR_read);
	return 0;
}

/*
 * After worker_do() returned: wait for the worker to be idle in read()
 * again. The snapshot is either still RUNNING (not yet in read()) or
 * already the final block.
 */
static inline int worker_idle(const struct urt_worker_state *st,
			      struct urt_worker_state *out)
{
	urt_snap(st, out);
	if (out->state == URT_STATE_BLOCKED && out->syscall_nr == __NR_read)
		return 0;
	return urt_wait_idle(st, out->seq, out);
}

/* A counter from debugfs, or -1 when debugfs is not there. */
static inline long long urt_stat(const char *name)
{
	char key[64];
	long long v;
	FILE *f = fopen(URT_STATS, "r");

	if (!f)
		return -1;
	while (fscanf(f, "%63s %lld", key, &v) == 2) {
		if (!strcmp(key, name)) {
			fclose(f);
			return v;
		}
	}
	fclose(f);
	return -1;
}

/* Wait for a debugfs counter to reach @want (frees are deferred). */
static inline long long urt_stat_wait(const char *name, long long want,
				      int timeout_ms)
{
	long long v;
	int i;

	for (i = 0; i <= timeout_ms; i += 5) {
		v = urt_stat(name);
		if (v == want || v < 0)
			return v;
		sleep_ms(5);
	}
	return v;
}

static inline int pin_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

static inline long nivcsw_self(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_nivcsw;
}

/* Spin on the vDSO clock (no syscall, no block) for @ms. */
static inline void spin_ms(unsigned int ms)
{
	uint64_t end = now_ns() + (uint64_t)ms * 1000000;

	while (now_ns() < end)
		;
}

/*
 * Worker thread commands, one byte each on w->cmd:
 *   'q' quit (unregister first if w->unregister_at_exit)   'u' unregister
 *   's' sleep w->arg ms      'y' sched_yield() for w->arg ms
 *   'p' spin w->arg ms       'n' w->arg nanosleeps of 50 us
 *   'm' w->arg nanosleeps of 50 us, then sleep w->arg2 ms
 *   'r' w->arg round trips with a pingpong_partner() (pingpong_start())
 * After each command w->done is incremented, and the worker blocks again
 * in read() for the next one.
 */
struct worker {
	int fd;
	unsigned int slot;
	int cpu;			/* -1: not pinned */
	int unregister_at_exit;
	int cmd[2];
	pthread_t thread;
	unsigned int arg;
	unsigned int arg2;
	int ping[2], pong[2];		/* 'r': to and from the partner */
	pthread_t partner;
	pid_t tid;
	int reg_err;
	int started;			/* atomic */
	int done;			/* atomic */
	long nivcsw;			/* measured by 'y' and 'p' */
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned int i;
	char c;

	w->tid = urt_gettid();
	if (w->cpu >= 0)
		pin_cpu(w->cpu);
	w->reg_err = urt_reg(w->fd, w->slot);
	__atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
	while (read(w->cmd[0], &c, 1) == 1 && c != 'q') {
		long before = nivcsw_self();

		switch (c) {
		case 'u':
			w->reg_err = urt_unreg(w->fd);
			break;
		case 's':
			sleep_ms(w->arg);
			break;
		case 'y': {
			uint64_t end = now_ns() + w->arg * 1000000ull;

			while (now_ns() < end)
				sched_yield();
			break;
		}
		case 'p':
			spin_ms(w->arg);
			break;
		case 'n':
			for (i = 0; i < w->arg; i++)
				usleep(50);
			break;
		case 'm':
			for (i = 0; i < w->arg; i++)
				usleep(50);
			sleep_ms(w->arg2);
			break;
		case 'r':
			for (i = 0; i < w->arg; i++)
				if (write(w->ping[1], &c, 1) != 1 ||
				    read(w->pong[0], &c, 1) != 1)
					break;
			break;
		}
		w->nivcsw = nivcsw_self() - before;
		__atomic_add_fetch(&w->done, 1, __ATOMIC_RELEASE);
	}
	if (w->unregister_at_exit)
		urt_unreg(w->fd);
	return NULL;
}

/* Echoes each byte from ping back on pong until ping is closed. */
static void *pingpong_partner(void *arg)
{
	struct worker *w = arg;
	char c;

	if (w->cpu >= 0)
		pin_cpu(w->cpu);
	while (read(w->ping[0], &c, 1) == 1)
		if (write(w->pong[1], &c, 1) != 1)
			break;
	return NULL;
}

/*
 * Give a started worker a partner thread (not registered, on the same CPU
 * when the worker is pinned) for 'r': each round trip is one block of the
 * worker and two context switches.
 */
static inline int pingpong_start(struct worker *w)
{
	if (pipe(w->ping) || pipe(w->pong))
		return -errno;
	return -pthread_create(&w->partner, NULL, pingpong_partner, w);
}

static inline void pingpong_stop(struct worker *w)
{
	close(w->ping[1]);
	pthread_join(w->partner, NULL);
	close(w->ping[0]);
	close(w->pong[0]);
	close(w->pong[1]);
}

/* Start a worker registered in @slot; returns its registration result. */
static inline int worker_start(struct worker *w, int fd, unsigned int slot,
			       int cpu)
{
	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->slot = slot;
	w->cpu = cpu;
	if (pipe(w->cmd) || pthread_create(&w->thread, NULL, worker_main, w))
		return -EAGAIN;
	while (!__atomic_load_n(&w->started, __ATOMIC_ACQUIRE))
		usleep(100);
	return w->reg_err;
}

/* Run one command and wait for it to finish. */
static inline void worker_do(struct worker *w, char c, unsigned int arg)
{
	int done = __atomic_load_n(&w->done, __ATOMIC_ACQUIRE);

	w->arg = arg;
	if (write(w->cmd[1], &c, 1) != 1)
		abort();
	while (__atomic_load_n(&w->done, __ATOMIC_ACQUIRE) == done)
		usleep(100);
}

static inline void worker_send(struct worker *w, char c, unsigned int arg)
{
	w->arg = arg;
	if (write(w->cmd[1], &c, 1) != 1)
		abort();
}

static inline void worker_stop(struct worker *w)
{
	char c = 'q';

	if (write(w->cmd[1], &c, 1) != 1)
		abort();
	pthread_join(w->thread, NULL);
	close(w->cmd[0]);
	close(w->cmd[1]);
}

/* Read events with a timeout; returns the number read (0 on timeout). */
static inline int urt_read_events(int fd, struct urt_event *ev, int max,
				  int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, timeout_ms) <= 0)
		return 0;
	n = read(fd, ev, max * sizeof(*ev));
	return n < 0 ? -errno : (int)(n / sizeof(*ev));
}

#endif /* URT_TEST_H */
