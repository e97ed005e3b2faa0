# scripts/lab.d/common.sh — host-side settings and helpers of the lab,
# sourced by scripts/lab and scripts/demo. Nothing here runs on its own.
#
# Environment (all optional):
#   VLUN_BUILD_DIR     meson build dir holding handler_vlun.so and vlunctl
#                      (default <repo>/build)
#   VLUN_LAB_CACHE     where guest images are cached (default /var/cache/vlun-lab)
#   VLUN_LAB_RESULTS   where a run's logs and results land
#                      (default <build>/lab-results)
#   VLUN_LAB_ACCEL     auto (default) | kvm | tcg
#   VLUN_LAB_TIMEOUT   seconds a guest may run before it is killed (default 3000:
#                      the e2e suite takes ~18 min idle, far longer on a loaded host)
#   VLUN_LAB_MIRROR    Debian mirror for the image (default: the host's)

lab_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
lab_dir=$lab_top/scripts/lab.d
lab_build=${VLUN_BUILD_DIR:-$lab_top/build}
case $lab_build in /*) ;; *) lab_build=$lab_top/$lab_build ;; esac
lab_cache=${VLUN_LAB_CACHE:-/var/cache/vlun-lab}
lab_results=${VLUN_LAB_RESULTS:-$lab_build/lab-results}
lab_timeout=${VLUN_LAB_TIMEOUT:-3000}

lab_say() { printf '[lab] %s\n' "$*" >&2; }
lab_die() { printf '[lab] error: %s\n' "$*" >&2; exit 1; }
# The lab cannot run on this machine: one loud line, exit 77 (= skipped).
lab_cannot() {
	printf '\n!!! LAB SKIPPED: %s\n\n' "$*" >&2
	exit 77
}

lab_now() { date +%s.%N; }
lab_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# The guest boots the host's Debian kernel package (linux-image-amd64):
# newest version that has both /boot/vmlinuz-V and /boot/initrd.img-V and
# its modules in /lib/modules/V. Sets lab_kver, lab_kernel, lab_initrd.
lab_find_kernel() {
	local v best=
	for v in $(ls /lib/modules 2>/dev/null | sort -V); do
		[ -r "/boot/vmlinuz-$v" ] && [ -r "/boot/initrd.img-$v" ] &&
			[ -f "/lib/modules/$v/modules.dep" ] && best=$v
	done
	[ -n "$best" ] || return 1
	lab_kver=$best
	lab_kernel=/boot/vmlinuz-$best
	lab_initrd=/boot/initrd.img-$best
}

# Everything the host needs to boot the lab; prints what is missing.
lab_host_missing() {
	local m=()
	[ "$(id -u)" = 0 ] || m+=("root (debootstrap, chroot and 9p as root)")
	command -v qemu-system-x86_64 >/dev/null || m+=(qemu-system-x86_64)
	command -v debootstrap >/dev/null || m+=(debootstrap)
	command -v mke2fs >/dev/null || m+=(mke2fs)
	lab_find_kernel || m+=("a Debian kernel in /boot with its modules (linux-image-amd64)")
	[ ${#m[@]} -eq 0 ] || { printf '%s\n' "${m[@]}"; return 1; }
}

# KVM only when asked for or when it really runs a stock kernel; this
# project's machines expose a PVM /dev/kvm that cannot (see LAB.md), so
# "auto" uses KVM only if /proc/cpuinfo shows vmx/svm.
lab_accel_args() {
	local want=${VLUN_LAB_ACCEL:-auto}
	if [ "$want" = auto ]; then
		want=tcg
		if [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo && ! grep -q kvm_pvm /proc/modules 2>/dev/null; then
			want=kvm
		fi
	fi
	case $want in
	kvm) lab_accel="KVM"; lab_accel_opts=(-accel kvm -cpu host) ;;
	tcg) lab_accel="TCG (software emulation; no usable KVM here)"
	     lab_accel_opts=(-accel tcg,thread=multi -cpu max) ;;
	*) lab_die "VLUN_LAB_ACCEL must be auto, kvm or tcg, not '$want'" ;;
	esac
}
