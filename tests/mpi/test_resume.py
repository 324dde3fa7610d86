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
import zlib

import h5py
import numpy as np
import pytest

from conftest import TESSERA, run, store_files

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


def pids_of(marker):
    """The processes whose command line names marker, read from /proc (no
    pgrep to fork: the kill must land while the run is still going)."""
    me, found = os.getpid(), []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != me:
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(d))
            except OSError:
                pass
    return found


def kill_all(proc, marker):
    """SIGKILL mpirun and every rank at once (their command lines name the
    output). A run that ended before the kill is a failed test, not a
    resume of a finished output."""
    for pid in [proc.pid, *pids_of(marker)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"the run ended (status {proc.returncode}) before the kill"
    t = time.monotonic()
    while pids_of(marker):
        assert time.monotonic() - t < 10, "processes survived SIGKILL"
        time.sleep(0.05)


def journal_tasks(path):
    try:
        return sum(1 for l in open(path, "rb") if l.startswith(b"task ") and l.endswith(b"\n"))  # whole lines
    except FileNotFoundError:
        return 0


def snapshots(path):
    """The journal's whole snapshot records, in order: (K, bytes) for each
    "snap K LEN CRC #LINECRC" line followed by LEN bytes whose CRC-32 is
    CRC and a newline. What follows a torn record is not trusted."""
    data, at, out = open(path, "rb").read(), 0, []
    while (e := data.find(b"\n", at)) >= 0:
        line, start, at = data[at:e], at, e + 1
        if line.startswith((b"snap ", b"rec ")):
            num, n, crc = line.split(b" #")[0].split()[1:4]
            body = data[at:at + int(n)]
            if len(body) < int(n) or data[at + int(n):at + int(n) + 1] != b"\n" or zlib.crc32(body) != int(crc, 16):
                break
            at += int(n) + 1
            if line.startswith(b"snap "):
                out.append((int(num), at - start))
    return out


def snapshot_tasks(path):
    """The task count of the journal's last whole snapshot (0 if none): what
    a pyramid's resume replays. A SIGKILL during the checkpoint's one write
    can leave its task lines whole and its snapshot cut short (a write to a
    file stops at a page boundary on a fatal signal); the tasks after the
    last whole snapshot are then redone."""
    s = snapshots(path)
    return s[-1][0] if s else 0


def replayable_tasks(path):
    """What a resume replays: a job that keeps snapshots (a pyramid whose upper
    levels the owner assembles) up to its last whole one, any other its whole
    task lines."""
    data = open(path, "rb").read()
    return snapshot_tasks(path) if data.startswith(b"snap ") or b"\nsnap " in data else journal_tasks(path)


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


def stop_after(tmp_path, out, tasks, *extra):
    """One process writing out with `extra`, stopped by SIGUSR1 once `tasks`
    tasks are journaled: status 75, leftovers kept."""
    journal = tmp_path / (out.name + ".journal")
    p = launch(0, args_for(out, SLOW, *extra, "--checkpoint-tasks", EVERY), tmp_path)
    wait_until(lambda: journal_tasks(journal) >= tasks, p)
    p.send_signal(signal.SIGUSR1)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 75, err
    return journal


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


PYR = ["--pyramid"]  # tasks of one output tile: every level above 0 is upper tiles' tasks


@pytest.fixture(scope="module")
def pyr_refs(tmp_path_factory):
    d = tmp_path_factory.mktemp("pyrref")
    out = {}
    for layout, comp in [("ome", "deflate"), ("cog", "deflate"), ("cog", "none")]:  # the same name: OME-XML names
        (d / layout / comp).mkdir(parents=True)                                     # the image after its file
        run(*args_for(d / layout / comp / "out.tif", SLOW, *PYR, "--layout", layout, "--compression", comp))
        out[layout, comp] = (d / layout / comp / "out.tif").read_bytes()
    return out


@pytest.mark.parametrize("layout,np_,comp", [("ome", 0, "deflate"), ("ome", 3, "deflate"), ("cog", 3, "deflate"),
                                             ("cog", 0, "none")])  # an uncompressed COG writes tiles in place
def test_pyramid_sigkill_then_resume_is_byte_identical(tmp_path, pyr_refs, layout, np_, comp):
    """The pyramid's upper tiles are tasks too (computed by the workers, fed
    by the owner with the pieces the tasks below return): a SIGKILL loses
    nothing, since each checkpoint keeps the pieces gathered so far (snap)."""
    out, journal = tmp_path / "out.tif", tmp_path / "out.tif.journal"
    threads = ["--threads", 1] if np_ else ["--threads", 2]
    args = [*PYR, "--layout", layout, "--compression", comp, *threads]
    p = launch(np_, args_for(out, SLOW, *args, "--checkpoint-tasks", EVERY), tmp_path)
    wait_until(lambda: journal_tasks(journal) >= TASKS // 2, p)
    kill_all(p, str(out))
    journaled = snapshot_tasks(journal)
    assert journaled >= journal_tasks(journal) - EVERY  # at most the torn checkpoint's
    r = launch(np_, args_for(out, SLOW, *args, "--resume", "--stats", tmp_path / "s.json"), tmp_path)
    _, err = r.communicate(timeout=300)
    assert r.returncode == 0, err
    assert out.read_bytes() == pyr_refs[layout, comp]
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["tasks"] > TASKS  # the grid's and the upper tiles'
    assert s["resumed"] == journaled and s["computed"] == s["tasks"] - journaled


@pytest.mark.parametrize("torn", [False, True], ids=["stopped", "torn"])
def test_pyramid_stop_then_resume(tmp_path, pyr_refs, torn):
    """SIGUSR1 stops a pyramid with status 75; --resume replays what was
    journaled. With a tile that no longer checks out, the snapshot's pieces
    (which describe the last checkpoint exactly) cannot be used: nothing is
    replayed. Either way the file is the uninterrupted run's."""
    out, journal = tmp_path / "out.tif", tmp_path / "out.tif.journal"
    p = launch(0, args_for(out, SLOW, *PYR, "--layout", "ome", "--compression", "deflate", "--checkpoint-tasks", EVERY),
               tmp_path)
    wait_until(lambda: journal_tasks(journal) >= TASKS // 3, p)
    p.send_signal(signal.SIGUSR1)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 75, err
    journaled = journal_tasks(journal)
    task = next(l for l in journal.read_bytes().split(b"\n") if l.startswith(b"task "))
    off = int(task.split()[3])  # the first tile's offset: "task T N OFF SIZE CRC"
    if torn:
        with open(tmp_path / "out.tif.partial", "r+b") as f:
            f.seek(off)
            b = f.read(1)
            f.seek(off)
            f.write(bytes([b[0] ^ 0xFF]))
    r = subprocess.run([TESSERA, *map(str, args_for(out, SLOW, *PYR, "--layout", "ome", "--compression", "deflate",
                                                    "--resume", "--stats", tmp_path / "s.json"))],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == pyr_refs["ome", "deflate"]
    assert json.loads((tmp_path / "s.json").read_text())["resumed"] == (0 if torn else journaled) and journaled > 0


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


def test_stopped_cog_is_not_taken_for_a_cog(tmp_path, pyr_refs):
    """A stopped COG's kept .partial has its IFDs after the data and tiles
    missing: its structural metadata says KNOWN_INCOMPATIBLE_EDITION=YES,
    as GDAL marks a COG it has edited out of the layout, so gdalinfo no
    longer reports LAYOUT=COG and tessera info says so. The resumed file is
    the uninterrupted run's, a COG again."""
    gdal = pytest.importorskip("osgeo.gdal")
    cog = [*PYR, "--layout", "cog", "--compression", "deflate"]
    out, partial, journal = stopped_run(tmp_path, SLOW, *cog)
    assert b"\nKNOWN_INCOMPATIBLE_EDITION=YES\n" in partial.read_bytes()[:512]
    assert gdal.Open(str(partial)).GetMetadataItem("LAYOUT", "IMAGE_STRUCTURE") is None
    assert "edited out of GDAL's COG layout" in run("info", partial).stdout
    resume(tmp_path, out, SLOW, *cog)
    assert out.read_bytes() == pyr_refs["cog", "deflate"]
    assert gdal.Open(str(out)).GetMetadataItem("LAYOUT", "IMAGE_STRUCTURE") == "COG"


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


def test_hdf5_pyramid_resumes_with_identical_datasets(tmp_path):
    ref = tmp_path / "ref.h5"
    run(*args_for(ref, SLOW, "--compression", "deflate", "--pyramid"))
    out = tmp_path / "out.h5"
    args = ["--compression", "deflate", "--pyramid", "--threads", 1]
    p = launch(3, args_for(out, SLOW, *args, "--checkpoint-tasks", EVERY), tmp_path)
    wait_until(lambda: journal_tasks(tmp_path / "out.h5.journal") >= TASKS // 2, p)
    kill_all(p, str(out))
    j = replayable_tasks(tmp_path / "out.h5.journal")
    r = launch(3, args_for(out, SLOW, *args, "--resume", "--stats", tmp_path / "s.json"), tmp_path)
    _, err = r.communicate(timeout=300)
    assert r.returncode == 0, err
    assert json.loads((tmp_path / "s.json").read_text())["resumed"] == j
    with h5py.File(out, "r") as a, h5py.File(ref, "r") as b:
        names = ["image"] + [f"pyramid/{k}" for k in b["pyramid"]]
        assert len(names) == 6 and sorted(a["pyramid"]) == sorted(b["pyramid"])
        for n in names:
            assert np.array_equal(a[n][:], b[n][:]), n
            assert dict(a[n].attrs) == dict(b[n].attrs), n


# ---- list mode ------------------------------------------------------------------

N_LIST = 300
LIST_PIPE = "tv_denoise weight=0.1 max_iter=200 | otsu | stats"


@pytest.fixture(scope="module")
def list_inputs(tmp_path_factory):
    """300 PNGs (one corrupt, one missing from the list) and the uninterrupted reference."""
    import cv2
    d = tmp_path_factory.mktemp("list")
    rng = np.random.default_rng(8)
    names = []
    for i in range(N_LIST):
        f = d / f"im{i:04d}.png"
        if i == 17:
            f.write_bytes(b"not a png")
        else:
            cv2.imwrite(str(f), rng.integers(0, 256, (128 + i % 7, 160), dtype=np.uint8))
        names.append(str(f))
    names.append(str(d / "missing.png"))
    (d / "list.txt").write_text("\n".join(names) + "\n")
    run("run", "-i", f"@{d}/list.txt", "-o", d / "ref.h5", "-p", LIST_PIPE, "--quiet", check=False)
    return d


def read_h5(path):
    with h5py.File(path, "r") as f:
        out = {"attrs": {k: v for k, v in f.attrs.items()}}
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = (obj[()], dict(obj.attrs))
        f.visititems(visit)
        return out


def same_h5(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if k == "attrs":
            assert a[k] == b[k]
            continue
        (va, aa), (vb, ab) = a[k], b[k]
        assert aa == ab, k
        assert np.array_equal(va, vb) if va.dtype.kind not in "OV" else list(va) == list(vb), k


def journal_records(path):
    """Records the journal holds whole: `rec INDEX LEN CRC`, LEN bytes whose
    CRC-32 is CRC, then a newline. A SIGKILL inside the write of a record
    that spans pages can leave its head without all its bytes (the kernel
    checks for fatal signals between pages); that one is not a record, and
    a resume redoes it."""
    import zlib
    try:
        data = open(path, "rb").read()
    except FileNotFoundError:
        return 0
    n, at = 0, 0
    while True:
        at = data.find(b"\nrec ", at)
        if at < 0:
            return n
        end = data.find(b"\n", at + 1)
        if end < 0:
            return n
        head = data[at + 1:end].split()
        size, crc = int(head[2]), int(head[3][:8], 16)
        body = data[end + 1:end + 1 + size]
        if len(body) < size or zlib.crc32(body) != crc or data[end + 1 + size:end + 2 + size] != b"\n":
            return n
        n, at = n + 1, end + 1 + size


# list mode has no statistics pass (global kernels act per image): early,
# middle, late, while checkpointing after every input, and in one process
@pytest.mark.parametrize("np_,at,every", [(3, 0.05, 8), (3, 0.5, 8), (3, 0.9, 8), (3, 0.4, 1), (0, 0.5, 8)],
                         ids=["mpi-early", "mpi-middle", "mpi-late", "mpi-checkpointing", "one-process"])
def test_list_mode_sigkill_then_resume(tmp_path, list_inputs, np_, at, every):
    out = tmp_path / "out.h5"
    args = ["run", "-i", f"@{list_inputs}/list.txt", "-o", out, "-p", LIST_PIPE, "--threads", 1, "--quiet",
            "--checkpoint-tasks", every]
    p = launch(np_, args, tmp_path)
    journal = tmp_path / "out.h5.journal"
    wait_until(lambda: journal_records(journal) >= max(1, int(N_LIST * at)), p)
    kill_all(p, str(out))
    j = journal_records(journal)
    r = launch(np_, args + ["--resume", "--stats", tmp_path / "s.json"], tmp_path)
    _, err = r.communicate(timeout=300)
    assert r.returncode == 3, err  # some inputs failed, as in the uninterrupted run
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["resumed"] == j and s["computed"] == N_LIST + 1 - j
    same_h5(read_h5(out), read_h5(list_inputs / "ref.h5"))  # images, names, values, /failed, attributes
    assert not journal.exists() and not (tmp_path / "out.h5.partial").exists()


def test_list_mode_torn_record_is_redone(tmp_path, list_inputs):
    out = tmp_path / "out.h5"
    args = ["run", "-i", f"@{list_inputs}/list.txt", "-o", out, "-p", LIST_PIPE, "--threads", 1, "--quiet",
            "--checkpoint-tasks", 4]
    p = launch(0, args, tmp_path)
    journal = tmp_path / "out.h5.journal"
    wait_until(lambda: journal_records(journal) >= N_LIST // 3, p)
    p.send_signal(signal.SIGUSR1)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 75 and "run again with --resume" in err, err
    j = journal_records(journal)
    data = journal.read_bytes()
    journal.write_bytes(data[:len(data) - 40])  # the last record loses its tail
    r = subprocess.run([TESSERA, *map(str, args + ["--resume", "--stats", tmp_path / "s.json"])], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 3, r.stderr
    assert json.loads((tmp_path / "s.json").read_text())["resumed"] == j - 1
    same_h5(read_h5(out), read_h5(list_inputs / "ref.h5"))


def test_list_mode_directory_output_resumes(tmp_path, list_inputs):
    ref, out = tmp_path / "ref", tmp_path / "out"
    base = ["run", "-i", f"@{list_inputs}/list.txt", "-p", "tv_denoise weight=0.1 max_iter=200", "--format", "tiff",
            "--threads", 1, "--quiet"]
    run(*base, "-o", f"{ref}/", check=False)
    p = launch(3, base + ["-o", f"{out}/", "--checkpoint-tasks", 8], tmp_path)
    wait_until(lambda: journal_records(tmp_path / "out.journal") >= N_LIST // 2, p)
    kill_all(p, str(out))
    r = launch(3, base + ["-o", f"{out}/", "--resume", "--stats", tmp_path / "s.json"], tmp_path)
    _, err = r.communicate(timeout=300)
    assert r.returncode == 3, err
    assert json.loads((tmp_path / "s.json").read_text())["resumed"] >= N_LIST // 2
    files = lambda d: sorted(str(f.relative_to(d)) for f in d.rglob("*") if f.is_file())
    got = files(out)
    assert got == files(ref) and len(got) == N_LIST - 1 and not [g for g in got if g.endswith(".partial")]
    for name in got:
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    assert not (tmp_path / "out.journal").exists()


def test_no_journal_when_checkpoints_are_off(tmp_path, list_inputs):
    """--checkpoint-seconds 0 without --checkpoint-tasks: no journal at all
    (nothing held in memory for it either), the same output."""
    out = tmp_path / "out.h5"
    p = launch(0, ["run", "-i", f"@{list_inputs}/list.txt", "-o", out, "-p", LIST_PIPE, "--threads", 1, "--quiet",
                   "--checkpoint-seconds", 0], tmp_path)
    wait_until(lambda: (tmp_path / "out.h5.partial").exists(), p)
    assert not (tmp_path / "out.h5.journal").exists()
    p.communicate(timeout=300)
    assert p.returncode == 3
    same_h5(read_h5(out), read_h5(list_inputs / "ref.h5"))


# ---- Zarr stores: resumed in place (the chunk files are the data) ----

@pytest.fixture(scope="module")
def zarr_refs(tmp_path_factory):
    d = tmp_path_factory.mktemp("zarrref")
    out = {}
    for name, extra in [("flat", []), ("pyramid", PYR)]:
        (d / name).mkdir()
        run(*args_for(d / name / "out.zarr", SLOW, "--compression", "blosc-zstd", *extra))
        out[name] = store_files(d / name / "out.zarr")
    return out


@pytest.mark.parametrize("name,np_,io", [("flat", 0, "root"), ("flat", 3, "direct"), ("pyramid", 3, "root"),
                                         ("pyramid", 3, "direct")])
def test_zarr_sigkill_then_resume_in_place(tmp_path, zarr_refs, name, np_, io):
    """SIGKILL mid-run: OUT.zarr.partial/ and the journal stay; --resume
    checks the journaled chunks where they lie (no copy) and computes the
    rest: the store equals the uninterrupted run's, file for file."""
    out, journal = tmp_path / "out.zarr", tmp_path / "out.zarr.journal"
    extra = ["--compression", "blosc-zstd", "--threads", 1 if np_ else 2, "--io", io,
             *(PYR if name == "pyramid" else [])]
    p = launch(np_, args_for(out, SLOW, *extra, "--checkpoint-tasks", EVERY), tmp_path)
    wait_until(lambda: journal_tasks(journal) >= TASKS // 2, p)
    kill_all(p, str(out))
    assert (tmp_path / "out.zarr.partial").is_dir() and not out.exists()
    assert not (tmp_path / "out.zarr.partial.prev").exists()  # a store is not set aside
    journaled = replayable_tasks(journal)
    r = launch(np_, args_for(out, SLOW, *extra, "--resume", "--stats", tmp_path / "s.json"), tmp_path)
    _, err = r.communicate(timeout=300)
    assert r.returncode == 0, err
    got = store_files(out)
    assert not [k for k in got if ".tmp" in k]  # a killed worker's temporary chunk is not part of the store
    assert got == zarr_refs[name]
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["resumed"] == journaled and s["computed"] == s["tasks"] - journaled
    assert not (tmp_path / "out.zarr.partial").exists() and not journal.exists()


@pytest.mark.parametrize("damage", ["none", "flipped", "missing"])
def test_zarr_stop_keeps_a_readable_store_and_resume_checks_chunks(tmp_path, zarr_refs, damage):
    """SIGUSR1: status 75, the partial store opens in zarr-python (chunks
    not yet written read as the fill value); a damaged journaled chunk is
    found by its CRC and everything from its task on is computed again."""
    import zarr
    out = tmp_path / "out.zarr"
    journal = stop_after(tmp_path, out, TASKS // 3, "--compression", "blosc-zstd")
    part = tmp_path / "out.zarr.partial"
    a = zarr.open_group(str(part), mode="r")["0"][:]
    assert a.shape == (8192, 8192) and a[:TILE, :TILE].any() and not a[-TILE:, -TILE:].any()
    lines = [l.split() for l in open(journal, "rb") if l.startswith(b"task ")]
    k = len(lines) // 2
    n = int(lines[k][3])  # a chunk's "offset" is its number: with one chunk per task, row-major
    chunk = part / "0" / str(n // (8192 // TILE)) / str(n % (8192 // TILE))
    if damage == "flipped":
        b = bytearray(chunk.read_bytes())
        b[len(b) // 2] ^= 0xFF
        chunk.write_bytes(bytes(b))
    elif damage == "missing":
        chunk.unlink()
    s = resume(tmp_path, out, SLOW, "--compression", "blosc-zstd")
    assert s["resumed"] == (len(lines) if damage == "none" else k)
    assert store_files(out) == zarr_refs["flat"]


SHARD = ["--zarr-format", 3, "--shard", 4, "--compression", "zstd"]


@pytest.fixture(scope="module")
def shard_ref(tmp_path_factory):
    out = {}
    for name, extra in [("pyramid", PYR), ("flat", [])]:
        d = tmp_path_factory.mktemp("shardref")
        run(*args_for(d / "out.zarr", SLOW, *SHARD, *extra))
        out[name] = store_files(d / "out.zarr")
    return out


def test_pyramid_journal_drops_superseded_snapshots(tmp_path, pyr_refs):
    """Every checkpoint's snapshot supersedes the one before: the journal is
    rewritten without the superseded ones (OUT.journal.tmp, synced, renamed
    over) before they weigh twice the rest, so it stays the size of its
    task lines and one snapshot, not one snapshot per checkpoint. With a
    checkpoint after every task, stopped midway: hundreds of checkpoints,
    at most 8 snapshots in the file, the superseded ones at most twice the
    rest; and the resume from that journal is byte-identical."""
    out, journal = tmp_path / "out.tif", tmp_path / "out.tif.journal"
    args = [*PYR, "--layout", "ome", "--compression", "deflate", "--threads", 2]
    p = launch(0, args_for(out, SLOW, *args, "--checkpoint-tasks", 1, "--stats", tmp_path / "stop.json"), tmp_path)
    wait_until(lambda: journal_tasks(journal) >= TASKS // 2, p)
    p.send_signal(signal.SIGUSR1)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 75, err
    checkpoints = json.loads((tmp_path / "stop.json").read_text())["checkpoints"]
    snaps, size = snapshots(journal), journal.stat().st_size
    assert checkpoints >= TASKS // 2 and 1 <= len(snaps) <= 8, (checkpoints, len(snaps))
    dead = sum(n for _, n in snaps[:-1])
    assert dead <= 2 * (size - dead) and size < checkpoints * snaps[-1][1] / 20, (dead, size, checkpoints, snaps[-1])
    assert not (tmp_path / "out.tif.journal.tmp").exists()
    journaled = snapshot_tasks(journal)
    s = resume(tmp_path, out, SLOW, *args)
    assert out.read_bytes() == pyr_refs["ome", "deflate"]
    assert s["resumed"] == journaled


@pytest.mark.parametrize("np_", [0, 3])
def test_sharded_store_sigkill_then_resume(tmp_path, shard_ref, np_):
    """A shard's chunks are placed only in rank 0's memory until its index is
    written: each checkpoint writes them beside it (KEY.idx). Killed midway,
    the resume adopts what the journal lists, cuts each shard back to its
    checkpoint (or rebuilds it from the adopted chunks) and fills on: the
    same files as an uninterrupted run."""
    out, journal = tmp_path / "out.zarr", tmp_path / "out.zarr.journal"
    extra = [*SHARD, *PYR, "--threads", 1 if np_ else 2]
    p = launch(np_, args_for(out, SLOW, *extra, "--checkpoint-tasks", EVERY), tmp_path)
    wait_until(lambda: journal_tasks(journal) >= TASKS // 2, p)
    kill_all(p, str(out))
    part = tmp_path / "out.zarr.partial"
    assert any(f.name.endswith(".idx") for f in part.rglob("*"))  # shards being filled left their places
    journaled = replayable_tasks(journal)
    r = launch(np_, args_for(out, SLOW, *extra, "--resume", "--stats", tmp_path / "s.json"), tmp_path)
    _, err = r.communicate(timeout=300)
    assert r.returncode == 0, err
    assert store_files(out) == shard_ref["pyramid"]
    assert json.loads((tmp_path / "s.json").read_text())["resumed"] == journaled


def test_sharded_store_damaged_chunk_is_rebuilt(tmp_path, shard_ref):
    """SIGUSR1, then a byte flipped inside a completed shard: the replay stops
    at the task of that chunk, and the shards holding chunks of later tasks
    are written anew from the chunks adopted before it: the same files."""
    out = tmp_path / "out.zarr"
    journal = stop_after(tmp_path, out, TASKS // 2, *SHARD)
    journaled = journal_tasks(journal)
    part = tmp_path / "out.zarr.partial"
    shard = part / "0" / "c" / "0" / "0"  # the first shard: complete by now
    assert shard.exists() and not (part / "0" / "c" / "0" / "0.idx").exists()
    b = bytearray(shard.read_bytes())
    b[len(b) // 3] ^= 0xFF
    shard.write_bytes(bytes(b))
    s = resume(tmp_path, out, SLOW, *SHARD)
    assert 0 < s["resumed"] < journaled  # trusted up to the damaged chunk's task
    assert store_files(out) == shard_ref["flat"]
    assert not [k for k in store_files(out) if k.endswith((".idx", ".tmp"))]


def test_sharded_store_resume_with_other_shards_is_refused(tmp_path):
    """--shard is part of the job: a resume with another is refused, the leftovers untouched."""
    out = tmp_path / "out.zarr"
    journal = stop_after(tmp_path, out, TASKS // 4, *SHARD)
    before = store_files(tmp_path / "out.zarr.partial")
    other = [a if a != 4 else 2 for a in SHARD]
    r = run(*args_for(out, SLOW, *other, "--resume"), check=False)
    assert r.returncode == 2 and "shard" in r.stderr, r.stderr
    assert store_files(tmp_path / "out.zarr.partial") == before and journal.exists()
