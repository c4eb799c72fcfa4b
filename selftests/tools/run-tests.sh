#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# selftests/tools: each tool against victim (a urt program with known
# behaviour), its output checked. TAP 13; ends with
# "tools: N passed, N failed, N skipped". Needs root (BPF); without root the
# BPF tests skip, except under CI (CI=true), where a skip is a failure.
set -u
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
T=$B/tools
V=$B/selftests/tools/victim
M=$B/selftests/tools/multirt
CHECK=selftests/tools/check_trace.py
tmp=$(mktemp -d)
pass=0 fail=0 skip=0 n=0
victims=()

cleanup() {
	for p in "${victims[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

ok()   { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n $1"; }
nok()  { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n $1"; shift; for l in "$@"; do echo "# $l"; done; }
skp()  { n=$((n + 1)); skip=$((skip + 1)); echo "ok $n $1 # SKIP $2"; }

# start_bg PROG ARGS...: PROG in the background, sets $BP once it prints "ready"
start_bg() {
	local prog=$1 out=$tmp/bg.$RANDOM
	shift
	"$prog" "$@" > "$out" 2>&1 &
	BP=$!
	victims+=("$BP")
	for _ in $(seq 100); do
		grep -q '^ready' "$out" && return 0
		sleep 0.05
	done
	echo "# $(basename "$prog") did not start: $(cat "$out")"
	return 1
}

# start_victim ARGS... / start_multirt ARGS...: set $VP / $MP
start_victim()  { local rc=0; start_bg "$V" "$@" || rc=$?; VP=$BP; return $rc; }
start_multirt() { local rc=0; start_bg "$M" "$@" || rc=$?; MP=$BP; return $rc; }

# Known, not understood yet (Documentation/status.md): now and then a
# kernel block on a worker's track ends after a task began on it, as if a
# switch-in was not seen. known_overlap JSON NAME CHECK-ARGS...: true when
# the recording succeeded ($rc) and the check failed on such an overlap;
# the trace is kept in $B/tools-overlap-NAME.json for study, and the caller
# records once more: a second failure in a row, or any other, fails.
known_overlap() {
	local json=$1 keep=$B/tools-overlap-$2.json
	shift 2
	[ $rc -eq 0 ] && ! python3 "$CHECK" "$json" "$@" > "$tmp/chk" 2>&1 &&
		grep -q ' overlaps ' "$tmp/chk" || return 1
	cp "$json" "$keep" 2>/dev/null
	echo "# known overlap ($(grep -m1 ' overlaps ' "$tmp/chk")); kept in $keep; recording again"
}

# wait_for FILE PATTERN: until PATTERN is in FILE (a tool says it attached), 20 s
wait_for() {
	for _ in $(seq 400); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# one_line_error NAME CMD...: non-zero exit, one line on stderr naming the
# tool, no crash, no hang (20 s).
one_line_error() {
	local name=$1 want=$2; shift 2
	local err=$tmp/err out=$tmp/out rc lines
	timeout 20 "$@" > "$out" 2> "$err"; rc=$?
	lines=$(wc -l < "$err")
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -lt 128 ] && [ "$lines" -eq 1 ] &&
	   grep -q -- "$want" "$err"; then
		ok "$name"
		echo "# $(cat "$err")"
	else
		nok "$name" "exit $rc, $lines lines on stderr (want 1 with '$want'):" "$(head -5 "$err")"
	fi
}

echo "TAP version 13"
root=1
[ "$(id -u)" -eq 0 ] || root=0
bpf_skip() {
	if [ $root -eq 0 ]; then
		skp "$1" "needs root for BPF"
		return 0
	fi
	return 1
}

# ---- help and arguments (no BPF)
for t in urt-top urt-blocked urt-trace; do
	if "$T/$t" --help 2>&1 | grep -q USAGE; then ok "$t --help shows the usage"; else nok "$t --help shows the usage"; fi
done
one_line_error "urt-trace without -p says -p is required" "required" "$T/urt-trace" 1
one_line_error "urt-blocked with a bad duration says so" "invalid duration" "$T/urt-blocked" -p 1 abc
one_line_error "urt-blocked with -m above -M says so" "above max" "$T/urt-blocked" -p 1 -m 10 -M 5
one_line_error "urt-trace with a bad --source says so" "invalid source" "$T/urt-trace" -p 1 --source=perf 1

# ---- liburt carries its USDT probes (bpftrace, and the tools' enable probe)
probes=$(readelf -n "$V" 2>/dev/null | grep -A1 'Provider: urt' | grep -o 'Name: [a-z]*' | sort -u | cut -c7- | tr '\n' ' ')
if [ "$(wc -w <<<"$probes")" -ge 10 ] && grep -qw wake <<<"$probes"; then
	ok "liburt has the USDT probes spawn wake run stop park unpark steal handoff block enable"
else
	nok "liburt has the USDT probes" "found: $probes"
fi

# ---- bad inputs
one_line_error "an unknown pid is one clear line" "no process with pid" "$T/urt-blocked" -p 4194000 1
sleep 30 & sp=$!; victims+=("$sp")
one_line_error "a pid that is not a urt program is one clear line" "is not a urt program" "$T/urt-trace" -p "$sp" 1
one_line_error "urt-top on a pid that is not a urt program" "is not a urt program" "$T/urt-top" -b -p "$sp" 1 1
if ! bpf_skip "no BTF is one clear line"; then
	start_victim -s 5 block
	one_line_error "no BTF is one clear line" "no BTF" env URT_TOOLS_VMLINUX_BTF=/nonexistent "$T/urt-blocked" -p "$VP" 1
fi
if ! bpf_skip "no BPF permission is one clear line"; then
	# victim and tool as nobody: the process is readable, BPF is not allowed
	if command -v setpriv >/dev/null; then
		cp "$V" "$tmp/victim" && cp "$T/urt-blocked" "$tmp/urt-blocked" && chmod 755 "$tmp" "$tmp/victim" "$tmp/urt-blocked"
		asnobody=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all)
		"${asnobody[@]}" "$tmp/victim" -s 5 block > "$tmp/nobody.out" 2>&1 &
		np=$!; victims+=("$np"); sleep 0.5
		one_line_error "no BPF permission is one clear line" "permission denied" "${asnobody[@]}" "$tmp/urt-blocked" -p "$np" 1
	else
		skp "no BPF permission is one clear line" "setpriv missing"
	fi
fi

# ---- urt-top: the blocker shows as blocked in read, with its name
if ! bpf_skip "urt-top shows the blocking task blocked in read"; then
	start_victim -s 6 block short
	# Six samples: the victim alternates phases, the blocker is not
	# blocked at every instant.
	timeout 30 "$T/urt-top" -b -p "$VP" 1 6 > "$tmp/top" 2>&1; rc=$?
	if [ $rc -eq 0 ] && grep -q 'blocked read' "$tmp/top" && grep -q 'blocker' "$tmp/top" &&
	   grep -q '^SLOT' "$tmp/top"; then
		ok "urt-top shows the blocking task blocked in read"
	else
		nok "urt-top shows the blocking task blocked in read" "exit $rc" "$(head -20 "$tmp/top")"
	fi
	timeout 30 "$T/urt-top" -b 1 1 > "$tmp/topall" 2>&1; rc=$?
	if [ $rc -eq 0 ] && grep -q "pid $VP (victim)" "$tmp/topall"; then
		ok "urt-top without -p finds every urt process"
	else
		nok "urt-top without -p finds every urt process" "exit $rc" "$(head -10 "$tmp/topall")"
	fi
	kill "$VP" 2>/dev/null
fi

# ---- urt-blocked: the blocker, read, ~50 ms; -m/-M filter
if ! bpf_skip "urt-blocked reports the blocker in read for about 50 ms"; then
	start_victim -s 6 block
	timeout 30 "$T/urt-blocked" -p "$VP" 2 > "$tmp/blk" 2>&1; rc=$?
	max=$(grep -o 'task "blocker".*blocked in read.*max [0-9.]*ms' "$tmp/blk" | grep -o 'max [0-9.]*' | grep -o '[0-9.]*$')
	if [ $rc -eq 0 ] && [ -n "$max" ] && awk -v m="$max" 'BEGIN { exit !(m >= 30 && m <= 150) }' &&
	   grep -qE '32768 -> 65535 +: [1-9]' "$tmp/blk"; then
		ok "urt-blocked reports the blocker in read for about 50 ms (max ${max} ms)"
	else
		nok "urt-blocked reports the blocker in read for about 50 ms" "exit $rc max '$max'" "$(head -30 "$tmp/blk")"
	fi
	timeout 30 "$T/urt-blocked" -p "$VP" -m 200000 1 > "$tmp/blk2" 2>&1; rc=$?
	if [ $rc -eq 0 ] && ! grep -q 'task "blocker"' "$tmp/blk2"; then
		ok "urt-blocked -m 200000 hides the 50 ms blocks"
	else
		nok "urt-blocked -m 200000 hides the 50 ms blocks" "$(head -10 "$tmp/blk2")"
	fi
	timeout 30 "$T/urt-blocked" -p "$VP" -M 1000 1 > "$tmp/blk3" 2>&1; rc=$?
	if [ $rc -eq 0 ] && ! grep -q 'task "blocker" .*read' "$tmp/blk3"; then
		ok "urt-blocked -M 1000 hides the 50 ms blocks"
	else
		nok "urt-blocked -M 1000 hides the 50 ms blocks" "$(head -10 "$tmp/blk3")"
	fi
	kill "$VP" 2>/dev/null
fi

# ---- urt-trace: JSON with tracks, task slices, kernel blocks, a handoff flow
if ! bpf_skip "urt-trace writes a trace with tracks, slices and a handoff flow"; then
	start_victim -s 6 block short hog
	timeout 30 "$T/urt-trace" -p "$VP" -o "$tmp/t.json" 1.5 > "$tmp/tr.out" 2>&1; rc=$?
	if known_overlap "$tmp/t.json" trace blocker hog short; then
		timeout 30 "$T/urt-trace" -p "$VP" -o "$tmp/t.json" 1.5 > "$tmp/tr.out" 2>&1; rc=$?
	fi
	if [ $rc -eq 0 ] && python3 "$CHECK" "$tmp/t.json" blocker hog short > "$tmp/chk" 2>&1; then
		ok "urt-trace writes a trace with tracks, slices and a handoff flow"
		sed 's/^/# /' "$tmp/chk"
	else
		nok "urt-trace writes a trace with tracks, slices and a handoff flow" "exit $rc" \
			"$(cat "$tmp/tr.out" "$tmp/chk" 2>/dev/null | head -20)"
	fi
	timeout 30 "$T/urt-trace" -p "$VP" --summary 1 > "$tmp/sum" 2>&1; rc=$?
	if [ $rc -eq 0 ] && grep -q 'read:blocker' "$tmp/sum" && grep -q 'HANDOFF AT' "$tmp/sum"; then
		ok "urt-trace --summary lists tasks, blocks and handoffs"
	else
		nok "urt-trace --summary lists tasks, blocks and handoffs" "exit $rc" "$(head -30 "$tmp/sum")"
	fi
	kill "$VP" 2>/dev/null
fi
# ---- urt-trace: a hog handoff (work queued behind a task spinning past
# hog_threshold_ns) and wake instants (task to task, and from a plain thread)
if ! bpf_skip "urt-trace shows a hog handoff as a flow"; then
	start_victim -s 6 hogq wake
	timeout 30 "$T/urt-trace" -p "$VP" -o "$tmp/hog.json" 1.5 > "$tmp/hog.out" 2>&1; rc=$?
	if known_overlap "$tmp/hog.json" hog --hog hogq; then
		timeout 30 "$T/urt-trace" -p "$VP" -o "$tmp/hog.json" 1.5 > "$tmp/hog.out" 2>&1; rc=$?
	fi
	if [ $rc -eq 0 ] && python3 "$CHECK" "$tmp/hog.json" --hog hogq > "$tmp/chk" 2>&1; then
		ok "urt-trace shows a hog handoff as a flow"
		sed 's/^/# /' "$tmp/chk"
	else
		nok "urt-trace shows a hog handoff as a flow" "exit $rc" \
			"$(cat "$tmp/hog.out" "$tmp/chk" 2>/dev/null | head -20)"
	fi
	if [ $rc -eq 0 ] && python3 "$CHECK" "$tmp/hog.json" --wake sleeper waker > "$tmp/chk" 2>&1; then
		ok "urt-trace shows wakes as instant events on the waker's track"
		sed 's/^/# /' "$tmp/chk"
	else
		nok "urt-trace shows wakes as instant events on the waker's track" "exit $rc" \
			"$(cat "$tmp/hog.out" "$tmp/chk" 2>/dev/null | head -20)"
	fi
	kill "$VP" 2>/dev/null
fi
# ---- which kernel events: urt.ko's tracepoints only where the module is
# loaded (the VM suite, selftests/vm/tools_kmod.sh), sched_switch here
if ! bpf_skip "the tools say which kernel events they use"; then
	start_victim -s 5 block
	if [ -e /dev/urt ]; then want='urt.ko'; else want='sched_switch (urt.ko not loaded)'; fi
	timeout 30 "$T/urt-blocked" -p "$VP" -K 0 0.5 > "$tmp/src" 2>&1; rc=$?
	if [ $rc -eq 0 ] && grep -qF "Kernel events: $want" "$tmp/src"; then
		ok "urt-blocked says which kernel events it uses ($want)"
	else
		nok "urt-blocked says which kernel events it uses" "exit $rc, want '$want'" "$(head -5 "$tmp/src")"
	fi
	timeout 30 "$T/urt-trace" -p "$VP" --summary 0.5 > "$tmp/srcsum" 2>&1; rc=$?
	if [ $rc -eq 0 ] && grep -qF "kernel events: $want; 1 runtime followed" "$tmp/srcsum"; then
		ok "urt-trace --summary says which kernel events it uses"
	else
		nok "urt-trace --summary says which kernel events it uses" "exit $rc, want '$want'" \
			"$(head -5 "$tmp/srcsum")"
	fi
	if [ -e /dev/urt ]; then
		timeout 30 "$T/urt-blocked" -p "$VP" -K 0 --source=sched_switch 0.5 > "$tmp/src" 2>&1
		if grep -qF "Kernel events: sched_switch (asked for)" "$tmp/src"; then
			ok "urt-blocked --source=sched_switch uses sched_switch"
		else
			nok "urt-blocked --source=sched_switch uses sched_switch" "$(head -5 "$tmp/src")"
		fi
	else
		one_line_error "urt-blocked --source=urt.ko without urt.ko is one clear line" "urt.ko is not loaded" \
			"$T/urt-blocked" -p "$VP" --source=urt.ko 1
	fi
	kill "$VP" 2>/dev/null
fi

# ---- every runtime of a process: rtA from the start, rtB created while
# the tool runs, destroyed, rtC created in its place (multirt.c)
if ! bpf_skip "urt-blocked follows every runtime, also ones created while it runs"; then
	start_multirt -s 6
	timeout 30 "$T/urt-blocked" -p "$MP" -K 0 2.5 > "$tmp/mblk" 2>&1 & tp=$!
	if wait_for "$tmp/mblk" '^Kernel events'; then kill -USR1 "$MP"; fi
	wait "$tp"; rc=$?
	bad=
	for want in blockA:read blockB:poll blockC:clock_nanosleep; do
		max=$(grep -o "task \"${want%%:*}\".*blocked in ${want#*:}:.*max [0-9.]*ms" "$tmp/mblk" |
			grep -o 'max [0-9.]*' | grep -o '[0-9.]*$')
		if [ -z "$max" ] || ! awk -v m="$max" 'BEGIN { exit !(m >= 20 && m <= 100) }'; then
			bad="$bad $want(max '$max')"
		fi
	done
	if [ $rc -eq 0 ] && [ -z "$bad" ] && grep -q '^3 runtimes followed' "$tmp/mblk"; then
		ok "urt-blocked follows every runtime, also ones created while it runs"
	else
		nok "urt-blocked follows every runtime, also ones created while it runs" \
			"exit $rc, missing or off:$bad" "$(grep -E '^task|runtimes|Kernel' "$tmp/mblk")"
	fi
	kill "$MP" 2>/dev/null
fi
if ! bpf_skip "urt-trace follows every runtime, also ones created while it records"; then
	start_multirt -s 6
	timeout 30 "$T/urt-trace" -p "$MP" -o "$tmp/m.json" 2.5 > "$tmp/mtr" 2>&1 & tp=$!
	if wait_for "$tmp/mtr" 'recording pid'; then kill -USR1 "$MP"; fi
	wait "$tp"; rc=$?
	if [ $rc -eq 0 ] && python3 "$CHECK" "$tmp/m.json" --kblock blockA:read --kblock blockB:poll \
		--kblock blockC:clock_nanosleep blockA blockB blockC > "$tmp/chk" 2>&1 &&
	   python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))["otherData"]["runtimes"]; sys.exit(r != ["rtA", "rtB", "rtC"])' "$tmp/m.json"; then
		ok "urt-trace follows every runtime, also ones created while it records"
		sed 's/^/# /' "$tmp/chk"
	else
		nok "urt-trace follows every runtime, also ones created while it records" "exit $rc" \
			"$(cat "$tmp/mtr" "$tmp/chk" 2>/dev/null | head -20)"
	fi
	kill "$MP" 2>/dev/null
