"""Tests for mixkit.bench.report: loading results.jsonl, the statistics, report.md, the PNGs and the CLI hook.

The fixture ``tests/fixtures/results_small.jsonl`` (3 methods x 3 seeds x 4 epochs) is written by
``tests/fixtures/make_results_fixture.py``; its docstring lists the numbers checked here by hand.
"""
from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import math
import shutil
from pathlib import Path

import pytest

from mixkit.bench import report as R
from mixkit.bench.report import plots as report_plots
from mixkit.bench.report.series import _occlusion_points, _pooled_reliability
from mixkit.bench.report.stats import _t_quantile_975_builtin

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RESULTS = FIXTURES / "results_small.jsonl"
T975_2 = 4.302653  # t_{0.975, 2}


def _generator():
    spec = importlib.util.spec_from_file_location("make_results_fixture", FIXTURES / "make_results_fixture.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def records():
    return R.load_results(RESULTS)


@pytest.fixture(scope="module")
def full_report(tmp_path_factory, records):
    """One full report with plots (the slow part), shared by the tests that read it."""
    run = tmp_path_factory.mktemp("run")
    shutil.copy(RESULTS, run / "results.jsonl")
    (run / "gallery.png").write_bytes(_tiny_png())
    path = R.write_report(run)
    return run, path, path.read_text()


def _tiny_png() -> bytes:
    from PIL import Image
    import io

    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (255, 0, 0)).save(buf, format="PNG")
    return buf.getvalue()


