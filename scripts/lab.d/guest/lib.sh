# guest/lib.sh — the scenario library of the lab guest (sourced).
#
# A scenario is a file tests/e2e/<name>.sh (staged to /lab/e2e) that defines
# scenario_main and calls, in order:
#   step "title"          a visible progress line; names the step a failure is in
#   must cmd...           a prerequisite: on failure the scenario stops, its
#                         step is a FAIL and the relevant logs are shown
#   check "what" cmd...   an assertion: one PASS/FAIL line and one e2e.tsv row
#   skip "what" "why"     an assertion that cannot run here (SKIP row)
#   show cmd...           runs cmd; its output goes to the log (and, with
#                         LAB_VERBOSE=1, indented to the console)
# and the stack helpers below (pool, runner, target, iSCSI, multipath, PR).
# Everything a scenario prints goes to its log; fd 3 is the console.
# After scenario_main, the runner tears the whole stack down (lab_teardown).

LAB_R=${LAB_R:-/run/results}          # results in the guest; synced to /results
LAB_BACKEND=${LAB_BACKEND:-vlun}      # vlun | qcow | fileio
LAB_VERBOSE=${LAB_VERBOSE:-0}

TGT=iqn.2003-01.org.vlun.lab:vdisk
INI=iqn.2003-01.org.vlun.lab:host1          # the kernel initiator (open-iscsi)
INI2=iqn.2003-01.org.vlun.lab:host2         # a second host: an iscsiadm iface
LIBISCSI_INI=iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test
LIBISCSI_INI2=iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test-2
P1=127.0.0.1 P2=127.0.0.2
POOL_DIR=/var/lib/vlun/pool0
MAP=mpatha

# sourced by hand in `scripts/lab shell`: the console is stdout, results
# go to /run/results/shell
LAB_SCENARIO=${LAB_SCENARIO:-shell}
LAB_SDIR=${LAB_SDIR:-$LAB_R/$LAB_SCENARIO}
LAB_T0=${LAB_T0:-0}
{ true >&3; } 2>/dev/null || exec 3>&1
case $- in *i*) mkdir -p "$LAB_SDIR" ;; esac

# ------------------------------------------------------------ reporting

lab_uptime() { cut -d' ' -f1 /proc/uptime; }
_lab_t() { awk -v a="$1" -v b="$(lab_uptime)" 'BEGIN { printf "%.1f", b - a }'; }

# to the console and the log
say() { printf '%s\n' "$*" >&3; printf '%s\n' "$*"; }
say_indented() { sed 's/^/      /' | tee /dev/fd/3; }

_lab_row() { # result what seconds detail
	printf '%s\t%s\t%s\t%s\t%s\n' "$LAB_SCENARIO" "$2" "$1" "$3" "$(printf '%s' "$4" | tr '\t\n' '  ' | cut -c1-300)" >>"$LAB_R/e2e.tsv"
}

_LAB_STEP_N=0
step() {
	_LAB_STEP_N=$((_LAB_STEP_N + 1))
	LAB_STEP="$*"
	_LAB_STEP_T0=$(lab_uptime)
	say ""
	say "==> [$LAB_SCENARIO] step $_LAB_STEP_N: $LAB_STEP   (t=$(_lab_t "$LAB_T0")s)"
}

show() {
	local t0 rc; t0=$(lab_uptime)
	echo "+ $*"
	if [ "$LAB_VERBOSE" = 1 ]; then
		"$@" 2>&1 | say_indented
		rc=${PIPESTATUS[0]}
	else
		"$@" 2>&1
		rc=$?
	fi
	echo "  (rc $rc, $(_lab_t "$t0")s)"
	return $rc
}

# Logs worth seeing when something failed: the command's own output, then
# the tails of tcmu-runner's log and the kernel log.
show_relevant_logs() { # [file-with-command-output]
	{
		if [ -n "${1:-}" ] && [ -s "$1" ]; then
			echo "--- output (last 20 lines):"; tail -n 20 "$1"
		fi
		local tl; tl=$(ls "$LAB_SDIR"/tcmu-runner*.log 2>/dev/null | tail -n1)
		if [ -n "$tl" ]; then echo "--- $(basename "$tl") (last 12 lines):"; tail -n 12 "$tl"; fi
		echo "--- dmesg (last 10 lines):"; dmesg | tail -n 10
	} | sed 's/^/      /' >&3
}

