// SPDX-License-Identifier: MIT
/*
 * victim.c - a urt program with known behaviour, for the tool tests.
 *
 *   victim [-s SECONDS] [-w WORKERS] [block] [hog] [short] [hogq] [wake]
 *
 *   block  task "blocker": spawns 20 tasks "short" onto its own slot,
 *          then read() on a pipe that a plain thread fills 50 ms later,
 *          over and over (the worker blocks in read for ~50 ms each time,
 *          with those short tasks queued behind it: handoff). It queues
 *          them itself: a timer wake no longer runs it ahead of what is
 *          queued (LIFO slot), so tasks of "short" could all be done by
 *          the time it blocks
 *   hog    task "hog": spins 30 ms, sleeps 20 ms, over and over
 *   short  task "spawner": spawns batches of 200 tasks "short" (~20 us
 *          of work each) every 10 ms
 *   hogq   task "hogq": spawns 20 tasks "short" onto its own slot, then
 *          spins 40 ms without yielding (work queued behind a hog: past
 *          hog_threshold_ns the monitor hands the slot off, why "hog"),
 *          sleeps 20 ms, over and over
 *   wake   task "sleeper" waits on a semaphore that task "waker" releases
 *          every 2 ms and a plain thread every 5 ms: wake events from a
 *          task and from outside the runtime
 *
 * Default: block, hog and short, 1 worker, 3 s. Prints "ready" once the runtime
 * runs (the tools can attach) and "done" at the end.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <urt.h>

static int64_t end_ns;
static int pipefd[2];
static volatile int stop_writer;
static bool m_block, m_hog, m_short, m_hogq, m_wake;

static int64_t now(void)
{
	return urt_now();
}

static void spin_ns(int64_t ns)
{
	int64_t until = now() + ns;

	while (now() < until)
		;
}

static void *writer(void *arg)
{
	while (!stop_writer) {
		struct timespec ts = { 0, 50 * 1000000 };
		char c = 'x';

		nanosleep(&ts, NULL);
		if (write(pipefd[1], &c, 1) != 1)
			break;
	}
	return arg;
}

static void *short_task(void *arg);

/* n detached tasks named "short", queued on this worker */
static void spawn_shorts(int n)
{
	struct urt_spawn_opts o = { .name = "short", .detached = true };

	for (int i = 0; i < n; i++)
		urt_spawn_opts(NULL, short_task, NULL, &o);
}

static void *blocker(void *arg)
{
	char c;

	while (now() < end_ns) {
		spawn_shorts(20);	/* queued behind the block */
		/* the plain read(): blocks this worker ~50 ms */
		if (read(pipefd[0], &c, 1) != 1)
			break;
		urt_sleep(2000000);
	}
	return arg;
}

static void *hog(void *arg)
{
	while (now() < end_ns) {
		spin_ns(30000000);
		urt_sleep(20000000);
	}
	return arg;
}

static void *short_task(void *arg)
{
	spin_ns(20000);
	return arg;
}

static void *hogq(void *arg)
{

	while (now() < end_ns) {
		spawn_shorts(20);
		spin_ns(40000000);
		urt_sleep(20000000);
	}
	return arg;
}

static urt_sem *wake_sem;

/* Parks on the semaphore: each release wakes it (urt__task_wake). */
static void *sleeper(void *arg)
{
	while (now() < end_ns)
		urt_sem_acquire_timeout(wake_sem, 100000000);
	return arg;
}

static void *waker(void *arg)
{
	while (now() < end_ns) {
		urt_sem_release(wake_sem);
		urt_sleep(2000000);
	}
	return arg;
}

/* A plain thread releasing too: wakes from outside the runtime. */
static void *ext_waker(void *arg)
{
	while (!stop_writer) {
		struct timespec ts = { 0, 5 * 1000000 };

		nanosleep(&ts, NULL);
		urt_sem_release(wake_sem);
	}
	return arg;
}

static void *spawner(void *arg)
{

	while (now() < end_ns) {
		spawn_shorts(200);
		urt_sleep(10000000);
	}
	return arg;
}

static int app(void *arg)
{
	struct urt_spawn_opts ob = { .name = "blocker" }, oh = { .name = "hog" },
			      os = { .name = "spawner" }, oq = { .name = "hogq" },
			      osl = { .name = "sleeper" }, ow = { .name = "waker" };
	urt_task_t t[6];
	int n = 0;

	printf("ready %d\n", getpid());
	fflush(stdout);
	if (m_short)
		t[n++] = urt_spawn_opts(NULL, spawner, NULL, &os);
	if (m_block)
		t[n++] = urt_spawn_opts(NULL, blocker, NULL, &ob);
	if (m_hog)
		t[n++] = urt_spawn_opts(NULL, hog, NULL, &oh);
	if (m_hogq)
		t[n++] = urt_spawn_opts(NULL, hogq, NULL, &oq);
	if (m_wake) {
		t[n++] = urt_spawn_opts(NULL, sleeper, NULL, &osl);
		t[n++] = urt_spawn_opts(NULL, waker, NULL, &ow);
	}
	for (int i = 0; i < n; i++)
		urt_join(t[i], NULL);
	return 0;
}

int main(int argc, char **argv)
{
	struct urt_config cfg;
	double secs = 3;
	pthread_t wt, xt;
	int opt, rc;

	urt_config_init(&cfg);
	cfg.workers = 1;
	while ((opt = getopt(argc, argv, "s:w:")) != -1) {
		if (opt == 's')
			secs = atof(optarg);
		else if (opt == 'w')
			cfg.workers = (unsigned int)atoi(optarg);
		else
			return 2;
	}
	for (int i = optind; i < argc; i++) {
		if (!strcmp(argv[i], "block"))
			m_block = true;
		else if (!strcmp(argv[i], "hog"))
			m_hog = true;
		else if (!strcmp(argv[i], "short"))
			m_short = true;
		else if (!strcmp(argv[i], "hogq"))
			m_hogq = true;
		else if (!strcmp(argv[i], "wake"))
			m_wake = true;
		else
			return 2;
	}
	if (!m_block && !m_hog && !m_short && !m_hogq && !m_wake)
		m_block = m_hog = m_short = true;
	if (pipe(pipefd))
		return 1;
	wake_sem = urt_sem_create(0);
	if (!wake_sem)
		return 1;
	pthread_create(&wt, NULL, writer, NULL);
	if (m_wake)
		pthread_create(&xt, NULL, ext_waker, NULL);
	end_ns = now() + (int64_t)(secs * 1e9);
	rc = urt_main(&cfg, app, NULL);
	stop_writer = 1;
	pthread_join(wt, NULL);
	if (m_wake)
		pthread_join(xt, NULL);
	urt_sem_destroy(wake_sem);	/* before closing: no write to a closed pipe */
	close(pipefd[0]);
	printf("done\n");
	return rc ? 1 : 0;
}
