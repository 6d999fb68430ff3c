"""Pictures of learned mixing (AutoMix, AdAutoMix): the generator's masks on a batch, and how they change
over training.

* :func:`show_learned` -- one generated mix: for each sample, its N sources, the mixed result (its title
  prints the label weights, the realised shares ``res.weights``) and each source's per-pixel share.
* :func:`learned_snapshots` -- the masks of the *same* batch and draws at several training steps
  (taken with :func:`snapshot` during training), one column per step.
* :func:`snapshot` -- the learner's generated mix of a fixed batch with fixed draws (a generator
  seeded afresh on every call), in eval mode, without the plain-mixing fallback.
"""
from __future__ import annotations

import os
from typing import List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ..result import MixResult
from .layout import (_owner_rgb, _SOURCE_COLORS, _block_grid, _colorbar, _finish, _ImageScale, _no_ticks, _share_image,
                     _sources_and_mix, _stacked_grid)
from .prepare import _check_n, _check_x, _check_y
from .text import _label, _role, _source_legend, _wrap_lines, mixer_text, weight_text

Snapshots = Union[Mapping[int, MixResult], Sequence[Tuple[int, MixResult]]]


def _check_learner(learner) -> None:
    if not getattr(learner, "learned", False) or not hasattr(learner, "mix"):
        raise TypeError(f"expected a learned mixer (mixkit.AutoMix, mixkit.AdAutoMix), got {type(learner).__name__}; "
                        "draw other mixers with mixkit.viz.show")


@torch.no_grad()
def snapshot(learner, x: Tensor, seed: int = 0, *, lam: Union[None, float, Sequence[float]] = None,
             fallback: bool = False) -> MixResult:
    """The learner's generated mix of ``x`` with the draws of a generator seeded ``seed``.

    Every call with the same ``seed`` and batch size draws the same sources and weights, so the
    results taken at several training steps differ only by what the generator learned. The learner
    runs in eval mode (the teacher's BatchNorm running statistics) and is put back in the mode it was
    in; ``learner.mix`` changes nothing else. ``fallback=False`` shows the generated mask even where the
    λ-margin rule would train the classifier on plain mixing instead."""
    _check_learner(learner)
    was_training = learner.training
    learner.eval()
    try:
        return learner.mix(x, generator=torch.Generator(device=x.device).manual_seed(int(seed)), lam=lam,
                           fallback=fallback)
    finally:
        learner.train(was_training)


def _sampled(res: MixResult) -> str:
    lam = res.params.get("lam")
    if not isinstance(lam, Tensor):
        return ""
    return "sampled λ = (" + ", ".join(f"{float(v):.2f}" for v in lam) + ")"


def _mask(res: MixResult) -> Tensor:
    m = res.mask
    if m is None:
        raise ValueError("the result has no mask; a learner's MixResult always has one (B, N, *spatial)")
    return m.detach().float().cpu()


