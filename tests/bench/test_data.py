"""Tests for mixkit.bench.data: loaders (on tiny fake files), subsets, normalisation, augmentation."""
from __future__ import annotations

import gzip
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from mixkit.bench import data as D
from mixkit.bench import idx as D_idx
from mixkit.bench.data import cifar as D_cifar
from mixkit.bench.data import download as D_download
from mixkit.bench.data import fashion as D_fashion
from mixkit.bench.data import split as D_split


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------
def _write_idx(path: Path, arr: np.ndarray, gz: bool) -> None:
    assert arr.dtype == np.uint8
    header = bytes([0, 0, 0x08, arr.ndim]) + np.asarray(arr.shape, dtype=">i4").tobytes()
    payload = header + arr.tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def _fake_fashion(d: Path, gz: bool, n_train: int = 12, n_test: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True, exist_ok=True)
    xtr = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    ytr = (np.arange(n_train) % 10).astype(np.uint8)
    xte = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
    yte = (np.arange(n_test) % 10).astype(np.uint8)
    _write_idx(d / "train-images-idx3-ubyte", xtr, gz)
    _write_idx(d / "train-labels-idx1-ubyte", ytr, gz)
    _write_idx(d / "t10k-images-idx3-ubyte", xte, gz)
    _write_idx(d / "t10k-labels-idx1-ubyte", yte, gz)
    return xtr, ytr, xte, yte


@pytest.fixture
def no_data_anywhere(monkeypatch, tmp_path):
    """Hide every real data location: no $MIXKIT_DATA, an empty $HOME, no Debian directory."""
    monkeypatch.delenv("MIXKIT_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(D_idx, "FASHION_MNIST_DEBIAN_DIR", tmp_path / "no-debian")
    return tmp_path


def _toy_split(n_train=200, n_test=60, k=4, shape=(1, 6, 6), seed=0) -> D.DataSplit:
    g = torch.Generator().manual_seed(seed)
    ytr = torch.arange(n_train) % k
    yte = torch.arange(n_test) % k
    return D_split._make_split(
        torch.rand(n_train, *shape, generator=g), ytr, torch.rand(n_test, *shape, generator=g), yte,
        name="toy", num_classes=k, spatial_dims=len(shape) - 1,
    )


# --------------------------------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------------------------------
def test_digits_shapes_ranges_split():
    ds = D.load_digits()
    assert ds.x_train.shape == (1347, 1, 8, 8) and ds.x_test.shape == (450, 1, 8, 8)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.num_classes == 10 and ds.spatial_dims == 2 and ds.in_channels == 1
    for x in (ds.x_train, ds.x_test):
        assert x.min() >= 0 and x.max() <= 1
    assert ds.x_train.max() == 1.0  # 16/16 occurs
    # pixel values are multiples of 1/16
    assert torch.allclose(ds.x_train * 16, (ds.x_train * 16).round())
    # stratified: every class has ~25 % of its images in test
    counts_te = torch.bincount(ds.y_test, minlength=10)
    counts_all = counts_te + torch.bincount(ds.y_train, minlength=10)
    assert ((counts_te.double() / counts_all - 0.25).abs() < 0.02).all()
    # mean/std computed on train
    assert ds.mean[0] == pytest.approx(ds.x_train.double().mean().item(), rel=1e-9)
    assert ds.std[0] == pytest.approx(ds.x_train.double().std(unbiased=False).item(), rel=1e-9)
    assert ds.class_names == tuple(str(i) for i in range(10))
    assert "1347" in repr(ds) and "tensor" not in repr(ds)


def test_digits_deterministic_and_disjoint():
    a, b = D.load_digits(), D.load_digits()
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    # no test image appears in train
    tr = {bytes(r.numpy().tobytes()) for r in (a.x_train.flatten(1) * 16).to(torch.uint8)}
    te = [bytes(r.numpy().tobytes()) for r in (a.x_test.flatten(1) * 16).to(torch.uint8)]
    assert sum(t in tr for t in te) == 0


# --------------------------------------------------------------------------------------------------
# idx / Fashion-MNIST
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_from_tiny_idx(tmp_path, gz, no_data_anywhere):
    d = tmp_path / "fm"
    xtr, ytr, xte, yte = _fake_fashion(d, gz=gz)
    ds = D.load_fashion_mnist(data_dir=d)
    assert ds.x_train.shape == (12, 1, 28, 28) and ds.x_test.shape == (5, 1, 28, 28)
    assert ds.x_train.dtype == torch.float32 and ds.y_test.dtype == torch.int64
    assert torch.allclose(ds.x_train[:, 0] * 255, torch.from_numpy(xtr).float())
    assert torch.equal(ds.y_train, torch.from_numpy(ytr.astype(np.int64)))
    assert torch.equal(ds.y_test, torch.from_numpy(yte.astype(np.int64)))
    assert ds.name == "fashion-mnist" and ds.class_names[0] == "T-shirt/top"


def test_fashion_mnist_subfolder_env_var_and_registry_alias(tmp_path, monkeypatch, no_data_anywhere):
    _fake_fashion(tmp_path / "store" / "fashion-mnist", gz=True, n_train=7)
    monkeypatch.setenv("MIXKIT_DATA", str(tmp_path / "store"))
    for name in ("fashion-mnist", "fashion_mnist", "fmnist", "FMNIST"):
        assert D.load_dataset(name).n_train == 7


def test_read_idx_rejects_garbage_and_truncation(tmp_path):
    p = tmp_path / "bad"
    p.write_bytes(b"\x01\x02\x03\x04garbage")
    with pytest.raises(ValueError, match="not an idx"):
        D.read_idx(p)
    arr = np.zeros((4, 3), dtype=np.uint8)
    _write_idx(tmp_path / "trunc", arr, gz=False)
    raw = (tmp_path / "trunc").read_bytes()
    (tmp_path / "trunc").write_bytes(raw[:-2])
    with pytest.raises(ValueError, match="truncated"):
        D.read_idx(tmp_path / "trunc")


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize(
    "code, dtype", [(0x08, "u1"), (0x09, "i1"), (0x0B, ">i2"), (0x0C, ">i4"), (0x0D, ">f4"), (0x0E, ">f8")]
)
def test_idx_reader_every_dtype_as_tensor(tmp_path, code, dtype, gz):
    arr = (np.random.default_rng(code).standard_normal((3, 4, 5)) * 100).astype(dtype)
    payload = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">i4").tobytes()
    payload += arr.tobytes() + b"trailing bytes are ignored"
    p = tmp_path / "f"
    if gz:
        with gzip.open(p, "wb") as f:
            f.write(payload)
    else:
        p.write_bytes(payload)
    native = arr.astype(arr.dtype.newbyteorder("="))
    t = D_idx.read_idx(p)
    assert isinstance(t, torch.Tensor) and t.shape == (3, 4, 5)
    assert torch.equal(t, torch.from_numpy(native))
    a = D.read_idx(p)  # the numpy face of the same reader
    assert isinstance(a, np.ndarray) and a.dtype == native.dtype and np.array_equal(a, native)


