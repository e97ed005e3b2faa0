# suites: bench-snap
# summary: source 4 KiB write latency with 0, 1 and 4 snapshot sessions: vlun (tcm_loop) beside dm-snapshot, same tmpfs
#
# One guest boot, one medium: a tmpfs (/var/lib/bench) holds every file.
#   vlun   user:vlun over a pool of two member files; source vdisk src
#          (linear, BS_SIZE) as LUN 0 of a tcm_loop target (a local sd);
#          sessions made by `vlunctl snapshot create` through the holder,
#          64 KiB chunks, a reserve that holds every chunk
#   dm     device-mapper in the kernel: the origin is a loop device over a
#          file; 0 sessions: a linear table over it; n sessions: a
#          snapshot-origin table over it and n "snapshot ... P 128" tables
#          (persistent, 64 KiB chunks), each COW store a loop device over
#          a file of BS_SIZE; the loop devices are buffered (tmpfs has no
#          O_DIRECT, losetup --direct-io=on fails there), as vlun's members are
# For each backend and n in BS_SESSIONS the source is written whole
# (1 MiB writes) before the sessions start, then two fio jobs run on the
# source (direct=1, libaio, QD1):
#   first    rw=write:60k bs=4k: one 4 KiB write per 64 KiB chunk, each the
#            first write of its chunk since the sessions started (every
#            write copies, when n > 0); --number_ios stops it after one
#            pass (fio would otherwise wrap around until it had written
#            --size bytes, and 15 of 16 writes would hit saved chunks)
#   steady   randwrite 4k, BS_RUNTIME s, time_based: mostly chunks already
#            copied (the steady state)
# fio's completion latency percentiles (p50, p99) and IOPS per job go to
# fio-<backend>-<n>-<job>.json; tests/bench/lab/snapshot_report.py turns
# them into docs/bench/snapshots.md (scripts/bench --snapshot).

BS_SIZE=${BS_SIZE:-128M}
BS_SESSIONS=${BS_SESSIONS:-"0 1 4"}
BS_RUNTIME=${BS_RUNTIME:-10}
BS_DIR=/var/lib/bench
BS_WWN=naa.5001405b0000b0a1
[ -e /lab/e2e/bench_snapshot.local ] && . /lab/e2e/bench_snapshot.local

bs_bytes() { numfmt --from=iec "$1"; }

# the tcm_loop sd of LUN 0
bs_loop_dev() {
	local sd addr host
	for sd in /sys/block/sd*; do
		addr=$(basename "$(readlink -f "$sd/device")")
		host=${addr%%:*}
		[ "$(cat "/sys/class/scsi_host/host$host/proc_name" 2>/dev/null)" = tcm_loopback ] || continue
		[ "${addr##*:}" = 0 ] && { echo "/dev/$(basename "$sd")"; return 0; }
	done
	return 1
}

bs_fio() { # dev json job
	local dev=$1 json=$2 job=$3
	case $job in
	first) fio --name=first --filename="$dev" --direct=1 --ioengine=libaio --iodepth=1 \
		--rw=write:60k --bs=4k --size="$BS_SIZE" --number_ios=$(( $(bs_bytes "$BS_SIZE") / 65536 )) \
		--output-format=json --output="$json" ;;
	steady) fio --name=steady --filename="$dev" --direct=1 --ioengine=libaio --iodepth=1 \
		--rw=randwrite --bs=4k --size="$BS_SIZE" --time_based --runtime="$BS_RUNTIME" \
		--randrepeat=0 --output-format=json --output="$json" ;;
	esac
}

bs_prefill() { dd if=/dev/urandom of="$1" bs=1M count=$(( $(bs_bytes "$BS_SIZE") / 1048576 )) oflag=direct status=none; }

# ------------------------------------------------------------ vlun

bs_vlun_sessions() { # n: exactly n sessions of src, freshly created
	local s
	for s in $(vlunctl snapshot list "$POOL_DIR" src --json | python3 -c 'import json,sys; print(" ".join(s["name"] for s in json.load(sys.stdin)["snapshots"]))'); do
		vlunctl snapshot delete "$POOL_DIR" src "$s" >/dev/null || return 1
	done
	bs_prefill "$BS_DEV" || return 1
	for ((s = 1; s <= $1; s++)); do
		vlunctl snapshot create "$POOL_DIR" src "b$s" --reserve $(( $(bs_bytes "$BS_SIZE") * 3 / 2 )) --chunk 64K \
			>/dev/null || return 1
	done
}

