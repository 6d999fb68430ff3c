"""``mixkit show``: draw a method on a few samples of a dataset and save the picture as a PNG.

``show`` mixes ``n`` samples of a dataset (:mod:`mixkit.cli.data`; one per class where possible)
and writes a picture of the sources, the mixed samples, the masks and the label weights (see
:mod:`mixkit.viz`). Methods that need a model get :func:`mixkit.cli.model.show_model`;
hidden-layer methods are drawn with the mixed layer's feature maps before and after mixing
(:func:`mixkit.viz.show_hidden`), saliency-guided ones with their saliency maps
(:func:`mixkit.viz.show_saliency`). Learned methods (AutoMix, AdAutoMix) are trained briefly around the
show model (:func:`mixkit.cli.model.show_learner`) and drawn twice: the final generated mixing
(:func:`mixkit.viz.show_learned`) and the masks of the same samples and draws at several training steps
(:func:`mixkit.viz.learned_snapshots`, a second PNG, :func:`snapshots_path`).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict, Optional

import torch

from .. import registry
from .data import DATASETS, ShowData, load_show_data, pick_samples
from .errors import CLIError
from .model import _SHOW_MODELS, SHOW_LEARNER_STEPS, SHOW_TRAIN_STEPS, _ShowThreads, show_learner, show_model
from .params import add_param_option, parse_params

__all__ = ["render", "needs_model", "check_showable", "register", "snapshots_path", "snapshot_steps"]

#: rows of the snapshots picture (at most)
_SNAPSHOT_ROWS = 4


def _mixer_kwargs(name: str, mode: str, params: Dict[Optional[str], Dict[str, Any]]) -> Dict[str, Any]:
    kw: Dict[str, Any] = {"mode": mode, "no_self_pairs": True}
    kw.update(params.get(None, {}))
    kw.update(params.get(name, {}))
    return kw


def needs_model(name: str, kw: Optional[Dict[str, Any]] = None) -> bool:
    """Whether ``mixkit show`` must build a model for ``name`` with constructor arguments ``kw``:
    the registry says so, or the method's model is optional and the arguments ask for it
    (SaliencyMix with ``saliency="gradient"``)."""
    return registry.spec(name).needs_model or (kw or {}).get("saliency") == "gradient"


def _make_mixer(name: str, mode: str, params: Dict[Optional[str], Dict[str, Any]], model=None):
    kw = _mixer_kwargs(name, mode, params)
    try:
        if model is None or registry.spec(name).needs_model:
            return registry.create(name, **({"model": model} if model is not None else {}), **kw)
        # a model the method takes optionally (SaliencyMix saliency="gradient"): the registry refuses a
        # model for methods registered without one, so build the class with the registry defaults here
        cls = registry.get_class(name)
        args = dict(registry.spec(name).defaults)
        args.update(kw)
        args["model"] = model
        registry.check_kwargs(cls, args)
        return cls(**args)
    except (TypeError, ValueError) as e:
        raise CLIError(f"cannot create {name!r} with {kw}: {e}") from e


def check_showable(name: str, data: ShowData) -> Optional[str]:
    """Why ``name`` cannot be drawn on ``data`` (None when it can)."""
    dims = registry.spatial_dims(name)
    if data.spatial_dims not in dims:
        return (f"{name} supports {' or '.join(map(str, dims))}-D inputs, but --dataset {data.name} is "
                f"{data.spatial_dims}-D")
    if registry.spec(name).needs_model and data.spatial_dims not in _SHOW_MODELS:
        return f"{name} needs a model, and `mixkit show` has one only for 1-D and 2-D datasets"
    return None


def snapshots_path(out: str) -> str:
    """Where ``mixkit show`` writes a learned method's snapshots picture: ``out`` with ``_snapshots``
    before the extension (``automix.png`` -> ``automix_snapshots.png``)."""
    root, ext = os.path.splitext(out)
    return f"{root}_snapshots{ext or '.png'}"


def snapshot_steps(steps: int):
    """The training steps at which ``mixkit show`` takes the snapshots: 0, T/4, T/2 and T (distinct)."""
    return sorted({0, steps // 4, steps // 2, steps})


def _draw_seed(learner, x, seed: int, tries: int = 100) -> int:
    """The first generator seed from ``seed`` on whose draws every shown sample mixes N distinct samples
    (or, when no seed in ``tries`` does, e.g. N > B, at least one other sample); else ``seed``.

    A learner pairs by random permutations without ``no_self_pairs``, so some draws mix a sample with
    itself (at B = 4, seed 0 draws the identity for all three AdAutoMix sources). The draws depend only
    on the seed and the batch size, not on the learner's weights, so one seed serves every snapshot.
    """
    from .. import viz

    index = {s: viz.snapshot(learner, x, s).index.tolist() for s in range(seed, seed + tries)}
    for ok in (lambda row: len(set(row)) == len(row), lambda row: len(set(row)) > 1):
        for s, idx in index.items():
            if all(ok(row) for row in idx):
                return s
    return seed


def _render_learned(name: str, data: ShowData, out: str, x, y, n: int, seed: int,
                    params: Dict[Optional[str], Dict[str, Any]], steps: int) -> str:
    """Train the learner ``name`` briefly, taking snapshots of the shown samples; write both pictures."""
    from .. import viz

    kw = dict(params.get(None, {}))
    kw.update(params.get(name, {}))
    at = snapshot_steps(steps)
    snaps: Dict[int, Any] = {}
    draws = [seed]

    def take(t: int, lrn) -> None:
        if t == 0:
            draws[0] = _draw_seed(lrn, x, seed)
        snaps[t] = viz.snapshot(lrn, x, draws[0])

    with _ShowThreads(1):
        learner = show_learner(name, data, seed, steps=steps, params=kw, snapshot_steps=at, on_snapshot=take)
        what = (f"{viz.mixer_text(learner)} on {data.name}, seed {seed} (draws: seed {draws[0]}); model: "
                f"{_SHOW_MODELS[data.spatial_dims]}, trained with the generator for {steps} steps")
        viz.show_learned(learner, x, y, data.class_names, n, out=out, result=snaps[steps], title=what)
        viz.learned_snapshots(snaps, x, y, data.class_names, min(n, _SNAPSHOT_ROWS), out=snapshots_path(out),
                              title=(f"{type(learner).__name__} on {data.name}, seed {seed} (draws: seed "
                                     f"{draws[0]}): the generator's masks over {steps} training steps"))
    return out


def render(name: str, data: ShowData, out: str, *, n: Optional[int] = None, seed: int = 0, mode: str = "sample",
           params: Optional[Dict[Optional[str], Dict[str, Any]]] = None, untrained: bool = False,
           train_steps: Optional[int] = None) -> str:
    """Draw method ``name`` on ``n`` samples of ``data`` and save the PNG ``out`` (what ``mixkit show`` does).

    The samples are chosen by :func:`pick_samples` with ``seed``; the mixer is created with
    ``mode``, ``no_self_pairs=True`` (so no sample is drawn mixed with itself) and ``params``; its draws
    come from a generator seeded with ``seed``. Returns ``out``.

    Methods that need the model get :func:`show_model` (trained for ``train_steps``, or untrained with
    ``untrained=True``). Learned methods (``registry.is_learned``) are trained with their generator by
    :func:`show_learner` (``train_steps``, default :data:`SHOW_LEARNER_STEPS`; ``untrained``: 0 steps) and
    drawn by :func:`mixkit.viz.show_learned` to ``out`` and :func:`mixkit.viz.learned_snapshots` to
    :func:`snapshots_path` ``(out)``; ``mode`` does not apply to them. Hidden-layer methods (``runs_model``: Manifold Mixup, PatchUp) are drawn by
    :func:`mixkit.viz.show_hidden`, saliency-guided ones (SaliencyMix, PuzzleMix, Co-Mixup) by
    :func:`mixkit.viz.show_saliency`, the others by :func:`mixkit.viz.show`.
    """
    from .. import viz

    params = params or {}
    why = check_showable(name, data)
    if why is not None:
        raise CLIError(why)
    n = n if n is not None else (4 if data.spatial_dims == 1 else 8)
    if n < 1:
        raise CLIError(f"--n must be >= 1, got {n}")
    x, y = pick_samples(data, n, seed)
    if registry.is_learned(name):
        steps = 0 if untrained else (SHOW_LEARNER_STEPS.get(data.name, 100) if train_steps is None else train_steps)
        return _render_learned(name, data, out, x, y, n, seed, params, steps)
    kw = _mixer_kwargs(name, mode, params)
    gen = torch.Generator().manual_seed(seed)
    if not needs_model(name, kw):
        mixer = _make_mixer(name, mode, params)
        title = _wrap(f"{viz.mixer_text(mixer)} on {data.name}, seed {seed}")
        if registry.saliency_guided(name):
            viz.show_saliency(mixer, x, y, data.class_names, n, gen, out=out, title=title)
        else:
            viz.show(mixer, x, y, data.class_names, n, gen, out=out, title=title)
        return out
    with _ShowThreads(1):
        model = show_model(data, seed, train=not untrained, steps=train_steps)
        mixer = _make_mixer(name, mode, params, model=model)
        steps = SHOW_TRAIN_STEPS.get(data.name, 100) if train_steps is None else train_steps
        how = "untrained" if untrained or steps == 0 else f"trained {steps} steps"
        title = _wrap(f"{viz.mixer_text(mixer)} on {data.name}, seed {seed}; model: "
                      f"{_SHOW_MODELS[data.spatial_dims]} ({how}, eval mode)")
        if getattr(mixer, "runs_model", False):
            viz.show_hidden(mixer, x, y, data.class_names, n, gen, out=out, title=title)
        else:
            viz.show_saliency(mixer, x, y, data.class_names, n, gen, out=out, title=title)
    return out


def _cmd_show(args: argparse.Namespace) -> int:
    params = parse_params(args.param)
    if args.method.lower() == "all":
        methods = registry.available()
        out_dir = args.out or "mixkit-show"
        if out_dir.lower().endswith(".png"):
            raise CLIError("with METHOD 'all', --out is a directory (one PNG per method)")
    else:
        methods = [registry.resolve(args.method)]
        registry.get_class(methods[0])  # raises MethodUnavailableError with the reason
        out_dir = None
    data = load_show_data(args.dataset, args.data_dir)
    written = 0
    for name in methods:
        why = check_showable(name, data)
        if why is not None:
            if out_dir is None:
                dims = registry.spatial_dims(name)
                alt = f"; try --dataset {'mnist1d' if 1 in dims else 'digits'}"
                raise CLIError(why + alt)
            print(f"skipped {name}: {why}", file=sys.stderr)
            continue
        path = os.path.join(out_dir, f"{name}.png") if out_dir is not None else (args.out or f"mixkit-{name}.png")
        render(name, data, path, n=args.n, seed=args.seed, mode=args.mode, params=params,
               untrained=args.untrained, train_steps=args.train_steps)
        print(path)
        if registry.is_learned(name):
            print(snapshots_path(path))
        written += 1
    if written == 0:
        raise CLIError(f"no picture written: no available method supports --dataset {data.name}")
    return 0


def _wrap(text: str, width: int = 100) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width=width))


def register(subparsers) -> None:
    """Add ``mixkit show`` to an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser(
        "show", help="draw a mixed batch (sources, mixed samples, masks, label weights) to a PNG",
        description="Mix N samples of a dataset with METHOD and save a picture of the sources, the mixed "
                    "samples, the anchor's per-pixel share and the label weights. METHOD 'all' writes one "
                    "PNG per available method into the --out directory. Learned methods (automix, adautomix) "
                    "are trained briefly with their generator around the show model and write two PNGs: "
                    "--out (the final generated mixing: sources, mixed sample, each source's share map) and "
                    "--out with _snapshots before .png (the masks of the same samples and draws at steps 0, "
                    "T/4, T/2 and T of the training).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("method", metavar="METHOD", help=f"one of: {', '.join(registry.names())}, or 'all'")
    p.add_argument("--dataset", choices=DATASETS, default="digits",
                   help="images: digits, fashion-mnist, synthetic; sequences: mnist1d, synthetic1d")
    p.add_argument("--data-dir", default=None, help="directory holding the dataset files (fashion-mnist)")
    p.add_argument("--n", type=int, default=None, help="number of samples drawn (default 8 images / 4 sequences)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample choice and of the mixing draws")
    p.add_argument("--mode", choices=("sample", "batch"), default="sample",
                   help="'sample': one draw per sample (shows N draws); 'batch': one draw for the batch, as the papers "
                        "(not for learned methods, which draw one λ per batch)")
    p.add_argument("--out", default=None,
                   help="PNG path (default mixkit-METHOD.png); with METHOD 'all', a directory (default mixkit-show)")
    add_param_option(p, help="constructor argument, e.g. --param alpha=0.4 r=0.5; METHOD.KEY=VALUE for one method only")
    p.add_argument("--untrained", action="store_true",
                   help="methods that need a model: skip the brief training and use the initialised model")
    p.add_argument("--train-steps", type=int, default=None, metavar="N",
                   help="methods that need a model: optimiser steps of batch 64 (default: "
                        + ", ".join(f"{k} {v}" for k, v in SHOW_TRAIN_STEPS.items()) + "); learned methods: "
                        "SGD steps of the model and its generator (default: "
                        + ", ".join(f"{k} {v}" for k, v in SHOW_LEARNER_STEPS.items()) + ")")
    p.set_defaults(func=_cmd_show)
