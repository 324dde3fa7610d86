"""Python functions as kernels (issue 16): py:MODULE.FUNCTION through tile
and list mode, against the same function on the whole image; errors; MPI."""
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import scipy.ndimage as ndi
import tifffile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from conftest import TESSERA, make_image, run, write_tiff  # noqa: E402

MPIEXEC = os.environ.get("MPIEXEC") or "mpirun"
MPI_ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")

MYMOD = '''
import numpy as np

def boom(a, **kw):
    raise ValueError("boom at %d x %d" % a.shape[:2])

def shrink(a):
    return a[1:, 1:]

def words(a, factor=1, name="none", flag=None):
    assert isinstance(factor, float) and isinstance(name, str) and isinstance(flag, int), (factor, name, flag)
    assert not a.flags.writeable  # a view of tessera's buffer
    return a * factor

def fails_on_bright(a):
    if a.mean() > 140:
        raise RuntimeError("too bright")
    return a

def complex_out(a):
    return a.astype(np.complex64)
'''


@pytest.fixture
def mod(tmp_path):
    (tmp_path / "mymod.py").write_text(MYMOD)
    return tmp_path


def env_with(path):
    return dict(os.environ, PYTHONPATH=str(path))


def tess(*args, env=None, check=True):
    p = subprocess.run([TESSERA, *map(str, args)], capture_output=True, text=True, timeout=600, env=env)
    if check:
        assert p.returncode == 0, p.stderr
    return p


@pytest.mark.parametrize("dtype", ["u8", "u16", "f32"])
def test_gaussian_filter_equals_scipy_whole_image(tmp_path, dtype):
    a = make_image(333, 275, dtype, 1, seed=1)
    write_tiff(tmp_path / "in.tif", a)
    ref = ndi.gaussian_filter(a, sigma=2)  # mode reflect, truncate 4: radius 8
    for tile, threads in ((64, 1), (112, 2), (1024, 2)):
        run("run", "-i", tmp_path / "in.tif", "-o", tmp_path / "o.tif", "-p",
            "py:scipy.ndimage.gaussian_filter sigma=2 halo=8", "--tile", tile, "--threads", threads, "--quiet", "--force")
        assert np.array_equal(tifffile.imread(tmp_path / "o.tif"), ref), (dtype, tile)


def test_dtype_change_and_rgb(tmp_path):
    from skimage.filters import sobel
    a = make_image(150, 190, "u8", 1, seed=2)
    write_tiff(tmp_path / "in.tif", a)
    run("run", "-i", tmp_path / "in.tif", "-o", tmp_path / "o.tif", "-p", "py:skimage.filters.sobel halo=1 out_dtype=f32",
        "--tile", 48, "--quiet")
    assert np.array_equal(tifffile.imread(tmp_path / "o.tif"), sobel(a).astype(np.float32))
    # float results into u8: rounded half to even and clipped
    run("run", "-i", tmp_path / "in.tif", "-o", tmp_path / "u.tif", "-p", "py:numpy.sqrt", "--tile", 48, "--quiet")
    assert np.array_equal(tifffile.imread(tmp_path / "u.tif"), np.rint(np.sqrt(a)).astype(np.uint8))
    rgb = make_image(100, 120, "u8", 3, seed=4)
    write_tiff(tmp_path / "rgb.tif", rgb)
    run("run", "-i", tmp_path / "rgb.tif", "-o", tmp_path / "r.tif", "-p",
        "py:scipy.ndimage.uniform_filter size=3 halo=1", "--tile", 32, "--quiet")
    # the array is (h, w, 3): size=3 spans the channel axis too, whole in every tile
    assert np.array_equal(tifffile.imread(tmp_path / "r.tif"), ndi.uniform_filter(rgb, size=3))


def test_keyword_arguments_are_parsed(tmp_path, mod):
    a = make_image(40, 50, "f32", 1)
    write_tiff(tmp_path / "in.tif", a)
    tess("run", "-i", tmp_path / "in.tif", "-o", tmp_path / "o.tif", "-p", "py:mymod.words factor=2.5 name=x flag=3",
         "--quiet", env=env_with(mod))
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "o.tif"), a * np.float32(2.5))


