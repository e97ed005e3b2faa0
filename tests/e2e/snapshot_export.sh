# suites: e2e snap
# summary: snapshot LUNs over iSCSI: cmp of a read-only snapshot against its creation image while fio writes the source; rw export; delete frees the reserve
#
# A linear vdisk src (16 MiB) exported as LUN 0 over one iSCSI portal is
# filled with random data, whose copy is kept as the image. Snapshots s1
# and s2 are created through the holder (`vlunctl snapshot create`,
# control channel) and exported as LUN 1 (cfgstring <pool>/src@s1:
# read-only) and LUN 2 (<pool>/src@s2;rw: writable). While fio writes the
# source at random (4-64 KiB, QD8), the host reads LUN 1 again and again:
# every pass must equal the image (cmp), and again after fio. A write to
# LUN 1 must fail (write protected). `vlunctl snapshot list` must show the
# sessions, open, with saved bytes in the reserve that both share. LUN 2
# still equals the image after fio; the host's write to it reads back
# from LUN 2 while the source and s1 (which shared the saved chunks) stay
# as they were. Deleting the snapshots (after their LUNs are removed) must
# give the reserve's space back to the pool (free bytes as before the
# first snapshot).
#
# Time (TCG, where a full read of a LUN and every targetcli start cost
# seconds): a small disk (16 MiB: 256 chunks, fio writes a good part of
# them in 10 s), short cmp passes, both snapshot LUNs made in one
# targetcli run and removed in one.

SIZE=16M
SIZE_B=$((16 * 1048576))
RESERVE=32M
SPEC=$POOL_DIR
BYPATH=/dev/disk/by-path

lun_dev() { echo "$BYPATH/ip-$P1:3260-iscsi-$TGT-lun-$1"; }
lun_ready() { [ -b "$(lun_dev "$1")" ]; }
snap_json() { vlunctl snapshot list "$SPEC" src --json; }
pool_free() { vjson "d['free_bytes']" vlunctl pool show "$SPEC" --json; }
# field of session $1 in `snapshot list --json`
snap_field() { vjson "[s['$2'] for s in d['snapshots'] if s['name'] == '$1'][0]" snap_json; }
nsnaps() { vjson "len(d['snapshots'])" snap_json; }

# cmp the snapshot LUN $1 against the image $2 (O_DIRECT reads)
lun_equals() {
	cmp <(dd if="$(lun_dev "$1")" bs=1M iflag=direct status=none) "$2"
}

lun_differs() { ! lun_equals "$@" >/dev/null 2>&1; }
same_digest() { [ "$(digest "$1" $SIZE_B)" = "$(digest "$2" $SIZE_B)" ]; }
fio_clean() { # json: no error, something written
	local c; c=$(fio_json_counts "$1") || return 1
	echo "error total_err writes write_bytes reads read_bytes = $c"
	set -- $c
	[ "$1" = 0 ] && [ "$2" = 0 ] && [ "$3" -gt 0 ]
}
ok_and_says() { # rc output pattern
	[ "$1" = 0 ] || { echo "exit status $1"; return 1; }
	contains "$2" "$3"
}
gt0() { [ "${1:-0}" -gt 0 ] 2>/dev/null || { echo "'$1' is not above 0"; return 1; }; }

