"""How much of a class a digits-LT generator knows: its samples scored against real images it never saw (issue 13).

    python benchmarks/digits_lt_heldout.py RUN [RUN ...] [--rho 10] [--out DIR] [--json FILE]

A GAN scored against its own training images cannot tell variety from copying: with 12 nines, recall and coverage
of the nines are high when the generator draws near those 12. digits-LT leaves many real images of every tail class
unused — everything outside the test third that the long-tailed subsample did not pick (at ρ = 10: 29 ones … 108
nines). This script writes them to ``OUT/rho<ρ>/heldout`` and runs ``gansynth evaluate RUN --data heldout`` on each
run: per-class recall and coverage then measure how much of a class's *unseen* images the generator's samples reach,
and label fidelity whether those samples read as their class. Digit 0, the head, has no unused image (all of it
trains the GAN) and is scored against its training images. The test third is never read.

Prints one JSON line per run (overall recall, coverage, label fidelity, FID; per-class recall, coverage, label
fidelity) and, with ``--json``, writes them all to FILE.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from digits_lt import DEFAULT_OUT, split


def write_heldout(out: Path, rho: float) -> Path:
    """Write ``out/rho<ρ>/heldout/<digit>/*.png``: the non-test images outside the LT training set (digit 0: its
    training images, the only ones it has); returns the folder."""
    import numpy as np

    from gansynth.benchmark.digits import write_image_folder

    _, rest, train_idx, _, _ = split(rho)
    labels = rest.labels.numpy()
    unused = np.setdiff1d(np.arange(len(labels)), train_idx)
    keep = np.union1d(unused, np.flatnonzero(labels == 0))
    return write_image_folder(rest.subset(keep.tolist()), out / f"rho{rho:g}" / "heldout")


def _rounded(value: float | None) -> float | None:
    """Two decimals, or None where a class has too few images for the metric."""
    return None if value is None else round(value, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="runs fitted on the digits-LT training set of --rho")
    parser.add_argument("--rho", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"work folder (default {DEFAULT_OUT})")
    parser.add_argument("--num-samples", type=int, default=1000, help="generated images per run (balanced)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    from gansynth.metrics import evaluate

    heldout = write_heldout(args.out, args.rho)
    rows = []
    for run in args.runs:
        record = evaluate(
            run, data=heldout, num_samples=args.num_samples, feature_extractor="domain", progress=False
        )  # fmt: skip
        per_class = record["per_class"]
        row = {
            "run": str(run),
            **{k: round(record[k], 3) for k in ("fid", "recall", "coverage", "label_fidelity")},
            **{f"{k}_per_class": [_rounded(c[k]) for c in per_class.values()] for k in
               ("recall", "coverage", "label_fidelity")},
        }  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