def show_learned(learner, x: Tensor, y: Optional[Tensor] = None, class_names: Optional[Sequence[str]] = None,
                 n: Optional[int] = None, generator: Optional[torch.Generator] = None,
                 out: Optional[Union[str, os.PathLike]] = None, *, result: Optional[MixResult] = None,
                 title: Optional[str] = None, fallback: bool = False, panel_size: float = 1.45,
                 blocks: Optional[int] = None, channel: int = 0):
    """Draw a learner's generated mixing of ``x``: sources, mixed result, per-source shares, label weights.

    Images ``(B, C, H, W)`` (volumes: the middle depth slice): one row per sample with its N sources
    (the anchor ``x[i]`` first, then ``x[index[i, j]]``), the mixed image (its title prints the label
    mix with the realised weights ``res.weights``, which :func:`~mixkit.viz.weight_text` formats) and
    the N share maps ``res.mask[i, j]`` (their means are the weights). Sequences ``(B, C, L)``: the
    sources (wide translucent lines) with the mixed sequence (black) above, the N shares stacked below.

    Args:
        learner: a :class:`~mixkit.learned.MixLearner` (AutoMix, AdAutoMix); ``learner.mix`` is called
            once (nothing is trained) unless ``result`` is given.
        x, y, class_names, generator, out, title: as :func:`~mixkit.viz.show_grid`.
        n: samples drawn (default 8 images, 4 sequences).
        result: draw this :class:`~mixkit.MixResult` of ``x`` (e.g. from :func:`snapshot`) instead.
        fallback: passed to ``learner.mix`` (default False: the generated mask even at extreme λ).
        panel_size: inches per image panel; blocks: side-by-side groups of rows (default 2 for two
            sources and ``n >= 4``, else 1); channel: the channel plotted for sequences.

    Returns:
        A :class:`matplotlib.figure.Figure`, with the drawn result as ``fig.mixkit_result``.
    """
    _check_learner(learner)
    x = _check_x(x, (1, 2, 3), "show_learned")
    y = _check_y(y, x.shape[0])
    n = _check_n(n if n is not None else (4 if x.dim() == 3 else 8))
    if result is None:
        result = learner.mix(x, generator=generator, fallback=fallback)
    elif result.batch_size != x.shape[0]:
        raise ValueError(f"result has B={result.batch_size} rows but x has B={x.shape[0]}")
    rows = list(range(min(n, x.shape[0])))
    if x.dim() == 3:
        fig = _learned_1d(result, x, y, class_names, rows, channel)
    else:
        fig = _learned_2d(result, x, y, class_names, rows, panel_size, blocks)
    head = title if title is not None else f"{mixer_text(learner)}: the generator's mix"
    rule = getattr(learner, "label", None)
    trains = {"sampled": "; the classifier's targets use the sampled λ (label='sampled')",
              "realised": "; the classifier's targets use these shares (label='realised')"}.get(rule, "")
    text = (f"{head}\n{_sampled(result)}; w = realised shares (mask means, [min, max] per map){trains}"
            + ("; plain-mixing fallback" if result.params.get("fallback") else ""))
    return _finish(fig, _fit(fig, text), out, result=result)


def _fit(fig, text: str) -> str:
    """``text`` wrapped to the figure's width (about 11 characters an inch at the title's font size)."""
    return "\n".join(_wrap_lines(text, max(40, min(130, int(fig.get_figwidth() * 11)))))


def _learned_2d(res: MixResult, x: Tensor, y, class_names, rows, panel_size, blocks):
    k = res.k
    mask = _mask(res)
    xin = x.detach().float().cpu()
    xmix = res.inputs.detach().float().cpu()
    scale = _ImageScale(xin, xmix)
    ncols = 2 * k + 1
    fig, grid = _block_grid(rows, ncols, blocks or (2 if len(rows) >= 4 and k == 2 else 1), panel_size,
                            0.6, 0.5, 0.8)
    im = None
    for block_rows, axes, sf, last in grid:
        for r, i in enumerate(block_rows):
            _sources_and_mix(axes, r, i, res, scale, xin, xmix, y, class_names, 7.5)
            for j in range(k):
                ax = axes[r, k + 1 + j]
                s = mask[i, j]
                im = ax.imshow(_share_image(s, x.shape[-2:]).numpy(), cmap="viridis", vmin=0, vmax=1,
                               interpolation="nearest")
                ax.set_title(f"share of {_role(res, j)}\nmean {float(s.mean()):.2f} "
                             f"[{float(s.min()):.2f}, {float(s.max()):.2f}]", fontsize=7.5)
        _no_ticks(axes.flat)
        if last and im is not None:
            _colorbar(sf, im, list(axes[:, k + 1:].ravel()), "per-pixel share", 7.5)
    return fig


def _stack_shares(ax, shares: Tensor) -> None:
    """The ``(N, L)`` shares of one sample stacked (they sum to 1), in the sources' colours."""
    t = range(shares.shape[-1])
    ax.stackplot(t, shares.numpy(), colors=[_SOURCE_COLORS[j % len(_SOURCE_COLORS)] for j in range(shares.shape[0])],
                 alpha=0.55, step="mid")
    ax.set_ylim(0, 1)
    ax.set_yticks([0, 0.5, 1])
    ax.tick_params(labelsize=7)


