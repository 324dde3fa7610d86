"""The Bengali.AI handwriting preprocessing as people ran it (numpy +
OpenCV, per image), which jobs/bengali.ini reproduces. The tests compare
tessera's output with it and bench/bench_list.py times it.

    preprocess(raw) -> 128 x 128 u8, raw: 137 x 236 u8 (dark strokes on white)
"""
import cv2
import numpy as np


def bbox(img):
    rows = np.any(img, axis=1)
    cols = np.any(img, axis=0)
    rmin, rmax = np.where(rows)[0][[0, -1]]
    cmin, cmax = np.where(cols)[0][[0, -1]]
    return rmin, rmax, cmin, cmax


def crop_resize(img0, size=128, pad=16):
    """The original kernel's function, quirks included: the box is found in
    the 5-pixel inset image but applied to the full one, the slice end is
    exclusive, and the padding may leave it one pixel short of square."""
    height, width = img0.shape
    ymin, ymax, xmin, xmax = bbox(img0[5:-5, 5:-5] > 80)
    xmin = xmin - 13 if (xmin > 13) else 0
    ymin = ymin - 10 if (ymin > 10) else 0
    xmax = xmax + 13 if (xmax < width - 13) else width
    ymax = ymax + 10 if (ymax < height - 10) else height
    img = img0[ymin:ymax, xmin:xmax]
    img[img < 28] = 0
    lx, ly = xmax - xmin, ymax - ymin
    side = max(lx, ly) + pad
    img = np.pad(img, [((side - ly) // 2,), ((side - lx) // 2,)], mode="constant")
    return cv2.resize(img, (size, size))


def preprocess(raw):
    img0 = 255 - raw
    img = (img0 * (255.0 / img0.max())).astype(np.uint8)
    return crop_resize(img)