def test_errors_name_the_kernel_and_tile(tmp_path, mod):
    write_tiff(tmp_path / "in.tif", make_image(100, 100, "u8", 1))
    base = ["run", "-i", tmp_path / "in.tif", "-o", tmp_path / "o.tif", "--tile", 48, "--quiet"]
    p = tess(*base, "-p", "py:mymod.boom", env=env_with(mod), check=False)
    assert p.returncode == 1 and "py:mymod.boom: ValueError: boom at 48 x 48" in p.stderr, p.stderr
    assert "tile 0 (x 0, y 0, 48 x 48)" in p.stderr
    p = tess(*base, "-p", "py:mymod.shrink", env=env_with(mod), check=False)
    assert p.returncode == 1 and "py:mymod.shrink: returned an array of shape (47, 47)" in p.stderr, p.stderr
    p = tess(*base, "-p", "py:mymod.complex_out", env=env_with(mod), check=False)
    assert p.returncode == 1 and "returned dtype complex64" in p.stderr, p.stderr
    p = tess(*base, "-p", "py:no_such_module.f", env=env_with(mod), check=False)
    assert p.returncode == 2 and "py:no_such_module.f: ModuleNotFoundError: No module named 'no_such_module'" in p.stderr
    p = tess(*base, "-p", "py:mymod.missing", env=env_with(mod), check=False)
    assert p.returncode == 2 and "has no attribute 'missing'" in p.stderr, p.stderr
    p = tess(*base, "-p", "py:mymod", env=env_with(mod), check=False)
    assert p.returncode == 2 and "py:MODULE.FUNCTION" in p.stderr
    assert not (tmp_path / "o.tif").exists() and not (tmp_path / "o.tif.partial").exists()


def test_list_mode_failure_goes_to_failed(tmp_path, mod):
    import cv2
    d = tmp_path / "imgs"
    d.mkdir()
    for i, v in enumerate((60, 200, 90)):
        cv2.imwrite(str(d / f"im{i}.png"), np.full((30, 40), v, np.uint8))
    p = tess("run", "-i", d, "-o", tmp_path / "o.h5", "-p", "py:mymod.fails_on_bright", "--quiet", env=env_with(mod),
             check=False)
    assert p.returncode == 3 and "im1.png" in p.stderr and "RuntimeError: too bright" in p.stderr, p.stderr
    with h5py.File(tmp_path / "o.h5") as f:
        failed = [(a.decode(), b.decode()) for a, b in f["failed"][()]]
        assert [n for n, _ in failed] == ["im1.png"] and "RuntimeError: too bright" in failed[0][1], failed
        assert len(f["names"]) == 2


def test_mpirun_three_ranks(tmp_path, mod):
    a = make_image(300, 260, "u8", 1, seed=7)
    write_tiff(tmp_path / "in.tif", a)
    args = ["run", "-i", tmp_path / "in.tif", "-o", tmp_path / "m.tif", "-p",
            "py:scipy.ndimage.gaussian_filter sigma=2 halo=8", "--tile", 64, "--threads", 1, "--quiet"]
    p = subprocess.run([MPIEXEC, "--oversubscribe", "-np", "3", TESSERA, *map(str, args)], capture_output=True,
                       text=True, timeout=300, env=MPI_ENV)
    assert p.returncode == 0, p.stderr
    assert np.array_equal(tifffile.imread(tmp_path / "m.tif"), ndi.gaussian_filter(a, sigma=2))
    bad = [x if x != "py:scipy.ndimage.gaussian_filter sigma=2 halo=8" else "py:mymod.boom" for x in args] + ["--force"]
    p = subprocess.run([MPIEXEC, "--oversubscribe", "-np", "3", TESSERA, *map(str, bad)], capture_output=True,
                       text=True, timeout=300, env=dict(MPI_ENV, PYTHONPATH=str(mod)))
    assert p.returncode == 1 and "ValueError: boom" in p.stderr, p.stderr
