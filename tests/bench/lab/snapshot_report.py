#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""snapshot_report.py — docs/bench/snapshots.md from a bench_snapshot lab run.

    snapshot_report.py --lab <results>/bench_snapshot [--out docs/bench] [--title T]

Reads fio-<backend>-<sessions>-<job>.json (backend vlun|dm, job
first|steady; tests/e2e/bench_snapshot.sh), writes snapshots.md (a table:
p50, p99 completion latency in microseconds and IOPS per backend, session
count and job, with each backend's ratio to its own 0-session run) and
snapshots-latency.png/.svg (p50 and p99 per session count; without
matplotlib the plot is skipped). The table is rewritten between the
markers <!-- bench:begin --> and <!-- bench:end --> when snapshots.md
already exists, so the prose around it stays.
"""
import argparse
import glob
import json
import os
import re
import sys

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
NAMES = {"vlun": "vlun (user:vlun, tcm_loop)", "dm": "dm-snapshot (kernel)"}


def load(d):
    runs = {}
    for f in sorted(glob.glob(os.path.join(d, "fio-*-*-*.json"))):
        m = re.match(r"fio-(vlun|dm)-(\d+)-(first|steady)\.json$", os.path.basename(f))
        if not m:
            continue
        try:
            j = json.load(open(f))
        except ValueError as e:
            print("snapshot_report.py: %s: %s (skipped)" % (f, e), file=sys.stderr)
            continue
        w = j["jobs"][0]["write"]
        pct = w.get("clat_ns", {}).get("percentile", {})
        p50 = pct.get("50.000000")
        p99 = pct.get("99.000000")
        runs[(m.group(1), int(m.group(2)), m.group(3))] = {
            "p50": p50 / 1000.0 if p50 else None,
            "p99": p99 / 1000.0 if p99 else None,
            "iops": w.get("iops", 0.0),
            "ios": w.get("total_ios", 0),
            "err": j["jobs"][0].get("error", 0),
        }
    return runs


def fmt(v, nd=0):
    return "-" if v is None else ("%.*f" % (nd, v))


def table(runs, conf):
    lines = [BEGIN, ""]
    if conf:
        lines += ["Run settings: " + ", ".join(conf), ""]
    for job, what in (("first", "first write of each 64 KiB chunk (every write copies when sessions > 0)"),
                      ("steady", "random 4 KiB writes, time based (mostly chunks already copied)")):
        lines += ["**%s** — %s, QD1:" % (job, what), "",
                  "| backend | sessions | p50 µs | p99 µs | IOPS | p50 vs 0 sessions | IOPS vs 0 sessions | writes |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for b in ("vlun", "dm"):
            base = runs.get((b, 0, job))
            for n in sorted({k[1] for k in runs if k[0] == b and k[2] == job}):
                r = runs[(b, n, job)]
                rp = "%.2fx" % (r["p50"] / base["p50"]) if base and base["p50"] and r["p50"] else "-"
                ri = "%.2fx" % (r["iops"] / base["iops"]) if base and base["iops"] else "-"
                lines.append("| %s | %d | %s | %s | %s | %s | %s | %d%s |" % (
                    NAMES[b], n, fmt(r["p50"]), fmt(r["p99"]), fmt(r["iops"]), rp, ri, r["ios"],
                    " (fio error %d)" % r["err"] if r["err"] else ""))
        lines.append("")
    lines += ["![source write latency per session count](snapshots-latency.png)", "", END]
    return "\n".join(lines)


def plot(runs, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("snapshot_report.py: no matplotlib: plot skipped", file=sys.stderr)
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, job in zip(axes, ("first", "steady")):
        for b, style in (("vlun", "o-"), ("dm", "s--")):
            ns = sorted({k[1] for k in runs if k[0] == b and k[2] == job})
            if not ns:
                continue
            for key, alpha in (("p50", 1.0), ("p99", 0.5)):
                ys = [runs[(b, n, job)][key] for n in ns]
                ax.plot(ns, ys, style, alpha=alpha, label="%s %s" % (b, key))
        ax.set_title("source 4 KiB writes, QD1: %s" % job)
        ax.set_xlabel("snapshot sessions")
        ax.set_ylabel("completion latency (µs)")
        ax.set_xticks([0, 1, 4])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(os.path.join(out, "snapshots-latency.%s" % ext), dpi=90)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lab", required=True)
    ap.add_argument("--out", default="docs/bench")
    ap.add_argument("--title", default="")
    a = ap.parse_args()
    runs = load(a.lab)
    if not runs:
        print("snapshot_report.py: no fio results in %s" % a.lab, file=sys.stderr)
        return 1
    conf = []
    cf = os.path.join(a.lab, "bench.conf")
    if os.path.exists(cf):
        conf = [l.strip() for l in open(cf) if l.strip()]
    if a.title:
        conf.insert(0, a.title)
    os.makedirs(a.out, exist_ok=True)
    md = os.path.join(a.out, "snapshots.md")
    tab = table(runs, conf)
    if os.path.exists(md) and BEGIN in open(md).read():
        text = open(md).read()
        text = text[:text.index(BEGIN)] + tab + text[text.index(END) + len(END):]
    else:
        text = "# Snapshot sessions: source write latency\n\n" + tab + "\n"
    open(md, "w").write(text)
    plot(runs, a.out)
    print("snapshot_report.py: wrote %s" % md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
