"""Every registered architecture × conditioning × loss builds, runs forward/backward finitely, and trains both nets."""

import itertools

import pytest
import torch

import gansynth.nn.archs  # noqa: F401  (registers the architectures)
from gansynth.config import ModelConfig
from gansynth.nn import ARCHITECTURES, CONDITIONINGS, build_networks
from gansynth.nn.layers import ConditionalBatchNorm2d
from gansynth.train.losses import LOSSES, gradient_penalty

COMBOS = list(itertools.product(ARCHITECTURES.names(), CONDITIONINGS.names(), LOSSES.names()))


@pytest.mark.parametrize("arch, conditioning, loss_name", COMBOS)
def test_forward_backward_reaches_both_networks(arch, conditioning, loss_name):
    torch.manual_seed(0)
    model = ModelConfig(arch=arch, conditioning=conditioning, z_dim=16, embed_dim=8, g_width=32, d_width=16)
    g, d = build_networks(model, resolution=16, channels=3, num_classes=4)
    loss = LOSSES.get(loss_name)
    z, labels = torch.randn(6, 16), torch.randint(0, 4, (6,))
    real = torch.rand(6, 3, 16, 16) * 2 - 1
    fake = g(z, labels)
    assert fake.shape == (6, 3, 16, 16) and torch.isfinite(fake).all() and fake.abs().max() <= 1
    d_real, cls = d(real, labels)
    assert d_real.shape == (6,) and (cls is None) == (not CONDITIONINGS.get(conditioning).classifier)
    d_fake, _ = d(fake.detach(), labels)
    d_loss = loss.d(d_real, d_fake)
    if loss.gradient_penalty:
        d_loss = d_loss + gradient_penalty(d, real, fake, labels, torch.Generator().manual_seed(0))
    d_loss.backward()
    assert torch.isfinite(d_loss)
    d_grads = [p.grad for p in d.parameters() if p.grad is not None]
    assert d_grads and all(torch.isfinite(gr).all() for gr in d_grads)
    assert any(gr.abs().sum() > 0 for gr in d_grads)
    g_loss = loss.g(d(g(z, labels), labels)[0])
    g_loss.backward(inputs=list(g.parameters()))
    g_grads = [p.grad for p in g.parameters() if p.grad is not None]
    assert torch.isfinite(g_loss) and g_grads and any(gr.abs().sum() > 0 for gr in g_grads)


@pytest.mark.parametrize("arch", ["biggan", "dcgan"])
@pytest.mark.parametrize("resolution", [32, 64])
def test_resolutions_and_self_attention(arch, resolution):
    model = ModelConfig(arch=arch, z_dim=16, embed_dim=8, g_width=32, d_width=16, attention=16)
    g, d = build_networks(model, resolution=resolution, channels=1, num_classes=3)
    for net in (g, d):
        assert any(type(m).__name__ == "SelfAttention" for m in net.modules())
    out = g(torch.randn(2, 16), torch.tensor([0, 2]))
    assert out.shape == (2, 1, resolution, resolution)
    assert d(out, torch.tensor([0, 2]))[0].shape == (2,)


@pytest.mark.parametrize(("arch", "attention", "resolution"), [("mlp", 16, 32), ("biggan", 64, 32)])
def test_attention_a_network_cannot_use_is_a_config_error(arch, attention, resolution):
    from gansynth.errors import ConfigError

    model = ModelConfig(arch=arch, z_dim=16, embed_dim=8, g_width=32, d_width=16, attention=attention)
    with pytest.raises(ConfigError, match="model.attention"):
        build_networks(model, resolution=resolution, channels=1, num_classes=3)


@pytest.mark.parametrize("arch", ARCHITECTURES.names())
def test_generator_uses_the_label(arch):
    """Conditional BN gains start at zero (BigGAN init); once they move, the label changes the image."""
    torch.manual_seed(0)
    g, _ = build_networks(ModelConfig(arch=arch, z_dim=16, embed_dim=8, g_width=32, d_width=16), 16, 1, 3)
    for module in g.modules():
        if isinstance(module, ConditionalBatchNorm2d) and module.cond_dim:
            torch.nn.init.normal_(module.gain.weight, std=0.5)
    g.eval()
    z = torch.randn(1, 16)
    assert not torch.allclose(g(z, torch.tensor([0])), g(z, torch.tensor([2])))


def test_mlp_matches_the_classic_layout():
    g, d = build_networks(ModelConfig(arch="mlp", conditioning="concat", z_dim=100), 16, 1, 10)
    widths = [m.out_features for m in g.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [256, 512, 1024, 16 * 16]
    d_widths = [m.out_features for m in d.net.modules() if isinstance(m, torch.nn.Linear)]
    assert d_widths == [512, 256]


def test_projection_ac_classifier_learns_real_images_only():
    from gansynth.train.steps import d_class_loss

    torch.manual_seed(0)
    cls, labels = torch.randn(8, 4, requires_grad=True), torch.randint(0, 4, (8,))
    d_class_loss(cls, labels, n=4, fakes=False).backward()
    assert cls.grad[:4].abs().sum() > 0 and cls.grad[4:].abs().sum() == 0  # fakes give D's classifier nothing
    cls.grad = None
    d_class_loss(cls, labels, n=4, fakes=True).backward()
    assert cls.grad[4:].abs().sum() > 0  # AC-GAN: the fakes' labels are learned too
    spec = CONDITIONINGS.get("projection-ac")
    assert spec.projection and spec.classifier and not spec.classifier_fakes
    _, d = build_networks(ModelConfig(conditioning="projection-ac", g_width=16, d_width=16), 16, 1, 4)
    assert d.head.embed is not None and d.head.classifier is not None
