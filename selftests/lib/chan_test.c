// SPDX-License-Identifier: MIT
/*
 * chan_test.c - channels and select: order, capacity, close, timeouts,
 * cancellation, many producers/consumers, foreign threads, poll tasks.
 *
 * Fibers cannot use ASSERT_* (it belongs to the test function), so they
 * record what they saw in shared state that the test function checks.
 * Timing is only ever checked as a lower bound.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "kselftest_harness.h"
#include "util.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #c); \
	return (void *)(intptr_t)-__LINE__; } } while (0)

static void *join_ok(urt_task_t t)
{
	void *res = (void *)(intptr_t)-1;

	if (urt_join(t, &res))
		return (void *)(intptr_t)-2;
	return res;
}

/* ------------------------------------------------------------ basics */

TEST(functions_reject_null_and_bad_arguments)
{
	urt_chan *ch = urt_chan_create(sizeof(int), 0);
	struct urt_select_case c = { NULL, URT_SELECT_RECV, NULL };
	int v = 0;

	ASSERT_NE(NULL, ch);
	EXPECT_EQ(-EINVAL, urt_chan_send(NULL, &v));
	EXPECT_EQ(-EINVAL, urt_chan_recv(NULL, &v));
	EXPECT_EQ(-EINVAL, urt_chan_try_send(ch, NULL));
	EXPECT_EQ(-EINVAL, urt_chan_try_recv(ch, NULL));
	EXPECT_EQ(-EINVAL, urt_chan_send_timeout(ch, NULL, 0));
	EXPECT_EQ(-EINVAL, urt_chan_recv_timeout(NULL, &v, 0));
	EXPECT_EQ(-EINVAL, urt_chan_close(NULL));
	EXPECT_EQ(-EINVAL, urt_chan_destroy(NULL));
	EXPECT_EQ(-EINVAL, urt_select(NULL, 1, 0));
	EXPECT_EQ(-EINVAL, urt_select(&c, 0, 0));
	EXPECT_EQ(-EINVAL, urt_select(&c, 1, 0));
	EXPECT_EQ(0, urt_chan_len(NULL));
	EXPECT_EQ(NULL, urt_chan_create(SIZE_MAX / 2, 4));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, urt_chan_destroy(ch));
}

TEST(unbounded_channel_keeps_fifo_order_while_growing)
{
	urt_chan *ch = urt_chan_create(sizeof(int), 0);
	int i, v;

	ASSERT_NE(NULL, ch);
	/* interleave so the ring wraps before it grows */
	for (i = 0; i < 5; i++)
		ASSERT_EQ(0, urt_chan_try_send(ch, &i));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, urt_chan_try_recv(ch, &v));
		ASSERT_EQ(i, v);
	}
	for (i = 5; i < 20000; i++)
		ASSERT_EQ(0, urt_chan_try_send(ch, &i));
	ASSERT_EQ(20000 - 3, urt_chan_len(ch));
	for (i = 3; i < 20000; i++) {
		ASSERT_EQ(0, urt_chan_try_recv(ch, &v));
		ASSERT_EQ(i, v);
	}
	ASSERT_EQ(-EAGAIN, urt_chan_try_recv(ch, &v));
	ASSERT_EQ(0, urt_chan_len(ch));
	ASSERT_EQ(0, urt_chan_destroy(ch));
}

TEST(bounded_channel_reports_full_and_empty)
{
	urt_chan *ch = urt_chan_create(sizeof(int), 4);
	int i, v;

	ASSERT_NE(NULL, ch);
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, urt_chan_try_send(ch, &i));
	ASSERT_EQ(-EAGAIN, urt_chan_try_send(ch, &i));
	ASSERT_EQ(-ETIMEDOUT, urt_chan_send_timeout(ch, &i, 0));
	ASSERT_EQ(4, urt_chan_len(ch));
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, urt_chan_try_recv(ch, &v));
		ASSERT_EQ(i, v);
	}
	ASSERT_EQ(-EAGAIN, urt_chan_try_recv(ch, &v));
	ASSERT_EQ(-ETIMEDOUT, urt_chan_recv_timeout(ch, &v, 0));
	ASSERT_EQ(0, urt_chan_destroy(ch));
}

TEST(zero_sized_elements_count_as_signals)
{
	urt_chan *ch = urt_chan_create(0, 2);

	ASSERT_NE(NULL, ch);
	ASSERT_EQ(0, urt_chan_try_send(ch, NULL));
	ASSERT_EQ(0, urt_chan_try_send(ch, NULL));
	ASSERT_EQ(-EAGAIN, urt_chan_try_send(ch, NULL));
	ASSERT_EQ(0, urt_chan_try_recv(ch, NULL));
	ASSERT_EQ(1, urt_chan_len(ch));
	ASSERT_EQ(0, urt_chan_destroy(ch));
}

/* ------------------------------------------------------ capacity, fibers */

struct pc {
	urt_chan *ch;
	int n;
	atomic_int progress;
};

static void *producer(void *arg)
{
	struct pc *p = arg;
	int i;

	for (i = 0; i < p->n; i++) {
		CHECK(urt_chan_send(p->ch, &i) == 0);
		atomic_store(&p->progress, i + 1);
	}
	return NULL;
}

