#!/usr/bin/python3
"""List-mode benchmarks against the Python tools people use today, all run
on this machine in this run (wall clock, inputs and outputs on tmpfs, best
of --repeat):

1. Otsu table: N RGB PNGs of 512 x 512 -> grayscale -> Otsu threshold ->
   an HDF5 table of (name, threshold). tessera (one process, 2 threads)
   against a Python loop, joblib Parallel(n_jobs=2) with the loky and
   threading backends and ProcessPoolExecutor(2), each doing cv2.imread +
   cv2.cvtColor + cv2.threshold(OTSU) and writing the table with h5py; and
   reading and decoding the same PNGs with libpng alone on 2 threads
   (bench/png_floor.c: the floor while tessera decoded with libpng; its
   own decoder for common PNGs inflates through ISA-L).
2. The Bengali preprocessing (jobs/bengali.ini) on an N x 137 x 236 u8
   HDF5 stack, against the original numpy + cv2 code per image in
   multiprocessing.Pool(2), writing the same N x 128 x 128 stack (one
   deflate chunk per image) with h5py; and the codec floor: inflating
   every input chunk and deflating every output image with tessera's
   codec (ISA-L inflates, libdeflate deflates) on 2 threads, nothing else
   (bench/chunk_floor.c).
3. The same Otsu job with the images kept (an HDF5 stack beside the
   table), on --count RGB PNGs of 463 x 384: one process with 2 threads
   against `mpirun -np 2 --threads 1` and `mpirun -np 2` with no --threads
   (each rank then takes the node's cores / 2). Job times from --stats
   (without mpirun's start-up, as bench_mpi.py), and wall clock.
4. The folder blend (jobs/blend-folder.ini's pipeline): --blend RGB PNGs
   of 500 x 500 blended with a fixed image into a directory of PNGs,
   against joblib Parallel(n_jobs=2, loky) doing cv2.imread +
   cv2.addWeighted + cv2.imwrite; then every tessera output, decoded by
   cv2, against cv2's own result (the pixels, and the files' sizes).

Writes the figures as a plot too (--plot, default docs/bench/list.png).

usage: bench/bench_list.py [--tessera build/tessera] [--count 2000]
                           [--bengali 50000] [--blend 600] [--repeat 3]
                           [--only otsu,bengali,mpi,blend] [--plot PNG]
"""
import argparse
import concurrent.futures
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time

import cv2
import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "jobs"))
import bengali_original as bengali  # noqa: E402
import make_list_inputs as demo  # noqa: E402
from plot import bars  # noqa: E402

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


# ---- 1. Otsu table ---------------------------------------------------------------

def otsu_one(path):
    img = cv2.imread(path)
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    t, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return t


def write_table(out, names, values):
    with h5py.File(out, "w") as f:
        f["names"] = np.array(names, dtype=h5py.string_dtype())
        f["results/otsu"] = np.asarray(values, np.float64)


def otsu_loop(paths, out):
    write_table(out, [os.path.basename(p) for p in paths], [otsu_one(p) for p in paths])


def otsu_joblib(paths, out, backend):
    from joblib import Parallel, delayed
    v = Parallel(n_jobs=2, backend=backend)(delayed(otsu_one)(p) for p in paths)
    write_table(out, [os.path.basename(p) for p in paths], v)


def otsu_executor(paths, out):
    with concurrent.futures.ProcessPoolExecutor(2) as ex:
        v = list(ex.map(otsu_one, paths, chunksize=16))
    write_table(out, [os.path.basename(p) for p in paths], v)


# ---- 2. Bengali ------------------------------------------------------------------

HEIGHT, WIDTH, SIZE = 137, 236, 128


def bengali_pool(src, out):
    with h5py.File(src, "r") as f:
        stack = f["images"][()]
    with multiprocessing.Pool(2) as pool:
        res = pool.map(bengali.preprocess, stack, chunksize=256)
    with h5py.File(out, "w") as f:
        f.create_dataset("images", data=np.stack(res), chunks=(1, SIZE, SIZE), compression="gzip")


