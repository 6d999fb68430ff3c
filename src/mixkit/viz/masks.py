"""The anchor-share masks of one or several methods, without the images (:func:`mask_gallery`)."""
from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Optional, Sequence, Union

import torch
from torch import Tensor

from ..result import MixResult
from .layout import _colorbar, _finish, _no_ticks, _share_image, _share_values
from .prepare import MixerLike, _anchor_share, _check_x, _make_mixer


def mask_gallery(methods: Union[MixerLike, Sequence[MixerLike]], size: Sequence[int] = (32, 32), n: int = 8,
                 generator: Optional[torch.Generator] = None, out: Optional[Union[str, os.PathLike]] = None, *,
                 mode: str = "sample", params: Optional[Mapping[str, Mapping[str, Any]]] = None,
                 x: Optional[Tensor] = None, panel_size: float = 1.1):
    """The anchor-share maps of ``n`` draws for each method: one row per method.

    Each method mixes the same batch (``x``, or random images of shape ``(n, 1, *size)``) and each panel
    shows ``res.mask[i, 0]`` with the anchor's label weight in its title; a method without a mask
    (pure interpolation) shows its constant share. Methods given by name are created with
    ``mode=mode`` (``"sample"`` by default, so a row shows ``n`` independent draws) and
    ``params[name]``. 1-D ``size`` draws share curves instead of maps.

    Returns:
        A figure, with ``fig.mixkit_results = {label: MixResult}``.
    """
    from matplotlib.figure import Figure

    if isinstance(methods, (str,)) or hasattr(methods, "mix"):
        methods = [methods]
    methods = list(methods)
    if not methods:
        raise ValueError("methods must name at least one method")
    if x is None:
        size = tuple(int(s) for s in size)
        if not 1 <= len(size) <= 3:
            raise ValueError(f"size must have 1 to 3 entries, got {size}")
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(n, 1, *size, generator=gen)
    else:
        x = _check_x(x, (1, 2, 3), "mask_gallery")
    n = min(n, x.shape[0])
    one_d = x.dim() == 3
    fig = Figure(figsize=(n * panel_size + 1.0, len(methods) * (panel_size + 0.35) + 0.5), layout="constrained")
    axes = fig.subplots(len(methods), n, squeeze=False, sharey=one_d)
    results: Dict[str, MixResult] = {}
    im = None
    for r, m in enumerate(methods):
        if isinstance(m, str):
            from .. import registry

            name = registry.resolve(m)
            kw = {"mode": mode}
            kw.update((params or {}).get(name, {}))
            mixer = _make_mixer(name, kw)
        else:
            mixer, name = m, type(m).__name__
        res = mixer.mix(x, generator=generator)
        results[name] = res
        share = _anchor_share(res, range(n))
        for i in range(n):
            ax = axes[r, i]
            s = share[i]
            if one_d:
                curve = _share_values(s, (x.shape[-1],))
                ax.fill_between(range(x.shape[-1]), 0, curve.numpy(), step="mid", alpha=0.5)
                ax.set_ylim(0, 1.05)
            else:
                im = ax.imshow(_share_image(s, x.shape[-2:]).numpy(), cmap="viridis", vmin=0, vmax=1,
                               interpolation="nearest")
            ax.set_title(f"w={float(res.weights[i, 0]):.2f}", fontsize=7)
            _no_ticks([ax])
        axes[r, 0].set_ylabel(name, fontsize=9, rotation=0, ha="right", va="center")
    if im is not None:
        _colorbar(fig, im, axes.flat, "anchor share", 8, shrink=0.5, pad=0.01)
    return _finish(fig, f"anchor-share masks, mode={mode!r}, w = anchor label weight", out, results=results)
