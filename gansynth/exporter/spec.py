"""``ExportSpec``: every option of an export, checked once; the CLI and :func:`gansynth.export` both build one."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from gansynth.checkpoint import check_checkpoint
from gansynth.errors import ConfigError, is_int
from gansynth.exporter import plan as P
from gansynth.exporter.draw import Scorer
from gansynth.images import check_truncation
from gansynth.sampler import check_seeds, check_size


def parse_balance_to(value: int | str | None) -> int | str | None:
    """``"max"``, a count (int or its text) or None → ``"max"`` / int >= 1 / None; ConfigError otherwise."""
    if value is None or value == "max":
        return value
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise ConfigError(f"--balance-to {value!r} is not 'max' or a count", hint="e.g. --balance-to max") from None
    if not is_int(value) or value < 1:
        raise ConfigError(f"--balance-to {value!r} is out of range", hint="use 'max' or a count >= 1")
    return value


def parse_classes(classes: list[str] | tuple[str, ...] | str | None) -> tuple[str, ...] | None:
    """``"a,b"`` or a sequence of names → a tuple of names (None: all classes); names are checked against a run."""
    if classes is None:
        return None
    if isinstance(classes, str):
        return tuple(c.strip() for c in classes.split(",") if c.strip())
    return tuple(classes)


@dataclass(frozen=True)
class ExportSpec:
    """What to export and how; validated on construction (ConfigError names the option and its range).

    Attributes:
        per_class: exactly this many images for every selected class (or ``balance_to``, exactly one of the two).
        balance_to: ``"max"`` or a total; each class gets (total − real count) images.
        seed: first seed; class k uses seeds ``seed + k·SEED_STRIDE + [0, SEED_STRIDE)``.
        classes: class names to export (None: all).
        truncation: truncation ψ of the noise (None: none).
        min_confidence: keep only images whose requested class has at least this probability under ``scorer``
            (default: the run's domain classifier), drawing more seeds as needed.
        format: ``png``, ``jpg`` or ``webp`` (``jpeg`` is read as ``jpg``).
        workers: encoder processes (None: the machine's default; 0: encode in the generating process).
        shard: ``(I, N)``: write only shard I (0-based) of N disjoint parts (``"I/N"`` is accepted).
        force: replace another command's export in the folder (or write into a non-empty non-export folder).
        device: ``cpu``, ``cuda`` or ``auto``.
        progress: show a progress bar with img/s on stderr.
        command_line: recorded in the manifest (the CLI passes its canonical command).
        checkpoint: ``latest`` (the last snapshot) or ``best`` (lowest FID during fit).
        size: side of the written images in px (None: the real images' native size, else the trained resolution).
        scorer: ``(images, labels) → probability of the requested class``; needs ``min_confidence``.
    """

    per_class: int | None = None
    balance_to: int | str | None = None
    seed: int = 0
    classes: tuple[str, ...] | None = None
    truncation: float | None = None
    min_confidence: float | None = None
    format: str = "png"
    workers: int | None = None
    shard: tuple[int, int] = (0, 1)
    force: bool = False
    device: str = "cpu"
    progress: bool = True
    command_line: str | None = None
    checkpoint: str = "latest"
    size: int | None = None
    scorer: Scorer | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        fix = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 - normalizing a frozen field
        fix("balance_to", parse_balance_to(self.balance_to))
        fix("classes", parse_classes(self.classes))
        fix("shard", P.parse_shard(self.shard))
        fix("format", _check_format(self.format))
        if (self.per_class is None) == (self.balance_to is None):
            raise ConfigError(
                "give exactly one of --per-class N and --balance-to max|N",
                hint="--per-class N writes N images per class; --balance-to tops up each class to a total",
            )
        if self.per_class is not None and (type(self.per_class) is not int or self.per_class < 1):
            raise ConfigError(f"--per-class {self.per_class!r} is out of range", hint="--per-class must be >= 1")
        check_seeds(self.seed, what="--seed")
        check_truncation(self.truncation)
        check_size(self.size)
        check_checkpoint(self.checkpoint)
        self._check_flags()

    def _check_flags(self) -> None:
        number = (int, float)
        confidence = self.min_confidence
        checks = [
            (confidence is None or (isinstance(confidence, number) and not isinstance(confidence, bool)
                                    and 0 <= confidence <= 1), "--min-confidence", confidence, "in [0, 1]"),
            (self.workers is None or (type(self.workers) is int and self.workers >= 0), "--workers", self.workers,
             "an integer >= 0 (0: encode in this process)"),
            (isinstance(self.force, bool), "force", self.force, "True or False"),
            (isinstance(self.progress, bool), "progress", self.progress, "True or False"),
        ]  # fmt: skip
        for ok, flag, value, allowed in checks:
            if not ok:
                raise ConfigError(f"{flag} {value!r} is out of range", hint=f"{flag} must be {allowed}")
        if self.scorer is not None and self.min_confidence is None:
            raise ConfigError("a scorer was given without min_confidence", hint="set min_confidence, e.g. 0.9")

    def replace(self, **changes) -> ExportSpec:
        """A copy with ``changes`` applied (and checked)."""
        return dataclasses.replace(self, **changes)


def _check_format(fmt: str) -> str:
    if str(fmt).lower() not in P.FORMATS:
        from gansynth.registry import did_you_mean

        raise ConfigError(f"unknown image format {fmt!r}", hint=did_you_mean(str(fmt), sorted(set(P.FORMATS))))
    return P.FORMATS[str(fmt).lower()]
