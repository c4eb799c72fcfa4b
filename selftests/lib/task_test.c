// SPDX-License-Identifier: MIT
/* Tasks: spawn, join, yield, cancel, detach, handles, poll tasks. */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>

#include "kselftest_harness.h"
#include "util.h"

static void *ret_arg(void *arg)
{
	return arg;
}

TEST(a_fiber_returns_its_value_to_join)
{
	ASSERT_EQ(42, run_fiber(1, ret_arg, (void *)42));
	ASSERT_EQ(7, run_fiber(2, ret_arg, (void *)7));
}

static void *spawn_children(void *arg)
{
	return (void *)spawn_join_sum(ret_arg, (intptr_t)arg);
}

TEST(children_spawned_from_a_fiber_are_all_joined)
{
	ASSERT_EQ(999 * 1000 / 2, run_fiber(1, spawn_children, (void *)1000));
	ASSERT_EQ(999 * 1000 / 2, run_fiber(2, spawn_children, (void *)1000));
	ASSERT_EQ(999 * 1000 / 2, run_fiber(4, spawn_children, (void *)1000));
}

static void *yielder(void *arg)
{
	atomic_int *counter = arg;

	for (int i = 0; i < 1000; i++) {
		atomic_fetch_add(counter, 1);
		if (urt_yield())
			return (void *)-1;
	}
	return NULL;
}

TEST(yielding_fibers_interleave_on_one_worker)
{
	urt_rt *rt = test_rt(1);
	atomic_int counter = 0;
	urt_task_t t[8];

	for (int i = 0; i < 8; i++)
		t[i] = urt_spawn(rt, yielder, &counter);
	for (int i = 0; i < 8; i++)
		ASSERT_EQ(0, urt_join(t[i], NULL));
	ASSERT_EQ(8000, atomic_load(&counter));
	ASSERT_EQ(0, urt_destroy(rt));
}

TEST(a_handle_joins_once_then_reports_esrch)
{
	urt_rt *rt = test_rt(2);
	urt_task_t t = urt_spawn(rt, ret_arg, (void *)1);

	ASSERT_NE(0, t.id);
	ASSERT_EQ(0, urt_join(t, NULL));
	ASSERT_EQ(-ESRCH, urt_join(t, NULL));
	ASSERT_EQ(-ESRCH, urt_detach(t));
	ASSERT_EQ(-ESRCH, urt_cancel(t));
	ASSERT_EQ(-EINVAL, urt_join(URT_TASK_NONE, NULL));
	ASSERT_EQ(0, urt_destroy(rt));
}

static void *sleeper(void *arg)
{
	return (void *)(intptr_t)urt_sleep((int64_t)(intptr_t)arg);
}

TEST(cancel_interrupts_a_sleeping_fiber)
{
	urt_rt *rt = test_rt(2);
	urt_task_t t = urt_spawn(rt, sleeper, (void *)(intptr_t)MS(60000));
	void *res;

	usleep(20000);
	ASSERT_EQ(0, urt_cancel(t));
	ASSERT_EQ(-ECANCELED, urt_join(t, &res));
	ASSERT_EQ(-ECANCELED, (intptr_t)res);
	ASSERT_EQ(0, urt_destroy(rt));
}

static atomic_int cleanups;
static void count_cleanup(void *arg)
{
	(void)arg;
	atomic_fetch_add(&cleanups, 1);
}

TEST(cleanup_runs_for_finished_and_cancelled_tasks)
{
	urt_rt *rt = test_rt(1);
	struct urt_spawn_opts o = { .name = "c", .cleanup = count_cleanup };
	urt_task_t a, b;

	atomic_store(&cleanups, 0);
	a = urt_spawn_opts(rt, ret_arg, NULL, &o);
	b = urt_spawn_opts(rt, sleeper, (void *)(intptr_t)MS(60000), &o);
	ASSERT_EQ(0, urt_join(a, NULL));
	usleep(10000);
	ASSERT_EQ(0, urt_cancel(b));
	ASSERT_EQ(-ECANCELED, urt_join(b, NULL));
	ASSERT_EQ(2, atomic_load(&cleanups));
	ASSERT_EQ(0, urt_destroy(rt));
}

