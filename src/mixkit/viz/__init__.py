"""Pictures of mixed batches: sources, mixed sample, mask and label weights side by side.

Looking at the output is how many mixing bugs are found (an H/W swap makes every FMix mask a vertical
block, a clipped CutMix box carries the wrong label, a hook mixes nothing). The functions here draw a
mixer's *actual* :class:`~mixkit.MixResult` and print its label weights on the panels, so the picture
and the numbers can be checked against each other.

* :func:`show_grid` -- images ``(B, C, H, W)`` (or volumes, middle slice): one row per sample with the
  k sources, the mixed image and the anchor's per-pixel share.
* :func:`show_1d` -- sequences ``(B, C, L)``: the sources, the mixed sequence and the share curve.
* :func:`show` -- dispatches to one of the two by the number of spatial dims (to :func:`show_hidden`
  for mixers that run the model).
* :func:`mask_gallery` -- the anchor-share maps of one or several methods, one row per method.
* :func:`show_hidden` -- hidden-layer mixers (Manifold Mixup, PatchUp): the mixed layer before and after.
* :func:`show_saliency` -- saliency-guided mixers (SaliencyMix, PuzzleMix, Co-Mixup) with their saliency maps.
* :func:`show_learned` -- learned mixers (AutoMix, AdAutoMix): the generator's N sources, mix and share maps;
  :func:`learned_snapshots` -- its masks of one fixed batch and draws at several training steps.
* :func:`weight_text` -- the ``"0.73·'3' + 0.27·'8'"`` string printed on the panels.

Modules: ``batch`` (show_grid, show_1d, show), ``masks`` (mask_gallery), ``hidden`` (show_hidden,
capture_hidden), ``saliency`` (show_saliency), ``learned`` (show_learned, learned_snapshots, snapshot); under them ``layout`` (figures, panel grids, display
scales, saving), ``text`` (the text on the panels) and ``prepare`` (argument checks, the result drawn).

matplotlib is imported inside the functions (``import mixkit`` needs only torch). Figures are built
with :class:`matplotlib.figure.Figure` directly, without pyplot, so nothing is left open in pyplot's
global state and no GUI backend is needed; they display inline in Jupyter. Every function returns the
figure and, with ``out=``, also saves it as a PNG (dpi 110; the constrained layout keeps the panels and
titles tight). The :class:`~mixkit.MixResult` drawn is attached as ``fig.mixkit_result``
(``fig.mixkit_results``, a ``{name: result}`` dict, for :func:`mask_gallery`).
"""
from .batch import show, show_1d, show_grid
from .hidden import capture_hidden, show_hidden
from .layout import DPI
from .learned import learned_snapshots, show_learned, snapshot
from .masks import mask_gallery
from .prepare import MixerLike
from .saliency import show_saliency
from .text import mixer_text, weight_text

__all__ = ["show", "show_grid", "show_1d", "show_hidden", "show_saliency", "capture_hidden", "mask_gallery",
           "show_learned", "learned_snapshots", "snapshot", "weight_text", "DPI"]
