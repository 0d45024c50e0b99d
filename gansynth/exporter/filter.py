"""Export filtering that keeps diversity: drop samples that add nothing, never keep only the most confident ones.

With ``export(..., filter="diverse")`` (CLI ``--filter diverse``; ``auto``, the CLI default, filters whenever the
run's real training images can be loaded) an export drops

- **wrong-label** samples: the domain classifier (trained on the real images, as ``gansynth evaluate`` and
  ``--min-confidence`` use it) predicts another class than the one requested — a sample is *not* dropped for being
  merely unsure;
- **near-duplicates of training images**: a sample whose signature (the image average-pooled to
  :data:`SIGNATURE_SIDE` px, uint8) lies closer to a real image of its class than the class's threshold;
- **near-duplicates of each other**: in seed order, a sample that close to an earlier kept sample of its class;
- **every sample of a class whose generator fails the diversity check** (:mod:`gansynth.train.diversity`: the mean
  pairwise distance of its generated images below :data:`MIN_DIVERSITY` × that of its real images): such a class
  gets no synthetic images, and the consumer oversamples its real ones instead.

Threshold of class k: :data:`DUPLICATE_SCALE` × the :data:`DUPLICATE_QUANTILE` quantile of the real-vs-real
nearest-neighbour signature distances within class k, capped by the same quantile over all classes pooled (which
alone serves a class of fewer than :data:`MIN_REAL_FOR_THRESHOLD` real images): a sample that close to a training
image is closer to it than almost any two real images are to each other. The cap matters for small classes, whose
few real images lie far apart: their own quantile would call most samples duplicates (measured on digits-LT ρ = 10:
the 15 real eights' own 5% quantile would drop 98% of 120 generated eights as near each other, the pooled one 8%).

Dropped samples are not replaced: ``--per-class N`` is the number *drawn*, the manifest records per class how many
were drawn, kept and dropped by reason, and whether the class was skipped. Wrong-label and near-training drops are
decided unit by unit while generating (they depend on one image alone), near-synthetic drops once every unit is
written (they depend on the whole class), from signatures kept in the unit journal; the decisions are written to
``.export/filter.json`` before the dropped files are deleted, so an interrupted export resumes to the same bytes.
:class:`gansynth.SyntheticDataset` draws on the fly and does not filter.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from gansynth.errors import ConfigError, ExportError, GansynthError
from gansynth.exporter.store import FILTER_FILE, STATE_DIR
from gansynth.train.diversity import LOW_DIVERSITY

MODES = ("none", "diverse", "auto")
SIGNATURE_SIDE = 8  # px of the average-pooled signature a near-duplicate is measured on
DUPLICATE_QUANTILE = 0.05  # of the real-vs-real nearest-neighbour distances within a class
DUPLICATE_SCALE = 1.0
MIN_REAL_FOR_THRESHOLD = 5  # fewer real images in a class: the pooled threshold of every class
MIN_DIVERSITY = LOW_DIVERSITY  # generated / real mean pairwise distance below this: the class is skipped
REASONS = ("wrong_label", "near_training", "near_synthetic")

Classify = Callable[[torch.Tensor], torch.Tensor]  # uint8 images [N, C, H, W] → predicted labels [N]


@dataclass(frozen=True)
class FilterSettings:
    """What the diversity-keeping filter drops (recorded in the export's identity)."""

    wrong_label: bool = True
    duplicate_quantile: float = DUPLICATE_QUANTILE
    duplicate_scale: float = DUPLICATE_SCALE
    min_diversity: float = MIN_DIVERSITY


def check_mode(mode: str | FilterSettings | None) -> str | FilterSettings:
    """``none`` / ``diverse`` / ``auto`` or FilterSettings (``diverse`` with them; None: ``none``); else ConfigError."""
    mode = "none" if mode is None else mode
    if isinstance(mode, FilterSettings):
        return mode
    if mode not in MODES:
        from gansynth.registry import did_you_mean

        raise ConfigError(f"unknown export filter {mode!r}", hint=did_you_mean(str(mode), list(MODES)))
    return mode


def signatures(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[N, C, H, W]`` → uint8 ``[N, C·s·s]``: each image average-pooled to s = min(H, SIGNATURE_SIDE) px."""
    side = min(images.shape[-1], SIGNATURE_SIDE)
    pooled = torch.nn.functional.adaptive_avg_pool2d(images.double(), side)
    return pooled.round().clamp(0, 255).to(torch.uint8).flatten(1)


def encode(signature: torch.Tensor) -> str:
    return bytes(signature.tolist()).hex()


def decode(texts: list[str], width: int) -> torch.Tensor:
    if not texts:
        return torch.zeros(0, width, dtype=torch.uint8)
    return torch.tensor([list(bytes.fromhex(t)) for t in texts], dtype=torch.uint8)


def distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``[len(a), len(b)]`` between uint8 signatures (float64, deterministic)."""
    return torch.cdist(a.double(), b.double())


def nearest_real_distances(sigs: torch.Tensor) -> torch.Tensor:
    """Each real image's distance to its nearest other real image (of the same set)."""
    if len(sigs) < 2:
        return torch.zeros(0, dtype=torch.float64)
    d = distances(sigs, sigs)
    d.fill_diagonal_(float("inf"))
    return d.min(dim=1).values


def thresholds(real: dict[int, torch.Tensor], settings: FilterSettings) -> dict[int, float]:
    """Near-duplicate distance per class (see the module docstring)."""
    nearest = {k: nearest_real_distances(s) for k, s in real.items()}
    pooled = torch.cat([d for d in nearest.values()]) if nearest else torch.zeros(0, dtype=torch.float64)
    fallback = float(torch.quantile(pooled, settings.duplicate_quantile)) if len(pooled) else 0.0
    own = {
        k: float(torch.quantile(d, settings.duplicate_quantile)) if len(d) >= MIN_REAL_FOR_THRESHOLD else fallback
        for k, d in nearest.items()
    }
    return {k: settings.duplicate_scale * min(value, fallback) for k, value in own.items()}


@dataclass
class ExportFilter:
    """The filter of one export: per-class thresholds, real signatures, the label check and the skipped classes.

    Attributes:
        settings: what is dropped.
        real: class label → uint8 signatures of its real images.
        limits: class label → near-duplicate distance.
        classify: predicted labels of uint8 images at the trained resolution (None: no wrong-label check).
        diversity: class label → generated / real diversity ratio (classes with < 2 real images absent).
        scorer: name of the label classifier, as recorded.
        reference: fingerprint of the real images.
        train_classify: trains the default label check when :meth:`prepare` is called (None: nothing to train).
    """

    settings: FilterSettings
    real: dict[int, torch.Tensor]
    limits: dict[int, float]
    classify: Classify | None
    diversity: dict[int, float]
    scorer: str | None
    reference: str | None
    train_classify: Callable[[], Classify] | None = None
    skipped: set[int] = field(init=False)

    def __post_init__(self) -> None:
        self.skipped = {k for k, r in self.diversity.items() if r < self.settings.min_diversity}

    def prepare(self) -> None:
        """Train the default label check (the domain classifier, cached) if it is still missing."""
        if self.classify is None and self.train_classify is not None:
            self.classify = self.train_classify()

    def identity(self) -> dict:
        """What determines the filter's decisions (joins the export's command identity)."""
        return {**asdict(self.settings), "scorer": self.scorer, "reference": self.reference}

    def apply(self, label: int, seeds: list[int], images: torch.Tensor, scores: list | None) -> tuple:
        """One unit's drawn images → ``(seeds, images, scores, dropped, signatures)`` of those kept.

        ``images`` at the trained resolution; ``dropped`` counts by reason; ``signatures`` hex strings per kept image.
        """
        keep = torch.ones(len(seeds), dtype=torch.bool)
        dropped = {"wrong_label": 0, "near_training": 0}
        if self.classify is not None and self.settings.wrong_label and len(seeds):
            wrong = torch.as_tensor(self.classify(images)).cpu().flatten() != label
            dropped["wrong_label"] = int(wrong.sum())
            keep &= ~wrong
        sigs = signatures(images)
        real = self.real.get(label)
        if real is not None and len(real) and len(seeds):
            near = distances(sigs, real).min(dim=1).values < self.limits.get(label, 0.0)
            dropped["near_training"] = int((near & keep).sum())
            keep &= ~near
        idx = keep.nonzero().flatten().tolist()
        kept_scores = None if scores is None else [scores[i] for i in idx]
        return [seeds[i] for i in idx], images[idx], kept_scores, dropped, [encode(sigs[i]) for i in idx]


def near_synthetic(records: dict, limits: dict[int, float]) -> dict[int, list[int]]:
    """Class label → seeds dropped as near-duplicates of an earlier kept sample of the class (seed order).

    ``records``: the journal of every unit, with the kept seeds' ``signatures``.
    """
    dropped: dict[int, list[int]] = {}
    for label in sorted({k[0] for k in records}):
        pairs = sorted(
            (s, t) for key, r in records.items() if key[0] == label for s, t in zip(r["seeds"], r.get("signatures", []))
        )
        if not pairs:
            continue
        sigs = decode([t for _, t in pairs], len(bytes.fromhex(pairs[0][1])))
        close = distances(sigs, sigs) < limits.get(label, 0.0)
        kept: list[int] = []
        for i in range(len(pairs)):
            if kept and bool(close[i, kept].any()):
                dropped.setdefault(label, []).append(pairs[i][0])
            else:
                kept.append(i)
    return dropped


def read_decisions(out: Path) -> dict[int, set[int]] | None:
    """The near-synthetic decisions of ``out/.export/filter.json`` (None when not yet made)."""
    path = out / STATE_DIR / FILTER_FILE
    if path.is_symlink() or not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        return {int(k): {int(s) for s in v} for k, v in record["near_synthetic"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_decisions(out: Path, dropped: dict[int, list[int]]) -> None:
    from gansynth.io import atomic_write_json

    atomic_write_json(out / STATE_DIR / FILTER_FILE, {"near_synthetic": {str(k): v for k, v in dropped.items()}})


def build_filter(
    mode: str | FilterSettings,
    sampler,
    reference=None,
    classify: Classify | None = None,
    settings: FilterSettings | None = None,
    progress: bool = False,
) -> tuple[ExportFilter | None, str | None]:
    """``(filter, note)`` for an export of ``sampler``'s run; ``note`` says why ``auto`` did not filter.

    ``reference``: the real training images (an ImageDataset at the trained geometry; None: loaded from the run's
    source). ``classify``: predicted labels (None: the run's domain classifier, trained on ``reference``).
    """
    if isinstance(mode, FilterSettings):
        mode, settings = "diverse", mode
    if mode == "none":
        return None, None
    settings = settings or FilterSettings()
    try:
        reference = _reference(sampler, reference)
    except ExportError as exc:
        if mode == "auto":
            return None, f"not filtered: {exc.message}"
        raise
    scorer = None if not settings.wrong_label else "domain" if classify is None else _name(classify)
    train = (lambda: _domain_classify(sampler, reference, progress)) if settings.wrong_label else None
    from gansynth.train.diversity import diversity_ratios

    ratios = diversity_ratios(sampler.generator, reference, sampler.z_dim, sampler.device)
    real = {k: signatures(reference.images[reference.labels == k]) for k in range(len(reference.class_names))}
    screen = ExportFilter(
        settings=settings,
        real=real,
        limits=thresholds(real, settings),
        classify=classify if settings.wrong_label else None,
        diversity={reference.class_names.index(n): r for n, r in ratios.items()},
        scorer=scorer,
        reference=reference.fingerprint,
        train_classify=None if classify is not None else train,
    )
    return screen, None


def _reference(sampler, reference):
    """The real images at the sampler's geometry, with its class order; ExportError when they cannot be had."""
    if reference is not None:
        if (reference.resolution, reference.channels) != (sampler.resolution, sampler.channels):
            reference = None
        elif list(reference.class_names) != list(sampler.class_names):
            raise ExportError(
                "the filter's reference images have other classes than the run",
                hint=f"pass the run's training images (classes {', '.join(sampler.class_names)})",
            )
    if reference is not None:
        return reference
    from gansynth.data import load_dataset

    source = sampler.dataset_info.get("source")
    try:
        loaded = load_dataset(source, resolution=sampler.resolution)
    except GansynthError as exc:
        raise ExportError(
            f"the diversity filter compares samples with the run's real images, but {source} cannot be loaded "
            f"({exc.message})",
            hint="restore the training folder at that path, or export with --filter none",
        ) from None
    if list(loaded.class_names) != list(sampler.class_names):
        raise ExportError(
            f"{source} no longer has the run's classes", hint="restore the training folder or use --filter none"
        )
    return replace(loaded)


def _domain_classify(sampler, reference, progress: bool) -> Classify:
    from gansynth.metrics.domain import load_or_train_domain_classifier
    from gansynth.runtime import Runtime

    classifier, _ = load_or_train_domain_classifier(
        reference, runtime=Runtime(device=sampler.device), progress=progress
    )
    return lambda images: classifier.predict(images)


def _name(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def class_report(screen: ExportFilter, plans, records: dict, decisions: dict[int, set[int]]) -> dict[int, dict]:
    """Per class label: requested, drawn, kept, dropped by reason, skipped flag and diversity ratio."""
    report = {}
    for plan in plans:
        recs = [r for k, r in records.items() if k[0] == plan.label]
        dropped = {reason: sum(r.get("dropped", {}).get(reason, 0) for r in recs) for reason in REASONS[:2]}
        dropped["near_synthetic"] = len(decisions.get(plan.label, ()))
        skipped = plan.label in screen.skipped
        drawn = 0 if skipped else plan.count
        report[plan.label] = {
            "requested": plan.count,
            "drawn": drawn,
            "kept": drawn - sum(dropped.values()),
            "dropped": dropped,
            "skipped": skipped,
            "diversity_ratio": screen.diversity.get(plan.label),
            "near_duplicate_distance": round(screen.limits.get(plan.label, 0.0), 4),
        }
    return report


def describe(report: dict[int, dict], names: list[str]) -> list[str]:
    """CLI lines: one per class with drops, and one per skipped class."""
    lines = []
    for label, r in report.items():
        name = names[label]
        if r["skipped"]:
            lines.append(
                f"filter: {name}: skipped — its generator fails the diversity check (ratio {r['diversity_ratio']:.2f} "
                f"< {MIN_DIVERSITY:g}); no synthetic images, oversample its real images instead"
            )
        else:
            why = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in r["dropped"].items() if v)
            lines.append(f"filter: {name}: drew {r['drawn']}, kept {r['kept']}" + (f" (dropped: {why})" if why else ""))
    return lines


def annotate_manifest(manifest: dict, screen: ExportFilter, report: dict[int, dict]) -> None:
    """Add the filter's settings and per-class report to a manifest (``classes[i]["filter"]``)."""
    manifest["diversity_filter"] = {
        **screen.identity(),
        "signature_side": SIGNATURE_SIDE,
        "rule": "drop wrong-label samples, near-duplicates of training images and of each other; skip classes "
        "whose generator fails the diversity check (the consumer oversamples their real images)",
        "skipped_classes": [manifest["run"]["class_names"][k] for k in sorted(screen.skipped)],
    }
    for entry in manifest["classes"]:
        entry["filter"] = report[entry["label"]]
