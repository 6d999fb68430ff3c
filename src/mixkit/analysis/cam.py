"""Class activation maps of clean and mixed samples, and how a map's mass splits over a mix's sources.

* CAM (Zhou et al., "Learning Deep Features for Discriminative Localization", CVPR 2016), for a model
  that ends in global average pooling + one linear layer: ``M_c = sum_k w[c, k] A_k``.
* Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
  Localization", ICCV 2017), for any model with a named feature layer: ``alpha_k = mean(d y_c / d A_k)``,
  ``M_c = ReLU(sum_k alpha_k A_k)``.
* :func:`cam_share_on_sources`: for a mixed sample, the share of source ``j``'s class map that falls on
  the region source ``j`` contributed, beside its label weight (AdAutoMix's CAM of mixed samples).

Maps are ``(B, *spatial)`` (1-D, 2-D or 3-D features). Formulas and examples: docs/analysis/cam.md.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..bench.eval.model import eval_mode
from ..hooks import get_module
from ..result import MixResult

__all__ = ["grad_cam", "cam", "cam_share_on_sources", "show_cams"]

_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


# --------------------------------------------------------------------------------------- checks
def _check_model_x(model: Any, x: Any) -> Tensor:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor (B, C, *spatial), got "
                        f"{type(x).__name__ if not isinstance(x, Tensor) else x.dtype}")
    if x.dim() < 3 or x.dim() > 5:
        raise ValueError(f"x must have shape (B, C, *spatial) with 1 to 3 spatial dims, got {tuple(x.shape)}")
    return x


def _targets(target_class: Any, logits: Tensor) -> Tensor:
    """``(B,)`` class ids: the predicted class for ``None``, an int for every row, or one id per row."""
    b, k = logits.shape
    if target_class is None:
        return logits.argmax(1)
    if isinstance(target_class, bool):
        raise TypeError("target_class must be None, an int or a (B,) tensor of class ids, got a bool")
    if isinstance(target_class, int):
        t = torch.full((b,), target_class, dtype=torch.long, device=logits.device)
    elif isinstance(target_class, Tensor):
        if target_class.is_floating_point() or target_class.dtype == torch.bool:
            raise TypeError(f"target_class must hold integer class ids, got dtype {target_class.dtype}")
        t = target_class.to(logits.device, torch.long).reshape(-1)
        if t.numel() == 1:
            t = t.expand(b)
        if t.shape[0] != b:
            raise ValueError(f"target_class must have one class id per sample ({b}), got {tuple(target_class.shape)}")
    else:
        raise TypeError(f"target_class must be None, an int or a (B,) tensor of class ids, got {type(target_class).__name__}")
    if bool((t < 0).any()) or bool((t >= k).any()):
        raise ValueError(f"target_class must be in [0, {k}) (the model has {k} outputs), got {t.tolist()}")
    return t


def _logits(out: Any, layer: str) -> Tensor:
    if isinstance(out, (tuple, list)):
        out = out[0]
    if not isinstance(out, Tensor) or out.dim() != 2:
        raise ValueError(f"the model must return logits (B, K), got {tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__}")
    return out


def _forward(model: nn.Module, x: Tensor, layer: str, need_grad: bool = False):
    """Run ``model(x)`` and keep the output of ``layer`` (with its graph): ``(logits, features)``; with
    ``need_grad`` a tensor output that autograd does not track (a frozen model) is made a leaf that it does."""
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a dotted module name (str), got {type(layer).__name__}")
    module = get_module(model, layer)
    kept = []

    def hook(mod, args, out):
        t = out[0] if isinstance(out, (tuple, list)) else out
        if not isinstance(t, Tensor):
            raise TypeError(f"layer {layer!r} returned a {type(t).__name__}, not a tensor")
        if need_grad and isinstance(out, Tensor) and not out.requires_grad:
            out = out.detach().requires_grad_()
            kept.append(out)
            return out
        kept.append(t)
        return None

    h = module.register_forward_hook(hook)
    try:
        logits = _logits(model(x), layer)
    finally:
        h.remove()
    if not kept:
        raise RuntimeError(f"layer {layer!r} never ran in the forward pass of {type(model).__name__}")
    feats = kept[-1]
    if feats.dim() < 3 or feats.shape[0] != x.shape[0]:
        raise ValueError(f"layer {layer!r} must output feature maps (B, K, *spatial), got {tuple(feats.shape)}")
    return logits, feats


def _finish(m: Tensor, x: Tensor, relu: bool, upsample: bool, normalize: bool) -> Tensor:
    """ReLU, resize to the input's spatial size, and scale each map to max 1 (an all-zero map stays 0)."""
    if relu:
        m = m.clamp_min(0)
    sp = tuple(x.shape[2:])
    if upsample and tuple(m.shape[1:]) != sp:
        m = F.interpolate(m.unsqueeze(1), size=sp, mode=_MODES[len(sp)], align_corners=False).squeeze(1)
        if relu:
            m = m.clamp_min(0)
    if normalize:
        peak = m.flatten(1).abs().amax(1).clamp_min(torch.finfo(m.dtype).tiny)
        m = m / peak.view(-1, *([1] * (m.dim() - 1)))
    return m


