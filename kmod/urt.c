// SPDX-License-Identifier: GPL-2.0
/*
 * urt.c - tell a user-space task runtime when its worker threads block.
 *
 * A task runtime runs many tasks on a few worker threads. When a worker
 * blocks in the kernel (read() on a slow fd, a page fault, a mutex) every
 * task queued behind it waits too, unless the runtime notices and hands the
 * worker's queue to another thread. This module is how it notices.
 *
 * Objects
 *   group   one per open() of /dev/urt: one runtime instance. Owns the
 *           state array (mmapped read-only by the runtime), the threshold,
 *           and a queue of events read()/poll()ed by the runtime's monitor.
 *   worker  one per registered thread. A preempt notifier on that thread,
 *           an hrtimer for the threshold, and a slot in the state array.
 *
 * How a block is seen
 *   The worker's preempt notifier runs at each of its context switches.
 *   sched_out with current->on_rq == 0 means the thread left the run queue:
 *   a block. Preemption and sched_yield() leave it on the run queue and are
 *   not blocks. sched_out writes BLOCKED, the time and the syscall number
 *   into the slot and makes sure the threshold hrtimer is armed; sched_in
 *   writes RUNNING and leaves the timer alone. When the timer fires and the
 *   block it finds has lasted the threshold, it queues one
 *   URT_EV_BLOCKED_LONG event.
 *
 * The timer is armed lazily
 *   Arming and cancelling an hrtimer at every block and wake-up costs more
 *   than the rest of the notifiers together (base lock, rbtree, often a
 *   reprogram of the clock event device). So the timer is armed only when
 *   it is not already pending: w->armed is 1 from the arming until the
 *   callback starts. A timer that is pending fires no later than the
 *   current block's due time (it was armed at an earlier block, or for
 *   this one), so the callback checks the current block: due and not yet
 *   reported: one event; blocked but not due yet (a newer block than the
 *   one that armed it): re-armed for that block's due time; running: done,
 *   the next block arms it again. While blocks come fast that is one
 *   expiry per threshold per slot (two when a re-arm lands on a block that
 *   is then reported: the chain ends there), and every block that lasts
 *   the threshold is reported by the first expiry at or after its due time.
 *
 *   The race between a new block and a callback that is finishing is the
 *   store-buffering pattern: sched_out writes the state, then xchg(armed,
 *   1); the callback xchg(armed, 0), then reads the state (both fully
 *   ordered). Either sched_out finds armed 0 and arms the timer itself, or
 *   the callback sees the new block. Only the side that moves armed from 0
 *   to 1 touches the timer's expiry, so the callback never moves a timer
 *   that sched_out has queued meanwhile (it returns HRTIMER_NORESTART and
 *   the core leaves that queued timer alone). reported (the seq of the
 *   last block reported, + 1) makes "one event per block" hold even when a
 *   late callback and a fresh arming both see the same block.
 *
 * Invariants
 *   - A slot's state is written only by its own thread: from its notifiers,
 *     or from REGISTER/UNREGISTER/exit on that thread with preemption
 *     disabled. So there is one writer and a plain seqcount suffices.
 *   - Notifiers are linked and unlinked only on current (the list is walked
 *     without a lock by the context switch of that same thread), with
 *     preemption disabled, as KVM does.
 *   - A thread is in at most one group (REGISTER walks its notifier list).
 *   - Each worker holds a reference on its group; each group holds a
 *     reference on the module. So a thread can outlive the group's fd (fd
 *     closed by another thread, process killed while some threads are still
 *     exiting) without its notifier pointing at freed memory or code.
 *   - A thread that exits without UNREGISTER is detached by a probe on the
 *     sched_process_exit tracepoint, which runs on the exiting thread
 *     itself, before its files are closed. Freeing at fd release instead
 *     would leave the notifier of a live thread pointing at freed memory.
 *
 * Locking
 *   sched_out runs with the rq lock held and IRQs off; sched_in with
 *   preemption off. Neither may sleep or wake a task: waking takes another
 *   rq lock. Events are queued under a raw spinlock (evq_lock, a leaf lock)
 *   and the wakeup of readers is deferred to an irq_work. For the same
 *   reason nothing on the switch path cancels the timer (hrtimer_cancel()
 *   would wait for a callback running on another CPU); only detach does,
 *   on the thread itself in process or exit context, after its notifier
 *   is gone, and that waits for a callback that re-arms itself too.
 *   slots is a bitmap of owned slots, taken and released with the _lock
 *   bitops (acquire/release). urt_groups_lock (a mutex) protects the list
 *   of open groups used for the per-user limit.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/cred.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/hrtimer.h>
#include <linux/irq_work.h>
#include <linux/kref.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/pid.h>
#include <linux/poll.h>
#include <linux/preempt.h>
#include <linux/sched.h>
#include <linux/sched/task_stack.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/tracepoint.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <asm/syscall.h>

#include "uapi/linux/urt.h"
#include "urt_compat.h"

#define CREATE_TRACE_POINTS
#include "urt_trace.h"

#define URT_MAX_WORKERS_LIMIT	4096
#define URT_EVQ_LEN		128	/* power of two */
#define URT_THRESHOLD_MIN_NS	1000ULL			/* 1 us */
#define URT_THRESHOLD_MAX_NS	(60ULL * NSEC_PER_SEC)	/* 1 min */

