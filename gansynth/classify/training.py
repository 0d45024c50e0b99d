"""The classifier training loop: device-side batches, augmentation, SGD with warm-up and decay, mixing of synthetic
images, progress."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn

from gansynth.classify.config import ClassifierConfig
from gansynth.classify.mixup import Mixup, mix_batch, mixup_loss
from gansynth.classify.network import check_images, to_model_input
from gansynth.errors import DataError, TrainingError
from gansynth.mixing import Mixing, balanced_draws, head_only, log_prior, mixed_batches, mixed_loss
from gansynth.runtime import Runtime

MOMENTUM = 0.9
CROP_PAD_FRACTION = 1 / 8  # random-crop padding as a share of the side: 4 px at 32 px, as for CIFAR


def augment_batch(x: torch.Tensor, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random crop after zero padding by side/8 px (black, -1 in [-1, 1]) and optional horizontal flips.

    Args:
        x: ``[B, C, H, W]`` float in [-1, 1], on the generator's device.
        flip: whether to flip half of the images left-right.
        generator: source of randomness (device generator, so the result is reproducible).

    Returns:
        ``[B, C, H, W]``, laid out channels-last in memory (the gather writes pixels with channels innermost).
    """
    batch, _, height, width = x.shape
    pad = max(1, round(min(height, width) * CROP_PAD_FRACTION))
    padded = F.pad(x, (pad, pad, pad, pad), value=-1.0)
    dy = torch.randint(0, 2 * pad + 1, (batch, 1), generator=generator, device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (batch, 1), generator=generator, device=x.device)
    rows = dy + torch.arange(height, device=x.device)  # [B, H]
    cols = dx + torch.arange(width, device=x.device)  # [B, W]
    if flip:
        mirrored = torch.rand(batch, 1, generator=generator, device=x.device) < 0.5
        cols = torch.where(mirrored, cols.flip(1), cols)
    b = torch.arange(batch, device=x.device)[:, None, None]
    out = padded[b, :, rows[:, :, None], cols[:, None, :]]  # advanced indices first: [B, H, W, C]
    return out.permute(0, 3, 1, 2)


