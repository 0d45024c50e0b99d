"""The demo pipeline on built-in digits: fit → sample grid (→ evaluate → export → benchmark as they are added)."""

from __future__ import annotations

import shutil
from pathlib import Path

from rich.console import Console

from gansynth.errors import ConfigError

DEMO_DATA = "digits"


def run_demo(out: Path, progress: bool = True, console: Console | None = None) -> dict:
    """Run the quickstart into ``out`` (a fresh run each time) and return what each stage produced."""
    console = console or Console(stderr=True)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file", hint="give a folder for the demo")
    run_dir = out / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    from gansynth.train.fit import fit

    console.rule("1/1 fit: class-conditional GAN on scikit-learn digits")
    result = fit(DEMO_DATA, out=run_dir, progress=progress, console=console)
    grids = sorted((run_dir / "samples").glob("grid-*.png"))
    console.print(f"run: {run_dir}  (sample grid: {grids[-1] if grids else 'none'})")
    return {"run": run_dir, "fit": result}