static unsigned int max_workers = 256;
module_param(max_workers, uint, 0444);
MODULE_PARM_DESC(max_workers, "Slots per group (1..4096, default 256)");

static unsigned int max_groups_per_user = 64;
module_param(max_groups_per_user, uint, 0644);
MODULE_PARM_DESC(max_groups_per_user,
		 "Open /dev/urt groups per user (default 64)");

/* The ABI is fixed-size and padding-free: fail the build, not the user. */
static_assert(sizeof(struct urt_worker_state) == 64);
static_assert(sizeof(struct urt_info) == 64);
static_assert(sizeof(struct urt_register) == 32);
static_assert(sizeof(struct urt_threshold) == 32);
static_assert(sizeof(struct urt_event) == 64);

struct urt_group {
	struct kref ref;
	struct list_head node;		/* in urt_groups while the fd is open */
	struct pid *tgid;		/* the process that opened the device */
	kuid_t uid;

	struct urt_worker_state *states;	/* vmalloc_user(map_size) */
	size_t map_size;
	u32 max_workers;
	unsigned long *slots;		/* bitmap: slot in use */

	u64 threshold_ns;		/* READ_ONCE: read in sched_out */
	u32 thr_flags;

	raw_spinlock_t evq_lock;	/* leaf lock, taken under rq lock */
	struct urt_event *evq;		/* ring of URT_EVQ_LEN events */
	u32 evq_head;			/* next to read */
	u32 evq_tail;			/* next to write */
	bool evq_lost;			/* dropped since the last queued */
	wait_queue_head_t wq;		/* readers and pollers */
	struct irq_work wake_work;	/* wakes wq outside the rq lock */

	struct work_struct free_work;
};

struct urt_worker {
	struct preempt_notifier pn;
	struct urt_group *group;	/* holds a reference */
	struct urt_worker_state *st;	/* &group->states[slot] */
	struct hrtimer timer;		/* threshold */
	atomic_t armed;			/* 1: pending, or its callback deciding */
	pid_t tid;			/* in the registering thread's pid ns */
	u32 slot;
	bool blocked;			/* touched only by the thread itself */
	u32 reported;			/* seq + 1 of the last block reported */
	u64 thr_ns;			/* the current block's threshold, 0: none */
};

static LIST_HEAD(urt_groups);
static DEFINE_MUTEX(urt_groups_lock);
static struct workqueue_struct *urt_wq;
static struct tracepoint *urt_tp_exit;
static struct dentry *urt_debugfs;

