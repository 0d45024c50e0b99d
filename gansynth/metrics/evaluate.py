"""``gansynth evaluate``: generated images (a run's sampler or a folder) vs real images → a metrics record.

Order of work: domain classifier (cached; trained on the real images) → feature extractor (torch-fidelity registry)
→ real features (cached by content) → generated images and features → :func:`gansynth.metrics.score.score`
→ the protocol that produced the numbers.
"""

from __future__ import annotations

import dataclasses
import math
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from gansynth.data import ImageDataset, is_builtin, load_dataset
from gansynth.data.fingerprint import hash_file
from gansynth.errors import ConfigError, DataError, MetricError
from gansynth.images import match_channels
from gansynth.io import append_jsonl, atomic_write_json, make_dirs
from gansynth.metrics import formulas
from gansynth.metrics.domain import domain_classifier
from gansynth.metrics.extractors import (
    AUTO,
    EXTRACTORS,
    check_extractor_name,
    find_weights,
    missing_weights_error,
)
from gansynth.metrics.features import create_extractor, extract, real_features
from gansynth.metrics.records import MetricsRecord
from gansynth.metrics.score import COLLAPSE_THRESHOLD, check_sizes, score
from gansynth.metrics.spec import EvaluateSpec
from gansynth.rundir import METRICS
from gansynth.runtime import Runtime, cpu_runtime, make_runtime
from gansynth.specs import as_spec

EVAL_SEED = 1_000_000_000  # generated image i of each class uses seed EVAL_SEED + i (apart from export's seeds)
DEFAULT_MIN_SAMPLES, DEFAULT_MAX_SAMPLES = 1_000, 10_000  # default generated count: the real count within these
METRICS_FILE = METRICS


def default_num_samples(num_real: int) -> int:
    """Generated images when none are asked for: as many as real ones, at least 1 000 and at most 10 000."""
    return min(DEFAULT_MAX_SAMPLES, max(DEFAULT_MIN_SAMPLES, num_real))


def generate_balanced(sampler, num_samples: int, progress=None) -> ImageDataset:
    """``ceil(num_samples / K)`` images of every class from a sampler, class c from seeds ``EVAL_SEED + i``."""
    per_class = math.ceil(num_samples / sampler.num_classes)
    task = progress.add_task("generating", total=per_class * sampler.num_classes) if progress is not None else None
    images, labels = [], []
    for index in range(sampler.num_classes):
        images.append(sampler.generate(index, per_class, seed=EVAL_SEED, size=sampler.resolution))
        labels.append(torch.full((per_class,), index, dtype=torch.long))
        if task is not None:
            progress.advance(task, per_class)
    return ImageDataset(
        name="generated",
        source=f"generator of {sampler.run_dir}",
        images=torch.cat(images),
        labels=torch.cat(labels),
        class_names=list(sampler.class_names),
        fingerprint="",
    )


def _align(generated: ImageDataset, real: ImageDataset) -> tuple[list[str], torch.Tensor, torch.Tensor, list[str]]:
    """Classes in both sets (real order), the generated / real rows that belong to them, and notes on the rest."""
    common = [name for name in real.class_names if name in generated.class_names]
    if not common:
        raise MetricError(
            f"the generated images ({', '.join(generated.class_names)}) and the real images "
            f"({', '.join(real.class_names)}) have no class in common",
            hint="class folders are matched by name; give --generated and --data folders with the same class names",
        )
    notes = []
    only_generated = [n for n in generated.class_names if n not in common]
    only_real = [n for n in real.class_names if n not in common]
    if only_generated:
        notes.append(f"classes only among the generated images, ignored: {', '.join(only_generated)}")
    if only_real:
        notes.append(f"classes only among the real images, ignored: {', '.join(only_real)}")
    gen_keep = torch.tensor([generated.class_names[i] in common for i in generated.labels.tolist()], dtype=torch.bool)
    real_keep = torch.tensor([real.class_names[i] in common for i in real.labels.tolist()], dtype=torch.bool)
    return common, gen_keep.nonzero().flatten(), real_keep.nonzero().flatten(), notes


def _relabel(labels: torch.Tensor, names: list[str], target: list[str]) -> torch.Tensor:
    lookup = torch.tensor([target.index(n) if n in target else -1 for n in names], dtype=torch.long)
    return lookup[labels]


@contextmanager
def _progress(enabled: bool):
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        yield bar


