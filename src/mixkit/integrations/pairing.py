"""Who is mixed with whom in :class:`~mixkit.integrations.MixTransform` / ``MixCollate`` (``pairing=``).

* ``"random"`` (default): a random permutation that never pairs a sample with itself (for B >= 2),
  drawn as every mixer built with ``no_self_pairs=True`` draws it (so the draws equal that mixer's).
* ``"roll"``: torchvision v2's pairing, ``partner[i] = i - 1`` (``batch.roll(1, 0)``), no draw; it
  relies on a shuffled loader, as torchvision's does.
* ``"mixer"``: each mixer's own pairing (``no_self_pairs=False`` by default: a uniform permutation,
  which may pair a sample with itself).

The choice holds for every mixer of the tree (a ``RandomChoice``'s children too) during the call only;
the mixers are left as they were. See ``docs/integrations/torchvision.md``.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional

import torch
from torch import Tensor

from ..mixers.base import Mixer
from ..mixers.comixup import CoMixup
from ..mixers.cutmix import CutMix
from ..mixers.dirichlet import DirichletMixUp
from ..mixers.mosaic import Mosaic

__all__ = ["PAIRINGS", "check_pairing", "pairing_scope"]

PAIRINGS = ("random", "roll", "mixer")
_UNSET = object()


def _roll_partner(x: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    b = x.shape[0]
    return (torch.arange(b, device=x.device) - 1) % b


def check_pairing(pairing: str, mixer: Mixer, owner: str) -> str:
    if pairing not in PAIRINGS:
        raise ValueError(f"{owner}: pairing must be one of {PAIRINGS}, got {pairing!r}")
    if pairing == "roll":
        bad = [type(m).__name__ for m in mixer.modules() if isinstance(m, (DirichletMixUp, CoMixup, Mosaic))
               or (isinstance(m, CutMix) and getattr(m, "num_mix", 1) > 1)]
        if bad:
            raise ValueError(f"{owner}: pairing='roll' pairs each sample with one partner, but {bad[0]} mixes more "
                             "than two sources with its own assignment; use pairing='random' or 'mixer'")
    return pairing


@contextmanager
def pairing_scope(mixer: Mixer, pairing: str) -> Iterator[None]:
    """Apply ``pairing`` to every mixer of ``mixer``'s tree for the duration of the block."""
    if pairing == "mixer":
        yield
        return
    mixers = [m for m in mixer.modules() if isinstance(m, Mixer)]
    saved = [(m, m.no_self_pairs, m.__dict__.get("_partner", _UNSET)) for m in mixers]
    try:
        for m in mixers:
            if pairing == "random":
                m.no_self_pairs = True
            else:  # an instance attribute shadows Mixer._partner for this call
                m.__dict__["_partner"] = _roll_partner
        yield
    finally:
        for m, no_self, partner in saved:
            m.no_self_pairs = no_self
            if partner is _UNSET:
                m.__dict__.pop("_partner", None)
            else:
                m.__dict__["_partner"] = partner