/* Counters for debugfs. Per-CPU: blocks is bumped on every context switch. */
static DEFINE_PER_CPU(u64, urt_stat_blocks);
static DEFINE_PER_CPU(u64, urt_stat_events);
static DEFINE_PER_CPU(u64, urt_stat_dropped);
static DEFINE_PER_CPU(u64, urt_stat_armed);	/* hrtimer armed, any reason */
static DEFINE_PER_CPU(u64, urt_stat_rearmed);	/* ... by its own callback */
static DEFINE_PER_CPU(u64, urt_stat_expiries);	/* callbacks run */
static atomic_t urt_nr_groups = ATOMIC_INIT(0);	/* alive, fd open or not */
static atomic_t urt_nr_workers = ATOMIC_INIT(0);

static struct preempt_ops urt_preempt_ops;

/* Seqcount write side. The only writer is the slot's own thread. */
static void urt_state_begin(struct urt_worker_state *st)
{
	WRITE_ONCE(st->seq, st->seq + 1);
	smp_wmb();	/* seq odd before the fields change */
}

static u32 urt_state_end(struct urt_worker_state *st)
{
	smp_wmb();	/* fields before seq even */
	WRITE_ONCE(st->seq, st->seq + 1);
	return st->seq;
}

/* Queue an event and wake readers. Any context; may hold the rq lock. */
static void urt_post(struct urt_group *g, struct urt_event *ev)
{
	unsigned long flags;
	bool queued = false;

	raw_spin_lock_irqsave(&g->evq_lock, flags);
	if (g->evq_tail - g->evq_head < URT_EVQ_LEN) {
		if (g->evq_lost)
			ev->flags |= URT_EVF_LOST;
		g->evq_lost = false;
		g->evq[g->evq_tail % URT_EVQ_LEN] = *ev;
		WRITE_ONCE(g->evq_tail, g->evq_tail + 1);
		queued = true;
	} else {
		g->evq_lost = true;
	}
	raw_spin_unlock_irqrestore(&g->evq_lock, flags);

	if (queued) {
		this_cpu_inc(urt_stat_events);
		irq_work_queue(&g->wake_work);
	} else {
		this_cpu_inc(urt_stat_dropped);
	}
}

static void urt_wake_fn(struct irq_work *work)
{
	struct urt_group *g = container_of(work, struct urt_group, wake_work);

	wake_up_interruptible_poll(&g->wq, EPOLLIN | EPOLLRDNORM);
}

static void urt_fill_event(struct urt_event *ev, u32 type,
			   const struct urt_worker_state *st, u32 seq)
{
	memset(ev, 0, sizeof(*ev));
	ev->type = type;
	ev->slot = READ_ONCE(st->slot);
	ev->tid = READ_ONCE(st->tid);
	ev->syscall_nr = READ_ONCE(st->syscall_nr);
	ev->blocked_since_ns = READ_ONCE(st->blocked_since_ns);
	ev->time_ns = ktime_get_ns();
	ev->seq = seq;
}

/*
 * The timer armed by an earlier block or by this one. Hard IRQ context,
 * serialized with itself. It may interrupt sched_in on this CPU mid-update
 * (seq odd): that block is ending, nothing to report. See "The timer is
 * armed lazily" above for why no block that lasts the threshold is missed.
 */
static enum hrtimer_restart urt_timer_fn(struct hrtimer *timer)
{
	struct urt_worker *w = container_of(timer, struct urt_worker, timer);
	struct urt_worker_state *st = w->st;
	struct urt_event ev;
	u64 thr, due;
	u32 seq;

