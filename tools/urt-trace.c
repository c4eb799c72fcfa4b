// SPDX-License-Identifier: MIT
/*
 * urt-trace - records a urt program and writes a Chrome trace event JSON
 * file (opens in the Perfetto UI, ui.perfetto.dev, or chrome://tracing):
 * one track per worker thread, a slice per task step, kernel blocks as
 * slices on the worker, handoffs as flow arrows between threads, spawns,
 * wakes and steals as instant events. --summary prints a text summary instead.
 *
 * USAGE: urt-trace -p PID [-o FILE] [-m MIN_US] [--summary] [--source SRC] [duration]
 *
 * Runtime events come from liburt's per-worker rings in shared memory
 * (written only while this tool runs), of every runtime of the process,
 * also ones it creates while recording; kernel blocks from urt.ko's
 * tracepoints when the program uses the module, else from sched_switch.
 * The file is written when the duration ends, on Ctrl-C, or when the
 * program exits (then with everything it recorded up to its exit), to a
 * temporary name first and renamed: it is complete or absent.
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
#include "urt-trace.skel.h"

static struct env {
	pid_t pid;
	const char *out;
	double duration;	/* s; 0: until Ctrl-C or exit */
	uint64_t min_us;
	bool summary;
	bool verbose;
	enum urt_ksrc source;
} env = { .min_us = 10 };

#define OPT_SOURCE	0x100

const char *argp_program_version = "urt-trace 0.1";
static const char doc[] =
"Record a urt program: task steps, kernel blocks, handoffs, spawns, wakes,\n"
"steals.\n"
"Writes a Chrome trace event JSON file for the Perfetto UI, or a summary.\n"
"\n"
"USAGE: urt-trace -p PID [-o FILE] [-m MIN_US] [--summary] [--source SRC] [duration]\n"
"\n"
"EXAMPLES:\n"
"    urt-trace -p 1234 2            # 2 s into urt-trace-1234.json\n"
"    urt-trace -p 1234 -o t.json    # until Ctrl-C or the program exits\n"
"    urt-trace -p 1234 --summary 1  # text summary of one second\n"
"\n"
"Kernel blocks come from urt.ko's tracepoints when the program uses the\n"
"module, else from sched_switch (--source; the file's otherData and the\n"
"summary say which).\n";

static const struct argp_option opts[] = {
	{ "pid", 'p', "PID", 0, "Process to record (required)", 0 },
	{ "output", 'o', "FILE", 0, "Trace file (default urt-trace-PID.json)", 0 },
	{ "min", 'm', "MIN_US", 0, "Record kernel blocks of at least MIN_US (default 10)", 0 },
	{ "summary", 's', NULL, 0, "Print a text summary instead of writing a file", 0 },
	{ "source", OPT_SOURCE, "SRC", 0,
	  "Kernel events: auto (default), urt.ko (its tracepoints) or sched_switch", 0 },
	{ "verbose", 'v', NULL, 0, "Verbose libbpf output, and which kernel events are used", 0 },
	{ NULL, 'h', NULL, OPTION_HIDDEN, "Show the full help", 0 },
	{},
};

