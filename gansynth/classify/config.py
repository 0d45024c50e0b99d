"""``ClassifierConfig``: how to train the one classifier of the pipeline, and the named recipes."""

from __future__ import annotations

from dataclasses import dataclass

from gansynth.classify.network import check_model_name
from gansynth.errors import ConfigError, is_int, is_number, require

WARMUP_FRACTION = 0.15  # default share of the optimizer steps spent ramping the learning rate up linearly
SCHEDULES = ("cosine", "linear")  # decay after the warm-up: half-cosine to 0, or a straight line to 0 (one-cycle)
MIN_BATCH = 2  # BatchNorm needs at least 2 images per batch; every batch has exactly batch_size images


@dataclass(frozen=True)
class ClassifierConfig:
    """How to train a classifier from scratch.

    Attributes:
        model: any timm model name; built with random weights, never downloaded.
        epochs: passes over the training images (epochs × N images, in whole batches).
        batch_size: images per optimizer step, always exactly this many (a smaller set is repeated); >= 2.
        lr: peak learning rate of SGD (Nesterov momentum 0.9), reached after a linear warm-up.
        schedule: decay after the warm-up, ``cosine`` (half-cosine to 0) or ``linear`` (straight to 0: with the
            warm-up, a one-cycle triangle).
        warmup_fraction: share of the optimizer steps spent ramping the learning rate up linearly, in [0, 1).
        weight_decay: L2 penalty on conv / linear weights (norms and biases are not decayed).
        label_smoothing: cross-entropy label smoothing in [0, 1).
        augment: random crop with zero padding of resolution/8 px (4 px at 32 px), plus flips when ``flip``.
        flip: allow random horizontal flips (turn off for digits and text).
        balanced: draw training batches with equal probability per class (the "rebalanced" benchmark arm).
        balanced_softmax: logit-adjusted cross-entropy, ``logits + log(class prior)`` in training and plain logits
            at test time, the prior from the training labels' counts (the "balanced-softmax" benchmark arm).
        mixup_alpha: mixup (Zhang et al. 2018) with ``λ ~ Beta(mixup_alpha, mixup_alpha)`` per batch, images and
            (label-smoothed) targets mixed pairwise; 0 turns it off (the default), the "mixup" benchmark arm uses
            0.2 (:data:`gansynth.classify.mixup.MIXUP_ALPHA`).
        seed: seed of weight init, shuffling, augmentation and mixup.
        steps: total optimizer steps when set (the last epoch is cut short); ``epochs`` is then ignored. Lets
            runs on data sets of different sizes get the same training budget (the benchmark's arms).
    """

    model: str = "resnet18"
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.05
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    schedule: str = "cosine"
    warmup_fraction: float = WARMUP_FRACTION
    augment: bool = True
    flip: bool = True
    balanced: bool = False
    balanced_softmax: bool = False
    mixup_alpha: float = 0.0
    seed: int = 0
    steps: int | None = None

    def __post_init__(self) -> None:
        check_model_name(self.model)
        for key, low in (("epochs", 1), ("batch_size", MIN_BATCH), ("seed", 0)):
            value = getattr(self, key)
            _check(is_int(value) and value >= low, key, value, f">= {low}")
        steps = self.steps
        valid_steps = steps is None or (is_int(steps) and steps >= 1)
        _check(valid_steps, "steps", steps, "None or >= 1")
        in_range = {
            "lr": ("> 0", lambda v: v > 0),
            "weight_decay": (">= 0", lambda v: v >= 0),
            "label_smoothing": ("in [0, 1)", lambda v: 0 <= v < 1),
            "warmup_fraction": ("in [0, 1)", lambda v: 0 <= v < 1),
            "mixup_alpha": (">= 0 (0: off)", lambda v: v >= 0),
        }
        for key, (allowed, ok) in in_range.items():
            value = getattr(self, key)
            number = is_number(value)
            _check(number and ok(value), key, value, allowed)
        _check(self.schedule in SCHEDULES, "schedule", self.schedule, " or ".join(SCHEDULES))
        for key in ("augment", "flip", "balanced", "balanced_softmax"):
            _check(isinstance(getattr(self, key), bool), key, getattr(self, key), "true or false")


def _check(ok: bool, key: str, value: object, allowed: str) -> None:
    """ConfigError naming the classifier setting ``key`` and the value received unless ``ok``."""
    require(ok, f"classifier {key}", value, allowed)


# Named training recipes. Device, precision (bf16 autocast on GPUs that have it), channels-last and torch.compile
# are not part of a recipe: they come from the Runtime (gansynth.runtime.make_runtime("cuda") turns all three on).
CLASSIFIER_PRESETS: dict[str, ClassifierConfig] = {
    # cifar-fast: aimed at >= 93% test accuracy on full CIFAR-10 (32 px, 50 000 images) in well under a minute on
    # one GPU (the known limit is airbench's 94% in ~3 s on an A100); NOT YET MEASURED on a GPU. ResNet-18 with the
    # CIFAR stem (3×3 stride 1, no max-pool), batches of 512 for GPU throughput, a one-cycle schedule (linear
    # warm-up over 20% of the steps to lr 0.4 = 0.1 × 512 / 128, then linear decay to 0), SGD Nesterov, weight decay
    # 5e-4 on conv and linear weights only, label smoothing 0.2, 15 epochs (1 464 steps), random crop (4 px) + flip
    # on the device.
    "cifar-fast": ClassifierConfig(
        model="resnet18",
        epochs=15,
        batch_size=512,
        lr=0.4,
        weight_decay=5e-4,
        label_smoothing=0.2,
        schedule="linear",
        warmup_fraction=0.2,
        augment=True,
        flip=True,
    ),
}


def classifier_preset(name: str | ClassifierConfig, **overrides: object) -> ClassifierConfig:
    """A named recipe from :data:`CLASSIFIER_PRESETS` (or a given config), with ``overrides`` applied.

    Raises:
        ConfigError: an unknown preset name (did-you-mean), or an override out of range.
    """
    from dataclasses import replace

    from gansynth.registry import did_you_mean

    if isinstance(name, ClassifierConfig):
        base = name
    elif name in CLASSIFIER_PRESETS:
        base = CLASSIFIER_PRESETS[name]
    else:
        raise ConfigError(f"unknown classifier preset {name!r}", hint=did_you_mean(str(name), list(CLASSIFIER_PRESETS)))
    return replace(base, **overrides)
