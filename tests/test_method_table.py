"""The method table on the mixer classes (name, aliases, defaults, ...), which mixkit.registry reads."""
from __future__ import annotations

import pytest

from mixkit import registry
from mixkit.mixers import Alternate, Mixer, RandomChoice, Scheduled

SALIENCY_GUIDED = {"saliencymix", "puzzlemix", "comixup"}


@pytest.mark.parametrize("name", registry.names())
def test_class_attributes_match_the_registry(name):
    spec = registry.spec(name)
    cls = registry.get_class(name)
    assert cls.name == spec.name
    assert tuple(cls.aliases) == tuple(spec.aliases)
    assert dict(cls.defaults) == dict(spec.defaults)
    assert cls.needs_model is spec.needs_model
    assert cls.summary == spec.summary and cls.paper == spec.paper
    assert tuple(cls.spatial_dims) == tuple(registry.spatial_dims(name))
    assert cls.saliency_guided is (name in SALIENCY_GUIDED)


def test_base_and_composites_are_not_registered_methods():
    for cls in (Mixer, RandomChoice, Alternate, Scheduled):
        assert cls.name is None and cls.aliases == () and cls.defaults == {}
        assert cls.needs_model is False and cls.saliency_guided is False
    names = [registry.get_class(n).name for n in registry.names()]
    assert len(set(names)) == len(names)
