// SPDX-License-Identifier: MIT
/*
 * bench.c - urt's side of the benchmark suite.
 *
 * The same workloads exist in peers/tokio/src/main.rs and peers/go/main.go,
 * in the same order, with the same sizes and the same output; README.md in
 * this directory is the specification all three follow. Usage:
 *
 *   urt-bench WORKLOAD WORKERS SCALE SAMPLES
 *
 * runs one warm-up iteration and SAMPLES timed ones, each printed as
 *
 *   RESULT workload=W runtime=urt workers=N sample=I ops=K value=V unit=U monitor=M
 *
 * The detect_* workloads (urt only) print three lines per sample instead,
 * the p50, p99 and max of the latencies in it, with extra fields:
 *
 *   RESULT ... value=V unit=us monitor=M stat=p50|p99|max missed=K threshold_us=T
 *
 * SCALE multiplies the sizes (the smoke run uses 0.01). The runtime is
 * created with WORKERS slots, after the environment was applied
 * (urt_config_from_env: URT_MONITOR and friends); M is the monitor backend
 * that runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <urt.h>

#define MS(x) ((int64_t)(x) * 1000000)
/* struct urt_config's defaults (include/urt.h), for the detect_* report */
#define URT_DEFAULT_MONITOR_US	"50"
#define URT_DEFAULT_HOG_US	"1000"
#define US(x) ((int64_t)(x) * 1000)

/*
 * Which monitor backend runs. Weak, so that this file builds against a
 * liburt from before the monitor: the field then reads "off".
 */
const char *urt_monitor_backend(urt_rt *rt, char *why, size_t whylen) __attribute__((weak));

static const char *runtime_name = "urt";
static const char *monitor = "off";
static const char *cur_workload;
static unsigned int cur_workers;
static double scale = 1.0;
static int nsamples = 5;
static urt_rt *rt;

static void die(const char *what, int err)
{
	fprintf(stderr, "urt-bench: %s: %s: %s\n", cur_workload, what, urt_strerror(err));
	exit(1);
}

#define CHECK(call) do { int r_ = (call); if (r_ < 0) die(#call, r_); } while (0)

static size_t sized(size_t n)
{
	size_t v = (size_t)((double)n * scale);

	return v ? v : 1;
}

static void report(int sample, uint64_t ops, double value, const char *unit)
{
	if (sample < 0)
		return;		/* the warm-up iteration */
	printf("RESULT workload=%s runtime=%s workers=%u sample=%d ops=%llu value=%.2f unit=%s monitor=%s\n",
	       cur_workload, runtime_name, cur_workers, sample,
	       (unsigned long long)ops, value, unit, monitor);
	fflush(stdout);
}

/* Runs iterate(sample) for the warm-up (-1) and every sample. */
static void samples(void (*iterate)(int sample))
{
	for (int i = -1; i < nsamples; i++)
		iterate(i);
}

static void spin_for(int64_t ns)
{
	int64_t end = urt_now() + ns;

	while (urt_now() < end)
		__asm__ volatile("" ::: "memory");
}

static urt_task_t spawn_detached(urt_fiber_fn fn, void *arg)
{
	urt_task_t t = urt_spawn_opts(NULL, fn, arg, &(struct urt_spawn_opts){ .detached = true });

	if (!t.id)
		die("urt_spawn_opts", -errno);
	return t;
}

static urt_task_t spawn(urt_rt *r, urt_fiber_fn fn, void *arg)
{
	urt_task_t t = urt_spawn(r, fn, arg);

	if (!t.id)
		die("urt_spawn", -errno);
	return t;
}

/* ------------------------------------------------------- spawn_many_local */

/* A fiber spawns N fibers; the last to finish signals it (tokio's shape). */
static atomic_size_t rem;
static urt_chan *done;

static void *count_down(void *arg)
{
	if (atomic_fetch_sub_explicit(&rem, 1, memory_order_relaxed) == 1)
		CHECK(urt_chan_send(done, NULL));
	return NULL;
}

static void spawn_many_local_iter(int sample)
{
	size_t n = sized(10000);
	int64_t t0 = urt_now();

	atomic_store(&rem, n);
	for (size_t i = 0; i < n; i++)
		spawn_detached(count_down, NULL);
	CHECK(urt_chan_recv(done, NULL));
	report(sample, n, (double)(urt_now() - t0) / n, "ns/op");
}

static void spawn_many_local(void)
{
	done = urt_chan_create(0, 1);
	samples(spawn_many_local_iter);
	urt_chan_destroy(done);
}

/* The same with poll tasks: a task that finishes in its first poll. */
static enum urt_poll count_down_poll(void *state, urt_cx *cx, void **result)
{
	if (atomic_fetch_sub_explicit(&rem, 1, memory_order_relaxed) == 1)
		CHECK(urt_chan_try_send(done, NULL));
	*result = NULL;
	return URT_READY;
}

