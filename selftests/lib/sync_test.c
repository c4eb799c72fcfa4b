// SPDX-License-Identifier: MIT
/*
 * sync_test.c - mutex, condition variable, semaphore, wait group, oneshot:
 * exclusion, ownership, hand-off without lost wake-ups, timeouts, cancel,
 * foreign threads, and -EPERM from poll tasks.
 *
 * Fibers record what they saw in shared state; the test function checks.
 * Timing is only ever checked as a lower bound.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "kselftest_harness.h"
#include "util.h"

static void *join_ok(urt_task_t t)
{
	void *res = (void *)(intptr_t)-1;

	if (urt_join(t, &res))
		return (void *)(intptr_t)-2;
	return res;
}

static void wait_flag(atomic_int *f, int n)
{
	while (atomic_load(f) < n)
		usleep(1000);
}

static void wait_flag_zero(atomic_int *f)
{
	while (atomic_load(f) > 0)
		usleep(1000);
}

TEST(functions_reject_null_arguments)
{
	void *v;

	EXPECT_EQ(-EINVAL, urt_mutex_lock(NULL));
	EXPECT_EQ(-EINVAL, urt_mutex_trylock(NULL));
	EXPECT_EQ(-EINVAL, urt_mutex_unlock(NULL));
	EXPECT_EQ(-EINVAL, urt_mutex_destroy(NULL));
	EXPECT_EQ(-EINVAL, urt_cond_wait(NULL, NULL));
	EXPECT_EQ(-EINVAL, urt_cond_signal(NULL));
	EXPECT_EQ(-EINVAL, urt_cond_broadcast(NULL));
	EXPECT_EQ(-EINVAL, urt_sem_acquire(NULL));
	EXPECT_EQ(-EINVAL, urt_sem_release(NULL));
	EXPECT_EQ(-EINVAL, urt_sem_try_acquire(NULL));
	EXPECT_EQ(-EINVAL, urt_wg_add(NULL, 1));
	EXPECT_EQ(-EINVAL, urt_wg_wait(NULL));
	EXPECT_EQ(-EINVAL, urt_oneshot_send(NULL, NULL));
	EXPECT_EQ(-EINVAL, urt_oneshot_recv(NULL, &v));
}

/* ------------------------------------------------------------ mutex */

#define MX_FIBERS	8
#define MX_ITERS	5000

struct counter {
	urt_mutex *m;
	long value;		/* plain: only the mutex protects it */
	atomic_int inside;
	atomic_int errors;
};

static void count_up(struct counter *c)
{
	for (int i = 0; i < MX_ITERS; i++) {
		if (urt_mutex_lock(c->m)) {
			atomic_fetch_add(&c->errors, 1);
			continue;
		}
		if (atomic_fetch_add(&c->inside, 1) != 0)
			atomic_fetch_add(&c->errors, 1);
		c->value++;
		if (i % 64 == 0 && urt_self_id())
			urt_yield();	/* hold it across a switch: real contention */
		atomic_fetch_sub(&c->inside, 1);
		if (urt_mutex_unlock(c->m))
			atomic_fetch_add(&c->errors, 1);
	}
}

static void *count_fiber(void *arg)
{
	count_up(arg);
	return NULL;
}

static void mutex_counter(struct __test_metadata *_metadata, unsigned int workers)
{
	urt_rt *rt = test_rt(workers);
	struct counter c = { urt_mutex_create(), 0, 0, 0 };
	urt_task_t t[MX_FIBERS];
	pthread_t th;
	int i;

	ASSERT_NE(NULL, c.m);
	for (i = 0; i < MX_FIBERS; i++)
		t[i] = urt_spawn(rt, count_fiber, &c);
	/* a foreign thread competes too */
	ASSERT_EQ(0, pthread_create(&th, NULL, count_fiber, &c));
	for (i = 0; i < MX_FIBERS; i++)
		ASSERT_EQ(NULL, join_ok(t[i]));
	ASSERT_EQ(0, pthread_join(th, NULL));
	ASSERT_EQ(0, atomic_load(&c.errors));
	ASSERT_EQ((long)(MX_FIBERS + 1) * MX_ITERS, c.value);
	ASSERT_EQ(0, urt_mutex_destroy(c.m));
	ASSERT_EQ(0, urt_destroy(rt));
}

