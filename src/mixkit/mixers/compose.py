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
  ``set_epoch`` in the main process reaches DataLoader workers, persistent ones included.

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
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from .. import sampling
from .._validate import check_int, check_num_classes, check_probs
from ..result import MixResult
from .base import Mixer
from .params import MixParams

__all__ = ["RandomChoice", "Alternate", "Scheduled"]


# ---------------------------------------------------------------------------------------------- helpers
def _check_mixers(mixers: Any, owner: str) -> Tuple[Mixer, ...]:
    if isinstance(mixers, Mixer):
        raise TypeError(f"{owner}: mixers must be a sequence of Mixer instances, got a single {type(mixers).__name__}; wrap it in a list")
    try:
        mixers = tuple(mixers)
    except TypeError:
        raise TypeError(f"{owner}: mixers must be a sequence of Mixer instances, got {type(mixers).__name__}") from None
    if not mixers:
        raise ValueError(f"{owner}: mixers must contain at least one Mixer, got an empty sequence")
    for i, m in enumerate(mixers):
        if not isinstance(m, Mixer):
            raise TypeError(f"{owner}: mixers[{i}] must be a mixkit Mixer, got {type(m).__name__}")
    return mixers


def _common_mode(mixers: Sequence[Mixer], owner: str) -> str:
    modes = {m.mode for m in mixers}
    if len(modes) != 1:
        desc = ", ".join(f"{type(m).__name__}(mode={m.mode!r})" for m in mixers)
        raise ValueError(f"{owner}: all mixers must use the same mode ('batch' or 'sample'), got {desc}")
    return modes.pop()


def _common_num_classes(mixers: Sequence[Mixer], num_classes: Optional[int], owner: str) -> Optional[int]:
    num_classes = check_num_classes(num_classes)
    if num_classes is not None:
        return num_classes
    found = {m.num_classes for m in mixers if m.num_classes is not None}
    if len(found) > 1:
        raise ValueError(f"{owner}: the mixers disagree on num_classes ({sorted(found)}); pass num_classes= explicitly")
    return found.pop() if found else None


def _common_smoothing(mixers: Sequence[Mixer], smoothing: Optional[float], owner: str) -> float:
    if smoothing is not None:
        return float(smoothing)  # range checked by Mixer.__init__
    found = {m.smoothing for m in mixers}
    if len(found) > 1:
        raise ValueError(f"{owner}: the mixers disagree on smoothing ({sorted(found)}); pass smoothing= explicitly")
    return found.pop()


def _common_spatial_dims(mixers: Sequence[Mixer], owner: str) -> Tuple[int, ...]:
    dims = set(mixers[0].spatial_dims)
    for m in mixers[1:]:
        dims &= set(m.spatial_dims)
    if not dims:
        raise ValueError(f"{owner}: the mixers share no supported spatial dimensionality "
                         f"({[tuple(m.spatial_dims) for m in mixers]})")
    return tuple(sorted(dims))


