"""Built-in datasets that need no files: ``digits`` (scikit-learn's 1 797 labeled 8×8 digits)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from gansynth.data.dataset import ImageDataset
from gansynth.data.fingerprint import hash_tensor

BUILTIN_DATASETS = ("digits",)
DIGITS_SCALE = 255.0 / 16.0  # load_digits pixels are integers 0..16


def digits_raw() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn digits as ``[1797, 8, 8]`` uint8 (0..255) and int64 labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.clip(np.round(bunch.images * DIGITS_SCALE), 0, 255).astype(np.uint8)
    return images, bunch.target.astype(np.int64)


def load_digits_dataset(resolution: int) -> ImageDataset:
    """The digits at ``resolution`` px (bicubic upsampling of the 8×8 originals), one channel."""
    raw, labels = digits_raw()
    resized = np.stack(
        [np.asarray(Image.fromarray(im).resize((resolution, resolution), Image.Resampling.BICUBIC)) for im in raw]
    )
    images = torch.from_numpy(resized)[:, None].contiguous()  # [N, 1, R, R]
    return ImageDataset(
        name="digits",
        source="digits",
        images=images,
        labels=torch.from_numpy(labels),
        class_names=[str(d) for d in range(10)],
        fingerprint=hash_tensor(torch.from_numpy(raw), prefix="builtin:digits"),
    )
