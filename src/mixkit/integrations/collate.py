"""A DataLoader ``collate_fn`` that mixes: collate ``(image, label)`` samples, then mix the batch.

Mixing in ``collate_fn`` runs in the DataLoader worker processes, in parallel with training
(pytorch/vision #7306, timm's ``FastCollateMixup``). The pitfalls this wrapper handles:

* **identical mixes across workers**: each worker gets its own ``torch.Generator`` seeded from the
  worker's seed (``get_worker_info().seed``, which differs per worker), so workers never replay the
  same lambdas, boxes and permutations;
* **reproducibility**: that worker seed derives from the DataLoader's base seed, drawn from
  ``DataLoader(generator=...)`` (or torch's global RNG), so a seeded DataLoader gives the same mixed
  batches run after run; nothing is drawn from ``numpy`` or ``random``;
* **picklability** (spawn/forkserver start methods): the wrapper, the mixers and the outputs
  (tensors, or a :class:`~mixkit.MixResult` dataclass of tensors) pickle;
* **schedules**: a :class:`~mixkit.mixers.compose.Scheduled` mixer keeps its clock in shared memory,
  so ``set_epoch`` in the main process reaches the workers, persistent or not (bug B21).
"""
from __future__ import annotations

import os
from typing import Any, Callable, Optional

import torch
from torch.utils.data import default_collate, get_worker_info

from ..mixers.base import Mixer
from ..sampling import derive_seed
from .batch import is_tv, split_batch
from .pairing import check_pairing
from .transform import (check_dense_keys, check_labels_getter, check_mixer, check_seed, check_video, mix_batch,
                        resolve_num_classes)

__all__ = ["MixCollate"]

class MixCollate:
    """``collate_fn`` wrapper: ``base_collate(samples)`` then mix -> ``(x_mix, y_soft)``.

    Args:
        mixer: any mixkit mixer (``MixUp``, ``CutMix``, ``RandomChoice``, ``Scheduled`` ...). Images
            must be floating point after ``base_collate`` (convert uint8 in the dataset transform).
        base_collate: the collate applied first (default ``torch.utils.data.default_collate``); it must
            return ``(images, labels, *rest)`` or a dict (see ``labels_getter``).
        num_classes: K for class-id labels; defaults to ``mixer.num_classes``.
        seed: optional int. ``None``: in a worker, the stream is seeded from the worker's seed; in the
            main process (``num_workers=0``), torch's global RNG is used. An int salts the worker
            streams (``derive_seed(seed, worker_seed)``) and gives the main process its own generator
            seeded from it. Either way, a seeded ``DataLoader(generator=...)`` makes runs reproducible.
        return_result: return ``(x_mix, y, MixResult)`` (labels as collated) instead of
            ``(x_mix, y_soft)``, for two-term / BCE / focal losses via ``mixkit.mixed_loss``.
            ``res.params`` then also holds ``"worker"`` (id, -1 in the main process) and
            ``"batch"`` (the batch counter of that process).
        labels_getter: ``"default"`` or a callable ``collated_batch -> labels`` (as in
            :class:`~mixkit.integrations.transform.MixTransform`).
        pairing, video, dense_keys: as in :class:`~mixkit.integrations.transform.MixTransform` (default
            ``pairing="random"``: no sample is mixed with itself).

    Extra tuple elements after ``(images, labels)`` and other dict entries pass through unchanged.
    With ``return_result`` and ``pin_memory=True``, the tensors inside the ``MixResult`` are not pinned
    (the DataLoader pins tensors, sequences and mappings only); move them with ``.to(device)`` as usual.

    Per-process state: a generator and a batch counter, created lazily in each process (a copy
    inherited through ``fork`` is detected by the process id and re-seeded). With
    ``persistent_workers=True`` a worker keeps its stream across epochs; without, each epoch's fresh
    workers get fresh seeds from the DataLoader. Stateful mixers (``Alternate``) are per-worker copies:
    see their docs.

    Example::

        collate = MixCollate(RandomChoice([MixUp(0.8), CutMix(1.0)]), num_classes=1000)
        loader = DataLoader(ds, batch_size=128, shuffle=True, num_workers=8, collate_fn=collate,
                            generator=torch.Generator().manual_seed(0))
        for x, y_soft in loader:
            loss = torch.nn.functional.cross_entropy(model(x), y_soft)
    """

    def __init__(self, mixer: Mixer, base_collate: Callable[[Any], Any] = default_collate,
                 num_classes: Optional[int] = None, seed: Optional[int] = None, *,
                 return_result: bool = False, labels_getter: Any = "default", pairing: str = "random",
                 video: Optional[bool] = None, dense_keys: Any = None) -> None:
        self.mixer = check_mixer(mixer, "MixCollate")
        if not callable(base_collate):
            raise TypeError(f"MixCollate: base_collate must be callable, got {type(base_collate).__name__}")
        self.base_collate = base_collate
        self.num_classes = resolve_num_classes(self.mixer, num_classes, "MixCollate")
        self.seed = check_seed(seed, "MixCollate")
        self.return_result = bool(return_result)
        self.labels_getter = check_labels_getter(labels_getter, "MixCollate")
        self.pairing = check_pairing(pairing, self.mixer, "MixCollate")
        self.video = check_video(video, self.mixer, "MixCollate")
        self.dense_keys = check_dense_keys(dense_keys, "MixCollate")
        self._reset_process_state()

    # ------------------------------------------------------------------ per-process state
    def _reset_process_state(self) -> None:
        self._owner = None  # (pid, worker id) the generator belongs to
        self._generator: Optional[torch.Generator] = None
        self.batches = 0  # batches mixed by this process (this worker)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.update(_owner=None, _generator=None, batches=0)
        return state

    def generator(self) -> Optional[torch.Generator]:
        """The generator of the current process (created on first use; ``None`` = global RNG)."""
        info = get_worker_info()
        owner = (os.getpid(), -1 if info is None else info.id)
        if self._owner != owner:
            self._reset_process_state()
            self._owner = owner
            if info is not None:
                s = info.seed if self.seed is None else derive_seed(self.seed, info.seed)
                self._generator = torch.Generator().manual_seed(derive_seed(s, 0x636F6C6C))
            elif self.seed is not None:
                self._generator = torch.Generator().manual_seed(derive_seed(self.seed, 0x6D61696E))
        return self._generator

    # ------------------------------------------------------------------ collate
    def __call__(self, samples: Any) -> Any:
        batch = self.base_collate(samples)
        parts = split_batch(batch, self.labels_getter, self.dense_keys)
        video = self.video if self.video is not None else is_tv(parts.x, "Video")
        g = self.generator()
        x_mix, y_out, res, dense = mix_batch(self.mixer, parts, self.num_classes, g, self.return_result,
                                             pairing=self.pairing, video=video, dense_keys=self.dense_keys)
        worker = self._owner[1]
        self.batches += 1
        if self.return_result:
            res.params["worker"] = worker
            res.params["batch"] = self.batches - 1
            return parts.rebuild(x_mix, y_out, dense, res)
        return parts.rebuild(x_mix, y_out, dense)

    def __repr__(self) -> str:
        name = getattr(self.base_collate, "__name__", type(self.base_collate).__name__)
        return (f"MixCollate(mixer={self.mixer!r}, base_collate={name}, num_classes={self.num_classes}, "
                f"seed={self.seed}, return_result={self.return_result}, pairing={self.pairing!r})")
