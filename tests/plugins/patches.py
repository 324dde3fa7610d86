"""An independent model of patch_replace, in numpy: the database's patches
in the documented order, exact int64 brute-force nearest patches (lowest
index on ties), and the pasted image."""
import numpy as np


def db_patches(images, size, rotations=1, stride=None):
    """(n, size, size[, C]) patches: the stack, then the stack rot90'd once,
    twice, three times (rotations=4); each image's patches in raster order."""
    stride = stride or size
    out = []
    for q in range(4 if rotations == 4 else 1):
        for im in images:
            r = np.rot90(im, q)
            for y in range(0, r.shape[0] - size + 1, stride):
                for x in range(0, r.shape[1] - size + 1, stride):
                    out.append(r[y:y + size, x:x + size])
    return np.stack(out)


def nearest(img, patches):
    """The chosen patch of each block (raster order) and the pasted image;
    partial edge blocks match the patches' same-shaped top-left corners."""
    size = patches.shape[1]
    h, w = img.shape[:2]
    idx, out = [], np.empty_like(img)
    for by in range(0, h, size):
        for bx in range(0, w, size):
            blk = img[by:by + size, bx:bx + size].astype(np.int64)
            bh, bw = blk.shape[:2]
            cand = patches[:, :bh, :bw].astype(np.int64).reshape(len(patches), -1)
            d = ((cand - blk.reshape(1, -1)) ** 2).sum(1)
            j = int(np.argmin(d))  # the first of equal minima: the lowest index
            idx.append(j)
            out[by:by + bh, bx:bx + bw] = patches[j, :bh, :bw]
    return np.array(idx), out
