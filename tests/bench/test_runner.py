"""The benchmark runner as a user meets it (issue 9): Ctrl-C, damaged results, a reused output folder,
a bad plan, throughput measured like with like, numbers that do not depend on --jobs, torchrun output.

The runs are tiny (digits, 64-96 training images, ResNet-8) so that the subprocess tests stay short."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mixkit.bench.config import BenchConfig
from mixkit.bench.io import read_jsonl
from mixkit.bench.runner import run_bench

TINY = dict(dataset="digits", n_train=96, n_test=48, model="resnet8", batch_size=32, progress=False, threads=1, jobs=1,
            max_eval=32)
QUICK_EVAL = dict(eval_corruptions=False, eval_fgsm=False, eval_occlusion=False)
RESUME_LINE = "interrupted; rerun the same command to resume"
# a run far too long to finish: it is always interrupted
LONG_ARGS = ["bench", "--dataset", "digits", "--n-train", "64", "--n-test", "32", "--batch-size", "16",
             "--methods", "vanilla,mixup", "--seeds", "2", "--epochs", "400", "--no-corruptions", "--no-fgsm",
             "--no-occlusion", "--max-eval", "16", "--quiet"]


def _cli(args, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "mixkit", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)


def _epochs_on_disk(out: Path):
    """{run: epochs in its state file}."""
    return {p.stem: len(read_jsonl(p)) for p in (out / "state").glob("*.jsonl")} if (out / "state").is_dir() else {}


def _interrupt(proc, out: Path, runs: int, send) -> dict:
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        done = _epochs_on_disk(out)
        if len(done) >= runs and min(done.values()) >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted: " + proc.stdout.read()
    before = _epochs_on_disk(out)
    send(proc)
    return before


def _check_stopped(proc, out: Path, before: dict) -> None:
    try:
        text, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # not stopped: end it (and its workers) before failing
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 130, text
    assert text.strip().splitlines() == [RESUME_LINE], text  # one line, no traceback
    after = _epochs_on_disk(out)
    # stopped at the next step: at most the epoch under way when the signal came was finished
    assert all(after[k] <= before.get(k, 0) + 1 for k in after), (before, after)
    results = read_jsonl(out / "results.jsonl")  # every finished epoch, written from the per-run state
    state = [r for p in sorted((out / "state").glob("*.jsonl")) for r in read_jsonl(p)]
    key = lambda r: (r["method"], r["seed"], r["epoch"])  # noqa: E731
    assert sorted(map(key, results)) == sorted(map(key, state)) and results
    assert not any(r["final"] for r in results)
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "state").glob("*")}
    time.sleep(1.5)  # no worker is left training
    assert {p: p.stat().st_mtime_ns for p in (out / "state").glob("*")} == mtimes


@pytest.mark.parametrize("target", ["process group", "parent"])
def test_ctrl_c_stops_a_parallel_run(tmp_path, target):
    proc = _cli(LONG_ARGS + ["--jobs", "2", "--out", str(tmp_path)], start_new_session=True)
    send = (lambda p: os.killpg(p.pid, signal.SIGINT)) if target == "process group" else \
        (lambda p: os.kill(p.pid, signal.SIGINT))
    before = _interrupt(proc, tmp_path, 2, send)
    _check_stopped(proc, tmp_path, before)


def test_ctrl_c_stops_a_serial_run(tmp_path):
    proc = _cli(LONG_ARGS + ["--jobs", "1", "--out", str(tmp_path)], start_new_session=True)
    before = _interrupt(proc, tmp_path, 1, lambda p: os.killpg(p.pid, signal.SIGINT))
    _check_stopped(proc, tmp_path, before)


def test_damaged_results_are_rebuilt_from_the_run_state(tmp_path):
    cfg = BenchConfig(methods=["vanilla", "mixup"], seeds=[0], epochs=2, out=str(tmp_path), **TINY, **QUICK_EVAL)
    run_bench(cfg, report=False)
    path = tmp_path / "results.jsonl"
    good = path.read_text()
    last = good.splitlines()[-1]
    path.write_text(good[:len(good) - len(last) // 2 - 1])  # the last line cut in half
    ckpts = {p: p.stat().st_mtime_ns for p in (tmp_path / "state").glob("*.pt")}
    run_bench(cfg, report=False)
    assert path.read_text() == good  # rebuilt from state/<run>.jsonl ...
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "state").glob("*.pt")} == ckpts  # ... nothing retrained


def test_reusing_out_with_another_config_is_refused(tmp_path):
    base = dict(methods=["vanilla"], out=str(tmp_path), **TINY, **QUICK_EVAL)
    run_bench(BenchConfig(epochs=1, seeds=[0], **base), report=False)
    first = (tmp_path / "results.jsonl").read_text()
    with pytest.raises(ValueError, match=r"another configuration \(epochs: 1 -> 2\).*--out NEW_DIR.*--overwrite"):
        run_bench(BenchConfig(epochs=2, seeds=[1], **base), report=False)
    assert (tmp_path / "results.jsonl").read_text() == first  # nothing trained, nothing written
    # the same protocol with another seed or method is no conflict
    run_bench(BenchConfig(epochs=1, seeds=[0, 1], **base), report=False)
    assert len(read_jsonl(tmp_path / "results.jsonl")) == 2
    # --overwrite starts the folder over with the new protocol
    run_bench(BenchConfig(epochs=2, seeds=[1], **base), report=False, overwrite=True)
    recs = read_jsonl(tmp_path / "results.jsonl")
    assert [(r["seed"], r["epoch"], r["epochs"]) for r in recs] == [(1, 0, 2), (1, 1, 2)]


@pytest.mark.parametrize("change, names", [
    (dict(method_params={"mixup": {"alpah": 0.2}}), "alpah"),
    (dict(method_params={"mixup": {"alpha": -1}}), "alpha must be"),
    (dict(model="resnet99", jobs=2), "--model: unknown model 'resnet99'"),
])
def test_bad_plan_fails_before_the_first_step(tmp_path, change, names):
    cfg = BenchConfig(**{**dict(methods=["vanilla", "mixup"], seeds=[0], epochs=1, out=str(tmp_path), **TINY, **QUICK_EVAL),
                         **change})
    with pytest.raises((ValueError, TypeError)) as e:
        run_bench(cfg, report=False)
    assert not (tmp_path / "state").exists()  # no run trained before the error
    assert "cannot run this benchmark: " in str(e.value) and names in str(e.value)


def test_throughput_is_timed_like_with_like_in_one_pass(tmp_path):
    cfg = BenchConfig(methods=["vanilla", "mixup"], seeds=[0, 1], epochs=1, out=str(tmp_path),
                      **{**TINY, "jobs": 2}, **QUICK_EVAL)
    run_bench(cfg)  # parallel runs: their own images/s are not comparable
    t = __import__("json").loads((tmp_path / "throughput.json").read_text())
    assert set(t["methods"]) == {"vanilla", "mixup"} and t["threads"] == 1 and t["run_key"] == cfg.run_key()
    for m in ("vanilla", "mixup"):  # one timing per interleaved round, and the mixing apart
        assert len(t["methods"][m]["images_per_s"]) == t["rounds"] == 3
        assert t["methods"][m]["mix_ms"] >= 0 and t["methods"][m]["step_ms"] > 0
    assert t["methods"]["vanilla"]["mix_ms"] == 0
    from mixkit.bench import report as R

    s = R.summarize(R.load_results(tmp_path / "results.jsonl"), t)
    assert s["mixup"].stats["images_per_s"].values == pytest.approx(t["methods"]["mixup"]["images_per_s"])
    text = (tmp_path / "report.md").read_text()
    assert "timed pass after training" in text and "under the same load" in text
    mtime = (tmp_path / "throughput.json").stat().st_mtime_ns
    run_bench(cfg, report=False)  # nothing new: the pass is not repeated
    assert (tmp_path / "throughput.json").stat().st_mtime_ns == mtime


def test_numbers_do_not_change_with_jobs_or_threads(tmp_path):
    common = dict(methods=["vanilla", "mixup"], seeds=[0], epochs=2, **{**TINY, "threads": None}, **QUICK_EVAL)
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # a caller with 2 threads: the serial run used to train with them
    try:
        run_bench(BenchConfig(out=str(tmp_path / "serial"), **common), report=False)
    finally:
        torch.set_num_threads(before)
    run_bench(BenchConfig(out=str(tmp_path / "par"), **{**common, "jobs": 2}), report=False)
    keep = lambda rs: sorted((r["method"], r["seed"], r["epoch"], r["train_loss"], r["test_top1"]) for r in rs)  # noqa: E731
    a, b = read_jsonl(tmp_path / "serial" / "results.jsonl"), read_jsonl(tmp_path / "par" / "results.jsonl")
    assert len(a) == 4 and keep(a) == keep(b)
    assert {r["setup"]["threads"] for r in a + b} == {1} and {r["env"]["threads"] for r in a + b} == {1}
    # the thread count is part of the protocol
    assert BenchConfig(threads=2).run_key() != BenchConfig().run_key() == BenchConfig(threads=1).run_key()


def test_repeated_seeds_are_refused():
    with pytest.raises(ValueError, match="seeds are repeated"):
        BenchConfig(seeds=[1, 1])


def test_results_files_get_the_usual_permissions(tmp_path):
    cfg = BenchConfig(methods=["vanilla"], seeds=[0], epochs=1, out=str(tmp_path), **TINY, **QUICK_EVAL)
    run_bench(cfg)
    mask = os.umask(0)
    os.umask(mask)
    for name in ("results.jsonl", "report.md", "state/vanilla-s0.jsonl", "state/vanilla-s0.pt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~mask, name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_prints_results_once(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "mixkit", "bench", "--dataset", "digits", "--n-train", "64",
           "--n-test", "32", "--batch-size", "32", "--methods", "vanilla", "--seeds", "1", "--epochs", "1",
           "--no-corruptions", "--no-fgsm", "--no-occlusion", "--quiet", "--threads", "1", "--jobs", "1",
           "--out", str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("results:") == 1 and proc.stdout.count("report:") == 1, proc.stdout


def test_an_alternation_of_two_methods_runs_and_resumes_on_the_same_part(tmp_path):
    """`--methods mixup+fmix`: MixUp and FMix on alternate batches (the FMix repository's alt_mixup_fmix),
    the part of each batch chosen from the global step, so a resumed run continues the alternation."""
    from mixkit.bench.config import BenchConfig
    from mixkit.bench.data import load_dataset, subset
    from mixkit.bench.step import build_mixer, build_parts, method_params, train_step, make_generator
    from mixkit.mixers.compose import Alternate

    cfg = BenchConfig.from_dict({"dataset": "digits", "epochs": 1, "methods": ["vanilla", "mixup+fmix"],
                                 "method_params": {"mixup": {"alpha": 0.5}}, "augment": False})
    ds = subset(load_dataset("digits"), 64, 32, seed=0)
    m = build_mixer(cfg, "mixup+fmix", ds.num_classes)
    assert isinstance(m, Alternate) and [type(c).__name__ for c in m.mixers] == ["MixUp", "FMix"]
    assert m.mixers[0].alpha == 0.5
    assert method_params(cfg, "mixup+fmix") == {"mixup.alpha": 0.5, "fmix.alpha": 1.0, "fmix.decay_power": 3.0}
    with pytest.raises(ValueError, match="hand-crafted"):
        build_mixer(cfg, "mixup+puzzlemix", ds.num_classes)
    parts = build_parts(cfg, ds, "mixup+fmix", 0, torch.device("cpu"))
    chosen = []
    real = parts.mixer.mix

    def spy(*a, **kw):
        res = real(*a, **kw)
        chosen.append(res.params["method"])
        return res

    parts.mixer.mix = spy
    g = make_generator(0, "mix")
    for _ in range(3):
        train_step(parts, ds.x_train[:16], ds.y_train[:16], g, g)
    parts.sched.last_epoch = 7  # as after a resume at global step 7: the schedule's state is checkpointed
    train_step(parts, ds.x_train[:16], ds.y_train[:16], g, g)
    assert chosen == ["MixUp", "FMix", "MixUp", "FMix"]


def test_an_alternations_run_key_follows_its_parts_parameters():
    from mixkit.bench.config import BenchConfig

    a = BenchConfig.from_dict({"methods": ["mixup+fmix"]})
    b = BenchConfig.from_dict({"methods": ["mixup+fmix"], "method_params": {"fmix": {"decay_power": 2.0}}})
    assert b.params_for("mixup+fmix") == {"fmix.decay_power": 2.0}
    assert a.run_key("mixup+fmix") != b.run_key("mixup+fmix")
