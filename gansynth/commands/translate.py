"""``gansynth translate fit|export``: CycleGAN between a labeled folder A and a folder of images B, and A's labeled
images exported in B's look."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from gansynth.commands.options import Compile, Device, Overrides, Precision, Quiet, Resume, Seed, SnapshotKimg
from gansynth.data import RESOLUTIONS

SUMMARY = "CycleGAN: a labeled folder A translated into B's look (labels kept)."
FIT_EXAMPLES = [
    ("gansynth translate fit fonts digits --kimg 12 --g-width 16 --d-width 16", "built-in printed → handwritten"),
    ("gansynth translate fit ./renders ./photos --budget 30m", "labeled renders → unlabeled photos"),
    ("gansynth translate fit ./renders ./photos --resume", "continue where it stopped"),
]
EXPORT_EXAMPLES = [
    ("gansynth translate export runs/fonts-to-digits --out synthetic/translated", "every A image, translated"),
    ("gansynth translate export runs/renders-to-photos --per-class 500", "the first 500 of each class"),
]
EXAMPLES = [FIT_EXAMPLES[0], EXPORT_EXAMPLES[0]]
VERB_EXAMPLES = {"fit": FIT_EXAMPLES, "export": EXPORT_EXAMPLES}

translate_app = typer.Typer(
    help="Unpaired, label-preserving translation (CycleGAN): labeled folder A → B's look.",
    no_args_is_help=True,
    add_completion=False,
)


@translate_app.command("fit")
def translate_fit_command(
    a: Annotated[str, typer.Argument(help="Domain A: labeled folder <root>/<class>/*.png, or 'fonts' (built-in).")],
    b: Annotated[
        str, typer.Argument(help="Domain B: a folder of images (class subfolders optional, ignored), or 'digits'.")
    ],
    out: Annotated[Path | None, typer.Option(help="Run directory (default: runs/<A>-to-<B>).")] = None,
    recipe: Annotated[str | None, typer.Option(help="Recipe TOML ([data] [model] [train] [runtime]).")] = None,
    resolution: Annotated[
        int | None, typer.Option(help=f"Pixels: {', '.join(map(str, RESOLUTIONS))} (default: domain A's).")
    ] = None,
    kimg: Annotated[float | None, typer.Option(min=0.001, help="Training length, thousands of A images.")] = None,
    budget: Annotated[
        str | None, typer.Option(help="Plan the length for this wall time from a calibration: 5m, 1h, 1h30m.")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(min=2, help="Images of each domain per step.")] = None,
    g_width: Annotated[int | None, typer.Option(min=1, help="Generator channels at full resolution.")] = None,
    d_width: Annotated[int | None, typer.Option(min=1, help="Discriminator channels of its first layer.")] = None,
    semantic_weight: Annotated[
        float | None,
        typer.Option(min=0.0, help="CyCADA semantic loss CE(f_A(G(a)), y_a), f_A trained on A; 0 turns it off."),
    ] = None,
    snapshot_kimg: SnapshotKimg = None,
    seed: Seed = None,
    device: Device = None,
    precision: Precision = None,
    compile: Compile = None,
    resume: Resume = False,
    set_: Overrides = None,
    quiet: Quiet = False,
) -> None:
    """Train G: A → B and F: B → A (ResNet generators, PatchGAN, LSGAN, cycle λ=10, identity 0.5·λ, semantic 1 / 2)."""
    from rich.console import Console

    from gansynth.translate import fit

    result = fit(
        a, b, out=out, recipe=recipe, resume=resume, overrides=set_ or [], progress=not quiet, budget=budget,
        console=Console(stderr=True, highlight=False, soft_wrap=True), resolution=resolution, kimg=kimg,
        batch_size=batch_size, g_width=g_width, d_width=d_width, snapshot_kimg=snapshot_kimg, seed=seed,
        semantic_weight=semantic_weight,
        device=device, precision=precision, compile=compile,
    )  # fmt: skip
    if result.status == "interrupted":
        typer.echo(
            f"interrupted at kimg {result.kimg:.3f}; continue with: gansynth translate fit {shlex.quote(a)} "
            f"{shlex.quote(b)} --out {shlex.quote(str(result.run_dir))} --resume",
            err=True,
        )
        raise typer.Exit(130)


@translate_app.command("export")
def translate_export_command(
    run: Annotated[
        Path | None, typer.Argument(help="Translation run (default: the most recent under ./runs).", show_default=False)
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Export folder (default: synthetic/<run name>).")] = None,
    per_class: Annotated[int | None, typer.Option(min=1, help="The first N images of every class.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every image of domain A (the default).")] = False,
    format: Annotated[str, typer.Option(help="png, jpg or webp.")] = "png",
    size: Annotated[int | None, typer.Option(help="Side of the written images (default: B's native size).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace another command's export in --out.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "cpu",
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Translate A's labeled images into B's look: images/<class>/…, metadata.csv, manifest.json; resumable."""
    from gansynth.errors import ConfigError
    from gansynth.translate import export

    if all_ and per_class is not None:
        raise ConfigError("give at most one of --per-class N and --all", hint="--all (the default) exports every image")
    line = ["gansynth", "translate", "export", *([str(run)] if run is not None else [])]
    line += [*(["--out", str(out)] if out else []), *(["--per-class", str(per_class)] if per_class else [])]
    try:
        result = export(run, out, per_class, format=format, size=size, force=force, device=device,
                        progress=not quiet, command_line=shlex.join(line))  # fmt: skip
    except KeyboardInterrupt:
        typer.echo("interrupted; rerun the same command to resume (finished files are kept)", err=True)
        raise typer.Exit(130) from None
    total = sum(result.counts.values())
    typer.echo(f"{result.out}: {result.written} images written, {result.kept} kept; {total} in {len(result.counts)} "
               f"classes; manifest: {result.manifest}")  # fmt: skip
