#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages a make target needs.
#
#   scripts/deps.sh GROUP...     groups: build bpf vm bench
#
# As root it runs apt-get; otherwise it prints the exact apt-get line and
# fails, so nothing silently depends on a package installed by hand.
set -euo pipefail

pkgs_build="gcc make pkg-config libc6-dev"
pkgs_bpf="clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev systemtap-sdt-dev python3"
pkgs_vm="qemu-system-x86 busybox-static linux-headers-amd64 cpio kmod xz-utils sparse gcc make libc6-dev perl"
pkgs_bench="golang-go cargo librust-tokio-dev valgrind"

want=()
for g in "$@"; do
	v="pkgs_$g"
	[ -n "${!v+x}" ] || { echo "deps.sh: unknown group '$g' (build bpf vm bench)" >&2; exit 2; }
	for p in ${!v}; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || want+=("$p")
	done
done
[ ${#want[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "urt: missing Debian packages. Install them with:" >&2
	echo "  sudo apt-get install -y ${want[*]}" >&2
	exit 1
fi
echo "urt: installing ${want[*]}" >&2
# A fresh machine has no package lists yet; update at most once per hour.
stamp=/var/lib/apt/periodic/urt-update-stamp
if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +60)" ]; then
	apt-get update -q >&2
	mkdir -p "$(dirname "$stamp")" && touch "$stamp"
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${want[@]}" >&2
