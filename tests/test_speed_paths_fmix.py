"""FMix fast paths: the sorted-row threshold and the two-step inverse FFT give the masks of the previous
topk implementation, bit for bit, under the same draws."""
from __future__ import annotations

import math

import pytest
import torch

from mixkit.masks import fourier as F
from mixkit.mixers.fmix import FMix

# Digests of masks (and partners) computed with the previous implementation (topk threshold, one irfftn):
# fmix_masks(6, shape, lam, 3.0, generator=seed) and FMix(mode="sample").mix on a few shapes.
EXPECTED = {
    ('paper', (32, 32), 0): [60901, 412911, 167343, 218641, 339261, 401889],
    ('paper', (32, 32), 1): [83408, 234618, 72504, 427542, 208124, 4636],
    ('paper', (28, 28), 0): [24211, 263652, 95117, 134718, 206963, 241150],
    ('paper', (28, 28), 1): [46483, 180915, 28421, 275609, 113972, 7260],
    ('paper', (31, 33), 0): [48474, 406783, 197298, 253698, 403863, 390823],
    ('paper', (31, 33), 1): [81063, 214553, 70093, 482260, 175456, 7895],
    ('paper', (40,), 0): [85, 722, 327, 342, 609, 735],
    ('paper', (40,), 1): [91, 316, 21, 710, 77, 34],
    ('paper', (257,), 0): [3016, 24834, 5128, 24375, 17739, 25593],
    ('paper', (257,), 1): [4131, 16938, 1836, 31739, 11100, 582],
    ('paper', (6, 9, 10), 0): [16345, 120436, 40693, 69172, 99093, 106374],
    ('paper', (6, 9, 10), 1): [26409, 65127, 15969, 130368, 40654, 2432],
    ('official', (32, 32), 0): [67674, 409421, 167797, 253119, 364995, 427651],
    ('official', (32, 32), 1): [82129, 245014, 57390, 452993, 156757, 2645],
    ('official', (28, 28), 0): [20007, 263349, 73126, 149469, 222398, 225747],
    ('official', (28, 28), 1): [69371, 137545, 21655, 285087, 115585, 1115],
    ('official', (31, 33), 0): [54187, 406691, 135722, 245327, 369694, 403675],
    ('official', (31, 33), 1): [107347, 245212, 67707, 453874, 166471, 3843],
    ('official', (40,), 0): [95, 656, 205, 350, 694, 550],
    ('official', (40,), 1): [98, 567, 54, 700, 209, 21],
    ('official', (257,), 0): [3335, 26985, 9690, 13702, 16387, 20961],
    ('official', (257,), 1): [4175, 21620, 2412, 27875, 6600, 540],
    ('official', (6, 9, 10), 0): [19303, 119272, 35172, 69589, 95394, 112331],
    ('official', (6, 9, 10), 1): [30989, 64163, 17660, 133157, 48758, 3983],
    ('mixer', (8, 3, 32, 32), 3): [19566, 220685, 424642, 88691, 365767, 299691, 90789, 161360, 4, 2, 5, 7, 3, 1, 6, 0],
    ('mixer', (8, 1, 40), 3): [14, 210, 775, 159, 555, 490, 189, 323, 6, 2, 5, 0, 7, 1, 3, 4],
    ('mixer', (4, 1, 6, 8, 10), 3): [3090, 32300, 88841, 18865, 0, 2, 1, 3],
}


def digest(m):
    m = m.reshape(m.shape[0], -1).long()
    w = torch.arange(1, m.shape[1] + 1, dtype=torch.long)
    return [int(v) for v in (m * w).sum(1) % 1000003]


def old_top_select(scores, num):
    """The previous implementation, verbatim: one padded topk over all rows."""
    n, N = scores.shape
    flip = num * 2 > N
    m = torch.where(flip, N - num, num)
    if n == 0:
        return torch.zeros(n, N, dtype=torch.bool)
    k_max, k_min = int(m.max()), int(m.min())
    if k_max == 0:
        return flip.unsqueeze(1).expand(n, N).clone()
    pad = k_max - k_min
    work = torch.empty(n, N + pad, dtype=scores.dtype)
    sign = 1.0 - 2.0 * flip.to(scores.dtype)
    torch.mul(scores, sign.unsqueeze(1), out=work[:, :N])
    if pad:
        j = torch.arange(pad)
        inf = torch.tensor(float("inf"), dtype=scores.dtype)
        torch.where(j.unsqueeze(0) < (k_max - m).unsqueeze(1), inf, -inf, out=work[:, N:])
    idx = work.topk(k_max, dim=1, sorted=False).indices
    sel = flip.unsqueeze(1).expand(n, N + pad).clone()
    sel.scatter_(1, idx, (~flip).unsqueeze(1).expand(n, k_max))
    return sel[:, :N].contiguous()


