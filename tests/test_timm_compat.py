"""mixkit.timm against the real timm (timm/data/mixup.py, loaded on its own: ``import timm`` needs torchvision).

Where the draws can be shared (timm's parameter sampler and its ``np.random.randint`` box draws fed with
the shim's draws), pixels and targets must be equal bit for bit; where they cannot (timm draws from numpy,
the shim from a torch generator), the distributions are compared: lambda, the MixUp/CutMix switch, the
per-element choice inside one batch, the box shares and the ``cutmix_minmax`` sides.
"""
from __future__ import annotations

import importlib.util
import math
import sys
import types
from pathlib import Path

import pytest
import torch

import mixkit
from mixkit.labels import one_hot, smooth
from mixkit.timm import FastCollateMixup, Mixup

np = pytest.importorskip("numpy")


def _load_timm_mixup():
    spec = importlib.util.find_spec("timm")
    if spec is None or spec.origin is None:
        pytest.skip("timm is not installed")
    path = Path(spec.origin).parent / "data" / "mixup.py"
    ms = importlib.util.spec_from_file_location("_timm_mixup_for_tests", path)
    mod = importlib.util.module_from_spec(ms)
    ms.loader.exec_module(mod)
    return mod


TM = _load_timm_mixup()
K = 7


class _QueuedNumpy(types.SimpleNamespace):
    """Stands in for ``np`` inside timm's module: ``np.random.randint`` returns queued ints (the shim's box
    draws), everything else is numpy."""

    def __init__(self, queue):
        rnd = types.SimpleNamespace(randint=lambda *a, **k: queue.pop(0),
                                    **{n: getattr(np.random, n) for n in ("rand", "beta")})
        super().__init__(random=rnd)

    def __getattr__(self, name):
        return getattr(np, name)


def _timm_replay(shim, tm_obj, monkeypatch, b):
    """Feed timm the shim's last draws: its parameter sampler and its box ints."""
    p = shim.last_params
    lam, use, act = p["lam"], p["use_cutmix"], p["active"]
    lam_eff = torch.where(act, lam, torch.ones_like(lam))
    queue = []
    if "box_draws" in p:
        for i in range(lam.shape[0]):
            if bool(act[i] & use[i]) and float(lam_eff[i]) < 1:
                queue += [int(v) for v in p["box_draws"][i]]
    monkeypatch.setattr(TM, "np", _QueuedNumpy(queue))
    if shim.mode == "batch":
        tm_obj._params_per_batch = lambda: (float(lam_eff[0]), bool(use[0] & act[0]))
    else:
        tm_obj._params_per_elem = lambda n: (lam_eff.numpy().astype(np.float32), use.numpy().astype(bool))
    return queue


CONFIGS = [
    dict(mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5, prob=0.9),
    dict(mixup_alpha=0.4, cutmix_alpha=0.0),
    dict(mixup_alpha=0.0, cutmix_alpha=1.0),
    dict(mixup_alpha=0.0, cutmix_alpha=0.5, cutmix_minmax=(0.2, 0.8)),
    dict(mixup_alpha=0.0, cutmix_alpha=1.0, correct_lam=False),
    dict(mixup_alpha=1.0, cutmix_alpha=1.0, switch_prob=0.7, label_smoothing=0.0),
]


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
@pytest.mark.parametrize("cfg", range(len(CONFIGS)))
def test_mixup_equals_timm_on_the_same_draws(mode, cfg, monkeypatch):
    kw = {"label_smoothing": 0.1, "num_classes": K, "mode": mode, **CONFIGS[cfg]}
    x = torch.rand(6, 3, 13, 10)  # H != W: a swapped axis fails
    y = torch.tensor([0, 3, 6, 1, 2, 5])
    for seed in range(6):
        shim = Mixup(**kw, generator=torch.Generator().manual_seed(seed))
        xs, ts = shim(x, y)
        assert torch.equal(x, x.clone()) and xs is not x  # the input is left alone
        ref = TM.Mixup(**kw)
        queue = _timm_replay(shim, ref, monkeypatch, 6)
        xt, tt = ref(x.clone(), y)
        assert not queue, "timm drew fewer box ints than the shim"
        assert torch.equal(xs, xt), (mode, cfg, seed)
        assert torch.equal(ts, tt), (mode, cfg, seed)


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
def test_multi_label_equals_timm(mode, monkeypatch):
    kw = dict(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.2, num_classes=K, mode=mode, multi_label=True)
    x = torch.rand(4, 2, 8, 9)
    y = (torch.rand(4, K) < 0.4).float()
    for seed in range(4):
        shim = Mixup(**kw, generator=torch.Generator().manual_seed(seed))
        xs, ts = shim(x, y)
        ref = TM.Mixup(**kw)
        _timm_replay(shim, ref, monkeypatch, 4)
        xt, tt = ref(x.clone(), y)
        assert torch.equal(xs, xt) and torch.equal(ts, tt)


