"""The classifier's network and training loop: a timm model with a small-image stem, fed uint8 batches on the device."""

from __future__ import annotations

import difflib
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import timm
import torch
import torch.nn.functional as F
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn

from gansynth.errors import ConfigError, DataError, TrainingError, first_line
from gansynth.images import to_float
from gansynth.mixing import Mixing, head_only, log_prior, mixed_batches, mixed_loss
from gansynth.registry import did_you_mean
from gansynth.runtime import Runtime

if TYPE_CHECKING:
    from gansynth.classify import ClassifierConfig

SMALL_IMAGE_MAX = 64  # at or below this resolution (px) the stem keeps full resolution, as CIFAR ResNets do
_CLOSE_MATCHES = 8
MOMENTUM = 0.9
WARMUP_FRACTION = 0.15  # default share of the optimizer steps spent ramping the learning rate up linearly
SCHEDULES = ("cosine", "linear")  # decay after the warm-up: half-cosine to 0, or a straight line to 0 (one-cycle)
MIN_BATCH = 2  # BatchNorm needs at least 2 images per batch; every batch has exactly batch_size images
CROP_PAD_FRACTION = 1 / 8  # random-crop padding as a share of the side: 4 px at 32 px, as for CIFAR


def check_model_name(model: str) -> None:
    """Raise ConfigError naming the closest timm models when ``model`` is not a timm model name."""
    if isinstance(model, str) and timm.is_model(model):
        return
    names = timm.list_models()
    close = difflib.get_close_matches(str(model), names, n=_CLOSE_MATCHES, cutoff=0.5)
    hint = (
        f"{did_you_mean(str(model), close)} (nearest of {len(names)} timm models)"
        if close
        else f"use any name from timm.list_models() ({len(names)} models), e.g. 'resnet10t' or 'resnet18'"
    )
    raise ConfigError(f"classify.model {model!r} is not a timm model", hint=hint)


def build_classifier(model: str, num_classes: int, in_chans: int, resolution: int) -> nn.Module:
    """A randomly initialised timm classifier for ``[N, in_chans, resolution, resolution]`` inputs.

    Never downloads weights. At ``resolution <= 64`` the stem is adapted as CIFAR ResNets do (first stride-2 conv
    becomes a 3×3 stride-1 conv, the stem max-pool is removed) so that small images are not downsampled 4× before
    the first stage; stems this does not recognise are left unchanged.

    Args:
        model: a timm model name (``timm.list_models()``), e.g. ``resnet18`` or ``resnet10t``.
        num_classes: number of output logits.
        in_chans: image channels (1 grayscale, 3 RGB).
        resolution: input side in pixels.

    Returns:
        The module in train mode, on CPU.

    Raises:
        ConfigError: unknown model name, or a model that cannot process ``resolution`` px inputs.
    """
    check_model_name(model)
    for key, value in (("num_classes", num_classes), ("in_chans", in_chans), ("resolution", resolution)):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{key} must be a positive integer, got {value!r}", hint="check the dataset")
    kwargs: dict = {"pretrained": False, "num_classes": num_classes, "in_chans": in_chans}
    if _default_cfg(model).get("fixed_input_size", False):
        kwargs["img_size"] = resolution  # ViT-like models bake the input size into their position embeddings
    try:
        net = timm.create_model(model, **kwargs)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(
            f"timm could not build {model!r} for {resolution} px, {in_chans}-channel inputs ({exc})",
            hint="pick a convolutional model such as 'resnet10t' or 'resnet18'",
        ) from None
    if resolution <= SMALL_IMAGE_MAX:
        adapt_stem(net)
    _probe(net, model, in_chans, resolution)
    return net


def _default_cfg(model: str) -> dict:
    try:
        return dict(timm.models.get_pretrained_cfg(model) or {})
    except Exception:  # older/newer timm without a cfg for this name: nothing to learn from it
        return {}


def adapt_stem(net: nn.Module) -> bool:
    """Make a timm stem keep full resolution: first stride-2 conv → 3×3 stride 1, stem max-pool → Identity.

    Works for timm models that name their first conv in ``pretrained_cfg["first_conv"]`` and whose first conv
    downsamples by 2 with a kernel of at least 3 (resnet*, resnet*d, resnet*t, resnetv2*, regnet*, efficientnet*,
    mobilenet*, byobnet). Patchify stems (ViT, ConvNeXt) are left as they are.

    Returns:
        Whether the stem was changed.
    """
    name = getattr(net, "pretrained_cfg", {}).get("first_conv")
    if not isinstance(name, str):
        return False
    try:
        conv = net.get_submodule(name)
    except AttributeError:
        return False
    if not isinstance(conv, nn.Conv2d) or tuple(conv.stride) != (2, 2) or min(conv.kernel_size) < 3:
        return False
    if max(conv.kernel_size) > 3:
        small = nn.Conv2d(conv.in_channels, conv.out_channels, 3, stride=1, padding=1, bias=conv.bias is not None)
        parent, _, child = name.rpartition(".")
        setattr(net.get_submodule(parent) if parent else net, child, small)
    else:
        conv.stride = (1, 1)
    pool = _stem_pool(net)
    if pool is not None:
        parent, _, child = pool.rpartition(".")
        setattr(net.get_submodule(parent) if parent else net, child, nn.Identity())
    return True