TEST(join_timeout_keeps_the_handle)
{
	urt_rt *rt = test_rt(1);
	urt_task_t t = urt_spawn(rt, sleeper, (void *)(intptr_t)MS(200));

	ASSERT_EQ(-ETIMEDOUT, urt_join_timeout(t, NULL, MS(10)));
	ASSERT_EQ(0, urt_join(t, NULL));
	ASSERT_EQ(0, urt_destroy(rt));
}

static void *timed(void *arg)
{
	int64_t t0 = urt_now();

	if (urt_sleep(MS(30)))
		return (void *)-1;
	return (void *)(intptr_t)((urt_now() - t0) / 1000000);
}

TEST(sleep_waits_at_least_its_duration)
{
	intptr_t ms = run_fiber(2, timed, NULL);

	ASSERT_GE(ms, 30);
	ASSERT_LT(ms, 5000);
}

static void *order_sleeper(void *arg)
{
	static atomic_int seq;
	intptr_t i = (intptr_t)arg;

	urt_sleep(MS(5) * i);
	return (void *)(intptr_t)atomic_fetch_add(&seq, 1);
}

TEST(timers_fire_in_deadline_order)
{
	urt_rt *rt = test_rt(1);
	urt_task_t t[20];
	void *r;
	intptr_t prev = -1;

	for (int i = 0; i < 20; i++)
		t[i] = urt_spawn(rt, order_sleeper, (void *)(intptr_t)(20 - i));
	/* t[19] sleeps least: it must have come first. */
	for (int i = 19; i >= 0; i--) {
		ASSERT_EQ(0, urt_join(t[i], &r));
		ASSERT_GT((intptr_t)r, prev);
		prev = (intptr_t)r;
	}
	ASSERT_EQ(0, urt_destroy(rt));
}

static void *waits_outside(void *arg)
{
	return NULL;
}

TEST(waiting_outside_a_task_is_an_error)
{
	ASSERT_EQ(-EPERM, urt_sleep(1000));
	ASSERT_EQ(-EPERM, urt_yield());
	ASSERT_EQ(0, urt_self_id());
	ASSERT_EQ(-1, urt_self_slot());
	ASSERT_EQ(NULL, urt_current());
	errno = 0;
	ASSERT_EQ(0, urt_spawn(NULL, waits_outside, NULL).id);
	ASSERT_EQ(EPERM, errno);
}

static void *make_runtime(void *arg)
{
	urt_rt *rt2 = NULL;

	return (void *)(intptr_t)urt_create(&rt2, NULL);
}

TEST(creating_a_runtime_inside_a_task_is_refused)
{
	ASSERT_EQ(-EDEADLK, run_fiber(1, make_runtime, NULL));
}

TEST(independent_runtimes_run_side_by_side)
{
	urt_rt *a = test_rt(1), *b = test_rt(2);
	void *r;

	urt_task_t ta = urt_spawn(a, spawn_children, (void *)100);
	urt_task_t tb = urt_spawn(b, spawn_children, (void *)100);
	ASSERT_EQ(0, urt_join(ta, &r));
	ASSERT_EQ(4950, (intptr_t)r);
	ASSERT_EQ(0, urt_join(tb, &r));
	ASSERT_EQ(4950, (intptr_t)r);
	ASSERT_EQ(0, urt_destroy(a));
	ASSERT_EQ(0, urt_destroy(b));
}

struct counter_state {
	int n;
	urt_waker *w;
};

static enum urt_poll count_to_ten(void *state, urt_cx *cx, void **result)
{
	struct counter_state *s = state;

	if (++s->n == 10) {
		*result = (void *)(intptr_t)s->n;
		return URT_READY;
	}
	urt_cx_yield(cx);
	return URT_PENDING;
}

TEST(a_poll_task_is_polled_until_ready)
{
	urt_rt *rt = test_rt(2);
	struct counter_state s = { 0 };
	urt_task_t t = urt_spawn_poll(rt, count_to_ten, &s, NULL);
	void *r;

	ASSERT_NE(0, t.id);
	ASSERT_EQ(0, urt_join(t, &r));
	ASSERT_EQ(10, (intptr_t)r);
	ASSERT_EQ(0, urt_destroy(rt));
}