TEST(mutex_keeps_a_shared_counter_exact_on_one_worker)
{
	mutex_counter(_metadata, 1);
}

TEST(mutex_keeps_a_shared_counter_exact_on_two_workers)
{
	mutex_counter(_metadata, 2);
}

struct owner {
	urt_mutex *m;
	atomic_int step;
	int r[6];
};

static void *hold_mutex(void *arg)
{
	struct owner *o = arg;

	o->r[0] = urt_mutex_lock(o->m);
	o->r[1] = urt_mutex_lock_timeout(o->m, MS(10));	/* own lock: no deadlock */
	atomic_store(&o->step, 1);
	while (atomic_load(&o->step) < 2)
		urt_sleep(MS(1));
	o->r[2] = urt_mutex_unlock(o->m);
	return NULL;
}

static void *poke_mutex(void *arg)
{
	struct owner *o = arg;
	int64_t t0 = urt_now();

	o->r[3] = urt_mutex_trylock(o->m);
	o->r[4] = urt_mutex_unlock(o->m);
	o->r[5] = urt_mutex_lock_timeout(o->m, MS(20));
	if (urt_now() - t0 < MS(20))
		o->r[5] = 1000;
	return NULL;
}

TEST(mutex_trylock_timeout_and_unlock_by_a_non_owner_fail_cleanly)
{
	urt_rt *rt = test_rt(2);
	struct owner o = { urt_mutex_create(), 0, { 1, 1, 1, 1, 1, 1 } };
	urt_task_t h;

	ASSERT_NE(NULL, o.m);
	h = urt_spawn(rt, hold_mutex, &o);
	wait_flag(&o.step, 1);
	ASSERT_EQ(NULL, join_ok(urt_spawn(rt, poke_mutex, &o)));
	EXPECT_EQ(-EBUSY, o.r[3]);
	EXPECT_EQ(-EPERM, o.r[4]);
	EXPECT_EQ(-ETIMEDOUT, o.r[5]);
	/* the main thread is no owner either */
	EXPECT_EQ(-EPERM, urt_mutex_unlock(o.m));
	EXPECT_EQ(-EBUSY, urt_mutex_trylock(o.m));
	EXPECT_EQ(-EBUSY, urt_mutex_destroy(o.m));
	atomic_store(&o.step, 2);
	ASSERT_EQ(NULL, join_ok(h));
	EXPECT_EQ(0, o.r[0]);
	EXPECT_EQ(-EDEADLK, o.r[1]);
	EXPECT_EQ(0, o.r[2]);
	/* free again: usable by a plain thread */
	ASSERT_EQ(0, urt_mutex_trylock(o.m));
	ASSERT_EQ(0, urt_mutex_unlock(o.m));
	ASSERT_EQ(-EPERM, urt_mutex_unlock(o.m));
	ASSERT_EQ(0, urt_mutex_destroy(o.m));
	ASSERT_EQ(0, urt_destroy(rt));
}

/* A timed-out waiter must not strand the mutex nor the waiters behind it. */
struct mx_timeout {
	urt_mutex *m;
	atomic_int got, timedout, ready;
};

static void *lock_briefly(void *arg)
{
	struct mx_timeout *x = arg;
	int r;

	atomic_fetch_add(&x->ready, 1);
	r = urt_mutex_lock_timeout(x->m, MS(10));
	if (r == -ETIMEDOUT) {
		atomic_fetch_add(&x->timedout, 1);
		r = urt_mutex_lock(x->m);
	}
	if (!r) {
		atomic_fetch_add(&x->got, 1);
		urt_mutex_unlock(x->m);
	}
	return NULL;
}

