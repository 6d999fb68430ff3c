"""Tests for mixer composition: RandomChoice, Alternate, Scheduled (incl. DataLoader workers, bug B21)."""
import math
import pickle

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from mixkit.integrations.collate import MixCollate
from mixkit.mixers.base import Mixer
from mixkit.mixers.compose import Alternate, RandomChoice, Scheduled
from mixkit.mixers.cutmix import CutMix
from mixkit.mixers.mixup import MixUp
from mixkit.targets import one_hot

K = 5


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def batch(b=6, size=(8, 8), seed=0):
    g = gen(seed)
    x = torch.randn(b, 3, *size, generator=g)
    y = torch.randint(0, K, (b,), generator=g)
    return x, y


def binom_ok(count, n, p, z=5.0):
    """|count - n p| within z standard deviations (a real test: fails for a wrong rate)."""
    return abs(count - n * p) <= z * math.sqrt(n * p * (1 - p)) + 1


class Only2D(Mixer):
    """A trivial mixer restricted to 2-D data (to test that composites intersect spatial_dims)."""
    spatial_dims = (2,)

    def _sample(self, x, y, active, generator):
        return self._skip(x)  # mixes nothing


# ------------------------------------------------------------------------------------------ RandomChoice
def test_random_choice_frequencies_match_probs():
    probs = [0.2, 0.5, 0.3]
    rc = RandomChoice([MixUp(), CutMix(), MixUp(0.2)], probs=probs)
    x, _ = batch(2, (4, 4))
    g = gen(1)
    n = 20000
    counts = torch.bincount(torch.tensor([rc.choose(g) for _ in range(n)]), minlength=3).tolist()
    for c, q in zip(counts, probs):
        assert binom_ok(c, n, q), (counts, probs)
    # and through mix(): the recorded choice follows the same probabilities
    n = 600
    counts = [0, 0, 0]
    for _ in range(n):
        counts[rc.mix(x, generator=g).params["choice"]] += 1
    for c, q in zip(counts, probs):
        assert binom_ok(c, n, q), (counts, probs)


def test_random_choice_zero_prob_never_chosen_and_probs_normalised():
    rc = RandomChoice([MixUp(), CutMix(), MixUp()], probs=[0, 3, 1])
    assert rc.probs == pytest.approx((0.0, 0.75, 0.25))
    g = gen(2)
    picks = {rc.choose(g) for _ in range(500)}
    assert picks == {1, 2}
    rc = RandomChoice([MixUp(), CutMix()], probs=[1, 0])
    assert {rc.choose(g) for _ in range(200)} == {0}


@pytest.mark.parametrize("p", [0.3, 0.7])
def test_random_choice_p_applied_once_batch_mode(p):
    # bug B11 (kornia #4649): applying p twice would give p**2 (0.09 / 0.49)
    rc = RandomChoice([MixUp(), CutMix()], p=p)
    x, _ = batch(4, (4, 4))
    g = gen(3)
    n = 800
    mixed = sum(bool(rc.mix(x, generator=g).mixed.any()) for _ in range(n))
    assert binom_ok(mixed, n, p), (mixed / n, p)


def test_random_choice_p_applied_once_sample_mode():
    p = 0.4
    rc = RandomChoice([MixUp(mode="sample"), CutMix(mode="sample")], p=p)
    assert rc.mode == "sample"
    x, _ = batch(64, (4, 4))
    g = gen(4)
    rows = torch.cat([rc.mix(x, generator=g).mixed for _ in range(100)])
    assert binom_ok(int(rows.sum()), rows.numel(), p), float(rows.float().mean())


def test_random_choice_child_p_is_an_explicit_second_gate():
    # Two explicit gates multiply (documented); the child's p is not dropped and not doubled.
    rc = RandomChoice([MixUp(p=0.5)], p=0.5)
    x, _ = batch(4, (4, 4))
    g = gen(5)
    n = 800
    mixed = sum(bool(rc.mix(x, generator=g).mixed.any()) for _ in range(n))
    assert binom_ok(mixed, n, 0.25), mixed / n


