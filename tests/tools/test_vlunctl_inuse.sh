#!/usr/bin/env bash
# A pool held by a running handler: read commands still work (they read the
# newest committed metadata without the lock). The changes that are safe
# online (vdisk create/resize/delete, pool add-member) are sent to the
# holder over the pool's control channel and made by it; it refuses to
# delete or shrink the vdisk it has open (exit 4, its reason). Other
# changes are refused with exit 4 and a message naming the holder, and so
# is everything when the holder serves no control channel. Once the holder
# is gone, the committed state is there and the refused commands work.
. "$(dirname "$0")/lib.sh"
[ -x "$HELPER" ] || { echo "no helper at $HELPER" >&2; exit 1; }

P=$T/pool
mkmembers "$P" 2 64M
vc 0 pool create p0 "$P/m0" "$P/m1" --meta-size 4M
vc 0 vdisk create "$P" thin0 --size 1G --thin
vc 0 vdisk create "$P" lin0 --size 8M --linear

wait_ready() {
	for _ in $(seq 100); do [ -e "$1" ] && break; kill -0 "$2" 2>/dev/null || break; sleep 0.1; done
	[ -e "$1" ] || { cat "$T/helper.err" >&2; echo "helper did not hold the pool" >&2; exit 1; }
}

# hold the pool the way tcmu-runner's handler does, with thin0 open for I/O
"$HELPER" hold "$T/ready" "$P" thin0 2>"$T/helper.err" &
holder=$!
bg_pids+=("$holder")
wait_ready "$T/ready" "$holder"

# reads work while held
vc 0 pool show "$P"
out_has '^Pool: +p0$'
vc 0 vdisk list "$P" --json
json 'sorted(v["name"] for v in d["vdisks"]) == ["lin0", "thin0"]'
vc 0 vdisk show "$P" thin0 --json
json 'd["name"] == "thin0"'

# safe online changes are made by the holder
by="\(done by the running vlunctl_test_he, pid $holder\)"
vc 0 vdisk create "$P" new0 --size 1M --linear
out_has "^created vdisk 'new0' in pool 'p0': linear, 1(\.0)? MiB $by$"
vc 0 vdisk create "$P" st0 --size 1M --striped --stripe-size 64K --width 2 --members 0,1
out_has "^created vdisk 'st0' in pool 'p0': striped, 1(\.0)? MiB \(64(\.0)? KiB stripes over 2 members\) $by$"
vc 0 vdisk list "$P" --json
json 'sorted(v["name"] for v in d["vdisks"]) == ["lin0", "new0", "st0", "thin0"]'
vc 0 vdisk resize "$P" thin0 --size 2G
out_has "^resized vdisk 'thin0' in pool 'p0' from 1(\.0)? GiB to 2(\.0)? GiB $by$"
vc 0 vdisk show "$P" thin0 --json
json 'd["size_bytes"] == 2 << 30'
vc 0 vdisk resize "$P" lin0 --size 4M --force
out_has "^resized vdisk 'lin0' .* $by$"
vc 0 vdisk delete "$P" new0 --force
out_has "^deleted vdisk 'new0' from pool 'p0' $by$"
truncate -s 64M "$P/m2"
vc 0 pool add-member "$P" "$P/m2"
out_has "^added '$P/m2' to pool 'p0' as member 2 $by$"
vc 0 pool show "$P" --json
json 'len(d["members"]) == 3 and d["members"][2]["path"] == "'"$P/m2"'"'

# the holder refuses what would cut its open vdisk, and says why
vc 4 vdisk delete "$P" thin0 --force
err_has "^vlunctl: cannot delete vdisk 'thin0' in pool 'p0' \(asked the process holding it\): virtual disk 'thin0' is open for I/O; remove its backstore first\. Delete its backstore with targetcli, then retry"
vc 4 vdisk resize "$P" thin0 --size 1G --force
err_has "cannot resize vdisk 'thin0' from 2(\.0)? GiB to 1(\.0)? GiB \(asked the process holding it\): virtual disk 'thin0' is open for I/O; shrinking it online would cut off data in use"
# the local checks still come first
vc 6 vdisk resize "$P" lin0 --size 1M
vc 6 vdisk delete "$P" lin0
vc 7 vdisk create "$P" lin0 --size 1M --linear
vc 3 vdisk delete "$P" nosuch --force

# changes that are not safe online are refused, naming the holder
held="pool 'p0' is open in process 'vlunctl_test_he' \(pid $holder\)\. Stop that process first"
vc 4 pool create p9 "$P/m0" "$P/m1" "$P/m2" --force
err_has "cannot create pool 'p9': $held"
# a held member cannot be added to another pool either
mkmembers "$T/q" 1 64M
vc 0 pool create q0 "$T/q/m0" --meta-size 4M
vc 4 pool add-member "$T/q" "$P/m1" --force
err_has "cannot add member '$P/m1': member '$P/m1' is open in process"

# with a tcmu backstore (configfs) on the pool, the message names it
mkdir -p "$T/cfs/user_0/thin0_bs/attrib" "$T/cfs/user_0/other/attrib" "$T/cfs/user_1/x/attrib"
echo "vlun/$P/thin0" >"$T/cfs/user_0/thin0_bs/attrib/dev_config"
echo "vlun/$T/q/q0" >"$T/cfs/user_0/other/attrib/dev_config"
echo "file//tmp/foo" >"$T/cfs/user_1/x/attrib/dev_config"
export VLUNCTL_CONFIGFS_CORE=$T/cfs
vc 4 pool create p9 "$P/m0" "$P/m1" "$P/m2" --force
err_has "pool 'p0' is open in process 'vlunctl_test_he' \(pid $holder; backstore 'thin0_bs' of vdisk 'thin0'\)\. Stop the backstore or use targetcli to delete it first"
unset VLUNCTL_CONFIGFS_CORE

# the holder goes away: what it did is committed, the refused changes work
kill "$holder"
wait "$holder" 2>/dev/null
bg_pids=()
vc 0 vdisk list "$P" --json
json 'sorted((v["name"], v["size_bytes"]) for v in d["vdisks"]) == [("lin0", 4 << 20), ("st0", 1 << 20), ("thin0", 2 << 30)]'
vc 0 vdisk resize "$P" thin0 --size 1G --force
vc 0 vdisk delete "$P" thin0 --force
vc 0 vdisk list "$P" --json
json 'sorted(v["name"] for v in d["vdisks"]) == ["lin0", "st0"]'

# a holder without a control channel (older vlun, other host): refused
"$HELPER" lock "$T/ready2" "$P/m0" "$P/m1" "$P/m2" 2>"$T/helper.err" &
locker=$!
bg_pids+=("$locker")
wait_ready "$T/ready2" "$locker"
vc 4 vdisk create "$P" new1 --size 1M --linear
err_has "^vlunctl: cannot create vdisk 'new1': pool 'p0' is open in process 'vlunctl_test_he' \(pid $locker\)\. No control channel answers for it"
vc 4 vdisk delete "$P" lin0 --force
err_has "No control channel answers"
kill "$locker"
wait "$locker" 2>/dev/null
bg_pids=()
vc 0 vdisk list "$P" --json
json 'sorted(v["name"] for v in d["vdisks"]) == ["lin0", "st0"]'

finish
