"""Job files (INI) set the same options as the command line; the command
line wins; mistakes are named by file, section and key. --stats and
--trace write valid JSON."""
import json
import os
import subprocess

import pytest
import tifffile

from conftest import TESSERA, make_image, run, write_tiff

JOBS = os.path.join(os.path.dirname(__file__), "..", "..", "jobs")


def test_job_file_equals_command_line(tmp_path):
    write_tiff(tmp_path / "img.tif", make_image(300, 400, "u16", 3))
    (tmp_path / "job.ini").write_text(
        "[input]\ninput = img.tif\n[output]\noutput = out.tif\ncompression = zstd\n"
        "[pipeline]\npipeline = gaussian sigma=1.5\n   | median size=3\nboundary = wrap\n"
        "[partition]\ntile = 64\nout_tile = 32\n[run]\nthreads = 2\nquiet = true\n")
    # run from elsewhere: paths resolve against the job file
    subprocess.run([TESSERA, "run", str(tmp_path / "job.ini")], check=True, cwd="/")
    run("run", "-i", tmp_path / "img.tif", "-o", tmp_path / "cli.tif", "-p",
        "gaussian sigma=1.5 | median size=3", "--boundary", "wrap", "--tile", 64, "--out-tile", 32,
        "--compression", "zstd", "--quiet")
    assert (tmp_path / "out.tif").read_bytes() == (tmp_path / "cli.tif").read_bytes()


def test_command_line_wins(tmp_path):
    write_tiff(tmp_path / "img.tif", make_image(64, 64, "u8", 1))
    (tmp_path / "job.ini").write_text(
        "[input]\ninput = img.tif\n[output]\noutput = out.tif\n[pipeline]\npipeline = invert\n")
    run("run", tmp_path / "job.ini", "-p", "threshold value=100", "-o", tmp_path / "other.tif", "--quiet")
    assert not (tmp_path / "out.tif").exists()
    got = tifffile.imread(tmp_path / "other.tif")
    assert set(got.ravel().tolist()) <= {0, 255}


@pytest.mark.parametrize("text,needles", [
    ("[pipeline]\npipline = sobel\n", ["unknown key 'pipline' in [pipeline]", "pipeline, boundary, cval"]),
    ("[partition]\npipeline = sobel\n", ["'pipeline' belongs in [pipeline]"]),
    ("[nowhere]\nfoo = 1\n", ["unknown section [nowhere]"]),
    ("[partition]\ntile = big\n", ["[partition] tile", "big", "integer"]),
    ("[output]\nforce = maybe\n", ["force", "maybe", "true or false"]),
    ("this is not ini\n", [":1: not a valid INI line"]),
])
def test_bad_job_file(tmp_path, text, needles):
    job = tmp_path / "job.ini"
    job.write_text(text)
    p = run("run", job, "-i", "synth:32x32", "-o", tmp_path / "o.tif", check=False)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and str(job) in lines[0], p.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert not (tmp_path / "o.tif").exists()


def test_missing_job_file(tmp_path):
    p = run("run", tmp_path / "none.ini", check=False)
    assert p.returncode == 2 and "none.ini: cannot open the job file" in p.stderr


def test_stats_and_trace(tmp_path):
    stats, trace = tmp_path / "s.json", tmp_path / "t.json"
    run("run", "-i", "synth:500x300", "-o", tmp_path / "o.tif", "-p", "box size=3", "--tile", 64,
        "--threads", 2, "--stats", stats, "--trace", trace, "--quiet")
    s = json.loads(stats.read_text())
    assert s["tasks"] == 8 * 5 and s["width"] == 500 and s["ranks"][0]["tasks"] == 40
    t = json.loads(trace.read_text())
    ev = [e for e in t["traceEvents"] if e["ph"] == "X"]
    # one read, compute and write per task
    for phase in ("read", "compute", "write"):
        tasks = sorted(e["args"]["task"] for e in ev if e["name"] == phase)
        assert tasks == list(range(40)), phase
    assert all(e["dur"] >= 0 and e["ts"] >= 0 for e in ev)


@pytest.mark.parametrize("job", ["synthetic-smooth-u16.ini", "rgb-gray-edges.ini"])
def test_shipped_jobs_validate(tmp_path, job):
    """The example jobs parse and validate (run on a small override)."""
    out = tmp_path / "o.tif"
    run("run", os.path.join(JOBS, job), "-i", "synth:300x200:u8:3" if "rgb" in job else "synth:300x200:u16",
        "-o", out, "--stats", tmp_path / "s.json", "--trace", tmp_path / "t.json", "--quiet")
    assert out.exists()
