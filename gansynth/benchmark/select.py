"""Choices made on validation data: the classifier budget and the mixing of ``real+synthetic``. Never the test split.

Validation data are carved from the real *training* images, by stratified K-fold cross-validation
(:data:`VALIDATION_FOLDS`, 5 by default): every training image is validated once, by classifiers trained on the
other folds, and the out-of-fold predictions of all folds are pooled before scoring. A single 20% split of a small or
long-tailed set is saturated (98 digits-LT images, 2–3 per tail class: real-only scored 100%), so it could not see a
gain of a point or two; the pooled folds validate every image (all 12 of a 12-image tail class). ``folds=1`` is a
single stratified split of ``fraction`` (cheaper: one classifier per candidate instead of K). On it:

- **budget** (``budget="auto"``): real-only training starts at the fixed rule's step count S₀ and doubles
  (S₀, 2S₀, 4S₀, …, at most :data:`MAX_DOUBLINGS` times) until one doubling gains less than
  :data:`CONVERGED_GAIN` balanced accuracy on validation; the last step count that still gained is kept, scaled by
  (real training images / images of a fold's fit part), and every arm trains that many steps;
- **mixing**: every candidate :class:`~gansynth.mixing.Mixing`, "no synthetic" included, trains on each fold's fit
  part (+ the synthetic images of ``real+synthetic``, with repeats of the fit part's real images where a filtered
  export is short) with that budget and is scored on the pooled validation predictions by balanced accuracy and
  class-balanced log-loss (the mean over classes of the mean −log p(true class)); see :data:`SELECTION_RULE`.
  With the choice comes the validation gain of the best candidate with synthetic images over the best without, with
  a 95% interval from a class-stratified paired bootstrap over the validated images (:func:`gain_interval`): with
  2–12 images in a tail class, a gain of a point or two on the folds can be noise, and the interval says so.

The classifier runs go through :func:`gansynth.benchmark.parallel.run_classifiers` (worker processes on a CPU when
the benchmark has them). The functions here receive the training images only: the test split is not among their
arguments. The generator whose images are mixed in was usually fitted on all training images, the validated ones
included; its export drops near-copies of training images (:mod:`gansynth.exporter.filter`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from gansynth.benchmark.parallel import run_classifiers
from gansynth.benchmark.plan import Arm, mixed_arm
from gansynth.classify import ClassifierConfig, stratified_split
from gansynth.data import ImageDataset
from gansynth.errors import DataError
from gansynth.mixing import NO_SYNTHETIC, Mixing
from gansynth.report import gain_words
from gansynth.runtime import Runtime

VALIDATION_FRACTION = 0.2  # the validation share of a single split (folds=1)
VALIDATION_FOLDS = 5  # K-fold cross-validation: each image validated once, by classifiers trained on 4/5 of the set
VALIDATION_SEED = 1  # a different shuffle from the held-out test split's seed 0
MAX_DOUBLINGS = 3  # the budget search stops at 8 × the fixed rule's steps
CONVERGED_GAIN = 0.005  # a doubling that gains less than half a balanced-accuracy point: converged
MIN_GAIN = 0.005  # synthetic images must earn their place by half a point on validation
LOSS_GAIN = 0.1  # ... or, at no loss of balanced accuracy, by a 10% lower class-balanced validation log-loss
GAIN_RESAMPLES = 2000  # class-stratified bootstrap draws of the validated images behind the gain's interval
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
    Mixing(weight=0.0, balanced_batches=True),  # the rebalanced arm: class-balanced resampling, no synthetic images
    Mixing(balanced_batches=True),  # weight 0.3 with class-balanced real and synthetic parts of every batch
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
    """How the real training set is cut for validation: ``folds`` pairs of (fit, validation) index tensors."""

    train: ImageDataset
    folds: list[tuple[torch.Tensor, torch.Tensor]]
    record: dict

    @property
    def fit_size(self) -> int:
        """Real images a validation classifier trains on (the mean over the folds, rounded)."""
        return round(sum(len(fit) for fit, _ in self.folds) / len(self.folds))


def carve_validation(
    train: ImageDataset,
    fraction: float = VALIDATION_FRACTION,
    seed: int = VALIDATION_SEED,
    folds: int = VALIDATION_FOLDS,
) -> Validation:
    """Stratified K-fold parts of ``train`` (``folds`` ≥ 2), or one stratified split of ``fraction`` (``folds=1``).

    Raises:
        DataError: a class with fewer than 2 images, or too few images for the folds.
    """
    if folds == 1:
        fit_idx, val_idx = stratified_split(train.labels, fraction, seed)
        parts = [(fit_idx, val_idx)]
        extra = {"fraction": fraction, "validation_indices": val_idx.tolist()}  # indices into the training set
    else:
        parts, fold_of = stratified_folds(train.labels, folds, seed)
        extra = {"fold_of": fold_of}  # each training image's validation fold
    num_validation = sum(len(val) for _, val in parts)
    record = {"folds": folds, "seed": seed, "num_fit": round(sum(len(f) for f, _ in parts) / len(parts)),
              "num_validation": num_validation, **extra}  # fmt: skip
    return Validation(train, parts, record)


def stratified_folds(
    labels: torch.Tensor, folds: int, seed: int
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[int]]:
    """K stratified folds: each class shuffled (``seed``) and dealt round-robin, continuing from the previous class
    so that fold sizes differ by at most one. Returns ``[(fit, validation)]`` sorted index tensors, and each
    image's fold."""
    y = torch.as_tensor(labels).cpu().numpy()
    classes, counts = np.unique(y, return_counts=True)
    few = [f"class {int(c)} has {int(n)} image" + ("s" if n != 1 else "") for c, n in zip(classes, counts) if n < 2]
    if few or len(y) < folds:
        raise DataError(
            f"cannot cross-validate in {folds} folds: " + (", ".join(few) if few else f"only {len(y)} images"),
            hint="each class needs at least 2 images; add images, or use fewer --validation-folds",
        )
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), dtype=np.int64)
    dealt = 0
    for k in classes:
        members = rng.permutation(np.flatnonzero(y == k))
        fold_of[members] = (dealt + np.arange(len(members))) % folds
        dealt += len(members)
    parts = [
        (torch.from_numpy(np.flatnonzero(fold_of != f)), torch.from_numpy(np.flatnonzero(fold_of == f)))
        for f in range(folds)
    ]
    return parts, fold_of.tolist()


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


