# suites: e2e conformance
# summary: libiscsi iscsi-test-cu -t SCSI (PR with 2 initiators) vs LIO fileio, user:qcow, user:vlun; per-test results
#
# One guest boot, three 1 GiB LUNs on the same medium (the guest's ext4
# root, which supports fallocate): LIO fileio on a sparse file, tcmu-runner
# user:qcow on a qcow2 file, and user:vlun on a thin vdisk in a pool of two
# member files. Each LUN is LUN 0 of its own iSCSI target with portals
# 127.0.0.1 and 127.0.0.2 and ACLs for libiscsi's two initiator names, so
# the persistent-reservation and multipath tests run with a second
# initiator. iscsi-test-cu runs the whole SCSI family against each; the
# three runs go at once (CONF_PARALLEL=1): each waits on command round
# trips and alone keeps about one of the guest's two vCPUs busy. Measured
# under TCG on an otherwise idle 2-core host: ~265 s for all three at once
# (vlun's is the longest: it also runs the thin-provisioning, GET LBA
# STATUS and VERIFY(12) tests the others skip, ~100 s of it), against
# 1233 s one after the other in the earlier table's (busy host) run. No
# test scales with the LUN size (libiscsi caps its ranges at 256..65536
# blocks), so 1 GiB costs nothing extra.
#
# Per-test seconds: conf-<b>.times (from the stamped conf-<b>.tlog), with
# per-suite sums and the slowest tests in scenario.log.
#
# Results (synced to the host, <results>/conformance/):
#   conf-<b>.log         the raw CUnit output of iscsi-test-cu
#   conf-<b>.tsv         test <TAB> PASS|FAIL|SKIP <TAB> first [FAILED]/[SKIPPED] message
#   conf-<b>.summary     CUnit's run summary line
#   attribs-<b>.txt      the backstore's configfs attributes
# tests/conformance/regenerate turns them into docs/conformance.md.
#
# Assertions: each run reaches CUnit's summary; no PR registration is left
# on any LUN; vlun fails no test that fileio passes, except the ones listed
# in CONF_VLUN_KNOWN below (reasons: tests/conformance/known-differences.tsv;
# tests/conformance/gen_table.py reports any test in one and not the other).

CONF_BACKENDS="fileio qcow vlun"
CONF_SIZE=1G
CONF_DIR=/var/lib/lab/conformance
CONF_TGT_BASE=iqn.2003-01.org.vlun.lab:conf
# fileio passes these, vlun fails them, for a reason outside vlun
# (see tests/conformance/known-differences.tsv)
CONF_VLUN_KNOWN="Inquiry.AllocLength Inquiry.BlockLimits"
# the result follows LIO's session teardown race, not the backend: each has
# failed on fileio and vlun and passed on both in other runs (notes.md,
# "Reserve6.Logout and .ITNexusLoss"); not compared, so e2e does not flake
CONF_RACY="Reserve6.Logout Reserve6.ITNexusLoss"
# iscsi-test-cu's -t argument (the whole SCSI family)
CONF_TESTS=SCSI
# 1: the three runs at once (different LUNs and targets; the guest's two
# vCPUs are otherwise half idle, each run waits on command round trips)
CONF_PARALLEL=1
# For quick iterations a developer may put an untracked
# tests/e2e/conformance.local next to this file, e.g.
#   CONF_BACKENDS=vlun CONF_TESTS='SCSI.Inquiry.*'
# (the comparison with fileio is then skipped).
[ -r "/lab/e2e/conformance.local" ] && . /lab/e2e/conformance.local

conf_tgt() { echo "$CONF_TGT_BASE-$1"; }

conf_backstore() { # backend -> targetcli path
	case $1 in
	fileio) echo /backstores/fileio/conf_fileio ;;
	qcow) echo /backstores/user:qcow/conf_qcow ;;
	vlun) echo /backstores/user:vlun/conf_vlun ;;
	esac
}

