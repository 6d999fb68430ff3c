"""Pictures of mixed batches: sources, mixed sample, mask and label weights side by side.

Looking at the output is how many mixing bugs are found (an H/W swap makes every FMix mask a vertical
block, a clipped CutMix box carries the wrong label, a hook mixes nothing). The functions here draw a
mixer's *actual* :class:`~mixkit.MixResult` and print its label weights on the panels, so the picture
and the numbers can be checked against each other.

* :func:`show_grid` -- images ``(B, C, H, W)`` (or volumes, middle slice): one row per sample with the
  k sources, the mixed image and the anchor's per-pixel share.
* :func:`show_1d` -- sequences ``(B, C, L)``: the sources, the mixed sequence and the share curve.
* :func:`show` -- dispatches to one of the two by the number of spatial dims.
* :func:`mask_gallery` -- the anchor-share maps of one or several methods, one row per method.
* :func:`weight_text` -- the ``"0.73·'3' + 0.27·'8'"`` string printed on the panels.

matplotlib is imported inside the functions (``import mixkit`` needs only torch). Figures are built
with :class:`matplotlib.figure.Figure` directly, without pyplot, so nothing is left open in pyplot's
global state and no GUI backend is needed; they display inline in Jupyter. Every function returns the
figure and, with ``out=``, also saves it as a PNG (dpi 110; the constrained layout keeps the panels and titles tight). The
:class:`~mixkit.MixResult` drawn is attached as ``fig.mixkit_result`` (``fig.mixkit_results``, a
``{name: result}`` dict, for :func:`mask_gallery`).
"""
from __future__ import annotations

import os
import re
import textwrap
from typing import Any, Dict, Mapping, Optional, Sequence, Union

import torch
from torch import Tensor

from .result import MixResult

__all__ = ["show", "show_grid", "show_1d", "mask_gallery", "weight_text", "DPI"]

#: resolution of the saved PNGs
DPI = 110

MixerLike = Union[str, Any]


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def _make_mixer(mixer_or_name: MixerLike, params: Optional[Mapping[str, Any]]):
    if isinstance(mixer_or_name, str):
        from . import registry

        return registry.create(mixer_or_name, **dict(params or {}))
    if not hasattr(mixer_or_name, "mix"):
        raise TypeError(
            f"mixer_or_name must be a mixer (with a .mix method) or a registered method name, "
            f"got {type(mixer_or_name).__name__}")
    if params:
        raise ValueError("params= only applies when the mixer is given by name; configure the mixer object instead")
    return mixer_or_name


def _check_x(x: Tensor, dims: Sequence[int], fn: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}; convert images first, e.g. x.float() / 255")
    n_sp = x.dim() - 2
    if n_sp not in dims:
        other = "show_1d" if n_sp == 1 else "show_grid"
        raise ValueError(
            f"{fn} draws inputs with {' or '.join(map(str, dims))} spatial dims; got x of shape {tuple(x.shape)} "
            f"({n_sp} spatial dims) -- use {other} (or show, which picks the right one)")
    return x


def _check_y(y: Optional[Tensor], b: int) -> Optional[Tensor]:
    if y is None:
        return None
    if not isinstance(y, Tensor):
        y = torch.as_tensor(y)
    if y.shape[0] != b:
        raise ValueError(f"y has {y.shape[0]} rows but x has B={b}")
    if y.dim() == 2 and y.is_floating_point():
        return y.argmax(1)  # probabilities / one-hot: show the top class
    if y.dim() != 1:
        raise ValueError(f"y must be class ids (B,) or probabilities (B, K), got shape {tuple(y.shape)}")
    return y.long()


def _run(mixer, x: Tensor, y: Optional[Tensor], generator, result: Optional[MixResult]) -> MixResult:
    if result is not None:
        if not isinstance(result, MixResult):
            raise TypeError(f"result must be a MixResult, got {type(result).__name__}")
        if result.batch_size != x.shape[0]:
            raise ValueError(f"result has B={result.batch_size} rows but x has B={x.shape[0]}")
        return result
    if getattr(mixer, "needs_labels", False):
        if y is None:
            raise ValueError(f"{type(mixer).__name__} needs the labels: pass y")
        return mixer.mix(x, y, generator=generator)
    return mixer.mix(x, generator=generator)


