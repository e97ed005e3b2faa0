# suites: bench
# summary: fio side by side: LIO fileio, user:qcow, vlun linear/thin/thin first touch/mirrored; iSCSI+multipath and tcm_loop
#
# One guest boot. Every backstore sits on the same medium, one tmpfs
# (/var/lib/bench), so the backends' software is what differs:
#   fileio   LIO fileio on a sparse file (targetcli's default write_back=True)
#   qcow     tcmu-runner's user:qcow on a qcow2 file; that file sits on an
#            ext4 (loop device over a file in the same tmpfs): handler_qcow
#            allocates clusters with fallocate(FALLOC_FL_ZERO_RANGE), which
#            tmpfs refuses, so on tmpfs every first write of a cluster fails
#            (the earlier "stall in the qcow prefill": multipath retrying
#            failed writes)
#   linear   user:vlun, a linear vdisk of a pool of two member files
#   thin     user:vlun, a thin vdisk (1 MiB chunks) whose region is allocated
#            (prefilled) before the jobs
#   thinft   user:vlun, a thin vdisk whose region is unmapped (blkdiscard)
#            before each write job: every chunk the job touches is a first
#            touch (allocate, zero, publish); only write jobs run here
#   mirror   user:vlun, a linear vdisk on member 0 whose region has a second
#            copy on member 1 (vlunctl mirror add, resynced before the
#            jobs): writes go to both copies, reads to the less busy one
# The user: backstores get BENCH_USER_OPTS (hw_max_sectors=2048: 1 MiB
# commands reach the handler whole; max_data_area_mb=32 through the
# control string: eight 1 MiB commands fit in the ring's data area).
#
# Phase "iscsi": each backstore is LUN 0 of its own target on portals
# 127.0.0.1 and 127.0.0.2, logged in on both, one dm-multipath map each;
# fio runs on /dev/mapper/<map>. Phase "loop": the same backstores as LUNs
# of one tcm_loop target (local sd disks, no iSCSI, no multipath).
# Jobs (fio direct=1 libaio, time_based, region BENCH_REGION from offset 0,
# prefilled with 1 MiB writes): randread-4k-qd1, randread-4k-qd32,
# randwrite-4k-qd32, randrw-64k-qd16 (70% reads), seqread-1m-qd8,
# seqwrite-1m-qd8. Order: for each repeat, for each job, every backend in
# turn, so slow drifts of a busy host hit all backends alike.
#
# Results (synced to <results>/bench_fio/):
#   fio-<transport>-<backend>-<job>-r<n>.json   fio's JSON output
#   cpu-<transport>-<backend>-<job>-r<n>.txt    key=value: wall seconds,
#       guest busy % of both vCPUs (/proc/stat), tcmu-runner CPU % of one
#       vCPU and its busiest thread (name and %), over the job with ramp
#   setup.txt   attributes of the backstores, devices and queue limits
#   bench.conf  the settings of this run
# tests/bench/lab/report.py (scripts/bench) turns them into docs/bench/.
# Settings: the defaults below, or tests/e2e/bench_fio.local.

BENCH_REPEATS=3
BENCH_RUNTIME=5
BENCH_RAMP=2
BENCH_REGION=128M
BENCH_LUN_SIZE=256M
BENCH_TRANSPORTS="iscsi loop"
BENCH_BACKENDS="fileio qcow linear thin thinft mirror"
BENCH_JOBS="randread-4k-qd1 randread-4k-qd32 randwrite-4k-qd32 randrw-64k-qd16 seqread-1m-qd8 seqwrite-1m-qd8"
BENCH_USER_OPTS="hw_max_sectors=2048 control=max_data_area_mb=32"
# qcow as tcmu-runner ships it (as for the anchors of LAB.md)
BENCH_QCOW_OPTS=""
# a prefill that takes longer than this drops the backend from the phase
# (noted in dropped-<transport>.txt) instead of stalling the whole run
BENCH_PREFILL_TIMEOUT=600
BENCH_DIR=/var/lib/bench
BENCH_TGT_BASE=iqn.2003-01.org.vlun.lab:bench
BENCH_LOOP_WWN=naa.5001405b0000b001

# scripts/bench --quick (or a developer) may put an untracked
# tests/e2e/bench_fio.local next to this file with BENCH_*=... lines.
[ -r /lab/e2e/bench_fio.local ] && . /lab/e2e/bench_fio.local

