#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# vm-bench: run urt's benchmarks that need urt.ko inside the vm-check VM
# (Debian's kernel under qemu), with URT_MONITOR=off, bpf and kmod, so that
# the kmod backend can be compared with the others where it can be loaded.
# A static urt-bench (make -C tools/bench static) runs in the guest; its
# RESULT lines come back over the second serial port. Prints them on
# stdout, each with the monitor that was asked for appended:
#
#   RESULT workload=W runtime=urt ... monitor=M asked=A
#
# and ends with one line "vm-bench: N runs, N failed, accel A, kernel K".
# tools/bench/run.py runs this (make bench; --no-vm skips it) and turns the
# lines into its "inside the VM" table. Never part of make check.
#
# Workloads: starve_none/sleep/read/spin and chan_pingpong (the monitor's
# cost) with off, bpf and kmod; detect_* (if this urt-bench has them) with
# bpf and kmod only (with the monitor off a block is never detected).
#
#   vm-bench.sh [--rounds N] [--samples N] [--workers "1 2"] [--only SUBSTR]
#
# Environment: as vm-check.sh (URT_VM_ACCEL, URT_CACHE); URT_VM_TIMEOUT is
# the limit for the boot that runs the benchmarks (default 300 s).
set -euo pipefail
# shellcheck source=selftests/vm/lib.sh
. "$(dirname "$0")/lib.sh"

rounds=3 samples=3 workers="1 2" only=
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) rounds=$2; shift 2 ;;
	--samples) samples=$2; shift 2 ;;
	--workers) workers=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	*) die "unknown argument $1 (see the top of $0)" ;;
	esac
done

# The workloads, with the scale they run at under TCG (an emulated CPU is
# 10-50x slower; the starvation ones are timed by the clock, not by work).
vm_bench_workloads() {
	echo "starve_none 1 off bpf kmod"
	echo "starve_sleep 1 off bpf kmod"
	echo "starve_read 1 off bpf kmod"
	echo "starve_spin 1 off bpf kmod"
	echo "chan_pingpong 0.25 off bpf kmod"
	local w
	# Usage lists the workloads this urt-bench has.
	for w in $("$1" 2>&1 | sed -n 's/^workloads://p'); do
		case $w in detect_*) echo "$w 0.25 bpf kmod" ;; esac
	done
}

# vm_bench_plan BIN: lines "MONITOR WORKLOAD WORKERS SCALE SAMPLES", rounds
# interleaved, the monitors' order rotating from round to round.
vm_bench_plan() {
	local r wl scale mons n k i
	for r in $(seq 0 $((rounds - 1))); do
		while read -r wl scale mons; do
			[ -z "$only" ] || [[ $wl == *"$only"* ]] || continue
			# shellcheck disable=SC2206 # a list of names
			mons=($mons)
			for n in $workers; do
				for i in $(seq 0 $((${#mons[@]} - 1))); do
					k=$(((i + r) % ${#mons[@]}))
					echo "${mons[$k]} $wl $n $scale $samples"
				done
			done
		done < <(vm_bench_workloads "$1")
	done
}

vm_bench_build() {
	log "building a static urt-bench (make -C tools/bench static)"
	make -s -C "$root" lib >&2 || die "make lib failed"
	make -s -C "$root/tools/bench" BUILD="$root/build" static >&2 ||
		die "static urt-bench build failed"
	bench_bin=$root/build/bench/urt-bench-static
	local ir=$bdir/bench-initramfs
	rm -rf "$ir"
	cp -a "$bdir/initramfs" "$ir"
	rm -rf "$ir/tests"
	mkdir -p "$ir/bench"
	cp "$bench_bin" "$ir/bench/urt-bench"
	vm_bench_plan "$bench_bin" >"$ir/bench/plan"
	[ -s "$ir/bench/plan" ] || die "nothing to run (--only '$only'?)"
	(cd "$ir" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) \
		>"$bdir/bench-initramfs.cpio"
	nruns=$(wc -l <"$ir/bench/plan")
}

vm_prepare
vm_bench_build
d=$bdir/bench
rm -rf "$d" && mkdir -p "$d"
log "booting ($accel_name): $nruns runs of urt-bench"
rc=0
t0=$(date +%s)
vm_boot "${URT_VM_TIMEOUT:-300}" 1G "$bdir/bench-initramfs.cpio" "$d" \
	"file:$d/results.log" "file:$d/dmesg.log" urt.mode=bench || rc=$?
log "VM done after $(($(date +%s) - t0)) s (qemu exit $rc; logs in $d)"

# "URT-VM run A W N" precedes each run's RESULT lines; "URT-VM exit ... RC" ends it.
asked='' fails=0 runs=0
while IFS= read -r line; do
	line=${line%$'\r'}
	case $line in
	'URT-VM run '*)
		# shellcheck disable=SC2086 # split into words
		set -- $line
		asked=$3 ;;
	'URT-VM exit '*)
		# shellcheck disable=SC2086 # split into words
		set -- $line
		runs=$((runs + 1))
		if [ "$6" != 0 ]; then
			fails=$((fails + 1))
			echo "# vm-bench: URT_MONITOR=$3 urt-bench $4 $5 exited $6"
		fi ;;
	RESULT\ *) echo "$line asked=$asked" ;;
	'URT-VM '*) echo "# vm: ${line#URT-VM }" ;;
	*) [ -z "$line" ] || echo "# $line" ;;
	esac
done <"$d/results.log"
ok=1
if [ "$rc" -ne 3 ]; then
	echo "# vm-bench: the VM did not finish (qemu exit $rc, see $d/console.log)"
	ok=0
fi
if [ "$runs" -ne "$nruns" ]; then
	echo "# vm-bench: $runs of $nruns runs reported"
	ok=0
fi
grep -q '^URT-VM insmod 0' "$d/results.log" || { echo "# vm-bench: insmod failed"; ok=0; }
# As vm-check: the kernel must stay well while the runtime uses urt.ko.
if grep -E 'BUG|WARNING|Oops|general protection|Call Trace|refcount_t|list_(add|del) corruption' \
		"$d/dmesg.log" "$d/console.log" >"$d/bad.log"; then
	echo "# vm-bench: kernel log has errors (see $d/bad.log): $(head -n 1 "$d/bad.log")"
	ok=0
fi
echo "vm-bench: $runs runs, $fails failed, accel $accel_name, kernel $kabi"
[ "$ok" = 1 ] && [ "$fails" -eq 0 ]