def _write(path: Path, recs) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def _table_rows(text: str):
    """``{method: [cells]}`` of the main results table."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| method | top-1 final"))
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells
    return lines[start], rows


# ------------------------------------------------------------------------------------------------
# fixture and loading
# ------------------------------------------------------------------------------------------------
def test_fixture_is_what_the_generator_writes(records):
    gen = _generator()
    assert RESULTS.read_text() == gen.render()
    assert len(records) == 3 * 3 * 4
    finals = [r for r in records if r["final"]]
    assert len(finals) == 9 and all("metrics" in r for r in finals)


def test_truncated_last_line_is_skipped_with_a_warning(tmp_path):
    text = RESULTS.read_text()
    p = tmp_path / "results.jsonl"
    p.write_text(text + '{"method": "mixup", "seed": 3, "epo')  # a writer killed mid-line
    with pytest.warns(RuntimeWarning, match="last line 37"):
        recs = R.load_results(p)
    assert len(recs) == 36
    with pytest.warns(RuntimeWarning):
        out = R.write_report(tmp_path, plots=False)
    assert "| mixup |" in out.read_text()


def test_malformed_middle_line_and_blank_lines(tmp_path):
    lines = RESULTS.read_text().splitlines()
    p = tmp_path / "r.jsonl"
    p.write_text("\n".join(lines[:5] + ["", "{not json", "   "] + lines[5:]) + "\n\n")
    with pytest.warns(RuntimeWarning, match="line 7"):
        recs = R.load_results(p)
    assert len(recs) == 36


def test_missing_results_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="results"):
        R.load_results(tmp_path / "nope.jsonl")


# ------------------------------------------------------------------------------------------------
# statistics
# ------------------------------------------------------------------------------------------------
def test_t_quantile():
    assert R.t_quantile_975(2) == pytest.approx(T975_2, abs=1e-6)
    assert _t_quantile_975_builtin(2) == pytest.approx(T975_2, abs=1e-6)
    assert _t_quantile_975_builtin(1) == pytest.approx(12.706205, abs=1e-6)
    special = pytest.importorskip("scipy.special")  # stdtrit is the inverse CDF behind scipy.stats.t.ppf
    for df in list(range(1, 41)) + [60, 100, 1000]:
        exact = float(special.stdtrit(df, 0.975))
        assert _t_quantile_975_builtin(df) == pytest.approx(exact, abs=1e-6), df
        assert R.t_quantile_975(df) == pytest.approx(exact, abs=1e-9), df
    with pytest.raises(ValueError, match="df"):
        R.t_quantile_975(0)


def test_summarize_means_and_sample_std(records):
    s = R.summarize(records)
    assert s.methods == ["vanilla", "mixup", "cutmix"]
    assert s.median_k == 3 and s.reference == "vanilla"
    v, m, c = s["vanilla"], s["mixup"], s["cutmix"]
    assert v.seeds == [0, 1, 2] and v.n == 3
    # final top-1: vanilla 0.90/0.91/0.92, cutmix 0.94/0.96/0.96
    assert v.stats["top1"].mean == pytest.approx(0.91)
    assert v.stats["top1"].std == pytest.approx(0.01)  # ddof=1 (ddof=0 would give 0.00816)
    assert c.stats["top1"].mean == pytest.approx(0.95333333)
    assert c.stats["top1"].std == pytest.approx(math.sqrt((0.0133333**2 + 2 * 0.0066667**2) / 2), rel=1e-4)
    # median of the last 3 epochs = final - 0.02
    assert m.stats["median_top1"].mean == pytest.approx(0.91)
    assert m.stats["nll"].mean == pytest.approx(0.31) and m.stats["nll"].std == pytest.approx(0.01)
    assert v.stats["ece"].mean == pytest.approx(0.055) and v.stats["ece"].std == pytest.approx(0.005)
    assert v.stats["corruption"].mean == pytest.approx(0.91 - 0.16)
    assert m.stats["fgsm"].mean == pytest.approx(0.21)
    assert c.stats["occlusion_auc"].mean == pytest.approx((0.95333333 + 0.1) / 2)
    # images/s: mean over epochs per seed (990/1000/1010 for vanilla), then over seeds
    assert v.stats["images_per_s"].values == pytest.approx([990, 1000, 1010])
    assert v.stats["images_per_s"].std == pytest.approx(10)
    assert v.overhead == pytest.approx(1.0)
    assert m.overhead == pytest.approx(1.25)
    assert c.overhead == pytest.approx(1000 / 900)
    json.dumps(s.to_dict())  # JSON-friendly


def test_paired_interval_hand_case(records):
    s = R.summarize(records)
    assert s["vanilla"].delta == {}
    # mixup - vanilla per seed: +0.02, +0.03, +0.01 -> mean 0.02, sd 0.01
    d = s["mixup"].delta["top1"]
    half = T975_2 * 0.01 / math.sqrt(3)
    assert d.n == 3 and d.seeds == [0, 1, 2]
    assert d.mean == pytest.approx(0.02)
    assert d.half_width == pytest.approx(half, rel=1e-6)
    assert (d.lo, d.hi) == pytest.approx((0.02 - half, 0.02 + half), rel=1e-6)
    assert not d.excludes_zero
    # cutmix - vanilla: +0.04, +0.05, +0.04 -> mean 0.043333, sd 0.0057735 -> [0.02899, 0.05768]
    d = s["cutmix"].delta["top1"]
    sd = math.sqrt(((0.04 - 0.0433333) ** 2 * 2 + (0.05 - 0.0433333) ** 2) / 2)
    assert d.mean == pytest.approx(0.0433333, rel=1e-5)
    assert d.half_width == pytest.approx(T975_2 * sd / math.sqrt(3), rel=1e-4)
    assert d.lo == pytest.approx(0.028991, abs=2e-6) and d.excludes_zero
    # an unpaired interval would be far wider: pairing is what makes cutmix significant
    unpaired_half = T975_2 * math.sqrt(0.01**2 + s["cutmix"].stats["top1"].std ** 2) / math.sqrt(3)
    assert d.half_width < unpaired_half / 2


def test_pairing_uses_common_seeds_only():
    d = R.paired_difference({0: 0.5, 1: 0.7, 2: 0.9}, {1: 0.6, 2: 0.7, 3: 0.1})
    assert d.seeds == [1, 2] and d.diffs == pytest.approx([0.1, 0.2])
    assert d.mean == pytest.approx(0.15)
    assert d.half_width == pytest.approx(12.706205 * math.sqrt(0.005) / math.sqrt(2), rel=1e-6)
    assert R.paired_difference({0: 1.0}, {1: 1.0}) is None
    one = R.paired_difference({0: 0.8}, {0: 0.7})
    assert one.n == 1 and one.mean == pytest.approx(0.1) and one.lo is None and not one.excludes_zero
    # a negative difference whose interval is below 0 is marked too
    neg = R.paired_difference({0: 0.5, 1: 0.51, 2: 0.5}, {0: 0.6, 1: 0.6, 2: 0.61})
    assert neg.hi < 0 and neg.excludes_zero


def test_rows_follow_config_order_and_later_lines_win(records):
    recs = list(reversed(copy.deepcopy(records)))  # cutmix first in the file
    s = R.summarize(recs)
    assert s.methods == ["vanilla", "mixup", "cutmix"]
    # a resumed run re-logged vanilla seed 0's final epoch with another number: the later line counts
    again = copy.deepcopy(next(r for r in records if r["method"] == "vanilla" and r["seed"] == 0 and r["final"]))
    again["metrics"]["top1"] = 0.99
    s = R.summarize(list(records) + [again])
    assert s["vanilla"].per_seed["top1"][0] == pytest.approx(0.99)
    assert s["vanilla"].n == 3


def test_incomplete_seed_and_missing_method(records):
    recs = [r for r in records if not (r["method"] == "mixup" and r["seed"] == 2 and r["epoch"] == 3)]
    recs = [r for r in recs if r["method"] != "cutmix"]
    s = R.summarize(recs)
    assert s["mixup"].seeds == [0, 1] and s["mixup"].incomplete_seeds == [2]
    assert s["mixup"].stats["top1"].mean == pytest.approx(0.93)
    assert s["mixup"].delta["top1"].n == 2  # paired over seeds 0 and 1 only
    assert s.missing_methods == ["cutmix"]
    assert any("no final line" in n for n in s.notes) and any("cutmix" in n for n in s.notes)


def test_fallbacks_without_evaluate_keys(records):
    """Brief-shaped metrics (occlusion fractions/acc, corruption mean only) and a missing median."""
    recs = copy.deepcopy(records)
    for r in recs:
        m = r.get("metrics")
        if not m:
            continue
        occ = m.pop("occlusion")
        fr = sorted(float(f) for f in occ["curve"])
        m["occlusion"] = {"fractions": fr, "acc": [occ["curve"][str(f)] for f in fr], "auc": occ["auc"]}
        for key in ("occlusion_auc", "mean_corruption_acc", "median_top1", "median_last", "ece"):
            m.pop(key)
    s = R.summarize(recs)
    v = s["vanilla"]
    assert v.stats["occlusion_auc"].mean == pytest.approx((0.91 + 0.1) / 2)
    assert v.stats["corruption"].mean == pytest.approx(0.75)
    assert v.stats["median_top1"].mean == pytest.approx(0.89)  # from the epoch lines, k = config.median_last
    assert v.stats["ece"].mean == pytest.approx(0.055)  # from reliability["ece"]
    pts = _occlusion_points(recs[3]["metrics"]["occlusion"])
    assert len(pts) == 11 and pts[0] == (0.0, pytest.approx(0.90)) and pts[-1] == (1.0, pytest.approx(0.1))


def test_pooled_reliability_sums_counts():
    a = {"bin_edges": [0, 0.5, 1], "bin_count": [2, 2], "bin_acc": [0.5, 1.0], "bin_conf": [0.4, 0.9]}
    b = {"bin_edges": [0, 0.5, 1], "bin_count": [0, 4], "bin_acc": [0.0, 0.5], "bin_conf": [0.0, 0.8]}
    p = _pooled_reliability([a, b, None])
    assert p["bin_count"] == [2, 6] and p["n_seeds"] == 2
    assert p["bin_acc"] == pytest.approx([0.5, (2 * 1.0 + 4 * 0.5) / 6])
    assert p["bin_conf"] == pytest.approx([0.4, (2 * 0.9 + 4 * 0.8) / 6])
    assert p["ece"] == pytest.approx((abs(1.0 - 0.8) + abs(4.0 - 5.0)) / 8)


# ------------------------------------------------------------------------------------------------
# report.md and the PNGs
# ------------------------------------------------------------------------------------------------
def test_report_content(full_report):
    run, path, text = full_report
    assert path == run / "report.md"
    assert text.startswith("# mixkit bench report")
    assert "mixkit bench --methods vanilla,mixup,cutmix" in text  # the recorded command
    assert "`0123456789ab`" in text  # the config hash
    assert "**dataset**: digits" in text and "**model**: resnet8" in text and "**torch**: 2.13.0" in text
    header, rows = _table_rows(text)
    assert list(rows) == ["vanilla", "mixup", "cutmix"]
    assert "top-1 median last 3" in header and "overhead ×" in header
    assert rows["vanilla"][1] == "91.00 ± 1.00"
    assert rows["cutmix"][1] == "95.33 ± 1.15" and rows["cutmix"][2] == "93.33 ± 1.15"
    assert rows["vanilla"][3] == "(reference)"
    assert rows["mixup"][3] == "+2.00 [−0.48, +4.48]"  # includes 0: not marked
    assert rows["cutmix"][3] == "+4.33 [+2.90, +5.77] *"
    assert rows["mixup"][4] == "0.310 ± 0.010" and rows["mixup"][5] == "2.50 ± 0.50"
    assert rows["mixup"][-2] == "800 ± 10" and rows["mixup"][-1] == "1.25×"
    assert "| cutmix | alpha=1.0, correct_lam=True |" in text


def test_report_pngs(full_report):
    from PIL import Image

    run, _, text = full_report
    for name in ("accuracy.png", "reliability.png", "corruption.png", "occlusion.png", "calibration_robustness.png"):
        assert f"]({name})" in text, name
        with Image.open(run / name) as im:
            im.verify()
        with Image.open(run / name) as im:
            assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 200
    assert "](gallery.png)" in text  # the trainer's gallery is embedded when present
    assert not list(run.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_missing_optional_metrics(tmp_path, records):
    recs = copy.deepcopy(records)
    for r in recs:
        m = r.get("metrics")
        if m:  # corruptions, FGSM and occlusion switched off, as evaluate() reports it
            m.update(corruption=None, mean_corruption_acc=None, fgsm_acc=None, occlusion=None, occlusion_auc=None)
            if r["method"] == "mixup":
                del r["metrics"]  # and no metrics dict at all for one method
    _write(tmp_path / "results.jsonl", recs)
    (tmp_path / "occlusion.png").write_bytes(_tiny_png())  # stale picture from an earlier report
    s = R.summarize(R.load_results(tmp_path / "results.jsonl"))
    assert s["vanilla"].stats["fgsm"] is None and s["vanilla"].stats["corruption"] is None
    assert s["mixup"].stats["top1"].mean == pytest.approx(0.93)  # from test_top1 of the final line
    assert s["mixup"].stats["median_top1"].mean == pytest.approx(0.91)  # from the epoch lines
    assert s["mixup"].stats["ece"] is None and s["mixup"].delta["ece"] is None
    text = R.write_report(tmp_path).read_text()
    _, rows = _table_rows(text)
    assert rows["vanilla"][6:9] == ["n/a", "n/a", "n/a"]
    assert rows["mixup"][5] == "n/a"
    assert (tmp_path / "accuracy.png").is_file() and (tmp_path / "reliability.png").is_file()
    for name in ("corruption.png", "occlusion.png", "calibration_robustness.png"):
        assert not (tmp_path / name).exists() and name not in text


def test_single_seed_has_no_interval(tmp_path, records):
    _write(tmp_path / "results.jsonl", [r for r in records if r["seed"] == 1])
    s = R.summarize(R.load_results(tmp_path / "results.jsonl"))
    assert s["mixup"].stats["top1"].std is None and s["mixup"].stats["top1"].n == 1
    d = s["mixup"].delta["top1"]
    assert d.n == 1 and d.mean == pytest.approx(0.03) and d.lo is None
    text = R.write_report(tmp_path, plots=False).read_text()
    _, rows = _table_rows(text)
    assert rows["mixup"][1] == "94.00 ± –"
    assert rows["mixup"][3] == "+3.00 (n=1, no CI)"
    assert "*" not in rows["cutmix"][3]
    assert "![" not in text  # plots=False


def test_single_method_without_vanilla(tmp_path, records):
    _write(tmp_path / "results.jsonl", [r for r in records if r["method"] == "cutmix" and r["seed"] == 0])
    text = R.write_report(tmp_path).read_text()
    header, rows = _table_rows(text)
    assert list(rows) == ["cutmix"] and "Δ" not in header and "overhead" not in header
    assert rows["cutmix"][1] == "94.00 ± –"
    assert "Paired differences" not in text
    assert (tmp_path / "accuracy.png").is_file()
    assert "no results yet for: vanilla, mixup" in text


def test_mixed_configurations_are_flagged(tmp_path, records):
    recs = copy.deepcopy(records)
    for r in recs:
        if r["method"] == "cutmix":
            r["run_key"] = "ffffffffffff"
    s = R.summarize(recs)
    assert any("2 different configurations" in n for n in s.notes)
    assert not any("different configurations" in n for n in R.summarize(records).notes)
    recs[0]["env"] = dict(recs[0]["env"], git="abc1234-dirty")
    assert any("env git differs between records (abc1234, abc1234-dirty)" in n for n in R.summarize(recs).notes)
    assert not any("env" in n for n in R.summarize(records).notes)


def test_a_failing_plot_does_not_cost_the_report(tmp_path, records, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("bad data")

    monkeypatch.setattr(report_plots, "_plot_accuracy", boom)
    for name in ("_plot_reliability", "_plot_corruption", "_plot_calibration_robustness"):
        monkeypatch.setattr(report_plots, name, lambda *a, **k: None)  # keep the test fast
    _write(tmp_path / "results.jsonl", [r for r in records if r["seed"] == 0])
    with pytest.warns(RuntimeWarning, match="accuracy.png"):
        text = R.write_report(tmp_path).read_text()
    assert "| cutmix |" in text and "accuracy.png could not be drawn (RuntimeError: bad data)" in text
    assert "](occlusion.png)" in text and "](accuracy.png)" not in text


def test_empty_results_file(tmp_path):
    (tmp_path / "results.jsonl").write_text("\n")
    text = R.write_report(tmp_path).read_text()
    assert "No results yet" in text


# ------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------
def test_cli_parser(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="mixkit")
    sub = parser.add_subparsers(dest="command", required=True)
    R.add_report_parser(sub)
    run = tmp_path / "run"
    run.mkdir()
    args = parser.parse_args(["report", str(run), "--results", str(RESULTS), "--no-plots"])
    assert args.command == "report" and args.dir == str(run) and args.results == str(RESULTS)
    assert args.func(args) == 0
    out = capsys.readouterr().out.strip()
    assert out == str(run / "report.md") and (run / "report.md").is_file()
    assert "| cutmix |" in (run / "report.md").read_text()
    args = parser.parse_args(["report", str(run)])
    assert args.results is None and args.no_plots is False
    with pytest.raises(FileNotFoundError, match="results"):
        args.func(args)  # no results.jsonl in the run folder
