#!/bin/bash
# guest/run-scenarios.sh NAME... — runs the scenarios /lab/e2e/NAME.sh one
# after the other in this guest, each in its own subshell with its own log
# (results/NAME/scenario.log), and tears the stack down after each one.
# Writes results/e2e.tsv (scenario, assertion, PASS|FAIL|SKIP, seconds,
# detail) and results/done, and copies results to the /results share after
# every scenario, so a hung guest still leaves what it had.
#
# After a power cut (LAB_RESUME=NAME, LAB_BOOT=2, 3, ...; see lab_power_cut
# in lib.sh) the results so far come back from /results, and scenario NAME
# runs its scenario_after_reboot instead of scenario_main.
. /lab/guest/lib.sh

sync_results() { cp -a "$LAB_R/." /results/ 2>/dev/null; sync; }

mkdir -p "$LAB_R"
if [ -n "${LAB_RESUME:-}" ]; then
	cp -a /results/. "$LAB_R/" 2>/dev/null
	touch "$LAB_R/e2e.tsv"
else
	: >"$LAB_R/e2e.tsv"
fi
LAB_T0=$(lab_uptime)
export LAB_T0
# fd 3: the console; this runner's own chatter goes to runner.log
exec 3>&1 >"$LAB_R/runner.log" 2>&1

LAB_SCENARIO=setup LAB_SDIR=$LAB_R/setup
mkdir -p "$LAB_SDIR"
if ! lab_modules >"$LAB_SDIR/modules.log" 2>&1; then
	say "FAIL  [setup] the kernel's target/iSCSI/multipath modules do not load"
	cat "$LAB_SDIR/modules.log" >&3
	_lab_row FAIL "kernel modules load" 0 "$(tail -n 2 "$LAB_SDIR/modules.log")"
	sync_results
	exit 1
fi

rc=0
for name in "$@"; do
	f=/lab/e2e/$name.sh
	LAB_SDIR=$LAB_R/$name
	mkdir -p "$LAB_SDIR"
	t0=$(lab_uptime)
	if [ ! -f "$f" ]; then
		LAB_SCENARIO=$name
		say "FAIL  [$name] no scenario file $f"
		_lab_row FAIL "scenario exists" 0 "no $f"
		rc=1; continue
	fi
	entry=scenario_main log=scenario.log tag=
	if [ "$name" = "${LAB_RESUME:-}" ]; then
		entry=scenario_after_reboot log=scenario.boot${LAB_BOOT:-2}.log
		tag=", boot ${LAB_BOOT:-2} after a power cut"
		LAB_RESUME=   # the scenarios after it start afresh
	fi
	say ""
	say "=== scenario $name (backend $LAB_BACKEND$tag)"
	(
		LAB_SCENARIO=$name
		exec >"$LAB_SDIR/$log" 2>&1
		set -o pipefail
		. "$f"
		$entry
	)
	src=$?
	[ $src = 0 ] || rc=1
	(
		LAB_SCENARIO=$name
		lab_teardown
	) >"$LAB_SDIR/teardown.log" 2>&1
	dmesg >"$LAB_SDIR/dmesg.txt"
	n_pass=$(awk -F'\t' -v s="$name" '$1==s && $3=="PASS"' "$LAB_R/e2e.tsv" | wc -l)
	n_fail=$(awk -F'\t' -v s="$name" '$1==s && $3=="FAIL"' "$LAB_R/e2e.tsv" | wc -l)
	if [ $src != 0 ] && [ "$n_fail" = 0 ]; then
		# the scenario died without saying why: count it
		LAB_SCENARIO=$name _lab_row FAIL "scenario ran to its end" 0 "exit status $src"
		n_fail=1
	fi
	say "=== scenario $name: $n_pass passed, $n_fail failed in $(_lab_t "$t0")s (log: $name/scenario.log)"
	sync_results
done
dmesg >"$LAB_R/dmesg.txt"
touch "$LAB_R/done"
sync_results
exit $rc
