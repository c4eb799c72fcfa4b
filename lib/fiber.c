// SPDX-License-Identifier: MIT
/*
 * fiber.c - fiber stacks and switches.
 *
 * A fiber is a task with its own stack. Stacks are mmap'd with a PROT_NONE
 * guard page below them and pooled (per worker, then per runtime), so a
 * spawn/exit cycle costs no system call once the pool is warm. A stack is
 * attached at the fiber's first run, not at spawn: a million spawned but
 * not yet started fibers cost a million task objects, not a million stacks.
 *
 * A stack overflow runs into the guard page; a SIGSEGV handler on an
 * alternate signal stack recognises the address and aborts with the task's
 * id and name instead of corrupting the neighbouring memory silently.
 *
 * Sanitizers: AddressSanitizer and ThreadSanitizer must be told about every
 * switch (__sanitizer_{start,finish}_switch_fiber, __tsan_switch_to_fiber),
 * or they report false positives and lose track of stacks.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rt.h"

#ifdef URT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef URT_TSAN
#include <sanitizer/tsan_interface.h>
#endif

void urt__ctx_switch(void **save_sp, void *load_sp) URT_HIDDEN;
void urt__ctx_entry(void) URT_HIDDEN;

/*
 * Pool sizes: a timer-heavy program keeps thousands of fibers coming and
 * going; unmapping and re-faulting their stacks would dominate. Each
 * worker keeps a small hot cache (no lock); the runtime's pool keeps
 * STACK_CACHE_RT stacks for good and, above that, every stack given back,
 * as long as it is used again: once a second (checked when stacks are
 * given back) the pool unmaps as many as it never dipped into since the
 * last check (its low-water mark). So a program that keeps 10,000 fibers
 * coming and going keeps their stacks, and one that had a burst gives
 * the memory back a second or two later.
 */
#define STACK_CACHE_WORKER	64
#define STACK_CACHE_RT		1024
#define STACK_TRIM_NS		1000000000LL

static size_t page_size(void)
{
	static atomic_size_t ps;
	size_t v = atomic_load_explicit(&ps, memory_order_relaxed);

	if (!v) {
		v = (size_t)sysconf(_SC_PAGESIZE);
		atomic_store_explicit(&ps, v, memory_order_relaxed);
	}
	return v;
}

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

/*
 * Makes the page at p a guard page. Linux >= 6.13 installs guard markers
 * without splitting the mapping; mprotect() splits it in two, and with
 * vm.max_map_count (65530) that caps a process at ~32k live fibers.
 */
static int guard_page(void *p, size_t ps)
{
	static atomic_int no_guard_madvise;

	if (!atomic_load_explicit(&no_guard_madvise, memory_order_relaxed)) {
		if (madvise(p, ps, MADV_GUARD_INSTALL) == 0)
			return 0;
		atomic_store_explicit(&no_guard_madvise, 1, memory_order_relaxed);
	}
	return mprotect(p, ps, PROT_NONE);
}

static struct urt_stack *stack_map(size_t size)
{
	size_t ps = page_size();
	size_t map_size = ((size + ps - 1) & ~(ps - 1)) + ps;
	struct urt_stack *s;
	char *base;

	base = mmap(NULL, map_size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (base == MAP_FAILED)
		return NULL;
	if (guard_page(base, ps)) {
		munmap(base, map_size);
		return NULL;
	}
	/* The descriptor lives at the top of its own stack. */
	s = (struct urt_stack *)(base + map_size - sizeof(*s));
	s->lo = base + ps;
	s->size = (size_t)((char *)s - s->lo) & ~(size_t)15;
	s->map_size = map_size;
	s->next = NULL;
	return s;
}

static void stack_unmap(struct urt_stack *s)
{
	munmap(s->lo - page_size(), s->map_size);
}

static struct urt_stack *stack_get(struct urt_worker *w, struct urt_rt *rt, size_t size)
{
	struct urt_stack *s = NULL;

	if (size != rt->stack_size)
		return stack_map(size);	/* not pooled */
	if (w && w->stack_cache) {
		s = w->stack_cache;
		w->stack_cache = s->next;
		w->nstack_cache--;
		return s;
	}
	urt__spin_lock(&rt->slab_lock);
	if (rt->stack_free) {
		s = rt->stack_free;
		rt->stack_free = s->next;
		if (--rt->nstack_free < rt->nstack_low)
			rt->nstack_low = rt->nstack_free;
	}
	urt__spin_unlock(&rt->slab_lock);
	if (!s && (s = stack_map(size)))
		s->pooled = true;
	return s;
}

/*
 * Under slab_lock, with the pool above STACK_CACHE_RT: once a second,
 * takes out the stacks the pool never dipped into since the last time
 * (the caller unmaps them after the unlock).
 */
static struct urt_stack *stack_trim_locked(struct urt_rt *rt)
{
	struct urt_stack *out = NULL, *s;
	int64_t now = urt_now();
	unsigned int n;