@pytest.mark.parametrize("mode", ["batch", "pair", "elem", "half"])
@pytest.mark.parametrize("as_numpy", [False, True])
def test_fast_collate_uint8_equals_timm(mode, as_numpy, monkeypatch):
    kw = dict(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=K, mode=mode, prob=0.9)
    g = torch.Generator().manual_seed(1)
    imgs = [torch.randint(0, 256, (3, 9, 11), dtype=torch.uint8, generator=g) for _ in range(8)]
    labels = [i % K for i in range(8)]
    for seed in range(6):
        batch = [((im.numpy().copy() if as_numpy else im.clone()), lab) for im, lab in zip(imgs, labels)]
        shim = FastCollateMixup(**kw, generator=torch.Generator().manual_seed(seed))
        xs, ts = shim(batch)
        assert xs.dtype == torch.uint8
        ref = TM.FastCollateMixup(**kw)
        _timm_replay(shim, ref, monkeypatch, 8)
        batch = [((im.numpy().copy() if as_numpy else im.clone()), lab) for im, lab in zip(imgs, labels)]
        xt, tt = ref(batch)
        assert xs.shape == xt.shape and torch.equal(xs, xt), (mode, seed)
        assert torch.equal(ts, tt.float()), (mode, seed)


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
def test_odd_batch_middle_row_is_unmixed_and_the_rest_is_timm(mode, monkeypatch):
    kw = dict(mixup_alpha=0.8, cutmix_alpha=1.0, num_classes=K, mode=mode)
    x, y = torch.rand(5, 3, 8, 8), torch.tensor([0, 1, 2, 3, 4])
    keep = [0, 1, 3, 4]
    for seed in range(5):
        shim = Mixup(**kw, generator=torch.Generator().manual_seed(seed))
        xs, ts = shim(x, y)
        assert torch.equal(xs[2], x[2]) and torch.equal(ts[2], one_hot(y[2:3], K, 0.1)[0])
        if mode == "elem":  # timm draws one per element of the even batch: drop the middle draw
            p = shim.last_params
            for k in ("lam", "use_cutmix", "active"):
                p[k] = p[k][keep]
            if "box_draws" in p:
                p["box_draws"] = p["box_draws"][keep]
        ref = TM.Mixup(**kw)
        _timm_replay(shim, ref, monkeypatch, 4)
        xt, tt = ref(x[keep].clone(), y[keep])
        assert torch.equal(xs[keep], xt) and torch.equal(ts[keep], tt)


def test_batch_of_one_and_inplace():
    m = Mixup(mixup_alpha=1.0, num_classes=K, generator=torch.Generator().manual_seed(0))
    x = torch.rand(1, 3, 4, 4)
    xs, ts = m(x, torch.tensor([2]))
    assert torch.equal(xs, x) and xs is not x and torch.allclose(ts, one_hot(torch.tensor([2]), K, 0.1))
    m = Mixup(mixup_alpha=1.0, num_classes=K, inplace=True, label_smoothing=0, generator=torch.Generator().manual_seed(0))
    x = torch.rand(4, 3, 4, 4)
    x0 = x.clone()
    xs, _ = m(x, torch.arange(4))
    assert xs is x and not torch.equal(x, x0)


def _colour_batch(b, h=12, w=10):
    """Sample i is 1 in channel i: an output row's channel means are its sources' realised shares."""
    return torch.eye(b).view(b, b, 1, 1).expand(b, b, h, w).contiguous()


