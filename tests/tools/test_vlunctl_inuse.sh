#!/usr/bin/env bash
# A pool held by a running handler: read commands still work (they read the
# newest committed metadata without the lock); every changing command is
# refused with exit 4 and a message naming the holder and what to do; once
# the holder is gone the same commands work.
. "$(dirname "$0")/lib.sh"
[ -x "$HELPER" ] || { echo "no helper at $HELPER" >&2; exit 1; }

P=$T/pool
mkmembers "$P" 2 64M
vc 0 pool create p0 "$P/m0" "$P/m1" --meta-size 4M
vc 0 vdisk create "$P" thin0 --size 1G --thin
vc 0 vdisk create "$P" lin0 --size 8M --linear

# hold the pool the way tcmu-runner's handler does
"$HELPER" hold "$T/ready" "$P" 2>"$T/helper.err" &
holder=$!
bg_pids+=("$holder")
for _ in $(seq 100); do [ -e "$T/ready" ] && break; kill -0 "$holder" 2>/dev/null || break; sleep 0.1; done
[ -e "$T/ready" ] || { cat "$T/helper.err" >&2; echo "helper did not hold the pool" >&2; exit 1; }

# reads work while held
vc 0 pool show "$P"
out_has '^Pool: +p0$'
vc 0 vdisk list "$P" --json
json 'sorted(v["name"] for v in d["vdisks"]) == ["lin0", "thin0"]'
vc 0 vdisk show "$P" thin0 --json
json 'd["name"] == "thin0"'

# changes are refused, naming the holder
held="pool 'p0' is open in process 'vlunctl_test_he' \(pid $holder\)\. Stop that process first"
vc 4 vdisk create "$P" new0 --size 1M --linear
err_has "^vlunctl: cannot create vdisk 'new0': $held"
vc 4 vdisk resize "$P" thin0 --size 2G
err_has "cannot resize vdisk 'thin0': $held"
vc 4 vdisk resize "$P" lin0 --size 4M --force
err_has "$held"
vc 4 vdisk delete "$P" lin0 --force
err_has "cannot delete vdisk 'lin0': $held"
truncate -s 64M "$T/extra"
vc 4 pool add-member "$P" "$T/extra"
err_has "cannot add member '$T/extra': $held"
vc 4 pool create p9 "$P/m0" "$P/m1" --force
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
vc 4 vdisk delete "$P" lin0 --force
err_has "pool 'p0' is open in process 'vlunctl_test_he' \(pid $holder; backstore 'thin0_bs' of vdisk 'thin0'\)\. Stop the backstore or use targetcli to delete it first"
unset VLUNCTL_CONFIGFS_CORE

# nothing changed
vc 0 vdisk list "$P" --json
json 'sorted(v["name"] for v in d["vdisks"]) == ["lin0", "thin0"] and [v["size_bytes"] for v in d["vdisks"] if v["name"] == "thin0"] == [1 << 30]'

# the holder goes away: the same changes work
kill "$holder"
wait "$holder" 2>/dev/null
bg_pids=()
vc 0 vdisk create "$P" new0 --size 1M --linear
vc 0 vdisk resize "$P" thin0 --size 2G
vc 0 vdisk delete "$P" lin0 --force
vc 0 vdisk list "$P" --json
json 'sorted(v["name"] for v in d["vdisks"]) == ["new0", "thin0"]'

finish
