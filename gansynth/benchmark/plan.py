"""Benchmark plan: the option checks, how many synthetic images each class gets in each arm, and the arms' data.

Synthetic counts per class (K classes, real counts n_k, largest M):

- ``real+synthetic``: ``synthetic_per_class=N`` → N per class; ``balance_to=T`` (``"max"`` = M) → max(0, T − n_k);
  neither → a synthetic folder is used whole, a run tops up to M (or adds M to every class when the real classes
  are already balanced, largest / smallest < 1.5, where a top-up would add almost nothing);
- ``synthetic`` (classification accuracy score): a synthetic folder whole; a run's export M per class;
- ratio sweep r: max(1, round(r × M)) per class, the same for every class.

Images are taken per class in the synthetic set's file order, so smaller selections are subsets of larger ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from gansynth.classify.mixup import MIXUP_ALPHA
from gansynth.data import ImageDataset
from gansynth.errors import BenchmarkError
from gansynth.mixing import Mixing

ARMS = ("real", "real+synthetic", "synthetic", "rebalanced", "balanced-softmax", "mixup")
SYNTHETIC_ARMS = ("real+synthetic", "synthetic")
NON_GENERATIVE = ("real", "rebalanced", "balanced-softmax", "mixup")  # the baselines real+synthetic must beat
OPT_IN_ARMS = ("mixup",)  # run only when asked for (--arms): one more classifier run per seed
DEFAULT_ARMS = tuple(a for a in ARMS if a not in OPT_IN_ARMS)
TOP_UP_IMBALANCE = 1.5  # largest / smallest real class at which a run's default becomes a top-up


def sweep_arm(ratio: float) -> str:
    """The name of a ratio-sweep arm, e.g. ``real+synthetic@0.5x``."""
    return f"real+synthetic@{ratio:g}x"


@dataclass
class Arm:
    """One arm's training data: uint8 images ``[N, C, R, R]``, int64 labels, and its per-class composition.

    ``synthetic`` marks the synthetic images among ``images`` (None: all real, or all synthetic for CAS) and
    ``mixing`` says how they join training; ``balanced`` draws class-balanced batches, ``balanced_softmax``
    trains with the logit-adjusted loss, ``mixup_alpha`` > 0 with mixup (:mod:`gansynth.classify.mixup`).
    ``holdout`` (validation runs, :mod:`.select`): uint8 images scored instead of the test set; the run then
    returns their class probabilities.
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    balanced: bool
    real_counts: list[int]
    synthetic_counts: list[int]
    balanced_softmax: bool = False
    synthetic: torch.Tensor | None = None
    mixing: Mixing | None = None
    mixup_alpha: float = 0.0
    holdout: torch.Tensor | None = None


@dataclass
class SyntheticPlan:
    """Synthetic images per class (class index order) for each arm that uses them; None where unused."""

    add: list[int] | None = None
    cas: list[int] | None = None
    sweep: dict[float, list[int]] = field(default_factory=dict)
    policy: str = "none"

    def check_available(self, available: list[int], class_names: list[str]) -> None:
        """BenchmarkError naming every class whose synthetic set is smaller than an arm needs."""
        needs = [counts for counts in (self.add, *self.sweep.values()) if counts is not None]
        short = [
            f"{name} has {have}, needs {need}"
            for k, (name, have) in enumerate(zip(class_names, available))
            if (need := max((counts[k] for counts in needs), default=0)) > have
        ]
        if short:
            raise BenchmarkError(
                f"the synthetic set has too few images for {self.policy}: {'; '.join(short)}",
                hint="export more images per class, or lower --synthetic-per-class / --ratio-sweep",
            )


def plan_synthetic(
    real_counts: list[int],
    available: list[int] | None,
    from_run: bool,
    per_class: int | None,
    balance_to: str | int | None,
    ratios: Sequence[float],
) -> SyntheticPlan:
    """Synthetic images per class for each arm (see the module docstring); ``available`` is None for a run."""
    if available is None and not from_run:
        return SyntheticPlan()
    k, largest = len(real_counts), max(real_counts)
    sweep = {r: [max(1, round(r * largest))] * k for r in ratios}
    cas = [largest] * k if from_run else list(available)
    if per_class is not None:
        return SyntheticPlan([per_class] * k, cas, sweep, f"+{per_class} synthetic images per class")
    target = largest if balance_to == "max" else balance_to
    if target is None and from_run and largest / max(1, min(real_counts)) >= TOP_UP_IMBALANCE:
        target, balance_to = largest, "max"
    if target is not None:
        add = [max(0, target - n) for n in real_counts]
        return SyntheticPlan(add, cas, sweep, f"top-up of every class to {target} images (balance_to={balance_to})")
    if from_run:
        policy = f"+{largest} synthetic images per class (real classes already balanced: a top-up adds little)"
        return SyntheticPlan([largest] * k, cas, sweep, policy)
    return SyntheticPlan(list(available), cas, sweep, "the whole synthetic set")


