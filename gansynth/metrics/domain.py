"""The domain classifier: trained from scratch on the real images, cached per dataset fingerprint.

Its pooled multi-scale features (every stage + pre-logits, see ``Classifier.multiscale_features``) are the offline
feature extractor of ``gansynth evaluate``; its predictions give label fidelity, and ``gansynth export
--min-confidence`` filters with it. Its held-out accuracy on a stratified split of the real images is reported with
every number it produced (a weak extractor makes weak metrics).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from gansynth.data import ImageDataset, cache_root
from gansynth.data.fingerprint import hash_file
from gansynth.errors import DataError
from gansynth.io import atomic_write_json, make_dirs
from gansynth.runtime import Runtime, cpu_runtime

if TYPE_CHECKING:
    from gansynth.classify import Classifier, ClassifierConfig

CACHE_VERSION = 2  # 2: trained with balanced softmax
HELDOUT_FRACTION = 0.2  # stratified share of the real images kept out of training to measure accuracy
SPLIT_SEED = 0
TARGET_IMAGES_SEEN = 100_000  # training length: about this many images shown, in whole epochs ...
MIN_EPOCHS, MAX_EPOCHS = 2, 30  # ... within these bounds (digits, 1 437 train images: 30 epochs)
DOMAIN_MODEL = "test_efficientnet"  # timm; 0.1M parameters, ~1k img/s on 2 CPU cores at 32 px


@dataclass(frozen=True)
class DomainClassifier:
    """A trained domain classifier and what it is worth.

    Attributes:
        classifier: the ``gansynth.classify.Classifier``.
        heldout_accuracy: top-1 accuracy on the held-out real images (never seen in training).
        path: where it is cached (``Classifier.save`` path, without suffix).
        weights_sha256: sha256 of its weights file (part of the metrics protocol).
    """

    classifier: Classifier
    heldout_accuracy: float
    path: Path
    weights_sha256: str


def domain_config(num_train: int) -> ClassifierConfig:
    """The ``ClassifierConfig`` used for a real set of ``num_train`` training images.

    A tiny timm EfficientNet (``test_efficientnet``, 0.1M parameters, stem adapted to small images: fast enough to
    train on 2 CPU cores — digits in ~10 s), no flips (digits and text are not mirror symmetric), crop
    augmentation, about ``TARGET_IMAGES_SEEN`` images shown. The same config on every device, so numbers from a
    GPU and a CPU evaluation share one extractor.

    Trained with balanced softmax (logits + log of the real class prior in training, plain logits in use): its
    predictions are those of a classifier under a uniform class prior, the prior of what it judges — generated
    sets are drawn evenly over the classes. Plain cross-entropy on a long-tailed folder learns the folder's prior
    and gives an ambiguous tail-class image to a head class, which under-reports the tail's label fidelity and
    makes the export filter drop tail samples as "wrong label". On a balanced folder the prior is uniform and the
    loss is plain cross-entropy.
    """
    from gansynth.classify import ClassifierConfig

    epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(TARGET_IMAGES_SEEN / max(num_train, 1))))
    return ClassifierConfig(
        model=DOMAIN_MODEL, epochs=epochs, batch_size=128, lr=0.05, flip=False, seed=0, balanced_softmax=True
    )


def _cache_path(dataset: ImageDataset, config: ClassifierConfig) -> Path:
    key = json.dumps(
        {
            "version": CACHE_VERSION,
            "fingerprint": dataset.fingerprint,
            "resolution": dataset.resolution,
            "channels": dataset.channels,
            "classes": dataset.class_names,
            "config": asdict(config),
            "heldout": HELDOUT_FRACTION,
            "split_seed": SPLIT_SEED,
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return cache_root() / "classifiers" / f"domain-{digest}"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".heldout.json")


def domain_classifier(
    dataset: ImageDataset,
    runtime: Runtime | None = None,
    progress: bool = False,
    config: ClassifierConfig | None = None,
) -> DomainClassifier:
    """Load the cached domain classifier of ``dataset`` or train it (stratified split, held-out accuracy).

    Args:
        dataset: the real images (the cache key is its content fingerprint, resolution and classes).
        runtime: where to train and run it (CPU by default).
        progress: show the training progress bar.
        config: a ``ClassifierConfig`` to use instead of :func:`domain_config`.

    Raises:
        DataError: a class has too few images to be split into training and held-out parts.
    """
    from gansynth.classify import Classifier, stratified_split, train_classifier

    runtime = runtime or cpu_runtime()
    counts = dataset.counts
    small = [f"{name} ({count})" for name, count in zip(dataset.class_names, counts) if count < 2]
    if small:
        raise DataError(
            f"the domain classifier needs at least 2 real images per class (one to train on, one held out); "
            f"too few in: {', '.join(small)}",
            hint="add images to those classes, or use --feature-extractor inception with its weights file",
        )
    num_train = len(dataset) - max(len(counts), round(HELDOUT_FRACTION * len(dataset)))
    config = config or domain_config(num_train)
    path = _cache_path(dataset, config)
    sidecar = _sidecar(path)
    if sidecar.is_file():
        try:
            record = json.loads(sidecar.read_text())
            classifier = Classifier.load(path, runtime=runtime)
            return DomainClassifier(classifier, float(record["heldout_accuracy"]), path, record["weights_sha256"])
        except Exception:  # noqa: BLE001 - a damaged cache entry is simply retrained
            pass
    train_idx, test_idx = stratified_split(dataset.labels, HELDOUT_FRACTION, SPLIT_SEED)
    classifier = train_classifier(
        dataset.images[train_idx],
        dataset.labels[train_idx],
        dataset.num_classes,
        config,
        runtime=runtime,
        progress=progress,
    )
    predicted = classifier.predict(dataset.images[test_idx])
    accuracy = float((predicted == dataset.labels[test_idx]).double().mean())
    make_dirs(path.parent)
    classifier.save(path)
    weights_sha256 = hash_file(path.with_name(path.name + ".safetensors"))
    atomic_write_json(  # written last: its presence marks a complete cache entry
        sidecar,
        {
            "heldout_accuracy": accuracy,
            "num_train": int(torch.as_tensor(train_idx).numel()),
            "num_heldout": int(torch.as_tensor(test_idx).numel()),
            "fingerprint": dataset.fingerprint,
            "weights_sha256": weights_sha256,
        },
    )
    return DomainClassifier(classifier, accuracy, path, weights_sha256)


def load_or_train_domain_classifier(
    dataset: ImageDataset, runtime: Runtime | None = None, progress: bool = False
) -> tuple[Classifier, float]:
    """``(Classifier, held-out accuracy)`` of the domain classifier of ``dataset`` (cached; trained on a miss).

    The same classifier serves the ``domain`` feature extractor, label fidelity and ``export --min-confidence``.
    """
    found = domain_classifier(dataset, runtime=runtime, progress=progress)
    return found.classifier, found.heldout_accuracy
