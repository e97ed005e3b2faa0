# suites: ha
# guests: 2
# summary: two tcmu-runner gateways (two lab guests) export one vlun vdisk with implicit ALUA; a host path failure moves I/O to gateway 2, which takes the lock (PREEMPT AND ABORT) and fences gateway 1; the path's return fails back; every byte checked through both gateways
#
# Issue 6, item 3, as tcmu-runner drives it: ALUA implicit failover between
# two gateway nodes that share the physical LUNs. Two QEMU guests
# (guest/pair.sh): this one (vlunlab1) and the peer (vlunlab2), each with
# its own kernel, LIO and tcmu-runner running handler_vlun.so.
#
#   storage  two LIO fileio LUNs on $PTGT, on this guest, portals
#            10.77.0.1 and 10.77.0.11 — the shared physical LUNs
#   gw1      this guest's tcmu-runner (node id gw1) over its own multipath
#            maps of the LUNs; exports vdisk vd0 as $TGT1 on 10.77.0.1,
#            ALUA group gw1 (id 1, implicit, active/optimized)
#   gw2      the peer's tcmu-runner (node id gw2, initiator $INI_GW2) over
#            its maps of the same LUNs (both portals, over the link);
#            exports vd0 as $TGT2 on 10.77.0.2, ALUA group gw2 (id 2,
#            implicit, active/non-optimized); same unit serial, so the
#            host sees one LU
#   host     this guest's kernel initiator: one dm-multipath map over both
#            gateways, path groups by ALUA priority (prio alua)
#
# tcmu-runner with implicit ALUA calls the handler's lock before the first
# write a gateway receives while it does not hold the lock (READs do not
# take it). vlun's lock = PREEMPT AND ABORT of the other node's key on
# every member, metadata reloaded, map epoch + 1 (lib/node.c, docs/pr.md).
#
#   1. writes through gw1 (the active/optimized group): gw1 takes the lock;
#   2. the host's path to gw1 fails (SCSI device offline) while fio writes
#      and verifies: I/O moves to gw2, gw2 takes the lock, gw1's key is
#      preempted and gw1 is fenced; fio sees no error;
#   3. the path comes back: the host fails back, gw1's next write takes the
#      lock again (reopen + reload: it serves gw2's allocations), gw2 is
#      fenced;
#   4. by content: the whole disk, read through the map, through gw1 alone
#      and through gw2 alone, equals an image of every write the host made.

. /lab/guest/pr.sh
. /lab/guest/pair.sh

PTGT=iqn.2003-01.org.vlun.lab:haphys
TGT1=iqn.2003-01.org.vlun.lab:vdisk-gw1
TGT2=iqn.2003-01.org.vlun.lab:vdisk-gw2
INI_GW2=iqn.2003-01.org.vlun.lab:gw2
HA_SIZE=64M
HA_WWN=6a1c0d2e-7b3f-4c51-9e8d-0f1a2b3c4d5e   # both backstores: one LU to the host
EXPECT=/var/lib/lab/expect.img                # every write the host made
FIO_LBA=65536 FIO_MB=4                        # fio's region (32 MiB, prefilled)

# the multipath map whose product is $1
map_of() { multipath -ll 2>/dev/null | awk -v p="LIO-ORG,$1" '$0 ~ p { print $1; exit }'; }

# multipathd on both guests: the physical LUNs (products plun*) as one
# multibus group; the vLUN (product vlun) grouped by ALUA priority
ha_mpath_start() {
	mkdir -p /etc/multipath
	rm -f /etc/multipath/bindings /etc/multipath/wwids /etc/multipath/prkeys
	cat >/etc/multipath.conf <<-'EOC'
	defaults {
		user_friendly_names yes
		find_multipaths no
		polling_interval 2
	}
	blacklist {
		devnode "^vd[a-z]"
	}
	devices {
		device {
			vendor "LIO-ORG"
			product "^plun"
			detect_prio no
			prio const
			hardware_handler "0"
			path_grouping_policy multibus
			no_path_retry 30
		}
		device {
			vendor "LIO-ORG"
			product "^vlun"
			detect_prio no
			prio alua
			hardware_handler "1 alua"
			path_grouping_policy group_by_prio
			failback immediate
			no_path_retry 30
		}
	}
	EOC
	pgrep -x multipathd >/dev/null || multipathd
}

