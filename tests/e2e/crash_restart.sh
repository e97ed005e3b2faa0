# suites: e2e crash
# summary: kill -9 tcmu-runner under fio write+verify (thin wce=1, thin wce=0, linear), restart it: no I/O or verify error
#
# fio writes 64 KiB random blocks with crc32c verify headers to three
# multipath maps (vdisk0 thin, vdisk1 thin with wce=0, vdisk2 linear) and
# then verifies them. Once every map has 8 MiB written, tcmu-runner is
# killed with SIGKILL; while it is down the pool must assemble with valid
# metadata (the lock died with the process); then the runner is
# restarted (it opens the devices again: open(dev, reopen=false)). The host
# must only wait, which takes these knobs (crash.sh, crash_stack_up):
#   target  attrib/cmd_time_out=0 on each backstore: commands stay in the
#           TCMU ring instead of failing after 30 s; the restarted runner's
#           libtcmu resets the ring (reset_ring 1), which ends them with
#           BUSY, and the host's SCSI layer retries BUSY
#   host    SCSI disk timeout 180 s and multipath checker_timeout 180: no
#           error handling (abort, reset, session drop) and no failed TUR
#           while the runner is down; multipath no_path_retry queue: should
#           paths fail anyway, I/O is queued, never failed
# fio must exit 0 and every job must have zero errors and have verified
# every block it wrote (fio's JSON).

. /lab/guest/crash.sh

# the wce=0 vdisk has a pool of its own: its FUA writes commit the pool's
# pending allocations, which would hide a thin wce=1 vdisk's in the same pool
SPECS=(vdisk0:thin:256M::pool0 vdisk1:thin:256M:\;wce=0:pool1 vdisk2:linear:256M::pool0)
JOBS=(thin-wce1 thin-wce0 linear-wce1)
SIZE_PER_JOB=32M
RATE=1m          # per job: ~32 s of writes, so the kill falls inside them

# fio on all maps at once: random 64 KiB writes, then verify
crash_fio() { # json-out
	fio --output-format=json --output="$1" \
		--direct=1 --ioengine=libaio --iodepth=16 --rw=randwrite --bs=64k \
		--size=$SIZE_PER_JOB --rate=$RATE --verify=crc32c --verify_fatal=1 --do_verify=1 \
		--name=${JOBS[0]} --filename=/dev/mapper/${MAPS[0]} \
		--name=${JOBS[1]} --filename=/dev/mapper/${MAPS[1]} \
		--name=${JOBS[2]} --filename=/dev/mapper/${MAPS[2]}
}

# MiB written so far to map $1 (the dm device's own counters: no I/O)
map_written_mb() {
	local dm; dm=$(basename "$(readlink -f "/dev/mapper/$1")")
	awk '{ print int($7 / 2048) }' "/sys/block/$dm/stat"
}
# every map has seen at least $1 MiB of writes
maps_written() {
	local i
	for i in 0 1 2; do [ "$(map_written_mb "${MAPS[i]}")" -ge "$1" ] || return 1; done
}

# one job of fio's JSON: "error writes reads"
job_counts() { # json job
	python3 -c 'import json,sys
for j in json.load(open(sys.argv[1]))["jobs"]:
    if j["jobname"] == sys.argv[2]:
        print(j["error"], j["write"]["total_ios"], j["read"]["total_ios"])' "$1" "$2"
}
job_clean() { # json job : no error, every block written was read back and verified
	local c; c=$(job_counts "$1" "$2")
	echo "$2: error writes reads = $c"
	set -- $c
	[ "$1" = 0 ] && [ "$2" -gt 0 ] && [ "$3" = "$2" ]
}

scenario_main() {
	if [ "$LAB_BACKEND" != vlun ]; then
		skip "tcmu-runner killed under fio verify" "backend $LAB_BACKEND is not vlun"
		return 0
	fi
	crash_stack_up "${SPECS[@]}"

	step "fio randwrite+verify on the three maps; kill -9 tcmu-runner mid-write; restart it"
	local json=$LAB_SDIR/fio.json t0 tk tr pid i
	echo "vlun-lab: crash_restart: fio starts" >/dev/kmsg
	t0=$(lab_uptime)
	crash_fio "$json" >"$LAB_SDIR/fio.stderr" 2>&1 &
	local fio_pid=$!
	# a quarter of the writes done on every map (or 60 s)
	wait_for 60 maps_written 8
	pid=$(pgrep -x tcmu-runner)
	must kill -0 $fio_pid
	local before; before=$(for i in 0 1 2; do printf '%s=%sMiB ' "${JOBS[i]}" "$(map_written_mb "${MAPS[i]}")"; done)
	must kill -KILL "$pid"
	tk=$(_lab_t "$t0")
	must wait_for 10 sh -c '! pgrep -x tcmu-runner'
	say "      tcmu-runner (pid $pid) killed with SIGKILL at t=${tk}s of fio; written so far: $before"
	check "the pool assembles with valid metadata while the runner is dead" pool_valid "${SPECS[@]}"
	# (multipath -ll would wait for the dead runner: ask the kernel's state)
	show dmsetup status
	sleep 3
	check "fio is still running (waiting, not failed) while the runner is down" kill -0 $fio_pid
	must runner_start
	tr=$(_lab_t "$t0")
	say "      tcmu-runner restarted at t=${tr}s of fio"
	check "every map has two active paths after the restart" wait_for 90 crash_maps_ready
	show multipath -ll

	local n=0
	while kill -0 $fio_pid 2>/dev/null && [ $n -lt 600 ]; do sleep 0.5; n=$((n + 1)); done
	if kill -0 $fio_pid 2>/dev/null; then
		# never leave the guest hung on a queueing map
		say "      fio still runs after 300 s more: failing the queues"
		for i in 0 1 2; do dmsetup message "${MAPS[i]}" 0 fail_if_no_path; done
	fi
	wait $fio_pid
	local rc=$? tf; tf=$(_lab_t "$t0")
	cat "$LAB_SDIR/fio.stderr"
	check "fio exited 0 (after ${tf}s)" sh -c "grep -E 'verify|error' '$LAB_SDIR/fio.stderr' | head -n 3; exit $rc"
	for i in 0 1 2; do
		check "${SPECS[i]}: no I/O error, every block written read back and verified" job_clean "$json" "${JOBS[i]}"
	done
	local sum; sum=$(fio_json_summary "$json")
	echo "$sum"
	fact "kill -9 at t=${tk}s (written: $before), runner back at t=${tr}s, fio done at t=${tf}s; $(echo "$sum" | paste -sd';')"
	dmesg | sed -n '/vlun-lab: crash_restart: fio starts/,$p' >"$LAB_SDIR/dmesg-fio.txt"
	show cat "$LAB_SDIR/dmesg-fio.txt"
	check "no I/O error on a multipath map (dm-*) in the kernel log" \
		sh -c "! grep -E 'I/O error, dev dm-' '$LAB_SDIR/dmesg-fio.txt'"
	fact "path-level events while the runner was down: $(grep -cE 'Failing path' "$LAB_SDIR/dmesg-fio.txt") path failures, $(grep -cE 'I/O error, dev sd' "$LAB_SDIR/dmesg-fio.txt") path I/O errors (requeued by multipath)"

	step "the pool after the run: runner stopped, pool assembles, metadata valid"
	must mpath_stop
	must iscsi_logout
	must targetctl clear
	must runner_stop
	check "the pool assembles with valid metadata after the run" pool_valid "${SPECS[@]}"
}
