#!/usr/bin/python3
"""Seed corpora and regression inputs for the fuzz harnesses (the chaos
tests, tests/cli/test_hostile.py, import the same makers).

    seeds.py OUT

writes OUT/<target>/ (small valid files of every kind the reader takes,
the starting points of mutation) and OUT/regress/<target>/ (one file per
defect found by outside testing, made from its description; each must be
refused or read within bounded time and memory). Nothing binary is
committed: this script is the corpus's source.
"""
import os
import struct
import subprocess
import sys
import zlib

import cv2
import h5py
import numpy as np
import tifffile

OUT = "."
rng = np.random.default_rng(12)


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    return os.path.join(d, name)


def path(target, name):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, name)


def img(h, w, c, dt):
    if dt == np.float32:
        a = rng.random((h, w, c), dtype=np.float32)
    else:
        a = rng.integers(0, np.iinfo(dt).max, (h, w, c), dtype=dt, endpoint=True)
    return a[:, :, 0] if c == 1 else a


# ---- TIFF: tile reader and list decoder ---------------------------------
def tiffs(target, regress):
    for dt in (np.uint8, np.uint16, np.float32):
        for c in (1, 3):
            a = img(24, 20, c, dt)
            n = f"{np.dtype(dt).name}_{c}"
            tifffile.imwrite(path(target, f"strip_{n}.tif"), a, rowsperstrip=5)
            tifffile.imwrite(path(target, f"tile_{n}.tif"), img(40, 36, c, dt), tile=(16, 16))
    a = img(20, 20, 1, np.uint8)
    tifffile.imwrite(path(target, "zlib.tif"), a, tile=(16, 16), compression="zlib")
    tifffile.imwrite(path(target, "bigtiff.tif"), a, bigtiff=True, tile=(16, 16))
    tifffile.imwrite(path(target, "be.tif"), img(20, 20, 1, np.uint16), byteorder=">")
    tifffile.imwrite(path(target, "rgba.tif"), img(17, 9, 4, np.uint8), extrasamples=["unassalpha"])
    tifffile.imwrite(path(target, "planar.tif"), img(36, 10, 1, np.uint8).reshape(3, 12, 10),
                     planarconfig="separate", photometric="rgb")
    tifffile.imwrite(path(target, "miniswhite.tif"), a, photometric="miniswhite")
    with tifffile.TiffWriter(path(target, "multipage.tif")) as t:
        for _ in range(3):
            t.write(a)
    tifffile.imwrite(path(target, "onewide.tif"), img(30, 1, 1, np.uint8), rowsperstrip=4)
    tifffile.imwrite(path(target, "onehigh.tif"), img(1, 30, 1, np.uint8))
    # what outputs carry (io/tiff_meta.c): GeoTIFF, GDAL and resolution tags, big- and little-endian
    geo = [(33550, "d", 3, (10.0, 10.0, 0.0), False), (33922, "d", 6, (0, 0, 0, 5e5, 4.6e6, 0), False),
           (34735, "H", 16, (1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32633), False),
           (34737, "s", 0, "WGS 84 / UTM 33N|", False), (42113, "s", 0, "7", False),
           (42112, "s", 0, '<GDALMetadata>\n  <Item name="STATISTICS_MEAN" sample="0" role="x">1.5</Item>\n'
                           '  <Item name="SCALE" sample="1">2</Item>\n  <Item name="AREA_OR_POINT">Point</Item>\n'
                           '</GDALMetadata>', False)]
    for order in "<>":
        tifffile.imwrite(path(target, f"geo{order == '>' and '_be' or ''}.tif"), a, tile=(16, 16), extratags=geo,
                         byteorder=order, resolution=(300, 300), resolutionunit="CENTIMETER")
    # pyramids: SubIFDs (OME), and reduced IFDs after the page (GDAL's COG)
    b = img(64, 48, 1, np.uint8)
    with tifffile.TiffWriter(path(target, "subifds.ome.tif"), ome=True) as t:
        t.write(b, tile=(16, 16), subifds=2, metadata={"axes": "YX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
        t.write(b[::2, ::2], tile=(16, 16), subfiletype=1)
        t.write(b[::4, ::4], tile=(16, 16), subfiletype=1)
    with tifffile.TiffWriter(path(target, "reduced.tif")) as t:
        for k in (1, 2, 4):
            t.write(b[::k, ::k], tile=(16, 16), subfiletype=0 if k == 1 else 1)
    base = path(target, "tile_uint8_1.tif")
    for comp in ("lzw", "packbits", "jpeg", "zstd", "lzma"):
        out = path(target, f"tiffcp_{comp}.tif")
        r = subprocess.run(["tiffcp", "-c", comp, "-t", "-w", "16", "-l", "16", base, out], capture_output=True)
        if r.returncode and os.path.exists(out):
            os.unlink(out)
    # GDAL's COG: its structural metadata between the header and the first
    # IFD ("ghost area", which `info` reads), tiles between leaders and trailers
    base = path(target, "tile_uint8_1.tif")
    for big in ("NO", "YES"):
        out = path(target, f"gdal_cog_big{big}.tif")
        r = subprocess.run(["gdal_translate", "-q", "-of", "COG", "-co", "BLOCKSIZE=16", "-co", "BIGTIFF=" + big,
                            "-co", "COMPRESS=DEFLATE", base, out], capture_output=True)
        if r.returncode and os.path.exists(out):
            os.unlink(out)
    # regression: fewer tile offsets than tiles (libtiff pads them, warns)
    good = open(path(target, "tile_uint8_1.tif"), "rb").read()
    put(regress, "fewer_tile_offsets.tif", short_offsets(good))
    put(regress, "no_strip_offsets.tif", retag(open(path(target, "strip_uint8_1.tif"), "rb").read(), {273: 65000, 279: 65001}))


def retag(b, renames):
    """A classic little-endian TIFF with some tags renumbered (to unknown
    ones): a stripped image without StripOffsets, say."""
    b = bytearray(b)
    ifd = struct.unpack_from("<I", b, 4)[0]
    for i in range(struct.unpack_from("<H", b, ifd)[0]):
        e = ifd + 2 + 12 * i
        tag = struct.unpack_from("<H", b, e)[0]
        if tag in renames:
            struct.pack_into("<H", b, e, renames[tag])
    return bytes(b)


def short_offsets(b):
    """A classic little-endian TIFF with TileOffsets/TileByteCounts claiming
    one entry fewer than the image has tiles."""
    b = bytearray(b)
    assert b[:4] == b"II*\0"
    ifd = struct.unpack_from("<I", b, 4)[0]
    n = struct.unpack_from("<H", b, ifd)[0]
    for i in range(n):
        e = ifd + 2 + 12 * i
        tag, typ, count = struct.unpack_from("<HHI", b, e)
        if tag in (324, 325) and count > 1:
            struct.pack_into("<I", b, e + 4, count - 1)
    return bytes(b)


# ---- PNG ------------------------------------------------------------------
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_raw(w, h, depth, ctype, idat, extra=b""):
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0)) + extra
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def pngs(target, regress):
    for dt in (np.uint8, np.uint16):
        for c in (1, 3, 4):
            cv2.imwrite(path(target, f"{np.dtype(dt).name}_{c}.png"), img(9, 13, c, dt))
    from PIL import Image
    Image.fromarray(img(8, 8, 3, np.uint8)).convert("P").save(path(target, "palette.png"))
    Image.fromarray(img(8, 8, 1, np.uint8) > 128).save(path(target, "bilevel.png"))
    Image.fromarray(img(8, 8, 1, np.uint8)).convert("LA").save(path(target, "gray_alpha.png"))
    Image.fromarray(img(16, 16, 3, np.uint8)).save(path(target, "interlaced.png"), interlace=1)
    # regressions: header sizes far beyond the data, and a small file of a huge image
    put(regress, "width_2p30.png", png_raw(1 << 30, 1, 8, 0, zlib.compress(b"\0" * 64)))
    put(regress, "height_2p30.png", png_raw(1, 1 << 30, 8, 0, zlib.compress(b"\0" * 64)))
    n = 17000  # 289 Mpx of zeros, ~300 KB: above the default --max-image-pixels
    z = zlib.compressobj(9)
    row = b"\0" * (n + 1)
    idat = b"".join(z.compress(row) for _ in range(n)) + z.flush()
    put(regress, "zeros_17000.png", png_raw(n, n, 8, 0, idat))
    put(regress, "chunk_beyond_file.png", chunk_beyond_file())