# must cmd... : the scenario cannot go on if cmd fails
must() {
	local out t0; out=$(mktemp); t0=$(lab_uptime)
	echo "+ $*"
	"$@" >"$out" 2>&1
	local rc=$?
	cat "$out"
	echo "  (rc $rc, $(_lab_t "$t0")s)"
	if [ $rc != 0 ]; then
		say "FAIL  [$LAB_SCENARIO] step '$LAB_STEP': '$*' exited $rc"
		_lab_row FAIL "step: $LAB_STEP" "$(_lab_t "$_LAB_STEP_T0")" "'$*' exited $rc"
		show_relevant_logs "$out"
		rm -f "$out"
		exit 1
	fi
	[ "$LAB_VERBOSE" = 1 ] && [ -s "$out" ] && say_indented <"$out" >/dev/null
	rm -f "$out"
	return 0
}

# check "what" cmd... : an assertion
check() {
	local what=$1; shift
	local out t0; out=$(mktemp); t0=$(lab_uptime)
	echo "+ check '$what': $*"
	"$@" >"$out" 2>&1
	local rc=$?
	cat "$out"
	echo "  (rc $rc, $(_lab_t "$t0")s)"
	if [ $rc = 0 ]; then
		say "PASS  [$LAB_SCENARIO] $what"
		_lab_row PASS "$what" "$(_lab_t "$t0")" ""
	else
		say "FAIL  [$LAB_SCENARIO] $what   (in step '$LAB_STEP': '$*' exited $rc)"
		_lab_row FAIL "$what" "$(_lab_t "$t0")" "$(tail -n 3 "$out")"
		show_relevant_logs "$out"
	fi
	rm -f "$out"
	return $rc
}

# fact "text": a line for the run's summary (results/<scenario>/facts.txt)
fact() { say "      * $*"; printf '%s\n' "$*" >>"$LAB_SDIR/facts.txt"; }

skip() { # "what" "why"
	say "SKIP  [$LAB_SCENARIO] $1 ($2)"
	_lab_row SKIP "$1" 0 "$2"
}

# predicates for check
eq() { [ "$1" = "$2" ] || { echo "expected '$2', got '$1'"; return 1; }; }
contains() { grep -qiE -- "$2" <<<"$1" || { echo "no match for /$2/ in:"; echo "$1"; return 1; }; }
file_contains() { grep -qiE -- "$2" "$1" || { echo "no match for /$2/ in $1; its tail:"; tail -n 10 "$1"; return 1; }; }
absent() { [ ! -e "$1" ] || { echo "$1 exists"; ls -la "$1"; return 1; }; }

# wait_for SECONDS cmd... : poll cmd every 0.5 s
wait_for() {
	local n=$(( $1 * 2 )); shift
	while [ $n -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.5; n=$((n - 1))
	done
	echo "timed out waiting for: $*"
	return 1
}

# ------------------------------------------------------------ the kernel

lab_modules() {
	local m
	for m in target_core_mod target_core_user target_core_file iscsi_target_mod \
		 iscsi_tcp dm_multipath sg sd_mod loop; do
		modprobe "$m" || return 1
	done
	[ -d /sys/kernel/config/target/core ]
}

# ------------------------------------------------------------ backstores

# pool_create NAME MEMBER_SIZE N : a pool of N member files (vlunctl)
pool_create() {
	local name=$1 size=$2 n=$3 i members=()
	mkdir -p "$POOL_DIR"
	for ((i = 0; i < n; i++)); do
		truncate -s "$size" "$POOL_DIR/member$i" || return 1
		members+=("$POOL_DIR/member$i")
	done
	vlunctl pool create "$name" "${members[@]}"
}

# backstore_path NAME : targetcli path of the backstore for LAB_BACKEND
backstore_path() {
	case $LAB_BACKEND in
	vlun) echo "/backstores/user:vlun/$1" ;;
	qcow) echo "/backstores/user:qcow/$1" ;;
	fileio) echo "/backstores/fileio/$1" ;;
	esac
}

