#!/usr/bin/env python3
"""The pyramid's levels of the demo output, side by side (docs/bench/pyramid.png).

Reads the OME-TIFF scripts/demo.sh writes (build/demo/edges-16384.ome.tif)
with tifffile, the reader QuPath's and napari's users go through, and
draws the centre 256 x 256 window of each level from 4096^2 down, at its
own pixel size: each panel shows twice the width of the one before at half
the detail, and the last (256^2 or less) is the whole image.

usage: bench/pyramid_picture.py [--input build/demo/edges-16384.ome.tif] [--out docs/bench/pyramid.png]
"""
import argparse
import os

import matplotlib
import tifffile

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", default=os.path.join(HERE, "..", "build", "demo", "edges-16384.ome.tif"))
    ap.add_argument("--out", default=os.path.join(HERE, "..", "docs", "bench", "pyramid.png"))
    a = ap.parse_args()
    with tifffile.TiffFile(a.input) as t:
        assert t.is_ome, f"{a.input} is not an OME-TIFF"
        levels = t.series[0].levels
        shown = []
        for i, lv in enumerate(levels):
            h, w = lv.shape[:2]
            if h * w > 4096 * 4096:
                continue  # levels 0 and 1: a 256 window of them shows single edges
            img = lv.asarray()
            y0, x0 = max(0, h // 2 - 128), max(0, w // 2 - 128)
            shown.append((i, (w, h), img[y0:y0 + 256, x0:x0 + 256]))
    fig, axes = plt.subplots(1, len(shown), figsize=(2.4 * len(shown), 2.9))
    for ax, (i, (w, h), img) in zip(axes, shown):
        ax.imshow(img, cmap="gray", interpolation="nearest")
        ax.set_title(f"level {i}: {w}x{h}", fontsize=8)
        ax.axis("off")
    fig.suptitle("tessera demo output, --pyramid --layout ome, read by tifffile", fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