fi

# Records a victim that exits after 1 s (sets rc, took).
record_exit() {
	start_victim -s 1 block short
	start=$(date +%s)
	timeout 30 "$T/urt-trace" -p "$VP" -o "$tmp/exit.json" 10 > "$tmp/ex.out" 2>&1; rc=$?
	took=$(( $(date +%s) - start ))
}
if ! bpf_skip "a program exiting mid-recording leaves a complete trace"; then
	record_exit
	if known_overlap "$tmp/exit.json" exit blocker; then
		record_exit
	fi
	if [ $rc -eq 0 ] && [ $took -lt 8 ] && grep -q 'the program exited' "$tmp/ex.out" &&
	   python3 -m json.tool "$tmp/exit.json" > /dev/null 2>&1 &&
	   python3 "$CHECK" "$tmp/exit.json" blocker > /dev/null 2>&1; then
		ok "a program exiting mid-recording leaves a complete trace (${took} s)"
	else
		nok "a program exiting mid-recording leaves a complete trace" "exit $rc after ${took} s" "$(cat "$tmp/ex.out")" \
			"$(python3 "$CHECK" "$tmp/exit.json" blocker 2>&1)"
	fi
fi

echo "1..$n"
echo "tools: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] || exit 1
if [ -n "${CI:-}" ] && [ "$skip" -ne 0 ]; then
	echo "tools: $skip skips that CI must run: failures in CI" >&2
	exit 1
fi
exit 0