def _label(src: int, y: Optional[Tensor], class_names: Optional[Sequence[str]]) -> str:
    if y is None:
        return f"x[{src}]"
    c = int(y[src])
    if class_names is not None and 0 <= c < len(class_names):
        return f"'{class_names[c]}'"
    return f"'{c}'"


def weight_text(res: MixResult, i: int, y: Optional[Tensor] = None,
                class_names: Optional[Sequence[str]] = None, sep: str = " + ", digits: int = 2) -> str:
    """The label mix of row ``i`` as printed on the panels, e.g. ``"0.73·'3' + 0.27·'8'"``.

    One term per source (column of ``res.index``), in column order (the anchor first), with its
    realised weight ``res.weights[i, j]`` to ``digits`` decimals and its class (``class_names[y]``
    when given, the class id otherwise, ``x[j]`` without labels).
    """
    y = _check_y(y, res.batch_size)
    w = res.weights[i].detach().float().cpu()
    idx = res.index[i].detach().cpu()
    terms = [f"{float(w[j]):.{digits}f}·{_label(int(idx[j]), y, class_names)}" for j in range(idx.shape[0])]
    return sep.join(terms)


def _anchor_share(res: MixResult, rows: Sequence[int]) -> Tensor:
    """Per-pixel share of the anchor ``(n, *spatial)`` float32 on CPU, or ``(n,)`` when there is no mask."""
    m = res.mask
    if m is None:
        return res.weights[list(rows), 0].detach().float().cpu()
    return m[list(rows), 0].detach().float().cpu()


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


def _save(fig, out: Optional[Union[str, os.PathLike]]) -> None:
    if out is None:
        return
    d = os.path.dirname(os.fspath(out))
    if d:
        os.makedirs(d, exist_ok=True)
    fig.savefig(out, dpi=DPI, facecolor="white")  # constrained layout already fits the panels


_NEUTRAL = re.compile(r"(, )?\b(p=1\.0|num_classes=None|smoothing=0\.0)\b")


def mixer_text(mixer) -> str:
    """``Name(args)`` of a mixer without the arguments at their neutral value (p=1, no smoothing, ...)."""
    extra = mixer.extra_repr() if hasattr(mixer, "extra_repr") else ""
    extra = _NEUTRAL.sub("", extra).lstrip(", ")
    return f"{type(mixer).__name__}({extra})"


def _title(mixer, extra: str = "") -> str:
    return "\n".join(textwrap.wrap(mixer_text(mixer) + extra, width=110))


def _mixed_title(res: MixResult, i: int, y, class_names) -> str:
    one_line = weight_text(res, i, y, class_names)
    if len(one_line) <= 26:
        return "mixed\n" + one_line
    return "mixed\n" + weight_text(res, i, y, class_names, sep="\n+ ")


def _source_title(res: MixResult, i: int, j: int, y, class_names) -> str:
    role = "anchor" if j == 0 else ("partner" if res.k == 2 else f"source {j}")
    src = int(res.index[i, j])
    w = float(res.weights[i, j])
    return f"{role} {_label(src, y, class_names)}\nx[{src}], w={w:.2f}"