class _Composite(Mixer):
    """Shared plumbing: children as an ``nn.ModuleList``, common mode / classes / dims, input checks, and
    the replay of the chosen child's params (``draws["child"]``, the child ``draws["choice"]``)."""

    def __init__(self, mixers: Sequence[Mixer], *, p: float = 1.0, num_classes: Optional[int] = None,
                 smoothing: Optional[float] = None) -> None:
        owner = type(self).__name__
        mixers = _check_mixers(mixers, owner)
        mode = _common_mode(mixers, owner)
        super().__init__(1.0, mode=mode, p=p, num_classes=_common_num_classes(mixers, num_classes, owner),
                         smoothing=_common_smoothing(mixers, smoothing, owner))
        self.alpha = None  # a composite has no lambda distribution of its own
        self.mixers = nn.ModuleList(mixers)
        self.spatial_dims = _common_spatial_dims(mixers, owner)
        self.needs_labels = any(m.needs_labels for m in mixers)

    def _check_input(self, x: Tensor) -> None:
        # Every child checks the batch, so a bad input fails on every call, not only when a child is drawn.
        for m in self.mixers:
            m._check_input(x)

    def _draw_child(self, i: int, x: Tensor, y: Optional[Tensor], active: Optional[Tensor],
                    generator: Optional[torch.Generator], **draws: Any) -> MixParams:
        """Params choosing child ``i`` and holding its draws (its own ``p`` gate applied once, on top of
        this composite's row selection ``active``)."""
        return MixParams(active=active, draws={**draws, "child": self.mixers[i]._draw(x, y, generator, active)})

    def _apply(self, x: Tensor, params: MixParams) -> MixResult:
        draws = dict(params.draws)
        child_params = draws.pop("child")
        child = self.mixers[draws.get("choice", 0)]
        res = child._replay(x, child_params)
        if child_params.mixed:
            res.params.setdefault("method", type(child).__name__)
        else:  # the child's own p gate said no
            res.params["method"] = None
        res.params.update(draws)
        return res

    def _unmixed(self, x: Tensor, params: MixParams) -> MixResult:
        res = super()._unmixed(x, params)
        res.params.setdefault("method", None)
        return res

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, p={self.p}, num_classes={self.num_classes}, smoothing={self.smoothing}"


# ------------------------------------------------------------------------------------------ RandomChoice
class RandomChoice(_Composite):
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
class Alternate(_Composite):
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