static void spawn_many_local_poll_iter(int sample)
{
	size_t n = sized(10000);
	int64_t t0 = urt_now();

	atomic_store(&rem, n);
	for (size_t i = 0; i < n; i++)
		if (!urt_spawn_poll(NULL, count_down_poll, NULL,
				    &(struct urt_spawn_opts){ .detached = true }).id)
			die("urt_spawn_poll", -errno);
	CHECK(urt_chan_recv(done, NULL));
	report(sample, n, (double)(urt_now() - t0) / n, "ns/op");
}

static void spawn_many_local_poll(void)
{
	done = urt_chan_create(0, 1);
	samples(spawn_many_local_poll_iter);
	urt_chan_destroy(done);
}

/* ------------------------------------------------ spawn_many_remote_{idle,busy} */

/*
 * A thread outside the runtime spawns N empty fibers, then waits for all
 * of them from inside the runtime (tokio: rt.block_on awaiting the handles).
 */
static void *empty(void *arg)
{
	return NULL;
}

static urt_task_t *handles;
static size_t nhandles;

static void *join_all(void *arg)
{
	for (size_t i = 0; i < nhandles; i++)
		CHECK(urt_join(handles[i], NULL));
	return NULL;
}

static void spawn_many_remote_iter(int sample)
{
	size_t n = sized(10000);
	int64_t t0 = urt_now();

	nhandles = n;
	for (size_t i = 0; i < n; i++)
		handles[i] = spawn(rt, empty, NULL);
	CHECK(urt_join(spawn(rt, join_all, NULL), NULL));
	report(sample, n, (double)(urt_now() - t0) / n, "ns/op");
}

static atomic_bool stop;

/* Keeps a worker busy: yields, then blocks the thread for 10 us. */
static void *busy(void *arg)
{
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		urt_yield();
		usleep(10);
	}
	return NULL;
}

static void spawn_many_remote(bool with_busy)
{
	unsigned int nbusy = with_busy ? 2 * cur_workers : 0;
	urt_task_t b[2 * cur_workers + 1];

	handles = calloc(sized(10000), sizeof(*handles));
	atomic_store(&stop, false);
	for (unsigned int i = 0; i < nbusy; i++)
		b[i] = spawn(rt, busy, NULL);
	samples(spawn_many_remote_iter);
	atomic_store(&stop, true);
	for (unsigned int i = 0; i < nbusy; i++)
		CHECK(urt_join(b[i], NULL));
	free(handles);
}

static void spawn_many_remote_idle(void) { spawn_many_remote(false); }
static void spawn_many_remote_busy(void) { spawn_many_remote(true); }

/* -------------------------------------------------------------- yield_many */

/* 200 fibers spawned from outside each yield 1000 times. */
#define YIELD_TASKS 200

static void *yielder(void *arg)
{
	size_t n = (size_t)(uintptr_t)arg;

	for (size_t i = 0; i < n; i++)
		CHECK(urt_yield());
	return NULL;
}

static void yield_many_iter(int sample)
{
	size_t n = sized(1000);
	urt_task_t t[YIELD_TASKS];
	int64_t t0 = urt_now();

	for (int i = 0; i < YIELD_TASKS; i++)
		t[i] = spawn(rt, yielder, (void *)(uintptr_t)n);
	for (int i = 0; i < YIELD_TASKS; i++)
		CHECK(urt_join(t[i], NULL));
	report(sample, n * YIELD_TASKS, (double)(urt_now() - t0) / (n * YIELD_TASKS), "ns/op");
}

static void yield_many(void)
{
	samples(yield_many_iter);
}

struct yield_state {
	size_t left;
};

static enum urt_poll yielder_poll(void *state, urt_cx *cx, void **result)
{
	struct yield_state *s = state;

	if (s->left-- == 0) {
		*result = NULL;
		return URT_READY;
	}
	urt_cx_yield(cx);
	return URT_PENDING;
}

static void yield_many_poll_iter(int sample)
{
	size_t n = sized(1000);
	struct yield_state st[YIELD_TASKS];
	urt_task_t t[YIELD_TASKS];
	int64_t t0 = urt_now();

	for (int i = 0; i < YIELD_TASKS; i++) {
		st[i].left = n;
		t[i] = urt_spawn_poll(rt, yielder_poll, &st[i], NULL);
		if (!t[i].id)
			die("urt_spawn_poll", -errno);
	}
	for (int i = 0; i < YIELD_TASKS; i++)
		CHECK(urt_join(t[i], NULL));
	report(sample, n * YIELD_TASKS, (double)(urt_now() - t0) / (n * YIELD_TASKS), "ns/op");
}

static void yield_many_poll(void)
{
	samples(yield_many_poll_iter);
}

/* --------------------------------------------------------------- ping_pong */

/*
 * tokio's ping_pong: 1000 times, a task spawns a partner and the two
 * exchange one message each way through a pair of oneshots.
 */
struct pair {
	urt_oneshot *ping, *pong;
};

static void *pong(void *arg)
{
	struct pair *p = arg;

	CHECK(urt_oneshot_recv(p->ping, NULL));
	CHECK(urt_oneshot_send(p->pong, NULL));
	return NULL;
}

