#!/usr/bin/env python3
"""Pyramid benchmark: tessera's same-pass pyramids against vips and GDAL,
same machine, same run.

Inputs: a 16384 x 16384 u8 tiled TIFF and an 8192 x 8192 RGB one (made
by `tessera generate`). For each, and each compression (none, deflate,
zstd), `gaussian sigma=2` is run as

- tessera, flat tiled BigTIFF (the baseline for the pyramid's cost);
- tessera --pyramid --layout ome (OME-TIFF, levels as SubIFDs);
- tessera --layout cog (Cloud-Optimized GeoTIFF);
- vips gaussblur 2 into tiffsave --tile --pyramid --subifd (same
  compression, 256 tiles), with gaussblur's default mask (min-ampl 0.2:
  radius 4 at sigma 2, half of tessera's taps) and with tessera's support
  (min-ampl exp(-8), scipy's truncate=4: radius 8);
- vips gaussblur 2 into a tiled TIFF, then gdal_translate -of COG (same
  compression), the two timed together: what a GDAL user runs today.

First, flat compressed output: tessera's default levels against
libtiff's (deflate 6, zstd 9) through --compression-level, and vips
tiffsave flat with the same compression, with sizes. Each command runs
once to warm the page cache, then --repeat times (vips and GDAL) or
--repeat-tessera times (tessera, whose runs take a second); the best time
counts. tessera's commands that a ratio compares (none, deflate and zstd;
flat, ome and cog) run in turns, A B C A B C ..., so a drift of the
machine's speed (it is shared) reaches all of them alike. Prints seconds
and the ratios (vips / tessera, GDAL / tessera, pyramid / flat). Then peak
memory (max RSS) of tessera --pyramid at 16384^2 and 32768^2, which should
be flat. Last, the pyramid's work over flat output counted rather than
timed: the user-space instructions of both on the u8 image, one thread,
under valgrind's cachegrind (no cache model), a figure this shared
machine's load does not move (the kernel's side of writing the bytes is
not in it), and the coder's part of each: its share of the flat job and
of the pyramid's extra, and what it would have to cost for the pyramid
to count 1.15 of flat. --count-only runs that part alone.

--coders runs the coders alone, one core, on the same tiles: tessera's
flat uncompressed output of the u8 image, its top-left 4096 x 4096 as
256 x 256 tiles after TIFF's horizontal predictor (what the coder of a
compressed tile is handed), through bench/coders.c: tessera's literals
and runs as deflate and zstd against ISA-L 1, libdeflate 1, zstd 3 and
zlib 6, every stream decoded back and compared before it counts.

usage: bench/bench_pyramid.py [--tessera build/tessera] [--dir DIR] [--repeat 2] [--repeat-tessera 5]
                              [--count-only | --coders]
"""
import argparse
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def best(cmds, repeat):
    """Best wall time of a list of commands run in sequence."""
    def once():
        t0 = time.perf_counter()
        for c in cmds:
            subprocess.run(c, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - t0
    once()
    return min(once() for _ in range(repeat))


def best_in_turns(cmds, repeat):
    """Best wall time of each command, the commands run in turns after one
    warm-up round."""
    def once(c):
        t0 = time.perf_counter()
        subprocess.run(c, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - t0
    for c in cmds:
        once(c)
    best = [math.inf] * len(cmds)
    for _ in range(repeat):
        for i, c in enumerate(cmds):
            best[i] = min(best[i], once(c))
    return best


def peak_kb(cmd):
    p = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True, check=True)
    return int(p.stderr.strip().splitlines()[-1])


# The coder's functions: tessera's literals and runs (deflate, and the run
# finder zstd's sequences come from). libzstd is stripped: cachegrind
# counts its entropy coder under "???", with code the uncompressed job
# runs too (other stripped code), which is taken off.
CODER = re.compile(r"(ts_deflate_runs|ts_find_runs|ts_zcompress_filtered|ts_zstd_filtered|sort_by_frequency|"
                   r"code_lengths)(\..*)?$")


def instructions(cmd):
    """User-space instructions cmd executes (cachegrind, no cache model):
    all of them, those in the coder's functions (CODER), and those in
    functions cachegrind cannot name."""
    with tempfile.NamedTemporaryFile(suffix=".cg") as f:
        subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={f.name}", *cmd],
                       capture_output=True, text=True, check=True)
        total = coder = unnamed = 0
        fn = ""
        for line in open(f.name):
            if line.startswith("fn="):
                fn = line[3:].strip()
            elif line[:1].isdigit():
                n = int(line.split()[1])
                total += n
                coder += n if CODER.match(fn) else 0
                unnamed += n if fn == "???" else 0
    return total, coder, unnamed


