"""``Classifier`` (a trained network and its input format, saved as safetensors + JSON), ``train_classifier``, the
stratified split and the scores of predictions."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from gansynth.classify.config import ClassifierConfig
from gansynth.classify.network import build_classifier, check_images, to_model_input
from gansynth.classify.training import check_training_data, fit_classifier
from gansynth.errors import CheckpointError, ConfigError, DataError, first_line
from gansynth.images import PIXEL_MEAN, PIXEL_STD
from gansynth.io import atomic_write_bytes, atomic_write_json, make_dirs
from gansynth.mixing import Mixing
from gansynth.runtime import Runtime, cpu_runtime

FORMAT = "gansynth-classifier"
SCHEMA_VERSION = 1


class Classifier:
    """A trained classifier and the input format it expects.

    Attributes:
        model: the uncompiled timm module, in eval mode, on ``runtime.device``.
        num_classes: number of classes K.
        in_chans: image channels C.
        resolution: input side R in pixels; other sizes are resized on the fly.
        config: how it was trained.
    """

    def __init__(
        self,
        model: nn.Module,
        num_classes: int,
        in_chans: int,
        resolution: int,
        config: ClassifierConfig,
        runtime: Runtime | None = None,
    ) -> None:
        self.runtime = runtime or cpu_runtime()
        self.model = model.eval()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.resolution = resolution
        self.config = config
        self._feature_dim: int | None = None

    def predict_proba(self, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Class probabilities ``[N, K]`` (float32, CPU) of uint8 images ``[N, C, H, W]``."""
        return self._map(images, batch_size, lambda x: self.model(x).float().softmax(dim=1), self.num_classes)

    def predict(self, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Predicted class index ``[N]`` (int64, CPU) of uint8 images ``[N, C, H, W]``."""
        return self.predict_proba(images, batch_size).argmax(dim=1)

    def features(self, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Penultimate (pre-logits) features ``[N, F]`` (float32, CPU) of uint8 images ``[N, C, H, W]``."""
        return self._map(images, batch_size, self._pre_logits, self._feature_dim)

    def multiscale_features(self, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Pooled features of every stage plus the penultimate features, each scaled to unit length: ``[N, F']``.

        Each stage's activations are averaged over space (``[N, C_s]``), every block (stages, then pre-logits) is
        L2-normalised and the concatenation is divided by √(blocks), so a row has unit length and every block weighs
        the same. Early stages keep the texture and low-level statistics that class-discriminative penultimate
        features discard; see :class:`gansynth.metrics.extractors.DomainFeatures` for why this matters. Models
        without timm's ``forward_intermediates`` give the unit-length penultimate features alone.
        """
        return self._map(images, batch_size, self._multiscale, None)

    def _multiscale(self, x: torch.Tensor) -> torch.Tensor:
        if not hasattr(self.model, "forward_intermediates"):
            return F.normalize(self._pre_logits(x), dim=1)
        final, stages = self.model.forward_intermediates(x)
        blocks = [s.float().mean(dim=(2, 3)) for s in stages if s.ndim == 4]  # [N, C_s] each
        blocks.append(self.model.forward_head(final, pre_logits=True).float().flatten(1))
        return torch.cat([F.normalize(b, dim=1) for b in blocks], dim=1) / len(blocks) ** 0.5

    @property
    def feature_dim(self) -> int:
        """F, the width of :meth:`features`."""
        if self._feature_dim is None:
            probe = torch.zeros(1, self.in_chans, self.resolution, self.resolution, dtype=torch.uint8)
            self._feature_dim = int(self.features(probe).shape[1])
        return self._feature_dim

    def _pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True).float().flatten(1)

    @torch.no_grad()
    def _map(
        self, images: torch.Tensor, batch_size: int, fn: Callable[[torch.Tensor], torch.Tensor], width: int | None
    ) -> torch.Tensor:
        check_images(images, self.in_chans, "images")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}", hint="use e.g. 512")
        self.model.eval()
        outputs = []
        for start in range(0, images.shape[0], batch_size):
            x = to_model_input(images[start : start + batch_size], self.resolution, self.runtime)
            with self.runtime.autocast():
                outputs.append(fn(x).float().cpu())
        if not outputs:  # no images: an empty [0, K] / [0, F] result
            if width is None:
                probe = torch.zeros(1, self.in_chans, self.resolution, self.resolution, dtype=torch.uint8)
                width = int(self._map(probe, 1, fn, 0).shape[1])
            return torch.empty(0, width)
        return torch.cat(outputs)

    def save(self, path: Path) -> None:
        """Write ``<path>.safetensors`` (weights) and ``<path>.json`` (config, shapes, normalisation), atomically."""
        weights, meta = _paths(path)
        make_dirs(weights.parent)
        state = {k: v.detach().cpu().clone().contiguous() for k, v in self.model.state_dict().items()}
        atomic_write_bytes(weights, st_save(state))
        record = {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            "config": asdict(self.config),
            "num_classes": self.num_classes,
            "in_chans": self.in_chans,
            "resolution": self.resolution,
            "mean": PIXEL_MEAN,  # x_float = (x_uint8 - mean) / std
            "std": PIXEL_STD,
        }
        atomic_write_json(meta, record)

    @classmethod
    def load(cls, path: Path, runtime: Runtime | None = None) -> Classifier:
        """Read a classifier written by :meth:`save` (``path`` without suffix) onto ``runtime.device``.

        Raises:
            CheckpointError: a file is missing, truncated, damaged, or the two files do not belong together.
        """
        runtime = runtime or cpu_runtime()
        weights, meta = _paths(path)
        record, config = _read_record(meta)
        try:
            state = st_load(weights.read_bytes())
        except FileNotFoundError:
            raise CheckpointError(f"{weights} is missing", hint=f"it is written next to {meta.name}; retrain") from None
        except (SafetensorError, ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"{weights} is truncated or damaged ({exc})", hint="retrain the classifier; nothing was loaded"
            ) from None
        shape = (record["num_classes"], record["in_chans"], record["resolution"])
        try:
            with torch.random.fork_rng(devices=[]):  # the throw-away random init must not advance the caller's RNG
                net = build_classifier(config.model, *shape)
            net.load_state_dict(state, strict=True)
        except ConfigError as exc:
            raise CheckpointError(f"{meta} describes a model that cannot be built: {exc.message}", exc.hint) from None
        except RuntimeError as exc:
            raise CheckpointError(
                f"{weights} does not match the model in {meta.name} ({first_line(exc)})",
                hint="the two files come from different classifiers; retrain",
            ) from None
        return cls(runtime.prepare(net), *shape, config=config, runtime=runtime)


def _paths(path: Path) -> tuple[Path, Path]:
    """``(<path>.safetensors, <path>.json)``; a given .safetensors / .json suffix is dropped first."""
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")


def _read_record(meta: Path) -> tuple[dict, ClassifierConfig]:
    try:
        record = json.loads(meta.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{meta} is missing", hint="save a classifier there with Classifier.save first") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{meta} is not valid JSON ({exc})", hint="the file is damaged; retrain") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f"{meta} is not a gansynth classifier record", hint="pass the path Classifier.save got")
    if record.get("schema_version", 0) > SCHEMA_VERSION:
        raise CheckpointError(f"{meta} was written by a newer gansynth", hint="upgrade gansynth to read it")
    known = {f.name for f in fields(ClassifierConfig)}
    try:
        config = ClassifierConfig(**{k: v for k, v in record["config"].items() if k in known})
        for key in ("num_classes", "in_chans", "resolution"):
            if not isinstance(record[key], int):
                raise TypeError(key)
    except (KeyError, TypeError, AttributeError, ConfigError) as exc:
        raise CheckpointError(f"{meta} is incomplete or invalid ({exc})", hint="retrain the classifier") from None
    return record, config


# --- training -------------------------------------------------------------------------------------------------


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    config: ClassifierConfig,
    runtime: Runtime | None = None,
    progress: bool = False,
    *,
    synthetic: torch.Tensor | None = None,
    mixing: Mixing | None = None,
) -> Classifier:
    """Train ``config.model`` from scratch on a labeled image set.

    Images stay on the device as uint8; each batch of exactly ``config.batch_size`` images is normalised to [-1, 1]
    and augmented there. SGD with Nesterov momentum, linear warm-up then cosine or linear decay of the learning
    rate, label-smoothed cross-entropy. On CPU the result depends only on ``config.seed``.

    Args:
        images: ``[N, C, R, R]`` uint8 (CPU).
        labels: ``[N]`` int64 class indices in ``[0, num_classes)``.
        num_classes: K, the number of logits (classes absent from ``labels`` are allowed).
        config: model and optimisation settings.
        runtime: device, autocast and compile settings; CPU fp32 when None.
        progress: show a rich progress bar (epochs, img/s, loss).
        synthetic: ``[N]`` bool, True for the synthetic images among ``images``; they join training as ``mixing``
            says (a mixing without synthetic images drops them).
        mixing: how synthetic images are weighted, smoothed, batched and scheduled (:mod:`gansynth.mixing`).

    Returns:
        The trained classifier in eval mode.

    Raises:
        DataError: images or labels of the wrong dtype, shape or range.
        ConfigError: a synthetic mask without a mixing, or ``config.balanced`` with mixed batches (use
            ``Mixing(balanced_batches=True)``).
        TrainingError: the loss became non-finite (lower ``config.lr``).
    """
    runtime = runtime or cpu_runtime()
    check_training_data(images, labels, num_classes)
    if synthetic is not None:
        if mixing is None:
            raise ConfigError("a synthetic mask needs a mixing", hint="pass mixing=gansynth.mixing.Mixing(...)")
        if not isinstance(synthetic, torch.Tensor) or synthetic.dtype != torch.bool or synthetic.shape != labels.shape:
            raise DataError(f"synthetic must be a bool mask [{labels.numel()}]", hint="True for synthetic images")
        if not mixing.uses_synthetic:
            images, labels, synthetic = images[~synthetic], labels[~synthetic], None
            check_training_data(images, labels, num_classes)
        elif config.balanced and not mixing.balanced_batches:  # the mixing draws the batches: say so, not ignore it
            raise ConfigError(
                "config.balanced does not apply to batches mixed with synthetic images",
                hint="pass mixing=Mixing(..., balanced_batches=True) for class-balanced mixed batches",
            )
    in_chans, resolution = int(images.shape[1]), int(images.shape[-1])
    rng_devices = [runtime.device.index or 0] if runtime.device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices):  # seeded init and dropout without touching the caller's RNG
        torch.manual_seed(config.seed)
        net = runtime.prepare(build_classifier(config.model, num_classes, in_chans, resolution))
        device = runtime.device
        mask = None if synthetic is None else synthetic.to(device)
        fit_classifier(net, images.to(device), labels.to(device), num_classes, config, runtime, progress, mask, mixing)
    return Classifier(net.eval(), num_classes, in_chans, resolution, config, runtime)


# --- splits and scores ----------------------------------------------------------------------------------------


def stratified_split(labels: torch.Tensor, test_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Train / test indices that keep each class's share of the images.

    Args:
        labels: ``[N]`` int64 class indices.
        test_fraction: share of the images in the test split, in (0, 1).
        seed: seed of the shuffle.

    Returns:
        ``(train, test)`` int64 index tensors, each sorted.

    Raises:
        ConfigError: ``test_fraction`` out of range.
        DataError: a class with fewer than 2 images, or a test split too small to hold every class.
    """
    from sklearn.model_selection import StratifiedShuffleSplit

    if not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction!r}", hint="e.g. 0.2")
    y = torch.as_tensor(labels).cpu().numpy()
    classes, counts = np.unique(y, return_counts=True)
    few = [f"class {int(c)} has {int(n)} image" + ("s" if n != 1 else "") for c, n in zip(classes, counts) if n < 2]
    if few:
        raise DataError(
            f"cannot split stratified: {', '.join(few)}",
            hint="each class needs at least 2 images (one for training, one for testing); add images or drop it",
        )
    n_test = math.ceil(test_fraction * len(y))
    if n_test < len(classes) or len(y) - n_test < len(classes):
        raise DataError(
            f"a {test_fraction:g} test split of {len(y)} images cannot hold all {len(classes)} classes in both parts",
            hint=f"use a test_fraction between {len(classes) / len(y):.3g} and {1 - len(classes) / len(y):.3g}",
        )
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_test, random_state=seed)
    train, test = next(splitter.split(np.zeros(len(y)), y))
    return torch.from_numpy(np.sort(train)).long(), torch.from_numpy(np.sort(test)).long()


def evaluate_predictions(
    y_true: torch.Tensor | np.ndarray | Sequence[int],
    y_pred: torch.Tensor | np.ndarray | Sequence[int],
    class_names: Sequence[str],
) -> dict:
    """Accuracy, balanced accuracy, macro F1, per-class recall and the confusion matrix of class predictions.

    Args:
        y_true: ``[N]`` true class indices.
        y_pred: ``[N]`` predicted class indices.
        class_names: the K class names in index order.

    Returns:
        ``{"accuracy", "balanced_accuracy", "macro_f1", "per_class_recall": {name: recall or None when the class
        has no true images}, "confusion": K×K list, rows = true class, columns = predicted class}``.
    """
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

    true, pred = np.asarray(y_true).astype(np.int64).ravel(), np.asarray(y_pred).astype(np.int64).ravel()
    if true.shape != pred.shape or true.size == 0:
        raise DataError(f"need as many predictions as labels (> 0), got {pred.size} and {true.size}")
    confusion = confusion_matrix(true, pred, labels=list(range(len(class_names))))
    support = confusion.sum(axis=1)
    recall = {name: (float(confusion[k, k] / support[k]) if support[k] else None) for k, name in enumerate(class_names)}
    return {
        "accuracy": float(accuracy_score(true, pred)),
        "balanced_accuracy": float(balanced_accuracy_score(true, pred)),
        "macro_f1": float(f1_score(true, pred, average="macro", zero_division=0)),
        "per_class_recall": recall,
        "confusion": confusion.tolist(),
    }
