"""Pictures of saliency-guided mixers (SaliencyMix, PuzzleMix, Co-Mixup): sources, saliency, mix and mask."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import torch
from torch import Tensor

from ..result import MixResult
from .layout import (_SOURCE_COLORS, _owner_rgb, _block_grid, _colorbar, _finish, _ImageScale, _no_ticks, _share_caption,
                     _share_values, _stacked_grid)
from .prepare import MixerLike, _anchor_share, _check_n, _check_x, _check_y, _make_mixer, _run
from .text import _label, _source_legend, _source_title, _weights_caption, _wrap_lines, mixer_text


def _saliency_maps(mixer, res: MixResult, x: Tensor, y_raw, saliency: Optional[Tensor]):
    """``(maps (B, *spatial) float32 CPU or None, available (B,) bool, note)``."""
    b, sp = x.shape[0], tuple(x.shape[2:])
    if saliency is not None:
        if not isinstance(saliency, Tensor) or tuple(saliency.shape) != (b, *sp):
            raise ValueError(f"saliency must be a (B, *spatial) = {(b, *sp)} tensor, got "
                             f"{tuple(saliency.shape) if isinstance(saliency, Tensor) else type(saliency).__name__}")
        return saliency.detach().float().cpu(), torch.ones(b, dtype=torch.bool), "saliency: given"
    p = res.params.get("saliency")
    if isinstance(p, Tensor) and tuple(p.shape[1:]) == sp:
        p = p.detach().float().cpu()
        src = res.params.get("source")
        if isinstance(src, Tensor):
            full = torch.zeros(b, *sp)
            have = torch.zeros(b, dtype=torch.bool)
            src = src.detach().cpu().long()
            full[src] = p
            have[src] = True
            return full, have, "saliency: the maps the mixer computed (only for the images whose peak places a box)"
        if p.shape[0] == b:
            return p, torch.ones(b, dtype=torch.bool), "saliency: the maps the mixer computed"
    model = getattr(mixer, "model", None)
    if isinstance(model, torch.nn.Module) and y_raw is not None:
        from ..saliency import input_gradient_saliency

        s = input_gradient_saliency(model, x, y_raw, clean_lam=0.0).saliency
        return (s.detach().float().cpu(), torch.ones(b, dtype=torch.bool),
                "saliency: recomputed after mixing (eval-mode input gradient, clean_lam=0)")
    return None, torch.zeros(b, dtype=torch.bool), "no saliency map available"


def _norm01(t: Tensor) -> Tensor:
    lo, hi = float(t.min()), float(t.max())
    return (t - lo) / (hi - lo) if hi > lo else torch.zeros_like(t)


def _used_columns(res: MixResult, i: int) -> List[int]:
    """Columns of row ``i`` to draw: both for two-source methods; otherwise the sources with a share,
    largest share first (Co-Mixup pads its rows with weight-0 columns, and an output need not contain
    the input of its own row)."""
    if res.k <= 2:
        return list(range(res.k))
    w = res.weights[i].detach().float().cpu()
    cols = [j for j in range(res.k) if float(w[j]) > 0] or [0]
    return sorted(cols, key=lambda j: -float(w[j]))


def _box_of(res: MixResult, i: int):
    lo, hi = res.params.get("box_lo"), res.params.get("box_hi")
    if not isinstance(lo, Tensor) or not isinstance(hi, Tensor):
        return None
    r = i if lo.shape[0] > 1 else 0
    return lo[r].detach().cpu().tolist(), hi[r].detach().cpu().tolist()


def _peaks_by_image(res: MixResult) -> Dict[int, List[int]]:
    peak, src = res.params.get("peak"), res.params.get("source")
    if not isinstance(peak, Tensor) or not isinstance(src, Tensor):
        return {}
    return {int(s): peak[r].detach().cpu().tolist() for r, s in enumerate(src.detach().cpu().tolist())}


def show_saliency(mixer_or_name: MixerLike, x: Tensor, y: Optional[Tensor] = None,
                  class_names: Optional[Sequence[str]] = None, n: int = 8,
                  generator: Optional[torch.Generator] = None, out: Optional[Union[str, os.PathLike]] = None, *,
                  params: Optional[Mapping[str, Any]] = None, result: Optional[MixResult] = None,
                  saliency: Optional[Tensor] = None, title: Optional[str] = None, panel_size: float = 1.35,
                  blocks: Optional[int] = None):
    """Draw a saliency-guided mixer (SaliencyMix, PuzzleMix, Co-Mixup): sources, saliency, mix, mask, weights.

    Images: for each of the first ``n`` rows, a row of panels with the sources (the anchor first; for
    Co-Mixup every input that contributes to the output, with weight > 0), the mixed image (its title
    prints the label weights) and the mask -- the anchor's per-pixel share for two-source methods
    (PuzzleMix's three levels {0, 0.5, 1}; its mean is the anchor's weight), or for more sources a label
    map coloured by which input owns each pixel (blended colours for shared blocks; the source panels
    are framed in the same colours) -- and under each source its saliency map (each map scaled to its
    own min..max). SaliencyMix's box is outlined on the mixed image and its saliency peak marked with a
    ``+``. Sequences: the sources and the mix, their saliency curves, and the share (or stacked shares).

    Saliency maps come from ``saliency=`` if given, else from ``res.params["saliency"]`` (SaliencyMix:
    only the images whose map placed a box -- in batch mode a single map per batch, as the official
    code; Co-Mixup: every input), else they are recomputed from ``mixer.model`` as the eval-mode input
    gradient (:func:`mixkit.saliency.input_gradient_saliency` with ``clean_lam=0``; PuzzleMix with its
    default ``clean_lam=0`` uses exactly this map). The figure title says which.

    Args:
        mixer_or_name, y, class_names, generator, out, params, result, title: as :func:`show_grid`
            (``y`` is needed by the mixers that compute an input-gradient saliency).
        x: ``(B, C, H, W)`` images or ``(B, C, L)`` sequences.
        saliency: optional ``(B, *spatial)`` maps to draw.
        n, panel_size, blocks: rows drawn, inches per panel, side-by-side groups of rows (images).

    Returns:
        A figure with ``fig.mixkit_result`` and ``fig.mixkit_saliency`` (the ``(B, *spatial)`` maps drawn, or
        None) and ``fig.mixkit_saliency_available`` (``(B,)`` bool).
    """
    mixer = _make_mixer(mixer_or_name, params)
    x = _check_x(x, (1, 2), "show_saliency")
    y_raw = y
    y = _check_y(y, x.shape[0])
    _check_n(n)
    res = _run(mixer, x, y_raw, generator, result)
    sal, have, note = _saliency_maps(mixer, res, x, y_raw, saliency)
    rows = list(range(min(n, x.shape[0])))
    if x.dim() == 4:
        fig = _saliency_2d(res, x, y, class_names, rows, sal, have, panel_size, blocks)
    else:
        fig = _saliency_1d(res, x, y, class_names, rows, sal, have)
    head = title if title is not None else mixer_text(mixer)
    return _finish(fig, "\n".join(_wrap_lines(head) + [note]), out, result=res, saliency=sal,
                   saliency_available=have)


def _saliency_2d(res, x, y, class_names, rows, sal, have, panel_size, blocks):
    from matplotlib.patches import Rectangle

    xin = x.detach().float().cpu()
    xmix = res.inputs.detach().float().cpu()
    scale = _ImageScale(xin, xmix)
    mask = res.mask
    mask = None if mask is None else mask.detach().float().cpu()
    used = {i: _used_columns(res, i) for i in rows}
    kmax = max(len(c) for c in used.values())
    ncols = 2 * kmax + 2  # (source, its saliency) pairs, then the mix and the mask
    peaks = _peaks_by_image(res)
    fig, grid = _block_grid(rows, ncols, blocks or (2 if len(rows) >= 4 and ncols <= 6 else 1), panel_size,
                            0.7, 0.62, 1.0)
    share_im = None

    def outline(ax, box) -> None:
        (y0, x0), (y1, x1) = box
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor="cyan", lw=1.3, ls="--"))

    for block_rows, axes, sf, last in grid:
        _no_ticks(axes.flat)
        for r, i in enumerate(block_rows):
            cols = used[i]
            many = res.k > 2
            box = _box_of(res, i)
            for c, j in enumerate(cols):
                src = int(res.index[i, j])
                ax = axes[r, 2 * c]
                scale.draw(ax, xin[src])
                if many:
                    ttl = f"source {_label(src, y, class_names)}\nx[{src}], w={float(res.weights[i, j]):.2f}"
                    for sp in ax.spines.values():
                        sp.set_edgecolor(_SOURCE_COLORS[j % len(_SOURCE_COLORS)])
                        sp.set_linewidth(3)
                else:
                    ttl = _source_title(res, i, j, y, class_names)
                ax.set_title(ttl, fontsize=7.5)
                ax = axes[r, 2 * c + 1]
                if sal is not None and bool(have[src]):
                    ax.imshow(_norm01(sal[src]).numpy(), cmap="inferno", vmin=0, vmax=1, interpolation="nearest")
                    ttl = f"saliency\nof x[{src}]"
                    if src in peaks and j > 0:
                        pk = peaks[src]
                        ax.plot([pk[1]], [pk[0]], marker="+", color="cyan", ms=11, mew=2)
                        ttl = f"saliency of x[{src}]\n+ peak, box"
                        if box is not None:
                            outline(ax, box)
                    ax.set_title(ttl, fontsize=7.5)
                else:
                    ax.set_axis_off()
                    ax.text(0.5, 0.5, "saliency\nnot computed", ha="center", va="center", fontsize=7,
                            color="0.45", transform=ax.transAxes)
            for c in range(2 * len(cols), 2 * kmax):
                axes[r, c].set_axis_off()
            ax = axes[r, 2 * kmax]
            scale.draw(ax, xmix[i])
            ax.set_title("mixed\n" + _weights_caption(res, i, y, class_names, cols), fontsize=7.5, fontweight="bold")
            if box is not None:
                outline(ax, box)
            ax = axes[r, 2 * kmax + 1]
            bn = res.params.get("block_num")
            grid_txt = f", {int(bn[i])}x{int(bn[i])}" if isinstance(bn, Tensor) and bn.numel() > i else ""
            if many and mask is not None:
                ax.imshow(_owner_rgb(mask[i], cols), interpolation="nearest")
                ax.set_title("owner of each pixel\n(frame colours)", fontsize=7.5)
            else:
                s = _anchor_share(res, [i])[0]
                share_im = ax.imshow(_share_values(s, x.shape[-2:]).numpy(), cmap="viridis", vmin=0, vmax=1,
                                     interpolation="nearest")
                ax.set_title(_share_caption(s, grid_txt), fontsize=7.5)
        if last and share_im is not None:
            _colorbar(sf, share_im, axes[:, ncols - 1], "anchor's per-pixel share", 7.5)
    return fig


def _saliency_1d(res, x, y, class_names, rows, sal, have):
    xin = x.detach().float().cpu()[:, 0]
    xmix = res.inputs.detach().float().cpu()[:, 0]
    mask = res.mask
    mask = None if mask is None else mask.detach().float().cpu()
    length = x.shape[-1]
    t = torch.arange(length).numpy()
    fig, gs, ncols = _stacked_grid(len(rows), [2, 1.4, 1])
    for r, i in enumerate(rows):
        gr, gc = divmod(r, ncols)
        ax = fig.add_subplot(gs[3 * gr, gc])
        ax_sal = fig.add_subplot(gs[3 * gr + 1, gc], sharex=ax)
        ax_m = fig.add_subplot(gs[3 * gr + 2, gc], sharex=ax)
        cols = _used_columns(res, i)
        for j in cols:
            src = int(res.index[i, j])
            color = _SOURCE_COLORS[j % len(_SOURCE_COLORS)]
            role = "anchor" if j == 0 and res.k <= 2 else ("partner" if res.k == 2 else "source")
            ax.plot(t, xin[src].numpy(), color=color, lw=3.0, alpha=0.45,
                    label=_source_legend(role, src, float(res.weights[i, j]), y, class_names))
            if sal is not None and bool(have[src]):
                ax_sal.plot(t, _norm01(sal[src]).numpy(), color=color, lw=1.2)
        ax.plot(t, xmix[i].numpy(), color="black", lw=1.2, label="mixed")
        box = _box_of(res, i)
        if box is not None:
            ax.axvspan(box[0][0] - 0.5, box[1][0] - 0.5, color="cyan", alpha=0.15)
        ax.legend(fontsize=6.5, loc="best", framealpha=0.7)
        ax.set_title(_weights_caption(res, i, y, class_names, cols).replace("\n", " "), fontsize=8.5)
        ax_sal.set_ylabel("saliency", fontsize=7)
        if mask is not None and res.k > 2:
            ax_m.stackplot(t, *[mask[i, j].numpy() for j in cols],
                           colors=[_SOURCE_COLORS[j % len(_SOURCE_COLORS)] for j in cols], alpha=0.6, step="mid")
            ax_m.set_ylabel("shares", fontsize=7)
        else:
            curve = _share_values(_anchor_share(res, [i])[0], (length,))
            ax_m.fill_between(t, 0, curve.numpy(), step="mid", color="tab:blue", alpha=0.35)
            ax_m.set_ylabel("anchor\nshare", fontsize=7)
            ax_m.set_title(f"mean share {float(curve.mean()):.2f}", fontsize=7.5)
        ax_m.set_ylim(-0.05, 1.05)
        for a in (ax, ax_sal, ax_m):
            a.tick_params(labelsize=7)
    return fig