TEST(mutex_waiters_that_time_out_leave_the_queue_consistent)
{
	urt_rt *rt = test_rt(2);
	struct mx_timeout x = { urt_mutex_create(), 0, 0, 0 };
	urt_task_t t[6];
	int i;

	ASSERT_EQ(0, urt_mutex_lock(x.m));	/* held by the main thread */
	for (i = 0; i < 6; i++)
		t[i] = urt_spawn(rt, lock_briefly, &x);
	wait_flag(&x.ready, 6);
	usleep(50000);
	ASSERT_EQ(0, urt_mutex_unlock(x.m));
	for (i = 0; i < 6; i++)
		ASSERT_EQ(NULL, join_ok(t[i]));
	ASSERT_EQ(6, atomic_load(&x.got));
	ASSERT_EQ(6, atomic_load(&x.timedout));
	ASSERT_EQ(0, urt_mutex_destroy(x.m));
	ASSERT_EQ(0, urt_destroy(rt));
}

/* ------------------------------------------------------------ cond */

#define PC_ITEMS	20000
#define PC_CONSUMERS	4

struct queue {
	urt_mutex *m;
	urt_cond *nonempty;
	int items[64];
	int head, len;
	bool done;
	long sum;
	int taken;
	urt_cond *nonfull;
};

static void *cond_consumer(void *arg)
{
	struct queue *q = arg;

	urt_mutex_lock(q->m);
	for (;;) {
		while (!q->len && !q->done)
			urt_cond_wait(q->nonempty, q->m);
		if (!q->len)
			break;
		q->sum += q->items[q->head];
		q->head = (q->head + 1) % 64;
		q->len--;
		q->taken++;
		urt_cond_signal(q->nonfull);
	}
	urt_mutex_unlock(q->m);
	return NULL;
}

static void *cond_producer(void *arg)
{
	struct queue *q = arg;

	for (int i = 0; i < PC_ITEMS; i++) {
		urt_mutex_lock(q->m);
		while (q->len == 64)
			urt_cond_wait(q->nonfull, q->m);
		q->items[(q->head + q->len) % 64] = i;
		q->len++;
		urt_cond_signal(q->nonempty);
		urt_mutex_unlock(q->m);
	}
	urt_mutex_lock(q->m);
	q->done = true;
	urt_cond_broadcast(q->nonempty);	/* every consumer must see done */
	urt_mutex_unlock(q->m);
	return NULL;
}

static void producer_consumer(struct __test_metadata *_metadata, unsigned int workers)
{
	urt_rt *rt = test_rt(workers);
	struct queue *q = calloc(1, sizeof(*q));
	urt_task_t t[PC_CONSUMERS + 1];
	int i;

	ASSERT_NE(NULL, q);
	q->m = urt_mutex_create();
	q->nonempty = urt_cond_create();
	q->nonfull = urt_cond_create();
	for (i = 0; i < PC_CONSUMERS; i++)
		t[i] = urt_spawn(rt, cond_consumer, q);
	t[PC_CONSUMERS] = urt_spawn(rt, cond_producer, q);
	for (i = 0; i <= PC_CONSUMERS; i++)
		ASSERT_EQ(NULL, join_ok(t[i]));
	ASSERT_EQ(PC_ITEMS, q->taken);
	ASSERT_EQ((long)PC_ITEMS * (PC_ITEMS - 1) / 2, q->sum);
	ASSERT_EQ(0, urt_cond_destroy(q->nonempty));
	ASSERT_EQ(0, urt_cond_destroy(q->nonfull));
	ASSERT_EQ(0, urt_mutex_destroy(q->m));
	free(q);
	ASSERT_EQ(0, urt_destroy(rt));
}

TEST(cond_var_producer_consumer_with_broadcast_on_one_worker)
{
	producer_consumer(_metadata, 1);
}

TEST(cond_var_producer_consumer_with_broadcast_on_two_workers)
{
	producer_consumer(_metadata, 2);
}

struct gate {
	urt_mutex *m;
	urt_cond *c;
	bool open;
	atomic_int waiting, passed;
};

static void *gate_waiter(void *arg)
{
	struct gate *g = arg;

	urt_mutex_lock(g->m);
	atomic_fetch_add(&g->waiting, 1);
	while (!g->open)
		urt_cond_wait(g->c, g->m);
	urt_mutex_unlock(g->m);
	atomic_fetch_add(&g->passed, 1);
	return NULL;
}

