#!/usr/bin/python3
"""List-mode benchmarks against the Python tools people use today, all run
on this machine in this run (wall clock, inputs and outputs on tmpfs, best
of --repeat):

1. Otsu table: N RGB PNGs of 512 x 512 -> grayscale -> Otsu threshold ->
   an HDF5 table of (name, threshold). tessera (one process, 2 threads)
   against a Python loop, joblib Parallel(n_jobs=2) with the loky and
   threading backends and ProcessPoolExecutor(2), each doing cv2.imread +
   cv2.cvtColor + cv2.threshold(OTSU) and writing the table with h5py; and
   the floor: reading and decoding the same PNGs with libpng alone on 2
   threads (bench/png_floor.c).
2. The Bengali preprocessing (jobs/bengali.ini) on an N x 137 x 236 u8
   HDF5 stack, against the original numpy + cv2 code per image in
   multiprocessing.Pool(2), writing the same N x 128 x 128 stack (one
   deflate chunk per image) with h5py; and the codec floor: inflating
   every input chunk and deflating every output image with tessera's
   codec (ISA-L) on 2 threads, nothing else (bench/chunk_floor.c).

usage: bench/bench_list.py [--tessera build/tessera] [--count 2000]
                           [--bengali 50000] [--repeat 3]
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
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tessera", default=os.path.join(HERE, "..", "build", "tessera"))
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--bengali", type=int, default=50000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    t = os.path.abspath(a.tessera)
    d = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    try:
        floor = os.path.join(d, "png_floor")
        subprocess.run(["cc", "-O2", "-fopenmp", os.path.join(HERE, "png_floor.c"), "-lpng", "-o", floor], check=True)
        cfloor = os.path.join(d, "chunk_floor")
        src = os.path.join(HERE, "..", "src")
        subprocess.run(["cc", "-O2", "-fopenmp", "-I", src, os.path.join(HERE, "chunk_floor.c"),
                        os.path.join(src, "core", "zstream.c"), "-lisal", "-o", cfloor], check=True)
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
        print(f"# {os.cpu_count()} cores; wall clock, best of {a.repeat}; tmpfs")
        print(f"\n## Otsu table: {a.count} RGB PNGs of 512 x 512\n")
        rows = [
            ("tessera, 1 process, --threads 2",
             lambda: run([t, "run", "--input", f"{d}/pngs", "--output", out, "--pipeline", "grayscale | otsu",
                          "--images", "false", "--threads", "2", "--force", "--quiet"])),
            ("floor: libpng decode only, 2 threads", lambda: run([floor, f"{d}/list.txt", "2"])),
            ("Python loop (cv2)", lambda: otsu_loop(paths, out)),
            ("joblib n_jobs=2, loky", lambda: otsu_joblib(paths, out, "loky")),
            ("joblib n_jobs=2, threading", lambda: otsu_joblib(paths, out, "threading")),
            ("ProcessPoolExecutor(2)", lambda: otsu_executor(paths, out)),
        ]
        print("| tool | seconds | images/s | tessera's speed-up |")
        print("|---|---:|---:|---:|")
        base = None
        for name, fn in rows:
            s = best(fn, a.repeat)
            base = base or s
            ratio = f"{s / base:.2f}x" if base != s else "1.00x"
            if name.startswith("floor"):
                ratio = f"(tessera reaches {100 * s / base:.0f}% of it)"
            print(f"| {name} | {s:.2f} | {a.count / s:.0f} | {ratio} |", flush=True)
        shutil.rmtree(f"{d}/pngs")

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
                                          capture_output=True, text=True).stdout.split()[2])),
            ("multiprocessing.Pool(2), numpy + cv2, h5py", lambda: bengali_pool(src, out)),
        ]
        print("| tool | seconds | images/s | tessera's speed-up |")
        print("|---|---:|---:|---:|")
        base = None
        for name, fn in rows:
            if name.startswith("floor"):
                write_records(src, out, d)
            s = best(fn, a.repeat)
            base = base or s
            ratio = f"(tessera takes {base / s:.2f}x its time)" if name.startswith("floor") else f"{s / base:.2f}x"
            print(f"| {name} | {s:.2f} | {a.bengali / s:.0f} | {ratio} |", flush=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
