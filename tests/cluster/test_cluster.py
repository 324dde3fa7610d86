"""tessera across hosts that share no filesystem: three hosts emulated by
cluster/netns-cluster (network namespaces on a private subnet, each with its
own hostname, /tmp and /dev/shm) and a real mpirun whose remote launcher
enters them. The input and the output live only in host A's private /tmp.
Needs root (namespaces); these tests must not run concurrently with each
other (ctest RESOURCE_LOCK)."""
import json
import os
import shutil
import subprocess
import time

import h5py
import numpy as np
import pytest

from conftest import TESSERA, make_image, write_tiff

HERE = os.path.dirname(os.path.abspath(__file__))
NETNS = os.path.join(HERE, "..", "..", "cluster", "netns-cluster")
MPIEXEC = os.environ.get("MPIEXEC", "mpirun")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           TS_CLUSTER_STATE="/run/tessera-cluster-test")
HOSTS = ["tessera-a", "tessera-b", "tessera-c"]
WORK = "/tmp/work"  # inside host A only
PIPE = "gaussian sigma=2 | median size=3 | sobel | equalize"


def netns(*args, check=True, timeout=120):
    p = subprocess.run([NETNS, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=timeout)
    if check and p.returncode:
        raise AssertionError(f"netns-cluster {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    return p


def mpirun_cmd(*args, np_=3):
    """mpirun as run in host A: one rank per host, the remote launcher enters the host."""
    return [MPIEXEC, "--host", ",".join(HOSTS), "-np", str(np_), "--bind-to", "none",
            "--mca", "plm_rsh_agent", f"{os.path.abspath(NETNS)} rsh", TESSERA, *map(str, args)]


def in_host(host, cmd, timeout=120, **kw):
    return subprocess.run([NETNS, "exec", host, "/bin/sh", "-c", f"cd {WORK} 2>/dev/null; " + cmd],
                          capture_output=True, text=True, env=ENV, timeout=timeout, **kw)


def sh(args):
    return " ".join("'" + str(a).replace("'", "'\\''") + "'" for a in args)


def host_root(host):
    """Host's files as seen from outside: its mount namespace's root."""
    pid = open(f"{ENV['TS_CLUSTER_STATE']}/{host}.pid").read().strip()
    return f"/proc/{pid}/root"


def leftover_processes():
    """Processes in any host other than its holder."""
    left = {}
    for h in HOSTS:
        pids = netns("pids", h).stdout.split()
        holder = open(f"{ENV['TS_CLUSTER_STATE']}/{h}.pid").read().strip()
        rest = [p for p in pids if p != holder]
        if rest:
            left[h] = [open(f"/proc/{p}/comm").read().strip() for p in rest if os.path.exists(f"/proc/{p}")]
    return left


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    assert os.geteuid() == 0, "the cluster tests need root (network, UTS and mount namespaces)"
    # the source and build trees are shared, as an installed program is; if
    # they lie under /tmp, the hosts' private /tmp would hide them
    up = netns("up", 3, "--share", os.path.join(HERE, "..", ".."), "--share", os.path.dirname(TESSERA))
    assert up.stdout.split() == HOSTS, up.stdout
    # the data: only in host A's private /tmp
    stage = tmp_path_factory.mktemp("stage")
    write_tiff(stage / "in.tif", make_image(700, 900, "u8", 1, seed=3), tile=64)
    import cv2
    rng = np.random.default_rng(9)
    (stage / "imgs").mkdir()
    for i in range(40):
        cv2.imwrite(str(stage / "imgs" / f"im{i:03d}.png"), rng.integers(0, 256, (64 + i, 80), dtype=np.uint8))
    a = host_root("tessera-a") + WORK
    os.makedirs(a)
    shutil.copy(stage / "in.tif", a)
    shutil.copytree(stage / "imgs", a + "/imgs")
    yield
    netns("down")
    assert not os.path.exists(ENV["TS_CLUSTER_STATE"])
    assert not [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
                if n.startswith("tsc-")]


def test_hosts_are_separate(cluster):
    names = [in_host(h, "hostname").stdout.strip() for h in HOSTS]
    assert names == HOSTS
    assert os.path.exists(host_root("tessera-a") + f"{WORK}/in.tif")
    for h in HOSTS[1:]:
        assert not os.path.exists(host_root(h) + f"{WORK}/in.tif"), h
        assert in_host(h, f"test -e {WORK}/in.tif").returncode != 0, h
    # the subnet has no way out
    route = in_host("tessera-a", "ip route").stdout
    assert "default" not in route and "10.77.0.0/24" in route, route


def test_io_root_across_hosts_equals_one_process(cluster):
    ref = in_host("tessera-a", sh([TESSERA, "run", "-i", "in.tif", "-o", "ref.tif", "-p", PIPE, "--tile", 128,
                                   "--quiet", "--force"]))
    assert ref.returncode == 0, ref.stderr
    t = time.monotonic()
    p = in_host("tessera-a", sh(mpirun_cmd("run", "-i", "in.tif", "-o", "out.tif", "-p", PIPE, "--tile", 128,
                                           "--threads", 2, "--io", "root", "--stats", "s.json", "--force")))
    assert p.returncode == 0, p.stdout + p.stderr
    a = host_root("tessera-a") + WORK
    assert open(f"{a}/out.tif", "rb").read() == open(f"{a}/ref.tif", "rb").read()
    s = json.load(open(f"{a}/s.json"))
    hosts = {r["host"]: r["tasks"] for r in s["ranks"]}
    # the workers on B and C did tasks, though the input never existed there
    assert set(hosts) == set(HOSTS) and hosts["tessera-b"] > 0 and hosts["tessera-c"] > 0, hosts
    for h in HOSTS[1:]:
        assert not os.path.exists(host_root(h) + WORK), h  # nothing was written there either
    assert not leftover_processes()
    assert time.monotonic() - t < 60


def test_list_mode_io_root_across_hosts(cluster):
    ref = in_host("tessera-a", sh([TESSERA, "run", "-i", "imgs", "-o", "ref.h5", "-p", "median size=3 | otsu",
                                   "--quiet", "--force"]))
    assert ref.returncode == 0, ref.stderr
    p = in_host("tessera-a", sh(mpirun_cmd("run", "-i", "imgs", "-o", "out.h5", "-p", "median size=3 | otsu",
                                           "--io", "root", "--quiet", "--force")))
    assert p.returncode == 0, p.stdout + p.stderr
    a = host_root("tessera-a") + WORK
    with h5py.File(f"{a}/out.h5", "r") as f, h5py.File(f"{a}/ref.h5", "r") as r:
        assert list(f["names"][:]) == list(r["names"][:])
        assert np.array_equal(f["results/otsu"][:], r["results/otsu"][:])
        for n in r["images"]:
            assert np.array_equal(f["images"][n][:], r["images"][n][:]), n


@pytest.mark.parametrize("path", ["in.tif", f"{WORK}/in.tif"])
def test_io_direct_without_shared_files_fails_naming_host_and_path(cluster, path):
    t = time.monotonic()
    p = in_host("tessera-a", sh(mpirun_cmd("run", "-i", path, "-o", "direct.tif", "-p", PIPE, "--io", "direct")),
                timeout=60)
    took = time.monotonic() - t
    assert p.returncode == 1, p.stdout + p.stderr
    msgs = [l for l in p.stderr.splitlines() if l.startswith("tessera:")]
    assert len(msgs) == 1, p.stderr
    m = msgs[0]
    assert ("rank 1 on tessera-b" in m or "rank 2 on tessera-c" in m) and f" {path}: cannot open input" in m, m
    if not path.startswith("/"):  # the worker says where it looked: Open MPI put it in its home directory
        assert "(looked in " in m and "a relative path)" in m, m
    assert took < 20, took
    assert not os.path.exists(host_root("tessera-a") + f"{WORK}/direct.tif")
    assert not os.path.exists(host_root("tessera-a") + f"{WORK}/direct.tif.partial")
    assert not leftover_processes()


def test_killed_worker_ends_the_run_within_seconds(cluster):
    cmd = mpirun_cmd("run", "-i", "synth:16384x16384", "-o", "killed.tif", "-p", "median size=15", "--tile", 256,
                     "--threads", 1, "--quiet")
    run = subprocess.Popen([NETNS, "exec", "tessera-a", "/bin/sh", "-c", f"cd {WORK}; " + sh(cmd)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    # wait until host C's rank has started working
    victim, t = None, time.monotonic()
    while victim is None:
        assert run.poll() is None, run.communicate()[1]
        assert time.monotonic() - t < 60, "no tessera rank appeared on tessera-c"
        for pid in netns("pids", "tessera-c").stdout.split():
            try:
                if open(f"/proc/{pid}/comm").read().strip() == "tessera":
                    victim = int(pid)
            except FileNotFoundError:
                pass
        time.sleep(0.1)
    time.sleep(1.0)
    t = time.monotonic()
    os.kill(victim, 9)
    out, err = run.communicate(timeout=60)
    took = time.monotonic() - t
    assert run.returncode != 0
    assert took < 15, f"{took:.1f} s"
    assert "tessera-c" in err and "signal 9" in err, err  # mpirun names the rank's host and what happened
    assert not os.path.exists(host_root("tessera-a") + f"{WORK}/killed.tif")
    deadline = time.monotonic() + 10
    while leftover_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not leftover_processes(), leftover_processes()
