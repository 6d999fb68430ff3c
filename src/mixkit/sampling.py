"""Random draws for mixing: lambda, Dirichlet weights, pairings, and seeds for generators.

Every function takes an explicit ``torch.Generator`` (or ``None`` for torch's default CPU generator) and
draws on that generator's device, so the same seed gives the same parameters on CPU and GPU.
No numpy or ``random`` global state is touched.

Gamma variates (hence Beta and Dirichlet) come from ``torch._standard_gamma``, PyTorch's own sampler,
which takes a generator (``torch.distributions`` does not expose one); a Marsaglia–Tsang (2000)
rejection sampler is kept as the fallback for a torch without it, and is tested on its own.
"""
from __future__ import annotations

import hashlib
from typing import Any, Optional, Tuple

import torch
from torch import Tensor

__all__ = [
    "gen_device",
    "sample_gamma",
    "sample_beta",
    "sample_lam",
    "sample_dirichlet",
    "sample_normalized_betas",
    "sample_uniform",
    "permutation",
    "k_way_index",
    "bernoulli",
    "derive_seed",
]


#: below this Gamma shape, Beta and Dirichlet draws are normalised in log space from the boost
#: ``Gamma(a) = Gamma(a + 1) * U**(1/a)``: a Gamma(a) draw then falls below 1e-300 (where X/(X+Y) loses
#: its meaning) with probability about ``1e-300**a``, which is not negligible for a small ``a`` (at
#: a = 1e-4 nearly every draw is the smallest double). At and above it the direct draws keep their stream.
_LOG_SPACE_BELOW = 0.1
_TINY = 1e-300


def gen_device(generator: Optional[torch.Generator]) -> torch.device:
    """Device on which draws from ``generator`` are made (CPU for ``None``)."""
    return torch.device("cpu") if generator is None else generator.device


def sample_uniform(size, generator: Optional[torch.Generator] = None, low: float = 0.0, high: float = 1.0) -> Tensor:
    """U(low, high) float32 of shape ``size``."""
    u = torch.rand(size, generator=generator, device=gen_device(generator), dtype=torch.float32)
    return u * (high - low) + low if (low, high) != (0.0, 1.0) else u


def sample_gamma(shape_param: float, size=(), generator: Optional[torch.Generator] = None) -> Tensor:
    """Gamma(shape_param, 1) float32 variates of shape ``size`` by Marsaglia–Tsang; ``shape_param`` > 0.

    For a shape < 1 the boost ``Gamma(a) = Gamma(a + 1) * U**(1/a)`` is used, in log space so tiny
    shapes such as 0.05 do not underflow to exactly 0 too often.
    """
    if not shape_param > 0:
        raise ValueError(f"Gamma shape must be > 0, got {shape_param}")
    return _gamma64(float(shape_param), _as_size(size), generator).to(torch.float32)


def _as_size(size) -> Tuple[int, ...]:
    if type(size) is tuple:
        return size
    return tuple(size) if isinstance(size, (tuple, list, torch.Size)) else (size,)


