/* SPDX-License-Identifier: MIT */
/* Helpers for tests that check BPF programs come and go with their owner. */
#ifndef URT_SELFTEST_BPFPROGS_H
#define URT_SELFTEST_BPFPROGS_H

#include <bpf/bpf.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* IDs of the BPF programs this process holds an fd to (progs and links). */
static inline int held_prog_ids(uint32_t *ids, int max)
{
	DIR *d = opendir("/proc/self/fdinfo");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d)) && n < max) {
		char path[300], line[256];
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%s", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			unsigned int id;
			bool dup = false;

			if (sscanf(line, "prog_id: %u", &id) != 1)
				continue;
			for (int i = 0; i < n; i++)
				dup |= ids[i] == id;
			if (!dup && n < max)
				ids[n++] = id;
		}
		fclose(f);
	}
	closedir(d);
	return n;
}

/* Waits (2 s at most) until no program with these IDs exists. */
static inline int progs_gone(const uint32_t *ids, int n)
{
	for (int tries = 0; tries < 200; tries++) {
		int alive = 0;

		for (int i = 0; i < n; i++) {
			int fd = bpf_prog_get_fd_by_id(ids[i]);

			if (fd >= 0) {
				close(fd);
				alive++;
			}
		}
		if (!alive)
			return 1;
		nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	}
	return 0;
}

#endif
