"""docs/design.md's worked example of adding a method: its module text is executed from the page, the
class is registered, and every shared contract test (tests/test_contract.py) runs on it."""
from __future__ import annotations

import itertools
import re
import sys
import types
from pathlib import Path

import pytest
import torch

import test_contract
from mixkit import registry

DESIGN = Path(__file__).resolve().parents[1] / "docs" / "design.md"


def _example_module_text() -> str:
    text = DESIGN.read_text()
    section = text[text.index("## Adding a method"):text.index("## The benchmark")]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the worked example has one module"
    return blocks[0]


@pytest.fixture(scope="module")
def bandmix():
    module = types.ModuleType("bandmix_example")
    sys.modules[module.__name__] = module
    exec(compile(_example_module_text(), "docs/design.md (Adding a method)", "exec"), module.__dict__)
    cls = registry.register(module.BandMix)
    try:
        yield cls
    finally:
        registry.unregister(cls.name)
        del sys.modules[module.__name__]


def _contract_tests():
    """(name, function, [kwargs ...]) of every contract test, with its parameter grid but ``name`` fixed."""
    out = []
    for fname in sorted(dir(test_contract)):
        fn = getattr(test_contract, fname)
        if not fname.startswith("test_") or not callable(fn):
            continue
        grids = [m.args for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
        keys, values = [], []
        for argnames, vals in grids:
            names = [a.strip() for a in argnames.split(",")] if isinstance(argnames, str) else list(argnames)
            if names == ["name"]:
                continue
            keys.append(names)
            values.append([v if len(names) > 1 else (v,) for v in vals])
        calls = []
        for combo in itertools.product(*values):
            kw = {"name": "bandmix"}
            for names, v in zip(keys, combo):
                kw.update(zip(names, v))
            calls.append(kw)
        out.append((fname, fn, calls))
    return out


CONTRACT = _contract_tests()


@pytest.mark.parametrize("fname,fn,calls", CONTRACT, ids=[c[0] for c in CONTRACT])
def test_contract_holds_for_the_worked_example(bandmix, fname, fn, calls):
    ran = 0
    for kw in calls:
        if fname == "test_sampled_lambda_is_beta" or "cuda" in fname:
            pytest.skip("BETA_LAMBDA / CUDA checks are for listed methods and a GPU")
        try:
            fn(**kw)
            ran += 1
        except pytest.skip.Exception:
            continue
    assert ran > 0, f"{fname}: every case skipped"


def test_the_example_is_registered_only_inside_the_test(bandmix):
    assert "bandmix" in registry.available() and registry.spatial_dims("bandmix") == (1, 2, 3)
    m = registry.create("bandmix", mode="sample", num_classes=4)
    x = torch.rand(5, 3, 6, 10)
    res = m.mix(x, generator=torch.Generator().manual_seed(0))
    # the band spans every axis but the last: the anchor's share map is constant along the other axes
    share = res.mask[:, 0]
    assert torch.equal(share, share[:, :1, :].expand_as(share))
