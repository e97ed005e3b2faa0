#!/usr/bin/env bash
# vlunctl mirror add / resync / remove / split, offline (vlunctl holds the
# pool itself): a mirror added to a linear disk starts behind, `resync
# --wait` fills it and `pool show` says in sync; both copies then hold the
# data written before, byte for byte (read from the member files at the
# extents' offsets); removing a copy keeps the data; a split gives a vdisk
# with the same content. Bad input is refused with one clear line.
. "$(dirname "$0")/lib.sh"
[ -x "$HELPER" ] || { echo "no helper at $HELPER" >&2; exit 1; }

P=$T/pool
mkmembers "$P" 3 64M
vc 0 pool create p0 "$P/m0" "$P/m1" "$P/m2" --meta-size 4M
vc 0 vdisk create "$P" lin0 --size 8M --linear --members 0
vc 0 vdisk create "$P" lin1 --size 8M --linear --members 0
"$HELPER" write "$P" lin0 0 $((8 << 20)) 7 || { echo "helper write failed" >&2; exit 1; }
"$HELPER" write "$P" lin1 0 $((8 << 20)) 11 || { echo "helper write failed" >&2; exit 1; }
"$HELPER" read "$P" lin0 >"$T/lin0.ref" || { echo "helper read failed" >&2; exit 1; }
"$HELPER" read "$P" lin1 >"$T/lin1.ref" || { echo "helper read failed" >&2; exit 1; }
[ "$(stat -c %s "$T/lin0.ref")" = $((8 << 20)) ] || { echo "short read" >&2; exit 1; }

# same_content VDISK REF: the vdisk read through the library equals REF
same_content() {
	if "$HELPER" read "$P" "$1" >"$T/now" && cmp -s "$T/now" "$2"; then ok; else
		last="helper read $1"; bad "vdisk '$1' does not hold the data written before"; fi
}

# copies_equal VDISK: every mirrored extent's two copies are identical on
# the member files (offsets from vdisk show --json, paths from pool show)
copies_equal() {
	"$VLUNCTL" pool show "$P" --json >"$T/pool.json" && "$VLUNCTL" vdisk show "$P" "$1" --json >"$T/vd.json" || {
		bad "pool/vdisk show failed"; return; }
	local why
	if why=$(python3 - "$T/pool.json" "$T/vd.json" <<'PY' 2>&1
import json, sys
pool = json.load(open(sys.argv[1])); vd = json.load(open(sys.argv[2]))
path = {m["index"]: m["path"] for m in pool["members"]}
def read(m, s, n):
    with open(path[m], "rb") as f:
        f.seek(s * 512)
        return f.read(n * 512)
mirrored = 0
for e in vd["extents"]:
    if "alt" not in e["flags"]:
        continue
    mirrored += e["nsectors"]
    if e["member"] == e["alt_member"]:
        raise SystemExit("extent at %d: both copies on member %d" % (e["vsector"], e["member"]))
    a = read(e["member"], e["psector"], e["nsectors"])
    b = read(e["alt_member"], e["alt_psector"], e["nsectors"])
    if a != b:
        raise SystemExit("extent at %d: copies on members %d and %d differ" % (e["vsector"], e["member"], e["alt_member"]))
if mirrored != vd["size_sectors"]:
    raise SystemExit("only %d of %d sectors mirrored" % (mirrored, vd["size_sectors"]))
PY
	); then ok; else bad "copies of '$1': $why"; fi
}

# ---- mirror add: the new copy starts behind
vc 0 mirror add "$P" lin0 --members 1
out_has "^mirrored the whole of vdisk 'lin0' in pool 'p0'$"
out_has "^8(\.0)? MiB to copy: run 'vlunctl resync <pool-spec> --wait'"
vc 0 pool show "$P" --json
json '[v for v in d["vdisks"] if v["name"] == "lin0"][0]["mirror_state"] == "behind"'
json '[v for v in d["vdisks"] if v["name"] == "lin0"][0]["behind_bytes"] == 8 << 20'
json '[v for v in d["vdisks"] if v["name"] == "lin1"][0]["mirror_state"] == "none"'
vc 0 vdisk show "$P" lin0 --json
json 'all("alt" in e["flags"] and e["alt_member"] == 1 and e["member"] == 0 for e in d["extents"])'

# ---- resync --wait fills it (in this process: nothing holds the pool)
vc 0 resync "$P" --wait
out_has "^mirrors of pool 'p0' in sync$"
vc 0 pool show "$P"
out_has "^  lin0 +[0-9]+ +8(\.0)? MiB of 8(\.0)? MiB +0 B +in sync +0,1$"
out_has "^Jobs: +0 persistent$"
vc 0 pool show "$P" --json
json '(lambda v: v["mirror_state"] == "in-sync" and v["behind_bytes"] == 0 and v["mirrored_bytes"] == 8 << 20 and v["members"] == [0, 1] and v["failed_members"] == [])([v for v in d["vdisks"] if v["name"] == "lin0"][0])'
json 'd["jobs"] == []'
# every map change bumped the disk's generation
json '[v for v in d["vdisks"] if v["name"] == "lin0"][0]["generation"] > [v for v in d["vdisks"] if v["name"] == "lin1"][0]["generation"]'
copies_equal lin0
same_content lin0 "$T/lin0.ref"