	this_cpu_inc(urt_stat_expiries);
	/* Disarmed before the state is read: pairs with urt_sched_out(). */
	atomic_xchg(&w->armed, 0);
	seq = READ_ONCE(st->seq);
	smp_rmb();	/* seq before the fields, as a reader */
	if (seq & 1 || READ_ONCE(st->state) != URT_STATE_BLOCKED ||
	    w->reported == seq + 1)
		return HRTIMER_NORESTART;
	thr = READ_ONCE(w->thr_ns);
	urt_fill_event(&ev, URT_EV_BLOCKED_LONG, st, seq);
	smp_rmb();	/* the fields before the re-check */
	if (READ_ONCE(st->seq) != seq || !thr)
		return HRTIMER_NORESTART;
	due = ev.blocked_since_ns + thr;
	if (ev.time_ns < due) {
		/* A newer block than the one we were armed for. */
		if (atomic_cmpxchg(&w->armed, 0, 1))
			return HRTIMER_NORESTART;	/* sched_out armed us */
		this_cpu_inc(urt_stat_armed);
		this_cpu_inc(urt_stat_rearmed);
		hrtimer_set_expires(timer, ns_to_ktime(due));
		return HRTIMER_RESTART;
	}
	w->reported = seq + 1;
	urt_post(w->group, &ev);
	trace_urt_notify(ev.tid, ev.slot, ev.type, ev.time_ns - ev.blocked_since_ns);
	return HRTIMER_NORESTART;
}

/* Context switch away from a worker: rq lock held, IRQs off. */
static void urt_sched_out(struct preempt_notifier *pn, struct task_struct *next)
{
	struct urt_worker *w = container_of(pn, struct urt_worker, pn);
	struct urt_worker_state *st = w->st;
	struct urt_group *g = w->group;
	struct urt_event ev;
	u64 now, thr;
	long nr;
	u32 seq;

	/* Preempted or yielding: still runnable, so not a block. */
	if (READ_ONCE(current->on_rq))
		return;

	now = ktime_get_ns();
	nr = syscall_get_nr(current, task_pt_regs(current));
	thr = READ_ONCE(g->threshold_ns);
	urt_state_begin(st);
	WRITE_ONCE(w->thr_ns, thr);	/* read by the callback as a field */
	WRITE_ONCE(st->state, URT_STATE_BLOCKED);
	WRITE_ONCE(st->syscall_nr, nr);
	WRITE_ONCE(st->blocked_since_ns, now);
	WRITE_ONCE(st->blocks, st->blocks + 1);
	seq = urt_state_end(st);
	w->blocked = true;
	this_cpu_inc(urt_stat_blocks);
	trace_urt_block(current->pid, w->slot, nr);

	/*
	 * State written above, then armed read (xchg: fully ordered), as the
	 * callback does the other way round. A pending timer fires no later
	 * than this block is due and will look at it.
	 */
	if (thr && !atomic_xchg(&w->armed, 1)) {
		this_cpu_inc(urt_stat_armed);
		hrtimer_start(&w->timer, ns_to_ktime(now + thr),
			      HRTIMER_MODE_ABS_HARD);
	}
	if (READ_ONCE(g->thr_flags) & URT_THR_NOTIFY_EVERY_BLOCK) {
		urt_fill_event(&ev, URT_EV_BLOCK, st, seq);
		urt_post(g, &ev);
		trace_urt_notify(current->pid, w->slot, URT_EV_BLOCK, 0);
	}
}

/* The worker runs again: preemption off, IRQs on. */
static void urt_sched_in(struct preempt_notifier *pn, int cpu)
{
	struct urt_worker *w = container_of(pn, struct urt_worker, pn);
	struct urt_worker_state *st = w->st;
	u64 blocked_ns;

	if (!w->blocked)
		return;		/* back from preemption or yield */
	w->blocked = false;
	/* The timer stays: it is cheaper to let it fire once per threshold. */

	blocked_ns = ktime_get_ns() - st->blocked_since_ns;
	urt_state_begin(st);
	WRITE_ONCE(st->state, URT_STATE_RUNNING);
	WRITE_ONCE(st->blocked_ns, st->blocked_ns + blocked_ns);
	urt_state_end(st);
	trace_urt_unblock(current->pid, w->slot, blocked_ns);
}