# --------------------------------------------------------------------------------------- the maps
def grad_cam(model: nn.Module, x: Tensor, target_class: Any, layer: str, *, upsample: bool = True,
             relu: bool = True, normalize: bool = True) -> Tensor:
    """Grad-CAM (Selvaraju et al. 2017): ``ReLU(sum_k alpha_k A_k)``, ``alpha_k`` the spatial mean of
    ``d y_c / d A_k`` at the feature maps ``A`` of ``layer``.

    Args:
        model: a classifier returning logits ``(B, K)``; run in eval mode (its modes are restored).
        x: ``(B, C, *spatial)`` input.
        target_class: ``None`` (the predicted class), an int, or ``(B,)`` class ids.
        layer: dotted module name (``model.named_modules()``) whose output are the maps ``(B, K, *sp)``.
        upsample: resize the maps to the input's spatial size (bilinear / linear / trilinear).
        relu, normalize: the ReLU of the paper, and scaling each map to a maximum of 1.

    Returns:
        ``(B, *spatial)`` detached maps, ``>= 0`` and per-sample max 1 with the defaults.
    """
    x = _check_model_x(model, x)
    with eval_mode(model), torch.enable_grad():
        logits, feats = _forward(model, x, layer, need_grad=True)
        c = _targets(target_class, logits)
        if not feats.requires_grad:
            raise ValueError(f"the output of layer {layer!r} does not depend on the model's parameters or input "
                             "through autograd; Grad-CAM needs its gradient")
        score = logits.gather(1, c.view(-1, 1)).sum()
        (g,) = torch.autograd.grad(score, feats)
    alpha = g.flatten(2).mean(2)  # (B, K)
    m = (alpha.view(*alpha.shape, *([1] * (feats.dim() - 2))) * feats.detach()).sum(1)
    return _finish(m, x, relu, upsample, normalize)


def _last_linear(model: nn.Module) -> nn.Linear:
    lin = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not lin:
        raise ValueError(f"{type(model).__name__} has no nn.Linear; pass fc= (the linear layer after the pooling)")
    return lin[-1]