TEST(cond_broadcast_wakes_fibers_and_threads_alike)
{
	urt_rt *rt = test_rt(2);
	struct gate g = { urt_mutex_create(), urt_cond_create(), false, 0, 0 };
	urt_task_t t[8];
	pthread_t th[2];
	int i;

	for (i = 0; i < 8; i++)
		t[i] = urt_spawn(rt, gate_waiter, &g);
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, gate_waiter, &g));
	wait_flag(&g.waiting, 10);
	usleep(20000);
	ASSERT_EQ(0, atomic_load(&g.passed));
	ASSERT_EQ(-EBUSY, urt_cond_destroy(g.c));
	ASSERT_EQ(0, urt_mutex_lock(g.m));
	g.open = true;
	ASSERT_EQ(0, urt_cond_broadcast(g.c));
	ASSERT_EQ(0, urt_mutex_unlock(g.m));
	for (i = 0; i < 8; i++)
		ASSERT_EQ(NULL, join_ok(t[i]));
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_join(th[i], NULL));
	ASSERT_EQ(10, atomic_load(&g.passed));
	ASSERT_EQ(0, urt_cond_destroy(g.c));
	ASSERT_EQ(0, urt_mutex_destroy(g.m));
	ASSERT_EQ(0, urt_destroy(rt));
}

struct cond_to {
	urt_mutex *m;
	urt_cond *c;
	int r, unlock_r, eperm;
	int64_t elapsed;
};

static void *cond_timeout_fiber(void *arg)
{
	struct cond_to *x = arg;
	int64_t t0;

	x->eperm = urt_cond_wait(x->c, x->m);	/* mutex not held */
	urt_mutex_lock(x->m);
	t0 = urt_now();
	x->r = urt_cond_wait_timeout(x->c, x->m, MS(30));
	x->elapsed = urt_now() - t0;
	x->unlock_r = urt_mutex_unlock(x->m);	/* we hold it again */
	return NULL;
}

TEST(cond_wait_timeout_returns_etimedout_with_the_mutex_held_again)
{
	urt_rt *rt = test_rt(1);
	struct cond_to x = { urt_mutex_create(), urt_cond_create(), 1, 1, 1, 0 };

	ASSERT_EQ(NULL, join_ok(urt_spawn(rt, cond_timeout_fiber, &x)));
	EXPECT_EQ(-EPERM, x.eperm);
	EXPECT_EQ(-ETIMEDOUT, x.r);
	EXPECT_GE(x.elapsed, MS(30));
	EXPECT_EQ(0, x.unlock_r);
	ASSERT_EQ(0, urt_cond_destroy(x.c));
	ASSERT_EQ(0, urt_mutex_destroy(x.m));
	ASSERT_EQ(0, urt_destroy(rt));
}

/* A fiber cancelled in cond_wait still returns with the mutex held. */
struct cond_cancel {
	urt_mutex *m;
	urt_cond *c;
	atomic_int waiting;
	int r, unlock_r;
};

static void *cond_cancel_fiber(void *arg)
{
	struct cond_cancel *x = arg;

	urt_mutex_lock(x->m);
	atomic_store(&x->waiting, 1);
	x->r = urt_cond_wait(x->c, x->m);
	x->unlock_r = urt_mutex_unlock(x->m);
	return NULL;
}

TEST(cancelled_cond_wait_returns_ecanceled_after_relocking)
{
	urt_rt *rt = test_rt(2);
	struct cond_cancel x = { urt_mutex_create(), urt_cond_create(), 0, 1, 1 };
	urt_task_t t;

	t = urt_spawn(rt, cond_cancel_fiber, &x);
	wait_flag(&x.waiting, 1);
	/* hold the mutex while cancelling: the fiber must wait for it */
	ASSERT_EQ(0, urt_mutex_lock(x.m));
	ASSERT_EQ(0, urt_cancel(t));
	usleep(20000);
	ASSERT_EQ(0, urt_mutex_unlock(x.m));
	urt_join(t, NULL);
	EXPECT_EQ(-ECANCELED, x.r);
	EXPECT_EQ(0, x.unlock_r);
	ASSERT_EQ(0, urt_cond_destroy(x.c));
	ASSERT_EQ(0, urt_mutex_destroy(x.m));
	ASSERT_EQ(0, urt_destroy(rt));
}

/* ------------------------------------------------------------ semaphore */

struct bounded {
	urt_sem *s;
	atomic_int active, max, done, errors;
};

