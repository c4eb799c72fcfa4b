// SPDX-License-Identifier: MIT
/*
 * multirt.c - a program with several urt runtimes, for the tool tests:
 * the tools must follow every runtime of a process, also ones created
 * (and destroyed, and created again) while they record.
 *
 *   multirt [-s SECONDS]
 *
 * Runtime "rtA" (1 worker) runs from the start: task "blockA" blocks its
 * worker in read() on a pipe that a plain thread fills every 30 ms.
 * Prints "ready PID"; on SIGUSR1 (the tool is attached) it creates
 * runtime "rtB": task "blockB" blocks in poll() for 30 ms, over and over;
 * 0.5 s later destroys rtB and creates "rtC": task "blockC" blocks in
 * nanosleep() for 30 ms; 0.5 s later destroys rtC. rtA runs until
 * SECONDS (default 5) have passed since the start; prints "done".
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <urt.h>

static int pipefd[2];
static volatile int stop_writer;
static volatile sig_atomic_t go;

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static void *writer(void *arg)
{
	char c = 'x';

	while (!stop_writer) {
		sleep_ms(30);
		if (write(pipefd[1], &c, 1) != 1)
			break;
	}
	return arg;
}

/* Each blocker runs until its runtime is destroyed (cancelled) or the
 * deadline passes; urt_sleep between blocks is the cancellation point. */
static int64_t end_ns;

static void *block_a(void *arg)
{
	char c;

	while (urt_now() < end_ns) {
		if (read(pipefd[0], &c, 1) != 1)	/* the worker blocks ~30 ms */
			break;
		if (urt_sleep(1000000))
			break;
	}
	return arg;
}

static void *block_b(void *arg)
{
	while (urt_now() < end_ns) {
		poll(NULL, 0, 30);		/* the worker blocks 30 ms */
		if (urt_sleep(1000000))
			break;
	}
	return arg;
}

static void *block_c(void *arg)
{
	while (urt_now() < end_ns) {
		sleep_ms(30);			/* the worker blocks 30 ms */
		if (urt_sleep(1000000))
			break;
	}
	return arg;
}

static urt_rt *start(const char *name, const char *task, urt_fiber_fn fn)
{
	struct urt_config cfg;
	struct urt_spawn_opts o = { .name = task, .detached = true };
	urt_rt *rt;
	char err[200];

	urt_config_init(&cfg);
	cfg.workers = 1;
	cfg.name = name;
	if (urt_config_from_env(&cfg, err, sizeof(err))) {
		fprintf(stderr, "multirt: %s\n", err);
		exit(1);
	}
	cfg.workers = 1;
	if (urt_create(&rt, &cfg)) {
		fprintf(stderr, "multirt: urt_create %s failed\n", name);
		exit(1);
	}
	errno = 0;
	urt_spawn_opts(rt, fn, NULL, &o);
	if (errno) {
		fprintf(stderr, "multirt: spawn %s failed\n", task);
		exit(1);
	}
	return rt;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	double secs = 5;
	urt_rt *a, *b;
	pthread_t wt;
	int opt;

	while ((opt = getopt(argc, argv, "s:")) != -1) {
		if (opt != 's')
			return 2;
		secs = atof(optarg);
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	if (pipe(pipefd))
		return 1;
	pthread_create(&wt, NULL, writer, NULL);
	end_ns = urt_now() + (int64_t)(secs * 1e9);
	a = start("rtA", "blockA", block_a);
	printf("ready %d\n", getpid());
	fflush(stdout);

	while (!go && urt_now() < end_ns)
		sleep_ms(10);
	if (go) {
		b = start("rtB", "blockB", block_b);
		sleep_ms(500);
		urt_destroy(b);
		b = start("rtC", "blockC", block_c);	/* destroyed and created again */
		sleep_ms(500);
		urt_destroy(b);
		printf("phases done\n");
		fflush(stdout);
	}
	while (urt_now() < end_ns)
		sleep_ms(10);
	urt_destroy(a);
	stop_writer = 1;
	pthread_join(wt, NULL);
	close(pipefd[0]);
	close(pipefd[1]);
	printf("done\n");
	return 0;
}