def test_idx_locator_order_and_absence(tmp_path, monkeypatch, no_data_anywhere):
    assert D_idx.find_fashion_mnist(tmp_path / "nowhere") is None
    _fake_fashion(tmp_path / "env" / "fashion_mnist", gz=True)
    _fake_fashion(tmp_path / "mine", gz=False)
    monkeypatch.setenv("MIXKIT_DATA", str(tmp_path / "env"))
    found = D_idx.find_fashion_mnist(tmp_path / "mine")
    assert found == {k: tmp_path / "mine" / stem for k, stem in D_idx.FASHION_MNIST_FILES.items()}
    found = D_idx.find_fashion_mnist()
    assert found["test_labels"] == tmp_path / "env" / "fashion_mnist" / "t10k-labels-idx1-ubyte.gz"
    dirs = D_idx.fashion_mnist_dirs(tmp_path / "mine")
    assert dirs[0] == tmp_path / "mine" and dirs[4] == tmp_path / "env"
    assert dirs[-2:] == [no_data_anywhere / "no-debian", D_idx.cache_root() / "fashion-mnist"]


def test_idx_module_needs_no_numpy(tmp_path):
    import subprocess
    import sys

    _fake_fashion(tmp_path / "fm", gz=True, n_test=3)
    code = (
        "import sys\n"
        "sys.modules['numpy'] = None  # any import of numpy now fails\n"
        "from mixkit.bench.idx import find_fashion_mnist, read_idx\n"
        "found = find_fashion_mnist(sys.argv[1])\n"
        "x = read_idx(found['test_images'])\n"
        "assert x.shape == (3, 28, 28) and str(x.dtype) == 'torch.uint8', x.shape\n"
        "assert read_idx(found['test_labels']).tolist() == [0, 1, 2]\n"
    )
    subprocess.run([sys.executable, "-W", "ignore", "-c", code, str(tmp_path / "fm")], check=True)


