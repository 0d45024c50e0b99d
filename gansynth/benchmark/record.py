"""The benchmark record (``report.json``): per-arm summaries, paired comparisons, the verdict and the protocol."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TypedDict

import torch

from gansynth import __version__
from gansynth.benchmark.parallel import threads_per_run
from gansynth.benchmark.plan import NON_GENERATIVE, Arm, SyntheticPlan, sweep_arm
from gansynth.benchmark.stats import (
    HELPS,
    HURTS,
    NO_HELP,
    paired_comparison,
    sum_confusion,
    summarize,
    summarize_recall,
    verdict_line,
)
from gansynth.classify import ClassifierConfig
from gansynth.classify.mixup import MIXUP_ALPHA
from gansynth.data import ImageDataset
from gansynth.mixing import Mixing
from gansynth.report import gain_words
from gansynth.runtime import Runtime

METRICS = ("accuracy", "balanced_accuracy", "macro_f1")
VERDICT_METRIC = "balanced_accuracy"
# (arm, baseline) pairs compared when both ran, after real+synthetic vs the best non-generative arm (the verdict)
COMPARISONS = (
    ("real+synthetic", "real"),
    ("real+synthetic", "rebalanced"),
    ("real+synthetic", "balanced-softmax"),
    ("real+synthetic", "mixup"),
    ("rebalanced", "real"),
    ("balanced-softmax", "real"),
    ("mixup", "real"),
    ("synthetic", "real"),
)
VERDICT_RULE = (
    "real+synthetic against the non-generative arm (real, rebalanced, balanced-softmax, mixup: those that ran) "
    "with the highest mean balanced accuracy; paired over seeds on balanced accuracy: 'helps' when the mean "
    "difference is positive and its 95% Student-t confidence interval (mean ± t[0.975, n-1] × std/√n) lies above 0, "
    "'hurts' when it lies below 0, 'does not help' otherwise, 'inconclusive' with one seed"
)


def build_record(
    built: list[Arm],
    scores: dict[str, list[dict]],
    seconds: dict[str, list[float]],
    *,
    train: ImageDataset,
    test: ImageDataset,
    split: dict,
    base: ClassifierConfig,
    seeds: int,
    runtime: Runtime,
    plan: SyntheticPlan,
    selection: dict,
    source: dict | None,
    ratios: list[float],
    notes: list[str],
    wall_seconds: float,
    workers: int = 1,
) -> BenchmarkRecord:
    """``{"arms", "comparisons", "verdict", "best_non_generative", "selection", "confusion", "protocol",
    "recommendation"}`` from the per-seed scores of every arm and the validation choices."""
    names = train.class_names
    arms = {
        arm: {
            **{metric: summarize([run[metric] for run in runs]) for metric in METRICS},
            "per_class_recall": summarize_recall([run["per_class_recall"] for run in runs], names),
        }
        for arm, runs in scores.items()
    }
    best = best_non_generative(arms)
    comparisons = _comparisons(arms, best, ratios)
    verdict = comparisons[0]["line"] if comparisons else f"one arm only: no comparison ({NO_HELP} is not judged)"
    protocol = _protocol(
        built, seconds, train, test, split, base, seeds, runtime, plan, selection, source, ratios, notes,
        wall_seconds, workers,
    )  # fmt: skip
    confusion = {arm: sum_confusion([run["confusion"] for run in runs]) for arm, runs in scores.items()}
    return {
        "arms": arms,
        "comparisons": comparisons,
        "verdict": verdict,
        "best_non_generative": best,
        "selection": selection,
        "confusion": confusion,
        "protocol": protocol,
        "recommendation": recommendation(selection, plan, source, comparisons),
    }


def _protocol(built, seconds, train, test, split, base, seeds, runtime, plan, selection, source, ratios, notes,
              wall_seconds, workers=1) -> dict:  # fmt: skip
    """The record's ``protocol``: what was trained on what, how, on which device, in how long."""
    names = train.class_names
    return {
        "gansynth_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": _device(runtime, workers),
        "classifier": {
            **asdict(base),
            "seed": None,
            "balanced": None,
            "steps_rule": "max(min_steps, epochs × floor(real train images / batch_size)), the same for every arm"
            + ("; then grown on validation: " + selection["budget"]["rule"] if "rule" in selection["budget"] else ""),
        },
        "model": base.model,
        "epochs": base.epochs,
        "steps": base.steps,
        "seeds": list(range(seeds)),
        "arms": [arm.name for arm in built],
        "verdict_metric": VERDICT_METRIC,
        "verdict_rule": VERDICT_RULE,
        "data": {
            "real_train": train.source,
            "fingerprint": train.fingerprint,
            "class_names": list(names),
            "resolution": train.resolution,
            "channels": train.channels,
            "num_train": len(train),
            "num_test": len(test),
            "test_counts": dict(zip(names, test.counts)),
        },
        "split": split,
        "counts": {
            arm.name: {n: {"real": r, "synthetic": s} for n, r, s in zip(names, arm.real_counts, arm.synthetic_counts)}
            for arm in built
        },
        "balanced_sampling": {arm.name: arm.balanced for arm in built},
        "balanced_softmax": {arm.name: arm.balanced_softmax for arm in built},
        "mixup_alpha": {arm.name: arm.mixup_alpha for arm in built if arm.mixup_alpha > 0},
        "mixing": {arm.name: asdict(arm.mixing) for arm in built if arm.mixing is not None},
        "synthetic": None if source is None else {**source, "policy": plan.policy},
        "ratio_sweep": {f"{r:g}": sweep_arm(r) for r in ratios} or None,
        "notes": list(notes),
        "run_seconds": seconds,
        "wall_seconds": wall_seconds,
    }


