#!/usr/bin/env python3
"""power_cut_io.py — the writer and the checker of the power_cut scenario.

  power_cut_io.py write DEV LOG --run R --offset-mb O --region-mb N [--threads T] [--flush-every S]
  power_cut_io.py check DEV LOG --run R --offset-mb O --region-mb N --mode wce0|wce1

write: T threads write 64 KiB blocks (O_DIRECT) at random block numbers of
the region, each block owned by one thread, so a block has at most one
write in flight. Every 512-byte sector of a block is self-describing:
magic, sequence number of the write, block number, sector index, run, and
a filler derived from the sequence number. After a write completes, the
line "A <seq> <block>" is appended to LOG (one write(2) each: LOG lives on
the host's 9p share, so it survives the guest). A flusher thread takes the
number n of A lines so far, calls fsync(DEV) (a SYNCHRONIZE CACHE to the
LUN), and then appends "F <n>": the first n acknowledged writes are behind
a completed flush. It runs until the guest dies.

check: reads the region back (O_DIRECT, 1 MiB reads) and holds every
sector against LOG. Durable = every acknowledged write (wce0: write
through) or every write acknowledged before the last completed flush
(wce1). A sector passes when it is zero and its block needs nothing
durable, or when it is intact (magic, block, sector, run, filler) with a
sequence number at least the block's durable one that some write of this
run did carry (an acknowledged one, or one in flight at the cut: larger
than every logged one). Prints counts; exit 0 only if no sector fails and
every read succeeds.
"""
import argparse
import mmap
import os
import random
import struct
import sys
import threading
import time

SECTOR = 512
BLOCK = 64 * 1024
SPB = BLOCK // SECTOR
MAGIC = b"VLUNPC01"
HDR = struct.Struct("<8sQQII")   # magic, seq, block, sector, run
FILL = SECTOR - HDR.size


