# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Shared by vm-check.sh and vm-shell.sh (sourced, not run): resolve the
# Debian kernel, fetch its vmlinuz, build urt.ko and the selftests against
# the headers of that same kernel, build static copies of liburt's kmod
# tests (make vm-tests), pack an initramfs, and pick KVM or TCG.
#
# Environment:
#   URT_CACHE      cache root (default ${XDG_CACHE_HOME:-~/.cache}/urt)
#   URT_VM_ACCEL   auto (default), kvm or tcg
#   URT_VM_TIMEOUT seconds one boot may take (default 180)

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache=${URT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/urt}
bdir=$root/build/vm

log() { echo "vm: $*" >&2; }
die() { echo "vm: error: $*" >&2; exit 1; }

# "Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)" -> that package name.
vm_dep_of() {
	apt-cache show --no-all-versions "$1" 2>/dev/null |
		sed -n "s/^Depends: \($2-[0-9][^ ,]*\).*/\1/p" | head -n1
}

# Sets kabi (6.1.0-NN-amd64), kver (package version), kdir (headers).
# Both from Debian's metapackages as they are now, never pinned by hand,
# and required to agree: the module must be built for the kernel we boot.
vm_resolve() {
	local img hdr hver
	img=$(vm_dep_of linux-image-amd64 linux-image)
	hdr=$(vm_dep_of linux-headers-amd64 linux-headers)
	[ -n "$img" ] && [ -n "$hdr" ] ||
		die "cannot resolve linux-image-amd64/linux-headers-amd64 (apt-get update?)"
	kabi=${img#linux-image-}
	[ "${hdr#linux-headers-}" = "$kabi" ] ||
		die "linux-image-amd64 -> $img but linux-headers-amd64 -> $hdr"
	kver=$(apt-cache show --no-all-versions "$img" | sed -n 's/^Version: //p' | head -n1)
	kdir=/usr/src/linux-headers-$kabi
	if ! dpkg-query -W -f='${Status}' "linux-headers-$kabi" 2>/dev/null |
			grep -q 'install ok installed'; then
		[ "$(id -u)" -eq 0 ] ||
			die "missing headers: sudo apt-get install linux-headers-$kabi"
		log "installing linux-headers-$kabi"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends "linux-headers-$kabi" >&2
	fi
	hver=$(dpkg-query -W -f='${Version}' "linux-headers-$kabi")
	[ "$hver" = "$kver" ] ||
		log "note: headers $hver, image $kver (same ABI $kabi: compatible)"
	[ -d "$kdir" ] || die "$kdir missing"
}

# Sets vmlinuz. Downloads the image package once, keeps only vmlinuz.
vm_kernel() {
	local dir=$cache/kernel/${kabi}_$kver tmp
	vmlinuz=$dir/vmlinuz
	[ -f "$vmlinuz" ] && return 0
	log "fetching vmlinuz from linux-image-$kabi $kver"
	tmp=$(mktemp -d)
	# shellcheck disable=SC2064
	trap "rm -rf '$tmp'" EXIT
	(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root \
		"linux-image-$kabi=$kver" >&2) || die "apt-get download linux-image-$kabi failed"
	dpkg-deb --fsys-tarfile "$tmp"/linux-image-*.deb |
		tar -x -C "$tmp" "./boot/vmlinuz-$kabi"
	mkdir -p "$dir"
	mv "$tmp/boot/vmlinuz-$kabi" "$vmlinuz.tmp" && mv "$vmlinuz.tmp" "$vmlinuz"
	rm -rf "$tmp"
	trap - EXIT
}

# vm_add_lib_tests IR NAME...: liburt's VM test copies into IR/tests.
vm_add_lib_tests() {
	local ir=$1 t
	shift
	for t in "$@"; do
		cp "$root/build/vm-tests/$t" "$ir/tests/lib-$t" || die "no build/vm-tests/$t"
		echo "lib-$t" >>"$ir/tests/order"
	done
}

# vm_add_tools IR: the tools' test with urt.ko loaded (tools_kmod.sh) and
# static copies of what it runs (make vm-tools) into IR/tests; it runs
# before urt_rmmod (or last, if there is none).
vm_add_tools() {
	local ir=$1 t
	log "building static tools for the VM (make vm-tools)"
	make -s -C "$root" SAN= BUILD=build -j2 vm-tools >&2 || die "make vm-tools failed"
	mkdir -p "$ir/tests/tools"
	for t in urt-blocked urt-trace victim multirt json_check; do
		cp "$root/build/vm-tools/$t" "$ir/tests/tools/$t" || die "no build/vm-tools/$t"
	done
	cp "$root/selftests/vm/tools_kmod.sh" "$ir/tests/tools_kmod"
	chmod 755 "$ir/tests/tools_kmod"
	if grep -qx urt_rmmod "$ir/tests/order"; then
		sed -i '/^urt_rmmod$/i tools_kmod' "$ir/tests/order"
	else
		echo tools_kmod >>"$ir/tests/order"
	fi
}

# Builds urt.ko (with sparse: any warning fails), the tests, the initramfs.
vm_build() {
	local ksft out t libtests
	log "building urt.ko against $kdir (sparse on)"
	mkdir -p "$root/build/kmod"
	out=$root/build/kmod/build.log
	if ! make -s -C "$root/kmod" KDIR="$kdir" BUILD="$root/build/kmod" \
			C=2 >"$out" 2>&1; then
		cat "$out" >&2
		die "urt.ko build failed"
	fi
	if grep -E 'warning:|error:' "$out" >&2; then
		die "urt.ko: compiler or sparse warnings (above)"
	fi

	ksft=$("$root/scripts/fetch-kselftest.sh") || die "fetch-kselftest.sh failed"
	log "building selftests"
	make -s -C "$root/selftests/kmod" OUTPUT="$root/build/selftests/kmod" \
		KSFT_DIR="$ksft" -j2 >&2 || die "selftests build failed"
	# liburt's monitor and handoff tests, kmod variants only, static
	# (the top-level Makefile's vm-tests): they run here with urt.ko loaded.
	log "building liburt's kmod tests (make vm-tests)"
	make -s -C "$root" SAN= BUILD=build KSFT_DIR="$ksft" -j2 vm-tests >&2 ||
		die "liburt vm-tests build failed"

	local busybox ir=$bdir/initramfs
	busybox=$(command -v busybox) || die "busybox missing (busybox-static)"
	ldd "$busybox" >/dev/null 2>&1 && die "$busybox is not static (install busybox-static)"
	rm -rf "$ir"
	mkdir -p "$ir/bin" "$ir/tests"
	cp "$busybox" "$ir/bin/busybox"
	cp "$root/selftests/vm/init" "$ir/init"
	cp "$root/build/kmod/urt.ko" "$ir/urt.ko"
	# Run order (init reads tests/order): the module's tests, then liburt's
	# (lib-NAME), then urt_rmmod last, which unloads and reloads the module.
	libtests=$(make -s --no-print-directory -C "$root" print-vm-tests)
	[ -n "$libtests" ] || die "make print-vm-tests listed nothing"
	for t in $(make -s -C "$root/selftests/kmod" print-tests); do
		if [ "$t" = urt_rmmod ] && [ -n "$libtests" ]; then
			# shellcheck disable=SC2086 # a list of names
			vm_add_lib_tests "$ir" $libtests
			libtests=
		fi
		cp "$root/build/selftests/kmod/$t" "$ir/tests/$t"
		echo "$t" >>"$ir/tests/order"
	done
	# shellcheck disable=SC2086 # a list of names
	[ -z "$libtests" ] || vm_add_lib_tests "$ir" $libtests
	vm_add_tools "$ir"
	(cd "$ir" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) \
		>"$bdir/initramfs.cpio"
}

# Does KVM run this kernel? /dev/kvm can exist and still fail (nested
# virtualization without VMX: the guest hangs after real mode). Boot with
# earlyprintk and wait up to 5 s for the banner; TCG otherwise.
vm_kvm_works() {
	local plog=$bdir/kvm-probe.log pid i
	[ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] || return 1
	rm -f "$plog"
	qemu-system-x86_64 -accel kvm -cpu host -M pc -m 256 -nodefaults \
		-display none -no-reboot -monitor none -kernel "$vmlinuz" \
		-append "earlyprintk=ttyS0 console=ttyS0 panic=-1 rdinit=/nonexistent" \
		-serial "file:$plog" >/dev/null 2>&1 &
	pid=$!
	for i in $(seq 50); do
		sleep 0.1
		grep -q 'Linux version' "$plog" 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || break
	done
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	grep -q 'Linux version' "$plog" 2>/dev/null
}

# Sets accel (qemu options) and accel_name.
vm_accel() {
	case ${URT_VM_ACCEL:-auto} in
	kvm) accel_name=kvm ;;
	tcg) accel_name=tcg ;;
	auto) if vm_kvm_works; then accel_name=kvm; else accel_name=tcg; fi ;;
	*) die "URT_VM_ACCEL=${URT_VM_ACCEL}: expected auto, kvm or tcg" ;;
	esac
	if [ "$accel_name" = kvm ]; then
		accel=(-accel kvm -cpu host)
	else
		accel=(-accel tcg,thread=single -cpu max)
	fi
}

