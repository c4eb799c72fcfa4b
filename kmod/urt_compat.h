/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel API differences, so one source builds under dkms for the kernels a
 * user may run. The module is tested on Debian's 6.1 in CI; the branches
 * for newer kernels follow the upstream changes named below.
 */
#ifndef _URT_COMPAT_H
#define _URT_COMPAT_H

#include <linux/hrtimer.h>
#include <linux/mm.h>
#include <linux/version.h>

/* 6.3 made vm_flags read-only and added the helpers. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
static inline void vm_flags_clear(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags &= ~flags;
}
#endif

/* 6.13 added hrtimer_setup(); hrtimer_init() was later removed. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 13, 0)
static inline void hrtimer_setup(struct hrtimer *timer,
				 enum hrtimer_restart (*fn)(struct hrtimer *),
				 clockid_t clock_id, enum hrtimer_mode mode)
{
	hrtimer_init(timer, clock_id, mode);
	timer->function = fn;
}
#endif

#endif /* _URT_COMPAT_H */
