/* SPDX-License-Identifier: MIT */
/*
 * urt.h - the whole public API of liburt, a task runtime for C.
 *
 * Model (Documentation/design.md has the long version):
 *   - A runtime owns N worker *slots* (default: CPUs in the affinity mask)
 *     and the OS threads that run them. Tasks are scheduled cooperatively:
 *     a task runs until it awaits (sleeps, waits on a channel, an fd, ...).
 *   - Two kinds of task share one scheduler:
 *       fibers     a C function on its own small stack; it may call the
 *                  urt_* waiting functions below and reads like threads.
 *       poll tasks a state machine: a poll function that makes progress
 *                  and returns URT_PENDING (after arranging a wake-up)
 *                  or URT_READY.
 *   - A task is named by a urt_task_t handle, a value that stays safe to
 *     use after the task ends: joining, cancelling or detaching a handle
 *     that was already consumed returns -ESRCH, never undefined behaviour
 *     (as long as its runtime exists).
 *
 * Errors: functions returning int return 0 (or a count) on success and a
 * negative errno on failure. Functions returning a pointer return NULL and
 * set errno.
 *
 * Where waiting functions may be called:
 *   - in a fiber: they suspend only the fiber;
 *   - in a poll task: they return -EPERM (they would block the worker; use
 *     the *_poll forms and wakers);
 *   - on a thread outside any runtime: joins, channels and sync objects
 *     block the thread (so main() and plain threads can talk to fibers);
 *     sleeps and fd I/O return -EPERM (use the plain system calls there).
 * A cancelled fiber sees -ECANCELED from a waiting function that would
 * have to wait.
 */
#ifndef URT_H
#define URT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define URT_VERSION_MAJOR 0
#define URT_VERSION_MINOR 1

/* ---------------------------------------------------------------- runtime */

typedef struct urt_rt urt_rt;

/* A deadline or timeout of URT_FOREVER never expires. */
#define URT_FOREVER INT64_MAX

struct urt_config {
	unsigned int workers;		/* slots; 0: CPUs in the affinity mask */
	size_t stack_size;		/* fiber stack; 0: 64 KiB; rounded to pages */
	unsigned int max_blocking;	/* blocking-pool threads; 0: 64 */
	unsigned int blocking_idle_ms;	/* idle blocking thread exits after; 0: 10000 */
	unsigned int global_queue_interval; /* ticks between fairness checks; 0: 61 */
	unsigned int event_interval;	/* ticks between reactor polls; 0: 61 */
	const char *name;		/* thread name prefix; NULL: "urt" */

	/*
	 * The monitor: when a worker stays blocked in the kernel longer than
	 * monitor_threshold_ns, or runs one task step longer than
	 * hog_threshold_ns, while its slot has queued tasks, the slot and its
	 * queue move to a spare thread (at most max_spares of them). A hog's
	 * thread then runs its step at nice 19 until the step ends, where the
	 * process may lower a nice value again (CAP_SYS_NICE or RLIMIT_NICE).
	 */
	const char *monitor;		/* "auto" (NULL), "kmod", "bpf", "proc", "off" */
	int64_t monitor_threshold_ns;	/* 0: 50 us */
	int64_t hog_threshold_ns;	/* 0: 1 ms; < 0: no hog detection */
	unsigned int max_spares;	/* 0: as many as there are workers */
	/*
	 * Pollers: idle spare threads that poll the workers' states at
	 * SCHED_IDLE instead of sleeping (kmod and bpf backends); the one
	 * that sees a block pass the threshold runs the stuck slot itself:
	 * handoffs come sooner past the threshold, for CPU time no worker
	 * wanted (Documentation/monitor.md, "The poller"). Only where a
	 * thread may leave SCHED_IDLE again (CAP_SYS_NICE or RLIMIT_NICE);
	 * else none, and urt_monitor_backend() says so.
	 *   0 or URT_MONITOR_POLL_AUTO (the default): on demand: up to one
	 *     per slot (at most 4, one per CPU) poll while tasks run and
	 *     blocks past the threshold with tasks behind them keep coming
	 *     (one in the last 10 ms); a program that never blocks never
	 *     polls.
	 *   URT_MONITOR_POLL_OFF: none.
	 *   N > 0: up to N (at most one per slot) poll whenever tasks run.
	 */
	int monitor_poll;
	/*
	 * 0: right after a hog's thread is set to nice 19, the monitor sends
	 * it SIGURG, whose handler yields the CPU once (as Go preempts with
	 * SIGURG), so the spare sharing its CPU does not wait out the slice
	 * the hog began at nice 0. Only where the process had no SIGURG
	 * handler at urt_create; workers then take SIGURG, and a task that
	 * hogs may see EINTR from a syscall that is never restarted
	 * (nanosleep, poll, epoll_wait: signal(7)). -1: no signal.
	 */
	int hog_signal;
};