bs_run_vlun() {
	local n job
	step "vlun: pool on two member files in $BS_DIR, linear vdisk src ($BS_SIZE) on tcm_loop"
	mkdir -p "$POOL_DIR"
	must truncate -s 512M "$POOL_DIR/member0"
	must truncate -s 512M "$POOL_DIR/member1"
	must vlunctl pool create pool0 "$POOL_DIR/member0" "$POOL_DIR/member1"
	must vlunctl vdisk create "$POOL_DIR" src --size "$BS_SIZE" --linear
	must runner_start
	printf '%s\n' "/backstores/user:vlun create name=src size=$BS_SIZE cfgstring=$POOL_DIR/src hw_max_sectors=2048" \
		"/loopback create $BS_WWN" "/loopback/$BS_WWN/luns create /backstores/user:vlun/src lun=0" | tcli
	udevadm settle
	must wait_for 30 bs_loop_dev
	BS_DEV=$(bs_loop_dev)
	echo 180 >"/sys/block/$(basename "$BS_DEV")/device/timeout"
	for n in $BS_SESSIONS; do
		step "vlun: $n session(s)"
		must bs_vlun_sessions "$n"
		for job in first steady; do
			check "vlun, $n sessions, $job: fio completed" bs_fio "$BS_DEV" "$LAB_SDIR/fio-vlun-$n-$job.json" $job
		done
		show vlunctl snapshot list "$POOL_DIR"
	done
	bs_vlun_sessions 0 >/dev/null 2>&1
	targetctl clear >/dev/null 2>&1
	runner_stop
}

# ------------------------------------------------------------ dm-snapshot

bs_dm_down() {
	local t
	for t in $(dmsetup ls 2>/dev/null | awk '/^bsnap/ { print $1 }' | sort -r); do dmsetup remove "$t"; done
	dmsetup remove bsorigin 2>/dev/null
	for t in $(losetup -j "$BS_DIR/origin.img" | cut -d: -f1) $(losetup -a | awk -F: '/cow[0-9]+\.img/ { print $1 }'); do
		losetup -d "$t"
	done
	rm -f "$BS_DIR"/cow*.img
	return 0
}

bs_dm_up() { # n
	local sectors i cow
	bs_dm_down
	truncate -s "$BS_SIZE" "$BS_DIR/origin.img" || return 1
	BS_ORIG=$(losetup -f --show "$BS_DIR/origin.img") || return 1
	sectors=$(blockdev --getsz "$BS_ORIG")
	dmsetup create bsorigin --table "0 $sectors linear $BS_ORIG 0" || return 1
	BS_DEV=/dev/mapper/bsorigin
	bs_prefill "$BS_DEV" || return 1
	[ "$1" = 0 ] && return 0
	dmsetup suspend bsorigin || return 1
	for ((i = 1; i <= $1; i++)); do
		truncate -s "$BS_SIZE" "$BS_DIR/cow$i.img"
		cow=$(losetup -f --show "$BS_DIR/cow$i.img") || return 1
		dmsetup create "bsnap$i" --table "0 $sectors snapshot $BS_ORIG $cow P 128" || return 1
	done
	dmsetup reload bsorigin --table "0 $sectors snapshot-origin $BS_ORIG" || return 1
	dmsetup resume bsorigin
}

bs_run_dm() {
	local n job
	for n in $BS_SESSIONS; do
		step "dm-snapshot: $n snapshot(s) of a loop device in $BS_DIR"
		must bs_dm_up "$n"
		show dmsetup table
		for job in first steady; do
			check "dm, $n snapshots, $job: fio completed" bs_fio "$BS_DEV" "$LAB_SDIR/fio-dm-$n-$job.json" $job
		done
		show dmsetup status
	done
	bs_dm_down
}

scenario_main() {
	if [ "$LAB_BACKEND" != vlun ]; then
		skip "snapshot bench" "backend $LAB_BACKEND is not vlun"
		return 0
	fi
	step "tmpfs $BS_DIR for every backing file; modules"
	mkdir -p "$BS_DIR"
	mountpoint -q "$BS_DIR" || must mount -t tmpfs -o size=3G tmpfs "$BS_DIR"
	modprobe dm_snapshot 2>/dev/null
	POOL_DIR=$BS_DIR/pool0
	{ echo "BS_SIZE=$BS_SIZE"; echo "BS_SESSIONS=$BS_SESSIONS"; echo "BS_RUNTIME=$BS_RUNTIME"
	  echo "nproc=$(nproc)"; echo "kernel=$(uname -r)"; } >"$LAB_SDIR/bench.conf"
	# vlun, then dm-snapshot, in one boot: compare them as ratios of this run
	bs_run_vlun
	bs_run_dm
	show df -h "$BS_DIR"
	umount "$BS_DIR" 2>/dev/null
	return 0
}
