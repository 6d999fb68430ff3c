"""A torchvision-v2-style transform: ``(images, labels) -> (mixed, soft_labels)``.

``MixTransform`` sits where ``torchvision.transforms.v2.MixUp`` / ``CutMix`` sit: after the DataLoader
(on the device) or inside a ``collate_fn``. It takes ``(images, labels)`` as two arguments, or one tuple
or dict (torchvision calls it with ``*default_collate(batch)`` or with the batch itself), and returns the
same structure with the images mixed and the labels replaced by ``(B, K)`` float32 soft targets.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from .._validate import check_batch, check_generator, check_labels, check_num_classes
from ..mixers.base import Mixer
from ..targets import _mix_labels

__all__ = ["MixTransform"]

#: keys searched (case-insensitively, in this order) for the labels of a dict batch
LABEL_KEYS = ("labels", "label", "targets", "target", "y", "class", "classes")
#: keys searched (case-insensitively, in this order) for the images of a dict batch
IMAGE_KEYS = ("images", "image", "inputs", "input", "pixel_values", "imgs", "img", "x")

LabelsGetter = Union[str, Callable[[Any], Tensor]]


def check_mixer(mixer: Any, owner: str) -> Mixer:
    if not isinstance(mixer, Mixer):
        raise TypeError(f"{owner}: mixer must be a mixkit Mixer (MixUp, CutMix, RandomChoice, ...), got {type(mixer).__name__}")
    return mixer


def resolve_num_classes(mixer: Mixer, num_classes: Optional[int], owner: str) -> Optional[int]:
    num_classes = check_num_classes(num_classes)
    if num_classes is not None and mixer.num_classes is not None and num_classes != mixer.num_classes:
        raise ValueError(f"{owner}: num_classes={num_classes} disagrees with the mixer's num_classes={mixer.num_classes}")
    return num_classes if num_classes is not None else mixer.num_classes


def check_labels_getter(labels_getter: Any, owner: str) -> LabelsGetter:
    if (isinstance(labels_getter, str) and labels_getter == "default") or callable(labels_getter):
        return labels_getter
    raise TypeError(f"{owner}: labels_getter must be 'default' or a callable batch -> labels tensor, got {labels_getter!r}")


def _find_key(d: dict, candidates: Tuple[str, ...], exclude: Any = None) -> Any:
    lower = {}
    for k in d:
        if isinstance(k, str) and k is not exclude:
            lower.setdefault(k.lower(), k)
    for c in candidates:
        if c in lower:
            return lower[c]
    return None


def split_batch(batch: Any, labels_getter: LabelsGetter = "default"):
    """Find the images and labels in a collated batch.

    Returns ``(x, y, rebuild)`` where ``rebuild(x_new, y_new, extra=None)`` gives the batch back with the
    same structure: a tuple/list ``(x_new, y_new, *rest[, extra])`` or a dict copy with the image and
    label entries replaced (and ``extra`` under ``"mix_result"``).

    * tuple/list: images are element 0 and labels element 1 (``"default"``), or the element returned by
      ``labels_getter(batch)`` (found by identity; images are then the first other tensor).
    * dict: labels under the first of :data:`LABEL_KEYS` (case-insensitive) or from ``labels_getter``;
      images under the first of :data:`IMAGE_KEYS`, else the only other floating tensor with >= 3 dims.
    """
    if isinstance(batch, (tuple, list)):
        items = list(batch)
        if isinstance(labels_getter, str):
            if len(items) < 2:
                raise ValueError(f"expected a batch (images, labels), got a {type(batch).__name__} of length {len(items)}")
            xi, yi = 0, 1
        else:
            y = labels_getter(batch)
            yi = next((i for i, v in enumerate(items) if v is y), None)
            if yi is None:
                raise ValueError("labels_getter must return one of the batch's elements (the labels tensor itself)")
            xi = next((i for i, v in enumerate(items) if i != yi and isinstance(v, Tensor)), None)
            if xi is None:
                raise ValueError("no images tensor found in the batch besides the labels")
        x, y = items[xi], items[yi]
        rest = [v for i, v in enumerate(items) if i not in (xi, yi)]
        is_tuple = isinstance(batch, tuple)

        def rebuild(x_new, y_new, extra=None):
            out = [x_new, y_new, *rest] + ([extra] if extra is not None else [])
            return tuple(out) if is_tuple else out

        return x, y, rebuild
    if isinstance(batch, dict):
        if isinstance(labels_getter, str):
            yk = _find_key(batch, LABEL_KEYS)
            if yk is None:
                raise ValueError(f"could not find the labels in a dict batch with keys {list(batch)}; "
                                 f"use one of {LABEL_KEYS} or pass labels_getter=")
        else:
            y = labels_getter(batch)
            yk = next((k for k, v in batch.items() if v is y), None)
            if yk is None:
                raise ValueError("labels_getter must return one of the batch's values (the labels tensor itself)")
        xk = _find_key(batch, IMAGE_KEYS, exclude=yk)
        if xk is None:
            cands = [k for k, v in batch.items() if k != yk and isinstance(v, Tensor) and v.is_floating_point() and v.dim() >= 3]
            if len(cands) != 1:
                raise ValueError(f"could not find the images in a dict batch with keys {list(batch)}; use one of {IMAGE_KEYS}")
            xk = cands[0]

        def rebuild(x_new, y_new, extra=None):
            out = dict(batch)
            out[xk], out[yk] = x_new, y_new
            if extra is not None:
                out["mix_result"] = extra
            return out

        return batch[xk], batch[yk], rebuild
    if isinstance(batch, Tensor):
        raise ValueError("got only an images tensor: pass (images, labels) -- the labels are needed to build soft targets")
    raise TypeError(f"expected a batch (images, labels) as a tuple, list or dict, got {type(batch).__name__}")


def mix_batch(mixer: Mixer, x: Tensor, y: Tensor, num_classes: Optional[int],
              generator: Optional[torch.Generator], return_result: bool = False):
    """Mix ``(x, y)``; returns ``(x_mix, y_soft, res)``, or ``(x_mix, y, res)`` with ``return_result``.

    Labels are validated (once) before anything is drawn, so a bad batch never consumes randomness.
    """
    x = check_batch(x, "images")
    if return_result:
        if not isinstance(y, Tensor):
            raise TypeError(f"labels must be a torch.Tensor, got {type(y).__name__}")
        if y.dim() == 0 or y.shape[0] != x.shape[0]:
            raise ValueError(f"labels have shape {tuple(y.shape)} but the image batch has B={x.shape[0]}; they must match")
        res = mixer.mix(x, y, generator=generator)
        return res.inputs, y, res
    check_labels(y, x.shape[0], num_classes, "labels")
    res = mixer.mix(x, y, generator=generator)
    return res.inputs, _mix_labels(y, res, num_classes, mixer.smoothing), res


class MixTransform(nn.Module):
    """Batch transform ``(images, labels) -> (mixed, soft_labels)``, a drop-in for torchvision v2's
    ``MixUp`` / ``CutMix`` (and ``v2.RandomChoice`` of them, with a :class:`~mixkit.mixers.compose.RandomChoice`).

    Args:
        mixer: any mixkit mixer (``MixUp``, ``CutMix``, ``RandomChoice`` ...).
        num_classes: K, needed for class-id labels ``(B,)``; defaults to ``mixer.num_classes``.
            ``(B, K)`` one-hot / probability labels need none (torchvision PR #8427).
        labels_getter: ``"default"`` (element 1 of a tuple; a ``"labels"``-like key of a dict) or a
            callable ``batch -> labels`` returning the labels tensor of the batch.
        generator: default ``torch.Generator`` for the draws (``None``: torch's global RNG); a
            ``generator=`` passed to the call wins.
        return_result: return ``(mixed, labels, MixResult)`` (labels untouched) for two-term losses
            (``mixkit.mixed_loss``) instead of soft targets.

    Call forms: ``t(images, labels)``, ``t((images, labels))``, ``t({"image": ..., "label": ...})``;
    the output has the input's structure (extra tuple elements and dict entries pass through).
    Label smoothing is the mixer's ``smoothing`` (0 by default). Unlike torchvision, there is a ``p``
    (the mixer's), pairing is a random permutation (not ``roll(1)``), and ``mode="sample"`` gives a
    lambda per sample.
    """

    def __init__(self, mixer: Mixer, num_classes: Optional[int] = None, labels_getter: LabelsGetter = "default",
                 generator: Optional[torch.Generator] = None, return_result: bool = False) -> None:
        super().__init__()
        self.mixer = check_mixer(mixer, "MixTransform")
        self.num_classes = resolve_num_classes(self.mixer, num_classes, "MixTransform")
        self.labels_getter = check_labels_getter(labels_getter, "MixTransform")
        self.generator = check_generator(generator)
        self.return_result = bool(return_result)

    def forward(self, *inputs: Any, generator: Optional[torch.Generator] = None) -> Any:
        if not inputs:
            raise ValueError("MixTransform expects (images, labels)")
        batch = inputs if len(inputs) > 1 else inputs[0]
        x, y, rebuild = split_batch(batch, self.labels_getter)
        g = check_generator(generator) if generator is not None else self.generator
        x_mix, y_out, res = mix_batch(self.mixer, x, y, self.num_classes, g, self.return_result)
        return rebuild(x_mix, y_out, res if self.return_result else None)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, return_result={self.return_result}"
