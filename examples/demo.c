// SPDX-License-Identifier: MIT
/*
 * demo - urt at work.
 *
 * Part 1: many tasks on several workers. A pipeline of fibers (producers ->
 * channel -> workers -> channel -> collector) with timers, showing which
 * slots ran what.
 *
 * Part 2: the problem urt exists for. One slot; a task calls blocking code
 * (a read() on a pipe that stays empty for 100 ms) while short tasks are
 * queued behind it. Without kernel help every one of them waits for the
 * read: their completion time is ~100 ms instead of ~10 ms.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "urt.h"

#define PRODUCERS	8
#define ITEMS		2000
#define WORKERS		16

struct pipeline {
	urt_chan *jobs, *results;
	unsigned long per_slot[64];
};

static void *producer(void *arg)
{
	struct pipeline *p = arg;

	for (int i = 0; i < ITEMS; i++) {
		int v = i;

		if (urt_chan_send(p->jobs, &v))
			return (void *)-1;
		if (i % 500 == 0)
			urt_sleep(1000000);	/* 1 ms: timers interleave with work */
	}
	return NULL;
}

static void *worker(void *arg)
{
	struct pipeline *p = arg;
	int v;

	while (urt_chan_recv(p->jobs, &v) == 0) {
		long sq = (long)v * v;
		int slot = urt_self_slot();

		if (slot >= 0 && slot < 64)
			__atomic_fetch_add(&p->per_slot[slot], 1, __ATOMIC_RELAXED);
		if (urt_chan_send(p->results, &sq))
			break;
	}
	return NULL;
}

static int part1(void)
{
	struct pipeline p = { 0 };
	urt_task_t prod[PRODUCERS], work[WORKERS];
	long total = 0, expect = 0, sq;
	int64_t t0 = urt_now();
	struct urt_stats st;

	p.jobs = urt_chan_create(sizeof(int), 64);
	p.results = urt_chan_create(sizeof(long), 64);
	for (int i = 0; i < PRODUCERS; i++)
		prod[i] = urt_spawn(NULL, producer, &p);
	for (int i = 0; i < WORKERS; i++)
		work[i] = urt_spawn(NULL, worker, &p);
	for (int i = 0; i < PRODUCERS * ITEMS; i++) {
		if (urt_chan_recv(p.results, &sq))
			return 1;
		total += sq;
	}
	for (int i = 0; i < PRODUCERS; i++)
		urt_join(prod[i], NULL);
	urt_chan_close(p.jobs);
	for (int i = 0; i < WORKERS; i++)
		urt_join(work[i], NULL);
	for (long i = 0; i < ITEMS; i++)
		expect += i * i;
	expect *= PRODUCERS;

	urt_stats(urt_current(), &st);
	printf("part 1: %d producers -> %d worker fibers -> collector, %d items in %.1f ms\n",
	       PRODUCERS, WORKERS, PRODUCERS * ITEMS, (urt_now() - t0) / 1e6);
	printf("        checksum %s; tasks spawned %" PRIu64 ", steps run %" PRIu64
	       ", steals %" PRIu64 "\n", total == expect ? "ok" : "WRONG",
	       st.spawned, st.polls, st.steals);
	for (unsigned int s = 0; s < st.workers && s < 64; s++)
		printf("        slot %u handled %lu items\n", s, p.per_slot[s]);
	urt_chan_destroy(p.jobs);
	urt_chan_destroy(p.results);
	return total == expect ? 0 : 1;
}

/* ------------------------------------------------------------ part 2 */

struct starve {
	int pipe[2];
	int64_t start, last_done;
};

static void *blocker(void *arg)
{
	struct starve *s = arg;
	char c;

	/* Plain read(): blocking code that does not know about urt. */
	if (read(s->pipe[0], &c, 1) != 1)
		return (void *)-1;
	return NULL;
}

static void *short_task(void *arg)
{
	struct starve *s = arg;
	int64_t until = urt_now() + 100000;	/* 100 us of work */

	while (urt_now() < until)
		;
	__atomic_store_n(&s->last_done, urt_now(), __ATOMIC_RELAXED);
	return NULL;
}

