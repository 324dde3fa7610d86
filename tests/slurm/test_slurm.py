"""The sbatch templates in slurm/ on a real one-node Slurm cluster
(slurmlocal.py): srun --mpi=pmix and mpirun inside the allocation give the
output of a local run, and a signal mid-run (what Slurm sends before a time
limit) stops every rank within seconds with status 75, no output under the
final name, and a job log that says what happened."""
import json
import os
import subprocess
import time

import h5py
import numpy as np
import pytest

from conftest import TESSERA, make_image, run, write_tiff
from slurmlocal import LocalSlurm

HERE = os.path.dirname(os.path.abspath(__file__))
SLURM_DIR = os.path.abspath(os.path.join(HERE, "..", "..", "slurm"))
MPIEXEC = os.environ.get("MPIEXEC", "mpirun")
# what a site's environment would provide: the tessera binary, and root
# allowed to run Open MPI (CI runs as root)
JOB_ENV = {"TESSERA": TESSERA, "MPIRUN": MPIEXEC, "OMPI_ALLOW_RUN_AS_ROOT": "1",
           "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
TEMPLATES = {"srun": os.path.join(SLURM_DIR, "tessera.sbatch"),
             "mpirun": os.path.join(SLURM_DIR, "tessera-mpirun.sbatch")}
PIPE = "gaussian sigma=2 | median size=3 | sobel | equalize"
STOPPED = 75


@pytest.fixture(scope="module")
def slurm():
    assert os.geteuid() == 0, "the Slurm tests start munged, slurmctld and slurmd: they need root"
    s = LocalSlurm().start()
    yield s
    s.stop()
    time.sleep(0.3)
    left = subprocess.run(["pgrep", "-f", TESSERA], capture_output=True, text=True).stdout.split()
    assert not [p for p in left if int(p) != os.getpid()], "tessera processes outlived the Slurm jobs"


def write_job(d, name, **sections):
    """A job file; its relative paths are relative to d."""
    text = "".join(f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in kv.items()) for s, kv in sections.items())
    (d / name).write_text(text)
    return d / name


def log_of(d, jobid):
    return (d / f"tessera-{jobid}.log").read_text()


@pytest.mark.parametrize("launcher", ["srun", "mpirun"])
def test_template_output_equals_a_local_run(slurm, tmp_path, launcher):
    write_tiff(tmp_path / "in.tif", make_image(600, 1000, "u8", 1, seed=4), tile=64)
    job = write_job(tmp_path, "edges.ini", input={"input": "in.tif"}, pipeline={"pipeline": PIPE},
                    partition={"tile": 128})
    run("run", job, "--output", tmp_path / "local.tif", "--quiet")
    # options after the job file override it: the output lands in the submit directory
    jobid = slurm.sbatch(TEMPLATES[launcher], job, "--output", "cluster.tif", cwd=tmp_path, env=JOB_ENV)
    j = slurm.wait(jobid, timeout=120)
    log = log_of(tmp_path, jobid)
    assert j["JobState"] == "COMPLETED" and j["ExitCode"] == "0:0", log
    assert (tmp_path / "cluster.tif").read_bytes() == (tmp_path / "local.tif").read_bytes()
    # the job log has the summary: two ranks, rank 0 and one worker
    assert "wrote cluster.tif: 1000x600" in log and "rank 1 (" in log and "done" in log.splitlines()[-1], log
    s = json.loads((tmp_path / f"tessera-{jobid}.stats.json").read_text())
    assert len(s["ranks"]) == 2 and s["done"] == s["tasks"] and s["stopped"] is None
    assert s["ranks"][1]["tasks"] > 0


def test_list_mode_job_under_srun(slurm, tmp_path):
    import cv2
    rng = np.random.default_rng(2)
    (tmp_path / "imgs").mkdir()
    for i in range(30):
        cv2.imwrite(str(tmp_path / "imgs" / f"im{i:02d}.png"), rng.integers(0, 256, (40 + i, 50, 3), dtype=np.uint8))
    job = write_job(tmp_path, "otsu.ini", input={"input": "imgs"}, output={"output": "table.h5", "images": "false"},
                    pipeline={"pipeline": "grayscale | otsu"})
    run("run", job, "--output", tmp_path / "local.h5", "--quiet")
    jobid = slurm.sbatch(TEMPLATES["srun"], job, cwd=tmp_path, env=JOB_ENV)
    j = slurm.wait(jobid, timeout=120)
    assert j["JobState"] == "COMPLETED", log_of(tmp_path, jobid)
    with h5py.File(tmp_path / "table.h5", "r") as a, h5py.File(tmp_path / "local.h5", "r") as b:
        assert list(a["names"][:]) == list(b["names"][:])
        assert np.array_equal(a["results/otsu"][:], b["results/otsu"][:])