static void *sem_worker(void *arg)
{
	struct bounded *b = arg;
	int a, m;

	for (int i = 0; i < 50; i++) {
		if (urt_sem_acquire(b->s)) {
			atomic_fetch_add(&b->errors, 1);
			continue;
		}
		a = atomic_fetch_add(&b->active, 1) + 1;
		m = atomic_load(&b->max);
		while (a > m && !atomic_compare_exchange_weak(&b->max, &m, a))
			;
		urt_yield();
		atomic_fetch_sub(&b->active, 1);
		urt_sem_release(b->s);
	}
	atomic_fetch_add(&b->done, 1);
	return NULL;
}

TEST(semaphore_bounds_concurrency)
{
	urt_rt *rt = test_rt(2);
	struct bounded b = { urt_sem_create(3), 0, 0, 0, 0 };
	urt_task_t t[16];
	int i;

	for (i = 0; i < 16; i++)
		t[i] = urt_spawn(rt, sem_worker, &b);
	for (i = 0; i < 16; i++)
		ASSERT_EQ(NULL, join_ok(t[i]));
	ASSERT_EQ(0, atomic_load(&b.errors));
	ASSERT_EQ(16, atomic_load(&b.done));
	ASSERT_LE(atomic_load(&b.max), 3);
	ASSERT_GE(atomic_load(&b.max), 1);
	/* all three permits are back */
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, urt_sem_try_acquire(b.s));
	ASSERT_EQ(-EAGAIN, urt_sem_try_acquire(b.s));
	ASSERT_EQ(-ETIMEDOUT, urt_sem_acquire_timeout(b.s, 0));
	ASSERT_EQ(-ETIMEDOUT, urt_sem_acquire_timeout(b.s, MS(20)));	/* thread */
	ASSERT_EQ(0, urt_sem_destroy(b.s));
	ASSERT_EQ(0, urt_destroy(rt));
}

struct sem_cancel {
	urt_sem *s;
	atomic_int started;
	int r;
};

static void *sem_blocked(void *arg)
{
	struct sem_cancel *x = arg;

	atomic_store(&x->started, 1);
	x->r = urt_sem_acquire(x->s);
	return NULL;
}

TEST(cancelled_semaphore_waiter_does_not_swallow_a_permit)
{
	urt_rt *rt = test_rt(2);
	struct sem_cancel x = { urt_sem_create(0), 0, 1 };
	urt_task_t t;

	t = urt_spawn(rt, sem_blocked, &x);
	wait_flag(&x.started, 1);
	usleep(20000);
	ASSERT_EQ(-EBUSY, urt_sem_destroy(x.s));
	ASSERT_EQ(0, urt_cancel(t));
	urt_join(t, NULL);
	ASSERT_EQ(-ECANCELED, x.r);
	ASSERT_EQ(0, urt_sem_release(x.s));
	ASSERT_EQ(0, urt_sem_try_acquire(x.s));
	ASSERT_EQ(0, urt_sem_destroy(x.s));
	ASSERT_EQ(0, urt_destroy(rt));
}

/* ------------------------------------------------------------ wait group */

struct wg_job {
	urt_wg *wg;
	atomic_int finished;
};

static void *wg_member(void *arg)
{
	struct wg_job *j = arg;

	urt_sleep(MS(5));
	atomic_fetch_add(&j->finished, 1);
	urt_wg_done(j->wg);
	return NULL;
}

struct wg_wait_res {
	struct wg_job *j;
	int r, finished;
};

static void *wg_waiter(void *arg)
{
	struct wg_wait_res *w = arg;

	w->r = urt_wg_wait(w->j->wg);
	w->finished = atomic_load(&w->j->finished);
	return NULL;
}

