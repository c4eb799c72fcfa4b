// SPDX-License-Identifier: MIT
/*
 * trace.c - the slow path of liburt's trace hooks (trace.h) and the shared
 * memory the tools read (trace_shm.h).
 *
 * Nothing here runs while nobody traces: the hooks in the scheduler test
 * the USDT semaphore and call in only when it is non-zero. Then each hook
 * fires its USDT probe (a nop unless bpftrace or another tool put a uprobe
 * on it) and does what the tools asked for in hdr->flags.
 *
 * The rings are single-producer: ring k belongs to worker k's thread (the
 * hooks that pass a worker run on that worker's thread); events from other
 * threads (the monitor's handoffs, spawns from outside the runtime) go to
 * the extra ring at index nworkers under misc_lock.
 *
 * A wake is recorded on the waker's thread: its worker's ring, or the misc
 * ring for a thread outside the runtime (the monitor, a blocking-pool
 * thread, a plain thread calling urt_wake, another runtime's worker).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "monitor.h"
#include "trace.h"
#include "trace_shm.h"

/* One semaphore for every probe: the hooks test one word. */
#define urt_spawn_semaphore	urt__usdt_sem
#define urt_wake_semaphore	urt__usdt_sem
#define urt_run_semaphore	urt__usdt_sem
#define urt_stop_semaphore	urt__usdt_sem
#define urt_park_semaphore	urt__usdt_sem
#define urt_unpark_semaphore	urt__usdt_sem
#define urt_steal_semaphore	urt__usdt_sem
#define urt_handoff_semaphore	urt__usdt_sem
#define urt_block_semaphore	urt__usdt_sem
#define urt_enable_semaphore	urt__usdt_sem

unsigned short urt__usdt_sem __attribute__((section(".probes"), used));

#if defined(__has_include)
#if __has_include(<sys/sdt.h>)
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>
#define URT_HAVE_SDT 1
#endif
#endif
#ifndef URT_HAVE_SDT
#define STAP_PROBE(p, n)			do { } while (0)
#define STAP_PROBE1(p, n, a)			((void)(a))
#define STAP_PROBE2(p, n, a, b)			((void)(a), (void)(b))
#define STAP_PROBE3(p, n, a, b, c)		((void)(a), (void)(b), (void)(c))
#define STAP_PROBE4(p, n, a, b, c, d)		((void)(a), (void)(b), (void)(c), (void)(d))
#endif

struct urt_trace {
	struct urt_shm_hdr *hdr;
	size_t size;
	int fd;
	urt_spin misc_lock;
};

/*
 * Never called: tools attach a uprobe here (its ref_ctr bumps the shared
 * semaphore), so turning the hooks on costs no probe hit.
 */
