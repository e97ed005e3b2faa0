#!/usr/bin/env bash
# vlunctl stats: the I/O statistics live in the process holding the pool and
# are read over its control channel. Not held: exit 3 saying so; held without
# a channel: exit 4. Held by a process doing I/O: the table, --json (parsed
# here) and --prometheus (every line checked against the text format) show
# the I/O it did on the members and the open vdisks; --vdisk filters;
# --interval gives rates; option mistakes are usage errors (exit 2).
#
# The nonzero counts depend on the fast path publishing into the counters
# (lib/vdisk.c calling vlun_iostat_begin/end).
. "$(dirname "$0")/lib.sh"
[ -x "$HELPER" ] || { echo "no helper at $HELPER" >&2; exit 1; }

P=$T/pool
mkmembers "$P" 2 64M
vc 0 pool create p0 "$P/m0" "$P/m1" --meta-size 4M
vc 0 vdisk create "$P" lin0 --size 8M --linear
vc 0 vdisk create "$P" idle0 --size 1M --linear

wait_ready() {
	for _ in $(seq 100); do [ -e "$1" ] && break; kill -0 "$2" 2>/dev/null || break; sleep 0.1; done
	[ -e "$1" ] || { cat "$T/helper.err" >&2; echo "helper did not hold the pool" >&2; exit 1; }
}
# py SCRIPT: python3 over $T/out (as text in s), must print nothing and exit 0
py() {
	local why
	if why=$(python3 - "$T/out" 2>&1 <<PY
import json, re, sys
s = open(sys.argv[1]).read()
$1
PY
	); [ -z "$why" ]; then ok; else bad "python check: $why"; fi
}

# nobody holds the pool: statistics exist only in a holder
vc 3 stats "$P"
err_has "^vlunctl: cannot read statistics of pool 'p0': no running process holds it\. Statistics exist only in the process holding the pool"
vc 3 stats "$P" --json
out_empty

# option mistakes
vc 2 stats "$P" --json --prometheus
vc 2 stats "$P" --count 3
vc 2 stats "$P" --interval 0
vc 2 stats "$P" --interval 1x
vc 2 stats "$P" --interval 1 --count 0
vc 2 stats "$P" --interval 1 --prometheus
vc 2 pool show "$P" --prometheus
vc 3 stats "$P" --vdisk nosuch
err_has "vdisk 'nosuch' in pool 'p0': no such vdisk"
vc 2 stats
err_has "^vlunctl: stats: no pool given"

# a holder without a control channel: exit 4
"$HELPER" lock "$T/ready0" "$P/m0" "$P/m1" 2>"$T/helper.err" &
locker=$!
bg_pids+=("$locker")
wait_ready "$T/ready0" "$locker"
vc 4 stats "$P"
err_has "^vlunctl: cannot read statistics of pool 'p0': the process holding it( \(pid $locker\))? does not answer on its control channel"
kill "$locker"
wait "$locker" 2>/dev/null
bg_pids=()

# a holder doing I/O on lin0 (32 writes, 32 reads, a flush, then more),
# idle0 open without I/O
"$HELPER" busy "$T/ready" "$P" lin0 idle0 2>"$T/helper.err" &
holder=$!
bg_pids+=("$holder")
wait_ready "$T/ready" "$holder"

vc 0 stats "$P"
out_has "^Pool p0 \([0-9a-f-]{36}\), held by pid $holder, counting for "
out_has "^OBJECT +STATE +READS +WRITES .* P99\.9 +PATH$"
out_has "^member 0 +ok +[0-9]+ .* $P/m0$"
out_has "^member 1 +ok "
out_has "^vdisk lin0 +open +[1-9][0-9]* +[1-9][0-9]* +[1-9]"
out_has "^vdisk idle0 +open +0 +0 +0 "

vc 0 stats "$P" --json
json 'd["pool"] == "p0" and d["holder_pid"] == '"$holder"' and d["time_ns"] > 0 and d["uptime_ns"] > 0'
json '[(m["index"], m["path"], m["state"]) for m in d["members"]] == [(0, "'"$P/m0"'", "ok"), (1, "'"$P/m1"'", "ok")]'
json 'sorted(v["name"] for v in d["vdisks"]) == ["idle0", "lin0"]'
# lin0: what the helper did, at least
json '[v for v in d["vdisks"] if v["name"] == "lin0" and v["reads"] >= 32 and v["writes"] >= 32 and v["others"] >= 1 and v["read_bytes"] >= 32 * 4096 and v["write_bytes"] >= 32 * 4096 and v["errors"] == 0 and v["max_outstanding"] >= 1]'
json 'all(0 < v["latency_ns"]["p50"] <= v["latency_ns"]["p90"] <= v["latency_ns"]["p99"] <= v["latency_ns"]["p999"] <= v["latency_ns"]["max"] and v["latency_ns"]["recent"] > 0 and v["latency_ns"]["count"] >= v["reads"] + v["writes"] + v["others"] - v["outstanding"] - 2 for v in d["vdisks"] if v["name"] == "lin0")'
json 'all(v["reads"] == v["writes"] == v["others"] == v["latency_ns"]["count"] == 0 for v in d["vdisks"] if v["name"] == "idle0")'
# the members saw lin0's data I/O
json 'sum(m["writes"] for m in d["members"]) >= 32 and sum(m["read_bytes"] for m in d["members"]) >= 32 * 4096'
json 'all(m["errors"] == 0 and m["outstanding"] <= m["max_outstanding"] for m in d["members"])'

