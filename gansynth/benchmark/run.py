"""``benchmark``: real training set (+ a synthetic pool) → arms × seeds of the one classifier → BenchmarkResult.

Protocol. Every arm trains the same timm model from scratch with the same optimizer, augmentation (random crop,
flips unless turned off) and the same number of optimizer steps S = max(min_steps, epochs × ⌊N_real / B⌋), where
N_real is the real training set and B the batch size; an arm with more images makes fewer passes over them, so no
arm wins by training longer. Seeds 0..K-1 are shared by the arms (same initialisation), so arms compare pairwise.
All arms are scored on the same real test split, which never enters training.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from gansynth.benchmark import data as bdata
from gansynth.benchmark.plan import (
    SYNTHETIC_ARMS,
    Arm,
    build_arms,
    check_options,
    export_count,
    plan_synthetic,
)
from gansynth.benchmark.record import build_record
from gansynth.classify import ClassifierConfig, evaluate_predictions, train_classifier
from gansynth.data import ImageDataset
from gansynth.io import make_dirs
from gansynth.runtime import Runtime, make_runtime

DEFAULT_MODEL = "test_efficientnet"  # timm's tiny EfficientNet: ~99% on digits in ~10 s on one CPU thread
DEFAULT_EPOCHS = 15
DEFAULT_SEEDS = 3
MIN_STEPS = 200  # so that tiny real sets still train to convergence
BATCH_SIZE = 128
TEST_FRACTION = 0.2
SPLIT_SEED = 0


@dataclass
class BenchmarkResult:
    """What a benchmark produced.

    Attributes:
        record: the ``report.json`` content (arms, comparisons, verdict, confusion, protocol).
        out: the report folder.
        files: every file written there (report.json, report.md, charts).
    """

    record: dict
    out: Path
    files: list[Path]

    @property
    def verdict(self) -> str:
        """The verdict sentence (``real+synthetic vs real: +3.1 ± 0.8 ... → helps``)."""
        return self.record["verdict"]

    @property
    def arms(self) -> dict:
        return self.record["arms"]


def benchmark(
    real_train: str | Path | ImageDataset,
    test: str | Path | ImageDataset | None = None,
    synthetic: str | Path | ImageDataset | None = None,
    run: str | Path | None = None,
    arms: Sequence[str] | None = None,
    model: str = DEFAULT_MODEL,
    epochs: int = DEFAULT_EPOCHS,
    seeds: int = DEFAULT_SEEDS,
    synthetic_per_class: int | None = None,
    balance_to: str | int | None = None,
    ratio_sweep: Sequence[float] | None = None,
    out: str | Path = "benchmark",
    runtime: Runtime | None = None,
    progress: bool = True,
    *,
    flip: bool | None = None,
    test_fraction: float = TEST_FRACTION,
    split_seed: int = SPLIT_SEED,
    min_steps: int = MIN_STEPS,
    batch_size: int = BATCH_SIZE,
    console: Console | None = None,
) -> BenchmarkResult:
    """Does synthetic data help a classifier? Train every arm with every seed, score on real test images, report.

    Args:
        real_train: real labeled images: a folder ``<root>/<class>/*.png``, ``"digits"``, or an ImageDataset.
        test: real test images; None holds out a stratified ``test_fraction`` of ``real_train`` (recorded).
        synthetic: a synthetic set (an export root, its ``images/`` folder, any class-folder tree, or an
            ImageDataset); its class names must equal the real ones. Other resolutions/channels are converted.
        run: a run directory whose generator provides the synthetic set through the export code instead.
        arms: subset of ``real``, ``real+synthetic``, ``synthetic``, ``rebalanced``; None → all that the inputs allow.
        model: timm model name, trained from scratch.
        epochs: training length in passes over the real training set; every arm gets the same number of steps.
        seeds: independent runs per arm (seeds 0..seeds-1, shared by the arms).
        synthetic_per_class: real+synthetic adds this many synthetic images to every class.
        balance_to: real+synthetic tops every class up to this count (``"max"``: the largest real class).
            Neither: a ``synthetic`` folder is added whole; a ``run`` tops up to the largest class (or, when the
            real classes are already balanced, adds as many images per class as the largest real class has).
        ratio_sweep: extra real+synthetic arms adding ``round(r × largest real class)`` images to every class.
        out: report folder (``report.json``, ``report.md``, PNG charts; ``synthetic/`` for a ``run``).
        runtime: device / precision / compile; None → :func:`gansynth.runtime.make_runtime` defaults.
        progress: show progress and per-run scores on stderr.
        flip: horizontal-flip augmentation; None → on, except for the built-in digits.
        test_fraction: share of each class held out when ``test`` is None.
        split_seed: seed of that held-out split.
        min_steps: floor on the optimizer steps of every run.
        batch_size: images per optimizer step.
        console: where progress goes (stderr by default).

    Returns:
        The record (also written to ``out/report.json``), its folder and the files written.

    Raises:
        BenchmarkError / ConfigError / DataError: inputs that cannot be benchmarked as asked (message + hint).
    """
    started = time.perf_counter()
    console = console or Console(stderr=True, highlight=False, soft_wrap=True, quiet=not progress)
    from_run = run is not None
    arm_names, ratios = check_options(
        arms,
        model,
        epochs,
        seeds,
        synthetic is not None or from_run,
        synthetic is not None and from_run,
        synthetic_per_class,
        balance_to,
        ratio_sweep,
        min_steps,
        batch_size,
    )
    runtime = runtime or make_runtime()
    out = make_dirs(out)
    notes: list[str] = []
    real = bdata.load_images(real_train)
    train, test_set, split = _train_and_test(real, test, test_fraction, split_seed, notes)
    flip = not bdata.is_builtin_source(real_train) if flip is None else flip

    pool, source = None, None
    if any(a in SYNTHETIC_ARMS for a in arm_names) or ratios:
        exported = None
        if from_run:
            count = export_count(train.counts, ratios, synthetic_per_class, balance_to)
            exported = _export_run(train, run, split, out, count, runtime.device.type, progress, notes)
        pool, source = _synthetic_pool(train, test_set, synthetic, exported, notes)
    plan = plan_synthetic(
        train.counts, pool.counts if pool else None, from_run, synthetic_per_class, balance_to, ratios
    )
    if pool is not None:
        plan.check_available(pool.counts, train.class_names)
    built = build_arms(arm_names, train, pool, plan)
    steps = max(min_steps, epochs * max(1, len(train) // min(batch_size, len(train))))
    base = ClassifierConfig(model=model, epochs=epochs, batch_size=batch_size, flip=flip, steps=steps)
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(
        f"benchmark: {len(built)} arms × {seeds} seeds of {model}, {steps} steps of {batch_size} per run; "
        f"train {len(train)} real images, test {len(test_set)}; device {runtime.device}"
    )
    scores, seconds = _train_all(built, train, test_set, base, seeds, runtime, console, progress)
    record = build_record(
        built,
        scores,
        seconds,
        train=train,
        test=test_set,
        split=split,
        base=base,
        seeds=seeds,
        runtime=runtime,
        plan=plan,
        source=source,
        ratios=ratios,
        notes=notes,
        wall_seconds=time.perf_counter() - started,
    )
    from gansynth.report import write_report

    files = write_report(record, out)
    return BenchmarkResult(record=record, out=out, files=files)


def _train_and_test(
    real: ImageDataset, test: str | Path | ImageDataset | None, fraction: float, seed: int, notes: list[str]
) -> tuple[ImageDataset, ImageDataset, dict]:
    """The real training set, the real test set and how the test set was obtained."""
    if test is None:
        train_idx, test_idx = bdata.held_out_split(real, fraction, seed)
        train, test_set = real.subset(train_idx), real.subset(test_idx)
        duplicates = bdata.shared_images(train, test_set)
        if duplicates:
            notes.append(
                f"{len(duplicates)} held-out test images have exact duplicates in the training part "
                "(duplicates inside REAL_TRAIN)"
            )
        split = {
            "kind": "held-out",
            "test_fraction": fraction,
            "seed": seed,
            "source": real.source,
            "fingerprint": real.fingerprint,
            "test_indices": test_idx.tolist(),
            "test_files": None if real.files is None else [real.files[i] for i in test_idx.tolist()],
        }
        return train, test_set, split
    test_set = bdata.conform(bdata.load_images(test, real.resolution), real, "test")
    bdata.check_no_overlap(real, test_set, "training images")
    split = {"kind": "given", "source": test_set.source, "fingerprint": test_set.fingerprint}
    return real, test_set, split


def _synthetic_pool(
    train: ImageDataset,
    test_set: ImageDataset,
    synthetic: str | Path | ImageDataset | None,
    exported: dict | None,
    notes: list[str],
) -> tuple[ImageDataset, dict]:
    """The synthetic images (real geometry, real label order) and a record of where they came from."""
    if exported is not None:
        source = dict(exported)
        root, manifest = bdata.synthetic_folder(source["path"])
    elif isinstance(synthetic, ImageDataset):
        root, manifest, source = synthetic, None, {"kind": "dataset", "path": synthetic.source}
    else:
        root, manifest = bdata.synthetic_folder(synthetic)
        source = {"kind": "folder", "path": str(Path(synthetic).resolve())}
    raw = bdata.with_export_class_names(bdata.load_images(root, train.resolution), manifest)
    side = bdata.native_side(raw)
    source["geometry"] = {"channels": raw.channels, "resolution": side}
    if (raw.channels, side) != (train.channels, train.resolution):
        notes.append(
            f"synthetic images ({raw.channels} channel(s), {side} px) were converted to the real "
            f"data's geometry ({train.channels} channel(s), {train.resolution} px)"
        )
    pool = bdata.conform(raw, train, "synthetic")
    bdata.check_no_overlap(pool, test_set, "synthetic images")
    source["manifest"] = manifest
    source["fingerprint"] = raw.fingerprint
    return pool, source


def _export_run(
    train: ImageDataset,
    run: str | Path,
    split: dict,
    out: Path,
    count: int,
    device: str,
    progress: bool,
    notes: list[str],
) -> dict:
    """Export ``count`` images per class of ``run`` into ``out/synthetic`` through the export code."""
    from gansynth.checkpoint import resolve_run
    from gansynth.rundir import RunDir

    run_dir = resolve_run(run)
    info = RunDir(run_dir).dataset()
    bdata.check_same_classes(train.class_names, [str(n) for n in info.get("class_names", [])], "run's")
    if split["kind"] == "held-out" and info.get("fingerprint") == split["fingerprint"]:
        notes.append(
            f"the generator of {run_dir} was trained on all of REAL_TRAIN, including the held-out test split: "
            "synthetic images may carry test information; pass --test with images the GAN never saw"
        )
    folder = bdata.export_from_run(run_dir, out / "synthetic", count, device, progress)
    return {"kind": "run", "run": str(run_dir), "path": str(folder), "exported_per_class": count}


def _train_all(
    built: list[Arm],
    train: ImageDataset,
    test_set: ImageDataset,
    base: ClassifierConfig,
    seeds: int,
    runtime: Runtime,
    console: Console,
    progress: bool,
) -> tuple[dict[str, list[dict]], dict[str, list[float]]]:
    """Scores ``{arm: [evaluate_predictions per seed]}`` and wall seconds per run."""
    from dataclasses import replace

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    scores: dict[str, list[dict]] = {arm.name: [] for arm in built}
    seconds: dict[str, list[float]] = {arm.name: [] for arm in built}
    bar = Progress(
        TextColumn("[bold]benchmark"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} runs"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        disable=not progress,
    )
    with bar:
        task = bar.add_task("", total=seeds * len(built))
        for seed in range(seeds):
            for arm in built:
                bar.update(task, description=f"seed {seed} · {arm.name}")
                start = time.perf_counter()
                config = replace(base, balanced=arm.balanced, seed=seed)
                classifier = train_classifier(arm.images, arm.labels, train.num_classes, config, runtime)
                predicted = classifier.predict(test_set.images)
                result = evaluate_predictions(test_set.labels, predicted, train.class_names)
                scores[arm.name].append(result)
                seconds[arm.name].append(time.perf_counter() - start)
                bar.console.print(
                    f"seed {seed}  {arm.name:<24} balanced accuracy {result['balanced_accuracy']:.4f}  "
                    f"accuracy {result['accuracy']:.4f}  ({seconds[arm.name][-1]:.1f} s)",
                    highlight=False,
                )
                bar.advance(task)
    return scores, seconds
