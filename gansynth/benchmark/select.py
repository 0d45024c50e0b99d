"""Choices made on validation data: the classifier budget and the mixing of ``real+synthetic``. Never the test split.

A stratified validation split is carved from the real *training* images. On it:

- **budget** (``budget="auto"``): real-only training starts at the fixed rule's step count S₀ and doubles
  (S₀, 2S₀, 4S₀, …, at most :data:`MAX_DOUBLINGS` times) until one doubling gains less than
  :data:`CONVERGED_GAIN` balanced accuracy on validation; the last step count that still gained is kept, scaled by
  (real training images / images trained on during the search), and every arm trains that many steps;
- **mixing**: every candidate :class:`~gansynth.mixing.Mixing`, "no synthetic" included, trains on the fit part
  (+ the synthetic images of ``real+synthetic``) with that budget and is scored on validation by balanced accuracy
  and class-balanced log-loss (the mean over classes of the mean −log p(true class)); see :data:`SELECTION_RULE`.
  The log-loss separates candidates when a small validation split saturates balanced accuracy.

The functions here receive the training images only: the test split is not among their arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import torch

from gansynth.classify import ClassifierConfig, stratified_split, train_classifier
from gansynth.data import ImageDataset
from gansynth.mixing import NO_SYNTHETIC, Mixing
from gansynth.runtime import Runtime

VALIDATION_FRACTION = 0.2
VALIDATION_SEED = 1  # a different shuffle from the held-out test split's seed 0
MAX_DOUBLINGS = 3  # the budget search stops at 8 × the fixed rule's steps
CONVERGED_GAIN = 0.005  # a doubling that gains less than half a balanced-accuracy point: converged
MIN_GAIN = 0.005  # synthetic images must earn their place by half a point on validation
LOSS_GAIN = 0.1  # ... or, at no loss of balanced accuracy, by a 10% lower class-balanced validation log-loss
PROBABILITY_FLOOR = 1e-6  # −log p is capped at ~13.8 so that one confidently wrong image cannot dominate
LEGACY = Mixing(weight=1.0, label_smoothing=0.1, max_share=1.0)  # the old default: a whole-run top-up at full weight
CANDIDATES = (
    NO_SYNTHETIC,
    Mixing(weight=0.0, balanced_softmax=True),
    Mixing(),  # DiffuLT: weight 0.3, synthetic share at most half a batch, the whole run
    LEGACY,
    Mixing(schedule="deferred", start=0.5),
    Mixing(weight=1.0, schedule="head", start=0.75),
    Mixing(balanced_softmax=True),
    Mixing(schedule="deferred", start=0.5, balanced_softmax=True),
)
SELECTION_RULE = (
    f"in each group (without / with synthetic images) the best candidate is the one with the lowest class-balanced "
    f"validation log-loss among those within {MIN_GAIN * 100:g} points of the group's highest validation balanced "
    f"accuracy (earlier on ties); the best with synthetic images is chosen when it beats the best without by "
    f"{MIN_GAIN * 100:g} balanced-accuracy points, or loses no balanced accuracy and has a {LOSS_GAIN:.0%} lower "
    "log-loss; otherwise the best without"
)
BUDGET_RULE = (
    f"real-only steps double from the fixed rule's until a doubling gains < {CONVERGED_GAIN * 100:g} validation "
    f"balanced-accuracy points (at most {2**MAX_DOUBLINGS}×); the last count that gained, × real train images / "
    "fit images, for every arm"
)


@dataclass
class Validation:
    """The fit / validation parts of the real training set (both real; the test split is elsewhere)."""

    fit: ImageDataset
    validation: ImageDataset
    record: dict


def carve_validation(train: ImageDataset, fraction: float = VALIDATION_FRACTION, seed: int = VALIDATION_SEED):
    """Stratified fit / validation parts of ``train``; raises DataError when a class is too small to split."""
    fit_idx, val_idx = stratified_split(train.labels, fraction, seed)
    fit, validation = train.subset(fit_idx), train.subset(val_idx)
    record = {
        "fraction": fraction,
        "seed": seed,
        "num_fit": len(fit),
        "num_validation": len(validation),
        "validation_indices": val_idx.tolist(),  # indices into the real training set
    }
    return Validation(fit, validation, record)


Trainer = Callable[[ImageDataset, torch.Tensor | None, torch.Tensor | None, Mixing, int, int], tuple[float, float]]


def balanced_accuracy(probabilities: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean recall over the classes present in ``labels`` (a tiny validation split may lack a class)."""
    correct = probabilities.argmax(dim=1) == labels
    return float(torch.stack([correct[labels == k].double().mean() for k in labels.unique()]).mean())


