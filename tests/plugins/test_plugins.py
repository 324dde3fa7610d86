"""C kernel plugins (issue 16): loading, the contract's checks, the
installed header and pkg-config file, plugins shipped to MPI workers, the
resume fingerprint, and the two example plugins against independent
references (scipy.ndimage.laplace; numpy brute force and scikit-learn for
patch_replace)."""
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import scipy.ndimage as ndi
import tifffile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
from conftest import TESSERA, make_image, run, write_tiff  # noqa: E402
from patches import db_patches, nearest  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLUGINS = os.environ.get("PLUGINS", os.path.join(ROOT, "build", "plugins"))
LAPLACE = os.path.join(PLUGINS, "laplace.so")
PATCH = os.path.join(PLUGINS, "patch_replace.so")
MPIEXEC = os.environ.get("MPIEXEC") or "mpirun"
MPI_ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")


def mpirun(n, *args, cwd=None, check=True):
    p = subprocess.run([MPIEXEC, "--oversubscribe", "-np", str(n), TESSERA, *map(str, args)], capture_output=True,
                       text=True, timeout=600, env=MPI_ENV, cwd=cwd)
    if check and p.returncode != 0:
        raise AssertionError(f"mpirun -np {n} tessera {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}")
    return p


def cc(tmp_path, name, *flags, src=os.path.join(os.path.dirname(__file__), "bad_plugins.c")):
    so = tmp_path / f"{name}.so"
    subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", str(so), src, "-I", os.path.join(ROOT, "include"), *flags],
                   check=True, capture_output=True)
    return so


# ---- loading and the contract -------------------------------------------------

def test_laplace_plugin_equals_scipy(tmp_path):
    for dtype in ("u8", "u16", "f32"):
        a = make_image(131, 157, dtype, 1, seed=3)
        write_tiff(tmp_path / "in.tif", a)
        run("run", "-i", tmp_path / "in.tif", "-o", tmp_path / "out.tif", "--plugin", LAPLACE, "-p", "laplace scale=2",
            "--tile", 48, "--threads", 2, "--quiet", "--force")
        got = tifffile.imread(tmp_path / "out.tif")
        ref = 2 * ndi.laplace(a.astype(np.float64), mode="reflect")
        if dtype == "f32":
            np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-5)
        else:
            hi = 255 if dtype == "u8" else 65535
            assert np.array_equal(got, np.clip(np.rint(ref), 0, hi).astype(a.dtype)), dtype


def test_kernels_lists_plugin_kernels(tmp_path):
    out = run("kernels", "--plugin", LAPLACE, "--plugin", PATCH).stdout
    assert "laplace" in out and "from plugin laplace" in out and LAPLACE in out
    assert "patch_replace" in out and "rotations" in out and "gaussian" in out
    assert "py:MODULE.FUNCTION" in out and "GIL" in out
    md = run("kernels", "--markdown", "--plugin", PATCH).stdout
    assert "| `patch_replace` |" in md
    assert "patch_replace" not in run("kernels").stdout


@pytest.mark.parametrize("flags,words", [
    (["-DBAD_ABI"], "ABI"),
    (["-DBAD_NO_ENTRY"], "no entry point tessera_plugin()"),
    (["-DBAD_NO_APPLY"], "no apply function"),
    (["-DBAD_PARAMS"], "parameter a twice"),
    (['-DNAME="gaussian"'], "kernel gaussian is defined already (a built-in kernel)"),
    (['-DNAME="a b"'], "bad name 'a b'"),
])
def test_bad_plugins_are_one_message_naming_the_file(tmp_path, flags, words):
    so = cc(tmp_path, "bad", *flags)
    write_tiff(tmp_path / "in.tif", make_image(40, 40, "u8", 1))
    for args in (["kernels", "--plugin", so],
                 ["run", "-i", tmp_path / "in.tif", "-o", tmp_path / "o.tif", "--plugin", so, "-p", "invert"]):
        p = run(*args, check=False)
        assert p.returncode == 2, p.stderr
        assert str(so) in p.stderr and words in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not (tmp_path / "o.tif").exists() and not (tmp_path / "o.tif.partial").exists()


