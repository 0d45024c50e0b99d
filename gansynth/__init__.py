"""gansynth: labeled image folder → class-conditional GAN → measured, balanced synthetic data → downstream benchmark."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from gansynth.benchmark import BenchmarkSpec, benchmark
    from gansynth.exporter import export
    from gansynth.exporter.spec import ExportSpec
    from gansynth.exporter.synthetic import SyntheticDataset
    from gansynth.metrics import evaluate
    from gansynth.metrics.spec import EvaluateSpec
    from gansynth.mixing import MixedDataset, Mixing
    from gansynth.sampler import Sampler, load_sampler
    from gansynth.train.fit import fit

_LAZY = {
    "fit": ("gansynth.train.fit", "fit"),
    "load_sampler": ("gansynth.sampler", "load_sampler"),
    "Sampler": ("gansynth.sampler", "Sampler"),
    "load_dataset": ("gansynth.data", "load_dataset"),
    "GansynthError": ("gansynth.errors", "GansynthError"),
    "export": ("gansynth.exporter", "export"),
    "benchmark": ("gansynth.benchmark", "benchmark"),
    "BenchmarkSpec": ("gansynth.benchmark.spec", "BenchmarkSpec"),
    "ExportSpec": ("gansynth.exporter.spec", "ExportSpec"),
    "SyntheticDataset": ("gansynth.exporter.synthetic", "SyntheticDataset"),
    "evaluate": ("gansynth.metrics", "evaluate"),
    "EvaluateSpec": ("gansynth.metrics.spec", "EvaluateSpec"),
    "Mixing": ("gansynth.mixing", "Mixing"),
    "MixedDataset": ("gansynth.mixing", "MixedDataset"),
}


def __getattr__(name: str):
    """Public API, imported on first use so that ``import gansynth`` stays fast."""
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'gansynth' has no attribute {name!r}")


__all__ = [
    "BenchmarkSpec",
    "EvaluateSpec",
    "ExportSpec",
    "GansynthError",
    "MixedDataset",
    "Mixing",
    "Sampler",
    "SyntheticDataset",
    "benchmark",
    "evaluate",
    "export",
    "fit",
    "load_dataset",
    "load_sampler",
    "__version__",
]
