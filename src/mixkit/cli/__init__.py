"""The ``mixkit`` command.

Subcommands defined here::

    mixkit list [--json]                         methods, available or not and why
    mixkit show METHOD [--dataset D] [--data-dir DIR] [--n 8] [--seed 0] [--mode sample|batch]
                       [--out FILE.png] [--param KEY=VALUE ...] [--untrained] [--train-steps N]
    mixkit show all --out DIR/                   one PNG per available method

``show`` mixes ``n`` samples of a dataset (one per class where possible) and writes a picture of
the sources, the mixed samples, the masks and the label weights (see :mod:`mixkit.viz`).

Methods that need a model (Manifold Mixup, PatchUp, PuzzleMix, Co-Mixup, and SaliencyMix with
``--param saliency=gradient``) get the benchmark's ``resnet8`` (``cnn1d`` for sequences), trained for a
few seconds on the dataset (:func:`show_model`; ``--untrained`` skips it, ``--train-steps`` changes it),
in eval mode. Hidden-layer methods are drawn with the mixed layer's feature maps before and after
mixing (:func:`mixkit.viz.show_hidden`), saliency-guided ones with their saliency maps
(:func:`mixkit.viz.show_saliency`). Nothing global is left changed: the model is initialised and
trained inside ``torch.random.fork_rng`` from explicit seeds, with one torch thread, and the thread
count and grad mode are restored; nothing is written to disk but the PNG. Datasets:
``digits``, ``fashion-mnist``, ``mnist1d``, ``synthetic`` and ``synthetic1d`` (:mod:`mixkit.cli.data`).

Modules: :mod:`~mixkit.cli.main` (parser, dispatch, errors), :mod:`~mixkit.cli.listing` (``list``),
:mod:`~mixkit.cli.show` (``show``), :mod:`~mixkit.cli.data` (its datasets), :mod:`~mixkit.cli.model`
(its model), :mod:`~mixkit.cli.params` (the one ``--param`` parser, also used by ``mixkit bench``),
:mod:`~mixkit.cli.extensions` (subcommands of other packages).

Extending the command (how ``bench`` and ``report`` plug in)
------------------------------------------------------------
After the built-in subcommands are added, every entry point of the group ``mixkit.commands``
(:data:`ENTRY_POINT_GROUP`) is loaded and called as ``register(subparsers)`` with the ``argparse``
sub-parsers object. mixkit declares its own benchmark this way (``bench =
"mixkit.cli.bench:register"``, which adds ``bench`` and ``report``); a third-party package adds a
command in its ``pyproject.toml``::

    [project.entry-points."mixkit.commands"]
    speed = "mixkit_speed.command:register"   # register(subparsers) adds `mixkit speed`
    # after `pip install mixkit-speed`, `mixkit speed ...` runs it

An entry point that cannot be imported (``ImportError``, e.g. the benchmark's optional dependencies
are missing) is skipped -- its subcommand just does not exist, and running it prints why; any other
error while loading or registering is raised, so a broken extension is never hidden. The
``register`` callable adds its parser and a handler that takes the parsed arguments and returns the
exit status::

    # mixkit/cli/bench.py
    def register(subparsers):
        p = subparsers.add_parser("bench", help="train and compare methods")
        p.add_argument("--methods", default="mixup,cutmix")
        p.set_defaults(func=run)

    def run(args) -> int:
        ...
        return 0

A handler may raise :class:`CLIError` for a user-facing error (printed as ``mixkit: error: ...``,
exit status 2).
"""
from __future__ import annotations

from .data import DATASETS, ShowData, load_show_data, pick_samples, synthetic_images, synthetic_sequences
from .errors import CLIError
from .extensions import ENTRY_POINT_GROUP
from .main import build_parser, main
from .model import SHOW_TRAIN_STEPS, show_model
from .params import ParamError, parse_params, parse_value
from .show import check_showable, needs_model, render

__all__ = ["main", "build_parser", "CLIError", "ShowData", "load_show_data", "pick_samples", "parse_params", "render",
           "show_model", "needs_model", "check_showable", "SHOW_TRAIN_STEPS", "DATASETS", "synthetic_images",
           "synthetic_sequences", "parse_value", "ParamError", "ENTRY_POINT_GROUP"]