def test_random_choice_forward_soft_targets():
    rc = RandomChoice([MixUp(), CutMix()], num_classes=K)
    x, y = batch(7)
    seen = set()
    for s in range(20):
        xm, ys = rc(x, y, generator=gen(s))
        assert ys.shape == (7, K) and ys.dtype == torch.float32
        assert torch.allclose(ys.sum(1), torch.ones(7))
        res = rc.mix(x, y, generator=gen(s))  # same seed -> same draws
        assert torch.equal(res.inputs, xm)
        # label mass follows the recorded sources and realised weights
        expect = res.weights[:, :1] * one_hot(y, K) + res.weights[:, 1:] * one_hot(y[res.index[:, 1]], K)
        assert torch.allclose(ys, expect, atol=1e-6)
        seen.add(res.params["method"])
    assert seen == {"MixUp", "CutMix"}


def test_random_choice_result_matches_chosen_child():
    rc = RandomChoice([MixUp(), CutMix()], probs=[0.5, 0.5])
    x, _ = batch(5)
    for s in range(10):
        g = gen(s)
        res = rc.mix(x, generator=g)
        g2 = gen(s)
        i = rc.choose(g2)
        assert i == res.params["choice"]
        ref = rc.mixers[i].mix(x, generator=g2)
        assert torch.equal(ref.inputs, res.inputs)
        assert torch.equal(ref.weights, res.weights)
        if res.params["method"] == "CutMix":
            assert torch.allclose(res.mask[:, 0].mean(dim=(1, 2)), res.weights[:, 0], atol=1e-6)


def test_random_choice_p0_is_identity_and_b1():
    rc = RandomChoice([MixUp(), CutMix()], p=0.0)
    x, _ = batch(4)
    res = rc.mix(x, generator=gen())
    assert res.inputs is x and res.params["method"] is None and not res.mixed.any()
    rc1 = RandomChoice([MixUp(), CutMix()])
    x1 = torch.randn(1, 3, 4, 4)
    assert torch.equal(rc1.mix(x1).inputs, x1)


def test_random_choice_deterministic_and_input_untouched():
    rc = RandomChoice([MixUp(mode="sample"), CutMix(mode="sample")], p=0.8)
    x, _ = batch(6)
    x0 = x.clone()
    a = rc.mix(x, generator=gen(7)).inputs
    b = rc.mix(x, generator=gen(7)).inputs
    assert torch.equal(a, b) and torch.equal(x, x0)


def test_composite_argument_checks():
    with pytest.raises(ValueError, match="same mode"):
        RandomChoice([MixUp(mode="batch"), CutMix(mode="sample")])
    with pytest.raises(TypeError, match="Mixer"):
        RandomChoice([MixUp(), lambda x: x])
    with pytest.raises(TypeError, match="sequence"):
        RandomChoice(MixUp())
    with pytest.raises(ValueError, match="at least one"):
        RandomChoice([])
    with pytest.raises(ValueError, match="probs"):
        RandomChoice([MixUp(), CutMix()], probs=[1.0])
    with pytest.raises(ValueError, match="probs"):
        RandomChoice([MixUp(), CutMix()], probs=[-1.0, 2.0])
    with pytest.raises(ValueError, match="probs"):
        RandomChoice([MixUp(), CutMix()], probs=[0, 0])
    with pytest.raises(ValueError, match="p must be"):
        RandomChoice([MixUp()], p=1.5)
    with pytest.raises(ValueError, match="num_classes"):
        RandomChoice([MixUp(num_classes=3), CutMix(num_classes=4)])
    with pytest.raises(ValueError, match="smoothing"):
        RandomChoice([MixUp(smoothing=0.1), CutMix()])
    with pytest.raises(ValueError, match="counts"):
        Alternate([MixUp(), CutMix()], counts=[1])
    with pytest.raises(ValueError, match="counts"):
        Alternate([MixUp(), CutMix()], counts=[0, 0])
    with pytest.raises(TypeError, match="counts"):
        Alternate([MixUp(), CutMix()], counts=[1.5, 1])
    with pytest.raises(ValueError, match="unit"):
        Scheduled(MixUp(), stop=3, unit="iteration")
    with pytest.raises(ValueError, match="stop must be >= start"):
        Scheduled(MixUp(), start=3, stop=1)
    with pytest.raises(TypeError, match="Mixer"):
        Scheduled("mixup", stop=3)


