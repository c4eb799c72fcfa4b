// SPDX-License-Identifier: MIT
/*
 * mon_bench - what the monitor costs and how fast it notices.
 *
 *   make build/bpf/mon_bench && sudo build/bpf/mon_bench [-n N] [-t THRESHOLD_US] [backend...]
 *
 * 1. switch cost (bpf backends): a pipe ping-pong between two threads,
 *    without a monitor, with the BPF program attached and nothing
 *    registered, and with both threads registered. Prints the round trip
 *    and the program's own run time per invocation (BPF_STATS_RUN_TIME).
 * 2. detection latency (every backend given, default proc bpf-timer
 *    bpf-tick, plus kmod if /dev/urt exists): a registered thread sleeps
 *    N times for threshold + 2 ms; the monitor thread's urt__mon_wait()
 *    returns at some time after since + threshold: that lateness, p50/p99,
 *    and the CPU time the monitor thread used per second.
 */
#include <bpf/bpf.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "monitor.h"

static int nblocks = 200;
static int64_t threshold = 50000;

static void sleep_ns(int64_t ns)
{
	struct timespec ts = { ns / 1000000000LL, ns % 1000000000LL };

	while (nanosleep(&ts, &ts))
		;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------ switch cost */

struct pp {
	int ab[2], ba[2];
	int iters;
	struct urt_mon *m;
	bool reg;
};

static void *pp_peer(void *arg)
{
	struct pp *p = arg;
	char c;

	if (p->reg && urt__mon_register(p->m, 1))
		abort();
	for (int i = 0; i < p->iters; i++) {
		if (read(p->ab[0], &c, 1) != 1 || write(p->ba[1], &c, 1) != 1)
			abort();
	}
	if (p->reg)
		urt__mon_unregister(p->m, 1);
	return NULL;
}

/* ns per round trip (two blocks, four context switches) */
static double pingpong(struct urt_mon *m, bool reg, int iters)
{
	struct pp p = { .iters = iters, .m = m, .reg = reg };
	pthread_t th;
	int64_t t0;
	char c = 0;

	if (pipe(p.ab) || pipe(p.ba))
		abort();
	if (reg && urt__mon_register(m, 0))
		abort();
	pthread_create(&th, NULL, pp_peer, &p);
	t0 = urt_now();
	for (int i = 0; i < iters; i++) {
		if (write(p.ab[1], &c, 1) != 1 || read(p.ba[0], &c, 1) != 1)
			abort();
	}
	t0 = urt_now() - t0;
	pthread_join(th, NULL);
	if (reg)
		urt__mon_unregister(m, 0);
	close(p.ab[0]), close(p.ab[1]), close(p.ba[0]), close(p.ba[1]);
	return (double)t0 / iters;
}

/* The first BPF program this process holds (the monitor's). */
static int own_prog_fd(void)
{
	DIR *d = opendir("/proc/self/fdinfo");
	struct dirent *de;
	int fd = -1;

	while (d && (de = readdir(d)) && fd < 0) {
		char path[300], line[256];
		unsigned int id;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/self/fdinfo/%s", de->d_name);
		f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "prog_id: %u", &id) == 1) {
				fd = bpf_prog_get_fd_by_id(id);
				break;
			}
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return fd;
}

static void prog_stats(int fd, uint64_t *ns, uint64_t *cnt)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);

	*ns = *cnt = 0;
	if (fd >= 0 && !bpf_obj_get_info_by_fd(fd, &info, &len)) {
		*ns = info.run_time_ns;
		*cnt = info.run_cnt;
	}
}

struct montick {
	struct urt_mon *m;
	atomic_bool stop;
};