static void *ping(void *arg)
{
	struct pair p = { urt_oneshot_create(), urt_oneshot_create() };

	spawn_detached(pong, &p);
	CHECK(urt_oneshot_send(p.ping, NULL));
	CHECK(urt_oneshot_recv(p.pong, NULL));
	/* pong's last touch of the pair was the send we just received. */
	urt_oneshot_destroy(p.ping);
	urt_oneshot_destroy(p.pong);
	if (atomic_fetch_sub_explicit(&rem, 1, memory_order_relaxed) == 1)
		CHECK(urt_chan_send(done, NULL));
	return NULL;
}

static void *ping_all(void *arg)
{
	size_t n = (size_t)(uintptr_t)arg;

	for (size_t i = 0; i < n; i++)
		spawn_detached(ping, NULL);
	return NULL;
}

static void ping_pong_iter(int sample)
{
	size_t n = sized(1000), reps = 10;
	int64_t t0 = urt_now();

	for (size_t r = 0; r < reps; r++) {
		atomic_store(&rem, n);
		spawn_detached(ping_all, (void *)(uintptr_t)n);
		CHECK(urt_chan_recv(done, NULL));
	}
	report(sample, n * reps, (double)(urt_now() - t0) / (n * reps), "ns/op");
}

static void ping_pong(void)
{
	done = urt_chan_create(0, 1);
	samples(ping_pong_iter);
	urt_chan_destroy(done);
}

/* ----------------------------------------------------------- chained_spawn */

/* Each fiber spawns the next; the 1000th signals. */
static void *chain(void *arg)
{
	size_t n = (size_t)(uintptr_t)arg;

	if (n == 0)
		CHECK(urt_chan_send(done, NULL));
	else
		spawn_detached(chain, (void *)(uintptr_t)(n - 1));
	return NULL;
}

static void chained_spawn_iter(int sample)
{
	size_t n = sized(1000), reps = 20;
	int64_t t0 = urt_now();

	for (size_t r = 0; r < reps; r++) {
		spawn_detached(chain, (void *)(uintptr_t)n);
		CHECK(urt_chan_recv(done, NULL));
	}
	report(sample, n * reps, (double)(urt_now() - t0) / (n * reps), "ns/op");
}

static void chained_spawn(void)
{
	done = urt_chan_create(0, 1);
	samples(chained_spawn_iter);
	urt_chan_destroy(done);
}

/* ----------------------------------------------------------- chan_pingpong */

/*
 * Two long-lived fibers bounce a counter through two channels of capacity
 * 1: the switch-heavy workload (also the monitor-cost probe).
 */
static urt_chan *ball_a, *ball_b;

static void *bouncer(void *arg)
{
	uint64_t v;

	while (urt_chan_recv(ball_a, &v) == 0)
		CHECK(urt_chan_send(ball_b, &v));
	return NULL;
}

static void chan_pingpong_iter(int sample)
{
	size_t n = sized(20000);
	int64_t t0 = urt_now();

	for (uint64_t i = 0; i < n; i++) {
		uint64_t v = i;

		CHECK(urt_chan_send(ball_a, &v));
		CHECK(urt_chan_recv(ball_b, &v));
	}
	report(sample, n, (double)(urt_now() - t0) / n, "ns/op");
}

static void chan_pingpong(void)
{
	urt_task_t t;

	ball_a = urt_chan_create(sizeof(uint64_t), 1);
	ball_b = urt_chan_create(sizeof(uint64_t), 1);
	t = spawn(NULL, bouncer, NULL);
	samples(chan_pingpong_iter);
	urt_chan_close(ball_a);
	CHECK(urt_join(t, NULL));
	urt_chan_destroy(ball_a);
	urt_chan_destroy(ball_b);
}

/* --------------------------------------------------------------- chan_mpmc */

/* 4 producers, 4 consumers, one channel of capacity 256. */
#define MPMC_SIDES 4

static urt_chan *mpmc;

static void *producer(void *arg)
{
	size_t n = (size_t)(uintptr_t)arg;

	for (uint64_t i = 0; i < n; i++)
		CHECK(urt_chan_send(mpmc, &i));
	return NULL;
}

static void *consumer(void *arg)
{
	uint64_t v, sum = 0;

	while (urt_chan_recv(mpmc, &v) == 0)
		sum += v;
	return (void *)(uintptr_t)sum;
}

static void chan_mpmc_iter(int sample)
{
	size_t per = sized(100000) / MPMC_SIDES;
	urt_task_t p[MPMC_SIDES], c[MPMC_SIDES];
	int64_t t0 = urt_now();

	mpmc = urt_chan_create(sizeof(uint64_t), 256);
	for (int i = 0; i < MPMC_SIDES; i++) {
		c[i] = spawn(NULL, consumer, NULL);
		p[i] = spawn(NULL, producer, (void *)(uintptr_t)per);
	}
	for (int i = 0; i < MPMC_SIDES; i++)
		CHECK(urt_join(p[i], NULL));
	urt_chan_close(mpmc);
	for (int i = 0; i < MPMC_SIDES; i++)
		CHECK(urt_join(c[i], NULL));
	report(sample, per * MPMC_SIDES, (double)(urt_now() - t0) / (per * MPMC_SIDES), "ns/op");
	urt_chan_destroy(mpmc);
}

