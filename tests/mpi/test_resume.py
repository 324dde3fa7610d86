"""Nothing lost: a tile-mode run killed with SIGKILL (mpirun and every
rank) or stopped by a signal leaves OUT.partial and OUT.journal; --resume
finishes it, and the result is byte-identical to an uninterrupted run. The
work redone is at most one checkpoint interval of written tasks plus those
in flight; torn data or a torn journal line is detected and redone; a
changed job is refused; leftovers are never silently overwritten."""
import json
import os
import signal
import subprocess
import time

import h5py
import numpy as np
import pytest

from conftest import TESSERA, run

MPIEXEC = os.environ.get("MPIEXEC", "mpirun")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
SIZE = "8192x8192"
TILE = 256                 # = the output tile: one TIFF tile per task
TASKS = (8192 // TILE) ** 2
TILE_BYTES = TILE * TILE   # u8, uncompressed
HEADER = 16                # BigTIFF header; tiles follow in task order, the directory comes last
EVERY = 16                 # --checkpoint-tasks
SLOW = "gaussian sigma=30 | median size=9"
GLOBAL = "gaussian sigma=30 | median size=9 | equalize"


def args_for(out, pipe, *extra):
    return ["run", "-i", f"synth:{SIZE}", "-o", out, "-p", pipe, "--tile", TILE, "--quiet", *extra]


def launch(np_, args, cwd):
    cmd = [TESSERA, *map(str, args)]
    if np_:
        cmd = [MPIEXEC, "--oversubscribe", "-x", "OMP_WAIT_POLICY=passive", "-np", str(np_), *cmd]
    return subprocess.Popen(cmd, cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_all(proc, marker):
    """SIGKILL mpirun and every rank at once (their command lines name the output)."""
    subprocess.run(["pkill", "-KILL", "-f", marker])
    proc.kill()
    proc.communicate(timeout=30)
    t = time.monotonic()
    while subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 0:
        assert time.monotonic() - t < 10, "processes survived SIGKILL"
        time.sleep(0.05)


def journal_tasks(path):
    try:
        return sum(1 for l in open(path, "rb") if l.startswith(b"task "))
    except FileNotFoundError:
        return 0


def has_stats(path):
    try:
        return any(l.startswith(b"stats ") for l in open(path, "rb"))
    except FileNotFoundError:
        return False


def wait_until(cond, proc, timeout=60):
    t = time.monotonic()
    while not cond():
        assert proc.poll() is None, "the run ended before the kill:\n" + proc.communicate()[1]
        assert time.monotonic() - t < timeout
        time.sleep(0.005)


@pytest.fixture(scope="module")
def refs(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    run(*args_for(d / "slow.tif", SLOW))
    run(*args_for(d / "global.tif", GLOBAL))
    return {SLOW: (d / "slow.tif").read_bytes(), GLOBAL: (d / "global.tif").read_bytes()}


# (name, ranks, pipeline, --checkpoint-tasks, when to kill)
POINTS = [
    ("early", 3, SLOW, EVERY, lambda j, p: journal_tasks(j) >= 1),
    ("middle", 3, SLOW, EVERY, lambda j, p: journal_tasks(j) >= TASKS * 2 // 5),
    ("late", 3, SLOW, EVERY, lambda j, p: journal_tasks(j) >= TASKS * 17 // 20),
    ("checkpointing", 3, SLOW, 1, lambda j, p: journal_tasks(j) >= TASKS // 3),  # a checkpoint after every task
    ("stats-pass", 3, GLOBAL, EVERY, lambda j, p: os.path.exists(p) and time.sleep(0.3) is None),
    ("apply-pass", 3, GLOBAL, EVERY, lambda j, p: journal_tasks(j) >= TASKS // 2),
    ("one-process", 0, SLOW, EVERY, lambda j, p: journal_tasks(j) >= TASKS // 2),
]


@pytest.mark.parametrize("name,np_,pipe,every,when", POINTS, ids=[p[0] for p in POINTS])
def test_sigkill_then_resume_is_byte_identical(tmp_path, refs, name, np_, pipe, every, when):
    out = tmp_path / "out.tif"
    partial, journal = tmp_path / "out.tif.partial", tmp_path / "out.tif.journal"
    threads = ["--threads", 1] if np_ else ["--threads", 2]
    p = launch(np_, args_for(out, pipe, "--checkpoint-tasks", every, *threads), tmp_path)
    wait_until(lambda: when(str(journal), str(partial)), p)
    kill_all(p, str(out))
    assert not out.exists() and partial.exists() and journal.exists()
    if name == "stats-pass":
        assert journal_tasks(journal) == 0 and not has_stats(journal)
    if name == "apply-pass":
        assert has_stats(journal)  # the statistics pass's result was saved
    written = (partial.stat().st_size - HEADER) // TILE_BYTES  # tasks whose tile reached the file
    journaled = journal_tasks(journal)
    assert journaled <= written
    # resume (with MPI again where the run was MPI)
    r = launch(np_, args_for(out, pipe, "--resume", "--stats", tmp_path / "s.json", *threads), tmp_path)
    _, err = r.communicate(timeout=300)
    assert r.returncode == 0, err
    assert out.read_bytes() == refs[pipe]
    assert not partial.exists() and not journal.exists()
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["resumed"] == journaled and s["computed"] == TASKS - journaled
    # redone: what had reached the file but was not yet journaled, at most one interval
    assert written - s["resumed"] <= every, (written, s["resumed"])


def stopped_run(tmp_path, pipe=SLOW, *extra):
    """A run stopped by SIGUSR1 midway: OUT.partial and OUT.journal are left, journal complete."""
    out = tmp_path / "out.tif"
    p = launch(0, args_for(out, pipe, "--checkpoint-tasks", EVERY, *extra), tmp_path)
    wait_until(lambda: journal_tasks(tmp_path / "out.tif.journal") >= TASKS // 3, p)
    p.send_signal(signal.SIGUSR1)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 75, err
    assert "run again with --resume" in err
    return out, tmp_path / "out.tif.partial", tmp_path / "out.tif.journal"


def resume(tmp_path, out, pipe=SLOW, *extra):
    p = subprocess.run([TESSERA, *map(str, args_for(out, pipe, "--resume", "--stats", tmp_path / "s.json", *extra))],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    return json.loads((tmp_path / "s.json").read_text())


def test_stop_then_resume_loses_nothing(tmp_path, refs):
    out, partial, journal = stopped_run(tmp_path)
    j = journal_tasks(journal)
    s = resume(tmp_path, out)
    assert out.read_bytes() == refs[SLOW]
    assert s["resumed"] == j  # every task written before the stop was journaled at it


def test_torn_output_is_detected_and_redone(tmp_path, refs):
    out, partial, journal = stopped_run(tmp_path)
    j = journal_tasks(journal)
    # the last journaled task's tile loses its tail: its CRC no longer matches
    last = [l for l in open(journal, "rb") if l.startswith(b"task ")][-1].split()
    off, size = int(last[3]), int(last[4])
    with open(partial, "r+b") as f:
        f.truncate(off + size // 2)
    s = resume(tmp_path, out)
    assert s["resumed"] == j - 1 and s["computed"] == TASKS - j + 1
    assert out.read_bytes() == refs[SLOW]


def test_corrupt_tile_data_is_detected_and_redone(tmp_path, refs):
    out, partial, journal = stopped_run(tmp_path)
    lines = [l for l in open(journal, "rb") if l.startswith(b"task ")]
    k = len(lines) // 2
    off = int(lines[k].split()[3])
    with open(partial, "r+b") as f:  # one flipped byte in the middle task's tile
        f.seek(off + 100)
        b = f.read(1)
        f.seek(off + 100)
        f.write(bytes([b[0] ^ 0xFF]))
    s = resume(tmp_path, out)
    assert s["resumed"] == k  # trusted up to the bad one, then recomputed
    assert out.read_bytes() == refs[SLOW]


def test_torn_journal_line_is_not_trusted(tmp_path, refs):
    out, partial, journal = stopped_run(tmp_path)
    j = journal_tasks(journal)
    data = open(journal, "rb").read()
    cut = data.rstrip(b"\n").rfind(b"\n") + 1  # the last line ...
    open(journal, "wb").write(data[:cut + (len(data) - cut) // 2])  # ... half written
    s = resume(tmp_path, out)
    assert s["resumed"] == j - 1
    assert out.read_bytes() == refs[SLOW]


def test_changed_job_is_refused_and_leftovers_untouched(tmp_path):
    out, partial, journal = stopped_run(tmp_path)
    before = {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in (partial, journal)}
    other = SLOW.replace("sigma=30", "sigma=29")
    p = run(*args_for(out, other, "--resume"), check=False)
    assert p.returncode == 2
    assert "another job" in p.stderr and "pipeline: 'gaussian sigma=30" in p.stderr and "sigma=29" in p.stderr, p.stderr
    p = run(*args_for(out, SLOW, "--resume", "--tile", 512), check=False)
    assert p.returncode == 2 and "tile: '256' before, '512' now" in p.stderr, p.stderr
    assert {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in (partial, journal)} == before
    assert not out.exists()


def test_leftovers_need_resume_or_force(tmp_path, refs):
    out, partial, journal = stopped_run(tmp_path)
    before = partial.read_bytes()
    p = run(*args_for(out, SLOW), check=False)
    assert p.returncode == 2
    assert "--resume" in p.stderr and "--force" in p.stderr and "out.tif.partial" in p.stderr, p.stderr
    assert partial.read_bytes() == before
    p = run(*args_for(out, SLOW, "--force", "--stats", tmp_path / "s.json"))
    assert json.loads((tmp_path / "s.json").read_text())["resumed"] == 0  # started over
    assert out.read_bytes() == refs[SLOW] and not partial.exists() and not journal.exists()


def test_resume_refuses_while_the_run_is_alive(tmp_path):
    out = tmp_path / "out.tif"
    p = launch(0, args_for(out, SLOW, "--checkpoint-tasks", EVERY), tmp_path)
    wait_until(lambda: journal_tasks(tmp_path / "out.tif.journal") >= 1, p)
    q = run(*args_for(out, SLOW, "--resume"), check=False)
    p.send_signal(signal.SIGUSR1)
    p.communicate(timeout=60)
    assert q.returncode == 2 and "still writing it" in q.stderr, q.stderr


def test_hdf5_output_resumes_with_identical_datasets(tmp_path):
    ref = tmp_path / "ref.h5"
    run(*args_for(ref, GLOBAL, "--compression", "deflate"))
    out = tmp_path / "out.h5"
    p = launch(3, args_for(out, GLOBAL, "--compression", "deflate", "--checkpoint-tasks", EVERY, "--threads", 1),
               tmp_path)
    wait_until(lambda: journal_tasks(tmp_path / "out.h5.journal") >= TASKS // 3, p)
    kill_all(p, str(out))
    j = journal_tasks(tmp_path / "out.h5.journal")
    r = launch(3, args_for(out, GLOBAL, "--compression", "deflate", "--resume", "--threads", 1, "--stats",
                           tmp_path / "s.json"), tmp_path)
    _, err = r.communicate(timeout=300)
    assert r.returncode == 0, err
    assert json.loads((tmp_path / "s.json").read_text())["resumed"] == j
    with h5py.File(out, "r") as a, h5py.File(ref, "r") as b:
        assert np.array_equal(a["image"][:], b["image"][:])
        assert dict(a["image"].attrs) == dict(b["image"].attrs) and dict(a.attrs) == dict(b.attrs)
        assert a["image"].chunks == b["image"].chunks and a["image"].compression == b["image"].compression
