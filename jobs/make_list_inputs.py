#!/usr/bin/python3
"""Generate the inputs of the list-mode job files (jobs/*.ini) under
build/demo/list: a folder of RGB PNGs and a fixed image to blend with, a
list of JPEGs, an HDF5 stack shaped like the Bengali.AI handwriting
data (N x 137 x 236 u8, dark strokes on white), and a large RGB tiled
TIFF to cut into strips. Deterministic.

    /usr/bin/python3 jobs/make_list_inputs.py [--count N] [OUT_DIR]
"""
import argparse
import os

import cv2
import h5py
import numpy as np
import tifffile


def rgb(rng, h, w, k):
    y, x = np.mgrid[0:h, 0:w]
    base = (np.sin(x / (7 + k % 11)) * 50 + np.cos(y / (5 + k % 7)) * 40 + 110)[..., None]
    return np.clip(base + rng.normal(0, 18, (h, w, 3)), 0, 255).astype(np.uint8)


def glyph(rng):
    """A handwriting-like u8 image: white page, dark strokes, a faint edge line."""
    img = np.full((137, 236), 250, np.uint8)
    for _ in range(rng.integers(3, 7)):
        pts = (rng.integers(20, 216, 4), rng.integers(15, 122, 4))
        cv2.polylines(img, [np.stack(pts, 1).astype(np.int32).reshape(-1, 1, 2)], False,
                      int(rng.integers(0, 60)), int(rng.integers(2, 6)))
    img = cv2.GaussianBlur(img, (3, 3), 0)
    img[:, 1] = 200  # a line at the side, which the 5-pixel inset ignores
    noise = rng.integers(0, 12, img.shape)
    return np.clip(img.astype(int) - noise, 0, 255).astype(np.uint8)


def make(out, small=False, count=None):
    rng = np.random.default_rng(2024)
    n_png, n_jpg, n_glyph = (12, 8, 40) if small else (200, 100, count or 2000)
    os.makedirs(f"{out}/folder", exist_ok=True)
    os.makedirs(f"{out}/jpegs", exist_ok=True)
    os.makedirs(f"{out}/../out", exist_ok=True)  # where the job files write
    for i in range(n_png):
        cv2.imwrite(f"{out}/folder/img{i:04d}.png", rgb(rng, 256, 320, i))
    cv2.imwrite(f"{out}/fixed.png", rgb(rng, 256, 320, 99)[:, ::-1])
    lines = []
    for i in range(n_jpg):
        name = f"jpegs/photo{i:04d}.jpg"
        cv2.imwrite(f"{out}/{name}", rgb(rng, 240, 320, i + 7), [cv2.IMWRITE_JPEG_QUALITY, 90])
        lines.append(name)
    with open(f"{out}/jpegs.txt", "w") as f:
        f.write("\n".join(lines) + "\n")
    h, w = (160, 400) if small else (2048, 2048)
    tifffile.imwrite(f"{out}/large.tif", rgb(rng, h, w, 3), tile=(256, 256), compression="zlib")
    with h5py.File(f"{out}/bengali.h5", "w") as f:
        f.create_dataset("images", data=np.stack([glyph(rng) for _ in range(n_glyph)]),
                         chunks=(1, 137, 236), compression="gzip")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", nargs="?", default=os.path.join(os.path.dirname(__file__), "..", "build", "demo", "list"))
    ap.add_argument("--count", type=int, default=2000, help="Bengali images")
    a = ap.parse_args()
    make(a.out, count=a.count)
    print(f"wrote {os.path.abspath(a.out)}")