static void chan_mpmc(void)
{
	samples(chan_mpmc_iter);
}

/* ------------------------------------------------------------------ timers */

/*
 * 10,000 fibers each sleep 5 times, for durations spread over [0, 1 ms)
 * (the same pseudo-random sequence in every runtime). ns per sleep.
 */
#define TIMER_SLEEPS 5

static uint32_t lcg(uint32_t *s)
{
	*s = *s * 1664525u + 1013904223u;
	return *s >> 8;
}

static void *sleeper(void *arg)
{
	uint32_t seed = (uint32_t)(uintptr_t)arg;

	for (int i = 0; i < TIMER_SLEEPS; i++)
		CHECK(urt_sleep(US(lcg(&seed) % 1000)));
	return NULL;
}

static void timers_iter(int sample)
{
	size_t n = sized(10000);
	urt_task_t *t = calloc(n, sizeof(*t));
	int64_t t0 = urt_now();

	for (size_t i = 0; i < n; i++)
		t[i] = spawn(NULL, sleeper, (void *)(uintptr_t)i);
	for (size_t i = 0; i < n; i++)
		CHECK(urt_join(t[i], NULL));
	report(sample, n * TIMER_SLEEPS, (double)(urt_now() - t0) / (n * TIMER_SLEEPS), "ns/op");
	free(t);
}

static void timers(void)
{
	samples(timers_iter);
}

/* The same with poll tasks (urt_cx_wake_at): the timers without stacks. */
struct sleeper_state {
	uint32_t seed;
	int left;
	int64_t deadline;
};

static enum urt_poll sleeper_poll(void *state, urt_cx *cx, void **result)
{
	struct sleeper_state *s = state;

	if (s->deadline && urt_now() < s->deadline)
		return URT_PENDING;	/* spurious poll: the wake-up is still armed */
	if (s->left-- == 0) {
		*result = NULL;
		return URT_READY;
	}
	s->deadline = urt_now() + US(lcg(&s->seed) % 1000);
	CHECK(urt_cx_wake_at(cx, s->deadline));
	return URT_PENDING;
}

static void timers_poll_iter(int sample)
{
	size_t n = sized(10000);
	urt_task_t *t = calloc(n, sizeof(*t));
	struct sleeper_state *st = calloc(n, sizeof(*st));
	int64_t t0 = urt_now();

	for (size_t i = 0; i < n; i++) {
		st[i] = (struct sleeper_state){ (uint32_t)i, TIMER_SLEEPS, 0 };
		t[i] = urt_spawn_poll(NULL, sleeper_poll, &st[i], NULL);
		if (!t[i].id)
			die("urt_spawn_poll", -errno);
	}
	for (size_t i = 0; i < n; i++)
		CHECK(urt_join(t[i], NULL));
	report(sample, n * TIMER_SLEEPS, (double)(urt_now() - t0) / (n * TIMER_SLEEPS), "ns/op");
	free(st);
	free(t);
}

static void timers_poll(void)
{
	samples(timers_poll_iter);
}

/* ---------------------------------------------------------------- tcp_echo */

/*
 * A server on 127.0.0.1 echoes; 100 client fibers each connect and do 50
 * round trips of 64 bytes. ns per round trip (all clients together).
 */
#define ECHO_MSG 64

static int listen_fd;

static int read_full(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = urt_read(fd, buf + got, len - got);

		if (r <= 0)
			return r < 0 ? (int)r : -ECONNRESET;
		got += (size_t)r;
	}
	return 0;
}

static void *echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[4096];
	ssize_t r;

	while ((r = urt_read(fd, buf, sizeof(buf))) > 0)
		if (urt_write(fd, buf, (size_t)r) != r)
			break;
	urt_close(fd);
	return NULL;
}

static void *echo_server(void *arg)
{
	for (;;) {
		int fd = urt_accept(listen_fd, NULL, NULL);

		if (fd == -ECANCELED)
			return NULL;
		if (fd < 0)
			die("urt_accept", fd);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
		spawn_detached(echo_conn, (void *)(intptr_t)fd);
	}
}

static struct sockaddr_in echo_addr;
static size_t echo_rounds;

static void *echo_client(void *arg)
{
	urt_wg *wg = arg;
	char out[ECHO_MSG], in[ECHO_MSG];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket", -errno);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	CHECK(urt_connect(fd, (struct sockaddr *)&echo_addr, sizeof(echo_addr)));
	memset(out, 'x', sizeof(out));
	for (size_t i = 0; i < echo_rounds; i++) {
		if (urt_write(fd, out, sizeof(out)) != sizeof(out))
			die("urt_write", -EIO);
		CHECK(read_full(fd, in, sizeof(in)));
	}
	urt_close(fd);
	urt_wg_done(wg);
	return NULL;
}

