"""Bad input gets one clear message naming the file and the problem, a
non-zero exit, and no output file (not even a .partial)."""
import resource
import struct
import subprocess

import cv2
import numpy as np
import pytest
import tifffile

from conftest import TESSERA, make_image, run, write_tiff


def raw_tiff(path, width, height, bps=8, spp=1, sample_format=1, data=b""):
    """A minimal classic little-endian stripped TIFF, header by hand, so the
    tests can say things tifffile refuses to write."""
    entries = [
        (256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, bps), (259, 3, 1, 1),
        (262, 3, 1, 1), (273, 4, 1, 0), (277, 3, 1, spp), (278, 4, 1, max(height, 1)),
        (279, 4, 1, len(data)), (339, 3, 1, sample_format),
    ]
    ifd_at = 8
    data_at = ifd_at + 2 + 12 * len(entries) + 4
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_at) + struct.pack("<H", len(entries)))
    for tag, typ, count, value in entries:
        if tag == 273:
            value = data_at
        fmt = "<HHIHH" if typ == 3 else "<HHII"
        out += struct.pack(fmt, tag, typ, count, value, 0) if typ == 3 else struct.pack(fmt, tag, typ, count, value)
    out += struct.pack("<I", 0) + data
    path.write_bytes(bytes(out))


def expect_failure(tmp_path, args, *needles, status=1):
    out = tmp_path / "out.tif"
    p = run("run", *args, "-o", out, "--quiet", check=False)
    assert p.returncode == status, (p.returncode, p.stderr)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected one message, got: {p.stderr!r}"
    for n in needles:
        assert str(n) in lines[0], (n, lines[0])
    assert not out.exists() and not (tmp_path / "out.tif.partial").exists()
    return lines[0]


@pytest.fixture
def good(tmp_path):
    p = tmp_path / "good.tif"
    write_tiff(p, make_image(40, 50, "u8", 1), tile=16)
    return p


def test_not_a_tiff(tmp_path):
    bad = tmp_path / "notes.tif"
    bad.write_text("this is not an image\n")
    expect_failure(tmp_path, ["-i", bad, "-p", "invert"], bad, "not a TIFF")


def test_png_is_named(tmp_path):
    bad = tmp_path / "photo.tif"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    expect_failure(tmp_path, ["-i", bad, "-p", "invert"], bad, "not a TIFF", "PNG")


def test_empty_file(tmp_path):
    bad = tmp_path / "empty.tif"
    bad.write_bytes(b"")
    expect_failure(tmp_path, ["-i", bad, "-p", "invert"], bad, "empty")


def test_truncated_tiff(tmp_path):
    src = tmp_path / "whole.tif"
    write_tiff(src, make_image(200, 300, "u8", 1), tile=32)
    bad = tmp_path / "cut.tif"
    data = src.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    expect_failure(tmp_path, ["-i", bad, "-p", "invert"], bad, "truncated")


def test_corrupt_tile_data(tmp_path):
    """Deflate data damaged in the middle: found while decoding, mid-run."""
    src = tmp_path / "z.tif"
    tifffile.imwrite(src, make_image(256, 256, "u8", 1), tile=(64, 64), compression="zlib")
    data = bytearray(src.read_bytes())
    with tifffile.TiffFile(src) as t:
        page = t.pages[0]
        off, n = page.dataoffsets[5], page.databytecounts[5]
    data[off : off + n] = bytes([0xAB]) * n
    src.write_bytes(bytes(data))
    expect_failure(tmp_path, ["-i", src, "-p", "gaussian sigma=1", "--tile", "64"], src, "tile")


@pytest.mark.parametrize("dtype,desc", [(np.int16, "16-bit signed integer"),
                                        (np.float64, "64-bit float"),
                                        (np.uint32, "32-bit unsigned integer")])
def test_unsupported_sample_format(tmp_path, dtype, desc):
    bad = tmp_path / "odd.tif"
    tifffile.imwrite(bad, np.zeros((8, 8), dtype))
    expect_failure(tmp_path, ["-i", bad, "-p", "invert"], bad, "unsupported sample format", desc)


def test_planar_separate(tmp_path):
    bad = tmp_path / "planar.tif"
    tifffile.imwrite(bad, np.zeros((3, 8, 8), np.uint8), photometric="rgb", planarconfig="separate")
    expect_failure(tmp_path, ["-i", bad, "-p", "invert"], bad, "planar")


@pytest.mark.parametrize("w,h", [(0, 10), (10, 0)])
def test_zero_width_or_height(tmp_path, w, h):
    bad = tmp_path / "zero.tif"
    raw_tiff(bad, w, h)
    msg = expect_failure(tmp_path, ["-i", bad, "-p", "invert"], bad)
    assert "width" in msg or "height" in msg or "zero" in msg.lower(), msg


def test_byte_size_overflows(tmp_path):
    bad = tmp_path / "huge.tif"
    raw_tiff(bad, 0xFFFFFFFF, 0xFFFFFFFF, bps=32, spp=4, sample_format=3)
    msg = expect_failure(tmp_path, ["-i", bad, "-p", "invert"], bad)
    assert "overflow" in msg or "too large" in msg, msg


def test_missing_input(tmp_path):
    missing = tmp_path / "nowhere.tif"
    expect_failure(tmp_path, ["-i", missing, "-p", "invert"], missing, "No such file")


def test_output_directory_missing(tmp_path, good):
    out = tmp_path / "no" / "such" / "dir" / "out.tif"
    p = run("run", "-i", good, "-o", out, "-p", "invert", "--quiet", check=False)
    assert p.returncode == 1
    assert p.stderr.strip() == f"tessera: {out}: cannot create output: No such file or directory"


