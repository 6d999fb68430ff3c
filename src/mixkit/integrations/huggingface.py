"""A Hugging Face ``transformers.Trainer`` that mixes training batches on the device: ``MixTrainer(mixer=...)``.

Imports ``transformers`` (``pip install mixkit[hf]``); ``import mixkit`` does not import this module.
Page: docs/integrations/huggingface.md.

Why ``compute_loss`` and not a data collator: ``Trainer`` uses its one ``data_collator`` for training and
evaluation, so a mixing collator would mix the evaluation batches too, and a model given float ``(B, K)``
labels switches its built-in loss to multi-label BCE. Overriding ``compute_loss`` mixes only while the
model is in training mode and computes the soft-target cross-entropy itself.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
import transformers

from ..losses import soft_cross_entropy
from ..mixers.base import Mixer
from ..mixers.schedule import Scheduled
from ..sampling import derive_seed
from .batch import Batch
from .transform import check_mixer, check_seed, mix_batch, resolve_num_classes

__all__ = ["MixTrainer"]


class MixTrainer(transformers.Trainer):
    """``transformers.Trainer`` whose training steps see mixed inputs and soft targets.

    Args (keyword-only, beside the usual ``Trainer`` arguments):
        mixer: any mixkit mixer (``Scheduled`` ones follow ``state.epoch`` / ``state.global_step``).
        num_classes: K; defaults to ``mixer.num_classes``, then ``model.config.num_labels``.
        mix_seed: base seed (default ``args.seed``). The batch at global step ``s`` (micro-batch ``m`` of the
            gradient accumulation) of process ``r`` draws from ``derive_seed(mix_seed, r, s, m)``: no state,
            so a run resumed from a checkpoint makes the uninterrupted run's draws, and processes differ.
        input_key: the model input to mix (``"pixel_values"``; ``"input_values"`` for audio).

    The training loss is ``soft_cross_entropy(outputs.logits, y_soft)``, averaged over the accumulated
    samples; evaluation and prediction use the model's own loss on unmixed batches. ``last_result`` is the
    latest ``MixResult``.
    """

    def __init__(self, *args: Any, mixer: Mixer, num_classes: Optional[int] = None, mix_seed: Optional[int] = None,
                 input_key: str = "pixel_values", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mixer = check_mixer(mixer, "MixTrainer")
        if num_classes is None and self.mixer.num_classes is None:
            num_classes = getattr(getattr(self.model, "config", None), "num_labels", None)
        self.num_classes = resolve_num_classes(self.mixer, num_classes, "MixTrainer")
        self.mix_seed = self.args.seed if check_seed(mix_seed, "MixTrainer", "mix_seed") is None else mix_seed
        if not isinstance(input_key, str):
            raise TypeError(f"MixTrainer: input_key must be a str, got {type(input_key).__name__}")
        self.input_key = input_key
        self.last_result = None
        self._micro = (-1, 0)  # (global step, micro-batches drawn at it)

    def mix_generator(self, device: torch.device) -> torch.Generator:
        """The generator of this micro-batch (see ``mix_seed``)."""
        step = self.state.global_step
        self._micro = (step, self._micro[1] + 1 if self._micro[0] == step else 0)
        seed = derive_seed(self.mix_seed, self.args.process_index, step, self._micro[1])
        return torch.Generator(device=device).manual_seed(seed)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training:
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        for key in (self.input_key, "labels"):
            if key not in inputs:
                raise ValueError(f"MixTrainer: the batch has no {key!r} entry (keys: {list(inputs)})")
        inputs = dict(inputs)
        x, y = inputs.pop(self.input_key), inputs.pop("labels")
        for m in self.mixer.modules():
            if isinstance(m, Scheduled):
                m.set_epoch(int(self.state.epoch or 0))
                m.set_step(self.state.global_step)
        x_mix, y_soft, res, _ = mix_batch(self.mixer, Batch(x, y, _no_rebuild, []), self.num_classes,
                                          self.mix_generator(x.device), pairing="mixer")
        self.last_result = res
        outputs = model(**{self.input_key: x_mix}, **inputs)
        if self.model_accepts_loss_kwargs and num_items_in_batch is not None:   # Trainer does not divide then
            loss = soft_cross_entropy(outputs.logits, y_soft, reduction="sum") / num_items_in_batch
            if getattr(self.args, "average_tokens_across_devices", False):     # a count over all processes
                tp = getattr(self, "get_tp_size", lambda: 1)()
                loss = loss * (self.accelerator.num_processes // tp if self.args.n_gpu <= 1 else self.args.n_gpu)
        else:
            loss = soft_cross_entropy(outputs.logits, y_soft)
        return (loss, outputs) if return_outputs else loss


def _no_rebuild(*_):  # MixTrainer passes the mixed images on itself
    return None
