/* SPDX-License-Identifier: MIT */
/*
 * trace_shm.h - what liburt publishes for the tools (tools/urt-top,
 * urt-blocked, urt-trace). Shared by lib/trace.c and tools/; not installed.
 *
 * Each runtime creates one memfd named "urt-shm" at urt_create
 * (URT_TRACE_RT_INIT) and keeps it mapped until urt_destroy. A tool finds
 * it in /proc/PID/fd (the link reads "/memfd:urt-shm (deleted)"), opens it
 * through that link and maps it MAP_SHARED. The memfd goes away with the
 * process: nothing is left behind by a crash.
 *
 *   +---------------------------+ 0
 *   | struct urt_shm_hdr         |   layout of the runtime's own objects,
 *   |                            |   control words written by the tools
 *   +---------------------------+ hdr.worker_off
 *   | struct urt_shm_worker [0]  |   per worker thread (slots + spares):
 *   |   current task (seqcount)  |   what it runs now
 *   |   event ring (SPSC)        |   written by that thread only
 *   | ... [nworkers]             |   the last one (index nworkers) is the
 *   +---------------------------+   "misc" ring: monitor thread and threads
 *                                   outside the runtime, under a lock
 *
 * Zero cost when nobody traces: every hook tests one word, the USDT
 * semaphore shared by all of liburt's probes (trace.h). A tool turns the
 * hooks on by attaching a uprobe to the never-executed probe urt:enable
 * (the kernel bumps the semaphore, and drops it when the tool's file
 * descriptors close, even after SIGKILL). Then `flags` says what the hooks
 * record:
 *   URT_SHM_CURRENT  the current task (id, name) of each worker
 *   URT_SHM_EVENTS   events into the rings
 *
 * Counters the runtime keeps anyway (steps, steals, handoffs, queue
 * depth, owner) are not copied here: a tool reads them from the process
 * with process_vm_readv() at the addresses and offsets in `layout`, so the
 * tools work with any build of liburt (sanitizers change struct sizes).
 *
 * Ring protocol (single producer, single consumer): the producer writes
 * ev[head % ring_size], then stores head + 1 (release); the consumer reads
 * up to head (acquire), then stores tail (release). A full ring drops the
 * event and counts it in `lost`. Only one reader at a time: it claims the
 * rings by a CAS of its pid into hdr.ring_reader (a dead owner's claim may
 * be taken over).
 */
#ifndef URT_TRACE_SHM_H
#define URT_TRACE_SHM_H

#include <stdint.h>

#define URT_SHM_MAGIC		0x314d48535452550aULL	/* "\nURTSHM1" */
#define URT_SHM_VERSION		1
#define URT_SHM_NAME		"urt-shm"
#define URT_SHM_RING		4096	/* events per ring, a power of 2 */

#define URT_SHM_CURRENT		1u
#define URT_SHM_EVENTS		2u

enum urt_shm_ev_type {
	URT_EV_SPAWN = 1,	/* task, name: a task was created */
	URT_EV_RUN,		/* task, name, slot: a step begins */
	URT_EV_STOP,		/* task, slot, arg = 1 if it finished */
	URT_EV_PARK,		/* slot: the worker parks (idle) */
	URT_EV_UNPARK,		/* slot: it woke up */
	URT_EV_STEAL,		/* slot, arg = victim slot */
	URT_EV_HANDOFF,		/* slot, tid = old owner, arg = new owner's tid, name = why */
	URT_EV_BLOCK,		/* monitor: tid blocked past the threshold; arg = syscall, task = since_ns */
	URT_EV_THREAD,		/* tid, arg = worker index, name = thread name: first event of a thread */
	URT_EV_WAKE,		/* tid = waker thread, slot = its slot, task = woken task,
				 * arg = waker task id (0: none), name = woken task's name */
};

struct urt_shm_event {
	uint64_t ts;		/* CLOCK_MONOTONIC ns (== bpf_ktime_get_ns) */
	uint16_t type;		/* URT_EV_* */
	int16_t slot;		/* -1: none */
	int32_t tid;		/* the thread the event happened on */
	uint64_t task;		/* task id */
	uint64_t arg;
	char name[16];
};

/* Where the runtime's own objects are, for process_vm_readv(). */
struct urt_shm_layout {
	uint64_t slots, workers;	/* addresses of rt->slots[0], rt->workers[0] */
	uint32_t slot_size, worker_size;
	/* struct urt_slot */
	uint32_t slot_owner;		/* uintptr_t: worker pointer | 1 parked | 2 moving */
	uint32_t slot_cur_task, slot_steps, slot_handoffs, slot_blocks_seen;
	uint32_t slot_hogs, slot_blocked_ns, slot_lifo;
	uint32_t slot_q_head;		/* uint64: steal << 32 | real */
	uint32_t slot_q_tail;		/* uint32 */
	/* struct urt_worker */
	uint32_t worker_tid, worker_slot, worker_started, worker_exited;
	uint32_t worker_spawned, worker_completed, worker_polls, worker_steals;
	uint32_t worker_parks;
	uint32_t pad;
	/* struct urt_rt */
	uint64_t inject_len;		/* address of rt->inject.len (size_t) */
};

struct urt_shm_hdr {
	uint64_t magic;			/* URT_SHM_MAGIC */
	uint32_t version;		/* URT_SHM_VERSION */
	uint32_t hdr_size;
	int32_t pid;			/* creator: a forked child is not it */
	uint32_t nslots, nworkers;	/* workers: slots + spares */
	uint32_t ring_size;
	uint64_t size;			/* of the whole mapping */
	uint64_t worker_off;		/* offset of urt_shm_worker[0] */
	uint64_t worker_stride;
	uint64_t rt_addr;
	uint64_t shm_addr;		/* where the runtime maps this memfd */
	int64_t created_ns;
	char name[16];			/* urt_config.name */
	char monitor[64];		/* monitor backend, "" until known */
	struct urt_shm_layout layout;

	/* Control: written by the tools, read by the hooks' slow path. */
	_Alignas(64) uint32_t flags;	/* URT_SHM_* */
	uint32_t users_current;		/* tools that asked for URT_SHM_CURRENT */
	int32_t ring_reader;		/* pid of the tool reading the rings */
	uint32_t closed;		/* 1: urt_destroy ran: nothing more comes */
	uint32_t cur_gen;		/* bumped by a tool that turns URT_SHM_CURRENT on */
};

struct urt_shm_worker {
	/* Current task, written when URT_SHM_CURRENT is set; seqcount:
	 * seq is odd while the writer changes the fields. */
	_Alignas(64) uint32_t seq;
	int32_t tid;
	int32_t slot;
	uint32_t gen;			/* hdr.cur_gen when written: older is stale */
	uint64_t task;			/* 0: none */
	uint64_t since_ns;		/* step start */
	char name[16];
	/* Ring */
	_Alignas(64) uint64_t head;	/* producer */
	uint64_t lost;			/* producer: dropped, ring full */
	_Alignas(64) uint64_t tail;	/* consumer */
	_Alignas(64) struct urt_shm_event ev[];	/* ring_size */
};

#endif /* URT_TRACE_SHM_H */
