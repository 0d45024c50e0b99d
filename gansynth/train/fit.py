"""``fit``: data argument → validated config → run directory (new or resumed) → Trainer → FitResult."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from gansynth.checkpoint import (
    CONFIG,
    DATASET,
    RUNS_ROOT,
    has_snapshot,
    is_run_dir,
    load_train_state,
    new_run_dir,
    read_config,
    recover,
    runs_named,
    write_run_header,
)
from gansynth.config import SMALL_DATASET, Config, build_config, load_recipe
from gansynth.data import ImageDataset, describe_skipped, is_builtin, load_dataset
from gansynth.errors import CheckpointError, ConfigError
from gansynth.io import atomic_write_text
from gansynth.rundir import LOG, METRICS, SAMPLES, RunDir, read_bounded
from gansynth.runtime import Runtime, make_runtime, native_cpu_bf16
from gansynth.train.plan import apply_threads, explicit_keys, plan_fit
from gansynth.train.trainer import FitResult, Trainer

# CLI option → config key
OPTION_KEYS = {
    "arch": "model.arch",
    "conditioning": "model.conditioning",
    "loss": "train.loss",
    "resolution": "data.resolution",
    "kimg": "train.kimg",
    "batch_size": "train.batch_size",
    "snapshot_kimg": "train.snapshot_kimg",
    "seed": "train.seed",
    "device": "runtime.device",
    "precision": "runtime.precision",
    "compile": "runtime.compile",
    "eval_kimg": "eval.every_kimg",
}
MAX_LOG_BYTES = 1 << 30  # log.jsonl: ~200 bytes a tick
COMPATIBLE_SECTIONS = ("model", "data")  # must match to resume; train.loss too


def validate_names(config: Config) -> None:
    """Check every registered name of a config before anything is written."""
    from gansynth.nn import ARCHITECTURES, CONDITIONINGS, build_networks  # noqa: F401
    from gansynth.train.augment import parse_policy
    from gansynth.train.losses import LOSSES

    ARCHITECTURES.get(config.model.arch)
    CONDITIONINGS.get(config.model.conditioning)
    LOSSES.get(config.train.loss)
    parse_policy(config.augment.policy)


def _resolve(config: Config, dataset: ImageDataset) -> Config:
    """Fill the choices made from the data: resolution and whether DiffAugment is on."""
    enabled = config.augment.enabled if config.augment.enabled is not None else len(dataset) < SMALL_DATASET
    return dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, resolution=dataset.resolution),
        augment=dataclasses.replace(config.augment, enabled=enabled),
    )


def _incompatibilities(saved: Config, new: Config) -> list[str]:
    diffs = []
    for section in COMPATIBLE_SECTIONS:
        for key, old in dataclasses.asdict(getattr(saved, section)).items():
            value = getattr(getattr(new, section), key)
            if value != old:
                diffs.append(f"{section}.{key}: run has {old!r}, asked {value!r}")
    if saved.train.loss != new.train.loss:
        diffs.append(f"train.loss: run has {saved.train.loss!r}, asked {new.train.loss!r}")
    return diffs


def _choose_run_dir(out: Path | None, name: str, resume: bool, runs_root: Path) -> Path:
    if out is not None:
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} is a file", hint="give a directory path for the run")
        if resume and not (is_run_dir(out) and has_snapshot(out)):
            raise CheckpointError(
                f"--resume: {out} holds no run with a snapshot",
                hint="drop --resume to start it (a run that stopped before its first snapshot starts again)",
            )
        if not resume and out.is_dir() and not _restartable(out) and any(out.iterdir()):
            raise ConfigError(
                f"--out {out} already exists and is not empty",
                hint="add --resume to continue that run, or choose another --out",
            )
        return out
    if resume:
        found = [p for p in runs_named(name, runs_root) if has_snapshot(p)]
        if not found:
            raise CheckpointError(
                f"--resume: no run of {name!r} under {runs_root}/",
                hint="start one without --resume, or give --out RUN_DIR",
            )
        return found[0]
    return new_run_dir(name, runs_root)


HEADER_ONLY = {CONFIG, DATASET, LOG, METRICS, SAMPLES}  # what a run holds before its first snapshot


def _restartable(out: Path) -> bool:
    """A run that stopped before its first snapshot (only its header, log and grids): fit may start it again."""
    return is_run_dir(out) and not has_snapshot(out) and all(p.name in HEADER_ONLY for p in out.iterdir())


def fit(
    data: str | Path,
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
    """Train a class-conditional GAN on an image folder (or ``"digits"``) and write a run directory.

    Args:
        data: ``<root>/<class>/*.png`` folder or a built-in dataset name; a built-in brings its own recipe.
        out: run directory; None → ``runs/<data-name>`` (a fresh suffix when taken, the latest one with ``resume``).
        recipe: a recipe TOML path or bundled name (``digits``, ``cifar10``, ``small-data``).
        resume: continue the run in ``out`` from its last snapshot, exactly.
        overrides: ``section.key=value`` strings applied last.
        progress: show the progress bar and summaries.
        budget: plan the model widths and length for this wall time (``"20m"``, ``"2h"``, or minutes); None: a
            given length (``kimg``, recipe, ``--set``) applies, else a CPU fit plans for 15 minutes and a GPU fit
            trains the default length (see :mod:`gansynth.train.plan`).
        options: CLI-style options (``arch``, ``loss``, ``kimg``, ``batch_size``, ``resolution``, ``seed``,
            ``device``, ``precision``, ``compile``, ``snapshot_kimg``, ``conditioning``, ``eval_kimg``);
            None values are ignored.

    Returns:
        a FitResult (run dir, kimg reached, status ``done``, ``interrupted`` or ``budget`` — a budget plan stopped
        at its deadline, resumable —, throughput, per-class diversity).
    """
    started = time.perf_counter()
    console = console or Console(stderr=True, quiet=not progress, soft_wrap=True)
    unknown = set(options) - set(OPTION_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown fit option(s): {', '.join(sorted(unknown))}", hint=f"options: {', '.join(OPTION_KEYS)}"
        )
    mapped = {OPTION_KEYS[k]: v for k, v in options.items()}
    runs_root = Path(runs_root)
    out = Path(out) if out is not None else None
    if recipe is None and not resume and is_builtin(data):
        recipe = str(data)
    if resume and budget is not None:
        raise ConfigError(
            "--budget cannot change a run being resumed", hint="drop --budget: --resume continues the run's own plan"
        )
    config = build_config(recipe, mapped, overrides)
    validate_names(config)
    dataset = load_dataset(data, config.data.resolution)
    run_dir = _choose_run_dir(out, dataset.name, resume, runs_root)
    snapshot = None
    if resume:
        config = _resume_config(run_dir, dataset, recipe, mapped, overrides)
        snapshot = load_train_state(run_dir)  # checked (sha256 of every file) before anything is written
    chosen = config.data.resolution is None
    config = _resolve(config, dataset)
    rc = config.runtime
    cpu_auto = "bf16" if native_cpu_bf16() else "fp32"  # same quality, ~2x faster (benchmarks/README.md)
    runtime = make_runtime(rc.device, rc.precision, rc.compile, rc.compile_mode, cpu_auto)
    if runtime.distributed and LOSSES_WITH_GP(config):
        raise ConfigError(
            "wgan-gp is not supported under torchrun (the gradient penalty needs double backward)",
            hint="use --loss hinge for multi-process training",
        )
    check_memory(config, dataset, runtime)
    if not runtime.is_main:
        console = Console(stderr=True, quiet=True)
    threads = torch.get_num_threads()
    try:
        if resume:
            apply_threads(config, runtime)
        else:
            explicit = explicit_keys(load_recipe(recipe) if recipe is not None else None, mapped, overrides)
            reload = (lambda r: load_dataset(data, r)) if chosen else None  # --resolution fixes the size
            config, dataset = plan_fit(config, dataset, runtime, budget, explicit, console.print, reload)
            check_memory(config, dataset, runtime)
        return _train(config, dataset, runtime, run_dir, snapshot, resume, chosen, progress, console, started)
    finally:
        torch.set_num_threads(threads)  # the plan's thread count is for this fit only


def _train(
    config: Config,
    dataset: ImageDataset,
    runtime: Runtime,
    run_dir: Path,
    snapshot: tuple | None,
    resume: bool,
    chosen: bool,
    progress: bool,
    console: Console,
    started: float,
) -> FitResult:
    """Announce, build the trainer, write the run header (new runs), restore (resumed runs), train, check."""
    _announce(console, dataset, config, run_dir, runtime, resume, chosen)
    # built before anything is written: what only the networks can tell (e.g. a model.attention no stage has) fails
    trainer = Trainer(config, dataset, runtime, run_dir, evaluator=_evaluator(config))
    if runtime.is_main:
        if not resume and _restartable(run_dir):  # started again: the stopped attempt's log is not this run's
            (run_dir / LOG).unlink(missing_ok=True)
        write_run_header(run_dir, config.to_dict(), dataset.info())
    runtime.barrier()
    if snapshot is not None:
        trainer.load_state_dict(*snapshot)
        if runtime.is_main:
            _truncate_log(run_dir, trainer.kimg)
        console.print(f"resumed {run_dir} at kimg {trainer.kimg:.3f} (step {trainer.step})")
    result = trainer.train(progress=progress, deadline_s=_deadline(config, resume, started))
    console.print(f"{result.status}: {run_dir} at kimg {result.kimg:.3f}, {result.images_per_second:.0f} img/s")
    if result.status == "budget":
        console.print(
            f"[yellow]warning:[/] the {config.plan.budget_s / 60:g}-minute budget ran out at kimg {result.kimg:.1f} "
            f"of the plan's {config.train.kimg:g} (training ran at {result.images_per_second:.0f} img/s, the "
            f"calibration measured {config.plan.img_per_s:.0f}: the machine got busier); the snapshot is usable, "
            f"and `--resume` finishes the plan"
        )
    if result.status in ("done", "budget") and runtime.is_main:
        _check_diversity(trainer, result, console)
    return result


DEADLINE_SLACK = 1.10  # a budget plan stops at 110% of its budget at the latest


def _deadline(config: Config, resume: bool, started: float) -> float | None:
    """Seconds of training left before a new budget plan must stop (None: no deadline)."""
    if resume or config.plan.source != "budget":
        return None
    return max(config.plan.budget_s * DEADLINE_SLACK - (time.perf_counter() - started), 0.0)


def _check_diversity(trainer: Trainer, result: FitResult, console: Console) -> None:
    """Measure every class's diversity (see gansynth.train.diversity) and warn, naming the low ones."""
    from gansynth.train import diversity

    result.diversity = diversity.diversity_ratios(
        trainer.ema, trainer.dataset, trainer.config.model.z_dim, trainer.runtime.device
    )
    low = diversity.low_diversity(result.diversity)
    if low:
        console.print(f"[yellow]warning:[/] {diversity.describe(low, len(result.diversity))}")


ACTIVATION_FACTOR = 4  # float32 activations kept per pixel and channel of G + D (a low estimate of fwd + bwd)


def check_memory(config: Config, dataset: ImageDataset, runtime: Runtime) -> None:
    """Refuse a batch whose activations alone cannot fit on the device — before anything is allocated or written.

    The estimate is low on purpose (batch × pixels × (g_width + d_width) × 4 float32 values): it only stops sizes
    that cannot work (``--batch-size 100000000``), never a size that might.
    """
    from gansynth.runtime import available_memory

    m, t = config.model, config.train
    pixels = dataset.resolution**2
    needed = t.batch_size * pixels * (m.g_width + m.d_width) * ACTIVATION_FACTOR * 4
    free = available_memory(runtime.device)
    if free is not None and needed > free:
        fits = max(1, t.batch_size * free // needed)
        raise ConfigError(
            f"--batch-size {t.batch_size} needs at least {needed / 2**30:.1f} GiB on {runtime.device} "
            f"for activations alone; {free / 2**30:.1f} GiB are free",
            hint=f"use a batch size below {fits} (e.g. --batch-size {min(64, fits)}), or smaller model widths",
        )


def LOSSES_WITH_GP(config: Config) -> bool:  # noqa: N802 - reads as a predicate over the registry
    from gansynth.train.losses import LOSSES

    return LOSSES.get(config.train.loss).gradient_penalty


def _resume_config(run_dir: Path, dataset: ImageDataset, recipe, mapped: dict, overrides) -> Config:
    recover(run_dir)
    saved = Config.from_dict(read_config(run_dir))
    info = RunDir(run_dir).dataset()
    if info.get("fingerprint") != dataset.fingerprint:
        raise CheckpointError(
            f"--resume: {run_dir} was trained on different data ({info.get('source')}, "
            f"{info.get('num_images')} images) than {dataset.source} ({len(dataset)} images)",
            hint="resume with the run's own data, or start a new run without --resume",
        )
    new = build_config(recipe, mapped, overrides, base=saved)
    if new.data.resolution is None:
        new = dataclasses.replace(new, data=dataclasses.replace(new.data, resolution=saved.data.resolution))
    diffs = _incompatibilities(saved, new)
    if diffs:
        raise CheckpointError(
            f"--resume: the asked config is incompatible with {run_dir}: {'; '.join(diffs)}",
            hint="drop the conflicting options, or start a new run without --resume",
        )
    return new


def _truncate_log(run_dir: Path, kimg: float) -> None:
    """Drop log lines written after the snapshot being resumed (they are about to be redone)."""
    run = RunDir(run_dir)
    if not run.exists(LOG):
        return
    path = run.file(LOG)
    lines = [ln for ln in read_bounded(path, MAX_LOG_BYTES).decode(errors="replace").splitlines() if ln.strip()]
    kept = [ln for ln in lines if _kimg_of(ln) <= kimg + 1e-9]
    if len(kept) != len(lines):
        atomic_write_text(path, "".join(ln + "\n" for ln in kept))


def _kimg_of(line: str) -> float:
    try:
        return float(json.loads(line).get("kimg", 0.0))
    except (json.JSONDecodeError, AttributeError):
        return float("inf")


def _announce(
    console: Console, dataset: ImageDataset, config: Config, run_dir: Path, runtime: Runtime, resume: bool, chosen: bool
) -> None:
    counts = ", ".join(f"{n}={c}" for n, c in zip(dataset.class_names, dataset.counts))
    console.print(
        f"data: {dataset.source} — {len(dataset)} images, {dataset.num_classes} classes ({counts}); "
        f"{dataset.channels} channel(s), {dataset.resolution} px"
    )
    if dataset.skipped:
        console.print(f"[yellow]{describe_skipped(dataset.skipped)}[/]")
    if dataset.num_classes == 1:
        console.print("[yellow]notice:[/] one class folder: training an unconditional GAN")
    m, t, a = config.model, config.train, config.augment
    console.print(
        f"model: {m.arch}/{m.conditioning} g_width={m.g_width} d_width={m.d_width}; loss {t.loss}; "
        f"{t.kimg:g} kimg, batch {t.batch_size}; DiffAugment {'on' if a.enabled else 'off'}"
        f"{' (adaptive)' if a.enabled and a.ada_target else ''}; resolution {dataset.resolution} "
        f"({'chosen from the data' if chosen else 'given'})"
    )
    console.print(
        f"runtime: {runtime.device} {runtime.precision}{' compiled' if runtime.compile else ''}"
        f"{f', {runtime.world_size} processes' if runtime.distributed else ''}; run: {run_dir}"
        f"{' (resume)' if resume else ''}"
    )


def _evaluator(config: Config):
    if config.eval.every_kimg <= 0:
        return None
    from gansynth.train.evaluation import evaluate_during_fit

    return evaluate_during_fit
