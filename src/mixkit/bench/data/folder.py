"""Image-folder datasets laid out as ``root/{train,test}/<class>/*`` (Pillow imported lazily)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from ..idx import PathLike
from .split import DataSplit, DatasetNotFoundError, _make_split, _uint8_to_float

__all__ = ["IMAGE_EXTENSIONS", "load_image_folder"]


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")


def load_image_folder(
    root: PathLike,
    size: Union[int, tuple[int, int]] = 32,
    grayscale: bool = False,
    test_dir: Optional[str] = None,
) -> DataSplit:
    """Images laid out as ``root/train/<class>/*`` and ``root/test/<class>/*`` (or ``val``).

    Class ids follow the sorted names of the sub-folders of ``root/train``; every test class must
    also exist in train. Each image is converted to RGB (or L if ``grayscale``), resized to
    ``size`` (int -> square) with bilinear filtering, and scaled to ``[0, 1]``.

    Args:
        root: dataset root.
        size: output ``H = W = size`` or ``(H, W)``. Default 32.
        grayscale: load as 1 channel instead of 3.
        test_dir: name of the evaluation folder; default: ``test`` if present, else ``val``.

    Returns:
        A :class:`DataSplit` named ``folder:<root name>`` with shape ``(N, C, H, W)``.

    Raises:
        ImportError: Pillow is not installed.
        DatasetNotFoundError: the layout above is missing or holds no images.
    """
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError(
            "load_image_folder needs Pillow to read images: pip install pillow"
        ) from e
    root = Path(root).expanduser()
    hw = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
    layout = "root/train/<class>/*.png|jpg and root/test/<class>/... (or root/val/<class>/...)"
    train_root = root / "train"
    if test_dir is None:
        test_dir = "test" if (root / "test").is_dir() else "val"
    test_root = root / test_dir
    if not train_root.is_dir() or not test_root.is_dir():
        raise DatasetNotFoundError(
            f"image folder {root} must be laid out as {layout}; missing "
            f"{train_root if not train_root.is_dir() else test_root}"
        )
    classes = sorted(p.name for p in train_root.iterdir() if p.is_dir())
    if not classes:
        raise DatasetNotFoundError(f"no class sub-folders in {train_root} (layout: {layout})")
    class_to_idx = {c: i for i, c in enumerate(classes)}
    mode = "L" if grayscale else "RGB"

    def read(split_root: Path) -> tuple[torch.Tensor, torch.Tensor]:
        arrays, labels = [], []
        for cdir in sorted(p for p in split_root.iterdir() if p.is_dir()):
            if cdir.name not in class_to_idx:
                raise ValueError(
                    f"class folder {cdir} has no counterpart in {train_root} (classes: {classes})"
                )
            for f in sorted(cdir.iterdir()):
                if f.suffix.lower() not in IMAGE_EXTENSIONS or not f.is_file():
                    continue
                with Image.open(f) as im:
                    im = im.convert(mode)
                    if im.size != (hw[1], hw[0]):
                        im = im.resize((hw[1], hw[0]), Image.BILINEAR)
                    a = np.asarray(im, dtype=np.uint8)
                arrays.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
                labels.append(class_to_idx[cdir.name])
        if not arrays:
            raise DatasetNotFoundError(
                f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {split_root} (layout: {layout})"
            )
        return _uint8_to_float(np.stack(arrays)), torch.tensor(labels, dtype=torch.int64)

    x_tr, y_tr = read(train_root)
    x_te, y_te = read(test_root)
    return _make_split(
        x_tr, y_tr, x_te, y_te,
        name=f"folder:{root.name}", num_classes=len(classes), spatial_dims=2, class_names=classes,
    )