def epoch_order(labels: torch.Tensor, count: int, balanced: bool, generator: torch.Generator) -> torch.Tensor:
    """``count`` training indices: consecutive random permutations of the set, or class-balanced draws.

    Without ``balanced``, each image appears once per permutation; a ``count`` larger than the set (a set smaller
    than one batch) concatenates permutations, so every batch still holds ``batch_size`` images and the images are
    used evenly. With ``balanced``, indices are drawn with replacement so that every class has the same
    probability.
    """
    size = labels.numel()
    if not balanced:
        passes = -(-count // size)
        orders = [torch.randperm(size, generator=generator, device=labels.device) for _ in range(passes)]
        return torch.cat(orders)[:count]
    return balanced_draws(labels, count, generator)


def training_budget(count: int, config: ClassifierConfig) -> tuple[int, int]:
    """``(total optimizer steps, steps per epoch)`` for ``count`` training images; every batch is full.

    An epoch is ``max(1, ⌊count / batch_size⌋)`` batches; the total is ``config.steps`` when set, else
    ``max(1, ⌊epochs × count / batch_size⌋)`` (epochs × count images, in whole batches).
    """
    per_epoch = max(1, count // config.batch_size)
    return config.steps or max(1, config.epochs * count // config.batch_size), per_epoch


def fit_classifier(
    net: nn.Module,
    data: torch.Tensor,
    targets: torch.Tensor,
    num_classes: int,
    config: ClassifierConfig,
    runtime: Runtime,
    progress: bool,
    synthetic: torch.Tensor | None = None,
    mixing: Mixing | None = None,
) -> None:
    """The optimisation loop; ``data`` uint8 ``[N, C, R, R]`` and ``targets`` ``[N]`` already on the device.

    Every step uses exactly ``config.batch_size`` images, whatever N (a set smaller than a batch is repeated),
    so runs on sets of different sizes with the same ``config.steps`` see the same number of images. With a
    ``synthetic`` mask ``[N]`` (bool) and a ``mixing``, batches, loss weights and the schedule follow
    :mod:`gansynth.mixing`; ``config.balanced_softmax`` (or ``mixing.balanced_softmax``) adds the log class prior
    to the training logits; ``config.mixup_alpha`` > 0 trains on mixup pairs of the augmented batch
    (:mod:`gansynth.classify.mixup`).
    """
    count, batch = int(targets.numel()), config.batch_size
    total_steps, steps = training_budget(count, config)
    epochs = math.ceil(total_steps / steps)
    optimizer = _sgd(net, config)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(step, total_steps, config))
    scaler = runtime.make_scaler()
    forward = runtime.compile_module(net)
    generator = runtime.generator(config.seed)
    layout = torch.channels_last if runtime.channels_last else torch.contiguous_format
    resolution = int(data.shape[-1])
    if synthetic is not None and not bool(synthetic.any()):
        synthetic = None
    batches = _batch_source(targets, synthetic, mixing, config, total_steps, generator)
    prior = _prior(targets, synthetic, mixing, config, num_classes)
    mixer = Mixup(config.mixup_alpha, config.seed, generator)
    net.train()
    with _EpochProgress(epochs, progress) as bar:
        for epoch in range(epochs):
            start, loss_sum = time.perf_counter(), torch.zeros((), device=runtime.device)
            epoch_steps = min(steps, total_steps - epoch * steps)  # the last epoch may be cut short
            for offset, index in enumerate(batches(epoch * steps, epoch_steps, steps)):
                if synthetic is not None and head_only(mixing, epoch * steps + offset, total_steps) and net.training:
                    _freeze_backbone(net)
                x = to_model_input(data[index], resolution, runtime)
                if config.augment:
                    x = augment_batch(x, config.flip, generator)
                pairing = mixer.draw(batch)
                if pairing is not None:
                    x = mix_batch(x, *pairing)
                with runtime.autocast():
                    logits = forward(x.contiguous(memory_format=layout))
                loss_of = _loss_of(logits, targets, synthetic, mixing, config.label_smoothing, prior)
                loss = loss_of(index) if pairing is None else mixup_loss(loss_of, index, *pairing)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                schedule.step()
                loss_sum += loss.detach()
            mean_loss = float(loss_sum) / epoch_steps  # one host sync per epoch
            if not math.isfinite(mean_loss):
                raise TrainingError(
                    f"classifier loss became {mean_loss} in epoch {epoch + 1} (lr {config.lr})",
                    hint="lower the classifier lr, or train in fp32",
                )
            bar.update(epoch + 1, epoch_steps * batch / (time.perf_counter() - start), mean_loss)


def _batch_source(
    targets: torch.Tensor,
    synthetic: torch.Tensor | None,
    mixing: Mixing | None,
    config: ClassifierConfig,
    total_steps: int,
    generator: torch.Generator,
) -> Callable[[int, int, int], torch.Tensor]:
    """``batches(first_step, count, steps_per_epoch)`` → index batches ``[count, batch_size]`` into the set.

    Without synthetic images: one epoch order (a permutation, or class-balanced draws with ``config.balanced`` or
    ``mixing.balanced_batches``) per call, as always. With them: the whole plan of
    :func:`gansynth.mixing.mixed_batches`, mapped from [real, synthetic] to set indices.
    """
    batch = config.batch_size
    if synthetic is None:
        balanced = config.balanced or (mixing is not None and mixing.balanced_batches)

        def plain(first: int, count: int, steps: int) -> torch.Tensor:
            order = epoch_order(targets, steps * batch, balanced, generator)
            return order.view(steps, batch)[:count]

        return plain
    where = torch.cat([(~synthetic).nonzero().flatten(), synthetic.nonzero().flatten()])
    real = int((~synthetic).sum())
    labels = (targets[~synthetic], targets[synthetic])  # each part's labels, in the order of ``where``
    plan = where[mixed_batches(real, len(where) - real, batch, total_steps, mixing, generator, labels)]
    return lambda first, count, steps: plan[first : first + count]


def _loss_of(
    logits: torch.Tensor,
    targets: torch.Tensor,
    synthetic: torch.Tensor | None,
    mixing: Mixing | None,
    label_smoothing: float,
    prior: torch.Tensor | None,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``loss(index)``: the batch loss of ``logits`` ``[B, K]`` against the targets of set indices ``index`` ``[B]``.

    Plain label-smoothed cross-entropy for real-only training without a prior; otherwise
    :func:`gansynth.mixing.mixed_loss` (synthetic weights and smoothing, balanced softmax). A function of the
    indices so that mixup can score the same logits against both images of each pair.
    """
    if prior is None and synthetic is None:
        return lambda index: F.cross_entropy(logits.float(), targets[index], label_smoothing=label_smoothing)

    def loss(index: torch.Tensor) -> torch.Tensor:
        is_synthetic = None if synthetic is None else synthetic[index]
        return mixed_loss(logits, targets[index], is_synthetic, mixing, label_smoothing, prior)

    return loss


def _prior(
    targets: torch.Tensor,
    synthetic: torch.Tensor | None,
    mixing: Mixing | None,
    config: ClassifierConfig,
    num_classes: int,
) -> torch.Tensor | None:
    """The log class prior of balanced softmax (real + weighted synthetic counts), or None for plain softmax."""
    if not (config.balanced_softmax or (mixing is not None and mixing.balanced_softmax)):
        return None
    if synthetic is None:
        return log_prior(torch.bincount(targets, minlength=num_classes).tolist()).to(targets.device)
    real = torch.bincount(targets[~synthetic], minlength=num_classes).tolist()
    added = torch.bincount(targets[synthetic], minlength=num_classes).tolist()
    return log_prior(real, added, mixing.weight).to(targets.device)


def _freeze_backbone(net: nn.Module) -> None:
    """Train the classifier head only from now on: backbone weights frozen, norms in inference mode."""
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    for parameter in net.get_classifier().parameters():
        parameter.requires_grad_(True)
    net.eval()


def _sgd(net: nn.Module, config: ClassifierConfig) -> torch.optim.SGD:
    """SGD with Nesterov momentum; weight decay only on conv / linear weights (not on norms or biases)."""
    decay = [p for p in net.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in net.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=config.lr, momentum=MOMENTUM, nesterov=True)


def _lr_factor(step: int, total_steps: int, config: ClassifierConfig) -> float:
    """Share of the peak learning rate at ``step``: linear warm-up, then cosine or linear decay to 0."""
    warmup = max(1, round(config.warmup_fraction * total_steps))
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    if config.schedule == "linear":
        return max(0.0, 1.0 - progress)
    return 0.5 * (1 + math.cos(math.pi * progress))


def check_training_data(images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
    """DataError unless images are ≥ 2 square uint8 images and labels int64 indices in ``[0, num_classes)``."""
    check_images(images, None, "training images")
    if images.shape[0] < 2 or images.shape[-1] != images.shape[-2]:
        raise DataError(
            f"training images must be at least 2 square images, got shape {tuple(images.shape)}",
            hint="load the data set with gansynth.data.load_dataset",
        )
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.shape != images.shape[:1]:
        got = f"{labels.dtype} {tuple(labels.shape)}" if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise DataError(f"labels must be int64 [{images.shape[0]}], got {got}", hint="one class index per image")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise DataError(
            f"labels span {int(labels.min())}..{int(labels.max())} but num_classes is {num_classes}",
            hint="labels are class indices in [0, num_classes)",
        )


class _EpochProgress:
    """A rich progress bar over epochs showing img/s and loss; a no-op when disabled."""

    def __init__(self, epochs: int, enabled: bool) -> None:
        columns = (
            TextColumn("[bold]classifier"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[stats]}"),
        )
        timing = (TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
        self.progress = Progress(*columns, *timing) if enabled else None
        self.epochs = epochs
        self.task = None

    def __enter__(self) -> _EpochProgress:
        if self.progress is not None:
            self.progress.__enter__()
            self.task = self.progress.add_task("classifier", total=self.epochs, stats="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def update(self, epoch: int, images_per_second: float, loss: float) -> None:
        if self.progress is not None:
            stats = f"epoch {epoch}/{self.epochs}  {images_per_second:,.0f} img/s  loss {loss:.3f}"
            self.progress.update(self.task, completed=epoch, stats=stats)