static struct preempt_ops urt_preempt_ops = {
	.sched_in = urt_sched_in,
	.sched_out = urt_sched_out,
};

static void urt_group_free_fn(struct work_struct *work)
{
	struct urt_group *g = container_of(work, struct urt_group, free_work);

	irq_work_sync(&g->wake_work);
	vfree(g->states);
	bitmap_free(g->slots);
	kfree(g->evq);
	put_pid(g->tgid);
	kfree(g);
	atomic_dec(&urt_nr_groups);
	/* Last: urt_exit() destroys urt_wq, which waits for us to return. */
	module_put(THIS_MODULE);
}

/* Last reference: may run in atomic context (exit probe), so defer. */
static void urt_group_release(struct kref *ref)
{
	struct urt_group *g = container_of(ref, struct urt_group, ref);

	queue_work(urt_wq, &g->free_work);
}

/* The urt worker of the current thread, if any. Only current changes it. */
static struct urt_worker *urt_current_worker(void)
{
	struct preempt_notifier *pn;

	hlist_for_each_entry(pn, &current->preempt_notifiers, link)
		if (pn->ops == &urt_preempt_ops)
			return container_of(pn, struct urt_worker, pn);
	return NULL;
}

/*
 * Undo REGISTER for the current thread. Process context, from UNREGISTER,
 * or atomic context from the exit probe: nothing here sleeps.
 */
static void urt_worker_detach(struct urt_worker *w)
{
	struct urt_worker_state *st = w->st;
	struct urt_group *g = w->group;

	preempt_disable();
	preempt_notifier_unregister(&w->pn);
	preempt_enable();
	/*
	 * Waits for a callback running on another CPU (and cancels the timer
	 * again if that callback re-armed it); none can start after.
	 */
	hrtimer_cancel(&w->timer);

	preempt_disable();
	urt_state_begin(st);
	WRITE_ONCE(st->state, URT_STATE_UNUSED);
	WRITE_ONCE(st->tid, 0);
	WRITE_ONCE(st->syscall_nr, -1);
	urt_state_end(st);
	preempt_enable();

	/* Release: the next owner's writes come after ours. */
	clear_bit_unlock(w->slot, g->slots);
	kfree(w);
	atomic_dec(&urt_nr_workers);
	kref_put(&g->ref, urt_group_release);
}

/* sched_process_exit probe: runs on the exiting thread, before exit_files. */
static void urt_exit_probe(void *data, struct task_struct *p)
{
	struct urt_worker *w;

	if (p != current || hlist_empty(&p->preempt_notifiers))
		return;
	w = urt_current_worker();
	if (w)
		urt_worker_detach(w);
}

static long urt_register(struct urt_group *g, void __user *arg)
{
	struct urt_worker_state *st;
	struct urt_register r;
	struct urt_worker *w;

	if (copy_from_user(&r, arg, sizeof(r)))
		return -EFAULT;
	if (r.flags || memchr_inv(r.reserved, 0, sizeof(r.reserved)))
		return -EINVAL;
	if (r.slot >= g->max_workers)
		return -EINVAL;
	/* Only threads of the process that opened the device. */
	if (task_tgid(current) != g->tgid)
		return -EPERM;
	if (urt_current_worker())
		return -EBUSY;		/* this thread, in any group */

	w = kzalloc(sizeof(*w), GFP_KERNEL);
	if (!w)
		return -ENOMEM;
	if (test_and_set_bit_lock(r.slot, g->slots)) {
		kfree(w);
		return -EBUSY;		/* slot taken by another thread */
	}

	kref_get(&g->ref);
	atomic_inc(&urt_nr_workers);
	w->group = g;
	w->slot = r.slot;
	st = &g->states[r.slot];
	w->st = st;
	w->tid = task_pid_vnr(current);
	hrtimer_setup(&w->timer, urt_timer_fn, CLOCK_MONOTONIC,
		      HRTIMER_MODE_REL_HARD);
	preempt_notifier_init(&w->pn, &urt_preempt_ops);

	preempt_disable();
	urt_state_begin(st);
	WRITE_ONCE(st->state, URT_STATE_RUNNING);
	WRITE_ONCE(st->tid, w->tid);
	WRITE_ONCE(st->syscall_nr, -1);
	WRITE_ONCE(st->blocked_since_ns, 0);
	WRITE_ONCE(st->blocks, 0);
	WRITE_ONCE(st->blocked_ns, 0);
	urt_state_end(st);
	preempt_notifier_register(&w->pn);
	preempt_enable();
	return 0;
}

