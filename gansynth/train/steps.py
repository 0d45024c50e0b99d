"""One D update and one G update: batches drawn on the device, DiffAugment, losses, a NaN guard with no host sync."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gansynth.images import to_float
from gansynth.runtime import Runtime
from gansynth.train.augment import AugmentOp, augment
from gansynth.train.losses import Loss, gradient_penalty


@dataclass
class Batches:
    """Draws real and fake-label batches from a device-resident uint8 training set.

    Attributes:
        images: ``[N, C, R, R]`` uint8 on the device.
        labels: ``[N]`` int64 on the device.
        balanced: real batches class-uniform and fake labels uniform (else: follow the empirical distribution).
    """

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    balanced: bool
    z_dim: int

    def __post_init__(self) -> None:
        self.order = torch.argsort(self.labels, stable=True)
        self.counts = torch.bincount(self.labels, minlength=self.num_classes)
        self.offsets = torch.cumsum(self.counts, 0) - self.counts

    def real(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(images ``[n, C, R, R]`` float in [-1, 1], labels ``[n]``)."""
        dev = self.images.device
        if self.balanced:
            y = torch.randint(0, self.num_classes, (n,), device=dev, generator=gen)
            within = (torch.rand(n, device=dev, generator=gen) * self.counts[y]).long()
            idx = self.order[self.offsets[y] + within]
        else:
            idx = torch.randint(0, self.labels.numel(), (n,), device=dev, generator=gen)
            y = self.labels[idx]
        return to_float(self.images[idx]), y

    def latent(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(noise ``[n, z_dim]``, fake labels ``[n]``)."""
        dev = self.images.device
        z = torch.randn(n, self.z_dim, device=dev, generator=gen)
        if self.balanced:
            return z, torch.randint(0, self.num_classes, (n,), device=dev, generator=gen)
        return z, self.labels[torch.randint(0, self.labels.numel(), (n,), device=dev, generator=gen)]


@dataclass
class StepContext:
    """What both steps share: networks (possibly compiled/DDP-wrapped), optimizers, loss, augmentation."""

    g: nn.Module  # generator for the G step (DDP/compiled)
    g_frozen: nn.Module  # generator for the D step (no gradient sync needed)
    d: nn.Module  # discriminator for the D step (DDP/compiled)
    d_frozen: nn.Module  # discriminator for the G step: its weights get no gradient
    g_params: list[torch.Tensor]
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    loss: Loss
    ops: list[AugmentOp]
    p: torch.Tensor  # augmentation probability, 0-dim device tensor
    runtime: Runtime
    acgan_weight: float
    gp_weight: float
    acgan_fakes: bool = True  # D's classifier also learns the fakes' labels (AC-GAN); else real images only
    lecam_weight: float = 0.0
    lecam_decay: float = 0.99
    lecam_anchors: torch.Tensor | None = None  # [2] device tensor: EMA of mean D(real), mean D(fake)
    gsr_weight: float = 0.0
    ms_weight: float = 0.0
    g_raw: nn.Module | None = None  # the generator itself (class_affines for group spectral regularization)


def _guarded_step(
    ctx: StepContext, opt: torch.optim.Optimizer, loss: torch.Tensor, inputs: list[torch.Tensor] | None
) -> torch.Tensor:
    """Backward + optimizer step that is skipped on the device when the loss is not finite; returns ``bad`` (0/1)."""
    opt.zero_grad(set_to_none=True)
    bad = (~torch.isfinite(loss)).float()
    ctx.scaler.scale(loss).backward(inputs=inputs)
    if ctx.scaler.is_enabled():  # fp16: the scaler skips non-finite steps itself (it syncs; fp16 is the fallback)
        ctx.scaler.step(opt)
        ctx.scaler.update()
    else:
        opt.found_inf = bad  # fused Adam skips the update (and its step count) when this is 1
        opt.step()
    return bad


def d_step(ctx: StepContext, batches: Batches, n: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """One discriminator update on ``n`` real and ``n`` fake images; returns detached device scalars."""
    real, y_real = batches.real(n, gen)
    z, y_fake = batches.latent(n, gen)
    with ctx.runtime.autocast():
        with torch.no_grad():
            fake = ctx.g_frozen(z, y_fake)
        x = torch.cat([augment(real, ctx.ops, ctx.p, gen), augment(fake.float(), ctx.ops, ctx.p, gen)])
        labels = torch.cat([y_real, y_fake])
        out, cls = ctx.d(x, labels)  # one call for real and fake: one DDP forward per backward
    out = out.float()
    d_real, d_fake = out[:n], out[n:]
    loss = ctx.loss.d(d_real, d_fake)
    if cls is not None:
        loss = loss + ctx.acgan_weight * d_class_loss(cls, labels, n, ctx.acgan_fakes)
    if ctx.loss.gradient_penalty:
        loss = loss + ctx.gp_weight * gradient_penalty(ctx.d, x[:n], x[n:], y_real, gen)
    if ctx.lecam_weight > 0:
        loss = loss + ctx.lecam_weight * lecam_penalty(d_real, d_fake, ctx.lecam_anchors, ctx.lecam_decay)
    bad = _guarded_step(ctx, ctx.opt_d, loss, None)
    return {"loss_d": loss.detach(), "d_real_sign": torch.sign(d_real.detach()).mean(), "bad_d": bad}


def d_class_loss(cls: torch.Tensor, labels: torch.Tensor, n: int, fakes: bool) -> torch.Tensor:
    """D's auxiliary-classifier loss on a batch of ``n`` real then ``n`` fake images: cross-entropy on all of them
    (AC-GAN), or on the real ones only (``projection-ac``: the classifier never learns what G draws)."""
    if not fakes:
        cls, labels = cls[:n], labels[:n]
    return F.cross_entropy(cls.float(), labels)


def lecam_penalty(d_real: torch.Tensor, d_fake: torch.Tensor, anchors: torch.Tensor, decay: float) -> torch.Tensor:
    """LeCam regularization (Tseng et al., CVPR 2021): ``E[(D(x) − α_F)²] + E[(D(G(z)) − α_R)²]``.

    ``anchors`` = (α_R, α_F), EMAs of D's mean output on real and fake images, are updated in place first (no
    host sync; a non-finite batch leaves them as they were). Pulling real outputs toward the fake anchor and fake
    outputs toward the real one keeps D's predictions from drifting apart on small data.
    """
    with torch.no_grad():
        means = torch.stack([d_real.mean(), d_fake.mean()]).float()
        updated = anchors * decay + means * (1.0 - decay)
        anchors.copy_(torch.where(torch.isfinite(updated), updated, anchors))
    return (d_real - anchors[1]).pow(2).mean() + (d_fake - anchors[0]).pow(2).mean()


def group_spectral_penalty(affines: list[torch.Tensor]) -> torch.Tensor:
    """Group spectral regularization (Rangwani et al., ECCV 2022): each class's conditional-BN gain (and bias)
    vector ``[C]`` is grouped into a ``[G, C/G]`` matrix (G the largest divisor of C up to √C) and its largest
    singular value penalized, averaged over the classes and summed over layers. Class-conditional collapse on
    tail classes shows as such matrices growing a dominant direction; the penalty keeps their spectrum spread."""
    total = torch.zeros(())
    for values in affines:
        k, c = values.shape
        groups = max(g for g in range(1, math.isqrt(c) + 1) if c % g == 0)
        sigma = torch.linalg.matrix_norm(values.float().view(k, groups, c // groups), ord=2)  # [K]
        total = total.to(sigma.device) + sigma.mean()
    return total


def mode_seeking_penalty(a: torch.Tensor, b: torch.Tensor, z: torch.Tensor, half: int) -> torch.Tensor:
    """Mode seeking regularization (Mao et al., CVPR 2019): ``1 / (mean|G(z1) − G(z2)| / mean|z1 − z2| + ε)`` for
    pairs of the same class. A conditional generator that ignores its noise (one image per class) makes the ratio
    small and the penalty large; minimizing it spreads images of a class apart as their noises are."""
    images = (a - b).abs().mean()
    noise = (z[:half] - z[half : 2 * half]).abs().mean()
    return 1.0 / (images / noise + 1e-5)


def g_step(ctx: StepContext, batches: Batches, n: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """One generator update; D's weights receive no gradient (backward is limited to G's parameters)."""
    z, y = batches.latent(n, gen)
    half = n // 2
    if ctx.ms_weight > 0 and half:  # pairs: rows i and half + i share a label, not their noise
        y = torch.cat([y[:half], y[:half], y[2 * half :]])
    with ctx.runtime.autocast():
        fake = ctx.g(z, y)
        out, cls = ctx.d_frozen(augment(fake.float(), ctx.ops, ctx.p, gen), y)
    loss = ctx.loss.g(out.float())
    if ctx.ms_weight > 0 and half:
        loss = loss + ctx.ms_weight * mode_seeking_penalty(fake[:half].float(), fake[half : 2 * half].float(), z, half)
    if cls is not None:
        loss = loss + ctx.acgan_weight * F.cross_entropy(cls.float(), y)
    if ctx.gsr_weight > 0 and hasattr(ctx.g_raw, "class_affines"):
        loss = loss + ctx.gsr_weight * group_spectral_penalty(ctx.g_raw.class_affines(torch.unique(y)))
    bad = _guarded_step(ctx, ctx.opt_g, loss, ctx.g_params)
    return {"loss_g": loss.detach(), "bad_g": bad}
