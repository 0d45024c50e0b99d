"""``gansynth translate``: CycleGAN (Zhu et al., ICCV 2017) between a labeled folder A and a folder of images B, and
a labeled export of A in B's look.

Modules, in pipeline order: ``config`` (typed sections, the paper's recipe as defaults), ``fonts`` (the built-in
fonts → digits pair), ``networks`` (ResNet generator, PatchGAN, registered), ``train`` (the loop and its state),
``fitting`` (``fit``: run directory, resume, budget), ``translator`` (``load_translator(run).translate(images)``),
``exporting`` (``export``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gansynth.translate.exporting import TranslateExportResult, export
    from gansynth.translate.fitting import fit
    from gansynth.translate.fonts import font_digits, write_fonts_digits
    from gansynth.translate.translator import Translator, load_translator

_LAZY = {
    "fit": "gansynth.translate.fitting",
    "export": "gansynth.translate.exporting",
    "TranslateExportResult": "gansynth.translate.exporting",
    "load_translator": "gansynth.translate.translator",
    "Translator": "gansynth.translate.translator",
    "font_digits": "gansynth.translate.fonts",
    "write_fonts_digits": "gansynth.translate.fonts",
}


def __getattr__(name: str):
    """Lazy, so ``import gansynth.translate`` stays cheap; the modules are not named ``fit``/``export`` so that
    importing them never rebinds ``gansynth.translate.fit``/``.export`` from the function to the module."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gansynth.translate' has no attribute {name!r}")


__all__ = [
    "TranslateExportResult",
    "Translator",
    "export",
    "fit",
    "font_digits",
    "load_translator",
    "write_fonts_digits",
]
