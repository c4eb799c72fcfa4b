// SPDX-License-Identifier: MIT
/* runtime.c - creating, tearing down and entering a runtime. */
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "rt.h"
#include "trace.h"

static void rt_free(struct urt_rt *rt)
{
	if (rt->blocking)
		urt__blocking_destroy(rt);
	urt__monitor_free(rt);
	URT_TRACE_RT_FINI(rt);
	urt__stacks_free(rt);
	urt__tasks_free(rt);
	if (rt->reactor)
		urt__reactor_destroy(rt->reactor);
	if (rt->event_fd >= 0)
		close(rt->event_fd);
	if (rt->wheel)
		urt__wheel_destroy(rt);
	free(rt->idle.sleepers);
	free(rt->spares);
	free(rt->workers);
	free(rt->slots);
	free(rt);
}

int urt_create(urt_rt **out, const struct urt_config *cfg)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	struct urt_rt *rt;
	size_t slots_size;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	/* A runtime run from a task would block that task's worker. */
	if (urt__current_task() || urt__worker())
		return -EDEADLK;
	rt = calloc(1, sizeof(*rt));
	if (!rt)
		return -ENOMEM;
	rt->event_fd = -1;
	if (cfg)
		rt->cfg = *cfg;
	err = urt__config_resolve(&rt->cfg);
	if (err) {
		free(rt);
		return err;
	}
	rt->nslots = rt->cfg.workers;
	rt->nworkers = rt->nslots + rt->cfg.max_spares;
	if (sched_getaffinity(0, sizeof(rt->cpus), &rt->cpus))
		CPU_ZERO(&rt->cpus);
	rt->stack_size = (rt->cfg.stack_size + 4095) & ~(size_t)4095;
	atomic_init(&rt->next_id, 1);
	atomic_init(&rt->driver_until, URT_FOREVER);

	err = -ENOMEM;
	slots_size = ((rt->nslots * sizeof(struct urt_slot)) + CACHELINE - 1) & ~(size_t)(CACHELINE - 1);
	rt->slots = aligned_alloc(CACHELINE, slots_size);
	rt->workers = calloc(rt->nworkers, sizeof(*rt->workers));
	rt->idle.sleepers = calloc(rt->nslots, sizeof(int));
	rt->spares = calloc(rt->nworkers, sizeof(int));
	if (!rt->slots || !rt->workers || !rt->idle.sleepers || !rt->spares)
		goto fail;
	memset(rt->slots, 0, slots_size);
	for (unsigned int i = 0; i < rt->nworkers; i++) {
		struct urt_worker *w = &rt->workers[i];

		w->rt = rt;
		w->index = (int)i;
	}
	for (unsigned int i = 0; i < rt->nslots; i++) {
		struct urt_slot *s = &rt->slots[i];
		struct urt_worker *w = &rt->workers[i];

		urt__lq_init(&s->q);
		s->index = (int)i;
		s->rng = 0x9e3779b9u * (i + 1);
		s->gq_countdown = rt->cfg.global_queue_interval;
		s->ev_countdown = rt->cfg.event_interval;
		atomic_init(&s->owner, (uintptr_t)w);
		atomic_init(&s->park_state, PARK_EMPTY);
		w->slot = s;
	}
	err = urt__wheel_create(rt);
	if (err)
		goto fail;
	rt->reactor = urt__reactor_create();
	if (!rt->reactor) {
		err = -errno;
		goto fail;
	}
	rt->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (rt->event_fd < 0 ||
	    epoll_ctl(urt__reactor_epfd(rt->reactor), EPOLL_CTL_ADD, rt->event_fd, &ev)) {
		err = -errno;
		goto fail;
	}
	err = urt__blocking_create(rt);
	if (err)
		goto fail;
	err = URT_TRACE_RT_INIT(rt);
	if (err)
		goto fail;
	err = urt__monitor_start(rt);
	if (err)
		goto fail;
	err = urt__workers_start(rt);
	if (err) {
		urt__monitor_stop(rt);
		goto fail;
	}
	*out = rt;
	return 0;
fail:
	rt_free(rt);
	return err;
}

int urt_destroy(urt_rt *rt)
{
	if (!rt)
		return -EINVAL;
	if (urt__current_task() || urt__worker())
		return -EDEADLK;
	atomic_store_explicit(&rt->shutdown, true, memory_order_seq_cst);
	/* Cancel until nothing is left: a task may be mid-spawn right now. */
	while (urt__live_tasks(rt)) {
		struct timespec ts = { 0, 1000000 };

		urt__cancel_all(rt);
		nanosleep(&ts, NULL);
	}
	urt__monitor_stop(rt);
	urt__workers_stop(rt);
	rt_free(rt);
	return 0;
}

struct main_arg {
	int (*fn)(void *);
	void *arg;
};

static void *main_fiber(void *p)
{
	struct main_arg *m = p;

	return (void *)(intptr_t)m->fn(m->arg);
}

int urt_main(const struct urt_config *cfg, int (*fn)(void *), void *arg)
{
	struct urt_config c;
	struct main_arg m = { fn, arg };
	char err[160];
	urt_rt *rt;
	void *res = NULL;
	urt_task_t t;
	int r;

	if (!fn)
		return -EINVAL;
	if (cfg)
		c = *cfg;
	else
		urt_config_init(&c);
	r = urt_config_from_env(&c, err, sizeof(err));
	if (r) {
		fprintf(stderr, "%s\n", err);
		return r;
	}
	r = urt_create(&rt, &c);
	if (r) {
		fprintf(stderr, "urt: cannot start the runtime: %s\n", urt_strerror(r));
		return r;
	}
	t = urt_spawn_opts(rt, main_fiber, &m, &(struct urt_spawn_opts){ .name = "main" });
	if (!t.id) {
		r = -errno;
		urt_destroy(rt);
		return r;
	}
	r = urt_join(t, &res);
	urt_destroy(rt);
	return r ? r : (int)(intptr_t)res;
}

int urt_stats(urt_rt *rt, struct urt_stats *out)
{
	if (!rt || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->spawned = atomic_load(&rt->foreign_spawned);
	out->completed = atomic_load(&rt->foreign_completed);
	for (unsigned int i = 0; i < rt->nworkers; i++) {
		struct urt_worker *w = &rt->workers[i];

		out->spawned += atomic_load_explicit(&w->spawned, memory_order_relaxed);
		out->completed += atomic_load_explicit(&w->completed, memory_order_relaxed);
		out->polls += atomic_load_explicit(&w->polls, memory_order_relaxed);
		out->steals += atomic_load_explicit(&w->steals, memory_order_relaxed);
		out->parks += atomic_load_explicit(&w->parks, memory_order_relaxed);
		out->hog_yields += atomic_load_explicit(&w->hog_yields, memory_order_relaxed);
	}
	for (unsigned int i = 0; i < rt->nslots; i++) {
		struct urt_slot *s = &rt->slots[i];

		out->handoffs += atomic_load_explicit(&s->handoffs, memory_order_relaxed);
		out->hogs += atomic_load_explicit(&s->hogs, memory_order_relaxed);
		out->blocks_seen += atomic_load_explicit(&s->blocks_seen, memory_order_relaxed);
		out->poll_handoffs += atomic_load_explicit(&s->polled, memory_order_relaxed);
		out->unstacks += atomic_load_explicit(&s->unstacks, memory_order_relaxed);
	}
	out->blocking_threads = urt__blocking_threads(rt);
	out->workers = rt->nslots;
	return 0;
}