BRANCHES = {
    "timm": {},
    "fmix": dict(cutmix=mixkit.FMix(alpha=1.0)),
    "cutmix_mixkit": dict(cutmix=mixkit.CutMix(alpha=1.0)),
    "choice": dict(mixup=mixkit.RandomChoice([mixkit.MixUp(0.5), mixkit.GridMix()])),
}


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
@pytest.mark.parametrize("branch", list(BRANCHES))
@pytest.mark.parametrize("b", [6, 5])
def test_labels_are_the_realised_shares(mode, branch, b):
    """For timm's branches and any mixkit branch, in every mode and any batch size: target = pixel shares,
    and the partner is the flipped batch."""
    x = _colour_batch(b)
    for seed in range(4):
        m = Mixup(mixup_alpha=0.7, cutmix_alpha=1.0, label_smoothing=0.0, num_classes=b, mode=mode,
                  generator=torch.Generator().manual_seed(seed), **BRANCHES[branch])
        xs, ts = m(x, torch.arange(b))
        shares = xs.mean((2, 3))
        torch.testing.assert_close(ts, shares, atol=1e-5, rtol=0)
        flip = torch.arange(b - 1, -1, -1)
        others = shares.clone()
        others[torch.arange(b), torch.arange(b)] = 0
        others[torch.arange(b), flip] = 0
        assert float(others.abs().max()) < 1e-6  # only the sample and its flipped partner


@pytest.mark.parametrize("branch", ["timm", "fmix", "cutmix_mixkit"])
def test_pair_mode_writes_both_rows_with_one_draw(branch):
    b = 6
    x = _colour_batch(b, 16, 16)
    m = Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.0, num_classes=b, mode="pair",
              generator=torch.Generator().manual_seed(3), **BRANCHES[branch])
    xs, ts = m(x, torch.arange(b))
    for i in range(b // 2):
        j = b - 1 - i
        assert torch.equal(xs[i, i], xs[j, j])  # the same region stays each row's own
        assert torch.equal(ts[i, i], ts[j, j])


def _ks(a, b):
    a, b = torch.sort(a.double())[0], torch.sort(b.double())[0]
    grid = torch.cat([a, b])
    fa = torch.searchsorted(a, grid, right=True).double() / a.numel()
    fb = torch.searchsorted(b, grid, right=True).double() / b.numel()
    return float((fa - fb).abs().max())


def _ks_crit(n, m, p=1e-6):
    return math.sqrt(-math.log(p / 2) / 2) * math.sqrt((n + m) / (n * m))


def _close_prop(k1, n1, k2, n2, z=5.0):
    p = (k1 + k2) / (n1 + n2)
    se = math.sqrt(max(p * (1 - p), 1e-12) * (1 / n1 + 1 / n2))
    return abs(k1 / n1 - k2 / n2) <= z * se


def test_draw_distributions_match_timm():
    """lambda per branch, switch and mix frequencies: the shim's sampler against timm's (numpy)."""
    kw = dict(mixup_alpha=0.3, cutmix_alpha=1.5, switch_prob=0.3, prob=0.7, mode="elem", num_classes=K)
    n = 20000
    np.random.seed(0)
    lam_t, use_t = TM.Mixup(**kw)._params_per_elem(n)
    lam_t, use_t = torch.from_numpy(lam_t), torch.from_numpy(use_t)
    lam_s, use_s, act_s = Mixup(**kw)._draw(n, torch.Generator().manual_seed(0))
    lam_s = torch.where(act_s, lam_s, torch.ones_like(lam_s))
    assert _close_prop(int((lam_t == 1).sum()), n, int((lam_s == 1).sum()), n)  # 1 - prob unmixed
    mixed_t, mixed_s = lam_t < 1, lam_s < 1
    assert _close_prop(int(use_t[mixed_t].sum()), int(mixed_t.sum()), int(use_s[mixed_s].sum()), int(mixed_s.sum()))
    for cut in (False, True):
        a, b = lam_t[mixed_t & (use_t == cut)], lam_s[mixed_s & (use_s == cut)]
        assert _ks(a, b) < _ks_crit(a.numel(), b.numel()), cut
    # the same check catches swapped alphas
    a, b = lam_t[mixed_t & use_t], lam_s[mixed_s & ~use_s]
    assert _ks(a, b) > _ks_crit(a.numel(), b.numel())


def _kinds(x, out):
    """Per row: 0 unmixed, 1 CutMix (every pixel from x or x.flip(0)), 2 MixUp (blends)."""
    xf = x.flip(0)
    same = (out == x).flatten(1)
    from_f = (out == xf).flatten(1)
    unmixed = same.all(1)
    cut = (same | from_f).all(1) & ~unmixed
    return torch.where(unmixed, 0, torch.where(cut, 1, 2))


@pytest.mark.parametrize("mode", ["elem", "batch"])
def test_switch_and_prob_through_call_match_timm(mode):
    """MixUp / CutMix / unmixed frequencies of real calls: per element inside one batch (elem) or per batch."""
    kw = dict(mixup_alpha=1.0, cutmix_alpha=1.0, switch_prob=0.35, prob=0.6, mode=mode, num_classes=K)
    g = torch.Generator().manual_seed(5)
    if mode == "elem":
        x = torch.rand(3000, 1, 6, 6, generator=g)
        runs = [(x, 1)]
    else:
        x = torch.rand(2, 1, 6, 6, generator=g)
        runs = [(x, 1500)]
    counts = {}
    np.random.seed(1)
    for who, m in (("timm", TM.Mixup(**kw)), ("mixkit", Mixup(**kw, generator=g))):
        kinds = []
        for xb, reps in runs:
            for _ in range(reps):
                out, _ = m(xb.clone(), torch.zeros(xb.shape[0], dtype=torch.long))
                kinds.append(_kinds(xb, out)[:1] if mode == "batch" else _kinds(xb, out))
        kinds = torch.cat(kinds)
        counts[who] = [int((kinds == k).sum()) for k in range(3)], kinds.numel()
    (ct, nt), (cs, ns) = counts["timm"], counts["mixkit"]
    for k in range(3):
        assert _close_prop(ct[k], nt, cs[k], ns), (k, ct, cs)
    assert cs[1] / ns == pytest.approx(0.6 * 0.35, abs=0.05)  # a reversed switch (0.65) is far off


@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_box_shares_match_timm(mode):
    """The clipped box's share (timm's corrected lambda) for the same lambdas: the same distribution."""
    lam = torch.distributions.Beta(1.0, 1.0).sample((4000,)).double()
    if mode == "elem":
        lam = lam.float().double()
    np.random.seed(2)
    shares_t = torch.tensor([TM.cutmix_bbox_and_lam((13, 10), float(v) if mode == "batch" else np.float32(v))[1]
                             for v in lam])
    m = Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, mode=mode, num_classes=K)
    lo, hi = m._boxes(lam, (13, 10), torch.Generator().manual_seed(2))
    shares_s = 1 - (hi - lo).prod(1).double() / 130
    assert _ks(shares_t, shares_s) < _ks_crit(4000, 4000)


