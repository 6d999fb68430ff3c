"""The report a researcher pastes (issue 9): one configuration per report, the ranking with the best in
bold, CSV and LaTeX tables, wall-clock time, the real sizes and parameter count, the corruptions that
ran and the corruption error relative to vanilla, effective settings, and a warning block when anything
differs between the runs."""
from __future__ import annotations

import copy
import csv
import json
import shutil
from pathlib import Path

import pytest

from mixkit.bench import report as R
from mixkit.bench.config import BenchConfig
from mixkit.bench.runner import run_bench

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RESULTS = FIXTURES / "results_small.jsonl"


@pytest.fixture(scope="module")
def records():
    return R.load_results(RESULTS)


def _write(path: Path, recs) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def _table(text: str, first: str):
    """Header and rows (lists of cells) of the Markdown table whose header starts with ``first``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return [c.strip() for c in lines[start].strip("|").split("|")], rows


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """One tiny real benchmark with every metric, grayscale digits (16 of the 17 corruptions apply)."""
    out = tmp_path_factory.mktemp("real")
    cfg = BenchConfig(dataset="digits", n_train=64, n_test=32, model="resnet8", batch_size=32, methods=["vanilla", "mixup"],
                      seeds=[0], epochs=2, max_eval=16, progress=False, threads=1, jobs=1, out=str(out))
    run_bench(cfg)
    return out, (out / "report.md").read_text()


def test_report_never_averages_runs_of_different_configs(tmp_path, records):
    recs = copy.deepcopy(records)
    for r in recs:
        if r["seed"] == 2:  # seed 2 of every method was trained with another recipe
            r["run_key"] = "fedcba987654"
            r["config"] = dict(r["config"], epochs=6, lr=0.1)
    s = R.summarize(recs)
    assert [row.seeds for row in s] == [[0, 1]] * 3  # never averaged with seed 2
    assert s["mixup"].stats["top1"].mean == pytest.approx(0.93)
    assert s.excluded and s.excluded[0]["config"] == "fedcba987654"
    assert any("left out" in w and "epochs: 6 -> 4" in w and "lr: 0.1 -> 0.05" in w for w in s.warnings)
    text = R.write_report(_write(tmp_path / "results.jsonl", recs).parent, plots=False).read_text()
    assert "this report shows only the 6 runs" in text and "fedcba987654" in text


def test_median_last_label_counts_the_epochs_that_exist(records):
    recs = copy.deepcopy(records)
    for r in recs:
        r["config"] = dict(r["config"], median_last=10)  # asked for 10, the runs had 4 epochs (3 were used)
    s = R.summarize(recs)
    assert s.median_k == 3
    assert "top-1 median last 3 (%)" in R.main_table(s) and "last 10" not in R.render_report(s)


def test_cpu_report_says_amp_off(tmp_path, records):
    shutil.copy(RESULTS, tmp_path / "results.jsonl")  # a CPU run whose config asked for amp
    text = R.write_report(tmp_path, plots=False).read_text()
    recipe = next(line for line in text.splitlines() if line.startswith("- **recipe**"))
    assert "amp=True" not in recipe and "amp=False (requested True; it applies on CUDA only)" in recipe


def test_report_ranks_methods_and_bolds_the_best_per_column(tmp_path, records):
    shutil.copy(RESULTS, tmp_path / "results.jsonl")
    text = R.write_report(tmp_path, plots=False).read_text()
    header, rows = _table(text, "| rank | method")
    assert [r[:2] for r in rows] == [["1", "cutmix"], ["2", "mixup"], ["3", "vanilla"]]  # by final top-1
    col = {name: i for i, name in enumerate(header)}
    by = {r[1]: r for r in rows}
    assert by["cutmix"][col["top-1 final (%)"]] == "**95.33 ± 1.15**"
    assert by["mixup"][col["top-1 final (%)"]] == "93.00 ± 1.00"
    assert by["mixup"][col["NLL"]] == "**0.310 ± 0.010**"  # lower is better
    assert by["vanilla"][col["images/s"]] == "**1000 ± 10**" and by["vanilla"][col["overhead ×"]] == "**1.00×**"
    assert by["mixup"][col["FGSM acc (%)"]].startswith("**")


def test_report_writes_csv_and_latex_tables(tmp_path, records):
    shutil.copy(RESULTS, tmp_path / "results.jsonl")
    R.write_report(tmp_path, plots=False)
    rows = list(csv.DictReader((tmp_path / "table.csv").read_text().splitlines()))
    assert [r["method"] for r in rows] == ["cutmix", "mixup", "vanilla"]
    assert float(rows[0]["top-1 final (%) mean"]) == pytest.approx(95.3333, abs=1e-3)
    assert float(rows[0]["top-1 final (%) std"]) == pytest.approx(1.1547, abs=1e-3)
    assert "top-1 final (%)" in rows[0]["best in"] and "NLL" in rows[1]["best in"]
    tex = (tmp_path / "table.tex").read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex and "top-1 final (\\%)" in tex
    assert "$\\mathbf{95.33 \\pm 1.15}$" in tex and "$93.00 \\pm 1.00$" in tex
    assert "`table.csv` and `table.tex`" in (tmp_path / "report.md").read_text()


def test_report_shows_wall_clock_per_method(tmp_path, records):
    recs = copy.deepcopy(records)
    for r in recs:
        r["wall_time_s"] = {"vanilla": 2.0, "mixup": 3.0, "cutmix": 2.5}[r["method"]] + 0.5 * r["seed"]
    s = R.summarize(recs)
    assert s["mixup"].stats["wall_time_s"].values == pytest.approx([12.0, 14.0, 16.0])  # 4 epochs per run
    header, rows = _table(R.main_table(s), "| method")
    assert "wall-clock per run (s)" in header
    assert rows[1][header.index("wall-clock per run (s)")] == "14.0 ± 2.0"


def test_report_shows_the_real_sizes_and_the_parameter_count(real_run):
    out, text = real_run
    recs = R.load_results(out / "results.jsonl")
    assert {r["setup"]["n_train"] for r in recs} == {64} and {r["setup"]["n_test"] for r in recs} == {32}
    n = recs[0]["setup"]["model_params"]
    assert n > 1000
    assert "- **train samples**: 64" in text and "- **test samples**: 32" in text
    assert f"- **model**: resnet8 ({n:,} parameters)" in text
    assert "- **dataset**: digits (inputs 1×8×8, 10 classes)" in text
    assert "amp=False (requested True" in text and "- **threads**: 1 per training process" in text


def test_report_lists_the_corruptions_and_the_error_relative_to_vanilla(real_run):
    out, text = real_run
    s = R.summarize(R.load_results(out / "results.jsonl"))
    assert len(s.corruptions["ran"]) == 16 and list(s.corruptions["not_run"]) == ["saturate"]
    assert "needs 3 channels" in s.corruptions["not_run"]["saturate"]
    assert "Corruptions that ran (16 of 17" in text and "Not run: saturate (needs 3 channels, the data have 1)" in text
    assert s["vanilla"].stats["rel_mce"].mean == pytest.approx(1.0)
    assert s["mixup"].stats["rel_mce"] is not None and s["mixup"].stats["rel_mce"].mean > 0
    header, _ = _table(text, "| rank | method")
    assert "mCE vs vanilla (%)" in header


def test_report_warns_prominently_when_runs_differ(tmp_path, records):
    recs = copy.deepcopy(records)
    recs[0]["env"] = dict(recs[0]["env"], git="abc1234-dirty")
    for r in recs:
        if r["method"] == "cutmix":
            r["env"] = dict(r["env"], threads=4)
    text = R.write_report(_write(tmp_path / "results.jsonl", recs).parent, plots=False).read_text()
    head = text.split("## Setup")[0]
    assert "> **⚠ Warning: these runs may not be comparable.**" in head
    assert "env git differs between records (abc1234, abc1234-dirty)" in head
    assert "env threads differs between records (2, 4)" in head
    clean = R.write_report(tmp_path / "clean", RESULTS, plots=False).read_text()
    assert "Warning" not in clean.split("## Setup")[0]
