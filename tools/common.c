// SPDX-License-Identifier: MIT
/* common.c - helpers shared by the urt tools (see common.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "common.h"
#include "urt_tools.h"
#include "syscall_names.h"

const char *urt_tool = "urt-tool";
volatile sig_atomic_t urt_exiting;

static void vwarn(const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", urt_tool);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void urt_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
	exit(1);
}

void urt_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
}

uint64_t urt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void on_signal(int sig)
{
	(void)sig;
	urt_exiting = 1;
}

void urt_catch_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

pid_t urt_parse_pid(const char *arg)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || *end || v <= 0 || v > 0x7fffffff)
		urt_die("invalid pid '%s'", arg);
	return (pid_t)v;
}

double urt_parse_duration(const char *arg)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno || *end || v <= 0)
		urt_die("invalid duration '%s' (seconds)", arg);
	return v;
}

bool urt_proc_alive(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (access(path, F_OK))
		return false;
	/* A zombie has no memory left: count it as gone. */
	{
		FILE *f = fopen(path, "r");
		char buf[512], *p;
		bool alive = true;

		if (!f)
			return false;
		if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) && p[1] && p[2] == 'Z')
			alive = false;
		fclose(f);
		return alive;
	}
}

static int map_rt(struct urt_proc *p, const char *path)
{
	struct urt_rtview *v;
	struct urt_shm_hdr h;
	struct stat st;
	void *m;
	int fd;

	/* stat() follows the link to the memfd: a runtime already mapped? */
	if (stat(path, &st))
		return -errno;
	for (int i = 0; i < p->nrt; i++)
		if (p->rt[i].ino == (uint64_t)st.st_ino)
			return 0;
	if (p->nrt == p->cap) {
		int cap = p->cap ? p->cap * 2 : 8;
		struct urt_rtview *n = realloc(p->rt, (size_t)cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		p->rt = n;
		p->cap = cap;
	}
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		close(fd);
		return -EPROTO;
	}
	if (h.magic != URT_SHM_MAGIC || h.version != URT_SHM_VERSION || h.pid != p->pid) {
		close(fd);
		return h.pid != p->pid ? -ESRCH : -EPROTO;	/* forked child: not its own */
	}
	m = mmap(NULL, h.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		close(fd);
		return -errno;
	}
	v = &p->rt[p->nrt++];
	memset(v, 0, sizeof(*v));
	v->hdr = m;
	v->size = h.size;
	v->fd = fd;
	v->ino = (uint64_t)st.st_ino;
	return 1;
}

/* Maps every urt-shm memfd in /proc/PID/fd not mapped yet: how many were
 * new, or -errno if the directory cannot be read; *first_err: the first
 * error of a memfd that could not be mapped. */
static int scan_fds(struct urt_proc *p, int *first_err)
{
	char dir[64], path[PATH_MAX], link[256];
	struct dirent *de;
	int added = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", p->pid);
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		ssize_t n;
		int err;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		if (strncmp(link, "/memfd:" URT_SHM_NAME, sizeof("/memfd:" URT_SHM_NAME) - 1))
			continue;
		err = map_rt(p, path);
		if (err > 0)
			added++;
		else if (err < 0 && first_err && !*first_err && err != -ESRCH)
			*first_err = err;
	}
	closedir(d);
	return added;
}

void urt_proc_open(struct urt_proc *p, pid_t pid)
{
	char dir[64], path[PATH_MAX];
	int first_err = 0, err;
	FILE *f;

	memset(p, 0, sizeof(*p));
	p->pid = pid;
	snprintf(dir, sizeof(dir), "/proc/%d", pid);
	if (access(dir, F_OK))
		urt_die("no process with pid %d", pid);
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	f = fopen(path, "r");
	if (f) {
		if (fgets(p->comm, sizeof(p->comm), f))
			p->comm[strcspn(p->comm, "\n")] = 0;
		fclose(f);
	}
	err = scan_fds(p, &first_err);
	if (err == -EACCES || err == -EPERM)
		urt_die("pid %d: permission denied reading /proc/%d/fd (run as root or as the process's user)",
			pid, pid);
	if (err < 0)
		urt_die("no process with pid %d", pid);
	if (p->nrt)
		return;
	if (first_err == -EACCES || first_err == -EPERM)
		urt_die("pid %d: permission denied opening its urt shared memory (run as root)", pid);
	if (first_err == -EPROTO)
		urt_die("pid %d: urt shared memory of another version (rebuild the tools with its liburt)",
			pid);
	urt_die("pid %d (%s) is not a urt program (no runtime published: liburt not linked, "
		"or no urt_create yet)", pid, p->comm);
}

