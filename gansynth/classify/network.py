"""The classifier network: a timm model built from scratch with a small-image stem, and its input format."""

from __future__ import annotations

import difflib

import timm
import torch
import torch.nn.functional as F
from torch import nn

from gansynth.errors import ConfigError, DataError, first_line
from gansynth.images import to_float
from gansynth.registry import did_you_mean
from gansynth.runtime import Runtime

SMALL_IMAGE_MAX = 64  # at or below this resolution (px) the stem keeps full resolution, as CIFAR ResNets do
_CLOSE_MATCHES = 8


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
