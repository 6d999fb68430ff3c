"""Smoke tests of the benchmark scripts: tiny runs so they never rot. Nothing here checks time."""
from __future__ import annotations

import subprocess
import sys

import pytest
from benchscripts import BENCH, ROOT, load

VERDICTS = ("| **met** |", "| **not met** |", "| not decided |")


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(BENCH / script), "--quick", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _goal_rows(text: str) -> list:
    goals = load("goals", "_goals_under_test")
    rows = []
    for g in goals.GOALS:
        row = [ln for ln in text.splitlines() if ln.startswith(f"| {g.where} |")]
        assert len(row) == 1, f"goal row {g.where!r} missing or repeated"
        rows.append((g, row[0]))
    return rows


def test_speed_quick_run_writes_tables_and_the_goal_table(tmp_path):
    out = tmp_path / "speed.md"
    _run("speed.py", "--threads", "1", "--out", str(out))
    text = out.read_text()
    for key in ("speed", "goals"):
        assert f"<!-- BEGIN generated section: {key} -->" in text and f"<!-- END generated section: {key} -->" in text
    for title in ("fixed cost per call", "CIFAR-sized batch", "ImageNet-sized batch", "1-D signals", "3-D volumes"):
        assert f"### {title}:" in text
    assert "| floor | - | new batch" in text and "| floor | - | out=" in text
    assert "page-fault regime of this process:" in text and "transparent_hugepage" in text
    assert "torchvision:" in text  # present, or skipped with a reason
    for name in ("MixUp", "CutMix"):
        for mode in ("batch", "sample"):
            row = next((ln for ln in text.splitlines() if ln.startswith(f"| {name} | {mode} | **mixkit** |")), None)
            assert row is not None, f"no row for {name} {mode}"
            cells = [c.strip() for c in row.strip("|").split("|")]
            assert float(cells[3]) > 0 and "IQR" in cells[5]  # a time, and a per-round ratio to the floor
    rows = _goal_rows(text)
    for g, row in rows:
        assert any(v in row for v in VERDICTS), row
        if g.script == "speed.py":
            assert "not measured in this run" not in row, row
    assert "Peak memory on 1-channel data" in text
    assert not list(tmp_path.glob(".speed.md.tmp*"))  # the atomic write left no temporary file


def test_model_aware_cost_quick_run_writes_each_grid_and_the_goal_row(tmp_path):
    out = tmp_path / "cost.md"
    out.write_text("# Cost\n\nhand-written text that stays\n")
    _run("model_aware_cost.py", "--out", str(out))
    text = out.read_text()
    assert text.startswith("# Cost\n\nhand-written text that stays\n")
    for k in (2, 4, 8, 16):
        assert f"| puzzlemix@{k} |" in text
    assert "| vanilla |" in text and "| comixup |" in text
    rows = dict((g.key, row) for g, row in _goal_rows(text))
    assert any(v in rows["solvers"] for v in VERDICTS) and "PuzzleMix 16×16" in rows["solvers"]


def test_ratios_are_taken_within_rounds():
    h = load("_harness", "_harness_under_test")
    a, b = h.Case("a", None), h.Case("b", None)
    a.rounds, b.rounds = [1.0, 2.0, 4.0, 8.0, 16.0], [0.5, 1.0, 2.0, 4.0, 8.0]  # load doubles every round
    d = h.ratio(a, b)
    assert d.median == 2.0 and d.q1 == d.q3 == 2.0 and d.n == 5
    c = h.Case("c", None)
    c.rounds = [1.0, 2.0]
    assert h.ratio(a, c) is None  # rounds that do not pair up give no ratio
    # with the floor timed next to each case, each side is divided by its own neighbouring floor time first
    a.ref, b.ref = [1.0, 1.0, 2.0, 2.0, 4.0], [0.5, 0.5, 1.0, 1.0, 2.0]
    d = h.ratio(a, b)
    assert d.median == 1.0 and d.q1 == d.q3 == 1.0
    floor = h.Case("floor", None, rounds=[1.0, 1.0, 2.0, 2.0, 4.0], ref=[1.0, 1.0, 2.0, 2.0, 4.0])
    assert [h.ratio(a, floor).median, h.ratio(floor, floor).median] == [2.0, 1.0]


def test_write_section_replaces_its_own_section_only(tmp_path):
    h = load("_harness", "_harness_under_test")
    page = tmp_path / "page.md"
    page.write_text("# Title\n\nhand-written intro\n")
    h.write_section(page, "a", "first A")
    h.write_section(page, "b", "only B")
    h.write_section(page, "a", "second A")
    text = page.read_text()
    assert text.startswith("# Title\n\nhand-written intro\n")
    assert "second A" in text and "first A" not in text and "only B" in text
    assert text.count("<!-- BEGIN generated section: a -->") == 1
    assert text.index("second A") < text.index("only B")  # replaced in place, not appended
    assert h.read_section(page, "b") == "only B"


def test_official_fmix_restatement_exact_counts():
    np = pytest.importorskip("numpy")
    off = load("fmix_official_numpy", "_fmix_official_numpy")
    rng = np.random.default_rng(0)
    for shape in [(16, 16), (15, 17), (64,), (8, 8, 8)]:
        lam, mask = off.sample_mask(1.0, 3.0, shape, rng)
        assert mask.shape == (1,) + shape
        assert set(np.unique(mask)) <= {0.0, 1.0}
        assert abs(mask.mean() - lam) <= 1.0 / mask.size + 1e-12
    lams, masks = off.sample_masks_looped(3, 1.0, 3.0, (8, 8), rng)
    assert masks.shape == (3, 1, 8, 8) and len(set(lams.tolist())) == 3
    # a soft edge keeps the mean while adding values strictly between 0 and 1
    lam, soft = off.sample_mask(1.0, 3.0, (32, 32), rng, max_soft=0.1)
    assert ((soft > 0) & (soft < 1)).any()
    assert abs(soft.mean() - lam) <= 2.0 / soft.size
