"""Tiled output is byte-identical to untiled output (one tile larger than
the image): tile sizes that do not divide the image, a halo larger than the
tile, every boundary mode, a 3-kernel pipeline, u8/u16/f32, 1 and 3
channels, stripped and tiled inputs, and any thread count. Pipelines also
match the chained references."""
import subprocess

import numpy as np
import pytest
import scipy.ndimage as ndi
import tifffile

from conftest import make_image, run, write_tiff

H, W = 217, 300
PIPE3 = "gaussian sigma=1.5 | median size=3 | sobel"


def tiles(tmp_path, a, pipeline, tile_sizes, *extra, input_tile=None, threads=(2,)):
    """Run the pipeline untiled and with each tile size; return the outputs."""
    src = tmp_path / "in.tif"
    write_tiff(src, a, tile=input_tile)
    outs = {}
    for t in [4096, *tile_sizes]:
        for th in threads:
            dst = tmp_path / f"out-{t}-{th}.tif"
            run("run", "-i", src, "-o", dst, "-p", pipeline, "--tile", t, "--threads", th,
                "--quiet", *extra)
            outs[(t, th)] = tifffile.imread(dst)
    return outs


def assert_all_identical(outs):
    ref_key = next(iter(outs))
    ref = outs[ref_key]
    for k, o in outs.items():
        assert o.dtype == ref.dtype and o.shape == ref.shape, k
        assert o.tobytes() == ref.tobytes(), f"{k} differs from untiled {ref_key}"


@pytest.mark.parametrize("ch", [1, 3])
@pytest.mark.parametrize("dtype", ["u8", "u16", "f32"])
def test_three_kernels_tiles_not_dividing(tmp_path, dtype, ch):
    a = make_image(H, W, dtype, ch, seed=1)
    assert_all_identical(tiles(tmp_path, a, PIPE3, [48, 96, 112], input_tile=64))


@pytest.mark.parametrize("dtype", ["u8", "f32"])
def test_halo_larger_than_tile(tmp_path, dtype):
    a = make_image(H, W, dtype, 1, seed=2)
    outs = tiles(tmp_path, a, "gaussian sigma=8", [16], threads=(1, 2))
    assert_all_identical(outs)


@pytest.mark.parametrize("mode", ["reflect", "mirror", "nearest", "constant", "wrap"])
@pytest.mark.parametrize("dtype,ch", [("u8", 1), ("u16", 3), ("f32", 1)])
def test_every_boundary_mode(tmp_path, mode, dtype, ch):
    a = make_image(H, W, dtype, ch, seed=3)
    pipe = "gaussian sigma=2 | convolve weights=0,1,0,1,-4,1,0,2,0 | open size=3"
    outs = tiles(tmp_path, a, pipe, [32, 80], "--boundary", mode, "--cval", "7")
    assert_all_identical(outs)


def test_stripped_input_and_threads(tmp_path):
    """Strips (rows per strip 5) and one tall strip read in bands; 1-3 threads."""
    a = make_image(H, W, "u8", 3, seed=4)
    outs = []
    for rps in (5, H):
        src = tmp_path / f"strips{rps}.tif"
        tifffile.imwrite(src, a, photometric="rgb", rowsperstrip=rps, compression="zlib")
        for t, th in ((4096, 1), (48, 3), (64, 2)):
            dst = tmp_path / f"o{rps}-{t}-{th}.tif"
            run("run", "-i", src, "-o", dst, "-p", PIPE3, "--tile", t, "--threads", th, "--quiet")
            outs.append(tifffile.imread(dst))
    assert all(o.tobytes() == outs[0].tobytes() for o in outs)


def test_output_file_bytes_identical_across_threads(tmp_path):
    """Same tiling, any thread count: the file itself is byte-identical."""
    a = make_image(H, W, "u16", 1, seed=5)
    src = tmp_path / "in.tif"
    write_tiff(src, a)
    files = []
    for th in (1, 2, 4):
        dst = tmp_path / f"o{th}.tif"
        run("run", "-i", src, "-o", dst, "-p", PIPE3, "--tile", 32, "--threads", th,
            "--compression", "deflate", "--quiet")
        files.append(dst.read_bytes())
    assert files[0] == files[1] == files[2]