@pytest.mark.parametrize("launcher", ["srun", "mpirun"])
def test_signal_mid_run_stops_every_rank_cleanly(slurm, tmp_path, launcher):
    # about 15 s of work on 2 cores: the signal lands well inside it
    job = write_job(tmp_path, "long.ini", input={"input": "synth:16384x16384"}, output={"output": "long.tif"},
                    pipeline={"pipeline": "gaussian sigma=30 | median size=9"}, partition={"tile": 256})
    # TESSERA_REQUEUE=0: the template stops after this allocation (the requeue test is below)
    jobid = slurm.sbatch(TEMPLATES[launcher], job, cwd=tmp_path, env=dict(JOB_ENV, TESSERA_REQUEUE="0"))
    slurm.wait(jobid, timeout=60, state="RUNNING")
    partial = tmp_path / "long.tif.partial"
    t = time.monotonic()
    while not (partial.exists() and partial.stat().st_size > 16 << 20):  # tiles are being written
        assert slurm.job(jobid)["JobState"] == "RUNNING", log_of(tmp_path, jobid)
        assert time.monotonic() - t < 60
        time.sleep(0.05)
    t = time.monotonic()
    if launcher == "srun":  # the step's tasks, at once (what --signal=USR1@T does)
        slurm.cmd("scancel", "--signal=USR1", jobid)
    else:  # only the batch shell, as --signal=B:USR1@T: the template forwards it to mpirun
        slurm.cmd("scancel", "--batch", "--signal=USR1", jobid)
    j = slurm.wait(jobid, timeout=30)
    took = time.monotonic() - t
    log = log_of(tmp_path, jobid)
    assert took < 10, f"{took:.1f} s\n{log}"
    assert j["ExitCode"] == f"{STOPPED}:0", (j["JobState"], j["ExitCode"], log)
    assert not (tmp_path / "long.tif").exists()
    assert partial.exists()
    lines = [l for l in log.splitlines() if "stopped early by SIGUSR1" in l]
    assert len(lines) == 1, log
    done, total = lines[0].split(": ", 2)[2].split(" tasks done")[0].split(" of ")
    assert 0 < int(done) < int(total) == 64 * 64, lines[0]
    assert f"kept as {tmp_path}/long.tif.partial; run again with --resume to finish {tmp_path}/long.tif" in lines[0]
    if launcher == "mpirun":
        assert "SIGUSR1 received, asking tessera to stop" in log, log
    assert "stopped early (time limit or signal); the work done is kept" in log.splitlines()[-1], log
    s = json.loads((tmp_path / f"tessera-{jobid}.stats.json").read_text())
    assert s["stopped"] == "SIGUSR1" and s["done"] == int(done)


LONG = "gaussian sigma=30 | median size=9 | equalize"


@pytest.fixture(scope="module")
def long_local(tmp_path_factory):
    """The long job's output, run locally without a stop: one for both launchers."""
    out = tmp_path_factory.mktemp("long") / "local.tif"
    run("run", "-i", "synth:12288x12288", "-o", out, "-p", LONG, "--tile", 256, "--quiet")
    return out.read_bytes()


@pytest.mark.parametrize("launcher", ["srun", "mpirun"])
def test_stopped_job_requeues_itself_and_completes(slurm, tmp_path, long_local, launcher):
    """The signal Slurm sends before a time limit, mid-run: tessera stops
    (75), the template requeues the job, the next start resumes, and the
    output equals an uninterrupted local run's."""
    # checkpoints by task count, so the journal grows at a pace that does not
    # depend on the machine's speed (at the default 10 s a fast machine ends
    # the apply pass before its first checkpoint, and there is nothing to wait for)
    job = write_job(tmp_path, "long.ini", input={"input": "synth:12288x12288"}, output={"output": "long.tif"},
                    pipeline={"pipeline": LONG}, partition={"tile": 256}, run={"checkpoint_tasks": 64})
    jobid = slurm.sbatch(TEMPLATES[launcher], job, cwd=tmp_path, env=JOB_ENV)
    slurm.wait(jobid, timeout=60, state="RUNNING")
    journal = tmp_path / "long.tif.journal"
    t = time.monotonic()
    while sum(1 for l in open(journal, "rb") if l.startswith(b"task ")) < 200 if journal.exists() else True:
        assert slurm.job(jobid)["JobState"] == "RUNNING", log_of(tmp_path, jobid)
        assert time.monotonic() - t < 120
        time.sleep(0.05)
    if launcher == "srun":
        slurm.cmd("scancel", "--signal=USR1", jobid)
    else:
        slurm.cmd("scancel", "--batch", "--signal=USR1", jobid)
    j = slurm.wait(jobid, timeout=300, state="COMPLETED")
    log = log_of(tmp_path, jobid)
    assert int(j["Restarts"]) == 1 and j["ExitCode"] == "0:0", (j, log)
    assert (tmp_path / "long.tif").read_bytes() == long_local
    assert not journal.exists() and not (tmp_path / "long.tif.partial").exists()
    # one log across both starts (--open-mode=append): the stop, the requeue, the resume
    assert "stopped early by SIGUSR1" in log and f"requeueing job {jobid} to resume" in log, log
    resumed = [l for l in log.splitlines() if "resumed:" in l]
    assert len(resumed) == 1 and int(resumed[0].split()[1]) >= 200, log
    assert log.splitlines()[-1].endswith("done"), log


def test_srun_without_pmi_is_refused_before_any_work(slurm, tmp_path):
    """srun with no PMI plugin starts processes that each see an MPI world
    of one: each would run the whole job alone and write the same output.
    tessera refuses at once, one message naming srun --mpi=pmix, and
    writes nothing; one task alone is a plain run."""
    out = tmp_path / "o.tif"
    args = [TESSERA, "run", "-i", "synth:512x512", "-o", out, "-p", "box size=3", "--quiet"]
    p = slurm.cmd("srun", "-n", "2", "--mpi=none", *args, check=False, timeout=60, cwd=tmp_path)
    assert p.returncode != 0, p.stdout + p.stderr
    assert p.stderr.count("srun --mpi=pmix") == 1 and "srun started 2 tasks" in p.stderr, p.stderr
    assert not out.exists() and not (tmp_path / "o.tif.partial").exists()
    assert "exit code 2" in p.stderr, p.stderr
    p = slurm.cmd("srun", "-n", "1", "--mpi=none", *args, check=False, timeout=60, cwd=tmp_path)
    assert p.returncode == 0 and out.exists(), p.stderr
