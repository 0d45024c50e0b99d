"""Images → features through a torch-fidelity feature extractor, with real-image features cached by content.

torch-fidelity caches statistics under an input *name* only, so a changed folder would silently reuse stale
numbers; here the real features are cached under a key made of the dataset's content fingerprint, the extractor,
its weights' sha256 and the feature layer. Generated features are never cached.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save
from torch_fidelity.utils import create_feature_extractor

from gansynth.data import ImageDataset, cache_root
from gansynth.io import atomic_write_bytes, make_dirs
from gansynth.metrics.extractors import ExtractorSpec
from gansynth.runtime import Runtime

CACHE_VERSION = 2  # 2: domain features are multi-scale (stages + pre-logits)
BATCH_SIZE = 256


def to_rgb(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[N, 1 or 3, H, W]`` → ``[N, 3, H, W]``."""
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


@dataclass
class Extractor:
    """A created torch-fidelity feature extractor and the protocol facts about it.

    Attributes:
        spec: the gansynth extractor description.
        module: the torch-fidelity ``FeatureExtractorBase`` instance (eval mode, on the device).
        weights_sha256: sha256 of the weights file it was built from.
        runtime: where it runs.
    """

    spec: ExtractorSpec
    module: torch.nn.Module
    weights_sha256: str
    runtime: Runtime


def create_extractor(spec: ExtractorSpec, weights_path: Path, weights_sha256: str, runtime: Runtime) -> Extractor:
    """Build the extractor through torch-fidelity's registry (``create_feature_extractor``), never downloading."""
    layers = [spec.feature_layer] + ([spec.isc_layer] if spec.isc_layer else [])
    module = create_feature_extractor(
        spec.fidelity_name,
        layers,
        cuda=runtime.device.type == "cuda",
        feature_extractor_weights_path=weights_path,
        gansynth_runtime=runtime,
        verbose=False,
    )
    return Extractor(spec, module, weights_sha256, runtime)


@torch.no_grad()
def extract(extractor: Extractor, images: torch.Tensor, progress=None, description: str = "features") -> dict:
    """Features of uint8 images ``[N, C, H, W]``: ``{layer: [N, F] float32 CPU}`` for every requested layer.

    The loop of torch-fidelity's ``get_featuresdict_from_dataset`` (uint8 RGB batches → the extractor →
    ``convert_features_tuple_to_dict``), slicing the in-memory tensor instead of a DataLoader, with a rich progress
    bar. Images come from our sampler or a folder, never from torch-fidelity's generator path.

    Args:
        progress: a ``rich.progress.Progress`` to report to, or None.
    """
    task = progress.add_task(description, total=images.shape[0]) if progress is not None else None
    parts: dict[str, list[torch.Tensor]] = {}
    for start in range(0, images.shape[0], BATCH_SIZE):
        batch = to_rgb(images[start : start + BATCH_SIZE]).to(extractor.runtime.device)
        out = extractor.module.convert_features_tuple_to_dict(extractor.module(batch))
        for name, value in out.items():
            parts.setdefault(name, []).append(value.float().cpu())
        if task is not None:
            progress.advance(task, batch.shape[0])
    layers = extractor.module.get_requested_features_list()
    return {name: torch.cat(parts[name]) if parts else torch.zeros(0, 0) for name in layers}


# --- real features, cached ---------------------------------------------------------------------------------------


def real_features_key(dataset: ImageDataset, extractor: Extractor) -> str:
    """Cache key: content fingerprint + extractor + weights sha256 + layer + image geometry."""
    record = {
        "version": CACHE_VERSION,
        "fingerprint": dataset.fingerprint,
        "resolution": dataset.resolution,
        "channels": dataset.channels,
        "extractor": extractor.spec.fidelity_name,
        "layer": extractor.spec.feature_layer,
        "weights_sha256": extractor.weights_sha256,
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:40]


def _path(key: str) -> Path:
    return cache_root() / "features" / f"real-{key}.safetensors"


def real_features(
    dataset: ImageDataset, extractor: Extractor, progress=None, neighbours_fn=None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``([N, F] features, [N, k] neighbour distances or None)`` of the real images, from the cache when possible.

    Args:
        neighbours_fn: ``features -> [N, k]`` real-to-real neighbour distances (or None when there are too few
            images), computed once and cached with the features (they depend on nothing else).
    """
    path = _path(real_features_key(dataset, extractor))
    cached = _read(path)
    if cached is not None and cached["features"].shape[0] == len(dataset):
        if neighbours_fn is None or "neighbours" in cached:
            return cached["features"], cached.get("neighbours")
        features = cached["features"]
    else:
        features = extract(extractor, dataset.images, progress, "real features")[extractor.spec.feature_layer]
    tensors = {"features": features.contiguous()}
    neighbours = neighbours_fn(features) if neighbours_fn is not None else None
    if neighbours is not None:
        tensors["neighbours"] = neighbours.contiguous()
    make_dirs(path.parent)
    atomic_write_bytes(path, save(tensors))
    return features, neighbours


def _read(path: Path) -> dict | None:
    try:
        return load_file(path)
    except Exception:  # noqa: BLE001 - a missing or damaged cache entry is recomputed
        return None
