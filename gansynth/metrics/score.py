"""Features of a generated and a real set → the metrics record (overall, per class, alarms); no I/O.

Labels of both sets index the same ``class_names``. Thresholds of the alarms are named constants below.
"""

from __future__ import annotations

import math

import torch

from gansynth.errors import MetricError
from gansynth.metrics import formulas

COLLAPSE_THRESHOLD = 0.1  # a class whose recall or coverage is below this raises the collapse alarm
MEMORIZATION_ALARM = 0.25  # memorization share above this (≈ 5× a fresh real sample's 0.05) raises an alarm
WEAK_EXTRACTOR_ACCURACY = 0.5  # a domain classifier less accurate than this on held-out real images raises an alarm
OVERALL_METRICS = ("fid", "kid", "is", "precision", "recall", "density", "coverage", "label_fidelity", "memorization")
CLASS_METRICS = ("fid", "precision", "recall", "density", "coverage", "label_fidelity")


def check_sizes(num_generated: int, num_real: int, generated_what: str, real_what: str) -> None:
    """MetricError naming the metric and the count it needs when either set is too small for the core metrics."""
    for metric in ("fid", "precision/recall", "density/coverage"):
        need = formulas.min_samples(metric)
        if metric == "density/coverage":
            sides = [(num_real, real_what)]  # only the real side needs k+1 samples for its k-NN radii
        else:
            sides = [(num_generated, generated_what), (num_real, real_what)]
        for count, what in sides:
            if count < need:
                raise MetricError(
                    f"{what} has {count} images; {metric} needs at least {need}",
                    hint=f"give {what} at least {need} images (hundreds per class make stable numbers)",
                )


def _mean(hits: torch.Tensor) -> float | None:
    return float(hits.double().mean()) if hits.numel() else None


def overall_scores(
    generated: torch.Tensor,
    real: torch.Tensor,
    real_neighbours: torch.Tensor | None = None,
    isc_logits: torch.Tensor | None = None,
    label_hits: torch.Tensor | None = None,
) -> dict[str, float | None]:
    """Every overall metric of ``[M, F]`` generated vs ``[N, F]`` real features.

    Args:
        real_neighbours: ``formulas.real_neighbourhoods(real)`` when already known (cached with real features).
        isc_logits: ``[M, 1008]`` Inception logits of the generated images (None: IS is null).
        label_hits: ``[M]`` bool, whether the domain classifier predicts each generated image's class.
    """
    precision, recall = formulas.precision_recall(generated, real)
    out: dict[str, float | None] = {
        "fid": formulas.fid(generated, real),
        "kid": formulas.kid(generated, real),
        "is": formulas.inception_score(isc_logits) if isc_logits is not None else None,
        "precision": precision,
        "recall": recall,
        **formulas.neighbourhood_metrics(generated, real, real_neighbours),
        "label_fidelity": _mean(label_hits) if label_hits is not None else None,
    }
    return {key: out[key] for key in OVERALL_METRICS}


def class_scores(
    generated: torch.Tensor, real: torch.Tensor, label_hits: torch.Tensor | None = None
) -> dict[str, float | bool | int | None]:
    """Per-class metrics of one class's features; a metric its sample counts cannot support is None."""
    m, n = len(generated), len(real)
    out: dict[str, float | bool | int | None] = dict.fromkeys(CLASS_METRICS)
    if min(m, n) >= formulas.min_samples("fid"):
        out["fid"] = formulas.class_fid(generated, real)
    if min(m, n) >= formulas.min_samples("precision/recall"):
        out["precision"], out["recall"] = formulas.precision_recall(generated, real)
    if m >= 1 and n >= formulas.min_samples("density/coverage"):
        out["density"], out["coverage"] = formulas.density_coverage(generated, real)
    if label_hits is not None:
        out["label_fidelity"] = _mean(label_hits)
    low = [out[key] < COLLAPSE_THRESHOLD for key in ("recall", "coverage") if out[key] is not None]
    out["collapse"] = any(low)
    out["num_generated"], out["num_real"] = m, n
    return out


def _null_non_finite(record: dict) -> None:
    """Non-finite numbers (NaN/inf features, e.g. from a diverged generator) become null with a note: JSON has no
    NaN, and a NaN FID never compares as better, so the best checkpoint would stop updating."""
    rows = [("", record, OVERALL_METRICS)] + [(f"{n}/", row, CLASS_METRICS) for n, row in record["per_class"].items()]
    bad = []
    for prefix, row, keys in rows:
        for key in keys:
            if isinstance(row.get(key), float) and not math.isfinite(row[key]):
                row[key] = None
                bad.append(prefix + key)
    if bad:
        record["notes"] = [f"not finite, reported as null: {', '.join(bad[:10])} (NaN or inf in the features)"]


