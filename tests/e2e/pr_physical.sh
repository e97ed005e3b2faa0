# suites: pr
# summary: vlun-pr on a multipathed physical LUN (LIO fileio, 2 portals): every mode row, a second node, preempt-and-abort fencing by content, path re-registration, multipathd's reservation_key
#
# The physical-LUN side of persistent reservations (lib/prmap, tools/vlun-pr;
# docs/pr.md). A LIO fileio LUN on its own iSCSI target, two portals; host1
# (the kernel initiator) logs in on both and multipathd builds one map;
# "node 2" is an open-iscsi iface with its own initiator name on one portal
# (LIO does not tell sessions of one IQN apart), blacklisted in multipathd so
# it stays a plain SCSI disk. Independent of LAB_BACKEND: the LUN is LIO's.

. /lab/guest/pr.sh

PTGT=iqn.2003-01.org.vlun.lab:plun

# the scenario's own sessions and holds (lab_teardown knows only $TGT)
pr_phys_cleanup() {
	pr_cleanup
	iscsiadm -m node -T "$PTGT" --logout >/dev/null 2>&1
	return 0
}

scenario_main() {
	if ! pr_tool_ready; then
		skip "vlun-pr on a physical LUN" "no vlun-pr in the lab share (build tools/vlun-pr)"
		return 0
	fi
	trap pr_phys_cleanup EXIT

	step "LIO fileio LUN on target $PTGT, portals $P1 and $P2"
	mkdir -p /var/lib/lab
	must truncate -s 64M /var/lib/lab/plun.img
	local out
	out=$(tcli <<-EOC
	/backstores/fileio create name=plun file_or_dev=/var/lib/lab/plun.img size=64M write_back=false
	/iscsi create $PTGT
	/iscsi/$PTGT/tpg1/luns create /backstores/fileio/plun
	/iscsi/$PTGT/tpg1/portals create $P1 3260
	/iscsi/$PTGT/tpg1/portals create $P2 3260
	/iscsi/$PTGT/tpg1/acls create $INI
	/iscsi/$PTGT/tpg1/acls create $INI2
	/iscsi/$PTGT/tpg1 set attribute authentication=0
	EOC
	)
	echo "$out"
	must test -d "/sys/kernel/config/target/iscsi/$PTGT/tpgt_1/lun/lun_0"

	step "node 2 ($INI2) logs in on $P1; host1 on both portals; one multipath map"
	must iscsi_setup
	must iscsiadm -m iface -I host2 -o new
	must iscsiadm -m iface -I host2 -o update -n iface.initiatorname -v "$INI2"
	must iscsiadm -m discovery -t sendtargets -p "$P1:3260" -I host2
	must iscsiadm -m node -T "$PTGT" -p "$P1:3260" -I host2 --login
	udevadm settle
	must wait_for 10 sh -c "[ \$(lsblk -ndo TRAN | grep -c iscsi) = 1 ]"
	local h2; h2=/dev/$(iscsi_disks)
	must pr_mpath_start "${h2#/dev/}"
	must iscsiadm -m discovery -t sendtargets -p "$P1:3260" -I default
	must iscsiadm -m node -T "$PTGT" -p "$P1:3260" -I default --login
	must iscsiadm -m node -T "$PTGT" -p "$P2:3260" -I default --login
	udevadm settle
	must wait_for 30 sh -c "[ \$(multipath -ll $MAP 2>/dev/null | grep -c 'active ready running') = 2 ]"
	local dev=/dev/mapper/$MAP h1a h1b
	h1a=/dev/$(mpath_paths | sed -n 1p); h1b=/dev/$(mpath_paths | sed -n 2p)
	show multipath -ll "$MAP"
	say "      host1: $dev ($h1a $h1b)   node 2: $h2"
	pr_patterns

	# ---------------------------------------------------------------- exclusive
	step "exclusive: host1 holds $dev (daemon, no multipathd key)"
	must hold_bg h1-excl "$dev" --mode exclusive --key $K1 --interval 2 --multipathd no
	local H1=$HOLD_PID
	show "$PR" show "$dev"
	check "every path of the map registered with K1" eq "$(key_count "$h1a" $K1)" 2
	check "reservation Write Exclusive - Registrants Only, held by K1" eq "$(pr_holder "$h1b") $(resv_type "$h1b")" \
		"$(printf '%x' $K1 | sed 's/^/0x/') Write Exclusive, registrants only"
	out=$("$PR" show "$dev" --json)
	echo "$out"
	# per path: K1 twice in keys and once as the holder
	check "vlun-pr show --json: both paths see K1 twice and we-ro" \
		test "$(grep -c '"we-ro"' <<<"$out")" = 2 -a "$(grep -c "\"$K1\"" <<<"$out")" = 6
	check "host1 writes through $h1a" contains "$(raw_write "$h1a")" 'Good'
	check "host1 writes through $h1b" contains "$(raw_write "$h1b")" 'Good'
	check "node 2 (unregistered) cannot write" contains "$(raw_write "$h2")" 'Reservation Conflict'
	check "node 2 exclusive is refused (exit 4)" contains "$(prx hold "$h2" --mode exclusive --key $K2 -- true)" 'exit 4$'
	check "node 2 shared is refused (exit 4)" contains "$(prx hold "$h2" --mode shared --key $K2 -- true)" 'exit 4$'
	check "node 2 readonly is admitted and can read" \
		contains "$(prx hold "$h2" --mode readonly --key $K2 -- dd if="$h2" bs=4k count=1 iflag=direct of=/dev/null)" 'exit 0$'
	check "node 2's readonly registration is gone after its command" eq "$(key_count "$h1a" $K2)" 0

	step "exclusive: a path logged out and back in is registered again"
	must iscsiadm -m node -T "$PTGT" -p "$P2:3260" -I default --logout
	must wait_for 20 sh -c "[ \$(multipath -ll $MAP 2>/dev/null | grep -c 'active ready running') = 1 ]"
	must iscsiadm -m node -T "$PTGT" -p "$P2:3260" -I default --login
	udevadm settle
	must wait_for 30 sh -c "[ \$(multipath -ll $MAP 2>/dev/null | grep -c 'active ready running') = 2 ]"
	local newp
	# host1's session on P2 (node 2 is on P1 only); a re-login may reuse
	# the sdX name and even the H:C:T:L
	newp=/dev/$(p2_disk "$PTGT")
	h1a=/dev/$(mpath_paths | sed -n 1p); h1b=/dev/$(mpath_paths | sed -n 2p)
	show multipath -ll "$MAP"
	say "      returning path: $newp"
	must test -b "$newp"
	check "vlun-pr registered the returning path ($newp)" wait_for 20 grep -q 'registered 1 returning path' "$LAB_SDIR/h1-excl.log"
	check "host1 writes through the returning path $newp" contains "$(raw_write "$newp")" 'Good'
	show "$PR" show "$dev"

	step "node 2 takes over with PREEMPT AND ABORT of K1 while host1 writes B through the map"
	check "node 2 writes A at LBA 16? not yet: conflict" contains "$(raw_write "$h2" /tmp/patA)" 'Reservation Conflict'
	rm -f /tmp/stop-writer
	fenced_writer "$dev" "$LAB_SDIR/h1-writer.log" &
	local WPID=$! tpre
	must wait_for 20 sh -c "grep -q ' ok ' $LAB_SDIR/h1-writer.log"
	sleep 2
	check "host1's writer writes B through the map before the takeover" test "$(grep -c ' ok ' "$LAB_SDIR/h1-writer.log")" -gt 0
	check "preempt-and-abort succeeds" contains "$(prx preempt "$h2" --key $K2 --victim $K1 --abort)" 'exit 0$'
	tpre=$(lab_uptime)
	show "$PR" show "$h2"
	check "K2 holds the reservation" eq "$(pr_holder "$h2")" "$(printf '0x%x' $K2)"
	check "no K1 registration is left" eq "$(key_count "$h2" $K1)" 0
	check "host1's vlun-pr notices it is fenced and exits" wait_for 15 sh -c "! kill -0 $H1"
	wait $H1
	check "... with exit status 8 (fenced)" eq "$?" 8
	cat "$LAB_SDIR/h1-excl.log"
	check "node 2 writes A over LBAs $FENCE_LBA+$FENCE_N while host1's writer goes on" \
		dd if=/tmp/patA64 of="$h2" bs=512 seek=$FENCE_LBA count=$FENCE_N oflag=direct conv=notrunc status=none
	sleep 4
	touch /tmp/stop-writer
	wait $WPID
	show sh -c "awk '{ n[\$2]++ } END { for (k in n) print k, n[k] }' $LAB_SDIR/h1-writer.log"
	fact "fenced writer (host1, through the map): $(grep -c ' ok ' "$LAB_SDIR/h1-writer.log") writes ok before the takeover, $(writes_failed_after "$LAB_SDIR/h1-writer.log" "$tpre") failed after it"
	check "host1's writer kept trying after the takeover, and failed" \
		test "$(writes_failed_after "$LAB_SDIR/h1-writer.log" "$tpre")" -gt 0
	check "no write host1 issued after the takeover succeeded" eq "$(writes_ok_after "$LAB_SDIR/h1-writer.log" "$tpre")" 0
	check "the region holds only node 2's A, none of host1's B (read by node 2)" eq "$(region_not_a "$h2")" 0
	check "... and the same read through host1's map" eq "$(region_not_a "$dev")" 0
	check "node 2 writes A at LBA 16" contains "$(raw_write "$h2" /tmp/patA)" 'Good'
	check "fenced host1: raw write of B through $h1a conflicts" contains "$(raw_write "$h1a" /tmp/patB)" 'Reservation Conflict'
	check "fenced host1: write of B through the map fails" sh -c "! dd if=/tmp/patB of=$dev bs=512 seek=16 count=1 oflag=direct conv=notrunc status=none"
	check "fenced host1: vlun-pr hold refuses to come back (exit 4)" contains "$(prx hold "$dev" --mode exclusive --key $K1 --multipathd no -- true)" 'exit 4$'
	check "LBA 16 holds node 2's A, none of host1's B (read by node 2)" contains "$(lba16 "$h2")" '^ *A +A +A'
	check "LBA 16 reads the same through host1's map" contains "$(lba16 "$dev")" '^ *A +A +A'
	check "node 2 releases (exit 0)" contains "$(prx release "$h2" --key $K2)" 'exit 0$'
	check "no key and no reservation left" eq "$(keys_line "$h1a")/$(pr_holder "$h1a")" "/"

	# ---------------------------------------------------------------- shared
	step "shared: host1 and node 2 share the LUN (Write Exclusive - All Registrants)"
	must hold_bg h1-shared "$dev" --mode shared --key $K1 --interval 2 --multipathd no
	H1=$HOLD_PID
	check "reservation Write Exclusive - All Registrants" eq "$(resv_type "$h1a")" "Write Exclusive, all registrants"
	check "both paths registered with K1" eq "$(key_count "$h1a" $K1)" 2
	check "node 2 shared is admitted and writes" \
		contains "$(prx hold "$h2" --mode shared --key $K2 -- sh -c "sg_turs $h2; sg_turs $h2; sg_raw -s 512 -i /tmp/pat0 $h2 2a 00 00 00 00 10 00 00 01 00")" 'exit 0$'
	check "node 2 exclusive is refused (exit 4)" contains "$(prx hold "$h2" --mode exclusive --key $K2 -- true)" 'exit 4$'
	check "node 2 readonly is admitted" contains "$(prx hold "$h2" --mode readonly --key $K2 -- true)" 'exit 0$'
	check "after node 2 left, only K1 remains, reservation kept" eq "$(keys_line "$h1a") $(resv_type "$h1a")" \
		"$(printf '0x%x 0x%x' $K1 $K1) Write Exclusive, all registrants"
	hold_stop $H1
	check "host1's shared hold ends cleanly (exit 0)" eq "$HOLD_RC" 0
	check "no key and no reservation left" eq "$(keys_line "$h1a")/$(pr_holder "$h1a")" "/"

	# ---------------------------------------------------------------- readonly
	step "readonly: register only"
	must hold_bg h1-ro "$dev" --mode readonly --key $K1 --interval 2 --multipathd no
	H1=$HOLD_PID
	check "both paths registered, no reservation" eq "$(key_count "$h1a" $K1)/$(pr_holder "$h1a")" "2/"
	check "node 2 exclusive is admitted beside a reader" contains "$(prx hold "$h2" --mode exclusive --key $K2 -- true)" 'exit 0$'
	check "node 2 holding Exclusive Access refuses a new reader (exit 4)" \
		contains "$(prx hold "$h2" --mode exclusive --type ea --key $K2 -- "$PR" hold "$dev" --mode readonly --key 0x4444 --multipathd no -- true)" 'exit 4$'
	hold_stop $H1
	check "host1's readonly hold ends cleanly (exit 0)" eq "$HOLD_RC" 0
	check "no key left" eq "$(keys_line "$h1a")" ""

	# ---------------------------------------------------------------- access variants
	step "exclusive --access: Exclusive Access - Registrants Only"
	must hold_bg h1-ea-ro "$dev" --mode exclusive --access --key $K1 --interval 2 --multipathd no
	H1=$HOLD_PID
	show "$PR" show "$dev"
	check "reservation Exclusive Access - Registrants Only, held by K1" eq "$(pr_holder "$h1a") $(resv_type "$h1a")" \
		"$(printf '0x%x' $K1) Exclusive Access, registrants only"
	check "host1 reads and writes through $h1b" contains "$(raw_read "$h1b") $(raw_write "$h1b")" 'Good.*Good'
	check "node 2 (unregistered) cannot even read" contains "$(raw_read "$h2")" 'Reservation Conflict'
	check "node 2 shared is refused (exit 4)" contains "$(prx hold "$h2" --mode shared --key $K2 -- true)" 'exit 4$'
	check "node 2 readonly is admitted and, registered, reads" \
		contains "$(prx hold "$h2" --mode readonly --key $K2 -- sh -c "sg_turs $h2; sg_turs $h2; sg_raw -r 512 $h2 28 00 00 00 00 10 00 00 01 00")" 'exit 0$'
	hold_stop $H1
	check "host1's hold ends cleanly (exit 0), nothing left" eq "$HOLD_RC $(keys_line "$h1a")/$(pr_holder "$h1a")" "0 /"

	step "shared --access: Exclusive Access - All Registrants"
	must hold_bg h1-ea-ar "$dev" --mode shared --access --key $K1 --interval 2 --multipathd no
	H1=$HOLD_PID
	check "reservation Exclusive Access - All Registrants, both paths K1" eq "$(resv_type "$h1a") $(key_count "$h1a" $K1)" \
		"Exclusive Access, all registrants 2"
	check "node 2 (unregistered) cannot read" contains "$(raw_read "$h2")" 'Reservation Conflict'
	check "node 2 shared --access joins and reads" \
		contains "$(prx hold "$h2" --mode shared --access --key $K2 -- sh -c "sg_turs $h2; sg_turs $h2; sg_raw -r 512 $h2 28 00 00 00 00 10 00 00 01 00")" 'exit 0$'
	check "node 2 exclusive is refused (exit 4)" contains "$(prx hold "$h2" --mode exclusive --key $K2 -- true)" 'exit 4$'
	hold_stop $H1
	check "host1's hold ends cleanly (exit 0), nothing left" eq "$HOLD_RC $(keys_line "$h1a")/$(pr_holder "$h1a")" "0 /"

	# ---------------------------------------------------------------- multipathd
	step "coexistence with multipathd's reservation_key (mpathpersist registers K3)"
	must mpp --out --register --param-sark=$K3 "$dev"
	show multipathd getprkey map "$MAP"
	check "multipathd manages K3 for the map" contains "$(multipathd getprkey map "$MAP")" "^$(printf '0x%x' $K3)"
	check "vlun-pr with another key is refused, does not fight (exit 4)" \
		contains "$(prx hold "$dev" --mode exclusive --key $K1 -- true)" 'exit 4$'
	must hold_bg h1-mpd "$dev" --mode exclusive --interval 2
	H1=$HOLD_PID
	check "vlun-pr adopted multipathd's key" file_contains "$LAB_SDIR/h1-mpd.log" "using multipathd's reservation key"
	check "reservation held by K3 (seen by mpathpersist)" contains "$(mpp --in --read-reservation "$dev")" "$(printf '0x%x' $K3)"
	check "both paths registered with K3 once each" eq "$(key_count "$h1a" $K3)" 2
	# a path that returns is registered by multipathd (prstatus set by
	# mpathpersist) and by vlun-pr's refresh, with the same key: still one
	# registration per I_T nexus
	must iscsiadm -m node -T "$PTGT" -p "$P2:3260" -I default --logout
	must wait_for 20 sh -c "[ \$(multipath -ll $MAP 2>/dev/null | grep -c 'active ready running') = 1 ]"
	show "$PR" show "$h2"
	must iscsiadm -m node -T "$PTGT" -p "$P2:3260" -I default --login
	udevadm settle
	must wait_for 30 sh -c "[ \$(multipath -ll $MAP 2>/dev/null | grep -c 'active ready running') = 2 ]"
	newp=/dev/$(p2_disk "$PTGT")
	say "      returning path: $newp"
	must test -b "$newp"
	# SCSI keeps the registration of the old I_T nexus (the new session
	# has a new ISID): READ KEYS may list K3 three times; what counts is
	# that the new nexus is registered, i.e. may write under K3's
	# registrants-only reservation
	check "the returning path $newp is registered with K3 again (writes under K3's we-ro)" \
		wait_for 20 sh -c "sg_turs $newp; sg_turs $newp; sg_raw -s 512 -i /tmp/pat0 $newp 2a 00 00 00 00 10 00 00 01 00"
	sleep 5
	show cat "$LAB_SDIR/h1-mpd.log"
	show "$PR" show "$dev"
	show mpp --in --read-keys "$dev"
	fact "multipathd + vlun-pr after a re-login: READ KEYS lists K3 $(key_count "$h2" $K3) times, no other key ($(keys_line "$h2"))"
	check "only K3 is registered, and K3 still holds the reservation" \
		eq "$(pr_keys "$h2" | sort -u | paste -sd' ') $(pr_holder "$h2")" "$(printf '0x%x 0x%x' $K3 $K3)"
	hold_stop $H1
	check "vlun-pr releases and unregisters (exit 0)" eq "$HOLD_RC" 0
	# the logged-out nexus's registration stays (SCSI keeps registrations
	# across I_T nexus loss; nobody can unregister a nexus that is gone)
	show mpp --in --read-keys "$dev"
	check "no reservation; only the dead nexus's K3 is left" eq "$(keys_line "$h1a")/$(pr_holder "$h1a")" "$(hexkey $K3)/"
	check "vlun-pr clear removes it (exit 0)" contains "$(prx clear "$dev" --key $K3 --multipathd no)" 'exit 0$'
	check "mpathpersist sees no key left" eq "$(mpp --in --read-keys "$dev" | grep -c '^ *0x')" 0
}
