"""``gansynth sample``: a grid of one class from a run's EMA generator."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

SUMMARY = "Write a grid of one class's generated images."
EXAMPLES = [
    ("gansynth sample --class cat -n 64 --out cat.png", "latest run under ./runs"),
    ("gansynth sample runs/digits --class 7 --seed 100 --checkpoint best", ""),
]


def sample_command(
    run: Annotated[Path | None, typer.Argument(help="Run directory (default: the most recent under ./runs).")] = None,
    class_name: Annotated[str, typer.Option("--class", help="Class name to generate.")] = ...,
    n: Annotated[int, typer.Option("-n", min=1, max=10000, help="Number of images.")] = 64,
    out: Annotated[Path, typer.Option(help="Output PNG grid.")] = Path("grid.png"),
    seed: Annotated[int, typer.Option(min=0, help="First seed; image i uses seed + i.")] = 0,
    truncation: Annotated[float | None, typer.Option(min=0.01, help="Truncation ψ.")] = None,
    checkpoint: Annotated[
        str, typer.Option(help="latest (last snapshot) or best (lowest FID of the evaluations during fit).")
    ] = "latest",
    size: Annotated[int | None, typer.Option(help="Side of each image in px (default: the real images' size).")] = None,
) -> None:
    """Write an n-image grid of one class (image i is the sample of seed SEED + i)."""
    from gansynth.errors import ConfigError
    from gansynth.images import encode_png, tile
    from gansynth.io import atomic_write_bytes
    from gansynth.sampler import load_sampler

    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory", hint="give a .png file path")
    sampler = load_sampler(run, checkpoint=checkpoint)
    images = sampler.generate(sampler.class_index(class_name), n, seed=seed, truncation=truncation, size=size)
    grid = tile(images, columns=math.ceil(math.sqrt(n)))
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, encode_png(grid))
    typer.echo(f"wrote {out} ({n} images of class {class_name!r}, seeds {seed}..{seed + n - 1})")
