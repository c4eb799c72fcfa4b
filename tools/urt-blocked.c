// SPDX-License-Identifier: MIT
/*
 * urt-blocked - offcputime for urt tasks: which tasks blocked their worker
 * thread in the kernel, in which syscall, for how long, with the user
 * stack; log2 histograms per task name and syscall.
 *
 * USAGE: urt-blocked -p PID [-m MIN_US] [-M MAX_US] [-a] [-K N] [--source SRC] [duration]
 *
 * A block is a worker thread leaving the CPU voluntarily (sched_switch
 * with prev_state != 0, or urt.ko's urt_block tracepoint when the program
 * uses the module) until it runs again; the task is the one liburt's
 * hooks recorded as running on that worker (shared memory), read by the
 * BPF program at the moment the block begins. Every runtime of the
 * process is followed, also ones it creates while this runs.
 */
#include <argp.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "common.h"
#include "urt_tools.h"
#include "urt-blocked.skel.h"

#define MAX_KEYS	256
#define MAX_STACKS	8	/* per key */
#define STACK_DEPTH	127

static struct env {
	pid_t pid;
	uint64_t min_us, max_us;
	double duration;
	bool all;
	int stacks;
	bool verbose;
	enum urt_ksrc source;
} env = { .max_us = ~0ULL, .stacks = 3 };

#define OPT_SOURCE	0x100

const char *argp_program_version = "urt-blocked 0.1";
static const char doc[] =
"Which urt tasks blocked their worker thread, in which syscall, for how long.\n"
"\n"
"USAGE: urt-blocked -p PID [-m MIN_US] [-M MAX_US] [-a] [-K N] [--source SRC] [duration]\n"
"\n"
"Blocks come from urt.ko's tracepoints when the program uses the module,\n"
"else from sched_switch (--source; the second line says which).\n"
"\n"
"EXAMPLES:\n"
"    urt-blocked -p 1234 5          # 5 s, histograms per task and syscall\n"
"    urt-blocked -p 1234 -m 1000    # only blocks of 1 ms or more, until Ctrl-C\n"
"    urt-blocked -p 1234 -a 2       # also blocks with no task (parked workers)\n";

static const struct argp_option opts[] = {
	{ "pid", 'p', "PID", 0, "Process to trace (required)", 0 },
	{ "min", 'm', "MIN_US", 0, "Only blocks of at least MIN_US microseconds", 0 },
	{ "max", 'M', "MAX_US", 0, "Only blocks of at most MAX_US microseconds", 0 },
	{ "all", 'a', NULL, 0, "Also blocks while no task runs (parked or spare workers)", 0 },
	{ "stacks", 'K', "N", 0, "Show the N most frequent user stacks per line (default 3, 0: none)", 0 },
	{ "source", OPT_SOURCE, "SRC", 0,
	  "Kernel events: auto (default), urt.ko (its tracepoints) or sched_switch", 0 },
	{ "verbose", 'v', NULL, 0, "Verbose libbpf output, and which kernel events are used", 0 },
	{ NULL, 'h', NULL, OPTION_HIDDEN, "Show the full help", 0 },
	{},
};

static uint64_t parse_u64(const char *what, const char *arg)
{
	char *end;
	uint64_t v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || *end || arg[0] == '-')
		urt_die("invalid %s '%s'", what, arg);
	return v;
}

