#!/usr/bin/python3
"""Generate the inputs of jobs/patch-replace.ini under build/demo/patch: a
database of training images (train/, PNG, and the same as an HDF5 stack
train.h5:/images) and test images (test/, PNG, sizes that are not
multiples of 16, so edge blocks are partial). Gray u8 textures: stripes,
blobs and noise at several scales, plus a flat image, whose identical
patches make ties. Deterministic.

    /usr/bin/python3 jobs/make_patch_inputs.py [--train N] [--test N] [--size S] [OUT_DIR]

With the defaults (20 training images of 256 x 256, 16 x 16 patches,
rotations=4) the database holds 20 x 256 x 4 = 20,480 patches.
"""
import argparse
import os

import cv2
import h5py
import numpy as np


def texture(rng, h, w, k):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    a = rng.uniform(0, np.pi)
    f = 2 * np.pi / rng.uniform(6, 40)
    img = 110 + 60 * np.sin(f * (x * np.cos(a) + y * np.sin(a)))
    for _ in range(rng.integers(2, 6)):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(8, 48)
        img += rng.uniform(-80, 80) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))
    img = cv2.GaussianBlur(img, (0, 0), 1 + k % 3)
    img += rng.normal(0, 6, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def make(out, n_train=20, n_test=6, side=256):
    rng = np.random.default_rng(16)
    os.makedirs(f"{out}/train", exist_ok=True)
    os.makedirs(f"{out}/test", exist_ok=True)
    os.makedirs(f"{out}/../out", exist_ok=True)  # where the job file writes
    train = [texture(rng, side, side, k) for k in range(n_train - 1)] + [np.full((side, side), 200, np.uint8)]
    for i, im in enumerate(train):
        cv2.imwrite(f"{out}/train/train{i:04d}.png", im)
    with h5py.File(f"{out}/train.h5", "w") as f:
        f.create_dataset("images", data=np.stack(train), chunks=(1, side, side))
    for i in range(n_test):
        h, w = 300 + 37 * i, 420 - 23 * i
        im = texture(rng, h, w, i + 5)
        im[: h // 4, : w // 4] = 200  # flat: ties among the flat patches
        cv2.imwrite(f"{out}/test/test{i:04d}.png", im)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", nargs="?", default=os.path.join(os.path.dirname(__file__), "..", "build", "demo", "patch"))
    ap.add_argument("--train", type=int, default=20, help="training images")
    ap.add_argument("--test", type=int, default=6, help="test images")
    ap.add_argument("--size", type=int, default=256, help="side of a training image")
    a = ap.parse_args()
    make(a.out, a.train, a.test, a.size)
    print(f"wrote {os.path.abspath(a.out)}")
