"""The benchmark's evaluation: the metrics and corruptions every method is scored with."""
from .corruptions import *  # noqa: F401,F403
from .corruptions import __all__ as _corruptions_all
from .metrics import *  # noqa: F401,F403
from .metrics import __all__ as _metrics_all

__all__ = [*_metrics_all, *_corruptions_all]