def test_deflate_output_identical_run_to_run(tmp_path):
    """The same job run again writes the same bytes: a deflate encoder must
    not depend on where its buffers happen to lie. ISA-L 2.30's level 1
    did (a different but valid tokenisation in about one run in 50 here,
    with 1 thread too, as address randomisation moves the buffers), so
    this runs the job 60 times on 1 and 2 threads, into TIFF (literals and
    runs) and HDF5 (libdeflate's LZ77) in turn."""
    ref = {}
    for i in range(60):
        ext, threads = ("tif", "h5")[i % 2], 1 + (i // 2) % 2
        dst = tmp_path / f"o{threads}.{ext}"
        run("run", "-i", "synth:3001x1203", "-o", dst, "-p", "gaussian sigma=2", "--compression", "deflate",
            "--threads", threads, "--force", "--quiet")
        got = dst.read_bytes()
        assert got == ref.setdefault(ext, got), f"run {i} ({ext}, {threads} threads) wrote other bytes"


def chain(a, mode, cval=0.0):
    """scipy's chained reference for gaussian sigma=1.5 | median size=3 | sobel
    on float data."""
    p = a.astype(np.float64)
    p = ndi.gaussian_filter(p, 1.5, truncate=4.0, mode=mode, cval=cval)
    p = ndi.median_filter(p, 3, mode=mode, cval=cval)
    return np.hypot(ndi.sobel(p, 0, mode=mode, cval=cval), ndi.sobel(p, 1, mode=mode, cval=cval))


@pytest.mark.parametrize("mode", ["reflect", "mirror", "wrap"])
def test_pipeline_equals_chained_scipy(tmp_path, mode):
    """For reflect, mirror and wrap, padding once equals padding before every
    kernel (the symmetric kernels commute with those extensions), so a tiled
    pipeline equals scipy's calls chained on the whole image."""
    a = make_image(H, W, "f32", 1, seed=6)
    outs = tiles(tmp_path, a, PIPE3, [48], "--boundary", mode)
    for o in outs.values():
        np.testing.assert_allclose(o, chain(a, mode), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode,npmode", [("nearest", "edge"), ("constant", "constant")])
def test_pipeline_pads_input_once(tmp_path, mode, npmode):
    """nearest and constant: the boundary is applied once, to the input, as
    dask's map_overlap does; the reference pads once with numpy and crops."""
    a = make_image(H, W, "f32", 1, seed=7)
    outs = tiles(tmp_path, a, PIPE3, [48], "--boundary", mode, "--cval", "0.3")
    r = int(4 * 1.5 + 0.5) + 1 + 1  # the pipeline halo: gaussian + median + sobel
    kw = {"constant_values": 0.3} if mode == "constant" else {}
    padded = np.pad(a.astype(np.float64), r, mode=npmode, **kw)
    ref = chain(padded, "reflect")[r:-r, r:-r]  # the mode no longer matters inside
    for o in outs.values():
        np.testing.assert_allclose(o, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bigtiff", [False, True])
@pytest.mark.parametrize("compression", [None, "zlib", "lzma", "lzw", "packbits"])
@pytest.mark.parametrize("layout", ["tiled", "strips"])
def test_input_variants_give_the_same_result(tmp_path, bigtiff, compression, layout):
    """Classic or BigTIFF, tiled or stripped, five codecs: the same pixels in
    give the same bytes out. tifffile writes what it can without imagecodecs
    (not in Debian 12); libtiff's tiffcp writes lzw and packbits."""
    a = make_image(H, W, "u16", 3, seed=8)
    plain = tmp_path / "plain.tif"
    write_tiff(plain, a)
    src = tmp_path / "variant.tif"
    if compression in ("lzw", "packbits"):
        geometry = ["-t", "-w", "32", "-l", "32"] if layout == "tiled" else ["-s", "-r", "7"]
        subprocess.run(["tiffcp", "-c", compression, *geometry, *(["-8"] if bigtiff else []),
                        str(plain), str(src)], check=True)
    else:
        tifffile.imwrite(src, a, photometric="rgb", bigtiff=bigtiff, compression=compression,
                         tile=(32, 32) if layout == "tiled" else None,
                         rowsperstrip=7 if layout == "strips" else None)
    text = run("info", src).stdout
    assert ("tiles 32x32" if layout == "tiled" else "strips") in text
    assert ("BigTIFF" if bigtiff else "classic") in text
    outs = []
    for s in (plain, src):
        dst = tmp_path / f"{s.stem}.out.tif"
        run("run", "-i", s, "-o", dst, "-p", PIPE3, "--tile", 64, "--quiet")
        outs.append(tifffile.imread(dst))
    assert outs[0].tobytes() == outs[1].tobytes()


@pytest.mark.parametrize("comp", ["deflate", "lzw", "zstd"])
def test_reads_its_own_compressed_output(tmp_path, comp):
    """tessera's lzw/zstd/deflate output read back by tessera: invert twice
    is the identity."""
    a = make_image(H, W, "f32", 1, seed=9)
    src = tmp_path / "in.tif"
    write_tiff(src, a)
    mid, back = tmp_path / "mid.tif", tmp_path / "back.tif"
    run("run", "-i", src, "-o", mid, "-p", "invert", "--compression", comp, "--tile", 64, "--quiet")
    run("run", "-i", mid, "-o", back, "-p", "invert", "--tile", 32, "--quiet")
    np.testing.assert_array_equal(tifffile.imread(back), (1 - (1 - a)).astype(np.float32))


# ---- HDF5 in tile mode --------------------------------------------------------

def write_h5(path, a, layout):
    import h5py
    with h5py.File(path, "w") as f:
        if layout == "chunked":
            f.create_dataset("g/image", data=a, chunks=(40, 56) + a.shape[2:], compression="gzip")
        else:
            f.create_dataset("g/image", data=a)


@pytest.mark.parametrize("layout", ["chunked", "contiguous"])
@pytest.mark.parametrize("dtype,ch", [("u8", 1), ("u16", 3), ("f32", 1), ("u8", 4)])
def test_hdf5_image_in_and_out_equal_the_tiff_path(tmp_path, dtype, ch, layout):
    """FILE.h5:/dataset in (2-D, or 3-D channels last; chunked+gzip or
    contiguous) and out (chunked by the output tile, deflate): the pixels
    are byte-identical to the TIFF path's, tiled or not; h5dump reads it."""
    import h5py
    a = make_image(H, W, dtype, ch, seed=21)
    write_h5(tmp_path / "in.h5", a, layout)
    write_tiff(tmp_path / "in.tif", a, tile=64)
    pipe = "gaussian sigma=1.5 | median size=3"
    run("run", "-i", tmp_path / "in.tif", "-o", tmp_path / "ref.tif", "-p", pipe, "--tile", 4096, "--quiet")
    want = tifffile.imread(tmp_path / "ref.tif")
    for tile in (4096, 96):
        out = tmp_path / f"out{tile}.h5"
        run("run", "-i", f"{tmp_path}/in.h5:/g/image", "-o", f"{out}:/result", "-p", pipe, "--tile", tile,
            "--out-tile", 32, "--compression", "deflate", "--quiet")
        with h5py.File(out) as f:
            d = f["result"]
            assert d.chunks == (32, 32) + a.shape[2:] and d.compression == "gzip"
            assert d.dtype == want.dtype and d[()].tobytes() == want.tobytes(), tile
        assert subprocess.run(["h5dump", "-H", str(out)], capture_output=True).returncode == 0
    assert not list(tmp_path.glob("*.partial"))


def test_hdf5_default_dataset_and_errors(tmp_path):
    """FILE.h5 alone writes /image; a stack, a missing dataset, a file named
    without its dataset, an existing output and a TIFF-only compression are
    refused with messages naming the file."""
    import h5py
    a = make_image(50, 70, "u8", 1)
    write_h5(tmp_path / "in.h5", a, "chunked")
    src = f"{tmp_path}/in.h5:/g/image"
    run("run", "-i", src, "-o", tmp_path / "o.h5", "-p", "invert", "--quiet")
    with h5py.File(tmp_path / "o.h5") as f:
        assert np.array_equal(f["image"][()], 255 - a)
    before = (tmp_path / "o.h5").read_bytes()
    p = run("run", "-i", src, "-o", tmp_path / "o.h5", "-p", "invert", check=False)
    assert p.returncode == 2 and "o.h5: output exists; use --force" in p.stderr
    assert (tmp_path / "o.h5").read_bytes() == before
    with h5py.File(tmp_path / "in.h5", "a") as f:
        f["stack"] = np.zeros((3, 20, 30), np.uint8)
    p = run("info", f"{tmp_path}/in.h5:/stack", check=False)  # `run` takes a stack as list mode's input
    assert p.returncode != 0 and "tile mode reads one image, H x W or H x W x C with C <= 4" in p.stderr
    for spec, msg in [(f"{tmp_path}/in.h5:/nope", "in.h5: no dataset /nope"),
                      (f"{tmp_path}/in.h5", "an HDF5 file: name the image's dataset")]:
        p = run("run", "-i", spec, "-o", tmp_path / "x.tif", "-p", "invert", check=False)
        assert p.returncode != 0 and msg in p.stderr, p.stderr
    p = run("run", "-i", src, "-o", tmp_path / "y.h5", "-p", "invert", "--compression", "lzw", check=False)
    assert p.returncode != 0 and "HDF5 output takes --compression deflate or none" in p.stderr
    assert not (tmp_path / "y.h5").exists() and not (tmp_path / "x.tif").exists()