def _comparisons(arms: dict, best: str | None, ratios: list[float]) -> list[dict]:
    """Paired comparisons, real+synthetic vs the best non-generative arm first; arms that did not run are skipped."""
    first = [("real+synthetic", best)] if best else []
    pairs = list(dict.fromkeys(first + list(COMPARISONS) + [(sweep_arm(r), "real") for r in ratios]))
    comparisons = []
    for arm, baseline in pairs:
        if arm in arms and baseline in arms:
            result = paired_comparison(arms[arm][VERDICT_METRIC]["values"], arms[baseline][VERDICT_METRIC]["values"])
            line = verdict_line(arm, baseline, result)
            comparisons.append({"arm": arm, "baseline": baseline, "metric": VERDICT_METRIC, **result, "line": line})
    return comparisons


def best_non_generative(arms: dict) -> str | None:
    """The non-generative arm with the highest mean balanced accuracy (earlier in ``NON_GENERATIVE`` on ties)."""
    ran = [name for name in NON_GENERATIVE if name in arms]
    return max(ran, key=lambda name: (arms[name][VERDICT_METRIC]["mean"], -ran.index(name)), default=None)


# how to train like each non-generative arm, for the recommendation
BASELINE_HOW = {
    "rebalanced": "with class-balanced batches: ClassifierConfig(balanced=True)",
    "balanced-softmax": "with balanced softmax: ClassifierConfig(balanced_softmax=True)",
    "mixup": f"with mixup: ClassifierConfig(mixup_alpha={MIXUP_ALPHA})",
}


def recommendation(selection: dict, plan: SyntheticPlan, source: dict | None, comparisons: list[dict]) -> str | None:
    """What to export and how to mix it, as a user can copy it; None when real+synthetic did not run."""
    choice = selection.get("mixing")
    if not choice or source is None:
        return None
    mixing = Mixing(**choice["chosen"])
    verdict = next((c for c in comparisons if c["arm"] == "real+synthetic"), None)
    tested = f" (on the test split: {verdict['line']})" if verdict else ""
    how = "chosen on validation" if choice.get("candidates") else "as given"
    if not mixing.uses_synthetic:
        arm = "balanced-softmax" if mixing.balanced_softmax else "rebalanced" if mixing.balanced_batches else None
        train = BASELINE_HOW.get(arm, "")  # a mixing has at most one of the two
        return f"do not add these synthetic images ({how}); train on the real images {train}".rstrip() + tested
    if verdict is not None and (verdict["verdict"] == HURTS or how == "as given" and verdict["verdict"] != HELPS):
        # the test split says this mixing loses to the best real-only training (or, where nothing chose it, does
        # not beat it): advice only, the real+synthetic arm stays the chosen one
        best = verdict["baseline"]
        lost = "lost to" if verdict["verdict"] == HURTS else "did not beat"
        return (
            f"do not add these synthetic images as mixed ({how}: {mixing.python()}): they {lost} {best}"
            f"{tested}; train on the real images {BASELINE_HOW.get(best, '')}".rstrip()
            + (
                "; or let `gansynth benchmark` choose a mixing, or none, on validation (no --mixing, or several)"
                if how == "as given"
                else ""
            )
        )
    export = (
        f"gansynth export {source['run']} --per-class {source['exported_per_class']}"
        if source.get("kind") == "run"
        else f"the synthetic set {source['path']}"
    )
    gain = choice.get("synthetic_gain")
    if gain and how == "chosen on validation":
        how += f"; {gain_words(gain)}"
    return (
        f"add {plan.policy} from {export}, mixed with gansynth.mixing.{mixing.python()} ({how}; "
        "gansynth.mixing.MixedDataset + mixed_loss in a training loop)" + tested
    )


def _device(runtime: Runtime, workers: int = 1) -> dict:
    """The machine the numbers were measured on, and how many processes shared it (``workers``)."""
    record = {
        "device": str(runtime.device),
        "precision": runtime.precision,
        "compile": runtime.compile,
        "torch": torch.__version__,
        "torch_threads": threads_per_run(workers),
        "workers": workers,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    if runtime.device.type == "cuda":
        record["gpu"] = torch.cuda.get_device_name(runtime.device)
    return record


class ArmScores(TypedDict):
    """One arm's scores over seeds: ``{"mean", "std", "values"}`` per metric, and per-class recall."""

    accuracy: dict
    balanced_accuracy: dict
    macro_f1: dict
    per_class_recall: dict[str, dict]


class BenchmarkRecord(TypedDict):
    """``report.json``: what :func:`build_record` makes and :class:`~gansynth.benchmark.BenchmarkResult` holds."""

    arms: dict[str, ArmScores]
    comparisons: list[dict]  # paired differences: arm, baseline, metric, mean, CI, verdict, line
    verdict: str  # the first comparison's line: real+synthetic vs the best non-generative arm
    best_non_generative: str | None
    selection: dict  # the validation choices: budget, mixing and the candidates' scores
    confusion: dict[str, list[list[int]]]
    protocol: dict  # data, split, counts, classifier, device, seeds, notes, timings
    recommendation: str  # what to export and how to mix it, for a user to copy