class ValidationScorer:
    """Validation (balanced accuracy, log-loss) of candidate mixings: one classifier per fold and seed, trained on
    the fold's fit part (+ synthetic images), its predictions on the fold's validation images pooled over the folds.

    Args:
        validation: the folds of the real training set.
        base: the classifier config (its steps are replaced per call).
        runtime: device and precision of the runs.
        seeds: classifier seeds 0..seeds-1; scores are averaged over them.
        workers: processes for the runs (:func:`gansynth.benchmark.parallel.plan_workers`).
        pool / add: the synthetic images and how many of each class ``real+synthetic`` adds (None: no synthetic).
        say: progress lines.
    """

    def __init__(
        self,
        validation: Validation,
        base: ClassifierConfig,
        runtime: Runtime,
        seeds: int,
        workers: int = 1,
        pool: ImageDataset | None = None,
        add: list[int] | None = None,
        say: Callable[[str], None] = print,
    ) -> None:
        self.validation, self.base, self.runtime, self.seeds, self.workers = validation, base, runtime, seeds, workers
        self.pool, self.add, self.say = pool, add, say
        self.labels = validation.train.labels[torch.cat([val for _, val in validation.folds])]  # validated, in order
        self.correct: dict[tuple[Mixing, int], torch.Tensor] = {}  # (mixing, steps) → share of seeds right per image

    def __call__(self, mixings: Sequence[Mixing], steps: int) -> list[tuple[float, float]]:
        """Scores of ``mixings`` trained ``steps`` steps, in order, each averaged over the seeds."""
        folds = self.validation.folds
        arms = [self._arm(mixing, f) for mixing in mixings for f in range(len(folds))]
        config = replace(self.base, steps=steps)
        found: dict[tuple[int, int], torch.Tensor] = {}
        for index, seed, result, _ in run_classifiers(
            arms, None, config, self.seeds, self.runtime, self.workers, self.say
        ):
            found[index, seed] = result["probabilities"]
        k, labels = len(folds), self.labels
        scores = []
        for m, mixing in enumerate(mixings):
            per_seed, right = [], torch.zeros(len(labels), dtype=torch.float64)
            for seed in range(self.seeds):
                pooled = torch.cat([found[m * k + f, seed] for f in range(k)])  # out-of-fold [N_validated, K]
                per_seed.append((balanced_accuracy(pooled, labels), balanced_log_loss(pooled, labels)))
                right += (pooled.argmax(dim=1) == labels).double() / self.seeds
            self.correct[mixing, steps] = right
            scores.append(_mean(per_seed))
        return scores

    def _arm(self, mixing: Mixing, fold: int) -> Arm:
        """A classifier run of ``mixing`` on fold ``fold``'s fit part, scored on its validation images."""
        fit_idx, val_idx = self.validation.folds[fold]
        train = self.validation.train
        fit = train.subset(fit_idx)
        # the real+synthetic arm's data; real repeats come from this fit part only
        arm = mixed_arm(f"{mixing.describe()} (fold {fold})", fit, self.pool, self.add, mixing)
        return replace(arm, holdout=train.images[val_idx])