def filler(seq):
    return (struct.pack("<Q", (seq * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF) * (FILL // 8 + 1))[:FILL]


def block_data(seq, block, run):
    f = filler(seq)
    return b"".join(HDR.pack(MAGIC, seq, block, s, run) + f for s in range(SPB))


def cmd_write(a):
    fd = os.open(a.dev, os.O_RDWR | os.O_DIRECT)
    log = os.open(a.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    first = a.offset_mb * 1024 * 1024 // BLOCK
    nblocks = a.region_mb * 1024 * 1024 // BLOCK
    lock = threading.Lock()
    state = {"seq": 0, "acked": 0}

    def logline(s):
        os.write(log, s.encode())

    logline("S run=%d first_block=%d blocks=%d threads=%d pid=%d\n" %
            (a.run, first, nblocks, a.threads, os.getpid()))

    def writer(t):
        mine = [b for b in range(first, first + nblocks) if b % a.threads == t]
        rnd = random.Random(a.run * 1000 + t)
        buf = mmap.mmap(-1, BLOCK)
        while True:
            b = rnd.choice(mine)
            with lock:
                state["seq"] += 1
                seq = state["seq"]
            buf[:] = block_data(seq, b, a.run)
            try:
                n = os.pwrite(fd, buf, b * BLOCK)
                err = None if n == BLOCK else "short write %d" % n
            except OSError as e:
                err = "errno %d" % e.errno
            with lock:
                if err:
                    logline("E %d %d %s\n" % (seq, b, err))
                else:
                    state["acked"] += 1
                    logline("A %d %d\n" % (seq, b))

    def flusher():
        while True:
            time.sleep(a.flush_every)
            with lock:
                n = state["acked"]
            try:
                os.fsync(fd)
            except OSError as e:
                with lock:
                    logline("E flush errno %d\n" % e.errno)
                continue
            with lock:
                logline("F %d\n" % n)

    for t in range(a.threads):
        threading.Thread(target=writer, args=(t,), daemon=True).start()
    threading.Thread(target=flusher, daemon=True).start()
    while True:
        time.sleep(3600)


def parse_log(path):
    acks, flushed, errors, threads = [], 0, [], 64
    with open(path) as f:
        for line in f:
            p = line.split()
            if not p or not line.endswith("\n"):
                continue   # a line cut by the power cut
            if p[0] == "A":
                acks.append((int(p[1]), int(p[2])))
            elif p[0] == "F":
                flushed = max(flushed, int(p[1]))
            elif p[0] == "E":
                errors.append(line.strip())
            elif p[0] == "S":
                threads = int(dict(kv.split("=") for kv in p[1:])["threads"])
    return acks, flushed, errors, threads


def cmd_check(a):
    acks, flushed, errors, threads = parse_log(a.log)
    durable_acks = acks if a.mode == "wce0" else acks[:flushed]
    need = {}      # block -> durable seq
    for seq, b in durable_acks:
        need[b] = max(need.get(b, 0), seq)
    last = {}      # block -> last acknowledged seq
    carried = {}   # block -> seqs acknowledged
    for seq, b in acks:
        last[b] = max(last.get(b, 0), seq)
        carried.setdefault(b, set()).add(seq)
    # a seq no acknowledgement names was in flight at the cut: at most one
    # per writer thread, all issued after the last logged one of its thread
    max_logged = max((s for s, _ in acks), default=0)
    acked_any = set(s for s, _ in acks)

    first = a.offset_mb * 1024 * 1024 // BLOCK
    nblocks = a.region_mb * 1024 * 1024 // BLOCK
    fd = os.open(a.dev, os.O_RDONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, 1024 * 1024)
    zero = bytes(SECTOR)
    c = dict(blocks=nblocks, at_last_ack=0, newer_than_ack=0, older_than_last_ack=0,
             torn=0, never_acked_zero=0, acked_unflushed_zero=0, bad_sectors=0, unreadable=0)
    bad_examples = []
    off = first * BLOCK
    end = (first + nblocks) * BLOCK
    while off < end:
        try:
            n = os.preadv(fd, [buf], off)
        except OSError as e:
            c["unreadable"] += 1
            bad_examples.append("read at %d failed: errno %d" % (off, e.errno))
            off += len(buf)
            continue
        if n <= 0:
            c["unreadable"] += 1
            bad_examples.append("read at %d returned %d" % (off, n))
            off += len(buf)
            continue
        data = bytes(buf[:n])
        for bo in range(0, n - BLOCK + 1, BLOCK):
            b = (off + bo) // BLOCK
            seqs = set()
            for s in range(SPB):
                sec = data[bo + s * SECTOR: bo + (s + 1) * SECTOR]
                if sec == zero:
                    if b in need:
                        c["bad_sectors"] += 1
                        bad_examples.append("block %d sector %d: zero, but seq %d is durable" % (b, s, need[b]))
                    seqs.add(0)
                    continue
                magic, seq, blk, si, run = HDR.unpack(sec[:HDR.size])
                why = None
                if magic != MAGIC:
                    why = "no tag"
                elif blk != b or si != s or run != a.run:
                    why = "tag of block %d sector %d run %d" % (blk, si, run)
                elif sec[HDR.size:] != filler(seq):
                    why = "seq %d: filler does not match" % seq
                elif seq < need.get(b, 0):
                    why = "seq %d older than durable seq %d" % (seq, need[b])
                elif seq not in carried.get(b, ()) and (seq in acked_any or seq > max_logged + threads):
                    why = "seq %d was never written to this block" % seq
                if why:
                    c["bad_sectors"] += 1
                    if len(bad_examples) < 20:
                        bad_examples.append("block %d sector %d: %s" % (b, s, why))
                seqs.add(seq)
            if len(seqs) > 1:
                c["torn"] += 1
            top = max(seqs)
            if top == 0:
                if b not in last:
                    c["never_acked_zero"] += 1
                else:   # only unflushed writes (wce1), else bad above
                    c["acked_unflushed_zero"] += 1
            elif top == last.get(b, -1):
                c["at_last_ack"] += 1
            elif top > last.get(b, 0):
                c["newer_than_ack"] += 1
            else:
                c["older_than_last_ack"] += 1
        off += n
    print("mode %s run %d: %d acknowledged writes, %d behind the last completed flush, "
          "%d blocks must hold a durable write, %d logged errors" %
          (a.mode, a.run, len(acks), flushed, len(need), len(errors)))
    print(" ".join("%s=%d" % kv for kv in c.items()))
    for e in errors[:5]:
        print("logged: " + e)
    for e in bad_examples[:20]:
        print("BAD " + e)
    return 0 if c["bad_sectors"] == 0 and c["unreadable"] == 0 and len(need) > 0 else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["write", "check"])
    ap.add_argument("dev")
    ap.add_argument("log")
    ap.add_argument("--run", type=int, required=True)
    ap.add_argument("--offset-mb", type=int, default=0)
    ap.add_argument("--region-mb", type=int, required=True)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--flush-every", type=float, default=0.5)
    ap.add_argument("--mode", choices=["wce0", "wce1"], default="wce1")
    a = ap.parse_args()
    if a.cmd == "write":
        cmd_write(a)
        return 0
    return cmd_check(a)


if __name__ == "__main__":
    sys.exit(main())
