"""Errors a user can act on: every gansynth failure caused by input carries what was received and a hint.

The CLI turns these into ``error:`` / ``hint:`` lines and exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import math


class GansynthError(Exception):
    """Base class for user-facing errors.

    Args:
        message: what went wrong, naming the value received.
        hint: what to do about it (allowed values, the flag to use, where a file must go).
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message} (hint: {self.hint})"


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, for an error that quotes it (the type name when it has none)."""
    lines = str(exc).splitlines()
    return (lines[0] if lines and lines[0].strip() else type(exc).__name__)[:limit]


class DataError(GansynthError):
    """The input image folder (or a built-in dataset name) cannot be used."""


class ConfigError(GansynthError):
    """A recipe, option or ``--set`` override is unknown or out of range."""


class CheckpointError(GansynthError):
    """A run directory or one of its files is missing, truncated or incompatible."""


class TrainingError(GansynthError):
    """Training cannot continue (for example repeated non-finite losses)."""


class MetricError(GansynthError):
    """A metric cannot be computed as asked (missing weights, too few images, no common classes)."""


class ExportError(GansynthError):
    """An export cannot be written as asked."""


class BenchmarkError(GansynthError):
    """A downstream benchmark cannot be run as asked."""


class OutputError(GansynthError, OSError):
    """A file cannot be written: the disk is full or read-only, or the place is not writable.

    Also an ``OSError``, so code that handles write failures keeps handling it.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        GansynthError.__init__(self, message, hint)


def require(ok: bool, key: str, value: object, allowed: str) -> None:
    """ConfigError ``<key> = <value> is out of range`` (hint: ``<key> must be <allowed>``) unless ``ok``."""
    if not ok:
        raise ConfigError(f"{key} = {value!r} is out of range", hint=f"{key} must be {allowed}")


def is_int(value: object, low: float = -math.inf, high: float = math.inf) -> bool:
    """An int in ``[low, high]`` and not a bool (``True`` is an int to Python, never a count to a user)."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def is_number(value: object, low: float = -math.inf, high: float = math.inf) -> bool:
    """A finite int or float in ``[low, high]``, not a bool."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and low <= value <= high
    )
