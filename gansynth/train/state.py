"""Trainer → run directory: snapshot files, best/ and sample grids (what a snapshot holds is Trainer.state_dict)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import torch

from gansynth.checkpoint import (
    BEST_DIR,
    BEST_RECORD,
    DISCRIMINATOR,
    GENERATOR,
    GENERATOR_EMA,
    SAMPLES,
    save_snapshot,
    tensor_bytes,
)
from gansynth.images import encode_png, seed_noise, tile, to_uint8
from gansynth.io import atomic_write_bytes, atomic_write_json, make_dirs
from gansynth.train.ema import standing_statistics

if TYPE_CHECKING:
    from gansynth.train.trainer import Trainer

GRID_COLUMNS = 10
GRID_MAX_ROWS = 32  # classes shown in a grid
STANDING_STATS_SEED = 12345


def save_training_snapshot(trainer: Trainer) -> None:
    """Standing BN statistics for the EMA generator, then (rank 0) the snapshot files and a sample grid."""
    standing_statistics(
        trainer.ema,
        trainer.dataset.num_classes,
        trainer.config.model.z_dim,
        trainer.runtime.device,
        seed=STANDING_STATS_SEED,
    )
    if not trainer.runtime.is_main:
        trainer.runtime.barrier()
        return
    networks = {
        GENERATOR_EMA: trainer.ema.state_dict(),
        GENERATOR: trainer.g_raw.state_dict(),
        DISCRIMINATOR: trainer.d_raw.state_dict(),
    }
    save_snapshot(trainer.run_dir, networks, trainer.state_dict())
    write_grid(trainer)
    trainer.runtime.barrier()


@torch.no_grad()
def sample_grid(generator: torch.nn.Module, num_classes: int, z_dim: int, device: torch.device) -> torch.Tensor:
    """One row per class (first GRID_MAX_ROWS), fixed seeds 0..9 per row: uint8 ``[C, H·rows, W·10]``."""
    rows = min(num_classes, GRID_MAX_ROWS)
    labels = torch.arange(rows).repeat_interleave(GRID_COLUMNS)
    z = seed_noise(list(range(GRID_COLUMNS)) * rows, z_dim)
    return tile(to_uint8(generator(z.to(device), labels.to(device))), GRID_COLUMNS)


def write_grid(trainer: Trainer) -> None:
    folder = make_dirs(trainer.run_dir / SAMPLES)
    grid = sample_grid(trainer.ema, trainer.dataset.num_classes, trainer.config.model.z_dim, trainer.runtime.device)
    atomic_write_bytes(folder / f"grid-{trainer.kimg:09.3f}.png", encode_png(grid))


def save_best(trainer: Trainer, record: dict) -> None:
    """Keep the EMA generator with the lowest FID so far as ``best/`` (weights + the metrics record)."""
    folder = make_dirs(trainer.run_dir / BEST_DIR)
    standing_statistics(
        trainer.ema,
        trainer.dataset.num_classes,
        trainer.config.model.z_dim,
        trainer.runtime.device,
        seed=STANDING_STATS_SEED,
    )
    data = tensor_bytes(trainer.ema.state_dict())
    atomic_write_bytes(folder / f"{GENERATOR_EMA}.safetensors", data)
    # written second, with the weights' sha256: load_sampler(checkpoint="best") refuses a pair from different evals
    digest = hashlib.sha256(data).hexdigest()
    atomic_write_json(folder / BEST_RECORD, {**record, "kimg": trainer.kimg, "sha256": digest})
