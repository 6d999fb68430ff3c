"""The methods under the shared contract tests: every registered method that mixes inputs without a model.

The list is read from the registry (the mixer classes), so a new method is covered as soon as its
module exists; ``make`` builds any registered method, also one defined by a test after collection.
"""
from __future__ import annotations

from mixkit import registry

# every available method that needs no model
CASES = [n for n in registry.available() if not registry.get_class(n).needs_model]

# methods whose lambda is Beta(alpha, alpha) and exposed as MixResult.lam
BETA_LAMBDA = ("mixup", "cutmix", "fmix", "hmix")


def mixer_class(name: str):
    return registry.get_class(name)


def make(name: str, **kw):
    """The method with its registry defaults, updated by ``kw``."""
    return registry.create(name, **kw)


def dims_of(name: str):
    return registry.spatial_dims(name)
