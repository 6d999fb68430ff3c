"""``import mixkit`` needs only torch, and ``mixkit.<submodule>`` imports a submodule on first use (PEP 562).

Each check runs in a fresh interpreter, because this test process has imported most of mixkit already.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "mixkit"
# the submodules that must not load with `import mixkit` (the bench extras, pictures, the command line,
# framework shims) and the third-party packages that only they import
LAZY = ["mixkit.bench", "mixkit.viz", "mixkit.cli", "mixkit.registry", "mixkit.timm",
        "mixkit.integrations.lightning", "mixkit.integrations.huggingface"]
OPTIONAL = ["matplotlib", "sklearn", "scipy", "tqdm", "yaml", "mnist1d", "timm", "kornia", "torchvision",
            "lightning", "pytorch_lightning", "transformers", "accelerate", "maxflow"]
# the attributes the docs use after a plain `import mixkit`
DOCUMENTED = ["viz", "registry", "masks", "hooks", "saliency", "integrations", "bench", "cli", "mixers",
              "learned", "losses", "targets", "labels", "result", "sampling"]


def _run(code: str) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def public_submodules() -> list[str]:
    names = {p.stem for p in PACKAGE.glob("*.py")} | {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    return sorted(n for n in names if not n.startswith("_"))


def test_the_documented_submodules_exist():
    assert set(DOCUMENTED) <= set(public_submodules())


def test_import_mixkit_loads_neither_the_optional_packages_nor_the_lazy_submodules():
    # what torch itself loads (it imports numpy and tqdm when they are installed) does not count
    loaded = _run("import json, sys, torch\nbase = set(sys.modules)\nimport mixkit\n"
                  "print(json.dumps(sorted(set(sys.modules) - base)))")
    assert "mixkit.mixers" in loaded
    assert [m for m in LAZY + OPTIONAL if m in loaded] == []


def test_each_submodule_is_an_attribute_after_a_plain_import():
    names = public_submodules()
    got = _run(
        "import json, sys, mixkit\n"
        f"names = {names!r}\n"
        "listed = [n for n in names if n in dir(mixkit)]\n"
        "mods = {n: getattr(mixkit, n).__name__ for n in names}\n"
        "again = all(getattr(mixkit, n) is sys.modules['mixkit.' + n] for n in names)\n"
        "print(json.dumps({'listed': listed, 'mods': mods, 'again': again}))\n")
    assert got["listed"] == names, "dir(mixkit) lists every public submodule"
    assert got["mods"] == {n: f"mixkit.{n}" for n in names}
    assert got["again"]


def test_the_lazy_attributes_work_as_the_docs_use_them():
    got = _run(
        "import json, mixkit\n"
        "print(json.dumps({'viz': callable(mixkit.viz.show_grid),\n"
        "                  'registry': mixkit.registry.create('cutmix').__class__.__name__}))\n")
    assert got == {"viz": True, "registry": "CutMix"}


@pytest.mark.parametrize("name", ["nope", "_private", "Viz"])
def test_an_unknown_attribute_is_an_attribute_error(name):
    import mixkit

    with pytest.raises(AttributeError, match=f"has no attribute '{name}'"):
        getattr(mixkit, name)
    assert not hasattr(mixkit, name)