def _learned_1d(res: MixResult, x: Tensor, y, class_names, rows, channel: int):
    if not 0 <= channel < x.shape[1]:
        raise ValueError(f"channel must be in [0, {x.shape[1] - 1}], got {channel}")
    mask = _mask(res)
    xin = x.detach().float().cpu()[:, channel]
    xmix = res.inputs.detach().float().cpu()[:, channel]
    fig, gs, ncols = _stacked_grid(len(rows), [3, 1.4], None, size=(4.6, 3.0), top=0.7)
    for r, i in enumerate(rows):
        gr, gc = divmod(r, ncols)
        ax = fig.add_subplot(gs[2 * gr, gc])
        axm = fig.add_subplot(gs[2 * gr + 1, gc], sharex=ax)
        for j in range(res.k):
            src = int(res.index[i, j])
            ax.plot(xin[src].numpy(), color=_SOURCE_COLORS[j % len(_SOURCE_COLORS)], lw=3.0, alpha=0.45,
                    solid_capstyle="round",
                    label=_source_legend(_role(res, j), src, float(res.weights[i, j]), y, class_names))
        ax.plot(xmix[i].numpy(), color="black", lw=1.2, label="mixed")
        ax.legend(fontsize=6.5, loc="best", framealpha=0.7)
        ax.tick_params(labelsize=7, labelbottom=False)
        ax.set_title(weight_text(res, i, y, class_names), fontsize=8.5)
        _stack_shares(axm, mask[i])
        axm.set_ylabel("shares\n(stacked)", fontsize=7)
        axm.set_xlabel("position", fontsize=7)
    return fig


def _check_snapshots(snapshots: Snapshots, b: int) -> List[Tuple[int, MixResult]]:
    items = sorted((snapshots.items() if isinstance(snapshots, Mapping) else snapshots), key=lambda s: s[0])
    if not items:
        raise ValueError("snapshots must hold at least one (step, MixResult)")
    first = items[0][1]
    for step, res in items:
        if not isinstance(res, MixResult):
            raise TypeError(f"snapshot at step {step} is a {type(res).__name__}, not a MixResult")
        if res.batch_size != b or not torch.equal(res.index.cpu(), first.index.cpu()):
            raise ValueError(f"snapshot at step {step} mixes other sources than the first: take every snapshot of "
                             "the same batch with the same draws (mixkit.viz.learned.snapshot with one seed)")
    return [(int(s), r) for s, r in items]


def _snapshot_caption(res: MixResult, i: int) -> str:
    return "w = " + "/".join(f"{float(w):.2f}" for w in res.weights[i])


def learned_snapshots(snapshots: Snapshots, x: Tensor, y: Optional[Tensor] = None,
                      class_names: Optional[Sequence[str]] = None, n: int = 4,
                      out: Optional[Union[str, os.PathLike]] = None, *, title: Optional[str] = None,
                      panel_size: float = 1.3, channel: int = 0):
    """The generated masks of the same batch and draws at several training steps, one column per step.

    ``snapshots`` maps training step -> the :class:`~mixkit.MixResult` taken then (a dict, or a
    sequence of ``(step, result)``), all of ``x`` with the same draws (:func:`snapshot` with one seed),
    so a column differs from the previous one only by what the generator learned in between. Each of
    the first ``n`` rows shows the sources (images: the N source panels; sequences: the source
    curves) and, per step, the mask: two sources, the anchor's per-pixel share; more, an owner map
    (each pixel the sources' colours mixed by their shares: anchor blue, then orange, green, ...);
    sequences, the N shares stacked. Each mask's title prints the realised weights at that step.

    Returns:
        A figure with ``fig.mixkit_snapshots``, the ``[(step, result), ...]`` drawn, in step order.
    """
    x = _check_x(x, (1, 2, 3), "learned_snapshots")
    y = _check_y(y, x.shape[0])
    _check_n(n)
    items = _check_snapshots(snapshots, x.shape[0])
    rows = list(range(min(n, x.shape[0])))
    if x.dim() == 3:
        fig = _snapshots_1d(items, x, y, class_names, rows, panel_size, channel)
    else:
        fig = _snapshots_2d(items, x, y, class_names, rows, panel_size)
    k = items[0][1].k
    if x.dim() == 3:
        how = "the sources' shares stacked (anchor blue, then orange, green)"
    elif k == 2:
        how = "the anchor's per-pixel share (yellow = anchor)"
    else:
        how = "each pixel in the sources' colours mixed by their shares (anchor blue, then orange, green)"
    head = title if title is not None else "the generator's masks over training"
    text = f"{head}\nsame batch and draws at steps {', '.join(str(s) for s, _ in items)}; {how}"
    return _finish(fig, _fit(fig, text), out, snapshots=items)


