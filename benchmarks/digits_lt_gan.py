"""GAN diversity on digits-LT (ρ = 10): fit, then per-class recall, coverage and label fidelity of the tail classes.

digits-LT: the split of the "Synthetic data that helps" benchmark (``digits_lt.prepare``: a stratified third of every
class is the test set, seed 0; the rest, a seeded random subset of n_k = round(n_0 · ρ^(−k/9)) images of digit k,
digit 0 the head, is the training set). Until 2026-12-05 (seventh pass) this script drew its own random subset of the
same sizes (204 of the 486 ρ = 10 training images in common). The GAN is fitted on the training set only and
evaluated against it (domain extractor); ``digits_lt_heldout.py`` scores a run against the images it never saw.

    python benchmarks/digits_lt_gan.py NAME [section.key=value ...] [--ratio 10] [--recipe digits]

Prints one JSON line: overall metrics, the three tail classes' recall / coverage / label fidelity, alarms, fit time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from digits_lt import DEFAULT_OUT, prepare


def _r(value: float | None) -> float | None:
    """Rounded, or None where the metric is undefined (a class with too few real images for k-NN recall)."""
    return None if value is None else round(value, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--ratio", type=float, default=10.0)
    parser.add_argument("--recipe", default="digits")
    parser.add_argument("--data", type=Path, default=DEFAULT_OUT, help="digits_lt.py's work folder (the split)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT.parent / "digits-lt-gan")
    args = parser.parse_intermixed_args()
    from gansynth.metrics import evaluate
    from gansynth.train.fit import fit

    train, _, _ = prepare(args.data / f"rho{args.ratio:g}", args.ratio)
    run = args.out / args.name
    shutil.rmtree(run, ignore_errors=True)
    start = time.perf_counter()
    result = fit(train, out=run, recipe=args.recipe, overrides=args.overrides, progress=False)
    wall = time.perf_counter() - start
    record = evaluate(run, feature_extractor="domain", progress=False)
    per_class = record["per_class"]
    tail = {k: per_class[k] for k in ("7", "8", "9")}
    row = {
        "name": args.name,
        "ratio": args.ratio,
        "overrides": args.overrides,
        "fit_s": round(wall),
        **{k: round(record[k], 3) for k in ("fid", "precision", "recall", "coverage", "label_fidelity")},
        "tail_recall": [_r(c["recall"]) for c in tail.values()],
        "tail_coverage": [_r(c["coverage"]) for c in tail.values()],
        "tail_label_fidelity": [_r(c["label_fidelity"]) for c in tail.values()],
        "collapse_alarms": sorted(a["class"] for a in record["alarms"] if a["kind"] == "collapse"),
        "low_diversity": sorted(k for k, r in result.diversity.items() if r < 0.5),
    }
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
