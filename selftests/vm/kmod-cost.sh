#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# kmod-cost: what urt.ko's context-switch notifiers (urt_sched_out,
# urt_sched_in) cost per call, in the vm-check VM, timed by the kernel's
# function_graph tracer around kmod_cost.c (a registered worker and a
# partner bouncing a byte through pipes on one CPU: one block per round
# trip), with no threshold and with 50 us, 1 ms and 10 s ones. With --base
# REV it also builds urt.ko from that git revision and measures both in the
# same boot, alternating, so the two can be compared. Prints the median and
# mean per call, in us, median over rounds.
#
#   kmod-cost.sh [--base REV] [--rounds N] [--trips N]
#
# Under TCG every instruction is emulated and function_graph adds its own
# cost to each call: compare modules and thresholds with each other, not
# with hardware. Environment: as vm-check.sh.
set -euo pipefail
# shellcheck source=selftests/vm/lib.sh
. "$(dirname "$0")/lib.sh"

base='' rounds=3 trips=3000 thresholds="0 50000 1000000 10000000000"
while [ $# -gt 0 ]; do
	case $1 in
	--base) base=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--trips) trips=$2; shift 2 ;;
	*) die "unknown argument $1 (see the top of $0)" ;;
	esac
done

vm_prepare
d=$bdir/cost
rm -rf "$d" && mkdir -p "$d"
ir=$d/initramfs
cp -a "$bdir/initramfs" "$ir"
rm -rf "$ir/tests" && mkdir -p "$ir/cost"
ksft=$("$root/scripts/fetch-kselftest.sh") || die "fetch-kselftest.sh failed"
"${CC:-cc}" -O2 -g -Wall -static -pthread -isystem "$ksft" -I"$root/include/uapi" \
	-I"$root/selftests/kmod" -o "$ir/cost/kmod_cost" "$root/selftests/vm/kmod_cost.c" ||
	die "kmod_cost build failed"
cp "$root/build/kmod/urt.ko" "$ir/cost/1-worktree.ko"
if [ -n "$base" ]; then
	log "building urt.ko from $base"
	mkdir -p "$d/base-src"
	git -C "$root" archive "$base" kmod include | tar -x -C "$d/base-src"
	make -s -C "$d/base-src/kmod" KDIR="$kdir" BUILD="$d/base-build" >&2 ||
		die "urt.ko from $base did not build"
	cp "$d/base-build/urt.ko" "$ir/cost/0-base.ko"
fi
echo "$rounds $trips $thresholds" >"$ir/cost/args"
(cd "$ir" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$d/initramfs.cpio"

log "booting ($accel_name)"
rc=0
vm_boot "${URT_VM_TIMEOUT:-400}" 1G "$d/initramfs.cpio" "$d" \
	"file:$d/out.log" null urt.mode=cost || rc=$?
[ "$rc" -eq 3 ] || die "the VM did not finish (qemu exit $rc, see $d/console.log)"
python3 - "$d/out.log" "${base:-}" <<'PY'
import statistics, sys
base = sys.argv[2]
cells, trips = {}, {}
for line in open(sys.argv[1], errors="replace"):
    w = line.split()
    if line.startswith("URT-VM cost ") and len(w) == 12:
        # URT-VM cost KO THR out N MED MEAN in N MED MEAN
        key = (int(w[3]), w[2])
        cells.setdefault(key, []).append(tuple(float(x) for x in (w[6], w[7], w[10], w[11])))
    elif line.startswith("threshold "):
        pass
    elif "insmod-failed" in line:
        print("kmod-cost: " + line.strip())
names = {"0-base.ko": "urt.ko " + base, "1-worktree.ko": "urt.ko (this tree)"}
print("urt.ko notifier cost per call, us (function_graph under qemu TCG; median "
      "of per-round medians / means)")
print("%-14s %-28s %17s %17s %10s" % ("threshold", "module", "sched_out med/mean",
                                     "sched_in med/mean", "out+in med"))
for (thr, ko), v in sorted(cells.items()):
    m = [statistics.median(x[i] for x in v) for i in range(4)]
    print("%-14s %-28s %8.2f /%7.2f %8.2f /%7.2f %10.2f" % (
        "none" if thr == 0 else "%g s" % (thr / 1e9) if thr >= 1e9 else
        "%g ms" % (thr / 1e6) if thr >= 1e6 else "%g us" % (thr / 1e3), names.get(ko, ko),
        m[0], m[1], m[2], m[3], m[0] + m[2]))
PY