	if (now < rt->stack_trim_at)
		return NULL;
	n = rt->nstack_low;
	if (n > rt->nstack_free - STACK_CACHE_RT)
		n = rt->nstack_free - STACK_CACHE_RT;
	while (n--) {
		s = rt->stack_free;
		rt->stack_free = s->next;
		rt->nstack_free--;
		s->next = out;
		out = s;
	}
	rt->nstack_low = rt->nstack_free;
	rt->stack_trim_at = now + STACK_TRIM_NS;
	return out;
}

static void stack_put(struct urt_worker *w, struct urt_rt *rt, struct urt_stack *s)
{
#ifdef URT_ASAN
	/* A dead fiber leaves poisoned frames behind; the next one must not trip on them. */
	ASAN_UNPOISON_MEMORY_REGION(s->lo, s->size);
#endif
	if (!s->pooled) {
		stack_unmap(s);
		return;
	}
	if (w && w->nstack_cache < STACK_CACHE_WORKER) {
		s->next = w->stack_cache;
		w->stack_cache = s;
		w->nstack_cache++;
		return;
	}
	urt__spin_lock(&rt->slab_lock);
	s->next = rt->stack_free;
	rt->stack_free = s;
	s = ++rt->nstack_free > STACK_CACHE_RT ? stack_trim_locked(rt) : NULL;
	urt__spin_unlock(&rt->slab_lock);
	while (s) {
		struct urt_stack *next = s->next;

		stack_unmap(s);
		s = next;
	}
}

void urt__stacks_free(struct urt_rt *rt)
{
	for (unsigned int i = 0; i < rt->nworkers; i++) {
		struct urt_worker *w = &rt->workers[i];

		while (w->stack_cache) {
			struct urt_stack *s = w->stack_cache;

			w->stack_cache = s->next;
			stack_unmap(s);
		}
		w->nstack_cache = 0;
	}
	while (rt->stack_free) {
		struct urt_stack *s = rt->stack_free;

		rt->stack_free = s->next;
		stack_unmap(s);
	}
	rt->nstack_free = 0;
}

/* ------------------------------------------------------------ switching */

/*
 * The scheduler switches into a fiber with urt__fiber_resume. A fiber
 * that suspends or finishes switches straight to the next local fiber
 * when there is one (urt__step_next, task.c: one switch instead of two,
 * and no trip through the scheduler's loop), else back to the scheduler.
 * A direct switch leaves the old fiber's step end in w->prev_step, and the
 * new context runs it first thing (after_switch): only then is the old
 * context saved, so only then may it be queued, resumed elsewhere or
 * have its stack freed.
 */

static void fiber_main(void *arg) __attribute__((noreturn));

/* First thing on the stack just switched to (t is the fiber now running). */
static void after_switch(struct urt_task *t)
{
	struct urt_worker *w = urt__worker();

#ifdef URT_ASAN
	{
		const void *bottom;
		size_t size;

		__sanitizer_finish_switch_fiber(t->asan_fake, &bottom, &size);
		if (!w->prev_step) {
			/* Resumed by the scheduler: its stack is where we return. */
			w->asan_bottom = bottom;
			w->asan_size = size;
		}
	}
#endif
	(void)t;
	if (w->prev_step)
		urt__step_after_switch(w);
}

static void switch_out(struct urt_task *t, bool last)
{
	struct urt_worker *w = urt__worker();
	struct urt_task *next = urt__step_next(w, t);

	if (next) {
#ifdef URT_ASAN
		__sanitizer_start_switch_fiber(last ? NULL : &t->asan_fake,
					       next->stack->lo, next->stack->size);
#endif
#ifdef URT_TSAN
		__tsan_switch_to_fiber(next->tsan_fiber, 0);
#endif
		urt__ctx_switch(&t->sp, next->sp);
	} else {
#ifdef URT_ASAN
		__sanitizer_start_switch_fiber(last ? NULL : &t->asan_fake,
					       w->asan_bottom, w->asan_size);
#endif
#ifdef URT_TSAN
		__tsan_switch_to_fiber(w->tsan_fiber, 0);
#endif
		urt__ctx_switch(&t->sp, w->sched_sp);
	}
	(void)last;
	/* Resumed, possibly on another worker thread. */
	after_switch(t);
}

static void fiber_main(void *arg)
{
	struct urt_task *t = arg;

	after_switch(t);
	/* A fiber cancelled before it first ran never calls its function. */
	if (!(atomic_load_explicit(&t->state, memory_order_acquire) & TS_CANCEL))
		t->result = t->fn(t->arg);
	if (t->cleanup)
		t->cleanup(t->cleanup_arg);
	t->done = true;
	switch_out(t, true);
	__builtin_unreachable();
}

void urt__fiber_suspend(struct urt_task *t)
{
	switch_out(t, false);
}

int urt__fiber_prepare(struct urt_worker *w, struct urt_task *t)
{
	struct urt_rt *rt = t->rt;
	uint64_t *sp;

	t->stack = stack_get(w, rt, t->stack_size ? t->stack_size : rt->stack_size);
	if (!t->stack)
		return -ENOMEM;
	/*
	 * Frame read by urt__ctx_switch, from low to high: mxcsr|fpucw, r15,
	 * r14, r13 (arg), r12 (fn), rbx, rbp, return address. The top is
	 * 16-byte aligned; after the final `ret` rsp is aligned again, as the
	 * ABI wants before urt__ctx_entry's call.
	 */
	sp = (uint64_t *)(t->stack->lo + t->stack->size) - 10;
	sp[0] = 0x1F80 | ((uint64_t)0x037F << 32);	/* default MXCSR, x87 CW */
	sp[1] = 0;				/* r15 */
	sp[2] = 0;				/* r14 */
	sp[3] = (uint64_t)(uintptr_t)t;		/* r13: argument */
	sp[4] = (uint64_t)(uintptr_t)fiber_main; /* r12: function */
	sp[5] = 0;				/* rbx */
	sp[6] = 0;				/* rbp: end of frame chain */
	sp[7] = (uint64_t)(uintptr_t)urt__ctx_entry;
	sp[8] = 0;
	sp[9] = 0;
	t->sp = sp;
#ifdef URT_TSAN
	t->tsan_fiber = __tsan_create_fiber(0);
#endif
#ifdef URT_ASAN
	t->asan_fake = NULL;
#endif
	return 0;
}

struct urt_task *urt__fiber_resume(struct urt_worker *w, struct urt_task *t)
{
#ifdef URT_ASAN
	void *fake = NULL;

