/* SPDX-License-Identifier: MIT */
/*
 * common.h - what urt-top, urt-blocked and urt-trace share: finding a urt
 * process and its runtimes, reading the runtime's counters, turning the
 * trace hooks on, BPF setup errors, log2 histograms, syscall names.
 *
 * Every error is one line on stderr that starts with the tool's name;
 * functions return a negative errno after printing it.
 */
#ifndef URT_TOOLS_COMMON_H
#define URT_TOOLS_COMMON_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "trace_shm.h"

extern const char *urt_tool;		/* program name, for messages */
extern volatile sig_atomic_t urt_exiting;

/*
 * One runtime of the target: its shared memory, mapped here. A runtime
 * the program destroyed stays mapped (hdr->closed is 1): the mapping
 * keeps its memfd, so what its rings still hold can be read.
 */
struct urt_rtview {
	struct urt_shm_hdr *hdr;
	size_t size;
	int fd;
	uint64_t ino;			/* of the memfd: the same runtime is found once */
	bool tool_on;			/* this tool turned its hooks on (urt_rt_want_current) */
};

/* Every runtime of a process, in the order they were found; rt may move
 * (urt_proc_rescan): keep indices, not pointers. */
struct urt_proc {
	pid_t pid;
	int nrt, cap;
	struct urt_rtview *rt;
	char comm[32];
};

/* Per slot, read from the process (urt_read_slots). */
struct urt_slot_view {
	int index;
	int owner;			/* worker index, -1 if unknown */
	bool parked;
	int32_t tid;			/* owner's thread */
	uint64_t cur_task, steps, handoffs, blocks_seen, hogs, blocked_ns;
	uint32_t qlen;			/* ring + LIFO slot */
	uint64_t steals, spawned, completed;	/* the owner worker's counters */
	char task_name[16];		/* from the shared memory, "" if unknown */
};

struct urt_worker_view {
	int32_t tid;
	bool started, exited;
	int slot;			/* -1: a spare */
	uint64_t spawned, completed, polls, steals, parks;
};

void urt_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void urt_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parses a pid argument; exits with a clear line on a bad one. */
pid_t urt_parse_pid(const char *arg);
/* A positive number of seconds, or one clear line and exit. */
double urt_parse_duration(const char *arg);
/* Finds the runtimes of pid and maps their shared memory. Exits with one
 * line if pid does not exist, is not a urt program, or cannot be read. */
void urt_proc_open(struct urt_proc *p, pid_t pid);
void urt_proc_close(struct urt_proc *p);
/* Maps runtimes created since (urt_proc_open or the last rescan): returns
 * how many are new (at rt[old nrt..]), never fails loudly (the process may
 * be exiting). */
int urt_proc_rescan(struct urt_proc *p);
bool urt_proc_alive(pid_t pid);
/* Does pid hold an fd whose /proc link starts with prefix? */
bool urt_pid_has_fd(pid_t pid, const char *prefix);

/* process_vm_readv(); 0 or -errno. */
int urt_read_mem(pid_t pid, uint64_t addr, void *buf, size_t len);
/* Reads slots and workers of rt; returns the number of slots or -errno. */
int urt_read_slots(pid_t pid, const struct urt_rtview *rt, struct urt_slot_view *sv,
		   struct urt_worker_view *wv);
uint64_t urt_read_inject_len(pid_t pid, const struct urt_rtview *rt);

/* The shared-memory "current task" record of worker k: a consistent copy. */
bool urt_shm_current(const struct urt_rtview *rt, unsigned int k, struct urt_shm_worker *out);
static inline struct urt_shm_worker *urt_shm_worker(const struct urt_rtview *rt, unsigned int k)
{
	return (struct urt_shm_worker *)((char *)rt->hdr + rt->hdr->worker_off +
					 (size_t)k * rt->hdr->worker_stride);
}
/* Ask for (or stop asking for) the current task per worker: in every
 * runtime of p, or in one (a runtime found by urt_proc_rescan). Turning
 * off undoes only what this tool turned on. */
void urt_want_current(struct urt_proc *p, bool on);
void urt_rt_want_current(struct urt_rtview *rt, bool on);

/*
 * Fills the BPF map tid_worker (struct urt_tid_info per tid) with the
 * live worker threads of every open runtime of p; seen(), if given, is
 * called for each (runtime index, worker index, tid).
 */
void urt_map_tids(int map_fd, struct urt_proc *p,
		  void (*seen)(int rt, int worker, int32_t tid));

/*
 * Where the kernel side gets its blocks from: sched_switch (any kernel
 * with BTF) or urt.ko's tracepoints urt_block/urt_unblock (the module is
 * loaded and the target's runtime uses it, its monitor backend kmod).
 */
enum urt_ksrc { URT_KSRC_AUTO, URT_KSRC_KO, URT_KSRC_SWITCH };
/* "auto", "urt.ko" or "sched_switch"; one clear line and exit otherwise. */
enum urt_ksrc urt_parse_source(const char *arg);
const char *urt_source_name(enum urt_ksrc s);
struct bpf_program;
struct bpf_link;
/*
 * Attaches the source `want` asks for (auto: urt.ko when it is loaded and
 * pid has /dev/urt open, else sched_switch; a failed urt.ko attach falls
 * back). Programs: the sched_switch one and urt.ko's two; links[3] get
 * the links. Returns the source used and why in why[]; exits with one
 * line if the source asked for cannot be attached.
 */
enum urt_ksrc urt_attach_source(enum urt_ksrc want, pid_t pid, struct bpf_program *sw,
				struct bpf_program *ko_block, struct bpf_program *ko_unblock,
				struct bpf_link **links, char *why, size_t whylen);

/* Path of the ELF file of pid that holds liburt's USDT probes. */
int urt_find_probe_binary(pid_t pid, char *path, size_t len);

/* Checks that the kernel has BTF; exits with one line if not. */
void urt_need_btf(void);
/* One line for a BPF load/attach failure, then exit(1). */
void urt_bpf_fail(const char *what, int err) __attribute__((noreturn));
/* libbpf prints only with -v. */
void urt_libbpf_quiet(bool verbose);

/* SIGINT/SIGTERM set urt_exiting. */
void urt_catch_signals(void);

uint64_t urt_now_ns(void);

/* "read", "futex", ... or "syscall_N"; "-" for -1 (not in a syscall). */
const char *urt_syscall_name(long nr);

/* Log2 histogram of 64 buckets, printed as bcc does. */
struct urt_hist {
	uint64_t slot[64];
};
void urt_hist_add(struct urt_hist *h, uint64_t v);
void urt_hist_print(FILE *f, const struct urt_hist *h, const char *unit);

/* "12.3ms", "850us", "2.10s" */
const char *urt_fmt_ns(char *buf, size_t len, uint64_t ns);

/* Symbolizes a user address of pid: "func+0x12 (file)" or "0xaddr". */
const char *urt_sym(pid_t pid, uint64_t addr, char *buf, size_t len);

#endif
