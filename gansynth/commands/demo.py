"""``gansynth demo``: the whole pipeline on the built-in digits — fit → evaluate → export → benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

SUMMARY = "The whole pipeline on built-in digits, with a verdict."
EXAMPLES = [
    ("gansynth demo", "→ ./gansynth-demo, a few minutes on a CPU"),
    ("gansynth demo --out /tmp/demo --quiet", "no progress bars"),
]


def demo_command(
    out: Annotated[Path, typer.Option(help="Folder for the demo's data split, run, export and report.")] = Path(
        "gansynth-demo"
    ),
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Fit on digits, evaluate, export a balanced synthetic set, benchmark it; ends with the verdict line."""
    from rich.console import Console

    from gansynth.demo import run_demo

    run_demo(out, progress=not quiet, console=Console(stderr=True, highlight=False, soft_wrap=True), workers="auto")
