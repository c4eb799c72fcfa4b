// SPDX-License-Identifier: MIT
/*
 * io_test.c - the reactor and the fiber I/O calls: pipes, loopback TCP,
 * timeouts, cancellation, urt_close, poll tasks, error cases.
 *
 * Fiber bodies cannot use ASSERT_* (they are not the test function): they
 * return 0 on success or the line of the first failed CHECK, which the
 * test asserts is 0. No test asserts an upper bound on time.
 */
#include "kselftest_harness.h"
#include "util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define CHECK(c) do {							\
	if (!(c)) {							\
		fprintf(stderr, "# %s:%d: CHECK(%s) failed\n",		\
			__FILE__, __LINE__, #c);			\
		return (void *)(intptr_t)__LINE__;			\
	}								\
} while (0)

#define CHECK_EQ(a, b) do {						\
	long long _a = (long long)(a), _b = (long long)(b);		\
	if (_a != _b) {							\
		fprintf(stderr, "# %s:%d: %s == %s failed: %lld != %lld\n", \
			__FILE__, __LINE__, #a, #b, _a, _b);		\
		return (void *)(intptr_t)__LINE__;			\
	}								\
} while (0)

/* Joins t and checks that its fiber returned 0 (its first failed CHECK otherwise). */
#define CHECK_JOIN(t) do {						\
	void *_r = (void *)1;						\
	CHECK_EQ(urt_join((t), &_r), 0);				\
	CHECK_EQ((intptr_t)_r, 0);					\
} while (0)

static inline unsigned char pattern(size_t i, unsigned int seed)
{
	return (unsigned char)(i * 31 + seed * 7 + (i >> 9));
}

/* Reads exactly len bytes (urt_read may return less). */
static ssize_t read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = urt_read(fd, (char *)buf + got, len - got);

		if (n <= 0)
			return n < 0 ? n : (ssize_t)got;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* ------------------------------------------------------------ pipes */

#define MSGS	500
#define MSGLEN	97

struct pipe_pair {
	int fd;
};

static void *pipe_writer(void *arg)
{
	struct pipe_pair *p = arg;
	unsigned char buf[MSGLEN];
	int i;
	size_t j;

	for (i = 0; i < MSGS; i++) {
		for (j = 0; j < MSGLEN; j++)
			buf[j] = pattern(j, (unsigned int)i);
		CHECK_EQ(urt_write(p->fd, buf, MSGLEN), MSGLEN);
		if (i % 50 == 0)
			urt_yield();
	}
	CHECK_EQ(urt_close(p->fd), 0);
	return NULL;
}

static void *pipe_between_fibers(void *arg)
{
	unsigned char buf[MSGLEN];
	struct pipe_pair w;
	urt_task_t t;
	int fds[2], i;
	size_t j;

	(void)arg;
	CHECK_EQ(pipe(fds), 0);		/* blocking: urt makes it non-blocking */
	w.fd = fds[1];
	t = urt_spawn(NULL, pipe_writer, &w);
	CHECK(t.id);
	for (i = 0; i < MSGS; i++) {
		CHECK_EQ(read_full(fds[0], buf, MSGLEN), MSGLEN);
		for (j = 0; j < MSGLEN; j++)
			CHECK_EQ(buf[j], pattern(j, (unsigned int)i));
	}
	CHECK_EQ(urt_read(fds[0], buf, 1), 0);	/* EOF */
	CHECK(fcntl(fds[0], F_GETFL) & O_NONBLOCK);
	CHECK_JOIN(t);
	CHECK_EQ(urt_close(fds[0]), 0);
	return NULL;
}

TEST(a_pipe_carries_bytes_between_fibers_on_one_worker)
{
	ASSERT_EQ(0, run_fiber(1, pipe_between_fibers, NULL));
}

TEST(a_pipe_carries_bytes_between_fibers_on_two_workers)
{
	ASSERT_EQ(0, run_fiber(2, pipe_between_fibers, NULL));
}

/* ------------------------------------------------------------ no blocking */

struct progress {
	int fds[2];
	atomic_int ticks;
	atomic_int reader_done;
	ssize_t got;
};

static void *progress_reader(void *arg)
{
	struct progress *p = arg;
	char c = 0;

	p->got = urt_read(p->fds[0], &c, 1);
	atomic_store(&p->reader_done, 1);
	CHECK_EQ(c, 'x');
	return NULL;
}

static void *progress_ticker(void *arg)
{
	struct progress *p = arg;
	int i;

	for (i = 0; i < 100; i++) {
		atomic_fetch_add(&p->ticks, 1);
		urt_yield();
	}
	return NULL;
}

