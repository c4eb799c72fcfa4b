// SPDX-License-Identifier: GPL-2.0
/*
 * kmod_cost THRESHOLD_NS ROUND_TRIPS: a registered worker (slot 0, CPU 0)
 * and an unregistered partner on the same CPU bounce a byte through two
 * pipes; each round trip is one block of the worker, so one sched_out and
 * one sched_in of urt.ko's notifier. kmod-cost.sh times those notifiers
 * with the function_graph tracer around this program.
 */
#include "urt_test.h"

int main(int argc, char **argv)
{
	struct urt_info info;
	struct worker w;
	unsigned int n;
	uint64_t thr, t0;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: %s THRESHOLD_NS ROUND_TRIPS\n", argv[0]);
		return 2;
	}
	thr = strtoull(argv[1], NULL, 0);
	n = (unsigned int)atoi(argv[2]);
	fd = urt_open();
	if (fd < 0 || !urt_map(fd, &info) || worker_start(&w, fd, 0, 0) ||
	    pingpong_start(&w) || urt_threshold(fd, thr, 0)) {
		perror("kmod_cost: set-up");
		return 1;
	}
	worker_do(&w, 'r', 500);	/* warm up */
	t0 = now_ns();
	worker_do(&w, 'r', n);
	printf("threshold %llu ns: %.0f ns per round trip\n",
	       (unsigned long long)thr, (double)(now_ns() - t0) / n);
	pingpong_stop(&w);
	w.unregister_at_exit = 1;
	worker_stop(&w);
	return 0;
}