static error_t parse_arg(int key, char *arg, struct argp_state *state)
{
	static int pos;

	switch (key) {
	case 'p':
		env.pid = urt_parse_pid(arg);
		break;
	case 'm':
		env.min_us = parse_u64("min", arg);
		break;
	case 'M':
		env.max_us = parse_u64("max", arg);
		break;
	case 'a':
		env.all = true;
		break;
	case 'K':
		env.stacks = (int)parse_u64("stack count", arg);
		break;
	case 'v':
		env.verbose = true;
		break;
	case OPT_SOURCE:
		env.source = urt_parse_source(arg);
		break;
	case 'h':
		argp_state_help(state, stderr, ARGP_HELP_STD_HELP);
		break;
	case ARGP_KEY_ARG:
		if (pos++)
			urt_die("unexpected argument '%s' (see --help)", arg);
		env.duration = urt_parse_duration(arg);
		break;
	case ARGP_KEY_END:
		if (!env.pid)
			urt_die("-p PID is required (see --help)");
		if (env.min_us > env.max_us)
			urt_die("min (%llu us) is above max (%llu us)", (unsigned long long)env.min_us,
				(unsigned long long)env.max_us);
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

struct stack_count {
	int32_t id;
	uint64_t n;
};

struct key_stats {
	char name[16];
	int64_t syscall_nr;
	uint64_t n, total, max;
	uint64_t tasks[4];	/* a few task ids seen */
	int ntasks;
	struct urt_hist hist;
	struct stack_count stacks[MAX_STACKS];
};

static struct key_stats keys[MAX_KEYS];
static int nkeys;
static uint64_t dropped_keys;
static struct urt_proc proc;

static int on_event(void *ctx, void *data, size_t len)
{
	const struct urt_blk_event *e = data;
	struct key_stats *k = NULL;
	uint64_t d;

	if (len < sizeof(*e))
		return 0;
	d = e->end_ns - e->start_ns;
	for (int i = 0; i < nkeys; i++)
		if (keys[i].syscall_nr == e->syscall_nr && !strncmp(keys[i].name, e->name, 16)) {
			k = &keys[i];
			break;
		}
	if (!k) {
		if (nkeys == MAX_KEYS) {
			dropped_keys++;
			return 0;
		}
		k = &keys[nkeys++];
		memcpy(k->name, e->name, 16);
		k->name[15] = 0;
		k->syscall_nr = e->syscall_nr;
	}
	k->n++;
	k->total += d;
	if (d > k->max)
		k->max = d;
	urt_hist_add(&k->hist, d / 1000);
	if (e->task) {
		bool seen = false;

		for (int i = 0; i < k->ntasks; i++)
			seen |= k->tasks[i] == e->task;
		if (!seen && k->ntasks < 4)
			k->tasks[k->ntasks++] = e->task;
	}
	if (e->stack_id >= 0) {
		int i;

		for (i = 0; i < MAX_STACKS && k->stacks[i].n; i++)
			if (k->stacks[i].id == e->stack_id)
				break;
		if (i < MAX_STACKS) {
			k->stacks[i].id = e->stack_id;
			k->stacks[i].n++;
		}
	}
	return 0;
}

static int cmp_total(const void *a, const void *b)
{
	const struct key_stats *x = a, *y = b;

	return x->total < y->total ? 1 : x->total > y->total ? -1 : 0;
}

static int cmp_stack(const void *a, const void *b)
{
	const struct stack_count *x = a, *y = b;

	return x->n < y->n ? 1 : x->n > y->n ? -1 : 0;
}

static void report(int stacks_fd)
{
	char b1[32], b2[32], b3[32], sym[512];

	qsort(keys, (size_t)nkeys, sizeof(keys[0]), cmp_total);
	if (!nkeys)
		printf("no blocks of urt tasks seen\n");
	for (int i = 0; i < nkeys; i++) {
		struct key_stats *k = &keys[i];

		printf("\ntask \"%s\"", k->name[0] ? k->name : (env.all ? "(no task)" : "(unnamed)"));
		for (int t = 0; t < k->ntasks; t++)
			printf("%s%llu", t ? "," : " id ", (unsigned long long)k->tasks[t]);
		printf(" blocked in %s: %llu blocks, total %s, avg %s, max %s\n",
		       urt_syscall_name(k->syscall_nr), (unsigned long long)k->n,
		       urt_fmt_ns(b1, sizeof(b1), k->total),
		       urt_fmt_ns(b2, sizeof(b2), k->n ? k->total / k->n : 0),
		       urt_fmt_ns(b3, sizeof(b3), k->max));
		urt_hist_print(stdout, &k->hist, "usecs");
		qsort(k->stacks, MAX_STACKS, sizeof(k->stacks[0]), cmp_stack);
		for (int s = 0; s < env.stacks && s < MAX_STACKS && k->stacks[s].n; s++) {
			uint64_t ips[STACK_DEPTH] = {};

			if (bpf_map_lookup_elem(stacks_fd, &k->stacks[s].id, ips))
				continue;
			printf("    user stack (%llu blocks):\n", (unsigned long long)k->stacks[s].n);
			for (int d = 0; d < STACK_DEPTH && ips[d]; d++)
				printf("      %s\n", urt_sym(proc.pid, ips[d], sym, sizeof(sym)));
		}
	}
	if (dropped_keys)
		printf("\n(%llu blocks not counted: more than %d task/syscall pairs)\n",
		       (unsigned long long)dropped_keys, MAX_KEYS);
}

/* Workers of every runtime, new runtimes included, into tid_worker. */
static void update_tids(struct urt_blocked_bpf *skel)
{
	int old = proc.nrt;

	if (urt_proc_rescan(&proc))
		for (int r = old; r < proc.nrt; r++)
			urt_rt_want_current(&proc.rt[r], true);
	urt_map_tids(bpf_map__fd(skel->maps.tid_worker), &proc, NULL);
}

int main(int argc, char **argv)
{
	static const struct argp argp = { .options = opts, .parser = parse_arg, .doc = doc };
	struct urt_blocked_bpf *skel;
	struct bpf_link *enable;
	struct ring_buffer *rb;
	char bin[PATH_MAX];
	uint64_t t0, until, last = 0;
	struct bpf_link *links[3] = {};
	char source[160];
	const char *why = NULL;
	int err;

	urt_tool = "urt-blocked";
	err = argp_parse(&argp, argc, argv, 0, NULL, NULL);
	if (err)
		return 1;
	urt_proc_open(&proc, env.pid);
	urt_need_btf();
	urt_libbpf_quiet(env.verbose);
	skel = urt_blocked_bpf__open();
	if (!skel)
		urt_bpf_fail("opening the BPF object", -errno);
	skel->rodata->target_tgid = (__u32)env.pid;
	skel->rodata->min_ns = env.min_us * 1000;
	skel->rodata->max_ns = env.max_us > ~0ULL / 1000 ? ~0ULL : env.max_us * 1000;
	skel->rodata->tasks_only = !env.all;
	err = urt_blocked_bpf__load(skel);
	if (err)
		urt_bpf_fail("loading the BPF program", err);
	if (urt_find_probe_binary(env.pid, bin, sizeof(bin)))
		urt_die("pid %d: no urt USDT probes found in its liburt (built without <sys/sdt.h>?)",
			env.pid);
	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_event, NULL, NULL);
	if (!rb)
		urt_bpf_fail("creating the ring buffer", -errno);
	/* before the hooks go on: a failure here exits with one line */
	urt_attach_source(env.source, env.pid, skel->progs.urt_switch, skel->progs.urt_ko_block,
			  skel->progs.urt_ko_unblock, links, source, sizeof(source));
	urt_want_current(&proc, true);
	update_tids(skel);
	enable = bpf_program__attach_usdt(skel->progs.urt_enable, env.pid, bin, "urt", "enable", NULL);
	if (!enable) {
		err = -errno;
		urt_want_current(&proc, false);
		urt_bpf_fail("attaching to urt:enable", err);
	}
	urt_catch_signals();
	t0 = urt_now_ns();
	until = env.duration > 0 ? t0 + (uint64_t)(env.duration * 1e9) : UINT64_MAX;
	printf("Tracing blocks of urt tasks in pid %d (%s)", env.pid, proc.comm);
	if (env.min_us || env.max_us != ~0ULL)
		printf(", %llu..%s us", (unsigned long long)env.min_us,
		       env.max_us == ~0ULL ? "" : (snprintf(bin, sizeof(bin), "%llu",
							   (unsigned long long)env.max_us), bin));
	printf(env.duration > 0 ? " for %.3g s...\n" : "... Hit Ctrl-C to end.\n", env.duration);
	printf("Kernel events: %s\n", source);
	fflush(stdout);
	while (!why) {
		uint64_t now;

		ring_buffer__poll(rb, 50);
		now = urt_now_ns();
		if (urt_exiting)
			why = "interrupted";
		else if (now >= until)
			why = "done";
		else if (!urt_proc_alive(env.pid))
			why = "the program exited";
		if (now - last > 100000000) {
			update_tids(skel);
			last = now;
		}
	}
	for (int i = 0; i < 3; i++)
		bpf_link__destroy(links[i]);
	bpf_link__destroy(enable);
	ring_buffer__poll(rb, 0);
	urt_want_current(&proc, false);
	if (strcmp(why, "done"))
		printf("(%s)\n", why);
	report(bpf_map__fd(skel->maps.stacks));
	if (proc.nrt > 1)
		printf("\n%d runtimes followed\n", proc.nrt);
	if (skel->bss->nr_lost)
		printf("\n%llu blocks lost (ring buffer full)\n", (unsigned long long)skel->bss->nr_lost);
	ring_buffer__free(rb);
	urt_blocked_bpf__destroy(skel);
	urt_proc_close(&proc);
	return 0;
}