__attribute__((used, noinline)) void urt__trace_enable_site(void);
__attribute__((used, noinline)) void urt__trace_enable_site(void)
{
	STAP_PROBE(urt, enable);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static struct urt_shm_worker *shm_worker(struct urt_shm_hdr *h, unsigned int k)
{
	return (struct urt_shm_worker *)((char *)h + h->worker_off + (size_t)k * h->worker_stride);
}

static uint32_t shm_flags(struct urt_trace *tr)
{
	return tr ? __atomic_load_n(&tr->hdr->flags, __ATOMIC_RELAXED) : 0;
}

static void copy_name(char dst[16], const char *src)
{
	size_t i = 0;

	if (src)
		for (; i < 15 && src[i]; i++)
			dst[i] = src[i];
	memset(dst + i, 0, 16 - i);
}

/* Producer side of ring k (its owner thread, or misc_lock held). */
static void ring_put(struct urt_shm_hdr *h, unsigned int k, uint16_t type, int slot,
		     int32_t tid, uint64_t task, uint64_t arg, const char *name)
{
	struct urt_shm_worker *sw = shm_worker(h, k);
	uint64_t head = __atomic_load_n(&sw->head, __ATOMIC_RELAXED);
	uint64_t tail = __atomic_load_n(&sw->tail, __ATOMIC_ACQUIRE);
	struct urt_shm_event *e;

	if (head - tail >= h->ring_size) {
		__atomic_store_n(&sw->lost, sw->lost + 1, __ATOMIC_RELAXED);
		return;
	}
	e = &sw->ev[head & (h->ring_size - 1)];
	e->ts = now_ns();
	e->type = type;
	e->slot = (int16_t)slot;
	e->tid = tid;
	e->task = task;
	e->arg = arg;
	copy_name(e->name, name);
	__atomic_store_n(&sw->head, head + 1, __ATOMIC_RELEASE);
}

/* An event from a thread that owns no ring. */
static void misc_put(struct urt_trace *tr, uint16_t type, int slot, uint64_t task,
		     uint64_t arg, const char *name, int32_t tid)
{
	urt__spin_lock(&tr->misc_lock);
	ring_put(tr->hdr, tr->hdr->nworkers, type, slot, tid, task, arg, name);
	urt__spin_unlock(&tr->misc_lock);
}

static void worker_put(struct urt_worker *w, uint16_t type, int slot, uint64_t task,
		       uint64_t arg, const char *name)
{
	struct urt_trace *tr = w->rt->trace;

	ring_put(tr->hdr, (unsigned int)w->index, type, slot, w->tid, task, arg, name);
}

static void set_current(struct urt_worker *w, struct urt_task *t, uint64_t id, int slot)
{
	struct urt_trace *tr = w->rt->trace;
	struct urt_shm_worker *sw = shm_worker(tr->hdr, (unsigned int)w->index);
	uint32_t seq = __atomic_load_n(&sw->seq, __ATOMIC_RELAXED);

	/* An acquire RMW: the field stores below stay after the odd seq
	 * (a fence would do, but TSan does not support fences). */
	__atomic_exchange_n(&sw->seq, seq + 1, __ATOMIC_ACQ_REL);
	sw->tid = w->tid;
	sw->slot = slot;
	sw->gen = __atomic_load_n(&tr->hdr->cur_gen, __ATOMIC_RELAXED);
	sw->task = id;
	sw->since_ns = id ? now_ns() : 0;
	copy_name(sw->name, t ? t->name : NULL);
	__atomic_store_n(&sw->seq, seq + 2, __ATOMIC_RELEASE);
}

/* ------------------------------------------------------------ lifetime */

int urt__trace_rt_init(struct urt_rt *rt)
{
	size_t hdr_size = (sizeof(struct urt_shm_hdr) + 63) & ~(size_t)63;
	size_t stride = sizeof(struct urt_shm_worker) +
			(size_t)URT_SHM_RING * sizeof(struct urt_shm_event);
	struct urt_trace *tr;
	struct urt_shm_hdr *h;
	struct urt_shm_layout *l;
	size_t size;

	rt->trace = NULL;
	stride = (stride + 63) & ~(size_t)63;
	size = hdr_size + (rt->nworkers + 1) * stride;
	size = (size + 4095) & ~(size_t)4095;
	tr = calloc(1, sizeof(*tr));
	if (!tr)
		return 0;	/* no tools for this runtime; it runs anyway */
	tr->fd = memfd_create(URT_SHM_NAME, MFD_CLOEXEC);
	if (tr->fd < 0)
		goto fail;
	if (ftruncate(tr->fd, (off_t)size))
		goto fail_fd;
	h = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, tr->fd, 0);
	if (h == MAP_FAILED)
		goto fail_fd;
	tr->hdr = h;
	tr->size = size;
	h->version = URT_SHM_VERSION;
	h->hdr_size = (uint32_t)sizeof(*h);
	h->pid = getpid();
	h->nslots = rt->nslots;
	h->nworkers = rt->nworkers;
	h->ring_size = URT_SHM_RING;
	h->size = size;
	h->worker_off = hdr_size;
	h->worker_stride = stride;
	h->rt_addr = (uintptr_t)rt;
	h->shm_addr = (uintptr_t)h;
	h->created_ns = (int64_t)now_ns();
	copy_name(h->name, rt->cfg.name ? rt->cfg.name : "urt");

	l = &h->layout;
	l->slots = (uintptr_t)rt->slots;
	l->workers = (uintptr_t)rt->workers;
	l->slot_size = sizeof(struct urt_slot);
	l->worker_size = sizeof(struct urt_worker);
	l->slot_owner = offsetof(struct urt_slot, owner);
	l->slot_cur_task = offsetof(struct urt_slot, cur_task);
	l->slot_steps = offsetof(struct urt_slot, steps);
	l->slot_handoffs = offsetof(struct urt_slot, handoffs);
	l->slot_blocks_seen = offsetof(struct urt_slot, blocks_seen);
	l->slot_hogs = offsetof(struct urt_slot, hogs);
	l->slot_blocked_ns = offsetof(struct urt_slot, blocked_ns);
	l->slot_lifo = offsetof(struct urt_slot, lifo);
	l->slot_q_head = offsetof(struct urt_slot, q) + offsetof(struct urt_lqueue, head);
	l->slot_q_tail = offsetof(struct urt_slot, q) + offsetof(struct urt_lqueue, tail);
	l->worker_tid = offsetof(struct urt_worker, tid);
	l->worker_slot = offsetof(struct urt_worker, slot);
	l->worker_started = offsetof(struct urt_worker, started);
	l->worker_exited = offsetof(struct urt_worker, exited);
	l->worker_spawned = offsetof(struct urt_worker, spawned);
	l->worker_completed = offsetof(struct urt_worker, completed);
	l->worker_polls = offsetof(struct urt_worker, polls);
	l->worker_steals = offsetof(struct urt_worker, steals);
	l->worker_parks = offsetof(struct urt_worker, parks);
	l->inject_len = (uintptr_t)&rt->inject.len;
	for (unsigned int k = 0; k <= rt->nworkers; k++)
		shm_worker(h, k)->slot = -1;
	/* Last: a tool that finds the magic finds a complete header. */
	__atomic_store_n(&h->magic, URT_SHM_MAGIC, __ATOMIC_RELEASE);
	rt->trace = tr;
	return 0;
fail_fd:
	close(tr->fd);
fail:
	free(tr);
	return 0;
}