static void tcp_echo_iter(int sample)
{
	size_t conns = sized(100);
	urt_wg *wg = urt_wg_create();
	int64_t t0 = urt_now();

	echo_rounds = 50;
	urt_wg_add(wg, (int)conns);
	for (size_t i = 0; i < conns; i++)
		spawn_detached(echo_client, wg);
	CHECK(urt_wg_wait(wg));
	report(sample, conns * echo_rounds, (double)(urt_now() - t0) / (conns * echo_rounds), "ns/op");
	urt_wg_destroy(wg);
}

static void tcp_echo(void)
{
	socklen_t len = sizeof(echo_addr);
	urt_task_t srv;

	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	echo_addr = (struct sockaddr_in){ .sin_family = AF_INET,
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&echo_addr, sizeof(echo_addr)) ||
	    listen(listen_fd, 1024) || getsockname(listen_fd, (struct sockaddr *)&echo_addr, &len))
		die("listen", -errno);
	srv = spawn(NULL, echo_server, NULL);
	samples(tcp_echo_iter);
	urt_cancel(srv);
	urt_join(srv, NULL);
	urt_close(listen_fd);
}

/* -------------------------------------------------------------- starvation */

/*
 * One task blocks its worker's thread for 100 ms (in nanosleep, in a
 * blocking read() of a pipe, or spinning); 1 ms after it started, 100 short
 * tasks of 100 us of CPU each are spawned from outside. The value is the
 * time from that spawn to the last short task's end, in ms: 10 ms is the
 * ideal on one free worker, ~110 ms means the short tasks waited for the
 * blocked one. starve_none is the same without the block: the measured ideal.
 */
#define STARVE_BLOCK	MS(100)
#define STARVE_SHORT	100
#define STARVE_WORK	US(100)

enum block_kind { BLOCK_NONE, BLOCK_SLEEP, BLOCK_READ, BLOCK_SPIN };
static enum block_kind block_kind;
static atomic_llong blocker_started;
static int block_pipe[2];

static void *pipe_writer(void *arg)
{
	struct timespec ts = { 0, STARVE_BLOCK };

	nanosleep(&ts, NULL);
	if (write(block_pipe[1], "x", 1) != 1)
		die("write", -errno);
	return NULL;
}

static void *blocker(void *arg)
{
	struct timespec ts = { 0, STARVE_BLOCK };
	char c;

	atomic_store(&blocker_started, urt_now());
	switch (block_kind) {
	case BLOCK_NONE:
		break;
	case BLOCK_SLEEP:
		nanosleep(&ts, NULL);
		break;
	case BLOCK_READ:
		if (read(block_pipe[0], &c, 1) != 1)
			die("read", -errno);
		break;
	case BLOCK_SPIN:
		spin_for(STARVE_BLOCK);
		break;
	}
	return NULL;
}

static void *short_task(void *arg)
{
	spin_for(STARVE_WORK);
	return NULL;
}

static void starvation_iter(int sample)
{
	urt_task_t b, s[STARVE_SHORT];
	pthread_t writer;
	int64_t t0;

	atomic_store(&blocker_started, 0);
	if (block_kind == BLOCK_READ) {
		if (pipe(block_pipe))
			die("pipe", -errno);
		pthread_create(&writer, NULL, pipe_writer, NULL);
	}
	b = spawn(rt, blocker, NULL);
	while (!atomic_load(&blocker_started))
		usleep(50);
	t0 = atomic_load(&blocker_started) + MS(1);
	while (urt_now() < t0)
		usleep(50);
	for (int i = 0; i < STARVE_SHORT; i++)
		s[i] = spawn(rt, short_task, NULL);
	for (int i = 0; i < STARVE_SHORT; i++)
		CHECK(urt_join(s[i], NULL));
	report(sample, STARVE_SHORT, (double)(urt_now() - t0) / 1e6, "ms");
	CHECK(urt_join(b, NULL));
	if (block_kind == BLOCK_READ) {
		pthread_join(writer, NULL);
		close(block_pipe[0]);
		close(block_pipe[1]);
	}
}

static void starve_none(void) { block_kind = BLOCK_NONE; samples(starvation_iter); }
static void starve_sleep(void) { block_kind = BLOCK_SLEEP; samples(starvation_iter); }
static void starve_read(void) { block_kind = BLOCK_READ; samples(starvation_iter); }
static void starve_spin(void) { block_kind = BLOCK_SPIN; samples(starvation_iter); }

/* --------------------------------------------------------------- detection */