def _choose_extractor(name: str, weights: str | Path | None) -> tuple[str, Path | None, list[str]]:
    """``(extractor name, weights path or None, notes)``; ``auto`` → inception with weights, else domain."""
    notes = []
    if name == AUTO:
        found = find_weights(EXTRACTORS.get("inception"), weights)
        if found is not None:
            notes.append(f"feature extractor: inception (auto: weights found at {found})")
            return "inception", found, notes
        notes.append(
            "feature extractor: domain (auto: inception weights "
            f"{EXTRACTORS.get('inception').weights_file} not found; features of a classifier trained on the real "
            "images, numbers not comparable with published Inception FIDs)"
        )
        return "domain", None, notes
    spec = EXTRACTORS.get(name)
    if name == "domain":
        return name, None, [f"feature extractor: domain{' (--weights ignored)' if weights else ''}"]
    found = find_weights(spec, weights)
    if found is None:
        raise missing_weights_error(spec)
    return name, found, [f"feature extractor: {name} (weights {found})"]


def _evaluate(
    generated: ImageDataset,
    real: ImageDataset,
    choice: tuple[str, Path | None, list[str]],
    requested: str,
    runtime: Runtime,
    progress: bool,
    generated_what: str,
    provenance: dict,
) -> MetricsRecord:
    started = time.perf_counter()
    runtime = metrics_runtime(runtime)
    name, weights_path, notes = choice
    spec = EXTRACTORS.get(name)
    generated = dataclasses.replace(generated, images=match_channels(generated.images, real.channels))
    common, gen_rows, real_rows, align_notes = _align(generated, real)
    notes = notes + align_notes
    check_sizes(len(gen_rows), len(real_rows), generated_what, f"the real images ({real.source})")
    restricted = len(real_rows) < len(real)
    domain = domain_classifier(real, runtime=runtime, progress=progress)
    if name == "domain":
        weights_path, weights_sha256 = domain.path, domain.weights_sha256
    else:
        weights_sha256 = hash_file(weights_path)
    extractor = create_extractor(spec, weights_path, weights_sha256, runtime)
    gen_images = generated.images[gen_rows]
    with _progress(progress) as bar:
        real_all, real_neighbours = real_features(real, extractor, bar, None if restricted else _neighbours)
        gen_out = extract(extractor, gen_images, bar, "generated features")
    intended = _relabel(generated.labels[gen_rows], generated.class_names, real.class_names)
    record = score(
        gen_out[spec.feature_layer],
        _relabel(generated.labels[gen_rows], generated.class_names, common),
        real_all[real_rows],
        _relabel(real.labels[real_rows], real.class_names, common),
        common,
        real_neighbours=None if restricted else real_neighbours,
        isc_logits=gen_out.get(spec.isc_layer) if spec.isc_layer else None,
        label_hits=domain.classifier.predict(gen_images) == intended,
        heldout_accuracy=domain.heldout_accuracy,
    )
    if record["kid"] is None:
        notes.append(f"kid is null: it needs at least {formulas.KID_MIN_SAMPLES} images on each side")
    if record["is"] is None:
        notes.append("is is null: the Inception Score is defined for the inception extractor only")
    record["notes"] = notes + record.get("notes", [])
    record["protocol"] = _protocol(
        spec, requested, weights_sha256, len(gen_rows), real, real_rows, domain, provenance,
        int(real_all.shape[1]), time.perf_counter() - started,
    )  # fmt: skip
    return record


def metrics_runtime(runtime: Runtime) -> Runtime:
    """The caller's device, but fp32, uncompiled and single-process: metrics must not depend on the training
    precision, and during a DDP fit only rank 0 evaluates (a collective would wait for the others forever)."""
    return dataclasses.replace(runtime, precision="fp32", compile=False, rank=0, world_size=1)


def _neighbours(features: torch.Tensor) -> torch.Tensor | None:
    """Real-to-real neighbour distances for density/coverage/memorization (None when too few images)."""
    return formulas.real_neighbourhoods(features) if len(features) > formulas.DC_NEIGHBOURS else None