static void *reader_does_not_block_worker(void *arg)
{
	struct progress p = { 0 };
	urt_task_t r, t;

	(void)arg;
	CHECK_EQ(pipe(p.fds), 0);
	r = urt_spawn(NULL, progress_reader, &p);
	CHECK(r.id);
	CHECK_EQ(urt_sleep(MS(5)), 0);		/* let the reader block */
	t = urt_spawn(NULL, progress_ticker, &p);
	CHECK(t.id);
	CHECK_JOIN(t);				/* the only worker ran the ticker */
	CHECK_EQ(atomic_load(&p.ticks), 100);
	CHECK_EQ(atomic_load(&p.reader_done), 0);
	CHECK_EQ(write(p.fds[1], "x", 1), 1);
	CHECK_JOIN(r);
	CHECK_EQ(p.got, 1);
	urt_close(p.fds[0]);
	urt_close(p.fds[1]);
	return NULL;
}

TEST(a_fiber_blocked_in_read_lets_other_fibers_run_on_its_worker)
{
	ASSERT_EQ(0, run_fiber(1, reader_does_not_block_worker, NULL));
}

/* ------------------------------------------------------------ timeouts */

static void *read_timeout(void *arg)
{
	int fds[2];
	char buf[8];
	int64_t t0;

	(void)arg;
	CHECK_EQ(pipe(fds), 0);
	t0 = urt_now();
	CHECK_EQ(urt_read_timeout(fds[0], buf, sizeof(buf), MS(20)), -ETIMEDOUT);
	CHECK(urt_now() - t0 >= MS(20));
	/* Zero: try once. */
	CHECK_EQ(urt_read_timeout(fds[0], buf, sizeof(buf), 0), -ETIMEDOUT);
	CHECK_EQ(write(fds[1], "ab", 2), 2);
	CHECK_EQ(urt_read_timeout(fds[0], buf, sizeof(buf), 0), 2);
	CHECK_EQ(write(fds[1], "c", 1), 1);
	CHECK_EQ(urt_read_timeout(fds[0], buf, sizeof(buf), MS(1000)), 1);
	urt_close(fds[0]);
	urt_close(fds[1]);
	return NULL;
}

TEST(a_read_with_a_timeout_returns_etimedout_when_nothing_comes)
{
	ASSERT_EQ(0, run_fiber(1, read_timeout, NULL));
}

static void *write_timeout(void *arg)
{
	static char big[1 << 16];
	int fds[2];
	ssize_t n;

	(void)arg;
	CHECK_EQ(pipe2(fds, O_NONBLOCK), 0);
	while (write(fds[1], big, sizeof(big)) > 0)	/* fill it */
		;
	while (write(fds[1], big, 1) > 0)
		;
	n = urt_write_timeout(fds[1], big, sizeof(big), MS(20));
	CHECK_EQ(n, -ETIMEDOUT);
	urt_close(fds[0]);
	urt_close(fds[1]);
	return NULL;
}

TEST(a_write_to_a_full_pipe_with_a_timeout_returns_etimedout)
{
	ASSERT_EQ(0, run_fiber(1, write_timeout, NULL));
}

/* ------------------------------------------------------------ cancel */

struct blocked {
	int fd;
	ssize_t ret;
	atomic_int entered;
};

static void *blocked_reader(void *arg)
{
	struct blocked *b = arg;
	char c;

	atomic_store(&b->entered, 1);
	b->ret = urt_read(b->fd, &c, 1);
	return NULL;
}

static void *cancel_blocked_read(void *arg)
{
	struct blocked b = { .ret = 12345 };
	int fds[2];
	urt_task_t t;

	(void)arg;
	CHECK_EQ(pipe(fds), 0);
	b.fd = fds[0];
	t = urt_spawn(NULL, blocked_reader, &b);
	CHECK(t.id);
	while (!atomic_load(&b.entered))
		urt_yield();
	urt_sleep(MS(5));
	CHECK_EQ(urt_cancel(t), 0);
	urt_join(t, NULL);		/* -ECANCELED or 0: the fiber saw it either way */
	CHECK_EQ(b.ret, -ECANCELED);
	/* The pipe is still fine for others. */
	CHECK_EQ(write(fds[1], "z", 1), 1);
	CHECK_EQ(urt_read(fds[0], &b.ret, 1), 1);
	urt_close(fds[0]);
	urt_close(fds[1]);
	return NULL;
}

