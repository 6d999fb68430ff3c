"""Tests for MixCollate (DataLoader collate_fn) and MixTransform (torchvision-v2-style transform)."""
import pickle

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset, default_collate

from mixkit.integrations import MixCollate, MixTransform
from mixkit.mixers.compose import RandomChoice
from mixkit.mixers.cutmix import CutMix
from mixkit.mixers.mixup import MixUp
from mixkit.result import MixResult
from mixkit.targets import one_hot, soft_targets

K = 4
N = 24
BS = 4


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def dataset():
    # image i is the constant i, so the unmixed batch is known and provenance is checkable
    xs = torch.arange(N, dtype=torch.float32).view(N, 1, 1, 1).expand(N, 2, 6, 6).contiguous()
    ys = torch.arange(N) % K
    return xs, ys, TensorDataset(xs, ys)


def loader(collate, seed=0, workers=2, shuffle=False, **kw):
    _, _, ds = dataset()
    return DataLoader(ds, batch_size=BS, shuffle=shuffle, num_workers=workers, collate_fn=collate,
                      generator=gen(seed), **kw)


# ------------------------------------------------------------------------------------------- MixCollate
def test_collate_in_workers_mixes_with_soft_targets():
    xs, ys, _ = dataset()
    # labels = dataset index, so the soft label's mass reveals the sources and their weights
    ds = TensorDataset(xs, torch.arange(N))
    collate = MixCollate(MixUp(no_self_pairs=True), num_classes=N)
    n = 0
    for i, (xm, yt) in enumerate(DataLoader(ds, batch_size=BS, num_workers=2, collate_fn=collate)):
        x0 = xs[i * BS:(i + 1) * BS]
        assert xm.shape == x0.shape and xm.dtype == torch.float32
        assert not torch.equal(xm, x0)
        assert yt.shape == (BS, N) and yt.dtype == torch.float32
        assert torch.allclose(yt.sum(1), torch.ones(BS))
        # pixel provenance matches the label mass: image j is the constant j, so each mixed row is
        # the label-weighted mean of the source indices
        assert torch.allclose(xm.mean(dim=(1, 2, 3)), yt @ torch.arange(N, dtype=torch.float32), atol=1e-4)
        n += 1
    assert n == N // BS


def test_collate_return_result_crosses_worker_boundary():
    xs, ys, _ = dataset()
    collate = MixCollate(CutMix(no_self_pairs=True), return_result=True)
    workers = set()
    for i, (xm, y, res) in enumerate(loader(collate)):
        assert isinstance(res, MixResult)
        assert torch.equal(res.inputs, xm)
        assert torch.equal(y, ys[i * BS:(i + 1) * BS])  # labels as collated
        yt = soft_targets(y, res, K)
        assert torch.allclose(yt.sum(1), torch.ones(BS))
        # realised weights match the pixels: row r = w0 * src0 + w1 * src1 averaged over pixels
        src = (res.index + i * BS).float()  # image j of the dataset is the constant j
        assert torch.allclose(xm.mean(dim=(1, 2, 3)), (res.weights * src).sum(1), atol=1e-5)
        workers.add(res.params["worker"])
    assert workers == {0, 1}


def test_collate_different_workers_different_mixes():
    collate = MixCollate(MixUp(mode="sample"), return_result=True)
    main_lam = collate(list(zip(*dataset()[:2])))[2].lam  # main-process state must not leak into workers
    lams = {0: [], 1: []}
    for _, _, res in loader(collate, workers=2):
        lams[res.params["worker"]].append(res.lam)
    a, b = torch.stack(lams[0]), torch.stack(lams[1])
    assert a.shape == b.shape == (3, BS)
    assert not torch.allclose(a, b)  # the classic bug: every worker replays the same stream
    assert not torch.allclose(a[0], b[0])
    assert not torch.allclose(a[0], main_lam[:BS])


