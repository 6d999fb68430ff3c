"""A Lightning callback that mixes training batches on the device: ``Trainer(callbacks=[MixCallback(mixer)])``.

Imports ``lightning`` (``pip install mixkit[lightning]``); ``import mixkit`` does not import this module.
Page: docs/integrations/lightning.md.

Why the callback wraps ``on_after_batch_transfer``: that is the hook Lightning runs on the device right
after ``transfer_batch_to_device`` (the documented place for GPU batch augmentations), but it is a
LightningModule / LightningDataModule hook, not a Callback hook. A Callback's ``on_train_batch_start``
comes later and cannot replace a tuple batch. So in ``setup`` the callback wraps the instance's
``on_after_batch_transfer`` (on the module and, if given, the datamodule -- Lightning calls the one
that overrides it) with ``functools.wraps``, so Lightning still sees which one the user overrode; the
user's own hook runs first, the mixing after it; ``teardown`` removes the wrapper.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Dict, Optional

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from ..losses import soft_cross_entropy
from ..mixers.base import Mixer
from ..mixers.schedule import Scheduled
from ..sampling import derive_seed
from .transform import check_labels_getter, check_mixer, check_seed, mix_batch, resolve_num_classes, split_batch

__all__ = ["MixCallback"]

_HOOK = "on_after_batch_transfer"


class MixCallback(pl.Callback):
    """Mix every training batch on the device; ``training_step`` then receives ``(x_mix, y_soft)``.

    Args:
        mixer: any mixkit mixer (``Scheduled`` ones included, at any depth: their clocks follow
            ``trainer.current_epoch`` and ``trainer.global_step``).
        num_classes: K for class-id labels; defaults to ``mixer.num_classes``.
        seed: base seed. Rank ``r`` draws from ``torch.Generator(device).manual_seed(derive_seed(seed, r))``
            (``r = trainer.global_rank``), so DDP ranks never repeat each other's draws. ``None``: the
            seed of ``lightning.seed_everything`` (``PL_GLOBAL_SEED``), else ``torch.initial_seed()``.
        return_result: give ``training_step`` ``(x_mix, y, MixResult)`` (labels untouched) for
            ``mixkit.mixed_loss`` instead of ``(x_mix, y_soft)``.
        labels_getter: as in :class:`~mixkit.integrations.transform.MixTransform` (tuples, lists, dicts).

    Only the training loop mixes (not validation, test, predict, the sanity check or the model
    summary). ``last_result`` is the latest ``MixResult``; ``batches`` counts the mixed batches.
    Checkpoints hold the generator state of every rank (gathered across ranks when saved) and the
    counter, so fit -> checkpoint -> resume makes the same draws as an uninterrupted run.
    """

    def __init__(self, mixer: Mixer, num_classes: Optional[int] = None, seed: Optional[int] = None, *,
                 return_result: bool = False, labels_getter: Any = "default") -> None:
        self.mixer = check_mixer(mixer, "MixCallback")
        self.num_classes = resolve_num_classes(self.mixer, num_classes, "MixCallback")
        self.seed = check_seed(seed, "MixCallback")
        self.return_result = bool(return_result)
        self.labels_getter = check_labels_getter(labels_getter, "MixCallback")
        self.batches = 0
        self.last_result = None
        self._trainer: Optional[pl.Trainer] = None
        self._generator: Optional[torch.Generator] = None
        self._loaded: Optional[Dict[str, Any]] = None  # a checkpoint's state, applied when the generator is made
        self._patched: list = []
        self._in_epoch = False

    # ------------------------------------------------------------------ the loss
    @staticmethod
    def loss(logits: Tensor, y: Tensor) -> Tensor:
        """Soft-target cross-entropy for ``(B, K)`` float targets (training), plain cross-entropy for class
        ids ``(B,)`` (validation): one call for both loops."""
        if y.is_floating_point() and y.dim() == 2:
            return soft_cross_entropy(logits, y)
        return F.cross_entropy(logits.float(), y)

    # ------------------------------------------------------------------ the generator
    def base_seed(self) -> int:
        """The base seed in use (see ``seed``)."""
        if self.seed is not None:
            return self.seed
        env = os.environ.get("PL_GLOBAL_SEED")
        return int(env) if env is not None else torch.initial_seed()

    def generator(self, device: Any = None) -> torch.Generator:
        """This rank's generator (made on ``device`` on first use, from a checkpoint's state if one was loaded)."""
        if self._generator is None:
            rank = self._trainer.global_rank if self._trainer is not None else 0
            if device is None:
                device = self._trainer.lightning_module.device if self._trainer is not None else "cpu"
            g = torch.Generator(device=device)
            g.manual_seed(derive_seed(self.base_seed(), rank))
            states = (self._loaded or {}).get("generator_states", {})
            if rank in states:
                g.set_state(states[rank].cpu())
            self._generator = g
        return self._generator

    # ------------------------------------------------------------------ wrapping the device hook
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer
        if self._patched:
            return
        for owner in (pl_module, trainer.datamodule):
            if owner is None or _HOOK in vars(owner):
                continue
            original = getattr(owner, _HOOK)

            @functools.wraps(original)
            def hook(batch, dataloader_idx=0, _original=original):
                return self._mix(_original(batch, dataloader_idx))

            setattr(owner, _HOOK, hook)
            self._patched.append(owner)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        for owner in self._patched:
            vars(owner).pop(_HOOK, None)
        self._patched = []

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._in_epoch = True

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._in_epoch = False

    def _mix(self, batch: Any) -> Any:
        trainer = self._trainer
        if trainer is None or not (self._in_epoch and trainer.training) or trainer.sanity_checking:
            return batch
        for m in self.mixer.modules():
            if isinstance(m, Scheduled):
                m.set_epoch(trainer.current_epoch)
                m.set_step(trainer.global_step)
        parts = split_batch(batch, self.labels_getter)
        g = self.generator(parts.x.device)
        # the mixer's own pairing: the callback mixes exactly as mixer(x, y) would
        x_mix, y_out, res, dense = mix_batch(self.mixer, parts, self.num_classes, g, self.return_result, pairing="mixer")
        self.batches += 1
        self.last_result = res
        return parts.rebuild(x_mix, y_out, dense, res if self.return_result else None)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> Dict[str, Any]:
        trainer = self._trainer
        state = self.generator().get_state()
        states = {0: state}
        if trainer is not None and trainer.world_size > 1:
            device = trainer.lightning_module.device
            gathered = trainer.strategy.all_gather(state.to(device)).cpu()  # (world, n): every rank's stream
            states = {r: gathered[r].clone() for r in range(gathered.shape[0])}
        elif trainer is not None:
            states = {trainer.global_rank: state}
        return {"seed": self.base_seed(), "batches": self.batches, "generator_states": states}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore the draws: each rank takes its own stream; a rank the checkpoint lacks (more ranks than
        when it was saved) starts fresh from ``derive_seed(seed, rank)``."""
        self._loaded = dict(state_dict)
        self.batches = int(state_dict.get("batches", 0))
        self._generator = None

    def __repr__(self) -> str:
        return (f"MixCallback(mixer={self.mixer!r}, num_classes={self.num_classes}, seed={self.seed}, "
                f"return_result={self.return_result})")
