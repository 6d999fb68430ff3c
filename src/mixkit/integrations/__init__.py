"""Integration points: a DataLoader ``collate_fn`` and a torchvision-v2-style batch transform.

* :class:`MixCollate` -- ``DataLoader(..., collate_fn=MixCollate(mixer))``: mixes in the workers,
  with per-worker seeding and picklable outputs.
* :class:`MixTransform` -- ``nn.Module`` ``(images, labels) -> (mixed, soft_labels)``, where
  torchvision's ``v2.MixUp`` / ``v2.CutMix`` sit (after the DataLoader or inside a collate), with their
  behaviour (pairing, label heuristic, refusals, videos): ``docs/integrations/torchvision.md``.

:mod:`~mixkit.integrations.batch` finds images, labels and dense targets in a batch;
:mod:`~mixkit.integrations.pairing` holds the ``pairing=`` choices.
"""
from .collate import MixCollate
from .transform import MixTransform

__all__ = ["MixCollate", "MixTransform"]
