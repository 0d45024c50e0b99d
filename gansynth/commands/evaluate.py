"""``gansynth evaluate``: metrics of a run's generator (or a folder of generated images) against real images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

_OVERALL = (
    ("fid", "FID", "lower is better"),
    ("kid", "KID", "lower is better"),
    ("is", "IS", "higher is better (inception only)"),
    ("precision", "precision", "share of generated images that look real (k=3)"),
    ("recall", "recall", "share of real variety the generator covers (k=3)"),
    ("density", "density", "≈1 for real-like samples (k=5)"),
    ("coverage", "coverage", "share of real neighbourhoods hit (k=5)"),
    ("label_fidelity", "label fidelity", "domain classifier agrees with the asked class"),
    ("memorization", "memorization", "≈0.05 for fresh samples; near 1 when copying"),
    ("per_class_fid_mean", "per-class FID (mean)", "lower is better"),
)
_PER_CLASS = ("fid", "precision", "recall", "density", "coverage", "label_fidelity")


def _fmt(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render(record: dict) -> None:
    """Print the record as rich tables (overall, per class), then the protocol line, notes and alarms."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    protocol = record["protocol"]
    overall = Table(title="gansynth evaluate", title_justify="left")
    for column in ("metric", "value", "meaning"):
        overall.add_column(column, justify="right" if column == "value" else "left")
    for key, label, meaning in _OVERALL:
        overall.add_row(label, _fmt(record.get(key)), meaning)
    worst = record.get("per_class_fid_worst")
    if worst:
        overall.add_row("per-class FID (worst)", _fmt(worst["fid"]), f"class {worst['class']}")
    console.print(overall)
    per_class = Table(title="per class", title_justify="left")
    for column in ("class", "generated", "real", *(c.replace("_", " ") for c in _PER_CLASS), "collapse"):
        per_class.add_column(column, justify="left" if column == "class" else "right")
    for name, row in record["per_class"].items():
        collapse = "[bold red]YES[/]" if row["collapse"] else "no"
        per_class.add_row(
            name, str(row["num_generated"]), str(row["num_real"]), *(_fmt(row[k]) for k in _PER_CLASS), collapse
        )
    console.print(per_class)
    accuracy = protocol.get("domain_heldout_accuracy")
    console.print(
        f"feature extractor: [bold]{protocol['feature_extractor']}[/] "
        f"(weights sha256 {str(protocol['weights_sha256'])[:12]}); "
        f"{protocol['num_generated']} generated vs {protocol['num_real']} real images at {protocol['resolution']} px; "
        f"domain classifier held-out accuracy: {_fmt(accuracy)}"
    )
    for note in record.get("notes", []):
        console.print(f"note: {note}", markup=False)
    for alarm in record.get("alarms", []):
        console.print(f"[bold yellow]alarm:[/] {alarm['message']}")


def evaluate_command(
    run: Annotated[
        Path | None, typer.Argument(help="Run directory (default: the most recent under ./runs).", show_default=False)
    ] = None,
    data: Annotated[
        str | None, typer.Option(help="Real images: a folder <root>/<class>/*.png or 'digits' (default: the run's).")
    ] = None,
    generated: Annotated[
        Path | None,
        typer.Option(help="Folder of generated images <root>/<class>/*.png to evaluate instead of a run's generator."),
    ] = None,
    num_samples: Annotated[
        int | None, typer.Option(min=1, help="Generated images, balanced over classes (default: as many as real).")
    ] = None,
    feature_extractor: Annotated[
        str, typer.Option(help="auto, inception, domain, dinov2 or clip (auto: inception if its weights exist).")
    ] = "auto",
    weights: Annotated[
        Path | None, typer.Option(help="Weights file of the feature extractor (nothing is ever downloaded).")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the record to this JSON file.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """FID, KID, precision/recall, density/coverage, per-class FID, label fidelity — each with its protocol."""
    from gansynth.metrics import evaluate

    record = evaluate(
        run=run,
        data=data,
        generated=generated,
        num_samples=num_samples,
        feature_extractor=feature_extractor,
        weights=weights,
        json_out=json_out,
        device=device,
        progress=not quiet,
    )
    render(record)
    if json_out is not None:
        typer.echo(f"wrote {json_out}")
