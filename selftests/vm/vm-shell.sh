#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# vm-shell: boot the vm-check VM (same kernel, module, tests) with a shell
# on this terminal, urt.ko loaded. Useful commands inside:
#   /tests/urt_notify                  run one selftest program
#   cat /sys/kernel/debug/urt/stats    module counters
#   echo 1 > /sys/kernel/tracing/events/urt/enable; cat /sys/kernel/tracing/trace_pipe
# Leave with 'poweroff -f' (or Ctrl-a x). Extra kernel arguments: $URT_VM_APPEND,
# e.g. URT_VM_APPEND=slub_debug=FZPU.
set -euo pipefail
# shellcheck source=selftests/vm/lib.sh
. "$(dirname "$0")/lib.sh"

vm_prepare
exec qemu-system-x86_64 "${accel[@]}" \
	-M pc -m 512M -smp 2 -nodefaults -display none -no-reboot \
	-kernel "$vmlinuz" -initrd "$bdir/initramfs.cpio" \
	-append "console=ttyS0 panic=-1 urt.mode=shell ${URT_VM_APPEND:-}" \
	-serial mon:stdio -serial null -serial null \
	-device isa-debug-exit,iobase=0xf4,iosize=4
