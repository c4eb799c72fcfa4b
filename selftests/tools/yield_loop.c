// SPDX-License-Identifier: MIT
/*
 * yield_loop.c - the hot path alone: one fiber yields N times on one slot.
 * For instruction counts with and without trace hooks:
 *   URT_WORKERS=1 URT_MONITOR=off valgrind --tool=callgrind yield_loop 200000
 * (subtract a run with a smaller N: the difference / delta N is the cost
 * of one yield: a step stop, a queue push/pop and a step run).
 */
#include <stdio.h>
#include <stdlib.h>
#include <urt.h>

static void *yielder(void *arg)
{
	long n = (long)arg;

	for (long i = 0; i < n; i++)
		urt_yield();
	return NULL;
}

static int app(void *arg)
{
	urt_task_t t = urt_spawn(NULL, yielder, arg);

	return urt_join(t, NULL);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;

	return urt_main(NULL, app, (void *)n) ? 1 : 0;
}
