"""BigGAN-style ResNet generator (shared class embedding, conditional BN) and projection ResNet discriminator."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gansynth.nn.layers import (
    ConditionalBatchNorm2d,
    DiscriminatorHead,
    LabelChannels,
    SelfAttention,
    sn_conv,
    sn_linear,
)
from gansynth.nn.registry import ARCHITECTURES, NetSpec

BASE = 4  # generator starts at 4×4
D_FLOOR = 8  # discriminator downsamples to 8×8, then runs two more blocks there


class GBlock(nn.Module):
    def __init__(self, cin: int, cout: int, cond_dim: int) -> None:
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(cin, cond_dim)
        self.conv1 = sn_conv(cin, cout)
        self.bn2 = ConditionalBatchNorm2d(cout, cond_dim)
        self.conv2 = sn_conv(cout, cout)
        self.skip = sn_conv(cin, cout, 1, padding=0)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, cond)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), cond)))
        # a 1×1 conv commutes with nearest upsampling: convolve at the low resolution (4× fewer pixels)
        return h + F.interpolate(self.skip(x), scale_factor=2, mode="nearest")


class BigGANGenerator(nn.Module):
    """``(z [N, z_dim], labels [N]) → [N, C, R, R]`` in [-1, 1]."""

    def __init__(self, spec: NetSpec) -> None:
        super().__init__()
        m = spec.model
        self.native = spec.conditioning.g_native
        self.z_dim = m.z_dim
        self.embed = nn.Embedding(spec.num_classes, m.embed_dim)
        cond_dim = m.embed_dim + m.z_dim if self.native else 0
        in_dim = m.z_dim if self.native else m.z_dim + m.embed_dim
        stages = int(math.log2(spec.resolution // BASE))
        widths = [max(m.g_width >> max(0, i - 3), 16) for i in range(stages + 1)]
        self.linear = sn_linear(in_dim, widths[0] * BASE * BASE)
        self.blocks = nn.ModuleList()
        for i in range(stages):
            self.blocks.append(GBlock(widths[i], widths[i + 1], cond_dim))
            if m.attention == BASE << (i + 1):
                self.blocks.append(SelfAttention(widths[i + 1]))
        self.out_bn = nn.BatchNorm2d(widths[-1])
        self.out_conv = sn_conv(widths[-1], spec.channels)
        self.width0 = widths[0]

    def class_affines(self, labels: torch.Tensor) -> list[torch.Tensor]:
        """Every conditional BN's class-specific gain and bias for ``labels`` (``[K, C]`` each); empty without
        native conditioning. What group spectral regularization constrains."""
        if not self.native:
            return []
        e = self.embed(labels)
        return [t for m in self.modules() if isinstance(m, ConditionalBatchNorm2d) for t in m.class_affine(e)]

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        e = self.embed(labels)
        cond = torch.cat([e, z], dim=1) if self.native else None
        x = z if self.native else torch.cat([z, e], dim=1)
        h = self.linear(x).view(z.shape[0], self.width0, BASE, BASE)
        for block in self.blocks:
            h = block(h, cond)
        return torch.tanh(self.out_conv(F.relu(self.out_bn(h))))


class DBlock(nn.Module):
    def __init__(self, cin: int, cout: int, downsample: bool, preactivation: bool) -> None:
        super().__init__()
        self.conv1 = sn_conv(cin, cout)
        self.conv2 = sn_conv(cout, cout)
        self.skip = sn_conv(cin, cout, 1, padding=0) if (cin != cout or downsample) else None
        self.downsample = downsample
        self.preactivation = preactivation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self.conv2(F.relu(self.conv1(h)))
        s = x
        if self.preactivation:
            s = self.skip(s) if self.skip is not None else s
            s = F.avg_pool2d(s, 2) if self.downsample else s
        else:  # first block: pool before the 1×1 conv (BigGAN's optimized block)
            s = F.avg_pool2d(s, 2) if self.downsample else s
            s = self.skip(s) if self.skip is not None else s
        return h + s if not self.downsample else F.avg_pool2d(h, 2) + s


class BigGANDiscriminator(nn.Module):
    """``(images [N, C, R, R], labels [N]) → (logits [N], class_logits [N, K] | None)``."""

    def __init__(self, spec: NetSpec) -> None:
        super().__init__()
        m, cond = spec.model, spec.conditioning
        self.label_channels = LabelChannels(spec.num_classes) if cond.d_input else None
        cin = spec.channels + (self.label_channels.channels if self.label_channels else 0)
        downs = int(math.log2(spec.resolution // D_FLOOR))
        layout = [True] * max(downs, 1) + [False] * 2  # downsample flags per block
        self.blocks = nn.ModuleList()
        res = spec.resolution
        for j, down in enumerate(layout):
            width = m.d_width if spec.resolution <= 32 else m.d_width * min(2 ** max(0, j - 1), 8)
            self.blocks.append(DBlock(cin, width, down, preactivation=j > 0))
            res = res // 2 if down else res
            if m.attention == res and not any(isinstance(b, SelfAttention) for b in self.blocks):
                self.blocks.append(SelfAttention(width))
            cin = width
        self.head = DiscriminatorHead(cin, spec.num_classes, cond.projection, cond.classifier)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.label_channels is not None:
            x = self.label_channels(x, labels)
        h = x
        for block in self.blocks:
            h = block(h)
        h = F.relu(h).sum(dim=(2, 3))  # global sum pooling → [N, F]
        return self.head(h, labels)


@ARCHITECTURES.register("biggan")
def build_biggan(spec: NetSpec) -> tuple[nn.Module, nn.Module]:
    return BigGANGenerator(spec), BigGANDiscriminator(spec)
