"""GAN diversity on digits-LT (ρ = 10): fit, then per-class recall, coverage and label fidelity of the tail classes.

digits-LT (as in the "Synthetic data that helps" benchmark): scikit-learn digits; a stratified third of every class is
the test set (seed 0); the rest, subsampled to n_k = round(n_0 · 10^(−k/9)) for digit k (digit 0 the head), is the
training set. The GAN is fitted on the training set only and evaluated against it (domain extractor).

    python benchmarks/digits_lt_gan.py NAME [section.key=value ...] [--ratio 10] [--recipe digits]

Prints one JSON line: overall metrics, the three tail classes' recall / coverage / label fidelity, alarms, fit time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np


def make_split(root: Path, ratio: float, seed: int = 0) -> Path:
    """Write ``root/train/<digit>/*.png`` (long-tailed) and ``root/test``; returns the training folder."""
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    train_dir = root / f"rho{ratio:g}" / "train"
    if train_dir.is_dir():
        return train_dir
    bunch = load_digits()
    images = np.clip(np.round(bunch.images * 255.0 / 16.0), 0, 255).astype(np.uint8)
    index = np.arange(len(images))
    train_idx, test_idx = train_test_split(index, test_size=1 / 3, stratify=bunch.target, random_state=seed)
    rng = np.random.default_rng(seed)
    n0 = int((bunch.target[train_idx] == 0).sum())
    for split, chosen in (("train", train_idx), ("test", test_idx)):
        for k in range(10):
            members = chosen[bunch.target[chosen] == k]
            if split == "train":
                members = rng.permutation(members)[: round(n0 * ratio ** (-k / 9))]
            folder = root / f"rho{ratio:g}" / split / str(k)
            folder.mkdir(parents=True, exist_ok=True)
            for i in members:
                big = Image.fromarray(images[i]).resize((16, 16), Image.Resampling.BICUBIC)
                big.save(folder / f"{i:05d}.png")
    return train_dir


def _r(value: float | None) -> float | None:
    """Rounded, or None where the metric is undefined (a class with too few real images for k-NN recall)."""
    return None if value is None else round(value, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--ratio", type=float, default=10.0)
    parser.add_argument("--recipe", default="digits")
    parser.add_argument("--data", type=Path, default=Path("/tmp/gansynth-cache/bench/digits-lt"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/gansynth-cache/bench/digits-lt-gan"))
    args = parser.parse_intermixed_args()
    from gansynth.metrics import evaluate
    from gansynth.train.fit import fit

    train = make_split(args.data, args.ratio)
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