def test_in_place_with_force(tmp_path, good):
    """Input and output the same file: safe, because the output is renamed
    over the input only when complete."""
    before = tifffile.imread(good)
    run("run", "-i", good, "-o", good, "-p", "invert", "--quiet", "--force")
    np.testing.assert_array_equal(tifffile.imread(good), 255 - before)
    assert not (tmp_path / "good.tif.partial").exists()


def test_existing_output_kept_without_force(tmp_path, good):
    out = tmp_path / "out.tif"
    out.write_bytes(b"precious")
    p = run("run", "-i", good, "-o", out, "-p", "invert", "--quiet", check=False)
    assert p.returncode == 2
    assert str(out) in p.stderr and "--force" in p.stderr
    assert out.read_bytes() == b"precious"
    assert not (tmp_path / "out.tif.partial").exists()
    run("run", "-i", good, "-o", out, "-p", "invert", "--quiet", "--force")
    np.testing.assert_array_equal(tifffile.imread(out), 255 - tifffile.imread(good))


@pytest.mark.parametrize("pipeline,needles", [
    ("gausian sigma=2", ["unknown kernel 'gausian'", "gaussian", "median", "sobel"]),
    ("gaussian sigm=2", ["unknown parameter 'sigm'", "sigma"]),
    ("sobel size=3", ["sobel", "no parameters"]),
    ("gaussian sigma=0", ["sigma=0", "out of range", "> 0"]),
    ("gaussian sigma=abc", ["sigma=abc", "not a number"]),
    ("gaussian", ["sigma", "required"]),
    ("median size=4", ["size=4", "odd"]),
    ("median size=99", ["size=99", "out of range", "63"]),
    ("convolve weights=1,2,3,4", ["4 values", "odd square"]),
    ("invert | | sobel", ["empty stage"]),
    ("scale dtype=u32", ["dtype=u32", "same|u8|u16|f32"]),
])
def test_bad_pipeline(tmp_path, good, pipeline, needles):
    expect_failure(tmp_path, ["-i", good, "-p", pipeline], *needles, status=2)


@pytest.mark.parametrize("args,needle", [
    (["--tile", "100"], "multiple of 16"),
    (["--tile", "64", "--out-tile", "48"], "divides"),
    (["--boundary", "bounce"], "reflect"),
    (["--compression", "gzip"], "deflate"),
    (["--threads", "0"], "--threads"),
])
def test_bad_options(tmp_path, good, args, needle):
    expect_failure(tmp_path, ["-i", good, "-p", "invert", *args], needle, status=2)


def test_jpeg_needs_u8(tmp_path):
    src = tmp_path / "f.tif"
    write_tiff(src, make_image(32, 32, "f32", 1))
    expect_failure(tmp_path, ["-i", src, "-p", "invert", "--compression", "jpeg"], "jpeg", "u8", status=2)


def test_info_describes_file(tmp_path):
    src = tmp_path / "i.tif"
    tifffile.imwrite(src, make_image(40, 50, "u16", 3), photometric="rgb", tile=(16, 16),
                     compression="zlib", bigtiff=True)
    text = run("info", src).stdout
    for n in ["50 x 40", "u16", "channels:  3", "BigTIFF", "tiles 16x16", "deflate"]:
        assert n in text, (n, text)
    bad = run("info", tmp_path / "none.tif", check=False)
    assert bad.returncode == 1 and "none.tif" in bad.stderr


def psnr(a, b):
    return 10 * np.log10(255.0**2 / np.mean((a.astype(float) - b) ** 2))


def test_jpeg_quality_is_used(tmp_path, good):
    got = {}
    for q in (30, 95):
        out = tmp_path / f"q{q}.tif"
        run("run", "-i", good, "-o", out, "-p", "invert", "--quiet", "--compression", "jpeg",
            "--jpeg-quality", q)
        got[q] = psnr(cv2.imread(str(out), cv2.IMREAD_UNCHANGED), 255 - tifffile.imread(good))
    assert got[95] > got[30] + 3, got


@pytest.mark.parametrize("comp", ["none", "deflate", "lzw", "zstd", "jpeg"])
def test_compressions_round_trip(tmp_path, good, comp):
    out = tmp_path / f"c-{comp}.tif"
    run("run", "-i", good, "-o", out, "-p", "invert", "--quiet", "--compression", comp)
    # tifffile needs imagecodecs (not in Debian 12) for lzw, zstd and jpeg;
    # OpenCV decodes them through its own libtiff
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED).astype(int)
    want = 255 - tifffile.imread(good).astype(int)
    if comp == "jpeg":  # lossy: quality 90 keeps PSNR well above 30 dB
        assert psnr(got, want) > 30
    else:
        np.testing.assert_array_equal(got, want)
    with tifffile.TiffFile(out) as t:
        assert t.is_bigtiff and t.pages[0].is_tiled


@pytest.mark.parametrize("name", ["big.h5", "big.tif"])
def test_output_past_the_file_size_limit(tmp_path, name):
    """Under a file-size limit (ulimit -f) the output outgrows: one message
    naming the file, status 1, nothing left. tessera ignores SIGXFSZ (the
    write fails instead of killing it), and libhdf5 does not shut down at
    exit, where it closed the failed file again and crashed (SIGSEGV)."""
    src = tmp_path / "in.tif"
    write_tiff(src, make_image(1024, 1024, "u8", 3), tile=256)
    cap = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
    p = subprocess.run([TESSERA, "run", "-i", src, "-o", tmp_path / name, "-p", "invert", "--quiet"],
                       preexec_fn=cap, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, (p.returncode, p.stderr)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and name in lines[0], p.stderr
    assert "File too large" in lines[0] or "file-size limit" in lines[0], lines[0]
    assert sorted(f.name for f in tmp_path.iterdir()) == ["in.tif"]
