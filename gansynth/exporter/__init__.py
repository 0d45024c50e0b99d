"""Export stage: a run's generator → a balanced synthetic ImageFolder with images.csv and a manifest.

Modules, in pipeline order: ``plan`` (classes, safe folder names, counts, seeds, units, shards — pure), ``encode``
(image bytes and atomic writes, run in worker processes), ``store`` (the export folder: identity, journal,
images.csv, manifest, reading it back), ``provenance`` (confidence scorer, manifest), ``spec`` (``ExportSpec``:
the options, checked once), ``core`` (``export()``), ``synthetic`` (``SyntheticDataset``: the same images on the fly).

The package is not named ``export`` so that ``gansynth.export`` can be the function: importing a submodule
``gansynth.export`` would rebind that attribute to the module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gansynth.exporter.core import ExportResult, export
    from gansynth.exporter.plan import CHUNK, SEED_STRIDE, sample_seed
    from gansynth.exporter.spec import ExportSpec
    from gansynth.exporter.store import image_folder

_LAZY = {
    "export": ("gansynth.exporter.core", "export"),
    "ExportResult": ("gansynth.exporter.core", "ExportResult"),
    "image_folder": ("gansynth.exporter.store", "image_folder"),
    "ExportSpec": ("gansynth.exporter.spec", "ExportSpec"),
    "CHUNK": ("gansynth.exporter.plan", "CHUNK"),
    "SEED_STRIDE": ("gansynth.exporter.plan", "SEED_STRIDE"),
    "sample_seed": ("gansynth.exporter.plan", "sample_seed"),
}


def __getattr__(name: str):
    """Lazy, so that encoder worker processes (which import ``gansynth.exporter.encode``) never import torch."""
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'gansynth.exporter' has no attribute {name!r}")


__all__ = ["CHUNK", "SEED_STRIDE", "ExportResult", "ExportSpec", "export", "image_folder", "sample_seed"]