static long urt_unregister(struct urt_group *g, unsigned long arg)
{
	struct urt_worker *w;

	if (arg)
		return -EINVAL;
	w = urt_current_worker();
	if (!w || w->group != g)
		return -ENOENT;
	urt_worker_detach(w);
	return 0;
}

static long urt_set_threshold(struct urt_group *g, void __user *arg)
{
	struct urt_threshold t;

	if (copy_from_user(&t, arg, sizeof(t)))
		return -EFAULT;
	if ((t.flags & ~URT_THR_FLAGS_ALL) || t.reserved0 ||
	    memchr_inv(t.reserved, 0, sizeof(t.reserved)))
		return -EINVAL;
	if (t.threshold_ns && (t.threshold_ns < URT_THRESHOLD_MIN_NS ||
			       t.threshold_ns > URT_THRESHOLD_MAX_NS))
		return -EINVAL;
	WRITE_ONCE(g->threshold_ns, t.threshold_ns);
	WRITE_ONCE(g->thr_flags, t.flags);
	return 0;
}

static long urt_get_info(struct urt_group *g, void __user *arg)
{
	struct urt_info info = {
		.abi_version = URT_ABI_VERSION,
		.max_workers = g->max_workers,
		.state_size = sizeof(struct urt_worker_state),
		.event_size = sizeof(struct urt_event),
		.map_size = g->map_size,
		.threshold_min_ns = URT_THRESHOLD_MIN_NS,
		.threshold_max_ns = URT_THRESHOLD_MAX_NS,
		.event_queue_len = URT_EVQ_LEN,
	};

	return copy_to_user(arg, &info, sizeof(info)) ? -EFAULT : 0;
}

static long urt_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct urt_group *g = file->private_data;

	switch (cmd) {
	case URT_IOC_GET_VERSION:
		return URT_ABI_VERSION;
	case URT_IOC_GET_INFO:
		return urt_get_info(g, (void __user *)arg);
	case URT_IOC_REGISTER:
		return urt_register(g, (void __user *)arg);
	case URT_IOC_UNREGISTER:
		return urt_unregister(g, arg);
	case URT_IOC_SET_THRESHOLD:
		return urt_set_threshold(g, (void __user *)arg);
	default:
		return -ENOTTY;
	}
}

/* Pop up to n events. */
static size_t urt_evq_pop(struct urt_group *g, struct urt_event *evs, size_t n)
{
	unsigned long flags;
	size_t i;

	raw_spin_lock_irqsave(&g->evq_lock, flags);
	for (i = 0; i < n && g->evq_head + i != g->evq_tail; i++)
		evs[i] = g->evq[(g->evq_head + i) % URT_EVQ_LEN];
	WRITE_ONCE(g->evq_head, g->evq_head + i);	/* urt_evq_ready() */
	raw_spin_unlock_irqrestore(&g->evq_lock, flags);
	return i;
}

static bool urt_evq_ready(struct urt_group *g)
{
	return READ_ONCE(g->evq_head) != READ_ONCE(g->evq_tail);
}

