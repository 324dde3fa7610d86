"""Pyramids and layouts, checked by readers nobody here wrote.

- tifffile reads --layout ome as OME, series[0].levels holding every level,
  each equal to the documented 2x2 reduction of the level below computed
  here in numpy (exact for integers: mean rounded half away from zero,
  nearest = top-left, max, min; a partial block at an odd edge holds only
  the samples that exist);
- the file is byte-identical for any thread count, task tile of the same
  output tiling, and MPI rank count;
- GDAL's own COG validator passes --layout cog without errors or warnings,
  and gdalinfo shows the input's CRS, geotransform and nodata on the output;
- vips and tiffinfo read every layout without warnings;
- pyramids written by vips (with and without --subifd), gdal_translate -of
  COG and tifffile (OME with SubIFDs) are read at every --input-level as
  tifffile decodes them, and GDAL's with internal masks as GDAL decodes them;
- HDF5 output keeps /image and adds /pyramid/N with their factors;
- bad combinations get one message and no output.
"""
import os
import shutil
import signal
import subprocess

import h5py
import numpy as np
import pytest
import tifffile

from conftest import TESSERA, make_image, run, write_tiff

MPIEXEC = os.environ.get("MPIEXEC", "mpirun")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")
H, W = 1100, 1500  # not multiples of 2^k: odd edges at several levels


