"""The mixers: one module per method, each a class that draws its parameters and applies them.

Every public module of this package is imported here and the mixer classes it lists in its ``__all__``
are exported (and so registered: :mod:`mixkit.registry` reads the method table from the classes), so
adding a method needs no edit here; see ``docs/design.md`` ("Adding a method").
"""
import importlib as _importlib
import pkgutil as _pkgutil

from .base import Mixer
from .params import MixParams

__all__ = ["Mixer", "MixParams"]

for _info in sorted(_pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name.startswith("_"):
        continue
    _module = _importlib.import_module(f"{__name__}.{_info.name}")
    for _name in getattr(_module, "__all__", ()):
        _obj = getattr(_module, _name)
        if (isinstance(_obj, type) and issubclass(_obj, Mixer) and _obj.__module__ == _module.__name__
                and _name not in __all__):
            globals()[_name] = _obj
            __all__.append(_name)
del _info, _module, _name, _obj
