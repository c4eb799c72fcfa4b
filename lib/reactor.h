/* SPDX-License-Identifier: MIT */
/*
 * reactor.h - the per-fd readiness sources, between the reactor (reactor.c,
 * which owns them and the epoll fd) and the fiber I/O calls (io.c).
 */
#ifndef URT_REACTOR_H
#define URT_REACTOR_H

#include "internal.h"

struct io_src;
#define IO_R 1u		/* read side: EPOLLIN, EPOLLPRI, EPOLLRDHUP */
#define IO_W 2u		/* write side: EPOLLOUT */
int urt__io_get(struct urt_reactor *r, int fd, struct io_src **out,
		unsigned int *gen) URT_HIDDEN;
int urt__io_enter(struct io_src *s, unsigned int gen, uint64_t *snap) URT_HIDDEN;
void urt__io_exit(struct io_src *s) URT_HIDDEN;
int urt__io_wait(struct io_src *s, unsigned int gen, unsigned int dir,
		 uint64_t snap, int64_t deadline) URT_HIDDEN;
bool urt__io_pollable(struct io_src *s) URT_HIDDEN;
void urt__io_adopt(struct urt_reactor *r, int fd) URT_HIDDEN;
void urt__io_forget(int fd) URT_HIDDEN;
int urt__io_arm(struct urt_reactor *r, struct urt_task *t, int fd,
		uint32_t events) URT_HIDDEN;

#endif
