"""CyCADA's semantic-consistency loss (Hoffman et al., ICML 2018): a classifier f_A trained on the labeled domain A,
then frozen, asks each translation G(a) to keep a's label: CE(f_A(G(a)), y_a).

The cycle loss alone only asks that F can undo G, which a generator can satisfy while turning a 3 into something
that looks like an 8 to a reader of domain B; the semantic loss makes the translation label-preserving, which is
what ``translate export`` promises. f_A is a small CNN trained at the start of the fit (seconds at 16–32 px); its
weights are part of the snapshot, so a resumed run uses the same f_A. As in CyCADA, the B → A direction may be held
to f_A too — CE(f_A(F(b)), argmax f_A(b)), f_A's own class for b as the target — and f_A may train on A restyled
the ways a translation restyles it (:func:`augment_look`), so that it still reads A's classes in B's look.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gansynth.images import to_float
from gansynth.runtime import full_precision

WIDTH = 32  # channels of the first convolution (doubled twice)
BATCH = 64
LR = 1e-3
SHIFT = 2  # px of random translation either way while f_A trains (robustness to G's small displacements)
INK_LOW = 0.5  # the "look" augmentation scales the ink's brightness by a factor in [INK_LOW, 1]
NOISE = 0.1  # ... and adds Gaussian noise of a standard deviation in [0, NOISE] (of the [0, 1] range)
BLUR_KERNEL = (0.25, 0.5, 0.25)  # binomial 3-tap kernel, applied along each axis


class SemanticClassifier(nn.Module):
    """Three 3×3 conv stages (BatchNorm, ReLU, the last two halving the side), global average pool, linear."""

    def __init__(self, channels: int, num_classes: int, width: int = WIDTH) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = channels
        for i, c_out in enumerate((width, 2 * width, 4 * width)):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
            if i > 0:
                layers.append(nn.MaxPool2d(2))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: Tensor) -> Tensor:  # [N, C, R, R] in [-1, 1] → logits [N, K]
        return self.head(self.features(x).mean(dim=(2, 3)))


def match_channels(x: Tensor, channels: int) -> Tensor:
    """``x`` with ``channels`` channels: the mean for gray from color, repeated for color from gray."""
    if x.shape[1] == channels:
        return x
    if channels == 1:
        return x.mean(dim=1, keepdim=True)
    return x.mean(dim=1, keepdim=True).expand(-1, channels, -1, -1)


def random_shift(x: Tensor, rng: torch.Generator, pixels: int = SHIFT) -> Tensor:
    """Each image moved by a random whole number of pixels in [-pixels, pixels] per axis (edge replicated)."""
    if pixels == 0:
        return x
    padded = F.pad(x, (pixels,) * 4, mode="replicate")
    offsets = torch.randint(2 * pixels + 1, (len(x), 2), generator=rng).tolist()
    side_h, side_w = x.shape[2], x.shape[3]
    return torch.stack([padded[i, :, dy : dy + side_h, dx : dx + side_w] for i, (dy, dx) in enumerate(offsets)])


def blur(x: Tensor) -> Tensor:
    """``x`` ``[N, C, R, R]`` smoothed by the binomial kernel along both axes (edge replicated)."""
    k = torch.tensor(BLUR_KERNEL, dtype=x.dtype, device=x.device)
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (1, 1, 0, 0), mode="replicate"), k.view(1, 1, 1, 3).expand(c, 1, 1, 3), groups=c)
    return F.conv2d(F.pad(x, (0, 0, 1, 1), mode="replicate"), k.view(1, 1, 3, 1).expand(c, 1, 3, 1), groups=c)


def augment_look(x: Tensor, rng: torch.Generator) -> Tensor:
    """Each image of ``x`` (float in [-1, 1], ``[N, C, R, R]``) with a random look of its own, the ways a
    translation may restyle it: strokes thickened (grey dilation) or thinned (erosion) part of the way, blurred
    part of the way, its brightness range scaled by [INK_LOW, 1] and Gaussian noise added. Shapes are kept."""
    u = lambda: torch.rand(len(x), 1, 1, 1, generator=rng).to(x.device)  # noqa: E731  one draw per image
    stroke = 2 * u() - 1  # < 0: toward the eroded image, > 0: toward the dilated one
    dilated, eroded = F.max_pool2d(x, 3, 1, 1), -F.max_pool2d(-x, 3, 1, 1)
    x = torch.where(stroke > 0, x + stroke * (dilated - x), x - stroke * (eroded - x))
    x = x + u() * (blur(blur(x)) - x)
    x = (x + 1) / 2 * (INK_LOW + (1 - INK_LOW) * u())  # [0, 1]
    x = x + NOISE * u() * torch.randn(x.shape, generator=rng).to(x.device)
    return x.clamp(0, 1) * 2 - 1


def train_semantic_classifier(
    images: Tensor,
    labels: Tensor,
    num_classes: int,
    epochs: int,
    seed: int,
    device: torch.device | str = "cpu",
    augment: bool = False,
) -> SemanticClassifier:
    """f_A: trained on domain A's uint8 ``images`` ``[N, C, R, R]`` and ``labels`` for ``epochs`` passes (Adam,
    random shifts; with ``augment`` also :func:`augment_look`, so that f_A still reads A's digits once G has
    restyled them), returned frozen in eval mode. Seeded: the same inputs give the same network on one device."""
    rng = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = SemanticClassifier(images.shape[1], num_classes).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    net.train()
    with torch.enable_grad(), full_precision(device):
        for _ in range(epochs):
            for chunk in torch.randperm(len(images), generator=rng).split(BATCH):
                if len(chunk) < 2:  # BatchNorm needs two images
                    continue
                x = random_shift(to_float(images[chunk]).to(device), rng)
                x = augment_look(x, rng) if augment else x
                loss = F.cross_entropy(net(x), labels[chunk].to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return freeze(net)


def freeze(net: SemanticClassifier) -> SemanticClassifier:
    """Eval mode, no gradients for its own weights (gradients still flow through it to the generator)."""
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
        p.grad = None
    return net


def semantic_loss(net: nn.Module, translated: Tensor, labels: Tensor) -> Tensor:
    """CE(f_A(G(a)), y_a): ``translated`` float images in [-1, 1] (any channel count), ``labels`` A's classes."""
    channels = net.features[0].in_channels
    return F.cross_entropy(net(match_channels(translated.float(), channels)), labels)


def pseudo_labels(net: nn.Module, images: Tensor) -> Tensor:
    """f_A's own classes for ``images`` (float in [-1, 1], any channel count): CyCADA's targets on domain B."""
    with torch.no_grad():
        return net(match_channels(images.float(), net.features[0].in_channels)).argmax(dim=1)
