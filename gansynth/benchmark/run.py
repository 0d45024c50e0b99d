"""``benchmark``: real training set (+ a synthetic pool) → arms × seeds of the one classifier → BenchmarkResult.

Protocol. Every arm trains the same timm model from scratch with the same optimizer, augmentation (random crop,
flips unless turned off) and the same number of optimizer steps S; an arm with more images makes fewer passes over
them, so no arm wins by training longer. With ``budget="fixed"`` S = max(min_steps, epochs × ⌊N_real / B⌋), where
N_real is the real training set and B the batch size; with ``budget="auto"`` (the default) S grows from there until
real-only training has converged on a validation split of the real training images (:mod:`.select`). The mixing
of ``real+synthetic`` is chosen on that same validation split, "no synthetic" included. Seeds 0..K-1 are shared by
the arms (same initialisation), so arms compare pairwise. All arms are scored on the same real test split, which
never enters training or any choice.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from rich.console import Console

from gansynth.benchmark import data as bdata
from gansynth.benchmark.plan import (
    SYNTHETIC_ARMS,
    Arm,
    SyntheticPlan,
    build_arms,
    check_options,
    export_count,
    fill_short,
    plan_synthetic,
)
from gansynth.benchmark.record import build_record
from gansynth.benchmark.select import (
    CANDIDATES,
    LEGACY,
    MIN_GAIN,
    VALIDATION_FRACTION,
    carve_validation,
    choose_mixing,
    grow_budget,
    validation_scorer,
)
from gansynth.classify import ClassifierConfig, evaluate_predictions, train_classifier
from gansynth.data import ImageDataset
from gansynth.errors import ConfigError, DataError
from gansynth.io import make_dirs
from gansynth.mixing import Mixing
from gansynth.runtime import Runtime, make_runtime

DEFAULT_MODEL = "test_efficientnet"  # timm's tiny EfficientNet: ~99% on digits in ~10 s on one CPU thread
DEFAULT_EPOCHS = 15
DEFAULT_SEEDS = 3
MIN_STEPS = 200  # so that tiny real sets still train to convergence
BATCH_SIZE = 128
TEST_FRACTION = 0.2
SPLIT_SEED = 0
BUDGETS = ("auto", "fixed")


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
    mixings: Sequence[Mixing] | None = None,
    budget: str = "auto",
    validation_fraction: float = VALIDATION_FRACTION,
    selection_seeds: int = 1,
    export_filter: str = "auto",
) -> BenchmarkResult:
    """Does synthetic data help a classifier? Train every arm with every seed, score on real test images, report.

    Args:
        real_train: real labeled images: a folder ``<root>/<class>/*.png``, ``"digits"``, or an ImageDataset.
        test: real test images; None holds out a stratified ``test_fraction`` of ``real_train`` (recorded).
        synthetic: a synthetic set (an export root, its ``images/`` folder, any class-folder tree, or an
            ImageDataset); its class names must equal the real ones. Other resolutions/channels are converted.
        run: a run directory whose generator provides the synthetic set through the export code instead.
        arms: subset of ``real``, ``real+synthetic``, ``synthetic``, ``rebalanced``, ``balanced-softmax``; None → all
            that the inputs allow.
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
        mixings: candidate mixings of real+synthetic, chosen on validation ("no synthetic" is always a candidate);
            None → :data:`gansynth.benchmark.select.CANDIDATES`; one mixing → used as given, no choice.
        budget: ``auto`` (steps grow until real-only converges on validation) or ``fixed`` (the epochs rule).
        validation_fraction: share of each class of the real training images used for validation.
        selection_seeds: classifier seeds averaged per validation score.
        export_filter: the diversity filter of a ``run``'s export (:mod:`gansynth.exporter.filter`; ``auto``: on,
            with the real training images as reference). A class that keeps fewer synthetic images than an arm adds
            (or none: a class that failed the diversity check) makes up the difference with repeats of its real
            images (oversampling), mixed like the synthetic ones; the same holds for a ``synthetic`` export folder
            whose manifest records the filter.

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
    mixings = _check_choice_options(mixings, budget, validation_fraction, selection_seeds)
    from gansynth.exporter.filter import check_mode

    check_mode(export_filter)
    runtime = runtime or make_runtime()
    out = make_dirs(out)
    notes: list[str] = []
    real = bdata.load_images(real_train)
    train, test_set, split = _train_and_test(real, test, test_fraction, split_seed, notes)
    flip = not bdata.is_builtin_source(real_train) if flip is None else flip

    pool, source, exported = None, None, None
    if any(a in SYNTHETIC_ARMS for a in arm_names) or ratios:
        if from_run:
            count = export_count(train.counts, ratios, synthetic_per_class, balance_to)
            exported = _export_run(train, run, split, out, count, runtime.device.type, progress, notes, export_filter)
        pool, source = _synthetic_pool(train, test_set, synthetic, exported, notes)
    plan = plan_synthetic(
        train.counts, pool.counts if pool else None, from_run, synthetic_per_class, balance_to, ratios
    )
    filtered = bool((source or {}).get("filter") or ((source or {}).get("manifest") or {}).get("diversity_filter"))
    if pool is not None and not filtered:
        plan.check_available(pool.counts, train.class_names)
    elif pool is not None:
        _note_repeats(plan, pool, train, notes)
        if not len(pool) and "synthetic" in arm_names:
            arm_names = [a for a in arm_names if a != "synthetic"]
            notes.append("the export filter kept no synthetic image: no synthetic-only arm")
    base = ClassifierConfig(model=model, epochs=epochs, batch_size=batch_size, flip=flip)
    steps, chosen, selection = _choose(
        train, pool, plan, arm_names, base, mixings, budget, validation_fraction, selection_seeds, min_steps,
        runtime, console, notes,
    )  # fmt: skip
    base = replace(base, steps=steps)
    built = build_arms(arm_names, train, pool, plan, chosen, chosen if chosen.uses_synthetic else LEGACY)
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
        selection=selection,
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
        if not (Path(source["path"]) / "images").is_dir():  # the export filter kept nothing
            root = _empty_like(train, source["path"])
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
    export_filter: str = "none",
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
    result = bdata.export_from_run(run_dir, out / "synthetic", count, device, progress, export_filter, train)
    notes.extend(f"export: {note}" for note in result.notes)
    record = {"kind": "run", "run": str(run_dir), "path": str(result.out), "exported_per_class": count}
    if result.filtered is not None:
        record["filter"] = result.filtered
        skipped = [name for name, r in result.filtered.items() if r["skipped"]]
        if skipped:
            notes.append(
                f"the generator fails the diversity check for {', '.join(skipped)}: no synthetic images for "
                "these classes (their real images are oversampled instead)"
            )
    return record


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
                config = replace(base, balanced=arm.balanced, balanced_softmax=arm.balanced_softmax, seed=seed)
                classifier = train_classifier(
                    arm.images,
                    arm.labels,
                    train.num_classes,
                    config,
                    runtime,
                    synthetic=arm.synthetic,
                    mixing=arm.mixing,
                )
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


def fixed_steps(count: int, epochs: int, batch_size: int, min_steps: int) -> int:
    """The fixed budget rule: ``max(min_steps, epochs × ⌊count / B⌋)`` (B capped at ``count``)."""
    return max(min_steps, epochs * max(1, count // min(batch_size, count)))


def _check_choice_options(
    mixings: Sequence[Mixing] | None, budget: str, validation_fraction: float, selection_seeds: int
) -> list[Mixing] | None:
    """ConfigError for a budget, mixing list, validation share or seed count out of range."""
    if budget not in BUDGETS:
        raise ConfigError(f"budget must be 'auto' or 'fixed', got {budget!r}", hint="e.g. --budget auto")
    if mixings is not None:
        mixings = list(mixings)
        if not mixings or not all(isinstance(m, Mixing) for m in mixings):
            raise ConfigError("mixings must be a non-empty list of gansynth.mixing.Mixing", hint="e.g. [Mixing()]")
    if not isinstance(validation_fraction, (int, float)) or not 0 < validation_fraction < 1:
        raise ConfigError(f"validation_fraction must be in (0, 1), got {validation_fraction!r}", hint="e.g. 0.2")
    if not isinstance(selection_seeds, int) or isinstance(selection_seeds, bool) or selection_seeds < 1:
        raise ConfigError(f"selection_seeds must be >= 1, got {selection_seeds!r}", hint="e.g. 1")
    return mixings


def _choose(
    train: ImageDataset,
    pool: ImageDataset | None,
    plan: SyntheticPlan,
    arm_names: list[str],
    base: ClassifierConfig,
    mixings: Sequence[Mixing] | None,
    budget: str,
    validation_fraction: float,
    selection_seeds: int,
    min_steps: int,
    runtime: Runtime,
    console: Console,
    notes: list[str],
) -> tuple[int, Mixing, dict]:
    """Steps per run, the mixing of real+synthetic and the selection record, all from the real training images."""
    steps = fixed_steps(len(train), base.epochs, base.batch_size, min_steps)
    choosing = "real+synthetic" in arm_names and pool is not None and (mixings is None or len(mixings) > 1)
    default = mixings[0] if mixings else CANDIDATES[2]
    record = {"validation": None, "budget": {"mode": "fixed", "steps": steps}, "mixing": None}
    if "real+synthetic" in arm_names:
        record["mixing"] = {"chosen": asdict(default), "chosen_label": default.describe(), "candidates": None}
    if budget == "fixed" and not choosing:
        return steps, default, record
    try:
        parts = carve_validation(train, validation_fraction)
    except DataError as exc:
        notes.append(
            f"no validation split ({exc.message}): fixed budget of {steps} steps and mixing {default.describe()}"
        )
        return steps, default, record
    record["validation"] = parts.record
    score = validation_scorer(parts.validation, base, runtime)
    seeds = list(range(selection_seeds))
    fit_steps = fixed_steps(len(parts.fit), base.epochs, base.batch_size, min_steps)
    known = None
    if budget == "auto":
        grown = grow_budget(parts.fit, fit_steps, score, seeds, lambda line: console.print(line, highlight=False))
        fit_steps = grown["steps"]
        steps = max(min_steps, round(fit_steps * len(train) / len(parts.fit)))
        kept = next(h for h in grown["history"] if h["steps"] == fit_steps)
        known = {Mixing(weight=0.0): (kept["validation_balanced_accuracy"], kept["validation_log_loss"])}
        record["budget"] = {"mode": "auto", "fit_steps": fit_steps, **grown, "steps": steps}
        if not grown["converged"]:
            notes.append(f"the real-only baseline still gained at the budget cap ({fit_steps} steps on validation)")
    if not choosing:
        return steps, default, record
    extra_images, extra_labels = fill_short(pool, plan.add, parts.fit)  # repeats from the fit part only
    chosen = choose_mixing(
        parts.fit, extra_images, extra_labels, mixings or CANDIDATES, fit_steps, score, seeds,
        lambda line: console.print(line, highlight=False), known,
    )  # fmt: skip
    record["mixing"] = {**chosen, "chosen": asdict(chosen["chosen"])}
    without = max(c["validation_balanced_accuracy"] for c in chosen["candidates"] if not c["uses_synthetic"])
    if without > 1 - MIN_GAIN:
        notes.append(
            f"validation is saturated: without synthetic images the classifier already scores {without:.3f} "
            f"balanced accuracy on the {len(parts.validation)} validation images, so no mixing can show a "
            f"{MIN_GAIN * 100:g}-point gain there and the choice rests on the validation log-loss; more validation "
            "images (a larger --validation-fraction) would make it firmer"
        )
    return steps, chosen["chosen"], record


def _note_repeats(plan: SyntheticPlan, pool: ImageDataset, train: ImageDataset, notes: list[str]) -> None:
    """A note naming the classes whose filtered synthetic set is short of the top-up (made up by real repeats)."""
    if plan.add is None:
        return
    have = pool.counts
    short = [
        f"{name} {need - have[k]}" for k, (name, need) in enumerate(zip(train.class_names, plan.add)) if need > have[k]
    ]
    if short:
        notes.append(
            "the export filter kept fewer synthetic images than real+synthetic adds; repeats of real images make "
            f"up the difference (oversampling): {', '.join(short)}"
        )


def _empty_like(train: ImageDataset, source: str) -> ImageDataset:
    """A synthetic set with no image, in ``train``'s geometry and classes."""
    images = torch.zeros(0, train.channels, train.resolution, train.resolution, dtype=torch.uint8)
    labels = torch.zeros(0, dtype=torch.long)
    return ImageDataset("synthetic", str(source), images, labels, list(train.class_names), "0" * 64)
