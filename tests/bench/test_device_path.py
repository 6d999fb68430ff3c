"""The GPU path of the benchmark, checked on CPU: data resident on the device, runs packed onto GPUs,
``torch.compile``. The same checks on a real GPU are in tests/test_gpu.py (``pytest -m gpu``)."""
from __future__ import annotations

import pytest
import torch

from mixkit.bench import batches as batches_mod
from mixkit.bench import runner
from mixkit.bench.batches import TrainData, resolve_placement, split_bytes
from mixkit.bench.config import BenchConfig, config_differences
from mixkit.bench.runner import load_bench_data
from mixkit.bench.step import build_parts, compile_mixer, make_generator, train_step
from mixkit.bench.trainer import train_run

TINY = dict(dataset="digits", n_train=70, n_test=30, model="resnet8", batch_size=16, progress=False, threads=1,
            jobs=1, eval_corruptions=False, eval_fgsm=False, eval_occlusion=False, throughput_steps=0)


@pytest.fixture(scope="module")
def ds():
    return load_bench_data(BenchConfig(**TINY))


@pytest.mark.parametrize("world", [1, 3])
def test_resident_batches_are_the_host_batches(ds, world):
    # the same order gives the same tensors from both placements, for every rank's share (70 = 4 * 16 + 6)
    host, dev = TrainData(ds, torch.device("cpu"), "host"), TrainData(ds, torch.device("cpu"), "device")
    assert (host.placement, dev.placement) == ("host", "device")
    perm = torch.randperm(ds.n_train, generator=make_generator(0, "order", 0))
    for rank in range(world):
        a = list(host.batches(perm, 16, rank, world))
        b = list(dev.batches(perm, 16, rank, world))
        assert len(a) == len(b) == 5
        for (xa, ya), (xb, yb) in zip(a, b):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
        expect = [perm[s:s + 16][rank::world] for s in range(0, ds.n_train, 16)]
        for (xa, ya), idx in zip(a, expect):
            idx = idx if idx.numel() else perm[:1]
            assert torch.equal(ya, ds.y_train[idx]) and torch.equal(xa, ds.x_train[idx])


def test_auto_placement(ds, monkeypatch):
    assert resolve_placement("auto", torch.device("cpu"), ds) == "host"  # one memory: nothing to gain
    assert split_bytes(ds) == sum(t.numel() * t.element_size() for t in (ds.x_train, ds.y_train, ds.x_test, ds.y_test))
    # on CUDA: the device when the split takes at most a quarter of the free memory
    need = split_bytes(ds)
    for free, expect in ((4 * need, "device"), (4 * need - 1, "host")):
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device, free=free: (free, 10 * free))
        assert resolve_placement("auto", torch.device("cuda"), ds) == expect
    assert resolve_placement("host", torch.device("cuda"), ds) == "host"
    with pytest.raises(ValueError, match="data_placement must be one of auto, host, device"):
        resolve_placement("gpu", torch.device("cpu"), ds)
    assert batches_mod.RESIDENT_FRACTION == 0.25


def test_placement_changes_no_number_and_is_recorded(tmp_path, ds):
    recs = {}
    for placement in ("host", "device"):
        cfg = BenchConfig(methods=["cutmix"], seeds=[0], epochs=2, out=str(tmp_path / placement),
                          data_placement=placement, **TINY)
        recs[placement] = train_run(cfg, ds, "cutmix", 0, tmp_path / placement)
    for a, b in zip(recs["host"], recs["device"]):
        assert (a["train_loss"], a["test_top1"], a["test_nll"]) == (b["train_loss"], b["test_top1"], b["test_nll"])
        assert a["run_key"] == b["run_key"]
    assert [r["setup"]["data_placement"] for r in recs["host"] + recs["device"]] == ["host"] * 2 + ["device"] * 2
    assert recs["device"][-1]["replica_checksums"] == recs["host"][-1]["replica_checksums"]


def test_epoch_loss_is_the_mean_of_the_step_losses(tmp_path, ds):
    # the loss is summed on the device now; the record must still be the sample-weighted mean of the steps
    cfg = BenchConfig(methods=["mixup"], seeds=[0], epochs=1, out=str(tmp_path), **TINY)
    rec = train_run(cfg, ds, "mixup", 0, tmp_path)[0]
    parts = build_parts(cfg, ds, "mixup", 0, torch.device("cpu"))
    data = TrainData(ds, torch.device("cpu"), "host")
    perm = torch.randperm(ds.n_train, generator=make_generator(0, "order", 0))
    g_aug, g_mix = make_generator(0, "augment", 0, 0), make_generator(0, "mix", 0, 0)
    total, seen = 0.0, 0
    for xb, yb in data.batches(perm, cfg.batch_size):
        total += float(train_step(parts, xb, yb, g_aug, g_mix)) * xb.shape[0]
        seen += xb.shape[0]
    assert rec["train_loss"] == total / seen and rec["images_per_s"] > 0


