"""Composition of mixers: random choice, per-batch alternation, and on/off schedules.

Every composite is itself a :class:`~mixkit.mixers.base.Mixer`, so ``mix(x)``, ``forward(x, y)`` and
the :class:`~mixkit.MixResult` contract work unchanged, and composites nest (a ``Scheduled`` of a
``RandomChoice``, an ``Alternate`` of two ``RandomChoice`` ...).

* :class:`RandomChoice` -- per batch, mix with probability ``p`` using one child drawn with the given
  probabilities. timm's ``Mixup(mixup_alpha=a, cutmix_alpha=b, prob=p, switch_prob=s)`` is
  ``RandomChoice([MixUp(a), CutMix(b)], probs=[1 - s, s], p=p)``.
* :class:`Alternate` -- deterministic per-batch alternation: ``counts[0]`` batches of the first mixer,
  then ``counts[1]`` of the second, ... (the FMix repository's ``MSDAAlternator``, used for its
  MixUp/FMix "alt" runs). The step counter is explicit state (``state_dict``) or passed in (``step=``).
* :class:`Scheduled` -- switch a mixer off before ``start`` and from ``stop`` on, in epochs or steps
  (timm's ``--mixup-off-epoch``, fastai-style warm-up). The clock lives in shared memory so that
  ``set_epoch`` in the main process reaches DataLoader workers, persistent ones included. It lives in
  :mod:`mixkit.mixers.schedule` (re-exported here); their shared base is
  :class:`mixkit.mixers.composite.Composite`.

How ``p`` is applied (exactly once per level): a composite's own ``p`` gates the batch (batch mode) or
the rows (sample mode) before a child is run, and a child's own ``p`` (1 by default) then gates what
the child mixes. ``Alternate`` and ``Scheduled`` have no ``p`` of their own (it is 1): the child's
``p`` is the only gate. So ``RandomChoice([MixUp(), CutMix()], p=0.5)`` mixes half the batches, and
``RandomChoice([MixUp(p=0.5), CutMix()], p=0.5)`` mixes a quarter of the batches that drew MixUp: two
explicit gates are multiplied, never one gate applied twice (kornia #4649, bug B11).

A composite's ``sample`` draws its choice and then the chosen child's parameters (the child's own
``p`` gate included, through the same ``Mixer._draw`` as a top-level call, after the composite's
checks), and its ``apply`` replays the child's; so a child's ``mode``, ``inplace``, ``no_self_pairs``
and method options all apply. The composite's ``num_classes`` and ``smoothing`` are used by
``forward``; they default to the children's common values.
"""
from __future__ import annotations

import bisect
from typing import Dict, Optional, Sequence

import torch
from torch import Tensor

from .. import sampling
from .._validate import check_int, check_probs
from .base import Mixer
from .composite import Composite
from .params import MixParams
from .schedule import Scheduled  # re-exported: one import path for the three composites

__all__ = ["RandomChoice", "Alternate", "Scheduled"]


# ------------------------------------------------------------------------------------------ RandomChoice
class RandomChoice(Composite):
    """Per batch: with probability ``p`` mix, using one mixer drawn with probabilities ``probs``.

    timm's switch ``Mixup(mixup_alpha=a, cutmix_alpha=b, prob=p, switch_prob=s, mode='batch')`` is
    ``RandomChoice([MixUp(a), CutMix(b)], probs=[1 - s, s], p=p)`` (without timm's hidden
    ``label_smoothing=0.1``); torchvision's ``v2.RandomChoice([CutMix(), MixUp()])`` is
    ``RandomChoice([CutMix(), MixUp()])``.

    Args:
        mixers: the candidate mixers (at least one), all with the same ``mode``.
        probs: selection probabilities (non-negative, normalised to sum to 1); default uniform.
        p: probability that a batch (batch mode) or a row (sample mode) is mixed at all; applied once
            here, before the choice. Children keep their own ``p`` (1 by default), see the module notes.
        num_classes: used by ``forward``; defaults to the children's common value.
        smoothing: label smoothing used by ``forward``; defaults to the children's common value
            (0 unless they all set the same value).

    The choice is one draw per batch from the generator (in sample mode the chosen mixer then draws
    per-row parameters); ``mode``, ``spatial_dims`` and ``needs_labels`` come from the children (dims:
    those every child supports). ``MixResult.params["method"]`` is the class name of the mixer that
    produced the batch (``None`` when nothing was mixed) and ``params["choice"]`` its index in
    ``mixers`` (for nested choices, the index at the outermost level).
    """

    def __init__(self, mixers: Sequence[Mixer], probs: Optional[Sequence[float]] = None, p: float = 1.0,
                 num_classes: Optional[int] = None, smoothing: Optional[float] = None) -> None:
        super().__init__(mixers, p=p, num_classes=num_classes, smoothing=smoothing)
        self.probs = check_probs(probs, len(self.mixers))
        cum, acc = [], 0.0
        for q in self.probs:
            acc += q
            cum.append(acc)
        last = max(i for i, q in enumerate(self.probs) if q > 0)
        for i in range(last, len(cum)):  # guard against rounding: the last reachable entry ends at 1
            cum[i] = 1.0
        self._cum = tuple(cum)

    def choose(self, generator: Optional[torch.Generator] = None) -> int:
        """Draw the index of a mixer (one uniform draw from ``generator``)."""
        u = float(sampling.sample_uniform((), generator))
        return min(bisect.bisect_right(self._cum, u), len(self._cum) - 1)

    def _sample(self, x: Tensor, y: Optional[Tensor], active: Optional[Tensor], generator) -> MixParams:
        i = self.choose(generator)
        return self._draw_child(i, x, y, active, generator, choice=i)

    def extra_repr(self) -> str:
        return f"probs={tuple(round(q, 6) for q in self.probs)}, " + super().extra_repr()