TEST(cancelling_a_fiber_blocked_in_read_makes_read_return_ecanceled)
{
	ASSERT_EQ(0, run_fiber(2, cancel_blocked_read, NULL));
}

/* ------------------------------------------------------------ urt_close */

static void *close_wakes_reader(void *arg)
{
	struct blocked b = { .ret = 12345 };
	int fds[2];
	urt_task_t t;

	(void)arg;
	CHECK_EQ(pipe(fds), 0);
	b.fd = fds[0];
	t = urt_spawn(NULL, blocked_reader, &b);
	CHECK(t.id);
	while (!atomic_load(&b.entered))
		urt_yield();
	urt_sleep(MS(5));
	CHECK_EQ(urt_close(fds[0]), 0);
	CHECK_JOIN(t);
	CHECK_EQ(b.ret, -EBADF);
	CHECK_EQ(urt_close(fds[1]), 0);
	return NULL;
}

TEST(urt_close_wakes_a_blocked_reader_with_ebadf)
{
	ASSERT_EQ(0, run_fiber(2, close_wakes_reader, NULL));
}

static void *close_then_reuse(void *arg)
{
	int a[2], b[2], i;
	char c;

	(void)arg;
	for (i = 0; i < 20; i++) {
		CHECK_EQ(pipe(a), 0);
		CHECK_EQ(urt_write(a[1], "q", 1), 1);
		CHECK_EQ(urt_read(a[0], &c, 1), 1);
		CHECK_EQ(urt_read_timeout(a[0], &c, 1, 0), -ETIMEDOUT);
		CHECK_EQ(urt_close(a[0]), 0);
		CHECK_EQ(urt_close(a[1]), 0);
		/* Same numbers again, a new blocking pipe: must start clean. */
		CHECK_EQ(pipe(b), 0);
		CHECK_EQ(b[0], a[0]);
		CHECK(!(fcntl(b[0], F_GETFL) & O_NONBLOCK));
		CHECK_EQ(urt_read_timeout(b[0], &c, 1, MS(1)), -ETIMEDOUT);
		CHECK(fcntl(b[0], F_GETFL) & O_NONBLOCK);
		CHECK_EQ(urt_write(b[1], "r", 1), 1);
		CHECK_EQ(urt_read(b[0], &c, 1), 1);
		CHECK_EQ(c, 'r');
		CHECK_EQ(urt_close(b[0]), 0);
		CHECK_EQ(urt_close(b[1]), 0);
	}
	CHECK_EQ(urt_close(-1), -EBADF);
	return NULL;
}

TEST(an_fd_number_reused_after_urt_close_starts_clean)
{
	ASSERT_EQ(0, run_fiber(1, close_then_reuse, NULL));
}

/* ------------------------------------------------------------ big writes */

#define BIG (4u << 20)

struct big {
	int fd;
	unsigned char *buf;
};

static void *big_reader(void *arg)
{
	struct big *b = arg;
	size_t got = 0, i;
	ssize_t n;
	int k = 0;

	while (got < BIG) {
		n = urt_read(b->fd, b->buf + got, (++k % 3 ? 4096 : 100000));
		CHECK(n > 0);
		got += (size_t)n;
		if (k % 7 == 0)
			urt_yield();
	}
	for (i = 0; i < BIG; i++)
		CHECK_EQ(b->buf[i], pattern(i, 5));
	return NULL;
}

static void *big_write(void *arg)
{
	struct big rb;
	unsigned char *src;
	int fds[2];
	size_t i;
	urt_task_t t;

	(void)arg;
	src = malloc(BIG);
	rb.buf = malloc(BIG);
	CHECK(src && rb.buf);
	for (i = 0; i < BIG; i++)
		src[i] = pattern(i, 5);
	CHECK_EQ(pipe(fds), 0);
	rb.fd = fds[0];
	t = urt_spawn(NULL, big_reader, &rb);
	CHECK(t.id);
	/* One call, 64x the pipe's buffer: returns only once all is written. */
	CHECK_EQ(urt_write(fds[1], src, BIG), BIG);
	CHECK_JOIN(t);
	urt_close(fds[0]);
	urt_close(fds[1]);
	free(src);
	free(rb.buf);
	return NULL;
}

TEST(a_large_write_completes_as_the_reader_drains_on_one_worker)
{
	ASSERT_EQ(0, run_fiber(1, big_write, NULL));
}

TEST(a_large_write_completes_as_the_reader_drains_on_two_workers)
{
	ASSERT_EQ(0, run_fiber(2, big_write, NULL));
}

/* ------------------------------------------------------------ many waiters */

struct one_byte {
	int fd;
	atomic_int got;
};

