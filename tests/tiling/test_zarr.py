"""OME-Zarr in and out, checked by readers nobody here wrote.

- zarr-python (python3-zarr) reads every v2 store tessera writes: every
  level equals tessera's own TIFF pyramid of the same job, for u8, u16,
  f32 and RGB (channels as planes, axes c, y, x) and every compressor;
- the OME-NGFF 0.4 metadata follows the specification's rules, field by
  field: axes names, types and order, units only with a known pixel size,
  datasets largest first, one scale transform per level, the factors;
- the store is byte-identical for 1 and 2 threads, 3 ranks with --io root
  and 4 with --io direct, where the workers write their own chunks and
  rank 0 receives only the tiles' sizes;
- stores written by zarr-python (blosc, zlib, no compression, chunks not
  dividing the image, "/" and "." separators, RGB, a multiscales group)
  are read in tile mode as zarr-python decodes them;
- a worker that cannot reach the store stops the run with one message
  naming its rank, host and path; bad combinations and bad stores get one
  message and leave nothing behind.
"""
import json
import os
import shutil
import subprocess

import numcodecs
import numpy as np
import pytest
import tifffile
import zarr

from conftest import make_image, run, store_files as tree, write_tiff

MPIEXEC = os.environ.get("MPIEXEC", "mpirun")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1")
H, W = 1100, 1500  # odd edges at several levels
PIPE = "gaussian sigma=1.5"


def mpirun(n, *args, cwd=None, check=True):
    from conftest import TESSERA
    p = subprocess.run([MPIEXEC, "-x", "OMP_WAIT_POLICY=passive", "-np", str(n), TESSERA, *map(str, args)],
                       capture_output=True, text=True, env=ENV, timeout=600, cwd=cwd)
    if check:
        assert p.returncode == 0, p.stderr
    return p


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    d = tmp_path_factory.mktemp("zarr")
    out = {}
    for dt, ch in [("u8", 1), ("u16", 1), ("f32", 1), ("u8", 3)]:
        p = d / f"in-{dt}-{ch}.tif"
        write_tiff(p, make_image(H, W, dt, ch, seed=5), tile=256)
        out[(dt, ch)] = p
    return out


def tiff_levels(path):
    with tifffile.TiffFile(path) as t:
        return [lv.asarray() for lv in t.series[0].levels]


@pytest.mark.parametrize("dt,ch", [("u8", 1), ("u16", 1), ("f32", 1), ("u8", 3)])
@pytest.mark.parametrize("comp", ["none", "zlib", "zstd", "blosc-lz4", "blosc-zstd"])
def test_store_levels_equal_the_tiff_pyramid(tmp_path, src, dt, ch, comp):
    z, t = tmp_path / "out.zarr", tmp_path / "out.tif"
    run("run", "-i", src[(dt, ch)], "-o", z, "-p", PIPE, "--pyramid", "--compression", comp, "--quiet")
    run("run", "-i", src[(dt, ch)], "-o", t, "-p", PIPE, "--pyramid", "--quiet")
    g = zarr.open_group(str(z), mode="r")
    ref = tiff_levels(t)
    paths = [d["path"] for d in g.attrs["multiscales"][0]["datasets"]]
    assert paths == [str(i) for i in range(len(ref))]
    for L, want in enumerate(ref):
        a = g[str(L)]
        want_cyx = np.moveaxis(want, -1, 0) if ch > 1 else want
        assert a.dtype == want.dtype and a.shape == want_cyx.shape
        np.testing.assert_array_equal(a[:], want_cyx)
        meta = json.loads((z / str(L) / ".zarray").read_text())
        assert meta["dimension_separator"] == "/" and meta["order"] == "C" and meta["fill_value"] == 0
        assert meta["chunks"][-2:] == [min(256, want.shape[0]), min(256, want.shape[1])]
        if ch > 1:
            assert meta["chunks"][0] == ch  # one chunk holds every channel
        cid = (meta["compressor"] or {}).get("id")
        assert cid == {"none": None, "zlib": "zlib", "zstd": "zstd", "blosc-lz4": "blosc", "blosc-zstd": "blosc"}[comp]
        if cid == "blosc":
            assert meta["compressor"]["cname"] == comp.split("-")[1] and meta["compressor"]["shuffle"] == 1