bench_job_args() {
	case $1 in
	randread-4k-qd1) echo "--rw=randread --bs=4k --iodepth=1" ;;
	randread-4k-qd32) echo "--rw=randread --bs=4k --iodepth=32" ;;
	randwrite-4k-qd32) echo "--rw=randwrite --bs=4k --iodepth=32" ;;
	randrw-64k-qd16) echo "--rw=randrw --rwmixread=70 --bs=64k --iodepth=16" ;;
	seqread-1m-qd8) echo "--rw=read --bs=1M --iodepth=8" ;;
	seqwrite-1m-qd8) echo "--rw=write --bs=1M --iodepth=8" ;;
	esac
}
bench_job_writes() { case $1 in randwrite*|randrw*|seqwrite*) return 0 ;; esac; return 1; }

bench_bs_name() { echo "bench_$1"; }
bench_bs_path() {
	case $1 in
	fileio) echo "/backstores/fileio/bench_fileio" ;;
	qcow) echo "/backstores/user:qcow/bench_qcow" ;;
	*) echo "/backstores/user:vlun/bench_$1" ;;
	esac
}
bench_bs_create() {
	case $1 in
	fileio) echo "/backstores/fileio create name=bench_fileio file_or_dev=$BENCH_DIR/fileio.img size=$BENCH_LUN_SIZE" ;;
	qcow) echo "/backstores/user:qcow create name=bench_qcow size=$BENCH_LUN_SIZE cfgstring=$BENCH_DIR/qcowfs/qcow.qcow2 $BENCH_QCOW_OPTS" ;;
	*) echo "/backstores/user:vlun create name=bench_$1 size=$BENCH_LUN_SIZE cfgstring=$BENCH_DIR/pool/$1 $BENCH_USER_OPTS" ;;
	esac
}

bench_prepare() {
	local b
	mkdir -p "$BENCH_DIR"
	mount -t tmpfs -o size=1536M bench "$BENCH_DIR" || return 1
	mkdir -p "$BENCH_DIR/pool"
	for b in $BENCH_BACKENDS; do
		case $b in
		fileio) truncate -s "$BENCH_LUN_SIZE" "$BENCH_DIR/fileio.img" || return 1 ;;
		qcow)
			truncate -s 320M "$BENCH_DIR/qcow.ext4" || return 1
			mkfs.ext4 -q -F "$BENCH_DIR/qcow.ext4" || return 1
			mkdir -p "$BENCH_DIR/qcowfs"
			mount -o loop "$BENCH_DIR/qcow.ext4" "$BENCH_DIR/qcowfs" || return 1
			qemu-img create -q -f qcow2 "$BENCH_DIR/qcowfs/qcow.qcow2" "$BENCH_LUN_SIZE" || return 1
			;;
		esac
	done
	truncate -s 640M "$BENCH_DIR/pool/member0" "$BENCH_DIR/pool/member1" || return 1
	vlunctl pool create benchpool "$BENCH_DIR/pool/member0" "$BENCH_DIR/pool/member1" --meta-size 16M || return 1
	for b in $BENCH_BACKENDS; do
		case $b in
		linear) vlunctl vdisk create "$BENCH_DIR/pool" linear --size "$BENCH_LUN_SIZE" --linear || return 1 ;;
		thin|thinft) vlunctl vdisk create "$BENCH_DIR/pool" "$b" --size "$BENCH_LUN_SIZE" --thin || return 1 ;;
		mirror)
			# only the region is mirrored: the resync writes the second
			# copy in full, and the tmpfs lives in the guest's 2 GiB
			vlunctl vdisk create "$BENCH_DIR/pool" mirror --size "$BENCH_LUN_SIZE" --linear --members 0 &&
				vlunctl mirror add "$BENCH_DIR/pool" mirror --range "0:$BENCH_REGION" --members 1 &&
				vlunctl resync "$BENCH_DIR/pool" --wait || return 1
			;;
		esac
	done
	vlunctl pool show "$BENCH_DIR/pool"
}

bench_targetcli() {
	local b t
	for b in $BENCH_BACKENDS; do bench_bs_create "$b"; done
	for b in $BENCH_BACKENDS; do
		t=$BENCH_TGT_BASE-$b
		echo "/iscsi create $t"
		echo "/iscsi/$t/tpg1/luns create $(bench_bs_path "$b")"
		echo "/iscsi/$t/tpg1/portals create $P1 3260"
		echo "/iscsi/$t/tpg1/portals create $P2 3260"
		echo "/iscsi/$t/tpg1/acls create $INI"
		echo "/iscsi/$t/tpg1 set attribute authentication=0"
	done
}

