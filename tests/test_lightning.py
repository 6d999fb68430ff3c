"""MixCallback with a real lightning Trainer on CPU: training batches mixed on the device with soft targets,
validation untouched, Scheduled by epoch, per-rank streams, and fit -> checkpoint -> resume replaying the
uninterrupted run's draws."""
from __future__ import annotations

import pytest
import torch

pl = pytest.importorskip("lightning.pytorch")

import mixkit  # noqa: E402
from mixkit.integrations.lightning import MixCallback  # noqa: E402
from mixkit.sampling import derive_seed  # noqa: E402

K = 3


def _data(n=24):
    g = torch.Generator().manual_seed(123)
    x = torch.rand(n, 1, 4, 4, generator=g)
    y = torch.arange(n) % K
    return torch.utils.data.TensorDataset(x, y)


def _loader(n=24):
    return torch.utils.data.DataLoader(_data(n), batch_size=8, shuffle=False)


class Tiny(pl.LightningModule):
    """Records what training_step and validation_step receive."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, K))
        self.train_batches, self.val_batches = [], []

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        self.train_batches.append((self.current_epoch, x.clone(), y.clone()))
        return MixCallback.loss(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.val_batches.append((x.clone(), y.clone()))
        self.log("val_loss", MixCallback.loss(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _trainer(tmp_path, cb, **kw):
    kw.setdefault("max_epochs", 2)
    return pl.Trainer(accelerator="cpu", devices=1, callbacks=[cb], logger=False, enable_progress_bar=False,
                      enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path, **kw)


def test_training_batches_are_mixed_with_soft_targets_and_validation_is_not(tmp_path):
    model = Tiny()
    cb = MixCallback(mixkit.MixUp(alpha=1.0, num_classes=K), seed=0)
    _trainer(tmp_path, cb, max_epochs=1, limit_val_batches=2).fit(model, _loader(), _loader(16))
    raw = _data()
    assert len(model.train_batches) == 3 and cb.batches == 3
    for i, (_, x, y) in enumerate(model.train_batches):
        x0, y0 = raw.tensors[0][8 * i: 8 * i + 8], raw.tensors[1][8 * i: 8 * i + 8]
        assert y.shape == (8, K) and y.dtype == torch.float32
        assert torch.allclose(y.sum(1), torch.ones(8))
        assert not torch.allclose(x, x0)                                   # mixed
        assert not torch.equal(y, torch.nn.functional.one_hot(y0, K).float())
    # the sanity check and the epoch-end validation get the loader's batches as they are
    assert len(model.val_batches) == 4
    for x, y in model.val_batches:
        assert y.dtype == torch.int64 and y.dim() == 1
    assert torch.equal(model.val_batches[0][0], raw.tensors[0][:8])



class Recorder(MixCallback):
    """Keeps every MixResult's draws (lambda and partner) per step."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.draws = []

    def _mix(self, batch):
        out = super()._mix(batch)
        if self._in_epoch and self._trainer.training:
            r = self.last_result
            self.draws.append((self._trainer.global_step, r.lam.clone(), r.index[:, 1].clone(), out[0].clone()))
        return out


def _mixer():
    return mixkit.RandomChoice([mixkit.MixUp(alpha=1.0, mode="sample"), mixkit.CutMix(alpha=1.0, mode="sample")], num_classes=K)


def _same(a, b):
    assert [d[0] for d in a] == [d[0] for d in b]
    for (_, la, pa, xa), (_, lb, pb, xb) in zip(a, b):
        assert torch.equal(la, lb) and torch.equal(pa, pb) and torch.equal(xa, xb)


def test_fit_checkpoint_resume_replays_the_uninterrupted_draws(tmp_path):
    full = Recorder(_mixer(), seed=7)
    _trainer(tmp_path / "a", full, max_epochs=3).fit(Tiny(), _loader())
    assert len(full.draws) == 9

    first = Recorder(_mixer(), seed=7)
    t1 = _trainer(tmp_path / "b", first, max_epochs=1)
    t1.fit(Tiny(), _loader())
    ckpt = tmp_path / "b" / "epoch0.ckpt"
    t1.save_checkpoint(ckpt)
    state = torch.load(ckpt, weights_only=False)["callbacks"]["Recorder"]
    assert state["batches"] == 3 and set(state["generator_states"]) == {0}

    resumed = Recorder(_mixer(), seed=7)
    _trainer(tmp_path / "b", resumed, max_epochs=3).fit(Tiny(), _loader(), ckpt_path=ckpt)
    assert resumed.batches == 9
    _same(full.draws, first.draws + resumed.draws)

    # without the checkpoint's generator state the stream would start over: the check above can fail
    fresh = Recorder(_mixer(), seed=7)
    _trainer(tmp_path / "c", fresh, max_epochs=1).fit(Tiny(), _loader())
    assert not torch.equal(fresh.draws[0][1], resumed.draws[0][1])


