"""``python -m build`` makes an sdist and a wheel that hold what they should, and the wheel works in a
fresh virtualenv (that check installs torch into a new venv, about half a minute: it runs with
``MIXKIT_PACKAGE_CHECK=1``, as ``make package-check`` and .ci/run do)."""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("build")
ROOT = Path(__file__).resolve().parents[1]
PACKAGE_CHECK = os.environ.get("MIXKIT_PACKAGE_CHECK") == "1"


@pytest.fixture(scope="module")
def dists(tmp_path_factory):  # module scope: the two tests below share one build
    """(sdist, wheel) built from the working tree; the wheel is built from the sdist, as pip would."""
    out = tmp_path_factory.mktemp("dist")
    # without build isolation: the build requirements (setuptools) are those of this environment
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--skip-dependency-check",
                           "--outdir", str(out), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (sdist,), (wheel,) = sorted(out.glob("*.tar.gz")), sorted(out.glob("*.whl"))
    return sdist, wheel


def test_the_wheel_and_the_sdist_hold_what_they_should(dists):
    sdist, wheel = dists
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA")).rsplit("/", 1)[0]
        entry_points = z.read(f"{info}/entry_points.txt").decode()
        metadata = z.read(f"{info}/METADATA").decode()
    modules = {p.relative_to(ROOT / "src").as_posix() for p in (ROOT / "src" / "mixkit").rglob("*.py")}
    assert sorted(modules - names) == []
    # package data: any file of the package that is not Python (none today) must be in the wheel too
    data = {p.relative_to(ROOT / "src").as_posix() for p in (ROOT / "src" / "mixkit").rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}
    assert sorted(data - names) == []
    assert f"{info}/licenses/LICENSE" in names
    assert not any(n.startswith(("tests/", "docs/", "benchmarks/")) for n in names)
    assert "mixkit = mixkit.cli:main" in entry_points
    assert "[mixkit.commands]" in entry_points and "bench = mixkit.cli.bench:register" in entry_points
    assert "Requires-Dist: torch" in metadata and "Provides-Extra: docs" in metadata

    # the sdist (checked in the same test: one build, which writes src/mixkit.egg-info in the tree)
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    for path in ["LICENSE", "README.md", "pyproject.toml", "MANIFEST.in", "mkdocs.yml", "docs_hooks.py",
                 "Makefile", ".importlinter", "docs/index.md", "docs/design.md", "docs/img/cutmix.png",
                 "tests/test_contract.py", "tests/conftest.py", "benchmarks/README.md"]:
        assert path in names, path
    assert not any("__pycache__" in n for n in names)


def _run(*cmd: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
    assert done.returncode == 0, f"{' '.join(cmd)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.slow
@pytest.mark.skipif(not PACKAGE_CHECK, reason="installs torch into a new venv: MIXKIT_PACKAGE_CHECK=1 "
                                              "(make package-check)")
def test_the_wheel_works_in_a_fresh_venv_with_only_torch(dists, tmp_path):
    import torch

    _, wheel = dists
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", str(venv), cwd=tmp_path)
    py, bin_ = venv / "bin" / "python", venv / "bin"
    # the torch of this environment (the pinned CPU build), so pip takes the same wheel
    _run(str(py), "-m", "pip", "install", "-q", f"torch=={torch.__version__}", cwd=tmp_path)
    _run(str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel), cwd=tmp_path)
    code = ("import sys, torch, mixkit\n"
            "assert mixkit.__file__.startswith(sys.prefix), mixkit.__file__\n"
            "x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 0])\n"
            "xm, ys = mixkit.MixUp(1.0, num_classes=3)(x, y, generator=torch.Generator().manual_seed(0))\n"
            "assert xm.shape == x.shape and ys.shape == (4, 3)\n"
            "assert torch.allclose(ys.sum(1), torch.ones(4))\n"
            "assert mixkit.registry.create('cutmix').name == 'cutmix'\n"
            "print('ok', mixkit.__version__)\n")
    assert _run(str(py), "-c", code, cwd=tmp_path).startswith("ok 0.1.0")
    listing = _run(str(bin_ / "mixkit"), "list", cwd=tmp_path)
    assert "cutmix" in listing and "available" in listing
    assert "usage: mixkit bench" in _run(str(bin_ / "mixkit"), "bench", "--help", cwd=tmp_path)
