"""DCGAN (Radford et al. 2016): transposed-conv generator, strided-conv discriminator (spectral norm in D)."""

from __future__ import annotations

import math

import torch
from torch import nn

from gansynth.nn.layers import DiscriminatorHead, LabelChannels, SelfAttention, sn_conv
from gansynth.nn.registry import ARCHITECTURES, NetSpec


class DCGANGenerator(nn.Module):
    """Label embedding joined to the noise, then 4×4 → R by stride-2 transposed convolutions."""

    def __init__(self, spec: NetSpec) -> None:
        super().__init__()
        m = spec.model
        self.embed = nn.Embedding(spec.num_classes, m.embed_dim)
        ups = int(math.log2(spec.resolution // 4))
        widths = [max(m.g_width >> i, 16) for i in range(ups)]
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(m.z_dim + m.embed_dim, widths[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
        ]
        for i in range(ups - 1):
            layers += [
                nn.ConvTranspose2d(widths[i], widths[i + 1], 4, 2, 1, bias=False),
                nn.BatchNorm2d(widths[i + 1]),
                nn.ReLU(),
            ]
            if m.attention == 8 << i:
                layers.append(SelfAttention(widths[i + 1]))
        layers += [nn.ConvTranspose2d(widths[-1], spec.channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = torch.cat([z, self.embed(labels)], dim=1)
        return self.net(x[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """Stride-2 4×4 convolutions with LeakyReLU(0.2) down to 4×4, flattened into the conditional head."""

    def __init__(self, spec: NetSpec) -> None:
        super().__init__()
        m, cond = spec.model, spec.conditioning
        self.label_channels = LabelChannels(spec.num_classes) if cond.d_input else None
        cin = spec.channels + (self.label_channels.channels if self.label_channels else 0)
        downs = int(math.log2(spec.resolution // 4))
        layers: list[nn.Module] = []
        res = spec.resolution
        for i in range(downs):
            width = min(m.d_width << i, 8 * m.d_width)
            layers += [sn_conv(cin, width, 4, 2, 1), nn.LeakyReLU(0.2)]
            res //= 2
            if m.attention == res:
                layers.append(SelfAttention(width))
            cin = width
        self.net = nn.Sequential(*layers)
        self.head = DiscriminatorHead(cin * 16, spec.num_classes, cond.projection, cond.classifier)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.label_channels is not None:
            x = self.label_channels(x, labels)
        return self.head(self.net(x).flatten(1), labels)


@ARCHITECTURES.register("dcgan")
def build_dcgan(spec: NetSpec) -> tuple[nn.Module, nn.Module]:
    return DCGANGenerator(spec), DCGANDiscriminator(spec)
