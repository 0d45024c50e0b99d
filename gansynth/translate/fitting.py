"""``translate.fit``: domain A (labeled folder) + domain B (folder of images) → validated config → run directory
(new or resumed) → CycleTrainer → FitResult."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from gansynth.checkpoint import RUNS_ROOT, load_train_state, read_config, recover, write_run_header
from gansynth.config import build_config
from gansynth.data import ImageDataset, describe_skipped, load_dataset
from gansynth.errors import CheckpointError, ConfigError, DataError
from gansynth.rundir import DATASET, DATASET_FIELDS, LOG, RunDir, check_fields
from gansynth.runtime import Runtime, make_runtime
from gansynth.train.fit import _choose_run_dir, _restartable
from gansynth.train.plan import format_seconds, parse_budget
from gansynth.train.trainer import FitResult
from gansynth.translate.config import DOMAIN_B_KEY, TranslateConfig, build_translate_config
from gansynth.translate.train import CycleTrainer

OPTION_KEYS = {
    "resolution": "data.resolution",
    "arch": "model.arch",
    "g_width": "model.g_width",
    "d_width": "model.d_width",
    "kimg": "train.kimg",
    "batch_size": "train.batch_size",
    "semantic_weight": "train.semantic_weight",
    "snapshot_kimg": "train.snapshot_kimg",
    "seed": "train.seed",
    "device": "runtime.device",
    "precision": "runtime.precision",
    "compile": "runtime.compile",
}
BUILTIN_A = "fonts"  # printed digits (gansynth.translate.fonts), labeled
DEFAULT_RESOLUTION = 16  # of the built-in pair
CALIBRATION_STEPS = 4  # timed steps (after one warm-up step) that turn a --budget into a length
BUDGET_SHARE = 0.9  # of the budget planned for training (the rest: loading, snapshots, calibration)
COMPATIBLE_SECTIONS = ("data", "model")  # must match to resume


def load_domains(a: str | Path, b: str | Path, resolution: int | None) -> tuple[ImageDataset, ImageDataset]:
    """Domain A (a labeled class-folder tree, or ``fonts``) and domain B (images, class subfolders optional and
    ignored, or ``digits``), both at one resolution: A's when not given (16 for the built-in fonts)."""
    from gansynth.data.load import check_resolution

    check_resolution(resolution)
    domain_a = load_domain_a(a, resolution)
    try:
        domain_b = load_dataset(b, domain_a.resolution, unlabeled=True)
    except DataError as exc:
        raise DataError(f"domain B: {exc.message}", hint=exc.hint) from None
    return domain_a, domain_b


def load_domain_a(a: str | Path, resolution: int | None) -> ImageDataset:
    """Domain A: a labeled class-folder tree, or the built-in printed digits (``fonts``, 16 px by default)."""
    if str(a) == BUILTIN_A and not Path(a).exists():
        from gansynth.translate.fonts import font_digits

        return font_digits(resolution=resolution or DEFAULT_RESOLUTION)
    return load_dataset(a, resolution)


def dataset_record(a: ImageDataset, b: ImageDataset) -> dict:
    """``dataset.json`` of a translation run: domain A's record (classes, counts) with B's under ``domain_b``."""
    return {**a.info(), DOMAIN_B_KEY: b.info()}