/*
 * Detection latency: how long the tasks queued behind a stuck worker wait
 * for the monitor. Each of the WORKERS slots runs a blocker task (they
 * meet at a spinning barrier first, so each holds its own worker). A
 * blocker spawns a probe task -- into its slot's LIFO slot, which no other
 * slot steals from, so only the slot's owner can run it -- takes a
 * timestamp and blocks: in read(2) of a pipe that the probe writes, in
 * nanosleep(DETECT_SLEEP), or spinning until the probe ran. The probe
 * takes its own timestamp first thing. Latency = probe start - block
 * start: the backend's detection, the monitor thread's wake-up, the
 * handoff and the spare's wake-up, all of it. DETECT_BLOCKS blocks per
 * slot per sample; each sample prints p50, p99 and max in us (stat=...),
 * and how many probes ran only after the block had ended by itself
 * (missed=: sleep only, the others wait for the probe).
 *
 * The main thread sleeps on a futex until the last probe of a round ran
 * (detect_ran), with no timer: it used to poll every 100 us, and each of
 * those wake-ups is a timer interrupt on some CPU right in the measured
 * window (~30 us on this VM, where it stops the poller or spare that is
 * taking the slot): sleep, 2 slots, p99 103-112 us that way vs 77-94 us
 * with the polls 2 ms apart.
 *
 * urt only; URT_MONITOR chooses the backend. With the monitor off nothing
 * moves the slot: read and spin would wait for the fallback below.
 */
#define DETECT_BLOCKS	200
#define DETECT_SLEEP	MS(3)
#define DETECT_MAX	MS(200)		/* read/spin: released by main after this */

struct detect_slot {
	int pipe[2];
	atomic_llong t_block;		/* the blocker's timestamp before blocking */
	atomic_llong t_run;		/* the probe's first timestamp */
	atomic_bool ended;		/* the block ended (sleep: by itself) */
};

static struct detect_slot *dslots;
static atomic_uint detect_ran;		/* probes that ran this round: a futex word */
static atomic_uint detect_arrived;
static unsigned int detect_n;