def grow_budget(score: ValidationScorer, start_steps: int, log: Callable[[str], None]) -> dict:
    """Double real-only steps from ``start_steps`` until validation stops gaining; see the module docstring.

    Returns:
        ``{"history": [{"steps", "validation_balanced_accuracy", "validation_log_loss"}], "steps": kept count (on a
        fit part), "converged": bool, "rule"}``.
    """
    history: list[dict] = []
    kept, converged = start_steps, False
    for k in range(MAX_DOUBLINGS + 1):
        steps = start_steps * 2**k
        [(value, loss)] = score([NO_SYNTHETIC], steps)
        history.append({"steps": steps, "validation_balanced_accuracy": value, "validation_log_loss": loss})
        log(f"budget: {steps} steps → validation balanced accuracy {value:.4f}, log-loss {loss:.4f}")
        if k and value < history[k - 1]["validation_balanced_accuracy"] + CONVERGED_GAIN:
            converged = True
            break
        kept = steps
    return {"history": history, "steps": kept, "converged": converged, "rule": BUDGET_RULE}


def choose_mixing(
    candidates: Sequence[Mixing],
    steps: int,
    score: ValidationScorer,
    log: Callable[[str], None],
    known: dict[Mixing, tuple[float, float]] | None = None,
) -> dict:
    """Score every candidate on validation and apply :data:`SELECTION_RULE`.

    Args:
        candidates: mixings to compare; "no synthetic" (weight 0) is added when absent.
        steps: optimizer steps per candidate run.
        score: the folds, the classifier and the synthetic images (:class:`ValidationScorer`).
        log: progress lines.
        known: validation (balanced accuracy, log-loss) already measured (the budget search's real-only run).

    Returns:
        ``{"candidates": [{"label", "mixing", "uses_synthetic", "validation_balanced_accuracy",
        "validation_log_loss"}], "chosen": Mixing, "chosen_label", "rule", "synthetic_gain"}``;
        ``synthetic_gain``: the best with synthetic images against the best without (:func:`gain_interval`, with
        their labels), None when a group is empty or its per-image outcomes were not measured by ``score``.
    """
    known = dict(known or {})
    pool = list(dict.fromkeys([NO_SYNTHETIC, *candidates]))  # order kept, duplicates dropped
    todo = [mixing for mixing in pool if mixing not in known]
    known.update(zip(todo, score(todo, steps) if todo else []))
    rows = []
    for mixing in pool:
        value, loss = known[mixing]
        rows.append({"label": mixing.describe(), "mixing": asdict(mixing), "uses_synthetic": mixing.uses_synthetic,
                     "validation_balanced_accuracy": value, "validation_log_loss": loss})  # fmt: skip
        log(f"mixing {mixing.describe():<40} validation balanced accuracy {value:.4f}, log-loss {loss:.4f}")
    scores, losses = [row["validation_balanced_accuracy"] for row in rows], [row["validation_log_loss"] for row in rows]
    chosen = pick(pool, scores, losses)
    gain = _synthetic_gain(list(zip(pool, scores, losses)), score, steps)
    if gain is not None:
        log(gain_words(gain))
    return {"candidates": rows, "chosen": chosen, "chosen_label": chosen.describe(), "rule": SELECTION_RULE,
            "synthetic_gain": gain}  # fmt: skip