def ngff_check(attrs, nlevels, channels, um):
    """OME-NGFF 0.4's rules for one multiscales entry, field by field."""
    ms = attrs["multiscales"]
    assert isinstance(ms, list) and len(ms) == 1
    m = ms[0]
    assert m["version"] == "0.4"
    axes = m["axes"]
    names = [a["name"] for a in axes]
    assert names == (["c", "y", "x"] if channels > 1 else ["y", "x"])
    types = [a.get("type") for a in axes]
    assert types == (["channel", "space", "space"] if channels > 1 else ["space", "space"])
    # 2-5 axes, space axes last; units only for space axes and only when known
    for a in axes:
        if a["type"] == "space":
            assert (a.get("unit") == "micrometer") if um else ("unit" not in a)
        else:
            assert "unit" not in a
    ds = m["datasets"]
    assert [d["path"] for d in ds] == [str(i) for i in range(nlevels)]  # largest first
    for L, d in enumerate(ds):
        ct = d["coordinateTransformations"]
        assert len(ct) == 1 and ct[0]["type"] == "scale"  # one scale per level, no translation
        s = ct[0]["scale"]
        assert len(s) == len(axes)
        f = 2 ** L
        want = [f * (um[1] if um else 1), f * (um[0] if um else 1)]
        assert s[-2:] == pytest.approx(want)
        if channels > 1:
            assert s[0] == 1
    assert "coordinateTransformations" not in m or m["coordinateTransformations"][0]["type"] == "scale"


@pytest.mark.parametrize("ch", [1, 3])
def test_ngff_metadata_follows_the_specification(tmp_path, src, ch):
    z = tmp_path / "out.zarr"
    run("run", "-i", src[("u8", ch)], "-o", z, "-p", PIPE, "--pyramid", "--quiet")
    g = zarr.open_group(str(z), mode="r")
    n = len(list(g.array_keys()))
    assert n == 4  # 1500 -> 750 -> 375 -> 188 fits a 256 tile
    ngff_check(dict(g.attrs), n, ch, None)
    assert json.loads((z / ".zgroup").read_text()) == {"zarr_format": 2}
    assert g.attrs["multiscales"][0]["type"] == "mean"
    assert g.attrs["tessera"]["pipeline"] == PIPE


def test_physical_pixel_size_becomes_the_scale(tmp_path):
    a = make_image(600, 700, "u16", 1, seed=2)
    p = tmp_path / "in.ome.tif"
    tifffile.imwrite(p, a, tile=(256, 256), metadata={"axes": "YX", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.5,
                                                      "PhysicalSizeXUnit": "µm", "PhysicalSizeYUnit": "µm"})
    z = tmp_path / "out.zarr"
    run("run", "-i", p, "-o", z, "-p", PIPE, "--pyramid", "--quiet")
    g = zarr.open_group(str(z), mode="r")
    ngff_check(dict(g.attrs), len(list(g.array_keys())), 1, (0.25, 0.5))
    # and back: a TIFF from the store keeps the pixel size in its OME-XML
    o = tmp_path / "back.ome.tif"
    run("run", "-i", z, "-o", o, "-p", "invert", "--quiet")
    with tifffile.TiffFile(o) as t:
        assert 'PhysicalSizeX="0.25"' in t.ome_metadata and 'PhysicalSizeY="0.5"' in t.ome_metadata
    np.testing.assert_array_equal(tifffile.imread(o), 65535 - zarr.open_group(str(z), mode="r")["0"][:])


def test_store_is_byte_identical_for_threads_ranks_and_io_modes(tmp_path, src):
    """Same name in each directory (the metadata names the image after the store)."""
    args = ["-i", src[("u8", 3)], "-p", PIPE, "--pyramid", "--compression", "blosc-zstd", "--tile", 512,
            "--out-tile", 256, "--quiet"]
    runs = {}
    for name, n, extra in [("t1", 0, ["--threads", 1]), ("t2", 0, ["--threads", 2]),
                           ("root3", 3, ["--threads", 1, "--io", "root"]),
                           ("direct4", 4, ["--threads", 1, "--io", "direct"])]:
        d = tmp_path / name
        d.mkdir()
        if n:
            mpirun(n, "run", *args, "-o", d / "out.zarr", *extra)
        else:
            run("run", *args, "-o", d / "out.zarr", *extra)
        runs[name] = tree(d / "out.zarr")
        assert not any(".tmp" in k for k in runs[name])  # no temporary chunk left behind
    assert runs["t1"] == runs["t2"] == runs["root3"] == runs["direct4"]


def test_direct_workers_write_their_own_chunks(tmp_path, src):
    """--io direct: rank 0 receives only the tiles' sizes, not their bytes."""
    stats = {}
    for io in ["root", "direct"]:
        d = tmp_path / io
        d.mkdir()
        mpirun(3, "run", "-i", src[("u16", 1)], "-o", d / "out.zarr", "-p", PIPE, "--tile", 256, "--io", io,
               "--threads", 1, "--root-compute", "no", "--quiet", "--stats", d / "s.json")
        stats[io] = json.loads((d / "s.json").read_text())
    assert tree(tmp_path / "root" / "out.zarr") == tree(tmp_path / "direct" / "out.zarr")
    got = {io: stats[io]["ranks"][0]["bytes_received"] for io in stats}
    pixels = H * W * 2
    assert got["root"] >= pixels           # every chunk's bytes came to rank 0
    assert got["direct"] < pixels / 100    # coordinates and sizes only
    tasks = stats["direct"]["tasks"]
    assert got["direct"] < tasks * 200


