"""The documentation site (mkdocs.yml, docs_hooks.py) builds with ``mkdocs build --strict``, and the strict
build fails on a broken link, a broken anchor, a link outside docs/ to a missing file and a missing
docstring. Skipped where MkDocs is not installed (``pip install -e ".[docs]"``)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs")
pytest.importorskip("material")
pytest.importorskip("mkdocstrings_handlers.python")
yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]


def _build(config: Path, site: Path, *path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1",
               PYTHONPATH=os.pathsep.join([str(ROOT / "src"), *map(str, path), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
                          capture_output=True, text=True, env=env, timeout=300)


def test_the_site_builds_strictly_with_every_page_and_the_api(tmp_path):
    out = _build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert out.returncode == 0, out.stderr[-4000:]
    site = tmp_path / "site"
    pages = {p.relative_to(ROOT / "docs").with_suffix(".html").as_posix()
             for p in (ROOT / "docs").rglob("*.md")}
    pages = {p.replace("README.html", "index.html") for p in pages}
    assert sorted(p for p in pages if not (site / p).is_file()) == []
    mixers = (site / "api" / "mixers.html").read_text()
    import mixkit.mixers

    for name in mixkit.mixers.__all__:  # the API page lists every exported mixer, read from __all__
        cls = getattr(mixkit.mixers, name)
        assert f'id="{cls.__module__}.{name}"' in mixers, name
    home = (site / "index.html").read_text()
    for page in sorted((ROOT / "docs" / "methods").glob("*.md")):  # every method page is in the nav
        assert f'href="methods/{page.stem}.html"' in home, page.stem


def _broken_site(tmp_path: Path, page: str, module: str = "") -> subprocess.CompletedProcess:
    """A copy of the site's configuration on a docs folder of one page (and one module on the path)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\n" + page)
    (docs / "design.md").write_text("# Design\n\n## A section\n")
    (tmp_path / "pkg_example.py").write_text(module)
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    config["docs_dir"] = str(docs)
    config["hooks"] = [str(ROOT / "docs_hooks.py")]
    handler = config["plugins"][1]["mkdocstrings"]["handlers"]["python"]
    handler["paths"] = [str(ROOT / "src"), str(tmp_path)]
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    return _build(tmp_path / "mkdocs.yml", tmp_path / "site", tmp_path)


def test_a_good_page_builds(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "README.md").write_text("# Benchmarks\n")
    out = _broken_site(tmp_path, "[design](design.md#a-section), `benchmarks/README.md`: "
                       "[it](../benchmarks/README.md)\n\n::: pkg_example.f\n\n"
                       "<!-- mixkit-api: pkg_example -->\n\n<!-- mixkit-api: mixkit.not_a_module optional -->\n",
                       '"""A module."""\n\n\ndef f():\n    """Documented."""\n\n\n'
                       'class G:\n    """Also documented."""\n')
    assert out.returncode == 0, out.stderr[-3000:]
    home = (tmp_path / "site" / "index.html").read_text()
    assert 'id="pkg_example.G"' in home and "benchmarks/README.md</code>" in home
    assert "not_a_module" not in home


@pytest.mark.parametrize("page, module, message", [
    ("[gone](nope.md)\n", "", "nope.md"),
    ("[anchor](design.md#no-such-section)\n", "", "no-such-section"),
    ("[outside](../benchmarks/NOPE.md)\n", "", "points at no file of the repository"),
    ("::: pkg_example.f\n", '"""A module."""\n\n\ndef f():\n    pass\n', "pkg_example.f has no docstring"),
    ("::: pkg_example.C\n", '"""A module."""\n\n\nclass C:\n    """A class."""\n\n    def run(self):\n        pass\n',
     "pkg_example.C.run has no docstring"),
], ids=["missing-page", "missing-anchor", "outside-docs", "no-docstring", "method-without-docstring"])
def test_the_strict_build_fails_on(tmp_path, page, module, message):
    out = _broken_site(tmp_path, page, module)
    assert out.returncode != 0
    assert message in out.stderr, out.stderr[-3000:]
