"""Building blocks shared by the architectures: spectral norm, conditional BatchNorm, self-attention, D heads."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def sn_conv(cin: int, cout: int, kernel: int = 3, stride: int = 1, padding: int | None = None) -> nn.Module:
    pad = kernel // 2 if padding is None else padding
    return spectral_norm(nn.Conv2d(cin, cout, kernel, stride, pad))


def sn_linear(cin: int, cout: int, bias: bool = True) -> nn.Module:
    return spectral_norm(nn.Linear(cin, cout, bias=bias))


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose gain and bias are linear in a condition vector (BigGAN); plain affine BN when cond_dim is 0."""

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.cond_dim = cond_dim
        self.bn = nn.BatchNorm2d(channels, affine=cond_dim == 0)
        if cond_dim:
            self.gain = nn.Linear(cond_dim, channels, bias=False)
            self.bias = nn.Linear(cond_dim, channels, bias=False)
            nn.init.zeros_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)

    def class_affine(self, embedding: torch.Tensor) -> list[torch.Tensor]:
        """The class-specific parts of the gain and bias: the first ``embedding.shape[1]`` condition entries (the
        class embedding) through the gain and bias weights — ``[K, C]`` each."""
        width = embedding.shape[1]
        return [F.linear(embedding, self.gain.weight[:, :width]), F.linear(embedding, self.bias.weight[:, :width])]

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        out = self.bn(x)
        if not self.cond_dim:
            return out
        gain = 1.0 + self.gain(cond)[:, :, None, None]
        return out * gain + self.bias(cond)[:, :, None, None]


class SelfAttention(nn.Module):
    """SAGAN self-attention over spatial positions; starts as the identity (gamma = 0)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(channels // 8, 1)
        self.theta = sn_conv(channels, inner, 1, padding=0)
        self.phi = sn_conv(channels, inner, 1, padding=0)
        self.g = sn_conv(channels, max(channels // 2, 1), 1, padding=0)
        self.out = sn_conv(max(channels // 2, 1), channels, 1, padding=0)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        n, c, h, w = x.shape
        theta = self.theta(x).flatten(2)  # [N, C/8, HW]
        phi = F.max_pool2d(self.phi(x), 2).flatten(2)  # [N, C/8, HW/4]
        g = F.max_pool2d(self.g(x), 2).flatten(2)  # [N, C/2, HW/4]
        attn = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # [N, HW, HW/4]
        out = (g @ attn.transpose(1, 2)).view(n, -1, h, w)
        return x + self.gamma * self.out(out)


class LabelChannels(nn.Module):
    """Concat conditioning for D inputs: a learned label embedding broadcast as extra constant channels."""

    def __init__(self, num_classes: int, channels: int = 8) -> None:
        super().__init__()
        self.channels = channels
        self.embed = nn.Embedding(num_classes, channels)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        e = self.embed(labels).to(x.dtype)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        return torch.cat([x, e], dim=1)


class DiscriminatorHead(nn.Module):
    """Turns D features ``[N, F]`` into an adversarial logit ``[N]`` and optional class logits ``[N, K]``.

    Args:
        features: feature width F.
        num_classes: K.
        projection: add ``<embed(y), h>`` (Miyato & Koyama 2018).
        classifier: add an auxiliary classifier (AC-GAN).
    """

    def __init__(self, features: int, num_classes: int, projection: bool, classifier: bool) -> None:
        super().__init__()
        self.linear = sn_linear(features, 1)
        self.embed = spectral_norm(nn.Embedding(num_classes, features)) if projection else None
        self.classifier = sn_linear(features, num_classes) if classifier else None

    def forward(self, h: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.linear(h).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(labels) * h).sum(dim=1)
        return out, self.classifier(h) if self.classifier is not None else None
