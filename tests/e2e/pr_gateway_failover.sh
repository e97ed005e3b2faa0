# suites: pr
# summary: HA takeover of a vlun pool on multipathed physical LUNs: the gateway (tcmu-runner) registered on every path, node 2 takes over (vlunctl pool takeover), the gateway is fenced and none of its writes lands
#
# Issue 6, items 3 and 5, end to end. Two LIO fileio LUNs ("physical
# LUNs") on their own iSCSI target with two portals. Gateway node 1 is
# this guest's kernel initiator ($INI) on both portals: one multipath map
# per LUN, and a vlun pool over the two maps, exported by tcmu-runner
# (node id gw1) as the vLUN $TGT, which the host (the same kernel
# initiator) logs in to. Node 2 is an open-iscsi iface with its own
# initiator name ($INI2) on one portal: its own I_T nexuses to both LUNs,
# plain SCSI disks (blacklisted in multipathd) — what a second gateway
# sees. The pool's PR mode is the default, shared (Write Exclusive - All
# Registrants); lib/node.c and docs/pr.md describe the lock.
#
#   1. the gateway has every path of both LUNs registered with gw1's key;
#   2. the host writes A to a region of the vLUN; a writer keeps writing B
#      there through the vLUN (sg_raw, no retries);
#   3. node 2: vlunctl pool takeover <its disks> --node-id gw2 = PREEMPT
#      AND ABORT of gw1's key on every member, epoch + 1;
#   4. node 2, now the owner, writes A over the region on its own paths
#      (at the offsets of the vdisk's map); the gateway's writes fail
#      (RESERVATION CONFLICT on the member -> FENCED -> NOT READY to the
#      host), a write to an unallocated region allocates nothing, and by
#      content (read by node 2) none of the gateway's B writes landed.

. /lab/guest/pr.sh

PTGT=iqn.2003-01.org.vlun.lab:gwphys
GW_SIZE=64M
FENCE_LBA=2048 FENCE_N=64            # the written region (chunk 1 of the thin vdisk)
FRESH_LBA=16384                      # a region nobody wrote before the takeover

# the multipath map whose product is $1 (the fileio backstore name)
map_of() { multipath -ll 2>/dev/null | awk -v p="LIO-ORG,$1" '$0 ~ p { print $1; exit }'; }

# WRITE(10) of one block of B at LBA through a vLUN path; "Good" or what
# sg_raw said (status and sense)
gw_write() { # dev lba
	local out rc
	out=$(sg_raw -s 512 -i /tmp/patB "$1" 2a 00 $(printf '%02x %02x %02x %02x' $(($2 >> 24 & 255)) $(($2 >> 16 & 255)) $(($2 >> 8 & 255)) $(($2 & 255))) 00 00 01 00 2>&1)
	rc=$?
	if [ $rc = 0 ]; then echo Good; return 0; fi
	echo "$out" | grep -iE 'status|sense|not ready|standby|conflict' | paste -sd' '
	return 1
}
# the host's writer: B blocks over the region through vLUN path DEV until
# /tmp/stop-writer; "<uptime issued> ok|fail <lba> [what]" per write
gw_writer() { # dev log
	local i=0 lba t out
	while [ ! -e /tmp/stop-writer ]; do
		lba=$((FENCE_LBA + i % FENCE_N))
		t=$(lab_uptime)
		if out=$(gw_write "$1" $lba); then echo "$t ok $lba"; else echo "$t fail $lba $out"; fi
		i=$((i + 1))
		sleep 0.1
	done >"$2"
}