TEST(bounded_send_blocks_until_a_receiver_makes_room)
{
	urt_rt *rt = test_rt(2);
	struct pc p = { urt_chan_create(sizeof(int), 2), 3, 0 };
	urt_task_t t;
	int v;

	ASSERT_NE(NULL, p.ch);
	t = urt_spawn(rt, producer, &p);
	ASSERT_NE(0, t.id);
	/* two fit, the third send must wait for us */
	while (atomic_load(&p.progress) < 2)
		usleep(1000);
	usleep(20000);
	ASSERT_EQ(2, atomic_load(&p.progress));
	ASSERT_EQ(0, urt_chan_recv(p.ch, &v));	/* foreign thread: blocks */
	ASSERT_EQ(0, v);
	ASSERT_EQ(NULL, join_ok(t));
	ASSERT_EQ(3, atomic_load(&p.progress));
	ASSERT_EQ(0, urt_chan_recv(p.ch, &v));
	ASSERT_EQ(1, v);
	ASSERT_EQ(0, urt_chan_recv(p.ch, &v));
	ASSERT_EQ(2, v);
	ASSERT_EQ(0, urt_chan_destroy(p.ch));
	ASSERT_EQ(0, urt_destroy(rt));
}

static void *ordered_consumer(void *arg)
{
	struct pc *p = arg;
	int i, v;

	for (i = 0; i < p->n; i++) {
		CHECK(urt_chan_recv(p->ch, &v) == 0);
		CHECK(v == i);
	}
	CHECK(urt_chan_recv(p->ch, &v) == -EPIPE);
	return NULL;
}

static void *close_after_producer(void *arg)
{
	struct pc *p = arg;
	void *r = producer(p);

	urt_chan_close(p->ch);
	return r;
}

static void fifo_between_two_fibers(struct __test_metadata *_metadata,
				    unsigned int workers, size_t cap)
{
	urt_rt *rt = test_rt(workers);
	struct pc p = { urt_chan_create(sizeof(int), cap), 20000, 0 };
	urt_task_t c, s;

	ASSERT_NE(NULL, p.ch);
	c = urt_spawn(rt, ordered_consumer, &p);
	s = urt_spawn(rt, close_after_producer, &p);
	ASSERT_EQ(NULL, join_ok(s));
	ASSERT_EQ(NULL, join_ok(c));
	ASSERT_EQ(0, urt_chan_destroy(p.ch));
	ASSERT_EQ(0, urt_destroy(rt));
}

TEST(fifo_order_holds_between_two_fibers_on_one_worker)
{
	fifo_between_two_fibers(_metadata, 1, 1);
	fifo_between_two_fibers(_metadata, 1, 64);
	fifo_between_two_fibers(_metadata, 1, 0);
}

TEST(fifo_order_holds_between_two_fibers_on_two_workers)
{
	fifo_between_two_fibers(_metadata, 2, 1);
	fifo_between_two_fibers(_metadata, 2, 64);
	fifo_between_two_fibers(_metadata, 2, 0);
}

/* ------------------------------------------------------------ close */

struct waiter_arg {
	urt_chan *ch;
	int result;
	int value;
	atomic_int started;
};

static void *recv_once(void *arg)
{
	struct waiter_arg *a = arg;

	atomic_store(&a->started, 1);
	a->result = urt_chan_recv(a->ch, &a->value);
	return NULL;
}

static void *send_once(void *arg)
{
	struct waiter_arg *a = arg;

	atomic_store(&a->started, 1);
	a->result = urt_chan_send(a->ch, &a->value);
	return NULL;
}

static void wait_started(struct waiter_arg *a, int n)
{
	for (int i = 0; i < n; i++)
		while (!atomic_load(&a[i].started))
			usleep(1000);
	usleep(20000);	/* let them reach the wait; correctness does not depend on it */
}

TEST(close_drains_buffered_elements_then_reports_epipe)
{
	urt_chan *ch = urt_chan_create(sizeof(int), 8);
	int i, v;

	ASSERT_NE(NULL, ch);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, urt_chan_try_send(ch, &i));
	ASSERT_EQ(0, urt_chan_close(ch));
	ASSERT_EQ(-EALREADY, urt_chan_close(ch));
	ASSERT_EQ(-EPIPE, urt_chan_try_send(ch, &i));
	ASSERT_EQ(-EPIPE, urt_chan_send(ch, &i));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, urt_chan_recv(ch, &v));
		ASSERT_EQ(i, v);
	}
	ASSERT_EQ(-EPIPE, urt_chan_recv(ch, &v));
	ASSERT_EQ(-EPIPE, urt_chan_try_recv(ch, &v));
	ASSERT_EQ(-EPIPE, urt_chan_recv_timeout(ch, &v, MS(10)));
	ASSERT_EQ(0, urt_chan_destroy(ch));
}