static void *detect_probe(void *arg)
{
	struct detect_slot *d = arg;

	atomic_store(&d->t_run, urt_now());
	if (block_kind == BLOCK_READ && write(d->pipe[1], "x", 1) != 1)
		die("write", -errno);
	if (atomic_fetch_add(&detect_ran, 1) + 1 == detect_n)
		syscall(SYS_futex, &detect_ran, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	return NULL;
}

static void *detect_blocker(void *arg)
{
	struct detect_slot *d = arg;
	int64_t until = urt_now() + MS(100);
	struct timespec ts = { 0, DETECT_SLEEP };
	urt_task_t p;
	char c;

	/* Spin until every blocker runs: each then holds a worker of its own. */
	atomic_fetch_add(&detect_arrived, 1);
	while (atomic_load(&detect_arrived) < detect_n && urt_now() < until)
		__asm__ volatile("pause" ::: "memory");
	p = urt_spawn_opts(NULL, detect_probe, d, &(struct urt_spawn_opts){ .detached = true });
	if (!p.id)
		die("urt_spawn_opts", -errno);
	atomic_store(&d->t_block, urt_now());
	switch (block_kind) {
	case BLOCK_READ:
		if (read(d->pipe[0], &c, 1) != 1)
			die("read", -errno);
		break;
	case BLOCK_SLEEP:
		nanosleep(&ts, NULL);
		break;
	default:
		while (!atomic_load_explicit(&d->t_run, memory_order_relaxed) &&
		       !atomic_load_explicit(&d->ended, memory_order_relaxed))
			__asm__ volatile("pause" ::: "memory");
		break;
	}
	atomic_store(&d->ended, true);
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static const char *detect_threshold(void)
{
	static char buf[32];
	const char *env = getenv(block_kind == BLOCK_SPIN ? "URT_HOG_THRESHOLD_US" :
				 "URT_MONITOR_THRESHOLD_US");

	/* The defaults of struct urt_config (include/urt.h). */
	snprintf(buf, sizeof(buf), "%s", env ? env :
		 block_kind == BLOCK_SPIN ? URT_DEFAULT_HOG_US : URT_DEFAULT_MONITOR_US);
	return buf;
}

static void detect_iter(int sample)
{
	size_t nblocks = sized(DETECT_BLOCKS), nlat = 0, missed = 0;
	int64_t *lat = calloc(nblocks * detect_n, sizeof(*lat));
	urt_task_t b[detect_n];

	for (size_t k = 0; k < nblocks; k++) {
		atomic_store(&detect_arrived, 0);
		atomic_store(&detect_ran, 0);
		for (unsigned int i = 0; i < detect_n; i++) {
			atomic_store(&dslots[i].t_block, 0);
			atomic_store(&dslots[i].t_run, 0);
			atomic_store(&dslots[i].ended, false);
			b[i] = spawn(rt, detect_blocker, &dslots[i]);
		}
		for (int64_t give_up = urt_now() + DETECT_MAX, now; ; ) {
			unsigned int ran = atomic_load(&detect_ran);
			struct timespec ts;

			now = urt_now();
			if (ran == detect_n || now >= give_up)
				break;
			ts.tv_sec = (give_up - now) / 1000000000;
			ts.tv_nsec = (give_up - now) % 1000000000;
			syscall(SYS_futex, &detect_ran, FUTEX_WAIT_PRIVATE, ran, &ts, NULL, 0);
		}
		for (unsigned int i = 0; i < detect_n; i++) {
			struct detect_slot *d = &dslots[i];

			/* Nothing moved the slot (monitor off?): end the block. */
			if (!atomic_load(&d->t_run)) {
				atomic_store(&d->ended, true);
				if (block_kind == BLOCK_READ && write(d->pipe[1], "x", 1) != 1)
					die("write", -errno);
			}
		}
		for (unsigned int i = 0; i < detect_n; i++) {
			struct detect_slot *d = &dslots[i];

			CHECK(urt_join(b[i], NULL));
			while (!atomic_load(&d->t_run))
				usleep(100);	/* the probe runs after the block at the latest */
			lat[nlat++] = atomic_load(&d->t_run) - atomic_load(&d->t_block);
			if (block_kind == BLOCK_SLEEP &&
			    lat[nlat - 1] >= DETECT_SLEEP)
				missed++;
		}
		usleep(200);	/* the stuck threads file themselves as spares */
	}
	qsort(lat, nlat, sizeof(*lat), cmp_i64);
	if (sample >= 0) {
		static const struct { const char *stat; double q; } stats[] = {
			{ "p50", 0.50 }, { "p99", 0.99 }, { "max", 1.0 },
		};

		for (size_t i = 0; i < sizeof(stats) / sizeof(stats[0]); i++) {
			size_t at = (size_t)(stats[i].q * (double)(nlat - 1) + 0.5);

			printf("RESULT workload=%s runtime=%s workers=%u sample=%d ops=%zu "
			       "value=%.2f unit=us monitor=%s stat=%s missed=%zu threshold_us=%s\n",
			       cur_workload, runtime_name, cur_workers, sample, nlat,
			       (double)lat[at] / 1e3, monitor, stats[i].stat, missed,
			       detect_threshold());
		}
		fflush(stdout);
	}
	free(lat);
}

static void detect(enum block_kind kind)
{
	block_kind = kind;
	detect_n = cur_workers;
	dslots = calloc(detect_n, sizeof(*dslots));
	for (unsigned int i = 0; i < detect_n; i++)
		if (pipe(dslots[i].pipe))
			die("pipe", -errno);
	samples(detect_iter);
	for (unsigned int i = 0; i < detect_n; i++) {
		close(dslots[i].pipe[0]);
		close(dslots[i].pipe[1]);
	}
	free(dslots);
}

static void detect_read(void) { detect(BLOCK_READ); }
static void detect_sleep(void) { detect(BLOCK_SLEEP); }
static void detect_spin(void) { detect(BLOCK_SPIN); }

/* ----------------------------------------------------------------- idle_mem */

/*
 * 1,000,000 tasks each wait on a channel that nobody sends to (one channel
 * per group of 1000 tasks). The value is the growth of the resident set
 * divided by the number of tasks (bytes per idle task), measured once they
 * all wait.
 *
 * Fibers: on kernels before 6.13 each stack is two mappings (guard page +
 * stack; newer ones get MADV_GUARD_INSTALL guards in one mapping), and the
 * kernel allows vm.max_map_count mappings per process (65530 by default),
 * so the fiber variant runs as many fibers as surely fit (reported as ops).
 */
#define IDLE_GROUP 1000

static long rss_bytes(void)
{
	long size, resident;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f || fscanf(f, "%ld %ld", &size, &resident) != 2)
		die("/proc/self/statm", -EIO);
	fclose(f);
	return resident * sysconf(_SC_PAGESIZE);
}

static size_t fibers_that_fit(size_t n)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	long max = 65530;

	if (f) {
		if (fscanf(f, "%ld", &max) != 1)
			max = 65530;
		fclose(f);
	}
	max = (max - 4096) / 2;		/* room for the process's own mappings */
	return n < (size_t)max ? n : (size_t)max;
}

static urt_chan **never;
static atomic_size_t waiting;

static void *idle_fiber(void *arg)
{
	uint8_t v;

	atomic_fetch_add_explicit(&waiting, 1, memory_order_relaxed);
	urt_chan_recv(arg, &v);		/* -EPIPE when closed at the end */
	return NULL;
}

static enum urt_poll idle_poll(void *state, urt_cx *cx, void **result)
{
	uint8_t v;
	int err;

	/* An idle task is polled once before it waits: count that poll. */
	atomic_fetch_add_explicit(&waiting, 1, memory_order_relaxed);
	if (urt_chan_poll_recv(state, cx, &v, &err) == URT_PENDING)
		return URT_PENDING;
	*result = NULL;
	return URT_READY;
}

