// SPDX-License-Identifier: MIT
/*
 * mon_kmod.c - the monitor on /dev/urt (kmod/urt.c, ABI in
 * include/uapi/linux/urt.h).
 *
 * One open() of /dev/urt is one group: this monitor. The states array is
 * mapped read-only and read with the ABI's seqcount; the threshold is timed
 * by an hrtimer per worker in the kernel, which queues one
 * URT_EV_BLOCKED_LONG event per block that passes it. wait() sleeps in
 * poll() on the fd (and the kick eventfd) and reads the events: no tick, no
 * system call per block. If the module's queue overflowed
 * (URT_EVF_LOST), wait() rescans the states for blocks past the threshold,
 * so a lost event only delays a report.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "uapi/linux/urt.h"
#include "mon_impl.h"

_Static_assert(sizeof(struct urt_worker_state) == 64, "ABI");
_Static_assert(URT_MON_RUNNING == URT_STATE_RUNNING && URT_MON_BLOCKED == URT_STATE_BLOCKED &&
	       URT_MON_UNUSED == URT_STATE_UNUSED, "state values");

struct mon_kmod {
	int fd;
	struct urt_info info;
	const struct urt_worker_state *states;
	uint32_t *reported;		/* per slot: seq reported + 1 */
	char desc[96];
};

static void kmod_close(struct urt_mon *m)
{
	struct mon_kmod *k = m->priv;

	if (!k)
		return;
	if (k->states)
		munmap((void *)k->states, k->info.map_size);
	if (k->fd >= 0)
		close(k->fd);
	free(k->reported);
	free(k);
	m->priv = NULL;
}