static void *one_byte_reader(void *arg)
{
	struct one_byte *o = arg;
	char c;

	CHECK_EQ(urt_read(o->fd, &c, 1), 1);
	atomic_fetch_add(&o->got, 1);
	return NULL;
}

static void *many_readers(void *arg)
{
	struct one_byte o = { 0 };
	urt_task_t t[8];
	int fds[2], i;

	(void)arg;
	CHECK_EQ(pipe(fds), 0);
	o.fd = fds[0];
	for (i = 0; i < 8; i++) {
		t[i] = urt_spawn(NULL, one_byte_reader, &o);
		CHECK(t[i].id);
	}
	urt_sleep(MS(5));
	for (i = 0; i < 8; i++) {
		CHECK_EQ(urt_write(fds[1], "b", 1), 1);
		urt_sleep(MS(1));
	}
	for (i = 0; i < 8; i++)
		CHECK_JOIN(t[i]);
	CHECK_EQ(atomic_load(&o.got), 8);
	urt_close(fds[0]);
	urt_close(fds[1]);
	return NULL;
}

TEST(several_fibers_waiting_on_one_pipe_each_get_a_byte)
{
	ASSERT_EQ(0, run_fiber(2, many_readers, NULL));
}

/* ------------------------------------------------------------ both ways */

#define DUPLEX (1u << 20)

struct duplex {
	int fd;
	unsigned char *buf;
};

/* On one socket: one fiber blocked reading while another is blocked writing. */
static void *duplex_reader(void *arg)
{
	struct duplex *d = arg;
	char c;

	CHECK_EQ(urt_read(d->fd, &c, 1), 1);	/* comes after the big write */
	CHECK_EQ(c, '!');
	return NULL;
}

static void *duplex_writer(void *arg)
{
	struct duplex *d = arg;

	CHECK_EQ(urt_write(d->fd, d->buf, DUPLEX), DUPLEX);
	return NULL;
}

static void *duplex_peer(void *arg)
{
	struct duplex *d = arg;
	unsigned char buf[8192];
	size_t got = 0, j;
	ssize_t n;

	urt_sleep(MS(5));	/* let both sides of the other end block */
	while (got < DUPLEX) {
		n = urt_read(d->fd, buf, sizeof(buf));
		CHECK(n > 0);
		for (j = 0; j < (size_t)n; j++)
			CHECK_EQ(buf[j], pattern(got + j, 3));
		got += (size_t)n;
	}
	CHECK_EQ(urt_write(d->fd, "!", 1), 1);
	return NULL;
}

static void *both_directions(void *arg)
{
	struct duplex a, b;
	urt_task_t r, w, p;
	int sv[2];
	size_t i;

	(void)arg;
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	a.fd = sv[0];
	a.buf = malloc(DUPLEX);
	CHECK(a.buf);
	for (i = 0; i < DUPLEX; i++)
		a.buf[i] = pattern(i, 3);
	b.fd = sv[1];
	r = urt_spawn(NULL, duplex_reader, &a);
	w = urt_spawn(NULL, duplex_writer, &a);
	p = urt_spawn(NULL, duplex_peer, &b);
	CHECK(r.id && w.id && p.id);
	CHECK_JOIN(w);
	CHECK_JOIN(p);
	CHECK_JOIN(r);
	urt_close(sv[0]);
	urt_close(sv[1]);
	free(a.buf);
	return NULL;
}

TEST(a_reader_and_a_writer_blocked_on_one_socket_both_finish)
{
	ASSERT_EQ(0, run_fiber(2, both_directions, NULL));
}

TEST(a_reader_and_a_writer_blocked_on_one_socket_both_finish_on_one_worker)
{
	ASSERT_EQ(0, run_fiber(1, both_directions, NULL));
}

/* ------------------------------------------------------------ TCP */

#define CLIENTS	64
#define ROUNDS	100
#define TCPMSG	61

struct server {
	int lfd;
	struct sockaddr_in addr;
	int conns;
};

static int listen_loopback(struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) ||
	    listen(fd, 256) ||
	    getsockname(fd, (struct sockaddr *)addr, &len)) {
		close(fd);
		return -errno;
	}
	return fd;
}

static void *echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[512];
	ssize_t n;

	while ((n = urt_read(fd, buf, sizeof(buf))) > 0)
		CHECK_EQ(urt_write(fd, buf, (size_t)n), n);
	CHECK_EQ(n, 0);
	CHECK_EQ(urt_close(fd), 0);
	return NULL;
}

