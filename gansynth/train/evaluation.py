"""Metrics during ``fit`` (every ``eval.every_kimg``): the EMA generator, as it is, against the training set."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gansynth.io import append_jsonl
from gansynth.rundir import METRICS
from gansynth.train.ema import standing_statistics
from gansynth.train.state import STANDING_STATS_SEED

if TYPE_CHECKING:
    from gansynth.train.trainer import Trainer


def evaluate_during_fit(trainer: Trainer) -> dict:
    """Evaluate the in-memory EMA generator and append the record to the run's ``metrics.jsonl``."""
    from gansynth.metrics import evaluate_generator

    config, dataset = trainer.config, trainer.dataset
    standing_statistics(
        trainer.ema, dataset.num_classes, config.model.z_dim, trainer.runtime.device, seed=STANDING_STATS_SEED
    )
    record = evaluate_generator(
        trainer.ema,
        dataset,
        config.model.z_dim,
        trainer.kimg,
        trainer.run_dir,
        config.eval.num_samples,
        config.eval.feature_extractor,
        runtime=trainer.runtime,
    )
    record = {"kimg": round(trainer.kimg, 3), **record}
    append_jsonl(trainer.run_dir / METRICS, record)
    return record
