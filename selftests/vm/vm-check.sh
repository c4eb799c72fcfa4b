#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# vm-check: run the urt.ko selftests, and liburt's tests of its kmod monitor
# backend (monitor_test, handoff_test: make vm-tests), in a qemu VM that
# boots Debian's own kernel (the one linux-image-amd64 points at), twice:
# once plain, once with slub_debug=FZPU. Prints the TAP of both runs and ends
# with exactly one line
#
#   vm-check: N passed, N failed, N skipped
#
# (test cases over both runs). Exits non-zero if a test failed, the module
# did not load or unload, the kernel log has a BUG/WARNING/Oops-like line,
# the VM did not finish, checkpatch or sparse complained, or, when $CI is
# set, a test was skipped.
#
# Run from anywhere; installs what it needs (scripts/deps.sh, as root).
# Environment: URT_VM_ACCEL=auto|kvm|tcg, URT_VM_TIMEOUT (s per boot),
# URT_VM_APPEND (extra kernel arguments), URT_VM_VERBOSE=1 (print dmesg),
# URT_CACHE (download cache).
set -euo pipefail
# shellcheck source=selftests/vm/lib.sh
. "$(dirname "$0")/lib.sh"

# Whatever stops us early, the last line is still the summary.
die() {
	echo "vm: error: $*" >&2
	echo "# vm-check: FAIL: $*"
	echo "vm-check: 0 passed, 1 failed, 0 skipped"
	exit 1
}

t_start=$(date +%s.%N)
vm_prepare

pass=0 fail=0 skip=0
problems=()

# Kernel style is part of the check: checkpatch.pl --strict must be clean
# (kmod/checkpatch.sh caches checkpatch.pl from Debian's linux-source).
if ! "$root/kmod/checkpatch.sh" >"$root/build/kmod/checkpatch.log" 2>&1; then
	problems+=("checkpatch: not clean, see build/kmod/checkpatch.log:")
	while IFS= read -r line; do problems+=("  $line"); done < <(
		grep -E '^(ERROR|WARNING|CHECK):|^#[0-9]+: FILE:' \
			"$root/build/kmod/checkpatch.log" | head -n 20)
fi

# Lines that mean the kernel is not well, whoever caused it.
bad_re='BUG|WARNING|Oops|general protection|Poison|Call Trace|KASAN|UBSAN|kernel panic|Kernel panic|list_add corruption|list_del corruption|refcount_t|hung_task|blocked for more than|rcu.*stall|lockdep|possible recursive locking|circular locking|sleeping function called'

# run NAME EXTRA_CMDLINE
run() {
	local name=$1 extra=$2 d=$bdir/$1 rc=0 t0 t1 line prog plan seen
	rm -rf "$d" && mkdir -p "$d"
	echo "# vm-check: run '$name' ($accel_name${extra:+, $extra})"
	t0=$(date +%s.%N)
	vm_boot "${URT_VM_TIMEOUT:-180}" 512M "$bdir/initramfs.cpio" "$d" \
		"file:$d/tap.log" "file:$d/dmesg.log" "urt.mode=check $extra" || rc=$?
	t1=$(date +%s.%N)
	# TAP as the guest wrote it; our markers become TAP comments.
	sed -e 's/\r$//' -e 's/^URT-VM /# vm: /' "$d/tap.log"
	printf '# vm: %s: qemu exit %d after %.1f s\n' "$name" "$rc" \
		"$(awk "BEGIN { print $t1 - $t0 }")"

	# isa-debug-exit with 1 makes qemu exit with 3: the guest got to the end.
	if [ "$rc" -ne 3 ]; then
		problems+=("$name: VM did not finish (qemu exit $rc, see $d/console.log)")
		echo "# vm: $name: last lines of the console and of qemu:"
		tail -n 40 "$d/console.log" "$d/qemu.log" | sed 's/^/#   /'
	fi
	grep -q '^URT-VM insmod 0' "$d/tap.log" || problems+=("$name: insmod failed")
	grep -q '^URT-VM rmmod 0' "$d/tap.log" || problems+=("$name: rmmod failed")
	grep -q '^URT-VM end' "$d/tap.log" || problems+=("$name: no end marker")

	# Count results; a program that ended early counts its missing tests
	# as failures, and a non-zero exit with no failing test as one.
	prog='' plan=0 seen=0
	local pfail=0
	while IFS= read -r line; do
		line=${line%$'\r'}
		case "$line" in
		1..*) plan=${line#1..}; plan=${plan%% *}; seen=0; pfail=0 ;;
		'ok '*'# SKIP'*) skip=$((skip + 1)); seen=$((seen + 1)) ;;
		'ok '*) pass=$((pass + 1)); seen=$((seen + 1)) ;;
		'not ok '*) fail=$((fail + 1)); pfail=$((pfail + 1)); seen=$((seen + 1)) ;;
		'URT-VM exit '*)
			set -- $line
			prog=$3
			if [ "$seen" -lt "$plan" ]; then
				fail=$((fail + plan - seen))
				problems+=("$name: $prog: $((plan - seen)) of $plan tests did not report")
			fi
			if [ "$4" -ne 0 ] && [ "$pfail" -eq 0 ]; then
				fail=$((fail + 1))
				problems+=("$name: $prog exited $4")
			fi
			plan=0 seen=0 pfail=0 ;;
		esac
	done <"$d/tap.log"

	# After the last test nothing may be left alive in the module.
	for what in groups workers; do
		line=$(grep -a "^URT-VM stat $what " "$d/tap.log" | tr -d '\r' || true)
		[ "${line##* }" = 0 ] || problems+=("$name: module still holds $what at the end: '${line:-no stats}'")
	done
	if grep -E "$bad_re" "$d/dmesg.log" "$d/console.log" >"$d/bad.log"; then
		problems+=("$name: kernel log has errors:")
		while IFS= read -r line; do problems+=("  $line"); done < <(head -n 20 "$d/bad.log")
	fi
	if [ ! -s "$d/dmesg.log" ]; then
		problems+=("$name: no kernel log from the guest")
	fi
	if [ -n "${URT_VM_VERBOSE:-}" ]; then
		sed 's/^/# dmesg: /' "$d/dmesg.log"
	fi
}

run plain ""
run slub_debug "slub_debug=FZPU"

if [ -n "${CI:-}" ] && [ "${CI}" != false ] && [ "$skip" -gt 0 ]; then
	problems+=("CI is set and $skip tests were skipped: a skip is a failure here")
fi
t_end=$(date +%s.%N)
printf '# vm-check: %s, total %.1f s (logs in %s)\n' "$accel_name" \
	"$(awk "BEGIN { print $t_end - $t_start }")" "$bdir"
for p in "${problems[@]}"; do
	echo "# vm-check: FAIL: $p"
done
echo "vm-check: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] && [ ${#problems[@]} -eq 0 ]