# ------------------------------------------------------------------------------------------- Scheduled
class Scheduled(_Composite):
    """Switch ``mixer`` on only for ``start <= t < stop``, where ``t`` is the epoch or the step.

    * ``Scheduled(m, stop=E)``: timm's ``--mixup-off-epoch E`` (no mixing from epoch ``E`` on);
    * ``Scheduled(m, start=W)``: warm-up without mixing for the first ``W`` epochs (or steps);
    * ``None`` leaves that side open. Epochs and steps count from 0.

    Args:
        mixer: the mixer to schedule (any Mixer, composites included); its own ``p`` still applies.
        start: first epoch/step with mixing (``None``: from the beginning).
        stop: first epoch/step without mixing again (``None``: never stops).
        unit: ``"epoch"`` or ``"step"`` -- which clock ``start``/``stop`` refer to.
        num_classes, smoothing: used by ``forward``; default to the mixer's.

    The clock: ``set_epoch(e)`` (call it before iterating the epoch, like
    ``DistributedSampler.set_epoch``), ``set_step(s)``, ``step(n=1)``; read with ``epoch`` /
    ``global_step`` / ``enabled``. Or pass the value explicitly: ``mix(x, epoch=e)`` /
    ``forward(x, y, step=s)`` make the call a pure function of it.

    DataLoader workers: the clock is an int64 tensor in shared memory (``share_memory_()``), so a
    collate function holding this object -- copied into workers by fork, or pickled by the
    DataLoader's multiprocessing pickler under spawn/forkserver -- reads the value the main process
    last set, **including with** ``persistent_workers=True``. (timm's ``mixup_enabled = False``
    only changes the main-process copy of ``FastCollateMixup``, so ``--mixup-off-epoch`` does not
    reach persistent workers -- bug B21. That does not happen here.) Caveats:

    * workers collate ahead of the training loop (up to ``prefetch_factor * num_workers`` batches),
      so a step-unit schedule changed with ``set_step`` inside the loop takes effect a few batches
      late in workers; epoch-unit schedules set before the epoch's iteration starts are exact. For
      exact step boundaries, run the mixer after the DataLoader or pass ``step=``.
    * an ordinary ``pickle``/``copy.deepcopy`` makes an independent copy of the clock (a snapshot).
    * the clock is a plain attribute, not a buffer: ``.to(device)`` leaves it in shared CPU memory.

    ``state_dict()`` holds ``{"epoch", "step"}`` as module extra state; ``load_state_dict`` writes it
    back into the shared clock. ``MixResult.params["scheduled_on"]`` says whether the schedule was on.
    """

    _UNITS = ("epoch", "step")
    _sample_options = ("epoch", "step")

    def __init__(self, mixer: Mixer, start: Optional[int] = None, stop: Optional[int] = None,
                 unit: str = "epoch", *, num_classes: Optional[int] = None,
                 smoothing: Optional[float] = None) -> None:
        if not isinstance(mixer, Mixer):
            raise TypeError(f"Scheduled: mixer must be a mixkit Mixer, got {type(mixer).__name__}")
        super().__init__([mixer], p=1.0, num_classes=num_classes, smoothing=smoothing)
        if unit not in self._UNITS:
            raise ValueError(f"unit must be one of {self._UNITS}, got {unit!r}")
        self.unit = unit
        self.start = None if start is None else check_int(start, "start")
        self.stop = None if stop is None else check_int(stop, "stop")
        if self.start is not None and self.stop is not None and self.stop < self.start:
            raise ValueError(f"stop must be >= start, got start={self.start}, stop={self.stop}")
        # [epoch, step] in shared memory so that DataLoader workers (persistent or not) see updates.
        self._clock = torch.zeros(2, dtype=torch.int64).share_memory_()

    @property
    def mixer(self) -> Mixer:
        """The scheduled mixer."""
        return self.mixers[0]

    # ------------------------------------------------------------------ clock
    @property
    def epoch(self) -> int:
        return int(self._clock[0])

    @property
    def global_step(self) -> int:
        return int(self._clock[1])

    def set_epoch(self, epoch: int) -> None:
        """Set the current epoch (0-based); visible to DataLoader workers holding this object."""
        self._clock[0] = check_int(epoch, "epoch")

    def set_step(self, step: int) -> None:
        """Set the current global step (0-based); visible to DataLoader workers holding this object."""
        self._clock[1] = check_int(step, "step")

    def step(self, n: int = 1) -> int:
        """Advance the global step by ``n`` and return the new value."""
        self._clock[1] += check_int(n, "n")
        return self.global_step

    def is_on(self, t: int) -> bool:
        """Whether mixing is on at time ``t`` (in ``unit``): ``start <= t < stop``."""
        return (self.start is None or t >= self.start) and (self.stop is None or t < self.stop)

    @property
    def enabled(self) -> bool:
        """Whether mixing is on at the current clock."""
        return self.is_on(self.epoch if self.unit == "epoch" else self.global_step)

    def get_extra_state(self) -> Dict[str, int]:
        return {"epoch": self.epoch, "step": self.global_step}

    def set_extra_state(self, state: Dict[str, int]) -> None:
        self.set_epoch(state["epoch"])
        self.set_step(state["step"])

    # ------------------------------------------------------------------ mixing
    def _on_now(self, epoch: Optional[int], step: Optional[int]) -> bool:
        """Whether the schedule is on for this call (``epoch``/``step`` given, else the clock)."""
        if epoch is not None:
            epoch = check_int(epoch, "epoch")
        if step is not None:
            step = check_int(step, "step")
        if self.unit == "epoch":
            return self.is_on(self.epoch if epoch is None else epoch)
        return self.is_on(self.global_step if step is None else step)

    def _skip(self, x: Tensor, epoch: Optional[int] = None, step: Optional[int] = None) -> MixParams:
        return MixParams(mixed=False, draws={"scheduled_on": self._on_now(epoch, step)})

    def _sample(self, x: Tensor, y: Optional[Tensor], active: Optional[Tensor], generator,
                epoch: Optional[int] = None, step: Optional[int] = None) -> MixParams:
        if not self._on_now(epoch, step):
            return MixParams(mixed=False, draws={"scheduled_on": False})
        return self._draw_child(0, x, y, active, generator, scheduled_on=True)

    def extra_repr(self) -> str:
        return (f"start={self.start}, stop={self.stop}, unit={self.unit!r}, epoch={self.epoch}, "
                f"step={self.global_step}, " + super().extra_repr())