def test_minmax_sides_match_timm():
    """timm's ``cutmix_minmax`` sides are ``randint(int(S*min), int(S*max))``: the upper end excluded."""
    n = 6000
    np.random.seed(3)
    sides_t = [TM.rand_bbox_minmax((20, 10), (0.2, 0.8)) for _ in range(n)]
    h_t = torch.tensor([int(s[1] - s[0]) for s in sides_t])
    m = Mixup(mixup_alpha=0.0, cutmix_minmax=(0.2, 0.8), num_classes=K)
    lo, hi = m._boxes(torch.full((n,), 0.5, dtype=torch.float64), (20, 10), torch.Generator().manual_seed(3))
    h_s = hi[:, 0] - lo[:, 0]
    assert set(h_t.tolist()) == set(h_s.tolist()) == set(range(4, 16))
    for v in range(4, 16):
        assert _close_prop(int((h_t == v).sum()), n, int((h_s == v).sum()), n)
    assert bool((lo >= 0).all() and (hi[:, 0] <= 20).all() and (hi[:, 1] <= 10).all())


def test_binary_smoothing_toward_half():
    y = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    assert torch.allclose(smooth(y, 0.2, "binary"), torch.tensor([[0.9, 0.1, 0.9, 0.1]]))
    assert torch.allclose(smooth(y, 0.2), y * 0.8 + 0.05)  # toward 1/K unchanged
    oh = one_hot(torch.tensor([1]), 4, 0.2, smoothing_target="binary")
    assert torch.allclose(oh, torch.tensor([[0.1, 0.9, 0.1, 0.1]]))
    assert torch.allclose(one_hot(torch.tensor([1]), 4, 0.2), torch.tensor([[0.05, 0.85, 0.05, 0.05]]))
    res = mixkit.MixUp(1.0).mix(torch.rand(4, 3, 4, 4), generator=torch.Generator().manual_seed(0))
    ym = (torch.rand(4, 4) < 0.5).float()
    t = mixkit.soft_targets(ym, res, 4, smoothing=0.2, smoothing_target="binary")
    assert torch.allclose(t, mixkit.soft_targets(ym * 0.8 + 0.1, res, 4))
    with pytest.raises(ValueError, match="smoothing_target"):
        smooth(y, 0.1, "half")


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="mode"):
        Mixup(mode="sample")
    with pytest.raises(ValueError, match="mixup_alpha"):
        Mixup(mixup_alpha=-1)
    with pytest.raises(ValueError, match="one of mixup_alpha"):
        Mixup(mixup_alpha=0, cutmix_alpha=0)
    with pytest.raises(TypeError, match="cutmix must be a mixkit Mixer"):
        Mixup(cutmix="fmix")
    with pytest.raises(ValueError, match="cutmix_minmax"):
        Mixup(mixup_alpha=0, cutmix_minmax=(0.5, 0.55), num_classes=K)(torch.rand(2, 1, 4, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(TypeError, match="uint8"):
        FastCollateMixup(num_classes=K)([(torch.rand(3, 4, 4), 0), (torch.rand(3, 4, 4), 1)])
    with pytest.raises(TypeError, match="x must be"):
        Mixup(num_classes=K)(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.zeros(2, dtype=torch.long))


def test_import_mixkit_does_not_import_timm_or_the_shim():
    code = ("import sys, mixkit; assert 'timm' not in sys.modules and 'mixkit.timm' not in sys.modules; "
            "import mixkit.timm; assert 'timm' not in sys.modules")
    import subprocess
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("mode", ["pair", "elem"])
def test_exact_timm_copies_timms_label_rounding_in_half_precision(mode, monkeypatch):
    kw = dict(mixup_alpha=0.8, cutmix_alpha=1.0, num_classes=K, mode=mode)
    x, y = torch.rand(6, 3, 8, 8).half(), torch.tensor([0, 1, 2, 3, 4, 5])
    differ = 0
    for seed in range(4):
        exact = Mixup(**kw, exact_timm=True, generator=torch.Generator().manual_seed(seed))
        _, te = exact(x, y)
        default = Mixup(**kw, generator=torch.Generator().manual_seed(seed))
        _, td = default(x, y)
        ref = TM.Mixup(**kw)
        _timm_replay(exact, ref, monkeypatch, 6)
        _, tt = ref(x.clone(), y)
        assert torch.equal(te, tt)
        w = default.last_weights.unsqueeze(1)  # float32 weights: w * Y + (1 - w) * Y.flip(0)
        Y = one_hot(y, K, 0.1)
        assert torch.equal(td, Y * w + Y.flip(0) * (1 - w))
        differ += not torch.equal(te, td)
    assert differ  # float16 lambdas: timm's targets are not the float32 weights


def test_mixers_smooth_toward_half_with_smoothing_target_binary():
    import mixkit
    from mixkit.integrations import MixTransform
    x, y = torch.rand(6, 3, 8, 8), torch.tensor([0, 1, 2, 3, 0, 1])
    m = mixkit.MixUp(num_classes=4, smoothing=0.2, smoothing_target="binary")
    g = torch.Generator().manual_seed(0)
    _, ys = m(x, y, generator=g)
    res = mixkit.MixUp(num_classes=4).mix(x, generator=torch.Generator().manual_seed(0))
    expect = mixkit.soft_targets(y, res, 4, smoothing=0.2, smoothing_target="binary")
    assert torch.equal(ys, expect)
    assert not torch.allclose(ys, mixkit.soft_targets(y, res, 4, smoothing=0.2))  # not toward 1/K
    _, yt = MixTransform(m, pairing="mixer")(x, y, generator=torch.Generator().manual_seed(0))
    assert torch.equal(yt, expect)
    assert "smoothing_target='binary'" in repr(m)
    with pytest.raises(ValueError, match="smoothing_target"):
        mixkit.CutMix(smoothing_target="half")