/* cfg.monitor_poll: pollers on demand (URT_MONITOR_POLL=auto, the
 * default), or none (URT_MONITOR_POLL=off or 0). */
#define URT_MONITOR_POLL_AUTO	(-1)
#define URT_MONITOR_POLL_OFF	(-2)

/* Fills *cfg with defaults (all zero: "choose for me"). */
void urt_config_init(struct urt_config *cfg);

/*
 * Applies environment overrides to *cfg:
 *   URT_WORKERS, URT_STACK_SIZE (bytes, k/m suffix), URT_MAX_BLOCKING,
 *   URT_BLOCKING_IDLE_MS, URT_MONITOR (auto|kmod|bpf|proc|off),
 *   URT_MONITOR_THRESHOLD_US, URT_HOG_THRESHOLD_US, URT_MAX_SPARES,
 *   URT_MONITOR_POLL (polling spares: off, auto, or 0 (off)..1024),
 *   URT_HOG_SIGNAL (0|1).
 * A malformed or out-of-range value returns -EINVAL and writes one line
 * naming the variable to *err (if err != NULL, errlen > 0).
 */
int urt_config_from_env(struct urt_config *cfg, char *err, size_t errlen);

/*
 * Creates a runtime and starts its workers. cfg may be NULL (defaults).
 * Calling it from inside a task returns -EDEADLK: a runtime blocking a
 * worker of another runtime is the classic starvation bug.
 */
int urt_create(urt_rt **out, const struct urt_config *cfg);

/*
 * Cancels every remaining task, waits for all of them to finish their
 * cleanup, stops the workers and frees the runtime. Handles of its tasks
 * become invalid. Must not be called from one of its own tasks (-EDEADLK).
 */
int urt_destroy(urt_rt *rt);

/* The runtime of the calling task or worker thread; NULL outside. */
urt_rt *urt_current(void);

/*
 * The entry point most programs want: reads the environment, creates a
 * runtime, runs fn(arg) as its main fiber, waits for it, destroys the
 * runtime and returns fn's result. Returns a negative errno (and prints
 * the reason to stderr) if the runtime cannot start.
 */
int urt_main(const struct urt_config *cfg, int (*fn)(void *arg), void *arg);

/* ------------------------------------------------------------------ tasks */

typedef struct {
	void *p;		/* private */
	uint64_t id;		/* task id; 0 never names a task */
} urt_task_t;

#define URT_TASK_NONE ((urt_task_t){ NULL, 0 })

typedef void *(*urt_fiber_fn)(void *arg);

struct urt_spawn_opts {
	const char *name;	/* copied, up to 15 characters; NULL: "" */
	size_t stack_size;	/* fibers only; 0: the runtime's default */
	/* Runs when the task ends (also when cancelled), on the task. */
	void (*cleanup)(void *arg);
	void *cleanup_arg;
	bool detached;		/* no handle: the task frees itself at the end */
};

/*
 * Spawns a fiber running fn(arg) on runtime rt (NULL: the current
 * runtime). Safe from any thread, inside the runtime or not. On error
 * returns URT_TASK_NONE and sets errno (ENOMEM, EINVAL, ESHUTDOWN, EPERM
 * when rt is NULL outside a runtime).
 */
urt_task_t urt_spawn(urt_rt *rt, urt_fiber_fn fn, void *arg);
urt_task_t urt_spawn_opts(urt_rt *rt, urt_fiber_fn fn, void *arg,
			  const struct urt_spawn_opts *opts);

