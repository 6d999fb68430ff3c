"""Tests of mixkit.registry, mixkit.viz and the `mixkit` command (list / show / extensions)."""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import types
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest
import torch

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import mixkit  # noqa: E402
from mixkit import cli, registry, viz  # noqa: E402
from mixkit.cli import extensions  # noqa: E402
from mixkit.mixers.cutmix import CutMix  # noqa: E402
from mixkit.mixers.dirichlet import DirichletMixUp  # noqa: E402
from mixkit.mixers.mixup import MixUp  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _titles(fig):
    """All axes titles of a figure, its subfigures included, in creation order (each axes once)."""
    out, seen = [], set()
    stack = [fig]
    while stack:
        f = stack.pop(0)
        for ax in f.axes:
            if id(ax) not in seen:
                seen.add(id(ax))
                out.append(ax.get_title())
        stack.extend(getattr(f, "subfigs", []))
    return out


def _png_ok(path) -> bool:
    with open(path, "rb") as f:
        head = f.read(8)
    return head == PNG_MAGIC and os.path.getsize(path) > 5000


@pytest.fixture(scope="module")
def synth():
    return cli.synthetic_images(n_per_class=2)


# ------------------------------------------------------------------------------------------------
# registry
# ------------------------------------------------------------------------------------------------
def test_registry_names_and_available():
    names = registry.names()
    for n in ("mixup", "dirichlet_mixup", "cutmix", "fmix", "hmix", "gmix", "resizemix", "smoothmix", "gridmix"):
        assert n in names
    avail = registry.available()
    assert {"mixup", "dirichlet_mixup", "cutmix"} <= set(avail)
    assert set(avail) <= set(names)
    assert set(avail).isdisjoint(registry.unavailable())
    assert set(avail) | set(registry.unavailable()) == set(names)


def test_registry_create_defaults_aliases_and_overrides():
    m = registry.create("cutmix", alpha=0.4, mode="sample", num_classes=10)
    assert isinstance(m, CutMix) and m.alpha == 0.4 and m.mode == "sample" and m.num_classes == 10
    d = registry.create("dmixup")  # alias
    assert isinstance(d, DirichletMixUp) and d.k == 3 and d.alpha == 1.0
    assert isinstance(registry.create("Dirichlet-MixUp"), DirichletMixUp)  # case and dash insensitive
    assert isinstance(registry.create("mixup"), MixUp)


def test_registry_hmix_default_ratio_is_papers():
    if not registry.is_available("hmix"):
        pytest.skip("hmix not implemented yet")
    assert registry.create("hmix").r == 0.5  # the paper's figure, not the official code's 1.0 (= CutMix)
    assert registry.create("hmix", r=0.25).r == 0.25


def test_registry_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as ei:
        registry.create("cutmx")
    msg = str(ei.value)
    assert isinstance(ei.value, registry.UnknownMethodError)
    assert "Did you mean 'cutmix'" in msg
    for n in registry.names():
        assert n in msg


def test_registry_bad_override_names_the_argument():
    with pytest.raises(TypeError, match="bogus"):
        registry.create("mixup", bogus=1)


def test_registry_missing_module_is_unavailable_not_an_error(monkeypatch):
    from importlib.metadata import EntryPoint

    fake = EntryPoint("nothere", "mixkit.mixers.does_not_exist_xyz:Nope", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: (fake,))
    monkeypatch.setattr(registry, "_EP_CACHE", {})
    assert "nothere" in registry.names()
    assert "nothere" not in registry.available()
    assert "not implemented yet" in registry.unavailable()["nothere"]
    info = registry.describe("nothere")
    assert info["available"] is False and "does_not_exist_xyz" in info["reason"]
    with pytest.raises(registry.MethodUnavailableError, match="does_not_exist_xyz"):
        registry.create("nothere")


class ThirdParty(MixUp):
    """A method another package would ship (defined outside mixkit: only an entry point registers it)."""

    name = "third_party_mix"
    defaults = {"alpha": 0.3}
    summary = "a method from another package"


