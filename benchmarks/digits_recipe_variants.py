"""The digits recipe with extra overrides, fitted on the demo's training split and evaluated (domain extractor).

    gansynth demo --out /tmp/bench/demo                  # once: writes /tmp/bench/demo/data/train
    python benchmarks/digits_recipe_variants.py base
    python benchmarks/digits_recipe_variants.py aug_tc augment.enabled=true augment.policy=translation,cutout

Prints one JSON line: fit wall time, img/s and the overall metrics, the worst class's coverage and the number of
alarms. Reproduces the tuning table under "demo" in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="variant name (its run goes to OUT/NAME)")
    parser.add_argument("overrides", nargs="*", help="section.key=value on top of the digits recipe")
    parser.add_argument("--data", type=Path, default=Path("/tmp/bench/demo/data/train"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/gansynth-cache/bench/digits-variants"))
    args = parser.parse_args()
    from gansynth.metrics import evaluate
    from gansynth.train.fit import fit

    run = args.out / args.name
    shutil.rmtree(run, ignore_errors=True)
    start = time.perf_counter()
    result = fit(args.data, out=run, recipe="digits", overrides=args.overrides, progress=False)
    wall = time.perf_counter() - start
    record = evaluate(run, feature_extractor="domain", progress=False)
    keys = ("fid", "precision", "recall", "density", "coverage", "label_fidelity")
    row = {
        "name": args.name,
        "overrides": args.overrides,
        "fit_s": round(wall),
        "img_per_s": round(result.images_per_second),
        **{k: round(record[k], 3) for k in keys},
        "worst_class_coverage": round(min(c["coverage"] for c in record["per_class"].values()), 3),
        "alarms": len(record["alarms"]),
    }
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
