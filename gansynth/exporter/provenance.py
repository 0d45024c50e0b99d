"""Where an export's images come from: the default confidence scorer (the run's domain classifier) and the
manifest that records run, checkpoint, seeds, filter, acceptance rates and the run's latest metrics."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import torch

from gansynth import __version__
from gansynth.errors import ExportError, GansynthError
from gansynth.exporter import plan as P
from gansynth.rundir import MAX_JSON_BYTES, METRICS, RunDir, read_bounded

MANIFEST_SCHEMA = 1
METRICS_FILE = METRICS  # written by `gansynth evaluate` into the run dir
_SNAPSHOT_KEYS = ("fid", "kid", "precision", "recall", "density", "coverage", "label_fidelity", "per_class_fid_mean")


def domain_scorer(sampler, progress: bool) -> tuple[Callable, dict]:
    """``(scorer, description)``: the run's domain classifier (trained on its real images, cached), as used by
    ``gansynth evaluate``; the scorer returns the probability of the requested class."""
    try:
        from gansynth.metrics.domain import load_or_train_domain_classifier
    except ImportError:
        raise ExportError(
            "--min-confidence needs the domain classifier of `gansynth evaluate` (gansynth.metrics.domain), "
            "which this installation lacks",
            hint="install gansynth with its metrics module, or pass scorer=... to gansynth.export()",
        ) from None
    from gansynth.data import load_dataset
    from gansynth.runtime import Runtime

    source = sampler.dataset_info.get("source")
    try:
        real = load_dataset(source, resolution=sampler.resolution)
    except GansynthError as exc:
        raise ExportError(
            f"--min-confidence trains a classifier on the run's real images, but {source} cannot be loaded "
            f"({exc.message})",
            hint="restore the training folder at that path, or export without --min-confidence",
        ) from None
    runtime = Runtime(device=sampler.device)
    classifier, accuracy = load_or_train_domain_classifier(real, runtime=runtime, progress=progress)

    def score(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return classifier.predict_proba(images).gather(1, labels.view(-1, 1).cpu()).squeeze(1)

    info = {
        "name": "domain",
        "heldout_accuracy": accuracy,
        "real_source": real.source,
        "real_fingerprint": real.fingerprint,
        "matches_training_data": real.fingerprint == sampler.dataset_info.get("fingerprint"),
    }
    return score, info


def metric_snapshot(sampler) -> dict | None:
    """The latest ``metrics.jsonl`` record of this checkpoint (by sha256, else by kimg), abridged; None if none."""
    run = RunDir(sampler.run_dir)
    if not run.exists(METRICS_FILE):
        return None
    path = run.file(METRICS_FILE)  # untrusted: a regular file inside the run, read bounded
    best = None
    for line in read_bounded(path, MAX_JSON_BYTES).decode(errors="replace").splitlines():
        try:
            record = json.loads(line)
            protocol = record.get("protocol", {})
            same = protocol.get("checkpoint_sha256") == sampler.checkpoint_sha256 or (
                protocol.get("checkpoint_sha256") is None and protocol.get("kimg") == sampler.kimg
            )
        except (ValueError, AttributeError):
            continue
        if same:
            best = record
    if best is None:
        return None
    protocol = best.get("protocol", {})
    keep = ("feature_extractor", "weights_sha256", "num_generated", "num_real", "kimg", "checkpoint_sha256")
    return {**{k: best.get(k) for k in _SNAPSHOT_KEYS}, "protocol": {k: protocol.get(k) for k in keep}}


def build_manifest(sampler, plans, records, identity, scorer_info, shard, command_line, fmt) -> dict:
    """The manifest of a complete export (``records``: the journal of every unit)."""
    info = sampler.dataset_info
    classes = []
    for plan in plans:
        recs = [r for k, r in sorted(records.items()) if k[0] == plan.label]
        seeds = [s for r in recs for s in r["seeds"]]
        drawn, passed = sum(r["drawn"] for r in recs), sum(r["passed"] for r in recs)
        base = P.class_seed_base(identity["seed"], plan.label)
        entry = {
            "label": plan.label,
            "name": plan.name,
            "folder": plan.folder,
            "count": plan.count,
            "real_count": plan.real_count,
            "seed_block": [base, base + P.SEED_STRIDE],
            "seed_min": min(seeds) if seeds else None,
            "seed_max": max(seeds) if seeds else None,
        }
        if scorer_info is not None:
            rate = passed / drawn if drawn else None
            entry.update(drawn=drawn, accepted=plan.count, acceptance_rate=None if rate is None else round(rate, 6))
        classes.append(entry)
    renamed = {p.name: p.folder for p in plans if p.name != p.folder}
    return {
        "schema_version": MANIFEST_SCHEMA,
        "gansynth_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command_line": command_line,
        "run": {
            "dir": str(sampler.run_dir.resolve()),
            "name": sampler.run_dir.resolve().name,
            "class_names": list(sampler.class_names),
            "checkpoint": sampler.checkpoint_file,
            "checkpoint_sha256": sampler.checkpoint_sha256,
            "kimg": sampler.kimg,
            "dataset": {k: info.get(k) for k in ("name", "source", "fingerprint", "resolution", "channels")},
        },
        "num_images": sum(p.count for p in plans),
        "format": fmt,
        "resolution": identity["size"],  # of the written images
        "trained_resolution": sampler.resolution,
        "channels": sampler.channels,
        "seed": identity["seed"],
        "seed_scheme": f"class k: seeds seed + k*{P.SEED_STRIDE} + i; units of {P.CHUNK} images per forward pass",
        "truncation": identity["truncation"],
        "filter": None
        if scorer_info is None
        else {
            "min_confidence": identity["min_confidence"],
            "max_draws_per_image": P.MAX_DRAW_FACTOR,
            "scorer": scorer_info,
        },
        "classes": classes,
        "renamed_classes": renamed,
        "label_column": "images.csv label = training class index (dataset.json class_names order); the folders "
        "under images/ sort in that order, so torchvision ImageFolder and Hugging Face imagefolder (a ClassLabel "
        "from the folder names) number the exported classes the same way",
        "metrics": metric_snapshot(sampler),
        "assembled_by": {"shard": f"{shard[0]}/{shard[1]}", "device": str(sampler.device)},
        "identity": identity,
    }
