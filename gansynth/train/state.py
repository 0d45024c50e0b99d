"""Trainer ⇄ run directory: what a snapshot holds (weights, optimizers, scaler, RNG, counters) and sample grids."""

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
from gansynth.errors import CheckpointError, first_line
from gansynth.images import encode_png, seed_noise, tile, to_uint8
from gansynth.io import atomic_write_bytes, atomic_write_json, make_dirs
from gansynth.train.ema import standing_statistics

if TYPE_CHECKING:
    from gansynth.train.trainer import Trainer

GRID_COLUMNS = 10
GRID_MAX_ROWS = 32  # classes shown in a grid
STANDING_STATS_SEED = 12345


def trainer_state(trainer: Trainer) -> dict:
    """Everything besides the network weights that exact resume needs (tensors allowed anywhere)."""
    return {
        "step": trainer.step,
        "images_seen": trainer.images_seen,
        "kimg": trainer.kimg,
        "elapsed_s": trainer.elapsed,
        "skipped_steps": trainer.skipped_steps,
        "best_fid": trainer.best_fid,
        "optimizer_g": trainer.opt_g.state_dict(),
        "optimizer_d": trainer.opt_d.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "aug_p": trainer.p.detach().clone(),
        "ada_sum": trainer.ada_sum.detach().clone(),
        "lecam_anchors": trainer.lecam_anchors.detach().clone(),
        "rng": trainer.gen.get_state(),
        "rng_cpu": torch.get_rng_state(),
        "world_size": trainer.runtime.world_size,
    }


def restore_state(trainer: Trainer, state: dict, networks: dict[str, dict[str, torch.Tensor]]) -> None:
    """Load a snapshot into a freshly built trainer (same config and dataset)."""
    try:
        trainer.g_raw.load_state_dict(networks[GENERATOR])
        trainer.d_raw.load_state_dict(networks[DISCRIMINATOR])
        trainer.ema.load_state_dict(networks[GENERATOR_EMA])
        trainer.opt_g.load_state_dict(state["optimizer_g"])
        trainer.opt_d.load_state_dict(state["optimizer_d"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(
            f"the snapshot in {trainer.run_dir} does not fit this config ({first_line(exc)})",
            hint="resume with the run's own settings, or start a new run without --resume",
        ) from None
    if state.get("scaler"):
        trainer.scaler.load_state_dict(state["scaler"])
    trainer.p.copy_(state["aug_p"])
    trainer.ada_sum.copy_(state["ada_sum"])
    if "lecam_anchors" in state:  # snapshots from before LeCam have none (and trained without it)
        trainer.lecam_anchors.copy_(state["lecam_anchors"])
    if state.get("world_size", 1) == trainer.runtime.world_size:
        trainer.gen.set_state(state["rng"])
    else:  # another process count: same weights and counters, a fresh per-rank noise stream
        trainer.gen.manual_seed(trainer.config.train.seed * 1000 + trainer.runtime.rank + state["step"])
    torch.set_rng_state(state["rng_cpu"])
    trainer.step, trainer.images_seen = int(state["step"]), int(state["images_seen"])
    trainer.elapsed, trainer.skipped_steps = float(state["elapsed_s"]), int(state["skipped_steps"])
    trainer.best_fid = state.get("best_fid")


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
    save_snapshot(trainer.run_dir, networks, trainer.state())
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
