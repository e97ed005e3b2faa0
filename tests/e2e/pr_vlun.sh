# suites: pr
# summary: PR on vlun's virtual LUN (LIO's, in the kernel): libiscsi's PR families against vlun and LIO fileio in one run; vlun-pr and mpathpersist over both paths of the multipathed vLUN; preempt-and-abort fencing by content
#
# The virtual-LUN side of persistent reservations (issue 6, item 5; results
# in docs/pr-lab.md). LIO implements SPC-3 PR for a TCMU device in the
# kernel (DESIGN.md), so what vlun must show is that LIO's PR works on its
# LUN as on LIO's own fileio:
#   1. libiscsi's PR families (PERSISTENT RESERVE IN/OUT, RESERVE(6), the
#      multipath tests; two initiator names, two portals) against the vlun
#      LUN and a LIO fileio LUN at the same time, per-test results compared;
#   2. a host holding the multipathed vLUN with vlun-pr (every path
#      registered, Write Exclusive - Registrants Only), a second host (an
#      iface with another initiator name) refused, then taking over with
#      PREEMPT AND ABORT while the first host writes: by content, none of
#      the fenced host's writes lands afterwards;
#   3. mpathpersist (multipathd's reservation_key) registering and
#      reserving the map, vlun-pr adopting its key.
# tests/e2e/pr_fencing.sh (suite e2e) does the plain sg_persist PREEMPT on
# the vLUN; tests/e2e/pr_physical.sh the same tools on a physical LUN.
#
# The libiscsi part reuses conformance.sh's helpers (targets, the
# iscsi-test-cu run, CUnit parsing): its results are conf-<backend>.*.

. /lab/guest/pr.sh
. /lab/e2e/conformance.sh

# the PR families of libiscsi 1.19 (iscsi-test-cu --list)
CONF_TESTS='SCSI.Prin*,SCSI.Prout*,SCSI.Reserve6,SCSI.MultipathIO'
CONF_SIZE=512M
CONF_PARALLEL=1
VB=$LAB_BACKEND                 # the backend under test (vlun by default)
if [ "$VB" = fileio ]; then CONF_BACKENDS=fileio; else CONF_BACKENDS="fileio $VB"; fi

# tests that fileio passes and VB fails (CONF_RACY: LIO's logout race)
prv_regressions() {
	local f=$LAB_SDIR/conf-fileio.tsv v=$LAB_SDIR/conf-$VB.tsv
	awk -F'\t' -v racy=" $CONF_RACY " '
		FNR == NR { if ($2 != "FAIL") ok[$1] = 1; next }
		$2 == "FAIL" && ($1 in ok) && index(racy, " " $1 " ") == 0 { print $1 "  (" $3 ")"; bad = 1 }
		END { exit bad }' "$f" "$v"
}
prv_counts() { # backend -> "N tests: P PASS, F FAIL, S SKIP"
	local t=$LAB_SDIR/conf-$1.tsv
	printf '%s tests: %s PASS, %s FAIL, %s SKIP' "$(wc -l <"$t")" \
		"$(awk -F'\t' '$2=="PASS"' "$t" | wc -l)" "$(awk -F'\t' '$2=="FAIL"' "$t" | wc -l)" \
		"$(awk -F'\t' '$2=="SKIP"' "$t" | wc -l)"
}