def test_compile_and_placement_keys():
    base = BenchConfig()
    # the placement changes no number: never in the key; compile changes the float order: in it once set
    assert BenchConfig(data_placement="device").run_key() == base.run_key()
    assert BenchConfig(compile="off").run_key() == base.run_key()
    keys = {BenchConfig(compile=c).run_key() for c in ("off", "model", "mixer", "all")}
    assert len(keys) == 4
    # a folder recorded before the field existed is the same protocol as compile="off"
    old = base.to_dict()
    del old["compile"], old["data_placement"]
    assert config_differences(old, base.to_dict()) == []
    assert config_differences(old, BenchConfig(compile="model").to_dict()) == ["compile: (unset) -> 'model'"]
    for field, bad in (("compile", "yes"), ("data_placement", "gpu")):
        with pytest.raises(ValueError, match=f"{field} must be one of"):
            BenchConfig(**{field: bad})


def test_bad_compile_or_placement_is_one_cli_line(tmp_path, capsys):
    from mixkit.cli import main

    for flag, value in (("--compile", "yes"), ("--data-placement", "gpu")):
        with pytest.raises(SystemExit) as e:
            main(["bench", flag, value, "--out", str(tmp_path)])
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert flag in err[-1] and "invalid choice" in err[-1] and "Traceback" not in "\n".join(err)


@pytest.mark.parametrize("n_gpus", [0, 1, 3])
def test_workers_are_spread_over_the_gpus(monkeypatch, n_gpus):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: n_gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n_gpus)
    got = [runner.worker_gpu(k, "auto") for k in range(5)]
    assert got == ([None] * 5 if n_gpus == 0 else [k % n_gpus for k in range(5)])
    assert [runner.worker_gpu(k, "cpu") for k in range(3)] == [None] * 3
    assert runner.worker_gpu(2, "cuda:0") is None  # a named device: every worker shares it
    if n_gpus:
        assert [runner.worker_gpu(k, "cuda") for k in range(4)] == [k % n_gpus for k in range(4)]


def test_compile_mixer_wraps_the_apply_of_each_part_and_keeps_the_numbers():
    from mixkit import registry
    from mixkit.mixers.compose import Alternate

    alt = Alternate([registry.create("mixup", num_classes=10), registry.create("cutmix", num_classes=10)],
                    num_classes=10)
    plain = Alternate([registry.create("mixup", num_classes=10), registry.create("cutmix", num_classes=10)],
                      num_classes=10)
    compiled_fns = []

    def fake_compile(fn, dynamic=None):  # the wrapping, without paying for a real compilation here
        compiled_fns.append((fn, dynamic))
        return lambda *a, **k: fn(*a, **k)

    torch_compile = torch.compile
    torch.compile = fake_compile
    try:
        assert compile_mixer(alt) is alt
    finally:
        torch.compile = torch_compile
    assert [d for _, d in compiled_fns] == [True, True]
    assert [f.__self__ for f, _ in compiled_fns] == list(alt.mixers)
    x = torch.rand(6, 3, 8, 8)
    for step in range(2):
        a = alt.mix(x, generator=torch.Generator().manual_seed(step), step=step)
        b = plain.mix(x, generator=torch.Generator().manual_seed(step), step=step)
        assert torch.equal(a.inputs, b.inputs) and torch.equal(a.weights, b.weights)


def test_a_compiled_run_trains(tmp_path, ds, monkeypatch):
    # a short run traced by dynamo (model and mixer), finite numbers, the compile recorded, resumable. The
    # backend is aot_eager (dynamo and autograd tracing without inductor's code generation, which takes
    # about 40 s on 2 cores); inductor itself is what benchmarks/compile_cost.py times
    import functools

    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    cfg = BenchConfig(methods=["mixup"], seeds=[0], epochs=1, out=str(tmp_path), compile="all",
                      **{**TINY, "n_train": 32})
    small = load_bench_data(cfg)
    rec = train_run(cfg, small, "mixup", 0, tmp_path)[-1]
    assert rec["setup"]["compile"] == "all" and rec["config"]["compile"] == "all"
    assert torch.isfinite(torch.tensor([rec["train_loss"], rec["test_nll"]])).all()
    assert train_run(cfg, small, "mixup", 0, tmp_path)[-1]["train_loss"] == rec["train_loss"]  # resumed, not redone