/* The runtime's monitor thread: wait() in a loop (the tick runs in it). */
static void *monitor_main(void *arg)
{
	struct montick *mt = arg;
	struct urt_mon_event ev[4];

	while (!atomic_load(&mt->stop))
		urt__mon_wait(mt->m, 10000000, ev, 4);
	return NULL;
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Medians of 5 interleaved rounds: the host is shared and noisy. */
static void switch_cost(const char *which)
{
	int iters = 20000, sfd, pfd;
	uint64_t ns0, c0, ns1, c1, ns2, c2, idle_ns = 0, idle_c = 0, reg_ns = 0, reg_c = 0;
	double base[5], idle[5], reg[5];
	struct urt_mon *m;
	char why[256];

	if (urt__mon_open(&m, which, 4, threshold, why, sizeof(why))) {
		printf("%-10s switch cost: %s\n", which, why);
		return;
	}
	urt__mon_close(m);
	sfd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	for (int r = 0; r < 5; r++) {
		struct montick mt = {};
		pthread_t th;

		base[r] = pingpong(NULL, false, iters);
		urt__mon_open(&m, which, 4, threshold, why, sizeof(why));
		mt.m = m;
		pfd = own_prog_fd();
		prog_stats(pfd, &ns0, &c0);
		idle[r] = pingpong(m, false, iters);
		prog_stats(pfd, &ns1, &c1);
		pthread_create(&th, NULL, monitor_main, &mt);
		reg[r] = pingpong(m, true, iters);
		prog_stats(pfd, &ns2, &c2);
		atomic_store(&mt.stop, true);
		urt__mon_kick(m);
		pthread_join(th, NULL);
		idle_ns += ns1 - ns0, idle_c += c1 - c0;
		reg_ns += ns2 - ns1, reg_c += c2 - c1;
		if (pfd >= 0)
			close(pfd);
		urt__mon_close(m);
	}
	qsort(base, 5, sizeof(double), cmpd);
	qsort(idle, 5, sizeof(double), cmpd);
	qsort(reg, 5, sizeof(double), cmpd);
	printf("%-10s pipe round trip (median of 5): %.0f ns without, %.0f ns attached (x%.2f), "
	       "%.0f ns registered + monitor thread waiting (x%.2f)\n", which, base[2], idle[2],
	       idle[2] / base[2], reg[2], reg[2] / base[2]);
	if (sfd >= 0 && idle_c && reg_c)
		printf("%-10s program run time per switch: %.0f ns nothing registered, "
		       "%.0f ns both threads registered\n", which,
		       (double)idle_ns / idle_c, (double)reg_ns / reg_c);
	else
		printf("%-10s program run time: BPF_STATS_RUN_TIME unavailable\n", which);
	if (sfd >= 0)
		close(sfd);
}

/* ------------------------------------------------------------ latency */

struct blocker {
	struct urt_mon *m;
	atomic_bool done;
};

static void *blocker_main(void *arg)
{
	struct blocker *b = arg;

	if (urt__mon_register(b->m, 0))
		abort();
	for (int i = 0; i < nblocks; i++) {
		sleep_ns(threshold + 2000000);
		for (int64_t end = urt_now() + 1000000; urt_now() < end;)
			;	/* 1 ms running between blocks */
	}
	urt__mon_unregister(b->m, 0);
	atomic_store(&b->done, true);
	return NULL;
}

static void latency(const char *which)
{
	struct blocker b = {};
	struct urt_mon_event ev[4];
	int64_t *lat = calloc(nblocks * 2, sizeof(*lat)), t0, t1;
	int64_t *fire = calloc(nblocks * 2, sizeof(*fire));
	struct rusage r0, r1;
	pthread_t th;
	char why[256];
	int n = 0, k;

	if (urt__mon_open(&b.m, which, 4, threshold, why, sizeof(why))) {
		printf("%-10s latency: %s\n", which, why);
		free(lat);
		return;
	}
	getrusage(RUSAGE_THREAD, &r0);
	t0 = urt_now();
	pthread_create(&th, NULL, blocker_main, &b);
	while (!atomic_load(&b.done)) {
		k = urt__mon_wait(b.m, 10000000, ev, 4);
		for (int i = 0; i < k && n < nblocks * 2; i++) {
			/* time_ns: when the backend noticed (timer, tick) */
			fire[n] = ev[i].time_ns - (ev[i].since_ns + threshold);
			lat[n++] = urt_now() - (ev[i].since_ns + threshold);
		}
	}
	t1 = urt_now();
	getrusage(RUSAGE_THREAD, &r1);
	pthread_join(th, NULL);
	qsort(lat, n, sizeof(*lat), cmp64);
	qsort(fire, n, sizeof(*fire), cmp64);
	if (n)
		printf("%-10s the backend noticed after since+threshold: p50 %.1f us, "
		       "p99 %.1f us\n", which, fire[n / 2] / 1e3, fire[n * 99 / 100] / 1e3);
	if (n)
		printf("%-10s %d/%d blocks reported; wait() returned after since+threshold: "
		       "p50 %.1f us, p99 %.1f us, max %.1f us; monitor thread CPU %.2f%%\n",
		       which, n, nblocks, lat[n / 2] / 1e3, lat[n * 99 / 100] / 1e3,
		       lat[n - 1] / 1e3,
		       100.0 * ((r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1e9 +
				(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) * 1e3 +
				(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1e9 +
				(r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) * 1e3) / (t1 - t0));
	else
		printf("%-10s no block reported\n", which);
	urt__mon_close(b.m);
	free(lat);
	free(fire);
}

int main(int argc, char **argv)
{
	const char *def[] = { "proc", "bpf-timer", "bpf-tick", "kmod" };
	int opt;

	while ((opt = getopt(argc, argv, "n:t:h")) != -1) {
		switch (opt) {
		case 'n':
			nblocks = atoi(optarg);
			break;
		case 't':
			threshold = atoll(optarg) * 1000;
			break;
		default:
			fprintf(stderr, "usage: %s [-n blocks] [-t threshold_us] [backend...]\n",
				argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("threshold %lld us, %d blocks of threshold + 2 ms\n",
	       (long long)threshold / 1000, nblocks);
	if (optind < argc) {
		for (int i = optind; i < argc; i++) {
			if (!strncmp(argv[i], "bpf", 3))
				switch_cost(argv[i]);
			latency(argv[i]);
		}
		return 0;
	}
	switch_cost("bpf-timer");
	switch_cost("bpf-tick");
	for (size_t i = 0; i < sizeof(def) / sizeof(def[0]); i++)
		if (strcmp(def[i], "kmod") || !access("/dev/urt", F_OK))
			latency(def[i]);
	return 0;
}
