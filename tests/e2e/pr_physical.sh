# suites: pr
# summary: vlun-pr on a multipathed physical LUN (LIO fileio, 2 portals): every mode row, a second node, preempt-and-abort fencing by content, path re-registration, multipathd's reservation_key
#
# The physical-LUN side of persistent reservations (lib/prmap, tools/vlun-pr;
# docs/pr.md). A LIO fileio LUN on its own iSCSI target, two portals; host1
# (the kernel initiator) logs in on both and multipathd builds one map;
# "node 2" is an open-iscsi iface with its own initiator name on one portal
# (LIO does not tell sessions of one IQN apart), blacklisted in multipathd so
# it stays a plain SCSI disk. Independent of LAB_BACKEND: the LUN is LIO's.

PTGT=iqn.2003-01.org.vlun.lab:plun
K1=0x1111aaaa1111aaaa       # host1
K2=0x2222bbbb2222bbbb       # node 2
K3=0x3333cccc3333cccc       # the key multipathd manages (mpathpersist)
PR=/usr/local/bin/vlun-pr

HOLDS=""
iscsi_disks() { lsblk -ndo NAME,TRAN | awk '$2 == "iscsi" { print $1 }' | sort; }
npaths() { multipath -ll "$MAP" 2>/dev/null | grep -c 'active ready running'; }

# sg_raw WRITE(10)/READ(10) of one block at LBA 16; "SCSI Status: Good" or
# what sg_raw reported
raw_io() { # dev "sg_raw options" cdb...
	local dev=$1 opts=$2 out rc; shift 2
	sg_turs "$dev" >/dev/null 2>&1; sg_turs "$dev" >/dev/null 2>&1   # pending UAs
	out=$(sg_raw $opts "$dev" "$@" 2>&1); rc=$?
	if [ $rc = 0 ]; then echo "SCSI Status: Good"; return; fi
	grep -oE 'SCSI Status: [A-Za-z ]+' <<<"$out" || echo "sg_raw failed (exit $rc): $out"
}
raw_write() { raw_io "$1" "-s 512 -i ${2:-/tmp/pat0}" 2a 00 00 00 00 10 00 00 01 00; }
lba16() { dd if="$1" bs=512 skip=16 count=1 iflag=direct status=none | od -An -c | head -n1; }

# keys through a path, as one line; how many times key $2 is registered
keys_line() { pr_keys "$1" | paste -sd' '; }
key_count() { pr_keys "$1" | grep -cx "$2"; }
# the reservation type as sg_persist names it (lib's pr_type also matches
# sg_persist's "Peripheral device type: disk" line)
resv_type() { sgp --in --read-reservation "$1" 2>/dev/null | sed -n 's/.*scope: .*type: *//p'; }

# vlun-pr hold in the background: hold_bg NAME args... ; sets HOLD_PID
hold_bg() {
	local name=$1; shift
	"$PR" hold "$@" >"$LAB_SDIR/$name.log" 2>&1 &
	HOLD_PID=$!
	HOLDS="$HOLDS $HOLD_PID"
	wait_for 30 grep -q 'vlun-pr: holding' "$LAB_SDIR/$name.log" || { cat "$LAB_SDIR/$name.log"; return 1; }
	cat "$LAB_SDIR/$name.log"
}
# stop a background hold with SIGTERM; prints its exit status
hold_stop() { # pid
	kill -TERM "$1" 2>/dev/null
	wait "$1"
	echo "exit $?"
}
# run a foreground vlun-pr; prints its output and "exit N"
prx() { "$PR" "$@" 2>&1; echo "exit $?"; }

# "H:C:T:L sdX" of the map's paths (a re-login is a new H:C:T:L)
mpath_hctl() { multipath -ll "$MAP" 2>/dev/null | grep -oE '[0-9]+:[0-9]+:[0-9]+:[0-9]+ sd[a-z]+' | sort; }

# the scenario's own sessions and holds (lab_teardown knows only $TGT)
pr_phys_cleanup() {
	local p
	for p in $HOLDS; do kill -TERM "$p" 2>/dev/null; done
	sleep 1
	iscsiadm -m node -T "$PTGT" --logout >/dev/null 2>&1
	return 0
}

