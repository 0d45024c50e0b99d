"""Metrics during ``fit`` (every ``eval.every_kimg``): the EMA generator, as it is, against the training set."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gansynth.io import append_jsonl
from gansynth.rundir import METRICS
from gansynth.sampler import Sampler
from gansynth.train.ema import standing_statistics
from gansynth.train.state import STANDING_STATS_SEED

if TYPE_CHECKING:
    from gansynth.train.trainer import Trainer


def evaluate_during_fit(trainer: Trainer) -> dict:
    """Evaluate the in-memory EMA generator and append the record to the run's ``metrics.jsonl``."""
    from gansynth.metrics import evaluate_sampler

    config, dataset = trainer.config, trainer.dataset
    standing_statistics(
        trainer.ema, dataset.num_classes, config.model.z_dim, trainer.runtime.device, seed=STANDING_STATS_SEED
    )
    sampler = Sampler(
        generator=trainer.ema,
        class_names=list(dataset.class_names),
        resolution=dataset.resolution,
        channels=dataset.channels,
        z_dim=config.model.z_dim,
        kimg=trainer.kimg,
        checkpoint_sha256="in-memory (during fit)",
        checkpoint_file="in-memory (during fit)",
        run_dir=trainer.run_dir,
        dataset_info=dataset.info(),
        device=trainer.runtime.device,
    )
    record = evaluate_sampler(
        sampler, dataset, config.eval.num_samples, config.eval.feature_extractor, runtime=trainer.runtime
    )
    record = {"kimg": round(trainer.kimg, 3), **record}
    append_jsonl(trainer.run_dir / METRICS, record)
    return record
