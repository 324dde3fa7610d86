"""The MPI scheduler with real mpirun: outputs byte-identical for any number
of ranks, threads and I/O mode, and failures that stop every rank cleanly
with one message."""
import os
import subprocess
import time

import numpy as np
import pytest
import tifffile

from conftest import TESSERA, make_image, run, write_tiff

MPIEXEC = os.environ.get("MPIEXEC", "mpirun")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
PIPE = "gaussian sigma=2 | median size=3 | sobel"


def mpirun(np_, *args, mpi_args=(), timeout=120, check=True):
    # passive OpenMP waits: ranks x threads exceed the cores here (README)
    cmd = [MPIEXEC, "--oversubscribe", "-x", "OMP_WAIT_POLICY=passive", *mpi_args, "-np", str(np_),
           TESSERA, *map(str, args)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def no_tessera_left():
    out = subprocess.run(["pgrep", "-f", TESSERA], capture_output=True, text=True).stdout.split()
    return [pid for pid in out if int(pid) != os.getpid()]


@pytest.mark.parametrize("dtype", ["u8", "f32"])
def test_any_ranks_threads_and_io_give_identical_files(tmp_path, dtype):
    a = make_image(301, 457, dtype, 1, seed=11)
    src = tmp_path / "in.tif"
    write_tiff(src, a, tile=32)
    ref = tmp_path / "local.tif"
    run("run", "-i", src, "-o", ref, "-p", PIPE, "--tile", 64, "--compression", "deflate", "--quiet")
    want = ref.read_bytes()
    for np_ in (1, 2, 3, 4):
        for threads in (1, 2):
            for io in ("root", "direct") if np_ in (1, 3) else ("root",):
                out = tmp_path / f"np{np_}-t{threads}-{io}.tif"
                mpirun(np_, "run", "-i", src, "-o", out, "-p", PIPE, "--tile", 64, "--threads",
                       threads, "--io", io, "--compression", "deflate", "--quiet")
                assert out.read_bytes() == want, (np_, threads, io)


@pytest.mark.parametrize("root_compute", ["no", "yes"])
def test_summary_counts_every_task_once(tmp_path, root_compute):
    src = tmp_path / "in.tif"
    write_tiff(src, make_image(256, 512, "u8", 1), tile=32)
    p = mpirun(3, "run", "-i", src, "-o", tmp_path / "o.tif", "-p", "box size=3", "--tile", 32,
               "--root-compute", root_compute)
    lines = [l for l in p.stdout.splitlines() if l.strip().startswith("rank ")]
    assert len(lines) == 3
    tasks = [int(l.split(":")[1].split()[0]) for l in lines]
    assert sum(tasks) == (256 // 32) * (512 // 32), p.stdout
    if root_compute == "no":
        assert tasks[0] == 0, p.stdout


def test_corrupt_tile_stops_every_rank(tmp_path):
    src = tmp_path / "z.tif"
    tifffile.imwrite(src, make_image(512, 512, "u8", 1), tile=(64, 64), compression="zlib")
    data = bytearray(src.read_bytes())
    with tifffile.TiffFile(src) as t:
        off, n = t.pages[0].dataoffsets[30], t.pages[0].databytecounts[30]
    data[off : off + n] = bytes([0x5A]) * n
    src.write_bytes(bytes(data))
    out = tmp_path / "o.tif"
    t0 = time.time()
    p = mpirun(3, "run", "-i", src, "-o", out, "-p", "gaussian sigma=1", "--tile", 64, "--quiet",
               check=False, timeout=60)
    assert time.time() - t0 < 20
    assert p.returncode != 0
    errs = [l for l in p.stderr.splitlines() if l.startswith("tessera:")]
    assert len(errs) == 1 and str(src) in errs[0] and "tile" in errs[0], p.stderr
    assert not out.exists() and not (tmp_path / "o.tif.partial").exists()
    assert not no_tessera_left()


def test_bad_pipeline_one_message_all_ranks_fail(tmp_path):
    src = tmp_path / "in.tif"
    write_tiff(src, make_image(64, 64, "u8", 1))
    p = mpirun(3, "run", "-i", src, "-o", tmp_path / "o.tif", "-p", "gaussian sigma=-1", check=False)
    assert p.returncode == 2
    errs = [l for l in p.stderr.splitlines() if l.startswith("tessera:")]
    assert len(errs) == 1 and "sigma=-1" in errs[0], p.stderr
    assert not (tmp_path / "o.tif").exists()


def test_direct_io_worker_without_the_input(tmp_path):
    """--io direct where the workers cannot see the input: rank 0 runs in a
    directory that has in.tif, the workers in one that does not."""
    here, there = tmp_path / "a", tmp_path / "b"
    here.mkdir()
    there.mkdir()
    write_tiff(here / "in.tif", make_image(64, 64, "u8", 1))
    out = here / "o.tif"
    p = mpirun(1, "run", "-i", "in.tif", "-o", "o.tif", "-p", "invert", "--io", "direct", check=False,
               mpi_args=["--wdir", str(here)])
    assert p.returncode == 0, p.stderr  # one rank: no workers, fine
    out.unlink()
    cmd = [MPIEXEC, "--oversubscribe", "-np", "1", "--wdir", str(here), TESSERA, "run", "-i", "in.tif",
           "-o", "o.tif", "-p", "invert", "--io", "direct", ":", "-np", "2", "--wdir", str(there),
           TESSERA, "run", "-i", "in.tif", "-o", "o.tif", "-p", "invert", "--io", "direct"]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=ENV)
    assert time.time() - t0 < 20
    assert p.returncode == 1
    errs = [l for l in p.stderr.splitlines() if l.startswith("tessera:")]
    assert len(errs) == 1, p.stderr
    assert "rank 1" in errs[0] and os.uname().nodename in errs[0] and "in.tif" in errs[0], errs[0]
    assert not out.exists() and not (here / "o.tif.partial").exists()
    # and --io root works in the same layout: workers need no input
    p = subprocess.run([c if c != "direct" else "root" for c in cmd], capture_output=True, text=True,
                       timeout=60, env=ENV)
    assert p.returncode == 0, p.stderr
    np.testing.assert_array_equal(tifffile.imread(out), 255 - tifffile.imread(here / "in.tif"))


def test_slow_worker_takes_fewer_tasks(tmp_path):
    """Dynamic scheduling: `delay ms=20 rank=1` slows worker 1 only. A static
    split (32 tasks each) would take >= 32 x 20 ms = 640 ms; on demand, the
    fast worker takes most tasks and the run ends much sooner."""
    import json
    src = tmp_path / "in.tif"
    write_tiff(src, make_image(256, 256, "u8", 1), tile=32)
    stats = tmp_path / "stats.json"
    mpirun(3, "run", "-i", src, "-o", tmp_path / "o.tif", "-p", "delay ms=20 rank=1 | invert",
           "--tile", 32, "--threads", 1, "--root-compute", "no", "--stats", stats, "--quiet")
    s = json.loads(stats.read_text())
    tasks = {r["rank"]: r["tasks"] for r in s["ranks"]}
    assert tasks[0] == 0 and tasks[1] + tasks[2] == 64, s
    assert tasks[2] > 3 * tasks[1], tasks  # the slow worker took far fewer
    assert s["seconds"] < 0.64, s["seconds"]  # faster than any static split
    assert s["ranks"][1]["busy_fraction"] > 0.5  # the slow one was kept busy too
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "o.tif"), 255 - tifffile.imread(src))


