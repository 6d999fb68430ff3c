"""Tests of the pictures of learned mixing (mixkit.viz.learned) and `mixkit show automix / adautomix`."""
from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest
import torch

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from mixkit import cli, registry, viz  # noqa: E402
from mixkit.cli.model import show_learner  # noqa: E402
from mixkit.cli.show import snapshot_steps, snapshots_path  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LEARNED = ("automix", "adautomix")


def _titles(fig):
    """All axes titles of a figure, its subfigures included (each axes once)."""
    out, seen, stack = [], set(), [fig]
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
        return f.read(8) == PNG_MAGIC and os.path.getsize(path) > 5000


@pytest.fixture(scope="module")
def images():
    return cli.synthetic_images(n_per_class=2, size=16)


@pytest.fixture(scope="module")
def sequences():
    return cli.synthetic_sequences(n_per_class=2, length=32)


def _trained(name, data, steps=6, at=(), x=None, seed=0, snap_seed=3):
    """A learner trained ``steps`` tiny steps, with snapshots of ``x`` at the steps ``at`` (the draws of
    ``snap_seed``: at B = 4 they pair every sample with others; seed 0 draws the identity for AdAutoMix,
    whose mask is then exactly 1/N)."""
    snaps = {}
    learner = show_learner(name, data, seed, steps=steps, batch_size=8, snapshot_steps=at, verbose=False,
                           on_snapshot=lambda t, lrn: snaps.__setitem__(t, viz.snapshot(lrn, x, snap_seed)))
    return learner, snaps


def test_registry_lists_the_learners():
    for name in LEARNED:
        assert registry.is_learned(name)
    assert not registry.is_learned("cutmix")


@pytest.mark.parametrize("name", LEARNED)
@pytest.mark.parametrize("kind", ["images", "sequences"])
def test_show_learned_renders_with_the_realised_weights(name, kind, request, tmp_path):
    data = request.getfixturevalue(kind)
    x, y = cli.pick_samples(data, 4, 0)
    learner, _ = _trained(name, data, steps=2, x=x)
    res = viz.snapshot(learner, x, 3)
    out = tmp_path / f"{name}.png"
    fig = viz.show_learned(learner, x, y, data.class_names, 4, out=out, result=res)
    assert _png_ok(out)
    assert fig.mixkit_result is res
    n_src = 3 if name == "adautomix" else 2
    assert res.k == n_src and tuple(res.mask.shape) == (x.shape[0], n_src, *x.shape[2:])
    titles = "\n".join(_titles(fig))
    for i in range(4):
        # the label mix printed on the panels is the drawn result's realised weights, res.weights
        text = viz.weight_text(res, i, y, data.class_names)
        assert all(t in titles for t in text.split(" + "))
        for j in range(n_src):
            assert f"{float(res.weights[i, j]):.2f}·" in titles
    if kind == "images":
        # one share map per source and row, each titled with its mean (= its weight)
        shares = [t for t in _titles(fig) if t.startswith("share of ")]
        assert len(shares) == 4 * n_src
        assert "share of source 2" in titles if n_src == 3 else "share of partner" in titles


def test_show_learned_weights_equal_the_mask_means(images):
    x, y = cli.pick_samples(images, 4, 0)
    learner, _ = _trained("adautomix", images, steps=1, x=x)
    fig = viz.show_learned(learner, x, y, images.class_names, 2, generator=torch.Generator().manual_seed(3))
    res = fig.mixkit_result
    torch.testing.assert_close(res.weights, res.mask.flatten(2).mean(-1))
    titles = _titles(fig)
    for j in range(3):
        assert any(t.startswith("share of") and f"mean {float(res.mask[0, j].mean()):.2f}" in t for t in titles)


def test_show_learned_refuses_a_plain_mixer(images):
    with pytest.raises(TypeError, match="learned mixer"):
        viz.show_learned(registry.create("cutmix"), images.x[:4])


@pytest.mark.parametrize("name", LEARNED)
@pytest.mark.parametrize("kind", ["images", "sequences"])
def test_snapshots_at_the_requested_steps_differ_after_training(name, kind, request, tmp_path):
    data = request.getfixturevalue(kind)
    x, y = cli.pick_samples(data, 4, 0)
    at = snapshot_steps(8)
    assert at == [0, 2, 4, 8]
    learner, snaps = _trained(name, data, steps=8, at=at, x=x)
    assert sorted(snaps) == at
    assert learner.step == 8 and not learner.training
    first, last = snaps[0], snaps[8]
    for s in at:  # the same sources at every step: only the generator changed
        assert torch.equal(snaps[s].index, first.index)
        torch.testing.assert_close(snaps[s].params["lam"], first.params["lam"])
    mixed = [i for i in range(x.shape[0]) if len(set(first.index[i].tolist())) > 1]
    assert mixed
    assert float((last.mask[mixed] - first.mask[mixed]).abs().max()) > 1e-6
    out = tmp_path / "snaps.png"
    fig = viz.learned_snapshots(snaps, x, y, data.class_names, 3, out=out)
    assert _png_ok(out)
    assert [s for s, _ in fig.mixkit_snapshots] == at
    titles = _titles(fig)
    for s in at:
        assert sum(t.startswith(f"step {s}\n") for t in titles) == 3
    w = "/".join(f"{float(v):.2f}" for v in last.weights[0])
    assert f"step 8\nw = {w}" in titles


