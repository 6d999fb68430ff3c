"""Pictures of hidden-layer mixers (Manifold Mixup, PatchUp): the mixed layer before and after mixing."""
from __future__ import annotations

import os
from typing import Dict, Optional, Sequence, Union

import torch
from torch import Tensor

from ..hooks import capture
from ..result import MixResult
from .layout import (_SOURCE_COLORS, _block_grid, _colorbar, _finish, _ImageScale, _no_ticks, _stacked_grid)
from .prepare import _check_n, _check_x, _check_y
from .text import _source_legend, _source_title, _weights_caption, _wrap_lines, mixer_text, weight_text


def capture_hidden(mixer, x: Tensor, y: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
                   forward=None):
    """Run a hidden-layer mixer (``runs_model = True``) once and record the layer it mixed.

    Returns ``(res, before, after)``: the mixer's :class:`~mixkit.MixResult` and the hidden state of the
    mixed layer (``res.params["layer"]``) as the network computed it (``before``) and as the rest of the
    network received it (``after``), detached float32 CPU copies ``(B, C, *spatial)``. When nothing was
    mixed (``layer`` None: B = 1 or the ``p`` coin failed in batch mode) both are None.

    The forward pass runs through a wrapper given as ``mixer.mix(..., forward=wrapper)`` (the documented
    way to run a hidden-layer mixer through a wrapper of its model, e.g. DDP). When the mixer calls the
    wrapper, its own hook is already in place, so the wrapper records every candidate layer with two
    :func:`mixkit.hooks.capture` blocks: one with ``prepend=True``, whose hooks run before the mixer's
    (the unmixed output; for ``"input"`` the batch the model was called with), and one whose hooks run
    after it (the mixed output or input). Both keep the first call of the pass. Every hook is removed when
    the wrapper returns or raises; the mixer and the model are used exactly as in training (same draws
    for the same generator).

    Args:
        mixer: a :class:`~mixkit.mixers.manifold.HiddenLayerMixer` (ManifoldMixup, PatchUp) or any mixer
            with ``runs_model``, ``model``, ``layers`` and ``mix(x, y, generator=, forward=)``.
        forward: the callable that runs the model (default ``mixer.model``).
    """
    model = mixer.model
    run = model if forward is None else forward
    before: Dict[str, Tensor] = {}
    after: Dict[str, Tensor] = {}

    def wrapper(inp: Tensor):
        with capture(model, *mixer.layers, prepend=True, first=True, copy=True) as unmixed, \
                capture(model, *mixer.layers, first=True, copy=True) as mixed:
            out = run(inp)
        before.update(unmixed)
        after.update(mixed)
        return out

    res = mixer.mix(x, y, generator=generator, forward=wrapper)
    layer = res.params.get("layer")
    if layer is None:
        return res, None, None
    return res, _float_cpu(before.get(layer)), _float_cpu(after.get(layer))


def _float_cpu(t: Optional[Tensor]) -> Optional[Tensor]:
    return None if t is None else t.float().cpu()


def _layer_label(layer: Optional[str]) -> str:
    return "input" if layer in (None, "input") else str(layer)


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
    if not getattr(mixer, "runs_model", False) or not isinstance(getattr(mixer, "model", None), torch.nn.Module):
        raise TypeError(f"show_hidden draws mixers that run the model (runs_model=True, e.g. ManifoldMixup, PatchUp), "
                        f"got {type(mixer).__name__}; use show_grid / show_1d / show_saliency")
    x = _check_x(x, (1, 2), "show_hidden")
    b = x.shape[0]
    y = _check_y(y, b)
    _check_n(n)
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
        fig = _hidden_2d(res, x, y, class_names, rows, info, panel_size, blocks)
    else:
        fig = _hidden_1d(res, x, y, class_names, rows, info)
    scale = float(before.abs().max()) or 1.0
    head = title if title is not None else mixer_text(mixer)
    lines = [f"mixed at {lname!r}, hidden state {tuple(before.shape)}; each row: the channel where the sources differ "
             "most in the mixed region",
             f"check: max |h_mix - (s*h_a + (1-s)*h_p)| = {err:.1e} over the whole layer (max |h| = {scale:.2g})"]
    if layer is None:
        lines = ["nothing was mixed (the p coin failed or B = 1): the model ran on the clean batch"]
    return _finish(fig, "\n".join(_wrap_lines(head) + lines), out, result=res, hidden=info)


def _hidden_share_title(res: MixResult, i: int, c: int, share_i: Tensor) -> str:
    w = float(res.weights[i, 0])
    if "keep" in res.params and res.params.get("patchup_type") in ("hard", "soft"):
        return f"block mask, ch {c}\nmean(all ch) = {w:.2f}"
    if float(share_i.max() - share_i.min()) == 0.0:
        return f"anchor share\nconstant = {w:.2f}"
    return f"anchor share\nmean = {w:.2f}"


def _hidden_2d(res, x, y, class_names, rows, info, panel_size, blocks):
    before, after, share, chans = info["before"], info["after"], info["share"], info["channels"]
    lname = _layer_label(info["layer"])
    xin = x.detach().float().cpu()
    scale = _ImageScale(xin)
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
                scale.draw(ax, xin[src])
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
                    ttl = f"mixed {lname}, ch {c}\n" + _weights_caption(res, i, y, class_names)
                    ax.set_title(ttl, fontsize=7.5, fontweight="bold")
                else:
                    ax.set_title(ttl, fontsize=7.5)
            ax = axes[r, 5]
            s = share[i, c]
            share_im = ax.imshow(s.numpy(), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(_hidden_share_title(res, i, c, share[i]), fontsize=7.5)
        _no_ticks(axes.flat)
        if last and share_im is not None:
            _colorbar(sf, share_im, axes[:, 5], "anchor's share of the hidden state", 7.5)
    return fig


def _hidden_1d(res, x, y, class_names, rows, info):
    before, after, share, chans = info["before"], info["after"], info["share"], info["channels"]
    lname = _layer_label(info["layer"])
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
                       label=_source_legend(role, src, float(res.weights[i, j]), y, class_names))
            ax_h.plot(before[src, c].numpy(), color=_SOURCE_COLORS[j], lw=3.0, alpha=0.45)
        ax_h.plot(after[i, c].numpy(), color="black", lw=1.2, label="mixed")
        ax_in.legend(fontsize=7, loc="best", framealpha=0.7)
        ax_in.set_title(f"inputs    mixed: {weight_text(res, i, y, class_names)}", fontsize=8.5)
        ax_h.set_title(f"{lname}, ch {c}: sources (wide) and mixed (black)", fontsize=8)
        s = share[i, c]
        ax_s.fill_between(range(s.shape[0]), 0, s.numpy(), step="mid", color="tab:blue", alpha=0.35)
        ax_s.set_ylim(-0.05, 1.05)
        ax_s.set_ylabel("anchor\nshare", fontsize=7)
        ax_s.set_title(_hidden_share_title(res, i, c, share[i]).replace("\n", "   "), fontsize=7.5)
        for ax in (ax_in, ax_h, ax_s):
            ax.tick_params(labelsize=7)
    return fig