static void *echo_server(void *arg)
{
	struct server *s = arg;
	urt_task_t t[CLIENTS];
	struct sockaddr_in peer;
	socklen_t plen;
	int i, fd;

	for (i = 0; i < s->conns; i++) {
		plen = sizeof(peer);
		fd = urt_accept(s->lfd, (struct sockaddr *)&peer, &plen);
		CHECK(fd >= 0);
		CHECK_EQ(plen, sizeof(peer));
		CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
		t[i] = urt_spawn(NULL, echo_conn, (void *)(intptr_t)fd);
		CHECK(t[i].id);
	}
	for (i = 0; i < s->conns; i++)
		CHECK_JOIN(t[i]);
	return NULL;
}

struct client {
	struct sockaddr_in addr;
	unsigned int id;
};

static void *echo_client(void *arg)
{
	struct client *c = arg;
	unsigned char out[TCPMSG], in[TCPMSG];
	int fd, r;
	size_t j;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	CHECK_EQ(urt_connect(fd, (struct sockaddr *)&c->addr, sizeof(c->addr)), 0);
	for (r = 0; r < ROUNDS; r++) {
		for (j = 0; j < TCPMSG; j++)
			out[j] = pattern(j, c->id * 1000 + (unsigned int)r);
		CHECK_EQ(urt_send(fd, out, TCPMSG, MSG_NOSIGNAL), TCPMSG);
		CHECK_EQ(read_full(fd, in, TCPMSG), TCPMSG);
		CHECK(!memcmp(in, out, TCPMSG));
	}
	CHECK_EQ(urt_close(fd), 0);
	return NULL;
}

static void *tcp_echo(void *arg)
{
	struct server s = { .conns = CLIENTS };
	struct client c[CLIENTS];
	urt_task_t srv, t[CLIENTS];
	int i;

	(void)arg;
	s.lfd = listen_loopback(&s.addr);
	CHECK(s.lfd >= 0);
	srv = urt_spawn(NULL, echo_server, &s);
	CHECK(srv.id);
	for (i = 0; i < CLIENTS; i++) {
		c[i].addr = s.addr;
		c[i].id = (unsigned int)i;
		t[i] = urt_spawn(NULL, echo_client, &c[i]);
		CHECK(t[i].id);
	}
	for (i = 0; i < CLIENTS; i++)
		CHECK_JOIN(t[i]);
	CHECK_JOIN(srv);
	CHECK_EQ(urt_close(s.lfd), 0);
	return NULL;
}

TEST(a_tcp_echo_server_serves_many_loopback_clients)
{
	ASSERT_EQ(0, run_fiber(2, tcp_echo, NULL));
}

TEST(a_tcp_echo_server_serves_many_loopback_clients_on_one_worker)
{
	ASSERT_EQ(0, run_fiber(1, tcp_echo, NULL));
}

static void *late_sender(void *arg)
{
	int fd = *(int *)arg;

	CHECK_EQ(urt_send(fd, "hel", 3, 0), 3);
	urt_sleep(MS(5));
	CHECK_EQ(urt_send(fd, "lo", 2, 0), 2);
	return NULL;
}

static void *recv_waitall(void *arg)
{
	char buf[8] = { 0 };
	urt_task_t t;
	int sv[2];

	(void)arg;
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	t = urt_spawn(NULL, late_sender, &sv[1]);
	CHECK(t.id);
	CHECK_EQ(urt_recv(sv[0], buf, 5, MSG_WAITALL), 5);
	CHECK(!memcmp(buf, "hello", 5));
	CHECK_JOIN(t);
	CHECK_EQ(urt_recv(sv[0], buf, 5, MSG_DONTWAIT), -EAGAIN);
	CHECK_EQ(urt_close(sv[1]), 0);
	CHECK_EQ(urt_recv(sv[0], buf, 5, MSG_WAITALL), 0);	/* EOF ends it */
	CHECK_EQ(urt_close(sv[0]), 0);
	return NULL;
}

TEST(recv_with_msg_waitall_waits_for_everything_and_dontwait_never_waits)
{
	ASSERT_EQ(0, run_fiber(2, recv_waitall, NULL));
}

static void *connect_refused(void *arg)
{
	struct sockaddr_in addr = { 0 };
	socklen_t len = sizeof(addr);
	int bound, fd;

	(void)arg;
	/* A port bound but not listening: nobody else can take it meanwhile. */
	bound = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(bound >= 0);
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK_EQ(bind(bound, (struct sockaddr *)&addr, sizeof(addr)), 0);
	CHECK_EQ(getsockname(bound, (struct sockaddr *)&addr, &len), 0);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0);
	CHECK_EQ(urt_connect(fd, (struct sockaddr *)&addr, sizeof(addr)), -ECONNREFUSED);
	CHECK_EQ(urt_close(fd), 0);
	close(bound);
	return NULL;
}

