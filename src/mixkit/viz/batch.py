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
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import torch
from torch import Tensor

from ..result import MixResult

__all__ = ["show", "show_grid", "show_1d", "show_hidden", "show_saliency", "capture_hidden", "mask_gallery",
           "weight_text", "DPI"]

#: resolution of the saved PNGs
DPI = 110

MixerLike = Union[str, Any]


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def _make_mixer(mixer_or_name: MixerLike, params: Optional[Mapping[str, Any]]):
    if isinstance(mixer_or_name, str):
        from .. import registry

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
    if result is None and getattr(mixer, "runs_model", False):
        raise ValueError(
            f"{type(mixer).__name__} mixes inside the model (runs_model=True): its result's inputs are the unmixed "
            "batch, so show_grid/show_1d would draw nothing mixed; use show_hidden (or show, which dispatches)")
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
    fig, grid = _block_grid(rows, ncols, blocks or (2 if len(rows) >= 4 else 1), panel_size, 0.6, 0.5, 0.7)
    mask_im = None
    for block_rows, axes, sf, last in grid:
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
        if last and mask_im is not None:
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
    fig, gs, ncols = _stacked_grid(len(rows), [3, 1], ncols, size=(4.6, 2.9), top=0.5)
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
    """:func:`show_hidden` for mixers that run the model (Manifold Mixup, PatchUp), :func:`show_1d` for
    sequences ``(B, C, L)``, :func:`show_grid` for images and volumes.

    Saliency-guided mixers can also be drawn with their saliency maps by :func:`show_saliency`."""
    if getattr(mixer_or_name, "runs_model", False):
        return show_hidden(mixer_or_name, x, y, class_names, n or (4 if x.dim() == 3 else 8), generator, out, **kw)
    if isinstance(x, Tensor) and x.dim() == 3:
        return show_1d(mixer_or_name, x, y, class_names, n or 4, generator, out, **kw)
    return show_grid(mixer_or_name, x, y, class_names, n or 8, generator, out, **kw)


# ------------------------------------------------------------------------------------------------
# model-aware mixers: hidden-layer mixing
# ------------------------------------------------------------------------------------------------
_SOURCE_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
                  "tab:olive", "tab:cyan", "tab:gray")


def _first_tensor(value: Any) -> Optional[Tensor]:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for v in value:
            if isinstance(v, Tensor):
                return v
    return None


def capture_hidden(mixer, x: Tensor, y: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
                   forward=None):
    """Run a hidden-layer mixer (``runs_model = True``) once and record the layer it mixed.

    Returns ``(res, before, after)``: the mixer's :class:`~mixkit.MixResult` and the hidden state of the
    mixed layer (``res.params["layer"]``) as the network computed it (``before``) and as the rest of the
    network received it (``after``), detached float32 CPU copies ``(B, C, *spatial)``. When nothing was
    mixed (``layer`` None: B = 1 or the ``p`` coin failed in batch mode) both are None.

    The forward pass runs through a wrapper given as ``mixer.mix(..., forward=wrapper)`` (the documented
    way to run a hidden-layer mixer through a wrapper of its model, e.g. DDP). When the mixer calls the
    wrapper, its own hook is already in place, so the wrapper adds, on every candidate layer, a forward
    hook placed *before* the mixer's (``prepend=True``: the unmixed output) and one *after* it (the mixed
    output); for ``"input"`` it records the batch it was given and, with a model pre-hook registered after
    the mixer's, the mixed batch. Every hook is removed when the wrapper returns or raises; the mixer and
    the model are used exactly as in training (same draws for the same generator).

    Args:
        mixer: a :class:`~mixkit.mixers.manifold.HiddenLayerMixer` (ManifoldMixup, PatchUp) or any mixer
            with ``runs_model``, ``model``, ``layers`` and ``mix(x, y, generator=, forward=)``.
        forward: the callable that runs the model (default ``mixer.model``).
    """
    from ..hooks import INPUT, get_module

    model = mixer.model
    run = model if forward is None else forward
    rec: Dict[Any, Tensor] = {}

    def keep(key, t: Optional[Tensor]) -> None:
        if t is not None and key not in rec:  # first call of the pass only
            rec[key] = t.detach().float().cpu().clone()

    def wrapper(inp: Tensor):
        handles = []
        try:
            for name in mixer.layers:
                if name == INPUT:
                    keep(("before", INPUT), inp)
                    handles.append(model.register_forward_pre_hook(
                        lambda mod, args: keep(("after", INPUT), _first_tensor(args))))
                else:
                    mod = get_module(model, name)
                    handles.append(mod.register_forward_hook(
                        lambda m, a, o, _n=name: keep(("before", _n), _first_tensor(o)), prepend=True))
                    handles.append(mod.register_forward_hook(
                        lambda m, a, o, _n=name: keep(("after", _n), _first_tensor(o))))
            return run(inp)
        finally:
            for h in handles:
                h.remove()

    res = mixer.mix(x, y, generator=generator, forward=wrapper)
    layer = res.params.get("layer")
    if layer is None:
        return res, None, None
    return res, rec.get(("before", layer)), rec.get(("after", layer))


