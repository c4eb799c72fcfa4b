// SPDX-License-Identifier: MIT
/*
 * urt-top - a live view of urt programs: per slot, the owning thread, its
 * state (running / blocked in which syscall, for how long / idle), the
 * current task, queue depth, steals, handoffs.
 *
 * USAGE: urt-top [-b] [-p PID] [interval] [count]
 *
 * Counters come from the process (process_vm_readv at the addresses
 * liburt publishes in its shared memory); task names from liburt's
 * shared memory (the hooks record them while a tool has them turned on);
 * blocked/running from a sched_switch BPF program.
 */
#include <argp.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "common.h"
#include "urt_tools.h"
#include "urt-top.skel.h"

#define MAX_PROCS	64

static struct env {
	pid_t pid;
	bool batch;
	bool verbose;
	int interval;
	long count;
} env = { .interval = 1, .count = -1 };

const char *argp_program_version = "urt-top 0.1";
static const char doc[] =
"Live view of urt programs: per slot its thread, state, task, queue, steals, handoffs.\n"
"\n"
"USAGE: urt-top [-b] [-p PID] [interval] [count]\n"
"\n"
"EXAMPLES:\n"
"    urt-top              # every urt process, refresh each second\n"
"    urt-top -p 1234      # one process\n"
"    urt-top -b 1 5       # batch output: 5 reports, 1 s apart\n";

static const struct argp_option opts[] = {
	{ "pid", 'p', "PID", 0, "Show this process only", 0 },
	{ "batch", 'b', NULL, 0, "Batch mode: print reports one after the other", 0 },
	{ "verbose", 'v', NULL, 0, "Verbose libbpf output", 0 },
	{ NULL, 'h', NULL, OPTION_HIDDEN, "Show the full help", 0 },
	{},
};

