"""Feature extractors of ``gansynth evaluate``, registered in torch-fidelity's feature-extractor registry.

Each gansynth name (``inception``, ``domain``, ``dinov2``, ``clip``; ``auto`` picks one) maps to an
:class:`ExtractorSpec` in gansynth's own :class:`~gansynth.registry.Registry`, and to a
``torch_fidelity.FeatureExtractorBase`` subclass registered with ``torch_fidelity.register_feature_extractor``.
Weights come from a file only: nothing is ever downloaded, and untrusted ``.pth`` files are read with
``torch.load(weights_only=True)`` (torch-fidelity itself unpickles with ``weights_only=False``).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import torch_fidelity
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.feature_extractor_clip import FeatureExtractorCLIP
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from gansynth.errors import MetricError, first_line
from gansynth.registry import Registry

INCEPTION_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's file name
DINOV2_WEIGHTS = "dinov2_vits14_pretrain.pth"  # torch.hub's file name for facebookresearch/dinov2 ViT-S/14
CLIP_WEIGHTS = "clip-vit-b-32-40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af.pt"  # torch-fidelity's
_CLIP_FIDELITY_NAME = "clip-vit-b-32"  # torch-fidelity checks the name; the architecture is read from the file
DINOV2_INPUT_SIZE = 224  # torch-fidelity's DINOv2 input size
_DINOV2_WIDTHS = {384: "vit_small_patch14_dinov2", 768: "vit_base_patch14_dinov2", 1024: "vit_large_patch14_dinov2"}
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ExtractorSpec:
    """What gansynth knows about a feature extractor.

    Attributes:
        name: gansynth's name (``--feature-extractor``).
        fidelity_name: its name in torch-fidelity's registry.
        feature_layer: the torch-fidelity feature used for FID/KID/PR/density/coverage.
        isc_layer: the feature used for the Inception Score (None: IS is not defined for this extractor).
        weights_file: default file name looked up in ``$TORCH_HOME/hub/checkpoints/`` (None: no default file).
        resize: how images are resized before the network, for the protocol record.
    """

    name: str
    fidelity_name: str
    feature_layer: str
    isc_layer: str | None
    weights_file: str | None
    resize: str


EXTRACTORS: Registry[ExtractorSpec] = Registry("feature extractor")
AUTO = "auto"


def _add(spec: ExtractorSpec) -> None:
    EXTRACTORS.add(spec.name, spec)


_add(ExtractorSpec("inception", "gansynth-inception", "2048", "logits_unbiased", INCEPTION_WEIGHTS,
                   "bilinear (TensorFlow-1 compatible) to 299 px"))  # fmt: skip
_add(ExtractorSpec("domain", "gansynth-domain", "domain", None, None, "none (the real images' resolution)"))
_add(ExtractorSpec("dinov2", "gansynth-dinov2", "dinov2", None, DINOV2_WEIGHTS, "bilinear to 224 px"))
_add(ExtractorSpec("clip", "gansynth-clip", "clip", None, CLIP_WEIGHTS, "bilinear to the model's input size"))


def extractor_names() -> list[str]:
    """Every accepted ``--feature-extractor`` value."""
    return [AUTO, *EXTRACTORS.names()]


def check_extractor_name(name: str) -> None:
    """ConfigError with close matches when ``name`` is not an extractor name (``auto`` included)."""
    if name != AUTO:
        EXTRACTORS.get(name)


def hub_checkpoints() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` (``~/.cache/torch/hub/checkpoints`` by default), read at call time."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_weights(spec: ExtractorSpec, weights: str | Path | None) -> Path | None:
    """The weights file to use: ``weights`` when given (it must exist), else the default file when present."""
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise MetricError(
                f"weights file {path} does not exist",
                hint=f"give the path of the {spec.name} weights file (default name: {spec.weights_file})",
            )
        return path
    if spec.weights_file is None:
        return None
    path = hub_checkpoints() / spec.weights_file
    return path if path.is_file() else None


def missing_weights_error(spec: ExtractorSpec) -> MetricError:
    """The error for an extractor whose weights file is nowhere: file name, where to put it, the offline choice."""
    where = hub_checkpoints() / (spec.weights_file or "")
    return MetricError(
        f"the {spec.name} feature extractor needs its weights file {spec.weights_file}, which is not in "
        f"{hub_checkpoints()} (nothing is downloaded)",
        hint=f"copy the file to {where} (or set $TORCH_HOME), or pass --weights PATH; without weights use "
        "--feature-extractor domain, which trains a classifier on your real images and works offline",
    )


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file or a ``.pth``/``.pt`` state_dict read with ``torch.load(weights_only=True)``.

    Raises:
        MetricError: the file is not a plain tensor dict (a pickle with code, a TorchScript archive, damaged).
    """
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(path)
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the file is not a usable state_dict
        raise MetricError(
            f"{path} is not a readable weights file ({first_line(exc)})",
            hint="pass a state_dict saved with torch.save(module.state_dict(), path) or a .safetensors file",
        ) from None
    for key in ("state_dict", "model", "teacher"):  # common checkpoint wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise MetricError(f"{path} does not hold a state_dict of tensors", hint="save module.state_dict() instead")
    return state


