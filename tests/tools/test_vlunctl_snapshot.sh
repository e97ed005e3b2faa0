#!/usr/bin/env bash
# vlunctl snapshot create / list / delete / rollback / reserve, offline
# (vlunctl holds the pool itself) and through a holder's control channel:
# a snapshot reads the source as it was at its creation while the source
# changes; the reserve vdisk is marked in vdisk list and pool show; the
# JSON has the documented fields; rollback gives the source its old
# content; deleting the last snapshot deletes the reserve and gives its
# space back. A holder refuses to delete or roll back an exported
# snapshot (exit 4). Bad input is refused with one clear line.
. "$(dirname "$0")/lib.sh"
[ -x "$HELPER" ] || { echo "no helper at $HELPER" >&2; exit 1; }

P=$T/pool
mkmembers "$P" 2 64M
vc 0 pool create p0 "$P/m0" "$P/m1" --meta-size 4M
vc 0 vdisk create "$P" src --size 8M --linear
vc 0 vdisk create "$P" other --size 4M --linear
"$HELPER" write "$P" src 0 $((8 << 20)) 7 || { echo "helper write failed" >&2; exit 1; }
"$HELPER" read "$P" src >"$T/ref0" || { echo "helper read failed" >&2; exit 1; }
vc 0 pool show "$P" --json
free0=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["free_bytes"])' "$T/out")

# same_content VDISK REF / differs VDISK REF: read through the library
same_content() {
	if "$HELPER" read "$P" "$1" >"$T/now" && cmp -s "$T/now" "$2"; then ok; else
		last="helper read $1"; bad "'$1' does not hold the expected data"; fi
}
differs() {
	if "$HELPER" read "$P" "$1" >"$T/now" && ! cmp -s "$T/now" "$2"; then ok; else
		last="helper read $1"; bad "'$1' still holds the old data"; fi
}

# ---- create
vc 0 snapshot create "$P" src s1 --reserve 16M --chunk 64K
out_has "^created snapshot 's1' of vdisk 'src' in pool 'p0'$"
out_has "^reserve 16(\.0)? MiB, chunks of 64(\.0)? KiB, when the reserve is full: fail-snapshot$"
out_has "cfgstring=<pool-spec>/src@s1"
vc 0 snapshot list "$P"
out_has "^SOURCE +NAME +STATE"
out_has "^src +s1 +active "
vc 0 snapshot list "$P" src --json
json 'd["pool"] == "p0" and len(d["snapshots"]) == 1'
json '(lambda s: s["name"] == "s1" and s["source"] == "src" and s["state"] == "active" and s["why"] is None and s["chunk_bytes"] == 65536 and s["reserve_total_bytes"] >= 15 << 20 and s["on_full"] == "fail-snapshot" and s["created"] > 0)(d["snapshots"][0])'
vc 0 snapshot list "$P" other
out_has "^vdisk 'other' in pool 'p0' has no snapshots"
vc 0 vdisk list "$P"
out_has "^src .*\(1 snapshot\)$"
out_has "\(snapshot reserve of 'src', not exportable\)$"
vc 0 vdisk list "$P" --json
json 'len([v for v in d["vdisks"] if v["snapshot_reserve_of"] == "src"]) == 1'
json '[v for v in d["vdisks"] if v["name"] == "src"][0]["snapshots"] == 1'
vc 0 pool show "$P"
out_has "^Snapshots: +1 session on 1 vdisk"
out_has "^    s1 +active +created "
vc 0 pool show "$P" --json
json '[s["name"] for s in d["snapshots"]] == ["s1"]'

# ---- the snapshot keeps the source's past
"$HELPER" write "$P" src 0 $((8 << 20)) 9 || { echo "helper write failed" >&2; exit 1; }
"$HELPER" read "$P" src >"$T/ref1"
same_content src@s1 "$T/ref0"
differs src "$T/ref0"
vc 0 snapshot list "$P" src --json
json 'not d["usage_known"] or d["snapshots"][0]["saved_bytes"] == 8 << 20'

