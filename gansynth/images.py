"""The bottom layer of images: uint8 ⇄ float, seeded noise, resizing, grayscale, grid tiling, PNG bytes.

Every other layer (train, sampler, exporter, metrics, classify, benchmark) converts through these functions, so a
pixel means the same thing everywhere: uint8 ``[N, C, H, W]`` in [0, 255] on disk and between stages, float in
[-1, 1] inside networks. Nothing here knows about runs, configs or classes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import torch
from PIL import Image

from gansynth.errors import ConfigError, is_number

# The generation unit: image slots per generator forward pass. sampler.generate, the export and
# SyntheticDataset(exact=True) all run the network on batches of this shape, so they produce the same bytes for a
# seed on the CPU (a row's float result can change with the batch *shape*, never with the other rows).
CHUNK = 64
MIN_TRUNCATION = 0.01  # below it the redraw loop of the truncation trick needs ~100 draws per entry
PIXEL_MEAN = PIXEL_STD = 127.5  # to_float: x_float = (x_uint8 - mean) / std, recorded with a saved classifier
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, PIL's "L" conversion


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W]`` float in [-1, 1] → uint8 in [0, 255] on the CPU (the only float → uint8 conversion)."""
    scaled = ((images.detach().float() + 1.0) * 127.5).round_().clamp_(0, 255)
    return scaled.to(torch.uint8).cpu().contiguous()  # NCHW whatever the network's memory layout


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[N, C, H, W]`` → float in [-1, 1] (same device)."""
    return images.float().div_(127.5).sub_(1.0)


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``[N, C, H, W]`` → uint8 ``[N, C, size, size]``, antialiased (bilinear); unchanged at the same size.

    The one resize of generated images to the output size: ``sample``, ``export`` and ``SyntheticDataset`` apply it
    to the same uint8 network output, so their bytes agree.
    """
    if tuple(images.shape[-2:]) == (size, size) or images.shape[0] == 0:
        return images if images.shape[0] else images.new_zeros(*images.shape[:2], size, size)
    x = torch.nn.functional.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True)
    return x.round_().clamp_(0, 255).to(torch.uint8).contiguous()


def match_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 ``[N, C, H, W]`` → ``channels`` (gray → RGB by repetition, RGB → gray by the ITU-R 601-2 luma)."""
    if images.shape[1] == channels:
        return images
    if channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    luma = torch.tensor(LUMA, device=images.device).view(1, 3, 1, 1)
    return (images.float() * luma).sum(dim=1, keepdim=True).round().clamp(0, 255).to(torch.uint8)


def check_truncation(truncation: float | None) -> None:
    """Raise ConfigError unless ``truncation`` is None or a finite number >= :data:`MIN_TRUNCATION`."""
    if truncation is None:
        return
    ok = is_number(truncation)
    if not ok or truncation < MIN_TRUNCATION:
        raise ConfigError(
            f"truncation = {truncation!r} is out of range",
            hint=f"truncation ψ must be a number >= {MIN_TRUNCATION} (e.g. 0.7), or None for no truncation",
        )


def seed_noise(seeds: Sequence[int], z_dim: int, truncation: float | None = None) -> torch.Tensor:
    """``[N, z_dim]`` standard normal noise, row i drawn from its own CPU generator seeded with ``seeds[i]``.

    With ``truncation`` ψ, entries with ``|z| > ψ`` are redrawn (the truncation trick, Brock et al. 2019).

    Raises:
        ConfigError: a truncation that is not a number >= 0.01.
    """
    check_truncation(truncation)
    rows = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(int(seed))
        z = torch.randn(z_dim, generator=gen)
        if truncation is not None:
            while (bad := z.abs() > truncation).any():
                z[bad] = torch.randn(int(bad.sum()), generator=gen)
        rows.append(z)
    return torch.stack(rows) if rows else torch.zeros(0, z_dim)


def tile(images: torch.Tensor, columns: int) -> torch.Tensor:
    """uint8 ``[N, C, H, W]`` → one uint8 ``[C, H·rows, W·columns]`` grid, row-major, the last row padded black."""
    n, c, h, w = images.shape
    rows = max(1, math.ceil(n / columns))
    canvas = images.new_zeros(rows * columns, c, h, w)
    canvas[:n] = images
    return canvas.view(rows, columns, c, h, w).permute(2, 0, 3, 1, 4).reshape(c, rows * h, columns * w)


def encode_png(image: torch.Tensor) -> bytes:
    """uint8 ``[C, H, W]`` → PNG bytes."""
    array = image.permute(1, 2, 0).numpy()
    pil = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return buffer.getvalue()
