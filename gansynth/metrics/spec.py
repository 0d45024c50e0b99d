"""``EvaluateSpec``: every option of an evaluation, checked once; the CLI and :func:`gansynth.evaluate` build one."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from gansynth.checkpoint import check_checkpoint
from gansynth.errors import ConfigError
from gansynth.metrics.extractors import AUTO, check_extractor_name
from gansynth.runtime import as_device


@dataclass(frozen=True)
class EvaluateSpec:
    """How to evaluate (what is evaluated, a run or a folder, comes separately).

    Attributes:
        num_samples: generated images from the run, balanced over classes (None: as many as real, 1k–10k).
        feature_extractor: ``auto`` (inception when its weights exist, else domain), ``inception``, ``domain``,
            ``dinov2`` or ``clip``.
        weights: the extractor's weights file (else ``$TORCH_HOME/hub/checkpoints/<its file name>``).
        json_out: also write the record to this JSON file.
        device: ``cpu``, ``cuda`` or ``auto``.
        progress: show progress bars on stderr.
        checkpoint: the run's ``latest`` snapshot or its ``best`` generator by FID during fit (``best/``).
    """

    num_samples: int | None = None
    feature_extractor: str = AUTO
    weights: Path | None = None
    json_out: Path | None = None
    device: str = "cpu"
    progress: bool = True
    checkpoint: str = "latest"

    def __post_init__(self) -> None:
        for name in ("weights", "json_out"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        check_extractor_name(self.feature_extractor)
        check_checkpoint(self.checkpoint)
        as_device(self.device)
        if self.num_samples is not None and (type(self.num_samples) is not int or self.num_samples < 1):
            raise ConfigError(f"--num-samples {self.num_samples!r} is out of range", hint="an integer >= 1")
        if not isinstance(self.progress, bool):
            raise ConfigError(f"progress = {self.progress!r} is not a bool", hint="True or False")

    def replace(self, **changes) -> EvaluateSpec:
        """A copy with ``changes`` applied (and checked)."""
        return dataclasses.replace(self, **changes)
