"""``SyntheticDataset``: a torch Dataset that generates item i of a run on the fly — the export, without files."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset

from gansynth.checkpoint import resolve_run
from gansynth.errors import ConfigError, is_int
from gansynth.exporter.plan import CHUNK, read_class_names, sample_seed, select_classes
from gansynth.exporter.spec import ExportSpec
from gansynth.rundir import RunDir
from gansynth.runtime import as_device

CACHE_BYTES = 256 << 20  # generated units kept per process: 256 MiB is ~87 000 RGB images at 32 px


class SyntheticDataset(Dataset):
    """``per_class`` generated images of each class, item i computed from i alone (no files, no state).

    Item i is the ``i % per_class``-th image of the ``i // per_class``-th selected class, with the same seed as the
    file ``<class>-<seed>.png`` of ``gansynth export --per-class per_class --seed seed``:
    ``seed + label·SEED_STRIDE + i % per_class``. Labels are the training class indices, so the dataset can be
    concatenated with the real ``ImageFolder`` (``torch.utils.data.ConcatDataset``).

    ``exact=True`` (default): images are generated in the export's units — ``CHUNK`` (64) consecutive seeds of a
    class, as one fixed-shape batch — so item pixels equal the exported file's exactly (on the CPU, on the same
    machine). Generated units are kept per process up to ``cache_bytes`` (least recently used dropped first), so a
    shuffled epoch over a dataset that fits (256 MiB: ~87 000 RGB images at 32 px) generates each unit once per
    process; beyond that, random access may pay one 64-image batch per item.

    ``exact=False``: each item is generated alone (one image per forward, no padding, nothing cached) — for
    datasets far larger than the cache. A forward's float result can depend on its batch shape (~1e-6), so a rare
    pixel may differ by ±1 from the exported file.

    Either way an index gives the same image in every process and DataLoader worker.

    The generator is loaded lazily, once per process (DataLoader workers load their own); with ``device="cuda"``
    use ``multiprocessing_context="spawn"`` in the DataLoader, since CUDA cannot be used in forked workers.

    Args:
        run: run directory (None: the most recent under ``./runs``).
        per_class: images per class.
        transform: applied to the PIL image (None: the PIL image is returned, like torchvision datasets).
        target_transform: applied to the label.
        seed: first seed, as ``gansynth export --seed``.
        truncation: truncation ψ (None: none).
        classes: class names to generate (a list or ``"a,b"``; None: all), in training order whatever the order given.
        device: ``cpu``, ``cuda`` or ``auto`` for the generator.
        exact: generate in the export's 64-image units for pixels identical to the export (True), or one image per
            item with no cache (False, for datasets far larger than the cache); see above.
        cache_bytes: memory for generated units per process (``exact=True``); 0 keeps only the last unit.
        checkpoint: ``latest`` or ``best`` (as ``gansynth export --checkpoint``).
        size: side of the images in px (None: the real images' native size, as ``gansynth export``).

    Attributes:
        classes: every training class name, index = label (as ``ImageFolder.classes`` of the training data).
        class_to_idx: class name → label.
        generated_classes: the selected class names, in item order.
    """

    def __init__(
        self,
        run: str | Path | None = None,
        per_class: int = 1000,
        transform: Callable[[Image.Image], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        seed: int = 0,
        truncation: float | None = None,
        classes: list[str] | str | None = None,
        device: str = "cpu",
        exact: bool = True,
        cache_bytes: int = CACHE_BYTES,
        checkpoint: str = "latest",
        size: int | None = None,
    ) -> None:
        # the images of an export of the same options: checked as one
        ExportSpec(per_class=per_class, seed=seed, truncation=truncation, checkpoint=checkpoint, size=size)
        self.size = size
        as_device(device)
        if not isinstance(exact, bool):
            raise ConfigError(f"exact = {exact!r} is not a bool", hint="exact=True (export pixels) or exact=False")
        self.run_dir = resolve_run(run)
        names = read_class_names(RunDir(self.run_dir).dataset())
        self.labels = select_classes(names, classes)
        self.classes = names
        self.class_to_idx = {name: k for k, name in enumerate(names)}
        self.generated_classes = [names[k] for k in self.labels]
        self.per_class, self.seed, self.truncation = per_class, seed, truncation
        self.transform, self.target_transform = transform, target_transform
        if not is_int(cache_bytes) or cache_bytes < 0:
            raise ConfigError(f"cache_bytes = {cache_bytes!r} is out of range", hint="an integer >= 0 (bytes)")
        self.device, self.exact, self.cache_bytes, self.checkpoint = device, exact, cache_bytes, checkpoint
        self._sampler = None
        self._pid: int | None = None
        self._cache: OrderedDict[tuple[int, int], torch.Tensor] = OrderedDict()

    def __len__(self) -> int:
        return len(self.labels) * self.per_class

    def sample_id(self, index: int) -> tuple[int, int]:
        """``(label, seed)`` of item ``index`` (negative indices count from the end)."""
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} items")
        label = self.labels[index // self.per_class]
        return label, sample_seed(self.seed, label, index % self.per_class)

    def image(self, index: int) -> torch.Tensor:
        """Item ``index`` as uint8 ``[C, H, W]`` (no transform)."""
        label, seed = self.sample_id(index)
        if self._pid != os.getpid():
            self._cache.clear()  # a forked DataLoader worker: its own generator and cache
        if not self.exact:
            return self._generator().generate_seeds([label], [seed], self.truncation, 1, self.size)[0]
        slot = seed - sample_seed(self.seed, label, 0)
        key = (label, slot // CHUNK)  # the export unit: slots [g·CHUNK, min((g+1)·CHUNK, per_class))
        if key not in self._cache:
            start = key[1] * CHUNK
            seeds = [sample_seed(self.seed, label, n) for n in range(start, min(start + CHUNK, self.per_class))]
            images = self._generator().generate_seeds([label] * len(seeds), seeds, self.truncation, CHUNK, self.size)
            self._cache[key] = images
            while len(self._cache) > 1 and sum(x.numel() for x in self._cache.values()) > self.cache_bytes:
                self._cache.popitem(last=False)
        self._cache.move_to_end(key)
        return self._cache[key][slot % CHUNK]

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        label, _ = self.sample_id(index)
        array = self.image(index).permute(1, 2, 0).numpy()
        pil = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
        image = self.transform(pil) if self.transform is not None else pil
        return image, self.target_transform(label) if self.target_transform is not None else label

    def _generator(self):
        if self._sampler is None or self._pid != os.getpid():  # one generator per process (DataLoader workers)
            from gansynth.sampler import load_sampler

            self._sampler = load_sampler(self.run_dir, device=self.device, checkpoint=self.checkpoint)
            self._pid = os.getpid()
        return self._sampler

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.update(_sampler=None, _pid=None, _cache=OrderedDict())  # workers load their own generator
        return state

    def __repr__(self) -> str:
        return (
            f"SyntheticDataset(run={str(self.run_dir)!r}, per_class={self.per_class}, "
            f"classes={len(self.labels)}, seed={self.seed}, exact={self.exact})"
        )


def as_tensor(image: Image.Image) -> torch.Tensor:
    """PIL image → uint8 ``[C, H, W]`` (a transform for SyntheticDataset that needs no torchvision)."""
    import numpy as np

    array = np.asarray(image)
    return torch.from_numpy(array[None].copy() if array.ndim == 2 else array.transpose(2, 0, 1).copy())
