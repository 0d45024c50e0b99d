"""``gansynth export``: a run's generator → a balanced synthetic ImageFolder with images.csv and a manifest."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

SUMMARY = "Write a balanced synthetic ImageFolder with a manifest."
EXAMPLES = [
    ("gansynth export --per-class 5000", "→ synthetic/<run>/"),
    ("gansynth export runs/images --balance-to max", "top up to the largest class"),
    ("gansynth export --per-class 1000 --min-confidence 0.9", "filtered"),
    ("gansynth export --per-class 5000 --shard 0/4 --out synthetic/all", "part 0 of 4"),
]


def export_command(
    run: Annotated[
        Path | None, typer.Argument(help="Run directory (default: the most recent under ./runs).", show_default=False)
    ] = None,
    per_class: Annotated[int | None, typer.Option(min=1, help="Exactly N images for every selected class.")] = None,
    out: Annotated[Path | None, typer.Option(help="Export folder (default: synthetic/<run name>).")] = None,
    seed: Annotated[int, typer.Option(min=0, help="First seed; class k uses seeds seed + k*10^7 + i.")] = 0,
    classes: Annotated[str | None, typer.Option(help="Comma-separated class names (default: all).")] = None,
    balance_to: Annotated[
        str | None, typer.Option(help="Top up each class to this total of real + synthetic: 'max' or a count.")
    ] = None,
    truncation: Annotated[float | None, typer.Option(min=0.01, help="Truncation ψ of the noise.")] = None,
    min_confidence: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Keep images the domain classifier gives >= P for their class."),
    ] = None,
    format: Annotated[str, typer.Option(help="png, jpg or webp.")] = "png",
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Encoder processes (default: none on CPUs with <= 4 cores, else cores/4; GPU: up to 8; 0: none).",
        ),
    ] = None,
    shard: Annotated[str | None, typer.Option(help="Write only part I of N (0-based), e.g. 0/4.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace another command's export in --out.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    checkpoint: Annotated[
        str, typer.Option(help="latest (last snapshot) or best (lowest FID of the evaluations during fit).")
    ] = "latest",
    size: Annotated[
        int | None, typer.Option(help="Side of the written images in px (default: the real images' size).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Write exactly N images per class (or a top-up to balance the real data), deterministic and resumable."""
    from gansynth.exporter import export
    from gansynth.exporter.spec import ExportSpec

    spec = ExportSpec(
        per_class=per_class,
        balance_to=balance_to,
        seed=seed,
        classes=classes,
        truncation=truncation,
        min_confidence=min_confidence,
        format=format,
        workers=workers,
        shard=shard,
        force=force,
        device=device,
        progress=not quiet,
        command_line=_command_line(locals()),
        checkpoint=checkpoint,
        size=size,
    )
    try:
        result = export(run, out, spec=spec)
    except KeyboardInterrupt:
        typer.echo("interrupted; rerun the same command to resume (finished files are kept)", err=True)
        raise typer.Exit(130) from None
    _report(result)


def _report(result) -> None:
    done = f"{result.written} images written, {result.kept} kept from an earlier run"
    rate = f" ({result.images_per_second:,.0f} img/s)" if result.written else ""
    typer.echo(f"{result.out}: {done}{rate}; {sum(result.counts.values())} images in {len(result.counts)} classes")
    if result.acceptance is not None:
        typer.echo("acceptance: " + ", ".join(f"{k} {v:.1%}" for k, v in result.acceptance.items()))
    if result.complete:
        typer.echo(f"manifest: {result.manifest}")
    else:
        typer.echo(
            f"shard {result.shard[0]}/{result.shard[1]} done; images.csv and manifest.json are written when every "
            "shard is (run the other shards into the same --out, or copy their folders in and rerun any shard)"
        )


def _command_line(args: dict) -> str:
    """The canonical command: every option that differs from its default, in a fixed order."""
    parts = ["gansynth", "export"] + ([str(args["run"])] if args["run"] is not None else [])
    defaults = {"seed": 0, "format": "png", "force": False, "device": "auto", "quiet": False, "checkpoint": "latest"}
    keys = ("per_class", "out", "seed", "classes", "balance_to", "truncation", "min_confidence", "format")
    keys += ("checkpoint", "size")
    for key in keys:
        value = args[key]
        if value is not None and value != defaults.get(key):
            parts += [f"--{key.replace('_', '-')}", str(value)]
    if args["shard"] is not None:
        parts += ["--shard", args["shard"]]
    return shlex.join(parts)