def test_collate_reproducible_with_seeded_loader():
    def run(seed, salt=None):
        c = MixCollate(RandomChoice([MixUp(), CutMix()]), num_classes=K, seed=salt)
        return [(xm, yt) for xm, yt in loader(c, seed=seed, shuffle=True)]

    r1, r2, r3 = run(0), run(0), run(1)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(r1, r2))
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(r1, r3))
    # the seed argument salts the worker streams: same loader seed, different salt -> different mixes
    r4 = run(0, salt=5)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(r4, run(0, salt=5)))
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(r1, r4))


def test_collate_persistent_workers_advance_their_stream():
    # with persistent workers, each worker's generator continues across epochs (no repeated mixes)
    collate = MixCollate(MixUp(), return_result=True)
    dl = loader(collate, workers=2, persistent_workers=True)
    e1 = torch.stack([res.lam for _, _, res in dl])
    e2 = torch.stack([res.lam for _, _, res in dl])
    assert not torch.allclose(e1, e2)


def test_collate_main_process_seed_and_global_rng():
    xs, ys, _ = dataset()
    samples = list(zip(xs[:6], ys[:6]))
    seeded = MixCollate(MixUp(), num_classes=K, seed=3)
    torch.manual_seed(0)
    a = seeded(samples)
    torch.manual_seed(123)  # the global RNG does not matter with seed=
    b = MixCollate(MixUp(), num_classes=K, seed=3)(samples)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = seeded(samples)  # the stream advances from batch to batch
    assert not torch.equal(a[0], c[0])
    unseeded = MixCollate(MixUp(), num_classes=K)
    torch.manual_seed(7)
    d = unseeded(samples)
    torch.manual_seed(7)
    e = unseeded(samples)
    assert torch.equal(d[0], e[0])  # seed=None in the main process: torch's global RNG


def test_collate_pickle_round_trip():
    xs, ys, _ = dataset()
    samples = list(zip(xs[:6], ys[:6]))
    c = MixCollate(RandomChoice([MixUp(), CutMix()], p=0.9), num_classes=K, seed=11)
    c(samples)  # create per-process state; it must not be pickled
    c2 = pickle.loads(pickle.dumps(c))
    assert c2.batches == 0 and c2._generator is None
    fresh = MixCollate(RandomChoice([MixUp(), CutMix()], p=0.9), num_classes=K, seed=11)
    a, b = fresh(samples), c2(samples)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    res = MixCollate(MixUp(), return_result=True, seed=1)(samples)[2]
    res2 = pickle.loads(pickle.dumps(res))
    assert torch.equal(res.inputs, res2.inputs) and torch.equal(res.weights, res2.weights)


def test_collate_extra_fields_dicts_and_errors():
    xs, ys, _ = dataset()
    idx = torch.arange(6)
    out = MixCollate(MixUp(), num_classes=K, seed=0)(list(zip(xs[:6], ys[:6], idx)))
    assert len(out) == 3 and torch.equal(out[2], idx)
    dict_samples = [{"image": xs[i], "label": ys[i], "id": i} for i in range(6)]
    out = MixCollate(MixUp(), num_classes=K, seed=0)(dict_samples)
    assert set(out) == {"image", "label", "id"} and out["label"].shape == (6, K)
    with pytest.raises(ValueError, match="num_classes"):
        MixCollate(MixUp())(list(zip(xs[:4], ys[:4])))
    with pytest.raises(ValueError, match="disagrees"):
        MixCollate(MixUp(num_classes=3), num_classes=K)
    with pytest.raises(TypeError, match="Mixer"):
        MixCollate(lambda x: x)
    with pytest.raises(TypeError, match="floating"):
        MixCollate(MixUp(), num_classes=K)(list(zip(xs[:4].to(torch.uint8), ys[:4])))


