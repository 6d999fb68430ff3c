"""`mixkit analyze` (mixkit.analysis.run) on a tiny real bench run: records, report, resume, Ctrl-C, CLI."""
from __future__ import annotations

import json
import shutil

import pytest

from mixkit.analysis import run
from mixkit.bench.config import BenchConfig
from mixkit.bench.runner import run_bench
from mixkit.cli.main import main


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "run"
    cfg = BenchConfig.from_dict({"dataset": "digits", "n_train": 120, "n_test": 60, "epochs": 2, "seeds": [0, 1],
                                 "methods": ["vanilla", "mixup"], "eval_corruptions": False, "eval_fgsm": False,
                                 "eval_occlusion": False, "throughput_steps": 1, "out": str(out), "progress": False,
                                 "jobs": 1})
    run_bench(cfg, report=False)
    return out


@pytest.fixture
def run_dir(bench_run, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(bench_run, d)
    return d


def _records(d):
    return [json.loads(line) for line in (d / "analysis.jsonl").read_text().splitlines()]


def test_every_checkpoint_gets_every_analysis_and_the_report_compares_to_vanilla(run_dir):
    md = run.analyze(run_dir, ["noise", "calibration", "gradients", "deepfool", "efficiency"], max_eval=60,
                     progress=False)
    recs = _records(run_dir)
    assert sorted((r["checkpoint"], r["analysis"]) for r in recs) == sorted(
        (f"{m}-s{s}", a) for m in ("vanilla", "mixup") for s in (0, 1) for a in ("noise", "calibration", "gradients", "deepfool"))
    text = md.read_text()
    for section in ("## noise", "## calibration", "## gradients", "## deepfool", "## efficiency"):
        assert section in text
    assert "Δ" in text and (run_dir / "noise.png").is_file() and (run_dir / "efficiency.png").is_file()
    # the pipeline (checkpoint, data split, normalisation) reproduces the bench's own numbers
    finals = {(r["method"], r["seed"]): r for r in map(json.loads, (run_dir / "results.jsonl").read_text().splitlines())
              if r.get("final")}
    for r in recs:
        if r["analysis"] == "calibration":
            assert r["metrics"]["ece"] == pytest.approx(finals[(r["method"], r["seed"])]["metrics"]["ece"], abs=1e-6)
        if r["analysis"] == "noise":
            assert r["metrics"]["acc@0"] == pytest.approx(finals[(r["method"], r["seed"])]["test_top1"], abs=1e-6)


def test_a_rerun_keeps_what_is_done_and_ctrl_c_loses_nothing(run_dir, monkeypatch):
    calls = {"n": 0}
    real = run.ANALYSES["noise"]

    def flaky(model, x, y, ctx):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real[0](model, x, y, ctx)

    monkeypatch.setitem(run.ANALYSES, "noise", (flaky, real[1]))
    with pytest.raises(KeyboardInterrupt):
        run.analyze(run_dir, ["noise"], max_eval=30, progress=False)
    first = _records(run_dir)
    assert len(first) == 2  # the two finished before the interrupt are on disk
    monkeypatch.setitem(run.ANALYSES, "noise", real)
    run.analyze(run_dir, ["noise"], max_eval=30, progress=False)
    recs = _records(run_dir)
    assert len(recs) == 4 and recs[:2] == first
    run.analyze(run_dir, ["noise"], max_eval=30, progress=False)  # nothing left to do
    assert _records(run_dir) == recs
    run.analyze(run_dir, ["noise"], max_eval=20, progress=False)  # other settings: computed again, kept apart
    assert len({r["key"] for r in _records(run_dir)}) == 2


def test_transfer_to_a_second_dataset(run_dir):
    for p in (run_dir / "state").glob("*.pt"):
        if p.stem != "vanilla-s0":
            p.unlink()
    run.analyze(run_dir, ["transfer"], max_eval=30, transfer_dataset="digits", transfer_n=100, transfer_epochs=1,
                progress=False)
    (rec,) = _records(run_dir)
    assert 0 <= rec["metrics"]["linear_probe_top1"] <= 1 and 0 <= rec["metrics"]["fine_tune_top1"] <= 1


def test_cli_runs_and_reports_errors_in_one_line(run_dir, capsys):
    assert main(["analyze", str(run_dir), "--analyses", "calibration", "--max-eval", "20", "--quiet"]) == 0
    assert "analysis.md" in capsys.readouterr().out
    assert main(["analyze", str(run_dir), "--analyses", "bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mixkit: error: analyses must be among")
    assert main(["analyze", str(run_dir / "missing")]) == 2
    assert main(["analyze", str(run_dir), "--analyses", "transfer"]) == 2
    assert "--transfer-dataset" in capsys.readouterr().err


def test_cam_and_mutual_info_and_no_resume_keeps_the_other_analyses(run_dir):
    run.analyze(run_dir, ["calibration", "cam", "mutual_info"], max_eval=40, vae_epochs=1, progress=False)
    recs = _records(run_dir)
    cams = [r for r in recs if r["analysis"] == "cam"]
    assert len(cams) == 4 and all(0 <= r["metrics"]["share_on_own_region_anchor"] <= 1 for r in cams)
    for m in ("vanilla", "mixup"):  # one picture per method, shown in the report
        assert (run_dir / f"cam_{m}.png").read_bytes()[:4] == b"\x89PNG"
        assert f"cam_{m}.png" in (run_dir / "analysis.md").read_text()
    mi = [r for r in recs if r["analysis"] == "mutual_info"]
    assert sorted((r["method"], r["seed"]) for r in mi) == [("mixup", 0), ("mixup", 1), ("vanilla", 0), ("vanilla", 1)]
    assert "## mutual_info" in (run_dir / "analysis.md").read_text()
    run.analyze(run_dir, ["cam"], max_eval=40, resume=False, progress=False)
    after = _records(run_dir)
    assert [r for r in after if r["analysis"] != "cam"] == [r for r in recs if r["analysis"] != "cam"]
    assert len([r for r in after if r["analysis"] == "cam"]) == 4


def test_checkpoint_mode_writes_where_asked(bench_run, tmp_path, capsys):
    ckpt = bench_run / "state" / "mixup-s1.pt"
    assert main(["analyze", "--checkpoint", str(ckpt), "--analyses", "calibration", "--out", str(tmp_path / "a"),
                 "--quiet"]) == 0
    (rec,) = _records(tmp_path / "a")
    assert rec["checkpoint"] == "mixup-s1" and "ece" in rec["metrics"]
    assert main(["analyze", str(bench_run), "--checkpoint", str(ckpt)]) == 2
    assert "not both" in capsys.readouterr().err
