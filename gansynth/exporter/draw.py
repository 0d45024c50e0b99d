"""Generation for the export: a group of units → their images (and, with a filter, their kept candidates).

The sampler runs the network on batches of one fixed shape, and a row's result depends on that shape only, never on
the other rows or its position. So units can share forward passes in any grouping without changing a pixel as long
as the batch shape is the same: the CPU export uses one unit per batch (``CHUNK`` rows, the shape of
``sampler.generate`` and ``SyntheticDataset``); a GPU export groups several units per forward for throughput.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from gansynth.exporter.plan import Unit

Scorer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Drawn:
    """The outcome of one unit.

    Attributes:
        seeds: seeds of the kept images, in seed order (``quota`` of them unless the filter failed).
        images: uint8 ``[len(seeds), C, H, W]``.
        drawn: candidates generated.
        passed: candidates that passed the filter (= ``drawn`` without one).
        scores: the scorer's probability per kept image (None without a filter).
        dropped: images the diversity filter (:mod:`.filter`) dropped from the quota, by reason.
        signatures: hex signature per kept image (diversity filter only), for the near-duplicate check.
    """

    seeds: list[int]
    images: torch.Tensor
    drawn: int
    passed: int
    scores: list[float] | None
    dropped: dict[str, int] = field(default_factory=dict)
    signatures: list[str] | None = None

    def complete(self, unit: Unit) -> bool:
        return len(self.seeds) + sum(self.dropped.values()) == unit.quota

    def screen(self, screen, label: int) -> None:
        """Apply the diversity filter (``screen``: an :class:`~gansynth.exporter.filter.ExportFilter`) in place."""
        self.seeds, self.images, self.scores, self.dropped, self.signatures = screen.apply(
            label, self.seeds, self.images, self.scores
        )


def draw_units(
    sampler,
    units: list[Unit],
    seed: int,
    truncation: float | None,
    batch_size: int,
    min_confidence: float | None = None,
    scorer: Scorer | None = None,
) -> list[Drawn]:
    """Generate ``units`` together in fixed-shape batches of ``batch_size`` rows; one :class:`Drawn` per unit.

    Without a filter a unit is its ``quota`` seeds. With ``min_confidence``, try ``t`` of every unfinished unit is
    generated together and scored unit by unit; a unit keeps its first passing candidates in seed order until its
    quota is met, for at most ``unit.max_tries()`` tries.
    """
    if min_confidence is None:
        seeds = [list(u.candidates(seed, 0, False)) for u in units]
        images = _generate(sampler, units, seeds, truncation, batch_size)
        return [Drawn(s, x, len(s), len(s), None) for s, x in zip(seeds, images)]
    kept: list[list[tuple[int, torch.Tensor, float]]] = [[] for _ in units]
    drawn, passed = [0] * len(units), [0] * len(units)
    for attempt in range(max(u.max_tries() for u in units)):
        active = [i for i, u in enumerate(units) if len(kept[i]) < u.quota and attempt < u.max_tries()]
        if not active:
            break
        seeds = [list(units[i].candidates(seed, attempt, True)) for i in active]
        images = _generate(sampler, [units[i] for i in active], seeds, truncation, batch_size)
        # scored unit by unit: each call sees one unit's CHUNK candidates, whatever else shares the generator pass,
        # so which seeds pass never depends on the grouping (shard, resume point, device)
        probs = [
            scores(scorer, x, torch.full((len(s),), units[i].label, dtype=torch.long))
            for i, s, x in zip(active, seeds, images)
        ]
        for i, unit_seeds, unit_images, unit_probs in zip(active, seeds, images, probs):
            ok = (unit_probs >= min_confidence).tolist()
            drawn[i], passed[i] = drawn[i] + len(unit_seeds), passed[i] + sum(ok)
            passing = [(s, unit_images[j], float(unit_probs[j])) for j, s in enumerate(unit_seeds) if ok[j]]
            kept[i] = (kept[i] + passing)[: units[i].quota]
    return [
        Drawn([s for s, _, _ in k], _stack(k, sampler), d, p, [c for _, _, c in k])
        for k, d, p in zip(kept, drawn, passed)
    ]


def _generate(sampler, units: list[Unit], seeds: list[list[int]], truncation, batch_size: int) -> list[torch.Tensor]:
    """One ``generate_seeds`` call for all units' seeds; the images split back per unit."""
    labels = [u.label for u, s in zip(units, seeds) for _ in s]
    images = sampler.generate_seeds(
        labels, [x for s in seeds for x in s], truncation, batch_size=batch_size, size=sampler.resolution
    )
    return list(images.split([len(s) for s in seeds]))


def _stack(kept: list, sampler) -> torch.Tensor:
    if kept:
        return torch.stack([x for _, x, _ in kept])
    return torch.zeros(0, sampler.channels, sampler.resolution, sampler.resolution, dtype=torch.uint8)


def scores(scorer: Scorer, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``scorer(images, labels)`` as a float CPU vector ``[N]``, checked for length."""
    probs = torch.as_tensor(scorer(images, labels)).detach().float().cpu().flatten()
    if probs.numel() != images.shape[0]:
        raise ValueError(f"the scorer returned {probs.numel()} scores for {images.shape[0]} images")
    return probs
