"""The fully connected GAN (Goodfellow et al. 2014; Mirza & Osindero 2014 for the concatenated label)."""

from __future__ import annotations

import torch
from torch import nn

from gansynth.nn.layers import DiscriminatorHead, sn_linear
from gansynth.nn.registry import ARCHITECTURES, NetSpec

G_HIDDEN = (256, 512, 1024)
D_HIDDEN = (512, 256)


class MLPGenerator(nn.Module):
    """noise ⊕ label embedding → 256 → 512 → 1024 → H·W·C, LeakyReLU(0.2) and BatchNorm, tanh output."""

    def __init__(self, spec: NetSpec) -> None:
        super().__init__()
        m = spec.model
        self.shape = (spec.channels, spec.resolution, spec.resolution)
        self.embed = nn.Embedding(spec.num_classes, m.embed_dim)
        layers: list[nn.Module] = []
        cin = m.z_dim + m.embed_dim
        for width in G_HIDDEN:
            layers += [nn.Linear(cin, width), nn.BatchNorm1d(width), nn.LeakyReLU(0.2)]
            cin = width
        layers += [nn.Linear(cin, spec.channels * spec.resolution**2), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, self.embed(labels)], dim=1)).view(z.shape[0], *self.shape)


class MLPDiscriminator(nn.Module):
    """flattened image (⊕ label embedding for concat) → 512 → 256 → conditional head; LeakyReLU(0.2)."""

    def __init__(self, spec: NetSpec) -> None:
        super().__init__()
        m, cond = spec.model, spec.conditioning
        self.embed = nn.Embedding(spec.num_classes, m.embed_dim) if cond.d_input else None
        cin = spec.channels * spec.resolution**2 + (m.embed_dim if cond.d_input else 0)
        layers: list[nn.Module] = []
        for width in D_HIDDEN:
            layers += [sn_linear(cin, width), nn.LeakyReLU(0.2)]
            cin = width
        self.net = nn.Sequential(*layers)
        self.head = DiscriminatorHead(cin, spec.num_classes, cond.projection, cond.classifier)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = x.flatten(1)
        if self.embed is not None:
            h = torch.cat([h, self.embed(labels).to(h.dtype)], dim=1)
        return self.head(self.net(h), labels)


@ARCHITECTURES.register("mlp")
def build_mlp(spec: NetSpec) -> tuple[nn.Module, nn.Module]:
    return MLPGenerator(spec), MLPDiscriminator(spec)