def _protocol(spec, requested, weights_sha256, num_generated, real, real_rows, domain, provenance, dim, elapsed):
    import torch_fidelity

    from gansynth import __version__

    return {
        "feature_extractor": spec.name,
        "feature_extractor_requested": requested,
        "torch_fidelity_extractor": spec.fidelity_name,
        "feature_layer": spec.feature_layer,
        "feature_dim": dim,
        "weights_sha256": weights_sha256,
        "resize": spec.resize,
        "num_generated": num_generated,
        "num_real": len(real_rows),
        "reference": {
            "source": real.source,
            "fingerprint": real.fingerprint,
            "split": "all images" if len(real_rows) == len(real) else "images of the classes in common",
        },
        "resolution": real.resolution,
        "channels": real.channels,
        "domain_heldout_accuracy": domain.heldout_accuracy,
        "domain_classifier_sha256": domain.weights_sha256,
        "precision_recall_k": formulas.PR_NEIGHBOURS,
        "density_coverage_k": formulas.DC_NEIGHBOURS,
        "kid_subsets": formulas.kid_subsets(num_generated, len(real_rows)),
        "kid_subset_size": min(formulas.KID_MAX_SUBSET, num_generated, len(real_rows)),
        "memorization_percentile": formulas.MEMORIZATION_PERCENTILE,
        "collapse_threshold": COLLAPSE_THRESHOLD,
        "gansynth_version": __version__,
        "torch_fidelity_version": torch_fidelity.__version__,
        "elapsed_s": round(elapsed, 3),
        "kimg": None,
        "checkpoint_sha256": None,
        **provenance,
    }


def evaluate_sampler(
    sampler,
    real: ImageDataset,
    num_samples: int | None = None,
    feature_extractor: str = AUTO,
    weights: str | Path | None = None,
    runtime: Runtime | None = None,
    progress: bool = False,
) -> MetricsRecord:
    """Metrics of a sampler's images (exactly balanced per class) against ``real``; nothing is written.

    Works on an in-memory :class:`~gansynth.sampler.Sampler` (the trainer calls it every ``eval.every_kimg``).

    Args:
        sampler: anything with ``class_names``, ``num_classes``, ``generate(class_index, n, seed)`` → uint8
            ``[n, C, H, W]``, ``run_dir``, ``kimg`` and ``checkpoint_sha256``.
        real: the real images (the run's dataset, or another labeled set matched by class name).
        num_samples: generated images in all (rounded up to a multiple of the class count); None:
            :func:`default_num_samples`.
        feature_extractor: ``auto``, ``inception``, ``domain``, ``dinov2`` or ``clip``.
        weights: weights file of the extractor (inception / dinov2 / clip).
        runtime: where to run (CPU by default).
        progress: show progress bars on stderr.

    Returns:
        The metrics record (see :func:`evaluate`).
    """
    runtime = runtime or cpu_runtime()
    count = default_num_samples(len(real)) if num_samples is None else int(num_samples)
    if count < sampler.num_classes:
        raise MetricError(
            f"--num-samples {count} is fewer than the {sampler.num_classes} classes",
            hint=f"ask for at least {sampler.num_classes} (hundreds per class make stable numbers)",
        )
    check_extractor_name(feature_extractor)
    choice = _choose_extractor(feature_extractor, weights)
    provenance = {
        "kimg": getattr(sampler, "kimg", None),
        "checkpoint_sha256": getattr(sampler, "checkpoint_sha256", None),
        "checkpoint_file": getattr(sampler, "checkpoint_file", None),
        "generated_source": f"{sampler.run_dir} generator, seeds {EVAL_SEED}+i per class",
    }
    with _progress(progress) as bar:
        generated = generate_balanced(sampler, count, bar)
    return _evaluate(generated, real, choice, feature_extractor, runtime, progress, "the generated set", provenance)


def evaluate_generator(
    generator: torch.nn.Module,
    real: ImageDataset,
    z_dim: int,
    kimg: float,
    run_dir: Path,
    num_samples: int | None = None,
    feature_extractor: str = AUTO,
    runtime: Runtime | None = None,
) -> MetricsRecord:
    """:func:`evaluate_sampler` for an in-memory generator trained on ``real`` (the trainer, every
    ``eval.every_kimg``); the record's checkpoint fields say that no weights file was read."""
    from gansynth.sampler import Sampler

    runtime = runtime or cpu_runtime()
    sampler = Sampler(
        generator=generator,
        class_names=list(real.class_names),
        resolution=real.resolution,
        channels=real.channels,
        z_dim=z_dim,
        kimg=kimg,
        checkpoint_sha256=IN_MEMORY,
        checkpoint_file=IN_MEMORY,
        run_dir=run_dir,
        dataset_info=real.info(),
        device=runtime.device,
    )
    return evaluate_sampler(sampler, real, num_samples, feature_extractor, runtime=runtime)


IN_MEMORY = "in-memory (during fit)"  # the checkpoint fields of a record made during fit
SYSTEM_TREES = ("/proc", "/sys", "/dev")  # never scanned as the training data a run's dataset.json names


