"""What an export writes, decided before any image exists: classes, safe folder names, counts, seeds, units, shards.

Pure functions of the run's ``dataset.json`` and the export arguments, so every process (a resumed run, a shard on
another machine, :class:`gansynth.SyntheticDataset`) derives the same files.

Seeds: class ``k`` (its *training* index) owns the seed range ``[seed + k·SEED_STRIDE, seed + (k+1)·SEED_STRIDE)``, so
classes never share a seed and a class's files do not depend on which other classes are exported. Without a filter,
the n-th image of class k has seed ``seed + k·SEED_STRIDE + n``.

Units: each class's images are cut into units of ``CHUNK`` consecutive image slots. A unit is generated as whole
batches of fixed composition (the same seeds in the same order, whatever the shard or resume point), so CPU float
results and therefore file bytes never depend on where an export was split or interrupted. With
``--min-confidence``, try ``t`` of unit ``g`` (of ``G`` units in its class) draws the ``CHUNK`` candidate seeds
``base + (t·G + g)·CHUNK + [0, CHUNK)``; the unit keeps the first passing candidates in seed order until its quota is
met, at most ``ceil(MAX_DRAW_FACTOR · quota / CHUNK)`` tries. Units are independent, which is what makes shards exact.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

from gansynth.errors import ConfigError, ExportError, is_int
from gansynth.images import CHUNK
from gansynth.registry import did_you_mean

SCHEME_VERSION = 1  # bump when the mapping (class, index) → seed/file or the unit layout changes
SEED_STRIDE = 10_000_000  # seeds reserved per class
MAX_DRAW_FACTOR = 20  # with a filter, a unit draws at most this many candidates per image it needs
MAX_PER_CLASS = 400_000  # keeps every filtered draw (< MAX_DRAW_FACTOR · count + CHUNK seeds) inside the class block
FORMATS = {"png": "png", "jpg": "jpg", "jpeg": "jpg", "webp": "webp"}
MAX_FOLDER_BYTES = 100  # keeps "<folder>/<folder>-<seed>.webp" far below the usual 255-byte name limit
_UNSAFE = re.compile(r'[/\\<>:"|?*]')
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


# --- seeds ------------------------------------------------------------------------------------------------------


def class_seed_base(seed: int, label: int) -> int:
    """First seed of class ``label``'s range."""
    return seed + label * SEED_STRIDE


def sample_seed(seed: int, label: int, index: int) -> int:
    """Seed of the ``index``-th image of class ``label`` in an unfiltered export (and in SyntheticDataset)."""
    return class_seed_base(seed, label) + index


# --- class names → folder names ----------------------------------------------------------------------------------


def sanitize(name: str, label: int) -> str:
    """A single safe path component for an untrusted class name.

    Path separators, control characters and characters Windows forbids become ``_``; leading/trailing dots and
    spaces are stripped (no ``.``, ``..`` or hidden folders); Windows device names (CON, NUL, COM1, ...) get a ``_``
    prefix; long names are cut to ``MAX_FOLDER_BYTES`` UTF-8 bytes; an empty result becomes ``class-<label>``.
    """
    text = unicodedata.normalize("NFC", name)
    text = "".join("_" if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in text)
    text = _UNSAFE.sub("_", text).strip(" .")
    while len(text.encode()) > MAX_FOLDER_BYTES:
        text = text[:-1]
    text = text.strip(" .")
    if not text or set(text) == {"_"} and not set(name) <= {"_"}:
        return f"class-{label}"
    if text.split(".")[0].upper() in _RESERVED:
        text = f"_{text}"
    return text


