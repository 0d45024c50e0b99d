"""The in-memory training set: uint8 images, labels and class names, produced from a folder or a built-in name."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

RESOLUTIONS = (16, 32, 64, 128)


@dataclass
class ImageDataset:
    """A decoded labeled image set.

    Attributes:
        name: short name (folder name or built-in name), used for run names.
        source: absolute folder path, or the built-in name.
        images: ``[N, C, R, R]`` uint8, CPU.
        labels: ``[N]`` int64 class indices into ``class_names``.
        class_names: class names in index order (sorted folder names).
        fingerprint: sha256 of the source content (file paths and bytes, or built-in arrays).
        files: relative file path of each image (None for built-in data).
        skipped: ``(relative path, reason)`` for every file that was not used.
        native_size: the side of the source images when they all share one square size (None: mixed sizes, or a
            built-in set); what ``sample``/``export``/``SyntheticDataset`` write by default.
    """

    name: str
    source: str
    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    fingerprint: str
    files: list[str] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    native_size: int | None = None

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def counts(self) -> list[int]:
        """Images per class, in class index order."""
        return torch.bincount(self.labels, minlength=self.num_classes).tolist()

    def __len__(self) -> int:
        return int(self.labels.numel())

    def subset(self, indices: torch.Tensor | list[int]) -> ImageDataset:
        """A dataset holding only ``indices`` (same classes, same fingerprint suffixed by the selection)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        from gansynth.data.fingerprint import hash_tensor

        return ImageDataset(
            name=self.name,
            source=self.source,
            images=self.images[idx],
            labels=self.labels[idx],
            class_names=list(self.class_names),
            fingerprint=hash_tensor(idx, prefix=self.fingerprint),
            files=None if self.files is None else [self.files[i] for i in idx.tolist()],
            native_size=self.native_size,
        )

    def info(self) -> dict:
        """The ``dataset.json`` record of a run."""
        return {
            "name": self.name,
            "source": self.source,
            "class_names": list(self.class_names),
            "counts": dict(zip(self.class_names, self.counts)),
            "num_images": len(self),
            "resolution": self.resolution,
            "native_size": self.native_size,
            "channels": self.channels,
            "fingerprint": self.fingerprint,
            "skipped": len(self.skipped),
        }


def read_dataset_info(path: Path) -> dict:
    """Load a ``dataset.json`` record."""
    return json.loads(Path(path).read_text())