def test_snapshot_changes_nothing(images):
    x, _ = cli.pick_samples(images, 4, 0)
    learner, _ = _trained("automix", images, steps=1, x=x)
    learner.train()
    state = {k: v.clone() for k, v in learner.state_dict().items() if isinstance(v, torch.Tensor)}
    step = learner.step
    a, b = viz.snapshot(learner, x, 5), viz.snapshot(learner, x, 5)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.index, b.index)
    assert learner.training and learner.step == step
    for k, v in learner.state_dict().items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, state[k]), k


def test_snapshots_of_other_draws_are_refused(images):
    x, _ = cli.pick_samples(images, 6, 0)
    learner, _ = _trained("automix", images, steps=1, x=x)
    a = viz.snapshot(learner, x, 0)
    b = next(r for r in (viz.snapshot(learner, x, s) for s in range(1, 20)) if not torch.equal(r.index, a.index))
    with pytest.raises(ValueError, match="same draws"):
        viz.learned_snapshots({0: a, 1: b}, x)


def test_show_learner_is_seeded_and_leaves_the_global_state(images):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    threads = torch.get_num_threads()
    a, _ = _trained("automix", images, steps=3)
    assert torch.equal(torch.get_rng_state(), before) and torch.get_num_threads() == threads
    assert torch.is_grad_enabled()
    b, _ = _trained("automix", images, steps=3)
    c, _ = _trained("automix", images, steps=3, seed=1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa if isinstance(sa[k], torch.Tensor))
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if isinstance(sa[k], torch.Tensor) and sa[k].is_floating_point())
    # feature layer: the second-to-last stage unless given
    assert a.feature_layer == "layer2"
    d = show_learner("automix", images, 0, steps=0, params={"feature_layer": "layer1"}, verbose=False)
    assert d.feature_layer == "layer1" and d.step == 0


def test_cli_show_automix_writes_both_pngs_deterministically(tmp_path, capsys):
    paths = {k: tmp_path / f"{k}.png" for k in ("a", "b", "c")}
    for k, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        assert cli.main(["show", "automix", "--dataset", "synthetic", "--n", "2", "--train-steps", "4",
                         "--seed", seed, "--out", str(paths[k])]) == 0
    printed = capsys.readouterr().out.split()
    assert str(paths["a"]) in printed and snapshots_path(str(paths["a"])) in printed
    for p in paths.values():
        assert _png_ok(p) and _png_ok(snapshots_path(str(p)))
    assert paths["a"].read_bytes() == paths["b"].read_bytes()
    assert (tmp_path / "a_snapshots.png").read_bytes() == (tmp_path / "b_snapshots.png").read_bytes()
    assert paths["a"].read_bytes() != paths["c"].read_bytes()


def test_cli_show_adautomix_on_sequences(tmp_path):
    out = tmp_path / "ad.png"
    assert cli.main(["show", "adautomix", "--dataset", "synthetic1d", "--n", "2", "--train-steps", "2",
                     "--param", "mix_samples=2", "--out", str(out)]) == 0
    assert _png_ok(out) and _png_ok(tmp_path / "ad_snapshots.png")


def test_cli_show_learned_untrained_and_bad_params(tmp_path, capsys):
    out = tmp_path / "u.png"
    assert cli.main(["show", "automix", "--dataset", "synthetic", "--n", "2", "--untrained", "--out", str(out)]) == 0
    assert _png_ok(out) and _png_ok(tmp_path / "u_snapshots.png")
    assert cli.main(["show", "automix", "--dataset", "synthetic", "--n", "2", "--train-steps", "1",
                     "--param", "bogus=1", "--out", str(tmp_path / "v.png")]) == 2
    assert "bogus" in capsys.readouterr().err
    assert not (tmp_path / "v.png").exists()


def test_cli_draw_seed_mixes_every_shown_sample_with_others(sequences):
    from mixkit.cli.show import _draw_seed

    x, _ = cli.pick_samples(sequences, 4, 0)
    learner = show_learner("adautomix", sequences, 0, steps=0, verbose=False)
    assert viz.snapshot(learner, x, 0).index.tolist() == [[i, i, i] for i in range(4)]  # why it is needed
    s = _draw_seed(learner, x, 0)
    assert s > 0 and all(len(set(row)) == 3 for row in viz.snapshot(learner, x, s).index.tolist())
    assert _draw_seed(learner, x, s) == s
