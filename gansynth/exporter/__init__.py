"""Export stage: a run's generator → a balanced synthetic ImageFolder with images.csv and a manifest.

Modules, in pipeline order: ``plan`` (classes, safe folder names, counts, seeds, units, shards — pure), ``encode``
(image bytes and atomic writes, run in worker processes), ``store`` (the export folder: identity, journal,
images.csv, manifest, reading it back), ``provenance`` (confidence scorer, manifest), ``core`` (``export()``).

The package is not named ``export`` so that ``gansynth.export`` can be the function: importing a submodule
``gansynth.export`` would rebind that attribute to the module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gansynth.exporter.plan import CHUNK, SEED_STRIDE, sample_seed

if TYPE_CHECKING:
    from gansynth.exporter.core import ExportResult, export
    from gansynth.exporter.store import image_folder

_LAZY = {
    "export": ("gansynth.exporter.core", "export"),
    "ExportResult": ("gansynth.exporter.core", "ExportResult"),
    "image_folder": ("gansynth.exporter.store", "image_folder"),
}


def __getattr__(name: str):
    """Lazy, so that encoder worker processes (which import ``gansynth.exporter.encode``) never import torch."""
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'gansynth.exporter' has no attribute {name!r}")


__all__ = ["CHUNK", "SEED_STRIDE", "ExportResult", "export", "image_folder", "sample_seed"]
