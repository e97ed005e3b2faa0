# suites: e2e demo
# summary: pool + thin vdisk -> user:vlun -> 2 iSCSI portals -> multipath; fio verify; PR; restarts
#
# The demo of scripts/demo, with assertions: data written through the
# multipath map reads back identically through each path; a persistent
# reservation made with mpathpersist (APTPL) is seen on every path; both
# survive a restart of tcmu-runner and a restart of the whole target from
# its saved configuration.

KEY=0x5e1f0001
SIZE=1G
DATA=32M       # what fio writes and the digests cover
DATA_BYTES=$((32 * 1048576))

# every path: two registrations of KEY (one per I_T nexus), KEY holds a
# Write Exclusive - Registrants Only reservation
pr_state_ok() { # dev
	local keys holder type
	keys=$(pr_keys "$1" | paste -sd' ')
	holder=$(pr_holder "$1")
	type=$(pr_type "$1")
	echo "$1: keys [$keys] holder [$holder] type [$type]"
	[ "$keys" = "$KEY $KEY" ] && [ "$holder" = "$KEY" ] && grep -qi 'write exclusive, registrants only' <<<"$type"
}

# fio_logged OUT fio_job-args... : fio_job, its output also kept in OUT
fio_logged() {
	local o=$1; shift
	fio_job "$@" >"$o" 2>&1
	local rc=$?
	cat "$o"
	return $rc
}

check_pr_on_paths() { # label
	local p bad=0
	for p in $(mpath_paths); do
		sg_turs "/dev/$p" >/dev/null 2>&1   # eat the PR unit attentions
		check "$1: keys and reservation as expected on path $p" pr_state_ok "/dev/$p" || bad=1
	done
	return $bad
}

check_data() { # label
	local p d bad=0
	d=$(digest /dev/mapper/$MAP $DATA_BYTES)
	check "$1: data digest through the map unchanged" eq "$d" "$DIGEST" || bad=1
	for p in $(mpath_paths); do
		check "$1: data digest through path $p unchanged" eq "$(digest "/dev/$p" $DATA_BYTES)" "$DIGEST" || bad=1
	done
	return $bad
}

scenario_main() {
	stack_up vdisk0 $SIZE
	local paths; paths=$(mpath_paths | paste -sd' ')
	check "two iSCSI sessions" eq "$(iscsi_sessions)" 2
	check "one multipath map with two active paths ($paths)" eq "$(mpath_active)" 2 &&
		fact "$(backstore_path vdisk0) ($SIZE$([ "$LAB_BACKEND" = vlun ] && echo ", thin, pool of 2 member files")) -> $TGT LUN 0 on $P1:3260 + $P2:3260 -> /dev/mapper/$MAP over $paths"

	step "write and verify $DATA through the map (fio)"
	local fio_out=$LAB_SDIR/fio-write.txt
	check "fio write + verify through /dev/mapper/$MAP" fio_logged "$fio_out" /dev/mapper/$MAP $DATA &&
		fact "fio: $DATA written through the map and verified ($(grep -oE 'WRITE: bw=[^ ]+' "$fio_out" | head -n1))"
	local p
	for p in $(mpath_paths); do
		check "fio verify through path $p" fio_verify_only "/dev/$p" $DATA
	done
	DIGEST=$(digest /dev/mapper/$MAP $DATA_BYTES)
	say "      data digest (sha256, first 16 hex): $DIGEST"
	check_data "after write"

	step "register every path and reserve (mpathpersist, APTPL); read back with sg_persist per path"
	must mpp --out --register --param-aptpl --param-sark=$KEY /dev/mapper/$MAP
	must mpp --out --reserve --param-aptpl --param-rk=$KEY --prout-type=5 /dev/mapper/$MAP
	show mpp --in --read-keys /dev/mapper/$MAP
	show mpp --in --read-reservation /dev/mapper/$MAP
	for p in $(mpath_paths); do
		show sgp --in --read-keys "/dev/$p"
		show sgp --in --read-reservation "/dev/$p"
	done
	check_pr_on_paths "reserved" &&
		fact "PR: key $KEY registered on every path, reservation Write Exclusive - Registrants Only, seen on $(mpath_paths | paste -sd' ')"
	local dev; dev=$(configfs_dev vdisk0)
	show cat "$dev/pr/res_holder" "$dev/pr/res_pr_type" "$dev/pr/res_aptpl_active"
	check "LIO keeps the reservation persistent (APTPL)" file_contains "$dev/pr/res_aptpl_active" 'Activated'

	step "restart tcmu-runner"
	must runner_stop
	must runner_start
	must wait_for 30 sh -c "[ \$(multipath -ll $MAP 2>/dev/null | grep -c 'active ready running') = 2 ]"
	show multipath -ll $MAP
	local ok=1
	check_data "after tcmu-runner restart" || ok=0
	check_pr_on_paths "after tcmu-runner restart" || ok=0
	check "a new write through the map after tcmu-runner restart" \
		dd if=/dev/urandom of=/dev/mapper/$MAP bs=1M count=1 seek=512 oflag=direct status=none || ok=0
	[ $ok = 1 ] && fact "tcmu-runner restarted: data (sha256 $DIGEST) and reservation intact on every path"

	step "restart the whole target as its service does: save, clear, stop tcmu-runner, start, restore (targetctl)"
	must targetctl save /etc/rtslib-fb-target/saveconfig.json
	show ls -l /etc/rtslib-fb-target/pr/
	check "APTPL file written by LIO" sh -c "ls /etc/rtslib-fb-target/pr/aptpl_* && grep -q PR_REG_START /etc/rtslib-fb-target/pr/aptpl_*"
	must targetctl clear
	must runner_stop
	check "the device is gone from configfs while the target is down" eq "$(configfs_dev vdisk0)" ""
	must runner_start
	must targetctl restore /etc/rtslib-fb-target/saveconfig.json
	must target_ok
	must wait_for 60 sh -c "[ \$(multipath -ll $MAP 2>/dev/null | grep -c 'active ready running') = 2 ]"
	show multipath -ll $MAP
	ok=1
	check_data "after target restart" || ok=0
	check_pr_on_paths "after target restart (APTPL)" || ok=0
	[ $ok = 1 ] && fact "whole target restarted (targetctl save, clear, runner restart, restore): data and APTPL reservation back"

	step "release and unregister"
	must mpp --out --release --param-rk=$KEY --prout-type=5 /dev/mapper/$MAP
	must mpp --out --register --param-rk=$KEY --param-sark=0 /dev/mapper/$MAP
	for p in $(mpath_paths); do sg_turs "/dev/$p" >/dev/null 2>&1; done
	check "no key left registered" eq "$(pr_keys "/dev/$(mpath_paths | head -n1)")" ""

	if [ "$LAB_BACKEND" = vlun ]; then
		step "the thin vdisk after the run"
		show sh -c "vlunctl vdisk show '$POOL_DIR' vdisk0 | sed -n '1,/^Extents:/p'"
	fi
}
