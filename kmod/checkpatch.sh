#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs the kernel's checkpatch.pl on the module sources.
#
#   kmod/checkpatch.sh [FILE...]     default: kmod/*.[ch] include/uapi/linux/urt.h
#
# checkpatch.pl ships only in the kernel source tree (Debian: linux-source-X.Y,
# not linux-kbuild). As scripts/fetch-kselftest.sh does for the kselftest
# headers, we apt-get download that package once and extract the three files
# checkpatch needs into a cache outside the repository.
set -euo pipefail

cache=${URT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/urt}
out=$cache/checkpatch
root=$(cd "$(dirname "$0")/.." && pwd)

if [ ! -f "$out/checkpatch.pl" ]; then
	dep=$(apt-cache depends linux-image-amd64 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	[ -n "$dep" ] || { echo "checkpatch: cannot resolve linux-image-amd64 (apt-get update?)" >&2; exit 1; }
	series=$(echo "$dep" | sed -E 's/^linux-image-([0-9]+\.[0-9]+).*/\1/')
	tmp=$(mktemp -d)
	chmod 755 "$tmp"	# apt-get download drops privileges to _apt
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && apt-get download -q "linux-source-$series" >&2)
	dpkg-deb --fsys-tarfile "$tmp"/linux-source-*.deb |
		tar -x -C "$tmp" --wildcards './usr/src/linux-source-*.tar.xz'
	tarball=$(ls "$tmp"/usr/src/linux-source-*.tar.xz)
	top=$(basename "$tarball" .tar.xz)
	tar -xJf "$tarball" -C "$tmp" "$top/scripts/checkpatch.pl" \
		"$top/scripts/spelling.txt" "$top/scripts/const_structs.checkpatch"
	mkdir -p "$out.new"
	cp "$tmp/$top/scripts/checkpatch.pl" "$tmp/$top/scripts/spelling.txt" \
	   "$tmp/$top/scripts/const_structs.checkpatch" "$out.new/"
	rm -rf "$out" && mv "$out.new" "$out"
fi

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