TEST(close_wakes_every_blocked_receiver_and_sender)
{
	urt_rt *rt = test_rt(2);
	urt_chan *rch = urt_chan_create(sizeof(int), 1);
	urt_chan *sch = urt_chan_create(sizeof(int), 1);
	struct waiter_arg r[4] = { 0 }, s[4] = { 0 };
	urt_task_t rt_[4], st[4];
	int i, one = 1;

	ASSERT_NE(NULL, rch);
	ASSERT_NE(NULL, sch);
	ASSERT_EQ(0, urt_chan_try_send(sch, &one));	/* full: senders block */
	for (i = 0; i < 4; i++) {
		r[i].ch = rch;
		s[i].ch = sch;
		s[i].value = 100 + i;
		rt_[i] = urt_spawn(rt, recv_once, &r[i]);
		st[i] = urt_spawn(rt, send_once, &s[i]);
	}
	wait_started(r, 4);
	wait_started(s, 4);
	ASSERT_EQ(-EBUSY, urt_chan_destroy(rch));
	ASSERT_EQ(0, urt_chan_close(rch));
	ASSERT_EQ(0, urt_chan_close(sch));
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(NULL, join_ok(rt_[i]));
		ASSERT_EQ(NULL, join_ok(st[i]));
		EXPECT_EQ(-EPIPE, r[i].result);
		EXPECT_EQ(-EPIPE, s[i].result);
	}
	/* the element buffered before close is still delivered */
	ASSERT_EQ(0, urt_chan_try_recv(sch, &i));
	ASSERT_EQ(1, i);
	ASSERT_EQ(0, urt_chan_destroy(rch));
	ASSERT_EQ(0, urt_chan_destroy(sch));
	ASSERT_EQ(0, urt_destroy(rt));
}

/* ------------------------------------------------- timeouts and cancel */

struct timed {
	urt_chan *ch;
	int64_t timeout, elapsed;
	int result;
};

static void *recv_timed(void *arg)
{
	struct timed *t = arg;
	int64_t t0 = urt_now();
	int v;

	t->result = urt_chan_recv_timeout(t->ch, &v, t->timeout);
	t->elapsed = urt_now() - t0;
	return NULL;
}

static void *send_timed(void *arg)
{
	struct timed *t = arg;
	int64_t t0 = urt_now();
	int v = 7;

	t->result = urt_chan_send_timeout(t->ch, &v, t->timeout);
	t->elapsed = urt_now() - t0;
	return NULL;
}

TEST(recv_and_send_time_out_in_fibers_and_threads)
{
	urt_rt *rt = test_rt(1);
	urt_chan *ch = urt_chan_create(sizeof(int), 1);
	struct timed a = { ch, MS(30), 0, 1 }, b = { ch, MS(30), 0, 1 };
	int v = 1;

	ASSERT_NE(NULL, ch);
	ASSERT_EQ(NULL, join_ok(urt_spawn(rt, recv_timed, &a)));
	EXPECT_EQ(-ETIMEDOUT, a.result);
	EXPECT_GE(a.elapsed, MS(30));
	recv_timed(&a);		/* foreign thread: blocks on a futex */
	EXPECT_EQ(-ETIMEDOUT, a.result);
	EXPECT_GE(a.elapsed, MS(30));

	ASSERT_EQ(0, urt_chan_try_send(ch, &v));
	ASSERT_EQ(NULL, join_ok(urt_spawn(rt, send_timed, &b)));
	EXPECT_EQ(-ETIMEDOUT, b.result);
	EXPECT_GE(b.elapsed, MS(30));
	/* the timed-out sender left nothing behind */
	ASSERT_EQ(1, urt_chan_len(ch));
	ASSERT_EQ(0, urt_chan_try_recv(ch, &v));
	ASSERT_EQ(1, v);
	ASSERT_EQ(-EAGAIN, urt_chan_try_recv(ch, &v));
	ASSERT_EQ(0, urt_chan_destroy(ch));
	ASSERT_EQ(0, urt_destroy(rt));
}

TEST(cancelled_fiber_blocked_in_recv_gets_ecanceled_and_channel_still_works)
{
	urt_rt *rt = test_rt(2);
	struct waiter_arg a = { urt_chan_create(sizeof(int), 0), 1, 0, 0 };
	urt_task_t t;
	int v = 42, got = 0;

	ASSERT_NE(NULL, a.ch);
	t = urt_spawn(rt, recv_once, &a);
	wait_started(&a, 1);
	ASSERT_EQ(0, urt_cancel(t));
	urt_join(t, NULL);	/* 0 or -ECANCELED: the fiber's result is ours */
	ASSERT_EQ(-ECANCELED, a.result);
	/* no stale waiter swallows the next message */
	ASSERT_EQ(0, urt_chan_send(a.ch, &v));
	ASSERT_EQ(0, urt_chan_try_recv(a.ch, &got));
	ASSERT_EQ(42, got);
	ASSERT_EQ(0, urt_chan_destroy(a.ch));
	ASSERT_EQ(0, urt_destroy(rt));
}

/* --------------------------------------------- many producers/consumers */

#define MPMC_FIBERS	8
#define MPMC_TOTAL	100000
#define MPMC_PER	(MPMC_TOTAL / MPMC_FIBERS)

struct mpmc {
	urt_chan *ch;
	urt_wg *producers;
	atomic_uchar seen[MPMC_TOTAL];
	atomic_long sum, count;
	atomic_int errors;
};

static void *mpmc_producer(void *arg)
{
	struct mpmc *m = arg;
	static atomic_int next_id;
	int id = atomic_fetch_add(&next_id, 1) % MPMC_FIBERS, i, v;

	for (i = 0; i < MPMC_PER; i++) {
		v = id * MPMC_PER + i;
		if (urt_chan_send(m->ch, &v))
			atomic_fetch_add(&m->errors, 1);
	}
	urt_wg_done(m->producers);
	return NULL;
}

