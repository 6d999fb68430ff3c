"""Low-frequency Fourier masks on 1-, 2- and 3-D grids (FMix), batched on ``(n, *shape)`` on any device.

A random image with a ``1 / f ** decay_power`` spectrum (:func:`low_freq_images`, on the rfft grid of
:func:`fftfreq_grid`) is thresholded at its top ``lam * N`` pixels (:func:`binarise`); :func:`fmix_masks`
does both. Where this differs from the official numpy code (``ecs-vlc/FMix/fmix.py``), and why:
docs/methods/fmix.md.
``spectrum="official"`` re-states the official code's indexing of the complex spectrum for exact
reproduction of the published numbers (see the page).
"""
from __future__ import annotations

import functools
import math
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from .. import sampling
from .._validate import check_in_range, check_positive


def _has_numpy_bridge() -> bool:
    """Whether ``Tensor.numpy()`` works (torch's bridge; numpy is optional and never imported here)."""
    try:
        torch.empty(1).numpy()
    except (RuntimeError, ImportError):  # pragma: no cover - a torch without numpy
        return False
    return True


#: the CPU threshold sorts rows in place through ``Tensor.numpy()`` views (numpy's vectorised sort)
_NUMPY_BRIDGE = _has_numpy_bridge()

__all__ = ["fftfreq_grid", "low_freq_images", "binarise", "fmix_masks", "sample_counts", "SPECTRA"]

#: the spectrum constructions of :func:`low_freq_images`
SPECTRA = ("paper", "official")

Device = Union[str, torch.device, None]


def _check_shape(shape: Sequence[int]) -> tuple:
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape must be a sequence of 1 to 3 positive ints, got {shape!r}") from None
    if not 1 <= len(shape) <= 3 or any(s < 1 for s in shape):
        raise ValueError(f"shape must be 1 to 3 positive ints (L,), (H, W) or (D, H, W), got {shape}")
    return shape


def _check_max_soft(max_soft: float) -> float:
    return check_in_range(max_soft, "max_soft", 0.0, 0.5, " (0 = hard mask, the official default)")


