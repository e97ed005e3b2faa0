#!/usr/bin/env bash
# vlunctl vdisk create (linear, striped, thin) / list / show / resize /
# delete: the map that is shown matches the layout, the summary matches the
# map, and data loss needs --force.
. "$(dirname "$0")/lib.sh"

P=$T/pool
mkmembers "$P" 3 96M
vc 0 pool create p0 "$P/m0" "$P/m1" "$P/m2" --meta-size 4M

# the map of a vdisk is sorted, contiguous, covers the size, and its
# allocated extents lie inside their member's data area
MAPOK='(lambda e, ms: all(a["vsector"] + a["nsectors"] == b["vsector"] for a, b in zip(e, e[1:])) and e[0]["vsector"] == 0 and e[-1]["vsector"] + e[-1]["nsectors"] == d["size_sectors"] and all(x["member"] is None or ms[x["member"]]["data_start_sector"] <= x["psector"] and x["psector"] + x["nsectors"] <= ms[x["member"]]["data_start_sector"] + ms[x["member"]]["data_sectors"] for x in e))(d["extents"], MEMBERS)'
vc 0 pool show "$P" --json
cp "$T/out" "$T/pool.json"
MAPOK=${MAPOK//MEMBERS/json.load(open(\"$T/pool.json\"))[\"members\"]}

# ---- striped first (it needs the same free space on every member)
# 64K stripes over 3 members, round robin
vc 0 vdisk create -p "$P" st0 --size 12M --striped --stripe-size 64K --width 3
out_has "^created vdisk 'st0' in pool 'p0': striped, 12 MiB \(64 KiB stripes over 3 members\)$"
vc 0 vdisk show "$P" st0 --json
json 'd["layout"] == "striped" and d["stripe_bytes"] == 65536 and d["stripe_width"] == 3 and d["chunk_bytes"] == 0'
json 'd["size_bytes"] == 12 << 20 and d["allocated_bytes"] == 12 << 20'
json "$MAPOK"
# consecutive 64K stripes rotate over three different members
json '(lambda e: len(e) >= 6 and len(set(x["member"] for x in e[:3])) == 3 and all(e[i]["member"] == e[i % 3]["member"] for i in range(len(e))))([x for x in d["extents"] for _ in range(x["nsectors"] // 128)])'
json 'all(x["nsectors"] % 128 == 0 for x in d["extents"])'
vc 0 vdisk show "$P" st0
out_has '^Layout: +striped, 64 KiB stripes over 3 members$'
for i in 0 1 2; do out_has " $i \($P/m$i\) "; done

# striped over a subset, default stripe size
vc 0 vdisk create "$P" st1 --size 4M --striped --members 0,2
vc 0 vdisk show "$P" st1 --json
json 'd["stripe_width"] == 2 and set(x["member"] for x in d["extents"]) == {0, 2}'

# ---- linear: larger than the free space of one member, so it spans two
vc 0 vdisk create "$P" lin0 --size 100M --linear
out_has "^created vdisk 'lin0' in pool 'p0': linear, 100 MiB$"
vc 0 vdisk show "$P" lin0 --json
json 'd["name"] == "lin0" and d["pool"] == "p0" and d["layout"] == "linear"'
json 'd["size_bytes"] == 100 << 20 and d["size_sectors"] == 204800'
json 'd["allocated_bytes"] == d["size_bytes"] and d["allocated_sectors"] == d["size_sectors"]'
json 'd["chunk_bytes"] == 0 and d["stripe_bytes"] == 0 and d["stripe_width"] == 0'
json 'd["extent_count"] == len(d["extents"]) >= 2'
json 'len(set(x["member"] for x in d["extents"])) >= 2'
json 'all(x["flags"] == [] and x["flags_value"] == 0 and x["alt_member"] is None for x in d["extents"])'
json 'all(x["member_path"] == "'"$P"'/m%d" % x["member"] for x in d["extents"])'
json "$MAPOK"
json 'set(d["extents"][0]) == {"vsector", "nsectors", "member", "member_path", "psector", "flags", "flags_value", "alt_member", "alt_psector", "dirty_id"}'
vc 0 vdisk show "$P" lin0
out_has '^Vdisk: +lin0 \(id [0-9]+\) in pool .p0.$'
out_has '^Layout: +linear$'
out_has '^Size: +100 MiB \(204800 sectors\)$'
out_has '^Allocated: +100 MiB of 100 MiB \(100\.0%\)$'
out_has '^  VIRTUAL +LENGTH +MEMBER +PHYSICAL +FLAGS$'
out_has "^  0-[0-9]+ +[0-9]+ +[0-9] \($P/m[0-9]\) +[0-9]+-[0-9]+ +-$"

# ---- thin: nothing allocated until written
vc 0 vdisk create "$P" thin0 --size 1G --thin --chunk 1M
out_has "^created vdisk 'thin0' in pool 'p0': thin, 1 GiB \(1 MiB chunks\)$"
vc 0 vdisk show "$P" thin0 --json
json 'd["layout"] == "thin" and d["chunk_bytes"] == 1 << 20 and d["size_bytes"] == 1 << 30'
json 'd["allocated_bytes"] == 0 and d["allocated_sectors"] == 0'
json 'all("invalid" in x["flags"] and x["member"] is None and x["psector"] is None for x in d["extents"])'
json "$MAPOK"
vc 0 vdisk show "$P" thin0
out_has '^Layout: +thin, 1 MiB chunks$'
out_has '^Allocated: +0 B of 1 GiB \(0\.0%\), 0 of 1024 chunks$'
out_has '^  0-[0-9]+ +[0-9]+ +- +- +invalid$'

# a write allocates chunks; show reports them
if [ -x "$HELPER" ] && "$HELPER" write "$P" thin0 $((5 << 20)) $((2 << 20)) 2>"$T/helper.err"; then
	vc 0 vdisk show "$P" thin0 --json
	json 'd["allocated_bytes"] == 2 << 20'
	json "$MAPOK"
	json '[ (x["vsector"], x["nsectors"]) for x in d["extents"] if x["member"] is not None ] in ([(10240, 4096)], [(10240, 2048), (12288, 2048)])'
	vc 0 vdisk show "$P" thin0
	out_has '^Allocated: +2 MiB of 1 GiB \(0\.2%\), 2 of 1024 chunks$'
	vc 0 vdisk list "$P" --json
	json '[v["allocated_bytes"] for v in d["vdisks"] if v["name"] == "thin0"] == [2 << 20]'
else
	bad "thin write through the library failed: $(cat "$T/helper.err")"
fi

# ---- list
vc 0 vdisk list "$P"
out_has '^NAME +ID +LAYOUT +SIZE +ALLOCATED +EXTENTS$'
out_has '^lin0 +[0-9]+ +linear +100 MiB +100 MiB +[0-9]+$'
out_has '^st0 +[0-9]+ +striped +12 MiB '
out_has '^thin0 +[0-9]+ +thin +1 GiB '
vc 0 vdisk list "$P" --json
json 'd["pool"] == "p0" and sorted(v["name"] for v in d["vdisks"]) == ["lin0", "st0", "st1", "thin0"]'
json 'len(set(v["id"] for v in d["vdisks"])) == 4 and len(set(v["uuid"] for v in d["vdisks"])) == 4'
json 'all(set(v) == {"name", "id", "uuid", "layout", "size_bytes", "size_sectors", "chunk_bytes", "stripe_bytes", "stripe_width", "allocated_bytes", "allocated_sectors", "extent_count", "generation", "snapshot_reserve_of", "snapshots"} for v in d["vdisks"])'
vc 0 pool show "$P" --json
json 'd["used_bytes"] == sum(v["allocated_bytes"] for v in d["vdisks"]) and d["free_bytes"] == d["total_bytes"] - d["used_bytes"]'
json 'sum(m["used_sectors"] for m in d["members"]) * 512 == d["used_bytes"]'
json 'd["provisioned_bytes"] == (100 << 20) + (12 << 20) + (4 << 20) + (1 << 30)'
vc 0 pool show "$P"
out_has '^Vdisk size: 1\.1 GiB in 4 vdisks \([0-9]+% of total: thin overcommit\)$'

# ---- errors
vc 7 vdisk create "$P" lin0 --size 1M --linear
err_has "cannot create vdisk 'lin0' in pool 'p0': the name is taken"
vc 5 vdisk create "$P" huge --size 1T --linear
err_has "cannot create vdisk 'huge' in pool 'p0': .*\. "
vc 3 vdisk create "$P" x --size 1M --linear --members 0,7
err_has 'has no member 7'
vc 3 vdisk show "$P" nope
err_has "cannot show vdisk 'nope' in pool 'p0': no such vdisk\. 'vlunctl vdisk list'"
out_empty
vc 3 vdisk show "$P" nope --json
out_empty
vc 3 vdisk resize "$P" nope --size 1G
vc 3 vdisk delete "$P" nope --force
vc 0 vdisk list "$P" --json
json 'sorted(v["name"] for v in d["vdisks"]) == ["lin0", "st0", "st1", "thin0"]'

# ---- resize: grow; shrink only with --force
vc 0 vdisk resize "$P" lin0 --size 120M
out_has "^resized vdisk 'lin0' in pool 'p0' from 100 MiB to 120 MiB$"
vc 0 vdisk show "$P" lin0 --json
json 'd["size_bytes"] == 120 << 20 and d["allocated_bytes"] == 120 << 20'
json "$MAPOK"
vc 0 vdisk resize "$P" thin0 --size 2G
vc 0 vdisk show "$P" thin0 --json
json 'd["size_bytes"] == 2 << 30'
json "$MAPOK"
vc 0 vdisk resize "$P" lin0 --size 120M
out_has 'already 120 MiB; nothing to do'
vc 6 vdisk resize "$P" lin0 --size 50M
err_has "cannot resize vdisk 'lin0' from 120 MiB to 50 MiB: shrinking it would destroy the data past the new end\. Re-run with --force"
vc 0 vdisk show "$P" lin0 --json
json 'd["size_bytes"] == 120 << 20'
vc 0 vdisk resize "$P" lin0 --size 50M --force
out_has 'from 120 MiB to 50 MiB'
vc 0 vdisk show "$P" lin0 --json
json 'd["size_bytes"] == 50 << 20 and d["allocated_bytes"] == 50 << 20'
json "$MAPOK"
vc 5 vdisk resize "$P" lin0 --size 1T
vc 0 vdisk show "$P" lin0 --json
json 'd["size_bytes"] == 50 << 20'

# ---- delete: only with --force
vc 6 vdisk delete "$P" st0
err_has "cannot delete vdisk 'st0' in pool 'p0': deleting destroys its data \(12 MiB, 12 MiB allocated\)\. Re-run with --force"
vc 0 vdisk list "$P" --json
json '"st0" in [v["name"] for v in d["vdisks"]]'
vc 0 vdisk delete "$P" st0 --force
out_has "^deleted vdisk 'st0' from pool 'p0'$"
vc 0 vdisk list "$P" --json
json 'sorted(v["name"] for v in d["vdisks"]) == ["lin0", "st1", "thin0"]'
# its space is free again: the name and the space can be reused
vc 0 vdisk create "$P" st0 --size 12M --striped
vc 0 pool show "$P" --json
json 'd["used_bytes"] == sum(v["allocated_bytes"] for v in d["vdisks"])'

finish