def _wrap_lines(text: str, width: int = 110) -> List[str]:
    """``text`` wrapped at ``width``, keeping its own line breaks."""
    return [w for line in text.split("\n") for w in (textwrap.wrap(line, width) or [""])]


def _hidden_share(res: MixResult, shape: Sequence[int]) -> Tensor:
    """The anchor's share of every element of the mixed hidden state, float32 CPU, of ``shape``.

    PatchUp (``params["keep"]``): the keep mask (hard, and input CutMix), or ``keep + (1 - keep) * lam``
    (soft). Otherwise (Manifold Mixup) the anchor's weight, constant over the layer.
    """
    shape = tuple(shape)
    b = shape[0]
    ones = (1,) * (len(shape) - 1)
    keep = res.params.get("keep")
    if isinstance(keep, Tensor):
        s = keep.detach().float().cpu()
        if res.params.get("patchup_type") == "soft":
            lam_b = res.params["lam_b"].detach().float().cpu().reshape(-1, *ones)
            s = s + (1.0 - s) * lam_b
        return s.expand(shape).clone()
    return res.weights[:, 0].detach().float().cpu().reshape(b, *ones).expand(shape).clone()


def _pick_channels(h_a: Tensor, h_p: Tensor, share: Tensor) -> Tensor:
    """Per row, the channel where anchor and partner differ most inside the mixed region ``(B,)``."""
    diff = (h_a - h_p).abs()
    inside = (diff * (1.0 - share)).flatten(2).sum(2)
    anywhere = diff.flatten(2).sum(2)
    energy = h_a.abs().flatten(2).sum(2)
    score = torch.where(inside.amax(1, keepdim=True) > 0, inside,
                        torch.where(anywhere.amax(1, keepdim=True) > 0, anywhere, energy))
    return score.argmax(1)