# lun_add BACKSTORE CFGSTRING LUN [BACKSTORE CFGSTRING LUN]...: the
# backstores and their LUNs in the target (one targetcli run), seen by the
# logged-in host
lun_add() {
	local a=("$@") i cmds=""
	for ((i = 0; i + 2 < ${#a[@]}; i += 3)); do
		cmds+="/backstores/user:vlun create name=${a[i]} size=$SIZE cfgstring=${a[i + 1]} hw_max_sectors=2048"$'\n'
		cmds+="/iscsi/$TGT/tpg1/luns create /backstores/user:vlun/${a[i]} lun=${a[i + 2]}"$'\n'
	done
	tcli <<<"$cmds"
	for ((i = 0; i + 2 < ${#a[@]}; i += 3)); do
		test -n "$(configfs_dev "${a[i]}")" || { echo "no backstore ${a[i]} in configfs"; return 1; }
	done
	iscsiadm -m session --rescan >/dev/null
	udevadm settle
	for ((i = 0; i + 2 < ${#a[@]}; i += 3)); do
		wait_for 30 lun_ready "${a[i + 2]}" || return 1
	done
}
lun_remove() { # backstore lun [backstore lun]...: one targetcli run
	local dev cmds=""
	while [ $# -ge 2 ]; do
		dev=$(readlink -f "$(lun_dev "$2")")
		[ -b "$dev" ] && echo 1 >"/sys/block/$(basename "$dev")/device/delete"
		cmds+="/iscsi/$TGT/tpg1/luns delete lun=$2"$'\n'"/backstores/user:vlun delete $1"$'\n'
		shift 2
	done
	tcli <<<"$cmds"
}

scenario_main() {
	if [ "$LAB_BACKEND" != vlun ]; then
		skip "snapshot LUNs" "backend $LAB_BACKEND is not vlun"
		return 0
	fi
	local out rc fio_pid passes=0 bad=0 t free0 used

	step "pool of two member files, linear vdisk src ($SIZE), tcmu-runner"
	must pool_create pool0 128M 2
	must vlunctl vdisk create "$SPEC" src --size $SIZE --linear
	must runner_start
	free0=$(pool_free)

	step "src as LUN 0 on $P1 (one portal), host logged in"
	out=$(tcli <<-EOC
	/backstores/user:vlun create name=src size=$SIZE cfgstring=$SPEC/src hw_max_sectors=2048
	/iscsi create $TGT
	/iscsi/$TGT/tpg1/luns create /backstores/user:vlun/src lun=0
	/iscsi/$TGT/tpg1/portals create $P1 3260
	/iscsi/$TGT/tpg1/acls create $INI
	/iscsi/$TGT/tpg1 set attribute authentication=0
	EOC
	)
	echo "$out"
	must test -n "$(configfs_dev src)"
	must iscsi_setup
	must iscsi_login
	must wait_for 30 lun_ready 0

	step "fill src with random data; keep the image"
	must dd if=/dev/urandom of=/var/lib/vlun/image0 bs=1M count=$((SIZE_B / 1048576)) status=none
	must dd if=/var/lib/vlun/image0 of="$(lun_dev 0)" bs=1M oflag=direct status=none

	step "snapshots s1 and s2 through the holder, exported as LUN 1 (read-only) and LUN 2 (;rw)"
	out=$(vlunctl snapshot create "$SPEC" src s1 --reserve $RESERVE 2>&1); rc=$?
	echo "$out"
	check "vlunctl snapshot create exited 0 (done by the running tcmu-runner)" \
		ok_and_says "$rc" "$out" 'done by the running'
	must vlunctl snapshot create "$SPEC" src s2
	show vlunctl snapshot list "$SPEC"
	must lun_add snap1 "$SPEC/src@s1" 1 snap2 "$SPEC/src@s2;rw" 2
	# src reads through to the source while nothing is saved: the fill landed
	check "LUN 1 (src@s1) equals the image before any write" lun_equals 1 /var/lib/vlun/image0
	check "a write to the read-only snapshot LUN fails" \
		sh -c "! dd if=/dev/zero of='$(lun_dev 1)' bs=4k count=1 oflag=direct status=none"

	step "fio randwrite on src (4-64k, QD8, 10 s) while the host cmp's LUN 1 against the image"
	# fio splits --filename at ':', which by-path names contain: the sd node
	fio --name=src --filename="$(readlink -f "$(lun_dev 0)")" --direct=1 --ioengine=libaio --iodepth=8 --rw=randwrite \
		--bsrange=4k-64k --size=$SIZE --time_based --runtime=10 --output-format=json \
		--output="$LAB_SDIR/fio.json" >"$LAB_SDIR/fio.stderr" 2>&1 &
	fio_pid=$!
	t=$(lab_uptime)
	while kill -0 $fio_pid 2>/dev/null; do
		if lun_equals 1 /var/lib/vlun/image0 >/dev/null 2>&1; then passes=$((passes + 1)); else bad=$((bad + 1)); fi
	done
	wait $fio_pid
	rc=$?
	cat "$LAB_SDIR/fio.stderr"
	check "fio exited 0" eq "$rc" 0
	check "fio: no I/O error, writes done (JSON)" fio_clean "$LAB_SDIR/fio.json"
	check "every cmp pass of LUN 1 during fio equalled the image ($passes passes)" \
		sh -c "[ $bad = 0 ] && [ $passes -ge 1 ]"
	check "LUN 1 equals the image after fio" lun_equals 1 /var/lib/vlun/image0
	check "src no longer equals the image (fio wrote it)" lun_differs 0 /var/lib/vlun/image0
	fact "snapshot LUN compared $passes times with its image while fio wrote the source for $(_lab_t "$t") s, $bad differences"

	step "vlunctl snapshot list: s1 and s2 active, open, the saved chunks in the reserve shared"
	show vlunctl snapshot list "$SPEC"
	check "s1 is active" eq "$(snap_field s1 state)" active
	check "s1 is open (exported)" eq "$(snap_field s1 open)" True
	check "s2 is open (exported)" eq "$(snap_field s2 open)" True
	used=$(snap_field s1 reserve_used_bytes)
	check "the reserve holds saved chunks ($used bytes)" gt0 "$used"
	check "s1 saved bytes > 0" gt0 "$(snap_field s1 saved_bytes)"
	check "s1 and s2 share them: one copy each (shared bytes = saved = reserve used)" \
		eq "$(snap_field s1 shared_bytes) $(snap_field s2 saved_bytes)" "$used $used"
	check "deleting the exported s1 is refused (exit 4)" \
		sh -c "vlunctl snapshot delete '$SPEC' src s1; [ \$? = 4 ]"

	step "write to the writable snapshot LUN 2"
	must cp /var/lib/vlun/image0 /var/lib/vlun/image2
	must dd if="$(lun_dev 0)" of=/var/lib/vlun/src-now bs=1M iflag=direct status=none
	check "LUN 2 (src@s2) equals the image (src at its creation) after fio" lun_equals 2 /var/lib/vlun/image2
	must dd if=/dev/urandom of=/var/lib/vlun/patch bs=1M count=4 status=none
	check "a 4 MiB write at 8 MiB to the writable snapshot succeeds" \
		dd if=/var/lib/vlun/patch of="$(lun_dev 2)" bs=1M seek=8 oflag=direct status=none
	must dd if=/var/lib/vlun/patch of=/var/lib/vlun/image2 bs=1M seek=8 conv=notrunc status=none
	check "LUN 2 reads its write back (cmp with the patched image)" lun_equals 2 /var/lib/vlun/image2
	check "LUN 1 still equals its image (s2's write did not touch the shared copies)" lun_equals 1 /var/lib/vlun/image0
	check "src did not change (the write went to s2 only)" same_digest "$(lun_dev 0)" /var/lib/vlun/src-now
	show vlunctl snapshot list "$SPEC"
	show vlunctl pool show "$SPEC"

	step "remove the snapshot LUNs, delete the snapshots: the reserve's space goes back to the pool"
	lun_remove snap2 2 snap1 1
	must vlunctl snapshot delete "$SPEC" src s2
	check "one session left" eq "$(nsnaps)" 1
	out=$(vlunctl snapshot delete "$SPEC" src s1 2>&1); rc=$?
	echo "$out"
	check "deleting the last snapshot exits 0 and says the reserve was deleted" \
		ok_and_says "$rc" "$out" 'reserve was deleted'

	check "no session left" eq "$(nsnaps)" 0
	check "pool free space is back to what it was before the first snapshot" eq "$(pool_free)" "$free0"
	check "no reserve vdisk left (vdisk list)" eq "$(vlunctl vdisk list "$SPEC" | grep -c 'snapshot reserve')" 0
	show vlunctl pool show "$SPEC"
}
