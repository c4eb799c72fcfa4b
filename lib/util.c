// SPDX-License-Identifier: MIT
/* Small shared pieces: the spinlock slow path, futexes, time, errors. */
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

void urt__spin_lock_slow(urt_spin *l)
{
	unsigned int spins = 0;

	for (;;) {
		while (atomic_load_explicit(&l->v, memory_order_relaxed)) {
			/* The holder may have been preempted: stop burning its CPU. */
			if (++spins > 128)
				sched_yield();
			else
				__builtin_ia32_pause();
		}
		if (!atomic_exchange_explicit(&l->v, 1, memory_order_acquire))
			return;
	}
}

int64_t urt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t urt__deadline(int64_t timeout_ns)
{
	int64_t now;

	if (timeout_ns == URT_FOREVER)
		return URT_FOREVER;
	if (timeout_ns < 0)
		timeout_ns = 0;
	now = urt_now();
	return timeout_ns > URT_FOREVER - now ? URT_FOREVER : now + timeout_ns;
}

int urt__futex_wait(atomic_uint *addr, unsigned int val, int64_t deadline_ns)
{
	struct timespec ts, *tsp = NULL;

	if (deadline_ns != URT_FOREVER) {
		/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time. */
		ts.tv_sec = deadline_ns / 1000000000LL;
		ts.tv_nsec = deadline_ns % 1000000000LL;
		tsp = &ts;
	}
	if (syscall(SYS_futex, addr, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG,
		    val, tsp, NULL, FUTEX_BITSET_MATCH_ANY) == 0)
		return 0;
	return errno == ETIMEDOUT ? -ETIMEDOUT : 0;	/* EAGAIN/EINTR: re-check */
}

void urt__futex_wake(atomic_uint *addr, int n)
{
	syscall(SYS_futex, addr, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n, NULL, NULL, 0);
}

void urt__die(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "urt: fatal: ");
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(STDERR_FILENO, buf, n) < 0) {
		/* nothing else to try */
	}
	abort();
}

const char *urt_strerror(int err)
{
	switch (err) {
	case 0: return "success";
	case -EPERM: return "not allowed here (waiting outside a fiber?)";
	case -ESRCH: return "no such task (handle already joined or detached)";
	case -ECANCELED: return "task was cancelled";
	case -ETIMEDOUT: return "timed out";
	case -EPIPE: return "channel closed";
	case -EDEADLK: return "would deadlock (runtime call from inside a task)";
	case -ESHUTDOWN: return "runtime is shutting down";
	}
	return err < 0 ? strerror(-err) : "not an error code";
}
