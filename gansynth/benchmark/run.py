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
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from rich.console import Console

from gansynth.benchmark import data as bdata
from gansynth.benchmark.parallel import plan_workers, run_classifiers
from gansynth.benchmark.plan import (
    SYNTHETIC_ARMS,
    Arm,
    SyntheticPlan,
    build_arms,
    export_count,
    plan_synthetic,
)
from gansynth.benchmark.record import BenchmarkRecord, build_record
from gansynth.benchmark.select import (
    CANDIDATES,
    LEGACY,
    MIN_GAIN,
    ValidationScorer,
    carve_validation,
    choose_mixing,
    grow_budget,
)
from gansynth.benchmark.spec import BenchmarkSpec
from gansynth.classify import ClassifierConfig
from gansynth.data import ImageDataset
from gansynth.errors import DataError
from gansynth.io import make_dirs
from gansynth.mixing import Mixing
from gansynth.report import gain_words
from gansynth.runtime import Runtime, make_runtime
from gansynth.specs import as_spec


@dataclass
class BenchmarkResult:
    """What a benchmark produced.

    Attributes:
        record: the ``report.json`` content (arms, comparisons, verdict, confusion, protocol).
        out: the report folder.
        files: every file written there (report.json, report.md, charts).
    """

    record: BenchmarkRecord
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
    *,
    spec: BenchmarkSpec | None = None,
    runtime: Runtime | None = None,
    console: Console | None = None,
    **options,
) -> BenchmarkResult:
    """Does synthetic data help a classifier? Train every arm with every seed, score on real test images, report.

    Args:
        real_train: real labeled images: a folder ``<root>/<class>/*.png``, ``"digits"``, or an ImageDataset.
        test: real test images; None holds out a stratified ``spec.test_fraction`` of ``real_train`` (recorded).
        synthetic: a synthetic set (an export root, its ``images/`` folder, any class-folder tree, or an
            ImageDataset); its class names must equal the real ones. Other resolutions/channels are converted.
        run: a run directory whose generator provides the synthetic set through the export code instead. With
            neither ``synthetic_per_class`` nor ``balance_to``, a ``synthetic`` folder is added whole; a ``run``
            tops up to the largest class (or, when the real classes are already balanced, adds as many images per
            class as the largest real class has).
        spec: the options as one :class:`BenchmarkSpec`; or pass its fields as keywords
            (``benchmark("digits", run=run, seeds=5)``), not both.
        runtime: device / precision / compile; None → :func:`gansynth.runtime.make_runtime` defaults.
        console: where progress goes (stderr by default).

    Returns:
        The record (also written to ``spec.out/report.json``), its folder and the files written.

    Raises:
        BenchmarkError / ConfigError / DataError: inputs that cannot be benchmarked as asked (message + hint).
    """
    started = time.perf_counter()
    spec = as_spec(BenchmarkSpec, spec, options, "benchmark")
    console = console or Console(stderr=True, highlight=False, soft_wrap=True, quiet=not spec.progress)
    arm_names = spec.arms_for(synthetic is not None or run is not None, synthetic is not None and run is not None)
    runtime = runtime or make_runtime()
    out = make_dirs(spec.out)
    notes: list[str] = []
    real = bdata.load_images(real_train)
    train, test_set, split = _train_and_test(real, test, spec.test_fraction, spec.split_seed, notes)
    flip = not bdata.is_builtin_source(real_train) if spec.flip is None else spec.flip

    pool, source, exported = None, None, None
    if any(a in SYNTHETIC_ARMS for a in arm_names) or spec.ratio_sweep:
        if run is not None:
            count = export_count(train.counts, spec.ratio_sweep, spec.synthetic_per_class, spec.balance_to)
            exported = _export_run(
                train, run, split, out, count, runtime.device.type, spec.progress, notes, spec.export_filter
            )
        pool, source = _synthetic_pool(train, test_set, synthetic, exported, notes)
    plan = plan_synthetic(
        train.counts, pool.counts if pool else None, run is not None, spec.synthetic_per_class, spec.balance_to,
        list(spec.ratio_sweep),
    )  # fmt: skip
    arm_names = _check_pool(plan, pool, source, train, arm_names, notes)
    base = ClassifierConfig(model=spec.model, epochs=spec.epochs, batch_size=spec.batch_size, flip=flip)
    steps, chosen, selection = _choose(train, pool, plan, arm_names, base, spec, runtime, console, notes)
    base = replace(base, steps=steps)
    built = build_arms(arm_names, train, pool, plan, chosen, chosen if chosen.uses_synthetic else LEGACY)
    workers = plan_workers(spec.workers, runtime, len(built) * spec.seeds)
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(
        f"benchmark: {len(built)} arms × {spec.seeds} seeds of {spec.model}, {steps} steps of {spec.batch_size} "
        f"per run; train {len(train)} real images, test {len(test_set)}; device {runtime.device}"
        + (f", {workers} worker processes" if workers > 1 else "")
    )
    scores, seconds = _train_all(built, test_set, base, spec.seeds, runtime, workers, console, spec.progress)
    record = build_record(
        built, scores, seconds, train=train, test=test_set, split=split, base=base, seeds=spec.seeds,
        runtime=runtime, plan=plan, selection=selection, source=source, ratios=list(spec.ratio_sweep), notes=notes,
        wall_seconds=time.perf_counter() - started, workers=workers,
    )  # fmt: skip
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
    test_set: ImageDataset,
    base: ClassifierConfig,
    seeds: int,
    runtime: Runtime,
    workers: int,
    console: Console,
    progress: bool,
) -> tuple[dict[str, list[dict]], dict[str, list[float]]]:
    """Scores ``{arm: [evaluate_predictions per seed]}`` and wall seconds per run, in seed order."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    done: dict[tuple[int, int], tuple[dict, float]] = {}
    bar = Progress(
        TextColumn("[bold]benchmark"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} runs"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        disable=not progress,
    )
    with bar:
        task = bar.add_task("", total=seeds * len(built))
        for index, seed, result, seconds in run_classifiers(
            built, test_set, base, seeds, runtime, workers, lambda line: bar.console.print(line, highlight=False)
        ):
            done[index, seed] = result, seconds
            bar.console.print(
                f"seed {seed}  {built[index].name:<24} balanced accuracy {result['balanced_accuracy']:.4f}  "
                f"accuracy {result['accuracy']:.4f}  ({seconds:.1f} s)",
                highlight=False,
            )
            bar.advance(task)
    scores = {arm.name: [done[i, seed][0] for seed in range(seeds)] for i, arm in enumerate(built)}
    seconds = {arm.name: [done[i, seed][1] for seed in range(seeds)] for i, arm in enumerate(built)}
    return scores, seconds


def fixed_steps(count: int, epochs: int, batch_size: int, min_steps: int) -> int:
    """The fixed budget rule: ``max(min_steps, epochs × ⌊count / B⌋)`` (B capped at ``count``)."""
    return max(min_steps, epochs * max(1, count // min(batch_size, count)))


def _choose(
    train: ImageDataset,
    pool: ImageDataset | None,
    plan: SyntheticPlan,
    arm_names: list[str],
    base: ClassifierConfig,
    spec: BenchmarkSpec,
    runtime: Runtime,
    console: Console,
    notes: list[str],
) -> tuple[int, Mixing, dict]:
    """Steps per run, the mixing of real+synthetic and the selection record, all from the real training images."""
    mixings, min_steps = spec.mixings, spec.min_steps
    steps = fixed_steps(len(train), base.epochs, base.batch_size, min_steps)
    choosing = "real+synthetic" in arm_names and pool is not None and (mixings is None or len(mixings) > 1)
    default = mixings[0] if mixings else CANDIDATES[2]
    record = {"validation": None, "budget": {"mode": "fixed", "steps": steps}, "mixing": None}
    if "real+synthetic" in arm_names:
        record["mixing"] = {"chosen": asdict(default), "chosen_label": default.describe(), "candidates": None}
    if spec.budget == "fixed" and not choosing:
        return steps, default, record
    try:
        parts = carve_validation(train, spec.validation_fraction, folds=spec.validation_folds)
    except DataError as exc:
        notes.append(
            f"no validation split ({exc.message}): fixed budget of {steps} steps and mixing {default.describe()}"
        )
        return steps, default, record
    record["validation"] = parts.record
    say = lambda line: console.print(line, highlight=False)  # noqa: E731
    candidates = mixings or CANDIDATES
    runs = len(parts.folds) * spec.selection_seeds * (len(candidates) if choosing else 1)
    score = ValidationScorer(
        parts, base, runtime, spec.selection_seeds, plan_workers(spec.workers, runtime, runs), pool, plan.add, say
    )
    fit_steps = fixed_steps(parts.fit_size, base.epochs, base.batch_size, min_steps)
    known = None
    if spec.budget == "auto":
        grown = grow_budget(score, fit_steps, say)
        fit_steps = grown["steps"]
        steps = max(min_steps, round(fit_steps * len(train) / parts.fit_size))
        kept = next(h for h in grown["history"] if h["steps"] == fit_steps)
        known = {Mixing(weight=0.0): (kept["validation_balanced_accuracy"], kept["validation_log_loss"])}
        record["budget"] = {"mode": "auto", "fit_steps": fit_steps, **grown, "steps": steps}
        if not grown["converged"]:
            notes.append(f"the real-only baseline still gained at the budget cap ({fit_steps} steps on validation)")
    if not choosing:
        return steps, default, record
    chosen = choose_mixing(candidates, fit_steps, score, say, known)
    record["mixing"] = {**chosen, "chosen": asdict(chosen["chosen"])}
    _note_saturation(chosen["candidates"], parts.record["num_validation"], notes)
    _note_uncertain_gain(chosen, parts.record["num_validation"], notes)
    return steps, chosen["chosen"], record


def _note_uncertain_gain(chosen: dict, validation_images: int, notes: list[str]) -> None:
    """A note when synthetic images were chosen on a validation gain whose 95% interval reaches zero."""
    gain = chosen.get("synthetic_gain")
    if gain is None or not chosen["chosen"].uses_synthetic or gain["ci95"][0] > 0:
        return
    notes.append(
        f"the choice of synthetic images rests on an uncertain gain ({gain_words(gain)}; class-stratified bootstrap "
        f"of the {validation_images} validated images): the test split may not show it; small classes make the "
        "interval wide"
    )


def _note_saturation(candidates: list[dict], validation_images: int, notes: list[str]) -> None:
    """A note when the no-synthetic candidates leave no room for a MIN_GAIN gain on validation."""
    without = max(c["validation_balanced_accuracy"] for c in candidates if not c["uses_synthetic"])
    if without > 1 - MIN_GAIN:
        notes.append(
            f"validation is saturated: without synthetic images the classifier already scores {without:.3f} "
            f"balanced accuracy on the {validation_images} validation images, so no mixing can show a "
            f"{MIN_GAIN * 100:g}-point gain there and the choice rests on the validation log-loss; more validation "
            "images (a larger --validation-fraction) would make it firmer"
        )


def _check_pool(plan, pool, source, train: ImageDataset, arm_names: list[str], notes: list[str]) -> list[str]:
    """Check that the synthetic set serves every arm; a filtered export (short by design: classes short of
    images are made up by real repeats) is noted instead, and loses the synthetic-only arm when it kept nothing."""
    if pool is None:
        return arm_names
    filtered = bool(source.get("filter") or (source.get("manifest") or {}).get("diversity_filter"))
    if not filtered:
        plan.check_available(pool.counts, train.class_names)
        return arm_names
    _note_repeats(plan, pool, train, notes)
    if not len(pool) and "synthetic" in arm_names:
        notes.append("the export filter kept no synthetic image: no synthetic-only arm")
        return [a for a in arm_names if a != "synthetic"]
    return arm_names


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
