"""Folder → validated file list → decoded uint8 tensors: the first stage of the pipeline.

Every problem in a folder is collected before failing, so one run shows them all.
"""

from __future__ import annotations

import hashlib
import os
import stat
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from gansynth.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
MIN_IMAGES_PER_CLASS = 1
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F", "La"}
_SHOW = 5  # how many example paths a message names


@dataclass
class FolderScan:
    """What a class-per-subfolder image tree holds before decoding.

    Attributes:
        root: the folder.
        class_names: sorted subfolder names.
        files: ``(relative path, class index)`` of every candidate image, sorted.
        skipped: ``(relative path, reason)`` of files that are not used.
    """

    root: Path
    class_names: list[str]
    files: list[tuple[str, int]]
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _examples(paths: list[str]) -> str:
    more = f" and {len(paths) - _SHOW} more" if len(paths) > _SHOW else ""
    return ", ".join(paths[:_SHOW]) + more


def scan_folder(root: str | Path, unlabeled: bool = False) -> FolderScan:
    """List the classes and candidate image files of ``root/<class>/**/*.<ext>``.

    ``unlabeled``: a folder of images without class subfolders is allowed too; it becomes one class named after
    the folder (``gansynth translate``'s domain B, whose labels are not used).

    Raises:
        DataError: the path is missing, is a file, is empty, or has images but no class subfolders.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(
            f"data path {root} does not exist", hint="give a folder with one subfolder per class, or 'digits'"
        )
    if not root.is_dir():
        raise DataError(
            f"data path {root} is a file, not a folder", hint="give the folder that holds one subfolder per class"
        )
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    class_dirs = [p for p in entries if p.is_dir()]
    loose = [p.name for p in entries if p.is_file()]
    if not class_dirs and unlabeled:
        return _scan_flat(root, loose)
    if not class_dirs:
        if any(name.lower().endswith(IMAGE_EXTENSIONS) for name in loose):
            raise DataError(
                f"{root} holds {len(loose)} loose files but no class subfolders",
                hint=f"put each class in its own subfolder: {root}/<class_name>/image.png "
                "(for a single class, move the images into one subfolder)",
            )
        raise DataError(f"{root} is empty (no class subfolders)", hint=f"expected {root}/<class_name>/image.png")
    skipped = [(name, "loose file outside any class folder") for name in loose]
    files: list[tuple[str, int]] = []
    for label, class_dir in enumerate(class_dirs):
        for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for fname in sorted(filenames):
                path = Path(dirpath) / fname
                rel = path.relative_to(root).as_posix()
                if not fname.lower().endswith(IMAGE_EXTENSIONS):
                    skipped.append((rel, "not an image file"))
                elif (problem := _unreadable(path)) is not None:
                    skipped.append((rel, problem))
                else:
                    files.append((rel, label))
    return FolderScan(root=root, class_names=[p.name for p in class_dirs], files=files, skipped=skipped)


def _scan_flat(root: Path, names: list[str]) -> FolderScan:
    """The images directly in ``root`` as one class (an unlabeled folder)."""
    files, skipped = [], []
    for name in names:
        if not name.lower().endswith(IMAGE_EXTENSIONS):
            skipped.append((name, "not an image file"))
        elif (problem := _unreadable(root / name)) is not None:
            skipped.append((name, problem))
        else:
            files.append((name, 0))
    if not files:
        raise DataError(
            f"{root} holds no image files" + (f" ({describe_skipped(skipped)})" if skipped else ""),
            hint=f"give a folder of images ({' '.join(IMAGE_EXTENSIONS)}), loose or in subfolders",
        )
    return FolderScan(root=root, class_names=[root.resolve().name or "images"], files=files, skipped=skipped)


def _unreadable(path: Path) -> str | None:
    """Why ``path`` cannot be used as an image file (None when it can be opened): a dangling or looping symbolic
    link, not a regular file, no read permission, 0 bytes."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            return "not a regular file"
        if info.st_size == 0:
            return "empty (0 bytes)"
        with open(path, "rb") as f:
            f.read(1)
    except FileNotFoundError:
        return "a symbolic link to nothing"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    return None


def fingerprint_files(scan: FolderScan) -> str:
    """sha256 over every candidate file's relative path, class and bytes."""
    h = hashlib.sha256()
    h.update("\0".join(scan.class_names).encode())
    for rel, label in scan.files:
        h.update(f"\0{rel}\0{label}\0".encode())
        h.update((scan.root / rel).read_bytes())
    return h.hexdigest()


MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485  # Pillow's decompression-bomb limit (~9 459² px)


def _probe(path: Path) -> tuple[bool, int, int] | str:
    """(is grayscale, width, height) from the header, or why the file cannot be used."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                return f"too large ({width}×{height} px; at most {MAX_PIXELS:,} px are decoded)"
            return img.mode in _GRAY_MODES, width, height
    except Image.DecompressionBombError:
        return f"too large (over {2 * MAX_PIXELS:,} px)"
    except Exception:  # noqa: BLE001 - any decoder failure means "unreadable"
        return "unreadable or truncated image"


def _peak(mode: str, arr: np.ndarray) -> float:
    """The white level of a high-bit-depth image: 65535 for 16-bit modes (a dark 16-bit image stays dark), 1.0 for
    float images in [0, 1]; 32-bit integer images carry no depth, so 255 unless a value exceeds it (then 65535)."""
    if mode.startswith("I;16"):
        return 65535.0
    if mode == "F" and arr.size and 0.0 <= arr.min() and arr.max() <= 1.0:
        return 1.0
    return 65535.0 if arr.max(initial=0) > 255 else 255.0


def _to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Convert any PIL mode (1, L, LA, P, RGB, RGBA, CMYK, 16-bit) to L or RGB, compositing alpha onto white."""
    if img.mode.startswith("I") or img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        peak = _peak(img.mode, arr)
        img = Image.fromarray(np.clip(arr * 255.0 / peak, 0, 255).round().astype(np.uint8), mode="L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("LA", "La", "RGBA", "RGBa", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("L" if channels == 1 else "RGB")


def resize_center_crop(img: Image.Image, resolution: int) -> Image.Image:
    """Resize the shorter side to ``resolution`` (antialiased) and crop the center square."""
    w, h = img.size
    scale = resolution / min(w, h)
    new_w, new_h = max(resolution, round(w * scale)), max(resolution, round(h * scale))
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)
    left, top = (new_w - resolution) // 2, (new_h - resolution) // 2
    return img.crop((left, top, left + resolution, top + resolution))