int urt_proc_rescan(struct urt_proc *p)
{
	int n = scan_fds(p, NULL);

	return n > 0 ? n : 0;
}

void urt_proc_close(struct urt_proc *p)
{
	for (int i = 0; i < p->nrt; i++) {
		munmap(p->rt[i].hdr, p->rt[i].size);
		close(p->rt[i].fd);
	}
	free(p->rt);
	p->rt = NULL;
	p->nrt = p->cap = 0;
}

int urt_read_mem(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };
	ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

static uint64_t rd64(const char *base, uint32_t off)
{
	uint64_t v;

	memcpy(&v, base + off, sizeof(v));
	return v;
}

static uint32_t rd32(const char *base, uint32_t off)
{
	uint32_t v;

	memcpy(&v, base + off, sizeof(v));
	return v;
}

int urt_read_slots(pid_t pid, const struct urt_rtview *rt, struct urt_slot_view *sv,
		   struct urt_worker_view *wv)
{
	const struct urt_shm_hdr *h = rt->hdr;
	const struct urt_shm_layout *l = &h->layout;
	size_t ssz = (size_t)h->nslots * l->slot_size, wsz = (size_t)h->nworkers * l->worker_size;
	char *slots = malloc(ssz), *workers = malloc(wsz);
	int err;

	if (!slots || !workers) {
		free(slots);
		free(workers);
		return -ENOMEM;
	}
	err = urt_read_mem(pid, l->slots, slots, ssz);
	if (!err)
		err = urt_read_mem(pid, l->workers, workers, wsz);
	if (err)
		goto out;
	for (unsigned int k = 0; k < h->nworkers; k++) {
		const char *w = workers + (size_t)k * l->worker_size;
		uint64_t sp = rd64(w, l->worker_slot);

		wv[k].tid = (int32_t)rd32(w, l->worker_tid);
		wv[k].started = w[l->worker_started] != 0;
		wv[k].exited = w[l->worker_exited] != 0;
		wv[k].slot = sp ? (int)((sp - l->slots) / l->slot_size) : -1;
		wv[k].spawned = rd64(w, l->worker_spawned);
		wv[k].completed = rd64(w, l->worker_completed);
		wv[k].polls = rd64(w, l->worker_polls);
		wv[k].steals = rd64(w, l->worker_steals);
		wv[k].parks = rd64(w, l->worker_parks);
	}
	for (unsigned int i = 0; i < h->nslots; i++) {
		const char *s = slots + (size_t)i * l->slot_size;
		uint64_t owner = rd64(s, l->slot_owner), wp = owner & ~(uint64_t)3;
		uint64_t head = rd64(s, l->slot_q_head);
		uint32_t tail = rd32(s, l->slot_q_tail);
		struct urt_slot_view *v = &sv[i];

		memset(v, 0, sizeof(*v));
		v->index = (int)i;
		v->parked = owner & 1;
		v->owner = -1;
		if (wp >= l->workers && wp < l->workers + wsz)
			v->owner = (int)((wp - l->workers) / l->worker_size);
		v->cur_task = rd64(s, l->slot_cur_task);
		v->steps = rd64(s, l->slot_steps);
		v->handoffs = rd64(s, l->slot_handoffs);
		v->blocks_seen = rd64(s, l->slot_blocks_seen);
		v->hogs = rd64(s, l->slot_hogs);
		v->blocked_ns = rd64(s, l->slot_blocked_ns);
		v->qlen = tail - (uint32_t)(head >> 32) + (rd64(s, l->slot_lifo) ? 1 : 0);
		if (v->qlen > 1u << 20)
			v->qlen = 0;	/* torn read */
		if (v->owner >= 0) {
			struct urt_shm_worker cur;

			v->tid = wv[v->owner].tid;
			v->steals = wv[v->owner].steals;
			v->spawned = wv[v->owner].spawned;
			v->completed = wv[v->owner].completed;
			if (v->cur_task && urt_shm_current(rt, (unsigned int)v->owner, &cur) &&
			    cur.task == v->cur_task)
				memcpy(v->task_name, cur.name, sizeof(v->task_name));
		}
	}
	err = (int)h->nslots;
out:
	free(slots);
	free(workers);
	return err;
}

