"""The built-in translation pair *fonts → digits*, which needs no files: printed digits as the labeled domain A,
scikit-learn's handwritten digits as domain B.

Domain A renders the digits 0–9 like print on paper (dark ink on a light page) from Pillow's scalable default font
and the TrueType fonts installed on the machine, each with a random size, stroke width, rotation, shear and shift.
Domain B is scikit-learn's 1 797 handwritten 8×8 digits, upscaled (bright ink on a dark background, like the
scans they come from). The label of a translated A image is the digit it was rendered from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageChops, ImageDraw, ImageFont

from gansynth.data import ImageDataset
from gansynth.data.fingerprint import hash_tensor

FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts")
MAX_FONTS = 16  # system fonts used at most (the first ones in sorted path order), besides Pillow's own
SYMBOL_FONTS = ("cmex", "cmsy", "stixsiz", "stixnonuni", "symbol", "wingding", "dingbat", "emoji")
RENDER_SCALE = 4  # digits are drawn at 4× the output size and reduced with an antialiasing filter
PAPER, INK = 0, 255  # light ink on a dark ground, like domain B: the gap left is the glyphs' shape and stroke
NUM_DIGITS = 10


@dataclass(frozen=True)
class Jitter:
    """Ranges of the random rendering of one digit (fractions of the image side unless named otherwise)."""

    size: tuple[float, float] = (0.75, 0.95)  # the digit's longer side
    stroke: tuple[int, int] = (0, 2)  # extra stroke width in px at the output size (inclusive)
    rotate: float = 12.0  # degrees either way
    shear: float = 0.15  # horizontal shear factor either way
    shift: float = 0.05  # translation either way


def find_fonts(limit: int = MAX_FONTS) -> list[Path]:
    """TrueType/OpenType fonts in the usual system folders (symbol fonts left out), sorted, at most ``limit``."""
    found = []
    for folder in FONT_DIRS:
        if folder.is_dir():
            found += [p for p in folder.rglob("*") if p.suffix.lower() in (".ttf", ".otf") and p.is_file()]
    usable = sorted(p for p in found if not any(s in p.name.lower() for s in SYMBOL_FONTS))
    return usable[:limit]


def _font(source: Path | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A font of ``size`` px: a file, or Pillow's bundled default (scalable with Pillow >= 10.1)."""
    if source is None:
        return ImageFont.load_default(size)
    return ImageFont.truetype(str(source), size)


def render_digit(
    digit: int, font: Path | None, resolution: int, rng: np.random.Generator, jitter: Jitter
) -> np.ndarray:
    """One printed digit as ``[resolution, resolution]`` uint8 (dark on light): drawn with a random stroke, cropped
    to its ink and scaled so that its longer side spans a random share of the frame (as scanned digits are
    normalized to their box), then rotated, sheared and shifted."""
    side = resolution * RENDER_SCALE
    canvas = Image.new("L", (2 * side, 2 * side), PAPER)
    stroke = int(rng.integers(jitter.stroke[0], jitter.stroke[1] + 1)) * RENDER_SCALE // 2
    ImageDraw.Draw(canvas).text((side, side), str(digit), fill=INK, font=_font(font, side), anchor="mm",
                                stroke_width=stroke, stroke_fill=INK)  # fmt: skip
    ink = ImageChops.difference(canvas, Image.new("L", canvas.size, PAPER)).getbbox() or (0, 0, 2 * side, 2 * side)
    glyph = canvas.crop(ink)
    scale = side * rng.uniform(*jitter.size) / max(glyph.size)
    glyph = glyph.resize((max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale))),
                         Image.Resampling.LANCZOS)  # fmt: skip
    framed = Image.new("L", (side, side), PAPER)
    framed.paste(glyph, ((side - glyph.width) // 2, (side - glyph.height) // 2))
    angle = np.deg2rad(rng.uniform(-jitter.rotate, jitter.rotate))
    shear = rng.uniform(-jitter.shear, jitter.shear)
    dx, dy = rng.uniform(-jitter.shift, jitter.shift, size=2) * side
    cos, sin = np.cos(angle), np.sin(angle)
    # inverse map output → input about the centre: rotation, then shear, then shift
    a, b, d, e = cos, sin + shear * cos, -sin, cos - shear * sin
    c = side / 2 - a * (side / 2 + dx) - b * (side / 2 + dy)
    f = side / 2 - d * (side / 2 + dx) - e * (side / 2 + dy)
    warped = framed.transform((side, side), Image.Transform.AFFINE, (a, b, c, d, e, f), Image.Resampling.BILINEAR,
                              fillcolor=PAPER)  # fmt: skip
    return np.asarray(warped.resize((resolution, resolution), Image.Resampling.LANCZOS), dtype=np.uint8)


def font_digits(
    per_class: int = 200,
    resolution: int = 16,
    seed: int = 0,
    fonts: list[Path] | None = None,
    jitter: Jitter = Jitter(),
) -> ImageDataset:
    """Domain A: ``per_class`` printed images of each digit, labeled ``"0"`` … ``"9"``, one channel.

    Args:
        per_class: images per digit.
        resolution: side in px.
        seed: seed of the random fonts, sizes, strokes and warps.
        fonts: font files besides Pillow's default (None: :func:`find_fonts`; ``[]``: Pillow's only, the same on
            every machine).
        jitter: the ranges of the random rendering.
    """
    choices: list[Path | None] = [None, *(find_fonts() if fonts is None else fonts)]
    rng = np.random.default_rng(seed)
    arrays, labels = [], []
    for digit in range(NUM_DIGITS):
        for _ in range(per_class):
            font = choices[int(rng.integers(len(choices)))]
            arrays.append(render_digit(digit, font, resolution, rng, jitter))
            labels.append(digit)
    images = torch.from_numpy(np.stack(arrays))[:, None].contiguous()  # [N, 1, R, R]
    names = ",".join("pillow-default" if f is None else f.name for f in choices)
    return ImageDataset(
        name="fonts",
        source="fonts",
        images=images,
        labels=torch.tensor(labels, dtype=torch.long),
        class_names=[str(d) for d in range(NUM_DIGITS)],
        fingerprint=hash_tensor(images, prefix=f"builtin:fonts:{seed}:{names}"),
    )


def write_fonts_digits(root: str | Path, per_class: int = 200, resolution: int = 16, seed: int = 0,
                       fonts: list[Path] | None = None) -> tuple[Path, Path, Path]:  # fmt: skip
    """Write the pair as folders a CLI can be pointed at: ``root/fonts/<digit>/*.png`` (domain A),
    ``root/digits/train/<digit>/*.png`` (domain B: the training part of the digits benchmark's split, whose class
    folders ``translate fit`` ignores) and ``root/digits/test/<digit>/*.png`` (held-out digits the translation never
    sees, for measuring). Returns the three folders; existing files are kept.
    """
    from gansynth.benchmark.digits import prepare_digits_split, write_image_folder

    root = Path(root)
    fonts_dir = write_image_folder(font_digits(per_class, resolution, seed, fonts), root / "fonts")
    return (fonts_dir, *prepare_digits_split(root / "digits"))