def fit(
    a: str | Path,
    b: str | Path,
    out: str | Path | None = None,
    recipe: str | Path | None = None,
    resume: bool = False,
    overrides: list[str] | tuple[str, ...] = (),
    progress: bool = True,
    runs_root: str | Path = RUNS_ROOT,
    console: Console | None = None,
    budget: str | float | None = None,
    **options: Any,
) -> FitResult:
    """Train a CycleGAN between a labeled folder ``a`` and a folder of images ``b``; write a run directory.

    Args:
        a: ``<root>/<class>/*.png`` (the labels an export keeps) or ``"fonts"`` (printed digits).
        b: a folder of images, class subfolders optional and ignored, or ``"digits"`` (scikit-learn's).
        out: run directory; None → ``runs/<a>-to-<b>`` (a fresh suffix when taken, the latest one with ``resume``).
        recipe: a TOML file with ``[data]``, ``[model]``, ``[train]``, ``[runtime]`` tables.
        resume: continue the run in ``out`` from its last snapshot, exactly.
        overrides: ``section.key=value`` strings applied last (see :mod:`gansynth.translate.config`).
        progress: progress bar and summary lines.
        budget: plan the training length for this wall time (``"5m"``, ``"1h"`` or minutes) from a short throughput
            calibration; ignored when a length is given (``kimg``, ``--set train.kimg``).
        options: CLI-style options (keys of :data:`OPTION_KEYS`); None values are ignored.

    Returns:
        a FitResult (run dir, kimg, status ``done`` or ``interrupted``, throughput, the last log record).
    """
    console = console or Console(stderr=True, quiet=not progress, soft_wrap=True)
    unknown = set(options) - set(OPTION_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown translate option(s): {', '.join(sorted(unknown))}", hint=f"options: {', '.join(OPTION_KEYS)}"
        )
    if resume and budget is not None:
        raise ConfigError("--budget cannot change a run being resumed", hint="drop --budget with --resume")
    mapped = {OPTION_KEYS[k]: v for k, v in options.items() if v is not None}
    config = build_translate_config(recipe, mapped, overrides)
    _check_names(config)
    domain_a, domain_b = load_domains(a, b, config.data.resolution)
    name = f"{domain_a.name}-to-{domain_b.name}"
    run_dir = _choose_run_dir(Path(out) if out is not None else None, name, resume, Path(runs_root))
    snapshot = None
    if resume:
        config = _resume_config(run_dir, domain_a, domain_b, recipe, mapped, overrides)
        snapshot = load_train_state(run_dir)  # every file checked against its sha256 before anything is written
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, resolution=domain_a.resolution))
    rc = config.runtime
    runtime = make_runtime(rc.device, rc.precision, rc.compile, rc.compile_mode)
    if runtime.distributed:
        raise ConfigError("`gansynth translate fit` runs in one process", hint="start it without torchrun")
    given = "train.kimg" in mapped or any(o.replace(" ", "").startswith("train.kimg=") for o in overrides)
    if not resume:
        config = _plan(config, domain_a, domain_b, runtime, budget, given, console)
    _announce(console, domain_a, domain_b, config, run_dir, runtime, resume)
    return _train(config, domain_a, domain_b, runtime, run_dir, snapshot, progress, console)


def _check_names(config: TranslateConfig) -> None:
    from gansynth.translate.networks import TRANSLATORS

    TRANSLATORS.get(config.model.arch)


def _train(
    config: TranslateConfig,
    domain_a: ImageDataset,
    domain_b: ImageDataset,
    runtime: Runtime,
    run_dir: Path,
    snapshot: tuple | None,
    progress: bool,
    console: Console,
) -> FitResult:
    """Build the trainer, write the run header (new runs) or restore the snapshot (resumed ones), train."""
    trainer = CycleTrainer(config, domain_a, domain_b, runtime, run_dir)  # built first: a bad size fails here
    if snapshot is None:
        if _restartable(run_dir):
            (run_dir / LOG).unlink(missing_ok=True)
        write_run_header(run_dir, config.to_dict(), dataset_record(domain_a, domain_b))
    else:
        trainer.restore(*snapshot)
        console.print(f"resumed {run_dir} at kimg {trainer.kimg:.3f} (step {trainer.step})")
    result = trainer.train(progress=progress)
    cycle = result.last_tick.get("cycle_l1")
    shown = f", cycle L1 {cycle:.3f} (of 2)" if cycle is not None else ""
    console.print(f"{result.status}: {run_dir} at kimg {result.kimg:.3f}, {result.images_per_second:.0f} img/s{shown}")
    return result


