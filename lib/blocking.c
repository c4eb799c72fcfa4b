// SPDX-License-Identifier: MIT
/*
 * blocking.c - the blocking pool: threads for code that must block.
 *
 * A job is a task object of kind TK_BLOCKING, so it has a handle, a join and
 * a cancel like any task; it is never put on a run queue. Threads are made
 * on demand up to max_blocking, and an idle one exits after blocking_idle_ms.
 * Jobs queue when every thread is busy. Cancelling a queued job means it
 * never runs; a running one cannot be interrupted (it is blocking code).
 */
#include <stdlib.h>
#include <time.h>

#include "rt.h"

struct urt_blocking_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;		/* work or shutdown */
	pthread_cond_t gone;		/* a thread exited */
	struct urt_task *head, *tail;
	unsigned int nthreads, nidle;
	bool shutdown;
};

int urt__blocking_create(struct urt_rt *rt)
{
	struct urt_blocking_pool *p = calloc(1, sizeof(*p));
	pthread_condattr_t ca;

	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_cond_init(&p->gone, &ca);
	pthread_condattr_destroy(&ca);
	rt->blocking = p;
	return 0;
}

void urt__blocking_destroy(struct urt_rt *rt)
{
	struct urt_blocking_pool *p = rt->blocking;

	pthread_mutex_lock(&p->mu);
	p->shutdown = true;
	pthread_cond_broadcast(&p->cv);
	while (p->nthreads)
		pthread_cond_wait(&p->gone, &p->mu);
	pthread_mutex_unlock(&p->mu);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	pthread_cond_destroy(&p->gone);
	free(p);
	rt->blocking = NULL;
}

uint64_t urt__blocking_threads(struct urt_rt *rt)
{
	struct urt_blocking_pool *p = rt->blocking;
	unsigned int n;

	pthread_mutex_lock(&p->mu);
	n = p->nthreads;
	pthread_mutex_unlock(&p->mu);
	return n;
}

static void *blocking_main(void *arg)
{
	struct urt_rt *rt = arg;
	struct urt_blocking_pool *p = rt->blocking;

	urt__set_current_rt(rt);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct urt_task *t = p->head;

		if (!t) {
			struct timespec ts;
			int64_t d = urt_now() + (int64_t)rt->cfg.blocking_idle_ms * 1000000;

			if (p->shutdown)
				break;
			ts.tv_sec = d / 1000000000LL;
			ts.tv_nsec = d % 1000000000LL;
			p->nidle++;
			int r = pthread_cond_timedwait(&p->cv, &p->mu, &ts);
			p->nidle--;
			if (r && !p->head)
				break;	/* idle too long */
			continue;
		}
		p->head = t->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->mu);

		if (!(atomic_fetch_or(&t->state, TS_RUNNING) & TS_CANCEL))
			t->result = t->fn(t->arg);
		urt__task_complete(t);

		pthread_mutex_lock(&p->mu);
	}
	p->nthreads--;
	pthread_cond_broadcast(&p->gone);
	pthread_mutex_unlock(&p->mu);
	urt__set_current_rt(NULL);
	return NULL;
}

urt_task_t urt_spawn_blocking(urt_rt *rt, urt_fiber_fn fn, void *arg)
{
	struct urt_blocking_pool *p;
	urt_task_t h;
	struct urt_task *t;
	pthread_t th;
	pthread_attr_t attr;

	h = urt__spawn(rt, TK_BLOCKING, (void *)fn, arg, NULL);
	if (!h.id)
		return h;
	t = h.p;
	p = t->rt->blocking;
	pthread_mutex_lock(&p->mu);
	t->next = NULL;
	if (p->tail)
		p->tail->next = t;
	else
		p->head = t;
	p->tail = t;
	if (p->nidle == 0 && p->nthreads < t->rt->cfg.max_blocking) {
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&th, &attr, blocking_main, t->rt) == 0)
			p->nthreads++;
		pthread_attr_destroy(&attr);
		/* If no thread could be made, the job waits for a busy one. */
		if (p->nthreads == 0) {
			p->head = p->tail = NULL;
			pthread_mutex_unlock(&p->mu);
			urt__task_complete(t);	/* ends it: the handle joins -EAGAIN */
			t->err = -EAGAIN;
			return h;
		}
	} else {
		pthread_cond_signal(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return h;
}