static ssize_t urt_read(struct file *file, char __user *buf, size_t count,
			loff_t *ppos)
{
	struct urt_group *g = file->private_data;
	size_t want = count / sizeof(struct urt_event);
	struct urt_event evs[8];
	size_t n, done = 0;
	int ret;

	if (!want)
		return -EINVAL;
	/* Wait for the first events; another reader may take them first. */
	for (;;) {
		n = urt_evq_pop(g, evs, min(want, ARRAY_SIZE(evs)));
		if (n)
			break;
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		ret = wait_event_interruptible(g->wq, urt_evq_ready(g));
		if (ret)
			return ret;
	}
	/* Then whatever else is queued, without waiting. */
	do {
		if (copy_to_user(buf + done * sizeof(*evs), evs,
				 n * sizeof(*evs)))
			return done ? done * sizeof(*evs) : -EFAULT;
		done += n;
		n = urt_evq_pop(g, evs, min(want - done, ARRAY_SIZE(evs)));
	} while (n);
	return done * sizeof(*evs);
}

static __poll_t urt_poll(struct file *file, poll_table *pt)
{
	struct urt_group *g = file->private_data;

	poll_wait(file, &g->wq, pt);
	return urt_evq_ready(g) ? EPOLLIN | EPOLLRDNORM : 0;
}

static int urt_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct urt_group *g = file->private_data;

	/* The state is the module's word: user space only reads it. */
	if (vma->vm_flags & VM_WRITE)
		return -EPERM;
	if (vma->vm_pgoff || vma->vm_end - vma->vm_start > g->map_size)
		return -EINVAL;
	vm_flags_clear(vma, VM_MAYWRITE);	/* no mprotect(PROT_WRITE) */
	return remap_vmalloc_range(vma, g->states, 0);
}

static unsigned int urt_user_groups(kuid_t uid)
{
	struct urt_group *g;
	unsigned int n = 0;

	list_for_each_entry(g, &urt_groups, node)
		n += uid_eq(g->uid, uid);
	return n;
}

static int urt_open(struct inode *inode, struct file *file)
{
	struct urt_group *g;
	unsigned int i;
	int ret = -ENOMEM;

	g = kzalloc(sizeof(*g), GFP_KERNEL);
	if (!g)
		return -ENOMEM;
	g->max_workers = clamp_val(max_workers, 1, URT_MAX_WORKERS_LIMIT);
	g->map_size = PAGE_ALIGN(g->max_workers *
				 sizeof(struct urt_worker_state));
	g->states = vmalloc_user(g->map_size);	/* zeroed: all UNUSED */
	g->slots = bitmap_zalloc(g->max_workers, GFP_KERNEL);
	g->evq = kcalloc(URT_EVQ_LEN, sizeof(*g->evq), GFP_KERNEL);
	if (!g->states || !g->slots || !g->evq)
		goto err_free;
	for (i = 0; i < g->max_workers; i++) {
		g->states[i].slot = i;
		g->states[i].syscall_nr = -1;
	}
	kref_init(&g->ref);
	g->uid = current_uid();
	raw_spin_lock_init(&g->evq_lock);
	init_waitqueue_head(&g->wq);
	init_irq_work(&g->wake_work, urt_wake_fn);
	INIT_WORK(&g->free_work, urt_group_free_fn);

	mutex_lock(&urt_groups_lock);
	if (urt_user_groups(g->uid) >= READ_ONCE(max_groups_per_user)) {
		mutex_unlock(&urt_groups_lock);
		ret = -EMFILE;		/* as inotify's per-user limit */
		goto err_free;
	}
	list_add(&g->node, &urt_groups);
	mutex_unlock(&urt_groups_lock);

	g->tgid = get_pid(task_tgid(current));
	/* The fd's module reference ends at release; workers may outlive it. */
	__module_get(THIS_MODULE);
	atomic_inc(&urt_nr_groups);
	file->private_data = g;
	return nonseekable_open(inode, file);

err_free:
	vfree(g->states);
	bitmap_free(g->slots);
	kfree(g->evq);
	kfree(g);
	return ret;
}

