#!/usr/bin/env bash
# vlunctl migrate / jobs / job cancel / member fault. Offline, vlunctl runs
# the migration itself: --off-member empties a member (no extent, primary
# or copy, is left on it) and the vdisks read the same before and after;
# a range goes to the members named with --to. Through a holder (online),
# the holder runs it and --wait follows it to the end with progress lines;
# a mirror added online is filled by `resync --wait`. Bad input (unknown
# vdisk, bad range, --to == --off-member, member index out of range) is
# refused with one clear line.
. "$(dirname "$0")/lib.sh"
[ -x "$HELPER" ] || { echo "no helper at $HELPER" >&2; exit 1; }

P=$T/pool
mkmembers "$P" 3 64M
vc 0 pool create p0 "$P/m0" "$P/m1" "$P/m2" --meta-size 4M
vc 0 vdisk create "$P" lin0 --size 16M --linear --members 0
vc 0 vdisk create "$P" thin0 --size 32M --thin --members 0
"$HELPER" write "$P" lin0 0 $((16 << 20)) 3 || { echo "helper write failed" >&2; exit 1; }
"$HELPER" write "$P" thin0 $((4 << 20)) $((6 << 20)) 5 || { echo "helper write failed" >&2; exit 1; }

sum() { "$HELPER" read "$P" "$1" | sha256sum | cut -d' ' -f1; }
ref_lin0=$(sum lin0)
ref_thin0=$(sum thin0)
[ -n "$ref_lin0" ] && [ -n "$ref_thin0" ] || { echo "helper read failed" >&2; exit 1; }
same_sum() {
	local now
	now=$(sum "$1")
	if [ "$now" = "$2" ]; then ok; else last="helper read $1"; bad "vdisk '$1' changed (sha256 $now, was $2)"; fi
}

vc 0 jobs "$P"
out_has "^no jobs in pool 'p0'$"
vc 0 jobs "$P" --json
json 'd["jobs"] == [] and d["held"] is False and d["pool"] == "p0"'

# ---- bad input first: nothing may change
vc 3 migrate "$P" nosuch
err_has "^vlunctl: cannot migrate vdisk 'nosuch' in pool 'p0': no such vdisk\. "
vc 2 migrate "$P" lin0 --range 8M:16M
err_has "cannot migrate vdisk 'lin0': vdisk 'lin0' is 16 MiB \(16777216 bytes\): the range is not inside the vdisk\. "
vc 2 migrate "$P" lin0 --range 0:1X
err_has "invalid --range '0:1X'"
vc 2 migrate "$P" --range 0:1M --off-member 0
err_has "^vlunctl: cannot migrate: --range needs a vdisk\. "
vc 2 migrate "$P" --off-member 1 --to 2,1
err_has "^vlunctl: cannot migrate: member 1: --to lists the member that --off-member empties\. "
vc 3 migrate "$P" --off-member 7
err_has "^vlunctl: cannot migrate: --off-member: pool 'p0' has no member 7 \(it has 3\): no such member index\. "
vc 3 migrate "$P" lin0 --to 1,3
err_has "--to: pool 'p0' has no member 3"
vc 2 migrate "$P" --off-member 300
err_has "invalid --off-member '300': not a member index\. "
vc 2 migrate "$P" --to 1,,2
vc 2 migrate "$P"
err_has "^vlunctl: cannot migrate: nothing to migrate\. "
vc 2 migrate "$P" lin0 --rate fast
err_has "invalid --rate 'fast': not a size per second\. "
vc 2 migrate "$P" lin0 --watch
err_has "not an option of this command"
vc 2 migrate
err_has "^vlunctl: migrate: no pool given\. "
vc 0 pool show "$P" --json
json 'd["jobs"] == [] and d["members"][0]["used_sectors"] > 0'

