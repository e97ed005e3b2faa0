#!/usr/bin/env bash
# vlunctl pool create / show / add-member on member files: what is shown
# (human and JSON), the pool spec forms, and the refusals (existing label
# without --force, member already in the pool).
. "$(dirname "$0")/lib.sh"

P=$T/pool
mkmembers "$P" 3 64M

vc 0 pool create p0 "$P/m0" "$P/m1" "$P/m2" --meta-size 4M
out_has "^created pool 'p0' on 3 members \(metadata area 4 MiB per member\)$"

# human
vc 0 pool show "$P"
out_has '^Pool: +p0$'
out_has '^UUID: +[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
out_has '^Members: +3$'
for i in 0 1 2; do out_has "^  $i +ok +64 MiB .* $P/m$i\$"; done
out_has '^Vdisks: +0$'
out_has '^Space: .* total, 0 B used \(0\.0%\), .* free$'

# JSON: field names and integer types are the interface
vc 0 pool show "$P" --json
json 'd["name"] == "p0" and len(d["uuid"]) == 36'
json 'all(isinstance(d[k], int) for k in ("created", "seq", "generation", "map_epoch", "total_bytes", "free_bytes", "used_bytes"))'
json 'd["used_bytes"] == 0 and d["free_bytes"] == d["total_bytes"] > 0'
json '[m["index"] for m in d["members"]] == [0, 1, 2]'
json "[m['path'] for m in d['members']] == ['$P/m0', '$P/m1', '$P/m2']"
json 'all(m["state"] == "ok" and m["size_bytes"] == 64 << 20 and m["used_sectors"] == 0 for m in d["members"])'
json 'all(m["data_bytes"] == m["data_sectors"] * 512 and 0 < m["data_bytes"] <= 60 << 20 for m in d["members"])'
json 'all(m["data_start_sector"] * 512 >= 4 << 20 for m in d["members"])'
json 'd["total_bytes"] == sum(m["data_bytes"] for m in d["members"])'
json 'd["vdisks"] == []'
json 'set(d) == {"name", "uuid", "created", "seq", "generation", "map_epoch", "total_bytes", "free_bytes", "used_bytes", "provisioned_bytes", "members", "vdisks", "jobs", "snapshots"}'
json 'd["provisioned_bytes"] == 0'

# the pool spec forms: -p, comma list, glob, relative path
vc 0 pool show -p "$P"
out_has '^Pool: +p0$'
vc 0 pool show "$P/m0,$P/m1,$P/m2" --json
json 'd["name"] == "p0"'
vc 0 pool show "$P/m*" --json
json 'd["name"] == "p0" and len(d["members"]) == 3'
vc 0 --pool="$P" --json pool show
json 'd["name"] == "p0"'
(cd "$T" && "$VLUNCTL" pool show pool >"$T/out" 2>"$T/err") && ok || bad "relative pool spec"
out_has '^Pool: +p0$'

# an existing label is not overwritten without --force
vc 6 pool create p1 "$P/m0" "$P/m1" "$P/m2" --meta-size 4M
err_has "cannot create pool 'p1': .*--force"
vc 0 pool show "$P" --json
json 'd["name"] == "p0"'
# one labelled member among new ones is enough to refuse
mkmembers "$T/new" 1 64M
vc 6 pool create p1 "$T/new/m0" "$P/m1" --meta-size 4M
err_has '--force'
vc 0 pool show "$P" --json
json 'd["name"] == "p0" and len(d["members"]) == 3'

# --force overwrites (a second pool on other members)
Q=$T/q
mkmembers "$Q" 2 64M
vc 0 pool create q0 "$Q/m0" "$Q/m1" --meta-size 4M
vc 6 pool create q1 "$Q/m0" "$Q/m1" --meta-size 4M
vc 0 pool create q1 "$Q/m0" "$Q/m1" --meta-size 4M --force
out_has "created pool 'q1'"
vc 0 pool show "$Q" --json
json 'd["name"] == "q1" and len(d["members"]) == 2'

# pool create -p SPEC takes the members from the spec
R=$T/r
mkmembers "$R" 2 64M
vc 0 pool create r0 -p "$R" --meta-size 4M
out_has "created pool 'r0' on 2 members"

# add-member
truncate -s 128M "$P/m3"
vc 0 pool add-member "$P" "$P/m3"
out_has "^added '$P/m3' to pool 'p0' as member 3$"
vc 0 pool show "$P" --json
json 'len(d["members"]) == 4 and d["members"][3]["path"].endswith("/m3") and d["members"][3]["size_bytes"] == 128 << 20'
json 'd["members"][3]["index"] == 3 and d["total_bytes"] == sum(m["data_bytes"] for m in d["members"])'
vc 7 pool add-member "$P" "$P/m3"
err_has "cannot add member '$P/m3' to pool 'p0': it is already member of this pool"
# a member outside the spec: works, with a note on how to open the pool now
mkmembers "$T/out1" 1 64M
vc 0 pool add-member "$P" "$T/out1/m0"
out_has "as member 4"
out_has "not covered by the pool spec"
vc 0 pool show "$P,$T/out1/m0" --json
json 'len(d["members"]) == 5'
# without that member the pool is incomplete: shown, with the member
# named on stderr and reported MISSING (a degraded pool can be looked at)
vc 0 pool show "$P" --json
err_has "member 4 .*$T/out1/m0.* missing"
json 'd["members"][4]["state"] == "missing"'
vc 3 vdisk create "$P" v --size 1M --linear
err_has "cannot create vdisk 'v': .*missing"
# a member labelled for another pool needs --force
vc 6 pool add-member "$P,$T/out1/m0" "$R/m0"
err_has '--force'
vc 3 pool add-member "$P,$T/out1/m0" "$T/nope"
err_has "No such file or directory"

# the members alone: a directory of unlabelled files is no pool
mkmembers "$T/blank" 2 64M
vc 3 pool show "$T/blank"
err_has "cannot show pool"

# two pools among the paths: refused as ambiguous, --pool-name picks one
mkmembers "$T/two" 2 64M
vc 0 pool create pa "$T/two/m0" --meta-size 4M
vc 0 pool create pb "$T/two/m1" --meta-size 4M
vc 2 pool show "$T/two"
err_has "'pa'.*'pb'.*--pool-name"
vc 0 pool show "$T/two" --pool-name pb --json
json 'd["name"] == "pb" and len(d["members"]) == 1 and d["members"][0]["path"].endswith("/two/m1")'
vc 0 vdisk create "$T/two" x --size 1M --linear --pool-name pa
out_has "in pool 'pa'"
vc 0 vdisk list "$T/two" --pool-name pa --json
json '[v["name"] for v in d["vdisks"]] == ["x"]'
vc 0 vdisk list "$T/two" --pool-name pb --json
json 'd["vdisks"] == []'
vc 3 pool show "$T/two" --pool-name zz
err_has "'zz'"
vc 2 pool create pc "$T/two/m0" --pool-name pa
err_has 'not an option'

finish
