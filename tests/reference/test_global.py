"""Global kernels on tiled images, in one process and on 3 MPI ranks,
against whole-image references:
  threshold method=otsu  skimage.filters.threshold_otsu: the same value
                         (u8: one bin per value, as skimage bins integers;
                         u16: one bin per value too; f32: 256 bins over
                         [min, max], numpy's binning), the same image
  normalize              skimage.exposure.rescale_intensity: within 1 level
                         (f32 1e-6)
  equalize               skimage.exposure.equalize_hist: within 1 level
                         (f32 1e-4)
A global kernel's statistics see the kernels before it: the references
run on tessera's own output of that prefix."""
import json
import os
import subprocess

import numpy as np
import pytest
import tifffile
from skimage.exposure import equalize_hist, rescale_intensity
from skimage.filters import threshold_otsu

from conftest import TESSERA, make_image, run, write_tiff

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
HI = {"u8": 255, "u16": 65535, "f32": 1.0}


def tessera(ranks, *args):
    if ranks == 1:
        return run(*args)
    cmd = [os.environ.get("MPIEXEC", "mpirun"), "--oversubscribe", "-x", "OMP_WAIT_POLICY=passive",
           "-np", str(ranks), TESSERA, *map(str, args)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=ENV)
    assert p.returncode == 0, p.stderr
    return p


def tiled(tmp_path, a, pipeline, ranks, name="o"):
    src = tmp_path / "in.tif"
    write_tiff(src, a)
    out, stats = tmp_path / f"{name}.tif", tmp_path / f"{name}.json"
    tessera(ranks, "run", "-i", src, "-o", out, "-p", pipeline, "--tile", 48, "--threads", 2,
            "--stats", stats, "--quiet", "--force")
    return tifffile.imread(out), json.loads(stats.read_text())["resolved"]


def prefix(tmp_path, a, pipeline):
    """tessera's output of the kernels before the global one."""
    src, out = tmp_path / "pin.tif", tmp_path / "prefix.tif"
    write_tiff(src, a)
    run("run", "-i", src, "-o", out, "-p", pipeline, "--tile", 48, "--quiet", "--force")
    return tifffile.imread(out)


@pytest.mark.parametrize("ranks", [1, 3])
@pytest.mark.parametrize("dtype", ["u8", "u16", "f32"])
def test_otsu(tmp_path, dtype, ranks):
    a = make_image(211, 307, dtype, 1, seed=21)
    out, resolved = tiled(tmp_path, a, "gaussian sigma=1 | threshold method=otsu", ranks)
    g = prefix(tmp_path, a, "gaussian sigma=1")
    t = threshold_otsu(g)
    assert resolved == f"threshold value={float(t):.9g}", (resolved, t)
    np.testing.assert_array_equal(out, np.where(g > t, HI[dtype], 0).astype(out.dtype))


@pytest.mark.parametrize("ranks", [1, 3])
@pytest.mark.parametrize("dtype,ch", [("u8", 1), ("u16", 3), ("f32", 1)])
@pytest.mark.parametrize("bounds", [None, (10, 200)])
def test_normalize(tmp_path, dtype, ch, ranks, bounds):
    a = make_image(211, 307, dtype, ch, seed=22)
    if dtype == "f32":  # a range that is not [0, 1] already
        a = (a * 3.0 - 1.0).astype(np.float32)
    text = "normalize" if bounds is None else f"normalize low={bounds[0]} high={bounds[1]}"
    out, resolved = tiled(tmp_path, a, text, ranks)
    lo, hi = bounds if bounds else (0, HI[dtype])
    ref = rescale_intensity(a.astype(np.float64), in_range="image", out_range=(lo, hi))
    assert resolved.startswith("normalize min=")
    if dtype == "f32":
        np.testing.assert_allclose(out, ref, atol=1e-6)
    else:
        assert np.abs(out.astype(float) - np.rint(ref)).max() <= 1


@pytest.mark.parametrize("ranks", [1, 3])
@pytest.mark.parametrize("dtype,tol", [("u8", 1), ("u16", 1), ("f32", 1e-4)])
def test_equalize(tmp_path, dtype, tol, ranks):
    a = make_image(211, 307, dtype, 1, seed=23)
    out, _ = tiled(tmp_path, a, "equalize", ranks)
    ref = equalize_hist(a)
    if dtype == "f32":
        np.testing.assert_allclose(out, ref, atol=tol)
    else:
        assert np.abs(out.astype(float) - np.rint(ref * HI[dtype])).max() <= tol


@pytest.mark.parametrize("ranks", [1, 3])
def test_global_kernel_mid_pipeline(tmp_path, ranks):
    """gaussian | normalize | equalize | threshold method=otsu | dilate:
    four statistics passes in sequence, each seeing the kernels before it;
    the same bytes on 1 and 3 ranks."""
    a = make_image(211, 307, "u8", 1, seed=24)
    pipe = "gaussian sigma=1.5 | normalize | equalize | threshold method=otsu | dilate size=3"
    out, resolved = tiled(tmp_path, a, pipe, ranks)
    local, _ = tiled(tmp_path, a, pipe, 1, name="local")
    assert out.tobytes() == local.tobytes()
    # the threshold is skimage's Otsu of what it sees
    g = prefix(tmp_path, a, "gaussian sigma=1.5 | normalize | equalize")
    t = threshold_otsu(g)
    assert f"threshold value={float(t):.9g}" in resolved, resolved
    assert resolved.count(";") == 2  # normalize, equalize, threshold


def test_threshold_needs_value_or_otsu(tmp_path):
    for text, needle in [("threshold", "value' is required"), ("threshold method=otsu value=3", "do not give")]:
        p = run("run", "-i", "synth:32x32", "-o", tmp_path / "o.tif", "-p", text, check=False)
        assert p.returncode == 2 and needle in p.stderr, p.stderr