def test_missing_and_duplicate_plugins(tmp_path):
    p = run("kernels", "--plugin", tmp_path / "nope.so", check=False)
    assert p.returncode == 2 and "nope.so" in p.stderr and "No such file" in p.stderr
    (tmp_path / "text.so").write_text("not an ELF file")
    p = run("kernels", "--plugin", tmp_path / "text.so", check=False)
    assert p.returncode == 2 and "text.so: cannot load it" in p.stderr
    # another file defining the same kernel name
    other = tmp_path / "laplace2.so"
    subprocess.run(["cc", "-O0", "-g", "-shared", "-fPIC", "-o", other,
                    os.path.join(ROOT, "plugins", "laplace.c"), "-I", os.path.join(ROOT, "include")], check=True)
    p = run("kernels", "--plugin", LAPLACE, "--plugin", other, check=False)
    assert p.returncode == 2 and f"kernel laplace is defined already (by {LAPLACE})" in p.stderr, p.stderr
    # the same file twice (by --plugin and TESSERA_PLUGIN_PATH) is loaded once
    env = dict(os.environ, TESSERA_PLUGIN_PATH=PLUGINS)
    p = subprocess.run([TESSERA, "kernels", "--plugin", LAPLACE], capture_output=True, text=True, env=env)
    assert p.returncode == 0 and p.stdout.count("from plugin laplace") == 1, p.stderr