def test_fashion_mnist_missing_gives_one_clear_error(no_data_anywhere):
    with pytest.raises(D.DatasetNotFoundError) as ei:
        D.load_dataset("fashion-mnist", data_dir=no_data_anywhere / "nowhere")
    msg = str(ei.value)
    assert isinstance(ei.value, FileNotFoundError)
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "--data-dir" in msg and "--download" in msg
    assert "train-images-idx3-ubyte.gz" in msg
    assert str(no_data_anywhere / "nowhere") in msg  # lists what was searched


@pytest.mark.skipif(
    not (D.FASHION_MNIST_DEBIAN_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_fashion_mnist_real(monkeypatch):
    monkeypatch.delenv("MIXKIT_DATA", raising=False)
    ds = D.load_fashion_mnist()
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert torch.equal(torch.bincount(ds.y_train), torch.full((10,), 6000))
    assert torch.equal(torch.bincount(ds.y_test), torch.full((10,), 1000))
    assert 0 <= ds.x_test.min() and ds.x_test.max() <= 1
    # the well-known Fashion-MNIST statistics
    assert ds.mean[0] == pytest.approx(0.2860, abs=1e-3)
    assert ds.std[0] == pytest.approx(0.3530, abs=1e-3)


# --------------------------------------------------------------------------------------------------
# MNIST-1D
# --------------------------------------------------------------------------------------------------
def test_mnist1d_shapes_determinism_and_no_global_rng_side_effect():
    pytest.importorskip("mnist1d")
    np.random.seed(123)
    random.seed(123)
    expected_np, expected_py = np.random.rand(), random.random()
    np.random.seed(123)
    random.seed(123)
    a = D.load_mnist1d(n_train=95, n_test=33, seed=3)
    assert np.random.rand() == expected_np and random.random() == expected_py
    assert a.x_train.shape == (95, 1, 40) and a.x_test.shape == (33, 1, 40)
    assert a.spatial_dims == 1 and a.num_classes == 10 and a.y_train.dtype == torch.int64
    x = torch.cat([a.x_train, a.x_test])
    assert x.dtype == torch.float32 and x.min() == 0 and x.max() == 1
    b = D.load_mnist1d(n_train=95, n_test=33, seed=3)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    c = D.load_mnist1d(n_train=95, n_test=33, seed=4)
    assert not torch.equal(a.x_train, c.x_train)
    assert D.load_dataset("mnist1d", n_train=20, n_test=10).x_test.shape == (10, 1, 40)


# --------------------------------------------------------------------------------------------------
# CIFAR
# --------------------------------------------------------------------------------------------------
def _pickle_py2_style(path: Path, d: dict) -> None:
    # the official batches have bytes keys (Python 2 str)
    with open(path, "wb") as f:
        pickle.dump({k.encode(): v for k, v in d.items()}, f)


def _fake_cifar(root: Path, which: int, per_batch: int = 2, n_test: int = 3):
    rng = np.random.default_rng(which)
    if which == 10:
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        xs, ys = [], []
        for i in range(1, 6):
            x = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
            y = [int(v) for v in rng.integers(0, 10, per_batch)]
            _pickle_py2_style(folder / f"data_batch_{i}", {"data": x, "labels": y})
            xs.append(x)
            ys += y
        xt = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
        yt = [int(v) for v in rng.integers(0, 10, n_test)]
        _pickle_py2_style(folder / "test_batch", {"data": xt, "labels": yt})
        _pickle_py2_style(folder / "batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
        return np.concatenate(xs), ys, xt, yt
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    x = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
    y = [0, 99, 42, 7]
    xt = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    yt = [5, 6, 98][:n_test]
    _pickle_py2_style(folder / "train", {"data": x, "fine_labels": y, "coarse_labels": [0] * 4})
    _pickle_py2_style(folder / "test", {"data": xt, "fine_labels": yt, "coarse_labels": [0] * n_test})
    _pickle_py2_style(folder / "meta", {"fine_label_names": [f"f{i}" for i in range(100)]})
    return x, y, xt, yt


@pytest.mark.parametrize("which", [10, 100])
def test_cifar_parsing(tmp_path, which, no_data_anywhere):
    x, y, xt, yt = _fake_cifar(tmp_path / "data", which)
    ds = D.load_cifar(tmp_path / "data", which=which)
    assert ds.x_train.shape == (len(y), 3, 32, 32) and ds.x_test.shape == (len(yt), 3, 32, 32)
    assert ds.num_classes == which and ds.name == f"cifar{which}"
    assert ds.y_train.tolist() == list(y) and ds.y_test.tolist() == list(yt)
    # channel-major rows: R plane (1024 values), then G, then B
    assert ds.x_train[0, 1, 0, 0] * 255 == pytest.approx(float(x[0, 1024]))
    assert ds.x_train[1, 2, 31, 31] * 255 == pytest.approx(float(x[1, 3071]))
    assert ds.class_names[0] == ("c0" if which == 10 else "f0")
    # the release folder itself also works as data_dir, and so does the registry name
    sub = "cifar-10-batches-py" if which == 10 else "cifar-100-python"
    assert D.load_cifar(tmp_path / "data" / sub, which=which).n_train == len(y)
    assert D.load_dataset(f"cifar{which}", data_dir=tmp_path / "data").n_test == len(yt)


def test_cifar_missing_and_bad_which(no_data_anywhere):
    with pytest.raises(D.DatasetNotFoundError, match="--download") as ei:
        D.load_dataset("cifar100", data_dir=no_data_anywhere)
    assert "cifar-100-python" in str(ei.value) and "--data-dir" in str(ei.value)
    with pytest.raises(ValueError, match="10 or 100"):
        D.load_cifar(no_data_anywhere, which=20)


# --------------------------------------------------------------------------------------------------
# image folder
# --------------------------------------------------------------------------------------------------
def test_image_folder(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    colors = {"cat": (255, 0, 0), "dog": (0, 0, 255)}
    for split, n in (("train", 2), ("val", 1)):
        for cls, col in colors.items():
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (12, 10), col).save(tmp_path / split / cls / f"{i}.png")
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
    ds = D.load_image_folder(tmp_path, size=8)
    assert ds.x_train.shape == (4, 3, 8, 8) and ds.x_test.shape == (2, 3, 8, 8)
    assert ds.class_names == ("cat", "dog") and ds.num_classes == 2
    assert ds.y_train.tolist() == [0, 0, 1, 1] and ds.y_test.tolist() == [0, 1]
    assert torch.allclose(ds.x_train[0, 0], torch.ones(8, 8))  # red cat, red channel = 1
    assert torch.allclose(ds.x_train[2, 2], torch.ones(8, 8))  # blue dog, blue channel = 1
    assert ds.x_train[2, 0].abs().max() == 0
    g = D.load_dataset(f"folder:{tmp_path}", size=(6, 5), grayscale=True)
    assert g.x_train.shape == (4, 1, 6, 5)
    assert D.load_dataset("imagefolder", data_dir=tmp_path, size=4).x_test.shape == (2, 3, 4, 4)
    with pytest.raises(D.DatasetNotFoundError, match="root/train/<class>"):
        D.load_image_folder(tmp_path / "train")


# --------------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------------
def test_unknown_dataset_lists_names():
    with pytest.raises(ValueError) as ei:
        D.load_dataset("imagenet")
    for n in ("digits", "fashion-mnist", "mnist1d", "cifar10", "cifar100", "folder:"):
        assert n in str(ei.value)


def test_registry_digits():
    assert D.load_dataset("Digits").n_train == 1347


# --------------------------------------------------------------------------------------------------
# subset / validation split / normalisation
# --------------------------------------------------------------------------------------------------
def test_subset_stratified_deterministic():
    ds = _toy_split()
    a = D.subset(ds, 40, 20, seed=1)
    assert a.n_train == 40 and a.n_test == 20
    assert torch.bincount(a.y_train).tolist() == [10, 10, 10, 10]
    assert torch.bincount(a.y_test).tolist() == [5, 5, 5, 5]
    b = D.subset(ds, 40, 20, seed=1)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_test, b.x_test)
    c = D.subset(ds, 40, 20, seed=2)
    assert not torch.equal(a.x_train, c.x_train)
    assert a.mean == ds.mean and a.std == ds.std  # full-train statistics are kept
    # rows come from the original set, labels stay attached to their images
    idx = [int(torch.nonzero((ds.x_train == r).all(dim=(1, 2, 3)))[0]) for r in a.x_train]
    assert torch.equal(ds.y_train[idx], a.y_train) and len(set(idx)) == 40
    # odd size: largest-remainder rounding keeps the total exact
    assert D.subset(ds, 37, None, seed=0).n_train == 37
    full = D.subset(ds, None, 10_000)
    assert full.n_train == ds.n_train and full.n_test == ds.n_test
    assert D.subset(ds, 13, 7, stratified=False).n_train == 13
    with pytest.raises(ValueError):
        D.subset(ds, 0, None)


def test_validation_split_disjoint():
    ds = _toy_split()
    v = D.validation_split(ds, 40, seed=0)
    assert v.n_train == 160 and v.n_test == 40
    assert torch.bincount(v.y_test).tolist() == [10] * 4
    both = torch.cat([v.x_train, v.x_test]).flatten(1)
    assert torch.unique(both, dim=0).shape[0] == 200


def test_normalize_roundtrip_and_stats():
    ds = _toy_split(shape=(3, 5, 5))
    z = D.normalize(ds.x_train, ds.mean, ds.std)
    assert z.shape == ds.x_train.shape and z.dtype == torch.float32
    per_ch = z.transpose(0, 1).flatten(1)
    assert torch.allclose(per_ch.mean(1), torch.zeros(3), atol=1e-5)
    assert torch.allclose(per_ch.std(1, unbiased=False), torch.ones(3), atol=1e-4)
    back = D.denormalize(z, ds.mean, ds.std)
    assert torch.allclose(back, ds.x_train, atol=1e-6)
    h = D.normalize(ds.x_train[:2].half(), ds.mean, ds.std)
    assert h.dtype == torch.float16
    with pytest.raises(ValueError, match="channels"):
        D.normalize(ds.x_train, (0.5, 0.5), (1.0, 1.0))


def test_datasplit_validates_shapes():
    with pytest.raises(ValueError):
        D.DataSplit(torch.zeros(3, 1, 4, 4), torch.zeros(2, dtype=torch.long),
                    torch.zeros(1, 1, 4, 4), torch.zeros(1, dtype=torch.long),
                    2, "x", (0.0,), (1.0,), 2)


# --------------------------------------------------------------------------------------------------
# random_crop_flip
# --------------------------------------------------------------------------------------------------
def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_crop_flip_shape_dtype_determinism():
    x = torch.rand(16, 3, 10, 10)
    x0 = x.clone()
    a = D.random_crop_flip(x, pad=2, generator=_gen(0))
    b = D.random_crop_flip(x, pad=2, generator=_gen(0))
    c = D.random_crop_flip(x, pad=2, generator=_gen(1))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(x, x0)  # input untouched
    h = D.random_crop_flip(x.half(), pad=2, generator=_gen(0))
    assert h.dtype == torch.float16 and torch.equal(h, a.half())
    cl = D.random_crop_flip(x.contiguous(memory_format=torch.channels_last), 2, generator=_gen(0))
    assert cl.is_contiguous(memory_format=torch.channels_last) and torch.equal(cl, a)


def test_flip_actually_flips():
    x = torch.rand(64, 2, 5, 7)
    out = D.random_crop_flip(x, pad=0, flip=True, generator=_gen(0))
    same = (out == x).flatten(1).all(1)
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    assert (same | flipped).all()
    assert 10 < int(flipped.sum()) < 54  # ~Binomial(64, 0.5)
    assert torch.equal(D.random_crop_flip(x, pad=0, flip=False, generator=_gen(0)), x)


@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_crop_is_a_window_of_the_padded_image(mode):
    import torch.nn.functional as F

    p = 2
    x = torch.rand(12, 1, 6, 6)
    out = D.random_crop_flip(x, pad=p, flip=False, generator=_gen(3), padding_mode=mode)
    xp = F.pad(x, (p, p, p, p), mode="constant" if mode == "zeros" else "reflect")
    offsets = set()
    for i in range(x.shape[0]):
        hits = [(dy, dx) for dy in range(2 * p + 1) for dx in range(2 * p + 1)
                if torch.equal(out[i], xp[i, :, dy:dy + 6, dx:dx + 6])]
        assert hits, f"sample {i} is not a crop of its padded image"
        offsets.add(hits[0])
    assert len(offsets) > 3  # offsets really vary per sample


def test_crop_1d_shift():
    p = 3
    x = torch.rand(20, 2, 15)
    out = D.random_crop_flip(x, pad=p, generator=_gen(0))
    assert out.shape == x.shape
    xp = torch.nn.functional.pad(x, (p, p))
    shifts = set()
    for i in range(20):
        hits = [s for s in range(2 * p + 1) if torch.equal(out[i], xp[i, :, s:s + 15])]
        assert hits
        shifts.add(hits[0])
    assert len(shifts) > 2
    assert torch.equal(D.random_crop_flip(x, pad=0, generator=_gen(0)), x)


def test_crop_flip_bad_input():
    with pytest.raises(ValueError, match="shape"):
        D.random_crop_flip(torch.rand(2, 1, 4, 4, 4), pad=1)
    with pytest.raises(ValueError, match="pad"):
        D.random_crop_flip(torch.rand(2, 1, 4, 4), pad=-1)
    with pytest.raises(ValueError, match="padding_mode"):
        D.random_crop_flip(torch.rand(2, 1, 4, 4), pad=1, padding_mode="edge")


def test_data_module_imports_only_torch_numpy():
    import subprocess
    import sys

    code = (
        "import sys, mixkit\n"
        "before = set(sys.modules)\n"
        "import mixkit.bench.data\n"
        "new = set(sys.modules) - before\n"
        "bad = [m for m in new if m.split('.')[0] in ('sklearn', 'mnist1d', 'PIL', 'matplotlib', 'scipy')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------------------------------
# download code paths, with urlopen served from local bytes (no network is touched)
# --------------------------------------------------------------------------------------------------
class _FakeURLs:
    def __init__(self, files: dict):
        self.files = files  # url -> bytes
        self.requested: list[str] = []

    def __call__(self, url, timeout=None):
        import io

        self.requested.append(url)
        return io.BytesIO(self.files[url])


def test_fashion_mnist_download_path(tmp_path, monkeypatch, no_data_anywhere):
    import hashlib

    src = tmp_path / "src"
    _fake_fashion(src, gz=True, n_train=9)
    files, md5 = {}, {}
    for p in src.iterdir():
        files[D.FASHION_MNIST_URL + p.name] = p.read_bytes()
        md5[p.name] = hashlib.md5(p.read_bytes()).hexdigest()
    fake = _FakeURLs(files)
    monkeypatch.setattr(D_download.urllib.request, "urlopen", fake)
    monkeypatch.setattr(D_fashion, "FASHION_MNIST_MD5", md5)
    ds = D.load_fashion_mnist(download=True)  # into ~/.cache/mixkit/fashion-mnist
    assert ds.n_train == 9 and len(fake.requested) == 4
    assert (no_data_anywhere / "home" / ".cache" / "mixkit" / "fashion-mnist").is_dir()
    D.load_fashion_mnist(download=True)  # found in the cache now: nothing fetched again
    assert len(fake.requested) == 4
    # a corrupted download is rejected and leaves no file behind
    import shutil

    shutil.rmtree(no_data_anywhere / "home" / ".cache")
    monkeypatch.setattr(D_fashion, "FASHION_MNIST_MD5", {k: "0" * 32 for k in md5})
    with pytest.raises(OSError, match="checksum"):
        D.load_fashion_mnist(data_dir=tmp_path / "other", download=True)
    assert not any((tmp_path / "other").iterdir())


def test_cifar_download_path(tmp_path, monkeypatch, no_data_anywhere):
    import hashlib
    import tarfile

    _fake_cifar(tmp_path / "src", 10)
    tgz = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    url = D_cifar._CIFAR[10]["url"]
    fake = _FakeURLs({url: tgz.read_bytes()})
    monkeypatch.setattr(D_download.urllib.request, "urlopen", fake)
    monkeypatch.setitem(D_cifar._CIFAR[10], "md5", hashlib.md5(tgz.read_bytes()).hexdigest())
    ds = D.load_cifar(tmp_path / "dl", which=10, download=True)
    assert ds.n_train == 10 and ds.n_test == 3 and fake.requested == [url]
    assert (tmp_path / "dl" / "cifar-10-batches-py" / "test_batch").is_file()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_crop_flip_cuda_matches_cpu_with_cpu_generator():
    x = torch.rand(8, 3, 12, 12)
    cpu = D.random_crop_flip(x, pad=3, generator=_gen(5))
    gpu = D.random_crop_flip(x.cuda(), pad=3, generator=_gen(5))
    assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), cpu)
    z = D.normalize(x.cuda(), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert z.device.type == "cuda"
