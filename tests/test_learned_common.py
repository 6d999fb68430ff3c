"""What AutoMix and AdAutoMix share (mixkit.learned.base / schedule / layers): the momentum schedule, the
EMA update, the step counter, state_dict and a bit-identical resume, parameter groups, registry
attributes, the side-effect-free ``mix``, 1-D/2-D/3-D inputs, the feature-layer errors, and a smoke run
of benchmarks/learned_cost.py."""
from __future__ import annotations

import copy
import inspect
import io
import math

import pytest
import torch
from benchscripts import load
from learned_nets import TinyNet, batch

from mixkit.hooks import LayerNotReachedError, UnknownLayerError
from mixkit.learned import AdAutoMix, AutoMix, CosineMomentum, LearnerOutput, MixLearner, cosine_momentum
from mixkit.learned.layers import upsample
from mixkit.result import MixResult

LEARNERS = [AutoMix, AdAutoMix]
M0, M1 = 0.999, 0.999999


def make(cls, dims=2, seed=0, **kw):
    torch.manual_seed(seed)
    return cls(TinyNet(dims), **kw)


def train(learner, opt, data, gen):
    for x, y in data:
        out = learner(x, y, generator=gen)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        learner.update_teacher()


# ------------------------------------------------------------------------------ momentum schedule
def test_cosine_momentum_values_at_chosen_steps():
    T = 100  # warm-up: t < int(0.1 T) = 10
    assert cosine_momentum(0, T) == M0 and cosine_momentum(9, T) == M0
    assert cosine_momentum(10, T) == pytest.approx(M1 - (M1 - M0) * (math.cos(math.pi * 0.1) + 1) / 2, abs=1e-15)
    assert cosine_momentum(10, T) > M0  # the cosine runs over [0, T]: it starts 2.4% of the way up
    assert cosine_momentum(50, T) == pytest.approx((M0 + M1) / 2, abs=1e-15)
    assert cosine_momentum(100, T) == pytest.approx(M1, abs=1e-15)
    assert cosine_momentum(1000, T) == pytest.approx(M1, abs=1e-15)  # stays at the end value
    vals = [cosine_momentum(t, T) for t in range(10, 101)]
    assert all(a <= b for a, b in zip(vals, vals[1:]))  # non-decreasing after the warm-up


def test_cosine_momentum_scope_and_linear_warmup():
    # adjust_scope (0.2, 0.5): constant below 0.2 T, cosine over [0, 0.5 T], then frozen at m_end
    assert cosine_momentum(19, 100, adjust_scope=(0.2, 0.5)) == M0
    assert cosine_momentum(25, 100, adjust_scope=(0.2, 0.5)) == pytest.approx((M0 + M1) / 2, abs=1e-15)
    assert cosine_momentum(80, 100, adjust_scope=(0.2, 0.5)) == pytest.approx(M1, abs=1e-15)
    assert cosine_momentum(0, 100, warming_up="linear") == pytest.approx(M0, abs=1e-15)
    assert cosine_momentum(5, 100, warming_up="linear") == pytest.approx(M1 - (M1 - M0) * 0.5, abs=1e-15)


def test_schedule_needs_total_steps_or_callable():
    learner = make(AutoMix)
    with pytest.raises(RuntimeError, match="total_steps"):
        learner.update_teacher()
    learner.set_total_steps(100)
    assert learner.update_teacher() == M0
    custom = make(AutoMix, momentum_schedule=lambda t: 0.5 + 0.01 * t)
    assert custom.momentum_at(3) == pytest.approx(0.53)
    with pytest.raises(ValueError):
        CosineMomentum(total_steps=0)
    with pytest.raises(ValueError, match="base <= end"):
        CosineMomentum(base=0.9999, end=0.99)