static int kmod_open(struct urt_mon *m, const char *mode, char *why, size_t whylen)
{
	struct urt_threshold thr = { .threshold_ns = (uint64_t)m->threshold_ns };
	struct mon_kmod *k = calloc(1, sizeof(*k));
	void *p;
	int v, err;

	if (!k)
		return -ENOMEM;
	k->fd = -1;
	m->priv = k;
	k->reported = calloc(m->max_workers, sizeof(*k->reported));
	if (!k->reported) {
		err = -ENOMEM;
		goto fail;
	}
	k->fd = open(URT_DEVICE_PATH, O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (k->fd < 0) {
		err = -errno;
		snprintf(why, whylen, "open %s: %s", URT_DEVICE_PATH, strerror(errno));
		goto fail;
	}
	v = ioctl(k->fd, URT_IOC_GET_VERSION);
	if (v != URT_ABI_VERSION) {
		snprintf(why, whylen, "%s speaks ABI %d, liburt needs %d",
			 URT_DEVICE_PATH, v, URT_ABI_VERSION);
		err = -EPROTO;
		goto fail;
	}
	if (ioctl(k->fd, URT_IOC_GET_INFO, &k->info)) {
		err = -errno;
		snprintf(why, whylen, "URT_IOC_GET_INFO: %s", strerror(errno));
		goto fail;
	}
	if (k->info.state_size != sizeof(struct urt_worker_state) ||
	    k->info.event_size != sizeof(struct urt_event)) {
		snprintf(why, whylen, "state/event size %u/%u, expected %zu/%zu",
			 k->info.state_size, k->info.event_size,
			 sizeof(struct urt_worker_state), sizeof(struct urt_event));
		err = -EPROTO;
		goto fail;
	}
	if (k->info.max_workers < m->max_workers) {
		snprintf(why, whylen, "module supports %u workers, %u asked",
			 k->info.max_workers, m->max_workers);
		err = -ERANGE;
		goto fail;
	}
	if (thr.threshold_ns < k->info.threshold_min_ns ||
	    thr.threshold_ns > k->info.threshold_max_ns) {
		snprintf(why, whylen, "threshold %llu ns outside the module's [%llu, %llu]",
			 (unsigned long long)thr.threshold_ns,
			 (unsigned long long)k->info.threshold_min_ns,
			 (unsigned long long)k->info.threshold_max_ns);
		err = -EINVAL;
		goto fail;
	}
	p = mmap(NULL, k->info.map_size, PROT_READ, MAP_SHARED, k->fd, 0);
	if (p == MAP_FAILED) {
		err = -errno;
		snprintf(why, whylen, "mmap %s: %s", URT_DEVICE_PATH, strerror(errno));
		goto fail;
	}
	k->states = p;
	if (ioctl(k->fd, URT_IOC_SET_THRESHOLD, &thr)) {
		err = -errno;
		snprintf(why, whylen, "URT_IOC_SET_THRESHOLD: %s", strerror(errno));
		goto fail;
	}
	snprintf(k->desc, sizeof(k->desc), "%s ABI %d, kernel hrtimer threshold",
		 URT_DEVICE_PATH, v);
	return 0;
fail:
	kmod_close(m);
	return err;
}

static int kmod_reg(struct urt_mon *m, unsigned int slot, pid_t tid)
{
	struct mon_kmod *k = m->priv;
	struct urt_register r = { .slot = slot };

	/* The module registers the calling thread only (by design). */
	if (tid != (pid_t)syscall(SYS_gettid))
		return -EOPNOTSUPP;

	return ioctl(k->fd, URT_IOC_REGISTER, &r) ? -errno : 0;
}

static int kmod_unreg(struct urt_mon *m, unsigned int slot)
{
	struct mon_kmod *k = m->priv;

	return ioctl(k->fd, URT_IOC_UNREGISTER, 0) ? -errno : 0;
}

static int kmod_snapshot(struct urt_mon *m, unsigned int slot, struct urt_mon_wstate *out)
{
	struct mon_kmod *k = m->priv;

	urt__mon_read_state(&k->states[slot], out);
	return 0;
}

static void kmod_post(struct urt_mon *m, uint32_t slot, uint32_t seq, int32_t tid,
		      int64_t nr, int64_t since, int64_t time)
{
	struct mon_kmod *k = m->priv;
	struct urt_mon_event ev = {
		.slot = slot, .seq = seq, .tid = tid, .syscall = (int32_t)nr,
		.since_ns = since, .time_ns = time,
	};

	if (slot >= m->max_workers || k->reported[slot] == seq + 1)
		return;
	k->reported[slot] = seq + 1;
	urt__mon_post(m, &ev);
}

/* After lost events: report every block already past the threshold. */
static void kmod_rescan(struct urt_mon *m)
{
	struct mon_kmod *k = m->priv;
	struct urt_mon_wstate ws;
	int64_t now = urt_now();

	for (unsigned int s = 0; s < m->max_workers; s++) {
		urt__mon_read_state(&k->states[s], &ws);
		if (ws.state == URT_MON_BLOCKED && now - ws.since_ns >= m->threshold_ns)
			kmod_post(m, s, ws.seq, ws.tid, ws.syscall, ws.since_ns, now);
	}
}

static int kmod_wait(struct urt_mon *m, int64_t deadline)
{
	struct mon_kmod *k = m->priv;
	struct urt_event evs[16];
	bool lost = false;
	ssize_t n;

	if (!urt__mon_sleep(m, deadline, k->fd))
		return 0;
	for (;;) {
		n = read(k->fd, evs, sizeof(evs));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -errno;
		}
		for (size_t i = 0; i < (size_t)n / sizeof(evs[0]); i++) {
			if (evs[i].flags & URT_EVF_LOST)
				lost = true;
			if (evs[i].type != URT_EV_BLOCKED_LONG)
				continue;
			kmod_post(m, evs[i].slot, evs[i].seq, evs[i].tid, evs[i].syscall_nr,
				  (int64_t)evs[i].blocked_since_ns, (int64_t)evs[i].time_ns);
		}
		if ((size_t)n < sizeof(evs))
			break;
	}
	if (lost)
		kmod_rescan(m);
	return 0;
}

/* The module times each block with the threshold set when it started. */
static int kmod_set_notice(struct urt_mon *m, int64_t notice_ns)
{
	struct mon_kmod *k = m->priv;
	struct urt_threshold thr = { .threshold_ns = (uint64_t)notice_ns };

	if (thr.threshold_ns < k->info.threshold_min_ns ||
	    thr.threshold_ns > k->info.threshold_max_ns)
		return -ERANGE;
	return ioctl(k->fd, URT_IOC_SET_THRESHOLD, &thr) ? -errno : 0;
}

static const char *kmod_describe(struct urt_mon *m)
{
	return ((struct mon_kmod *)m->priv)->desc;
}

const struct urt_mon_ops urt__mon_kmod_ops = {
	.name = "kmod", .open = kmod_open, .reg = kmod_reg, .unreg = kmod_unreg,
	.snapshot = kmod_snapshot, .wait = kmod_wait, .close = kmod_close,
	.set_notice = kmod_set_notice, .describe = kmod_describe,
};