conf_backstore_create() { # backend -> the targetcli line
	case $1 in
	# fileio as targetcli creates it by default (buffered, write_back=True),
	# the configuration of the measured anchor baseline
	fileio) echo "/backstores/fileio create name=conf_fileio file_or_dev=$CONF_DIR/fileio.img size=$CONF_SIZE" ;;
	# qcow with tcmu-runner's defaults: the peer baseline
	qcow) echo "/backstores/user:qcow create name=conf_qcow size=$CONF_SIZE cfgstring=$CONF_DIR/qcow.qcow2" ;;
	# vlun: 1 MiB commands (hw_max_sectors is in 512-byte units; the
	# default 128 would split every I/O above 64 KiB)
	vlun) echo "/backstores/user:vlun create name=conf_vlun size=$CONF_SIZE cfgstring=$POOL_DIR/conf hw_max_sectors=2048" ;;
	esac
}

conf_targetcli_batch() {
	local b t
	for b in $CONF_BACKENDS; do
		conf_backstore_create "$b"
	done
	for b in $CONF_BACKENDS; do
		t=$(conf_tgt "$b")
		echo "/iscsi create $t"
		echo "/iscsi/$t/tpg1/luns create $(conf_backstore "$b")"
		echo "/iscsi/$t/tpg1/portals create $P1 3260"
		echo "/iscsi/$t/tpg1/portals create $P2 3260"
		echo "/iscsi/$t/tpg1/acls create $LIBISCSI_INI"
		echo "/iscsi/$t/tpg1/acls create $LIBISCSI_INI2"
		echo "/iscsi/$t/tpg1 set attribute authentication=0"
	done
}

conf_dev() { configfs_dev "conf_$1"; }

conf_attribs() { # backend
	local d a; d=$(conf_dev "$1")
	echo "$d"
	cat "$d/info" 2>/dev/null
	for a in "$d"/attrib/*; do
		printf '%-28s %s\n' "${a##*/}" "$(cat "$a" 2>/dev/null)"
	done
}

# registrations LIO holds for the LUN ("Key:" lines of pr/)
conf_pr_keys() { # backend
	grep -c 'Key:' "$(conf_dev "$1")/pr/res_pr_registered_i_pts" 2>/dev/null
	return 0
}
conf_no_pr_keys() {
	local n; n=$(conf_pr_keys "$1")
	[ "$n" = 0 ] || { echo "$n registration(s) left:"; cat "$(conf_dev "$1")/pr/res_pr_registered_i_pts"; return 1; }
}