pr_mpath_start() { # blacklisted-devnode
	mkdir -p /etc/multipath
	rm -f /etc/multipath/bindings /etc/multipath/wwids /etc/multipath/prkeys
	cat >/etc/multipath.conf <<-EOC
	defaults {
		user_friendly_names yes
		find_multipaths no
		reservation_key file
		polling_interval 2
	}
	blacklist {
		devnode "^vd[a-z]"
		devnode "^$1\$"
	}
	devices {
		device {
			vendor "LIO-ORG"
			product ".*"
			detect_prio no
			prio const
			hardware_handler "0"
			path_grouping_policy multibus
			no_path_retry 30
		}
	}
	EOC
	pgrep -x multipathd >/dev/null || multipathd || return 1
}

scenario_main() {
	if [ ! -x /lab/bin/vlun-pr ]; then
		skip "vlun-pr on a physical LUN" "no vlun-pr in the lab share (build tools/vlun-pr)"
		return 0
	fi
	install -m 0755 /lab/bin/vlun-pr "$PR"
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
	dd if=/dev/zero bs=512 count=1 status=none | tr '\0' 'A' >/tmp/patA
	dd if=/dev/zero bs=512 count=1 status=none | tr '\0' 'B' >/tmp/patB
	dd if=/dev/zero bs=512 count=1 status=none | tr '\0' 'C' >/tmp/pat0

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
	newp=/dev/$(iscsiadm -m session -P 3 2>/dev/null | awk -v p="$P2" '$0 ~ "Current Portal: " p ":" { f = 1 } f && /Attached scsi disk/ { print $4; exit }')
	h1a=/dev/$(mpath_paths | sed -n 1p); h1b=/dev/$(mpath_paths | sed -n 2p)
	show multipath -ll "$MAP"
	say "      returning path: $newp"
	must test -b "$newp"
	check "vlun-pr registered the returning path ($newp)" wait_for 20 grep -q 'registered 1 returning path' "$LAB_SDIR/h1-excl.log"
	check "host1 writes through the returning path $newp" contains "$(raw_write "$newp")" 'Good'

	step "node 2 takes over: PREEMPT AND ABORT of K1"
	check "node 2 writes A at LBA 16? not yet: conflict" contains "$(raw_write "$h2" /tmp/patA)" 'Reservation Conflict'
	check "preempt-and-abort succeeds" contains "$(prx preempt "$h2" --key $K2 --victim $K1 --abort)" 'exit 0$'
	show "$PR" show "$h2"
	check "K2 holds the reservation" eq "$(pr_holder "$h2")" "$(printf '0x%x' $K2)"
	check "no K1 registration is left" eq "$(key_count "$h2" $K1)" 0
	check "host1's vlun-pr notices it is fenced and exits 8" wait_for 15 sh -c "! kill -0 $H1"
	out=$(wait $H1; echo "exit $?")
	check "... with exit status 8" contains "$out" 'exit 8$'
	cat "$LAB_SDIR/h1-excl.log"
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
	out=$(hold_stop $H1)
	check "host1's shared hold ends cleanly (exit 0)" contains "$out" 'exit 0$'
	check "no key and no reservation left" eq "$(keys_line "$h1a")/$(pr_holder "$h1a")" "/"

	# ---------------------------------------------------------------- readonly
	step "readonly: register only"
	must hold_bg h1-ro "$dev" --mode readonly --key $K1 --interval 2 --multipathd no
	H1=$HOLD_PID
	check "both paths registered, no reservation" eq "$(key_count "$h1a" $K1)/$(pr_holder "$h1a")" "2/"
	check "node 2 exclusive is admitted beside a reader" contains "$(prx hold "$h2" --mode exclusive --key $K2 -- true)" 'exit 0$'
	check "node 2 holding Exclusive Access refuses a new reader (exit 4)" \
		contains "$(prx hold "$h2" --mode exclusive --type ea --key $K2 -- "$PR" hold "$dev" --mode readonly --key 0x4444 --multipathd no -- true)" 'exit 4$'
	out=$(hold_stop $H1)
	check "host1's readonly hold ends cleanly (exit 0)" contains "$out" 'exit 0$'
	check "no key left" eq "$(keys_line "$h1a")" ""

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
	out=$(hold_stop $H1)
	check "vlun-pr releases and unregisters (exit 0)" contains "$out" 'exit 0$'
	check "mpathpersist sees no key left" eq "$(keys_line "$h1a")" ""
}