def _fit_error(path: object, network: str, exc: Exception) -> MetricError:
    return MetricError(
        f"weights file {path} does not fit the {network} network ({first_line(exc)})",
        hint="pass the weights file that belongs to this feature extractor",
    )


# --- torch-fidelity extractor classes ---------------------------------------------------------------------------


class InceptionFeatures(FeatureExtractorInceptionV3):
    """torch-fidelity's ``inception-v3-compat`` network, with weights read safely from a file and never downloaded."""

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        if feature_extractor_weights_path is None:
            raise missing_weights_error(EXTRACTORS.get("inception"))
        state = load_state_dict_file(feature_extractor_weights_path)
        # torch-fidelity unpickles its path argument with weights_only=False; give it our own re-serialised copy
        # of the plain tensors (torch.load accepts a file object) instead of the user's file.
        clean = io.BytesIO()
        torch.save(state, clean)
        clean.seek(0)
        try:
            super().__init__(name, features_list, feature_extractor_weights_path=clean, **kwargs)
        except RuntimeError as exc:
            raise _fit_error(feature_extractor_weights_path, "inception-v3-compat", exc) from None


class DomainFeatures(FeatureExtractorBase):
    """Multi-scale features of a gansynth classifier (``gansynth.classify``) trained on the real images: every
    stage's spatially pooled activations and the penultimate features, each block scaled to unit length
    (:meth:`gansynth.classify.Classifier.multiscale_features`).

    Why not the penultimate features alone: a classifier trained on one small domain maps everything, noise
    included, into its class clusters; it keeps the class evidence and discards texture. On digits, uniform noise
    then lands inside the k-NN balls of sparse real samples (noise precision 0.0 to 0.58 depending on the
    classifier's seed, raw or unit length), and GAN artefacts that do not change the class go unseen. Pooled early
    stages keep the low-level statistics: noise precision 0.0 over four seeds, real-vs-real precision and recall
    unchanged (≈ 0.88), noise-vs-real FID ≈ 75× real-vs-real. Rows have unit length, so distances are bounded and
    domain FIDs are small numbers on their own scale, not comparable with Inception FIDs.

    ``feature_extractor_weights_path`` is the classifier's path as written by ``Classifier.save``; the runtime
    comes as ``gansynth_runtime``. Inputs are uint8 ``[B, 3, H, W]`` (grayscale repeated to 3 channels, as every
    torch-fidelity extractor expects); grayscale classifiers read the first channel.
    """

    def __init__(self, name, features_list, feature_extractor_weights_path=None, gansynth_runtime=None, **kwargs):
        super().__init__(name, features_list)
        from gansynth.classify import Classifier

        if feature_extractor_weights_path is None:
            raise MetricError("the domain feature extractor needs a trained classifier", hint="this is a bug")
        self.classifier = Classifier.load(Path(feature_extractor_weights_path), runtime=gansynth_runtime)
        self.model = self.classifier.model  # a child module, so that .cuda()/.eval() reach it

    def forward(self, x):
        features = self.classifier.multiscale_features(x[:, : self.classifier.in_chans])  # [B, F'] float32, CPU
        return (features.to(x.device),)

    @staticmethod
    def get_provided_features_list():
        return ("domain",)

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return "domain"

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 16, 16, dtype=torch.uint8)