static int urt_release(struct inode *inode, struct file *file)
{
	struct urt_group *g = file->private_data;

	mutex_lock(&urt_groups_lock);
	list_del(&g->node);
	mutex_unlock(&urt_groups_lock);
	/* Registered threads keep the group alive until they detach. */
	kref_put(&g->ref, urt_group_release);
	return 0;
}

static const struct file_operations urt_fops = {
	.owner = THIS_MODULE,
	.open = urt_open,
	.release = urt_release,
	.read = urt_read,
	.poll = urt_poll,
	.mmap = urt_mmap,
	.unlocked_ioctl = urt_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

static struct miscdevice urt_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "urt",
	.fops = &urt_fops,
	.mode = 0666,	/* for unprivileged runtimes; limits are per user */
};

static u64 urt_sum(u64 __percpu *v)
{
	u64 sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += *per_cpu_ptr(v, cpu);
	return sum;
}

static int urt_stats_show(struct seq_file *m, void *unused)
{
	seq_printf(m, "groups %d\n", atomic_read(&urt_nr_groups));
	seq_printf(m, "workers %d\n", atomic_read(&urt_nr_workers));
	seq_printf(m, "blocks %llu\n", urt_sum(&urt_stat_blocks));
	seq_printf(m, "events %llu\n", urt_sum(&urt_stat_events));
	seq_printf(m, "events_dropped %llu\n", urt_sum(&urt_stat_dropped));
	seq_printf(m, "timers_armed %llu\n", urt_sum(&urt_stat_armed));
	seq_printf(m, "timers_rearmed %llu\n", urt_sum(&urt_stat_rearmed));
	seq_printf(m, "timer_expiries %llu\n", urt_sum(&urt_stat_expiries));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(urt_stats);

static void urt_find_exit_tp(struct tracepoint *tp, void *priv)
{
	if (!strcmp(tp->name, "sched_process_exit"))
		urt_tp_exit = tp;
}

static int __init urt_init(void)
{
	int ret;

	/* Not exported as a symbol; found by name among core tracepoints. */
	for_each_kernel_tracepoint(urt_find_exit_tp, NULL);
	if (!urt_tp_exit) {
		pr_err("tracepoint sched_process_exit not found\n");
		return -ENOENT;
	}
	urt_wq = alloc_workqueue("urt", 0, 0);
	if (!urt_wq)
		return -ENOMEM;
	ret = tracepoint_probe_register(urt_tp_exit, urt_exit_probe, NULL);
	if (ret)
		goto err_wq;
	/* Enables the notifier static key; may sleep, so only here. */
	preempt_notifier_inc();
	ret = misc_register(&urt_misc);
	if (ret)
		goto err_tp;
	urt_debugfs = debugfs_create_dir("urt", NULL);
	debugfs_create_file("stats", 0444, urt_debugfs, NULL, &urt_stats_fops);
	pr_info("ABI %d, /dev/urt, %u slots per group\n", URT_ABI_VERSION,
		clamp_val(max_workers, 1, URT_MAX_WORKERS_LIMIT));
	return 0;

err_tp:
	preempt_notifier_dec();
	tracepoint_probe_unregister(urt_tp_exit, urt_exit_probe, NULL);
	tracepoint_synchronize_unregister();
err_wq:
	destroy_workqueue(urt_wq);
	return ret;
}

/*
 * Every group holds a module reference, so no group, worker, notifier,
 * timer or irq_work exists any more; only a group's free work may still be
 * returning, and destroy_workqueue() waits for it.
 */
static void __exit urt_exit(void)
{
	debugfs_remove_recursive(urt_debugfs);
	misc_deregister(&urt_misc);
	tracepoint_probe_unregister(urt_tp_exit, urt_exit_probe, NULL);
	tracepoint_synchronize_unregister();
	preempt_notifier_dec();
	destroy_workqueue(urt_wq);
}

module_init(urt_init);
module_exit(urt_exit);

MODULE_DESCRIPTION("urt: tell a task runtime when its worker threads block");
MODULE_AUTHOR("urt developers");
MODULE_LICENSE("GPL");
