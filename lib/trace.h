/* SPDX-License-Identifier: MIT */
/*
 * trace.h - liburt's trace points, for the tools (urt-top, urt-blocked,
 * urt-trace) and for bpftrace (USDT probes, provider "urt").
 *
 * Each URT_TRACE_* call site in the scheduler costs one load of a global
 * word and one predictable branch while nobody traces: the word is the
 * USDT is-enabled semaphore that all of liburt's probes share. The kernel
 * bumps it when a uprobe is attached to any urt probe (bpftrace, or a
 * tool attaching to urt:enable) and drops it when the probe goes away.
 * Only then do the hooks call into trace.c, which fires the USDT probe and,
 * if a tool asked for it in the shared memory (trace_shm.h), records the
 * current task per worker and events in per-worker rings.
 *
 * Call sites (and what they pass):
 *   URT_TRACE_RT_INIT(rt) / URT_TRACE_RT_FINI(rt)    runtime.c
 *   URT_TRACE_SPAWN(rt, t)                           task.c: task created
 *   URT_TRACE_WAKE(t)                                task.c: urt__task_wake set
 *                                                    NOTIFIED (t will run, or runs
 *                                                    again: a yield is a self-wake)
 *   URT_TRACE_RUN(w, t) / URT_TRACE_STOP(w, t, done) task.c: a step begins / ends
 *   URT_TRACE_PARK(w, s) / URT_TRACE_UNPARK(w, s)    sched.c: slot idles / wakes
 *   URT_TRACE_STEAL(w, s, victim)                    sched.c: took work from victim slot
 *   URT_TRACE_HANDOFF(rt, s, from, to, why)          handoff.c: why = "block" | "hog"
 *   URT_TRACE_BLOCK(rt, ev)                          sysmon.c: the backend reported
 *                                                    a block past the threshold
 *
 * USDT probes (arguments in order), for bpftrace -e 'usdt:PATH:urt:run {...}':
 *   urt:spawn   task id, name (char *)
 *   urt:wake    task id, waker tid, waker task id (0: not from a task)
 *   urt:run     task id, name (char *), slot
 *   urt:stop    task id, slot, finished (0/1)
 *   urt:park    slot                      urt:unpark   slot
 *   urt:steal   slot, victim slot
 *   urt:handoff slot, old owner tid, new owner tid, why (char *)
 *   urt:block   worker tid, syscall number (-1: none), blocked since (ns, CLOCK_MONOTONIC)
 *   urt:enable  never fires: tools attach here only to turn the hooks on
 */
#ifndef URT_TRACE_H
#define URT_TRACE_H

#include "rt.h"

struct urt_mon_event;

/* The semaphore of every urt USDT probe (trace.c): != 0 while traced. */
extern unsigned short urt__usdt_sem URT_HIDDEN;

static inline bool urt__tracing(void)
{
#if defined(__x86_64__) || defined(__i386__)
	/* cmpw + jne: two instructions (a C load compiles to three). Only
	 * the kernel writes the word (uprobe ref_ctr). */
	__asm__ goto("cmpw $0, %0\n\tjne %l[on]" : : "m"(urt__usdt_sem) : "cc" : on);
	return false;
on: __attribute__((cold));
	return true;
#else
	return unlikely(__atomic_load_n(&urt__usdt_sem, __ATOMIC_RELAXED) != 0);
#endif
}

