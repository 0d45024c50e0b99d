"""Exponential moving average of the generator weights, and BatchNorm standing statistics for the averaged copy."""

from __future__ import annotations

import copy

import torch
from torch import nn


def make_ema(generator: nn.Module) -> nn.Module:
    ema = copy.deepcopy(generator).eval()
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: nn.Module, generator: nn.Module, beta: float) -> None:
    """``ema ← beta·ema + (1 − beta)·generator`` for parameters; buffers are copied."""
    ema_params = [p for p in ema.parameters()]
    params = [p.detach() for p in generator.parameters()]
    torch._foreach_lerp_(ema_params, params, 1.0 - beta)  # one fused kernel per dtype/device, no host sync
    torch._foreach_copy_(list(ema.buffers()), list(generator.buffers()))


@torch.no_grad()
def standing_statistics(
    generator: nn.Module,
    num_classes: int,
    z_dim: int,
    device: torch.device,
    batches: int = 16,
    batch_size: int = 64,
    seed: int = 0,
) -> None:
    """Recompute BatchNorm running statistics of ``generator`` from its own outputs (BigGAN's standing stats).

    The averaged weights do not match the running statistics copied from the trained generator; averaging
    batch statistics over fixed-seed noise makes eval-mode sampling match the averaged weights, deterministically.
    """
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    was_training = generator.training
    generator.eval()
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the passes
        m.train()
    gen = torch.Generator(device).manual_seed(seed)
    for _ in range(batches):
        z = torch.randn(batch_size, z_dim, device=device, generator=gen)
        labels = torch.randint(0, num_classes, (batch_size,), device=device, generator=gen)
        generator(z, labels)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
        m.eval()
    generator.train(was_training)