static error_t parse_arg(int key, char *arg, struct argp_state *state)
{
	static int pos;
	char *end;
	long v;

	switch (key) {
	case 'p':
		env.pid = urt_parse_pid(arg);
		break;
	case 'b':
		env.batch = true;
		break;
	case 'v':
		env.verbose = true;
		break;
	case 'h':
		argp_state_help(state, stderr, ARGP_HELP_STD_HELP);
		break;
	case ARGP_KEY_ARG:
		errno = 0;
		v = strtol(arg, &end, 10);
		if (errno || *end || v <= 0)
			urt_die("invalid %s '%s'", pos ? "count" : "interval", arg);
		if (pos == 0)
			env.interval = (int)v;
		else if (pos == 1)
			env.count = v;
		else
			urt_die("unexpected argument '%s' (see --help)", arg);
		pos++;
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

/* A urt program holds its runtimes' shared memory (memfd) open. */
static bool is_urt_proc(pid_t pid)
{
	return urt_pid_has_fd(pid, "/memfd:" URT_SHM_NAME);
}

static int find_procs(pid_t *pids, int max)
{
	struct dirent *de;
	int n = 0;
	DIR *d = opendir("/proc");

	if (!d)
		return 0;
	while (n < max && (de = readdir(d))) {
		pid_t pid = (pid_t)atoi(de->d_name);

		if (pid > 0 && pid != getpid() && is_urt_proc(pid))
			pids[n++] = pid;
	}
	closedir(d);
	return n;
}

struct target {
	struct urt_proc proc;
	struct bpf_link *enable;
	bool gone;
};

static struct target targets[MAX_PROCS];
static int ntargets;
static struct urt_top_bpf *skel;

static void add_target(pid_t pid)
{
	struct target *t = &targets[ntargets];
	char bin[PATH_MAX];
	int err;

	urt_proc_open(&t->proc, pid);
	err = urt_find_probe_binary(pid, bin, sizeof(bin));
	if (!err) {
		t->enable = bpf_program__attach_usdt(skel->progs.urt_enable, pid, bin, "urt",
						     "enable", NULL);
		if (!t->enable)
			urt_bpf_fail("attaching to urt:enable", -errno);
	}
	urt_want_current(&t->proc, true);
	ntargets++;
}

/* Runtimes a target created since the last refresh, and the workers of all. */
static void update_tids(void)
{
	int fd = bpf_map__fd(skel->maps.tid_worker);

	for (int i = 0; i < ntargets; i++) {
		struct target *t = &targets[i];
		int old = t->proc.nrt;

		if (t->gone)
			continue;
		if (urt_proc_rescan(&t->proc))
			for (int r = old; r < t->proc.nrt; r++)
				urt_rt_want_current(&t->proc.rt[r], true);
		urt_map_tids(fd, &t->proc, NULL);
	}
}

static void show_rt(struct target *t, struct urt_rtview *rt, uint64_t now)
{
	struct urt_slot_view sv[256];
	struct urt_worker_view wv[512];
	int fd = bpf_map__fd(skel->maps.blocked);
	unsigned int nw = rt->hdr->nworkers, live = 0, spares = 0;
	uint64_t spawned = 0, completed = 0;
	char buf[32];
	int n;

	if (rt->hdr->nslots > 256 || nw > 512)
		return;
	n = urt_read_slots(t->proc.pid, rt, sv, wv);
	if (n < 0) {
		if (!urt_proc_alive(t->proc.pid)) {
			printf("pid %d: exited\n", t->proc.pid);
			t->gone = true;
			return;
		}
		urt_die("pid %d: cannot read its memory: %s", t->proc.pid, strerror(-n));
	}
	for (unsigned int k = 0; k < nw; k++) {
		if (wv[k].started && !wv[k].exited) {
			live++;
			if (wv[k].slot < 0)
				spares++;
		}
		spawned += wv[k].spawned;
		completed += wv[k].completed;
	}
	printf("pid %d (%s) runtime \"%.16s\": %u slots, %u threads (%u spare), "
	       "tasks spawned %llu done %llu, injection queue %llu\n",
	       t->proc.pid, t->proc.comm, rt->hdr->name, rt->hdr->nslots, live, spares,
	       (unsigned long long)spawned, (unsigned long long)completed,
	       (unsigned long long)urt_read_inject_len(t->proc.pid, rt));
	printf("%-4s %-7s %-26s %-24s %5s %9s %6s %8s %6s %4s\n", "SLOT", "TID", "STATE", "TASK",
	       "QUEUE", "STEPS", "STEALS", "HANDOFFS", "BLOCKS", "HOGS");
	for (int i = 0; i < n; i++) {
		struct urt_slot_view *s = &sv[i];
		struct urt_blk_start b;
		char state[64], task[48];
		__u32 tid = (__u32)s->tid;

		if (s->parked) {
			snprintf(state, sizeof(state), "idle");
		} else if (s->tid > 0 && !bpf_map_lookup_elem(fd, &tid, &b)) {
			snprintf(state, sizeof(state), "blocked %s %s", urt_syscall_name(b.syscall_nr),
				 urt_fmt_ns(buf, sizeof(buf), now > b.start_ns ? now - b.start_ns : 0));
		} else {
			struct urt_shm_worker cur;

			if (s->owner >= 0 && s->cur_task &&
			    urt_shm_current(rt, (unsigned int)s->owner, &cur) &&
			    cur.task == s->cur_task && cur.since_ns)
				snprintf(state, sizeof(state), "running %s",
					 urt_fmt_ns(buf, sizeof(buf), now > cur.since_ns ? now - cur.since_ns : 0));
			else
				snprintf(state, sizeof(state), "running");
		}
		if (s->cur_task && !s->parked)
			snprintf(task, sizeof(task), "%llu %s", (unsigned long long)s->cur_task,
				 s->task_name);
		else
			snprintf(task, sizeof(task), "-");
		printf("%-4d %-7d %-26s %-24.24s %5u %9llu %6llu %8llu %6llu %4llu\n", s->index,
		       s->tid, state, task, s->qlen, (unsigned long long)s->steps,
		       (unsigned long long)s->steals, (unsigned long long)s->handoffs,
		       (unsigned long long)s->blocks_seen, (unsigned long long)s->hogs);
	}
	/* Threads that own no slot: spares, and stuck threads finishing the
	 * step they were stuck in when their slot was handed off. */
	for (unsigned int k = 0; k < nw; k++) {
		struct urt_shm_worker cur;
		struct urt_blk_start b;
		char state[64], task[48];
		__u32 tid = (__u32)wv[k].tid;
		bool owner = false, has_task;

		if (!wv[k].started || wv[k].exited || wv[k].tid <= 0)
			continue;
		for (int i = 0; i < n; i++)
			owner |= sv[i].owner == (int)k && !sv[i].parked;
		for (int i = 0; i < n; i++)
			owner |= sv[i].owner == (int)k;
		if (owner)
			continue;
		has_task = urt_shm_current(rt, k, &cur) && cur.task && cur.tid == wv[k].tid;
		if (!bpf_map_lookup_elem(fd, &tid, &b))
			snprintf(state, sizeof(state), "%s %s %s", has_task ? "blocked" : "spare, in",
				 urt_syscall_name(b.syscall_nr),
				 urt_fmt_ns(buf, sizeof(buf), now > b.start_ns ? now - b.start_ns : 0));
		else
			snprintf(state, sizeof(state), has_task ? "running" : "spare");
		if (has_task)
			snprintf(task, sizeof(task), "%llu %s (slot lost)", (unsigned long long)cur.task,
				 cur.name);
		else
			snprintf(task, sizeof(task), "-");
		printf("%-4s %-7d %-26s %-24.24s %5s %9s %6llu\n", "-", wv[k].tid, state, task, "-", "-",
		       (unsigned long long)wv[k].steals);
	}
}

int main(int argc, char **argv)
{
	static const struct argp argp = { .options = opts, .parser = parse_arg, .doc = doc };
	pid_t pids[MAX_PROCS];
	int npids, err;

	urt_tool = "urt-top";
	err = argp_parse(&argp, argc, argv, 0, NULL, NULL);
	if (err)
		return 1;
	if (env.pid) {
		if (!urt_proc_alive(env.pid))
			urt_die("no process with pid %d", env.pid);
		pids[0] = env.pid;
		npids = 1;
	} else {
		npids = find_procs(pids, MAX_PROCS);
	}
	urt_need_btf();
	urt_libbpf_quiet(env.verbose);
	skel = urt_top_bpf__open();
	if (!skel)
		urt_bpf_fail("opening the BPF object", -errno);
	skel->rodata->target_tgid = env.pid;	/* 0: any thread in tid_worker */
	err = urt_top_bpf__load(skel);
	if (err)
		urt_bpf_fail("loading the BPF program", err);
	err = urt_top_bpf__attach(skel);
	if (err)
		urt_bpf_fail("attaching to sched_switch", err);
	for (int i = 0; i < npids; i++)
		add_target(pids[i]);
	urt_catch_signals();
	if (!ntargets && env.batch)
		printf("no urt processes\n");

	for (long iter = 0; !urt_exiting && (env.count < 0 || iter < env.count); iter++) {
		time_t tnow;
		char tbuf[32];
		bool any = false;

		if (iter) {
			struct timespec ts = { env.interval, 0 };

			while (nanosleep(&ts, &ts) && !urt_exiting)
				;
			if (urt_exiting)
				break;
		}
		tnow = time(NULL);
		update_tids();
		strftime(tbuf, sizeof(tbuf), "%H:%M:%S", localtime(&tnow));
		if (!env.batch)
			printf("\033[H\033[2J");
		printf("urt-top - %s\n", tbuf);
		for (int i = 0; i < ntargets; i++) {
			struct target *t = &targets[i];
			uint64_t now = urt_now_ns();

			if (t->gone)
				continue;
			any = true;
			for (int r = 0; r < t->proc.nrt && !t->gone; r++)
				if (!__atomic_load_n(&t->proc.rt[r].hdr->closed, __ATOMIC_ACQUIRE))
					show_rt(t, &t->proc.rt[r], now);	/* destroyed: gone */
		}
		if (!any)
			printf("no urt processes\n");
		printf("\n");
		fflush(stdout);
		if (env.pid && targets[0].gone)
			break;
	}
	for (int i = 0; i < ntargets; i++) {
		urt_want_current(&targets[i].proc, false);
		bpf_link__destroy(targets[i].enable);
		urt_proc_close(&targets[i].proc);
	}
	urt_top_bpf__destroy(skel);
	return 0;
}