# ------------------------------------------------------------------------------------------ MixTransform
def test_transform_matches_mixer_under_same_generator():
    x = torch.randn(6, 3, 8, 8, generator=gen(1))
    y = torch.randint(0, K, (6,), generator=gen(2))
    def cases(no_self):
        return (MixUp(num_classes=K, no_self_pairs=no_self), CutMix(num_classes=K, mode="sample", no_self_pairs=no_self),
                RandomChoice([MixUp(no_self_pairs=no_self), CutMix(no_self_pairs=no_self)], num_classes=K))

    for mixer, strict in zip(cases(False), cases(True)):
        # pairing="mixer": the mixer's own draws; the default ("random"): those of the no-self-pairs mixer
        for t, ref in ((MixTransform(mixer, pairing="mixer"), mixer), (MixTransform(mixer), strict)):
            for s in range(4):
                xm, yt = t(x, y, generator=gen(s))
                xr, yr = ref(x, y, generator=gen(s))
                assert torch.equal(xm, xr) and torch.equal(yt, yr)
                xm2, yt2 = t((x, y), generator=gen(s))  # a single (images, labels) tuple, as torchvision
                assert torch.equal(xm2, xr) and torch.equal(yt2, yr)
        assert not mixer.no_self_pairs  # the transform left the mixer as it was


def test_transform_constructor_generator_and_num_classes():
    x = torch.randn(5, 3, 8, 8, generator=gen(1))
    y = torch.randint(0, K, (5,), generator=gen(2))
    t = MixTransform(CutMix(), num_classes=K, generator=gen(9))
    xm, yt = t(x, y)
    xr, yr = CutMix(num_classes=K, no_self_pairs=True)(x, y, generator=gen(9))
    assert torch.equal(xm, xr) and torch.equal(yt, yr)
    # one-hot labels need no num_classes
    xm, yt = MixTransform(MixUp())(x, one_hot(y, K), generator=gen(0))
    assert yt.shape == (5, K) and torch.allclose(yt.sum(1), torch.ones(5))


def test_transform_structures_and_result_mode():
    x = torch.randn(4, 3, 8, 8, generator=gen(1))
    y = torch.randint(0, K, (4,), generator=gen(2))
    t = MixTransform(MixUp(num_classes=K))
    d = t({"Image": x, "labels": y, "meta": "keep"}, generator=gen(0))
    assert set(d) == {"Image", "labels", "meta"} and d["labels"].shape == (4, K) and d["meta"] == "keep"
    out = t([x, y, "extra"], generator=gen(0))
    assert isinstance(out, list) and out[2] == "extra"
    custom = MixTransform(MixUp(num_classes=K), labels_getter=lambda b: b["cls"])
    d = custom({"pixels": x, "cls": y}, generator=gen(0))
    assert d["cls"].shape == (4, K) and d["pixels"].shape == x.shape
    r = MixTransform(MixUp(), return_result=True)
    xm, yy, res = r(x, y, generator=gen(0))
    assert yy is y and isinstance(res, MixResult) and torch.equal(res.inputs, xm)
    with pytest.raises(ValueError, match="labels"):
        t(x)
    with pytest.raises(ValueError, match="rows"):
        t(x, y[:3])
    with pytest.raises(ValueError, match="labels"):
        t({"image": x})
    with pytest.raises(TypeError, match="labels_getter"):
        MixTransform(MixUp(), labels_getter=3)


def test_transform_in_collate_like_torchvision_and_pickle():
    xs, ys, ds = dataset()
    t = MixTransform(RandomChoice([CutMix(), MixUp()]), num_classes=K)
    t2 = pickle.loads(pickle.dumps(t))
    samples = list(zip(xs[:6], ys[:6]))
    a = t(*default_collate(samples), generator=gen(3))
    b = t2(*default_collate(samples), generator=gen(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    dl = DataLoader(ds, batch_size=BS, collate_fn=lambda batch: t(*default_collate(batch)))
    for xm, yt in dl:
        assert yt.shape == (BS, K) and torch.allclose(yt.sum(1), torch.ones(BS))