static void *mpmc_consumer(void *arg)
{
	struct mpmc *m = arg;
	int last[MPMC_FIBERS], v, r, p;

	for (p = 0; p < MPMC_FIBERS; p++)
		last[p] = -1;
	while ((r = urt_chan_recv(m->ch, &v)) == 0) {
		if (v < 0 || v >= MPMC_TOTAL) {
			atomic_fetch_add(&m->errors, 1);
			continue;
		}
		/* FIFO: one producer's values reach any one consumer in order */
		p = v / MPMC_PER;
		if (v <= last[p])
			atomic_fetch_add(&m->errors, 1);
		last[p] = v;
		atomic_fetch_add(&m->seen[v], 1);
		atomic_fetch_add(&m->sum, v);
		atomic_fetch_add(&m->count, 1);
	}
	if (r != -EPIPE)
		atomic_fetch_add(&m->errors, 1);
	return NULL;
}

static void *mpmc_closer(void *arg)
{
	struct mpmc *m = arg;

	urt_wg_wait(m->producers);
	urt_chan_close(m->ch);
	return NULL;
}

static void mpmc_run(struct __test_metadata *_metadata, unsigned int workers, size_t cap)
{
	urt_rt *rt = test_rt(workers);
	struct mpmc *m = calloc(1, sizeof(*m));
	urt_task_t t[2 * MPMC_FIBERS + 1];
	long long expect = (long long)MPMC_TOTAL * (MPMC_TOTAL - 1) / 2;
	int i, bad = 0;

	ASSERT_NE(NULL, m);
	m->ch = urt_chan_create(sizeof(int), cap);
	m->producers = urt_wg_create();
	ASSERT_NE(NULL, m->ch);
	ASSERT_EQ(0, urt_wg_add(m->producers, MPMC_FIBERS));
	for (i = 0; i < MPMC_FIBERS; i++) {
		t[2 * i] = urt_spawn(rt, mpmc_consumer, m);
		t[2 * i + 1] = urt_spawn(rt, mpmc_producer, m);
	}
	t[2 * MPMC_FIBERS] = urt_spawn(rt, mpmc_closer, m);
	for (i = 0; i < 2 * MPMC_FIBERS + 1; i++)
		ASSERT_EQ(NULL, join_ok(t[i]));
	ASSERT_EQ(0, atomic_load(&m->errors));
	ASSERT_EQ(MPMC_TOTAL, atomic_load(&m->count));
	ASSERT_EQ(expect, atomic_load(&m->sum));
	for (i = 0; i < MPMC_TOTAL; i++)
		bad += atomic_load(&m->seen[i]) != 1;
	ASSERT_EQ(0, bad);
	ASSERT_EQ(0, urt_chan_destroy(m->ch));
	ASSERT_EQ(0, urt_wg_destroy(m->producers));
	free(m);
	ASSERT_EQ(0, urt_destroy(rt));
}

TEST(many_producers_and_consumers_lose_and_duplicate_nothing_on_one_worker)
{
	mpmc_run(_metadata, 1, 16);
}

TEST(many_producers_and_consumers_lose_and_duplicate_nothing_on_two_workers)
{
	mpmc_run(_metadata, 2, 16);
}

TEST(many_producers_and_consumers_on_an_unbounded_channel)
{
	mpmc_run(_metadata, 2, 0);
}

TEST(many_producers_and_consumers_on_a_one_slot_channel)
{
	mpmc_run(_metadata, 2, 1);
}

/* ----------------------------------------------------- foreign threads */

struct echo {
	urt_chan *in, *out;
	int n;
};

static void *echo_fiber(void *arg)
{
	struct echo *e = arg;
	int v, r;

	while ((r = urt_chan_recv(e->in, &v)) == 0) {
		v *= 2;
		CHECK(urt_chan_send(e->out, &v) == 0);
	}
	CHECK(r == -EPIPE);
	urt_chan_close(e->out);
	return NULL;
}

static void *thread_feeder(void *arg)
{
	struct echo *e = arg;
	int i;

	for (i = 0; i < e->n; i++)
		if (urt_chan_send(e->in, &i))
			return (void *)1;
	urt_chan_close(e->in);
	return NULL;
}

TEST(foreign_threads_and_fibers_talk_over_channels)
{
	urt_rt *rt = test_rt(2);
	struct echo e = { urt_chan_create(sizeof(int), 4), urt_chan_create(sizeof(int), 1), 5000 };
	pthread_t th;
	urt_task_t t;
	void *tr;
	int i, v;

	ASSERT_NE(NULL, e.in);
	ASSERT_NE(NULL, e.out);
	t = urt_spawn(rt, echo_fiber, &e);
	ASSERT_EQ(0, pthread_create(&th, NULL, thread_feeder, &e));
	for (i = 0; i < e.n; i++) {
		ASSERT_EQ(0, urt_chan_recv(e.out, &v));	/* main thread blocks */
		ASSERT_EQ(2 * i, v);
	}
	ASSERT_EQ(-EPIPE, urt_chan_recv(e.out, &v));
	ASSERT_EQ(0, pthread_join(th, &tr));
	ASSERT_EQ(NULL, tr);
	ASSERT_EQ(NULL, join_ok(t));
	ASSERT_EQ(0, urt_chan_destroy(e.in));
	ASSERT_EQ(0, urt_chan_destroy(e.out));
	ASSERT_EQ(0, urt_destroy(rt));
}

/* ------------------------------------------------------------ select */

