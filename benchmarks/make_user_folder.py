"""A new user's folder: ~2 900 grayscale 28×28 PNGs in 10 imbalanced classes, made from scikit-learn's digits.

Class k (digit k) holds n_k = round(700 · 10^(−k/9)) images (ρ = 10: 700 zeros … 70 nines); digits beyond the
originals of a class are jittered copies (shifted by up to 2 px at 28 px, contrast scaled by 0.85–1.15).
Usage: python benchmarks/make_user_folder.py OUT [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

SIZE, HEAD, RATIO = 28, 700, 10.0


def make(out: Path, seed: int = 0) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    bunch = load_digits()
    counts = {}
    for k in range(10):
        originals = bunch.images[bunch.target == k]
        n = round(HEAD * RATIO ** (-k / 9))
        folder = out / str(k)
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            src = originals[i % len(originals)] * (255.0 / 16.0)
            img = np.asarray(Image.fromarray(src.astype(np.float32)).resize((SIZE, SIZE), Image.Resampling.BICUBIC))
            if i >= len(originals):  # a jittered copy
                img = np.roll(img, tuple(rng.integers(-2, 3, size=2)), axis=(0, 1)) * rng.uniform(0.85, 1.15)
            Image.fromarray(np.clip(img, 0, 255).round().astype(np.uint8), mode="L").save(folder / f"{i:04d}.png")
        counts[str(k)] = n
    return counts


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    counts = make(args.out, args.seed)
    print(f"{args.out}: {sum(counts.values())} images, {counts}")