def _snapshots_2d(items, x: Tensor, y, class_names, rows, panel_size):
    first = items[0][1]
    k = first.k
    xin = x.detach().float().cpu()
    scale = _ImageScale(xin)
    masks = [(step, res, _mask(res)) for step, res in items]
    fig, grid = _block_grid(rows, k + len(items), 1, panel_size, 0.6, 0.5, 0.8)
    im = None
    for block_rows, axes, sf, last in grid:
        for r, i in enumerate(block_rows):
            for j in range(k):
                src = int(first.index[i, j])
                ax = axes[r, j]
                scale.draw(ax, xin[src])
                ax.set_title(f"{_role(first, j)} {_label(src, y, class_names)}\nx[{src}]", fontsize=7.5,
                             color=_SOURCE_COLORS[j % len(_SOURCE_COLORS)] if k > 2 else "black")
            for c, (step, res, m) in enumerate(masks):
                ax = axes[r, k + c]
                if k == 2:
                    im = ax.imshow(_share_image(m[i, 0], x.shape[-2:]).numpy(), cmap="viridis", vmin=0, vmax=1,
                                   interpolation="nearest")
                else:
                    mi = m[i] if m.dim() == 4 else m[i, :, m.shape[2] // 2]  # volumes: the middle depth slice
                    ax.imshow(_owner_rgb(mi, range(k)), interpolation="nearest")
                ax.set_title(f"step {step}\n{_snapshot_caption(res, i)}", fontsize=7.5)
        _no_ticks(axes.flat)
        if last and im is not None:
            _colorbar(sf, im, list(axes[:, k:].ravel()), "anchor's per-pixel share", 7.5)
    return fig


def _snapshots_1d(items, x: Tensor, y, class_names, rows, panel_size, channel: int):
    from matplotlib.figure import Figure

    if not 0 <= channel < x.shape[1]:
        raise ValueError(f"channel must be in [0, {x.shape[1] - 1}], got {channel}")
    first = items[0][1]
    xin = x.detach().float().cpu()[:, channel]
    ncols = 1 + len(items)
    fig = Figure(figsize=(ncols * panel_size * 1.6, len(rows) * (panel_size + 0.5) + 0.8), layout="constrained")
    axes = fig.subplots(len(rows), ncols, squeeze=False, sharex=True)
    for r, i in enumerate(rows):
        ax = axes[r, 0]
        for j in range(first.k):
            src = int(first.index[i, j])
            ax.plot(xin[src].numpy(), color=_SOURCE_COLORS[j % len(_SOURCE_COLORS)], lw=1.3,
                    label=f"{_role(first, j)} {_label(src, y, class_names)}")
        ax.legend(fontsize=6, loc="best", framealpha=0.7)
        ax.tick_params(labelsize=7)
        ax.set_title("sources", fontsize=7.5)
        for c, (step, res) in enumerate(items):
            ax = axes[r, 1 + c]
            _stack_shares(ax, _mask(res)[i])
            ax.set_title(f"step {step}\n{_snapshot_caption(res, i)}", fontsize=7.5)
            if c:
                ax.tick_params(labelleft=False)
    return fig