# the SCSI disk of the session to TARGET (one session expected)
session_disk() { # target
	iscsiadm -m session -P 3 2>/dev/null |
		awk -v t="$1" '/^Target: / { tt = ($2 == t) } tt && /Attached scsi disk/ { print $4; exit }'
}

# log in to TARGET through PORTAL (discovery first)
login_to() { # target portal
	iscsiadm -m discovery -t sendtargets -p "$2:3260" >/dev/null || return 1
	iscsiadm -m node -T "$1" -p "$2:3260" --login || return 1
	udevadm settle
}

# ALUA target port group NAME (id ID, implicit, STATE: 0 active/optimized,
# 1 active/non-optimized) on BACKSTORE, with TARGET's LUN 0 as its member
alua_group() { # backstore target name id state
	local d; d=$(configfs_dev "$1")
	[ -n "$d" ] || { echo "no backstore $1"; return 1; }
	mkdir -p "$d/alua/$3" || return 1
	echo "$4" >"$d/alua/$3/tg_pt_gp_id" || return 1
	echo 1 >"$d/alua/$3/alua_access_type" || return 1
	echo "$3" >"/sys/kernel/config/target/iscsi/$2/tpgt_1/lun/lun_0/alua_tg_pt_gp" || return 1
	echo "$5" >"$d/alua/$3/alua_access_state" || return 1
	grep -aH . "$d/alua/$3/"{tg_pt_gp_id,alua_access_type,alua_access_state,members}
}

# the glob that names this guest's two physical maps (a TCMU cfgstring
# cannot hold a comma)
maps_glob() {
	local m0 m1; m0=$(map_of plun0); m1=$(map_of plun1)
	[ -n "$m0" ] && [ -n "$m1" ] || return 1
	echo "/dev/mapper/mpath[${m0#mpath}${m1#mpath}]"
}

# who owns the pool and its epoch, as this guest's vlunctl reads the
# metadata (read-only: no PR command): "OWNER EPOCH"
pool_owner() { # spec
	vlunctl pool nodes "$1" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
o = [n["id"] for n in d["nodes"] if n["role"] == "owner"]
print(o[0] if o else "-", d["map_epoch"])'
}

# the owner is OWNER and the map epoch is past EPOCH (prints both)
owner_after() { # spec owner epoch
	set -- $(pool_owner "$1") "$2" "$3"
	echo "owner $1, epoch $2"
	[ "$1" = "$3" ] && [ "$2" -gt "$4" ]
}

# ------------------------------------------------------------ the peer (gw2)

# log in to the physical LUNs on both portals as $INI_GW2, one map per LUN
gw2_login() {
	INI=$INI_GW2 iscsi_setup || return 1
	ha_mpath_start || return 1
	login_to "$PTGT" "$PRIMARY_IP" || return 1
	iscsiadm -m node -T "$PTGT" -p "$PRIMARY_IP2:3260" --login || return 1
	udevadm settle
	wait_for 40 sh -c "[ \$(multipath -ll 2>/dev/null | grep -c 'active ready running') = 4 ]" || { multipath -ll; return 1; }
	multipath -ll
}

# vd0 on this guest's maps as backstore vha (unit serial $HA_WWN),
# exported as TARGET on PORTAL to the host, in ALUA group NAME (ID, STATE)
gw_export() { # target portal name id state
	local g; g=$(maps_glob) || { echo "no physical maps"; multipath -ll; return 1; }
	tcli <<-EOC
	/backstores/user:vlun create name=vha size=$HA_SIZE cfgstring=$g/vd0 hw_max_sectors=2048 wwn=$HA_WWN
	/iscsi create $1
	/iscsi/$1/tpg1/luns create /backstores/user:vlun/vha
	/iscsi/$1/tpg1/portals create $2 3260
	/iscsi/$1/tpg1/acls create $INI
	/iscsi/$1/tpg1 set attribute authentication=0
	EOC
	[ -n "$(configfs_dev vha)" ] || return 1
	alua_group vha "$1" "$3" "$4" "$5"
}