bench_backstores_ok() {
	local b
	for b in $BENCH_BACKENDS; do
		[ -n "$(configfs_dev "bench_$b")" ] || { echo "no backstore bench_$b in configfs"; return 1; }
	done
}

# ------------------------------------------------------------ devices

# iSCSI: the dm map holding the sd of target <base>-<backend>
bench_iscsi_dev() { # backend
	local sd sess t h
	for sd in /sys/block/sd*; do
		sess=$(readlink -f "$sd/device" | grep -o 'session[0-9]*' | head -n1)
		[ -n "$sess" ] || continue
		t=$(cat "/sys/class/iscsi_session/$sess/targetname" 2>/dev/null)
		[ "$t" = "$BENCH_TGT_BASE-$1" ] || continue
		h=$(ls "$sd/holders" 2>/dev/null | head -n1)
		[ -n "$h" ] && { echo "/dev/mapper/$(cat "/sys/block/$h/dm/name")"; return 0; }
	done
	return 1
}
# tcm_loop: the sd with LUN number = position of the backend in the list
bench_loop_dev() { # backend
	local b i=0 want= sd addr
	for b in $BENCH_BACKENDS; do [ "$b" = "$1" ] && want=$i; i=$((i + 1)); done
	for sd in /sys/block/sd*; do
		addr=$(basename "$(readlink -f "$sd/device")")
		local host=${addr%%:*}
		[ "$(cat "/sys/class/scsi_host/host$host/proc_name" 2>/dev/null)" = tcm_loopback ] || continue
		[ "${addr##*:}" = "$want" ] && { echo "/dev/$(basename "$sd")"; return 0; }
	done
	return 1
}

# SCSI command timeout 180 s on every sd (default 30 s: a starved TCG
# guest times commands out and offlines the device)
bench_scsi_timeouts() {
	local t
	for t in /sys/block/sd*/device/timeout; do echo 180 >"$t"; done 2>/dev/null
	return 0
}

bench_devinfo() { # transport backend dev
	local n; n=$(basename "$(readlink -f "$3")")
	echo "$1 $2 $3 ($n): max_sectors_kb=$(cat /sys/block/$n/queue/max_sectors_kb) nr_requests=$(cat /sys/block/$n/queue/nr_requests) scheduler=$(cat /sys/block/$n/queue/scheduler)"
}

# ------------------------------------------------------------ CPU

