"""MPI defaults that do not hurt: with no --threads and no OMP_NUM_THREADS
each rank runs the cores its node's ranks may use divided by the ranks on
the node (at least 1), idle OpenMP threads sleep instead of spinning, and
the summary says how many threads each rank ran."""
import json
import os
import re
import subprocess

import pytest

from conftest import TESSERA, make_image, write_tiff

MPIEXEC = os.environ.get("MPIEXEC", "mpirun")
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
ENV.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def mpirun(np_, *args, env=ENV):
    cmd = [MPIEXEC, "--oversubscribe", "-np", str(np_), *map(str, args)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p


def cpu_list(text):
    cpus = set()
    for part in text.strip().split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def expected_threads(np_):
    """What mpirun's own binding leaves np_ ranks on this node, read
    independently of tessera: the union of their affinity masks / np_."""
    out = mpirun(np_, "grep", "Cpus_allowed_list", "/proc/self/status").stdout
    union = set()
    for line in out.splitlines():
        union |= cpu_list(line.split(":", 1)[1])
    return max(1, len(union) // np_)


@pytest.mark.parametrize("np_", [1, 2, 3])
def test_threads_per_rank_default(tmp_path, np_):
    src = tmp_path / "in.tif"
    write_tiff(src, make_image(256, 512, "u8", 1), tile=32)
    stats = tmp_path / "stats.json"
    p = mpirun(np_, TESSERA, "run", "-i", src, "-o", tmp_path / "o.tif", "-p", "box size=3", "--tile", 32,
               "--stats", stats)
    want = expected_threads(np_)
    s = json.loads(stats.read_text())
    got = [r["threads"] for r in s["ranks"]]
    assert got == [want] * np_, (got, want)
    head = p.stdout.splitlines()[0]
    if np_ == 1:
        assert f", {want} thread{'s' if want > 1 else ''}, " in head, head
    else:
        assert f", {np_} ranks x {want} thread{'s' if want > 1 else ''}, " in head, head


def test_explicit_threads_and_omp_num_threads_win(tmp_path):
    src = tmp_path / "in.tif"
    write_tiff(src, make_image(256, 512, "u8", 1), tile=32)
    for extra, env, want in ((["--threads", 3], ENV, 3), ([], dict(ENV, OMP_NUM_THREADS="2"), 2)):
        stats = tmp_path / "stats.json"
        mpirun(2, TESSERA, "run", "-i", src, "-o", tmp_path / "o.tif", "-p", "box size=3", "--tile", 32,
               "--stats", stats, "--force", "--quiet", *extra, env=env)
        assert [r["threads"] for r in json.loads(stats.read_text())["ranks"]] == [want, want]


def test_idle_openmp_threads_sleep_under_a_launcher(tmp_path):
    """libgomp says what it runs with (OMP_DISPLAY_ENV=verbose): a spin
    count of 0 is the passive policy. A policy the user chose is kept."""
    args = [TESSERA, "run", "-i", "synth:256x256", "-o", tmp_path / "o.tif", "-p", "box size=3", "--quiet",
            "--force"]
    p = mpirun(2, *args, env=dict(ENV, OMP_DISPLAY_ENV="verbose"))
    # each rank's last report is the one its work ran with
    spins = re.findall(r"GOMP_SPINCOUNT = '(\d+)'", p.stderr)
    assert spins and spins[-1] == "0" and spins.count("0") == 2, p.stderr
    p = mpirun(2, *args, env=dict(ENV, OMP_DISPLAY_ENV="verbose", OMP_WAIT_POLICY="active"))
    assert "OMP_WAIT_POLICY = 'ACTIVE'" in p.stderr and "GOMP_SPINCOUNT = '0'" not in p.stderr, p.stderr
    # a plain process (no launcher) keeps libgomp's own default
    p = subprocess.run(args, capture_output=True, text=True, env=dict(ENV, OMP_DISPLAY_ENV="verbose"))
    assert p.returncode == 0 and "GOMP_SPINCOUNT = '0'" not in p.stderr, p.stderr
