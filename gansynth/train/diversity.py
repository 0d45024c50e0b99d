"""The fit's own per-class diversity check: how much a class's generated images vary, relative to its real ones.

Cheap on purpose (no feature extractor, no classifier): for every class, the mean pairwise L2 distance of
``PER_CLASS`` generated images (fixed seeds) divided by that of up to ``PER_CLASS`` real images of the class, in pixel
space at the trained resolution. A collapsed class — one image, or a few, whatever the noise — scores near 0; a
generator as varied as the data scores near 1. ``gansynth evaluate`` gives the full per-class recall/coverage.
"""

from __future__ import annotations

import torch

from gansynth.data import ImageDataset
from gansynth.images import seed_noise, to_float

PER_CLASS = 64
LOW_DIVERSITY = 0.5  # a class below this ratio gets a warning
DIVERSITY_SEED = 777_000


def mean_pairwise_distance(images: torch.Tensor) -> float:
    """Mean L2 distance over distinct pairs of ``[N, ...]`` float images (0 for fewer than two)."""
    flat = images.flatten(1).double()
    n = flat.shape[0]
    if n < 2:
        return 0.0
    return float(torch.cdist(flat, flat).sum() / (n * (n - 1)))


@torch.no_grad()
def diversity_ratios(generator: torch.nn.Module, dataset: ImageDataset, z_dim: int, device: torch.device) -> dict:
    """class name → generated / real mean pairwise distance (classes with fewer than 2 real images are left out)."""
    was_training = generator.training
    generator.eval()
    ratios = {}
    pick = torch.Generator().manual_seed(DIVERSITY_SEED)
    try:
        for label, name in enumerate(dataset.class_names):
            idx = (dataset.labels == label).nonzero().flatten()
            if idx.numel() < 2:
                continue
            idx = idx[torch.randperm(idx.numel(), generator=pick)[:PER_CLASS]]
            real = mean_pairwise_distance(to_float(dataset.images[idx]))
            z = seed_noise(range(DIVERSITY_SEED, DIVERSITY_SEED + PER_CLASS), z_dim).to(device)
            y = torch.full((PER_CLASS,), label, dtype=torch.long, device=device)
            fake = mean_pairwise_distance(generator(z, y).float().clamp(-1, 1).cpu())
            ratios[name] = round(fake / real, 4) if real > 0 else 1.0
    finally:
        generator.train(was_training)
    return ratios


def low_diversity(ratios: dict[str, float], threshold: float = LOW_DIVERSITY) -> dict[str, float]:
    """The classes whose ratio is below ``threshold``."""
    return {name: r for name, r in ratios.items() if r < threshold}


def describe(low: dict[str, float], total: int) -> str:
    """One warning line naming the low-diversity classes (the first 10)."""
    shown = ", ".join(f"{name} ({ratio:.2f})" for name, ratio in list(low.items())[:10])
    more = f" and {len(low) - 10} more" if len(low) > 10 else ""
    return (
        f"low diversity in {len(low)} of {total} classes: {shown}{more} — generated images of these classes vary less "
        f"than half as much as the real ones (possible mode collapse); train longer, keep DiffAugment on, or add "
        f"--set train.lecam_weight=0.3, and check with `gansynth evaluate`"
    )