# tcmu-runner as node gw2; vd0 exported as $TGT2
gw2_export() {
	mkdir -p /etc/vlun
	echo gw2 >/etc/vlun/node-id
	# HA_TRACE=1 (the default): tcmu-runner logs every CDB, so the log
	# shows which command made this gateway take the lock
	if [ "${HA_TRACE:-0}" = 1 ] && [ -f /etc/tcmu/tcmu.conf ]; then
		sed -i 's/^#* *log_level *=.*/log_level = 5/' /etc/tcmu/tcmu.conf
		grep -q '^log_level' /etc/tcmu/tcmu.conf || echo 'log_level = 5' >>/etc/tcmu/tcmu.conf
	fi
	runner_start || return 1
	gw_export "$TGT2" "$PEER_IP" gw2 2 1
}

gw2_locks() { grep -c 'holds the lock' "$LAB_SDIR/tcmu-runner0.log"; }
gw2_fenced() { grep -c 'is FENCED' "$LAB_SDIR/tcmu-runner0.log"; }
gw2_fenced_since() { [ "$(on_peer gw2_fenced)" -gt "$1" ]; }   # on the primary
gw2_log() { grep -iE 'lock|fenc|preempt|conflict|epoch|reload' "$LAB_SDIR/tcmu-runner0.log" | tail -n "${1:-25}"; }
gw2_owner() { pool_owner "$(maps_glob)"; }
# the time (s since the epoch) of the Nth "holds the lock" line of a runner log
lock_time() { # log n
	local t; t=$(grep "holds the lock" "$1" | sed -n "${2}p" | cut -c1-23)
	[ -n "$t" ] && date -d "$t" +%s.%N
}

gw2_cleanup() {
	gateway_down "$PTGT"
	lab_teardown
}

# ------------------------------------------------------------ the host

