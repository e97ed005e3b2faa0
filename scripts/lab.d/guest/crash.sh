# guest/crash.sh — helpers of the crash scenarios (crash_restart,
# power_cut), sourced by them after lib.sh: a pool with a thin and a linear
# vdisk exported as two LUNs, the knobs that make the host wait for a dead
# backend instead of failing I/O, fio JSON summaries, and the pool check.

# crash_stack_up SPEC... : SPEC = name:layout:size[:cfg-options[:pool]],
# e.g. vdisk0:thin:256M or vdisk1:thin:128M:;wce=0:pool1. Each pool (default
# pool0) is /var/lib/vlun/<pool> on two 384 MiB member files. The vdisks
# become LUN 0, 1, ... on both portals, logged in, one multipath map each:
# MAPS[i] is LUN i's map. With CRASH_KEEP_POOL=1 the pools and their vdisks
# already exist (a second boot).
crash_stack_up() {
	local spec name layout size opts pool out n i
	local -a names=() specs=("$@")
	if [ "${CRASH_KEEP_POOL:-0}" != 1 ]; then
		step "pools on two members each; vdisks $(printf '%s ' "$@")(vlunctl)"
		for spec in "$@"; do
			IFS=: read -r name layout size opts pool <<<"$spec"
			pool=${pool:-pool0}
			[ -d "/var/lib/vlun/$pool" ] || POOL_DIR=/var/lib/vlun/$pool must pool_create "$pool" 384M 2
			must vlunctl vdisk create "/var/lib/vlun/$pool" "$name" --size "$size" "--$layout"
		done
	fi
	for spec in "$@"; do names+=("${spec%%:*}"); done
	step "tcmu-runner, user:vlun backstores ${names[*]} with cmd_time_out=0, LUN 0..$(($# - 1)) on $P1 and $P2"
	must runner_start
	out=$({
		for spec in "$@"; do
			IFS=: read -r name layout size opts pool <<<"$spec"
			echo "/backstores/user:vlun create name=$name size=$size cfgstring=/var/lib/vlun/${pool:-pool0}/$name$opts hw_max_sectors=2048"
			# commands wait in the ring for a restarted runner (default: fail after 30 s)
			echo "/backstores/user:vlun/$name set attribute cmd_time_out=0"
		done
		echo "/iscsi create $TGT"
		for name in "${names[@]}"; do
			echo "/iscsi/$TGT/tpg1/luns create /backstores/user:vlun/$name"
		done
		echo "/iscsi/$TGT/tpg1/portals create $P1 3260"
		echo "/iscsi/$TGT/tpg1/portals create $P2 3260"
		echo "/iscsi/$TGT/tpg1/acls create $INI"
		echo "/iscsi/$TGT/tpg1 set attribute authentication=0"
	} | tcli)
	echo "$out"
	for name in "${names[@]}"; do
		must test -n "$(configfs_dev "$name")"
		must eq "$(cat "$(configfs_dev "$name")/attrib/cmd_time_out")" 0
	done
	must target_ok
	step "iSCSI login on both portals; multipath no_path_retry queue; SCSI timeout 180 s"
	must iscsi_setup
	must iscsi_login
	must wait_for 20 sh -c "[ \$(iscsiadm -m session 2>/dev/null | grep -c $TGT) = 2 ]"
	must udevadm settle
	# no SCSI error handling (abort, reset, session drop) while the runner
	# is down: commands may wait 180 s
	local p
	for p in /sys/class/scsi_disk/*/device/timeout; do
		echo 180 >"$p" || return 1
	done
	must mpath_start
	# queue forever while no path works (the lab's default gives up after
	# no_path_retry 30 x polling_interval 2 s), and let the TUR checker wait
	# as long as a command may (its default: the SCSI timeout when multipathd
	# first saw the path)
	must sed -i -e 's/no_path_retry 30/no_path_retry queue/' \
		-e 's/^\(\s*\)polling_interval 2$/&\n\1checker_timeout 180/' /etc/multipath.conf
	must grep -q 'checker_timeout 180' /etc/multipath.conf
	must multipathd reconfigure
	CRASH_NMAPS=$#
	must wait_for 60 crash_maps_ready
	MAPS=()
	for ((i = 0; i < $#; i++)); do
		MAPS[i]=$(crash_map_of_lun $i)
		must test -n "${MAPS[i]}"
		must sh -c "dmsetup table ${MAPS[i]} | grep -q queue_if_no_path"
	done
	show multipath -ll
	show dmsetup table
	show sh -c "grep -H . /sys/class/scsi_disk/*/cache_type"
	for ((i = 0; i < $#; i++)); do
		IFS=: read -r name layout size opts pool <<<"${specs[i]}"
		fact "$name (${pool:-pool0}, $layout $size${opts:+ $opts}) = LUN $i = /dev/mapper/${MAPS[i]}"
	done
}

# every map (CRASH_NMAPS of them) with two active paths
crash_maps_ready() {
	local m n=0
	for m in $(dmsetup ls --target multipath 2>/dev/null | awk '{print $1}'); do
		[ "$(multipath -ll "$m" 2>/dev/null | grep -c 'active ready running')" = 2 ] && n=$((n + 1))
	done
	[ $n = "${CRASH_NMAPS:-2}" ]
}

# the multipath map whose paths are LUN N
crash_map_of_lun() {
	local m
	for m in $(dmsetup ls --target multipath 2>/dev/null | awk '{print $1}'); do
		multipath -ll "$m" 2>/dev/null | grep -qE " [0-9]+:[0-9]+:[0-9]+:$1 " && { echo "$m"; return 0; }
	done
	return 1
}

# fio_json_summary FILE : one line per job "name err=E writes=W reads=R
# verify_errors=V"; fails unless every job has error 0
fio_json_summary() {
	python3 - "$1" <<-'EOF'
	import json, sys
	try:
	    d = json.load(open(sys.argv[1]))
	except Exception as e:
	    print("fio JSON unreadable: %s" % e)
	    sys.exit(1)
	bad = 0
	for j in d["jobs"]:
	    w, r = j["write"], j["read"]
	    print("%s err=%d writes=%d (%d KiB) reads=%d (%d KiB) total_err=%d" % (
	        j["jobname"], j["error"], w["total_ios"], w["io_bytes"] // 1024,
	        r["total_ios"], r["io_bytes"] // 1024, j.get("total_err", 0)))
	    if j["error"] != 0 or j.get("total_err", 0) != 0:
	        bad = 1
	sys.exit(bad)
	EOF
}

# pool_valid SPEC... : every pool of the SPECs (see crash_stack_up)
# assembles from its members and its metadata is valid: vlunctl pool show,
# vdisk show of each vdisk, and, where vlunctl has one, its check command
pool_valid() {
	local spec name layout size opts pool dir
	local -A seen=()
	for spec in "$@"; do
		IFS=: read -r name layout size opts pool <<<"$spec"
		dir=/var/lib/vlun/${pool:-pool0}
		if [ -z "${seen[$dir]:-}" ]; then
			seen[$dir]=1
			vlunctl pool show "$dir" || return 1
			if vlunctl help 2>&1 | grep -qE '^ +pool check '; then
				vlunctl pool check "$dir" || return 1
			elif vlunctl help 2>&1 | grep -qE '^ +check '; then
				vlunctl check "$dir" || return 1
			fi
		fi
		vlunctl vdisk show "$dir" "$name" | sed -n '1,/^Extents:/p' || return 1
	done
	return 0
}
