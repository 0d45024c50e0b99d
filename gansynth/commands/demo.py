"""``gansynth demo``: the quickstart on the built-in digits — fit, then every later stage that is installed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo_command(
    out: Annotated[Path, typer.Option(help="Folder for the demo's run, export and report.")] = Path("gansynth-demo"),
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Train on scikit-learn's digits with the bundled recipe and show what the toolkit produces."""
    from rich.console import Console

    from gansynth.demo import run_demo

    run_demo(out, progress=not quiet, console=Console(stderr=True, highlight=False, soft_wrap=True))