def sample_beta(alpha: float, beta: Optional[float] = None, size=(), generator: Optional[torch.Generator] = None,
                dtype: torch.dtype = torch.float32) -> Tensor:
    """Beta(alpha, beta) variates (``beta`` defaults to ``alpha``) as X/(X+Y) of two Gammas, in float64.

    Returned as ``dtype`` (float32 by default; pass float64 for statistical checks: in float32, draws
    within 6e-8 of 1 round to exactly 1.0, about 2% of them at alpha = 0.2).
    """
    beta = alpha if beta is None else beta
    if alpha <= 0 or beta <= 0:
        raise ValueError(f"Beta parameters must be > 0, got alpha={alpha}, beta={beta}")
    size = _as_size(size)
    if alpha == 1.0 and beta == 1.0:  # Beta(1, 1) is U(0, 1): one draw
        u = torch.rand(size, generator=generator, device=gen_device(generator), dtype=torch.float64)
        return u.float() if dtype is torch.float32 else u.to(dtype)
    if min(alpha, beta) < _LOG_SPACE_BELOW:  # Gamma draws would underflow: X/(X+Y) in log space
        g = _gamma64_pair(alpha + 1.0, beta + 1.0, size, generator)
        u = torch.rand((2, *size), generator=generator, device=gen_device(generator), dtype=torch.float64)
        z = torch.log(u.clamp_min(_TINY))  # log X = log Gamma(a + 1) + log(U) / a, finite for a > 0
        boost = (z[0] - z[1]) / alpha if alpha == beta else z[0] / alpha - z[1] / beta
        return torch.sigmoid(torch.log(g[0]) - torch.log(g[1]) + boost).to(dtype)
    g = _gamma64_pair(alpha, beta, size, generator)
    if g.numel() == 2 and g.device.type == "cpu":  # one draw (batch mode): the same float64 maths in Python
        ga, gb = g.view(2).tolist()
        s = ga + gb
        return torch.full(size, ga / max(s, 1e-300) if s > 0 else 0.5, dtype=dtype)
    ga, gb = g[0], g[1]
    s = ga + gb
    out = torch.where(s > 0, ga / s.clamp_min(1e-300), torch.full_like(s, 0.5))
    return out.to(dtype)


def sample_lam(alpha: float, n: int, generator: Optional[torch.Generator] = None, reformulate: bool = False) -> Tensor:
    """``(n,)`` float32 mixing weights of the anchor: ``Beta(alpha, alpha)``, or ``Beta(alpha + 1, alpha)``
    for the FMix repository's reformulated objective (``reformulate=True``: MixUp, FMix)."""
    return sample_beta(alpha + 1.0 if reformulate else alpha, alpha, (n,), generator)


def _gamma64(a: float, size: torch.Size, generator) -> Tensor:
    """Gamma(a, 1) float64 draws of shape ``size`` from ``generator``.

    Uses PyTorch's own sampler (``torch._standard_gamma``, what ``torch.distributions.Gamma`` calls),
    which accepts a generator; one fused op, about 40x faster than a Python-level rejection loop.
    """
    dev = gen_device(generator)
    conc = torch.full(tuple(size), float(a), dtype=torch.float64, device=dev)
    try:
        return torch._standard_gamma(conc, generator=generator)
    except (TypeError, RuntimeError, AttributeError):  # pragma: no cover - a future torch without it
        return _gamma64_marsaglia_tsang(a, size, generator)


def _gamma64_marsaglia_tsang(a: float, size: torch.Size, generator) -> Tensor:
    """Gamma(a, 1) by Marsaglia & Tsang (2000), vectorised rejection; the fallback of :func:`_gamma64`."""
    dev = gen_device(generator)
    n = int(torch.Size(size).numel())
    a1 = a + 1.0 if a < 1 else float(a)
    d = a1 - 1.0 / 3.0
    c = 1.0 / (9.0 * d) ** 0.5
    result = torch.empty(n, dtype=torch.float64, device=dev)
    todo = torch.arange(n, device=dev)
    while todo.numel():
        m = todo.numel()
        z = torch.randn(m, generator=generator, device=dev, dtype=torch.float64)
        u = torch.rand(m, generator=generator, device=dev, dtype=torch.float64)
        v = (1 + c * z) ** 3
        ok = (v > 0) & (torch.log(u) < 0.5 * z * z + d - d * v + d * torch.log(v.clamp_min(1e-300)))
        result[todo[ok]] = (d * v)[ok]
        todo = todo[~ok]
    if a < 1:  # boost: Gamma(a) = Gamma(a + 1) * U**(1/a), in log space against underflow
        u = torch.rand(n, generator=generator, device=dev, dtype=torch.float64)
        result = torch.exp(torch.log(result) + torch.log(u.clamp_min(1e-300)) / a)
    return result.reshape(size)


