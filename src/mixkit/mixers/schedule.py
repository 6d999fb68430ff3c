"""Scheduled: switch a mixer on and off by epoch or step, with a clock that reaches DataLoader workers."""
from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import Tensor

from .._validate import check_int
from .base import Mixer
from .composite import Composite
from .params import MixParams

__all__ = ["Scheduled"]


class Scheduled(Composite):
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
        """The epoch last given by :meth:`set_epoch` (0 before)."""
        return int(self._clock[0])

    @property
    def global_step(self) -> int:
        """The global step last given by :meth:`set_step` (0 before)."""
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