# ------------------------------------------------------------------------------------------- Alternate
class Alternate(Composite):
    """Deterministic per-batch alternation: ``counts[0]`` batches of ``mixers[0]``, then ``counts[1]``
    of ``mixers[1]``, ..., then around again.

    This is the FMix repository's ``MSDAAlternator(a, b, n_a=1, n_b=1)`` (Harris et al., "FMix:
    Enhancing Mixed Sample Data Augmentation", arXiv 2002.12047; ``--msda-mode alt_mixup_fmix``): each
    batch is mixed by one method, the methods are not composed on the same batch.

    Args:
        mixers: the mixers to alternate (at least one), all with the same ``mode``.
        counts: how many consecutive batches each mixer gets (ints >= 0, not all 0); default 1 each.
        num_classes, smoothing: used by ``forward``; default to the children's common values.

    State: a step counter, advanced by one on every ``mix``/``forward``/``sample`` call that does not
    pass ``step=`` (a batch of size 1 counts too; ``apply`` replays a drawn step and does not count). It is explicit and checkpointable: ``state_dict()``
    holds it (as module extra state) and ``load_state_dict`` restores it; ``step_count`` reads and
    writes it. ``mix(x, step=i)`` / ``forward(x, y, step=i)`` instead make the choice a pure
    function of ``i`` (the counter is then neither read nor advanced).

    DataLoader workers: a collate function is copied into each worker, so each worker has its own
    counter and, with ``num_workers=N``, the alternation runs per worker (worker w sees batches
    w, w+N, ...), not over the global batch order. To alternate over the global order, run the
    ``Alternate`` after the DataLoader (in the training loop, on the device), or pass ``step=`` from
    something that knows the global batch index.

    There is no ``p`` of its own: each child's ``p`` is applied (once) when that child runs.
    ``MixResult.params`` holds ``"step"``, ``"choice"`` (index) and ``"method"``.
    """

    _sample_options = ("step",)

    def __init__(self, mixers: Sequence[Mixer], counts: Optional[Sequence[int]] = None, *,
                 num_classes: Optional[int] = None, smoothing: Optional[float] = None) -> None:
        super().__init__(mixers, p=1.0, num_classes=num_classes, smoothing=smoothing)
        n = len(self.mixers)
        if counts is None:
            counts = (1,) * n
        else:
            try:
                counts = tuple(counts)
            except TypeError:
                raise TypeError(f"counts must be a sequence of {n} ints >= 0, got {counts!r}") from None
            if len(counts) != n:
                raise ValueError(f"counts must have one entry per mixer ({n}), got {len(counts)}")
            counts = tuple(check_int(c, f"counts[{i}]") for i, c in enumerate(counts))
            if sum(counts) == 0:
                raise ValueError("counts must not all be 0")
        self.counts = counts
        ends, acc = [], 0
        for c in counts:
            acc += c
            ends.append(acc)
        self._ends = tuple(ends)
        self._step = 0

    @property
    def period(self) -> int:
        """Length of one full cycle, ``sum(counts)``."""
        return self._ends[-1]

    @property
    def step_count(self) -> int:
        """The number of batches seen so far (the step the next call uses)."""
        return self._step

    @step_count.setter
    def step_count(self, value: int) -> None:
        self._step = check_int(value, "step_count")

    def reset(self) -> None:
        """Set the counter back to 0."""
        self._step = 0

    def index_at(self, step: int) -> int:
        """Index of the mixer used at ``step`` (a pure function)."""
        step = check_int(step, "step")
        return bisect.bisect_right(self._ends, step % self.period)

    def get_extra_state(self) -> Dict[str, int]:
        return {"step": self._step}

    def set_extra_state(self, state: Dict[str, int]) -> None:
        self._step = check_int(state["step"], "step")

    def _take_step(self, step: Optional[int]) -> int:
        """The step of this call: ``step`` if given (the counter is then neither read nor advanced), else
        the counter, advanced by one."""
        if step is not None:
            return check_int(step, "step")
        s = self._step
        self._step = s + 1
        return s

    def _skip(self, x: Tensor, step: Optional[int] = None) -> MixParams:  # B = 1 counts as a step too
        s = self._take_step(step)
        return MixParams(mixed=False, draws={"step": s, "choice": self.index_at(s)})

    def _sample(self, x: Tensor, y: Optional[Tensor], active: Optional[Tensor], generator,
                step: Optional[int] = None) -> MixParams:
        s = self._take_step(step)
        i = self.index_at(s)
        return self._draw_child(i, x, y, active, generator, step=s, choice=i)

    def extra_repr(self) -> str:
        return f"counts={self.counts}, step={self._step}, " + super().extra_repr()