def show_hidden(mixer, x: Tensor, y: Optional[Tensor] = None, class_names: Optional[Sequence[str]] = None,
                n: int = 8, generator: Optional[torch.Generator] = None,
                out: Optional[Union[str, os.PathLike]] = None, *, forward=None, title: Optional[str] = None,
                panel_size: float = 1.35, blocks: Optional[int] = None):
    """Draw a hidden-layer mixer (Manifold Mixup, PatchUp): inputs, the mixed layer before and after, the share.

    The mixer runs the model once (:func:`capture_hidden` records the mixed layer). For images, each of
    the first ``n`` rows shows the anchor and partner inputs, one channel of the hidden state of each
    source at the mixed layer, the same channel of the mixed hidden state (its title prints the label
    weights) and the anchor's share of that channel (PatchUp: the block keep mask, 1 = anchor kept,
    0 = partner's block; Manifold Mixup: constant lambda). The channel is chosen per row as the one where
    the two sources differ most inside the mixed region; the three feature panels of a row share one
    colour scale. The share panel prints the mean over *all* channels, which equals the anchor's label
    weight. For sequences ``(B, C, L)`` the same quantities are drawn as curves.

    The figure title names the mixed layer and its shape, and prints
    ``max |h_mix - (s * h_a + (1 - s) * h_p)|`` over the whole layer: the recorded mixed state against
    the one the share predicts (0 up to rounding when picture and numbers agree).

    Args:
        mixer: a mixer with ``runs_model = True`` holding its model (e.g. ``mixkit.ManifoldMixup(net)``).
            The model's train/eval state is used as it is (put it in eval mode for BatchNorm statistics).
        x: ``(B, C, H, W)`` images or ``(B, C, L)`` sequences, as fed to the model.
        y, class_names, generator, out, title: as :func:`show_grid`.
        n: rows drawn (default 8; 4 is better for sequences).
        forward: callable that runs the model (default ``mixer.model``).
        panel_size: inches per panel.
        blocks: side-by-side groups of rows (images; default 2 for ``n >= 4``).

    Returns:
        A figure with ``fig.mixkit_result`` (the :class:`MixResult`: ``outputs`` are the logits) and
        ``fig.mixkit_hidden``: ``{"layer", "before", "after", "share", "channels", "max_error"}``.
    """
    from matplotlib.figure import Figure

    if not getattr(mixer, "runs_model", False) or not isinstance(getattr(mixer, "model", None), torch.nn.Module):
        raise TypeError(f"show_hidden draws mixers that run the model (runs_model=True, e.g. ManifoldMixup, PatchUp), "
                        f"got {type(mixer).__name__}; use show_grid / show_1d / show_saliency")
    x = _check_x(x, (1, 2), "show_hidden")
    b = x.shape[0]
    y = _check_y(y, b)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    res, before, after = capture_hidden(mixer, x, y, generator, forward)
    layer = res.params.get("layer")
    if before is None or after is None:
        before = after = x.detach().float().cpu()
    if before.dim() != x.dim():
        raise ValueError(f"show_hidden draws hidden states with the input's spatial dims; layer {layer!r} gave shape "
                         f"{tuple(before.shape)} for inputs {tuple(x.shape)}")
    share = _hidden_share(res, before.shape)
    partner = res.index[:, 1].detach().cpu() if res.k >= 2 else torch.arange(b)
    h_a, h_p = before, before[partner]
    err = float((after - (share * h_a + (1.0 - share) * h_p)).abs().max())
    chans = _pick_channels(h_a, h_p, share)
    rows = list(range(min(n, b)))
    lname = "not mixed" if layer is None else str(layer)
    info = dict(layer=layer, before=before, after=after, share=share, channels=chans, max_error=err)
    if x.dim() == 4:
        fig = _hidden_2d(Figure, res, x, y, class_names, rows, info, panel_size, blocks)
    else:
        fig = _hidden_1d(Figure, res, x, y, class_names, rows, info)
    scale = float(before.abs().max()) or 1.0
    head = title if title is not None else mixer_text(mixer)
    lines = [f"mixed at {lname!r}, hidden state {tuple(before.shape)}; each row: the channel where the sources differ "
             "most in the mixed region",
             f"check: max |h_mix - (s*h_a + (1-s)*h_p)| = {err:.1e} over the whole layer (max |h| = {scale:.2g})"]
    if layer is None:
        lines = ["nothing was mixed (the p coin failed or B = 1): the model ran on the clean batch"]
    fig.suptitle("\n".join(_wrap_lines(head) + lines), fontsize=9)
    fig.mixkit_result = res
    fig.mixkit_hidden = info
    _save(fig, out)
    return fig


def _share_title(res: MixResult, i: int, c: int, share_i: Tensor) -> str:
    w = float(res.weights[i, 0])
    if "keep" in res.params and res.params.get("patchup_type") in ("hard", "soft"):
        return f"block mask, ch {c}\nmean(all ch) = {w:.2f}"
    if float(share_i.max() - share_i.min()) == 0.0:
        return f"anchor share\nconstant = {w:.2f}"
    return f"anchor share\nmean = {w:.2f}"


