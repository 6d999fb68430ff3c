"""Pictures of mixed batches (the package's modules are being split out of ``batch``)."""
from .batch import (DPI, MixerLike, capture_hidden, mask_gallery, mixer_text, show, show_1d, show_grid,
                    show_hidden, show_saliency, weight_text)

__all__ = ["show", "show_grid", "show_1d", "show_hidden", "show_saliency", "capture_hidden", "mask_gallery",
           "weight_text", "DPI"]
