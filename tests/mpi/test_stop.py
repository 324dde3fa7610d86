"""Stopping early on SIGUSR1 / SIGTERM (Slurm's warning before a time
limit): no new task starts, the tasks under way are written, every rank
exits promptly with status 75, the final name is never written, and the
unfinished output kept as OUT.partial holds exactly the finished tasks."""
import json
import os
import signal
import subprocess
import time

import h5py
import numpy as np
import pytest
import tifffile

from conftest import TESSERA, run

MPIEXEC = os.environ.get("MPIEXEC", "mpirun")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
STOPPED = 75  # the documented "stopped early" exit status
# about 3 s on 2 cores: long enough to stop in the middle, short enough to
# compute the uninterrupted reference too
SIZE = "8192x8192"
SLOW = "gaussian sigma=30 | median size=9"


def launch(np_, args, cwd):
    """tessera (np_ = 0: one process) or mpirun -np np_ tessera, in the background."""
    cmd = [TESSERA, *map(str, args)]
    if np_:
        cmd = [MPIEXEC, "--oversubscribe", "-x", "OMP_WAIT_POLICY=passive", "-np", str(np_), *cmd]
    return subprocess.Popen(cmd, cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(cond, proc, timeout=60):
    t = time.monotonic()
    while not cond():
        assert proc.poll() is None, "the run ended before it could be stopped:\n" + proc.communicate()[1]
        assert time.monotonic() - t < timeout, "timed out waiting for the run to get going"
        time.sleep(0.01)


def stop(proc, sig, limit=10):
    """Signal the run; it must end within `limit` seconds. Returns (rc, out, err, seconds)."""
    t = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=limit + 20)
    took = time.monotonic() - t
    assert took < limit, f"took {took:.1f} s to stop:\n{err}"
    return proc.returncode, out, err, took


def present_tiles(path):
    """{tile index: raw bytes} of the tiles written in an uncompressed TIFF."""
    with tifffile.TiffFile(path) as f:
        page = f.pages[0]
        offs, counts = page.dataoffsets, page.databytecounts
        fh = f.filehandle
        tiles = {}
        for i, (o, n) in enumerate(zip(offs, counts)):
            if n:
                fh.seek(o)
                tiles[i] = fh.read(n)
        return tiles, len(offs)


def no_tessera_left():
    time.sleep(0.3)
    pids = subprocess.run(["pgrep", "-f", TESSERA], capture_output=True, text=True).stdout.split()
    return [p for p in pids if int(p) != os.getpid()]


@pytest.fixture(scope="module")
def ref_tiles(tmp_path_factory):
    """The uninterrupted run's tiles, computed once for the three stops
    (the slowest part of this file, above all under ASan)."""
    ref = tmp_path_factory.mktemp("ref") / "ref.tif"
    run("run", "-i", f"synth:{SIZE}", "-o", ref, "-p", SLOW, "--tile", 256, "--quiet")
    return present_tiles(ref)


@pytest.mark.parametrize("np_,sig", [(0, signal.SIGUSR1), (0, signal.SIGTERM), (3, signal.SIGUSR1)])
def test_tile_mode_stops_and_keeps_exactly_the_finished_tiles(tmp_path, np_, sig, ref_tiles):
    args = ["run", "-i", f"synth:{SIZE}", "-o", "out.tif", "-p", SLOW, "--tile", 256, "--threads", 1 if np_ else 2,
            "--stats", "s.json", "--quiet"]
    partial = tmp_path / "out.tif.partial"
    p = launch(np_, args, tmp_path)
    # stop once some tiles are on disk: the partial grows past a few MB
    wait_for(lambda: partial.exists() and partial.stat().st_size > 8 << 20, p)
    rc, out, err, _ = stop(p, sig)
    assert rc == STOPPED, err
    assert not (tmp_path / "out.tif").exists()
    name = signal.Signals(sig).name
    assert f"stopped early by {name}" in err and "out.tif.partial" in err, err
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["stopped"] == name and s["kept"] == "out.tif.partial"
    assert 0 < s["done"] < s["tasks"] == 32 * 32
    # the partial's tiles are exactly the finished tasks', byte for byte
    got, n = present_tiles(partial)
    want, n_ref = ref_tiles
    assert n == n_ref == 32 * 32
    assert len(got) == s["done"]  # --out-tile is 256 here: one TIFF tile per task
    assert all(got[i] == want[i] for i in got)
    assert not no_tessera_left()


