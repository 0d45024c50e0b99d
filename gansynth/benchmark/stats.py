"""Benchmark statistics: per-arm summaries over seeds and the paired verdict — pure math, no I/O.

The verdict rule. For arms A and B trained with the same seeds, let d_s = score_A(s) − score_B(s) (balanced
accuracy, one value per seed). With n seeds, mean m, sample std s (ddof=1) and standard error se = s / √n, the
95% confidence interval of the mean paired difference is m ± t·se with t the two-sided 95% Student-t quantile on
n − 1 degrees of freedom (4.30 for 3 seeds, 2.78 for 5, → 1.96 for many; "about 2 standard errors").

- **helps**: m > 0 and the whole interval is above 0 (m > t·se);
- **hurts**: m < 0 and the whole interval is below 0;
- **does not help**: otherwise (no difference distinguishable from seed noise);
- **inconclusive**: fewer than 2 seeds (no spread to judge against).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

HELPS, HURTS, NO_HELP, INCONCLUSIVE = "helps", "hurts", "does not help", "inconclusive"
CONFIDENCE = 0.95
POINTS = 100.0  # fractions → percentage points in messages


def summarize(values: Sequence[float]) -> dict:
    """``{"mean", "std", "values"}`` of one metric over seeds; std is the sample std (ddof=1), 0 for one value."""
    array = np.asarray(values, dtype=np.float64)
    std = float(array.std(ddof=1)) if array.size > 1 else 0.0
    return {"mean": float(array.mean()), "std": std, "values": [float(v) for v in array]}


def summarize_recall(per_seed: Sequence[dict[str, float | None]], class_names: Sequence[str]) -> dict:
    """``{class: {"mean", "std"}}`` of per-class recall over seeds (None where the class has no test images)."""
    out = {}
    for name in class_names:
        values = [run[name] for run in per_seed if run.get(name) is not None]
        if not values:
            out[name] = {"mean": None, "std": None}
        else:
            summary = summarize(values)
            out[name] = {"mean": summary["mean"], "std": summary["std"]}
    return out


def sum_confusion(per_seed: Sequence[Sequence[Sequence[int]]]) -> list[list[int]]:
    """Element-wise sum of K×K confusion matrices (rows = true class, columns = predicted)."""
    return np.sum(np.asarray(per_seed, dtype=np.int64), axis=0).tolist()


def t_quantile(dof: int, confidence: float = CONFIDENCE) -> float:
    """Two-sided Student-t quantile for ``dof`` degrees of freedom (e.g. 4.303 for 2 at 95%)."""
    from scipy.stats import t

    return float(t.ppf(0.5 + confidence / 2, dof))


def paired_comparison(arm: Sequence[float], baseline: Sequence[float]) -> dict:
    """Paired difference of two arms' per-seed scores and its verdict (see the module docstring).

    Args:
        arm: the arm's score per seed, fractions in [0, 1].
        baseline: the baseline's score for the same seeds, in the same order.

    Returns:
        ``{"mean", "std", "se", "ci95": [low, high], "n", "verdict"}``, differences as fractions; ``ci95`` is None
        with fewer than 2 seeds.
    """
    if len(arm) != len(baseline) or not arm:
        raise ValueError(f"paired comparison needs equal, non-empty seed lists, got {len(arm)} and {len(baseline)}")
    d = np.asarray(arm, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    n, mean = int(d.size), float(d.mean())
    if n < 2:
        return {"mean": mean, "std": 0.0, "se": None, "ci95": None, "n": n, "verdict": INCONCLUSIVE}
    std = float(d.std(ddof=1))
    se = std / math.sqrt(n)
    half = t_quantile(n - 1) * se
    low, high = mean - half, mean + half
    verdict = HELPS if mean > 0 and low > 0 else HURTS if mean < 0 and high < 0 else NO_HELP
    return {"mean": mean, "std": std, "se": se, "ci95": [low, high], "n": n, "verdict": verdict}


def verdict_line(arm: str, baseline: str, comparison: dict, metric: str = "balanced-accuracy") -> str:
    """One sentence: ``real+synthetic vs real: +3.1 ± 0.8 balanced-accuracy points over 5 seeds (paired; ...)``."""
    n, mean, std = comparison["n"], comparison["mean"] * POINTS, comparison["std"] * POINTS
    seeds = f"{n} seed{'s' if n != 1 else ''}"
    if comparison["ci95"] is None:
        detail = "paired; one seed gives no spread to judge"
    else:
        low, high = (v * POINTS for v in comparison["ci95"])
        detail = f"paired; mean ± std of the differences, 95% CI {low:+.1f} to {high:+.1f}"
    verdict = comparison["verdict"]
    return f"{arm} vs {baseline}: {mean:+.1f} ± {std:.1f} {metric} points over {seeds} ({detail}) → {verdict}"
