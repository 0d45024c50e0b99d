"""mixup for the classifier training loop: convex combinations of pairs of images and of their (smoothed) targets.

Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018: every batch is replaced by
``λ · x + (1 − λ) · x[perm]`` with ``λ ~ Beta(α, α)`` (one λ per batch, ``perm`` a random pairing of the batch), and
the target by ``λ · y + (1 − λ) · y[perm]``. Cross-entropy is linear in the target, so the loss against the mixed
target is ``λ · loss(y) + (1 − λ) · loss(y[perm])`` for any per-batch loss that is itself linear in a target
distribution — label smoothing, the synthetic weights of :func:`gansynth.mixing.mixed_loss` and balanced softmax
included — which is how :func:`mixup_loss` computes it (no soft-label tensor needed).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

MIXUP_ALPHA = 0.2  # Beta(α, α) parameter of the benchmark's mixup arm (see benchmarks/README.md for the choice)


def sample_lambda(alpha: float, rng: np.random.Generator) -> float:
    """One mixing coefficient ``λ ~ Beta(alpha, alpha)`` in [0, 1], drawn on the host (no device sync)."""
    return float(rng.beta(alpha, alpha))


def mix_batch(x: torch.Tensor, lam: float, perm: torch.Tensor) -> torch.Tensor:
    """``λ · x + (1 − λ) · x[perm]``.

    Args:
        x: ``[B, C, H, W]`` float images (already augmented and normalised).
        lam: mixing coefficient in [0, 1].
        perm: ``[B]`` int64 permutation pairing image i with image ``perm[i]``.

    Returns:
        ``[B, C, H, W]`` mixed images, same dtype and memory layout as ``x``.
    """
    return x.mul(lam).add_(x[perm], alpha=1.0 - lam)


def mixup_loss(
    loss: Callable[[torch.Tensor], torch.Tensor], index: torch.Tensor, lam: float, perm: torch.Tensor
) -> torch.Tensor:
    """The loss against the mixed targets: ``λ · loss(index) + (1 − λ) · loss(index[perm])``.

    Args:
        loss: maps ``[B]`` set indices (the targets, and synthetic flags, of those images) to the scalar batch loss
            of the current logits.
        index: ``[B]`` set indices of the batch, in batch order.
        lam: the mixing coefficient used by :func:`mix_batch`.
        perm: the pairing used by :func:`mix_batch`.
    """
    return lam * loss(index) + (1.0 - lam) * loss(index[perm])


class Mixup:
    """The per-step mixup draws of one training run: λ from a host RNG, the pairing from the device generator.

    Seeded by the classifier seed, so a run is reproducible; ``alpha`` 0 turns mixup off (:meth:`draw` → None).
    """

    def __init__(self, alpha: float, seed: int, generator: torch.Generator) -> None:
        self.alpha = alpha
        self.rng = np.random.default_rng(seed)
        self.generator = generator

    def draw(self, batch: int) -> tuple[float, torch.Tensor] | None:
        """``(λ, perm)`` for a batch of ``batch`` images, or None when mixup is off."""
        if self.alpha <= 0:
            return None
        lam = sample_lambda(self.alpha, self.rng)
        perm = torch.randperm(batch, generator=self.generator, device=self.generator.device)
        return lam, perm