@pytest.mark.parametrize("np_", [0, 3])
def test_stop_during_the_statistics_pass_writes_nothing(tmp_path, np_):
    args = ["run", "-i", "synth:16384x16384", "-o", "out.tif", "-p", "median size=15 | equalize", "--tile", 512,
            "--threads", 1 if np_ else 2, "--stats", "s.json", "--quiet"]
    p = launch(np_, args, tmp_path)
    wait_for(lambda: (tmp_path / "out.tif.partial").exists(), p)
    time.sleep(0.5)
    rc, out, err, _ = stop(p, signal.SIGUSR1)
    assert rc == STOPPED, err
    assert "during the statistics pass" in err and "nothing was written" in err, err
    assert not list(tmp_path.glob("out.tif*"))
    assert json.loads((tmp_path / "s.json").read_text())["done"] == 0


N_PNG = 600  # about 9 s of work on one thread: a stop after 1 s lands mid-run even on a faster machine


def make_pngs(d, n=N_PNG):
    import cv2
    d.mkdir()
    rng = np.random.default_rng(5)
    for i in range(n):
        cv2.imwrite(str(d / f"im{i:04d}.png"), rng.integers(0, 256, (256, 256), dtype=np.uint8))


@pytest.mark.parametrize("np_", [0, 3])
def test_list_mode_stops_with_the_done_images_readable(tmp_path, np_):
    make_pngs(tmp_path / "imgs")
    pipe = "tv_denoise weight=0.1 max_iter=200 | otsu"
    args = ["run", "-i", "imgs", "-o", "out.h5", "-p", pipe, "--threads", 1, "--stats", "s.json", "--quiet"]
    p = launch(np_, args, tmp_path)
    # once the output exists (a stop before it ends the run at once, with
    # nothing to keep: test_hostile), a third of the way or less
    wait_for(lambda: (tmp_path / "out.h5.partial").exists(), p)
    time.sleep(1.0)  # about 15 ms per image and thread
    rc, out, err, _ = stop(p, signal.SIGUSR1)
    assert rc == STOPPED, err
    assert not (tmp_path / "out.h5").exists()
    s = json.loads((tmp_path / "s.json").read_text())
    assert 0 < s["done"] < N_PNG, s
    ref = tmp_path / "ref.h5"
    run("run", "-i", tmp_path / "imgs", "-o", ref, "-p", pipe, "--quiet")
    with h5py.File(tmp_path / "out.h5.partial", "r") as f, h5py.File(ref, "r") as r:
        names = [n.decode() for n in f["names"][:]]
        assert len(names) == s["done"] == f["images"].shape[0] == f["results/otsu"].shape[0]
        assert f.attrs["stopped_early"].decode().startswith(f"stopped by SIGUSR1: {s['done']} of {N_PNG}")
        row = {n.decode(): i for i, n in enumerate(r["names"][:])}
        for k, n in enumerate(names):
            assert np.array_equal(f["images"][k], r["images"][row[n]]), n
            assert f["results/otsu"][k] == r["results/otsu"][row[n]]
    assert not no_tessera_left()


def test_list_mode_directory_output_keeps_complete_files_only(tmp_path):
    make_pngs(tmp_path / "imgs")
    p = launch(3, ["run", "-i", "imgs", "-o", "out/", "--format", "tiff", "-p", "tv_denoise weight=0.1 max_iter=200",
                   "--threads", 1, "--stats", "s.json", "--quiet"], tmp_path)
    wait_for(lambda: (tmp_path / "out").exists() and len(list((tmp_path / "out").glob("*.tif"))) >= 5, p)
    rc, out, err, _ = stop(p, signal.SIGUSR1)
    assert rc == STOPPED, err
    s = json.loads((tmp_path / "s.json").read_text())
    files = sorted((tmp_path / "out").iterdir())
    assert len(files) == s["done"] and all(f.suffix == ".tif" for f in files)  # no .partial left behind
    assert "the images done are in out/" in err
    import cv2
    for f in files:
        assert cv2.imread(str(f), cv2.IMREAD_UNCHANGED).shape == (256, 256)