uint64_t urt_read_inject_len(pid_t pid, const struct urt_rtview *rt)
{
	uint64_t v = 0;

	if (urt_read_mem(pid, rt->hdr->layout.inject_len, &v, sizeof(v)))
		return 0;
	return v;
}

bool urt_shm_current(const struct urt_rtview *rt, unsigned int k, struct urt_shm_worker *out)
{
	struct urt_shm_worker *sw = urt_shm_worker(rt, k);

	for (int tries = 0; tries < 8; tries++) {
		uint32_t s1 = __atomic_load_n(&sw->seq, __ATOMIC_ACQUIRE);

		if (s1 & 1)
			continue;
		if (sw->gen != __atomic_load_n(&rt->hdr->cur_gen, __ATOMIC_RELAXED))
			return false;	/* stale: from before this tool turned it on */
		out->tid = sw->tid;
		out->slot = sw->slot;
		out->task = sw->task;
		out->since_ns = sw->since_ns;
		memcpy(out->name, sw->name, sizeof(out->name));
		out->name[15] = 0;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&sw->seq, __ATOMIC_RELAXED) == s1)
			return true;
	}
	return false;
}

void urt_rt_want_current(struct urt_rtview *rt, bool on)
{
	struct urt_shm_hdr *h = rt->hdr;

	if (on == rt->tool_on)
		return;
	rt->tool_on = on;
	if (on) {
		/* records written before are stale (hooks were off meanwhile) */
		__atomic_fetch_add(&h->cur_gen, 1, __ATOMIC_SEQ_CST);
		__atomic_fetch_add(&h->users_current, 1, __ATOMIC_SEQ_CST);
		__atomic_fetch_or(&h->flags, URT_SHM_CURRENT, __ATOMIC_SEQ_CST);
	} else if (__atomic_sub_fetch(&h->users_current, 1, __ATOMIC_SEQ_CST) == 0) {
		__atomic_fetch_and(&h->flags, ~URT_SHM_CURRENT, __ATOMIC_SEQ_CST);
	}
}

void urt_want_current(struct urt_proc *p, bool on)
{
	for (int i = 0; i < p->nrt; i++)
		urt_rt_want_current(&p->rt[i], on);
}

void urt_map_tids(int map_fd, struct urt_proc *p, void (*seen)(int rt, int worker, int32_t tid))
{
	for (int r = 0; r < p->nrt; r++) {
		struct urt_rtview *rt = &p->rt[r];
		const struct urt_shm_hdr *h = rt->hdr;
		struct urt_slot_view sv[256];
		struct urt_worker_view wv[512];

		if (__atomic_load_n(&h->closed, __ATOMIC_ACQUIRE) || h->nslots > 256 ||
		    h->nworkers > 512 || urt_read_slots(p->pid, rt, sv, wv) < 0)
			continue;
		for (unsigned int k = 0; k < h->nworkers; k++) {
			struct urt_tid_info ti = {
				.cur_addr = h->shm_addr + h->worker_off + (uint64_t)k * h->worker_stride,
				.gen_addr = h->shm_addr + offsetof(struct urt_shm_hdr, cur_gen),
			};
			uint32_t tid = (uint32_t)wv[k].tid;

			if (wv[k].tid <= 0 || wv[k].exited)
				continue;
			bpf_map_update_elem(map_fd, &tid, &ti, BPF_ANY);
			if (seen)
				seen(r, (int)k, wv[k].tid);
		}
	}
}