# ---- offline: empty member 0; vlunctl runs the job itself, with progress
vc 0 migrate "$P" --off-member 0 --rate 8M
out_has "^started migration job [0-9]+ in pool 'p0'$"
out_has "^migration job [0-9]+ done$"
# not a terminal: a progress line about every 2 s
out_has "^job [0-9]+ .*: (running|done) +[0-9]+\.[0-9]%  [0-9.]+ [KMG]?i?B / [0-9.]+ [KMG]?i?B, [0-9.]+ MiB/s, ETA [0-9?]"
vc 0 pool show "$P" --json
json 'd["members"][0]["used_sectors"] == 0 and d["jobs"] == []'
json 'all(0 not in v["members"] for v in d["vdisks"])'
vc 0 vdisk show "$P" lin0 --json
json 'all(e["member"] != 0 and e["alt_member"] != 0 for e in d["extents"])'
vc 0 vdisk show "$P" thin0 --json
json 'all(e["member"] != 0 and e["alt_member"] != 0 for e in d["extents"])'
same_sum lin0 "$ref_lin0"
same_sum thin0 "$ref_thin0"

# ---- offline: a range of one vdisk to a named member
vc 0 migrate "$P" lin0 --range 0:4M --to 0
out_has "^migration job [0-9]+ done$"
vc 0 vdisk show "$P" lin0 --json
json 'all((e["member"] == 0) == (e["vsector"] < 8192) for e in d["extents"])'
same_sum lin0 "$ref_lin0"

# ---- online: the holder runs the job, --wait follows it
wait_ready() {
	for _ in $(seq 100); do [ -e "$1" ] && break; kill -0 "$2" 2>/dev/null || break; sleep 0.1; done
	[ -e "$1" ] || { cat "$T/helper.err" >&2; echo "helper did not hold the pool" >&2; exit 1; }
}
"$HELPER" hold "$T/ready" "$P" lin0 2>"$T/helper.err" &
holder=$!
bg_pids+=("$holder")
wait_ready "$T/ready" "$holder"
by="\(done by the running vlunctl_test_he, pid $holder\)"

vc 0 migrate "$P" lin0 --to 2 --rate 8M --wait
out_has "^started migration job [0-9]+ in pool 'p0' $by$"
out_has "^job [0-9]+ .*: (running|queued) +[0-9]+\.[0-9]%"
out_has "^migration job [0-9]+ done$"
vc 0 jobs "$P" --json
json 'd["held"] is True and all(j["state"] != "running" for j in d["jobs"])'
# without --wait it returns at once; jobs --watch follows it to the end
vc 0 migrate "$P" lin0 --range 0:8M --to 1 --rate 4M
out_has "^started migration job [0-9]+ in pool 'p0' $by$"
out_lacks "done$"
vc 0 jobs "$P" --watch
out_has "^job [0-9]+ "
# a mirror added online, filled by the holder; resync --wait waits for it
vc 0 mirror add "$P" lin0 --members 0
out_has "^mirrored the whole of vdisk 'lin0' in pool 'p0' $by$"
vc 0 resync "$P" --wait
out_has "^resync of pool 'p0' started $by$"
out_has "^mirrors of pool 'p0' in sync$"
vc 0 pool show "$P" --json
json '[v for v in d["vdisks"] if v["name"] == "lin0"][0]["mirror_state"] == "in-sync"'
# fault injection through the holder
vc 0 member fault "$P" 1 on
out_has "^member 1 of pool 'p0' now fails every I/O of the holder \(a drill"
vc 0 member fault "$P" 1 off
vc 3 member fault "$P" 5 on
vc 2 member fault "$P" 1 sometimes
vc 3 job cancel "$P" 4242
# bad input online is refused by vlunctl's own checks first
vc 3 migrate "$P" nosuch --to 1
vc 2 migrate "$P" --off-member 2 --to 2
kill "$holder"
wait "$holder" 2>/dev/null
bg_pids=()

vc 0 vdisk show "$P" lin0 --json
json 'all(e["member"] in (1, 2) for e in d["extents"]) and all((e["member"] == 1) == (e["vsector"] < 16384) for e in d["extents"])'
json 'all("alt" in e["flags"] and e["alt_member"] == 0 and "alt-dirty" not in e["flags"] for e in d["extents"])'
same_sum lin0 "$ref_lin0"
same_sum thin0 "$ref_thin0"

finish
