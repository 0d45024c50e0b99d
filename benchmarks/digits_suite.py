"""Digits suite: does a digits GAN's synthetic data help a classifier? All four arms, several seeds, on CPU.

    python benchmarks/digits_suite.py                          # fit a GAN on the train split, export, benchmark
    python benchmarks/digits_suite.py --run OUT/run            # reuse a run trained on OUT/data/train
    python benchmarks/digits_suite.py --seeds 5 --json r.json

Protocol: scikit-learn's 1 797 digits at 16 px are split once, stratified (20% per class held out, seed 0), into
PNG folders ``OUT/data/{train,test}``. The GAN (bundled ``digits`` recipe) is trained on the train part only, so
synthetic images carry no information about the test images. Its EMA generator is exported through
``gansynth.exporter`` (the real classes are balanced, so real+synthetic adds as many synthetic images per class as
the largest real class has: ≈ 1× the real data) and ``gansynth.benchmark`` trains the default classifier
(``test_efficientnet``, 15 epochs of the real set, no flips) on real, real+synthetic, synthetic-only and
class-balanced resampling, seeds 0..K-1. Output (outside the repository by default): the run, the export, and
``OUT/benchmark/report.{json,md}`` + charts. Wall time includes the GAN fit unless ``--run`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

DEFAULT_OUT = Path(os.environ.get("GANSYNTH_CACHE", "/tmp/gansynth-cache")) / "bench" / "digits"


def main() -> None:
    from gansynth.benchmark import DEFAULT_EPOCHS, DEFAULT_MODEL, DEFAULT_SEEDS
    from gansynth.benchmark.digits import run_digits_benchmark
    from gansynth.runtime import make_runtime, set_threads
    from gansynth.terminal import print_summary

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"work folder (default {DEFAULT_OUT})")
    parser.add_argument("--run", type=Path, default=None, help="a run trained on OUT/data/train (skips the fit)")
    parser.add_argument("--kimg", type=float, default=None, help="GAN length when fitting (default: the recipe's)")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: best on a shared machine)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None, help="also copy report.json here")
    args = parser.parse_args()

    set_threads(args.threads)
    started = time.perf_counter()
    result = run_digits_benchmark(
        args.out, run=args.run, model=args.model, epochs=args.epochs, seeds=args.seeds, kimg=args.kimg,
        runtime=make_runtime(args.device),
    )  # fmt: skip
    wall = time.perf_counter() - started
    print_summary(result.record, report_dir=result.out)
    print(f"total wall time (fit + export + benchmark + report): {wall:.0f} s")
    if args.json is not None:
        args.json.write_text(json.dumps({**result.record, "suite_wall_seconds": wall}, indent=2) + "\n")


if __name__ == "__main__":
    main()
