# suites: crash
# reboot: power-cut
# summary: guest power cut (QEMU SIGKILL) under tagged writes, write cache on and off; after reboot every durable write is there
#
# The pool's member files live on ext4 on the data disk /dev/vdb, which
# the host keeps across the boots of this run (scripts/lab: "# reboot:
# power-cut"). Four vdisks, each its own LUN and multipath map:
#   vdisk0 thin   wce=1     vdisk1 thin   wce=0
#   vdisk2 linear wce=1     vdisk3 linear wce=0
# On each map scripts/lab.d/guest/power_cut_io.py writes 64 KiB blocks
# tagged with sequence numbers from two threads and fsyncs the map every
# 2 s, logging each acknowledged write and each completed flush to the
# host (9p). With writes in flight the power is cut: the host kills QEMU
# with SIGKILL. Boot 2: the ext4 journal replays, the pool must assemble
# with valid metadata before anything else runs, and reading every map
# back through the whole stack must show, per sector: with wce=0 every
# acknowledged write (or a newer one that was in flight); with wce=1 every
# write acknowledged before the last completed flush (SYNCHRONIZE CACHE);
# and nothing unreadable, foreign or torn inside a sector.

. /lab/guest/crash.sh

# a pool per write cache mode: FUA writes of a wce=0 vdisk commit its
# pool's pending allocations, which would help a wce=1 vdisk in that pool
SPECS=(vdisk0:thin:256M:\;wce=1:pool0 vdisk1:thin:256M:\;wce=0:pool1 vdisk2:linear:128M:\;wce=1:pool0 vdisk3:linear:128M:\;wce=0:pool1)
MODES=(wce1 wce0 wce1 wce0)
# thin: a region of 160 chunks, so that chunks are still being allocated
# (and committed only at the next flush) when the power goes
REGION_MB=(160 160 32 32)
PCIO=/lab/guest/power_cut_io.py
LOGDIR=/results/power_cut     # on the host: survives the power cut

# the writers have run long enough: every log shows acknowledged writes and
# three completed flushes
writers_warm() {
	local i
	for i in 0 1 2 3; do
		[ "$(grep -c '^A ' "$LOGDIR/writer$i.log" 2>/dev/null)" -ge 40 ] || return 1
		[ "$(grep -c '^F ' "$LOGDIR/writer$i.log" 2>/dev/null)" -ge 3 ] || return 1
	done
}

data_disk_mount() {
	mkdir -p /var/lib/vlun
	mount -t ext4 /dev/vdb /var/lib/vlun
}

scenario_main() {
	if [ "$LAB_BACKEND" != vlun ]; then
		skip "power cut with write cache on and off" "backend $LAB_BACKEND is not vlun"
		return 0
	fi
	step "data disk /dev/vdb: ext4 at /var/lib/vlun (holds the pool's member files)"
	must test -b /dev/vdb
	must mkfs.ext4 -q -F /dev/vdb
	must data_disk_mount
	crash_stack_up "${SPECS[@]}"

	step "tagged writers on the four maps, fsync every 2 s; then cut the power"
	mkdir -p "$LOGDIR"
	rm -f "$LOGDIR"/writer*.log
	local i
	for i in 0 1 2 3; do
		echo "${MAPS[i]}" >"$LOGDIR/map$i"
		python3 "$PCIO" write "/dev/mapper/${MAPS[i]}" "$LOGDIR/writer$i.log" --run 1 \
			--region-mb ${REGION_MB[i]} --threads 2 --flush-every 2 \
			>"$LAB_SDIR/writer$i.out" 2>&1 &
	done
	must wait_for 120 writers_warm
	sleep 3
	for i in 0 1 2 3; do
		say "      ${SPECS[i]}: $(grep -c '^A ' "$LOGDIR/writer$i.log") writes acknowledged, $(grep -c '^F ' "$LOGDIR/writer$i.log") flushes completed before the cut"
	done
	lab_power_cut
}

scenario_after_reboot() {
	step "boot $LAB_BOOT after the power cut: mount the data disk (ext4 replays its journal)"
	must data_disk_mount
	show sh -c "dmesg | grep -E 'EXT4-fs \\(vdb\\)'"
	check "the pool assembles with valid metadata after the power cut" pool_valid "${SPECS[@]}"
	CRASH_KEEP_POOL=1 crash_stack_up "${SPECS[@]}"

	step "read every map back and hold each sector against the writers' logs"
	local i out rc what
	for i in 0 1 2 3; do
		out=$LAB_SDIR/check$i.txt
		python3 "$PCIO" check "/dev/mapper/${MAPS[i]}" "$LOGDIR/writer$i.log" --run 1 \
			--region-mb ${REGION_MB[i]} --mode ${MODES[i]} >"$out" 2>&1
		rc=$?
		what="every write acknowledged before the last completed flush"
		[ ${MODES[i]} = wce0 ] && what="every acknowledged write"
		check "${SPECS[i]}: $what is there, nothing unreadable" sh -c "cat '$out'; exit $rc"
		fact "${SPECS[i]}: $(paste -sd' ' "$out" | cut -c1-400)"
	done

	step "stop the stack; the pool after the run"
	must mpath_stop
	must iscsi_logout
	must targetctl clear
	must runner_stop
	check "the pool assembles with valid metadata after the checks" pool_valid "${SPECS[@]}"
	rm -rf /var/lib/vlun/pool0 /var/lib/vlun/pool1
	umount /var/lib/vlun
}