def _plan(
    config: TranslateConfig,
    domain_a: ImageDataset,
    domain_b: ImageDataset,
    runtime: Runtime,
    budget: str | float | None,
    given: bool,
    console: Console,
) -> TranslateConfig:
    """The training length: given, the default, or planned for ``budget`` from a throughput calibration."""
    if given or budget is None:
        source = "given" if given else "default"
        return dataclasses.replace(config, plan=dataclasses.replace(config.plan, source=source))
    seconds = parse_budget(budget)
    calibration = CycleTrainer(config, domain_a, domain_b, runtime, Path("unused"))
    calibration.train_step()
    started = time.perf_counter()
    for _ in range(CALIBRATION_STEPS):
        calibration.train_step()
    rate = CALIBRATION_STEPS * config.train.batch_size / max(time.perf_counter() - started, 1e-9)
    kimg = max(rate * seconds * BUDGET_SHARE / 1000, config.train.batch_size / 1000)
    console.print(f"plan: {format_seconds(seconds)} budget at {rate:.0f} img/s → {kimg:.1f} kimg")
    train = dataclasses.replace(config.train, kimg=round(kimg, 3))
    plan = dataclasses.replace(config.plan, source="budget", budget_s=seconds, img_per_s=round(rate, 2))
    return dataclasses.replace(config, train=train, plan=plan)


def _resume_config(run_dir: Path, a: ImageDataset, b: ImageDataset, recipe, mapped: dict, overrides) -> TranslateConfig:
    """The run's own config with the asked changes; CheckpointError for other data or an incompatible model."""
    recover(run_dir)
    saved = TranslateConfig.from_dict(read_config(run_dir))
    info = RunDir(run_dir).dataset()
    info_b = check_fields(run_dir / DATASET, info.get(DOMAIN_B_KEY), DATASET_FIELDS, ("fingerprint",))
    for domain, record, data in (("A", info, a), ("B", info_b, b)):
        if record.get("fingerprint") != data.fingerprint:
            raise CheckpointError(
                f"--resume: {run_dir} was trained on other domain-{domain} data ({record.get('source')}, "
                f"{record.get('num_images')} images) than {data.source} ({len(data)} images)",
                hint="resume with the run's own folders, or start a new run without --resume",
            )
    new = build_config(recipe, mapped, overrides, base=saved)
    if new.data.resolution is None:
        new = dataclasses.replace(new, data=saved.data)
    diffs = [
        f"{section}.{key}: run has {old!r}, asked {getattr(getattr(new, section), key)!r}"
        for section in COMPATIBLE_SECTIONS
        for key, old in dataclasses.asdict(getattr(saved, section)).items()
        if getattr(getattr(new, section), key) != old
    ]
    if diffs:
        raise CheckpointError(
            f"--resume: the asked config is incompatible with {run_dir}: {'; '.join(diffs)}",
            hint="drop the conflicting options, or start a new run without --resume",
        )
    return new


def _announce(
    console: Console, a: ImageDataset, b: ImageDataset, config: TranslateConfig, run_dir: Path, runtime: Runtime,
    resume: bool,
) -> None:  # fmt: skip
    counts = ", ".join(f"{n}={c}" for n, c in zip(a.class_names, a.counts))
    console.print(f"domain A: {a.source} — {len(a)} images, {a.num_classes} classes ({counts}); {a.channels} ch")
    console.print(f"domain B: {b.source} — {len(b)} images (labels unused); {b.channels} ch; both at {a.resolution} px")
    for name, data in (("A", a), ("B", b)):
        if data.skipped:
            console.print(f"[yellow]domain {name}: {describe_skipped(data.skipped)}[/]")
    if a.channels != b.channels and config.train.identity_weight > 0:
        console.print("[yellow]notice:[/] A and B differ in channels: the identity loss is off")
    m, t = config.model, config.train
    console.print(
        f"model: {m.arch} g_width={m.g_width} d_width={m.d_width} blocks={m.blocks}; {t.kimg:g} kimg "
        f"({config.steps()} steps of batch {t.batch_size}); λ_cycle={t.cycle_weight:g}, identity "
        f"{t.identity_weight:g}·λ, semantic {t.semantic_weight:g} (A) / {t.semantic_weight_b:g} (B), pool "
        f"{t.pool_size}; runtime {runtime.device} {runtime.precision}; run {run_dir}"
        f"{' (resume)' if resume else ''}"
    )