/* ---- where the kernel side's blocks come from */

enum urt_ksrc urt_parse_source(const char *arg)
{
	if (!strcmp(arg, "auto"))
		return URT_KSRC_AUTO;
	if (!strcmp(arg, "urt.ko") || !strcmp(arg, "urt-ko") || !strcmp(arg, "kmod"))
		return URT_KSRC_KO;
	if (!strcmp(arg, "sched_switch") || !strcmp(arg, "sched-switch"))
		return URT_KSRC_SWITCH;
	urt_die("invalid source '%s' (auto, urt.ko or sched_switch)", arg);
}

const char *urt_source_name(enum urt_ksrc s)
{
	return s == URT_KSRC_KO ? "urt.ko" : s == URT_KSRC_SWITCH ? "sched_switch" : "auto";
}

/* Is urt.ko loaded: its device, its tracepoints in tracefs, its sysfs dir? */
static bool urt_ko_loaded(void)
{
	static const char *const where[] = {
		"/dev/urt", "/sys/kernel/tracing/events/urt", "/sys/kernel/debug/tracing/events/urt",
		"/sys/module/urt",
	};

	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++)
		if (!access(where[i], F_OK))
			return true;
	return false;
}

bool urt_pid_has_fd(pid_t pid, const char *prefix)
{
	char dir[64], path[PATH_MAX], link[PATH_MAX];
	size_t len = strlen(prefix);
	struct dirent *de;
	bool found = false;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	d = opendir(dir);
	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		ssize_t n;

		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = 0;
			found = !strncmp(link, prefix, len);
		}
	}
	closedir(d);
	return found;
}

enum urt_ksrc urt_attach_source(enum urt_ksrc want, pid_t pid, struct bpf_program *sw,
				struct bpf_program *ko_block, struct bpf_program *ko_unblock,
				struct bpf_link **links, char *why, size_t whylen)
{
	/* Does pid hold /dev/urt open (its monitor registered workers there)? */
	bool loaded = urt_ko_loaded(), used = loaded && urt_pid_has_fd(pid, "/dev/urt");
	int err;

	if (want == URT_KSRC_KO && !loaded)
		urt_die("urt.ko's tracepoints: urt.ko is not loaded (no /dev/urt)");
	if (want == URT_KSRC_KO || (want == URT_KSRC_AUTO && used)) {
		links[1] = bpf_program__attach(ko_block);
		err = links[1] ? 0 : -errno;
		if (!err) {
			links[2] = bpf_program__attach(ko_unblock);
			err = links[2] ? 0 : -errno;
		}
		if (!err) {
			snprintf(why, whylen, "urt.ko's tracepoints urt_block/urt_unblock%s",
				 used ? "" : " (the program does not use urt.ko: blocks of its workers are not seen)");
			return URT_KSRC_KO;
		}
		bpf_link__destroy(links[1]);
		links[1] = NULL;
		if (want == URT_KSRC_KO)
			urt_bpf_fail("attaching to urt.ko's tracepoints", err);
		snprintf(why, whylen, "sched_switch (attaching to urt.ko's tracepoints failed: %s)",
			 strerror(-err));
	} else if (want == URT_KSRC_SWITCH) {
		snprintf(why, whylen, "sched_switch (asked for)");
	} else if (!loaded) {
		snprintf(why, whylen, "sched_switch (urt.ko not loaded)");
	} else {
		snprintf(why, whylen, "sched_switch (urt.ko loaded, but pid %d does not use it)", pid);
	}
	links[0] = bpf_program__attach(sw);
	if (!links[0])
		urt_bpf_fail("attaching to sched_switch", -errno);
	return URT_KSRC_SWITCH;
}

