#!/usr/bin/env python3
"""Who writes the chunks, simulated: a Zarr job across emulated hosts
(cluster/netns-cluster: network namespaces on one machine, as root) whose
every link is limited to --rate (default 200mbit, with tc's token bucket
on both ends of each host's veth pair), with a directory every host
shares (the build tree: the "shared filesystem").

Rank 0 runs on tessera-a and only coordinates (--root-compute no); 1, 2
and 3 worker hosts (tessera-b, -c, -d) compute with --threads T each. For
each count, the job runs with

- --io root: rank 0 reads the input and sends each tile to a worker, the
  worker sends the chunk back, rank 0 writes it: every pixel crosses rank
  0's link twice, so throughput is capped by that one link;
- --io direct: workers read their tiles from the shared directory and
  write their own chunk files there; rank 0 receives chunk sizes only.

On this machine the shared directory is the same kernel's filesystem, so
direct I/O crosses no emulated link (as a parallel filesystem's own
network is not the hosts' MPI link); the hosts share this machine's
cores, so direct throughput grows with hosts until the cores run out.
Prints MPix/s per configuration and rank 0's bytes received, and draws
docs/bench/zarr_hosts.png.

usage: bench/bench_zarr_hosts.py [--tessera build/tessera] [--size 8192] [--rate 200mbit] [--threads 1]
"""
import argparse
import json
import os
import shlex
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
NETNS = os.path.join(ROOT, "cluster", "netns-cluster")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           TS_CLUSTER_STATE="/run/tessera-cluster-bench")
HOSTS = ["tessera-a", "tessera-b", "tessera-c", "tessera-d"]
PIPE = "gaussian sigma=3 | median size=5 | unsharp"


def netns(*args):
    return subprocess.run([NETNS, *map(str, args)], check=True, capture_output=True, text=True, env=ENV)


def in_host(host, cmd, check=True):
    p = subprocess.run([NETNS, "exec", host, "/bin/sh", "-c", cmd], capture_output=True, text=True, env=ENV)
    if check and p.returncode:
        sys.exit(f"bench: in {host}: {cmd}\n{p.stdout}{p.stderr}")
    return p


def limit(rate):
    """Each host's link, both ways: its eth0 (sending) and the bridge's end (receiving)."""
    for i, h in enumerate(HOSTS):
        in_host(h, f"tc qdisc replace dev eth0 root tbf rate {rate} burst 64kb latency 50ms")
        subprocess.run(["ip", "netns", "exec", "tsc-br", "tc", "qdisc", "replace", "dev", f"v{i}", "root", "tbf",
                        "rate", rate, "burst", "64kb", "latency", "50ms"], check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tessera", default=os.path.join(ROOT, "build", "tessera"))
    ap.add_argument("--size", type=int, default=8192)
    ap.add_argument("--rate", default="200mbit")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: needs root (network namespaces and tc)")
    T = os.path.abspath(a.tessera)
    work = os.path.join(ROOT, "build", "bench", "hosts")  # outside /tmp: every host sees it
    os.makedirs(work, exist_ok=True)
    src = os.path.join(work, f"in-{a.size}.tif")
    if not os.path.exists(src):
        subprocess.run([T, "generate", "-o", src, "--size", f"{a.size}x{a.size}", "--tile", "1024", "--out-tile", "256",
                        "--quiet"], check=True)
    netns("up", len(HOSTS))
    rows = []
    try:
        limit(a.rate)
        mpix = a.size * a.size / 1e6
        print(f"{a.size}^2 u8, '{PIPE}' -> Zarr (no compression), links {a.rate}, {a.threads} thread(s) per worker; "
              f"best of {a.repeat}")
        print(f"{'workers':>7} {'io':>7} {'seconds':>8} {'MPix/s':>8} {'rank 0 MB in':>13}")
        for k in (1, 2, 3):
            for io in ("root", "direct"):
                hosts = ",".join(HOSTS[:k + 1])
                out, stats = os.path.join(work, "out.zarr"), os.path.join(work, f"s-{io}-{k}.json")
                cmd = ["mpirun", "--host", hosts, "-np", str(k + 1), "--bind-to", "none", "--mca", "plm_rsh_agent",
                       f"{NETNS} rsh", "-x", "OMP_WAIT_POLICY=passive", T, "run", "-i", src, "-o", out, "-p", PIPE,
                       "--io", io, "--root-compute", "no", "--threads", str(a.threads), "--force", "--quiet",
                       "--stats", stats]
                secs, mb = [], 0
                for _ in range(a.repeat):
                    in_host(HOSTS[0], f"cd {shlex.quote(work)} && " + " ".join(shlex.quote(c) for c in cmd))
                    s = json.load(open(stats))
                    secs.append(s["seconds"])
                    mb = s["ranks"][0]["bytes_received"] / 1e6
                t = min(secs)
                rows.append((k, io, t, mpix / t, mb))
                print(f"{k:>7} {io:>7} {t:8.2f} {mpix / t:8.1f} {mb:13.1f}", flush=True)
    finally:
        netns("down")
    for k in (1, 2, 3):
        r = {io: m for kk, io, _, m, _ in rows if kk == k}
        print(f"{k} worker host(s): direct / root = {r['direct'] / r['root']:.2f}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(5, 3.2))
        for io, mark in (("root", "o-"), ("direct", "s-")):
            ax.plot([r[0] for r in rows if r[1] == io], [r[3] for r in rows if r[1] == io], mark, label=f"--io {io}")
        ax.set_xlabel("worker hosts")
        ax.set_ylabel("MPix/s")
        ax.set_xticks([1, 2, 3])
        ax.set_ylim(bottom=0)
        ax.set_title(f"Zarr output, links limited to {a.rate}")
        ax.legend()
        fig.tight_layout()
        png = os.path.join(ROOT, "docs", "bench", "zarr_hosts.png")
        fig.savefig(png, dpi=120)
        print("plot:", os.path.relpath(png, ROOT))
    except ImportError:
        pass


if __name__ == "__main__":
    main()