def test_worker_that_cannot_write_stops_the_run(tmp_path, src):
    """Workers started in another directory see no OUT.zarr.partial: one
    message naming the rank, its host and the path, and nothing left."""
    from conftest import TESSERA
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    shutil.copy(src[("u8", 1)], a / "in.tif")
    shutil.copy(src[("u8", 1)], b / "in.tif")
    args = [TESSERA, "run", "-i", "in.tif", "-o", "out.zarr", "-p", PIPE, "--io", "direct", "--threads", "1"]
    p = subprocess.run([MPIEXEC, "-np", "1", "-wdir", str(a), *args, ":", "-np", "2", "-wdir", str(b), *args],
                       capture_output=True, text=True, env=ENV, timeout=300)
    assert p.returncode != 0
    msg = [l for l in p.stderr.splitlines() if "out.zarr.partial" in l]
    assert msg and "rank " in msg[0] and os.uname().nodename in msg[0], p.stderr
    assert not (a / "out.zarr").exists() and not (a / "out.zarr.partial").exists()


# ---- inputs made by others ----

def zp_store(path, a, chunks, compressor, sep):
    st = zarr.DirectoryStore(str(path), dimension_separator=sep)
    z = zarr.zeros(a.shape, chunks=chunks, dtype=a.dtype, compressor=compressor, store=st, overwrite=True)
    z[:] = a
    return path


COMPRESSORS = {"none": None, "zlib": numcodecs.Zlib(level=4), "blosc-lz4": numcodecs.Blosc("lz4", 5, 1),
               "blosc-zstd-bit": numcodecs.Blosc("zstd", 3, 2), "zstd": numcodecs.Zstd(level=2),
               "gzip": numcodecs.GZip(level=3)}


@pytest.mark.parametrize("comp", sorted(COMPRESSORS))
@pytest.mark.parametrize("sep", ["/", "."])
def test_stores_written_by_zarr_python_are_read(tmp_path, comp, sep):
    a = make_image(333, 517, "u16", 1, seed=9)
    p = zp_store(tmp_path / "in.zarr", a, (64, 100), COMPRESSORS[comp], sep)  # chunks that do not divide it
    out = tmp_path / "o.tif"
    run("run", "-i", p, "-o", out, "-p", "invert", "--quiet")
    np.testing.assert_array_equal(tifffile.imread(out), 65535 - zarr.open(str(p), mode="r")[:])
    # and the same job on the same pixels as a TIFF gives the same bytes of output
    t = tmp_path / "in.tif"
    write_tiff(t, a)
    run("run", "-i", p, "-o", tmp_path / "g1.tif", "-p", PIPE, "--quiet")
    run("run", "-i", t, "-o", tmp_path / "g2.tif", "-p", PIPE, "--quiet")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "g1.tif"), tifffile.imread(tmp_path / "g2.tif"))


def test_rgb_planes_and_missing_chunks(tmp_path):
    a = make_image(200, 300, "u8", 3, seed=4)
    cyx = np.ascontiguousarray(np.moveaxis(a, -1, 0))
    st = zarr.DirectoryStore(str(tmp_path / "rgb.zarr"), dimension_separator="/")
    z = zarr.open(st, mode="w", shape=cyx.shape, chunks=(3, 64, 64), dtype="u1", fill_value=7,
                  compressor=numcodecs.Blosc("lz4", 5, 1))
    z[:, :128, :] = cyx[:, :128, :]  # the chunks below row 128 are never written: the fill value
    want = np.moveaxis(z[:], 0, -1)
    assert (want[150:] == 7).all()
    out = tmp_path / "o.tif"
    run("run", "-i", tmp_path / "rgb.zarr", "-o", out, "-p", "invert", "--quiet")
    np.testing.assert_array_equal(tifffile.imread(out), 255 - want)


