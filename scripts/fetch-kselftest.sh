#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Prints a directory holding the kernel's kselftest.h and kselftest_harness.h.
#
# They ship only inside Debian's linux-source-X.Y tarball. We download that
# package once (apt-get download, no install), extract just the two headers
# into a cache outside the repository and reuse them: the project does not
# commit other projects' code. The source version follows the kernel that
# Debian's linux-image-amd64 points at now, never a hand-pinned number.
set -euo pipefail

cache=${URT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/urt}
out=$cache/kselftest
if [ -f "$out/kselftest_harness.h" ] && [ -f "$out/kselftest.h" ]; then
	echo "$out"
	exit 0
fi

# linux-image-amd64 depends on linux-image-6.1.0-NN-amd64: take "6.1".
dep=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$dep" ] || { echo "fetch-kselftest: cannot resolve linux-image-amd64 (run apt-get update)" >&2; exit 1; }
series=$(echo "$dep" | sed -E 's/^linux-image-([0-9]+\.[0-9]+).*/\1/')

tmp=$(mktemp -d)
chmod 755 "$tmp"	# apt-get download drops privileges to _apt
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -q "linux-source-$series" >&2) ||
	{ echo "fetch-kselftest: apt-get download linux-source-$series failed" >&2; exit 1; }
dpkg-deb --fsys-tarfile "$tmp"/linux-source-*.deb |
	tar -x -C "$tmp" --wildcards './usr/src/linux-source-*.tar.xz'
tarball=$(ls "$tmp"/usr/src/linux-source-*.tar.xz)
top=$(basename "$tarball" .tar.xz)
tar -xJf "$tarball" -C "$tmp" \
	"$top/tools/testing/selftests/kselftest.h" \
	"$top/tools/testing/selftests/kselftest_harness.h"
mkdir -p "$out.new"
cp "$tmp/$top/tools/testing/selftests/kselftest.h" \
   "$tmp/$top/tools/testing/selftests/kselftest_harness.h" "$out.new/"
rm -rf "$out" && mv "$out.new" "$out"
echo "$out"