TEST(select_performs_the_one_ready_case_and_times_out_otherwise)
{
	urt_chan *a = urt_chan_create(sizeof(int), 1), *b = urt_chan_create(sizeof(int), 1);
	int va = -1, vb = -1, x = 5;
	struct urt_select_case cs[2] = {
		{ a, URT_SELECT_RECV, &va },
		{ b, URT_SELECT_RECV, &vb },
	};
	int64_t t0;

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_EQ(-ETIMEDOUT, urt_select(cs, 2, 0));
	t0 = urt_now();
	ASSERT_EQ(-ETIMEDOUT, urt_select(cs, 2, MS(30)));	/* foreign thread */
	EXPECT_GE(urt_now() - t0, MS(30));
	ASSERT_EQ(0, urt_chan_try_send(b, &x));
	ASSERT_EQ(1, urt_select(cs, 2, URT_FOREVER));
	ASSERT_EQ(5, vb);
	ASSERT_EQ(-1, va);
	ASSERT_EQ(0, urt_chan_len(b));

	/* a send case on a full channel next to a ready recv */
	ASSERT_EQ(0, urt_chan_try_send(a, &x));
	cs[0].op = URT_SELECT_SEND;
	cs[0].elem = &x;
	ASSERT_EQ(-ETIMEDOUT, urt_select(cs, 1, 0));
	ASSERT_EQ(0, urt_chan_try_recv(a, &va));
	x = 9;
	ASSERT_EQ(0, urt_select(cs, 1, 0));
	ASSERT_EQ(0, urt_chan_try_recv(a, &va));
	ASSERT_EQ(9, va);
	ASSERT_EQ(0, urt_chan_destroy(a));
	ASSERT_EQ(0, urt_chan_destroy(b));
}

TEST(select_starts_at_a_random_case_so_ready_cases_share_the_work)
{
	urt_chan *a = urt_chan_create(sizeof(int), 0), *b = urt_chan_create(sizeof(int), 0);
	int v, i, hits[2] = { 0, 0 }, r;
	struct urt_select_case cs[2] = {
		{ a, URT_SELECT_RECV, &v },
		{ b, URT_SELECT_RECV, &v },
	};

	for (i = 0; i < 2000; i++) {
		ASSERT_EQ(0, urt_chan_try_send(a, &i));
		ASSERT_EQ(0, urt_chan_try_send(b, &i));
	}
	for (i = 0; i < 2000; i++) {
		r = urt_select(cs, 2, 0);
		ASSERT_TRUE(r == 0 || r == 1);
		hits[r]++;
	}
	EXPECT_GT(hits[0], 600);
	EXPECT_GT(hits[1], 600);
	ASSERT_EQ(0, urt_chan_destroy(a));
	ASSERT_EQ(0, urt_chan_destroy(b));
}

struct sel_wait {
	urt_chan *a, *b;
	int va, vb, result;
	atomic_int started;
};

static void *select_forever(void *arg)
{
	struct sel_wait *s = arg;
	struct urt_select_case cs[2] = {
		{ s->a, URT_SELECT_RECV, &s->va },
		{ s->b, URT_SELECT_RECV, &s->vb },
	};

	atomic_store(&s->started, 1);
	s->result = urt_select(cs, 2, URT_FOREVER);
	return NULL;
}

TEST(select_blocks_until_a_sender_arrives_and_then_leaves_no_waiter_behind)
{
	urt_rt *rt = test_rt(2);
	struct sel_wait s = { urt_chan_create(sizeof(int), 0), urt_chan_create(sizeof(int), 4),
			      -1, -1, -100, 0 };
	urt_task_t t;
	int x = 11;

	t = urt_spawn(rt, select_forever, &s);
	while (!atomic_load(&s.started))
		usleep(1000);
	usleep(20000);
	ASSERT_EQ(0, urt_chan_send(s.b, &x));
	ASSERT_EQ(NULL, join_ok(t));
	ASSERT_EQ(1, s.result);
	ASSERT_EQ(11, s.vb);
	ASSERT_EQ(-1, s.va);
	/* the node left on a was unlinked: the next send buffers */
	ASSERT_EQ(0, urt_chan_send(s.a, &x));
	ASSERT_EQ(1, urt_chan_len(s.a));
	ASSERT_EQ(0, urt_chan_destroy(s.a));
	ASSERT_EQ(0, urt_chan_destroy(s.b));
	ASSERT_EQ(0, urt_destroy(rt));
}

TEST(select_reports_epipe_only_once_every_channel_is_closed)
{
	urt_rt *rt = test_rt(2);
	struct sel_wait s = { urt_chan_create(sizeof(int), 0), urt_chan_create(sizeof(int), 2),
			      -1, -1, -100, 0 };
	struct urt_select_case cs[2] = {
		{ s.a, URT_SELECT_RECV, &s.va },
		{ s.b, URT_SELECT_SEND, &s.vb },
	};
	urt_task_t t;
	int x;

	t = urt_spawn(rt, select_forever, &s);
	while (!atomic_load(&s.started))
		usleep(1000);
	usleep(20000);
	ASSERT_EQ(0, urt_chan_close(s.a));
	usleep(20000);
	ASSERT_EQ(-100, s.result);	/* b is still open */
	ASSERT_EQ(0, urt_chan_close(s.b));
	ASSERT_EQ(NULL, join_ok(t));
	ASSERT_EQ(-EPIPE, s.result);
	/* all closed and drained: fails at once, also with a send case */
	ASSERT_EQ(-EPIPE, urt_select(cs, 2, URT_FOREVER));
	/* a closed channel that still holds data is ready */
	s.b = urt_chan_create(sizeof(int), 2);
	x = 3;
	ASSERT_EQ(0, urt_chan_try_send(s.b, &x));
	ASSERT_EQ(0, urt_chan_close(s.b));
	cs[1].ch = s.b;
	cs[1].op = URT_SELECT_RECV;
	ASSERT_EQ(1, urt_select(cs, 2, URT_FOREVER));
	ASSERT_EQ(3, s.vb);
	ASSERT_EQ(-EPIPE, urt_select(cs, 2, URT_FOREVER));
	ASSERT_EQ(0, urt_chan_destroy(s.a));
	ASSERT_EQ(0, urt_chan_destroy(s.b));
	ASSERT_EQ(0, urt_destroy(rt));
}