def balanced_log_loss(probabilities: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over the classes present of the mean −log p(true class); ``probabilities`` ``[N, K]``, labels ``[N]``."""
    p = probabilities[torch.arange(len(labels)), labels].double().clamp_min(PROBABILITY_FLOOR)
    nll = -p.log()
    per_class = [nll[labels == k].mean() for k in labels.unique()]
    return float(torch.stack(per_class).mean())


def validation_scorer(validation: ImageDataset, base: ClassifierConfig, runtime: Runtime) -> Trainer:
    """``score(fit, extra_images, extra_labels, mixing, steps, seed)`` → validation (balanced accuracy, log-loss)."""

    def score(
        fit: ImageDataset,
        extra_images: torch.Tensor | None,
        extra_labels: torch.Tensor | None,
        mixing: Mixing,
        steps: int,
        seed: int,
    ) -> tuple[float, float]:
        images, labels, mask = fit.images, fit.labels, None
        if extra_images is not None and mixing.uses_synthetic and len(extra_labels):
            images, labels = torch.cat([fit.images, extra_images]), torch.cat([fit.labels, extra_labels])
            mask = torch.cat([torch.zeros(len(fit), dtype=torch.bool), torch.ones(len(extra_labels), dtype=torch.bool)])
        config = replace(base, steps=steps, seed=seed, balanced=False, balanced_softmax=mixing.balanced_softmax)
        classifier = train_classifier(
            images,
            labels,
            fit.num_classes,
            config,
            runtime,
            synthetic=mask,
            mixing=mixing if mask is not None else None,
        )
        probabilities = classifier.predict_proba(validation.images)
        return balanced_accuracy(probabilities, validation.labels), balanced_log_loss(probabilities, validation.labels)

    return score


def grow_budget(
    fit: ImageDataset, start_steps: int, score: Trainer, seeds: Sequence[int], log: Callable[[str], None]
) -> dict:
    """Double real-only steps from ``start_steps`` until validation stops gaining; see the module docstring.

    Returns:
        ``{"history": [{"steps", "validation_balanced_accuracy"}], "steps": kept count (on ``fit``),
        "converged": bool, "rule"}``.
    """
    history: list[dict] = []
    kept, converged = start_steps, False
    for k in range(MAX_DOUBLINGS + 1):
        steps = start_steps * 2**k
        value, loss = _mean([score(fit, None, None, NO_SYNTHETIC, steps, s) for s in seeds])
        history.append({"steps": steps, "validation_balanced_accuracy": value, "validation_log_loss": loss})
        log(f"budget: {steps} steps → validation balanced accuracy {value:.4f}, log-loss {loss:.4f}")
        if k and value < history[k - 1]["validation_balanced_accuracy"] + CONVERGED_GAIN:
            converged = True
            break
        kept = steps
    return {"history": history, "steps": kept, "converged": converged, "rule": BUDGET_RULE}


def choose_mixing(
    fit: ImageDataset,
    synthetic_images: torch.Tensor,
    synthetic_labels: torch.Tensor,
    candidates: Sequence[Mixing],
    steps: int,
    score: Trainer,
    seeds: Sequence[int],
    log: Callable[[str], None],
    known: dict[Mixing, tuple[float, float]] | None = None,
) -> dict:
    """Score every candidate on validation and apply :data:`SELECTION_RULE`.

    Args:
        fit: the real images trained on (the training set minus validation).
        synthetic_images / synthetic_labels: the synthetic images real+synthetic adds, uint8 ``[M, C, R, R]``.
        candidates: mixings to compare; "no synthetic" (weight 0) is added when absent.
        steps: optimizer steps per candidate run.
        score: see :func:`validation_scorer`.
        seeds: classifier seeds averaged per candidate.
        log: progress lines.
        known: validation (balanced accuracy, log-loss) already measured (the budget search's real-only run).

    Returns:
        ``{"candidates": [{"label", "mixing", "uses_synthetic", "validation_balanced_accuracy",
        "validation_log_loss"}], "chosen": Mixing, "chosen_label", "rule"}``.
    """
    pool = list(dict.fromkeys([NO_SYNTHETIC, *candidates]))  # order kept, duplicates dropped
    rows = []
    for mixing in pool:
        if known and mixing in known:
            value, loss = known[mixing]
        else:
            value, loss = _mean([score(fit, synthetic_images, synthetic_labels, mixing, steps, s) for s in seeds])
        rows.append({"label": mixing.describe(), "mixing": asdict(mixing), "uses_synthetic": mixing.uses_synthetic,
                     "validation_balanced_accuracy": value, "validation_log_loss": loss})  # fmt: skip
        log(f"mixing {mixing.describe():<40} validation balanced accuracy {value:.4f}, log-loss {loss:.4f}")
    chosen = pick(
        pool, [row["validation_balanced_accuracy"] for row in rows], [row["validation_log_loss"] for row in rows]
    )
    return {"candidates": rows, "chosen": chosen, "chosen_label": chosen.describe(), "rule": SELECTION_RULE}


def pick(candidates: Sequence[Mixing], scores: Sequence[float], losses: Sequence[float] | None = None) -> Mixing:
    """The winner under :data:`SELECTION_RULE` (pure: no training); ``losses`` None → balanced accuracy alone."""
    by_loss = losses is not None
    rows = list(zip(candidates, scores, losses if by_loss else [0.0] * len(scores)))
    without = _best([r for r in rows if not r[0].uses_synthetic])
    with_synthetic = _best([r for r in rows if r[0].uses_synthetic])
    if without is None:
        return with_synthetic[0] if with_synthetic else NO_SYNTHETIC
    if with_synthetic is None:
        return without[0]
    gains = with_synthetic[1] >= without[1] + MIN_GAIN
    lower_loss = by_loss and with_synthetic[1] >= without[1] and with_synthetic[2] <= (1 - LOSS_GAIN) * without[2]
    return with_synthetic[0] if gains or lower_loss else without[0]


def _best(rows: list[tuple[Mixing, float, float]]) -> tuple[Mixing, float, float] | None:
    """Lowest log-loss among the rows within MIN_GAIN of the highest balanced accuracy (the first on ties)."""
    if not rows:
        return None
    top = max(score for _, score, _ in rows)
    close = [row for row in rows if row[1] > top - MIN_GAIN]
    return min(close, key=lambda row: row[2])


def _mean(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    """Element-wise mean of (balanced accuracy, log-loss) pairs over seeds."""
    return sum(p[0] for p in pairs) / len(pairs), sum(p[1] for p in pairs) / len(pairs)
