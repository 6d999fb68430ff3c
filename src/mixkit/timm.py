"""``mixkit.timm``: drop-ins for timm's ``Mixup`` and ``FastCollateMixup`` (no timm needed).

``from mixkit.timm import Mixup`` in place of ``from timm.data import Mixup``; see
:mod:`mixkit.integrations.timm_compat` and docs/integrations/timm.md.
"""
from .integrations.timm_compat import FastCollateMixup, Mixup

__all__ = ["Mixup", "FastCollateMixup"]
