"""List mode: every image one task. Kernels against OpenCV, scikit-image
and numpy on the same decoded inputs; decoders against cv2.imread; the
HDF5 layout read back with h5py; failure isolation; the workload job files
against Python implementations of the same steps."""
import os
import shutil
import subprocess
import sys

import cv2
import h5py
import numpy as np
import pytest
from skimage.filters import threshold_otsu

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from conftest import TESSERA, run  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "jobs"))
import bengali_original as bengali  # noqa: E402
import make_list_inputs as demo  # noqa: E402


def rgb_images(n, h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    out = []
    for i in range(n):
        base = (np.sin(x / (5 + i)) * 60 + y * 2 + 60)[..., None] + rng.normal(0, 20, (h, w, 3))
        out.append(np.clip(base, 0, 255).astype(np.uint8))
    return out


def write_pngs(d, images):
    os.makedirs(d, exist_ok=True)
    for i, a in enumerate(images):
        cv2.imwrite(os.path.join(d, f"im{i:03d}.png"), a[..., ::-1] if a.ndim == 3 else a)


def run_list(tmp, inp, pipeline, *extra, out="out.h5", code=0):
    p = run("run", "--input", inp, "--output", str(tmp / out), "--pipeline", pipeline, "--quiet", *extra,
            check=False)
    assert p.returncode == code, p.stderr
    return p


def read_h5(path):
    with h5py.File(path, "r") as f:
        names = [n.decode() for n in f["names"][()]]
        images = f["images"][()] if isinstance(f.get("images"), h5py.Dataset) else None
        results = {k: f["results"][k][()] for k in f["results"]} if "results" in f else {}
        failed = [(a.decode(), b.decode()) for a, b in f["failed"][()]]
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    return names, images, results, failed, attrs


# ---- decoders ---------------------------------------------------------------

def test_png_kinds_decode_like_cv2(tmp_path):
    """8/16-bit gray, gray+alpha, RGB, RGBA and palette PNGs: the crop of the
    whole image (identity) equals cv2.imread(IMREAD_UNCHANGED) in RGB order."""
    rng = np.random.default_rng(3)
    d = tmp_path / "in"
    d.mkdir()
    cases = {
        "g8.png": rng.integers(0, 256, (20, 30), dtype=np.uint8),
        "g16.png": rng.integers(0, 65536, (20, 30), dtype=np.uint16),
        "rgb8.png": rng.integers(0, 256, (20, 30, 3), dtype=np.uint8),
        "rgba8.png": rng.integers(0, 256, (20, 30, 4), dtype=np.uint8),
        "rgb16.png": rng.integers(0, 65536, (20, 30, 3), dtype=np.uint16),
    }
    for name, a in cases.items():
        cv2.imwrite(str(d / name), a[..., [2, 1, 0, 3][: a.shape[2]]] if a.ndim == 3 else a)
    # cv2 cannot write gray+alpha or palette PNGs: Pillow (a scikit-image dependency) can
    from PIL import Image
    ga = rng.integers(0, 256, (20, 30, 2), dtype=np.uint8)
    Image.fromarray(ga, "LA").save(d / "ga8.png")
    pal = Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).quantize(16)
    pal.save(d / "pal.png")
    cases["ga8.png"] = ga
    cases["pal.png"] = np.asarray(pal.convert("RGB"))
    out = tmp_path / "o"
    run("run", "--input", d, "--output", f"{out}/", "--format", "tiff", "--pipeline", "crop width=1000 height=1000",
        "--quiet")
    import tifffile
    for name, want in cases.items():
        got = tifffile.imread(out / name.replace(".png", ".tif"))
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert np.array_equal(got, want), name