/* Poll tasks ------------------------------------------------------------- */

typedef struct urt_cx urt_cx;		/* the context of one poll call */
typedef struct urt_waker urt_waker;	/* wakes one task; refcounted */

enum urt_poll {
	URT_PENDING = 0,	/* not done; a waker was registered somewhere */
	URT_READY = 1,		/* done; *result was set */
};

/*
 * A poll function makes progress on state and returns URT_READY with
 * *result set, or URT_PENDING after arranging for a waker (urt_cx_waker)
 * to be woken when progress is possible again. Returning URT_PENDING with
 * nothing armed leaves the task asleep until cancelled.
 */
typedef enum urt_poll (*urt_poll_fn)(void *state, urt_cx *cx, void **result);

urt_task_t urt_spawn_poll(urt_rt *rt, urt_poll_fn poll, void *state,
			  const struct urt_spawn_opts *opts);

/* A new reference to a waker for the polled task. Never NULL. */
urt_waker *urt_cx_waker(urt_cx *cx);
/* True once the polled task was asked to cancel: finish up and return READY. */
bool urt_cx_cancelled(urt_cx *cx);
/* Wakes the task (it will be polled again) and drops the reference. */
void urt_wake(urt_waker *w);
/* Wakes the task, keeps the reference. */
void urt_wake_by_ref(urt_waker *w);
urt_waker *urt_waker_clone(urt_waker *w);
void urt_waker_drop(urt_waker *w);
/* Asks for another poll as soon as possible, as a cooperative yield. */
void urt_cx_yield(urt_cx *cx);
/* Arms a one-shot wake-up of the polled task at deadline (urt_now() ns). */
int urt_cx_wake_at(urt_cx *cx, int64_t deadline_ns);
/* Arms a one-shot wake-up when fd is ready for events (EPOLLIN/EPOLLOUT). */
int urt_cx_wake_on_fd(urt_cx *cx, int fd, uint32_t events);

/* Handles ----------------------------------------------------------------- */

/*
 * Waits for the task to end and consumes the handle. *result (if not NULL)
 * gets the fiber's return value or the poll task's result; -ECANCELED if
 * the task was cancelled before it finished. From a fiber it suspends only
 * the fiber; from a thread outside the runtime it blocks the thread; from
 * a poll task it returns -EPERM (use urt_join_poll).
 */
int urt_join(urt_task_t t, void **result);
int urt_join_timeout(urt_task_t t, void **result, int64_t timeout_ns);
/* Poll-task join: URT_PENDING (waker armed) or URT_READY (*err set). */
enum urt_poll urt_join_poll(urt_task_t t, urt_cx *cx, void **result, int *err);

/*
 * Requests cooperative cancellation: the task sees it at its next await
 * point (waiting functions return -ECANCELED, poll tasks see
 * urt_cx_cancelled), or never runs if it has not started. Cleanup runs.
 * Does not consume the handle.
 */
int urt_cancel(urt_task_t t);
/* Gives up the handle: the task frees itself when it ends. */
int urt_detach(urt_task_t t);

uint64_t urt_task_id(urt_task_t t);
/* The calling task's id, 0 outside a task. */
uint64_t urt_self_id(void);
/* The calling task's name ("" if none), NULL outside a task. */
const char *urt_self_name(void);
/* True if the calling task was asked to cancel. */
bool urt_cancelled(void);
/* Which slot runs the caller; -1 outside a worker. */
int urt_self_slot(void);

/* Lets other tasks run; the fiber is rescheduled at the back of the queue. */
int urt_yield(void);

/* ------------------------------------------------------------------ time */

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t urt_now(void);
int urt_sleep(int64_t ns);
int urt_sleep_until(int64_t deadline_ns);

/* ------------------------------------------------------------ fiber I/O */

/*
 * Each call makes fd non-blocking (once) and suspends only the calling
 * fiber until the operation can proceed. They return what the system call
 * returns, or a negative errno (including -ETIMEDOUT from the _timeout
 * forms and -ECANCELED). Outside a fiber they return -EPERM.
 */