def cam(model: nn.Module, x: Tensor, target_class: Any, layer: str, *,
        fc: Union[None, str, nn.Linear] = None, upsample: bool = True, relu: bool = True,
        normalize: bool = True) -> Tensor:
    """CAM (Zhou et al. 2016) for a model ``logits = fc(GAP(A))``: ``M_c = sum_k fc.weight[c, k] A_k``.

    Args:
        fc: the linear layer after the global average pooling (a module or its dotted name); default the
            last ``nn.Linear`` of the model. Its ``in_features`` must equal the channels of ``layer``.
        relu, normalize: ``False``/``False`` return the raw weighted sum of the paper (no bias).
        Other arguments as in :func:`grad_cam`.

    Returns:
        ``(B, *spatial)`` detached maps.
    """
    x = _check_model_x(model, x)
    if fc is None:
        fc = _last_linear(model)
    elif isinstance(fc, str):
        fc = get_module(model, fc)
    if not isinstance(fc, nn.Linear):
        raise TypeError(f"fc must be an nn.Linear (or its name), got {type(fc).__name__}")
    with eval_mode(model), torch.no_grad():
        logits, feats = _forward(model, x, layer)
        c = _targets(target_class, logits)
    if fc.in_features != feats.shape[1]:
        raise ValueError(f"fc has in_features={fc.in_features} but layer {layer!r} has {feats.shape[1]} channels; "
                         "CAM needs the linear layer right after the global average pooling of that layer")
    w = fc.weight.detach()[c].to(feats.dtype)  # (B, K)
    m = (w.view(*w.shape, *([1] * (feats.dim() - 2))) * feats.detach()).sum(1)
    return _finish(m, x, relu, upsample, normalize)


# --------------------------------------------------------------------------------------- mixed samples
def _class_ids(y: Any, b: int) -> Tensor:
    if not isinstance(y, Tensor):
        raise TypeError(f"y must be a (B,) tensor of class ids, got {type(y).__name__}")
    if y.dim() == 2 and y.is_floating_point():
        y = y.argmax(1)
    if y.dim() != 1 or y.is_floating_point() or y.dtype == torch.bool:
        raise ValueError(f"y must be (B,) integer class ids of the unmixed batch (or (B, K) probabilities), got "
                         f"{tuple(y.shape)} {y.dtype}")
    if y.shape[0] != b:
        raise ValueError(f"y has {y.shape[0]} rows but the mixed batch has B={b}")
    return y.long()


def cam_share_on_sources(model: nn.Module, res: MixResult, y: Tensor, layer: str, *, method: str = "grad_cam",
                         fc: Union[None, str, nn.Linear] = None) -> Dict[str, Tensor]:
    """For each mixed sample ``i`` and source ``j``: the share of the class map of source ``j``'s class
    that falls on the region source ``j`` contributed, ``s_ij = sum_p M_ij(p) m_ij(p) / sum_p M_ij(p)``
    (``M_ij`` the map of class ``y[index[i, j]]`` on ``res.inputs[i]``, ``m_ij`` the per-pixel share
    ``res.mask[i, j]``, or the constant weight for pure interpolation), beside the label weight ``w_ij``.
    A model that attends to both sources in proportion to its label has ``s_ij ~ w_ij``.

    Args:
        model: the classifier; ``res``: a :class:`~mixkit.MixResult` of a mixer on a batch with labels
            ``y`` ``(B,)`` (class ids of the *unmixed* batch); ``layer``: the feature layer.
        method: ``"grad_cam"`` or ``"cam"`` (``fc`` as in :func:`cam`).

    Returns:
        a dict of ``(B, k)`` tensors: ``share`` (NaN where the map is all zero), ``weight`` (the label
        weights), ``cls`` (the class of each source) and ``index`` (its row in the unmixed batch).
    """
    if not isinstance(res, MixResult):
        raise TypeError(f"res must be a MixResult, got {type(res).__name__}")
    if method not in ("grad_cam", "cam"):
        raise ValueError(f"method must be 'grad_cam' or 'cam', got {method!r}")
    x = _check_model_x(model, res.inputs)
    b = x.shape[0]
    index = res.index.to(x.device)
    weights = res.weights.to(x.device, torch.float32)
    cls = _class_ids(y, b).to(x.device)[index]  # (B, k)
    mask = res.mask
    shares = []
    for j in range(index.shape[1]):
        if method == "grad_cam":
            m = grad_cam(model, x, cls[:, j], layer, normalize=False)
        else:
            m = cam(model, x, cls[:, j], layer, fc=fc, normalize=False)
        m = m.float()
        if mask is None:
            region = weights[:, j].view(-1, *([1] * (m.dim() - 1))).expand_as(m)
        else:
            region = mask[:, j].to(m.device, torch.float32)
            if tuple(region.shape[1:]) != tuple(m.shape[1:]):
                raise ValueError(f"res.mask has spatial shape {tuple(region.shape[1:])} but the maps have "
                                 f"{tuple(m.shape[1:])}")
        total = m.flatten(1).sum(1)
        own = (m * region).flatten(1).sum(1)
        shares.append(torch.where(total > 0, own / total.clamp_min(1e-30), torch.full_like(total, float("nan"))))
    return {"share": torch.stack(shares, 1).cpu(), "weight": weights.cpu(), "cls": cls.cpu(), "index": index.cpu()}


