"""Resolve a data argument (folder path or built-in name) to an :class:`ImageDataset`, through the decode cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from gansynth.data.builtin import BUILTIN_DATASETS, load_digits_dataset
from gansynth.data.dataset import RESOLUTIONS, ImageDataset
from gansynth.data.fingerprint import hash_tensor
from gansynth.data.folder import decode_folder, fingerprint_files, scan_folder
from gansynth.errors import ConfigError, OutputError
from gansynth.io import atomic_write_bytes, atomic_write_text, make_dirs

CACHE_VERSION = 3  # 2: 16-bit images always scaled by 65535; 3: native size recorded
DIGITS_DEFAULT_RESOLUTION = 16


def cache_root() -> Path:
    """``$GANSYNTH_CACHE`` or ``~/.cache/gansynth``."""
    return Path(os.environ.get("GANSYNTH_CACHE", Path.home() / ".cache" / "gansynth"))


def check_resolution(resolution: int | None) -> None:
    if resolution is not None and resolution not in RESOLUTIONS:
        raise ConfigError(
            f"resolution {resolution} is not supported", hint=f"choose one of {', '.join(map(str, RESOLUTIONS))}"
        )


def is_builtin(source: str | Path) -> bool:
    return str(source) in BUILTIN_DATASETS and not Path(source).exists()


def load_dataset(
    source: str | Path, resolution: int | None = None, use_cache: bool = True, unlabeled: bool = False
) -> ImageDataset:
    """Load a labeled image set.

    Args:
        source: a folder ``<root>/<class>/**/*.png`` or a built-in name (``digits``).
        resolution: output size in px (16, 32, 64, 128); None chooses from the data (the smallest not below the median
            shorter side, 128 at most; 16 for digits).
        use_cache: reuse decoded tensors keyed by a content fingerprint (the second load does not decode again).
        unlabeled: also accept a folder of images without class subfolders (as one class).

    Raises:
        DataError: the folder cannot be used (all problems in one message).
        ConfigError: the resolution is not supported.
    """
    check_resolution(resolution)
    if is_builtin(source):
        return load_digits_dataset(resolution or DIGITS_DEFAULT_RESOLUTION)
    scan = scan_folder(source, unlabeled=unlabeled)
    fingerprint = fingerprint_files(scan)
    key = f"{fingerprint[:32]}-{resolution or 'auto'}-v{CACHE_VERSION}"
    cached = _read_cache(key) if use_cache else None
    if cached is not None:
        images, labels, meta = cached
        files, skipped, native = meta["files"], [tuple(s) for s in meta["skipped"]], meta.get("native_size")
    else:
        images, labels, files, skipped, resolution, native = decode_folder(scan, resolution, RESOLUTIONS)
        if use_cache:
            _write_cache(key, images, labels, {"files": files, "skipped": skipped, "native_size": native})
    return ImageDataset(
        name=Path(source).resolve().name,
        source=str(Path(source).resolve()),
        images=images,
        labels=labels,
        class_names=scan.class_names,
        fingerprint=hash_tensor(images, prefix=fingerprint),
        files=files,
        skipped=skipped,
        native_size=native,
    )


def _read_cache(key: str) -> tuple[torch.Tensor, torch.Tensor, dict] | None:
    tensors_path, meta_path = cache_root() / "images" / f"{key}.safetensors", cache_root() / "images" / f"{key}.json"
    try:
        meta = json.loads(meta_path.read_text())
        tensors = load_file(tensors_path)
        return tensors["images"], tensors["labels"], meta
    except Exception:  # noqa: BLE001 - a missing or damaged cache entry is simply rebuilt
        return None


def _write_cache(key: str, images: torch.Tensor, labels: torch.Tensor, meta: dict) -> None:
    """Keep decoded images for the next run; a full or read-only cache disk only costs that (nothing fails)."""
    try:
        folder = make_dirs(cache_root() / "images")
        atomic_write_bytes(folder / f"{key}.safetensors", save({"images": images.contiguous(), "labels": labels}))
        atomic_write_text(folder / f"{key}.json", json.dumps(meta))
    except OutputError:
        pass
