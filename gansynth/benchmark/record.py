"""The benchmark record (``report.json``): per-arm summaries, paired comparisons, the verdict and the protocol."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict
from datetime import UTC, datetime

import torch

from gansynth import __version__
from gansynth.benchmark.plan import Arm, SyntheticPlan, sweep_arm
from gansynth.benchmark.stats import (
    NO_HELP,
    paired_comparison,
    sum_confusion,
    summarize,
    summarize_recall,
    verdict_line,
)
from gansynth.classify import ClassifierConfig
from gansynth.data import ImageDataset
from gansynth.runtime import Runtime

METRICS = ("accuracy", "balanced_accuracy", "macro_f1")
VERDICT_METRIC = "balanced_accuracy"
# (arm, baseline) pairs compared when both ran; the first available one gives the verdict line
COMPARISONS = (
    ("real+synthetic", "real"),
    ("real+synthetic", "rebalanced"),
    ("rebalanced", "real"),
    ("synthetic", "real"),
)
VERDICT_RULE = (
    "paired over seeds on balanced accuracy: 'helps' when the mean difference is positive and its 95% Student-t "
    "confidence interval (mean ± t[0.975, n-1] × std/√n) lies above 0, 'hurts' when it lies below 0, "
    "'does not help' otherwise, 'inconclusive' with one seed"
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
    source: dict | None,
    ratios: list[float],
    notes: list[str],
    wall_seconds: float,
) -> dict:
    """``{"arms", "comparisons", "verdict", "confusion", "protocol"}`` from the per-seed scores of every arm."""
    names = train.class_names
    arms = {
        arm: {
            **{metric: summarize([run[metric] for run in runs]) for metric in METRICS},
            "per_class_recall": summarize_recall([run["per_class_recall"] for run in runs], names),
        }
        for arm, runs in scores.items()
    }
    pairs = list(COMPARISONS) + [(sweep_arm(r), "real") for r in ratios]
    comparisons = []
    for arm, baseline in pairs:
        if arm in arms and baseline in arms:
            result = paired_comparison(arms[arm][VERDICT_METRIC]["values"], arms[baseline][VERDICT_METRIC]["values"])
            comparisons.append(
                {
                    "arm": arm,
                    "baseline": baseline,
                    "metric": VERDICT_METRIC,
                    **result,
                    "line": verdict_line(arm, baseline, result),
                }
            )
    verdict = comparisons[0]["line"] if comparisons else f"one arm only: no comparison ({NO_HELP} is not judged)"
    protocol = {
        "gansynth_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": _device(runtime),
        "classifier": {
            **asdict(base),
            "seed": None,
            "balanced": None,
            "steps_rule": "max(min_steps, epochs × floor(real train images / batch_size)), the same for every arm",
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
        "synthetic": None if source is None else {**source, "policy": plan.policy},
        "ratio_sweep": {f"{r:g}": sweep_arm(r) for r in ratios} or None,
        "notes": list(notes),
        "run_seconds": seconds,
        "wall_seconds": wall_seconds,
    }
    confusion = {arm: sum_confusion([run["confusion"] for run in runs]) for arm, runs in scores.items()}
    return {"arms": arms, "comparisons": comparisons, "verdict": verdict, "confusion": confusion, "protocol": protocol}


def _device(runtime: Runtime) -> dict:
    """The machine the numbers were measured on."""
    record = {
        "device": str(runtime.device),
        "precision": runtime.precision,
        "compile": runtime.compile,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    if runtime.device.type == "cuda":
        record["gpu"] = torch.cuda.get_device_name(runtime.device)
    return record