def folder_names(class_names: list[str]) -> list[str]:
    """Folder name of every class, in training order.

    Sanitized names that collide (ignoring case, for case-insensitive file systems) get ``-<label>`` appended. If
    the folders would not sort in training order (``ImageFolder`` and Hugging Face sort folder names), every
    folder gets a zero-padded ``<label>-`` prefix so that sorted order is training order again.
    """
    names = [sanitize(n, k) for k, n in enumerate(class_names)]
    taken = Counter(n.casefold() for n in names)
    names = [f"{n}-{k}" if taken[n.casefold()] > 1 else n for k, n in enumerate(names)]
    if names != sorted(names) or len({n.casefold() for n in names}) != len(names):
        width = len(str(len(names) - 1))
        names = [f"{k:0{width}d}-{n}" for k, n in enumerate(names)]
    return names


def check_component(part: str) -> str:
    """``part`` if it is one plain path component (defence in depth behind :func:`sanitize`)."""
    if not part or part in (".", "..") or any(c in part for c in "/\\\0") or part != part.strip():
        raise ExportError(f"refusing to write a file named {part!r}", hint="a bug in gansynth; please report it")
    return part


def file_name(folder: str, seed: int, fmt: str) -> str:
    """``images/<folder>/<folder>-<seed>.<ext>`` relative to the export root (``/`` separators, as in images.csv)."""
    return f"images/{folder}/{folder}-{seed}.{fmt}"


# --- what to export ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassPlan:
    """One exported class.

    Attributes:
        label: training class index (the ``label`` column).
        name: the class name as the run stores it.
        folder: its sanitized folder name.
        count: images to export.
        real_count: real training images of the class (None when the run does not record counts).
    """

    label: int
    name: str
    folder: str
    count: int
    real_count: int | None


@dataclass(frozen=True)
class Unit:
    """Up to ``CHUNK`` consecutive image slots of one class: the unit of generation, resume and sharding."""

    label: int
    index: int  # g: slots [g·CHUNK, g·CHUNK + quota)
    quota: int  # images it contributes
    num_units: int  # G: units of its class

    @property
    def key(self) -> tuple[int, int]:
        return (self.label, self.index)

    def max_tries(self) -> int:
        return max(1, math.ceil(MAX_DRAW_FACTOR * self.quota / CHUNK))

    def candidates(self, seed: int, attempt: int, filtered: bool) -> range:
        """Seeds generated (as one batch) by try ``attempt``; unfiltered units have one try of ``quota`` seeds."""
        base = class_seed_base(seed, self.label)
        if not filtered:
            start = base + self.index * CHUNK
            return range(start, start + self.quota)
        start = base + (attempt * self.num_units + self.index) * CHUNK
        return range(start, start + CHUNK)


