"""List mode's image sinks: tessera's own PNG encoder (Sub filter, a
deflate of literals and runs) writes files that cv2 and a chunk-by-chunk
reading of the PNG specification decode to the pipeline's exact pixels, for every kind of
image PNG holds; --compression-level reaches PNG, TIFF and HDF5 outputs
and a level a format cannot take is refused before any work."""
import os
import struct
import subprocess
import zlib

import cv2
import h5py
import numpy as np
import pytest
import tifffile

from conftest import run

KINDS = [("u8", 1), ("u8", 2), ("u8", 3), ("u8", 4), ("u16", 1), ("u16", 3)]


def image(kind, channels, h=37, w=53, seed=1):
    rng = np.random.default_rng(seed)
    hi = 255 if kind == "u8" else 65535
    a = rng.integers(0, hi + 1, (h, w, channels), dtype=np.uint8 if kind == "u8" else np.uint16)
    a[h // 3:, : w // 2] = a[h // 3, 0]  # flat areas too, where the filter makes zeros
    return a[:, :, 0] if channels == 1 else a


def parse_png(path):
    """The image by the PNG specification: chunks with their CRCs, one
    zlib stream over the IDATs, every row's filter undone."""
    b = open(path, "rb").read()
    assert b[:8] == b"\x89PNG\r\n\x1a\n"
    at, idat, head, types = 8, b"", None, []
    while at < len(b):
        n, = struct.unpack(">I", b[at:at + 4])
        kind, data = b[at + 4:at + 8], b[at + 8:at + 8 + n]
        crc, = struct.unpack(">I", b[at + 8 + n:at + 12 + n])
        assert zlib.crc32(kind + data) == crc, kind
        types.append(kind)
        if kind == b"IHDR":
            head = struct.unpack(">IIBBBBB", data)
        elif kind == b"IDAT":
            idat += data
        at += 12 + n
    assert types[0] == b"IHDR" and types[-1] == b"IEND" and at == len(b)
    w, h, depth, color, _, _, interlace = head
    ch = {0: 1, 4: 2, 2: 3, 6: 4}[color]
    bpp = ch * depth // 8
    raw = zlib.decompress(idat)
    assert len(raw) == h * (1 + w * bpp) and interlace == 0
    rows, prev = [], bytearray(w * bpp)
    for y in range(h):
        f, line = raw[y * (1 + w * bpp)], bytearray(raw[y * (1 + w * bpp) + 1:(y + 1) * (1 + w * bpp)])
        for i in range(len(line)):
            left = line[i - bpp] if i >= bpp else 0
            up, ul = prev[i], prev[i - bpp] if i >= bpp else 0
            pred = {0: 0, 1: left, 2: up, 3: (left + up) // 2}.get(f)
            if f == 4:
                p = left + up - ul
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - ul)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else ul
            line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    a = np.frombuffer(b"".join(rows), dtype=">u2" if depth == 16 else np.uint8).reshape(h, w, ch)
    return a.astype(np.uint16 if depth == 16 else np.uint8), f


@pytest.mark.parametrize("kind,channels", KINDS)
def test_png_sink_writes_the_exact_pixels(tmp_path, kind, channels):
    (tmp_path / "in").mkdir()
    a = image(kind, channels)
    tifffile.imwrite(tmp_path / "in" / "a.tif", a, photometric="rgb" if channels >= 3 else "minisblack",
                     extrasamples=[2] if channels in (2, 4) else None)
    run("run", "--input", tmp_path / "in", "--output", f"{tmp_path}/out/", "--format", "png", "--pipeline",
        "invert", "--quiet")
    want = (255 if kind == "u8" else 65535) - a
    got, last_filter = parse_png(tmp_path / "out" / "a.png")
    assert got.dtype == want.dtype and np.array_equal(got.reshape(want.shape), want)
    assert last_filter == 1  # Sub, as cv2.imwrite
    if channels != 2:  # cv2 has no gray + alpha; it holds colour as BGR(A)
        back = cv2.imread(str(tmp_path / "out" / "a.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(back if channels < 3 else back[:, :, [2, 1, 0, 3][:channels]], want)


def test_compression_level_reaches_every_sink(tmp_path):
    (tmp_path / "in").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "in" / f"im{i}.png"), image("u8", 3, 96, 128, seed=i))
    sizes, files = {}, {}
    for level in (0, 1, 9):
        out = f"{tmp_path}/png{level}/"
        run("run", "--input", tmp_path / "in", "--output", out, "--format", "png", "--pipeline", "grayscale",
            "--compression-level", level, "--quiet")
        sizes[level] = sum(os.path.getsize(out + n) for n in os.listdir(out))
        files[level] = [open(out + f"im{i}.png", "rb").read() for i in range(3)]
        got = [parse_png(out + f"im{i}.png")[0] for i in range(3)]
        if level:
            assert all(np.array_equal(g, ref) for g, ref in zip(got, first))
        else:
            first = got
    # 0 stores; 1 (literals and runs) and 9 (LZ77) are other streams
    assert sizes[0] > max(sizes[1], sizes[9]) and files[1] != files[9], sizes
    # HDF5 images: the level is the datasets' deflate level, and any zlib reads them
    for level in (1, 9):
        run("run", "--input", tmp_path / "in", "--output", tmp_path / f"o{level}.h5", "--pipeline", "grayscale",
            "--compression-level", level, "--quiet")
        with h5py.File(tmp_path / f"o{level}.h5", "r") as f:
            assert f["images"].compression_opts == level
            assert np.array_equal(f["images"][0], first[0][:, :, 0])
    # TIFF files: zstd at 1 and 19 (smaller), unpacked by libtiff's tiffcp for tifffile
    zsizes = []
    for level in (1, 19):
        out = tmp_path / f"tif{level}"
        run("run", "--input", tmp_path / "in", "--output", f"{out}/", "--format", "tiff", "--compression", "zstd",
            "--compression-level", level, "--pipeline", "grayscale", "--quiet")
        zsizes.append(os.path.getsize(out / "im0.tif"))
        subprocess.run(["tiffcp", "-c", "none", out / "im0.tif", out / "plain.tif"], check=True)
        assert np.array_equal(tifffile.imread(out / "plain.tif"), first[0][:, :, 0])
    assert zsizes[1] < zsizes[0], zsizes


@pytest.mark.parametrize("args,msg", [
    (["--format", "png", "--compression-level", 12], "--compression-level 12: deflate takes 0 to 9"),
    (["--format", "tiff", "--compression", "lzw", "--compression-level", 3], "lzw has no level"),
    (["--format", "jpeg", "--compression-level", 3], "JPEG takes --jpeg-quality"),
])
def test_a_level_the_format_cannot_take_is_refused(tmp_path, args, msg):
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "a.png"), image("u8", 3))
    p = run("run", "--input", tmp_path / "in", "--output", f"{tmp_path}/out/", "--pipeline", "invert", *args,
            check=False)
    assert p.returncode == 2 and msg in p.stderr, p.stderr
    assert not os.path.exists(tmp_path / "out" / "a.png")