def write_records(src, out, d):
    """The stored input chunks and tessera's output images, for chunk_floor."""
    import struct
    with h5py.File(src, "r") as f, open(f"{d}/chunks.bin", "wb") as c:
        ds = f["images"]
        for i in range(ds.shape[0]):
            _, b = ds.id.read_direct_chunk((i, 0, 0))
            c.write(struct.pack("<II", len(b), HEIGHT * WIDTH) + b)
    with h5py.File(out, "r") as f, open(f"{d}/raw.bin", "wb") as r:
        for img in f["images"]:
            r.write(struct.pack("<I", img.nbytes) + img.tobytes())


# ---- driver ----------------------------------------------------------------------

def best(fn, repeat):
    """Best wall time of fn(), or of what fn() returns when it measures itself."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        own = fn()
        times.append(own if isinstance(own, float) else time.perf_counter() - t0)
    return min(times)


def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=ENV)


def job_seconds(cmd, stats):
    """Wall clock of the command, and tessera's own time of the job (--stats)."""
    t0 = time.perf_counter()
    run([*cmd, "--stats", stats])
    import json
    return time.perf_counter() - t0, json.load(open(stats))["seconds"]


# ---- 4. blend ------------------------------------------------------------------

def blend_joblib(src, fixed_path, out, ext=".png"):
    import cv2 as cv
    from joblib import Parallel, delayed
    os.makedirs(out, exist_ok=True)
    fixed = cv.imread(fixed_path)

    def one(name):
        img = cv.addWeighted(cv.imread(os.path.join(src, name)), 0.7, fixed, 0.3, 0)
        cv.imwrite(os.path.join(out, os.path.splitext(name)[0] + ext), img)
    Parallel(n_jobs=2, backend="loky")(delayed(one)(n) for n in sorted(os.listdir(src)))


def same_pixels(a_dir, b_dir):
    """Max difference and the share of equal samples, decoding both with cv2."""
    worst, equal, total, sizes = 0, 0, 0, [0, 0]
    for n in sorted(os.listdir(a_dir)):
        a = cv2.imread(os.path.join(a_dir, n), cv2.IMREAD_UNCHANGED).astype(int)
        b = cv2.imread(os.path.join(b_dir, n), cv2.IMREAD_UNCHANGED).astype(int)
        d = np.abs(a - b)
        worst, equal, total = max(worst, int(d.max())), equal + int((d == 0).sum()), total + d.size
        sizes[0] += os.path.getsize(os.path.join(a_dir, n))
        sizes[1] += os.path.getsize(os.path.join(b_dir, n))
    return worst, equal / total, sizes


def timed_table(rows, repeat, count, ratio):
    """Each row's best time as a markdown line; ratio(name, seconds, the
    first row's) is the last column. A row's optional third item runs
    first, untimed. Returns [(name, seconds)] for the plot."""
    print("| tool | seconds | images/s | tessera's speed-up |")
    print("|---|---:|---:|---:|")
    base, out = None, []
    for name, fn, *before in rows:
        for b in before:
            b()
        s = best(fn, repeat)
        base = base or s
        print(f"| {name} | {s:.2f} | {count / s:.0f} | {ratio(name, s, base)} |", flush=True)
        out.append((name, s))
    return out


def otsu_section(a, t, d, panels):
    floor = os.path.join(d, "png_floor")
    subprocess.run(["cc", "-O2", "-fopenmp", os.path.join(HERE, "png_floor.c"), "-lpng", "-o", floor], check=True)
    rng = np.random.default_rng(7)
    os.makedirs(f"{d}/pngs")
    paths = []
    for i in range(a.count):
        p = f"{d}/pngs/img{i:05d}.png"
        cv2.imwrite(p, demo.rgb(rng, 512, 512, i))
        paths.append(p)
    with open(f"{d}/list.txt", "w") as f:
        f.write("\n".join(paths) + "\n")
    out = f"{d}/out.h5"
    print(f"\n## Otsu table: {a.count} RGB PNGs of 512 x 512\n")
    rows = [
        ("tessera, 1 process, --threads 2",
         lambda: run([t, "run", "--input", f"{d}/pngs", "--output", out, "--pipeline", "grayscale | otsu",
                      "--images", "false", "--threads", "2", "--force", "--quiet"])),
        ("libpng decode only, 2 threads", lambda: run([floor, f"{d}/list.txt", "2"])),
        ("Python loop (cv2)", lambda: otsu_loop(paths, out)),
        ("joblib n_jobs=2, loky", lambda: otsu_joblib(paths, out, "loky")),
        ("joblib n_jobs=2, threading", lambda: otsu_joblib(paths, out, "threading")),
        ("ProcessPoolExecutor(2)", lambda: otsu_executor(paths, out)),
    ]
    bars_ = timed_table(rows, a.repeat, a.count, lambda name, s, base: f"(tessera takes {base / s:.2f}x its time)"
                        if name.startswith("libpng") else f"{s / base:.2f}x")
    panels.append((f"Otsu table, {a.count} PNGs of 512 x 512", "seconds (less is better)", bars_))
    shutil.rmtree(f"{d}/pngs")