def test_composite_inherits_classes_smoothing_and_dims():
    rc = RandomChoice([MixUp(num_classes=K, smoothing=0.1), CutMix(num_classes=K, smoothing=0.1)])
    assert rc.num_classes == K and rc.smoothing == pytest.approx(0.1)
    x, y = batch(6)
    _, ys = rc(x, y, generator=gen())
    assert float(ys.min()) >= 0.1 / K - 1e-6  # smoothing reached the soft targets
    rc2 = RandomChoice([MixUp(), Only2D()])
    assert rc2.spatial_dims == (2,)
    with pytest.raises(ValueError, match="spatial dims"):
        rc2.mix(torch.randn(4, 2, 16))  # 1-D data: fails on every call, not only when Only2D is drawn
    rc3 = RandomChoice([MixUp(), CutMix()])
    assert rc3.mix(torch.randn(4, 2, 16), generator=gen()).inputs.shape == (4, 2, 16)


# ------------------------------------------------------------------------------------------- Alternate
def test_alternate_order_follows_counts():
    alt = Alternate([MixUp(), CutMix()], counts=[2, 1])
    x, _ = batch(4)
    methods = [alt.mix(x, generator=gen(i)).params["method"] for i in range(9)]
    assert methods == ["MixUp", "MixUp", "CutMix"] * 3
    assert alt.step_count == 9
    alt3 = Alternate([MixUp(), CutMix(), MixUp(0.3)], counts=[1, 0, 2])
    assert [alt3.index_at(s) for s in range(6)] == [0, 2, 2, 0, 2, 2]


def test_alternate_state_round_trip_and_explicit_step():
    alt = Alternate([MixUp(), CutMix()], counts=[1, 2])
    x, y = batch(4)
    for _ in range(4):
        alt.mix(x)
    sd = alt.state_dict()
    fresh = Alternate([MixUp(), CutMix()], counts=[1, 2], num_classes=K)
    assert fresh.step_count == 0
    fresh.load_state_dict(sd)
    assert fresh.step_count == 4
    assert fresh.mix(x).params["choice"] == alt.mix(x).params["choice"] == 1  # 4 % 3 == 1 -> CutMix
    # a pure function of step=: neither reads nor advances the counter
    before = fresh.step_count
    assert [fresh.mix(x, step=s).params["choice"] for s in (0, 1, 2, 3)] == [0, 1, 1, 0]
    xm, ys = fresh(x, y, step=0, generator=gen())
    assert fresh.step_count == before and ys.shape == (4, K)
    # pickling keeps the counter too
    assert pickle.loads(pickle.dumps(fresh)).step_count == before
    fresh.reset()
    assert fresh.step_count == 0


def test_alternate_forward_and_batch_of_one_counts():
    alt = Alternate([MixUp(num_classes=K), CutMix(num_classes=K)])
    x, y = batch(6)
    _, ys = alt(x, y, generator=gen())
    assert torch.allclose(ys.sum(1), torch.ones(6)) and alt.step_count == 1
    res = alt.mix(torch.randn(1, 3, 4, 4))
    assert alt.step_count == 2 and res.params["choice"] == 1 and not res.mixed.any()
    # the mixed output equals the chosen child's under the same generator
    res = alt.mix(x, generator=gen(9), step=1)
    assert torch.equal(res.inputs, CutMix().mix(x, generator=gen(9)).inputs)


# ------------------------------------------------------------------------------------------- Scheduled
def _is_identity(res, x):
    return torch.equal(res.inputs, x) and not bool(res.mixed.any())


def test_scheduled_off_before_start_and_from_stop():
    s = Scheduled(MixUp(no_self_pairs=True), start=2, stop=4)
    x, y = batch(6)
    on = []
    for e in range(6):
        s.set_epoch(e)
        res = s.mix(x, generator=gen(e))
        on.append(not _is_identity(res, x))
        assert res.params["scheduled_on"] == on[-1] == s.enabled
    assert on == [False, False, True, True, False, False]
    # timm's mixup_off_epoch: open start
    off = Scheduled(CutMix(), stop=1)
    assert off.enabled and not off.is_on(1) and off.is_on(0)


def test_scheduled_soft_targets_when_off_are_plain_one_hot():
    s = Scheduled(MixUp(num_classes=K), start=1)
    x, y = batch(5)
    xm, ys = s(x, y, generator=gen())
    assert torch.equal(xm, x) and torch.equal(ys, one_hot(y, K))
    xm, ys = s(x, y, generator=gen(), epoch=1)  # explicit epoch: pure function of it
    assert not torch.equal(xm, x) and torch.allclose(ys.sum(1), torch.ones(5))
    assert s.epoch == 0


