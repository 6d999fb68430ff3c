"""mixkit on a CUDA device: every method against the CPU under one generator, training steps under bf16 and
fp16 autocast with channels-last inputs, a benchmark epoch with the split resident on the device, and runs
packed onto one GPU (nccl DDP on two GPUs is tests/bench/test_trainer.py::test_two_process_ddp[cuda]).

Every check has a ``cpu`` variant that runs everywhere: there it checks that the CPU reference the CUDA run
is compared with is itself reproducible, and that the same code path works on the CPU (``pytest -m gpu``
runs the ``cuda`` variants, which skip on a machine without CUDA; benchmarks/gpu_check.sh runs both).
"""
from __future__ import annotations


import pytest
import torch

from mixkit import registry
from mixkit.bench.config import BenchConfig
from mixkit.bench.io import read_jsonl
from mixkit.bench.models import build_model
from mixkit.bench.runner import run_bench
from mixkit.hooks import stage_names
from mixkit.losses import soft_cross_entropy
from mixkit.targets import soft_targets

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]
METHODS = list(registry.available())
K = 5
# a small benchmark protocol: 96 digits (8 x 8), a ResNet-8, the quick evaluation
TINY = dict(dataset="digits", n_train=96, n_test=48, model="resnet8", batch_size=32, progress=False, threads=1,
            max_eval=32, eval_corruptions=False, eval_fgsm=False, eval_occlusion=False, throughput_steps=0)


def _batch(b: int = 8, size: int = 16):
    g = torch.Generator().manual_seed(0)
    return torch.rand(b, 3, size, size, generator=g), torch.randint(0, K, (b,), generator=g)


def _model(device: str, channels_last: bool = False) -> torch.nn.Module:
    torch.manual_seed(0)  # the same weights on every device
    model = build_model("resnet8", K, 3, 2).to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def _mixer(name: str, model: torch.nn.Module):
    kw = {"num_classes": K}
    if registry.is_learned(name):
        kw["feature_layer"] = stage_names(model)[-2]
    if registry.get_class(name).needs_model:
        kw["model"] = model
    mixer = registry.create(name, **kw)
    return mixer.to(next(model.parameters()).device) if registry.is_learned(name) else mixer


def _mix(name: str, device: str, seed: int = 0) -> dict:
    """One mix of the fixed batch on ``device`` (a learner: one step of its loss), drawing from a CPU
    generator seeded ``seed``: the mixed batch (or, for the hidden-layer methods, the logits), its source
    indices and weights, on the CPU."""
    model = _model(device)
    mixer = _mixer(name, model)
    x, y = (t.to(device) for t in _batch())
    g = torch.Generator().manual_seed(seed)
    if registry.is_learned(name):
        out = mixer(x, y, generator=g)
        res, extra = out.mixed, {"loss": out.loss.detach()}
    else:
        res = mixer.mix(x, y, generator=g, **({"forward": model} if mixer.runs_model else {}))
        extra = {}
    got = {"mixed": res.outputs if res.outputs is not None else res.inputs, "index": res.index,
           "weights": res.weights, **extra}
    for key, value in got.items():
        assert value.device.type == torch.device(device).type, f"{name}: {key} on {value.device}, not {device}"
    return {key: value.detach().cpu() for key, value in got.items()}


