#!/usr/bin/env bash
# Bad metadata (issue 8, part 3): on each member, flip a bit in or tear
# (zero after the first sector) each copy — label, slot A, slot B, the
# journal record. Then:
#   - `pool check` exits 1 and names the member and the copy;
#   - the pool opens from a good copy (`pool show` 0); a damaged label
#     makes its member unidentifiable: `pool show` reports it missing;
#   - `pool repair` rewrites the bad copy and `pool check` is clean again;
#     the newest good copies are byte-for-byte untouched by the repair
#     (a bad copy is never written over a good one), and a refused repair
#     writes nothing at all.
# Also: repair refuses while a handler holds the pool (exit 4) and, without
# --force, while a member is missing (exit 3).
. "$(dirname "$0")/lib.sh"
[ -x "$HELPER" ] || { echo "no helper at $HELPER" >&2; exit 1; }
CHELPER=$VLUN_BUILD_ROOT/tests/tools/vlunctl_check_helper
[ -x "$CHELPER" ] || { echo "no helper at $CHELPER" >&2; exit 1; }

P=$T/pool

setup() {
	rm -rf "$P"
	mkmembers "$P" 2 32M
	"$VLUNCTL" pool create p0 "$P/m0" "$P/m1" --meta-size 1M >/dev/null || exit 1
	"$VLUNCTL" vdisk create "$P" thin0 --size 8M --thin >/dev/null || exit 1
	# two thin writes + flushes in one open: checkpoint seq 3, then one
	# journal record (seq 4)
	"$CHELPER" journal "$P/m0" "$P/m1" -- thin0 || exit 1
}

# offset of copy NAME on member file PATH, from check --json
copy_off() {
	"$VLUNCTL" pool check "$P" --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
for m in d["members"]:
    if m["path"].endswith("/" + sys.argv[1]):
        for c in m["copies"]:
            if c["copy"] == sys.argv[2]:
                print(c["offset"])' "$1" "$2"
}

# "<offset of copy> <newest valid slot of mem> <newest valid slot of other>"
offsets() {
	"$VLUNCTL" pool check "$P" --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
def mem(name):
    return next(m for m in d["members"] if m["path"].endswith("/" + name))
def newest(m):
    return max((c for c in m["copies"] if c["copy"].startswith("slot") and c["state"] == "valid"),
               key=lambda c: c["seq"])["offset"]
m = mem(sys.argv[1])
off = next(c["offset"] for c in m["copies"] if c["copy"] == sys.argv[2])
print(off, newest(m), newest(mem(sys.argv[3])))' "$1" "$2" "$3"
}

damage() { # FILE OFFSET flip|tear
	python3 - "$@" <<'PY'
import sys
path, off, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "r+b") as f:
    if kind == "flip":
        f.seek(off + 100); b = f.read(1); f.seek(off + 100); f.write(bytes([b[0] ^ 0x10]))
    else: # torn after 128 bytes (the label is one 4 KiB block)
        f.seek(off + 128); f.write(bytes((4096 if off == 4096 else 16384) - 128))
PY
}

region() { dd if="$1" bs=4096 skip=$(($2 / 4096)) count=17 status=none | sha256sum | cut -d' ' -f1; }

setup
vc 0 pool check "$P"
out_has '^ok: every copy is valid and current'
out_has 'journal +valid +1 record\(s\) after checkpoint seq 3, up to seq 4 \(newest\)'
vc 0 pool check "$P" --json
json 'd["ok"] and d["seq"] == 4 and len(d["members"]) == 2 and d["problems"] == []'