def test_plugin_path_env_and_job_file_key(tmp_path):
    a = make_image(64, 80, "u8", 1)
    write_tiff(tmp_path / "in.tif", a)
    ref = tmp_path / "ref.tif"
    run("run", "-i", tmp_path / "in.tif", "-o", ref, "--plugin", LAPLACE, "-p", "laplace", "--quiet")
    env = dict(os.environ, TESSERA_PLUGIN_PATH=f"{tmp_path}/none-here:{PLUGINS}")
    p = subprocess.run([TESSERA, "run", "-i", tmp_path / "in.tif", "-o", tmp_path / "env.tif", "-p", "laplace", "--quiet"],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 2 and "TESSERA_PLUGIN_PATH" in p.stderr and "none-here" in p.stderr
    env["TESSERA_PLUGIN_PATH"] = PLUGINS  # a directory: every *.so in it
    p = subprocess.run([TESSERA, "run", "-i", tmp_path / "in.tif", "-o", tmp_path / "env.tif", "-p", "laplace", "--quiet"],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "env.tif").read_bytes() == ref.read_bytes()
    # a job file's plugins = key, relative to the job file
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    shutil.copy(LAPLACE, jobs / "lap.so")
    (jobs / "job.ini").write_text("[input]\ninput = ../in.tif\n[output]\noutput = ../job.tif\n"
                                  "[pipeline]\nplugins = lap.so, " + PATCH + "\npipeline = laplace\n")
    subprocess.run([TESSERA, "run", str(jobs / "job.ini"), "--quiet"], check=True, cwd="/")
    assert (tmp_path / "job.tif").read_bytes() == ref.read_bytes()
    p = run("run", "-i", tmp_path / "in.tif", "-o", tmp_path / "none.tif", "-p", "laplace", check=False)
    assert p.returncode == 2 and "unknown kernel 'laplace'" in p.stderr


def test_installed_header_and_pkg_config_build_a_plugin(tmp_path):
    """cmake --install puts header, library and tessera.pc in place; a
    plugin then needs only cc and pkg-config --cflags tessera."""
    build = os.path.dirname(PLUGINS)
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", build, "--prefix", prefix], check=True, capture_output=True)
    pcdirs = [str(p) for p in prefix.glob("lib*/pkgconfig")]
    assert pcdirs and (prefix / "include" / "tessera" / "plugin.h").exists()
    env = dict(os.environ, PKG_CONFIG_PATH=":".join(pcdirs))
    cflags = subprocess.run(["pkg-config", "--cflags", "tessera"], check=True, capture_output=True, text=True,
                            env=env).stdout.split()
    assert any(f.startswith("-I") and f.endswith("/include") for f in cflags), cflags
    shutil.copy(os.path.join(ROOT, "plugins", "laplace.c"), tmp_path / "k.c")
    subprocess.run(["cc", "-shared", "-fPIC", "-o", tmp_path / "k.so", tmp_path / "k.c", *cflags], check=True, cwd=tmp_path)
    write_tiff(tmp_path / "in.tif", make_image(50, 70, "u8", 1))
    tessera = next(prefix.glob("bin/tessera"))
    libdir = next(prefix.glob("lib*/libtessera.so")).parent
    subprocess.run([tessera, "run", "-i", tmp_path / "in.tif", "-o", tmp_path / "a.tif", "--plugin", tmp_path / "k.so",
                    "-p", "laplace", "--quiet"], check=True, env=dict(os.environ, LD_LIBRARY_PATH=str(libdir)))
    run("run", "-i", tmp_path / "in.tif", "-o", tmp_path / "b.tif", "--plugin", LAPLACE, "-p", "laplace", "--quiet")
    assert (tmp_path / "a.tif").read_bytes() == (tmp_path / "b.tif").read_bytes()
    assert (prefix / "lib" / "tessera" / "plugins" / "patch_replace.so").exists() or \
        any(prefix.glob("lib*/tessera/plugins/patch_replace.so"))


def test_mpi_workers_load_the_plugin_from_rank_0(tmp_path):
    """Workers start in a directory where the plugin's relative path names
    nothing: they run rank 0's bytes, loaded from memory."""
    a = make_image(150, 170, "u16", 1)
    write_tiff(tmp_path / "in.tif", a)
    (tmp_path / "r0").mkdir()
    (tmp_path / "w").mkdir()
    shutil.copy(LAPLACE, tmp_path / "r0" / "lap.so")
    ref = tmp_path / "ref.tif"
    run("run", "-i", tmp_path / "in.tif", "-o", ref, "--plugin", LAPLACE, "-p", "laplace", "--tile", 32, "--quiet")
    args = ["run", "-i", tmp_path / "in.tif", "-o", tmp_path / "mpi.tif", "--plugin", "lap.so", "-p", "laplace",
            "--tile", 32, "--root-compute", "no", "--quiet", "--stats", tmp_path / "s.json"]
    cmd = [MPIEXEC, "--oversubscribe", "-np", "1", "--wdir", str(tmp_path / "r0"), TESSERA, *map(str, args), ":",
           "-np", "2", "--wdir", str(tmp_path / "w"), TESSERA, *map(str, args)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=MPI_ENV)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "mpi.tif").read_bytes() == ref.read_bytes()
    import json
    ranks = json.load(open(tmp_path / "s.json"))["ranks"]
    assert sum(r["tasks"] for r in ranks[1:]) > 0 and ranks[0]["tasks"] == 0  # the workers computed it all


def test_changed_plugin_is_a_changed_job(tmp_path):
    a = make_image(256, 256, "u8", 1)
    write_tiff(tmp_path / "in.tif", a)
    lap = tmp_path / "lap.so"
    shutil.copy(LAPLACE, lap)
    out = tmp_path / "out.tif"
    args = [TESSERA, "run", "-i", tmp_path / "in.tif", "-o", out, "--plugin", lap, "-p", "delay ms=60 | laplace",
            "--tile", 32, "--threads", 1, "--checkpoint-tasks", 2, "--quiet"]
    p = subprocess.Popen(list(map(str, args)), stderr=subprocess.PIPE, text=True)
    journal = tmp_path / "out.tif.journal"
    t0 = time.time()
    while time.time() - t0 < 60 and (not journal.exists() or journal.read_bytes().count(b"\ntask ") < 4):
        time.sleep(0.05)
    p.send_signal(signal.SIGUSR1)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 75, err
    assert b"plugins=laplace=" in journal.read_bytes()
    subprocess.run(["cc", "-O0", "-g", "-shared", "-fPIC", "-o", lap,
                    os.path.join(ROOT, "plugins", "laplace.c"), "-I", os.path.join(ROOT, "include")], check=True)
    p = run(*map(str, args[1:]), "--resume", check=False)
    assert p.returncode == 2 and "plugins" in p.stderr, p.stderr
    shutil.copy(LAPLACE, lap)
    run(*map(str, args[1:]), "--resume")
    run("run", "-i", tmp_path / "in.tif", "-o", tmp_path / "ref.tif", "--plugin", LAPLACE, "-p",
        "delay ms=0 | laplace", "--tile", 32, "--quiet")
    assert np.array_equal(tifffile.imread(out), tifffile.imread(tmp_path / "ref.tif"))


