"""DiffAugment (Zhao et al. 2020): differentiable translation, color and cutout on real and fake batches.

Each op is applied per image with probability ``p`` (a device tensor, so the adaptive rule never syncs the host).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from gansynth.registry import Registry

AugmentOp = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
AUGMENTATIONS: Registry[AugmentOp] = Registry("augmentation")
TRANSLATION_RATIO = 0.125  # shift by up to 1/8 of the image side
CUTOUT_RATIO = 0.5  # square of half the image side


def _rand(x: torch.Tensor, gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(x.shape[0], *shape, device=x.device, generator=gen, dtype=x.dtype)


@AUGMENTATIONS.register("color")
def color(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Brightness ±0.5, saturation ×[0, 2], contrast ×[0.5, 1.5] (images in [-1, 1])."""
    x = x + (_rand(x, gen, 1, 1, 1) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(x, gen, 1, 1, 1) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x, gen, 1, 1, 1) + 0.5) + mean


@AUGMENTATIONS.register("translation")
def translation(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Integer shift by up to 1/8 of the side, zero padding."""
    n, _, h, w = x.shape
    sh, sw = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    ty = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device, generator=gen)
    tx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device, generator=gen)
    gy = (torch.arange(h, device=x.device)[None, :, None] + ty + 1).clamp(0, h + 1)  # [N, H, 1] into padded rows
    gx = (torch.arange(w, device=x.device)[None, None, :] + tx + 1).clamp(0, w + 1)  # [N, 1, W]
    padded = F.pad(x, (1, 1, 1, 1))  # [N, C, H+2, W+2]; the border is zero
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, gy, gx].permute(0, 3, 1, 2)


@AUGMENTATIONS.register("cutout")
def cutout(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Zero a random square of half the side (clipped at the border)."""
    n, _, h, w = x.shape
    ch, cw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device, generator=gen)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device, generator=gen)
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = ((ys - cy + ch // 2).clamp(min=-1) // ch == 0) & ((xs - cx + cw // 2).clamp(min=-1) // cw == 0)
    return x * (~inside)[:, None].to(x.dtype)


def parse_policy(policy: str) -> list[AugmentOp]:
    """``"translation,color,cutout"`` → registered ops (ConfigError for unknown names)."""
    return [AUGMENTATIONS.get(name.strip()) for name in policy.split(",") if name.strip()]


def augment(x: torch.Tensor, ops: list[AugmentOp], p: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Apply each op to each image with probability ``p`` (0-dim device tensor)."""
    for op in ops:
        keep = (torch.rand(x.shape[0], 1, 1, 1, device=x.device, generator=gen) < p).to(x.dtype)
        x = keep * op(x, gen) + (1 - keep) * x
    return x