@pytest.mark.parametrize("key", list(EXPECTED))
def test_masks_and_draws_match_the_previous_implementation(key):
    kind, shape, seed = key
    if kind == "mixer":
        res = FMix(mode="sample").mix(torch.randn(*shape, generator=torch.Generator().manual_seed(5)),
                                      generator=torch.Generator().manual_seed(seed))
        got = digest(res.share_map) + [int(v) for v in res.index[:, 1]]
    else:
        lam = torch.rand(6, generator=torch.Generator().manual_seed(seed + 100))
        got = digest(F.fmix_masks(6, shape, lam, 3.0, generator=torch.Generator().manual_seed(seed),
                                  dtype=torch.bool, spectrum=kind))
    assert got == EXPECTED[key]


def tricky_scores(g):
    """Rows with ties across the threshold, signed zeros, infinities and NaN, beside smooth rows."""
    s = F.low_freq_images(12, (9, 10), 3.0, g, normalize=False).reshape(12, -1)
    s[0] = 0.0  # all tied
    s[1] = torch.arange(90.0) % 3  # many ties
    s[2, ::2] = -0.0  # signed zeros tied with +0.0
    s[2, 1::2] = 0.0
    s[3, 5] = float("inf")
    s[4, 7] = float("-inf")
    s[5, 11] = float("nan")
    s[6] = s[6].round(decimals=1)  # coarse values: ties likely at the threshold
    s[7] = 3e38 - torch.rand(90, generator=g) * 1e37  # finite, but the row sum overflows
    return s


@pytest.mark.parametrize("numpy_path", [True, False])
def test_top_select_equals_the_previous_topk_selection(numpy_path, monkeypatch):
    if not numpy_path:
        monkeypatch.setattr(F, "_NUMPY_BRIDGE", False)
    elif not F._NUMPY_BRIDGE:
        pytest.skip("numpy not installed")
    g = torch.Generator().manual_seed(0)
    for trial in range(6):
        s = tricky_scores(g)
        N = s.shape[1]
        num = torch.randint(0, N + 1, (12,), generator=g)
        num[:3] = torch.tensor([0, N, N // 2])[torch.randperm(3, generator=g)]
        assert torch.equal(F._top_select(s, num), old_top_select(s, num)), trial
    for shape in [(32, 32), (40,), (16000,), (5, 6, 7)]:  # smooth images, several row slices
        N = math.prod(shape)
        s = F.low_freq_images(20, shape, 3.0, g, normalize=False).reshape(20, -1)
        num = F.sample_counts(torch.rand(20, generator=g), N, g, 20)
        assert torch.equal(F._top_select(s, num), old_top_select(s, num)), shape


@pytest.mark.parametrize("setting", [("_SORT_ELEMS", 100), ("_PARTITION_MIN", 1)])
def test_sort_slices_and_row_partitions_give_the_same_masks(setting, monkeypatch):
    if not F._NUMPY_BRIDGE:
        pytest.skip("numpy not installed")
    g = torch.Generator().manual_seed(3)
    monkeypatch.setattr(F, *setting)  # one row per sorted slice / every row partitioned
    for _ in range(4):
        s = tricky_scores(g)
        num = torch.randint(0, 91, (12,), generator=g)
        num[:2] = torch.tensor([0, 90])
        assert torch.equal(F._top_select(s, num), old_top_select(s, num))


@pytest.mark.parametrize("shape", [(32, 32), (31, 33), (28, 28), (8, 12, 10), (5, 6, 9), (40,), (257,)])
@pytest.mark.parametrize("spectrum", ["paper", "official"])
def test_two_step_inverse_fft_is_bitwise_irfftn(shape, spectrum):
    g = torch.Generator().manual_seed(1)
    d = len(shape)
    if spectrum == "paper":
        spec = torch.view_as_complex(torch.randn(7, *shape[:-1], shape[-1] // 2 + 1, 2, generator=g))
    else:  # the official indexing: the spectrum's trailing axes need not match shape
        grid = F._official_grid(shape)
        noise = torch.randn(7, *grid.shape, 2, generator=g)
        spec = torch.complex(noise[:, 0].double(), noise[:, 1].double())
    dims = tuple(range(spec.dim() - d, spec.dim()))
    expected = torch.fft.irfftn(spec, s=shape, dim=dims, norm="forward")
    assert torch.equal(F._irfftn([spec], shape), expected)


def test_cached_spectrum_scale_is_not_modified():
    shape = (12, 10)
    a = F.low_freq_images(3, shape, 2.5, torch.Generator().manual_seed(0))
    b = F.low_freq_images(3, shape, 2.5, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    f = F.fftfreq_grid(shape, dtype=torch.float64)
    fmin = 1.0 / max(shape)
    expected = (fmin / f.clamp_min(fmin)).pow(2.5).float()
    assert torch.equal(F._spectrum_scale(shape, 2.5, None), expected)


def test_mask_counts_in_slices_match_the_bool_sum():
    from mixkit.mixers.fmix import _counts

    g = torch.Generator().manual_seed(2)
    for N in (1, 40, 32767, 32768, 40000):  # int16 accumulation up to 2**15 - 1 pixels, int32 above
        m = torch.rand(5, N, generator=g) < 0.7
        m[0] = True
        assert torch.equal(_counts(m), m.sum(1)), N