def test_scheduled_step_unit_and_state():
    s = Scheduled(MixUp(no_self_pairs=True), start=3, stop=5, unit="step")
    x, _ = batch(4)
    on = []
    for _ in range(7):
        on.append(not _is_identity(s.mix(x, generator=gen()), x))
        s.step()
    assert on == [False, False, False, True, True, False, False]
    assert s.global_step == 7
    s.set_step(4)
    s.set_epoch(2)
    sd = s.state_dict()
    t = Scheduled(MixUp(), start=3, stop=5, unit="step")
    t.load_state_dict(sd)
    assert (t.global_step, t.epoch, t.enabled) == (4, 2, True)
    assert t._clock.is_shared()  # load_state_dict writes into the shared clock
    u = pickle.loads(pickle.dumps(s))
    assert (u.global_step, u.epoch) == (4, 2)
    with pytest.raises(ValueError, match="epoch"):
        s.set_epoch(-1)


def test_scheduled_wraps_composites_and_nests():
    rc = RandomChoice([MixUp(), CutMix()], p=1.0)
    s = Scheduled(rc, stop=1)
    x, _ = batch(4)
    assert s.mix(x, generator=gen()).params["method"] in ("MixUp", "CutMix")
    s.set_epoch(1)
    assert s.mix(x, generator=gen()).params["method"] is None
    outer = RandomChoice([Scheduled(MixUp(), start=5)], p=1.0)
    assert _is_identity(outer.mix(x, generator=gen()), x)


def test_pickle_round_trip_of_composites():
    mixers = [RandomChoice([MixUp(), CutMix()], probs=[0.3, 0.7], p=0.9),
              Alternate([MixUp(), CutMix()], counts=[2, 3]),
              Scheduled(CutMix(mode="sample"), start=0, stop=10)]
    x, _ = batch(6)
    for m in mixers:
        m2 = pickle.loads(pickle.dumps(m))
        assert type(m2) is type(m)
        assert torch.equal(m.mix(x, generator=gen(3)).inputs, m2.mix(x, generator=gen(3)).inputs)


# ------------------------------------------------------------------------------ DataLoader workers (B21)
N_DS = 16


def _ds():
    xs = torch.arange(N_DS, dtype=torch.float32).view(N_DS, 1, 1, 1).expand(N_DS, 1, 4, 4).contiguous()
    return xs, TensorDataset(xs, torch.arange(N_DS) % K)


def _epoch_mixed(loader, xs, bs):
    flags = []
    for i, (xm, ys) in enumerate(loader):
        assert torch.allclose(ys.sum(1), torch.ones(len(ys)))
        flags.append(not torch.equal(xm, xs[i * bs:(i + 1) * bs]))
    return flags


@pytest.mark.parametrize("ctx,workers", [(None, 2), pytest.param("spawn", 1, marks=pytest.mark.slow)])
def test_scheduled_reaches_persistent_workers(ctx, workers):
    # bug B21: with persistent workers, toggling mixing in the main process must reach the workers.
    # The default (fork) context inherits the shared clock; spawn pickles it (the Python >= 3.14 default
    # forkserver does too).
    xs, ds = _ds()
    sched = Scheduled(MixUp(no_self_pairs=True, num_classes=K), start=1, stop=3)
    loader = DataLoader(ds, batch_size=4, shuffle=False, num_workers=workers, persistent_workers=True,
                        collate_fn=MixCollate(sched), multiprocessing_context=ctx)
    per_epoch = []
    for e in range(4):
        sched.set_epoch(e)
        flags = _epoch_mixed(loader, xs, 4)
        assert len(flags) == 4
        per_epoch.append(flags)
    assert per_epoch == [[False] * 4, [True] * 4, [True] * 4, [False] * 4]


def test_scheduled_clock_survives_multiprocessing_pickling():
    # What the DataLoader does under spawn/forkserver: torch's multiprocessing pickler sends the shared
    # clock as a handle to the same memory, so later set_epoch calls are seen by the copy.
    from multiprocessing.reduction import ForkingPickler

    s = Scheduled(MixUp(), stop=2)
    remote = pickle.loads(ForkingPickler.dumps(s))
    s.set_epoch(3)
    assert remote.epoch == 3 and not remote.enabled
    s.set_step(11)
    assert remote.global_step == 11
    snapshot = pickle.loads(pickle.dumps(s))  # plain pickle: an independent copy
    s.set_epoch(0)
    assert snapshot.epoch == 3 and remote.epoch == 0
