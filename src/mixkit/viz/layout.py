"""Figures: panel grids, the display scale of images and shares, colour bars, saving.

matplotlib is imported inside the functions (``import mixkit.viz`` needs only torch).
"""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Union

import torch
from torch import Tensor

from .text import _source_title, _weights_caption

#: resolution of the saved PNGs
DPI = 110

#: the colour of source ``j`` (modulo their number) in curves, frames and owner maps
_SOURCE_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
                  "tab:olive", "tab:cyan", "tab:gray")


def _display_range(*ts: Tensor):
    lo = min(float(t.min()) for t in ts)
    hi = max(float(t.max()) for t in ts)
    if not hi > lo:
        hi = lo + 1.0
    return lo, hi


def _to_image(t: Tensor, lo: float, hi: float):
    """``(C, *spatial)`` -> array for imshow (H, W) or (H, W, 3) in [0, 1]; volumes: middle depth slice."""
    t = t.detach().float().cpu()
    if t.dim() == 4:  # (C, D, H, W)
        t = t[:, t.shape[1] // 2]
    t = ((t - lo) / (hi - lo)).clamp(0, 1)
    c = t.shape[0]
    if c == 1:
        return t[0].numpy()
    if c >= 3:
        return t[:3].permute(1, 2, 0).numpy()
    return t.mean(0).numpy()


class _ImageScale:
    """One display scale for images ``(B, C, *spatial)``: the min..max of all of them -> black..white,
    1 channel (or the mean of 2) in gray, 3 or more as RGB."""

    def __init__(self, *batches: Tensor):
        self.lo, self.hi = _display_range(*batches)
        self.cmap = "gray" if batches[0].shape[1] < 3 else None

    def draw(self, ax, t: Tensor):
        """Draw image ``t`` ``(C, *spatial)`` on ``ax`` with nearest-neighbour upsampling."""
        return ax.imshow(_to_image(t, self.lo, self.hi), cmap=self.cmap, vmin=0, vmax=1, interpolation="nearest")


def _share_values(s: Tensor, shape: Sequence[int]) -> Tensor:
    """An anchor share ``s`` (a map, or a 0-dim constant for pure interpolation) as a tensor of ``shape``."""
    return torch.full(tuple(shape), float(s)) if s.dim() == 0 else s


def _share_image(s: Tensor, hw: Sequence[int]) -> Tensor:
    """The ``(H, W)`` image of an anchor share: the constant, the map, or a volume's middle depth slice."""
    img = _share_values(s, hw)
    return img[img.shape[0] // 2] if img.dim() == 3 else img


def _share_caption(s: Tensor, extra: str = "") -> str:
    """The title of an anchor-share panel: its constant, or its mean (which must equal the anchor's weight)."""
    if s.dim() == 0:
        return f"anchor share\nconstant = {float(s):.2f}"
    return f"anchor share{extra}\nmean = {float(s.mean()):.2f}"


def _no_ticks(axes) -> None:
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])


def _colorbar(fig, im, axes, label: str, fontsize: float, shrink: float = 0.6, pad: float = 0.03) -> None:
    """A colour bar for ``im`` beside the panels ``axes`` (a column of them, say)."""
    cb = fig.colorbar(im, ax=list(axes), shrink=shrink, aspect=30, pad=pad)
    cb.set_label(label, fontsize=fontsize)
    cb.ax.tick_params(labelsize=7)


def _finish(fig, title: str, out: Optional[Union[str, os.PathLike]], **drawn: Any):
    """Title the figure, attach what it draws as ``fig.mixkit_<name>`` and save it to ``out`` (if given)."""
    fig.suptitle(title, fontsize=9)
    for name, value in drawn.items():
        setattr(fig, f"mixkit_{name}", value)
    _save(fig, out)
    return fig


def _save(fig, out: Optional[Union[str, os.PathLike]]) -> None:
    if out is None:
        return
    d = os.path.dirname(os.fspath(out))
    if d:
        os.makedirs(d, exist_ok=True)
    fig.savefig(out, dpi=DPI, facecolor="white")  # constrained layout already fits the panels


def _stacked_grid(n: int, ratios, ncols: Optional[int] = None, size=(4.8, 4.2), top: float = 0.6):
    """A figure for ``n`` 1-D samples in ``ncols`` columns (default: one, or two for several samples), each
    sample a stack of ``len(ratios)`` panels with those height ratios, ``size`` inches per sample.
    Returns ``(fig, gridspec, ncols)``; sample ``r`` uses rows ``len(ratios) * (r // ncols) + j`` of
    column ``r % ncols``."""
    from matplotlib.figure import Figure

    ncols = ncols or (1 if n == 1 else 2)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(ncols * size[0], nrows * size[1] + top), layout="constrained")
    return fig, fig.add_gridspec(len(ratios) * nrows, ncols, height_ratios=list(ratios) * nrows), ncols


def _block_grid(rows, ncols: int, blocks: int, panel_size: float, pad_w: float, pad_h: float, top: float):
    """A figure with the ``rows`` split into ``blocks`` side-by-side groups of ``ncols`` panels each.

    Returns ``(fig, [(block_rows, axes, subfigure, is_last), ...])``; the unused panels of a short last group
    are switched off.
    """
    from matplotlib.figure import Figure

    per_block = -(-len(rows) // blocks)
    blocks = -(-len(rows) // per_block)
    fig = Figure(figsize=(blocks * ncols * panel_size + pad_w * blocks, per_block * (panel_size + pad_h) + top),
                 layout="constrained")
    subfigs = fig.subfigures(1, blocks, wspace=0.03, squeeze=False)[0] if blocks > 1 else [fig]
    grid = []
    for bi, sf in enumerate(subfigs):
        block_rows = rows[bi * per_block:(bi + 1) * per_block]
        axes = sf.subplots(per_block, ncols, squeeze=False)
        for r in range(len(block_rows), per_block):
            for ax in axes[r]:
                ax.set_axis_off()
        grid.append((block_rows, axes, sf, bi == len(subfigs) - 1))
    return fig, grid


def _owner_rgb(mask_i: Tensor, cols: Sequence[int]):
    """``(k, H, W)`` per-source shares -> an RGB image mixing the sources' colours by share."""
    from matplotlib.colors import to_rgb

    rgb = torch.zeros(3, *mask_i.shape[1:])
    for j in cols:
        col = torch.tensor(to_rgb(_SOURCE_COLORS[j % len(_SOURCE_COLORS)]), dtype=torch.float32).view(3, 1, 1)
        rgb = rgb + col * mask_i[j].unsqueeze(0)
    return rgb.clamp(0, 1).permute(1, 2, 0).numpy()


def _sources_and_mix(axes, r: int, i: int, res, scale, xin, xmix, y, class_names, fontsize: float) -> None:
    """Row ``r`` of a picture: the ``k`` sources of output ``i`` in columns ``0..k-1``, the mixed sample in
    column ``k``, each titled with its label weights."""
    k = res.index.shape[1]
    for j in range(k):
        ax = axes[r, j]
        scale.draw(ax, xin[int(res.index[i, j])])
        ax.set_title(_source_title(res, i, j, y, class_names), fontsize=fontsize)
    ax = axes[r, k]
    scale.draw(ax, xmix[i])
    ax.set_title("mixed\n" + _weights_caption(res, i, y, class_names), fontsize=fontsize, fontweight="bold")
