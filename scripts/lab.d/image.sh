# scripts/lab.d/image.sh — build and cache the lab guest image (sourced).
#
# The image is a raw ext4 root: debootstrap minbase of bookworm, the packages
# in scripts/lab.d/packages, the modules of the host kernel the guest boots,
# and the tiny PID 1 scripts/lab.d/image-init. It is keyed on a hash of
# exactly those inputs, so it is rebuilt only when one of them changes; QEMU
# opens it with snapshot=on, so it never changes after the build.

lab_mirror() {
	[ -n "${VLUN_LAB_MIRROR:-}" ] && { echo "$VLUN_LAB_MIRROR"; return; }
	local u
	u=$(sed -n 's/^URIs: *\(http[^ ]*debian\/*\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
	[ -n "$u" ] || u=$(awk '$1=="deb" && $2 ~ /^http/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
	echo "${u:-http://deb.debian.org/debian}"
}

lab_packages() { sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$lab_dir/packages" | tr -d ' \t'; }

lab_image_key() {
	{
		echo "format 1"
		echo "kernel $lab_kver $(stat -c %s "/lib/modules/$lab_kver/modules.dep")"
		echo "mirror $(lab_mirror)"
		cat "$lab_dir/packages" "$lab_dir/image.sh" "$lab_dir/image-init"
	} | sha256sum | cut -c1-16
}

# Sets lab_image to the cached image, building it first if needed.
lab_image_ensure() {
	lab_find_kernel || lab_cannot "no Debian kernel with modules in /boot (run scripts/bootstrap --lab)"
	local key; key=$(lab_image_key)
	lab_image=$lab_cache/image-$key.ext4
	mkdir -p "$lab_cache" || lab_cannot "cannot create the image cache $lab_cache (set VLUN_LAB_CACHE)"
	# one builder at a time; a second caller waits and then reuses it
	exec 9>"$lab_cache/.lock"
	flock 9
	if [ -f "$lab_image" ]; then
		lab_say "image: cached $lab_image"
	else
		local log=$lab_cache/build-$key.log t0; t0=$(lab_now)
		lab_say "image: building $lab_image (log: $log; ~1 min)"
		local rc
		# a plain subshell (not under if/||/&&) so that set -e takes effect;
		# the callers do not use set -e themselves
		(set -e; lab_image_build "$key") >"$log" 2>&1
		rc=$?
		if [ $rc != 0 ]; then
			tail -n 25 "$log" >&2
			flock -u 9
			lab_cannot "the guest image could not be built (see $log): no Debian mirror reachable?"
		fi
		lab_say "image: built in $(lab_since "$t0")s"
		# keep the newest three images, drop older ones
		ls -t "$lab_cache"/image-*.ext4 2>/dev/null | tail -n +4 | xargs -r rm -f
	fi
	flock -u 9
}

# Runs in a subshell with set -e (see above).
lab_image_build() {
	local key=$1 root=$lab_cache/root-$key tmp=$lab_cache/.image-$key.tmp mirror
	mirror=$(lab_mirror)
	rm -rf "$root" "$tmp"
	trap 'umount "'"$root"'/proc" 2>/dev/null || true' EXIT
	echo "== debootstrap bookworm from $mirror"
	debootstrap --variant=minbase bookworm "$root" "$mirror"
	# Never start services inside the chroot: they would run on the host.
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	chmod 0755 "$root/usr/sbin/policy-rc.d"
	# apt in the chroot sees the same archive as the host (which may be a
	# snapshot whose Release files are past their Valid-Until)
	rm -f "$root/etc/apt/sources.list"
	cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOS
Types: deb
URIs: $mirror
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
	echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/99vlun-lab"
	mount -t proc proc "$root/proc"
	echo "== apt-get install"
	chroot "$root" apt-get update -q
	chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		$(lab_packages)
	chroot "$root" apt-get clean
	umount "$root/proc"
	rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
	echo "== kernel modules $lab_kver"
	mkdir -p "$root/lib/modules"
	cp -a "/lib/modules/$lab_kver" "$root/lib/modules/"
	install -m 0755 "$lab_dir/image-init" "$root/sbin/vlun-lab-init"
	echo vlunlab >"$root/etc/hostname"
	# LIO keeps PR (APTPL) and ALUA state under rtslib's dbroot; Debian does
	# not create these and every PR OUT then fails with NOT READY.
	mkdir -p "$root/etc/rtslib-fb-target/pr" "$root/etc/rtslib-fb-target/alua"
	echo "== mke2fs"
	mke2fs -q -t ext4 -L vlunlab -d "$root" "$tmp" 4G
	mv "$tmp" "$lab_image"
	rm -rf "$root"
	du -h --apparent-size "$lab_image"; du -h "$lab_image"
}