def bengali_section(a, t, d, panels):
    cfloor = os.path.join(d, "chunk_floor")
    src = os.path.join(HERE, "..", "src")
    subprocess.run(["cc", "-O2", "-fopenmp", "-I", src, os.path.join(HERE, "chunk_floor.c"),
                    os.path.join(src, "core", "zstream.c"), os.path.join(src, "core", "runs.c"), "-lisal", "-ldeflate", "-lzstd", "-lz", "-o", cfloor], check=True)
    rng = np.random.default_rng(7)
    out = f"{d}/out.h5"
    print(f"\n## Bengali preprocessing: {a.bengali} images of 137 x 236\n")
    src = f"{d}/bengali.h5"
    glyphs = [demo.glyph(rng) for _ in range(min(a.bengali, 2000))]
    with h5py.File(src, "w") as f:  # 2000 distinct glyphs, repeated: generating 50,000 takes minutes
        f.create_dataset("images", data=np.stack([glyphs[i % len(glyphs)] for i in range(a.bengali)]),
                         chunks=(1, HEIGHT, WIDTH), compression="gzip")
    pipe = open(os.path.join(HERE, "..", "jobs", "bengali.ini")).read().split("pipeline =", 1)[1]
    pipe = " ".join(line.strip() for line in pipe.splitlines() if line.strip() and not line.strip().startswith(";"))
    rows = [
        ("tessera, 1 process, --threads 2",
         lambda: run([t, "run", "--input", f"{src}:/images", "--output", out, "--pipeline", pipe,
                      "--threads", "2", "--force", "--quiet"])),
        ("floor: inflate + deflate the chunks only, 2 threads",
         lambda: float(subprocess.run([cfloor, f"{d}/chunks.bin", f"{d}/raw.bin", "2"], check=True,
                                      capture_output=True, text=True).stdout.split()[2]),
         lambda: write_records(src, out, d)),  # tessera's output images, for the floor
        ("multiprocessing.Pool(2), numpy + cv2, h5py", lambda: bengali_pool(src, out)),
    ]
    bars_ = timed_table(rows, a.repeat, a.bengali, lambda name, s, base: f"(tessera takes {base / s:.2f}x its time)"
                        if name.startswith("floor") else f"{s / base:.2f}x")
    panels.append((f"Bengali preprocessing, {a.bengali} images", "seconds (less is better)", bars_))


def mpi_section(a, t, d, panels):
    rng = np.random.default_rng(5)
    os.makedirs(f"{d}/mpi")
    for i in range(a.count):
        cv2.imwrite(f"{d}/mpi/img{i:05d}.png", demo.rgb(rng, 384, 463, i))
    out, stats = f"{d}/mpi.h5", f"{d}/stats.json"
    job = ["run", "--input", f"{d}/mpi", "--output", out, "--pipeline", "grayscale | otsu", "--force", "--quiet"]
    mpi = ["mpirun", "--oversubscribe", "-np", "2", t]
    rows = [("tessera, 1 process, --threads 2", [t, *job, "--threads", "2"]),
            ("mpirun -np 2 --threads 1", [*mpi, *job, "--threads", "1"]),
            ("mpirun -np 2 (no --threads)", [*mpi, *job])]
    print(f"\n## Otsu table with the images kept, under MPI: {a.count} RGB PNGs of 463 x 384\n")
    print("| layout | job seconds (--stats) | wall seconds | images/s | vs 1 process (job) |")
    print("|---|---:|---:|---:|---:|")
    base, bars_ = None, []
    for name, cmd in rows:
        runs = [job_seconds(cmd, stats) for _ in range(a.repeat)]
        wall, own = min(r[0] for r in runs), min(r[1] for r in runs)
        base = base or own
        print(f"| {name} | {own:.2f} | {wall:.2f} | {a.count / own:.0f} | {base / own:.0%} |", flush=True)
        bars_.append((name, a.count / own))
    panels.append(("Otsu with images, under MPI (job time)", "images/s (more is better)", bars_))
    shutil.rmtree(f"{d}/mpi")


