"""The GPU-path benchmark scripts and the prepared GPU check, in tiny CPU runs (nothing here checks time):
benchmarks/data_pipeline.py, compile_cost.py, protocol_time.py and gpu_check.sh."""
from __future__ import annotations

import functools
import json
import subprocess
import sys

import pytest
import torch
from benchscripts import BENCH, ROOT
from benchscripts import load as _load

CHECK = BENCH / "gpu_check.sh"


def _rows(text: str, first: str) -> list:
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in text.splitlines() if ln.startswith(f"| {first}")]


def test_data_pipeline_times_every_way_against_the_resident_split(tmp_path, capsys):
    mod = _load("data_pipeline")
    out = tmp_path / "page.md"
    assert mod.main(["--dataset", "digits", "--batch", "16", "--batches", "3", "--rounds", "2", "--workers", "0,1",
                     "--step", "resnet8", "--out", str(out), "--section", "pipe"]) == 0
    text = out.read_text()
    assert "<!-- BEGIN generated section: pipe -->" in text and "a vanilla training step of `resnet8`" in text
    ways = {r[0]: r for r in _rows(text, "") if r[0] in ("dataloader-w0", "dataloader-w1", "host", "resident")}
    assert set(ways) == {"dataloader-w0", "dataloader-w1", "host", "resident"}
    assert ways["resident"][2].startswith("1.00×")
    for r in ways.values():
        assert float(r[1].split()[0].replace(",", "")) > 0 and "IQR" in r[2]


def test_the_dataloader_way_augments_like_the_bench():
    # the peer does per sample what random_crop_flip does per batch: a pad, a crop and a flip of each image
    mod = _load("data_pipeline")
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6)
    ds = mod.CropFlipDataset(x, torch.tensor([0, 1]), pad=2)
    torch.manual_seed(0)
    for i in range(2):
        img, label = ds[i]
        assert img.shape == (1, 6, 6) and int(label) == i
        padded = torch.nn.functional.pad(x[i], (2, 2, 2, 2))
        windows = [padded[:, a:a + 6, b:b + 6] for a in range(5) for b in range(5)]
        assert any(torch.equal(img, w) or torch.equal(img, w.flip(-1)) for w in windows)


@pytest.mark.parametrize("argv, message", [
    (["--workers", "0,x"], "--workers must be a comma list of ints"),
    (["--batches", "0"], "--batch, --batches, --rounds >= 1"),
    (["--dataset", "nope"], "nope"),
])
def test_data_pipeline_bad_arguments_are_one_line(argv, message, capsys):
    mod = _load("data_pipeline")
    with pytest.raises(SystemExit) as e:
        mod.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and message in err[-1] and "Traceback" not in "\n".join(err)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
@pytest.mark.parametrize("script", ["data_pipeline", "compile_cost", "protocol_time", "model_aware_cost", "learned_cost"])
def test_cuda_without_a_gpu_is_one_line(script, capsys):
    with pytest.raises(SystemExit) as e:
        _load(script).main(["--device", "cuda"])
    assert e.value.code == 2 and "no CUDA device is available" in capsys.readouterr().err.strip().splitlines()[-1]


def test_compile_cost_reports_each_setting_against_eager(tmp_path, monkeypatch):
    # dynamo traces for real; aot_eager instead of inductor keeps the test short (inductor is what the
    # script times when it is run)
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    mod = _load("compile_cost")
    out = tmp_path / "page.md"
    assert mod.main(["--model", "resnet8", "--size", "8", "--batch", "8", "--methods", "vanilla,cutmix",
                     "--compile", "model,mixer", "--rounds", "2", "--steps", "1", "--warmup", "1",
                     "--out", str(out)]) == 0
    text = out.read_text()
    rows = {(r[0], r[1]): r for r in _rows(text, "") if len(r) == 6 and r[1] in ("off", "model", "mixer")}
    assert set(rows) == {(m, c) for m in ("vanilla", "cutmix") for c in ("off", "model", "mixer")}
    for (m, c), r in rows.items():
        assert float(r[2]) > 0 and (r[3] == "1" if c == "off" else "IQR" in r[3])


def test_compile_cost_reports_a_setting_that_fails_and_goes_on(tmp_path, monkeypatch, capsys):
    def broken(fn=None, **kw):
        def call(*a, **k):
            raise RuntimeError("no compiler here")
        return call if fn is not None else (lambda f: call)
    monkeypatch.setattr(torch, "compile", broken)
    mod = _load("compile_cost")
    assert mod.main(["--model", "resnet8", "--size", "8", "--batch", "4", "--methods", "mixup", "--compile", "model",
                     "--rounds", "1", "--steps", "1", "--warmup", "1"]) == 0
    text = capsys.readouterr().out
    assert "| mixup | model | fails: RuntimeError: no compiler here |" in text and "| mixup | off |" in text


