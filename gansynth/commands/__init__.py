"""CLI verbs, one module each; every verb parses options, builds a config and calls the Python API."""

from __future__ import annotations

import typer

from gansynth.commands import benchmark, demo, evaluate, export, fit, sample

# (command name, verb function), in the order ``gansynth --help`` lists them
COMMANDS = [
    ("fit", fit.fit_command),
    ("sample", sample.sample_command),
    ("evaluate", evaluate.evaluate_command),
    ("export", export.export_command),
    ("benchmark", benchmark.benchmark_command),
    ("demo", demo.demo_command),
]


def register_all(app: typer.Typer) -> None:
    """Add every verb to ``app``."""
    for name, function in COMMANDS:
        app.command(name)(function)
