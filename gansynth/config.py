"""Typed, strict configuration: frozen dataclasses per section, TOML recipes and ``--set section.key=value``.

Precedence: defaults < recipe TOML < CLI options < ``--set``. Unknown keys fail with the closest match.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from gansynth.errors import ConfigError, require
from gansynth.registry import did_you_mean

SMALL_DATASET = 30_000  # DiffAugment is on by default below this many images
MAX_WIDTH = 4096  # channels (z_dim, embed_dim, g_width, d_width): far above any published GAN at these sizes
MAX_BATCH = 65_536
MAX_SEED = 2**53


@dataclass(frozen=True)
class DataConfig:
    resolution: int | None = None  # px; None: chosen from the data
    balance: str = "class"  # "class": real batches class-uniform, fake labels uniform; "empirical": follow counts

    def __post_init__(self) -> None:
        from gansynth.data import RESOLUTIONS

        require(
            self.resolution is None or self.resolution in RESOLUTIONS,
            "data.resolution",
            self.resolution,
            f"one of {', '.join(map(str, RESOLUTIONS))}",
        )
        require(self.balance in ("class", "empirical"), "data.balance", self.balance, "'class' or 'empirical'")


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "biggan"  # registered architecture
    conditioning: str = "projection"  # projection | concat | acgan | projection-ac
    z_dim: int = 128
    embed_dim: int = 128  # shared class embedding (generator)
    g_width: int = 256  # generator channels at the lowest resolution
    d_width: int = 128  # discriminator base channels
    attention: int = 0  # resolution of a self-attention block in both networks; 0: none

    def __post_init__(self) -> None:
        for key in ("z_dim", "embed_dim", "g_width", "d_width"):
            require(1 <= getattr(self, key) <= MAX_WIDTH, f"model.{key}", getattr(self, key), f"in [1, {MAX_WIDTH}]")
        require(self.attention in (0, 8, 16, 32, 64), "model.attention", self.attention, "0 (off), 8, 16, 32 or 64")


@dataclass(frozen=True)
class TrainConfig:
    loss: str = "hinge"  # registered loss
    kimg: float = 1000.0  # training length in thousands of real images shown to D
    batch_size: int = 64
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    g_betas: tuple[float, float] = (0.0, 0.999)
    d_betas: tuple[float, float] = (0.0, 0.999)
    d_steps: int = 1  # D updates per G update
    ema_kimg: float = 10.0  # EMA half-life of the generator weights, in kimg
    ema_start_kimg: float = 0.0  # copy weights instead of averaging before this point
    acgan_weight: float = 1.0  # class-loss weight for acgan and projection-ac conditioning
    gp_weight: float = 10.0  # gradient penalty weight (losses that use one)
    lecam_weight: float = 0.0  # LeCam regularization of D (Tseng et al. 2021; ~0.3 on small data); 0: off
    lecam_decay: float = 0.99  # EMA decay of D's mean real/fake outputs, the LeCam anchors
    gsr_weight: float = 0.0  # group spectral regularization of G's class-conditional BN (Rangwani et al. 2022); 0: off
    ms_weight: float = 0.1  # mode seeking regularization of G (Mao et al. 2019: same class, other noise); 0: off
    tick_kimg: float = 4.0  # log/progress interval
    snapshot_kimg: float = 50.0  # checkpoint + sample grid interval
    seed: int = 0
    max_bad_steps: int = 20  # consecutive non-finite steps tolerated before stopping

    def __post_init__(self) -> None:
        for key in ("kimg", "g_lr", "d_lr", "tick_kimg", "snapshot_kimg"):
            require(0 < getattr(self, key) < math.inf, f"train.{key}", getattr(self, key), "a finite number > 0")
        for key in ("batch_size", "d_steps", "max_bad_steps"):
            require(getattr(self, key) >= 1, f"train.{key}", getattr(self, key), ">= 1")
        require(self.batch_size <= MAX_BATCH, "train.batch_size", self.batch_size, f"<= {MAX_BATCH}")
        require(0 <= self.seed < MAX_SEED, "train.seed", self.seed, "an integer in [0, 2^53)")
        require(0 <= self.lecam_decay < 1, "train.lecam_decay", self.lecam_decay, "in [0, 1)")
        weights = ("acgan_weight", "gp_weight", "lecam_weight", "gsr_weight", "ms_weight")
        for key in ("ema_kimg", "ema_start_kimg", *weights):
            require(0 <= getattr(self, key) < math.inf, f"train.{key}", getattr(self, key), "a finite number >= 0")
        for key in ("g_betas", "d_betas"):
            betas = getattr(self, key)
            require(len(betas) == 2 and all(0 <= b < 1 for b in betas), f"train.{key}", betas, "two numbers in [0, 1)")


@dataclass(frozen=True)
class AugmentConfig:
    enabled: bool | None = None  # None: on for datasets under SMALL_DATASET images
    policy: str = "translation,color,cutout"  # DiffAugment ops, comma-separated
    p: float = 1.0  # probability of each op per image (initial value when adaptive)
    ada_target: float = 0.0  # > 0: adapt p so that E[sign(D(real))] stays at this target
    ada_kimg: float = 100.0  # kimg for p to move by 1 under the adaptive rule

    def __post_init__(self) -> None:
        require(0 <= self.p <= 1, "augment.p", self.p, "in [0, 1]")
        require(0 <= self.ada_target < 1, "augment.ada_target", self.ada_target, "in [0, 1) (0: fixed p)")
        require(0 < self.ada_kimg < math.inf, "augment.ada_kimg", self.ada_kimg, "a finite number > 0")


@dataclass(frozen=True)
class RuntimeConfig:
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    compile: bool | None = None  # None: on for CUDA, off for CPU
    compile_mode: str = "default"  # torch.compile mode: default | reduce-overhead (CUDA graphs) | max-autotune ...

    def __post_init__(self) -> None:
        from gansynth.runtime import COMPILE_MODES, DEVICES, PRECISIONS

        require(
            self.compile_mode in COMPILE_MODES, "runtime.compile_mode", self.compile_mode, " | ".join(COMPILE_MODES)
        )
        require(self.device in DEVICES, "runtime.device", self.device, " | ".join(DEVICES))
        require(self.precision in PRECISIONS, "runtime.precision", self.precision, " | ".join(PRECISIONS))


@dataclass(frozen=True)
class EvalConfig:
    every_kimg: float = 0.0  # evaluate during fit every this many kimg; 0: never
    num_samples: int = 2000  # generated images per evaluation (balanced over classes)
    feature_extractor: str = "auto"

    def __post_init__(self) -> None:
        require(0 <= self.every_kimg < math.inf, "eval.every_kimg", self.every_kimg, "a finite number >= 0 (0: off)")
        require(10 <= self.num_samples <= 1_000_000, "eval.num_samples", self.num_samples, "in [10, 1 000 000]")


PLAN_SOURCES = ("default", "given", "budget")


@dataclass(frozen=True)
class PlanConfig:
    """How the training length and widths were decided — written by ``fit`` (see gansynth/train/plan.py), kept in
    config.json so that a run is reproducible from its config and ``--resume`` continues the same plan."""

    source: str = "default"  # default: the default length; given: --kimg/recipe/--set; budget: planned for a budget
    budget_s: float = 0.0  # the budget planned for (0: none)
    img_per_s: float = 0.0  # the calibrated throughput of the chosen widths
    expected_s: float = 0.0  # the expected wall time, calibration included
    threads: int = 0  # CPU threads the plan chose (0: torch's default)

    def __post_init__(self) -> None:
        require(self.source in PLAN_SOURCES, "plan.source", self.source, " | ".join(PLAN_SOURCES))
        for key in ("budget_s", "img_per_s", "expected_s"):
            require(0 <= getattr(self, key) < math.inf, f"plan.{key}", getattr(self, key), "a finite number >= 0")
        require(0 <= self.threads <= 4096, "plan.threads", self.threads, "in [0, 4096]")


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    plan: PlanConfig = field(default_factory=PlanConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        """Build a config from nested sections; unknown sections or keys raise ConfigError."""
        return merge(cls(), data)


SECTIONS = {f.name: f.type for f in fields(Config)}


def _section_types(section: str, root: type = Config) -> dict[str, Any]:
    cls = {f.name: f.default_factory for f in fields(root)}[section]  # type: ignore[misc]
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Check ``value`` against a field annotation (int, float, bool, str, tuples, optionals)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _coerce(key, value, inner[0])
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(typing.get_args(annotation)):
            raise ConfigError(
                f"{key} = {value!r} is not a list of {len(typing.get_args(annotation))} numbers",
                hint=f"example: {key}=[0.0, 0.99]",
            )
        return tuple(_coerce(key, v, a) for v, a in zip(value, typing.get_args(annotation)))
    if annotation is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if annotation is bool and isinstance(value, bool):
        return value
    if annotation in (int, str) and type(value) is annotation:
        return value
    raise ConfigError(
        f"{key} = {value!r} has the wrong type", hint=f"{key} takes a {getattr(annotation, '__name__', annotation)}"
    )


def merge(config: Any, updates: dict[str, Any]) -> Any:
    """A new config with nested ``{section: {key: value}}`` updates applied and validated.

    ``config`` is a :class:`Config` or any other frozen dataclass of section dataclasses (``gansynth translate``'s).
    """
    sections, known = {}, [f.name for f in fields(config)]
    for section, values in updates.items():
        if section not in known:
            raise ConfigError(f"unknown config section {section!r}", hint=did_you_mean(section, known))
        if not isinstance(values, dict):
            raise ConfigError(
                f"config section {section!r} must be a table of keys",
                hint=f"write [{section}] followed by key = value lines",
            )
        types_ = _section_types(section, type(config))
        clean = {}
        for key, value in values.items():
            if key not in types_:
                raise ConfigError(
                    f"unknown config key {section}.{key}",
                    hint=did_you_mean(f"{section}.{key}", [f"{section}.{k}" for k in types_]),
                )
            clean[key] = _coerce(f"{section}.{key}", value, types_[key])
        sections[section] = dataclasses.replace(getattr(config, section), **clean)
    return dataclasses.replace(config, **sections)


def parse_override(text: str) -> dict[str, dict[str, Any]]:
    """``section.key=value`` (value in TOML syntax; bare words are strings) → ``{section: {key: value}}``."""
    name, sep, raw = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not key:
        raise ConfigError(f"--set {text!r} is not section.key=value", hint="example: --set train.g_lr=1e-4")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return {section: {key: value}}


def recipe_dirs() -> list[Path]:
    """Where named recipes live: the repository's ``recipes/`` or the copy installed in the package."""
    here = Path(__file__).resolve().parent
    return [here.parent / "recipes", here / "recipes"]


def find_recipe(name: str | Path) -> Path:
    """A recipe file path from a path or a bundled name (``digits``, ``cifar10``, ...)."""
    path = Path(name)
    if path.suffix == ".toml" or path.is_file():  # a folder named like a bundled recipe does not hide it
        if not path.is_file():
            raise ConfigError(f"recipe file {path} does not exist", hint="give a .toml file or a bundled recipe name")
        return path
    for folder in recipe_dirs():
        if (folder / f"{name}.toml").is_file():
            return folder / f"{name}.toml"
    names = sorted({p.stem for folder in recipe_dirs() if folder.is_dir() for p in folder.glob("*.toml")})
    raise ConfigError(f"unknown recipe {name!r}", hint=did_you_mean(str(name), names))


def load_recipe(name: str | Path) -> dict[str, Any]:
    """The sections of a recipe TOML (``description`` at the top level is allowed and dropped)."""
    path = find_recipe(name)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"recipe {path} is not valid TOML: {exc}", hint="check the line named above") from None
    except UnicodeDecodeError:
        raise ConfigError(f"recipe {path} is not a text file", hint="a recipe is a TOML text file") from None
    except OSError as exc:
        raise ConfigError(f"recipe {path} cannot be read ({exc.strerror})", hint="give a readable .toml file") from None
    data.pop("description", None)
    return data


def build_config(
    recipe: str | Path | None = None,
    options: dict[str, Any] | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    base: Any = None,
) -> Any:
    """Resolve a config: defaults (or ``base``) < recipe < options (``"section.key": value``) < ``--set``."""
    config = base or Config()
    if recipe is not None:
        config = merge(config, load_recipe(recipe))
    nested: dict[str, dict[str, Any]] = {}
    for dotted, value in (options or {}).items():
        if value is not None:
            section, _, key = dotted.partition(".")
            nested.setdefault(section, {})[key] = value
    config = merge(config, nested)
    for text in overrides:
        config = merge(config, parse_override(text))
    return config