TEST(wait_group_releases_waiters_when_the_count_reaches_zero)
{
	urt_rt *rt = test_rt(2);
	struct wg_job j = { urt_wg_create(), 0 };
	struct wg_wait_res w = { &j, 1, 0 };
	urt_task_t t[10], wt;
	int i;

	ASSERT_NE(NULL, j.wg);
	ASSERT_EQ(0, urt_wg_wait(j.wg));		/* zero: no wait */
	ASSERT_EQ(-EINVAL, urt_wg_add(j.wg, -1));
	ASSERT_EQ(0, urt_wg_add(j.wg, 10));
	ASSERT_EQ(-ETIMEDOUT, urt_wg_wait_timeout(j.wg, 0));
	wt = urt_spawn(rt, wg_waiter, &w);
	for (i = 0; i < 10; i++)
		t[i] = urt_spawn(rt, wg_member, &j);
	ASSERT_EQ(0, urt_wg_wait(j.wg));		/* the main thread waits too */
	ASSERT_EQ(10, atomic_load(&j.finished));
	ASSERT_EQ(NULL, join_ok(wt));
	ASSERT_EQ(0, w.r);
	ASSERT_EQ(10, w.finished);
	for (i = 0; i < 10; i++)
		ASSERT_EQ(NULL, join_ok(t[i]));
	ASSERT_EQ(0, urt_wg_add(j.wg, 1));
	ASSERT_EQ(-ETIMEDOUT, urt_wg_wait_timeout(j.wg, MS(20)));
	ASSERT_EQ(0, urt_wg_done(j.wg));
	ASSERT_EQ(-EINVAL, urt_wg_done(j.wg));
	ASSERT_EQ(0, urt_wg_destroy(j.wg));
	ASSERT_EQ(0, urt_destroy(rt));
}

/* ------------------------------------------------------------ oneshot */

struct os {
	urt_oneshot *o;
	void *v;
	int r, r2;
	int64_t elapsed;
};

static void *os_receiver(void *arg)
{
	struct os *x = arg;

	x->r = urt_oneshot_recv(x->o, &x->v);
	return NULL;
}

static void *os_timed(void *arg)
{
	struct os *x = arg;
	int64_t t0 = urt_now();

	x->r = urt_oneshot_recv_timeout(x->o, &x->v, MS(30));
	x->elapsed = urt_now() - t0;
	return NULL;
}

static void *os_sender(void *arg)
{
	struct os *x = arg;

	urt_sleep(MS(5));
	x->r = urt_oneshot_send(x->o, (void *)0x1234);
	x->r2 = urt_oneshot_send(x->o, (void *)0x5678);
	return NULL;
}

TEST(oneshot_delivers_one_value_and_refuses_a_second_send)
{
	urt_rt *rt = test_rt(2);
	urt_oneshot *o = urt_oneshot_create();
	struct os rx = { o, NULL, 1, 1, 0 }, tx = { o, NULL, 1, 1, 0 }, to = { o, NULL, 1, 1, 0 };
	urt_task_t r, s;
	void *v = NULL;

	ASSERT_NE(NULL, o);
	ASSERT_EQ(NULL, join_ok(urt_spawn(rt, os_timed, &to)));
	EXPECT_EQ(-ETIMEDOUT, to.r);
	EXPECT_GE(to.elapsed, MS(30));
	ASSERT_EQ(-ETIMEDOUT, urt_oneshot_recv_timeout(o, &v, 0));
	r = urt_spawn(rt, os_receiver, &rx);
	s = urt_spawn(rt, os_sender, &tx);
	ASSERT_EQ(0, urt_oneshot_recv(o, &v));	/* a foreign thread receives too */
	ASSERT_EQ((void *)0x1234, v);
	ASSERT_EQ(NULL, join_ok(r));
	ASSERT_EQ(NULL, join_ok(s));
	EXPECT_EQ(0, rx.r);
	EXPECT_EQ((void *)0x1234, rx.v);
	EXPECT_EQ(0, tx.r);
	EXPECT_EQ(-EALREADY, tx.r2);
	/* the value stays */
	v = NULL;
	ASSERT_EQ(0, urt_oneshot_recv_timeout(o, &v, 0));
	ASSERT_EQ((void *)0x1234, v);
	ASSERT_EQ(0, urt_oneshot_destroy(o));
	ASSERT_EQ(0, urt_destroy(rt));
}

/*
 * The bench's ping_pong on two workers: the notifier's wake and its last
 * store race the receiver's return, its destroy of both oneshots and its
 * task's completion (wait.c: W_NOTIFYING, then W_DONE). Under ASan/TSan
 * this catches a notifier that touches a freed frame, oneshot or task.
 */
