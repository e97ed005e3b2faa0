# scripts/lab.d/boot.sh — stage what the guest needs and boot it (sourced).
#
# The guest sees two 9p shares:
#   lab      read-only: guest/ (init, library), e2e/ (scenarios from
#            tests/e2e), bin/ (the freshly built handler_vlun.so and
#            vlunctl), run.conf (what to run)
#   results  read-write: logs and results come back here
# No NIC: all iSCSI traffic stays on the guest's loopback. Two-guest runs
# (scenarios with "# guests: 2", see scripts/lab) add lab_boot_extra: a
# virtio NIC on a UDP socket link between the two QEMUs and a third share,
# "sync", that both guests see (guest/pair.sh).
#
# Power cuts (scenarios with "# reboot: power-cut"): with LAB_DATA_DISK set,
# that qcow2 image is the guest's /dev/vdb (cache=writeback: QEMU keeps the
# qcow2 L2/refcount metadata of new clusters in memory until the guest
# flushes, as a disk keeps its volatile cache). When the guest prints
# "[lab] power-cut: SCENARIO" on the console, the host kills QEMU with
# SIGKILL at once — no guest shutdown, no sync, no flush — and writes
# SCENARIO to STAGE_DIR/power-cut; scripts/lab then boots again on the same
# data disk.

# lab_stage STAGE_DIR : fill the lab share. Needs lab_build.
lab_stage() {
	local st=$1 f
	rm -rf "$st"
	mkdir -p "$st/bin" "$st/e2e"
	cp -a "$lab_dir/guest" "$st/guest"
	cp -a "$lab_top/tests/e2e/." "$st/e2e/"
	for f in "$lab_build/handler/handler_vlun.so" "$lab_build/tools/vlunctl" "$lab_build/tools/vlun-pr"; do
		[ -f "$f" ] && cp "$f" "$st/bin/"
	done
	# a shared libvlun, if the build makes one
	for f in "$lab_build"/lib/libvlun.so*; do
		[ -e "$f" ] && cp -a "$f" "$st/bin/"
	done
	return 0
}

lab_boot_extra=()

# lab_boot STAGE_DIR RESULTS_DIR MODE : boot the image, run MODE (run|shell);
# the console is logged to RESULTS_DIR/console.log (and shown when
# LAB_CONSOLE=1 or in shell mode). Returns QEMU's status (124: timeout).
lab_boot() {
	local st=$1 res=$2 mode=$3 serial rc nic=(-nic none)
	lab_accel_args
	[ ${#lab_boot_extra[@]} -gt 0 ] && nic=("${lab_boot_extra[@]}")
	lab_say "boot: $lab_accel, 2 vCPUs, kernel $lab_kver"
	local cmd=(qemu-system-x86_64 "${lab_accel_opts[@]}" -smp 2 -m 2048
		-nodefaults -display none -no-reboot "${nic[@]}"
		-kernel "$lab_kernel" -initrd "$lab_initrd"
		-append "root=/dev/vda rw rootfstype=ext4 init=/sbin/vlun-lab-init console=ttyS0 panic=-1 quiet loglevel=4"
		-drive "file=$lab_image,format=raw,if=virtio,cache=unsafe,snapshot=on"
		-virtfs "local,path=$st,mount_tag=lab,security_model=none,readonly=on,id=lab"
		-virtfs "local,path=$res,mount_tag=results,security_model=none,id=results")
	if [ -n "${LAB_DATA_DISK:-}" ]; then
		cmd+=(-drive "file=$LAB_DATA_DISK,format=qcow2,if=virtio,cache=writeback"
			-pidfile "$st/qemu.pid")
	fi
	rm -f "$st/power-cut"
	if [ "$mode" = shell ]; then
		"${cmd[@]}" -serial mon:stdio
		return $?
	fi
	# QEMU's temporary snapshot overlay goes to TMPDIR
	if [ "${LAB_CONSOLE:-0}" = 1 ]; then
		# line-buffered all the way, so progress shows as it happens
		timeout --foreground "$lab_timeout" "${cmd[@]}" -serial stdio </dev/null 2>&1 |
			sed -u 's/\r$//' | lab_power_cut_watch "$st" | tee "$res/console.log" | lab_console_filter
		rc=${PIPESTATUS[0]}
	else
		timeout "$lab_timeout" "${cmd[@]}" -serial stdio </dev/null 2>&1 | sed -u 's/\r$//' |
			lab_power_cut_watch "$st" >"$res/console.log"
		rc=${PIPESTATUS[0]}
	fi
	return $rc
}

# what a person watching wants from the console: our lines, not the kernel's
lab_console_filter() {
	grep --line-buffered -vE '^\[ *[0-9]+\.[0-9]+\]|^\s*$'
}

# lab_power_cut_watch STAGE_DIR : passes the console through; on the
# guest's "[lab] power-cut: SCENARIO" line (only when a data disk is
# attached) kills QEMU with SIGKILL and records SCENARIO in STAGE_DIR/power-cut
lab_power_cut_watch() {
	if [ -z "${LAB_DATA_DISK:-}" ]; then
		cat
		return
	fi
	local line pid name cut=0
	while IFS= read -r line || [ -n "$line" ]; do
		printf '%s\n' "$line"
		if [ $cut = 0 ] && [[ $line =~ ^\[lab\]\ power-cut:\ ([A-Za-z0-9_.-]+) ]]; then
			cut=1
			name=${BASH_REMATCH[1]}
			pid=$(cat "$1/qemu.pid" 2>/dev/null)
			[[ $pid =~ ^[0-9]+$ ]] && kill -KILL "$pid"
			echo "$name" >"$1/power-cut"
		fi
	done
}