def test_protocol_time_extrapolates_the_comparison_and_packs_runs(tmp_path):
    mod = _load("protocol_time")
    out = tmp_path / "protocol.md"
    assert mod.main(["--dataset", "digits", "--model", "resnet8", "--batch", "32", "--methods", "vanilla,mixup+fmix",
                     "--steps", "2", "--warmup", "1", "--epochs", "10", "--seeds", "2", "--max-eval", "16",
                     "--pack", "1,2", "--pack-steps", "2", "--out", str(out)]) == 0
    res = json.loads(out.with_suffix(".json").read_text())
    spe = res["steps_per_epoch"]
    assert spe == -(-1347 // 32) and set(res["methods"]) == {"vanilla", "mixup+fmix"}
    total = 0.0
    for v in res["methods"].values():
        assert v["run_s"] == pytest.approx(10 * (spe * v["step_s"] + res["epoch_eval_s"]) + res["final_eval_s"])
        total += v["run_s"]
    assert res["comparison_s"] == pytest.approx(2 * total)
    assert set(res["packing"]) == {"1", "2"} and all(r > 0 for r in res["packing"].values())
    text = out.read_text()
    assert "an extrapolation from those steps, not a training run" in text and "| 2 |" in text
    assert "**The whole comparison, one run at a time:" in text and "With `--jobs" in text


def _check(*args, **kw):
    return subprocess.run(["bash", str(CHECK), *args], cwd=ROOT, capture_output=True, text=True, timeout=600, **kw)


def test_gpu_check_argument_errors_are_one_line():
    for args, message in ((["--device", "tpu"], "--device must be cuda or cpu"),
                          (["--stages", "speed,nope"], "unknown stage 'nope'"),
                          (["--frobnicate"], "unknown argument '--frobnicate'")):
        proc = _check(*args)
        assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [proc.stderr.strip()]
        assert message in proc.stderr
    assert "--device cpu --tiny is the dry run" in _check("--help").stdout


def test_gpu_check_dry_run_of_some_stages_writes_its_folder(tmp_path):
    # the whole dry run takes minutes (docs/gpu.md); here: setup, one test stage and one measurement
    out = tmp_path / "check"
    bundle = tmp_path / "check.tar.gz"
    proc = _check("--device", "cpu", "--tiny", "--stages", "data,tests-gpu", "--out", str(out), "--bundle", str(bundle),
                  "--python", sys.executable)
    summary = (out / "summary.md").read_text()
    assert proc.returncode == 0, summary + proc.stdout[-2000:] + (out / "log.txt").read_text()[-3000:]
    rows = {r[0]: r for r in _rows(summary, "") if len(r) == 4 and r[0] not in ("stage", "---")}
    assert set(rows) == {"setup", "tests-gpu", "data"} and all(r[1] == "ok" for r in rows.values())
    assert "device: no CUDA device" in (out / "env.txt").read_text()
    assert "resident" in (out / "data_pipeline.md").read_text()
    listing = (out / "tests-gpu.txt").read_text()
    assert "skipped" in listing.splitlines()[-1] and "passed" not in listing.splitlines()[-1]  # nothing ran on a CPU
    assert bundle.is_file() and bundle.stat().st_size > 0


def test_gpu_check_budget_skips_what_no_longer_fits_and_a_rerun_adds_its_rows(tmp_path):
    out, bundle = tmp_path / "check", tmp_path / "check.tar.gz"
    proc = _check("--device", "cpu", "--tiny", "--budget", "1", "--stages", "data", "--out", str(out),
                  "--bundle", str(bundle), "--python", sys.executable)
    summary = (out / "summary.md").read_text()
    assert proc.returncode == 1 and "| data | **skipped** (the 1s budget is spent) |" in summary
    assert bundle.is_file() and not (out / "data_pipeline.md").exists()
    # the rerun of that stage, with time, into the same folder: a second table, the earlier rows kept
    proc = _check("--device", "cpu", "--tiny", "--stages", "data", "--out", str(out), "--python", sys.executable)
    again = (out / "summary.md").read_text()
    assert proc.returncode == 0 and again.startswith(summary) and "## Rerun of data" in again
    assert "| data | ok |" in again and (out / "data_pipeline.md").is_file()
    assert "--budget must be a whole number" in _check("--budget", "8m").stderr