	__sanitizer_start_switch_fiber(&fake, t->stack->lo, t->stack->size);
#endif
#ifdef URT_TSAN
	__tsan_switch_to_fiber(t->tsan_fiber, 0);
#endif
	urt__ctx_switch(&w->sched_sp, t->sp);
#ifdef URT_ASAN
	__sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
	/* The fiber that switched back: t, or one reached by direct switches. */
	return urt__tls_task;
}

/* Gives the stack back; called on the scheduler stack after the last switch. */
void urt__fiber_release(struct urt_worker *w, struct urt_task *t)
{
#ifdef URT_TSAN
	if (t->tsan_fiber) {
		__tsan_destroy_fiber(t->tsan_fiber);
		t->tsan_fiber = NULL;
	}
#endif
	if (t->stack) {
		stack_put(w, t->rt, t->stack);
		t->stack = NULL;
	}
}

/* ------------------------------------------------------------ guard pages */

#if !defined(URT_ASAN) && !defined(URT_TSAN)
/* Sanitizers install their own SIGSEGV handling; only plain builds need ours. */

static struct sigaction prev_segv;
static pthread_once_t segv_once = PTHREAD_ONCE_INIT;

static void segv_handler(int sig, siginfo_t *si, void *uctx)
{
	struct urt_task *t = urt__current_task();
	char *addr = si->si_addr;

	if (t && t->stack && addr >= t->stack->lo - page_size() - 65536 &&
	    addr < t->stack->lo) {
		char buf[160];
		int n = snprintf(buf, sizeof(buf),
				 "urt: stack overflow in task %llu '%s' (stack %zu bytes; "
				 "raise urt_spawn_opts.stack_size or URT_STACK_SIZE)\n",
				 (unsigned long long)atomic_load(&t->id), t->name, t->stack->size);
		if (write(STDERR_FILENO, buf, n) < 0) {
			/* nothing more to do */
		}
		signal(SIGABRT, SIG_DFL);
		abort();
	}
	/* Not ours: hand it to whoever was there before, or crash normally. */
	if (prev_segv.sa_flags & SA_SIGINFO && prev_segv.sa_sigaction) {
		prev_segv.sa_sigaction(sig, si, uctx);
		return;
	}
	if (prev_segv.sa_handler != SIG_DFL && prev_segv.sa_handler != SIG_IGN &&
	    !(prev_segv.sa_flags & SA_SIGINFO)) {
		prev_segv.sa_handler(sig);
		return;
	}
	signal(SIGSEGV, SIG_DFL);	/* returning re-faults into the default action */
}

static void segv_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = segv_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &prev_segv);
}
#endif

/* Per worker thread: sanitizer contexts and the alternate signal stack. */
int urt__thread_fiber_init(struct urt_worker *w)
{
#ifdef URT_TSAN
	w->tsan_fiber = __tsan_get_current_fiber();
#endif
#if !defined(URT_ASAN) && !defined(URT_TSAN)
	{
		size_t sz = 64 * 1024;
		stack_t ss;

		w->altstack = mmap(NULL, sz, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (w->altstack == MAP_FAILED) {
			w->altstack = NULL;
			return -ENOMEM;
		}
		ss.ss_sp = w->altstack;
		ss.ss_size = sz;
		ss.ss_flags = 0;
		sigaltstack(&ss, NULL);
		pthread_once(&segv_once, segv_install);
	}
#endif
	return 0;
}

void urt__thread_fiber_fini(struct urt_worker *w)
{
	if (w->altstack) {
		stack_t ss = { .ss_flags = SS_DISABLE };

		sigaltstack(&ss, NULL);
		munmap(w->altstack, 64 * 1024);
		w->altstack = NULL;
	}
}