for mem in m0 m1; do
	other=$([ $mem = m0 ] && echo m1 || echo m0)
	for copy in "slot A" "slot B" "journal" "label"; do
		for kind in flip tear; do
			setup
			read -r off good_self good_other < <(offsets $mem "$copy" $other)
			[ -n "$off" ] || { bad "no offset for $mem $copy"; continue; }
			damage "$P/$mem" "$off" $kind
			VC_MULTILINE=1 vc 1 pool check "$P"
			if [ "$copy" = label ]; then
				out_has "$mem:\$"
				out_has 'label +INVALID'
				# the member cannot be identified: show still works (a
				# degraded look), naming it missing on stderr
				"$VLUNCTL" pool show "$P" --json >"$T/out" 2>"$T/err"
				rc=$?
				if [ $rc = 0 ] && grep -q "missing" "$T/err" && grep -q "$mem" "$T/err" &&
				   grep -q '"missing"' "$T/out"; then ok; else bad "damaged label on $mem: show rc $rc"; fi
				cp "$P/$other" "$T/other.before"
				VC_MULTILINE=1 vc 3 pool repair "$P"
				if cmp -s "$P/$other" "$T/other.before"; then ok; else bad "a refused repair wrote to $other"; fi
				continue
			fi
			out_has "$mem .*"
			if grep -Eq "^  $copy +INVALID" "$T/out"; then ok; else bad "$copy on $mem ($kind) not reported INVALID"; fi
			vc 0 pool show "$P"
			out_has 'thin0'
			# bytes of the newest good copies before the repair
			h_other=$(region "$P/$other" "$good_other")
			if [ "$copy" != "slot A" ] && [ "$copy" != "slot B" ] || [ "$good_self" != "$off" ]; then
				h_self=$(region "$P/$mem" "$good_self")
			else
				h_self=""
			fi
			VC_MULTILINE=1 vc 0 pool repair "$P"
			out_has '^repaired pool'
			vc 0 pool check "$P"
			out_has '^ok: every copy is valid and current'
			if [ "$(region "$P/$other" "$good_other")" = "$h_other" ]; then ok; else bad "repair wrote over $other's newest good copy"; fi
			if [ -z "$h_self" ] || [ "$(region "$P/$mem" "$good_self")" = "$h_self" ]; then ok; else bad "repair wrote over $mem's newest good copy"; fi
			# the data survived
			n=$( { "$HELPER" read "$P" thin0 0 4096; "$HELPER" read "$P" thin0 1048576 4096; } | tr -d '\245' | wc -c)
			if [ "$n" = 0 ]; then ok; else bad "thin0 data changed after repair ($mem $copy $kind)"; fi
		done
	done
done

# both slots of every member bad: no copy to open from, the reason names the members
setup
for mem in m0 m1; do for copy in "slot A" "slot B"; do damage "$P/$mem" "$(copy_off $mem "$copy")" flip; done; done
VC_MULTILINE=1 vc 1 pool check "$P"
out_has 'NO valid metadata'
vc 1 pool show "$P"
err_has 'm0.*m1'
VC_MULTILINE=1 vc 1 pool repair "$P"
err_has 'Nothing valid to repair from'

# a missing member: repair needs --force
setup
damage "$P/m1" "$(copy_off m1 "slot A")" flip
mv "$P/m0" "$T/m0.away"
VC_MULTILINE=1 vc 1 pool check "$P"
out_has 'MISSING'
vc 3 pool repair "$P"
err_has 'members are missing'
VC_MULTILINE=1 vc 0 pool repair "$P" --force
mv "$T/m0.away" "$P/m0"

# held by a running handler: repair refuses, check still reads
setup
"$HELPER" hold "$T/ready" "$P" thin0 2>"$T/helper.err" &
holder=$!
bg_pids+=("$holder")
for _ in $(seq 100); do [ -e "$T/ready" ] && break; kill -0 "$holder" 2>/dev/null || break; sleep 0.1; done
[ -e "$T/ready" ] || { cat "$T/helper.err" >&2; echo "helper did not hold the pool" >&2; exit 1; }
vc 0 pool check "$P"
vc 4 pool repair "$P"
err_has 'held by a running handler'
kill "$holder"; wait "$holder" 2>/dev/null

finish