ssize_t urt_read(int fd, void *buf, size_t len);
ssize_t urt_write(int fd, const void *buf, size_t len);
ssize_t urt_read_timeout(int fd, void *buf, size_t len, int64_t timeout_ns);
ssize_t urt_write_timeout(int fd, const void *buf, size_t len, int64_t timeout_ns);
ssize_t urt_recv(int fd, void *buf, size_t len, int flags);
ssize_t urt_send(int fd, const void *buf, size_t len, int flags);
int urt_accept(int fd, struct sockaddr *addr, socklen_t *addrlen);
int urt_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);
/* Waits until fd is ready for events (EPOLLIN, EPOLLOUT...); returns revents. */
int urt_poll_fd(int fd, uint32_t events, int64_t timeout_ns);
/*
 * Forget fd before closing it. The reactor keeps no state a reused fd
 * number could be confused with after this call.
 */
int urt_close(int fd);

/* ----------------------------------------------------------------- channels */

typedef struct urt_chan urt_chan;

/*
 * A multi-producer multi-consumer channel of fixed-size elements.
 * capacity 0 means unbounded. Sends after close fail with -EPIPE; receives
 * drain what is queued, then fail with -EPIPE.
 */
urt_chan *urt_chan_create(size_t elem_size, size_t capacity);
int urt_chan_close(urt_chan *ch);
/* Frees the channel. Fails with -EBUSY while tasks wait on it. */
int urt_chan_destroy(urt_chan *ch);

int urt_chan_send(urt_chan *ch, const void *elem);
int urt_chan_recv(urt_chan *ch, void *elem);
int urt_chan_send_timeout(urt_chan *ch, const void *elem, int64_t timeout_ns);
int urt_chan_recv_timeout(urt_chan *ch, void *elem, int64_t timeout_ns);
/* Never wait: -EAGAIN when full/empty. Usable from any context. */
int urt_chan_try_send(urt_chan *ch, const void *elem);
int urt_chan_try_recv(urt_chan *ch, void *elem);
/* Poll-task forms: URT_PENDING (waker armed) or URT_READY (*err set). */
enum urt_poll urt_chan_poll_send(urt_chan *ch, urt_cx *cx, const void *elem, int *err);
enum urt_poll urt_chan_poll_recv(urt_chan *ch, urt_cx *cx, void *elem, int *err);
size_t urt_chan_len(const urt_chan *ch);

enum urt_select_op { URT_SELECT_RECV, URT_SELECT_SEND };

struct urt_select_case {
	urt_chan *ch;
	enum urt_select_op op;
	void *elem;		/* where to receive into / what to send */
};

/*
 * Waits until one case can proceed, performs exactly that one, and
 * returns its index. Returns -ETIMEDOUT after timeout_ns (URT_FOREVER: no
 * timeout; 0: try once), -EPIPE if every case's channel is closed.
 */
int urt_select(struct urt_select_case *cases, size_t n, int64_t timeout_ns);

/* ------------------------------------------------------------ sync */

/* Each object is created with *_create and freed with *_destroy. */

typedef struct urt_mutex urt_mutex;
urt_mutex *urt_mutex_create(void);
int urt_mutex_destroy(urt_mutex *m);		/* -EBUSY if locked */
int urt_mutex_lock(urt_mutex *m);
int urt_mutex_lock_timeout(urt_mutex *m, int64_t timeout_ns);
int urt_mutex_trylock(urt_mutex *m);		/* -EBUSY if held */
int urt_mutex_unlock(urt_mutex *m);		/* -EPERM if not held by caller */

typedef struct urt_cond urt_cond;
urt_cond *urt_cond_create(void);
int urt_cond_destroy(urt_cond *c);
int urt_cond_wait(urt_cond *c, urt_mutex *m);
int urt_cond_wait_timeout(urt_cond *c, urt_mutex *m, int64_t timeout_ns);
int urt_cond_signal(urt_cond *c);
int urt_cond_broadcast(urt_cond *c);