def test_job_file_only_on_rank_0(tmp_path):
    """Workers need neither the job file nor the input (--io root): rank 0
    runs where both are, the workers in an empty directory."""
    import json
    here, there = tmp_path / "a", tmp_path / "b"
    here.mkdir()
    there.mkdir()
    write_tiff(here / "img.tif", make_image(200, 300, "u8", 1))
    (here / "job.ini").write_text("[input]\ninput = img.tif\n[output]\noutput = o.tif\n"
                                  "[pipeline]\npipeline = gaussian sigma=1 | sobel\n[partition]\ntile = 64\n"
                                  "[run]\ntrace = t.json\nquiet = true\n")
    cmd = [MPIEXEC, "--oversubscribe", "-np", "1", "--wdir", str(here), TESSERA, "run", "job.ini", ":",
           "-np", "2", "--wdir", str(there), TESSERA, "run", "job.ini"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=ENV)
    assert p.returncode == 0, p.stderr
    run("run", "-i", here / "img.tif", "-o", tmp_path / "ref.tif", "-p", "gaussian sigma=1 | sobel",
        "--tile", 64, "--quiet")
    assert (here / "o.tif").read_bytes() == (tmp_path / "ref.tif").read_bytes()
    ev = [e for e in json.loads((here / "t.json").read_text())["traceEvents"] if e["ph"] == "X"]
    assert {e["pid"] for e in ev} == {0, 1, 2}
    computed = sorted(e["args"]["task"] for e in ev if e["name"] == "compute")
    assert computed == list(range(4 * 5))  # each task computed once, somewhere


def test_hdf5_image_same_file_for_any_ranks_and_io(tmp_path):
    """Tile mode from and to HDF5 under mpirun: the output file's bytes are
    the single process's for 2 and 3 ranks, --io root and direct."""
    import h5py
    a = make_image(301, 457, "u16", 3, seed=12)
    with h5py.File(tmp_path / "in.h5", "w") as f:
        f.create_dataset("image", data=a, chunks=(64, 64, 3))
    src = f"{tmp_path}/in.h5:/image"
    run("run", "-i", src, "-o", tmp_path / "local.h5", "-p", PIPE, "--tile", 64, "--compression", "deflate",
        "--quiet")
    want = (tmp_path / "local.h5").read_bytes()
    for np_, io in ((2, "root"), (3, "root"), (3, "direct")):
        out = tmp_path / f"np{np_}-{io}.h5"
        mpirun(np_, "run", "-i", src, "-o", out, "-p", PIPE, "--tile", 64, "--io", io, "--compression", "deflate",
               "--quiet")
        assert out.read_bytes() == want, (np_, io)