/* Does the ELF file at path carry a stapsdt note of provider "urt"? */
static bool has_urt_probes(const char *path)
{
	bool found = false;
	Elf_Scn *scn = NULL;
	Elf *e;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	elf_version(EV_CURRENT);
	e = elf_begin(fd, ELF_C_READ, NULL);
	while (e && !found && (scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		Elf_Data *data;
		size_t off = 0, noff, doff;
		GElf_Nhdr nh;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		data = elf_getdata(scn, NULL);
		while (data && (off = gelf_getnote(data, off, &nh, &noff, &doff)) > 0) {
			const char *name = (const char *)data->d_buf + noff;
			const char *desc = (const char *)data->d_buf + doff;

			/* desc: 3 addresses, then "provider\0name\0args" */
			if (nh.n_type == 3 && nh.n_namesz == 8 && !memcmp(name, "stapsdt", 8) &&
			    nh.n_descsz > 24 && !strncmp(desc + 24, "urt", 4)) {
				found = true;
				break;
			}
		}
	}
	if (e)
		elf_end(e);
	close(fd);
	return found;
}

int urt_find_probe_binary(pid_t pid, char *path, size_t len)
{
	char maps[64], line[PATH_MAX + 128], last[PATH_MAX] = "";
	FILE *f;

	snprintf(maps, sizeof(maps), "/proc/%d/maps", pid);
	f = fopen(maps, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *p = strchr(line, '/');

		if (!p)
			continue;
		p[strcspn(p, "\n")] = 0;
		if (!strcmp(p, last) || strstr(p, " (deleted)"))
			continue;
		snprintf(last, sizeof(last), "%s", p);
		if (!strstr(p, "liburt"))
			continue;
		/* /proc/PID/root: the file as the target sees it (containers) */
		snprintf(path, len, "/proc/%d/root%s", pid, p);
		if (has_urt_probes(path)) {
			fclose(f);
			return 0;
		}
	}
	fclose(f);
	snprintf(path, len, "/proc/%d/exe", pid);
	if (has_urt_probes(path))
		return 0;
	return -ENOENT;
}

void urt_need_btf(void)
{
	const char *btf = getenv("URT_TOOLS_VMLINUX_BTF");

	if (!btf)
		btf = "/sys/kernel/btf/vmlinux";
	if (access(btf, R_OK))
		urt_die("this kernel has no BTF (%s missing: CONFIG_DEBUG_INFO_BTF=y, kernel >= 5.5 needed)",
			btf);
}

void urt_bpf_fail(const char *what, int err)
{
	if (err < 0)
		err = -err;
	if (err == EPERM || err == EACCES)
		urt_die("%s: permission denied: BPF needs root (CAP_BPF and CAP_PERFMON)", what);
	if (err == ENOENT || err == EINVAL || err == ENOTSUP || err == ESRCH)
		urt_die("%s failed (%s): this kernel lacks what the tool needs (BTF, tp_btf, uprobes)",
			what, strerror(err));
	urt_die("%s failed: %s", what, strerror(err));
}

static bool libbpf_verbose;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (!libbpf_verbose && level != LIBBPF_WARN)
		return 0;
	if (!libbpf_verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

void urt_libbpf_quiet(bool verbose)
{
	libbpf_verbose = verbose;
	libbpf_set_print(libbpf_print);
}

const char *urt_syscall_name(long nr)
{
	static __thread char buf[32];

	if (nr < 0)
		return "-";
	if ((size_t)nr < sizeof(urt_syscall_names) / sizeof(urt_syscall_names[0]) &&
	    urt_syscall_names[nr])
		return urt_syscall_names[nr];
	snprintf(buf, sizeof(buf), "syscall_%ld", nr);
	return buf;
}

void urt_hist_add(struct urt_hist *h, uint64_t v)
{
	int b = 0;

	while (v > 1 && b < 63) {
		v >>= 1;
		b++;
	}
	h->slot[b]++;
}

void urt_hist_print(FILE *f, const struct urt_hist *h, const char *unit)
{
	int last = -1, first = -1;
	uint64_t max = 0;

	for (int i = 0; i < 64; i++) {
		if (h->slot[i]) {
			if (first < 0)
				first = i;
			last = i;
			if (h->slot[i] > max)
				max = h->slot[i];
		}
	}
	if (last < 0)
		return;
	fprintf(f, "%*s%-*s : count    distribution\n", 10, "", 14, unit);
	for (int i = first; i <= last; i++) {
		uint64_t lo = i ? 1ULL << i : 0, hi = (1ULL << (i + 1)) - 1;
		int stars = (int)(h->slot[i] * 40 / max);
		char bar[41];

		memset(bar, '*', (size_t)stars);
		memset(bar + stars, ' ', (size_t)(40 - stars));
		bar[40] = 0;
		fprintf(f, "%12llu -> %-12llu : %-8llu |%s|\n", (unsigned long long)lo,
			(unsigned long long)hi, (unsigned long long)h->slot[i], bar);
	}
}

const char *urt_fmt_ns(char *buf, size_t len, uint64_t ns)
{
	if (ns >= 10000000000ULL)
		snprintf(buf, len, "%.1fs", ns / 1e9);
	else if (ns >= 1000000000ULL)
		snprintf(buf, len, "%.2fs", ns / 1e9);
	else if (ns >= 1000000ULL)
		snprintf(buf, len, "%.1fms", ns / 1e6);
	else if (ns >= 1000ULL)
		snprintf(buf, len, "%.0fus", ns / 1e3);
	else
		snprintf(buf, len, "%lluns", (unsigned long long)ns);
	return buf;
}

/* ------------------------------------------------------------ symbols */

/* The symbol of file offset-based address in an ELF file. */
static bool elf_sym(const char *path, uint64_t file_off, char *out, size_t len)
{
	uint64_t vaddr = 0, best = 0;
	const char *bestname = NULL;
	bool have_vaddr = false;
	Elf_Scn *scn = NULL;
	size_t nph;
	Elf *e;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	elf_version(EV_CURRENT);
	e = elf_begin(fd, ELF_C_READ, NULL);
	if (!e || elf_getphdrnum(e, &nph))
		goto out;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_LOAD &&
		    file_off >= ph.p_offset && file_off < ph.p_offset + ph.p_filesz) {
			vaddr = file_off - ph.p_offset + ph.p_vaddr;
			have_vaddr = true;
			break;
		}
	}
	if (!have_vaddr)
		goto out;
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		Elf_Data *data;

		if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM))
			continue;
		data = elf_getdata(scn, NULL);
		for (size_t i = 0; data && sh.sh_entsize && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;

			if (!gelf_getsym(data, (int)i, &sym) || GELF_ST_TYPE(sym.st_info) != STT_FUNC ||
			    !sym.st_value)
				continue;
			if (vaddr >= sym.st_value && vaddr < sym.st_value + (sym.st_size ? sym.st_size : 1) &&
			    sym.st_value >= best) {
				best = sym.st_value;
				bestname = elf_strptr(e, sh.sh_link, sym.st_name);
			}
		}
	}
	if (bestname)
		snprintf(out, len, "%s+0x%llx", bestname, (unsigned long long)(vaddr - best));
out:
	if (e)
		elf_end(e);
	close(fd);
	return bestname != NULL;
}

const char *urt_sym(pid_t pid, uint64_t addr, char *buf, size_t len)
{
	char maps[64], line[PATH_MAX + 128];
	FILE *f;

	snprintf(buf, len, "0x%llx", (unsigned long long)addr);
	snprintf(maps, sizeof(maps), "/proc/%d/maps", pid);
	f = fopen(maps, "r");
	if (!f)
		return buf;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi, off;
		char *p;

		if (sscanf(line, "%llx-%llx %*s %llx", &lo, &hi, &off) != 3 || addr < lo || addr >= hi)
			continue;
		p = strchr(line, '/');
		if (p) {
			char path[PATH_MAX + 32], sym[256];
			const char *base;

			p[strcspn(p, "\n")] = 0;
			base = strrchr(p, '/') + 1;
			snprintf(path, sizeof(path), "/proc/%d/root%s", pid, p);
			if (elf_sym(path, addr - lo + off, sym, sizeof(sym)))
				snprintf(buf, len, "%s (%s)", sym, base);
			else
				snprintf(buf, len, "0x%llx (%s)", (unsigned long long)addr, base);
		}
		break;
	}
	fclose(f);
	return buf;
}