def read_class_names(info: dict) -> list[str]:
    """The run's class names (validated: a non-empty list of distinct strings)."""
    names = info.get("class_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ExportError("the run's dataset.json has no valid class_names list", hint="the run directory is damaged")
    if len(set(names)) != len(names):
        raise ExportError("the run's dataset.json lists a class twice", hint="the run directory is damaged")
    return names


def parse_classes(classes: list[str] | tuple[str, ...] | str | None) -> list[str] | None:
    """``"a,b"`` or a list of class names → the list (None: every class); anything else is a ConfigError."""
    if classes is None:
        return None
    if isinstance(classes, str):
        return [c.strip() for c in classes.split(",")]
    if not isinstance(classes, (list, tuple)) or not all(isinstance(c, str) for c in classes):
        raise ConfigError(
            f"classes = {str(classes)[:60]} is not a list of class names",
            hint='give class names as strings: ["cat", "dog"] or "cat,dog"',
        )
    return list(classes)


def select_classes(class_names: list[str], classes: list[str] | tuple[str, ...] | str | None) -> list[int]:
    """Training indices of the requested classes (all when None; a list or ``"a,b"``), in training order."""
    classes = parse_classes(classes)
    if classes is None:
        return list(range(len(class_names)))
    if not classes:
        raise ConfigError("--classes is empty", hint=f"name one or more of: {', '.join(class_names)}")
    unknown = [c for c in classes if c not in class_names]
    if unknown:
        raise ConfigError(f"unknown class {unknown[0]!r} in --classes", hint=did_you_mean(unknown[0], class_names))
    if len(set(classes)) != len(classes):
        raise ConfigError("--classes names a class twice", hint="list each class once")
    return sorted(class_names.index(c) for c in classes)


def class_counts(
    info: dict, labels: list[int], per_class: int | None, balance_to: int | str | None
) -> tuple[list[int], list[int | None]]:
    """``(images to export, real images)`` per selected class for ``--per-class N`` or ``--balance-to max|N``.

    ``per_class`` / ``balance_to`` come from a checked :class:`~gansynth.exporter.spec.ExportSpec` (exactly one
    is set, in range); what is checked here depends on the run: its recorded counts.
    """
    names = read_class_names(info)
    recorded = info.get("counts") if isinstance(info.get("counts"), dict) else {}
    real = [recorded.get(names[k]) for k in labels]
    if per_class is not None:
        counts = [per_class] * len(labels)
    else:
        if len(recorded) != len(names) or not all(isinstance(recorded.get(n), int) for n in names):
            raise ExportError(
                "--balance-to needs the real per-class counts, but the run's dataset.json has none",
                hint="use --per-class N",
            )
        largest = max(recorded.values())
        target = largest if balance_to == "max" else balance_to
        if not is_int(target) or target < 1:
            raise ConfigError(f"--balance-to {balance_to!r} is not valid", hint="use --balance-to max or a count >= 1")
        biggest = max(labels, key=lambda k: recorded[names[k]])
        if target < recorded[names[biggest]]:
            raise ConfigError(
                f"--balance-to {target} is smaller than the largest real class "
                f"({names[biggest]}: {recorded[names[biggest]]} images)",
                hint=f"use --balance-to max or a total >= {recorded[names[biggest]]}",
            )
        counts = [target - recorded[names[k]] for k in labels]
    if max(counts) > MAX_PER_CLASS:
        raise ConfigError(
            f"{max(counts)} images of one class is more than an export supports",
            hint=f"at most {MAX_PER_CLASS} per class (each class owns {SEED_STRIDE} seeds)",
        )
    return counts, real


def build_units(plans: list[ClassPlan]) -> list[Unit]:
    """All units of an export in (label, index) order."""
    units = []
    for plan in plans:
        num = math.ceil(plan.count / CHUNK)
        units += [Unit(plan.label, g, min(CHUNK, plan.count - g * CHUNK), num) for g in range(num)]
    return units


# --- shards -----------------------------------------------------------------------------------------------------


def parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int]:
    """``"I/N"`` (0 <= I < N) or ``(I, N)`` → ``(I, N)``; None → ``(0, 1)``."""
    if shard is None:
        return (0, 1)
    if isinstance(shard, str):
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", shard)
        if not match:
            raise ConfigError(f"--shard {shard!r} is not of the form I/N", hint="e.g. --shard 0/4 ... --shard 3/4")
        shard = (int(match.group(1)), int(match.group(2)))
    index, count = shard
    if count < 1 or not 0 <= index < count:
        raise ConfigError(
            f"--shard {index}/{count} is out of range",
            hint=f"shards are numbered from 0: --shard 0/{max(count, 1)} ... {max(count, 1) - 1}/{max(count, 1)}",
        )
    return (index, count)


def shard_units(units: list[Unit], shard: tuple[int, int]) -> list[Unit]:
    """The contiguous run of units of shard ``(I, N)``: unit u belongs to ``floor(start_u · N / total)``, where
    ``start_u`` is the number of images before it — shards are disjoint, cover every unit, and are balanced to
    within one unit."""
    index, count = shard
    total = sum(u.quota for u in units)
    mine, start = [], 0
    for unit in units:
        if start * count // max(total, 1) == index:
            mine.append(unit)
        start += unit.quota
    return mine