typedef struct urt_sem urt_sem;
urt_sem *urt_sem_create(unsigned int value);
int urt_sem_destroy(urt_sem *s);
int urt_sem_acquire(urt_sem *s);
int urt_sem_acquire_timeout(urt_sem *s, int64_t timeout_ns);
int urt_sem_try_acquire(urt_sem *s);		/* -EAGAIN if zero */
int urt_sem_release(urt_sem *s);

typedef struct urt_wg urt_wg;			/* wait group */
urt_wg *urt_wg_create(void);
int urt_wg_destroy(urt_wg *wg);
int urt_wg_add(urt_wg *wg, int delta);		/* -EINVAL below zero */
int urt_wg_done(urt_wg *wg);
int urt_wg_wait(urt_wg *wg);
int urt_wg_wait_timeout(urt_wg *wg, int64_t timeout_ns);

typedef struct urt_oneshot urt_oneshot;	/* one value, one sender, one receiver */
urt_oneshot *urt_oneshot_create(void);
int urt_oneshot_destroy(urt_oneshot *o);
int urt_oneshot_send(urt_oneshot *o, void *value);	/* -EALREADY the 2nd time */
int urt_oneshot_recv(urt_oneshot *o, void **value);
int urt_oneshot_recv_timeout(urt_oneshot *o, void **value, int64_t timeout_ns);

/* ------------------------------------------------------------ blocking pool */

/*
 * Runs fn(arg) on a thread of the runtime's blocking pool (bounded by
 * max_blocking; idle threads exit after blocking_idle_ms) and returns a
 * handle to join like any task. Use it for code that blocks: file I/O,
 * DNS, a library that sleeps.
 */
urt_task_t urt_spawn_blocking(urt_rt *rt, urt_fiber_fn fn, void *arg);

/* ------------------------------------------------------------ stats */

struct urt_stats {
	uint64_t spawned;	/* tasks created */
	uint64_t completed;	/* tasks finished */
	uint64_t polls;		/* task steps run */
	uint64_t steals;	/* tasks taken from another slot */
	uint64_t parks;		/* times a worker went to sleep */
	uint64_t blocking_threads; /* live blocking-pool threads */
	uint64_t handoffs;	/* slots moved to a spare thread by the monitor */
	uint64_t blocks_seen;	/* workers seen blocked past the threshold */
	uint64_t hogs;		/* task steps seen running past hog_threshold_ns */
	unsigned int workers;	/* slots */
	uint64_t poll_handoffs;	/* of handoffs: made by the poller (monitor_poll) */
	uint64_t unstacks;	/* workers the monitor moved off a CPU another
				 * busy worker had, to one none had */
	uint64_t hog_yields;	/* demoted hogs that yielded on hog_signal */
};

int urt_stats(urt_rt *rt, struct urt_stats *out);

/* One slot, for monitoring and the tools. */
struct urt_slot_stats {
	unsigned int slot;
	int owner_tid;		/* thread running the slot now; 0 if not started */
	bool idle;		/* its owner is parked (nothing to run) */
	uint64_t cur_task;	/* id of the task running on it, 0 if none */
	uint64_t steps;		/* task steps run */
	uint32_t queued;	/* tasks in its local queue */
	uint64_t handoffs;	/* times the monitor moved it to a spare thread */
	uint64_t blocks_seen;	/* owner seen blocked past the threshold (with work queued) */
	uint64_t hogs;		/* a task step seen running past hog_threshold_ns */
	int64_t stuck_ns;	/* total time it was stuck before being handed off */
	/* The last handoff: what the monitor saw. */
	uint64_t last_task;	/* the stuck task's id, 0 if none yet */
	char last_task_name[16];
	int last_syscall;	/* the syscall it was blocked in; -1: a hog or unknown */
	int64_t last_stuck_ns;	/* how long it had been stuck when handed off */
};

int urt_slot_stats(urt_rt *rt, unsigned int slot, struct urt_slot_stats *out);

/*
 * Which monitor backend runs ("kmod", "bpf", "proc", "off") and, in `why`,
 * one line saying why the others were not chosen. Returns the name.
 */
const char *urt_monitor_backend(urt_rt *rt, char *why, size_t whylen);

/* A one-line description of a negative urt return value. */
const char *urt_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif /* URT_H */
