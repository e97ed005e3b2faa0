# suites: e2e
# summary: two hosts share the vdisk; host1 fences host2 with PREEMPT under Write Exclusive - Registrants Only
#
# What a cluster does with SCSI-3 PR on a shared LUN: host1 (both paths)
# and host2 register, host1 reserves Write Exclusive - Registrants Only, so
# both may write; then host1 preempts host2's key: host2's writes must get
# RESERVATION CONFLICT, its reads still work, host1 writes on both paths.
# host2 is an open-iscsi iface with its own initiator name (LIO does not
# separate I_T nexuses of one IQN). No multipathd here: it would merge
# host2's path into host1's map.

KEY1=0x1111aaaa
KEY2=0x2222bbbb

iscsi_disks() { lsblk -ndo NAME,TRAN | awk '$2 == "iscsi" { print $1 }' | sort; }

# raw WRITE(10)/READ(10) of LBA 16 (sg_raw: no page cache, no retries);
# prints "SCSI Status: Good" only when sg_raw succeeded, else the status it
# reported (or why it failed)
raw_io() { # dev "sg_raw options" cdb-bytes...
	local dev=$1 opts=$2 out rc; shift 2
	sg_turs "$dev" >/dev/null 2>&1; sg_turs "$dev" >/dev/null 2>&1   # pending UAs
	out=$(sg_raw $opts "$dev" "$@" 2>&1); rc=$?
	if [ $rc = 0 ]; then echo "SCSI Status: Good"; return; fi
	grep -oE 'SCSI Status: [A-Za-z ]+' <<<"$out" || echo "sg_raw failed (exit $rc): $out"
}
raw_write() { raw_io "$1" "-s 512 -i /tmp/zero512" 2a 00 00 00 00 10 00 00 01 00; }
raw_read() { raw_io "$1" "-r 512" 28 00 00 00 00 10 00 00 01 00; }

scenario_main() {
	if [ "$LAB_BACKEND" = vlun ]; then
		step "pool on two members and a thin virtual disk (vlunctl)"
		must pool_create pool0 256M 2
		must vlunctl vdisk create "$POOL_DIR" vdisk0 --size 256M --thin
	else
		step "backing store for $LAB_BACKEND"
		must backing_prepare vdisk0 256M
	fi
	step "tcmu-runner, backstore and target on $P1 and $P2"
	must runner_start
	local out
	out=$({ backstore_create_cmd vdisk0 256M; target_export_cmds "$(backstore_path vdisk0)"; } | tcli)
	echo "$out"
	must target_ok

	step "host1 logs in on both portals, host2 (iface host2, $INI2) on $P1"
	must iscsi_setup
	must iscsi_login
	must wait_for 10 sh -c "[ \$(lsblk -ndo TRAN | grep -c iscsi) = 2 ]"
	local h1a h1b h2
	h1a=/dev/$(iscsi_disks | sed -n 1p); h1b=/dev/$(iscsi_disks | sed -n 2p)
	must iscsiadm -m iface -I host2 -o new
	must iscsiadm -m iface -I host2 -o update -n iface.initiatorname -v "$INI2"
	must iscsiadm -m discovery -t sendtargets -p "$P1:3260" -I host2
	must iscsiadm -m node -T "$TGT" -p "$P1:3260" -I host2 --login
	udevadm settle
	must wait_for 10 sh -c "[ \$(lsblk -ndo TRAN | grep -c iscsi) = 3 ]"
	h2=/dev/$(iscsi_disks | grep -vx -e "${h1a#/dev/}" -e "${h1b#/dev/}")
	show iscsiadm -m session -P 3
	say "      host1: $h1a $h1b   host2: $h2"
	dd if=/dev/zero of=/tmp/zero512 bs=512 count=1 status=none

	step "register host1 (both paths) and host2; host1 reserves Write Exclusive - Registrants Only"
	must sgp --out --register --param-sark=$KEY1 "$h1a"
	must sgp --out --register --param-sark=$KEY1 "$h1b"
	must sgp --out --register --param-sark=$KEY2 "$h2"
	must sgp --out --reserve --param-rk=$KEY1 --prout-type=5 "$h1a"
	show sgp --in --read-full-status "$h2"
	check "host2 sees three registrations" eq "$(pr_keys "$h2" | sort | paste -sd' ')" "$KEY1 $KEY1 $KEY2"
	check "host2 sees host1's reservation" eq "$(pr_holder "$h2")" "$KEY1"
	check "host2, registered, may write" contains "$(raw_write "$h2")" 'Good'

	step "host1 fences host2: PREEMPT of host2's key"
	must sgp --out --preempt --param-rk=$KEY1 --param-sark=$KEY2 --prout-type=5 "$h1a"
	show sgp --in --read-full-status "$h1b"
	check "only host1's keys remain" eq "$(pr_keys "$h1b" | paste -sd' ')" "$KEY1 $KEY1"
	check "fenced host2 cannot write (RESERVATION CONFLICT)" contains "$(raw_write "$h2")" 'Reservation Conflict'
	check "fenced host2 can still read" contains "$(raw_read "$h2")" 'Good'
	check "host1 writes through $h1a" contains "$(raw_write "$h1a")" 'Good'
	check "host1 writes through $h1b" contains "$(raw_write "$h1b")" 'Good'

	step "host1 releases and clears"
	must sgp --out --clear --param-rk=$KEY1 "$h1a"
	check "no key left" eq "$(pr_keys "$h2")" ""
	check "host2 may write again" contains "$(raw_write "$h2")" 'Good'
}
