#!/usr/bin/env python
"""Regenerate every picture under docs/img/.

For each registered method whose implementation imports:

* ``docs/img/<name>.png``    -- what ``mixkit show <name> --dataset fashion-mnist`` draws
  (digits if Fashion-MNIST is not on this machine: ``apt-get install dataset-fashion-mnist``);
* ``docs/img/<name>_1d.png`` -- what ``mixkit show <name> --dataset mnist1d`` draws, for methods that
  support sequences;

Learned methods (AutoMix, AdAutoMix) also write ``<name>_snapshots.png`` (and ``<name>_1d_snapshots.png``):
their generator's masks of the same samples at steps 0, T/4, T/2 and T of the command's brief training
(``mixkit show`` writes both pictures).

plus ``docs/img/masks_overview.png`` (8 anchor-share masks per method, 28x28, sample mode) for the
landing page. Every picture uses seed 0 and the command's defaults (``--mode sample``, ``--n`` 8 images
or 4 sequences), so running the command by hand reproduces it exactly.

Methods that need a model get what ``mixkit show`` gives them: the benchmark's resnet8 (cnn1d for
sequences) trained for the command's default number of steps (trained once per dataset in this
process). A few pictures pass extra ``--param`` values, listed in :data:`DOC_PARAMS` and in the
pages' captions, and :data:`VARIANTS` adds second pictures of some methods:

* ``manifold_mixup.png``: ``--param layers=layer1`` (seed 0 would draw the input layer, i.e. plain
  MixUp; the page is about hidden states);
* ``saliencymix_gradient.png``: ``--param saliency=gradient`` (the input-gradient saliency of the
  trained model instead of the static one).

Methods whose module is still missing are listed at the end as "image pending". ``--wait SECONDS``
polls for them (every 20 s) before giving up.

Usage::

    .venv/bin/python scripts/make_docs_images.py [--only fmix hmix] [--wait 600] [--out docs/img]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

from mixkit import cli, registry, viz  # noqa: E402
from mixkit.cli.show import snapshots_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

#: ``--param`` values of the docs pictures that differ from the command's defaults (stated in the captions)
DOC_PARAMS = {"manifold_mixup": {"layers": "layer1"}}
#: extra pictures: method -> [(file stem, params)]
VARIANTS = {"saliencymix": [("saliencymix_gradient", {"saliency": "gradient"})]}


def _data(name: str):
    try:
        return cli.load_show_data(name)
    except cli.CLIError as e:
        if name != "fashion-mnist":
            raise
        print(f"note: {e}\n      falling back to --dataset digits", file=sys.stderr)
        return cli.load_show_data("digits")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"), help="output directory")
    ap.add_argument("--only", nargs="+", default=None, help="methods to draw (default: all registered)")
    ap.add_argument("--wait", type=float, default=0.0, help="seconds to poll for methods not implemented yet")
    ap.add_argument("--no-overview", action="store_true", help="skip masks_overview.png")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    todo = [registry.resolve(n) for n in (args.only or registry.names())]
    images = _data("fashion-mnist")
    sequences = None
    done = []
    deadline = time.monotonic() + args.wait
    while True:
        for name in list(todo):
            if not registry.is_available(name):
                continue
            dims = registry.spatial_dims(name)
            pictures = [(name, DOC_PARAMS.get(name, {}))] + VARIANTS.get(name, [])
            written = []
            for stem, params in pictures:
                if images.spatial_dims in dims:
                    written.append(cli.render(name, images, str(out / f"{stem}.png"), seed=0,
                                              params={None: dict(params)}))
                if 1 in dims:
                    sequences = sequences or _data("mnist1d")
                    written.append(cli.render(name, sequences, str(out / f"{stem}_1d.png"), seed=0,
                                              params={None: dict(params)}))
            for path in written:
                print(path)
                if registry.is_learned(name):
                    print(snapshots_path(path))
            todo.remove(name)
            done.append(name)
        if not todo or time.monotonic() >= deadline:
            break
        print(f"waiting for: {', '.join(todo)}", file=sys.stderr)
        time.sleep(20)
        registry._clear_cache()
    if not args.no_overview:
        ok = [n for n in registry.available() if 2 in registry.spatial_dims(n) and not registry.spec(n).needs_model]
        path = out / "masks_overview.png"
        viz.mask_gallery(ok, size=(28, 28), n=8, generator=torch.Generator().manual_seed(0), out=path)
        print(path)
    if todo:
        print("image pending (module missing): " + ", ".join(f"{n} ({registry.unavailable().get(n, '?')})" for n in todo),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