def test_registry_entry_point_adds_a_method(monkeypatch):
    from importlib.metadata import EntryPoint

    assert "third_party_mix" not in registry.names()  # defined, but not in mixkit and not registered
    ep = EntryPoint("third_party_mix", f"{__name__}:ThirdParty", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: (ep,))
    monkeypatch.setattr(registry, "_EP_CACHE", {})
    assert registry.names().count("third_party_mix") == 1
    m = registry.create("third-party-mix", num_classes=3)
    assert isinstance(m, ThirdParty) and m.alpha == 0.3
    assert registry.describe("third_party_mix")["summary"] == "a method from another package"


def test_registry_describe():
    d = registry.describe("cutmix")
    assert d["available"] and d["reason"] is None
    assert d["name"] == "cutmix" and d["target"].endswith(":CutMix")
    assert 2 in d["spatial_dims"] and d["needs_model"] is False
    assert d["defaults"] == {"alpha": 1.0}


# ------------------------------------------------------------------------------------------------
# viz
# ------------------------------------------------------------------------------------------------
def test_show_grid_prints_the_realised_weights(synth):
    x, y = synth.x[::2][:6], synth.y[::2][:6]
    mixer = CutMix(alpha=1.0, mode="sample")
    fig = viz.show_grid(mixer, x, y, synth.class_names, n=6, generator=torch.Generator().manual_seed(3))
    res = fig.mixkit_result
    # the drawn result is the mixer's own draw under that seed
    again = mixer.mix(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(res.weights, again.weights) and torch.equal(res.index, again.index)
    titles = _titles(fig)
    mixed = [t for t in titles if t.startswith("mixed")]
    masks = [t for t in titles if t.startswith("anchor share")]
    assert len(mixed) == 6 and len(masks) == 6
    for i in range(6):
        for j in range(2):
            w = float(res.weights[i, j])
            name = synth.class_names[int(y[int(res.index[i, j])])]
            assert f"{w:.2f}·'{name}'" in mixed[i], (i, j, mixed[i])
        # the mask panel's mean is the anchor's label weight (realised share, not the sampled lambda)
        assert f"mean = {float(res.weights[i, 0]):.2f}" in masks[i]
        assert abs(float(res.mask[i, 0].mean()) - float(res.weights[i, 0])) < 1e-6


def test_show_grid_pure_interpolation_shows_constant_share(synth):
    x, y = synth.x[:4], synth.y[:4]
    fig = viz.show_grid("mixup", x, y, synth.class_names, n=4, generator=torch.Generator().manual_seed(0),
                        params={"mode": "sample"})
    res = fig.mixkit_result
    assert res.mask is None
    masks = [t for t in _titles(fig) if t.startswith("anchor share")]
    assert [f"constant = {float(w):.2f}" in t for t, w in zip(masks, res.weights[:, 0])] == [True] * 4
    # distinct per-sample lambdas in sample mode -> the printed values are not all equal
    assert len({t for t in masks}) > 1


def test_show_grid_k_sources(synth):
    x, y = synth.x[:5], synth.y[:5]
    fig = viz.show_grid(DirichletMixUp(k=3, mode="sample"), x, y, synth.class_names, n=5,
                        generator=torch.Generator().manual_seed(1))
    res = fig.mixkit_result
    mixed = [t for t in _titles(fig) if t.startswith("mixed")]
    for i, t in enumerate(mixed):
        assert t.count("·") == 3
        for j in range(3):
            assert f"{float(res.weights[i, j]):.2f}·" in t


def test_weight_text_format():
    res = mixkit.MixResult(inputs=torch.zeros(2, 1, 4, 4), index=torch.tensor([[0, 1], [1, 0]]),
                           weights=torch.tensor([[0.73, 0.27], [0.5, 0.5]]))
    y = torch.tensor([3, 8])
    assert viz.weight_text(res, 0, y) == "0.73·'3' + 0.27·'8'"
    assert viz.weight_text(res, 1, y, ["a"] * 3 + ["three"] + ["b"] * 4 + ["eight"]) == "0.50·'eight' + 0.50·'three'"
    assert viz.weight_text(res, 0) == "0.73·x[0] + 0.27·x[1]"


def test_show_1d_titles_and_saves(tmp_path):
    data = cli.synthetic_sequences(n_per_class=2)
    x, y = data.x[::2][:4], data.y[::2][:4]
    out = tmp_path / "sub" / "seq.png"
    fig = viz.show_1d(CutMix(mode="sample"), x, y, data.class_names, n=4,
                      generator=torch.Generator().manual_seed(0), out=out)
    res = fig.mixkit_result
    assert _png_ok(out)
    titles = [t for t in _titles(fig) if "share" in t and "·" in t]
    assert len(titles) == 4
    for i, t in enumerate(titles):
        assert t.startswith(viz.weight_text(res, i, y, data.class_names))
        assert f"mean share {float(res.weights[i, 0]):.2f}" in t


def test_show_dispatch_and_dim_errors(synth):
    seq = torch.rand(4, 1, 16)
    with pytest.raises(ValueError, match="show_1d"):
        viz.show_grid("mixup", seq)
    with pytest.raises(ValueError, match="show_grid"):
        viz.show_1d("mixup", synth.x[:4])
    fig = viz.show("cutmix", seq, n=2, generator=torch.Generator().manual_seed(0))
    assert fig.mixkit_result.inputs.shape == seq.shape
    with pytest.raises(TypeError, match="mixer"):
        viz.show_grid(42, synth.x[:4])
    with pytest.raises(ValueError, match="params"):
        viz.show_grid(CutMix(), synth.x[:4], params={"alpha": 2.0})


def test_show_grid_draws_a_given_result(synth):
    x = synth.x[:4]
    res = CutMix(mode="sample").mix(x, generator=torch.Generator().manual_seed(5))
    fig = viz.show_grid("cutmix", x, result=res, n=4)
    assert fig.mixkit_result is res
    masks = [t for t in _titles(fig) if t.startswith("anchor share")]
    assert all(f"mean = {float(w):.2f}" in t for t, w in zip(masks, res.weights[:, 0]))


def test_mask_gallery(tmp_path):
    out = tmp_path / "gallery.png"
    fig = viz.mask_gallery(["mixup", "cutmix"], size=(16, 16), n=4, generator=torch.Generator().manual_seed(0), out=out)
    assert set(fig.mixkit_results) == {"mixup", "cutmix"}
    assert _png_ok(out)
    res = fig.mixkit_results["cutmix"]
    ws = [t for t in _titles(fig) if t.startswith("w=")]
    assert len(ws) == 8
    assert ws[4:] == [f"w={float(w):.2f}" for w in res.weights[:, 0]]


def test_import_mixkit_does_not_import_matplotlib():
    code = "import sys, mixkit, mixkit.viz, mixkit.cli, mixkit.registry; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------------------------------
# the command
# ------------------------------------------------------------------------------------------------
def test_cli_show_mixup_synthetic(tmp_path, capsys):
    out = tmp_path / "mixup.png"
    assert cli.main(["show", "mixup", "--dataset", "synthetic", "--out", str(out)]) == 0
    assert _png_ok(out)
    assert str(out) in capsys.readouterr().out


def test_cli_show_cutmix_digits(tmp_path):
    pytest.importorskip("sklearn")
    out = tmp_path / "cutmix.png"
    assert cli.main(["show", "cutmix", "--dataset", "digits", "--n", "4", "--mode", "batch",
                     "--param", "alpha=0.5", "--out", str(out)]) == 0
    assert _png_ok(out)


def test_cli_show_1d(tmp_path):
    out = tmp_path / "cutmix1d.png"
    assert cli.main(["show", "cutmix", "--dataset", "synthetic1d", "--n", "2", "--out", str(out)]) == 0
    assert _png_ok(out)


def test_cli_show_is_deterministic(tmp_path):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    for p, seed in ((a, "1"), (b, "1"), (c, "2")):
        assert cli.main(["show", "cutmix", "--dataset", "synthetic", "--n", "2", "--seed", seed, "--out", str(p)]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_cli_show_all_writes_one_png_per_available_method(tmp_path, capsys, monkeypatch):
    # three methods (a hard mask, a soft mask when available, no mask) keep the test fast; the docs
    # script draws every method
    # (and one model-aware method, untrained, so `show all` covers the model path)
    pick = [n for n in ("mixup", "cutmix", "gmix", "manifold_mixup") if registry.is_available(n)]
    monkeypatch.setattr(registry, "available", lambda: pick)
    d = tmp_path / "all"
    assert cli.main(["show", "all", "--dataset", "synthetic", "--n", "2", "--untrained", "--out", str(d)]) == 0
    written = sorted(p.name for p in d.iterdir())
    expected = sorted(f"{n}.png" for n in registry.available() if 2 in registry.spatial_dims(n))
    assert written == expected
    assert all(_png_ok(d / w) for w in written)


def test_cli_show_errors(tmp_path, capsys):
    assert cli.main(["show", "cutmx", "--dataset", "synthetic", "--out", str(tmp_path / "x.png")]) == 2
    assert "unknown method" in capsys.readouterr().err
    assert cli.main(["show", "mixup", "--dataset", "synthetic", "--param", "bogus=1",
                     "--out", str(tmp_path / "y.png")]) == 2
    assert "bogus" in capsys.readouterr().err
    assert cli.main(["show", "mixup", "--dataset", "synthetic", "--param", "noequals"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.png").exists()


def test_cli_show_refuses_unsupported_dims(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(registry, "spatial_dims", lambda name: (2,))
    assert cli.main(["show", "cutmix", "--dataset", "synthetic1d", "--out", str(tmp_path / "z.png")]) == 2
    err = capsys.readouterr().err
    assert "1-D" in err and "--dataset digits" in err
    assert not (tmp_path / "z.png").exists()


def test_parse_params():
    p = cli.parse_params(["alpha=0.4", "cutmix.minmax=(0.2, 0.8)", "flag=true", "name=foo", "k=3", "x=None"])
    assert p[None] == {"alpha": 0.4, "flag": True, "name": "foo", "k": 3, "x": None}
    assert p["cutmix"] == {"minmax": (0.2, 0.8)}
    with pytest.raises(registry.UnknownMethodError):
        cli.parse_params(["nomethod.alpha=1"])


def test_cli_list(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for n in registry.names():
        assert n in out
    assert "available" in out
    assert f"{len(registry.available())}/{len(registry.names())} methods available" in out


def test_cli_list_reports_why_unavailable(capsys, monkeypatch):
    fake = importlib.metadata.EntryPoint("nothere", "mixkit.mixers.does_not_exist_xyz:Nope", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: (fake,))
    monkeypatch.setattr(registry, "_EP_CACHE", {})
    assert cli.main(["list"]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("nothere")][0]
    assert "MISSING" in line and "not implemented yet" in line
    assert cli.main(["list", "--json"]) == 0
    entries = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert entries["nothere"]["available"] is False and entries["cutmix"]["available"] is True


# ------------------------------------------------------------------------------------------------
# extensions
# ------------------------------------------------------------------------------------------------
def _fake_entry_points(monkeypatch, **targets):
    """Make the ``mixkit.commands`` entry-point lookup find exactly ``name="module:attr"`` entries."""
    real = importlib.metadata.entry_points
    eps = [importlib.metadata.EntryPoint(name, value, cli.ENTRY_POINT_GROUP) for name, value in targets.items()]

    def entry_points(**kw):
        return eps if kw.get("group") == cli.ENTRY_POINT_GROUP else real(**kw)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def _hello_register(sub):
    p = sub.add_parser("hello-ep", help="a command registered by an entry point of this test module")
    p.add_argument("--times", type=int, default=1)
    p.set_defaults(func=lambda args: print("hello " * args.times) or 5)


def test_cli_runs_a_command_registered_by_an_entry_point(monkeypatch, capsys):
    assert sys.modules[__name__].__dict__["_hello_register"] is _hello_register  # the entry point's target
    _fake_entry_points(monkeypatch, hello=f"{__name__}:_hello_register")
    assert cli.main(["hello-ep", "--times", "2"]) == 5
    assert capsys.readouterr().out.strip() == "hello hello"
    assert "bench" not in extensions._LOADED_EXTENSIONS and extensions._LOADED_EXTENSIONS == ["hello"]
    # no entry point at all (mixkit not installed): an unknown command says where commands come from
    _fake_entry_points(monkeypatch)
    with pytest.raises(SystemExit):
        cli.main(["bench"])
    assert cli.ENTRY_POINT_GROUP in capsys.readouterr().err


def test_pyproject_declares_bench_in_the_entry_point_group():
    tomllib = pytest.importorskip("tomllib")

    meta = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    group = meta["project"]["entry-points"][cli.ENTRY_POINT_GROUP]
    assert group == {"bench": "mixkit.cli.bench:register", "analyze": "mixkit.cli.analyze:register"}
    sub = argparse.ArgumentParser().add_subparsers(dest="command")
    for name in ("bench", "analyze"):
        importlib.metadata.EntryPoint(name, group[name], cli.ENTRY_POINT_GROUP).load()(sub)
    assert {"bench", "report", "analyze"} <= set(sub.choices)


def test_cli_extension_registers_a_subcommand(monkeypatch, capsys):
    mod = types.ModuleType("mixkit_fake_ext")
    seen = {}

    def run(args):
        seen["who"] = args.who
        return 7

    def register(sub):
        p = sub.add_parser("hello")
        p.add_argument("--who", default="world")
        p.set_defaults(func=run)

    mod.register = register
    monkeypatch.setitem(sys.modules, "mixkit_fake_ext", mod)
    _fake_entry_points(monkeypatch, mixkit_fake_missing_ext_xyz="mixkit_fake_missing_ext_xyz:register",
                       hello="mixkit_fake_ext:register")
    assert cli.main(["hello", "--who", "you"]) == 7 and seen == {"who": "you"}
    assert "mixkit_fake_missing_ext_xyz" in extensions._SKIPPED_EXTENSIONS  # ImportError: skipped
    assert cli.main(["list"]) == 0  # built-ins still work next to an extension
    # an unknown command names the extensions that were skipped and why
    with pytest.raises(SystemExit):
        cli.main(["bench"])
    assert "mixkit_fake_missing_ext_xyz" in capsys.readouterr().err


def test_cli_broken_extension_is_not_hidden(monkeypatch):
    mod = types.ModuleType("mixkit_broken_ext")

    def register(sub):
        raise RuntimeError("broken extension")

    mod.register = register
    monkeypatch.setitem(sys.modules, "mixkit_broken_ext", mod)
    _fake_entry_points(monkeypatch, broken="mixkit_broken_ext:register")
    with pytest.raises(RuntimeError, match="broken extension"):
        cli.main(["list"])


# ------------------------------------------------------------------------------------------------
# model-aware methods: `mixkit show` builds (and briefly trains) a model
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def spy(monkeypatch):
    """Record the figures drawn by the viz entry points the command calls."""
    figs = {}
    for fn in ("show", "show_hidden", "show_saliency"):
        orig = getattr(viz, fn)

        def wrapped(*a, _orig=orig, _fn=fn, **k):
            fig = _orig(*a, **k)
            figs[_fn] = (a, k, fig)
            return fig

        monkeypatch.setattr(viz, fn, wrapped)
    return figs


def _mixed_titles(fig):
    return [t for t in _titles(fig) if t.startswith("mixed")]


def _need(name):
    if not registry.is_available(name):
        pytest.skip(f"{name} not available: {registry.unavailable().get(name)}")
    pytest.importorskip("sklearn")


def test_cli_show_saliencymix_static_digits(tmp_path, spy):
    _need("saliencymix")
    out = tmp_path / "sal.png"
    assert cli.main(["show", "saliencymix", "--dataset", "digits", "--out", str(out)]) == 0
    assert _png_ok(out)
    args, _, fig = spy["show_saliency"]
    mixer, x, y = args[0], args[1], args[2]
    res = fig.mixkit_result
    assert getattr(mixer, "model", None) is None  # static saliency: no model was built
    # the drawn result is the mixer's own draw, and the printed weights are its realised shares
    again = mixer.mix(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.weights, res.weights) and torch.equal(again.index, res.index)
    names = cli.load_show_data("digits").class_names
    mixed = _mixed_titles(fig)
    assert len(mixed) == 8
    for i, t in enumerate(mixed):
        for j in range(2):
            assert f"{float(res.weights[i, j]):.2f}·'{names[int(y[int(res.index[i, j])])]}'" in t
    masks = [t for t in _titles(fig) if t.startswith("anchor share")]
    assert [f"mean = {float(w):.2f}" in t for t, w in zip(masks, res.weights[:, 0])] == [True] * 8
    # the saliency drawn for each partner is the map the mixer placed its box with
    src = res.params["source"]
    assert torch.equal(fig.mixkit_saliency[src], res.params["saliency"].float())
    assert bool(fig.mixkit_saliency_available[src].all())
    assert sum("+ peak, box" in t for t in _titles(fig)) == 8


def test_cli_show_saliencymix_gradient_builds_a_model(tmp_path, spy):
    _need("saliencymix")
    out = tmp_path / "salg.png"
    assert cli.main(["show", "saliencymix", "--dataset", "digits", "--untrained", "--n", "4",
                     "--param", "saliency=gradient", "--out", str(out)]) == 0
    assert _png_ok(out)
    mixer = spy["show_saliency"][0][0]
    assert mixer.saliency == "gradient" and isinstance(mixer.model, torch.nn.Module)
    assert not mixer.model.training


def test_cli_show_manifold_mixup_untrained(tmp_path, spy):
    _need("manifold_mixup")
    out = tmp_path / "mm.png"
    assert cli.main(["show", "manifold_mixup", "--dataset", "digits", "--untrained", "--param", "layers=layer1",
                     "--out", str(out)]) == 0
    assert _png_ok(out)
    args, _, fig = spy["show_hidden"]
    mixer, x, y = args[0], args[1], args[2]
    res, hid = fig.mixkit_result, fig.mixkit_hidden
    assert hid["layer"] == "layer1" and res.params["layer"] == "layer1"
    assert res.outputs is not None and res.outputs.shape == (8, 10)
    # `before` is what the model computes at layer1 on the clean batch (recorded independently here)
    from mixkit.hooks import capture

    with torch.no_grad(), capture(mixer.model, "layer1") as acts:
        mixer.model(x)
    assert torch.allclose(hid["before"], acts["layer1"], atol=1e-6)
    # `after` is the real mixed state: lam * h + (1 - lam) * h[partner], row by row
    lam = res.weights[:, 0].view(-1, 1, 1, 1)
    h = hid["before"]
    expect = lam * h + (1 - lam) * h[res.index[:, 1]]
    assert torch.allclose(hid["after"], expect, atol=1e-5) and hid["max_error"] < 1e-5
    assert not torch.allclose(hid["after"], h)  # something was mixed
    # the logits are those of the network continued from the mixed state
    from mixkit.hooks import mix_at

    with torch.no_grad(), mix_at(mixer.model, "layer1", lambda t: expect.to(t.dtype)):
        logits = mixer.model(x)
    assert torch.allclose(res.outputs, logits, atol=1e-4)
    # printed weights
    names = cli.load_show_data("digits").class_names
    for i, t in enumerate(_mixed_titles(fig)):
        assert t.startswith("mixed layer1, ch ")
        for j in range(2):
            assert f"{float(res.weights[i, j]):.2f}·'{names[int(y[int(res.index[i, j])])]}'" in t
    shares = [t for t in _titles(fig) if t.startswith("anchor share")]
    assert [f"constant = {float(w):.2f}" in t for t, w in zip(shares, res.weights[:, 0])] == [True] * 8


def test_cli_show_comixup_untrained(tmp_path, spy):
    _need("comixup")
    out = tmp_path / "co.png"
    assert cli.main(["show", "comixup", "--dataset", "digits", "--untrained", "--out", str(out)]) == 0
    assert _png_ok(out)
    args, _, fig = spy["show_saliency"]
    y = args[2]
    res = fig.mixkit_result
    assert torch.allclose(res.weights.sum(1), torch.ones(8))
    names = cli.load_show_data("digits").class_names
    mixed = _mixed_titles(fig)
    assert len(mixed) == 8
    for i, t in enumerate(mixed):
        terms = t.split("\n", 1)[1].replace("\n", " ")
        used = [j for j in range(res.k) if float(res.weights[i, j]) > 0]
        assert terms.count("·") == len(used)  # zero-weight (padding) columns are not printed
        for j in used:
            assert f"{float(res.weights[i, j]):.2f}·'{names[int(y[int(res.index[i, j])])]}'" in terms
    assert sum(t.startswith("owner of each pixel") for t in _titles(fig)) == 8
    assert torch.equal(fig.mixkit_saliency, res.params["saliency"].float().cpu())


def test_show_model_training_is_seeded_and_changes_nothing_global(tmp_path):
    pytest.importorskip("sklearn")
    data = cli.load_show_data("digits")
    old_threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rng = torch.random.get_rng_state()
        with torch.no_grad():
            a = cli.show_model(data, seed=3, steps=4, verbose=False)
            b = cli.show_model(data, seed=3, steps=4, verbose=False)
            assert not torch.is_grad_enabled()  # grad mode restored (training ran under enable_grad)
        u = cli.show_model(data, seed=3, train=False)
        assert torch.get_num_threads() == 2
        assert torch.equal(torch.random.get_rng_state(), rng)  # init drawn inside fork_rng
        sa, sb, su = a.state_dict(), b.state_dict(), u.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)  # same seed, same model
        assert not all(torch.equal(sa[k], su[k]) for k in sa)  # training changed it
        assert not a.training and not u.training
        with torch.no_grad():
            next(a.parameters()).add_(1.0)  # each call returns its own copy
        assert not torch.equal(next(a.parameters()), next(cli.show_model(data, seed=3, steps=4).parameters()))
    finally:
        torch.set_num_threads(old_threads)


def test_cli_model_aware_show_leaves_global_state(tmp_path):
    _need("comixup")
    old_threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rng = torch.random.get_rng_state()
        with torch.no_grad():
            assert cli.main(["show", "comixup", "--dataset", "digits", "--untrained", "--n", "4",
                             "--out", str(tmp_path / "a.png")]) == 0
            assert not torch.is_grad_enabled()
        with torch.enable_grad():
            assert cli.main(["show", "patchup", "--dataset", "digits", "--untrained", "--n", "4",
                             "--out", str(tmp_path / "b.png")]) == 0
            assert torch.is_grad_enabled()
        assert torch.get_num_threads() == 2
        assert torch.equal(torch.random.get_rng_state(), rng)
    finally:
        torch.set_num_threads(old_threads)


def test_cli_model_aware_show_is_deterministic(tmp_path):
    _need("patchup")
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    for p in (a, b):
        assert cli.main(["show", "patchup", "--dataset", "digits", "--untrained", "--n", "2", "--param", "p=1.0",
                         "--out", str(p)]) == 0
    assert a.read_bytes() == b.read_bytes()


# ------------------------------------------------------------------------------------------------
# viz of model-aware mixers
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def net():
    from mixkit.bench.models import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        m = build_model("resnet8", 10, in_channels=3, spatial_dims=2)
    return m.eval()


@pytest.mark.parametrize("kind", ["hard", "soft"])
def test_show_hidden_patchup_block_mask(synth, net, kind):
    from mixkit.mixers.patchup import PatchUp

    x, y = synth.x[::2][:6], synth.y[::2][:6]
    mixer = PatchUp(net, layers="layer1", patchup_type=kind, block_size=5, gamma=0.3, mode="sample")
    fig = viz.show_hidden(mixer, x, y, synth.class_names, n=6, generator=torch.Generator().manual_seed(2))
    res, hid = fig.mixkit_result, fig.mixkit_hidden
    keep = res.params["keep"].float()
    assert keep.shape == hid["before"].shape  # (B, C, H, W) block mask at layer1
    share = keep if kind == "hard" else keep + (1 - keep) * res.params["lam_b"].view(-1, 1, 1, 1)
    assert torch.equal(hid["share"], share)
    assert 0 < float(keep.mean()) < 1 and hid["max_error"] < 1e-5
    # the mean of the share over the layer is the anchor's label weight, as printed
    assert torch.allclose(share.mean((1, 2, 3)), res.weights[:, 0], atol=1e-6)
    masks = [t for t in _titles(fig) if t.startswith("block mask, ch ")]
    assert len(masks) == 6
    for i, t in enumerate(masks):
        c = int(hid["channels"][i])
        assert t.startswith(f"block mask, ch {c}\n") and f"mean(all ch) = {float(res.weights[i, 0]):.2f}" in t


def test_show_hidden_and_show_grid_guards(synth, net):
    from mixkit.mixers.manifold import ManifoldMixup

    mixer = ManifoldMixup(net, layers="layer2", mode="sample")
    x = synth.x[:4]
    with pytest.raises(ValueError, match="show_hidden"):
        viz.show_grid(mixer, x)
    fig = viz.show(mixer, x, n=4, generator=torch.Generator().manual_seed(0))  # dispatches to show_hidden
    assert fig.mixkit_hidden["layer"] == "layer2" and fig.mixkit_hidden["before"].shape[1] == 32
    with pytest.raises(TypeError, match="runs_model"):
        viz.show_hidden(CutMix(), x)
    # not mixed (p = 0 in batch mode): drawn as the clean batch, nothing recorded at a layer
    fig = viz.show_hidden(ManifoldMixup(net, p=0.0), x, n=2, generator=torch.Generator().manual_seed(0))
    assert fig.mixkit_hidden["layer"] is None and fig.mixkit_hidden["max_error"] == 0.0


def test_show_saliency_puzzlemix_recomputes_the_eval_saliency(synth, net):
    if not registry.is_available("puzzlemix"):
        pytest.skip("puzzlemix not available")
    from mixkit.mixers.puzzlemix import PuzzleMix
    from mixkit.saliency import input_gradient_saliency

    x, y = synth.x[::2][:4], synth.y[::2][:4]
    mixer = PuzzleMix(net, mode="sample", block_num=4)
    fig = viz.show_saliency(mixer, x, y, synth.class_names, n=4, generator=torch.Generator().manual_seed(0))
    res = fig.mixkit_result
    expect = input_gradient_saliency(net, x, y).saliency
    assert torch.allclose(fig.mixkit_saliency, expect)
    masks = [t for t in _titles(fig) if t.startswith("anchor share, 4x4")]
    assert [f"mean = {float(w):.2f}" in t for t, w in zip(masks, res.weights[:, 0])] == [True] * 4


def test_show_saliency_1d_and_show_hidden_1d(tmp_path):
    from mixkit.bench.models import build_model
    from mixkit.mixers.comixup import CoMixup
    from mixkit.mixers.patchup import PatchUp

    data = cli.synthetic_sequences(n_per_class=1)
    x, y = data.x[:4], data.y[:4]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        m = build_model("cnn1d", 8, in_channels=1, spatial_dims=1).eval()
    fig = viz.show_saliency(CoMixup(m, m_block_num=4, clean_lam=0.0), x, y, data.class_names, n=4,
                            generator=torch.Generator().manual_seed(0), out=tmp_path / "co1d.png")
    assert _png_ok(tmp_path / "co1d.png")
    assert torch.equal(fig.mixkit_saliency, fig.mixkit_result.params["saliency"].float().cpu())
    fig = viz.show_hidden(PatchUp(m, layers="layer1", patchup_type="hard", block_size=5, gamma=0.3), x, y,
                          data.class_names, n=4, generator=torch.Generator().manual_seed(0),
                          out=tmp_path / "pu1d.png")
    assert _png_ok(tmp_path / "pu1d.png") and fig.mixkit_hidden["max_error"] < 1e-5