@pytest.mark.parametrize("cls", LEARNERS)
def test_update_teacher_is_the_ema_of_the_parameters_with_the_scheduled_momentum(cls):
    learner = make(cls, total_steps=20)
    x, y = batch()
    with torch.no_grad():
        for p in learner.model.parameters():
            p.add_(torch.randn_like(p))  # the model moves away from the teacher
    before_t = [p.clone() for p in learner.teacher.parameters()]
    buffers = [b.clone() for b in learner.teacher.buffers()]
    learner(x, y, generator=torch.Generator().manual_seed(0))  # step 0 -> counter 1
    buffers_after_fwd = [b.clone() for b in learner.teacher.buffers()]
    assert any(not torch.equal(a, b) for a, b in zip(buffers, buffers_after_fwd))  # train-mode teacher BN moved
    m = learner.update_teacher()
    assert m == learner.momentum_at(0) == M0
    for pt, old, pm in zip(learner.teacher.parameters(), before_t, learner.model.parameters()):
        assert torch.equal(pt, old * m + pm * (1 - m))
        assert not pt.requires_grad
    for b, a in zip(learner.teacher.buffers(), buffers_after_fwd):
        assert torch.equal(b, a)  # buffers are not averaged (official)
    snap = [p.clone() for p in learner.teacher.parameters()]
    assert learner.update_teacher(momentum=1.0) == 1.0  # m >= 1: no update
    assert all(torch.equal(a, b) for a, b in zip(snap, learner.teacher.parameters()))


# ------------------------------------------------------------------------------ counter, state, resume
@pytest.mark.parametrize("cls", LEARNERS)
def test_step_counter_advances_only_on_training_forwards(cls):
    learner = make(cls)
    x, y = batch()
    out = learner(x, y, generator=torch.Generator().manual_seed(0))
    assert isinstance(out, LearnerOutput) and out.step == 0 and learner.step == 1
    learner.mix(x, generator=torch.Generator().manual_seed(0))
    assert learner.step == 1
    learner.eval()
    with torch.no_grad():
        assert learner(x, y).step == 1
    assert learner.step == 1


@pytest.mark.parametrize("cls", LEARNERS)
def test_resume_from_state_dict_is_bit_identical(cls):
    data = [batch(seed=s) for s in range(6)]

    def optimizer(learner):
        return torch.optim.SGD(learner.param_groups(0.05, mix_block_lr=0.1), momentum=0.9, weight_decay=5e-4)

    a = make(cls, total_steps=12)
    opt_a, gen_a = optimizer(a), torch.Generator().manual_seed(7)
    train(a, opt_a, data[:3], gen_a)
    buf = io.BytesIO()
    torch.save({"learner": a.state_dict(), "opt": opt_a.state_dict(), "gen": gen_a.get_state()}, buf)
    train(a, opt_a, data[3:], gen_a)  # the uninterrupted run

    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    b = make(cls, seed=123)  # different initial weights, no total_steps: all of it comes from the state
    b.load_state_dict(ckpt["learner"])
    assert b.step == 3 and b.total_steps == 12
    opt_b = optimizer(b)
    opt_b.load_state_dict(ckpt["opt"])
    gen_b = torch.Generator()
    gen_b.set_state(ckpt["gen"])
    train(b, opt_b, data[3:], gen_b)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        if k.endswith("_extra_state"):
            assert sa[k] == sb[k]
        else:
            assert torch.equal(sa[k], sb[k]), k
    assert b.step == a.step == 6


@pytest.mark.parametrize("cls", LEARNERS)
def test_same_generator_seed_same_step_and_different_seed_differs(cls):
    x, y = batch()
    outs = [make(cls)(x, y, generator=torch.Generator().manual_seed(s)) for s in (3, 3, 4)]
    assert torch.equal(outs[0].loss, outs[1].loss)
    assert torch.equal(outs[0].mixed.inputs, outs[1].mixed.inputs)
    assert torch.equal(outs[0].generated.mask, outs[1].generated.mask)
    assert not torch.equal(outs[0].mixed.inputs, outs[2].mixed.inputs)


