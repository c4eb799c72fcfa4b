/* SPDX-License-Identifier: MIT */
/*
 * io.c - fiber-friendly I/O calls on top of the reactor (reactor.c).
 *
 * Every call follows the same shape:
 *
 *   begin:  in a fiber? find (and on first use register) the fd's source,
 *           sample its generation
 *   loop:   enter (count the call in flight, snapshot the readiness
 *           sequence), system call, exit;
 *           success or a real error: return it;
 *           EAGAIN: wait until the sequence moves past the snapshot, retry
 *
 * When data is already there this is one system call and no lock; a wait
 * is one short lock (plus one more if it gives up). Semantics follow the
 * blocking system calls: a read returns what is there once something is;
 * a write (and a send without MSG_DONTWAIT, a recv with MSG_WAITALL)
 * returns only once everything was transferred (or EOF), or with the
 * partial count when an error, the timeout or a cancel stops it after some
 * bytes went through.
 */
#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "reactor.h"


#define CONNECT_RETRY_NS 1000000	/* AF_UNIX connect said EAGAIN: retry after */

struct io_call {
	struct urt_reactor *r;
	struct io_src *s;
	unsigned int gen;
};

static inline int io_begin(int fd, struct io_call *c)
{
	if (unlikely(!urt__in_fiber()))
		return -EPERM;
	if (unlikely(fd < 0))
		return -EBADF;
	c->r = urt__rt_reactor(urt__current_rt());
	return urt__io_get(c->r, fd, &c->s, &c->gen);
}

enum io_op { OP_READ, OP_WRITE, OP_RECV, OP_SEND, OP_ACCEPT };

struct io_args {
	enum io_op op;
	int fd;
	int flags;
	void *buf;
	size_t len;
	struct sockaddr *addr;
	socklen_t *alen;
};

static inline ssize_t io_sys(const struct io_args *a, size_t done)
{
	char *p = (char *)a->buf + done;
	size_t n = a->len - done;

	switch (a->op) {
	case OP_READ:
		return read(a->fd, p, n);
	case OP_WRITE:
		return write(a->fd, p, n);
	case OP_RECV:
		return recv(a->fd, p, n, a->flags);
	case OP_SEND:
		return send(a->fd, p, n, a->flags);
	case OP_ACCEPT:
		return accept4(a->fd, a->addr, a->alen, SOCK_NONBLOCK);
	}
	return -1;
}

static ssize_t io_do(const struct io_args *a, int64_t deadline)
{
	bool out = a->op == OP_WRITE || a->op == OP_SEND;
	/* Blocking semantics: writes (and MSG_WAITALL receives) do it all. */
	bool whole = out ? !(a->flags & MSG_DONTWAIT) :
		     a->op == OP_RECV && (a->flags & MSG_WAITALL) &&
		     !(a->flags & MSG_DONTWAIT);
	unsigned int dir = out ? IO_W : IO_R;
	struct io_call c;
	uint64_t snap;
	size_t done = 0;
	ssize_t n;
	int err, e;

	if (unlikely(!a->buf && a->len))
		return -EFAULT;
	err = io_begin(a->fd, &c);
	if (unlikely(err))
		return err;
	for (;;) {
		err = urt__io_enter(c.s, c.gen, &snap);
		if (unlikely(err))
			return done ? (ssize_t)done : err;
		n = io_sys(a, done);
		e = errno;
		urt__io_exit(c.s);
		if (n >= 0) {
			if (!whole)
				return n;
			done += (size_t)n;
			if (done >= a->len || !n || !urt__io_pollable(c.s))
				return (ssize_t)done;
			continue;	/* partial: most likely EAGAIN next */
		}
		if (e == EINTR || (a->op == OP_ACCEPT && e == ECONNABORTED))
			continue;
		if (e != EAGAIN || (a->flags & MSG_DONTWAIT))
			return done ? (ssize_t)done : -e;
		err = urt__io_wait(c.s, c.gen, dir, snap, deadline);
		if (err)
			return done ? (ssize_t)done : err;
	}
}

ssize_t urt_read_timeout(int fd, void *buf, size_t len, int64_t timeout_ns)
{
	struct io_args a = { .op = OP_READ, .fd = fd, .buf = buf, .len = len };

	return io_do(&a, urt__deadline(timeout_ns));
}

ssize_t urt_write_timeout(int fd, const void *buf, size_t len, int64_t timeout_ns)
{
	struct io_args a = { .op = OP_WRITE, .fd = fd, .buf = (void *)buf, .len = len };

	return io_do(&a, urt__deadline(timeout_ns));
}

ssize_t urt_read(int fd, void *buf, size_t len)
{
	struct io_args a = { .op = OP_READ, .fd = fd, .buf = buf, .len = len };

	return io_do(&a, URT_FOREVER);
}

