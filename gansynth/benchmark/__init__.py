"""Downstream benchmark: does synthetic data help a classifier? Arms × seeds on a real test split → report.

``benchmark`` (run.py) drives it; ``plan`` decides the arms' data, ``data`` loads and checks the inputs, ``select``
makes the choices on a validation split of the real training images (budget, mixing), ``stats`` holds the math and
the verdict rule, ``record`` assembles report.json; :mod:`gansynth.report` formats it.
"""

from gansynth.benchmark.plan import ARMS, NON_GENERATIVE, sweep_arm
from gansynth.benchmark.run import BenchmarkResult, benchmark
from gansynth.benchmark.select import CANDIDATES
from gansynth.benchmark.spec import DEFAULT_EPOCHS, DEFAULT_MODEL, DEFAULT_SEEDS, MIN_STEPS, BenchmarkSpec
from gansynth.benchmark.stats import HELPS, HURTS, INCONCLUSIVE, NO_HELP, paired_comparison

__all__ = [
    "ARMS",
    "CANDIDATES",
    "DEFAULT_EPOCHS",
    "DEFAULT_MODEL",
    "DEFAULT_SEEDS",
    "HELPS",
    "HURTS",
    "INCONCLUSIVE",
    "MIN_STEPS",
    "NON_GENERATIVE",
    "NO_HELP",
    "BenchmarkResult",
    "BenchmarkSpec",
    "benchmark",
    "paired_comparison",
    "sweep_arm",
]