# ------------------------------------------------------------------------------ parameters
@pytest.mark.parametrize("cls", LEARNERS)
def test_param_groups_hold_the_model_and_the_mix_block_not_the_teacher(cls):
    learner = make(cls)
    groups = learner.param_groups(0.1, mix_block_lr=0.01, momentum=0.9)
    assert [g["lr"] for g in groups] == [0.1, 0.01] and all(g["momentum"] == 0.9 for g in groups)
    ids = [{id(p) for p in g["params"]} for g in groups]
    assert ids[0] == {id(p) for p in learner.model.parameters()}
    assert ids[1] == {id(p) for p in learner.mix_block.parameters()}
    teacher = {id(p) for p in learner.teacher.parameters()}
    assert not teacher & (ids[0] | ids[1])
    assert {id(p) for p in learner.trainable_parameters()} == ids[0] | ids[1]
    assert all(not p.requires_grad for p in learner.teacher.parameters())
    assert learner.param_groups(0.1)[1]["lr"] == 0.1  # official CIFAR: one lr for both


@pytest.mark.parametrize("cls", LEARNERS)
def test_teacher_never_gets_a_gradient_and_parameters_works_with_an_optimizer(cls):
    learner = make(cls, total_steps=4)
    opt = torch.optim.SGD(learner.parameters(), lr=0.1, weight_decay=1e-3)  # teacher params included, skipped
    teacher = [p.clone() for p in learner.teacher.parameters()]
    x, y = batch()
    out = learner(x, y, generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    assert all(p.grad is None for p in learner.teacher.parameters())
    opt.step()
    assert all(torch.equal(a, b) for a, b in zip(teacher, learner.teacher.parameters()))


# ------------------------------------------------------------------------------ registry attributes
@pytest.mark.parametrize("cls,name,aliases", [(AutoMix, "automix", ("auto_mix",)),
                                              (AdAutoMix, "adautomix", ("adauto_mix", "ad_automix"))])
def test_registry_attributes_and_defaults_match_the_constructor(cls, name, aliases):
    assert cls.name == name and cls.aliases == aliases
    assert cls.learned is True and cls.needs_model is True and cls.saliency_guided is False
    assert cls.spatial_dims == (1, 2, 3) and cls.summary and cls.paper
    sig = inspect.signature(cls.__init__).parameters
    for k, v in cls.defaults.items():
        assert sig[k].default == v, k
    assert MixLearner.name is None and MixLearner.learned is True and MixLearner.defaults == {}


# ------------------------------------------------------------------------------ mix()
@pytest.mark.parametrize("cls", LEARNERS)
def test_mix_trains_nothing_and_changes_nothing(cls):
    learner = make(cls)
    x, y = batch()
    state = copy.deepcopy(learner.state_dict())
    res = learner.mix(x, y, generator=torch.Generator().manual_seed(0))
    assert isinstance(res, MixResult) and not res.inputs.requires_grad and not res.mask.requires_grad
    after = learner.state_dict()
    for k in state:
        if k.endswith("_extra_state"):
            assert state[k] == after[k]
        else:
            assert torch.equal(state[k], after[k]), k  # incl. every BatchNorm statistic
    assert all(p.grad is None for p in learner.parameters())


@pytest.mark.parametrize("cls", LEARNERS)
def test_mix_gives_the_mask_the_classifier_would_get(cls):
    learner = make(cls, lam_margin=0.0)
    x, y = batch()
    res = learner.mix(x, generator=torch.Generator().manual_seed(5))
    out = learner(x, y, generator=torch.Generator().manual_seed(5))
    assert torch.equal(res.index, out.mixed.index)
    torch.testing.assert_close(res.mask, out.mixed.mask, rtol=0, atol=1e-6)
    assert torch.equal(res.params["lam"], out.mixed.params["lam"])


# ------------------------------------------------------------------------------ 1-D / 2-D / 3-D
@pytest.mark.parametrize("dims,size", [(1, 16), (2, 16), (3, 8)])
@pytest.mark.parametrize("cls", LEARNERS)
def test_any_dimensionality_masks_convex_and_inputs_are_the_masked_sum(cls, dims, size):
    learner = make(cls, dims=dims, lam_margin=0.0)
    x, y = batch(dims=dims, size=size)
    out = learner(x, y, generator=torch.Generator().manual_seed(1))
    n = 2 if cls is AutoMix else learner.mix_samples
    for res in (out.mixed, out.generated, learner.mix(x, generator=torch.Generator().manual_seed(2))):
        assert res.mask.shape == (x.shape[0], n, *x.shape[2:]) and res.index.shape == (x.shape[0], n)
        assert torch.equal(res.index[:, 0], torch.arange(x.shape[0]))
        assert (res.mask >= 0).all()
        torch.testing.assert_close(res.mask.sum(1), torch.ones_like(res.mask[:, 0]), rtol=0, atol=1e-6)
        expect = sum(res.mask[:, i:i + 1] * x[res.index[:, i]] for i in range(n))
        torch.testing.assert_close(res.inputs, expect, rtol=0, atol=1e-6)
        torch.testing.assert_close(res.weights, res.mask.flatten(2).mean(-1), rtol=0, atol=1e-6)
        assert res.lam.shape == (x.shape[0],) and float(res.lam[0]) == pytest.approx(float(res.params["lam"][0]))
    assert torch.isfinite(out.loss)


def test_upsample_reaches_the_input_size_and_checks_scale_factor():
    m = torch.randn(2, 3, 4, 4)
    assert upsample(m, (16, 16), "bilinear").shape == (2, 3, 16, 16)
    assert upsample(m, (14, 10), "nearest").shape == (2, 3, 14, 10)  # any size, not only multiples
    torch.testing.assert_close(upsample(m, (16, 16), "nearest", scale_factor=4),
                               torch.nn.functional.interpolate(m, scale_factor=4, mode="nearest"))
    with pytest.raises(ValueError, match="scale_factor"):
        upsample(m, (32, 32), "nearest", scale_factor=4)
    assert upsample(torch.randn(2, 3, 5), (20,), "bilinear").shape == (2, 3, 20)  # 'bilinear' -> linear
    assert upsample(torch.randn(1, 2, 2, 2, 2), (8, 8, 8), "bilinear").shape == (1, 2, 8, 8, 8)
    with pytest.raises(ValueError, match="bicubic"):
        upsample(torch.randn(2, 3, 5), (20,), "bicubic")


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("cls", LEARNERS)
def test_feature_layer_errors_are_clear(cls):
    x, y = batch()
    with pytest.raises(UnknownLayerError, match="layer3"):
        make(cls, feature_layer="layer33")
    with pytest.raises(LayerNotReachedError, match="never ran"):
        make(cls, feature_layer="unused", in_channels=3)(x, y)
    with pytest.raises(ValueError, match=r"\(B, C, \*spatial\)"):
        make(cls, feature_layer="flat", in_channels=16)(x, y)
    with pytest.raises(ValueError, match="in_channels=16"):
        make(cls, in_channels=7)(x, y)
    with pytest.raises(ValueError, match="num_classes"):
        make(cls, num_classes=10)(x, y)
    with pytest.raises(ValueError, match="class ids"):
        make(cls)(x, y + 10)
    with pytest.raises(ValueError, match="scale_factor"):
        make(cls, scale_factor=2)(x, y)
    with pytest.raises(ValueError, match="head weight"):
        make(cls, head_weights={"head_one_k": 1})
    with pytest.raises(ValueError, match="label"):
        make(cls, label="mean")
    with pytest.raises(TypeError):
        cls(lambda v: v)


def test_in_channels_are_inferred_from_the_feature_layer():
    assert make(AutoMix).in_channels == 16 and make(AdAutoMix, feature_layer="layer1").in_channels == 8


# ------------------------------------------------------------------------------ the cost benchmark
def test_learned_cost_benchmark_tiny_run(capsys):
    mod = load("learned_cost", "_learned_cost_under_test")
    assert mod.main(["--models", "resnet8", "--batches", "4", "--size", "8", "--rounds", "1", "--steps", "1",
                     "--width", "0.25", "--threads", "1", "--no-memory"]) == 0
    text = capsys.readouterr().out
    for name in mod.METHODS:
        row = next((ln for ln in text.splitlines() if ln.startswith(f"| {name} |")), None)
        assert row is not None, text
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[1]) > 0 and float(cells[2]) > 0  # step ms and x vanilla are numbers
    probe = mod._probe("adautomix", "resnet8", 4, 8, 0.25)  # what each memory subprocess runs
    assert probe["peak_mib"] >= probe["step_mib"] >= 0 and probe["base_mib"] > 0
