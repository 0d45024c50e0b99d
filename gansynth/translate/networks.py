"""Translation networks: the CycleGAN ResNet generator and PatchGAN discriminator, registered by name.

Shapes: images are float ``[N, C, R, R]`` in [-1, 1]; a generator keeps the side R and maps C_in → C_out channels;
a discriminator returns one realness score per patch, ``[N, 1, P, P]``.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from gansynth.registry import Registry
from gansynth.translate.config import TranslateModelConfig

INIT_STD = 0.02  # weights ~ N(0, 0.02), as in the CycleGAN reference
NETWORKS = ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b")

TranslatorBuilder = Callable[[TranslateModelConfig, int, int, int], dict[str, nn.Module]]
TRANSLATORS: Registry[TranslatorBuilder] = Registry("translator architecture")


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResidualBlock(nn.Module):
    """Two reflection-padded 3×3 convolutions with instance norm, added to the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(channels), nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(channels),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """c7s1-w, d2w, d4w, ``blocks`` × R4w, u2w, uw, c7s1-C_out, tanh (Johnson et al. 2016, as in CycleGAN), with
    ``downsamplings`` stride-2 stages (the paper's 2; fewer keep the receptive field local on small images)."""

    def __init__(self, in_channels: int, out_channels: int, width: int, blocks: int, downsamplings: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7), _norm(width), nn.ReLU(True)]
        channels = width
        for _ in range(downsamplings):
            layers += [nn.Conv2d(channels, channels * 2, 3, 2, 1), _norm(channels * 2), nn.ReLU(True)]
            channels *= 2
        layers += [ResidualBlock(channels) for _ in range(blocks)]
        for _ in range(downsamplings):
            layers += [nn.ConvTranspose2d(channels, channels // 2, 3, 2, 1, output_padding=1)]
            layers += [_norm(channels // 2), nn.ReLU(True)]
            channels //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(channels, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:  # [N, C_in, R, R] → [N, C_out, R, R]
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN: ``layers`` stride-2 4×4 convolutions, one stride-1, then a 1-channel 4×4 score map.

    Receptive field: 16 px with 1 layer, 34 px with 2, 70 px with 3 (the paper's 70×70 PatchGAN).
    """

    def __init__(self, in_channels: int, width: int, layers: int) -> None:
        super().__init__()
        modules: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        channels = width
        for n in range(1, layers + 1):
            out = width * min(2**n, 8)
            stride = 2 if n < layers else 1
            modules += [nn.Conv2d(channels, out, 4, stride, 1), _norm(out), nn.LeakyReLU(0.2, True)]
            channels = out
        modules.append(nn.Conv2d(channels, 1, 4, 1, 1))
        self.net = nn.Sequential(*modules)

    def forward(self, x: Tensor) -> Tensor:  # [N, C, R, R] → [N, 1, P, P]
        return self.net(x)


def patch_layers(resolution: int) -> int:
    """Strided PatchGAN layers for a side: the 70×70 patch above 32 px, smaller patches on small images."""
    return 1 if resolution <= 16 else 2 if resolution <= 32 else 3


def generator_downsamplings(resolution: int) -> int:
    """Stride-2 stages of the generator for a side: the paper's 2 from 64 px; fewer on small images, whose
    receptive field would otherwise span the whole image and let G redraw the content instead of restyling it
    (measured on fonts → digits at 16 px, benchmarks/README.md)."""
    return 0 if resolution <= 16 else 1 if resolution <= 32 else 2


def init_weights(module: nn.Module) -> None:
    """Convolution weights ~ N(0, INIT_STD), biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, INIT_STD)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


@TRANSLATORS.register("resnet-patchgan")
def resnet_patchgan(model: TranslateModelConfig, resolution: int, channels_a: int, channels_b: int) -> dict:
    """``generator_ab`` (G: A → B), ``generator_ba`` (F: B → A), ``discriminator_a``, ``discriminator_b``."""
    layers = model.d_layers or patch_layers(resolution)
    down = generator_downsamplings(resolution) if model.downsamplings is None else model.downsamplings
    nets = {
        "generator_ab": ResnetGenerator(channels_a, channels_b, model.g_width, model.blocks, down),
        "generator_ba": ResnetGenerator(channels_b, channels_a, model.g_width, model.blocks, down),
        "discriminator_a": PatchDiscriminator(channels_a, model.d_width, layers),
        "discriminator_b": PatchDiscriminator(channels_b, model.d_width, layers),
    }
    for net in nets.values():
        net.apply(init_weights)
    return nets


def build_translator(model: TranslateModelConfig, resolution: int, channels_a: int, channels_b: int) -> dict:
    """The four networks of ``model.arch`` (ConfigError with a did-you-mean for an unknown name)."""
    return TRANSLATORS.get(model.arch)(model, resolution, channels_a, channels_b)