def per_class_scores(
    generated: torch.Tensor,
    generated_labels: torch.Tensor,
    real: torch.Tensor,
    real_labels: torch.Tensor,
    class_names: list[str],
    label_hits: torch.Tensor | None = None,
) -> dict[str, dict]:
    """``{class_name: class_scores(...)}`` over ``class_names`` (labels index them)."""
    out = {}
    for index, name in enumerate(class_names):
        g, r = generated_labels == index, real_labels == index
        out[name] = class_scores(generated[g], real[r], None if label_hits is None else label_hits[g])
    return out


def fid_summary(per_class: dict[str, dict]) -> tuple[float | None, dict | None]:
    """Mean per-class FID and the worst class ``{"class", "fid"}`` over classes that have one."""
    fids = {name: row["fid"] for name, row in per_class.items() if row["fid"] is not None}
    if not fids:
        return None, None
    worst = max(fids, key=fids.__getitem__)
    return sum(fids.values()) / len(fids), {"class": worst, "fid": fids[worst]}


def find_alarms(record: dict, heldout_accuracy: float | None) -> list[dict]:
    """Alarms ``{"kind", "class", "message"}``: collapsed classes, memorization, a weak domain extractor."""
    alarms = []
    for name, row in record["per_class"].items():
        if row["collapse"]:
            keys = [k for k in ("recall", "coverage") if row[k] is not None]
            low = " and ".join(f"{k} {row[k]:.3f}" for k in keys if row[k] < COLLAPSE_THRESHOLD)
            other = ", ".join(f"{k} {row[k]:.3f}" for k in keys if row[k] >= COLLAPSE_THRESHOLD)
            alarms.append(
                {
                    "kind": "collapse",
                    "class": name,
                    "message": f"class {name!r}: {low} below {COLLAPSE_THRESHOLD}{f' ({other})' if other else ''} — "
                    "the generated samples cover little of this class's real variety (mode collapse, or the class "
                    "is not learned yet)",
                }
            )
    memo = record.get("memorization")
    if memo is not None and memo > MEMORIZATION_ALARM:
        alarms.append(
            {
                "kind": "memorization",
                "class": None,
                "message": f"{memo:.0%} of generated images are closer to a real image than 95% of real images are "
                f"to their nearest neighbour (a fresh real sample scores ≈5%; alarm above {MEMORIZATION_ALARM:.0%}) "
                "— the generator may be copying its training images",
            }
        )
    if heldout_accuracy is not None and heldout_accuracy < WEAK_EXTRACTOR_ACCURACY:
        alarms.append(
            {
                "kind": "weak_extractor",
                "class": None,
                "message": f"the domain classifier reaches only {heldout_accuracy:.1%} held-out accuracy "
                f"(below {WEAK_EXTRACTOR_ACCURACY:.0%}); metrics from its features and label fidelity are weak",
            }
        )
    return alarms


def score(
    generated: torch.Tensor,
    generated_labels: torch.Tensor,
    real: torch.Tensor,
    real_labels: torch.Tensor,
    class_names: list[str],
    real_neighbours: torch.Tensor | None = None,
    isc_logits: torch.Tensor | None = None,
    label_hits: torch.Tensor | None = None,
    heldout_accuracy: float | None = None,
) -> dict:
    """The metrics record without its protocol: overall metrics, ``per_class``, per-class FID summary, alarms.

    Args:
        generated / real: ``[M, F]`` / ``[N, F]`` features.
        generated_labels / real_labels: ``[M]`` / ``[N]`` indices into ``class_names``.
        real_neighbours, isc_logits, label_hits: see :func:`overall_scores`.
        heldout_accuracy: the domain classifier's held-out accuracy (for the weak-extractor alarm).
    """
    record: dict = overall_scores(generated, real, real_neighbours, isc_logits, label_hits)
    record["per_class"] = per_class_scores(generated, generated_labels, real, real_labels, class_names, label_hits)
    _null_non_finite(record)
    record["per_class_fid_mean"], record["per_class_fid_worst"] = fid_summary(record["per_class"])
    record["alarms"] = find_alarms(record, heldout_accuracy)
    return record