def _gamma64_pair(a: float, b: float, size: torch.Size, generator) -> Tensor:
    """``(2, *size)`` independent Gamma(a) and Gamma(b) draws in one sampler call."""
    dev = gen_device(generator)
    if size == (1,):  # batch mode: the (2, 1) concentrations in one op
        conc = torch.tensor([[float(a)], [float(b)]], dtype=torch.float64, device=dev)
    else:
        conc = torch.tensor([float(a), float(b)], dtype=torch.float64, device=dev).view(2, *([1] * len(size)))
        conc = conc.expand(2, *size).contiguous()
    try:
        return torch._standard_gamma(conc, generator=generator)
    except (TypeError, RuntimeError, AttributeError):  # pragma: no cover - a future torch without it
        return torch.stack([_gamma64_marsaglia_tsang(a, size, generator), _gamma64_marsaglia_tsang(b, size, generator)])


def sample_dirichlet(alpha: float, k: int, size=(), generator: Optional[torch.Generator] = None) -> Tensor:
    """Dirichlet(alpha * 1_k) weights of shape ``(*size, k)``, float32, rows summing to 1."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    size = _as_size(size)
    if alpha < _LOG_SPACE_BELOW:  # normalise in log space: the Gamma draws themselves would underflow
        g = _gamma64(float(alpha) + 1.0, size + (k,), generator)
        u = torch.rand(size + (k,), generator=generator, device=gen_device(generator), dtype=torch.float64)
        z = torch.log(u.clamp_min(_TINY))
        z = (z - z.amax(-1, keepdim=True)) / alpha  # 0 at the row's largest U: never all -inf
        return torch.softmax(torch.log(g) + z, -1).to(torch.float32)
    g = _gamma64(float(alpha), size + (k,), generator)
    s = g.sum(-1, keepdim=True)
    w = torch.where(s > 0, g / s.clamp_min(1e-300), torch.full_like(g, 1.0 / k))
    return w.to(torch.float32)


def sample_normalized_betas(alpha: float, k: int, size=(), generator: Optional[torch.Generator] = None) -> Tensor:
    """k i.i.d. Beta(alpha, alpha) draws normalised to sum to 1 (AdAutoMix's weights; *not* a Dirichlet)."""
    size = _as_size(size)
    b = sample_beta(alpha, alpha, size + (k,), generator).double()
    s = b.sum(-1, keepdim=True)
    return torch.where(s > 0, b / s.clamp_min(1e-300), torch.full_like(b, 1.0 / k)).to(torch.float32)


def permutation(n: int, generator: Optional[torch.Generator] = None, no_self: bool = False) -> Tensor:
    """Partner index ``(n,)`` int64: a uniform random permutation of ``range(n)``.

    With ``no_self=True`` no sample is paired with itself (for n >= 2): a random permutation ``s`` is
    drawn and each ``s[i]`` is paired with ``s[(i + shift) % n]`` for a random shift in ``[1, n-1]``.
    For n == 1 the identity is returned (a single sample cannot be paired with another one).
    """
    dev = gen_device(generator)
    if n <= 1 or not no_self:
        return torch.randperm(n, generator=generator, device=dev)
    s = torch.randperm(n, generator=generator, device=dev)
    shift = int(torch.randint(1, n, (1,), generator=generator, device=dev))
    partner = torch.empty_like(s)
    partner[s] = s.roll(-shift)
    return partner


def k_way_index(n: int, k: int, generator: Optional[torch.Generator] = None, no_self: bool = False) -> Tensor:
    """Source indices ``(n, k)`` int64: column 0 is ``arange(n)``, columns 1.. are independent pairings."""
    dev = gen_device(generator)
    cols = [torch.arange(n, device=dev)] + [permutation(n, generator, no_self) for _ in range(k - 1)]
    return torch.stack(cols, 1)


def bernoulli(p: float, size=(), generator: Optional[torch.Generator] = None) -> Tensor:
    """Boolean draws that are True with probability ``p``."""
    return torch.rand(size, generator=generator, device=gen_device(generator)) < p


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from a hash of ``parts`` (sha256 of their ``repr``: stable across processes, runs and
    Python versions), so related streams (per worker, per run, per purpose) get unrelated seeds."""
    h = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)
