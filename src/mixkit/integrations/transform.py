"""A torchvision-v2-style transform: ``(images, labels) -> (mixed, soft_labels)``.

``MixTransform`` sits where ``torchvision.transforms.v2.MixUp`` / ``CutMix`` sit: after the DataLoader
(on the device) or inside a ``collate_fn``. It takes ``(images, labels)`` as two arguments, or one tuple
or dict (torchvision calls it with ``*default_collate(batch)`` or with the batch itself), and returns the
same structure with the images mixed and the labels replaced by ``(B, K)`` float32 soft targets.
By default it behaves as torchvision's where users rely on it: no sample is mixed with itself, tensor
subclasses (``tv_tensors.Image``) are kept, the labels are found by torchvision's heuristic, unbatched
images, boxes and masks are refused (masks can be mixed: ``dense_keys=``), videos ``(B, T, C, H, W)``
get one region over ``(H, W)`` for every frame. Guide and migration table:
``docs/integrations/torchvision.md``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Dict, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from .._validate import check_batch, check_generator, check_labels, check_num_classes
from ..mixers.base import Mixer
from ..result import MixResult
from ..targets import _mix_labels
from .batch import Batch, DenseKeys, is_tv, split_batch
from .pairing import check_pairing, pairing_scope

__all__ = ["MixTransform"]

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


def check_seed(seed: Any, owner: str, name: str = "seed") -> Optional[int]:
    """``seed`` itself when it is an int or None (a bool is not a seed)."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"{owner}: {name} must be an int or None, got {type(seed).__name__}")
    return seed


def check_dense_keys(dense_keys: Any, owner: str) -> DenseKeys:
    """``dense_keys``: entries (dict keys, or tuple positions >= 2) mixed as dense targets; a sequence of
    keys, or a mapping key -> ``num_classes`` (needed to mix an integer map softly, e.g. under MixUp)."""
    if dense_keys is None:
        return {}
    if isinstance(dense_keys, (str, int)):
        dense_keys = (dense_keys,)
    items = dense_keys.items() if isinstance(dense_keys, Mapping) else ((k, None) for k in dense_keys)
    out: DenseKeys = {}
    for k, n in items:
        if isinstance(k, bool) or not isinstance(k, (str, int)):
            raise TypeError(f"{owner}: dense_keys must name batch entries (str keys or int positions), got {k!r}")
        out[k] = check_num_classes(n, f"dense_keys[{k!r}]")
    return out


def check_video(video: Any, mixer: Mixer, owner: str) -> Optional[bool]:
    if video is not None and not isinstance(video, bool):
        raise TypeError(f"{owner}: video must be None (auto: tv_tensors.Video), True or False, got {video!r}")
    if video:
        _refuse_model_mixers(mixer, owner)
    return video


def _refuse_model_mixers(mixer: Mixer, owner: str) -> None:
    bad = next((m for m in mixer.modules() if isinstance(m, Mixer) and (m.needs_model or m.runs_model)), None)
    if bad is not None:
        raise ValueError(f"{owner}: videos are mixed with their frames folded into channels, (B, T*C, H, W), which "
                         f"{type(bad).__name__} would pass to its model; use a method that does not run the model "
                         "(MixUp, CutMix, FMix, GridMix, HMix, ResizeMix, SaliencyMix ...)")


def check_batched(x: Any, mixer: Mixer, video: bool) -> None:
    """torchvision's refusal of an unbatched input (``MixTransform`` only: a collate always batches)."""
    if not isinstance(x, Tensor):
        return  # check_batch names the problem
    d = x.dim()
    sequences = d == 3 and 1 in mixer.spatial_dims and 2 not in mixer.spatial_dims  # declared (B, C, L)
    if (d == 5) if video else (d in (4, 5) or sequences):
        return
    want = "5 dims (B, T, C, H, W) (video=True)" if video else (
        "4 dims (B, C, H, W) (5 for a video (B, T, C, H, W) or a volume (B, C, D, H, W))")
    hint = "; for (B, C, L) sequences build the mixer with spatial_dims=1" if d == 3 and not video else ""
    raise ValueError(f"Expected a batched input with {want}, but got {d} dimensions instead (images of shape "
                     f"{tuple(x.shape)}): MixTransform mixes whole batches, so apply it after the DataLoader or "
                     f"in collate_fn on the collated batch{hint}")


def _fold(x: Tensor) -> Tensor:
    """``(B, T, C, H, W) -> (B, T*C, H, W)``: one region for every frame and channel."""
    if x.dim() != 5:
        raise ValueError(f"a video batch must have shape (B, T, C, H, W), got {tuple(x.shape)}")
    plain = x.as_subclass(Tensor) if type(x) is not Tensor else x
    b, t, c, h, w = plain.shape
    return plain.reshape(b, t * c, h, w)


def _keep_type(out: Tensor, like: Tensor) -> Tensor:
    return out.as_subclass(type(like)) if type(like) is not Tensor and type(out) is not type(like) else out


def _mix_dense(res: MixResult, v: Tensor, n: Optional[int], video: bool) -> Tensor:
    if video and v.dim() == (5 if v.is_floating_point() else 4):  # per-frame targets (B, T, [K,] H, W)
        plain = v.as_subclass(Tensor) if type(v) is not Tensor else v
        out = torch.stack([res.mix_dense(plain[:, t], n) for t in range(v.shape[1])], 1)
    else:
        out = res.mix_dense(v.as_subclass(Tensor) if type(v) is not Tensor else v, n)
    return _keep_type(out, v)