def fftfreq_grid(shape: Sequence[int], device: Device = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """Frequency magnitudes ``sqrt(sum_i f_i ** 2)`` on the rfft grid of ``shape`` (cycles per sample).

    Axis ``i < d-1`` holds ``torch.fft.fftfreq(shape[i])`` (full, length ``shape[i]``); the last axis holds
    ``torch.fft.rfftfreq(shape[-1])`` (length ``shape[-1] // 2 + 1``). The result has shape
    ``(*shape[:-1], shape[-1] // 2 + 1)``: exactly the spectrum ``torch.fft.irfftn(spec, s=shape)`` expects,
    for any non-square image or non-cubic volume (the official ``fftfreqnd`` swaps axes in 3-D).

    Args:
        shape: spatial size, ``(L,)``, ``(H, W)`` or ``(D, H, W)``.
        device, dtype: of the returned grid (float32 on the CPU by default).
    """
    shape = _check_shape(shape)
    d = len(shape)
    sq = None
    for i, s in enumerate(shape):
        f = torch.fft.rfftfreq(s, dtype=torch.float64) if i == d - 1 else torch.fft.fftfreq(s, dtype=torch.float64)
        view = [1] * d
        view[i] = f.numel()
        f2 = (f * f).view(view)
        sq = f2 if sq is None else sq + f2
    return sq.sqrt().to(device=device, dtype=dtype)


@functools.lru_cache(maxsize=64)
def _scale(shape: tuple, decay_power: float, device: torch.device, official: bool) -> Tensor:
    """``(f_min / max(f, f_min)) ** decay_power`` (``f_min = 1 / max(shape)``, the official scale / its max)
    on the rfft grid (``official``: the official grid), float32 ``(*grid, 2)`` (the same weight on the real
    and imaginary parts, contiguous for a fast multiply), cached per (shape, decay, device): read only."""
    freqs = _official_grid(shape) if official else fftfreq_grid(shape, dtype=torch.float64)
    fmin = 1.0 / max(shape)
    scale = (fmin / freqs.clamp_min(fmin)).pow(decay_power).to(device=device, dtype=torch.float32)
    return scale.unsqueeze(-1).expand(*scale.shape, 2).contiguous()


def _spectrum_scale(shape: tuple, decay_power: float, device: Device) -> Tensor:
    """The paper spectrum's scale ``(*grid,)`` on ``device``."""
    return _scale(tuple(shape), float(decay_power), torch.device("cpu" if device is None else device), False)[..., 0]


def _irfftn(holder: list, shape: tuple) -> Tensor:
    """``irfftn(holder.pop(), s=shape, norm="forward")`` over the trailing dims, releasing buffers early.

    With MKL a multi-dim c2r is a c2c over the leading axes, then a c2r over the last one; the c2c runs on
    a copy laid out with the leading axes innermost. Made here in steps (the same calls on the same
    layouts, so the same bits, checked in the tests), each buffer is freed as soon as the next exists.
    """
    spec = holder.pop()
    d = len(shape)
    k = spec.dim() - d
    dims = tuple(range(k, k + d))
    if d == 1 or spec.device.type != "cpu" or not torch.backends.mkl.is_available():
        return torch.fft.irfftn(spec, s=shape, dim=dims, norm="forward")
    if tuple(spec.shape[k:]) == (*shape[:-1], shape[-1] // 2 + 1):
        order = tuple(range(k)) + (k + d - 1,) + dims[:-1]  # the c2c's own layout: its axes innermost
        spec = spec.permute(order).contiguous().permute(tuple(order.index(i) for i in range(k + d)))
    half = torch.fft.ifftn(spec, s=shape[:-1], dim=dims[:-1], norm="forward")
    del spec
    half = half.contiguous()  # the c2r's layout
    return torch.fft.irfft(half, n=shape[-1], dim=-1, norm="forward")


def _official_grid(shape: tuple) -> Tensor:
    """The official ``fftfreqnd(*shape)`` grid, float64: ``(h,)``, ``(h, w // 2 + 1)`` (``+ 2`` for odd
    ``w``) or ``(h, z, w // 2 + 1)`` for ``shape = (h, w, z)`` (its own axis order)."""
    f = torch.fft.fftfreq(shape[0], dtype=torch.float64)
    if len(shape) == 1:
        return f.abs()
    w = shape[1]
    last = torch.fft.fftfreq(w, dtype=torch.float64)[: w // 2 + (2 if w % 2 else 1)]
    if len(shape) == 2:
        return (f[:, None] ** 2 + last[None, :] ** 2).sqrt()
    mid = torch.fft.fftfreq(shape[2], dtype=torch.float64)
    return (f[:, None, None] ** 2 + mid[None, :, None] ** 2 + last[None, None, :] ** 2).sqrt()


def _official_images(noise: Tensor, shape: tuple) -> Tensor:
    """The official ``make_low_freq_image`` from scaled noise ``(n, *grid, 2)`` (before min-max):
    ``spectrum[:, 0] + 1j * spectrum[:, 1]`` indexes the first frequency axis, verbatim."""
    holder = [torch.complex(noise[:, 0].double(), noise[:, 1].double())]  # (n, *grid[1:], 2)
    img = _irfftn(holder, shape)
    return img[(slice(None),) + tuple(slice(0, s) for s in shape)].float()


def low_freq_images(n: int, shape: Sequence[int], decay_power: float = 3.0,
                    generator: Optional[torch.Generator] = None, device: Device = None,
                    normalize: bool = True, spectrum: str = "paper") -> Tensor:
    """``n`` random low-frequency images ``(n, *shape)`` float32 (FMix's grey-scale masks before thresholding).

    Each image is the inverse real FFT of complex Gaussian noise (real and imaginary parts ``N(0, 1)``,
    drawn from ``generator`` on its device) weighted by ``1 / max(f, 1/max(shape)) ** decay_power``; the
    larger ``decay_power``, the smoother the image. All ``n`` images come from one ``randn`` and one
    batched ``torch.fft.irfftn(..., s=shape)``.

    Args:
        n: number of images.
        shape: spatial size ``(L,)``, ``(H, W)`` or ``(D, H, W)`` (any sizes: non-square, non-cubic).
        decay_power: spectral decay ``delta`` > 0 (official default 3).
        generator: source of randomness (``None``: torch's default CPU generator).
        device: where the FFT runs and the result lives (default: the generator's device). The noise is
            always drawn on the generator's device, so a seed gives the same draws on any ``device``.
        normalize: min-max normalise each image to ``[0, 1]`` (as the official code). ``False`` skips it
            (the ranking of pixels, and hence :func:`binarise`, does not depend on it).
        spectrum: ``"paper"`` (default) or ``"official"``: the official code's indexing of the complex
            spectrum (see the module docstring), for exact reproduction of the published numbers.
    """
    if spectrum not in SPECTRA:
        raise ValueError(f"spectrum must be one of {SPECTRA}, got {spectrum!r}")
    shape = _check_shape(shape)
    decay_power = check_positive(decay_power, "decay_power")
    if int(n) < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    n = int(n)
    gdev = sampling.gen_device(generator)
    device = gdev if device is None else torch.device(device)
    if spectrum == "official":
        if shape[0] < 2:
            raise ValueError(f"spectrum='official' needs a first spatial size >= 2 (the official code reads "
                             f"the second row of the spectrum), got shape {shape}")
        scale = _scale(shape, decay_power, device, True)
        noise = torch.randn((n, *scale.shape), generator=generator, device=gdev, dtype=torch.float32).to(device)
        img = _official_images(noise.mul_(scale), shape)
        return _minmax(img) if normalize and n else img
    fshape = (*shape[:-1], shape[-1] // 2 + 1)
    noise = torch.randn((n, *fshape, 2), generator=generator, device=gdev, dtype=torch.float32).to(device)
    noise.mul_(_scale(shape, decay_power, device, False))
    # norm="forward": no 1/N factor on the inverse (a constant scale, irrelevant to the mask)
    holder = [torch.view_as_complex(noise)]
    del noise
    img = _irfftn(holder, shape)
    return _minmax(img) if normalize and n else img


def _minmax(img: Tensor) -> Tensor:
    """Each image of ``(n, *shape)`` min-max normalised to ``[0, 1]`` (constant images stay 0)."""
    flat = img.reshape(img.shape[0], -1)
    lo = flat.amin(1, keepdim=True)
    rng = flat.amax(1, keepdim=True) - lo
    rng = torch.where(rng > 0, rng, torch.ones_like(rng))
    return ((flat - lo) / rng).view(img.shape)


def sample_counts(lam: Union[Tensor, float], numel: int, generator: Optional[torch.Generator] = None,
                  n: Optional[int] = None) -> Tensor:
    """Pixel counts ``(n,)`` int64: ``ceil(lam * numel)`` or ``floor(lam * numel)``, each with probability 1/2.

    The official ``binarise_mask`` rounds this way, so the mask mean is within ``1 / numel`` of ``lam`` and
    unbiased. One uniform per row is drawn from ``generator`` (on its device); the counts live on
    ``lam``'s device (CPU for a float ``lam``).
    """
    lam_t = torch.as_tensor(lam, dtype=torch.float64)
    if n is None:
        n = lam_t.numel()
    lam_t = lam_t.reshape(-1)
    if lam_t.numel() not in (1, n):
        raise ValueError(f"lam must be a scalar or have {n} entries, got {lam_t.numel()}")
    if lam_t.numel():
        lo, hi = torch.aminmax(lam_t)
        if not (float(lo) >= 0 and float(hi) <= 1):  # NaN fails too
            raise ValueError(f"lam must lie in [0, 1], got values in [{float(lam_t.min())}, {float(lam_t.max())}]")
    lam_t = lam_t.expand(n)
    u = torch.rand(n, generator=generator, device=sampling.gen_device(generator), dtype=torch.float64)
    up = (u < 0.5).to(lam_t.device)
    x = lam_t * numel  # exact in float64 for float32 lam and any realistic numel
    return torch.where(up, torch.ceil(x), torch.floor(x)).clamp(0, numel).long()


def _top_select(scores: Tensor, num: Tensor) -> Tensor:
    """Bool ``(n, N)``: exactly the ``num[i]`` largest entries of each row of ``scores`` ``(n, N)``.

    On the CPU (with numpy) each row's threshold is read off a sorted copy of the row (numpy's vectorised
    sort, rows in slices); a row whose threshold value is tied with its neighbour in the order, or that
    holds a non-finite score, takes the ``topk`` path below, so every mask is the one ``topk`` gives.
    """
    n, N = scores.shape
    num = num.to(scores.device)
    flip = num * 2 > N
    m = torch.where(flip, N - num, num)
    if n == 0:
        return torch.zeros(n, N, dtype=torch.bool, device=scores.device)
    k_max, k_min = int(m.max()), int(m.min())
    if _NUMPY_BRIDGE and scores.device.type == "cpu" and scores.dtype == torch.float32:
        return _sort_select(scores.detach().contiguous(), num, flip, m, k_max, k_min)
    return _topk_select(scores, flip, m, k_max, k_min)


def _topk_select(scores: Tensor, flip: Tensor, m: Tensor, k_max: int, k_min: int) -> Tensor:
    """The ``topk`` selection, vectorised over rows: ``k_max`` / ``k_min`` are the batch's, so a subset of
    rows gets the same mask as in the whole batch.

    Rows that need more than half of their pixels select their ``N - num`` smallest instead (a negated
    row) and invert, so ``k <= N/2``. Rows need different counts ``m_i``; each is padded with
    ``K - m_i`` entries of ``+inf`` (always taken) and ``-inf`` otherwise (never taken), so the common
    ``topk(K)`` takes exactly ``m_i`` real pixels, also with tied scores.
    """
    n, N = scores.shape
    if k_max == 0:
        return flip.unsqueeze(1).expand(n, N).clone()
    pad = k_max - k_min
    work = torch.empty(n, N + pad, dtype=scores.dtype, device=scores.device)
    sign = 1.0 - 2.0 * flip.to(scores.dtype)  # -1 on flipped rows
    torch.mul(scores, sign.unsqueeze(1), out=work[:, :N])
    if pad:
        j = torch.arange(pad, device=scores.device)
        inf = torch.tensor(float("inf"), dtype=scores.dtype, device=scores.device)
        torch.where(j.unsqueeze(0) < (k_max - m).unsqueeze(1), inf, -inf, out=work[:, N:])
    idx = work.topk(k_max, dim=1, sorted=False).indices
    # start from the value of the unselected pixels (True on flipped rows) and write the other one
    sel = flip.unsqueeze(1).expand(n, N + pad).clone()
    sel.scatter_(1, idx, (~flip).unsqueeze(1).expand(n, k_max))
    return sel[:, :N].contiguous()


#: rows sorted per numpy call: the sorted copy holds at most about this many scores
_SORT_ELEMS = 1 << 18
#: rows at least this long are partitioned one at a time (values only) instead of sorted
_PARTITION_MIN = 8192


def _sort_select(scores: Tensor, num: Tensor, flip: Tensor, m: Tensor, k_max: int, k_min: int) -> Tensor:
    """:func:`_top_select` on the CPU: ``score >= t`` for the ``num``-th largest ``t`` of each row, read
    off a sorted (long rows: partitioned) copy, with the value just below it to detect a tie. The copies
    are torch tensors sorted in place through ``.numpy()`` views; the per-row bookkeeping runs on
    ndarray views too (cheaper small ops than torch's)."""
    n, N = scores.shape
    a = scores.numpy()
    at_t = N - num
    at = at_t.numpy()  # the threshold's position in the ascending row, in [0, N]
    inner = (at > 0) & (at < N)
    t, below = torch.zeros(n, dtype=torch.float32).numpy(), torch.zeros(n, dtype=torch.float32).numpy()
    if N >= _PARTITION_MIN:
        buf = torch.empty(N, dtype=torch.float32)
        view = buf.numpy()
        for i in inner.nonzero()[0].tolist():
            j = int(at[i])
            buf.copy_(scores[i])
            view.partition(j)  # one kth: numpy's vectorised path (a tuple of kths is several times slower)
            below[i], t[i] = view[:j].max(), view[j]
        finite = abs(a.sum(axis=1)) < math.inf  # False also on an overflow: that row just takes topk
    else:
        step = max(1, _SORT_ELEMS // N)
        finite = torch.empty(n, dtype=torch.bool).numpy()
        r = torch.arange(min(n, step)).numpy()
        hi, lo = at_t.clamp(max=N - 1).numpy(), (at_t - 1).clamp(min=0).numpy()
        for i in range(0, n, step):
            srt = scores[i:i + step].clone()
            v = srt.numpy()
            v.sort(axis=1)
            q = r[:v.shape[0]]
            t[i:i + step] = v[q, hi[i:i + step]]
            below[i:i + step] = v[q, lo[i:i + step]]
            finite[i:i + step] = (abs(v[:, 0]) < math.inf) & (abs(v[:, -1]) < math.inf)  # NaN sorts last
        del srt, v  # before the output exists
    t[at == N] = math.inf  # num = 0: nothing
    t[at == 0] = -math.inf  # num = N: everything
    out = torch.empty(n, N, dtype=torch.bool)
    step = max(1, _SORT_ELEMS // N)
    for i in range(0, n, step):  # ndarray >= is about 2x faster than torch.ge here
        out[i:i + step].copy_(torch.from_numpy(a[i:i + step] >= t[i:i + step, None]))
    clear = finite & (~inner | (below < t))  # no tie across the threshold
    if not clear.all():
        redo = torch.from_numpy(~clear).nonzero().flatten()
        out[redo] = _topk_select(scores[redo], flip[redo], m[redo], k_max, k_min)
    return out


def _soft_select(scores: Tensor, num: Tensor, soft: Tensor) -> Tensor:
    """Float32 ``(n, N)``: 1 for the ``num - soft`` top pixels, 0 below rank ``num + soft``, a linear ramp
    ``linspace(1, 0, 2 * soft)`` over the ranks in between (the official ``binarise_mask``)."""
    n, N = scores.shape
    dev = scores.device
    num, soft = num.to(dev), soft.to(dev)
    order = scores.argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(N, device=dev).expand(n, N))
    lo = (num - soft).clamp(min=0).unsqueeze(1)
    hi = (num + soft).clamp(max=N).unsqueeze(1)
    width = hi - lo
    ramp = ((hi - 1 - rank).double() / (width - 1).clamp(min=1).double()).clamp(0, 1)
    hard = (rank < num.unsqueeze(1)).double()
    return torch.where(width > 1, ramp, hard).float()


def binarise(masks: Tensor, lam: Union[Tensor, float], max_soft: float = 0.0,
             generator: Optional[torch.Generator] = None, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """Threshold grey-scale masks ``(n, *shape)`` so each row keeps its top ``lam * N`` pixels.

    Per row ``i`` (``N = prod(shape)``): ``num_i = ceil(lam_i * N)`` or ``floor(lam_i * N)`` with
    probability 1/2 each (one uniform per row from ``generator``), and exactly the ``num_i`` largest pixels
    become 1, so ``|mask.mean() - lam| <= 1/N`` whatever ties the scores have.

    With ``max_soft > 0`` the official soft edge is applied: ``soft = int(N * s)`` with
    ``s = max_soft``, or ``s = min(lam, 1 - lam)`` when ``max_soft`` exceeds it; ranks ``< num - soft`` are 1,
    ranks ``>= num + soft`` are 0 and the ``2 * soft`` ranks in between follow ``linspace(1, 0, 2 * soft)``.
    The ramp is symmetric about ``num``, so the mask mean is still ``num / N``. (The soft path uses a full
    per-row sort; the hard path, on the CPU, a threshold read off a sorted copy of each row, elsewhere a
    single ``topk``.)

    Args:
        masks: ``(n, *shape)`` float scores (e.g. :func:`low_freq_images`); only their order matters.
        lam: ``(n,)`` tensor or a float in ``[0, 1]``: the share of pixels set to 1.
        max_soft: half-width of the soft ramp as a fraction of ``N``, in ``[0, 0.5]`` (default 0: hard).
        generator: source of the random rounding.
        dtype: output dtype, float32 by default; ``torch.bool`` is allowed for hard masks.

    Returns:
        ``(n, *shape)`` masks on ``masks``' device, values in ``[0, 1]``.
    """
    if not isinstance(masks, Tensor) or not masks.is_floating_point() or masks.dim() < 2:
        raise TypeError("masks must be a floating-point tensor of shape (n, *shape)")
    max_soft = _check_max_soft(max_soft)
    if dtype == torch.bool and max_soft > 0:
        raise ValueError("dtype=torch.bool needs max_soft=0 (a soft mask is not boolean)")
    n, shape = masks.shape[0], tuple(masks.shape[1:])
    N = math.prod(shape)
    lam_t = torch.as_tensor(lam, dtype=torch.float64).reshape(-1)
    num = sample_counts(lam_t, N, generator, n)
    scores = masks.reshape(n, N).float()
    if max_soft == 0:
        out = _top_select(scores, num)
        return out.view(n, *shape) if dtype == torch.bool else out.to(dtype).view(n, *shape)
    lam_t = lam_t.expand(n)
    edge = torch.minimum(lam_t, 1.0 - lam_t)
    eff = torch.where((max_soft > lam_t) | (max_soft > 1.0 - lam_t), edge, torch.full_like(lam_t, max_soft))
    soft = torch.floor(eff * N).long()
    return _soft_select(scores, num, soft).to(dtype).view(n, *shape)


def fmix_masks(n: int, shape: Sequence[int], lam: Union[Tensor, float], decay_power: float = 3.0,
               max_soft: float = 0.0, generator: Optional[torch.Generator] = None, device: Device = None,
               dtype: torch.dtype = torch.float32, spectrum: str = "paper") -> Tensor:
    """``n`` FMix masks ``(n, *shape)``: :func:`low_freq_images` thresholded by :func:`binarise`.

    ``mask.mean()`` of row ``i`` is ``ceil`` or ``floor`` of ``lam_i * N`` over ``N``. Pass
    ``dtype=torch.bool`` (hard masks only) to get boolean masks.
    """
    max_soft = _check_max_soft(max_soft)
    grey = low_freq_images(n, shape, decay_power, generator, device=device, normalize=False, spectrum=spectrum)
    return binarise(grey, lam, max_soft, generator, dtype=dtype)
