"""The architecture and conditioning registries and the one factory that builds a (generator, discriminator) pair."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from gansynth.config import ModelConfig
from gansynth.registry import Registry


@dataclass(frozen=True)
class Conditioning:
    """How labels enter the networks.

    Attributes:
        g_native: the generator uses its native conditioning (conditional BN for biggan); otherwise the label
            embedding is concatenated to the noise.
        d_input: labels are concatenated to D's input as extra channels/features.
        projection: D's head adds a projection term.
        classifier: D has an auxiliary classifier head (class loss in both steps).
        classifier_fakes: D's classifier also learns the labels of generated images (AC-GAN); otherwise it learns
            real images only and only G is asked to make its images classifiable.
    """

    g_native: bool
    d_input: bool
    projection: bool
    classifier: bool
    classifier_fakes: bool = True


@dataclass(frozen=True)
class NetSpec:
    """Everything an architecture builder needs."""

    resolution: int
    channels: int
    num_classes: int
    model: ModelConfig
    conditioning: Conditioning


ARCHITECTURES: Registry[Callable[[NetSpec], tuple[nn.Module, nn.Module]]] = Registry("architecture")
CONDITIONINGS: Registry[Conditioning] = Registry("conditioning")
CONDITIONINGS.add("projection", Conditioning(g_native=True, d_input=False, projection=True, classifier=False))
CONDITIONINGS.add("concat", Conditioning(g_native=False, d_input=True, projection=False, classifier=False))
CONDITIONINGS.add("acgan", Conditioning(g_native=True, d_input=False, projection=False, classifier=True))
# Projection plus an auxiliary classifier trained on real images only (its class loss pushes G, weight
# train.acgan_weight): label fidelity without AC-GAN's pull of D toward easily classified fakes.
CONDITIONINGS.add(
    "projection-ac",
    Conditioning(g_native=True, d_input=False, projection=True, classifier=True, classifier_fakes=False),
)


def build_networks(model: ModelConfig, resolution: int, channels: int, num_classes: int) -> tuple[nn.Module, nn.Module]:
    """Build the generator and discriminator named by ``model.arch`` / ``model.conditioning``.

    The generator maps ``(z [N, z_dim], labels [N])`` to ``[N, C, R, R]`` in [-1, 1]; the discriminator maps
    ``(images, labels)`` to ``(logits [N], class_logits [N, K] or None)``.
    """
    spec = NetSpec(resolution, channels, num_classes, model, CONDITIONINGS.get(model.conditioning))
    generator, discriminator = ARCHITECTURES.get(model.arch)(spec)
    if model.attention:
        _check_attention(model, resolution, generator, discriminator)
    return generator, discriminator


def _check_attention(model: ModelConfig, resolution: int, generator: nn.Module, discriminator: nn.Module) -> None:
    """A requested self-attention block must exist in both networks; an ignored setting is a config error."""
    from gansynth.errors import ConfigError
    from gansynth.nn.layers import SelfAttention

    missing = [name for name, net in (("generator", generator), ("discriminator", discriminator))
               if not any(isinstance(m, SelfAttention) for m in net.modules())]  # fmt: skip
    if missing:
        raise ConfigError(
            f"model.attention = {model.attention}: the {model.arch} {' and '.join(missing)} at {resolution} px "
            "has no stage at that resolution",
            hint=f"use a power of two from 8 to {resolution // 2} that both networks pass through, or 0 (off); "
            "convolution-free architectures (mlp) have none",
        )