TEST(connecting_to_a_closed_port_returns_econnrefused)
{
	ASSERT_EQ(0, run_fiber(1, connect_refused, NULL));
}

/* ------------------------------------------------------------ poll tasks */

struct pt_reader {
	int fd;
	size_t total;
	unsigned int polls;
	int arm_err;
};

static enum urt_poll pt_read(void *state, urt_cx *cx, void **result)
{
	struct pt_reader *p = state;
	unsigned char buf[300];
	ssize_t n;
	size_t j;

	p->polls++;
	for (;;) {
		n = read(p->fd, buf, sizeof(buf));
		if (n > 0) {
			for (j = 0; j < (size_t)n; j++)
				if (buf[j] != pattern(p->total + j, 9))
					goto bad;
			p->total += (size_t)n;
			continue;
		}
		if (n == 0) {
			*result = (void *)(uintptr_t)p->total;
			return URT_READY;
		}
		if (errno != EAGAIN)
			goto bad;
		p->arm_err = urt_cx_wake_on_fd(cx, p->fd, EPOLLIN);
		if (p->arm_err)
			goto bad;
		/* Arming twice (as a state machine that loops may) piles nothing. */
		p->arm_err = urt_cx_wake_on_fd(cx, p->fd, EPOLLIN);
		if (p->arm_err)
			goto bad;
		return URT_PENDING;
	}
bad:
	*result = NULL;
	return URT_READY;
}

#define PT_CHUNKS 200
#define PT_CHUNK  1000

static void *poll_task_reads_pipe(void *arg)
{
	struct pt_reader p = { 0 };
	unsigned char buf[PT_CHUNK];
	void *res = NULL;
	int fds[2], i;
	size_t off = 0, j;
	urt_task_t t;

	(void)arg;
	CHECK_EQ(pipe2(fds, O_NONBLOCK), 0);
	p.fd = fds[0];
	t = urt_spawn_poll(NULL, pt_read, &p, NULL);
	CHECK(t.id);
	for (i = 0; i < PT_CHUNKS; i++) {
		for (j = 0; j < PT_CHUNK; j++)
			buf[j] = pattern(off + j, 9);
		CHECK_EQ(urt_write(fds[1], buf, PT_CHUNK), PT_CHUNK);
		off += PT_CHUNK;
		if (i % 10 == 0)
			urt_sleep(MS(1));
		else
			urt_yield();
	}
	CHECK_EQ(urt_close(fds[1]), 0);
	CHECK_EQ(urt_join(t, &res), 0);
	CHECK_EQ(p.arm_err, 0);
	CHECK_EQ((uintptr_t)res, PT_CHUNKS * PT_CHUNK);
	CHECK(p.polls > 1);
	CHECK_EQ(urt_close(fds[0]), 0);
	return NULL;
}

TEST(a_poll_task_reads_a_pipe_woken_by_wake_on_fd)
{
	ASSERT_EQ(0, run_fiber(2, poll_task_reads_pipe, NULL));
}

TEST(a_poll_task_reads_a_pipe_woken_by_wake_on_fd_on_one_worker)
{
	ASSERT_EQ(0, run_fiber(1, poll_task_reads_pipe, NULL));
}

/* Waits on a quiet pipe until cancelled or the fd is closed under it. */
static enum urt_poll pt_quiet(void *state, urt_cx *cx, void **result)
{
	int *fd = state;
	char c;
	ssize_t n;
	int err;

	if (urt_cx_cancelled(cx)) {
		*result = (void *)(intptr_t)-ECANCELED;
		return URT_READY;
	}
	n = read(*fd, &c, 1);
	if (n < 0 && errno == EAGAIN) {
		err = urt_cx_wake_on_fd(cx, *fd, EPOLLIN);
		if (!err)
			return URT_PENDING;
		*result = (void *)(intptr_t)err;
		return URT_READY;
	}
	*result = (void *)(intptr_t)(n < 0 ? -errno : n);
	return URT_READY;
}