def counted(T, src, o):
    print("the pyramid's work over flat output, counted: user-space instructions (cachegrind), 16384^2 u8,\n"
          "gaussian sigma=2, one thread; billions, and the ratios")
    print(f"{'compression':<11} {'flat':>7} {'ome':>7} {'cog':>7} {'ome/flat':>9} {'cog/flat':>9}")
    split = []
    for comp in ("none", "deflate", "zstd"):
        run = lambda out, *x: instructions([T, "run", "-i", src, "-o", o(out), "-p", "gaussian sigma=2", "--compression",
                                            comp, "--threads", "1", "--force", "--quiet", *x])
        flat, ome, cog = run("flat.tif"), run("p.ome.tif", "--pyramid"), run("cog.tif", "--layout", "cog")
        print(f"{comp:<11} {flat[0] / 1e9:7.2f} {ome[0] / 1e9:7.2f} {cog[0] / 1e9:7.2f} {ome[0] / flat[0]:9.3f} "
              f"{cog[0] / flat[0]:9.3f}", flush=True)
        if comp == "none":
            base = flat[2], ome[2]  # unnamed code that is not a coder's
        else:
            coder = [j[1] + max(0, j[2] - b) for j, b in zip((flat, ome), base)]
            split.append((comp, flat[0], coder[0], ome[0], coder[1]))
    # ome / flat = (rest_ome + k coder_ome) / (rest_flat + k coder_flat) with
    # the coder k times its present instructions: the k at which it is 1.15
    print("\nthe coder's share: its instructions in the flat and the ome job (billions), its share of the flat job and\n"
          "of the pyramid's extra, and what the coder would have to cost, as a fraction of its present instructions\n"
          "(the rest unchanged), for ome/flat to be 1.15 (never: not even at no cost)")
    print(f"{'compression':<11} {'flat':>7} {'ome':>7} {'of flat':>8} {'of extra':>9} {'for 1.15':>9}")
    for comp, flat, fc, ome, oc in split:
        num, den = 1.15 * (flat - fc) - (ome - oc), oc - 1.15 * fc
        k = "never" if num <= 0 else f"{num / den:.2f}" if den > 0 else "any"
        print(f"{comp:<11} {fc / 1e9:7.2f} {oc / 1e9:7.2f} {fc / flat:8.0%} {(oc - fc) / (ome - flat):9.0%} {k:>9}",
              flush=True)


