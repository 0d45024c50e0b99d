"""Adversarial objectives, registered by name: minimax, nonsaturating, hinge, wgan-gp."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gansynth.registry import Registry


@dataclass(frozen=True)
class Loss:
    """A GAN objective on raw D logits ``[N]``.

    Attributes:
        d: (real logits, fake logits) → scalar loss for D.
        g: fake logits → scalar loss for G.
        gradient_penalty: whether D is also penalized on ``(‖∇D(x̂)‖ − 1)²`` at real/fake interpolates.
    """

    d: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    g: Callable[[torch.Tensor], torch.Tensor]
    gradient_penalty: bool = False


LOSSES: Registry[Loss] = Registry("loss")


def _d_logistic(r: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return F.softplus(-r).mean() + F.softplus(f).mean()


# Goodfellow et al. 2014: G minimizes log(1 - D(G(z))) = -softplus(f); saturates when D wins.
LOSSES.add("minimax", Loss(d=_d_logistic, g=lambda f: -F.softplus(f).mean()))
LOSSES.add("nonsaturating", Loss(d=_d_logistic, g=lambda f: F.softplus(-f).mean()))
LOSSES.add("hinge", Loss(d=lambda r, f: F.relu(1 - r).mean() + F.relu(1 + f).mean(), g=lambda f: -f.mean()))
LOSSES.add("wgan-gp", Loss(d=lambda r, f: f.mean() - r.mean(), g=lambda f: -f.mean(), gradient_penalty=True))


def gradient_penalty(
    d: Callable, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017) at random interpolates of real and fake images."""
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, generator=generator)
    x = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out, _ = d(x, labels)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