static void *poll_task_cancel_and_close(void *arg)
{
	int fds[2], a[2];
	void *res = NULL;
	urt_task_t t, u, v;

	(void)arg;
	CHECK_EQ(pipe2(fds, O_NONBLOCK), 0);
	CHECK_EQ(pipe2(a, O_NONBLOCK), 0);
	/* Cancelled while armed. */
	t = urt_spawn_poll(NULL, pt_quiet, &fds[0], NULL);
	CHECK(t.id);
	urt_sleep(MS(5));
	CHECK_EQ(urt_cancel(t), 0);
	urt_join(t, &res);
	/* urt_close under an armed poll task wakes it; its read sees EBADF. */
	u = urt_spawn_poll(NULL, pt_quiet, &fds[0], NULL);
	CHECK(u.id);
	urt_sleep(MS(5));
	CHECK_EQ(urt_close(fds[0]), 0);
	CHECK_EQ(urt_join(u, &res), 0);
	CHECK_EQ((intptr_t)res, -EBADF);
	CHECK_EQ(urt_close(fds[1]), 0);
	/* Left armed when the runtime goes away: urt_destroy copes. */
	v = urt_spawn_poll(NULL, pt_quiet, &a[0], NULL);
	CHECK(v.id);
	CHECK_EQ(urt_detach(v), 0);
	urt_sleep(MS(2));
	return NULL;
}

TEST(a_poll_task_armed_on_a_quiet_fd_is_cancelled_closed_or_destroyed_cleanly)
{
	ASSERT_EQ(0, run_fiber(2, poll_task_cancel_and_close, NULL));
}

/* A poll task calling a waiting fiber call gets -EPERM, not a blocked worker. */
static enum urt_poll pt_eperm(void *state, urt_cx *cx, void **result)
{
	int *fds = state;
	char c;

	*result = (void *)(intptr_t)urt_read(fds[0], &c, 1);
	return URT_READY;
}

static void *poll_task_eperm(void *arg)
{
	int fds[2];
	void *res = NULL;
	urt_task_t t;

	(void)arg;
	CHECK_EQ(pipe(fds), 0);
	t = urt_spawn_poll(NULL, pt_eperm, fds, NULL);
	CHECK(t.id);
	CHECK_EQ(urt_join(t, &res), 0);
	CHECK_EQ((intptr_t)res, -EPERM);
	urt_close(fds[0]);
	urt_close(fds[1]);
	return NULL;
}

TEST(waiting_calls_from_a_poll_task_return_eperm)
{
	ASSERT_EQ(0, run_fiber(1, poll_task_eperm, NULL));
}

/* ------------------------------------------------------------ urt_poll_fd */

static void *poll_fd(void *arg)
{
	int fds[2], r;
	char c;

	(void)arg;
	CHECK_EQ(pipe(fds), 0);
	CHECK_EQ(urt_poll_fd(fds[0], EPOLLIN, MS(20)), -ETIMEDOUT);
	CHECK_EQ(urt_poll_fd(fds[0], EPOLLIN, 0), -ETIMEDOUT);
	r = urt_poll_fd(fds[1], EPOLLOUT, 0);
	CHECK_EQ(r, EPOLLOUT);
	CHECK_EQ(write(fds[1], "p", 1), 1);
	r = urt_poll_fd(fds[0], EPOLLIN, MS(1000));
	CHECK_EQ(r, EPOLLIN);
	CHECK_EQ(urt_read(fds[0], &c, 1), 1);
	CHECK_EQ(urt_close(fds[1]), 0);
	r = urt_poll_fd(fds[0], EPOLLIN, URT_FOREVER);
	CHECK(r & EPOLLHUP);
	CHECK_EQ(urt_close(fds[0]), 0);
	return NULL;
}

TEST(poll_fd_reports_readiness_and_times_out)
{
	ASSERT_EQ(0, run_fiber(1, poll_fd, NULL));
}

struct late_writer {
	int fd;
};

static void *late_write(void *arg)
{
	struct late_writer *l = arg;

	urt_sleep(MS(10));
	CHECK_EQ(urt_write(l->fd, "L", 1), 1);
	return NULL;
}

static void *poll_fd_wakes(void *arg)
{
	struct late_writer l;
	int fds[2];
	urt_task_t t;

	(void)arg;
	CHECK_EQ(pipe(fds), 0);
	l.fd = fds[1];
	t = urt_spawn(NULL, late_write, &l);
	CHECK(t.id);
	CHECK_EQ(urt_poll_fd(fds[0], EPOLLIN, URT_FOREVER), EPOLLIN);
	CHECK_JOIN(t);
	urt_close(fds[0]);
	urt_close(fds[1]);
	return NULL;
}

TEST(poll_fd_wakes_when_another_fiber_writes)
{
	ASSERT_EQ(0, run_fiber(2, poll_fd_wakes, NULL));
}