static void idle_mem(bool poll)
{
	size_t n = sized(1000000), spawned = 0, ngroups;
	long before;
	int64_t t0;

	if (!poll)
		n = fibers_that_fit(n);
	ngroups = (n + IDLE_GROUP - 1) / IDLE_GROUP;
	never = calloc(ngroups, sizeof(*never));
	for (size_t i = 0; i < ngroups; i++)
		never[i] = urt_chan_create(1, 1);
	atomic_store(&waiting, 0);
	urt_sleep(MS(10));
	before = rss_bytes();
	t0 = urt_now();
	for (; spawned < n; spawned++) {
		urt_chan *ch = never[spawned / IDLE_GROUP];
		urt_task_t t;

		if (poll)
			t = urt_spawn_poll(NULL, idle_poll, ch,
					   &(struct urt_spawn_opts){ .detached = true });
		else
			t = urt_spawn_opts(NULL, idle_fiber, ch,
					   &(struct urt_spawn_opts){ .detached = true });
		if (!t.id) {
			fprintf(stderr, "urt-bench: %s: spawn %zu failed: %s\n",
				cur_workload, spawned, strerror(errno));
			break;
		}
		if (spawned % 1024 == 0)
			urt_yield();	/* let them start waiting as we go */
	}
	while (atomic_load(&waiting) < spawned) {
		if (urt_now() - t0 > MS(60000)) {
			fprintf(stderr, "urt-bench: %s: only %zu of %zu tasks reached their wait\n",
				cur_workload, atomic_load(&waiting), spawned);
			break;
		}
		urt_sleep(MS(1));
	}
	urt_sleep(MS(10));
	report(0, atomic_load(&waiting),
	       (double)(rss_bytes() - before) / (double)atomic_load(&waiting), "B/task");
	/* closing wakes them; the runtime's teardown waits for them */
	for (size_t i = 0; i < ngroups; i++)
		urt_chan_close(never[i]);
}

static void idle_mem_fiber(void) { idle_mem(false); }
static void idle_mem_poll(void) { idle_mem(true); }

/* ------------------------------------------------------------------- main */

struct workload {
	const char *name;
	void (*run)(void);
	bool outside;	/* runs on the main thread, outside the runtime */
};

static const struct workload workloads[] = {
	{ "spawn_many_local", spawn_many_local, false },
	{ "spawn_many_local_poll", spawn_many_local_poll, false },
	{ "spawn_many_remote_idle", spawn_many_remote_idle, true },
	{ "spawn_many_remote_busy", spawn_many_remote_busy, true },
	{ "yield_many", yield_many, true },
	{ "yield_many_poll", yield_many_poll, true },
	{ "ping_pong", ping_pong, false },
	{ "chained_spawn", chained_spawn, false },
	{ "chan_pingpong", chan_pingpong, false },
	{ "chan_mpmc", chan_mpmc, false },
	{ "timers", timers, false },
	{ "timers_poll", timers_poll, false },
	{ "tcp_echo", tcp_echo, false },
	{ "starve_none", starve_none, true },
	{ "starve_sleep", starve_sleep, true },
	{ "starve_read", starve_read, true },
	{ "starve_spin", starve_spin, true },
	{ "detect_read", detect_read, true },
	{ "detect_sleep", detect_sleep, true },
	{ "detect_spin", detect_spin, true },
	{ "idle_mem_fiber", idle_mem_fiber, false },
	{ "idle_mem_poll", idle_mem_poll, false },
};

static void *main_fiber(void *arg)
{
	((const struct workload *)arg)->run();
	return NULL;
}

int main(int argc, char **argv)
{
	const struct workload *w = NULL;
	struct urt_config cfg;
	char err[160];
	int r;

	if (argc != 5) {
		fprintf(stderr, "usage: %s WORKLOAD WORKERS SCALE SAMPLES\nworkloads:", argv[0]);
		for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++)
			fprintf(stderr, " %s", workloads[i].name);
		fputc('\n', stderr);
		return 2;
	}
	for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++)
		if (!strcmp(workloads[i].name, argv[1]))
			w = &workloads[i];
	if (!w) {
		fprintf(stderr, "urt-bench: unknown workload %s\n", argv[1]);
		return 2;
	}
	cur_workload = w->name;
	cur_workers = (unsigned int)atoi(argv[2]);
	scale = atof(argv[3]);
	nsamples = atoi(argv[4]);

	urt_config_init(&cfg);
	if (urt_config_from_env(&cfg, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	cfg.workers = cur_workers;
	r = urt_create(&rt, &cfg);
	if (r)
		die("urt_create", r);
	if (urt_monitor_backend)
		monitor = urt_monitor_backend(rt, err, sizeof(err));
	if (w->outside)
		w->run();
	else
		CHECK(urt_join(spawn(rt, main_fiber, (void *)w), NULL));
	if (getenv("URT_BENCH_STATS")) {
		/* The runtime's counters, for looking into a result. */
		struct urt_stats st;

		CHECK(urt_stats(rt, &st));
		fprintf(stderr, "stats: steps %llu steals %llu parks %llu handoffs %llu "
			"(blocks %llu, hogs %llu, by pollers %llu) unstacks %llu\n",
			(unsigned long long)st.polls, (unsigned long long)st.steals,
			(unsigned long long)st.parks, (unsigned long long)st.handoffs,
			(unsigned long long)st.blocks_seen, (unsigned long long)st.hogs,
			(unsigned long long)st.poll_handoffs, (unsigned long long)st.unstacks);
	}
	CHECK(urt_destroy(rt));
	return 0;
}
