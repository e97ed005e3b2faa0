#!/bin/bash
# guest/peer.sh NAME... — the second guest of a two-guest run (LAB_MODE=peer,
# guest/pair.sh): loads the kernel modules, serves the primary's requests
# for scenarios NAME... until the primary says stop, then tears its stack
# down. Its log is results/peer.log (the host's <results>/peer).
. /lab/guest/lib.sh
. /lab/guest/pr.sh
. /lab/guest/pair.sh

mkdir -p "$LAB_R"
exec 3>&1 >"$LAB_R/peer.log" 2>&1
LAB_T0=$(lab_uptime)
export LAB_T0
if ! lab_modules; then
	echo "the kernel's target/iSCSI/multipath modules do not load" >"$PAIR/peer-failed"
	cp -a "$LAB_R/." /results/
	exit 1
fi
say "[peer] serving scenarios: $*"
pair_serve
say "[peer] stop at $(lab_uptime)s"
lab_teardown
dmesg >"$LAB_R/dmesg.txt"
cp -a "$LAB_R/." /results/
sync
