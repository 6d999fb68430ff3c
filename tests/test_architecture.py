"""The architecture is held by tests: the import layering (import-linter contracts in `.importlinter`),
no import circle between any two modules, short single-concern files, and references that resolve."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "mixkit"
MAX_LINES = 500


def test_import_contracts_hold():
    pytest.importorskip("importlinter")
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "PYTHONPATH": str(ROOT / "src")})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def _cycles(adj):
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in adj:
        if root in index:
            continue
        work = [(root, iter(sorted(adj[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(adj[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_no_import_circle_between_modules():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("mixkit")
    # a package importing its own submodules (re-exports) is not a circle with them
    adj = {m: {i for i in graph.find_modules_directly_imported_by(m) if not m.startswith(i + ".")}
           for m in graph.modules}
    assert _cycles(adj) == []


def test_files_are_short_or_say_why():
    long = []
    for path in sorted(SRC.rglob("*.py")):
        lines = path.read_text().splitlines()
        if len(lines) > MAX_LINES and not any("Long file:" in line for line in lines[:15]):
            long.append(f"{path.relative_to(ROOT)} ({len(lines)} lines)")
    assert not long, f"files over {MAX_LINES} lines without a 'Long file:' reason at the top: {long}"


def test_every_doc_path_named_in_the_code_exists():
    missing = []
    pattern = re.compile(r"\b((?:docs|benchmarks|scripts|tests)/[\w./-]+\.(?:md|py|toml|sh))")
    for path in sorted(SRC.rglob("*.py")):
        for ref in pattern.findall(path.read_text()):
            if "<" in ref or "*" in ref:
                continue
            if not (ROOT / ref).exists():
                missing.append(f"{path.relative_to(ROOT)} -> {ref}")
    assert not missing, missing
    for path in sorted(SRC.rglob("*.py")):
        assert "DESIGN.md" not in path.read_text(), f"{path}: points at a DESIGN.md that is not in the repository"


def test_every_registered_method_has_its_docs_page():
    from mixkit import registry

    for name in registry.available():
        assert (ROOT / "docs" / "methods" / f"{name}.md").is_file(), f"{name}: docs/methods/{name}.md is missing"