# ---- mirror remove: the second copy goes, the data stays
vc 0 mirror remove "$P" lin0
out_has "^removed the second copy of the whole of vdisk 'lin0' in pool 'p0'$"
vc 0 vdisk show "$P" lin0 --json
json 'all("alt" not in e["flags"] and e["member"] == 0 for e in d["extents"])'
vc 0 pool show "$P" --json
json '[v for v in d["vdisks"] if v["name"] == "lin0"][0]["mirror_state"] == "none"'
same_content lin0 "$T/lin0.ref"

# removing the copy on the primary's member keeps the other one
vc 0 mirror add "$P" lin1 --members 2
vc 0 resync "$P" --wait
copies_equal lin1
vc 0 mirror remove "$P" lin1 --member 0
out_has "^removed the copy on member 0 of the whole of vdisk 'lin1'"
vc 0 vdisk show "$P" lin1 --json
json 'all(e["member"] == 2 and "alt" not in e["flags"] for e in d["extents"])'
same_content lin1 "$T/lin1.ref"

# ---- a range
vc 0 mirror add "$P" lin0 --range 1M:2M --members 2
out_has "^mirrored 2(\.0)? MiB at 1(\.0)? MiB of vdisk 'lin0'"
vc 0 pool show "$P" --json
json '[v for v in d["vdisks"] if v["name"] == "lin0"][0]["mirrored_bytes"] == 2 << 20'
vc 0 vdisk show "$P" lin0 --json
json 'all(("alt" in e["flags"]) == (2048 <= e["vsector"] < 6144) for e in d["extents"])'
vc 0 resync "$P" --wait
# the only good copy of a range that is behind cannot go
vc 0 mirror remove "$P" lin0 --range 1M:2M
vc 0 mirror add "$P" lin0 --members 2
vc 4 mirror remove "$P" lin0 --member 0
vc 0 resync "$P" --wait
copies_equal lin0

# ---- split: the second copies become a new vdisk with the same content
vc 0 mirror split "$P" lin0 lin0copy
out_has "^split vdisk 'lin0' in pool 'p0': its second copy is now vdisk 'lin0copy'$"
vc 0 vdisk list "$P" --json
json 'sorted(v["name"] for v in d["vdisks"]) == ["lin0", "lin0copy", "lin1"]'
vc 0 vdisk show "$P" lin0copy --json
json 'd["size_bytes"] == 8 << 20 and all(e["member"] == 2 and "alt" not in e["flags"] for e in d["extents"])'
vc 0 vdisk show "$P" lin0 --json
json 'all(e["member"] == 0 and "alt" not in e["flags"] for e in d["extents"])'
same_content lin0copy "$T/lin0.ref"
same_content lin0 "$T/lin0.ref"
# the two are independent now
"$HELPER" write "$P" lin0 0 $((1 << 20)) 99 || bad "helper write"
same_content lin0copy "$T/lin0.ref"

# ---- bad input, each refused before anything changes
vc 3 mirror add "$P" nosuch
err_has "^vlunctl: cannot mirror vdisk 'nosuch' in pool 'p0': no such vdisk\. "
vc 2 mirror add "$P" lin1 --range 4M:8M
err_has "cannot mirror vdisk 'lin1': vdisk 'lin1' is 8(\.0)? MiB \(8388608 bytes\): the range is not inside the vdisk\. "
vc 2 mirror add "$P" lin1 --range 1M
err_has "invalid --range '1M': not OFFSET:LENGTH\. "
vc 2 mirror add "$P" lin1 --range 1000:4K
err_has "invalid --range '1000:4K': not a multiple of 512 bytes\. "
vc 2 mirror add "$P" lin1 --range x:1M
vc 3 mirror add "$P" lin1 --members 1,9
err_has "cannot mirror vdisk 'lin1': --members: pool 'p0' has no member 9 \(it has 3\): no such member index\. "
vc 2 mirror add "$P" lin1 --members 1,1
err_has "a member index is given twice"
vc 2 mirror remove "$P" lin1 --member one
err_has "invalid --member 'one': not a member index\. "
vc 3 mirror remove "$P" lin1 --member 5
vc 7 mirror split "$P" lin1 lin0
err_has "the name is taken"
vc 2 mirror split "$P" lin1 'bad name'
err_has "invalid name"
vc 3 mirror split "$P" nosuch new1
# split of a disk that is not mirrored is refused (by the library: its errno)
last="vlunctl mirror split $P lin1 new1"
if "$VLUNCTL" mirror split "$P" lin1 new1 >"$T/out" 2>"$T/err"; then bad "split of an unmirrored vdisk succeeded"; else ok; fi
err_has "^vlunctl: cannot split vdisk 'lin1'"
vc 2 mirror add "$P" lin1 --size 1M
err_has "not an option of this command"
vc 2 mirror
vc 2 mirror add "$P"
vc 1 member fault "$P" 0 on
err_has "no process holds the pool\. Fault injection acts on the running holder"
vc 2 member fault "$P" 0 maybe
vc 2 job cancel "$P" x
vc 3 job cancel "$P" 4242
vc 0 vdisk list "$P" --json
json 'sorted(v["name"] for v in d["vdisks"]) == ["lin0", "lin0copy", "lin1"]'

# help lists the commands, and says member fault is for drills
vc 0 help
out_has "^    mirror add <pool-spec> <vdisk>"
out_has "^    migrate <pool-spec>"
out_has "^    jobs <pool-spec>"
out_has "^        drills and tests only"

finish