def test_tile_mode_tiff_takes_the_level(tmp_path):
    out = {}
    for level in (1, 9):
        out[level] = tmp_path / f"o{level}.tif"
        run("run", "-i", "synth:512x512", "-o", out[level], "-p", "gaussian sigma=1", "--compression", "deflate",
            "--compression-level", level, "--quiet")
    a, b = tifffile.imread(out[1]), tifffile.imread(out[9])
    # the level reaches the tiles: 1 is literals and runs, 9 LZ77 (on a
    # blurred image after the predictor 1 is the smaller: 95360 against 100712)
    assert np.array_equal(a, b) and out[1].read_bytes() != out[9].read_bytes()


def write_png(path, a, filters, idat_size=997, depth=8, spoil=None):
    """A PNG written by hand, row filters as given (cycled), the zlib stream
    cut into IDATs of idat_size bytes; spoil='crc' flips an IDAT's CRC."""
    h, w = a.shape[:2]
    ch = 1 if a.ndim == 2 else a.shape[2]
    raw_rows = a.astype(">u2").tobytes() if depth == 16 else a.tobytes()
    bpp, row = ch * depth // 8, w * ch * depth // 8
    out, prev = b"", bytes(row)
    for y in range(h):
        line, f = raw_rows[y * row:(y + 1) * row], filters[y % len(filters)]
        enc = bytearray(row)
        for i in range(row):
            left = line[i - bpp] if i >= bpp else 0
            up, ul = prev[i], prev[i - bpp] if i >= bpp else 0
            p = left + up - ul
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - ul)
            paeth = left if pa <= pb and pa <= pc else up if pb <= pc else ul
            enc[i] = (line[i] - [0, left, up, (left + up) // 2, paeth][f]) & 0xFF
        out += bytes([f]) + bytes(enc)
        prev = line
    z = zlib.compress(out, 6)

    def chunk(kind, data, bad=False):
        crc = zlib.crc32(kind + data) ^ (1 if bad else 0)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
    color = {1: 0, 2: 4, 3: 2, 4: 6}[ch]
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0))
    png += chunk(b"tEXt", b"Comment\x00made by hand")
    for k in range(0, len(z), idat_size):
        png += chunk(b"IDAT", z[k:k + idat_size], bad=spoil == "crc" and k == 0)
    open(path, "wb").write(png + chunk(b"IEND", b""))