/* Every element goes through exactly one select on each side. */
#define SEL_N		20000
#define SEL_FIBERS	4

struct sel_stress {
	urt_chan *ch[3];
	atomic_uchar seen[SEL_N];
	atomic_int errors, sent, received;
	urt_wg *senders;
};

static void *sel_sender(void *arg)
{
	struct sel_stress *s = arg;
	static atomic_int ids;
	int id = atomic_fetch_add(&ids, 1) % SEL_FIBERS, i, v, r;
	struct urt_select_case cs[3];

	for (i = id; i < SEL_N; i += SEL_FIBERS) {
		v = i;
		for (int k = 0; k < 3; k++)
			cs[k] = (struct urt_select_case){ s->ch[k], URT_SELECT_SEND, &v };
		r = urt_select(cs, 3, URT_FOREVER);
		if (r < 0 || r > 2)
			atomic_fetch_add(&s->errors, 1);
		atomic_fetch_add(&s->sent, 1);
	}
	urt_wg_done(s->senders);
	return NULL;
}

static void *sel_receiver(void *arg)
{
	struct sel_stress *s = arg;
	int v[3], r;
	struct urt_select_case cs[3];

	for (int k = 0; k < 3; k++)
		cs[k] = (struct urt_select_case){ s->ch[k], URT_SELECT_RECV, &v[k] };
	for (;;) {
		r = urt_select(cs, 3, MS(5000));
		if (r == -EPIPE)
			break;
		if (r < 0 || r > 2 || v[r] < 0 || v[r] >= SEL_N) {
			atomic_fetch_add(&s->errors, 1);
			break;
		}
		atomic_fetch_add(&s->seen[v[r]], 1);
		atomic_fetch_add(&s->received, 1);
	}
	return NULL;
}

static void *sel_closer(void *arg)
{
	struct sel_stress *s = arg;

	urt_wg_wait(s->senders);
	for (int k = 0; k < 3; k++)
		urt_chan_close(s->ch[k]);
	return NULL;
}

TEST(concurrent_selects_on_both_sides_deliver_each_element_once)
{
	urt_rt *rt = test_rt(2);
	struct sel_stress *s = calloc(1, sizeof(*s));
	urt_task_t t[2 * SEL_FIBERS + 1];
	int i, bad = 0;

	ASSERT_NE(NULL, s);
	s->ch[0] = urt_chan_create(sizeof(int), 1);
	s->ch[1] = urt_chan_create(sizeof(int), 3);
	s->ch[2] = urt_chan_create(sizeof(int), 1);
	s->senders = urt_wg_create();
	ASSERT_EQ(0, urt_wg_add(s->senders, SEL_FIBERS));
	for (i = 0; i < SEL_FIBERS; i++) {
		t[2 * i] = urt_spawn(rt, sel_receiver, s);
		t[2 * i + 1] = urt_spawn(rt, sel_sender, s);
	}
	t[2 * SEL_FIBERS] = urt_spawn(rt, sel_closer, s);
	for (i = 0; i < 2 * SEL_FIBERS + 1; i++)
		ASSERT_EQ(NULL, join_ok(t[i]));
	ASSERT_EQ(0, atomic_load(&s->errors));
	ASSERT_EQ(SEL_N, atomic_load(&s->sent));
	ASSERT_EQ(SEL_N, atomic_load(&s->received));
	for (i = 0; i < SEL_N; i++)
		bad += atomic_load(&s->seen[i]) != 1;
	ASSERT_EQ(0, bad);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, urt_chan_destroy(s->ch[i]));
	urt_wg_destroy(s->senders);
	free(s);
	ASSERT_EQ(0, urt_destroy(rt));
}

/* ------------------------------------------------------------ poll tasks */

struct poll_io {
	urt_chan *ch;
	int n, i;
	long sum;
	int polls;
	int err;
	bool yield;	/* re-poll itself while pending: must not pile registrations */
};

static enum urt_poll poll_receiver(void *state, urt_cx *cx, void **result)
{
	struct poll_io *p = state;
	int v, err;

	p->polls++;
	while (p->i < p->n) {
		if (urt_chan_poll_recv(p->ch, cx, &v, &err) == URT_PENDING) {
			if (p->yield)
				urt_cx_yield(cx);
			return URT_PENDING;
		}
		if (err) {
			p->err = err;
			*result = NULL;
			return URT_READY;
		}
		if (v != p->i)
			p->err = -EBADMSG;
		p->sum += v;
		p->i++;
	}
	*result = NULL;
	return URT_READY;
}

static enum urt_poll poll_sender(void *state, urt_cx *cx, void **result)
{
	struct poll_io *p = state;
	int err;

	p->polls++;
	while (p->i < p->n) {
		if (urt_chan_poll_send(p->ch, cx, &p->i, &err) == URT_PENDING)
			return URT_PENDING;
		if (err) {
			p->err = err;
			break;
		}
		p->i++;
	}
	*result = NULL;
	return URT_READY;
}

