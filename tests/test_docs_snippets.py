"""Every ```python block of README.md and docs/**/*.md runs, so an example in the docs cannot rot.

The blocks of one page run in order in one namespace (one test per page), in a temporary working
directory, so a page defines the tiny model or loader its later blocks use. A block fenced as
```python no-run is shown but not run (docs/design.md, "Writing the docs", says when that is allowed).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

# a fence line opens with ``` (possibly indented inside a list), its info string, then the body up to
# the closing fence at the same indentation
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)


def pages() -> list[Path]:
    found = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [p for p in found if p.is_file()]


def python_blocks(text: str) -> list[tuple[int, str, bool]]:
    """(line number, code, runs) of every python block of a markdown page, in order."""
    out = []
    for m in FENCE.finditer(text):
        words = m.group("info").split()
        if not words or words[0] not in ("python", "py"):
            continue
        indent = m.group("indent")
        body = "".join(line[len(indent):] if line.startswith(indent) else line
                       for line in m.group("body").splitlines(keepends=True))
        line = text.count("\n", 0, m.start()) + 2  # the first line of the body
        out.append((line, body, "no-run" not in words[1:]))
    return out


def test_the_extractor_reads_fences_and_the_no_run_mark():
    text = "a\n```python\nx = 1\n```\n\n* item\n\n  ```python no-run\n  y = 2\n  ```\n```bash\nls\n```\n"
    assert python_blocks(text) == [(3, "x = 1\n", True), (9, "y = 2\n", False)]


PAGES = [p for p in pages() if python_blocks(p.read_text())]


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A temporary cwd; torch's global RNG, threads and dtype and the run-time registry restored after."""
    from mixkit import registry

    monkeypatch.chdir(tmp_path)
    rng, threads, dtype = torch.get_rng_state(), torch.get_num_threads(), torch.get_default_dtype()
    runtime = dict(registry._RUNTIME)
    try:
        yield tmp_path
    finally:
        torch.set_rng_state(rng)
        torch.set_num_threads(threads)
        torch.set_default_dtype(dtype)
        registry._RUNTIME.clear()
        registry._RUNTIME.update(runtime)


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_python_block_of_the_page_runs(page, isolated):
    rel = page.relative_to(ROOT)
    namespace: dict = {"__name__": f"docs_snippet_{rel.stem}"}
    for line, code, runs in python_blocks(page.read_text()):
        if not runs:
            continue
        # blank lines in front keep the traceback's line numbers those of the page
        source = "\n" * (line - 1) + code
        try:
            exec(compile(source, str(rel), "exec"), namespace)
        except Exception as e:
            raise AssertionError(f"{rel}:{line}: the python block starting here fails: "
                                 f"{type(e).__name__}: {e}") from e