def _stem_pool(net: nn.Module) -> str | None:
    """Name of the first MaxPool2d that runs before the first stage (reduction ≥ 4), if any."""
    stages = [
        info["module"]
        for info in getattr(net, "feature_info", [])
        if isinstance(info, dict) and info.get("reduction", 0) >= 4 and "module" in info
    ]
    first_stage = stages[0] if stages else None
    for module_name, module in net.named_modules():
        if first_stage is not None and (module_name == first_stage or module_name.startswith(first_stage + ".")):
            return None
        if isinstance(module, nn.MaxPool2d):
            return module_name
    return None


@torch.no_grad()
def _probe(net: nn.Module, model: str, in_chans: int, resolution: int) -> None:
    """Run one image through ``net`` so that incompatible resolutions fail here, with a hint, not mid-training."""
    was_training = net.training
    net.eval()
    try:
        out = net(torch.zeros(1, in_chans, resolution, resolution))
    except (RuntimeError, ValueError, AssertionError) as exc:
        raise ConfigError(
            f"timm model {model!r} cannot classify {resolution} px images ({first_line(exc)})",
            hint="pick a convolutional model such as 'resnet10t' or 'resnet18', or use larger images",
        ) from None
    finally:
        net.train(was_training)
    if out.ndim != 2:
        raise ConfigError(
            f"timm model {model!r} returns logits of shape {tuple(out.shape)}, not [N, num_classes]",
            hint="pick an image classification model such as 'resnet10t' or 'resnet18'",
        )


# --- data on the device ---------------------------------------------------------------------------------------


def check_images(images: torch.Tensor, in_chans: int | None, what: str) -> None:
    """DataError unless ``images`` is uint8 ``[N, C, H, W]`` with ``in_chans`` channels (any C when None)."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise DataError(
            f"{what} must be a uint8 tensor [N, C, H, W], got {got}", hint="pass images as the sampler does"
        )
    if in_chans is not None and images.shape[1] != in_chans:
        raise DataError(
            f"{what} have {images.shape[1]} channels but the classifier takes {in_chans}",
            hint="convert images to the training set's mode (1 = grayscale, 3 = RGB)",
        )


def to_model_input(images: torch.Tensor, resolution: int, runtime: Runtime) -> torch.Tensor:
    """uint8 ``[B, C, H, W]`` → float ``[B, C, R, R]`` in [-1, 1] on the device (antialiased bilinear resize)."""
    x = to_float(images.to(runtime.device, non_blocking=True))
    if tuple(x.shape[-2:]) != (resolution, resolution):
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
    if runtime.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


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


def epoch_order(
    labels: torch.Tensor, count: int, balanced: bool, num_classes: int, generator: torch.Generator
) -> torch.Tensor:
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
    per_class = torch.bincount(labels, minlength=num_classes).clamp_min(1).float()
    weights = (1.0 / per_class)[labels]  # every class gets the same total probability
    return torch.multinomial(weights, count, replacement=True, generator=generator)


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
    to the training logits.
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
    batches = _batch_source(targets, synthetic, mixing, config, total_steps, num_classes, generator)
    prior = _prior(targets, synthetic, mixing, config, num_classes)
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
                with runtime.autocast():
                    logits = forward(x.contiguous(memory_format=layout))
                if prior is None and synthetic is None:
                    loss = F.cross_entropy(logits.float(), targets[index], label_smoothing=config.label_smoothing)
                else:
                    is_synthetic = None if synthetic is None else synthetic[index]
                    loss = mixed_loss(logits, targets[index], is_synthetic, mixing, config.label_smoothing, prior)
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
    num_classes: int,
    generator: torch.Generator,
) -> Callable[[int, int, int], torch.Tensor]:
    """``batches(first_step, count, steps_per_epoch)`` → index batches ``[count, batch_size]`` into the set.

    Without synthetic images: one epoch order (a permutation, or class-balanced draws) per call, as always. With
    them: the whole plan of :func:`gansynth.mixing.mixed_batches`, mapped from [real, synthetic] to set indices.
    """
    batch = config.batch_size
    if synthetic is None:

        def plain(first: int, count: int, steps: int) -> torch.Tensor:
            order = epoch_order(targets, steps * batch, config.balanced, num_classes, generator)
            return order.view(steps, batch)[:count]

        return plain
    where = torch.cat([(~synthetic).nonzero().flatten(), synthetic.nonzero().flatten()])
    real = int((~synthetic).sum())
    plan = where[mixed_batches(real, len(where) - real, batch, total_steps, mixing, generator)]
    return lambda first, count, steps: plan[first : first + count]


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