def _run_real(sampler, data: str | Path | None) -> ImageDataset:
    """The real images: ``data``, or the training data named in the run's dataset.json (untrusted: it must be a
    built-in name or a folder outside the system trees, and must still match the run's fingerprint)."""
    source = data if data is not None else sampler.dataset_info.get("source")
    if data is None and not is_builtin(str(source)):
        resolved = Path(str(source)).resolve()
        if not resolved.is_dir() or any(resolved.is_relative_to(t) for t in SYSTEM_TREES):
            raise DataError(
                f"the run's training data {source} (from its dataset.json) is not a data folder here",
                hint="pass the real images with --data DIR (or 'digits')",
            )
    try:
        return load_dataset(source, resolution=sampler.resolution)
    except DataError as exc:
        if data is not None:
            raise
        raise DataError(
            f"the run's training data {source} cannot be loaded: {exc.message}",
            hint="pass the real images with --data DIR (or 'digits')",
        ) from None


def evaluate(
    run: str | Path | None = None,
    data: str | Path | None = None,
    generated: str | Path | None = None,
    *,
    spec: EvaluateSpec | None = None,
    **options,
) -> MetricsRecord:
    """Evaluate a run's generator, or a folder of generated images, against real images.

    Args:
        run: a run directory (None: the most recent under ``./runs``); ignored as a generator with ``generated``.
        data: the real images (a folder or ``digits``); None: the run's training data.
        generated: an ImageFolder of generated images (e.g. an export's ``images/``); class folders are matched to
            the real classes by name; no run is needed when ``data`` is given.
        spec: the options as one :class:`~gansynth.metrics.spec.EvaluateSpec` (num_samples, feature_extractor,
            weights, json_out, device, progress, checkpoint); or pass its fields as keywords, not both.

    Returns:
        The :class:`~gansynth.metrics.records.MetricsRecord` (overall metrics, ``per_class`` rows, alarms, notes,
        protocol); a metric that cannot be computed is None. A run's record is also appended to its
        ``metrics.jsonl``.

    Raises:
        MetricError: missing weights, no class in common, too few images for a metric.
        CheckpointError / DataError / ConfigError: a bad run directory, data folder or option.
    """
    spec = as_spec(EvaluateSpec, spec, options, "evaluate")
    if spec.json_out is not None:
        make_dirs(spec.json_out.parent)  # a read-only --json fails now, not after the evaluation
    runtime = make_runtime(spec.device, "fp32", compile=False)
    if generated is not None and spec.checkpoint != "latest":
        raise ConfigError(
            f"--checkpoint {spec.checkpoint} picks a run's generator, but --generated evaluates a folder of images",
            hint="drop --checkpoint, or drop --generated to evaluate the run's best generator",
        )
    if generated is not None:
        record = _evaluate_folder(run, data, generated, spec.feature_extractor, spec.weights, runtime, spec.progress)
    else:
        from gansynth.sampler import load_sampler

        sampler = load_sampler(run, device=runtime.device, checkpoint=spec.checkpoint)
        real = _run_real(sampler, data)
        record = evaluate_sampler(
            sampler, real, spec.num_samples, spec.feature_extractor, spec.weights, runtime, spec.progress
        )
        if data is None and real.fingerprint != sampler.dataset_info.get("fingerprint"):
            record["notes"].append(
                f"the run's training data {real.source} changed since training (fingerprint differs); the "
                "reference is the folder as it is now"
            )
    if spec.json_out is not None:  # first: a --json that cannot be written leaves metrics.jsonl as it was
        atomic_write_json(spec.json_out, record)
    if generated is None:
        append_jsonl(sampler.run_dir / METRICS_FILE, record)
    return record


def _evaluate_folder(run, data, generated, feature_extractor, weights, runtime, progress) -> MetricsRecord:
    if data is None and run is None:
        raise MetricError(
            "--generated needs the real images to compare with",
            hint="add --data DIR (or 'digits'), or name the run whose training data is the reference",
        )
    if data is not None:
        real = load_dataset(data)
    else:
        from gansynth.sampler import load_sampler

        real = _run_real(load_sampler(run), None)

    choice = _choose_extractor(feature_extractor, weights)
    images = load_dataset(generated, resolution=real.resolution)
    provenance = {"generated_source": images.source}
    return _evaluate(images, real, choice, feature_extractor, runtime, progress, f"--generated {generated}", provenance)