# ---- patch_replace ---------------------------------------------------------

@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("patch")
    subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "jobs", "make_patch_inputs.py"), str(d), "--train", "6",
                    "--size", "96", "--test", "3"], check=True, capture_output=True)
    train = [tifffile.imread(p) if p.endswith(".tif") else __import__("cv2").imread(p, 0)
             for p in sorted(str(x) for x in (d / "train").iterdir())]
    tests = {x.name: __import__("cv2").imread(str(x), 0) for x in sorted((d / "test").iterdir())}
    return d, train, tests


def by_name(f, path, names):
    """A list output's per-image dataset: one row per image, or (when the
    sizes differ) a group with one dataset per name."""
    g = f[path]
    if isinstance(g, h5py.Group):
        return {n: g[n][()] for n in names}
    return {n: g[i] for i, n in enumerate(names)}


def read_list(out):
    with h5py.File(out) as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f["names"][:]]
        return names, by_name(f, "images", names), by_name(f, "results/patch_replace", names)


def list_run(tmp_path, d, pipeline, *extra):
    out = tmp_path / "out.h5"
    run("run", "-i", d / "test", "-o", out, "--plugin", PATCH, "-p", pipeline, "--quiet", "--force", *extra)
    return read_list(out)


@pytest.mark.parametrize("size,rotations,stride", [(16, 4, None), (16, 1, 8), (8, 4, None), (24, 1, 12)])
def test_patch_replace_equals_brute_force(tmp_path, data, size, rotations, stride):
    d, train, tests = data
    pipe = f"patch_replace db={d / 'train'} size={size} rotations={rotations}" + (f" stride={stride}" if stride else "")
    names, imgs, idx = list_run(tmp_path, d, pipe, "--threads", 2)
    patches = db_patches(train, size, rotations, stride)
    for n in names:
        want_idx, want = nearest(tests[n], patches)
        got = np.asarray(idx[n]).ravel()[:len(want_idx)].astype(np.int64)
        assert np.array_equal(got, want_idx), (n, np.nonzero(got != want_idx)[0][:10])
        assert np.array_equal(imgs[n], want), n


