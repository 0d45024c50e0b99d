"""Benchmark inputs: the real train/test sets, the synthetic pool, and the checks that keep the test split clean.

Everything here returns images at the real training set's geometry (channels, resolution) and labels indexed by
the real training set's class names.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gansynth.data import RESOLUTIONS, ImageDataset, is_builtin, load_dataset
from gansynth.errors import BenchmarkError, DataError
from gansynth.exporter.store import IMAGES, MANIFEST
from gansynth.images import match_channels, resize

MIN_PER_CLASS_FOR_SPLIT = 2  # one image to train on, one to test on
_SHOW = 5  # examples named in a message


def load_images(source: str | Path | ImageDataset, resolution: int | None = None) -> ImageDataset:
    """An :class:`ImageDataset` as given, or loaded from a folder / built-in name at ``resolution`` px."""
    if isinstance(source, ImageDataset):
        return source
    return load_dataset(source, resolution=resolution if resolution in RESOLUTIONS else None)


def native_side(dataset: ImageDataset) -> int:
    """Shorter side in px of the dataset's first file as stored (its resolution for in-memory data)."""
    if dataset.files:
        try:
            with Image.open(Path(dataset.source) / dataset.files[0]) as image:
                return min(image.size)
        except OSError:
            pass
    return dataset.resolution


def match_geometry(images: torch.Tensor, channels: int, resolution: int) -> torch.Tensor:
    """uint8 ``[N, C, H, W]`` → uint8 ``[N, channels, resolution, resolution]`` (gray ↔ RGB, antialiased resize)."""
    return resize(match_channels(images, channels), resolution)


def conform(dataset: ImageDataset, reference: ImageDataset, what: str) -> ImageDataset:
    """``dataset`` with ``reference``'s classes (same names, same label indices) and geometry.

    Raises:
        BenchmarkError: the class names differ (both differences are named).
    """
    check_same_classes(reference.class_names, dataset.class_names, what)
    order = torch.tensor([reference.class_names.index(name) for name in dataset.class_names], dtype=torch.long)
    return ImageDataset(
        name=dataset.name,
        source=dataset.source,
        images=match_geometry(dataset.images, reference.channels, reference.resolution),
        labels=order[dataset.labels],
        class_names=list(reference.class_names),
        fingerprint=dataset.fingerprint,
        files=dataset.files,
        skipped=dataset.skipped,
    )


def check_same_classes(expected: list[str], got: list[str], what: str) -> None:
    """BenchmarkError naming the classes missing from and extra in ``got`` unless the two sets are equal."""
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    if not missing and not extra:
        return
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    if extra:
        parts.append(f"extra {', '.join(extra)}")
    raise BenchmarkError(
        f"the {what} classes do not match the real training classes: {'; '.join(parts)}",
        hint=f"class folders must have the same names; real training classes: {', '.join(expected)}",
    )


# --- held-out split -------------------------------------------------------------------------------------------