/* ------------------------------------------------------------ errors */

TEST(waiting_calls_outside_a_fiber_return_eperm)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fds[2];
	char c;

	ASSERT_EQ(0, pipe(fds));
	EXPECT_EQ(-EPERM, urt_read(fds[0], &c, 1));
	EXPECT_EQ(-EPERM, urt_write(fds[1], &c, 1));
	EXPECT_EQ(-EPERM, urt_read_timeout(fds[0], &c, 1, 0));
	EXPECT_EQ(-EPERM, urt_write_timeout(fds[1], &c, 1, 0));
	EXPECT_EQ(-EPERM, urt_recv(fds[0], &c, 1, 0));
	EXPECT_EQ(-EPERM, urt_send(fds[1], &c, 1, 0));
	EXPECT_EQ(-EPERM, urt_accept(fds[0], NULL, NULL));
	EXPECT_EQ(-EPERM, urt_connect(fds[0], (struct sockaddr *)&a, sizeof(a)));
	EXPECT_EQ(-EPERM, urt_poll_fd(fds[0], EPOLLIN, 0));
	/* Nothing was changed behind the caller's back. */
	EXPECT_EQ(0, fcntl(fds[0], F_GETFL) & O_NONBLOCK);
	/* urt_close is not a waiting call. */
	EXPECT_EQ(0, urt_close(fds[0]));
	EXPECT_EQ(0, urt_close(fds[1]));
}

static void *bad_fds(void *arg)
{
	int fds[2], dead;
	char c;

	(void)arg;
	CHECK_EQ(urt_read(-1, &c, 1), -EBADF);
	CHECK_EQ(urt_write(-1, &c, 1), -EBADF);
	CHECK_EQ(urt_recv(-7, &c, 1, 0), -EBADF);
	CHECK_EQ(urt_send(-7, &c, 1, 0), -EBADF);
	CHECK_EQ(urt_accept(-1, NULL, NULL), -EBADF);
	CHECK_EQ(urt_poll_fd(-1, EPOLLIN, 0), -EBADF);
	CHECK_EQ(urt_close(-1), -EBADF);
	/* A number that is not open (in the table's middle and far out). */
	dead = dup(0);
	CHECK(dead >= 0);
	close(dead);
	CHECK_EQ(urt_read(dead, &c, 1), -EBADF);
	CHECK_EQ(urt_write(dead, &c, 1), -EBADF);
	CHECK_EQ(urt_poll_fd(dead, EPOLLIN, 0), -EBADF);
	CHECK_EQ(urt_read(100000, &c, 1), -EBADF);
	CHECK_EQ(urt_close(100000), -EBADF);
	/* NULL buffers: an error, never a crash. */
	CHECK_EQ(pipe(fds), 0);
	CHECK_EQ(urt_write(fds[1], NULL, 1), -EFAULT);
	CHECK_EQ(urt_read(fds[0], NULL, 1), -EFAULT);
	CHECK_EQ(urt_write(fds[1], NULL, 0), 0);
	CHECK_EQ(urt_write(fds[1], "n", 1), 1);
	CHECK_EQ(urt_read(fds[0], NULL, 0), 0);
	/* Socket calls on a pipe. */
	CHECK_EQ(urt_accept(fds[0], NULL, NULL), -ENOTSOCK);
	CHECK_EQ(urt_recv(fds[0], &c, 1, 0), -ENOTSOCK);
	urt_close(fds[0]);
	urt_close(fds[1]);
	return NULL;
}

TEST(bad_fds_and_buffers_return_errors)
{
	ASSERT_EQ(0, run_fiber(1, bad_fds, NULL));
}

static void *regular_file(void *arg)
{
	char path[] = "/tmp/urt-io-test-XXXXXX";
	char buf[16] = { 0 };
	int fd;

	(void)arg;
	fd = mkstemp(path);
	CHECK(fd >= 0);
	unlink(path);
	CHECK_EQ(urt_write(fd, "hello", 5), 5);
	CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
	CHECK_EQ(urt_read(fd, buf, sizeof(buf)), 5);
	CHECK(!memcmp(buf, "hello", 5));
	CHECK_EQ(urt_read(fd, buf, sizeof(buf)), 0);
	CHECK(urt_poll_fd(fd, EPOLLIN, 0) & EPOLLIN);
	CHECK_EQ(urt_close(fd), 0);
	return NULL;
}

TEST(regular_files_which_epoll_refuses_are_read_and_written_directly)
{
	ASSERT_EQ(0, run_fiber(1, regular_file, NULL));
}

TEST_HARNESS_MAIN
