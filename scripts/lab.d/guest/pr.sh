# guest/pr.sh — helpers of the persistent-reservation scenarios
# (tests/e2e/pr_*.sh), sourced after lib.sh: `. /lab/guest/pr.sh`.
#
# Two "nodes" in one guest: node 1 is the kernel initiator ($INI, both
# portals, one multipath map); node 2 is an open-iscsi iface with its own
# initiator name ($INI2) — LIO tells I_T nexuses apart by initiator name and
# ISID, and does not enforce a reservation between sessions of one IQN, so a
# second node needs another IQN. Node 2's disk is blacklisted in multipathd
# (pr_mpath_start), so it stays a plain SCSI disk.

PR=/usr/local/bin/vlun-pr
K1=0x1111aaaa1111aaaa       # node 1 (host1)
K2=0x2222bbbb2222bbbb       # node 2
K3=0x3333cccc3333cccc       # a key multipathd manages (mpathpersist)
HOLDS=""                    # background vlun-pr holds (pr_cleanup stops them)

# vlun-pr into /usr/local/bin (init.sh installs it too; scenarios that run
# on an older image or a shell call this). 1 if the build has none.
pr_tool_ready() {
	[ -x /lab/bin/vlun-pr ] || return 1
	[ -x "$PR" ] || install -m 0755 /lab/bin/vlun-pr "$PR"
}

iscsi_disks() { lsblk -ndo NAME,TRAN | awk '$2 == "iscsi" { print $1 }' | sort; }

# sg_raw WRITE(10)/READ(10) of one block at LBA 16 (no page cache, no
# retries); "SCSI Status: Good" or what sg_raw reported
raw_io() { # dev "sg_raw options" cdb...
	local dev=$1 opts=$2 out rc; shift 2
	sg_turs "$dev" >/dev/null 2>&1; sg_turs "$dev" >/dev/null 2>&1   # pending UAs
	out=$(sg_raw $opts "$dev" "$@" 2>&1); rc=$?
	if [ $rc = 0 ]; then echo "SCSI Status: Good"; return; fi
	grep -oE 'SCSI Status: [A-Za-z ]+' <<<"$out" || echo "sg_raw failed (exit $rc): $out"
}
raw_write() { raw_io "$1" "-s 512 -i ${2:-/tmp/pat0}" 2a 00 00 00 00 10 00 00 01 00; }
raw_read() { raw_io "$1" "-r 512" 28 00 00 00 00 10 00 00 01 00; }
lba16() { dd if="$1" bs=512 skip=16 count=1 iflag=direct status=none | od -An -c | head -n1; }

# one-block patterns: /tmp/pat0 (C), /tmp/patA, /tmp/patB; /tmp/patA64:
# FENCE_N blocks of A
pr_patterns() {
	dd if=/dev/zero bs=512 count=1 status=none | tr '\0' 'A' >/tmp/patA
	dd if=/dev/zero bs=512 count=1 status=none | tr '\0' 'B' >/tmp/patB
	dd if=/dev/zero bs=512 count=1 status=none | tr '\0' 'C' >/tmp/pat0
	dd if=/dev/zero bs=512 count=$FENCE_N status=none | tr '\0' 'A' >/tmp/patA64
}

# keys through a path, as one line; how many times key $2 is registered
keys_line() { pr_keys "$1" | paste -sd' '; }
key_count() { pr_keys "$1" | grep -cx "$2"; }
# the reservation type as sg_persist names it (lib's pr_type also matches
# sg_persist's "Peripheral device type: disk" line)
resv_type() { sgp --in --read-reservation "$1" 2>/dev/null | sed -n 's/.*scope: .*type: *//p'; }
hexkey() { printf '0x%x' "$1"; }

# vlun-pr hold in the background: hold_bg NAME args... ; sets HOLD_PID
hold_bg() {
	local name=$1; shift
	"$PR" hold "$@" >"$LAB_SDIR/$name.log" 2>&1 &
	HOLD_PID=$!
	HOLDS="$HOLDS $HOLD_PID"
	wait_for 30 grep -q 'vlun-pr: holding' "$LAB_SDIR/$name.log" || { cat "$LAB_SDIR/$name.log"; return 1; }
	cat "$LAB_SDIR/$name.log"
}
# stop a background hold with SIGTERM; its exit status in HOLD_RC. Not in
# a $(...) subshell: only the shell that started it can wait for it.
hold_stop() { # pid
	kill -TERM "$1" 2>/dev/null
	wait "$1"
	HOLD_RC=$?
	echo "hold $1: exit $HOLD_RC"
}
# run a foreground vlun-pr; prints its output and "exit N"
prx() { "$PR" "$@" 2>&1; echo "exit $?"; }

# The fenced node's application: writes B blocks through DEV to the region
# [FENCE_LBA, FENCE_LBA + FENCE_N) in a loop until /tmp/stop-writer exists,
# one line per write: "<uptime when issued> ok|fail <lba>".
FENCE_LBA=1024 FENCE_N=64
fenced_writer() { # dev log
	local i=0 lba t
	while [ ! -e /tmp/stop-writer ]; do
		lba=$((FENCE_LBA + i % FENCE_N))
		t=$(lab_uptime)
		if dd if=/tmp/patB of="$1" bs=512 seek=$lba count=1 oflag=direct conv=notrunc status=none 2>/dev/null; then
			echo "$t ok $lba"
		else
			echo "$t fail $lba"
		fi
		i=$((i + 1))
	done >"$2"
}
# bytes of the region that are not 'A', read through DEV (O_DIRECT)
region_not_a() { # dev
	dd if="$1" bs=512 skip=$FENCE_LBA count=$FENCE_N iflag=direct status=none | tr -d A | wc -c
}
# writes of the fenced writer issued after uptime T that succeeded
writes_ok_after() { # log t
	awk -v t="$2" '$2 == "ok" && $1 > t' "$1" | wc -l
}
writes_failed_after() { # log t
	awk -v t="$2" '$2 == "fail" && $1 > t' "$1" | wc -l
}

