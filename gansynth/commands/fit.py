"""``gansynth fit``: train a class-conditional GAN on a labeled image folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gansynth.commands.options import Compile, Device, Overrides, Precision, Quiet, Resume, Seed, SnapshotKimg
from gansynth.data import RESOLUTIONS

SUMMARY = "Train a class-conditional GAN on a labeled image folder."
EXAMPLES = [
    ("gansynth fit ./images", "./images/<class>/*.png → runs/images"),
    ("gansynth fit digits --budget 20m", "built-in digits, planned for 20 minutes"),
    ("gansynth fit ./images --resume", "continue where it stopped"),
    ("gansynth fit ./images --recipe small-data --out runs/pets", ""),
]


def fit_command(
    data: Annotated[str, typer.Argument(help="Image folder <root>/<class>/*.png, or a built-in dataset: digits.")],
    out: Annotated[Path | None, typer.Option(help="Run directory (default: runs/<data-name>).")] = None,
    recipe: Annotated[str | None, typer.Option(help="Recipe TOML file or bundled name (digits, cifar10, ...).")] = None,
    arch: Annotated[str | None, typer.Option(help="Architecture: biggan, dcgan, mlp.")] = None,
    conditioning: Annotated[str | None, typer.Option(help="projection, concat, acgan or projection-ac.")] = None,
    loss: Annotated[str | None, typer.Option(help="hinge, nonsaturating, minimax, wgan-gp.")] = None,
    resolution: Annotated[
        int | None, typer.Option(help=f"Pixels: {', '.join(map(str, RESOLUTIONS))} (default: chosen from the data).")
    ] = None,
    kimg: Annotated[float | None, typer.Option(min=0.001, help="Training length, thousands of real images.")] = None,
    budget: Annotated[
        str | None,
        typer.Option(help="Plan widths and length for this wall time: 20m, 2h, 1h30m (default on CPU: 15m)."),
    ] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Global batch size.")] = None,
    snapshot_kimg: SnapshotKimg = None,
    eval_kimg: Annotated[float | None, typer.Option(min=0.0, help="Evaluate every N kimg (0: never).")] = None,
    seed: Seed = None,
    device: Device = None,
    precision: Precision = None,
    compile: Compile = None,
    resume: Resume = False,
    set_: Overrides = None,
    quiet: Quiet = False,
) -> None:
    """Train a class-conditional GAN; writes weights, training state, sample grids and logs to the run directory."""
    from rich.console import Console

    from gansynth.train.fit import fit

    result = fit(
        data,
        console=Console(stderr=True, highlight=False, soft_wrap=True),
        out=out,
        recipe=recipe,
        resume=resume,
        overrides=set_ or [],
        progress=not quiet,
        budget=budget,
        arch=arch,
        conditioning=conditioning,
        loss=loss,
        resolution=resolution,
        kimg=kimg,
        batch_size=batch_size,
        snapshot_kimg=snapshot_kimg,
        eval_kimg=eval_kimg,
        seed=seed,
        device=device,
        precision=precision,
        compile=compile,
    )
    if result.status == "interrupted":
        typer.echo(
            f"interrupted at kimg {result.kimg:.3f}; continue with: gansynth fit {data} --out {result.run_dir} "
            "--resume",
            err=True,
        )
        raise typer.Exit(130)