@pytest.mark.parametrize("kind,channels", [("u8", 3), ("u8", 4), ("u16", 1), ("u8", 2)])
def test_every_png_filter_decodes(tmp_path, kind, channels):
    """Rows filtered None, Sub, Up, Average and Paeth, the stream over many
    IDATs, an ancillary chunk between: decoded to the same pixels as cv2."""
    (tmp_path / "in").mkdir()
    a = image(kind, channels, h=41, w=29, seed=3)
    write_png(tmp_path / "in" / "f.png", a, [0, 1, 2, 3, 4, 4, 3, 2, 1], depth=16 if kind == "u16" else 8)
    if channels != 2:
        back = cv2.imread(str(tmp_path / "in" / "f.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(back if channels < 3 else back[:, :, [2, 1, 0, 3][:channels]], a)  # the file is right
    run("run", "--input", tmp_path / "in", "--output", f"{tmp_path}/out/", "--format", "png", "--pipeline",
        "invert", "--quiet")
    got, _ = parse_png(tmp_path / "out" / "f.png")
    assert np.array_equal(got.reshape(a.shape), (255 if kind == "u8" else 65535) - a)


def test_a_png_with_a_bad_crc_fails_as_libpng_says(tmp_path):
    (tmp_path / "in").mkdir()
    a = image("u8", 3, h=20, w=20)
    write_png(tmp_path / "in" / "bad.png", a, [1], spoil="crc")
    write_png(tmp_path / "in" / "good.png", a, [1])
    p = run("run", "--input", tmp_path / "in", "--output", f"{tmp_path}/out/", "--format", "png", "--pipeline",
            "invert", check=False)
    assert p.returncode == 3, p.stderr
    assert "bad.png" in p.stderr and "CRC" in p.stderr, p.stderr
    assert os.path.exists(tmp_path / "out" / "good.png") and not os.path.exists(tmp_path / "out" / "bad.png")


def test_list_names_never_reach_outside_the_output(tmp_path):
    """An @list line "../b.png" (or "/abs/c.png") names an input, not a place
    to write: its output lands inside the output, its ".." as "__"."""
    import cv2
    (tmp_path / "in" / "sub").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "in" / "sub" / "a.png"), np.full((20, 30), 5, np.uint8))
    cv2.imwrite(str(tmp_path / "b.png"), np.full((40, 30), 9, np.uint8))
    before = (tmp_path / "b.png").read_bytes()
    (tmp_path / "in" / "list.txt").write_text(f"sub/a.png\n../b.png\n{tmp_path}/b.png\n")
    out = tmp_path / "out"
    run("run", "-i", f"@{tmp_path}/in/list.txt", "-o", f"{out}/", "--format", "png", "-p", "invert", "--quiet")
    assert (tmp_path / "b.png").read_bytes() == before  # the input, untouched
    got = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert got == ["__/b.png", "sub/a.png", str(tmp_path / "b.png")[1:]], got
    assert (cv2.imread(str(out / "__" / "b.png"), cv2.IMREAD_UNCHANGED) == 255 - 9).all()