def held_out_split(dataset: ImageDataset, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stratified train / test indices: every class gives ``max(1, round(fraction × n))`` random images to test.

    Every class lands on both sides, so per-class recall is defined for all of them.

    Returns:
        ``(train, test)`` sorted int64 index tensors.

    Raises:
        DataError: a class has fewer than 2 images (all such classes are named).
    """
    if not 0 < fraction < 1:
        raise BenchmarkError(f"test fraction must be in (0, 1), got {fraction!r}", hint="e.g. 0.2")
    labels = dataset.labels.numpy()
    counts = np.bincount(labels, minlength=dataset.num_classes)
    few = [f"{name} ({n})" for name, n in zip(dataset.class_names, counts) if n < MIN_PER_CLASS_FOR_SPLIT]
    if few:
        raise DataError(
            f"too few images for a stratified held-out split in class(es) {', '.join(few)}",
            hint=f"each class needs at least {MIN_PER_CLASS_FOR_SPLIT} images (one to train on, one to test on); "
            "add images, or pass --test with a separate test folder",
        )
    rng = np.random.default_rng(seed)
    test = []
    for k in range(dataset.num_classes):
        members = np.flatnonzero(labels == k)
        n_test = min(len(members) - 1, max(1, round(fraction * len(members))))
        test.extend(rng.permutation(members)[:n_test].tolist())
    test_mask = np.zeros(len(labels), dtype=bool)
    test_mask[test] = True
    return torch.from_numpy(np.flatnonzero(~test_mask)), torch.from_numpy(np.flatnonzero(test_mask))


# --- overlap --------------------------------------------------------------------------------------------------


def image_hashes(images: torch.Tensor) -> list[str]:
    """sha256 of each uint8 image's pixels: equal images have equal hashes whatever their file names."""
    array = np.ascontiguousarray(images.numpy())
    return [hashlib.sha256(row.tobytes()).hexdigest() for row in array]


def shared_images(a: ImageDataset, b: ImageDataset) -> list[tuple[str, str]]:
    """``(name in a, name in b)`` of every image of ``b`` whose pixels also occur in ``a`` (same geometry)."""
    seen: dict[str, int] = {}
    for i, digest in enumerate(image_hashes(a.images)):
        seen.setdefault(digest, i)
    pairs = []
    for j, digest in enumerate(image_hashes(b.images)):
        if digest in seen:
            pairs.append((_name(a, seen[digest]), _name(b, j)))
    return pairs


def _name(dataset: ImageDataset, index: int) -> str:
    return dataset.files[index] if dataset.files is not None else f"{dataset.name}[{index}]"


def check_no_overlap(train: ImageDataset, test: ImageDataset, what: str) -> None:
    """BenchmarkError when any test image's pixels equal an image of ``train`` (named ``what``)."""
    pairs = shared_images(train, test)
    if not pairs:
        return
    shown = ", ".join(f"{t} = {s}" for s, t in pairs[:_SHOW]) + (
        f" and {len(pairs) - _SHOW} more" if len(pairs) > _SHOW else ""
    )
    raise BenchmarkError(
        f"{len(pairs)} of {len(test)} test images also occur in the {what} (same pixels): {shown}",
        hint="the test split must never be trained on: remove these images from one side, or drop --test to "
        "let gansynth hold out a split of REAL_TRAIN",
    )


# --- synthetic sources ----------------------------------------------------------------------------------------


def synthetic_folder(path: str | Path) -> tuple[Path, dict | None]:
    """The class-folder root of a synthetic set and its export manifest (None when there is none).

    Accepts an export root (``images/`` + ``manifest.json``), its ``images/`` folder, or any class-folder tree.
    """
    path = Path(path)
    if (path / IMAGES).is_dir() and (path / MANIFEST).is_file():
        return path / IMAGES, _read_manifest(path / MANIFEST)
    if path.name == IMAGES and (path.parent / MANIFEST).is_file():
        return path, _read_manifest(path.parent / MANIFEST)
    return path, None


def _read_manifest(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None


def with_export_class_names(dataset: ImageDataset, manifest: dict | None) -> ImageDataset:
    """An export's images labeled by the class names its manifest records.

    Export folders may be sanitized or prefixed class names, and a top-up export has no folder for a class that
    needed no images; the manifest maps folders to training labels, and classes exported with 0 images are kept
    (empty). Without a manifest that describes these folders the dataset is returned unchanged.
    """
    try:
        names = [str(n) for n in manifest["run"]["class_names"]]
        folders = {c["folder"]: names[c["label"]] for c in manifest["classes"] if c["count"] > 0}
    except (KeyError, TypeError, IndexError):
        return dataset
    if sorted(folders) != sorted(dataset.class_names):
        return dataset
    index = torch.tensor([names.index(folders[f]) for f in dataset.class_names], dtype=torch.long)
    return replace(dataset, labels=index[dataset.labels], class_names=names)


def export_from_run(run: str | Path, out: Path, per_class: int, device: str, progress: bool) -> Path:
    """Write ``per_class`` images per class of ``run`` through the export code into ``out``; returns ``out``.

    ``out`` belongs to the benchmark: a rerun with the same run and count finds the files complete and writes
    nothing (the export resumes); an export of another run or count there is replaced.
    """
    from gansynth.exporter import export

    export(run, out=out, per_class=per_class, seed=0, device=device, progress=progress, force=True)
    return out


def is_builtin_source(source: str | Path | ImageDataset) -> bool:
    return not isinstance(source, ImageDataset) and is_builtin(source)