/* The slow paths: cold, so the compiler keeps them out of the hot code. */
#define URT_TRACE_COLD	__attribute__((cold, noinline)) URT_HIDDEN
int urt__trace_rt_init(struct urt_rt *rt) URT_HIDDEN;
void urt__trace_rt_fini(struct urt_rt *rt) URT_HIDDEN;
void urt__trace_spawn(struct urt_rt *rt, struct urt_task *t) URT_TRACE_COLD;
void urt__trace_wake(struct urt_task *t) URT_TRACE_COLD;
void urt__trace_run(struct urt_worker *w, struct urt_task *t) URT_TRACE_COLD;
void urt__trace_stop(struct urt_worker *w, struct urt_task *t, bool done) URT_TRACE_COLD;
void urt__trace_park(struct urt_worker *w, struct urt_slot *s, bool park) URT_TRACE_COLD;
void urt__trace_steal(struct urt_worker *w, struct urt_slot *s, struct urt_slot *victim) URT_TRACE_COLD;
void urt__trace_handoff(struct urt_rt *rt, struct urt_slot *s, struct urt_worker *from,
			struct urt_worker *to, const char *why) URT_TRACE_COLD;
void urt__trace_block(struct urt_rt *rt, const struct urt_mon_event *ev) URT_TRACE_COLD;

/*
 * The wake hook sits right after urt__task_wake's CAS loop, whose result
 * stays live across it. Any branch there that GCC sees (asm goto, or a
 * plain if) makes it reallocate the loop's registers: two more movs per
 * wake. So on x86-64 the whole hook is one plain asm statement: cmpw + jne
 * in line, and out of line (.text.unlikely) a call through a thunk
 * (trace.c) that saves the caller-saved general registers, below the red
 * zone; the asm declares the vector and x87 registers clobbered. The
 * out-of-line part has no unwind info of its own: a backtrace taken inside
 * the hook (while tracing) may stop at it; frame-pointer walks go through.
 */
#if defined(__x86_64__)
void urt__trace_wake_thunk(void) URT_HIDDEN;
#define URT_TRACE_WAKE(t) \
	__asm__ volatile("cmpw $0, %0\n\t" \
			 "jne 1f\n" \
			 "2:\n\t" \
			 ".pushsection .text.unlikely,\"ax\",@progbits\n" \
			 "1:\tlea -128(%%rsp), %%rsp\n\t" \
			 "call urt__trace_wake_thunk\n\t" \
			 "lea 128(%%rsp), %%rsp\n\t" \
			 "jmp 2b\n\t" \
			 ".popsection" \
			 : : "m"(urt__usdt_sem), "D"(t) \
			 : "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", \
			   "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", \
			   "xmm13", "xmm14", "xmm15", "st", "st(1)", "st(2)", "st(3)", \
			   "st(4)", "st(5)", "st(6)", "st(7)")
#else
#define URT_TRACE_WAKE(t) \
	(unlikely(urt__tracing()) ? urt__trace_wake(t) : (void)0)
#endif

#define URT_TRACE_RT_INIT(rt)		urt__trace_rt_init(rt)
#define URT_TRACE_RT_FINI(rt)		urt__trace_rt_fini(rt)
#define URT_TRACE_SPAWN(rt, t) \
	(unlikely(urt__tracing()) ? urt__trace_spawn(rt, t) : (void)0)
#define URT_TRACE_RUN(w, t) \
	(unlikely(urt__tracing()) ? urt__trace_run(w, t) : (void)0)
#define URT_TRACE_STOP(w, t, done) \
	(unlikely(urt__tracing()) ? urt__trace_stop(w, t, done) : (void)0)
#define URT_TRACE_PARK(w, s) \
	(unlikely(urt__tracing()) ? urt__trace_park(w, s, true) : (void)0)
#define URT_TRACE_UNPARK(w, s) \
	(unlikely(urt__tracing()) ? urt__trace_park(w, s, false) : (void)0)
#define URT_TRACE_STEAL(w, s, victim) \
	(unlikely(urt__tracing()) ? urt__trace_steal(w, s, victim) : (void)0)
#define URT_TRACE_HANDOFF(rt, s, from, to, why) \
	(unlikely(urt__tracing()) ? urt__trace_handoff(rt, s, from, to, why) : (void)0)
#define URT_TRACE_BLOCK(rt, ev) \
	(unlikely(urt__tracing()) ? urt__trace_block(rt, ev) : (void)0)

#endif
