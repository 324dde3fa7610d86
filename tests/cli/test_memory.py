"""Streaming: peak RSS does not depend on the image size. A 32768 x 32768 u8
image (1 GiB) and a 16384 x 16384 one (256 MiB), same pipeline and tile
size: peak RSS within 10%."""
import subprocess
import sys

from conftest import TESSERA, run

PIPE = "gaussian sigma=2 | sobel"

# Linux keeps a process's peak RSS across exec, and a child forked from
# this test process starts from the parent's: a pytest grown to 300 MB
# after other tests made tessera "peak" at 300 MB. So tessera is started
# by a fresh, small interpreter, and that one reports its child's peak.
MEASURE = """
import os, sys
pid = os.fork()
if pid == 0:
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_rss_kib(args):
    """Run tessera and return the peak RSS of its process in KiB."""
    p = subprocess.run([sys.executable, "-c", MEASURE, TESSERA, *map(str, args)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return int(p.stdout)


def test_peak_rss_independent_of_image_size(tmp_path):
    rss = {}
    for side in (16384, 32768):
        src = tmp_path / f"in{side}.tif"
        dst = tmp_path / f"out{side}.tif"
        run("generate", "-o", src, "--size", f"{side}x{side}", "--tile", 1024, "--quiet")
        rss[side] = peak_rss_kib(["run", "-i", src, "-o", dst, "-p", PIPE, "--tile", 1024,
                                  "--threads", 2, "--quiet"])
        assert dst.stat().st_size > side * side  # the whole image was written
        src.unlink()
        dst.unlink()
    small, big = rss[16384], rss[32768]
    print(f"peak RSS: 16384^2 {small / 1024:.1f} MiB, 32768^2 {big / 1024:.1f} MiB")
    assert big <= 1.10 * small, rss
    # and it is small in absolute terms: far below the 1 GiB image
    assert big < 200 * 1024, rss