@pytest.mark.parametrize("chunks", [(1, 64, 64), (2, 64, 100), (4, 64, 64)], ids=["c1", "c2", "c4"])
def test_channels_in_several_chunks_are_read(tmp_path, chunks):
    """(c, y, x) with one chunk per channel (as many NGFF writers store it),
    two, or a chunk deeper than the channels."""
    a = make_image(200, 300, "u16", 3, seed=8)
    cyx = np.ascontiguousarray(np.moveaxis(a, -1, 0))
    p = zp_store(tmp_path / "in.zarr", cyx, chunks, numcodecs.Zlib(1), "/")
    out = tmp_path / "o.tif"
    run("run", "-i", p, "-o", out, "-p", "invert", "--tile", 128, "--quiet")
    np.testing.assert_array_equal(tifffile.imread(out), 65535 - a)


def test_multiscales_group_levels_are_read(tmp_path, src):
    """A multiscales group written by tessera and one by zarr-python alike:
    --input-level N reads dataset N."""
    z = tmp_path / "pyr.zarr"
    run("run", "-i", src[("u8", 1)], "-o", z, "-p", PIPE, "--pyramid", "--quiet")
    g = zarr.open_group(str(z), mode="r")
    info = run("info", z).stdout
    assert "level 3:" in info
    for L in range(4):
        out = tmp_path / f"l{L}.tif"
        run("run", "-i", z, "--input-level", L, "-o", out, "-p", "invert", "--quiet")
        np.testing.assert_array_equal(tifffile.imread(out), 255 - g[str(L)][:])
    # an array path inside the store
    run("run", "-i", f"{z}/2", "-o", tmp_path / "p2.tif", "-p", "invert", "--quiet")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "p2.tif"), 255 - g["2"][:])
    p = run("run", "-i", z, "--input-level", 4, "-o", tmp_path / "no.tif", "-p", "invert", check=False)
    assert p.returncode == 2 and "--input-level 4" in p.stderr and "0 to 3" in p.stderr
    assert not (tmp_path / "no.tif").exists()
    # zarr-python's own group with hand-made multiscales
    h = tmp_path / "hand.zarr"
    hg = zarr.open_group(str(h), mode="w")
    base = make_image(300, 400, "u8", 1, seed=1)
    hg.create_dataset("s0", data=base, chunks=(100, 100))
    hg.create_dataset("s1", data=base[::2, ::2], chunks=(100, 100))
    hg.attrs["multiscales"] = [{"version": "0.4", "axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
                                "datasets": [{"path": "s0", "coordinateTransformations": [{"type": "scale", "scale": [1, 1]}]},
                                             {"path": "s1", "coordinateTransformations": [{"type": "scale", "scale": [2, 2]}]}]}]
    run("run", "-i", h, "--input-level", 1, "-o", tmp_path / "h1.tif", "-p", "invert", "--quiet")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "h1.tif"), 255 - base[::2, ::2])


# ---- errors ----