def reduce(a, mode, nodata=None):
    """One level up, computed independently: pad to even with NaN-free
    masks. With nodata (GDAL's rule): mean, max and min skip samples equal
    to it (NaN ones for NaN), a block of nothing else is nodata, a mean
    equal to nodata is the next value up (down at the type's top); f32
    means sum a, a', b, b' in float32 as the documented order does."""
    h, w = a.shape[:2]
    H2, W2 = (h + 1) // 2, (w + 1) // 2
    if mode == "nearest":
        return a[::2, ::2].copy()
    pad = ((0, 2 * H2 - h), (0, 2 * W2 - w)) + ((0, 0),) * (a.ndim - 2)
    valid = np.ones(a.shape, bool)
    if nodata is not None:
        valid = ~np.isnan(a) if np.isnan(nodata) else a != nodata
    valid = np.pad(valid, pad)
    blocks = np.pad(a, pad).reshape(H2, 2, W2, 2, *a.shape[2:])
    vblocks = valid.reshape(H2, 2, W2, 2, *a.shape[2:])
    n = vblocks.sum(axis=(1, 3))
    if mode in ("max", "min"):
        big = np.iinfo(a.dtype).max if a.dtype.kind == "u" else np.inf
        fill = -1 if mode == "max" else big
        b = np.where(vblocks, blocks.astype(np.int64 if a.dtype.kind == "u" else np.float64), fill)
        r = b.max(axis=(1, 3)) if mode == "max" else b.min(axis=(1, 3))
        r = r.astype(a.dtype)
    elif a.dtype.kind == "u":
        s = np.where(vblocks, blocks, 0).astype(np.int64).sum(axis=(1, 3))
        with np.errstate(divide="ignore", invalid="ignore"):
            r = ((s + n // 2) // np.maximum(n, 1)).astype(a.dtype)
    else:
        q = np.where(vblocks, blocks, np.float32(-0.0)).astype(np.float32)  # -0.0: the exact identity
        s = ((q[:, 0, :, 0] + q[:, 0, :, 1]) + q[:, 1, :, 0]) + q[:, 1, :, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            r = (s / n.astype(np.float32)).astype(np.float32)
    if nodata is None:
        return r
    nd = a.dtype.type(nodata)
    if mode == "mean":
        if a.dtype.kind == "u":
            repl = nd + 1 if nd < np.iinfo(a.dtype).max else nd - 1
            r[r == nd] = repl
        elif not np.isnan(nd):
            r[r == nd] = np.nextafter(nd, np.float32(np.inf))
    r[n == 0] = nd
    return r


def levels_of(path):
    with tifffile.TiffFile(path) as t:
        return t, [lv.asarray() for lv in t.series[0].levels]


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    d = tmp_path_factory.mktemp("pyr")
    out = {}
    for dt, ch in [("u8", 1), ("u16", 1), ("u8", 3)]:
        p = d / f"in-{dt}-{ch}.tif"
        write_tiff(p, make_image(H, W, dt, ch, seed=3), tile=256)
        out[(dt, ch)] = p
    return out


@pytest.mark.parametrize("dt,ch", [("u8", 1), ("u16", 1), ("u8", 3)])
@pytest.mark.parametrize("mode", ["mean", "nearest", "max", "min"])
def test_ome_levels_are_the_documented_reduction(tmp_path, src, dt, ch, mode):
    out = tmp_path / "out.ome.tif"
    run("run", "-i", src[(dt, ch)], "-o", out, "-p", "gaussian sigma=1.5", "--pyramid", "--downsample", mode,
        "--compression", "deflate", "--quiet")
    t, lv = levels_of(out)
    with tifffile.TiffFile(out) as t:
        assert t.is_ome
        xml = t.pages[0].description
    assert "gaussian sigma=1.5" in xml and 'SizeX="1500"' in xml
    # until a level fits in one 256 tile: 1500 -> 750 -> 375 -> 188
    assert [a.shape[:2] for a in lv] == [(1100, 1500), (550, 750), (275, 375), (138, 188)]
    ref = lv[0]
    for i, got in enumerate(lv[1:], 1):
        ref = reduce(ref, mode)
        assert got.dtype == ref.dtype and got.shape == ref.shape, i
        assert np.array_equal(got, ref), f"level {i} ({mode}) differs from numpy's reduction"


def test_ome_image_is_named_after_the_final_file(tmp_path, src):
    """The OME Image's Name is the output's own file name, not the
    OUT.partial it was written under, and XML-escaped: a name with & < > "
    or a control character still makes well-formed OME-XML (before: "... .ome.tif.partial", and
    "R&D" broke the XML, so no reader took the file for OME)."""
    import xml.etree.ElementTree as ET
    name = 'R&D "plate" <1>\x01.ome.tif'  # \x01: no XML 1.0 document may hold it
    run("run", "-i", src[("u8", 1)], "-o", tmp_path / name, "-p", "invert", "--pyramid", "--quiet")
    with tifffile.TiffFile(tmp_path / name) as t:
        assert t.is_ome and len(t.series[0].levels) == 4
        root = ET.fromstring(t.pages[0].description)
    ns = "{http://www.openmicroscopy.org/Schemas/OME/2016-06}"
    assert root.find(ns + "Image").get("Name") == name.replace("\x01", "?")
    assert root.find(f"{ns}StructuredAnnotations/{ns}CommentAnnotation/{ns}Value").text == "invert"


def test_names_that_are_not_utf8_become_text(tmp_path, src):
    """A file name is bytes; OME-XML and Zarr's JSON hold only text. Each
    maximal subpart of ill-formed UTF-8 in the name becomes one U+FFFD, as
    Python's decode(errors="replace") makes it; in OME-XML, U+FFFE and
    U+FFFF (no XML character) become '?'. Before: the XML was not
    well-formed (Bio-Formats reads it as UTF-8), and a Zarr output failed
    with "out of memory for the store's metadata"."""
    import json
    import xml.etree.ElementTree as ET
    pieces = [b"a", "\u00e9".encode(), "\u20ac".encode(), "\U0001d11e".encode(), b"\xe9", b"\xff", b"\x80",
              b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\xf0\x9f\x98",
              b"\xef\xbf\xbf", b"\xef\xbf\xbe", b"\xf8\x88\x80\x80\x80"]
    rng = np.random.default_rng(5)
    names = [b"".join(pieces[i] for i in rng.integers(0, len(pieces), rng.integers(1, 7))) for _ in range(10)]
    names += [b"caf\xe9", b"\xe2\x82\xe2\x82\xac"]
    ns = "{http://www.openmicroscopy.org/Schemas/OME/2016-06}"
    for i, name in enumerate(names):
        want = name.decode("utf-8", "replace")
        out = tmp_path / os.fsdecode(b"%d_%s.ome.tif" % (i, name))
        run("run", "-i", src[("u8", 1)], "-o", out, "-p", "invert", "--quiet")
        raw = out.read_bytes()
        root = ET.fromstring(raw[raw.find(b"<?xml"):raw.find(b"</OME>") + 6])  # strict UTF-8
        assert root.find(ns + "Image").get("Name") == f"{i}_{want}.ome.tif".replace("\ufffe", "?").replace(
            "\uffff", "?"), name
        if i < 3:
            for fmt in ("2", "3"):
                z = tmp_path / os.fsdecode(b"%d_%s_v%s.zarr" % (i, name, fmt.encode()))
                run("run", "-i", src[("u8", 1)], "-o", z, "-p", "invert", "--zarr-format", fmt, "--quiet")
                meta = json.loads((z / (".zattrs" if fmt == "2" else "zarr.json")).read_bytes().decode("utf-8"))
                ms = meta["multiscales"] if fmt == "2" else meta["attributes"]["ome"]["multiscales"]
                assert ms[0]["name"] == f"{i}_{want}_v{fmt}", name


def test_pyramid_levels_caps_the_count(tmp_path, src):
    out = tmp_path / "out.ome.tif"
    run("run", "-i", src[("u8", 1)], "-o", out, "-p", "invert", "--pyramid-levels", "2", "--quiet")
    _, lv = levels_of(out)
    assert [a.shape for a in lv] == [(1100, 1500), (550, 750), (275, 375)]


def test_bytes_same_for_threads_tiles_and_ranks(tmp_path, src):
    """The file depends only on pixels, tiling and layout: not on threads,
    ranks or I/O mode (--tile 512: levels 0-1 made by the tasks, 2-3 by
    the upper tiles' tasks)."""
    outs = []
    for i, extra in enumerate([("--threads", "1"), ("--threads", "2")]):
        d = tmp_path / f"r{i}"
        d.mkdir()
        run("run", "-i", src[("u8", 3)], "-o", d / "o.ome.tif", "-p", "gaussian sigma=2", "--pyramid", "--tile", "512",
            "--compression", "zstd", "--quiet", *extra)
        outs.append((d / "o.ome.tif").read_bytes())
    for np_, io in [(3, "root"), (4, "direct")]:  # the upper tiles' payloads are rank 0's even with --io direct
        d = tmp_path / f"mpi{np_}"
        d.mkdir()
        cmd = [MPIEXEC, "--oversubscribe", "-x", "OMP_WAIT_POLICY=passive", "-np", str(np_), os.environ.get("TESSERA"),
               "run", "-i", str(src[("u8", 3)]), "-o", str(d / "o.ome.tif"), "-p", "gaussian sigma=2", "--pyramid",
               "--tile", "512", "--compression", "zstd", "--quiet", "--io", io, "--threads", "1"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV)
        assert p.returncode == 0, p.stderr
        outs.append((d / "o.ome.tif").read_bytes())
    assert all(o == outs[0] for o in outs)


def test_plain_subifds_and_tiled_equals_untiled(tmp_path, src):
    a = tmp_path / "a.tif"
    b = tmp_path / "b.tif"
    run("run", "-i", src[("u16", 1)], "-o", a, "-p", "gaussian sigma=2", "--pyramid", "--tile", "4096", "--quiet")
    run("run", "-i", src[("u16", 1)], "-o", b, "-p", "gaussian sigma=2", "--pyramid", "--tile", "256", "--quiet")
    la, lb = levels_of(a)[1], levels_of(b)[1]
    with tifffile.TiffFile(a) as t:
        assert not t.is_ome and len(t.pages[0].subifds) == 3
    assert len(la) == 4 and all(np.array_equal(x, y) for x, y in zip(la, lb))


gdal = pytest.importorskip("osgeo.gdal")


@pytest.fixture(scope="module")
def geo(tmp_path_factory):
    """A georeferenced GeoTIFF made by GDAL: UTM 33N, 10 m pixels, nodata 7."""
    from osgeo import osr
    gdal.UseExceptions()
    p = tmp_path_factory.mktemp("geo") / "geo.tif"
    d = gdal.GetDriverByName("GTiff").Create(str(p), W, H, 1, gdal.GDT_Byte, ["TILED=YES"])
    d.SetGeoTransform((500000, 10, 0, 4600000, 0, -10))
    s = osr.SpatialReference()
    s.ImportFromEPSG(32633)
    d.SetProjection(s.ExportToWkt())
    b = d.GetRasterBand(1)
    b.SetNoDataValue(7)
    b.WriteArray(make_image(H, W, "u8", 1, seed=5))
    d = None
    return p


def gdal_summary(path):
    d = gdal.Open(str(path))
    from osgeo import osr
    s = osr.SpatialReference(wkt=d.GetProjection())
    s.AutoIdentifyEPSG()
    return s.GetAuthorityCode(None), d.GetGeoTransform(), d.GetRasterBand(1).GetNoDataValue()


def ghost_area(path):
    """GDAL's structural metadata between a BigTIFF's header and its first
    IFD ("Header ghost area" of GDAL's COG driver), or None."""
    data = open(path, "rb").read(4096)
    assert data[:4] == b"II+\0"
    head = data[16:59]
    if not head.startswith(b"GDAL_STRUCTURAL_METADATA_SIZE="):
        return None
    return head + data[59:59 + int(head[30:36])]


@pytest.mark.parametrize("comp", ["none", "deflate", "zstd"])
def test_cog_validates_and_keeps_georeferencing(tmp_path, geo, comp):
    """GDAL's validator passes the COG with its full check, which reads
    every tile's leader and trailer and the order of the tiles, since the
    file declares them in the same ghost area as GDAL's own COG; gdalinfo
    then calls the layout COG."""
    from osgeo_utils.samples import validate_cloud_optimized_geotiff as v
    out, ref = tmp_path / "out.tif", tmp_path / "gdal.tif"
    run("run", "-i", geo, "-o", out, "-p", "gaussian sigma=1", "--layout", "cog", "--compression", comp, "--quiet")
    warnings, errors, _ = v.validate(str(out), full_check=True)
    assert errors == [] and warnings == [], (errors, warnings)
    gdal.Translate(str(ref), str(geo), format="COG", creationOptions=["BIGTIFF=YES", "COMPRESS=" + comp.upper()])
    assert ghost_area(out) is not None and ghost_area(out) == ghost_area(ref)
    assert gdal.Open(str(out)).GetMetadataItem("LAYOUT", "IMAGE_STRUCTURE") == "COG"
    for f, cog in [(out, True), (ref, True), (geo, False)]:
        assert ("in GDAL's COG layout" in run("info", f).stdout) == cog, f
    assert gdal_summary(out) == gdal_summary(geo) == ("32633", (500000, 10, 0, 4600000, 0, -10), 7.0)
    d = gdal.Open(str(out))
    assert d.GetRasterBand(1).GetOverviewCount() == 3
    info = run("info", out).stdout
    assert "EPSG:32633" in info and "nodata:    7" in info and "level 3:   188 x 138" in info


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="a tmpfs at /dev/shm")
@pytest.mark.parametrize("comp", ["deflate", "zstd", "lzw", "jpeg"])
def test_compressed_cog_is_the_same_file_cut_or_copied(tmp_path, src, comp):
    """A compressed COG's rows of tiles are written into regions of the file
    in the final order, and finish cuts their unused ends out (fallocate's
    COLLAPSE_RANGE: ext4, XFS). tmpfs cannot, and there the tiles are copied
    into a new file laid out the same. The same bytes either way: every row
    of tiles starts on 4 KiB, its tiles back to back, each between its
    leader (its size) and trailer (its last 4 bytes again), the last
    trailer ends the file, and GDAL's validator passes it."""
    from osgeo_utils.samples import validate_cloud_optimized_geotiff as v
    import tempfile
    shm = tempfile.mkdtemp(dir="/dev/shm")
    try:
        outs = [tmp_path / "disk.tif", os.path.join(shm, "shm.tif")]
        for out in outs:
            run("run", "-i", src[("u8", 3)], "-o", out, "-p", "gaussian sigma=1", "--layout", "cog", "--compression",
                comp, "--threads", 2, "--quiet")
        data = [open(o, "rb").read() for o in outs]
    finally:
        shutil.rmtree(shm)
    assert data[0] == data[1]
    warnings, errors, _ = v.validate(str(outs[0]), full_check=True)
    assert errors == [] and warnings == [], (errors, warnings)
    with tifffile.TiffFile(outs[0]) as t:
        pages = list(t.pages)
        assert len(pages) == 4 and pages[-1].shape[:2] == ((H + 7) // 8, (W + 7) // 8)
        end = None
        for pg in reversed(pages):  # the smallest level's tiles first, after the IFDs
            across = -(-pg.imagewidth // pg.tilewidth)
            off, n = pg.dataoffsets, pg.databytecounts
            for i in range(len(off)):
                lead = off[i] - 4
                if end is None:
                    assert lead % 4096 == 0 and lead > max(q.offset for q in pages)
                elif i % across == 0:  # zeros up to the next 4 KiB
                    assert lead % 4096 == 0 and 0 <= lead - end < 4096, (pg.index, i)
                    assert not any(data[0][end:lead]), (pg.index, i)
                else:
                    assert lead == end, (pg.index, i)
                d = data[0]
                assert int.from_bytes(d[lead:off[i]], "little") == n[i], (pg.index, i)
                assert d[off[i] + n[i]:off[i] + n[i] + 4] == d[off[i] + n[i] - 4:off[i] + n[i]], (pg.index, i)
                end = off[i] + n[i] + 4
        assert end == len(data[0])


def test_compressed_cog_under_a_file_size_limit(tmp_path, src):
    """Row regions span what the tiles could take, more than the file
    will: under a file-size limit (ulimit -f) that the COG fits but the
    regions do not, the tiles are appended and copied at the end, to the
    same bytes. Under one the COG does not fit, one message names the file
    (SIGXFSZ ignored: the write fails instead of killing the process) and
    nothing is left."""
    import resource
    args = ["run", "-i", src[("u8", 3)], "-p", "gaussian sigma=1", "--layout", "cog", "--compression", "deflate",
            "--quiet"]
    run(*args, "-o", tmp_path / "free.tif")
    size = (tmp_path / "free.tif").stat().st_size
    assert H * W * 3 * 4 // 3 > size + (64 << 10)  # the regions (a tile of room per tile) end past the limits

    def limited(out, limit):
        cap = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        return subprocess.run([TESSERA, *map(str, args), "-o", out], preexec_fn=cap, capture_output=True, text=True,
                              timeout=300)
    p = limited(tmp_path / "fits.tif", size + (64 << 10))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "fits.tif").read_bytes() == (tmp_path / "free.tif").read_bytes()
    p = limited(tmp_path / "big.tif", size // 2)
    assert p.returncode not in (0, -signal.SIGXFSZ), p.returncode
    assert p.stderr.count("\n") == 1 and "big.tif" in p.stderr and "File too large" in p.stderr, p.stderr
    assert sorted(f.name for f in tmp_path.iterdir()) == ["fits.tif", "free.tif"]


def test_big_endian_georeferencing_is_carried_as_values(tmp_path):
    """Tags are copied element by element into the little-endian output:
    a big-endian GeoTIFF (tifffile's, not GDAL's) reads the same in GDAL."""
    src = tmp_path / "be.tif"
    geo = [(33550, "d", 3, (2.5, 2.5, 0.0), False), (33922, "d", 6, (0, 0, 0, 1e5, 2e5, 0), False),
           (34735, "H", 12, (1, 1, 0, 2, 1024, 0, 1, 1, 3072, 0, 1, 32631), False), (42113, "s", 0, "0", False)]
    tifffile.imwrite(src, make_image(300, 400, "u16", 1), tile=(64, 64), byteorder=">", extratags=geo)
    out = tmp_path / "out.tif"
    run("run", "-i", src, "-o", out, "-p", "gaussian sigma=1", "--layout", "cog", "--quiet")
    assert gdal_summary(out) == gdal_summary(src) == ("32631", (1e5, 2.5, 0, 2e5, 0, -2.5), 0.0)


def test_ome_and_plain_keep_georeferencing(tmp_path, geo):
    for name, layout in [("o.ome.tif", "ome"), ("p.tif", "plain")]:
        out = tmp_path / name
        run("run", "-i", geo, "-o", out, "-p", "invert", "--pyramid", "--layout", layout, "--quiet")
        assert gdal_summary(out) == gdal_summary(geo)


def test_gdal_statistics_go_when_the_values_change(tmp_path):
    """GDAL_METADATA's band statistics (what QGIS stretches by) describe the
    input's values: dropped by any pipeline, kept by an empty one, as
    gdal_translate does; the items of bands the output lacks go too."""
    gdal.UseExceptions()
    src = tmp_path / "stats.tif"
    a = make_image(300, 400, "u8", 3, seed=11)
    d = gdal.GetDriverByName("GTiff").Create(str(src), 400, 300, 3, gdal.GDT_Byte, ["TILED=YES"])
    d.SetGeoTransform((500000, 10, 0, 4600000, 0, -10))
    d.SetMetadataItem("AREA_OR_POINT", "Point")
    for i in range(3):
        b = d.GetRasterBand(i + 1)
        b.WriteArray(a[..., i])
        b.ComputeStatistics(False)
        b.SetScale(0.5)
        b.SetOffset(i + 1.0)
    d = None

    def bands(path):
        d = gdal.Open(str(path))
        return d, [d.GetRasterBand(i + 1) for i in range(d.RasterCount)]

    d, want = bands(src)
    assert "STATISTICS_MEAN" in want[2].GetMetadata()
    same = tmp_path / "same.tif"
    run("run", "-i", src, "-o", same, "-p", "", "--quiet")
    d2, got = bands(same)
    assert [b.GetMetadata() for b in got] == [b.GetMetadata() for b in want]

    blur = tmp_path / "blur.tif"
    run("run", "-i", src, "-o", blur, "-p", "invert", "--pyramid", "--quiet")
    d3, got = bands(blur)
    assert d3.GetMetadataItem("AREA_OR_POINT") == "Point"
    for i, b in enumerate(got):
        assert not any(k.startswith("STATISTICS_") for k in b.GetMetadata()), i
        assert (b.GetScale(), b.GetOffset()) == (0.5, i + 1.0)
        # GDAL now computes them from the pixels, not the input's
        assert b.ComputeStatistics(False)[2] == pytest.approx(255 - a[..., i].mean(), abs=1e-6)

    gray = tmp_path / "gray.tif"
    run("run", "-i", src, "-o", gray, "-p", "grayscale", "--quiet")
    out = subprocess.run(["tiffinfo", str(gray)], capture_output=True, text=True).stdout
    assert 'sample="0"' in out and 'sample="1"' not in out and 'sample="2"' not in out and "STATISTICS" not in out
    d4, got = bands(gray)
    assert len(got) == 1 and (got[0].GetScale(), got[0].GetOffset()) == (0.5, 1.0)

    only = tmp_path / "only.tif"  # nothing but statistics: no GDAL_METADATA at all
    d = gdal.GetDriverByName("GTiff").Create(str(only), 64, 64, 1, gdal.GDT_Byte)
    d.GetRasterBand(1).WriteArray(a[:64, :64, 0])
    d.GetRasterBand(1).ComputeStatistics(False)
    d = None
    assert "GDAL Metadata" in subprocess.run(["tiffinfo", str(only)], capture_output=True, text=True).stdout
    run("run", "-i", only, "-o", tmp_path / "only-out.tif", "-p", "invert", "--quiet")
    assert "GDAL Metadata" not in subprocess.run(["tiffinfo", str(tmp_path / "only-out.tif")], capture_output=True,
                                                 text=True).stdout


@pytest.fixture(scope="module")
def nodata_inputs(tmp_path_factory):
    """GeoTIFFs made by GDAL whose nodata covers a collar, a ragged edge and
    scattered pixels: u8 (nodata 0, and 100 where valid means land on it),
    RGB, u16 (nodata at the type's top; 0 on an odd-sized image), f32
    (-9999 and NaN)."""
    from osgeo import osr
    gdal.UseExceptions()
    d = tmp_path_factory.mktemp("nodata")
    h, w = 1000, 1200  # even down to level 3, as GDAL sizes its overviews the same there
    yy, xx = np.mgrid[0:h, 0:w]
    out = {}
    for name, dt, bands, nd in [("u8", gdal.GDT_Byte, 1, 0), ("u8-100", gdal.GDT_Byte, 1, 100),
                                ("rgb", gdal.GDT_Byte, 3, 0), ("u16", gdal.GDT_UInt16, 1, 65535),
                                ("f32", gdal.GDT_Float32, 1, -9999), ("f32-nan", gdal.GDT_Float32, 1, float("nan")),
                                ("u16-odd", gdal.GDT_UInt16, 1, 0)]:
        rng = np.random.default_rng(len(out))
        if name == "u16-odd":  # odd edges at every level (numpy only: GDAL sizes those levels otherwise)
            h, w = 999, 1201
            yy, xx = np.mgrid[0:h, 0:w]
        p = d / f"{name}.tif"
        ds = gdal.GetDriverByName("GTiff").Create(str(p), w, h, bands, dt, ["TILED=YES", "INTERLEAVE=PIXEL"])
        ds.SetGeoTransform((500000, 10, 0, 4600000, 0, -10))
        s = osr.SpatialReference()
        s.ImportFromEPSG(32633)
        ds.SetProjection(s.ExportToWkt())
        for b in range(bands):
            if dt == gdal.GDT_Float32:
                a = (rng.integers(1, 60000, (h, w)) / 7).astype(np.float32)
            else:
                a = rng.integers(90, 111, (h, w)) if nd == 100 else rng.integers(1, 250 if dt == gdal.GDT_Byte else 65000, (h, w))
            a[(xx + yy + 37 * b) < 500] = nd
            a[((xx - yy) > 700) & (rng.random((h, w)) < 0.7)] = nd
            a[rng.random((h, w)) < 0.05] = nd
            ds.GetRasterBand(b + 1).SetNoDataValue(nd)
            ds.GetRasterBand(b + 1).WriteArray(a)
        ds = None
        out[name] = (p, nd)
    return out


def gdal_average(a, nodata):
    """GDAL's AVERAGE overview of one band, computed in memory."""
    d = gdal.GetDriverByName("MEM").Create("", a.shape[1], a.shape[0], 1, gdal.GDT_Float32)
    b = d.GetRasterBand(1)
    b.SetNoDataValue(nodata)
    b.WriteArray(a)
    d.BuildOverviews("AVERAGE", [2])
    return b.GetOverview(0).ReadAsArray()


@pytest.mark.parametrize("name", ["u8", "u8-100", "rgb", "u16", "f32", "f32-nan"])
def test_levels_skip_nodata_as_gdal_overviews_do(tmp_path, nodata_inputs, name):
    """A nodata value the output declares (GDAL_NODATA, from the input) is
    not averaged into the levels: each level equals GDAL's own AVERAGE
    overviews of the same input (integers exactly; f32 within 2 ulp: GDAL
    sums in double, tessera in float32 in the documented order, three
    roundings of at most half an ulp of the partial sum and one of the
    division) and
    numpy's reduction exactly. (f32 levels above the first are compared
    with GDAL's average of tessera's level below, so that differences do
    not compound.) Before, the edges of every nodata area
    darkened (a u8 collar's edge averaged 75 where the data's is 150)."""
    src, nd = nodata_inputs[name]
    out, ref = tmp_path / "out.tif", tmp_path / "ref.tif"
    run("run", "-i", src, "-o", out, "-p", "", "--layout", "cog", "--compression", "deflate", "--quiet")
    gdal.Translate(str(ref), str(src), format="COG", creationOptions=["RESAMPLING=AVERAGE", "BLOCKSIZE=256"])
    do, dr = gdal.Open(str(out)), gdal.Open(str(ref))
    assert do.GetRasterBand(1).GetOverviewCount() == dr.GetRasterBand(1).GetOverviewCount() == 3
    for band in range(1, do.RasterCount + 1):
        bo, br = do.GetRasterBand(band), dr.GetRasterBand(band)
        assert bo.GetNoDataValue() == nd or np.isnan(nd) and np.isnan(bo.GetNoDataValue())
        mine = bo.ReadAsArray()
        replaced = 0
        for L in range(3):
            prev, ref_np = mine, reduce(mine, "mean", nd)
            if name == "u8-100":  # valid samples whose mean is nodata, made 101
                replaced += int(np.sum((ref_np == 101) & (reduce(mine.astype(np.int64), "mean", None) == 100)))
            mine, theirs = bo.GetOverview(L).ReadAsArray(), br.GetOverview(L).ReadAsArray()
            assert np.array_equal(mine, ref_np, equal_nan=True), f"band {band} level {L + 1}: numpy"
            if mine.dtype.kind == "u":
                assert np.array_equal(mine, theirs), f"band {band} level {L + 1}: GDAL"
            else:  # the 1-ulp differences would compound up the levels: GDAL halves tessera's level below
                theirs = gdal_average(prev, nd)
                assert np.array_equal(np.isnan(mine), np.isnan(theirs)) and np.array_equal(mine == nd, theirs == nd)
                ok = ~np.isnan(mine) & (mine != nd)
                np.testing.assert_array_max_ulp(mine[ok], theirs[ok], maxulp=2)
        if name == "u8-100":
            assert replaced > 100, replaced


@pytest.mark.parametrize("mode", ["mean", "max", "min", "nearest"])
def test_max_min_skip_nodata_and_ranks_agree(tmp_path, nodata_inputs, mode):
    """max and min skip nodata too (GDAL 3.6 has neither to compare with:
    numpy); nearest takes the top-left sample whatever it is; odd edges
    skip it like whole blocks. The reduction travels to the workers: 3
    ranks with the upper tiles on workers make the same file as one
    process."""
    for name in ["rgb", "f32-nan", "u16-odd"]:
        src, nd = nodata_inputs[name]
        (tmp_path / name / "1").mkdir(parents=True)
        (tmp_path / name / "3").mkdir()
        one, three = tmp_path / name / "1" / "o.ome.tif", tmp_path / name / "3" / "o.ome.tif"  # the XML names the file
        run("run", "-i", src, "-o", one, "-p", "", "--pyramid", "--downsample", mode, "--tile", "256", "--quiet")
        cmd = [MPIEXEC, "--oversubscribe", "-np", "3", os.environ.get("TESSERA"), "run", "-i", str(src), "-o",
               str(three), "-p", "", "--pyramid", "--downsample", mode, "--tile", "256", "--quiet", "--threads", "1"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV)
        assert p.returncode == 0, p.stderr
        assert one.read_bytes() == three.read_bytes(), name
        _, lv = levels_of(one)
        for i in range(1, len(lv)):
            assert np.array_equal(lv[i], reduce(lv[i - 1], mode, nd), equal_nan=True), f"{name} level {i}"


def test_nodata_option_sets_or_drops_the_value(tmp_path, nodata_inputs):
    """--nodata V declares the output's nodata where the input has none (the
    file is then byte for byte what the input with that GDAL_NODATA makes),
    --nodata none drops the input's (levels are plain means again), and a
    value of another kind replaces it (f32: nan instead of -9999)."""
    src, nd = nodata_inputs["u8"]
    bare = tmp_path / "bare.tif"
    shutil.copy(src, bare)
    d = gdal.Open(str(bare), gdal.GA_Update)
    d.GetRasterBand(1).DeleteNoDataValue()
    d = None
    assert gdal.Open(str(bare)).GetRasterBand(1).GetNoDataValue() is None
    a, b = tmp_path / "a" / "o.tif", tmp_path / "b" / "o.tif"
    a.parent.mkdir()
    b.parent.mkdir()
    run("run", "-i", bare, "-o", a, "-p", "", "--layout", "cog", "--nodata", "0", "--quiet")
    run("run", "-i", src, "-o", b, "-p", "", "--layout", "cog", "--quiet")
    assert a.read_bytes() == b.read_bytes()
    assert gdal_summary(a)[2] == 0.0

    none = tmp_path / "none.tif"
    run("run", "-i", src, "-o", none, "-p", "", "--pyramid", "--nodata", "none", "--quiet")
    assert gdal.Open(str(none)).GetRasterBand(1).GetNoDataValue() is None
    _, lv = levels_of(none)
    assert np.array_equal(lv[1], reduce(lv[0], "mean")) and not np.array_equal(lv[1], reduce(lv[0], "mean", 0))

    f32, _ = nodata_inputs["f32"]
    nan = tmp_path / "nan.tif"
    run("run", "-i", f32, "-o", nan, "-p", "", "--pyramid", "--nodata", "nan", "--quiet")
    assert np.isnan(gdal.Open(str(nan)).GetRasterBand(1).GetNoDataValue())
    _, lv = levels_of(nan)
    assert np.array_equal(lv[1], reduce(lv[0], "mean", float("nan")), equal_nan=True)
    assert (lv[1] == -9999).any()  # -9999 is a value like any other now


@pytest.mark.parametrize("name", ["u16", "f32-nan"])
def test_zarr_and_hdf5_record_the_nodata(tmp_path, nodata_inputs, name):
    """Zarr and HDF5 pyramids skip the nodata too, and record it where their
    readers look: Zarr's fill_value (v2 and v3; xarray takes it for
    _FillValue), HDF5's fill value and a CF _FillValue attribute on every
    level."""
    import json
    zarr = pytest.importorskip("zarr")
    src, nd = nodata_inputs[name]
    same = (lambda v: np.isnan(v)) if np.isnan(nd) else (lambda v: v == nd)
    z2, z3, h5 = tmp_path / "o2.zarr", tmp_path / "o3.zarr", tmp_path / "o.h5"
    run("run", "-i", src, "-o", z2, "-p", "", "--pyramid", "--quiet")
    run("run", "-i", src, "-o", z3, "-p", "", "--pyramid", "--zarr-format", "3", "--quiet")
    run("run", "-i", src, "-o", h5, "-p", "", "--pyramid", "--quiet")
    g = zarr.open_group(str(z2), mode="r")
    lv = [g[str(i)] for i in range(4)]
    assert all(same(a.fill_value) for a in lv)
    for i in range(1, 4):
        assert np.array_equal(lv[i][:], reduce(lv[i - 1][:], "mean", nd), equal_nan=True), i
    for i in range(4):
        f = json.loads((z3 / str(i) / "zarr.json").read_text())["fill_value"]
        assert f == "NaN" if np.isnan(nd) else f == nd
    with h5py.File(h5, "r") as f:
        ds = [f["image"]] + [f[f"pyramid/{i}"] for i in range(1, 4)]
        assert all(same(d.fillvalue) and same(d.attrs["_FillValue"]) for d in ds)
        assert all(d.attrs["_FillValue"].dtype == d.dtype for d in ds)
        for i in range(4):
            assert np.array_equal(ds[i][:], lv[i][:], equal_nan=True), i
    plain = tmp_path / "plain.zarr"  # no nodata: 0 as before
    run("run", "-i", src, "-o", plain, "-p", "", "--nodata", "none", "--quiet")
    assert zarr.open_group(str(plain), mode="r")["0"].fill_value == 0


@pytest.mark.skipif(not shutil.which("vips") or not shutil.which("tiffinfo"), reason="vips and tiffinfo")
@pytest.mark.parametrize("layout", ["plain", "ome", "cog"])
@pytest.mark.parametrize("comp", ["none", "deflate", "lzw", "zstd", "jpeg"])
def test_vips_and_tiffinfo_read_every_layout(tmp_path, src, layout, comp):
    out = tmp_path / "out.tif"
    run("run", "-i", src[("u8", 3)], "-o", out, "-p", "gaussian sigma=1", "--layout", layout, "--pyramid",
        "--compression", comp, "--quiet")
    p = subprocess.run(["tiffinfo", "-D", str(out)], capture_output=True, text=True)
    assert p.returncode == 0 and "arning" not in p.stderr and "rror" not in p.stderr, p.stderr
    for level in range(4):  # each resolution: vips opens SubIFDs (subifd=) and COG overviews (page=)
        opt = f"[subifd={level - 1}]" if layout != "cog" else f"[page={level}]"
        p = subprocess.run(["vips", "avg", f"{out}{opt}"], capture_output=True, text=True)
        assert p.returncode == 0 and p.stderr == "", (level, p.stderr)
        if comp != "jpeg" and level == 0:
            d = gdal.Open(str(out))
            want = np.dstack([d.GetRasterBand(i + 1).ReadAsArray() for i in range(3)]).mean()
            assert abs(float(p.stdout) - want) < 1e-6


@pytest.fixture(scope="module")
def foreign(tmp_path_factory, geo):
    """Pyramids written by others: vips (SubIFDs and pages), GDAL's COG, tifffile's OME."""
    d = tmp_path_factory.mktemp("foreign")
    out = {}
    if shutil.which("vips"):
        for name, extra in [("vips-pages.tif", []), ("vips-subifd.tif", ["--subifd"])]:
            subprocess.run(["vips", "tiffsave", str(geo), str(d / name), "--tile", "--pyramid", "--tile-width", "256",
                            "--tile-height", "256", *extra], check=True, capture_output=True)
            out[name] = d / name
    subprocess.run(["gdal_translate", "-q", "-of", "COG", "-co", "COMPRESS=DEFLATE", str(geo), str(d / "gdal-cog.tif")], check=True)
    out["gdal-cog.tif"] = d / "gdal-cog.tif"
    # GDAL's internal nodata masks: a mask directory per level, after the
    # levels in a COG, interleaved with them in a GeoTIFF given overviews
    mask = ["--config", "GDAL_TIFF_INTERNAL_MASK", "YES"]
    subprocess.run(["gdal_translate", "-q", "-co", "TILED=YES", "-mask", "1", *mask, str(geo), str(d / "gdal-mask.tif")],
                   check=True)
    subprocess.run(["gdaladdo", "-q", *mask, str(d / "gdal-mask.tif"), "2", "4", "8"], check=True)
    out["gdal-mask.tif"] = d / "gdal-mask.tif"
    subprocess.run(["gdal_translate", "-q", "-of", "COG", "-co", "COMPRESS=LZW", str(d / "gdal-mask.tif"),
                    str(d / "gdal-cog-mask.tif")], check=True)
    out["gdal-cog-mask.tif"] = d / "gdal-cog-mask.tif"
    a = make_image(H, W, "u16", 1, seed=9)
    with tifffile.TiffWriter(d / "tifffile.ome.tif", bigtiff=True, ome=True) as w:
        w.write(a, tile=(256, 256), subifds=2, metadata={"axes": "YX", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.25})
        w.write(a[::2, ::2], tile=(256, 256), subfiletype=1)
        w.write(a[::4, ::4], tile=(256, 256), subfiletype=1)
    out["tifffile.ome.tif"] = d / "tifffile.ome.tif"
    return out


def gdal_levels(path):
    """Every level as GDAL decodes it: the bands' overviews."""
    d = gdal.Open(str(path))
    b = d.GetRasterBand(1)
    return [b.ReadAsArray()] + [b.GetOverview(i).ReadAsArray() for i in range(b.GetOverviewCount())]


@pytest.mark.parametrize("name", ["vips-pages.tif", "vips-subifd.tif", "gdal-cog.tif", "tifffile.ome.tif",
                                  "gdal-mask.tif", "gdal-cog-mask.tif"])
def test_foreign_pyramids_read_at_every_level(tmp_path, foreign, name):
    if name not in foreign:
        pytest.skip("vips not installed")
    path = foreign[name]
    if "mask" in name:
        want = gdal_levels(path)
    else:
        with tifffile.TiffFile(path) as t:
            s = t.series[0]
            want = [lv.asarray() for lv in s.levels] if len(s.levels) > 1 else [p.asarray() for p in t.pages]
    assert len(want) >= 3
    info = run("info", path).stdout
    assert f"{len(want)} levels" in info and " pages (reads" not in info
    if "mask" in name:  # a mask per level: neither a page nor a level
        assert f"{len(want)} transparency masks (not read)" in info
    for level, ref in enumerate(want):
        out = tmp_path / f"l{level}.tif"
        note = run("run", "-i", path, "-o", out, "-p", "", "--input-level", level, "--quiet").stderr
        assert ("has a transparency mask" in note) == ("mask" in name), note  # said even with --quiet
        got = tifffile.imread(out)
        assert got.shape == ref.shape and np.array_equal(got, ref), level
    p = run("run", "-i", path, "-o", tmp_path / "x.tif", "--input-level", len(want), "--quiet", check=False)
    assert p.returncode != 0 and f"--input-level {len(want)} is not one" in p.stderr
    assert not (tmp_path / "x.tif").exists()
    if name == "tifffile.ome.tif":  # the OME physical size is carried into tessera's OME
        run("run", "-i", path, "-o", tmp_path / "o.ome.tif", "--pyramid", "--quiet")
        with tifffile.TiffFile(tmp_path / "o.ome.tif") as t:
            assert 'PhysicalSizeX="0.25"' in t.pages[0].description


def test_hdf5_pyramid(tmp_path, src):
    out = tmp_path / "out.h5"
    run("run", "-i", src[("u8", 1)], "-o", out, "-p", "gaussian sigma=1", "--pyramid", "--compression", "deflate",
        "--quiet")
    with h5py.File(out) as f:
        ref = f["/image"][...]
        assert sorted(f["/pyramid"].keys()) == ["1", "2", "3"]
        for L in (1, 2, 3):
            ref = reduce(ref, "mean")
            d = f[f"/pyramid/{L}"]
            assert d.attrs["factor"] == 2 ** L and d.attrs["downsample"] in (b"mean", "mean")
            assert np.array_equal(d[...], ref), L


@pytest.mark.parametrize("args,msg", [
    (["-o", "{d}/o.h5", "--layout", "cog"], "--layout cog is a TIFF layout"),
    (["-o", "{d}/o.tif", "--layout", "cog", "--out-tile", "128", "--tile", "1024"], "tiles of 256 or 512"),
    (["-o", "{d}/o.tif", "--layout", "tiled"], "plain, ome or cog"),
    (["-o", "{d}/o.tif", "--downsample", "median"], "mean, nearest, max or min"),
    (["-o", "{d}/o.tif", "--input-level", "1"], "--input-level 1 is not one"),
    (["-o", "{d}/o.tif", "--pyramid", "--compression", "jpeg"], "jpeg compression takes u8"),
    (["-o", "{d}/o.tif", "--nodata", "70000"], "--nodata 70000: the output's samples are u16, whole numbers from 0"),
    (["-o", "{d}/o.tif", "--nodata", "1.5"], "--nodata 1.5: the output's samples are u16"),
    (["-o", "{d}/o.tif", "--nodata", "zero"], "--nodata zero: expected a number, nan or none"),
])
def test_bad_combinations(tmp_path, src, args, msg):
    args = [a.format(d=tmp_path) for a in args]
    p = run("run", "-i", src[("u16", 1)], *args, "--quiet", check=False)
    assert p.returncode != 0 and msg in p.stderr, p.stderr
    assert p.stderr.count("\n") == 1
    assert os.listdir(tmp_path) == []
