#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Prints a directory holding the kernel's kselftest.h and kselftest_harness.h.
#
#   scripts/fetch-kselftest.sh               the kselftest headers' directory
#   scripts/fetch-kselftest.sh --checkpatch  checkpatch.pl's directory (with
#                                            spelling.txt, const_structs.checkpatch:
#                                            kmod/checkpatch.sh uses it)
#
# These files ship only inside Debian's linux-source-X.Y tarball (139 MB).
# We download that package once (apt-get download, no install), extract just
# these files into a cache outside the repository, both sets from the same
# download, and reuse them: the project does not commit other projects' code.
# The source version follows the kernel that Debian's linux-image-amd64
# points at now, never a hand-pinned number.
set -euo pipefail

cache=${URT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/urt}
ksft=$cache/kselftest
cpdir=$cache/checkpatch
case ${1:-} in
'') want=$ksft ;;
--checkpatch) want=$cpdir ;;
*) echo "usage: $0 [--checkpatch]" >&2; exit 2 ;;
esac

ksft_files="kselftest.h kselftest_harness.h"
cp_files="checkpatch.pl spelling.txt const_structs.checkpatch"
have() {	# have DIR FILE...: all there
	local d=$1 f
	shift
	for f in "$@"; do [ -f "$d/$f" ] || return 1; done
}
# shellcheck disable=SC2086
if have "$ksft" $ksft_files && have "$cpdir" $cp_files; then
	echo "$want"
	exit 0
fi

# linux-image-amd64 depends on linux-image-6.1.0-NN-amd64: take "6.1".
dep=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$dep" ] || { echo "fetch-kselftest: cannot resolve linux-image-amd64 (run apt-get update)" >&2; exit 1; }
series=$(echo "$dep" | sed -E 's/^linux-image-([0-9]+\.[0-9]+).*/\1/')

tmp=$(mktemp -d)
chmod 755 "$tmp"	# apt-get download drops privileges to _apt
trap 'rm -rf "$tmp"' EXIT
echo "fetch-kselftest: downloading linux-source-$series (once; cached in $cache)" >&2
(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "linux-source-$series" >&2) ||
	{ echo "fetch-kselftest: apt-get download linux-source-$series failed" >&2; exit 1; }
dpkg-deb --fsys-tarfile "$tmp"/linux-source-*.deb |
	tar -x -C "$tmp" --wildcards './usr/src/linux-source-*.tar.xz'
rm -f "$tmp"/linux-source-*.deb
tarball=$(ls "$tmp"/usr/src/linux-source-*.tar.xz)
top=$(basename "$tarball" .tar.xz)
st=$top/tools/testing/selftests
tar -xJf "$tarball" -C "$tmp" "$st/kselftest.h" "$st/kselftest_harness.h" \
	"$top/scripts/checkpatch.pl" "$top/scripts/spelling.txt" \
	"$top/scripts/const_structs.checkpatch"

# install DIR SRCDIR FILE...: replace DIR whole (a new name, then a rename).
install_dir() {
	local d=$1 src=$2 f
	shift 2
	rm -rf "$d.new.$$" && mkdir -p "$d.new.$$"
	for f in "$@"; do cp "$src/$f" "$d.new.$$/"; done
	rm -rf "$d" && mv "$d.new.$$" "$d"
}
# shellcheck disable=SC2086
install_dir "$ksft" "$tmp/$st" $ksft_files
# shellcheck disable=SC2086
install_dir "$cpdir" "$tmp/$top/scripts" $cp_files
echo "$want"
