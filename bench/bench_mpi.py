#!/usr/bin/env python3
"""MPI benchmarks, measured in one run on this machine:

1. Throughput of `gaussian sigma=2` on the deterministic 16384 x 16384 u8
   tiled TIFF: one process with 2 threads, against MPI configurations for a
   2-core workstation. Times are tessera's own (from --stats: the job,
   without mpirun's start-up); output to tmpfs (/dev/shm) so the 256 MB
   fsync does not drown the difference. Best of --repeat.
2. Scheduler overhead: tasks per second rank 0 sustains with 64 x 64 tiles
   and a trivial pipeline (invert) on an 8192 x 8192 image (16384 tasks),
   for 2, 4 and 8 worker ranks oversubscribed on this machine's cores.
   dask documents 200 us - 1 ms per task (1,000 - 5,000 tasks/s).

Writes the figures as a plot too (--plot, default docs/bench/mpi.png).

usage: bench/bench_mpi.py [--tessera build/tessera] [--repeat 3] [--plot PNG]
"""
import argparse
import json
import os
import subprocess
import tempfile

from plot import bars

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def job_seconds(cmd, stats):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    return json.load(open(stats))["seconds"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tessera", default=os.path.join(os.path.dirname(__file__), "..", "build", "tessera"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--plot", default=os.path.join(os.path.dirname(__file__), "..", "docs", "bench", "mpi.png"))
    a = ap.parse_args()
    t = os.path.abspath(a.tessera)
    d = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    big, small = os.path.join(d, "bench-16k.tif"), os.path.join(d, "bench-8k.tif")
    subprocess.run([t, "generate", "-o", big, "--size", "16384x16384", "--tile", "1024", "--quiet"], check=True)
    subprocess.run([t, "generate", "-o", small, "--size", "8192x8192", "--tile", "1024", "--out-tile", "64",
                    "--quiet"], check=True)
    out, stats = os.path.join(d, "out.tif"), os.path.join(d, "stats.json")
    run = ["run", "-o", out, "--force", "--quiet", "--stats", stats]
    mpi = ["mpirun", "--oversubscribe"]
    mpix = 16384 * 16384 / 1e6
    configs = [
        ("1 process, 2 threads", [t, *run, "-i", big, "-p", "gaussian sigma=2", "--threads", "2"]),
        ("mpirun -np 2, --threads 1 (recommended)", [*mpi, "-np", "2", t, *run, "-i", big, "-p",
                                                     "gaussian sigma=2", "--threads", "1"]),
        ("mpirun -np 2, --threads 2", [*mpi, "-np", "2", t, *run, "-i", big, "-p", "gaussian sigma=2",
                                       "--threads", "2"]),
        ("mpirun -np 3, --threads 1, passive", [*mpi, "-x", "OMP_WAIT_POLICY=passive", "-np", "3", t, *run,
                                                "-i", big, "-p", "gaussian sigma=2", "--threads", "1"]),
    ]
    print(f"# {os.cpu_count()} cores, best of {a.repeat}")
    print("| gaussian sigma=2, 16384^2 u8 | seconds | MPix/s | vs 1 process |")
    print("|---|---:|---:|---:|")
    base, layout = None, []
    for name, cmd in configs:
        s = min(job_seconds(cmd, stats) for _ in range(a.repeat))
        base = base or s
        print(f"| {name} | {s:.3f} | {mpix / s:.0f} | {base / s:.0%} |", flush=True)
        layout.append((name, mpix / s))
    print()
    print("| workers (64x64 tiles, invert, 16384 tasks) | seconds | tasks/s |")
    print("|---|---:|---:|")
    sched = []
    for w in (2, 4, 8):
        cmd = [*mpi, "-x", "OMP_WAIT_POLICY=passive", "-np", str(w + 1), t, *run, "-i", small, "-p", "invert",
               "--tile", "64", "--threads", "1", "--root-compute", "no"]
        s = min(job_seconds(cmd, stats) for _ in range(a.repeat))
        print(f"| {w} | {s:.3f} | {16384 / s:,.0f} |", flush=True)
        sched.append((f"{w} workers", 16384 / s))
    bars(a.plot, f"MPI on {os.cpu_count()} cores (job times from --stats)",
         [("gaussian sigma=2, 16384^2 u8", "MPix/s (more is better)", layout),
          ("scheduler: 64x64 tiles, invert, 16384 tasks", "tasks/s (more is better)", sched)])
    subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main()
