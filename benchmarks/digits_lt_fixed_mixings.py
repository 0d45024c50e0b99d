"""Diagnostic, not a choice: test-split balanced accuracy of real+synthetic with *fixed* mixings (issue 13).

    python benchmarks/digits_lt_fixed_mixings.py OUT/rho10            # after benchmarks/digits_lt.py wrote OUT/rho10

When the validation split is saturated, the benchmark's choice cannot tell whether any mixing would help, and it
keeps "no synthetic". This script answers the question the choice cannot — what each candidate mixing would score
on the test split — so the notes can say whether a better *choice* (not a better generator) would meet the bar. It
never feeds back into the benchmark's default: the chosen real+synthetic stays what validation picked.

It reuses the benchmark's work folder: the same real training and test images, the same filtered export
(``OUT/benchmark/synthetic``), the same step count per run and the same seeds as ``OUT/benchmark/report.json``, and
compares each mixing seed by seed with the report's best non-generative arm.

    python benchmarks/digits_lt_fixed_mixings.py OUT/rho10 --synthetic BIG --whole --steps 1000 \
        --mixing weight=0,balanced_softmax=true --mixing weight=1,max_share=1

``--synthetic`` another export of the same run (e.g. ``gansynth export RUN --per-class 600 --filter diverse``),
``--whole`` adds it whole instead of topping every class up to the largest, ``--steps`` changes the run length; the
report's baseline was trained at its own step count, so at another ``--steps`` give the non-generative arm as a
mixing too (``weight=0,...``) and compare with that line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

MIXINGS = (
    "weight=0.3,label_smoothing=0.1,max_share=0.5",
    "weight=0.3,label_smoothing=0.1,max_share=0.5,balanced_softmax=true",
    "weight=0.3,label_smoothing=0.1,max_share=0.5,schedule=deferred,start=0.5,balanced_softmax=true",
    "weight=1,label_smoothing=0.1,max_share=0.5,schedule=head,start=0.75",
    "weight=1,label_smoothing=0.1,max_share=1",
)


def main() -> None:
    from gansynth.benchmark import benchmark
    from gansynth.benchmark.stats import paired_comparison
    from gansynth.mixing import parse_mixing
    from gansynth.runtime import make_runtime, set_threads

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path, help="the digits_lt.py folder of one ρ (holds data/ and benchmark/)")
    parser.add_argument("--mixing", action="append", default=None, help="mixings (default: five candidates)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--synthetic", type=Path, default=None, help="another export of the same run (default: the benchmark's)"
    )
    parser.add_argument(
        "--whole", action="store_true",
        help="add the --synthetic folder whole (default: a top-up of every class to the largest, as the benchmark)",
    )  # fmt: skip
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per run (default: the report's)")
    parser.add_argument("--workers", type=int, default=1, help="classifier processes of one thread each")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    set_threads(args.threads)
    report = json.loads((args.work / "benchmark" / "report.json").read_text())
    best = report["best_non_generative"]
    baseline = report["arms"][best]["balanced_accuracy"]["values"]
    steps = args.steps or report["protocol"]["steps"]
    synthetic = args.synthetic or args.work / "benchmark" / "synthetic"
    rows = []
    for text in args.mixing or MIXINGS:
        result = benchmark(
            args.work / "data" / "train", test=args.work / "data" / "test",
            synthetic=synthetic, arms=["real+synthetic"], seeds=len(baseline),
            balance_to=None if args.whole else "max", mixings=[parse_mixing(text)], budget="fixed", min_steps=steps,
            flip=False, out=args.work / "fixed-mixings" / synthetic.name / text.replace("=", "").replace(",", "_"),
            runtime=make_runtime("cpu"), progress=False, export_filter="none", workers=args.workers,
        )  # fmt: skip
        values = result.arms["real+synthetic"]["balanced_accuracy"]["values"]
        diff = paired_comparison(values, baseline)
        rows.append({"mixing": text, "values": values, "vs": best, "difference": diff})
        mean = sum(values) / len(values)
        low, high = diff["ci95"]
        print(
            f"{text:<95} {100 * mean:5.1f}  vs {best}: {100 * diff['mean']:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]",
            flush=True,
        )
    if args.json is not None:
        args.json.write_text(json.dumps({"steps": steps, "baseline": best, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
