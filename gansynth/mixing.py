"""Mixing synthetic images into classifier training: loss weight, label smoothing, batch share, schedule, prior.

The benchmark trains its ``real+synthetic`` arm with these pieces, and a training pipeline can use the same ones:

- :class:`Mixing`: how the synthetic part joins the real one (a frozen, validated spec);
- :class:`MixedDataset`: real + synthetic images behind one index, items ``(image, label, is_synthetic)``, with
  :meth:`MixedDataset.batch_sampler` (fixed-size batches honouring the synthetic share and the schedule) and
  :meth:`MixedDataset.log_prior` (the class prior for balanced softmax);
- :func:`mixed_loss`: per-sample cross-entropy with the synthetic weight and label smoothing, optionally
  logit-adjusted (balanced softmax: ``logits + log prior`` in training, plain logits at test time);
- :func:`head_only`: whether a step of the ``head`` schedule trains the classifier head alone.

Batches. Real and synthetic images each come in random permutations of their part (every image used evenly); with
``balanced_batches`` each part is drawn instead with equal probability per class (with replacement, as the
benchmark's ``rebalanced`` arm draws its batches), so that tail classes are seen as often as head ones.

Schedules. ``whole``: synthetic images in every batch. ``deferred``: real images only until ``start`` × steps, then
mixed batches (deferred re-balancing). ``head``: the whole network on real images until ``start`` × steps, then
mixed batches update the classifier head only (the backbone is frozen, as in classifier re-training).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset, Sampler

from gansynth.errors import ConfigError, DataError, is_number

SCHEDULES = ("whole", "deferred", "head")
BOOLEAN_KEYS = ("balanced_softmax", "balanced_batches")
DEFAULT_WEIGHT = 0.3  # DiffuLT's best loss weight for generated samples
PRIOR_FLOOR = 1.0  # a class with no training image counts as this many, so its log prior stays finite


@dataclass(frozen=True)
class Mixing:
    """How synthetic images join the real ones when a classifier trains.

    Attributes:
        weight: loss weight of a synthetic sample relative to a real one (1.0); 0 means no synthetic images at all.
        label_smoothing: label smoothing of the synthetic samples' targets, in [0, 1) (real ones keep the
            classifier's own).
        max_share: largest share of a batch that synthetic images may take, in [0, 1]; below it a batch holds
            them in proportion to the set sizes.
        schedule: ``whole``, ``deferred`` (synthetic images from ``start`` × steps on) or ``head`` (from then on,
            mixed batches train the classifier head only).
        start: share of the training steps before synthetic images join, in [0, 1) (``deferred`` / ``head``).
        balanced_softmax: logit-adjusted loss with the class prior of real + ``weight`` × synthetic counts.
        balanced_batches: draw the real part of every batch, and the synthetic part, with equal probability per
            class (class-balanced resampling); without synthetic images this is the ``rebalanced`` arm. Not with
            ``balanced_softmax``: both correct for the class prior.
    """

    weight: float = DEFAULT_WEIGHT
    label_smoothing: float = 0.1
    max_share: float = 0.5
    schedule: str = "whole"
    start: float = 0.5
    balanced_softmax: bool = False
    balanced_batches: bool = False

    def __post_init__(self) -> None:
        checks = {
            "weight": (">= 0", lambda v: v >= 0),
            "label_smoothing": ("in [0, 1)", lambda v: 0 <= v < 1),
            "max_share": ("in [0, 1]", lambda v: 0 <= v <= 1),
            "start": ("in [0, 1)", lambda v: 0 <= v < 1),
        }
        for key, (allowed, ok) in checks.items():
            value = getattr(self, key)
            number = is_number(value)
            if not (number and ok(value)):
                raise ConfigError(f"mixing {key} = {value!r} is out of range", hint=f"{key} must be {allowed}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(
                f"mixing schedule {self.schedule!r} is unknown", hint=f"schedule must be one of {', '.join(SCHEDULES)}"
            )
        for key in BOOLEAN_KEYS:
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"mixing {key} = {getattr(self, key)!r}", hint="true or false")
        if self.balanced_softmax and self.balanced_batches:  # the prior would be corrected for twice
            raise ConfigError(
                "mixing balanced_softmax and balanced_batches both correct for the class prior",
                hint="pick one: balanced_softmax=true (logit adjustment) or balanced_batches=true (resampling)",
            )

    @property
    def uses_synthetic(self) -> bool:
        """Whether any synthetic image is ever drawn (weight and share both above 0)."""
        return self.weight > 0 and self.max_share > 0

    def first_mixed_step(self, total_steps: int) -> int:
        """The first step whose batches may hold synthetic images."""
        return 0 if self.schedule == "whole" else round(self.start * total_steps)

    def describe(self) -> str:
        """A short label, e.g. ``w=0.3 ls=0.1 share≤0.5 deferred@0.5 +bs`` or ``no synthetic +balanced``.

        ``+bs``: balanced softmax; ``+balanced``: class-balanced batches.
        """
        bs = (" +bs" if self.balanced_softmax else "") + (" +balanced" if self.balanced_batches else "")
        if not self.uses_synthetic:
            return f"no synthetic{bs}"
        when = "whole" if self.schedule == "whole" else f"{self.schedule}@{self.start:g}"
        return f"w={self.weight:g} ls={self.label_smoothing:g} share≤{self.max_share:g} {when}{bs}"

    def python(self) -> str:
        """The constructor call that rebuilds this mixing, for a user to copy."""
        return (
            f"Mixing(weight={self.weight:g}, label_smoothing={self.label_smoothing:g}, max_share={self.max_share:g}, "
            f"schedule={self.schedule!r}, start={self.start:g}, balanced_softmax={self.balanced_softmax}, "
            f"balanced_batches={self.balanced_batches})"
        )


NO_SYNTHETIC = Mixing(weight=0.0)
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def parse_mixing(text: str) -> Mixing:
    """``"weight=0.3,max_share=0.5,schedule=deferred,balanced_softmax=true"`` → Mixing; ``"none"`` → no synthetic.

    Unset keys keep :class:`Mixing`'s defaults.

    Raises:
        ConfigError: an unknown key (did-you-mean), a malformed pair or a value out of range.
    """
    from dataclasses import fields

    from gansynth.registry import did_you_mean

    if text.strip().lower() in ("none", "no-synthetic"):
        return NO_SYNTHETIC
    types = {f.name: f.type for f in fields(Mixing)}
    values: dict[str, object] = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        key, sep, raw = (item.strip() for item in pair.partition("="))
        if not sep:
            raise ConfigError(f"mixing {pair!r} is not key=value", hint=f"e.g. weight=0.3; keys: {', '.join(types)}")
        if key not in types:
            raise ConfigError(f"unknown mixing key {key!r}", hint=did_you_mean(key, list(types)))
        if key == "schedule":
            values[key] = raw
        elif key in BOOLEAN_KEYS:
            if raw.lower() not in (*_TRUE, *_FALSE):
                raise ConfigError(f"mixing {key}={raw!r}", hint="true or false")
            values[key] = raw.lower() in _TRUE
        else:
            try:
                values[key] = float(raw)
            except ValueError:
                raise ConfigError(f"mixing {key}={raw!r} is not a number", hint=f"e.g. {key}=0.5") from None
    return Mixing(**values)


def head_only(mixing: Mixing | None, step: int, total_steps: int) -> bool:
    """Whether ``step`` (0-based) of ``total_steps`` trains the classifier head alone (the ``head`` schedule)."""
    return (
        mixing is not None
        and mixing.uses_synthetic
        and mixing.schedule == "head"
        and step >= mixing.first_mixed_step(total_steps)
    )


def synthetic_per_batch(mixing: Mixing, real: int, synthetic: int, batch_size: int) -> int:
    """Synthetic images in a mixed batch: the sets' proportion, capped at ``max_share``; at least one real image."""
    if not mixing.uses_synthetic or synthetic == 0:
        return 0
    share = min(mixing.max_share, synthetic / (real + synthetic))
    return min(batch_size - 1 if real else batch_size, max(1, round(share * batch_size)))