def blend_section(a, t, d, panels):
    rng = np.random.default_rng(3)
    src = f"{d}/blend"
    os.makedirs(src)
    for i in range(a.blend):
        cv2.imwrite(f"{src}/img{i:04d}.png", demo.rgb(rng, 500, 500, i))
    fixed = f"{d}/fixed.png"
    cv2.imwrite(fixed, demo.rgb(rng, 500, 500, 99)[:, ::-1])
    pipe = open(os.path.join(HERE, "..", "jobs", "blend-folder.ini")).read().split("pipeline =", 1)[1].strip()
    pipe = pipe.replace("with=../build/demo/list/fixed.png", f"with={fixed}")
    rows = [
        ("tessera, 1 process, --threads 2",
         lambda: run([t, "run", "--input", src, "--output", f"{d}/bt/", "--format", "png", "--pipeline", pipe,
                      "--threads", "2", "--force", "--quiet"])),
        ("joblib n_jobs=2, loky (cv2.addWeighted + cv2.imwrite)", lambda: blend_joblib(src, fixed, f"{d}/bj")),
    ]
    print(f"\n## Folder blend: {a.blend} RGB PNGs of 500 x 500 into a directory of PNGs\n")
    bars_ = timed_table(rows, a.repeat, a.blend, lambda name, s, base: f"{s / base:.2f}x")
    worst, equal, sizes = same_pixels(f"{d}/bt", f"{d}/bj")
    print(f"\ntessera's PNGs decoded by cv2 against cv2's own: max difference {worst}, {100 * equal:.3f}% of "
          f"samples equal (blend rounds as cv2.addWeighted's scalar code; its SIMD code differs by 1 on a few); "
          f"files {sizes[0] / 1e6:.1f} MB against {sizes[1] / 1e6:.1f} MB")
    panels.append((f"Folder blend, {a.blend} PNGs of 500 x 500", "seconds (less is better)", bars_))
    # the other sinks at cv2.imwrite's defaults: JPEG quality 95, TIFF LZW
    for fmt, ext, extra, peer in (("jpeg", ".jpg", ["--jpeg-quality", "95"], "quality 95"),
                                  ("tiff", ".tif", ["--compression", "lzw"], "LZW")):
        print(f"\nThe same blend into {fmt.upper()} files ({peer}, cv2.imwrite's default):\n")
        rows = [(f"tessera --format {fmt} {' '.join(extra)}",
                 lambda fmt=fmt, extra=extra: run([t, "run", "--input", src, "--output", f"{d}/s{fmt}/", "--format", fmt,
                                                   *extra, "--pipeline", pipe, "--threads", "2", "--force", "--quiet"])),
                (f"joblib n_jobs=2, loky (cv2.imwrite {ext})",
                 lambda ext=ext, fmt=fmt: blend_joblib(src, fixed, f"{d}/j{fmt}", ext))]
        more = timed_table(rows, a.repeat, a.blend, lambda name, s, base: f"{s / base:.2f}x")
        panels.append((f"Folder blend into {fmt.upper()} ({peer})", "seconds (less is better)", more))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tessera", default=os.path.join(HERE, "..", "build", "tessera"))
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--bengali", type=int, default=50000)
    ap.add_argument("--blend", type=int, default=600)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="otsu,bengali,mpi,blend")
    ap.add_argument("--plot", default=os.path.join(HERE, "..", "docs", "bench", "list.png"))
    a = ap.parse_args()
    t = os.path.abspath(a.tessera)
    d = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    sections = {"otsu": otsu_section, "bengali": bengali_section, "mpi": mpi_section, "blend": blend_section}
    panels = []
    try:
        print(f"# {os.cpu_count()} cores; wall clock unless said, best of {a.repeat}; tmpfs")
        for name in a.only.split(","):
            sections[name](a, t, d, panels)
        bars(a.plot, f"List mode on {os.cpu_count()} cores, best of {a.repeat}", panels)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