# --------------------------------------------------------------------------------------- pictures
def show_cams(model: nn.Module, x: Tensor, layer: str, *, y: Optional[Tensor] = None, mixer: Any = None,
              res: Optional[MixResult] = None, n: int = 4, method: str = "grad_cam",
              generator: Optional[torch.Generator] = None, class_names: Optional[Sequence[str]] = None,
              out: Optional[Union[str, os.PathLike]] = None):
    """A figure of class maps: one row per sample with the clean image and its map (of the predicted
    class, or of ``y``) and, with a ``mixer`` (or a ready ``res``), the mixed image and the map of each
    source's class with its mass share and label weight (:func:`cam_share_on_sources`). 2-D inputs.

    Returns the matplotlib ``Figure`` (saved to ``out`` if given); matplotlib is imported here.
    """
    from matplotlib.figure import Figure

    from ..viz.layout import _ImageScale, _finish as _finish_fig, _no_ticks

    x = _check_model_x(model, x)
    if x.dim() != 4:
        raise ValueError(f"show_cams draws 2-D inputs (B, C, H, W), got {tuple(x.shape)}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if method not in ("grad_cam", "cam"):
        raise ValueError(f"method must be 'grad_cam' or 'cam', got {method!r}")
    fn = grad_cam if method == "grad_cam" else cam
    if res is None and mixer is not None:
        res = mixer.mix(x, generator=generator)
    rows = min(n, x.shape[0])
    clean = fn(model, x, y, layer)
    share = None
    if res is not None:
        if y is None:
            with torch.no_grad(), eval_mode(model):
                y = _logits(model(x), layer).argmax(1)
        share = cam_share_on_sources(model, res, y, layer, method=method)
        mixed_maps = [fn(model, res.inputs, share["cls"][:, j].to(x.device), layer) for j in range(res.k)]
    ncols = 2 + (1 + res.k if res is not None else 0)
    fig = Figure(figsize=(1.9 * ncols, 1.9 * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, ncols, squeeze=False)
    scale = _ImageScale(x, res.inputs) if res is not None else _ImageScale(x)

    def name(c: int) -> str:
        return class_names[c] if class_names is not None else str(c)

    for r in range(rows):
        scale.draw(axes[r, 0], x[r])
        axes[r, 0].set_title("clean" + (f" (y={name(int(y[r]))})" if y is not None else ""), fontsize=7)
        axes[r, 1].imshow(clean[r].cpu().numpy(), cmap="jet", vmin=0, vmax=1, interpolation="bilinear")
        axes[r, 1].set_title(method, fontsize=7)
        if res is not None:
            scale.draw(axes[r, 2], res.inputs[r])
            axes[r, 2].set_title("mixed", fontsize=7)
            for j in range(res.k):
                ax = axes[r, 3 + j]
                scale.draw(ax, res.inputs[r])
                ax.imshow(mixed_maps[j][r].cpu().numpy(), cmap="jet", vmin=0, vmax=1, alpha=0.5,
                          interpolation="bilinear")
                ax.set_title(f"class {name(int(share['cls'][r, j]))}: share {float(share['share'][r, j]):.2f}\n"
                             f"label weight {float(share['weight'][r, j]):.2f}", fontsize=6)
    _no_ticks(axes.ravel())
    return _finish_fig(fig, f"{method} of clean and mixed samples (layer {layer!r})", out, share=share)