static void *writer_thread(void *arg)
{
	struct starve *s = arg;

	usleep(100000);
	if (write(s->pipe[1], "x", 1) != 1)
		abort();
	return NULL;
}

static const char *syscall_name(int nr)
{
	switch (nr) {
	case SYS_read: return "in read()";
	case SYS_futex: return "in futex()";
	case SYS_clock_nanosleep: return "in clock_nanosleep()";
	case -1: return "running (a hog)";
	}
	return "in a syscall";
}

/* Runs the starvation scenario with one monitor backend; returns ms. */
static double starve_once(const char *monitor, int poll, int show)
{
	struct urt_config cfg;
	struct starve s = { 0 };
	struct urt_stats st;
	urt_task_t b, shorts[100];
	char why[256];
	pthread_t wt;
	urt_rt *rt;
	double ms;

	urt_config_init(&cfg);
	cfg.workers = 1;
	cfg.monitor = monitor;
	cfg.monitor_poll = poll;
	if (urt_create(&rt, &cfg))
		return -1;
	if (pipe(s.pipe))
		return -1;
	s.start = urt_now();
	pthread_create(&wt, NULL, writer_thread, &s);
	b = urt_spawn_opts(rt, blocker, &s, &(struct urt_spawn_opts){ .name = "blocker" });
	for (int i = 0; i < 100; i++)
		shorts[i] = urt_spawn(rt, short_task, &s);
	for (int i = 0; i < 100; i++)
		urt_join(shorts[i], NULL);
	urt_join(b, NULL);
	pthread_join(wt, NULL);
	ms = (s.last_done - s.start) / 1e6;
	urt_stats(rt, &st);
	if (show) {
		char name[32];

		snprintf(name, sizeof(name), "%s%s", urt_monitor_backend(rt, why, sizeof(why)),
			 poll ? "+poll" : "");
		printf("        monitor %-9s short tasks done after %6.1f ms; handoffs %" PRIu64
		       ", blocks seen %" PRIu64 ", hogs %" PRIu64 "\n", name, ms,
		       st.handoffs, st.blocks_seen, st.hogs);
		if (show > 1)
			printf("                      (%s)\n", why);
		if (st.handoffs) {
			struct urt_slot_stats ss;

			urt_slot_stats(rt, 0, &ss);
			printf("                          detected: task %llu '%s' stuck %s for %.2f ms"
			       " -> its slot went to a spare thread\n",
			       (unsigned long long)ss.last_task, ss.last_task_name,
			       syscall_name(ss.last_syscall), ss.last_stuck_ns / 1e6);
		}
	}
	close(s.pipe[0]);
	close(s.pipe[1]);
	urt_destroy(rt);
	return ms;
}

static int part2(void)
{
	/* The default, pollers on demand (a single block like this one goes
	 * the sleeping way); +poll: pollers whenever tasks run (URT_MONITOR_POLL=1) */
	static const struct { const char *name; int poll; } monitors[] = {
		{ "off", 0 }, { "proc", 0 }, { "bpf", 0 }, { "bpf", 1 }, { "kmod", 0 }, { "kmod", 1 },
	};

	printf("part 2: 1 slot, a task blocked in read() for 100 ms, 100 short tasks (10 ms of work)\n");
	for (size_t i = 0; i < sizeof(monitors) / sizeof(monitors[0]); i++) {
		struct urt_config cfg;
		urt_rt *rt;

		/* Only backends that can start here. */
		urt_config_init(&cfg);
		cfg.workers = 1;
		cfg.monitor = monitors[i].name;
		if (urt_create(&rt, &cfg)) {
			if (!monitors[i].poll)
				printf("        monitor %-9s not available here\n", monitors[i].name);
			continue;
		}
		urt_destroy(rt);
		starve_once(monitors[i].name, monitors[i].poll, 1);
	}
	return 0;
}

static int demo_main(void *arg)
{
	return part1();
}

int main(void)
{
	int r = urt_main(NULL, demo_main, NULL);

	if (r)
		return 1;
	return part2();
}