def pick(candidates: Sequence[Mixing], scores: Sequence[float], losses: Sequence[float] | None = None) -> Mixing:
    """The winner under :data:`SELECTION_RULE` (pure: no training); ``losses`` None → balanced accuracy alone."""
    by_loss = losses is not None
    rows = list(zip(candidates, scores, losses if by_loss else [0.0] * len(scores)))
    without, with_synthetic = _group_bests(rows)
    if without is None:
        return with_synthetic[0] if with_synthetic else NO_SYNTHETIC
    if with_synthetic is None:
        return without[0]
    gains = with_synthetic[1] >= without[1] + MIN_GAIN
    lower_loss = by_loss and with_synthetic[1] >= without[1] and with_synthetic[2] <= (1 - LOSS_GAIN) * without[2]
    return with_synthetic[0] if gains or lower_loss else without[0]


def gain_interval(
    correct: torch.Tensor, baseline: torch.Tensor, labels: torch.Tensor, resamples: int = GAIN_RESAMPLES, seed: int = 0
) -> dict:
    """Balanced-accuracy gain of one classifier over another on the same images, with a 95% paired bootstrap interval.

    Args:
        correct / baseline: ``[N]`` per-image outcomes in [0, 1] (the share of seeds that got the image right).
        labels: ``[N]`` classes of the images.
        resamples: bootstrap draws; each redraws every class's images with replacement (class sizes kept, both
            classifiers judged on the same draw), as balanced accuracy weighs each class equally.
        seed: seed of the draws.

    Returns:
        ``{"mean", "ci95": [low, high], "resamples"}`` in balanced-accuracy units (0.01 = one point).
    """
    rng = np.random.default_rng(seed)
    diff = (torch.as_tensor(correct, dtype=torch.float64) - torch.as_tensor(baseline, dtype=torch.float64)).numpy()
    y = torch.as_tensor(labels).cpu().numpy()
    per_class = [diff[y == k] for k in np.unique(y)]
    draws = np.mean([d[rng.integers(0, len(d), size=(resamples, len(d)))].mean(axis=1) for d in per_class], axis=0)
    low, high = np.percentile(draws, [2.5, 97.5])
    return {"mean": float(np.mean([d.mean() for d in per_class])), "ci95": [float(low), float(high)],
            "resamples": resamples}  # fmt: skip


def _synthetic_gain(rows: list[tuple[Mixing, float, float]], score: ValidationScorer, steps: int) -> dict | None:
    """:func:`gain_interval` of the best candidate with synthetic images over the best without (``_best``)."""
    without, with_synthetic = _group_bests(rows)
    if with_synthetic is None or without is None:
        return None
    a, b = score.correct.get((with_synthetic[0], steps)), score.correct.get((without[0], steps))
    if a is None or b is None:
        return None
    gain = gain_interval(a, b, score.labels)
    return {"with": with_synthetic[0].describe(), "without": without[0].describe(), **gain}


def _group_bests(rows: list[tuple[Mixing, float, float]]) -> tuple[tuple | None, tuple | None]:
    """``_best`` of the candidates without synthetic images, and of those with them."""
    return _best([r for r in rows if not r[0].uses_synthetic]), _best([r for r in rows if r[0].uses_synthetic])


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
