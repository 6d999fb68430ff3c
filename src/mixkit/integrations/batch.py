"""Finding the images, labels and dense targets of a collated batch, as torchvision v2 does.

:func:`split_batch` reads a batch given as ``(images, labels, *rest)``, ``(images, {"labels": ...,
"masks": ...})`` or a dict, with torchvision's ``labels_getter="default"`` heuristic, and returns a
:class:`Batch` that rebuilds the same structure around the mixed tensors. Entries that would be left
misaligned by mixing the images alone (bounding boxes, masks, other per-pixel maps) are refused unless
named in ``dense_keys`` (then mixed with :meth:`~mixkit.MixResult.mix_dense`). See
``docs/integrations/torchvision.md``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Dict, Optional, Tuple, Union

from torch import Tensor

__all__ = ["Batch", "split_batch", "find_label_key", "is_tv", "LABEL_KEYS", "IMAGE_KEYS"]

#: keys tried (case-insensitively, exact) after torchvision's rule ("labels", then any key containing "label")
LABEL_KEYS = ("targets", "target", "y", "class", "classes")
#: keys searched (case-insensitively, in this order) for the images of a dict batch
IMAGE_KEYS = ("images", "image", "inputs", "input", "pixel_values", "imgs", "img", "x", "video", "videos")

LabelsGetter = Union[str, Callable[[Any], Tensor]]
DenseKeys = Dict[Union[str, int], Optional[int]]


def is_tv(v: Any, *names: str) -> bool:
    """Whether ``v`` is one of torchvision's ``tv_tensors`` classes ``names`` (found by name, so that
    torchvision is never imported)."""
    return isinstance(v, Tensor) and any(
        c.__name__ in names and c.__module__.startswith("torchvision") for c in type(v).__mro__)


def find_label_key(d: Mapping, exclude: Any = None) -> Any:
    """torchvision's heuristic: the key ``"labels"`` (case-insensitive), else the first key containing
    ``"label"``; then (mixkit) the first of :data:`LABEL_KEYS`. ``None`` when nothing matches."""
    keys = [k for k in d if isinstance(k, str) and k is not exclude]
    for match in (lambda k: k.lower() == "labels", lambda k: "label" in k.lower()):
        found = next((k for k in keys if match(k)), None)
        if found is not None:
            return found
    lower = {}
    for k in keys:
        lower.setdefault(k.lower(), k)
    return next((lower[c] for c in LABEL_KEYS if c in lower), None)


def _find_image_key(d: Mapping, exclude: Any) -> Any:
    tv = [k for k, v in d.items() if k is not exclude and is_tv(v, "Image", "Video")]
    if len(tv) == 1:
        return tv[0]
    lower = {}
    for k in d:
        if isinstance(k, str) and k is not exclude:
            lower.setdefault(k.lower(), k)
    found = next((lower[c] for c in IMAGE_KEYS if c in lower), None)
    if found is not None:
        return found
    cands = [k for k, v in d.items() if k is not exclude and isinstance(v, Tensor) and v.is_floating_point() and v.dim() >= 3]
    if len(cands) != 1:
        raise ValueError(f"could not find the images in a dict batch with keys {list(d)}; use one of {IMAGE_KEYS}")
    return cands[0]


class Batch:
    """A split batch: ``x`` (images), ``y`` (labels), ``dense`` (name -> per-pixel target to mix) and the
    structure to rebuild. ``others`` holds every other entry as ``(name, value)`` for the checks."""

    def __init__(self, x: Tensor, y: Any, rebuild: Callable[..., Any], others: list) -> None:
        self.x, self.y, self._rebuild, self.others = x, y, rebuild, others
        self.dense: Dict[Any, Tensor] = {}

    def rebuild(self, x_new: Tensor, y_new: Any, dense: Optional[Dict[Any, Tensor]] = None, extra: Any = None) -> Any:
        """The batch with the images, labels and dense targets replaced (``extra``: the MixResult)."""
        return self._rebuild(x_new, y_new, dense or {}, extra)


def _from_tuple(batch: Union[tuple, list], labels_getter: LabelsGetter) -> Batch:
    items = list(batch)
    wrap = tuple if isinstance(batch, tuple) else list
    if isinstance(labels_getter, str):
        if len(items) < 2:
            raise ValueError(f"expected a batch (images, labels), got a {type(batch).__name__} of length {len(items)}")
        xi, yi = 0, 1
        if isinstance(items[1], Mapping):  # (images, {"labels": ..., ...}), as torchvision's detection inputs
            return _from_nested(items, wrap)
    else:
        y = labels_getter(batch)
        yi = next((i for i, v in enumerate(items) if v is y), None)
        if yi is None and len(items) >= 2 and isinstance(items[1], Mapping):
            yk = next((k for k, v in items[1].items() if v is y), None)
            if yk is not None:
                return _from_nested(items, wrap, yk)
        if yi is None:
            raise ValueError("labels_getter must return one of the batch's elements (the labels tensor itself)")
        xi = next((i for i, v in enumerate(items) if i != yi and isinstance(v, Tensor)), None)
        if xi is None:
            raise ValueError("no images tensor found in the batch besides the labels")
    rest = [(i, v) for i, v in enumerate(items) if i not in (xi, yi)]

    def rebuild(x_new, y_new, dense, extra):
        out = [x_new, y_new] + [dense.get(i, v) for i, v in rest] + ([extra] if extra is not None else [])
        return wrap(out)

    return Batch(items[xi], items[yi], rebuild, rest)


def _from_nested(items: list, wrap: Callable, yk: Any = None) -> Batch:
    inner = items[1]
    yk = find_label_key(inner) if yk is None else yk
    if yk is None:
        raise ValueError(f"could not find the labels in the batch's second element, a dict with keys {list(inner)}: "
                         "torchvision's heuristic looks for a 'labels' key (or one containing 'label'); "
                         "pass labels_getter=")
    rest = [(i, v) for i, v in enumerate(items) if i >= 2]
    others = [(k, v) for k, v in inner.items() if k != yk] + rest

    def rebuild(x_new, y_new, dense, extra):
        d = type(inner)(inner) if isinstance(inner, dict) else dict(inner)
        d[yk] = y_new
        for k in d:
            if k in dense and k != yk:
                d[k] = dense[k]
        out = [x_new, d] + [dense.get(i, v) for i, v in rest] + ([extra] if extra is not None else [])
        return wrap(out)

    return Batch(items[0], inner[yk], rebuild, others)


def _from_dict(batch: Mapping, labels_getter: LabelsGetter) -> Batch:
    if isinstance(labels_getter, str):
        yk = find_label_key(batch)
        if yk is None:
            raise ValueError(f"could not find the labels in a dict batch with keys {list(batch)}: torchvision's "
                             f"heuristic looks for 'labels' (or a key containing 'label'), mixkit also for "
                             f"{LABEL_KEYS}; or pass labels_getter=")
    else:
        y = labels_getter(batch)
        yk = next((k for k, v in batch.items() if v is y), None)
        if yk is None:
            raise ValueError("labels_getter must return one of the batch's values (the labels tensor itself)")
    xk = _find_image_key(batch, yk)

    def rebuild(x_new, y_new, dense, extra):
        out = dict(batch)
        out[xk], out[yk] = x_new, y_new
        out.update(dense)
        if extra is not None:
            out["mix_result"] = extra
        return out

    return Batch(batch[xk], batch[yk], rebuild, [(k, v) for k, v in batch.items() if k not in (xk, yk)])


def split_batch(batch: Any, labels_getter: LabelsGetter = "default", dense_keys: Optional[DenseKeys] = None) -> Batch:
    """Find the images, the labels and the dense targets of a collated batch.

    * tuple/list ``(images, labels, *rest)``: element 0 and element 1 (``"default"``), or the element
      ``labels_getter(batch)`` returns (found by identity; the images are then the first other tensor).
    * ``(images, {"labels": ..., ...}, *rest)``: the labels in the dict, by the key heuristic below.
    * dict: the labels under ``"labels"`` (case-insensitive), else the first key containing ``"label"``
      (torchvision's rule), else the first of :data:`LABEL_KEYS`; the images under a ``tv_tensors``
      Image/Video value, else the first of :data:`IMAGE_KEYS`, else the only other float tensor (>= 3 dims).

    Bounding boxes are refused; masks (``tv_tensors.Mask``, a key containing "mask") and other per-pixel
    tensors (batch dim and the images' spatial size) are refused unless named in ``dense_keys``.
    """
    if isinstance(batch, (tuple, list)):
        b = _from_tuple(batch, labels_getter)
    elif isinstance(batch, Mapping):
        b = _from_dict(batch, labels_getter)
    elif isinstance(batch, Tensor):
        raise ValueError("got only an images tensor: pass (images, labels) -- the labels are needed to build soft targets")
    else:
        raise TypeError(f"expected a batch (images, labels) as a tuple, list or dict, got {type(batch).__name__}")
    _check_others(b, dense_keys or {})
    return b


def _check_others(b: Batch, dense_keys: DenseKeys) -> None:
    x = b.x
    if not isinstance(x, Tensor):
        return  # the images' own check names the problem
    names = {k for k, _ in b.others}
    missing = [k for k in dense_keys if k not in names]
    if missing:
        raise ValueError(f"dense_keys {missing} are not entries of the batch (its other entries: {sorted(map(str, names))})")
    n_sp = 2 if x.dim() >= 4 else x.dim() - 2
    spatial = tuple(x.shape[-n_sp:]) if n_sp > 0 else ()
    for k, v in b.others:
        lower = k.lower() if isinstance(k, str) else ""
        if is_tv(v, "BoundingBoxes", "BoundingBox") or "box" in lower:
            raise ValueError(f"the batch holds bounding boxes (entry {k!r}): mixing cannot move them (torchvision's "
                             "MixUp/CutMix refuse them too); remove them from the batch before mixing")
        if k in dense_keys:
            if not isinstance(v, Tensor):
                raise TypeError(f"dense_keys: entry {k!r} must be a tensor, got {type(v).__name__}")
            b.dense[k] = v
            continue
        per_pixel = (isinstance(v, Tensor) and v.dim() >= 1 + n_sp and v.shape[0] == x.shape[0] and n_sp > 0
                     and tuple(v.shape[-n_sp:]) == spatial)
        if is_tv(v, "Mask") or "mask" in lower or per_pixel:
            shape = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
            raise ValueError(f"the batch holds a mask or per-pixel target (entry {k!r}, {shape}) that mixing the images "
                             f"alone would misalign (torchvision's MixUp/CutMix refuse masks): pass dense_keys=({k!r},) "
                             "to mix it with the images (MixResult.mix_dense), or remove it from the batch")