@pytest.fixture
def full_fp32():
    # CUDA convolutions and matmuls default to TF32 (about 3 decimal digits): the comparison with the CPU is
    # made in full float32, as a user who checks reproducibility would
    keep = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = keep


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("device", DEVICES)
def test_a_method_on_the_device_matches_the_cpu_under_one_generator(name, device, full_fp32):
    ref, got = _mix(name, "cpu"), _mix(name, device)
    assert set(got) == set(ref)
    if device == "cpu":  # the reference itself: the same generator gives the same numbers
        for key in ref:
            assert torch.equal(got[key], ref[key]), f"{name}: {key} differs between two CPU runs"
        return
    # the draws are made on the CPU generator: the same sources on both devices
    assert torch.equal(got["index"], ref["index"]), name
    model_aware = registry.get_class(name).needs_model
    # a model-aware method's decisions come from the model's float numbers (saliency, a learned mask), which
    # CUDA rounds differently from the CPU: the shares agree closely, and a pixel that falls on the other
    # side of a decision is allowed in at most 2 % of the batch
    torch.testing.assert_close(got["weights"], ref["weights"], atol=2e-3 if model_aware else 1e-5, rtol=0)
    if model_aware:
        off = ((got["mixed"] - ref["mixed"]).abs() > 1e-3 * (1 + ref["mixed"].abs())).float().mean()
        assert off <= 0.02, f"{name}: {float(off):.1%} of the mixed batch differs from the CPU"
    else:
        torch.testing.assert_close(got["mixed"], ref["mixed"], atol=1e-5, rtol=0)
    if "loss" in ref:
        torch.testing.assert_close(got["loss"], ref["loss"], atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("name", ["vanilla"] + METHODS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("device", DEVICES)
def test_a_training_step_under_autocast_with_channels_last(name, dtype, device):
    # what the bench does on a GPU (bf16 autocast, channels-last model and batch), with fp16 too: the labels
    # stay float32, the loss and every gradient are finite, the model's weights move
    model = _model(device, channels_last=True)
    model.train()
    mixer = None if name == "vanilla" else _mixer(name, model)
    x, y = (t.to(device) for t in _batch())
    x = x.contiguous(memory_format=torch.channels_last)
    params = list(model.parameters()) + ([] if mixer is None or not registry.is_learned(name)
                                         else [p for p in mixer.parameters() if all(p is not q for q in model.parameters())])
    opt = torch.optim.SGD(params, lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    g = torch.Generator().manual_seed(1)
    with torch.autocast(torch.device(device).type, dtype=dtype):
        if mixer is None:
            loss = soft_cross_entropy(model(x), torch.nn.functional.one_hot(y, K).float())
        elif registry.is_learned(name):
            loss = mixer(x, y, generator=g).loss
        else:
            res = mixer.mix(x, y, generator=g, **({"forward": model} if mixer.runs_model else {}))
            target = soft_targets(y, res, K)
            assert target.dtype == torch.float32 and res.weights.dtype == torch.float32
            assert res.inputs.shape == x.shape and res.inputs.device == x.device
            logits = res.outputs if res.outputs is not None else model(res.inputs)
            loss = soft_cross_entropy(logits, target)
    assert loss.dim() == 0 and torch.isfinite(loss), f"{name}: loss {float(loss)} under {dtype}"
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(gr).all() for gr in grads), f"{name}: a non-finite gradient under {dtype}"
    opt.step()
    assert any(not torch.equal(a, p.detach()) for a, p in zip(before, model.parameters()))


def _finals(path) -> dict:
    return {(r["method"], r["seed"]): r for r in read_jsonl(path / "results.jsonl") if r["final"]}


@pytest.mark.parametrize("device", DEVICES)
def test_a_bench_epoch_with_the_split_on_the_device(tmp_path, device):
    # amp and channels-last as the defaults ask (they take effect on CUDA only), the split resident on the
    # device; the same run with the split in host memory gives the same numbers (bit for bit on the CPU;
    # on CUDA within what its non-deterministic kernels leave)
    common = dict(methods=["vanilla", "cutmix"], seeds=[0], epochs=1, device=device, amp=True, channels_last=True,
                  **TINY)
    recs = {}
    for placement in ("device", "host"):
        run_bench(BenchConfig(out=str(tmp_path / placement), data_placement=placement, **common), report=False)
        recs[placement] = _finals(tmp_path / placement)
    assert set(recs["device"]) == {("vanilla", 0), ("cutmix", 0)}
    for key, rec in recs["device"].items():
        setup = rec["setup"]
        assert setup["data_placement"] == "device" and recs["host"][key]["setup"]["data_placement"] == "host"
        assert setup["amp"] == setup["channels_last"] == (device == "cuda")
        assert rec["env"]["device"].startswith(device)
        host = recs["host"][key]
        for field in ("train_loss", "test_nll"):
            assert torch.isfinite(torch.tensor(rec[field]))
            if device == "cpu":
                assert rec[field] == host[field]
            else:
                assert rec[field] == pytest.approx(host[field], rel=2e-2), field


@pytest.mark.parametrize("device", DEVICES)
def test_packed_runs_give_the_serial_numbers(tmp_path, device):
    # --jobs 2: two spawned processes share the device (each its own CUDA context and stream)
    common = dict(methods=["vanilla", "mixup"], seeds=[0], epochs=1, device=device, **TINY)
    run_bench(BenchConfig(out=str(tmp_path / "serial"), **common), report=False)
    run_bench(BenchConfig(out=str(tmp_path / "packed"), **{**common, "jobs": 2}), report=False)
    a, b = _finals(tmp_path / "serial"), _finals(tmp_path / "packed")
    assert set(a) == set(b) == {("vanilla", 0), ("mixup", 0)}
    for key in a:
        assert b[key]["env"]["device"].startswith(device)
        if device == "cpu":
            assert a[key]["train_loss"] == b[key]["train_loss"] and a[key]["test_top1"] == b[key]["test_top1"]
        else:
            assert b[key]["train_loss"] == pytest.approx(a[key]["train_loss"], rel=2e-2)

