// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* urt-top.bpf.c - which worker threads are off the CPU, since when, in
 * which syscall: user space reads the "blocked" map at each refresh. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "urt_block.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline int on_block_end(void *ctx, __u32 tid, struct urt_blk_start *b, __u64 now)
{
	return 0;
}
