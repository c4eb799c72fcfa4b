#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs the kernel's checkpatch.pl on the module sources.
#
#   kmod/checkpatch.sh [FILE...]     default: kmod/*.[ch] include/uapi/linux/urt.h
#
# checkpatch.pl ships only in the kernel source tree (Debian: linux-source-X.Y,
# not linux-kbuild). scripts/fetch-kselftest.sh downloads that package once
# and caches both the kselftest headers and the three files checkpatch needs
# (checkpatch.pl, spelling.txt, const_structs.checkpatch), outside the
# repository: one download serves both.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=$("$root/scripts/fetch-kselftest.sh" --checkpatch) ||
	{ echo "checkpatch: scripts/fetch-kselftest.sh --checkpatch failed" >&2; exit 1; }

cd "$root"
cp="perl $out/checkpatch.pl --no-tree --show-types --ignore FILE_PATH_CHANGES -f"
rc=0
if [ $# -gt 0 ]; then
	$cp --strict "$@" || rc=1
	exit $rc
fi
# --no-tree: not inside a kernel tree; spelling.txt and const_structs are
# found next to the script. Exceptions, each for a reason:
#  - urt_compat.h exists to test LINUX_VERSION_CODE (dkms builds for
#    several kernels); the rule is meant for code merged upstream.
#  - urt_trace.h is a TRACE_EVENT header: its layout is the one the kernel's
#    include/trace/events/ use, which --strict's alignment checks dislike.
$cp --strict kmod/urt.c include/uapi/linux/urt.h || rc=1
$cp --strict --ignore LINUX_VERSION_CODE,CONSTANT_COMPARISON kmod/urt_compat.h || rc=1
$cp kmod/urt_trace.h || rc=1
exit $rc