def chunk_beyond_file():
    """An 8 x 8 PNG whose tEXt chunk claims 2 GB (libpng allocated it)."""
    good = png_raw(8, 8, 8, 0, zlib.compress(b"\0" * 72))
    return good[:33] + struct.pack(">I", 2062050960) + b"tEXt" + b"key\0value" + good[33:]


# ---- JPEG -----------------------------------------------------------------
def jpegs(target, regress):
    for c in (1, 3):
        for q in (50, 95):
            cv2.imwrite(path(target, f"c{c}_q{q}.jpg"), img(16, 24, c, np.uint8), [cv2.IMWRITE_JPEG_QUALITY, q])
    cv2.imwrite(path(target, "progressive.jpg"), img(16, 16, 3, np.uint8), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    good = open(path(target, "c3_q95.jpg"), "rb").read()
    # regressions: a scan that ends early at EOI, and a 65500 x 65500 header with no data
    sos = good.index(b"\xff\xda")
    put(regress, "early_eoi.jpg", good[:sos + 40] + b"\xff\xd9")
    sof = good.index(b"\xff\xc0")
    huge = bytearray(good[:sos + 20])
    struct.pack_into(">HH", huge, sof + 5, 65500, 65500)
    put(regress, "huge_no_data.jpg", bytes(huge) + b"\xff\xd9")
    put(regress, "truncated.jpg", good[:len(good) * 2 // 3])


# ---- HDF5 -----------------------------------------------------------------
def hdf5s(image, stack, regress):
    for dt in (np.uint8, np.uint16, np.float32):
        with h5py.File(path(image, f"chunked_{np.dtype(dt).name}.h5"), "w") as f:
            f.create_dataset("image", data=img(20, 18, 1, dt), chunks=(8, 8), compression="gzip")
        with h5py.File(path(image, f"contig_{np.dtype(dt).name}.h5"), "w") as f:
            f.create_dataset("image", data=img(12, 10, 3, dt))
        with h5py.File(path(stack, f"stack_{np.dtype(dt).name}.h5"), "w") as f:
            f.create_dataset("stack", data=img(3 * 9, 7, 1, dt).reshape(3, 9, 7), chunks=(1, 9, 7),
                             compression="gzip")
        with h5py.File(path(stack, f"stack_rgb_{np.dtype(dt).name}.h5"), "w") as f:
            f.create_dataset("stack", data=img(2 * 5, 6, 3, dt).reshape(2, 5, 6, 3))
    with h5py.File(path(image, "shuffle.h5"), "w") as f:
        f.create_dataset("image", data=img(20, 18, 1, np.uint16), chunks=(8, 8), compression="gzip", shuffle=True)
    # regression: the root group's local heap address forged (libhdf5 1.10.8 read NULL)
    src = path(image, "chunked_uint8.h5")
    put(regress.replace("hdf5_stack", "hdf5_image"), "root_heap_undef.h5", forge_root_heap(open(src, "rb").read()))
    put(regress.replace("hdf5_stack", "hdf5_image"), "heap_free_cycle.h5", forge_heap_free_cycle(open(src, "rb").read()))
    put(regress.replace("hdf5_stack", "hdf5_image"), "base_186.h5", forge_base(open(src, "rb").read(), 186))
    put(regress.replace("hdf5_stack", "hdf5_image"), "driver_block.h5", forge_driver_block(open(src, "rb").read()))
    # regression: a stack's image height past its fixed maximum (libhdf5 1.10.8 read past a chunk)
    bad = path(regress, "dims_past_max.h5")
    with h5py.File(bad, "w") as f:
        f.create_dataset("stack", data=img(27, 7, 1, np.uint16).reshape(3, 9, 7), chunks=(1, 9, 7), compression="gzip")
    forge_dims(bad, "stack", 1, 1016)
    # regression: a chunk index entry with an address and no bytes (libhdf5 1.10.8 read past 8 bytes)
    bad = path(regress, "chunk_of_no_bytes.h5")
    with h5py.File(bad, "w") as f:
        f.create_dataset("stack", data=img(27, 7, 1, np.uint8).reshape(3, 9, 7), chunks=(1, 9, 7))
    forge_chunk_size(bad, 3, 2)
    # regression: an image 0 pixels wide (a division by zero sizing its read band; UBSan)
    with h5py.File(path(regress.replace("hdf5_stack", "hdf5_image"), "width_0.h5"), "w") as f:
        f.create_dataset("image", shape=(5, 0), dtype=np.uint8)
    # regression: a compact /image whose layout claims no data (libhdf5 1.10.8 read NULL)
    bad = path(regress.replace("hdf5_stack", "hdf5_image"), "compact_no_data.h5")
    compact(bad, "image", img(12, 10, 3, np.float32))
    forge_compact_size(bad, "image")
    # regressions: stacks whose header claims far more images than the file holds
    for name, n in (("stack_1e14.h5", 10 ** 14), ("stack_2p40.h5", 1 << 40)):
        with h5py.File(path(regress, name), "w") as f:
            f.create_dataset("stack", shape=(n, 8, 8), dtype=np.uint8, chunks=(1, 8, 8))


def forge_root_heap(b):
    """Superblock 0, object header 1 (h5py's default): the root group's
    symbol table message with its local heap address set to undefined."""
    b = bytearray(b)
    assert b[:8] == b"\x89HDF\r\n\x1a\n" and b[8] == 0
    ohdr = struct.unpack_from("<Q", b, 56 + 8)[0]
    nmsg = struct.unpack_from("<H", b, ohdr + 2)[0]
    at = ohdr + 16
    for _ in range(nmsg):
        typ, n = struct.unpack_from("<HH", b, at)
        if typ == 0x11:
            struct.pack_into("<Q", b, at + 8 + 8, 0xFFFFFFFFFFFFFFFF)
            return bytes(b)
        at += 8 + n
    raise ValueError("no symbol table message")


def forge_dims(path, dataset, axis, value):
    """Rewrite one current dimension of a dataset in place (its dataspace
    message, object header version 1), past its fixed maximum."""
    with h5py.File(path, "r") as f:
        ohdr = h5py.h5o.get_info(f[dataset].id).addr
    b = bytearray(open(path, "rb").read())
    assert b[ohdr] == 1
    nmsg = struct.unpack_from("<H", b, ohdr + 2)[0]
    at = ohdr + 16
    for _ in range(nmsg):
        typ, n = struct.unpack_from("<HH", b, at)
        if typ == 0x0001:  # dataspace: version, rank, flags, 5 reserved, dims (8 bytes each)
            struct.pack_into("<Q", b, at + 8 + 8 + 8 * axis, value)
            open(path, "wb").write(bytes(b))
            return
        at += 8 + n
    raise ValueError("no dataspace message")


def forge_heap_free_cycle(b):
    """The root group's local heap (superblock 0: its address cached in the
    root entry) with its first free block pointing at itself."""
    b = bytearray(b)
    heap = struct.unpack_from("<Q", b, 56 + 32)[0]
    assert b[heap:heap + 4] == b"HEAP"
    free, daddr = struct.unpack_from("<Q", b, heap + 16)[0], struct.unpack_from("<Q", b, heap + 24)[0]
    struct.pack_into("<Q", b, daddr + free, free)
    return bytes(b)


def forge_driver_block(b):
    """Superblock 0 naming a driver information block near the file's end
    that claims 2 GB of driver information."""
    b = bytearray(b) + bytes(16)
    at = len(b) - 16
    struct.pack_into("<Q", b, 24 + 24, at)
    # version 0, 3 reserved bytes, the claimed size, the 8-byte driver id
    # (the multi driver's, "NCSAmult"): only the size is forged
    struct.pack_into("<BxxxI8s", b, at, 0, 0x7FFFFFF0, b"NCSAmult")
    return bytes(b)


def forge_base(b, base):
    """Superblock 0 with a base address other than 0 (every address moves)."""
    b = bytearray(b)
    struct.pack_into("<Q", b, 24, base)
    return bytes(b)


def forge_compact_size(path, dataset, size=0):
    """A compact dataset (its data in the object header) whose layout
    message claims `size` bytes of data."""
    with h5py.File(path, "r") as f:
        ohdr = h5py.h5o.get_info(f[dataset].id).addr
    b = bytearray(open(path, "rb").read())
    nmsg = struct.unpack_from("<H", b, ohdr + 2)[0]
    at = ohdr + 16
    for _ in range(nmsg):
        typ, n = struct.unpack_from("<HH", b, at)
        if typ == 0x0008 and b[at + 8] == 3 and b[at + 9] == 0:  # layout version 3, compact: then the size
            struct.pack_into("<H", b, at + 10, size)
            open(path, "wb").write(bytes(b))
            return
        at += 8 + n
    raise ValueError("no compact layout message")


def compact(path, name, data):
    """A dataset stored compact (h5py has no keyword for it)."""
    with h5py.File(path, "w") as f:
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        sid = h5py.h5s.create_simple(data.shape)
        d = h5py.h5d.create(f.id, name.encode(), h5py.h5t.py_create(data.dtype), sid, dcpl=dcpl)
        d.write(h5py.h5s.ALL, h5py.h5s.ALL, data)


def forge_chunk_size(path, rank, index, size=0):
    """Set the stored size of chunk `index` in a version-1 chunk B-tree
    (h5py's default) to `size`, its address kept."""
    b = bytearray(open(path, "rb").read())
    node = b.index(b"TREE\x01")  # node type 1: raw data chunks
    key = 8 + 8 * (rank + 1)       # size, filter mask, offsets (rank + 1)
    struct.pack_into("<I", b, node + 24 + index * (key + 8), size)
    open(path, "wb").write(bytes(b))


# ---- text parsers ---------------------------------------------------------
PIPELINES = [
    "gaussian sigma=1.5", "median size=3 | sobel", "threshold value=100 | invert",
    "box size=5 | erode size=3 | dilate size=3 | open size=3 | close size=3", "otsu | stats",
    "resize width=10 height=7 interp=area", "normalize low=0 high=1 | scale factor=2 offset=1",
    "equalize | grayscale", "convolve weights=1,2,1;2,4,2;1,2,1 normalize=true", "crop x=1 y=2 width=5 height=4",
    "bbox_crop threshold=10 pad=2 square=true", "hog orientations=9 pixels_per_cell=8 cells_per_block=2",
    "tv_denoise weight=0.1 max_iter=5", "unsharp sigma=1 amount=1.5", "threshold method=otsu | resize scale=0.5",
]


def texts(pipe, job, journal, regress_pipe):
    for i, p in enumerate(PIPELINES):
        put(pipe, f"p{i}", bytes([i % 12]) + p.encode())
    # regressions: blend with= a file that cannot be opened
    for i, w in enumerate(("/nonexistent.png", "/", "5", "\\", "/dev/null")):
        put(regress_pipe, f"blend_{i}", b"\0blend with=" + w.encode())
    put(regress_pipe, "resize_huge", b"\0resize width=1000000 height=1000000")
    put(job, "tile.ini", b"[input]\ninput = synth:64x64\n[output]\noutput = /nonexistent/out.tif\n"
        b"[pipeline]\npipeline = gaussian sigma=2\n  | median size=3\n[partition]\ntile = 32\nboundary = reflect\n"
        b"[run]\nthreads = 2\nquiet = true\n")
    put(job, "list.ini", b"[input]\ninput = imgs/\nglob = *.png\nrecursive = true\n[output]\n"
        b"output = out.h5\ncompression = deflate\ncompression_level = 6\nimages = false\n"
        b"[pipeline]\npipeline = blend with=x.png fit=resize\n")
    put(job, "bad.ini", b"[nope]\nkey = value\n")

    def line(s):
        return s.encode() + b" #%08x\n" % (zlib.crc32(s.encode()) & 0xFFFFFFFF)
    head = line("tessera-journal 1") + line("fp input=synth:64x64") + line("fp pipeline=gaussian sigma=2")
    put(journal, "tiles", head + line("stats 0 0 3 0x1p+0 0x1.8p+1 -0x1p-2") + line("task 0 2 0 100 deadbeef 100 50 0") +
        line("task 1 1 150 10 1"))
    body = b"hello"
    put(journal, "records", head + line("rec 0 5 %08x" % (zlib.crc32(body) & 0xFFFFFFFF)) + body + b"\n")
    put(journal, "torn", head + b"task 0 1 0 1")
    # a pyramid's snapshot after task 1: one held tile (level 1, index 0, 4 pixels in)
    snap = struct.pack("<qqq", 1, 0, 4) + bytes(range(16))
    put(journal, "snap", head + line("task 0 1 0 100 deadbeef") + line("task 1 1 100 10 1") +
        line("snap 2 %d %08x" % (len(snap), zlib.crc32(snap) & 0xFFFFFFFF)) + snap + b"\n")


# ---- Zarr: a store as one input (fuzz_zarr.c's layout) -------------------
SEP = b"\xffZRS"
KEYS = ["0/0", "0/1", "1/0", "1/1", "0.0", "0.1", "1.0", "1.1", "c/0/0", "c/0/1", "c/1/0", "c/1/1", "0/0/0",
        "c/0/0/0", "0/0/0/0", "1/0/0", "1/0/0/0"]


def store_input(flags, meta, chunks):
    """flags bit 0: zarr.json (else .zarray); bit 1: open as a stack. chunks: key -> bytes."""
    segs = [json_bytes(meta)] + [chunks.get(k, b"") for k in KEYS]
    while len(segs) > 1 and segs[-1] == b"":
        segs.pop()
    return bytes([flags]) + SEP.join(segs)


def json_bytes(m):
    import json
    return json.dumps(m).encode()


def zarrs(target, regress):
    import numcodecs
    a = img(40, 50, 1, np.uint16)
    comps = {"none": None, "zlib": numcodecs.Zlib(1), "zstd": numcodecs.Zstd(3), "blosc": numcodecs.Blosc("lz4", 5, 1),
             "gzip": numcodecs.GZip(1)}
    for name, c in comps.items():
        for sep in "/.":
            chunks = {}
            for cy in range(2):
                for cx in range(2):
                    b = np.ascontiguousarray(np.pad(a, ((0, 10), (0, 0)))[cy * 25:(cy + 1) * 25, cx * 25:(cx + 1) * 25])
                    chunks[f"{cy}{sep}{cx}"] = c.encode(b) if c else b.tobytes()
            meta = {"zarr_format": 2, "shape": [40, 50], "chunks": [25, 25], "dtype": "<u2", "fill_value": 0,
                    "order": "C", "filters": None, "dimension_separator": sep,
                    "compressor": c.get_config() if c else None}
            put(target, f"v2-{name}-{'slash' if sep == '/' else 'dot'}", store_input(0, meta, chunks))
    # v3, plain and sharded (2 x 2 chunks in one shard, index at the end with its CRC-32C)
    import zlib as _z
    b8 = img(32, 32, 1, np.uint8)
    v3 = {"zarr_format": 3, "node_type": "array", "shape": [32, 32], "data_type": "uint8",
          "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [16, 16]}},
          "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}}, "fill_value": 0,
          "codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                     {"name": "zstd", "configuration": {"level": 3, "checksum": False}}]}
    z = numcodecs.Zstd(3)
    put(target, "v3-zstd", store_input(1, v3, {f"c/{y}/{x}": z.encode(np.ascontiguousarray(b8[y*16:(y+1)*16, x*16:(x+1)*16]))
                                               for y in range(2) for x in range(2)}))
    inner = [np.ascontiguousarray(b8[y*16:(y+1)*16, x*16:(x+1)*16]).tobytes() for y in range(2) for x in range(2)]
    body, index = b"", b""
    for c in inner:
        index += struct.pack("<QQ", len(body), len(c))
        body += c
    crc = crc32c(index)
    sh = dict(v3, chunk_grid={"name": "regular", "configuration": {"chunk_shape": [32, 32]}},
              codecs=[{"name": "sharding_indexed", "configuration": {
                  "chunk_shape": [16, 16], "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
                  "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}],
                  "index_location": "end"}}])
    put(target, "v3-shard", store_input(1, sh, {"c/0/0": body + index + struct.pack("<I", crc)}))
    # a stack, 3 x 20 x 20 x 2 in chunks of 2 images
    s = img(20, 20, 2, np.uint8)
    st = np.stack([s, s, s])
    meta = {"zarr_format": 2, "shape": [3, 20, 20, 2], "chunks": [2, 20, 20, 2], "dtype": "|u1", "fill_value": 0,
            "order": "C", "filters": None, "dimension_separator": "/", "compressor": None}
    put(target, "v2-stack", store_input(2, meta, {"0/0/0/0": st[:2].tobytes(), "1/0/0/0": np.pad(st[2:], ((0, 1), (0, 0), (0, 0), (0, 0))).tobytes()}))
    # refused, within bounded memory: huge shapes and chunks, a shard index past its file, a bad CRC
    put(regress, "huge_chunk", store_input(0, dict(meta, shape=[1 << 40, 1 << 40], chunks=[1 << 20, 1 << 20]), {}))
    put(regress, "huge_stack", store_input(2, dict(meta, shape=[1 << 50, 20, 20, 2]), {}))
    bad = bytearray(index)
    bad[0] ^= 0xff
    put(regress, "shard_bad_crc", store_input(1, sh, {"c/0/0": body + bytes(bad) + struct.pack("<I", crc)}))
    past = struct.pack("<QQ", 1 << 40, 256) + index[16:]
    put(regress, "shard_past_end", store_input(1, sh, {"c/0/0": body + past + struct.pack("<I", crc32c(past))}))


def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c ^= x
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 & -(c & 1))
    return c ^ 0xFFFFFFFF


# ---- the literals-and-runs coders: inputs to round-trip ------------------
def runs(target):
    put(target, "empty", b"")
    put(target, "noise", rng.integers(0, 256, 70000, dtype=np.uint8).tobytes())
    ramp = np.repeat(np.arange(256, dtype=np.uint8), 300)  # runs of 300
    put(target, "ramp", ramp.tobytes())
    d = np.diff(img(256, 256, 1, np.uint8).astype(np.int16), axis=1).astype(np.uint8)  # a predictor's output
    put(target, "diffs", d.tobytes())
    put(target, "repeat", bytes([20]) + rng.integers(0, 4, 3000, dtype=np.uint8).tobytes())


def main(out):
    global OUT
    OUT = out
    tiffs("tiff", "regress/tiff")
    tiffs("tiff_decode", "regress/tiff_decode")
    pngs("png", "regress/png")
    jpegs("jpeg", "regress/jpeg")
    hdf5s("hdf5_image", "hdf5_stack", "regress/hdf5_stack")
    texts("pipeline", "jobfile", "journal", "regress/pipeline")
    zarrs("zarr", "regress/zarr")
    runs("runs")


if __name__ == "__main__":
    main(sys.argv[1])