void urt__trace_rt_fini(struct urt_rt *rt)
{
	struct urt_trace *tr = rt->trace;

	if (!tr)
		return;
	/* A tool that still maps the memfd keeps what was recorded. */
	__atomic_store_n(&tr->hdr->closed, 1, __ATOMIC_RELEASE);
	munmap(tr->hdr, tr->size);
	close(tr->fd);
	free(tr);
	rt->trace = NULL;
}

/* ------------------------------------------------------------ hooks */

void urt__trace_spawn(struct urt_rt *rt, struct urt_task *t)
{
	struct urt_trace *tr = rt->trace;
	uint64_t id = atomic_load_explicit(&t->id, memory_order_relaxed);
	struct urt_worker *w;

	STAP_PROBE2(urt, spawn, id, t->name);
	if (!(shm_flags(tr) & URT_SHM_EVENTS))
		return;
	w = urt__worker();
	if (w && w->rt == rt)
		worker_put(w, URT_EV_SPAWN, w->slot ? w->slot->index : -1, id, 0, t->name);
	else
		misc_put(tr, URT_EV_SPAWN, -1, id, 0, t->name, (int32_t)syscall(SYS_gettid));
}

void urt__trace_wake(struct urt_task *t)
{
	struct urt_rt *rt = t->rt;
	struct urt_trace *tr = rt->trace;
	uint64_t id = atomic_load_explicit(&t->id, memory_order_relaxed);
	struct urt_task *waker = urt__tls_task;
	uint64_t wid = waker ? atomic_load_explicit(&waker->id, memory_order_relaxed) : 0;
	struct urt_worker *w = urt__worker();
	bool mine = w && w->rt == rt;
	int32_t tid;

	if (t->kind == TK_BLOCKING)
		return;		/* not scheduled by wakes */
	tid = mine ? w->tid : (int32_t)syscall(SYS_gettid);
	STAP_PROBE3(urt, wake, id, tid, wid);
	if (!(shm_flags(tr) & URT_SHM_EVENTS))
		return;
	if (mine)
		worker_put(w, URT_EV_WAKE, w->slot ? w->slot->index : -1, id, wid, t->name);
	else
		misc_put(tr, URT_EV_WAKE, -1, id, wid, t->name, tid);
}

#if defined(__x86_64__)
/*
 * URT_TRACE_WAKE (trace.h) calls here with the task in %rdi, below
 * the caller's red zone: save the caller-saved registers the C ABI lets
 * urt__trace_wake clobber (the asm declares the vector and x87 ones
 * clobbered), align the stack, call it.
 */
