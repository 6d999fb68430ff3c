"""Pictures of a mixed batch of inputs: images and volumes (:func:`show_grid`), sequences (:func:`show_1d`),
and :func:`show`, which picks the picture for the mixer and the input."""
from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Sequence, Union

import torch
from torch import Tensor

from ..result import MixResult
from .hidden import show_hidden
from .learned import show_learned
from .layout import (_SOURCE_COLORS, _block_grid, _colorbar, _finish, _ImageScale, _no_ticks, _share_caption,
                     _share_image, _share_values, _sources_and_mix, _stacked_grid)
from .prepare import MixerLike, _anchor_share, _check_n, _check_x, _check_y, _make_mixer, _run
from .text import _role, _source_legend, _title, weight_text


def show_grid(mixer_or_name: MixerLike, x: Tensor, y: Optional[Tensor] = None,
              class_names: Optional[Sequence[str]] = None, n: int = 8,
              generator: Optional[torch.Generator] = None, out: Optional[Union[str, os.PathLike]] = None, *,
              params: Optional[Mapping[str, Any]] = None, result: Optional[MixResult] = None,
              title: Optional[str] = None, panel_size: float = 1.6, blocks: Optional[int] = None):
    """Draw a mixed batch of images: for each of the first ``n`` rows, the sources, the mix and the mask.

    Columns: the ``k`` sources (the anchor ``x[i]`` first, then its partner(s) ``x[index[i, j]]``), the
    mixed image ``res.inputs[i]`` and the anchor's per-pixel share ``res.mask[i, 0]`` (for pure
    interpolation, where ``mask`` is None, a constant panel at the anchor's weight). The mixed panel's
    title prints the label weights, e.g. ``"0.73·'3' + 0.27·'8'"`` (:func:`weight_text`); each source
    panel prints its class, batch index and weight; the mask panel prints the share's mean, which must
    equal the anchor's weight.

    Args:
        mixer_or_name: a mixer (e.g. ``mixkit.CutMix(mode="sample")``) or a registry name (``"cutmix"``),
            created with :func:`mixkit.registry.create` and ``params``.
        x: ``(B, C, H, W)`` (or ``(B, C, D, H, W)``: the middle depth slice is drawn) float images, any
            range: the display maps the batch's min..max to black..white; 1 channel is drawn in gray,
            3 or more as RGB (first 3 channels). Small images are drawn with nearest-neighbour
            upsampling (no smoothing), so 8x8 digits show their real pixels.
        y: ``(B,)`` class ids (or ``(B, K)`` probabilities: the top class is shown), optional.
        class_names: names of the classes, indexed by class id.
        n: number of rows drawn (the first ``n`` of the batch; the whole batch is mixed, so a partner
            may be a sample that is not drawn as an anchor).
        generator: ``torch.Generator`` for the mixer's draws (same seed, same picture).
        out: path of a PNG to write (directories are created).
        params: constructor arguments when the mixer is given by name.
        result: draw this :class:`~mixkit.MixResult` of ``x`` instead of mixing again.
        title: figure title (default: the mixer's repr).
        panel_size: inches per panel.
        blocks: number of side-by-side groups of rows (default 2 for ``n >= 4``, else 1).

    Returns:
        A :class:`matplotlib.figure.Figure`, with the drawn result as ``fig.mixkit_result``.
    """
    mixer = _make_mixer(mixer_or_name, params)
    x = _check_x(x, (2, 3), "show_grid")
    y = _check_y(y, x.shape[0])
    _check_n(n)
    res = _run(mixer, x, y, generator, result)
    rows = list(range(min(n, x.shape[0])))
    k = res.k
    share = _anchor_share(res, rows)  # indexed by row position == sample index (rows start at 0)
    xin = x.detach().float().cpu()
    xmix = res.inputs.detach().float().cpu()
    scale = _ImageScale(xin, xmix)
    ncols = k + 2
    fig, grid = _block_grid(rows, ncols, blocks or (2 if len(rows) >= 4 else 1), panel_size, 0.6, 0.5, 0.7)
    mask_im = None
    for block_rows, axes, sf, last in grid:
        for r, i in enumerate(block_rows):
            _sources_and_mix(axes, r, i, res, scale, xin, xmix, y, class_names, 8)
            ax = axes[r, k + 1]
            s = share[i]
            mask_im = ax.imshow(_share_image(s, x.shape[-2:]).numpy(), cmap="viridis", vmin=0, vmax=1,
                                interpolation="nearest")
            ax.set_title(_share_caption(s), fontsize=8)
        _no_ticks(axes.flat)
        if last and mask_im is not None:
            _colorbar(sf, mask_im, axes[:, k + 1], "anchor's per-pixel share", 8)
    note = " (middle depth slice)" if x.dim() == 5 else ""
    return _finish(fig, title if title is not None else _title(mixer, note), out, result=res)


