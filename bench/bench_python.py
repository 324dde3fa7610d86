#!/usr/bin/env python3
"""A Python function as a kernel, one machine, one run: the same function,
`scipy.ndimage.gaussian_filter(sigma=2)` (truncate 4: an 8-pixel halo),
over a 16384 x 16384 u8 tiled TIFF, as

- tessera tile mode under mpirun with 2 ranks, 1 thread each:
  `-p "py:scipy.ndimage.gaussian_filter sigma=2 halo=8"` (tiles of 1024,
  an uncompressed tiled BigTIFF out);
- dask: the same pixels as an uncompressed zarr-python DirectoryStore of
  1024 x 1024 chunks (made once, untimed: tifffile's zarr view of the TIFF
  cannot be pickled for the processes scheduler),
  `map_overlap(gaussian_filter, depth=8, boundary="reflect")`,
  stored by `da.store` into an uncompressed zarr-python DirectoryStore of
  the same chunks, with the threaded scheduler (2 threads) and with the
  processes scheduler (2 processes).

Throughput and peak memory of the whole process tree (the sum of every
descendant's resident set, sampled every 20 ms). Each runs once to warm
the page cache, then --repeat times; the best time counts, and the peak is
the largest seen. Then checks that the outputs hold the same pixels.

usage: bench/bench_python.py [--tessera build/tessera] [--dir DIR] [--repeat 1] [--size 16384]
"""
import argparse
import os
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))

DASK = r'''
import sys, dask, dask.array as da, scipy.ndimage as ndi, zarr
if __name__ == "__main__":  # the processes scheduler spawns this file again
    src, out, scheduler = sys.argv[1], sys.argv[2], sys.argv[3]
    x = da.from_zarr(zarr.open(zarr.DirectoryStore(src), mode="r"))
    y = x.map_overlap(ndi.gaussian_filter, depth=8, boundary="reflect", dtype=x.dtype, sigma=2)
    z = zarr.open(zarr.DirectoryStore(out), mode="w", shape=y.shape, chunks=(1024, 1024), dtype=y.dtype,
                  compressor=None)
    with dask.config.set(scheduler=scheduler, num_workers=2):
        da.store(y, z, lock=False)
'''


def tree_rss(root):
    """Resident bytes of root and every descendant."""
    kids, rss = {}, {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{p}/statm") as f:
                rss[int(p)] = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            kids.setdefault(ppid, []).append(int(p))
        except (OSError, ValueError, IndexError):
            pass
    total, stack = 0, [root]
    while stack:
        q = stack.pop()
        total += rss.get(q, 0)
        stack += kids.get(q, [])
    return total


def measure(cmd, env=None):
    """Seconds and the process tree's peak resident bytes."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    peak = [0]

    def sample():
        while p.poll() is None:
            peak[0] = max(peak[0], tree_rss(p.pid))
            time.sleep(0.02)
    th = threading.Thread(target=sample)
    th.start()
    _, err = p.communicate()
    th.join()
    if p.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err.decode()}")
    return time.perf_counter() - t, peak[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tessera", default=os.path.join(HERE, "..", "build", "tessera"))
    ap.add_argument("--dir", default="/tmp/tessera-bench-python")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--size", type=int, default=16384)
    a = ap.parse_args()
    tessera = os.path.abspath(a.tessera)
    d = a.dir
    os.makedirs(d, exist_ok=True)
    src = f"{d}/in.tif"
    if not os.path.exists(src):
        subprocess.run([tessera, "generate", "--size", f"{a.size}x{a.size}", "-o", src, "--force", "--quiet"], check=True)
    if not os.path.exists(f"{d}/in.zarr"):
        import tifffile
        import zarr
        img = tifffile.imread(src)
        z = zarr.open(zarr.DirectoryStore(f"{d}/in.zarr"), mode="w", shape=img.shape, chunks=(1024, 1024),
                      dtype=img.dtype, compressor=None)
        z[:] = img
        del img, z
    with open(f"{d}/dask_job.py", "w") as f:
        f.write(DASK)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    jobs = {
        "tessera py: kernel, mpirun -np 2, 1 thread each":
            ["mpirun", "--oversubscribe", "-np", "2", tessera, "run", "-i", src, "-o", f"{d}/tessera.tif", "-p",
             "py:scipy.ndimage.gaussian_filter sigma=2 halo=8", "--threads", "1", "--quiet", "--force"],
        "dask map_overlap, threaded scheduler (2 threads)":
            ["/usr/bin/python3", f"{d}/dask_job.py", f"{d}/in.zarr", f"{d}/threads.zarr", "threads"],
        "dask map_overlap, processes scheduler (2 processes)":
            ["/usr/bin/python3", f"{d}/dask_job.py", f"{d}/in.zarr", f"{d}/procs.zarr", "processes"],
    }
    res = {}
    for name, cmd in jobs.items():
        best, peak = None, 0
        for i in range(a.repeat + 1):
            t, m = measure(cmd, env)
            peak = max(peak, m)
            if i:
                best = t if best is None else min(best, t)
        res[name] = (best, peak)
    mpix = a.size * a.size / 1e6
    print(f"{a.size} x {a.size} u8, gaussian_filter sigma=2, {os.cpu_count()} cores")
    print(f"{'job':<54} {'seconds':>8} {'MPix/s':>8} {'peak MB':>8}")
    for name, (t, m) in res.items():
        print(f"{name:<54} {t:8.2f} {mpix / t:8.1f} {m / 1e6:8.0f}")
    names = list(res)
    for other in names[1:]:
        print(f"{other.split(',')[1].strip()}: time {res[other][0] / res[names[0]][0]:.2f}x tessera's, "
              f"peak memory {res[other][1] / res[names[0]][1]:.1f}x")
    import numpy as np
    import tifffile
    import zarr
    t = tifffile.imread(f"{d}/tessera.tif")
    same = all(np.array_equal(t, zarr.open(f"{d}/{z}", mode="r")[:]) for z in ("threads.zarr", "procs.zarr"))
    print(f"outputs identical: {same}")


if __name__ == "__main__":
    main()
