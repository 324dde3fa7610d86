#!/usr/bin/env python3
"""Tile-mode benchmark: tessera against vips on the same machine, same run.

A deterministic 16384 x 16384 u8 tiled TIFF (256x256 tiles, uncompressed)
goes through gaussian sigma=2, median 3x3 and sobel with each tool; output
is a tiled (256) uncompressed BigTIFF for both. Each command runs once to
warm the page cache, then `--repeat` times; the best time counts. Prints
MPix/s for both and the ratio tessera / vips.

vips' gaussblur stops its mask where the Gaussian falls below min-ampl 0.2
(radius 4 at sigma 2); tessera uses scipy's truncate=4 (radius 8, twice the
taps). Both are reported: vips' default, and vips with the same support as
tessera (min-ampl = exp(-8)).

Writes the figures as a plot too (--plot, default docs/bench/tile.png).

usage: bench/bench_tile.py [--tessera build/tessera] [--dir DIR] [--repeat 3] [--plot PNG]
"""
import argparse
import math
import os
import shutil
import subprocess
import sys
import time

from plot import bars

HERE = os.path.dirname(os.path.abspath(__file__))
SIDE = 16384


def best_time(cmd, repeat):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tessera", default=os.path.join(os.path.dirname(__file__), "..", "build", "tessera"))
    ap.add_argument("--dir", default=os.path.join(os.path.dirname(__file__), "..", "build", "bench"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--plot", default=os.path.join(HERE, "..", "docs", "bench", "tile.png"))
    a = ap.parse_args()
    if not shutil.which("vips"):
        sys.exit("bench: vips not found (apt-get install libvips-tools, or run scripts/setup.sh)")
    os.makedirs(a.dir, exist_ok=True)
    src = os.path.join(a.dir, "bench-16k-u8.tif")
    if not os.path.exists(src):
        subprocess.run([a.tessera, "generate", "-o", src, "--size", f"{SIDE}x{SIDE}", "--tile", "1024",
                        "--out-tile", "256", "--quiet"], check=True)
    out_t = os.path.join(a.dir, "out-tessera.tif")
    out_v = os.path.join(a.dir, "out-vips.tif")
    vips_out = out_v + "[tile,tile-width=256,tile-height=256,bigtiff,compression=none]"
    tess = lambda p: [a.tessera, "run", "-i", src, "-o", out_t, "-p", p, "--tile", "1024", "--force", "--quiet"]
    cases = [
        ("gaussian sigma=2 (vips default min-ampl 0.2)", tess("gaussian sigma=2"),
         ["vips", "gaussblur", src, vips_out, "2"]),
        ("gaussian sigma=2 (vips with tessera's support)", tess("gaussian sigma=2"),
         ["vips", "gaussblur", src, vips_out, "2", f"--min-ampl={math.exp(-8):.6g}"]),
        ("median 3x3 (vips rank 3 3 4)", tess("median size=3"), ["vips", "rank", src, vips_out, "3", "3", "4"]),
        ("sobel", tess("sobel"), ["vips", "sobel", src, vips_out]),
    ]
    mpix = SIDE * SIDE / 1e6
    ver = subprocess.run(["vips", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"# {SIDE}x{SIDE} u8, {os.cpu_count()} cores, best of {a.repeat}; {ver}")
    print("| operation | tessera MPix/s | vips MPix/s | tessera / vips |")
    print("|---|---:|---:|---:|")
    panels = []
    for name, tcmd, vcmd in cases:
        tt = best_time(tcmd, a.repeat)
        tv = best_time(vcmd, a.repeat)
        print(f"| {name} | {mpix / tt:.0f} | {mpix / tv:.0f} | {tv / tt:.2f}x |", flush=True)
        panels.append((name, "MPix/s (more is better)", [("tessera", mpix / tt), ("vips", mpix / tv)]))
    bars(a.plot, f"Tile mode, {SIDE}x{SIDE} u8, {os.cpu_count()} cores: tessera and {ver}", panels)
    for f in (out_t, out_v):
        if os.path.exists(f):
            os.unlink(f)


if __name__ == "__main__":
    main()