class DinoV2Features(FeatureExtractorBase):
    """DINOv2 ViT-S/B/L-14 CLS features from a weights file (facebookresearch or timm layout), run with timm.

    torch-fidelity's own DINOv2 extractor can only fetch its network through ``torch.hub`` (it refuses a weights
    path), so the same network and preprocessing (bilinear resize to 224 px, ImageNet normalisation, the normed
    CLS token) are built from timm's architecture definition.
    """

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        import timm
        from timm.models.vision_transformer import checkpoint_filter_fn

        if feature_extractor_weights_path is None:
            raise missing_weights_error(EXTRACTORS.get("dinov2"))
        state = load_state_dict_file(feature_extractor_weights_path)
        width = int(state["cls_token"].shape[-1]) if "cls_token" in state else None
        if width not in _DINOV2_WIDTHS:
            raise _fit_error(feature_extractor_weights_path, "DINOv2 ViT-S/B/L-14", ValueError(f"width {width}"))
        self.model = timm.create_model(
            _DINOV2_WIDTHS[width], pretrained=False, num_classes=0, img_size=DINOV2_INPUT_SIZE
        )
        try:
            self.model.load_state_dict(checkpoint_filter_fn(state, self.model), strict=True)
        except (RuntimeError, KeyError) as exc:
            raise _fit_error(feature_extractor_weights_path, _DINOV2_WIDTHS[width], exc) from None
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1) * 255, persistent=False)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x):
        x = x.float()
        x = F.interpolate(x, size=(DINOV2_INPUT_SIZE, DINOV2_INPUT_SIZE), mode="bilinear", align_corners=False)
        return (self.model((x - self.mean) / self.std).float(),)  # [B, width] normed CLS token

    @staticmethod
    def get_provided_features_list():
        return ("dinov2",)

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return "dinov2"

    @staticmethod
    def can_be_compiled():
        return True

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 16, 16, dtype=torch.uint8)


class ClipFeatures(FeatureExtractorCLIP):
    """torch-fidelity's CLIP image encoder from an OpenAI CLIP TorchScript archive (``torch.jit.load``)."""

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        if feature_extractor_weights_path is None:
            raise missing_weights_error(EXTRACTORS.get("clip"))
        try:
            super().__init__(_CLIP_FIDELITY_NAME, features_list, os.fspath(feature_extractor_weights_path), **kwargs)
        except (RuntimeError, KeyError, ValueError) as exc:
            raise _fit_error(feature_extractor_weights_path, "CLIP (TorchScript archive)", exc) from None
        self.name = name


def _register_with_torch_fidelity() -> None:
    classes = {
        "gansynth-inception": InceptionFeatures,
        "gansynth-domain": DomainFeatures,
        "gansynth-dinov2": DinoV2Features,
        "gansynth-clip": ClipFeatures,
    }
    for name, cls in classes.items():
        if FEATURE_EXTRACTORS_REGISTRY.get(name) is not cls:  # importing this module twice must not fail
            FEATURE_EXTRACTORS_REGISTRY.pop(name, None)
            torch_fidelity.register_feature_extractor(name, cls)


_register_with_torch_fidelity()
