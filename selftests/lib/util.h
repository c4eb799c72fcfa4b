/* SPDX-License-Identifier: MIT */
/* Helpers shared by liburt's selftests. Include after kselftest_harness.h. */
#ifndef URT_SELFTEST_UTIL_H
#define URT_SELFTEST_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "urt.h"

/* Creates a runtime with `workers` slots; the test fails if it cannot. */
static inline urt_rt *test_rt(unsigned int workers)
{
	struct urt_config cfg;
	urt_rt *rt = NULL;
	int err;

	urt_config_init(&cfg);
	cfg.workers = workers;
	err = urt_create(&rt, &cfg);
	if (err) {
		fprintf(stderr, "urt_create: %s\n", strerror(-err));
		abort();
	}
	return rt;
}

/* Spawns fn(arg) as a fiber on a new runtime, joins it, destroys the runtime. */
static inline intptr_t run_fiber(unsigned int workers, urt_fiber_fn fn, void *arg)
{
	urt_rt *rt = test_rt(workers);
	void *res = NULL;
	urt_task_t t = urt_spawn(rt, fn, arg);
	int err;

	if (!t.id)
		abort();
	err = urt_join(t, &res);
	if (err) {
		fprintf(stderr, "urt_join: %s\n", strerror(-err));
		abort();
	}
	if (urt_destroy(rt))
		abort();
	return (intptr_t)res;
}

/*
 * From a fiber: spawns fn((void *)i) for i in [0, n), joins them all and
 * returns the sum of their results; -1 if a spawn failed, -2 a join.
 */
static inline intptr_t spawn_join_sum(urt_fiber_fn fn, intptr_t n)
{
	urt_task_t *t = calloc(n, sizeof(*t));
	intptr_t sum = 0, err = 0;

	if (!t)
		return -1;
	for (intptr_t i = 0; i < n && !err; i++) {
		t[i] = urt_spawn(NULL, fn, (void *)i);
		if (!t[i].id)
			err = -1;
	}
	for (intptr_t i = 0; i < n; i++) {
		void *r;

		if (!t[i].id)
			continue;
		if (urt_join(t[i], &r))
			err = -2;
		sum += (intptr_t)r;
	}
	free(t);
	return err ? err : sum;
}

/* Slows a deadline for slow machines/sanitizers: tests never assert tight timing. */
#define MS(x) ((int64_t)(x) * 1000000LL)

#endif
