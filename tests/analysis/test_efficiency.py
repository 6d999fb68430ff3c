"""mixkit.analysis.efficiency on a committed bench run (docs/results/learned_digits), with known answers."""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from mixkit.analysis import efficiency

RUN = Path(__file__).resolve().parents[2] / "docs" / "results" / "learned_digits"


def _records():
    return [json.loads(line) for line in (RUN / "results.jsonl").read_text().splitlines() if line.strip()]


def test_points_are_the_reports_top1_and_the_logged_epoch_times():
    points = {p["method"]: p for p in efficiency.efficiency_points(RUN)}
    assert set(points) == {"vanilla", "mixup", "cutmix", "fmix", "puzzlemix", "automix", "adautomix"}
    recs = _records()
    for m, p in points.items():
        finals = [r["test_top1"] for r in recs if r["method"] == m and r["final"]]
        assert p["n_seeds"] == len(finals) == 3
        assert p["top1_mean"] == pytest.approx(statistics.mean(finals))
        assert p["top1_std"] == pytest.approx(statistics.stdev(finals))
        times = {(r["seed"], r["epoch"]): r["train_time_s"] for r in recs if r["method"] == m}
        assert p["epoch_s"] == pytest.approx(statistics.median(times.values()))
        assert p["step_ms"] is None and p["epoch_s_timed"] is None  # this run has no timed pass
    assert points["vanilla"]["top1_mean"] == pytest.approx(0.98)
    assert points["vanilla"]["time_ratio"] == 1.0
    assert points["puzzlemix"]["time_ratio"] > 1.5  # a saliency pass per step: slower than vanilla


def test_timed_pass_gives_the_epoch_time_from_the_step_time(tmp_path):
    recs = _records()
    for r in recs:
        r["setup"] = {"n_train": 500}
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    methods = sorted({r["method"] for r in recs})
    timed = {"run_key": recs[0]["run_key"], "methods": {
        m: {"images_per_s": [1000.0 * (i + 1)], "step_ms": 10.0 * (i + 1), "mix_ms": float(i)} for i, m in enumerate(methods)}}
    (tmp_path / "throughput.json").write_text(json.dumps(timed))
    points = {p["method"]: p for p in efficiency.efficiency_points(tmp_path)}
    for i, m in enumerate(methods):
        assert points[m]["step_ms"] == 10.0 * (i + 1)
        assert points[m]["epoch_s_timed"] == pytest.approx(10.0 * (i + 1) * 8 / 1000)  # ceil(500 / 64) = 8 steps
    out = efficiency.plot_efficiency(list(points.values()), tmp_path / "eff.png", time="epoch_s_timed")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_errors_name_the_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="results.jsonl"):
        efficiency.efficiency_points(tmp_path)
    with pytest.raises(ValueError, match="time must be"):
        efficiency.plot_efficiency([], tmp_path / "x.png", time="wall")
    with pytest.raises(ValueError, match="no point"):
        efficiency.plot_efficiency([{"method": "a", "top1_mean": 0.5, "epoch_s_timed": None}], tmp_path / "x.png",
                                   time="epoch_s_timed")
