"""Typed, strict configuration of ``gansynth translate fit``: the CycleGAN recipe of Zhu et al. (2017) as defaults.

Same rules as :mod:`gansynth.config`: frozen sections, ranges checked in ``__post_init__``, defaults < recipe TOML
< CLI options < ``--set section.key=value``, unknown keys fail with the closest match.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from gansynth.config import MAX_BATCH, MAX_SEED, MAX_WIDTH, RuntimeConfig, build_config, merge
from gansynth.errors import require

KIND = "translate"  # config.json's "kind": what tells a translation run from a class-conditional GAN run
DOMAIN_B_KEY = "domain_b"  # dataset.json: domain A's record at the top level (labels, classes), B's under this key
POOL_SIZE = 50  # images in each discriminator's history pool (Shrivastava et al. 2017, as in CycleGAN)


@dataclass(frozen=True)
class TranslateDataConfig:
    resolution: int | None = None  # px; None: chosen from domain A

    def __post_init__(self) -> None:
        from gansynth.data import RESOLUTIONS

        allowed = f"one of {', '.join(map(str, RESOLUTIONS))}"
        require(self.resolution is None or self.resolution in RESOLUTIONS, "data.resolution", self.resolution, allowed)


@dataclass(frozen=True)
class TranslateModelConfig:
    arch: str = "resnet-patchgan"  # registered translator architecture (gansynth.translate.networks)
    g_width: int = 32  # generator channels at full resolution (doubled at each of its two downsamplings)
    d_width: int = 32  # discriminator channels of its first layer
    blocks: int = 6  # residual blocks of the generator (the paper: 6 up to 128 px, 9 above)
    d_layers: int | None = None  # strided layers of the PatchGAN; None: 1 at 16 px, 2 at 32 px, 3 (70×70) above
    downsamplings: int | None = None  # stride-2 stages of the generator; None: 0 at 16 px, 1 at 32 px, 2 above

    def __post_init__(self) -> None:
        for key in ("g_width", "d_width"):
            require(1 <= getattr(self, key) <= MAX_WIDTH, f"model.{key}", getattr(self, key), f"in [1, {MAX_WIDTH}]")
        require(1 <= self.blocks <= 32, "model.blocks", self.blocks, "in [1, 32]")
        require(self.d_layers is None or 1 <= self.d_layers <= 5, "model.d_layers", self.d_layers, "None or in [1, 5]")
        ok = self.downsamplings is None or 0 <= self.downsamplings <= 4
        require(ok, "model.downsamplings", self.downsamplings, "None or in [0, 4]")


@dataclass(frozen=True)
class TranslateTrainConfig:
    kimg: float = 40.0  # training length in thousands of domain-A images shown (each step also shows B)
    batch_size: int = 16
    lr: float = 2e-4  # Adam, both generators and both discriminators
    betas: tuple[float, float] = (0.5, 0.999)
    decay_start: float = 0.5  # share of training after which the learning rate decays linearly to 0
    cycle_weight: float = 10.0  # λ: weight of ‖F(G(a)) − a‖₁ + ‖G(F(b)) − b‖₁
    identity_weight: float = 0.5  # × λ: weight of ‖G(b) − b‖₁ + ‖F(a) − a‖₁
    pool_size: int = POOL_SIZE  # 0: no history pool (D sees only the newest fakes)
    semantic_weight: float = 1.0  # CyCADA's CE(f_A(G(a)), y_a), f_A a CNN trained on A at the start; 0: off
    semantic_weight_b: float = 2.0  # CyCADA's B side: CE(f_A(F(b)), argmax f_A(b)); 0: off
    semantic_epochs: int = 10  # passes over domain A that train f_A
    semantic_augment: bool = True  # f_A trained on restyled A (stroke, blur, contrast, noise); False: shifts only
    tick_kimg: float = 1.0  # log/progress interval
    snapshot_kimg: float = 10.0  # checkpoint + sample grid interval
    seed: int = 0

    def __post_init__(self) -> None:
        for key in ("kimg", "lr", "tick_kimg", "snapshot_kimg"):
            require(0 < getattr(self, key) < math.inf, f"train.{key}", getattr(self, key), "a finite number > 0")
        require(2 <= self.batch_size <= MAX_BATCH, "train.batch_size", self.batch_size, f"in [2, {MAX_BATCH}]")
        require(0 <= self.decay_start <= 1, "train.decay_start", self.decay_start, "in [0, 1]")
        for key in ("cycle_weight", "identity_weight", "semantic_weight", "semantic_weight_b"):
            require(0 <= getattr(self, key) < math.inf, f"train.{key}", getattr(self, key), "a finite number >= 0")
        require(1 <= self.semantic_epochs <= 1000, "train.semantic_epochs", self.semantic_epochs, "in [1, 1000]")
        require(0 <= self.pool_size <= 10_000, "train.pool_size", self.pool_size, "in [0, 10000]")
        require(0 <= self.seed < MAX_SEED, "train.seed", self.seed, "an integer in [0, 2^53)")
        ok = len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas)
        require(ok, "train.betas", self.betas, "two numbers in [0, 1)")


@dataclass(frozen=True)
class TranslatePlanConfig:
    """How the training length was decided (kept in config.json so ``--resume`` continues the same plan)."""

    source: str = "default"  # default | given (--kimg, --set) | budget (--budget, from a throughput calibration)
    budget_s: float = 0.0
    img_per_s: float = 0.0  # calibrated domain-A images per second

    def __post_init__(self) -> None:
        require(self.source in ("default", "given", "budget"), "plan.source", self.source, "default | given | budget")
        for key in ("budget_s", "img_per_s"):
            require(0 <= getattr(self, key) < math.inf, f"plan.{key}", getattr(self, key), "a finite number >= 0")


@dataclass(frozen=True)
class TranslateConfig:
    data: TranslateDataConfig = field(default_factory=TranslateDataConfig)
    model: TranslateModelConfig = field(default_factory=TranslateModelConfig)
    train: TranslateTrainConfig = field(default_factory=TranslateTrainConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    plan: TranslatePlanConfig = field(default_factory=TranslatePlanConfig)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": KIND, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TranslateConfig:
        """A config from a run's ``config.json`` sections (``kind`` must say translate)."""
        from gansynth.errors import CheckpointError

        sections = dict(data)
        if sections.pop("kind", None) != KIND:
            raise CheckpointError(
                "the run is not a `gansynth translate` run (its config.json has no kind = translate)",
                hint="give a run directory written by `gansynth translate fit`",
            )
        return merge(cls(), sections)

    def steps(self) -> int:
        """Optimizer steps of the whole plan (ceil of kimg × 1000 / batch)."""
        return max(1, math.ceil(self.train.kimg * 1000 / self.train.batch_size))


def build_translate_config(
    recipe: str | None = None, options: dict[str, Any] | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> TranslateConfig:
    """Defaults < recipe < options (``"section.key": value``, None ignored) < ``--set`` overrides."""
    return build_config(recipe, options, overrides, base=TranslateConfig())