def coders(T, src, o, repeat):
    """bench/coders.c on the predicted tiles of tessera's flat output."""
    import numpy as np
    import tifffile
    exe, tiles, flat = o("coders"), o("tiles.bin"), o("coders-flat.tif")
    inc = os.path.join(HERE, "..", "src")
    subprocess.run(["cc", "-O3", "-I", inc, os.path.join(HERE, "coders.c"), os.path.join(inc, "core", "zstream.c"),
                    os.path.join(inc, "core", "runs.c"), "-lisal", "-ldeflate", "-lzstd", "-lz", "-o", exe], check=True)
    subprocess.run([T, "run", "-i", src, "-o", flat, "-p", "gaussian sigma=2", "--force", "--quiet"], check=True)
    img = tifffile.imread(flat)[:4096, :4096]
    with open(tiles, "wb") as f:
        for y in range(0, 4096, 256):
            for x in range(0, 4096, 256):
                t = img[y:y + 256, x:x + 256]
                f.write(np.diff(t, axis=1, prepend=np.zeros((256, 1), t.dtype)).tobytes())  # wraps, as TIFF's does
    print("the coders alone, one core: tessera's flat output of the u8 image, its top-left 4096^2 as 256^2 tiles\n"
          f"after TIFF's horizontal predictor (16 MiB), best of {repeat}; MB/s of input, and the output's size")
    subprocess.run([exe, tiles, str(256 * 256), str(repeat)], check=True)
    os.unlink(flat)
    os.unlink(tiles)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tessera", default=os.path.join(HERE, "..", "build", "tessera"))
    ap.add_argument("--dir", default=os.path.join(HERE, "..", "build", "bench"))
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--repeat-tessera", type=int, default=5)
    ap.add_argument("--count-only", action="store_true")
    ap.add_argument("--coders", action="store_true")
    a = ap.parse_args()
    for tool in ("vips", "gdal_translate", "valgrind"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} not found (run scripts/setup.sh)")
    os.makedirs(a.dir, exist_ok=True)
    T = a.tessera
    inputs = []
    for name, size, ch in [("u8", 16384, 1), ("rgb", 8192, 3)]:
        src = os.path.join(a.dir, f"pyr-{name}-{size}.tif")
        if not os.path.exists(src):
            subprocess.run([T, "generate", "-o", src, "--size", f"{size}x{size}", "--channels", str(ch), "--tile", "1024",
                            "--out-tile", "256", "--quiet"], check=True)
        inputs.append((f"{size}^2 {name}", src))
    o = lambda n: os.path.join(a.dir, n)
    mb = lambda n: os.path.getsize(o(n)) / 1e6
    if a.count_only:
        return counted(T, inputs[0][1], o)
    if a.coders:
        return coders(T, inputs[0][1], o, a.repeat_tessera)
    print("flat compressed output: tessera's defaults (literals and runs: deflate, zstd's coder), tessera at libtiff's\n"
          "defaults (deflate 6, zstd 9), vips tiffsave (flat, same compression); seconds and MB")
    print(f"{'input':<12} {'codec':<8} {'none':>6} {'tessera':>8} {'MB':>7} {'lvl 6/9':>8} {'MB':>7} {'vips':>6} {'MB':>7}"
          f" {'vips/t':>7} {'t/none':>7}")
    for label, src in inputs:
        tess = lambda out, *x: [T, "run", "-i", src, "-o", o(out), "-p", "gaussian sigma=2", "--force", "--quiet", *x]
        none, t_def, t_zstd = best_in_turns([tess("none.tif"), tess("deflate.tif", "--compression", "deflate"),
                                             tess("zstd.tif", "--compression", "zstd")], a.repeat_tessera)
        for comp, old in (("deflate", "6"), ("zstd", "9")):
            t = t_def if comp == "deflate" else t_zstd
            t_mb = mb(f"{comp}.tif")
            t_old = best([tess("old.tif", "--compression", comp, "--compression-level", old)], a.repeat)
            old_mb = mb("old.tif")
            v = best([["vips", "gaussblur", src, o("vflat.tif") + f"[tile,tile-width=256,tile-height=256,bigtiff,"
                       f"compression={comp}]", "2"]], a.repeat)
            print(f"{label:<12} {comp:<8} {none:6.2f} {t:8.2f} {t_mb:7.1f} {t_old:8.2f} {old_mb:7.1f} {v:6.2f}"
                  f" {mb('vflat.tif'):7.1f} {v / t:7.2f} {t / none:7.2f}", flush=True)
    print()
    print("pyramids: tessera flat, --pyramid --layout ome, --layout cog; vips tiffsave --pyramid --subifd with\n"
          "gaussblur's default mask (min-ampl 0.2: radius 4 at sigma 2) and with tessera's support (radius 8,\n"
          "min-ampl exp(-8), as scipy's truncate=4); vips blur + gdal_translate -of COG; seconds")
    print(f"{'input':<12} {'compression':<11} {'flat':>6} {'ome':>6} {'cog':>6} {'vips':>6} {'vips=':>6} {'gdal':>6}"
          f" {'vips/ome':>9} {'vips=/ome':>9} {'gdal/cog':>9} {'ome/flat':>9} {'cog/flat':>9}")
    for label, src in inputs:
        for comp in ("none", "deflate", "zstd"):
            tess = lambda out, *x: [T, "run", "-i", src, "-o", out, "-p", "gaussian sigma=2", "--compression", comp,
                                    "--force", "--quiet", *x]
            flat, ome, cog = best_in_turns([tess(o("flat.tif")), tess(o("p.ome.tif"), "--pyramid"),
                                            tess(o("cog.tif"), "--layout", "cog")], a.repeat_tessera)
            vc = {"none": "none", "deflate": "deflate", "zstd": "zstd"}[comp]
            vips = best([["vips", "gaussblur", src,
                          o("vips.tif") + f"[tile,tile-width=256,tile-height=256,pyramid,subifd,bigtiff,compression={vc}]",
                          "2"]], a.repeat)
            same = best([["vips", "gaussblur", src,
                          o("vips.tif") + f"[tile,tile-width=256,tile-height=256,pyramid,subifd,bigtiff,compression={vc}]",
                          "2", "--min-ampl", f"{math.exp(-8)}"]], a.repeat)
            gc = {"none": "NONE", "deflate": "DEFLATE", "zstd": "ZSTD"}[comp]
            for f in ("vips-flat.tif", "gdal-cog.tif"):
                if os.path.exists(o(f)):
                    os.unlink(o(f))
            gdal = best([["vips", "gaussblur", src, o("vips-flat.tif") + "[tile,tile-width=256,tile-height=256,bigtiff]",
                          "2"],
                         ["gdal_translate", "-q", "-of", "COG", "-co", f"COMPRESS={gc}", "-co", "BLOCKSIZE=256",
                          "-co", "BIGTIFF=YES", "-co", "NUM_THREADS=ALL_CPUS", o("vips-flat.tif"), o("gdal-cog.tif")]],
                        1)
            print(f"{label:<12} {comp:<11} {flat:6.2f} {ome:6.2f} {cog:6.2f} {vips:6.2f} {same:6.2f} {gdal:6.2f}"
                  f" {vips / ome:9.2f} {same / ome:9.2f} {gdal / cog:9.2f} {ome / flat:9.2f} {cog / flat:9.2f}",
                  flush=True)
    print("\npeak memory (max RSS) of tessera --pyramid --compression deflate:")
    for size in (16384, 32768):
        src = os.path.join(a.dir, f"pyr-mem-{size}.tif")
        if not os.path.exists(src):
            subprocess.run([T, "generate", "-o", src, "--size", f"{size}x{size}", "--tile", "1024", "--out-tile", "256",
                            "--quiet"], check=True)
        kb = peak_kb([T, "run", "-i", src, "-o", o("mem.ome.tif"), "-p", "gaussian sigma=2", "--pyramid",
                      "--compression", "deflate", "--force", "--quiet"])
        print(f"  {size}^2: {kb / 1024:.0f} MiB")
        os.unlink(src)
    print()
    counted(T, inputs[0][1], o)


if __name__ == "__main__":
    main()