vm_prepare() {
	# build and bpf: liburt itself, for the tests of its kmod backend
	"$root/scripts/deps.sh" build bpf vm || die "scripts/deps.sh build bpf vm failed"
	mkdir -p "$bdir"
	vm_resolve
	vm_kernel
	vm_build
	vm_accel
	log "kernel $kabi ($kver), accel $accel_name"
}

# vm_boot TIMEOUT MEM INITRD DIR SERIAL2 SERIAL3 CMDLINE: one boot of the
# test VM, its console in DIR/console.log and qemu's own output in
# DIR/qemu.log; SERIAL2/SERIAL3 are qemu -serial targets (file:..., null).
# Returns qemu's exit status: 3 means the guest reached vm_exit (init).
vm_boot() {
	local rc=0
	timeout "$1" qemu-system-x86_64 "${accel[@]}" \
		-M pc -m "$2" -smp 2 -nodefaults -display none -no-reboot \
		-monitor none -kernel "$vmlinuz" -initrd "$3" \
		-append "console=ttyS0 panic=-1 loglevel=4 $7 ${URT_VM_APPEND:-}" \
		-serial "file:$4/console.log" -serial "$5" -serial "$6" \
		-device isa-debug-exit,iobase=0xf4,iosize=4 \
		>"$4/qemu.log" 2>&1 || rc=$?
	return "$rc"
}