__asm__(
	"	.pushsection .text.unlikely,\"ax\",@progbits\n"
	"	.globl urt__trace_wake_thunk\n"
	"	.hidden urt__trace_wake_thunk\n"
	"	.type urt__trace_wake_thunk, @function\n"
	"urt__trace_wake_thunk:\n"
	"	.cfi_startproc\n"
	"	push %rbp\n"
	"	.cfi_def_cfa_offset 16\n"
	"	.cfi_offset %rbp, -16\n"
	"	mov %rsp, %rbp\n"
	"	.cfi_def_cfa_register %rbp\n"
	"	and $-16, %rsp\n"
	"	push %rax\n push %rcx\n push %rdx\n push %rsi\n push %rdi\n"
	"	push %r8\n push %r9\n push %r10\n push %r11\n push %r11\n"
	"	call urt__trace_wake\n"
	"	pop %r11\n pop %r11\n pop %r10\n pop %r9\n pop %r8\n"
	"	pop %rdi\n pop %rsi\n pop %rdx\n pop %rcx\n pop %rax\n"
	"	mov %rbp, %rsp\n"
	"	pop %rbp\n"
	"	.cfi_def_cfa %rsp, 8\n"
	"	ret\n"
	"	.cfi_endproc\n"
	"	.size urt__trace_wake_thunk, .-urt__trace_wake_thunk\n"
	"	.popsection\n");
#endif

void urt__trace_run(struct urt_worker *w, struct urt_task *t)
{
	struct urt_trace *tr = w->rt->trace;
	uint64_t id = atomic_load_explicit(&t->id, memory_order_relaxed);
	int slot = w->slot ? w->slot->index : -1;
	uint32_t f;

	STAP_PROBE3(urt, run, id, t->name, slot);
	f = shm_flags(tr);
	if (f & URT_SHM_CURRENT)
		set_current(w, t, id, slot);
	if (f & URT_SHM_EVENTS)
		worker_put(w, URT_EV_RUN, slot, id, 0, t->name);
}

void urt__trace_stop(struct urt_worker *w, struct urt_task *t, bool done)
{
	struct urt_trace *tr = w->rt->trace;
	uint64_t id = atomic_load_explicit(&t->id, memory_order_relaxed);
	int slot = w->slot ? w->slot->index : -1;
	uint32_t f;

	STAP_PROBE3(urt, stop, id, slot, (int)done);
	f = shm_flags(tr);
	if (f & URT_SHM_CURRENT)
		set_current(w, NULL, 0, slot);
	if (f & URT_SHM_EVENTS)
		worker_put(w, URT_EV_STOP, slot, id, done, NULL);
}

void urt__trace_park(struct urt_worker *w, struct urt_slot *s, bool park)
{
	if (park)
		STAP_PROBE1(urt, park, s->index);
	else
		STAP_PROBE1(urt, unpark, s->index);
	if (shm_flags(w->rt->trace) & URT_SHM_EVENTS)
		worker_put(w, park ? URT_EV_PARK : URT_EV_UNPARK, s->index, 0, 0, NULL);
}

void urt__trace_steal(struct urt_worker *w, struct urt_slot *s, struct urt_slot *victim)
{
	STAP_PROBE2(urt, steal, s->index, victim->index);
	if (shm_flags(w->rt->trace) & URT_SHM_EVENTS)
		worker_put(w, URT_EV_STEAL, s->index, 0, (uint64_t)victim->index, NULL);
}

void urt__trace_handoff(struct urt_rt *rt, struct urt_slot *s, struct urt_worker *from,
			struct urt_worker *to, const char *why)
{
	struct urt_trace *tr = rt->trace;

	STAP_PROBE4(urt, handoff, s->index, from->tid, to->tid, why);
	if (shm_flags(tr) & URT_SHM_EVENTS)
		misc_put(tr, URT_EV_HANDOFF, s->index,
			 atomic_load_explicit(&s->cur_task, memory_order_relaxed),
			 (uint64_t)(uint32_t)to->tid, why, from->tid);
}

void urt__trace_block(struct urt_rt *rt, const struct urt_mon_event *ev)
{
	struct urt_trace *tr = rt->trace;

	STAP_PROBE3(urt, block, ev->tid, ev->syscall, ev->since_ns);
	if (shm_flags(tr) & URT_SHM_EVENTS)
		misc_put(tr, URT_EV_BLOCK, -1, (uint64_t)ev->since_ns,
			 (uint64_t)(int64_t)ev->syscall, NULL, ev->tid);
}