# --vdisk: that vdisk only
vc 0 stats "$P" --vdisk lin0 --json
json 'd["members"] == [] and [v["name"] for v in d["vdisks"]] == ["lin0"]'
vc 0 vdisk create "$P" closed0 --size 1M --linear
vc 3 stats "$P" --vdisk closed0
err_has "vdisk 'closed0' in pool 'p0': the process holding the pool does not have it open"

# --interval: rates over the interval, one JSON document per line
vc 0 stats "$P" --interval 0.3 --count 2 --json
py '
lines = s.splitlines()
if len(lines) != 2: print("%d reports, expected 2" % len(lines))
for l in lines:
    d = json.loads(l)
    if not 0.25 < d["interval_s"] < 2: print("interval_s", d["interval_s"])
    v = [v for v in d["vdisks"] if v["name"] == "lin0"][0]
    if not (v["rates"]["write_iops"] > 0 and v["rates"]["read_iops"] > 0): print("lin0 rates", v["rates"])
    if not v["rates"]["write_bytes_per_s"] >= 4096 * v["rates"]["write_iops"] * 0.99: print("bytes/s", v["rates"])
    if v["interval_latency_ns"]["count"] < 1 or v["interval_latency_ns"]["p99"] <= 0: print("interval latency", v["interval_latency_ns"])
    i = [v for v in d["vdisks"] if v["name"] == "idle0"][0]
    if i["rates"]["read_iops"] != 0 or i["rates"]["write_iops"] != 0: print("idle0 rates", i["rates"])
'
vc 0 stats "$P" --interval 0.2 --count 1
out_has "^OBJECT +STATE +R/S +W/S +O/S +RMB/S +WMB/S "
out_has "^vdisk lin0 +open +[0-9.]+ +[1-9][0-9]*\.[0-9] "

# Prometheus text exposition format
vc 0 stats "$P" --prometheus
py '
fam = {}; seen = {}
sample = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\",?)*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$")
for l in s.splitlines():
    m = re.match(r"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$", l)
    if m:
        if m.group(1) == "TYPE":
            if m.group(3) not in ("counter", "gauge", "summary"): print("type", l)
            if m.group(2) in fam: print("family twice", l)
            fam[m.group(2)] = m.group(3)
        continue
    m = sample.match(l)
    if not m: print("bad line:", l); continue
    name = m.group(1); base = re.sub(r"_(sum|count)$", "", name)
    f = name if name in fam else base if fam.get(base) == "summary" else None
    if f is None: print("sample before its TYPE:", l); continue
    if f != list(fam)[-1]: print("family not contiguous:", l)
    seen[l.rsplit(" ", 1)[0]] = float(l.rsplit(" ", 1)[1])
def v(k):
    if k not in seen: print("missing", k); return 0
    return seen[k]
for t in ("vlun_vdisk_ops_total", "vlun_vdisk_bytes_total", "vlun_member_ops_total", "vlun_member_errors_total", "vlun_vdisk_faults_total"):
    if fam.get(t) != "counter": print(t, fam.get(t))
for t in ("vlun_vdisk_outstanding", "vlun_member_outstanding", "vlun_member_outstanding_max", "vlun_pool_uptime_seconds", "vlun_member_up"):
    if fam.get(t) != "gauge": print(t, fam.get(t))
for t in ("vlun_vdisk_latency_seconds", "vlun_member_latency_seconds"):
    if fam.get(t) != "summary": print(t, fam.get(t))
L = "pool=\"p0\",vdisk=\"lin0\""
if v("vlun_vdisk_ops_total{%s,op=\"read\"}" % L) < 32: print("lin0 reads")
if v("vlun_vdisk_ops_total{%s,op=\"write\"}" % L) < 32: print("lin0 writes")
if v("vlun_vdisk_bytes_total{%s,op=\"write\"}" % L) < 32 * 4096: print("lin0 bytes")
if v("vlun_vdisk_ops_total{pool=\"p0\",vdisk=\"idle0\",op=\"read\"}") != 0: print("idle0 reads")
q = [v("vlun_vdisk_latency_seconds{%s,quantile=\"%s\"}" % (L, x)) for x in ("0.5", "0.9", "0.99", "0.999")]
if not (0 < q[0] <= q[1] <= q[2] <= q[3] < 10): print("quantiles", q)
if v("vlun_vdisk_latency_seconds_count{%s}" % L) < 65: print("latency count")
if v("vlun_vdisk_latency_seconds_sum{%s}" % L) <= 0: print("latency sum")
M = "pool=\"p0\",member=\"0\",path=\"'"$P"'/m0\""
v("vlun_member_latency_seconds{%s,quantile=\"0.99\"}" % M)
if v("vlun_member_up{%s,state=\"ok\"}" % M) != 1: print("member up")
'
vc 0 stats "$P" --prometheus --vdisk lin0
out_lacks '^vlun_member_'
out_has '^vlun_vdisk_ops_total\{pool="p0",vdisk="lin0",op="write"\} [1-9]'

# the holder goes away: exit 3 again
kill "$holder"
wait "$holder"
hrc=$?
bg_pids=()
if [ "$hrc" = 0 ]; then ok; else bad "the busy helper's I/O failed (exit $hrc): $(cat "$T/helper.err")"; fi
vc 3 stats "$P" --prometheus
out_empty

finish