def test_existing_store_needs_force_and_force_replaces_it(tmp_path, src):
    z = tmp_path / "out.zarr"
    run("run", "-i", src[("u8", 1)], "-o", z, "-p", PIPE, "--quiet")
    before = tree(z)
    p = run("run", "-i", src[("u8", 1)], "-o", z, "-p", "invert", "--quiet", check=False)
    assert p.returncode == 2 and "--force" in p.stderr and tree(z) == before
    run("run", "-i", src[("u8", 1)], "-o", z, "-p", "invert", "--quiet", "--force")
    np.testing.assert_array_equal(zarr.open_group(str(z), mode="r")["0"][:], 255 - tifffile.imread(src[("u8", 1)]))
    assert not (tmp_path / "out.zarr.partial").exists() and not (tmp_path / "out.zarr.replaced").exists()
    # a directory that is no Zarr store is never replaced, even with --force
    d = tmp_path / "mine.zarr"
    d.mkdir()
    (d / "precious.txt").write_text("keep me")
    p = run("run", "-i", src[("u8", 1)], "-o", d, "-p", PIPE, "--force", check=False)
    assert p.returncode == 2 and "no Zarr store" in p.stderr and (d / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize("extra,words", [
    (["--layout", "ome"], "TIFF layout"),
    (["--compression", "lzw"], "Zarr output takes"),
    (["--compression", "jpeg"], "Zarr output takes"),
    (["--compression", "blosc-lz4", "--compression-level", "12"], "blosc takes 0 to 9"),
])
def test_bad_combinations_get_one_message_and_no_store(tmp_path, src, extra, words):
    z = tmp_path / "out.zarr"
    p = run("run", "-i", src[("u8", 1)], "-o", z, "-p", PIPE, *extra, check=False)
    assert p.returncode != 0 and words in p.stderr, p.stderr
    assert not z.exists() and not (tmp_path / "out.zarr.partial").exists()


def test_blosc_into_tiff_is_refused(tmp_path, src):
    p = run("run", "-i", src[("u8", 1)], "-o", tmp_path / "o.tif", "-p", PIPE, "--compression", "blosc-lz4", check=False)
    assert p.returncode != 0 and "Zarr compressor" in p.stderr
    assert not (tmp_path / "o.tif").exists() and not (tmp_path / "o.tif.partial").exists()


def test_bad_stores_are_named(tmp_path):
    a = make_image(100, 120, "u8", 1)
    p = zp_store(tmp_path / "in.zarr", a, (50, 50), numcodecs.Zlib(level=1), "/")
    (p / "1" / "1").write_bytes(b"not zlib at all")  # a corrupt chunk
    r = run("run", "-i", p, "-o", tmp_path / "o.tif", "-p", "invert", check=False)
    assert r.returncode == 1 and "chunk (1, 1)" in r.stderr and "corrupt" in r.stderr
    assert not (tmp_path / "o.tif").exists()
    (p / ".zarray").write_text("{ not json")
    r = run("run", "-i", p, "-o", tmp_path / "o.tif", "-p", "invert", check=False)
    assert r.returncode == 1 and ".zarray" in r.stderr and "not valid JSON" in r.stderr
    e = tmp_path / "empty.zarr"
    e.mkdir()
    r = run("run", "-i", e, "-o", tmp_path / "o.tif", "-p", "invert", check=False)
    assert r.returncode == 1 and "no Zarr array" in r.stderr
    meta = {"zarr_format": 2, "shape": [100, 120], "chunks": [50, 50], "dtype": "<i8", "compressor": None,
            "fill_value": 0, "filters": None, "order": "C"}
    (p / ".zarray").write_text(json.dumps(meta))
    r = run("run", "-i", p, "-o", tmp_path / "o.tif", "-p", "invert", check=False)
    assert r.returncode == 1 and "<i8" in r.stderr
    meta.update(dtype="|u1", chunks=[1 << 20, 1 << 20])
    (p / ".zarray").write_text(json.dumps(meta))
    r = run("run", "-i", p, "-o", tmp_path / "o.tif", "-p", "invert", check=False)
    assert r.returncode == 1 and "chunks of" in r.stderr


# ---- Zarr v3 (NGFF 0.5), shards, read by zarrita ----

ZARRITA = os.path.join(os.path.dirname(__file__), "..", "zarrita")


def zarrita_read(store, path, out):
    """The array at `path` of `store` as zarrita (Node.js) decodes it, and the group's attributes."""
    p = subprocess.run(["node", os.path.join(ZARRITA, "read.mjs"), str(store), path, str(out)], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    meta = json.loads(p.stdout)
    dt = {"uint8": np.uint8, "uint16": np.uint16, "float32": np.float32}[meta["dtype"]]
    return np.fromfile(out, dt).reshape(meta["shape"]), meta


V3 = [("u8", 3, "zlib", 0), ("u16", 1, "zstd", 0), ("u8", 1, "none", 4), ("u16", 1, "blosc-lz4", 2),
      ("u8", 3, "blosc-zstd", 3), ("f32", 1, "zlib", 2)]


@pytest.mark.parametrize("dt,ch,comp,shard", V3, ids=[f"{d}x{c}-{m}-shard{s}" for d, c, m, s in V3])
def test_v3_stores_and_shards_are_read_by_zarrita(tmp_path, src, dt, ch, comp, shard):
    z, t = tmp_path / "out.zarr", tmp_path / "out.tif"
    extra = ["--shard", shard] if shard else []
    run("run", "-i", src[(dt, ch)], "-o", z, "-p", PIPE, "--pyramid", "--zarr-format", 3, "--compression", comp,
        "--out-tile", 128, "--tile", 256, *extra, "--quiet")
    run("run", "-i", src[(dt, ch)], "-o", t, "-p", PIPE, "--pyramid", "--out-tile", 128, "--tile", 256, "--quiet")
    ref = tiff_levels(t)
    root = json.loads((z / "zarr.json").read_text())
    assert root["zarr_format"] == 3 and root["node_type"] == "group"
    ome = root["attributes"]["ome"]
    assert ome["version"] == "0.5" and "version" not in ome["multiscales"][0]  # 0.5 moved it up
    ngff_check({"multiscales": [dict(ome["multiscales"][0], version="0.4")]}, len(ref), ch, None)
    for L, want in enumerate(ref):
        got, meta = zarrita_read(z, str(L), tmp_path / f"l{L}.raw")
        assert meta["attributes"]["ome"]["version"] == "0.5"
        np.testing.assert_array_equal(got, np.moveaxis(want, -1, 0) if ch > 1 else want)
        a = json.loads((z / str(L) / "zarr.json").read_text())
        assert a["node_type"] == "array" and a["dimension_names"] == (["c", "y", "x"] if ch > 1 else ["y", "x"])
        codecs = a["codecs"]
        if shard:
            assert codecs[0]["name"] == "sharding_indexed"
            inner = codecs[0]["configuration"]
            assert inner["chunk_shape"][-2:] == [min(128, want.shape[0]), min(128, want.shape[1])]
            assert a["chunk_grid"]["configuration"]["chunk_shape"][-2:] == [c * shard for c in inner["chunk_shape"][-2:]]
            assert [c["name"] for c in inner["index_codecs"]] == ["bytes", "crc32c"]
            codecs = inner["codecs"]
        assert codecs[0]["name"] == "bytes"
        assert [c["name"] for c in codecs[1:]] == {"none": [], "zlib": ["gzip"], "zstd": ["zstd"],
                                                  "blosc-lz4": ["blosc"], "blosc-zstd": ["blosc"]}[comp]
        # and tessera reads its own v3 store back, shards included
        out = tmp_path / f"back{L}.tif"
        run("run", "-i", z, "--input-level", L, "-o", out, "-p", "" if dt == "f32" else "invert", "--quiet")
        back = tifffile.imread(out)
        np.testing.assert_array_equal(back, want if dt == "f32" else np.iinfo(want.dtype).max - want)
    if shard:  # a shard holds shard x shard chunks: fewer files than chunks
        files = sum(1 for _ in (z / "0" / "c").rglob("*") if _.is_file())
        gy, gx = -(-H // 128), -(-W // 128)
        assert files == -(-gy // shard) * -(-gx // shard)


def test_sharded_store_is_byte_identical_for_ranks_and_io_modes(tmp_path, src):
    args = ["-i", src[("u16", 1)], "-p", PIPE, "--pyramid", "--zarr-format", 3, "--shard", 3, "--compression", "zstd",
            "--out-tile", 128, "--tile", 256, "--quiet"]
    runs = {}
    for name, n, extra in [("t2", 0, ["--threads", 2]), ("direct3", 3, ["--threads", 1, "--io", "direct"]),
                           ("root4", 4, ["--threads", 1])]:
        (tmp_path / name).mkdir()
        (mpirun(n, "run", *args, "-o", tmp_path / name / "out.zarr", *extra) if n
         else run("run", *args, "-o", tmp_path / name / "out.zarr", *extra))
        runs[name] = tree(tmp_path / name / "out.zarr")
    assert runs["t2"] == runs["direct3"] == runs["root4"]


def test_v3_stores_written_by_zarrita_are_read(tmp_path):
    a = make_image(333, 517, "u16", 1, seed=6)
    a.astype("<u2").tofile(tmp_path / "a.raw")
    for name, codecs in [("zstd", [{"name": "zstd", "configuration": {"level": 3, "checksum": False}}]),
                         ("blosc", [{"name": "blosc", "configuration": {"cname": "lz4", "clevel": 5, "shuffle": "shuffle",
                                                                        "typesize": 2, "blocksize": 0}}]),
                         ("none", [])]:
        spec = tmp_path / f"{name}.json"
        spec.write_text(json.dumps({"shape": [333, 517], "chunks": [64, 100], "dtype": "uint16", "codecs": codecs,
                                    "shard": None}))
        store = tmp_path / f"{name}.zarr"
        p = subprocess.run(["node", os.path.join(ZARRITA, "write.mjs"), str(store), str(spec), str(tmp_path / "a.raw")],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        out = tmp_path / f"{name}.tif"
        run("run", "-i", f"{store}/image", "-o", out, "-p", "invert", "--quiet")
        np.testing.assert_array_equal(tifffile.imread(out), 65535 - a)


def test_shard_needs_v3(tmp_path, src):
    p = run("run", "-i", src[("u8", 1)], "-o", tmp_path / "o.zarr", "-p", PIPE, "--shard", 4, check=False)
    assert p.returncode == 2 and "--zarr-format 3" in p.stderr and not (tmp_path / "o.zarr").exists()


@pytest.mark.parametrize("out,extra,words", [("o.tif", ["--zarr-format", 3], "for Zarr output"),
                                             ("o.h5", ["--shard", 2], "for Zarr output")])
def test_zarr_options_with_other_outputs_are_refused(tmp_path, src, out, extra, words):
    p = run("run", "-i", src[("u8", 1)], "-o", tmp_path / out, "-p", PIPE, *extra, check=False)
    assert p.returncode == 2 and words in p.stderr and not (tmp_path / out).exists()
    assert not (tmp_path / (out + ".partial")).exists()


# ---- list mode: Zarr stacks in, the HDF5 layout as a Zarr group out ----

LIST_PIPE = "gaussian sigma=1 | stats"


@pytest.fixture(scope="module")
def list_dir(tmp_path_factory):
    """PNGs of one shape (one corrupt), plus the same job's HDF5 output as the reference."""
    import cv2
    d = tmp_path_factory.mktemp("zlist")
    rng = np.random.default_rng(3)
    (d / "in").mkdir()
    for i in range(12):
        f = d / "in" / f"im{i:02d}.png"
        if i == 5:
            f.write_bytes(b"not a png")
        else:
            cv2.imwrite(str(f), rng.integers(0, 256, (70, 90), dtype=np.uint8))
    p = run("run", "-i", d / "in", "-o", d / "ref.h5", "-p", LIST_PIPE, "--quiet", check=False)
    assert p.returncode == 3  # one input failed
    return d


def h5_contents(path):
    import h5py
    with h5py.File(path, "r") as f:
        return (f["images"][:], [n.decode() for n in f["names"][:]], f["results/stats"][:],
                [r[0].decode() for r in f["failed"][:]], [r[1].decode() for r in f["failed"][:]])


def zarr_contents(path):
    g = zarr.open_group(str(path), mode="r")
    return (g["images"][:], list(g["names"][:]), g["results/stats"][:], list(g["failed/name"][:]),
            list(g["failed/reason"][:]))


@pytest.mark.parametrize("comp", ["none", "zlib", "blosc-zstd"])
def test_list_mode_into_zarr_mirrors_the_hdf5_layout(tmp_path, list_dir, comp):
    out = tmp_path / "out.zarr"
    p = run("run", "-i", list_dir / "in", "-o", out, "-p", LIST_PIPE, "--compression", comp, "--quiet", check=False)
    assert p.returncode == 3 and "im05.png" in p.stderr
    got, ref = zarr_contents(out), h5_contents(list_dir / "ref.h5")
    np.testing.assert_array_equal(got[0], ref[0])  # the stack, compacted past the failed input
    assert got[1] == ref[1] and "im05.png" not in got[1] and len(got[1]) == 11
    np.testing.assert_array_equal(got[2], ref[2])
    assert got[3] == ref[3] == ["im05.png"] and got[4] == ref[4]
    meta = json.loads((out / "images" / ".zarray").read_text())
    assert meta["chunks"] == [1, 70, 90]  # chunk = one image
    g = zarr.open_group(str(out), mode="r")
    assert g.attrs["pipeline"] == LIST_PIPE and not (tmp_path / "out.zarr.partial").exists()


def test_list_mode_into_zarr_is_the_same_for_any_ranks(tmp_path, list_dir):
    runs = {}
    for name, n in [("one", 0), ("mpi", 3)]:
        (tmp_path / name).mkdir()
        args = ["run", "-i", list_dir / "in", "-o", tmp_path / name / "out.zarr", "-p", LIST_PIPE, "--compression",
                "blosc-lz4", "--quiet"]
        p = mpirun(n, *args, check=False) if n else run(*args, check=False)
        assert p.returncode == 3
        runs[name] = tree(tmp_path / name / "out.zarr")
    assert runs["one"] == runs["mpi"]


def test_list_mode_refuses_zarr_v3(tmp_path, list_dir):
    p = run("run", "-i", list_dir / "in", "-o", tmp_path / "o.zarr", "-p", "invert", "--zarr-format", 3, check=False)
    assert p.returncode == 2 and "list mode writes Zarr v2" in p.stderr and not (tmp_path / "o.zarr").exists()


def test_list_mode_different_shapes_become_one_array_per_input(tmp_path):
    import cv2
    (tmp_path / "in" / "sub").mkdir(parents=True)
    imgs = {"a.png": np.full((30, 40), 9, np.uint8), "sub/b.png": np.full((50, 20, 3), 77, np.uint8)}
    for n, a in imgs.items():
        cv2.imwrite(str(tmp_path / "in" / n), a)
    out = tmp_path / "o.zarr"
    run("run", "-i", tmp_path / "in", "--recursive", "-o", out, "-p", "invert", "--quiet")
    g = zarr.open_group(str(out), mode="r")
    assert list(g["names"][:]) == ["a.png", "sub/b.png"]
    np.testing.assert_array_equal(g["images/a.png"][:], 255 - imgs["a.png"])
    np.testing.assert_array_equal(g["images/sub/b.png"][:], 255 - imgs["sub/b.png"][:, :, ::-1])  # cv2 wrote BGR


@pytest.mark.parametrize("shape,chunks,comp,sep", [((7, 90, 110, 3), (2, 50, 60, 3), "blosc", "/"),
                                                   ((9, 80, 70), (1, 80, 70), "zlib", "."),
                                                   ((6, 64, 64), (4, 64, 64), None, "/")])
def test_zarr_stacks_are_list_mode_inputs(tmp_path, shape, chunks, comp, sep):
    """A stack written by zarr-python, read one image per task: the same as the
    same pixels as an HDF5 stack."""
    import h5py
    rng = np.random.default_rng(11)
    a = rng.integers(0, 65535, shape, dtype=np.uint16)
    zp_store(tmp_path / "stack.zarr", a, chunks, {"blosc": numcodecs.Blosc("lz4", 5, 1), "zlib": numcodecs.Zlib(1),
                                                  None: None}[comp], sep)
    with h5py.File(tmp_path / "stack.h5", "w") as f:
        f["s"] = a
    run("run", "-i", tmp_path / "stack.zarr", "-o", tmp_path / "z.h5", "-p", "invert | stats", "--quiet")
    run("run", "-i", f"{tmp_path}/stack.h5:/s", "-o", tmp_path / "h.h5", "-p", "invert | stats", "--quiet")
    with h5py.File(tmp_path / "z.h5") as z, h5py.File(tmp_path / "h.h5") as h:
        np.testing.assert_array_equal(z["images"][:], 65535 - a)
        np.testing.assert_array_equal(z["images"][:], h["images"][:])
        np.testing.assert_array_equal(z["results/stats"][:], h["results/stats"][:])
    # and a stack into a stack: Zarr to Zarr
    run("run", "-i", tmp_path / "stack.zarr", "-o", tmp_path / "z.zarr", "-p", "invert", "--quiet")
    np.testing.assert_array_equal(zarr.open_group(str(tmp_path / "z.zarr"), mode="r")["images"][:], 65535 - a)


def test_list_mode_zarr_output_resumes(tmp_path, list_dir):
    """SIGUSR1 keeps OUT.zarr.partial (stopped_early set); --resume rebuilds the
    same store as an uninterrupted run, from the journal."""
    import signal
    from conftest import TESSERA
    (tmp_path / "ref").mkdir()
    slow = "tv_denoise weight=0.1 max_iter=300 | stats"
    many = tmp_path / "many"
    many.mkdir()
    for i in range(60):
        shutil.copy(list_dir / "in" / f"im{(i % 11) + (i % 11 >= 5):02d}.png", many / f"m{i:03d}.png")
    run("run", "-i", many, "-o", tmp_path / "ref" / "out.zarr", "-p", slow, "--quiet")
    out = tmp_path / "out.zarr"
    args = [TESSERA, "run", "-i", str(many), "-o", str(out), "-p", slow, "--quiet", "--threads", "1",
            "--checkpoint-tasks", "4"]
    p = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    import time
    t = time.monotonic()
    journal = tmp_path / "out.zarr.journal"
    while not (journal.exists() and journal.read_bytes().count(b"\nrec ") >= 12):
        assert p.poll() is None and time.monotonic() - t < 120
        time.sleep(0.01)
    p.send_signal(signal.SIGUSR1)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 75, err
    kept = zarr.open_group(str(tmp_path / "out.zarr.partial"), mode="r")
    assert "stopped_early" in kept.attrs and 0 < len(kept["names"][:]) < 60
    r = subprocess.run(args[:-2] + ["--resume"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert tree(out) == tree(tmp_path / "ref" / "out.zarr")


@pytest.mark.parametrize("dtype", [">u2", ">f4", "<f4"])
def test_either_byte_order_is_read(tmp_path, dtype):
    a = make_image(120, 150, "f32" if "f" in dtype else "u16", 1, seed=2).astype(dtype)
    p = zp_store(tmp_path / "in.zarr", a, (50, 64), numcodecs.Zlib(1), "/")
    out = tmp_path / "o.tif"
    run("run", "-i", p, "-o", out, "-p", "", "--quiet")
    np.testing.assert_array_equal(tifffile.imread(out), a.astype(a.dtype.newbyteorder("=")))


def test_list_mode_values_of_different_lengths_are_refused(tmp_path):
    """hog's vector grows with the image: a Zarr output says so as soon as
    the second length arrives, names the input, and leaves nothing."""
    import cv2
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "a.png"), np.full((64, 64), 5, np.uint8))
    cv2.imwrite(str(tmp_path / "in" / "b.png"), np.full((128, 96), 9, np.uint8))
    p = run("run", "-i", tmp_path / "in", "-o", tmp_path / "o.zarr", "-p", "hog", "--threads", 1, check=False)
    assert p.returncode == 2 and "results/hog" in p.stderr and ".png emitted" in p.stderr, p.stderr
    assert not (tmp_path / "o.zarr").exists() and not (tmp_path / "o.zarr.partial").exists()