# The targetcli line that creates backstore NAME of SIZE over what
# backing_prepare made (vlun: the vdisk NAME in POOL_DIR).
backstore_create_cmd() {
	case $LAB_BACKEND in
	# hw_max_sectors: 1 MiB commands reach the handler whole (LIO's default
	# of 128 sectors splits them)
	vlun) echo "/backstores/user:vlun create name=$1 size=$2 cfgstring=$POOL_DIR/$1 hw_max_sectors=2048" ;;
	qcow) echo "/backstores/user:qcow create name=$1 size=$2 cfgstring=/var/lib/lab/$1.qcow2" ;;
	fileio) echo "/backstores/fileio create name=$1 file_or_dev=/var/lib/lab/$1.img size=$2 write_back=false" ;;
	esac
}

# backing_prepare NAME SIZE : what the backstore sits on (not vlun: see demo)
backing_prepare() {
	mkdir -p /var/lib/lab
	case $LAB_BACKEND in
	qcow) qemu-img create -q -f qcow2 "/var/lib/lab/$1.qcow2" "$2" ;;
	fileio) truncate -s "$2" "/var/lib/lab/$1.img" ;;
	vlun) return 0 ;;
	esac
}

# configfs directory of a backstore (any HBA), empty if none
configfs_dev() {
	ls -d /sys/kernel/config/target/core/*/"$1" 2>/dev/null | head -n1
}

# ------------------------------------------------------------ tcmu-runner

runner_running() { pgrep -x tcmu-runner >/dev/null; }
# on the bus, asked without D-Bus activation (which would start a second,
# stock runner)
runner_on_bus() {
	dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
		org.freedesktop.DBus.NameHasOwner string:org.kernel.TCMUService1 2>/dev/null | grep -q 'boolean true'
}
runner_start() {
	runner_running && { echo "tcmu-runner already runs"; return 0; }
	mkdir -p "$LAB_SDIR"
	local n; n=$(ls "$LAB_SDIR"/tcmu-runner*.log 2>/dev/null | wc -l)
	# tcmu-runner names its log tcmu-runner.log inside the -l directory
	mkdir -p "$LAB_SDIR/runner$n"
	tcmu-runner -l "$LAB_SDIR/runner$n" >"$LAB_SDIR/runner$n/stdout" 2>&1 &
	ln -sfn "runner$n/tcmu-runner.log" "$LAB_SDIR/tcmu-runner$n.log"
	wait_for 60 runner_on_bus || { echo "tcmu-runner did not come onto the system bus"; return 1; }
	echo "tcmu-runner pid $(pgrep -x tcmu-runner) on the bus"
}
runner_stop() {
	runner_running || return 0
	pkill -TERM -x tcmu-runner
	wait_for 30 sh -c '! pgrep -x tcmu-runner' || { pkill -KILL -x tcmu-runner; sleep 1; }
	! runner_running
}

# ------------------------------------------------------------ targetcli

# tcli: one targetcli process reading a batch from stdin (one call costs
# ~2 s under TCG). Prints targetcli's output without the prompts; unbuffered,
# so that errors (stderr) stay in order with the rest (stdout).
tcli() {
	{ echo "set global auto_add_default_portal=false auto_save_on_exit=false"; cat; echo exit; } |
		PYTHONUNBUFFERED=1 targetcli 2>&1 | sed -e 's/\x1b\[[0-9;]*m//g' -e 's#^/[^>]*> *##' |
		grep -vE '^$|^Warning: Could not load preferences|^targetcli shell version|^Copyright|^For help on commands'
}

# tcli_each CMD... : one targetcli process for several commands; prints
# each command's output as one line "<n>\t<output joined by ' | '>", so a
# caller can look at every command's answer (a `pwd` after each separates
# them).
tcli_each() {
	local c raw; raw=$(mktemp)
	{ printf 'cd /backstores\npwd\n'; for c in "$@"; do printf '%s\ncd /backstores\npwd\n' "$c"; done; } | tcli >"$raw"
	{ echo "--- targetcli's answers:"; cat "$raw"; echo "---"; } >&2
	awk 'BEGIN { n = 0; out = "" }
	     /(^|> )\/backstores$/ { if (n > 0) print n "\t" out; n++; out = ""; next }
	     { out = (out == "" ? $0 : out " | " $0) }' "$raw"
	rm -f "$raw"
}

# target_export BACKSTORE_PATH : iSCSI target TGT, LUN 0, portals P1 and P2
# in one TPG, ACLs for both hosts and for libiscsi's two initiators.
target_export_cmds() {
	local n
	echo "/iscsi create $TGT"
	echo "/iscsi/$TGT/tpg1/luns create $1"
	echo "/iscsi/$TGT/tpg1/portals create $P1 3260"
	echo "/iscsi/$TGT/tpg1/portals create $P2 3260"
	for n in $INI $INI2 $LIBISCSI_INI $LIBISCSI_INI2; do
		echo "/iscsi/$TGT/tpg1/acls create $n"
	done
	echo "/iscsi/$TGT/tpg1 set attribute authentication=0"
}
target_ok() {
	[ -d "/sys/kernel/config/target/iscsi/$TGT/tpgt_1/lun/lun_0" ] &&
		[ "$(cat "/sys/kernel/config/target/iscsi/$TGT/tpgt_1/enable")" = 1 ] &&
		ss -ltn | grep -q "$P1:3260 " && ss -ltn | grep -q "$P2:3260 "
}

# ------------------------------------------------------------ initiator

iscsi_setup() {
	echo "InitiatorName=$INI" >/etc/iscsi/initiatorname.iscsi
	cat >/etc/iscsi/iscsid.conf <<-EOC
	node.startup = manual
	node.session.timeo.replacement_timeout = 5
	node.conn[0].timeo.noop_out_interval = 2
	node.conn[0].timeo.noop_out_timeout = 5
	node.session.initial_login_retry_max = 4
	EOC
	pgrep -x iscsid >/dev/null || iscsid || return 1
	sleep 1
}
iscsi_sessions() { iscsiadm -m session 2>/dev/null | grep -c "$TGT"; }
iscsi_login() {
	iscsiadm -m discovery -t sendtargets -p "$P1:3260" || return 1
	iscsiadm -m node -T "$TGT" --login || return 1
	udevadm settle
	iscsiadm -m session
}
iscsi_logout() {
	iscsiadm -m node -T "$TGT" --logout 2>/dev/null
	iscsiadm -m node -o delete 2>/dev/null
	udevadm settle
	return 0
}

# ------------------------------------------------------------ multipath

mpath_start() {
	mkdir -p /etc/multipath
	rm -f /etc/multipath/bindings /etc/multipath/wwids
	cat >/etc/multipath.conf <<-'EOC'
	defaults {
		user_friendly_names yes
		find_multipaths no
		reservation_key file
		polling_interval 2
	}
	blacklist {
		devnode "^vd[a-z]"
	}
	devices {
		device {
			# no ALUA groups are configured, so no TPGS: the built-in
			# LIO-ORG entry's "prio alua" would fail on every check
			vendor "LIO-ORG"
			product ".*"
			detect_prio no
			prio const
			hardware_handler "0"
			path_grouping_policy multibus
			no_path_retry 30
		}
	}
	EOC
	pgrep -x multipathd >/dev/null || multipathd || return 1
	wait_for 30 test -e /dev/mapper/$MAP || return 1
	multipath -r >/dev/null 2>&1
	udevadm settle
}
# the sd devices of the map, one per line
mpath_paths() { multipath -ll "$MAP" 2>/dev/null | grep -oE ' sd[a-z]+ ' | tr -d ' '; }
mpath_active() { multipath -ll "$MAP" 2>/dev/null | grep -c 'active ready running'; }
mpath_stop() {
	multipath -F >/dev/null 2>&1
	pgrep -x multipathd >/dev/null && multipathd shutdown >/dev/null 2>&1
	wait_for 10 sh -c '! pgrep -x multipathd'
	# forget the WWID -> mpathX bindings, or the next LUN becomes mpathb
	rm -f /etc/multipath/prkeys /etc/multipath/bindings /etc/multipath/wwids
	return 0
}

# ------------------------------------------------------------ PR

# sg_persist and mpathpersist with the unit-attention retry: LIO queues PR
# unit attentions for every session of the initiator, the sender's too
# (sg3_utils exit status 6).
pr_retry() {
	local i rc
	for i in 1 2 3 4; do
		"$@"; rc=$?
		[ $rc = 6 ] || return $rc
		echo "(unit attention; retry $i)"
	done
	return $rc
}
sgp() { pr_retry sg_persist "$@"; }
mpp() { pr_retry mpathpersist "$@"; }
# registered keys seen through a device, one per line (lowercase, 0x...)
pr_keys() { sgp --in --read-keys "$1" 2>/dev/null | awk '/^ +0x/ { print tolower($1) }'; }
pr_holder() { sgp --in --read-reservation "$1" 2>/dev/null | awk '/Key=/ { sub(/.*Key=/, ""); print tolower($1) }'; }
pr_type() { sgp --in --read-reservation "$1" 2>/dev/null | sed -n 's/.*type: *//p'; }
pr_clear() { # device
	[ -n "$(pr_keys "$1")" ] || return 0
	sgp --out --register-ignore --param-sark=0xfeedface "$1" &&
		sgp --out --clear --param-rk=0xfeedface "$1"
}

# ------------------------------------------------------------ data

# digest DEV BYTES : sha256 of the first BYTES (a multiple of 1 MiB), O_DIRECT
digest() {
	dd if="$1" bs=1M count=$(( $2 / 1048576 )) iflag=direct status=none | sha256sum | cut -c1-16
}

# ------------------------------------------------------------ power cut

# lab_power_cut : cut the guest's power now, with whatever I/O is in flight.
# Only in a scenario whose header says "# reboot: power-cut": the host gave
# it a data disk (/dev/vdb, the same one on every boot of the run), and on
# the console line below it kills QEMU with SIGKILL (no shutdown, no sync,
# no flush), boots again and calls the scenario's scenario_after_reboot
# with LAB_BOOT=2 (3, ... if that cuts again). The results so far are
# copied to the host first, without sync(1), which would flush the data
# disk too (the 9p share writes through to the host).
lab_power_cut() {
	[ -b /dev/vdb ] || { say "FAIL  [$LAB_SCENARIO] power cut: no data disk (header '# reboot: power-cut' missing?)"; return 1; }
	say "      cutting the power (boot ${LAB_BOOT:-1}) at t=$(_lab_t "$LAB_T0")s"
	cp -a "$LAB_R/." /results/ 2>/dev/null
	say "[lab] power-cut: $LAB_SCENARIO boot ${LAB_BOOT:-1}"
	sleep 120
	say "FAIL  [$LAB_SCENARIO] the host did not cut the power within 120 s"
	_lab_row FAIL "power cut" 120 "no SIGKILL from the host after the power-cut line"
	return 1
}

# ------------------------------------------------------------ dm members, mirrors

# Pool members that are device-mapper devices (dm-linear over a loop device
# over a file), so that a member can fail at run time: its table is swapped
# for dm-error or dm-flakey and back (suspend, reload, resume).
DM_DIR=/var/lib/vlun-dm                     # backing files, NAME.loop

# dm_members_create PREFIX SIZE N : /dev/mapper/PREFIX0 .. PREFIX<N-1>
dm_members_create() {
	local pre=$1 size=$2 n=$3 i loop
	modprobe dm_mod && modprobe dm_flakey || return 1
	mkdir -p "$DM_DIR"
	for ((i = 0; i < n; i++)); do
		truncate -s "$size" "$DM_DIR/$pre$i" || return 1
		loop=$(losetup -f --show "$DM_DIR/$pre$i") || return 1
		echo "$loop" >"$DM_DIR/$pre$i.loop"
		dmsetup create "$pre$i" --table "0 $(blockdev --getsz "$loop") linear $loop 0" || return 1
	done
	udevadm settle
	for ((i = 0; i < n; i++)); do test -b "/dev/mapper/$pre$i" || return 1; done
}
# dm_member_set NAME linear | error | flakey UP DOWN : swap NAME's table
# (flakey: UP seconds fine, DOWN seconds every I/O fails, repeating)
dm_member_set() {
	local name=$1 loop sz table
	loop=$(cat "$DM_DIR/$name.loop") || return 1
	sz=$(blockdev --getsz "$loop") || return 1
	case $2 in
	linear) table="0 $sz linear $loop 0" ;;
	error) table="0 $sz error" ;;
	flakey) table="0 $sz flakey $loop 0 $3 $4" ;;
	*) echo "dm_member_set: unknown table '$2'"; return 1 ;;
	esac
	# no udev sync: nothing waits for udev's blkid on a device that fails
	dmsetup suspend --noudevsync "$name" && dmsetup reload "$name" --table "$table" &&
		dmsetup resume --noudevsync "$name" && dmsetup table "$name"
}
# every dm member and its loop device and file (after runner_stop)
dm_members_remove() {
	local f name
	[ -d "$DM_DIR" ] || return 0
	for f in "$DM_DIR"/*.loop; do
		[ -f "$f" ] || continue
		name=$(basename "$f" .loop)
		dmsetup remove --retry "$name" 2>/dev/null
		losetup -d "$(cat "$f")" 2>/dev/null
	done
	rm -rf "$DM_DIR"
	return 0
}

# vjson EXPR cmd... : runs cmd (JSON on stdout) and prints the Python
# expression EXPR over it (d), lists and dicts as JSON
vjson() {
	local expr=$1; shift
	"$@" | python3 -c 'import json, sys
d = json.load(sys.stdin)
r = eval(sys.argv[1])
print(json.dumps(r) if isinstance(r, (list, dict)) else r)' "$expr"
}

# mirror_copies_identical POOL VDISK : both copies of every mirrored extent
# of VDISK hold the same bytes (read from the member devices, O_DIRECT, at
# the offsets vlunctl's JSON gives); prints what it compared
mirror_copies_identical() {
	local pool=$1 vd=$2 list m ps am aps n paths bad=0 cnt=0 bytes=0
	paths=$(vjson "' '.join(m['path'] for m in d['members'])" vlunctl pool show "$pool" --json) || return 1
	paths=($paths)
	list=$(vjson "'\\n'.join('%d %d %d %d %d' % (e['member'], e['psector'], e['alt_member'], e['alt_psector'], e['nsectors']) for e in d['extents'] if e['alt_member'] is not None)" \
		vlunctl vdisk show "$pool" "$vd" --json) || return 1
	[ -n "$list" ] || { echo "vdisk $vd has no mirrored extent"; return 1; }
	while read -r m ps am aps n; do
		if cmp <(dd if="${paths[m]}" iflag=direct,skip_bytes,count_bytes skip=$((ps * 512)) count=$((n * 512)) bs=1M status=none) \
		       <(dd if="${paths[am]}" iflag=direct,skip_bytes,count_bytes skip=$((aps * 512)) count=$((n * 512)) bs=1M status=none); then
			:
		else
			echo "extent: member $m sector $ps and member $am sector $aps ($n sectors) differ"
			bad=1
		fi
		cnt=$((cnt + 1)) bytes=$((bytes + n * 512))
	done <<<"$list"
	echo "compared $cnt mirrored extents, $((bytes / 1048576)) MiB on each side"
	return $bad
}

# fio_json_counts FILE : "error total_err writes write_bytes reads read_bytes"
# summed over the jobs of fio's JSON output
fio_json_counts() {
	python3 - "$1" <<-'EOF'
	import json, sys
	d = json.load(open(sys.argv[1]))
	e = t = w = wb = r = rb = 0
	for j in d["jobs"]:
	    e += j["error"]; t += j.get("total_err", 0)
	    w += j["write"]["total_ios"]; wb += j["write"]["io_bytes"]
	    r += j["read"]["total_ios"]; rb += j["read"]["io_bytes"]
	print(e, t, w, wb, r, rb)
	EOF
}

# ------------------------------------------------------------ teardown

# Back to a clean guest: no map, no session, no target, no runner, no pool.
lab_teardown() {
	local d
	for d in $(mpath_paths); do pr_clear "/dev/$d" >/dev/null 2>&1; break; done
	mpath_stop
	iscsi_logout
	iscsiadm -m iface -I host2 -o delete >/dev/null 2>&1
	if [ -n "$(ls /sys/kernel/config/target/iscsi 2>/dev/null | grep -v -e discovery_auth -e lio_version)" ] ||
	   [ -n "$(ls -d /sys/kernel/config/target/core/*_*/* 2>/dev/null | grep -v /hba_)" ]; then
		targetctl clear >/dev/null 2>&1   # rtslib directly: far quicker than targetcli
	fi
	runner_stop
	dm_members_remove
	rm -rf /var/lib/vlun /var/lib/lab /etc/rtslib-fb-target/pr/* /etc/rtslib-fb-target/saveconfig.json
	return 0
}

# ------------------------------------------------------------ fio

# fio_job DEV SIZE [extra fio options] : sequential 256k writes with crc32c
# verify headers, then a verify pass (fio's own exit status; err= in log)
fio_job() {
	local dev=$1 size=$2; shift 2
	fio --name=vlun-verify --filename="$dev" --direct=1 --ioengine=libaio --iodepth=8 \
		--rw=write --bs=256k --size="$size" --verify=crc32c --verify_fatal=1 \
		--group_reporting "$@"
}
# re-read what fio_job wrote and check it, through another device
fio_verify_only() { fio_job "$1" "$2" --verify_only; }

# ------------------------------------------------------------ the stack

# stack_up NAME SIZE : the virtual disk NAME of SIZE (vlun: a thin vdisk in
# a pool of two member files) exported by tcmu-runner and LIO on two iSCSI
# portals, logged in on both, one multipath map. Each part is a step.
stack_up() {
	local name=$1 size=$2
	# STACK_KEEP_POOL=1: the scenario made the pool in POOL_DIR and vdisk NAME
	if [ "$LAB_BACKEND" = vlun ] && [ "${STACK_KEEP_POOL:-0}" != 1 ]; then
		step "pool on two members and a thin virtual disk (vlunctl)"
		must pool_create pool0 768M 2
		must vlunctl vdisk create "$POOL_DIR" "$name" --size "$size" --thin
		show sh -c "vlunctl vdisk show '$POOL_DIR' '$name' | sed -n '1,/^Extents:/p'"
	else
		step "backing store for $LAB_BACKEND"
		must backing_prepare "$name" "$size"
	fi
	step "tcmu-runner on the system bus"
	must runner_start
	step "backstore $(backstore_path "$name") and iSCSI target $TGT on $P1 and $P2 (targetcli)"
	local out
	out=$({ backstore_create_cmd "$name" "$size"; target_export_cmds "$(backstore_path "$name")"; } | tcli)
	echo "$out"
	[ "$LAB_VERBOSE" = 1 ] && echo "$out" | say_indented >/dev/null
	if [ -z "$(configfs_dev "$name")" ]; then
		say "FAIL  [$LAB_SCENARIO] step '$LAB_STEP': no backstore $name in configfs"
		_lab_row FAIL "step: $LAB_STEP" 0 "$(grep -iE 'fail|invalid|error' <<<"$out" | head -n 2)"
		echo "$out" | tail -n 8 | sed 's/^/      /' >&3
		show_relevant_logs
		exit 1
	fi
	must target_ok
	step "iSCSI login on both portals (iscsiadm)"
	must iscsi_setup
	must iscsi_login
	must wait_for 10 sh -c "[ \$(iscsiadm -m session 2>/dev/null | grep -c $TGT) = 2 ]"
	show iscsiadm -m session
	step "one multipath map over both paths (multipathd)"
	must mpath_start
	must wait_for 20 sh -c "[ \$(multipath -ll $MAP 2>/dev/null | grep -c 'active ready running') = 2 ]"
	show multipath -ll "$MAP"
}
