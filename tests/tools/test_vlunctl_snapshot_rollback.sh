#!/usr/bin/env bash
# vlunctl snapshot rollback shows its progress like vlunctl migrate: lines
# "job N rollback 'src' from snapshot 's1': <state> <pct>%  <done> / <total>,
# <rate> MiB/s, ETA m:ss" whose done only grows and whose last one is
# "done 100.0%" with done = total = the bytes the session saved — when
# vlunctl holds the pool itself and when a holder rolls back (wait=0 over
# the control channel, its "jobs" polled); the holder's `vlunctl jobs`
# lists the finished rollback (text and JSON kind "rollback"). Afterwards
# the source reads as the snapshot's image.
. "$(dirname "$0")/lib.sh"
[ -x "$HELPER" ] || { echo "no helper at $HELPER" >&2; exit 1; }

P=$T/pool
MIB=1048576
mkmembers "$P" 2 128M
vc 0 pool create p0 "$P/m0" "$P/m1" --meta-size 4M
vc 0 vdisk create "$P" src --size 64M --linear
"$HELPER" write "$P" src 0 $((64 * MIB)) 3 || { echo "helper write failed" >&2; exit 1; }
"$HELPER" read "$P" src >"$T/ref0" || { echo "helper read failed" >&2; exit 1; }
vc 0 snapshot create "$P" src s1 --reserve 80M

same_content() {
	if "$HELPER" read "$P" "$1" >"$T/now" && cmp -s "$T/now" "$2"; then ok; else
		last="helper read $1"; bad "'$1' does not hold the expected data"; fi
}

# progress_ok TOTAL_MIB: the job lines of $T/out name the rollback, their
# done bytes only grow, the last says done 100.0% of TOTAL_MIB
progress_ok() {
	local why
	if why=$(python3 - "$T/out" "$1" <<'PY'
import re, sys
units = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
pat = re.compile(r"job (\d+) rollback 'src' from snapshot 's1': (\w+) +([0-9.]+)%  ([0-9.]+) (\w+) / ([0-9.]+) (\w+), "
                 r"[0-9.]+ MiB/s, ETA (\S+)")
rows = [m for m in map(pat.search, open(sys.argv[1]).read().replace("\r", "\n").splitlines()) if m]
if not rows:
    raise SystemExit("no progress line")
done = [float(m.group(4)) * units[m.group(5)] for m in rows]
if any(b < a for a, b in zip(done, done[1:])):
    raise SystemExit("done went back: %s" % done)
if len({m.group(1) for m in rows}) != 1:
    raise SystemExit("more than one job id")
last = rows[-1]
total = float(last.group(6)) * units[last.group(7)]
if (last.group(2), last.group(3), done[-1], total, last.group(8)) != ("done", "100.0", total, int(sys.argv[2]) << 20, "0:00"):
    raise SystemExit("last line: %s" % last.group(0))
print(len(rows))
PY
	); then ok; else bad "progress lines: $why"; fi
}

# ---- vlunctl holds the pool: the library's job, watched in this process
"$HELPER" write "$P" src 0 $((64 * MIB)) 5 || { echo "helper write failed" >&2; exit 1; }
vc 0 snapshot rollback "$P" src s1
out_has "^rolling vdisk 'src' back to snapshot 's1'$"
progress_ok 64
out_has "^rolled vdisk 'src' back to snapshot 's1' in [0-9.]+ s"
same_content src "$T/ref0"

# ---- a holder rolls back on a thread of its own; vlunctl polls its jobs
"$HELPER" write "$P" src $((8 * MIB)) $((24 * MIB)) 7 || { echo "helper write failed" >&2; exit 1; }
"$HELPER" hold "$T/ready" "$P" 2>"$T/helper.err" &
holder=$!
bg_pids+=("$holder")
for _ in $(seq 100); do [ -e "$T/ready" ] && break; kill -0 "$holder" 2>/dev/null || break; sleep 0.1; done
[ -e "$T/ready" ] || { cat "$T/helper.err" >&2; echo "helper did not hold the pool" >&2; exit 1; }
vc 0 snapshot rollback "$P" src s1
out_has "^rolling vdisk 'src' back to snapshot 's1' \(done by the running vlunctl_test_he, pid $holder\)$"
progress_ok 64
out_has "^rolled vdisk 'src' back to snapshot 's1' in [0-9.]+ s"
vc 0 jobs "$P"
out_has "rollback 'src' from snapshot 's1': done +100.0%"
vc 0 jobs "$P" --json
json 'any(j["kind"] == "rollback" and j["state"] == "done" and j["done_bytes"] == j["total_bytes"] == 64 << 20 for j in d["jobs"])'
vc 2 snapshot rollback "$P" src
kill "$holder"; wait "$holder" 2>/dev/null
same_content src "$T/ref0"
same_content src@s1 "$T/ref0"

finish
