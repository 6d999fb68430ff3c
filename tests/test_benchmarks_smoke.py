"""Smoke test of benchmarks/speed.py: a tiny run so the script never rots. Nothing here checks time."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "speed.py"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up while the file executes
    spec.loader.exec_module(mod)
    return mod


def test_speed_script_tiny_run(tmp_path):
    out = tmp_path / "speed.md"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--sizes", "8", "--batch", "4", "--repeats", "1", "--rounds", "1",
         "--threads", "1", "--device", "cpu", "--out", str(out), "--section", "smoke"],
        cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = out.read_text()
    assert "<!-- BEGIN speed section: smoke -->" in text and "<!-- END speed section: smoke -->" in text
    assert "| floor | - | lerp(xp, x, w, out=out) |" in text
    # the two mixers that exist from the start are timed in both modes, with a ratio to the floor
    for name in ("MixUp", "CutMix"):
        for mode in ("batch", "sample"):
            row = next((ln for ln in text.splitlines() if ln.startswith(f"| {name} | {mode} | **mixkit** |")), None)
            assert row is not None, f"no row for {name} {mode}"
            cells = [c.strip() for c in row.strip("|").split("|")]
            assert float(cells[3]) > 0 and float(cells[8]) > 0  # median ms and x floor are numbers
    assert "### Targets" in text
    assert any(ln.startswith(("PASS", "FAIL", "SKIP")) for ln in text.splitlines())
    assert "torch threads: 1" in text
    assert not list(tmp_path.glob(".speed.md.tmp*"))  # the atomic write left no temporary file


def test_write_section_replaces_its_own_section_only(tmp_path):
    speed = _load("_speed_under_test", SCRIPT)
    page = tmp_path / "page.md"
    page.write_text("# Title\n\nhand-written intro\n")
    speed.write_section(page, "a", "first A")
    speed.write_section(page, "b", "only B")
    speed.write_section(page, "a", "second A")
    text = page.read_text()
    assert text.startswith("# Title\n\nhand-written intro\n")
    assert "second A" in text and "first A" not in text and "only B" in text
    assert text.count("<!-- BEGIN speed section: a -->") == 1
    assert text.index("second A") < text.index("only B")  # replaced in place, not appended


def test_official_fmix_restatement_exact_counts():
    np = pytest.importorskip("numpy")
    off = _load("_fmix_official_numpy", ROOT / "benchmarks" / "fmix_official_numpy.py")
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
