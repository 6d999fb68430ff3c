"""The method table on the mixer classes (name, aliases, defaults, ...), which mixkit.registry reads.

``BUILT_IN`` pins the papers' defaults of every built-in method (the values the benchmark and
``mixkit show`` use), so changing one is a deliberate edit here, not a side effect.
"""
from __future__ import annotations

import pytest

from mixkit import registry
from mixkit.mixers import Alternate, Mixer, RandomChoice, Scheduled

# name: (defaults, aliases, spatial dims, needs the model)
BUILT_IN = {
    'mixup': ({'alpha': 1.0}, (), (1, 2, 3), False),
    'dirichlet_mixup': ({'alpha': 1.0, 'k': 3}, ('dmixup', 'dirichlet'), (1, 2, 3), False),
    'cutmix': ({'alpha': 1.0}, (), (1, 2, 3), False),
    'fmix': ({'alpha': 1.0, 'decay_power': 3.0}, (), (1, 2, 3), False),
    'hmix': ({'alpha': 1.0, 'r': 0.5}, (), (1, 2, 3), False),
    'gmix': ({'alpha': 1.0}, (), (1, 2, 3), False),
    'resizemix': ({'scale': (0.1, 0.8)}, (), (1, 2, 3), False),
    'smoothmix': ({'sigma_range': (0.25, 0.5)}, (), (1, 2, 3), False),
    'gridmix': ({'alpha': (0.1, 0.9), 'n_holes': (2, 6)}, (), (1, 2, 3), False),
    'manifold_mixup': ({'alpha': 2.0}, ('manifold', 'manifoldmixup'), (1, 2, 3), True),
    'patchup': ({'patchup_type': 'hard', 'block_size': 7, 'gamma': 0.5, 'p': 0.7}, (), (1, 2, 3), True),
    'saliencymix': ({'alpha': 1.0}, (), (1, 2, 3), False),
    'comixup': ({'alpha': 2.0, 'm_block_num': 4, 'm_part': 20, 'm_beta': 0.32, 'm_gamma': 1.0, 'm_thres': 0.83,
                 'm_eta': 0.05, 'm_omega': 0.001, 'set_resolve': True, 'm_niter': 4, 'clean_lam': 1.0}, ('co_mixup',),
                (1, 2, 3), True),
    'puzzlemix': ({'alpha': 1.0, 'n_labels': 3, 'beta': 1.2, 'gamma': 0.5, 'eta': 0.2, 'neigh_size': 4,
                   'transport': True, 't_eps': 0.8, 't_size': -1, 'clean_lam': 0.0, 'adv_p': 0.0, 'adv_eps': 10.0,
                   'block_num': None}, ('puzzle_mix',), (2,), True),
    'mosaic': ({'center_range': (0.3, 0.7)}, (), (1, 2, 3), False),
}
SALIENCY_GUIDED = {"saliencymix", "puzzlemix", "comixup"}


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_built_in_method_table(name):
    defaults, aliases, dims, needs_model = BUILT_IN[name]
    cls = registry.get_class(name)
    assert cls.name == name and cls.__module__.startswith("mixkit.mixers.")
    assert dict(cls.defaults) == defaults
    assert tuple(cls.aliases) == aliases
    assert tuple(cls.spatial_dims) == dims and registry.spatial_dims(name) == dims
    assert cls.needs_model is needs_model
    assert cls.saliency_guided is (name in SALIENCY_GUIDED) and registry.saliency_guided(name) is cls.saliency_guided
    assert cls.summary and cls.paper
    for a in aliases:
        assert registry.resolve(a) == name


def test_every_registered_mixer_is_pinned_here():
    mixers = {n for n in registry.names() if issubclass(registry.get_class(n), Mixer)}
    assert mixers == set(BUILT_IN)


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_registry_spec_is_read_from_the_class(name):
    spec, cls = registry.spec(name), registry.get_class(name)
    assert spec.name == cls.name and spec.defaults == dict(cls.defaults) and spec.aliases == tuple(cls.aliases)
    assert spec.needs_model is cls.needs_model and spec.summary == cls.summary and spec.paper == cls.paper
    assert spec.target == f"{cls.__module__}:{cls.__qualname__}"


def test_base_and_composites_are_not_registered_methods():
    for cls in (Mixer, RandomChoice, Alternate, Scheduled):
        assert cls.name is None and cls.aliases == () and cls.defaults == {}
        assert cls.needs_model is False and cls.saliency_guided is False
    names = [registry.get_class(n).name for n in registry.names()]
    assert len(set(names)) == len(names)


def test_register_adds_and_unregister_removes_a_runtime_method():
    from mixkit.mixers import MixUp

    class Mine(MixUp):
        name = "mine_mix"

    assert "mine_mix" not in registry.names()
    try:
        assert registry.register(Mine) is Mine
        assert "mine_mix" in registry.available() and isinstance(registry.create("mine-mix"), Mine)
        with pytest.raises(ValueError, match="taken"):
            registry.register(type("Other", (MixUp,), {"name": "mine_mix"}))
    finally:
        registry.unregister("mine_mix")
    assert "mine_mix" not in registry.names()
    with pytest.raises(TypeError, match="name"):
        registry.register(MixUp.__base__)
    with pytest.raises(ValueError, match="snake_case"):
        registry.register(type("Bad", (MixUp,), {"name": "Bad-Name"}))