def log_prior(
    real_counts: Sequence[int], synthetic_counts: Sequence[int] | None = None, weight: float = 1.0
) -> torch.Tensor:
    """Log class prior ``[K]`` (float32) from real counts plus ``weight`` × synthetic counts (balanced softmax)."""
    counts = torch.as_tensor(list(real_counts), dtype=torch.float64)
    if synthetic_counts is not None:
        counts = counts + weight * torch.as_tensor(list(synthetic_counts), dtype=torch.float64)
    counts = counts.clamp_min(PRIOR_FLOOR)
    return (counts / counts.sum()).log().float()


def mixed_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    is_synthetic: torch.Tensor | None = None,
    mixing: Mixing | None = None,
    label_smoothing: float = 0.0,
    prior: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weighted cross-entropy of a batch: synthetic samples weigh ``mixing.weight`` and get their own smoothing.

    Args:
        logits: ``[B, K]`` raw scores.
        targets: ``[B]`` int64 class indices.
        is_synthetic: ``[B]`` bool, True for synthetic samples; None → all real.
        mixing: the synthetic weight and smoothing; None → every sample weighs 1.
        label_smoothing: smoothing of the real samples' targets.
        prior: ``[K]`` log class prior (:func:`log_prior`) added to the logits (balanced softmax); None → plain.

    Returns:
        The scalar loss ``Σ w_i ce_i / Σ w_i`` (0 when every weight is 0).
    """
    z = logits.float() if prior is None else logits.float() + prior.to(logits.device)
    logp = z.log_softmax(dim=1)
    nll = -logp.gather(1, targets[:, None]).squeeze(1)  # [B]
    uniform = -logp.mean(dim=1)  # [B], the cross-entropy against a uniform target
    smoothing = torch.full_like(nll, label_smoothing)
    weights = torch.ones_like(nll)
    if is_synthetic is not None and mixing is not None:
        synthetic = is_synthetic.to(logits.device)
        smoothing = torch.where(synthetic, torch.full_like(nll, mixing.label_smoothing), smoothing)
        weights = torch.where(synthetic, torch.full_like(nll, mixing.weight), weights)
    ce = (1 - smoothing) * nll + smoothing * uniform
    return (weights * ce).sum() / weights.sum().clamp_min(torch.finfo(weights.dtype).tiny)


def mixed_batches(
    real: int,
    synthetic: int,
    batch_size: int,
    total_steps: int,
    mixing: Mixing | None,
    generator: torch.Generator,
    labels: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Batch indices ``[total_steps, batch_size]`` into ``[real images..., synthetic images...]``.

    Real and synthetic indices each come from consecutive random permutations of their own part (every image used
    evenly), or with ``mixing.balanced_batches`` from class-balanced draws of their part (:func:`balanced_draws`;
    ``labels`` = (real labels ``[real]``, synthetic labels ``[synthetic]``) is then required). Before
    ``mixing.first_mixed_step`` a batch is real only; from then on it holds :func:`synthetic_per_batch` synthetic
    images.
    """
    device = generator.device
    if real < 1 and (mixing is None or not mixing.uses_synthetic or synthetic < 1):
        raise DataError("no training images to draw batches from", hint="give at least one real image")
    first = total_steps if mixing is None else mixing.first_mixed_step(total_steps)
    mixed = 0 if mixing is None else synthetic_per_batch(mixing, real, synthetic, batch_size)
    plain_steps, mixed_steps = min(first, total_steps), total_steps - min(first, total_steps)
    n_real = plain_steps * batch_size + mixed_steps * (batch_size - mixed)
    if mixing is not None and mixing.balanced_batches:
        if labels is None:
            raise ConfigError("balanced_batches needs the labels of both parts", hint="pass labels=(real, synthetic)")
        real_idx = balanced_draws(labels[0].to(device), n_real, generator)
        syn_idx = real + balanced_draws(labels[1].to(device), mixed_steps * mixed, generator)
    else:
        real_idx = _permutations(real, n_real, generator, device)
        syn_idx = real + _permutations(synthetic, mixed_steps * mixed, generator, device)
    head = real_idx[: plain_steps * batch_size].view(plain_steps, batch_size)
    tail_real = real_idx[plain_steps * batch_size :].view(mixed_steps, batch_size - mixed)
    tail = torch.cat([tail_real, syn_idx.view(mixed_steps, mixed)], dim=1)
    return torch.cat([head, tail])