# ------------------------------------------------------------------------------------------------
# images / volumes
# ------------------------------------------------------------------------------------------------
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
    from matplotlib.figure import Figure

    mixer = _make_mixer(mixer_or_name, params)
    x = _check_x(x, (2, 3), "show_grid")
    y = _check_y(y, x.shape[0])
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    res = _run(mixer, x, y, generator, result)
    rows = list(range(min(n, x.shape[0])))
    k = res.k
    share = _anchor_share(res, rows)  # indexed by row position == sample index (rows start at 0)
    xin = x.detach().float().cpu()
    xmix = res.inputs.detach().float().cpu()
    lo, hi = _display_range(xin, xmix)
    cmap = "gray" if x.shape[1] < 3 else None  # 1 channel (or the mean of 2) in gray, else RGB
    ncols = k + 2
    blocks = blocks or (2 if len(rows) >= 4 else 1)
    per_block = -(-len(rows) // blocks)
    blocks = -(-len(rows) // per_block)
    fig = Figure(figsize=(blocks * ncols * panel_size + 0.6 * blocks, per_block * (panel_size + 0.5) + 0.7),
                 layout="constrained")
    subfigs = fig.subfigures(1, blocks, wspace=0.03, squeeze=False)[0] if blocks > 1 else [fig]
    mask_im = None
    for bi, sf in enumerate(subfigs):
        block_rows = rows[bi * per_block:(bi + 1) * per_block]
        axes = sf.subplots(per_block, ncols, squeeze=False)
        for r in range(len(block_rows), per_block):  # unused panels of a short last block
            for ax in axes[r]:
                ax.set_axis_off()
        for r, i in enumerate(block_rows):
            for j in range(k):
                ax = axes[r, j]
                src = int(res.index[i, j])
                ax.imshow(_to_image(xin[src], lo, hi), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
                ax.set_title(_source_title(res, i, j, y, class_names), fontsize=8)
            ax = axes[r, k]
            ax.imshow(_to_image(xmix[i], lo, hi), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(_mixed_title(res, i, y, class_names), fontsize=8, fontweight="bold")
            ax = axes[r, k + 1]
            s = share[i]
            if s.dim() == 0:  # pure interpolation: one share for every pixel
                img = torch.full(tuple(x.shape[-2:]), float(s))
                ttl = f"anchor share\nconstant = {float(s):.2f}"
            else:
                img = s[s.shape[0] // 2] if s.dim() == 3 else s
                ttl = f"anchor share\nmean = {float(s.mean()):.2f}"
            mask_im = ax.imshow(img.numpy(), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(ttl, fontsize=8)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
        if bi == len(subfigs) - 1 and mask_im is not None:
            cb = sf.colorbar(mask_im, ax=list(axes[:, k + 1]), shrink=0.6, aspect=30, pad=0.03)
            cb.set_label("anchor's per-pixel share", fontsize=8)
            cb.ax.tick_params(labelsize=7)
    note = " (middle depth slice)" if x.dim() == 5 else ""
    fig.suptitle(title if title is not None else _title(mixer, note), fontsize=9)
    fig.mixkit_result = res
    _save(fig, out)
    return fig


# ------------------------------------------------------------------------------------------------
# sequences
# ------------------------------------------------------------------------------------------------
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
    from matplotlib.figure import Figure

    mixer = _make_mixer(mixer_or_name, params)
    x = _check_x(x, (1,), "show_1d")
    y = _check_y(y, x.shape[0])
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    if not 0 <= channel < x.shape[1]:
        raise ValueError(f"channel must be in [0, {x.shape[1] - 1}], got {channel}")
    res = _run(mixer, x, y, generator, result)
    rows = list(range(min(n, x.shape[0])))
    share = _anchor_share(res, rows)
    xin = x.detach().float().cpu()[:, channel]
    xmix = res.inputs.detach().float().cpu()[:, channel]
    length = x.shape[-1]
    t = torch.arange(length).numpy()
    ncols = ncols or (1 if len(rows) == 1 else 2)
    nrows = -(-len(rows) // ncols)
    fig = Figure(figsize=(ncols * 4.6, nrows * 2.9 + 0.5), layout="constrained")
    gs = fig.add_gridspec(2 * nrows, ncols, height_ratios=[3, 1] * nrows)
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    for r, i in enumerate(rows):
        gr, gc = divmod(r, ncols)
        ax = fig.add_subplot(gs[2 * gr, gc])
        axm = fig.add_subplot(gs[2 * gr + 1, gc], sharex=ax)
        for j in range(res.k):
            src = int(res.index[i, j])
            role = "anchor" if j == 0 else ("partner" if res.k == 2 else f"source {j}")
            ax.plot(t, xin[src].numpy(), color=colors[j % len(colors)], lw=3.0, alpha=0.45,
                    solid_capstyle="round",
                    label=f"{role} {_label(src, y, class_names)} (w={float(res.weights[i, j]):.2f})")
        ax.plot(t, xmix[i].numpy(), color="black", lw=1.3, label="mixed")
        ax.legend(fontsize=7, loc="best", framealpha=0.7)
        ax.tick_params(labelsize=7, labelbottom=False)
        s = share[r]
        if s.dim() == 0:
            curve = torch.full((length,), float(s))
            mean_txt = f"constant share {float(s):.2f}"
        else:
            curve = s
            mean_txt = f"mean share {float(s.mean()):.2f}"
        ax.set_title(f"{weight_text(res, i, y, class_names)}   [{mean_txt}]", fontsize=8.5)
        axm.fill_between(t, 0, curve.numpy(), step="mid", color="tab:blue", alpha=0.35)
        axm.plot(t, curve.numpy(), color="tab:blue", lw=1.0, drawstyle="steps-mid")
        axm.set_ylim(-0.05, 1.05)
        axm.set_yticks([0, 0.5, 1])
        axm.set_ylabel("anchor\nshare", fontsize=7)
        axm.tick_params(labelsize=7)
        axm.set_xlabel("position", fontsize=7)
    extra = f" (channel {channel})" if x.shape[1] > 1 else ""
    fig.suptitle(title if title is not None else _title(mixer, extra), fontsize=9)
    fig.mixkit_result = res
    _save(fig, out)
    return fig


def show(mixer_or_name: MixerLike, x: Tensor, y: Optional[Tensor] = None,
         class_names: Optional[Sequence[str]] = None, n: Optional[int] = None,
         generator: Optional[torch.Generator] = None, out: Optional[Union[str, os.PathLike]] = None, **kw):
    """:func:`show_1d` for sequences ``(B, C, L)``, :func:`show_grid` for images and volumes."""
    if isinstance(x, Tensor) and x.dim() == 3:
        return show_1d(mixer_or_name, x, y, class_names, n or 4, generator, out, **kw)
    return show_grid(mixer_or_name, x, y, class_names, n or 8, generator, out, **kw)


# ------------------------------------------------------------------------------------------------
# masks only
# ------------------------------------------------------------------------------------------------
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
            from . import registry

            name = registry.resolve(m)
            kw = {"mode": mode}
            kw.update((params or {}).get(name, {}))
            mixer = registry.create(name, **kw)
        else:
            mixer, name = m, type(m).__name__
        res = mixer.mix(x, generator=generator)
        results[name] = res
        share = _anchor_share(res, range(n))
        for i in range(n):
            ax = axes[r, i]
            s = share[i]
            if one_d:
                curve = torch.full((x.shape[-1],), float(s)) if s.dim() == 0 else s
                ax.fill_between(range(x.shape[-1]), 0, curve.numpy(), step="mid", alpha=0.5)
                ax.set_ylim(0, 1.05)
            else:
                img = torch.full(tuple(x.shape[-2:]), float(s)) if s.dim() == 0 else (s[s.shape[0] // 2] if s.dim() == 3 else s)
                im = ax.imshow(img.numpy(), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(f"w={float(res.weights[i, 0]):.2f}", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(name, fontsize=9, rotation=0, ha="right", va="center")
    if im is not None:
        cb = fig.colorbar(im, ax=list(axes.flat), shrink=0.5, aspect=30, pad=0.01)
        cb.set_label("anchor share", fontsize=8)
        cb.ax.tick_params(labelsize=7)
    fig.suptitle(f"anchor-share masks, mode={mode!r}, w = anchor label weight", fontsize=9)
    fig.mixkit_results = results
    _save(fig, out)
    return fig