# CUnit basic-mode output -> test<TAB>result<TAB>note. "Suite: S" opens a
# suite, "  Test: T ..." a test, which ends at a line ending in "passed" or
# "FAILED". A passed test that printed [SKIPPED] is SKIP, except when the
# only skip is the REPORT SUPPORTED OPCODES sub-check (the test went on).
conf_parse() { # log
	awk '
	function finish(ok,   r, note) {
		if (ok) r = (skipped ? "SKIP" : "PASS"); else r = "FAIL"
		note = failmsg != "" ? failmsg : skipmsg
		gsub(/\t/, " ", note)
		printf "%s\t%s\t%s\n", cur, r, substr(note, 1, 240)
		cur = ""
	}
	function scan(s) {
		if (s ~ /\[SKIPPED\]/) {
			if (skipmsg == "") skipmsg = s
			if (s !~ /REPORT_SUPPORTED_OPCODES/) skipped = 1
		}
		if (s ~ /\[(FAILED|FAILURE)\]/ && failmsg == "") failmsg = s
	}
	/^Suite: / { suite = $2; next }
	/^  Test: / {
		name = $2; cur = suite "." name; skipped = 0; skipmsg = ""; failmsg = ""
		rest = $0; sub(/^  Test: [^ ]+ \.\.\./, "", rest)
		scan(rest)
		# a message printed after the verdict (by the next test set-up,
		# e.g. Reserve6.LUNReset) follows it on the same line
		if (rest ~ /^passed/ || rest ~ /passed$/) finish(1)
		else if (rest ~ /^FAILED/ || rest ~ /FAILED$/) finish(0)
		next
	}
	cur != "" {
		line = $0; sub(/^[ \t]+/, "", line)
		scan(line)
		if (line ~ /passed$/ && line !~ /^\[/) finish(1)
		else if (line ~ /FAILED$/ && line !~ /^\[/) finish(0)
	}' "$1"
}

# each line of stdin prefixed with the wall-clock time it arrived
conf_stamp() {
	local l
	while IFS= read -r l || [ -n "$l" ]; do
		printf '%s %s\n' "$EPOCHREALTIME" "$l"
	done
}

# stamped CUnit log -> test<TAB>seconds: from the previous test's verdict
# (or the start) to this one's, so a suite's set-up counts to its first test
conf_times() { # tlog start
	awk -v prev="$2" '
	function fin(ts) { printf "%s\t%.2f\n", cur, ts - prev; prev = ts; cur = "" }
	{ ts = $1; sub(/^[^ ]* /, "") }
	/^Suite: / { suite = $2; next }
	/^  Test: / {
		cur = suite "." $2
		rest = $0; sub(/^  Test: [^ ]+ \.\.\./, "", rest)
		if (rest ~ /^passed/ || rest ~ /passed$/ || rest ~ /^FAILED/ || rest ~ /FAILED$/) fin(ts)
		next
	}
	cur != "" {
		line = $0; sub(/^[ \t]+/, "", line)
		if ((line ~ /passed$/ || line ~ /FAILED$/) && line !~ /^\[/) fin(ts)
	}' "$1"
}

# per-suite seconds and the slowest tests, into the scenario log
conf_times_report() { # times
	echo "  seconds per suite:"
	awk -F'\t' '{ s = $1; sub(/\..*/, "", s); t[s] += $2 } END { for (s in t) printf "    %8.1f  %s\n", t[s], s }' "$1" | sort -rn
	echo "  slowest tests:"
	sort -t"$(printf '\t')" -k2,2 -rn "$1" | head -n 15 | awk -F'\t' '{ printf "    %8.1f  %s\n", $2, $1 }'
}

# iscsi-test-cu against one backend; only writes its own conf-<b>.* files,
# so several can run at once (CONF_PARALLEL)
conf_exec() { # backend
	local b=$1 t e0 rc
	t=$(conf_tgt "$b")
	e0=$EPOCHREALTIME
	# line-buffered so that each line is stamped when the test prints it
	timeout 1200 stdbuf -oL iscsi-test-cu --dataloss -t "$CONF_TESTS" -i "$LIBISCSI_INI" -I "$LIBISCSI_INI2" \
		"iscsi://$P1/$t/0" "iscsi://$P2/$t/0" 2>&1 | conf_stamp >"$LAB_SDIR/conf-$b.tlog"
	rc=${PIPESTATUS[0]}
	sed 's/^[0-9.]* //' "$LAB_SDIR/conf-$b.tlog" >"$LAB_SDIR/conf-$b.log"
	conf_times "$LAB_SDIR/conf-$b.tlog" "$e0" >"$LAB_SDIR/conf-$b.times"
	awk -v a="$e0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f\n", b - a }' >"$LAB_SDIR/conf-$b.seconds"
	echo "$rc" >"$LAB_SDIR/conf-$b.rc"
}

conf_cmdline() { # backend
	local t; t=$(conf_tgt "$1")
	echo "iscsi-test-cu --dataloss -t $CONF_TESTS -i $LIBISCSI_INI -I $LIBISCSI_INI2 iscsi://$P1/$t/0 iscsi://$P2/$t/0"
}

# parse and check one finished run
conf_report() { # backend
	local b=$1 log tsv rc s
	log=$LAB_SDIR/conf-$b.log
	tsv=$LAB_SDIR/conf-$b.tsv
	rc=$(cat "$LAB_SDIR/conf-$b.rc" 2>/dev/null || echo 255)
	s=$(cat "$LAB_SDIR/conf-$b.seconds" 2>/dev/null || echo 0)
	echo "$b: rc $rc, ${s}s"
	conf_parse "$log" >"$tsv"
	conf_times_report "$LAB_SDIR/conf-$b.times"
	grep -E '^ +tests ' "$log" | tail -n1 | awk -v rc="$rc" -v s="$s" -v par="$CONF_PARALLEL" \
		'{ printf "total=%s ran=%s passed=%s failed=%s inactive=%s rc=%s seconds=%s parallel=%s\n", $2, $3, $4, $5, $6, rc, s, par }' \
		>"$LAB_SDIR/conf-$b.summary"
	local np nf ns
	np=$(awk -F'\t' '$2=="PASS"' "$tsv" | wc -l)
	nf=$(awk -F'\t' '$2=="FAIL"' "$tsv" | wc -l)
	ns=$(awk -F'\t' '$2=="SKIP"' "$tsv" | wc -l)
	say "      $b: $(wc -l <"$tsv") tests: $np PASS, $nf FAIL, $ns SKIP; CUnit: $(cat "$LAB_SDIR/conf-$b.summary")"
	check "$b: iscsi-test-cu ran to its summary" file_contains "$log" '^ +tests +[0-9]+ +[0-9]+'
	if [ "$CONF_TESTS" = SCSI ]; then
		check "$b: every test has a result" eq "$(wc -l <"$tsv")" "$(sed -n 's/.*total=\([0-9]*\).*/\1/p' "$LAB_SDIR/conf-$b.summary")"
	fi
	check "$b: no PR registration left after the run" conf_no_pr_keys "$b"
	return 0
}

# tests fileio passes (PASS or SKIP) and vlun fails, minus the known ones
conf_regressions() {
	local f=$LAB_SDIR/conf-fileio.tsv v=$LAB_SDIR/conf-vlun.tsv
	awk -F'\t' -v known=" $CONF_VLUN_KNOWN $CONF_RACY " '
		FNR == NR { if ($2 != "FAIL") ok[$1] = 1; next }
		$2 == "FAIL" && ($1 in ok) && index(known, " " $1 " ") == 0 { print $1 "  (" $3 ")"; bad = 1 }
		END { exit bad }' "$f" "$v"
}

scenario_main() {
	step "backing files on one ext4: fileio image, qcow2, a pool of two members with a thin vdisk"
	show findmnt -no SOURCE,FSTYPE --target /var/lib
	must mkdir -p "$CONF_DIR"
	must truncate -s "$CONF_SIZE" "$CONF_DIR/fileio.img"
	must qemu-img create -q -f qcow2 "$CONF_DIR/qcow.qcow2" "$CONF_SIZE"
	must pool_create pool0 768M 2
	must vlunctl vdisk create "$POOL_DIR" conf --size "$CONF_SIZE" --thin
	show vlunctl vdisk show "$POOL_DIR" conf
	show dpkg-query -W libiscsi-bin tcmu-runner targetcli-fb
	dpkg-query -W libiscsi-bin tcmu-runner targetcli-fb >"$LAB_SDIR/versions.txt" 2>&1
	uname -r >>"$LAB_SDIR/versions.txt"

	step "tcmu-runner on the system bus"
	must runner_start

	step "three backstores, three iSCSI targets on $P1 and $P2 (targetcli)"
	local out b
	out=$(conf_targetcli_batch | tcli)
	echo "$out"
	for b in $CONF_BACKENDS; do
		if [ -z "$(conf_dev "$b")" ]; then
			say "FAIL  [$LAB_SCENARIO] step '$LAB_STEP': no backstore conf_$b in configfs"
			_lab_row FAIL "step: $LAB_STEP" 0 "no backstore conf_$b"
			echo "$out" | tail -n 12 | sed 's/^/      /' >&3
			show_relevant_logs
			exit 1
		fi
		conf_attribs "$b" >"$LAB_SDIR/attribs-$b.txt" 2>&1
	done
	must wait_for 10 sh -c "ss -ltn | grep -q '$P1:3260 ' && ss -ltn | grep -q '$P2:3260 '"

	local b0
	for b in $CONF_BACKENDS; do
		check "$b: no PR registration before the run" conf_no_pr_keys "$b"
	done
	if [ "$CONF_PARALLEL" = 1 ]; then
		step "iscsi-test-cu -t $CONF_TESTS against $CONF_BACKENDS at once"
		b0=$(lab_uptime)
		local pids=()
		for b in $CONF_BACKENDS; do
			echo "+ $(conf_cmdline "$b")"
			conf_exec "$b" &
			pids+=($!)
		done
		wait "${pids[@]}"
		say "      all backends done in $(_lab_t "$b0")s"
		for b in $CONF_BACKENDS; do
			conf_report "$b"
		done
	else
		for b in $CONF_BACKENDS; do
			step "iscsi-test-cu -t $CONF_TESTS against $b ($(conf_tgt "$b"))"
			echo "+ $(conf_cmdline "$b")"
			conf_exec "$b"
			conf_report "$b"
		done
	fi

	case " $CONF_BACKENDS " in *" fileio "*" vlun "*) ;; *) return 0 ;; esac
	step "compare: what fileio passes, vlun must pass"
	show conf_regressions
	check "vlun fails no test that fileio passes (known: ${CONF_VLUN_KNOWN:-none}; racy: $CONF_RACY)" conf_regressions
}