scenario_main() {
	if ! pr_tool_ready; then
		skip "PR on the virtual LUN" "no vlun-pr in the lab share (build tools/vlun-pr)"
		return 0
	fi
	trap pr_cleanup EXIT
	FENCE_LBA=4096
	pr_patterns

	step "LUNs: LIO fileio and $VB, each on its own target with portals $P1 and $P2"
	must mkdir -p "$CONF_DIR"
	must truncate -s "$CONF_SIZE" "$CONF_DIR/fileio.img"
	case $VB in
	vlun)
		must pool_create pool0 384M 2
		must vlunctl vdisk create "$POOL_DIR" conf --size "$CONF_SIZE" --thin ;;
	qcow) must qemu-img create -q -f qcow2 "$CONF_DIR/qcow.qcow2" "$CONF_SIZE" ;;
	esac
	[ "$VB" = fileio ] || must runner_start
	local out b t
	t=$(conf_tgt "$VB")
	out=$({ conf_targetcli_batch
		echo "/iscsi/$t/tpg1/acls create $INI"
		echo "/iscsi/$t/tpg1/acls create $INI2"; } | tcli)
	echo "$out"
	for b in $CONF_BACKENDS; do
		must test -n "$(conf_dev "$b")"
	done
	must wait_for 10 sh -c "ss -ltn | grep -q '$P1:3260 ' && ss -ltn | grep -q '$P2:3260 '"
	dpkg-query -W libiscsi-bin tcmu-runner targetcli-fb multipath-tools sg3-utils >"$LAB_SDIR/versions.txt" 2>&1
	uname -r >>"$LAB_SDIR/versions.txt"

	# ------------------------------------------------------------ libiscsi
	step "iscsi-test-cu -t $CONF_TESTS against $CONF_BACKENDS at once"
	local pids=() t0
	t0=$(lab_uptime)
	for b in $CONF_BACKENDS; do
		echo "+ $(conf_cmdline "$b")"
		conf_exec "$b" &
		pids+=($!)
	done
	wait "${pids[@]}"
	say "      done in $(_lab_t "$t0")s"
	for b in $CONF_BACKENDS; do
		conf_report "$b"
		fact "libiscsi PR families on $b: $(prv_counts "$b"); CUnit: $(cat "$LAB_SDIR/conf-$b.summary")"
		check "$b: the PR families ran (more than 20 tests)" test "$(wc -l <"$LAB_SDIR/conf-$b.tsv")" -gt 20
	done
	if [ "$VB" != fileio ]; then
		show prv_regressions
		check "$VB fails no PR test that fileio passes (racy, not compared: $CONF_RACY)" prv_regressions
		check "$VB passes every PERSISTENT RESERVE IN/OUT test" \
			eq "$(grep -E '^(Prin|Prout)' "$LAB_SDIR/conf-$VB.tsv" | awk -F'\t' '$2 != "PASS"' | cut -f1 | paste -sd' ')" ""
	fi

	# ------------------------------------------------------------ host side
	step "host1 logs in to the $VB LUN on both portals (one map), node 2 ($INI2) on $P1"
	must iscsi_setup
	local h2 dev=/dev/mapper/$MAP h1a h1b
	h2=$(pr_node2_login "$t")
	must test -b "$h2"
	must pr_mpath_start "${h2#/dev/}"
	must iscsiadm -m discovery -t sendtargets -p "$P1:3260" -I default
	must iscsiadm -m node -T "$t" -p "$P1:3260" -I default --login
	must iscsiadm -m node -T "$t" -p "$P2:3260" -I default --login
	udevadm settle
	must wait_for 30 sh -c "[ \$(multipath -ll $MAP 2>/dev/null | grep -c 'active ready running') = 2 ]"
	h1a=/dev/$(mpath_paths | sed -n 1p); h1b=/dev/$(mpath_paths | sed -n 2p)
	show multipath -ll "$MAP"
	say "      host1: $dev ($h1a $h1b)   node 2: $h2"
	check "no key registered on the LUN before" eq "$(keys_line "$h2")" ""

	step "host1: vlun-pr hold --mode exclusive on the map"
	must hold_bg h1-excl "$dev" --mode exclusive --key $K1 --interval 2 --multipathd no
	local H1=$HOLD_PID
	show "$PR" show "$dev"
	check "every path of the map registered with K1 (READ KEYS by node 2)" eq "$(key_count "$h2" $K1)" 2
	check "Write Exclusive - Registrants Only held by K1" eq "$(pr_holder "$h2") $(resv_type "$h2")" \
		"$(hexkey $K1) Write Exclusive, registrants only"
	check "host1 writes through $h1a and $h1b" contains "$(raw_write "$h1a") $(raw_write "$h1b")" 'Good.*Good'
	check "host1 writes through the map" dd if=/tmp/patB of="$dev" bs=512 seek=16 count=1 oflag=direct conv=notrunc status=none
	check "node 2 (unregistered) cannot write" contains "$(raw_write "$h2")" 'Reservation Conflict'
	check "node 2 reads" contains "$(raw_read "$h2")" 'Good'
	check "node 2 exclusive is refused (exit 4)" contains "$(prx hold "$h2" --mode exclusive --key $K2 -- true)" 'exit 4$'

	step "node 2 takes over with PREEMPT AND ABORT of K1 while host1 writes B through the map"
	rm -f /tmp/stop-writer
	fenced_writer "$dev" "$LAB_SDIR/h1-writer.log" &
	local WPID=$! tpre
	must wait_for 20 sh -c "grep -q ' ok ' $LAB_SDIR/h1-writer.log"
	sleep 2
	check "preempt-and-abort by node 2 succeeds" contains "$(prx preempt "$h2" --key $K2 --victim $K1 --abort)" 'exit 0$'
	tpre=$(lab_uptime)
	check "K2 holds the reservation, no K1 left" eq "$(pr_holder "$h2") $(key_count "$h2" $K1)" "$(hexkey $K2) 0"
	check "host1's vlun-pr notices it is fenced" wait_for 15 sh -c "! kill -0 $H1"
	wait $H1
	check "... and exits 8 (fenced)" eq "$?" 8
	cat "$LAB_SDIR/h1-excl.log"
	check "node 2 writes A over LBAs $FENCE_LBA+$FENCE_N while host1's writer goes on" \
		dd if=/tmp/patA64 of="$h2" bs=512 seek=$FENCE_LBA count=$FENCE_N oflag=direct conv=notrunc status=none
	sleep 4
	touch /tmp/stop-writer
	wait $WPID
	show sh -c "awk '{ n[\$2]++ } END { for (k in n) print k, n[k] }' $LAB_SDIR/h1-writer.log"
	fact "fenced writer on $VB: $(grep -c ' ok ' "$LAB_SDIR/h1-writer.log") writes ok before the takeover, $(writes_failed_after "$LAB_SDIR/h1-writer.log" "$tpre") failed after it"
	check "host1's writer kept trying after the takeover, and failed" test "$(writes_failed_after "$LAB_SDIR/h1-writer.log" "$tpre")" -gt 0
	check "no write host1 issued after the takeover succeeded" eq "$(writes_ok_after "$LAB_SDIR/h1-writer.log" "$tpre")" 0
	check "the region holds only node 2's A (read by node 2)" eq "$(region_not_a "$h2")" 0
	check "... and the same through host1's map" eq "$(region_not_a "$dev")" 0
	check "node 2 releases (exit 0), nothing left" eq "$(prx release "$h2" --key $K2 | tail -n1) $(keys_line "$h2")/$(pr_holder "$h2")" "exit 0 /"

	# ------------------------------------------------------------ mpathpersist
	step "mpathpersist on the map: register K3 (multipathd's reservation_key file) and reserve"
	must mpp --out --register --param-sark=$K3 "$dev"
	must mpp --out --reserve --param-rk=$K3 --prout-type=5 "$dev"
	show mpp --in --read-keys "$dev"
	show mpp --in --read-reservation "$dev"
	check "mpathpersist registered both paths with K3" eq "$(key_count "$h2" $K3)" 2
	check "mpathpersist sees its reservation (type 5, K3)" contains "$(mpp --in --read-reservation "$dev")" "$(hexkey $K3)"
	check "multipathd manages K3 for the map" contains "$(multipathd getprkey map "$MAP")" "^$(hexkey $K3)"
	check "node 2 (unregistered) cannot write" contains "$(raw_write "$h2")" 'Reservation Conflict'
	check "vlun-pr with another key does not fight multipathd (exit 4)" \
		contains "$(prx hold "$dev" --mode exclusive --key $K1 -- true)" 'exit 4$'
	out=$(prx hold "$dev" --mode exclusive -- dd if=/tmp/patB of="$dev" bs=512 seek=16 count=1 oflag=direct conv=notrunc status=none)
	echo "$out"
	check "vlun-pr adopts multipathd's key, is admitted to its own reservation, and writes" contains "$out" 'exit 0$'
	check "... saying so" contains "$out" "using multipathd's reservation key"
	check "after vlun-pr's hold: no key, no reservation (mpathpersist)" \
		eq "$(keys_line "$h2")/$(pr_holder "$h2")" "/"
}