struct pp_pair {
	urt_oneshot *ping, *pong;
};

static atomic_int pp_left, pp_bad;

static void *pp_pong(void *arg)
{
	struct pp_pair *p = arg;
	void *v = NULL;

	if (urt_oneshot_recv(p->ping, &v) || v != (void *)0x1)
		atomic_fetch_add(&pp_bad, 1);
	if (urt_oneshot_send(p->pong, (void *)0x2))
		atomic_fetch_add(&pp_bad, 1);
	return NULL;
}

static void *pp_ping(void *arg)
{
	struct pp_pair p = { urt_oneshot_create(), urt_oneshot_create() };
	struct urt_spawn_opts o = { .detached = true };
	void *v = NULL;

	(void)arg;
	if (!p.ping || !p.pong || !urt_spawn_opts(NULL, pp_pong, &p, &o).p) {
		atomic_fetch_add(&pp_bad, 1);
		return NULL;
	}
	if (urt_oneshot_send(p.ping, (void *)0x1))
		atomic_fetch_add(&pp_bad, 1);
	if (urt_oneshot_recv(p.pong, &v) || v != (void *)0x2)
		atomic_fetch_add(&pp_bad, 1);
	/* pong's last touch of the pair was the send we just received */
	if (urt_oneshot_destroy(p.ping) || urt_oneshot_destroy(p.pong))
		atomic_fetch_add(&pp_bad, 1);
	atomic_fetch_sub(&pp_left, 1);
	return NULL;
}

TEST(oneshot_pairs_freed_right_after_the_reply_across_two_workers)
{
	urt_rt *rt = test_rt(2);
	struct urt_spawn_opts o = { .detached = true };
	/*
	 * Nothing bounds how many of the pings start before their pongs end
	 * (under TSan all 20,000 can be live at once), and TSan dies past 8128
	 * live fibers (each has a TSan thread context): stay under it there.
	 */
#if defined(__SANITIZE_THREAD__)
	int n = 3000;
#else
	int n = 20000;
#endif

	atomic_store(&pp_left, n);
	atomic_store(&pp_bad, 0);
	for (int i = 0; i < n; i++)
		ASSERT_NE(NULL, urt_spawn_opts(rt, pp_ping, NULL, &o).p);
	wait_flag_zero(&pp_left);
	EXPECT_EQ(0, atomic_load(&pp_bad));
	ASSERT_EQ(0, urt_destroy(rt));
}

/*
 * Receivers that time out just as a foreign thread sends: the give-up
 * path meets a notifier mid-notify (wait.c: a fiber that sees W_NOTIFYING
 * spins/yields until W_DONE; it must neither park for good nor leave
 * early). Every value arrives exactly once.
 */
#define RACE_FIBERS	4
#define RACE_ROUNDS	1000

struct race_rx {
	urt_oneshot *o[RACE_ROUNDS];
	atomic_int got, bad;
};

static void *race_receiver(void *arg)
{
	struct race_rx *x = arg;

	for (int i = 0; i < RACE_ROUNDS; i++) {
		void *v = NULL;
		int r;

		while ((r = urt_oneshot_recv_timeout(x->o[i], &v, 1000 + (i % 7) * 3000)) == -ETIMEDOUT)
			;
		if (r || v != (void *)(intptr_t)(i + 1))
			atomic_fetch_add(&x->bad, 1);
		atomic_fetch_add(&x->got, 1);
	}
	return NULL;
}

