# suites: e2e
# summary: one path fails (portal gone, connection killed) and returns under fio write+verify
#
# While fio writes through the multipath map with crc32c verify headers, the
# portal 127.0.0.2 is deleted and its TCP connection killed (deleting a LIO
# portal does not drop its sessions), so the initiator cannot reconnect and
# the path fails after replacement_timeout. The portal then comes back and
# the path must be reinstated; fio must see no error and verify every block.

DATA=64M
RATE=3m        # ~20 s of writes, so the failure and the return fall inside them

NP=/sys/kernel/config/target/iscsi/$TGT/tpgt_1/np/$P2:3260

path_failed() { multipath -ll "$MAP" 2>/dev/null | grep -qE 'failed|faulty'; }
two_active() { [ "$(mpath_active)" = 2 ]; }

scenario_main() {
	stack_up vdisk0 1G

	step "fio write+verify through the map while the path via $P2 fails and returns"
	local fio_out=$LAB_SDIR/fio-failover.txt
	fio_job /dev/mapper/$MAP $DATA --rate=$RATE >"$fio_out" 2>&1 &
	local fio_pid=$!
	sleep 4
	# the portal goes straight through configfs (what targetcli does, minus
	# its seconds of start-up under TCG)
	must rmdir "$NP"
	must ss -K dst "$P2" dport = 3260
	check "the path via $P2 fails" wait_for 30 path_failed
	show multipath -ll $MAP
	check "fio still running with one path" kill -0 $fio_pid
	sleep 3
	must mkdir "$NP"
	check "the path via $P2 is reinstated" wait_for 60 two_active
	show multipath -ll $MAP
	wait $fio_pid
	local rc=$?
	cat "$fio_out"
	check "fio write+verify saw no error across the failover (exit $rc)" sh -c "[ $rc = 0 ] && grep -q 'err= 0' '$fio_out'"
	local p
	for p in $(mpath_paths); do
		check "fio verify through path $p after the failover" fio_verify_only "/dev/$p" $DATA
	done
}
