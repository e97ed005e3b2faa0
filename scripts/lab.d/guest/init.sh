#!/bin/bash
# guest/init.sh — the lab guest's real init, exec'd by /sbin/vlun-lab-init
# from the read-only "lab" 9p share (/lab). No systemd: it mounts the API
# filesystems, starts udev and the system D-Bus (targetcli finds
# tcmu-runner's handlers over D-Bus), installs the freshly built vlun
# binaries from /lab/bin, runs what /lab/run.conf asks for (scenarios or an
# interactive shell) and powers the VM off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=${TERM:-linux}

ensure_mount() { # type target [options]
	findmnt -n -t "$1" "$2" >/dev/null || mount -t "$1" ${3:+-o "$3"} "$1" "$2"
}
uptime_s() { cut -d' ' -f1 /proc/uptime; }
power_off() {
	sync
	umount /results 2>/dev/null
	mount -o remount,ro / 2>/dev/null
	sync
	# reboot(2) with LINUX_REBOOT_CMD_POWER_OFF: no systemd, no busybox here;
	# sysrq 'o' raced with ext4 writeback.
	python3 -c 'import ctypes; ctypes.CDLL(None).reboot(0x4321FEDC)'
	echo o >/proc/sysrq-trigger
	sleep 30
}

mount -o remount,rw /
mkdir -p /dev/pts /dev/shm
ensure_mount devpts /dev/pts gid=5,mode=620
ensure_mount tmpfs /dev/shm
ensure_mount tmpfs /run mode=0755
ensure_mount tmpfs /tmp
ln -sfn /proc/self/fd /dev/fd
mkdir -p /run/lock /run/dbus /run/multipath /results
modprobe configfs 2>/dev/null
ensure_mount configfs /sys/kernel/config
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 results /results ||
	echo "[init] WARNING: no results share; results stay in the guest"
ip link set lo up

# what to do: written by the host (scripts/lab) into the lab share
LAB_MODE=run
[ -r /lab/run.conf ] && . /lab/run.conf
export LAB_MODE LAB_SCENARIOS LAB_VERBOSE LAB_BACKEND LAB_RESUME LAB_BOOT LAB_NET LAB_NET2
hostname "${LAB_HOSTNAME:-vlunlab}"

echo "[init] $(uptime_s)s: kernel $(uname -r), mode $LAB_MODE${LAB_RESUME:+, boot ${LAB_BOOT:-2} of $LAB_RESUME after a power cut}"
/lib/systemd/systemd-udevd --daemon
udevadm trigger --action=add --type=subsystems
udevadm trigger --action=add --type=devices
udevadm settle --timeout=30
# a two-guest run (guest/pair.sh): the link to the other guest and the
# shared /sync directory
if [ -n "${LAB_NET:-}" ]; then
	nic=$(ls /sys/class/net | grep -vx lo | head -n1)
	if [ -n "$nic" ] && ip link set "$nic" up && ip addr add "$LAB_NET" dev "$nic"; then
		[ -n "${LAB_NET2:-}" ] && ip addr add "$LAB_NET2" dev "$nic"
		echo "[init] $(uptime_s)s: network $nic $LAB_NET ${LAB_NET2:-}"
	else
		echo "[init] WARNING: no network interface for $LAB_NET (have: $(ls /sys/class/net | paste -sd' '))"
	fi
	mkdir -p /sync
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 sync /sync ||
		echo "[init] WARNING: no sync share: the two guests cannot talk"
fi
dbus-uuidgen --ensure
dbus-daemon --system --fork

# tcmu-runner loads every handler at start; rbd's pulls in librados and
# costs seconds per runner start under TCG. The lab has no Ceph.
rm -f /usr/lib/x86_64-linux-gnu/tcmu-runner/handler_rbd.so

# The freshly built vlun binaries: the handler goes where tcmu-runner's
# D-Bus activation looks (it ignores --handler-path).
if [ -d /lab/bin ]; then
	for f in /lab/bin/handler_*.so; do
		[ -f "$f" ] && install -m 0644 "$f" /usr/lib/x86_64-linux-gnu/tcmu-runner/
	done
	for f in /lab/bin/lib*.so*; do
		[ -f "$f" ] && install -m 0644 "$f" /usr/local/lib/
	done
	ldconfig
	[ -f /lab/bin/vlunctl ] && install -m 0755 /lab/bin/vlunctl /usr/local/bin/vlunctl
	[ -f /lab/bin/vlun-pr ] && install -m 0755 /lab/bin/vlun-pr /usr/local/bin/vlun-pr
fi
# LIO keeps PR/APTPL and ALUA state under rtslib's dbroot (also in the image)
mkdir -p /etc/rtslib-fb-target/pr /etc/rtslib-fb-target/alua
echo "[init] $(uptime_s)s: udev and D-Bus up; handlers: $(ls /usr/lib/x86_64-linux-gnu/tcmu-runner/ | tr '\n' ' ')"

case $LAB_MODE in
shell)
	echo "[init] interactive shell. Scenario helpers: '. /lab/guest/lib.sh'."
	echo "[init] 'exit' powers the guest off (or Ctrl-a x in QEMU)."
	setsid -c bash -l </dev/ttyS0 >/dev/ttyS0 2>&1
	;;
peer)
	/lab/guest/peer.sh $LAB_SCENARIOS
	echo "[init] peer finished with rc=$?"
	;;
*)
	/lab/guest/run-scenarios.sh $LAB_SCENARIOS
	echo "[init] scenarios finished with rc=$?"
	;;
esac
echo "[init] $(uptime_s)s: powering off"
power_off
