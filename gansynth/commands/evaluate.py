"""``gansynth evaluate``: metrics of a run's generator (or a folder of generated images) against real images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

SUMMARY = "FID, precision/recall, coverage, label fidelity of a run."
EXAMPLES = [
    ("gansynth evaluate", "the latest run under ./runs"),
    ("gansynth evaluate runs/images --json metrics.json", "also write the record"),
    ("gansynth evaluate --generated other/images --data ./images", "any image folder"),
]


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
    checkpoint: Annotated[
        str, typer.Option(help="latest (last snapshot) or best (lowest FID of the evaluations during fit).")
    ] = "latest",
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """FID, KID, precision/recall, density/coverage, per-class FID, label fidelity — each with its protocol."""
    from gansynth.metrics import evaluate
    from gansynth.metrics.spec import EvaluateSpec

    spec = EvaluateSpec(num_samples, feature_extractor, weights, json_out, device, not quiet, checkpoint)
    record = evaluate(run, data, generated, spec=spec)
    from gansynth.terminal import print_metrics

    print_metrics(record)
    if json_out is not None:
        typer.echo(f"wrote {json_out}")
