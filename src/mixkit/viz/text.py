"""The text printed on the pictures: label weights, source captions, the mixer's name."""
from __future__ import annotations

import re
import textwrap
from typing import List, Optional, Sequence

from torch import Tensor

from ..result import MixResult
from .prepare import _check_y


def _label(src: int, y: Optional[Tensor], class_names: Optional[Sequence[str]]) -> str:
    if y is None:
        return f"x[{src}]"
    c = int(y[src])
    if class_names is not None and 0 <= c < len(class_names):
        return f"'{class_names[c]}'"
    return f"'{c}'"


def _terms(res: MixResult, i: int, cols: Sequence[int], y: Optional[Tensor],
           class_names: Optional[Sequence[str]], digits: int = 2) -> List[str]:
    """``"0.73·'3'"`` for each column ``j`` in ``cols`` of row ``i``: its weight and its source's class."""
    w = res.weights[i].detach().float().cpu()
    idx = res.index[i].detach().cpu()
    return [f"{float(w[j]):.{digits}f}·{_label(int(idx[j]), y, class_names)}" for j in cols]


def weight_text(res: MixResult, i: int, y: Optional[Tensor] = None,
                class_names: Optional[Sequence[str]] = None, sep: str = " + ", digits: int = 2) -> str:
    """The label mix of row ``i`` as printed on the panels, e.g. ``"0.73·'3' + 0.27·'8'"``.

    One term per source (column of ``res.index``), in column order (the anchor first), with its
    realised weight ``res.weights[i, j]`` to ``digits`` decimals and its class (``class_names[y]``
    when given, the class id otherwise, ``x[j]`` without labels).
    """
    y = _check_y(y, res.batch_size)
    return sep.join(_terms(res, i, range(res.index.shape[1]), y, class_names, digits))


def _weights_caption(res: MixResult, i: int, y: Optional[Tensor], class_names: Optional[Sequence[str]],
                     cols: Optional[Sequence[int]] = None) -> str:
    """The label mix of row ``i`` (all columns, or only ``cols``) on one line if short, else one term a line."""
    terms = _terms(res, i, range(res.k) if cols is None else cols, y, class_names)
    one = " + ".join(terms)
    return one if len(one) <= 26 else "\n+ ".join(terms)


def _role(res: MixResult, j: int) -> str:
    return "anchor" if j == 0 else ("partner" if res.k == 2 else f"source {j}")


def _source_title(res: MixResult, i: int, j: int, y, class_names) -> str:
    src = int(res.index[i, j])
    w = float(res.weights[i, j])
    return f"{_role(res, j)} {_label(src, y, class_names)}\nx[{src}], w={w:.2f}"


def _source_legend(role: str, src: int, w: float, y, class_names) -> str:
    """A source curve's legend entry, e.g. ``"anchor '3' (w=0.73)"``."""
    return f"{role} {_label(src, y, class_names)} (w={w:.2f})"


_NEUTRAL = re.compile(r"(, )?\b(p=1\.0|num_classes=None|smoothing=0\.0)\b")


def mixer_text(mixer) -> str:
    """``Name(args)`` of a mixer without the arguments at their neutral value (p=1, no smoothing, ...)."""
    extra = mixer.extra_repr() if hasattr(mixer, "extra_repr") else ""
    extra = _NEUTRAL.sub("", extra).lstrip(", ")
    return f"{type(mixer).__name__}({extra})"


def _title(mixer, extra: str = "") -> str:
    return "\n".join(textwrap.wrap(mixer_text(mixer) + extra, width=110))


def _wrap_lines(text: str, width: int = 110) -> List[str]:
    """``text`` wrapped at ``width``, keeping its own line breaks."""
    return [w for line in text.split("\n") for w in (textwrap.wrap(line, width) or [""])]
