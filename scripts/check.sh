#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make check`: every test suite, each in turn, then one summary.
#   liburt selftests (plain, AddressSanitizer, ThreadSanitizer)
#   urt.ko kselftests in a qemu VM (vm-check)
# Every suite runs even if an earlier one failed. Exit status 0 only if all
# passed; under CI a skipped test is a failure (run-tests.sh, vm-check.sh).
set -u
cd "$(dirname "$0")/.."
make_=${MAKE:-make}

scripts/deps.sh build bpf vm || exit 1

results=()
total_pass=0 total_fail=0 total_skip=0 failed=0
run_suite() {
	local name=$1; shift
	local log rc line
	log=$(mktemp)
	echo "==== $name"
	"$@" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^[A-Za-z0-9 ()_.-]+: [0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
	rm -f "$log"
	if [ -n "$line" ]; then
		local p f k
		p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")
		f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
		k=$(sed -nE 's/.* ([0-9]+) skipped.*/\1/p' <<<"$line")
		total_pass=$((total_pass + p)) total_fail=$((total_fail + f)) total_skip=$((total_skip + ${k:-0}))
	fi
	if [ "$rc" -ne 0 ]; then
		failed=1
		results+=("FAIL  $name (exit $rc)")
		[ -z "$line" ] && total_fail=$((total_fail + 1))
	else
		results+=("ok    $name")
	fi
}

run_suite "liburt" "$make_" --no-print-directory test-lib
run_suite "liburt (ASan)" "$make_" --no-print-directory check-asan
run_suite "liburt (TSan)" "$make_" --no-print-directory check-tsan
run_suite "tools" "$make_" --no-print-directory test-tools
if [ -x selftests/vm/vm-check.sh ]; then
	run_suite "urt.ko in a VM" selftests/vm/vm-check.sh
else
	echo "check: selftests/vm/vm-check.sh missing" >&2
	results+=("FAIL  urt.ko in a VM (runner missing)")
	failed=1
fi

echo
echo "==== summary"
printf '%s\n' "${results[@]}"
echo "check: $total_pass passed, $total_fail failed, $total_skip skipped"
exit $failed
