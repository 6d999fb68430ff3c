"""MixTrainer with a real transformers Trainer on a tiny ViT built from a config (no downloads): mixed
training steps with soft targets, unmixed evaluation, and a resumed run that replays the uninterrupted
run's draws."""
from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

import mixkit  # noqa: E402
from mixkit.integrations.huggingface import MixTrainer  # noqa: E402

K = 10


def _vit():
    torch.manual_seed(0)
    config = transformers.ViTConfig(image_size=16, patch_size=4, num_channels=3, num_hidden_layers=1,
                                    hidden_size=32, num_attention_heads=2, intermediate_size=37, num_labels=K)
    return transformers.ViTForImageClassification(config)


class Images(torch.utils.data.Dataset):
    def __init__(self, n=16):
        g = torch.Generator().manual_seed(1)
        self.x, self.y = torch.rand(n, 3, 16, 16, generator=g), torch.arange(n) % K

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"pixel_values": self.x[i], "labels": self.y[i]}


class Recording(MixTrainer):
    """Keeps (step, lambda, partner, soft targets) of every mixed training batch."""

    draws: list

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if model.training:
            r = self.last_result
            lam = None if r.lam is None else r.lam.clone()
            self.draws.append((self.state.global_step, lam, r.index.clone(), r.params.get("scheduled_on")))
        return out


def _args(tmp_path, **kw):
    kw = {"max_steps": 4, "save_strategy": "no", **kw}
    return transformers.TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4,
                                          per_device_eval_batch_size=8, use_cpu=True, report_to=[],
                                          logging_strategy="no", disable_tqdm=True, seed=0, **kw)


def _trainer(tmp_path, mixer=None, cls=Recording, **kw):
    mixer = mixer or mixkit.CutMix(alpha=1.0, mode="sample", num_classes=K)
    t = cls(model=_vit(), args=_args(tmp_path, **kw), train_dataset=Images(), eval_dataset=Images(8), mixer=mixer)
    t.draws = []
    return t


def test_training_is_mixed_and_evaluation_is_not(tmp_path):
    t = _trainer(tmp_path)
    t.train()
    assert len(t.draws) == 4
    assert [d[0] for d in t.draws] == [0, 1, 2, 3]
    assert not torch.equal(t.draws[0][1], t.draws[1][1])          # a fresh draw per step
    res = t.last_result
    assert res.weights.dtype == torch.float32 and torch.allclose(res.weights.sum(1), torch.ones(4))
    # evaluation: the model's own loss on the unmixed batch
    metrics = t.evaluate()
    model = t.model.eval()
    ds = Images(8)
    with torch.no_grad():
        ref = model(pixel_values=ds.x, labels=ds.y).loss
    assert metrics["eval_loss"] == pytest.approx(float(ref), rel=1e-5)
    assert len(t.draws) == 4                                        # evaluation drew nothing


def test_resume_from_checkpoint_replays_the_uninterrupted_draws(tmp_path):
    full = _trainer(tmp_path / "a")
    full.train()
    part = _trainer(tmp_path / "b", save_strategy="steps", save_steps=2, max_steps=2)
    part.train()
    resumed = _trainer(tmp_path / "b", save_strategy="no")
    resumed.train(resume_from_checkpoint=str(tmp_path / "b" / "checkpoint-2"))
    assert [d[0] for d in resumed.draws] == [2, 3]
    for a, b in zip(full.draws, part.draws + resumed.draws):
        assert a[0] == b[0] and torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])
    other = _trainer(tmp_path / "c", max_steps=1)
    other.mix_seed = 1
    other.train()
    assert not torch.equal(other.draws[0][1], full.draws[0][1])     # the seed matters: the check can fail


def test_scheduled_and_gradient_accumulation(tmp_path):
    t = _trainer(tmp_path, mixer=mixkit.Scheduled(mixkit.MixUp(alpha=1.0, num_classes=K), start=1),
                 max_steps=4, gradient_accumulation_steps=2)
    t.train()                                                       # 16 images / 4 = 4 batches = 2 steps an epoch
    assert len(t.draws) == 8
    on = [d[3] for d in t.draws]
    assert on == [False] * 4 + [True] * 4
    steps = [d[0] for d in t.draws]
    assert steps == [0, 0, 1, 1, 2, 2, 3, 3]
    assert not torch.equal(t.draws[4][1], t.draws[5][1])           # micro-batches of one step differ


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="mixer must be a mixkit Mixer"):
        MixTrainer(model=_vit(), args=_args(tmp_path), mixer="cutmix")
    with pytest.raises(TypeError, match="mix_seed must be an int"):
        MixTrainer(model=_vit(), args=_args(tmp_path), mixer=mixkit.MixUp(), mix_seed="0")


def test_accelerate_loop_mixes_on_the_device_with_a_per_process_stream():
    accelerate = pytest.importorskip("accelerate")
    from mixkit.sampling import derive_seed

    accelerator = accelerate.Accelerator(cpu=True)
    net = _vit()
    before = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(Images(), batch_size=4)
    net, opt, loader = accelerator.prepare(net, opt, loader)
    mixer = mixkit.CutMix(alpha=1.0, mode="sample", num_classes=K)
    assert accelerator.process_index == 0
    g = torch.Generator(device=accelerator.device).manual_seed(derive_seed(0, accelerator.process_index))
    ref = torch.Generator().manual_seed(derive_seed(0, 0))
    net.train()
    for batch in loader:
        x_mix, y_soft = mixer(batch["pixel_values"], batch["labels"], generator=g)
        expect = mixer.mix(batch["pixel_values"], generator=ref).inputs      # the same stream, replayed
        assert torch.equal(x_mix, expect) and not torch.equal(x_mix, batch["pixel_values"])
        loss = mixkit.soft_cross_entropy(net(pixel_values=x_mix).logits, y_soft)
        accelerator.backward(loss)
        opt.step()
        opt.zero_grad()
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, accelerator.unwrap_model(net).parameters()))


def test_training_loss_is_the_soft_cross_entropy_over_the_accumulated_samples(tmp_path):
    t = _trainer(tmp_path, max_steps=1)
    model = t.model.train()
    ds = Images(4)
    inputs = {"pixel_values": ds.x, "labels": ds.y}
    for n_items, scale in ((None, 1.0), (torch.tensor(8.0), 0.5)):
        torch.manual_seed(0)                              # ViT's dropout is 0; keep it deterministic anyway
        loss = t.compute_loss(model, dict(inputs), num_items_in_batch=n_items)
        res = t.last_result
        soft = mixkit.soft_targets(ds.y, res, num_classes=K)
        ref = mixkit.soft_cross_entropy(model(pixel_values=res.inputs).logits, soft)
        assert float(loss) == pytest.approx(scale * float(ref), rel=1e-5)
    assert inputs.keys() == {"pixel_values", "labels"}     # the caller's batch is not changed
