#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""tests/bench/lab/report.py — turn benchmark results into docs/bench/.

    report.py --out docs/bench [--lab DIR] [--micro FILE] [--title TEXT]

--lab DIR: the results of the lab scenario bench_fio (fio-<transport>-<backend>-
<job>-r<n>.json, cpu-...txt, bench.conf). --micro FILE: the lines printed by
the micro benchmarks (key=value, tab-separated; scripts/bench adds ir_per_op
from callgrind). Writes, in --out:
    lab-summary.tsv   one row per fio run (small; committed)
    lab.md            tables: every figure and its ratio to fileio in the same
                      repeat (median over repeats, [min-max] spread)
    ratio-<transport>.svg / .png   IOPS ratio to fileio per job and backend
    micro.md, micro-summary.tsv    the micro benchmarks
A lab.md/micro.md is only rewritten when its input is given. Without
matplotlib the plots are skipped (python3-matplotlib: scripts/bootstrap --lab).
"""
import argparse
import glob
import json
import os
import re
import statistics
import sys

JOBS = ["randread-4k-qd1", "randread-4k-qd32", "randwrite-4k-qd32", "randrw-64k-qd16",
        "seqread-1m-qd8", "seqwrite-1m-qd8"]
BACKENDS = ["fileio", "qcow", "linear", "thin", "thinft", "mirror"]
BACKEND_NAMES = {
    "fileio": "LIO fileio", "qcow": "user:qcow", "linear": "vlun linear",
    "thin": "vlun thin (allocated)", "thinft": "vlun thin (first touch)",
    "mirror": "vlun mirrored",
}
TRANSPORT_NAMES = {"iscsi": "iSCSI + multipath", "loop": "tcm_loop"}
# the targets of issue 7: IOPS ratio to fileio per transport and job
TARGETS = {
    "iscsi": {j: 0.90 for j in JOBS},
    "loop": {"randread-4k-qd32": 0.60, "randwrite-4k-qd32": 0.60, "seqread-1m-qd8": 0.60,
             "seqwrite-1m-qd8": 0.60, "randread-4k-qd1": 0.40},
}
RUN_RE = re.compile(r"fio-(iscsi|loop)-([a-z]+)-(.+)-r(\d+)\.json$")


def read_kv(path):
    d = {}
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if "=" in line:
                    k, v = line.split("=", 1)
                    d[k] = v
    except OSError:
        pass
    return d


def fio_figures(path):
    """IOPS, MB/s, p50, p99 and max total latency in us, error; None if unreadable."""
    try:
        with open(path) as f:
            text = f.read()
        # fio may print notes before the JSON
        d = json.loads(text[text.index("{"):])
        jb = d["jobs"][0]
    except (OSError, ValueError, KeyError, IndexError):
        return None
    rd, wr = jb["read"], jb["write"]
    main = rd if rd["io_bytes"] >= wr["io_bytes"] else wr
    pct = main.get("lat_ns", {}).get("percentile") or main.get("clat_ns", {}).get("percentile") or {}
    lmax = main.get("lat_ns", {}).get("max") or main.get("clat_ns", {}).get("max") or 0
    return {
        "iops": rd["iops"] + wr["iops"],
        "mbps": (rd["bw_bytes"] + wr["bw_bytes"]) / 1e6,
        "p50_us": pct.get("50.000000", 0) / 1e3,
        "p99_us": pct.get("99.000000", 0) / 1e3,
        # the slowest single command: a stall shows here even when p99 hides it
        "max_us": lmax / 1e3,
        "error": jb.get("error", 0),
    }


def load_lab(d):
    runs = []
    for path in sorted(glob.glob(os.path.join(d, "fio-*.json"))):
        m = RUN_RE.search(os.path.basename(path))
        if not m:
            continue
        tr, b, job, rep = m.group(1), m.group(2), m.group(3), int(m.group(4))
        fig = fio_figures(path)
        if fig is None:
            continue
        cpu = read_kv(os.path.join(d, "cpu-%s-%s-%s-r%d.txt" % (tr, b, job, rep)))
        fig.update({
            "transport": tr, "backend": b, "job": job, "rep": rep,
            "guest_busy_pct": float(cpu.get("guest_busy_pct", "nan")),
            "runner_cpu_pct": float(cpu.get("runner_cpu_pct", "nan")),
            "runner_top_thread": cpu.get("runner_top_thread", "-"),
            "runner_top_thread_pct": float(cpu.get("runner_top_thread_pct", "nan")),
        })
        runs.append(fig)
    return runs


def write_summary(runs, path):
    cols = ["transport", "backend", "job", "rep", "iops", "mbps", "p50_us", "p99_us", "max_us", "error",
            "guest_busy_pct", "runner_cpu_pct", "runner_top_thread", "runner_top_thread_pct"]
    with open(path, "w") as f:
        f.write("\t".join(cols) + "\n")
        for r in runs:
            f.write("\t".join(("%.1f" % r[c]) if isinstance(r[c], float) else str(r[c]) for c in cols) + "\n")


def index(runs):
    idx = {}
    for r in runs:
        idx[(r["transport"], r["backend"], r["job"], r["rep"])] = r
    return idx


def ratios(idx, tr, b, job, key):
    """per repeat: figure of b / figure of fileio in the same repeat"""
    out = []
    for (t, bb, j, rep), r in idx.items():
        if (t, bb, j) != (tr, b, job):
            continue
        ref = idx.get((tr, "fileio", job, rep))
        if ref and ref[key] and r[key] == r[key]:
            out.append(r[key] / ref[key])
    return out


def values(idx, tr, b, job, key):
    return [r[key] for (t, bb, j, _), r in idx.items() if (t, bb, j) == (tr, b, job) and r[key] == r[key]]


def fmt_spread(v, nd=2):
    if not v:
        return "–"
    med = statistics.median(v)
    if len(v) == 1:
        return ("%." + str(nd) + "f") % med
    return ("%." + str(nd) + "f [%." + str(nd) + "f–%." + str(nd) + "f]") % (med, min(v), max(v))


def fmt_num(v):
    if not v:
        return "–"
    m = statistics.median(v)
    return "%.0f" % m if m >= 100 else "%.1f" % m


def lab_tables(runs, conf, title):
    idx = index(runs)
    trs = [t for t in ("iscsi", "loop") if any(r["transport"] == t for r in runs)]
    bes = [b for b in BACKENDS if any(r["backend"] == b for r in runs)]
    jobs = [j for j in JOBS if any(r["job"] == j for r in runs)]
    reps = sorted({r["rep"] for r in runs})
    L = []
    p = L.append
    p("# Lab benchmark: %s" % title)
    p("")
    p("Generated by `scripts/bench` (tests/bench/lab/report.py) from the lab scenario "
      "`tests/e2e/bench_fio.sh`; one row per fio run is in [lab-summary.tsv](lab-summary.tsv).")
    p("")
    p("Settings: `%s`." % " ".join("%s=%s" % kv for kv in conf.items() if kv[0] in
                                     ("repeats", "runtime", "ramp", "region", "lun_size", "user_opts")))
    p("Repeats in this run: %d. %s" % (len(reps), conf.get("kernel", "")))
    p("")
    p("**Read this first.** The guest is TCG-emulated (no KVM) on a 2-core host that other jobs "
      "share; absolute figures mean nothing. Every figure is also given as a ratio to LIO fileio "
      "measured in the same repeat of the same boot (the backends take turns job by job), as "
      "`median [min–max]` over the repeats. The spread column shows how far one repeat can be "
      "from another; ratios move by ±0.1–0.15 between boots (LAB.md).")
    p("")
    for tr in trs:
        p("## %s" % TRANSPORT_NAMES[tr])
        p("")
        for key, label, better in (("iops", "IOPS", "higher"), ("mbps", "MB/s", "higher"),
                                   ("p50_us", "p50 total latency (µs)", "lower"),
                                   ("p99_us", "p99 total latency (µs)", "lower"),
                                   ("max_us", "slowest command (µs; a stall shows here)", "lower"),
                                   ("guest_busy_pct", "guest CPU busy (% of 2 vCPUs)", "lower")):
            p("### %s — ratio to fileio (%s is better)" % (label, better))
            p("")
            p("| job | " + " | ".join(BACKEND_NAMES[b] for b in bes) + " |")
            p("|---|" + "---|" * len(bes))
            for j in jobs:
                cells = []
                for b in bes:
                    v = values(idx, tr, b, j, key)
                    if not v:
                        cells.append("–")
                    elif b == "fileio":
                        cells.append("%s (1.00)" % fmt_num(v))
                    else:
                        cells.append("%s (%s)" % (fmt_num(v), fmt_spread(ratios(idx, tr, b, j, key))))
                p("| %s | %s |" % (j, " | ".join(cells)))
            p("")
        p("### tcmu-runner CPU (% of one vCPU; busiest thread in brackets)")
        p("")
        ubes = [b for b in bes if b != "fileio"]
        p("| job | " + " | ".join(BACKEND_NAMES[b] for b in ubes) + " |")
        p("|---|" + "---|" * len(ubes))
        for j in jobs:
            cells = []
            for b in ubes:
                v = values(idx, tr, b, j, "runner_cpu_pct")
                tv = values(idx, tr, b, j, "runner_top_thread_pct")
                names = sorted({r["runner_top_thread"] for (t, bb, jj, _), r in idx.items()
                                if (t, bb, jj) == (tr, b, j)})
                cells.append("–" if not v else "%s (%s %s)" % (fmt_num(v), "/".join(names), fmt_num(tv)))
            p("| %s | %s |" % (j, " | ".join(cells)))
        p("")
        if any(b in bes for b in ("linear", "thin", "thinft")):
            p("### Targets (IOPS ratio to fileio, median over repeats)")
            p("")
            p("| job | target | " + " | ".join(BACKEND_NAMES[b] for b in bes if b not in ("fileio",)) + " |")
            p("|---|---|" + "---|" * (len(bes) - 1))
            for j in jobs:
                t = TARGETS[tr].get(j)
                cells = []
                for b in bes:
                    if b == "fileio":
                        continue
                    v = ratios(idx, tr, b, j, "iops")
                    if not v:
                        cells.append("–")
                    elif t is None or b == "qcow":
                        cells.append("%.2f" % statistics.median(v))
                    else:
                        cells.append("%.2f %s" % (statistics.median(v),
                                                  "met" if statistics.median(v) >= t else "**missed**"))
                p("| %s | %s | %s |" % (j, "≥ %.2f" % t if t else "–", " | ".join(cells)))
            p("")
        p("![IOPS ratio to fileio over %s](ratio-%s.svg)" % (TRANSPORT_NAMES[tr], tr))
        p("")
    errs = [r for r in runs if r["error"]]
    if errs:
        p("fio reported errors in %d runs: %s" % (len(errs), ", ".join(
            "%s/%s/%s/r%d" % (r["transport"], r["backend"], r["job"], r["rep"]) for r in errs)))
        p("")
    return "\n".join(L) + "\n"


def plots(runs, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report.py: no matplotlib (apt-get install python3-matplotlib): plots skipped",
              file=sys.stderr)
        return
    idx = index(runs)
    for tr in ("iscsi", "loop"):
        if not any(r["transport"] == tr for r in runs):
            continue
        bes = [b for b in BACKENDS if b != "fileio" and any(r["backend"] == b for r in runs)]
        jobs = [j for j in JOBS if any(r["job"] == j and r["transport"] == tr for r in runs)]
        fig, ax = plt.subplots(figsize=(10, 4.5))
        w = 0.8 / max(1, len(bes))
        for k, b in enumerate(bes):
            xs, meds, lo, hi = [], [], [], []
            for i, j in enumerate(jobs):
                v = ratios(idx, tr, b, j, "iops")
                if not v:
                    continue
                m = statistics.median(v)
                xs.append(i + (k - (len(bes) - 1) / 2) * w)
                meds.append(m)
                lo.append(m - min(v))
                hi.append(max(v) - m)
            ax.bar(xs, meds, w, yerr=[lo, hi], capsize=2, label=BACKEND_NAMES[b])
        ax.axhline(1.0, color="black", linewidth=0.8)
        for j_i, j in enumerate(jobs):
            t = TARGETS[tr].get(j)
            if t:
                ax.hlines(t, j_i - 0.45, j_i + 0.45, colors="red", linestyles="dashed", linewidth=1)
        ax.set_xticks(range(len(jobs)))
        ax.set_xticklabels(jobs, rotation=15, fontsize=8)
        ax.set_ylabel("IOPS / fileio IOPS (same repeat)")
        ax.set_title("%s: IOPS ratio to LIO fileio (median, min–max bars; red: target)" % TRANSPORT_NAMES[tr])
        ax.legend(fontsize=8)
        fig.tight_layout()
        for ext in ("svg", "png"):
            fig.savefig(os.path.join(out, "ratio-%s.%s" % (tr, ext)), dpi=90)
        plt.close(fig)


def micro_report(path, out):
    rows = []
    with open(path) as f:
        for line in f:
            if not line.startswith("bench="):
                continue
            rows.append(dict(kv.split("=", 1) for kv in line.strip().split("\t") if "=" in kv))
    keys = ["bench", "mode", "op", "extents", "io_bytes", "chunk_bytes", "ops", "ns_per_op",
            "cpu_ns_per_op", "overhead_ns_per_op", "overhead_cpu_ns_per_op", "ir_per_op", "io_backend"]
    with open(os.path.join(out, "micro-summary.tsv"), "w") as f:
        f.write("\t".join(keys) + "\n")
        for r in rows:
            f.write("\t".join(r.get(k, "") for k in keys) + "\n")
    L = ["# Micro benchmarks (native, no kernel)", "",
         "Generated by `scripts/bench --micro` from tests/bench/micro; raw lines in "
         "[micro-summary.tsv](micro-summary.tsv). `ns/op` is wall time, `CPU ns/op` the CPU time "
         "of all the process's threads per operation, `Ir/op` callgrind's instruction count per "
         "operation (difference of two runs of N and 2N operations, so set-up cancels; stable "
         "on a noisy machine, unlike the times).", ""]
    L += ["| benchmark | case | ns/op | CPU ns/op | overhead vs raw (wall / CPU) | Ir/op |",
          "|---|---|---|---|---|---|"]
    for r in rows:
        case = " ".join(x for x in (
            r.get("mode", ""), r.get("op", ""),
            ("%s extents" % r["extents"]) if "extents" in r else "",
            ("%s B" % r["io_bytes"]) if "io_bytes" in r else "",
            ("chunk %s B" % r["chunk_bytes"]) if "chunk_bytes" in r else "",
            ("io %s" % r["io_backend"]) if "io_backend" in r else "") if x)
        ov = ""
        if "overhead_ns_per_op" in r:
            ov = "%s / %s" % (r["overhead_ns_per_op"], r["overhead_cpu_ns_per_op"])
        L.append("| %s | %s | %s | %s | %s | %s |" % (r["bench"], case, r.get("ns_per_op", ""),
                                                    r.get("cpu_ns_per_op", ""), ov, r.get("ir_per_op", "–")))
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--lab")
    ap.add_argument("--micro")
    ap.add_argument("--title", default="")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.lab:
        runs = load_lab(a.lab)
        if not runs:
            print("report.py: no fio results in %s" % a.lab, file=sys.stderr)
            return 1
        conf = {}
        for line in open(os.path.join(a.lab, "bench.conf")) if os.path.exists(os.path.join(a.lab, "bench.conf")) else []:
            for kv in line.split():
                if "=" in kv:
                    k, v = kv.split("=", 1)
                    conf[k] = v
            if line.startswith("user_opts="):
                conf["user_opts"] = line.strip().split("=", 1)[1]
        write_summary(runs, os.path.join(a.out, "lab-summary.tsv"))
        with open(os.path.join(a.out, "lab.md"), "w") as f:
            f.write(lab_tables(runs, conf, a.title or "fio side by side"))
        plots(runs, a.out)
        print("report.py: %d fio runs -> %s/lab.md" % (len(runs), a.out))
    if a.micro:
        with open(os.path.join(a.out, "micro.md"), "w") as f:
            f.write(micro_report(a.micro, a.out))
        print("report.py: micro -> %s/micro.md" % a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
