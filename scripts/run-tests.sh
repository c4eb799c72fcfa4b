#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs kselftest-harness test binaries, shows their TAP output and ends with
# one line "SUITE: N passed, N failed, N skipped". Exit status 1 if any test
# failed or a binary crashed; with CI set, a skip is a failure too.
set -u
suite=$1; shift
pass=0 fail=0 skip=0 bad=0 vmonly=0
for bin in "$@"; do
	echo "# ---- $(basename "$bin")"
	out=$("$bin" 2>&1); rc=$?
	printf '%s\n' "$out"
	p=$(grep -cE '^ok [0-9]+ ' <<<"$out" | tr -d ' ')
	s=$(grep -cE '^ok [0-9]+ .*# SKIP' <<<"$out" | tr -d ' ')
	# Tests that can only run under the VM's kernel (they say so, and
	# vm-check runs them there) are not skips of this suite.
	v=$(grep -cE '^ok [0-9]+ .*# SKIP.*runs in the VM suite' <<<"$out" | tr -d ' ')
	vmonly=$((vmonly + v))
	f=$(grep -cE '^not ok [0-9]+ ' <<<"$out" | tr -d ' ')
	pass=$((pass + p - s)) skip=$((skip + s)) fail=$((fail + f))
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 4 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $(basename "$bin") exited with status $rc"
		fail=$((fail + 1))
	fi
	[ "$p" -eq 0 ] && [ "$f" -eq 0 ] && { echo "not ok - $(basename "$bin") ran no test"; bad=1; }
done
echo "$suite: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] && [ "$bad" -eq 0 ] || exit 1
if [ -n "${CI:-}" ] && [ "$skip" -ne "$vmonly" ]; then
	echo "$suite: $((skip - vmonly)) skips that CI must run: failures in CI" >&2
	exit 1
fi
exit 0
