"""Load a generator from a run directory and turn (class, seed) pairs into uint8 images — the one exit of images.

A sample's noise is drawn from its own seed on the CPU, and the network always runs on batches of one fixed shape
(``batch_size`` rows, the last batch padded), so an image depends only on (checkpoint, class, seed, truncation,
batch_size) — on a given machine — never on how many images a call asks for, which other images share its batch, or
its position there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from gansynth.checkpoint import (
    BEST_DIR,
    BEST_RECORD,
    DATASET,
    GENERATOR,
    GENERATOR_EMA,
    TRAIN_STATE_JSON,
    check_checkpoint,
    load_tensors,
    read_config,
    read_json,
    resolve_run,
)
from gansynth.config import Config
from gansynth.data.fingerprint import hash_file
from gansynth.errors import CheckpointError, ConfigError
from gansynth.exporter.plan import CHUNK
from gansynth.runtime import inference_module

# The canonical batch shape: the export unit, so that sampler.generate, the export and SyntheticDataset(exact=True)
# produce the same bytes for a seed on the CPU. A forward's float result for a row can change with the batch
# *shape* (~1e-6 on the CPU between 1 and 64 rows, enough to flip a rare uint8 pixel), never with the other rows.
DEFAULT_BATCH = CHUNK


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W]`` float in [-1, 1] → uint8 in [0, 255] on the CPU (the only float → uint8 conversion)."""
    scaled = ((images.detach().float() + 1.0) * 127.5).round_().clamp_(0, 255)
    return scaled.to(torch.uint8).cpu().contiguous()  # NCHW whatever the network's memory layout


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[N, C, H, W]`` → float in [-1, 1] (same device)."""
    return images.float().div_(127.5).sub_(1.0)


def seed_noise(seeds: Sequence[int], z_dim: int, truncation: float | None = None) -> torch.Tensor:
    """``[N, z_dim]`` standard normal noise, row i drawn from its own CPU generator seeded with ``seeds[i]``.

    With ``truncation`` ψ, entries with ``|z| > ψ`` are redrawn (the truncation trick, Brock et al. 2019).
    """
    rows = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(int(seed))
        z = torch.randn(z_dim, generator=gen)
        if truncation is not None:
            while (bad := z.abs() > truncation).any():
                z[bad] = torch.randn(int(bad.sum()), generator=gen)
        rows.append(z)
    return torch.stack(rows) if rows else torch.zeros(0, z_dim)


@dataclass
class Sampler:
    """A trained generator in eval mode and what is known about its run.

    Attributes:
        generator: the network (eval mode, on ``device``).
        class_names: class names in label index order.
        resolution / channels: image geometry.
        z_dim: noise size.
        kimg: training progress of the checkpoint.
        checkpoint_sha256: sha256 of the loaded weights file.
        run_dir: where it came from.
        dataset_info: the run's ``dataset.json``.
        checkpoint_file: the weights file, relative to ``run_dir`` (``best/generator_ema.safetensors`` for best).
    """

    generator: nn.Module
    class_names: list[str]
    resolution: int
    channels: int
    z_dim: int
    kimg: float
    checkpoint_sha256: str
    run_dir: Path
    dataset_info: dict
    device: torch.device
    checkpoint_file: str = f"{GENERATOR_EMA}.safetensors"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_index(self, name: str) -> int:
        """Label index of a class name (ConfigError listing the classes otherwise)."""
        if name not in self.class_names:
            from gansynth.registry import did_you_mean

            raise ConfigError(f"unknown class {name!r}", hint=did_you_mean(name, self.class_names))
        return self.class_names.index(name)

    @torch.no_grad()
    def generate_seeds(
        self,
        labels: Sequence[int] | torch.Tensor,
        seeds: Sequence[int] | torch.Tensor,
        truncation: float | None = None,
        batch_size: int = DEFAULT_BATCH,
    ) -> torch.Tensor:
        """Images for explicit (label, seed) pairs: uint8 ``[N, C, H, W]`` on the CPU.

        The network only ever sees batches of exactly ``batch_size`` rows: the last, partial batch is padded by
        repeating its last row, and the padding is dropped. Since a row's result depends on the batch shape but not
        on the other rows, image i depends only on ``(labels[i], seeds[i], truncation, batch_size)`` (and the
        machine): ``generate(k, 1, seed=s)`` equals row 37 of ``generate(k, 100, seed=s - 37)`` byte for byte.
        Keep the default ``batch_size`` to get the bytes of ``gansynth export`` on the CPU.

        Args:
            labels: class index per image ``[N]``.
            seeds: noise seed per image ``[N]``.
            truncation: truncation ψ (None: none).
            batch_size: rows per forward pass (1: each image alone, no padding).
        """
        labels = torch.as_tensor(labels, dtype=torch.long).flatten()
        seeds = torch.as_tensor(seeds, dtype=torch.long).flatten()
        if labels.numel() != seeds.numel():
            raise ValueError("labels and seeds must have the same length")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size = {batch_size!r} is out of range", hint=f"batch_size >= 1 (default {CHUNK})")
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ConfigError(
                f"class index out of range 0..{self.num_classes - 1}", hint=f"classes: {self.class_names}"
            )
        out = []
        for start in range(0, labels.numel(), batch_size):
            z = seed_noise(seeds[start : start + batch_size].tolist(), self.z_dim, truncation)  # [n, z_dim]
            y = labels[start : start + batch_size]
            rows, pad = y.numel(), batch_size - y.numel()
            if pad:  # fixed shape: repeat the last row; its copies are dropped below
                z, y = torch.cat([z, z[-1:].expand(pad, -1)]), torch.cat([y, y[-1:].expand(pad)])
            out.append(to_uint8(self.generator(z.to(self.device), y.to(self.device)))[:rows])
        if not out:
            return torch.zeros(0, self.channels, self.resolution, self.resolution, dtype=torch.uint8)
        return torch.cat(out)

    def generate(
        self, class_index: int, n: int, seed: int = 0, truncation: float | None = None, batch_size: int = DEFAULT_BATCH
    ) -> torch.Tensor:
        """``n`` images of one class from seeds ``seed, seed+1, ...``: uint8 ``[n, C, H, W]``.

        Image i is the same for any ``n`` (see :meth:`generate_seeds`).
        """
        return self.generate_seeds([class_index] * n, range(seed, seed + n), truncation, batch_size)


def load_sampler(
    run_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    weights: str = GENERATOR_EMA,
    checkpoint: str = "latest",
) -> Sampler:
    """Load the generator of a run.

    Args:
        run_dir: a run directory; None → the most recent run under ``./runs``.
        device: where to run the generator.
        weights: ``generator_ema`` (default, the averaged weights) or ``generator`` (latest snapshot only).
        checkpoint: ``latest`` (the last snapshot) or ``best`` (the EMA generator with the lowest FID of the
            evaluations during ``fit --eval-kimg``, kept in ``best/``).

    Raises:
        ConfigError: an unknown ``weights`` or ``checkpoint`` name.
        CheckpointError: not a run, no generator (or no ``best/``) yet, or a truncated/modified weights file.
    """
    from gansynth.nn import build_networks

    check_checkpoint(checkpoint)
    if weights not in (GENERATOR_EMA, GENERATOR) or (checkpoint == "best" and weights != GENERATOR_EMA):
        raise ConfigError(
            f"weights {weights!r} with checkpoint {checkpoint!r}",
            hint="latest has generator_ema and generator; best keeps generator_ema only",
        )
    run = resolve_run(run_dir)
    config = Config.from_dict(read_config(run))
    info = read_json(run / DATASET)
    path, record = _weights_file(run, weights, checkpoint)
    digest = hash_file(path)
    expected = record.get("sha256") if checkpoint == "best" else record.get("files", {}).get(path.name)
    if expected is not None and expected != digest:
        raise CheckpointError(
            f"{path} does not match its recorded sha256 (truncated or modified)",
            hint="restore the file or train again; nothing was loaded",
        )
    generator, _ = build_networks(config.model, info["resolution"], info["channels"], len(info["class_names"]))
    try:
        generator.load_state_dict(load_tensors(path))
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path} does not fit the run's config.json ({str(exc).splitlines()[0]})",
            hint="the file belongs to another run",
        ) from None
    dev = torch.device(device)
    return Sampler(
        generator=inference_module(generator, dev),
        class_names=list(info["class_names"]),
        resolution=int(info["resolution"]),
        channels=int(info["channels"]),
        z_dim=config.model.z_dim,
        kimg=float(record.get("kimg") or 0.0),
        checkpoint_sha256=digest,
        run_dir=run,
        dataset_info=info,
        device=dev,
        checkpoint_file=path.relative_to(run).as_posix(),
    )


def _weights_file(run: Path, weights: str, checkpoint: str) -> tuple[Path, dict]:
    """The weights file to load and the record that holds its sha256 and kimg."""
    if checkpoint == "best":
        folder = run / BEST_DIR
        if not (folder / BEST_RECORD).is_file() or not (folder / f"{GENERATOR_EMA}.safetensors").is_file():
            raise CheckpointError(
                f"{run} has no best checkpoint ({BEST_DIR}/ is written by evaluations during fit)",
                hint="train with --eval-kimg E (e.g. --eval-kimg 50), or use the latest checkpoint",
            )
        return folder / f"{GENERATOR_EMA}.safetensors", read_json(folder / BEST_RECORD)
    path = run / f"{weights}.safetensors"
    if not path.exists():
        raise CheckpointError(
            f"{run} has no {path.name}",
            hint="the run has not reached its first snapshot; train longer (`gansynth fit ... --resume`)",
        )
    return path, read_json(run / TRAIN_STATE_JSON) if (run / TRAIN_STATE_JSON).exists() else {}