static void *fiber_sender(void *arg)
{
	struct poll_io *p = arg;

	for (int i = 0; i < p->n; i++)
		CHECK(urt_chan_send(p->ch, &i) == 0);
	return NULL;
}

static void *fiber_receiver(void *arg)
{
	struct poll_io *p = arg;
	int v;

	for (int i = 0; i < p->n; i++) {
		CHECK(urt_chan_recv(p->ch, &v) == 0);
		CHECK(v == i);
	}
	return NULL;
}

TEST(poll_tasks_send_and_receive_through_a_bounded_channel)
{
	urt_rt *rt = test_rt(2);
	urt_chan *ch = urt_chan_create(sizeof(int), 2);
	struct poll_io rx = { ch, 3000, 0, 0, 0, 0, false };
	struct poll_io tx = { ch, 3000, 0, 0, 0, 0, false };
	struct poll_io frx = { ch, 3000, 0, 0, 0, 0, false };
	urt_task_t r, s;

	ASSERT_NE(NULL, ch);
	/* poll receiver <- fiber sender */
	r = urt_spawn_poll(rt, poll_receiver, &rx, NULL);
	s = urt_spawn(rt, fiber_sender, &tx);
	ASSERT_EQ(NULL, join_ok(s));
	ASSERT_EQ(NULL, join_ok(r));
	ASSERT_EQ(0, rx.err);
	ASSERT_EQ(3000, rx.i);
	ASSERT_EQ(3000L * 2999 / 2, rx.sum);
	/* poll sender -> fiber receiver */
	tx.i = 0;
	s = urt_spawn_poll(rt, poll_sender, &tx, NULL);
	r = urt_spawn(rt, fiber_receiver, &frx);
	ASSERT_EQ(NULL, join_ok(r));
	ASSERT_EQ(NULL, join_ok(s));
	ASSERT_EQ(0, tx.err);
	/* poll sender -> poll receiver */
	tx.i = 0;
	memset(&rx, 0, sizeof(rx));
	rx.ch = ch;
	rx.n = 3000;
	r = urt_spawn_poll(rt, poll_receiver, &rx, NULL);
	s = urt_spawn_poll(rt, poll_sender, &tx, NULL);
	ASSERT_EQ(NULL, join_ok(s));
	ASSERT_EQ(NULL, join_ok(r));
	ASSERT_EQ(0, rx.err);
	ASSERT_EQ(3000L * 2999 / 2, rx.sum);
	ASSERT_EQ(0, urt_chan_destroy(ch));
	ASSERT_EQ(0, urt_destroy(rt));
}

TEST(poll_task_polled_again_and_again_while_pending_still_gets_its_element)
{
	urt_rt *rt = test_rt(1);
	urt_chan *ch = urt_chan_create(sizeof(int), 0);
	struct poll_io rx = { ch, 1, 0, 0, 0, 0, true };
	urt_task_t r;
	int zero = 0;

	ASSERT_NE(NULL, ch);
	r = urt_spawn_poll(rt, poll_receiver, &rx, NULL);
	usleep(30000);		/* it yields: polled over and over meanwhile */
	ASSERT_EQ(0, urt_chan_send(ch, &zero));
	ASSERT_EQ(NULL, join_ok(r));
	ASSERT_EQ(0, rx.err);
	ASSERT_EQ(1, rx.i);
	ASSERT_EQ(0, urt_chan_destroy(ch));	/* no registration left */
	ASSERT_EQ(0, urt_destroy(rt));
}

/*
 * Many poll tasks waiting on one channel: each finds (and drops) its own
 * registration in O(1), and every element reaches exactly one of them.
 */
#define MANY_POLLERS 20000

struct poll_one {
	urt_chan *ch;
	atomic_int *seen;
	int err;
	bool yield;
};

static enum urt_poll poll_recv_one(void *state, urt_cx *cx, void **result)
{
	struct poll_one *p = state;
	int v, err;

	if (urt_chan_poll_recv(p->ch, cx, &v, &err) == URT_PENDING) {
		if (p->yield)
			urt_cx_yield(cx);	/* polled again while registered */
		return URT_PENDING;
	}
	if (err)
		p->err = err;
	else if (v < 0 || v >= MANY_POLLERS)
		p->err = -ERANGE;
	else
		atomic_fetch_add(&p->seen[v], 1);
	*result = NULL;
	return URT_READY;
}

static enum urt_poll poll_send_one(void *state, urt_cx *cx, void **result)
{
	struct poll_one *p = state;
	int err, zero = 0;

	if (urt_chan_poll_send(p->ch, cx, &zero, &err) == URT_PENDING)
		return URT_PENDING;
	p->err = err;
	*result = NULL;
	return URT_READY;
}

static void *drain(void *arg)
{
	struct poll_one *p = arg;
	int v;

	for (int i = 0; i < MANY_POLLERS; i++)
		CHECK(urt_chan_recv(p->ch, &v) == 0 && v == 0);
	return NULL;
}