def _decode(path: Path, channels: int, resolution: int) -> np.ndarray | None:
    """``[C, R, R]`` uint8, or None when the file is unreadable or truncated."""
    try:
        with Image.open(path) as img:
            img.load()
            upright = ImageOps.exif_transpose(img)  # phone photos: apply the EXIF orientation
            out = resize_center_crop(_to_mode(upright, channels), resolution)
    except Exception:  # noqa: BLE001 - any decoder failure means "unreadable"
        return None
    arr = np.asarray(out, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def choose_resolution(shorter_sides: list[int], allowed: tuple[int, ...]) -> int:
    """The smallest allowed resolution not below the median shorter side (the largest allowed one at most): detail
    is kept (28 px images train at 32 px, not 16), and the output is resized back to the native size."""
    median = int(np.median(shorter_sides))
    covering = [r for r in allowed if r >= median]
    return min(covering) if covering else max(allowed)


def native_size(sizes: list[tuple[int, int]]) -> int | None:
    """The side of the images when every one of them is the same square size, else None."""
    unique = set(sizes)
    if len(unique) != 1:
        return None
    width, height = unique.pop()
    return width if width == height else None


def decode_folder(
    scan: FolderScan, resolution: int | None, allowed: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor, list[str], list[tuple[str, str]], int, int | None]:
    """Decode every candidate file.

    Returns:
        images ``[N, C, R, R]`` uint8, labels ``[N]``, relative paths of the kept files, skipped files with reasons,
        the resolution used, and the native size (:func:`native_size` of the kept images).

    Raises:
        DataError: listing every class without a readable image, or every file being unreadable.
    """
    workers = min(8, os.cpu_count() or 1)
    paths = [scan.root / rel for rel, _ in scan.files]
    # The warning filter is process-wide, so it is set once around both pools, not inside the worker threads
    # (entering and leaving catch_warnings in concurrent threads restores filters under each other's feet).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _decode_all(scan, paths, workers, resolution, allowed)


def _decode_all(scan: FolderScan, paths: list[Path], workers: int, resolution: int | None, allowed: tuple[int, ...]):
    with ThreadPoolExecutor(workers) as pool:
        reasons = list(pool.map(_probe, paths))
    probes = [p if isinstance(p, tuple) else None for p in reasons]
    readable = [p for p in probes if p is not None]
    channels = 1 if readable and all(gray for gray, _, _ in readable) else 3
    if resolution is None:
        resolution = choose_resolution([min(w, h) for _, w, h in readable] or [min(allowed)], allowed)
    keep = [i for i, p in enumerate(probes) if p is not None]
    with ThreadPoolExecutor(workers) as pool:
        arrays = list(pool.map(lambda i: _decode(paths[i], channels, resolution), keep))
    skipped = list(scan.skipped)
    kept_files, kept_arrays, labels, sizes = [], [], [], []
    bad = {i for i, p in enumerate(probes) if p is None}
    for i, arr in zip(keep, arrays):
        if arr is None:
            bad.add(i)
        else:
            kept_files.append(scan.files[i][0])
            kept_arrays.append(arr)
            labels.append(scan.files[i][1])
            sizes.append(probes[i][1:])
    skipped += [
        (scan.files[i][0], reasons[i] if isinstance(reasons[i], str) else "unreadable or truncated image")
        for i in sorted(bad)
    ]
    _validate(scan, labels, skipped)
    # np.stack keeps the transposed (channels-last) layout of RGB arrays; a contiguous NCHW tensor is what the
    # cache gives back, and convolutions on either layout differ in the last bit (resume must match exactly)
    images = torch.from_numpy(np.stack(kept_arrays)).contiguous()
    return images, torch.tensor(labels, dtype=torch.long), kept_files, skipped, resolution, native_size(sizes)


def _validate(scan: FolderScan, labels: list[int], skipped: list[tuple[str, str]]) -> None:
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(scan.class_names))
    problems = []
    if not labels:
        problems.append(
            f"none of the {len(scan.files) + len(scan.skipped)} files under {scan.root} is a readable image"
        )
    else:
        for name, count in zip(scan.class_names, counts):
            if count < MIN_IMAGES_PER_CLASS:
                in_class = [rel for rel, _ in skipped if rel.startswith(name + "/")]
                why = f" (skipped: {_examples(in_class)})" if in_class else ""
                problems.append(f"class folder {scan.root / name} has {count} readable images{why}")
    if problems:
        raise DataError(
            "; ".join(problems),
            hint=f"each class needs at least {MIN_IMAGES_PER_CLASS} readable image "
            f"({' '.join(IMAGE_EXTENSIONS)}); classes found: {', '.join(scan.class_names)}",
        )


def describe_skipped(skipped: list[tuple[str, str]]) -> str:
    """One line: how many files were skipped, with the first few paths and reasons."""
    shown = [f"{rel} ({why})" for rel, why in skipped]
    return f"skipped {len(skipped)} files: {_examples(shown)}"