# ---- a second session shares; the policy changes for the store
vc 0 snapshot create "$P" src s2 --on-full fail-write
vc 0 snapshot list "$P" --json
json 'sorted(s["name"] for s in d["snapshots"]) == ["s1", "s2"]'
json 'all(s["on_full"] == "fail-write" for s in d["snapshots"])'
same_content src@s2 "$T/ref1"

# ---- reserve: show, grow, policy
vc 0 snapshot reserve "$P" src
out_has "^vdisk 'src': reserve 16(\.0)? MiB, chunks of 64(\.0)? KiB, when full: fail-write, 2 snapshots$"
vc 0 snapshot reserve "$P" src --size 32M --on-full fail-snapshot
out_has "^changed the snapshot reserve of vdisk 'src' in pool 'p0'$"
out_has "^reserve 32(\.0)? MiB, when full: fail-snapshot$"

# ---- bad input, one line each
vc 7 snapshot create "$P" src s1
err_has "a snapshot of that name exists"
vc 3 snapshot create "$P" nosuch s9
err_has "no such vdisk"
vc 2 snapshot create "$P" src 'bad name'
err_has "invalid name"
vc 2 snapshot create "$P" src s9 --on-full never
err_has "invalid --on-full 'never': not a policy"
vc 2 snapshot create "$P" src s9 --chunk 3000
vc 2 snapshot create "$P" src s9 --chunk 96K
err_has "not a power of two"
vc 2 snapshot create "$P" src s9 --chunk 128K
err_has "fixed by its first snapshot"
vc 2 snapshot create "$P" src s9 --reserve lots
vc 2 snapshot create "$P" src s9 --size 1M
err_has "not an option of this command"
vc 3 snapshot delete "$P" src nosuch
err_has "no such snapshot"
vc 3 snapshot rollback "$P" src nosuch
vc 3 snapshot reserve "$P" other --size 8M
err_has "it has no snapshots, so no reserve"
vc 2 snapshot reserve "$P" src --size 8M
err_has "a reserve only grows"
vc 2 snapshot create "$P" src
vc 2 snapshot list "$P" src extra

# ---- rollback to s1: the source is back at ref0, s2 keeps ref1
vc 0 snapshot rollback "$P" src s1
out_has "^rolled vdisk 'src' back to snapshot 's1' in [0-9.]+ s"
same_content src "$T/ref0"
same_content src@s1 "$T/ref0"
same_content src@s2 "$T/ref1"

# ---- online: a holder with src and src@s1 open
"$HELPER" hold "$T/ready" "$P" src src@s1 2>"$T/helper.err" &
holder=$!
bg_pids+=("$holder")
for _ in $(seq 100); do [ -e "$T/ready" ] && break; kill -0 "$holder" 2>/dev/null || break; sleep 0.1; done
[ -e "$T/ready" ] || { cat "$T/helper.err" >&2; echo "helper did not hold the pool" >&2; exit 1; }
vc 0 snapshot list "$P" src --json
json 'd["held"] and d["usage_known"]'
json '[s["open"] for s in sorted(d["snapshots"], key=lambda s: s["name"])] == [True, False]'
vc 0 snapshot list "$P"
out_has "^src +s1 +active .* yes$"
vc 4 snapshot delete "$P" src s1
err_has "asked the process holding it"
err_has "targetcli"
vc 4 snapshot rollback "$P" src s2
vc 0 snapshot create "$P" src s3
out_has "done by the running"
vc 0 snapshot delete "$P" src s2
out_has "done by the running"
kill "$holder"; wait "$holder" 2>/dev/null

# ---- delete everything: the reserve goes, its space comes back
vc 0 snapshot delete "$P" src s3
out_has "went back to the reserve"
vc 0 snapshot delete "$P" src s1
out_has "^deleted snapshot 's1' of vdisk 'src' in pool 'p0'$"
out_has "it was the last one: the reserve was deleted"
vc 0 snapshot list "$P"
out_has "^no snapshots in pool 'p0'$"
vc 0 vdisk list "$P"
out_lacks "snapshot reserve"
vc 0 pool show "$P" --json
json "d['free_bytes'] == $free0 and d['snapshots'] == []"
same_content src "$T/ref0"

finish
