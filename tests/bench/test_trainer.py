"""The benchmark trainer: a smoke run per method, resume after interruption, 2-process DDP."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from mixkit import registry
from mixkit.bench.config import BenchConfig
from mixkit.bench.io import read_jsonl
from mixkit.bench.runner import load_bench_data, run_bench
from mixkit.bench.trainer import train_run

TINY = dict(dataset="digits", n_train=96, n_test=48, model="resnet8", batch_size=32, progress=False, threads=1, jobs=1,
            max_eval=32)
QUICK_EVAL = dict(eval_corruptions=False, eval_fgsm=False, eval_occlusion=False)


def _methods_2d():
    return [m for m in registry.available() if 2 in registry.spatial_dims(m)]


@pytest.mark.parametrize("method", ["vanilla"] + _methods_2d())
def test_one_epoch_smoke_run_per_method(tmp_path, method):
    cfg = BenchConfig(methods=[method], seeds=[0], epochs=1, out=str(tmp_path), **TINY)
    recs = train_run(cfg, load_bench_data(cfg), method, 0, tmp_path)
    assert len(recs) == 1 and recs[0]["final"]
    r = recs[0]
    assert torch.isfinite(torch.tensor(r["train_loss"])) and 0 <= r["test_top1"] <= 1
    m = r["metrics"]
    for key in ("top1", "median_top1", "nll", "ece", "mean_corruption_acc", "fgsm_acc", "occlusion_auc"):
        assert m[key] is not None and 0 <= m[key] or key == "nll"
    assert r["params"] == ({} if method == "vanilla" else r["params"]) and r["env"]["torch"] == torch.__version__
    assert r["config"]["methods"] == [method]


def test_full_bench_writes_results_and_reuses_finished_runs(tmp_path):
    cfg = BenchConfig(methods=["vanilla", "mixup"], seeds=[0, 1], epochs=2, out=str(tmp_path), **TINY, **QUICK_EVAL)
    run_bench(cfg, report=False)
    recs = read_jsonl(tmp_path / "results.jsonl")
    assert len(recs) == 2 * 2 * 2
    assert {(r["method"], r["seed"]) for r in recs} == {("vanilla", 0), ("vanilla", 1), ("mixup", 0), ("mixup", 1)}
    for r in recs:
        assert {"mixkit", "git", "torch", "device"} <= set(r["env"]) and r["config"]["epochs"] == 2
    ckpts = {p: p.stat().st_mtime_ns for p in (tmp_path / "state").glob("*.pt")}
    run_bench(cfg, report=False)  # everything finished: nothing retrained, same file content
    assert read_jsonl(tmp_path / "results.jsonl") == recs
    assert ckpts and {p: p.stat().st_mtime_ns for p in (tmp_path / "state").glob("*.pt")} == ckpts


@pytest.mark.parametrize("method", ["cutmix", "automix", "adautomix"])
def test_resume_after_interruption_gives_the_uninterrupted_numbers(tmp_path, method):
    # the learners (AutoMix, AdAutoMix) also checkpoint their teacher, generator and step counter
    cfg = BenchConfig(methods=[method], seeds=[3], epochs=3, out=str(tmp_path / "a"), **TINY, **QUICK_EVAL)
    ds = load_bench_data(cfg)
    full = train_run(cfg, ds, method, 3, tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):  # killed in the middle of the second epoch
        train_run(cfg, ds, method, 3, tmp_path / "b", stop_after_steps=4)
    part = read_jsonl(tmp_path / "b" / "state" / f"{method}-s3.jsonl")
    assert [r["epoch"] for r in part] == [0]
    resumed = train_run(cfg, ds, method, 3, tmp_path / "b")
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("time", "train_time_s", "wall_time_s", "images_per_s", "config", "env")} for r in rs]
    assert strip(resumed) == strip(full)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(args, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "mixkit", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)


BENCH_ARGS = ["bench", "--dataset", "digits", "--n-train", "96", "--n-test", "48", "--batch-size", "32",
              "--methods", "vanilla,mixup", "--seeds", "1", "--no-corruptions", "--no-fgsm", "--no-occlusion",
              "--quiet", "--threads", "1", "--jobs", "1"]


def test_killed_process_resumes_with_nothing_lost(tmp_path):
    args = BENCH_ARGS + ["--epochs", "4"]
    ref = _cli(args + ["--out", str(tmp_path / "ref")])
    out_ref, _ = ref.communicate(timeout=240)
    assert ref.returncode == 0, out_ref
    proc = _cli(args + ["--out", str(tmp_path / "kill")])
    ckpt = tmp_path / "kill" / "state" / "mixup-s0.pt"
    deadline = time.time() + 200
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # killed after mixup's first checkpoint (results.jsonl may or may not hold that epoch yet: the
    # checkpoint carries the records) and before the run finished
    done = read_jsonl(tmp_path / "kill" / "results.jsonl")
    assert not any(r["method"] == "mixup" and r["final"] for r in done)
    again = _cli(args + ["--out", str(tmp_path / "kill")])
    out, _ = again.communicate(timeout=240)
    assert again.returncode == 0, out
    keep = lambda rs: [(r["method"], r["epoch"], r["train_loss"], r["test_top1"], r["test_nll"]) for r in rs]
    assert keep(read_jsonl(tmp_path / "kill" / "results.jsonl")) == keep(read_jsonl(tmp_path / "ref" / "results.jsonl"))


@pytest.mark.parametrize("device", [
    "cpu",  # gloo
    pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(torch.cuda.device_count() < 2,
                                                                   reason="nccl DDP needs two GPUs")]),
])
def test_two_process_ddp(tmp_path, device):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "mixkit", *BENCH_ARGS, "--device", device, "--epochs", "2",
           "--out", str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    recs = read_jsonl(tmp_path / "results.jsonl")
    assert len(recs) == 2 * 2
    finals = [r for r in recs if r["final"]]
    for r in finals:
        assert r["env"]["world_size"] == 2
        a, b = r["replica_checksums"]
        assert a == b  # the two replicas hold identical weights after DDP training
    assert (tmp_path / "state" / "mixup-s0.pt").exists()


def test_parallel_jobs_give_the_serial_numbers(tmp_path):
    common = dict(methods=["vanilla", "fmix"], seeds=[0, 1], epochs=2, **TINY, **QUICK_EVAL)
    run_bench(BenchConfig(out=str(tmp_path / "serial"), **common), report=False)
    run_bench(BenchConfig(out=str(tmp_path / "par"), **{**common, "jobs": 2}), report=False)
    keep = lambda rs: sorted((r["method"], r["seed"], r["epoch"], r["train_loss"], r["test_top1"]) for r in rs)
    a, b = read_jsonl(tmp_path / "serial" / "results.jsonl"), read_jsonl(tmp_path / "par" / "results.jsonl")
    assert len(a) == 8 and keep(a) == keep(b)


def test_workers_die_with_a_killed_parent(tmp_path):
    args = ["bench", "--dataset", "digits", "--n-train", "96", "--n-test", "48", "--batch-size", "32",
            "--methods", "vanilla,mixup", "--seeds", "2", "--epochs", "200", "--no-corruptions", "--no-fgsm",
            "--no-occlusion", "--quiet", "--jobs", "2", "--out", str(tmp_path)]
    proc = _cli(args, start_new_session=True)
    state = tmp_path / "state"
    deadline = time.time() + 120
    while time.time() < deadline and not (state.exists() and len(list(state.glob("*.pt"))) >= 2):
        time.sleep(0.1)
    assert proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(3)  # workers notice within 0.5 s
    before = {p: p.stat().st_mtime_ns for p in state.glob("*")}
    time.sleep(2)
    after = {p: p.stat().st_mtime_ns for p in state.glob("*")}
    assert before == after, "orphaned workers are still writing"