/* The seed's make_some_progress: a state machine with a timer step. */
enum step { STEP1, WAITING, STEP2 };
struct machine {
	enum step st;
	int64_t deadline;
};

static enum urt_poll make_some_progress(void *state, urt_cx *cx, void **result)
{
	struct machine *m = state;

	switch (m->st) {
	case STEP1:
		m->deadline = urt_now() + MS(20);
		m->st = WAITING;
		urt_cx_wake_at(cx, m->deadline);
		return URT_PENDING;
	case WAITING:
		if (urt_now() < m->deadline)
			return URT_PENDING;	/* spurious poll */
		m->st = STEP2;
		/* fall through */
	case STEP2:
		*result = (void *)1;
		return URT_READY;
	}
	return URT_PENDING;
}

TEST(a_poll_task_wakes_from_a_timer)
{
	urt_rt *rt = test_rt(1);
	struct machine m = { STEP1, 0 };
	int64_t t0 = urt_now();
	urt_task_t t = urt_spawn_poll(rt, make_some_progress, &m, NULL);

	ASSERT_EQ(0, urt_join(t, NULL));
	ASSERT_GE(urt_now() - t0, MS(20));
	ASSERT_EQ(STEP2, m.st);
	ASSERT_EQ(0, urt_destroy(rt));
}

static enum urt_poll wait_for_wake(void *state, urt_cx *cx, void **result)
{
	struct counter_state *s = state;

	if (urt_cx_cancelled(cx)) {
		*result = (void *)-1;
		return URT_READY;
	}
	if (s->n++ == 0) {
		__atomic_store_n(&s->w, urt_cx_waker(cx), __ATOMIC_RELEASE);
		return URT_PENDING;
	}
	*result = (void *)2;
	return URT_READY;
}

TEST(a_waker_from_another_thread_wakes_a_poll_task)
{
	urt_rt *rt = test_rt(2);
	struct counter_state s = { 0 };
	urt_task_t t = urt_spawn_poll(rt, wait_for_wake, &s, NULL);
	void *r;

	while (!__atomic_load_n(&s.w, __ATOMIC_ACQUIRE))
		usleep(1000);
	urt_wake(s.w);
	ASSERT_EQ(0, urt_join(t, &r));
	ASSERT_EQ(2, (intptr_t)r);
	ASSERT_EQ(0, urt_destroy(rt));
}

static void *join_poll_target(void *arg)
{
	urt_sleep(MS(5));
	return (void *)77;
}

struct joiner {
	urt_task_t target;
};

static enum urt_poll poll_join(void *state, urt_cx *cx, void **result)
{
	struct joiner *j = state;
	int err = 0;

	if (urt_join_poll(j->target, cx, result, &err) == URT_PENDING)
		return URT_PENDING;
	if (err)
		*result = (void *)(intptr_t)err;
	return URT_READY;
}

TEST(a_poll_task_joins_a_fiber)
{
	urt_rt *rt = test_rt(2);
	struct joiner j = { urt_spawn(rt, join_poll_target, NULL) };
	urt_task_t t = urt_spawn_poll(rt, poll_join, &j, NULL);
	void *r;

	ASSERT_EQ(0, urt_join(t, &r));
	ASSERT_EQ(77, (intptr_t)r);
	ASSERT_EQ(0, urt_destroy(rt));
}

static atomic_int detached_done;
static void *detached_fn(void *arg)
{
	urt_sleep(MS(1));
	atomic_fetch_add(&detached_done, 1);
	return NULL;
}

TEST(detached_tasks_run_to_completion)
{
	urt_rt *rt = test_rt(2);
	struct urt_spawn_opts o = { .detached = true };

	atomic_store(&detached_done, 0);
	for (int i = 0; i < 100; i++)
		ASSERT_NE(0, urt_spawn_opts(rt, detached_fn, NULL, &o).id);
	urt_task_t t = urt_spawn(rt, ret_arg, NULL);
	ASSERT_EQ(0, urt_detach(t));
	while (atomic_load(&detached_done) < 100)
		usleep(1000);
	ASSERT_EQ(0, urt_destroy(rt));
}