def test_sklearn_agrees_where_unique(tmp_path, data):
    from sklearn.neighbors import NearestNeighbors
    d, train, tests = data
    names, imgs, idx = list_run(tmp_path, d, f"patch_replace db={d / 'train'} rotations=4")
    patches = db_patches(train, 16, 4)
    flat = patches.reshape(len(patches), -1).astype(np.float64)
    nn = NearestNeighbors(n_neighbors=2, algorithm="brute").fit(flat)
    checked = ties = 0
    for n in names:
        img = tests[n]
        h, w = (img.shape[0] // 16) * 16, (img.shape[1] // 16) * 16  # whole blocks
        blocks = img[:h, :w].reshape(h // 16, 16, w // 16, 16).swapaxes(1, 2).reshape(-1, 256).astype(np.float64)
        dist, ind = nn.kneighbors(blocks)
        got = np.asarray(idx[n]).ravel().reshape((img.shape[0] + 15) // 16, -1)[: h // 16, : w // 16].ravel()
        unique = ~np.isclose(dist[:, 0], dist[:, 1], rtol=0, atol=1e-6)
        assert np.array_equal(got[unique], ind[unique, 0])
        checked += unique.sum()
        ties += (~unique).sum()
    assert checked > 500 and ties > 10  # both cases occur in these inputs


def test_db_as_hdf5_stack_equals_directory(tmp_path, data):
    d, _, _ = data
    _, a, ia = list_run(tmp_path, d, f"patch_replace db={d / 'train'} rotations=4")
    _, b, ib = list_run(tmp_path, d, f"patch_replace db={d / 'train.h5'}:/images rotations=4")
    assert all(np.array_equal(a[n], b[n]) and np.array_equal(ia[n], ib[n]) for n in a)


def test_rgb_and_u16_take_the_float64_path(tmp_path):
    """3 channels (D = 768) and u16 exceed float32's exact range: dgemm."""
    for dtype, ch in (("u8", 3), ("u16", 1)):
        train = np.stack([make_image(64, 64, dtype, ch, seed=s) for s in range(3)])
        test = np.stack([make_image(50, 70, dtype, ch, seed=9 + s) for s in range(2)])
        with h5py.File(tmp_path / "db.h5", "w") as f:
            f["images"] = train
        with h5py.File(tmp_path / "test.h5", "w") as f:
            f["images"] = test
        out = tmp_path / "o.h5"
        run("run", "-i", f"{tmp_path / 'test.h5'}:/images", "-o", out, "--plugin", PATCH, "-p",
            f"patch_replace db={tmp_path / 'db.h5'}:/images size=8 rotations=4", "--quiet", "--force")
        patches = db_patches(list(train), 8, 4)
        names, imgs, idx = read_list(out)
        for i, n in enumerate(names):
            want_idx, want = nearest(test[i], patches)
            assert np.array_equal(imgs[n], want), (dtype, ch, i)
            assert np.array_equal(np.asarray(idx[n]).ravel().astype(int), want_idx)


def test_tile_mode_equals_list_mode(tmp_path, data):
    d, _, tests = data
    name = sorted(tests)[2]
    img = tests[name]
    write_tiff(tmp_path / "one.tif", img)
    (tmp_path / "one").mkdir()
    shutil.copy(d / "test" / name, tmp_path / "one" / name)
    pipe = f"patch_replace db={d / 'train'} rotations=4"
    out = tmp_path / "list.h5"
    run("run", "-i", tmp_path / "one", "-o", out, "--plugin", PATCH, "-p", pipe, "--quiet")
    want = read_list(out)[1][name]
    for extra in (["--tile", 64, "--threads", 2], ["--tile", 48, "--threads", 1], ["--tile", 1024, "--threads", 2]):
        run("run", "-i", tmp_path / "one.tif", "-o", tmp_path / "t.tif", "--plugin", PATCH, "-p", pipe, "--quiet",
            "--force", *extra)
        assert np.array_equal(tifffile.imread(tmp_path / "t.tif"), want), extra
    mpirun(3, "run", "-i", tmp_path / "one.tif", "-o", tmp_path / "m.tif", "--plugin", PATCH, "-p", pipe, "--tile", 64,
           "--quiet")
    assert np.array_equal(tifffile.imread(tmp_path / "m.tif"), want)
    # tiles must lie on the block grid
    p = run("run", "-i", tmp_path / "one.tif", "-o", tmp_path / "bad.tif", "--plugin", PATCH, "-p",
            pipe.replace("rotations=4", "size=24"), "--tile", 64, check=False)
    assert p.returncode == 2 and "--tile 64" in p.stderr and "multiple of 24" in p.stderr and "--tile 96" in p.stderr
    assert not (tmp_path / "bad.tif").exists()
    p = run("run", "-i", tmp_path / "one.tif", "-o", tmp_path / "bad.tif", "--plugin", PATCH, "-p",
            pipe + " | gaussian sigma=1", check=False)
    assert p.returncode == 2 and "no halo" in p.stderr


def test_pipeline_text_that_is_not_utf8_becomes_text(tmp_path, data):
    """A path parameter is bytes (here a Latin-1 directory name); the
    pipeline text the outputs record is text: ill-formed UTF-8 becomes
    U+FFFD, as Python's decode(errors="replace") makes it. Before: the
    OME-XML was not well-formed and Zarr's attributes lost the pipeline."""
    import json
    import xml.etree.ElementTree as ET
    d, train, tests = data
    db = tmp_path / os.fsdecode(b"caf\xe9_db")
    shutil.copytree(d / "train", db)
    write_tiff(tmp_path / "one.tif", tests[sorted(tests)[0]])
    pipe = f"patch_replace db={db} rotations=1"
    want = f"patch_replace db={os.fsencode(db).decode('utf-8', 'replace')} size=16 rotations=1"
    outs = {x: tmp_path / x for x in ("o.ome.tif", "z2.zarr", "z3.zarr", "h.h5")}
    for name, out in outs.items():
        fmt = ["--zarr-format", name[1]] if name.startswith("z") else []
        run("run", "-i", tmp_path / "one.tif", "-o", out, "--plugin", PATCH, "-p", pipe, "--quiet", *fmt)
    raw = outs["o.ome.tif"].read_bytes()
    root = ET.fromstring(raw[raw.find(b"<?xml"):raw.find(b"</OME>") + 6])  # strict UTF-8
    assert [e.text for e in root.iter() if e.tag.endswith("}Value")] == [want]
    assert json.loads((outs["z2.zarr"] / ".zattrs").read_bytes().decode("utf-8"))["tessera"]["pipeline"] == want
    z3 = json.loads((outs["z3.zarr"] / "zarr.json").read_bytes().decode("utf-8"))
    assert z3["attributes"]["tessera"]["pipeline"] == want
    with h5py.File(outs["h.h5"]) as f:
        assert f["image"].attrs["description"].decode("utf-8") == want


def test_patch_replace_errors(tmp_path, data):
    d, _, _ = data
    write_tiff(tmp_path / "rgb.tif", make_image(64, 64, "u8", 3))
    p = run("run", "-i", tmp_path / "rgb.tif", "-o", tmp_path / "o.tif", "--plugin", PATCH, "-p",
            f"patch_replace db={d / 'train'}", check=False)
    assert p.returncode == 2 and "train0000.png is u8 with 1 channel(s); the input is u8 with 3" in p.stderr, p.stderr
    p = run("run", "-i", tmp_path / "rgb.tif", "-o", tmp_path / "o.tif", "--plugin", PATCH, "-p",
            f"patch_replace db={tmp_path / 'missing'}", check=False)
    assert p.returncode != 0 and "patch_replace: db" in p.stderr and "missing" in p.stderr, p.stderr
    p = run("run", "-i", tmp_path / "rgb.tif", "-o", tmp_path / "o.tif", "--plugin", PATCH, "-p", "patch_replace",
            check=False)
    assert p.returncode == 2 and "'db' is required" in p.stderr
    assert not (tmp_path / "o.tif").exists()


def test_patch_replace_job_file(tmp_path):
    """jobs/patch-replace.ini on its generated inputs: 20,480 patches."""
    subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "jobs", "make_patch_inputs.py"), "--test", "2"], check=True,
                   capture_output=True)
    run("run", os.path.join(ROOT, "jobs", "patch-replace.ini"), "--quiet")
    demo = os.path.join(ROOT, "build", "demo")
    names, imgs, idxs = read_list(os.path.join(demo, "out", "patch-replaced.h5"))
    assert len(names) >= 2
    idx = np.concatenate([np.asarray(v).ravel() for v in idxs.values()])
    import cv2
    train = [cv2.imread(os.path.join(demo, "patch", "train", n), 0) for n in sorted(os.listdir(os.path.join(demo, "patch", "train")))]
    assert len(db_patches(train, 16, 4)) == 20480 and idx.max() < 20480