def show_1d(mixer_or_name: MixerLike, x: Tensor, y: Optional[Tensor] = None,
            class_names: Optional[Sequence[str]] = None, n: int = 4,
            generator: Optional[torch.Generator] = None, out: Optional[Union[str, os.PathLike]] = None, *,
            params: Optional[Mapping[str, Any]] = None, result: Optional[MixResult] = None,
            title: Optional[str] = None, channel: int = 0, ncols: Optional[int] = None):
    """Draw a mixed batch of sequences ``(B, C, L)``: sources, mixed sequence and the share curve.

    For each of the first ``n`` rows, the upper axis plots the sources (wide translucent lines: the
    anchor in blue, the partner in orange) and the mixed sequence (thin black, so where it runs inside
    a source's band it was taken from that source), the lower axis the anchor's per-position share
    (a flat line at the anchor's weight for pure interpolation). The title prints the label weights
    (:func:`weight_text`) and the mean share, which must equal the anchor's weight.

    Args:
        mixer_or_name, y, class_names, generator, out, params, result, title: as :func:`show_grid`.
        x: ``(B, C, L)`` float sequences.
        n: number of samples drawn (default 4).
        channel: which channel to plot when ``C > 1``.
        ncols: samples per figure row (default 2, or 1 for a single sample).

    Returns:
        A :class:`matplotlib.figure.Figure`, with the drawn result as ``fig.mixkit_result``.
    """
    mixer = _make_mixer(mixer_or_name, params)
    x = _check_x(x, (1,), "show_1d")
    y = _check_y(y, x.shape[0])
    _check_n(n)
    if not 0 <= channel < x.shape[1]:
        raise ValueError(f"channel must be in [0, {x.shape[1] - 1}], got {channel}")
    res = _run(mixer, x, y, generator, result)
    rows = list(range(min(n, x.shape[0])))
    share = _anchor_share(res, rows)
    xin = x.detach().float().cpu()[:, channel]
    xmix = res.inputs.detach().float().cpu()[:, channel]
    length = x.shape[-1]
    t = torch.arange(length).numpy()
    fig, gs, ncols = _stacked_grid(len(rows), [3, 1], ncols, size=(4.6, 2.9), top=0.5)
    colors = _SOURCE_COLORS[:5]
    for r, i in enumerate(rows):
        gr, gc = divmod(r, ncols)
        ax = fig.add_subplot(gs[2 * gr, gc])
        axm = fig.add_subplot(gs[2 * gr + 1, gc], sharex=ax)
        for j in range(res.k):
            src = int(res.index[i, j])
            ax.plot(t, xin[src].numpy(), color=colors[j % len(colors)], lw=3.0, alpha=0.45,
                    solid_capstyle="round",
                    label=_source_legend(_role(res, j), src, float(res.weights[i, j]), y, class_names))
        ax.plot(t, xmix[i].numpy(), color="black", lw=1.3, label="mixed")
        ax.legend(fontsize=7, loc="best", framealpha=0.7)
        ax.tick_params(labelsize=7, labelbottom=False)
        s = share[r]
        curve = _share_values(s, (length,))
        mean_txt = f"constant share {float(s):.2f}" if s.dim() == 0 else f"mean share {float(s.mean()):.2f}"
        ax.set_title(f"{weight_text(res, i, y, class_names)}   [{mean_txt}]", fontsize=8.5)
        axm.fill_between(t, 0, curve.numpy(), step="mid", color="tab:blue", alpha=0.35)
        axm.plot(t, curve.numpy(), color="tab:blue", lw=1.0, drawstyle="steps-mid")
        axm.set_ylim(-0.05, 1.05)
        axm.set_yticks([0, 0.5, 1])
        axm.set_ylabel("anchor\nshare", fontsize=7)
        axm.tick_params(labelsize=7)
        axm.set_xlabel("position", fontsize=7)
    extra = f" (channel {channel})" if x.shape[1] > 1 else ""
    return _finish(fig, title if title is not None else _title(mixer, extra), out, result=res)


def show(mixer_or_name: MixerLike, x: Tensor, y: Optional[Tensor] = None,
         class_names: Optional[Sequence[str]] = None, n: Optional[int] = None,
         generator: Optional[torch.Generator] = None, out: Optional[Union[str, os.PathLike]] = None, **kw):
    """:func:`show_learned` for learners (AutoMix, AdAutoMix), :func:`show_hidden` for mixers that run the
    model (Manifold Mixup, PatchUp), :func:`show_1d` for sequences ``(B, C, L)``, :func:`show_grid` for
    images and volumes.

    Saliency-guided mixers can also be drawn with their saliency maps by :func:`show_saliency`."""
    if getattr(mixer_or_name, "learned", False):
        return show_learned(mixer_or_name, x, y, class_names, n, generator, out, **kw)
    if getattr(mixer_or_name, "runs_model", False):
        return show_hidden(mixer_or_name, x, y, class_names, n or (4 if x.dim() == 3 else 8), generator, out, **kw)
    if isinstance(x, Tensor) and x.dim() == 3:
        return show_1d(mixer_or_name, x, y, class_names, n or 4, generator, out, **kw)
    return show_grid(mixer_or_name, x, y, class_names, n or 8, generator, out, **kw)