TEST(destroy_cancels_tasks_that_are_still_waiting)
{
	urt_rt *rt = test_rt(2);

	for (int i = 0; i < 50; i++)
		ASSERT_NE(0, urt_spawn_opts(rt, sleeper, (void *)(intptr_t)MS(600000),
					    &(struct urt_spawn_opts){ .detached = true }).id);
	usleep(10000);
	ASSERT_EQ(0, urt_destroy(rt));
}

static void *names(void *arg)
{
	return (void *)(intptr_t)(strcmp(urt_self_name(), "worker-x") == 0 && urt_self_id() != 0 &&
				  urt_self_slot() >= 0 && urt_current() != NULL);
}

TEST(a_task_knows_its_name_id_and_slot)
{
	urt_rt *rt = test_rt(2);
	urt_task_t t = urt_spawn_opts(rt, names, NULL, &(struct urt_spawn_opts){ .name = "worker-x" });
	void *r;

	ASSERT_EQ(0, urt_join(t, &r));
	ASSERT_EQ(1, (intptr_t)r);
	ASSERT_EQ(0, urt_destroy(rt));
}

static void *foreign_spawner(void *arg)
{
	urt_rt *rt = arg;
	intptr_t sum = 0;

	for (intptr_t i = 0; i < 200; i++) {
		urt_task_t t = urt_spawn(rt, ret_arg, (void *)i);
		void *r;

		if (!t.id || urt_join(t, &r))
			return (void *)-1;
		sum += (intptr_t)r;
	}
	return (void *)sum;
}

TEST(threads_outside_the_runtime_spawn_and_join)
{
	urt_rt *rt = test_rt(2);
	pthread_t th[4];
	void *r;

	for (int i = 0; i < 4; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, foreign_spawner, rt));
	for (int i = 0; i < 4; i++) {
		ASSERT_EQ(0, pthread_join(th[i], &r));
		ASSERT_EQ(199 * 200 / 2, (intptr_t)r);
	}
	ASSERT_EQ(0, urt_destroy(rt));
}

static void *blocking_job(void *arg)
{
	usleep(20000);
	return arg;
}

static void *uses_blocking_pool(void *arg)
{
	urt_task_t t[8];
	intptr_t sum = 0;

	for (intptr_t i = 0; i < 8; i++)
		t[i] = urt_spawn_blocking(NULL, blocking_job, (void *)i);
	for (int i = 0; i < 8; i++) {
		void *r;

		if (urt_join(t[i], &r))
			return (void *)-1;
		sum += (intptr_t)r;
	}
	return (void *)sum;
}

TEST(blocking_jobs_run_on_the_pool_and_join)
{
	ASSERT_EQ(28, run_fiber(1, uses_blocking_pool, NULL));
}

static void *recurse(void *arg)
{
	volatile char buf[1024];
	intptr_t depth = (intptr_t)arg;

	buf[0] = (char)depth;
	if (depth > 0)
		recurse((void *)(depth - 1));
	return (void *)(intptr_t)buf[0];
}

TEST(stack_overflow_is_reported_with_the_task_name)
{
	int fds[2], status;
	pid_t pid;
	char out[512] = { 0 };

	ASSERT_EQ(0, pipe(fds));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct rlimit rl = { 0, 0 };

		setrlimit(RLIMIT_CORE, &rl);
		dup2(fds[1], 2);
		urt_rt *rt = test_rt(1);
		urt_task_t t = urt_spawn_opts(rt, recurse, (void *)100000,
					      &(struct urt_spawn_opts){ .name = "deep" });
		urt_join(t, NULL);
		_exit(0);
	}
	close(fds[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_GE(read(fds[0], out, sizeof(out) - 1), 0);
	close(fds[0]);
	/* sanitizers report and exit(1) instead of dying by the signal */
	ASSERT_TRUE(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status)));
#if defined(__SANITIZE_ADDRESS__)
	ASSERT_NE(NULL, strstr(out, "stack-overflow"));
#elif !defined(__SANITIZE_THREAD__)
	ASSERT_NE(NULL, strstr(out, "stack overflow in task"));
	ASSERT_NE(NULL, strstr(out, "'deep'"));
#endif
}

TEST_HARNESS_MAIN