def test_scheduled_follows_the_trainer_epoch(tmp_path):
    model = Tiny()
    cb = MixCallback(mixkit.Scheduled(mixkit.MixUp(alpha=1.0, num_classes=K), start=1, stop=2), seed=0)
    _trainer(tmp_path, cb, max_epochs=3, limit_val_batches=0).fit(model, _loader())
    raw_y = torch.nn.functional.one_hot(_data().tensors[1], K).float()
    for epoch in range(3):
        ys = torch.cat([y for e, _, y in model.train_batches if e == epoch])
        assert ys.shape == (24, K)
        assert torch.equal(ys, raw_y) == (epoch != 1), epoch


def test_each_rank_draws_from_its_own_seed(tmp_path):
    """The stream of rank r is derive_seed(seed, r) (what DDP ranks use; checked through the public path)."""
    cb = MixCallback(mixkit.MixUp(alpha=1.0, num_classes=K), seed=5)

    class Rank1:
        global_rank, world_size = 1, 1
        lightning_module = Tiny()

    cb._trainer = Rank1()
    g = cb.generator(torch.device("cpu"))
    ref = torch.Generator().manual_seed(derive_seed(5, 1))
    assert torch.equal(g.get_state(), ref.get_state())
    assert not torch.equal(ref.get_state(), torch.Generator().manual_seed(derive_seed(5, 0)).get_state())


def test_return_result_and_bad_arguments(tmp_path):
    seen = []

    class Two(Tiny):
        def training_step(self, batch, batch_idx):
            x, y, res = batch
            seen.append((y.clone(), res))
            crit = torch.nn.CrossEntropyLoss(reduction="none")
            return mixkit.mixed_loss(crit, self(x), y, res)

    cb = MixCallback(mixkit.CutMix(alpha=1.0, num_classes=K), seed=0, return_result=True)
    _trainer(tmp_path, cb, max_epochs=1, limit_val_batches=0).fit(Two(), _loader())
    assert len(seen) == 3 and seen[0][0].dtype == torch.int64 and isinstance(seen[0][1], mixkit.MixResult)
    with pytest.raises(TypeError, match="mixer must be a mixkit Mixer"):
        MixCallback("mixup")
    with pytest.raises(TypeError, match="seed must be an int"):
        MixCallback(mixkit.MixUp(num_classes=K), seed=1.5)


class RankLog(MixCallback):
    """Writes each rank's first lambda and its stream after training, and saves a checkpoint from every rank."""

    def __init__(self, *a, out=None, **kw):
        super().__init__(*a, **kw)
        self.out, self.first = out, None

    def _mix(self, batch):
        out = super()._mix(batch)
        if self.first is None and self.last_result is not None:
            self.first = self.last_result.lam.clone()
        return out

    def on_train_end(self, trainer, pl_module):
        trainer.save_checkpoint(f"{self.out}/last.ckpt")            # every rank takes part, rank 0 writes
        torch.save({"first": self.first, "state": self.generator().get_state()},
                   f"{self.out}/rank{trainer.global_rank}.pt")


@pytest.mark.skipif(torch.cuda.is_available() and torch.cuda.is_initialized(), reason="fork after CUDA init")
def test_ddp_fork_ranks_draw_their_own_streams_and_resume_their_own_state(tmp_path):
    def fit(out, epochs, ckpt=None):
        cb = RankLog(mixkit.MixUp(alpha=1.0, num_classes=K), seed=3, out=str(out))
        trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp_fork", callbacks=[cb], logger=False,
                             enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                             max_epochs=epochs, default_root_dir=out)
        trainer.fit(Tiny(), _loader(), ckpt_path=ckpt)
        return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]

    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    ranks = fit(tmp_path / "a", 1)
    saved = torch.load(tmp_path / "a" / "last.ckpt", weights_only=False)["callbacks"]["RankLog"]["generator_states"]
    assert set(saved) == {0, 1}
    for r in range(2):
        assert torch.equal(saved[r], ranks[r]["state"])
        g = torch.Generator().manual_seed(derive_seed(3, r))
        ref = mixkit.MixUp(alpha=1.0, num_classes=K).mix(torch.zeros(8, 1, 4, 4), generator=g).lam
        assert torch.equal(ranks[r]["first"], ref)
    assert not torch.equal(ranks[0]["first"], ranks[1]["first"])
    # resumed under DDP, each rank continues its own stream from the checkpoint
    resumed = fit(tmp_path / "b", 2, ckpt=tmp_path / "a" / "last.ckpt")
    for r in range(2):
        g = torch.Generator()
        g.set_state(saved[r])
        ref = mixkit.MixUp(alpha=1.0, num_classes=K).mix(torch.zeros(8, 1, 4, 4), generator=g).lam
        assert torch.equal(resumed[r]["first"], ref)

def test_import_mixkit_loads_neither_framework():
    import subprocess
    import sys

    code = ("import sys, mixkit, mixkit.integrations; "
            "bad = [m for m in ('lightning', 'pytorch_lightning', 'transformers', 'accelerate') if m in sys.modules]; "
            "sys.exit(f'imported {bad}' if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