def test_jpeg_decodes_like_cv2(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    a = rgb_images(1, 37, 53)[0]
    cv2.imwrite(str(d / "a.jpg"), a[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    cv2.imwrite(str(d / "g.jpg"), a[..., 0], [cv2.IMWRITE_JPEG_QUALITY, 85])
    run_list(tmp_path, d, "crop width=1000 height=1000")
    with h5py.File(tmp_path / "out.h5") as f:
        got_rgb = f["images/a.jpg"][()]
        got_g = f["images/g.jpg"][()]
    assert np.array_equal(got_rgb, cv2.imread(str(d / "a.jpg"))[..., ::-1])
    assert np.array_equal(got_g, cv2.imread(str(d / "g.jpg"), cv2.IMREAD_UNCHANGED))


# ---- kernels against references ---------------------------------------------

@pytest.mark.parametrize("interp,flag", [("nearest", cv2.INTER_NEAREST), ("linear", cv2.INTER_LINEAR),
                                         ("area", cv2.INTER_AREA)])
@pytest.mark.parametrize("size", [(31, 23), (128, 100), (64, 48), (20, 70)])
def test_resize_matches_cv2(tmp_path, interp, flag, size):
    ims = rgb_images(2)
    write_pngs(tmp_path / "in", ims)
    run_list(tmp_path, tmp_path / "in", f"resize width={size[0]} height={size[1]} interp={interp}")
    _, got, *_ = read_h5(tmp_path / "out.h5")
    for g, a in zip(got, ims):
        want = cv2.resize(a, size, interpolation=flag)
        d = np.abs(g.astype(int) - want.astype(int))
        assert d.max() <= (0 if interp == "nearest" else 1), d.max()
        if interp == "linear":  # u8 linear follows cv2's fixed point: off by one only rarely
            assert (d == 0).mean() >= 0.99, (d == 0).mean()


def test_crop_matches_numpy(tmp_path):
    ims = rgb_images(3)
    write_pngs(tmp_path / "in", ims)
    run_list(tmp_path, tmp_path / "in", "crop x=5 y=7 width=20 height=30")
    _, got, *_ = read_h5(tmp_path / "out.h5")
    for g, a in zip(got, ims):
        assert np.array_equal(g, a[7:37, 5:25])


def test_blend_matches_addweighted(tmp_path):
    ims = rgb_images(3)
    write_pngs(tmp_path / "in", ims)
    other = rgb_images(1, seed=9)[0]
    cv2.imwrite(str(tmp_path / "fixed.png"), other[..., ::-1])
    run_list(tmp_path, tmp_path / "in", f"blend with={tmp_path}/fixed.png alpha=0.7 beta=0.3 gamma=2")
    _, got, *_ = read_h5(tmp_path / "out.h5")
    for g, a in zip(got, ims):
        want = cv2.addWeighted(a, 0.7, other, 0.3, 2)
        assert np.abs(g.astype(int) - want.astype(int)).max() <= 1


def test_blend_size_mismatch_names_both_sizes(tmp_path):
    write_pngs(tmp_path / "in", rgb_images(2))
    cv2.imwrite(str(tmp_path / "fixed.png"), rgb_images(1, 10, 12)[0])
    p = run_list(tmp_path, tmp_path / "in", f"blend with={tmp_path}/fixed.png", code=1)
    assert "64x48" in p.stderr and "12x10" in p.stderr
    assert not os.path.exists(tmp_path / "out.h5") and not os.path.exists(tmp_path / "out.h5.partial")
    # fit=resize resizes with= to each image
    run_list(tmp_path, tmp_path / "in", f"blend with={tmp_path}/fixed.png fit=resize alpha=0.5 beta=0.5")


def test_otsu_and_stats_emit_values(tmp_path):
    ims = rgb_images(4)
    write_pngs(tmp_path / "in", ims)
    run_list(tmp_path, tmp_path / "in", "stats | grayscale | otsu")
    names, _, res, _, _ = read_h5(tmp_path / "out.h5")
    assert names == [f"im{i:03d}.png" for i in range(4)]
    for i, a in enumerate(ims):
        gray = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
        assert res["otsu"][i] == threshold_otsu(gray)
        s = res["stats"][i].reshape(3, 4)
        for c in range(3):
            ch = a[..., c].astype(np.float64)
            assert s[c, 0] == ch.min() and s[c, 1] == ch.max()
            assert abs(s[c, 2] - ch.mean()) <= 1e-6 * abs(ch.mean())
            assert abs(s[c, 3] - ch.std()) <= 1e-6 * abs(ch.std())


def f32_stack(path, n=2, h=40, w=56, seed=5):
    """An HDF5 stack of f32 images in [0, 1] (no image format carries f32
    but TIFF: the stack is the list-mode way in)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([np.clip(np.sin(x / (3 + i)) * 0.3 + y / (2 * h) + rng.normal(0, 0.1, (h, w)), 0, 1)
                  for i in range(n)]).astype(np.float32)
    with h5py.File(path, "w") as f:
        f["stack"] = a
    return a


def test_tv_denoise_matches_skimage(tmp_path):
    """denoise_tv_chambolle on u8 RGB (per channel, scaled to [0, 1]), u8
    gray with other parameters, and f32: max abs difference within 1e-3
    (measured: 3e-8, the f32 rounding of the output)."""
    from skimage.restoration import denoise_tv_chambolle
    ims = rgb_images(3, h=40, w=52)
    write_pngs(tmp_path / "in", ims)
    run_list(tmp_path, tmp_path / "in", "tv_denoise weight=0.1")
    _, got, *_ = read_h5(tmp_path / "out.h5")
    assert got.dtype == np.float32 and got.shape == (3, 40, 52, 3)
    for g, a in zip(got, ims):
        assert np.abs(g - denoise_tv_chambolle(a, weight=0.1, channel_axis=-1)).max() <= 1e-3
    run_list(tmp_path, tmp_path / "in", "grayscale | tv_denoise weight=0.4 eps=0.001 max_iter=30", out="g.h5")
    _, got, *_ = read_h5(tmp_path / "g.h5")
    for g, a in zip(got, ims):
        ref = denoise_tv_chambolle(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), weight=0.4, eps=0.001, max_num_iter=30)
        assert np.abs(g - ref).max() <= 1e-3
    stack = f32_stack(tmp_path / "f.h5")
    run_list(tmp_path, f"{tmp_path}/f.h5:/stack", "tv_denoise weight=0.2", out="f32.h5")
    _, got, *_ = read_h5(tmp_path / "f32.h5")
    for g, a in zip(got, stack):
        assert np.abs(g - denoise_tv_chambolle(a, weight=0.2)).max() <= 1e-3


@pytest.mark.parametrize("pipeline,kw", [
    ("grayscale | hog orientations=8 pixels_per_cell=16 cells_per_block=1",
     dict(orientations=8, pixels_per_cell=(16, 16), cells_per_block=(1, 1))),
    ("grayscale | hog", dict()),
    ("hog orientations=6 pixels_per_cell=10,12 cells_per_block=2,3",
     dict(orientations=6, pixels_per_cell=(10, 12), cells_per_block=(2, 3), channel_axis=-1)),
])
def test_hog_matches_skimage(tmp_path, pipeline, kw):
    """skimage.feature.hog (L2-Hys) on the same image: within 1e-4 relative
    (measured: 1e-15). RGB takes the strongest channel's gradient, as
    channel_axis=-1 does."""
    from skimage.feature import hog
    ims = rgb_images(3, h=70, w=90)
    write_pngs(tmp_path / "in", ims)
    run_list(tmp_path, tmp_path / "in", pipeline)
    _, _, res, _, _ = read_h5(tmp_path / "out.h5")
    for g, a in zip(res["hog"], ims):
        ref = hog(a if "channel_axis" in kw else cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), **kw)
        assert g.shape == ref.shape and ref.size > 0
        np.testing.assert_allclose(g, ref, rtol=1e-4, atol=1e-12)


def test_hog_on_f32_and_tiny_images(tmp_path):
    """f32 images keep skimage's float32 arithmetic. An image smaller than
    one cell gives an empty vector with one-cell blocks and fails with
    larger blocks, as skimage does."""
    from skimage.feature import hog
    stack = f32_stack(tmp_path / "f.h5")
    run_list(tmp_path, f"{tmp_path}/f.h5:/stack", "hog orientations=8 pixels_per_cell=8 cells_per_block=2")
    _, _, res, _, _ = read_h5(tmp_path / "out.h5")
    for g, a in zip(res["hog"], stack):
        np.testing.assert_allclose(g, hog(a, orientations=8, pixels_per_cell=(8, 8), cells_per_block=(2, 2)),
                                   rtol=1e-4, atol=1e-7)
    run_list(tmp_path, f"{tmp_path}/f.h5:/stack", "hog pixels_per_cell=64 cells_per_block=1", out="tiny.h5")
    _, _, res, _, _ = read_h5(tmp_path / "tiny.h5")
    assert res["hog"].shape == (2, 0)
    assert hog(stack[0], pixels_per_cell=(64, 64), cells_per_block=(1, 1)).size == 0
    with pytest.raises(ValueError):
        hog(stack[0], pixels_per_cell=(64, 64), cells_per_block=(3, 3))
    p = run_list(tmp_path, f"{tmp_path}/f.h5:/stack", "hog pixels_per_cell=64", out="bad.h5", code=1)
    assert "56x40 image holds 0x0 cells of 64x64 pixels, fewer than a block of 3x3" in p.stderr


@pytest.mark.parametrize("mode", ["reflect", "mirror", "nearest", "constant", "wrap"])
def test_tile_kernels_pad_per_image_like_scipy(tmp_path, mode):
    """A halo kernel in list mode sees its own image padded by the boundary
    mode before it, as scipy.ndimage on that image (two kernels: two pads)."""
    from scipy import ndimage
    ims = [a[..., 0] for a in rgb_images(2)]
    write_pngs(tmp_path / "in", ims)
    run_list(tmp_path, tmp_path / "in", "median size=3 | dilate size=5",
             "--boundary", mode, "--cval", "7")
    _, got, *_ = read_h5(tmp_path / "out.h5")
    for g, a in zip(got, ims):
        m = ndimage.median_filter(a, 3, mode=mode, cval=7)
        assert np.array_equal(g, ndimage.grey_dilation(m, size=5, mode=mode, cval=7))


def test_bbox_crop_geometric_default(tmp_path):
    a = np.zeros((40, 50), np.uint8)
    a[10:20, 12:30] = 200
    write_pngs(tmp_path / "in", [a])
    run_list(tmp_path, tmp_path / "in", "bbox_crop threshold=100 margin_x=2 margin_y=1")
    _, got, *_ = read_h5(tmp_path / "out.h5")
    # box rows 10..19, cols 12..29 -> widened rows 9..20 (12), cols 10..31 (22), padded to 22 x 22
    assert got.shape == (1, 22, 22)
    want = np.zeros((22, 22), np.uint8)
    want[5:17, :] = a[9:21, 10:32]
    assert np.array_equal(got[0], want)


# ---- HDF5 layout, failures, determinism ---------------------------------------

def test_mixed_shapes_become_one_dataset_per_input(tmp_path):
    d = tmp_path / "in"
    write_pngs(d, [rgb_images(1, 20, 30)[0], rgb_images(1, 25, 30)[0]])
    run_list(tmp_path, d, "invert")
    with h5py.File(tmp_path / "out.h5") as f:
        assert isinstance(f["images"], h5py.Group)
        assert f["images/im000.png"].shape == (20, 30, 3) and f["images/im001.png"].shape == (25, 30, 3)


def test_failure_isolation_50_with_3_bad(tmp_path):
    d = tmp_path / "in"
    ims = rgb_images(47, 24, 32)
    write_pngs(d, ims)
    good = sorted(os.listdir(d))
    data = open(d / good[0], "rb").read()
    open(d / "trunc.png", "wb").write(data[: len(data) // 2])
    open(d / "text.png", "w").write("this is not an image\n")
    lst = tmp_path / "list.txt"
    entries = good[:20] + ["trunc.png", "text.png", "missing.png"] + good[20:]
    lst.write_text("".join(f"in/{e}\n" for e in entries))
    p = run_list(tmp_path, f"@{lst}", "grayscale | otsu", "--threads", "2", code=3)
    assert "3 of 50 inputs failed" in p.stderr
    names, images, res, failed, _ = read_h5(tmp_path / "out.h5")
    assert names == [f"in/{e}" for e in good]
    assert images.shape == (47, 24, 32) and res["otsu"].shape == (47,)
    for i, a in enumerate(ims):
        g = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
        assert np.array_equal(images[i], g) and res["otsu"][i] == threshold_otsu(g)
    why = dict(failed)
    assert set(why) == {"in/trunc.png", "in/text.png", "in/missing.png"}
    assert "truncated" in why["in/trunc.png"] and "not a PNG" in why["in/text.png"]
    assert "in/trunc.png" in why["in/trunc.png"]  # the reason names the file
    assert "cannot open" in why["in/missing.png"]


def test_stack_chunks_inflated_by_workers(tmp_path):
    """A gzip stack with one chunk per image (h5py's usual layout) is read
    as stored chunks and inflated by the workers: the same output as the
    contiguous stack; a corrupt chunk fails that image alone, named."""
    ims = np.stack([a[..., 0] for a in rgb_images(6)])
    with h5py.File(tmp_path / "z.h5", "w") as f:
        f.create_dataset("s", data=ims, chunks=(1,) + ims.shape[1:], compression="gzip")
        off = f["s"].id.get_chunk_info(2).byte_offset
    with h5py.File(tmp_path / "c.h5", "w") as f:
        f["s"] = ims
    run_list(tmp_path, f"{tmp_path}/c.h5:/s", "invert | stats", out="ref.h5")
    run_list(tmp_path, f"{tmp_path}/z.h5:/s", "invert | stats", out="out.h5")
    a, b = read_h5(tmp_path / "out.h5"), read_h5(tmp_path / "ref.h5")
    assert np.array_equal(a[1], b[1]) and np.array_equal(a[1], 255 - ims)
    with open(tmp_path / "z.h5", "r+b") as f:
        f.seek(off + 40)
        f.write(b"\xff" * 64)
    p = run_list(tmp_path, f"{tmp_path}/z.h5:/s", "invert", out="bad.h5", code=3)
    assert "2: its stored chunk does not inflate to a 64x48 image (corrupt)" in p.stderr
    names, got, _, failed, _ = read_h5(tmp_path / "bad.h5")
    assert names == ["0", "1", "3", "4", "5"] and failed[0][0] == "2"
    assert np.array_equal(got, 255 - ims[[0, 1, 3, 4, 5]])


def test_every_input_failing_is_fatal(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    open(d / "a.png", "w").write("x")
    p = run_list(tmp_path, d, "invert", code=1)
    assert "every input failed" in p.stderr
    assert not os.path.exists(tmp_path / "out.h5")
    assert not os.path.exists(tmp_path / "out.h5.partial")


def test_existing_output_needs_force(tmp_path):
    write_pngs(tmp_path / "in", rgb_images(2))
    (tmp_path / "out.h5").write_text("keep me")
    p = run_list(tmp_path, tmp_path / "in", "invert", code=2)
    assert "--force" in p.stderr and (tmp_path / "out.h5").read_text() == "keep me"
    run_list(tmp_path, tmp_path / "in", "invert", "--force")


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_same_output_for_any_thread_count(tmp_path, threads):
    ims = [rgb_images(1, 20 + 7 * i, 30)[0] for i in range(9)]
    write_pngs(tmp_path / "in", ims)
    run_list(tmp_path, tmp_path / "in", "grayscale | otsu | resize width=16 height=16", "--threads", threads)
    ref = tmp_path / "ref.h5"
    run_list(tmp_path, tmp_path / "in", "grayscale | otsu | resize width=16 height=16", "--threads", 1, out="ref.h5")
    a, b = read_h5(tmp_path / "out.h5"), read_h5(ref)
    assert a[0] == b[0] and np.array_equal(a[1], b[1]) and np.array_equal(a[2]["otsu"], b[2]["otsu"])


def test_directory_output_mirrors_names(tmp_path):
    d = tmp_path / "in"
    write_pngs(d / "sub", rgb_images(2))
    run("run", "--input", d, "--recursive", "--output", f"{tmp_path}/o/", "--format", "png", "--pipeline",
        "grayscale", "--quiet")
    for i in range(2):
        got = cv2.imread(str(tmp_path / "o" / "sub" / f"im{i:03d}.png"), cv2.IMREAD_UNCHANGED)
        assert got.shape == (48, 64)
    assert not [f for f in os.listdir(tmp_path / "o" / "sub") if f.endswith(".partial")]


def test_tile_mode_refuses_whole_image_kernels(tmp_path):
    p = run("run", "--input", "synth:64x64", "--output", tmp_path / "o.tif", "--pipeline", "resize scale=0.5",
            check=False)
    assert p.returncode == 2 and "list mode" in p.stderr


# ---- the workloads as job files ---------------------------------------------------

@pytest.fixture
def demo_tree(tmp_path):
    """jobs/ copied next to a small generated demo/list tree, as in the repository."""
    shutil.copytree(os.path.join(ROOT, "jobs"), tmp_path / "jobs", ignore=shutil.ignore_patterns("__pycache__"))
    demo.make(str(tmp_path / "build" / "demo" / "list"), small=True)
    return tmp_path


def test_job_blend_folder(demo_tree):
    run("run", demo_tree / "jobs" / "blend-folder.ini", "--quiet")
    src = demo_tree / "build" / "demo" / "list" / "folder"
    fixed = cv2.imread(str(demo_tree / "build" / "demo" / "list" / "fixed.png"))
    for name in sorted(os.listdir(src)):
        a = cv2.imread(str(src / name))
        want = cv2.addWeighted(a, 0.7, fixed, 0.3, 0)
        got = cv2.imread(str(demo_tree / "build" / "demo" / "out" / "blended" / name))
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1, name


def test_job_otsu_table(demo_tree):
    run("run", demo_tree / "jobs" / "otsu-table.ini", "--quiet")
    names, _, res, _, _ = read_h5(demo_tree / "build" / "demo" / "out" / "otsu.h5")
    src = demo_tree / "build" / "demo" / "list" / "folder"
    assert names == sorted(os.listdir(src))
    for n, t in zip(names, res["otsu"]):
        g = cv2.cvtColor(cv2.imread(str(src / n)), cv2.COLOR_BGR2GRAY)
        assert t == threshold_otsu(g), n


def test_job_grayscale_jpegs(demo_tree):
    run("run", demo_tree / "jobs" / "grayscale-jpegs.ini", "--quiet")
    lst = demo_tree / "build" / "demo" / "list" / "jpegs.txt"
    for line in lst.read_text().split():
        a = cv2.imread(str(demo_tree / "build" / "demo" / "list" / line))
        want = cv2.cvtColor(a, cv2.COLOR_BGR2GRAY)
        got = cv2.imread(str(demo_tree / "build" / "demo" / "out" / "gray" / line.replace(".jpg", ".png")), cv2.IMREAD_UNCHANGED)
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1, line


def strips_of(a, rows):
    return [a[y:y + rows] for y in range(0, a.shape[0], rows)]


def test_job_tv_hog_strips(demo_tree):
    """Workload 3 as written (10-row strips): each strip denoised as
    denoise_tv_chambolle on that strip (within 1e-3) and its HOG vector
    equal to skimage's, which is empty: a 10-row strip holds no 16 x 16
    cell. With --strips 32 (the command line wins) the vectors have 400
    values each, within 1e-4 relative of skimage's."""
    import tifffile
    from skimage.feature import hog
    from skimage.restoration import denoise_tv_chambolle
    large = tifffile.imread(demo_tree / "build" / "demo" / "list" / "large.tif")
    out = demo_tree / "build" / "demo" / "out" / "tv-hog.h5"
    job = demo_tree / "jobs" / "tv-hog-strips.ini"
    kw = dict(orientations=8, pixels_per_cell=(16, 16), cells_per_block=(1, 1), channel_axis=-1)
    for rows in (10, 32):
        run("run", job, "--quiet", *(["--strips", "32"] if rows == 32 else []))
        strips = strips_of(large, rows)
        with h5py.File(out) as f:
            names = [n.decode() for n in f["names"][()]]
            assert names == [f"strip_{k:06d}" for k in range(len(strips))]
            for k, st in enumerate(strips):
                den = denoise_tv_chambolle(st, weight=0.1, channel_axis=-1)
                img = f["images"][names[k]][()] if isinstance(f["images"], h5py.Group) else f["images"][k]
                assert img.shape == st.shape and np.abs(img - den).max() <= 1e-3
                vec = f["results"]["hog"][names[k]][()] if isinstance(f["results"]["hog"], h5py.Group) \
                    else f["results"]["hog"][k]
                ref = hog(den, **kw)
                assert vec.shape == ref.shape == ((0,) if rows == 10 or len(st) < 16 else (400,))
                np.testing.assert_allclose(vec, ref, rtol=1e-4, atol=1e-6)


def test_job_bengali(demo_tree):
    run("run", demo_tree / "jobs" / "bengali.ini", "--quiet")
    with h5py.File(demo_tree / "build" / "demo" / "list" / "bengali.h5") as f:
        src = f["images"][()]
    names, got, _, failed, _ = read_h5(demo_tree / "build" / "demo" / "out" / "bengali_128.h5")
    assert not failed and got.shape == (len(src), 128, 128)
    assert names == [str(i) for i in range(len(src))]
    for i, a in enumerate(src):
        want = bengali.preprocess(a.copy())
        assert np.abs(got[i].astype(int) - want.astype(int)).max() <= 1, i


# ---- under MPI -------------------------------------------------------------------

MPIEXEC = os.environ.get("MPIEXEC", "mpirun")
MPI_ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMP_WAIT_POLICY="passive")


def mpirun(n, *args):
    return subprocess.run([MPIEXEC, "--oversubscribe", "-np", str(n), TESSERA, *map(str, args)],
                          capture_output=True, text=True, timeout=300, env=MPI_ENV)


@pytest.mark.parametrize("ranks,threads", [(2, 1), (3, 1), (3, 2), (4, 1)])
def test_mpi_same_output_as_one_process(tmp_path, ranks, threads):
    """Images of varied sizes with 2 bad ones: /names, /images, /results and
    /failed equal the single process's for any ranks and threads."""
    d = tmp_path / "in"
    write_pngs(d, [rgb_images(1, 20 + 5 * (i % 7), 40, seed=i)[0] for i in range(30)])
    open(d / "zz_bad.png", "w").write("nope")
    data = open(d / "im000.png", "rb").read()
    open(d / "zz_trunc.png", "wb").write(data[:100])
    pipe = "grayscale | otsu | median size=3 | resize width=24 height=24"
    run_list(tmp_path, d, pipe, out="ref.h5", code=3)
    p = mpirun(ranks, "run", "--input", d, "--output", tmp_path / "out.h5", "--pipeline", pipe, "--threads", threads,
               "--stats", tmp_path / "s.json")
    assert p.returncode == 3, p.stderr
    a, b = read_h5(tmp_path / "out.h5"), read_h5(tmp_path / "ref.h5")
    assert a[0] == b[0] and len(a[0]) == 30
    assert np.array_equal(a[1], b[1]) and np.array_equal(a[2]["otsu"], b[2]["otsu"])
    assert a[3] == b[3] and len(a[3]) == 2
    import json
    st = json.load(open(tmp_path / "s.json"))
    assert sum(r["tasks"] for r in st["ranks"]) == 32


def test_mpi_strips_of_an_hdf5_image(tmp_path):
    """--strips over an HDF5 image (tile mode's reader, rank 0 reads each
    strip): 3 ranks give the single process's output."""
    a = rgb_images(1, h=150, w=90)[0]
    with h5py.File(tmp_path / "in.h5", "w") as f:
        f.create_dataset("image", data=a, chunks=(32, 32, 3))
    pipe = "tv_denoise weight=0.2 max_iter=40 | hog orientations=8 pixels_per_cell=16 cells_per_block=1"
    run_list(tmp_path, f"{tmp_path}/in.h5:/image", pipe, "--strips", "32", out="ref.h5")
    p = mpirun(3, "run", "--input", f"{tmp_path}/in.h5:/image", "--strips", "32", "--output", tmp_path / "out.h5",
               "--pipeline", pipe, "--quiet")
    assert p.returncode == 0, p.stderr
    with h5py.File(tmp_path / "out.h5") as x, h5py.File(tmp_path / "ref.h5") as y:
        assert list(x["names"]) == list(y["names"]) and len(x["names"]) == 5
        for n in x["images"]:
            assert np.array_equal(x["images"][n][()], y["images"][n][()])
            assert np.array_equal(x["results"]["hog"][n][()], y["results"]["hog"][n][()])


def test_mpi_bengali_stack(demo_tree):
    p = mpirun(3, "run", demo_tree / "jobs" / "bengali.ini", "--quiet")
    assert p.returncode == 0, p.stderr
    with h5py.File(demo_tree / "build" / "demo" / "list" / "bengali.h5") as f:
        src = f["images"][()]
    names, got, _, failed, _ = read_h5(demo_tree / "build" / "demo" / "out" / "bengali_128.h5")
    assert names == [str(i) for i in range(len(src))] and not failed
    for i, a in enumerate(src):
        assert np.abs(got[i].astype(int) - bengali.preprocess(a.copy()).astype(int)).max() <= 1


@pytest.mark.parametrize("ranks", [1, 3])
def test_trace_has_every_image(tmp_path, ranks):
    """--trace in list mode: one compute event per image, for every input
    index, on the ranks that computed it (under MPI the workers, and rank 0
    when it computes while idle: each rank's events match its task count),
    each inside the run; read and write events from rank 0."""
    import json
    write_pngs(tmp_path / "in", rgb_images(25, h=20, w=30))
    args = ["run", "--input", tmp_path / "in", "--output", tmp_path / "o.h5", "--pipeline", "grayscale | otsu",
            "--trace", tmp_path / "t.json", "--stats", tmp_path / "s.json", "--threads", "2", "--quiet"]
    p = mpirun(ranks, *args) if ranks > 1 else run(*args)
    assert p.returncode == 0, p.stderr
    ev = [e for e in json.load(open(tmp_path / "t.json"))["traceEvents"] if e["ph"] == "X"]
    stats = json.load(open(tmp_path / "s.json"))
    seconds = stats["seconds"]
    compute = [e for e in ev if e["name"] == "compute"]
    assert sorted(e["args"]["task"] for e in compute) == list(range(25))
    per_rank = [sum(1 for e in compute if e["pid"] == r["rank"]) for r in stats["ranks"]]
    assert per_rank == [r["tasks"] for r in stats["ranks"]] and len(per_rank) == ranks, (per_rank, stats["ranks"])
    if ranks > 1:
        assert all(n > 0 for n in per_rank[1:]), per_rank  # every worker computed
    assert {e["name"] for e in ev if e["pid"] == 0} >= {"read", "write"}
    assert all(0 <= e["ts"] and e["ts"] + e["dur"] <= seconds * 1e6 + 1e5 for e in ev)


def test_mpi_io_direct(tmp_path):
    """--io direct in list mode: workers enumerate and read the inputs
    themselves (only indices travel), with the single process's output;
    a worker that cannot see them, or sees other files, stops the run with
    one message naming its rank, host and path, and no output."""
    import time
    here, there = tmp_path / "a", tmp_path / "b"
    ims = rgb_images(12, h=24, w=30)
    write_pngs(here / "in", ims)
    open(here / "in" / "zz_bad.png", "w").write("not a png")
    shutil.copytree(here / "in", there / "in")
    pipe = ["-p", "grayscale | otsu"]
    run_list(here, here / "in", pipe[1], out="ref.h5", code=3)

    def launch(io, workers_dir):
        cmd = [MPIEXEC, "--oversubscribe", "-np", "1", "--wdir", str(here), TESSERA, "run", "-i", "in", "-o", "o.h5",
               *pipe, "--io", io, "--force", "--quiet", ":", "-np", "2", "--wdir", str(workers_dir), TESSERA, "run",
               "-i", "in", "-o", "o.h5", *pipe, "--io", io, "--force", "--quiet"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=MPI_ENV)

    p = launch("direct", there)
    assert p.returncode == 3, p.stderr
    a, b = read_h5(here / "o.h5"), read_h5(here / "ref.h5")
    assert a[0] == b[0] and np.array_equal(a[1], b[1]) and np.array_equal(a[2]["otsu"], b[2]["otsu"])
    assert a[3] == [("zz_bad.png", "in/zz_bad.png: not a PNG, JPEG or TIFF file")]  # read on a worker, named
    assert not (there / "o.h5").exists()
    (here / "o.h5").unlink()
    os.unlink(there / "in" / "im003.png")  # the workers see 12 inputs, rank 0 13
    for bad, msg in ((there, "this rank sees 12 inputs, rank 0 sees 13"), (tmp_path, "in")):
        t0 = time.time()
        p = launch("direct", bad)
        assert time.time() - t0 < 60 and p.returncode == 1, p.stderr
        errs = [line for line in p.stderr.splitlines() if line.startswith("tessera:")]
        assert len(errs) == 1 and "rank 1" in errs[0] and os.uname().nodename in errs[0] and msg in errs[0], p.stderr
        assert not (here / "o.h5").exists() and not list(here.glob("*.partial"))
    assert launch("root", tmp_path).returncode == 3  # --io root: workers need no files
    assert read_h5(here / "o.h5")[0] == b[0]