# vdisk sectors [S, S+N) as node 2 reads them from its own paths: the
# extent map from vlunctl (read-only open: no PR command), the bytes from
# the member with O_DIRECT; prints "unmapped" for a hole
node2_read() { # spec vdisk S N
	local loc
	loc=$(vlunctl vdisk show "$1" "$2" --json | python3 -c '
import json, sys
d = json.load(sys.stdin); s = int(sys.argv[1]); n = int(sys.argv[2])
for e in d["extents"]:
    if e["vsector"] <= s and s + n <= e["vsector"] + e["nsectors"]:
        if e["member_path"] is None: break
        print(e["member_path"], e["psector"] + s - e["vsector"]); sys.exit(0)
print("unmapped")' "$3" "$4") || return 1
	if [ "$loc" = unmapped ]; then echo unmapped; return 0; fi
	set -- $loc "$4"
	dd if="$1" bs=512 skip="$2" count="$3" iflag=direct status=none
}

# node 2 writes /tmp/patA64 over the vdisk's sectors [FENCE_LBA, +FENCE_N)
# on its own path to the member (it owns the pool now; PR lets it write)
node2_write_a() { # spec vdisk
	local loc
	loc=$(vlunctl vdisk show "$1" "$2" --json | python3 -c '
import json, sys
d = json.load(sys.stdin); s = int(sys.argv[1]); n = int(sys.argv[2])
for e in d["extents"]:
    if e["vsector"] <= s and s + n <= e["vsector"] + e["nsectors"] and e["member_path"] is not None:
        print(e["member_path"], e["psector"] + s - e["vsector"]); sys.exit(0)
sys.exit(1)' $FENCE_LBA $FENCE_N) || { echo "no extent under the region"; return 1; }
	set -- $loc
	echo "member $1 sector $2"
	dd if=/tmp/patA64 of="$1" bs=512 seek="$2" count=$FENCE_N oflag=direct conv=notrunc status=none
}

gw_cleanup() {
	pr_cleanup
	iscsiadm -m node -T "$TGT" --logout >/dev/null 2>&1
	gateway_down "$PTGT"
}

scenario_main() {
	if [ "$LAB_BACKEND" != vlun ]; then
		skip "gateway failover" "needs the vlun backend (LAB_BACKEND=$LAB_BACKEND)"
		return 0
	fi
	if ! vlunctl help 2>&1 | grep -q 'pool takeover'; then
		skip "gateway failover" "this vlunctl has no 'pool takeover' (engine HA not in the build)"
		return 0
	fi
	pr_tool_ready || true
	trap gw_cleanup EXIT
	pr_patterns
	local KG1 KG2
	KG1=$("$PR" key --node-id gw1) KG2=$("$PR" key --node-id gw2)
	KG1=$(hexkey "$KG1") KG2=$(hexkey "$KG2")
	say "      keys: gw1 $KG1, gw2 $KG2"

	step "tcmu-runner (gateway node gw1) first: targetcli would start a stock one through D-Bus"
	must mkdir -p /etc/vlun
	echo gw1 >/etc/vlun/node-id
	must runner_start

	step "two LIO fileio LUNs (the physical LUNs) on $PTGT, portals $P1 and $P2"
	must phys_luns_export "$PTGT" "$P1" "$P2" "$INI" "$INI2"

	local out
	step "node 2 ($INI2) on $P1: its own paths to both LUNs; gateway node 1 on both portals, one map per LUN"
	must iscsi_setup
	local n2 n2a n2b
	n2=$(pr_node2_login "$PTGT" 2)
	echo "node 2: $n2"
	n2a=$(sed -n 1p <<<"$n2"); n2b=$(sed -n 2p <<<"$n2")
	must test -b "$n2a"
	must test -b "$n2b"
	must pr_mpath_start $n2
	must iscsiadm -m discovery -t sendtargets -p "$P1:3260" -I default
	must iscsiadm -m node -T "$PTGT" -p "$P1:3260" -I default --login
	must iscsiadm -m node -T "$PTGT" -p "$P2:3260" -I default --login
	udevadm settle
	must wait_for 30 sh -c "[ \$(multipath -ll 2>/dev/null | grep -c 'active ready running') = 4 ]"
	local m0 m1
	m0=$(map_of plun0); m1=$(map_of plun1)
	show multipath -ll
	must test -b "/dev/mapper/$m0"
	must test -b "/dev/mapper/$m1"
	# node 2's disks in the order of the maps' LUNs
	local spec1="/dev/mapper/$m0,/dev/mapper/$m1" spec2
	if [ "$(sg_inq "$n2a" 2>/dev/null | sed -n 's/.*Product identification: *//p')" = plun1 ]; then
		spec2="$n2b,$n2a"
	else
		spec2="$n2a,$n2b"
	fi
	say "      gateway members: $spec1   node 2 sees them as: $spec2"

	step "pool over the two maps (node gw1), thin vdisk, exported by tcmu-runner as $TGT; the host logs in"
	must vlunctl pool create gw "/dev/mapper/$m0" "/dev/mapper/$m1"
	must vlunctl vdisk create "$spec1" vd0 --size "$GW_SIZE" --thin
	# the cfgstring names the members by a glob: LIO splits a TCMU device's
	# dev_config at commas, so a comma list cannot reach the handler
	local gspec="/dev/mapper/mpath[${m0#mpath}${m1#mpath}]"
	must test "$(ls -d $gspec | sort | paste -sd,)" = "$(tr , '\n' <<<"$spec1" | sort | paste -sd,)"
	out=$({ echo "/backstores/user:vlun create name=vd0 size=$GW_SIZE cfgstring=$gspec/vd0 hw_max_sectors=2048"
		target_export_cmds /backstores/user:vlun/vd0; } | tcli)
	echo "$out"
	must test -n "$(configfs_dev vd0)"
	must target_ok
	must iscsiadm -m discovery -t sendtargets -p "$P1:3260" -I default
	must iscsiadm -m node -T "$TGT" -p "$P1:3260" -I default --login
	udevadm settle
	# the host uses the vLUN's SCSI disk (INQUIRY product "vlun") directly:
	# sg_raw shows the gateway's status and sense as they are, where
	# dm-multipath would retry or queue
	local hv
	must wait_for 30 sh -c "lsblk -ndo NAME,TRAN,MODEL | awk '\$2 == \"iscsi\" && \$3 == \"vlun\"' | grep -q ."
	hv=/dev/$(lsblk -ndo NAME,TRAN,MODEL | awk '$2 == "iscsi" && $3 == "vlun" { print $1; exit }')
	must test -b "$hv"
	say "      host: $hv"

	step "the gateway holds the members: every path registered with gw1's key"
	show vlunctl pool nodes "$spec1"
	show "$PR" show "/dev/mapper/$m0"
	local m
	for m in "$n2a" "$n2b"; do
		check "$m: gw1's key on both gateway paths (READ KEYS by node 2)" eq "$(key_count "$m" "$KG1")" 2
		check "$m: Write Exclusive - All Registrants (pool mode shared)" eq "$(resv_type "$m")" "Write Exclusive, all registrants"
	done
	check "vlunctl pool nodes: gw1 is the owner" contains "$(vlunctl pool nodes "$spec1")" 'gw1.*owner'

	step "the host writes A through the vLUN; a writer keeps writing B there"
	check "host writes A over vLUN LBAs $FENCE_LBA+$FENCE_N" \
		dd if=/tmp/patA64 of="$hv" bs=512 seek=$FENCE_LBA count=$FENCE_N oflag=direct conv=notrunc status=none
	check "node 2 reads A from its own paths at the vdisk's map" eq "$(node2_read "$spec2" vd0 $FENCE_LBA $FENCE_N | tr -d A | wc -c)" 0
	check "before the takeover the gateway writes" eq "$(gw_write "$hv" $FENCE_LBA)" Good
	must dd if=/tmp/patA of="$hv" bs=512 seek=$FENCE_LBA count=1 oflag=direct conv=notrunc status=none
	rm -f /tmp/stop-writer
	gw_writer "$hv" "$LAB_SDIR/gw-writer.log" &
	local WPID=$! tpre
	sleep 3
	show cat "$LAB_SDIR/gw-writer.log"

	step "node 2 takes over: vlunctl pool takeover $spec2 --node-id gw2"
	out=$(vlunctl pool takeover "$spec2" --node-id gw2 2>&1; echo "exit $?")
	tpre=$(lab_uptime)
	echo "$out"
	check "takeover succeeds" contains "$out" 'exit 0$'
	for m in "$n2a" "$n2b"; do
		check "$m: no gw1 key left, gw2's key registered" eq "$(key_count "$m" "$KG1") $(key_count "$m" "$KG2")" "0 1"
	done
	show vlunctl pool nodes "$spec2"
	check "vlunctl pool nodes: gw2 is the owner" contains "$(vlunctl pool nodes "$spec2")" 'gw2.*owner'

	step "the gateway is fenced: its writes fail, nothing of them lands"
	check "node 2, the new owner, writes A over the region on its own paths" node2_write_a "$spec2" vd0
	sleep 5
	check "a gateway write now fails NOT READY (fenced)" contains "$(gw_write "$hv" $FENCE_LBA)" 'not ready|standby'
	check "a write to an unallocated region fails too" contains "$(gw_write "$hv" $FRESH_LBA)" 'not ready|standby'
	touch /tmp/stop-writer
	wait $WPID
	show sh -c "awk '{ n[\$2]++ } END { for (k in n) print k, n[k] }' $LAB_SDIR/gw-writer.log"
	fact "gateway writer: $(grep -c ' ok ' "$LAB_SDIR/gw-writer.log") writes ok before the takeover, $(writes_failed_after "$LAB_SDIR/gw-writer.log" "$tpre") failed after it; first failure: $(grep -m1 ' fail ' "$LAB_SDIR/gw-writer.log" | cut -d' ' -f4-)"
	check "the gateway's writer kept trying after the takeover, and failed" test "$(writes_failed_after "$LAB_SDIR/gw-writer.log" "$tpre")" -gt 0
	check "no write the gateway got after the takeover succeeded" eq "$(writes_ok_after "$LAB_SDIR/gw-writer.log" "$tpre")" 0
	check "by content: the region holds only node 2's A, none of the gateway's B (read by node 2)" \
		eq "$(node2_read "$spec2" vd0 $FENCE_LBA $FENCE_N | tr -d A | wc -c)" 0
	check "the unallocated region stays unallocated (no commit by the fenced gateway)" \
		eq "$(node2_read "$spec2" vd0 $FRESH_LBA 8)" unmapped
	sleep 4
	for m in "$n2a" "$n2b"; do
		check "$m: the fenced gateway did not register gw1's key again" eq "$(key_count "$m" "$KG1")" 0
	done
	show "$PR" show "$n2a"
	show vlunctl pool nodes "$spec2"
	show sh -c "grep -iE 'fenc|preempt|conflict|lock' $LAB_SDIR/tcmu-runner0.log | tail -n 20"
	check "tcmu-runner's log says the gateway is fenced" file_contains "$LAB_SDIR/tcmu-runner0.log" 'fenced'
}
