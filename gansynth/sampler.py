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

from gansynth.checkpoint import check_checkpoint, resolve_run
from gansynth.config import Config
from gansynth.errors import CheckpointError, ConfigError, first_line, is_int
from gansynth.images import CHUNK, check_truncation, resize, seed_noise, to_uint8
from gansynth.rundir import GENERATOR, GENERATOR_EMA, RunDir
from gansynth.runtime import as_device, inference_module

DEFAULT_BATCH = CHUNK  # the canonical batch shape, see gansynth.images.CHUNK
MAX_SEED = 2**53  # seeds are integers in [0, 2^53): exact in a float64 JSON number, far from int64 overflow


def check_size(size: int | None) -> None:
    """Raise ConfigError unless ``size`` is None or an integer side in [4, MAX_OUTPUT_SIZE]."""
    from gansynth.rundir import MAX_OUTPUT_SIZE

    if size is None:
        return
    if not is_int(size) or not 4 <= size <= MAX_OUTPUT_SIZE:
        raise ConfigError(
            f"size = {size!r} is out of range",
            hint=f"size is the side of the written images in px, an integer in [4, {MAX_OUTPUT_SIZE}]",
        )


def check_seeds(first: int, count: int = 1, what: str = "seed") -> None:
    """Raise ConfigError unless seeds ``first .. first + count - 1`` are integers in [0, 2^53)."""
    ok = is_int(first) and first >= 0
    if not ok or first + count > MAX_SEED:
        raise ConfigError(
            f"{what} {first!r} is out of range" + (f" for {count} images" if count > 1 else ""),
            hint=f"seeds are integers in [0, 2^53) = [0, {MAX_SEED}); image i uses seed + i",
        )


def as_index_tensor(values, what: str) -> torch.Tensor:
    """A 1-D int64 tensor of integral values (ConfigError for 1.7, "a", or a nested list)."""
    try:
        tensor = torch.as_tensor(values)
    except (TypeError, ValueError, RuntimeError, OverflowError):
        raise ConfigError(f"{what} must be a sequence of integers", hint=f"got {str(values)[:60]}") from None
    if tensor.dtype.is_floating_point or tensor.dtype.is_complex or tensor.dtype == torch.bool:
        raise ConfigError(f"{what} must be integers, got {tensor.dtype}", hint="class indices and seeds are ints")
    return tensor.to(torch.long).flatten()


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

    @property
    def native_size(self) -> int:
        """The side images are written at by default: the real images' own size when they all share one square
        size (a 28 px folder trained at 32 px gives 28 px images), else the trained resolution."""
        return int(self.dataset_info.get("native_size") or self.resolution)

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
        size: int | None = None,
    ) -> torch.Tensor:
        """Images for explicit (label, seed) pairs: uint8 ``[N, C, size, size]`` on the CPU.

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
            size: side of the returned images (None: :attr:`native_size`; :attr:`resolution` for the network's own
                output); the network's uint8 output is resized with :func:`resize`.
        """
        check_size(size)
        size = self.native_size if size is None else size
        labels, seeds = as_index_tensor(labels, "labels"), as_index_tensor(seeds, "seeds")
        if labels.numel() != seeds.numel():
            raise ConfigError("labels and seeds must have the same length", hint="one seed per label")
        if seeds.numel():
            check_seeds(int(seeds.min()), what="seed")
            check_seeds(int(seeds.max()), what="seed")
        check_truncation(truncation)
        if not is_int(batch_size) or batch_size < 1:
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
            out.append(resize(to_uint8(self.generator(z.to(self.device), y.to(self.device)))[:rows], size))
        if not out:
            return torch.zeros(0, self.channels, size, size, dtype=torch.uint8)
        return torch.cat(out)

    def generate(
        self,
        class_index: int,
        n: int,
        seed: int = 0,
        truncation: float | None = None,
        batch_size: int = DEFAULT_BATCH,
        size: int | None = None,
    ) -> torch.Tensor:
        """``n`` images of one class from seeds ``seed, seed+1, ...``: uint8 ``[n, C, size, size]``.

        Image i is the same for any ``n`` (see :meth:`generate_seeds`); ``size`` None gives :attr:`native_size`.
        """
        if not is_int(n) or n < 0:
            raise ConfigError(f"n = {n!r} is out of range", hint="n is the number of images, an integer >= 0")
        if not is_int(class_index):
            raise ConfigError(f"class_index {class_index!r} is not an integer", hint="use sampler.class_index(name)")
        check_seeds(seed, n)
        return self.generate_seeds([class_index] * n, range(seed, seed + n), truncation, batch_size, size)


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
    dev = as_device(device)
    run = RunDir(resolve_run(run_dir))
    config = Config.from_dict(run.config())
    info = run.dataset()
    name, digest, kimg = run.generator_file(weights, checkpoint)  # sha256 checked against the run's record
    resolution, channels, num_classes = info["resolution"], info["channels"], len(info["class_names"])
    check_fits(run.path / name, config, resolution, channels, num_classes, run.tensor_size(name))
    generator, _ = build_networks(config.model, resolution, channels, num_classes)
    try:
        generator.load_state_dict(run.tensors(name))
    except RuntimeError as exc:
        raise CheckpointError(
            f"{run.path / name} does not fit the run's config.json ({first_line(exc)})",
            hint="the file belongs to another run",
        ) from None
    return Sampler(
        generator=inference_module(generator, dev),
        class_names=list(info["class_names"]),
        resolution=int(resolution),
        channels=int(channels),
        z_dim=config.model.z_dim,
        kimg=float(kimg or 0.0),
        checkpoint_sha256=digest,
        run_dir=run.path,
        dataset_info=info,
        device=dev,
        checkpoint_file=name,
    )


def check_fits(path: Path, config: Config, resolution: int, channels: int, num_classes: int, size: int) -> int:
    """The generator's float32 parameter bytes, counted without allocating (meta device), checked against ``size``,
    the weights file's length: a config.json that asks for a network the file cannot hold is refused before the
    network is built."""
    from gansynth.nn import build_networks

    with torch.device("meta"):
        generator, _ = build_networks(config.model, resolution, channels, num_classes)
    needed = sum(t.numel() * t.element_size() for t in generator.state_dict().values())
    if needed > size:
        raise CheckpointError(
            f"{path} ({size} bytes) cannot hold the generator config.json describes ({needed} bytes of weights)",
            hint="config.json and the weights belong to different runs, or one of them was modified",
        )
    return needed