# WRITE through the map: NBLK blocks of TAG at LBA, each block naming its
# tag and LBA (a misplaced block shows); then SYNCHRONIZE CACHE, and the
# same bytes into the expected image
host_write() { # tag lba nblk
	local f=/tmp/pat.$1.$2
	python3 -c '
import sys
tag, lba, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = bytearray()
for b in range(lba, lba + n):
    s = ("%s:%010d:" % (tag, b)).encode()
    out += (s * (512 // len(s) + 1))[:512]
sys.stdout.buffer.write(out)' "$1" "$2" "$3" >"$f" || return 1
	dd if="$f" of="/dev/mapper/$HV" bs=1M seek=$(($2 * 512)) oflag=direct,seek_bytes conv=fsync status=none || return 1
	dd if="$f" of="$EXPECT" bs=1M seek=$(($2 * 512)) oflag=seek_bytes conv=notrunc status=none
	rm -f "$f"
}

# the whole disk through DEV (O_DIRECT: no page cache) equals the
# expected image
same_as_expected() { # dev
	dd if="$1" bs=1M iflag=direct status=none | cmp - "$EXPECT" &&
		echo "$(($(stat -c %s "$EXPECT") >> 20)) MiB identical"
}

# the path group multipath uses now holds DISK
active_group_has() { # disk
	multipath -ll "$HV" | awk -v d=" $1 " '/status=active/ { a = 1; next } /status=/ { a = 0 } a && index($0, d) { f = 1 } END { exit !f }'
}

ha_cleanup() {
	local d
	for d in "$HP1" "$HP2"; do
		[ -n "$d" ] && echo running >"/sys/block/$d/device/state" 2>/dev/null
	done
	iscsiadm -m node -T "$TGT1" --logout >/dev/null 2>&1
	iscsiadm -m node -T "$TGT2" --logout >/dev/null 2>&1
	on_peer -t 120 gw2_cleanup >/dev/null 2>&1
	gateway_down "$PTGT"
}

scenario_main() {
	if [ "$LAB_BACKEND" != vlun ]; then
		skip "ALUA failover between two gateways" "needs the vlun backend (LAB_BACKEND=$LAB_BACKEND)"
		return 0
	fi
	HV= HP1= HP2=
	trap ha_cleanup EXIT
	local KG1 KG2
	step "the peer guest (gateway node 2) is up and reachable"
	must pair_wait_peer 300
	must on_peer hostname
	pr_tool_ready || true
	KG1=$(hexkey "$("$PR" key --node-id gw1)") KG2=$(hexkey "$("$PR" key --node-id gw2)")
	say "      keys: gw1 $KG1, gw2 $KG2"

	step "gateway 1: tcmu-runner (node gw1); the physical LUNs: two LIO fileio LUNs on $PTGT, portals $PRIMARY_IP and $PRIMARY_IP2"
	must mkdir -p /etc/vlun
	echo gw1 >/etc/vlun/node-id
	must runner_start
	must phys_luns_export "$PTGT" "$PRIMARY_IP" "$PRIMARY_IP2" "$INI" "$INI_GW2"

	step "both gateways log in to the physical LUNs on both portals: one multipath map per LUN on each"
	must iscsi_setup
	must ha_mpath_start
	must login_to "$PTGT" "$PRIMARY_IP"
	must iscsiadm -m node -T "$PTGT" -p "$PRIMARY_IP2:3260" --login
	udevadm settle
	must wait_for 40 sh -c "[ \$(multipath -ll 2>/dev/null | grep -c 'active ready running') = 4 ]"
	show multipath -ll
	must on_peer gw2_login
	local spec m0
	spec=$(maps_glob)
	m0=$(map_of plun0)
	must test -n "$spec"

	step "a pool over gateway 1's two maps (PR mode shared), a 64 MiB thin vdisk vd0"
	must vlunctl pool create ha /dev/mapper/$(map_of plun0) /dev/mapper/$(map_of plun1)
	must vlunctl vdisk create "$spec" vd0 --size "$HA_SIZE" --thin

	step "gateway 1 exports vd0 as $TGT1 on $PRIMARY_IP, ALUA group gw1 (id 1, implicit, active/optimized)"
	must gw_export "$TGT1" "$PRIMARY_IP" gw1 1 0

	step "gateway 2 exports the same vdisk as $TGT2 on $PEER_IP, ALUA group gw2 (id 2, implicit, active/non-optimized)"
	must on_peer HA_TRACE=${HA_TRACE:-1} gw2_export

	step "the host logs in to both gateways: one map, two path groups by ALUA priority"
	must login_to "$TGT1" "$PRIMARY_IP"
	must login_to "$TGT2" "$PEER_IP"
	HP1=$(session_disk "$TGT1") HP2=$(session_disk "$TGT2")
	must test -b "/dev/$HP1"
	must test -b "/dev/$HP2"
	must wait_for 40 sh -c "[ -n \"\$(multipath -ll 2>/dev/null | awk '/LIO-ORG,vlun/ { print \$1 }')\" ]"
	HV=$(multipath -ll 2>/dev/null | awk '/LIO-ORG,vlun/ { print $1; exit }')
	must wait_for 40 sh -c "[ \$(multipath -ll $HV 2>/dev/null | grep -c 'active ready running') = 2 ]"
	show multipath -ll "$HV"
	say "      host: map $HV, gateway 1's path $HP1, gateway 2's path $HP2"
	check "one LU through both gateways (same WWID)" eq "$(/lib/udev/scsi_id -g -d "/dev/$HP1")" "$(/lib/udev/scsi_id -g -d "/dev/$HP2")"
	check "RTPG through gateway 1: its group is active/optimized, implicit ALUA" \
		contains "$(sg_rtpg -d "/dev/$HP1" 2>&1)" 'access state.*active/optimized'
	check "RTPG through gateway 2: its group is active/non-optimized" \
		contains "$(sg_rtpg -d "/dev/$HP2" 2>&1)" 'access state.*active/non optimized'
	check "the host's active path group is gateway 1's" active_group_has "$HP1"

	step "the host writes through gateway 1: it takes the lock; gateway 2 stays standby"
	must truncate -s "$HA_SIZE" "$EXPECT"
	check "host writes 1 MiB of A at LBA 0 (then SYNCHRONIZE CACHE)" host_write A 0 2048
	check "host writes 4 MiB of F at LBA $FIO_LBA (fio's region, allocated now)" host_write F $FIO_LBA $((FIO_MB * 2048))
	check "gateway 1's tcmu-runner took the lock (implicit ALUA: the handler's lock)" file_contains "$LAB_SDIR/tcmu-runner0.log" "holds the lock of 'vd0'"
	check "the pool's owner is gw1" contains "$(pool_owner "$spec")" '^gw1 '
	local e1 l2 f2 k2=2; e1=$(pool_owner "$spec" | cut -d' ' -f2)
	# tcmu-runner takes the lock for any command it counts as a write
	# (SYNCHRONIZE CACHE too): one may reach gateway 2 while the host logs
	# in; then gateway 1's first write took it back and gw2 is fenced
	l2=$(on_peer gw2_locks) f2=$(on_peer gw2_fenced)
	[ "$l2" = 0 ] || k2=0
	fact "before the host's first write gateway 2 had taken the lock $l2 time(s)"
	show on_peer gw2_log
	check "$m0: gw1's key on both of its paths; gw2's on both of its own unless gw1 preempted it ($k2)" \
		eq "$(key_count "/dev/mapper/$m0" "$KG1") $(key_count "/dev/mapper/$m0" "$KG2")" "2 $k2"
	check "gateway 2 reads A through its standby path" \
		eq "$(dd if="/dev/$HP2" bs=512 count=1 iflag=direct status=none | head -c 13)" "A:0000000000:"

	step "gateway 1's path fails on the host while fio writes and verifies: I/O moves to gateway 2"
	fio --name=ha --filename="/dev/mapper/$HV" --direct=1 --ioengine=libaio --iodepth=4 \
		--rw=randwrite --bs=4k --offset=$((FIO_LBA * 512)) --size=${FIO_MB}M \
		--verify=crc32c --verify_fatal=1 --end_fsync=1 --randseed=6 >"$LAB_SDIR/fio.log" 2>&1 &
	local fpid=$! t_fail
	sleep 3
	t_fail=$(date +%s.%N)
	must sh -c "echo offline >/sys/block/$HP1/device/state"
	check "fio wrote and verified $FIO_MB MiB across the failover, no error" wait "$fpid"
	show cat "$LAB_SDIR/fio.log"
	show multipath -ll "$HV"
	must dd if="/dev/mapper/$HV" of="$EXPECT" bs=1M skip=$((FIO_LBA * 512)) seek=$((FIO_LBA * 512)) \
		count=$((FIO_MB << 20)) iflag=direct,skip_bytes,count_bytes oflag=seek_bytes conv=notrunc status=none
	check "the host's active path group is gateway 2's" active_group_has "$HP2"
	check "gateway 2's tcmu-runner took the lock" eq "$(on_peer gw2_locks)" $((l2 + 1))
	show on_peer gw2_log
	check "the pool's owner is gw2, map epoch advanced" owner_after "$spec" gw2 "$e1"
	check "$m0: gw1's key preempted on every path, gw2's registered" \
		eq "$(key_count "/dev/mapper/$m0" "$KG1") $(key_count "/dev/mapper/$m0" "$KG2")" "0 2"
	check "gateway 2 is not fenced" eq "$(on_peer gw2_fenced)" "$f2"
	check "gateway 1 is fenced (its runner log, within 15 s)" wait_for 15 grep -q 'is FENCED' "$LAB_SDIR/tcmu-runner0.log"
	check "gateway 1 told tcmu-runner at once that the lock is lost (the job thread's refresh)" \
		wait_for 15 grep -q 'telling tcmu-runner the lock is lost' "$LAB_SDIR/tcmu-runner0.log"
	show sh -c "grep -iE 'lock|fenc|preempt|conflict' $LAB_SDIR/tcmu-runner0.log | tail -n 20"
	check "host writes 1 MiB of B at LBA 8192 (a region gateway 2 allocates)" host_write B 8192 2048
	check "host writes 256 KiB of C over A at LBA 1024" host_write C 1024 512
	check "through gateway 2, the whole disk is what the host wrote" same_as_expected "/dev/mapper/$HV"
	fact "failover: gateway 2 held the lock $(awk -v a="$t_fail" -v b="$(on_peer lock_time '$LAB_SDIR/tcmu-runner0.log' $((l2 + 1)))" 'BEGIN { printf "%.1f", b - a }') s after gateway 1's path went offline (the guests' clocks); fio: $(grep -oE 'write: IOPS=[^,]*' "$LAB_SDIR/fio.log" | head -n1), $(grep -oE 'err= *[0-9]+' "$LAB_SDIR/fio.log" | head -n1)"

	step "gateway 1's path comes back: the host fails back and gateway 1 takes the lock again"
	local t_back; t_back=$(date +%s.%N)
	must sh -c "echo running >/sys/block/$HP1/device/state"
	check "multipathd reinstates gateway 1's path and fails back to its group" wait_for 40 active_group_has "$HP1"
	show multipath -ll "$HV"
	local e2 devno nfail l1; e2=$(pool_owner "$spec" | cut -d' ' -f2)
	l1=$(grep -c "holds the lock of 'vd0'" "$LAB_SDIR/tcmu-runner0.log")
	devno=$(cat "/sys/block/$HP1/dev")
	nfail=$(dmesg | grep -c "Failing path $devno")
	check "host writes 256 KiB of D over B at LBA 8704 (gateway 2's allocation)" host_write D 8704 512
	check "host writes 512 KiB of E at LBA 40960 (a new allocation)" host_write E 40960 1024
	check "gateway 1's tcmu-runner took the lock again" eq "$(grep -c "holds the lock of 'vd0'" "$LAB_SDIR/tcmu-runner0.log")" $((l1 + 1))
	check "the pool's owner is gw1 again, map epoch advanced" owner_after "$spec" gw1 "$e2"
	check "$m0: gw2's key preempted, gw1's registered again" \
		eq "$(key_count "/dev/mapper/$m0" "$KG1") $(key_count "/dev/mapper/$m0" "$KG2")" "2 0"
	check "the host did not fail gateway 1's path on the way back (the lock was taken before the write)" \
		eq "$(dmesg | grep -c "Failing path $devno")" "$nfail"
	check "gateway 2 is fenced (its runner log, within 15 s)" wait_for 15 gw2_fenced_since "$f2"
	fact "failback: gateway 1 held the lock again $(awk -v a="$t_back" -v b="$(lock_time "$LAB_SDIR/tcmu-runner0.log" $((l1 + 1)))" 'BEGIN { printf "%.1f", b - a }') s after its path came back"
	show on_peer gw2_log

	step "by content: every byte the host wrote, through the map, gateway 1 alone and gateway 2 alone"
	check "through the map (gateway 1), the whole disk is what the host wrote" same_as_expected "/dev/mapper/$HV"
	check "through gateway 1's path alone, the same" same_as_expected "/dev/$HP1"
	check "through gateway 2's path alone (fenced: a read reopens, takes no lock), the same" same_as_expected "/dev/$HP2"
	check "gateway 2 did not take the lock again for those reads" eq "$(on_peer gw2_locks)" $((l2 + 1))
	fact "gateway 1: $(grep -c "holds the lock of 'vd0'" "$LAB_SDIR/tcmu-runner0.log") lock(s), gateway 2: $(on_peer gw2_locks); map epoch $e1 -> $e2 -> $(pool_owner "$spec" | cut -d' ' -f2)"
}
