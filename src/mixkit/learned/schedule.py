"""The EMA-teacher momentum schedule of AutoMix and AdAutoMix (OpenMixup's ``CosineScheduleHook``).

With ``adjust_scope = (a, b)`` over ``T`` iterations, ``t0 = int(a T)`` and ``t1 = int(b T)`` (``T``
itself when ``b >= 1``), the momentum used for the EMA update after iteration ``t`` (0-based) is

* ``m0`` for ``t < t0`` (``warming_up="constant"``, the configs' choice; the hook's other mode,
  ``"linear"``, is ``m_end - (m_end - m0) (t0 - t) / t0``: ``m0`` at ``t = 0`` rising towards ``m_end``),
* ``m_end - (m_end - m0) * (cos(pi t / t1) + 1) / 2`` for ``t0 <= t <= t1`` (the cosine runs over
  ``[0, t1]``, so it starts at ``t0`` a little above ``m0``: at ``t0 = 0.1 T``, 2.4% of the way),
* the value at ``t1`` (``m_end``) afterwards (the hook stops adjusting and the last value stays).

The official hook also sets the momentum to 0 at any iteration divisible by its ``restart_step``
(default 1e10: in practice only ``t = 0``, and only when ``t0 = 0``, i.e. fewer than 10 iterations);
that degenerate copy is not reproduced.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Tuple

__all__ = ["CosineMomentum", "cosine_momentum"]


def cosine_momentum(step: int, total_steps: int, base: float = 0.999, end: float = 0.999999,
                    adjust_scope: Tuple[float, float] = (0.1, 1.0), warming_up: str = "constant") -> float:
    """The momentum of the EMA update after iteration ``step`` (0-based) of ``total_steps``."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    a, b = adjust_scope
    t1 = int(total_steps * b) if b < 1 else int(total_steps)
    t0 = int(total_steps * a) if a > 0 else 0
    t = min(int(step), t1)
    if t < t0:
        if warming_up == "constant":
            return float(base)
        return float(end - (end - base) * ((t0 - t) / t0))  # "linear"
    return float(end - (end - base) * (math.cos(math.pi * t / float(t1)) + 1) / 2)


class CosineMomentum:
    """Callable schedule ``step -> momentum`` (see the module docstring); ``total_steps`` may be set later.

    Args:
        base: ``m0`` (the official ``momentum``, 0.999).
        end: ``m_end`` (the hook's ``end_momentum``; 0.999999 on CIFAR).
        total_steps: ``T``, the number of training iterations (``epochs * iterations per epoch``).
        adjust_scope: fractions of ``T`` between which the cosine applies (official ``[0.1, 1.0]``).
        warming_up: ``"constant"`` (official configs) or ``"linear"``.
    """

    def __init__(self, base: float = 0.999, end: float = 0.999999, total_steps: Optional[int] = None,
                 adjust_scope: Tuple[float, float] = (0.1, 1.0), warming_up: str = "constant") -> None:
        if not 0.0 <= base <= end <= 1.0:
            raise ValueError(f"momentum must satisfy 0 <= base <= end <= 1, got base={base}, end={end}")
        a, b = (float(v) for v in adjust_scope)
        if not 0.0 <= a <= b:
            raise ValueError(f"adjust_scope must be (a, b) with 0 <= a <= b, got {adjust_scope!r}")
        if warming_up not in ("constant", "linear"):
            raise ValueError(f"warming_up must be 'constant' or 'linear', got {warming_up!r}")
        self.base, self.end = float(base), float(end)
        self.adjust_scope = (a, b)
        self.warming_up = warming_up
        self.total_steps: Optional[int] = None
        if total_steps is not None:
            self.set_total_steps(total_steps)

    def set_total_steps(self, total_steps: int) -> None:
        if isinstance(total_steps, bool) or int(total_steps) != total_steps or total_steps < 1:
            raise ValueError(f"total_steps must be a positive int, got {total_steps!r}")
        self.total_steps = int(total_steps)

    def __call__(self, step: int) -> float:
        if self.total_steps is None:
            raise RuntimeError("the cosine momentum schedule needs the total number of training iterations: pass "
                               "total_steps=... to the learner or call learner.set_total_steps(n) (or give an explicit "
                               "momentum_schedule callable)")
        return cosine_momentum(step, self.total_steps, self.base, self.end, self.adjust_scope, self.warming_up)

    def state_dict(self) -> Dict[str, Any]:
        return {"base": self.base, "end": self.end, "total_steps": self.total_steps,
                "adjust_scope": list(self.adjust_scope), "warming_up": self.warming_up}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.base, self.end = float(state["base"]), float(state["end"])
        self.adjust_scope = tuple(float(v) for v in state["adjust_scope"])
        self.warming_up = str(state["warming_up"])
        self.total_steps = None if state["total_steps"] is None else int(state["total_steps"])

    def __repr__(self) -> str:
        return (f"CosineMomentum(base={self.base}, end={self.end}, total_steps={self.total_steps}, "
                f"adjust_scope={self.adjust_scope}, warming_up={self.warming_up!r})")
