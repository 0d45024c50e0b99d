"""Command-line options that the training commands (``fit``, ``translate fit``) declare alike."""

from __future__ import annotations

from typing import Annotated

import typer

SnapshotKimg = Annotated[float | None, typer.Option(min=0.001, help="Snapshot interval in kimg.")]
Seed = Annotated[int | None, typer.Option(min=0)]
Device = Annotated[str | None, typer.Option(help="auto, cpu or cuda.")]
Precision = Annotated[str | None, typer.Option(help="auto, fp32, bf16 or fp16.")]
Compile = Annotated[
    bool | None, typer.Option("--compile/--no-compile", help="torch.compile (default: on for CUDA, off for CPU).")
]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the run exactly from its last snapshot.")]
Overrides = Annotated[list[str] | None, typer.Option("--set", help="Override: section.key=value (repeatable).")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bar (summary lines still print).")]