def balanced_draws(labels: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` indices into ``labels`` ``[N]`` drawn with replacement, every class present with equal probability."""
    if count == 0:
        return torch.zeros(0, dtype=torch.long, device=labels.device)
    per_class = torch.bincount(labels).clamp_min(1).float()
    weights = (1.0 / per_class)[labels]  # every class gets the same total probability
    return torch.multinomial(weights, count, replacement=True, generator=generator)


def _permutations(size: int, count: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    if count == 0:
        return torch.zeros(0, dtype=torch.long, device=device)
    passes = -(-count // size)
    return torch.cat([torch.randperm(size, generator=generator, device=device) for _ in range(passes)])[:count]


class MixedDataset(Dataset):
    """Real and synthetic samples behind one index: ``[0, len(real))`` real, then the synthetic ones.

    Items are ``(image, label, is_synthetic)``; both parts are any map-style datasets whose items start with
    ``(image, label)`` (torchvision ``ImageFolder``, :class:`gansynth.SyntheticDataset`, a ``TensorDataset``).

    Example::

        mixing = Mixing(weight=0.3, label_smoothing=0.1, max_share=0.5, schedule="deferred")
        data = MixedDataset(real, synthetic, real_labels, synthetic_labels)
        loader = DataLoader(data, batch_sampler=data.batch_sampler(mixing, batch_size=128, steps=steps))
        prior = data.log_prior(mixing) if mixing.balanced_softmax else None
        for step, (x, y, synthetic) in enumerate(loader):
            loss = mixed_loss(model(x), y, synthetic, mixing, label_smoothing=0.1, prior=prior)
    """

    def __init__(
        self, real: Dataset, synthetic: Dataset, real_labels: Sequence[int], synthetic_labels: Sequence[int]
    ) -> None:
        self.real, self.synthetic = real, synthetic
        self.real_labels = torch.as_tensor(list(real_labels), dtype=torch.long)
        self.synthetic_labels = torch.as_tensor(list(synthetic_labels), dtype=torch.long)
        if len(self.real_labels) != len(real) or len(self.synthetic_labels) != len(synthetic):  # type: ignore[arg-type]
            raise DataError(
                "MixedDataset needs one label per sample of each part",
                hint="pass the labels in the datasets' index order (ImageFolder: dataset.targets)",
            )

    def __len__(self) -> int:
        return len(self.real_labels) + len(self.synthetic_labels)

    def __getitem__(self, index: int) -> tuple[object, int, bool]:
        n = len(self.real_labels)
        if index < n:
            item = self.real[index]
            return item[0], int(item[1]), False
        item = self.synthetic[index - n]
        return item[0], int(item[1]), True

    def log_prior(self, mixing: Mixing) -> torch.Tensor:
        """Log class prior ``[K]`` of real + ``mixing.weight`` × synthetic counts (for :func:`mixed_loss`)."""
        k = 1 + max(int(labels.max()) if labels.numel() else 0 for labels in (self.real_labels, self.synthetic_labels))
        real = torch.bincount(self.real_labels, minlength=k).tolist()
        synthetic = torch.bincount(self.synthetic_labels, minlength=k).tolist() if mixing.uses_synthetic else None
        return log_prior(real, synthetic, mixing.weight)

    def batch_sampler(self, mixing: Mixing, batch_size: int, steps: int, seed: int = 0) -> Sampler[list[int]]:
        """``steps`` batches of ``batch_size`` indices honouring the mixing's share and schedule."""
        return _BatchPlan(self.real_labels, self.synthetic_labels, batch_size, steps, mixing, seed)


class _BatchPlan(Sampler[list[int]]):
    """A fixed sequence of index batches made by :func:`mixed_batches` (for a DataLoader's ``batch_sampler``)."""

    def __init__(
        self, real: torch.Tensor, synthetic: torch.Tensor, batch_size: int, steps: int, mixing: Mixing, seed: int
    ) -> None:
        if batch_size < 1 or steps < 1:
            raise ConfigError(f"batch_size and steps must be >= 1, got {batch_size}, {steps}", hint="e.g. 128, 1000")
        self.args = (len(real), len(synthetic), batch_size, steps, mixing)
        self.labels, self.seed = (real, synthetic), seed

    def __len__(self) -> int:
        return self.args[3]

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed)
        yield from mixed_batches(*self.args, generator, self.labels).tolist()
