"""Draw FMix masks from the paper's spectrum and from the official code's indexing, side by side.

Writes ``docs/img/fmix_spectrum.png``: top rows 2-D masks (32x32, decay 3, lambda 0.5), paper then
official; bottom rows 1-D masks (length 128) at decay powers 1, 3 and 6. Run from the repository root.
"""
from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from mixkit.masks import fourier  # noqa: E402


def main(out: str = "docs/img/fmix_spectrum.png") -> None:
    g = torch.Generator().manual_seed(0)
    fig, axes = plt.subplots(3, 6, figsize=(10, 5.4))
    for r, spectrum in enumerate(("paper", "official")):
        masks = fourier.fmix_masks(6, (32, 32), 0.5, 3.0, generator=g, spectrum=spectrum)
        for c in range(6):
            axes[r, c].imshow(masks[c].numpy(), cmap="gray", vmin=0, vmax=1)
            axes[r, c].set_xticks([]), axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(f"2-D {spectrum}")
    for c, (spectrum, decay) in enumerate([(s, d) for d in (1.0, 3.0, 6.0) for s in ("paper", "official")]):
        grey = fourier.low_freq_images(1, (128,), decay, g, spectrum=spectrum)[0]
        ax = axes[2, c]
        ax.plot(grey.numpy(), lw=1)
        ax.set_title(f"1-D {spectrum}, decay {decay:g}", fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("FMix masks: the paper's spectrum (mixkit default) vs the official code's indexing", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    print("wrote", out)


if __name__ == "__main__":
    main(*sys.argv[1:])
