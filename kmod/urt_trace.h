/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tracepoints of the urt module: visible to perf, bpftrace and tracefs as
 * urt:urt_block, urt:urt_unblock and urt:urt_notify. tid is the global
 * (init namespace) thread id, as sched:sched_switch reports it.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM urt

#if !defined(_URT_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _URT_TRACE_H

#include <linux/tracepoint.h>

/* A registered worker left the run queue (sched_out, rq lock held). */
TRACE_EVENT(urt_block,
	TP_PROTO(pid_t tid, u32 slot, long syscall_nr),
	TP_ARGS(tid, slot, syscall_nr),
	TP_STRUCT__entry(
		__field(pid_t, tid)
		__field(u32, slot)
		__field(long, syscall_nr)
	),
	TP_fast_assign(
		__entry->tid = tid;
		__entry->slot = slot;
		__entry->syscall_nr = syscall_nr;
	),
	TP_printk("tid=%d slot=%u syscall=%ld",
		  __entry->tid, __entry->slot, __entry->syscall_nr)
);

/* A blocked worker runs again (sched_in) after blocked_ns. */
TRACE_EVENT(urt_unblock,
	TP_PROTO(pid_t tid, u32 slot, u64 blocked_ns),
	TP_ARGS(tid, slot, blocked_ns),
	TP_STRUCT__entry(
		__field(pid_t, tid)
		__field(u32, slot)
		__field(u64, blocked_ns)
	),
	TP_fast_assign(
		__entry->tid = tid;
		__entry->slot = slot;
		__entry->blocked_ns = blocked_ns;
	),
	TP_printk("tid=%d slot=%u blocked_ns=%llu",
		  __entry->tid, __entry->slot, __entry->blocked_ns)
);

/* An event was queued for the group (type: URT_EV_*). */
TRACE_EVENT(urt_notify,
	TP_PROTO(pid_t tid, u32 slot, u32 type, u64 blocked_ns),
	TP_ARGS(tid, slot, type, blocked_ns),
	TP_STRUCT__entry(
		__field(pid_t, tid)
		__field(u32, slot)
		__field(u32, type)
		__field(u64, blocked_ns)
	),
	TP_fast_assign(
		__entry->tid = tid;
		__entry->slot = slot;
		__entry->type = type;
		__entry->blocked_ns = blocked_ns;
	),
	TP_printk("tid=%d slot=%u type=%u blocked_ns=%llu",
		  __entry->tid, __entry->slot, __entry->type,
		  __entry->blocked_ns)
);

#endif /* _URT_TRACE_H */

/* The header is not in include/trace/events: tell define_trace.h where. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE urt_trace
#include <trace/define_trace.h>
