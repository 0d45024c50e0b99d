"""``BenchmarkSpec``: every option of a benchmark, checked once; the CLI, the demo and :func:`benchmark` build one.

What can be checked without the data is checked on construction; what depends on the inputs (is there a
synthetic source? were two given?) is checked by :meth:`BenchmarkSpec.arms_for` before any image is loaded.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gansynth.benchmark.plan import ARMS, DEFAULT_ARMS, SYNTHETIC_ARMS
from gansynth.benchmark.select import VALIDATION_FOLDS, VALIDATION_FRACTION
from gansynth.classify import check_model_name
from gansynth.errors import BenchmarkError, ConfigError
from gansynth.exporter.spec import parse_balance_to
from gansynth.mixing import Mixing
from gansynth.registry import did_you_mean

DEFAULT_MODEL = "test_efficientnet"  # timm's tiny EfficientNet: ~99% on digits in ~10 s on one CPU thread
DEFAULT_EPOCHS = 15
DEFAULT_SEEDS = 3
MIN_STEPS = 200  # so that tiny real sets still train to convergence
BATCH_SIZE = 128
TEST_FRACTION = 0.2
SPLIT_SEED = 0
BUDGETS = ("auto", "fixed")


@dataclass(frozen=True)
class BenchmarkSpec:
    """How to benchmark (the data come separately, see :func:`gansynth.benchmark.benchmark`).

    Attributes:
        arms: subset of ``real``, ``real+synthetic``, ``synthetic``, ``rebalanced``, ``balanced-softmax``,
            ``mixup``; None → all that the inputs allow except ``mixup`` (opt-in: one more classifier run per seed).
        model: timm model name, trained from scratch.
        epochs: training length in passes over the real training set; every arm gets the same number of steps.
        seeds: independent runs per arm (seeds 0..seeds-1, shared by the arms).
        synthetic_per_class: real+synthetic adds this many synthetic images to every class.
        balance_to: real+synthetic tops every class up to this count (``"max"``: the largest real class).
        ratio_sweep: extra real+synthetic arms adding ``round(r × largest real class)`` images to every class
            (sorted, each once).
        out: report folder.
        progress: show progress and per-run scores on stderr.
        flip: horizontal-flip augmentation; None → on, except for the built-in digits.
        test_fraction: share of each class held out when no test set is given.
        split_seed: seed of that held-out split.
        min_steps: floor on the optimizer steps of every run.
        batch_size: images per optimizer step.
        mixings: candidate mixings of real+synthetic, chosen on validation ("no synthetic" is always a candidate);
            None → :data:`gansynth.benchmark.select.CANDIDATES`; one mixing → used as given, no choice.
        budget: ``auto`` (steps grow until real-only converges on validation) or ``fixed`` (the epochs rule).
        validation_folds: K of the stratified K-fold cross-validation over the real training images that the
            budget and the mixing are chosen on (every image validated once); 1 → one split of
            ``validation_fraction``.
        validation_fraction: share of each class of the real training images used for validation when
            ``validation_folds`` is 1.
        selection_seeds: classifier seeds averaged per validation score.
        export_filter: the diversity filter of a ``run``'s export (:mod:`gansynth.exporter.filter`; ``auto``: on,
            with the real training images as reference). A class that keeps fewer synthetic images than an arm adds
            (or none: a class that failed the diversity check) makes up the difference with repeats of its real
            images (oversampling), mixed like the synthetic ones; the same holds for a ``synthetic`` export folder
            whose manifest records the filter.
        workers: processes that train the arms' classifiers side by side on a CPU, one torch thread each
            (:mod:`gansynth.benchmark.parallel`); ``"auto"`` → one per free core on a CPU (one process on CUDA or
            with ``$GANSYNTH_THREADS`` set), the CLI's default. More than one needs a script whose top level is
            guarded by ``if __name__ == "__main__":``, as for any spawned process, hence 1 by default here.
    """

    arms: tuple[str, ...] | None = None
    model: str = DEFAULT_MODEL
    epochs: int = DEFAULT_EPOCHS
    seeds: int = DEFAULT_SEEDS
    synthetic_per_class: int | None = None
    balance_to: int | str | None = None
    ratio_sweep: tuple[float, ...] = ()
    out: Path = Path("benchmark")
    progress: bool = True
    flip: bool | None = None
    test_fraction: float = TEST_FRACTION
    split_seed: int = SPLIT_SEED
    min_steps: int = MIN_STEPS
    batch_size: int = BATCH_SIZE
    mixings: tuple[Mixing, ...] | None = None
    budget: str = "auto"
    validation_folds: int = VALIDATION_FOLDS
    validation_fraction: float = VALIDATION_FRACTION
    selection_seeds: int = 1
    export_filter: str = "auto"
    workers: int | str = 1

    def __post_init__(self) -> None:
        fix = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 - normalizing a frozen field
        fix("out", Path(self.out))
        fix("balance_to", parse_balance_to(self.balance_to))
        fix("ratio_sweep", _ratios(self.ratio_sweep))
        fix("arms", _arm_names(self.arms))
        fix("mixings", _mixings(self.mixings))
        from gansynth.exporter.filter import check_mode

        fix("export_filter", check_mode(self.export_filter))
        self._check_counts()
        check_model_name(self.model)
        per_class = self.synthetic_per_class
        if per_class is not None and self.balance_to is not None:
            raise BenchmarkError(
                "--synthetic-per-class and --balance-to were both given", hint="choose +N per class or a top-up target"
            )
        if per_class is not None and (type(per_class) is not int or per_class < 1):
            raise ConfigError(f"synthetic_per_class must be >= 1, got {per_class!r}", hint="e.g. 500")
        if self.budget not in BUDGETS:
            raise ConfigError(f"budget must be 'auto' or 'fixed', got {self.budget!r}", hint="e.g. --budget auto")
        for key in ("validation_fraction", "test_fraction"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
                raise ConfigError(f"{key} must be in (0, 1), got {value!r}", hint="e.g. 0.2")

    def _check_counts(self) -> None:
        keys = ("seeds", "epochs", "min_steps", "batch_size", "selection_seeds", "validation_folds")
        for key in keys:
            value = getattr(self, key)
            if type(value) is not int or value < 1:
                hint = "use 3 or more seeds: the verdict compares arms seed by seed" if key == "seeds" else "e.g. 15"
                raise ConfigError(f"{key} must be >= 1, got {value!r}", hint=hint)
        if self.workers != "auto" and (type(self.workers) is not int or self.workers < 1):
            raise ConfigError(f"workers must be an integer >= 1, got {self.workers!r}", hint="e.g. 2, or 'auto'")
        if type(self.split_seed) is not int or self.split_seed < 0:
            raise ConfigError(f"split_seed must be an integer >= 0, got {self.split_seed!r}", hint="e.g. 0")

    def arms_for(self, has_synthetic: bool, both_sources: bool = False) -> list[str]:
        """The arms to train, in report order, for inputs with (or without) a synthetic source.

        Raises:
            BenchmarkError: two synthetic sources, or synthetic arms/options without one.
        """
        if both_sources:
            raise BenchmarkError("--synthetic and --run were both given", hint="pass one synthetic source")
        if not has_synthetic and (self.ratio_sweep or self.synthetic_per_class is not None or self.balance_to):
            raise BenchmarkError(
                "--synthetic-per-class, --balance-to and --ratio-sweep need synthetic images",
                hint="pass --synthetic DIR (an export) or --run RUN",
            )
        if self.arms is None:
            return list(DEFAULT_ARMS) if has_synthetic else [a for a in DEFAULT_ARMS if a not in SYNTHETIC_ARMS]
        needing = [a for a in self.arms if a in SYNTHETIC_ARMS]
        if needing and not has_synthetic:
            raise BenchmarkError(
                f"arm(s) {', '.join(needing)} need synthetic images",
                hint="pass --synthetic DIR (an export) or --run RUN, or choose --arms real,rebalanced",
            )
        return [a for a in ARMS if a in self.arms]

    def replace(self, **changes) -> BenchmarkSpec:
        """A copy with ``changes`` applied (and checked)."""
        return dataclasses.replace(self, **changes)


def _arm_names(arms: Sequence[str] | str | None) -> tuple[str, ...] | None:
    if arms is None:
        return None
    names = tuple(a.strip() for a in arms.split(",") if a.strip()) if isinstance(arms, str) else tuple(arms)
    unknown = [a for a in names if a not in ARMS]
    if unknown:
        raise ConfigError(f"unknown arm {unknown[0]!r}", hint=did_you_mean(str(unknown[0]), list(ARMS)))
    if not names:
        raise ConfigError("no arms given", hint=f"choose from {', '.join(ARMS)}")
    return names


def _ratios(values: Sequence[float] | str | None) -> tuple[float, ...]:
    """``"0.25,0.5"`` or a sequence of numbers → sorted distinct ratios > 0."""
    parts = [p for p in values.split(",") if p.strip()] if isinstance(values, str) else values or ()
    try:
        ratios = sorted({float(r) for r in parts})
    except (TypeError, ValueError):
        raise ConfigError(
            f"--ratio-sweep {values!r} is not a comma-separated list of numbers", hint="e.g. --ratio-sweep 0.25,0.5,1,2"
        ) from None
    bad = [r for r in ratios if not math.isfinite(r) or r <= 0]
    if bad:
        raise ConfigError(f"ratio sweep values must be > 0, got {bad}", hint="e.g. --ratio-sweep 0.25,0.5,1,2")
    return tuple(ratios)


def _mixings(mixings: Sequence[Mixing] | None) -> tuple[Mixing, ...] | None:
    if mixings is None:
        return None
    mixings = tuple(mixings)
    if not mixings or not all(isinstance(m, Mixing) for m in mixings):
        raise ConfigError("mixings must be a non-empty list of gansynth.mixing.Mixing", hint="e.g. [Mixing()]")
    return mixings