def mix_batch(mixer: Mixer, batch: Batch, num_classes: Optional[int], generator: Optional[torch.Generator],
              return_result: bool = False, *, pairing: str = "mixer", video: bool = False,
              dense_keys: Optional[DenseKeys] = None) -> Tuple[Tensor, Any, MixResult, Dict[Any, Tensor]]:
    """Mix a split batch; returns ``(x_mix, y_soft, res, dense)`` (``y`` untouched with ``return_result``).

    Labels are validated (once) before anything is drawn, so a bad batch never consumes randomness.
    Soft targets are ``(B, K)`` float32, or the labels' dtype for floating ``(B, K)`` labels.
    """
    x, y = check_batch(batch.x, "images"), batch.y
    if video:
        _refuse_model_mixers(mixer, "video")
    xm = _fold(x) if video else x
    if return_result:
        if not isinstance(y, Tensor):
            raise TypeError(f"labels must be a torch.Tensor, got {type(y).__name__}")
        if y.dim() == 0 or y.shape[0] != x.shape[0]:
            raise ValueError(f"labels have shape {tuple(y.shape)} but the image batch has B={x.shape[0]}; they must match")
    else:
        check_labels(y, x.shape[0], num_classes, "labels")
    with pairing_scope(mixer, pairing):
        res = mixer.mix(xm, y, generator=generator)
    dense = {k: _mix_dense(res, v, (dense_keys or {}).get(k), video) for k, v in batch.dense.items()}
    if video:
        res.inputs = _keep_type(res.inputs.reshape(x.shape), x)
    if return_result:
        return res.inputs, y, res, dense
    y_soft = _mix_labels(y, res, num_classes, mixer.smoothing, getattr(mixer, "smoothing_target", "uniform"))
    if y.dim() == 2 and y.is_floating_point() and y_soft.dtype != y.dtype:
        y_soft = y_soft.to(y.dtype)  # torchvision keeps a probability label's dtype
    return res.inputs, y_soft, res, dense


class MixTransform(nn.Module):
    """Batch transform ``(images, labels) -> (mixed, soft_labels)``, a drop-in for torchvision v2's
    ``MixUp`` / ``CutMix`` (and ``v2.RandomChoice`` of them, with a :class:`~mixkit.mixers.compose.RandomChoice`).

    Args:
        mixer: any mixkit mixer (``MixUp``, ``CutMix``, ``RandomChoice`` ...).
        num_classes: K, needed for class-id labels ``(B,)``; defaults to ``mixer.num_classes``.
            ``(B, K)`` probability labels need none and keep their floating dtype.
        labels_getter: ``"default"`` (torchvision's heuristic: element 1 of a tuple, or a ``"labels"``-like
            key of a dict or of a tuple's second element) or a callable ``batch -> labels``.
        generator: default ``torch.Generator`` for the draws (``None``: torch's global RNG); a
            ``generator=`` passed to the call wins.
        return_result: return ``(mixed, labels, MixResult)`` (labels untouched) for two-term losses
            (``mixkit.mixed_loss``) instead of soft targets.
        pairing: ``"random"`` (never a sample with itself), ``"roll"`` (torchvision's ``i`` with ``i - 1``)
            or ``"mixer"`` (the mixers' own ``no_self_pairs``); see :mod:`mixkit.integrations.pairing`.
        video: ``(B, T, C, H, W)`` videos: one region over ``(H, W)`` for every frame and channel.
            ``None``: for ``tv_tensors.Video`` inputs only (other 5-D inputs are volumes ``(B, C, D, H, W)``).
        dense_keys: batch entries to mix as dense targets with the images (``MixResult.mix_dense``): keys,
            or a mapping key -> ``num_classes``. Masks and per-pixel maps not named here are refused.

    Call forms: ``t(images, labels)``, ``t((images, labels))``, ``t((images, {"labels": ...}))``,
    ``t({"image": ..., "label": ...})``; the output has the input's structure. Label smoothing is the
    mixer's ``smoothing``. Unlike torchvision there is a ``p`` (the mixer's) and ``mode="sample"``.
    Guide: ``docs/integrations/torchvision.md``.
    """

    def __init__(self, mixer: Mixer, num_classes: Optional[int] = None, labels_getter: LabelsGetter = "default",
                 generator: Optional[torch.Generator] = None, return_result: bool = False, *,
                 pairing: str = "random", video: Optional[bool] = None, dense_keys: Any = None) -> None:
        super().__init__()
        self.mixer = check_mixer(mixer, "MixTransform")
        self.num_classes = resolve_num_classes(self.mixer, num_classes, "MixTransform")
        self.labels_getter = check_labels_getter(labels_getter, "MixTransform")
        self.generator = check_generator(generator)
        self.return_result = bool(return_result)
        self.pairing = check_pairing(pairing, self.mixer, "MixTransform")
        self.video = check_video(video, self.mixer, "MixTransform")
        self.dense_keys = check_dense_keys(dense_keys, "MixTransform")

    def forward(self, *inputs: Any, generator: Optional[torch.Generator] = None) -> Any:
        if not inputs:
            raise ValueError("MixTransform expects (images, labels)")
        batch = split_batch(inputs if len(inputs) > 1 else inputs[0], self.labels_getter, self.dense_keys)
        video = self.video if self.video is not None else is_tv(batch.x, "Video")
        check_batched(batch.x, self.mixer, video)
        g = check_generator(generator) if generator is not None else self.generator
        x_mix, y_out, res, dense = mix_batch(self.mixer, batch, self.num_classes, g, self.return_result,
                                             pairing=self.pairing, video=video, dense_keys=self.dense_keys)
        return batch.rebuild(x_mix, y_out, dense, res if self.return_result else None)

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, return_result={self.return_result}, pairing={self.pairing!r}, "
                f"video={self.video}, dense_keys={list(self.dense_keys) or None}")
