#!/usr/bin/env python3
"""4 KiB random-read probe for bench/run's mount phase.

  randread.py FILE [--n 2000] [--seed S] [--verify ORIGINAL]

Reads N blocks of 4 KiB with os.pread at deterministic pseudo-random
4 KiB-aligned offsets of FILE (same offsets on every run for the same file
size), timing only the preads.  Prints one line:

  <reads/s> <mean latency ms> <max latency ms> <verify>

where <verify> is "ok", "MISMATCH:<n>" (blocks that differ from ORIGINAL at the
same offsets; compared after the timed loop) or "-" without --verify.
"""
import argparse
import os
import random
import sys
import time

BLOCK = 4096


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0xC0FFE4)
    ap.add_argument("--verify")
    a = ap.parse_args()

    fd = os.open(a.file, os.O_RDONLY)
    size = os.fstat(fd).st_size
    blocks = size // BLOCK
    if blocks < 1:
        sys.exit("randread: %s is smaller than 4 KiB" % a.file)
    r = random.Random(a.seed)
    offsets = [r.randrange(blocks) * BLOCK for _ in range(a.n)]
    data = []
    lat = []
    clock = time.perf_counter
    t_all = clock()
    for off in offsets:
        t0 = clock()
        b = os.pread(fd, BLOCK, off)
        lat.append(clock() - t0)
        data.append(b)
    total = clock() - t_all
    os.close(fd)
    short = sum(1 for b in data if len(b) != BLOCK)

    verify = "-" if short == 0 else "SHORT:%d" % short
    if a.verify:
        bad = short
        with open(a.verify, "rb") as f:
            for off, b in zip(offsets, data):
                f.seek(off)
                if f.read(BLOCK) != b:
                    bad += 1
        verify = "ok" if bad == 0 else "MISMATCH:%d" % bad
    print("%.1f %.4f %.3f %s" % (a.n / total, 1000.0 * sum(lat) / len(lat),
                                 1000.0 * max(lat), verify))


if __name__ == "__main__":
    main()