# node 2: iface host2 ($INI2) logged in to TARGET on P1 only; prints its
# disks (/dev/sdX, one a line; N: how many LUNs the target has, default 1)
pr_node2_login() { # target [N]
	local before after d n=${2:-1}
	before=$(iscsi_disks)
	iscsiadm -m iface -I host2 -o new >/dev/null 2>&1
	iscsiadm -m iface -I host2 -o update -n iface.initiatorname -v "$INI2" >/dev/null || return 1
	iscsiadm -m discovery -t sendtargets -p "$P1:3260" -I host2 >/dev/null || return 1
	iscsiadm -m node -T "$1" -p "$P1:3260" -I host2 --login >/dev/null || return 1
	udevadm settle
	wait_for 20 sh -c "[ \$(lsblk -ndo TRAN | grep -c iscsi) -ge $(( $(echo "$before" | grep -c sd) + n )) ]" || return 1
	after=$(iscsi_disks)
	d=$(comm -13 <(echo "$before") <(echo "$after"))
	[ -n "$d" ] || return 1
	sed 's#^#/dev/#' <<<"$d"
}

# node 1's disk of TARGET on portal P2 (node 2 is on P1 only): a re-login
# may reuse the sdX name and even the H:C:T:L, so find it by its session
p2_disk() { # target
	iscsiadm -m session -P 3 2>/dev/null |
		awk -v t="$1" -v p="$P2" '/^Target: / { tt = ($2 == t) } tt && $0 ~ "Current Portal: " p ":" { f = 1 } f && /Attached scsi disk/ { print $4; exit }'
}

# multipathd as mpath_start configures it, but with reservation_key file
# and node 2's disks (devnodes, e.g. sda) blacklisted
pr_mpath_start() { # blacklisted-devnode...
	local d bl=""
	for d in "$@"; do bl="$bl	devnode \"^${d#/dev/}\$\"
"; done
	mkdir -p /etc/multipath
	rm -f /etc/multipath/bindings /etc/multipath/wwids /etc/multipath/prkeys
	cat >/etc/multipath.conf <<-EOC
	defaults {
		user_friendly_names yes
		find_multipaths no
		reservation_key file
		polling_interval 2
	}
	blacklist {
		devnode "^vd[a-z]"
	$bl}
	devices {
		device {
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
}
npaths() { multipath -ll "${1:-$MAP}" 2>/dev/null | grep -c 'active ready running'; }

# the scenario's holds and the node-2 iface's sessions
pr_cleanup() {
	local p
	for p in $HOLDS; do kill -TERM "$p" 2>/dev/null; done
	sleep 1
	touch /tmp/stop-writer
	iscsiadm -m node -I host2 --logout >/dev/null 2>&1
	return 0
}

# The "physical LUNs" of the gateway scenarios: two LIO fileio LUNs of
# 128 MiB (backstores plun0 and plun1) on TARGET, one portal on each of
# PORTAL_A and PORTAL_B, an ACL per initiator name
phys_luns_export() { # target portal-a portal-b initiator...
	local t=$1 pa=$2 pb=$3 i
	shift 3
	mkdir -p /var/lib/lab || return 1
	truncate -s 128M /var/lib/lab/plun0.img /var/lib/lab/plun1.img || return 1
	{
		for i in 0 1; do
			echo "/backstores/fileio create name=plun$i file_or_dev=/var/lib/lab/plun$i.img size=128M write_back=false"
		done
		echo "/iscsi create $t"
		echo "/iscsi/$t/tpg1/luns create /backstores/fileio/plun0"
		echo "/iscsi/$t/tpg1/luns create /backstores/fileio/plun1"
		echo "/iscsi/$t/tpg1/portals create $pa 3260"
		echo "/iscsi/$t/tpg1/portals create $pb 3260"
		for i in "$@"; do echo "/iscsi/$t/tpg1/acls create $i"; done
		echo "/iscsi/$t/tpg1 set attribute authentication=0"
	} | tcli
	test -d "/sys/kernel/config/target/iscsi/$t/tpgt_1/lun/lun_1"
}

# A gateway's stack down in the order that cannot hang: tcmu-runner
# stopped, every multipath map told to fail instead of queueing, the maps
# flushed, the sessions to the physical LUNs' TARGET (if given) logged
# out, the node id forgotten
gateway_down() { # [target]
	local m
	runner_stop
	for m in $(dmsetup ls --target multipath 2>/dev/null | awk '{ print $1 }'); do
		dmsetup message "$m" 0 fail_if_no_path >/dev/null 2>&1
	done
	multipath -F >/dev/null 2>&1
	[ -n "${1:-}" ] && iscsiadm -m node -T "$1" --logout >/dev/null 2>&1
	rm -f /etc/vlun/node-id
	return 0
}