static error_t parse_arg(int key, char *arg, struct argp_state *state)
{
	static int pos;
	char *end;

	switch (key) {
	case 'p':
		env.pid = urt_parse_pid(arg);
		break;
	case 'o':
		env.out = arg;
		break;
	case 'm':
		errno = 0;
		env.min_us = strtoull(arg, &end, 10);
		if (errno || *end)
			urt_die("invalid min '%s'", arg);
		break;
	case 's':
		env.summary = true;
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
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

/* ------------------------------------------------------------ recording */

struct rec {
	struct urt_shm_event e;
	int rt;			/* runtime index in proc */
	int worker;		/* ring index in that runtime */
	bool misc;		/* the misc ring (monitor, outside threads) */
};

struct kblock {
	struct urt_blk_event e;
};

struct thread {
	int32_t tid;
	int rt;			/* runtime index, with worker */
	int worker;		/* -1: unknown */
	char comm[20];
};

static struct rec *recs;
static size_t nrecs, caprecs;
static struct kblock *kbs;
static size_t nkbs, capkbs;
static struct thread threads[1024];
static int nthreads;
static uint64_t lost_rt, lost_kernel;
static struct urt_proc proc;
static uint64_t t0, tend;
static char source[160];	/* where kernel blocks come from, and why */

static void *grow(void *p, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return p;
	*cap = *cap ? *cap * 2 : 4096;
	p = realloc(p, *cap * elem);
	if (!p)
		urt_die("out of memory after %zu events", n);
	return p;
}

static struct thread *thread_of(int32_t tid, int rt, int worker)
{
	struct thread *t;
	char path[96];
	FILE *f;

	for (int i = 0; i < nthreads; i++) {
		if (threads[i].tid == tid) {
			if (threads[i].worker < 0) {
				threads[i].rt = rt;
				threads[i].worker = worker;
			}
			return &threads[i];
		}
	}
	if (nthreads == (int)(sizeof(threads) / sizeof(threads[0])))
		return NULL;
	t = &threads[nthreads++];
	t->tid = tid;
	t->rt = rt;
	t->worker = worker;
	snprintf(t->comm, sizeof(t->comm), "tid %d", tid);
	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", proc.pid, tid);
	f = fopen(path, "r");
	if (f) {
		if (fgets(t->comm, sizeof(t->comm), f))
			t->comm[strcspn(t->comm, "\n")] = 0;
		fclose(f);
	}
	return t;
}

static int on_kblock(void *ctx, void *data, size_t len)
{
	const struct urt_blk_event *e = data;

	if (len < sizeof(*e) || (tend && e->start_ns >= tend))
		return 0;	/* began after the recording ended */
	kbs = grow(kbs, &capkbs, nkbs, sizeof(*kbs));
	kbs[nkbs++].e = *e;
	thread_of(e->tid, 0, -1);
	return 0;
}

/* Claims the rings of runtime r (one reader at a time) and turns its
 * events on. A runtime found while recording that another urt-trace
 * reads is left out with a warning; at the start that is an error. */
static bool claim_rt(int r, bool at_start)
{
	struct urt_shm_hdr *h = proc.rt[r].hdr;
	int32_t cur = 0, me = getpid();

	while (!__atomic_compare_exchange_n(&h->ring_reader, &cur, me, false,
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
		if (cur > 0 && kill(cur, 0) == 0) {
			if (at_start)
				urt_die("pid %d is being recorded by another urt-trace (pid %d)",
					proc.pid, cur);
			urt_warn("runtime \"%.16s\" of pid %d is being recorded by another urt-trace (pid %d): left out",
				 h->name, proc.pid, cur);
			return false;
		}
		/* its owner died: take it over (cur holds the value seen) */
	}
	/* Start from now: drop what a dead reader left. */
	for (unsigned int k = 0; k <= h->nworkers; k++) {
		struct urt_shm_worker *sw = urt_shm_worker(&proc.rt[r], k);

		__atomic_store_n(&sw->tail, __atomic_load_n(&sw->head, __ATOMIC_ACQUIRE),
				 __ATOMIC_RELEASE);
	}
	__atomic_fetch_or(&h->flags, URT_SHM_EVENTS, __ATOMIC_SEQ_CST);
	return true;
}

static bool *claimed;	/* per runtime index */
static int nclaimed;

static void claim_new(bool at_start)
{
	if (nclaimed < proc.nrt) {
		bool *c = realloc(claimed, (size_t)proc.nrt * sizeof(*c));

		if (!c)
			urt_die("out of memory");
		claimed = c;
	}
	for (; nclaimed < proc.nrt; nclaimed++) {
		claimed[nclaimed] = claim_rt(nclaimed, at_start);
		if (claimed[nclaimed])
			urt_rt_want_current(&proc.rt[nclaimed], true);
	}
}

static void release_rings(void)
{
	for (int r = 0; r < nclaimed; r++) {
		struct urt_shm_hdr *h = proc.rt[r].hdr;

		if (!claimed[r])
			continue;
		__atomic_fetch_and(&h->flags, ~URT_SHM_EVENTS, __ATOMIC_SEQ_CST);
		__atomic_store_n(&h->ring_reader, 0, __ATOMIC_SEQ_CST);
	}
}

static void drain_rings(void)
{
	for (int r = 0; r < nclaimed; r++) {
		struct urt_shm_hdr *h = proc.rt[r].hdr;

		if (!claimed[r])
			continue;
		for (unsigned int k = 0; k <= h->nworkers; k++) {
			struct urt_shm_worker *sw = urt_shm_worker(&proc.rt[r], k);
			uint64_t head = __atomic_load_n(&sw->head, __ATOMIC_ACQUIRE);
			uint64_t tail = sw->tail;

			for (; tail != head; tail++) {
				struct rec *x;

				recs = grow(recs, &caprecs, nrecs, sizeof(*recs));
				x = &recs[nrecs++];
				x->e = sw->ev[tail & (h->ring_size - 1)];
				x->rt = r;
				x->worker = (int)k;
				x->misc = k == h->nworkers;
				if (!x->misc) {
					thread_of(x->e.tid, r, (int)k);
				} else {
					/* monitor, or a thread outside the runtime */
					thread_of(x->e.tid, r, -1);
					if (x->e.type == URT_EV_HANDOFF)
						thread_of((int32_t)x->e.arg, r, -1);
				}
			}
			__atomic_store_n(&sw->tail, tail, __ATOMIC_RELEASE);
		}
	}
}

static void seen_worker(int rt, int worker, int32_t tid)
{
	thread_of(tid, rt, worker);
}

/* Runtimes created since the last look, and the workers of all. */
static void update_tids(struct urt_trace_bpf *skel)
{
	if (urt_proc_rescan(&proc))
		claim_new(false);
	urt_map_tids(bpf_map__fd(skel->maps.tid_worker), &proc, seen_worker);
}

/* ------------------------------------------------------------ output */

static int cmp_rec(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;

	if (x->e.tid != y->e.tid)
		return x->e.tid < y->e.tid ? -1 : 1;
	if (x->e.ts != y->e.ts)
		return x->e.ts < y->e.ts ? -1 : 1;
	return 0;
}

static int cmp_rec_ts(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;

	return x->e.ts < y->e.ts ? -1 : x->e.ts > y->e.ts;
}


static double us(uint64_t ns)
{
	return ns > t0 ? (double)(ns - t0) / 1000.0 : 0.0;
}

static void json_str(FILE *f, const char *s, size_t max)
{
	fputc('"', f);
	for (size_t i = 0; i < max && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static bool first_ev = true;

static void ev_begin(FILE *f)
{
	fputs(first_ev ? "\n" : ",\n", f);
	first_ev = false;
}

static void slice(FILE *f, const char *cat, const char *name, size_t nmax, int32_t tid,
		  uint64_t b, uint64_t e, const char *args)
{
	ev_begin(f);
	fprintf(f, "{\"ph\":\"X\",\"cat\":\"%s\",\"name\":", cat);
	json_str(f, name, nmax);
	fprintf(f, ",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f%s%s}", proc.pid, tid, us(b),
		e > b ? (double)(e - b) / 1000.0 : 0.0, args ? ",\"args\":" : "", args ? args : "");
}

static void instant(FILE *f, const char *cat, const char *name, int32_t tid, uint64_t ts,
		    const char *args)
{
	ev_begin(f);
	fprintf(f, "{\"ph\":\"i\",\"s\":\"t\",\"cat\":\"%s\",\"name\":", cat);
	json_str(f, name, 64);
	fprintf(f, ",\"pid\":%d,\"tid\":%d,\"ts\":%.3f%s%s}", proc.pid, tid, us(ts),
		args ? ",\"args\":" : "", args ? args : "");
}

static const char *task_label(char *buf, size_t len, const struct urt_shm_event *e)
{
	if (e->name[0])
		snprintf(buf, len, "%.16s", e->name);
	else
		snprintf(buf, len, "task %llu", (unsigned long long)e->task);
	return buf;
}

/* The slices of one thread's ring events (sorted by time). */
static void thread_slices(FILE *f, struct rec *r, size_t n)
{
	struct rec *run = NULL;
	uint64_t park = 0;
	bool parked = false;
	char name[40], args[160];

	for (size_t i = 0; i < n; i++) {
		struct urt_shm_event *e = &r[i].e;

		switch (e->type) {
		case URT_EV_RUN:
			if (run) {	/* lost its STOP: end it here */
				snprintf(args, sizeof(args), "{\"task\":%llu,\"slot\":%d,\"incomplete\":true}",
					 (unsigned long long)run->e.task, run->e.slot);
				slice(f, "task", task_label(name, sizeof(name), &run->e), 40, e->tid,
				      run->e.ts, e->ts, args);
			}
			run = &r[i];
			break;
		case URT_EV_STOP:
			if (run && run->e.task == e->task) {
				snprintf(args, sizeof(args), "{\"task\":%llu,\"slot\":%d,\"finished\":%s}",
					 (unsigned long long)e->task, run->e.slot,
					 e->arg ? "true" : "false");
				slice(f, "task", task_label(name, sizeof(name), &run->e), 40, e->tid,
				      run->e.ts, e->ts, args);
			} else {	/* began before the recording */
				snprintf(args, sizeof(args), "{\"task\":%llu,\"slot\":%d,\"began_before\":true}",
					 (unsigned long long)e->task, e->slot);
				snprintf(name, sizeof(name), "task %llu", (unsigned long long)e->task);
				slice(f, "task", name, 40, e->tid, t0, e->ts, args);
			}
			run = NULL;
			break;
		case URT_EV_PARK:
			park = e->ts;
			parked = true;
			break;
		case URT_EV_UNPARK:
			snprintf(args, sizeof(args), "{\"slot\":%d}", e->slot);
			slice(f, "idle", "idle (parked)", 20, e->tid, parked ? park : t0, e->ts, args);
			parked = false;
			break;
		case URT_EV_SPAWN:
			snprintf(args, sizeof(args), "{\"task\":%llu}", (unsigned long long)e->task);
			{
				char label[24];

				snprintf(name, sizeof(name), "spawn %s", task_label(label, sizeof(label), e));
			}
			instant(f, "spawn", name, e->tid, e->ts, args);
			break;
		case URT_EV_WAKE:
			/* On the waker's thread; a task waking itself is a yield. */
			snprintf(args, sizeof(args), "{\"task\":%llu,\"waker_task\":%llu,\"slot\":%d%s}",
				 (unsigned long long)e->task, (unsigned long long)e->arg, e->slot,
				 e->arg == e->task ? ",\"yield\":true" : "");
			{
				char label[24];

				snprintf(name, sizeof(name), "%s %s", e->arg == e->task ? "yield" : "wake",
					 task_label(label, sizeof(label), e));
			}
			instant(f, "wake", name, e->tid, e->ts, args);
			break;
		case URT_EV_STEAL:
			snprintf(args, sizeof(args), "{\"slot\":%d,\"victim\":%llu}", e->slot,
				 (unsigned long long)e->arg);
			snprintf(name, sizeof(name), "steal from slot %llu", (unsigned long long)e->arg);
			instant(f, "steal", name, e->tid, e->ts, args);
			break;
		}
	}
	if (run) {
		snprintf(args, sizeof(args), "{\"task\":%llu,\"slot\":%d,\"running_at_end\":true}",
			 (unsigned long long)run->e.task, run->e.slot);
		slice(f, "task", task_label(name, sizeof(name), &run->e), 40, run->e.tid, run->e.ts,
		      tend, args);
	}
	if (parked && n) {
		snprintf(args, sizeof(args), "{\"parked_at_end\":true}");
		slice(f, "idle", "idle (parked)", 20, r[n - 1].e.tid, park, tend, args);
	}
}

static void write_json(FILE *f)
{
	unsigned int flow = 0;
	char name[96], args[200];

	fprintf(f, "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"tool\":\"urt-trace\",\"pid\":%d,"
		"\"comm\":", proc.pid);
	json_str(f, proc.comm, sizeof(proc.comm));
	fprintf(f, ",\"lost_runtime_events\":%llu,\"lost_kernel_events\":%llu,\"kernel_source\":",
		(unsigned long long)lost_rt, (unsigned long long)lost_kernel);
	json_str(f, source, sizeof(source));
	fprintf(f, ",\"runtimes\":[");
	for (int r = 0; r < proc.nrt; r++) {
		fputs(r ? "," : "", f);
		json_str(f, proc.rt[r].hdr->name, sizeof(proc.rt[r].hdr->name));
	}
	fputs("]},\"traceEvents\":[", f);

	ev_begin(f);
	fprintf(f, "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%d,\"tid\":%d,\"args\":{\"name\":",
		proc.pid, proc.pid);
	snprintf(name, sizeof(name), "%s (urt, pid %d)", proc.comm, proc.pid);
	json_str(f, name, sizeof(name));
	fputs("}}", f);
	for (int i = 0; i < nthreads; i++) {
		struct thread *t = &threads[i];

		if (t->worker >= 0 && proc.nrt > 1)	/* which runtime: its name and index */
			snprintf(name, sizeof(name), "%s: %.16s#%d worker %d", t->comm,
				 proc.rt[t->rt].hdr->name, t->rt, t->worker);
		else if (t->worker >= 0)
			snprintf(name, sizeof(name), "%s: worker %d", t->comm, t->worker);
		else
			snprintf(name, sizeof(name), "%s", t->comm);
		ev_begin(f);
		fprintf(f, "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%d,\"tid\":%d,\"args\":{\"name\":",
			proc.pid, t->tid);
		json_str(f, name, sizeof(name));
		fputs("}}", f);
		ev_begin(f);
		fprintf(f, "{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":%d,\"tid\":%d,"
			"\"args\":{\"sort_index\":%d}}", proc.pid, t->tid,
			t->worker >= 0 ? t->rt * 1000 + t->worker : 1000000);
	}

	/* Ring events of the workers: per thread, in time order. */
	qsort(recs, nrecs, sizeof(*recs), cmp_rec);
	for (size_t i = 0; i < nrecs;) {
		size_t j = i;

		while (j < nrecs && recs[j].e.tid == recs[i].e.tid)
			j++;
		/* misc-ring events (handoff, block) are drawn below */
		{
			size_t k = i;
			struct rec *tmp = malloc((j - i) * sizeof(*tmp));

			if (!tmp)
				urt_die("out of memory");
			for (size_t m = i; m < j; m++)
				if (!recs[m].misc ||
				    (recs[m].e.type != URT_EV_HANDOFF && recs[m].e.type != URT_EV_BLOCK))
					tmp[k++ - i] = recs[m];
			thread_slices(f, tmp, k - i);
			free(tmp);
		}
		i = j;
	}

	/* Kernel blocks: slices on the thread, named by the syscall. */
	for (size_t i = 0; i < nkbs; i++) {
		struct urt_blk_event *e = &kbs[i].e;
		const char *sc = urt_syscall_name(e->syscall_nr);

		if (e->end_ns < t0)
			continue;
		snprintf(args, sizeof(args), "{\"syscall\":\"%s\",\"syscall_nr\":%lld,\"us\":%.1f%s%llu",
			 sc, (long long)e->syscall_nr, (e->end_ns - e->start_ns) / 1000.0,
			 e->task ? ",\"task\":" : ",\"no_task\":", (unsigned long long)e->task);
		if (e->task) {
			FILE *m = fmemopen(args + strlen(args), sizeof(args) - strlen(args) - 2, "w");

			if (m) {	/* the task's name, JSON-escaped */
				fputs(",\"task_name\":", m);
				json_str(m, e->name, sizeof(e->name));
				fclose(m);
			}
		}
		strcat(args, "}");
		snprintf(name, sizeof(name), "%s", e->syscall_nr < 0 ? "off-cpu (no syscall)" : sc);
		slice(f, "kernel", name, sizeof(name), e->tid, e->start_ns < t0 ? t0 : e->start_ns,
		      e->end_ns, args);
	}

	/* Handoffs: an arrow from the stuck thread to the one that took the slot. */
	for (size_t i = 0; i < nrecs; i++) {
		struct urt_shm_event *e = &recs[i].e;
		int32_t to = (int32_t)e->arg;

		if (e->type == URT_EV_BLOCK) {
			snprintf(args, sizeof(args), "{\"syscall\":\"%s\",\"blocked_us\":%.1f}",
				 urt_syscall_name((long)(int64_t)e->arg),
				 e->ts > e->task ? (e->ts - e->task) / 1000.0 : 0.0);
			snprintf(name, sizeof(name), "monitor: blocked in %s",
				 urt_syscall_name((long)(int64_t)e->arg));
			instant(f, "monitor", name, e->tid, e->ts, args);
			continue;
		}
		if (e->type != URT_EV_HANDOFF)
			continue;
		flow++;
		snprintf(args, sizeof(args), "{\"slot\":%d,\"from_tid\":%d,\"to_tid\":%d,\"why\":\"%.8s\","
			 "\"task\":%llu}", e->slot, e->tid, to, e->name, (unsigned long long)e->task);
		snprintf(name, sizeof(name), "handoff slot %d -> tid %d (%.8s)", e->slot, to, e->name);
		instant(f, "handoff", name, e->tid, e->ts, args);
		ev_begin(f);
		fprintf(f, "{\"ph\":\"s\",\"cat\":\"handoff\",\"name\":\"handoff\",\"id\":%u,\"pid\":%d,"
			"\"tid\":%d,\"ts\":%.3f,\"args\":{\"why\":\"%.8s\"}}", flow, proc.pid, e->tid,
			us(e->ts), e->name);
		{
			/* The spare runs once its futex wait (a kernel block) ends:
			 * the arrow lands there, on a short slice that ends before
			 * the spare's next slice begins. */
			uint64_t land = e->ts, stop;

			for (size_t k = 0; k < nkbs; k++)
				if (kbs[k].e.tid == to && kbs[k].e.start_ns <= e->ts && kbs[k].e.end_ns > e->ts)
					land = kbs[k].e.end_ns;
			stop = land + 20000;
			for (size_t k = 0; k < nkbs; k++)
				if (kbs[k].e.tid == to && kbs[k].e.start_ns > land && kbs[k].e.start_ns < stop)
					stop = kbs[k].e.start_ns;
			for (size_t k = 0; k < nrecs; k++)
				if (recs[k].e.tid == to && recs[k].e.ts > land && recs[k].e.ts < stop &&
				    !recs[k].misc)
					stop = recs[k].e.ts;
			snprintf(name, sizeof(name), "took slot %d (%.8s)", e->slot, e->name);
			slice(f, "handoff", name, sizeof(name), to, land, stop, args);
			ev_begin(f);
			fprintf(f, "{\"ph\":\"f\",\"bp\":\"e\",\"cat\":\"handoff\",\"name\":\"handoff\","
				"\"id\":%u,\"pid\":%d,\"tid\":%d,\"ts\":%.3f}", flow, proc.pid, to, us(land));
		}
	}
	fputs("\n]}\n", f);
}

/* ------------------------------------------------------------ summary */

struct agg {
	char name[24];
	uint64_t n, total, max;
};

static struct agg *agg_get(struct agg *a, int *n, int cap, const char *name)
{
	for (int i = 0; i < *n; i++)
		if (!strcmp(a[i].name, name))
			return &a[i];
	if (*n == cap)
		return NULL;
	snprintf(a[*n].name, sizeof(a[*n].name), "%s", name);
	return &a[(*n)++];
}

static void write_summary(FILE *f)
{
	static struct agg tasks[256], sys[128];
	int ntasks = 0, nsys = 0;
	uint64_t handoffs = 0, steps = 0, spawns = 0, steals = 0, wakes = 0;
	char b1[32], b2[32], name[40];

	qsort(recs, nrecs, sizeof(*recs), cmp_rec);
	for (size_t i = 0; i < nrecs; i++) {
		struct urt_shm_event *e = &recs[i].e;

		if (e->type == URT_EV_SPAWN)
			spawns++;
		else if (e->type == URT_EV_STEAL)
			steals++;
		else if (e->type == URT_EV_WAKE)
			wakes++;
		else if (e->type == URT_EV_HANDOFF)
			handoffs++;
		else if (e->type == URT_EV_RUN)
			steps++;
		if (e->type != URT_EV_RUN)
			continue;
		for (size_t j = i + 1; j < nrecs && recs[j].e.tid == e->tid; j++) {
			if (recs[j].e.type == URT_EV_STOP) {
				struct agg *a = agg_get(tasks, &ntasks, 256,
							task_label(name, sizeof(name), e));
				uint64_t d = recs[j].e.ts - e->ts;

				if (a) {
					a->n++;
					a->total += d;
					if (d > a->max)
						a->max = d;
				}
				break;
			}
			if (recs[j].e.type == URT_EV_RUN)
				break;
		}
	}
	for (size_t i = 0; i < nkbs; i++) {
		struct urt_blk_event *e = &kbs[i].e;
		struct agg *a;
		uint64_t d = e->end_ns - e->start_ns;

		if (!e->task)
			continue;	/* parked workers, idle spares */
		snprintf(name, sizeof(name), "%s:%.16s", urt_syscall_name(e->syscall_nr), e->name);
		a = agg_get(sys, &nsys, 128, name);
		if (a) {
			a->n++;
			a->total += d;
			if (d > a->max)
				a->max = d;
		}
	}
	fprintf(f, "urt-trace: pid %d (%s), %s recorded: %llu task steps, %llu spawns, %llu wakes, "
		"%llu steals, %llu handoffs, %zu kernel blocks >= %llu us\n", proc.pid, proc.comm,
		urt_fmt_ns(b1, sizeof(b1), tend - t0), (unsigned long long)steps,
		(unsigned long long)spawns, (unsigned long long)wakes, (unsigned long long)steals,
		(unsigned long long)handoffs,
		nkbs, (unsigned long long)env.min_us);
	fprintf(f, "kernel events: %s; %d runtime%s followed\n", source, proc.nrt,
		proc.nrt == 1 ? "" : "s");
	if (lost_rt || lost_kernel)
		fprintf(f, "lost events: %llu runtime, %llu kernel\n", (unsigned long long)lost_rt,
			(unsigned long long)lost_kernel);
	fprintf(f, "\n%-8s %-22s\n", "TID", "THREAD");
	for (int i = 0; i < nthreads; i++) {
		if (threads[i].worker >= 0 && proc.nrt > 1)
			fprintf(f, "%-8d %s (runtime %.16s#%d, worker %d)\n", threads[i].tid,
				threads[i].comm, proc.rt[threads[i].rt].hdr->name, threads[i].rt,
				threads[i].worker);
		else if (threads[i].worker >= 0)
			fprintf(f, "%-8d %s (worker %d)\n", threads[i].tid, threads[i].comm, threads[i].worker);
		else
			fprintf(f, "%-8d %s\n", threads[i].tid, threads[i].comm);
	}
	fprintf(f, "\n%-18s %8s %12s %12s\n", "TASK", "STEPS", "RUN TIME", "LONGEST");
	for (int i = 0; i < ntasks; i++)
		fprintf(f, "%-18s %8llu %12s %12s\n", tasks[i].name, (unsigned long long)tasks[i].n,
			urt_fmt_ns(b1, sizeof(b1), tasks[i].total), urt_fmt_ns(b2, sizeof(b2), tasks[i].max));
	fprintf(f, "\n%-30s %8s %12s %12s\n", "BLOCKED IN (syscall:task)", "COUNT", "TOTAL", "LONGEST");
	for (int i = 0; i < nsys; i++)
		fprintf(f, "%-30s %8llu %12s %12s\n", sys[i].name, (unsigned long long)sys[i].n,
			urt_fmt_ns(b1, sizeof(b1), sys[i].total), urt_fmt_ns(b2, sizeof(b2), sys[i].max));
	if (handoffs) {
		qsort(recs, nrecs, sizeof(*recs), cmp_rec_ts);
		fprintf(f, "\n%-12s %-5s %-8s %-8s %s\n", "HANDOFF AT", "SLOT", "FROM", "TO", "WHY");
		for (size_t i = 0; i < nrecs; i++) {
			struct urt_shm_event *e = &recs[i].e;

			if (e->type == URT_EV_HANDOFF)
				fprintf(f, "%10.3fms %-5d %-8d %-8d %.8s\n", (e->ts - t0) / 1e6, e->slot,
					e->tid, (int32_t)e->arg, e->name);
		}
	}
}

int main(int argc, char **argv)
{
	static const struct argp argp = { .options = opts, .parser = parse_arg, .doc = doc };
	struct urt_trace_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link *enable = NULL, *links[3] = {};
	char bin[PATH_MAX], outbuf[PATH_MAX], tmp[PATH_MAX + 8];
	uint64_t until, last_tids = 0;
	const char *why = "duration ended";
	int err;

	urt_tool = "urt-trace";
	err = argp_parse(&argp, argc, argv, 0, NULL, NULL);
	if (err)
		return 1;
	urt_proc_open(&proc, env.pid);
	if (!env.out) {
		snprintf(outbuf, sizeof(outbuf), "urt-trace-%d.json", env.pid);
		env.out = outbuf;
	}
	urt_need_btf();
	urt_libbpf_quiet(env.verbose);
	skel = urt_trace_bpf__open();
	if (!skel)
		urt_bpf_fail("opening the BPF object", -errno);
	skel->rodata->target_tgid = (__u32)env.pid;
	skel->rodata->min_ns = env.min_us * 1000;
	err = urt_trace_bpf__load(skel);
	if (err)
		urt_bpf_fail("loading the BPF program", err);
	urt_attach_source(env.source, env.pid, skel->progs.urt_switch, skel->progs.urt_ko_block,
			  skel->progs.urt_ko_unblock, links, source, sizeof(source));
	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_kblock, NULL, NULL);
	if (!rb)
		urt_bpf_fail("creating the ring buffer", -errno);
	if (urt_find_probe_binary(env.pid, bin, sizeof(bin)))
		urt_die("pid %d: no urt USDT probes found in its liburt (built without <sys/sdt.h>?)",
			env.pid);
	claim_new(true);
	update_tids(skel);
	urt_catch_signals();
	t0 = urt_now_ns();
	enable = bpf_program__attach_usdt(skel->progs.urt_enable, env.pid, bin, "urt", "enable", NULL);
	if (!enable) {
		err = -errno;
		release_rings();
		urt_want_current(&proc, false);
		urt_bpf_fail("attaching to urt:enable", err);
	}
	until = env.duration > 0 ? t0 + (uint64_t)(env.duration * 1e9) : UINT64_MAX;
	if (!env.summary)
		fprintf(stderr, "urt-trace: recording pid %d (%s)%s... Ctrl-C to stop\n", env.pid,
			proc.comm, env.duration > 0 ? " for the duration" : "");
	if (env.verbose || !env.summary)
		fprintf(stderr, "urt-trace: kernel events: %s\n", source);
	for (;;) {
		uint64_t now;

		ring_buffer__poll(rb, 5);
		drain_rings();
		now = urt_now_ns();
		if (urt_exiting) {
			why = "interrupted";
			break;
		}
		if (now >= until)
			break;
		/* Not when its runtimes are closed: it may create another. */
		if (!urt_proc_alive(env.pid)) {
			why = "the program exited";
			break;
		}
		if (now - last_tids > 100000000) {
			update_tids(skel);
			last_tids = now;
		}
	}
	tend = urt_now_ns();
	if (tend > until)
		tend = until;
	/* Kernel side first: after this no block is seen with a stale task. */
	for (int i = 0; i < 3; i++)
		bpf_link__destroy(links[i]);
	bpf_link__destroy(enable);
	drain_rings();
	ring_buffer__poll(rb, 0);
	for (int r = 0; r < nclaimed; r++)
		for (unsigned int k = 0; claimed[r] && k <= proc.rt[r].hdr->nworkers; k++)
			lost_rt += urt_shm_worker(&proc.rt[r], k)->lost;
	lost_kernel = skel->bss->nr_lost;
	urt_want_current(&proc, false);
	release_rings();
	ring_buffer__free(rb);
	urt_trace_bpf__destroy(skel);

	if (env.summary) {
		write_summary(stdout);
	} else {
		FILE *f;

		snprintf(tmp, sizeof(tmp), "%s.tmp", env.out);
		f = fopen(tmp, "w");
		if (!f)
			urt_die("cannot write %s: %s", tmp, strerror(errno));
		write_json(f);
		if (fclose(f) || rename(tmp, env.out)) {
			unlink(tmp);
			urt_die("cannot write %s: %s", env.out, strerror(errno));
		}
		fprintf(stderr, "urt-trace: %s: wrote %s (%zu runtime events, %zu kernel blocks, "
			"%d threads); open it in https://ui.perfetto.dev\n", why, env.out, nrecs, nkbs,
			nthreads);
	}
	urt_proc_close(&proc);
	return 0;
}