TEST(tens_of_thousands_of_poll_tasks_wait_on_one_channel)
{
	urt_rt *rt = test_rt(2);
	urt_chan *ch = urt_chan_create(sizeof(int), 0);
	urt_chan *bounded = urt_chan_create(sizeof(int), 1);
	struct poll_one *p = calloc(MANY_POLLERS, sizeof(*p));
	atomic_int *seen = calloc(MANY_POLLERS + 1, sizeof(*seen));
	urt_task_t *t = calloc(MANY_POLLERS, sizeof(*t));
	struct poll_one dp = { bounded, NULL, 0, false };
	urt_task_t d;

	ASSERT_NE(NULL, ch);
	ASSERT_NE(NULL, bounded);
	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, seen);
	ASSERT_NE(NULL, t);
	/* receivers: all register before the first element arrives */
	for (int i = 0; i < MANY_POLLERS; i++) {
		p[i] = (struct poll_one){ ch, seen + 1, 0, i % 7 == 0 };
		t[i] = urt_spawn_poll(rt, poll_recv_one, &p[i], NULL);
		ASSERT_NE(0, t[i].id);
	}
	usleep(20000);
	for (int i = 0; i < MANY_POLLERS; i++)
		ASSERT_EQ(0, urt_chan_send(ch, &i));
	for (int i = 0; i < MANY_POLLERS; i++)
		ASSERT_EQ(NULL, join_ok(t[i]));
	for (int i = 0; i < MANY_POLLERS; i++) {
		ASSERT_EQ(0, p[i].err);
		ASSERT_EQ(1, atomic_load(&seen[i + 1]));
	}
	ASSERT_EQ(0, urt_chan_destroy(ch));	/* no registration left */

	/* senders on a full channel of capacity 1, one fiber draining it */
	for (int i = 0; i < MANY_POLLERS; i++) {
		p[i] = (struct poll_one){ bounded, seen + 1, 0, false };
		t[i] = urt_spawn_poll(rt, poll_send_one, &p[i], NULL);
		ASSERT_NE(0, t[i].id);
	}
	usleep(20000);
	d = urt_spawn(rt, drain, &dp);
	ASSERT_EQ(NULL, join_ok(d));
	for (int i = 0; i < MANY_POLLERS; i++) {
		ASSERT_EQ(NULL, join_ok(t[i]));
		ASSERT_EQ(0, p[i].err);
	}
	ASSERT_EQ(0, urt_chan_len(bounded));
	ASSERT_EQ(0, urt_chan_destroy(bounded));
	free(t);
	free(seen);
	free(p);
	ASSERT_EQ(0, urt_destroy(rt));
}

struct eperm {
	urt_chan *ch;
	int r[4];
};

static enum urt_poll poll_blocking_calls(void *state, urt_cx *cx, void **result)
{
	struct eperm *e = state;
	struct urt_select_case c = { e->ch, URT_SELECT_RECV, &e->r[3] };
	int v = 0;

	e->r[0] = urt_chan_recv(e->ch, &v);
	e->r[1] = urt_chan_send(e->ch, &v);
	e->r[2] = urt_select(&c, 1, URT_FOREVER);
	e->r[3] = urt_chan_try_send(e->ch, &v);	/* never waits: allowed */
	*result = NULL;
	return URT_READY;
}

TEST(waiting_calls_from_a_poll_task_return_eperm)
{
	urt_rt *rt = test_rt(1);
	struct eperm e = { urt_chan_create(sizeof(int), 1), { 1, 1, 1, 1 } };

	ASSERT_EQ(NULL, join_ok(urt_spawn_poll(rt, poll_blocking_calls, &e, NULL)));
	EXPECT_EQ(-EPERM, e.r[0]);
	EXPECT_EQ(-EPERM, e.r[1]);
	EXPECT_EQ(-EPERM, e.r[2]);
	EXPECT_EQ(0, e.r[3]);
	ASSERT_EQ(0, urt_chan_destroy(e.ch));
	ASSERT_EQ(0, urt_destroy(rt));
}

/* ------------------------------------------------------------ ping-pong */

struct pp {
	urt_chan *ping, *pong;
	int n;
};

static void *pp_echo(void *arg)
{
	struct pp *p = arg;
	int v;

	while (urt_chan_recv(p->ping, &v) == 0)
		CHECK(urt_chan_send(p->pong, &v) == 0);
	return NULL;
}

static void *pp_driver(void *arg)
{
	struct pp *p = arg;
	int v;

	for (int i = 0; i < p->n; i++) {
		CHECK(urt_chan_send(p->ping, &i) == 0);
		CHECK(urt_chan_recv(p->pong, &v) == 0);
		CHECK(v == i);
	}
	urt_chan_close(p->ping);
	return NULL;
}

static void ping_pong(struct __test_metadata *_metadata, unsigned int workers)
{
	urt_rt *rt = test_rt(workers);
	struct pp p = { urt_chan_create(sizeof(int), 1), urt_chan_create(sizeof(int), 1), 20000 };
	urt_task_t a, b;
	int64_t t0 = urt_now();

	a = urt_spawn(rt, pp_echo, &p);
	b = urt_spawn(rt, pp_driver, &p);
	ASSERT_EQ(NULL, join_ok(b));
	ASSERT_EQ(NULL, join_ok(a));
	TH_LOG("ping-pong, %u worker(s): %lld ns per round trip", workers,
	       (long long)((urt_now() - t0) / p.n));
	ASSERT_EQ(0, urt_chan_destroy(p.ping));
	ASSERT_EQ(0, urt_chan_destroy(p.pong));
	ASSERT_EQ(0, urt_destroy(rt));
}

TEST(ping_pong_between_two_fibers_completes)
{
	ping_pong(_metadata, 1);
	ping_pong(_metadata, 2);
}

TEST_HARNESS_MAIN