ssize_t urt_write(int fd, const void *buf, size_t len)
{
	struct io_args a = { .op = OP_WRITE, .fd = fd, .buf = (void *)buf, .len = len };

	return io_do(&a, URT_FOREVER);
}

ssize_t urt_recv(int fd, void *buf, size_t len, int flags)
{
	struct io_args a = { .op = OP_RECV, .fd = fd, .buf = buf, .len = len,
			     .flags = flags };

	return io_do(&a, URT_FOREVER);
}

ssize_t urt_send(int fd, const void *buf, size_t len, int flags)
{
	struct io_args a = { .op = OP_SEND, .fd = fd, .buf = (void *)buf, .len = len,
			     .flags = flags };

	return io_do(&a, URT_FOREVER);
}

/* The accepted fd is non-blocking and already registered. */
int urt_accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
	struct io_args a = { .op = OP_ACCEPT, .fd = fd, .addr = addr, .alen = addrlen };
	ssize_t nfd;

	if (addr && !addrlen)
		return -EFAULT;
	nfd = io_do(&a, URT_FOREVER);
	if (nfd >= 0)
		urt__io_adopt(urt__rt_reactor(urt__current_rt()), (int)nfd);
	return (int)nfd;
}

/*
 * Non-blocking connect, then wait for writability and read SO_ERROR. A
 * wake-up alone proves nothing (the registration edge of a fresh socket
 * reports EPOLLOUT|EPOLLHUP), so completion is checked with a zero-timeout
 * poll(): a TCP socket in SYN_SENT reports nothing.
 */
int urt_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
	struct io_call c;
	uint64_t snap;
	int err, e, r;

	if (!addr && addrlen)
		return -EFAULT;
	err = io_begin(fd, &c);
	if (err)
		return err;
	for (;;) {
		err = urt__io_enter(c.s, c.gen, &snap);
		if (err)
			return err;
		r = connect(fd, addr, addrlen);
		e = errno;
		urt__io_exit(c.s);
		if (!r)
			return 0;
		if (e == EINPROGRESS || e == EINTR)
			break;	/* EINTR: the connection goes on asynchronously */
		if (e != EAGAIN)
			return -e;
		/* AF_UNIX, listener's backlog full: no edge on our socket tells. */
		err = urt__park(urt_now() + CONNECT_RETRY_NS);
		if (err == -ECANCELED)
			return err;
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		err = urt__io_wait(c.s, c.gen, IO_W, snap, URT_FOREVER);
		if (err)
			return err;
		err = urt__io_enter(c.s, c.gen, &snap);
		if (err)
			return err;
		r = poll(&p, 1, 0);
		e = errno;
		if (r > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			soerr = errno;
		urt__io_exit(c.s);
		if (r > 0)
			return -soerr;
		if (r < 0 && e != EINTR)
			return -e;
	}
}

/*
 * Readiness is exact, not remembered: a zero-timeout poll() answers, and
 * the reactor only says when asking again is worth it.
 */
int urt_poll_fd(int fd, uint32_t events, int64_t timeout_ns)
{
	int64_t deadline = urt__deadline(timeout_ns);
	unsigned int dir = 0;
	struct io_call c;
	uint64_t snap;
	int err, r, e;

	if (events & (EPOLLIN | EPOLLPRI | EPOLLRDHUP))
		dir |= IO_R;
	if (events & EPOLLOUT)
		dir |= IO_W;
	if (!dir)
		dir = IO_R | IO_W;	/* only EPOLLERR/EPOLLHUP: either edge */
	err = io_begin(fd, &c);
	if (err)
		return err;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = (short)events };

		err = urt__io_enter(c.s, c.gen, &snap);
		if (err)
			return err;
		r = poll(&p, 1, 0);
		e = errno;
		urt__io_exit(c.s);
		if (r > 0)
			return (p.revents & POLLNVAL) ? -EBADF : (int)(uint16_t)p.revents;
		if (r < 0 && e != EINTR)
			return -e;
		err = urt__io_wait(c.s, c.gen, dir, snap, deadline);
		if (err)
			return err;
	}
}

/*
 * Not a waiting call: works from any thread. Waiters on fd (in any
 * runtime) get -EBADF; the fd leaves every epoll set before it is closed.
 */
int urt_close(int fd)
{
	if (fd < 0)
		return -EBADF;
	urt__io_forget(fd);
	if (close(fd) < 0 && errno != EINTR)	/* EINTR: Linux closed it anyway */
		return -errno;
	return 0;
}

int urt_cx_wake_on_fd(urt_cx *cx, int fd, uint32_t events)
{
	struct urt_task *t;

	if (!cx)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	t = urt__cx_task(cx);
	return urt__io_arm(urt__rt_reactor(t->rt), t, fd, events);
}