bench_runner_pid() { pgrep -x tcmu-runner | head -n1; }
# "utime+stime" of a process, and per thread "tid comm ticks"
bench_proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
bench_thread_ticks() {
	local f
	for f in /proc/"$1"/task/*/stat; do
		awk '{ s = $0; c = substr(s, index(s, "(") + 1); c = substr(c, 1, index(c, ")") - 1);
		       r = substr(s, index(s, ")") + 2); split(r, a, " "); gsub(/ /, "_", c);
		       print $1, c, a[12] + a[13] }' "$f" 2>/dev/null
	done
}
bench_cpu_stat() { head -n1 /proc/stat; }

# bench_run TRANSPORT BACKEND JOB REP DEV
bench_run() {
	local tr=$1 b=$2 j=$3 r=$4 dev=$5
	local base=$LAB_SDIR/$tr-$b-$j-r$r pid s0 s1 p0 p1 t0 t1 th0 th1 rc
	pid=$(bench_runner_pid)
	if [ "$b" = thinft ]; then
		# every chunk the job touches is unallocated again
		blkdiscard -o 0 -l "$(numfmt --from=iec "$BENCH_REGION")" "$dev" ||
			echo "blkdiscard on $dev failed: first touch not guaranteed" >>"$base.note"
	fi
	s0=$(bench_cpu_stat); p0=$(bench_proc_ticks "$pid"); th0=$(bench_thread_ticks "$pid"); t0=$(lab_uptime)
	# shellcheck disable=SC2046
	timeout $((BENCH_RUNTIME + BENCH_RAMP + 120)) fio --name="$j" --filename="$dev" --direct=1 \
		--ioengine=libaio $(bench_job_args "$j") --size="$BENCH_REGION" --time_based \
		--runtime="$BENCH_RUNTIME" --ramp_time="$BENCH_RAMP" --randrepeat=0 --norandommap \
		--lat_percentiles=1 --output-format=json --output="$LAB_SDIR/fio-$tr-$b-$j-r$r.json" \
		>"$base.out" 2>&1
	rc=$?
	t1=$(lab_uptime); s1=$(bench_cpu_stat); p1=$(bench_proc_ticks "$pid"); th1=$(bench_thread_ticks "$pid")
	{
		echo "rc=$rc"
		awk -v a="$t0" -v b="$t1" 'BEGIN { printf "wall_s=%.2f\n", b - a }'
		# guest busy: 100 - idle - iowait, of all vCPUs
		printf '%s\n%s\n' "$s0" "$s1" | awk '
			{ t = 0; for (i = 2; i <= NF; i++) t += $i; tot[NR] = t; idle[NR] = $5 + $6 }
			END { dt = tot[2] - tot[1]; printf "guest_busy_pct=%.1f\n", (dt > 0) ? 100 * (1 - (idle[2] - idle[1]) / dt) : 0 }'
		awk -v a="$t0" -v b="$t1" -v p0="$p0" -v p1="$p1" -v hz="$(getconf CLK_TCK)" \
			'BEGIN { printf "runner_cpu_pct=%.1f\n", (b > a) ? 100 * (p1 - p0) / hz / (b - a) : 0 }'
		# busiest runner thread over the job
		{ echo "$th0" | sed 's/^/0 /'; echo "$th1" | sed 's/^/1 /'; } | awk -v a="$t0" -v b="$t1" -v hz="$(getconf CLK_TCK)" '
			$1 == 0 { s[$2] = $4; next }
			$1 == 1 { d = $4 - s[$2]; if (d > best) { best = d; name = $3 } }
			END { printf "runner_top_thread=%s\nrunner_top_thread_pct=%.1f\n", name == "" ? "-" : name,
			      (b > a) ? 100 * best / hz / (b - a) : 0 }'
	} >"$base.cpu"
	mv "$base.cpu" "$LAB_SDIR/cpu-$tr-$b-$j-r$r.txt"
	[ $rc = 0 ] || { echo "fio $j on $b over $tr: rc $rc"; tail -n 5 "$base.out"; }
	rm -f "$base.out"
	return $rc
}

bench_prefill() { # dev
	timeout "$BENCH_PREFILL_TIMEOUT" fio --name=prefill --filename="$1" --direct=1 --ioengine=libaio \
		--rw=write --bs=1M --iodepth=8 --size="$BENCH_REGION" >/dev/null 2>&1
}

# bench_phase TRANSPORT : all repeats of all jobs on every backend
bench_phase() {
	local tr=$1 b j r dev fails=0 t0 keep=
	declare -A devs
	for b in $BENCH_BACKENDS; do
		if [ "$tr" = iscsi ]; then dev=$(bench_iscsi_dev "$b"); else dev=$(bench_loop_dev "$b"); fi
		[ -n "$dev" ] || { echo "no $tr device for $b"; return 1; }
		devs[$b]=$dev
		bench_devinfo "$tr" "$b" "$dev" >>"$LAB_SDIR/setup.txt"
	done
	for b in $BENCH_BACKENDS; do
		[ "$b" = thinft ] && { keep+=" $b"; continue; }
		say "      prefill $b ($BENCH_REGION) over $tr: ${devs[$b]}"
		t0=$(lab_uptime)
		if bench_prefill "${devs[$b]}"; then
			keep+=" $b"
			echo "$tr $b prefill $(awk -v a="$t0" -v b="$(lab_uptime)" 'BEGIN { printf "%.1f", b - a }') s" \
				>>"$LAB_SDIR/setup.txt"
		elif [ "$b" = fileio ]; then
			echo "prefill of fileio over $tr failed: no reference, phase skipped"
			return 1
		else
			echo "$b: prefill of $BENCH_REGION over $tr did not finish in ${BENCH_PREFILL_TIMEOUT}s (or failed): dropped" |
				tee -a "$LAB_SDIR/dropped-$tr.txt"
			fails=$((fails + 1))
		fi
	done
	for ((r = 1; r <= BENCH_REPEATS; r++)); do
		for j in $BENCH_JOBS; do
			for b in $keep; do
				[ "$b" = thinft ] && ! bench_job_writes "$j" && continue
				bench_run "$tr" "$b" "$j" "$r" "${devs[$b]}" || fails=$((fails + 1))
			done
			say "      $tr repeat $r/$BENCH_REPEATS: $j done (t=$(_lab_t "$LAB_T0")s)"
		done
		cp -a "$LAB_R/." /results/ 2>/dev/null
	done
	[ $fails = 0 ]
}

bench_attribs() {
	local b d a
	for b in $BENCH_BACKENDS; do
		d=$(configfs_dev "bench_$b")
		echo "== $b: $d"
		cat "$d/info" 2>/dev/null
		for a in hw_max_sectors max_sectors hw_queue_depth queue_depth emulate_write_cache \
			 max_data_area_mb cmd_time_out qfull_time_out hw_block_size; do
			[ -e "$d/attrib/$a" ] && printf '  %-22s %s\n' "$a" "$(cat "$d/attrib/$a")"
		done
	done
}

scenario_main() {
	local t
	{
		echo "repeats=$BENCH_REPEATS runtime=$BENCH_RUNTIME ramp=$BENCH_RAMP region=$BENCH_REGION lun_size=$BENCH_LUN_SIZE"
		echo "transports=$BENCH_TRANSPORTS"
		echo "backends=$BENCH_BACKENDS"
		echo "jobs=$BENCH_JOBS"
		echo "user_opts=$BENCH_USER_OPTS"
		echo "kernel=$(uname -r) fio=$(fio --version) nproc=$(nproc) mem_kb=$(awk '/MemTotal/ { print $2 }' /proc/meminfo)"
	} >"$LAB_SDIR/bench.conf"

	step "backing files on one tmpfs, a vlun pool and its vdisks"
	must modprobe tcm_loop
	must bench_prepare
	step "tcmu-runner on the system bus"
	must runner_start
	step "backstores and one iSCSI target per backstore (targetcli)"
	bench_targetcli | tee "$LAB_SDIR/targetcli-batch.txt" | tcli
	must bench_backstores_ok
	bench_attribs >"$LAB_SDIR/setup.txt"
	show cat "$LAB_SDIR/setup.txt"

	for t in $BENCH_TRANSPORTS; do
		case $t in
		iscsi)
			step "iSCSI: log in to every target on both portals, one multipath map each"
			must iscsi_setup
			# a TCG guest on a busy host stalls for seconds: no
			# NOP-Out pings, long replacement timeout (set before
			# discovery: new node records take them from here)
			sed -i -e 's/^node.conn\[0\].timeo.noop_out_interval.*/node.conn[0].timeo.noop_out_interval = 0/' \
			       -e 's/^node.conn\[0\].timeo.noop_out_timeout.*/node.conn[0].timeo.noop_out_timeout = 0/' \
			       -e 's/^node.session.timeo.replacement_timeout.*/node.session.timeo.replacement_timeout = 120/' \
				/etc/iscsi/iscsid.conf
			must iscsiadm -m discovery -t sendtargets -p "$P1:3260"
			must iscsiadm -m node --login
			udevadm settle
			bench_scsi_timeouts
			must mpath_start
			local n; n=$(echo $BENCH_BACKENDS | wc -w)
			must wait_for 60 sh -c "[ \$(multipath -ll 2>/dev/null | grep -c 'active ready running') -ge $((2 * n)) ]"
			show multipath -ll
			step "fio over iSCSI + multipath ($BENCH_REPEATS repeats)"
			check "every fio job over iSCSI + multipath completed" bench_phase iscsi
			step "iSCSI: log out, multipath off"
			mpath_stop
			iscsi_logout
			;;
		loop)
			step "tcm_loop: the same backstores as LUNs of one loopback target"
			local b i=0 cmds=("/loopback create $BENCH_LOOP_WWN")
			for b in $BENCH_BACKENDS; do
				cmds+=("/loopback/$BENCH_LOOP_WWN/luns create $(bench_bs_path "$b") lun=$i")
				i=$((i + 1))
			done
			printf '%s\n' "${cmds[@]}" | tcli
			udevadm settle
			bench_scsi_timeouts
			must wait_for 30 sh -c "[ \$(ls /sys/class/scsi_host/*/proc_name | xargs grep -l tcm_loopback | wc -l) -ge 1 ]"
			must wait_for 30 bench_loop_dev "$(echo $BENCH_BACKENDS | awk '{ print $NF }')"
			show lsblk -o NAME,SIZE,TRAN,HCTL
			step "fio over tcm_loop ($BENCH_REPEATS repeats)"
			check "every fio job over tcm_loop completed" bench_phase loop
			;;
		*)
			skip "transport $t" "unknown transport (iscsi, loop)"
			;;
		esac
	done
	show sh -c "tail -n 20 $LAB_SDIR/tcmu-runner0.log"
	show df -h "$BENCH_DIR"
	show free -m
}
