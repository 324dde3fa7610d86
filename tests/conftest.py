"""Shared helpers for tessera's Python tests: they run the real `tessera`
binary (path in $TESSERA, set by ctest) on TIFF files written with tifffile
and compare its output against independent references."""
import os
import subprocess

import numpy as np
import pytest
import tifffile

TESSERA = os.path.abspath(os.environ.get("TESSERA", os.path.join(os.path.dirname(__file__), "..", "build", "tessera")))

DTYPES = {"u8": np.uint8, "u16": np.uint16, "f32": np.float32}


def run(*args, check=True):
    """Run tessera; return the CompletedProcess (text mode)."""
    p = subprocess.run([TESSERA, *map(str, args)], capture_output=True, text=True, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"tessera {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}")
    return p


def write_tiff(path, a, tile=None, **kw):
    """Write a with photometric chosen from its channel count."""
    photometric = "rgb" if a.ndim == 3 and a.shape[2] >= 3 else "minisblack"
    extra = {}
    if a.ndim == 3 and a.shape[2] in (2, 4):
        extra["extrasamples"] = [2]  # unassociated alpha
    tifffile.imwrite(path, a, photometric=photometric, planarconfig="contig",
                     tile=(tile, tile) if tile else None, **extra, **kw)


def make_image(h, w, dtype, channels, seed=0):
    """A deterministic image with smooth structure, edges and noise, over the
    dtype's whole range (f32 in [0, 1])."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = []
    for c in range(channels):
        v = 0.5 + 0.3 * np.sin(x / (7.0 + c) + y / 11.0) * np.cos(y / (5.0 + 2 * c))
        v += 0.25 * (((x - w / 3) ** 2 + (y - h / 2) ** 2) < (min(h, w) / 4) ** 2)
        v += rng.normal(0, 0.08, size=(h, w))
        planes.append(np.clip(v, 0, 1))
    v = np.stack(planes, axis=-1) if channels > 1 else planes[0]
    if dtype == "f32":
        return v.astype(np.float32)
    hi = 255 if dtype == "u8" else 65535
    return np.rint(v * hi).astype(DTYPES[dtype])


def process(tmp_path, a, pipeline, *extra, name="in"):
    """Write a, run the pipeline over it, return the output array."""
    src = tmp_path / f"{name}.tif"
    dst = tmp_path / f"{name}.out.tif"
    write_tiff(src, a)
    run("run", "-i", src, "-o", dst, "-p", pipeline, "--quiet", "--force", *extra)
    return tifffile.imread(dst)


@pytest.fixture
def tessera_run():
    return run


def store_files(path):
    """Every file of a directory store (Zarr): relative name -> bytes, to compare stores file for file."""
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            full = os.path.join(root, f)
            out[os.path.relpath(full, path)] = open(full, "rb").read()
    return out