def export_count(
    real_counts: list[int], ratios: Sequence[float], per_class: int | None, balance_to: str | int | None
) -> int:
    """Images per class a run must export so that every arm of the plan can be served."""
    plan = plan_synthetic(real_counts, None, True, per_class, balance_to, ratios)
    needs = [plan.add or [], plan.cas or [], *plan.sweep.values()]
    return max(1, max(max(counts, default=0) for counts in needs))


def take_first(labels: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """Indices of the first ``counts[k]`` images of each class k, in the set's order."""
    y = labels.numpy()
    picked = [np.flatnonzero(y == k)[:n] for k, n in enumerate(counts)]
    return torch.from_numpy(np.sort(np.concatenate(picked))).long() if picked else torch.zeros(0, dtype=torch.long)


def fill_short(pool: ImageDataset, counts: list[int], real: ImageDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``counts[k]`` synthetic images of every class k, and where the pool has fewer (a filtered export
    dropped some, or skipped the class), repeats of ``real``'s images of the class, in order, to make up the count
    (oversampling). Returns uint8 images and labels, synthetic first."""
    idx = take_first(pool.labels, counts)
    have = torch.bincount(pool.labels[idx], minlength=len(counts)).tolist()
    repeats = []
    for k, (need, got) in enumerate(zip(counts, have)):
        members = (real.labels == k).nonzero().flatten()
        if need > got and len(members):
            repeats.append(members[torch.arange(need - got) % len(members)])
    rep = torch.cat(repeats) if repeats else torch.zeros(0, dtype=torch.long)
    return torch.cat([pool.images[idx], real.images[rep]]), torch.cat([pool.labels[idx], real.labels[rep]])


def build_arms(
    arm_names: list[str],
    train: ImageDataset,
    pool: ImageDataset | None,
    plan: SyntheticPlan,
    mixing: Mixing | None = None,
    sweep_mixing: Mixing | None = None,
) -> list[Arm]:
    """Training data of every arm: the chosen arms in ``ARMS`` order, then the sweep arms by ratio.

    ``real+synthetic`` mixes as ``mixing`` says (a mixing without synthetic images trains on the real ones
    alone), the sweep arms as ``sweep_mixing``.
    """
    real_counts, zero = train.counts, [0] * train.num_classes
    arms = []
    for name in arm_names:
        if name in NON_GENERATIVE:
            bs, alpha = name == "balanced-softmax", MIXUP_ALPHA if name == "mixup" else 0.0
            arm = Arm(name, train.images, train.labels, name == "rebalanced", real_counts, zero, bs, mixup_alpha=alpha)
            arms.append(arm)
        elif name == "real+synthetic":
            arms.append(mixed_arm(name, train, pool, plan.add, mixing))
        else:
            idx = take_first(pool.labels, plan.cas)
            counts = torch.bincount(pool.labels[idx], minlength=train.num_classes).tolist()
            arms.append(Arm(name, pool.images[idx], pool.labels[idx], False, zero, counts))
    arms += [mixed_arm(sweep_arm(r), train, pool, counts, sweep_mixing) for r, counts in plan.sweep.items()]
    return arms


def mixed_arm(name: str, train: ImageDataset, pool: ImageDataset, counts: list[int], mixing: Mixing | None) -> Arm:
    """``train`` plus ``counts[k]`` synthetic images of each class k (real repeats where ``pool`` is short), mixed as
    ``mixing`` says (the real+synthetic arm, and each validation fold's candidate in :mod:`.select`)."""
    mixing = mixing or Mixing()
    bs = mixing.balanced_softmax
    if not mixing.uses_synthetic:
        zero = [0] * train.num_classes
        return Arm(name, train.images, train.labels, mixing.balanced_batches, train.counts, zero, bs, None, mixing)
    extra_images, extra_labels = fill_short(pool, counts, train)
    images = torch.cat([train.images, extra_images])
    labels = torch.cat([train.labels, extra_labels])
    mask = torch.cat([torch.zeros(len(train), dtype=torch.bool), torch.ones(len(extra_labels), dtype=torch.bool)])
    added = torch.bincount(extra_labels, minlength=train.num_classes).tolist()  # real repeats included
    return Arm(name, images, labels, mixing.balanced_batches, train.counts, added, bs, mask, mixing)