TEST(oneshot_receivers_timing_out_as_the_value_arrives_get_it_once)
{
	urt_rt *rt = test_rt(2);
	static struct race_rx x[RACE_FIBERS];
	urt_task_t t[RACE_FIBERS];

	for (int f = 0; f < RACE_FIBERS; f++) {
		atomic_store(&x[f].got, 0);
		atomic_store(&x[f].bad, 0);
		for (int i = 0; i < RACE_ROUNDS; i++)
			ASSERT_NE(NULL, x[f].o[i] = urt_oneshot_create());
		t[f] = urt_spawn(rt, race_receiver, &x[f]);
	}
	for (int i = 0; i < RACE_ROUNDS; i++) {
		int64_t until;

		/* every receiver is in round i: waiting, or about to */
		for (int f = 0; f < RACE_FIBERS; f++)
			while (atomic_load(&x[f].got) < i)
				;
		until = urt_now() + (i % 17) * 10000;	/* across a timer tick */
		while (urt_now() < until)
			;
		for (int f = 0; f < RACE_FIBERS; f++)
			ASSERT_EQ(0, urt_oneshot_send(x[f].o[i], (void *)(intptr_t)(i + 1)));
	}
	for (int f = 0; f < RACE_FIBERS; f++) {
		ASSERT_EQ(NULL, join_ok(t[f]));
		EXPECT_EQ(RACE_ROUNDS, atomic_load(&x[f].got));
		EXPECT_EQ(0, atomic_load(&x[f].bad));
		for (int i = 0; i < RACE_ROUNDS; i++)
			EXPECT_EQ(0, urt_oneshot_destroy(x[f].o[i]));
	}
	ASSERT_EQ(0, urt_destroy(rt));
}

/* On one worker: runs only once the receiver that spawned it is parked. */
static void *os_destroyer(void *arg)
{
	struct os *x = arg;

	x->r2 = urt_oneshot_destroy(x->o);
	if (urt_oneshot_send(x->o, (void *)0x77))
		x->r2 = 1;
	return NULL;
}

static void *os_spawning_receiver(void *arg)
{
	struct os *x = arg;
	struct urt_spawn_opts o = { .detached = true };

	if (!urt_spawn_opts(NULL, os_destroyer, x, &o).p)
		return NULL;
	x->r = urt_oneshot_recv(x->o, &x->v);
	return NULL;
}

TEST(oneshot_destroy_with_a_waiting_receiver_is_ebusy)
{
	urt_rt *rt = test_rt(1);
	urt_oneshot *o = urt_oneshot_create();
	struct os rx = { o, NULL, 1, 0, 0 };

	ASSERT_NE(NULL, o);
	ASSERT_EQ(NULL, join_ok(urt_spawn(rt, os_spawning_receiver, &rx)));
	EXPECT_EQ(-EBUSY, rx.r2);
	EXPECT_EQ(0, rx.r);
	EXPECT_EQ((void *)0x77, rx.v);
	EXPECT_EQ(0, urt_oneshot_destroy(o));
	ASSERT_EQ(0, urt_destroy(rt));
}

/* ------------------------------------------------------------ poll tasks */

struct poll_calls {
	urt_mutex *m;
	urt_cond *c;
	urt_sem *s;
	urt_wg *wg;
	urt_oneshot *o;
	int r[7];
};

static enum urt_poll poll_waits(void *state, urt_cx *cx, void **result)
{
	struct poll_calls *p = state;
	void *v;

	p->r[0] = urt_mutex_lock(p->m);
	p->r[1] = urt_cond_wait(p->c, p->m);
	p->r[2] = urt_sem_acquire(p->s);
	p->r[3] = urt_wg_wait(p->wg);
	p->r[4] = urt_oneshot_recv(p->o, &v);
	/* the non-waiting forms work */
	p->r[5] = urt_mutex_trylock(p->m);
	p->r[6] = urt_mutex_unlock(p->m);
	*result = NULL;
	return URT_READY;
}

TEST(waiting_calls_from_a_poll_task_return_eperm)
{
	urt_rt *rt = test_rt(1);
	struct poll_calls p = { urt_mutex_create(), urt_cond_create(), urt_sem_create(1),
				urt_wg_create(), urt_oneshot_create(), { 1, 1, 1, 1, 1, 1, 1 } };
	int i;

	ASSERT_EQ(NULL, join_ok(urt_spawn_poll(rt, poll_waits, &p, NULL)));
	for (i = 0; i < 5; i++)
		EXPECT_EQ(-EPERM, p.r[i]);
	EXPECT_EQ(0, p.r[5]);
	EXPECT_EQ(0, p.r[6]);
	urt_mutex_destroy(p.m);
	urt_cond_destroy(p.c);
	urt_sem_destroy(p.s);
	urt_wg_destroy(p.wg);
	urt_oneshot_destroy(p.o);
	ASSERT_EQ(0, urt_destroy(rt));
}

TEST_HARNESS_MAIN