def _hidden_2d(Figure, res, x, y, class_names, rows, info, panel_size, blocks):
    before, after, share, chans = info["before"], info["after"], info["share"], info["channels"]
    layer = info["layer"]
    lname = "input" if layer in (None, "input") else str(layer)
    xin = x.detach().float().cpu()
    lo, hi = _display_range(xin)
    cmap = "gray" if x.shape[1] < 3 else None
    k = res.k
    ncols = 6
    fig, grid = _block_grid(rows, ncols, blocks or (2 if len(rows) >= 4 else 1), panel_size, 0.7, 0.55, 1.0)
    share_im = None
    for block_rows, axes, sf, last in grid:
        for r, i in enumerate(block_rows):
            c = int(chans[i])
            p = int(res.index[i, 1]) if k >= 2 else i
            for j, src in enumerate((i, p)):
                ax = axes[r, j]
                if j == 1 and k < 2:
                    ax.set_axis_off()
                    continue
                ax.imshow(_to_image(xin[src], lo, hi), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
                ax.set_title(_source_title(res, i, j, y, class_names), fontsize=7.5)
            maps = [before[i, c], before[p, c], after[i, c]]
            flo = min(float(m.min()) for m in maps)
            fhi = max(float(m.max()) for m in maps)
            fhi = fhi if fhi > flo else flo + 1.0
            for j, (m, ttl) in enumerate(zip(maps, (f"{lname} of anchor\nch {c}", f"{lname} of partner\nch {c}",
                                                      None))):
                ax = axes[r, 2 + j]
                ax.imshow(m.numpy(), cmap="magma", vmin=flo, vmax=fhi, interpolation="nearest")
                if ttl is None:
                    one = weight_text(res, i, y, class_names)
                    ttl = f"mixed {lname}, ch {c}\n" + (one if len(one) <= 26 else
                                                         weight_text(res, i, y, class_names, sep="\n+ "))
                    ax.set_title(ttl, fontsize=7.5, fontweight="bold")
                else:
                    ax.set_title(ttl, fontsize=7.5)
            ax = axes[r, 5]
            s = share[i, c]
            share_im = ax.imshow(s.numpy(), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(_share_title(res, i, c, share[i]), fontsize=7.5)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
        if last and share_im is not None:
            cb = sf.colorbar(share_im, ax=list(axes[:, 5]), shrink=0.6, aspect=30, pad=0.03)
            cb.set_label("anchor's share of the hidden state", fontsize=7.5)
            cb.ax.tick_params(labelsize=7)
    return fig


def _hidden_1d(Figure, res, x, y, class_names, rows, info):
    before, after, share, chans = info["before"], info["after"], info["share"], info["channels"]
    layer = info["layer"]
    lname = "input" if layer in (None, "input") else str(layer)
    xin = x.detach().float().cpu()[:, 0]
    k = res.k
    fig, gs, ncols = _stacked_grid(len(rows), [2, 2, 1])
    for r, i in enumerate(rows):
        gr, gc = divmod(r, ncols)
        c = int(chans[i])
        p = int(res.index[i, 1]) if k >= 2 else i
        ax_in = fig.add_subplot(gs[3 * gr, gc])
        ax_h = fig.add_subplot(gs[3 * gr + 1, gc])
        ax_s = fig.add_subplot(gs[3 * gr + 2, gc], sharex=ax_h)
        for j, src in enumerate((i, p)[:max(1, min(k, 2))]):
            role = "anchor" if j == 0 else "partner"
            ax_in.plot(xin[src].numpy(), color=_SOURCE_COLORS[j], lw=1.4,
                       label=f"{role} {_label(src, y, class_names)} (w={float(res.weights[i, j]):.2f})")
            ax_h.plot(before[src, c].numpy(), color=_SOURCE_COLORS[j], lw=3.0, alpha=0.45)
        ax_h.plot(after[i, c].numpy(), color="black", lw=1.2, label="mixed")
        ax_in.legend(fontsize=7, loc="best", framealpha=0.7)
        ax_in.set_title(f"inputs    mixed: {weight_text(res, i, y, class_names)}", fontsize=8.5)
        ax_h.set_title(f"{lname}, ch {c}: sources (wide) and mixed (black)", fontsize=8)
        s = share[i, c]
        ax_s.fill_between(range(s.shape[0]), 0, s.numpy(), step="mid", color="tab:blue", alpha=0.35)
        ax_s.set_ylim(-0.05, 1.05)
        ax_s.set_ylabel("anchor\nshare", fontsize=7)
        ax_s.set_title(_share_title(res, i, c, share[i]).replace("\n", "   "), fontsize=7.5)
        for ax in (ax_in, ax_h, ax_s):
            ax.tick_params(labelsize=7)
    return fig


# ------------------------------------------------------------------------------------------------
# model-aware mixers: saliency-guided mixing
# ------------------------------------------------------------------------------------------------
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


def _owner_rgb(mask_i: Tensor, cols: Sequence[int]):
    """``(k, H, W)`` per-source shares -> an RGB image mixing the sources' colours by share."""
    from matplotlib.colors import to_rgb

    rgb = torch.zeros(3, *mask_i.shape[1:])
    for j in cols:
        col = torch.tensor(to_rgb(_SOURCE_COLORS[j % len(_SOURCE_COLORS)]), dtype=torch.float32).view(3, 1, 1)
        rgb = rgb + col * mask_i[j].unsqueeze(0)
    return rgb.clamp(0, 1).permute(1, 2, 0).numpy()


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
    from matplotlib.figure import Figure

    mixer = _make_mixer(mixer_or_name, params)
    x = _check_x(x, (1, 2), "show_saliency")
    y_raw = y
    y = _check_y(y, x.shape[0])
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    res = _run(mixer, x, y_raw, generator, result)
    sal, have, note = _saliency_maps(mixer, res, x, y_raw, saliency)
    rows = list(range(min(n, x.shape[0])))
    if x.dim() == 4:
        fig = _saliency_2d(Figure, res, x, y, class_names, rows, sal, have, panel_size, blocks)
    else:
        fig = _saliency_1d(Figure, res, x, y, class_names, rows, sal, have)
    head = title if title is not None else mixer_text(mixer)
    fig.suptitle("\n".join(_wrap_lines(head) + [note]), fontsize=9)
    fig.mixkit_result = res
    fig.mixkit_saliency = sal
    fig.mixkit_saliency_available = have
    _save(fig, out)
    return fig


def _terms_text(res: MixResult, i: int, cols: Sequence[int], y, class_names) -> str:
    """The label mix of row ``i`` restricted to the columns ``cols`` (the sources with a share)."""
    w = res.weights[i].detach().float().cpu()
    terms = [f"{float(w[j]):.2f}·{_label(int(res.index[i, j]), y, class_names)}" for j in cols]
    one = " + ".join(terms)
    return one if len(one) <= 26 else "\n+ ".join(terms)


def _saliency_2d(Figure, res, x, y, class_names, rows, sal, have, panel_size, blocks):
    from matplotlib.patches import Rectangle

    xin = x.detach().float().cpu()
    xmix = res.inputs.detach().float().cpu()
    lo, hi = _display_range(xin, xmix)
    cmap = "gray" if x.shape[1] < 3 else None
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
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
        for r, i in enumerate(block_rows):
            cols = used[i]
            many = res.k > 2
            box = _box_of(res, i)
            for c, j in enumerate(cols):
                src = int(res.index[i, j])
                ax = axes[r, 2 * c]
                ax.imshow(_to_image(xin[src], lo, hi), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
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
            ax.imshow(_to_image(xmix[i], lo, hi), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            ax.set_title("mixed\n" + _terms_text(res, i, cols, y, class_names), fontsize=7.5, fontweight="bold")
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
                if s.dim() == 0:
                    img = torch.full(tuple(x.shape[-2:]), float(s))
                    ttl = f"anchor share\nconstant = {float(s):.2f}"
                else:
                    img = s
                    ttl = f"anchor share{grid_txt}\nmean = {float(s.mean()):.2f}"
                share_im = ax.imshow(img.numpy(), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
                ax.set_title(ttl, fontsize=7.5)
        if last and share_im is not None:
            cb = sf.colorbar(share_im, ax=list(axes[:, ncols - 1]), shrink=0.6, aspect=30, pad=0.03)
            cb.set_label("anchor's per-pixel share", fontsize=7.5)
            cb.ax.tick_params(labelsize=7)
    return fig


def _saliency_1d(Figure, res, x, y, class_names, rows, sal, have):
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
                    label=f"{role} {_label(src, y, class_names)} (w={float(res.weights[i, j]):.2f})")
            if sal is not None and bool(have[src]):
                ax_sal.plot(t, _norm01(sal[src]).numpy(), color=color, lw=1.2)
        ax.plot(t, xmix[i].numpy(), color="black", lw=1.2, label="mixed")
        box = _box_of(res, i)
        if box is not None:
            ax.axvspan(box[0][0] - 0.5, box[1][0] - 0.5, color="cyan", alpha=0.15)
        ax.legend(fontsize=6.5, loc="best", framealpha=0.7)
        ax.set_title(_terms_text(res, i, cols, y, class_names).replace("\n", " "), fontsize=8.5)
        ax_sal.set_ylabel("saliency", fontsize=7)
        if mask is not None and res.k > 2:
            ax_m.stackplot(t, *[mask[i, j].numpy() for j in cols],
                           colors=[_SOURCE_COLORS[j % len(_SOURCE_COLORS)] for j in cols], alpha=0.6, step="mid")
            ax_m.set_ylabel("shares", fontsize=7)
        else:
            s = _anchor_share(res, [i])[0]
            curve = torch.full((length,), float(s)) if s.dim() == 0 else s
            ax_m.fill_between(t, 0, curve.numpy(), step="mid", color="tab:blue", alpha=0.35)
            ax_m.set_ylabel("anchor\nshare", fontsize=7)
            ax_m.set_title(f"mean share {float(curve.mean()):.2f}", fontsize=7.5)
        ax_m.set_ylim(-0.05, 1.05)
        for a in (ax, ax_sal, ax_m):
            a.tick_params(labelsize=7)
    return fig


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
            from .. import registry

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
