"""timm's ``Mixup`` and ``FastCollateMixup`` with timm's arguments and numbers, on mixkit (no timm needed).

``Mixup(mixup_alpha, cutmix_alpha, cutmix_minmax, prob, switch_prob, mode, correct_lam, label_smoothing,
num_classes, multi_label)`` keeps timm's signature, defaults and semantics: partner ``B - 1 - i`` (the
flipped batch); ``mode="batch"`` one draw for the batch, ``"pair"`` one draw per pair ``(i, B-1-i)`` written
to both, ``"elem"`` one draw per element (each row switches between MixUp and CutMix by itself); timm's box
(``int(H * sqrt(1 - lam))`` sides, centre uniform, clipped) and ``cutmix_minmax`` box; timm's smoothing
(off ``a/K``, on ``1 - a + a/K``; toward 0.5 with ``multi_label``), then ``w * y + (1 - w) * y.flip(0)``.
With the same draws the pixels and targets are timm's bit for bit (tests/test_timm_compat.py).

Unlike timm: any batch size (an odd batch's middle row pairs with itself and is left unmixed), draws from
``generator=`` (torch, never numpy/random), the input is not modified unless ``inplace=True``, and any
two-source mixkit method can be either branch (``cutmix=mixkit.FMix()``). Page: docs/integrations/timm.md.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Optional, Sequence

import torch
from torch import Tensor

from .. import sampling
from .._validate import check_generator, check_labels, check_num_classes, check_prob, check_range, check_smoothing
from ..labels import check_smoothing_target, one_hot, smooth
from ..mixers.base import Mixer
from ..mixers.params import MixParams

__all__ = ["Mixup", "FastCollateMixup"]

_MODES = ("batch", "pair", "elem")


def _flip(b: int, device) -> Tensor:
    return torch.arange(b - 1, -1, -1, device=device)


def _check_branch(m: Any, name: str) -> Optional[Mixer]:
    if m is None or isinstance(m, Mixer):
        return m
    raise TypeError(f"{name} must be a mixkit Mixer (e.g. mixkit.FMix()) or None, got {type(m).__name__}")


def _mirror(obj: Any, b: int, h: int, flip: Tensor) -> Any:
    """Params whose per-row entries of rows ``B-1-i`` are those of rows ``i < h`` (timm's 'pair' mode), with the
    flipped partner; nested params (composites) too."""
    if isinstance(obj, MixParams):
        out = copy.copy(obj)
        out.lam, out.active = _mirror(obj.lam, b, h, flip), _mirror(obj.active, b, h, flip)
        if obj.partner is not None:
            out.partner = flip.to(obj.partner.device)
        out.draws = {k: _mirror(v, b, h, flip) for k, v in obj.draws.items()}
        return out
    if isinstance(obj, Tensor) and obj.dim() >= 1 and obj.shape[0] == b:
        src = torch.arange(h, device=obj.device)
        obj = obj.clone()
        obj[b - 1 - src] = obj[src]
        return obj
    return obj


class Mixup:
    """timm's ``Mixup`` (``timm.data.Mixup``): ``mixup(x, target) -> (x_mixed, soft_target)``.

    Args (timm's, same defaults):
        mixup_alpha: MixUp's Beta concentration; the MixUp branch is on if > 0 (or ``mixup=`` is given).
        cutmix_alpha: CutMix's; on if > 0 (or ``cutmix=`` / ``cutmix_minmax`` is given).
        cutmix_minmax: ``(min, max)`` box side ratios: each side ``randint(int(S*min), int(S*max))`` (upper end
            excluded, as timm), box inside the image; forces ``cutmix_alpha=1`` and the realised label.
        prob: probability that the batch (``"batch"``), a pair or an element is mixed.
        switch_prob: probability of CutMix instead of MixUp when both are on.
        mode: ``"batch"`` | ``"pair"`` | ``"elem"``.
        correct_lam: the CutMix label weight is the realised (clipped) box share (default True); False keeps
            the sampled ``lam`` (timm's option; the labels then no longer match the pixels).
        label_smoothing: smoothing of each label before mixing (timm's default 0.1).
        num_classes: K (timm's default 1000).
        multi_label: targets are dense ``(B, K)`` multi-hot, smoothed toward 0.5 (timm's ``multi_label``).
    mixkit's (keyword only):
        mixup, cutmix: a mixkit :class:`~mixkit.mixers.base.Mixer` to use as that branch instead of timm's
            MixUp / CutMix (its own alpha and options; its partner is set to the flipped batch; its mode is
            set from ``mode``). Its label weights are its realised shares.
        generator: the ``torch.Generator`` of every draw (``None``: torch's global RNG); ``__call__`` takes one too.
        inplace: write the mixed batch into ``x`` and return ``x`` (timm's behaviour); default False.
        smoothing_target: ``"uniform"`` (toward 1/K) or ``"binary"`` (toward 0.5); default from ``multi_label``.
        exact_timm: also copy timm's label rounding: in ``"pair"``/``"elem"`` mode timm stores lambda in the image
            dtype (float16 under AMP), so its targets carry that rounding; default False (float32 weights).

    ``mixup_enabled`` (True) switches mixing off as in timm. After a call, ``last_params`` holds the draws
    (``lam``, ``use_cutmix``, ``active``, ``box`` per draw) and ``last_weights`` the ``(B,)`` anchor weights.
    """

    def __init__(self, mixup_alpha: float = 1., cutmix_alpha: float = 0., cutmix_minmax: Optional[Sequence[float]] = None,
                 prob: float = 1.0, switch_prob: float = 0.5, mode: str = "batch", correct_lam: bool = True,
                 label_smoothing: float = 0.1, num_classes: int = 1000, multi_label: bool = False, *,
                 mixup: Optional[Mixer] = None, cutmix: Optional[Mixer] = None,
                 generator: Optional[torch.Generator] = None, inplace: bool = False,
                 smoothing_target: Optional[str] = None, exact_timm: bool = False) -> None:
        for name, v in (("mixup_alpha", mixup_alpha), ("cutmix_alpha", cutmix_alpha)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                raise ValueError(f"{name} must be a number >= 0 (0 switches that branch off), got {v!r}")
        self.mixup_alpha, self.cutmix_alpha = float(mixup_alpha), float(cutmix_alpha)
        self.cutmix_minmax = check_range(cutmix_minmax, "cutmix_minmax")
        if self.cutmix_minmax is not None:
            self.cutmix_alpha = 1.0  # as timm: minmax switches CutMix on
        self.mix_prob = check_prob(prob, "prob")
        self.switch_prob = check_prob(switch_prob, "switch_prob")
        if mode not in _MODES + (("half",) if isinstance(self, FastCollateMixup) else ()):
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        self.mode = mode
        self.correct_lam = bool(correct_lam)
        self.label_smoothing = check_smoothing(label_smoothing, "label_smoothing")
        self.num_classes = check_num_classes(num_classes)
        if self.num_classes is None:
            raise ValueError("num_classes must be an int >= 1 (timm's default is 1000)")
        self.multi_label = bool(multi_label)
        self.smoothing_target = check_smoothing_target(
            smoothing_target if smoothing_target is not None else ("binary" if self.multi_label else "uniform"))
        self.mixup = _check_branch(mixup, "mixup")
        self.cutmix = _check_branch(cutmix, "cutmix")
        if not (self.mixup_alpha > 0 or self.mixup is not None or self.cutmix_alpha > 0 or self.cutmix is not None):
            raise ValueError("one of mixup_alpha > 0, cutmix_alpha > 0, cutmix_minmax, mixup= or cutmix= must be given")
        self.generator = check_generator(generator)
        self.inplace = bool(inplace)
        self.exact_timm = bool(exact_timm)
        self.mixup_enabled = True
        self.last_params: dict = {}
        self.last_weights: Optional[Tensor] = None

    # ------------------------------------------------------------------ draws
    @property
    def _mix_on(self) -> bool:
        return self.mixup_alpha > 0 or self.mixup is not None

    @property
    def _cut_on(self) -> bool:
        return self.cutmix_alpha > 0 or self.cutmix is not None

    def _draw(self, n: int, g: Optional[torch.Generator]):
        """``(n,)`` lam (float64), use_cutmix and active (bool) on the CPU: timm's ``_params_per_elem``."""
        dev = sampling.gen_device(g)
        lam = torch.ones(n, dtype=torch.float64, device=dev)
        use_cut = torch.zeros(n, dtype=torch.bool, device=dev)
        active = torch.zeros(n, dtype=torch.bool, device=dev)
        if self.mixup_enabled:
            if self._mix_on and self._cut_on:
                use_cut = sampling.sample_uniform((n,), g) < self.switch_prob
            elif self._cut_on:
                use_cut = torch.ones(n, dtype=torch.bool, device=dev)
            lam_c = sampling.sample_beta(self.cutmix_alpha, None, (n,), g, torch.float64) if self.cutmix_alpha > 0 else lam
            lam_m = sampling.sample_beta(self.mixup_alpha, None, (n,), g, torch.float64) if self.mixup_alpha > 0 else lam
            lam = torch.where(use_cut, lam_c, lam_m)
            active = sampling.sample_uniform((n,), g) < self.mix_prob
        if self.mode != "batch":
            lam = lam.float().double()  # timm keeps per-element lambdas as float32
        return lam.cpu(), use_cut.cpu(), active.cpu()

    def _boxes(self, lam: Tensor, sizes: Sequence[int], g: Optional[torch.Generator]):
        """timm's box per draw: ``(n, d)`` lo, hi (timm's ``rand_bbox`` / ``rand_bbox_minmax``)."""
        n, d = lam.shape[0], len(sizes)
        dev = sampling.gen_device(g)
        size_t = torch.tensor(list(sizes))
        if self.cutmix_minmax is None:
            if self.mode == "batch":  # timm: float64 (a Python float)
                r = (1.0 - lam).clamp_min(0) ** (1.0 / d) if d != 2 else (1.0 - lam).clamp_min(0).sqrt()
                cut = torch.floor(r.unsqueeze(1) * size_t.double()).long()
            else:  # timm: float32 (numpy float32 scalars)
                lam32 = lam.float()
                r = (1.0 - lam32).clamp_min(0) ** (1.0 / d) if d != 2 else (1.0 - lam32).clamp_min(0).sqrt()
                cut = torch.floor(r.unsqueeze(1) * size_t.float()).long()
            centre = torch.stack([torch.randint(0, s, (n,), generator=g, device=dev) for s in sizes], 1).cpu()
            lo = (centre - cut // 2).clamp(0).minimum(size_t)
            hi = (centre + (cut + 1) // 2).clamp(0).minimum(size_t)
            self.last_params["box_draws"] = centre  # timm's randint draws: the centres
            return lo, hi
        mn, mx = self.cutmix_minmax
        lo_len = [int(s * mn) for s in sizes]
        hi_len = [int(s * mx) for s in sizes]
        for s, a, b in zip(sizes, lo_len, hi_len):
            if b <= a:
                raise ValueError(f"cutmix_minmax={self.cutmix_minmax} leaves no box side for a size of {s} "
                                 f"(int({s}*min)={a} >= int({s}*max)={b})")
        cut = torch.stack([torch.randint(a, b, (n,), generator=g, device=dev) for a, b in zip(lo_len, hi_len)], 1).cpu()
        u = torch.rand(n, d, generator=g, device=dev, dtype=torch.float64).cpu()
        lo = torch.floor(u * (size_t - cut + 1)).long().minimum(size_t - cut)
        self.last_params["box_draws"] = torch.cat([cut, lo], 1)  # timm's randint draws: the sides, the corner
        return lo, lo + cut

    # ------------------------------------------------------------------ the mixing
    def _rows(self, v: Tensor, b: int, fill) -> Tensor:
        """Per-draw values -> per-row values for the mode (the odd middle row and 'half''s back half get ``fill``)."""
        h = b // 2
        if self.mode == "batch":
            return v.expand(b).clone()
        out = torch.full((b,), fill, dtype=v.dtype)
        if self.mode == "pair":
            out[:h], out[b - h:] = v, v.flip(0)
        elif self.mode == "half":
            out[:h] = v
        else:
            out[:] = v
            if b % 2:
                out[h] = fill
        return out

    def _branch(self, m: Mixer, x: Tensor, g: Optional[torch.Generator]):
        """Run a mixkit branch on the whole batch with the flipped partner: ``(x_mix, weights, index)``."""
        b, flip = x.shape[0], _flip(x.shape[0], x.device)
        mixers = [c for c in m.modules() if isinstance(c, Mixer)]  # a composite's children too
        modes = [c.mode for c in mixers]
        try:
            for c in mixers:
                c.mode = "batch" if self.mode == "batch" else "sample"
            params = m.sample(x, g)
            params = _mirror(params, b, b // 2 if self.mode in ("pair", "half") else 0, flip)
            res = m.apply(x, params)
        finally:
            for c, mode in zip(mixers, modes):
                c.mode = mode
        return res.inputs, res.weights.float(), res.index

    def _mix(self, x: Tensor, g: Optional[torch.Generator]):
        """Mix the batch: returns ``(x_out, w0, extra)``; ``w0`` the ``(B,)`` float64 anchor weights of the rows
        mixed by timm's branches (1 elsewhere), ``extra`` the rows of mixkit branches ``[(rows, w, index)]``."""
        b, sizes = x.shape[0], tuple(x.shape[2:])
        n = 1 if self.mode == "batch" else (b if self.mode == "elem" else b // 2)
        lam, use_cut, active = self._draw(n, g)
        box, self.last_params = None, {}
        if self.cutmix is None and bool((use_cut & active & (lam < 1)).any()):
            box = self._boxes(lam, sizes, g)
        lam_r, cut_r, act_r = self._rows(lam, b, 1.0), self._rows(use_cut, b, False), self._rows(active, b, False)
        if b % 2 and self.mode == "batch":
            act_r[b // 2] = False  # the middle row pairs with itself: left as it is
        custom = (cut_r & (self.cutmix is not None)) | (~cut_r & (self.mixup is not None))
        act_r &= (lam_r < 1) | custom  # timm skips lam == 1 (a mixkit branch draws its own lambda)
        self.last_params.update(lam=lam, use_cutmix=use_cut, active=active, box=box)
        flip = _flip(b, x.device)
        out, w0, extra = x, torch.ones(b, dtype=torch.float64), []
        for is_cut, m in ((False, self.mixup), (True, self.cutmix)):
            rows = act_r & (cut_r if is_cut else ~cut_r)
            if not bool(rows.any()):
                continue
            rows_d = rows.to(x.device).view(b, *([1] * (x.dim() - 1)))
            if m is not None:
                xm, w, idx = self._branch(m, x, g)
                out = torch.where(rows_d, xm.to(x.dtype), out)
                extra.append((rows, w, idx))
            elif is_cut:
                lo, hi = (t if self.mode == "batch" else self._rows_2d(t, b) for t in box)
                inside = torch.ones(b, *sizes, dtype=torch.bool)
                for k, s in enumerate(sizes):
                    ar = torch.arange(s).view(1, *[s if i == k else 1 for i in range(len(sizes))])
                    shape = (-1,) + (1,) * len(sizes)
                    inside &= (ar >= lo[:, k].reshape(shape)) & (ar < hi[:, k].reshape(shape))
                inside = inside.unsqueeze(1).to(x.device) & rows_d
                out = torch.where(inside, x[flip], out)
                area = (hi - lo).prod(1).double()
                share = 1.0 - area / float(math.prod(sizes))
                if not (self.correct_lam or self.cutmix_minmax is not None):
                    share = lam_r
                w0 = torch.where(rows, share if self.mode == "batch" else share.float().double(), w0)
            else:
                if self.mode == "batch":  # one Python float, as timm
                    lv = float(lam[0])
                    blend = x * lv + x[flip] * (1.0 - lv)
                else:
                    lv = lam_r.float().to(x.device).view(b, *([1] * (x.dim() - 1)))
                    if x.dtype in (torch.float32, torch.float64):  # timm's float32 lambda, in x's dtype
                        blend = x * lv.to(x.dtype) + x[flip] * (1 - lv).to(x.dtype)
                    else:  # uint8 (timm's collate: in float32), float16/bfloat16 (in float32, rounded once)
                        blend = x.float() * lv + x[flip].float() * (1 - lv)
                if x.dtype == torch.uint8:
                    blend = (blend if blend.is_floating_point() else blend.float()).round().clamp(0, 255)
                out = torch.where(rows_d, blend.to(x.dtype), out)
                w0 = torch.where(rows, lam_r, w0)
        return out, w0, extra

    def _rows_2d(self, t: Tensor, b: int) -> Tensor:
        """``(n, d)`` per-draw boxes -> ``(B, d)`` per row (as :meth:`_rows`)."""
        return torch.stack([self._rows(t[:, k], b, 0) for k in range(t.shape[1])], 1)

    def _targets(self, target: Tensor, b: int, w0: Tensor, extra, device) -> Tensor:
        """timm's ``mixup_target``: smoothed labels ``Y``, then ``w * Y + (1 - w) * Y.flip(0)`` per row."""
        if self.multi_label or target.dim() == 2:
            if target.dim() != 2 or target.shape[1] != self.num_classes:
                raise ValueError(f"target must be dense (B, num_classes={self.num_classes}) with multi_label=True "
                                 f"or probability rows, got shape {tuple(target.shape)}")
            Y = smooth(target.to(device), self.label_smoothing, self.smoothing_target)
        else:
            Y = one_hot(target.to(device), self.num_classes, self.label_smoothing, smoothing_target=self.smoothing_target)
        Yf = Y.flip(0)
        if self.mode == "batch" and not extra:  # one Python float, as timm
            lv = float(w0[0]) if bool((w0 < 1).any()) else 1.0
            out = Y * lv + Yf * (1.0 - lv)
        else:
            lw = w0.float().to(device)
            if self.exact_timm and self._img_dtype.is_floating_point:
                lw = lw.to(self._img_dtype)  # timm's torch.tensor(lam, dtype=x.dtype); 1 - lam in that dtype too
            out = Y * lw.unsqueeze(1) + Yf * (1.0 - lw).unsqueeze(1)
        if self.mode == "batch" and b % 2:
            out[b // 2] = Y[b // 2]
        weights = w0.float()
        for rows, w, idx in extra:
            gen = (w.to(device).unsqueeze(-1) * Y[idx.to(device)]).sum(1)
            r = rows.to(device)
            out = torch.where(r.unsqueeze(1), gen, out)
            weights = torch.where(rows, w[:, 0].cpu(), weights)
        self.last_weights = weights
        return out

    def __call__(self, x: Tensor, target: Tensor, *, generator: Optional[torch.Generator] = None):
        """Mix ``x`` ``(B, C, *spatial)`` and its labels (class ids ``(B,)``, or ``(B, K)`` with ``multi_label``);
        returns ``(x_mixed, target (B, K) float32)``."""
        if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() < 3:
            raise TypeError(f"x must be a floating-point tensor (B, C, *spatial), got "
                            f"{type(x).__name__ if not isinstance(x, Tensor) else (x.dtype, tuple(x.shape))}")
        return self._call(x, target, generator)

    def _call(self, x: Tensor, target: Tensor, generator):
        g = check_generator(generator) if generator is not None else self.generator
        b = x.shape[0]
        check_labels(target, b, None if self.multi_label else self.num_classes, "target")
        if self.cutmix is None and self._cut_on and x.dim() < 3:
            raise ValueError(f"CutMix needs spatial dims, got x of shape {tuple(x.shape)}")
        self._img_dtype = x.dtype
        out, w0, extra = self._mix(x, g) if b > 1 else (x, torch.ones(b, dtype=torch.float64), [])
        target = self._targets(target, b, w0, extra, x.device)
        if self.inplace and out is not x:
            x.copy_(out)
            out = x
        elif out is x and not self.inplace:
            out = x.clone()
        return out, target

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(mixup_alpha={self.mixup_alpha}, cutmix_alpha={self.cutmix_alpha}, "
                f"cutmix_minmax={self.cutmix_minmax}, prob={self.mix_prob}, switch_prob={self.switch_prob}, "
                f"mode={self.mode!r}, correct_lam={self.correct_lam}, label_smoothing={self.label_smoothing}, "
                f"num_classes={self.num_classes}, multi_label={self.multi_label}, mixup={self.mixup!r}, "
                f"cutmix={self.cutmix!r})")


class FastCollateMixup(Mixup):
    """timm's ``FastCollateMixup``: a ``collate_fn`` that collates ``[(image, label), ...]`` (uint8 ``(C, H, W)``
    numpy arrays or tensors) into a uint8 batch mixed as timm does (MixUp blended in float32 and rounded half
    to even, CutMix copied) and ``(B, K)`` float32 targets. ``mode="half"`` (timm's) mixes element ``i`` with
    ``B-1-i`` and returns the first ``B // 2`` rows only. Arguments as :class:`Mixup`; with ``generator=None``
    each DataLoader worker draws from its own torch RNG (seeded per worker by the DataLoader).
    """

    def __call__(self, batch, _=None, *, generator: Optional[torch.Generator] = None):
        if not isinstance(batch, (list, tuple)) or not batch:
            raise TypeError("batch must be a non-empty list of (image, label) samples")
        imgs = [torch.as_tensor(s[0]) for s in batch]
        if any(t.dtype != torch.uint8 for t in imgs):
            raise TypeError(f"FastCollateMixup expects uint8 images, got dtype {next(t.dtype for t in imgs if t.dtype != torch.uint8)}")
        if self.mode == "half" and len(batch) < 2:
            raise ValueError("mode='half' needs a batch of at least 2 samples")
        x = torch.stack(imgs)
        labels = torch.as_tensor([s[1] for s in batch]) if not isinstance(batch[0][1], Tensor) else torch.stack([s[1] for s in batch])
        out, target = self._call(x, labels, generator)
        if self.mode == "half":
            h = len(batch) // 2
            return out[:h].contiguous(), target[:h]
        return out, target

    def _branch(self, m: Mixer, x: Tensor, g):
        if x.dtype != torch.uint8:
            return super()._branch(m, x, g)
        xm, w, idx = super()._branch(m, x.float(), g)
        return xm.round().clamp(0, 255).to(torch.uint8), w, idx
