/* SPDX-License-Identifier: MIT */
/*
 * trace.h - liburt's trace points, for the tools (urt-top, urt-trace, ...).
 *
 * Each URT_TRACE_* call site in the scheduler costs one predictable branch
 * on a flag while nobody traces. The bodies (trace.c) are filled in by the
 * tools work; until then every hook is empty.
 *
 * Call sites (and what they pass):
 *   URT_TRACE_RT_INIT(rt) / URT_TRACE_RT_FINI(rt)    runtime.c
 *   URT_TRACE_SPAWN(rt, t)                           task.c: task created
 *   URT_TRACE_RUN(w, t) / URT_TRACE_STOP(w, t, done) task.c: a step begins / ends
 *   URT_TRACE_PARK(w, s) / URT_TRACE_UNPARK(w, s)    sched.c: slot idles / wakes
 *   URT_TRACE_STEAL(w, s, victim)                    sched.c: took work from victim slot
 *   URT_TRACE_HANDOFF(rt, s, from, to, why)          sysmon.c: why = "block" | "hog"
 */
#ifndef URT_TRACE_H
#define URT_TRACE_H

#define URT_TRACE_RT_INIT(rt)			((void)(rt), 0)
#define URT_TRACE_RT_FINI(rt)			((void)(rt))
#define URT_TRACE_SPAWN(rt, t)			((void)(rt), (void)(t))
#define URT_TRACE_RUN(w, t)			((void)(w), (void)(t))
#define URT_TRACE_STOP(w, t, done)		((void)(w), (void)(t), (void)(done))
#define URT_TRACE_PARK(w, s)			((void)(w), (void)(s))
#define URT_TRACE_UNPARK(w, s)			((void)(w), (void)(s))
#define URT_TRACE_STEAL(w, s, victim)		((void)(w), (void)(s), (void)(victim))
#define URT_TRACE_HANDOFF(rt, s, from, to, why)	\
	((void)(rt), (void)(s), (void)(from), (void)(to), (void)(why))

#endif
